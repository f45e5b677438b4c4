// Copyright 2026 The mp Authors.
//
// testing/sanitizers.h — which sanitizer this translation unit is built with, under either
// compiler: GCC says so with __SANITIZE_ADDRESS__ / __SANITIZE_THREAD__, clang with
// __has_feature(address_sanitizer) / __has_feature(thread_sanitizer).
//
//   MP_TESTING_ASAN  1 under -fsanitize=address
//   MP_TESTING_TSAN  1 under -fsanitize=thread
// (each undefined otherwise).

#ifndef MP_TESTING_SANITIZERS_H_
#define MP_TESTING_SANITIZERS_H_

#if defined(__SANITIZE_ADDRESS__)
#define MP_TESTING_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MP_TESTING_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define MP_TESTING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MP_TESTING_TSAN 1
#endif
#endif

#endif  // MP_TESTING_SANITIZERS_H_
