// Copyright 2026 The mp Authors.
//
// The engine's dispatch policy: which worker gets which chunk, and when chunks come back.

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pool/engine_impl.h"

namespace mp {
namespace pool_internal {

size_t Engine::Impl::ChunkSize(const Chunk& c) {
  const Batch& b = *c.batch;
  return 32 + c.function->size() +
         (b.fixed_size > 0 ? c.count * b.fixed_size
                           : b.offsets[c.first + c.count] - b.offsets[c.first] + 5 * c.count);
}

void Engine::Impl::AppendChunk(const Chunk& c, std::string& m) {
  const Batch& b = *c.batch;
  const ChunkHeader h{0, c.job_id, c.first, static_cast<uint32_t>(c.count)};
  const uint8_t flags = c.timeout_ns > 0 ? kTimedChunk : 0;
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(b.bytes.data());
  if (b.fixed_size > 0) {
    EncodeFixedChunk(h, flags, *c.function, static_cast<uint32_t>(b.fixed_size),
                     bytes + c.first * b.fixed_size, m);
  } else {
    EncodeChunk(h, flags, *c.function, bytes, b.offsets.data() + c.first, m);
  }
}

void Engine::Impl::SendAssigned(Worker& w) {
  // Every chunk sent before these was answered, and none was taken back unread: the worker has read
  // everything sent to it (a stop is never followed by chunks).
  bool all_read = w.outstanding.size() == w.unsent && !w.took_back;
  while (w.unsent > 0) {
    const size_t n = std::min<size_t>(w.unsent, kMaxChunksPerMessage);
    const size_t from = w.outstanding.size() - w.unsent;
    size_t size = 5;
    for (size_t k = from; k < from + n; ++k) size += 4 + ChunkSize(w.outstanding[k]);
    std::string m = buffers_->Take(size);
    m.clear();
    if (n == 1) {
      AppendChunk(w.outstanding[from], m);
    } else {
      StartChunks(m);
      for (size_t k = from; k < from + n; ++k) {
        const size_t at = StartChunksPart(m);
        AppendChunk(w.outstanding[k], m);
        FinishChunksPart(at, m);
      }
      FinishChunks(static_cast<uint32_t>(n), m);
    }
    sender_->Send(w.out, std::move(m), all_read);
    all_read = false;
    w.unsent -= n;
  }
}

bool Engine::Impl::MayTake(const Worker& w) const {
  return !w.stopping && !w.timed_out.has_value() &&
         (options_.max_tasks_per_child == 0 ||
          w.chunks_done + static_cast<int64_t>(w.outstanding.size()) <
              options_.max_tasks_per_child);
}

bool Engine::Impl::ReadEverything(const Worker& w) {
  return !sender_->Queued(*w.out) && w.transport->AllRead();
}

bool Engine::Impl::Idle(Worker& w) {
  if (!MayTake(w) || !w.outstanding.empty()) return false;
  if (w.took_back) {
    if (!ReadEverything(w)) return false;
    w.took_back = false;
  }
  return true;
}

std::optional<Chunk> Engine::Impl::TakePending() {
  MutexLock lock(&mu_);
  if (pending_.empty()) return std::nullopt;
  Chunk c = std::move(pending_.front());
  pending_.pop_front();
  return c;
}

bool Engine::Impl::PendingEmpty() const {
  MutexLock lock(&mu_);
  return pending_.empty();
}

void Engine::Impl::Assign(Worker& w, Chunk c) {
  c.number = ++w.sent;
  c.sent_ns = MonotonicNowNs();
  w.outstanding.push_back(std::move(c));
  ++w.unsent;  // SendAssigned sends it, with the others assigned to `w` in this Dispatch
}

bool Engine::Impl::AssignToIdle() {
  bool idle_left = false;
  for (Worker& w : workers_) {
    if (!Idle(w)) continue;
    std::optional<Chunk> c = TakePending();
    if (!c.has_value()) {
      idle_left = true;
      continue;
    }
    Assign(w, *std::move(c));
  }
  return idle_left;
}

bool Engine::Impl::TakeBackUnstarted() {
  const int64_t now = MonotonicNowNs();
  std::deque<Chunk> back;
  for (Worker& w : workers_) {
    if (w.outstanding.empty()) continue;
    std::atomic<uint64_t>& claimed = SlotAt(w.slot)->claimed;
    uint64_t c = claimed.load(std::memory_order_acquire);
    bool taken = false;
    while (c < w.sent) {
      const bool running_one = w.outstanding.front().number <= c;
      if (!running_one && now - w.outstanding.front().sent_ns < kStartGraceNs) break;
      if (claimed.compare_exchange_weak(c, w.sent, std::memory_order_acq_rel)) {
        taken = true;
        break;
      }
    }
    if (!taken) continue;
    // Chunks up to c were started; the ones after it are ours again.
    auto first_back = std::find_if(w.outstanding.begin(), w.outstanding.end(),
                                   [c](const Chunk& chunk) { return chunk.number > c; });
    for (auto it = first_back; it != w.outstanding.end(); ++it) back.push_back(std::move(*it));
    w.outstanding.erase(first_back, w.outstanding.end());
    w.took_back = true;
  }
  if (back.empty()) return false;
  // Back to the front of the queue, oldest submission first.
  std::stable_sort(back.begin(), back.end(), [](const Chunk& a, const Chunk& b) {
    return a.job_id != b.job_id ? a.job_id < b.job_id : a.first < b.first;
  });
  MutexLock lock(&mu_);
  for (auto it = back.rbegin(); it != back.rend(); ++it) pending_.push_front(std::move(*it));
  return true;
}

int64_t Engine::Impl::NextCheck(int64_t at) {
  const int64_t now = MonotonicNowNs();
  bool work_waits = !PendingEmpty();
  bool took_back = false;
  for (const Worker& w : workers_) {
    took_back = took_back || (w.took_back && w.outstanding.empty());
    if (w.outstanding.empty()) continue;
    const uint64_t claimed = SlotAt(w.slot)->claimed.load(std::memory_order_acquire);
    if (claimed >= w.sent) continue;  // everything it holds has started
    work_waits = true;
    const Chunk& front = w.outstanding.front();
    if (claimed < front.number && front.sent_ns + kStartGraceNs > now) {
      at = std::min(at, front.sent_ns + kStartGraceNs);
    }
  }
  if (took_back && work_waits) at = std::min(at, now + kStartGraceNs);
  return at;
}

void Engine::Impl::Dispatch() {
  bool idle_left = AssignToIdle();
  if (idle_left && workers_.size() > 1 && PendingEmpty() && TakeBackUnstarted()) {
    idle_left = AssignToIdle();
  }
  if (!idle_left) {
    // Workers down to kRefillHeldChunks are topped up to kMaxHeldChunks, a round over them at a
    // time so that the queue spreads evenly.
    std::vector<Worker*> refill;
    for (Worker& w : workers_) {
      if (w.outstanding.size() <= kRefillHeldChunks && MayTake(w)) refill.push_back(&w);
    }
    bool more = !refill.empty();
    while (more) {
      more = false;
      for (Worker* w : refill) {
        if (w->outstanding.size() >= kMaxHeldChunks || !MayTake(*w)) continue;
        std::optional<Chunk> c = TakePending();
        if (!c.has_value()) break;
        Assign(*w, *std::move(c));
        more = true;
      }
    }
  }
  for (Worker& w : workers_) SendAssigned(w);
  for (Worker& w : workers_) {
    if (w.stopping) continue;
    bool stop = options_.max_tasks_per_child > 0 && w.chunks_done >= options_.max_tasks_per_child;
    if (!stop && w.outstanding.empty()) {
      MutexLock lock(&mu_);
      stop = closed_ && pending_.empty();
    }
    if (stop && w.outstanding.empty()) {
      sender_->Send(w.out, EncodeStop());
      w.stopping = true;
    }
  }
}

bool Engine::Impl::JobStarted(const Job& job) {
  if (job.AnyDone()) return true;
  for (const Worker& w : workers_) {
    const uint64_t claimed = SlotAt(w.slot)->claimed.load(std::memory_order_acquire);
    for (const Chunk& c : w.outstanding) {
      if (c.job.get() == &job && c.number <= claimed) return true;
    }
  }
  return false;
}

// All or nothing: the job's unstarted chunks come back from the workers holding them with
// Slot::claimed's compare-and-swap, which takes back every unstarted chunk of that worker (other
// jobs' chunks go back to the front of the queue, as TakeBackUnstarted's do). Should a worker have
// claimed one of the job's chunks meanwhile, everything taken back is queued again and nothing is
// cancelled.
bool Engine::Impl::CancelJob(Job& job) {
  if (JobStarted(job)) return false;
  std::deque<Chunk> back;
  bool started = false;
  for (Worker& w : workers_) {
    const bool holds = std::any_of(w.outstanding.begin(), w.outstanding.end(),
                                   [&job](const Chunk& c) { return c.job.get() == &job; });
    if (!holds) continue;
    std::atomic<uint64_t>& claimed = SlotAt(w.slot)->claimed;
    uint64_t c = claimed.load(std::memory_order_acquire);
    while (c < w.sent && !claimed.compare_exchange_weak(c, w.sent, std::memory_order_acq_rel)) {
    }
    // Chunks up to c were started; the ones after it are ours again.
    auto first_back = std::find_if(w.outstanding.begin(), w.outstanding.end(),
                                   [c](const Chunk& chunk) { return chunk.number > c; });
    for (auto it = w.outstanding.begin(); it != first_back; ++it) {
      started = started || it->job.get() == &job;
    }
    if (first_back != w.outstanding.end()) w.took_back = true;
    for (auto it = first_back; it != w.outstanding.end(); ++it) back.push_back(std::move(*it));
    w.outstanding.erase(first_back, w.outstanding.end());
  }
  if (!started) {
    back.erase(std::remove_if(back.begin(), back.end(),
                              [&job](const Chunk& c) { return c.job.get() == &job; }),
               back.end());
  }
  std::stable_sort(back.begin(), back.end(), [](const Chunk& a, const Chunk& b) {
    return a.job_id != b.job_id ? a.job_id < b.job_id : a.first < b.first;
  });
  std::deque<Chunk> dropped;  // destroyed outside mu_ (a batch's deleter takes the buffers' lock)
  {
    MutexLock lock(&mu_);
    for (auto it = back.rbegin(); it != back.rend(); ++it) pending_.push_front(std::move(*it));
    if (!started) {
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->job.get() == &job) {
          dropped.push_back(std::move(*it));
          it = pending_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
  if (started) return false;
  job.FailUnfinished(absl::CancelledError(absl::StrCat("Pool: ", job.what(), " was cancelled")));
  return true;
}

}  // namespace pool_internal
}  // namespace mp
