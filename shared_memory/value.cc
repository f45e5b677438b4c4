// Copyright 2026 The mp Authors.

#include "shared_memory/value.h"

#include <atomic>
#include <cstring>

namespace mp::value_internal {
namespace {

struct alignas(kShmAlignment) Header {
  std::atomic<uint32_t> tag;
  uint32_t elem_size;
  uint64_t count;
  uint64_t lock_offset;  // 0: no lock
};
static_assert(sizeof(Header) == kShmAlignment);

// The largest Value/Array, in bytes: half the largest segment.
constexpr uint64_t kMaxBytes = kShmMaxSize / 2;

// kInvalidArgument unless `count` elements of `elem_size` bytes are a size a Value/Array may have.
// Compares by division, so count * elem_size is never computed when it would overflow.
absl::Status CheckCount(size_t elem_size, size_t count, absl::string_view what) {
  if (count == 0 || elem_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, "::Create: ", count, " elements of ",
                                                   elem_size, " bytes: the length must be >= 1"));
  }
  if (count > kMaxBytes / elem_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, "::Create: ", count, " elements of ", elem_size, " bytes exceed the limit of ",
        kMaxBytes, " bytes (", kMaxBytes / elem_size, " elements)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Block> CreateBlock(ShmDomain domain, size_t elem_size, size_t count,
                                  const void* init, bool lock, absl::string_view what) {
  if (absl::Status s = CheckCount(elem_size, count, what); !s.ok()) return s;
  absl::StatusOr<ShmSegment> segment =
      ShmSegment::Create(domain, sizeof(Header) + count * elem_size + kShmAlignment +
                                     (lock ? sizeof(Lock::State) : 0));
  if (!segment.ok()) {
    return absl::Status(segment.status().code(),
                        absl::StrCat(what, "::Create: ", count, " elements of ", elem_size,
                                     " bytes: ", segment.status().message()));
  }
  return CreateBlock(*std::move(segment), elem_size, count, init, lock, what);
}

absl::StatusOr<Block> CreateBlock(ShmSegment segment, size_t elem_size, size_t count,
                                  const void* init, bool lock, absl::string_view what) {
  if (!segment.valid())
    return absl::InvalidArgumentError(absl::StrCat(what, "::Create: empty segment"));
  if (absl::Status s = CheckCount(elem_size, count, what); !s.ok()) return s;
  Block b;
  if (lock) {
    absl::StatusOr<Lock> l = Lock::Create(segment);
    if (!l.ok()) return l.status();
    b.lock = *std::move(l);
  }
  absl::StatusOr<uint64_t> offset = segment.Allocate(sizeof(Header) + count * elem_size);
  if (!offset.ok()) return offset.status();
  auto* header = static_cast<Header*>(segment.At(*offset));
  header->elem_size = static_cast<uint32_t>(elem_size);
  header->count = count;
  header->lock_offset = lock ? b.lock->handle().offset : 0;
  b.data = reinterpret_cast<uint8_t*>(header + 1);
  // Blocks start zero-filled (sync/shm.h), so no initializer means zeros.
  if (init != nullptr) std::memcpy(b.data, init, count * elem_size);
  header->tag.store(kTag, std::memory_order_release);
  b.segment = std::move(segment);
  b.offset = *offset;
  b.count = count;
  return b;
}

absl::StatusOr<Block> OpenBlock(const ShmHandle& handle, size_t elem_size, absl::string_view what) {
  if (!handle.segment.valid()) {
    return absl::InvalidArgumentError(absl::StrCat(what, "::FromHandle: empty segment"));
  }
  if (absl::Status s = handle.segment.CheckBlock(handle.offset, sizeof(Header), kTag, what);
      !s.ok()) {
    return s;
  }
  const auto* header = static_cast<const Header*>(handle.segment.At(handle.offset));
  if (header->elem_size != elem_size) {
    return absl::InvalidArgumentError(absl::StrCat(what, "::FromHandle: the shared object has ",
                                                   header->elem_size, "-byte elements, this ", what,
                                                   " type has ", elem_size));
  }
  const uint64_t count = header->count;
  if (count == 0 || count > kMaxBytes / elem_size) {
    return absl::InvalidArgumentError(absl::StrCat(what, "::FromHandle: corrupt count ", count));
  }
  if (absl::Status s =
          handle.segment.CheckBlock(handle.offset, sizeof(Header) + count * elem_size, kTag, what);
      !s.ok()) {
    return s;
  }
  Block b;
  b.segment = handle.segment;
  b.offset = handle.offset;
  b.count = count;
  b.data = static_cast<uint8_t*>(handle.segment.At(handle.offset)) + sizeof(Header);
  if (header->lock_offset != 0) {
    absl::StatusOr<Lock> l = Lock::FromHandle({handle.segment, header->lock_offset});
    if (!l.ok()) return l.status();
    b.lock = *std::move(l);
  }
  return b;
}

absl::Status IndexError(absl::string_view what, size_t index, size_t size) {
  return absl::OutOfRangeError(
      absl::StrCat(what, ": index ", index, " out of range for an Array of ", size));
}

}  // namespace mp::value_internal
