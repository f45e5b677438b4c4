// Copyright 2026 The mp Authors.

#include "serialize/frame.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serialize/codec.h"

namespace mp {
namespace {

using ::testing::HasSubstr;

std::string MustFrame(const auto& v) {
  absl::StatusOr<std::string> f = EncodeFrame(v);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *f : std::string();
}

TEST(Frame, HeaderLayoutIsAsDocumented) {
  const std::string f = MustFrame(uint16_t{0xBEEF});
  ASSERT_EQ(f.size(), kFrameHeaderSize + 2);
  EXPECT_EQ(f[0], 'm');
  EXPECT_EQ(f[1], 'p');
  EXPECT_EQ(static_cast<uint8_t>(f[2]), kWireFormatVersion);
  EXPECT_EQ(f[3], 0);
  EXPECT_EQ(f.substr(4, 4), std::string("\x02\x00\x00\x00", 4));
  EXPECT_EQ(f.substr(8, 8), Encode(TypeFingerprint<uint16_t>()));
  EXPECT_EQ(f.substr(16), std::string("\xEF\xBE", 2));
}

TEST(Frame, RoundTrip) {
  std::vector<std::string> v = {"one", "two", ""};
  absl::StatusOr<std::vector<std::string>> back =
      DecodeFrame<std::vector<std::string>>(MustFrame(v));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, v);
}

TEST(Frame, EmptyPayloadIsAMessage) {
  absl::StatusOr<std::string> back = DecodeFrame<std::string>(MustFrame(std::string()));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "");
  absl::StatusOr<std::tuple<>> unit = DecodeFrame<std::tuple<>>(MustFrame(std::tuple<>{}));
  EXPECT_TRUE(unit.ok());
}

TEST(Frame, WrongTypeNamesBothTypes) {
  absl::StatusOr<std::string> s = DecodeFrame<std::string>(MustFrame(std::vector<int32_t>{1}));
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("'vec<i32>'"));
  EXPECT_THAT(s.status().message(), HasSubstr("'str' was asked for"));
}

TEST(Frame, UnknownFingerprintIsShownInHex) {
  std::string f = MustFrame(int32_t{5});
  for (int i = 8; i < 16; ++i) f[i] = 0x11;
  absl::StatusOr<int32_t> v = DecodeFrame<int32_t>(f);
  ASSERT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(v.status().message(), HasSubstr("fingerprint 0x1111111111111111"));
}

TEST(Frame, OversizedIsRefusedByHeaderAlone) {
  std::string f = MustFrame(std::string(1000, 'a'));
  absl::StatusOr<std::string> v = DecodeFrame<std::string>(f, /*max_payload_size=*/100);
  ASSERT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(v.status().message(), HasSubstr("exceeds the maximum message size of 100"));
  absl::StatusOr<FrameHeader> h = ParseFrameHeader(AsBytes(f).subspan(0, kFrameHeaderSize), 100);
  EXPECT_FALSE(h.ok());
}

TEST(Frame, TruncatedAndTrailing) {
  const std::string f = MustFrame(std::string("hello"));
  for (size_t cut = 0; cut < f.size(); ++cut) {
    EXPECT_FALSE(DecodeFrame<std::string>(absl::string_view(f.data(), cut)).ok()) << cut;
  }
  absl::StatusOr<std::string> trailing = DecodeFrame<std::string>(f + "x");
  EXPECT_EQ(trailing.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Frame, BadMagicVersionFlags) {
  const std::string good = MustFrame(int8_t{1});
  std::string bad = good;
  bad[0] = 'x';
  EXPECT_THAT(DecodeFrame<int8_t>(bad).status().message(), HasSubstr("bad magic"));
  bad = good;
  bad[2] = 99;
  EXPECT_THAT(DecodeFrame<int8_t>(bad).status().message(), HasSubstr("version 99"));
  bad = good;
  bad[3] = 1;
  EXPECT_THAT(DecodeFrame<int8_t>(bad).status().message(), HasSubstr("flags"));
}

TEST(Frame, SixteenMebibytes) {
  std::vector<uint8_t> big(16u << 20, 0xAB);
  std::string f = MustFrame(big);
  absl::StatusOr<std::vector<uint8_t>> back = DecodeFrame<std::vector<uint8_t>>(f);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == big);
}

}  // namespace
}  // namespace mp
