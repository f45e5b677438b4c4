// Copyright 2026 The mp Authors.

#include "start_methods/forkserver.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mp {
namespace {

using process_internal::ErrnoStatus;

constexpr size_t kKeySize = 32;
constexpr uint32_t kMaxRecord = 1u << 30;
// Bounds each step of serving one connection, so a stuck client cannot stall the server for long.
constexpr absl::Duration kServeTimeout = absl::Seconds(10);

bool EqualConstantTime(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

absl::StatusOr<std::string> RandomKey() {
  std::string key(kKeySize, '\0');
  size_t done = 0;
  while (done < key.size()) {
    ssize_t n = getrandom(key.data() + done, key.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "getrandom for the forkserver authkey");
    }
    done += static_cast<size_t>(n);
  }
  return key;
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
    int r = pidfd_ >= 0 ? static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd_, signo, nullptr, 0))
                        : kill(pid_, signo);
    if (r != 0 && errno != ESRCH) {
      return ErrnoStatus(errno, absl::StrCat("signal ", signo, " to forkserver child ", pid_));
    }
    return absl::OkStatus();
  }

 private:
  std::optional<int> PollOrphan() {
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      int r;
      do {
        r = poll(&p, 1, 0);
      } while (r < 0 && errno == EINTR);
      if (r == 0) return std::nullopt;
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

struct Running {
  pid_t pid;
  int pidfd;
  int conn;
};

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

// Serves one connection: authenticates it, reads the request and forks the child.
void ServeConnection(int conn, int lifeline, int listener, const std::string& key,
                     std::vector<Running>* running) {
  const absl::Time deadline = absl::Now() + kServeTimeout;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid()) {
    close(conn);
    return;
  }
  std::string offered(kKeySize, '\0');
  if (!process_internal::ReadFull(conn, offered.data(), offered.size(), deadline).ok() ||
      !EqualConstantTime(offered, key)) {
    close(conn);
    return;
  }
  std::vector<int> fds;
  auto drop = [&] {
    for (int f : fds) close(f);
    close(conn);
  };
  uint32_t size = 0;
  absl::StatusOr<size_t> got = process_internal::RecvWithFds(conn, &size, sizeof(size), &fds,
                                                             deadline);
  if (!got.ok()) return drop();
  if (*got < sizeof(size) &&
      !process_internal::ReadFull(conn, reinterpret_cast<char*>(&size) + *got,
                                  sizeof(size) - *got, deadline)
           .ok()) {
    return drop();
  }
  if (size > kMaxRecord) return drop();
  std::vector<uint64_t> storage((size + 7) / 8);
  if (!process_internal::ReadFull(conn, storage.data(), size, deadline).ok()) return drop();

  pid_t pid = fork();
  if (pid < 0) {
    (void)process_internal::WriteAck(conn, ErrnoStatus(errno, "fork in the forkserver"), -1);
    return drop();
  }
  if (pid == 0) {
    // The child gets the SIGINT disposition the server started with (the owner's), not the
    // server's SIG_IGN (see ForkServerEntry).
    sigaction(SIGINT, &g_owner_sigint, nullptr);
    close(lifeline);
    close(listener);
    for (const Running& r : *running) {
      close(r.pidfd);
      close(r.conn);
    }
    process_internal::RunLaunchRecord(
        absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(storage.data()), size),
        std::move(fds), conn, /*send_pidfd=*/true, /*parent_pid=*/cred.pid);
  }
  for (int f : fds) close(f);
  absl::StatusOr<int> pidfd = process_internal::PidfdOpen(pid);
  if (!pidfd.ok()) {
    // Cannot watch it without a pidfd: wait for it here and report (rare; old kernels only).
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::string x(1, 'X');
    int32_t s32 = status;
    x.append(reinterpret_cast<const char*>(&s32), sizeof(s32));
    (void)process_internal::WriteFull(conn, x.data(), x.size(), deadline);
    close(conn);
    return;
  }
  running->push_back(Running{pid, *pidfd, conn});
}

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
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  std::string key(kKeySize, '\0');
  uint32_t path_size = 0;
  std::string path;
  absl::Status s = process_internal::ReadFull(lifeline, key.data(), key.size(), deadline);
  if (s.ok()) s = process_internal::ReadFull(lifeline, &path_size, sizeof(path_size), deadline);
  if (s.ok() && path_size > 4096) s = absl::InvalidArgumentError("socket path too long");
  if (s.ok()) {
    path.resize(path_size);
    s = process_internal::ReadFull(lifeline, path.data(), path.size(), deadline);
  }
  if (!s.ok()) {
    std::string line = absl::StrCat("mp: forkserver ", getpid(),
                                    " could not read its configuration: ", s.ToString(), "\n");
    std::fwrite(line.data(), 1, line.size(), stderr);
    ServerExit(path, 70);
  }

  std::vector<Running> running;
  std::vector<pollfd> pfds;
  for (;;) {
    pfds.clear();
    pfds.push_back({lifeline, POLLIN, 0});
    pfds.push_back({listener, POLLIN, 0});
    for (const Running& r : running) pfds.push_back({r.pidfd, POLLIN, 0});
    int n = poll(pfds.data(), pfds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::perror("mp: forkserver poll");
      ServerExit(path, 70);
    }
    if (pfds[0].revents != 0) {
      char c;
      ssize_t r = read(lifeline, &c, 1);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) ServerExit(path, 0);
    }
    // Children that ended: report and forget them. (Before accepting, so indices stay valid.)
    std::vector<Running> still;
    for (size_t i = 0; i < running.size(); ++i) {
      const Running& r = running[i];
      if (pfds[2 + i].revents == 0) {
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
      close(r.pidfd);
    }
    running.swap(still);
    if (pfds[1].revents != 0) {
      int conn = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn >= 0) ServeConnection(conn, lifeline, listener, key, &running);
    }
  }
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

ForkServer::ForkServer(ForkServerOptions options) : options_(options), owner_pid_(getpid()) {
  std::lock_guard<std::mutex> lock(AllInstances().mu);
  AllInstances().all.insert(this);
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
    // It exits promptly; a server stuck on a connection is killed after the serve timeout.
    if (server_.pidfd >= 0 &&
        !process_internal::WaitFd(server_.pidfd, POLLIN, absl::Now() + kServeTimeout).ok()) {
      kill(server_.pid, SIGKILL);
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
  std::lock_guard<std::mutex> lock(mu_);
  StopLocked();
}

std::optional<pid_t> ForkServer::ServerPid() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (owner_pid_ != getpid() || server_.pid <= 0) return std::nullopt;
  return server_.pid;
}

std::string ForkServer::SocketDirectory() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (owner_pid_ != getpid()) return "";
  return server_.dir;
}

absl::Status ForkServer::StartServerLocked() {
  if (absl::Status s = process_internal::CheckCanReexecute("forkserver"); !s.ok()) return s;
  absl::StatusOr<std::string> key = RandomKey();
  if (!key.ok()) return key.status();
  char dir_template[] = "/tmp/mp-forkserver-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    return ErrnoStatus(errno, "mkdtemp(/tmp/mp-forkserver-XXXXXX)");
  }
  Server server;
  server.dir = dir_template;
  server.path = server.dir + "/s";
  server.key = *key;
  auto fail = [&server](absl::Status s, int a = -1, int b = -1, int c = -1) {
    for (int fd : {a, b, c}) {
      if (fd >= 0) close(fd);
    }
    unlink(server.path.c_str());
    rmdir(server.dir.c_str());
    return s;
  };
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return fail(ErrnoStatus(errno, "socket(AF_UNIX) for the forkserver"));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, server.path.c_str(), server.path.size() + 1);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail(ErrnoStatus(errno, absl::StrCat("bind(", server.path, ")")), listener);
  }
  if (listen(listener, SOMAXCONN) != 0) {
    return fail(ErrnoStatus(errno, "listen on the forkserver socket"), listener);
  }
  int lifeline[2];
  if (pipe2(lifeline, O_CLOEXEC) != 0) {
    return fail(ErrnoStatus(errno, "pipe2 for the forkserver"), listener);
  }
  std::string config = server.key;
  AppendU32(&config, static_cast<uint32_t>(server.path.size()));
  config += server.path;
  // Well under the pipe's capacity: the write completes before the server runs.
  if (absl::Status s = process_internal::WriteFull(lifeline[1], config.data(), config.size(),
                                                   absl::Now() + absl::Seconds(10));
      !s.ok()) {
    return fail(s, listener, lifeline[0], lifeline[1]);
  }
  process_internal::FlushStdio();
  absl::StatusOr<pid_t> pid = process_internal::SpawnSelf(
      {lifeline[0], listener}, {process_internal::ProgramArgv0(), "--mp-forkserver"},
      process_internal::ChildEnvironment("forkserver:3:4"));
  close(lifeline[0]);
  close(listener);
  if (!pid.ok()) return fail(pid.status(), lifeline[1]);
  absl::StatusOr<int> pidfd = process_internal::PidfdOpen(*pid);
  if (!pidfd.ok()) {
    close(lifeline[1]);
    kill(*pid, SIGKILL);
    waitpid(*pid, nullptr, 0);
    return fail(pidfd.status());
  }
  server.pid = *pid;
  server.pidfd = *pidfd;
  server_ = std::move(server);
  lifeline_.store(lifeline[1]);
  return absl::OkStatus();
}

absl::StatusOr<ForkServer::Server> ForkServer::EnsureRunning() {
  std::lock_guard<std::mutex> lock(mu_);
  ForgetInheritedLocked();
  ReapIfDeadLocked();
  if (server_.pid <= 0) {
    if (absl::Status s = StartServerLocked(); !s.ok()) return s;
  }
  Server copy;
  copy.pid = server_.pid;
  copy.path = server_.path;
  copy.key = server_.key;
  return copy;
}

absl::StatusOr<std::unique_ptr<ChildHandle>> ForkServer::Launch(const LaunchSpec& spec) {
  const std::string record = process_internal::BuildLaunchRecord(spec, "forkserver");
  std::string request;
  AppendU32(&request, static_cast<uint32_t>(record.size()));
  request += record;
  absl::Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<Server> server = EnsureRunning();
    if (!server.ok()) return server.status();
    const absl::Time deadline = absl::Now() + options_.handshake_timeout;
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
      s = process_internal::WriteFull(conn, server->key.data(), server->key.size(), deadline);
      server_gone = !s.ok();
    }
    if (s.ok()) {
      s = process_internal::SendWithFds(
          conn, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(request.data()),
                                          request.size()),
          spec.target->fds());
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
        std::lock_guard<std::mutex> lock(mu_);
        if (server_.pidfd >= 0 && server_.pid == server->pid &&
            process_internal::WaitFd(server_.pidfd, POLLIN, absl::Now() + absl::Seconds(5)).ok()) {
          server_gone = true;
        }
      }
    }
    close(conn);
    last = s;
    if (!server_gone) break;
    std::lock_guard<std::mutex> lock(mu_);
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
