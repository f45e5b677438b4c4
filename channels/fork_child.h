// Copyright 2026 The mp Authors.
//
// channels/fork_child.h — test helper: run a function in a forked child and collect its exit code.
//
// channels must not depend on start_methods, so its multi-process tests fork directly. ForkChild runs
// `body` in a child that exits with body's return value (or 99 if body throws). The destructor kills
// (SIGKILL) and reaps a child that was not waited for, so a failing test never leaves one behind.
//
//   mp::testing::ForkChild child([&] { return conn.SendBytes("hi").ok() ? 0 : 1; });
//   EXPECT_EQ(child.Wait(), 0);
//
// Not thread-safe; intended for single-threaded GoogleTest bodies.

#ifndef MP_CHANNELS_FORK_CHILD_H_
#define MP_CHANNELS_FORK_CHILD_H_

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <functional>

namespace mp::testing {

class ForkChild {
 public:
  explicit ForkChild(const std::function<int()>& body) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int code = 99;
      try {
        code = body();
      } catch (...) {
      }
      ::_exit(code);
    }
  }
  ForkChild(const ForkChild&) = delete;
  ForkChild& operator=(const ForkChild&) = delete;
  ~ForkChild() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }

  // The exit code, 128 + signal number if killed by a signal, -1 on error.
  int Wait() {
    if (pid_ <= 0) return -1;
    if (reaped_) return status_;
    int st = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &st, 0);
    } while (r < 0 && errno == EINTR);
    reaped_ = true;
    if (r != pid_) return status_ = -1;
    if (WIFEXITED(st)) return status_ = WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return status_ = 128 + WTERMSIG(st);
    return status_ = -1;
  }

  void Kill() {
    if (pid_ > 0 && !reaped_) ::kill(pid_, SIGKILL);
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = -1;
};

}  // namespace mp::testing

#endif  // MP_CHANNELS_FORK_CHILD_H_
