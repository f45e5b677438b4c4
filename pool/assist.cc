// Copyright 2026 The mp Authors.
//
// The engine's guests: threads other than the manager's that do its work while it waits — Submit's
// own dispatch and Assist (a thread waiting for a result takes the worker's reply itself) — and
// what keeps the manager's Wait able to wake for every reply they leave (LeaveAsGuest,
// WatchReplies), and the work they hand to the manager thread (RunInManagerThread).

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <utility>
#include <vector>

#include "base/deadline.h"
#include "base/mutex.h"
#include "pool/engine.h"
#include "pool/engine_impl.h"
#include "sync/futex.h"

namespace mp {
namespace pool_internal {

bool Engine::Impl::ArmBusy() {
  bool input = false;
  for (Worker& w : workers_) {
    if (!w.outstanding.empty() && w.transport->ArmWake()) input = true;
  }
  unwatched_.store(false, std::memory_order_relaxed);
  return input;
}

bool Engine::Impl::LeaveAsGuest(bool arm) {
  bool input = false;
  if (arm) {
    input = ArmBusy();
  } else {
    if (std::any_of(workers_.begin(), workers_.end(), Watchable)) {
      unwatched_.store(true, std::memory_order_release);
    }
  }
  const int64_t at = NextCheck(EnforceTimeouts());
  return input || at < manager_wakes_at_ || !PendingEmpty();
}

void Engine::Impl::WatchReplies() {
  if (!unwatched_.load(std::memory_order_acquire) || InEngineThread()) return;
  if (!work_mu_.TryLock()) {
    // The manager (or an Assist) holds it: the manager arms every worker before it sleeps again,
    // an Assist those that owe replies before it leaves; the wake-up makes sure the manager looks.
    Wake();
    return;
  }
  const bool input = unwatched_.load(std::memory_order_relaxed) && ArmBusy();
  work_mu_.Unlock();
  if (input) Wake();
}

namespace {

// The engines whose manager's work this thread does in Assist, innermost first (a hook in one
// Assist may wait for another engine's future, whose Assist then runs nested).
struct AssistFrame {
  const Engine::Impl* engine;
  const AssistFrame* outer;
};
thread_local const AssistFrame* t_assisting = nullptr;

// How long Assist watches for a reply: about what a trivial task's round trip takes when its worker
// is awake, and the manager's own spin (AwaitReplyBriefly).
constexpr int64_t kAssistSpinNs = 50'000;

}  // namespace

bool Engine::Impl::InEngineThread() const {
  for (const AssistFrame* f = t_assisting; f != nullptr; f = f->outer) {
    if (f->engine == this) return true;
  }
  return std::this_thread::get_id() == manager_id_.load(std::memory_order_acquire);
}

void Engine::Impl::Assist(const Job& job, Deadline deadline) {
  if (job.Ready() || InEngineThread() || !work_mu_.TryLock()) return;
  // The manager is in its Wait (or about to be): it polls the watched workers' wake-up descriptors
  // only, and their input no longer wakes it while this thread watches them.
  ++assists_;
  const AssistFrame frame{this, t_assisting};
  t_assisting = &frame;
  std::vector<Worker*> watched;
  for (Worker& w : workers_) {
    if (Watchable(w)) {
      w.transport->QuietWake();
      watched.push_back(&w);
    }
  }
  const int64_t until = std::min(deadline.ns(), MonotonicNowNs() + kAssistSpinNs);
  for (int i = 1; !watched.empty(); ++i) {
    bool took = false;
    for (size_t k = 0; k < watched.size();) {
      Worker& w = *watched[k];
      if (!w.transport->HasInputNow()) {
        ++k;
        continue;
      }
      took = true;
      if (!Drain(w)) {  // at its end (or killed for a bad message): the manager settles it
        watched.erase(watched.begin() + static_cast<ptrdiff_t>(k));
        continue;
      }
      ++k;
    }
    if (took) {
      if (job.Ready()) break;
      Dispatch();  // the worker that answered may take what is queued
      continue;
    }
    if ((i & 63) == 0) {
      if (MonotonicNowNs() >= until) break;
      if (!PendingEmpty()) Dispatch();  // a Submit that found work_mu_ taken queued it
      sched_yield();
    } else {
      SpinPause();
    }
  }
  Dispatch();
  const bool wake = LeaveAsGuest();
  t_assisting = frame.outer;
  work_mu_.Unlock();
  if (wake) Wake();
}

void Engine::Impl::RunInManagerThread(absl::AnyInvocable<void() &&> fn) {
  {
    MutexLock lock(&mu_);
    if (!done_) {
      manager_tasks_.push_back(std::move(fn));
      fn = nullptr;
    }
  }
  if (fn == nullptr) {
    Wake();
  } else {
    std::move(fn)();
  }
}

void Engine::Impl::RunManagerTasks() {
  std::vector<absl::AnyInvocable<void() &&>> tasks;
  {
    MutexLock lock(&mu_);
    tasks.swap(manager_tasks_);
  }
  for (auto& task : tasks) std::move(task)();
}

}  // namespace pool_internal
}  // namespace mp
