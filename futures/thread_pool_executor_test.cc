// Copyright 2026 The mp Authors.
//
// CPython's Lib/test/test_concurrent_futures/ (test_thread_pool.py, test_shutdown.py,
// test_init.py, the executor and map tests) for mp::ThreadPoolExecutor. Tasks block on Gates the
// test opens, never on sleeps.

#include "futures/thread_pool_executor.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "futures/future.h"
#include "futures/test_gate.h"
#include "futures/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

ThreadPoolExecutor MakeExecutor(ThreadPoolExecutorOptions options = {}) {
  absl::StatusOr<ThreadPoolExecutor> e = ThreadPoolExecutor::Create(std::move(options));
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

int64_t Mul(int64_t x, int64_t y) { return x * y; }

std::string ThreadName() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof(name));
  return name;
}

// Waits (yielding, bounded) until `pred` holds.
template <typename Pred>
bool Eventually(Pred pred) {
  const Deadline bound = Deadline::After(testing::kSafetyBound);
  while (!pred()) {
    if (bound.Expired()) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(ThreadPoolExecutorTest, SubmitRunsTheCallableWithItsArguments) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 2});
  Future<int64_t> f = e.Submit(Mul, 2, 8);
  EXPECT_EQ(*f.Result(testing::kSafetyBound), 16);
  Future<std::string> s = e.Submit([](std::string a, const std::string& b) { return a + b; },
                                   std::string("con"), std::string("cat"));
  EXPECT_EQ(*s.Result(testing::kSafetyBound), "concat");
  auto moved = std::make_unique<int>(5);
  Future<int> m = e.Submit([](std::unique_ptr<int> p) { return *p + 1; }, std::move(moved));
  EXPECT_EQ(*m.Result(testing::kSafetyBound), 6);
}

TEST(ThreadPoolExecutorTest, ResultTypes) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 1});
  Future<int> ok = e.Submit([]() -> absl::StatusOr<int> { return 3; });
  Future<int> bad = e.Submit([]() -> absl::StatusOr<int> { return absl::NotFoundError("no"); });
  int ran = 0;
  Future<Unit> v = e.Submit([&ran] { ++ran; });
  Future<Unit> st = e.Submit([]() { return absl::PermissionDeniedError("denied"); });
  Future<Unit> st_ok = e.Submit([]() { return absl::OkStatus(); });
  EXPECT_EQ(*ok.Result(testing::kSafetyBound), 3);
  EXPECT_EQ(bad.Status(testing::kSafetyBound), absl::NotFoundError("no"));
  EXPECT_TRUE(v.Result(testing::kSafetyBound).ok());
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(st.Status(testing::kSafetyBound), absl::PermissionDeniedError("denied"));
  EXPECT_TRUE(st_ok.Status(testing::kSafetyBound).ok());
}

TEST(ThreadPoolExecutorTest, AThrowingTaskFailsItsFutureNamingTheException) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 1});
  Future<int> f = e.Submit([]() -> int { throw std::runtime_error("boom"); });
  absl::Status s = f.Status(testing::kSafetyBound);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(s.message(), HasSubstr("ThreadPoolExecutor task 0 threw std::runtime_error: boom"));
  EXPECT_EQ(*e.Submit(Mul, 3, 3).Result(testing::kSafetyBound), 9);  // the worker lives on
}

TEST(ThreadPoolExecutorTest, CancelPendingButNotRunning) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 1});
  testing::Gate gate;
  testing::Counter started;
  std::atomic<int> second_ran{0};
  Future<int> running = e.Submit([&] {
    started.Increment();
    gate.Wait();
    return 1;
  });
  Future<int> pending = e.Submit([&] { return ++second_ran; });
  ASSERT_TRUE(started.WaitFor(1));
  EXPECT_TRUE(running.Running());
  EXPECT_FALSE(running.Cancel());
  EXPECT_FALSE(pending.Running());
  EXPECT_TRUE(pending.Cancel());
  EXPECT_TRUE(pending.Cancelled());
  gate.Open();
  EXPECT_EQ(*running.Result(testing::kSafetyBound), 1);
  EXPECT_EQ(pending.Result().status().code(), absl::StatusCode::kCancelled);
  ASSERT_TRUE(e.Shutdown().ok());
  EXPECT_EQ(second_ran.load(), 0);  // skipped by the worker
}

TEST(ThreadPoolExecutorTest, CallbacksRunInTheWorkerThatFinishes) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 1, .thread_name_prefix = "cbworker"});
  testing::Gate gate;
  Future<int> f = e.Submit([&] {
    gate.Wait();
    return 4;
  });
  std::string ran_in;
  testing::Counter called;
  f.AddDoneCallback([&](const Future<int>& done) {
    ran_in = ThreadName();
    EXPECT_EQ(*done.Result(absl::ZeroDuration()), 4);
    called.Increment();
  });
  gate.Open();
  ASSERT_TRUE(called.WaitFor(1));
  EXPECT_EQ(ran_in, "cbworker_0");
  // Added after done: runs at once in this thread.
  std::string now_in;
  f.AddDoneCallback([&](const Future<int>&) { now_in = ThreadName(); });
  EXPECT_EQ(now_in, ThreadName());
  ASSERT_TRUE(e.Shutdown().ok());
  EXPECT_EQ(called.value(), 1);
}

TEST(ThreadPoolExecutorTest, SubmitAfterShutdownFails) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 1});
  ASSERT_TRUE(e.Shutdown().ok());
  Future<int64_t> f = e.Submit(Mul, 2, 2);
  absl::Status s = f.Status(absl::ZeroDuration());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("cannot schedule new futures after shutdown"));
  EXPECT_TRUE(e.Shutdown().ok());  // again: nothing to do
  MapIterator<int64_t> m = e.Map([](int64_t x) { return x; }, std::vector<int64_t>{1});
  EXPECT_EQ(m.Next().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ThreadPoolExecutorTest, ShutdownWaitsForTheTasks) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 3});
  testing::Gate gate;
  std::vector<Future<int>> fs;
  for (int i = 0; i < 3; ++i) {
    fs.push_back(e.Submit([&gate, i] {
      gate.Wait();
      return i;
    }));
  }
  absl::Status s = e.Shutdown({.timeout = absl::Milliseconds(10)});
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(s.message(), HasSubstr("3 worker threads still running after 10ms"));
  gate.Open();
  ASSERT_TRUE(e.Shutdown().ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(fs[i].Done());
    EXPECT_EQ(*fs[i].Result(absl::ZeroDuration()), i);
  }
}

TEST(ThreadPoolExecutorTest, ShutdownWithoutWaitReturnsAndTheTasksStillFinish) {
  testing::Gate gate;
  Future<int> f;
  {
    ThreadPoolExecutor e = MakeExecutor({.max_workers = 1});
    f = e.Submit([&gate] {
      gate.Wait();
      return 1;
    });
    Future<int> queued = e.Submit([] { return 2; });
    ASSERT_TRUE(e.Shutdown({.wait = false}).ok());
    EXPECT_FALSE(f.Done());
    gate.Open();
    EXPECT_EQ(*queued.Result(testing::kSafetyBound), 2);  // queued work still runs
  }                                                       // the destructor joins
  EXPECT_EQ(*f.Result(absl::ZeroDuration()), 1);
}

TEST(ThreadPoolExecutorTest, ShutdownCancelFutures) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 1});
  testing::Gate gate;
  testing::Counter started;
  std::atomic<int> others_ran{0};
  Future<int> running = e.Submit([&] {
    started.Increment();
    gate.Wait();
    return 1;
  });
  std::vector<Future<int>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(e.Submit([&] { return ++others_ran; }));
  ASSERT_TRUE(started.WaitFor(1));
  int cancel_callbacks = 0;
  for (const Future<int>& f : queued) {
    f.AddDoneCallback([&](const Future<int>& done) { cancel_callbacks += done.Cancelled(); });
  }
  ASSERT_TRUE(e.Shutdown({.wait = false, .cancel_futures = true}).ok());
  EXPECT_EQ(cancel_callbacks, 5);  // run by Shutdown's thread
  for (const Future<int>& f : queued) EXPECT_TRUE(f.Cancelled());
  EXPECT_FALSE(running.Cancelled());
  gate.Open();
  ASSERT_TRUE(e.Shutdown().ok());
  EXPECT_EQ(*running.Result(absl::ZeroDuration()), 1);
  EXPECT_EQ(others_ran.load(), 0);
}

TEST(ThreadPoolExecutorTest, ShutdownWithWaitFromATaskIsRefused) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 1});
  Future<Unit> f = e.Submit([&e] { return e.Shutdown(); });
  absl::Status s = f.Status(testing::kSafetyBound);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("would wait for itself"));
}

TEST(ThreadPoolExecutorTest, DestroyedFromItsOwnTaskDoesNotWaitForItself) {
  std::optional<ThreadPoolExecutor> e = MakeExecutor({.max_workers = 2});
  testing::Gate destroy;
  Future<int> f = e->Submit([&] {
    destroy.Wait();
    e.reset();  // the last owner: stops taking tasks; the workers end on their own
    return 7;
  });
  destroy.Open();
  EXPECT_EQ(*f.Result(testing::kSafetyBound), 7);
}

TEST(ThreadPoolExecutorTest, ThreadsStartLazilyAndIdleOnesAreReused) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 4});
  EXPECT_EQ(e.threads_started(), 0);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(*e.Submit(Mul, i, 2).Result(testing::kSafetyBound), 2 * i);
    ASSERT_TRUE(Eventually([&e] { return e.IdleThreadsForTesting() == 1; }));
  }
  EXPECT_EQ(e.threads_started(), 1);  // CPython's test_idle_thread_reuse
  // Blocked tasks each need a thread of their own, up to max_workers.
  testing::Gate gate;
  testing::Counter started;
  std::vector<Future<int>> fs;
  for (int i = 0; i < 6; ++i) {
    fs.push_back(e.Submit([&] {
      started.Increment();
      gate.Wait();
      return 0;
    }));
  }
  ASSERT_TRUE(started.WaitFor(4));
  EXPECT_EQ(e.threads_started(), 4);
  gate.Open();
  for (const Future<int>& f : fs) EXPECT_TRUE(f.Result(testing::kSafetyBound).ok());
  EXPECT_EQ(e.threads_started(), 4);
}

TEST(ThreadPoolExecutorTest, MaxWorkers) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_EQ(MakeExecutor().max_workers(), std::min(32, CPU_COUNT(&set) + 4));
  EXPECT_EQ(MakeExecutor({.max_workers = 3}).max_workers(), 3);
  absl::StatusOr<ThreadPoolExecutor> bad = ThreadPoolExecutor::Create({.max_workers = -1});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("max_workers must be greater than 0"));
  EXPECT_THAT(bad.status().message(), HasSubstr("-1"));
}

TEST(ThreadPoolExecutorTest, ThreadNames) {
  ThreadPoolExecutor named = MakeExecutor({.max_workers = 1, .thread_name_prefix = "SpecialPool"});
  EXPECT_EQ(*named.Submit(ThreadName).Result(testing::kSafetyBound), "SpecialPool_0");
  ThreadPoolExecutor plain = MakeExecutor({.max_workers = 1});
  EXPECT_THAT(*plain.Submit(ThreadName).Result(testing::kSafetyBound),
              StartsWith("ThreadPoolExec"));  // "ThreadPoolExecutor-<k>_0", cut to 15 bytes
}

thread_local int initialized_here = 0;

TEST(ThreadPoolExecutorTest, InitializerRunsOnceInEachWorker) {
  testing::Counter inits;
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 2, .initializer = [&inits] {
                                         ++initialized_here;
                                         inits.Increment();
                                         return absl::OkStatus();
                                       }});
  testing::Gate gate;
  std::vector<Future<int>> fs;
  for (int i = 0; i < 2; ++i) {
    fs.push_back(e.Submit([&gate] {
      gate.Wait();
      return initialized_here;
    }));
  }
  ASSERT_TRUE(inits.WaitFor(2));
  gate.Open();
  for (const Future<int>& f : fs) EXPECT_EQ(*f.Result(testing::kSafetyBound), 1);
  EXPECT_EQ(*e.Submit([] { return initialized_here; }).Result(testing::kSafetyBound), 1);
  ASSERT_TRUE(e.Shutdown().ok());
  EXPECT_EQ(inits.value(), 2);
}

TEST(ThreadPoolExecutorTest, AFailingInitializerBreaksThePool) {
  ThreadPoolExecutor e = MakeExecutor(
      {.max_workers = 1, .initializer = [] { return absl::UnavailableError("no database"); }});
  std::vector<Future<int64_t>> fs;
  for (int i = 0; i < 3; ++i) fs.push_back(e.Submit(Mul, i, i));
  for (const Future<int64_t>& f : fs) {
    absl::Status s = f.Status(testing::kSafetyBound);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(s.message(), HasSubstr("a thread initializer failed, the thread pool is not "
                                       "usable anymore: UNAVAILABLE: no database"));
  }
  absl::Status later = e.Submit(Mul, 1, 1).Status(absl::ZeroDuration());
  EXPECT_EQ(later.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(later.message(), HasSubstr("no database"));
  EXPECT_TRUE(e.Shutdown().ok());
}

TEST(ThreadPoolExecutorTest, AThrowingInitializerBreaksThePool) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 1, .initializer = []() -> absl::Status {
                                         throw std::logic_error("bad config");
                                       }});
  absl::Status s = e.Submit(Mul, 1, 1).Status(testing::kSafetyBound);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("the initializer threw std::logic_error: bad config"));
}

TEST(ThreadPoolExecutorTest, MapYieldsInItemOrder) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 3});
  testing::Gate last_ran;
  // Item 0 finishes only after item 2 ran: completion order differs from item order.
  MapIterator<int> it = e.Map(
      [&last_ran](int x) {
        if (x == 0) last_ran.Wait();
        if (x == 2) last_ran.Open();
        return x * 10;
      },
      std::vector<int>{0, 1, 2});
  EXPECT_EQ(it.size(), 3u);
  EXPECT_EQ(*it.Next(), 0);
  EXPECT_EQ(*it.Next(), 10);
  EXPECT_EQ(*it.Next(), 20);
  EXPECT_EQ(it.Next().status().code(), absl::StatusCode::kOutOfRange);
}

TEST(ThreadPoolExecutorTest, MapSubmitsEveryItemBeforeIteration) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 4});
  testing::Gate gate;
  testing::Counter started;
  MapIterator<int> it = e.Map(
      [&](int x) {
        started.Increment();
        gate.Wait();
        return x;
      },
      std::vector<int>{0, 1, 2, 3});
  ASSERT_TRUE(started.WaitFor(4));  // no Next yet (CPython's test_map_submits_without_iteration)
  gate.Open();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(*it.Next(), i);
}

TEST(ThreadPoolExecutorTest, MapYieldsAFailedItemAndGoesOn) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 2});
  MapIterator<int> it = e.Map(
      [](int x) -> absl::StatusOr<int> {
        if (x == 1) return absl::InvalidArgumentError("one");
        if (x == 2) throw std::out_of_range("two");
        return x;
      },
      std::vector<int>{0, 1, 2, 3});
  EXPECT_EQ(*it.Next(), 0);
  EXPECT_EQ(it.Next().status(), absl::InvalidArgumentError("one"));
  absl::StatusOr<int> thrown = it.Next();
  EXPECT_EQ(thrown.status().code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(thrown.status().message(), HasSubstr("threw std::out_of_range: two"));
  EXPECT_EQ(*it.Next(), 3);
}

TEST(ThreadPoolExecutorTest, MapTimeoutIsOverallAndCancelsTheRest) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 1});
  testing::Gate gate;
  std::atomic<int> ran{0};
  // CPython's executor.map(time.sleep, [0, 0, 6], timeout=5) -> [None, None], then TimeoutError.
  MapIterator<int> it = e.Map(
      [&](int x) {
        ++ran;
        if (x == 2) gate.Wait();
        return x;
      },
      std::vector<int>{0, 1, 2, 3, 4}, {.timeout = absl::Milliseconds(50)});
  EXPECT_EQ(*it.Next(), 0);
  EXPECT_EQ(*it.Next(), 1);
  absl::StatusOr<int> late = it.Next();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(late.status().message(),
              HasSubstr("not done after 50ms (the map's overall timeout)"));
  EXPECT_EQ(it.Next().status().code(), absl::StatusCode::kOutOfRange);  // the map ended
  gate.Open();
  ASSERT_TRUE(e.Shutdown().ok());
  EXPECT_EQ(ran.load(), 3);  // items 3 and 4 were cancelled
}

TEST(ThreadPoolExecutorTest, MapBuffersizeSubmitsLazily) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 4});
  // Tasks are numbered in submission order: a probe Submit tells how many the map submitted.
  auto submitted_so_far = [&e] {
    const std::string d = e.Submit([] {}).description();
    return std::stoi(d.substr(d.rfind(' ') + 1));
  };
  MapIterator<int> it =
      e.Map([](int x) { return x + 1; }, std::vector<int>(100, 1), {.buffersize = 2});
  EXPECT_EQ(submitted_so_far(), 2);  // items 0 and 1 (tasks 0, 1); the probe is task 2
  EXPECT_EQ(*it.Next(), 2);          // submits item 2 (task 3) before waiting for item 0
  EXPECT_EQ(submitted_so_far(), 4);
  int count = 1;
  while (it.Next().ok()) ++count;
  EXPECT_EQ(count, 100);
}

TEST(ThreadPoolExecutorTest, DestroyingAMapIteratorCancelsTheItemsNotYielded) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 1});
  testing::Gate gate;
  testing::Counter started;
  std::atomic<int> ran{0};
  {
    MapIterator<int> it = e.Map(
        [&](int x) {
          ++ran;
          started.Increment();
          gate.Wait();
          return x;
        },
        std::vector<int>{0, 1, 2, 3});
    ASSERT_TRUE(started.WaitFor(1));
  }
  gate.Open();
  ASSERT_TRUE(e.Shutdown().ok());
  EXPECT_EQ(ran.load(), 1);
}

TEST(ThreadPoolExecutorTest, MapItemsAfterTheExecutorIsGoneFail) {
  std::optional<ThreadPoolExecutor> e = MakeExecutor({.max_workers = 1});
  MapIterator<int> it = e->Map([](int x) { return x; }, std::vector<int>{5, 6}, {.buffersize = 1});
  e.reset();
  EXPECT_EQ(*it.Next(), 5);  // submitted before; its Next tries to submit item 1 and cannot
  absl::StatusOr<int> gone = it.Next();
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(gone.status().message(), HasSubstr("destroyed"));
}

TEST(ThreadPoolExecutorTest, AsCompletedAndWaitOverExecutorFutures) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 2});
  testing::Gate gate;
  Future<int64_t> fast = e.Submit(Mul, 2, 21);
  Future<std::string> slow = e.Submit([&gate] {
    gate.Wait();
    return std::string("slow");
  });
  std::vector<AnyFuture> fs = {fast, slow};
  DoneAndNotDone<AnyFuture> first =
      WaitFutures(fs, testing::kSafetyBound, ReturnWhen::kFirstCompleted);
  EXPECT_THAT(first.done, ElementsAre(AnyFuture(fast)));
  EXPECT_THAT(first.not_done, ElementsAre(AnyFuture(slow)));
  AsCompletedIterator<AnyFuture> it = AsCompleted(fs, absl::Milliseconds(20));
  EXPECT_EQ(*it.Next(), fast);
  EXPECT_EQ(it.Next().status().code(), absl::StatusCode::kDeadlineExceeded);
  gate.Open();
  EXPECT_EQ(*slow.Result(testing::kSafetyBound), "slow");
  EXPECT_EQ(*it.Next(), slow);  // past the deadline, a future done since is still yielded
}

TEST(ThreadPoolExecutorTest, ConcurrentSubmittersCallbacksAndShutdown) {
  ThreadPoolExecutor e = MakeExecutor({.max_workers = 4});
  constexpr int kThreads = 6;
  constexpr int kTasks = 200;
  std::atomic<int64_t> callback_sum{0};
  std::vector<std::vector<Future<int64_t>>> per_thread(kThreads);
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < kTasks; ++i) {
        Future<int64_t> f = e.Submit(Mul, t, i);
        f.AddDoneCallback([&callback_sum](const Future<int64_t>& done) {
          absl::StatusOr<int64_t> r = done.Result(absl::ZeroDuration());
          if (r.ok()) callback_sum += *r;
        });
        if (i % 7 == 0) f.Cancel();  // some are cancelled before they start, some are not
        per_thread[t].push_back(std::move(f));
      }
    });
  }
  for (std::thread& t : submitters) t.join();
  std::vector<Future<int64_t>> all;
  for (auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  std::thread waiter([&all] {
    for (const absl::StatusOr<Future<int64_t>>& f : AsCompleted(all, testing::kSafetyBound)) {
      ASSERT_TRUE(f.ok()) << f.status();
    }
  });
  std::thread shutter([&e] { EXPECT_TRUE(e.Shutdown().ok()); });
  ASSERT_TRUE(e.Shutdown().ok());
  shutter.join();
  waiter.join();
  int64_t expected = 0;
  for (const Future<int64_t>& f : all) {
    ASSERT_TRUE(f.Done());
    if (!f.Cancelled()) expected += *f.Result();
  }
  EXPECT_EQ(callback_sum.load(), expected);
}

}  // namespace
}  // namespace mp
