// Copyright 2026 The mp Authors.

#include "base/io.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace mp {
namespace {

// Waits until `fd` is ready for `events`; kDeadlineExceeded at the deadline.
absl::Status Wait(int fd, short events, Deadline deadline, absl::string_view what, size_t done,
                  size_t total) {
  absl::StatusOr<short> ready = PollUntil(fd, events, deadline);
  if (!ready.ok()) return ready.status();
  if (*ready == 0) {
    return absl::DeadlineExceededError(
        absl::StrCat(what, ": timed out after ", done, " of ", total, " bytes"));
  }
  if (*ready & POLLNVAL) return ErrnoStatus(EBADF, what);
  return absl::OkStatus();  // POLLHUP / POLLERR: the read or write below reports it
}

}  // namespace

absl::Status ReadFull(int fd, absl::Span<uint8_t> out, Deadline deadline, absl::string_view what) {
  size_t got = 0;
  bool socket = true;
  while (got < out.size()) {
    ssize_t n;
    if (socket) {
      n = ::recv(fd, out.data() + got, out.size() - got, MSG_DONTWAIT);
      if (n < 0 && errno == ENOTSOCK) {
        socket = false;
        continue;
      }
    } else {
      if (absl::Status s = Wait(fd, POLLIN, deadline, what, got, out.size()); !s.ok()) return s;
      n = ::read(fd, out.data() + got, out.size() - got);
    }
    if (n > 0) {
      got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      return absl::OutOfRangeError(
          absl::StrCat(what, ": end of file after ", got, " of ", out.size(), " bytes"));
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoStatus(errno, what);
    if (absl::Status s = Wait(fd, POLLIN, deadline, what, got, out.size()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status WriteFull(int fd, absl::Span<const uint8_t> data, Deadline deadline,
                       absl::string_view what) {
  size_t put = 0;
  bool socket = true;
  while (put < data.size()) {
    ssize_t n;
    if (socket) {
      n = ::send(fd, data.data() + put, data.size() - put, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == ENOTSOCK) {
        socket = false;
        continue;
      }
    } else {
      if (absl::Status s = Wait(fd, POLLOUT, deadline, what, put, data.size()); !s.ok()) return s;
      n = ::write(fd, data.data() + put, data.size() - put);
    }
    if (n >= 0) {
      put += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoStatus(errno, what);
    if (absl::Status s = Wait(fd, POLLOUT, deadline, what, put, data.size()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace mp
