// Copyright 2026 The mp Authors.
//
// Pool's contract (pool_test_cases.cc) under fork, spawn and forkserver, and Pool::Create's checks.

#include "pool/pool.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "pool/pool_test_cases.h"
#include "start_methods/fork.h"
#include "start_methods/process.h"

namespace pool_test {

using ::absl::StatusCode;

INSTANTIATE_TEST_SUITE_P(Methods, PoolTest, ::testing::Values("fork", "spawn", "forkserver"));

TEST(PoolCreateTest, BadOptions) {
  EXPECT_EQ(mp::Pool::Create(nullptr).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::Pool::Create(mp::ForkStartMethod(), {.processes = -1}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::Pool::Create(mp::ForkStartMethod(), {.maxtasksperchild = -2}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      mp::Pool::Create(mp::ForkStartMethod(), {.initializer = {"no::Such", ""}}).status().code(),
      StatusCode::kInvalidArgument);
  absl::StatusOr<mp::Pool> pool = mp::Pool::Create(mp::ForkStartMethod());
  ASSERT_TRUE(pool.ok());
  EXPECT_EQ(pool->processes(), mp::CpuCount());
}

}  // namespace pool_test
