// Copyright 2026 The mp Authors.

#include "sync/rlock.h"

#include <new>

#include "absl/strings/str_cat.h"

namespace mp {

absl::StatusOr<RLock> RLock::Create(ShmDomain domain) {
  absl::StatusOr<ShmSegment> segment = ShmSegment::Create(domain, sizeof(State));
  if (!segment.ok()) return segment.status();
  return Create(*std::move(segment));
}

absl::StatusOr<RLock> RLock::Create(ShmSegment segment) {
  absl::StatusOr<uint64_t> offset = Place(segment, kTag, [](State& s) {
    s.word.store(0, std::memory_order_relaxed);
    s.count.store(0, std::memory_order_relaxed);
  });
  if (!offset.ok()) return offset.status();
  return RLock(std::move(segment), *offset);
}

absl::StatusOr<RLock> RLock::FromHandle(const ShmHandle& handle) {
  absl::Status status = Check(handle, kTag, "RLock");
  if (!status.ok()) return status;
  return RLock(handle.segment, handle.offset);
}

absl::StatusOr<bool> RLock::Acquire(bool block, absl::Duration timeout) {
  if (timeout != absl::InfiniteDuration()) {
    absl::Status args = CheckAcquireArgs(block, timeout, "RLock::Acquire");
    if (!args.ok()) return args;
  }
  const pid_t tid = CurrentThreadId();
  std::atomic<uint32_t>& word = state_->word;
  if (OwnerOf(word.load(std::memory_order_relaxed)) == tid) {
    const uint32_t count = state_->count.load(std::memory_order_relaxed);
    if (count == UINT32_MAX) {
      return absl::FailedPreconditionError("RLock::Acquire: recursion depth overflow");
    }
    state_->count.store(count + 1, std::memory_order_relaxed);
    return true;
  }
  if (OwnerTryLock(word, tid)) {
    state_->count.store(1, std::memory_order_relaxed);
    return true;
  }
  const OwnerLockOutcome outcome = OwnerLock(word, tid, block, Deadline::After(timeout));
  switch (outcome.result) {
    case OwnerLockResult::kAcquired:
      state_->count.store(1, std::memory_order_relaxed);
      return true;
    case OwnerLockResult::kRecovered:
      state_->count.store(1, std::memory_order_relaxed);
      return OwnerDiedError("RLock::Acquire", outcome.dead_owner);
    case OwnerLockResult::kTimedOut:
      return false;
  }
  return false;
}

absl::Status RLock::Release() {
  const pid_t tid = CurrentThreadId();
  const pid_t owner = OwnerOf(state_->word.load(std::memory_order_relaxed));
  if (owner != tid) {
    return absl::FailedPreconditionError(
        owner == 0
            ? std::string("RLock::Release: cannot release un-acquired lock (it is free)")
            : absl::StrCat("RLock::Release: cannot release un-acquired lock (owned by thread ",
                           owner, ", caller is thread ", tid, ")"));
  }
  const uint32_t count = state_->count.load(std::memory_order_relaxed);
  if (count > 1) {
    state_->count.store(count - 1, std::memory_order_relaxed);
    return absl::OkStatus();
  }
  state_->count.store(0, std::memory_order_relaxed);
  OwnerUnlock(state_->word);
  return absl::OkStatus();
}

bool RLock::IsOwned() const {
  return OwnerOf(state_->word.load(std::memory_order_relaxed)) == CurrentThreadId();
}

pid_t RLock::Owner() const { return OwnerOf(state_->word.load(std::memory_order_relaxed)); }

uint32_t RLock::Count() const {
  return Owner() == 0 ? 0 : state_->count.load(std::memory_order_relaxed);
}

absl::StatusOr<uint32_t> RLock::ReleaseAll() {
  const pid_t tid = CurrentThreadId();
  const pid_t owner = OwnerOf(state_->word.load(std::memory_order_relaxed));
  if (owner != tid) {
    return absl::FailedPreconditionError(absl::StrCat(
        "RLock: cannot release un-acquired lock (owner thread ", owner, ", caller ", tid, ")"));
  }
  const uint32_t count = state_->count.load(std::memory_order_relaxed);
  state_->count.store(0, std::memory_order_relaxed);
  OwnerUnlock(state_->word);
  return count;
}

absl::Status RLock::AcquireRestore(uint32_t count) {
  const pid_t tid = CurrentThreadId();
  const OwnerLockOutcome outcome = OwnerLock(state_->word, tid, true, Deadline::Never());
  state_->count.store(count, std::memory_order_relaxed);
  if (outcome.result == OwnerLockResult::kRecovered) {
    return OwnerDiedError("RLock (re-acquired by Condition::Wait)", outcome.dead_owner);
  }
  return absl::OkStatus();
}

}  // namespace mp
