// Copyright 2026 The mp Authors.
//
// A fork-method Pool starts its workers from a single-threaded fork server made at Pool::Create
// (pool/process_launcher.h, start_methods/forked_server.h): a replacement worker prints no
// "forking a multi-threaded process" warning about the pool's own threads, a thread of the user's
// alive at Create is warned about once, the workers see the memory of Create (a fork-domain Lock
// of the initializer included, in replacements too) and die with the pool's process.

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "pool/pool.h"
#include "pool/test_util.h"
#include "start_methods/fork.h"
#include "start_methods/process.h"
#include "start_methods/test_util.h"
#include "sync/lock.h"

namespace fork_helper_test {

using ::mp::pool_testing::KeepLock;
using ::mp::pool_testing::LockWasFree;
using ::mp::pool_testing::Pid;
using ::mp::testing::CountOccurrences;
using ::mp::testing::StderrCapture;

constexpr char kWarning[] = "forking a multi-threaded process";

int64_t KillSelf(int64_t) {
  raise(SIGKILL);
  return 0;
}

// A process's kernel parent (/proc/<pid>/stat's fourth field); 0 if it cannot be read.
int ParentPidOf(int pid) {
  const std::vector<std::string> fields = mp::testing::ProcStatFields(pid);
  int ppid = 0;
  return fields.size() > 1 && absl::SimpleAtoi(fields[1], &ppid) ? ppid : 0;
}

// Kills the pool's only worker with a task and returns the pid of its replacement (0 on failure,
// with the test failed).
int64_t ReplaceTheWorker(mp::Pool& pool) {
  absl::StatusOr<int64_t> first = pool.Apply<&Pid>(int64_t{0});
  EXPECT_TRUE(first.ok()) << first.status();
  if (!first.ok()) return 0;
  absl::StatusOr<int64_t> killed = pool.Apply<&KillSelf>(int64_t{0});
  EXPECT_FALSE(killed.ok());
  EXPECT_EQ(killed.status().code(), absl::StatusCode::kAborted) << killed.status();
  EXPECT_TRUE(absl::StrContains(killed.status().message(), absl::StrCat(*first)))
      << killed.status();
  EXPECT_TRUE(absl::StrContains(killed.status().message(), "signal 9")) << killed.status();
  absl::StatusOr<int64_t> second = pool.Apply<&Pid>(int64_t{0});
  EXPECT_TRUE(second.ok()) << second.status();
  if (!second.ok()) return 0;
  EXPECT_NE(*second, *first);
  return *second;
}

TEST(ForkHelperTest, AReplacementWorkerPrintsNoThreadWarning) {
  absl::StatusOr<mp::Pool> pool = mp::Pool::Create(mp::ForkStartMethod(), {.processes = 1});
  ASSERT_TRUE(pool.ok()) << pool.status();
  StderrCapture capture;  // the pool's threads run from here on
  const int64_t replacement = ReplaceTheWorker(*pool);
  // Not forked from this (multi-threaded) process, but from the pool's fork helper.
  if (replacement != 0) {
    EXPECT_NE(ParentPidOf(static_cast<int>(replacement)), getpid());
  }
  pool->Close();
  EXPECT_TRUE(pool->Join(absl::Seconds(30)).ok());
  const std::string err = capture.Take();
  EXPECT_FALSE(absl::StrContains(err, kWarning)) << err;
}

TEST(ForkHelperTest, CreateWithoutOtherThreadsPrintsNoWarning) {
  // A sanitizer's own thread (TSan's) makes the warning true.
  if (mp::CountThreads() != 1) GTEST_SKIP() << "this process has threads of its own";
  StderrCapture capture;
  absl::StatusOr<mp::Pool> pool = mp::Pool::Create(mp::ForkStartMethod(), {.processes = 2});
  ASSERT_TRUE(pool.ok()) << pool.status();
  absl::StatusOr<std::vector<int64_t>> pids = pool->Map<&Pid>(std::vector<int64_t>(4, 0), 1);
  EXPECT_TRUE(pids.ok()) << pids.status();
  pool->Close();
  EXPECT_TRUE(pool->Join(absl::Seconds(30)).ok());
  const std::string err = capture.Take();
  EXPECT_FALSE(absl::StrContains(err, kWarning)) << err;
}

TEST(ForkHelperTest, AUserThreadAliveAtCreateIsWarnedAboutOnce) {
  mp::testing::IdleThread user;
  std::string err;
  {
    StderrCapture capture;
    absl::StatusOr<mp::Pool> pool = mp::Pool::Create(mp::ForkStartMethod(), {.processes = 2});
    if (pool.ok()) {
      absl::StatusOr<std::vector<int64_t>> pids = pool->Map<&Pid>(std::vector<int64_t>(4, 0), 1);
      EXPECT_TRUE(pids.ok()) << pids.status();
      // Both workers replaced: two more starts, none of which warns.
      absl::StatusOr<std::vector<int64_t>> killed =
          pool->Map<&KillSelf>(std::vector<int64_t>(2, 0), 1);
      EXPECT_FALSE(killed.ok());
      pids = pool->Map<&Pid>(std::vector<int64_t>(4, 0), 1);
      EXPECT_TRUE(pids.ok()) << pids.status();
      pool->Close();
      EXPECT_TRUE(pool->Join(absl::Seconds(30)).ok());
    }
    err = capture.Take();
    EXPECT_TRUE(pool.ok()) << pool.status();
  }
  user.Release();
  EXPECT_EQ(CountOccurrences(err, kWarning), 1u) << err;
}

// Set before Pool::Create; the workers are copies of that moment.
int64_t g_set_before_create = 0;
int64_t SetBeforeCreate(int64_t) { return g_set_before_create; }
// An anonymous shared mapping made before Pool::Create (the fork domain): shared, so a write made
// after Create is seen too.
std::atomic<int64_t>* g_shared = nullptr;
int64_t ReadShared(int64_t) { return g_shared->load(); }

TEST(ForkHelperTest, WorkersSeeTheForkDomainStateOfCreate) {
  void* map = mmap(nullptr, sizeof(std::atomic<int64_t>), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(map, MAP_FAILED);
  g_shared = new (map) std::atomic<int64_t>(0);
  g_set_before_create = 41;
  absl::StatusOr<mp::Lock> lock = mp::Lock::Create(mp::ShmDomain::kFork);
  ASSERT_TRUE(lock.ok()) << lock.status();
  absl::StatusOr<mp::PoolInitializer> init = mp::MakePoolInitializer<&KeepLock>(*lock);
  ASSERT_TRUE(init.ok()) << init.status();
  {
    absl::StatusOr<mp::Pool> pool =
        mp::Pool::Create(mp::ForkStartMethod(), {.processes = 1, .initializer = *init});
    ASSERT_TRUE(pool.ok()) << pool.status();
    g_shared->store(42);
    for (int round = 0; round < 2; ++round) {  // the first worker, then its replacement
      absl::StatusOr<int64_t> before = pool->Apply<&SetBeforeCreate>(int64_t{0});
      ASSERT_TRUE(before.ok()) << before.status();
      EXPECT_EQ(*before, 41) << "round " << round;
      absl::StatusOr<int64_t> shared = pool->Apply<&ReadShared>(int64_t{0});
      ASSERT_TRUE(shared.ok()) << shared.status();
      EXPECT_EQ(*shared, 42) << "round " << round;
      ASSERT_TRUE(lock->Acquire().ok());
      absl::StatusOr<bool> free = pool->Apply<&LockWasFree>(int64_t{0});
      ASSERT_TRUE(lock->Release().ok());
      ASSERT_TRUE(free.ok()) << free.status();
      EXPECT_FALSE(*free) << "round " << round << ": the worker's Lock is not the test's";
      if (round == 0) ReplaceTheWorker(*pool);
    }
    pool->Close();
    EXPECT_TRUE(pool->Join(absl::Seconds(30)).ok());
  }
  g_shared = nullptr;
  munmap(map, sizeof(std::atomic<int64_t>));
}

// In the pool's process (a fork child of the test): starts a pool of two workers, reports
// "<worker> <worker>\n" on `out`, then waits to be killed.
int RunPoolUntilKilled(int out, int wait) {
  absl::StatusOr<mp::Pool> pool = mp::Pool::Create(mp::ForkStartMethod(), {.processes = 2});
  if (!pool.ok()) return 10;
  // Both workers run (each answers once it has started).
  absl::StatusOr<std::vector<int64_t>> pids = pool->Map<&Pid>(std::vector<int64_t>(8, 0), 1);
  if (!pids.ok()) return 11;
  std::vector<int> workers = pool->WorkerPids();
  if (workers.size() != 2) return 12;
  mp::testing::WriteAllOrDie(out, absl::StrCat(workers[0], " ", workers[1], "\n"));
  char c;
  (void)read(wait, &c, 1);  // never returns: the test kills this process first
  return 13;
}

TEST(ForkHelperTest, WorkersAndTheirHelperDieWithThePoolsProcess) {
  mp::testing::TestPipe report, wait;
  mp::testing::Strangers strangers;
  mp::testing::ChildGuard guard;
  const int out = report.w(), in = wait.r();
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(mp::ForkStartMethod(),
                          mp::Target::Callable([out, in] { return RunPoolUntilKilled(out, in); }));
  ASSERT_TRUE(p.ok()) << p.status();
  mp::Process pool_process = guard.Add(*p);
  ASSERT_TRUE(pool_process.Start().ok());
  report.CloseWrite();
  std::string line;
  for (;;) {
    absl::StatusOr<std::string> c = mp::testing::ReadExactly(report.r(), 1);
    ASSERT_TRUE(c.ok()) << c.status() << " after '" << line << "'";
    if (*c == "\n") break;
    line += *c;
  }
  std::vector<int> watched;
  for (absl::string_view field : absl::StrSplit(line, ' ')) {
    int pid = 0;
    ASSERT_TRUE(absl::SimpleAtoi(field, &pid)) << line;
    watched.push_back(pid);
  }
  ASSERT_EQ(watched.size(), 2u);
  const int helper = ParentPidOf(watched[0]);
  EXPECT_NE(helper, *pool_process.Pid());  // forked by the helper, not by the pool's process
  EXPECT_EQ(ParentPidOf(watched[1]), helper);
  watched.push_back(helper);
  for (int pid : watched) ASSERT_TRUE(strangers.Watch(pid)) << pid;
  ASSERT_TRUE(pool_process.Kill().ok());
  ASSERT_TRUE(pool_process.Join().ok());
  EXPECT_EQ(pool_process.ExitCode(), -SIGKILL);
  for (int pid : watched) EXPECT_TRUE(strangers.WaitForDeath(pid)) << pid;
}

}  // namespace fork_helper_test
