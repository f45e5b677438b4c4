// Copyright 2026 The mp Authors.
//
// base/io.h — reading and writing a whole buffer on a descriptor within one Deadline, from the
// first byte to the last: a peer that sends one byte and goes silent cannot hold the caller past
// the deadline. EINTR is retried. Sockets are read and written with MSG_DONTWAIT (and MSG_NOSIGNAL,
// so a closed peer is EPIPE, not SIGPIPE), so the descriptor's own blocking mode does not matter;
// other descriptors (pipes) are polled before each read or write, which bounds a read, and bounds a
// write when the descriptor is non-blocking or the write fits in the pipe.

#ifndef MP_BASE_IO_H_
#define MP_BASE_IO_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/deadline.h"

namespace mp {

// Reads exactly out.size() bytes. kOutOfRange "<what>: end of file after N of M bytes" if the peer
// closed first, kDeadlineExceeded "<what>: timed out after N of M bytes" at the deadline, the errno
// status (ErrnoStatus) of a failed read.
absl::Status ReadFull(int fd, absl::Span<uint8_t> out, Deadline deadline, absl::string_view what);

// Writes all of `data`. kDeadlineExceeded at the deadline (naming how much was written), the errno
// status of a failed write (EPIPE: kUnavailable).
absl::Status WriteFull(int fd, absl::Span<const uint8_t> data, Deadline deadline,
                       absl::string_view what);

}  // namespace mp

#endif  // MP_BASE_IO_H_
