// Copyright 2026 The mp Authors.
//
// GoogleTest main for tests that start mpi children (sanitizer_settings.cc: what the sanitizers
// are told about Open MPI).

#include "gtest/gtest.h"
#include "start_methods/process.h"

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
