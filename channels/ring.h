// Copyright 2026 The mp Authors.
//
// channels/ring.h — internal: what the two shared-memory rings of channels/ have in common, the
// Queue's (queue.cc) and the shared-memory Connection's (shm_link.cc). Byte positions grow without
// wrapping and a ring's offset is pos & (capacity - 1) (capacity a power of two); records start on
// an 8-byte grid; a reader copies what it reads out of shared memory before looking at it; a
// waiter spins for a budget of its own before it sleeps.

#ifndef MP_CHANNELS_RING_H_
#define MP_CHANNELS_RING_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/deadline.h"
#include "sync/futex.h"

namespace mp::ring {

inline size_t Align8(size_t n) { return (n + 7) & ~size_t{7}; }

// Reads a word in shared memory exactly once (the compiler cannot load it again).
template <typename T>
T ReadOnce(T& word) {
  return std::atomic_ref<T>(word).load(std::memory_order_relaxed);
}

// Copies n bytes into / out of the ring at byte position `pos`, wrapping around its end.
inline void CopyIn(uint8_t* ring, uint64_t cap, uint64_t pos, const uint8_t* src, size_t n) {
  const uint64_t off = pos & (cap - 1);
  const size_t first = std::min<uint64_t>(n, cap - off);
  std::memcpy(ring + off, src, first);
  if (first < n) std::memcpy(ring, src + first, n - first);
}

inline void CopyOut(const uint8_t* ring, uint64_t cap, uint64_t pos, uint8_t* dst, size_t n) {
  const uint64_t off = pos & (cap - 1);
  const size_t first = std::min<uint64_t>(n, cap - off);
  std::memcpy(dst, ring + off, first);
  if (first < n) std::memcpy(dst + first, ring, n - first);
}

// Adaptive spinning before sleeping. Each thread keeps a budget between these bounds: a wait that
// ends while spinning raises it, a wait that has to sleep halves it. When the two sides run on
// different cores, waits end while spinning (sub-microsecond hand-offs); when they share a core (a
// busy machine), spinning only delays the peer, and the budget falls to the floor within a few
// waits. No sched_yield: it can hand the core to an unrelated process for a whole time slice.
inline constexpr int64_t kMinSpinNs = 1'000;
inline constexpr int64_t kMaxSpinNs = 20'000;
int64_t& SpinBudgetNs();

// A wait Spin gave up on ended `waited_ns` after it began all the same, while this thread only
// yielded a core nobody else wanted (so spinning would have cost no one anything): the budget grows
// to twice that, so that the next such wait ends while spinning, without the yields' system calls.
// A wait that others' work ended (they ran when it yielded) leaves the budget alone: spinning
// would have kept them off the core.
inline void SpinWouldHaveServed(int64_t waited_ns) {
  int64_t& budget = SpinBudgetNs();
  budget = std::min(kMaxSpinNs, std::max(budget, 2 * waited_ns));
}

// A waiter whose own last commit woke a sleeping peer (FUTEX_WAKE, or a wake-up packet) waits this
// long past that wake-up before it sleeps too, yielding to anyone who wants the core meanwhile.
// The peer's answer comes only after its wake-up, which on a virtual machine whose idle core halted
// costs ~35 us (BM_RawFutex_PingPong round trips of ~70 us): a waiter that slept after its spin
// made its own wake-up the peer's next wait, the peer then slept too, and a round trip that slept
// once kept sleeping (2.5% of 64 B Pipe round trips sleeping made them 2-4x slower than spinning
// ones; the Queue's round trip likewise).
inline constexpr int64_t kWokenPeerPatienceNs = 200'000;
// When this thread last woke a sleeping peer (MonotonicNowNs), for the Queue. A shared-memory
// Connection keeps its own, per link: its sending and receiving threads may differ.
int64_t& WokePeerAtNs();

// Spins until ready() or the thread's budget (or `deadline`) runs out; returns ready(). The poll
// gap grows (1 .. max_pauses pauses) so a waiting side does not keep stealing the cache line the
// other side is writing; a pause is ~40 ns on this class of CPU, so a gap of 16 also delays
// noticing by up to ~0.6 us, which a request/reply channel cannot afford. The clock is first read
// after 8 polls (the budget counts from there; *start_ns, if given, is that time): most waits of a
// request/reply channel end sooner, and a clock read on a virtual machine waits for the cache miss
// of the poll before it (removing the one per Send took a 64 B Pipe round trip from 0.80 to
// 0.62 us here).
template <typename Ready>
bool Spin(Deadline deadline, Ready ready, int max_pauses = 16, int64_t* start_ns = nullptr) {
  int64_t& budget = SpinBudgetNs();
  int64_t start = 0;
  const int kMaxPauses = max_pauses;
  int pauses = 1;
  for (int i = 1;; ++i) {
    if (ready()) {
      budget = std::min(kMaxSpinNs, budget * 2);
      return true;
    }
    if ((i & 7) == 0) {
      const int64_t now = MonotonicNowNs();
      if (i == 8) {
        start = now;
        if (start_ns != nullptr) *start_ns = now;
      }
      if (now - start > budget || deadline.Expired()) break;
    }
    for (int k = 0; k < pauses; ++k) SpinPause();
    pauses = std::min(pauses * 2, kMaxPauses);
  }
  budget = std::max(kMinSpinNs, budget / 2);
  return ready();
}

// Holds one side's owner word (sync/futex.h) for a scope: the Queue's put and get sides, a
// shared-memory Connection's write side. Taken over from a holder that died: both rings are built
// so that a dead holder leaves nothing half-committed, and a takeover needs no repair.
class SideLock {
 public:
  SideLock(std::atomic<uint32_t>& word, Deadline deadline) : word_(word) {
    const pid_t tid = CurrentThreadId();
    if (OwnerTryLock(word, tid)) {  // inline fast path
      held_ = true;
      return;
    }
    const OwnerLockResult r = OwnerLock(word, tid, /*block=*/true, deadline).result;
    held_ = r != OwnerLockResult::kTimedOut;
    recovered_ = r == OwnerLockResult::kRecovered;
  }
  ~SideLock() { Unlock(); }
  SideLock(const SideLock&) = delete;
  SideLock& operator=(const SideLock&) = delete;
  bool held() const { return held_; }
  // Taken over from a holder that died (whatever it left half done is the new holder's to see).
  bool recovered() const { return recovered_; }
  void Unlock() {
    if (held_) OwnerUnlock(word_);
    held_ = false;
  }
  // Forgets the side without unlocking it: the caller unlocks it (e.g. the Queue's
  // UnlockAndNotify), or keeps it past the scope (a Connection reader, until its message's end).
  void Release() { held_ = false; }

 private:
  std::atomic<uint32_t>& word_;
  bool held_ = false;
  bool recovered_ = false;
};

}  // namespace mp::ring

#endif  // MP_CHANNELS_RING_H_
