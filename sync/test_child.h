// Copyright 2026 The mp Authors.
//
// sync/test_child.h — fork-based helpers for sync's multi-process tests (testonly).
//
// TestChild forks a child that runs a function and _exit()s with its return value. The parent's
// TestChild kills (SIGKILL) and reaps the child in its destructor unless Wait() already reaped it,
// so a failing assertion in the parent never leaves a child behind. Children never run gtest
// assertions; they report through their exit code (0 = success) and pipes.
//
// Processes are sequenced with mp::testing::TestPipe (testing/test_pipe.h), included here.

#ifndef MP_SYNC_TEST_CHILD_H_
#define MP_SYNC_TEST_CHILD_H_

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <utility>

#include "testing/test_pipe.h"

namespace mp::testing {

class TestChild {
 public:
  // Forks; the child runs `body` and exits with its result (never returns). pid() < 0 if fork
  // failed.
  explicit TestChild(const std::function<int()>& body) {
    pid_ = fork();
    if (pid_ == 0) {
      const int rc = body();
      _exit(rc);
    }
  }
  TestChild(const TestChild&) = delete;
  TestChild& operator=(const TestChild&) = delete;
  TestChild(TestChild&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
  TestChild& operator=(TestChild&& other) noexcept {
    if (this != &other) {
      Reap();
      pid_ = std::exchange(other.pid_, -1);
    }
    return *this;
  }
  ~TestChild() { Reap(); }

  pid_t pid() const { return pid_; }

  // Sends SIGKILL; the destructor or Wait() still reaps.
  void Kill() const {
    if (pid_ > 0) kill(pid_, SIGKILL);
  }

  // Waits for the child to exit and reaps it: its exit code, 128 + signal number if it was killed
  // by a signal, or -1 if there is no child.
  int Wait() {
    if (pid_ <= 0) return -1;
    int status = 0;
    pid_t r;
    do {
      r = waitpid(pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    pid_ = -1;
    if (r < 0) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }

 private:
  void Reap() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }
  pid_t pid_ = -1;
};

}  // namespace mp::testing

#endif  // MP_SYNC_TEST_CHILD_H_
