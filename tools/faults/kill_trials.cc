// Copyright 2026 The mp Authors.
//
// tools/faults/kill_trials — the long run of the kill trials (tests/faults/kill_trial.h).
//
//   bazel run //tools/faults:kill_trials -- --trials 1000 --seed 1
//
// Trial i runs scenario i mod kScenarioCount (Put, Get, SendBytes, RecvBytes, LockHolding,
// LockWaiting, BarrierWait, ConditionWait, SpawnPut, SharedMemory, ShmSendBytes, ShmRecvBytes,
// ManagerClient, ManagerServer, PutMany: tests/faults/kill_trial.h) with seed (--seed + i), so a
// failure is reproduced exactly by rerunning with the seed it names. Prints a progress line every
// --progress trials (default 100), a line per failed trial, and finally "N passed, M failed"; exits
// 1 if any trial failed or a flag is bad (absl::flags), 2 on a stray argument.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "start_methods/process.h"
#include "tests/faults/kill_trial.h"

ABSL_FLAG(uint64_t, trials, 1000, "number of kill trials to run");
ABSL_FLAG(uint64_t, seed, 1, "seed of trial 0; trial i uses seed + i");
ABSL_FLAG(uint64_t, progress, 100, "print a progress line every this many trials (0: never)");

int main(int argc, char** argv) {
  mp::Init(argc, argv);  // SpawnPut's victims are spawn / forkserver children of this program
  absl::SetProgramUsageMessage("kill_trials [--trials N] [--seed S] [--progress P]");
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "kill_trials: unexpected argument '%s' (flags only; see --help)\n",
                 rest[1]);
    return 2;
  }
  const uint64_t trials = absl::GetFlag(FLAGS_trials);
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  const uint64_t progress = absl::GetFlag(FLAGS_progress);
  uint64_t passed = 0, failed = 0;
  // Where the kills landed, per scenario and phase.
  uint64_t where[mp::faults::kScenarioCount][5] = {};
  for (uint64_t i = 0; i < trials; ++i) {
    const mp::faults::Scenario scenario = mp::faults::ScenarioForTrial(i);
    mp::faults::TrialReport report;
    const absl::Status s = mp::faults::RunKillTrial(scenario, seed + i, &report);
    ++where[static_cast<int>(scenario)][static_cast<int>(report.phase)];
    if (s.ok()) {
      ++passed;
    } else {
      ++failed;
      std::printf("FAILED trial %llu: %s\n", static_cast<unsigned long long>(i),
                  s.ToString().c_str());
    }
    if (progress > 0 && (i + 1) % progress == 0 && i + 1 < trials) {
      std::printf("%llu/%llu trials: %llu passed, %llu failed\n",
                  static_cast<unsigned long long>(i + 1), static_cast<unsigned long long>(trials),
                  static_cast<unsigned long long>(passed), static_cast<unsigned long long>(failed));
    }
    std::fflush(stdout);
  }
  std::printf("where the kills landed:\n");
  for (int sc = 0; sc < mp::faults::kScenarioCount; ++sc) {
    std::string line =
        "  " + std::string(mp::faults::ScenarioName(static_cast<mp::faults::Scenario>(sc))) + ":";
    for (int ph = 0; ph < 5; ++ph) {
      if (where[sc][ph] == 0) continue;
      line += " " + std::to_string(where[sc][ph]) + " " +
              std::string(mp::faults::KillPhaseName(static_cast<mp::faults::KillPhase>(ph))) + ";";
    }
    std::printf("%s\n", line.c_str());
  }
  std::printf("%llu passed, %llu failed\n", static_cast<unsigned long long>(passed),
              static_cast<unsigned long long>(failed));
  return failed == 0 ? 0 : 1;
}
