// Copyright 2026 The mp Authors.

#include "sync/barrier.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "start_methods/process.h"
#include "start_methods/test_methods.h"
#include "start_methods/test_util.h"
#include "sync/futex.h"
#include "sync/shm.h"
#include "sync/test_child.h"
#include "testing/proc_state.h"

namespace mp_test {

// A party in a child process started by any start method: 0 if it passed the barrier.
int PassBarrier(mp::Barrier barrier) { return barrier.Wait(absl::Seconds(60)).ok() ? 0 : 1; }

}  // namespace mp_test

namespace mp {
namespace {

using ::mp::testing::TestChild;
using ::mp::testing::TestPipe;

// Generous: a barrier that never sees its parties fails the test instead of hanging it.
constexpr absl::Duration kArrivalTimeout = absl::Seconds(60);

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
  ASSERT_TRUE(barrier->WaitForWaiting(1, kArrivalTimeout).ok());
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
  ASSERT_TRUE(barrier->WaitForWaiting(2, kArrivalTimeout).ok());
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
  ASSERT_TRUE(barrier->WaitForWaiting(1, kArrivalTimeout).ok());
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
  ASSERT_TRUE(barrier->WaitForWaiting(1, kArrivalTimeout).ok());
  absl::StatusOr<int> last = barrier->Wait();
  t.join();
  EXPECT_EQ(last.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(last.status().message(), "action exploded");
  EXPECT_EQ(first.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(first.status().message().find("action failed"), std::string::npos) << first.status();
  EXPECT_TRUE(barrier->Broken());
}

// Forks a party that waits on `barrier` and kills it (SIGKILL) once it waits: returns its pid, or
// -1 with the test failed when it never came to wait.
pid_t KillAWaitingParty(Barrier& barrier) {
  TestChild doomed([&] {
    barrier.Wait().IgnoreError();
    return 1;
  });
  if (absl::Status s = barrier.WaitForWaiting(1, kArrivalTimeout); !s.ok()) {
    ADD_FAILURE() << "the party never waited: " << s;
    return -1;
  }
  const pid_t pid = doomed.pid();
  doomed.Kill();
  EXPECT_EQ(doomed.Wait(), 128 + SIGKILL);
  return pid;
}

// A party that dies while waiting breaks the barrier for the others long before their timeout.
TEST(BarrierDeathTest, DeadWaiterBreaksTheBarrier) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  const pid_t pid = KillAWaitingParty(*barrier);
  ASSERT_GT(pid, 0);
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

// ---- WaitForWaiting ------------------------------------------------------------------------

// Runs WaitForWaiting(n, timeout) on a thread of its own, so the test can check that it is asleep
// (it blocks) before it lets the parties arrive.
class Observer {
 public:
  Observer(const Barrier& barrier, int n, absl::Duration timeout = kArrivalTimeout)
      : thread_([this, barrier, n, timeout] {
          tid_.store(CurrentThreadId());
          status_ = barrier.WaitForWaiting(n, timeout);
          done_.store(true);
        }) {}
  ~Observer() {
    if (thread_.joinable()) thread_.join();
  }

  // Yields until the observer sleeps in the kernel (in WaitForWaiting); false if it returned.
  bool AwaitAsleep() const {
    while (!done_.load()) {
      const pid_t tid = tid_.load();
      if (tid != 0 && mp::testing::IsSleeping(tid)) return !done_.load();
      std::this_thread::yield();
    }
    return false;
  }
  bool done() const { return done_.load(); }
  absl::Status Join() {
    thread_.join();
    return status_;
  }

 private:
  std::atomic<pid_t> tid_{0};
  std::atomic<bool> done_{false};
  absl::Status status_;
  std::thread thread_;
};

TEST(BarrierWaitForWaitingTest, BadArguments) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  for (int n : {-1, 4, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()}) {
    absl::Status status = barrier->WaitForWaiting(n, absl::Seconds(1));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find(absl::StrCat("got ", n)), std::string::npos) << status;
    EXPECT_NE(status.message().find("[0, 3]"), std::string::npos) << status;
  }
  EXPECT_EQ(barrier->WaitForWaiting(1, absl::Seconds(-1)).code(),
            absl::StatusCode::kInvalidArgument);
  // Nobody waits: zero parties are there at once, one never comes.
  EXPECT_TRUE(barrier->WaitForWaiting(0, absl::ZeroDuration()).ok());
  EXPECT_EQ(barrier->WaitForWaiting(1, absl::ZeroDuration()).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(barrier->Broken());
}

// It sleeps until the n-th party arrives, and returns while they still wait.
TEST(BarrierWaitForWaitingTest, BlocksUntilTheNthArrival) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  Observer observer(*barrier, 2);
  std::vector<std::thread> parties;
  absl::StatusOr<int> results[3] = {0, 0, 0};
  parties.emplace_back([&] { results[0] = barrier->Wait(kArrivalTimeout); });
  ASSERT_TRUE(barrier->WaitForWaiting(1, kArrivalTimeout).ok());
  ASSERT_TRUE(observer.AwaitAsleep()) << observer.Join();  // one party is not enough
  parties.emplace_back([&] { results[1] = barrier->Wait(kArrivalTimeout); });
  EXPECT_TRUE(observer.Join().ok());
  EXPECT_EQ(barrier->NWaiting(), 2);  // nobody can leave before the third arrives
  results[2] = barrier->Wait(kArrivalTimeout);
  for (auto& t : parties) t.join();
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.status();
}

// n == Parties(): the generation is released as soon as it fills, and that still counts.
TEST(BarrierWaitForWaitingTest, AFilledGenerationCountsAfterItLeft) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  Observer observer(*barrier, 3);
  ASSERT_TRUE(observer.AwaitAsleep()) << observer.Join();
  ExpectOneFullGeneration(*barrier);
  EXPECT_TRUE(observer.Join().ok());
  EXPECT_EQ(barrier->NWaiting(), 0);
}

// Running out of time names n and the count, and does not break the barrier (unlike Wait).
TEST(BarrierWaitForWaitingTest, TimeoutNamesTheCountAndLeavesTheBarrierWhole) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  absl::StatusOr<int> first = 0;
  std::thread party([&] { first = barrier->Wait(kArrivalTimeout); });
  ASSERT_TRUE(barrier->WaitForWaiting(1, kArrivalTimeout).ok());
  absl::Status status = barrier->WaitForWaiting(2, absl::Milliseconds(20));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_NE(status.message().find("waiting for 2 of 3 parties; 1 waiting"), std::string::npos)
      << status;
  EXPECT_NE(status.message().find("20ms"), std::string::npos) << status;
  EXPECT_FALSE(barrier->Broken());
  EXPECT_EQ(barrier->NWaiting(), 1);
  absl::StatusOr<int> second = 0;
  std::thread party2([&] { second = barrier->Wait(kArrivalTimeout); });
  const absl::StatusOr<int> last = barrier->Wait(kArrivalTimeout);
  party.join();
  party2.join();
  EXPECT_TRUE(first.ok() && second.ok() && last.ok()) << first.status() << second.status();
}

// A broken barrier gives Wait's status for the same reason, whether it broke before or during.
TEST(BarrierWaitForWaitingTest, BrokenBarrier) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  Observer during(*barrier, 3);
  ASSERT_TRUE(during.AwaitAsleep()) << during.Join();
  barrier->Abort();
  absl::Status status = during.Join();
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_EQ(status.message(), "Barrier::WaitForWaiting: the barrier is broken: Abort() was called");
  // Already broken: at once, even for n == 0.
  for (int n : {0, 2}) {
    status = barrier->WaitForWaiting(n, kArrivalTimeout);
    EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
    EXPECT_NE(status.message().find("Abort() was called"), std::string::npos) << status;
  }
  barrier->Reset();
  EXPECT_TRUE(barrier->WaitForWaiting(0, absl::ZeroDuration()).ok());
}

// A party's Wait timing out breaks the barrier; the observer hears the same reason.
TEST(BarrierWaitForWaitingTest, APartysTimeoutBreaksIt) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  Observer observer(*barrier, 2);
  ASSERT_TRUE(observer.AwaitAsleep()) << observer.Join();
  EXPECT_EQ(barrier->Wait(absl::Milliseconds(5)).status().code(), absl::StatusCode::kAborted);
  absl::Status status = observer.Join();
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_NE(status.message().find("a waiter timed out"), std::string::npos) << status;
}

// A Reset that sends the counted parties away ends the wait; one of an idle barrier does not.
TEST(BarrierWaitForWaitingTest, Reset) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  Observer idle(*barrier, 1);
  ASSERT_TRUE(idle.AwaitAsleep()) << idle.Join();
  barrier->Reset();  // nobody waits: nothing the observer counts changed
  ASSERT_TRUE(idle.AwaitAsleep()) << idle.Join();
  absl::StatusOr<int> sent_away = 0;
  std::thread party([&] { sent_away = barrier->Wait(kArrivalTimeout); });
  EXPECT_TRUE(idle.Join().ok());

  Observer counting(*barrier, 2);
  ASSERT_TRUE(counting.AwaitAsleep()) << counting.Join();
  barrier->Reset();
  absl::Status status = counting.Join();
  party.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_NE(status.message().find("Reset() was called"), std::string::npos) << status;
  EXPECT_EQ(sent_away.status().code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(barrier->Broken());
}

// The only party dies while waiting: the observer itself notices (nobody else would), long before
// its timeout, and the barrier is broken naming the dead thread.
TEST(BarrierWaitForWaitingDeathTest, NoticesADeadWaiter) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  const pid_t pid = KillAWaitingParty(*barrier);
  ASSERT_GT(pid, 0);
  absl::Status status = barrier->WaitForWaiting(2, absl::Seconds(600));
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_NE(status.message().find(absl::StrCat("thread ", pid, " died")), std::string::npos)
      << status;
  EXPECT_TRUE(barrier->Broken());
  EXPECT_EQ(barrier->NWaiting(), 0);
}

// Forked children waiting at the barrier wake an observer in their parent.
TEST(BarrierWaitForWaitingTest, ForkedChildren) {
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 3);
  ASSERT_TRUE(barrier.ok());
  std::vector<TestChild> children;
  for (int i = 0; i < 2; ++i) {
    children.emplace_back([&] { return barrier->Wait(kArrivalTimeout).ok() ? 0 : 1; });
  }
  ASSERT_TRUE(barrier->WaitForWaiting(2, kArrivalTimeout).ok());
  EXPECT_EQ(barrier->NWaiting(), 2);
  EXPECT_TRUE(barrier->Wait(kArrivalTimeout).ok());
  for (auto& child : children) EXPECT_EQ(child.Wait(), 0);
}

// The same with children of every start method, which re-open the barrier from its descriptor.
template <typename M>
class BarrierStartMethodTest : public ::testing::Test {};

TYPED_TEST_SUITE(BarrierStartMethodTest, mp::testing::AllStartMethods,
                 mp::testing::StartMethodNames);

TYPED_TEST(BarrierStartMethodTest, WaitForWaitingSeesChildren) {
  mp::testing::ChildGuard guard;
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kTransferable, 3);
  ASSERT_TRUE(barrier.ok());
  std::vector<Process> children;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Process> p =
        Process::Create(TypeParam::Get(), Call<&mp_test::PassBarrier>(*barrier));
    ASSERT_TRUE(p.ok()) << p.status();
    children.push_back(guard.Add(*std::move(p)));
    ASSERT_TRUE(children.back().Start().ok());
  }
  absl::Status waiting = barrier->WaitForWaiting(2, kArrivalTimeout);
  ASSERT_TRUE(waiting.ok()) << waiting;
  EXPECT_EQ(barrier->NWaiting(), 2);
  EXPECT_TRUE(barrier->Wait(kArrivalTimeout).ok());
  for (auto& child : children) {
    ASSERT_TRUE(child.Join().ok());
    EXPECT_EQ(child.ExitCode(), 0);
  }
}

}  // namespace
}  // namespace mp
