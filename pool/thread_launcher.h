// Copyright 2026 The mp Authors.
//
// pool/thread_launcher.h — workers as threads of this process (internal to mp), for ThreadPool:
// each runs the pool's worker loop (worker_loop.h) over its own socketpair, exactly as a worker
// process does, so the engine cannot tell the difference except in what a kill can do.
//
// A thread cannot be killed: Kill() shuts the worker's socket down, so the thread ends after the
// task it is running (if any) instead of taking another. That is CPython's ThreadPool.terminate()
// too. pid() is the thread's id (gettid), sentinel() an eventfd that becomes readable when the
// thread has ended, and Reap() joins it (exit code 0 after a clean end, 1 after a failure of the
// loop, which is printed).

#ifndef MP_POOL_THREAD_LAUNCHER_H_
#define MP_POOL_THREAD_LAUNCHER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "pool/worker_transport.h"

namespace mp {
namespace pool_internal {

class ThreadLauncher : public WorkerLauncher {
 public:
  // Errors of Pipe, eventfd, dup (of the initializer's descriptors) and thread creation.
  absl::StatusOr<std::unique_ptr<LaunchedWorker>> Start(const WorkerSpec& spec) override;
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_THREAD_LAUNCHER_H_
