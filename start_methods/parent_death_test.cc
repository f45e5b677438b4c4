// Copyright 2026 The mp Authors.
//
// ProcessOptions::kill_on_parent_death, once per start method (a typed test). An intermediate
// process P (started with the method under test) starts a child C with the method under test and
// reports C's pid; then P is SIGKILLed. C must die with it; without the option C lives on. C is an
// echo server on two pipes, so "C lives" is proved by an answer, not by the absence of news.
//
// This test process is a child subreaper (PR_SET_CHILD_SUBREAPER): C, orphaned, becomes its child,
// so C's wait status can be read and nothing is left behind. That is why these tests have a binary
// of their own: orphans of other tests would become this process's zombies.

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "gtest/gtest.h"
#include "serialize/fd.h"
#include "start_methods/forkserver.h"
#include "start_methods/process.h"
#include "start_methods/start_method.h"
#include "start_methods/test_methods.h"
#include "start_methods/test_util.h"

namespace mp_test {
namespace {

constexpr absl::Duration kBound = absl::Seconds(60);  // safety bound of every wait

// A child with this name waits, before it arms its parent-death signal, until the process that
// asked for it has died: the race between a parent's death and the child's prctl, made to happen.
constexpr char kHeldName[] = "held-before-pdeathsig";

// Test hook (start_method.h), installed in every copy of this program (spawn children and the
// forkserver run it afresh).
void HoldUntilParentDies(const mp::process_internal::ChildIdentity& id) {
  if (id.name != kHeldName) return;
  absl::StatusOr<int> pidfd = mp::process_internal::PidfdOpen(id.parent_pid);
  if (!pidfd.ok()) return;  // ESRCH: already gone
  (void)mp::PollUntil(*pidfd, POLLIN, mp::Deadline::After(kBound));
  close(*pidfd);
}
const bool hook_installed = [] {
  mp::process_internal::SetBeforeParentDeathSignalHookForTesting(&HoldUntilParentDies);
  return true;
}();

bool WriteByte(int fd, char c) {
  ssize_t n;
  do {
    n = write(fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  return n == 1;
}

// C: says 'r' on `started` (P's), then on `out` (the test's) once its target runs, then echoes
// every byte of `in` until end of file. In that order: once the test has its 'r', P may die (and
// its end of `started` close) without a late write there ending C with SIGPIPE.
int Echo(mp::PassedFd in, mp::PassedFd out, mp::PassedFd started) {
  if (!WriteByte(started.fd, 'r') || !WriteByte(out.fd, 'r')) return 2;
  for (;;) {
    char c;
    ssize_t n = read(in.fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    if (!WriteByte(out.fd, c)) return 3;
  }
}

// What P reports once C runs.
struct Report {
  int32_t child = 0;
  int32_t server = 0;  // P's forkserver (0 under the other methods)
};

// Waits until thread `tid` of this process is gone from /proc (a /proc state wait; no event
// exists for it before Linux 6.9). Once it is, the kernel has handed the thread's children to
// another parent and sent any parent-death signal. False after kBound.
bool WaitUntilThreadGone(pid_t tid) {
  const mp::Deadline deadline = mp::Deadline::After(kBound);
  const std::string path = absl::StrCat("/proc/self/task/", tid);
  while (access(path.c_str(), F_OK) == 0) {
    if (deadline.Expired()) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// How P starts C and what it does after its report.
enum How : int32_t {
  kPlain,            // starts C, reports, waits to be killed
  kHeld,             // the same with C named kHeldName
  kFromShortThread,  // starts C from a thread that has exited before the report
  kThenExec,         // execs /bin/sleep after its report
};

// P: starts C (Echo) with `method` as `how` says, reports on `report`, then waits to be killed.
int StartEchoAndWait(std::string method, bool kill_on_parent_death, int32_t how, mp::PassedFd in,
                     mp::PassedFd out, mp::PassedFd report) {
  absl::StatusOr<std::shared_ptr<mp::StartMethod>> m = mp::FindStartMethod(method);
  if (!m.ok()) return 10;
  Report r;
  absl::Status started;
  mp::testing::TestPipe running;  // C's 'r' once its target runs (it has armed its signal by then)
  auto start = [&] {
    absl::StatusOr<mp::Process> c = mp::Process::Create(
        *m, mp::Call<&Echo>(in, out, mp::PassedFd{running.w()}),
        {.name = how == kHeld ? kHeldName : "", .kill_on_parent_death = kill_on_parent_death});
    started = c.ok() ? c->Start() : c.status();
    if (started.ok()) r.child = *c->Pid();
    running.CloseWrite();  // end of file if C dies
  };
  if (how == kFromShortThread) {
    pid_t tid = 0;
    std::thread t([&] {
      tid = static_cast<pid_t>(syscall(SYS_gettid));
      start();
      // The thread exits only after C armed its signal, so that a signal tied to this thread
      // would surely fire.
      if (started.ok() && running.Receive() != 'r') started = absl::AbortedError("C died");
    });
    t.join();
    if (!WaitUntilThreadGone(tid)) return 12;
  } else {
    start();
  }
  if (!started.ok()) {
    std::fprintf(stderr, "starting C: %s\n", started.ToString().c_str());
    return 11;
  }
  if (method == "forkserver") r.server = mp::DefaultForkServer()->ServerPid().value_or(0);
  close(in.fd);
  close(out.fd);
  if (write(report.fd, &r, sizeof(r)) != sizeof(r)) return 13;
  if (how == kThenExec) {
    // Not before C's 'r' has reached P's end of `running`, which the exec closes.
    if (running.Receive() != 'r') return 14;
    execl("/bin/sleep", "sleep", "600", static_cast<char*>(nullptr));
    return 15;
  }
  for (;;) pause();
}

template <typename M>
class ParentDeathTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0) << std::strerror(errno);
  }
  // P's forkserver exits by itself once P is gone (its lifeline ends), removing its directory as it
  // goes: end P, then let the server finish, before the Strangers' SIGKILL could cut it short and
  // leave the directory behind.
  ~ParentDeathTest() override {
    if (server_ == 0) return;
    if (parent_.has_value()) {
      parent_->Kill().IgnoreError();
      parent_->Join().IgnoreError();
    }
    EXPECT_TRUE(strangers_.WaitForDeath(server_, kBound)) << "P's forkserver outlived P";
  }

  // Starts P running StartEchoAndWait and reads its report; C's pid is then watched.
  std::optional<Report> StartScenario(bool kill_on_parent_death, How how = kPlain) {
    mp::testing::TestPipe report;
    absl::StatusOr<mp::Process> p = mp::Process::Create(
        M::Get(), mp::Call<&StartEchoAndWait>(std::string(M::Get()->Name()), kill_on_parent_death,
                                              int32_t{how}, mp::PassedFd{in_.r()},
                                              mp::PassedFd{out_.w()}, mp::PassedFd{report.w()}));
    if (!p.ok()) {
      ADD_FAILURE() << p.status();
      return std::nullopt;
    }
    parent_ = guard_.Add(*std::move(p));
    if (absl::Status s = parent_->Start(); !s.ok()) {
      ADD_FAILURE() << s;
      return std::nullopt;
    }
    in_.CloseRead();
    out_.CloseWrite();
    report.CloseWrite();
    absl::StatusOr<std::string> got = mp::testing::ReadExactly(report.r(), sizeof(Report));
    if (!got.ok()) {
      ADD_FAILURE() << "P did not report (" << got.status() << "), exit code "
                    << parent_->ExitCode().value_or(-1000);
      return std::nullopt;
    }
    Report r;
    std::memcpy(&r, got->data(), sizeof(r));
    EXPECT_TRUE(strangers_.Watch(r.child)) << "C (pid " << r.child << ") is already gone";
    if (r.server != 0) {
      EXPECT_TRUE(strangers_.Watch(r.server));
      server_ = r.server;
    }
    return r;
  }

  // Kills P and waits until it has ended: the kernel has then handed its children to this
  // subreaper (and sent their parent-death signals).
  void KillParent() {
    ASSERT_TRUE(parent_->Kill().ok());
    ASSERT_TRUE(parent_->Join().ok());
    EXPECT_EQ(parent_->ExitCode(), -SIGKILL);
  }

  std::string MethodName() const { return std::string(M::Get()->Name()); }

  // Whether C answers a ping (it runs its target and is not dying).
  bool ChildAnswers() {
    if (!WriteByte(in_.w(), 'p')) return false;
    absl::StatusOr<std::string> got = mp::testing::ReadExactly(out_.r(), 1, kBound);
    return got.ok() && *got == "p";
  }
  // Reads C's first byte: 'r' once its target runs.
  std::string FirstByte() {
    absl::StatusOr<std::string> got = mp::testing::ReadExactly(out_.r(), 1, kBound);
    return got.ok() ? *got : got.status().ToString();
  }

  mp::testing::TestPipe in_;   // the test writes, C reads
  mp::testing::TestPipe out_;  // C writes, the test reads
  // Destroyed after guard_ (members go in reverse order): P is killed before C is.
  mp::testing::Strangers strangers_;
  mp::testing::ChildGuard guard_;
  std::optional<mp::Process> parent_;
  pid_t server_ = 0;  // P's forkserver, if P used one
};

TYPED_TEST_SUITE(ParentDeathTest, mp::testing::AllStartMethods, mp::testing::StartMethodNames);

TYPED_TEST(ParentDeathTest, ChildDiesWhenItsParentIsKilled) {
  std::optional<Report> r = this->StartScenario(/*kill_on_parent_death=*/true);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(this->FirstByte(), "r");
  EXPECT_TRUE(this->ChildAnswers());  // the option leaves a child with a live parent alone
  this->KillParent();
  ASSERT_TRUE(this->strangers_.WaitForDeath(r->child)) << "C outlived its parent";
  std::optional<int> status = mp::testing::Strangers::Reap(r->child);
  ASSERT_TRUE(status.has_value()) << "C was not handed to this subreaper";
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << *status;
}

TYPED_TEST(ParentDeathTest, ChildDiesWhenItsParentExecs) {
  std::optional<Report> r = this->StartScenario(/*kill_on_parent_death=*/true, kThenExec);
  ASSERT_TRUE(r.has_value());
  // P execs once C's target runs (C may die before its 'r' reaches the test). P lives on as
  // /bin/sleep (killed at the end of the test); C must not.
  ASSERT_TRUE(this->strangers_.WaitForDeath(r->child)) << "C outlived its parent's exec";
  EXPECT_EQ(this->parent_->IsAlive(), true);
}

TYPED_TEST(ParentDeathTest, WithoutTheOptionTheChildOutlivesItsParent) {
  std::optional<Report> r = this->StartScenario(/*kill_on_parent_death=*/false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(this->FirstByte(), "r");
  this->KillParent();
  // P's forkserver exits when P dies (its lifeline ends); C must outlive that too.
  if (r->server != 0) {
    ASSERT_TRUE(this->strangers_.WaitForDeath(r->server));
  }
  EXPECT_TRUE(this->ChildAnswers()) << "C died with its parent without kill_on_parent_death";
  this->strangers_.Kill(r->child);
  ASSERT_TRUE(this->strangers_.WaitForDeath(r->child));
}

TYPED_TEST(ParentDeathTest, ChildStartedFromAThreadThatExitedLivesWhileTheProcessLives) {
  std::optional<Report> r = this->StartScenario(/*kill_on_parent_death=*/true, kFromShortThread);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(this->FirstByte(), "r");
  // P reported only after the starting thread was gone from /proc: a signal tied to that thread
  // would have been sent by now.
  EXPECT_TRUE(this->ChildAnswers()) << "C died with the thread that started it";
  this->KillParent();
  ASSERT_TRUE(this->strangers_.WaitForDeath(r->child)) << "C outlived its parent";
  std::optional<int> status = mp::testing::Strangers::Reap(r->child);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << *status;
}

TYPED_TEST(ParentDeathTest, ChildWhoseParentDiedBeforeItArmedTheSignalNeverRunsItsTarget) {
  // C waits in the test hook, before its prctl, until P is dead: the signal, armed after the
  // death, never comes, and only C's check of its parent can notice.
  std::optional<Report> r = this->StartScenario(/*kill_on_parent_death=*/true, kHeld);
  ASSERT_TRUE(r.has_value());
  this->KillParent();
  ASSERT_TRUE(this->strangers_.WaitForDeath(r->child)) << "C outlived its parent";
  // Every writer of C's output is gone, and C never wrote: its target never ran.
  absl::StatusOr<std::string> out = mp::testing::ReadToEof(this->out_.r(), kBound);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "");
  // Under the forkserver C may end while still the server's child, which then reaps it.
  if (std::optional<int> status = mp::testing::Strangers::Reap(r->child); status.has_value()) {
    EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << *status;
  } else {
    EXPECT_EQ(this->MethodName(), "forkserver") << "C was not handed to this subreaper";
  }
}

}  // namespace
}  // namespace mp_test
