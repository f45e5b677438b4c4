// Copyright 2026 The mp Authors.
//
// A deterministic slice of the kill trials: each scenario with seeds 1..8. The long run
// is //tools/faults:kill_trials.

#include "tests/faults/kill_trial.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace mp::faults {
namespace {

class KillTrialTest : public ::testing::TestWithParam<Scenario> {};

TEST_P(KillTrialTest, EightSeeds) {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    const absl::Status s = RunKillTrial(GetParam(), seed);
    EXPECT_TRUE(s.ok()) << s;
  }
}

INSTANTIATE_TEST_SUITE_P(AllScenarios, KillTrialTest,
                         ::testing::Values(Scenario::kPut, Scenario::kGet, Scenario::kSendBytes,
                                           Scenario::kRecvBytes, Scenario::kLockHolding,
                                           Scenario::kLockWaiting, Scenario::kBarrierWait,
                                           Scenario::kConditionWait, Scenario::kSpawnPut,
                                           Scenario::kSharedMemory, Scenario::kShmSendBytes,
                                           Scenario::kShmRecvBytes, Scenario::kManagerClient,
                                           Scenario::kManagerServer, Scenario::kPutMany),
                         [](const ::testing::TestParamInfo<Scenario>& info) {
                           return std::string(ScenarioName(info.param));
                         });

TEST(KillTrialTest, ScenarioNamesAndRoundRobin) {
  EXPECT_EQ(ScenarioName(ScenarioForTrial(0)), "Put");
  EXPECT_EQ(ScenarioName(ScenarioForTrial(7)), "ConditionWait");
  EXPECT_EQ(ScenarioName(ScenarioForTrial(8)), "SpawnPut");
  EXPECT_EQ(ScenarioName(ScenarioForTrial(9)), "SharedMemory");
  EXPECT_EQ(ScenarioName(ScenarioForTrial(10)), "ShmSendBytes");
  EXPECT_EQ(ScenarioName(ScenarioForTrial(11)), "ShmRecvBytes");
  EXPECT_EQ(ScenarioName(ScenarioForTrial(12)), "ManagerClient");
  EXPECT_EQ(ScenarioName(ScenarioForTrial(13)), "ManagerServer");
  EXPECT_EQ(ScenarioName(ScenarioForTrial(14)), "PutMany");
  EXPECT_EQ(ScenarioForTrial(15), ScenarioForTrial(0));
}

}  // namespace
}  // namespace mp::faults
