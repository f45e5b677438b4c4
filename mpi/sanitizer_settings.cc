// Copyright 2026 The mp Authors.
//
// Sanitizer settings for programs that run Open MPI (mpi's tests and test programs).
//
// LeakSanitizer is off: Open MPI's own allocations at exit are reported from plugins it has
// unloaded, which no suppression can match. ThreadSanitizer: Open MPI is not built with it, so the
// locks and atomics it synchronizes its own threads with (its progress thread, mp's spawn, monitor
// and pump threads inside MPI calls) are invisible and its internal copies show as races. Reports
// with a frame in Open MPI's libraries are dropped; races in mp's own code still fail the test.

extern "C" int __lsan_is_turned_off() { return 1; }

extern "C" const char* __tsan_default_suppressions() {
  return "race:libmpi.so\n"
         "race:libopen-pal.so\n"
         "race:libopen-rte.so\n"
         "race:libpmix.so\n"
         "race:mca_\n";
}
