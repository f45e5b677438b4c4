// Copyright 2026 The mp Authors.
//
// mpi/pool_launcher.h — the workers of a Pool or ProcessPoolExecutor on the mpi context (internal
// to mp): each an mpi Process (start_method.h) on this host or another, reached by MPI messages.
//
// The engine (pool/engine.h) is the one every pool uses; only its WorkerLauncher and
// WorkerTransport differ. A worker's Slot (pool/slot.h) lives in the pool's shared memory, which a
// worker on another host cannot map, so the worker sends its slot updates as messages too, in order
// with its results, and the pool's side applies them to the pool's Slot:
//
//   worker -> pool, tag kTagPoolUp, first byte:
//     'D' + an engine message (pool/wire.h: results, an initializer's failure)
//     'C' + u64 n + u64 r   may the worker run its chunk n? The pool's side runs ClaimChunk on the
//                   pool's Slot, the same compare-and-swap the engine takes chunks back with, so a
//                   chunk still runs exactly once, and answers 'A' + one byte (1: yes, 0: taken
//                   back). r: the engine messages the worker has read so far (AllRead: a worker
//                   whose chunks were taken back gets new ones once it has read the old ones).
//     'S' + u64 job, u64 index, u64 timed_chunk   a task starts (Slot's job/index/running, and its
//                   time-limit record when timed_chunk != 0)
//     'E'           the timed task ended
//     'L'           the worker is leaving (its loop ended); answered 'l'
//   pool -> worker, tag kTagPoolDown, first byte: 'D' + an engine message (chunks, stop), 'A'
//   (above), 'l' (above).
//
// A worker leaves by handshake: it sends 'L' and takes in every message until the 'l' that the
// pool sends after its last message, and only then exits. Open MPI must never send to a process
// that has gone: its TCP transport (the only one between a parent and the jobs it spawned) then
// fails to reconnect, and from then on MPI_Comm_spawn hangs (measured). So the pool's side sends
// nothing after 'L', after it killed the worker, or once the worker's process is gone (its pidfd,
// on this host), which leaves only a worker that dies unasked within microseconds of a send.
//
// A pump thread of the launcher takes in every worker's messages as they come (a claim is answered
// even while the engine's manager sleeps), applies the slot updates and queues the rest, for the
// engine, behind an eventfd that is readable while anything is queued. The engine's own calls pump
// too, so that what a worker sent before it ended is seen when its sentinel fires. Sends to a
// worker never block: each is an MPI_Isend from a copy the transport keeps until it completes (the
// engine bounds what is outstanding per worker); the copies of sends a dead worker never took are
// left to MPI when the worker goes (MPI may still read them).
//
// Differences from a local worker, all from the worker being reachable only by messages:
//  * Time limits count from when the pool hears that a task started until it hears it ended.
//  * Batch functions (task.h) run task by task, each start reported.
//  * A task start is reported before the task runs, with a send that completes once the message is
//    in the MPI transport's (or the kernel's) buffers; if the worker's host itself is lost, a task
//    whose start was still on its way counts as not started and runs again elsewhere.
//
// Every message from a worker is checked: an unknown kind, a wrong size or one over the bound kills
// the worker (its tasks fail kAborted as for any dead worker) and the pool goes on.

#ifndef MP_MPI_POOL_LAUNCHER_H_
#define MP_MPI_POOL_LAUNCHER_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pool/initializer.h"
#include "pool/worker_transport.h"
#include "start_methods/start_method.h"

namespace mp::mpi_internal {

// The largest message either side accepts.
inline constexpr size_t kMaxPoolMessage = size_t{1} << 30;

// Makes the launcher of a pool on the mpi method (registered with RegisterWorkerLauncher for
// "mpi"). kInvalidArgument when `method` is not the mpi method.
absl::StatusOr<std::unique_ptr<pool_internal::WorkerLauncher>> MakeMpiWorkerLauncher(
    std::shared_ptr<StartMethod> method, const PoolInitializer& initializer);

// The registered entry point of an mpi pool worker (Call<&MpiPoolWorkerMain>): the worker loop over
// the intercommunicator to its parent.
absl::Status MpiPoolWorkerMain(int64_t slot_index, pool_internal::WorkerInitializer init);

}  // namespace mp::mpi_internal

#endif  // MP_MPI_POOL_LAUNCHER_H_
