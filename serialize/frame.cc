// Copyright 2026 The mp Authors.

#include "serialize/frame.h"

#include "absl/strings/str_cat.h"

namespace mp {
namespace {
constexpr uint8_t kMagic0 = 'm';
constexpr uint8_t kMagic1 = 'p';
}  // namespace

void WriteFrameHeader(const FrameHeader& header, absl::Span<uint8_t> out) {
  ByteWriter w(out.data(), kFrameHeaderSize);
  w.WriteByte(kMagic0);
  w.WriteByte(kMagic1);
  w.WriteByte(kWireFormatVersion);
  w.WriteByte(0);
  w.WriteLE(header.payload_size);
  w.WriteLE(header.fingerprint);
}

absl::StatusOr<FrameHeader> ParseFrameHeader(absl::Span<const uint8_t> in,
                                             size_t max_payload_size) {
  if (in.size() < kFrameHeaderSize) {
    return absl::OutOfRangeError(
        absl::StrCat("mp frame: need ", kFrameHeaderSize, " header bytes, got ", in.size()));
  }
  if (in[0] != kMagic0 || in[1] != kMagic1) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp frame: bad magic 0x", absl::Hex(in[0], absl::kZeroPad2),
                     absl::Hex(in[1], absl::kZeroPad2), " (not an mp message)"));
  }
  if (in[2] != kWireFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("mp frame: wire format version ", in[2],
                                                   " is not supported (this build reads version ",
                                                   kWireFormatVersion, ")"));
  }
  if (in[3] != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp frame: reserved flags byte is ", in[3], ", must be 0"));
  }
  ByteReader r(in.data() + 4, kFrameHeaderSize - 4);
  FrameHeader h;
  (void)r.ReadLE(&h.payload_size, "frame size");
  (void)r.ReadLE(&h.fingerprint, "frame fingerprint");
  if (h.payload_size > max_payload_size) {
    return absl::InvalidArgumentError(absl::StrCat("mp frame: message of ", h.payload_size,
                                                   " bytes exceeds the maximum message size of ",
                                                   max_payload_size, " bytes"));
  }
  return h;
}

absl::Status CheckFrameType(const FrameHeader& header, uint64_t expected_fingerprint,
                            absl::string_view expected_name) {
  if (header.fingerprint == expected_fingerprint) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("mp frame: message holds ",
                                                 DescribeFingerprint(header.fingerprint), " but '",
                                                 expected_name, "' was asked for"));
}

absl::StatusOr<absl::Span<const uint8_t>> FramePayload(absl::Span<const uint8_t> frame,
                                                       const FrameHeader& header) {
  if (frame.size() < kFrameHeaderSize) {
    return absl::OutOfRangeError("mp frame: shorter than its header");
  }
  const size_t have = frame.size() - kFrameHeaderSize;
  if (have < header.payload_size) {
    return absl::OutOfRangeError(absl::StrCat("mp frame: truncated: header says ",
                                              header.payload_size, " payload bytes, got ", have));
  }
  if (have > header.payload_size) {
    return absl::InvalidArgumentError(absl::StrCat("mp frame: ", have - header.payload_size,
                                                   " bytes after the ", header.payload_size,
                                                   "-byte payload"));
  }
  return frame.subspan(kFrameHeaderSize, header.payload_size);
}

}  // namespace mp
