// Copyright 2026 The mp Authors.
//
// pool/thread_pool.h — mp::ThreadPool: CPython's multiprocessing.pool.ThreadPool, a Pool whose
// workers are threads of this process. Everything else is Pool's (pool.h): the same calls, results,
// errors and options, so switching is one line:
//
//   absl::StatusOr<mp::Pool> pool = ctx->Pool({.processes = 4});          // processes
//   absl::StatusOr<mp::ThreadPool> pool = mp::ThreadPool::Create({.processes = 4});  // threads
//   absl::StatusOr<std::vector<int64_t>> squares = pool->Map<&Square>(xs);
//
// Tasks are registered functions with Codecs, as for Pool: the same engine runs them, and each
// worker thread runs the worker loop a worker process runs, over its own socketpair. So tasks pay
// for encoding their arguments and results; a ThreadPoolExecutor (futures/) runs any callable
// in-process without that.
//
// What threads cannot do:
//  * task_timeout: a thread cannot be killed, so a ThreadPool refuses a task_timeout
//    (kInvalidArgument), as it has no way to stop a task over its limit.
//  * Terminate(): the workers stop taking tasks (CPython's ThreadPool.terminate() too); a task
//    already running finishes, and Join waits for it. Unstarted tasks fail with kCancelled.
//  * initializer arguments holding fork-domain objects: refused (kInvalidArgument); create them
//    in the transferable domain (a spawn or forkserver context), or use them through globals.
// WorkerPids() gives the worker threads' ids (gettid). A task that crashes the process (abort,
// SIGSEGV) takes the whole program with it, as with any thread.

#ifndef MP_POOL_THREAD_POOL_H_
#define MP_POOL_THREAD_POOL_H_

#include "absl/status/statusor.h"
#include "pool/pool.h"

namespace mp {

class ThreadPool : public Pool {
 public:
  // kInvalidArgument for negative processes / maxtasksperchild, a task_timeout, an unregistered
  // initializer or one whose arguments hold fork-domain objects; errors of starting the threads.
  static absl::StatusOr<ThreadPool> Create(PoolOptions options = {});

 private:
  explicit ThreadPool(Pool pool) : Pool(std::move(pool)) {}
};

}  // namespace mp

#endif  // MP_POOL_THREAD_POOL_H_
