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
//   Get(timeout) / Next(timeout) timing out kDeadlineExceeded (multiprocessing.TimeoutError)
//   Successful() before Ready()             kFailedPrecondition (ValueError)
//   submitting after Close or Terminate     kFailedPrecondition ("Pool not running", ValueError)
//   Join before Close or Terminate          kFailedPrecondition (ValueError)
//   tasks unfinished at Terminate           kCancelled
//   arguments holding descriptors or shared objects (Lock, Queue, Connection...)
//                                           kInvalidArgument (tasks travel as bytes; pass such
//                                           objects to the initializer's process... see
//                                           PoolInitializer)
//   ImapIterator::Next after the last item  kOutOfRange (StopIteration)
//
// How it works. Each worker is an mp::Process running a registered worker loop, connected to the
// pool by its own socketpair (a Connection). A manager thread in the pool's process assigns chunks
// of tasks as CPython's workers take them from one queue when free: a chunk goes to an idle worker
// first; a worker gets a second chunk (so that it need not wait for its next one) only while no
// worker is idle; and when a worker is idle with nothing queued, the chunks other workers hold but
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
// share those through a SharedMemory name, a Listener address, or objects the workers inherit
// (fork).
//
// Thread safety: all Pool methods may be called from any thread. AsyncResult and ImapIterator are
// handles to shared state and are thread-safe too (one consumer per ImapIterator). Destroying a
// Pool that was not joined terminates it (CPython's __del__/context-manager exit does the same).

#ifndef MP_POOL_POOL_H_
#define MP_POOL_POOL_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/deadline.h"
#include "base/mutex.h"
#include "serialize/codec.h"
#include "serialize/fd.h"
#include "start_methods/process.h"
#include "start_methods/start_method.h"
#include "start_methods/target.h"

namespace mp {

// The result of a task whose function returns void or absl::Status.
using PoolUnit = std::tuple<>;

namespace pool_internal {

// Inside a catch block: the status a task's escaped exception becomes, kUnknown "Pool: <function>
// threw <demangled type>: <what()>" (what() only for a std::exception).
absl::Status CurrentExceptionStatus(absl::string_view function);

// Runs one task: decodes the arguments, calls the function, appends one encoded result to `out`.
// An exception the function throws becomes the task's failure (CurrentExceptionStatus).
using TaskFn = void (*)(absl::Span<const uint8_t> args, std::string& out);

// Registry of task functions (by qualified name, with "#2" suffixes on clashes like
// process_internal::RegisterFunction). Never fails.
// Runs `count` tasks whose single argument is arithmetic (item_size bytes each, raw) and whose
// result is a plain arithmetic value, appending the raw results to `out`; stores each task's
// absolute index (first + i) into *index before running it. False (nothing done) if item_size does
// not match. When task i throws, stops there: `out` holds the raw results of tasks 0 .. i - 1, *ran
// is i and *thrown the exception's status (else *ran is count and *thrown OK). Only for such
// functions; nullptr otherwise.
using BatchFn = bool (*)(const uint8_t* items, uint32_t count, uint32_t item_size, uint64_t first,
                         std::atomic<uint64_t>* index, std::string& out, uint32_t* ran,
                         absl::Status* thrown);

const std::string* RegisterTask(std::string name, const void* key, TaskFn fn, BatchFn batch);
// nullptr if no function has that name.
TaskFn FindTask(absl::string_view name);
BatchFn FindBatch(absl::string_view name);

// One encoded result: byte 0 (ok) + varint length + Codec payload, or byte 1 + the failure as
// Codec<absl::Status> (serialize/status.h).
void AppendError(std::string& out, const absl::Status& status);
template <typename T>
void AppendOk(std::string& out, const T& value) {
  const size_t size = Codec<T>::Size(value);
  const size_t at = out.size();
  out.resize(at + 1 + VarintSize(size) + size);
  ByteWriter w(reinterpret_cast<uint8_t*>(out.data()) + at, out.size() - at);
  w.WriteByte(0);
  w.WriteVarint(size);
  Codec<T>::Encode(value, w);
}

template <typename R>
struct ResultTraits {
  using Type = std::remove_cvref_t<R>;
};
template <>
struct ResultTraits<void> {
  using Type = PoolUnit;
};
template <>
struct ResultTraits<absl::Status> {
  using Type = PoolUnit;
};
template <typename T>
struct ResultTraits<absl::StatusOr<T>> {
  using Type = T;
};

template <auto Fn>
using FnTraits = process_internal::FunctionTraits<decltype(Fn)>;
template <auto Fn>
using ResultOf = typename ResultTraits<typename FnTraits<Fn>::Result>::Type;
template <auto Fn>
using ArgsOf = typename FnTraits<Fn>::Values;

// Calls Fn with `values` and appends its encoded result to `out`.
template <auto Fn>
void CallAndAppend(ArgsOf<Fn>& values, std::string& out) {
  using R = typename FnTraits<Fn>::Result;
  auto call = [&]() -> decltype(auto) { return std::apply(Fn, std::move(values)); };
  if constexpr (std::is_void_v<R>) {
    call();
    AppendOk(out, PoolUnit{});
  } else if constexpr (std::is_same_v<std::remove_cvref_t<R>, absl::Status>) {
    absl::Status s = call();
    if (s.ok()) {
      AppendOk(out, PoolUnit{});
    } else {
      AppendError(out, s);
    }
  } else if constexpr (std::is_same_v<std::remove_cvref_t<R>,
                                      absl::StatusOr<typename ResultTraits<R>::Type>>) {
    auto result = call();
    if (result.ok()) {
      AppendOk(out, *result);
    } else {
      AppendError(out, result.status());
    }
  } else {
    AppendOk(out, call());
  }
}

template <auto Fn>
void RunTask(absl::Span<const uint8_t> bytes, std::string& out) {
  using Values = ArgsOf<Fn>;
  const size_t at = out.size();
  try {
    Values values{};
    ByteReader r(bytes);
    if (absl::Status s = Codec<Values>::Decode(r, values); !s.ok() || r.remaining() != 0) {
      AppendError(out, absl::InvalidArgumentError(absl::StrCat(
                           "Pool: arguments of ", process_internal::QualifiedName<Fn>(),
                           " did not decode: ", s.ok() ? "trailing bytes" : s.message())));
      return;
    }
    CallAndAppend<Fn>(values, out);
  } catch (...) {
    // Whatever the task threw (or the result's encoding): the task fails, the worker goes on.
    out.resize(at);
    AppendError(out, CurrentExceptionStatus(process_internal::QualifiedName<Fn>()));
  }
}

template <auto Fn>
constexpr bool kBatchable = [] {
  using Args = ArgsOf<Fn>;
  using R = std::remove_cvref_t<typename FnTraits<Fn>::Result>;
  if constexpr (std::tuple_size_v<Args> != 1) {
    return false;
  } else {
    return codec_internal::kBulkCopyable<std::tuple_element_t<0, Args>> &&
           codec_internal::kBulkCopyable<R>;
  }
}();

template <auto Fn>
bool RunBatch(const uint8_t* items, uint32_t count, uint32_t item_size, uint64_t first,
              std::atomic<uint64_t>* index, std::string& out, uint32_t* ran, absl::Status* thrown) {
  using P = std::tuple_element_t<0, ArgsOf<Fn>>;
  using R = std::remove_cvref_t<typename FnTraits<Fn>::Result>;
  if (item_size != sizeof(P)) return false;
  const size_t at = out.size();
  out.resize(at + size_t{count} * sizeof(R));
  char* dst = out.data() + at;
  uint32_t i = 0;
  try {
    for (; i < count; ++i) {
      index->store(first + i, std::memory_order_relaxed);
      P p;
      std::memcpy(&p, items + size_t{i} * sizeof(P), sizeof(P));
      const R r = Fn(p);
      std::memcpy(dst + size_t{i} * sizeof(R), &r, sizeof(R));
    }
  } catch (...) {
    out.resize(at + size_t{i} * sizeof(R));
    *thrown = CurrentExceptionStatus(process_internal::QualifiedName<Fn>());
  }
  *ran = i;
  return true;
}

template <auto Fn>
struct TaskRegistrar {
  static BatchFn Batch() {
    if constexpr (kBatchable<Fn>) {
      return &RunBatch<Fn>;
    } else {
      return nullptr;
    }
  }
  static inline const std::string* const name =
      RegisterTask(process_internal::QualifiedName<Fn>(), reinterpret_cast<const void*>(Fn),
                   &RunTask<Fn>, Batch());
};

template <auto Fn>
constexpr void CheckTask() {
  static_assert(
      std::is_pointer_v<decltype(Fn)> && std::is_function_v<std::remove_pointer_t<decltype(Fn)>>,
      "mp::Pool: Fn must be a function (at namespace scope or a static member)");
  RequireCodec<ArgsOf<Fn>>();
  RequireCodec<ResultOf<Fn>>();
}

// Encoded arguments of a batch of tasks: item i is bytes [offsets[i], offsets[i+1]).
// With fixed_size > 0 every item is fixed_size bytes (arithmetic arguments copied as one block) and
// offsets is unused.
struct Batch {
  std::string bytes;
  std::vector<uint32_t> offsets{0};
  size_t fixed_size = 0;
  size_t size() const { return fixed_size > 0 ? bytes.size() / fixed_size : offsets.size() - 1; }
};

// Appends one task's arguments (encoded as Fn's parameter tuple) under the caller's FdTable scope.
template <typename T>
void AppendItem(Batch& batch, const T& args) {
  const size_t size = Codec<T>::Size(args);
  const size_t at = batch.bytes.size();
  if (batch.bytes.capacity() < at + size) batch.bytes.reserve(2 * (at + size));
  batch.bytes.resize(at + size);
  ByteWriter w(reinterpret_cast<uint8_t*>(batch.bytes.data()) + at, size);
  Codec<T>::Encode(args, w);
  batch.offsets.push_back(static_cast<uint32_t>(batch.bytes.size()));
}

// kInvalidArgument if the arguments encoded under `table` hold descriptors or fork-only objects, or
// the batch is above 4 GiB.
absl::Status CheckBatch(const FdTable& table, const Batch& batch);

// One task's arguments.
template <typename T>
absl::Status AddItem(Batch& batch, const T& args) {
  FdTable table;
  {
    ScopedFdTable scope(&table);
    AppendItem(batch, args);
  }
  return CheckBatch(table, batch);
}

// The state of one submitted call (Apply, Map, Imap...): one result per item.
//
// Results are recorded by runs, not by item: a chunk of fixed-size results is one Segment (the
// reply message it lives in, an offset and a stride), so a Map of 100,000 trivial tasks costs a few
// segments and one byte per item (its done flag), not a record, a status and a completion entry per
// item. Failures are segments too (one status for a run of items).
class Job {
 public:
  Job(size_t count, std::string what) : what_(std::move(what)), size_(count), done_(count, 0) {}

  const std::string& what() const { return what_; }
  size_t size() const { return size_; }

  // Records item `index`: its encoded result at [offset, offset + length) of `blob`, or, when
  // `status` is not OK, that failure (blob may be null). Items already done are left alone.
  void Finish(size_t index, std::shared_ptr<const std::string> blob, size_t offset, size_t length,
              absl::Status status);
  // Records items first .. first + count - 1, all OK, item k's payload at offset + k * stride of
  // `blob` (stride bytes each).
  void FinishFixed(size_t first, size_t count, const std::shared_ptr<const std::string>& blob,
                   size_t offset, size_t stride);
  // Records items first, first + 1, ... (one lock for a whole chunk): a status, or OK with a span.
  struct Finished {
    absl::Status status;
    uint32_t offset = 0;
    uint32_t length = 0;
  };
  void FinishRange(size_t first, const std::shared_ptr<const std::string>& blob,
                   std::vector<Finished>& results);
  // Fails every unfinished item with `status`.
  void FailUnfinished(const absl::Status& status);

  // A run of finished items as ForEachRun shows it: item first + k's payload is
  // data + k * stride (stride bytes, possibly 0) when fixed, else data + spans[k].first
  // (spans[k].second bytes).
  struct Run {
    size_t first = 0;
    size_t count = 0;
    const uint8_t* data = nullptr;
    bool fixed = false;
    uint32_t stride = 0;
    const std::vector<std::pair<uint32_t, uint32_t>>* spans = nullptr;
    absl::Span<const uint8_t> Payload(size_t k) const {
      return fixed ? absl::Span<const uint8_t>(data + k * stride, stride)
                   : absl::Span<const uint8_t>(data + (*spans)[k].first, (*spans)[k].second);
    }
  };
  // After WaitAll: the status of the lowest failed item if any (without calling f); otherwise calls
  // f(run) for every run in item order (under the lock) and returns the first error f returns.
  template <typename F>
  absl::Status ForEachRun(F&& f) const {
    MutexLock lock(&mu_);
    if (done_count_ != done_.size()) return absl::InternalError(what_ + ": not finished");
    if (absl::Status failure = FirstFailureLocked(); !failure.ok()) return failure;
    for (const auto& [first, seg] : segments_) {
      if (absl::Status s = f(RunOfLocked(first, seg)); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  bool Ready() const;
  // True once all items are done; false when `deadline` passes first.
  bool WaitAll(Deadline deadline) const;
  // True once item `index` is done; false when `deadline` passes first.
  bool WaitItem(size_t index, Deadline deadline) const;
  // Done item `index`: its status, or OK with its payload span in *payload (kept alive by *keep).
  absl::Status ItemResult(size_t index, absl::Span<const uint8_t>* payload,
                          std::shared_ptr<const std::string>* keep) const;
  // Waits for the next item in completion order (for ImapUnordered); `position` counts how many
  // were taken. The item's index, or nullopt when `deadline` passes first.
  std::optional<size_t> WaitCompleted(size_t position, Deadline deadline) const;
  // The status of the lowest failed item, OK if none (after WaitAll).
  absl::Status FirstFailure() const;

 private:
  // A run of items finished together: failed with `status`, or OK with payloads in blobs_[blob]
  // (fixed: at offset + k * stride; else at spans[k]).
  struct Segment {
    size_t count = 0;
    absl::Status status;
    uint32_t blob = 0;
    bool fixed = false;
    uint32_t offset = 0;
    uint32_t stride = 0;
    std::vector<std::pair<uint32_t, uint32_t>> spans;
  };
  // The status of the lowest failed item, OK if none.
  absl::Status FirstFailureLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (failed_ == 0) return absl::OkStatus();
    for (const auto& [first, seg] : segments_) {
      if (!seg.status.ok()) return seg.status;
    }
    return absl::OkStatus();
  }
  Run RunOfLocked(size_t first, const Segment& seg) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Run run{first,     seg.count,  reinterpret_cast<const uint8_t*>(blobs_[seg.blob]->data()),
            seg.fixed, seg.stride, &seg.spans};
    if (seg.fixed) run.data += seg.offset;
    return run;
  }
  // Marks items [first, first + count) done (all must be undone), adds `seg` for them and records
  // them as completed.
  void AddLocked(size_t first, Segment seg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The segment holding done item `index`.
  const Segment& SegmentOfLocked(size_t index, size_t* first) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // f(i, j) for each maximal run [i, j) of undone items in [first, first + count).
  template <typename F>
  void ForEachUndoneRunLocked(size_t first, size_t count, F f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds a failure segment for each run of undone items in [first, first + count).
  void FailRunsLocked(size_t first, size_t count, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t AddBlobLocked(const std::shared_ptr<const std::string>& blob)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a change must wake the waiters: everything is done (WaitAll), or someone waits for
  // single items (WaitItem, WaitCompleted). A Map's caller is woken once, not per chunk.
  bool WakeNeededLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_count_ == done_.size() || item_waiters_ > 0;
  }

  const std::string what_;
  const size_t size_;  // items
  mutable Mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<uint8_t> done_ ABSL_GUARDED_BY(mu_);  // 1 per finished item
  size_t done_count_ ABSL_GUARDED_BY(mu_) = 0;
  size_t failed_ ABSL_GUARDED_BY(mu_) = 0;                                      // failure segments
  std::map<size_t, Segment> segments_ ABSL_GUARDED_BY(mu_);                     // by first item
  std::vector<std::shared_ptr<const std::string>> blobs_ ABSL_GUARDED_BY(mu_);  // result messages
  // Runs in completion order (first, count) and the running total after each.
  std::vector<std::pair<size_t, size_t>> completed_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> completed_end_ ABSL_GUARDED_BY(mu_);
  mutable int item_waiters_ ABSL_GUARDED_BY(mu_) = 0;  // threads in WaitItem or WaitCompleted
};

template <typename T>
absl::StatusOr<T> DecodeResult(absl::Span<const uint8_t> payload) {
  T out{};
  ByteReader r(payload);
  if (absl::Status s = Codec<T>::Decode(r, out); !s.ok()) return s;
  if (r.remaining() != 0) return absl::InternalError("Pool: trailing bytes after a task result");
  return out;
}

// The result of done item `index`.
template <typename T>
absl::StatusOr<T> ItemResult(const Job& job, size_t index) {
  absl::Span<const uint8_t> payload;
  std::shared_ptr<const std::string> keep;
  if (absl::Status s = job.ItemResult(index, &payload, &keep); !s.ok()) return s;
  return DecodeResult<T>(payload);
}

class PoolImpl;

template <typename R>
inline constexpr bool kIsVector = false;
template <typename E>
inline constexpr bool kIsVector<std::vector<E>> = true;

}  // namespace pool_internal

// CPython's Pool(initializer=f, initargs=(...)): a registered function each worker runs once before
// its first task. If it returns an error status, the pool fails (see the header comment).
struct PoolInitializer {
  std::string function;  // registered task name; empty: no initializer
  std::string args;      // encoded arguments
};
template <auto Fn, typename... A>
absl::StatusOr<PoolInitializer> MakePoolInitializer(A&&... args) {
  pool_internal::CheckTask<Fn>();
  pool_internal::ArgsOf<Fn> values(std::forward<A>(args)...);
  pool_internal::Batch batch;
  if (absl::Status s = pool_internal::AddItem(batch, values); !s.ok()) return s;
  return PoolInitializer{*pool_internal::TaskRegistrar<Fn>::name, std::move(batch.bytes)};
}

struct PoolOptions {
  // Worker processes; 0 means CpuCount().
  int processes = 0;
  PoolInitializer initializer;
  // Chunks a worker runs before it is replaced; 0 means no limit.
  int64_t maxtasksperchild = 0;
};

// The pending result of ApplyAsync (R) or MapAsync (std::vector<R>).
template <typename R>
class AsyncResult {
 public:
  AsyncResult() = default;

  // The result; waits at most `timeout` (kDeadlineExceeded then). A failed task's status.
  absl::StatusOr<R> Get(absl::Duration timeout = absl::InfiniteDuration()) const {
    if (job_ == nullptr) return absl::FailedPreconditionError("AsyncResult: empty");
    if (!status_.ok()) return status_;
    if (!job_->WaitAll(Deadline::After(timeout))) return TimeoutError(timeout);
    if constexpr (pool_internal::kIsVector<R>) {
      if (many_) {
        R out;
        out.reserve(job_->size());
        using E = typename R::value_type;
        absl::Status s =
            job_->ForEachRun([&out](const pool_internal::Job::Run& run) -> absl::Status {
              if constexpr (codec_internal::kBulkCopyable<E>) {
                if (run.fixed && run.stride == sizeof(E)) {  // a chunk of raw results: one copy
                  const size_t at = out.size();
                  out.resize(at + run.count);
                  std::memcpy(out.data() + at, run.data, run.count * sizeof(E));
                  return absl::OkStatus();
                }
              }
              for (size_t k = 0; k < run.count; ++k) {
                absl::StatusOr<E> v = pool_internal::DecodeResult<E>(run.Payload(k));
                if (!v.ok()) return v.status();
                out.push_back(*std::move(v));
              }
              return absl::OkStatus();
            });
        if (!s.ok()) return s;
        return out;
      }
    }
    return pool_internal::ItemResult<R>(*job_, 0);
  }
  // Waits until the result is ready or `timeout` passes; returns Ready().
  bool Wait(absl::Duration timeout = absl::InfiniteDuration()) const {
    return job_ == nullptr || !status_.ok() || job_->WaitAll(Deadline::After(timeout));
  }
  bool Ready() const { return job_ == nullptr || !status_.ok() || job_->Ready(); }
  // Whether every task succeeded; kFailedPrecondition before Ready() (CPython's ValueError).
  absl::StatusOr<bool> Successful() const {
    if (!Ready()) {
      return absl::FailedPreconditionError("AsyncResult::Successful: the result is not ready");
    }
    return status_.ok() && job_ != nullptr && job_->FirstFailure().ok();
  }

 private:
  friend class Pool;
  AsyncResult(std::shared_ptr<pool_internal::Job> job, absl::Status status, bool many)
      : job_(std::move(job)), status_(std::move(status)), many_(many) {}
  absl::Status TimeoutError(absl::Duration timeout) const {
    return absl::DeadlineExceededError(absl::StrCat(
        "AsyncResult::Get: ", job_->what(), " not ready after ", absl::FormatDuration(timeout)));
  }

  std::shared_ptr<pool_internal::Job> job_;
  absl::Status status_;  // a submission that failed
  bool many_ = false;    // one result per item (MapAsync), else one result (ApplyAsync)
};

// Results of Imap (in submission order) or ImapUnordered (in completion order).
template <typename R>
class ImapIterator {
 public:
  ImapIterator() = default;

  // The next result (or that task's error). kOutOfRange after the last; kDeadlineExceeded when the
  // next result is not ready within `timeout` (call again later).
  absl::StatusOr<R> Next(absl::Duration timeout = absl::InfiniteDuration()) {
    if (!status_.ok()) return status_;
    if (job_ == nullptr || position_ >= job_->size()) {
      return absl::OutOfRangeError("ImapIterator: no more results");
    }
    const Deadline deadline = Deadline::After(timeout);
    size_t index = position_;
    if (unordered_) {
      std::optional<size_t> next = job_->WaitCompleted(position_, deadline);
      if (!next.has_value()) return TimeoutError(timeout);
      index = *next;
    } else if (!job_->WaitItem(index, deadline)) {
      return TimeoutError(timeout);  // the position stays: call again later
    }
    ++position_;
    return pool_internal::ItemResult<R>(*job_, index);
  }
  // Number of results.
  size_t size() const { return job_ == nullptr ? 0 : job_->size(); }

 private:
  friend class Pool;
  ImapIterator(std::shared_ptr<pool_internal::Job> job, bool unordered, absl::Status status)
      : job_(std::move(job)), unordered_(unordered), status_(std::move(status)) {}
  absl::Status TimeoutError(absl::Duration timeout) const {
    const std::string which =
        unordered_ ? std::string("no further result") : absl::StrCat("task ", position_);
    return absl::DeadlineExceededError(absl::StrCat("ImapIterator::Next: ", job_->what(), ": ",
                                                    which, " not ready after ",
                                                    absl::FormatDuration(timeout)));
  }

  std::shared_ptr<pool_internal::Job> job_;
  bool unordered_ = false;
  absl::Status status_;
  size_t position_ = 0;
};

class Pool {
 public:
  // Starts the workers with `method`. kInvalidArgument for a null method or negative
  // processes/maxtasksperchild, or an initializer whose function is not registered; the errors of
  // Process::Create / Start otherwise.
  static absl::StatusOr<Pool> Create(std::shared_ptr<StartMethod> method, PoolOptions options = {});

  Pool(Pool&&) noexcept;
  Pool& operator=(Pool&&) noexcept;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  // Terminates and joins the pool unless it was joined.
  ~Pool();

  template <auto Fn, typename... A>
  AsyncResult<pool_internal::ResultOf<Fn>> ApplyAsync(A&&... args) {
    pool_internal::CheckTask<Fn>();
    pool_internal::Batch batch;
    absl::Status s =
        pool_internal::AddItem(batch, pool_internal::ArgsOf<Fn>(std::forward<A>(args)...));
    auto job = std::make_shared<pool_internal::Job>(1, Describe<Fn>("ApplyAsync"));
    if (s.ok()) s = Submit(job, *pool_internal::TaskRegistrar<Fn>::name, std::move(batch), 1);
    return AsyncResult<pool_internal::ResultOf<Fn>>(std::move(job), std::move(s), false);
  }
  template <auto Fn, typename... A>
  absl::StatusOr<pool_internal::ResultOf<Fn>> Apply(A&&... args) {
    return ApplyAsync<Fn>(std::forward<A>(args)...).Get();
  }

  // One task per item: Fn(item). Items convert to Fn's single parameter type.
  template <auto Fn, typename T>
  AsyncResult<std::vector<pool_internal::ResultOf<Fn>>> MapAsync(const std::vector<T>& items,
                                                                 size_t chunksize = 0) {
    static_assert(std::tuple_size_v<pool_internal::ArgsOf<Fn>> == 1,
                  "mp::Pool::Map<&Fn>: Fn must take exactly one parameter (use Starmap)");
    return SubmitMany<Fn, std::vector<pool_internal::ResultOf<Fn>>, false>(items, chunksize, "Map");
  }
  template <auto Fn, typename T>
  absl::StatusOr<std::vector<pool_internal::ResultOf<Fn>>> Map(const std::vector<T>& items,
                                                               size_t chunksize = 0) {
    return MapAsync<Fn>(items, chunksize).Get();
  }
  // One task per tuple: std::apply(Fn, item). Items convert to Fn's parameter tuple.
  template <auto Fn, typename T>
  AsyncResult<std::vector<pool_internal::ResultOf<Fn>>> StarmapAsync(const std::vector<T>& items,
                                                                     size_t chunksize = 0) {
    return SubmitMany<Fn, std::vector<pool_internal::ResultOf<Fn>>, true>(items, chunksize,
                                                                          "Starmap");
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
  explicit Pool(std::unique_ptr<pool_internal::PoolImpl> impl);

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
  AsyncResult<R> SubmitMany(const std::vector<T>& items, size_t chunksize, absl::string_view call) {
    pool_internal::CheckTask<Fn>();
    auto job = std::make_shared<pool_internal::Job>(items.size(), Describe<Fn>(call));
    pool_internal::Batch batch;
    absl::Status s = Encode<Fn, kStar>(batch, items);
    if (s.ok()) {
      s = Submit(job, *pool_internal::TaskRegistrar<Fn>::name, std::move(batch),
                 chunksize == 0 ? DefaultChunksize(items.size()) : chunksize);
    }
    return AsyncResult<R>(std::move(job), std::move(s), true);
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

  std::unique_ptr<pool_internal::PoolImpl> impl_;
};

}  // namespace mp

#endif  // MP_POOL_POOL_H_
