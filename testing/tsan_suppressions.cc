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

#if defined(__SANITIZE_THREAD__)
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:libabsl_status.so\n";
}
#endif
