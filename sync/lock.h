// Copyright 2026 The mp Authors.
//
// sync/lock.h — mp::Lock, a process-shared non-recursive lock: Python's multiprocessing.Lock.
//
// Any thread of any process that maps the lock's segment may acquire it. As in CPython, a Lock is
// not owned: any thread or process may Release() a held lock (use RLock for ownership). Acquiring a
// lock the caller already holds blocks (until the timeout), also as in CPython.
//
//   absl::StatusOr<mp::Lock> lock = mp::Lock::Create(mp::ShmDomain::kFork);
//   if (!lock.ok()) return lock.status();
//   // ... fork children that share *lock ...
//   absl::StatusOr<bool> got = lock->Acquire(/*block=*/true, absl::Seconds(5));
//   if (mp::IsOwnerDied(got.status())) { /* we hold it; repair what the dead holder protected */ }
//   else if (!got.ok()) return got.status();        // bad arguments
//   else if (!*got) return absl::DeadlineExceededError("lock busy for 5s");
//   ... critical section ...
//   lock->Release().IgnoreError();  // cannot fail here: we hold it
//
// Ownership and death of the holder (better than CPython, which blocks forever). A Lock belongs to
// the PROCESS that acquired it, not to a thread: the lock word holds the holder's process id
// (sync/futex.h, "owner word", OwnerScope::kProcess). A waiter that sleeps for a slice (1 ms,
// doubling to 64 ms) without the holder changing, or that is about to give up, checks whether the
// holder's process is alive (/proc/<pid>/stat: gone, or a zombie with no thread left, means dead --
// SIGKILL included, reaped or not). If it is dead the waiter takes the lock over and Acquire
// returns kAborted with IsOwnerDied(status) == true: the caller HOLDS the lock, must release it
// like any acquired lock, and should treat the data the dead holder protected as possibly
// half-updated. The lock works normally afterwards. This choice (liveness check, not the kernel
// robust list) is explained in sync/futex.h; it detects a dead holder within a few milliseconds of
// a waiter's first sleep, and a non-blocking or timed acquire never reports "busy" for a lock whose
// holder is already dead.
//
// The rule: a Lock is abandoned when the process that acquired it has died, and only then. A thread
// that acquires a Lock and exits while its process lives on leaves the lock held, as in CPython:
// another thread of that process may still release it (and any process may, see above), so nobody
// takes it over -- waiters wait (until their timeout) like for any held lock. (An RLock, which
// belongs to a thread, is abandoned when its owning thread exits; see rlock.h.)
//
// Acquire(block, timeout), CPython's acquire(block=True, timeout=-1):
//   true                 acquired
//   false                not acquired: non-blocking and held, or `timeout` passed
//   kAborted+IsOwnerDied acquired, from a holder that died (see above)
//   kInvalidArgument     timeout < 0, or block == false with a timeout
// Release(): kFailedPrecondition if the lock is not held ("release unlocked lock").
//
// Thread-safety: a Lock object is a cheap handle (copyable; copies refer to the same shared lock)
// and all methods may be called concurrently from any thread. The shared state is one cache line.

#ifndef MP_SYNC_LOCK_H_
#define MP_SYNC_LOCK_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sync/futex.h"
#include "sync/lockable.h"
#include "sync/shm.h"

namespace mp {

// What a Lock is in shared memory: one cache line.
struct alignas(64) LockState {
  std::atomic<uint32_t> tag;   // kTag once initialized
  std::atomic<uint32_t> word;  // owner word (sync/futex.h)
};

class Lock : public ShmObject<LockState>, public Lockable<Lock> {
 public:
  using State = LockState;
  static_assert(sizeof(State) == 64);
  static constexpr uint32_t kTag = 0x6b4c706d;  // "mpLk"

  // A lock in its own new segment of `domain`.
  static absl::StatusOr<Lock> Create(ShmDomain domain);
  // A lock allocated from `segment` (kResourceExhausted when it is full).
  static absl::StatusOr<Lock> Create(ShmSegment segment);
  // Re-opens the lock at `handle`, e.g. in another process after ShmSegment::Attach.
  // kInvalidArgument if the handle does not point at a Lock.
  static absl::StatusOr<Lock> FromHandle(const ShmHandle& handle);

  // An empty Lock: the state a decode target starts in, before a real one is assigned to it. Only
  // assignment and destruction are allowed on it.
  Lock() = default;
  Lock(const Lock&) = default;
  Lock& operator=(const Lock&) = default;
  Lock(Lock&&) = default;
  Lock& operator=(Lock&&) = default;

  // See the table in the header comment. The uncontended case (a free lock, no timeout to check)
  // is inline: one CAS; everything else is AcquireSlow.
  absl::StatusOr<bool> Acquire(bool block = true,
                               absl::Duration timeout = absl::InfiniteDuration()) {
    if (timeout == absl::InfiniteDuration() && OwnerTryLock(state_->word, CurrentProcessId())) {
      return true;
    }
    return AcquireSlow(block, timeout);
  }
  absl::Status Release() {
    if (OwnerUnlock(state_->word) != 0) return absl::OkStatus();
    return ReleasedUnlocked();
  }
  // True while anybody holds the lock.
  bool Locked() const;
  // Process id of the holder, 0 if free (the holder may since have died).
  pid_t Owner() const;

  // Whose death abandons a Lock (sync/futex.h): its holder's process.
  static constexpr OwnerScope kScope = OwnerScope::kProcess;

 private:
  Lock(ShmSegment segment, uint64_t offset) : ShmObject(std::move(segment), offset) {}
  absl::StatusOr<bool> AcquireSlow(bool block, absl::Duration timeout);
  absl::Status ReleasedUnlocked() const;  // the kFailedPrecondition of releasing a free lock
};

// A Lock travels to another process as its segment's descriptor and offset (sync/shm.h
// ShmObjectCodec): a transferable one to any child, a fork-domain one to forked children only.
template <>
struct Codec<Lock> : ShmObjectCodec<Lock, "Lock"> {};

}  // namespace mp

#endif  // MP_SYNC_LOCK_H_
