// Copyright 2026 The mp Authors.
//
// pool/worker_loop.h — what a pool's worker runs (internal to mp): the initializer, then chunks of
// tasks (wire.h) until told to stop, the pool closes its end, or the pool's process dies.

#ifndef MP_POOL_WORKER_LOOP_H_
#define MP_POOL_WORKER_LOOP_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pool/initializer.h"
#include "pool/slot.h"
#include "pool/worker_transport.h"
#include "serialize/fd.h"
#include "sync/shm.h"

namespace mp {
namespace pool_internal {

// How a worker keeps its Slot (slot.h) up to date: in memory it shares with the pool (LocalSlot),
// or through messages to a pool on another host (mpi/pool_launcher.h), whose side applies them to
// the pool's Slot in the same order.
class SlotRecorder {
 public:
  virtual ~SlotRecorder() = default;
  // Slot::claimed's compare-and-swap from the worker's side (ClaimChunk): whether the worker may
  // run chunk `number` (false: the pool took it back). Not OK when the pool cannot be asked.
  virtual absl::StatusOr<bool> Claim(uint64_t number) = 0;
  // Task `index` of job `job` starts now; `timed_chunk` != 0: it belongs to that timed chunk (the
  // number Claim was given), whose time limit counts from now.
  virtual void TaskStarts(uint64_t job, uint64_t index, uint64_t timed_chunk) = 0;
  // The task TaskStarts named has ended (`timed`: it was given a timed_chunk).
  virtual void TaskEnds(bool timed) = 0;
  // For a batch function (task.h's BatchFn), which stores the index of each task it starts in a
  // word: that word of a Slot for the tasks of job `job`, marked running; nullptr when the pool
  // cannot read this worker's memory (the tasks then run one at a time through TaskStarts). The
  // batch's end is TaskEnds(false).
  virtual std::atomic<uint64_t>* BatchIndex(uint64_t job) = 0;
};

// A SlotRecorder over a Slot in memory the pool shares.
class LocalSlot : public SlotRecorder {
 public:
  explicit LocalSlot(Slot* slot) : slot_(slot) {}
  absl::StatusOr<bool> Claim(uint64_t number) override { return ClaimChunk(slot_, number); }
  void TaskStarts(uint64_t job, uint64_t index, uint64_t timed_chunk) override;
  void TaskEnds(bool timed) override;
  std::atomic<uint64_t>* BatchIndex(uint64_t job) override;

 private:
  Slot* const slot_;
};

// Runs the worker loop over `transport`, recording in `slot` which task runs. Returns when told to
// stop, at the channel's end, or when `parent_sentinel` (>= 0) polls readable (the pool's process
// died); not OK for a message it cannot decode, a claim the pool cannot answer, or a failing
// initializer (which it reports to the pool first).
absl::Status RunWorkerLoop(WorkerTransport& transport, SlotRecorder& slot, int parent_sentinel,
                           WorkerInitializer init);

// The registered entry point of a worker process (Call<&PoolWorkerMain>): runs the loop over `conn`
// (its end of the pool's Pipe) on slot `slot_index` of `slots`. Nothing the loop throws leaves it:
// under the fork start method the frames below it are a copy of the pool's process's.
absl::Status PoolWorkerMain(Connection conn, ShmHandle slots, int64_t slot_index,
                            WorkerInitializer init);

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_WORKER_LOOP_H_
