// Copyright 2026 The mp Authors.

#include "serialize/flat.h"

#include "absl/strings/str_cat.h"

namespace mp::flat_internal {

absl::Status VerifyRoot(absl::Span<const uint8_t> bytes, const char* name,
                        bool (*verify)(flatbuffers::Verifier&), const FlatVerifyLimits& limits) {
  // The Verifier asserts on sizes at or above FLATBUFFERS_MAX_BUFFER_SIZE; refuse them first.
  if (bytes.size() >= FLATBUFFERS_MAX_BUFFER_SIZE) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp: FlatBuffer for ", name, " of ", bytes.size(), " bytes is too large"));
  }
  if (bytes.size() < sizeof(flatbuffers::uoffset_t) * 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp: FlatBuffer for ", name, " is only ", bytes.size(), " bytes"));
  }
  flatbuffers::Verifier::Options options;
  options.max_depth = limits.max_depth;
  options.max_tables = limits.max_tables;
  options.check_alignment = true;
  flatbuffers::Verifier verifier(bytes.data(), bytes.size(), options);
  if (!verify(verifier)) {
    return absl::InvalidArgumentError(absl::StrCat("mp: ", bytes.size(),
                                                   "-byte buffer is not a valid FlatBuffer of ",
                                                   name, " (flatbuffers::Verifier refused it)"));
  }
  return absl::OkStatus();
}

}  // namespace mp::flat_internal
