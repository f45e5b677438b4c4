// Copyright 2026 The mp Authors.
//
// start_methods/test_util.h — helpers shared by the start_methods tests (and the pool tests that
// start processes): pipes, reads with a deadline (a test fails instead of hanging), descriptor
// snapshots, zombie checks, a guard that kills and reaps every child a test started even when the
// test fails, stderr capture, /proc/<pid>/stat fields, and a fork-only argument type.

#ifndef MP_START_METHODS_TEST_UTIL_H_
#define MP_START_METHODS_TEST_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "serialize/codec.h"
#include "serialize/fd.h"
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

// Replaces this process's stderr (descriptor 2) with a pipe while alive, so a test reads what this
// process and its children wrote there; the destructor restores stderr if no Take ran.
class StderrCapture {
 public:
  StderrCapture();
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  ~StderrCapture();
  // Restores stderr and returns what is in the pipe now, without waiting for end of file: a process
  // forked during the capture (a fork server) keeps the write end as its stderr. Once only.
  std::string Take();
  // Restores stderr and reads until end of file, that is until every child that inherited the pipe
  // as its stderr has ended; "<read failed>" when that does not come within `timeout`. Once only.
  std::string TakeToEof(absl::Duration timeout = absl::Seconds(60));

 private:
  // Flushes stdio and puts the saved stderr back.
  void Restore();

  TestPipe pipe_;
  int saved_ = -1;
};

// A thread that only waits to be released: makes this process multi-threaded (the fork method's
// warning is about such threads). Released and joined by Release() or, at the latest, the
// destructor, so a failed test does not leave it running.
class IdleThread {
 public:
  IdleThread();
  IdleThread(const IdleThread&) = delete;
  IdleThread& operator=(const IdleThread&) = delete;
  ~IdleThread() { Release(); }
  // Lets the thread end and joins it; once only has an effect.
  void Release();

 private:
  TestPipe release_;
  std::thread thread_;
};

// How many times `what` (not empty) occurs in `text`, overlapping occurrences included.
size_t CountOccurrences(const std::string& text, const std::string& what);

// The fields of /proc/<pid>/stat after the command name: [0] is the state letter ('T': stopped),
// [1] the kernel parent's pid. Empty if the file cannot be read.
std::vector<std::string> ProcStatFields(pid_t pid);

// Stands for a fork-domain shared object (a Lock in anonymous shared memory): its Codec notes that
// only a forked child can use it, as sync/ and channels/ objects do.
struct ForkOnlyThing {
  int value = 0;
};

}  // namespace mp::testing

template <>
struct mp::Codec<mp::testing::ForkOnlyThing> {
  static std::string Name() { return "ForkOnlyThing"; }
  static constexpr size_t kMinSize = 4;
  static size_t Size(const mp::testing::ForkOnlyThing&) { return 4; }
  static void Encode(const mp::testing::ForkOnlyThing& v, ByteWriter& w) {
    if (FdTable* t = ScopedFdTable::Current()) t->NoteForkOnly("ForkOnlyThing");
    w.WriteLE(static_cast<int32_t>(v.value));
  }
  static absl::Status Decode(ByteReader& r, mp::testing::ForkOnlyThing& out) {
    int32_t v = 0;
    absl::Status s = r.ReadLE(&v, "ForkOnlyThing");
    out.value = v;
    return s;
  }
};

#endif  // MP_START_METHODS_TEST_UTIL_H_
