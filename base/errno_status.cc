// Copyright 2026 The mp Authors.

#include "base/errno_status.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace mp {

absl::StatusCode ErrnoCode(int err) {
  switch (err) {
    case ENOENT:
    case ESRCH:
      return absl::StatusCode::kNotFound;
    case EEXIST:
    case EADDRINUSE:
      return absl::StatusCode::kAlreadyExists;
    case EACCES:
    case EPERM:
      return absl::StatusCode::kPermissionDenied;
    case EINVAL:
    case EBADF:
    case ENAMETOOLONG:
    case ENOTSOCK:
    case EFAULT:
    case ERANGE:
      return absl::StatusCode::kInvalidArgument;
    case EAGAIN:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOSPC:
    case ENOBUFS:
    case EMSGSIZE:
      return absl::StatusCode::kResourceExhausted;
    case ETIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
    case ENOTCONN:
    case EHOSTUNREACH:
    case ENETUNREACH:
      return absl::StatusCode::kUnavailable;
    case ENOSYS:
    case EOPNOTSUPP:
      return absl::StatusCode::kUnimplemented;
    case EOVERFLOW:
    case EFBIG:
      return absl::StatusCode::kOutOfRange;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status ErrnoStatus(int err, absl::string_view what) {
  char buf[128];
  // GNU strerror_r: returns a pointer to the text (in buf or static), thread-safe unlike strerror.
  const char* text = strerror_r(err, buf, sizeof(buf));
  return absl::Status(ErrnoCode(err), absl::StrCat(what, ": ", text, " (errno ", err, ")"));
}

}  // namespace mp
