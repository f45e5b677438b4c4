// Copyright 2026 The mp Authors.

#include "sync/lock.h"

#include <new>

#include "absl/strings/str_cat.h"

namespace mp {

absl::StatusOr<Lock> Lock::Create(ShmDomain domain) {
  absl::StatusOr<ShmSegment> segment = ShmSegment::Create(domain, sizeof(State));
  if (!segment.ok()) return segment.status();
  return Create(*std::move(segment));
}

absl::StatusOr<Lock> Lock::Create(ShmSegment segment) {
  absl::StatusOr<uint64_t> offset =
      Place(segment, kTag, [](State& s) { s.word.store(0, std::memory_order_relaxed); });
  if (!offset.ok()) return offset.status();
  return Lock(std::move(segment), *offset);
}

absl::StatusOr<Lock> Lock::FromHandle(const ShmHandle& handle) {
  absl::Status status = Check(handle, kTag, "Lock");
  if (!status.ok()) return status;
  return Lock(handle.segment, handle.offset);
}

absl::StatusOr<bool> Lock::AcquireSlow(bool block, absl::Duration timeout) {
  if (timeout != absl::InfiniteDuration()) {
    absl::Status args = CheckAcquireArgs(block, timeout, "Lock::Acquire");
    if (!args.ok()) return args;
  }
  const pid_t pid = CurrentProcessId();
  if (OwnerTryLock(state_->word, pid)) return true;
  const OwnerLockOutcome outcome =
      OwnerLock(state_->word, pid, block, Deadline::After(timeout), kScope);
  switch (outcome.result) {
    case OwnerLockResult::kAcquired:
      return true;
    case OwnerLockResult::kRecovered:
      return OwnerDiedError("Lock::Acquire", outcome.dead_owner, kScope);
    case OwnerLockResult::kTimedOut:
      return false;
  }
  return false;
}

absl::Status Lock::ReleasedUnlocked() const {
  return absl::FailedPreconditionError(
      absl::StrCat("Lock::Release: release unlocked lock (offset ", offset_, ")"));
}

bool Lock::Locked() const { return state_->word.load(std::memory_order_relaxed) != 0; }

pid_t Lock::Owner() const { return OwnerOf(state_->word.load(std::memory_order_relaxed)); }

}  // namespace mp
