// Copyright 2026 The mp Authors.
//
// serialize/frame.h — one message on the wire: a fixed header, then the encoded value.
//
// Every message mp sends between processes (Connection, Queue, spawn launch records) is a frame:
//
//   offset  size  field
//   0       2     magic 'm' 'p'
//   2       1     wire format version (kWireFormatVersion)
//   3       1     flags, reserved: must be 0
//   4       4     payload size in bytes, little-endian (at most the receiver's maximum message
//   size) 8       8     type fingerprint, little-endian (mp::TypeFingerprint<T>()) 16      n
//   payload: Codec<T> encoding of the value
//
// The fingerprint is what makes receiving typed: a receiver that asks for the wrong type gets
// kInvalidArgument naming both types ("frame holds 'vec<i32>' but 'str' was asked for"), and never
// a value decoded from the wrong bytes. Truncated, oversized or garbage input returns a status;
// nothing is read past the span given.
//
//   std::string frame = mp::EncodeFrame(std::vector<int32_t>{1, 2});
//   absl::StatusOr<std::vector<int32_t>> v = mp::DecodeFrame<std::vector<int32_t>>(frame);

#ifndef MP_SERIALIZE_FRAME_H_
#define MP_SERIALIZE_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "serialize/codec.h"

namespace mp {

inline constexpr size_t kFrameHeaderSize = 16;
// Default largest payload a receiver accepts; every channel lets its user change it.
inline constexpr size_t kDefaultMaxMessageSize = size_t{64} << 20;  // 64 MiB
// The header's size field is 32 bits.
inline constexpr size_t kMaxFramePayload = 0xffffffffu;

struct FrameHeader {
  uint32_t payload_size = 0;
  uint64_t fingerprint = 0;
};

void WriteFrameHeader(const FrameHeader& header, absl::Span<uint8_t> out);

// Parses and checks the first kFrameHeaderSize bytes of `in`: magic, version, flags, and
// payload_size <= max_payload_size. Does not require the payload to be present.
absl::StatusOr<FrameHeader> ParseFrameHeader(absl::Span<const uint8_t> in,
                                             size_t max_payload_size = kDefaultMaxMessageSize);

// kInvalidArgument naming both types unless `header` carries `expected_fingerprint`.
absl::Status CheckFrameType(const FrameHeader& header, uint64_t expected_fingerprint,
                            absl::string_view expected_name);

// Checks that `frame` is exactly one header and its payload; returns the payload.
absl::StatusOr<absl::Span<const uint8_t>> FramePayload(absl::Span<const uint8_t> frame,
                                                       const FrameHeader& header);

inline absl::Span<const uint8_t> AsBytes(absl::string_view s) {
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

namespace frame_internal {
// Registers T's name at program start-up in every binary that frames T, so a receiver can name the
// type a peer running the same binary sent even if it never touched that type itself.
template <typename T>
struct TypeRegistrar {
  static inline const bool registered = (TypeFingerprint<T>(), true);
};
}  // namespace frame_internal

template <typename T>
size_t FrameSize(const T& v) {
  return kFrameHeaderSize + EncodedSize(v);
}

// Encodes `v` as a frame into `out`, which must be exactly FrameSize(v) bytes. kInvalidArgument if
// the payload would not fit the 32-bit size field.
template <typename T>
absl::Status EncodeFrameTo(const T& v, absl::Span<uint8_t> out) {
  RequireCodec<T>();
  (void)frame_internal::TypeRegistrar<T>::registered;
  if (out.size() < kFrameHeaderSize) {
    return absl::InvalidArgumentError("mp::EncodeFrameTo: output smaller than a frame header");
  }
  const size_t payload = out.size() - kFrameHeaderSize;
  if (payload > kMaxFramePayload) {
    return absl::InvalidArgumentError("mp::EncodeFrame: a " + TypeName<T>() + " of " +
                                      std::to_string(payload) +
                                      " bytes exceeds the 4 GiB frame limit");
  }
  WriteFrameHeader({static_cast<uint32_t>(payload), TypeFingerprint<T>()}, out);
  EncodeTo(v, out.subspan(kFrameHeaderSize));
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<std::string> EncodeFrame(const T& v) {
  std::string out(FrameSize(v), '\0');
  absl::Status s =
      EncodeFrameTo(v, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  if (!s.ok()) return s;
  return out;
}

// Decodes a whole frame holding a T.
template <typename T>
absl::Status DecodeFrameInto(absl::Span<const uint8_t> frame, T& out,
                             size_t max_payload_size = kDefaultMaxMessageSize) {
  RequireCodec<T>();
  (void)frame_internal::TypeRegistrar<T>::registered;
  absl::StatusOr<FrameHeader> header = ParseFrameHeader(frame, max_payload_size);
  if (!header.ok()) return header.status();
  if (absl::Status s = CheckFrameType(*header, TypeFingerprint<T>(), TypeName<T>()); !s.ok()) {
    return s;
  }
  absl::StatusOr<absl::Span<const uint8_t>> payload = FramePayload(frame, *header);
  if (!payload.ok()) return payload.status();
  return DecodeInto(*payload, out);
}

template <typename T>
absl::StatusOr<T> DecodeFrame(absl::Span<const uint8_t> frame,
                              size_t max_payload_size = kDefaultMaxMessageSize) {
  T out{};
  if (absl::Status s = DecodeFrameInto(frame, out, max_payload_size); !s.ok()) return s;
  return out;
}

template <typename T>
absl::StatusOr<T> DecodeFrame(absl::string_view frame,
                              size_t max_payload_size = kDefaultMaxMessageSize) {
  return DecodeFrame<T>(AsBytes(frame), max_payload_size);
}

}  // namespace mp

#endif  // MP_SERIALIZE_FRAME_H_
