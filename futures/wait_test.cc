// Copyright 2026 The mp Authors.
//
// CPython's Lib/test/test_concurrent_futures/test_wait.py and test_as_completed.py, for
// mp::WaitFutures and mp::AsCompleted over futures finished by the test's own threads.

#include "futures/wait.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "futures/future.h"
#include "futures/test_gate.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

template <typename T = int>
struct Made {
  std::shared_ptr<futures_internal::Core<T>> core;
  Future<T> future;
};
template <typename T = int>
Made<T> Make(std::string name) {
  auto core = std::make_shared<futures_internal::Core<T>>(std::move(name));
  return {core, Future<T>(core)};
}
Made<> Succeeded(std::string name, int v = 42) {
  Made<> m = Make(std::move(name));
  EXPECT_TRUE(m.core->SetResult(v).ok());
  return m;
}
Made<> Failed(std::string name) {
  Made<> m = Make(std::move(name));
  EXPECT_TRUE(m.core->SetFailure(absl::InternalError("failed")).ok());
  return m;
}
Made<> Cancelled(std::string name) {
  Made<> m = Make(std::move(name));
  EXPECT_TRUE(m.future.Cancel());
  return m;
}

// Waits (yielding, bounded) until `n` waiters are installed on `core`: a WaitFutures or AsCompleted
// in another thread is then blocked on it, so finishing the future exercises the wake-up path.
void AwaitWaiters(const futures_internal::CoreBase& core, size_t n) {
  const Deadline bound = Deadline::After(testing::kSafetyBound);
  while (core.WaiterCountForTesting() < n && !bound.Expired()) std::this_thread::yield();
  ASSERT_GE(core.WaiterCountForTesting(), n);
}

std::vector<std::string> Names(const std::vector<Future<int>>& fs) {
  std::vector<std::string> out;
  for (const Future<int>& f : fs) out.push_back(f.description());
  return out;
}

TEST(WaitFuturesTest, DuplicatesCountOnce) {  // CPython's test_20369
  Made<> a = Make("a");
  std::vector<Future<int>> fs = {a.future, a.future};
  std::thread finisher([&] {
    AwaitWaiters(*a.core, 1);
    ASSERT_TRUE(a.core->SetResult(1).ok());
  });
  DoneAndNotDone<Future<int>> r = WaitFutures(fs, testing::kSafetyBound);
  finisher.join();
  EXPECT_THAT(Names(r.done), ElementsAre("a"));
  EXPECT_THAT(r.not_done, IsEmpty());
  EXPECT_EQ(a.core->WaiterCountForTesting(), 0u);
}

TEST(WaitFuturesTest, FirstCompletedWakesOnTheFirstToFinish) {
  Made<> f1 = Make("f1"), f2 = Make("f2");
  std::vector<Future<int>> fs = {f1.future, f2.future};
  std::thread finisher([&] {
    AwaitWaiters(*f1.core, 1);
    ASSERT_TRUE(f1.core->SetResult(1).ok());
  });
  DoneAndNotDone<Future<int>> r =
      WaitFutures(fs, testing::kSafetyBound, ReturnWhen::kFirstCompleted);
  finisher.join();
  EXPECT_THAT(Names(r.done), ElementsAre("f1"));
  EXPECT_THAT(Names(r.not_done), ElementsAre("f2"));
  // The waiter is gone from the future still pending.
  EXPECT_EQ(f2.core->WaiterCountForTesting(), 0u);
}

TEST(WaitFuturesTest, FirstCompletedReturnsAtOnceWhenSomeAreDone) {
  Made<> pending = Make("pending");
  std::vector<Future<int>> fs = {Cancelled("cancelled").future, Succeeded("ok").future,
                                 pending.future};
  DoneAndNotDone<Future<int>> r =
      WaitFutures(fs, testing::kSafetyBound, ReturnWhen::kFirstCompleted);
  EXPECT_THAT(Names(r.done), ElementsAre("cancelled", "ok"));
  EXPECT_THAT(Names(r.not_done), ElementsAre("pending"));
  EXPECT_EQ(pending.core->WaiterCountForTesting(), 0u);
}

TEST(WaitFuturesTest, FirstExceptionWakesOnAFailureNotOnASuccess) {
  Made<> f1 = Make("f1"), f2 = Make("f2"), f3 = Make("f3");
  std::vector<Future<int>> fs = {f1.future, f2.future, f3.future};
  std::thread finisher([&] {
    AwaitWaiters(*f1.core, 1);
    ASSERT_TRUE(f1.core->SetResult(1).ok());  // a success does not end the wait
    ASSERT_TRUE(f2.core->SetFailure(absl::UnknownError("raised")).ok());
  });
  DoneAndNotDone<Future<int>> r =
      WaitFutures(fs, testing::kSafetyBound, ReturnWhen::kFirstException);
  finisher.join();
  EXPECT_THAT(Names(r.done), ElementsAre("f1", "f2"));
  EXPECT_THAT(Names(r.not_done), ElementsAre("f3"));
}

TEST(WaitFuturesTest, FirstExceptionSomeAlreadyComplete) {
  Made<> f1 = Make("f1"), f2 = Make("f2");
  std::vector<Future<int>> fs = {Succeeded("ok").future, Cancelled("cancelled").future, f1.future,
                                 f2.future};
  std::thread finisher([&] {
    AwaitWaiters(*f1.core, 1);
    ASSERT_TRUE(f1.core->SetFailure(absl::InvalidArgumentError("divmod(21, 0)")).ok());
  });
  DoneAndNotDone<Future<int>> r =
      WaitFutures(fs, testing::kSafetyBound, ReturnWhen::kFirstException);
  finisher.join();
  // A cancelled future is done but is no exception: the wait went on until f1 failed.
  EXPECT_THAT(Names(r.done), ElementsAre("ok", "cancelled", "f1"));
  EXPECT_THAT(Names(r.not_done), ElementsAre("f2"));
}

TEST(WaitFuturesTest, FirstExceptionOneAlreadyFailed) {
  Made<> f1 = Make("f1");
  std::vector<Future<int>> fs = {Failed("failed").future, f1.future};
  DoneAndNotDone<Future<int>> r =
      WaitFutures(fs, testing::kSafetyBound, ReturnWhen::kFirstException);
  EXPECT_THAT(Names(r.done), ElementsAre("failed"));
  EXPECT_THAT(Names(r.not_done), ElementsAre("f1"));
}

TEST(WaitFuturesTest, FirstExceptionWithoutAnyFailureWaitsForAll) {
  Made<> f1 = Make("f1"), f2 = Make("f2");
  std::vector<Future<int>> fs = {f1.future, f2.future};
  std::thread finisher([&] {
    AwaitWaiters(*f1.core, 1);
    ASSERT_TRUE(f1.core->SetResult(1).ok());
    EXPECT_TRUE(f2.future.Cancel());
  });
  DoneAndNotDone<Future<int>> r =
      WaitFutures(fs, testing::kSafetyBound, ReturnWhen::kFirstException);
  finisher.join();
  EXPECT_THAT(Names(r.done), ElementsAre("f1", "f2"));
  EXPECT_THAT(r.not_done, IsEmpty());
}

TEST(WaitFuturesTest, AllCompleted) {
  Made<> f1 = Make("f1"), f2 = Make("f2");
  std::vector<Future<int>> fs = {Succeeded("ok").future, Cancelled("cancelled").future,
                                 Failed("failed").future, f1.future, f2.future};
  std::thread finisher([&] {
    AwaitWaiters(*f2.core, 1);
    ASSERT_TRUE(f2.core->SetResult(2).ok());
    ASSERT_TRUE(f1.core->SetFailure(absl::AbortedError("late")).ok());
  });
  DoneAndNotDone<Future<int>> r = WaitFutures(fs, testing::kSafetyBound);
  finisher.join();
  EXPECT_THAT(Names(r.done), ElementsAre("ok", "cancelled", "failed", "f1", "f2"));
  EXPECT_THAT(r.not_done, IsEmpty());
}

TEST(WaitFuturesTest, TimeoutLeavesTheUnfinishedInNotDone) {
  Made<> never = Make("never");
  std::vector<Future<int>> fs = {Cancelled("cancelled").future, Failed("failed").future,
                                 Succeeded("ok").future, never.future};
  DoneAndNotDone<Future<int>> r = WaitFutures(fs, absl::Milliseconds(20));
  EXPECT_THAT(Names(r.done), ElementsAre("cancelled", "failed", "ok"));
  EXPECT_THAT(Names(r.not_done), ElementsAre("never"));
  EXPECT_EQ(never.core->WaiterCountForTesting(), 0u);
}

TEST(WaitFuturesTest, NoFuturesReturnsAtOnce) {
  DoneAndNotDone<Future<int>> r = WaitFutures(std::vector<Future<int>>{});
  EXPECT_THAT(r.done, IsEmpty());
  EXPECT_THAT(r.not_done, IsEmpty());
}

TEST(WaitFuturesTest, MixedTypesThroughAnyFuture) {
  Made<int> i = Make<int>("int");
  Made<std::string> s = Make<std::string>("string");
  std::vector<AnyFuture> fs = {i.future, s.future};
  std::thread finisher([&] {
    AwaitWaiters(*s.core, 1);
    ASSERT_TRUE(s.core->SetResult(std::string("x")).ok());
  });
  DoneAndNotDone<AnyFuture> r = WaitFutures(fs, testing::kSafetyBound, ReturnWhen::kFirstCompleted);
  finisher.join();
  EXPECT_THAT(r.done, ElementsAre(AnyFuture(s.future)));
  EXPECT_THAT(r.not_done, ElementsAre(AnyFuture(i.future)));
}

TEST(WaitFuturesTest, AnEmptyFutureIsDoneAndFailed) {
  Made<> pending = Make("pending");
  std::vector<Future<int>> fs = {pending.future, Future<int>()};
  DoneAndNotDone<Future<int>> r =
      WaitFutures(fs, testing::kSafetyBound, ReturnWhen::kFirstException);
  ASSERT_EQ(r.done.size(), 1u);
  EXPECT_EQ(r.done[0].Status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.not_done, ElementsAre(pending.future));
}

TEST(AsCompletedTest, AlreadyDoneFirstThenInCompletionOrder) {
  Made<> f1 = Make("f1"), f2 = Make("f2"), f3 = Make("f3");
  std::vector<Future<int>> fs = {f1.future, Succeeded("ok").future, f2.future,
                                 Cancelled("cancelled").future, f3.future};
  AsCompletedIterator<Future<int>> it = AsCompleted(fs, testing::kSafetyBound);
  EXPECT_EQ(it.size(), 5u);
  EXPECT_EQ(it.Next()->description(), "ok");
  EXPECT_EQ(it.Next()->description(), "cancelled");
  std::thread finisher([&] {
    ASSERT_TRUE(f3.core->SetResult(3).ok());
    ASSERT_TRUE(f1.core->SetFailure(absl::InternalError("one")).ok());
    ASSERT_TRUE(f2.core->SetResult(2).ok());
  });
  finisher.join();
  absl::StatusOr<Future<int>> a = it.Next(), b = it.Next(), c = it.Next();
  EXPECT_EQ(a->description(), "f3");
  EXPECT_EQ(b->description(), "f1");
  EXPECT_EQ(c->description(), "f2");
  EXPECT_EQ(*a->Result(), 3);
  absl::StatusOr<Future<int>> end = it.Next();
  EXPECT_EQ(end.status().code(), absl::StatusCode::kOutOfRange);
}

TEST(AsCompletedTest, WakesWhenAFutureFinishes) {
  Made<> f1 = Make("f1");
  std::vector<Future<int>> fs = {f1.future};
  AsCompletedIterator<Future<int>> it = AsCompleted(fs, testing::kSafetyBound);
  std::thread finisher([&] {
    AwaitWaiters(*f1.core, 1);
    ASSERT_TRUE(f1.core->SetResult(1).ok());
  });
  absl::StatusOr<Future<int>> f = it.Next();
  finisher.join();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f, f1.future);
}

TEST(AsCompletedTest, TimeoutNamesTheUnfinishedAndTheRestComeAfterRelease) {
  Made<> slow1 = Make("slow1"), slow2 = Make("slow2");
  std::vector<Future<int>> fs = {Succeeded("ok").future, slow1.future, slow2.future};
  AsCompletedIterator<Future<int>> it = AsCompleted(fs, absl::Milliseconds(10));
  EXPECT_EQ(it.Next()->description(), "ok");
  absl::StatusOr<Future<int>> late = it.Next();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(late.status().message(),
              HasSubstr("AsCompleted: 2 (of 3) futures unfinished after 10ms"));
  // Released after the deadline: the iterator still yields them, without waiting.
  ASSERT_TRUE(slow2.core->SetResult(2).ok());
  EXPECT_EQ(it.Next()->description(), "slow2");
  EXPECT_EQ(it.Next().status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(slow1.core->SetResult(1).ok());
  EXPECT_EQ(it.Next()->description(), "slow1");
  EXPECT_EQ(it.Next().status().code(), absl::StatusCode::kOutOfRange);
}

TEST(AsCompletedTest, ZeroTimeoutYieldsTheDoneOnesThenTimesOut) {
  Made<> pending = Make("pending");
  std::vector<Future<int>> fs = {pending.future, Failed("failed").future,
                                 Cancelled("cancelled").future};
  AsCompletedIterator<Future<int>> it = AsCompleted(fs, absl::ZeroDuration());
  EXPECT_EQ(it.Next()->description(), "failed");
  EXPECT_EQ(it.Next()->description(), "cancelled");
  absl::StatusOr<Future<int>> late = it.Next();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(late.status().message(), HasSubstr("1 (of 3) futures unfinished after 0"));
}

TEST(AsCompletedTest, YieldedFuturesFindTheirEntryInAHashMap) {
  // CPython's idiom: {executor.submit(load, url): url for url in urls}, then as_completed.
  Made<int> a = Make<int>("a");
  Made<std::string> b = Make<std::string>("b");
  absl::flat_hash_map<AnyFuture, std::string> url_of = {{a.future, "http://a"},
                                                        {b.future, "http://b"}};
  std::vector<AnyFuture> fs = {a.future, b.future};
  ASSERT_TRUE(b.core->SetResult(std::string("page")).ok());
  ASSERT_TRUE(a.core->SetResult(1).ok());
  std::vector<std::string> order;
  for (const absl::StatusOr<AnyFuture>& f : AsCompleted(fs)) order.push_back(url_of.at(*f));
  EXPECT_THAT(order, UnorderedElementsAre("http://a", "http://b"));
}

TEST(AsCompletedTest, DuplicatesYieldedOnce) {
  Made<> a = Make("a");
  Future<int> ok = Succeeded("ok").future;
  std::vector<Future<int>> fs = {ok, a.future, ok, a.future};
  AsCompletedIterator<Future<int>> it = AsCompleted(fs, testing::kSafetyBound);
  EXPECT_EQ(it.size(), 2u);
  EXPECT_EQ(*it.Next(), ok);
  ASSERT_TRUE(a.core->SetResult(1).ok());
  EXPECT_EQ(*it.Next(), a.future);
  EXPECT_EQ(it.Next().status().code(), absl::StatusCode::kOutOfRange);
}

TEST(AsCompletedTest, RangeForEndsAfterTheLastOrAfterATimeout) {
  std::vector<Future<int>> fs = {Succeeded("a", 1).future, Succeeded("b", 2).future};
  int sum = 0;
  for (const absl::StatusOr<Future<int>>& f : AsCompleted(fs)) {
    ASSERT_TRUE(f.ok());
    sum += *(*f).Result();
  }
  EXPECT_EQ(sum, 3);

  Made<> never = Make("never");
  std::vector<Future<int>> with_pending = {Succeeded("a").future, never.future};
  std::vector<absl::StatusCode> codes;
  for (const absl::StatusOr<Future<int>>& f : AsCompleted(with_pending, absl::Milliseconds(5))) {
    codes.push_back(f.status().code());
  }
  EXPECT_THAT(codes, ElementsAre(absl::StatusCode::kOk, absl::StatusCode::kDeadlineExceeded));
}

TEST(AsCompletedTest, DestroyingTheIteratorRemovesItsWaiters) {
  Made<> a = Make("a"), b = Make("b");
  {
    std::vector<Future<int>> fs = {a.future, b.future};
    AsCompletedIterator<Future<int>> it = AsCompleted(fs, absl::ZeroDuration());
    EXPECT_EQ(a.core->WaiterCountForTesting(), 1u);
    AsCompletedIterator<Future<int>> moved = std::move(it);
    ASSERT_TRUE(a.core->SetResult(1).ok());
    EXPECT_EQ(*moved.Next(), a.future);
    EXPECT_EQ(b.core->WaiterCountForTesting(), 1u);
  }
  EXPECT_EQ(b.core->WaiterCountForTesting(), 0u);
  ASSERT_TRUE(b.core->SetResult(2).ok());  // no waiter left to notify
}

TEST(AsCompletedTest, ManyThreadsFinishingAtOnce) {
  constexpr int kFutures = 64;
  std::vector<Made<>> made;
  std::vector<Future<int>> fs;
  for (int i = 0; i < kFutures; ++i) {
    made.push_back(Make("f" + std::to_string(i)));
    fs.push_back(made.back().future);
  }
  AsCompletedIterator<Future<int>> it = AsCompleted(fs, testing::kSafetyBound);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&made, t] {
      for (int i = t; i < kFutures; i += 4) {
        if (i % 5 == 0) {
          made[i].future.Cancel();
        } else {
          ASSERT_TRUE(made[i].core->SetResult(i).ok());
        }
      }
    });
  }
  int seen = 0;
  for (const absl::StatusOr<Future<int>>& f : it) {
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_TRUE(f->Done());
    ++seen;
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(seen, kFutures);
}

}  // namespace
}  // namespace mp
