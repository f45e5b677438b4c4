// Copyright 2026 The mp Authors.
//
// serialize/time.h — Codec<absl::Duration> and Codec<absl::Time>: a timeout or a point in time as
// an argument of a Process target, a Pool task or a manager's method. One encoding for both:
//
//   byte kind (0 finite, 1 +infinity, 2 -infinity) | for a finite value: int64 seconds,
//   uint32 nanoseconds in [0, 1e9)
//
// A Duration is whole seconds plus nanoseconds (floored: absl's quarter nanoseconds are dropped); a
// Time is the Duration since the Unix epoch. Decoding refuses a kind above 2 and nanoseconds of 1e9
// or more (kInvalidArgument naming them), so a peer's bytes cannot make an unnormalized value.

#ifndef MP_SERIALIZE_TIME_H_
#define MP_SERIALIZE_TIME_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "serialize/codec.h"

namespace mp {
namespace codec_internal {

// The kinds of a Duration on the wire.
inline constexpr uint8_t kFiniteDuration = 0;
inline constexpr uint8_t kPlusInfiniteDuration = 1;
inline constexpr uint8_t kMinusInfiniteDuration = 2;

inline size_t DurationSize(absl::Duration d) {
  return 1 + (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration() ? 0 : 8 + 4);
}

inline void EncodeDuration(absl::Duration d, ByteWriter& w) {
  if (d == absl::InfiniteDuration()) {
    w.WriteByte(kPlusInfiniteDuration);
    return;
  }
  if (d == -absl::InfiniteDuration()) {
    w.WriteByte(kMinusInfiniteDuration);
    return;
  }
  // Floor to whole seconds, so that the nanoseconds are never negative.
  absl::Duration rem;
  int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &rem);
  if (rem < absl::ZeroDuration()) {
    --seconds;
    rem += absl::Seconds(1);
  }
  const uint32_t nanos = static_cast<uint32_t>(absl::ToInt64Nanoseconds(rem));
  w.WriteByte(kFiniteDuration);
  Codec<int64_t>::Encode(seconds, w);
  Codec<uint32_t>::Encode(nanos, w);
}

inline absl::Status DecodeDuration(ByteReader& r, absl::string_view what, absl::Duration& out) {
  absl::StatusOr<uint8_t> kind = r.ReadByte(what);
  if (!kind.ok()) return kind.status();
  if (*kind == kPlusInfiniteDuration) {
    out = absl::InfiniteDuration();
    return absl::OkStatus();
  }
  if (*kind == kMinusInfiniteDuration) {
    out = -absl::InfiniteDuration();
    return absl::OkStatus();
  }
  if (*kind != kFiniteDuration) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp::Decode: a ", what, "'s kind must be 0, 1 or 2, got ", *kind));
  }
  int64_t seconds = 0;
  uint32_t nanos = 0;
  if (absl::Status s = Codec<int64_t>::Decode(r, seconds); !s.ok()) return s;
  if (absl::Status s = Codec<uint32_t>::Decode(r, nanos); !s.ok()) return s;
  if (nanos >= 1000000000u) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp::Decode: a ", what, "'s nanoseconds must be below 1e9, got ", nanos));
  }
  out = absl::Seconds(seconds) + absl::Nanoseconds(nanos);
  return absl::OkStatus();
}

}  // namespace codec_internal

template <>
struct Codec<absl::Duration> {
  static std::string Name() { return "duration"; }
  static constexpr size_t kMinSize = 1;
  static size_t Size(const absl::Duration& d) { return codec_internal::DurationSize(d); }
  static void Encode(const absl::Duration& d, ByteWriter& w) {
    codec_internal::EncodeDuration(d, w);
  }
  static absl::Status Decode(ByteReader& r, absl::Duration& out) {
    return codec_internal::DecodeDuration(r, "duration", out);
  }
};

template <>
struct Codec<absl::Time> {
  static std::string Name() { return "time"; }
  static constexpr size_t kMinSize = 1;
  static size_t Size(const absl::Time& t) {
    return codec_internal::DurationSize(t - absl::UnixEpoch());
  }
  static void Encode(const absl::Time& t, ByteWriter& w) {
    codec_internal::EncodeDuration(t - absl::UnixEpoch(), w);
  }
  static absl::Status Decode(ByteReader& r, absl::Time& out) {
    absl::Duration since_epoch;
    if (absl::Status s = codec_internal::DecodeDuration(r, "time", since_epoch); !s.ok()) return s;
    out = absl::UnixEpoch() + since_epoch;
    return absl::OkStatus();
  }
};

}  // namespace mp

#endif  // MP_SERIALIZE_TIME_H_
