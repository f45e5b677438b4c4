// Copyright 2026 The mp Authors.
//
// pool/process_pool_executor.h — mp::ProcessPoolExecutor: CPython's
// concurrent.futures.ProcessPoolExecutor, tasks run by worker processes of any start method, their
// results delivered as mp::Futures (futures/future.h). A thin face over the pool engine
// (pool/engine.h), beside mp::Pool.
//
//   int64_t Square(int64_t x) { return x * x; }            // at namespace scope
//
//   absl::StatusOr<mp::ProcessPoolExecutor> executor = mp::ProcessPoolExecutor::Create(
//       {.max_workers = 4, .method = mp::ForkServerStartMethod()});
//   mp::Future<int64_t> f = executor->Submit<&Square>(int64_t{7});
//   absl::StatusOr<int64_t> v = f.Result(absl::Seconds(5));                      // 49
//   mp::Future<int64_t> limited = executor->Submit<&Square>({.timeout = absl::Seconds(1)}, 3);
//   mp::MapIterator<int64_t> squares =
//       executor->Map<&Square>(std::vector<int64_t>{1, 2, 3}, {.chunksize = 2});
//   // ~ProcessPoolExecutor waits for the tasks, as CPython's `with` block does.
//
// Tasks are registered functions, as for Pool (pool/pool.h): Submit<&Fn> registers Fn in every copy
// of the program, arguments and results travel encoded (every parameter type and the result type
// need an mp::Codec), and arguments cannot carry descriptors or shared objects (pass those to the
// initializer).
//
// CPython -> mp:
//   ProcessPoolExecutor(max_workers, mp_context, initializer, initargs, max_tasks_per_child)
//                        ProcessPoolExecutor::Create({.max_workers, .method,
//                            .initializer = MakePoolInitializer<&Init>(args...),
//                            .max_tasks_per_child})
//   submit(fn, *args)    Submit<&fn>(args...)                  -> Future<R>
//   (pebble's schedule(timeout=))  Submit<&fn>({.timeout}, args...): a time limit for this task
//   map(fn, items, timeout, chunksize, buffersize)
//                        Map<&fn>(items, {.timeout, .chunksize, .buffersize}) -> MapIterator<R>
//   shutdown(wait, cancel_futures)  Shutdown({.wait, .cancel_futures, .timeout})
//   with ProcessPoolExecutor() as e   the destructor: Shutdown({.wait = true})
// R is Fn's result type: T for T or absl::StatusOr<T>, mp::Unit (= PoolUnit) for void or
// absl::Status.
//
// Futures. Running() is true once a worker claimed the task (the engine knows it before the result
// comes); Cancel() succeeds only while no worker claimed it: the engine takes the task back from
// its queue or from a worker that has not started it, so it never runs. Results are decoded, and
// done callbacks run, in the engine's manager thread: keep callbacks short, and note that a Cancel
// called from a done callback returns false for a future of this executor (the manager thread,
// which would answer it, is the one running the callback).
//
// Failures (the exception CPython would raise -> status):
//   a task that returns an error status     that status, from its Future
//   a task that throws                      kUnknown "Pool: ns::Fn threw std::runtime_error: boom"
//   a worker that dies while running a task (SIGKILL, OOM killer, abort, exit)
//                                           kAborted "Pool: worker pid N died (signal 9) while
//                                           running task ... of ProcessPoolExecutor.Submit<ns::Fn>"
//                                           for the futures of the tasks it held, and only those;
//                                           a new worker takes its place (CPython's
//                                           BrokenProcessPool fails every future and the pool)
//   a task over its Submit timeout          kDeadlineExceeded naming the function and the limit;
//                                           its worker is killed and replaced, the others go on
//   Submit / Map after Shutdown (RuntimeError)
//                                           a Future already failed with kFailedPrecondition
//                                           "ProcessPoolExecutor: cannot schedule new futures after
//                                           shutdown"
//   arguments holding descriptors or shared objects
//                                           a Future already failed with kInvalidArgument
//   a failing initializer (BrokenProcessPool)
//                                           every unfinished and later task fails with
//                                           kFailedPrecondition naming the initializer's status
//   Create: no method, max_workers < 0, max_tasks_per_child < 0, unregistered initializer
//                                           kInvalidArgument
//   Map with chunksize < 1 (ValueError)     every Next returns kInvalidArgument
//
// Map sends its items in chunks of `chunksize` (one message per chunk, as CPython's): the futures
// of a chunk finish together, when the whole chunk has run; cancelling one of them (a timeout, the
// iterator destroyed) cancels the whole chunk if none of it started.
//
// Thread safety: every method may be called from any thread. Do not destroy the executor from a
// done callback. A moved-from executor allows only assignment and destruction.

#ifndef MP_POOL_PROCESS_POOL_EXECUTOR_H_
#define MP_POOL_PROCESS_POOL_EXECUTOR_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "futures/executor.h"
#include "futures/future.h"
#include "pool/initializer.h"
#include "pool/job.h"
#include "pool/task.h"
#include "serialize/fd.h"
#include "start_methods/start_method.h"
#include "start_methods/target.h"

namespace mp {

struct ProcessPoolExecutorOptions {
  // Worker processes; 0 means CpuCount() (CPython's os.process_cpu_count()).
  int max_workers = 0;
  // How the workers start (fork, spawn, forkserver). Required.
  std::shared_ptr<StartMethod> method;
  // Runs once in each worker before its first task (MakePoolInitializer<&Init>(initargs...)).
  PoolInitializer initializer;
  // Tasks a worker runs before it is replaced; 0 means no limit. (Map chunks count as one task.)
  int64_t max_tasks_per_child = 0;
};

struct ExecutorSubmitOptions {
  // This task's time limit, counted from when it starts running in a worker; infinite: none.
  // Over it the task fails with kDeadlineExceeded and its worker is killed and replaced. > 0.
  absl::Duration timeout = absl::InfiniteDuration();
};

namespace pool_internal {

class ProcessPoolImpl;

// Finishes future i of a job from its item i. With `cancelling` (a Cancel of one of the job's
// futures is asking the engine), an item that failed with kCancelled cancels its future instead.
using FinishFn = std::function<void(size_t i, bool cancelling)>;

// Submits `job` (its items encoded in `batch`, in chunks of `chunksize`) and ties `cores` (one per
// item) to it: Cancel and Running go to the engine, and when the job is done `finish` decodes
// every item into its core in the engine's manager thread. When it cannot be submitted, every core
// fails with the reason.
void SubmitFutures(ProcessPoolImpl& impl, std::shared_ptr<Job> job, const std::string& function,
                   Batch batch, size_t chunksize, absl::Duration timeout,
                   std::vector<std::shared_ptr<futures_internal::CoreBase>> cores, FinishFn finish);
// "ProcessPoolExecutor task <n>" for the next task.
std::string NextExecutorTask(ProcessPoolImpl& impl);

// Whether a Submit's first argument is its options (then the options overload applies).
template <typename... A>
inline constexpr bool kFirstIsSubmitOptions = false;
template <typename First, typename... Rest>
inline constexpr bool kFirstIsSubmitOptions<First, Rest...> =
    std::is_same_v<std::remove_cvref_t<First>, ExecutorSubmitOptions>;

// Encodes Fn's arguments for items [first, last) of `items` into `batch`.
template <auto Fn, typename T>
absl::Status EncodeItems(Batch& batch, const std::vector<T>& items, size_t first, size_t last) {
  using Args = ArgsOf<Fn>;
  using P = std::tuple_element_t<0, Args>;
  FdTable table;
  {
    ScopedFdTable scope(&table);
    for (size_t i = first; i < last; ++i) {
      if constexpr (std::is_same_v<P, T>) {
        AppendItem(batch, items[i]);  // the same bytes as std::tuple<P>
      } else {
        AppendItem(batch, Args(static_cast<P>(items[i])));
      }
    }
  }
  return CheckBatch(table, batch);
}

// Finishes cores[i] with ItemResult<R>(job, i).
template <typename R>
FinishFn Finisher(std::shared_ptr<Job> job,
                  std::vector<std::shared_ptr<futures_internal::Core<R>>> cores) {
  return [job = std::move(job), cores = std::move(cores)](size_t i, bool cancelling) {
    absl::StatusOr<R> r = ItemResult<R>(*job, i);
    if (cancelling && absl::IsCancelled(r.status())) {
      cores[i]->Cancel();  // its cancel hook answers true: the engine took the job back
    } else {
      cores[i]->SetResult(std::move(r)).IgnoreError();  // a cancelled future stays cancelled
    }
  };
}

}  // namespace pool_internal

class ProcessPoolExecutor {
 public:
  // Starts the workers. kInvalidArgument for a null method, max_workers < 0, max_tasks_per_child
  // < 0 or an unregistered initializer; the errors of starting the workers otherwise.
  static absl::StatusOr<ProcessPoolExecutor> Create(ProcessPoolExecutorOptions options);

  ProcessPoolExecutor(ProcessPoolExecutor&&) noexcept;
  ProcessPoolExecutor& operator=(ProcessPoolExecutor&&) noexcept;
  ProcessPoolExecutor(const ProcessPoolExecutor&) = delete;
  ProcessPoolExecutor& operator=(const ProcessPoolExecutor&) = delete;
  // Shutdown({.wait = true}), as leaving CPython's `with` block.
  ~ProcessPoolExecutor();

  // Runs Fn(args...) in a worker. Arguments convert to Fn's parameter types.
  template <auto Fn, typename... A>
  requires(!pool_internal::kFirstIsSubmitOptions<A...>) Future<pool_internal::ResultOf<Fn>> Submit(
      A&&... args) {
    return Submit<Fn>(ExecutorSubmitOptions{}, std::forward<A>(args)...);
  }
  // The same with this task's options (its time limit).
  template <auto Fn, typename... A>
  Future<pool_internal::ResultOf<Fn>> Submit(const ExecutorSubmitOptions& options, A&&... args) {
    pool_internal::CheckTask<Fn>();
    using R = pool_internal::ResultOf<Fn>;
    const std::string& function = *pool_internal::TaskRegistrar<Fn>::name;
    auto core = std::make_shared<futures_internal::Core<R>>(
        absl::StrCat(pool_internal::NextExecutorTask(*impl_), " (", function, ")"));
    pool_internal::Batch batch;
    absl::Status s =
        pool_internal::AddItem(batch, pool_internal::ArgsOf<Fn>(std::forward<A>(args)...));
    if (!s.ok()) {
      core->SetFailure(std::move(s)).IgnoreError();
      return Future<R>(std::move(core));
    }
    auto job = std::make_shared<pool_internal::Job>(
        1, absl::StrCat("ProcessPoolExecutor.Submit<", function, ">"));
    pool_internal::SubmitFutures(*impl_, job, function, std::move(batch), 1, options.timeout,
                                 {core}, pool_internal::Finisher<R>(job, {core}));
    return Future<R>(std::move(core));
  }

  // Fn(item) for every item, results in item order (futures/executor.h MapIterator), sent in chunks
  // of options.chunksize items. Items convert to Fn's single parameter type; they are kept (a copy)
  // until submitted.
  template <auto Fn, typename T>
  MapIterator<pool_internal::ResultOf<Fn>> Map(std::vector<T> items,
                                               const ExecutorMapOptions& options = {}) {
    static_assert(std::tuple_size_v<pool_internal::ArgsOf<Fn>> == 1,
                  "mp::ProcessPoolExecutor::Map<&Fn>: Fn must take exactly one parameter");
    pool_internal::CheckTask<Fn>();
    using R = pool_internal::ResultOf<Fn>;
    const size_t count = items.size();
    if (options.chunksize < 1) {
      return MapIterator<R>(
          count, options, nullptr,
          absl::InvalidArgumentError(absl::StrCat(
              "ProcessPoolExecutor::Map: chunksize must be >= 1, got ", options.chunksize)));
    }
    struct State {
      std::vector<T> items;
      size_t chunksize;
      std::vector<Future<R>> chunk;  // the futures of the chunk last submitted
      size_t chunk_first = 0;
    };
    auto state = std::make_shared<State>(
        State{std::move(items), static_cast<size_t>(options.chunksize), {}, 0});
    std::weak_ptr<pool_internal::ProcessPoolImpl> weak = impl_;
    // MapIterator asks for items in order; the first item of a chunk submits the chunk.
    return MapIterator<R>(count, options, [weak, state](size_t i) -> Future<R> {
      if (i % state->chunksize == 0) {
        const std::string& function = *pool_internal::TaskRegistrar<Fn>::name;
        const size_t last = std::min(state->items.size(), i + state->chunksize);
        state->chunk.clear();
        state->chunk_first = i;
        std::shared_ptr<pool_internal::ProcessPoolImpl> impl = weak.lock();
        if (impl == nullptr) {
          for (size_t k = i; k < last; ++k) {
            state->chunk.push_back(MakeFailedFuture<R>(
                absl::StrCat("ProcessPoolExecutor.Map<", function, "> item ", k),
                absl::FailedPreconditionError("ProcessPoolExecutor: cannot schedule new futures "
                                              "after the executor was destroyed")));
          }
          return state->chunk[0];
        }
        std::vector<std::shared_ptr<futures_internal::Core<R>>> cores;
        std::vector<std::shared_ptr<futures_internal::CoreBase>> bases;
        const std::string task = pool_internal::NextExecutorTask(*impl);
        for (size_t k = i; k < last; ++k) {
          cores.push_back(std::make_shared<futures_internal::Core<R>>(
              absl::StrCat(task, " (", function, " item ", k, ")")));
          bases.push_back(cores.back());
          state->chunk.push_back(Future<R>(cores.back()));
        }
        pool_internal::Batch batch;
        absl::Status s = pool_internal::EncodeItems<Fn>(batch, state->items, i, last);
        if constexpr (std::is_default_constructible_v<T>) {
          for (size_t k = i; k < last; ++k) state->items[k] = T();  // no longer needed here
        }
        if (!s.ok()) {
          for (auto& core : cores) core->SetFailure(s).IgnoreError();
        } else {
          auto job = std::make_shared<pool_internal::Job>(
              last - i, absl::StrCat("ProcessPoolExecutor.Map<", function, ">"));
          pool_internal::SubmitFutures(*impl, job, function, std::move(batch), last - i,
                                       absl::InfiniteDuration(), std::move(bases),
                                       pool_internal::Finisher<R>(job, std::move(cores)));
        }
      }
      return state->chunk[i - state->chunk_first];
    });
  }

  // No more tasks: later Submits fail (see the header comment). With cancel_futures, the tasks no
  // worker has claimed are cancelled. With wait, waits (at most options.timeout) for the tasks and
  // the workers to exit: kDeadlineExceeded then (a later Shutdown or the destructor waits again).
  // May be called more than once.
  absl::Status Shutdown(const ExecutorShutdownOptions& options = {});

  int max_workers() const;
  // Pids of the current workers.
  std::vector<int> WorkerPids() const;

 private:
  explicit ProcessPoolExecutor(std::shared_ptr<pool_internal::ProcessPoolImpl> impl);

  std::shared_ptr<pool_internal::ProcessPoolImpl> impl_;
};

}  // namespace mp

#endif  // MP_POOL_PROCESS_POOL_EXECUTOR_H_
