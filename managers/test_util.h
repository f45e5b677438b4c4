// Copyright 2026 The mp Authors.
//
// managers/test_util.h — the fixture the managers tests share: a Manager started with the typed
// test's start method (and a registrar), and children started with it that are killed and reaped
// even when a test fails.

#ifndef MP_MANAGERS_TEST_UTIL_H_
#define MP_MANAGERS_TEST_UTIL_H_

#include <cstdlib>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "managers/manager.h"
#include "start_methods/process.h"
#include "start_methods/target.h"
#include "start_methods/test_util.h"

namespace mp::testing {

// M: a start method type of start_methods/test_methods.h; R: the manager's registrar.
template <typename M, Registrar R = nullptr>
class ManagerTestBase : public ::testing::Test {
 protected:
  // A manager; the test aborts if it cannot start (nothing else could run).
  Manager Start(ManagerOptions options = {}) {
    absl::StatusOr<Manager> m = Manager::Start<R>(M::Get(), std::move(options));
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok()) std::abort();
    return *std::move(m);
  }
  // A started child running `target`.
  Process Run(Target target) {
    absl::StatusOr<Process> p = Process::Create(M::Get(), std::move(target));
    EXPECT_TRUE(p.ok()) << p.status();
    Process process = guard_.Add(*std::move(p));
    EXPECT_TRUE(process.Start().ok());
    return process;
  }
  static void ExpectExit(Process& p, int code) {
    ASSERT_TRUE(p.Join(absl::Seconds(60)).ok());
    EXPECT_EQ(p.ExitCode(), code);
  }

  ChildGuard guard_;
};

}  // namespace mp::testing

#endif  // MP_MANAGERS_TEST_UTIL_H_
