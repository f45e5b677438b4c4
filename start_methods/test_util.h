// Copyright 2026 The mp Authors.
//
// start_methods/test_util.h — helpers shared by the start_methods tests: pipes, reads with a
// deadline (a test fails instead of hanging), descriptor snapshots, zombie checks, and a guard that
// kills and reaps every child a test started, even when the test fails.

#ifndef MP_START_METHODS_TEST_UTIL_H_
#define MP_START_METHODS_TEST_UTIL_H_

#include <sys/types.h>

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "start_methods/process.h"
#include "testing/test_pipe.h"

namespace mp::testing {

// TestPipe (testing/test_pipe.h): a pipe whose ends are closed on destruction.

// Reads until end of file; kDeadlineExceeded when it does not come within `timeout`.
absl::StatusOr<std::string> ReadToEof(int fd, absl::Duration timeout = absl::Seconds(60));
// Reads exactly `n` bytes.
absl::StatusOr<std::string> ReadExactly(int fd, size_t n,
                                        absl::Duration timeout = absl::Seconds(60));
// Writes all of `data` (blocking).
void WriteAllOrDie(int fd, const std::string& data);

// Descriptors open in this process (without the one used to list them).
std::set<int> OpenFds();
// True if a child of this process has ended and waits to be reaped (nothing is reaped).
bool HasZombieChild();

// Processes a test did not start itself (grandchildren, orphans), watched through pidfds (a pid
// alone could be recycled): each is killed and waited for when the Strangers goes out of scope, and
// reaped if it has become this process's child (the orphans of a child subreaper).
class Strangers {
 public:
  Strangers() = default;
  Strangers(const Strangers&) = delete;
  Strangers& operator=(const Strangers&) = delete;
  ~Strangers();
  // Starts watching `pid`; false if it is already gone.
  bool Watch(pid_t pid);
  // Whether the watched `pid` has ended within `timeout`.
  bool WaitForDeath(pid_t pid, absl::Duration timeout = absl::Seconds(60));
  // Sends SIGKILL to the watched `pid`.
  void Kill(pid_t pid);
  // The wait status of `pid`, if it has ended and is this process's child to reap (nothing is
  // waited for).
  static std::optional<int> Reap(pid_t pid);

 private:
  std::vector<std::pair<pid_t, int>> watched_;  // pid, pidfd
};

// Kills, joins and closes every process added to it when it goes out of scope.
class ChildGuard {
 public:
  ~ChildGuard();
  Process Add(Process p);

 private:
  std::vector<Process> children_;
};

}  // namespace mp::testing

#endif  // MP_START_METHODS_TEST_UTIL_H_
