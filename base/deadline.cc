// Copyright 2026 The mp Authors.

#include "base/deadline.h"

#include <time.h>

#include <algorithm>
#include <cerrno>

#include "base/errno_status.h"

namespace mp {

int64_t MonotonicNowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t CoarseMonotonicNowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

Deadline Deadline::After(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return Never();
  const int64_t now = MonotonicNowNs();
  if (timeout <= absl::ZeroDuration()) return Deadline(now);
  const int64_t ns = absl::ToInt64Nanoseconds(timeout);  // saturates
  if (ns >= kNever - now) return Never();
  return Deadline(now + ns);
}

bool Deadline::Expired() const { return !IsNever() && MonotonicNowNs() >= ns_; }

absl::Duration Deadline::Remaining() const {
  if (IsNever()) return absl::InfiniteDuration();
  const int64_t left = ns_ - MonotonicNowNs();
  return left <= 0 ? absl::ZeroDuration() : absl::Nanoseconds(left);
}

Deadline Deadline::CappedAfter(absl::Duration slice) const {
  const int64_t now = MonotonicNowNs();
  const int64_t ns = absl::ToInt64Nanoseconds(std::max(slice, absl::ZeroDuration()));
  const int64_t capped = ns >= kNever - now ? kNever : now + ns;
  return Deadline(std::min(ns_, capped));
}

int PollMillis(Deadline deadline) {
  if (deadline.IsNever()) return -1;
  const int64_t left = deadline.ns() - MonotonicNowNs();
  if (left <= 0) return 0;
  const int64_t ms = (left + 999'999) / 1'000'000;
  return static_cast<int>(std::min<int64_t>(ms, kMaxPollMillis));
}

absl::StatusOr<int> PollUntil(absl::Span<struct pollfd> fds, Deadline deadline) {
  for (;;) {
    const int ms = PollMillis(deadline);
    const int n = ::poll(fds.data(), fds.size(), ms);
    if (n > 0) return n;
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll");
    }
    // n == 0: the slice ended. Only a clamped slice (or a rounding of the last millisecond) has
    // time left; otherwise the deadline has passed.
    if (deadline.Expired() || ms == 0) return 0;
  }
}

absl::StatusOr<short> PollUntil(int fd, short events, Deadline deadline) {
  struct pollfd p = {fd, events, 0};
  absl::StatusOr<int> n = PollUntil(absl::MakeSpan(&p, 1), deadline);
  if (!n.ok()) return n.status();
  return *n == 0 ? short{0} : p.revents;
}

}  // namespace mp
