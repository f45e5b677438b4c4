// Copyright 2026 The mp Authors.

#include "pool/job.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace mp {
namespace pool_internal {

uint32_t Job::AddBlobLocked(const std::shared_ptr<const std::string>& blob) {
  blobs_.push_back(blob);
  return static_cast<uint32_t>(blobs_.size() - 1);
}

void Job::AddLocked(size_t first, Segment seg) {
  const size_t count = seg.count;
  if (count == 0) return;
  std::memset(done_.data() + first, 1, count);
  done_count_ += count;
  if (!seg.status.ok()) ++failed_;
  segments_.emplace(first, std::move(seg));
  completed_.emplace_back(first, count);
  completed_end_.push_back(done_count_);
}

template <typename F>
void Job::ForEachUndoneRunLocked(size_t first, size_t count, F f) {
  const size_t end = first + count;
  size_t i = first;
  while (i < end) {
    const void* undone = std::memchr(done_.data() + i, 0, end - i);
    if (undone == nullptr) return;
    i = static_cast<const uint8_t*>(undone) - done_.data();
    const void* next_done = std::memchr(done_.data() + i, 1, end - i);
    const size_t j =
        next_done == nullptr ? end : static_cast<const uint8_t*>(next_done) - done_.data();
    f(i, j);  // may mark [i, j) done
    i = j;
  }
}

void Job::FailRunsLocked(size_t first, size_t count, const absl::Status& status) {
  ForEachUndoneRunLocked(first, count, [&](size_t i, size_t j) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Segment seg;
    seg.count = j - i;
    seg.status = status;
    AddLocked(i, std::move(seg));
  });
}

const Job::Segment& Job::SegmentOfLocked(size_t index, size_t* first) const {
  auto it = segments_.upper_bound(index);
  --it;  // done items always lie in a segment starting at or before them
  *first = it->first;
  return it->second;
}

void Job::Finish(size_t index, std::shared_ptr<const std::string> blob, size_t offset,
                 size_t length, absl::Status status) {
  bool wake;
  DoneHooks hooks;
  {
    MutexLock lock(&mu_);
    if (done_[index]) return;
    Segment seg;
    seg.count = 1;
    if (!status.ok() || blob == nullptr) {
      seg.status = status.ok() ? absl::InternalError(what_ + ": a result without its message")
                               : std::move(status);
    } else {
      seg.blob = AddBlobLocked(blob);
      seg.spans.emplace_back(static_cast<uint32_t>(offset), static_cast<uint32_t>(length));
    }
    AddLocked(index, std::move(seg));
    wake = WakeNeededLocked();
    TakeHooksIfDoneLocked(hooks);
  }
  if (wake) cv_.notify_all();
  RunHooks(hooks);
}

void Job::FinishFixed(size_t first, size_t count, const std::shared_ptr<const std::string>& blob,
                      size_t offset, size_t stride) {
  bool wake;
  DoneHooks hooks;
  {
    MutexLock lock(&mu_);
    const uint32_t b = AddBlobLocked(blob);
    // Items a failure already settled (a worker death) keep that outcome: add the undone runs.
    ForEachUndoneRunLocked(first, count,
                           [&](size_t i, size_t j) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                             Segment seg;
                             seg.count = j - i;
                             seg.blob = b;
                             seg.fixed = true;
                             seg.offset = static_cast<uint32_t>(offset + (i - first) * stride);
                             seg.stride = static_cast<uint32_t>(stride);
                             AddLocked(i, std::move(seg));
                           });
    wake = WakeNeededLocked();
    TakeHooksIfDoneLocked(hooks);
  }
  if (wake) cv_.notify_all();
  RunHooks(hooks);
}

void Job::FinishRange(size_t first, const std::shared_ptr<const std::string>& blob,
                      std::vector<Finished>& results) {
  bool wake;
  DoneHooks hooks;
  {
    MutexLock lock(&mu_);
    const uint32_t b = AddBlobLocked(blob);
    // Within each run of undone items: a failed task is a segment of its own, and each stretch of
    // successful ones is one segment of spans.
    ForEachUndoneRunLocked(first, results.size(),
                           [&](size_t run_begin, size_t run_end)
                               ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                                 size_t i = run_begin - first;
                                 const size_t end = run_end - first;
                                 while (i < end) {
                                   Segment seg;
                                   if (!results[i].status.ok()) {
                                     seg.count = 1;
                                     seg.status = std::move(results[i].status);
                                     AddLocked(first + i, std::move(seg));
                                     ++i;
                                     continue;
                                   }
                                   size_t j = i;
                                   seg.blob = b;
                                   for (; j < end && results[j].status.ok(); ++j) {
                                     seg.spans.emplace_back(results[j].offset, results[j].length);
                                   }
                                   seg.count = j - i;
                                   AddLocked(first + i, std::move(seg));
                                   i = j;
                                 }
                               });
    wake = WakeNeededLocked();
    TakeHooksIfDoneLocked(hooks);
  }
  if (wake) cv_.notify_all();
  RunHooks(hooks);
}

void Job::FailUnfinished(const absl::Status& status) {
  bool wake;
  DoneHooks hooks;
  {
    MutexLock lock(&mu_);
    if (done_count_ == done_.size()) return;
    FailRunsLocked(0, done_.size(), status);
    wake = WakeNeededLocked();
    TakeHooksIfDoneLocked(hooks);
  }
  if (wake) cv_.notify_all();
  RunHooks(hooks);
}

bool Job::AddDoneHook(DoneHook&& hook) {
  {
    MutexLock lock(&mu_);
    if (done_count_ != done_.size()) {
      hooks_.push_back(std::move(hook));
      return true;
    }
  }
  return false;
}

bool Job::AnyDone() const {
  MutexLock lock(&mu_);
  return done_count_ > 0;
}

void Job::TakeHooksIfDoneLocked(DoneHooks& out) {
  if (done_count_ == done_.size() && !hooks_.empty()) out.swap(hooks_);
}

void Job::RunHooks(DoneHooks& hooks) {
  for (DoneHook& hook : hooks) std::move(hook)();
}

bool Job::Ready() const {
  MutexLock lock(&mu_);
  return done_count_ == done_.size();
}

absl::Status CheckBatch(const FdTable& table, const Batch& batch) {
  if (!table.fds().empty() || !table.fork_only().empty()) {
    return absl::InvalidArgumentError(
        "Pool: task arguments hold descriptors or shared objects (a Lock, Queue, Connection...), "
        "which tasks cannot carry; share them with the workers another way (a SharedMemory name, "
        "a Listener address)");
  }
  if (batch.bytes.size() > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("Pool: task arguments of ", batch.bytes.size(),
                                                   " bytes in one call (max 4 GiB)"));
  }
  return absl::OkStatus();
}

bool Job::WaitAll(Deadline deadline) const {
  MutexLock lock(&mu_);
  return mu_.Await(cv_, deadline, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_count_ == done_.size();
  });
}

bool Job::WaitItem(size_t index, Deadline deadline) const {
  MutexLock lock(&mu_);
  ++item_waiters_;
  const bool done = mu_.Await(cv_, deadline, [this, index]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_[index] != 0;
  });
  --item_waiters_;
  return done;
}

absl::Status Job::ItemResult(size_t index, absl::Span<const uint8_t>* payload,
                             std::shared_ptr<const std::string>* keep) const {
  MutexLock lock(&mu_);
  if (!done_[index]) return absl::InternalError(absl::StrCat(what_, ": task ", index, " not done"));
  size_t first = 0;
  const Segment& seg = SegmentOfLocked(index, &first);
  if (!seg.status.ok()) return seg.status;
  *keep = blobs_[seg.blob];
  *payload = RunOfLocked(first, seg).Payload(index - first);
  return absl::OkStatus();
}

std::optional<size_t> Job::WaitCompleted(size_t position, Deadline deadline) const {
  MutexLock lock(&mu_);
  ++item_waiters_;
  const bool done = mu_.Await(cv_, deadline, [this, position]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_count_ > position;
  });
  --item_waiters_;
  if (!done) return std::nullopt;
  // The run holding the position-th completion: the first whose running total exceeds it.
  const size_t k =
      static_cast<size_t>(std::upper_bound(completed_end_.begin(), completed_end_.end(), position) -
                          completed_end_.begin());
  const size_t before = k == 0 ? 0 : completed_end_[k - 1];
  return completed_[k].first + (position - before);
}

absl::Status Job::FirstFailure() const {
  MutexLock lock(&mu_);
  return FirstFailureLocked();
}

}  // namespace pool_internal
}  // namespace mp
