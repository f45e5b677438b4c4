// Copyright 2026 The mp Authors.
//
// Timeouts of Connection::Poll and mp::Wait: every wait is on a monotonic mp::Deadline and goes
// through base's PollUntil, so a timeout longer than one poll(2) can express (its int milliseconds
// stop at ~24.8 days; base clamps each slice to kMaxPollMillis) waits slice after slice until the
// deadline, never overflows into "forever", and is never cut short into "now".
//
// To see the slices without waiting for them, this test binary interposes poll(2): when armed, the
// first `g_fake_timeouts` calls that would block (a timeout other than 0) record their timeout and
// return 0 at once, as poll does when its slice has elapsed; every other call goes to the real
// poll. A caller that treated the end of one slice as the end of its timeout would report a timeout
// here although its deadline is weeks away. Calls with a zero timeout never block (the
// shared-memory transport makes them to check its side socket for a hang-up) and are left to the
// real poll.
//
// Both transports. A shared-memory receiver with nothing to read spins, then sleeps on a futex for
// up to 2 ms, and only then polls its side socket, so in every test below the data is sent by
// another thread once the faked slices are used up and the receiver sleeps in the real poll; a
// message already there is found without any poll at all (no slice to fake), and a timeout
// shorter than the futex stage ends before any poll(2) that could block.

#include <dlfcn.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "channels/connection.h"
#include "channels/test_transports.h"
#include "gtest/gtest.h"
#include "testing/proc_state.h"

namespace {

std::atomic<int> g_fake_timeouts{0};
std::mutex g_mu;
std::vector<int> g_timeouts;  // guarded by g_mu

using PollFn = int (*)(struct pollfd*, nfds_t, int);

PollFn RealPoll() {
  static PollFn real = reinterpret_cast<PollFn>(dlsym(RTLD_NEXT, "poll"));
  return real;
}

}  // namespace

extern "C" int poll(struct pollfd* fds, nfds_t n, int timeout) {
  int left = timeout == 0 ? 0 : g_fake_timeouts.load();
  while (left > 0 && !g_fake_timeouts.compare_exchange_weak(left, left - 1)) {
  }
  if (left > 0) {
    std::lock_guard<std::mutex> lock(g_mu);
    g_timeouts.push_back(timeout);
    for (nfds_t i = 0; i < n; ++i) fds[i].revents = 0;
    return 0;  // the slice elapsed with nothing ready
  }
  return RealPoll()(fds, n, timeout);
}

namespace mp {
namespace {

using ::mp::testing::IsSleepingInPoll;

class ConnectionDeadlineTest : public ::testing::TestWithParam<ConnectionTransport> {
 protected:
  // Tests whose lambdas use the ends name them as references into the pair: clang before 16
  // cannot capture a structured binding.
  std::pair<Connection, Connection> MakePipe() const { return ::mp::testing::PipeOf(GetParam()); }
  bool shm() const { return GetParam() == ConnectionTransport::kSharedMemory; }
};

INSTANTIATE_TEST_SUITE_P(Transports, ConnectionDeadlineTest, ::mp::testing::AllTransports(),
                         ::mp::testing::TransportParamName());

// Arms the fake: the next `slices` blocking polls end their slice at once; returns the recorded
// timeouts.
class FakeSlices {
 public:
  explicit FakeSlices(int slices) {
    {
      std::lock_guard<std::mutex> lock(g_mu);
      g_timeouts.clear();
    }
    g_fake_timeouts = slices;
  }
  ~FakeSlices() { g_fake_timeouts = 0; }
  std::vector<int> timeouts() const {
    std::lock_guard<std::mutex> lock(g_mu);
    return g_timeouts;
  }
  int unused() const { return g_fake_timeouts.load(); }
};

// Sends "x" on `to` once the faked slices are used up and thread `waiter` sleeps in the real
// poll(2) (or once `done` is set: the waiter returned without polling, which the test reports).
class LateSender {
 public:
  LateSender(Connection& to, const FakeSlices& fake, const std::atomic<bool>& done)
      : thread_([&to, &fake, &done, waiter = static_cast<pid_t>(syscall(SYS_gettid))] {
          while (!done.load() && !(fake.unused() == 0 && IsSleepingInPoll(waiter))) {
          }
          if (!done.load()) (void)to.SendBytes("x");
        }) {}
  ~LateSender() { thread_.join(); }

 private:
  std::thread thread_;
};

constexpr absl::Duration kThirtyDays = absl::Hours(24 * 30);

TEST_P(ConnectionDeadlineTest, PollWaitsSliceAfterSliceUntilItsDeadline) {
  std::pair<Connection, Connection> ends = MakePipe();
  Connection& a = ends.first;
  Connection& b = ends.second;
  for (absl::Duration timeout : {kThirtyDays, absl::Hours(24 * 365 * 100), absl::Seconds(1e15)}) {
    SCOPED_TRACE(absl::FormatDuration(timeout));
    FakeSlices fake(3);
    std::atomic<bool> done{false};
    absl::StatusOr<bool> ready;
    {
      LateSender sender(a, fake, done);
      ready = b.Poll(timeout);
      done = true;
    }
    ASSERT_TRUE(ready.ok()) << ready.status();
    EXPECT_TRUE(*ready) << "three elapsed slices were taken for the end of the timeout";
    EXPECT_EQ(fake.unused(), 0);
    for (int ms : fake.timeouts()) {
      // A slice of at most kMaxPollMillis, or -1 (forever) past the monotonic clock's range.
      EXPECT_NE(ms, 0) << "a huge timeout became a zero wait";
      EXPECT_GE(ms, -1);
      EXPECT_LE(ms, kMaxPollMillis);
    }
    EXPECT_EQ(*b.RecvBytes(), "x");
  }
}

TEST_P(ConnectionDeadlineTest, WaitWaitsSliceAfterSliceUntilItsDeadline) {
  auto [a, b] = MakePipe();
  std::pair<Connection, Connection> other = MakePipe();
  Connection& c = other.first;
  Connection& d = other.second;
  FakeSlices fake(3);
  std::atomic<bool> done{false};
  absl::StatusOr<std::vector<size_t>> ready;
  {
    LateSender sender(c, fake, done);
    ready = Wait({b, d}, kThirtyDays);
    done = true;
  }
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(*ready, std::vector<size_t>{1});
  EXPECT_EQ(fake.unused(), 0);
  for (int ms : fake.timeouts()) {
    EXPECT_GT(ms, 0);
    EXPECT_LE(ms, kMaxPollMillis);
  }
  EXPECT_EQ(*d.RecvBytes(), "x");
}

TEST_P(ConnectionDeadlineTest, TimeoutsBecomeTheRightPollArguments) {
  std::pair<Connection, Connection> ends = MakePipe();
  Connection& a = ends.first;
  Connection& b = ends.second;
  struct Case {
    absl::Duration timeout;
    int min_ms, max_ms;
  };
  // The shared-memory receiver polls in slices of 1 ms doubling to 100 ms whatever the timeout
  // (shm_link.cc, the poll phase), after its futex stage: its first poll is of 1 ms.
  const bool slices = shm();
  for (const Case& c :
       {slices ? Case{kThirtyDays, 1, 1} : Case{kThirtyDays, kMaxPollMillis, kMaxPollMillis},
        slices ? Case{absl::InfiniteDuration(), 1, 1} : Case{absl::InfiniteDuration(), -1, -1},
        slices ? Case{absl::Seconds(2), 1, 1} : Case{absl::Seconds(2), 1990, 2000}}) {
    SCOPED_TRACE(absl::FormatDuration(c.timeout));
    // One faked slice; data arrives once the real poll after it sleeps, and that poll returns it.
    FakeSlices fake(1);
    std::atomic<bool> done{false};
    absl::StatusOr<bool> ready;
    {
      LateSender sender(a, fake, done);
      ready = b.Poll(c.timeout);
      done = true;
    }
    ASSERT_TRUE(ready.ok()) << ready.status();
    EXPECT_TRUE(*ready);
    EXPECT_EQ(*b.RecvBytes(), "x");
    const std::vector<int> timeouts = fake.timeouts();
    ASSERT_EQ(timeouts.size(), 1u);
    EXPECT_GE(timeouts[0], c.min_ms);
    EXPECT_LE(timeouts[0], c.max_ms);
  }
  {
    // A short timeout is rounded up, never a busy loop of zero waits: the socket receiver polls
    // for 1 ms; the shared-memory receiver spends it in its futex stage, and any poll that could
    // block is of 1 ms too.
    FakeSlices fake(1);
    EXPECT_FALSE(*b.Poll(absl::Microseconds(100)));
    const std::vector<int> timeouts = fake.timeouts();
    if (!shm()) {
      EXPECT_EQ(timeouts.size(), 1u);
    }
    for (int ms : timeouts) EXPECT_EQ(ms, 1);
  }
  // Zero and negative timeouts do not block: no poll that could is made.
  for (absl::Duration timeout : {absl::ZeroDuration(), absl::Seconds(-5)}) {
    SCOPED_TRACE(absl::FormatDuration(timeout));
    FakeSlices fake(1);
    EXPECT_FALSE(*b.Poll(timeout));
    EXPECT_EQ(fake.unused(), 1);
    EXPECT_TRUE(fake.timeouts().empty());
  }
}

// The real poll, no fakes: a thirty-day Poll returns the data another thread sends once the
// poller sleeps (for shared memory: once in its futex stage, likely, and once in poll(2)), and a
// thirty-day Poll with data already there returns at once.
TEST_P(ConnectionDeadlineTest, HugeTimeoutReturnsDataSentLaterAndReadyDataAtOnce) {
  std::pair<Connection, Connection> ends = MakePipe();
  Connection& a = ends.first;
  Connection& b = ends.second;
  const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  for (bool in_poll : {false, true}) {
    SCOPED_TRACE(in_poll ? "sent once the poller is in poll(2)" : "sent once the poller sleeps");
    std::thread sender([&] {
      while (!(in_poll ? IsSleepingInPoll(self) : ::mp::testing::IsSleeping(self))) {
      }
      (void)a.SendBytes("later");
    });
    absl::StatusOr<bool> ready = b.Poll(kThirtyDays);
    sender.join();
    ASSERT_TRUE(ready.ok()) << ready.status();
    EXPECT_TRUE(*ready);
    const Deadline soon = Deadline::After(absl::Seconds(30));
    ready = b.Poll(kThirtyDays);  // the message is still there: Poll never consumes
    EXPECT_TRUE(*ready);
    absl::StatusOr<std::vector<size_t>> waited = Wait({b}, kThirtyDays);
    ASSERT_TRUE(waited.ok());
    EXPECT_EQ(*waited, std::vector<size_t>{0});
    EXPECT_FALSE(soon.Expired());
    EXPECT_EQ(*b.RecvBytes(), "later");
  }
}

}  // namespace
}  // namespace mp
