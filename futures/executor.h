// Copyright 2026 The mp Authors.
//
// futures/executor.h — what every executor (ThreadPoolExecutor here, ProcessPoolExecutor in pool/)
// shares: the options of Map and Shutdown, and MapIterator, the lazy in-order results of Map
// (CPython's Executor.map generator).
//
//   mp::MapIterator<int64_t> it = executor->Map(Square, xs, {.timeout = absl::Seconds(10)});
//   for (;;) {
//     absl::StatusOr<int64_t> v = it.Next();
//     if (absl::IsOutOfRange(v.status())) break;   // every item was yielded
//     if (!v.ok()) return v.status();              // that item's failure, or the map's timeout
//   }
//
// CPython -> mp:
//   executor.map(fn, items, timeout, chunksize, buffersize)
//                                  Map(fn, items, {.timeout, .chunksize, .buffersize})
//   next(results)                  MapIterator::Next() -> absl::StatusOr<R>
//   StopIteration                  kOutOfRange
//   TimeoutError                   kDeadlineExceeded, and the unfinished items are cancelled
//   shutdown(wait, cancel_futures) Shutdown({.wait, .cancel_futures, .timeout})

#ifndef MP_FUTURES_EXECUTOR_H_
#define MP_FUTURES_EXECUTOR_H_

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "base/exception.h"
#include "futures/future.h"

namespace mp {

struct ExecutorMapOptions {
  // For the whole map, counted from the Map call (CPython's timeout): an item whose result is not
  // there by then fails with kDeadlineExceeded, and it and every later item are cancelled.
  absl::Duration timeout = absl::InfiniteDuration();
  // Items per task message for process executors (at least 1); thread executors ignore it, as
  // CPython's ThreadPoolExecutor does.
  int chunksize = 1;
  // At most this many items submitted and not yet yielded (CPython 3.14's buffersize): the next
  // item is submitted as one is yielded. 0: every item is submitted by Map (CPython's None).
  size_t buffersize = 0;
};

struct ExecutorShutdownOptions {
  // Wait until every submitted task (not cancelled) has finished and the workers have exited.
  bool wait = true;
  // Cancel the tasks that have not started (CPython 3.9's cancel_futures).
  bool cancel_futures = false;
  // With `wait`: kDeadlineExceeded when the workers are still running after it; the workers go
  // on, and a later Shutdown (or the destructor) waits again.
  absl::Duration timeout = absl::InfiniteDuration();
};

// Where a MapIterator's results come from, by item index: an executor implements it to keep its
// own per-item bookkeeping (ProcessPoolExecutor reads item i straight out of its chunk's job, with
// no Future per item); MapIterator's other constructor adapts a function returning one Future per
// item. MapIterator calls it from its one consumer thread: Submit(i) for i = 0, 1, ... in order;
// for each submitted item in order, Wait(i) and then, once Wait returned true, Take(i).
template <typename R>
class MapSource {
 public:
  virtual ~MapSource() = default;
  // Submits item i (a failure to submit shows as item i's result).
  virtual void Submit(size_t i) = 0;
  // True once item i (submitted, the lowest not taken) is done; false when `deadline` passes first.
  virtual bool Wait(size_t i, Deadline deadline) = 0;
  // The result (or failure) of item i, after Wait(i) returned true.
  virtual absl::StatusOr<R> Take(size_t i) = 0;
  // Cancels items [first, end): submitted, not taken (those already running go on, unobserved).
  virtual void Cancel(size_t first, size_t end) = 0;
  // Names item i in a timeout's message.
  virtual std::string Describe(size_t i) const = 0;
};

namespace futures_internal {

// A MapSource of one Future per item, made by `submit`.
template <typename R>
class FutureMapSource final : public MapSource<R> {
 public:
  explicit FutureMapSource(std::function<Future<R>(size_t)> submit) : submit_(std::move(submit)) {}
  void Submit(size_t i) override { futures_.push_back(submit_(i)); }
  bool Wait(size_t, Deadline deadline) override {
    const Future<R>& head = futures_.front();
    absl::StatusOr<R> r = head.Result(deadline.Remaining());
    if (!r.ok() && head.Done()) {
      r = head.Result(absl::ZeroDuration());  // done since the wait gave up, or failed
    } else if (!r.ok()) {
      return false;
    }
    head_result_ = std::move(r);
    return true;
  }
  absl::StatusOr<R> Take(size_t) override {
    futures_.pop_front();
    return std::move(head_result_);
  }
  void Cancel(size_t, size_t) override {
    for (const Future<R>& f : futures_) f.Cancel();
    futures_.clear();
  }
  std::string Describe(size_t) const override { return futures_.front().description(); }

 private:
  std::function<Future<R>(size_t)> submit_;
  std::deque<Future<R>> futures_;  // submitted, not yet taken, in item order
  absl::StatusOr<R> head_result_ = absl::UnknownError("Map: no result");
};

}  // namespace futures_internal

// Results of Map, in item order. Items are submitted by Map (all of them, or the first
// `buffersize`), results are waited for one at a time by Next. Destroying the iterator before the
// last item cancels the items not yet yielded (CPython's generator close). Move-only; one consumer.
template <typename R>
class MapIterator {
 public:
  // For executors: `count` items; submit(i) submits item i and returns its future (a failed future
  // when the executor cannot take it). A failed `status` (a bad option) is what every Next returns.
  MapIterator(size_t count, const ExecutorMapOptions& options,
              std::function<Future<R>(size_t)> submit, absl::Status status = absl::OkStatus())
      : MapIterator(count, options,
                    submit
                        ? std::make_unique<futures_internal::FutureMapSource<R>>(std::move(submit))
                        : nullptr,
                    std::move(status)) {}
  // The same with the items' results read from `source` (null only with a failed `status`).
  MapIterator(size_t count, const ExecutorMapOptions& options, std::unique_ptr<MapSource<R>> source,
              absl::Status status = absl::OkStatus())
      : count_(count),
        timeout_(options.timeout),
        deadline_(Deadline::After(options.timeout)),
        buffersize_(options.buffersize),
        source_(std::move(source)),
        status_(std::move(status)) {
    if (!status_.ok()) return;
    const size_t first = buffersize_ == 0 ? count_ : std::min(count_, buffersize_);
    while (submitted_ < first) source_->Submit(submitted_++);
  }
  MapIterator(MapIterator&& other) noexcept { *this = std::move(other); }
  MapIterator& operator=(MapIterator&& other) noexcept {
    if (this != &other) {
      CancelRest();
      count_ = other.count_;
      timeout_ = other.timeout_;
      deadline_ = other.deadline_;
      buffersize_ = other.buffersize_;
      source_ = std::move(other.source_);
      status_ = std::move(other.status_);
      next_ = other.next_;
      submitted_ = other.submitted_;
      ended_ = other.ended_;
      other.ended_ = true;
    }
    return *this;
  }
  MapIterator(const MapIterator&) = delete;
  MapIterator& operator=(const MapIterator&) = delete;
  ~MapIterator() { CancelRest(); }

  // The next item's result (or its failure), waiting until the map's deadline. kOutOfRange after
  // the last item, or after a timeout ended the map. On the deadline, kDeadlineExceeded "Map:
  // <task> not done after <timeout> (the map's overall timeout)"; that item and every later one
  // are cancelled (those already running go on, unobserved) and the map ends.
  absl::StatusOr<R> Next() {
    if (!status_.ok()) return status_;
    if (ended_ || next_ >= submitted_) return absl::OutOfRangeError("Map: no more results");
    if (submitted_ < count_) source_->Submit(submitted_++);  // keep buffersize queued
    const size_t i = next_;
    if (!source_->Wait(i, deadline_)) {
      std::string what = source_->Describe(i);
      CancelRest();
      return absl::DeadlineExceededError(absl::StrCat("Map: ", what, " not done after ",
                                                      absl::FormatDuration(timeout_),
                                                      " (the map's overall timeout)"));
    }
    ++next_;
    return source_->Take(i);
  }
  // Number of items.
  size_t size() const { return count_; }

 private:
  void CancelRest() {
    if (!ended_ && source_ != nullptr && next_ < submitted_) source_->Cancel(next_, submitted_);
    ended_ = true;
  }

  size_t count_ = 0;
  absl::Duration timeout_;
  Deadline deadline_ = Deadline::Never();
  size_t buffersize_ = 0;
  std::unique_ptr<MapSource<R>> source_;
  absl::Status status_;
  size_t next_ = 0;       // the next item to yield
  size_t submitted_ = 0;  // items [next_, submitted_) are submitted, not yet yielded
  bool ended_ = false;
};

namespace futures_internal {

// Calls fn(args...) (arguments moved in) and turns what it returns into the task's result: T,
// absl::StatusOr<T>, or Unit for void / absl::Status. What it throws becomes kUnknown "<task>
// threw <type>: <what()>". Never throws.
template <typename R, typename Fn, typename Tuple>
absl::StatusOr<R> InvokeTask(Fn& fn, Tuple& args, absl::string_view description) noexcept {
  using Raw = std::remove_cvref_t<decltype(std::apply(fn, std::move(args)))>;
  try {
    if constexpr (std::is_void_v<Raw>) {
      std::apply(fn, std::move(args));
      return Unit{};
    } else if constexpr (std::is_same_v<Raw, absl::Status>) {
      absl::Status s = std::apply(fn, std::move(args));
      if (!s.ok()) return s;
      return Unit{};
    } else if constexpr (std::is_same_v<Raw, absl::StatusOr<R>>) {
      return std::apply(fn, std::move(args));
    } else {
      return R(std::apply(fn, std::move(args)));
    }
  } catch (...) {
    return absl::UnknownError(absl::StrCat(description, " threw ", CurrentExceptionDescription()));
  }
}

}  // namespace futures_internal
}  // namespace mp

#endif  // MP_FUTURES_EXECUTOR_H_
