// Copyright 2026 The mp Authors.
//
// tests/faults/fault_util.h — what the fault tests share: a seeded RNG (never the clock) and
// snapshots of the process's resources, to prove that nothing is left after a test or a trial.
//
//   const mp::faults::FdSnapshot before = mp::faults::FdSnapshot::Take();
//   ... run the test ...
//   EXPECT_EQ(mp::faults::FdSnapshot::Take(), before);   // same descriptors, same targets
//   EXPECT_EQ(mp::faults::SegmentMappings(), 0);          // no "memfd:mp-shm" mapping left
//
// Thread safety: Rng is a plain value; the snapshot functions read /proc and are thread-safe.

#ifndef MP_TESTS_FAULTS_FAULT_UTIL_H_
#define MP_TESTS_FAULTS_FAULT_UTIL_H_

#include <cstdint>
#include <set>
#include <string>

namespace mp::faults {

// SplitMix64: a good 64-bit mix, the RNG's step.
uint64_t SplitMix(uint64_t x);

// Deterministic pseudo-random numbers from a seed.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(SplitMix(seed ^ 0x6d702d6661756c74ull)) {}
  uint64_t Next() { return state_ = SplitMix(state_); }
  // Uniform in [lo, hi] (lo <= hi).
  uint64_t Range(uint64_t lo, uint64_t hi) {
    return hi - lo == UINT64_MAX ? Next() : lo + Next() % (hi - lo + 1);
  }

 private:
  uint64_t state_;
};

// The descriptors open in this process, each as "fd -> readlink target" (so a descriptor closed and
// reopened as something else counts as a change). Equal snapshots: nothing leaked, nothing lost.
struct FdSnapshot {
  std::set<std::string> fds;
  static FdSnapshot Take();
  bool operator==(const FdSnapshot& o) const { return fds == o.fds; }
  // "left: [...], lost: [...]" relative to `before`.
  std::string DiffFrom(const FdSnapshot& before) const;
};

// Mappings of mp segments (memfd "mp-shm") in /proc/self/maps.
int SegmentMappings();

// Descriptors of this process that are mp segments (readlink "/memfd:mp-shm (deleted)").
int SegmentFds();

// Entries of /dev/shm whose name starts with "mp". The mp library names nothing (segments are
// memfds), so none should appear; other programs of the tree (channels_benchmark's Boost queue,
// "mp_channels_benchmark_<pid>") may run concurrently on a shared machine: a name ending in
// "_<pid>" of another live process is theirs and not listed.
std::set<std::string> DevShmEntriesOfMp();

// True if this process has no child at all (waitpid(-1, WNOHANG) fails with ECHILD).
bool NoChildren();

}  // namespace mp::faults

#endif  // MP_TESTS_FAULTS_FAULT_UTIL_H_
