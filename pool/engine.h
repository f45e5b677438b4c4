// Copyright 2026 The mp Authors.
//
// pool/engine.h — the worker engine under Pool and ProcessPoolExecutor (internal to mp).
//
// The engine runs chunks of a Job's tasks on workers it starts through a WorkerLauncher and talks
// to through their WorkerTransport (worker_transport.h); it knows neither start methods nor
// sockets. A manager thread assigns chunks as CPython's workers take them from one queue when
// free: a chunk goes to an idle worker first; a worker gets more (so that it need not wait for
// its next one: topped up to 32 once it is down to 16, the chunks given to a worker at once going
// in one message) only while no worker is idle; and when a worker is idle with nothing
// queued, the chunks other workers hold but have not started come back to it (at once from a
// worker busy with a chunk; after 20 ms from one that started none, which may be stopped or
// starved). A worker claims each chunk in shared memory (slot.h) before starting it, and the
// engine takes a chunk back only with the same compare-and-swap, so every task runs exactly once.
// The manager thread receives a message per finished chunk and records it in the chunk's Job; it
// watches every worker's sentinel, settles a dead worker's chunks and starts a replacement. It
// never blocks on a send (a worker may be blocked sending it results): it sends a chunk itself
// when the transport says the send cannot block, and otherwise hands it, in order, to a sender
// thread. A Submit that finds the queue empty and the manager waiting assigns the chunks itself
// (one hop less before a worker starts) and wakes the manager only when it must look again sooner
// than it planned (a time limit; a grace period while the manager has no 20 ms tick, which it keeps
// for a second after the pool was last busy).
//
// What a face (Pool, ProcessPoolExecutor) uses, all in mp::pool_internal:
//   pool/engine.h   Engine::Create(std::unique_ptr<WorkerLauncher>, EngineOptions{.workers,
//                     .initializer, .max_tasks_per_child, .worker_name,
//                     .task_timeout})
//                   Engine::Submit(std::shared_ptr<Job>, const std::string& function, Batch,
//                     size_t chunksize, SubmitOptions{.timeout})
//                   Engine::Cancel(job) -> bool   (all or nothing; kCancelled items; hooks run)
//                   Engine::Started(job) -> bool  (a worker claimed a chunk, or an item is done)
//                   Engine::Close(), Terminate(), Join(timeout), workers(), WorkerPids(),
//                   TakeBuffer(size)
//   pool/job.h      Job(count, what); Job::AddDoneHook(Job::DoneHook&&) -> bool (false: already
//                     done, the hook is left untouched: run it yourself); Job::AnyDone(), Ready(),
//                     WaitAll / WaitItem / WaitCompleted(deadline), ItemResult, ForEachRun,
//                     FirstFailure; Batch + AddItem / AppendItem / CheckBatch;
//                     ItemResult<T>(job, i), DecodeResult<T>(payload)
//   pool/task.h     TaskRegistrar<&Fn>::name, CheckTask<&Fn>(), ArgsOf<&Fn>, ResultOf<&Fn>
//   pool/process_launcher.h  ProcessLauncher(std::shared_ptr<StartMethod>)
// Done hooks run in the engine's manager thread, or in a thread in Assist (see Job::AddDoneHook);
// they must not block, throw, or call Cancel / Started.

#ifndef MP_POOL_ENGINE_H_
#define MP_POOL_ENGINE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "pool/initializer.h"
#include "pool/job.h"
#include "pool/worker_transport.h"

namespace mp {
namespace pool_internal {

struct EngineOptions {
  int workers = 1;              // >= 1
  PoolInitializer initializer;  // each worker runs it once first
  // Chunks a worker runs before it is replaced; 0: no limit.
  int64_t max_tasks_per_child = 0;
  // The prefix of the workers' names ("PoolWorker-1", ...).
  std::string worker_name = "PoolWorker";
  // The time limit of every task whose submission sets none (SubmitOptions::timeout); infinite:
  // none.
  absl::Duration task_timeout = absl::InfiniteDuration();
};

struct SubmitOptions {
  // Each task's time limit, counted from when it starts running in a worker (not from its
  // submission). A task over it fails with kDeadlineExceeded naming the function, the task, the
  // limit and the worker, whose process the engine kills (a stopped or hung worker too) and
  // replaces; the other tasks carry on (those of the same chunk that had not started go to other
  // workers; results of the same chunk's earlier tasks that the worker had not yet sent are lost,
  // kAborted, as when a worker dies). Infinite: EngineOptions::task_timeout. Must be > 0.
  absl::Duration timeout = absl::InfiniteDuration();
  // The caller sees to it that the job's results are looked for: a thread calls Assist before it
  // waits for them, and WatchReplies before anything else waits for them or is to be told of
  // them (a done hook's effect, a wait on several jobs), and after an Assist that left them
  // unfinished. Then a Submit that hands its chunks to a worker itself does not ask that worker
  // for a wake-up packet for the manager: a reply the waiting thread takes costs no system call
  // and no wake-up of the manager. (Unlooked-for replies are still taken within the manager's
  // 20 ms tick.)
  bool looked_for = false;
};

class Engine {
 public:
  // Starts options.workers workers with `launcher`. kInvalidArgument for workers < 1, a negative
  // max_tasks_per_child or a task_timeout <= 0; errors of the launcher, of the slots' shared
  // memory, of eventfd.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(std::unique_ptr<WorkerLauncher> launcher,
                                                        EngineOptions options);
  // Terminates the workers and waits for the manager thread unless Join returned OK.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues `batch`'s tasks for `job` in chunks of `chunksize` (>= 1) items, running the registered
  // task `function` (a registered name: it must outlive the engine). The job's items settle as
  // chunks finish. kInvalidArgument for chunksize 0 or a timeout <= 0; kFailedPrecondition after
  // Close or Terminate, or the engine's failure (a failed initializer) once it broke.
  absl::Status Submit(std::shared_ptr<Job> job, const std::string& function, Batch batch,
                      size_t chunksize, SubmitOptions options = {});

  // No more submissions; workers exit once the submitted chunks are done.
  void Close();
  // Stops the workers now (kill); unfinished items fail with kCancelled.
  void Terminate();
  // Waits for the workers to exit (after Close or Terminate): kFailedPrecondition before either;
  // kDeadlineExceeded when `timeout` passes first.
  absl::Status Join(absl::Duration timeout);

  int workers() const;
  // Pids of the current workers.
  std::vector<int> WorkerPids() const;
  // An empty string with room for `size` bytes when the engine keeps one (buffers.h), for a face
  // to encode a batch in.
  std::string TakeBuffer(size_t size);

  // CPython's Future.cancel() for a whole job, all or nothing: when no task of `job` has started
  // (no worker claimed one of its chunks, none of its items is done), takes back its chunks —
  // queued, or sent to workers and unstarted, with the same compare-and-swap a worker claims a
  // chunk with — so that none runs, fails every item with kCancelled (the job's done hooks run,
  // in the manager thread, before Cancel returns) and returns true. Otherwise changes nothing and
  // returns false (the job runs to its end). Blocks until the manager thread answers, which it
  // does between two events (it never blocks for long). Not from a done hook (which runs in the
  // manager thread): there it returns false.
  bool Cancel(const std::shared_ptr<Job>& job);
  // Whether a worker has claimed one of `job`'s chunks or one of its items is done (CPython's
  // Future.running() or done(); Cancel returns false from then on). Asks the manager thread as
  // Cancel does; from a done hook, whether one of its items is done.
  bool Started(const std::shared_ptr<Job>& job) const;

  // For a thread about to wait for `job` (Future::Result): while the manager thread sleeps in its
  // Wait, this thread takes the replies of the workers that owe some itself, for up to 50 us (or
  // until `deadline`, or `job` is done), and hands out what is queued. A reply that comes within it
  // then costs no wake-up packet, no wake-up of the manager and no hand-over from the manager to
  // this thread. Returns at once when the manager is at work (it delivers the reply), when called
  // from the manager thread, or when no worker that owes a reply can be watched without system
  // calls. Done hooks of the jobs it finishes run in this thread: a face whose hooks must run in
  // the manager thread defers them (futures_internal::DeferCallbacks) and hands them over with
  // RunInManagerThread.
  void Assist(const Job& job, Deadline deadline);
  // Makes sure the manager thread is woken for every reply owed so far (after Submits with
  // SubmitOptions::looked_for). Cheap when nothing is owed unwatched; never waits for the manager.
  void WatchReplies();
  // Runs `fn` in the manager thread soon, or here at once when the manager thread has ended.
  void RunInManagerThread(absl::AnyInvocable<void() &&> fn);

  class Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_ENGINE_H_
