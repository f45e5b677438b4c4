// Copyright 2026 The mp Authors.
//
// sync/futex.h — the building blocks under every mp synchronization primitive: futex words in
// process-shared memory, thread and process identity and liveness, and the "owner word", a 32-bit
// mutex word that records its holder so a waiter can take over the lock of a holder that died.
//
// Futexes here are shared futexes (no FUTEX_PRIVATE_FLAG): the kernel keys them by the physical
// page, so they work between processes that map the same segment at different addresses.
//
// Owner word (used by Lock, RLock and the internal mutexes of Condition and Barrier):
//
//   bits 0..29  the holder's id, 0 when free                         kOwnerTidMask
//   bit  31     somebody may be sleeping on the word                 kOwnerWaiters
//
// Whose id, and so whose death frees the word, is the word's OwnerScope:
//   kThread   the holding thread's id (gettid()); the holder is dead once that thread has exited,
//             even if its process lives on. RLock and the internal mutexes (owned by a thread).
//   kProcess  the holding process's id (getpid()); the holder is dead once every thread of that
//             process has exited. Lock, which (as in CPython) belongs to no thread: any thread of
//             the process that acquired it may still release it after the acquiring thread exited.
//
// Lock: CAS 0 -> id, spinning briefly, then set kOwnerWaiters and FUTEX_WAIT. Unlock: exchange 0,
// FUTEX_WAKE one waiter if kOwnerWaiters was set. A waiter sleeps in slices (1 ms doubling to
// 64 ms); when a slice ends with the same holder, and whenever an attempt is about to give up, it
// checks the holder's liveness (IsThreadAlive or IsProcessAlive) and, if the holder is gone, CASes
// the word from the dead id to its own: OwnerLockResult::kRecovered. That check is the death
// detector; it needs no cooperation from the dying process, so it works after SIGKILL.
//
// Why not the kernel's robust-futex list: glibc already registers one robust list per thread for
// its own pthread mutexes, and a thread has exactly one list, so mp could only join glibc's list by
// writing into glibc's private structures. A Python-style Lock may also be released by a process
// other than the one that acquired it, which the robust list (one entry in the acquirer's thread)
// cannot express. The liveness check costs nothing on the fast path and only a /proc read per sleep
// slice.
//
// Assumption: every process using a word is in the same PID namespace (ids are global).
// Limitation: if the dead holder's id is reused by a new thread or process before any waiter looks,
// the waiters see a live holder and keep waiting (until their timeout); Linux hands out ids
// cyclically up to pid_max, so this needs pid_max thread creations in between.
//
// Thread-safety: everything here is safe to call from any thread of any process.

#ifndef MP_SYNC_FUTEX_H_
#define MP_SYNC_FUTEX_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/deadline.h"

namespace mp {

enum class FutexWaitResult {
  kWoken,     // FUTEX_WAKE, or a spurious wake-up: re-check the word
  kMismatch,  // the word did not hold `expected`
  kTimedOut,  // the deadline passed
};

// Sleeps while *word == expected, until woken or `deadline`. Interrupted waits (EINTR) count as
// kWoken: callers always re-check the word.
FutexWaitResult FutexWait(const std::atomic<uint32_t>* word, uint32_t expected, Deadline deadline);
// Wakes up to `count` sleepers on `word`; returns how many were woken.
int FutexWake(const std::atomic<uint32_t>* word, int count);
inline constexpr int kFutexWakeAll = 0x7fffffff;

// One iteration of a spin-wait loop (the CPU's pause instruction).
void SpinPause();
// How many SpinPause() iterations a waiter spends before sleeping.
inline constexpr int kSpinIterations = 256;

// gettid() of the calling thread, cached per thread (and refreshed in the child after fork()).
pid_t CurrentThreadId();
// getpid() of the calling process, cached (and refreshed in the child after fork()).
pid_t CurrentProcessId();

// False once thread `tid` has exited, including a zombie (killed but not yet reaped) process.
// Reads /proc/<tid>/stat; asks kill(tid, 0) when the entry is missing (it may be hidden by hidepid)
// and when /proc is not this PID namespace's, in which case an unreaped zombie still counts as
// alive.
bool IsThreadAlive(pid_t tid);
// False once every thread of process `pid` has exited, including a zombie process. A process whose
// main thread exited while other threads run (its main thread then shows as a zombie) is alive.
// Same /proc and kill() fallbacks as IsThreadAlive.
bool IsProcessAlive(pid_t pid);

// kInvalidArgument unless the (block, timeout) pair is valid for a CPython-style acquire:
// timeout >= 0, and a non-blocking call has no timeout. `what` names the API in the message.
absl::Status CheckAcquireArgs(bool block, absl::Duration timeout, absl::string_view what);
// kInvalidArgument unless timeout >= 0.
absl::Status CheckTimeout(absl::Duration timeout, absl::string_view what);

// ---- Owner words -------------------------------------------------------------------------------

inline constexpr uint32_t kOwnerTidMask = 0x3fffffffu;
inline constexpr uint32_t kOwnerWaiters = 0x80000000u;

inline pid_t OwnerOf(uint32_t word) { return static_cast<pid_t>(word & kOwnerTidMask); }

// What the id in an owner word names (see the header comment).
enum class OwnerScope {
  kThread,   // a thread id; dead once the thread exited
  kProcess,  // a process id; dead once the whole process exited
};

// The id the calling thread writes into an owner word of `scope`.
inline pid_t CurrentOwnerId(OwnerScope scope) {
  return scope == OwnerScope::kProcess ? CurrentProcessId() : CurrentThreadId();
}
// Whether the holder `id` of an owner word of `scope` is alive.
bool IsOwnerAlive(pid_t id, OwnerScope scope);

enum class OwnerLockResult {
  kAcquired,   // the word was free (or freed) and now names the caller
  kRecovered,  // the holder `dead_owner` had died; the word now names the caller
  kTimedOut,   // not acquired by the deadline (or, non-blocking, not free)
};

struct OwnerLockOutcome {
  OwnerLockResult result;
  pid_t dead_owner = 0;  // for kRecovered
};

// Uncontended fast path: CAS 0 -> tid (the caller's id in the word's scope).
inline bool OwnerTryLock(std::atomic<uint32_t>& word, pid_t tid) {
  uint32_t expected = 0;
  return word.compare_exchange_strong(expected, static_cast<uint32_t>(tid),
                                      std::memory_order_acquire, std::memory_order_relaxed);
}

// Acquires `word` for `tid`, the caller's id in `scope` (CurrentOwnerId(scope)): fast path, spin,
// then futex sleep in slices with liveness checks of the holder in `scope`. With block = false,
// tries once (and takes over a dead holder's word).
OwnerLockOutcome OwnerLock(std::atomic<uint32_t>& word, pid_t tid, bool block, Deadline deadline,
                           OwnerScope scope = OwnerScope::kThread);

// Frees the word, waking one sleeper if there may be one. Returns the previous word (0 means it was
// already free, which callers report as misuse).
inline uint32_t OwnerUnlock(std::atomic<uint32_t>& word) {
  const uint32_t previous = word.exchange(0, std::memory_order_release);
  if (previous & kOwnerWaiters) FutexWake(&word, 1);
  return previous;
}

// The status an acquire returns after OwnerLockResult::kRecovered: kAborted, saying the caller now
// holds `what` and which thread (or, for kProcess, process) died. IsOwnerDied() recognizes it.
absl::Status OwnerDiedError(absl::string_view what, pid_t dead_owner,
                            OwnerScope scope = OwnerScope::kThread);
// True for a status made by OwnerDiedError: the call that returned it acquired the lock anyway.
bool IsOwnerDied(const absl::Status& status);

}  // namespace mp

#endif  // MP_SYNC_FUTEX_H_
