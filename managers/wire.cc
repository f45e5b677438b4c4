// Copyright 2026 The mp Authors.

#include "managers/wire.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "serialize/codec.h"
#include "serialize/frame.h"
#include "serialize/status.h"

namespace mp::managers_internal {

StringArgs::StringArgs(const std::vector<std::string>& args) : args_(args) {
  for (const std::string& a : args_) size_ += Codec<std::string>::Size(a);
}

void StringArgs::Write(ByteWriter& w) const {
  for (const std::string& a : args_) Codec<std::string>::Encode(a, w);
}

absl::Status EncodeRequestFrame(const RequestFields& f, const RequestArgs& args, std::string& out) {
  // Request's members in order, each as its Codec writes it (MP_FIELDS(Request, ...)).
  const size_t payload = sizeof(uint8_t) + 2 * sizeof(uint64_t) + VarintSize(f.method.size()) +
                         f.method.size() + 2 * sizeof(uint64_t) + sizeof(int64_t) +
                         VarintSize(args.count()) + args.size() + VarintSize(f.held_args.size()) +
                         f.held_args.size() * sizeof(uint32_t);
  if (payload > kMaxFramePayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("manager: a request of ", payload, " bytes exceeds the 4 GiB frame limit"));
  }
  out.resize(kFrameHeaderSize + payload);
  uint8_t* data = reinterpret_cast<uint8_t*>(out.data());
  WriteFrameHeader({static_cast<uint32_t>(payload), TypeFingerprint<Request>()},
                   absl::Span<uint8_t>(data, kFrameHeaderSize));
  ByteWriter w(data + kFrameHeaderSize, payload);
  w.WriteLE(f.op);
  w.WriteLE(f.id);
  w.WriteLE(f.type);
  w.WriteVarint(f.method.size());
  w.Write(f.method.data(), f.method.size());
  w.WriteLE(f.signature);
  w.WriteLE(f.thread);
  w.WriteLE(f.timeout_ns);
  w.WriteVarint(args.count());
  const size_t before_args = w.remaining();
  args.Write(w);
  if (before_args - w.remaining() != args.size()) {
    return absl::InternalError("manager: a request's arguments wrote another size than announced");
  }
  w.WriteVarint(f.held_args.size());
  for (const uint32_t i : f.held_args) w.WriteLE(i);
  if (w.remaining() != 0) return absl::InternalError("manager: a request frame's size is wrong");
  return absl::OkStatus();
}

absl::Status EncodeReplyFrame(const Reply& reply, std::string& out) {
  const size_t payload = EncodedSize(reply);
  if (payload > kMaxFramePayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("manager: a reply of ", payload, " bytes exceeds the 4 GiB frame limit"));
  }
  out.resize(kFrameHeaderSize + payload);
  uint8_t* data = reinterpret_cast<uint8_t*>(out.data());
  WriteFrameHeader({static_cast<uint32_t>(payload), TypeFingerprint<Reply>()},
                   absl::Span<uint8_t>(data, kFrameHeaderSize));
  EncodeTo(reply, absl::Span<uint8_t>(data + kFrameHeaderSize, payload));
  return absl::OkStatus();
}

void CopyResults(const ReplyView& view, std::vector<std::string>& results,
                 std::vector<uint32_t>& given) {
  results.clear();
  results.reserve(view.results.size());
  for (const absl::string_view r : view.results) results.emplace_back(r.data(), r.size());
  given.assign(view.given.begin(), view.given.end());
}

namespace {

absl::Status LeftOver(const ByteReader& r, const std::string& type_name) {
  return absl::InvalidArgumentError(
      absl::StrCat("mp::Decode: ", r.remaining(), " bytes left over after decoding a ", type_name));
}

// The frame's payload once its header is checked (DecodeFrameInto's checks).
template <typename T>
absl::StatusOr<absl::Span<const uint8_t>> Payload(absl::Span<const uint8_t> frame,
                                                  size_t max_payload_size) {
  absl::StatusOr<FrameHeader> header = ParseFrameHeader(frame, max_payload_size);
  if (!header.ok()) return header.status();
  if (absl::Status s = CheckFrameType(*header, TypeFingerprint<T>(), TypeName<T>()); !s.ok()) {
    return s;
  }
  return FramePayload(frame, *header);
}

// As Connection::Recv: a frame shorter than it says is malformed, not the end of the stream.
absl::Status Malformed(absl::Status s) {
  if (s.ok() || s.code() != absl::StatusCode::kOutOfRange) return s;
  return absl::InvalidArgumentError(
      absl::StrCat("Connection::Recv: malformed message: ", s.message()));
}

// Codec<Request>::Decode (MP_FIELDS(Request, ...): the members in order), into `out`'s storage.
absl::Status DecodeRequestPayload(ByteReader& r, Request& out) {
  if (absl::Status s = r.ReadLE(&out.op, "u8"); !s.ok()) return s;
  if (absl::Status s = r.ReadLE(&out.id, "u64"); !s.ok()) return s;
  if (absl::Status s = r.ReadLE(&out.type, "u64"); !s.ok()) return s;
  if (absl::Status s = Codec<std::string>::Decode(r, out.method); !s.ok()) return s;
  if (absl::Status s = r.ReadLE(&out.signature, "u64"); !s.ok()) return s;
  if (absl::Status s = r.ReadLE(&out.thread, "u64"); !s.ok()) return s;
  if (absl::Status s = r.ReadLE(&out.timeout_ns, "i64"); !s.ok()) return s;
  absl::StatusOr<size_t> n = r.ReadCount(Codec<std::string>::kMinSize, "vector length");
  if (!n.ok()) return n.status();
  out.args.resize(*n);
  for (std::string& a : out.args) {
    if (absl::Status s = Codec<std::string>::Decode(r, a); !s.ok()) return s;
  }
  absl::StatusOr<size_t> h = r.ReadCount(sizeof(uint32_t), "vector length");
  if (!h.ok()) return h.status();
  out.held_args.resize(*h);
  for (uint32_t& i : out.held_args) {
    if (absl::Status s = r.ReadLE(&i, "vector elements"); !s.ok()) return s;
  }
  if (r.remaining() != 0) return LeftOver(r, TypeName<Request>());
  return absl::OkStatus();
}

absl::Status DecodeReplyPayload(ByteReader& r, ReplyView& out) {
  if (absl::Status s = Codec<absl::Status>::Decode(r, out.status); !s.ok()) return s;
  absl::StatusOr<size_t> n = r.ReadCount(Codec<std::string>::kMinSize, "vector length");
  if (!n.ok()) return n.status();
  out.results.clear();
  for (size_t i = 0; i < *n; ++i) {
    absl::StatusOr<size_t> length = r.ReadCount(1, "string length");
    if (!length.ok()) return length.status();
    absl::StatusOr<absl::Span<const uint8_t>> bytes = r.ReadSpan(*length, "string bytes");
    if (!bytes.ok()) return bytes.status();
    out.results.emplace_back(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  }
  absl::StatusOr<size_t> g = r.ReadCount(sizeof(uint32_t), "vector length");
  if (!g.ok()) return g.status();
  out.given.clear();
  for (size_t i = 0; i < *g; ++i) {
    uint32_t v = 0;
    if (absl::Status s = r.ReadLE(&v, "vector elements"); !s.ok()) return s;
    out.given.push_back(v);
  }
  if (r.remaining() != 0) return LeftOver(r, TypeName<Reply>());
  return absl::OkStatus();
}

}  // namespace

absl::Status DecodeRequestFrame(absl::Span<const uint8_t> frame, size_t max_payload_size,
                                Request& out) {
  absl::StatusOr<absl::Span<const uint8_t>> payload = Payload<Request>(frame, max_payload_size);
  if (!payload.ok()) return Malformed(payload.status());
  ByteReader r(*payload);
  return Malformed(DecodeRequestPayload(r, out));
}

absl::Status DecodeReplyFrame(absl::Span<const uint8_t> frame, size_t max_payload_size,
                              ReplyView& out) {
  absl::StatusOr<absl::Span<const uint8_t>> payload = Payload<Reply>(frame, max_payload_size);
  if (!payload.ok()) return Malformed(payload.status());
  ByteReader r(*payload);
  return Malformed(DecodeReplyPayload(r, out));
}

}  // namespace mp::managers_internal
