// Copyright 2026 The mp Authors.
//
// wire_test: the fast path of a call (EncodeRequestFrame, DecodeRequestFrame, DecodeReplyFrame)
// puts and accepts exactly the bytes of the Request / Reply frames that the Codecs make: the same
// frames, the same refusals of every truncation and of every corrupted byte.

#include "managers/wire.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serialize/codec.h"
#include "serialize/frame.h"

namespace mp::managers_internal {
namespace {

std::vector<Request> Requests() {
  std::vector<Request> out;
  out.push_back(Request{});
  out.push_back(Request{.op = 1,
                        .id = 7,
                        .type = 0x1234567890abcdefULL,
                        .method = "setitem",
                        .thread = 4242,
                        .args = {Encode(int64_t{42}), Encode(int64_t{-1})}});
  out.push_back(Request{.op = 2,
                        .id = ~uint64_t{0},
                        .method = std::string(300, 'm'),
                        .signature = 99,
                        .timeout_ns = 12345,
                        .args = {std::string(200, 'a'), "", std::string(17, '\0')},
                        .held_args = {1, 2, 70000}});
  Request many{.op = 1, .method = "update"};
  for (int i = 0; i < 300; ++i) many.args.push_back(Encode(int64_t{i}));
  out.push_back(many);
  return out;
}

absl::Span<const uint8_t> Bytes(const std::string& s) { return AsBytes(s); }

TEST(WireTest, EncodeRequestFrameIsTheCodecsFrame) {
  for (const Request& r : Requests()) {
    std::string fast;
    ASSERT_TRUE(EncodeRequestFrame({.op = r.op,
                                    .id = r.id,
                                    .type = r.type,
                                    .method = r.method,
                                    .signature = r.signature,
                                    .thread = r.thread,
                                    .timeout_ns = r.timeout_ns,
                                    .held_args = r.held_args},
                                   StringArgs(r.args), fast)
                    .ok());
    EXPECT_EQ(fast, *EncodeFrame(r));
  }
}

TEST(WireTest, DecodeRequestFrameDecodesTheCodecsFrameIntoUsedStorage) {
  Request reused;
  for (const Request& r : Requests()) {
    const std::string frame = *EncodeFrame(r);
    ASSERT_TRUE(DecodeRequestFrame(Bytes(frame), kDefaultMaxMessageSize, reused).ok());
    EXPECT_EQ(*EncodeFrame(reused), frame);
  }
}

// Every truncation of `frame`, every byte of it with some bits flipped, and one byte too many.
std::vector<std::string> Damaged(const std::string& frame) {
  std::vector<std::string> variants;
  for (size_t n = 0; n < frame.size(); ++n) variants.push_back(frame.substr(0, n));
  for (size_t i = 0; i < frame.size(); ++i) {
    for (const uint8_t x : {0x01, 0x80, 0xff}) {
      std::string v = frame;
      v[i] = static_cast<char>(static_cast<uint8_t>(v[i]) ^ x);
      variants.push_back(v);
    }
  }
  variants.push_back(frame + "x");
  return variants;
}

// Every truncation and every single-byte corruption of a valid frame: the fast decoder accepts
// exactly what the Codec accepts, and decodes it to the same value.
TEST(WireTest, DecodeRequestFrameRefusesWhatTheCodecRefuses) {
  for (const Request& r : Requests()) {
    const std::string frame = *EncodeFrame(r);
    if (frame.size() > 400) continue;
    const std::vector<std::string> variants = Damaged(frame);
    for (const std::string& v : variants) {
      Request fast;
      const absl::Status f = DecodeRequestFrame(Bytes(v), kDefaultMaxMessageSize, fast);
      absl::StatusOr<Request> slow = DecodeFrame<Request>(v);
      ASSERT_EQ(f.ok(), slow.ok()) << f << " / " << slow.status();
      if (f.ok()) {
        EXPECT_EQ(*EncodeFrame(fast), *EncodeFrame(*slow));
      } else {
        EXPECT_EQ(f.code(), absl::StatusCode::kInvalidArgument) << f;
      }
    }
  }
}

std::vector<Reply> Replies() {
  return {Reply{}, Reply{.status = absl::NotFoundError("no key 42"), .results = {}},
          Reply{.results = {Encode(int64_t{4242})}},
          Reply{.results = {"", std::string(300, 'r'), "x"}, .given = {0, 2}}};
}

TEST(WireTest, EncodeReplyFrameIsTheCodecsFrame) {
  std::string reused;
  for (const Reply& r : Replies()) {
    ASSERT_TRUE(EncodeReplyFrame(r, reused).ok());
    EXPECT_EQ(reused, *EncodeFrame(r));
  }
}

TEST(WireTest, DecodeReplyFrameDecodesAndRefusesAsTheCodec) {
  for (const Reply& r : Replies()) {
    const std::string frame = *EncodeFrame(r);
    std::vector<std::string> variants = Damaged(frame);
    variants.push_back(frame);
    for (const std::string& v : variants) {
      ReplyView view;
      const absl::Status f = DecodeReplyFrame(Bytes(v), kDefaultMaxMessageSize, view);
      absl::StatusOr<Reply> slow = DecodeFrame<Reply>(v);
      ASSERT_EQ(f.ok(), slow.ok()) << f << " / " << slow.status();
      if (!f.ok()) {
        EXPECT_EQ(f.code(), absl::StatusCode::kInvalidArgument) << f;
        continue;
      }
      Reply copied{.status = view.status};
      CopyResults(view, copied.results, copied.given);
      EXPECT_EQ(*EncodeFrame(copied), *EncodeFrame(*slow));
    }
  }
}

TEST(WireTest, AFrameOfAnotherTypeIsRefused) {
  const std::string reply = *EncodeFrame(Reply{});
  Request request;
  EXPECT_EQ(DecodeRequestFrame(Bytes(reply), kDefaultMaxMessageSize, request).code(),
            absl::StatusCode::kInvalidArgument);
  const std::string req = *EncodeFrame(Request{});
  ReplyView view;
  EXPECT_EQ(DecodeReplyFrame(Bytes(req), kDefaultMaxMessageSize, view).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mp::managers_internal
