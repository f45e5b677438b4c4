// Copyright 2026 The mp Authors.

#include "futures/future.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/exception.h"

namespace mp {
namespace futures_internal {

namespace {
// The list of the innermost DeferCallbacks alive in this thread (null: none).
thread_local std::vector<std::shared_ptr<CoreBase>>* t_deferred = nullptr;
}  // namespace

DeferCallbacks::DeferCallbacks(std::vector<std::shared_ptr<CoreBase>>* deferred)
    : previous_(t_deferred) {
  t_deferred = deferred;
}

DeferCallbacks::~DeferCallbacks() { t_deferred = previous_; }

void RunCallbackReporting(const std::function<void()>& fn, absl::string_view description) {
  try {
    fn();
  } catch (...) {
    // CPython logs the exception and goes on with the next callback; mp has no logger, so the
    // report goes to stderr in one write.
    const std::string report = absl::StrCat("mp::Future: a done callback of ", description,
                                            " threw ", CurrentExceptionDescription(), "\n");
    std::fwrite(report.data(), 1, report.size(), stderr);
  }
}

CoreBase::CoreBase(std::string description) : description_(std::move(description)) {}

CoreBase::~CoreBase() = default;

bool CoreBase::Done() const {
  bool done;
  {
    MutexLock lock(&mu_);
    done = state_ == State::kCancelled || state_ == State::kFinished;
  }
  if (!done && hooks_ != nullptr) hooks_->Observed();
  return done;
}

bool CoreBase::Running() const {
  {
    MutexLock lock(&mu_);
    if (state_ != State::kPending) return state_ == State::kRunning;
  }
  return hooks_ != nullptr && hooks_->Started();
}

bool CoreBase::Cancelled() const {
  MutexLock lock(&mu_);
  return state_ == State::kCancelled;
}

bool CoreBase::Cancel() {
  {
    MutexLock lock(&mu_);
    if (state_ == State::kCancelled) return true;
    if (state_ != State::kPending) return false;
  }
  // The executor is asked without the future's lock: it may be finishing this very future (which
  // takes the lock) while holding its own.
  if (hooks_ != nullptr && !hooks_->TakeBack()) return false;
  std::vector<Callback> callbacks;
  {
    MutexLock lock(&mu_);
    if (state_ == State::kCancelled) return true;  // a concurrent Cancel won
    if (state_ != State::kPending) return false;   // started meanwhile
    state_ = State::kCancelled;
    for (Waiter* w : waiters_) w->Notify(this, Completion::kCancelled);
    waiters_.clear();
    callbacks = std::move(callbacks_);
    callbacks_.clear();
  }
  Settled(callbacks);
  return true;
}

bool CoreBase::AwaitDoneLocked(Deadline deadline) const {
  return mu_.Await(cv_, deadline, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return state_ == State::kCancelled || state_ == State::kFinished;
  });
}

absl::Status CoreBase::OutcomeLocked(absl::string_view caller, absl::Duration timeout) const {
  switch (state_) {
    case State::kFinished:
      return failure_;
    case State::kCancelled:
      return absl::CancelledError(absl::StrCat(caller, ": ", description_, " was cancelled"));
    case State::kPending:
    case State::kRunning:
      break;
  }
  return absl::DeadlineExceededError(
      absl::StrCat(caller, ": ", description_, " not done after ", absl::FormatDuration(timeout)));
}

bool CoreBase::DoneNoHooks() const {
  MutexLock lock(&mu_);
  return state_ == State::kCancelled || state_ == State::kFinished;
}

void CoreBase::Assist(Deadline deadline) const {
  if (hooks_ != nullptr && !DoneNoHooks()) hooks_->AssistWait(deadline);
}

absl::Status CoreBase::Status(absl::Duration timeout, absl::string_view caller) const {
  const Deadline deadline = Deadline::After(timeout);
  Assist(deadline);
  MutexLock lock(&mu_);
  AwaitDoneLocked(deadline);
  return OutcomeLocked(caller, timeout);
}

void CoreBase::AddDoneCallback(Callback fn) {
  bool pending;
  {
    MutexLock lock(&mu_);
    pending = state_ != State::kCancelled && state_ != State::kFinished;
    if (pending || callbacks_deferred_) {
      callbacks_.push_back(std::move(fn));
      if (!pending) return;  // waits with the deferred ones
    }
  }
  if (pending) {
    if (hooks_ != nullptr) hooks_->Observed();
    return;
  }
  std::vector<Callback> now;
  now.push_back(std::move(fn));
  RunCallbacks(now);
}

void CoreBase::Settled(std::vector<Callback>& callbacks) {
  cv_.notify_all();
  RunCallbacks(callbacks);
}

void CoreBase::RunCallbacks(std::vector<Callback>& callbacks) {
  if (callbacks.empty()) return;
  const std::shared_ptr<CoreBase> self = shared_from_this();
  for (Callback& fn : callbacks) {
    RunCallbackReporting([&fn, &self] { fn(self); }, description_);
  }
  callbacks.clear();
}

std::optional<Completion> CoreBase::AddWaiter(Waiter* waiter) {
  {
    MutexLock lock(&mu_);
    switch (state_) {
      case State::kFinished:
        return failure_.ok() ? Completion::kSucceeded : Completion::kFailed;
      case State::kCancelled:
        return Completion::kCancelled;
      case State::kPending:
      case State::kRunning:
        break;
    }
    waiters_.push_back(waiter);
  }
  if (hooks_ != nullptr) hooks_->Observed();
  return std::nullopt;
}

void CoreBase::RemoveWaiter(Waiter* waiter) {
  MutexLock lock(&mu_);
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), waiter), waiters_.end());
}

size_t CoreBase::WaiterCountForTesting() const {
  MutexLock lock(&mu_);
  return waiters_.size();
}

bool CoreBase::SetRunningOrNotifyCancel() {
  MutexLock lock(&mu_);
  if (state_ != State::kPending) return false;
  state_ = State::kRunning;
  return true;
}

void CoreBase::SetExecutorHooks(std::shared_ptr<ExecutorHooks> hooks) { hooks_ = std::move(hooks); }

void CoreBase::RunDeferredCallbacks() {
  std::vector<Callback> callbacks;
  {
    MutexLock lock(&mu_);
    callbacks.swap(callbacks_);
    callbacks_deferred_ = false;
  }
  RunCallbacks(callbacks);
}

absl::Status CoreBase::CheckFinishableLocked(absl::string_view caller) const {
  if (state_ == State::kPending || state_ == State::kRunning) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("Future::", caller, ": ", description_, " is already ",
                   state_ == State::kCancelled ? "cancelled" : "finished"));
}

std::vector<CoreBase::Callback> CoreBase::FinishLocked(absl::Status failure) {
  state_ = State::kFinished;
  failure_ = std::move(failure);
  const Completion how = failure_.ok() ? Completion::kSucceeded : Completion::kFailed;
  for (Waiter* w : waiters_) w->Notify(this, how);
  waiters_.clear();
  if (t_deferred != nullptr && !callbacks_.empty()) {
    callbacks_deferred_ = true;  // callbacks_ stays: RunDeferredCallbacks takes it
    t_deferred->push_back(shared_from_this());
    return {};
  }
  std::vector<Callback> out = std::move(callbacks_);
  callbacks_.clear();
  return out;
}

absl::Status CoreBase::SetFailure(absl::Status failure) {
  if (failure.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Future::SetFailure: ", description_, ": the failure must not be OK"));
  }
  std::vector<Callback> callbacks;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckFinishableLocked("SetFailure"); !s.ok()) return s;
    callbacks = FinishLocked(std::move(failure));
  }
  Settled(callbacks);
  return absl::OkStatus();
}

}  // namespace futures_internal

absl::Status AnyFuture::EmptyError() {
  return absl::FailedPreconditionError("Future: empty (default-constructed or moved-from)");
}

void AnyFuture::AddDoneCallback(std::function<void(const AnyFuture&)> fn) const {
  if (core_ == nullptr) {
    futures_internal::RunCallbackReporting([&fn] { fn(AnyFuture()); }, "an empty Future");
    return;
  }
  core_->AddDoneCallback(
      [fn = std::move(fn)](const std::shared_ptr<futures_internal::CoreBase>& core) {
        fn(AnyFuture(core));
      });
}

const std::string& AnyFuture::description() const {
  static const std::string* const kEmpty = new std::string();
  return core_ == nullptr ? *kEmpty : core_->description();
}

}  // namespace mp
