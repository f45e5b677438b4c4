// Copyright 2026 The mp Authors.
//
// ThreadSanitizer's built-in suppressions for mp's test binaries (--config=tsan), linked into every
// test through @mp_system//:gtest and :gtest_main.
//
// Abseil comes from Debian's packages (libabsl-dev), built without -fsanitize=thread. absl::Status
// shares one heap StatusRep between its copies and frees it when an atomic reference count inside
// libabsl_status.so reaches zero. TSan cannot see those atomics, so a thread that drops the last
// reference (a pool thread destroying a finished Future's core) and another that read its own copy
// of the same status earlier (a test comparing it) look unordered. Only accesses made from inside
// that library are ignored: mp's own code stays fully checked.
//
// Open MPI (the mpi context's tests) is not built with TSan either: the locks and atomics it
// synchronizes its threads with (its progress thread; mp's spawn, monitor and pump threads inside
// MPI calls) are invisible, so its internal copies, and a receive buffer it fills in one thread for
// a request another thread completes, show as races. Reports with a frame in one of its libraries
// are dropped; races whose frames are all mp's still fail.

#include "testing/sanitizers.h"

#if defined(MP_TESTING_TSAN)
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:libabsl_status.so\n"
         "race:libmpi.so\n"
         "race:libopen-pal.so\n"
         "race:libopen-rte.so\n"
         "race:libpmix.so\n"
         "race:mca_\n";
}
#endif
