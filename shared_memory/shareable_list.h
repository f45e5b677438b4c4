// Copyright 2026 The mp Authors.
//
// shared_memory/shareable_list.h — mp::ShareableList<T>: Python's
// multiprocessing.shared_memory.ShareableList, a fixed-length list of values in a named
// SharedMemory segment that any process can attach to by name.
//
//   const std::vector<int64_t> init = {1, 2, 3};
//   absl::StatusOr<mp::ShareableList<int64_t>> sl = mp::ShareableList<int64_t>::Create(init);
//   sl->Set(0, 10).IgnoreError();
//   // elsewhere (or pass *sl as a Process argument: it travels by name):
//   absl::StatusOr<mp::ShareableList<int64_t>> other = mp::ShareableList<int64_t>::Attach(name);
//   absl::StatusOr<int64_t> first = other->Get(0);   // 10
//
// Elements are of one trivially copyable type T with a Codec (arithmetic types, enums,
// std::array<char, N> for strings of at most N bytes, MP_FIELDS structs of such), where CPython's
// list mixes int, float, bool, str, bytes and None with a fixed size per slot. The length is fixed
// at creation, as CPython's is. Reads and writes of one element are plain memory copies: not atomic
// (as in CPython); guard them with a Lock when processes write concurrently.
//
// Layout (the first 32 bytes of the segment, then the elements, each sizeof(T) bytes):
//   offset 0   u64 magic "mpSList1"
//   offset 8   u64 TypeFingerprint<T>()
//   offset 16  u64 element count
//   offset 24  u64 sizeof(T)
// Attach reads the header once and checks it (magic, type, element size, count * size within the
// segment): a segment of another type or a corrupt header is kInvalidArgument naming what is wrong;
// later changes to the header by another process are never read.
//
// Errors: an index outside the list is kOutOfRange (IndexError; negative indices count from the
// end), Index of a value not in the list kNotFound (ValueError); the rest are SharedMemory's.

#ifndef MP_SHARED_MEMORY_SHAREABLE_LIST_H_
#define MP_SHARED_MEMORY_SHAREABLE_LIST_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "serialize/codec.h"
#include "shared_memory/shared_memory.h"

namespace mp {

namespace shared_memory_internal {
inline constexpr uint64_t kShareableListMagic = 0x317473694c53706dULL;  // "mpSList1"
inline constexpr size_t kShareableListHeader = 32;

// Checks a segment's header against T's fingerprint and size; the element count.
absl::StatusOr<size_t> CheckShareableListHeader(const SharedMemory& shm, uint64_t fingerprint,
                                                size_t element_size, absl::string_view type);
void WriteShareableListHeader(SharedMemory& shm, uint64_t fingerprint, size_t count,
                              size_t element_size);
absl::StatusOr<size_t> ShareableListIndex(int64_t i, size_t size);
}  // namespace shared_memory_internal

template <typename T>
class ShareableList {
  static_assert(std::is_trivially_copyable_v<T>,
                "mp::ShareableList<T>: T must be trivially copyable (its bytes are the value)");

 public:
  // Bytes a segment needs for `count` elements.
  static constexpr size_t Bytes(size_t count) {
    return shared_memory_internal::kShareableListHeader + count * sizeof(T);
  }

  // A new segment (named `name`, "" for a random name) holding `values`.
  static absl::StatusOr<ShareableList> Create(absl::Span<const T> values,
                                              absl::string_view name = "",
                                              SharedMemoryOptions options = {}) {
    absl::StatusOr<SharedMemory> shm =
        SharedMemory::Create(name, static_cast<int64_t>(Bytes(values.size())), options);
    if (!shm.ok()) return shm.status();
    return Format(*std::move(shm), values);
  }
  // Writes the header and `values` into a segment of at least Bytes(values.size()) bytes (what a
  // SharedMemoryManager made); kInvalidArgument if it is too small.
  static absl::StatusOr<ShareableList> Format(SharedMemory shm, absl::Span<const T> values) {
    if (shm.size() < Bytes(values.size())) {
      return absl::InvalidArgumentError(absl::StrCat("ShareableList: segment ", shm.name(), " has ",
                                                     shm.size(), " bytes, ", Bytes(values.size()),
                                                     " needed"));
    }
    if (!values.empty()) {
      std::memcpy(shm.buf().data() + shared_memory_internal::kShareableListHeader, values.data(),
                  values.size() * sizeof(T));
    }
    shared_memory_internal::WriteShareableListHeader(shm, TypeFingerprint<T>(), values.size(),
                                                     sizeof(T));
    return ShareableList(std::move(shm), values.size());
  }
  // The list in the existing segment `name` (see the header comment for what is checked).
  static absl::StatusOr<ShareableList> Attach(absl::string_view name) {
    absl::StatusOr<SharedMemory> shm = SharedMemory::Attach(name);
    if (!shm.ok()) return shm.status();
    return FromSharedMemory(*std::move(shm));
  }
  static absl::StatusOr<ShareableList> FromSharedMemory(SharedMemory shm) {
    absl::StatusOr<size_t> count = shared_memory_internal::CheckShareableListHeader(
        shm, TypeFingerprint<T>(), sizeof(T), TypeName<T>());
    if (!count.ok()) return count.status();
    return ShareableList(std::move(shm), *count);
  }

  ShareableList() = default;

  size_t size() const { return count_; }
  const SharedMemory& shm() const { return shm_; }
  const std::string& name() const { return shm_.name(); }

  absl::StatusOr<T> Get(int64_t i) const {
    absl::StatusOr<size_t> at = shared_memory_internal::ShareableListIndex(i, count_);
    if (!at.ok()) return at.status();
    T out;
    std::memcpy(&out, Slot(*at), sizeof(T));
    return out;
  }
  absl::Status Set(int64_t i, const T& value) {
    absl::StatusOr<size_t> at = shared_memory_internal::ShareableListIndex(i, count_);
    if (!at.ok()) return at.status();
    std::memcpy(Slot(*at), &value, sizeof(T));
    return absl::OkStatus();
  }
  // The first index holding `value` (equal bytes); kNotFound if none.
  absl::StatusOr<int64_t> Index(const T& value) const {
    for (size_t i = 0; i < count_; ++i) {
      if (std::memcmp(Slot(i), &value, sizeof(T)) == 0) return static_cast<int64_t>(i);
    }
    return absl::NotFoundError("ShareableList::Index: the value is not in the list");
  }
  size_t Count(const T& value) const {
    size_t n = 0;
    for (size_t i = 0; i < count_; ++i) n += std::memcmp(Slot(i), &value, sizeof(T)) == 0;
    return n;
  }
  std::vector<T> ToVector() const {
    std::vector<T> out(count_);
    if (count_ != 0) std::memcpy(out.data(), Slot(0), count_ * sizeof(T));
    return out;
  }

 private:
  ShareableList(SharedMemory shm, size_t count) : shm_(std::move(shm)), count_(count) {}
  uint8_t* Slot(size_t i) const {
    return shm_.buf().data() + shared_memory_internal::kShareableListHeader + i * sizeof(T);
  }

  SharedMemory shm_;
  size_t count_ = 0;  // read once, at Attach
};

// A ShareableList travels as its segment's name; the receiver attaches and checks the header.
template <typename T>
struct Codec<ShareableList<T>> {
  static std::string Name() { return absl::StrCat("mp::ShareableList<", TypeName<T>(), ">"); }
  static constexpr size_t kMinSize = Codec<std::string>::kMinSize;
  static size_t Size(const ShareableList<T>& v) { return Codec<std::string>::Size(v.name()); }
  static void Encode(const ShareableList<T>& v, ByteWriter& w) {
    Codec<std::string>::Encode(v.name(), w);
  }
  static absl::Status Decode(ByteReader& r, ShareableList<T>& out) {
    std::string name;
    if (absl::Status s = Codec<std::string>::Decode(r, name); !s.ok()) return s;
    absl::StatusOr<ShareableList<T>> list = ShareableList<T>::Attach(name);
    if (!list.ok()) return list.status();
    out = *std::move(list);
    return absl::OkStatus();
  }
};

}  // namespace mp

#endif  // MP_SHARED_MEMORY_SHAREABLE_LIST_H_
