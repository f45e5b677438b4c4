// Copyright 2026 The mp Authors.

#include "sync/barrier.h"

#include <unistd.h>

#include <algorithm>
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

// Spins (yielding, no sleeping) until `n` threads wait at the barrier.
bool AwaitWaiters(const Barrier& barrier, int n) {
  for (int64_t i = 0; i < 50'000'000; ++i) {
    if (barrier.NWaiting() == n) return true;
    std::this_thread::yield();
  }
  return false;
}

// Three threads pass a 3-party barrier once: each gets a distinct arrival index.
void ExpectOneFullGeneration(Barrier& barrier) {
  std::vector<std::thread> threads;
  std::vector<int> results(3, -1);
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] { results[i] = barrier.Wait(absl::Seconds(60)).value_or(-1); });
  }
  for (auto& t : threads) t.join();
  std::sort(results.begin(), results.end());
  EXPECT_EQ(results, (std::vector<int>{0, 1, 2}));
}

TEST(BarrierTest, BadArguments) {
  EXPECT_EQ(Barrier::Create(ShmDomain::kFork, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status negative_parties = Barrier::Create(ShmDomain::kFork, -3).status();
  EXPECT_NE(negative_parties.message().find("-3"), std::string::npos) << negative_parties;
  EXPECT_EQ(Barrier::Create(ShmDomain::kFork, 2, nullptr, absl::Seconds(-1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 2);
  ASSERT_TRUE(barrier.ok());
  EXPECT_EQ(barrier->Wait(absl::Seconds(-1)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(barrier->Broken());
}

TEST(BarrierTest, SinglePartyPassesAndRunsTheAction) {
  int runs = 0;
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kTransferable, 1, [&] {
    ++runs;
    return absl::OkStatus();
  });
  ASSERT_TRUE(barrier.ok()) << barrier.status();
  EXPECT_EQ(barrier->Parties(), 1);
  EXPECT_EQ(barrier->domain(), ShmDomain::kTransferable);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(barrier->Wait().value(), 0);
  EXPECT_EQ(runs, 3);
}

// 4 parties (2 processes, 2 threads) x 100 generations: each generation hands out every index in
// [0, 4) once, and the action runs exactly once per generation.
TEST(BarrierTest, GenerationsAcrossProcessesAndThreads) {
  constexpr int kParties = 4;
  constexpr int kGenerations = 100;
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 8192);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<uint64_t> off = seg->Allocate(sizeof(int) * (kGenerations * kParties + 1));
  ASSERT_TRUE(off.ok());
  auto* actions = static_cast<std::atomic<int>*>(seg->At(*off));
  auto* indexes = actions + 1;  // [generation][party]
  absl::StatusOr<Barrier> barrier = Barrier::Create(*seg, kParties, [actions] {
    actions->fetch_add(1);
    return absl::OkStatus();
  });
  ASSERT_TRUE(barrier.ok());
  auto party = [&](int p) {
    for (int g = 0; g < kGenerations; ++g) {
      absl::StatusOr<int> index = barrier->Wait(absl::Seconds(60));
      if (!index.ok()) return 1;
      indexes[g * kParties + p].store(*index);
      // Everybody of generation g passed, so the action of g ran exactly once.
      if (actions->load() < g + 1) return 2;
    }
    return 0;
  };
  std::vector<TestChild> children;
  for (int p = 0; p < 2; ++p) children.emplace_back([&, p] { return party(p); });
  int results[2] = {-1, -1};
  std::thread t2([&] { results[0] = party(2); });
  std::thread t3([&] { results[1] = party(3); });
  t2.join();
  t3.join();
  EXPECT_EQ(results[0], 0);
  EXPECT_EQ(results[1], 0);
  for (auto& child : children) EXPECT_EQ(child.Wait(), 0);
  EXPECT_EQ(actions->load(), kGenerations);
  for (int g = 0; g < kGenerations; ++g) {
    std::vector<int> row;
    for (int p = 0; p < kParties; ++p) row.push_back(indexes[g * kParties + p].load());
    std::sort(row.begin(), row.end());
    EXPECT_EQ(row, (std::vector<int>{0, 1, 2, 3})) << "generation " << g;
  }
  EXPECT_FALSE(barrier->Broken());
  EXPECT_EQ(barrier->NWaiting(), 0);
}

TEST(BarrierTest, TimeoutBreaksItForEveryone) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  absl::StatusOr<int> other = 0;
  std::thread waiter([&] { other = barrier->Wait(); });  // no timeout of its own
  ASSERT_TRUE(AwaitWaiters(*barrier, 1));
  absl::StatusOr<int> mine = barrier->Wait(absl::Milliseconds(5));
  waiter.join();
  ASSERT_FALSE(mine.ok());
  EXPECT_EQ(mine.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(mine.status().message().find("timed out"), std::string::npos) << mine.status();
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(other.status().message().find("a waiter timed out"), std::string::npos)
      << other.status();
  EXPECT_TRUE(barrier->Broken());
  EXPECT_EQ(barrier->Wait().status().code(), absl::StatusCode::kAborted);
  barrier->Reset();
  EXPECT_FALSE(barrier->Broken());
}

TEST(BarrierTest, DefaultTimeoutFromCreate) {
  absl::StatusOr<Barrier> barrier =
      Barrier::Create(ShmDomain::kFork, 2, nullptr, absl::Milliseconds(3));
  ASSERT_TRUE(barrier.ok());
  absl::Status status = barrier->Wait().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_NE(status.message().find("3ms"), std::string::npos) << status;
}

TEST(BarrierTest, AbortWakesWaitersAndResetRestores) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  absl::StatusOr<int> a = 0;
  absl::StatusOr<int> b = 0;
  std::thread ta([&] { a = barrier->Wait(); });
  std::thread tb([&] { b = barrier->Wait(); });
  ASSERT_TRUE(AwaitWaiters(*barrier, 2));
  barrier->Abort();
  ta.join();
  tb.join();
  for (const auto* r : {&a, &b}) {
    ASSERT_FALSE(r->ok());
    EXPECT_NE(r->status().message().find("Abort() was called"), std::string::npos) << r->status();
  }
  EXPECT_TRUE(barrier->Broken());
  EXPECT_EQ(barrier->NWaiting(), 0);
  barrier->Reset();
  EXPECT_FALSE(barrier->Broken());
  ExpectOneFullGeneration(*barrier);
}

TEST(BarrierTest, ResetWhileWaitingBreaksCurrentWaiters) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 2);
  ASSERT_TRUE(barrier.ok());
  absl::StatusOr<int> waiting = 0;
  std::thread t([&] { waiting = barrier->Wait(); });
  ASSERT_TRUE(AwaitWaiters(*barrier, 1));
  barrier->Reset();
  t.join();
  ASSERT_FALSE(waiting.ok());
  EXPECT_EQ(waiting.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(waiting.status().message().find("Reset()"), std::string::npos) << waiting.status();
  EXPECT_FALSE(barrier->Broken());
  int other = -1;
  std::thread t2([&] { other = barrier->Wait(absl::Seconds(60)).value_or(-1); });
  const int mine = barrier->Wait(absl::Seconds(60)).value_or(-1);
  t2.join();
  EXPECT_EQ(mine + other, 1);  // indexes 0 and 1
}

TEST(BarrierTest, FailingActionBreaksTheBarrier) {
  absl::StatusOr<Barrier> barrier =
      Barrier::Create(ShmDomain::kFork, 2, [] { return absl::InternalError("action exploded"); });
  ASSERT_TRUE(barrier.ok());
  absl::StatusOr<int> first = 0;
  std::thread t([&] { first = barrier->Wait(); });
  ASSERT_TRUE(AwaitWaiters(*barrier, 1));
  absl::StatusOr<int> last = barrier->Wait();
  t.join();
  EXPECT_EQ(last.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(last.status().message(), "action exploded");
  EXPECT_EQ(first.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(first.status().message().find("action failed"), std::string::npos) << first.status();
  EXPECT_TRUE(barrier->Broken());
}

// A party that dies while waiting breaks the barrier for the others long before their timeout.
TEST(BarrierDeathTest, DeadWaiterBreaksTheBarrier) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  TestChild doomed([&] {
    barrier->Wait().IgnoreError();
    return 1;
  });
  ASSERT_TRUE(AwaitWaiters(*barrier, 1));
  const pid_t pid = doomed.pid();
  doomed.Kill();
  EXPECT_EQ(doomed.Wait(), 128 + SIGKILL);
  // Noticed as a death (the message says so), not as a timeout.
  absl::StatusOr<int> result = barrier->Wait(absl::Seconds(600));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAborted);
  // "waiting thread N died", or "thread N died while updating the barrier" if the kill landed while
  // the child held the barrier's internal mutex between sleeps.
  EXPECT_NE(result.status().message().find(absl::StrCat("thread ", pid, " died")),
            std::string::npos)
      << result.status();
  // The dead party was removed, so Reset gives a fully working barrier.
  EXPECT_EQ(barrier->NWaiting(), 0);
  barrier->Reset();
  ExpectOneFullGeneration(*barrier);
}

TEST(BarrierHandleTest, FromHandleInAnotherProcess) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kTransferable, 2);
  ASSERT_TRUE(barrier.ok());
  const int fd = barrier->handle().segment.fd();
  const uint64_t offset = barrier->handle().offset;
  TestChild child([fd, offset] {
    absl::StatusOr<ShmSegment> seg = ShmSegment::Attach(fd);
    if (!seg.ok()) return 1;
    absl::StatusOr<Barrier> mine = Barrier::FromHandle({*seg, offset});
    if (!mine.ok() || mine->Parties() != 2) return 2;
    return mine->Wait(absl::Seconds(60)).ok() ? 0 : 3;
  });
  EXPECT_TRUE(barrier->Wait(absl::Seconds(60)).ok());
  EXPECT_EQ(child.Wait(), 0);
  absl::StatusOr<ShmSegment> seg = ShmSegment::Attach(fd);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<uint64_t> raw = seg->Allocate(512);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(Barrier::FromHandle({*seg, *raw}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mp
