// Copyright 2026 The mp Authors.
//
// tools/faults/kill_trials — the long run of the kill trials (tests/faults/kill_trial.h).
//
//   bazel run //tools/faults:kill_trials -- --trials 1000 --seed 1
//
// Trial i runs scenario i mod 10 (Put, Get, SendBytes, RecvBytes, LockHolding, LockWaiting,
// BarrierWait, ConditionWait, SpawnPut, SharedMemory) with seed (--seed + i), so a failure is reproduced exactly by rerunning
// with the seed it names. Prints a progress line every --progress trials (default 100), a line per
// failed trial, and finally "N passed, M failed"; exits 1 if any trial failed, 2 on bad flags.

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "start_methods/process.h"
#include "tests/faults/kill_trial.h"

namespace {

bool ParseFlag(int argc, char** argv, int& i, const char* name, uint64_t& out) {
  const size_t len = std::strlen(name);
  const char* value = nullptr;
  if (std::strcmp(argv[i], name) == 0 && i + 1 < argc) {
    value = argv[++i];
  } else if (std::strncmp(argv[i], name, len) == 0 && argv[i][len] == '=') {
    value = argv[i] + len + 1;
  } else {
    return false;
  }
  if (!absl::SimpleAtoi(value, &out)) {
    std::fprintf(stderr, "kill_trials: %s wants a non-negative integer, got '%s'\n", name, value);
    std::exit(2);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  mp::Init(argc, argv);  // SpawnPut's victims are spawn / forkserver children of this program
  uint64_t trials = 1000, seed = 1, progress = 100;
  for (int i = 1; i < argc; ++i) {
    if (ParseFlag(argc, argv, i, "--trials", trials) || ParseFlag(argc, argv, i, "--seed", seed) ||
        ParseFlag(argc, argv, i, "--progress", progress)) {
      continue;
    }
    std::fprintf(stderr,
                 "kill_trials: unknown argument '%s'\n"
                 "usage: kill_trials [--trials N (1000)] [--seed S (1)] [--progress P (100)]\n",
                 argv[i]);
    return 2;
  }
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
    std::string line = "  " + std::string(mp::faults::ScenarioName(static_cast<mp::faults::Scenario>(sc))) + ":";
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
