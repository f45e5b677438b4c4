// Copyright 2026 The mp Authors.
//
// ProcessPoolExecutor under fork, spawn and forkserver: Submit and its futures (Running and Cancel
// routed to the engine, callbacks in the engine's thread), a worker that kills itself failing only
// its future, per-task time limits, Map (order, chunks, timeout, buffersize), Shutdown with
// cancel_futures, the initializer. Tasks block on FIFOs the test controls, never on sleeps.

#include "pool/process_pool_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "futures/future.h"
#include "futures/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pool/initializer.h"
#include "pool/test_util.h"
#include "start_methods/fork.h"
#include "start_methods/forkserver.h"
#include "start_methods/spawn.h"
#include "start_methods/test_methods.h"

namespace ppe_test {

using ::absl::StatusCode;
using ::testing::HasSubstr;

constexpr absl::Duration kBound = absl::Seconds(60);  // safety bound: a broken test fails

int64_t Square(int64_t x) { return x * x; }
std::string Greet(std::string name, int64_t times) {
  std::string out;
  for (int64_t i = 0; i < times; ++i) absl::StrAppend(&out, "hi ", name, ";");
  return out;
}
absl::StatusOr<int64_t> FailOnSeven(int64_t x) {
  if (x == 7) return absl::InvalidArgumentError("seven is not allowed");
  return x;
}
absl::Status Refuse(int64_t x) { return absl::PermissionDeniedError(absl::StrCat("no ", x)); }
void Nothing(int64_t) {}
int64_t Throws(int64_t) { throw std::runtime_error("boom"); }
int64_t KillSelf(int64_t) {
  raise(SIGKILL);
  return -1;
}
using ::mp::pool_testing::Pid;

// Writes "r\n" into the FIFO `ready`, then blocks until the test writes into (or closes) the FIFO
// `release`; returns 7.
int64_t BlockUntilReleased(std::string ready, std::string release) {
  return mp::pool_testing::ReportAndAwaitRelease(ready, "r\n", release) ? 7 : -1;
}
int64_t Mark(std::string path);
// An item of Map, "<dir>|<item>": item 2 blocks in BlockUntilReleased (the FIFOs of `dir`), items
// after it leave <dir>/mark (evidence that they ran), the others just return.
int64_t BlockOnTwo(std::string dir_and_item) {
  const size_t bar = dir_and_item.rfind('|');
  const std::string dir = dir_and_item.substr(0, bar);
  const int64_t item = std::stoll(dir_and_item.substr(bar + 1));
  if (item > 2) return Mark(dir + "/mark") == 1 ? item : -1;
  if (item != 2) return item;
  return BlockUntilReleased(dir + "/ready", dir + "/release") == 7 ? item : -1;
}
// Creates the file `path` (evidence that the task ran); returns 1.
int64_t Mark(std::string path) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  close(fd);
  return 1;
}
// Never returns (until its worker is killed).
int64_t Hang(int64_t) {
  for (;;) pause();
}

int64_t g_base = 0;
absl::Status SetBase(int64_t v) {
  if (v < 0) return absl::FailedPreconditionError("base refused");
  g_base = v;
  return absl::OkStatus();
}
int64_t PlusBase(int64_t x) { return g_base + x; }

// A temporary directory with the two FIFOs BlockUntilReleased uses, removed at the end.
class Fifos {
 public:
  Fifos() {
    char tmpl[] = "/tmp/mp-ppe-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    mkfifo(ready().c_str(), 0600);
    mkfifo(release().c_str(), 0600);
  }
  ~Fifos() {
    unlink(ready().c_str());
    unlink(release().c_str());
    unlink(mark().c_str());
    rmdir(dir_.c_str());
  }
  const std::string& dir() const { return dir_; }
  std::string ready() const { return dir_ + "/ready"; }
  std::string release() const { return dir_ + "/release"; }
  std::string mark() const { return dir_ + "/mark"; }

  // Waits (bounded) for a task's "r\n" on the ready FIFO.
  bool AwaitReady() const {
    const int fd = open(ready().c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return false;
    bool got = false;
    const mp::Deadline deadline = mp::Deadline::After(kBound);
    while (!got && !deadline.Expired()) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, mp::PollMillis(deadline)) <= 0) break;
      char c;
      const ssize_t n = read(fd, &c, 1);
      if (n == 1 && c == '\n') got = true;
      if (n == 0) {  // the writer has not opened yet or closed: wait for it
        if (p.revents & POLLHUP) std::this_thread::yield();
      }
    }
    close(fd);
    return got;
  }
  // Lets the blocked task go (bounded wait for it to open its end).
  bool Release() const {
    const mp::Deadline deadline = mp::Deadline::After(kBound);
    for (;;) {
      const int fd = open(release().c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) {
        const bool wrote = write(fd, "x", 1) == 1;
        close(fd);
        return wrote;
      }
      if (errno != ENXIO || deadline.Expired()) return false;
      std::this_thread::yield();  // the task has not opened it yet
    }
  }
  bool Marked() const { return access(mark().c_str(), F_OK) == 0; }
  // BlockOnTwo's items first .. last - 1 for these FIFOs.
  std::vector<std::string> Items(int first, int last) const {
    std::vector<std::string> items;
    for (int i = first; i < last; ++i) items.push_back(absl::StrCat(dir_, "|", i));
    return items;
  }

 private:
  std::string dir_;
};

class ProcessPoolExecutorTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<mp::StartMethod> method() const { return mp::testing::MethodNamed(GetParam()); }
  mp::ProcessPoolExecutor Make(mp::ProcessPoolExecutorOptions options = {.max_workers = 2}) {
    options.method = method();
    absl::StatusOr<mp::ProcessPoolExecutor> e = mp::ProcessPoolExecutor::Create(std::move(options));
    EXPECT_TRUE(e.ok()) << e.status();
    return *std::move(e);
  }
};

TEST_P(ProcessPoolExecutorTest, SubmitResults) {
  mp::ProcessPoolExecutor e = Make();
  EXPECT_EQ(e.max_workers(), 2);
  mp::Future<int64_t> sq = e.Submit<&Square>(7);
  mp::Future<std::string> greet = e.Submit<&Greet>(std::string("bo"), 2);
  mp::Future<int64_t> seven = e.Submit<&FailOnSeven>(7);
  mp::Future<mp::Unit> refused = e.Submit<&Refuse>(3);
  mp::Future<mp::Unit> nothing = e.Submit<&Nothing>(3);
  mp::Future<int64_t> thrown = e.Submit<&Throws>(1);
  EXPECT_EQ(*sq.Result(kBound), 49);
  EXPECT_EQ(*greet.Result(kBound), "hi bo;hi bo;");
  EXPECT_EQ(seven.Status(kBound), absl::InvalidArgumentError("seven is not allowed"));
  EXPECT_EQ(refused.Status(kBound), absl::PermissionDeniedError("no 3"));
  EXPECT_TRUE(nothing.Result(kBound).ok());
  absl::Status t = thrown.Status(kBound);
  EXPECT_EQ(t.code(), StatusCode::kUnknown);
  EXPECT_THAT(t.message(), HasSubstr("threw std::runtime_error: boom"));
  EXPECT_THAT(sq.description(), HasSubstr("ppe_test::Square"));
}

TEST_P(ProcessPoolExecutorTest, AWorkerThatKillsItselfFailsOnlyItsFuture) {
  mp::ProcessPoolExecutor e = Make();
  std::vector<mp::Future<int64_t>> before, after;
  for (int64_t i = 0; i < 4; ++i) before.push_back(e.Submit<&Square>(i));
  mp::Future<int64_t> killed = e.Submit<&KillSelf>(0);
  for (int64_t i = 0; i < 4; ++i) after.push_back(e.Submit<&Square>(i + 10));
  absl::Status s = killed.Status(kBound);
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s;
  EXPECT_THAT(s.message(), HasSubstr("died (signal 9)"));
  EXPECT_THAT(s.message(), HasSubstr("worker pid "));
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(*before[i].Result(kBound), i * i);
    EXPECT_EQ(*after[i].Result(kBound), (i + 10) * (i + 10));
  }
  // The dead worker was replaced: two workers still serve.
  EXPECT_EQ(e.WorkerPids().size(), 2u);
  EXPECT_EQ(*e.Submit<&Square>(5).Result(kBound), 25);
}

TEST_P(ProcessPoolExecutorTest, CancelPendingButNotRunning) {
  mp::ProcessPoolExecutor e = Make({.max_workers = 1});
  Fifos fifos;
  mp::Future<int64_t> running = e.Submit<&BlockUntilReleased>(fifos.ready(), fifos.release());
  ASSERT_TRUE(fifos.AwaitReady());
  mp::Future<int64_t> pending = e.Submit<&Mark>(fifos.mark());
  EXPECT_TRUE(running.Running());
  EXPECT_FALSE(running.Cancel());
  EXPECT_FALSE(running.Cancelled());
  EXPECT_FALSE(pending.Running());
  int callbacks = 0;
  pending.AddDoneCallback(
      [&callbacks](const mp::Future<int64_t>& f) { callbacks += f.Cancelled(); });
  EXPECT_TRUE(pending.Cancel());
  EXPECT_TRUE(pending.Cancelled());
  EXPECT_EQ(callbacks, 1);
  EXPECT_TRUE(pending.Cancel());  // again: true
  ASSERT_TRUE(fifos.Release());
  EXPECT_EQ(*running.Result(kBound), 7);
  EXPECT_EQ(pending.Result().status().code(), StatusCode::kCancelled);
  ASSERT_TRUE(e.Shutdown().ok());
  EXPECT_FALSE(fifos.Marked());  // the cancelled task never ran
}

TEST_P(ProcessPoolExecutorTest, CallbacksRunInTheEnginesThread) {
  mp::ProcessPoolExecutor e = Make({.max_workers = 1});
  Fifos fifos;
  mp::Future<int64_t> f = e.Submit<&BlockUntilReleased>(fifos.ready(), fifos.release());
  std::thread::id ran_in;
  int64_t seen = 0;
  f.AddDoneCallback([&](const mp::Future<int64_t>& done) {
    ran_in = std::this_thread::get_id();
    seen = *done.Result(absl::ZeroDuration());
  });
  ASSERT_TRUE(fifos.AwaitReady());
  ASSERT_TRUE(fifos.Release());
  ASSERT_TRUE(f.Result(kBound).ok());
  ASSERT_TRUE(e.Shutdown().ok());  // the callback ran before the manager thread went on
  EXPECT_EQ(seen, 7);
  EXPECT_NE(ran_in, std::this_thread::get_id());
  EXPECT_NE(ran_in, std::thread::id());
}

// Result() takes a prompt reply in its own thread (Engine::Assist, most of these trivial tasks);
// the futures' done callbacks still run in the engine's thread, in the order they were added, each
// once, and the future is done as soon as Result returns. A callback added to a future that is
// already done runs at once in the adding thread, as CPython's: that case is told apart by a flag
// set only around AddDoneCallback.
TEST_P(ProcessPoolExecutorTest, CallbacksStayInTheEnginesThreadWhenResultTakesTheReply) {
  mp::ProcessPoolExecutor e = Make({.max_workers = 1});
  constexpr int kTasks = 200;
  struct Seen {
    std::atomic<int> calls{0};
    std::atomic<bool> in_order{true};
    std::atomic<bool> in_result{false};  // ran in this thread outside AddDoneCallback
  };
  std::vector<Seen> seen(kTasks);
  const std::thread::id self = std::this_thread::get_id();
  static thread_local bool adding = false;
  for (int i = 0; i < kTasks; ++i) {
    mp::Future<int64_t> f = e.Submit<&Square>(i);
    Seen& s = seen[i];
    for (int k = 0; k < 2; ++k) {
      adding = true;
      f.AddDoneCallback([&s, k, self](const mp::Future<int64_t>&) {
        if (std::this_thread::get_id() == self && !adding) s.in_result = true;
        if (s.calls.fetch_add(1) != k) s.in_order = false;
      });
      adding = false;
    }
    ASSERT_EQ(*f.Result(kBound), int64_t{i} * i);
    EXPECT_TRUE(f.Done());
  }
  ASSERT_TRUE(e.Shutdown().ok());  // every callback handed to the manager thread ran
  for (int i = 0; i < kTasks; ++i) {
    EXPECT_EQ(seen[i].calls.load(), 2) << "task " << i;
    EXPECT_TRUE(seen[i].in_order.load()) << "task " << i;
    EXPECT_FALSE(seen[i].in_result.load()) << "task " << i;
  }
}

TEST_P(ProcessPoolExecutorTest, ACallbackMaySubmitMoreWork) {
  mp::ProcessPoolExecutor e = Make();
  mp::Future<int64_t> first = e.Submit<&Square>(3);
  std::promise<mp::Future<int64_t>> chained;
  first.AddDoneCallback([&e, &chained](const mp::Future<int64_t>& done) {
    chained.set_value(e.Submit<&Square>(*done.Result(absl::ZeroDuration())));
  });
  std::future<mp::Future<int64_t>> next = chained.get_future();
  ASSERT_EQ(next.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_EQ(*next.get().Result(kBound), 81);
}

TEST_P(ProcessPoolExecutorTest, PerTaskTimeoutKillsOnlyThatTask) {
  mp::ProcessPoolExecutor e = Make();
  mp::Future<int64_t> hung = e.Submit<&Hang>({.timeout = absl::Milliseconds(200)}, 0);
  std::vector<mp::Future<int64_t>> others;
  for (int64_t i = 0; i < 6; ++i) others.push_back(e.Submit<&Square>(i));
  absl::Status s = hung.Status(kBound);
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s;
  EXPECT_TRUE(hung.Done());  // the task's failure, not Status's own timeout
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(*others[i].Result(kBound), i * i);
}

TEST_P(ProcessPoolExecutorTest, WaitAndAsCompletedOverProcessFutures) {
  mp::ProcessPoolExecutor e = Make();
  Fifos fifos;
  mp::Future<int64_t> slow = e.Submit<&BlockUntilReleased>(fifos.ready(), fifos.release());
  mp::Future<int64_t> fast = e.Submit<&Square>(6);
  std::vector<mp::Future<int64_t>> fs = {slow, fast};
  mp::DoneAndNotDone<mp::Future<int64_t>> first =
      mp::WaitFutures(fs, kBound, mp::ReturnWhen::kFirstCompleted);
  ASSERT_EQ(first.done.size(), 1u);
  EXPECT_EQ(first.done[0], fast);
  mp::AsCompletedIterator<mp::Future<int64_t>> it = mp::AsCompleted(fs, kBound);
  EXPECT_EQ(*it.Next(), fast);
  ASSERT_TRUE(fifos.AwaitReady());
  ASSERT_TRUE(fifos.Release());
  EXPECT_EQ(*it.Next(), slow);
  EXPECT_EQ(*slow.Result(), 7);
}

TEST_P(ProcessPoolExecutorTest, MapInOrderWithChunks) {
  mp::ProcessPoolExecutor e = Make();
  std::vector<int64_t> xs;
  for (int64_t i = 0; i < 100; ++i) xs.push_back(i);
  for (int chunksize : {1, 7, 100, 1000}) {
    mp::MapIterator<int64_t> it = e.Map<&Square>(xs, {.chunksize = chunksize});
    for (int64_t i = 0; i < 100; ++i) {
      absl::StatusOr<int64_t> v = it.Next();
      ASSERT_TRUE(v.ok()) << chunksize << " " << i << ": " << v.status();
      EXPECT_EQ(*v, i * i);
    }
    EXPECT_EQ(it.Next().status().code(), StatusCode::kOutOfRange);
  }
  // A failing item is yielded in its place.
  mp::MapIterator<int64_t> f = e.Map<&FailOnSeven>(std::vector<int>{6, 7, 8}, {.chunksize = 2});
  EXPECT_EQ(*f.Next(), 6);
  EXPECT_EQ(f.Next().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*f.Next(), 8);
  mp::MapIterator<int64_t> bad = e.Map<&Square>(xs, {.chunksize = 0});
  absl::StatusOr<int64_t> b = bad.Next();
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(b.status().message(), HasSubstr("chunksize must be >= 1, got 0"));
}

TEST_P(ProcessPoolExecutorTest, MapBuffersize) {
  mp::ProcessPoolExecutor e = Make();
  std::vector<int64_t> xs;
  for (int64_t i = 0; i < 50; ++i) xs.push_back(i);
  mp::MapIterator<int64_t> it = e.Map<&Square>(xs, {.chunksize = 3, .buffersize = 4});
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(*it.Next(), i * i);
  EXPECT_EQ(it.Next().status().code(), StatusCode::kOutOfRange);
}

TEST_P(ProcessPoolExecutorTest, MapTimeoutCancelsTheRest) {
  mp::ProcessPoolExecutor e = Make({.max_workers = 1});
  Fifos fifos;
  const std::vector<std::string> items = fifos.Items(0, 6);
  mp::MapIterator<int64_t> it = e.Map<&BlockOnTwo>(items, {.timeout = absl::Milliseconds(300)});
  EXPECT_EQ(*it.Next(), 0);
  EXPECT_EQ(*it.Next(), 1);
  ASSERT_TRUE(fifos.AwaitReady());  // item 2 is running
  absl::StatusOr<int64_t> late = it.Next();
  EXPECT_EQ(late.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(late.status().message(), HasSubstr("the map's overall timeout"));
  EXPECT_EQ(it.Next().status().code(), StatusCode::kOutOfRange);
  ASSERT_TRUE(fifos.Release());
  ASSERT_TRUE(e.Shutdown().ok());
  EXPECT_FALSE(fifos.Marked());  // items 3.. were cancelled before they started
}

TEST_P(ProcessPoolExecutorTest, DestroyingAMapIteratorCancelsWholeChunks) {
  mp::ProcessPoolExecutor e = Make({.max_workers = 1});
  Fifos fifos;
  mp::Future<int64_t> running = e.Submit<&BlockUntilReleased>(fifos.ready(), fifos.release());
  ASSERT_TRUE(fifos.AwaitReady());
  {
    const std::vector<std::string> items = fifos.Items(3, 7);
    mp::MapIterator<int64_t> it = e.Map<&BlockOnTwo>(items, {.chunksize = 2});
  }  // two chunks of two, none started: every future is cancelled, the chunks taken back
  ASSERT_TRUE(fifos.Release());
  ASSERT_TRUE(e.Shutdown().ok());
  EXPECT_EQ(*running.Result(absl::ZeroDuration()), 7);
  EXPECT_FALSE(fifos.Marked());
}

TEST_P(ProcessPoolExecutorTest, ShutdownCancelFutures) {
  mp::ProcessPoolExecutor e = Make({.max_workers = 1});
  Fifos fifos;
  mp::Future<int64_t> running = e.Submit<&BlockUntilReleased>(fifos.ready(), fifos.release());
  ASSERT_TRUE(fifos.AwaitReady());
  std::vector<mp::Future<int64_t>> queued;
  for (int i = 0; i < 4; ++i) queued.push_back(e.Submit<&Mark>(fifos.mark()));
  ASSERT_TRUE(e.Shutdown({.wait = false, .cancel_futures = true}).ok());
  for (const mp::Future<int64_t>& f : queued) EXPECT_TRUE(f.Cancelled());
  EXPECT_FALSE(running.Cancelled());
  absl::Status after = e.Submit<&Square>(1).Status(absl::ZeroDuration());
  EXPECT_EQ(after.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(after.message(), HasSubstr("cannot schedule new futures after shutdown"));
  ASSERT_TRUE(fifos.Release());
  ASSERT_TRUE(e.Shutdown().ok());
  EXPECT_EQ(*running.Result(absl::ZeroDuration()), 7);
  EXPECT_FALSE(fifos.Marked());
}

TEST_P(ProcessPoolExecutorTest, ShutdownCancelFuturesTakesBackMapChunks) {
  mp::ProcessPoolExecutor e = Make({.max_workers = 1});
  Fifos fifos;
  mp::Future<int64_t> running = e.Submit<&BlockUntilReleased>(fifos.ready(), fifos.release());
  ASSERT_TRUE(fifos.AwaitReady());
  const std::vector<std::string> items = fifos.Items(3, 7);
  mp::MapIterator<int64_t> it = e.Map<&BlockOnTwo>(items, {.chunksize = 2});
  ASSERT_TRUE(e.Shutdown({.wait = false, .cancel_futures = true}).ok());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(it.Next().status().code(), StatusCode::kCancelled) << i;
  EXPECT_EQ(it.Next().status().code(), StatusCode::kOutOfRange);
  ASSERT_TRUE(fifos.Release());
  ASSERT_TRUE(e.Shutdown().ok());
  EXPECT_EQ(*running.Result(absl::ZeroDuration()), 7);
  EXPECT_FALSE(fifos.Marked());
}

TEST_P(ProcessPoolExecutorTest, ShutdownWaitsForTheTasks) {
  mp::ProcessPoolExecutor e = Make({.max_workers = 1});
  Fifos fifos;
  mp::Future<int64_t> f = e.Submit<&BlockUntilReleased>(fifos.ready(), fifos.release());
  ASSERT_TRUE(fifos.AwaitReady());
  absl::Status s = e.Shutdown({.timeout = absl::Milliseconds(20)});
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s;
  ASSERT_TRUE(fifos.Release());
  ASSERT_TRUE(e.Shutdown().ok());
  EXPECT_TRUE(f.Done());
  EXPECT_EQ(*f.Result(absl::ZeroDuration()), 7);
}

TEST_P(ProcessPoolExecutorTest, Initializer) {
  absl::StatusOr<mp::PoolInitializer> init = mp::MakePoolInitializer<&SetBase>(int64_t{100});
  ASSERT_TRUE(init.ok()) << init.status();
  {
    mp::ProcessPoolExecutor e = Make({.max_workers = 2, .initializer = *init});
    EXPECT_EQ(*e.Submit<&PlusBase>(1).Result(kBound), 101);
  }  // gone before the next one forks (its threads would make that a multi-threaded fork)

  absl::StatusOr<mp::PoolInitializer> bad = mp::MakePoolInitializer<&SetBase>(int64_t{-1});
  ASSERT_TRUE(bad.ok());
  mp::ProcessPoolExecutor broken = Make({.max_workers = 1, .initializer = *bad});
  absl::Status s = broken.Submit<&PlusBase>(1).Status(kBound);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("base refused"));
}

TEST_P(ProcessPoolExecutorTest, MaxTasksPerChildReplacesWorkers) {
  mp::ProcessPoolExecutor e = Make({.max_workers = 1, .max_tasks_per_child = 1});
  const int64_t first = *e.Submit<&Pid>(0).Result(kBound);
  const int64_t second = *e.Submit<&Pid>(0).Result(kBound);
  EXPECT_NE(first, second);
}

TEST_P(ProcessPoolExecutorTest, ConcurrentSubmitCancelAndCallbacks) {
  mp::ProcessPoolExecutor e = Make();
  constexpr int kThreads = 4;
  constexpr int kTasks = 50;
  std::atomic<int64_t> callback_sum{0};
  std::vector<std::vector<mp::Future<int64_t>>> per_thread(kThreads);
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < kTasks; ++i) {
        mp::Future<int64_t> f = e.Submit<&Square>(t * kTasks + i);
        f.AddDoneCallback([&callback_sum](const mp::Future<int64_t>& done) {
          absl::StatusOr<int64_t> r = done.Result(absl::ZeroDuration());
          if (r.ok()) callback_sum += *r;
        });
        if (i % 5 == 0) f.Cancel();  // some are taken back, some have started
        (void)f.Running();  // asks the engine's manager thread, concurrently with the others
        per_thread[t].push_back(std::move(f));
      }
    });
  }
  for (std::thread& t : submitters) t.join();
  std::vector<mp::Future<int64_t>> all;
  for (auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  int yielded = 0;
  for (const absl::StatusOr<mp::Future<int64_t>>& f : mp::AsCompleted(all, kBound)) {
    ASSERT_TRUE(f.ok()) << f.status();
    ++yielded;
  }
  EXPECT_EQ(yielded, kThreads * kTasks);
  ASSERT_TRUE(e.Shutdown().ok());  // every callback ran before the manager thread exited
  int64_t expected = 0;
  for (const mp::Future<int64_t>& f : all) {
    if (f.Cancelled()) continue;
    absl::StatusOr<int64_t> r = f.Result(absl::ZeroDuration());
    ASSERT_TRUE(r.ok()) << r.status();
    expected += *r;
  }
  EXPECT_EQ(callback_sum.load(), expected);
}

INSTANTIATE_TEST_SUITE_P(Methods, ProcessPoolExecutorTest,
                         ::testing::Values("fork", "spawn", "forkserver"));

TEST(ProcessPoolExecutorCreateTest, BadOptions) {
  EXPECT_THAT(mp::ProcessPoolExecutor::Create({}).status().message(), HasSubstr("no start method"));
  EXPECT_EQ(mp::ProcessPoolExecutor::Create({.max_workers = -1, .method = mp::ForkStartMethod()})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      mp::ProcessPoolExecutor::Create({.method = mp::ForkStartMethod(), .max_tasks_per_child = -1})
          .status()
          .code(),
      StatusCode::kInvalidArgument);
  mp::PoolInitializer unregistered;
  unregistered.function = "no::Such";
  EXPECT_EQ(mp::ProcessPoolExecutor::Create(
                {.method = mp::ForkStartMethod(), .initializer = unregistered})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

}  // namespace ppe_test
