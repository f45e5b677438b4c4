// Copyright 2026 The mp Authors.
//
// PoolOptions::task_timeout under every start method: a task over its limit fails alone with
// kDeadlineExceeded, its worker (hung or stopped) is killed and replaced, the rest carry on; tasks
// within their limit are unaffected; the limit counts per task from its start, not per chunk.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "pool/pool.h"
#include "start_methods/fork.h"
#include "start_methods/forkserver.h"
#include "start_methods/spawn.h"
#include "start_methods/test_methods.h"

namespace task_timeout_test {

using ::absl::StatusCode;

// Negative: never returns (blocked in pause until killed). Arithmetic in and out, so an untimed
// chunk would take the batched path; a timed one runs task by task.
int64_t HangOnNegative(int64_t x) {
  if (x < 0) {
    for (;;) pause();
  }
  return 2 * x;
}

// Negative: stops its own worker (SIGSTOP), which then runs nothing until killed.
int64_t StopOnNegative(int64_t x) {
  if (x < 0) raise(SIGSTOP);
  return x;
}

// Works for `ms` milliseconds (the work itself, not a synchronization), returns the pid.
int64_t WorkFor(int64_t ms) {
  absl::SleepFor(absl::Milliseconds(ms));
  return getpid();
}

// The pid a time-limit failure names ("... in worker pid N, which was killed"), -1 if none.
int KilledPid(const absl::Status& s) {
  absl::string_view m = s.message();
  const size_t at = m.find("worker pid ");
  if (at == absl::string_view::npos) return -1;
  m.remove_prefix(at + 11);
  const size_t end = m.find(',');
  int pid = -1;
  return absl::SimpleAtoi(m.substr(0, end), &pid) ? pid : -1;
}

class TaskTimeoutTest : public ::testing::TestWithParam<std::string> {
 protected:
  mp::Pool MakePool(int processes, absl::Duration limit) {
    std::shared_ptr<mp::StartMethod> method = mp::testing::MethodNamed(GetParam());
    absl::StatusOr<mp::Pool> pool =
        mp::Pool::Create(method, {.processes = processes, .task_timeout = limit});
    EXPECT_TRUE(pool.ok()) << pool.status();
    return *std::move(pool);
  }
};

TEST_P(TaskTimeoutTest, TaskOverItsLimitFailsAloneAndItsWorkerIsReplaced) {
  mp::Pool pool = MakePool(2, absl::Milliseconds(300));
  const std::vector<int> before = pool.WorkerPids();
  std::vector<int64_t> xs = {1, -1, 3, 4, 5, 6};
  mp::ImapIterator<int64_t> it = pool.Imap<&HangOnNegative>(xs);
  for (size_t i = 0; i < xs.size(); ++i) {
    absl::StatusOr<int64_t> r = it.Next(absl::Seconds(60));
    if (i != 1) {
      ASSERT_TRUE(r.ok()) << i << ": " << r.status();
      EXPECT_EQ(*r, 2 * xs[i]);
      continue;
    }
    ASSERT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status();
    EXPECT_NE(r.status().message().find("task 1 of Imap<task_timeout_test::HangOnNegative>"),
              absl::string_view::npos)
        << r.status();
    EXPECT_NE(r.status().message().find("time limit of 300ms"), absl::string_view::npos)
        << r.status();
    const int killed = KilledPid(r.status());
    EXPECT_NE(std::find(before.begin(), before.end(), killed), before.end()) << r.status();
    // Its replacement runs by the time the failure is seen.
    const std::vector<int> now = pool.WorkerPids();
    EXPECT_EQ(now.size(), 2u);
    EXPECT_EQ(std::find(now.begin(), now.end(), killed), now.end());
  }
  // The pool keeps working.
  absl::StatusOr<std::vector<int64_t>> more = pool.Map<&HangOnNegative>(xs = {7, 8, 9});
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ(*more, (std::vector<int64_t>{14, 16, 18}));
  pool.Close();
  EXPECT_TRUE(pool.Join(absl::Seconds(60)).ok());
}

// The tasks of the timed-out task's chunk that had not started run on another worker.
TEST_P(TaskTimeoutTest, UnstartedTasksOfTheSameChunkCarryOn) {
  mp::Pool pool = MakePool(2, absl::Milliseconds(300));
  std::vector<int64_t> xs = {-1, 7, 8};
  mp::ImapIterator<int64_t> it = pool.Imap<&HangOnNegative>(xs, 3);
  EXPECT_EQ(it.Next(absl::Seconds(60)).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(*it.Next(absl::Seconds(60)), 14);
  EXPECT_EQ(*it.Next(absl::Seconds(60)), 16);
}

// A stopped worker polices nothing: the pool's side kills it.
TEST_P(TaskTimeoutTest, StoppedWorkerIsKilled) {
  mp::Pool pool = MakePool(1, absl::Milliseconds(300));
  const int before = pool.WorkerPids().at(0);
  absl::StatusOr<int64_t> r = pool.ApplyAsync<&StopOnNegative>(int64_t{-1}).Get(absl::Seconds(60));
  ASSERT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_EQ(KilledPid(r.status()), before);
  EXPECT_EQ(*pool.Apply<&StopOnNegative>(int64_t{5}), 5);
  EXPECT_NE(pool.WorkerPids().at(0), before);
}

// The limit is each task's, from its start: a chunk of tasks that together run longer than the
// limit, each well within it, all succeed on the workers they started on.
TEST_P(TaskTimeoutTest, LimitIsPerTaskNotPerChunk) {
  mp::Pool pool = MakePool(2, absl::Seconds(1));
  const std::vector<int> before = pool.WorkerPids();
  std::vector<int64_t> ms(8, 300);  // two chunks of four: 1.2 s each
  absl::StatusOr<std::vector<int64_t>> pids = pool.Map<&WorkFor>(ms, 4);
  ASSERT_TRUE(pids.ok()) << pids.status();
  for (int64_t pid : *pids) {
    EXPECT_NE(std::find(before.begin(), before.end(), pid), before.end()) << pid;
  }
  EXPECT_EQ(pool.WorkerPids(), before);
}

TEST_P(TaskTimeoutTest, TasksWithinTheirLimitAreUnaffected) {
  mp::Pool pool = MakePool(2, absl::Seconds(30));
  const std::vector<int> before = pool.WorkerPids();
  std::vector<int64_t> xs(10000);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<int64_t>(i);
  absl::StatusOr<std::vector<int64_t>> r = pool.Map<&HangOnNegative>(xs);
  ASSERT_TRUE(r.ok()) << r.status();
  for (size_t i = 0; i < xs.size(); ++i) ASSERT_EQ((*r)[i], 2 * xs[i]);
  EXPECT_EQ(pool.WorkerPids(), before);
}

INSTANTIATE_TEST_SUITE_P(Methods, TaskTimeoutTest,
                         ::testing::Values("fork", "spawn", "forkserver"));

TEST(TaskTimeoutOptionsTest, NonPositiveLimitsAreInvalid) {
  for (absl::Duration bad : {absl::ZeroDuration(), absl::Seconds(-1)}) {
    absl::StatusOr<mp::Pool> pool =
        mp::Pool::Create(mp::ForkStartMethod(), {.processes = 1, .task_timeout = bad});
    EXPECT_EQ(pool.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(pool.status().message().find("task_timeout"), absl::string_view::npos)
        << pool.status();
  }
}

}  // namespace task_timeout_test
