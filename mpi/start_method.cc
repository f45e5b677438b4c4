// Copyright 2026 The mp Authors.

#include "mpi/start_method.h"

#include <mpi.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "base/deadline.h"
#include "base/errno_status.h"
#include "base/mutex.h"
#include "mpi/bridge.h"
#include "mpi/child_link.h"
#include "mpi/runtime.h"

namespace mp {
namespace {

using mpi_internal::Hold;

constexpr size_t kMaxHostName = 255;
constexpr size_t kMaxRecord = size_t{1} << 30;
constexpr size_t kMaxAck = process_internal::kMaxRefusalMessage + 64;
constexpr size_t kMaxBridgeMessage = size_t{64} << 10;
// The parent's hello to a child whose spawn it abandoned (no host name holds a NUL).
const absl::string_view kDismissed("\0", 1);
// How long a child waits for its parent's hello and record.
constexpr absl::Duration kChildRecordTimeout = absl::Seconds(60);
// How long a parent still waits for the exit code of a child on this host whose process is gone
// (it was sent before the exit, so it is in flight or was never sent).
constexpr absl::Duration kExitCodeGrace = absl::Milliseconds(200);
// The same for a child on another host, whose lifeline's end of file and exit code come over two
// connections of the network.
constexpr absl::Duration kRemoteExitCodeGrace = absl::Seconds(1);

absl::Status CheckHostName(absl::string_view host, absl::string_view where) {
  if (host.empty() || host.size() > kMaxHostName ||
      std::any_of(host.begin(), host.end(),
                  [](char c) { return absl::ascii_isspace(c) || c == ',' || c == '\0'; })) {
    return absl::InvalidArgumentError(absl::StrCat("mp: mpi host name '", host, "' (", where,
                                                   ") must be 1 to ", kMaxHostName,
                                                   " characters without spaces or commas"));
  }
  return absl::OkStatus();
}

std::string EncodeI32(int32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

absl::StatusOr<int32_t> DecodeI32(absl::string_view bytes, absl::string_view what) {
  if (bytes.size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp: ", what, " has ", bytes.size(), " bytes, not 4"));
  }
  int32_t v = 0;
  std::memcpy(&v, bytes.data(), 4);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Parent side.

// An mpi child as its parent sees it. A monitor thread watches for its end: the pidfd of a child
// on this host; for one on another host its lifeline (mpi/bridge.h: end of file when the process
// dies) and its heartbeats (which stop when the host is lost); the exit code it sends either way.
// It receives only those two tags, so that transports may use others on the same
// intercommunicator.
class MpiChild : public ChildHandle, public mpi_internal::ChildLink {
 public:
  MpiChild(MPI_Comm inter, pid_t pid, std::string host, int pidfd, int lifeline,
           absl::Duration heartbeat_timeout, int done_fd, int stop_fd)
      : inter_(inter),
        pid_(pid),
        host_(std::move(host)),
        pidfd_(pidfd),
        lifeline_(lifeline),
        heartbeat_timeout_(heartbeat_timeout),
        done_fd_(done_fd),
        stop_fd_(stop_fd) {
    monitor_ = std::thread([this] { Monitor(); });
  }

  ~MpiChild() override {
    const uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
    monitor_.join();
    if (absl::StatusOr<Hold> hold = Hold::Take(); hold.ok()) {
      mpi_internal::CancelRequest(&exit_recv_);
      mpi_internal::CancelRequest(&beat_recv_);
      MPI_Comm_free(&inter_);
    }
    if (pidfd_ >= 0) close(pidfd_);
    if (lifeline_ >= 0) close(lifeline_);
    close(done_fd_);
    close(stop_fd_);
  }

  int pid() const override { return pid_; }
  int sentinel() const override { return done_fd_; }
  MPI_Comm communicator() const override { return inter_; }
  const std::string& host() const override { return host_; }
  bool on_this_host() const override { return pidfd_ >= 0; }
  int pidfd() const override { return pidfd_; }

  std::optional<int> Poll() override {
    MutexLock lock(&mu_);
    return exit_code_;
  }

  absl::Status Signal(int signo) override {
    {
      MutexLock lock(&mu_);
      if (exit_code_.has_value()) return absl::OkStatus();
      last_signal_ = signo;
    }
    if (pidfd_ >= 0) return process_internal::PidfdSignal(pidfd_, pid_, signo);
    absl::StatusOr<Hold> hold = Hold::Take();
    if (!hold.ok()) return hold.status();
    // A lost host does not take the message: Join with a timeout tells.
    return mpi_internal::SendBytes(inter_, mpi_internal::kTagControl, EncodeI32(signo),
                                   Deadline::After(absl::Seconds(1)),
                                   absl::StrCat("signalling mpi child ", pid_, " on ", host_));
  }

 private:
  // Posts the receive of the child's next message of `tag` (the exit code or a heartbeat: 4 bytes)
  // into *request. False when it cannot be posted.
  bool Post(int tag, int32_t* into, MPI_Request* request) {
    if (MPI_Irecv(into, 1, MPI_INT32_T, 0, tag, inter_, request) == MPI_SUCCESS) return true;
    *request = MPI_REQUEST_NULL;
    return false;
  }

  bool PostReceives() {
    absl::StatusOr<Hold> hold = Hold::Take();
    return hold.ok() && Post(mpi_internal::kTagExit, &exit_in_, &exit_recv_) &&
           Post(mpi_internal::kTagHeartbeat, &beat_in_, &beat_recv_);
  }

  // Tests the pending receives. True when the child sent its exit code (stored in *code); *heard
  // when any message came.
  bool TestReceives(int* code, bool* heard) {
    absl::StatusOr<Hold> hold = Hold::Take();
    if (!hold.ok()) return false;
    int done = 0;
    if (exit_recv_ != MPI_REQUEST_NULL) {
      const int rc = MPI_Test(&exit_recv_, &done, MPI_STATUS_IGNORE);
      if (done) {
        *heard = true;
        if (rc == MPI_SUCCESS) {
          *code = exit_in_;
          return true;
        }
        Post(mpi_internal::kTagExit, &exit_in_, &exit_recv_);  // a wrong size: listen again
      }
    }
    done = 0;
    if (beat_recv_ != MPI_REQUEST_NULL) (void)MPI_Test(&beat_recv_, &done, MPI_STATUS_IGNORE);
    if (done) {  // a heartbeat (or one of a wrong size, which counts as one)
      *heard = true;
      Post(mpi_internal::kTagHeartbeat, &beat_in_, &beat_recv_);
    }
    return false;
  }

  void Finish(std::optional<int> sent_code) {
    {
      MutexLock lock(&mu_);
      // Without a code of its own the child was killed (header comment).
      exit_code_ =
          sent_code.has_value() ? *sent_code : -(last_signal_ != 0 ? last_signal_ : SIGKILL);
    }
    const uint64_t one = 1;
    (void)!write(done_fd_, &one, sizeof(one));
  }

  // The process is gone: the exit code it sent before it went, if it comes within `grace`.
  void CollectExitCode(absl::Duration grace_period) {
    const Deadline grace = Deadline::After(grace_period);
    absl::Duration pause = absl::Microseconds(50);
    int code = 0;
    bool heard = false;
    for (;;) {
      if (TestReceives(&code, &heard)) return Finish(code);
      if (grace.Expired()) return Finish(std::nullopt);
      if (PollUntil(stop_fd_, POLLIN, Deadline::After(pause)).value_or(0) != 0) return;
      pause = std::min(pause * 2, absl::Milliseconds(5));
    }
  }

  enum class LifelineState { kHeld, kEnded, kBroken };
  // kEnded when the lifeline is at its end (end of file or an error): the process is gone.
  // kBroken when bytes came on it, which a child of mp's never sends: it is watched no longer
  // (heartbeats still tell the end), so a peer writing to it cannot keep the monitor busy.
  LifelineState ReadLifeline() {
    char byte;
    const ssize_t n = recv(lifeline_, &byte, 1, MSG_DONTWAIT);
    if (n > 0) return LifelineState::kBroken;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      return LifelineState::kEnded;
    }
    return LifelineState::kHeld;
  }

  void Monitor() {
    if (!PostReceives()) {
      Finish(std::nullopt);
      return;
    }
    if (pidfd_ >= 0) {
      // On this host: sleep until the process is gone (or the handle is dropped).
      struct pollfd fds[2] = {{pidfd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      for (;;) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
        if (fds[1].revents != 0) return;
        if (fds[0].revents != 0) break;
      }
      return CollectExitCode(kExitCodeGrace);
    }
    // On another host: the exit code; or the lifeline's end; or heartbeats until they stop.
    Deadline silent = Deadline::After(heartbeat_timeout_);
    absl::Duration pause = absl::Microseconds(50);
    int code = 0;
    bool watch_lifeline = lifeline_ >= 0;
    for (;;) {
      bool heard = false;
      if (TestReceives(&code, &heard)) return Finish(code);
      if (heard) {
        silent = Deadline::After(heartbeat_timeout_);
        pause = absl::Microseconds(50);
      }
      if (silent.Expired()) return Finish(std::nullopt);
      struct pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {lifeline_, POLLIN, 0}};
      const int n = PollUntil(absl::MakeSpan(fds, watch_lifeline ? 2 : 1), Deadline::After(pause))
                        .value_or(0);
      if (n > 0 && fds[0].revents != 0) return;
      if (n > 0 && watch_lifeline && fds[1].revents != 0) {
        const LifelineState state = ReadLifeline();
        if (state == LifelineState::kEnded) return CollectExitCode(kRemoteExitCodeGrace);
        if (state == LifelineState::kBroken) watch_lifeline = false;
      }
      pause = std::min(pause * 2, absl::Milliseconds(20));
    }
  }

  MPI_Comm inter_;
  const pid_t pid_;
  const std::string host_;
  const int pidfd_;     // -1 for a child on another host
  const int lifeline_;  // a child on another host's (mpi/bridge.h), or -1; owned
  const absl::Duration heartbeat_timeout_;
  const int done_fd_;  // eventfd, written once the exit code is known: the sentinel
  const int stop_fd_;  // eventfd, written by the destructor to stop the monitor
  // Used by the monitor thread only (and by the destructor after it is joined).
  MPI_Request exit_recv_ = MPI_REQUEST_NULL;
  MPI_Request beat_recv_ = MPI_REQUEST_NULL;
  int32_t exit_in_ = 0;
  int32_t beat_in_ = 0;

  Mutex mu_;
  std::optional<int> exit_code_ ABSL_GUARDED_BY(mu_);
  int last_signal_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread monitor_;
};

// MPI_Comm_spawn of one process, on a thread of its own (the call cannot be cancelled). The
// thread keeps the call's state alive; an abandoned spawn frees its communicator when it ends.
struct SpawnCall {
  Mutex mu;
  std::condition_variable cv;
  bool done ABSL_GUARDED_BY(mu) = false;
  bool abandoned ABSL_GUARDED_BY(mu) = false;
  absl::Status status ABSL_GUARDED_BY(mu);
  MPI_Comm inter ABSL_GUARDED_BY(mu) = MPI_COMM_NULL;
};

absl::StatusOr<MPI_Comm> SpawnOne(const std::string& exe, const std::string& host,
                                  Deadline deadline) {
  auto call = std::make_shared<SpawnCall>();
  std::thread([call, exe, host] {
    absl::Status status;
    MPI_Comm inter = MPI_COMM_NULL;
    if (absl::StatusOr<Hold> hold = Hold::Take(); !hold.ok()) {
      status = hold.status();
    } else {
      MPI_Info info = MPI_INFO_NULL;
      MPI_Info_create(&info);
      if (!host.empty()) {
        // "host" alone fails once the default allocation is full; "add-host" adds it first.
        MPI_Info_set(info, "add-host", host.c_str());
        MPI_Info_set(info, "host", host.c_str());
      }
      std::string marker = absl::StrCat(process_internal::kStartArg, "mpi");
      char* argv[] = {marker.data(), nullptr};
      int errcode = MPI_SUCCESS;
      const int rc = MPI_Comm_spawn(exe.c_str(), argv, 1, info, 0, MPI_COMM_SELF, &inter, &errcode);
      MPI_Info_free(&info);
      status = mpi_internal::MpiStatus(
          rc != MPI_SUCCESS ? rc : errcode,
          absl::StrCat("MPI_Comm_spawn of ", exe, host.empty() ? "" : " on ", host));
      if (status.ok()) MPI_Comm_set_errhandler(inter, MPI_ERRORS_RETURN);
      MutexLock lock(&call->mu);
      if (call->abandoned) {
        if (inter != MPI_COMM_NULL) {
          // The child runs, but Launch gave up on it: kDismissed tells it to exit.
          (void)mpi_internal::SendBytes(inter, mpi_internal::kTagParentHello, kDismissed,
                                        Deadline::After(absl::Seconds(5)), "dismissing a child");
          MPI_Comm_free(&inter);
        }
        return;
      }
    }
    MutexLock lock(&call->mu);
    call->status = status;
    call->inter = inter;
    call->done = true;
    call->cv.notify_all();
  }).detach();
  MutexLock lock(&call->mu);
  if (!call->mu.Await(call->cv, deadline,
                      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(call->mu) { return call->done; })) {
    call->abandoned = true;
    return absl::DeadlineExceededError(absl::StrCat(
        "mp: MPI_Comm_spawn", host.empty() ? "" : " on host ", host,
        " did not return in time (Open MPI waits for good on a host it cannot reach, and now and "
        "then on a child whose first message its daemon lost); the spawn is abandoned"));
  }
  if (!call->status.ok()) return call->status;
  return call->inter;
}

absl::StatusOr<std::string> SelfExe() {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n < 0) return ErrnoStatus(errno, "readlink(/proc/self/exe)");
  return std::string(path, static_cast<size_t>(n));
}

}  // namespace

absl::Status MpiMethod::CheckTarget(const Target& target) const {
  if (absl::Status s = StartMethod::CheckTarget(target); !s.ok()) return s;
  for (int fd : target.fds()) {
    if (absl::Status s = mpi_internal::CheckBridgeable(fd, target.function_name()); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ChildHandle>> MpiMethod::Launch(const LaunchSpec& spec) {
  if (!invalid_.ok()) return invalid_;
  if (absl::Status s = process_internal::CheckCanReexecute("mpi"); !s.ok()) return s;
  if (absl::Status s = mpi_internal::Initialize(); !s.ok()) return s;
  absl::StatusOr<std::string> exe = SelfExe();
  if (!exe.ok()) return exe.status();
  std::string host;
  if (!options_.hosts.empty()) {
    host =
        options_.hosts[next_host_.fetch_add(1, std::memory_order_relaxed) % options_.hosts.size()];
  }
  const std::string record = process_internal::BuildLaunchRecord(spec, "mpi");
  const Deadline deadline = Deadline::After(options_.start_timeout);
  process_internal::FlushStdio();
  // Open MPI 4.1 with PMIx 4 (Debian's) now and then never answers a spawned child's first PMIx
  // message, and that MPI_Comm_spawn never returns (openpmix issue 2735; here about one spawn in
  // 40 under load). Another spawn meanwhile works: an attempt that takes longer than
  // spawn_attempt_timeout is abandoned to its thread and the spawn is made again, until
  // start_timeout. (An abandoned spawn that returns after all dismisses its child.)
  absl::StatusOr<MPI_Comm> spawned = absl::DeadlineExceededError("no attempt");
  int attempts = 0;
  while (!deadline.Expired()) {
    ++attempts;
    spawned = SpawnOne(
        *exe, host, Deadline::Earlier(deadline, Deadline::After(options_.spawn_attempt_timeout)));
    if (spawned.ok() || spawned.status().code() != absl::StatusCode::kDeadlineExceeded) break;
  }
  if (!spawned.ok()) {
    if (spawned.status().code() != absl::StatusCode::kDeadlineExceeded) return spawned.status();
    return absl::DeadlineExceededError(absl::StrCat(
        spawned.status().message(), " (", attempts, " attempt(s) of at most ",
        absl::FormatDuration(options_.spawn_attempt_timeout), " within the start timeout of ",
        absl::FormatDuration(options_.start_timeout), ")"));
  }
  MPI_Comm inter = *spawned;

  int pidfd = -1;
  int lifeline = -1;
  pid_t pid = 0;
  std::string child_host;
  auto fail = [&](absl::Status s) -> absl::Status {
    if (lifeline >= 0) close(lifeline);
    if (pidfd >= 0) {
      (void)process_internal::PidfdSignal(pidfd, pid, SIGKILL);
      close(pidfd);
    } else if (absl::StatusOr<Hold> hold = Hold::Take(); hold.ok() && pid > 0) {
      (void)mpi_internal::SendBytes(inter, mpi_internal::kTagControl, EncodeI32(SIGKILL),
                                    Deadline::After(absl::Milliseconds(100)), "killing a child");
    }
    if (absl::StatusOr<Hold> hold = Hold::Take(); hold.ok()) MPI_Comm_free(&inter);
    return s;
  };
  auto alive = [&]() -> absl::Status {
    if (pidfd >= 0 && mpi_internal::ReadableNow(pidfd)) {
      return absl::AbortedError(absl::StrCat("mp: the mpi child (pid ", pid,
                                             ") exited before it acknowledged its launch record"));
    }
    return absl::OkStatus();
  };
  const std::string what = absl::StrCat("the mpi child", host.empty() ? "" : " on ", host);
  {
    absl::StatusOr<Hold> hold = Hold::Take();
    if (!hold.ok()) return fail(hold.status());
    absl::StatusOr<std::string> hello =
        mpi_internal::ReceiveBytes(inter, mpi_internal::kTagChildHello, 4 + kMaxHostName, deadline,
                                   absl::StrCat("the hello of ", what), alive);
    if (!hello.ok()) return fail(hello.status());
    absl::StatusOr<int32_t> p = DecodeI32(absl::string_view(*hello).substr(0, 4), "a child's pid");
    if (!p.ok() || *p <= 0) {
      return fail(absl::InvalidArgumentError(
          absl::StrCat("mp: the hello of ", what, " does not start with a pid")));
    }
    pid = *p;
    child_host = hello->substr(4);
    if (child_host == mpi_internal::HostName()) {
      absl::StatusOr<int> fd = process_internal::PidfdOpen(pid);
      if (!fd.ok()) {
        return fail(absl::AbortedError(absl::StrCat("mp: the mpi child (pid ", pid,
                                                    ") ended before its launch record was sent (",
                                                    fd.status().message(), ")")));
      }
      pidfd = *fd;
    }
    // The stream sockets among the arguments travel over TCP (mpi/bridge.h).
    absl::StatusOr<mpi_internal::BridgeOffer> bridges =
        mpi_internal::BridgeOffer::Create(spec.target->fds(), pidfd >= 0,
                                          /*lifeline=*/pidfd < 0);
    if (!bridges.ok()) return fail(bridges.status());
    if (absl::Status s =
            mpi_internal::SendBytes(inter, mpi_internal::kTagParentHello, mpi_internal::HostName(),
                                    deadline, absl::StrCat("the hello to ", what));
        !s.ok()) {
      return fail(s);
    }
    if (absl::Status s =
            mpi_internal::SendBytes(inter, mpi_internal::kTagBridge, bridges->message(), deadline,
                                    absl::StrCat("the bridges of ", what));
        !s.ok()) {
      return fail(s);
    }
    if (absl::Status s = mpi_internal::SendBytes(inter, mpi_internal::kTagRecord, record, deadline,
                                                 absl::StrCat("the launch record of ", what));
        !s.ok()) {
      return fail(s);
    }
    if (absl::Status s = bridges->Accept(deadline, alive); !s.ok()) return fail(s);
    lifeline = bridges->TakeLifeline();
    absl::StatusOr<std::string> ack =
        mpi_internal::ReceiveBytes(inter, mpi_internal::kTagAck, kMaxAck, deadline,
                                   absl::StrCat("the acknowledgement of ", what), alive);
    if (!ack.ok()) return fail(ack.status());
    absl::StatusOr<pid_t> acked = process_internal::DecodeAck(
        absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(ack->data()), ack->size()));
    if (!acked.ok()) return fail(acked.status());
    if (*acked != pid) {
      return fail(absl::InvalidArgumentError(absl::StrCat("mp: ", what, " said hello as pid ", pid,
                                                          " but acknowledged as pid ", *acked)));
    }
  }
  const int done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (done_fd < 0 || stop_fd < 0) {
    const int err = errno;
    if (done_fd >= 0) close(done_fd);
    if (stop_fd >= 0) close(stop_fd);
    if (lifeline >= 0) close(lifeline);
    return fail(ErrnoStatus(err, "eventfd for an mpi child"));
  }
  return std::make_unique<MpiChild>(inter, pid, child_host, pidfd, lifeline,
                                    options_.heartbeat_timeout, done_fd, stop_fd);
}

absl::StatusOr<std::shared_ptr<StartMethod>> MakeMpiStartMethod(MpiOptions options) {
  for (const std::string& h : options.hosts) {
    if (absl::Status s = CheckHostName(h, "MpiOptions::hosts"); !s.ok()) return s;
  }
  if (options.start_timeout <= absl::ZeroDuration() ||
      options.heartbeat_timeout <= absl::ZeroDuration() ||
      options.spawn_attempt_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp: MpiOptions start_timeout (", absl::FormatDuration(options.start_timeout),
                     "), heartbeat_timeout (", absl::FormatDuration(options.heartbeat_timeout),
                     ") and spawn_attempt_timeout (",
                     absl::FormatDuration(options.spawn_attempt_timeout), ") must be positive"));
  }
  return std::shared_ptr<StartMethod>(new MpiMethod(std::move(options), absl::OkStatus()));
}

std::shared_ptr<StartMethod> MpiStartMethod() {
  static auto* const method = [] {
    MpiOptions options;
    absl::Status invalid;
    if (const char* env = getenv("MP_MPI_HOSTS"); env != nullptr && *env != '\0') {
      for (absl::string_view h : absl::StrSplit(env, ',', absl::SkipWhitespace())) {
        h = absl::StripAsciiWhitespace(h);
        if (absl::Status s = CheckHostName(h, "MP_MPI_HOSTS"); !s.ok()) {
          invalid = s;
          break;
        }
        options.hosts.emplace_back(h);
      }
    }
    return new std::shared_ptr<StartMethod>(new MpiMethod(std::move(options), invalid));
  }();
  return *method;
}

// ---------------------------------------------------------------------------------------------
// Child side.

namespace {

// An mpi child's listener for its parent's signals, and its heartbeat to a parent on another
// host. Runs from the acknowledgement until the child reports its exit code.
class ChildControl {
 public:
  ChildControl(MPI_Comm parent, bool heartbeat) : parent_(parent), heartbeat_(heartbeat) {
    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    thread_ = std::thread([this] { Run(); });
  }

  // Stops the thread and reports `code` to the parent.
  void Exit(int code) {
    const uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
    thread_.join();
    if (absl::StatusOr<Hold> hold = Hold::Take(); hold.ok()) {
      mpi_internal::CancelRequest(&control_);
      mpi_internal::CancelRequest(&beat_);
      (void)mpi_internal::SendBytes(parent_, mpi_internal::kTagExit, EncodeI32(code),
                                    Deadline::After(absl::Seconds(5)), "the exit code");
    }
    mpi_internal::Finalize();
  }

 private:
  void Run() {
    {
      absl::StatusOr<Hold> hold = Hold::Take();
      if (!hold.ok()) return;
      MPI_Irecv(&signo_, 1, MPI_INT32_T, 0, mpi_internal::kTagControl, parent_, &control_);
    }
    Deadline next_beat = Deadline::After(absl::ZeroDuration());
    for (;;) {
      {
        absl::StatusOr<Hold> hold = Hold::Take();
        if (!hold.ok()) return;
        int done = 0;
        MPI_Status status;
        if (control_ != MPI_REQUEST_NULL && MPI_Test(&control_, &done, &status) == MPI_SUCCESS &&
            done) {
          const int signo = signo_;
          if (MPI_Irecv(&signo_, 1, MPI_INT32_T, 0, mpi_internal::kTagControl, parent_,
                        &control_) != MPI_SUCCESS) {
            control_ = MPI_REQUEST_NULL;
          }
          if (signo > 0 && signo < NSIG) kill(getpid(), signo);
        }
        if (heartbeat_ && next_beat.Expired()) {
          done = 1;
          if (beat_ != MPI_REQUEST_NULL) MPI_Test(&beat_, &done, MPI_STATUS_IGNORE);
          // One heartbeat in flight at most: a parent that stopped reading costs nothing.
          if (done) {
            MPI_Isend(&zero_, 1, MPI_INT32_T, 0, mpi_internal::kTagHeartbeat, parent_, &beat_);
          }
          next_beat = Deadline::After(mpi_internal::kHeartbeatInterval);
        }
      }
      if (PollUntil(stop_fd_, POLLIN, Deadline::After(absl::Milliseconds(2))).value_or(1) != 0) {
        return;
      }
    }
  }

  MPI_Comm parent_;
  const bool heartbeat_;
  int stop_fd_ = -1;
  // Used by the thread, then by Exit after the join.
  MPI_Request control_ = MPI_REQUEST_NULL;
  MPI_Request beat_ = MPI_REQUEST_NULL;
  int32_t signo_ = 0;
  const int32_t zero_ = 0;
  std::thread thread_;
};

// This process's end of its lifeline to a parent on another host (mpi/bridge.h), held open until
// the process ends, when its kernel closes it. A child this process forks does not hold it (it
// would keep the end open past this process's death).
int lifeline_end = -1;

void KeepLifeline(int fd) {
  if (fd < 0) return;
  lifeline_end = fd;
  pthread_atfork(nullptr, nullptr, [] {
    if (lifeline_end >= 0) close(lifeline_end);
    lifeline_end = -1;
  });
}

[[noreturn]] void Die(absl::string_view what, const absl::Status& s) {
  std::string line = absl::StrCat("mp: mpi child ", getpid(), ": ", what, ": ", s.ToString(), "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  mpi_internal::Finalize();
  _exit(70);
}

// mp::Init in a process MPI_Comm_spawn started with "--mp-start=mpi".
[[noreturn]] void MpiChildEntry(absl::string_view /*argument*/) {
  if (absl::Status s = mpi_internal::Initialize(); !s.ok()) Die("MPI_Init", s);
  MPI_Comm parent = MPI_COMM_NULL;
  MPI_Comm_get_parent(&parent);
  if (parent == MPI_COMM_NULL) {
    Die("starting", absl::FailedPreconditionError(
                        "this process has no MPI parent (it was not started by MPI_Comm_spawn)"));
  }
  MPI_Comm_set_errhandler(parent, MPI_ERRORS_RETURN);
  const Deadline deadline = Deadline::After(kChildRecordTimeout);
  auto always = [] { return absl::OkStatus(); };
  const std::string host = mpi_internal::HostName();
  std::string parent_host;
  std::string bridge_message;
  std::vector<uint64_t> storage;
  size_t record_size = 0;
  {
    absl::StatusOr<Hold> hold = Hold::Take();
    if (!hold.ok()) Die("starting", hold.status());
    if (absl::Status s = mpi_internal::SendBytes(parent, mpi_internal::kTagChildHello,
                                                 EncodeI32(getpid()) + host, deadline, "hello");
        !s.ok()) {
      Die("saying hello", s);
    }
    absl::StatusOr<std::string> p =
        mpi_internal::ReceiveBytes(parent, mpi_internal::kTagParentHello, kMaxHostName, deadline,
                                   "the parent's hello", always);
    if (!p.ok()) Die("reading the parent's hello", p.status());
    parent_host = *std::move(p);
    if (parent_host == kDismissed) {  // a parent that gave up on this spawn (SpawnOne)
      mpi_internal::Finalize();
      _exit(0);
    }
    absl::StatusOr<std::string> b = mpi_internal::ReceiveBytes(
        parent, mpi_internal::kTagBridge, kMaxBridgeMessage, deadline, "the bridges", always);
    if (!b.ok()) Die("reading the bridges", b.status());
    bridge_message = *std::move(b);
    absl::StatusOr<std::string> record = mpi_internal::ReceiveBytes(
        parent, mpi_internal::kTagRecord, kMaxRecord, deadline, "the launch record", always);
    if (!record.ok()) Die("reading the launch record", record.status());
    // 8-byte aligned: FlatBuffers reads scalars in place.
    record_size = record->size();
    storage.resize((record_size + 7) / 8);
    std::memcpy(storage.data(), record->data(), record_size);
  }
  // Outside the hold: connecting waits on the parent, which accepts while it holds one.
  absl::StatusOr<mpi_internal::Bridges> bridges =
      mpi_internal::ConnectBridges(bridge_message, deadline);
  if (!bridges.ok()) Die("connecting the Connections it was passed", bridges.status());
  KeepLifeline(bridges->lifeline);
  const bool local = parent_host == host;
  std::shared_ptr<ChildControl> control;
  process_internal::LaunchRecordRun run;
  run.kernel_parent_pid = getppid();  // Open MPI's daemon
  run.parent_on_this_host = local;
  run.answer = [&](const absl::Status& prepared) -> absl::Status {
    absl::StatusOr<Hold> hold = Hold::Take();
    if (!hold.ok()) return hold.status();
    absl::Status sent = mpi_internal::SendBytes(parent, mpi_internal::kTagAck,
                                                process_internal::EncodeAck(prepared),
                                                Deadline::After(kChildRecordTimeout), "the answer");
    if (prepared.ok() && sent.ok()) control = std::make_shared<ChildControl>(parent, !local);
    return sent;
  };
  run.before_exit = [&control](int code) {
    if (control != nullptr) {
      control->Exit(code);
    } else {
      mpi_internal::Finalize();
    }
  };
  process_internal::RunLaunchRecordWith(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(storage.data()), record_size),
      std::move(bridges->sockets), std::move(run));
}

const bool registered = [] {
  process_internal::RegisterStartMethod("mpi", &MpiStartMethod);
  process_internal::RegisterChildEntry("mpi", &MpiChildEntry);
  return true;
}();

}  // namespace
}  // namespace mp
