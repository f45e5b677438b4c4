// Copyright 2026 The mp Authors.
//
// base/mutex.h — mp::Mutex, a std::mutex that clang's thread-safety analysis knows as a capability,
// so members can be declared ABSL_GUARDED_BY(mu_) and functions ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_)
// (the clang build checks them with -Werror=thread-safety; gcc ignores them). std::mutex rather
// than absl::Mutex underneath: the system Abseil is not built with TSan, while std::mutex is
// intercepted; libstdc++'s std::mutex carries no annotations of its own.
//
//   mutable mp::Mutex mu_;
//   int count_ ABSL_GUARDED_BY(mu_);
//   ...
//   mp::MutexLock lock(&mu_);
//   ++count_;

#ifndef MP_BASE_MUTEX_H_
#define MP_BASE_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "base/deadline.h"

namespace mp {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // Locks it if no thread holds it, without waiting; whether it did. Not for a thread that already
  // holds it.
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }

  // Waits on `cv` (always used with this mutex) until pred() holds or `deadline` passes, and
  // returns pred(). pred runs with the mutex held; the mutex is held again on return.
  template <typename Pred>
  bool Await(std::condition_variable& cv, Deadline deadline, Pred pred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
    bool ok = true;
    if (deadline.IsNever()) {
      cv.wait(lock, pred);
    } else {
      // std::condition_variable times its waits on steady_clock, which is CLOCK_MONOTONIC, the
      // clock of Deadline.
      ok = cv.wait_for(
          lock, std::chrono::nanoseconds(absl::ToInt64Nanoseconds(deadline.Remaining())), pred);
    }
    lock.release();  // still held: the caller's MutexLock unlocks it
    return ok;
  }

 private:
  std::mutex mu_;
};

// Holds `mu` for its lifetime.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace mp

#endif  // MP_BASE_MUTEX_H_
