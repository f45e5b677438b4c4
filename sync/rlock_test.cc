// Copyright 2026 The mp Authors.

#include "sync/rlock.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sync/shm.h"
#include "sync/test_child.h"

namespace mp {
namespace {

using ::mp::testing::TestChild;
using ::mp::testing::TestPipe;

TEST(RLockTest, RecursionCountsAndRelease) {
  absl::StatusOr<RLock> rlock = RLock::Create(ShmDomain::kTransferable);
  ASSERT_TRUE(rlock.ok()) << rlock.status();
  EXPECT_EQ(rlock->domain(), ShmDomain::kTransferable);
  EXPECT_FALSE(rlock->IsOwned());
  for (int depth = 1; depth <= 3; ++depth) {
    ASSERT_TRUE(rlock->Acquire().value());
    EXPECT_EQ(rlock->Count(), static_cast<uint32_t>(depth));
  }
  EXPECT_TRUE(rlock->IsOwned());
  EXPECT_EQ(rlock->Owner(), CurrentThreadId());
  EXPECT_TRUE(rlock->Acquire(false).value());  // non-blocking re-entry succeeds
  EXPECT_TRUE(rlock->Release().ok());
  for (int depth = 3; depth >= 1; --depth) {
    EXPECT_TRUE(rlock->IsOwned());
    EXPECT_TRUE(rlock->Release().ok());
  }
  EXPECT_FALSE(rlock->IsOwned());
  EXPECT_EQ(rlock->Owner(), 0);
  EXPECT_EQ(rlock->Count(), 0u);
  absl::Status extra = rlock->Release();
  EXPECT_EQ(extra.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(extra.message().find("un-acquired"), std::string::npos) << extra;
}

TEST(RLockTest, RejectsBadArguments) {
  absl::StatusOr<RLock> rlock = RLock::Create(ShmDomain::kFork);
  ASSERT_TRUE(rlock.ok());
  EXPECT_EQ(rlock->Acquire(false, absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rlock->Acquire(true, absl::Seconds(-1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(rlock->IsOwned());
}

TEST(RLockTest, OtherThreadCannotReleaseOrEnter) {
  absl::StatusOr<RLock> rlock = RLock::Create(ShmDomain::kFork);
  ASSERT_TRUE(rlock.ok());
  ASSERT_TRUE(rlock->Acquire().value());
  absl::Status release;
  absl::StatusOr<bool> enter = false;
  std::thread other([&] {
    release = rlock->Release();
    enter = rlock->Acquire(true, absl::Milliseconds(2));
  });
  other.join();
  EXPECT_EQ(release.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(release.message().find(absl::StrCat("owned by thread ", CurrentThreadId())),
            std::string::npos)
      << release;
  ASSERT_TRUE(enter.ok());
  EXPECT_FALSE(*enter);
  EXPECT_TRUE(rlock->Release().ok());
}

TEST(RLockTest, ForkedChildIsNotTheOwner) {
  absl::StatusOr<RLock> rlock = RLock::Create(ShmDomain::kFork);
  ASSERT_TRUE(rlock.ok());
  ASSERT_TRUE(rlock->Acquire().value());
  TestChild child([&] {
    if (rlock->IsOwned()) return 1;
    if (rlock->Release().code() != absl::StatusCode::kFailedPrecondition) return 2;
    absl::StatusOr<bool> got = rlock->Acquire(false);
    return got.ok() && !*got ? 0 : 3;
  });
  EXPECT_EQ(child.Wait(), 0);
  EXPECT_TRUE(rlock->Release().ok());
}

TEST(RLockTest, ProcessesAndThreadsExclude) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 4096);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<RLock> rlock = RLock::Create(*seg);
  ASSERT_TRUE(rlock.ok());
  absl::StatusOr<uint64_t> off = seg->Allocate(8);
  ASSERT_TRUE(off.ok());
  auto* counter = static_cast<volatile int64_t*>(seg->At(*off));
  constexpr int kIters = 10000;
  auto body = [&] {
    for (int i = 0; i < kIters; ++i) {
      if (!rlock->Acquire().value_or(false) || !rlock->Acquire().value_or(false)) return 1;
      *counter = *counter + 1;
      if (!rlock->Release().ok() || !rlock->Release().ok()) return 2;
    }
    return 0;
  };
  std::vector<TestChild> children;
  for (int c = 0; c < 3; ++c) children.emplace_back(body);
  EXPECT_EQ(body(), 0);
  for (auto& child : children) EXPECT_EQ(child.Wait(), 0);
  EXPECT_EQ(*counter, 4 * kIters);
}

TEST(RLockDeathTest, OwnerKilledWhileHoldingRecursively) {
  absl::StatusOr<RLock> rlock = RLock::Create(ShmDomain::kFork);
  ASSERT_TRUE(rlock.ok());
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    TestPipe held;
    TestPipe never;
    TestChild child([&] {
      for (int i = 0; i < 3; ++i) {
        if (!rlock->Acquire().value_or(false)) return 1;
      }
      held.Send();
      never.Receive();
      return 0;
    });
    ASSERT_EQ(held.Receive(), 'x');
    const pid_t pid = child.pid();
    child.Kill();
    if (round % 2 == 0) {
      EXPECT_EQ(child.Wait(), 128 + SIGKILL);
    }
    absl::StatusOr<bool> got = rlock->Acquire(true, absl::Seconds(30));
    ASSERT_FALSE(got.ok());
    EXPECT_TRUE(IsOwnerDied(got.status())) << got.status();
    EXPECT_NE(got.status().message().find(absl::StrCat(pid)), std::string::npos) << got.status();
    EXPECT_TRUE(rlock->IsOwned());
    EXPECT_EQ(rlock->Count(), 1u);
    EXPECT_TRUE(rlock->Release().ok());
    EXPECT_FALSE(rlock->IsOwned());
    EXPECT_EQ(rlock->Owner(), 0);
  }
}

// An RLock belongs to a thread: once its owning thread has exited the owner is dead, even while
// the thread's process lives on, and the next acquirer -- in this process or another -- takes it
// over with an owner-died status.
TEST(RLockDeathTest, OwnerThreadExitedWhileItsProcessLives) {
  absl::StatusOr<RLock> rlock = RLock::Create(ShmDomain::kFork);
  ASSERT_TRUE(rlock.ok());
  pid_t dead = 0;
  std::thread t1([&] {
    dead = CurrentThreadId();
    EXPECT_TRUE(rlock->Acquire().value_or(false));
    EXPECT_TRUE(rlock->Acquire().value_or(false));
  });
  t1.join();
  absl::StatusOr<bool> got = rlock->Acquire(true, absl::Seconds(30));
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(IsOwnerDied(got.status())) << got.status();
  EXPECT_NE(got.status().message().find(absl::StrCat("thread ", dead)), std::string::npos)
      << got.status();
  EXPECT_TRUE(rlock->IsOwned());
  EXPECT_EQ(rlock->Count(), 1u);
  EXPECT_TRUE(rlock->Release().ok());

  // Another process, while the process of the exited owner (this one) lives.
  std::thread t2([&] {
    dead = CurrentThreadId();
    EXPECT_TRUE(rlock->Acquire().value_or(false));
  });
  t2.join();
  TestChild other([&] {
    absl::StatusOr<bool> taken = rlock->Acquire(true, absl::Seconds(30));
    if (taken.ok() || !IsOwnerDied(taken.status())) return 1;
    if (taken.status().message().find(absl::StrCat("thread ", dead)) == std::string::npos) return 2;
    return rlock->Release().ok() ? 0 : 3;
  });
  EXPECT_EQ(other.Wait(), 0);
  EXPECT_EQ(rlock->Owner(), 0);
}

TEST(RLockHandleTest, FromHandle) {
  absl::StatusOr<RLock> rlock = RLock::Create(ShmDomain::kTransferable);
  ASSERT_TRUE(rlock.ok());
  absl::StatusOr<ShmSegment> seg = ShmSegment::Attach(rlock->handle().segment.fd());
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<RLock> again = RLock::FromHandle({*seg, rlock->handle().offset});
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(rlock->Acquire().value());
  EXPECT_TRUE(again->IsOwned());  // same thread, same lock
  EXPECT_EQ(again->Count(), 1u);
  EXPECT_TRUE(again->Release().ok());
  absl::StatusOr<uint64_t> raw = seg->Allocate(64);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(RLock::FromHandle({*seg, *raw}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RLockTest, ReleaseAllAndRestore) {
  absl::StatusOr<RLock> rlock = RLock::Create(ShmDomain::kFork);
  ASSERT_TRUE(rlock.ok());
  EXPECT_EQ(rlock->ReleaseAll().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(rlock->Acquire().value());
  ASSERT_TRUE(rlock->Acquire().value());
  absl::StatusOr<uint32_t> depth = rlock->ReleaseAll();
  ASSERT_TRUE(depth.ok());
  EXPECT_EQ(*depth, 2u);
  EXPECT_EQ(rlock->Owner(), 0);
  EXPECT_TRUE(rlock->AcquireRestore(*depth).ok());
  EXPECT_EQ(rlock->Count(), 2u);
  EXPECT_TRUE(rlock->Release().ok());
  EXPECT_TRUE(rlock->Release().ok());
  EXPECT_EQ(rlock->Owner(), 0);
}

}  // namespace
}  // namespace mp
