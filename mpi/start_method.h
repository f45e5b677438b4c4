// Copyright 2026 The mp Authors.
//
// mpi/start_method.h — the "mpi" start method: a process started by Open MPI's MPI_Comm_spawn, on
// this host or another, running a fresh copy of this program (the spawn method across hosts).
//
//   absl::StatusOr<std::shared_ptr<mp::StartMethod>> m = mp::MakeMpiStartMethod({.hosts = {"b"}});
//   absl::StatusOr<mp::Process> p = mp::Process::Create(*m, mp::Call<&Work>(7));
//   // usually: mp::GetContext("mpi")->Process<&Work>(7)   (context/context.h)
//
// How a child starts: one MPI_Comm_spawn (maxprocs 1) per process, of /proc/self/exe (resolved
// here: Open MPI would resolve the literal path in its daemon), with the first argument
// "--mp-start=mpi", which mp::Init recognises in a process Open MPI started. The child says hello
// (its pid and host), receives its launch record over the intercommunicator, answers it like a
// spawn child, runs the target, and sends its exit code just before it exits. Start returns once
// the child has acknowledged its record, or fails within `start_timeout`: MPI_Comm_spawn cannot be
// cancelled, so it runs on a thread of its own, and a call that hangs is abandoned to that thread
// and made again after `spawn_attempt_timeout` (Open MPI's daemon now and then loses a child's
// first message), until Start returns kDeadlineExceeded (an unreachable host).
//
// What Process reports for an mpi child, compared with a local one:
//  * Pid() is the child's pid on its own host.
//  * ExitCode() is the code the child sent. A child that ended without sending one was killed:
//    -N for the signal N that Terminate/Kill/Interrupt sent, else -9 (SIGKILL), since nothing
//    else tells (the child's kernel parent is Open MPI's daemon, not this process).
//  * The end of a child on this host is seen at once (a pidfd of its pid). So is that of a child
//    on another host, through its lifeline: a TCP connection to the parent that the child holds
//    open while it lives and its kernel closes when it dies (mpi/bridge.h). A lost host closes
//    nothing; for that the child also sends a heartbeat every 0.5 s, and one silent for
//    `heartbeat_timeout` is counted as killed (-9): its host or the link to it was lost.
//  * Terminate, Kill and Interrupt signal a child on this host through its pidfd; one on another
//    host gets the signal number as a message and raises it itself, so a child that is stuck with
//    signals blocked, or whose host is lost, does not get it: Join with a timeout tells.
//  * The parent's death: Open MPI's daemon ends the child (SIGTERM, then SIGKILL) within about
//    3 s, whatever kill_on_parent_death says.
//
// What an mpi child can receive (CheckTarget, at Process construction): registered functions only,
// and no argument that holds a descriptor other than a connected stream socket (a Connection of
// GetContext("mpi")->Pipe()), which travels over TCP (mpi/bridge.h). A Lock, Queue, Value,
// SharedMemory or shared-memory Connection lives in this host's memory or kernel: refused with
// kFailedPrecondition naming the fix (an mpi Pipe, or a Manager proxy over TCP).
//
// The environment it needs: Open MPI 4.1 (openmpi-bin). As root, OMPI_ALLOW_RUN_AS_ROOT=1 and
// OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 (mpi/runtime.h has the rest).

#ifndef MP_MPI_START_METHOD_H_
#define MP_MPI_START_METHOD_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "start_methods/start_method.h"

namespace mp {

struct MpiOptions {
  // Hosts to start processes on, in turn. Empty: the comma-separated MP_MPI_HOSTS, else wherever
  // Open MPI places them (this host, or the allocation of the mpirun or Slurm job this program
  // runs in). A name is what Open MPI's launcher (ssh, or OMPI_MCA_plm_rsh_agent) reaches.
  std::vector<std::string> hosts;
  // MPI_Comm_spawn plus the launch record's acknowledgement.
  absl::Duration start_timeout = absl::Seconds(60);
  // One MPI_Comm_spawn call: one that takes longer is abandoned and the spawn made again (Open MPI
  // 4.1 with PMIx 4 now and then loses a spawned child's first message, and that call never
  // returns). Raise it where starting a process on another host takes longer (a slow ssh).
  absl::Duration spawn_attempt_timeout = absl::Seconds(5);
  // How long a child on another host may stay silent before it counts as gone (its host lost; a
  // killed child on a host that is up is seen at once, by its lifeline).
  absl::Duration heartbeat_timeout = absl::Seconds(10);
};

class MpiMethod : public StartMethod {
 public:
  absl::string_view Name() const override { return "mpi"; }
  // Registered functions only, and no descriptor but stream sockets (see the header comment).
  absl::Status CheckTarget(const Target& target) const override;
  absl::StatusOr<std::unique_ptr<ChildHandle>> Launch(const LaunchSpec& spec) override;

  const MpiOptions& options() const { return options_; }

 private:
  friend absl::StatusOr<std::shared_ptr<StartMethod>> MakeMpiStartMethod(MpiOptions options);
  friend std::shared_ptr<StartMethod> MpiStartMethod();
  MpiMethod(MpiOptions options, absl::Status invalid)
      : options_(std::move(options)), invalid_(std::move(invalid)) {}

  const MpiOptions options_;
  const absl::Status invalid_;  // why every Launch fails (a bad MP_MPI_HOSTS)
  std::atomic<size_t> next_host_{0};
};

// An mpi start method with `options`; kInvalidArgument for a host name that is empty or holds
// whitespace or a comma, or a timeout that is not positive.
absl::StatusOr<std::shared_ptr<StartMethod>> MakeMpiStartMethod(MpiOptions options);

// The one registered as "mpi" (FindStartMethod("mpi")): default options, hosts from MP_MPI_HOSTS
// (read once). If MP_MPI_HOSTS holds a bad name, every Launch fails with kInvalidArgument naming
// it.
std::shared_ptr<StartMethod> MpiStartMethod();

}  // namespace mp

#endif  // MP_MPI_START_METHOD_H_
