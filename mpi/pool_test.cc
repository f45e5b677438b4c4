// Copyright 2026 The mp Authors.
//
// Pools on the mpi method: Pool's whole contract (pool/pool_test_cases.cc) with mpi workers on this
// host, then what only an mpi pool has: ProcessPoolExecutor with a per-task time limit, a worker
// that breaks the pool's protocol (killed, its task kAborted, the pool goes on), and initializer
// arguments that cannot cross hosts.

#include "pool/pool.h"

#include <mpi.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "mpi/runtime.h"
#include "mpi/start_method.h"
#include "pool/pool_test_cases.h"
#include "pool/process_pool_executor.h"
#include "sync/lock.h"

namespace pool_test {

INSTANTIATE_TEST_SUITE_P(Mpi, PoolTest, ::testing::Values("mpi"));

namespace {

using ::absl::StatusCode;

int64_t Twice(int64_t x) { return 2 * x; }

// Sleeps `ms` milliseconds, then returns it.
int64_t SleepMs(int64_t ms) {
  absl::SleepFor(absl::Milliseconds(ms));
  return ms;
}

// In an mpi pool worker: sends the pool a message of a kind it does not know, on the pool's own
// tag, then waits to be killed for it (returns after a minute, which fails the test).
int64_t SendGarbage(int64_t kind) {
  MPI_Comm parent = MPI_COMM_NULL;
  MPI_Comm_get_parent(&parent);
  const char bytes[3] = {static_cast<char>(kind), 'x', 'y'};
  MPI_Send(bytes, 3, MPI_BYTE, 0, mp::mpi_internal::kTagPoolUp, parent);
  absl::SleepFor(absl::Seconds(60));
  return -1;
}

absl::Status TakeLock(mp::Lock) { return absl::OkStatus(); }

std::shared_ptr<mp::StartMethod> Mpi() { return mp::MpiStartMethod(); }

TEST(MpiPoolTest, ExecutorFuturesAndATimeLimit) {
  absl::StatusOr<mp::ProcessPoolExecutor> ex =
      mp::ProcessPoolExecutor::Create({.max_workers = 2, .method = Mpi()});
  ASSERT_TRUE(ex.ok()) << ex.status();
  std::vector<mp::Future<int64_t>> futures;
  for (int64_t i = 0; i < 20; ++i) futures.push_back(ex->Submit<&Twice>(i));
  for (int64_t i = 0; i < 20; ++i) {
    absl::StatusOr<int64_t> v = futures[i].Result(absl::Seconds(60));
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, 2 * i);
  }
  // Over its limit: the worker is killed and replaced, the task fails kDeadlineExceeded.
  mp::Future<int64_t> slow = ex->Submit<&SleepMs>({.timeout = absl::Milliseconds(300)}, 30000);
  absl::StatusOr<int64_t> r = slow.Result(absl::Seconds(60));
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "time limit")) << r.status();
  absl::StatusOr<int64_t> after = ex->Submit<&Twice>(int64_t{21}).Result(absl::Seconds(60));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 42);
  EXPECT_TRUE(ex->Shutdown().ok());
}

TEST(MpiPoolTest, AWorkerThatBreaksTheProtocolIsKilledAndReplaced) {
  absl::StatusOr<mp::Pool> pool = mp::Pool::Create(Mpi(), {.processes = 1});
  ASSERT_TRUE(pool.ok()) << pool.status();
  for (int64_t kind : {int64_t{'Z'}, int64_t{'C'}, int64_t{'S'}}) {
    absl::StatusOr<int64_t> bad = pool->ApplyAsync<&SendGarbage>(kind).Get(absl::Seconds(60));
    EXPECT_EQ(bad.status().code(), StatusCode::kAborted) << kind << ": " << bad.status();
    absl::StatusOr<int64_t> good = pool->Apply<&Twice>(int64_t{4});
    ASSERT_TRUE(good.ok()) << good.status();
    EXPECT_EQ(*good, 8);
  }
  pool->Close();
  EXPECT_TRUE(pool->Join(absl::Seconds(60)).ok());
}

TEST(MpiPoolTest, InitializerArgumentsThatCannotCrossHostsAreRefused) {
  absl::StatusOr<mp::Lock> lock = mp::Lock::Create(mp::ShmDomain::kTransferable);
  ASSERT_TRUE(lock.ok()) << lock.status();
  absl::StatusOr<mp::PoolInitializer> init = mp::MakePoolInitializer<&TakeLock>(*lock);
  ASSERT_TRUE(init.ok()) << init.status();
  absl::StatusOr<mp::Pool> pool = mp::Pool::Create(Mpi(), {.processes = 1, .initializer = *init});
  EXPECT_EQ(pool.status().code(), StatusCode::kFailedPrecondition) << pool.status();
  EXPECT_TRUE(absl::StrContains(pool.status().message(), "Manager")) << pool.status();
}

}  // namespace
}  // namespace pool_test
