// Copyright 2026 The mp Authors.
//
// Exceptions at the task boundary under every start method: a throwing task fails alone with
// kUnknown naming the exception (batched and encoded paths) and its worker lives; a throwing
// initializer fails the pool like an initializer's error status.

#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "pool/pool.h"
#include "start_methods/fork.h"
#include "start_methods/forkserver.h"
#include "start_methods/spawn.h"
#include "start_methods/test_methods.h"

namespace pool_exceptions_test {

using ::absl::StatusCode;

int64_t Square(int64_t x) { return x * x; }

// Throw instead of returning (x == 3: std::runtime_error("boom"); x == 4: a non-std exception, an
// int). Arithmetic in and out: the batched path. ThrowsForString: the generic path.
int64_t ThrowsOnThree(int64_t x) {
  if (x == 3) throw std::runtime_error("boom");
  if (x == 4) throw 42;
  return getpid();
}
int64_t ThrowsForString(std::string s) {
  if (s == "throw") throw std::invalid_argument("boom from a string");
  return getpid();
}
absl::Status ThrowingInitializer(int64_t) { throw std::runtime_error("boom in init"); }

class PoolTest : public ::testing::TestWithParam<std::string> {
 protected:
  mp::Pool MakePool(mp::PoolOptions options) {
    std::shared_ptr<mp::StartMethod> method = mp::testing::MethodNamed(GetParam());
    absl::StatusOr<mp::Pool> pool = mp::Pool::Create(method, std::move(options));
    EXPECT_TRUE(pool.ok()) << pool.status();
    return *std::move(pool);
  }
};

// An exception escaping a task fails that task (kUnknown, naming the exception's type and what())
// and leaves the worker running the next task.
TEST_P(PoolTest, ThrowingTaskFailsWithItsExceptionAndTheWorkerLives) {
  mp::Pool pool = MakePool({.processes = 1});
  const std::vector<int> pids = pool.WorkerPids();
  ASSERT_EQ(pids.size(), 1u);
  absl::StatusOr<int64_t> thrown =
      pool.ApplyAsync<&ThrowsOnThree>(int64_t{3}).Get(absl::Seconds(60));
  EXPECT_EQ(thrown.status().code(), StatusCode::kUnknown) << thrown.status();
  EXPECT_NE(thrown.status().message().find("boom"), absl::string_view::npos) << thrown.status();
  EXPECT_NE(thrown.status().message().find("std::runtime_error"), absl::string_view::npos)
      << thrown.status();
  absl::StatusOr<int64_t> after =
      pool.ApplyAsync<&ThrowsOnThree>(int64_t{0}).Get(absl::Seconds(60));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, pids[0]);
  absl::StatusOr<int64_t> other =
      pool.ApplyAsync<&ThrowsOnThree>(int64_t{4}).Get(absl::Seconds(60));
  EXPECT_EQ(other.status().code(), StatusCode::kUnknown) << other.status();
  EXPECT_NE(other.status().message().find("threw int"), absl::string_view::npos) << other.status();

  // In a batched chunk: the items around the throwing one keep their results.
  const std::vector<int64_t> xs = {0, 1, 3, 5, 4, 6};
  absl::StatusOr<std::vector<int64_t>> map =
      pool.MapAsync<&ThrowsOnThree>(xs, 6).Get(absl::Seconds(60));
  EXPECT_EQ(map.status().code(), StatusCode::kUnknown) << map.status();
  EXPECT_NE(map.status().message().find("boom"), absl::string_view::npos) << map.status();
  mp::ImapIterator<int64_t> it = pool.Imap<&ThrowsOnThree>(xs, 6);
  for (int64_t x : xs) {
    absl::StatusOr<int64_t> v = it.Next(absl::Seconds(60));
    if (x == 3 || x == 4) {
      EXPECT_EQ(v.status().code(), StatusCode::kUnknown) << x << ": " << v.status();
    } else {
      ASSERT_TRUE(v.ok()) << x << ": " << v.status();
      EXPECT_EQ(*v, pids[0]);
    }
  }
  // The generic (encoded) path.
  const std::vector<std::string> words = {"a", "throw", "b"};
  mp::ImapIterator<int64_t> wit = pool.Imap<&ThrowsForString>(words, 3);
  for (const std::string& w : words) {
    absl::StatusOr<int64_t> v = wit.Next(absl::Seconds(60));
    if (w == "throw") {
      EXPECT_EQ(v.status().code(), StatusCode::kUnknown) << v.status();
      EXPECT_NE(v.status().message().find("std::invalid_argument"), absl::string_view::npos)
          << v.status();
      EXPECT_NE(v.status().message().find("boom from a string"), absl::string_view::npos)
          << v.status();
    } else {
      ASSERT_TRUE(v.ok()) << w << ": " << v.status();
      EXPECT_EQ(*v, pids[0]);
    }
  }
  EXPECT_EQ(pool.WorkerPids(), pids);
  pool.Close();
  EXPECT_TRUE(pool.Join(absl::Seconds(60)).ok());
}

// An exception escaping the initializer fails the pool like an initializer's error status.
TEST_P(PoolTest, ThrowingInitializerFailsTheTasks) {
  absl::StatusOr<mp::PoolInitializer> init =
      mp::MakePoolInitializer<&ThrowingInitializer>(int64_t{0});
  ASSERT_TRUE(init.ok());
  mp::Pool pool = MakePool({.processes = 1, .initializer = *init});
  absl::StatusOr<int64_t> r = pool.ApplyAsync<&Square>(int64_t{1}).Get(absl::Seconds(60));
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find("boom in init"), absl::string_view::npos) << r.status();
  pool.Close();
  EXPECT_TRUE(pool.Join(absl::Seconds(60)).ok());
}

INSTANTIATE_TEST_SUITE_P(Methods, PoolTest, ::testing::Values("fork", "spawn", "forkserver"));

}  // namespace pool_exceptions_test
