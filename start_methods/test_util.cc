// Copyright 2026 The mp Authors.

#include "start_methods/test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/deadline.h"
#include "gtest/gtest.h"
#include "start_methods/start_method.h"

namespace mp::testing {

namespace {
absl::Status WaitReadable(int fd, Deadline deadline) {
  absl::StatusOr<short> ready = PollUntil(fd, POLLIN, deadline);
  if (!ready.ok()) return ready.status();
  if (*ready == 0) return absl::DeadlineExceededError(absl::StrCat("no data on fd ", fd));
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<std::string> ReadToEof(int fd, absl::Duration timeout) {
  const Deadline deadline = Deadline::After(timeout);
  std::string out;
  char buf[4096];
  for (;;) {
    if (absl::Status s = WaitReadable(fd, deadline); !s.ok()) return s;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("read: errno ", errno));
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

absl::StatusOr<std::string> ReadExactly(int fd, size_t n, absl::Duration timeout) {
  const Deadline deadline = Deadline::After(timeout);
  std::string out;
  while (out.size() < n) {
    if (absl::Status s = WaitReadable(fd, deadline); !s.ok()) return s;
    char buf[4096];
    ssize_t r = read(fd, buf, std::min(sizeof(buf), n - out.size()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return absl::OutOfRangeError(absl::StrCat("end of file after ", out.size()));
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

void WriteAllOrDie(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
}

std::set<int> OpenFds() {
  std::set<int> fds;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return fds;
  const int self = dirfd(d);
  while (dirent* e = readdir(d)) {
    int fd;
    if (absl::SimpleAtoi(e->d_name, &fd) && fd != self) fds.insert(fd);
  }
  closedir(d);
  return fds;
}

bool HasZombieChild() {
  siginfo_t info{};
  if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;  // ECHILD
  return info.si_pid != 0;
}

Strangers::~Strangers() {
  for (const auto& [pid, pidfd] : watched_) {
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    (void)PollUntil(pidfd, POLLIN, Deadline::After(absl::Seconds(60)));
    (void)Reap(pid);
    close(pidfd);
  }
}

bool Strangers::Watch(pid_t pid) {
  absl::StatusOr<int> pidfd = process_internal::PidfdOpen(pid);
  if (!pidfd.ok()) return false;
  watched_.emplace_back(pid, *pidfd);
  return true;
}

bool Strangers::WaitForDeath(pid_t pid, absl::Duration timeout) {
  for (const auto& [p, pidfd] : watched_) {
    if (p != pid) continue;
    absl::StatusOr<short> ready = PollUntil(pidfd, POLLIN, Deadline::After(timeout));
    return ready.ok() && *ready != 0;
  }
  return false;
}

void Strangers::Kill(pid_t pid) {
  for (const auto& [p, pidfd] : watched_) {
    if (p == pid) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  }
}

std::optional<int> Strangers::Reap(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid) return std::nullopt;
  return status;
}

ChildGuard::~ChildGuard() {
  for (Process& p : children_) {
    if (p.IsAlive()) (void)p.Kill();
    if (p.Pid().has_value()) (void)p.Join();
    (void)p.Close();
  }
}

Process ChildGuard::Add(Process p) {
  children_.push_back(std::move(p));
  return children_.back();
}

StderrCapture::StderrCapture() {
  std::fflush(stderr);
  saved_ = dup(2);
  EXPECT_GE(saved_, 0) << "dup(2): errno " << errno;
  EXPECT_EQ(dup2(pipe_.w(), 2), 2) << "dup2 onto stderr: errno " << errno;
}

StderrCapture::~StderrCapture() {
  if (saved_ >= 0) Restore();
}

void StderrCapture::Restore() {
  std::fflush(stderr);
  dup2(saved_, 2);
  close(saved_);
  saved_ = -1;
}

std::string StderrCapture::Take() {
  Restore();
  // What this process wrote is in the pipe by now; a read returns what is there and no more.
  fcntl(pipe_.r(), F_SETFL, fcntl(pipe_.r(), F_GETFL) | O_NONBLOCK);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(pipe_.r(), buf, sizeof(buf))) > 0;) {
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string StderrCapture::TakeToEof(absl::Duration timeout) {
  Restore();
  pipe_.CloseWrite();
  return ReadToEof(pipe_.r(), timeout).value_or("<read failed>");
}

IdleThread::IdleThread()
    : thread_([this] {
        char c;
        (void)read(release_.r(), &c, 1);
      }) {}

void IdleThread::Release() {
  if (!thread_.joinable()) return;
  WriteAllOrDie(release_.w(), "x");
  thread_.join();
}

size_t CountOccurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::vector<std::string> ProcStatFields(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return {};
  // "pid (comm) state ppid ...": comm may hold spaces, so start after its closing parenthesis.
  const size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return {};
  return absl::StrSplit(line.substr(close + 2), ' ');
}

}  // namespace mp::testing
