// Copyright 2026 The mp Authors.
//
// The fork server forked from this process (forked_server.h): children as fork children (exit
// codes, signals, Kill of a stopped child, sentinels), the memory of the server's creation, pins,
// the thread warning only at the server's creation, and a dead server forked anew.

#include "start_methods/forked_server.h"

#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "gtest/gtest.h"
#include "serialize/codec.h"
#include "serialize/fd.h"
#include "start_methods/process.h"
#include "start_methods/test_util.h"

namespace forked_server_test {

using ::mp::testing::ForkOnlyThing;
using ::mp::testing::StderrCapture;

constexpr char kWarning[] = "forking a multi-threaded process";

int ReturnCode(int code) { return code; }
int ReturnThing(ForkOnlyThing thing) { return thing.value; }
int StopSelf() {
  raise(SIGSTOP);
  return 0;
}

int g_global = 0;
int ReturnGlobal() { return g_global; }

// 0: `key` pins a "test object" holding `expected`; 1: not found; 2: another kind; 3: other value.
int CheckPin(uint64_t key, int64_t expected) {
  absl::StatusOr<std::shared_ptr<const void>> pinned =
      mp::process_internal::FindPinned(key, "test object");
  if (absl::IsNotFound(pinned.status())) return 1;
  if (absl::IsInvalidArgument(pinned.status())) return 2;
  if (!pinned.ok()) return 4;
  return *std::static_pointer_cast<const int64_t>(*pinned) == expected ? 0 : 3;
}

std::shared_ptr<mp::ForkServer> MakeServer() {
  absl::StatusOr<std::shared_ptr<mp::ForkServer>> server =
      mp::process_internal::ForkedServerStartMethod();
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *server : nullptr;
}

// Starts `target` under `method` and returns its exit code (-1000 on failure).
int RunToEnd(std::shared_ptr<mp::StartMethod> method, mp::Target target) {
  absl::StatusOr<mp::Process> p = mp::Process::Create(std::move(method), std::move(target));
  if (!p.ok()) return -1000;
  if (!p->Start().ok() || !p->Join().ok()) return -1000;
  return p->ExitCode().value_or(-1000);
}

// A process's state letter in /proc/<pid>/stat ('T': stopped); 0 if it cannot be read.
char StateOf(pid_t pid) {
  const std::vector<std::string> fields = mp::testing::ProcStatFields(pid);
  return fields.empty() || fields[0].empty() ? 0 : fields[0][0];
}

TEST(ForkedServerTest, ChildrenRunAndReportTheirExitCodes) {
  std::shared_ptr<mp::ForkServer> server = MakeServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->Name(), "fork");
  ASSERT_TRUE(server->ServerPid().has_value());
  for (int code : {0, 3, 77}) EXPECT_EQ(RunToEnd(server, mp::Call<&ReturnCode>(code)), code);
}

TEST(ForkedServerTest, CallablesAreRefusedAndForkOnlyArgumentsAccepted) {
  std::shared_ptr<mp::ForkServer> server = MakeServer();
  ASSERT_NE(server, nullptr);
  absl::StatusOr<mp::Process> callable =
      mp::Process::Create(server, mp::Target::Callable([] { return 0; }));
  ASSERT_FALSE(callable.ok());
  EXPECT_EQ(callable.status().code(), absl::StatusCode::kFailedPrecondition) << callable.status();
  EXPECT_TRUE(absl::StrContains(callable.status().message(), "registered function"))
      << callable.status();
  EXPECT_EQ(RunToEnd(server, mp::Call<&ReturnThing>(ForkOnlyThing{9})), 9);
}

TEST(ForkedServerTest, KillEndsAStoppedChildWithItsSignalAndTheSentinelSaysSo) {
  std::shared_ptr<mp::ForkServer> server = MakeServer();
  ASSERT_NE(server, nullptr);
  mp::testing::ChildGuard guard;
  absl::StatusOr<mp::Process> created = mp::Process::Create(server, mp::Call<&StopSelf>());
  ASSERT_TRUE(created.ok()) << created.status();
  mp::Process p = guard.Add(*created);
  ASSERT_TRUE(p.Start().ok());
  // Wait (bounded) for the child to be stopped: its state in /proc.
  const mp::Deadline deadline = mp::Deadline::After(absl::Seconds(30));
  while (StateOf(*p.Pid()) != 'T' && !deadline.Expired()) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_EQ(StateOf(*p.Pid()), 'T');
  absl::StatusOr<int> sentinel = p.Sentinel();
  ASSERT_TRUE(sentinel.ok());
  pollfd before{*sentinel, POLLIN, 0};
  EXPECT_EQ(poll(&before, 1, 0), 0);  // a stopped child has not ended
  ASSERT_TRUE(p.Kill().ok());
  pollfd after{*sentinel, POLLIN, 0};
  EXPECT_EQ(poll(&after, 1, 30000), 1);
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.ExitCode(), -SIGKILL);
}

TEST(ForkedServerTest, ChildrenSeeTheMemoryOfTheServersCreation) {
  g_global = 5;
  std::shared_ptr<mp::ForkServer> server = MakeServer();
  ASSERT_NE(server, nullptr);
  g_global = 6;  // after the server was made: its children keep the old value
  EXPECT_EQ(RunToEnd(server, mp::Call<&ReturnGlobal>()), 5);
  g_global = 0;
}

TEST(ForkedServerTest, PinsMadeBeforeTheServerReachItsChildren) {
  absl::StatusOr<uint64_t> before =
      mp::process_internal::PinForForkChildren(std::make_shared<const int64_t>(31), "test object");
  ASSERT_TRUE(before.ok()) << before.status();
  absl::StatusOr<uint64_t> other_kind =
      mp::process_internal::PinForForkChildren(std::make_shared<const int64_t>(32), "other");
  ASSERT_TRUE(other_kind.ok()) << other_kind.status();
  std::shared_ptr<mp::ForkServer> server = MakeServer();
  ASSERT_NE(server, nullptr);
  absl::StatusOr<uint64_t> after =
      mp::process_internal::PinForForkChildren(std::make_shared<const int64_t>(33), "test object");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(RunToEnd(server, mp::Call<&CheckPin>(*before, int64_t{31})), 0);
  EXPECT_EQ(RunToEnd(server, mp::Call<&CheckPin>(*other_kind, int64_t{32})), 2);
  EXPECT_EQ(RunToEnd(server, mp::Call<&CheckPin>(*after, int64_t{33})), 1);
  // In this process all three are found; unpinned, none.
  EXPECT_EQ(CheckPin(*after, 33), 0);
  for (uint64_t key : {*before, *other_kind, *after}) mp::process_internal::Unpin(key);
  EXPECT_EQ(CheckPin(*before, 31), 1);
}

TEST(ForkedServerTest, TheUsersThreadIsWarnedAboutOnceAtCreationOnly) {
  mp::testing::IdleThread user;
  std::string err;
  {
    StderrCapture capture;
    std::shared_ptr<mp::ForkServer> server = MakeServer();
    if (server != nullptr) {
      for (int i = 0; i < 3; ++i) EXPECT_EQ(RunToEnd(server, mp::Call<&ReturnCode>(i)), i);
    }
    err = capture.Take();
  }
  user.Release();
  EXPECT_EQ(mp::testing::CountOccurrences(err, kWarning), 1u) << err;
}

TEST(ForkedServerTest, ADeadServerIsForkedAgain) {
  std::shared_ptr<mp::ForkServer> server = MakeServer();
  ASSERT_NE(server, nullptr);
  std::optional<pid_t> first = server->ServerPid();
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(kill(*first, SIGKILL), 0);
  EXPECT_EQ(RunToEnd(server, mp::Call<&ReturnCode>(4)), 4);
  std::optional<pid_t> second = server->ServerPid();
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(*second, *first);
}

TEST(ForkedServerTest, StopEndsTheServer) {
  std::shared_ptr<mp::ForkServer> server = MakeServer();
  ASSERT_NE(server, nullptr);
  const std::string dir = server->SocketDirectory();
  EXPECT_FALSE(dir.empty());
  server->Stop();
  EXPECT_FALSE(server->ServerPid().has_value());
  EXPECT_NE(access(dir.c_str(), F_OK), 0);
}

}  // namespace forked_server_test
