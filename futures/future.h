// Copyright 2026 The mp Authors.
//
// futures/future.h — mp::Future<T>: CPython's concurrent.futures.Future, the pending result of a
// task an executor runs (ThreadPoolExecutor here, ProcessPoolExecutor in pool/). A Future is a
// cheap copyable handle to shared state; every copy sees the same task.
//
//   mp::Future<int64_t> f = executor->Submit([](int64_t x) { return x * x; }, 7);
//   f.AddDoneCallback([](const mp::Future<int64_t>& done) { ... });
//   absl::StatusOr<int64_t> v = f.Result(absl::Seconds(5));     // 49
//
// CPython -> mp:
//   f.result(timeout)            Result(timeout)   -> absl::StatusOr<T>
//   f.exception(timeout)         Status(timeout)   -> absl::Status (OK when the task succeeded)
//   f.done() / running() / cancelled()     Done() / Running() / Cancelled()
//   f.cancel()                   Cancel()
//   f.add_done_callback(fn)      AddDoneCallback(fn)
//   TimeoutError                 kDeadlineExceeded "Future::Result: <task> not done after 1s"
//   CancelledError               kCancelled "Future::Result: <task> was cancelled"
//   set_running_or_notify_cancel / set_result / set_exception (for executors)
//                                futures_internal::Core<T>: SetRunningOrNotifyCancel(),
//                                SetResult(absl::StatusOr<T>)
//   concurrent.futures.wait / as_completed   futures/wait.h
//
// A task's result type T: a task returning T gives Future<T>, one returning absl::StatusOr<T>
// gives Future<T> (its error is the future's failure), one returning void or absl::Status gives
// Future<mp::Unit> (an empty tuple, the same type as pool's PoolUnit).
//
// States, as CPython's: pending -> running -> finished, or pending -> cancelled. Cancel() succeeds
// (returns true) only while the task has not started, and also when the future is already
// cancelled; a running or finished future cannot be cancelled (false). Done() is true once finished
// or cancelled. A cancelled future is done at once for WaitFutures and AsCompleted too (CPython
// counts it only once its executor has seen the cancellation; here the executor's later look at the
// future changes nothing a waiter can observe).
//
// Done callbacks. AddDoneCallback(fn) runs fn(future) exactly once: in the thread that finishes or
// cancels the future, after the result is visible to every thread, or at once in the caller's
// thread when the future is already done. Callbacks run in the order they were added, without any
// lock held (a callback may call any method of the future or submit more work). A callback that
// throws does not stop the others: the exception is caught and reported on stderr as
//   mp::Future: a done callback of <task> threw <type>: <what()>
// and the remaining callbacks still run (CPython logs it with the logging module and continues).
// Under a process executor callbacks run in the executor's result thread: keep them short.
//
// Thread safety: every method may be called from any thread at the same time. T must be copyable:
// Result() returns a copy, since every copy of the Future may ask for it.

#ifndef MP_FUTURES_FUTURE_H_
#define MP_FUTURES_FUTURE_H_

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "base/mutex.h"

namespace mp {

// The result of a task that returns void or absl::Status (pool's PoolUnit is the same type).
using Unit = std::tuple<>;

namespace futures_internal {

class CoreBase;

// What a future asks its executor, without the future's lock (one object may serve many futures;
// a process executor's serves the futures of one submission).
class ExecutorHooks {
 public:
  virtual ~ExecutorHooks() = default;
  // Cancel() of a pending future: true when the executor took the task back before it started (the
  // future becomes cancelled), false when the task has started (Cancel returns false).
  virtual bool TakeBack() = 0;
  // Running() of a pending future: whether the task has started (a process executor knows it
  // before it tells the future).
  virtual bool Started() = 0;
  // Result() and Status() of a pending future, before they wait, with their deadline: work that
  // may finish the future in the waiting thread (a process executor takes the worker's reply
  // there, see pool/engine.h's Assist).
  virtual void AssistWait(Deadline deadline) = 0;
  // Any other look at a pending future that depends on its end being noticed without another
  // look: Done(), AddDoneCallback, AddWaiter (WaitFutures, AsCompleted).
  virtual void Observed() = 0;
};

// How a future ended, as a waiter learns it (CPython's _Waiter.add_result / add_exception /
// add_cancelled).
enum class Completion { kSucceeded, kFailed, kCancelled };

// Something waiting for any of several futures (futures/wait.h). Notify runs with the future's
// lock held, in the thread that completes it: it must only record and wake, never call the future.
class Waiter {
 public:
  virtual void Notify(const CoreBase* core, Completion how) = 0;

 protected:
  ~Waiter() = default;
};

// The state every Future shares, whatever its T: the state machine, the failure, the lock and
// condition variable, the done callbacks and the waiters. Always owned by a shared_ptr
// (std::make_shared), since callbacks receive a handle to it.
class CoreBase : public std::enable_shared_from_this<CoreBase> {
 public:
  using Callback = std::function<void(const std::shared_ptr<CoreBase>&)>;

  // `description` names the task in messages ("ThreadPoolExecutor task 3").
  explicit CoreBase(std::string description);
  virtual ~CoreBase();
  CoreBase(const CoreBase&) = delete;
  CoreBase& operator=(const CoreBase&) = delete;

  const std::string& description() const { return description_; }

  // --- consumer side (Future's methods) ---
  bool Done() const;
  bool Running() const;
  bool Cancelled() const;
  bool Cancel();
  // Waits until done or `timeout` passes; then OK for success, the task's failure, kCancelled, or
  // kDeadlineExceeded naming `caller` and the timeout.
  absl::Status Status(absl::Duration timeout, absl::string_view caller) const;
  void AddDoneCallback(Callback fn);

  // --- waiters (futures/wait.h) ---
  // Installs `waiter` unless the future is done; nullopt when installed, else how it ended.
  std::optional<Completion> AddWaiter(Waiter* waiter);
  void RemoveWaiter(Waiter* waiter);
  // How many waiters are installed (tests wait for a blocked WaitFutures with it).
  size_t WaiterCountForTesting() const;

  // --- producer side (executors) ---
  // CPython's set_running_or_notify_cancel: true when the future was pending and is now running
  // (run the task); false when it was cancelled (skip the task). Called in any other state (already
  // running or finished: an executor's bug) it returns false and changes nothing.
  bool SetRunningOrNotifyCancel();
  // What an executor answers for its futures (ExecutorHooks); set before the future is shared.
  // Unset: the future alone decides (pending means not started, nothing to do before a wait).
  void SetExecutorHooks(std::shared_ptr<ExecutorHooks> hooks);
  // Finishes the future with a failure (CPython's set_exception); kFailedPrecondition naming the
  // task when it is already finished or cancelled (CPython's InvalidStateError).
  absl::Status SetFailure(absl::Status failure);
  // The done callbacks of a future finished under DeferCallbacks (see there): runs them, and those
  // added since, in this thread.
  void RunDeferredCallbacks();

 protected:
  enum class State { kPending, kRunning, kCancelled, kFinished };

  // kFailedPrecondition unless the future may still finish.
  absl::Status CheckFinishableLocked(absl::string_view caller) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks the future finished with `failure` (OK: the subclass stored a value), tells the waiters
  // (WaitFutures, AsCompleted), and returns the callbacks to run once the lock is released.
  std::vector<Callback> FinishLocked(absl::Status failure) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After the lock that finished or cancelled the future is released: wakes the threads in
  // Result() / Status() (outside the lock, so that a woken thread does not block on it at once:
  // two more context switches when both threads share a CPU), then runs `callbacks`. The caller
  // holds a reference to the core (a woken thread may drop its own).
  void Settled(std::vector<Callback>& callbacks);
  // Runs callbacks in order, each in a try block (see the header comment).
  void RunCallbacks(std::vector<Callback>& callbacks);
  // Waits until done; false when `deadline` passed first.
  bool AwaitDoneLocked(Deadline deadline) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // hooks_->AssistWait, unless there are no hooks or the future is done.
  void Assist(Deadline deadline) const;
  // Done() without telling the hooks.
  bool DoneNoHooks() const;
  // The status a consumer sees for a done future whose value is not asked for: OK, the failure,
  // or kCancelled naming `caller`; or kDeadlineExceeded when it is not done.
  absl::Status OutcomeLocked(absl::string_view caller, absl::Duration timeout) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  mutable std::condition_variable cv_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kPending;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);

 private:
  const std::string description_;
  std::vector<Callback> callbacks_ ABSL_GUARDED_BY(mu_);
  // Finished under DeferCallbacks: callbacks_ (and those added since) wait for
  // RunDeferredCallbacks.
  bool callbacks_deferred_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<ExecutorHooks> hooks_;
};

// While one is alive in a thread, a future that thread finishes keeps its done callbacks instead of
// running them and is appended to *deferred (waiters are still told at once, and the result is
// visible at once); the owner then has the callbacks run where they belong with
// CoreBase::RunDeferredCallbacks (a process executor: in its manager thread, when a thread waiting
// in Result() took the reply). A callback added to such a future meanwhile waits with the others,
// so callbacks still run in the order they were added.
class DeferCallbacks {
 public:
  explicit DeferCallbacks(std::vector<std::shared_ptr<CoreBase>>* deferred);
  ~DeferCallbacks();
  DeferCallbacks(const DeferCallbacks&) = delete;
  DeferCallbacks& operator=(const DeferCallbacks&) = delete;

 private:
  std::vector<std::shared_ptr<CoreBase>>* const previous_;
};

// The shared state of a Future<T>: CoreBase plus the value.
template <typename T>
class Core final : public CoreBase {
 public:
  using CoreBase::CoreBase;

  // Finishes the future with `result` (CPython's set_result / set_exception): a value or the
  // task's failure. kFailedPrecondition naming the task when already finished or cancelled.
  absl::Status SetResult(absl::StatusOr<T> result) {
    if (!result.ok()) return SetFailure(result.status());
    std::vector<Callback> callbacks;
    {
      MutexLock lock(&mu_);
      if (absl::Status s = CheckFinishableLocked("SetResult"); !s.ok()) return s;
      value_.emplace(*std::move(result));
      callbacks = FinishLocked(absl::OkStatus());
    }
    Settled(callbacks);
    return absl::OkStatus();
  }

  absl::StatusOr<T> Result(absl::Duration timeout) const {
    const Deadline deadline = Deadline::After(timeout);
    Assist(deadline);
    MutexLock lock(&mu_);
    AwaitDoneLocked(deadline);
    absl::Status s = OutcomeLocked("Future::Result", timeout);
    if (!s.ok()) return s;
    return *value_;
  }

 private:
  std::optional<T> value_ ABSL_GUARDED_BY(mu_);
};

template <typename R>
struct ResultTraits {
  using Type = std::remove_cvref_t<R>;
};
template <>
struct ResultTraits<void> {
  using Type = Unit;
};
template <>
struct ResultTraits<absl::Status> {
  using Type = Unit;
};
template <typename T>
struct ResultTraits<absl::StatusOr<T>> {
  using Type = T;
};

}  // namespace futures_internal

// The result type of a task returning R (see the header comment).
template <typename R>
using FutureResultOf = typename futures_internal::ResultTraits<std::remove_cvref_t<R>>::Type;

// A Future whose T does not matter: what WaitFutures and AsCompleted take when futures of several
// types are waited for together (a Future<T> converts to it; compare it with the typed ones to
// tell which finished). Equality and hashing are by identity: two handles are equal when they
// refer to the same task.
//
// An empty AnyFuture or Future (default-constructed or moved-from) behaves as a done future that
// failed with kFailedPrecondition "Future: empty (default-constructed or moved-from)".
class AnyFuture {
 public:
  AnyFuture() = default;

  // Finished or cancelled.
  bool Done() const { return core_ == nullptr || core_->Done(); }
  // Started and not done.
  bool Running() const { return core_ != nullptr && core_->Running(); }
  bool Cancelled() const { return core_ != nullptr && core_->Cancelled(); }
  // Cancels a task that has not started: true then (and when already cancelled), false when it is
  // running or done. Done callbacks run in this thread when it succeeds.
  bool Cancel() const { return core_ != nullptr && core_->Cancel(); }
  // CPython's exception(timeout): waits at most `timeout` for the task, then OK when it succeeded,
  // else its failure; kCancelled when cancelled; kDeadlineExceeded "Future::Status: <task> not
  // done after <timeout>" when it is still not done (Done() tells a timeout from a task that
  // failed with kDeadlineExceeded).
  absl::Status Status(absl::Duration timeout = absl::InfiniteDuration()) const {
    if (core_ == nullptr) return EmptyError();
    return core_->Status(timeout, "Future::Status");
  }
  // fn(future) once the future is done (see the header comment).
  void AddDoneCallback(std::function<void(const AnyFuture&)> fn) const;
  // The task's name in messages ("ThreadPoolExecutor task 3"); "" when empty.
  const std::string& description() const;

  friend bool operator==(const AnyFuture& a, const AnyFuture& b) { return a.core_ == b.core_; }
  template <typename H>
  friend H AbslHashValue(H h, const AnyFuture& f) {
    return H::combine(std::move(h), f.core_.get());
  }

  // For executors and wait.h: the shared state (nullptr when empty).
  const std::shared_ptr<futures_internal::CoreBase>& core() const { return core_; }

 protected:
  explicit AnyFuture(std::shared_ptr<futures_internal::CoreBase> core) : core_(std::move(core)) {}
  static absl::Status EmptyError();

  std::shared_ptr<futures_internal::CoreBase> core_;
};

template <typename T>
class Future : public AnyFuture {
 public:
  using value_type = T;

  Future() = default;
  // The consumer's handle to `core` (executors make the core, keep it to finish the task, and hand
  // out Futures).
  explicit Future(std::shared_ptr<futures_internal::Core<T>> core) : AnyFuture(std::move(core)) {}

  // CPython's result(timeout): waits at most `timeout`, then the value or the task's failure;
  // kCancelled when cancelled; kDeadlineExceeded "Future::Result: <task> not done after
  // <timeout>" when still not done.
  absl::StatusOr<T> Result(absl::Duration timeout = absl::InfiniteDuration()) const {
    if (core_ == nullptr) return EmptyError();
    return static_cast<const futures_internal::Core<T>&>(*core_).Result(timeout);
  }

  // fn(future) once the future is done (see the header comment).
  void AddDoneCallback(std::function<void(const Future<T>&)> fn) const {
    if (core_ == nullptr) {
      RunEmptyCallback([&fn] { fn(Future<T>()); });
      return;
    }
    core_->AddDoneCallback(
        [fn = std::move(fn)](const std::shared_ptr<futures_internal::CoreBase>& core) {
          fn(Future<T>(std::static_pointer_cast<futures_internal::Core<T>>(core)));
        });
  }

 private:
  // Runs fn as a callback of an empty future (caught and reported like any callback).
  static void RunEmptyCallback(const std::function<void()>& fn);
};

// A future that is already done with `failure` (non-OK), named `description`: what an executor
// returns when it cannot take a task (CPython raises at submit instead).
template <typename T>
Future<T> MakeFailedFuture(std::string description, absl::Status failure) {
  auto core = std::make_shared<futures_internal::Core<T>>(std::move(description));
  core->SetFailure(std::move(failure)).IgnoreError();  // a fresh core is pending
  return Future<T>(std::move(core));
}

namespace futures_internal {
// Runs fn, catching and reporting what it throws as a done callback of `description`.
void RunCallbackReporting(const std::function<void()>& fn, absl::string_view description);
}  // namespace futures_internal

template <typename T>
void Future<T>::RunEmptyCallback(const std::function<void()>& fn) {
  futures_internal::RunCallbackReporting(fn, "an empty Future");
}

}  // namespace mp

#endif  // MP_FUTURES_FUTURE_H_
