// Copyright 2026 The mp Authors.

#include "serialize/time.h"

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace mp {
namespace {

absl::Span<const uint8_t> AsBytes(const std::string& s) {
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(TimeCodecTest, DurationsRoundTrip) {
  for (const absl::Duration d :
       {absl::ZeroDuration(), absl::Nanoseconds(1), absl::Nanoseconds(-1), absl::Milliseconds(1500),
        -absl::Milliseconds(1500), absl::Seconds(1), absl::Hours(-24 * 365 * 1000),
        absl::Seconds(INT64_MAX), absl::Seconds(INT64_MIN), absl::InfiniteDuration(),
        -absl::InfiniteDuration()}) {
    absl::StatusOr<absl::Duration> back = Decode<absl::Duration>(Encode(d));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, d) << absl::FormatDuration(d);
    EXPECT_EQ(Encode(d).size(), Codec<absl::Duration>::Size(d));
  }
  // Quarter nanoseconds are floored away.
  EXPECT_EQ(*Decode<absl::Duration>(Encode(absl::Nanoseconds(1) / 4 + absl::Seconds(2))),
            absl::Seconds(2));
}

TEST(TimeCodecTest, TimesRoundTripAndTravelInTuples) {
  const absl::Time t = absl::FromUnixNanos(1764672000123456789);
  for (const absl::Time x : {t, absl::UnixEpoch(), absl::UnixEpoch() - absl::Nanoseconds(1),
                             absl::InfiniteFuture(), absl::InfinitePast()}) {
    absl::StatusOr<absl::Time> back = Decode<absl::Time>(Encode(x));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, x);
  }
  using Args = std::tuple<std::string, absl::Duration, absl::Time>;
  const Args args{"timeout", absl::Milliseconds(250), t};
  absl::StatusOr<Args> back = Decode<Args>(Encode(args));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, args);
}

TEST(TimeCodecTest, MalformedBytesAreRefused) {
  // A kind above 2.
  absl::Duration d;
  absl::Status s = DecodeInto(AsBytes(std::string(1, '\x03')), d);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  // Nanoseconds of 1e9: an unnormalized value.
  std::string bytes = Encode(absl::Seconds(1));
  const uint32_t too_many = 1000000000u;
  for (int i = 0; i < 4; ++i) bytes[9 + i] = static_cast<char>((too_many >> (8 * i)) & 0xff);
  s = DecodeInto(AsBytes(bytes), d);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("below 1e9"), absl::string_view::npos) << s;
  // Every truncation of a finite value.
  const std::string whole = Encode(absl::Milliseconds(3));
  for (size_t n = 0; n < whole.size(); ++n) {
    EXPECT_FALSE(DecodeInto(AsBytes(whole.substr(0, n)), d).ok()) << n;
  }
}

}  // namespace
}  // namespace mp
