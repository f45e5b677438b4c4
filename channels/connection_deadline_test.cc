// Copyright 2026 The mp Authors.
//
// Timeouts of Connection::Poll and mp::Wait: every wait is on a monotonic mp::Deadline and goes
// through base's PollUntil, so a timeout longer than one poll(2) can express (its int milliseconds
// stop at ~24.8 days; base clamps each slice to kMaxPollMillis) waits slice after slice until the
// deadline, never overflows into "forever", and is never cut short into "now".
//
// To see the slices without waiting for them, this test binary interposes poll(2): when armed, the
// first `g_fake_timeouts` calls record their timeout and return 0 at once, as poll does when its
// slice has elapsed; every other call goes to the real poll. A caller that treated the end of one
// slice as the end of its timeout would report a timeout here although its deadline is weeks away.

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
  int left = g_fake_timeouts.load();
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

// Tests whose lambdas use the ends name them as references into the pair: clang before 16 cannot
// capture a structured binding.
std::pair<Connection, Connection> MakePipe() {
  absl::StatusOr<std::pair<Connection, Connection>> p = Pipe();
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

// Arms the fake: the next `slices` polls end their slice at once; returns the recorded timeouts.
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

constexpr absl::Duration kThirtyDays = absl::Hours(24 * 30);

TEST(ConnectionDeadlineTest, PollWaitsSliceAfterSliceUntilItsDeadline) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.SendBytes("ready").ok());
  for (absl::Duration timeout : {kThirtyDays, absl::Hours(24 * 365 * 100), absl::Seconds(1e15)}) {
    SCOPED_TRACE(absl::FormatDuration(timeout));
    FakeSlices fake(3);
    absl::StatusOr<bool> ready = b.Poll(timeout);
    ASSERT_TRUE(ready.ok()) << ready.status();
    EXPECT_TRUE(*ready) << "three elapsed slices were taken for the end of the timeout";
    EXPECT_EQ(fake.unused(), 0);
    for (int ms : fake.timeouts()) {
      // A slice of at most kMaxPollMillis, or -1 (forever) past the monotonic clock's range.
      EXPECT_NE(ms, 0) << "a huge timeout became a zero wait";
      EXPECT_GE(ms, -1);
      EXPECT_LE(ms, kMaxPollMillis);
    }
  }
  EXPECT_EQ(*b.RecvBytes(), "ready");
}

TEST(ConnectionDeadlineTest, WaitWaitsSliceAfterSliceUntilItsDeadline) {
  auto [a, b] = MakePipe();
  auto [c, d] = MakePipe();
  ASSERT_TRUE(c.SendBytes("ready").ok());
  FakeSlices fake(3);
  absl::StatusOr<std::vector<size_t>> ready = Wait({b, d}, kThirtyDays);
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(*ready, std::vector<size_t>{1});
  EXPECT_EQ(fake.unused(), 0);
  for (int ms : fake.timeouts()) {
    EXPECT_GT(ms, 0);
    EXPECT_LE(ms, kMaxPollMillis);
  }
}

TEST(ConnectionDeadlineTest, TimeoutsBecomeTheRightPollArguments) {
  auto [a, b] = MakePipe();
  struct Case {
    absl::Duration timeout;
    int min_ms, max_ms;
  };
  for (const Case& c :
       {Case{kThirtyDays, kMaxPollMillis, kMaxPollMillis}, Case{absl::InfiniteDuration(), -1, -1},
        Case{absl::Microseconds(100), 0, 1},  // rounded up, never a busy loop
        Case{absl::Seconds(2), 1990, 2000}}) {
    SCOPED_TRACE(absl::FormatDuration(c.timeout));
    FakeSlices fake(1);
    // One recorded slice; for the short timeouts the real poll then waits out what is left.
    if (c.timeout != absl::InfiniteDuration() && c.timeout < absl::Seconds(1)) {
      EXPECT_FALSE(*b.Poll(c.timeout));
    } else {
      // Long waits: data arrives after the first slice, so the second (real) poll returns it.
      ASSERT_TRUE(a.SendBytes("x").ok());
      EXPECT_TRUE(*b.Poll(c.timeout));
      EXPECT_EQ(*b.RecvBytes(), "x");
    }
    const std::vector<int> timeouts = fake.timeouts();
    ASSERT_EQ(timeouts.size(), 1u);
    EXPECT_GE(timeouts[0], c.min_ms);
    EXPECT_LE(timeouts[0], c.max_ms);
  }
  // Zero and negative timeouts do not block.
  for (absl::Duration timeout : {absl::ZeroDuration(), absl::Seconds(-5)}) {
    FakeSlices fake(1);
    EXPECT_FALSE(*b.Poll(timeout));
    ASSERT_EQ(fake.timeouts().size(), 1u);
    EXPECT_EQ(fake.timeouts()[0], 0);
  }
}

// The real poll, no fakes: a thirty-day Poll returns the data another thread sends once the
// poller sleeps, and a thirty-day Poll with data already there returns at once.
TEST(ConnectionDeadlineTest, HugeTimeoutReturnsDataSentLaterAndReadyDataAtOnce) {
  std::pair<Connection, Connection> ends = MakePipe();
  Connection& a = ends.first;
  Connection& b = ends.second;
  const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  std::thread sender([&] {
    while (!::mp::testing::IsSleeping(self)) {
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

}  // namespace
}  // namespace mp
