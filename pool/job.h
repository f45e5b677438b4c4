// Copyright 2026 The mp Authors.
//
// pool/job.h — the state of one submitted call (internal to mp): its tasks' encoded arguments
// (Batch) and their results as they finish (Job), shared by the engine, which records results, and
// the faces (Pool, ProcessPoolExecutor), which wait for them and decode them.

#ifndef MP_POOL_JOB_H_
#define MP_POOL_JOB_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/deadline.h"
#include "base/mutex.h"
#include "pool/task.h"
#include "serialize/codec.h"
#include "serialize/fd.h"

namespace mp {
namespace pool_internal {

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
  using Finished = TaskOutcome;
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
  // Whether some item is done (finished or failed).
  bool AnyDone() const;

  // A hook runs once, when the job's last item is recorded, in the thread that records it (the
  // engine's manager thread: its result handling, a dead worker's settlement, Terminate, Cancel),
  // after the job's lock is released (it may call the job's methods). Hooks run in the order they
  // were added; a hook must not throw or block (the manager thread serves every job).
  using DoneHook = absl::AnyInvocable<void() &&>;
  // A job's hooks: most have one (a future's), kept without a heap allocation.
  using DoneHooks = absl::InlinedVector<DoneHook, 1>;
  // Takes `hook` (moves from it) and returns true while the job is not done; returns false and
  // leaves `hook` untouched when the job is already done: the caller then runs it itself, in its
  // own thread, so that a hook added late still runs once.
  bool AddDoneHook(DoneHook&& hook);
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
  // Moves the hooks into `out` once every item is done.
  void TakeHooksIfDoneLocked(DoneHooks& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void RunHooks(DoneHooks& hooks);
  // Whether a change must wake the waiters: everything is done (WaitAll), or someone waits for
  // single items (WaitItem, WaitCompleted). A Map's caller is woken once, not per chunk.
  bool WakeNeededLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_count_ == done_.size() || item_waiters_ > 0;
  }

  const std::string what_;
  const size_t size_;  // items
  mutable Mutex mu_;
  mutable std::condition_variable cv_;
  // Small jobs (a Submit's one item, one reply) keep these without heap allocations.
  absl::InlinedVector<uint8_t, 16> done_ ABSL_GUARDED_BY(mu_);  // 1 per finished item
  size_t done_count_ ABSL_GUARDED_BY(mu_) = 0;
  size_t failed_ ABSL_GUARDED_BY(mu_) = 0;                   // failure segments
  std::map<size_t, Segment> segments_ ABSL_GUARDED_BY(mu_);  // by first item
  absl::InlinedVector<std::shared_ptr<const std::string>, 1> blobs_
      ABSL_GUARDED_BY(mu_);  // result messages
  // Runs in completion order (first, count) and the running total after each.
  absl::InlinedVector<std::pair<size_t, size_t>, 1> completed_ ABSL_GUARDED_BY(mu_);
  absl::InlinedVector<size_t, 1> completed_end_ ABSL_GUARDED_BY(mu_);
  mutable int item_waiters_ ABSL_GUARDED_BY(mu_) = 0;  // threads in WaitItem or WaitCompleted
  DoneHooks hooks_ ABSL_GUARDED_BY(mu_);               // to run once all items are done
};

template <typename T>
absl::StatusOr<T> DecodeResult(absl::Span<const uint8_t> payload) {
  T out{};
  ByteReader r(payload);
  if (absl::Status s = Codec<T>::Decode(r, out); !s.ok()) return s;
  if (r.remaining() != 0) return absl::InternalError("Pool: trailing bytes after a task result");
  return out;
}

// Every item's result of a done job, in item order (a run of raw fixed-size results is one copy);
// the lowest failed item's status if one failed.
template <typename E>
absl::StatusOr<std::vector<E>> DecodeResults(const Job& job) {
  std::vector<E> out;
  out.reserve(job.size());
  absl::Status s = job.ForEachRun([&out](const Job::Run& run) -> absl::Status {
    if constexpr (codec_internal::kBulkCopyable<E>) {
      if (run.fixed && run.stride == sizeof(E)) {
        const size_t at = out.size();
        out.resize(at + run.count);
        std::memcpy(out.data() + at, run.data, run.count * sizeof(E));
        return absl::OkStatus();
      }
    }
    for (size_t k = 0; k < run.count; ++k) {
      absl::StatusOr<E> v = DecodeResult<E>(run.Payload(k));
      if (!v.ok()) return v.status();
      out.push_back(*std::move(v));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
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

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_JOB_H_
