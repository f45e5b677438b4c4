// Copyright 2026 The mp Authors.

#include "serialize/codec.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace mp {

void ByteWriter::Overflow(size_t size) const {
  std::fprintf(stderr,
               "mp internal error: ByteWriter asked to write %zu bytes with %zu left; a Codec's "
               "Size() disagrees with its Encode()\n",
               size, remaining());
  std::abort();
}

absl::Status ByteReader::Truncated(size_t wanted, absl::string_view what) const {
  return absl::OutOfRangeError(absl::StrCat("mp::Decode: input ends while reading ", what,
                                            ": need ", wanted, " bytes, ", remaining(), " left"));
}

absl::StatusOr<uint64_t> ByteReader::ReadVarint(absl::string_view what) {
  uint64_t value = 0;
  for (int i = 0; i < 10; ++i) {
    if (pos_ == end_) return Truncated(1, what);
    const uint8_t b = *pos_++;
    if (i == 9 && b > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("mp::Decode: varint for ", what, " does not fit in 64 bits"));
    }
    value |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      if (b == 0 && i > 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("mp::Decode: overlong varint for ", what, " (", i + 1, " bytes)"));
      }
      return value;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("mp::Decode: varint for ", what, " is longer than 10 bytes"));
}

absl::StatusOr<size_t> ByteReader::ReadCount(size_t min_element_size, absl::string_view what) {
  // A one-byte count that the input can hold, read directly (most counts are below 128). The
  // result is what the general path below gives for it.
  const uint64_t per = min_element_size == 0 ? 1 : min_element_size;
  if (pos_ != end_ && *pos_ < 0x80 && *pos_ <= (remaining() - 1) / per) return *pos_++;
  absl::StatusOr<uint64_t> n = ReadVarint(what);
  if (!n.ok()) return n.status();
  // An element never takes less than one byte of input for our purposes: even empty tuples are
  // bounded by the input size, so a count can never drive an unbounded loop or allocation.
  if (*n > remaining() / per) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp::Decode: ", what, " says ", *n, " elements of at least ", per,
                     " bytes, but only ", remaining(), " bytes remain"));
  }
  return static_cast<size_t>(*n);
}

uint64_t Fingerprint(absl::string_view type_name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
  for (unsigned char c : type_name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

namespace {
struct Registry {
  std::mutex mu;
  absl::flat_hash_map<uint64_t, std::string> names;
};
Registry& GetRegistry() {
  static Registry* const r = new Registry;
  return *r;
}
}  // namespace

void RegisterTypeName(uint64_t fingerprint, absl::string_view name) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.names.try_emplace(fingerprint, name);
}

std::string DescribeFingerprint(uint64_t fingerprint) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.names.find(fingerprint);
  if (it != r.names.end()) return absl::StrCat("'", it->second, "'");
  return absl::StrCat("a type unknown to this binary (fingerprint 0x",
                      absl::Hex(fingerprint, absl::kZeroPad16), ")");
}

namespace codec_internal {
std::string AggregateName(absl::string_view type, absl::string_view members,
                          const std::vector<std::string>& member_types) {
  std::string out = absl::StrCat(type, "{");
  size_t i = 0;
  for (absl::string_view m : absl::StrSplit(members, ',')) {
    m = absl::StripAsciiWhitespace(m);
    absl::StrAppend(&out, i ? "," : "", m, ":", i < member_types.size() ? member_types[i] : "?");
    ++i;
  }
  return out + "}";
}
}  // namespace codec_internal

}  // namespace mp
