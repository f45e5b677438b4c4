// Copyright 2026 The mp Authors.
//
// futures/test_gate.h — what the futures tests block tasks on, instead of sleeping: a Gate a task
// waits at until the test opens it, and a Counter the test waits on until tasks reached a point.
// Built on mp::Mutex (std::mutex), which TSan sees (the system Abseil's absl::Notification is not
// instrumented). Waits are bounded by a generous safety timeout, so a broken test fails instead of
// hanging.

#ifndef MP_FUTURES_TEST_GATE_H_
#define MP_FUTURES_TEST_GATE_H_

#include <condition_variable>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "base/mutex.h"

namespace mp::testing {

inline constexpr absl::Duration kSafetyBound = absl::Seconds(60);

class Gate {
 public:
  void Open() {
    MutexLock lock(&mu_);
    open_ = true;
    cv_.notify_all();
  }
  // True once open; false when `bound` passed first.
  bool Wait(absl::Duration bound = kSafetyBound) const {
    MutexLock lock(&mu_);
    return mu_.Await(cv_, Deadline::After(bound),
                     [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return open_; });
  }

 private:
  mutable Mutex mu_;
  mutable std::condition_variable cv_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
};

class Counter {
 public:
  void Increment() {
    MutexLock lock(&mu_);
    ++count_;
    cv_.notify_all();
  }
  int value() const {
    MutexLock lock(&mu_);
    return count_;
  }
  // True once the count reached n; false when `bound` passed first.
  bool WaitFor(int n, absl::Duration bound = kSafetyBound) const {
    MutexLock lock(&mu_);
    return mu_.Await(cv_, Deadline::After(bound),
                     [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ >= n; });
  }

 private:
  mutable Mutex mu_;
  mutable std::condition_variable cv_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mp::testing

#endif  // MP_FUTURES_TEST_GATE_H_
