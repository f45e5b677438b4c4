// Copyright 2026 The mp Authors.
//
// pool/worker_loop.h — what a pool's worker runs (internal to mp): the initializer, then chunks of
// tasks (wire.h) until told to stop, the pool closes its end, or the pool's process dies.

#ifndef MP_POOL_WORKER_LOOP_H_
#define MP_POOL_WORKER_LOOP_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "pool/initializer.h"
#include "pool/slot.h"
#include "pool/worker_transport.h"
#include "serialize/fd.h"
#include "sync/shm.h"

namespace mp {
namespace pool_internal {

// Runs the worker loop over `transport`, recording in `slot` which task runs (slot.h). Returns
// when told to stop, at the channel's end, or when `parent_sentinel` (>= 0) polls readable (the
// pool's process died); not OK for a message it cannot decode or a failing initializer (which it
// reports to the pool first).
absl::Status RunWorkerLoop(WorkerTransport& transport, Slot* slot, int parent_sentinel,
                           WorkerInitializer init);

// The registered entry point of a worker process (Call<&PoolWorkerMain>): runs the loop over `conn`
// (its end of the pool's Pipe) on slot `slot_index` of `slots`. Nothing the loop throws leaves it:
// under the fork start method the frames below it are a copy of the pool's process's.
absl::Status PoolWorkerMain(Connection conn, ShmHandle slots, int64_t slot_index,
                            WorkerInitializer init);

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_WORKER_LOOP_H_
