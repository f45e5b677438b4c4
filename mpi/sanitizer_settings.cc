// Copyright 2026 The mp Authors.
//
// Sanitizer settings for programs that run Open MPI (mpi's tests and test programs).
//
// LeakSanitizer is off: Open MPI's own allocations at exit are reported from plugins it has
// unloaded, which no suppression can match. (ThreadSanitizer's suppressions for Open MPI are with
// every test's, in //testing:tsan_suppressions.)

extern "C" int __lsan_is_turned_off() { return 1; }
