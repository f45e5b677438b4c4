// Copyright 2026 The mp Authors.
//
// sync/condition.h — mp::Condition, a process-shared condition variable over an mp::Lock or
// mp::RLock: Python's multiprocessing.Condition(lock=None).
//
// The caller holds the condition's lock around Wait and Notify. Wait releases the lock (completely,
// for an RLock held recursively), sleeps until notified or the timeout, then re-acquires the lock
// (without a timeout, as CPython does) and restores the recursion depth.
//
//   absl::StatusOr<mp::Condition> cond = mp::Condition::Create(mp::ShmDomain::kFork);  // own RLock
//   // consumer:
//   cond->Acquire().IgnoreError();
//   absl::StatusOr<bool> ready = cond->WaitFor([&] { return queue_len() > 0; }, absl::Seconds(1));
//   ... *ready is false after the timeout ...
//   cond->Release().IgnoreError();
//   // producer:
//   cond->Acquire().IgnoreError(); push(); cond->Notify().IgnoreError();
//   cond->Release().IgnoreError();
//
// Exact wake counts: each waiter registers a slot (ticket, thread id, futex word) while it still
// holds the lock; Notify(n) moves the n oldest waiting slots to "notified" (a CAS that a timing-out
// waiter races against, so a waiter either timed out or was notified, never both) and wakes each
// one. So Notify(n) wakes exactly min(n, waiters) waiters, in arrival order, whether they are
// threads of this process or of others, and never one that started waiting after the Notify. A
// waiter whose thread has died is skipped (its slot freed) and not counted. At most
// kConditionMaxWaiters threads wait at once; when all slots are taken, slots of dead threads are
// reclaimed, and if there are none, one more waiter gets kResourceExhausted.
//
//   Wait(timeout)          true: notified; false: timeout (CPython's return value)
//   WaitFor(pred, timeout) the predicate's last value (CPython's wait_for)
//   Notify(n), NotifyAll() OK
//   any of the above       kFailedPrecondition if the caller does not hold the lock ("cannot wait
//   on
//                          un-acquired lock"); kInvalidArgument for timeout < 0 or n < 0;
//                          kAborted + IsOwnerDied when re-acquiring took the lock over from a
//                          holder that died -- the caller holds the lock, as after a normal return.
//
// The lock and the condition live in the same segment (Create(lock) allocates there), so a handle
// (segment, offset) is enough to re-open both in another process.
//
// Thread-safety: a cheap copyable handle; all methods are safe from any thread. Shared state: one
// cache line of header plus 16 bytes per waiter slot (sizeof(State) == 2112).

#ifndef MP_SYNC_CONDITION_H_
#define MP_SYNC_CONDITION_H_

#include <atomic>
#include <cstdint>
#include <variant>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sync/lock.h"
#include "sync/rlock.h"
#include "sync/shm.h"

namespace mp {

inline constexpr int kConditionMaxWaiters = 128;

struct ConditionSlot {
  std::atomic<uint32_t> word;    // futex word: kFree, kWaiting, kNotified
  std::atomic<uint32_t> ticket;  // arrival order; written under the lock
  std::atomic<uint32_t> tid;     // the waiting thread
  uint32_t unused;
};

struct alignas(64) ConditionState {
  std::atomic<uint32_t> tag;          // kTag once initialized
  uint32_t lock_kind;                 // kLockKind or kRLockKind
  uint64_t lock_offset;               // the lock, in the same segment
  std::atomic<uint32_t> next_ticket;  // written under the lock
  alignas(64) ConditionSlot slots[kConditionMaxWaiters];
};

class Condition : public ShmObject<ConditionState> {
 public:
  using Slot = ConditionSlot;
  using State = ConditionState;
  static_assert(sizeof(Slot) == 16);
  static_assert(sizeof(State) == 64 + 16 * kConditionMaxWaiters);
  static constexpr uint32_t kTag = 0x7643706d;  // "mpCv"
  static constexpr uint32_t kLockKind = 1;
  static constexpr uint32_t kRLockKind = 2;

  // A condition with a new RLock (CPython's default), both in a new segment / in `segment`.
  static absl::StatusOr<Condition> Create(ShmDomain domain);
  static absl::StatusOr<Condition> Create(ShmSegment segment);
  // A condition over an existing lock, allocated in the lock's segment.
  static absl::StatusOr<Condition> Create(const Lock& lock);
  static absl::StatusOr<Condition> Create(const RLock& lock);
  // Re-opens the condition (and its lock) at `handle`.
  static absl::StatusOr<Condition> FromHandle(const ShmHandle& handle);

  // An empty Condition: the state a decode target starts in, before a real one is assigned to it.
  // Only assignment and destruction are allowed on it.
  Condition() = default;
  Condition(const Condition&) = default;
  Condition& operator=(const Condition&) = default;
  Condition(Condition&&) = default;
  Condition& operator=(Condition&&) = default;

  // The underlying lock's Acquire/Release.
  absl::StatusOr<bool> Acquire(bool block = true,
                               absl::Duration timeout = absl::InfiniteDuration());
  absl::Status Release();

  absl::StatusOr<bool> Wait(absl::Duration timeout = absl::InfiniteDuration());
  absl::StatusOr<bool> WaitFor(absl::FunctionRef<bool()> predicate,
                               absl::Duration timeout = absl::InfiniteDuration());
  absl::Status Notify(int n = 1);
  absl::Status NotifyAll();

  // Waiters registered and not yet notified or timed out (a snapshot; exact under the lock).
  int NWaiting() const;

  // The lock: a Lock or an RLock.
  const std::variant<Lock, RLock>& lock() const { return lock_; }

 private:
  Condition(ShmSegment segment, uint64_t offset, std::variant<Lock, RLock> lock)
      : ShmObject(std::move(segment), offset), lock_(std::move(lock)) {}
  static absl::StatusOr<Condition> CreateIn(ShmSegment segment, std::variant<Lock, RLock> lock);
  // kFailedPrecondition naming `what` unless the calling thread holds the lock.
  absl::Status CheckOwned(absl::string_view what) const;

  std::variant<Lock, RLock> lock_;
};

// A Condition travels to another process as its segment's descriptor and offset (sync/shm.h
// ShmObjectCodec): a transferable one to any child, a fork-domain one to forked children only.
template <>
struct Codec<Condition> : ShmObjectCodec<Condition, "Condition"> {};

}  // namespace mp

#endif  // MP_SYNC_CONDITION_H_
