// Copyright 2026 The mp Authors.
//
// sync/lockable.h — C++'s Lockable and TimedLockable requirements (lock, unlock, try_lock,
// try_lock_for, try_lock_until) for mp's locks, so std::lock_guard, std::unique_lock and
// std::scoped_lock work with them: CPython's "with lock:".
//
//   {
//     std::lock_guard<mp::Lock> guard(*lock);       // blocks until held
//     if (lock->owner_died()) { /* repair what the dead holder protected */ }
//     ...
//   }                                               // released
//   std::unique_lock<mp::Lock> held(*lock, std::chrono::milliseconds(100));  // try_lock_for
//   if (!held.owns_lock()) { ... }
//
// Owner death stays visible: when lock() or a try_lock*() takes over the lock of a holder that
// died (the kAborted status IsOwnerDied() recognizes from Acquire), the caller holds the lock and
// owner_died() is true on that handle until its next acquire. It is never swallowed silently, but
// std's interface has no room for a status, so check it where the protected data matters.
//
// Failures that are not conditions but bugs abort with a message on stderr, since these methods
// cannot return a status and mp lets no exception escape: lock() on an empty (moved-from or
// decode-target) handle, and unlock() of a lock the caller does not hold (std makes both undefined
// behaviour; the status-returning Acquire/Release report them instead).
//
// Timeouts: try_lock_for waits on the monotonic clock. try_lock_until converts the time point to a
// duration from now on its own clock once, then waits that long on the monotonic clock.

#ifndef MP_SYNC_LOCKABLE_H_
#define MP_SYNC_LOCKABLE_H_

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sync/futex.h"

namespace mp {

namespace lockable_internal {

// Aborts with `what` and the status: a misuse that std's lock interface cannot report.
[[noreturn]] inline void Misuse(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "mp: %s: %s\n", what, status.ToString().c_str());
  std::abort();
}

}  // namespace lockable_internal

// Mixed into a lock type L (CRTP) that has Acquire(bool block, absl::Duration timeout) ->
// StatusOr<bool> and Release() -> Status.
template <typename L>
class Lockable {
 public:
  Lockable() = default;
  // Copies of a handle carry the flag's value (handles are cheap to copy).
  Lockable(const Lockable& other) : owner_died_(other.owner_died()) {}
  Lockable& operator=(const Lockable& other) {
    owner_died_.store(other.owner_died(), std::memory_order_relaxed);
    return *this;
  }

  void lock() {
    if (!Take(Self().Acquire(true, absl::InfiniteDuration()), "lock()")) {
      lockable_internal::Misuse("lock()", absl::InternalError("blocking acquire returned false"));
    }
  }
  bool try_lock() { return Take(Self().Acquire(false, absl::InfiniteDuration()), "try_lock()"); }
  template <typename Rep, typename Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
    return Take(Self().Acquire(true, absl::Nanoseconds(ns < 0 ? 0 : ns)), "try_lock_for()");
  }
  template <typename Clock, typename Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return try_lock_for(deadline - Clock::now());
  }
  void unlock() {
    if (absl::Status s = Self().Release(); !s.ok()) lockable_internal::Misuse("unlock()", s);
  }
  // True when the last lock() or try_lock*() through this handle took over the lock of a holder
  // that died (the caller holds the lock; what it protects may be half-written).
  // Read it while holding the lock: no other acquire through this handle can change it then
  // (for a Semaphore, which has no owner, it is always false).
  bool owner_died() const { return owner_died_.load(std::memory_order_relaxed); }

 private:
  L& Self() { return static_cast<L&>(*this); }
  // Whether the acquire holds the lock; records owner death; aborts on misuse.
  bool Take(const absl::StatusOr<bool>& got, const char* what) {
    if (got.ok()) {
      if (*got) owner_died_.store(false, std::memory_order_relaxed);
      return *got;
    }
    if (IsOwnerDied(got.status())) {
      owner_died_.store(true, std::memory_order_relaxed);
      return true;
    }
    lockable_internal::Misuse(what, got.status());
  }

  // Written only by the thread that has just acquired (one holder at a time for Lock and RLock);
  // atomic so threads sharing one handle object do not race on it.
  std::atomic<bool> owner_died_{false};
};

}  // namespace mp

#endif  // MP_SYNC_LOCKABLE_H_
