// Copyright 2026 The mp Authors.

#include "sync/semaphore.h"

#include <new>

#include "absl/strings/str_cat.h"
#include "sync/futex.h"

namespace mp {

absl::StatusOr<uint64_t> Semaphore::Init(ShmSegment& segment, int64_t value, bool bounded) {
  const char* what = bounded ? "BoundedSemaphore::Create" : "Semaphore::Create";
  if (value < 0 || value > kSemaphoreMax) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": value must be in [0, ", kSemaphoreMax, "], got ", value));
  }
  return Place(segment, bounded ? kBoundedTag : kTag, [&](State& s) {
    s.value.store(static_cast<uint32_t>(value), std::memory_order_relaxed);
    s.waiters.store(0, std::memory_order_relaxed);
    s.max_value = bounded ? static_cast<uint32_t>(value) : static_cast<uint32_t>(kSemaphoreMax);
  });
}

absl::StatusOr<Semaphore> Semaphore::Create(ShmDomain domain, int64_t value) {
  absl::StatusOr<ShmSegment> segment = ShmSegment::Create(domain, sizeof(State));
  if (!segment.ok()) return segment.status();
  return Create(*std::move(segment), value);
}

absl::StatusOr<Semaphore> Semaphore::Create(ShmSegment segment, int64_t value) {
  absl::StatusOr<uint64_t> offset = Init(segment, value, /*bounded=*/false);
  if (!offset.ok()) return offset.status();
  return Semaphore(std::move(segment), *offset);
}

absl::StatusOr<Semaphore> Semaphore::FromHandle(const ShmHandle& handle) {
  absl::Status status = Check(handle, kTag, "Semaphore");
  if (!status.ok()) return status;
  return Semaphore(handle.segment, handle.offset);
}

absl::StatusOr<BoundedSemaphore> BoundedSemaphore::Create(ShmDomain domain, int64_t value) {
  absl::StatusOr<ShmSegment> segment = ShmSegment::Create(domain, sizeof(State));
  if (!segment.ok()) return segment.status();
  return Create(*std::move(segment), value);
}

absl::StatusOr<BoundedSemaphore> BoundedSemaphore::Create(ShmSegment segment, int64_t value) {
  absl::StatusOr<uint64_t> offset = Init(segment, value, /*bounded=*/true);
  if (!offset.ok()) return offset.status();
  return BoundedSemaphore(std::move(segment), *offset);
}

absl::StatusOr<BoundedSemaphore> BoundedSemaphore::FromHandle(const ShmHandle& handle) {
  absl::Status status = Check(handle, kBoundedTag, "BoundedSemaphore");
  if (!status.ok()) return status;
  return BoundedSemaphore(handle.segment, handle.offset);
}

namespace {

// Takes one unit if the value is positive.
bool TryTake(std::atomic<uint32_t>& value) {
  // seq_cst: after a waiter published itself in `waiters`, this read is its half of the Dekker
  // pair.
  uint32_t v = value.load(std::memory_order_seq_cst);
  while (v > 0) {
    if (value.compare_exchange_weak(v, v - 1, std::memory_order_acquire,
                                    std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<bool> Semaphore::Acquire(bool block, absl::Duration timeout) {
  if (timeout != absl::InfiniteDuration()) {
    absl::Status args = CheckAcquireArgs(block, timeout, "Semaphore::Acquire");
    if (!args.ok()) return args;
  }
  std::atomic<uint32_t>& value = state_->value;
  if (TryTake(value)) return true;
  if (!block) return false;
  for (int i = 0; i < kSpinIterations; ++i) {
    SpinPause();
    if (TryTake(value)) return true;
  }
  const Deadline deadline = Deadline::After(timeout);
  // Dekker with Release: we publish `waiters` then read `value`; Release publishes `value` then
  // reads `waiters` (both seq_cst), so one of us sees the other. FUTEX_WAIT re-checks value == 0
  // itself.
  state_->waiters.fetch_add(1, std::memory_order_seq_cst);
  bool taken = false;
  for (;;) {
    if (TryTake(value)) {
      taken = true;
      break;
    }
    if (FutexWait(&value, 0, deadline) == FutexWaitResult::kTimedOut) {
      taken = TryTake(value);
      break;
    }
  }
  state_->waiters.fetch_sub(1, std::memory_order_relaxed);
  return taken;
}

absl::Status Semaphore::Release() {
  std::atomic<uint32_t>& value = state_->value;
  const uint32_t max = state_->max_value;
  uint32_t v = value.load(std::memory_order_relaxed);
  do {
    if (v >= max) {
      const bool bounded = state_->tag.load(std::memory_order_relaxed) == kBoundedTag;
      return absl::FailedPreconditionError(
          bounded ? absl::StrCat("BoundedSemaphore::Release: released too many times (value ", v,
                                 " is already the initial value ", max, ")")
                  : absl::StrCat("Semaphore::Release: value ", v, " would exceed ", max));
    }
  } while (
      !value.compare_exchange_weak(v, v + 1, std::memory_order_seq_cst, std::memory_order_relaxed));
  if (state_->waiters.load(std::memory_order_seq_cst) > 0) FutexWake(&value, 1);
  return absl::OkStatus();
}

int64_t Semaphore::GetValue() const { return state_->value.load(std::memory_order_relaxed); }

}  // namespace mp
