// Copyright 2026 The mp Authors.

#include "base/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "base/errno_status.h"

namespace mp {

absl::Status RandomBytes(absl::Span<uint8_t> out) {
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::getrandom(out.data() + got, out.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "getrandom");
    }
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> RandomU64() {
  uint8_t bytes[sizeof(uint64_t)];
  if (absl::Status s = RandomBytes(absl::MakeSpan(bytes)); !s.ok()) return s;
  uint64_t v;
  std::memcpy(&v, bytes, sizeof(v));
  return v;
}

}  // namespace mp
