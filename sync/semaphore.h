// Copyright 2026 The mp Authors.
//
// sync/semaphore.h — mp::Semaphore and mp::BoundedSemaphore, process-shared counting semaphores:
// Python's multiprocessing.Semaphore(value) and BoundedSemaphore(value).
//
// Acquire takes one unit, waiting while the value is 0; Release gives one back and wakes one
// waiter. A BoundedSemaphore refuses a Release that would raise the value above its initial value
// (CPython raises ValueError "semaphore or lock released too many times"; mp returns
// kFailedPrecondition, like every "released more than acquired" misuse in mp).
//
//   absl::StatusOr<mp::Semaphore> slots = mp::Semaphore::Create(mp::ShmDomain::kFork, 3);
//   absl::StatusOr<bool> got = slots->Acquire(true, absl::Milliseconds(100));
//   if (got.ok() && *got) { ... use one of 3 slots ...; slots->Release().IgnoreError(); }
//
//   Acquire(block, timeout)  true: took one unit; false: none available (non-blocking) or timeout;
//                            kInvalidArgument: timeout < 0 or a timeout with block == false.
//   Release()                kFailedPrecondition: bounded and already at the initial value, or the
//                            value would exceed kSemaphoreMax.
//   GetValue()               the current value (a snapshot).
//
// A semaphore has no owner, so the death of a process that took a unit cannot be detected (nor in
// CPython); every wait has a timeout variant. A waiter that dies while sleeping leaves nothing
// behind but a stale waiter count, which only costs a spare FUTEX_WAKE.
//
// Thread-safety: cheap copyable handles; all methods are safe from any thread. One cache line.

#ifndef MP_SYNC_SEMAPHORE_H_
#define MP_SYNC_SEMAPHORE_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sync/lockable.h"
#include "sync/shm.h"

namespace mp {

// Largest value a semaphore holds (SEM_VALUE_MAX on Linux).
inline constexpr int64_t kSemaphoreMax = 0x7fffffff;

struct alignas(64) SemaphoreState {
  std::atomic<uint32_t> tag;      // kTag or kBoundedTag once initialized
  std::atomic<uint32_t> value;    // futex word
  std::atomic<uint32_t> waiters;  // threads that may be sleeping on `value`
  uint32_t max_value;             // the initial value if bounded, else kSemaphoreMax
};

class Semaphore : public ShmObject<SemaphoreState>, public Lockable<Semaphore> {
 public:
  using State = SemaphoreState;
  static_assert(sizeof(State) == 64);
  static constexpr uint32_t kTag = 0x6d53706d;         // "mpSm"
  static constexpr uint32_t kBoundedTag = 0x6d42706d;  // "mpBm"

  // kInvalidArgument unless 0 <= value <= kSemaphoreMax.
  static absl::StatusOr<Semaphore> Create(ShmDomain domain, int64_t value = 1);
  static absl::StatusOr<Semaphore> Create(ShmSegment segment, int64_t value = 1);
  // kInvalidArgument if the handle does not point at a Semaphore (a BoundedSemaphore is refused).
  static absl::StatusOr<Semaphore> FromHandle(const ShmHandle& handle);

  // An empty Semaphore: the state a decode target starts in, before a real one is assigned to it.
  // Only assignment and destruction are allowed on it.
  Semaphore() = default;
  Semaphore(const Semaphore&) = default;
  Semaphore& operator=(const Semaphore&) = default;
  Semaphore(Semaphore&&) = default;
  Semaphore& operator=(Semaphore&&) = default;

  absl::StatusOr<bool> Acquire(bool block = true,
                               absl::Duration timeout = absl::InfiniteDuration());
  absl::Status Release();
  int64_t GetValue() const;

 protected:
  Semaphore(ShmSegment segment, uint64_t offset) : ShmObject(std::move(segment), offset) {}
  static absl::StatusOr<uint64_t> Init(ShmSegment& segment, int64_t value, bool bounded);
};

// A Semaphore whose Release fails (kFailedPrecondition) instead of exceeding the initial value.
class BoundedSemaphore : public Semaphore {
 public:
  // An empty BoundedSemaphore (a decode target); see Semaphore().
  BoundedSemaphore() = default;
  static absl::StatusOr<BoundedSemaphore> Create(ShmDomain domain, int64_t value = 1);
  static absl::StatusOr<BoundedSemaphore> Create(ShmSegment segment, int64_t value = 1);
  // kInvalidArgument if the handle does not point at a BoundedSemaphore.
  static absl::StatusOr<BoundedSemaphore> FromHandle(const ShmHandle& handle);

  // The initial value, which Release never exceeds.
  int64_t MaxValue() const { return state_->max_value; }

 private:
  BoundedSemaphore(ShmSegment segment, uint64_t offset) : Semaphore(std::move(segment), offset) {}
};

// A Semaphore travels to another process as its segment's descriptor and offset (sync/shm.h
// ShmObjectCodec): a transferable one to any child, a fork-domain one to forked children only.
template <>
struct Codec<Semaphore> : ShmObjectCodec<Semaphore, "Semaphore"> {};

// A BoundedSemaphore travels to another process as its segment's descriptor and offset (sync/shm.h
// ShmObjectCodec): a transferable one to any child, a fork-domain one to forked children only.
template <>
struct Codec<BoundedSemaphore> : ShmObjectCodec<BoundedSemaphore, "BoundedSemaphore"> {};

}  // namespace mp

#endif  // MP_SYNC_SEMAPHORE_H_
