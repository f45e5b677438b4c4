// Copyright 2026 The mp Authors.
//
// Google Benchmark main for benchmarks that start spawn or forkserver children (or a Pool):
// mp::Init runs first, so a child (this binary re-executed) runs its target and exits before the
// benchmarks start.

#include "benchmark/benchmark.h"
#include "start_methods/process.h"

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
