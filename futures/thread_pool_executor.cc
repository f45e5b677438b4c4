// Copyright 2026 The mp Authors.

#include "futures/thread_pool_executor.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/deadline.h"
#include "base/exception.h"
#include "base/mutex.h"

namespace mp {
namespace futures_internal {
namespace {

// CPython's os.process_cpu_count(): the CPUs this process may run on.
int ProcessCpuCount() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::atomic<int> executors_made{0};

}  // namespace

class ThreadPoolImpl : public std::enable_shared_from_this<ThreadPoolImpl> {
 public:
  ThreadPoolImpl(int max_workers, std::function<absl::Status()> initializer,
                 std::string thread_name_prefix)
      : max_workers_(max_workers),
        initializer_(std::move(initializer)),
        prefix_(std::move(thread_name_prefix)) {}

  ~ThreadPoolImpl() {
    // Joined by Shutdown, or detached when the last owner was a worker.
    for (std::thread& t : threads_) {
      if (t.joinable()) t.detach();
    }
  }

  std::string NextDescription() {
    return absl::StrCat("ThreadPoolExecutor task ", tasks_.fetch_add(1, std::memory_order_relaxed));
  }

  absl::Status Enqueue(std::shared_ptr<CoreBase> core, std::unique_ptr<QueuedTask> run) {
    MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    if (shutdown_) {
      return absl::FailedPreconditionError(
          "ThreadPoolExecutor: cannot schedule new futures after shutdown");
    }
    queue_.push_back(Item{std::move(core), std::move(run)});
    // CPython's _adjust_thread_count: a new thread only when no idle one is free for this task.
    if (queue_.size() > static_cast<size_t>(idle_) &&
        static_cast<int>(threads_.size()) < max_workers_) {
      const int n = static_cast<int>(threads_.size());
      ++live_;
      threads_.emplace_back([self = shared_from_this(), n] { self->Work(n); });
    }
    cv_.notify_one();
    return absl::OkStatus();
  }

  absl::Status Shutdown(const ExecutorShutdownOptions& options) {
    std::deque<Item> cancelled;
    {
      MutexLock lock(&mu_);
      shutdown_ = true;
      if (options.cancel_futures) cancelled.swap(queue_);
      cv_.notify_all();
    }
    for (Item& item : cancelled) item.core->Cancel();
    cancelled.clear();
    if (!options.wait) return absl::OkStatus();
    if (IsWorker()) {
      return absl::FailedPreconditionError(
          "ThreadPoolExecutor::Shutdown: waiting from one of the executor's own tasks would wait "
          "for itself (pass .wait = false)");
    }
    std::vector<std::thread> threads;
    {
      MutexLock lock(&mu_);
      if (!mu_.Await(exit_cv_, Deadline::After(options.timeout),
                     [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return live_ == 0; })) {
        return absl::DeadlineExceededError(absl::StrCat("ThreadPoolExecutor::Shutdown: ", live_,
                                                        " worker threads still running after ",
                                                        absl::FormatDuration(options.timeout)));
      }
      threads.swap(threads_);  // no thread starts after shutdown
    }
    for (std::thread& t : threads) t.join();
    return absl::OkStatus();
  }

  // Whether the calling thread is one of the workers.
  bool IsWorker() const { return current_ == this; }

  int max_workers() const { return max_workers_; }
  int threads_started() const {
    MutexLock lock(&mu_);
    return started_;
  }
  int idle() const {
    MutexLock lock(&mu_);
    return idle_;
  }

 private:
  struct Item {
    std::shared_ptr<CoreBase> core;
    std::unique_ptr<QueuedTask> run;
  };

  void NameThread(int n) {
    const std::string prefix =
        prefix_.empty() ? absl::StrCat("ThreadPoolExecutor-", executor_number_) : prefix_;
    std::string name = absl::StrCat(prefix, "_", n);
    if (name.size() > 15) name.resize(15);  // the kernel keeps 15 bytes and refuses longer names
    pthread_setname_np(pthread_self(), name.c_str());
  }

  void Work(int n) {
    current_ = this;
    NameThread(n);
    {
      MutexLock lock(&mu_);
      ++started_;
    }
    absl::Status init = absl::OkStatus();
    if (initializer_ != nullptr) {
      try {
        init = initializer_();
      } catch (...) {
        init = absl::UnknownError(
            absl::StrCat("the initializer threw ", CurrentExceptionDescription()));
      }
    }
    if (!init.ok()) {
      InitializerFailed(init);
    } else {
      for (;;) {
        Item item;
        {
          MutexLock lock(&mu_);
          ++idle_;
          mu_.Await(cv_, Deadline::Never(), [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
            return !queue_.empty() || shutdown_ || !broken_.ok();
          });
          --idle_;
          if (queue_.empty()) break;  // shut down (or broken) with nothing left to run
          item = std::move(queue_.front());
          queue_.pop_front();
        }
        item.run->Run();  // finishes the future and runs its callbacks here
      }
    }
    MutexLock lock(&mu_);
    --live_;
    exit_cv_.notify_all();
  }

  // CPython's _initializer_failed: the executor is broken; the tasks not started fail.
  void InitializerFailed(const absl::Status& init) {
    std::deque<Item> pending;
    absl::Status broken;
    {
      MutexLock lock(&mu_);
      if (broken_.ok()) {
        broken_ = absl::FailedPreconditionError(absl::StrCat(
            "ThreadPoolExecutor: a thread initializer failed, the thread pool is not usable "
            "anymore: ",
            init.ToString()));
      }
      broken = broken_;
      pending.swap(queue_);
      cv_.notify_all();
    }
    for (Item& item : pending) {
      if (item.core->SetRunningOrNotifyCancel()) item.core->SetFailure(broken).IgnoreError();
    }
  }

  static thread_local const ThreadPoolImpl* current_;

  const int max_workers_;
  const std::function<absl::Status()> initializer_;
  const std::string prefix_;
  const int executor_number_ = executors_made.fetch_add(1, std::memory_order_relaxed);
  std::atomic<uint64_t> tasks_{0};

  mutable Mutex mu_;
  std::condition_variable cv_;       // work queued, shutdown, broken
  std::condition_variable exit_cv_;  // a worker exited
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  int idle_ ABSL_GUARDED_BY(mu_) = 0;     // workers waiting for a task
  int live_ ABSL_GUARDED_BY(mu_) = 0;     // workers started and not exited
  int started_ ABSL_GUARDED_BY(mu_) = 0;  // workers that began running
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
};

thread_local const ThreadPoolImpl* ThreadPoolImpl::current_ = nullptr;

std::string NextTaskDescription(ThreadPoolImpl& impl) { return impl.NextDescription(); }

absl::Status Enqueue(ThreadPoolImpl& impl, std::shared_ptr<CoreBase> core,
                     std::unique_ptr<QueuedTask> run) {
  return impl.Enqueue(std::move(core), std::move(run));
}

}  // namespace futures_internal

absl::StatusOr<ThreadPoolExecutor> ThreadPoolExecutor::Create(ThreadPoolExecutorOptions options) {
  if (options.max_workers < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ThreadPoolExecutor: max_workers must be greater than 0 (0 for the default), not ",
        options.max_workers));
  }
  const int max_workers = options.max_workers == 0
                              ? std::min(32, futures_internal::ProcessCpuCount() + 4)
                              : options.max_workers;
  return ThreadPoolExecutor(std::make_shared<futures_internal::ThreadPoolImpl>(
      max_workers, std::move(options.initializer), std::move(options.thread_name_prefix)));
}

ThreadPoolExecutor::ThreadPoolExecutor(std::shared_ptr<futures_internal::ThreadPoolImpl> impl)
    : impl_(std::move(impl)) {}

ThreadPoolExecutor::ThreadPoolExecutor(ThreadPoolExecutor&&) noexcept = default;

ThreadPoolExecutor& ThreadPoolExecutor::operator=(ThreadPoolExecutor&& other) noexcept {
  if (this != &other) {
    if (impl_ != nullptr && !impl_->IsWorker()) impl_->Shutdown({}).IgnoreError();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

ThreadPoolExecutor::~ThreadPoolExecutor() {
  if (impl_ == nullptr) return;
  // From one of its own tasks the executor cannot wait for itself: it stops taking tasks, and the
  // workers (which share the state) finish the queue and exit on their own.
  impl_->Shutdown({.wait = !impl_->IsWorker()}).IgnoreError();
}

absl::Status ThreadPoolExecutor::Shutdown(const ExecutorShutdownOptions& options) {
  return impl_->Shutdown(options);
}

int ThreadPoolExecutor::max_workers() const { return impl_->max_workers(); }

int ThreadPoolExecutor::threads_started() const { return impl_->threads_started(); }

int ThreadPoolExecutor::IdleThreadsForTesting() const { return impl_->idle(); }

}  // namespace mp
