// Copyright 2026 The mp Authors.
//
// GoogleTest main for tests that start spawn or forkserver children: mp::Init runs first, so a
// child (this test binary re-executed) runs its target and exits before GoogleTest starts.

#include "gtest/gtest.h"
#include "start_methods/process.h"

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
