// Copyright 2026 The mp Authors.
//
// pool/async_result.h — the handles Pool's asynchronous calls return: AsyncResult (ApplyAsync,
// MapAsync, StarmapAsync) with its optional callbacks, and ImapIterator (Imap, ImapUnordered).

#ifndef MP_POOL_ASYNC_RESULT_H_
#define MP_POOL_ASYNC_RESULT_H_

#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "base/exception.h"
#include "base/mutex.h"
#include "pool/job.h"
#include "serialize/codec.h"

namespace mp {

// CPython's apply_async / map_async / starmap_async callback and error_callback. Once the call's
// result is ready, exactly one runs, in the pool's result thread (the engine's manager thread,
// which serves every call: keep callbacks short and do not wait in them for the pool):
// callback(result) when every task succeeded, else error_callback(the failure Get returns).
// Get, Wait and Ready wait for it to have run, as CPython's get() does. A callback that throws is
// reported, not swallowed, and never harms the pool: Get then returns kUnknown "Pool: the callback
// of ApplyAsync<ns::Fn> threw std::runtime_error: boom" (for error_callback, followed by the call's
// own failure) and Successful() is false. Neither runs when the submission itself failed (the
// AsyncResult holds that failure, as CPython raises it from apply_async).
template <typename R>
struct AsyncCallbacks {
  std::function<void(const R&)> callback;
  std::function<void(const absl::Status&)> error_callback;
};

namespace pool_internal {

template <typename R>
inline constexpr bool kIsVector = false;
template <typename E>
inline constexpr bool kIsVector<std::vector<E>> = true;

// The result of a done job: one value per item (`many`, R a vector), else item 0's.
template <typename R>
absl::StatusOr<R> CollectResult(const Job& job, bool many) {
  if constexpr (kIsVector<R>) {
    if (many) return DecodeResults<typename R::value_type>(job);
  }
  return ItemResult<R>(job, 0);
}

// Whether an AsyncResult's callbacks have run, and how that went. Thread-safe.
class CallbacksRun {
 public:
  // The callbacks ran; `failure` is their own failure (OK if none).
  void Finish(absl::Status failure) {
    {
      MutexLock lock(&mu_);
      failure_ = std::move(failure);
      ran_ = true;
    }
    cv_.notify_all();
  }
  // True once they ran; false when `deadline` passes first.
  bool Wait(Deadline deadline) const {
    MutexLock lock(&mu_);
    return mu_.Await(cv_, deadline, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ran_; });
  }
  bool Ran() const {
    MutexLock lock(&mu_);
    return ran_;
  }
  absl::Status failure() const {
    MutexLock lock(&mu_);
    return failure_;
  }

 private:
  mutable Mutex mu_;
  mutable std::condition_variable cv_;
  bool ran_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
};

// Arranges for `callbacks` to run once `job` is done (in the thread that finishes it; at once, in
// this thread, if it is done already). nullptr when neither callback is set.
template <typename R>
std::shared_ptr<CallbacksRun> AttachCallbacks(const std::shared_ptr<Job>& job, bool many,
                                              AsyncCallbacks<R> callbacks) {
  if (!callbacks.callback && !callbacks.error_callback) return nullptr;
  auto run = std::make_shared<CallbacksRun>();
  Job::DoneHook hook = [j = job.get(), many, callbacks = std::move(callbacks), run]() mutable {
    // The hook runs inside one of the job's methods (or below, with `job` held): *j is alive.
    absl::StatusOr<R> result = CollectResult<R>(*j, many);
    absl::Status failure;
    try {
      if (result.ok()) {
        if (callbacks.callback) callbacks.callback(*result);
      } else if (callbacks.error_callback) {
        callbacks.error_callback(result.status());
      }
    } catch (...) {
      try {
        failure = absl::UnknownError(absl::StrCat(
            "Pool: the ", result.ok() ? "callback" : "error_callback", " of ", j->what(), " threw ",
            CurrentExceptionDescription(), result.ok() ? "" : "; the call failed with ",
            result.ok() ? "" : result.status().ToString()));
      } catch (...) {
        failure = absl::UnknownError("Pool: a callback threw");  // formatting ran out of memory
      }
    }
    run->Finish(std::move(failure));
  };
  if (!job->AddDoneHook(std::move(hook))) std::move(hook)();
  return run;
}

}  // namespace pool_internal

// The pending result of ApplyAsync (R) or MapAsync / StarmapAsync (std::vector<R>).
template <typename R>
class AsyncResult {
 public:
  AsyncResult() = default;

  // The result; waits at most `timeout` (kDeadlineExceeded then). A failed task's status, or a
  // callback's failure (AsyncCallbacks).
  absl::StatusOr<R> Get(absl::Duration timeout = absl::InfiniteDuration()) const {
    if (job_ == nullptr) return absl::FailedPreconditionError("AsyncResult: empty");
    if (!status_.ok()) return status_;
    const Deadline deadline = Deadline::After(timeout);
    if (!job_->WaitAll(deadline)) return TimeoutError(timeout);
    if (callbacks_ != nullptr) {
      if (!callbacks_->Wait(deadline)) return TimeoutError(timeout);
      if (absl::Status f = callbacks_->failure(); !f.ok()) return f;
    }
    return pool_internal::CollectResult<R>(*job_, many_);
  }
  // Waits until the result is ready (its callbacks run) or `timeout` passes; returns Ready().
  bool Wait(absl::Duration timeout = absl::InfiniteDuration()) const {
    if (job_ == nullptr || !status_.ok()) return true;
    const Deadline deadline = Deadline::After(timeout);
    return job_->WaitAll(deadline) && (callbacks_ == nullptr || callbacks_->Wait(deadline));
  }
  bool Ready() const {
    return job_ == nullptr || !status_.ok() ||
           (job_->Ready() && (callbacks_ == nullptr || callbacks_->Ran()));
  }
  // Whether every task (and its callback) succeeded; kFailedPrecondition before Ready() (CPython's
  // ValueError).
  absl::StatusOr<bool> Successful() const {
    if (!Ready()) {
      return absl::FailedPreconditionError("AsyncResult::Successful: the result is not ready");
    }
    return status_.ok() && job_ != nullptr && job_->FirstFailure().ok() &&
           (callbacks_ == nullptr || callbacks_->failure().ok());
  }

 private:
  friend class Pool;
  AsyncResult(std::shared_ptr<pool_internal::Job> job, absl::Status status, bool many,
              std::shared_ptr<pool_internal::CallbacksRun> callbacks = nullptr)
      : job_(std::move(job)),
        status_(std::move(status)),
        many_(many),
        callbacks_(std::move(callbacks)) {}
  absl::Status TimeoutError(absl::Duration timeout) const {
    return absl::DeadlineExceededError(absl::StrCat(
        "AsyncResult::Get: ", job_->what(), " not ready after ", absl::FormatDuration(timeout)));
  }

  std::shared_ptr<pool_internal::Job> job_;
  absl::Status status_;  // a submission that failed
  bool many_ = false;    // one result per item (MapAsync), else one result (ApplyAsync)
  std::shared_ptr<pool_internal::CallbacksRun> callbacks_;  // null: no callbacks
};

// Results of Imap (in submission order) or ImapUnordered (in completion order).
template <typename R>
class ImapIterator {
 public:
  ImapIterator() = default;

  // The next result (or that task's error). kOutOfRange after the last; kDeadlineExceeded when the
  // next result is not ready within `timeout` (call again later).
  absl::StatusOr<R> Next(absl::Duration timeout = absl::InfiniteDuration()) {
    if (!status_.ok()) return status_;
    if (job_ == nullptr || position_ >= job_->size()) {
      return absl::OutOfRangeError("ImapIterator: no more results");
    }
    const Deadline deadline = Deadline::After(timeout);
    size_t index = position_;
    if (unordered_) {
      std::optional<size_t> next = job_->WaitCompleted(position_, deadline);
      if (!next.has_value()) return TimeoutError(timeout);
      index = *next;
    } else if (!job_->WaitItem(index, deadline)) {
      return TimeoutError(timeout);  // the position stays: call again later
    }
    ++position_;
    return pool_internal::ItemResult<R>(*job_, index);
  }
  // Number of results.
  size_t size() const { return job_ == nullptr ? 0 : job_->size(); }

 private:
  friend class Pool;
  ImapIterator(std::shared_ptr<pool_internal::Job> job, bool unordered, absl::Status status)
      : job_(std::move(job)), unordered_(unordered), status_(std::move(status)) {}
  absl::Status TimeoutError(absl::Duration timeout) const {
    const std::string which =
        unordered_ ? std::string("no further result") : absl::StrCat("task ", position_);
    return absl::DeadlineExceededError(absl::StrCat("ImapIterator::Next: ", job_->what(), ": ",
                                                    which, " not ready after ",
                                                    absl::FormatDuration(timeout)));
  }

  std::shared_ptr<pool_internal::Job> job_;
  bool unordered_ = false;
  absl::Status status_;
  size_t position_ = 0;
};

}  // namespace mp

#endif  // MP_POOL_ASYNC_RESULT_H_
