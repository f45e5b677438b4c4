// Copyright 2026 The mp Authors.
//
// ThreadPool: Pool's calls over worker threads of this process, the initializer with a descriptor,
// a throwing task, maxtasksperchild replacing threads, and what threads refuse (task_timeout,
// fork-domain initializer arguments).

#include "pool/thread_pool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "pool/initializer.h"
#include "sync/lock.h"

namespace thread_pool_test {

using ::absl::StatusCode;

int64_t Square(int64_t x) { return x * x; }
std::string Greet(std::string name, int64_t n) { return absl::StrCat(name, "#", n); }
int64_t Tid(int64_t) { return gettid(); }
int64_t ThrowOnThree(int64_t x) {
  if (x == 3) throw std::runtime_error("three");
  return x;
}
absl::Status WriteTid(mp::PassedFd fd) {
  const int64_t tid = gettid();
  if (write(fd.fd, &tid, sizeof(tid)) != sizeof(tid)) return absl::InternalError("write");
  close(fd.fd);
  return absl::OkStatus();
}
absl::Status KeepLock(mp::Lock) { return absl::OkStatus(); }

bool IsThreadOfThisProcess(int64_t tid) {
  struct stat st;
  return tid != getpid() && stat(absl::StrCat("/proc/self/task/", tid).c_str(), &st) == 0;
}

TEST(ThreadPoolTest, RunsPoolsCallsOnThreadsOfThisProcess) {
  absl::StatusOr<mp::ThreadPool> pool = mp::ThreadPool::Create({.processes = 2});
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ(pool->processes(), 2);
  for (int pid : pool->WorkerPids()) EXPECT_TRUE(IsThreadOfThisProcess(pid)) << pid;

  std::vector<int64_t> xs;
  for (int64_t i = 0; i < 1000; ++i) xs.push_back(i);
  absl::StatusOr<std::vector<int64_t>> squares = pool->Map<&Square>(xs);
  ASSERT_TRUE(squares.ok()) << squares.status();
  for (int64_t i = 0; i < 1000; ++i) EXPECT_EQ((*squares)[i], i * i);

  absl::StatusOr<std::string> greeting = pool->Apply<&Greet>(std::string("mp"), int64_t{7});
  ASSERT_TRUE(greeting.ok()) << greeting.status();
  EXPECT_EQ(*greeting, "mp#7");

  mp::ImapIterator<int64_t> it = pool->Imap<&Square>(std::vector<int64_t>{1, 2, 3});
  for (int64_t want : {1, 4, 9}) {
    absl::StatusOr<int64_t> v = it.Next(absl::Seconds(30));
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, want);
  }
  EXPECT_EQ(it.Next().status().code(), StatusCode::kOutOfRange);

  absl::StatusOr<std::vector<int64_t>> tids = pool->Map<&Tid>(std::vector<int64_t>(64, 0), 1);
  ASSERT_TRUE(tids.ok()) << tids.status();
  for (int64_t tid : *tids) EXPECT_TRUE(IsThreadOfThisProcess(tid)) << tid;
  pool->Close();
  EXPECT_TRUE(pool->Join(absl::Seconds(30)).ok());
}

TEST(ThreadPoolTest, AThrowingTaskFailsAloneAndTheWorkerGoesOn) {
  absl::StatusOr<mp::ThreadPool> pool = mp::ThreadPool::Create({.processes = 1});
  ASSERT_TRUE(pool.ok()) << pool.status();
  const std::vector<int> before = pool->WorkerPids();
  mp::ImapIterator<int64_t> it = pool->Imap<&ThrowOnThree>(std::vector<int64_t>{1, 3, 5});
  EXPECT_EQ(*it.Next(absl::Seconds(30)), 1);
  absl::StatusOr<int64_t> three = it.Next(absl::Seconds(30));
  EXPECT_EQ(three.status().code(), StatusCode::kUnknown) << three.status();
  EXPECT_NE(three.status().message().find("three"), absl::string_view::npos) << three.status();
  EXPECT_EQ(*it.Next(absl::Seconds(30)), 5);
  EXPECT_EQ(pool->WorkerPids(), before);
}

// Every worker thread (the replacements too, with maxtasksperchild 1) runs the initializer with
// its own duplicate of the descriptor, which the caller closed.
TEST(ThreadPoolTest, InitializerRunsInEveryThreadWithItsDescriptor) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  absl::StatusOr<mp::PoolInitializer> init =
      mp::MakePoolInitializer<&WriteTid>(mp::PassedFd{fds[1]});
  ASSERT_TRUE(init.ok()) << init.status();
  close(fds[1]);
  absl::StatusOr<std::vector<int64_t>> tids;
  {
    absl::StatusOr<mp::ThreadPool> pool = mp::ThreadPool::Create(
        {.processes = 1, .initializer = *std::move(init), .maxtasksperchild = 1});
    ASSERT_TRUE(pool.ok()) << pool.status();
    tids = pool->Map<&Tid>(std::vector<int64_t>(3, 0), 1);
    ASSERT_TRUE(tids.ok()) << tids.status();
    EXPECT_EQ(std::set<int64_t>(tids->begin(), tids->end()).size(), 3u);  // a thread per task
    pool->Close();
    ASSERT_TRUE(pool->Join(absl::Seconds(30)).ok());
  }  // the pool's duplicate of the write end closes with it: the reads below end
  std::set<int64_t> initialized;
  int64_t tid;
  while (read(fds[0], &tid, sizeof(tid)) == sizeof(tid)) initialized.insert(tid);
  close(fds[0]);
  for (int64_t t : *tids) EXPECT_TRUE(initialized.contains(t)) << t;
}

TEST(ThreadPoolTest, RefusesWhatThreadsCannotDo) {
  absl::StatusOr<mp::ThreadPool> timed =
      mp::ThreadPool::Create({.processes = 1, .task_timeout = absl::Seconds(1)});
  EXPECT_EQ(timed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(timed.status().message().find("task_timeout"), absl::string_view::npos)
      << timed.status();

  absl::StatusOr<mp::Lock> lock = mp::Lock::Create(mp::ShmDomain::kFork);
  ASSERT_TRUE(lock.ok()) << lock.status();
  absl::StatusOr<mp::PoolInitializer> init = mp::MakePoolInitializer<&KeepLock>(*lock);
  ASSERT_TRUE(init.ok()) << init.status();
  absl::StatusOr<mp::ThreadPool> forked =
      mp::ThreadPool::Create({.processes = 1, .initializer = *init});
  EXPECT_EQ(forked.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(forked.status().message().find("Lock"), absl::string_view::npos) << forked.status();

  EXPECT_EQ(mp::ThreadPool::Create({.processes = -1}).status().code(),
            StatusCode::kInvalidArgument);
}

// Destroying a pool that was not joined stops its threads (nothing left running for ASan/TSan).
TEST(ThreadPoolTest, DestroyingAnUnjoinedPoolStopsItsThreads) {
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<mp::ThreadPool> pool = mp::ThreadPool::Create({.processes = 2});
    ASSERT_TRUE(pool.ok()) << pool.status();
    EXPECT_EQ(*pool->Apply<&Square>(int64_t{3}), 9);
  }
}

}  // namespace thread_pool_test
