// Copyright 2026 The mp Authors.
//
// The engine's per-task time limits: a worker whose running task is over its limit is killed from
// the pool's side (a stopped or hung worker cannot police itself) and replaced.

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "pool/engine_impl.h"

namespace mp {
namespace pool_internal {

// For each worker holding a timed chunk: when the worker runs one of that chunk's tasks (Slot's
// time-limit record names the chunk's number), that task's limit ends at its start plus the
// chunk's timeout. When it runs none of them (the chunk is queued behind another, or between two
// tasks), any of them starts later than now, so its limit ends after now + the timeout: looking
// again then is never late. Workers without a timed chunk cost nothing, and with no timed chunk in
// flight the manager does not wake for time limits at all.
int64_t Engine::Impl::EnforceTimeouts() {
  int64_t next = INT64_MAX;
  const int64_t now = MonotonicNowNs();
  for (Worker& w : workers_) {
    if (w.timed_out.has_value()) continue;  // killed: its sentinel will tell
    const Chunk* timed = nullptr;           // the timed chunk it holds that runs now, if any
    int64_t shortest = 0;                   // the shortest limit of the timed chunks it holds
    TimedTask t;
    const bool read = ReadTimedTask(SlotAt(w.slot), &t);
    for (const Chunk& c : w.outstanding) {
      if (c.timeout_ns == 0) continue;
      shortest = shortest == 0 ? c.timeout_ns : std::min(shortest, c.timeout_ns);
      if (read && t.chunk == c.number && t.index >= c.first && t.index < c.first + c.count) {
        timed = &c;
      }
    }
    if (shortest == 0) continue;
    if (!read) {
      // The worker is writing the record (a few instructions): look again shortly. A worker
      // stopped in the middle of it for a whole limit is stuck, and is killed like one over it.
      if (w.record_busy_since == 0) w.record_busy_since = now;
      if (now - w.record_busy_since < shortest) {
        next = std::min(next, now + int64_t{1000} * 1000);
        continue;
      }
      const Chunk& c = w.outstanding.front();
      const uint64_t at = SlotAt(w.slot)->index.load(std::memory_order_relaxed);
      w.timed_out = Worker::TimedOut{
          c.job_id, at,
          absl::DeadlineExceededError(absl::StrCat(
              "Pool: task ", at, " of ", c.job->what(), " exceeded its time limit of ",
              absl::FormatDuration(absl::Nanoseconds(shortest)), " in worker pid ", w.pid,
              ", which was killed (it stopped while recording the task's start)"))};
      w.launched->Kill().IgnoreError();
      continue;
    }
    w.record_busy_since = 0;
    if (timed == nullptr) {
      next = std::min(next, now + shortest);
      continue;
    }
    const int64_t limit_ends = t.started_ns + timed->timeout_ns;
    if (limit_ends > now) {
      next = std::min(next, limit_ends);
      continue;
    }
    const absl::Duration limit = absl::Nanoseconds(timed->timeout_ns);
    w.timed_out = Worker::TimedOut{
        timed->job_id, t.index,
        absl::DeadlineExceededError(absl::StrCat(
            "Pool: task ", t.index, " of ", timed->job->what(), " exceeded its time limit of ",
            absl::FormatDuration(limit), " (running for ",
            absl::FormatDuration(absl::Nanoseconds(now - t.started_ns)), ") in worker pid ", w.pid,
            ", which was killed"))};
    w.launched->Kill().IgnoreError();  // its sentinel brings HandleExit, which replaces it
  }
  return next;
}

}  // namespace pool_internal
}  // namespace mp
