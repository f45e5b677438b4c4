// Copyright 2026 The mp Authors.
//
// pool/pool_test_cases.h — Pool's contract as a value-parameterized suite over start method names
// (pool_test_cases.cc), instantiated by pool_test (fork, spawn, forkserver) and mpi/pool_test.

#ifndef MP_POOL_POOL_TEST_CASES_H_
#define MP_POOL_POOL_TEST_CASES_H_

#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "pool/pool.h"
#include "start_methods/test_methods.h"

namespace pool_test {

class PoolTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<mp::StartMethod> method() const { return mp::testing::MethodNamed(GetParam()); }
  mp::Pool MakePool(mp::PoolOptions options = {.processes = 2}) {
    absl::StatusOr<mp::Pool> pool = mp::Pool::Create(method(), std::move(options));
    EXPECT_TRUE(pool.ok()) << pool.status();
    return *std::move(pool);
  }
};

}  // namespace pool_test

#endif  // MP_POOL_POOL_TEST_CASES_H_
