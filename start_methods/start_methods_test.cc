// Copyright 2026 The mp Authors.
//
// The Process contract, once per start method: the same test bodies run under fork, spawn and
// forkserver (a typed test), so every method is held to the same semantics.

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "serialize/codec.h"
#include "serialize/fd.h"
#include "start_methods/process.h"
#include "start_methods/test_methods.h"
#include "start_methods/test_util.h"

namespace mp_test {

struct Point {
  int32_t x;
  int32_t y;
  std::string label;
  bool operator==(const Point&) const = default;
};
MP_FIELDS(Point, x, y, label);

// ---- Targets (registered by mp::Call). ----

int ReturnCode(int code) { return code; }
void ReturnNothing() {}
absl::Status FailWith(std::string message) { return absl::InternalError(message); }

// Waits for one byte on `in`; 0 if it is 'g'.
int WaitForGo(mp::PassedFd in) {
  char c = 0;
  ssize_t n;
  do {
    n = read(in.fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  return n == 1 && c == 'g' ? 0 : 3;
}

void WriteOrExit(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(99);
    done += static_cast<size_t>(n);
  }
}

using Args = std::tuple<int64_t, std::string, std::vector<double>, std::map<std::string, int32_t>,
                        Point, bool, std::optional<std::string>>;

// Sends its arguments back, encoded.
int Echo(int64_t a, std::string b, std::vector<double> c, std::map<std::string, int32_t> d, Point e,
         bool f, std::optional<std::string> g, mp::PassedFd out) {
  WriteOrExit(out.fd, mp::Encode(Args{a, b, c, d, e, f, g}));
  close(out.fd);
  return 0;
}

// Sends the descriptors open in the child (minus mp's own pidfd of the parent) and stdin's target.
int ListFds(mp::PassedFd out) {
  std::set<int> fds = mp::testing::OpenFds();
  if (const mp::ParentHandle* parent = mp::ParentProcess(); parent != nullptr) {
    fds.erase(parent->Sentinel());
  }
  char target[256] = {};
  ssize_t n = readlink("/proc/self/fd/0", target, sizeof(target) - 1);
  std::string stdin_target = n > 0 ? std::string(target, static_cast<size_t>(n)) : "";
  WriteOrExit(out.fd,
              mp::Encode(std::make_pair(std::vector<int>(fds.begin(), fds.end()), stdin_target)));
  return out.fd;
}

using Identity = std::tuple<std::string, int32_t, bool, std::string, int32_t, std::string, bool>;

int ReportIdentity(mp::PassedFd out) {
  mp::ProcessInfo self = mp::CurrentProcess();
  const mp::ParentHandle* parent = mp::ParentProcess();
  WriteOrExit(out.fd, mp::Encode(Identity{self.name, self.pid, self.daemon, self.authkey,
                                          parent ? parent->Pid() : -1, parent ? parent->Name() : "",
                                          parent != nullptr && parent->IsAlive()}));
  return 0;
}

// Restores SIGINT's default action, says so on `ready`, then blocks reading `in` (no data comes):
// only a signal ends it.
int ReadyThenBlockInRead(mp::PassedFd ready, mp::PassedFd in) {
  signal(SIGINT, SIG_DFL);
  WriteOrExit(ready.fd, "r");
  char c;
  while (read(in.fd, &c, 1) != 0) {
  }
  return 5;
}

// Blocks until a signal ends it.
int BlockForever(mp::PassedFd keep_open) {
  for (;;) pause();
}

// Starts a `daemon` (or not) child running `target_name` via `method`, then returns: the exit hook
// of this process must then terminate (daemon) or join (non-daemon) it.
int StartChildAndReturn(std::string method, bool daemon, mp::PassedFd fd) {
  absl::StatusOr<std::shared_ptr<mp::StartMethod>> m = mp::FindStartMethod(method);
  if (!m.ok()) return 10;
  mp::Target target = daemon ? mp::Call<&BlockForever>(fd) : mp::Call<&WaitForGo>(fd);
  absl::StatusOr<mp::Process> p = mp::Process::Create(*m, std::move(target), {.daemon = daemon});
  if (!p.ok() || !p->Start().ok()) return 11;
  return 0;
}

// Waits for its parent to die, then reports what it saw.
int ReportParentDeath(mp::PassedFd out) {
  const mp::ParentHandle* parent = mp::ParentProcess();
  if (parent == nullptr) {
    WriteOrExit(out.fd, "no parent");
    return 1;
  }
  (void)parent->Join(absl::Seconds(60));
  WriteOrExit(out.fd, absl::StrCat(parent->IsAlive() ? "alive" : "dead", ":", parent->Pid()));
  return 0;
}

// Starts ReportParentDeath via `method`, then dies at once without any cleanup.
int StartOrphanThenDie(std::string method, mp::PassedFd out) {
  absl::StatusOr<std::shared_ptr<mp::StartMethod>> m = mp::FindStartMethod(method);
  if (!m.ok()) return 10;
  absl::StatusOr<mp::Process> p = mp::Process::Create(*m, mp::Call<&ReportParentDeath>(out));
  if (!p.ok() || !p->Start().ok()) return 11;
  raise(SIGKILL);
  return 12;
}

// Point stderr at `err`, then throw out of the target.
int ThrowRuntimeError(mp::PassedFd err) {
  dup2(err.fd, 2);
  throw std::runtime_error("boom");
}
struct NotAStdException {
  int code;
};
absl::Status ThrowNonStd(mp::PassedFd err) {
  dup2(err.fd, 2);
  throw NotAStdException{42};
}

// ---- The contract, once per start method (test_methods.h). ----

template <typename M>
class StartMethodTest : public ::testing::Test {
 protected:
  // Creates and starts a process running `target`; it is killed and reaped at the end of the test.
  mp::Process Started(mp::Target target, mp::ProcessOptions options = {}) {
    absl::StatusOr<mp::Process> p = mp::Process::Create(M::Get(), std::move(target), options);
    if (!p.ok()) {
      ADD_FAILURE() << p.status();
      std::abort();
    }
    mp::Process proc = guard_.Add(*std::move(p));
    absl::Status s = proc.Start();
    EXPECT_TRUE(s.ok()) << s;
    return proc;
  }
  // Starts `target`, joins it and returns its exit code.
  std::optional<int> RunToEnd(mp::Target target) {
    mp::Process p = Started(std::move(target));
    EXPECT_TRUE(p.Join().ok());
    return p.ExitCode();
  }
  std::string MethodName() const { return std::string(M::Get()->Name()); }

  mp::testing::ChildGuard guard_;
};

TYPED_TEST_SUITE(StartMethodTest, mp::testing::AllStartMethods, mp::testing::StartMethodNames);

TYPED_TEST(StartMethodTest, ExitCodes) {
  EXPECT_EQ(this->RunToEnd(mp::Call<&ReturnCode>(0)), 0);
  EXPECT_EQ(this->RunToEnd(mp::Call<&ReturnCode>(7)), 7);
  EXPECT_EQ(this->RunToEnd(mp::Call<&ReturnCode>(255)), 255);
  EXPECT_EQ(this->RunToEnd(mp::Call<&ReturnNothing>()), 0);
  EXPECT_EQ(this->RunToEnd(mp::Call<&FailWith>("disk full")), 1);
}

TYPED_TEST(StartMethodTest, ExceptionInTheTargetExitsOneAndIsPrinted) {
  {
    mp::testing::TestPipe err;
    mp::Process p = this->Started(mp::Call<&ThrowRuntimeError>(mp::PassedFd{err.w()}));
    err.CloseWrite();
    absl::StatusOr<std::string> printed = mp::testing::ReadToEof(err.r());
    ASSERT_TRUE(printed.ok()) << printed.status();
    ASSERT_TRUE(p.Join().ok());
    EXPECT_EQ(p.ExitCode(), 1);
    EXPECT_TRUE(absl::StrContains(*printed, "std::runtime_error")) << *printed;
    EXPECT_TRUE(absl::StrContains(*printed, "boom")) << *printed;
    EXPECT_TRUE(absl::StrContains(*printed, absl::StrCat("(pid ", *p.Pid(), ")"))) << *printed;
  }
  {
    // Not derived from std::exception: caught all the same, named by its type.
    mp::testing::TestPipe err;
    mp::Process p = this->Started(mp::Call<&ThrowNonStd>(mp::PassedFd{err.w()}));
    err.CloseWrite();
    absl::StatusOr<std::string> printed = mp::testing::ReadToEof(err.r());
    ASSERT_TRUE(printed.ok()) << printed.status();
    ASSERT_TRUE(p.Join().ok());
    EXPECT_EQ(p.ExitCode(), 1);
    EXPECT_TRUE(absl::StrContains(*printed, "mp_test::NotAStdException")) << *printed;
  }
}

TYPED_TEST(StartMethodTest, TerminateAndKill) {
  mp::testing::TestPipe go;
  mp::Process a = this->Started(mp::Call<&WaitForGo>(mp::PassedFd{go.r()}));
  mp::Process b = this->Started(mp::Call<&WaitForGo>(mp::PassedFd{go.r()}));
  ASSERT_TRUE(a.Terminate().ok());
  ASSERT_TRUE(b.Kill().ok());
  ASSERT_TRUE(a.Join().ok());
  ASSERT_TRUE(b.Join().ok());
  EXPECT_EQ(a.ExitCode(), -SIGTERM);
  EXPECT_EQ(b.ExitCode(), -SIGKILL);
  EXPECT_FALSE(a.IsAlive());
  // Signalling an ended process is a no-op.
  EXPECT_TRUE(a.Terminate().ok());
  EXPECT_EQ(a.ExitCode(), -SIGTERM);
}

TYPED_TEST(StartMethodTest, InterruptEndsABlockedChildWithSigint) {
  mp::testing::TestPipe ready;
  mp::testing::TestPipe never;  // nothing is written: the child stays blocked in read
  mp::Process p = this->Started(
      mp::Call<&ReadyThenBlockInRead>(mp::PassedFd{ready.w()}, mp::PassedFd{never.r()}));
  ready.CloseWrite();
  absl::StatusOr<std::string> got = mp::testing::ReadExactly(ready.r(), 1);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(p.Interrupt().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), -SIGINT);
  // Interrupting an ended process is a no-op, as Terminate is.
  EXPECT_TRUE(p.Interrupt().ok());
  EXPECT_EQ(p.ExitCode(), -SIGINT);
}

TYPED_TEST(StartMethodTest, JoinTimeoutLeavesTheChildRunning) {
  mp::testing::TestPipe go;
  mp::Process p = this->Started(mp::Call<&WaitForGo>(mp::PassedFd{go.r()}));
  ASSERT_TRUE(p.Join(absl::Milliseconds(50)).ok());
  EXPECT_TRUE(p.IsAlive());
  EXPECT_EQ(p.ExitCode(), std::nullopt);
  mp::testing::WriteAllOrDie(go.w(), "g");
  ASSERT_TRUE(p.Join().ok());
  EXPECT_FALSE(p.IsAlive());
  EXPECT_EQ(p.ExitCode(), 0);
}

TYPED_TEST(StartMethodTest, SentinelBecomesReadableWhenTheChildEnds) {
  mp::testing::TestPipe go;
  mp::Process p = this->Started(mp::Call<&WaitForGo>(mp::PassedFd{go.r()}));
  absl::StatusOr<int> sentinel = p.Sentinel();
  ASSERT_TRUE(sentinel.ok()) << sentinel.status();
  pollfd pfd{*sentinel, POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 0), 0);  // running: not readable
  mp::testing::WriteAllOrDie(go.w(), "g");
  pfd.revents = 0;
  ASSERT_EQ(poll(&pfd, 1, 60'000), 1);
  EXPECT_NE(pfd.revents & (POLLIN | POLLHUP), 0);
  ASSERT_TRUE(p.Join(absl::ZeroDuration()).ok());
  EXPECT_EQ(p.ExitCode(), 0);
}

TYPED_TEST(StartMethodTest, ArgumentsArriveIntact) {
  const Args args{-1234567890123,        std::string("h\0llo", 5), {1.5, -0.0, 1e300},
                  {{"a", 1}, {"b", -2}}, Point{3, -4, "p"},        true,
                  std::nullopt};
  mp::testing::TestPipe out;
  mp::Process p = this->Started(std::apply(
      [&](const auto&... a) { return mp::Call<&Echo>(a..., mp::PassedFd{out.w()}); }, args));
  out.CloseWrite();
  absl::StatusOr<std::string> got = mp::testing::ReadToEof(out.r());
  ASSERT_TRUE(got.ok()) << got.status();
  absl::StatusOr<Args> back = mp::Decode<Args>(*got);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, args);
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 0);
}

TYPED_TEST(StartMethodTest, ChildKnowsItsIdentityAndParent) {
  mp::testing::TestPipe out;
  mp::Process p = this->Started(mp::Call<&ReportIdentity>(mp::PassedFd{out.w()}),
                                {.name = "reporter", .daemon = false});
  out.CloseWrite();
  absl::StatusOr<std::string> got = mp::testing::ReadToEof(out.r());
  ASSERT_TRUE(got.ok()) << got.status();
  absl::StatusOr<Identity> id = mp::Decode<Identity>(*got);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(std::get<0>(*id), "reporter");
  EXPECT_EQ(std::get<1>(*id), *p.Pid());
  EXPECT_FALSE(std::get<2>(*id));
  EXPECT_EQ(std::get<3>(*id), mp::CurrentProcess().authkey);
  EXPECT_EQ(std::get<4>(*id), getpid());
  EXPECT_EQ(std::get<5>(*id), "MainProcess");
  EXPECT_TRUE(std::get<6>(*id));  // the parent (this test) is alive
  ASSERT_TRUE(p.Join().ok());
}

TYPED_TEST(StartMethodTest, ChildGetsOnlyItsDescriptors) {
  if (!TypeParam::kFreshProcess) GTEST_SKIP() << "a fork child inherits every descriptor";
  mp::testing::TestPipe out;
  mp::testing::TestPipe unrelated;  // must not reach the child
  int leaky = dup(out.r());         // not close-on-exec: must not reach the child either
  ASSERT_GE(leaky, 0);
  mp::Process p = this->Started(mp::Call<&ListFds>(mp::PassedFd{out.w()}));
  close(leaky);
  out.CloseWrite();
  absl::StatusOr<std::string> got = mp::testing::ReadToEof(out.r());
  ASSERT_TRUE(got.ok()) << got.status();
  auto listed = mp::Decode<std::pair<std::vector<int>, std::string>>(*got);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_TRUE(p.Join().ok());
  // The target returns the number its PassedFd arrived as.
  const int passed = p.ExitCode().value_or(-1);
  EXPECT_GT(passed, 2);
  EXPECT_EQ(listed->first, (std::vector<int>{0, 1, 2, passed}));
  EXPECT_EQ(listed->second, "/dev/null");
}

TYPED_TEST(StartMethodTest, HundredChildrenLeaveNoDescriptorOrZombie) {
  EXPECT_EQ(this->RunToEnd(mp::Call<&ReturnCode>(0)), 0);  // forkserver: the server is up now
  const std::set<int> before = mp::testing::OpenFds();
  std::vector<mp::Process> children;
  for (int i = 0; i < 100; ++i) children.push_back(this->Started(mp::Call<&ReturnCode>(i)));
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(children[i].Join().ok());
    EXPECT_EQ(children[i].ExitCode(), i);
    ASSERT_TRUE(children[i].Close().ok());
  }
  EXPECT_EQ(mp::testing::OpenFds(), before);
  EXPECT_FALSE(mp::testing::HasZombieChild());
  EXPECT_TRUE(mp::ActiveChildren().empty());
}

TYPED_TEST(StartMethodTest, DaemonChildIsTerminatedWhenItsParentExits) {
  mp::testing::TestPipe held;  // the daemon grandchild holds the write end until it dies
  mp::Process p = this->Started(
      mp::Call<&StartChildAndReturn>(this->MethodName(), true, mp::PassedFd{held.w()}));
  held.CloseWrite();
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 0);
  // End of file: every holder of the write end, the daemon included, is gone.
  absl::StatusOr<std::string> rest = mp::testing::ReadToEof(held.r());
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "");
}

TYPED_TEST(StartMethodTest, NonDaemonChildIsJoinedBeforeItsParentExits) {
  mp::testing::TestPipe go;
  mp::Process p = this->Started(
      mp::Call<&StartChildAndReturn>(this->MethodName(), false, mp::PassedFd{go.r()}));
  // The parent's target returned at once, but it waits for its child, which waits for "g".
  ASSERT_TRUE(p.Join(absl::Milliseconds(200)).ok());
  EXPECT_TRUE(p.IsAlive());
  mp::testing::WriteAllOrDie(go.w(), "g");
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 0);
}

TYPED_TEST(StartMethodTest, ChildSeesItsParentDie) {
  mp::testing::TestPipe report;
  mp::Process p =
      this->Started(mp::Call<&StartOrphanThenDie>(this->MethodName(), mp::PassedFd{report.w()}));
  report.CloseWrite();
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), -SIGKILL);
  absl::StatusOr<std::string> got = mp::testing::ReadToEof(report.r());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, absl::StrCat("dead:", *p.Pid()));
}

TYPED_TEST(StartMethodTest, StartsFromSeveralThreadsAtOnce) {
  // Fork warns (on stderr) about the threads; the children must still run correctly.
  constexpr int kThreads = 4;
  constexpr int kPerThread = 8;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < kPerThread; ++i) {
        absl::StatusOr<mp::Process> p =
            mp::Process::Create(TypeParam::Get(), mp::Call<&ReturnCode>(t * 10 + i));
        if (!p.ok() || !p->Start().ok() || !p->Join().ok() || p->ExitCode() != t * 10 + i ||
            !p->Close().ok()) {
          ++failures[t];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures, std::vector<int>(kThreads, 0));
  EXPECT_TRUE(mp::ActiveChildren().empty());
}

}  // namespace mp_test
