// Copyright 2026 The mp Authors.
//
// pool/pool.h — mp::Pool: Python's multiprocessing.Pool (a pool of worker processes running tasks).
//
// Tasks are registered functions, as for Process targets (start_methods/target.h): writing
// Map<&Fn>(...) registers Fn by its qualified name in every process of the program, so the workers
// of every start method (fork, spawn, forkserver) can run it. Arguments and results travel encoded
// (serialize/codec.h): every parameter type and the result type need an mp::Codec.
//
//   int64_t Square(int64_t x) { return x * x; }          // at namespace scope
//
//   absl::StatusOr<mp::Pool> pool =
//       mp::Pool::Create(mp::ForkServerStartMethod(), {.processes = 4});
//   std::vector<int64_t> xs = {1, 2, 3};
//   absl::StatusOr<std::vector<int64_t>> squares = pool->Map<&Square>(xs);      // {1, 4, 9}
//   mp::AsyncResult<int64_t> r = pool->ApplyAsync<&Square>(int64_t{7});
//   absl::StatusOr<int64_t> v = r.Get(absl::Seconds(5));                          // 49
//   pool->Close();
//   pool->Join();
//
// CPython -> mp:
//   Pool(processes, initializer, initargs, maxtasksperchild)
//                      Pool::Create(method, {.processes,
//                                            .initializer = MakePoolInitializer<&Init>(args...),
//                                            .maxtasksperchild})
//   apply(f, args)     Apply<&f>(args...)             -> StatusOr<R>
//   apply_async        ApplyAsync<&f>(args...)        -> AsyncResult<R>
//   apply_async(f, args, callback=cb, error_callback=eb)
//                      ApplyAsync<&f>(mp::AsyncCallbacks<R>{.callback = cb, .error_callback = eb},
//                                     args...)  (map_async / starmap_async: a third argument;
//                                     see AsyncCallbacks in pool/async_result.h)
//   map(f, it, cs)     Map<&f>(items, chunksize)      -> StatusOr<std::vector<R>>
//   map_async          MapAsync<&f>(items, chunksize) -> AsyncResult<std::vector<R>>
//   starmap(f, it)     Starmap<&f>(tuples, chunksize) -> StatusOr<std::vector<R>>
//   imap(f, it, cs)    Imap<&f>(items, chunksize)     -> ImapIterator<R> (results in order)
//   imap_unordered     ImapUnordered<&f>(items, cs)   -> ImapIterator<R> (in completion order)
//   AsyncResult.get(timeout) / wait / ready / successful
//                      Get(timeout) / Wait(timeout) / Ready() / Successful()
//   close / terminate / join    Close() / Terminate() / Join(timeout)
// The result type R is Fn's return type; for absl::StatusOr<T> it is T, and for void or
// absl::Status it is mp::PoolUnit (an empty tuple). chunksize 0 chooses CPython's default for
// Map/Starmap (ceil(len / (4 * processes))) and 1 for Imap.
//
// Failures (the exception CPython would raise -> status):
//   a task that returns an error status     that status, from AsyncResult::Get, the ImapIterator's
//                                           Next for that item, or Map (the failure of the lowest
//                                           index); the other tasks still run
//   a task that throws (CPython re-raises the exception at get()): kUnknown
//       "Pool: ns::Fn threw std::runtime_error: boom" (the demangled type, then what() for a
//       std::exception), delivered like a returned error status; the worker catches it at the task
//       boundary and goes on with its next task. An initializer that throws fails like one that
//       returns an error (below). Nothing a task throws unwinds out of the worker (under fork, into
//       the copy of the pool process's frames).
//   a worker that dies while running a task (SIGKILL, OOM killer, abort, exit): kAborted
//       "Pool: worker pid N died (signal 9) while running task K of Map<ns::Fn>" -- CPython hangs
//       forever here (gh-96062). Only that task fails; tasks the worker had been given but not
//       started go to other workers; results of earlier tasks of the same chunk that the worker had
//       finished but not yet sent are lost and fail with kAborted saying so (use chunksize 1 when a
//       task may crash its worker). A new worker takes the dead one's place.
//   a failing initializer                   every unfinished and later task fails with
//                                           kFailedPrecondition naming the initializer's status
//                                           (CPython respawns workers forever)
//   a task over PoolOptions::task_timeout   kDeadlineExceeded naming the task, the limit and the
//                                           worker, which is killed and replaced (see there)
//   Get(timeout) / Next(timeout) timing out kDeadlineExceeded (multiprocessing.TimeoutError)
//   Successful() before Ready()             kFailedPrecondition (ValueError)
//   submitting after Close or Terminate     kFailedPrecondition ("Pool not running", ValueError)
//   Join before Close or Terminate          kFailedPrecondition (ValueError)
//   tasks unfinished at Terminate           kCancelled
//   arguments holding descriptors or shared objects (Lock, Queue, Connection...)
//                                           kInvalidArgument (tasks travel as bytes; give such
//                                           objects to every worker through the initializer's
//                                           arguments: pool/initializer.h)
//   ImapIterator::Next after the last item  kOutOfRange (StopIteration)
//
// How it works. Each worker is an mp::Process running a registered worker loop, connected to the
// pool by its own socketpair (a Connection). A manager thread in the pool's process assigns chunks
// of tasks as CPython's workers take them from one queue when free: a chunk goes to an idle worker
// first; a worker gets more (so that it need not wait for its next one: up to 32, several to a
// message) only while no worker is idle; and when a worker is idle with nothing queued, the chunks
// other workers hold but
// have not started come back to it (at once from a worker busy with a chunk; after 20 ms from one
// that started none, which may be stopped or starved). A worker claims each chunk in shared memory
// before starting it, and the pool takes a chunk back only with the same compare-and-swap, so every
// task runs exactly once; a stopped (SIGSTOP) or hung worker holds back only the chunk it started.
// The manager receives a message per finished chunk with every result, and watches every worker's
// sentinel. It never blocks on a send (a worker may be blocked sending it results): it sends a
// chunk itself when the worker's socket has room for it (SIOCOUTQ against SO_SNDBUF), and otherwise
// hands it, in order, to a sender thread. Arguments and results are encoded once per chunk into one
// message; when Fn takes one arithmetic argument and returns an arithmetic value (int64_t
// Square(int64_t)), a chunk is the raw array of arguments and its reply the raw array of results,
// with no per-task framing, and a Job records results by runs (one per chunk), not per task.
// Message buffers are reused rather than allocated per message (fresh pages fault, and glibc gives
// a thread's freed memory back to the kernel). Map of 100,000 trivial tasks: see the README's
// benchmark table (tools/bench: mp, CPython's Pool.map and a hand-rolled raw pool,
// pool_benchmark.cc). Before running each task a worker records the task's index in a slot of
// shared memory, so when a worker dies the pool knows exactly which task killed it.
// maxtasksperchild counts chunks, as CPython's does (one Apply is one chunk): after that many the
// worker is told to exit and replaced.
//
// Workers are daemon processes (as in CPython): a task cannot start processes of its own, and
// workers are terminated if the pool's process exits without joining them; a worker also exits when
// the pool's process dies. Tasks cannot carry descriptors or shared objects (kInvalidArgument):
// share those through a SharedMemory name, a Listener address, the initializer's arguments
// (pool/initializer.h), or objects the workers inherit (fork).
//
// Under the fork start method the workers, replacements included, are forked from a
// single-threaded helper process that Pool::Create forks before the pool starts its own threads
// (start_methods/forked_server.h): a replacement worker is never forked from a process running
// the pool's threads, so mp's "forking a multi-threaded process" warning is printed only when the
// user's threads run at Create, once. The workers therefore see this process's memory as it was
// at Create (shared mappings excepted), as CPython's initial fork workers do; a global changed
// later keeps its old value in them.
//
// Thread safety: all Pool methods may be called from any thread. AsyncResult and ImapIterator are
// handles to shared state and are thread-safe too (one consumer per ImapIterator). Destroying a
// Pool that was not joined terminates it (CPython's __del__/context-manager exit does the same).

#ifndef MP_POOL_POOL_H_
#define MP_POOL_POOL_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
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
#include "absl/types/span.h"
#include "base/deadline.h"
#include "pool/async_result.h"
#include "pool/engine.h"
#include "pool/initializer.h"
#include "pool/job.h"
#include "pool/task.h"
#include "serialize/codec.h"
#include "serialize/fd.h"
#include "start_methods/process.h"
#include "start_methods/start_method.h"

namespace mp {

struct PoolOptions {
  // Worker processes; 0 means CpuCount().
  int processes = 0;
  PoolInitializer initializer;
  // Chunks a worker runs before it is replaced; 0 means no limit.
  int64_t maxtasksperchild = 0;
  // Every task's time limit, counted from when the task starts running in a worker (as pebble's
  // and mpire's, which CPython's Pool lacks); infinite: none, else > 0. A task over its limit
  // fails with kDeadlineExceeded "Pool: task K of Map<ns::Fn> exceeded its time limit of 2s
  // (running for 2.001s) in worker pid N, which was killed": the pool kills that worker (a
  // stopped or hung one too) and starts another; the other tasks carry on. Tasks of the same chunk
  // that had not started run on other workers; results of its earlier tasks that the worker had
  // not yet sent are lost (kAborted, as for a worker that dies: use chunksize 1 with time limits).
  absl::Duration task_timeout = absl::InfiniteDuration();
};

namespace pool_internal {
// Checks `options` (kInvalidArgument naming `caller` and the bad field) and turns them into the
// engine's.
absl::StatusOr<EngineOptions> MakeEngineOptions(PoolOptions options, absl::string_view caller);
}  // namespace pool_internal

class Pool {
 public:
  // Starts the workers with `method`. kInvalidArgument for a null method, negative
  // processes/maxtasksperchild, a task_timeout <= 0, or an initializer whose function is not
  // registered; the errors of Process::Create / Start otherwise.
  static absl::StatusOr<Pool> Create(std::shared_ptr<StartMethod> method, PoolOptions options = {});

  Pool(Pool&&) noexcept;
  Pool& operator=(Pool&&) noexcept;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  // Terminates and joins the pool unless it was joined.
  ~Pool();

  template <auto Fn, typename... A>
  AsyncResult<pool_internal::ResultOf<Fn>> ApplyAsync(A&&... args) {
    return ApplyAsync<Fn>(AsyncCallbacks<pool_internal::ResultOf<Fn>>{}, std::forward<A>(args)...);
  }
  // With CPython's callback / error_callback (see AsyncCallbacks).
  template <auto Fn, typename... A>
  AsyncResult<pool_internal::ResultOf<Fn>> ApplyAsync(
      AsyncCallbacks<pool_internal::ResultOf<Fn>> callbacks, A&&... args) {
    pool_internal::CheckTask<Fn>();
    pool_internal::Batch batch;
    absl::Status s =
        pool_internal::AddItem(batch, pool_internal::ArgsOf<Fn>(std::forward<A>(args)...));
    auto job = std::make_shared<pool_internal::Job>(1, Describe<Fn>("ApplyAsync"));
    std::shared_ptr<pool_internal::CallbacksRun> run;
    if (s.ok()) run = pool_internal::AttachCallbacks(job, false, std::move(callbacks));
    if (s.ok()) s = Submit(job, *pool_internal::TaskRegistrar<Fn>::name, std::move(batch), 1);
    return AsyncResult<pool_internal::ResultOf<Fn>>(std::move(job), std::move(s), false,
                                                    std::move(run));
  }
  template <auto Fn, typename... A>
  absl::StatusOr<pool_internal::ResultOf<Fn>> Apply(A&&... args) {
    return ApplyAsync<Fn>(std::forward<A>(args)...).Get();
  }

  // One task per item: Fn(item). Items convert to Fn's single parameter type.
  template <auto Fn, typename T>
  AsyncResult<std::vector<pool_internal::ResultOf<Fn>>> MapAsync(
      const std::vector<T>& items, size_t chunksize = 0,
      AsyncCallbacks<std::vector<pool_internal::ResultOf<Fn>>> callbacks = {}) {
    static_assert(std::tuple_size_v<pool_internal::ArgsOf<Fn>> == 1,
                  "mp::Pool::Map<&Fn>: Fn must take exactly one parameter (use Starmap)");
    return SubmitMany<Fn, std::vector<pool_internal::ResultOf<Fn>>, false>(items, chunksize, "Map",
                                                                           std::move(callbacks));
  }
  template <auto Fn, typename T>
  absl::StatusOr<std::vector<pool_internal::ResultOf<Fn>>> Map(const std::vector<T>& items,
                                                               size_t chunksize = 0) {
    return MapAsync<Fn>(items, chunksize).Get();
  }
  // One task per tuple: std::apply(Fn, item). Items convert to Fn's parameter tuple.
  template <auto Fn, typename T>
  AsyncResult<std::vector<pool_internal::ResultOf<Fn>>> StarmapAsync(
      const std::vector<T>& items, size_t chunksize = 0,
      AsyncCallbacks<std::vector<pool_internal::ResultOf<Fn>>> callbacks = {}) {
    return SubmitMany<Fn, std::vector<pool_internal::ResultOf<Fn>>, true>(
        items, chunksize, "Starmap", std::move(callbacks));
  }
  template <auto Fn, typename T>
  absl::StatusOr<std::vector<pool_internal::ResultOf<Fn>>> Starmap(const std::vector<T>& items,
                                                                   size_t chunksize = 0) {
    return StarmapAsync<Fn>(items, chunksize).Get();
  }
  template <auto Fn, typename T>
  ImapIterator<pool_internal::ResultOf<Fn>> Imap(const std::vector<T>& items,
                                                 size_t chunksize = 1) {
    return MakeIterator<Fn>(items, chunksize, "Imap", false);
  }
  template <auto Fn, typename T>
  ImapIterator<pool_internal::ResultOf<Fn>> ImapUnordered(const std::vector<T>& items,
                                                          size_t chunksize = 1) {
    return MakeIterator<Fn>(items, chunksize, "ImapUnordered", true);
  }

  // No more tasks; workers exit once the submitted ones are done.
  void Close();
  // Stops the workers now (SIGKILL); unfinished tasks fail with kCancelled.
  void Terminate();
  // Waits for the workers to exit (after Close or Terminate): kFailedPrecondition before either;
  // kDeadlineExceeded when `timeout` passes first.
  absl::Status Join(absl::Duration timeout = absl::InfiniteDuration());

  // Number of worker processes.
  int processes() const;
  // Pids of the current workers (for tests and monitoring).
  std::vector<int> WorkerPids() const;

 private:
  friend class ThreadPool;
  explicit Pool(std::unique_ptr<pool_internal::Engine> engine);

  template <auto Fn>
  static std::string Describe(absl::string_view call) {
    return absl::StrCat(call, "<", process_internal::QualifiedName<Fn>(), ">");
  }

  absl::Status Submit(std::shared_ptr<pool_internal::Job> job, const std::string& function,
                      pool_internal::Batch batch, size_t chunksize);
  // An empty string with room for `size` bytes when the pool keeps one (see Buffers in pool.cc).
  std::string TakeBuffer(size_t size);
  size_t DefaultChunksize(size_t items) const;

  template <auto Fn, bool kStar, typename T>
  absl::Status Encode(pool_internal::Batch& batch, const std::vector<T>& items) {
    using Args = pool_internal::ArgsOf<Fn>;
    if constexpr (!kStar && std::is_same_v<std::tuple_element_t<0, Args>, T> &&
                  codec_internal::kBulkCopyable<T>) {
      // An arithmetic argument encodes as its bytes: the whole vector is the batch.
      if (items.empty()) return absl::OkStatus();
      batch.fixed_size = sizeof(T);
      batch.bytes = TakeBuffer(items.size() * sizeof(T));  // reused memory: no fresh pages
      batch.bytes.assign(reinterpret_cast<const char*>(items.data()), items.size() * sizeof(T));
      return pool_internal::CheckBatch(FdTable(), batch);
    }
    batch.offsets.reserve(items.size() + 1);
    FdTable table;
    {
      ScopedFdTable scope(&table);
      for (const T& item : items) {
        if constexpr (kStar) {
          if constexpr (std::is_constructible_v<Args, const T&>) {
            pool_internal::AppendItem(batch, Args(item));
          } else {
            pool_internal::AppendItem(
                batch, std::apply([](const auto&... a) { return Args(a...); }, item));
          }
        } else {
          using P = std::tuple_element_t<0, Args>;
          if constexpr (std::is_same_v<P, T>) {
            pool_internal::AppendItem(batch, item);  // same bytes as std::tuple<P>
          } else {
            pool_internal::AppendItem(batch, static_cast<P>(item));
          }
        }
      }
    }
    return pool_internal::CheckBatch(table, batch);
  }

  template <auto Fn, typename R, bool kStar, typename T>
  AsyncResult<R> SubmitMany(const std::vector<T>& items, size_t chunksize, absl::string_view call,
                            AsyncCallbacks<R> callbacks = {}) {
    pool_internal::CheckTask<Fn>();
    auto job = std::make_shared<pool_internal::Job>(items.size(), Describe<Fn>(call));
    pool_internal::Batch batch;
    absl::Status s = Encode<Fn, kStar>(batch, items);
    std::shared_ptr<pool_internal::CallbacksRun> run;
    if (s.ok()) run = pool_internal::AttachCallbacks(job, true, std::move(callbacks));
    if (s.ok()) {
      s = Submit(job, *pool_internal::TaskRegistrar<Fn>::name, std::move(batch),
                 chunksize == 0 ? DefaultChunksize(items.size()) : chunksize);
    }
    return AsyncResult<R>(std::move(job), std::move(s), true, std::move(run));
  }

  template <auto Fn, typename T>
  ImapIterator<pool_internal::ResultOf<Fn>> MakeIterator(const std::vector<T>& items,
                                                         size_t chunksize, absl::string_view call,
                                                         bool unordered) {
    static_assert(std::tuple_size_v<pool_internal::ArgsOf<Fn>> == 1,
                  "mp::Pool::Imap<&Fn>: Fn must take exactly one parameter");
    AsyncResult<std::vector<pool_internal::ResultOf<Fn>>> r =
        SubmitMany<Fn, std::vector<pool_internal::ResultOf<Fn>>, false>(
            items, chunksize == 0 ? 1 : chunksize, call);
    return ImapIterator<pool_internal::ResultOf<Fn>>(std::move(r.job_), unordered,
                                                     std::move(r.status_));
  }

  std::unique_ptr<pool_internal::Engine> engine_;
};

}  // namespace mp

#endif  // MP_POOL_POOL_H_
