// Copyright 2026 The mp Authors.

#include "start_methods/start_method.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <typeinfo>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/io.h"
#include "base/mutex.h"
#include "base/scm_rights.h"
#include "flatbuffers/flatbuffers.h"
#include "serialize/codec.h"
#include "serialize/fd.h"
#include "serialize/flat.h"
#include "serialize/status.h"
#include "start_methods/launch_record_generated.h"
#include "start_methods/process.h"

extern char** environ;

namespace mp {

absl::Status StartMethod::CheckTarget(const Target& target) const {
  if (!target.registered()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "mp: the '", Name(),
        "' start method runs a fresh copy of the program, so it can only run a registered "
        "function: "
        "pass mp::Call<&Function>(args...) instead of a callable (callables need the 'fork' "
        "method)"));
  }
  if (!target.fork_only_objects().empty()) {
    const std::string& kind = target.fork_only_objects().front();
    return absl::FailedPreconditionError(absl::StrCat(
        "mp: ", kind, " was created by the 'fork' context and cannot be passed to a '", Name(),
        "' process (it lives in anonymous shared memory that only a forked child inherits); create "
        "it with mp::GetContext(\"",
        Name(), "\")->", kind, "()",
        target.fork_only_objects().size() > 1
            ? absl::StrCat(" (", target.fork_only_objects().size() - 1,
                           " more fork-only argument(s) of ", target.function_name(), ")")
            : ""));
  }
  return absl::OkStatus();
}

namespace process_internal {
namespace {

struct Registries {
  std::mutex mu;
  std::map<std::string, std::function<std::shared_ptr<StartMethod>()>, std::less<>> methods;
  std::map<std::string, ChildEntry, std::less<>> entries;
};

Registries& Reg() {
  static Registries* const r = new Registries;
  return *r;
}

}  // namespace

void RegisterStartMethod(absl::string_view name,
                         std::function<std::shared_ptr<StartMethod>()> get) {
  std::lock_guard<std::mutex> lock(Reg().mu);
  Reg().methods[std::string(name)] = std::move(get);
}

void RegisterChildEntry(absl::string_view mode, ChildEntry entry) {
  std::lock_guard<std::mutex> lock(Reg().mu);
  Reg().entries[std::string(mode)] = entry;
}

std::optional<ChildEntry> FindChildEntry(absl::string_view mode) {
  std::lock_guard<std::mutex> lock(Reg().mu);
  auto it = Reg().entries.find(mode);
  if (it == Reg().entries.end()) return std::nullopt;
  return it->second;
}

}  // namespace process_internal

std::vector<std::string> StartMethodNames() {
  using process_internal::Reg;
  std::lock_guard<std::mutex> lock(Reg().mu);
  std::vector<std::string> names;
  for (const auto& [name, get] : Reg().methods) names.push_back(name);
  return names;
}

absl::StatusOr<std::shared_ptr<StartMethod>> FindStartMethod(absl::string_view name) {
  using process_internal::Reg;
  std::function<std::shared_ptr<StartMethod>()> get;
  {
    std::lock_guard<std::mutex> lock(Reg().mu);
    auto it = Reg().methods.find(name);
    if (it != Reg().methods.end()) get = it->second;
  }
  if (get == nullptr) {
    std::vector<std::string> names = StartMethodNames();
    return absl::InvalidArgumentError(absl::StrCat(
        "mp: unknown start method '", name, "'; this program links: ",
        names.empty() ? std::string("none (depend on //start_methods:fork, :spawn or :forkserver)")
                      : absl::StrJoin(names, ", ")));
  }
  return get();
}

namespace process_internal {

void FlushStdio() { std::fflush(nullptr); }

absl::StatusOr<int> PidfdOpen(pid_t pid) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    int err = errno;
    return ErrnoStatus(err, absl::StrCat("pidfd_open(", pid, ") (Linux >= 5.3 is required)"));
  }
  // pidfds are created close-on-exec.
  return fd;
}

absl::Status PidfdSignal(int pidfd, pid_t pid, int signo) {
  if (syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0) != 0 && errno != ESRCH) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat("pidfd_send_signal(pid ", pid, ", signal ", signo, ")"));
  }
  return absl::OkStatus();
}

int ExitCodeFromWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return 255;
}

LocalChild::~LocalChild() {
  if (pidfd_ >= 0) close(pidfd_);
}

std::optional<int> LocalChild::Poll() {
  if (exit_code_.has_value()) return exit_code_;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  // r < 0 (ECHILD) means someone else reaped the child (e.g. waitpid(-1) elsewhere in the program):
  // its status is lost, which CPython reports as 255 too.
  exit_code_ = r == pid_ ? ExitCodeFromWaitStatus(status) : 255;
  return exit_code_;
}

absl::Status LocalChild::Signal(int signo) {
  if (Poll().has_value()) return absl::OkStatus();
  return PidfdSignal(pidfd_, pid_, signo);
}

namespace {

// Waits until `fd` is ready for `events`; kDeadlineExceeded naming `what` at the deadline.
absl::Status WaitReady(int fd, short events, Deadline deadline, absl::string_view what) {
  absl::StatusOr<short> ready = PollUntil(fd, events, deadline);
  if (!ready.ok()) return ready.status();
  if (*ready == 0) return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
  if ((*ready & POLLNVAL) != 0) return ErrnoStatus(EBADF, what);
  return absl::OkStatus();
}

}  // namespace

absl::Status SendWithFds(int fd, absl::Span<const uint8_t> data, absl::Span<const int> fds,
                         Deadline deadline) {
  if (data.empty()) return absl::InvalidArgumentError("mp: SendWithFds needs at least one byte");
  if (fds.size() > kMaxRightsFds) {
    return absl::InvalidArgumentError(absl::StrCat("mp: ", fds.size(),
                                                   " descriptors in one message; at most ",
                                                   kMaxRightsFds, " can be passed"));
  }
  const std::string what = absl::StrCat("sendmsg on descriptor ", fd);
  RightsBuffer control;
  iovec iov{const_cast<uint8_t*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  AttachRights(msg, control, fds);
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      // The descriptors went with the first byte; the rest is plain bytes.
      return WriteFull(fd, data.subspan(static_cast<size_t>(n)), deadline, what);
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoStatus(errno, what);
    if (absl::Status s = WaitReady(fd, POLLOUT, deadline, what); !s.ok()) return s;
  }
}

absl::StatusOr<size_t> RecvWithFds(int fd, absl::Span<uint8_t> data, std::vector<int>* fds,
                                   Deadline deadline) {
  const std::string what = absl::StrCat("recvmsg on descriptor ", fd);
  RightsBuffer control;
  for (;;) {
    iovec iov{data.data(), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data;
    msg.msg_controllen = sizeof(control.data);
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoStatus(errno, what);
      if (absl::Status s = WaitReady(fd, POLLIN, deadline, what); !s.ok()) return s;
      continue;
    }
    std::vector<int> received;
    CollectRights(msg, &received);
    if ((msg.msg_flags & MSG_CTRUNC) != 0) {
      for (int f : received) close(f);
      return absl::ResourceExhaustedError(
          absl::StrCat("mp: descriptors arriving on descriptor ", fd,
                       " were truncated (more than 253, or RLIMIT_NOFILE reached)"));
    }
    fds->insert(fds->end(), received.begin(), received.end());
    if (n == 0) return absl::OutOfRangeError(absl::StrCat(what, ": end of file"));
    return static_cast<size_t>(n);
  }
}

// ---- The launcher thread. ----

namespace {

// Runs the jobs of RunOnLauncherThread, one at a time, on a thread that never exits.
class Launcher {
 public:
  // Starts the thread (never stopped: the Launcher is never destroyed once this succeeded).
  absl::Status Start() {
    // Every signal blocked: process-directed signals go to the user's threads, never to this one.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    const int rc = pthread_create(
        &thread, &attr, [](void* self) -> void* { static_cast<Launcher*>(self)->Loop(); }, this);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (rc != 0) return ErrnoStatus(rc, "pthread_create of mp's launcher thread");
    return absl::OkStatus();
  }

  void Run(absl::FunctionRef<void()> fn) {
    MutexLock lock(&mu_);
    mu_.Await(cv_, Deadline::Never(),
              [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return job_ == nullptr; });
    job_ = &fn;
    const uint64_t ticket = ++submitted_;
    cv_.notify_all();
    // A job is a fork or a posix_spawn: it returns promptly.
    mu_.Await(cv_, Deadline::Never(),
              [this, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_ >= ticket; });
  }

 private:
  [[noreturn]] void Loop() {
    for (;;) {
      const absl::FunctionRef<void()>* job;
      {
        MutexLock lock(&mu_);
        mu_.Await(cv_, Deadline::Never(),
                  [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return job_ != nullptr; });
        job = job_;
      }
      (*job)();  // in a fork child the job never returns here
      MutexLock lock(&mu_);
      job_ = nullptr;
      ++finished_;
      cv_.notify_all();
    }
  }

  Mutex mu_;
  std::condition_variable cv_;
  // The job being run; nullptr when the launcher is free.
  const absl::FunctionRef<void()>* job_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t submitted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t finished_ ABSL_GUARDED_BY(mu_) = 0;
};

// This process's launcher. Locked around every fork (pthread_atfork) so that a fork child finds it
// unlocked, and emptied in the child, where the thread does not exist.
struct LauncherSlot {
  Mutex mu;
  Launcher* launcher ABSL_GUARDED_BY(mu) = nullptr;
};
LauncherSlot& Slot() {
  static LauncherSlot* const slot = new LauncherSlot;
  return *slot;
}

void LauncherAtForkPrepare() ABSL_NO_THREAD_SAFETY_ANALYSIS { Slot().mu.Lock(); }
void LauncherAtForkParent() ABSL_NO_THREAD_SAFETY_ANALYSIS { Slot().mu.Unlock(); }
void LauncherAtForkChild() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // The parent's launcher (its thread is not in this process) is left behind, never used.
  Slot().launcher = nullptr;
  Slot().mu.Unlock();
}

const bool launcher_atfork_registered = [] {
  pthread_atfork(&LauncherAtForkPrepare, &LauncherAtForkParent, &LauncherAtForkChild);
  return true;
}();

}  // namespace

absl::Status RunOnLauncherThread(absl::FunctionRef<void()> fn) {
  Launcher* launcher;
  {
    LauncherSlot& slot = Slot();
    MutexLock lock(&slot.mu);
    if (slot.launcher == nullptr) {
      auto fresh = std::make_unique<Launcher>();
      if (absl::Status s = fresh->Start(); !s.ok()) return s;
      slot.launcher = fresh.release();
    }
    launcher = slot.launcher;
  }
  launcher->Run(fn);
  return absl::OkStatus();
}

int LauncherThreadCount() {
  LauncherSlot& slot = Slot();
  MutexLock lock(&slot.mu);
  return slot.launcher != nullptr ? 1 : 0;
}

// ---- Forking a process that has threads. ----

int CountThreads() {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return 0;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

bool WarnIfForkingThreads() {
  // mp's launcher thread (RunOnLauncherThread) holds no lock while it waits: not counted.
  const int threads = CountThreads() - LauncherThreadCount();
  if (threads <= 1) return false;
  const std::string warning = absl::StrCat(
      "mp: warning: process ", getpid(), " has ", threads,
      " threads; forking a multi-threaded process may deadlock the child (a lock another thread "
      "held stays locked); use the 'spawn' or 'forkserver' start method\n");
  std::fwrite(warning.data(), 1, warning.size(), stderr);
  return true;
}

// ---- Re-executing. ----

absl::Status CheckCanReexecute(absl::string_view method) {
  if (const char* marker = getenv(kStartEnv); marker != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("mp: this process (pid ", getpid(), ") was started by mp as a child (",
                     kStartEnv, "=", marker,
                     ") but its main did not call mp::Init(argc, argv) at the top, so it runs main "
                     "instead of its "
                     "target; refusing to start a '",
                     method, "' child from it (that would recurse without end)"));
  }
  if (!InitCalled()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "mp: the '", method,
        "' start method re-executes this program, which needs mp::Init(argc, argv) as the first "
        "line of main (for tests: link //start_methods:test_main instead of gtest_main)"));
  }
  return absl::OkStatus();
}

std::vector<std::string> ChildEnvironment(absl::string_view start_value) {
  std::vector<std::string> env;
  const std::string prefix = absl::StrCat(kStartEnv, "=");
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, prefix.c_str(), prefix.size()) == 0) continue;
    env.emplace_back(*e);
  }
  env.push_back(absl::StrCat(prefix, start_value));
  return env;
}

absl::StatusOr<pid_t> SpawnSelf(const std::vector<int>& fds, const std::vector<std::string>& argv,
                                const std::vector<std::string>& env) {
  const int n = static_cast<int>(fds.size());
  // Move every source above every target first, so no dup2 clobbers a source not yet moved. The
  // copies are close-on-exec; dup2 clears that flag on the target only.
  std::vector<int> high;
  high.reserve(fds.size());
  auto close_high = [&high] {
    for (int h : high) close(h);
  };
  for (int fd : fds) {
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 3 + n);
    if (h < 0) {
      int err = errno;
      close_high();
      return ErrnoStatus(
          err, absl::StrCat("fcntl(F_DUPFD_CLOEXEC) of descriptor ", fd, " to pass to a child"));
    }
    high.push_back(h);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  for (int i = 0; i < n; ++i) posix_spawn_file_actions_adddup2(&actions, high[i], 3 + i);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3 + n);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> argv_p, env_p;
  for (const std::string& a : argv) argv_p.push_back(const_cast<char*>(a.c_str()));
  argv_p.push_back(nullptr);
  for (const std::string& e : env) env_p.push_back(const_cast<char*>(e.c_str()));
  env_p.push_back(nullptr);

  pid_t pid = -1;
  int rc = posix_spawn(&pid, "/proc/self/exe", &actions, &attr, argv_p.data(), env_p.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close_high();
  if (rc != 0) return ErrnoStatus(rc, "posix_spawn(/proc/self/exe)");
  return pid;
}

// ---- Launch record. ----

std::string BuildLaunchRecord(const LaunchSpec& spec, absl::string_view method) {
  const Target& target = *spec.target;
  ProcessInfo self = CurrentProcess();
  flatbuffers::FlatBufferBuilder fbb(256 + target.encoded_args().size());
  auto method_off = fbb.CreateString(method.data(), method.size());
  auto function_off =
      fbb.CreateString(target.function_name().data(), target.function_name().size());
  auto args_off = fbb.CreateVector(target.encoded_args().data(), target.encoded_args().size());
  auto authkey_off =
      fbb.CreateVector(reinterpret_cast<const uint8_t*>(self.authkey.data()), self.authkey.size());
  auto parent_name_off = fbb.CreateString(self.name);
  auto name_off = fbb.CreateString(spec.name);
  auto identity_off = fbb.CreateVector(spec.identity);
  start_methods::LaunchRecordBuilder b(fbb);
  b.add_start_method(method_off);
  b.add_function(function_off);
  b.add_args(args_off);
  b.add_fd_count(static_cast<uint32_t>(target.fds().size()));
  b.add_authkey(authkey_off);
  b.add_parent_pid(self.pid);
  b.add_parent_name(parent_name_off);
  b.add_name(name_off);
  b.add_daemon(spec.daemon);
  b.add_identity(identity_off);
  b.add_kill_on_parent_death(spec.kill_on_parent_death);
  start_methods::FinishLaunchRecordBuffer(fbb, b.Finish());
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

std::string EncodeAck(const absl::Status& status) {
  std::string msg;
  if (status.ok()) {
    int32_t pid = getpid();
    msg.push_back('A');
    msg.append(reinterpret_cast<const char*>(&pid), sizeof(pid));
  } else {
    absl::string_view text = status.message();
    if (text.size() > kMaxRefusalMessage) text = text.substr(0, kMaxRefusalMessage);
    const std::string encoded = Encode(absl::Status(status.code(), text));
    const uint32_t len = static_cast<uint32_t>(encoded.size());
    msg.push_back('E');
    msg.append(reinterpret_cast<const char*>(&len), sizeof(len));
    msg += encoded;
  }
  return msg;
}

absl::Status WriteAck(int fd, const absl::Status& status, int pidfd, Deadline deadline) {
  const std::string msg = EncodeAck(status);
  absl::Span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(msg.data()), msg.size());
  if (pidfd >= 0) return SendWithFds(fd, bytes, {pidfd}, deadline);
  return WriteFull(fd, bytes, deadline, "mp: the answer to a launch record");
}

namespace {

// The encoded status of an "E" answer: two varints and the message, which the child cut to
// kMaxRefusalMessage.
absl::Status CheckRefusalSize(uint32_t len) {
  if (len > kMaxRefusalMessage + 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp: the child's refusal of its launch record announces ", len,
                     " bytes; at most ", kMaxRefusalMessage + 32, " are accepted"));
  }
  return absl::OkStatus();
}

// The child's refusal (never OK) from its encoded status.
absl::Status DecodeRefusal(absl::Span<const uint8_t> encoded) {
  absl::Status refusal;
  if (absl::Status s = DecodeInto(encoded, refusal); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp: the child's refusal of its launch record did not decode: ", s.message()));
  }
  refusal = AsFailure(std::move(refusal));
  return absl::Status(refusal.code(),
                      absl::StrCat("mp: the child refused its launch record: ", refusal.message()));
}

// Reads a plain value that follows the answer's first byte; end of file is the peer's death.
template <typename T>
absl::Status ReadValue(int fd, T* value, Deadline deadline, absl::string_view eof_message) {
  absl::Status s = ReadFull(fd, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(value), sizeof(T)),
                            deadline, "mp: the child's answer to its launch record");
  if (absl::IsOutOfRange(s)) return absl::AbortedError(eof_message);
  return s;
}

}  // namespace

absl::StatusOr<pid_t> ReadAck(int fd, Deadline deadline, absl::string_view eof_message,
                              int* pidfd) {
  std::vector<int> fds;
  uint8_t kind = 0;
  absl::StatusOr<size_t> got = RecvWithFds(fd, absl::Span<uint8_t>(&kind, 1), &fds, deadline);
  auto close_fds = [&fds] {
    for (int f : fds) close(f);
    fds.clear();
  };
  if (!got.ok()) {
    close_fds();
    // End of file, or a reset (ECONNRESET: the peer died with the request unread): no answer.
    if (absl::IsOutOfRange(got.status()) || absl::IsUnavailable(got.status())) {
      return absl::AbortedError(eof_message);
    }
    return got.status();
  }
  if (kind == 'A' || kind == 'X') {
    int32_t value = 0;
    if (absl::Status s = ReadValue(fd, &value, deadline, eof_message); !s.ok()) {
      close_fds();
      return s;
    }
    if (kind == 'X') {
      close_fds();
      return absl::AbortedError(absl::StrCat("mp: the child exited with code ",
                                             ExitCodeFromWaitStatus(value),
                                             " before it acknowledged its launch record"));
    }
    if (pidfd != nullptr) {
      *pidfd = fds.empty() ? -1 : fds[0];
      if (!fds.empty()) fds.erase(fds.begin());
    }
    close_fds();
    return static_cast<pid_t>(value);
  }
  close_fds();
  if (kind == 'E') {
    uint32_t len = 0;
    if (absl::Status s = ReadValue(fd, &len, deadline, eof_message); !s.ok()) return s;
    if (absl::Status s = CheckRefusalSize(len); !s.ok()) return s;
    std::string encoded(len, '\0');
    if (absl::Status s = ReadFull(
            fd, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(encoded.data()), encoded.size()),
            deadline, "mp: the child's refusal of its launch record");
        !s.ok()) {
      return absl::IsOutOfRange(s) ? absl::AbortedError(eof_message) : s;
    }
    return DecodeRefusal(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(encoded.data()),
                                                   encoded.size()));
  }
  return absl::InternalError(
      absl::StrCat("mp: unexpected byte ", static_cast<int>(kind), " in the child's answer"));
}

absl::StatusOr<pid_t> DecodeAck(absl::Span<const uint8_t> answer) {
  if (answer.empty()) return absl::InvalidArgumentError("mp: the child's answer is empty");
  const uint8_t kind = answer[0];
  answer.remove_prefix(1);
  if (kind == 'A') {
    int32_t pid = 0;
    if (answer.size() != sizeof(pid)) {
      return absl::InvalidArgumentError(absl::StrCat("mp: the child's acknowledgement has ",
                                                     answer.size(), " bytes after 'A', not 4"));
    }
    std::memcpy(&pid, answer.data(), sizeof(pid));
    if (pid <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("mp: the child's acknowledgement names pid ", pid));
    }
    return static_cast<pid_t>(pid);
  }
  if (kind == 'E') {
    uint32_t len = 0;
    if (answer.size() < sizeof(len)) {
      return absl::InvalidArgumentError("mp: the child's refusal is cut before its length");
    }
    std::memcpy(&len, answer.data(), sizeof(len));
    answer.remove_prefix(sizeof(len));
    if (absl::Status s = CheckRefusalSize(len); !s.ok()) return s;
    if (answer.size() != len) {
      return absl::InvalidArgumentError(absl::StrCat("mp: the child's refusal announces ", len,
                                                     " bytes but carries ", answer.size()));
    }
    return DecodeRefusal(answer);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("mp: unexpected byte ", static_cast<int>(kind), " in the child's answer"));
}

namespace {

// What a child needs from its launch record to run: the bound call and who it is.
struct PreparedLaunch {
  std::function<int()> run;
  ChildIdentity id;
};

// Verifies `record` and binds the target's arguments, with `fds` current (taken over).
absl::StatusOr<PreparedLaunch> PrepareLaunch(absl::Span<const uint8_t> record, std::vector<int> fds,
                                             int parent_pid, int kernel_parent_pid) {
  auto refuse = [&fds](absl::Status s) {
    for (int f : fds) close(f);
    fds.clear();
    return s;
  };
  absl::StatusOr<const start_methods::LaunchRecord*> root =
      VerifyFlatBuffer<start_methods::LaunchRecord>(record);
  if (!root.ok()) return refuse(root.status());
  const start_methods::LaunchRecord& r = **root;
  if (r.function() == nullptr || r.name() == nullptr) {
    return refuse(
        absl::InvalidArgumentError("mp: launch record lacks the function or process name"));
  }
  if (r.fd_count() != fds.size()) {
    return refuse(
        absl::InvalidArgumentError(absl::StrCat("mp: the launch record announces ", r.fd_count(),
                                                " descriptors but ", fds.size(), " arrived")));
  }
  const absl::string_view function(r.function()->c_str(), r.function()->size());
  absl::StatusOr<DecodeCall> decode = FindFunction(function);
  if (!decode.ok()) return refuse(decode.status());
  PreparedLaunch out;
  {
    FdTable table(std::move(fds));
    fds.clear();
    ScopedFdTable scope(&table);
    absl::Span<const uint8_t> args;
    if (r.args() != nullptr) args = absl::Span<const uint8_t>(r.args()->data(), r.args()->size());
    absl::StatusOr<std::function<int()>> bound;
    try {
      bound = (*decode)(args);
    } catch (...) {
      return absl::InternalError(absl::StrCat("mp: decoding the arguments of ", function, " threw ",
                                              CurrentExceptionDescription()));
    }
    if (!bound.ok()) return bound.status();
    out.run = *std::move(bound);
  }  // descriptors no argument took are closed here
  out.id.name = r.name()->str();
  out.id.daemon = r.daemon();
  if (r.identity() != nullptr) out.id.identity.assign(r.identity()->begin(), r.identity()->end());
  if (r.authkey() != nullptr) out.id.authkey.assign(r.authkey()->begin(), r.authkey()->end());
  out.id.parent_pid = parent_pid > 0 ? parent_pid : r.parent_pid();
  if (r.parent_name() != nullptr) out.id.parent_name = r.parent_name()->str();
  out.id.kill_on_parent_death = r.kill_on_parent_death();
  out.id.kernel_parent_pid = kernel_parent_pid > 0 ? kernel_parent_pid : r.parent_pid();
  return out;
}

// How long a child may take to hand its answer to a parent that stopped reading.
constexpr absl::Duration kAckTimeout = absl::Seconds(60);

}  // namespace

[[noreturn]] void RunLaunchRecord(absl::Span<const uint8_t> record, std::vector<int> fds,
                                  int ack_fd, bool send_pidfd, int parent_pid,
                                  int kernel_parent_pid, int lifeline_fd) noexcept {
  const Deadline deadline = Deadline::After(kAckTimeout);
  LaunchRecordRun run;
  run.parent_pid = parent_pid;
  run.kernel_parent_pid = kernel_parent_pid;
  run.lifeline_fd = lifeline_fd;
  run.answer = [&](const absl::Status& prepared) -> absl::Status {
    int self_pidfd = -1;
    absl::Status status = prepared;
    if (status.ok() && send_pidfd) {
      absl::StatusOr<int> p = PidfdOpen(getpid());
      if (p.ok()) {
        self_pidfd = *p;
      } else {
        status = p.status();
      }
    }
    absl::Status written = WriteAck(ack_fd, status, self_pidfd, deadline);
    if (self_pidfd >= 0) close(self_pidfd);
    close(ack_fd);
    return status.ok() ? written : status;
  };
  RunLaunchRecordWith(record, std::move(fds), std::move(run));
}

[[noreturn]] void RunLaunchRecordWith(absl::Span<const uint8_t> record, std::vector<int> fds,
                                      LaunchRecordRun run) noexcept {
  absl::StatusOr<PreparedLaunch> prepared;
  try {
    prepared = PrepareLaunch(record, std::move(fds), run.parent_pid, run.kernel_parent_pid);
  } catch (...) {
    // Anything else that threw (std::bad_alloc) is a refusal too: never unwind into the caller,
    // which is a forkserver's loop or a spawn child's mp::Init.
    prepared = absl::InternalError(
        absl::StrCat("mp: reading the launch record threw ", CurrentExceptionDescription()));
  }
  absl::Status answered;
  try {
    answered = run.answer(prepared.ok() ? absl::OkStatus() : prepared.status());
  } catch (...) {
    answered = absl::InternalError("mp: answering the launch record threw");
  }
  // A refused record, or a parent that is gone before the target starts (nobody to report to).
  if (!prepared.ok() || !answered.ok()) {
    if (run.before_exit) run.before_exit(1);
    FlushStdio();
    _exit(1);
  }
  prepared->id.lifeline_fd = run.lifeline_fd;
  prepared->id.before_exit = std::move(run.before_exit);
  prepared->id.parent_on_this_host = run.parent_on_this_host;
  ChildMain(prepared->id, prepared->run);
}

}  // namespace process_internal
}  // namespace mp
