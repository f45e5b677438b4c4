// Copyright 2026 The mp Authors.
//
// pool/test_util.h — tasks and worker-side helpers shared by the pool tests: a worker's pid, the
// worker's copy of a Lock given to the pool's initializer, and a task's handshake with the test
// over two FIFOs (it reports that it runs, then blocks until the test releases it).

#ifndef MP_POOL_TEST_UTIL_H_
#define MP_POOL_TEST_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sync/lock.h"

namespace mp::pool_testing {

// A task: the pid of the worker that runs it.
int64_t Pid(int64_t);

// An initializer: keeps the worker's copy of `lock` for LockWasFree.
absl::Status KeepLock(Lock lock);
// A task: whether this worker could take the Lock kept by KeepLock without waiting (it gives it
// back at once); false also when the Lock cannot be acquired or released.
bool LockWasFree(int64_t);
// A task: whether this worker can take the Lock kept by KeepLock within 60 s (it gives it back at
// once). Where workers run it side by side, one may briefly hold the Lock another tries: waiting
// for it, unlike LockWasFree, does not mistake that for someone else holding it.
bool LockCanBeTaken(int64_t);

// In a task: writes `line` into the FIFO `ready`, then blocks until the test writes into (or
// closes) the FIFO `release`. False if a FIFO cannot be opened or `line` not written.
bool ReportAndAwaitRelease(const std::string& ready, absl::string_view line,
                           const std::string& release);

}  // namespace mp::pool_testing

#endif  // MP_POOL_TEST_UTIL_H_
