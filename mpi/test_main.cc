// Copyright 2026 The mp Authors.
//
// GoogleTest main for tests that start mpi children (mpi/BUILD says why LeakSanitizer is off).

#include "gtest/gtest.h"
#include "start_methods/process.h"

extern "C" int __lsan_is_turned_off() { return 1; }

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
