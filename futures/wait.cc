// Copyright 2026 The mp Authors.

#include "futures/wait.h"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/mutex.h"

namespace mp {
namespace futures_internal {
namespace {

// Records the futures that finish after it was installed, in completion order, and wakes the
// thread waiting on it.
class RecordingWaiter final : public Waiter {
 public:
  void Notify(const CoreBase* core, Completion how) override {
    MutexLock lock(&mu_);
    finished_.emplace_back(core, how);
    cv_.notify_all();
  }

  Mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<const CoreBase*, Completion>> finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::vector<size_t> DistinctFutures(absl::Span<CoreBase* const> cores) {
  std::vector<size_t> out;
  absl::flat_hash_set<const CoreBase*> seen;
  for (size_t i = 0; i < cores.size(); ++i) {
    if (seen.insert(cores[i]).second) out.push_back(i);
  }
  return out;
}

std::vector<bool> WaitCores(absl::Span<CoreBase* const> cores, Deadline deadline,
                            ReturnWhen return_when) {
  const size_t n = cores.size();
  std::vector<bool> done(n, false);
  size_t done_before = 0;
  bool failed_before = false;
  std::vector<CoreBase*> installed;
  RecordingWaiter waiter;
  for (size_t k = 0; k < n; ++k) {
    std::optional<Completion> how =
        cores[k] == nullptr ? std::optional(Completion::kFailed) : cores[k]->AddWaiter(&waiter);
    if (!how.has_value()) {
      installed.push_back(cores[k]);
      continue;
    }
    done[k] = true;
    ++done_before;
    failed_before |= *how == Completion::kFailed;
  }
  if (!installed.empty()) {
    MutexLock lock(&waiter.mu_);
    waiter.mu_.Await(waiter.cv_, deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(waiter.mu_) {
      const size_t done_count = done_before + waiter.finished_.size();
      switch (return_when) {
        case ReturnWhen::kFirstCompleted:
          return done_count > 0;
        case ReturnWhen::kFirstException:
          if (failed_before) return true;
          for (const auto& [core, how] : waiter.finished_) {
            if (how == Completion::kFailed) return true;
          }
          return done_count == n;
        case ReturnWhen::kAllCompleted:
          break;
      }
      return done_count == n;
    });
  }
  for (CoreBase* core : installed) core->RemoveWaiter(&waiter);
  // No future notifies the waiter any more: what it recorded is final.
  absl::flat_hash_map<const CoreBase*, size_t> index;
  for (size_t k = 0; k < n; ++k) index.emplace(cores[k], k);
  MutexLock lock(&waiter.mu_);
  for (const auto& [core, how] : waiter.finished_) done[index.at(core)] = true;
  return done;
}

class AsCompletedState::Impl {
 public:
  Impl(std::vector<CoreBase*> cores, absl::Duration timeout)
      : cores_(std::move(cores)), timeout_(timeout), deadline_(Deadline::After(timeout)) {
    for (size_t k = 0; k < cores_.size(); ++k) {
      index_.emplace(cores_[k], k);
      if (cores_[k] == nullptr || cores_[k]->AddWaiter(&waiter_).has_value()) ready_.push_back(k);
    }
  }
  ~Impl() {
    for (CoreBase* core : cores_) {
      if (core != nullptr) core->RemoveWaiter(&waiter_);
    }
  }

  absl::StatusOr<size_t> Next() {
    if (ready_.empty()) {
      if (yielded_ == cores_.size()) return absl::OutOfRangeError("AsCompleted: no more futures");
      MutexLock lock(&waiter_.mu_);
      waiter_.mu_.Await(waiter_.cv_, deadline_,
                        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(waiter_.mu_) {
                          return !waiter_.finished_.empty();
                        });
      for (const auto& [core, how] : waiter_.finished_) ready_.push_back(index_.at(core));
      waiter_.finished_.clear();
    }
    if (ready_.empty()) {
      const size_t unfinished = cores_.size() - yielded_;
      return absl::DeadlineExceededError(absl::StrCat("AsCompleted: ", unfinished, " (of ",
                                                      cores_.size(), ") futures unfinished after ",
                                                      absl::FormatDuration(timeout_)));
    }
    const size_t k = ready_.front();
    ready_.pop_front();
    ++yielded_;
    return k;
  }

 private:
  const std::vector<CoreBase*> cores_;
  const absl::Duration timeout_;
  const Deadline deadline_;
  absl::flat_hash_map<const CoreBase*, size_t> index_;
  RecordingWaiter waiter_;
  std::deque<size_t> ready_;  // done, not yet yielded
  size_t yielded_ = 0;
};

AsCompletedState::AsCompletedState(std::vector<CoreBase*> cores, absl::Duration timeout)
    : impl_(std::make_unique<Impl>(std::move(cores), timeout)) {}

AsCompletedState::~AsCompletedState() = default;

absl::StatusOr<size_t> AsCompletedState::Next() { return impl_->Next(); }

}  // namespace futures_internal
}  // namespace mp
