// Copyright 2026 The mp Authors.
//
// Lock, RLock and Semaphore as C++ Lockable / TimedLockable types: std::lock_guard, unique_lock
// and scoped_lock, timeouts against a holder in another process, owner death made visible.

#include "sync/lockable.h"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "sync/lock.h"
#include "sync/rlock.h"
#include "sync/semaphore.h"
#include "sync/test_child.h"

namespace mp {
namespace {

using ::mp::testing::TestChild;
using ::mp::testing::TestPipe;

TEST(LockableTest, LockGuardHoldsAndReleases) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok()) << lock.status();
  {
    std::lock_guard<Lock> guard(*lock);
    EXPECT_TRUE(lock->Locked());
    EXPECT_FALSE(lock->owner_died());
  }
  EXPECT_FALSE(lock->Locked());
}

// A holder in another process: try_lock, try_lock_for and try_lock_until give up; once it
// releases, lock() takes the lock.
TEST(LockableTest, TimedTriesGiveUpWhileAnotherProcessHolds) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok()) << lock.status();
  TestPipe held, release;
  TestChild child([&] {
    held.CloseRead();
    release.CloseWrite();
    std::lock_guard<Lock> guard(*lock);
    held.Send();
    return release.Receive() == 'x' ? 0 : 1;
  });
  held.CloseWrite();
  release.CloseRead();
  ASSERT_EQ(held.Receive(), 'x');
  EXPECT_FALSE(lock->try_lock());
  EXPECT_FALSE(lock->try_lock_for(std::chrono::milliseconds(10)));
  EXPECT_FALSE(
      lock->try_lock_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(5)));
  EXPECT_FALSE(lock->try_lock_until(std::chrono::system_clock::now() - std::chrono::seconds(1)));
  std::unique_lock<Lock> later(*lock, std::defer_lock);
  EXPECT_FALSE(later.try_lock_for(std::chrono::milliseconds(1)));
  ASSERT_TRUE(release.Send());
  later.lock();
  EXPECT_TRUE(later.owns_lock());
  EXPECT_FALSE(lock->owner_died());
  later.unlock();
  EXPECT_EQ(child.Wait(), 0);
}

// A holder killed while holding: lock() takes the lock over and owner_died() says so; the next
// acquire through the same handle clears it.
TEST(LockableTest, OwnerDeathIsVisibleThroughTheGuard) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok()) << lock.status();
  TestPipe held;
  TestChild child([&] {
    held.CloseRead();
    if (!lock->try_lock()) return 1;
    held.Send();
    pause();  // killed holding the lock
    return 2;
  });
  held.CloseWrite();
  ASSERT_EQ(held.Receive(), 'x');
  child.Kill();
  child.Wait();
  {
    std::lock_guard<Lock> guard(*lock);
    EXPECT_TRUE(lock->owner_died());
    EXPECT_TRUE(lock->Locked());
  }
  EXPECT_FALSE(lock->Locked());
  {
    std::lock_guard<Lock> guard(*lock);
    EXPECT_FALSE(lock->owner_died());
  }
}

// Threads of one process share one handle object, as they would share a std::mutex.
TEST(LockableTest, ThreadsShareOneHandle) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok()) << lock.status();
  int64_t counter = 0;
  auto add = [&] {
    for (int i = 0; i < 10000; ++i) {
      std::lock_guard<Lock> guard(*lock);
      EXPECT_FALSE(lock->owner_died());
      ++counter;
    }
  };
  std::thread a(add), b(add);
  a.join();
  b.join();
  EXPECT_EQ(counter, 20000);
}

TEST(LockableTest, RLockNestsAndScopedLockTakesSeveral) {
  absl::StatusOr<RLock> rlock = RLock::Create(ShmDomain::kFork);
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(rlock.ok() && lock.ok());
  {
    std::lock_guard<RLock> outer(*rlock);
    std::lock_guard<RLock> inner(*rlock);
    EXPECT_EQ(rlock->Count(), 2u);
  }
  EXPECT_EQ(rlock->Count(), 0u);
  {
    std::scoped_lock both(*lock, *rlock);
    EXPECT_TRUE(lock->Locked());
    EXPECT_TRUE(rlock->IsOwned());
  }
  EXPECT_FALSE(lock->Locked());
  EXPECT_FALSE(rlock->IsOwned());
}

TEST(LockableTest, SemaphoreCountsUnits) {
  absl::StatusOr<BoundedSemaphore> slots = BoundedSemaphore::Create(ShmDomain::kFork, 2);
  ASSERT_TRUE(slots.ok()) << slots.status();
  EXPECT_TRUE(slots->try_lock());
  {
    std::unique_lock<Semaphore> second(*slots, std::try_to_lock);
    EXPECT_TRUE(second.owns_lock());
    EXPECT_FALSE(slots->try_lock_for(std::chrono::milliseconds(1)));
    EXPECT_EQ(slots->GetValue(), 0);
  }
  EXPECT_EQ(slots->GetValue(), 1);
  slots->unlock();
  EXPECT_EQ(slots->GetValue(), 2);
}

// std makes these undefined; mp aborts with the reason instead of returning into a broken state.
TEST(LockableDeathTest, MisuseAbortsWithTheReason) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_DEATH(lock->unlock(), "mp: unlock\\(\\)");
  absl::StatusOr<BoundedSemaphore> slots = BoundedSemaphore::Create(ShmDomain::kFork, 1);
  ASSERT_TRUE(slots.ok()) << slots.status();
  EXPECT_DEATH(slots->unlock(), "mp: unlock\\(\\)");
}

}  // namespace
}  // namespace mp
