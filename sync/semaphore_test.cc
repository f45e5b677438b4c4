// Copyright 2026 The mp Authors.

#include "sync/semaphore.h"

#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "sync/shm.h"
#include "sync/test_child.h"

namespace mp {
namespace {

using ::mp::testing::TestChild;
using ::mp::testing::TestPipe;

TEST(SemaphoreTest, CountsDownAndUp) {
  absl::StatusOr<Semaphore> sem = Semaphore::Create(ShmDomain::kFork, 2);
  ASSERT_TRUE(sem.ok()) << sem.status();
  EXPECT_EQ(sem->GetValue(), 2);
  EXPECT_TRUE(sem->Acquire().value());
  EXPECT_TRUE(sem->Acquire(false).value());
  EXPECT_EQ(sem->GetValue(), 0);
  EXPECT_FALSE(sem->Acquire(false).value());
  EXPECT_FALSE(sem->Acquire(true, absl::Milliseconds(3)).value());
  EXPECT_TRUE(sem->Release().ok());
  EXPECT_TRUE(sem->Release().ok());
  EXPECT_TRUE(sem->Release().ok());  // unbounded: above the initial value is fine
  EXPECT_EQ(sem->GetValue(), 3);
}

TEST(SemaphoreTest, RejectsBadArguments) {
  EXPECT_EQ(Semaphore::Create(ShmDomain::kFork, -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status huge = Semaphore::Create(ShmDomain::kFork, kSemaphoreMax + 1).status();
  EXPECT_EQ(huge.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(huge.message().find("2147483648"), std::string::npos) << huge;
  absl::StatusOr<Semaphore> sem = Semaphore::Create(ShmDomain::kFork, 0);
  ASSERT_TRUE(sem.ok());
  EXPECT_EQ(sem->Acquire(false, absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sem->Acquire(true, absl::Seconds(-1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SemaphoreTest, OverflowIsAnError) {
  absl::StatusOr<Semaphore> sem = Semaphore::Create(ShmDomain::kFork, kSemaphoreMax);
  ASSERT_TRUE(sem.ok());
  EXPECT_EQ(sem->Release().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sem->GetValue(), kSemaphoreMax);
}

TEST(BoundedSemaphoreTest, ReleaseAboveInitialIsAnError) {
  absl::StatusOr<BoundedSemaphore> sem = BoundedSemaphore::Create(ShmDomain::kTransferable, 2);
  ASSERT_TRUE(sem.ok()) << sem.status();
  EXPECT_EQ(sem->MaxValue(), 2);
  absl::Status too_many = sem->Release();
  EXPECT_EQ(too_many.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(too_many.message().find("released too many times"), std::string::npos) << too_many;
  EXPECT_TRUE(sem->Acquire().value());
  EXPECT_TRUE(sem->Release().ok());
  EXPECT_EQ(sem->Release().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sem->GetValue(), 2);
}

TEST(SemaphoreHandleTest, FromHandleChecksTheKind) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kTransferable, 4096);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<Semaphore> sem = Semaphore::Create(*seg, 5);
  absl::StatusOr<BoundedSemaphore> bounded = BoundedSemaphore::Create(*seg, 1);
  ASSERT_TRUE(sem.ok() && bounded.ok());
  absl::StatusOr<ShmSegment> attached = ShmSegment::Attach(seg->fd());
  ASSERT_TRUE(attached.ok());
  absl::StatusOr<Semaphore> sem2 = Semaphore::FromHandle({*attached, sem->handle().offset});
  ASSERT_TRUE(sem2.ok()) << sem2.status();
  EXPECT_EQ(sem2->GetValue(), 5);
  EXPECT_EQ(Semaphore::FromHandle(bounded->handle()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BoundedSemaphore::FromHandle(sem->handle()).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<BoundedSemaphore> b2 = BoundedSemaphore::FromHandle(bounded->handle());
  ASSERT_TRUE(b2.ok());
  EXPECT_EQ(b2->MaxValue(), 1);
}

// A semaphore of 2 shared by 6 processes: never more than 2 inside at once.
TEST(SemaphoreTest, LimitsConcurrencyAcrossProcesses) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 4096);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<Semaphore> sem = Semaphore::Create(*seg, 2);
  ASSERT_TRUE(sem.ok());
  absl::StatusOr<uint64_t> off = seg->Allocate(8);
  ASSERT_TRUE(off.ok());
  auto* inside = static_cast<std::atomic<int>*>(seg->At(*off));
  std::vector<TestChild> children;
  for (int c = 0; c < 6; ++c) {
    children.emplace_back([&] {
      for (int i = 0; i < 3000; ++i) {
        if (!sem->Acquire().value_or(false)) return 1;
        if (inside->fetch_add(1) >= 2) return 2;
        inside->fetch_sub(1);
        if (!sem->Release().ok()) return 3;
      }
      return 0;
    });
  }
  for (auto& child : children) EXPECT_EQ(child.Wait(), 0);
  EXPECT_EQ(sem->GetValue(), 2);
}

TEST(SemaphoreTest, ReleaseWakesExactlyTheWaitersNeeded) {
  absl::StatusOr<Semaphore> sem = Semaphore::Create(ShmDomain::kFork, 0);
  ASSERT_TRUE(sem.ok());
  TestPipe done;
  std::vector<TestChild> children;
  for (int c = 0; c < 3; ++c) {
    children.emplace_back([&] {
      if (!sem->Acquire(true, absl::Seconds(60)).value_or(false)) return 1;
      done.Send();
      return 0;
    });
  }
  for (int c = 0; c < 3; ++c) {
    ASSERT_TRUE(sem->Release().ok());
    ASSERT_EQ(done.Receive(), 'x');
  }
  for (auto& child : children) EXPECT_EQ(child.Wait(), 0);
  EXPECT_EQ(sem->GetValue(), 0);
}

TEST(SemaphoreTest, ThreadsProducerConsumer) {
  absl::StatusOr<Semaphore> items = Semaphore::Create(ShmDomain::kFork, 0);
  ASSERT_TRUE(items.ok());
  constexpr int kItems = 20000;
  std::atomic<int> consumed{0};
  std::vector<std::thread> consumers;
  for (int t = 0; t < 2; ++t) {
    consumers.emplace_back([&] {
      for (int i = 0; i < kItems / 2; ++i) {
        if (items->Acquire().value_or(false)) ++consumed;
      }
    });
  }
  for (int i = 0; i < kItems; ++i) ASSERT_TRUE(items->Release().ok());
  for (auto& t : consumers) t.join();
  EXPECT_EQ(consumed.load(), kItems);
  EXPECT_EQ(items->GetValue(), 0);
}

// A waiter killed while asleep leaves only a stale waiter count: the semaphore keeps working.
TEST(SemaphoreTest, KilledWaiterLeavesItUsable) {
  absl::StatusOr<Semaphore> sem = Semaphore::Create(ShmDomain::kFork, 0);
  ASSERT_TRUE(sem.ok());
  TestPipe started;
  TestChild child([&] {
    started.Send();
    sem->Acquire().IgnoreError();
    return 0;
  });
  ASSERT_EQ(started.Receive(), 'x');
  child.Kill();
  EXPECT_EQ(child.Wait(), 128 + SIGKILL);
  EXPECT_TRUE(sem->Release().ok());
  EXPECT_EQ(sem->GetValue(), 1);
  EXPECT_TRUE(sem->Acquire(true, absl::Seconds(10)).value());
  EXPECT_EQ(sem->GetValue(), 0);
}

}  // namespace
}  // namespace mp
