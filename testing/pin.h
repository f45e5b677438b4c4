// Copyright 2026 The mp Authors.
//
// testing/pin.h — mp::testing::PinSelf, CPU placement for the multi-process benchmarks.
//
// On a machine with few cores the scheduler decides whether two processes that talk to each other
// share a core or not, and that decides a ping-pong's or a ring's figure more than the code does
// (on the 2-core VM of the README: 7-13 us vs 30-45 us per pipe round trip, 6 vs 30 M queue items
// per second). The benchmarks therefore place their processes themselves: the benchmark process on
// the first allowed CPU, its k-th child on CPU k (mod the number allowed), so the two processes of
// a two-process workload always run on two different cores. tools/bench/cpython_bench.py places
// CPython's processes the same way. Set MP_BENCH_NO_PIN=1 to leave placement to the scheduler.
//
//   const bool kPinned = mp::testing::PinSelf(0);   // at namespace scope: the benchmark process
//   ... fork() ... child: mp::testing::PinSelf(1);
//
// The allowed set is read once, on the first call (before any pinning), and inherited by children.

#ifndef MP_TESTING_PIN_H_
#define MP_TESTING_PIN_H_

#include <sched.h>

#include <cstdlib>
#include <vector>

namespace mp::testing {

// The CPUs this process was allowed to run on before any PinSelf.
inline const std::vector<int>& BenchCpus() {
  static const std::vector<int> cpus = [] {
    std::vector<int> out;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
      for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &set)) out.push_back(c);
      }
    }
    return out;
  }();
  return cpus;
}

// Pins the calling process to BenchCpus()[k % count]. False (nothing changed) with fewer than two
// CPUs, MP_BENCH_NO_PIN set, or an error.
inline bool PinSelf(int k) {
  const std::vector<int>& cpus = BenchCpus();
  if (cpus.size() < 2 || std::getenv("MP_BENCH_NO_PIN") != nullptr) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus[static_cast<size_t>(k) % cpus.size()], &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

// Lets the calling process run on every CPU of BenchCpus() again (for a workload with more
// processes than cores, placed by the scheduler as in a user's program). False on an error.
inline bool UnpinSelf() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : BenchCpus()) CPU_SET(c, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

}  // namespace mp::testing

#endif  // MP_TESTING_PIN_H_
