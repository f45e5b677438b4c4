// Copyright 2026 The mp Authors.
//
// base/deadline.h — every wait in mp is bounded by a Deadline on CLOCK_MONOTONIC, so a step of the
// wall clock (NTP, settimeofday) neither shortens nor stretches a timeout. PollUntil is poll(2)
// with a Deadline: EINTR-safe, and the millisecond argument is clamped, so a timeout longer than
// poll's int range (24.8 days) waits in slices instead of overflowing into "forever" or "now".
//
//   mp::Deadline deadline = mp::Deadline::After(timeout);
//   absl::StatusOr<short> ready = mp::PollUntil(fd, POLLIN, deadline);
//   if (!ready.ok()) return ready.status();          // poll(2) itself failed
//   if (*ready == 0) return absl::DeadlineExceededError(...);

#ifndef MP_BASE_DEADLINE_H_
#define MP_BASE_DEADLINE_H_

#include <poll.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace mp {

// Nanoseconds on CLOCK_MONOTONIC.
int64_t MonotonicNowNs();
// CLOCK_MONOTONIC_COARSE: the same clock at the kernel tick's resolution (1-4 ms), about a quarter
// of MonotonicNowNs's cost; for "now and then" checks on a hot path.
int64_t CoarseMonotonicNowNs();

// A point in time on CLOCK_MONOTONIC, or never. Cheap to copy; immutable.
class Deadline {
 public:
  static Deadline Never() { return Deadline(kNever); }
  // Now plus `timeout`; absl::InfiniteDuration() (or a timeout past the clock's range) gives
  // Never(), a zero or negative timeout gives now (already expired).
  static Deadline After(absl::Duration timeout);
  // The point `ns` on CLOCK_MONOTONIC (MonotonicNowNs); INT64_MAX gives Never().
  static Deadline AtNs(int64_t ns) { return Deadline(ns); }

  bool IsNever() const { return ns_ == kNever; }
  bool Expired() const;
  // Time left, zero once expired, absl::InfiniteDuration() for Never().
  absl::Duration Remaining() const;
  // The earlier of this deadline and now + `slice`.
  Deadline CappedAfter(absl::Duration slice) const;
  // The earlier of two deadlines.
  static Deadline Earlier(Deadline a, Deadline b) { return a.ns_ <= b.ns_ ? a : b; }
  // Nanoseconds on CLOCK_MONOTONIC (INT64_MAX for Never()).
  int64_t ns() const { return ns_; }

 private:
  static constexpr int64_t kNever = INT64_MAX;
  explicit Deadline(int64_t ns) : ns_(ns) {}
  int64_t ns_;
};

// Milliseconds to pass to poll(2)/epoll_wait(2) for a wait until `deadline`: -1 for Never(),
// rounded up (a 100 us wait is 1 ms, never a busy 0), at most kMaxPollMillis.
int PollMillis(Deadline deadline);
inline constexpr int kMaxPollMillis = 1 << 30;  // ~12 days; callers loop until the deadline

// poll(2) on `fds` until one is ready or `deadline` passes. Restarts after EINTR and after a
// clamped slice. Returns the number of ready entries (0 once the deadline passed), or the errno
// status of a failed poll.
absl::StatusOr<int> PollUntil(absl::Span<struct pollfd> fds, Deadline deadline);

// One descriptor: the revents of `fd` for `events` (0 once the deadline passed).
absl::StatusOr<short> PollUntil(int fd, short events, Deadline deadline);

}  // namespace mp

#endif  // MP_BASE_DEADLINE_H_
