// Copyright 2026 The mp Authors.

#include "serialize/status.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace mp {
namespace {

// A StatusOr<absl::Status> cannot tell a decoded status from a failed decode, so these tests use
// DecodeInto, as callers do.
absl::Span<const uint8_t> AsBytes(const std::string& s) {
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(StatusCodecTest, RoundTrips) {
  for (const absl::Status& s :
       {absl::OkStatus(), absl::InvalidArgumentError("bad x"), absl::AbortedError(""),
        absl::UnauthenticatedError(std::string(1000, 'm'))}) {
    std::string bytes = Encode(s);
    absl::Status back = absl::InternalError("unset");
    ASSERT_TRUE(DecodeInto(AsBytes(bytes), back).ok());
    EXPECT_EQ(back, s);
  }
}

TEST(StatusCodecTest, ForeignCodeBecomesUnknown) {
  std::vector<uint8_t> bytes = {200, 1, 3, 'a', 'b', 'c'};  // varint 200, "abc"
  absl::Status back;
  ASSERT_TRUE(DecodeInto(bytes, back).ok());
  EXPECT_EQ(back.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(back.message(), "(status code 200 is not absl's) abc");
}

TEST(StatusCodecTest, LengthPastTheEndIsRefused) {
  std::vector<uint8_t> bytes = {3, 0xff, 0xff, 0xff, 0x7f, 'a'};
  absl::Status back;
  absl::Status s = DecodeInto(bytes, back);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

TEST(StatusCodecTest, AsFailureKeepsAFailureAFailure) {
  EXPECT_EQ(AsFailure(absl::OkStatus()).code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(AsFailure(absl::NotFoundError("x")), absl::NotFoundError("x"));
}

}  // namespace
}  // namespace mp
