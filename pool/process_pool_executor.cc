// Copyright 2026 The mp Authors.

#include "pool/process_pool_executor.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/mutex.h"
#include "pool/engine.h"
#include "pool/process_launcher.h"
#include "start_methods/process.h"

namespace mp {
namespace pool_internal {
namespace {

// What the futures of one job share, and what they ask the executor (futures_internal::
// ExecutorHooks). Cancel of any of them asks the engine to take the whole job back (its Cancel is
// all or nothing); when it does, the job's done hook runs before the engine's Cancel returns, sees
// `cancelling` and the items' kCancelled, marks the job cancelled and cancels every future of the
// job (each one's TakeBack then answers true at once).
struct JobFutures final : futures_internal::ExecutorHooks {
  std::weak_ptr<ProcessPoolImpl> impl;
  std::shared_ptr<Job> job;
  std::atomic<bool> cancelling{false};  // a Cancel is asking the engine
  std::atomic<bool> cancelled{false};   // the engine took the job back

  bool TakeBack() override;
  bool Started() override;
  void AssistWait(Deadline deadline) override;
  void Observed() override;
};

}  // namespace

class ProcessPoolImpl : public std::enable_shared_from_this<ProcessPoolImpl> {
 public:
  explicit ProcessPoolImpl(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}

  std::string NextTask(absl::string_view function) {
    return absl::StrCat("ProcessPoolExecutor task ", tasks_.fetch_add(1, std::memory_order_relaxed),
                        " (", function, ")");
  }

  void SubmitFutures(std::shared_ptr<Job> job, const std::string& function, Batch batch,
                     size_t chunksize, absl::Duration timeout,
                     std::vector<std::shared_ptr<futures_internal::CoreBase>> cores,
                     FinishFn finish) {
    auto state = std::make_shared<JobFutures>();
    state->impl = weak_from_this();
    state->job = job;
    for (const auto& core : cores) core->SetExecutorHooks(state);
    absl::Status s;
    {
      MutexLock lock(&mu_);
      if (shutdown_) {
        s = absl::FailedPreconditionError(
            "ProcessPoolExecutor: cannot schedule new futures after shutdown");
      } else {
        PruneLocked();
        for (const auto& core : cores) live_.push_back(core);
      }
    }
    if (s.ok()) {
      SubmitOptions options;
      options.timeout = timeout;
      options.looked_for = true;  // the futures' hooks Assist and WatchReplies
      s = engine_->Submit(job, function, std::move(batch), chunksize, options);
    }
    if (!s.ok()) {
      for (const auto& core : cores) core->SetFailure(s).IgnoreError();
      return;
    }
    // Added once the job was taken (a job that is never submitted keeps no hook, whose futures
    // would otherwise keep the job, and it them, alive). A job already done runs it here.
    const size_t n = cores.size();
    Job::DoneHook hook = [state, finish = std::move(finish), n]() mutable {
      const bool cancelling = state->cancelling.load();
      if (cancelling) state->cancelled.store(true);  // only kCancelled items read it
      for (size_t i = 0; i < n; ++i) finish(i, cancelling);
    };
    if (!job->AddDoneHook(std::move(hook))) std::move(hook)();
  }

  absl::Status SubmitMapChunk(std::shared_ptr<Job> job, const std::string& function, Batch batch) {
    {
      MutexLock lock(&mu_);
      if (shutdown_) {
        return absl::FailedPreconditionError(
            "ProcessPoolExecutor: cannot schedule new futures after shutdown");
      }
      if (live_jobs_.size() >= 2 * pruned_jobs_ + 64) {
        live_jobs_.erase(std::remove_if(live_jobs_.begin(), live_jobs_.end(),
                                        [](const std::weak_ptr<Job>& weak) {
                                          std::shared_ptr<Job> j = weak.lock();
                                          return j == nullptr || j->Ready();
                                        }),
                         live_jobs_.end());
        pruned_jobs_ = live_jobs_.size();
      }
      live_jobs_.push_back(job);
    }
    const size_t n = job->size();
    return engine_->Submit(std::move(job), function, std::move(batch), n, SubmitOptions{});
  }

  void CancelMapChunk(const std::shared_ptr<Job>& job) { engine_->Cancel(job); }

  absl::Status Shutdown(const ExecutorShutdownOptions& options) {
    std::vector<std::weak_ptr<futures_internal::CoreBase>> live;
    std::vector<std::weak_ptr<Job>> live_jobs;
    {
      MutexLock lock(&mu_);
      shutdown_ = true;
      if (options.cancel_futures) {
        live.swap(live_);
        live_jobs.swap(live_jobs_);
      }
    }
    for (const auto& weak : live) {
      if (std::shared_ptr<futures_internal::CoreBase> core = weak.lock()) core->Cancel();
    }
    for (const auto& weak : live_jobs) {
      if (std::shared_ptr<Job> job = weak.lock()) engine_->Cancel(job);
    }
    engine_->Close();
    if (!options.wait) return absl::OkStatus();
    MutexLock lock(&join_mu_);
    if (joined_) return absl::OkStatus();
    absl::Status s = engine_->Join(options.timeout);
    if (s.ok()) joined_ = true;
    return s;
  }

  // A thread about to wait for `job`'s future takes the worker's reply itself when it comes soon
  // (Engine::Assist). The done callbacks of the futures it finishes run in the manager thread all
  // the same, as the header promises: they are deferred and handed over. Then, in case the future
  // is still not done, the manager is to be woken for the reply (Engine::WatchReplies).
  void Assist(const Job& job, Deadline deadline) {
    std::vector<std::shared_ptr<futures_internal::CoreBase>> deferred;
    {
      futures_internal::DeferCallbacks defer(&deferred);
      engine_->Assist(job, deadline);
    }
    engine_->WatchReplies();
    if (deferred.empty()) return;
    engine_->RunInManagerThread([deferred = std::move(deferred)]() {
      for (const auto& core : deferred) core->RunDeferredCallbacks();
    });
  }
  void WatchReplies() { engine_->WatchReplies(); }
  bool Started(const std::shared_ptr<Job>& job) { return engine_->Started(job); }
  bool TakeBack(const std::shared_ptr<Job>& job) { return engine_->Cancel(job); }

  int workers() const { return engine_->workers(); }
  std::vector<int> WorkerPids() const { return engine_->WorkerPids(); }

 private:
  // Drops the futures that are gone or done, when the list has doubled since the last time.
  void PruneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (live_.size() < 2 * pruned_size_ + 64) return;
    live_.erase(std::remove_if(live_.begin(), live_.end(),
                               [](const std::weak_ptr<futures_internal::CoreBase>& weak) {
                                 std::shared_ptr<futures_internal::CoreBase> core = weak.lock();
                                 return core == nullptr || core->Done();
                               }),
                live_.end());
    pruned_size_ = live_.size();
  }

  const std::unique_ptr<Engine> engine_;
  std::atomic<uint64_t> tasks_{0};
  Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Futures submitted and maybe not done (for cancel_futures).
  std::vector<std::weak_ptr<futures_internal::CoreBase>> live_ ABSL_GUARDED_BY(mu_);
  size_t pruned_size_ ABSL_GUARDED_BY(mu_) = 0;
  // Map chunks submitted and maybe not done (for cancel_futures).
  std::vector<std::weak_ptr<Job>> live_jobs_ ABSL_GUARDED_BY(mu_);
  size_t pruned_jobs_ ABSL_GUARDED_BY(mu_) = 0;
  Mutex join_mu_;
  bool joined_ ABSL_GUARDED_BY(join_mu_) = false;
};

bool JobFutures::TakeBack() {
  if (cancelled.load()) return true;
  std::shared_ptr<ProcessPoolImpl> executor = impl.lock();
  if (executor == nullptr) return false;  // the executor waited for its tasks: nothing is pending
  cancelling.store(true);
  const bool taken_back = executor->TakeBack(job);
  if (!taken_back) cancelling.store(false);
  return taken_back || cancelled.load();
}

bool JobFutures::Started() {
  std::shared_ptr<ProcessPoolImpl> executor = impl.lock();
  return executor != nullptr && executor->Started(job);
}

void JobFutures::AssistWait(Deadline deadline) {
  if (std::shared_ptr<ProcessPoolImpl> executor = impl.lock()) executor->Assist(*job, deadline);
}

void JobFutures::Observed() {
  if (std::shared_ptr<ProcessPoolImpl> executor = impl.lock()) executor->WatchReplies();
}

void SubmitFutures(ProcessPoolImpl& impl, std::shared_ptr<Job> job, const std::string& function,
                   Batch batch, size_t chunksize, absl::Duration timeout,
                   std::vector<std::shared_ptr<futures_internal::CoreBase>> cores,
                   FinishFn finish) {
  impl.SubmitFutures(std::move(job), function, std::move(batch), chunksize, timeout,
                     std::move(cores), std::move(finish));
}

std::string NextExecutorTask(ProcessPoolImpl& impl, absl::string_view function) {
  return impl.NextTask(function);
}

absl::Status SubmitMapChunk(ProcessPoolImpl& impl, std::shared_ptr<Job> job,
                            const std::string& function, Batch batch) {
  return impl.SubmitMapChunk(std::move(job), function, std::move(batch));
}

void CancelMapChunk(ProcessPoolImpl& impl, const std::shared_ptr<Job>& job) {
  impl.CancelMapChunk(job);
}

}  // namespace pool_internal

absl::StatusOr<ProcessPoolExecutor> ProcessPoolExecutor::Create(
    ProcessPoolExecutorOptions options) {
  if (options.method == nullptr) {
    return absl::InvalidArgumentError(
        "ProcessPoolExecutor::Create: no start method (set .method, e.g. "
        "mp::ForkServerStartMethod())");
  }
  if (options.max_workers < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ProcessPoolExecutor::Create: max_workers must be greater than 0 (0 for "
                     "CpuCount()), got ",
                     options.max_workers));
  }
  if (options.max_tasks_per_child < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ProcessPoolExecutor::Create: max_tasks_per_child must be >= 0 (0: no "
                     "limit), got ",
                     options.max_tasks_per_child));
  }
  if (!options.initializer.function.empty() &&
      pool_internal::FindTask(options.initializer.function) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("ProcessPoolExecutor::Create: initializer \"",
                                                   options.initializer.function,
                                                   "\" is not registered"));
  }
  pool_internal::EngineOptions engine;
  engine.workers = options.max_workers == 0 ? std::max(1, CpuCount()) : options.max_workers;
  engine.initializer = std::move(options.initializer);
  engine.max_tasks_per_child = options.max_tasks_per_child;
  engine.worker_name = "ProcessPoolExecutorWorker";
  // Before the engine's threads: under fork the launcher forks its single-threaded worker helper
  // now, so replacement workers are not forks of this multi-threaded process.
  absl::StatusOr<std::unique_ptr<pool_internal::WorkerLauncher>> launcher =
      pool_internal::MakeWorkerLauncher(std::move(options.method), engine.initializer);
  if (!launcher.ok()) return launcher.status();
  absl::StatusOr<std::unique_ptr<pool_internal::Engine>> e =
      pool_internal::Engine::Create(*std::move(launcher), std::move(engine));
  if (!e.ok()) return e.status();
  return ProcessPoolExecutor(std::make_shared<pool_internal::ProcessPoolImpl>(*std::move(e)));
}

ProcessPoolExecutor::ProcessPoolExecutor(std::shared_ptr<pool_internal::ProcessPoolImpl> impl)
    : impl_(std::move(impl)) {}

ProcessPoolExecutor::ProcessPoolExecutor(ProcessPoolExecutor&&) noexcept = default;

ProcessPoolExecutor& ProcessPoolExecutor::operator=(ProcessPoolExecutor&& other) noexcept {
  if (this != &other) {
    if (impl_ != nullptr) impl_->Shutdown({}).IgnoreError();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

ProcessPoolExecutor::~ProcessPoolExecutor() {
  if (impl_ != nullptr) impl_->Shutdown({}).IgnoreError();
}

absl::Status ProcessPoolExecutor::Shutdown(const ExecutorShutdownOptions& options) {
  return impl_->Shutdown(options);
}

int ProcessPoolExecutor::max_workers() const { return impl_->workers(); }

std::vector<int> ProcessPoolExecutor::WorkerPids() const { return impl_->WorkerPids(); }

}  // namespace mp
