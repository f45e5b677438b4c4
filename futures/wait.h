// Copyright 2026 The mp Authors.
//
// futures/wait.h — waiting for several futures at once: CPython's concurrent.futures.wait and
// as_completed. The futures may come from different executors, and may be of different types
// (pass AnyFuture handles: std::vector<mp::AnyFuture>{f_int, f_string}).
//
//   std::vector<mp::Future<int64_t>> fs = ...;
//   for (mp::AsCompletedIterator<mp::Future<int64_t>> it = mp::AsCompleted(fs,
//   absl::Seconds(10));;) {
//     absl::StatusOr<mp::Future<int64_t>> f = it.Next();
//     if (absl::IsOutOfRange(f.status())) break;       // every future was yielded
//     if (!f.ok()) return f.status();                  // "AsCompleted: 2 (of 5) futures
//     unfinished" Use(f->Result());
//   }
//   mp::DoneAndNotDone<mp::Future<int64_t>> r =
//       mp::WaitFutures(fs, absl::Seconds(10), mp::ReturnWhen::kFirstException);
//
// CPython -> mp:
//   wait(fs, timeout, return_when)   WaitFutures(fs, timeout, ReturnWhen::k...) -> {done, not_done}
//   FIRST_COMPLETED / FIRST_EXCEPTION / ALL_COMPLETED
//                                    ReturnWhen::kFirstCompleted / kFirstException / kAllCompleted
//   as_completed(fs, timeout)        AsCompleted(fs, timeout) -> AsCompletedIterator (Next(), or
//                                    a range-for over absl::StatusOr<F>)
//   TimeoutError "N (of M) futures unfinished"
//                                    kDeadlineExceeded "AsCompleted: N (of M) futures unfinished
//                                    after <timeout>"
//
// Neither polls: each installs a waiter on every future's state (CPython's _Waiter), which the
// thread that finishes or cancels a future wakes. Duplicates count once (CPython takes a set):
// done and not_done list each distinct future once, in the order of its first appearance in the
// input; AsCompleted yields each distinct future once. An empty future (default-constructed) is a
// done future that failed.
//
// Thread safety: the functions may be called from any thread; an AsCompletedIterator is for one
// consumer at a time.

#ifndef MP_FUTURES_WAIT_H_
#define MP_FUTURES_WAIT_H_

#include <cstddef>
#include <iterator>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/deadline.h"
#include "futures/future.h"

namespace mp {

enum class ReturnWhen {
  kFirstCompleted,  // any future finishes or is cancelled
  kFirstException,  // any future fails (a cancelled one does not count), or all are done
  kAllCompleted,    // all are done
};

template <typename F>
struct DoneAndNotDone {
  std::vector<F> done;
  std::vector<F> not_done;
};

namespace futures_internal {

// The distinct futures of `futures` (by identity), in first-appearance order, as indices into it.
std::vector<size_t> DistinctFutures(absl::Span<CoreBase* const> cores);

// Waits as WaitFutures does on distinct `cores` (nullptr: an empty future); returns which are done.
std::vector<bool> WaitCores(absl::Span<CoreBase* const> cores, Deadline deadline,
                            ReturnWhen return_when);

// The waiter behind AsCompletedIterator over distinct `cores`.
class AsCompletedState {
 public:
  AsCompletedState(std::vector<CoreBase*> cores, absl::Duration timeout);
  ~AsCompletedState();
  AsCompletedState(const AsCompletedState&) = delete;
  AsCompletedState& operator=(const AsCompletedState&) = delete;

  // The index of the next future to finish (see AsCompletedIterator::Next).
  absl::StatusOr<size_t> Next();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

template <typename F>
std::vector<CoreBase*> CoresOf(absl::Span<const F> futures) {
  std::vector<CoreBase*> cores;
  cores.reserve(futures.size());
  for (const F& f : futures) cores.push_back(f.core().get());
  return cores;
}

}  // namespace futures_internal

// CPython's wait(fs, timeout, return_when): waits until `return_when` holds or `timeout` passes,
// and returns the futures done by then and the others. Never fails: on a timeout not_done holds
// what did not finish. With no futures it returns at once.
template <typename F>
DoneAndNotDone<F> WaitFutures(absl::Span<const F> futures,
                              absl::Duration timeout = absl::InfiniteDuration(),
                              ReturnWhen return_when = ReturnWhen::kAllCompleted) {
  static_assert(std::is_base_of_v<AnyFuture, F>,
                "mp::WaitFutures: F must be a Future or AnyFuture");
  const Deadline deadline = Deadline::After(timeout);
  const std::vector<futures_internal::CoreBase*> all = futures_internal::CoresOf(futures);
  const std::vector<size_t> distinct = futures_internal::DistinctFutures(all);
  std::vector<futures_internal::CoreBase*> cores;
  cores.reserve(distinct.size());
  for (size_t i : distinct) cores.push_back(all[i]);
  const std::vector<bool> done = futures_internal::WaitCores(cores, deadline, return_when);
  DoneAndNotDone<F> out;
  for (size_t k = 0; k < distinct.size(); ++k) {
    (done[k] ? out.done : out.not_done).push_back(futures[distinct[k]]);
  }
  return out;
}
template <typename F>
DoneAndNotDone<F> WaitFutures(const std::vector<F>& futures,
                              absl::Duration timeout = absl::InfiniteDuration(),
                              ReturnWhen return_when = ReturnWhen::kAllCompleted) {
  return WaitFutures(absl::Span<const F>(futures), timeout, return_when);
}

// CPython's as_completed: the distinct futures in the order they finish (or are cancelled), those
// already done first, in input order.
template <typename F>
class AsCompletedIterator {
 public:
  AsCompletedIterator(AsCompletedIterator&&) noexcept = default;
  AsCompletedIterator& operator=(AsCompletedIterator&&) noexcept = default;

  // The next future to be done, waiting until the overall deadline (AsCompleted's timeout, counted
  // from the AsCompleted call) for one. kOutOfRange once every distinct future was yielded
  // (CPython's StopIteration). kDeadlineExceeded "AsCompleted: N (of M) futures unfinished after
  // <timeout>" when the deadline passed with none done: a later Next still yields the futures that
  // finished since (without waiting), so a caller may go on after a timeout.
  absl::StatusOr<F> Next() {
    absl::StatusOr<size_t> k = state_->Next();
    if (!k.ok()) return k.status();
    return futures_[*k];
  }
  // Number of distinct futures.
  size_t size() const { return futures_.size(); }

  // Range-for over absl::StatusOr<F>: the futures as Next yields them; it ends after the last one,
  // or after yielding a kDeadlineExceeded status (as CPython's iterator ends with TimeoutError).
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = absl::StatusOr<F>;
    using difference_type = std::ptrdiff_t;
    using pointer = const value_type*;
    using reference = const value_type&;

    iterator() = default;
    reference operator*() const { return current_; }
    pointer operator->() const { return &current_; }
    iterator& operator++() {
      if (!current_.ok()) {
        owner_ = nullptr;
      } else {
        Advance();
      }
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) { return a.owner_ == b.owner_; }

   private:
    friend class AsCompletedIterator;
    explicit iterator(AsCompletedIterator* owner) : owner_(owner) { Advance(); }
    void Advance() {
      current_ = owner_->Next();
      if (absl::IsOutOfRange(current_.status())) owner_ = nullptr;
    }
    AsCompletedIterator* owner_ = nullptr;
    absl::StatusOr<F> current_ = absl::OutOfRangeError("AsCompleted: end");
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

  // Made by AsCompleted: the distinct futures and their states, in the same order.
  AsCompletedIterator(std::vector<F> futures, std::vector<futures_internal::CoreBase*> cores,
                      absl::Duration timeout)
      : futures_(std::move(futures)),
        state_(std::make_unique<futures_internal::AsCompletedState>(std::move(cores), timeout)) {}

 private:
  std::vector<F> futures_;  // distinct
  std::unique_ptr<futures_internal::AsCompletedState> state_;
};

template <typename F>
AsCompletedIterator<F> AsCompleted(absl::Span<const F> futures,
                                   absl::Duration timeout = absl::InfiniteDuration()) {
  static_assert(std::is_base_of_v<AnyFuture, F>,
                "mp::AsCompleted: F must be a Future or AnyFuture");
  const std::vector<futures_internal::CoreBase*> all = futures_internal::CoresOf(futures);
  std::vector<F> distinct;
  std::vector<futures_internal::CoreBase*> cores;
  for (size_t i : futures_internal::DistinctFutures(all)) {
    distinct.push_back(futures[i]);
    cores.push_back(futures[i].core().get());
  }
  return AsCompletedIterator<F>(std::move(distinct), std::move(cores), timeout);
}
template <typename F>
AsCompletedIterator<F> AsCompleted(const std::vector<F>& futures,
                                   absl::Duration timeout = absl::InfiniteDuration()) {
  return AsCompleted(absl::Span<const F>(futures), timeout);
}

}  // namespace mp

#endif  // MP_FUTURES_WAIT_H_
