// Copyright 2026 The mp Authors.
//
// CPython's Lib/test/test_concurrent_futures/test_future.py, for mp::Future, plus the producer
// hooks a process executor uses.

#include "futures/future.h"

#include <atomic>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "futures/test_gate.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Core = futures_internal::Core<int>;

struct Made {
  std::shared_ptr<Core> core;
  Future<int> future;
};
Made Make(std::string name = "task A") {
  auto core = std::make_shared<Core>(std::move(name));
  return {core, Future<int>(core)};
}
Made Running() {
  Made m = Make();
  EXPECT_TRUE(m.core->SetRunningOrNotifyCancel());
  return m;
}
Made Succeeded(int v = 42) {
  Made m = Make();
  EXPECT_TRUE(m.core->SetResult(v).ok());
  return m;
}
Made Failed() {
  Made m = Make();
  EXPECT_TRUE(m.core->SetResult(absl::DataLossError("disk on fire")).ok());
  return m;
}
Made Cancelled() {
  Made m = Make();
  EXPECT_TRUE(m.future.Cancel());
  return m;
}

// ExecutorHooks made of functions (each optional: unset, it answers as a future with no hooks).
struct TestHooks final : futures_internal::ExecutorHooks {
  std::function<bool()> take_back;
  std::function<bool()> started;
  std::function<void(Deadline)> assist;
  int observed = 0;
  bool TakeBack() override { return take_back == nullptr || take_back(); }
  bool Started() override { return started != nullptr && started(); }
  void AssistWait(Deadline deadline) override {
    if (assist != nullptr) assist(deadline);
  }
  void Observed() override { ++observed; }
};
std::shared_ptr<TestHooks> HooksOf(const Made& m) {
  auto hooks = std::make_shared<TestHooks>();
  m.core->SetExecutorHooks(hooks);
  return hooks;
}

TEST(FutureTest, StatesAsCpython) {
  Made pending = Make(), running = Running(), ok = Succeeded(), failed = Failed(),
       cancelled = Cancelled();
  EXPECT_FALSE(pending.future.Done());
  EXPECT_FALSE(pending.future.Running());
  EXPECT_FALSE(pending.future.Cancelled());
  EXPECT_FALSE(running.future.Done());
  EXPECT_TRUE(running.future.Running());
  EXPECT_FALSE(running.future.Cancelled());
  EXPECT_TRUE(ok.future.Done());
  EXPECT_FALSE(ok.future.Running());
  EXPECT_TRUE(failed.future.Done());
  EXPECT_FALSE(failed.future.Cancelled());
  EXPECT_TRUE(cancelled.future.Done());
  EXPECT_TRUE(cancelled.future.Cancelled());
  EXPECT_FALSE(cancelled.future.Running());
}

TEST(FutureTest, CancelSucceedsOnlyBeforeTheStart) {
  Made pending = Make(), running = Running(), ok = Succeeded(), failed = Failed(),
       cancelled = Cancelled();
  EXPECT_TRUE(pending.future.Cancel());
  EXPECT_TRUE(pending.future.Cancelled());
  EXPECT_FALSE(running.future.Cancel());
  EXPECT_FALSE(running.future.Cancelled());
  EXPECT_TRUE(running.future.Running());
  EXPECT_TRUE(cancelled.future.Cancel());  // already cancelled: true, as CPython
  EXPECT_FALSE(ok.future.Cancel());
  EXPECT_FALSE(failed.future.Cancel());
  EXPECT_EQ(*ok.future.Result(), 42);
}

TEST(FutureTest, ResultWithTimeout) {
  Made pending = Make("task P"), running = Running();
  absl::StatusOr<int> r = pending.future.Result(absl::Milliseconds(1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(r.status().message(), HasSubstr("Future::Result: task P not done after 1ms"));
  EXPECT_EQ(running.future.Result(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  absl::StatusOr<int> c = Cancelled().future.Result(absl::ZeroDuration());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(c.status().message(), HasSubstr("task A was cancelled"));
  EXPECT_EQ(Failed().future.Result(absl::ZeroDuration()).status(),
            absl::DataLossError("disk on fire"));
  EXPECT_EQ(*Succeeded().future.Result(absl::ZeroDuration()), 42);
}

TEST(FutureTest, ResultWaitsForAnotherThreadsSetResult) {
  Made m = Running();
  std::thread setter([&m] { ASSERT_TRUE(m.core->SetResult(7).ok()); });
  EXPECT_EQ(*m.future.Result(testing::kSafetyBound), 7);
  setter.join();
}

TEST(FutureTest, ResultWaitsForAnotherThreadsCancel) {
  Made m = Make();
  std::thread canceller([&m] { EXPECT_TRUE(m.future.Cancel()); });
  EXPECT_EQ(m.future.Result(testing::kSafetyBound).status().code(), absl::StatusCode::kCancelled);
  canceller.join();
}

TEST(FutureTest, StatusIsCpythonsException) {
  EXPECT_TRUE(Succeeded().future.Status(absl::ZeroDuration()).ok());
  EXPECT_EQ(Failed().future.Status(), absl::DataLossError("disk on fire"));
  EXPECT_EQ(Cancelled().future.Status().code(), absl::StatusCode::kCancelled);
  absl::Status s = Make("task Q").future.Status(absl::Milliseconds(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(s.message(), HasSubstr("Future::Status: task Q not done after 1ms"));
  Made m = Running();
  std::thread setter([&m] { ASSERT_TRUE(m.core->SetFailure(absl::AbortedError("x")).ok()); });
  EXPECT_EQ(m.future.Status(testing::kSafetyBound), absl::AbortedError("x"));
  setter.join();
}

TEST(FutureTest, FinishingTwiceIsInvalidState) {
  Made ok = Succeeded();
  absl::Status s = ok.core->SetResult(1);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("task A is already finished"));
  EXPECT_EQ(ok.core->SetFailure(absl::InternalError("late")).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*ok.future.Result(), 42);  // unchanged
  Made cancelled = Cancelled();
  s = cancelled.core->SetResult(1);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("already cancelled"));
  EXPECT_EQ(Make().core->SetFailure(absl::OkStatus()).code(), absl::StatusCode::kInvalidArgument);
}

TEST(FutureTest, SetRunningOrNotifyCancel) {
  Made pending = Make();
  EXPECT_TRUE(pending.core->SetRunningOrNotifyCancel());
  EXPECT_FALSE(pending.core->SetRunningOrNotifyCancel());  // already running: not twice
  EXPECT_FALSE(Cancelled().core->SetRunningOrNotifyCancel());
  EXPECT_FALSE(Succeeded().core->SetRunningOrNotifyCancel());
}

TEST(FutureTest, CallbackAddedBeforeDoneRunsInTheFinishingThreadOnce) {
  Made m = Running();
  std::vector<int> seen;
  std::thread::id ran_in;
  m.future.AddDoneCallback([&](const Future<int>& f) {
    ran_in = std::this_thread::get_id();
    seen.push_back(*f.Result(absl::ZeroDuration()));
  });
  EXPECT_TRUE(seen.empty());
  std::thread::id setter_id;
  std::thread setter([&] {
    setter_id = std::this_thread::get_id();
    ASSERT_TRUE(m.core->SetResult(5).ok());
  });
  setter.join();
  EXPECT_EQ(ran_in, setter_id);
  EXPECT_THAT(seen, ElementsAre(5));
  // Finishing attempts after the first do not call it again.
  EXPECT_FALSE(m.core->SetResult(6).ok());
  EXPECT_FALSE(m.future.Cancel());
  EXPECT_THAT(seen, ElementsAre(5));
}

TEST(FutureTest, CallbacksWithFailureAndCancel) {
  Made failed = Make();
  absl::Status got;
  failed.future.AddDoneCallback([&](const Future<int>& f) { got = f.Status(); });
  ASSERT_TRUE(failed.core->SetFailure(absl::NotFoundError("gone")).ok());
  EXPECT_EQ(got, absl::NotFoundError("gone"));

  Made cancelled = Make();
  bool was_cancelled = false;
  cancelled.future.AddDoneCallback([&](const Future<int>& f) { was_cancelled = f.Cancelled(); });
  EXPECT_TRUE(cancelled.future.Cancel());
  EXPECT_TRUE(was_cancelled);
  EXPECT_TRUE(cancelled.future.Cancel());  // again: true, and the callback does not run twice
}

TEST(FutureTest, CallbackAddedAfterDoneRunsNowInTheCaller) {
  for (Made m : {Succeeded(), Failed(), Cancelled()}) {
    int calls = 0;
    std::thread::id ran_in;
    m.future.AddDoneCallback([&](const Future<int>& f) {
      ++calls;
      ran_in = std::this_thread::get_id();
      EXPECT_TRUE(f.Done());
      EXPECT_EQ(f, m.future);
    });
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(ran_in, std::this_thread::get_id());
  }
}

TEST(FutureTest, CallbacksRunInTheOrderAdded) {
  Made m = Make();
  std::vector<int> order;
  for (int i = 0; i < 5; ++i)
    m.future.AddDoneCallback([&order, i](const Future<int>&) { order.push_back(i); });
  ASSERT_TRUE(m.core->SetResult(1).ok());
  EXPECT_THAT(order, ElementsAre(0, 1, 2, 3, 4));
}

TEST(FutureTest, ACallbackThatThrowsIsReportedAndTheOthersRun) {
  Made m = Make("task T");
  std::vector<int> order;
  m.future.AddDoneCallback([&](const Future<int>&) { order.push_back(1); });
  m.future.AddDoneCallback([](const Future<int>&) { throw std::runtime_error("callback boom"); });
  m.future.AddDoneCallback([&](const Future<int>&) { order.push_back(3); });
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(m.core->SetResult(1).ok());
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(order, ElementsAre(1, 3));
  EXPECT_THAT(err, HasSubstr("mp::Future: a done callback of task T threw std::runtime_error: "
                             "callback boom"));
  // Also for a callback added to a done future, and for one that throws a non-std exception.
  ::testing::internal::CaptureStderr();
  m.future.AddDoneCallback([](const Future<int>&) { throw 17; });
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("task T threw int"));
}

TEST(FutureTest, AnyFutureSharesTheState) {
  Made m = Make();
  AnyFuture any = m.future;
  EXPECT_EQ(any, m.future);
  EXPECT_NE(any, AnyFuture(Make().future));
  int calls = 0;
  any.AddDoneCallback([&](const AnyFuture& f) {
    ++calls;
    EXPECT_EQ(f, m.future);
  });
  ASSERT_TRUE(m.core->SetFailure(absl::InternalError("bad")).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(any.Status(), absl::InternalError("bad"));
  EXPECT_EQ(any.description(), "task A");
}

TEST(FutureTest, EmptyFutureIsDoneAndFailed) {
  Future<int> empty;
  EXPECT_TRUE(empty.Done());
  EXPECT_FALSE(empty.Running());
  EXPECT_FALSE(empty.Cancelled());
  EXPECT_FALSE(empty.Cancel());
  EXPECT_EQ(empty.Result().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(empty.Status().message(), HasSubstr("empty"));
  int calls = 0;
  empty.AddDoneCallback([&](const Future<int>&) { ++calls; });
  EXPECT_EQ(calls, 1);
  Future<int> moved = Make().future;
  Future<int> to = std::move(moved);
  EXPECT_FALSE(to.Done());
}

TEST(FutureTest, CancelHookDecidesWhetherAPendingTaskStarted) {
  // A process executor's engine knows a worker claimed the task before the future does.
  Made taken_back = Make();
  int asked = 0;
  HooksOf(taken_back)->take_back = [&asked] {
    ++asked;
    return true;
  };
  EXPECT_TRUE(taken_back.future.Cancel());
  EXPECT_TRUE(taken_back.future.Cancel());
  EXPECT_EQ(asked, 1);  // the second Cancel sees the cancelled state
  EXPECT_FALSE(taken_back.core->SetRunningOrNotifyCancel());

  Made started = Make();
  HooksOf(started)->take_back = [] { return false; };
  EXPECT_FALSE(started.future.Cancel());
  EXPECT_FALSE(started.future.Cancelled());
  EXPECT_FALSE(started.future.Done());
  ASSERT_TRUE(started.core->SetResult(3).ok());
  EXPECT_EQ(*started.future.Result(), 3);
  EXPECT_FALSE(started.future.Cancel());
}

TEST(FutureTest, RunningHookReportsAStartTheFutureWasNotToldOf) {
  Made m = Make();
  bool started = false;
  HooksOf(m)->started = [&started] { return started; };
  EXPECT_FALSE(m.future.Running());
  started = true;
  EXPECT_TRUE(m.future.Running());
  ASSERT_TRUE(m.core->SetResult(1).ok());
  EXPECT_FALSE(m.future.Running());  // done: the hook is not asked
}

TEST(FutureTest, WaitAssistRunsBeforeResultWaitsAndMayFinishTheFuture) {
  Made m = Make();
  int calls = 0;
  Deadline seen = Deadline::Never();
  HooksOf(m)->assist = [&](Deadline deadline) {
    ++calls;
    seen = deadline;
    EXPECT_TRUE(m.core->SetResult(5).ok());  // as an executor taking the reply here
  };
  const Deadline before = Deadline::After(absl::Seconds(30));
  EXPECT_EQ(*m.future.Result(absl::Seconds(30)), 5);
  EXPECT_EQ(calls, 1);
  EXPECT_GE(seen.ns(), before.ns());  // Result's own deadline
  EXPECT_LT(seen.ns(), Deadline::Never().ns());
  EXPECT_TRUE(m.future.Status(absl::Seconds(1)).ok());
  EXPECT_EQ(calls, 1);  // done: not asked again
}

TEST(FutureTest, WaitAssistThatDoesNotFinishLeavesResultWaiting) {
  Made m = Make();
  int calls = 0;
  HooksOf(m)->assist = [&calls](Deadline) { ++calls; };
  EXPECT_EQ(m.future.Result(absl::Milliseconds(1)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(m.future.Status(absl::Milliseconds(1)).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(calls, 2);
}

TEST(FutureTest, LooksThatDependOnTheEndBeingNoticedTellTheExecutor) {
  Made m = Make();
  std::shared_ptr<TestHooks> hooks = HooksOf(m);
  EXPECT_FALSE(m.future.Done());
  EXPECT_EQ(hooks->observed, 1);
  m.future.AddDoneCallback([](const Future<int>&) {});
  EXPECT_EQ(hooks->observed, 2);
  EXPECT_FALSE(m.future.Cancelled());  // depends on nothing the executor must notice
  EXPECT_EQ(hooks->observed, 2);
  ASSERT_TRUE(m.core->SetResult(1).ok());
  EXPECT_TRUE(m.future.Done());  // done: nothing to notice any more
  m.future.AddDoneCallback([](const Future<int>&) {});
  EXPECT_EQ(hooks->observed, 2);
}

TEST(FutureTest, DeferredCallbacksWaitForTheirOwnerInOrder) {
  Made m = Make();
  std::vector<std::string> order;
  m.future.AddDoneCallback([&order](const Future<int>&) { order.push_back("first"); });
  std::vector<std::shared_ptr<futures_internal::CoreBase>> deferred;
  {
    futures_internal::DeferCallbacks defer(&deferred);
    ASSERT_TRUE(m.core->SetResult(3).ok());
  }
  // Finished and visible at once; the callbacks wait, and one added meanwhile joins them.
  EXPECT_TRUE(m.future.Done());
  EXPECT_EQ(*m.future.Result(absl::ZeroDuration()), 3);
  EXPECT_TRUE(order.empty());
  m.future.AddDoneCallback([&order](const Future<int>&) { order.push_back("second"); });
  EXPECT_TRUE(order.empty());
  ASSERT_EQ(deferred.size(), 1u);
  std::thread other([&deferred] { deferred[0]->RunDeferredCallbacks(); });
  other.join();
  EXPECT_THAT(order, ElementsAre("first", "second"));
  // From now on a late callback runs at once in its caller again.
  m.future.AddDoneCallback([&order](const Future<int>&) { order.push_back("third"); });
  EXPECT_THAT(order, ElementsAre("first", "second", "third"));
}

TEST(FutureTest, DeferCallbacksKeepsOnlyFuturesWithCallbacksAndNests) {
  Made plain = Make();
  Made with = Make();
  int ran = 0;
  with.future.AddDoneCallback([&ran](const Future<int>&) { ++ran; });
  std::vector<std::shared_ptr<futures_internal::CoreBase>> outer, inner;
  {
    futures_internal::DeferCallbacks defer_outer(&outer);
    {
      futures_internal::DeferCallbacks defer_inner(&inner);
      ASSERT_TRUE(plain.core->SetResult(1).ok());  // no callbacks: nothing to keep
    }
    ASSERT_TRUE(with.core->SetResult(2).ok());
  }
  EXPECT_TRUE(inner.empty());
  ASSERT_EQ(outer.size(), 1u);
  EXPECT_EQ(ran, 0);
  outer[0]->RunDeferredCallbacks();
  EXPECT_EQ(ran, 1);
  // Outside any DeferCallbacks, callbacks run in the finishing thread as before.
  Made later = Make();
  later.future.AddDoneCallback([&ran](const Future<int>&) { ++ran; });
  ASSERT_TRUE(later.core->SetResult(3).ok());
  EXPECT_EQ(ran, 2);
}

TEST(FutureTest, ConcurrentCancelAndFinishAgreeOnOneOutcome) {
  for (int round = 0; round < 200; ++round) {
    Made m = Make();
    std::atomic<int> callbacks{0};
    m.future.AddDoneCallback([&](const Future<int>&) { callbacks.fetch_add(1); });
    bool cancelled = false;
    bool ran = false;
    std::thread canceller([&] { cancelled = m.future.Cancel(); });
    std::thread worker([&] {
      if (m.core->SetRunningOrNotifyCancel()) {
        ran = true;
        ASSERT_TRUE(m.core->SetResult(round).ok());
      }
    });
    std::vector<std::thread> readers;
    for (int r = 0; r < 2; ++r) {
      readers.emplace_back([&] {
        EXPECT_TRUE(m.future.Status(testing::kSafetyBound).ok() || m.future.Cancelled());
      });
    }
    canceller.join();
    worker.join();
    for (std::thread& t : readers) t.join();
    EXPECT_NE(cancelled, ran);
    EXPECT_EQ(callbacks.load(), 1);
    EXPECT_EQ(m.future.Cancelled(), cancelled);
  }
}

}  // namespace
}  // namespace mp
