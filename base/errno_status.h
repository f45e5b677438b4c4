// Copyright 2026 The mp Authors.
//
// base/errno_status.h — the one errno -> absl::Status mapping of mp. Every package turns a failed
// system call into a status with ErrnoStatus, so the same errno means the same code everywhere; the
// README's error table lists this mapping.
//
//   if (::pipe2(fds, O_CLOEXEC) != 0) return mp::ErrnoStatus(errno, "Pipe: pipe2");
//   // -> kResourceExhausted "Pipe: pipe2: Too many open files (errno 24)"
//
// A caller that gives an errno a meaning of its own (EPIPE from send(2) is BrokenPipeError,
// kAborted, in channels/) checks for it before calling ErrnoStatus.

#ifndef MP_BASE_ERRNO_STATUS_H_
#define MP_BASE_ERRNO_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mp {

// The status code errno `err` maps to:
//   ENOENT ESRCH                                        kNotFound
//   EEXIST EADDRINUSE                                   kAlreadyExists
//   EACCES EPERM                                        kPermissionDenied
//   EINVAL EBADF ENAMETOOLONG ENOTSOCK EFAULT ERANGE    kInvalidArgument
//   EAGAIN EMFILE ENFILE ENOMEM ENOSPC ENOBUFS EMSGSIZE kResourceExhausted
//   ETIMEDOUT                                           kDeadlineExceeded
//   ECONNREFUSED ECONNRESET ECONNABORTED EPIPE ENOTCONN
//   EHOSTUNREACH ENETUNREACH                            kUnavailable
//   ENOSYS EOPNOTSUPP                                   kUnimplemented
//   EOVERFLOW EFBIG                                     kOutOfRange
//   anything else (and 0)                               kInternal
absl::StatusCode ErrnoCode(int err);

// A status with ErrnoCode(err) and the message "<what>: <strerror(err)> (errno <err>)".
absl::Status ErrnoStatus(int err, absl::string_view what);

}  // namespace mp

#endif  // MP_BASE_ERRNO_STATUS_H_
