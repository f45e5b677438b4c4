// Copyright 2026 The mp Authors.
//
// start_methods/process.h — mp::Process, Python's multiprocessing.Process, with absl::Status.
//
// A Process runs a Target (start_methods/target.h) in a child process started by a StartMethod
// (start_methods/start_method.h: fork, spawn or forkserver):
//
//   int Square(int64_t x, mp::PassedFd out);              // at namespace scope
//
//   int main(int argc, char** argv) {
//     mp::Init(argc, argv);                              // first line of every main using mp
//     absl::StatusOr<mp::Process> p = mp::Process::Create(
//         mp::SpawnStartMethod(), mp::Call<&Square>(int64_t{7}, mp::PassedFd{pipe_w}));
//     if (!p.ok()) return 1;
//     if (absl::Status s = p->Start(); !s.ok()) ...
//     p->Join();                                         // or Join(absl::Seconds(1))
//     std::optional<int> code = p->ExitCode();   // 0, N, 1 (failed Status), -N (signal N)
//   }
//
// Semantics are CPython's:
//  * Start once; Join(timeout) returns OK when the timeout passes with the child still running
//    (check IsAlive/ExitCode), as CPython's join does. ExitCode is nullopt while the child runs.
//  * Terminate sends SIGTERM (exit code -15), Kill SIGKILL (-9), Interrupt SIGINT (-2). Sentinel
//    is a descriptor that becomes readable when the child ends (a pidfd for fork and spawn
//    children; the per-child connection to the server for forkserver children), for poll/select
//    alongside other fds.
//  * A successful Start drops the process's Target (CPython's start() deletes _target and _args):
//    the child has its own copy, and descriptors owned by the arguments (a Connection moved in) are
//    closed in the parent, so the parent's end of a Pipe sees end of file when the child closes its
//    end or exits. A failed Start keeps the Target, so Start can be tried again.
//  * A C++ exception escaping the target ends the child with exit code 1, its type and what()
//    printed on the child's stderr (target.h), as CPython prints the traceback.
//  * Close releases the child's resources; it refuses a running child; closing twice is a no-op.
//    After Close every call but Close, Name, SetName, Pid, Daemon and StartMethodName fails with
//    kFailedPrecondition.
//  * Name defaults to "Process-N" ("Process-1:2" for the second child of Process-1). Daemon must be
//    set before Start; a daemon process cannot start children.
//  * When main returns (atexit) and when a child's target returns, the process terminates its
//    daemon children, then joins all its children (CPython's _exit_function).
//
// CPython -> mp:
//   Process(target=f, args=(a,))       Process::Create(method, mp::Call<&f>(a))
//   Process(name=n, daemon=d)          ProcessOptions{.name = n, .daemon = d}
//   (no equivalent)                    ProcessOptions{.kill_on_parent_death = true}
//   (no equivalent)                    ProcessOptions{.close_inherited_connections = true}
//   p.start(), p.join(timeout)         p.Start(), p.Join(absl::Duration)
//   p.is_alive(), p.exitcode           p.IsAlive(), p.ExitCode()
//   p.terminate(), p.kill()            p.Terminate(), p.Kill()
//   p.interrupt() (3.14)               p.Interrupt()
//   p.close(), p.sentinel, p.pid       p.Close(), p.Sentinel(), p.Pid()
//   p.name, p.daemon                   p.Name()/SetName(), p.Daemon()/SetDaemon()
//   current_process(), parent_process(), active_children(), cpu_count()
//                                      CurrentProcess(), ParentProcess(), ActiveChildren(),
//                                      CpuCount()
//
// Dying with the parent (ProcessOptions::kill_on_parent_death). The child gets SIGKILL (exit code
// -9) when the process that called Start dies, however it dies (killed, crashed, exited), under
// every start method; also when that process replaces its image with execve. It is the kernel's
// PR_SET_PDEATHSIG(SIGKILL), armed by the child before its target runs, and race-free: right after
// arming, the child checks that the parent it armed against is still there (getppid() is still
// the pid recorded before the fork or spawn), and kills itself at once, before its target runs,
// when it is not. The signal survives an exec in the child. Per method:
//  * fork, spawn: the kernel sends the signal when the *thread* that forked exits, not the
//    process, so a child started from a short-lived thread would die while its parent process
//    lives on. mp therefore forks (posix_spawns) these children from its launcher thread, a thread
//    started on first use that lives as long as the process (start_method.h, RunOnLauncherThread).
//    Under fork the child thus runs its target on the launcher's stack with the caller's signal
//    mask; thread_local variables are the launcher's (fresh), not the calling thread's. The
//    process has that one more thread from then on (every signal blocked in it; the fork method's
//    thread warning leaves it out).
//  * forkserver: the child's kernel parent is the server, which is single-threaded and lives as
//    long as the process that uses it (the one that asks for every start: forkserver.h): when that
//    process dies, the server's lifeline ends, the server exits, and the kernel kills the child.
//    The check after arming also reads the lifeline, so a child whose requester died before the
//    server noticed never runs its target. The child therefore also dies when its server is
//    stopped (ForkServer::Stop) or killed while it runs: with its watcher gone, it dies rather
//    than run unwatched.
// The option applies to that child only: its own children need the option too.
//
// Errors: misuse (Start twice, Join/Terminate/Sentinel before Start, Close of a running process,
// use after Close, a target the method cannot run) -> kFailedPrecondition with the process named;
// an empty target or unknown start method name -> kInvalidArgument; system call failures -> the
// code errno suggests, with the call named.
//
// Reaping: mp waits for its children itself (waitpid on the pid, or the forkserver's report). A
// program that reaps them behind mp's back (waitpid(-1), SIGCHLD set to SIG_IGN) loses their exit
// status; ExitCode then reports 255, as CPython does.
//
// A Process is a handle: copies refer to the same child (like Python references). The children
// registry (ActiveChildren, the exit hook) holds the child until it has been reaped.
//
// Thread safety: all methods are thread-safe, except that Close must not race with other calls on
// the same process (as with any resource release). Join blocks without holding the handle's lock.

#ifndef MP_START_METHODS_PROCESS_H_
#define MP_START_METHODS_PROCESS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "start_methods/start_method.h"
#include "start_methods/target.h"

namespace mp {

// The first line of every main that uses mp. In the program's own process it records argv[0] and
// returns. In a process started by mp (a spawn child or a forkserver server: the environment
// variable MP_START says so) it runs that role and exits; the rest of main never runs there. A
// program that does not call it cannot use spawn or forkserver: Start says so instead of launching
// anything.
void Init(int argc, char** argv);
// Whether Init was called in this process.
bool InitCalled();

struct ProcessOptions {
  std::string name;     // empty: "Process-N"
  bool daemon = false;  // terminated, not joined, when the parent exits
  // The child is killed (SIGKILL, exit code -9) when this process dies, however it dies (see the
  // header comment: "Dying with the parent").
  bool kill_on_parent_death = false;
  // Fork only (a no-op under spawn and forkserver, whose children hold only what they were
  // passed): before the target runs, the child closes every Connection it inherited from this
  // process except the ones its Call<&Fn>(...) arguments carry, so that "close my end" reaches a
  // child that would otherwise hold a copy of that end itself (channels/connection.h, "End of file
  // and fork"); a closed one is kFailedPrecondition if the child uses it. Not for a callable target
  // (kInvalidArgument at Create): what it captured cannot be told from what it inherited.
  bool close_inherited_connections = false;
};

namespace process_internal {
struct ProcessState;
}

class Process {
 public:
  // kInvalidArgument for an empty target or a null method; kFailedPrecondition when `method` cannot
  // run `target` (a callable under spawn or forkserver), naming the fix.
  static absl::StatusOr<Process> Create(std::shared_ptr<StartMethod> method, Target target,
                                        ProcessOptions options = {});

  absl::Status Start();
  // Waits for the child to end, at most `timeout` when given. OK also when the timeout passed.
  absl::Status Join(std::optional<absl::Duration> timeout = std::nullopt);
  // False before Start and after the child ended (after Close too).
  bool IsAlive() const;
  // The exit code (0, N, 1 for a failed Status, -N for signal N): nullopt before Start and while
  // running; after Close, the code the child ended with (CPython raises ValueError there; the code
  // is known, so mp answers). `p.ExitCode() == 0` is true only for a child that exited with 0.
  std::optional<int> ExitCode() const;
  // Send SIGTERM, SIGKILL and SIGINT (CPython's terminate(), kill() and, from 3.14, interrupt()):
  // exit code -15, -9 and -2 unless the child handles the signal. kFailedPrecondition before
  // Start and after Close; a no-op (OK) once the child has ended.
  absl::Status Terminate();
  absl::Status Kill();
  absl::Status Interrupt();
  // Releases the child's resources (CPython's close()). Refused with kFailedPrecondition while the
  // child runs; OK (and idempotent) once it ended. The one Close in mp that returns a Status: the
  // rule is a Status exactly when closing can be refused (README, "Python exception -> absl status
  // code").
  absl::Status Close();
  absl::StatusOr<int> Sentinel() const;

  // nullopt before Start.
  std::optional<int> Pid() const;
  std::string Name() const;
  void SetName(std::string name);
  bool Daemon() const;
  // kFailedPrecondition after Start.
  absl::Status SetDaemon(bool daemon);
  absl::string_view StartMethodName() const;

  // Same child.
  bool operator==(const Process& other) const { return state_ == other.state_; }

 private:
  explicit Process(std::shared_ptr<process_internal::ProcessState> state)
      : state_(std::move(state)) {}
  absl::Status SignalChild(int signo, absl::string_view what);
  friend std::vector<Process> ActiveChildren();

  std::shared_ptr<process_internal::ProcessState> state_;
};

// This process, as mp knows it: "MainProcess" in the program's own process.
struct ProcessInfo {
  std::string name;
  int pid = 0;
  bool daemon = false;
  // 32 random bytes made by the main process and inherited by every descendant (CPython's authkey).
  std::string authkey;
};
ProcessInfo CurrentProcess();

// The process that started this one (in an mp child). It notices the parent's death through a
// pidfd, even though the parent is not this process's parent in the kernel's sense (forkserver
// children).
class ParentHandle {
 public:
  int Pid() const { return pid_; }
  const std::string& Name() const { return name_; }
  bool IsAlive() const;
  // Waits until the parent has ended, at most `timeout` when given. OK also when the timeout
  // passed.
  absl::Status Join(std::optional<absl::Duration> timeout = std::nullopt) const;
  // Readable once the parent has ended; -1 if it had already ended when this process started, or
  // if it runs on another host (an mpi child: Open MPI ends such a child when its parent dies).
  int Sentinel() const { return pidfd_; }

 private:
  friend void process_internal::ChildMain(const process_internal::ChildIdentity&,
                                          absl::FunctionRef<int()>) noexcept;
  ParentHandle(int pid, std::string name, int pidfd)
      : pid_(pid), name_(std::move(name)), pidfd_(pidfd) {}
  int pid_;
  std::string name_;
  int pidfd_;
};
// nullptr in the program's own (main) process.
const ParentHandle* ParentProcess();

// Children started by this process that have not ended (finished ones are reaped on the way).
std::vector<Process> ActiveChildren();

// Online CPUs (os.cpu_count()).
int CpuCount();

}  // namespace mp

#endif  // MP_START_METHODS_PROCESS_H_
