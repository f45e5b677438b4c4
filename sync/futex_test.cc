// Copyright 2026 The mp Authors.

#include "sync/futex.h"

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "sync/test_child.h"

namespace mp {
namespace {

using ::mp::testing::TestChild;
using ::mp::testing::TestPipe;

// Blocks until `pid` has exited, leaving it a zombie (not reaped).
bool WaitUntilZombie(pid_t pid) {
  siginfo_t info;
  return waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == 0;
}

TEST(FutexTest, WaitReportsMismatchAndTimeout) {
  std::atomic<uint32_t> word{5};
  EXPECT_EQ(FutexWait(&word, 4, Deadline::Never()), FutexWaitResult::kMismatch);
  EXPECT_EQ(FutexWait(&word, 5, Deadline::After(absl::ZeroDuration())), FutexWaitResult::kTimedOut);
  EXPECT_EQ(FutexWait(&word, 5, Deadline::After(absl::Milliseconds(1))),
            FutexWaitResult::kTimedOut);
  EXPECT_EQ(FutexWake(&word, 1), 0);
}

TEST(FutexTest, WakeReleasesAWaitingThread) {
  std::atomic<uint32_t> word{0};
  std::thread waiter([&] {
    while (word.load() == 0) FutexWait(&word, 0, Deadline::Never());
  });
  word.store(1);
  FutexWake(&word, kFutexWakeAll);
  waiter.join();
  EXPECT_EQ(word.load(), 1u);
}

TEST(ThreadIdTest, MatchesGettidPerThreadAndAfterFork) {
  EXPECT_EQ(CurrentThreadId(), static_cast<pid_t>(syscall(SYS_gettid)));
  EXPECT_EQ(CurrentThreadId(), CurrentThreadId());
  pid_t other = 0;
  std::thread t([&] { other = CurrentThreadId(); });
  t.join();
  EXPECT_NE(other, CurrentThreadId());
  EXPECT_GT(other, 0);
  const pid_t parent_tid = CurrentThreadId();
  TestChild child([parent_tid] {
    const pid_t tid = CurrentThreadId();
    return tid == getpid() && tid != parent_tid ? 0 : 1;
  });
  EXPECT_EQ(child.Wait(), 0);
}

TEST(IsThreadAliveTest, LiveDeadZombieAndExitedThread) {
  EXPECT_TRUE(IsThreadAlive(CurrentThreadId()));
  EXPECT_TRUE(IsThreadAlive(getpid()));
  EXPECT_FALSE(IsThreadAlive(0));
  EXPECT_FALSE(IsThreadAlive(-3));

  TestPipe never;
  ASSERT_TRUE(never.ok());
  TestChild child([&] {
    never.Receive();
    return 0;
  });
  ASSERT_GT(child.pid(), 0);
  EXPECT_TRUE(IsThreadAlive(child.pid()));
  child.Kill();
  ASSERT_TRUE(WaitUntilZombie(child.pid()));
  EXPECT_FALSE(IsThreadAlive(child.pid())) << "a zombie is dead";
  const pid_t pid = child.pid();
  EXPECT_EQ(child.Wait(), 128 + SIGKILL);
  EXPECT_FALSE(IsThreadAlive(pid));

  pid_t tid = 0;
  std::thread t([&] { tid = CurrentThreadId(); });
  t.join();
  EXPECT_FALSE(IsThreadAlive(tid));
}

TEST(CheckArgsTest, AcquireArgs) {
  EXPECT_TRUE(CheckAcquireArgs(true, absl::InfiniteDuration(), "X").ok());
  EXPECT_TRUE(CheckAcquireArgs(true, absl::ZeroDuration(), "X").ok());
  EXPECT_TRUE(CheckAcquireArgs(false, absl::InfiniteDuration(), "X").ok());
  absl::Status both = CheckAcquireArgs(false, absl::Seconds(1), "X");
  EXPECT_EQ(both.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(both.message().find("non-blocking"), std::string::npos) << both;
  absl::Status negative = CheckAcquireArgs(true, absl::Seconds(-2), "X");
  EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(negative.message().find("-2s"), std::string::npos) << negative;
}

TEST(OwnerWordTest, LockUnlockAndTimeout) {
  std::atomic<uint32_t> word{0};
  const pid_t me = CurrentThreadId();
  EXPECT_TRUE(OwnerTryLock(word, me));
  EXPECT_EQ(OwnerOf(word.load()), me);
  EXPECT_FALSE(OwnerTryLock(word, me));
  EXPECT_EQ(OwnerLock(word, me, false, Deadline::Never()).result, OwnerLockResult::kTimedOut);
  EXPECT_EQ(OwnerLock(word, me, true, Deadline::After(absl::Milliseconds(3))).result,
            OwnerLockResult::kTimedOut);
  EXPECT_EQ(OwnerOf(OwnerUnlock(word)), me);
  EXPECT_EQ(OwnerUnlock(word), 0u);
  EXPECT_EQ(OwnerLock(word, me, true, Deadline::Never()).result, OwnerLockResult::kAcquired);
}

TEST(OwnerWordTest, TakesOverFromADeadThread) {
  std::atomic<uint32_t> word{0};
  pid_t dead = 0;
  std::thread t([&] {
    dead = CurrentThreadId();
    ASSERT_TRUE(OwnerTryLock(word, dead));
  });
  t.join();
  const OwnerLockOutcome outcome = OwnerLock(word, CurrentThreadId(), true, Deadline::Never());
  EXPECT_EQ(outcome.result, OwnerLockResult::kRecovered);
  EXPECT_EQ(outcome.dead_owner, dead);
  EXPECT_EQ(OwnerOf(word.load()), CurrentThreadId());
}

TEST(OwnerWordTest, OwnerDiedStatus) {
  absl::Status died = OwnerDiedError("Lock::Acquire", 1234);
  EXPECT_EQ(died.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(IsOwnerDied(died));
  EXPECT_NE(died.message().find("1234"), std::string::npos) << died;
  EXPECT_FALSE(IsOwnerDied(absl::AbortedError("broken barrier")));
  EXPECT_FALSE(IsOwnerDied(absl::OkStatus()));
}

}  // namespace
}  // namespace mp
