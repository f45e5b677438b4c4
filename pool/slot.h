// Copyright 2026 The mp Authors.
//
// pool/slot.h — the word a worker and the pool share in memory (internal to mp): which task the
// worker runs, since when, and which of the chunks sent to it it has claimed.

#ifndef MP_POOL_SLOT_H_
#define MP_POOL_SLOT_H_

#include <atomic>
#include <cstdint>

#include "sync/shm.h"

namespace mp {
namespace pool_internal {

// Where a worker records the task it is running, read by the pool (after the worker died, to name
// the task that killed it; while it runs, to enforce a task's time limit).
struct alignas(kShmAlignment) Slot {
  std::atomic<uint64_t> job;
  std::atomic<uint64_t> index;
  std::atomic<uint32_t> running;
  // The number of the last chunk the worker started or the pool took back (chunks are numbered in
  // the order the pool sent them to this worker). The worker starts chunk n only by raising it from
  // n - 1 to n; the pool takes back every chunk above a value v by raising it from v to the number
  // of the last chunk it sent. Both are compare-and-swaps on this word, so a chunk either runs on
  // this worker or goes back to the pool's queue, never both.
  std::atomic<uint64_t> claimed;
  // For tasks with a time limit: a seqlock over (timed_index, started_ns). The worker makes it odd,
  // writes both, then makes it even again; started_ns is CLOCK_MONOTONIC (one clock for every
  // process of the host) when task timed_index of chunk timed_chunk began. timed_chunk 0: no timed
  // task is running.
  std::atomic<uint64_t> timed_seq;
  std::atomic<uint64_t> timed_chunk;
  std::atomic<uint64_t> timed_index;
  std::atomic<int64_t> started_ns;
};

// The worker's side of Slot::claimed: true if it may run chunk `number`, false if the pool took
// it back.
inline bool ClaimChunk(Slot* slot, uint64_t number) {
  uint64_t c = slot->claimed.load(std::memory_order_acquire);
  while (c < number) {
    if (slot->claimed.compare_exchange_weak(c, number, std::memory_order_acq_rel)) return true;
  }
  return false;
}

// The worker's side of the time-limit record: task `index` of chunk `chunk` starts now
// (`chunk` 0: none runs).
inline void RecordTimedTask(Slot* slot, uint64_t chunk, uint64_t index, int64_t now_ns) {
  const uint64_t seq = slot->timed_seq.load(std::memory_order_relaxed);
  slot->timed_seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  slot->timed_chunk.store(chunk, std::memory_order_relaxed);
  slot->timed_index.store(index, std::memory_order_relaxed);
  slot->started_ns.store(now_ns, std::memory_order_relaxed);
  slot->timed_seq.store(seq + 2, std::memory_order_release);
}

// The pool's side: a consistent snapshot of the time-limit record; false (nothing stored) if
// the worker was writing it (read again later, or now).
struct TimedTask {
  uint64_t chunk = 0;
  uint64_t index = 0;
  int64_t started_ns = 0;
};
inline bool ReadTimedTask(const Slot* slot, TimedTask* out) {
  const uint64_t before = slot->timed_seq.load(std::memory_order_acquire);
  if (before % 2 != 0) return false;
  TimedTask t;
  t.chunk = slot->timed_chunk.load(std::memory_order_relaxed);
  t.index = slot->timed_index.load(std::memory_order_relaxed);
  t.started_ns = slot->started_ns.load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (slot->timed_seq.load(std::memory_order_relaxed) != before) return false;
  *out = t;
  return true;
}

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_SLOT_H_
