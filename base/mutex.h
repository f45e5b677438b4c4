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

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace mp {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

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
