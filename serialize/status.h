// Copyright 2026 The mp Authors.
//
// serialize/status.h — Codec<absl::Status>: how a status crosses a process boundary (a Pool task's
// failure, a child's refusal of its launch record, an initializer's error). One encoding for all:
//
//   varint code | varint length | message bytes
//
// Decoding trusts nothing: a code outside absl's range becomes kUnknown and the message says which
// number arrived; the message length is bounded by the bytes that remain. Payloads are not carried.
// This lives in serialize/ rather than base/ because Codec is defined here (base/ sits below
// serialize/ and knows no Codec).

#ifndef MP_SERIALIZE_STATUS_H_
#define MP_SERIALIZE_STATUS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "serialize/codec.h"

namespace mp {

template <>
struct Codec<absl::Status> {
  static std::string Name() { return "status"; }
  static constexpr size_t kMinSize = 2;
  static size_t Size(const absl::Status& s) {
    return VarintSize(static_cast<uint64_t>(s.code())) + VarintSize(s.message().size()) +
           s.message().size();
  }
  static void Encode(const absl::Status& s, ByteWriter& w) {
    w.WriteVarint(static_cast<uint64_t>(s.code()));
    w.WriteVarint(s.message().size());
    w.Write(s.message().data(), s.message().size());
  }
  static absl::Status Decode(ByteReader& r, absl::Status& out) {
    absl::StatusOr<uint64_t> code = r.ReadVarint("status code");
    if (!code.ok()) return code.status();
    absl::StatusOr<size_t> n = r.ReadCount(1, "status message length");
    if (!n.ok()) return n.status();
    std::string message(*n, '\0');
    if (absl::Status s = r.Read(message.data(), *n, "status message"); !s.ok()) return s;
    if (*code > static_cast<uint64_t>(absl::StatusCode::kUnauthenticated)) {
      out = absl::UnknownError(absl::StrCat("(status code ", *code, " is not absl's) ", message));
    } else {
      out = absl::Status(static_cast<absl::StatusCode>(*code), message);
    }
    return absl::OkStatus();
  }
};

// A failure that arrived from another process must stay a failure: an OK code in a slot that
// means "failed" (a bug or a hostile peer) becomes kUnknown with the message kept.
inline absl::Status AsFailure(absl::Status s) {
  if (s.ok()) return absl::UnknownError("a peer reported a failure with status code OK");
  return s;
}

}  // namespace mp

#endif  // MP_SERIALIZE_STATUS_H_
