// Copyright 2026 The mp Authors.
//
// kill_on_parent_death through the Context API, under every start method: a parent SIGKILLed
// while its children run takes along the children it started with the option, both through
// ctx->NamedProcess<&Fn>(options, args...) and ctx->Process(mp::Call<&Fn>(args...), options).
// (start_methods/parent_death_test.cc holds the option's own contract.)

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "context/context.h"
#include "gtest/gtest.h"
#include "serialize/fd.h"
#include "start_methods/process.h"
#include "start_methods/start_method.h"
#include "start_methods/test_util.h"

namespace mp_faults {
namespace {

constexpr absl::Duration kBound = absl::Seconds(60);  // safety bound of every wait

// Blocks until end of file on `in` (the test never closes its end before the child is gone).
int BlockUntilEof(mp::PassedFd in) {
  char c;
  for (;;) {
    ssize_t n = read(in.fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
  }
}

// The parent: starts two kill_on_parent_death children through the context of `method`, writes
// their pids on `report`, then waits to be killed.
int StartTwoAndWait(std::string method, mp::PassedFd in, mp::PassedFd report) {
  absl::StatusOr<mp::Context*> ctx = mp::GetContext(method);
  if (!ctx.ok()) return 10;
  absl::StatusOr<mp::Process> a =
      (*ctx)->NamedProcess<&BlockUntilEof>({.kill_on_parent_death = true}, in);
  absl::StatusOr<mp::Process> b =
      (*ctx)->Process(mp::Call<&BlockUntilEof>(in), {.kill_on_parent_death = true});
  if (!a.ok() || !b.ok() || !a->Start().ok() || !b->Start().ok()) return 11;
  const int32_t pids[2] = {*a->Pid(), *b->Pid()};
  if (write(report.fd, pids, sizeof(pids)) != sizeof(pids)) return 12;
  for (;;) pause();
}

class ParentDeathThroughContextTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ParentDeathThroughContextTest, ChildrenDieWithTheirKilledParent) {
  absl::StatusOr<mp::Context*> ctx = mp::GetContext(GetParam());
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  mp::testing::TestPipe in;
  mp::testing::TestPipe report;
  mp::testing::Strangers strangers;  // destroyed after the parent below is killed and joined
  absl::StatusOr<mp::Process> parent =
      (*ctx)->Process<&StartTwoAndWait>(GetParam(), mp::PassedFd{in.r()}, mp::PassedFd{report.w()});
  ASSERT_TRUE(parent.ok()) << parent.status();
  ASSERT_TRUE(parent->Start().ok());
  struct KillAndJoin {
    mp::Process& p;
    ~KillAndJoin() {
      (void)p.Kill();
      (void)p.Join();
    }
  } kill_parent_at_exit{*parent};
  report.CloseWrite();
  int32_t pids[2] = {0, 0};
  {
    const mp::Deadline deadline = mp::Deadline::After(kBound);
    absl::StatusOr<short> ready = mp::PollUntil(report.r(), POLLIN, deadline);
    ASSERT_TRUE(ready.ok() && *ready != 0) << "the parent did not report";
    ASSERT_EQ(read(report.r(), pids, sizeof(pids)), static_cast<ssize_t>(sizeof(pids)))
        << "exit code " << parent->ExitCode().value_or(-1000);
  }
  for (int32_t pid : pids) ASSERT_TRUE(strangers.Watch(pid)) << "child " << pid << " is gone";
  ASSERT_TRUE(parent->Kill().ok());
  ASSERT_TRUE(parent->Join().ok());
  EXPECT_EQ(parent->ExitCode(), -SIGKILL);
  for (int32_t pid : pids) {
    EXPECT_TRUE(strangers.WaitForDeath(pid, kBound)) << "child " << pid << " outlived its parent";
  }
}

INSTANTIATE_TEST_SUITE_P(EveryMethod, ParentDeathThroughContextTest,
                         ::testing::Values("fork", "spawn", "forkserver"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace mp_faults
