// Copyright 2026 The mp Authors.
//
// base/pid.h — this process's id without a system call: getpid(2) is a real system call on every
// call (glibc caches nothing), which a path that runs per message (a manager proxy checking that
// it is still in the process that took its reference) should not pay.
//
// The value is cached on first use and refreshed in a fork child by a pthread_atfork handler, so it
// is right in every process started by fork(3) (mp's fork start method, fork servers, tests). A
// child made by a raw clone(2) without fork's handlers, which mp never does, would see its
// parent's id.

#ifndef MP_BASE_PID_H_
#define MP_BASE_PID_H_

#include <sys/types.h>

namespace mp {

// getpid(), cached.
pid_t CurrentPid();

}  // namespace mp

#endif  // MP_BASE_PID_H_
