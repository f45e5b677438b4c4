// Copyright 2026 The mp Authors.
//
// The engine's hooks for faces (ProcessPoolExecutor): Job done hooks, Cancel, Started, and the
// per-submit time limit's validation, under every start method. Tasks block on FIFOs the test
// controls, so which task runs when is decided by the test, not by timing.

#include "pool/engine.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "pool/job.h"
#include "pool/process_launcher.h"
#include "pool/task.h"
#include "pool/test_util.h"
#include "start_methods/fork.h"
#include "start_methods/forkserver.h"
#include "start_methods/spawn.h"
#include "start_methods/test_methods.h"
#include "testing/sanitizers.h"

namespace engine_test {

using ::absl::StatusCode;
using ::mp::pool_internal::Batch;
using ::mp::pool_internal::Engine;
using ::mp::pool_internal::Job;

// Writes a line into the FIFO `ready`, then blocks until the test writes into (or closes) the FIFO
// `release`; returns 7.
int64_t BlockUntilReleased(std::string ready, std::string release) {
  return mp::pool_testing::ReportAndAwaitRelease(ready, "r\n", release) ? 7 : -1;
}

// Creates the file `path` (evidence that the task ran); returns 1.
int64_t Mark(std::string path) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  close(fd);
  return 1;
}

// A directory with two FIFOs, removed at the end.
class Fifos {
 public:
  Fifos() {
    char tmpl[] = "/tmp/mp-engine-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    ready_ = dir_ + "/ready";
    release_ = dir_ + "/release";
    mkfifo(ready_.c_str(), 0600);
    mkfifo(release_.c_str(), 0600);
  }
  ~Fifos() {
    unlink(ready_.c_str());
    unlink(release_.c_str());
    unlink(mark().c_str());
    rmdir(dir_.c_str());
  }
  const std::string& ready() const { return ready_; }
  const std::string& release() const { return release_; }
  std::string mark() const { return dir_ + "/mark"; }
  // Waits (60 s at most) for the blocked task's line.
  bool WaitReady() const {
    const int fd = open(ready_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return false;
    bool got = false;
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 60000) <= 0) break;
      char c;
      const ssize_t n = read(fd, &c, 1);
      if (n == 1 && c == '\n') {
        got = true;
        break;
      }
      if (n == 0 || (n < 0 && errno != EAGAIN)) break;
    }
    close(fd);
    return got;
  }
  // Lets the blocked task return.
  void Release() const {
    const int fd = open(release_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    (void)!write(fd, "x", 1);
    close(fd);
  }

 private:
  std::string dir_, ready_, release_;
};

int64_t Twice(int64_t x) { return 2 * x; }

// A launcher that counts the messages the engine sends to its workers.
class CountingLauncher : public mp::pool_internal::WorkerLauncher {
 public:
  explicit CountingLauncher(std::shared_ptr<mp::StartMethod> method)
      : inner_(std::move(method)), sends_(std::make_shared<std::atomic<int>>(0)) {}
  std::shared_ptr<std::atomic<int>> sends() const { return sends_; }

  absl::StatusOr<std::unique_ptr<mp::pool_internal::LaunchedWorker>> Start(
      const mp::pool_internal::WorkerSpec& spec) override {
    absl::StatusOr<std::unique_ptr<mp::pool_internal::LaunchedWorker>> w = inner_.Start(spec);
    if (!w.ok()) return w.status();
    return std::make_unique<Counted>(*std::move(w), sends_);
  }

 private:
  class CountedTransport : public mp::pool_internal::WorkerTransport {
   public:
    CountedTransport(mp::pool_internal::WorkerTransport& inner,
                     std::shared_ptr<std::atomic<int>> sends)
        : inner_(inner), sends_(std::move(sends)) {}
    absl::Status Send(absl::string_view message) override {
      sends_->fetch_add(1);
      return inner_.Send(message);
    }
    bool CanSendWithoutBlocking(size_t size, bool all_read) override {
      return inner_.CanSendWithoutBlocking(size, all_read);
    }
    bool AllRead() override { return inner_.AllRead(); }
    absl::Status Receive(std::string& buffer, size_t* length) override {
      return inner_.Receive(buffer, length);
    }
    absl::StatusOr<bool> Readable() override { return inner_.Readable(); }
    mp::Waitable ReadWaitable() const override { return inner_.ReadWaitable(); }
    void Close() override { inner_.Close(); }

   private:
    mp::pool_internal::WorkerTransport& inner_;
    const std::shared_ptr<std::atomic<int>> sends_;
  };
  class Counted : public mp::pool_internal::LaunchedWorker {
   public:
    Counted(std::unique_ptr<mp::pool_internal::LaunchedWorker> inner,
            std::shared_ptr<std::atomic<int>> sends)
        : inner_(std::move(inner)), transport_(inner_->transport(), std::move(sends)) {}
    mp::pool_internal::WorkerTransport& transport() override { return transport_; }
    int pid() const override { return inner_->pid(); }
    int sentinel() const override { return inner_->sentinel(); }
    absl::Status Kill() override { return inner_->Kill(); }
    std::optional<int> Reap() override { return inner_->Reap(); }

   private:
    const std::unique_ptr<mp::pool_internal::LaunchedWorker> inner_;
    CountedTransport transport_;
  };

  mp::pool_internal::ProcessLauncher inner_;
  const std::shared_ptr<std::atomic<int>> sends_;
};

template <auto Fn, typename... A>
Batch OneTask(A&&... args) {
  Batch batch;
  EXPECT_TRUE(
      mp::pool_internal::AddItem(batch, mp::pool_internal::ArgsOf<Fn>(std::forward<A>(args)...))
          .ok());
  return batch;
}

template <auto Fn>
const std::string& Name() {
  mp::pool_internal::CheckTask<Fn>();
  return *mp::pool_internal::TaskRegistrar<Fn>::name;
}

class EngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<mp::StartMethod> Method() const { return mp::testing::MethodNamed(GetParam()); }
  std::unique_ptr<Engine> MakeEngine(
      int workers, std::unique_ptr<mp::pool_internal::WorkerLauncher> launcher = nullptr) {
    if (launcher == nullptr) {
      launcher = std::make_unique<mp::pool_internal::ProcessLauncher>(Method());
    }
    absl::StatusOr<std::unique_ptr<Engine>> engine =
        Engine::Create(std::move(launcher), {.workers = workers});
    EXPECT_TRUE(engine.ok()) << engine.status();
    return engine.ok() ? *std::move(engine) : nullptr;
  }
  // Submits a job whose one task blocks until `fifos` releases it, and waits until it runs; null
  // (and a failure recorded) when either fails.
  static std::shared_ptr<Job> SubmitBlocker(Engine& engine, const Fifos& fifos) {
    auto job = std::make_shared<Job>(1, "Submit<BlockUntilReleased>");
    const absl::Status s =
        engine.Submit(job, Name<&BlockUntilReleased>(),
                      OneTask<&BlockUntilReleased>(fifos.ready(), fifos.release()), 1);
    if (!s.ok()) {
      ADD_FAILURE() << s;
      return nullptr;
    }
    if (!fifos.WaitReady()) {
      ADD_FAILURE() << "the blocking task did not start";
      return nullptr;
    }
    return job;
  }
};

// One worker, blocked in job A: job B waits as the worker's second chunk (sent, unstarted) and job
// C in the queue. Cancelling B and C takes both back; neither ever runs; A, running, cannot be
// cancelled and completes normally.
TEST_P(EngineTest, CancelTakesBackQueuedJobsButNotARunningOne) {
  std::unique_ptr<Engine> engine = MakeEngine(1);
  ASSERT_NE(engine, nullptr);
  Fifos fifos;
  std::shared_ptr<Job> a = SubmitBlocker(*engine, fifos);
  ASSERT_NE(a, nullptr);
  auto b = std::make_shared<Job>(1, "Submit<Mark>");
  auto c = std::make_shared<Job>(1, "Submit<Mark>");
  ASSERT_TRUE(engine->Submit(b, Name<&Mark>(), OneTask<&Mark>(fifos.mark()), 1).ok());
  ASSERT_TRUE(engine->Submit(c, Name<&Mark>(), OneTask<&Mark>(fifos.mark()), 1).ok());
  EXPECT_TRUE(engine->Started(a));
  EXPECT_FALSE(engine->Started(b));
  EXPECT_FALSE(engine->Started(c));

  EXPECT_FALSE(engine->Cancel(a));
  EXPECT_TRUE(engine->Cancel(b));
  EXPECT_TRUE(engine->Cancel(c));
  EXPECT_FALSE(engine->Cancel(c));  // already done (cancelled)
  for (const auto& job : {b, c}) {
    ASSERT_TRUE(job->Ready());
    EXPECT_EQ(mp::pool_internal::ItemResult<int64_t>(*job, 0).status().code(),
              StatusCode::kCancelled);
  }

  fifos.Release();
  ASSERT_TRUE(a->WaitAll(mp::Deadline::After(absl::Seconds(60))));
  EXPECT_EQ(*mp::pool_internal::ItemResult<int64_t>(*a, 0), 7);
  // A later job on the same (only) worker runs after everything sent before it: B and C never ran.
  std::shared_ptr<Job> d = SubmitBlocker(*engine, fifos);
  ASSERT_NE(d, nullptr);
  fifos.Release();
  ASSERT_TRUE(d->WaitAll(mp::Deadline::After(absl::Seconds(60))));
  EXPECT_NE(access(fifos.mark().c_str(), F_OK), 0) << "a cancelled task ran";
  engine->Close();
  EXPECT_TRUE(engine->Join(absl::Seconds(60)).ok());
}

// Work queued behind a busy worker reaches it many chunks to a message: one worker, blocked in job
// A, while 200 one-task jobs are submitted; once A returns, the chunks the worker does not already
// hold (it holds at most 32) arrive at least 16 to a message. Every job gets its result.
TEST_P(EngineTest, QueuedChunksGoManyToAMessage) {
  auto launcher = std::make_unique<CountingLauncher>(Method());
  std::shared_ptr<std::atomic<int>> sends = launcher->sends();
  std::unique_ptr<Engine> engine = MakeEngine(1, std::move(launcher));
  ASSERT_NE(engine, nullptr);
  Fifos fifos;
  std::shared_ptr<Job> a = SubmitBlocker(*engine, fifos);
  ASSERT_NE(a, nullptr);
  constexpr int kJobs = 200;
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < kJobs; ++i) {
    jobs.push_back(std::make_shared<Job>(1, "Submit<Twice>"));
    ASSERT_TRUE(engine->Submit(jobs.back(), Name<&Twice>(), OneTask<&Twice>(int64_t{i}), 1).ok());
  }
  fifos.Release();
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_TRUE(jobs[i]->WaitAll(mp::Deadline::After(absl::Seconds(60))));
    EXPECT_EQ(*mp::pool_internal::ItemResult<int64_t>(*jobs[i], 0), 2 * i);
  }
  // Whenever the manager tops the worker up: while A runs, k <= 31 messages of at least one chunk
  // until it holds 32; after A, at least 16 chunks to a message. At most 1 + k + ceil((200 - k) /
  // 16) <= 43 messages (one per job, 201, without batching).
  EXPECT_LE(sends->load(), 1 + 31 + (kJobs - 31 + 15) / 16);
  engine->Close();
  EXPECT_TRUE(engine->Join(absl::Seconds(60)).ok());
}

// A done hook runs once, in the engine's manager thread, when the last item is recorded; one added
// after the job is done is refused, so that the caller runs it.
TEST_P(EngineTest, DoneHookRunsOnceInTheManagerThread) {
  std::unique_ptr<Engine> engine = MakeEngine(1);
  ASSERT_NE(engine, nullptr);
  Fifos fifos;
  auto job = std::make_shared<Job>(1, "Submit<BlockUntilReleased>");
  std::atomic<int> runs{0};
  std::atomic<bool> other_thread{false};
  const std::thread::id test_thread = std::this_thread::get_id();
  ASSERT_TRUE(job->AddDoneHook([&] {
    other_thread = std::this_thread::get_id() != test_thread;
    ++runs;
  }));
  ASSERT_TRUE(engine
                  ->Submit(job, Name<&BlockUntilReleased>(),
                           OneTask<&BlockUntilReleased>(fifos.ready(), fifos.release()), 1)
                  .ok());
  ASSERT_TRUE(fifos.WaitReady());
  EXPECT_EQ(runs, 0);
  fifos.Release();
  ASSERT_TRUE(job->WaitAll(mp::Deadline::After(absl::Seconds(60))));
  engine->Close();
  ASSERT_TRUE(engine->Join(absl::Seconds(60)).ok());  // the manager thread has finished
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(other_thread);
  EXPECT_FALSE(job->AddDoneHook([&] { ++runs; }));
  EXPECT_EQ(runs, 1);
}

// Assist: a waiting thread that finds the manager waiting takes the reply itself, and the job's
// done hook then runs in that thread (a face that needs it elsewhere defers it); otherwise the
// manager delivers. Either way every job finishes, each hook runs once, and Assist returns within
// its 50 us watch when the reply is slow (a blocked task).
TEST_P(EngineTest, AssistTakesPromptRepliesInTheWaitingThread) {
  std::unique_ptr<Engine> engine = MakeEngine(1);
  ASSERT_NE(engine, nullptr);
  constexpr int kJobs = 300;
  const std::thread::id test_thread = std::this_thread::get_id();
  struct Seen {
    std::atomic<int> runs{0};
    std::atomic<bool> here{false};
  };
  std::vector<Seen> seen(kJobs);  // hooks run after WaitAll may return: read after Join
  for (int i = 0; i < kJobs; ++i) {
    auto job = std::make_shared<Job>(1, "Submit<Twice>");
    Seen& s = seen[i];
    ASSERT_TRUE(job->AddDoneHook([&s, test_thread] {
      s.here = std::this_thread::get_id() == test_thread;
      ++s.runs;
    }));
    ASSERT_TRUE(
        engine->Submit(job, Name<&Twice>(), OneTask<&Twice>(int64_t{i}), 1, {.looked_for = true})
            .ok());
    engine->Assist(*job, mp::Deadline::After(absl::Seconds(60)));
    engine->WatchReplies();
    ASSERT_TRUE(job->WaitAll(mp::Deadline::After(absl::Seconds(60))));
    EXPECT_EQ(*mp::pool_internal::ItemResult<int64_t>(*job, 0), 2 * i);
  }
  // A slow reply: Assist gives up, the manager delivers it.
  Fifos fifos;
  std::shared_ptr<Job> blocked = SubmitBlocker(*engine, fifos);
  ASSERT_NE(blocked, nullptr);
  engine->Assist(*blocked, mp::Deadline::After(absl::Seconds(60)));
  EXPECT_FALSE(blocked->Ready());
  engine->WatchReplies();
  fifos.Release();
  ASSERT_TRUE(blocked->WaitAll(mp::Deadline::After(absl::Seconds(60))));
  engine->Close();
  ASSERT_TRUE(engine->Join(absl::Seconds(60)).ok());
  int in_this_thread = 0;
  for (int i = 0; i < kJobs; ++i) {
    EXPECT_EQ(seen[i].runs.load(), 1) << "job " << i;
    in_this_thread += seen[i].here ? 1 : 0;
  }
  // A trivial task's reply comes within the watch nearly always on a plain build; none in 300 would
  // mean Assist never takes one. (Under a sanitizer a worker's turnaround may exceed the watch.)
#if !defined(MP_TESTING_TSAN) && !defined(MP_TESTING_ASAN)
  EXPECT_GE(in_this_thread, 1);
#else
  (void)in_this_thread;
#endif
}

// A submission whose results are looked for, which nobody looks for after all: its replies still
// arrive (the manager's tick takes them), in order, for a whole stream of them.
TEST_P(EngineTest, LookedForRepliesArriveWithoutAnyLook) {
  std::unique_ptr<Engine> engine = MakeEngine(2);
  ASSERT_NE(engine, nullptr);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 50; ++i) {
    jobs.push_back(std::make_shared<Job>(1, "Submit<Twice>"));
    ASSERT_TRUE(engine
                    ->Submit(jobs.back(), Name<&Twice>(), OneTask<&Twice>(int64_t{i}), 1,
                             {.looked_for = true})
                    .ok());
  }
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(jobs[i]->WaitAll(mp::Deadline::After(absl::Seconds(60)))) << i;
    EXPECT_EQ(*mp::pool_internal::ItemResult<int64_t>(*jobs[i], 0), 2 * i);
  }
  engine->Close();
  EXPECT_TRUE(engine->Join(absl::Seconds(60)).ok());
}

// Assist from the manager thread (a done hook) returns at once, and a hook running in an Assist
// may still ask Started (answered without the manager, which cannot answer while Assist holds it).
TEST_P(EngineTest, AssistFromAHookAndAHookInAnAssistDoNotWaitForTheManager) {
  std::unique_ptr<Engine> engine = MakeEngine(1);
  ASSERT_NE(engine, nullptr);
  constexpr int kJobs = 100;
  std::vector<std::atomic<bool>> started(kJobs);
  std::vector<std::shared_ptr<Job>> jobs;
  jobs.reserve(kJobs);  // the hooks hold references to the elements
  for (int i = 0; i < kJobs; ++i) {
    jobs.push_back(std::make_shared<Job>(1, "Submit<Twice>"));
    Job* job = jobs.back().get();
    const std::shared_ptr<Job>& shared = jobs.back();
    ASSERT_TRUE(job->AddDoneHook([&engine, job, &shared, &flag = started[i]] {
      engine->Assist(*job, mp::Deadline::Never());
      flag = engine->Started(shared);
    }));
    ASSERT_TRUE(engine
                    ->Submit(jobs.back(), Name<&Twice>(), OneTask<&Twice>(int64_t{i}), 1,
                             {.looked_for = true})
                    .ok());
    engine->Assist(*job, mp::Deadline::After(absl::Seconds(60)));
    engine->WatchReplies();
    ASSERT_TRUE(job->WaitAll(mp::Deadline::After(absl::Seconds(60))));
  }
  engine->Close();
  ASSERT_TRUE(engine->Join(absl::Seconds(60)).ok());                       // every hook has run
  for (int i = 0; i < kJobs; ++i) EXPECT_TRUE(started[i]) << "job " << i;  // its item was done
}

// The hooks of a cancelled job run before Cancel returns.
TEST_P(EngineTest, CancelRunsTheDoneHooks) {
  std::unique_ptr<Engine> engine = MakeEngine(1);
  ASSERT_NE(engine, nullptr);
  Fifos fifos;
  std::shared_ptr<Job> a = SubmitBlocker(*engine, fifos);
  ASSERT_NE(a, nullptr);
  auto b = std::make_shared<Job>(1, "Submit<Mark>");
  std::atomic<int> runs{0};
  ASSERT_TRUE(b->AddDoneHook([&] { ++runs; }));
  ASSERT_TRUE(engine->Submit(b, Name<&Mark>(), OneTask<&Mark>(fifos.mark()), 1).ok());
  EXPECT_TRUE(engine->Cancel(b));
  EXPECT_EQ(runs, 1);
  fifos.Release();
  engine->Close();
  EXPECT_TRUE(engine->Join(absl::Seconds(60)).ok());
}

TEST_P(EngineTest, NonPositiveSubmitTimeoutsAreInvalid) {
  std::unique_ptr<Engine> engine = MakeEngine(1);
  ASSERT_NE(engine, nullptr);
  for (absl::Duration bad : {absl::ZeroDuration(), absl::Milliseconds(-5)}) {
    auto job = std::make_shared<Job>(1, "Submit<Mark>");
    absl::Status s = engine->Submit(
        job, Name<&Mark>(), OneTask<&Mark>(std::string("/nonexistent/x")), 1, {.timeout = bad});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  }
  engine->Terminate();
  EXPECT_TRUE(engine->Join(absl::Seconds(60)).ok());
}

INSTANTIATE_TEST_SUITE_P(Methods, EngineTest, ::testing::Values("fork", "spawn", "forkserver"));

}  // namespace engine_test
