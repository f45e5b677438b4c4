// Copyright 2026 The mp Authors.

#include "start_methods/forkserver.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "base/constant_time.h"
#include "base/deadline.h"
#include "base/errno_status.h"
#include "base/io.h"
#include "base/random.h"

namespace mp {
namespace {

constexpr size_t kKeySize = 32;
constexpr uint32_t kMaxRecord = 1u << 30;
// The header of a request: the authkey, then the u32 size of the launch record.
constexpr size_t kHeaderSize = kKeySize + sizeof(uint32_t);
// How long the server waits for one connection's whole request; a connection that has not sent it
// by then is closed. Connections are served side by side, so a silent one delays nobody else.
constexpr absl::Duration kConnectionTimeout = absl::Seconds(10);
// Connections being read at once; past this the oldest is closed to make room.
constexpr size_t kMaxPending = 128;
// Descriptors one request may carry (what one SCM_RIGHTS message can).
constexpr size_t kMaxRequestFds = 253;
// How long to wait before accepting again when accept(2) runs out of descriptors or memory.
constexpr absl::Duration kAcceptBackoff = absl::Milliseconds(100);
// How often children the server could not open a pidfd for are checked.
constexpr absl::Duration kPidlessPollInterval = absl::Milliseconds(100);
// How long Stop waits for a server to exit after its lifeline closed before it kills it.
constexpr absl::Duration kStopTimeout = absl::Seconds(10);
// How long Launch waits to learn whether a server that closed a connection without an answer died.
constexpr absl::Duration kServerDeathGrace = absl::Seconds(5);

absl::Span<uint8_t> Bytes(void* data, size_t size) {
  return absl::Span<uint8_t>(static_cast<uint8_t*>(data), size);
}
absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

void AppendU32(std::string* out, uint32_t v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

// ---------------------------------------------------------------------------------------------------
// The client side of one child.

class ServerChild : public ChildHandle {
 public:
  ServerChild(pid_t pid, int conn, int pidfd) : pid_(pid), conn_(conn), pidfd_(pidfd) {}
  ~ServerChild() override {
    close(conn_);
    if (pidfd_ >= 0) close(pidfd_);
  }
  int pid() const override { return pid_; }
  int sentinel() const override { return server_gone_ && pidfd_ >= 0 ? pidfd_ : conn_; }

  std::optional<int> Poll() override {
    if (exit_code_.has_value()) return exit_code_;
    if (server_gone_) return PollOrphan();
    while (received_ < sizeof(buffer_)) {
      ssize_t n = recv(conn_, buffer_ + received_, sizeof(buffer_) - received_, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return std::nullopt;  // EAGAIN: still running
      if (n == 0) {
        // The server died before it could report. The child may still run (orphaned): from now on
        // its pidfd tells when it ends; its exit status is lost (255, as in CPython).
        server_gone_ = true;
        return PollOrphan();
      }
      received_ += static_cast<size_t>(n);
    }
    if (buffer_[0] != 'X') {
      exit_code_ = 255;
      return exit_code_;
    }
    int32_t status;
    std::memcpy(&status, buffer_ + 1, sizeof(status));
    exit_code_ = process_internal::ExitCodeFromWaitStatus(status);
    return exit_code_;
  }

  absl::Status Signal(int signo) override {
    if (Poll().has_value()) return absl::OkStatus();
    if (pidfd_ >= 0) return process_internal::PidfdSignal(pidfd_, pid_, signo);
    if (kill(pid_, signo) != 0 && errno != ESRCH) {
      return ErrnoStatus(errno, absl::StrCat("signal ", signo, " to forkserver child ", pid_));
    }
    return absl::OkStatus();
  }

 private:
  std::optional<int> PollOrphan() {
    if (pidfd_ >= 0) {
      absl::StatusOr<short> ended =
          PollUntil(pidfd_, POLLIN, Deadline::After(absl::ZeroDuration()));
      if (ended.ok() && *ended == 0) return std::nullopt;
    }
    exit_code_ = 255;
    return exit_code_;
  }

  pid_t pid_;
  int conn_;
  int pidfd_;
  bool server_gone_ = false;
  char buffer_[5];
  size_t received_ = 0;
  std::optional<int> exit_code_;
};

// ---------------------------------------------------------------------------------------------------
// The server (mp::Init with MP_START=forkserver:<lifeline fd>:<listener fd>).
//
// One thread (so that it can fork safely) serving every connection side by side: a poll loop over
// the lifeline, the listening socket, every connection still sending its request (non-blocking,
// each with its own deadline) and the pidfds of the children it forked.

// A child the server forked, until it ends. pidfd is -1 when pidfd_open failed (descriptors
// exhausted): such a child is checked with waitpid every kPidlessPollInterval instead.
struct Running {
  pid_t pid;
  int pidfd;
  int conn;
};

// A connection whose request is still arriving.
struct Pending {
  int conn = -1;  // -1 once closed or handed to a child
  pid_t peer_pid = 0;
  Deadline deadline = Deadline::Never();
  uint8_t header[kHeaderSize] = {};
  size_t header_got = 0;
  uint32_t size = 0;
  // 8-byte aligned storage for the record: FlatBuffers reads scalars in place.
  std::vector<uint64_t> record;
  size_t record_got = 0;
  std::vector<int> fds;  // descriptors that came with the request

  void Close() {
    for (int f : fds) close(f);
    fds.clear();
    if (conn >= 0) close(conn);
    conn = -1;
  }
};

enum class Progress { kWaiting, kComplete, kDrop };

// Reads what has arrived on `p` without blocking. The key is checked (in constant time) as soon as
// it is complete, the record size as soon as it is known.
Progress ReadRequest(Pending& p, const std::string& key) {
  for (;;) {
    absl::Span<uint8_t> want;
    if (p.header_got < kHeaderSize) {
      want = absl::Span<uint8_t>(p.header + p.header_got, kHeaderSize - p.header_got);
    } else if (p.record_got < p.size) {
      want =
          Bytes(reinterpret_cast<uint8_t*>(p.record.data()) + p.record_got, p.size - p.record_got);
    } else {
      return Progress::kComplete;
    }
    // An expired deadline: recvmsg once, no wait.
    absl::StatusOr<size_t> got =
        process_internal::RecvWithFds(p.conn, want, &p.fds, Deadline::After(absl::ZeroDuration()));
    if (!got.ok()) {
      return absl::IsDeadlineExceeded(got.status()) ? Progress::kWaiting : Progress::kDrop;
    }
    if (p.fds.size() > kMaxRequestFds) return Progress::kDrop;
    if (p.header_got >= kHeaderSize) {
      p.record_got += *got;
      continue;
    }
    const bool had_key = p.header_got >= kKeySize;
    p.header_got += *got;
    if (!had_key && p.header_got >= kKeySize &&
        !ConstantTimeEqual(absl::string_view(reinterpret_cast<const char*>(p.header), kKeySize),
                           key)) {
      return Progress::kDrop;
    }
    if (p.header_got == kHeaderSize) {
      std::memcpy(&p.size, p.header + kKeySize, sizeof(p.size));
      if (p.size > kMaxRecord) return Progress::kDrop;
      p.record.resize((p.size + 7) / 8);
    }
  }
}

[[noreturn]] void ServerExit(const std::string& path, int code) {
  if (!path.empty()) {
    unlink(path.c_str());
    rmdir(path.substr(0, path.rfind('/')).c_str());
  }
  process_internal::FlushStdio();
  _exit(code);
}

// SIGINT's disposition when the server started, restored in every child it forks.
struct sigaction g_owner_sigint {};

class ServerLoop {
 public:
  ServerLoop(int lifeline, int listener, std::string key, std::string path)
      : lifeline_(lifeline), listener_(listener), key_(std::move(key)), path_(std::move(path)) {}

  [[noreturn]] void Run() {
    // accept4 in a loop until EAGAIN: the listening socket must not block.
    int flags = fcntl(listener_, F_GETFL);
    if (flags < 0 || fcntl(listener_, F_SETFL, flags | O_NONBLOCK) != 0) {
      std::perror("mp: forkserver: making the listening socket non-blocking");
      ServerExit(path_, 70);
    }
    std::vector<pollfd> pfds;
    for (;;) {
      pfds.clear();
      pfds.push_back({lifeline_, POLLIN, 0});
      const bool accepting = accept_backoff_.Expired();
      pfds.push_back({accepting ? listener_ : -1, POLLIN, 0});  // poll ignores negative fds
      Deadline wake = accepting ? Deadline::Never() : accept_backoff_;
      for (const Running& r : running_) {
        pfds.push_back({r.pidfd, POLLIN, 0});
        if (r.pidfd < 0) wake = wake.CappedAfter(kPidlessPollInterval);
      }
      for (const Pending& p : pending_) {
        pfds.push_back({p.conn, POLLIN, 0});
        wake = Deadline::Earlier(wake, p.deadline);
      }
      const size_t running_count = running_.size();
      absl::StatusOr<int> n = PollUntil(absl::MakeSpan(pfds), wake);
      if (!n.ok()) {
        std::fprintf(stderr, "mp: forkserver poll: %s\n", n.status().ToString().c_str());
        ServerExit(path_, 70);
      }
      if (pfds[0].revents != 0) {
        char c;
        ssize_t r = read(lifeline_, &c, 1);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) ServerExit(path_, 0);
      }
      ReportEnded(absl::Span<const pollfd>(pfds).subspan(2, running_count));
      ServePending(absl::Span<const pollfd>(pfds).subspan(2 + running_count));
      if (pfds[1].revents != 0) AcceptAll();
    }
  }

 private:
  // Children that ended: report each on its connection ("X" + wait status) and forget it.
  // `ready[i]` is the poll entry of running_[i].
  void ReportEnded(absl::Span<const pollfd> ready) {
    std::vector<Running> still;
    for (size_t i = 0; i < running_.size(); ++i) {
      const Running& r = running_[i];
      if (r.pidfd >= 0 && ready[i].revents == 0) {
        still.push_back(r);
        continue;
      }
      int status = 0;
      pid_t w;
      do {
        w = waitpid(r.pid, &status, WNOHANG);
      } while (w < 0 && errno == EINTR);
      if (w == 0) {
        still.push_back(r);
        continue;
      }
      std::string x(1, 'X');
      int32_t s32 = w == r.pid ? status : (255 << 8);
      x.append(reinterpret_cast<const char*>(&s32), sizeof(s32));
      // The parent may be gone; MSG_NOSIGNAL keeps a closed connection from killing the server.
      (void)send(r.conn, x.data(), x.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      close(r.conn);
      if (r.pidfd >= 0) close(r.pidfd);
    }
    running_.swap(still);
  }

  // Reads every connection that has something, forks a child for each complete request, and closes
  // those that failed or passed their deadline. `ready` holds the poll entries of pending_, which
  // may be shorter than pending_ after AcceptAll grew it.
  void ServePending(absl::Span<const pollfd> ready) {
    for (size_t i = 0; i < pending_.size(); ++i) {
      Pending& p = pending_[i];
      if (i < ready.size() && ready[i].revents != 0) {
        switch (ReadRequest(p, key_)) {
          case Progress::kWaiting:
            break;
          case Progress::kComplete:
            Fork(i);
            continue;
          case Progress::kDrop:
            p.Close();
            continue;
        }
      }
      if (p.deadline.Expired()) p.Close();
    }
    std::erase_if(pending_, [](const Pending& p) { return p.conn < 0; });
  }

  // Forks the child that pending_[index]'s complete request asks for.
  void Fork(size_t index) {
    Pending& p = pending_[index];
    const pid_t server = getpid();
    pid_t pid = fork();
    if (pid < 0) {
      // Nothing to wait for: the answer fits in the empty socket buffer, or is lost.
      (void)process_internal::WriteAck(p.conn, ErrnoStatus(errno, "fork in the forkserver"), -1,
                                       Deadline::After(absl::ZeroDuration()));
      p.Close();
      return;
    }
    if (pid == 0) {
      // The child gets the SIGINT disposition the server started with (the owner's), not the
      // server's SIG_IGN (see ForkServerEntry), and none of the server's descriptors but its copy
      // of the lifeline, which tells a kill_on_parent_death child whether the owner (who asked
      // for it) is still there; ChildMain closes it before the target runs.
      sigaction(SIGINT, &g_owner_sigint, nullptr);
      close(listener_);
      for (const Running& r : running_) {
        if (r.pidfd >= 0) close(r.pidfd);
        close(r.conn);
      }
      for (size_t j = 0; j < pending_.size(); ++j) {
        if (j != index) pending_[j].Close();
      }
      process_internal::RunLaunchRecord(
          absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(p.record.data()), p.size),
          std::move(p.fds), p.conn, /*send_pidfd=*/true, /*parent_pid=*/p.peer_pid,
          /*kernel_parent_pid=*/server, /*lifeline_fd=*/lifeline_);
    }
    const int conn = p.conn;
    p.conn = -1;  // now the child's connection, watched in running_
    p.Close();    // the server's copies of the request's descriptors
    absl::StatusOr<int> pidfd = process_internal::PidfdOpen(pid);
    running_.push_back(Running{pid, pidfd.ok() ? *pidfd : -1, conn});
  }

  // Accepts every waiting connection from a peer with this server's uid.
  void AcceptAll() {
    for (;;) {
      int conn = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (conn < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays queued; try again shortly
          // instead of spinning on a listener that stays readable.
          accept_backoff_ = Deadline::After(kAcceptBackoff);
        }
        return;
      }
      ucred cred{};
      socklen_t len = sizeof(cred);
      if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid()) {
        close(conn);
        continue;
      }
      if (pending_.size() >= kMaxPending) {
        pending_.front().Close();
        pending_.erase(pending_.begin());
      }
      Pending p;
      p.conn = conn;
      p.peer_pid = cred.pid;
      p.deadline = Deadline::After(kConnectionTimeout);
      pending_.push_back(std::move(p));
    }
  }

  const int lifeline_;
  const int listener_;
  const std::string key_;
  const std::string path_;
  std::vector<Running> running_;
  std::vector<Pending> pending_;
  Deadline accept_backoff_ = Deadline::After(absl::ZeroDuration());
};

[[noreturn]] void ForkServerEntry(absl::string_view argument) {
  // Like CPython's forkserver, ignore SIGINT: a Ctrl-C reaches the whole foreground process group,
  // server included, and a server killed by it could not remove its directory. The owner's death
  // (from that same Ctrl-C) closes the lifeline, and the server then exits cleanly.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGINT, &ignore, &g_owner_sigint);
  std::vector<std::string> parts = absl::StrSplit(argument, ':');
  int lifeline = -1;
  int listener = -1;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &lifeline) ||
      !absl::SimpleAtoi(parts[1], &listener)) {
    std::fprintf(stderr, "mp: malformed forkserver marker '%.*s'\n",
                 static_cast<int>(argument.size()), argument.data());
    _exit(70);
  }
  // Configuration: key, u32 path length, path.
  const Deadline deadline = Deadline::After(absl::Seconds(60));
  std::string key(kKeySize, '\0');
  uint32_t path_size = 0;
  std::string path;
  absl::Status s =
      ReadFull(lifeline, Bytes(key.data(), key.size()), deadline, "mp: the forkserver's authkey");
  if (s.ok()) {
    s = ReadFull(lifeline, Bytes(&path_size, sizeof(path_size)), deadline,
                 "mp: the forkserver's socket path length");
  }
  if (s.ok() && path_size > 4096) s = absl::InvalidArgumentError("socket path too long");
  if (s.ok()) {
    path.resize(path_size);
    s = ReadFull(lifeline, Bytes(path.data(), path.size()), deadline,
                 "mp: the forkserver's socket path");
  }
  if (!s.ok()) {
    std::string line = absl::StrCat("mp: forkserver ", getpid(),
                                    " could not read its configuration: ", s.ToString(), "\n");
    std::fwrite(line.data(), 1, line.size(), stderr);
    ServerExit(path, 70);
  }
  ServerLoop(lifeline, listener, std::move(key), std::move(path)).Run();
}

// ---------------------------------------------------------------------------------------------------
// Every live ForkServer of this process, for the exit hook and the atfork handler.

struct Instances {
  std::mutex mu;
  std::set<ForkServer*> all;
};
Instances& AllInstances() {
  static Instances* const i = new Instances;
  return *i;
}

void StopAll() {
  std::vector<ForkServer*> all;
  {
    std::lock_guard<std::mutex> lock(AllInstances().mu);
    all.assign(AllInstances().all.begin(), AllInstances().all.end());
  }
  for (ForkServer* f : all) f->Stop();
}

void AtForkPrepare() { AllInstances().mu.lock(); }
void AtForkParent() { AllInstances().mu.unlock(); }

}  // namespace

// In a fork child: let go of every inherited server (its owner is the parent).
void ForkServerAtForkChild() {
  for (ForkServer* f : AllInstances().all) {
    int fd = f->lifeline_.exchange(-1);
    if (fd >= 0) close(fd);
  }
  AllInstances().mu.unlock();
}

ForkServer::ForkServer(ForkServerOptions options) : ForkServer(options, false) {}

ForkServer::ForkServer(ForkServerOptions options, bool forked_here)
    : options_(options), forked_here_(forked_here), owner_pid_(getpid()) {
  std::lock_guard<std::mutex> lock(AllInstances().mu);
  AllInstances().all.insert(this);
}

absl::Status ForkServer::CheckTarget(const Target& target) const {
  if (!forked_here_) return StartMethod::CheckTarget(target);
  // The child decodes its arguments from the launch record (it is a fork of the server, not of the
  // process that calls Start), so a callable cannot travel; fork-domain objects may (the narrow
  // contract of forked_server.h: they existed when the server was forked).
  if (!target.registered()) {
    return absl::FailedPreconditionError(
        "mp: a pool's fork server starts its children from a copy of the process made when the "
        "pool was created, so it can only run a registered function: pass "
        "mp::Call<&Function>(args...) instead of a callable");
  }
  return absl::OkStatus();
}

ForkServer::~ForkServer() {
  Stop();
  std::lock_guard<std::mutex> lock(AllInstances().mu);
  AllInstances().all.erase(this);
}

void ForkServer::ForgetInheritedLocked() {
  if (owner_pid_ == getpid()) return;
  // Inherited through fork: the server belongs to the parent. Its lifeline copy was closed by the
  // atfork handler; drop the rest without touching the server or its directory.
  int fd = lifeline_.exchange(-1);
  if (fd >= 0) close(fd);
  if (server_.pidfd >= 0) close(server_.pidfd);
  server_ = Server();
  owner_pid_ = getpid();
}

void ForkServer::ReapIfDeadLocked() {
  if (server_.pid <= 0) return;
  pid_t w;
  do {
    w = waitpid(server_.pid, nullptr, WNOHANG);
  } while (w < 0 && errno == EINTR);
  if (w == 0) return;  // running
  // Dead (reaped now) or not ours any more: clean up after it.
  int fd = lifeline_.exchange(-1);
  if (fd >= 0) close(fd);
  if (server_.pidfd >= 0) close(server_.pidfd);
  unlink(server_.path.c_str());
  rmdir(server_.dir.c_str());
  server_ = Server();
}

void ForkServer::StopLocked() {
  ForgetInheritedLocked();
  int fd = lifeline_.exchange(-1);
  if (fd >= 0) close(fd);  // the server sees end of file and exits
  if (server_.pid > 0) {
    // It exits promptly; one that does not (stopped, wedged) is killed after kStopTimeout.
    if (server_.pidfd >= 0) {
      absl::StatusOr<short> ended = PollUntil(server_.pidfd, POLLIN, Deadline::After(kStopTimeout));
      if (!ended.ok() || *ended == 0) kill(server_.pid, SIGKILL);
    }
    while (waitpid(server_.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (server_.pidfd >= 0) close(server_.pidfd);
  if (!server_.path.empty()) unlink(server_.path.c_str());
  if (!server_.dir.empty()) rmdir(server_.dir.c_str());
  server_ = Server();
}

void ForkServer::Stop() {
  MutexLock lock(&mu_);
  StopLocked();
}

std::optional<pid_t> ForkServer::ServerPid() const {
  MutexLock lock(&mu_);
  if (owner_pid_ != getpid() || server_.pid <= 0) return std::nullopt;
  return server_.pid;
}

std::string ForkServer::SocketDirectory() const {
  MutexLock lock(&mu_);
  if (owner_pid_ != getpid()) return "";
  return server_.dir;
}

namespace {

void CloseEndpoints(int listener, int lifeline_r, int lifeline_w) {
  for (int fd : {listener, lifeline_r, lifeline_w}) {
    if (fd >= 0) close(fd);
  }
}

void RemoveServerFiles(const std::string& path, const std::string& dir) {
  if (!path.empty()) unlink(path.c_str());
  if (!dir.empty()) rmdir(dir.c_str());
}

// A server that could not be started: closes its endpoints, removes its socket and directory, and
// returns `s`.
absl::Status AbandonServer(absl::Status s, int listener, int lifeline_r, int lifeline_w,
                           const std::string& path, const std::string& dir) {
  CloseEndpoints(listener, lifeline_r, lifeline_w);
  RemoveServerFiles(path, dir);
  return s;
}

// The owner's side once the server was started as `pid` (or failed to start): closes the server's
// ends of the endpoints (`listener`, `lifeline_r`, set to -1; the server has its own copies) and
// opens a pidfd for the server, which is killed and reaped when that fails.
absl::StatusOr<int> KeepOwnerSide(absl::StatusOr<pid_t> pid, int& listener, int& lifeline_r) {
  CloseEndpoints(listener, lifeline_r, -1);
  listener = lifeline_r = -1;
  if (!pid.ok()) return pid.status();
  absl::StatusOr<int> pidfd = process_internal::PidfdOpen(*pid);
  if (!pidfd.ok()) {
    kill(*pid, SIGKILL);
    waitpid(*pid, nullptr, 0);
  }
  return pidfd;
}

}  // namespace

absl::Status ForkServer::Endpoints::Abandon(absl::Status s) const {
  return AbandonServer(std::move(s), listener, lifeline_r, lifeline_w, server.path, server.dir);
}

absl::StatusOr<ForkServer::Endpoints> ForkServer::MakeEndpoints() {
  std::string key(kKeySize, '\0');
  if (absl::Status s = RandomBytes(Bytes(key.data(), key.size())); !s.ok()) return s;
  char dir_template[] = "/tmp/mp-forkserver-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    return ErrnoStatus(errno, "mkdtemp(/tmp/mp-forkserver-XXXXXX)");
  }
  Endpoints e;
  e.server.dir = dir_template;
  e.server.path = e.server.dir + "/s";
  e.server.key = std::move(key);
  e.listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (e.listener < 0) return e.Abandon(ErrnoStatus(errno, "socket(AF_UNIX) for the forkserver"));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, e.server.path.c_str(), e.server.path.size() + 1);
  if (bind(e.listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return e.Abandon(ErrnoStatus(errno, absl::StrCat("bind(", e.server.path, ")")));
  }
  if (listen(e.listener, SOMAXCONN) != 0) {
    return e.Abandon(ErrnoStatus(errno, "listen on the forkserver socket"));
  }
  int lifeline[2];
  if (pipe2(lifeline, O_CLOEXEC) != 0)
    return e.Abandon(ErrnoStatus(errno, "pipe2 for the forkserver"));
  e.lifeline_r = lifeline[0];
  e.lifeline_w = lifeline[1];
  return e;
}

absl::Status ForkServer::StartServerLocked() {
  if (absl::Status s = process_internal::CheckCanReexecute("forkserver"); !s.ok()) return s;
  absl::StatusOr<Endpoints> e = MakeEndpoints();
  if (!e.ok()) return e.status();
  Server& server = e->server;  // installed as server_ once it runs
  std::string config = server.key;
  AppendU32(&config, static_cast<uint32_t>(server.path.size()));
  config += server.path;
  // Well under the pipe's capacity: the write completes before the server runs.
  if (absl::Status s = WriteFull(e->lifeline_w, Bytes(config), Deadline::After(absl::Seconds(10)),
                                 "mp: the forkserver's configuration");
      !s.ok()) {
    return e->Abandon(s);
  }
  process_internal::FlushStdio();
  absl::StatusOr<pid_t> pid = process_internal::SpawnSelf(
      {e->lifeline_r, e->listener}, {process_internal::ProgramArgv0(), "--mp-forkserver"},
      process_internal::ChildEnvironment("forkserver:3:4"));
  absl::StatusOr<int> pidfd = KeepOwnerSide(pid, e->listener, e->lifeline_r);
  if (!pidfd.ok()) return e->Abandon(pidfd.status());
  server.pid = *pid;
  server.pidfd = *pidfd;
  server_ = std::move(server);
  lifeline_.store(e->lifeline_w);
  return absl::OkStatus();
}

absl::Status ForkServer::ForkServerFromHere() {
  MutexLock fork_lock(&fork_mu_);
  {
    MutexLock lock(&mu_);
    ForgetInheritedLocked();
    ReapIfDeadLocked();
    if (server_.pid > 0) return absl::OkStatus();  // another thread made one meanwhile
  }
  absl::StatusOr<Endpoints> e = MakeEndpoints();
  if (!e.ok()) return e.status();
  Server& server = e->server;  // installed as server_ once it runs
  // The one fork of this process whose warning is right for every child the server forks: they
  // are copies of this moment. Made at Pool::Create, before the pool's threads, it warns only
  // about the user's.
  process_internal::WarnIfForkingThreads();
  process_internal::FlushStdio();
  const pid_t pid = fork();
  if (pid < 0) return e->Abandon(ErrnoStatus(errno, "fork of a forkserver from this process"));
  if (pid == 0) {
    // The server: single-threaded from here on, it never returns into the owner's code. Its
    // descriptors are the owner's at this moment (as a fork child's), minus the lifeline's write
    // end (other servers' lifelines were closed by the atfork handler).
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGINT, &ignore, &g_owner_sigint);  // as ForkServerEntry
    close(e->lifeline_w);
    ServerLoop(e->lifeline_r, e->listener, server.key, server.path).Run();
  }
  absl::StatusOr<int> pidfd = KeepOwnerSide(pid, e->listener, e->lifeline_r);
  if (!pidfd.ok()) return e->Abandon(pidfd.status());
  server.pid = pid;
  server.pidfd = *pidfd;
  MutexLock lock(&mu_);
  server_ = std::move(server);
  lifeline_.store(e->lifeline_w);
  return absl::OkStatus();
}

absl::StatusOr<ForkServer::Server> ForkServer::EnsureRunning() {
  // A server forked from here is made outside mu_ (ForkServerFromHere); a second round finds it
  // unless it died at once.
  for (int round = 0;; ++round) {
    {
      MutexLock lock(&mu_);
      ForgetInheritedLocked();
      ReapIfDeadLocked();
      if (server_.pid <= 0 && !forked_here_) {
        if (absl::Status s = StartServerLocked(); !s.ok()) return s;
      }
      if (server_.pid > 0) {
        Server copy;
        copy.pid = server_.pid;
        copy.path = server_.path;
        copy.key = server_.key;
        return copy;
      }
    }
    if (round > 0) {
      return absl::UnavailableError("mp: the fork server forked from this process died at once");
    }
    if (absl::Status s = ForkServerFromHere(); !s.ok()) return s;
  }
}

absl::StatusOr<std::unique_ptr<ChildHandle>> ForkServer::Launch(const LaunchSpec& spec) {
  const std::string record = process_internal::BuildLaunchRecord(spec, Name());
  std::string request;
  AppendU32(&request, static_cast<uint32_t>(record.size()));
  request += record;
  absl::Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<Server> server = EnsureRunning();
    if (!server.ok()) return server.status();
    const Deadline deadline = Deadline::After(options_.handshake_timeout);
    // Failures before the server answered anything mean it is gone: restart it once.
    bool server_gone = false;
    int conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (conn < 0) return ErrnoStatus(errno, "socket(AF_UNIX) to reach the forkserver");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, server->path.c_str(), server->path.size() + 1);
    absl::Status s;
    if (connect(conn, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      s = ErrnoStatus(errno, absl::StrCat("connect(", server->path, ")"));
      server_gone = true;
    }
    if (s.ok()) {
      s = WriteFull(conn, Bytes(server->key), deadline, "mp: the authkey to the forkserver");
      server_gone = !s.ok();
    }
    if (s.ok()) {
      s = process_internal::SendWithFds(conn, Bytes(request), spec.target->fds(), deadline);
      server_gone = !s.ok();
    }
    if (s.ok()) {
      int pidfd = -1;
      absl::StatusOr<pid_t> pid = process_internal::ReadAck(
          conn, deadline,
          absl::StrCat("the forkserver (pid ", server->pid,
                       ") closed the connection before the child started"),
          &pidfd);
      if (pid.ok()) return std::make_unique<ServerChild>(*pid, conn, pidfd);
      s = pid.status();
      // End of file with nothing said: did the server die?
      if (absl::IsAborted(s)) {
        MutexLock lock(&mu_);
        if (server_.pidfd >= 0 && server_.pid == server->pid) {
          absl::StatusOr<short> ended =
              PollUntil(server_.pidfd, POLLIN, Deadline::After(kServerDeathGrace));
          server_gone = ended.ok() && *ended != 0;
        }
      }
    }
    close(conn);
    last = s;
    if (!server_gone) break;
    MutexLock lock(&mu_);
    if (server_.pid == server->pid) {
      kill(server_.pid, SIGKILL);
      ReapIfDeadLocked();
      if (server_.pid > 0) {  // not reaped yet: wait for the SIGKILL to land
        while (waitpid(server_.pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        ReapIfDeadLocked();
      }
    }
  }
  return last;
}

std::shared_ptr<ForkServer> DefaultForkServer() {
  static auto* const server = new std::shared_ptr<ForkServer>(std::make_shared<ForkServer>());
  return *server;
}

std::shared_ptr<StartMethod> ForkServerStartMethod() { return DefaultForkServer(); }

namespace {
const bool registered = [] {
  process_internal::RegisterStartMethod("forkserver", &ForkServerStartMethod);
  process_internal::RegisterChildEntry("forkserver", &ForkServerEntry);
  process_internal::AtExitAfterChildren(&StopAll);
  pthread_atfork(&AtForkPrepare, &AtForkParent, &ForkServerAtForkChild);
  return true;
}();
}  // namespace

}  // namespace mp
