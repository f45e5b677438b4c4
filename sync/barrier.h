// Copyright 2026 The mp Authors.
//
// sync/barrier.h — mp::Barrier, a process-shared barrier for a fixed number of parties: Python's
// multiprocessing.Barrier(parties, action=None, timeout=None), with threading.Barrier's semantics.
//
// Each of `parties` threads (in any processes) calls Wait(); all block until the last one arrives,
// then all return, each with a distinct arrival index in [0, parties) (the first to arrive gets 0).
// The last arriver runs `action` (if any) once per generation before anybody is released; if the
// action returns an error the barrier breaks, the last arriver gets the action's status and the
// others kAborted. The barrier is then reusable for the next generation.
//
//   absl::StatusOr<mp::Barrier> barrier = mp::Barrier::Create(mp::ShmDomain::kFork, 3);
//   // in each of 3 processes:
//   absl::StatusOr<int> index = barrier->Wait(absl::Seconds(10));
//   if (!index.ok()) return index.status();   // kAborted: broken (timeout, Abort, a party died)
//
//   Wait(timeout)   the arrival index; kAborted if the barrier is or becomes broken (timeout of any
//                   waiter, Abort, Reset while waiting, a dead waiter), like BrokenBarrierError;
//                   kInvalidArgument for timeout < 0. Without a timeout, the one given to Create.
//   Abort()         breaks the barrier: current and future waiters get kAborted until Reset().
//   Reset()         back to the empty state; current waiters get kAborted.
//   Broken(), NWaiting(), Parties()
//   WaitForWaiting(n, timeout)
//                   blocks until at least n parties wait at the barrier (no Python equivalent:
//                   what a test or a coordinator otherwise polls NWaiting() for); see below.
//
// A dead participant does not hang anybody past their timeout, and usually far less: each waiter
// records its thread id in the shared state (the first kBarrierTrackedWaiters of them), and
// sleeping waiters check those threads' liveness every few milliseconds (5 ms doubling to 80 ms). A
// thread that died while waiting is removed and the barrier breaks (kAborted naming it). A party
// that dies before it calls Wait is indistinguishable from a slow one: only the timeout catches
// that.
//
// The action is this process's: each process passes its own to Create/FromHandle, and whichever
// process's thread arrives last runs its own. It runs with the barrier's internal mutex held, so it
// must not call this Barrier's methods.
//
// Thread-safety: a cheap copyable handle; all methods are safe from any thread. Shared state: one
// cache line of counters plus one per 16 tracked waiters (sizeof(State) == 320).

#ifndef MP_SYNC_BARRIER_H_
#define MP_SYNC_BARRIER_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sync/futex.h"
#include "sync/shm.h"

namespace mp {

inline constexpr int kBarrierTrackedWaiters = 64;
inline constexpr uint32_t kBarrierObserverSleeping = 0x80000000u;

struct alignas(64) BarrierState {
  std::atomic<uint32_t> tag;    // kTag once initialized
  std::atomic<uint32_t> mutex;  // owner word guarding the fields below
  std::atomic<uint32_t> seq;    // futex word, bumped on every state change
  // Futex word of WaitForWaiting's callers: a counter (bits 0..30) bumped on every arrival and
  // state change while kBarrierObserverSleeping (bit 31) says one of them may sleep on it.
  std::atomic<uint32_t> observers;
  uint32_t parties;
  int32_t count;          // threads inside Wait
  int32_t phase;          // kFilling, kDraining, kResetting, kBroken
  int64_t timeout_ns;     // default timeout, -1 for none
  int32_t broken_reason;  // why the barrier broke (BrokenReason in barrier.cc)
  uint32_t dead_tid;      // the dead waiter that broke it, if that was the reason
  uint32_t generation;    // generations that filled and were released (wraps)
  uint32_t resets;        // Reset() calls that sent waiters away or repaired a break (wraps)
  alignas(64) std::atomic<uint32_t> waiters[kBarrierTrackedWaiters];  // tids inside Wait, 0 = free
};

class Barrier : public ShmObject<BarrierState> {
 public:
  using Action = std::function<absl::Status()>;

  using State = BarrierState;
  static_assert(sizeof(State) == 64 + 4 * kBarrierTrackedWaiters);
  static constexpr uint32_t kTag = 0x7242706d;  // "mpBr"

  // kInvalidArgument unless parties >= 1 and timeout >= 0.
  static absl::StatusOr<Barrier> Create(ShmDomain domain, int parties, Action action = nullptr,
                                        absl::Duration timeout = absl::InfiniteDuration());
  static absl::StatusOr<Barrier> Create(ShmSegment segment, int parties, Action action = nullptr,
                                        absl::Duration timeout = absl::InfiniteDuration());
  static absl::StatusOr<Barrier> FromHandle(const ShmHandle& handle, Action action = nullptr);

  // An empty Barrier: the state a decode target starts in, before a real one is assigned to it.
  // Only assignment and destruction are allowed on it.
  Barrier() = default;
  Barrier(const Barrier&) = default;
  Barrier& operator=(const Barrier&) = default;
  Barrier(Barrier&&) = default;
  Barrier& operator=(Barrier&&) = default;

  // Waits with the default timeout given to Create.
  absl::StatusOr<int> Wait();
  absl::StatusOr<int> Wait(absl::Duration timeout);
  void Abort();
  void Reset();
  bool Broken() const;
  // Threads waiting in the current generation (0 while draining or broken).
  int NWaiting() const;
  int Parties() const;

  // Blocks until at least `n` parties wait at the barrier in one generation, without taking part:
  // the count a test waits for before it kills, aborts or joins the last party, instead of polling
  // NWaiting(). OK once NWaiting() >= n, or once a generation filled (all Parties() arrived, so at
  // least n waited) after the call began, even if its parties have already left. n == 0 is OK at
  // once unless the barrier is broken.
  //
  // Sleeps on a futex word in the barrier's shared state, woken by every arrival, so it works from
  // any process that has the barrier (fork, spawn, forkserver children, FromHandle). While it
  // sleeps it checks the waiters' liveness as Wait does: a waiter that died breaks the barrier.
  // Unlike Wait, running out of time does not break the barrier.
  //
  //   kInvalidArgument   n < 0, n > Parties(), or timeout < 0 (naming the value).
  //   kDeadlineExceeded  `timeout` passed first; names n and the count it last saw.
  //   kAborted           the barrier is or becomes broken (Abort, a Wait timeout, a failed action,
  //                      a dead waiter): the status Wait returns for the same reason. Also a
  //                      Reset() during the call that sent waiting parties away or repaired a
  //                      broken barrier ("Reset() was called"): the parties it was counting left.
  //                      A Reset() of a barrier nobody waits at changes nothing it counts.
  absl::Status WaitForWaiting(int n, absl::Duration timeout) const;

 private:
  Barrier(ShmSegment segment, uint64_t offset, Action action)
      : ShmObject(std::move(segment), offset), action_(std::move(action)) {}

  absl::StatusOr<int> WaitUntil(Deadline deadline, absl::Duration timeout);
  // Internal mutex; a holder that died leaves the fields unknown, so taking it over breaks the
  // barrier.
  void LockState() const;
  void UnlockState() const;
  // Bumps seq and wakes every Wait, then NotifyObserversLocked().
  void Broadcast() const;
  // Wakes WaitForWaiting's callers if one may sleep (bumps `observers`, clears its sleeping bit).
  void NotifyObserversLocked() const;
  void BreakLocked(int32_t reason) const;
  // kAborted, `what` (the calling method) and why the barrier broke.
  absl::Status BrokenErrorLocked(absl::string_view what) const;
  // Sleeps (mutex released) until the state changes or a slice passes; checks for dead waiters
  // after a quiet slice. False once `deadline` passed.
  bool WaitForChange(Deadline deadline, absl::Duration& slice) const;
  // The same on `word`, which held `seen` under the mutex.
  bool SleepLocked(const std::atomic<uint32_t>& word, uint32_t seen, Deadline deadline,
                   absl::Duration& slice) const;
  // Removes waiters whose threads died; returns one of them (0 if none).
  pid_t ReapDeadWaiters() const;
  void ExitLocked(uint32_t tid) const;

  Action action_;
};

// A Barrier travels to another process as its segment's descriptor and offset (sync/shm.h
// ShmObjectCodec). The receiver's Barrier has no action: actions are per process (FromHandle): a
// transferable one to any child, a fork-domain one to forked children only.
template <>
struct Codec<Barrier> : ShmObjectCodec<Barrier, "Barrier"> {};

}  // namespace mp

#endif  // MP_SYNC_BARRIER_H_
