// Copyright 2026 The mp Authors.

#include "sync/condition.h"

#include <climits>
#include <new>

#include "absl/strings/str_cat.h"
#include "sync/futex.h"

namespace mp {
namespace {

constexpr uint32_t kFree = 0;
constexpr uint32_t kClaimed = 1;  // being filled in by a registering waiter (who holds the lock)
constexpr uint32_t kWaiting = 2;
constexpr uint32_t kNotified = 3;

// Tickets wrap; compare them as a window.
bool TicketBefore(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

}  // namespace

absl::StatusOr<Condition> Condition::Create(ShmDomain domain) {
  absl::StatusOr<ShmSegment> segment =
      ShmSegment::Create(domain, sizeof(RLock::State) + sizeof(State));
  if (!segment.ok()) return segment.status();
  return Create(*std::move(segment));
}

absl::StatusOr<Condition> Condition::Create(ShmSegment segment) {
  absl::StatusOr<RLock> lock = RLock::Create(segment);
  if (!lock.ok()) return lock.status();
  return CreateIn(std::move(segment), *std::move(lock));
}

absl::StatusOr<Condition> Condition::Create(const Lock& lock) {
  return CreateIn(lock.handle().segment, lock);
}

absl::StatusOr<Condition> Condition::Create(const RLock& lock) {
  return CreateIn(lock.handle().segment, lock);
}

absl::StatusOr<Condition> Condition::CreateIn(ShmSegment segment, std::variant<Lock, RLock> lock) {
  const bool is_lock = std::holds_alternative<Lock>(lock);
  const uint64_t lock_offset =
      is_lock ? std::get<Lock>(lock).handle().offset : std::get<RLock>(lock).handle().offset;
  absl::StatusOr<uint64_t> offset = Place(segment, kTag, [&](State& s) {
    s.lock_kind = is_lock ? kLockKind : kRLockKind;
    s.lock_offset = lock_offset;
    s.next_ticket.store(0, std::memory_order_relaxed);
    for (Slot& slot : s.slots) slot.word.store(kFree, std::memory_order_relaxed);
  });
  if (!offset.ok()) {
    return absl::Status(
        offset.status().code(),
        absl::StrCat("Condition::Create: no room beside its lock: ", offset.status().message()));
  }
  return Condition(std::move(segment), *offset, std::move(lock));
}

absl::StatusOr<Condition> Condition::FromHandle(const ShmHandle& handle) {
  absl::Status status = Check(handle, kTag, "Condition");
  if (!status.ok()) return status;
  const auto* state = static_cast<const State*>(handle.segment.At(handle.offset));
  const ShmHandle lock_handle{handle.segment, state->lock_offset};
  if (state->lock_kind == kLockKind) {
    absl::StatusOr<Lock> lock = Lock::FromHandle(lock_handle);
    if (!lock.ok()) return lock.status();
    return Condition(handle.segment, handle.offset, *std::move(lock));
  }
  if (state->lock_kind == kRLockKind) {
    absl::StatusOr<RLock> lock = RLock::FromHandle(lock_handle);
    if (!lock.ok()) return lock.status();
    return Condition(handle.segment, handle.offset, *std::move(lock));
  }
  return absl::InvalidArgumentError(absl::StrCat("Condition::FromHandle: offset ", handle.offset,
                                                 " has unknown lock kind ", state->lock_kind));
}

absl::StatusOr<bool> Condition::Acquire(bool block, absl::Duration timeout) {
  return std::visit([&](auto& lock) { return lock.Acquire(block, timeout); }, lock_);
}

absl::Status Condition::Release() {
  return std::visit([](auto& lock) { return lock.Release(); }, lock_);
}

absl::Status Condition::CheckOwned(absl::string_view what) const {
  // A Lock records its holder's process, an RLock its owner thread (sync/futex.h OwnerScope).
  const bool by_process = std::holds_alternative<Lock>(lock_);
  const char* holder = by_process ? "process " : "thread ";
  const pid_t me = by_process ? CurrentProcessId() : CurrentThreadId();
  const pid_t owner = std::visit([](const auto& lock) { return lock.Owner(); }, lock_);
  if (owner != me) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": cannot ", what == "Condition::Wait" ? "wait" : "notify", " on un-acquired lock (",
        owner == 0 ? std::string("it is free") : absl::StrCat("held by ", holder, owner),
        ", caller is ", holder, me, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Condition::Wait(absl::Duration timeout) {
  absl::Status status = CheckTimeout(timeout, "Condition::Wait");
  if (!status.ok()) return status;
  status = CheckOwned("Condition::Wait");
  if (!status.ok()) return status;

  // Register while holding the lock: a Notify (which needs the lock) sees us from now on.
  Slot* slot = nullptr;
  for (Slot& candidate : state_->slots) {
    uint32_t expected = kFree;
    if (candidate.word.load(std::memory_order_relaxed) == kFree &&
        candidate.word.compare_exchange_strong(expected, kClaimed, std::memory_order_acquire,
                                               std::memory_order_relaxed)) {
      slot = &candidate;
      break;
    }
  }
  if (slot == nullptr) {
    // Reclaim slots that dead threads left behind: notified but never freed, still waiting, or
    // (since we hold the lock, nobody else can be registering) claimed by a registrant that died.
    for (Slot& candidate : state_->slots) {
      uint32_t seen = candidate.word.load(std::memory_order_acquire);
      if (seen == kFree) continue;
      if (seen != kClaimed &&
          IsThreadAlive(static_cast<pid_t>(candidate.tid.load(std::memory_order_relaxed)))) {
        continue;
      }
      if (candidate.word.compare_exchange_strong(seen, kClaimed, std::memory_order_acquire,
                                                 std::memory_order_relaxed)) {
        slot = &candidate;
        break;
      }
    }
  }
  if (slot == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("Condition::Wait: all ", kConditionMaxWaiters, " waiter slots are in use"));
  }
  slot->ticket.store(state_->next_ticket.fetch_add(1, std::memory_order_relaxed),
                     std::memory_order_relaxed);
  slot->tid.store(static_cast<uint32_t>(CurrentThreadId()), std::memory_order_relaxed);
  slot->word.store(kWaiting, std::memory_order_release);

  uint32_t depth = 0;
  if (auto* rlock = std::get_if<RLock>(&lock_)) {
    absl::StatusOr<uint32_t> saved = rlock->ReleaseAll();
    if (saved.ok()) depth = *saved;  // cannot fail: CheckOwned passed and only we can release it
  } else {
    std::get<Lock>(lock_).Release().IgnoreError();  // cannot fail: we hold it
  }

  const Deadline deadline = Deadline::After(timeout);
  bool notified = false;
  for (;;) {
    if (slot->word.load(std::memory_order_acquire) == kNotified) {
      notified = true;
      break;
    }
    if (FutexWait(&slot->word, kWaiting, deadline) == FutexWaitResult::kTimedOut) {
      uint32_t expected = kWaiting;
      // Either we withdraw (timed out) or a Notify got there first (notified): never both.
      notified = !slot->word.compare_exchange_strong(expected, kFree, std::memory_order_acq_rel,
                                                     std::memory_order_acquire);
      break;
    }
  }
  if (notified) slot->word.store(kFree, std::memory_order_release);

  absl::Status reacquired;
  if (auto* rlock = std::get_if<RLock>(&lock_)) {
    reacquired = rlock->AcquireRestore(depth);
  } else {
    absl::StatusOr<bool> got = std::get<Lock>(lock_).Acquire();
    if (!got.ok()) reacquired = got.status();
  }
  if (!reacquired.ok()) return reacquired;
  return notified;
}

absl::StatusOr<bool> Condition::WaitFor(absl::FunctionRef<bool()> predicate,
                                        absl::Duration timeout) {
  absl::Status status = CheckTimeout(timeout, "Condition::WaitFor");
  if (!status.ok()) return status;
  const Deadline deadline = Deadline::After(timeout);
  bool result = predicate();
  while (!result) {
    absl::Duration remaining = absl::InfiniteDuration();
    if (!deadline.IsNever()) {
      remaining = absl::Nanoseconds(deadline.ns() - MonotonicNowNs());
      if (remaining <= absl::ZeroDuration()) break;
    }
    absl::StatusOr<bool> waited = Wait(remaining);
    if (!waited.ok()) return waited.status();
    result = predicate();
  }
  return result;
}

absl::Status Condition::Notify(int n) {
  if (n < 0) {
    return absl::InvalidArgumentError(absl::StrCat("Condition::Notify: n must be >= 0, got ", n));
  }
  absl::Status status = CheckOwned("Condition::Notify");
  if (!status.ok()) return status;
  int woken = 0;
  while (woken < n) {
    Slot* oldest = nullptr;
    uint32_t oldest_ticket = 0;
    for (Slot& slot : state_->slots) {
      if (slot.word.load(std::memory_order_acquire) != kWaiting) continue;
      const uint32_t ticket = slot.ticket.load(std::memory_order_relaxed);
      if (oldest == nullptr || TicketBefore(ticket, oldest_ticket)) {
        oldest = &slot;
        oldest_ticket = ticket;
      }
    }
    if (oldest == nullptr) break;
    uint32_t expected = kWaiting;
    if (!IsThreadAlive(static_cast<pid_t>(oldest->tid.load(std::memory_order_relaxed)))) {
      // The waiter died; free its slot and do not count it.
      oldest->word.compare_exchange_strong(expected, kFree, std::memory_order_acq_rel);
      continue;
    }
    if (oldest->word.compare_exchange_strong(expected, kNotified, std::memory_order_acq_rel)) {
      FutexWake(&oldest->word, 1);
      ++woken;
    }
    // else: it timed out just now; look for the next one.
  }
  return absl::OkStatus();
}

absl::Status Condition::NotifyAll() { return Notify(INT_MAX); }

int Condition::NWaiting() const {
  int n = 0;
  for (const Slot& slot : state_->slots) {
    if (slot.word.load(std::memory_order_acquire) == kWaiting) ++n;
  }
  return n;
}

}  // namespace mp
