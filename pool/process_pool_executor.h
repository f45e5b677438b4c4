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
// Map sends its items in chunks of `chunksize` (one message per chunk, as CPython's) and reads each
// result straight out of its chunk (no Future per item): a chunk's items are there together, when
// the whole chunk has run; a timeout, the iterator destroyed or Shutdown's cancel_futures takes
// back the chunks none of whose items started.
//
// Thread safety: every method may be called from any thread. Do not destroy the executor from a
// done callback. A moved-from executor allows only assignment and destruction.

#ifndef MP_POOL_PROCESS_POOL_EXECUTOR_H_
#define MP_POOL_PROCESS_POOL_EXECUTOR_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
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
// "ProcessPoolExecutor task N (function)", N counting this executor's submissions.
std::string NextExecutorTask(ProcessPoolImpl& impl, absl::string_view function);

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
  if constexpr (std::is_same_v<P, T> && codec_internal::kBulkCopyable<T>) {
    // An arithmetic argument encodes as its bytes: the items are the batch.
    batch.fixed_size = sizeof(T);
    batch.bytes.assign(reinterpret_cast<const char*>(items.data() + first),
                       (last - first) * sizeof(T));
    return CheckBatch(FdTable(), batch);
  }
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

// Queues a Map chunk's `job` (its items encoded in `batch`, all in one chunk) with the engine and
// keeps it for Shutdown's cancel_futures. kFailedPrecondition after Shutdown; the engine's errors.
absl::Status SubmitMapChunk(ProcessPoolImpl& impl, std::shared_ptr<Job> job,
                            const std::string& function, Batch batch);
// Takes a Map chunk's job back unless one of its items started (Engine::Cancel).
void CancelMapChunk(ProcessPoolImpl& impl, const std::shared_ptr<Job>& job);

// Map's items, sent in chunks of `chunksize` (a Job each, submitted when MapIterator submits the
// chunk's first item), their results read straight out of the chunk's job: no Future per item.
template <auto Fn, typename T>
class ExecutorMapSource final : public MapSource<ResultOf<Fn>> {
 public:
  using R = ResultOf<Fn>;
  ExecutorMapSource(std::weak_ptr<ProcessPoolImpl> impl, std::vector<T> items, size_t chunksize)
      : impl_(std::move(impl)), items_(std::move(items)), chunksize_(chunksize) {}

  void Submit(size_t i) override {
    if (i % chunksize_ != 0) return;  // the chunk went with its first item
    const std::string& function = *TaskRegistrar<Fn>::name;
    const size_t last = std::min(items_.size(), i + chunksize_);
    Chunk& chunk = chunks_.emplace_back();
    chunk.first = i;
    chunk.last = last;
    std::shared_ptr<ProcessPoolImpl> impl = impl_.lock();
    if (impl == nullptr) {
      chunk.status = absl::FailedPreconditionError(
          "ProcessPoolExecutor: cannot schedule new futures after the executor was destroyed");
      return;
    }
    Batch batch;
    chunk.status = EncodeItems<Fn>(batch, items_, i, last);
    if constexpr (std::is_default_constructible_v<T> && !std::is_trivially_destructible_v<T>) {
      for (size_t k = i; k < last; ++k) items_[k] = T();  // no longer needed here
    }
    if (!chunk.status.ok()) return;
    auto job =
        std::make_shared<Job>(last - i, absl::StrCat("ProcessPoolExecutor.Map<", function, ">"));
    chunk.status = SubmitMapChunk(*impl, job, function, std::move(batch));
    if (chunk.status.ok()) chunk.job = std::move(job);
  }
  // A chunk's items finish together (one reply message): the first Wait of a chunk waits for all of
  // them and decodes them in one pass, so that each Take is a move.
  bool Wait(size_t, Deadline deadline) override {
    Chunk& chunk = chunks_.front();  // holds the lowest item not taken
    if (chunk.job == nullptr || chunk.collected) return true;
    if (!chunk.job->WaitAll(deadline)) return false;
    chunk.collected = true;
    absl::StatusOr<std::vector<R>> values = DecodeResults<R>(*chunk.job);
    if (values.ok()) {
      chunk.values = *std::move(values);
    } else {
      chunk.values.clear();  // some item failed: each is read from the job
    }
    return true;
  }
  absl::StatusOr<R> Take(size_t i) override {
    Chunk& chunk = chunks_.front();
    absl::StatusOr<R> r = chunk.job == nullptr ? absl::StatusOr<R>(chunk.status)
                          : !chunk.values.empty()
                              ? absl::StatusOr<R>(std::move(chunk.values[i - chunk.first]))
                              : ItemResult<R>(*chunk.job, i - chunk.first);
    if (i + 1 == chunk.last) chunks_.pop_front();
    return r;
  }
  void Cancel(size_t, size_t) override {
    std::shared_ptr<ProcessPoolImpl> impl = impl_.lock();
    if (impl != nullptr) {  // else the executor waited for its tasks: nothing is pending
      for (const Chunk& chunk : chunks_) {
        if (chunk.job != nullptr) CancelMapChunk(*impl, chunk.job);
      }
    }
    chunks_.clear();
  }
  std::string Describe(size_t i) const override {
    return absl::StrCat("ProcessPoolExecutor.Map<", *TaskRegistrar<Fn>::name, "> item ", i);
  }

 private:
  struct Chunk {
    size_t first = 0;
    size_t last = 0;           // items [first, last)
    std::shared_ptr<Job> job;  // null: not submitted, `status` says why
    absl::Status status;
    bool collected = false;  // the job is done and `values` decoded
    std::vector<R> values;   // every item's value; empty when one of them failed
  };
  const std::weak_ptr<ProcessPoolImpl> impl_;
  std::vector<T> items_;
  const size_t chunksize_;
  std::deque<Chunk> chunks_;  // submitted, with items not yet taken, in order
};

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
        pool_internal::NextExecutorTask(*impl_, function));
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
          count, options, std::unique_ptr<MapSource<R>>(),
          absl::InvalidArgumentError(absl::StrCat(
              "ProcessPoolExecutor::Map: chunksize must be >= 1, got ", options.chunksize)));
    }
    return MapIterator<R>(count, options,
                          std::make_unique<pool_internal::ExecutorMapSource<Fn, T>>(
                              impl_, std::move(items), static_cast<size_t>(options.chunksize)));
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
