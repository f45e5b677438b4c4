// Copyright 2026 The mp Authors.

#include "sync/event.h"

#include <new>

#include "sync/futex.h"

namespace mp {

absl::StatusOr<Event> Event::Create(ShmDomain domain) {
  absl::StatusOr<ShmSegment> segment = ShmSegment::Create(domain, sizeof(State));
  if (!segment.ok()) return segment.status();
  return Create(*std::move(segment));
}

absl::StatusOr<Event> Event::Create(ShmSegment segment) {
  absl::StatusOr<uint64_t> offset = Place(segment, kTag, [](State& s) {
    s.flag.store(0, std::memory_order_relaxed);
    s.waiters.store(0, std::memory_order_relaxed);
  });
  if (!offset.ok()) return offset.status();
  return Event(std::move(segment), *offset);
}

absl::StatusOr<Event> Event::FromHandle(const ShmHandle& handle) {
  absl::Status status = Check(handle, kTag, "Event");
  if (!status.ok()) return status;
  return Event(handle.segment, handle.offset);
}

void Event::Set() {
  // seq_cst on both sides (here: flag then waiters; Wait: waiters then flag) so that either the
  // setter sees the sleeper or the sleeper sees the flag.
  if (state_->flag.exchange(1, std::memory_order_seq_cst) == 0 &&
      state_->waiters.load(std::memory_order_seq_cst) > 0) {
    FutexWake(&state_->flag, kFutexWakeAll);
  }
}

void Event::Clear() { state_->flag.store(0, std::memory_order_release); }

bool Event::IsSet() const { return state_->flag.load(std::memory_order_acquire) != 0; }

absl::StatusOr<bool> Event::Wait(absl::Duration timeout) {
  std::atomic<uint32_t>& flag = state_->flag;
  if (timeout != absl::InfiniteDuration()) {
    absl::Status args = CheckTimeout(timeout, "Event::Wait");
    if (!args.ok()) return args;
  }
  if (flag.load(std::memory_order_acquire) != 0) return true;
  if (timeout == absl::ZeroDuration()) return false;
  // About 13 us of spinning (512 pauses of ~25 ns here): long enough to catch a partner that is
  // running on another core, short enough not to starve it when the cores are oversubscribed.
  for (int i = 0; i < kSpinIterations * 2; ++i) {
    SpinPause();
    if (flag.load(std::memory_order_acquire) != 0) return true;
  }
  const Deadline deadline = Deadline::After(timeout);
  state_->waiters.fetch_add(1, std::memory_order_seq_cst);
  bool set = false;
  for (;;) {
    if (flag.load(std::memory_order_seq_cst) != 0) {
      set = true;
      break;
    }
    if (FutexWait(&flag, 0, deadline) == FutexWaitResult::kTimedOut) {
      set = flag.load(std::memory_order_acquire) != 0;
      break;
    }
  }
  state_->waiters.fetch_sub(1, std::memory_order_relaxed);
  return set;
}

}  // namespace mp
