// Copyright 2026 The mp Authors.
//
// sync/rlock.h — mp::RLock, a process-shared recursive lock: Python's multiprocessing.RLock.
//
// The owner is one thread of one process (identified by its thread id, which is unique
// system-wide). The owner may Acquire again; each Acquire needs a matching Release, and the lock is
// free when the count returns to zero. Release by anybody but the owner is kFailedPrecondition. A
// forked child is a different thread, so it does not own its parent's RLock.
//
//   absl::StatusOr<mp::RLock> rlock = mp::RLock::Create(mp::ShmDomain::kTransferable);
//   absl::StatusOr<bool> got = rlock->Acquire();      // count 1
//   got = rlock->Acquire();                          // count 2, same thread
//   rlock->Release().IgnoreError();                  // count 1
//   rlock->Release().IgnoreError();                  // free
//
// Death of the owner works as for mp::Lock (see lock.h and futex.h), with the owner being the
// thread (OwnerScope::kThread): the RLock is abandoned once its owning thread has exited -- whether
// its process died, or the thread alone ended while the process lives on, since nobody else may
// release an RLock. The next acquirer takes the lock over with count 1, and Acquire returns
// kAborted with IsOwnerDied(status) == true while the caller holds the lock.
//
// Acquire(block, timeout): true acquired (or count incremented); false not acquired; kAborted +
// IsOwnerDied acquired from a dead owner; kInvalidArgument for timeout < 0 or block == false with a
// timeout. Release(): kFailedPrecondition if the caller is not the owner ("cannot release
// un-acquired lock", naming the owner).
//
// Thread-safety: a cheap, copyable handle; all methods are safe from any thread. One cache line.

#ifndef MP_SYNC_RLOCK_H_
#define MP_SYNC_RLOCK_H_

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

struct alignas(64) RLockState {
  std::atomic<uint32_t> tag;    // kTag once initialized
  std::atomic<uint32_t> word;   // owner word (sync/futex.h)
  std::atomic<uint32_t> count;  // recursion depth; written only by the owner
};

class RLock : public ShmObject<RLockState>, public Lockable<RLock> {
 public:
  using State = RLockState;
  static_assert(sizeof(State) == 64);
  static constexpr uint32_t kTag = 0x4c52706d;  // "mpRL"

  static absl::StatusOr<RLock> Create(ShmDomain domain);
  static absl::StatusOr<RLock> Create(ShmSegment segment);
  static absl::StatusOr<RLock> FromHandle(const ShmHandle& handle);

  // An empty RLock: the state a decode target starts in, before a real one is assigned to it. Only
  // assignment and destruction are allowed on it.
  RLock() = default;
  RLock(const RLock&) = default;
  RLock& operator=(const RLock&) = default;
  RLock(RLock&&) = default;
  RLock& operator=(RLock&&) = default;

  absl::StatusOr<bool> Acquire(bool block = true,
                               absl::Duration timeout = absl::InfiniteDuration());
  absl::Status Release();

  // True if the calling thread owns the lock.
  bool IsOwned() const;
  // Thread id of the owner, 0 if free.
  pid_t Owner() const;
  // Recursion depth as seen by the owner (0 when free).
  uint32_t Count() const;

  // For Condition: releases the lock completely when the caller owns it and returns the depth it
  // had (kFailedPrecondition otherwise), then restores a depth after re-acquiring.
  absl::StatusOr<uint32_t> ReleaseAll();
  // Acquires (blocking) and sets the depth to `count`; kAborted + IsOwnerDied as for Acquire.
  absl::Status AcquireRestore(uint32_t count);

 private:
  RLock(ShmSegment segment, uint64_t offset) : ShmObject(std::move(segment), offset) {}
};

// A RLock travels to another process as its segment's descriptor and offset (sync/shm.h
// ShmObjectCodec): a transferable one to any child, a fork-domain one to forked children only.
template <>
struct Codec<RLock> : ShmObjectCodec<RLock, "RLock"> {};

}  // namespace mp

#endif  // MP_SYNC_RLOCK_H_
