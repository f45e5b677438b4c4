// Copyright 2026 The mp Authors.
//
// mpi/runtime.h — the one place mp calls MPI_Init and MPI_Finalize, and the waits every mpi
// exchange uses. Internal to mp (the mpi start method, and the mpi transports built on it).
//
// What Open MPI 4.1 does that shapes this file (docs/mpi-notes.md has the measurements):
//  * MPI_Init is lazy here: the first mpi Process started (or, in an mpi child, mp::Init) calls
//    MPI_Init_thread(MPI_THREAD_MULTIPLE) — a program that links the mpi context but never uses
//    it never starts Open MPI's daemon. Every error handler mp touches is MPI_ERRORS_RETURN: an
//    MPI error is a status, never an abort of the program.
//  * Open MPI never reports a dead peer: a receive from it just never completes, and a blocking
//    MPI_Recv waits forever. So mp never blocks inside MPI: WaitRequest polls MPI_Test with a
//    deadline and a liveness check of the caller's.
//  * MPI_Init leaves its descriptors inheritable (the singleton's death pipe, orted's sockets). A
//    forked child that keeps them delays orted's noticing the parent's death until that child
//    ends, so they are marked close-on-exec and a fork child closes them (pthread_atfork).
//  * As root, Open MPI aborts the program in MPI_Init unless OMPI_ALLOW_RUN_AS_ROOT=1 and
//    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 are set: Initialize checks first and returns
//    kFailedPrecondition naming them.
//  * Settings mp relies on are put in the environment before main (a static initializer, while
//    the program has one thread): OMPI_MCA_orte_enable_recovery=1 always (without it one dead
//    worker aborts its job, and across hosts the parent); OMPI_MCA_pml=ob1 and
//    OMPI_MCA_rmaps_base_oversubscribe=1 and PMIX_MCA_gds=hash unless the user set them (ob1
//    skips a 0.2 s UCX probe per MPI_Init; oversubscription lets a 2-core machine run more
//    workers than cores; the hash store avoids PMIx lock files in /tmp that another session
//    left, which fail the spawn with "No permission").
//
// Thread safety: all of it. MPI calls made while a Hold exists never race MPI_Finalize.

#ifndef MP_MPI_RUNTIME_H_
#define MP_MPI_RUNTIME_H_

#include <mpi.h>

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/deadline.h"

namespace mp::mpi_internal {

// Message tags between an mpi parent and its child (both are rank 0 of their side of the
// intercommunicator). Every message is bounded by its receiver.
enum Tag : int {
  kTagChildHello = 1,   // child -> parent: its pid (i32) and host name, first thing
  kTagParentHello = 2,  // parent -> child: the parent's host name
  kTagRecord = 3,       // parent -> child: the launch record
  kTagAck = 4,          // child -> parent: EncodeAck (start_method.h)
  kTagControl = 5,      // parent -> child: a signal number (i32) to raise
  kTagExit = 6,         // child -> parent: the exit code (i32), just before it exits
  kTagHeartbeat = 7,    // child -> parent: i32 0, every kHeartbeatInterval
  // A pool's worker (mpi/pool_launcher.h):
  kTagPoolUp = 8,    // worker -> pool: results, slot updates, leaving; in order
  kTagPoolDown = 9,  // pool -> worker: chunks, stops, claims' answers, leave's answer; in order
  kTagBridge = 10,   // parent -> child: the sockets it is passed, over TCP (mpi/bridge.h)
};

// Initializes MPI once for this process (later calls return the first result). Must not be called
// from a fork child of a process that initialized MPI (kFailedPrecondition: MPI does not survive
// fork).
absl::Status Initialize();

// A hold on an initialized MPI: while it exists, MPI_Finalize waits. Take one around every MPI
// call (cheap: a shared lock).
class Hold {
 public:
  // kFailedPrecondition when MPI is not initialized or was finalized.
  static absl::StatusOr<Hold> Take();
  Hold(Hold&& other) noexcept : held_(other.held_) { other.held_ = false; }
  Hold& operator=(Hold&&) = delete;
  ~Hold();

 private:
  Hold() : held_(true) {}
  bool held_;
};

// MPI_Finalize, once: at the exit of a process that initialized MPI (registered by Initialize)
// and before an mpi child's _exit. Waits at most 1 s for holds to end (a spawn stuck in MPI holds
// one for good) and skips MPI_Finalize if they do not: the process is ending anyway.
void Finalize();

// A status for MPI return code `rc` (OK for MPI_SUCCESS): kInternal with MPI's error string and
// `what`.
absl::Status MpiStatus(int rc, absl::string_view what);

// Waits for `request` until it completes (OK, *status filled when not null) or `deadline` passes
// (kDeadlineExceeded naming `what`; the request is left pending for the caller to cancel). Between
// tests it sleeps from 20 us growing to 2 ms and calls `alive`: its error ends the wait (the
// request left pending).
absl::Status WaitRequest(MPI_Request* request, Deadline deadline, absl::string_view what,
                         MPI_Status* status, absl::FunctionRef<absl::Status()> alive);
absl::Status WaitRequest(MPI_Request* request, Deadline deadline, absl::string_view what,
                         MPI_Status* status = nullptr);

// Cancels a pending request and frees it (MPI_Cancel, then MPI_Wait, which returns at once for a
// cancelled receive; a send that cannot be cancelled is freed with MPI_Request_free).
void CancelRequest(MPI_Request* request);

// Sends `bytes` with `tag` to rank 0 of `comm` within `deadline` (`alive` checked between tests,
// its error ending the wait).
absl::Status SendBytes(MPI_Comm comm, int tag, absl::string_view bytes, Deadline deadline,
                       absl::string_view what);
absl::Status SendBytes(MPI_Comm comm, int tag, absl::string_view bytes, Deadline deadline,
                       absl::string_view what, absl::FunctionRef<absl::Status()> alive);

// Receives the next message with `tag` from rank 0 of `comm`, of at most `max_bytes` (a bigger one
// is kInvalidArgument naming its size, and is not read), within `deadline`, `alive` checked
// between probes.
absl::StatusOr<std::string> ReceiveBytes(MPI_Comm comm, int tag, size_t max_bytes,
                                         Deadline deadline, absl::string_view what,
                                         absl::FunctionRef<absl::Status()> alive);

// Whether `fd` polls readable now (a pidfd or sentinel of a process that ended); true also when
// the poll fails, so that a caller watching for an end stops waiting.
bool ReadableNow(int fd);

// This host's name (gethostname); "" if it cannot be read.
std::string HostName();

// How often an mpi child tells its parent it is alive, and how long a parent waits for a sign of
// a child on another host before it counts the child as gone.
inline constexpr absl::Duration kHeartbeatInterval = absl::Milliseconds(500);

}  // namespace mp::mpi_internal

#endif  // MP_MPI_RUNTIME_H_
