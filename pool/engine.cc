// Copyright 2026 The mp Authors.
//
// The engine's life (start, submit, close, join), its manager loop, the workers' messages and
// deaths.

#include "pool/engine.h"

#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/deadline.h"
#include "base/errno_status.h"
#include "channels/connection.h"
#include "pool/engine_impl.h"
#include "serialize/frame.h"
#include "sync/futex.h"

namespace mp {
namespace pool_internal {
namespace {

std::string DescribeExit(int pid, std::optional<int> code) {
  if (!code.has_value()) return absl::StrCat("worker pid ", pid, " ended");
  if (*code < 0) return absl::StrCat("worker pid ", pid, " died (signal ", -*code, ")");
  return absl::StrCat("worker pid ", pid, " exited (code ", *code, ")");
}

// A time limit in nanoseconds, 0 for an infinite one; kInvalidArgument naming `what` unless > 0.
absl::StatusOr<int64_t> TimeoutNs(absl::Duration timeout, absl::string_view what) {
  if (timeout == absl::InfiniteDuration()) return 0;
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Pool: ", what, " must be > 0 (infinite: none), got ", absl::FormatDuration(timeout)));
  }
  return std::max<int64_t>(1, absl::ToInt64Nanoseconds(timeout));
}

}  // namespace

absl::Status Engine::Impl::StartWorkers() {
  for (int i = 0; i < options_.workers; ++i) {
    absl::StatusOr<Worker> w = StartWorker(i);
    if (!w.ok()) {
      KillAll();
      return w.status();
    }
    workers_.push_back(*std::move(w));
  }
  sender_ = std::make_unique<Sender>(buffers_);
  thread_ = std::thread([this] {
    manager_id_.store(std::this_thread::get_id(), std::memory_order_release);
    Run();
  });
  return absl::OkStatus();
}

absl::Status Engine::Impl::Submit(std::shared_ptr<Job> job, const std::string& function,
                                  Batch batch, size_t chunksize, const SubmitOptions& options) {
  if (chunksize == 0) {
    return absl::InvalidArgumentError(absl::StrCat("Pool: chunksize 0 for ", job->what()));
  }
  const absl::Duration timeout =
      options.timeout == absl::InfiniteDuration() ? options_.task_timeout : options.timeout;
  int64_t timeout_ns = 0;
  if (timeout != absl::InfiniteDuration()) {  // the message is built only for a bad one
    absl::StatusOr<int64_t> t = TimeoutNs(timeout, absl::StrCat("the timeout of ", job->what()));
    if (!t.ok()) return t.status();
    timeout_ns = *t;
  }
  // The batch's bytes go back to the buffers when its last chunk is done.
  const std::shared_ptr<const Batch> shared = Buffers::ShareGivingBack(
      buffers_, std::move(batch), [](Batch& b) -> std::string& { return b.bytes; });
  const uint64_t id = next_job_.fetch_add(1) + 1;
  bool wake = false;
  {
    MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    if (closed_ || terminated_) {
      return absl::FailedPreconditionError(
          absl::StrCat("Pool: ", job->what(), " submitted to a pool that is ",
                       terminated_ ? "terminated" : "closed", " (Pool not running)"));
    }
    // The manager dispatches the whole queue whenever it wakes, and a queue it left non-empty has
    // no worker that could take more: only a first queued chunk needs to wake it.
    wake = pending_.empty();
    for (size_t first = 0; first < shared->size(); first += chunksize) {
      Chunk c{job, id, shared, &function, first, std::min(chunksize, shared->size() - first)};
      c.timeout_ns = timeout_ns;
      pending_.push_back(std::move(c));
    }
  }
  // The first chunk queued: when the manager thread is waiting (it holds work_mu_ otherwise), this
  // thread gives the chunks to workers itself, which saves the hop through the manager before a
  // worker can start. The manager is woken only if it must look again sooner than it planned (a
  // time limit; a grace period while its Wait has no tick, see WaitUntil).
  if (wake && !InEngineThread() && work_mu_.TryLock()) {
    Dispatch();
    wake = LeaveAsGuest(/*arm=*/!options.looked_for);
    work_mu_.Unlock();
  }
  if (wake) Wake();
  return absl::OkStatus();
}

namespace {

// The manager's spin before it sleeps in Wait while workers owe replies: a reply that comes within
// it is taken without the worker's wake-up packet and without the manager's wake from poll(2) (two
// system calls and a scheduler wake-up on the reply path). It yields now and then, so that a worker
// that shares this core runs. Only transports that can tell without a system call take part.
bool AwaitReplyBriefly(absl::Span<WorkerTransport* const> busy) {
  constexpr int64_t kManagerSpinNs = 50'000;
  if (busy.empty()) return false;
  const int64_t until = MonotonicNowNs() + kManagerSpinNs;
  for (int i = 1;; ++i) {
    for (WorkerTransport* t : busy) {
      if (t->HasInputNow()) return true;
    }
    if ((i & 63) == 0) {
      if (MonotonicNowNs() >= until) return false;
      sched_yield();
    } else {
      SpinPause();
    }
  }
}

}  // namespace

int64_t Engine::Impl::WaitUntil(int64_t timed_at) {
  const int64_t now = MonotonicNowNs();
  for (const Worker& w : workers_) {
    if (!w.outstanding.empty()) last_busy_ = now;
  }
  int64_t at = NextCheck(timed_at);
  if (now - last_busy_ < kTickWindowNs) at = std::min(at, now + kStartGraceNs);
  return at;
}

absl::Status Engine::Impl::Join(absl::Duration timeout) {
  const Deadline deadline = Deadline::After(timeout);
  {
    MutexLock lock(&mu_);
    if (!closed_ && !terminated_) {
      return absl::FailedPreconditionError("Pool::Join: call Close or Terminate first");
    }
    if (!mu_.Await(done_cv_, deadline,
                   [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; })) {
      return absl::DeadlineExceededError(
          absl::StrCat("Pool::Join: workers still running after ", absl::FormatDuration(timeout)));
    }
  }
  MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
  return absl::OkStatus();
}

absl::StatusOr<Worker> Engine::Impl::StartWorker(int slot) {
  Slot* s = SlotAt(slot);  // the previous worker of this slot is gone
  s->running.store(0, std::memory_order_relaxed);
  s->job.store(0, std::memory_order_relaxed);
  s->claimed.store(0, std::memory_order_relaxed);
  RecordTimedTask(s, 0, 0, 0);
  WorkerSpec spec;
  spec.index = slot;
  spec.name = absl::StrCat(options_.worker_name, "-", ++worker_count_);
  spec.slots = ShmHandle{slots_, slots_offset_};
  spec.initializer = options_.initializer;
  absl::StatusOr<std::unique_ptr<LaunchedWorker>> launched = launcher_->Start(spec);
  if (!launched.ok()) return launched.status();
  Worker w;
  w.launched = std::shared_ptr<LaunchedWorker>(*std::move(launched));
  w.out = std::make_shared<Outbox>(w.launched);
  w.transport = &w.launched->transport();
  w.slot = slot;
  w.pid = w.launched->pid();
  w.sentinel = w.launched->sentinel();
  MutexLock lock(&mu_);
  pids_.push_back(w.pid);
  return w;
}

absl::Status Engine::Impl::HandleMessage(Worker& w, std::string msg, size_t length) {
  const absl::Span<const uint8_t> bytes = AsBytes(absl::string_view(msg.data(), length));
  if (absl::Status s = DecodeFromWorker(bytes, &from_worker_); !s.ok()) return s;
  const FromWorker& m = from_worker_;
  if (m.kind == kInitFailed) {
    MutexLock lock(&mu_);
    broken_ = absl::FailedPreconditionError(absl::StrCat(
        "Pool: the initializer failed in worker pid ", w.pid, ": ",
        absl::StatusCodeToString(m.init_failure.code()), ": ", m.init_failure.message()));
    return absl::OkStatus();
  }
  if (w.outstanding.empty() || w.outstanding.front().job_id != m.header.job ||
      w.outstanding.front().first != m.header.first ||
      w.outstanding.front().count != m.header.count) {
    return absl::InternalError(
        absl::StrCat("Pool: results of a chunk it does not hold from worker pid ", w.pid));
  }
  Chunk c = std::move(w.outstanding.front());
  w.outstanding.pop_front();
  ++w.chunks_done;
  std::shared_ptr<const std::string> blob = buffers_->Share(std::move(msg));
  if (m.kind == kFixedResults) {
    c.job->FinishFixed(c.first, c.count, blob, m.fixed_offset, m.fixed_size);
  } else {
    c.job->FinishRange(c.first, blob, from_worker_.outcomes);
  }
  return absl::OkStatus();
}

bool Engine::Impl::Drain(Worker& w, bool readable) {
  for (;; readable = false) {
    if (readable) {
      // The caller's Wait just said so: no second poll.
    } else if (w.transport->SeesInputWithoutSystemCall()) {
      // No system call: the worker's end shows in its sentinel and its wake-up descriptor.
      if (!w.transport->HasInputNow()) return true;
    } else {
      absl::StatusOr<bool> ready = w.transport->Readable();
      if (!ready.ok() || !*ready) return ready.ok();
    }
    std::string msg = buffers_->Take(w.last_length);
    msg.resize(msg.capacity());  // the whole buffer receives
    size_t length = 0;
    if (!w.transport->Receive(msg, &length).ok()) return false;
    w.last_length = length;
    if (absl::Status s = HandleMessage(w, std::move(msg), length); !s.ok()) {
      w.launched->Kill().IgnoreError();  // a confused worker is replaced
      return false;
    }
  }
}

void Engine::Impl::HandleExit(size_t index) {
  Worker& w = workers_[index];
  Drain(w);
  const std::optional<int> exit_code = w.launched->Reap();
  const bool clean = w.stopping && w.outstanding.empty() && exit_code == 0;
  // The failures of the tasks it took down, recorded once its replacement (if any) runs: whoever
  // sees such a failure sees the new worker in WorkerPids too.
  struct Failure {
    std::shared_ptr<Job> job;
    size_t index;
    absl::Status status;
  };
  std::vector<Failure> failures;
  if (!clean) {
    const std::string how = w.timed_out.has_value()
                                ? absl::StrCat("worker pid ", w.pid, " was killed for task ",
                                               w.timed_out->index, "'s time limit")
                                : DescribeExit(w.pid, exit_code);
    const Slot* slot = SlotAt(w.slot);
    const bool running = slot->running.load(std::memory_order_acquire) != 0;
    const uint64_t job = slot->job.load(std::memory_order_relaxed);
    const uint64_t at = slot->index.load(std::memory_order_relaxed);
    std::deque<Chunk> requeue;
    for (size_t k = 0; k < w.outstanding.size(); ++k) {
      Chunk& c = w.outstanding[k];
      const bool in_chunk = k == 0 && job == c.job_id && at >= c.first && at < c.first + c.count;
      if (!in_chunk) {
        requeue.push_back(std::move(c));
        continue;
      }
      // Items before `at` ran (their results are lost), `at` killed the worker if it was running,
      // the rest never started.
      for (size_t i = c.first; i < at; ++i) {
        failures.push_back({c.job, i,
                            absl::AbortedError(absl::StrCat(
                                "Pool: ", how, " while running task ", at, " of ", c.job->what(),
                                "; the result of task ", i, " (same chunk) was lost with it"))});
      }
      if (running && w.timed_out.has_value() && w.timed_out->job_id == job &&
          w.timed_out->index == at) {
        failures.push_back({c.job, at, w.timed_out->status});
      } else if (running) {
        failures.push_back({c.job, at,
                            absl::AbortedError(absl::StrCat("Pool: ", how, " while running task ",
                                                            at, " of ", c.job->what()))});
      } else {
        failures.push_back(
            {c.job, at,
             absl::AbortedError(absl::StrCat("Pool: ", how, " after running task ", at, " of ",
                                             c.job->what(), "; its result was lost"))});
      }
      if (at + 1 < c.first + c.count) {
        Chunk rest = c;
        rest.count = c.first + c.count - (at + 1);
        rest.first = at + 1;
        requeue.push_back(std::move(rest));
      }
    }
    MutexLock lock(&mu_);
    for (auto it = requeue.rbegin(); it != requeue.rend(); ++it) pending_.push_front(*it);
  }
  w.outstanding.clear();
  bool replace;
  {
    MutexLock lock(&mu_);
    pids_.erase(std::remove(pids_.begin(), pids_.end(), w.pid), pids_.end());
    replace = broken_.ok() && !terminated_ && (!closed_ || !pending_.empty());
  }
  const int slot_index = w.slot;
  workers_.erase(workers_.begin() + static_cast<ptrdiff_t>(index));
  if (replace) {
    absl::StatusOr<Worker> fresh = StartWorker(slot_index);
    if (fresh.ok()) {
      workers_.push_back(*std::move(fresh));
    } else {
      MutexLock lock(&mu_);
      broken_ = absl::FailedPreconditionError(
          absl::StrCat("Pool: could not start a replacement worker: ", fresh.status().ToString()));
    }
  }
  for (Failure& f : failures) f.job->Finish(f.index, nullptr, 0, 0, std::move(f.status));
}

void Engine::Impl::FailAll(const absl::Status& status) {
  std::deque<Chunk> pending;
  {
    MutexLock lock(&mu_);
    pending.swap(pending_);
  }
  for (Chunk& c : pending) c.job->FailUnfinished(status);
  for (Worker& w : workers_) {
    for (Chunk& c : w.outstanding) c.job->FailUnfinished(status);
    w.outstanding.clear();
  }
}

void Engine::Impl::KillAll() {
  for (Worker& w : workers_) w.launched->Kill().IgnoreError();
  for (Worker& w : workers_) w.launched->Reap();
  workers_.clear();
  MutexLock lock(&mu_);
  pids_.clear();
}

void Engine::Impl::Run() {
  work_mu_.Lock();
  for (;;) {
    bool terminated, closed;
    absl::Status broken;
    {
      MutexLock lock(&mu_);
      terminated = terminated_;
      closed = closed_;
      broken = broken_;
    }
    if (terminated) {
      FailAll(absl::CancelledError("Pool: terminated before the task finished"));
      KillAll();
      break;
    }
    if (!broken.ok()) {
      FailAll(broken);
      if (closed) {
        KillAll();
        break;
      }
    }
    AnswerRequests();  // before Dispatch: a cancel may requeue other jobs' chunks
    RunManagerTasks();
    Dispatch();
    const int64_t timed_at = EnforceTimeouts();  // after Dispatch: it sees every chunk sent
    if (closed && workers_.empty()) break;
    std::vector<Waitable> objects;
    objects.reserve(2 * workers_.size() + 1);
    objects.emplace_back(wake_fd_);
    // Each worker's wake-up descriptor, never its transport's receive state: a thread in Assist
    // may receive from it while this thread waits. A worker whose input came before ArmWake is
    // read after a Wait that does not sleep (its descriptor may never become readable for it).
    // `busy`: the workers that owe replies and can be spun on; only this thread removes workers,
    // so the pointers stay valid while work_mu_ is released.
    std::vector<bool> input_now(workers_.size(), false);
    bool any_input = false;
    std::vector<WorkerTransport*> busy;
    for (size_t wi = 0; wi < workers_.size(); ++wi) {
      Worker& w = workers_[wi];
      objects.push_back(w.transport->WakeWaitable());
      objects.emplace_back(w.sentinel);
      input_now[wi] = w.transport->ArmWake();
      any_input = any_input || input_now[wi];
      if (Watchable(w)) busy.push_back(w.transport);
    }
    unwatched_.store(false, std::memory_order_relaxed);
    manager_wakes_at_ = WaitUntil(timed_at);
    const int64_t wakes_at = manager_wakes_at_;  // read under work_mu_
    const uint64_t assists = assists_;
    work_mu_.Unlock();
    const absl::Duration wait = any_input || AwaitReplyBriefly(busy)
                                    ? absl::ZeroDuration()
                                    : Deadline::AtNs(wakes_at).Remaining();
    absl::StatusOr<std::vector<size_t>> ready = Wait(objects, wait);
    work_mu_.Lock();
    // What Wait saw may be gone: an Assist took it meanwhile.
    const bool stale = assists_ != assists;
    if (!ready.ok()) {
      MutexLock lock(&mu_);
      broken_ = absl::InternalError(absl::StrCat("Pool: wait failed: ", ready.status().ToString()));
      terminated_ = true;
      continue;
    }
    std::vector<size_t> exited;
    for (size_t i : *ready) {
      if (i == 0) {
        uint64_t value;
        while (read(wake_fd_, &value, sizeof(value)) < 0 && errno == EINTR) {
        }
        continue;
      }
      const size_t wi = (i - 1) / 2;
      if ((i - 1) % 2 == 0) {
        Worker& w = workers_[wi];
        w.transport->TakeWake();
        // A descriptor the kernel made readable for input says a message waits, unless an Assist
        // ran since; a wake-up descriptor only that something came.
        const bool readable =
            !stale && !input_now[wi] && !w.transport->SeesInputWithoutSystemCall();
        if (!Drain(w, readable)) exited.push_back(wi);
        input_now[wi] = false;  // drained
      } else {
        exited.push_back(wi);
      }
    }
    for (size_t wi = 0; wi < input_now.size(); ++wi) {
      if (input_now[wi] && !Drain(workers_[wi])) exited.push_back(wi);
    }
    std::sort(exited.begin(), exited.end());
    exited.erase(std::unique(exited.begin(), exited.end()), exited.end());
    for (auto it = exited.rbegin(); it != exited.rend(); ++it) HandleExit(*it);
  }
  sender_->Stop();
  work_mu_.Unlock();
  // What was handed to this thread runs here before it ends; once done_ is set, RunInManagerThread
  // runs it in its caller.
  for (;;) {
    std::vector<absl::AnyInvocable<void() &&>> tasks;
    {
      MutexLock lock(&mu_);
      if (manager_tasks_.empty()) {
        done_ = true;
        // Every job is settled now: nothing is left to cancel.
        for (Request* r : requests_) {
          r->answer = r->kind == Request::kStarted && r->job->AnyDone();
          r->answered = true;
        }
        requests_.clear();
        break;
      }
      tasks.swap(manager_tasks_);
    }
    for (auto& task : tasks) std::move(task)();
  }
  request_cv_.notify_all();
  done_cv_.notify_all();
}

bool Engine::Impl::Ask(Request::Kind kind, Job* job) {
  if (InEngineThread()) {
    // A done hook running in the manager thread (or in Assist, which holds work_mu_): it cannot
    // wait for the manager (see engine.h).
    return kind == Request::kStarted && job->AnyDone();
  }
  Request r;
  r.kind = kind;
  r.job = job;
  {
    MutexLock lock(&mu_);
    if (done_) return kind == Request::kStarted && job->AnyDone();
    requests_.push_back(&r);
  }
  Wake();
  MutexLock lock(&mu_);
  mu_.Await(request_cv_, Deadline::Never(),
            [&r]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return r.answered; });
  return r.answer;
}

void Engine::Impl::AnswerRequests() {
  std::deque<Request*> requests;
  {
    MutexLock lock(&mu_);
    requests.swap(requests_);
  }
  if (requests.empty()) return;
  for (Request* r : requests) {
    const bool answer = r->kind == Request::kCancel ? CancelJob(*r->job) : JobStarted(*r->job);
    MutexLock lock(&mu_);
    r->answer = answer;
    r->answered = true;  // after this the asking thread may return and destroy *r
  }
  request_cv_.notify_all();
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(std::unique_ptr<WorkerLauncher> launcher,
                                                       EngineOptions options) {
  if (launcher == nullptr) return absl::InvalidArgumentError("Pool engine: null launcher");
  if (options.workers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("Pool engine: workers must be >= 1, got ", options.workers));
  }
  if (options.max_tasks_per_child < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Pool engine: max_tasks_per_child must be >= 0 (0: no limit), got ",
                     options.max_tasks_per_child));
  }
  if (absl::StatusOr<int64_t> t = TimeoutNs(options.task_timeout, "task_timeout"); !t.ok()) {
    return t.status();
  }
  // The workers' slots live in a transferable segment, which every start method can pass.
  const size_t bytes = sizeof(Slot) * static_cast<size_t>(options.workers);
  absl::StatusOr<ShmSegment> slots = ShmSegment::Create(ShmDomain::kTransferable, bytes);
  if (!slots.ok()) return slots.status();
  absl::StatusOr<uint64_t> slots_offset = slots->Allocate(bytes);
  if (!slots_offset.ok()) return slots_offset.status();
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) return ErrnoStatus(errno, "Pool engine: eventfd");
  auto impl = std::make_unique<Impl>(std::move(launcher), std::move(options), *std::move(slots),
                                     *slots_offset, wake);
  if (absl::Status s = impl->StartWorkers(); !s.ok()) return s;
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

absl::Status Engine::Submit(std::shared_ptr<Job> job, const std::string& function, Batch batch,
                            size_t chunksize, SubmitOptions options) {
  return impl_->Submit(std::move(job), function, std::move(batch), chunksize, options);
}
void Engine::Close() { impl_->Close(); }
void Engine::Terminate() { impl_->Terminate(); }
absl::Status Engine::Join(absl::Duration timeout) { return impl_->Join(timeout); }
int Engine::workers() const { return impl_->workers(); }
std::vector<int> Engine::WorkerPids() const { return impl_->WorkerPids(); }
std::string Engine::TakeBuffer(size_t size) { return impl_->TakeBuffer(size); }
bool Engine::Cancel(const std::shared_ptr<Job>& job) {
  return impl_->Ask(Impl::Request::kCancel, job.get());
}
bool Engine::Started(const std::shared_ptr<Job>& job) const {
  return impl_->Ask(Impl::Request::kStarted, job.get());
}
void Engine::Assist(const Job& job, Deadline deadline) { impl_->Assist(job, deadline); }
void Engine::WatchReplies() { impl_->WatchReplies(); }
void Engine::RunInManagerThread(absl::AnyInvocable<void() &&> fn) {
  impl_->RunInManagerThread(std::move(fn));
}

}  // namespace pool_internal
}  // namespace mp
