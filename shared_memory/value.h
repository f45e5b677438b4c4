// Copyright 2026 The mp Authors.
//
// shared_memory/value.h — mp::Value<T> and mp::Array<T>: Python's multiprocessing.Value and Array
// (and RawValue / RawArray with lock = false).
//
// A Value<T> is one T in shared memory; an Array<T> is a fixed number of them. T must be trivially
// copyable (CPython's ctypes types: integers, doubles, plain structs). By default each carries an
// mp::Lock (CPython's Value(typecode, value, lock=True)) that Get/Set take, so a read never sees
// half of a write. With lock = false there is none (RawValue/RawArray), and Get/Set are plain
// copies.
//
//   absl::StatusOr<mp::Value<int64_t>> counter =
//       mp::Value<int64_t>::Create(mp::ShmDomain::kFork, 0);
//   // ... in forked children (or pass *counter as a Process argument):
//   counter->Update([](int64_t& v) { v += 1; });   // CPython's "with v.get_lock(): v.value += 1"
//   absl::StatusOr<int64_t> now = counter->Get();  // takes the lock
//
//   absl::StatusOr<mp::Array<double>> a = mp::Array<double>::Create(domain, {1.0, 2.0, 3.0});
//   a->Set(1, 5.0);
//   absl::StatusOr<std::vector<double>> all = a->GetAll();
//
// Where they live: in a sync/shm.h ShmSegment of either domain (Create(domain, ...) makes a segment
// of its own; Create(segment, ...) allocates from an existing one, e.g. next to other objects).
// They follow the cross-context rules like every shared object: each has an mp::Codec (sync/shm.h
// ShmObjectCodec, carrying the segment's descriptor and the offset), and a fork-domain Value/Array
// notes itself as fork-only, so spawn and forkserver refuse it when a Process is created. The
// memory is freed with the last process that maps the segment; nothing is named, nothing can leak.
//
// Shared layout: a 64-byte header {tag, element size, count, lock offset (0: no lock)} then the
// elements (64-byte aligned); the Lock is a separate block of the same segment. FromHandle checks
// the tag, that the element size is sizeof(T) and that the elements lie inside the segment.
//
// Status codes:
//   Update                 kUnknown naming the exception if the function throws (the value is
//                          left unchanged and the lock released); kAborted as below
//   Get/Set/GetAll/SetAll  kAborted if the lock's holder died while holding it (sync/lock.h): the
//                          lock is recovered and released, but the elements may be half-written;
//                          the next call works normally. (CPython would block forever.)
//   Get(i)/Set(i)          kOutOfRange for an index >= size() (IndexError)
//   SetAll                 kInvalidArgument when the length differs (ValueError)
//   Create                 kInvalidArgument for a length of 0 or a total above 2^39 bytes (naming
//                          the length and the limit; count * sizeof(T) is never left to overflow),
//                          kResourceExhausted for a total above this machine's RAM + swap
//                          (CPython: ValueError / OverflowError / MemoryError)
//   GetLock                kFailedPrecondition when made with lock = false (AttributeError)
//   FromHandle / decode    kInvalidArgument when the handle holds something else
//
// Thread safety: handles are cheap to copy (copies share the object) and every method may be called
// from any thread and process; the raw accessors (get_obj, data) bypass the lock.

#ifndef MP_SHARED_MEMORY_VALUE_H_
#define MP_SHARED_MEMORY_VALUE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/exception.h"
#include "serialize/codec.h"
#include "sync/lock.h"
#include "sync/shm.h"

namespace mp {
namespace value_internal {

inline constexpr uint32_t kTag = 0x6c56706d;  // "mpVl"

// The non-template part of Value and Array: a block of `count` elements of `elem_size` bytes.
struct Block {
  ShmSegment segment;
  uint64_t offset = 0;
  uint8_t* data = nullptr;
  size_t count = 0;
  std::optional<Lock> lock;
};

// Allocates and initializes a block (elements copied from `init`, count * elem_size bytes; zeros
// when `init` is null). Checks `count` before anything is allocated.
absl::StatusOr<Block> CreateBlock(ShmSegment segment, size_t elem_size, size_t count,
                                  const void* init, bool lock, absl::string_view what);
absl::StatusOr<Block> CreateBlock(ShmDomain domain, size_t elem_size, size_t count,
                                  const void* init, bool lock, absl::string_view what);
// Re-opens a block, checking the tag and the element size.
absl::StatusOr<Block> OpenBlock(const ShmHandle& handle, size_t elem_size, absl::string_view what);

// Runs `f` with the block's lock held (if any). kAborted when the previous holder died.
template <typename F>
absl::Status WithLock(const Block& b, absl::string_view what, F&& f) {
  if (!b.lock.has_value()) {
    f();
    return absl::OkStatus();
  }
  Lock lock = *b.lock;
  absl::StatusOr<bool> got = lock.Acquire();
  if (!got.ok() && !IsOwnerDied(got.status())) return got.status();
  if (!got.ok()) {
    lock.Release().IgnoreError();
    return absl::AbortedError(absl::StrCat(what,
                                           ": the process holding its lock died; the lock was "
                                           "recovered but the data may be half-written (",
                                           got.status().message(), ")"));
  }
  f();
  return lock.Release();
}

absl::Status IndexError(absl::string_view what, size_t index, size_t size);

}  // namespace value_internal

template <typename T>
class Value {
  static_assert(std::is_trivially_copyable_v<T>, "mp::Value<T>: T must be trivially copyable");

 public:
  // A Value in its own new segment of `domain`, holding `initial`.
  static absl::StatusOr<Value> Create(ShmDomain domain, const T& initial = T{}, bool lock = true) {
    absl::StatusOr<value_internal::Block> b =
        value_internal::CreateBlock(domain, sizeof(T), 1, &initial, lock, "Value");
    if (!b.ok()) return b.status();
    return Value(*std::move(b));
  }
  // A Value allocated from `segment`.
  static absl::StatusOr<Value> Create(ShmSegment segment, const T& initial = T{},
                                      bool lock = true) {
    absl::StatusOr<value_internal::Block> b =
        value_internal::CreateBlock(std::move(segment), sizeof(T), 1, &initial, lock, "Value");
    if (!b.ok()) return b.status();
    return Value(*std::move(b));
  }
  static absl::StatusOr<Value> FromHandle(const ShmHandle& handle) {
    absl::StatusOr<value_internal::Block> b = value_internal::OpenBlock(handle, sizeof(T), "Value");
    if (!b.ok()) return b.status();
    if (b->count != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("Value: the handle holds an Array of ", b->count, " elements"));
    }
    return Value(*std::move(b));
  }

  // An empty Value (a decode target); only assignment and destruction are allowed.
  Value() = default;

  // CPython's v.value (read), under the lock.
  absl::StatusOr<T> Get() const {
    T out;
    absl::Status s = value_internal::WithLock(block_, "Value::Get",
                                              [&] { std::memcpy(&out, block_.data, sizeof(T)); });
    if (!s.ok()) return s;
    return out;
  }
  // CPython's v.value = x, under the lock.
  absl::Status Set(const T& v) {
    return value_internal::WithLock(block_, "Value::Set",
                                    [&] { std::memcpy(block_.data, &v, sizeof(T)); });
  }
  // Read-modify-write under the lock (CPython's "with v.get_lock(): v.value += 1"): calls fn(T&)
  // on a copy of the value, stores the copy back and returns it. If fn throws, nothing is stored
  // and the status is kUnknown naming the exception. With lock = false nothing guards the
  // read-modify-write against other processes (as with RawValue).
  template <typename F>
  absl::StatusOr<T> Update(F&& fn) {
    static_assert(std::is_invocable_v<F&, T&>,
                  "mp::Value<T>::Update: fn must be callable as fn(T&)");
    T v;
    std::string thrown;
    bool threw = false;
    absl::Status s = value_internal::WithLock(block_, "Value::Update", [&] {
      std::memcpy(&v, block_.data, sizeof(T));
      try {
        fn(v);
      } catch (...) {
        threw = true;
        thrown = CurrentExceptionDescription();
        return;
      }
      std::memcpy(block_.data, &v, sizeof(T));
    });
    if (!s.ok()) return s;
    if (threw) {
      return absl::UnknownError(
          absl::StrCat("Value::Update: the function threw ", thrown, "; the value is unchanged"));
    }
    return v;
  }
  // The lock (CPython's get_lock()); kFailedPrecondition for a Value made with lock = false.
  absl::StatusOr<Lock> GetLock() const {
    if (!block_.lock.has_value()) {
      return absl::FailedPreconditionError(
          "Value::GetLock: this Value was created with lock = false");
    }
    return *block_.lock;
  }
  bool has_lock() const { return block_.lock.has_value(); }
  // The shared T itself (CPython's get_obj()), without the lock.
  T* get_obj() const { return reinterpret_cast<T*>(block_.data); }

  ShmHandle handle() const { return {block_.segment, block_.offset}; }
  ShmDomain domain() const { return block_.segment.domain(); }

 private:
  explicit Value(value_internal::Block b) : block_(std::move(b)) {}
  value_internal::Block block_;
};

template <typename T>
class Array {
  static_assert(std::is_trivially_copyable_v<T>, "mp::Array<T>: T must be trivially copyable");

 public:
  // `length` zero-initialized elements (CPython's Array(typecode, size)). kInvalidArgument for 0 or
  // more than 2^39 bytes, kResourceExhausted for more than the machine's memory (see the header
  // comment); nothing proportional to `length` is allocated before these checks.
  static absl::StatusOr<Array> Create(ShmDomain domain, size_t length, bool lock = true) {
    absl::StatusOr<value_internal::Block> b =
        value_internal::CreateBlock(domain, sizeof(T), length, /*init=*/nullptr, lock, "Array");
    if (!b.ok()) return b.status();
    return Array(*std::move(b));
  }
  // A copy of `init` (CPython's Array(typecode, sequence)).
  static absl::StatusOr<Array> Create(ShmDomain domain, absl::Span<const T> init,
                                      bool lock = true) {
    absl::StatusOr<value_internal::Block> b =
        value_internal::CreateBlock(domain, sizeof(T), init.size(), init.data(), lock, "Array");
    if (!b.ok()) return b.status();
    return Array(*std::move(b));
  }
  static absl::StatusOr<Array> Create(ShmDomain domain, std::initializer_list<T> init,
                                      bool lock = true) {
    return Create(domain, absl::Span<const T>(init.begin(), init.size()), lock);
  }
  // Allocated from `segment`.
  static absl::StatusOr<Array> Create(ShmSegment segment, absl::Span<const T> init,
                                      bool lock = true) {
    absl::StatusOr<value_internal::Block> b = value_internal::CreateBlock(
        std::move(segment), sizeof(T), init.size(), init.data(), lock, "Array");
    if (!b.ok()) return b.status();
    return Array(*std::move(b));
  }
  static absl::StatusOr<Array> FromHandle(const ShmHandle& handle) {
    absl::StatusOr<value_internal::Block> b = value_internal::OpenBlock(handle, sizeof(T), "Array");
    if (!b.ok()) return b.status();
    return Array(*std::move(b));
  }

  // An empty Array (a decode target); only assignment and destruction are allowed.
  Array() = default;

  size_t size() const { return block_.count; }

  // a[i], under the lock. kOutOfRange for i >= size().
  absl::StatusOr<T> Get(size_t i) const {
    if (i >= size()) return value_internal::IndexError("Array::Get", i, size());
    T out;
    absl::Status s = value_internal::WithLock(
        block_, "Array::Get", [&] { std::memcpy(&out, block_.data + i * sizeof(T), sizeof(T)); });
    if (!s.ok()) return s;
    return out;
  }
  // a[i] = v, under the lock.
  absl::Status Set(size_t i, const T& v) {
    if (i >= size()) return value_internal::IndexError("Array::Set", i, size());
    return value_internal::WithLock(
        block_, "Array::Set", [&] { std::memcpy(block_.data + i * sizeof(T), &v, sizeof(T)); });
  }
  // a[:], one consistent copy under the lock.
  absl::StatusOr<std::vector<T>> GetAll() const {
    std::vector<T> out(size());
    absl::Status s = value_internal::WithLock(
        block_, "Array::GetAll", [&] { std::memcpy(out.data(), block_.data, size() * sizeof(T)); });
    if (!s.ok()) return s;
    return out;
  }
  // a[:] = values, under the lock. kInvalidArgument unless values.size() == size().
  absl::Status SetAll(absl::Span<const T> values) {
    if (values.size() != size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Array::SetAll: ", values.size(), " values for an Array of ", size()));
    }
    return value_internal::WithLock(block_, "Array::SetAll", [&] {
      std::memcpy(block_.data, values.data(), size() * sizeof(T));
    });
  }
  absl::StatusOr<Lock> GetLock() const {
    if (!block_.lock.has_value()) {
      return absl::FailedPreconditionError(
          "Array::GetLock: this Array was created with lock = false");
    }
    return *block_.lock;
  }
  bool has_lock() const { return block_.lock.has_value(); }
  // The shared elements (CPython's get_obj()), without the lock.
  absl::Span<T> data() const { return absl::Span<T>(reinterpret_cast<T*>(block_.data), size()); }

  ShmHandle handle() const { return {block_.segment, block_.offset}; }
  ShmDomain domain() const { return block_.segment.domain(); }

 private:
  explicit Array(value_internal::Block b) : block_(std::move(b)) {}
  value_internal::Block block_;
};

template <typename T>
struct Codec<Value<T>> : ShmObjectCodec<Value<T>, "Value"> {};
template <typename T>
struct Codec<Array<T>> : ShmObjectCodec<Array<T>, "Array"> {};

}  // namespace mp

#endif  // MP_SHARED_MEMORY_VALUE_H_
