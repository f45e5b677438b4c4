// Copyright 2026 The mp Authors.

#include "start_methods/process.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "base/deadline.h"
#include "base/random.h"

namespace mp {
namespace process_internal {

// Everything mp knows about this process. A child replaces it wholesale (ChildMain), never locking
// the parent's copy: after fork another parent thread may have held its mutex.
struct Globals {
  std::mutex mu;
  bool init_called = false;
  std::string argv0;
  std::string name = "MainProcess";
  bool daemon = false;
  std::vector<int> identity;
  int child_counter = 0;
  std::string authkey;
  ParentHandle* parent = nullptr;
  // Started children not reaped yet.
  std::vector<std::shared_ptr<ProcessState>> children;
  bool exit_hooks_ran = false;
};

namespace {

std::atomic<Globals*> globals{new Globals};
Globals& G() { return *globals.load(std::memory_order_acquire); }

struct AfterChildrenHooks {
  std::mutex mu;
  std::vector<std::function<void()>> hooks;
};
AfterChildrenHooks& Hooks() {
  static AfterChildrenHooks* const h = new AfterChildrenHooks;
  return *h;
}

std::string MakeAuthKey() {
  std::string key(32, '\0');
  if (absl::Status s =
          RandomBytes(absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(key.data()), key.size()));
      !s.ok()) {
    // No authkey means no authenticated channel can ever be made: nothing sensible to go on with.
    std::fprintf(stderr, "mp: making the process authkey: %s\n", s.ToString().c_str());
    std::abort();
  }
  return key;
}

void RunExitHooks();
void ExitHookTrampoline() { RunExitHooks(); }

void EnsureExitHook() {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(&ExitHookTrampoline); });
}

}  // namespace

struct ProcessState {
  mutable std::mutex mu;
  std::shared_ptr<StartMethod> method;
  Target target;
  std::string name;
  bool daemon = false;
  bool kill_on_parent_death = false;
  bool close_inherited_connections = false;
  std::vector<int> identity;
  std::unique_ptr<ChildHandle> child;
  std::optional<int> pid;
  std::optional<int> exit_code;
  bool closed = false;

  std::string Describe() const {
    return pid.has_value() ? absl::StrCat("process '", name, "' (pid ", *pid, ")")
                           : absl::StrCat("process '", name, "'");
  }
  absl::Status ClosedError(absl::string_view what) const {
    return absl::FailedPreconditionError(
        absl::StrCat("mp: cannot ", what, " ", Describe(), ": it was closed"));
  }
  absl::Status NotStartedError(absl::string_view what) const {
    return absl::FailedPreconditionError(
        absl::StrCat("mp: cannot ", what, " ", Describe(), ": it has not been started"));
  }
  // Polls the child (mu held); once it ended, records the exit code and leaves the registry.
  std::optional<int> PollLocked();
};

namespace {

void Unregister(const ProcessState* state) {
  Globals& g = G();
  std::lock_guard<std::mutex> lock(g.mu);
  auto it = std::find_if(g.children.begin(), g.children.end(),
                         [state](const auto& c) { return c.get() == state; });
  if (it != g.children.end()) g.children.erase(it);
}

std::vector<std::shared_ptr<ProcessState>> SnapshotChildren() {
  Globals& g = G();
  std::lock_guard<std::mutex> lock(g.mu);
  return g.children;
}

// Reaps children that have ended (CPython's _cleanup).
void ReapFinished() {
  for (const auto& c : SnapshotChildren()) {
    std::lock_guard<std::mutex> lock(c->mu);
    c->PollLocked();
  }
}

void RunExitHooks() {
  {
    Globals& g = G();
    std::lock_guard<std::mutex> lock(g.mu);
    if (g.exit_hooks_ran) return;
    g.exit_hooks_ran = true;
  }
  std::vector<Process> children = ActiveChildren();
  for (Process& p : children) {
    if (p.Daemon()) (void)p.Terminate();
  }
  for (Process& p : children) (void)p.Join();
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(Hooks().mu);
    hooks = Hooks().hooks;
  }
  for (auto& h : hooks) h();
}

}  // namespace

std::optional<int> ProcessState::PollLocked() {
  if (exit_code.has_value()) return exit_code;
  if (child == nullptr) return std::nullopt;
  std::optional<int> code = child->Poll();
  if (code.has_value()) {
    exit_code = code;
    Unregister(this);
  }
  return code;
}

void AtExitAfterChildren(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(Hooks().mu);
  Hooks().hooks.push_back(std::move(fn));
}

const std::string& ProgramArgv0() { return G().argv0; }

ChildIdentity IdentityForChild(const LaunchSpec& spec) {
  ProcessInfo self = CurrentProcess();
  ChildIdentity id;
  id.name = spec.name;
  id.daemon = spec.daemon;
  id.identity = spec.identity;
  id.authkey = self.authkey;
  id.parent_pid = self.pid;
  id.parent_name = self.name;
  id.kill_on_parent_death = spec.kill_on_parent_death;
  id.kernel_parent_pid = self.pid;
  return id;
}

namespace {

std::atomic<void (*)(const ChildIdentity&)> before_parent_death_signal_hook{nullptr};

// kill_on_parent_death: arms PR_SET_PDEATHSIG(SIGKILL), then checks that the parent it was armed
// against had not died already (the signal is only sent for a death after arming). Closes
// id.lifeline_fd either way.
void TieToParentLifetime(const ChildIdentity& id) noexcept {
  if (id.kill_on_parent_death) {
    if (auto* hook = before_parent_death_signal_hook.load()) hook(id);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
      const int err = errno;
      std::fprintf(stderr, "mp: process '%s' (pid %d): prctl(PR_SET_PDEATHSIG): %s\n",
                   id.name.c_str(), static_cast<int>(getpid()), std::strerror(err));
      FlushStdio();
      _exit(1);
    }
    // A parent that died before the prctl left this process to a new parent (init or a
    // subreaper): getppid() tells. Under the forkserver the kernel parent is the server, whose
    // lifeline reports end of file once the requesting process is gone.
    bool gone = getppid() != id.kernel_parent_pid;
    if (!gone && id.lifeline_fd >= 0) {
      absl::StatusOr<short> ready =
          PollUntil(id.lifeline_fd, POLLIN, Deadline::After(absl::ZeroDuration()));
      gone = !ready.ok() || *ready != 0;
    }
    if (gone) {
      // Before the target runs, as if the signal had come.
      kill(getpid(), SIGKILL);
      _exit(1);  // not reached
    }
  }
  if (id.lifeline_fd >= 0) close(id.lifeline_fd);
}

}  // namespace

void SetBeforeParentDeathSignalHookForTesting(void (*hook)(const ChildIdentity&)) {
  before_parent_death_signal_hook.store(hook);
}

namespace {

// Prints "mp: process '<name>' (pid N): <what> <the exception being handled>" on stderr.
void PrintException(const std::string& name, absl::string_view what) noexcept {
  try {
    std::string line = absl::StrCat("mp: process '", name, "' (pid ", getpid(), "): ", what, " ",
                                    CurrentExceptionDescription(), "\n");
    std::fwrite(line.data(), 1, line.size(), stderr);
  } catch (...) {
    static constexpr char kLine[] = "mp: a process target raised an exception\n";
    (void)!write(2, kLine, sizeof(kLine) - 1);
  }
}

}  // namespace

[[noreturn]] void ChildMain(const ChildIdentity& id, absl::FunctionRef<int()> run) noexcept {
  TieToParentLifetime(id);
  int code = 1;
  try {
    Globals& old = G();
    auto* g = new Globals;
    g->init_called = old.init_called;
    g->argv0 = old.argv0;
    g->name = id.name;
    g->daemon = id.daemon;
    g->identity = id.identity;
    g->authkey = id.authkey;
    int parent_pidfd = -1;
    if (id.parent_on_this_host) {
      if (absl::StatusOr<int> p = PidfdOpen(id.parent_pid); p.ok()) parent_pidfd = *p;
    }
    g->parent = new ParentHandle(id.parent_pid, id.parent_name, parent_pidfd);
    globals.store(g, std::memory_order_release);  // the parent's copy is left behind, unlocked
    code = run();
  } catch (...) {
    // The exception must not unwind further: in a fork child, the frames above are the parent's
    // code that called Start, which would go on running in the child.
    PrintException(id.name, "target raised");
    code = 1;
  }
  try {
    RunExitHooks();
  } catch (...) {
    PrintException(id.name, "joining its children at exit raised");
    if (code == 0) code = 1;
  }
  FlushStdio();
  if (id.before_exit) {
    try {
      id.before_exit(code);
    } catch (...) {
      PrintException(id.name, "reporting its exit code raised");
    }
  }
  _exit(code);
}

}  // namespace process_internal

using process_internal::G;
using process_internal::Globals;
using process_internal::ProcessState;

void Init(int argc, char** argv) {
  {
    Globals& g = G();
    std::lock_guard<std::mutex> lock(g.mu);
    g.init_called = true;
    if (argc > 0 && argv != nullptr && argv[0] != nullptr) g.argv0 = argv[0];
  }
  const char* marker = getenv(process_internal::kStartEnv);
  std::string value;
  if (marker != nullptr) {
    value = marker;
    unsetenv(process_internal::kStartEnv);
  } else if (argc >= 2 && argv != nullptr && argv[1] != nullptr &&
             absl::StartsWith(argv[1], process_internal::kStartArg) &&
             getenv(process_internal::kMpiChildEnv) != nullptr) {
    // MPI_Comm_spawn sets no variable of the caller's choosing in the child, so an mpi child gets
    // its marker as its first argument; MPI's own variable says it was spawned by MPI.
    value = argv[1] + std::strlen(process_internal::kStartArg);
  } else {
    return;
  }
  size_t colon = value.find(':');
  std::string mode = value.substr(0, colon);
  std::string argument = colon == std::string::npos ? "" : value.substr(colon + 1);
  std::optional<process_internal::ChildEntry> entry = process_internal::FindChildEntry(mode);
  if (!entry.has_value()) {
    std::fprintf(stderr,
                 "mp: this process was started as an mp '%s' child (%s=%s), but this program does "
                 "not link that start method\n",
                 mode.c_str(), process_internal::kStartEnv, value.c_str());
    _exit(70);
  }
  try {
    (*entry)(argument);
  } catch (...) {
    // Never into the rest of main: this process was started to play its role only.
    std::string line = absl::StrCat("mp: the '", mode, "' child entry of process ", getpid(),
                                    " raised ", CurrentExceptionDescription(), "\n");
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  process_internal::FlushStdio();
  _exit(70);  // entries never return
}

bool InitCalled() {
  Globals& g = G();
  std::lock_guard<std::mutex> lock(g.mu);
  return g.init_called;
}

ProcessInfo CurrentProcess() {
  Globals& g = G();
  std::lock_guard<std::mutex> lock(g.mu);
  if (g.authkey.empty()) g.authkey = process_internal::MakeAuthKey();
  return ProcessInfo{g.name, static_cast<int>(getpid()), g.daemon, g.authkey};
}

const ParentHandle* ParentProcess() {
  Globals& g = G();
  std::lock_guard<std::mutex> lock(g.mu);
  return g.parent;
}

bool ParentHandle::IsAlive() const {
  if (pidfd_ < 0) return false;
  absl::StatusOr<short> ready = PollUntil(pidfd_, POLLIN, Deadline::After(absl::ZeroDuration()));
  return ready.ok() && *ready == 0;
}

absl::Status ParentHandle::Join(std::optional<absl::Duration> timeout) const {
  if (pidfd_ < 0) return absl::OkStatus();
  const Deadline deadline = timeout.has_value() ? Deadline::After(*timeout) : Deadline::Never();
  // A timeout that passed is OK too (CPython's join).
  return PollUntil(pidfd_, POLLIN, deadline).status();
}

std::vector<Process> ActiveChildren() {
  process_internal::ReapFinished();
  std::vector<Process> out;
  for (auto& c : process_internal::SnapshotChildren()) out.push_back(Process(c));
  return out;
}

int CpuCount() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

absl::StatusOr<Process> Process::Create(std::shared_ptr<StartMethod> method, Target target,
                                        ProcessOptions options) {
  if (method == nullptr) {
    return absl::InvalidArgumentError("mp::Process::Create: the start method is null");
  }
  if (target.empty()) {
    return absl::InvalidArgumentError("mp::Process::Create: the target is empty");
  }
  if (absl::Status s = method->CheckTarget(target); !s.ok()) return s;
  if (options.close_inherited_connections && !target.registered()) {
    return absl::InvalidArgumentError(
        "mp::Process::Create: close_inherited_connections needs a Call<&Fn>(...) target (it keeps "
        "the Connections the arguments carry); a callable's captures cannot be told from what the "
        "child inherited");
  }
  auto state = std::make_shared<ProcessState>();
  {
    Globals& g = G();
    std::lock_guard<std::mutex> lock(g.mu);
    state->identity = g.identity;
    state->identity.push_back(++g.child_counter);
  }
  state->name = options.name.empty() ? absl::StrCat("Process-", absl::StrJoin(state->identity, ":"))
                                     : std::move(options.name);
  state->daemon = options.daemon;
  state->kill_on_parent_death = options.kill_on_parent_death;
  state->close_inherited_connections = options.close_inherited_connections;
  state->method = std::move(method);
  state->target = std::move(target);
  return Process(std::move(state));
}

absl::Status Process::Start() {
  process_internal::ReapFinished();
  ProcessInfo self = CurrentProcess();
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->closed) return state_->ClosedError("start");
  if (state_->child != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "mp: cannot start ", state_->Describe(), " again: a process can be started only once"));
  }
  if (self.daemon) {
    return absl::FailedPreconditionError(
        absl::StrCat("mp: cannot start ", state_->Describe(), " from daemon process '", self.name,
                     "': daemonic processes are not allowed to have children"));
  }
  process_internal::EnsureExitHook();
  LaunchSpec spec;
  spec.target = &state_->target;
  spec.name = state_->name;
  spec.daemon = state_->daemon;
  spec.identity = state_->identity;
  spec.kill_on_parent_death = state_->kill_on_parent_death;
  spec.close_inherited_connections = state_->close_inherited_connections;
  absl::StatusOr<std::unique_ptr<ChildHandle>> child = state_->method->Launch(spec);
  if (!child.ok()) {
    return absl::Status(
        child.status().code(),
        absl::StrCat("mp: starting ", state_->Describe(), " with the '", state_->method->Name(),
                     "' method failed: ", child.status().message()));
  }
  state_->child = *std::move(child);
  state_->pid = state_->child->pid();
  // The child has its own copies of the target and its arguments now. Drop the parent's (CPython's
  // start() deletes _target and _args): a Connection or other descriptor owner moved into the
  // target is closed here, so the parent's end of a Pipe sees end of file when the child closes its
  // end or exits. (A failed Start keeps the target, so Start can be tried again.)
  state_->target = Target();
  Globals& g = G();
  std::lock_guard<std::mutex> glock(g.mu);
  g.children.push_back(state_);
  return absl::OkStatus();
}

absl::Status Process::Join(std::optional<absl::Duration> timeout) {
  const Deadline deadline = timeout.has_value() ? Deadline::After(*timeout) : Deadline::Never();
  for (;;) {
    int fd;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (state_->closed) return state_->ClosedError("join");
      if (state_->child == nullptr) return state_->NotStartedError("join");
      if (state_->PollLocked().has_value()) return absl::OkStatus();
      fd = state_->child->sentinel();
    }
    absl::StatusOr<short> ready = PollUntil(fd, POLLIN, deadline);
    if (!ready.ok()) return ready.status();
    if (*ready == 0) {
      // CPython: join(timeout) returns with the child still running.
      std::lock_guard<std::mutex> lock(state_->mu);
      if (!state_->closed) state_->PollLocked();
      return absl::OkStatus();
    }
  }
}

bool Process::IsAlive() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->closed || state_->child == nullptr) return false;
  return !state_->PollLocked().has_value();
}

std::optional<int> Process::ExitCode() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->closed) return state_->exit_code;  // Close needs the child ended: it is known
  if (state_->child == nullptr) return std::nullopt;
  return state_->PollLocked();
}

absl::Status Process::SignalChild(int signo, absl::string_view what) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->closed) return state_->ClosedError(what);
  if (state_->child == nullptr) return state_->NotStartedError(what);
  if (state_->PollLocked().has_value()) return absl::OkStatus();
  return state_->child->Signal(signo);
}

absl::Status Process::Terminate() { return SignalChild(SIGTERM, "terminate"); }
absl::Status Process::Kill() { return SignalChild(SIGKILL, "kill"); }
absl::Status Process::Interrupt() { return SignalChild(SIGINT, "interrupt"); }

absl::Status Process::Close() {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->closed) return absl::OkStatus();
  if (state_->child != nullptr && !state_->PollLocked().has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("mp: cannot close ", state_->Describe(),
                     ": it is still running; Join, Terminate or Kill it first"));
  }
  state_->child.reset();
  state_->target = Target();
  state_->closed = true;
  return absl::OkStatus();
}

absl::StatusOr<int> Process::Sentinel() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->closed) return state_->ClosedError("get the sentinel of");
  if (state_->child == nullptr) return state_->NotStartedError("get the sentinel of");
  return state_->child->sentinel();
}

std::optional<int> Process::Pid() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->pid;
}

std::string Process::Name() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->name;
}

void Process::SetName(std::string name) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->name = std::move(name);
}

bool Process::Daemon() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->daemon;
}

absl::Status Process::SetDaemon(bool daemon) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->closed) return state_->ClosedError("set the daemon flag of");
  if (state_->child != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "mp: cannot change the daemon flag of ", state_->Describe(), ": it was already started"));
  }
  state_->daemon = daemon;
  return absl::OkStatus();
}

absl::string_view Process::StartMethodName() const { return state_->method->Name(); }

}  // namespace mp
