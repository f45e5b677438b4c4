// Copyright 2026 The mp Authors.
//
// GoogleTest main for tests that start mpi children (mpi/BUILD says why LeakSanitizer is off).

#include "gtest/gtest.h"
#include "start_methods/process.h"

extern "C" int __lsan_is_turned_off() { return 1; }

// ThreadSanitizer: Open MPI is not built with it, so the locks and atomics it synchronizes its own
// threads with (its progress thread, mp's spawn and monitor threads inside MPI calls) are
// invisible and its internal copies show as races. Reports with a frame in Open MPI's libraries
// are dropped; races in mp's own code still fail the test.
extern "C" const char* __tsan_default_suppressions() {
  return "race:libmpi.so\n"
         "race:libopen-pal.so\n"
         "race:libopen-rte.so\n"
         "race:libpmix.so\n"
         "race:mca_\n";
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
