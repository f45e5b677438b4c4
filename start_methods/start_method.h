// Copyright 2026 The mp Authors.
//
// start_methods/start_method.h — the interface between mp::Process and the start methods.
//
// A start method (`fork`, `spawn`, `forkserver`; each its own Bazel target, none depending on
// another) implements `mp::StartMethod`: it checks what it can run and launches a child, returning
// a `mp::ChildHandle` — CPython's `Popen` objects (popen_fork.py, popen_spawn_posix.py,
// popen_forkserver.py). mp::Process (process.h) does the rest: names, state, errors, the children
// registry and the exit hook.
//
// Users normally only pick a method:
//
//   absl::StatusOr<std::shared_ptr<mp::StartMethod>> m = mp::FindStartMethod("spawn");
//   // or directly: mp::ForkStartMethod(), mp::SpawnStartMethod(), mp::DefaultForkServer()
//
// FindStartMethod knows the methods linked into the program: each method's library registers itself
// from a static initializer (its cc_library is alwayslink), so :process depends on none of them.
// The same mechanism gives mp::Init the child entry points: the `spawn` library registers the code
// a spawn child runs, the `forkserver` library the server loop (see RegisterChildEntry).
//
// The `process_internal` part below is the toolkit the methods share (launch record, handshake,
// direct-child handle, descriptor I/O) so that no logic is written twice. It is not a user API.
//
// Thread safety: FindStartMethod and the registries are thread-safe. A StartMethod's Launch may be
// called from several threads at once; a ChildHandle is used under its Process's lock.

#ifndef MP_START_METHODS_START_METHOD_H_
#define MP_START_METHODS_START_METHOD_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/deadline.h"
#include "base/exception.h"
#include "start_methods/target.h"

namespace mp {

// A started child, as its start method sees it.
class ChildHandle {
 public:
  virtual ~ChildHandle() = default;
  virtual int pid() const = 0;
  // A descriptor that becomes readable when the child has ended (owned by the handle).
  virtual int sentinel() const = 0;
  // Does not block. The exit code once the child has ended (its exit status, or -N when signal N
  // killed it), reaping it; nullopt while it runs.
  virtual std::optional<int> Poll() = 0;
  // Sends `signo` to the child if it still runs (no-op once it has ended).
  virtual absl::Status Signal(int signo) = 0;
};

// What Process gives a start method to launch.
struct LaunchSpec {
  const Target* target = nullptr;
  std::string name;  // the child's name, e.g. "Process-3"
  bool daemon = false;
  std::vector<int> identity;  // the child's identity path, e.g. {3}
  // ProcessOptions::kill_on_parent_death (process.h explains the design).
  bool kill_on_parent_death = false;
  // ProcessOptions::close_inherited_connections (the fork method runs base/inherited.h's closers).
  bool close_inherited_connections = false;
};

class StartMethod {
 public:
  virtual ~StartMethod() = default;
  // "fork", "spawn" or "forkserver".
  virtual absl::string_view Name() const = 0;
  // kFailedPrecondition when this method cannot run `target` (the default: only registered
  // functions, i.e. mp::Call<&Fn>(...), can be run).
  virtual absl::Status CheckTarget(const Target& target) const;
  // Starts the child. Returns once the child is known to run the target (spawn and forkserver wait
  // for the child's acknowledgement of its launch record).
  virtual absl::StatusOr<std::unique_ptr<ChildHandle>> Launch(const LaunchSpec& spec) = 0;
};

// The start method called `name` among those linked into this program; kInvalidArgument naming the
// available ones otherwise.
// (Named Find, not Get: context/ owns CPython's GetStartMethod(allow_none).)
absl::StatusOr<std::shared_ptr<StartMethod>> FindStartMethod(absl::string_view name);
// Names of the start methods linked into this program, sorted.
std::vector<std::string> StartMethodNames();

namespace process_internal {

// ---- Registries filled from static initializers of the method libraries. ----
void RegisterStartMethod(absl::string_view name, std::function<std::shared_ptr<StartMethod>()> get);

// A child entry point: mp::Init calls it when the environment variable kStartEnv says
// "<mode>:<argument>" for a registered mode. It never returns.
using ChildEntry = void (*)(absl::string_view argument);
void RegisterChildEntry(absl::string_view mode, ChildEntry entry);
std::optional<ChildEntry> FindChildEntry(absl::string_view mode);

// The marker a re-executed child finds in its environment ("spawn:3", "forkserver:3:4").
inline constexpr char kStartEnv[] = "MP_START";
// The same marker as a program's first argument ("--mp-start=mpi"), honoured only in a process
// that Open MPI started (kMpiChildEnv is set).
inline constexpr char kStartArg[] = "--mp-start=";
inline constexpr char kMpiChildEnv[] = "OMPI_COMM_WORLD_RANK";

// ---- Re-executing the program (spawn, forkserver server). ----

// kFailedPrecondition unless this process may re-execute itself: mp::Init was called, and this
// process is not an mp child whose main skipped mp::Init (which would otherwise start children
// recursively: a fork bomb).
absl::Status CheckCanReexecute(absl::string_view method);
// argv[0] recorded by mp::Init.
const std::string& ProgramArgv0();
// This process's environment with kStartEnv removed and "kStartEnv=<value>" added.
std::vector<std::string> ChildEnvironment(absl::string_view start_value);

// posix_spawn of /proc/self/exe with stdin /dev/null, stdout/stderr inherited, `fds[i]` at
// descriptor 3 + i, every other descriptor closed, the signal mask cleared, `argv` and `env`.
absl::StatusOr<pid_t> SpawnSelf(const std::vector<int>& fds, const std::vector<std::string>& argv,
                                const std::vector<std::string>& env);

// ---- The launch record (launch_record.fbs). ----

// Builds the record for `spec` launched by `method` from this process.
std::string BuildLaunchRecord(const LaunchSpec& spec, absl::string_view method);

// Child side of spawn and forkserver: verifies `record`, decodes the target's arguments with
// `fds` current (taking ownership of them), answers on `ack_fd` (an "A" acknowledgement carrying
// this pid and, if `send_pidfd`, a pidfd of this process; or an "E" error), closes `ack_fd` and
// runs the target as process `parent_pid`'s child (0: the record's parent_pid). Never returns. An
// exception thrown while the arguments are decoded (a user's Codec) is an "E" answer naming it.
// For kill_on_parent_death (ChildIdentity): `kernel_parent_pid` is this process's parent as the
// kernel sees it (0: the record's parent_pid, as for spawn) and `lifeline_fd` (taken over; -1 for
// none) reports end of file once the requesting process is gone.
[[noreturn]] void RunLaunchRecord(absl::Span<const uint8_t> record, std::vector<int> fds,
                                  int ack_fd, bool send_pidfd, int parent_pid,
                                  int kernel_parent_pid = 0, int lifeline_fd = -1) noexcept;

// The same for a child whose answer does not go to a descriptor (an mpi child answers over its
// intercommunicator): `answer` gets OK or the refusal and sends it (OK -> EncodeAck(OK)); its
// error, or a refusal, ends the child with exit code 1 after `before_exit(1)`. `before_exit`, when
// set, also becomes ChildIdentity::before_exit.
struct LaunchRecordRun {
  std::function<absl::Status(const absl::Status& prepared)> answer;
  std::function<void(int exit_code)> before_exit;
  int parent_pid = 0;
  int kernel_parent_pid = 0;
  int lifeline_fd = -1;
  bool parent_on_this_host = true;  // ChildIdentity::parent_on_this_host
};
[[noreturn]] void RunLaunchRecordWith(absl::Span<const uint8_t> record, std::vector<int> fds,
                                      LaunchRecordRun run) noexcept;

// Parent side: reads the child's answer. Returns the child's pid (and, when one was sent, stores
// the pidfd in *pidfd); the child's refusal as its status (never OK); kAborted (a peer that died,
// in the README's convention) with `eof_message` when the child closed (or reset) the connection
// without answering; kDeadlineExceeded after `deadline`.
absl::StatusOr<pid_t> ReadAck(int fd, Deadline deadline, absl::string_view eof_message, int* pidfd);

// Writes an answer: OK -> "A" + pid (+ pidfd when pidfd >= 0); an error -> "E" + u32 length + the
// status in its Codec encoding (serialize/status.h), the message cut to kMaxRefusalMessage bytes.
absl::Status WriteAck(int fd, const absl::Status& status, int pidfd, Deadline deadline);
// The bytes WriteAck sends (without a pidfd), and their decoding for a transport of whole
// messages: the child's pid, or its refusal as its status (never OK); kInvalidArgument naming what
// is wrong for anything else (a hostile or broken child).
std::string EncodeAck(const absl::Status& status);
absl::StatusOr<pid_t> DecodeAck(absl::Span<const uint8_t> answer);
inline constexpr size_t kMaxRefusalMessage = 16 << 10;

// ---- Running as a child. ----

struct ChildIdentity {
  std::string name;
  bool daemon = false;
  std::vector<int> identity;
  std::string authkey;
  int parent_pid = 0;
  std::string parent_name;
  // ProcessOptions::kill_on_parent_death. ChildMain then arms PR_SET_PDEATHSIG(SIGKILL) first and
  // checks that the parent it was armed against is still there: getppid() must still be
  // `kernel_parent_pid` (the kernel parent's pid recorded before the fork or spawn), and
  // `lifeline_fd`, when >= 0, must not have reported end of file (the forkserver's lifeline, which
  // ends when the requesting process does). Otherwise the child kills itself with SIGKILL before
  // its target runs, as if the signal had come.
  bool kill_on_parent_death = false;
  int kernel_parent_pid = 0;
  int lifeline_fd = -1;  // closed by ChildMain before the target runs
  // Called by ChildMain with the exit code right before the child's _exit (after its children
  // were joined and stdio flushed): how an mpi child reports its exit code and finalizes MPI.
  std::function<void(int exit_code)> before_exit;
  // False for a child on another host than its parent (mpi): its parent_pid names no process
  // here, so ParentProcess() has no sentinel.
  bool parent_on_this_host = true;
};
// What a child started from this process inherits (name and identity from `spec`).
ChildIdentity IdentityForChild(const LaunchSpec& spec);

// Test hook: called in a kill_on_parent_death child by ChildMain just before it arms the signal,
// so that a test can let the parent die first (the race the check after arming closes). nullptr
// (the default) for none. Install it from a static initializer so that spawn and forkserver
// children, which run the program afresh, have it too.
void SetBeforeParentDeathSignalHookForTesting(void (*hook)(const ChildIdentity&));

// ---- The launcher thread. ----

// Runs `fn` on this process's launcher thread and returns once it has returned; an error (and `fn`
// not run) only when the thread cannot be started (pthread_create's errno). The launcher is a
// thread mp starts on first use and that lives as long as the process, with every signal blocked.
// fork and spawn start kill_on_parent_death children from it: the kernel sends PR_SET_PDEATHSIG's
// signal when the *thread* that forked exits, so a child forked by a short-lived thread of the
// user's would be killed while its parent process still runs. A fork child of this process has no
// launcher thread; it starts its own on first use. Calls from several threads run one at a time.
absl::Status RunOnLauncherThread(absl::FunctionRef<void()> fn);
// 1 if this process has started its launcher thread, else 0 (the fork method's thread count
// leaves it out of its warning: the launcher holds no lock while it waits).
int LauncherThreadCount();

// ---- Forking a process that has threads. ----

// Threads of this process (entries of /proc/self/task); 0 if that cannot be read.
int CountThreads();

// The fork method's warning (CPython 3.12's DeprecationWarning): when this process has threads
// other than the calling one and mp's launcher thread (which holds no lock while it waits), prints
// "mp: warning: process N has T threads; forking a multi-threaded process may deadlock the child
// (a lock another thread held stays locked); use the 'spawn' or 'forkserver' start method" on
// stderr and returns true. Called right before a fork(2) of this process.
bool WarnIfForkingThreads();

// Becomes the child described by `id` (current process name, parent, empty children table), runs
// `run`, joins/terminates its own children as a process does at exit, flushes stdio and _exits with
// the exit code. This is the boundary where every child enters its target: an exception escaping
// `run` (or anything else here) is caught, printed on stderr as "mp: process '<name>' (pid N):
// target raised <type>: <what>" and the exit code is 1 (CPython prints the traceback and exits
// with 1). Never returns, by any path; never runs the parent's atexit handlers.
[[noreturn]] void ChildMain(const ChildIdentity& id, absl::FunctionRef<int()> run) noexcept;

// Runs at the exit of every mp process (main's return, or the end of a child) after its children
// were joined: e.g. the forkserver stops its server here.
void AtExitAfterChildren(std::function<void()> fn);

// ---- Handles and descriptors. ----

// pidfd_open(2).
absl::StatusOr<int> PidfdOpen(pid_t pid);
// pidfd_send_signal(2) of `signo` to the process of `pidfd` (whose pid, `pid`, names it in the
// error): never a recycled pid. OK also when the process has ended (ESRCH).
absl::Status PidfdSignal(int pidfd, pid_t pid, int signo);

// Converts a waitpid status into CPython's exit code convention.
int ExitCodeFromWaitStatus(int status);

// A direct child of this process (fork, spawn): pidfd sentinel, waitpid.
class LocalChild : public ChildHandle {
 public:
  LocalChild(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
  ~LocalChild() override;
  int pid() const override { return pid_; }
  int sentinel() const override { return pidfd_; }
  std::optional<int> Poll() override;
  absl::Status Signal(int signo) override;

 private:
  pid_t pid_;
  int pidfd_;
  std::optional<int> exit_code_;
};

// sendmsg/recvmsg of bytes with descriptors (SCM_RIGHTS) on a Unix socket, within `deadline`
// (whatever the socket's blocking mode). SendWithFds sends all of `data`, the descriptors with its
// first byte. RecvWithFds reads up to data.size() bytes (at least one; kOutOfRange at end of file)
// and appends the descriptors that came with them to *fds (CLOEXEC); kDeadlineExceeded at the
// deadline.
absl::Status SendWithFds(int fd, absl::Span<const uint8_t> data, absl::Span<const int> fds,
                         Deadline deadline);
absl::StatusOr<size_t> RecvWithFds(int fd, absl::Span<uint8_t> data, std::vector<int>* fds,
                                   Deadline deadline);

// Flushes every stdio stream, so a child does not print its parent's buffered output again.
void FlushStdio();

}  // namespace process_internal
}  // namespace mp

#endif  // MP_START_METHODS_START_METHOD_H_
