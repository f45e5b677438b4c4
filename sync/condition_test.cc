// Copyright 2026 The mp Authors.

#include "sync/condition.h"

#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sync/lock.h"
#include "sync/rlock.h"
#include "sync/semaphore.h"
#include "sync/shm.h"
#include "sync/test_child.h"

namespace mp {
namespace {

using ::mp::testing::TestChild;
using ::mp::testing::TestPipe;

TEST(ConditionTest, RequiresTheLock) {
  absl::StatusOr<Condition> cond = Condition::Create(ShmDomain::kFork);
  ASSERT_TRUE(cond.ok()) << cond.status();
  EXPECT_TRUE(std::holds_alternative<RLock>(cond->lock()));
  absl::Status wait = cond->Wait(absl::Milliseconds(1)).status();
  EXPECT_EQ(wait.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(wait.message().find("cannot wait on un-acquired lock"), std::string::npos) << wait;
  absl::Status notify = cond->Notify();
  EXPECT_EQ(notify.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(notify.message().find("cannot notify on un-acquired lock"), std::string::npos)
      << notify;
  EXPECT_EQ(cond->NotifyAll().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ConditionTest, BadArguments) {
  absl::StatusOr<Condition> cond = Condition::Create(ShmDomain::kFork);
  ASSERT_TRUE(cond.ok());
  ASSERT_TRUE(cond->Acquire().value());
  EXPECT_EQ(cond->Notify(-1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cond->Wait(absl::Seconds(-1)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cond->WaitFor([] { return false; }, absl::Seconds(-1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(cond->Release().ok());
}

TEST(ConditionTest, TimeoutKeepsTheLockAndRecursionDepth) {
  absl::StatusOr<Condition> cond = Condition::Create(ShmDomain::kTransferable);
  ASSERT_TRUE(cond.ok());
  ASSERT_TRUE(cond->Acquire().value());
  ASSERT_TRUE(cond->Acquire().value());
  absl::StatusOr<bool> woke = cond->Wait(absl::Milliseconds(2));
  ASSERT_TRUE(woke.ok()) << woke.status();
  EXPECT_FALSE(*woke);
  const RLock& rlock = std::get<RLock>(cond->lock());
  EXPECT_TRUE(rlock.IsOwned());
  EXPECT_EQ(rlock.Count(), 2u);
  EXPECT_EQ(cond->NWaiting(), 0);
  EXPECT_FALSE(cond->WaitFor([] { return false; }, absl::Milliseconds(2)).value());
  EXPECT_TRUE(cond->WaitFor([] { return true; }, absl::ZeroDuration()).value());
  EXPECT_TRUE(cond->Notify(5).ok());  // nobody waiting: fine
  EXPECT_TRUE(cond->Release().ok());
  EXPECT_TRUE(cond->Release().ok());
  EXPECT_FALSE(rlock.IsOwned());
}

TEST(ConditionTest, OverAPlainLock) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok());
  absl::StatusOr<Condition> cond = Condition::Create(*lock);
  ASSERT_TRUE(cond.ok()) << cond.status();
  EXPECT_TRUE(cond->handle().segment.SameMapping(lock->handle().segment));
  ASSERT_TRUE(cond->Acquire().value());
  EXPECT_TRUE(lock->Locked());
  std::atomic<bool> flag{false};
  std::thread notifier([&] {
    ASSERT_TRUE(cond->Acquire().value());
    flag = true;
    EXPECT_TRUE(cond->Notify().ok());
    EXPECT_TRUE(cond->Release().ok());
  });
  absl::StatusOr<bool> ok = cond->WaitFor([&] { return flag.load(); }, absl::Seconds(60));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(*ok);
  EXPECT_EQ(lock->Owner(), CurrentThreadId());
  EXPECT_TRUE(cond->Release().ok());
  notifier.join();
}

TEST(ConditionHandleTest, FromHandleReopensConditionAndLock) {
  absl::StatusOr<RLock> rlock = RLock::Create(ShmDomain::kTransferable);
  ASSERT_TRUE(rlock.ok());
  absl::StatusOr<Condition> cond = Condition::Create(*rlock);
  ASSERT_TRUE(cond.ok()) << cond.status();
  absl::StatusOr<ShmSegment> seg = ShmSegment::Attach(cond->handle().segment.fd());
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<Condition> again = Condition::FromHandle({*seg, cond->handle().offset});
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(std::holds_alternative<RLock>(again->lock()));
  ASSERT_TRUE(rlock->Acquire().value());
  EXPECT_TRUE(std::get<RLock>(again->lock()).IsOwned());
  EXPECT_TRUE(again->Notify().ok());
  EXPECT_TRUE(rlock->Release().ok());
  EXPECT_EQ(Condition::FromHandle(rlock->handle()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// 6 waiters: 2 processes x 2 threads, plus 2 threads of the parent. Notify(2), Notify(3) and
// NotifyAll wake exactly 2, 3 and 1.
TEST(ConditionTest, ExactWakeCountsAcrossProcessesAndThreads) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 8192);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<Condition> cond = Condition::Create(*seg);
  absl::StatusOr<Semaphore> registered = Semaphore::Create(*seg, 0);
  absl::StatusOr<Semaphore> woken = Semaphore::Create(*seg, 0);
  ASSERT_TRUE(cond.ok() && registered.ok() && woken.ok());
  // Returns 0 if notified, else a code.
  auto waiter = [&]() -> int {
    if (!cond->Acquire().value_or(false)) return 1;
    if (!registered->Release().ok()) return 2;  // we are registered once we release in Wait
    absl::StatusOr<bool> notified = cond->Wait(absl::Seconds(120));
    if (!notified.ok() || !*notified) return 3;
    if (!cond->Release().ok()) return 4;
    return woken->Release().ok() ? 0 : 5;
  };
  std::vector<TestChild> children;
  for (int c = 0; c < 2; ++c) {
    children.emplace_back([&] {
      int results[2] = {-1, -1};
      std::thread t0([&] { results[0] = waiter(); });
      std::thread t1([&] { results[1] = waiter(); });
      t0.join();
      t1.join();
      return results[0] * 10 + results[1];
    });
  }
  int parent_results[2] = {-1, -1};
  std::thread p0([&] { parent_results[0] = waiter(); });
  std::thread p1([&] { parent_results[1] = waiter(); });
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(registered->Acquire(true, absl::Seconds(60)).value());

  auto notify = [&](int n) {
    ASSERT_TRUE(cond->Acquire().value());
    const int before = cond->NWaiting();
    if (n < 0) {
      EXPECT_TRUE(cond->NotifyAll().ok());
    } else {
      EXPECT_TRUE(cond->Notify(n).ok());
    }
    const int after = cond->NWaiting();
    EXPECT_TRUE(cond->Release().ok());
    ASSERT_EQ(before - after, n < 0 ? before : n);
    for (int i = 0; i < before - after; ++i) {
      ASSERT_TRUE(woken->Acquire(true, absl::Seconds(60)).value());
    }
  };
  ASSERT_TRUE(cond->Acquire().value());
  EXPECT_EQ(cond->NWaiting(), 6);  // all registered: each held the lock when it posted
  EXPECT_TRUE(cond->Release().ok());
  notify(2);
  notify(3);
  ASSERT_TRUE(cond->Acquire().value());
  EXPECT_EQ(cond->NWaiting(), 1);
  EXPECT_TRUE(cond->Release().ok());
  notify(-1);
  p0.join();
  p1.join();
  EXPECT_EQ(parent_results[0], 0);
  EXPECT_EQ(parent_results[1], 0);
  for (auto& child : children) EXPECT_EQ(child.Wait(), 0);
  EXPECT_EQ(woken->GetValue(), 0);
}

TEST(ConditionTest, ProducerProcessConsumerWaitFor) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 8192);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<Condition> cond = Condition::Create(*seg);
  ASSERT_TRUE(cond.ok());
  absl::StatusOr<uint64_t> off = seg->Allocate(8);
  ASSERT_TRUE(off.ok());
  auto* items = static_cast<volatile int*>(seg->At(*off));
  TestChild producer([&] {
    for (int i = 0; i < 100; ++i) {
      if (!cond->Acquire().value_or(false)) return 1;
      *items = *items + 1;
      if (!cond->Notify().ok() || !cond->Release().ok()) return 2;
    }
    return 0;
  });
  ASSERT_TRUE(cond->Acquire().value());
  absl::StatusOr<bool> done = cond->WaitFor([&] { return *items == 100; }, absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(*done);
  EXPECT_TRUE(cond->Release().ok());
  EXPECT_EQ(producer.Wait(), 0);
}

TEST(ConditionDeathTest, DeadWaiterIsSkippedByNotify) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 8192);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<Condition> cond = Condition::Create(*seg);
  absl::StatusOr<Semaphore> registered = Semaphore::Create(*seg, 0);
  ASSERT_TRUE(cond.ok() && registered.ok());
  TestChild doomed([&] {
    if (!cond->Acquire().value_or(false)) return 1;
    if (!registered->Release().ok()) return 2;
    cond->Wait().IgnoreError();
    return 3;
  });
  ASSERT_TRUE(registered->Acquire(true, absl::Seconds(60)).value());
  // Taking the lock proves the child released it inside Wait: it is waiting, not holding.
  ASSERT_TRUE(cond->Acquire().value());
  EXPECT_EQ(cond->NWaiting(), 1);
  EXPECT_TRUE(cond->Release().ok());
  doomed.Kill();
  EXPECT_EQ(doomed.Wait(), 128 + SIGKILL);

  absl::StatusOr<bool> live_result = false;
  std::thread live([&] {
    ASSERT_TRUE(cond->Acquire().value());
    ASSERT_TRUE(registered->Release().ok());
    live_result = cond->Wait(absl::Seconds(60));
    EXPECT_TRUE(cond->Release().ok());
  });
  ASSERT_TRUE(registered->Acquire(true, absl::Seconds(60)).value());
  ASSERT_TRUE(cond->Acquire().value());
  EXPECT_EQ(cond->NWaiting(), 2);     // the dead one is still registered
  EXPECT_TRUE(cond->Notify(1).ok());  // skips the dead (older) waiter, wakes the live one
  EXPECT_EQ(cond->NWaiting(), 0);
  EXPECT_TRUE(cond->Release().ok());
  live.join();
  ASSERT_TRUE(live_result.ok()) << live_result.status();
  EXPECT_TRUE(*live_result);
}

TEST(ConditionDeathTest, LockHolderDiesWhileWaiterReacquires) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok());
  absl::StatusOr<Condition> cond = Condition::Create(*lock);
  ASSERT_TRUE(cond.ok());
  TestPipe go;
  TestPipe held;
  TestPipe never;
  TestChild notifier([&] {
    if (go.Receive() != 'x') return 1;
    if (!cond->Acquire().value_or(false)) return 2;
    if (!cond->Notify().ok()) return 3;
    held.Send();
    never.Receive();  // dies holding the lock
    return 0;
  });
  absl::StatusOr<bool> result = false;
  std::thread waiter([&] {
    ASSERT_TRUE(cond->Acquire().value());
    go.Send();  // the notifier blocks on the lock until Wait releases it
    result = cond->Wait(absl::Seconds(60));
  });
  ASSERT_EQ(held.Receive(), 'x');
  const pid_t pid = notifier.pid();
  notifier.Kill();
  waiter.join();
  EXPECT_EQ(notifier.Wait(), 128 + SIGKILL);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(IsOwnerDied(result.status())) << result.status();
  EXPECT_NE(result.status().message().find(absl::StrCat(pid)), std::string::npos);
  // The waiter thread holds the lock (a Lock may be released by anybody).
  EXPECT_TRUE(lock->Locked());
  EXPECT_TRUE(lock->Release().ok());
}

// A child with kConditionMaxWaiters threads, each of which acquires `cond`, releases `registered`
// once and Waits (then releases `cond` when `release_after_wait`): every waiter slot taken. The
// caller acquires `registered` kConditionMaxWaiters times to know they all got there.
TestChild StartWaiterInEverySlot(Condition& cond, Semaphore& registered, bool release_after_wait) {
  return TestChild([&cond, &registered, release_after_wait] {
    std::vector<std::thread> threads;
    for (int i = 0; i < kConditionMaxWaiters; ++i) {
      threads.emplace_back([&] {
        if (!cond.Acquire().value_or(false)) return;
        registered.Release().IgnoreError();
        cond.Wait().IgnoreError();
        if (release_after_wait) cond.Release().IgnoreError();
      });
    }
    for (auto& t : threads) t.join();
    return 0;
  });
}

TEST(ConditionTest, TooManyWaiters) {
  absl::StatusOr<Condition> cond = Condition::Create(ShmDomain::kFork);
  ASSERT_TRUE(cond.ok());
  // Fill every slot with waiters (threads of a child); one more is refused.
  absl::StatusOr<Semaphore> registered = Semaphore::Create(ShmDomain::kFork, 0);
  ASSERT_TRUE(registered.ok());
  TestChild child = StartWaiterInEverySlot(*cond, *registered, /*release_after_wait=*/true);
  for (int i = 0; i < kConditionMaxWaiters; ++i) {
    ASSERT_TRUE(registered->Acquire(true, absl::Seconds(60)).value());
  }
  ASSERT_TRUE(cond->Acquire().value());
  absl::Status full = cond->Wait(absl::Seconds(1)).status();
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_TRUE(cond->NotifyAll().ok());
  EXPECT_EQ(cond->NWaiting(), 0);
  EXPECT_TRUE(cond->Release().ok());
  EXPECT_EQ(child.Wait(), 0);
}

TEST(ConditionDeathTest, SlotsOfDeadWaitersAreReclaimed) {
  absl::StatusOr<Condition> cond = Condition::Create(ShmDomain::kFork);
  absl::StatusOr<Semaphore> registered = Semaphore::Create(ShmDomain::kFork, 0);
  ASSERT_TRUE(cond.ok() && registered.ok());
  TestChild child = StartWaiterInEverySlot(*cond, *registered, /*release_after_wait=*/false);
  for (int i = 0; i < kConditionMaxWaiters; ++i) {
    ASSERT_TRUE(registered->Acquire(true, absl::Seconds(60)).value());
  }
  ASSERT_TRUE(cond->Acquire().value());  // every child thread is inside Wait now
  EXPECT_EQ(cond->Wait(absl::ZeroDuration()).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(cond->Release().ok());
  child.Kill();
  EXPECT_EQ(child.Wait(), 128 + SIGKILL);

  ASSERT_TRUE(cond->Acquire().value());
  absl::StatusOr<bool> waited = cond->Wait(absl::ZeroDuration());  // reclaims a dead slot
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_FALSE(*waited);
  EXPECT_EQ(cond->NWaiting(), kConditionMaxWaiters - 1);  // the other dead ones, until a Notify
  EXPECT_TRUE(cond->Notify(1).ok());                      // skips and frees every dead waiter
  EXPECT_EQ(cond->NWaiting(), 0);
  EXPECT_TRUE(cond->Release().ok());
}

}  // namespace
}  // namespace mp
