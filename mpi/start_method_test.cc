// Copyright 2026 The mp Authors.
//
// The Process contract under the "mpi" start method on this host: start, arguments, exit codes,
// Join with a timeout, Terminate/Kill, a child killed from outside, several at once, and what it
// refuses. (The two-host run is in the context's mpi tests.)

#include "mpi/start_method.h"

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "serialize/codec.h"
#include "serialize/fd.h"
#include "start_methods/process.h"

namespace mp_test {
namespace {

int ReturnCode(int code) { return code; }
absl::Status FailWith(std::string message) { return absl::InternalError(message); }
int Throw() { throw std::runtime_error("thrown in an mpi child"); }
int BlockForever() {
  for (;;) pause();
}
// 0 when the arguments arrived intact and this process knows its parent and name.
int CheckArguments(std::string text, std::vector<int64_t> numbers, int parent_pid) {
  if (text != "hello across MPI") return 10;
  if (numbers != std::vector<int64_t>{1, -2, 3000000000}) return 11;
  const mp::ParentHandle* parent = mp::ParentProcess();
  if (parent == nullptr || parent->Pid() != parent_pid) return 12;
  if (mp::CurrentProcess().name != "mpi-child") return 13;
  return 0;
}
int TakeFd(mp::PassedFd fd) { return fd.fd >= 0 ? 0 : 1; }

std::shared_ptr<mp::StartMethod> Mpi() {
  absl::StatusOr<std::shared_ptr<mp::StartMethod>> m = mp::FindStartMethod("mpi");
  EXPECT_TRUE(m.ok()) << m.status();
  return *m;
}

mp::Process MustStart(mp::Target target, mp::ProcessOptions options = {}) {
  absl::StatusOr<mp::Process> p = mp::Process::Create(Mpi(), std::move(target), std::move(options));
  EXPECT_TRUE(p.ok()) << p.status();
  absl::Status s = p->Start();
  EXPECT_TRUE(s.ok()) << s;
  return *std::move(p);
}

constexpr absl::Duration kBound = absl::Seconds(60);

TEST(MpiStartMethodTest, ReportsTheTargetsExitCode) {
  mp::Process p = MustStart(mp::Call<&ReturnCode>(7));
  ASSERT_TRUE(p.Join(kBound).ok());
  EXPECT_EQ(p.ExitCode(), 7);
  EXPECT_EQ(p.StartMethodName(), "mpi");
}

TEST(MpiStartMethodTest, AFailedStatusOrAnExceptionIsExitCodeOne) {
  mp::Process failed = MustStart(mp::Call<&FailWith>(std::string("no")));
  mp::Process threw = MustStart(mp::Call<&Throw>());
  ASSERT_TRUE(failed.Join(kBound).ok());
  ASSERT_TRUE(threw.Join(kBound).ok());
  EXPECT_EQ(failed.ExitCode(), 1);
  EXPECT_EQ(threw.ExitCode(), 1);
}

TEST(MpiStartMethodTest, ArgumentsNameAndParentArrive) {
  mp::ProcessOptions options;
  options.name = "mpi-child";
  mp::Process p = MustStart(mp::Call<&CheckArguments>(std::string("hello across MPI"),
                                                      std::vector<int64_t>{1, -2, 3000000000},
                                                      static_cast<int>(getpid())),
                            options);
  ASSERT_TRUE(p.Join(kBound).ok());
  EXPECT_EQ(p.ExitCode(), 0);
}

TEST(MpiStartMethodTest, JoinWithATimeoutThenTerminate) {
  mp::Process p = MustStart(mp::Call<&BlockForever>());
  ASSERT_TRUE(p.Join(absl::Milliseconds(20)).ok());
  EXPECT_TRUE(p.IsAlive());
  EXPECT_EQ(p.ExitCode(), std::nullopt);
  ASSERT_TRUE(p.Pid().has_value());
  EXPECT_EQ(kill(*p.Pid(), 0), 0) << "the pid is the child's, on this host";
  ASSERT_TRUE(p.Terminate().ok());
  ASSERT_TRUE(p.Join(kBound).ok());
  EXPECT_FALSE(p.IsAlive());
  EXPECT_EQ(p.ExitCode(), -SIGTERM);
}

TEST(MpiStartMethodTest, Kill) {
  mp::Process p = MustStart(mp::Call<&BlockForever>());
  ASSERT_TRUE(p.Kill().ok());
  ASSERT_TRUE(p.Join(kBound).ok());
  EXPECT_EQ(p.ExitCode(), -SIGKILL);
}

TEST(MpiStartMethodTest, AChildKilledFromOutsideEnds) {
  mp::Process p = MustStart(mp::Call<&BlockForever>());
  ASSERT_TRUE(p.Pid().has_value());
  ASSERT_EQ(kill(*p.Pid(), SIGKILL), 0);
  ASSERT_TRUE(p.Join(kBound).ok());
  EXPECT_FALSE(p.IsAlive());
  EXPECT_EQ(p.ExitCode(), -SIGKILL);
}

TEST(MpiStartMethodTest, SeveralAtOnce) {
  std::vector<mp::Process> ps;
  for (int i = 0; i < 3; ++i) ps.push_back(MustStart(mp::Call<&ReturnCode>(20 + i)));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(ps[i].Join(kBound).ok());
    EXPECT_EQ(ps[i].ExitCode(), 20 + i);
  }
}

TEST(MpiStartMethodTest, RefusesCallablesAndDescriptors) {
  absl::StatusOr<mp::Process> callable =
      mp::Process::Create(Mpi(), mp::Target::Callable([] { return 0; }));
  EXPECT_EQ(callable.status().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<mp::Process> fd = mp::Process::Create(Mpi(), mp::Call<&TakeFd>(mp::PassedFd{0}));
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(fd.status().message(), "Manager")) << fd.status();
  EXPECT_TRUE(absl::StrContains(fd.status().message(), "TakeFd")) << fd.status();
}

TEST(MpiStartMethodTest, BadOptionsAreRefused) {
  EXPECT_EQ(mp::MakeMpiStartMethod({.hosts = {""}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::MakeMpiStartMethod({.hosts = {"a b"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::MakeMpiStartMethod({.hosts = {"a,b"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::MakeMpiStartMethod({.start_timeout = absl::ZeroDuration()}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::MakeMpiStartMethod({.spawn_attempt_timeout = absl::ZeroDuration()}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(mp::MakeMpiStartMethod({.hosts = {"localhost"}}).ok());
}

}  // namespace
}  // namespace mp_test
