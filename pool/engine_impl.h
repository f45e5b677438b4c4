// Copyright 2026 The mp Authors.
//
// pool/engine_impl.h — the engine's state (private to //pool:engine): engine.cc has its life,
// results and worker deaths, dispatch.cc the policy that gives chunks to workers, timeouts.cc the
// tasks' time limits, assist.cc the threads that do the manager's work while it waits.

#ifndef MP_POOL_ENGINE_IMPL_H_
#define MP_POOL_ENGINE_IMPL_H_

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/deadline.h"
#include "base/mutex.h"
#include "pool/buffers.h"
#include "pool/engine.h"
#include "pool/job.h"
#include "pool/sender.h"
#include "pool/slot.h"
#include "pool/wire.h"
#include "pool/worker_transport.h"
#include "sync/shm.h"

namespace mp {
namespace pool_internal {

struct Chunk {
  std::shared_ptr<Job> job;
  uint64_t job_id = 0;
  std::shared_ptr<const Batch> batch;
  const std::string* function = nullptr;
  size_t first = 0;  // index of the first item in the job (and in the batch)
  size_t count = 0;
  uint64_t number = 0;     // its number among the chunks sent to its worker (Slot::claimed)
  int64_t sent_ns = 0;     // when it was sent (MonotonicNowNs)
  int64_t timeout_ns = 0;  // each task's time limit; 0: none
};

struct Worker {
  std::shared_ptr<LaunchedWorker> launched;
  std::shared_ptr<Outbox> out;           // the manager or the sender thread sends through it
  WorkerTransport* transport = nullptr;  // launched->transport(): the manager thread receives
  int slot = 0;
  int pid = 0;
  int sentinel = -1;
  std::deque<Chunk> outstanding;  // sent to it, in order; not yet answered nor taken back
  uint64_t sent = 0;              // the number of the last chunk sent to it (Slot::claimed)
  // The last `unsent` chunks of `outstanding` are assigned to it but not yet sent (Dispatch sends
  // them together before it returns).
  size_t unsent = 0;
  // Chunks were taken back from it that it may not have read yet: until it has read everything
  // sent to it, it counts as busy (a stopped worker must not get the same chunks again).
  bool took_back = false;
  size_t last_length = 0;  // of its last message: the size of buffer to receive the next one in
  int64_t chunks_done = 0;
  bool stopping = false;
  // Set when the engine killed it for a task over its time limit: that task and its failure.
  struct TimedOut {
    uint64_t job_id = 0;
    uint64_t index = 0;
    absl::Status status;
  };
  std::optional<TimedOut> timed_out;
  // When its time-limit record was first seen half written (0: it was not).
  int64_t record_busy_since = 0;
};

// How long a chunk sent to a worker may wait unstarted, with its worker running nothing else,
// before an idle worker may take it: such a worker may be stopped (SIGSTOP, a debugger) or starved.
// Taking a chunk back is always safe (Slot::claimed), so this only bounds how long a task can wait
// behind a stuck idle worker.
inline constexpr int64_t kStartGraceNs = int64_t{20} * 1000 * 1000;
// How long after its last chunk the manager keeps looking every kStartGraceNs (WaitUntil).
inline constexpr int64_t kTickWindowNs = int64_t{1000} * 1000 * 1000;

// The most chunks a busy worker holds (running one, the rest sent and waiting in its socket)
// while no worker is idle, and how few it holds when it is topped up again: so that a stream of
// small chunks reaches a worker several to a message (each message costs the engine a system call
// and the worker a wake-up) and a worker does not wait for the manager between two of them. The
// chunks a busy worker holds unstarted come back as soon as another worker is idle
// (TakeBackUnstarted), so holding many never leaves a task waiting behind a long one.
inline constexpr size_t kMaxHeldChunks = 32;
inline constexpr size_t kRefillHeldChunks = 16;

class Engine::Impl {
 public:
  Impl(std::unique_ptr<WorkerLauncher> launcher, EngineOptions options, ShmSegment slots,
       uint64_t slots_offset, int wake_fd)
      : launcher_(std::move(launcher)),
        options_(std::move(options)),
        slots_(std::move(slots)),
        slots_offset_(slots_offset),
        wake_fd_(wake_fd) {}
  ~Impl() {
    if (thread_.joinable()) {
      Terminate();
      thread_.join();
    }
    close(wake_fd_);
  }

  absl::Status StartWorkers();

  absl::Status Submit(std::shared_ptr<Job> job, const std::string& function, Batch batch,
                      size_t chunksize, const SubmitOptions& options);

  std::string TakeBuffer(size_t size) { return buffers_->Take(size); }

  void Close() {
    {
      MutexLock lock(&mu_);
      closed_ = true;
    }
    Wake();
  }
  void Terminate() {
    {
      MutexLock lock(&mu_);
      terminated_ = true;
    }
    Wake();
  }
  absl::Status Join(absl::Duration timeout);

  int workers() const { return options_.workers; }
  // Cancel and Started: a question to the manager thread, which owns the workers' chunks; the
  // asking thread blocks until it answers (it never blocks for long).
  struct Request {
    enum Kind { kCancel, kStarted } kind = kCancel;
    Job* job = nullptr;
    bool answered = false;  // guarded by mu_
    bool answer = false;    // guarded by mu_
  };
  bool Ask(Request::Kind kind, Job* job);

  // Engine::Assist and Engine::RunInManagerThread (engine.h).
  void Assist(const Job& job, Deadline deadline);
  void WatchReplies();
  void RunInManagerThread(absl::AnyInvocable<void() &&> fn);

  std::vector<int> WorkerPids() const {
    MutexLock lock(&mu_);
    return pids_;
  }

 private:
  absl::StatusOr<Worker> StartWorker(int slot);
  void Wake() {
    const uint64_t one = 1;
    ssize_t n;
    do {
      n = write(wake_fd_, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
  }

  // The bytes chunk `c` takes in a message, at most; AppendChunk appends it to `m`.
  static size_t ChunkSize(const Chunk& c);
  static void AppendChunk(const Chunk& c, std::string& m);
  // Sends the chunks assigned to `w` and not yet sent, several to a message (wire.h's chunks).
  void SendAssigned(Worker& w);

  Slot* SlotAt(int slot) const { return static_cast<Slot*>(slots_.At(slots_offset_)) + slot; }

  // Whether `w` owes replies that a thread can watch for without system calls (its transport's
  // HasInputNow is the whole answer): what AwaitReplyBriefly and Assist spin on.
  static bool Watchable(const Worker& w) {
    return !w.outstanding.empty() && w.transport->SeesInputWithoutSystemCall();
  }

  // Whether `w` may be given another chunk (maxtasksperchild counts the ones it holds).
  bool MayTake(const Worker& w) const;

  // Whether `w` has read every message sent to it: nothing waits in the sender thread's queue nor
  // in its socket (SIOCOUTQ counts the bytes it has not read).
  bool ReadEverything(const Worker& w);

  // Whether `w` is free for a chunk: it may take one, holds none, and (after chunks were taken back
  // from it) has read everything sent to it.
  bool Idle(Worker& w);

  std::optional<Chunk> TakePending();

  bool PendingEmpty() const;

  void Assign(Worker& w, Chunk c);

  // Gives one pending chunk to each idle worker. Returns whether an idle worker is left (nothing
  // was pending for it).
  bool AssignToIdle();

  // For an idle worker with nothing pending: takes back, into the front of the queue, the chunks
  // that other workers were given but have not started. From a worker running a chunk, at once
  // (its second chunk would wait for the first); from a worker that started none of its chunks,
  // once the first waited kStartGraceNs (the worker may be stopped). Slot::claimed decides each
  // race with the worker starting the chunk. Returns whether any chunk came back.
  bool TakeBackUnstarted();

  // When the manager must look again without an event (MonotonicNowNs; INT64_MAX if it need
  // not): when the grace of a chunk that is still unstarted ends, and, while work waits (pending,
  // or held unstarted), every kStartGraceNs for a worker that chunks were taken back from to have
  // read them (reading them sends nothing); and at `at` at the latest.
  int64_t NextCheck(int64_t at);
  // When the manager's Wait is to end: NextCheck(timed_at); while the pool was busy in the last
  // kTickWindowNs, kStartGraceNs from now at the latest, so that Submit's own Dispatch of untimed
  // chunks need not wake it (a grace period it started then ends within one more kStartGraceNs).
  int64_t WaitUntil(int64_t timed_at);
  // Answers the queued Cancel / Started requests (manager thread).
  void AnswerRequests();
  // Runs what RunInManagerThread queued (manager thread).
  void RunManagerTasks();
  // Whether this thread does the manager's work now: the manager thread, or one in Assist (a done
  // hook there must not wait for the manager either).
  bool InEngineThread() const;
  // For a thread that worked on the workers under work_mu_ while the manager waits (Submit's
  // Dispatch, Assist), before it lets go of work_mu_: lets every worker that owes replies wake the
  // manager's Wait again (with `arm`; else notes in unwatched_ that some may not), and returns
  // whether the manager must be woken now: input came meanwhile (it may not wake the Wait), the
  // manager must look again sooner than it planned (a time limit; a grace period while its Wait
  // has no tick, see WaitUntil), or chunks are still queued.
  bool LeaveAsGuest(bool arm = true);
  // Lets every worker that owes replies and can be watched without system calls wake the
  // manager's Wait; returns whether input waits already (the Wait may not wake for it). Clears
  // unwatched_.
  bool ArmBusy();
  // Whether a worker claimed one of `job`'s chunks, or one of its items is done.
  bool JobStarted(const Job& job);
  // Engine::Cancel on the manager thread (dispatch.cc).
  bool CancelJob(Job& job);
  // Kills every worker whose running task is over its time limit (timeouts.cc). Returns when to
  // look again (MonotonicNowNs; INT64_MAX: no timed task is in flight).
  int64_t EnforceTimeouts();

  // Gives pending chunks to workers, as CPython's workers take tasks from one queue when they are
  // free: one to each idle worker first; with a worker idle and nothing pending, the chunks that
  // busy workers hold unstarted come back for it; only when no worker is idle do workers get more
  // (those down to kRefillHeldChunks, up to kMaxHeldChunks), so that they need not wait for their
  // next one (a chunk waiting there behind a long task comes back as soon as another worker is
  // idle). What a worker was given goes in one message. Then stop messages to idle workers of a
  // closed pool and to workers at maxtasksperchild.
  void Dispatch();

  // Delivers one message from `w`: msg[0, length). Not OK when the message is malformed or
  // unexpected.
  absl::Status HandleMessage(Worker& w, std::string msg, size_t length);

  // Reads every message the worker has sent (`readable`: a Wait just said a message or the end
  // waits). False when its connection is at its end.
  bool Drain(Worker& w, bool readable = false);

  // The worker ended: settles its chunks and replaces it if there is work left.
  void HandleExit(size_t index);

  // Fails every queued and outstanding task with `status`.
  void FailAll(const absl::Status& status);

  void KillAll();

  void Run();

  const std::unique_ptr<WorkerLauncher> launcher_;
  const EngineOptions options_;
  const ShmSegment slots_;
  const uint64_t slots_offset_;
  const int wake_fd_;
  const std::shared_ptr<Buffers> buffers_ = std::make_shared<Buffers>();
  std::atomic<uint64_t> next_job_{0};
  int worker_count_ = 0;  // manager thread (and Create) only

  // The workers and what they hold: the manager thread's, which holds work_mu_ except while it
  // waits for an event; Submit takes work_mu_ (TryLock only, never waiting) to Dispatch while the
  // manager waits. Everything below up to mu_ is the holder's of work_mu_.
  Mutex work_mu_;
  std::vector<Worker> workers_;
  int64_t manager_wakes_at_ = INT64_MAX;  // when the manager's current Wait ends (MonotonicNowNs)
  int64_t last_busy_ = 0;                 // when a worker last held a chunk (MonotonicNowNs)
  // Assists that took work_mu_: the manager's Wait result may be stale once one ran meanwhile.
  uint64_t assists_ = 0;
  // A Submit left a worker that owes replies unable to wake the manager's Wait (looked_for);
  // written under work_mu_, read by WatchReplies without it.
  std::atomic<bool> unwatched_{false};
  FromWorker from_worker_;  // the last message decoded (its vectors reused)
  std::thread thread_;
  Mutex join_mu_;

  std::unique_ptr<Sender> sender_;  // made by StartWorkers

  mutable Mutex mu_;
  std::condition_variable done_cv_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // the manager thread has finished
  std::deque<Request*> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::AnyInvocable<void() &&>> manager_tasks_ ABSL_GUARDED_BY(mu_);
  std::atomic<std::thread::id> manager_id_{};  // thread_'s id, once it runs
  std::condition_variable request_cv_;         // a request was answered
  std::deque<Chunk> pending_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool terminated_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  std::vector<int> pids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_ENGINE_IMPL_H_
