// Copyright 2026 The mp Authors.
//
// pool/buffers.h — message buffers the pool's threads reuse (internal to mp).

#ifndef MP_POOL_BUFFERS_H_
#define MP_POOL_BUFFERS_H_

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
  // A kept buffer (its contents unspecified; the caller clears or resizes it): the one of the
  // smallest capacity of at least `size` bytes, else
  // the largest (empty when none is kept).
  std::string Take(size_t size = 0) {
    MutexLock lock(&mu_);
    if (free_.empty()) return std::string();
    size_t pick = 0;
    for (size_t i = 1; i < free_.size(); ++i) {
      const size_t have = free_[i].capacity(), best = free_[pick].capacity();
      if (best < size ? have > best : (have >= size && have < best)) pick = i;
    }
    std::string b = std::move(free_[pick]);
    free_[pick] = std::move(free_.back());
    free_.pop_back();
    kept_bytes_ -= b.capacity();
    return b;
  }
  // Keeps `buffer` for a later Take (tiny and huge ones, and any beyond kMaxKeptBytes, are freed).
  void Give(std::string buffer) {
    const size_t capacity = buffer.capacity();
    if (capacity < kMinBytes || capacity > kMaxBytes) return;
    MutexLock lock(&mu_);
    if (kept_bytes_ + capacity > kMaxKeptBytes) return;
    kept_bytes_ += capacity;
    free_.push_back(std::move(buffer));
  }
  // Give to `pool` if it still exists (a blob or batch may outlive its Pool).
  static void GiveBack(const std::weak_ptr<Buffers>& pool, std::string buffer) {
    if (std::shared_ptr<Buffers> alive = pool.lock()) alive->Give(std::move(buffer));
  }
  // `buffer` as a shared blob that comes back here when its last reference goes.
  std::shared_ptr<const std::string> Share(std::string buffer) {
    return std::shared_ptr<const std::string>(
        new std::string(std::move(buffer)), [self = weak_from_this()](const std::string* b) {
          GiveBack(self, std::move(*const_cast<std::string*>(b)));
          delete b;
        });
  }

 private:
  static constexpr size_t kMinBytes = size_t{4} << 10;
  static constexpr size_t kMaxBytes = size_t{16} << 20;
  static constexpr size_t kMaxKeptBytes = size_t{32} << 20;
  Mutex mu_;
  std::vector<std::string> free_ ABSL_GUARDED_BY(mu_);
  size_t kept_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_BUFFERS_H_
