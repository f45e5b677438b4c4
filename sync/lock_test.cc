// Copyright 2026 The mp Authors.

#include "sync/lock.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "sync/shm.h"
#include "sync/test_child.h"

namespace mp {
namespace {

using ::mp::testing::TestChild;
using ::mp::testing::TestPipe;

bool WaitUntilZombie(pid_t pid) {
  siginfo_t info;
  return waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == 0;
}

class LockDomainTest : public ::testing::TestWithParam<ShmDomain> {};

TEST_P(LockDomainTest, AcquireReleaseLocked) {
  absl::StatusOr<Lock> lock = Lock::Create(GetParam());
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(lock->domain(), GetParam());
  EXPECT_FALSE(lock->Locked());
  EXPECT_EQ(lock->Owner(), 0);
  absl::StatusOr<bool> got = lock->Acquire();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got);
  EXPECT_TRUE(lock->Locked());
  EXPECT_EQ(lock->Owner(), getpid());  // a Lock records its holder's process
  // Not recursive: a second acquire does not succeed (CPython would block forever without timeout).
  EXPECT_EQ(lock->Acquire(false).value(), false);
  EXPECT_EQ(lock->Acquire(true, absl::ZeroDuration()).value(), false);
  EXPECT_EQ(lock->Acquire(true, absl::Milliseconds(5)).value(), false);
  EXPECT_TRUE(lock->Release().ok());
  EXPECT_FALSE(lock->Locked());
  absl::Status again = lock->Release();
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.message().find("release unlocked lock"), std::string::npos) << again;
  EXPECT_EQ(lock->Acquire(false).value(), true);
  EXPECT_TRUE(lock->Release().ok());
}

TEST_P(LockDomainTest, RejectsBadArguments) {
  absl::StatusOr<Lock> lock = Lock::Create(GetParam());
  ASSERT_TRUE(lock.ok());
  EXPECT_EQ(lock->Acquire(false, absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status negative = lock->Acquire(true, absl::Milliseconds(-1)).status();
  EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(negative.message().find("-1ms"), std::string::npos) << negative;
  EXPECT_FALSE(lock->Locked()) << "a rejected call must not acquire";
}

INSTANTIATE_TEST_SUITE_P(Domains, LockDomainTest,
                         ::testing::Values(ShmDomain::kFork, ShmDomain::kTransferable),
                         [](const auto& info) { return std::string(ShmDomainName(info.param)); });

TEST(LockHandleTest, FromHandleSharesAndValidates) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kTransferable, 4096);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<Lock> a = Lock::Create(*seg);
  absl::StatusOr<Lock> b = Lock::Create(*seg);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->handle().offset, b->handle().offset);
  EXPECT_TRUE(a->handle().segment.SameMapping(*seg));

  absl::StatusOr<ShmSegment> attached = ShmSegment::Attach(seg->fd());
  ASSERT_TRUE(attached.ok()) << attached.status();
  absl::StatusOr<Lock> a2 = Lock::FromHandle({*attached, a->handle().offset});
  ASSERT_TRUE(a2.ok()) << a2.status();
  ASSERT_TRUE(a->Acquire().value());
  EXPECT_TRUE(a2->Locked());
  EXPECT_FALSE(b->Locked());
  EXPECT_TRUE(a2->Release().ok());  // a Lock has no owner: anybody may release it
  EXPECT_FALSE(a->Locked());

  absl::StatusOr<uint64_t> raw = seg->Allocate(64);
  ASSERT_TRUE(raw.ok());
  absl::Status not_lock = Lock::FromHandle({*seg, *raw}).status();
  EXPECT_EQ(not_lock.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(not_lock.message().find("does not hold a Lock"), std::string::npos) << not_lock;
  EXPECT_EQ(Lock::FromHandle({*seg, 12345}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Lock::FromHandle({*seg, 1 << 20}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LockTest, SegmentFullIsResourceExhausted) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 1);
  ASSERT_TRUE(seg.ok());
  absl::Status status;
  int made = 0;
  while (status.ok()) {
    absl::StatusOr<Lock> lock = Lock::Create(*seg);
    status = lock.status();
    if (lock.ok()) ++made;
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(made, static_cast<int>((seg->size() - kShmHeaderSize) / 64));
}

TEST(LockTest, ThreadsExcludeEachOther) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok());
  int64_t counter = 0;  // protected by *lock; TSan checks it
  constexpr int kThreads = 4;
  constexpr int kIters = 20000;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIters; ++i) {
        absl::StatusOr<bool> got = lock->Acquire();
        if (!got.ok() || !*got) {
          ++errors;
          continue;
        }
        ++counter;
        if (!lock->Release().ok()) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(counter, int64_t{kThreads} * kIters);
}

TEST(LockTest, ProcessesExcludeEachOther) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 4096);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<Lock> lock = Lock::Create(*seg);
  ASSERT_TRUE(lock.ok());
  absl::StatusOr<uint64_t> off = seg->Allocate(sizeof(int64_t) * 2);
  ASSERT_TRUE(off.ok());
  auto* counter = static_cast<volatile int64_t*>(seg->At(*off));
  auto* inside = counter + 1;
  constexpr int kChildren = 4;
  constexpr int kIters = 20000;
  std::vector<TestChild> children;
  for (int c = 0; c < kChildren; ++c) {
    children.emplace_back([&] {
      for (int i = 0; i < kIters; ++i) {
        absl::StatusOr<bool> got = lock->Acquire();
        if (!got.ok() || !*got) return 1;
        if (*inside != 0) return 2;
        *inside = 1;
        *counter = *counter + 1;
        *inside = 0;
        if (!lock->Release().ok()) return 3;
      }
      return 0;
    });
  }
  for (auto& child : children) EXPECT_EQ(child.Wait(), 0);
  EXPECT_EQ(*counter, int64_t{kChildren} * kIters);
}

// Python's docs: 10 processes each print "hello world <i>" while holding a shared lock.
TEST(LockTest, TenProcessesPrintHelloWorld) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok());
  TestPipe out;
  ASSERT_TRUE(out.ok());
  std::vector<TestChild> children;
  for (int num = 0; num < 10; ++num) {
    children.emplace_back([&, num] {
      out.CloseRead();
      absl::StatusOr<bool> got = lock->Acquire();
      if (!got.ok() || !*got) return 1;
      // Written in pieces: only the lock keeps lines whole.
      const std::string line = absl::StrCat("hello world ", num, "\n");
      for (char c : line) {
        if (!out.Send(c)) return 2;
      }
      return lock->Release().ok() ? 0 : 3;
    });
  }
  out.CloseWrite();
  std::string text;
  for (int c = out.Receive(); c >= 0; c = out.Receive()) text.push_back(static_cast<char>(c));
  for (auto& child : children) EXPECT_EQ(child.Wait(), 0);
  std::set<int> seen;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ASSERT_TRUE(absl::ConsumePrefix(&line, "hello world ")) << text;
    int num = -1;
    ASSERT_TRUE(absl::SimpleAtoi(line, &num)) << text;
    EXPECT_TRUE(seen.insert(num).second) << text;
  }
  EXPECT_EQ(seen.size(), 10u) << text;
  EXPECT_FALSE(lock->Locked());
}

void ExpectRecovered(Lock& lock, const absl::StatusOr<bool>& got, pid_t dead) {
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(IsOwnerDied(got.status())) << got.status();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(got.status().message().find(absl::StrCat("process ", dead)), std::string::npos)
      << got.status();
  EXPECT_EQ(lock.Owner(), getpid());
  // We hold it; it works normally afterwards.
  EXPECT_TRUE(lock.Release().ok());
  EXPECT_EQ(lock.Acquire(true, absl::Seconds(10)).value(), true);
  EXPECT_TRUE(lock.Release().ok());
  EXPECT_FALSE(lock.Locked());
}

// >= 200 rounds of "a child takes the lock and is SIGKILLed; the parent acquires", in three
// variants: the child reaped first, the child a zombie, and the parent already waiting when the
// child is killed.
TEST(LockDeathTest, HolderKilledTwoHundredTimes) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok());
  constexpr int kRounds = 210;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    TestPipe held;
    TestPipe never;
    ASSERT_TRUE(held.ok() && never.ok());
    TestChild child([&] {
      absl::StatusOr<bool> got = lock->Acquire();
      if (!got.ok() || !*got) return 1;
      held.Send();
      never.Receive();  // blocks until killed
      return 0;
    });
    ASSERT_GT(child.pid(), 0);
    ASSERT_EQ(held.Receive(), 'x');
    ASSERT_EQ(lock->Owner(), child.pid());
    const pid_t pid = child.pid();
    switch (round % 3) {
      case 0: {  // dead and reaped
        child.Kill();
        EXPECT_EQ(child.Wait(), 128 + SIGKILL);
        ExpectRecovered(*lock, lock->Acquire(), pid);
        break;
      }
      case 1: {  // dead, still a zombie; a non-blocking acquire takes it over at once
        child.Kill();
        ASSERT_TRUE(WaitUntilZombie(pid));
        ExpectRecovered(*lock, lock->Acquire(false), pid);
        break;
      }
      case 2: {  // killed while we are blocked in Acquire
        std::thread killer([&] { child.Kill(); });
        absl::StatusOr<bool> got = lock->Acquire(true, absl::Seconds(30));
        killer.join();
        ExpectRecovered(*lock, got, pid);
        break;
      }
    }
  }
}

TEST(LockDeathTest, TransferableLockAttachedByFdRecovers) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kTransferable);
  ASSERT_TRUE(lock.ok());
  const int fd = lock->handle().segment.fd();
  const uint64_t offset = lock->handle().offset;
  TestPipe held;
  TestPipe never;
  TestChild child([&] {
    absl::StatusOr<ShmSegment> seg = ShmSegment::Attach(fd);
    if (!seg.ok()) return 1;
    absl::StatusOr<Lock> mine = Lock::FromHandle({*seg, offset});
    if (!mine.ok() || !mine->Acquire().value_or(false)) return 2;
    held.Send();
    never.Receive();
    return 0;
  });
  ASSERT_EQ(held.Receive(), 'x');
  const pid_t pid = child.pid();
  child.Kill();
  EXPECT_EQ(child.Wait(), 128 + SIGKILL);
  ExpectRecovered(*lock, lock->Acquire(true, absl::Milliseconds(1)), pid);
}

// A Lock belongs to its holder's process, not to a thread (CPython's Lock has no owner): a lock
// whose acquiring thread exited while its process lives on is still held -- another thread of that
// process may release it later -- so neither another process nor another thread takes it over.
TEST(LockTest, LockOfAnExitedThreadIsNotTakenOverWhileItsProcessLives) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok());
  std::thread t1([&] { EXPECT_TRUE(lock->Acquire().value_or(false)); });
  t1.join();
  EXPECT_EQ(lock->Owner(), getpid());
  // Another thread of this process waits like any acquirer (it is not an owner death).
  absl::StatusOr<bool> same_process = lock->Acquire(true, absl::Milliseconds(20));
  ASSERT_TRUE(same_process.ok()) << same_process.status();
  EXPECT_FALSE(*same_process);
  TestPipe tried;
  TestPipe released;
  TestChild b([&] {
    // Long enough for several sleep slices, each ending in a liveness check of the holder.
    absl::StatusOr<bool> got = lock->Acquire(true, absl::Milliseconds(200));
    if (!got.ok()) return IsOwnerDied(got.status()) ? 10 : 11;
    if (*got) return 12;
    got = lock->Acquire(false);
    if (!got.ok()) return IsOwnerDied(got.status()) ? 13 : 14;
    if (*got) return 15;
    tried.Send();
    if (released.Receive() != 'x') return 16;
    got = lock->Acquire(true, absl::Seconds(60));
    if (!got.ok()) return 17;
    if (!*got) return 18;
    return lock->Release().ok() ? 0 : 19;
  });
  ASSERT_GT(b.pid(), 0);
  tried.CloseWrite();  // a child that fails exits, and Receive sees end of file
  if (tried.Receive() != 'x') FAIL() << "exit code " << b.Wait() << " (10, 13: taken over)";
  std::thread t2([&] { EXPECT_TRUE(lock->Release().ok()); });
  t2.join();
  released.Send();
  EXPECT_EQ(b.Wait(), 0);
  EXPECT_FALSE(lock->Locked());
}

// The same with the acquiring thread being the process's main thread: after it exits the process
// lives on in another thread (its main thread a zombie until then), and the lock stays held.
TEST(LockTest, LockOfAnExitedMainThreadIsNotTakenOverWhileItsProcessLives) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok());
  TestPipe held;
  TestPipe release;
  TestPipe released;
  TestChild a([&] {
    if (!lock->Acquire().value_or(false)) return 1;
    std::thread t2([&] {
      held.Send();
      if (release.Receive() != 'x') _exit(2);
      _exit(lock->Release().ok() && released.Send() ? 0 : 3);
    });
    t2.detach();
    // The main thread ends (the exit system call ends one thread; pthread_exit would unwind
    // through gtest's frames); the process lives on in t2.
    syscall(SYS_exit, 0);
    return 4;
  });
  ASSERT_GT(a.pid(), 0);
  held.CloseWrite();
  released.CloseWrite();
  ASSERT_EQ(held.Receive(), 'x');
  absl::StatusOr<bool> got = lock->Acquire(true, absl::Milliseconds(200));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(*got);
  EXPECT_EQ(lock->Owner(), a.pid());
  release.Send();
  ASSERT_EQ(released.Receive(), 'x');
  EXPECT_EQ(a.Wait(), 0);
  got = lock->Acquire(true, absl::Seconds(60));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got);
  EXPECT_TRUE(lock->Release().ok());
}

// The holder's process dies (SIGKILL) after the acquiring thread had already exited: the lock is
// then abandoned, and the next acquirer takes it over.
TEST(LockDeathTest, ProcessOfAnExitedAcquirerKilled) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok());
  TestPipe held;
  TestPipe never;
  TestChild a([&] {
    std::thread t1([&] { lock->Acquire().IgnoreError(); });
    t1.join();
    held.Send();
    never.Receive();
    return 0;
  });
  ASSERT_EQ(held.Receive(), 'x');
  EXPECT_EQ(lock->Acquire(true, absl::Milliseconds(20)).value_or(true), false);
  const pid_t pid = a.pid();
  a.Kill();
  EXPECT_EQ(a.Wait(), 128 + SIGKILL);
  ExpectRecovered(*lock, lock->Acquire(true, absl::Seconds(30)), pid);
}

TEST(LockTest, AnotherProcessMayRelease) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok());
  ASSERT_TRUE(lock->Acquire().value());
  TestChild child([&] { return lock->Release().ok() ? 0 : 1; });
  EXPECT_EQ(child.Wait(), 0);
  EXPECT_FALSE(lock->Locked());
}

TEST(LockTest, WaiterInAnotherProcessIsWoken) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok());
  ASSERT_TRUE(lock->Acquire().value());
  TestPipe started;
  TestChild child([&] {
    started.Send();
    absl::StatusOr<bool> got = lock->Acquire(true, absl::Seconds(60));
    if (!got.ok() || !*got) return 1;
    return lock->Release().ok() ? 0 : 2;
  });
  ASSERT_EQ(started.Receive(), 'x');
  EXPECT_TRUE(lock->Release().ok());
  EXPECT_EQ(child.Wait(), 0);
}

}  // namespace
}  // namespace mp
