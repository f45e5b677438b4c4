// Copyright 2026 The mp Authors.
//
// pool/buffers.h — message buffers the pool's threads reuse (internal to mp).

#ifndef MP_POOL_BUFFERS_H_
#define MP_POOL_BUFFERS_H_

#include <algorithm>
#include <bit>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"

namespace mp {
namespace pool_internal {

// Message buffers the pool's threads reuse, so that a steady stream of Maps writes the same memory
// instead of fresh pages: glibc returns the freed top of a thread's arena to the kernel, so every
// new 100 KB message page-faulted anew (measured: ~60 faults and ~0.5 ms of a 1 ms Map of 100,000
// trivial tasks on a VM, where a fault costs microseconds). Thread-safe.
class Buffers : public std::enable_shared_from_this<Buffers> {
 public:
  // A kept buffer (its contents unspecified; the caller clears or resizes it) of at least `size`
  // bytes' capacity, from the smallest size class that has one; else the largest kept buffer
  // (empty when none is kept). Constant time: buffers are kept by size class (a power of two),
  // since a steady stream of 8 KB messages keeps thousands of them.
  std::string Take(size_t size = 0) {
    MutexLock lock(&mu_);
    const int c = ClassOf(size);
    // Class c - 1 holds capacities just below 2^(c + kMinShift): some may be >= size.
    if (c > 0 && c <= kClasses) {
      std::vector<std::string>& list = free_[c - 1];
      for (size_t i = 0; i < list.size(); ++i) {
        if (list[i].capacity() >= size) return Pop(list, i);
      }
    }
    // Every buffer of class c or above is large enough.
    for (int k = c; k < kClasses; ++k) {
      if (!free_[k].empty()) return Pop(free_[k], free_[k].size() - 1);
    }
    for (int c = kClasses; c-- > 0;) {
      if (!free_[c].empty()) return Pop(free_[c], free_[c].size() - 1);
    }
    return std::string();
  }
  // Keeps `buffer` for a later Take (tiny and huge ones, and any beyond kMaxKeptBytes or
  // kMaxPerClass, are freed).
  void Give(std::string buffer) {
    const size_t capacity = buffer.capacity();
    if (capacity < kMinBytes || capacity > kMaxBytes) return;
    MutexLock lock(&mu_);
    std::vector<std::string>& list = free_[ClassOf(capacity + 1) - 1];
    if (kept_bytes_ + capacity > kMaxKeptBytes || list.size() >= kMaxPerClass) return;
    kept_bytes_ += capacity;
    list.push_back(std::move(buffer));
  }
  // Give to `pool` if it still exists (a blob or batch may outlive its Pool).
  static void GiveBack(const std::weak_ptr<Buffers>& pool, std::string buffer) {
    if (std::shared_ptr<Buffers> alive = pool.lock()) alive->Give(std::move(buffer));
  }
  // `value` shared; when its last reference goes, the buffer bytes_of(value) comes back to `pool`
  // if it still exists. One allocation for the value and its count.
  template <typename T, typename BytesOf>
  static std::shared_ptr<const T> ShareGivingBack(std::weak_ptr<Buffers> pool, T value,
                                                  BytesOf bytes_of) {
    struct Owned {
      T value;
      std::weak_ptr<Buffers> pool;
      BytesOf bytes_of;
      ~Owned() { GiveBack(pool, std::move(bytes_of(value))); }
    };
    auto owned = std::make_shared<Owned>(Owned{T(), {}, bytes_of});  // empty: gives back nothing
    owned->value = std::move(value);
    owned->pool = std::move(pool);
    return std::shared_ptr<const T>(owned, &owned->value);
  }
  // `buffer` as a shared blob that comes back here when its last reference goes.
  std::shared_ptr<const std::string> Share(std::string buffer) {
    return ShareGivingBack(weak_from_this(), std::move(buffer),
                           [](std::string& b) -> std::string& { return b; });
  }

  static constexpr size_t kMinBytes = size_t{4} << 10;
  static constexpr size_t kMaxBytes = size_t{16} << 20;
  static constexpr size_t kMaxKeptBytes = size_t{32} << 20;
  static constexpr size_t kMaxPerClass = 64;

 private:
  static constexpr int kMinShift = 12;  // kMinBytes == 1 << kMinShift
  static constexpr int kClasses = 13;   // up to kMaxBytes == 1 << (kMinShift + kClasses - 1)

  // Class k keeps capacities in [2^(k + kMinShift), 2^(k + kMinShift + 1)). ClassOf(size) is the
  // lowest class whose every buffer holds `size` bytes: c with 2^(c + kMinShift - 1) < size <=
  // 2^(c + kMinShift), at least 0, at most kClasses (none does).
  static int ClassOf(size_t size) {
    if (size <= kMinBytes) return 0;
    const int bits = std::bit_width(size - 1);  // 2^(bits - 1) < size <= 2^bits
    return std::min(bits - kMinShift, kClasses);
  }
  std::string Pop(std::vector<std::string>& list, size_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string b = std::move(list[i]);
    list[i] = std::move(list.back());
    list.pop_back();
    kept_bytes_ -= b.capacity();
    return b;
  }

  Mutex mu_;
  std::vector<std::string> free_[kClasses] ABSL_GUARDED_BY(mu_);
  size_t kept_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_BUFFERS_H_
