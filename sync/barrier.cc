// Copyright 2026 The mp Authors.

#include "sync/barrier.h"

#include <algorithm>
#include <new>

#include "absl/strings/str_cat.h"

namespace mp {
namespace {

constexpr int32_t kFilling = 0;
constexpr int32_t kDraining = 1;
constexpr int32_t kResetting = -1;
constexpr int32_t kBroken = -2;

enum BrokenReason : int32_t {
  kNotBroken = 0,
  kTimeout = 1,
  kAbort = 2,
  kActionFailed = 3,
  kWaiterDied = 4,
  kReset = 5,
  kMutexOwnerDied = 6,
};

constexpr absl::Duration kFirstSlice = absl::Milliseconds(5);
constexpr absl::Duration kLongestSlice = absl::Milliseconds(80);

}  // namespace

absl::StatusOr<Barrier> Barrier::Create(ShmDomain domain, int parties, Action action,
                                        absl::Duration timeout) {
  absl::StatusOr<ShmSegment> segment = ShmSegment::Create(domain, sizeof(State));
  if (!segment.ok()) return segment.status();
  return Create(*std::move(segment), parties, std::move(action), timeout);
}

absl::StatusOr<Barrier> Barrier::Create(ShmSegment segment, int parties, Action action,
                                        absl::Duration timeout) {
  if (parties < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("Barrier::Create: parties must be >= 1, got ", parties));
  }
  absl::Status status = CheckTimeout(timeout, "Barrier::Create");
  if (!status.ok()) return status;
  absl::StatusOr<uint64_t> offset = Place(segment, kTag, [&](State& s) {
    s.mutex.store(0, std::memory_order_relaxed);
    s.seq.store(0, std::memory_order_relaxed);
    s.observers.store(0, std::memory_order_relaxed);
    s.parties = static_cast<uint32_t>(parties);
    s.count = 0;
    s.phase = kFilling;
    s.timeout_ns = timeout == absl::InfiniteDuration() ? -1 : absl::ToInt64Nanoseconds(timeout);
    s.broken_reason = kNotBroken;
    s.dead_tid = 0;
    s.generation = 0;
    s.resets = 0;
    for (auto& waiter : s.waiters) waiter.store(0, std::memory_order_relaxed);
  });
  if (!offset.ok()) return offset.status();
  return Barrier(std::move(segment), *offset, std::move(action));
}

absl::StatusOr<Barrier> Barrier::FromHandle(const ShmHandle& handle, Action action) {
  absl::Status status = Check(handle, kTag, "Barrier");
  if (!status.ok()) return status;
  return Barrier(handle.segment, handle.offset, std::move(action));
}

void Barrier::LockState() const {
  const pid_t tid = CurrentThreadId();
  if (OwnerTryLock(state_->mutex, tid)) return;
  const OwnerLockOutcome outcome = OwnerLock(state_->mutex, tid, /*block=*/true, Deadline::Never());
  if (outcome.result == OwnerLockResult::kRecovered) {
    // A thread died between reading and writing the fields: the generation cannot be trusted to add
    // up, so break it, and drop the dead thread (and any other dead waiter) from the count.
    if (state_->phase != kBroken) state_->dead_tid = static_cast<uint32_t>(outcome.dead_owner);
    BreakLocked(kMutexOwnerDied);
    ReapDeadWaiters();
  }
}

void Barrier::UnlockState() const { OwnerUnlock(state_->mutex); }

void Barrier::Broadcast() const {
  state_->seq.fetch_add(1, std::memory_order_release);
  FutexWake(&state_->seq, kFutexWakeAll);
  NotifyObserversLocked();
}

void Barrier::NotifyObserversLocked() const {
  // Observers set the sleeping bit under the mutex before they sleep, so without it nobody needs
  // the system call. The counter makes every notification a new value: an observer that read the
  // word before it (and has not slept yet) cannot match a later observer's word.
  const uint32_t word = state_->observers.load(std::memory_order_relaxed);
  if ((word & kBarrierObserverSleeping) == 0) return;
  state_->observers.store((word + 1) & ~kBarrierObserverSleeping, std::memory_order_release);
  FutexWake(&state_->observers, kFutexWakeAll);
}

void Barrier::BreakLocked(int32_t reason) const {
  if (state_->phase != kBroken) state_->broken_reason = reason;
  state_->phase = kBroken;
  Broadcast();
}

absl::Status Barrier::BrokenErrorLocked(absl::string_view what) const {
  std::string why;
  switch (state_->broken_reason) {
    case kTimeout:
      why = "a waiter timed out";
      break;
    case kAbort:
      why = "Abort() was called";
      break;
    case kActionFailed:
      why = "the barrier's action failed";
      break;
    case kWaiterDied:
      why = absl::StrCat("waiting thread ", state_->dead_tid, " died");
      break;
    case kReset:
      why = "Reset() was called while waiting";
      break;
    case kMutexOwnerDied:
      why = absl::StrCat("thread ", state_->dead_tid, " died while updating the barrier");
      break;
    default:
      why = "broken";
      break;
  }
  return absl::AbortedError(absl::StrCat(what, ": the barrier is broken: ", why));
}

pid_t Barrier::ReapDeadWaiters() const {
  pid_t dead = 0;
  for (auto& waiter : state_->waiters) {
    uint32_t tid = waiter.load(std::memory_order_relaxed);
    if (tid == 0 || IsThreadAlive(static_cast<pid_t>(tid))) continue;
    if (!waiter.compare_exchange_strong(tid, 0, std::memory_order_relaxed)) continue;
    --state_->count;
    dead = static_cast<pid_t>(tid);
  }
  if (dead == 0) return 0;
  if (state_->phase == kFilling) {
    // It had arrived, but it will never arrive for the next generation: break now, not at timeout.
    state_->dead_tid = static_cast<uint32_t>(dead);
    BreakLocked(kWaiterDied);
  }
  if (state_->count == 0 && (state_->phase == kDraining || state_->phase == kResetting)) {
    state_->phase = kFilling;
  }
  Broadcast();
  return dead;
}

bool Barrier::WaitForChange(Deadline deadline, absl::Duration& slice) const {
  return SleepLocked(state_->seq, state_->seq.load(std::memory_order_acquire), deadline, slice);
}

bool Barrier::SleepLocked(const std::atomic<uint32_t>& word, uint32_t seen, Deadline deadline,
                          absl::Duration& slice) const {
  UnlockState();
  const FutexWaitResult result = FutexWait(&word, seen, deadline.CappedAfter(slice));
  LockState();
  if (result != FutexWaitResult::kTimedOut || word.load(std::memory_order_acquire) != seen) {
    return true;  // something changed: the caller re-checks its condition
  }
  if (deadline.Expired()) return false;
  ReapDeadWaiters();
  slice = std::min(slice * 2, kLongestSlice);
  return true;
}

void Barrier::ExitLocked(uint32_t tid) const {
  for (auto& waiter : state_->waiters) {
    uint32_t expected = tid;
    if (waiter.compare_exchange_strong(expected, 0, std::memory_order_relaxed)) break;
  }
  --state_->count;
  if (state_->count == 0 && (state_->phase == kDraining || state_->phase == kResetting)) {
    state_->phase = kFilling;
    Broadcast();
  }
}

absl::StatusOr<int> Barrier::Wait() {
  LockState();
  const int64_t ns = state_->timeout_ns;
  UnlockState();
  const absl::Duration timeout = ns < 0 ? absl::InfiniteDuration() : absl::Nanoseconds(ns);
  return WaitUntil(Deadline::After(timeout), timeout);
}

absl::StatusOr<int> Barrier::Wait(absl::Duration timeout) {
  absl::Status status = CheckTimeout(timeout, "Barrier::Wait");
  if (!status.ok()) return status;
  return WaitUntil(Deadline::After(timeout), timeout);
}

absl::StatusOr<int> Barrier::WaitUntil(Deadline deadline, absl::Duration timeout) {
  const uint32_t tid = static_cast<uint32_t>(CurrentThreadId());
  absl::Duration slice = kFirstSlice;
  LockState();
  // Let the previous generation drain (or a reset finish) first.
  while (state_->phase == kDraining || state_->phase == kResetting) {
    if (!WaitForChange(deadline, slice)) {
      BreakLocked(kTimeout);
      UnlockState();
      return absl::AbortedError(
          absl::StrCat("Barrier::Wait: timed out after ", absl::FormatDuration(timeout),
                       " while the previous generation drained; the barrier is now broken"));
    }
  }
  if (state_->phase == kBroken) {
    absl::Status broken = BrokenErrorLocked("Barrier::Wait");
    UnlockState();
    return broken;
  }
  const int index = state_->count++;
  for (auto& waiter : state_->waiters) {
    uint32_t expected = 0;
    if (waiter.compare_exchange_strong(expected, tid, std::memory_order_relaxed)) break;
  }
  absl::Status result;
  if (static_cast<uint32_t>(index) + 1 == state_->parties) {
    absl::Status action = action_ ? action_() : absl::OkStatus();
    if (action.ok()) {
      state_->phase = kDraining;
      ++state_->generation;
      Broadcast();
    } else {
      BreakLocked(kActionFailed);
      result = action;
    }
  } else {
    NotifyObserversLocked();
    while (state_->phase == kFilling) {
      if (!WaitForChange(deadline, slice)) {
        BreakLocked(kTimeout);
        result = absl::AbortedError(absl::StrCat(
            "Barrier::Wait: timed out after ", absl::FormatDuration(timeout), " with ",
            state_->count, " of ", state_->parties, " parties waiting; the barrier is now broken"));
        break;
      }
    }
    if (result.ok() && state_->phase < 0) {
      result = state_->phase == kResetting
                   ? absl::AbortedError(
                         "Barrier::Wait: the barrier is broken: Reset() was called "
                         "while waiting")
                   : BrokenErrorLocked("Barrier::Wait");
    }
  }
  ExitLocked(tid);
  UnlockState();
  if (!result.ok()) return result;
  return index;
}

void Barrier::Abort() {
  LockState();
  BreakLocked(kAbort);
  UnlockState();
}

void Barrier::Reset() {
  LockState();
  // Waiters of the current generation are sent away, or a break is repaired: what
  // WaitForWaiting counted is gone.
  if (state_->phase == kBroken || (state_->phase == kFilling && state_->count > 0)) {
    ++state_->resets;
  }
  if (state_->count > 0) {
    if (state_->phase == kFilling || state_->phase == kBroken) state_->phase = kResetting;
  } else {
    state_->phase = kFilling;
  }
  state_->broken_reason = kNotBroken;
  state_->dead_tid = 0;
  Broadcast();
  UnlockState();
}

bool Barrier::Broken() const {
  LockState();
  const bool broken = state_->phase == kBroken;
  UnlockState();
  return broken;
}

int Barrier::NWaiting() const {
  LockState();
  const int n = state_->phase == kFilling ? state_->count : 0;
  UnlockState();
  return n;
}

int Barrier::Parties() const { return static_cast<int>(state_->parties); }

absl::Status Barrier::WaitForWaiting(int n, absl::Duration timeout) const {
  absl::Status status = CheckTimeout(timeout, "Barrier::WaitForWaiting");
  if (!status.ok()) return status;
  const uint32_t parties = state_->parties;
  if (n < 0 || static_cast<uint32_t>(n) > parties) {
    return absl::InvalidArgumentError(absl::StrCat("Barrier::WaitForWaiting: n must be in [0, ",
                                                   parties, "] (the parties), got ", n));
  }
  const Deadline deadline = Deadline::After(timeout);
  absl::Duration slice = kFirstSlice;
  LockState();
  const uint32_t generation = state_->generation;
  const uint32_t resets = state_->resets;
  while (true) {
    if (state_->generation != generation) break;  // a whole generation arrived meanwhile
    if (state_->phase == kBroken) {
      status = BrokenErrorLocked("Barrier::WaitForWaiting");
      break;
    }
    if (state_->resets != resets) {
      status = absl::AbortedError(
          "Barrier::WaitForWaiting: Reset() was called while waiting; the parties it counted "
          "were sent away");
      break;
    }
    if (state_->phase == kFilling && state_->count >= n) break;
    const uint32_t seen =
        state_->observers.fetch_or(kBarrierObserverSleeping, std::memory_order_relaxed) |
        kBarrierObserverSleeping;
    if (!SleepLocked(state_->observers, seen, deadline, slice)) {
      status = absl::DeadlineExceededError(
          absl::StrCat("Barrier::WaitForWaiting: timed out after ", absl::FormatDuration(timeout),
                       " waiting for ", n, " of ", parties, " parties; ",
                       state_->phase == kFilling ? state_->count : 0, " waiting"));
      break;
    }
  }
  UnlockState();
  return status;
}

}  // namespace mp
