// Copyright 2026 The mp Authors.

#include "shared_memory/shareable_list.h"

#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "shared_memory/shared_memory.h"

namespace mp::shared_memory_internal {
namespace {
uint64_t Word(const SharedMemory& shm, size_t i) {
  uint64_t v;
  std::memcpy(&v, shm.buf().data() + 8 * i, sizeof(v));
  return v;
}
}  // namespace

absl::StatusOr<size_t> CheckShareableListHeader(const SharedMemory& shm, uint64_t fingerprint,
                                                size_t element_size, absl::string_view type) {
  const std::string what = absl::StrCat("ShareableList<", type, ">: segment ", shm.name());
  if (shm.size() < kShareableListHeader) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is too small for the header"));
  }
  // One snapshot of the header: another process may change it, nothing here reads it again.
  const uint64_t magic = Word(shm, 0);
  const uint64_t type_fp = Word(shm, 1);
  const uint64_t count = Word(shm, 2);
  const uint64_t size = Word(shm, 3);
  if (magic != kShareableListMagic) {
    return absl::InvalidArgumentError(absl::StrCat(what, " holds no ShareableList"));
  }
  if (type_fp != fingerprint || size != element_size) {
    return absl::InvalidArgumentError(absl::StrCat(what, " holds elements of another type (",
                                                   DescribeFingerprint(type_fp), ", ", size,
                                                   " bytes each)"));
  }
  const uint64_t room = (shm.size() - kShareableListHeader) / element_size;
  if (count > room) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " says it holds ", count, " elements; it has room for ", room));
  }
  return static_cast<size_t>(count);
}

void WriteShareableListHeader(SharedMemory& shm, uint64_t fingerprint, size_t count,
                              size_t element_size) {
  const uint64_t words[4] = {kShareableListMagic, fingerprint, count, element_size};
  std::memcpy(shm.buf().data(), words, sizeof(words));
}

absl::StatusOr<size_t> ShareableListIndex(int64_t i, size_t size) {
  int64_t at = i < 0 ? i + static_cast<int64_t>(size) : i;
  if (at < 0 || static_cast<uint64_t>(at) >= size) {
    return absl::OutOfRangeError(
        absl::StrCat("ShareableList: index ", i, " out of range for a length of ", size));
  }
  return static_cast<size_t>(at);
}

}  // namespace mp::shared_memory_internal
