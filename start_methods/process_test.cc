// Copyright 2026 The mp Authors.
//
// Process API contract (misuse, names, registry, FindStartMethod) and the behaviour specific to one
// method (fork's thread warning and stdio flushing, the forkserver's restart and directory).

#include "start_methods/process.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/deadline.h"
#include "gtest/gtest.h"
#include "serialize/codec.h"
#include "serialize/status.h"
#include "start_methods/fork.h"
#include "start_methods/forkserver.h"
#include "start_methods/spawn.h"
#include "start_methods/start_method.h"
#include "start_methods/test_util.h"

namespace mp_test {

// An argument whose decoding throws (a user Codec may): the child must turn that into a refusal.
struct ThrowsWhenDecoded {
  int value = 0;
};

}  // namespace mp_test

template <>
struct mp::Codec<mp_test::ThrowsWhenDecoded> {
  static std::string Name() { return "ThrowsWhenDecoded"; }
  static constexpr size_t kMinSize = 4;
  static size_t Size(const mp_test::ThrowsWhenDecoded&) { return 4; }
  static void Encode(const mp_test::ThrowsWhenDecoded& v, ByteWriter& w) {
    w.WriteLE(static_cast<int32_t>(v.value));
  }
  static absl::Status Decode(ByteReader& r, mp_test::ThrowsWhenDecoded& out) {
    throw std::runtime_error("decode boom");
  }
};

namespace mp_test {
namespace {

using ::absl::StatusCode;
using ::mp::testing::ForkOnlyThing;
using ::mp::testing::StderrCapture;

int ReturnCode(int code) { return code; }
int ReturnThing(ForkOnlyThing thing) { return thing.value; }
int ReturnDecoded(ThrowsWhenDecoded thing) { return thing.value; }

int WaitForGo(mp::PassedFd in) {
  char c = 0;
  ssize_t n;
  do {
    n = read(in.fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  return n == 1 && c == 'g' ? 0 : 3;
}

// In a daemon child: starting a child must be refused (42).
int TryToStartFromDaemon() {
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(mp::ForkStartMethod(), mp::Call<&ReturnCode>(0));
  if (!p.ok()) return 1;
  absl::Status s = p->Start();
  return s.code() == StatusCode::kFailedPrecondition &&
                 absl::StrContains(s.message(), "daemonic processes are not allowed")
             ? 42
             : 2;
}

mp::Process Create(std::shared_ptr<mp::StartMethod> method, mp::Target target,
                   mp::ProcessOptions options = {}) {
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(std::move(method), std::move(target), std::move(options));
  if (!p.ok()) {
    ADD_FAILURE() << p.status();
    std::abort();
  }
  return *std::move(p);
}

// An answer that arrives as a whole message (an mpi child's): every truncation and bit flip of a
// valid answer decodes to the pid or refusal it was, or to kInvalidArgument, never a crash.
TEST(ProcessTest, DecodeAckRefusesGarbage) {
  const std::string ok = mp::process_internal::EncodeAck(absl::OkStatus());
  const std::string refusal = mp::process_internal::EncodeAck(absl::NotFoundError("no such fn"));
  auto decode = [](const std::string& bytes) {
    return mp::process_internal::DecodeAck(
        absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  };
  absl::StatusOr<pid_t> pid = decode(ok);
  ASSERT_TRUE(pid.ok()) << pid.status();
  EXPECT_EQ(*pid, getpid());
  EXPECT_EQ(decode(refusal).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(decode(refusal).status().message(), "no such fn"));
  for (const std::string& answer : {ok, refusal}) {
    for (size_t n = 0; n < answer.size(); ++n) {
      EXPECT_EQ(decode(answer.substr(0, n)).status().code(), absl::StatusCode::kInvalidArgument)
          << n;
    }
    EXPECT_EQ(decode(answer + "x").status().code(), absl::StatusCode::kInvalidArgument);
    for (size_t i = 0; i < answer.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string flipped = answer;
        flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
        (void)decode(flipped);  // any status or pid; must not crash or over-read (ASan)
      }
    }
  }
  const std::string huge = std::string("E") + std::string("\xff\xff\xff\x7f", 4);
  EXPECT_EQ(decode(huge).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ProcessTest, MisuseBeforeStart) {
  mp::Process p = Create(mp::ForkStartMethod(), mp::Call<&ReturnCode>(0));
  EXPECT_EQ(p.Join().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(p.Join().message(), "has not been started")) << p.Join();
  EXPECT_EQ(p.Terminate().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(p.Kill().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(p.Interrupt().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(p.Interrupt().message(), "cannot interrupt")) << p.Interrupt();
  EXPECT_EQ(p.Sentinel().status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(p.IsAlive());
  EXPECT_EQ(p.ExitCode(), std::nullopt);
  EXPECT_EQ(p.Pid(), std::nullopt);
  // An unstarted process may be closed.
  EXPECT_TRUE(p.Close().ok());
  EXPECT_EQ(p.Start().code(), StatusCode::kFailedPrecondition);
}

TEST(ProcessTest, StartTwiceAndCloseWhileRunning) {
  mp::testing::ChildGuard guard;
  mp::testing::TestPipe go;
  mp::Process p =
      guard.Add(Create(mp::ForkStartMethod(), mp::Call<&WaitForGo>(mp::PassedFd{go.r()})));
  ASSERT_TRUE(p.Start().ok());
  absl::Status again = p.Start();
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(again.message(), "started only once")) << again;
  absl::Status close = p.Close();
  EXPECT_EQ(close.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(close.message(), "still running")) << close;
  EXPECT_EQ(p.SetDaemon(true).code(), StatusCode::kFailedPrecondition);
  mp::testing::WriteAllOrDie(go.w(), "g");
  ASSERT_TRUE(p.Join().ok());
  ASSERT_TRUE(p.Close().ok());
  EXPECT_TRUE(p.Close().ok());  // closing twice is fine, as in CPython
}

// Except the questions whose answer Close keeps: IsAlive (false) and ExitCode (the code).
TEST(ProcessTest, EveryUseAfterCloseIsRefused) {
  mp::Process p = Create(mp::ForkStartMethod(), mp::Call<&ReturnCode>(3), {.name = "closed-one"});
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  ASSERT_TRUE(p.Close().ok());
  EXPECT_FALSE(p.IsAlive());
  EXPECT_EQ(p.ExitCode(), 3);
  for (absl::Status s : {p.Start(), p.Join(), p.Terminate(), p.Kill(), p.Interrupt(),
                         p.Sentinel().status(), p.SetDaemon(true)}) {
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "'closed-one'")) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "closed")) << s;
  }
  EXPECT_TRUE(p.Pid().has_value());
  EXPECT_EQ(p.Name(), "closed-one");
}

TEST(ProcessTest, CreateRefusesBadTargetsAndMethods) {
  EXPECT_EQ(mp::Process::Create(mp::ForkStartMethod(), mp::Target()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::Process::Create(nullptr, mp::Call<&ReturnCode>(0)).status().code(),
            StatusCode::kInvalidArgument);
  for (auto method : {mp::SpawnStartMethod(), mp::ForkServerStartMethod()}) {
    absl::Status s = mp::Process::Create(method, mp::Target::Callable([] { return 0; })).status();
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "mp::Call<&Function>")) << s;
  }
}

TEST(ProcessTest, ForkOnlyArgumentsAreRefusedBySpawnAndForkserverOnly) {
  for (auto method : {mp::SpawnStartMethod(), mp::ForkServerStartMethod()}) {
    absl::Status s = mp::Process::Create(method, mp::Call<&ReturnThing>(ForkOnlyThing{3})).status();
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
    EXPECT_TRUE(absl::StrContains(
        s.message(), absl::StrCat("ForkOnlyThing was created by the 'fork' context and cannot be "
                                  "passed to a '",
                                  method->Name(), "' process")))
        << s;
    EXPECT_TRUE(absl::StrContains(
        s.message(), absl::StrCat("mp::GetContext(\"", method->Name(), "\")->ForkOnlyThing()")))
        << s;
  }
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(mp::ForkStartMethod(), mp::Call<&ReturnThing>(ForkOnlyThing{3}));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->Start().ok());
  ASSERT_TRUE(p->Join().ok());
  EXPECT_EQ(p->ExitCode(), std::optional<int>(3));
}

TEST(ProcessTest, GetStartMethodByName) {
  for (const char* name : {"fork", "spawn", "forkserver"}) {
    absl::StatusOr<std::shared_ptr<mp::StartMethod>> m = mp::FindStartMethod(name);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ((*m)->Name(), name);
  }
  absl::Status s = mp::FindStartMethod("forx").status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "'forx'")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "fork, forkserver, spawn")) << s;
}

TEST(ProcessTest, NamesAndRegistry) {
  mp::Process a = Create(mp::ForkStartMethod(), mp::Call<&ReturnCode>(0));
  mp::Process b = Create(mp::ForkStartMethod(), mp::Call<&ReturnCode>(0));
  ASSERT_TRUE(absl::StartsWith(a.Name(), "Process-")) << a.Name();
  int na = std::stoi(a.Name().substr(8));
  EXPECT_EQ(b.Name(), "Process-" + std::to_string(na + 1));
  b.SetName("worker");
  EXPECT_EQ(b.Name(), "worker");
  EXPECT_EQ(a.StartMethodName(), "fork");
  // GCC prints "{anonymous}", Clang "(anonymous namespace)".
  const std::string fn(mp::Call<&ReturnCode>(1).function_name());
  EXPECT_TRUE(absl::StartsWith(fn, "mp_test::") && absl::EndsWith(fn, "::ReturnCode")) << fn;
  EXPECT_EQ(mp::process_internal::QualifiedNameFromPrettyFunction(
                "std::string f() [with auto F = shop::Work<int>; std::string = x]"),
            "shop::Work<int>");
  EXPECT_EQ(mp::process_internal::QualifiedNameFromPrettyFunction("std::string f() [F = &a::b]"),
            "a::b");
}

TEST(ProcessTest, MainProcessIdentity) {
  mp::ProcessInfo self = mp::CurrentProcess();
  EXPECT_EQ(self.name, "MainProcess");
  EXPECT_EQ(self.pid, getpid());
  EXPECT_FALSE(self.daemon);
  EXPECT_EQ(self.authkey.size(), 32u);
  EXPECT_EQ(mp::ParentProcess(), nullptr);
  EXPECT_GE(mp::CpuCount(), 1);
  EXPECT_TRUE(mp::InitCalled());
}

TEST(ProcessTest, ActiveChildrenListsRunningChildrenOnly) {
  mp::testing::ChildGuard guard;
  mp::testing::TestPipe go;
  mp::Process p =
      guard.Add(Create(mp::ForkStartMethod(), mp::Call<&WaitForGo>(mp::PassedFd{go.r()})));
  ASSERT_TRUE(p.Start().ok());
  std::vector<mp::Process> active = mp::ActiveChildren();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_TRUE(active[0] == p);
  mp::testing::WriteAllOrDie(go.w(), "g");
  ASSERT_TRUE(p.Join().ok());
  EXPECT_TRUE(mp::ActiveChildren().empty());
}

TEST(ProcessTest, DaemonCannotHaveChildren) {
  mp::Process p =
      Create(mp::ForkStartMethod(), mp::Call<&TryToStartFromDaemon>(), {.daemon = true});
  EXPECT_TRUE(p.Daemon());
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 42);
}

TEST(ForkTest, RunsAnyCallableWithTheParentsMemory) {
  int value = 17;
  mp::Process p =
      Create(mp::ForkStartMethod(), mp::Target::Callable([&value] { return value + 1; }));
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 18);
  mp::Process q =
      Create(mp::ForkStartMethod(),
             mp::Target::Callable([] { return absl::UnavailableError("callable failed"); }));
  ASSERT_TRUE(q.Start().ok());
  ASSERT_TRUE(q.Join().ok());
  EXPECT_EQ(q.ExitCode(), 1);
}

// Writes a marker on `fd` and _exits if it is destroyed in another process than `pid`: in a fork
// child that returned (or unwound) out of Start into the test.
class ChildReturnedTrap {
 public:
  ChildReturnedTrap(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  ~ChildReturnedTrap() { Check(); }
  void Check() const {
    if (getpid() == pid_) return;
    (void)!write(fd_, "returned", 8);
    _exit(99);
  }

 private:
  pid_t pid_;
  int fd_;
};

int ThrowFromRegistered() { throw std::runtime_error("boom"); }

TEST(ForkTest, ChildNeverReturnsIntoTheCaller) {
  mp::testing::TestPipe marker;
  const pid_t self = getpid();
  std::vector<mp::Target> targets;
  targets.push_back(mp::Target::Callable([]() -> int { throw std::runtime_error("boom"); }));
  targets.push_back(mp::Target::Callable([]() -> int { throw 7; }));
  targets.push_back(mp::Call<&ThrowFromRegistered>());
  targets.push_back(mp::Target::Callable([] { return absl::InternalError("failed status"); }));
  targets.push_back(mp::Target::Callable([] { return 0; }));
  targets.push_back(mp::Target::Callable([] {}));
  const std::vector<int> expected = {1, 1, 1, 1, 0, 0};
  for (size_t i = 0; i < targets.size(); ++i) {
    ChildReturnedTrap trap(self, marker.w());  // catches a child unwinding out of Start
    mp::Process p = Create(mp::ForkStartMethod(), targets[i]);
    absl::Status started = p.Start();
    trap.Check();  // catches a child returning from Start
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(p.Join().ok());
    EXPECT_EQ(p.ExitCode(), expected[i]) << "target " << i;
  }
  marker.CloseWrite();
  absl::StatusOr<std::string> got = mp::testing::ReadToEof(marker.r());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "") << "a forked child went on running the test";
}

TEST(ProcessTest, ExceptionWhileDecodingArgumentsFailsStart) {
  for (auto method : {mp::SpawnStartMethod(), mp::ForkServerStartMethod()}) {
    mp::Process p = Create(method, mp::Call<&ReturnDecoded>(ThrowsWhenDecoded{5}));
    absl::Status s = p.Start();
    EXPECT_FALSE(s.ok()) << method->Name();
    EXPECT_TRUE(absl::StrContains(s.message(), "std::runtime_error"))
        << method->Name() << ": " << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "decode boom")) << method->Name() << ": " << s;
    // The method keeps working.
    mp::Process q = Create(method, mp::Call<&ReturnCode>(6));
    ASSERT_TRUE(q.Start().ok()) << method->Name();
    ASSERT_TRUE(q.Join().ok());
    EXPECT_EQ(q.ExitCode(), 6) << method->Name();
  }
}

TEST(ForkTest, WarnsWhenTheProcessHasThreads) {
  mp::testing::IdleThread t;
  EXPECT_GE(mp::CountThreads(), 2);
  StderrCapture capture;
  mp::Process p = Create(mp::ForkStartMethod(), mp::Call<&ReturnCode>(0));
  absl::Status started = p.Start();
  std::string err = capture.TakeToEof();
  t.Release();
  ASSERT_TRUE(started.ok()) << started;
  ASSERT_TRUE(p.Join().ok());
  EXPECT_TRUE(absl::StrContains(err, "threads; forking a multi-threaded process")) << err;
}

// The exit code of LauncherIsNotWarnedAbout when the process has threads of its own.
constexpr int kOtherThreads = 20;

// Starts a kill_on_parent_death fork child (forked by mp's launcher thread, which then stays), then
// a plain fork child: 0 if the second start did not warn about threads.
int LauncherIsNotWarnedAbout() {
  // A sanitizer's own thread (TSan's) makes the warning true anyway.
  if (mp::CountThreads() != 1) return kOtherThreads;
  mp::Process first =
      Create(mp::ForkStartMethod(), mp::Call<&ReturnCode>(0), {.kill_on_parent_death = true});
  if (!first.Start().ok() || !first.Join().ok() || first.ExitCode() != 0) return 10;
  if (mp::CountThreads() != 2 || mp::process_internal::LauncherThreadCount() != 1) return 11;
  StderrCapture capture;
  mp::Process second = Create(mp::ForkStartMethod(), mp::Call<&ReturnCode>(0));
  const bool started = second.Start().ok();
  const std::string err = capture.TakeToEof();
  if (!started || !second.Join().ok()) return 12;
  return absl::StrContains(err, "forking a multi-threaded process") ? 13 : 0;
}

TEST(ForkTest, MpsLauncherThreadIsNotWarnedAbout) {
  // In a fork child, so that this test process keeps no launcher thread.
  mp::Process p = Create(mp::ForkStartMethod(), mp::Target::Callable(&LauncherIsNotWarnedAbout));
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  if (p.ExitCode() == kOtherThreads) GTEST_SKIP() << "the fork child has threads of its own";
  EXPECT_EQ(p.ExitCode(), 0);
}

TEST(ForkTest, BufferedStdioIsWrittenOnce) {
  mp::testing::TestPipe out;
  FILE* f = fdopen(dup(out.w()), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("once", f);  // buffered, not yet written
  mp::Process p = Create(mp::ForkStartMethod(), mp::Target::Callable([] { return 0; }));
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  std::fclose(f);
  out.CloseWrite();
  EXPECT_EQ(mp::testing::ReadToEof(out.r()).value_or("?"), "once");
}

absl::Status FailWith(std::string message) { return absl::InternalError(message); }

TEST(ProcessTest, FailedStatusIsPrintedOnTheChildsStderr) {
  // fork and spawn children write to the stderr this process has at Start (a forkserver child
  // writes to the server's, fixed when the server started).
  for (auto method : {mp::ForkStartMethod(), mp::SpawnStartMethod()}) {
    StderrCapture capture;
    mp::Process p = Create(method, mp::Call<&FailWith>("disk full on /dev/sdz"));
    absl::Status started = p.Start();
    absl::Status joined = started.ok() ? p.Join() : started;
    std::string err = capture.TakeToEof();
    ASSERT_TRUE(joined.ok()) << joined;
    EXPECT_EQ(p.ExitCode(), 1);
    EXPECT_TRUE(absl::StrContains(err, "mp: process '" + p.Name() + "' (pid " +
                                           std::to_string(*p.Pid()) +
                                           "): target failed: INTERNAL: disk full on /dev/sdz"))
        << method->Name() << ": " << err;
  }
}

TEST(ForkServerTest, KilledServerIsReplacedOnNextStart) {
  std::shared_ptr<mp::ForkServer> server = mp::DefaultForkServer();
  for (int round = 0; round < 3; ++round) {
    mp::Process p = Create(server, mp::Call<&ReturnCode>(round));
    absl::Status started = p.Start();
    ASSERT_TRUE(started.ok()) << "round " << round << ": " << started;
    ASSERT_TRUE(p.Join().ok());
    EXPECT_EQ(p.ExitCode(), round);
    std::optional<pid_t> pid = server->ServerPid();
    ASSERT_TRUE(pid.has_value());
    ASSERT_EQ(kill(*pid, SIGKILL), 0);  // the next Start must notice and start a new server
  }
  mp::Process p = Create(server, mp::Call<&ReturnCode>(9));
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 9);
}

// The child's refusal of its launch record travels as Codec<absl::Status>; what arrives is bounded
// and never becomes OK.
TEST(LaunchAckTest, RefusalKeepsItsCodeAndNeverReadsAsSuccess) {
  using mp::process_internal::ReadAck;
  using mp::process_internal::WriteAck;
  const mp::Deadline deadline = mp::Deadline::After(absl::Seconds(30));
  auto pair = [] {
    std::array<int, 2> sv{-1, -1};
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv.data()), 0);
    return sv;
  };
  {
    std::array<int, 2> sv = pair();
    ASSERT_TRUE(WriteAck(sv[1], absl::NotFoundError("no function 'x'"), -1, deadline).ok());
    absl::StatusOr<pid_t> got = ReadAck(sv[0], deadline, "eof", nullptr);
    EXPECT_EQ(got.status().code(), StatusCode::kNotFound) << got.status();
    EXPECT_TRUE(absl::StrContains(got.status().message(),
                                  "refused its launch record: no function "
                                  "'x'"))
        << got.status();
    close(sv[0]);
    close(sv[1]);
  }
  {
    // A refusal that claims to be OK (a bug or a hostile child) stays a failure.
    std::array<int, 2> sv = pair();
    std::string msg = "E";
    const std::string encoded = mp::Encode(absl::OkStatus());
    const uint32_t len = static_cast<uint32_t>(encoded.size());
    msg.append(reinterpret_cast<const char*>(&len), sizeof(len));
    msg += encoded;
    mp::testing::WriteAllOrDie(sv[1], msg);
    absl::StatusOr<pid_t> got = ReadAck(sv[0], deadline, "eof", nullptr);
    EXPECT_EQ(got.status().code(), StatusCode::kUnknown) << got.status();
    close(sv[0]);
    close(sv[1]);
  }
  {
    // A length past the bound is refused before anything is allocated or read.
    std::array<int, 2> sv = pair();
    std::string msg = "E";
    const uint32_t len = 1u << 30;
    msg.append(reinterpret_cast<const char*>(&len), sizeof(len));
    mp::testing::WriteAllOrDie(sv[1], msg);
    absl::StatusOr<pid_t> got = ReadAck(sv[0], deadline, "eof", nullptr);
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument) << got.status();
    EXPECT_TRUE(absl::StrContains(got.status().message(), "1073741824")) << got.status();
    close(sv[0]);
    close(sv[1]);
  }
  {
    // A long message is cut by the child, not refused by the parent.
    std::array<int, 2> sv = pair();
    const std::string text(mp::process_internal::kMaxRefusalMessage * 2, 'x');
    std::thread writer([&] { (void)WriteAck(sv[1], absl::InternalError(text), -1, deadline); });
    absl::StatusOr<pid_t> got = ReadAck(sv[0], deadline, "eof", nullptr);
    writer.join();
    EXPECT_EQ(got.status().code(), StatusCode::kInternal);
    EXPECT_LT(got.status().message().size(), text.size());
    close(sv[0]);
    close(sv[1]);
  }
}

// Connects to the forkserver's socket at `path`; -1 on failure.
int ConnectRaw(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(ForkServerTest, SilentConnectionsDoNotDelayAStart) {
  // The server closes a connection that has not sent its whole request within this long.
  constexpr absl::Duration kConnectionDeadline = absl::Seconds(10);
  auto server = std::make_shared<mp::ForkServer>(mp::ForkServerOptions{absl::Seconds(20)});
  mp::Process warm = Create(server, mp::Call<&ReturnCode>(0));
  ASSERT_TRUE(warm.Start().ok());
  ASSERT_TRUE(warm.Join().ok());
  const std::string path = server->SocketDirectory() + "/s";
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(ConnectRaw(path));  // say nothing
  for (int i = 0; i < 2; ++i) {
    idle.push_back(ConnectRaw(path));  // half a key, then silence
    if (idle.back() >= 0) {
      ASSERT_EQ(send(idle.back(), "0123456789abcdef", 16, MSG_NOSIGNAL), 16);
    }
  }
  for (int fd : idle) ASSERT_GE(fd, 0);
  const int64_t begin_ns = mp::MonotonicNowNs();
  mp::Process p = Create(server, mp::Call<&ReturnCode>(3));
  absl::Status started = p.Start();
  const absl::Duration took = absl::Nanoseconds(mp::MonotonicNowNs() - begin_ns);
  ASSERT_TRUE(started.ok()) << started;
  EXPECT_LT(took, kConnectionDeadline / 2);
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 3);
  // The silent connections are closed at their deadline (end of file), not kept forever.
  for (int fd : idle) {
    pollfd pfd{fd, POLLIN, 0};
    ASSERT_EQ(poll(&pfd, 1, 60'000), 1);
    char c;
    EXPECT_EQ(recv(fd, &c, 1, MSG_DONTWAIT), 0);
    close(fd);
  }
  server->Stop();
}

TEST(ForkServerTest, TooManySilentConnectionsCloseTheOldest) {
  // The server reads at most 128 connections at once; past that it closes the oldest, long before
  // its 10 s deadline.
  constexpr int kMaxPending = 128;
  auto server = std::make_shared<mp::ForkServer>();
  mp::Process warm = Create(server, mp::Call<&ReturnCode>(0));
  ASSERT_TRUE(warm.Start().ok());
  ASSERT_TRUE(warm.Join().ok());
  const std::string path = server->SocketDirectory() + "/s";
  std::vector<int> idle;
  for (int i = 0; i < kMaxPending + 2; ++i) {
    idle.push_back(ConnectRaw(path));
    ASSERT_GE(idle.back(), 0) << i;
  }
  // A Start goes through (it is the newest) and then the oldest has been closed.
  mp::Process p = Create(server, mp::Call<&ReturnCode>(4));
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 4);
  pollfd pfd{idle.front(), POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 0), 1) << "the oldest connection is still open";
  char c;
  EXPECT_EQ(recv(idle.front(), &c, 1, MSG_DONTWAIT), 0);
  pfd = {idle.back(), POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 0), 0) << "the newest connection was closed";
  for (int fd : idle) close(fd);
  server->Stop();
}

TEST(ForkServerTest, PrivateDirectoryIsRemovedWhenStopped) {
  auto server = std::make_shared<mp::ForkServer>();
  EXPECT_EQ(server->SocketDirectory(), "");
  mp::Process p = Create(server, mp::Call<&ReturnCode>(5));
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 5);
  const std::string dir = server->SocketDirectory();
  ASSERT_TRUE(absl::StartsWith(dir, "/tmp/mp-forkserver-")) << dir;
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, geteuid());
  std::optional<pid_t> pid = server->ServerPid();
  ASSERT_TRUE(pid.has_value());
  server->Stop();
  EXPECT_NE(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(server->ServerPid(), std::nullopt);
  EXPECT_FALSE(mp::testing::HasZombieChild());
}

TEST(ForkServerTest, ChildOutlivesAKilledServer) {
  auto server = std::make_shared<mp::ForkServer>();
  mp::testing::ChildGuard guard;
  mp::testing::TestPipe go;
  mp::Process p = guard.Add(Create(server, mp::Call<&WaitForGo>(mp::PassedFd{go.r()})));
  ASSERT_TRUE(p.Start().ok());
  std::optional<pid_t> server_pid = server->ServerPid();
  ASSERT_TRUE(server_pid.has_value());
  ASSERT_EQ(kill(*server_pid, SIGKILL), 0);
  // The child runs on without its server; Join keeps waiting for it.
  ASSERT_TRUE(p.Join(absl::Milliseconds(100)).ok());
  EXPECT_TRUE(p.IsAlive());
  mp::testing::WriteAllOrDie(go.w(), "g");
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 255);  // the status died with the server
  server->Stop();                // reaps the dead server
  EXPECT_FALSE(mp::testing::HasZombieChild());
}

// In a fork child of a process that owns a forkserver: the server is the parent's, so the child
// starts its own.
int UseForkServerInForkChild(int parent_server) {
  std::shared_ptr<mp::ForkServer> server = mp::DefaultForkServer();
  if (server->ServerPid().has_value()) return 2;  // the parent's server must not be inherited
  absl::StatusOr<mp::Process> p = mp::Process::Create(server, mp::Call<&ReturnCode>(6));
  if (!p.ok() || !p->Start().ok() || !p->Join().ok()) return 3;
  std::optional<pid_t> own = server->ServerPid();
  if (!own.has_value() || *own == parent_server) return 4;
  return p->ExitCode() == 6 ? 0 : 5;
}

TEST(ForkServerTest, ForkChildStartsItsOwnServer) {
  std::shared_ptr<mp::ForkServer> server = mp::DefaultForkServer();
  mp::Process warm = Create(server, mp::Call<&ReturnCode>(0));
  ASSERT_TRUE(warm.Start().ok());
  ASSERT_TRUE(warm.Join().ok());
  std::optional<pid_t> server_pid = server->ServerPid();
  ASSERT_TRUE(server_pid.has_value());
  mp::Process p = Create(mp::ForkStartMethod(), mp::Call<&UseForkServerInForkChild>(*server_pid));
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 0);
  // The parent's server still serves.
  EXPECT_EQ(server->ServerPid(), server_pid);
  mp::Process after = Create(server, mp::Call<&ReturnCode>(8));
  ASSERT_TRUE(after.Start().ok());
  ASSERT_TRUE(after.Join().ok());
  EXPECT_EQ(after.ExitCode(), 8);
  EXPECT_EQ(server->ServerPid(), server_pid);
}

// A spawn child that leaves through std::exit: its atexit hook joins its non-daemon child.
int StartChildThenExit(mp::PassedFd go) {
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(mp::SpawnStartMethod(), mp::Call<&WaitForGo>(go));
  if (!p.ok() || !p->Start().ok()) return 11;
  std::exit(0);
}

TEST(SpawnTest, ExitJoinsNonDaemonChildren) {
  mp::testing::TestPipe go;
  mp::Process p =
      Create(mp::SpawnStartMethod(), mp::Call<&StartChildThenExit>(mp::PassedFd{go.r()}));
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join(absl::Milliseconds(200)).ok());
  EXPECT_TRUE(p.IsAlive());  // std::exit waits in the atexit hook for the grandchild
  mp::testing::WriteAllOrDie(go.w(), "g");
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 0);
}

TEST(SpawnTest, HandshakeTimeoutIsConfigurable) {
  // A healthy child answers well within the timeout; the forgot-Init cases are in forgot_init_test.
  auto method = std::make_shared<mp::SpawnMethod>(mp::SpawnOptions{absl::Seconds(30)});
  mp::Process p = Create(method, mp::Call<&ReturnCode>(4));
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), 4);
}

}  // namespace
}  // namespace mp_test
