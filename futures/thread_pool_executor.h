// Copyright 2026 The mp Authors.
//
// futures/thread_pool_executor.h — mp::ThreadPoolExecutor: CPython's
// concurrent.futures.ThreadPoolExecutor, tasks run by a pool of threads of this process. Any
// callable is a task (it runs here, nothing is encoded); its result comes back as an mp::Future.
//
//   absl::StatusOr<mp::ThreadPoolExecutor> executor =
//       mp::ThreadPoolExecutor::Create({.max_workers = 4});
//   mp::Future<int64_t> f = executor->Submit([](int64_t x) { return x * x; }, int64_t{7});
//   absl::StatusOr<int64_t> v = f.Result(absl::Seconds(5));                      // 49
//   mp::MapIterator<int64_t> squares = executor->Map(Square, std::vector<int64_t>{1, 2, 3});
//   absl::StatusOr<int64_t> one = squares.Next();                                  // 1
//   // ~ThreadPoolExecutor waits for the tasks, as CPython's `with` block does.
//
// CPython -> mp:
//   ThreadPoolExecutor(max_workers, thread_name_prefix, initializer, initargs)
//                        ThreadPoolExecutor::Create({.max_workers, .initializer,
//                        .thread_name_prefix}) (initargs: bind them into the initializer)
//   submit(fn, *args)    Submit(fn, args...)                     -> Future<R>
//   map(fn, items, timeout, chunksize, buffersize)
//                        Map(fn, items, {.timeout, .chunksize, .buffersize}) -> MapIterator<R>
//   shutdown(wait, cancel_futures)  Shutdown({.wait, .cancel_futures, .timeout})
//   with ThreadPoolExecutor() as e  the destructor: Shutdown({.wait = true})
// R is fn's result type: T for T or absl::StatusOr<T>, mp::Unit for void or absl::Status
// (futures/future.h).
//
// Failures (the exception CPython would raise -> status):
//   a task that returns an error status    that status, from its Future
//   a task that throws                     kUnknown "ThreadPoolExecutor task 3 threw
//                                          std::runtime_error: boom" from its Future
//   Submit / Map after Shutdown            a Future already failed with kFailedPrecondition
//   (RuntimeError)                         "ThreadPoolExecutor: cannot schedule new futures after
//                                          shutdown" (CPython raises at submit; here Submit always
//                                          returns a Future, and Result tells)
//   an initializer that fails or throws    BrokenThreadPool: every task not started and every later
//                                          Submit fails with kFailedPrecondition
//                                          "ThreadPoolExecutor: a thread initializer failed, the
//                                          thread pool is not usable anymore: <the initializer's
//                                          status>"
//   Create with max_workers < 0 (ValueError)  kInvalidArgument
//
// Threads are started lazily as CPython's: Submit starts a new worker (up to max_workers) only when
// no idle worker is free for the task. A task is taken by one worker, which marks its future
// running (Cancel fails from then on), runs it, and finishes the future; done callbacks run in that
// worker. Cancelled tasks are skipped.
//
// Thread safety: every method may be called from any thread at the same time. Do not call
// Shutdown({.wait = true}) or destroy the executor from one of its own tasks (it would wait for
// itself): Shutdown returns kFailedPrecondition then, and the destructor does not wait. A
// moved-from executor allows only assignment and destruction.

#ifndef MP_FUTURES_THREAD_POOL_EXECUTOR_H_
#define MP_FUTURES_THREAD_POOL_EXECUTOR_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "futures/executor.h"
#include "futures/future.h"

namespace mp {

struct ThreadPoolExecutorOptions {
  // Most worker threads; 0 means CPython's default, min(32, CPUs this process may use + 4).
  int max_workers = 0;
  // Runs once in each worker thread before its first task (CPython's initializer(*initargs)). A
  // failure, or a throw, breaks the executor (see the header comment).
  std::function<absl::Status()> initializer;
  // Worker threads are named "<prefix>_<n>" (n from 0; cut to the 15 bytes Linux keeps);
  // empty: "ThreadPoolExecutor-<k>" with k counting the executors of this process, as CPython's.
  std::string thread_name_prefix;
};

namespace futures_internal {
class ThreadPoolImpl;
// "ThreadPoolExecutor task <n>" for the next task.
std::string NextTaskDescription(ThreadPoolImpl& impl);
// A queued task: a move-only callable (it may own move-only arguments), run once.
class QueuedTask {
 public:
  virtual ~QueuedTask() = default;
  virtual void Run() = 0;
};
template <typename F>
class QueuedTaskOf final : public QueuedTask {
 public:
  explicit QueuedTaskOf(F f) : f_(std::move(f)) {}
  void Run() override { f_(); }

 private:
  F f_;
};

// Queues `run` (which finishes `core`) for a worker; kFailedPrecondition after Shutdown or once
// broken.
absl::Status Enqueue(ThreadPoolImpl& impl, std::shared_ptr<CoreBase> core,
                     std::unique_ptr<QueuedTask> run);

template <typename Fn, typename... Args>
using ThreadTaskResult = FutureResultOf<std::invoke_result_t<Fn&, Args...>>;

// Submits fn(args...) to `impl`.
template <typename Fn, typename... Args>
Future<ThreadTaskResult<Fn, Args...>> SubmitTo(ThreadPoolImpl& impl, Fn fn,
                                               std::tuple<Args...> args) {
  using R = ThreadTaskResult<Fn, Args...>;
  auto core = std::make_shared<Core<R>>(NextTaskDescription(impl));
  auto run = [core, fn = std::move(fn), args = std::move(args)]() mutable {
    if (!core->SetRunningOrNotifyCancel()) return;  // cancelled while queued
    core->SetResult(InvokeTask<R>(fn, args, core->description())).IgnoreError();
  };
  if (absl::Status s =
          Enqueue(impl, core, std::make_unique<QueuedTaskOf<decltype(run)>>(std::move(run)));
      !s.ok()) {
    core->SetFailure(std::move(s)).IgnoreError();
  }
  return Future<R>(std::move(core));
}
}  // namespace futures_internal

class ThreadPoolExecutor {
 public:
  // kInvalidArgument for max_workers < 0. Starts no thread yet.
  static absl::StatusOr<ThreadPoolExecutor> Create(ThreadPoolExecutorOptions options = {});

  ThreadPoolExecutor(ThreadPoolExecutor&&) noexcept;
  ThreadPoolExecutor& operator=(ThreadPoolExecutor&&) noexcept;
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;
  // Shutdown({.wait = true}), as leaving CPython's `with` block.
  ~ThreadPoolExecutor();

  // Runs fn(args...) in a worker thread. fn and args are copied or moved into the task (wrap
  // references with std::ref); the arguments are moved into the call.
  template <typename F, typename... A>
  Future<futures_internal::ThreadTaskResult<std::decay_t<F>, std::decay_t<A>...>> Submit(
      F&& fn, A&&... args) {
    return futures_internal::SubmitTo(*impl_, std::decay_t<F>(std::forward<F>(fn)),
                                      std::tuple<std::decay_t<A>...>(std::forward<A>(args)...));
  }

  // fn(item) for every item, results in item order (see MapIterator). fn is shared by the tasks
  // (called from several threads at once) and each gets a const reference to its item, which the
  // tasks keep alive. chunksize is ignored. Items not yet submitted when the executor is destroyed
  // fail with kFailedPrecondition.
  template <typename F, typename T>
  MapIterator<futures_internal::ThreadTaskResult<const std::decay_t<F>, const T&>> Map(
      F&& fn, std::vector<T> items, const ExecutorMapOptions& options = {}) {
    using Fn = std::decay_t<F>;
    using R = futures_internal::ThreadTaskResult<const Fn, const T&>;
    auto shared_fn = std::make_shared<const Fn>(std::forward<F>(fn));
    auto shared_items = std::make_shared<const std::vector<T>>(std::move(items));
    const size_t count = shared_items->size();
    std::weak_ptr<futures_internal::ThreadPoolImpl> weak = impl_;
    return MapIterator<R>(count, options, [weak, shared_fn, shared_items](size_t i) {
      std::shared_ptr<futures_internal::ThreadPoolImpl> impl = weak.lock();
      if (impl == nullptr) {
        return MakeFailedFuture<R>(
            absl::StrCat("Map item ", i),
            absl::FailedPreconditionError(
                "ThreadPoolExecutor: cannot schedule new futures after the executor was "
                "destroyed"));
      }
      auto call = [shared_fn, shared_items, i]() -> decltype(auto) {
        return (*shared_fn)((*shared_items)[i]);
      };
      return futures_internal::SubmitTo(*impl, std::move(call), std::tuple<>());
    });
  }

  // No more tasks: later Submits fail (see the header comment). With cancel_futures, tasks not
  // started are cancelled. With wait, waits (at most options.timeout) for the tasks and the worker
  // threads; kDeadlineExceeded naming how many threads still run then, kFailedPrecondition when
  // called with wait from one of the executor's own tasks. May be called more than once.
  absl::Status Shutdown(const ExecutorShutdownOptions& options = {});

  // Most worker threads, and how many were started so far.
  int max_workers() const;
  int threads_started() const;
  // Workers waiting for a task (tests wait for a worker to be free again with it).
  int IdleThreadsForTesting() const;

 private:
  explicit ThreadPoolExecutor(std::shared_ptr<futures_internal::ThreadPoolImpl> impl);

  std::shared_ptr<futures_internal::ThreadPoolImpl> impl_;
};

}  // namespace mp

#endif  // MP_FUTURES_THREAD_POOL_EXECUTOR_H_
