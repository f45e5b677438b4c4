// Copyright 2026 The mp Authors.
//
// base/random.h — bytes from the kernel's CSPRNG (getrandom(2)), for nonces, authkeys and names
// that must not be guessed.

#ifndef MP_BASE_RANDOM_H_
#define MP_BASE_RANDOM_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace mp {

// Fills `out` with random bytes; retries on EINTR and short reads. Fails only if getrandom does
// (ENOSYS on a kernel older than 3.17).
absl::Status RandomBytes(absl::Span<uint8_t> out);

// A random 64-bit value.
absl::StatusOr<uint64_t> RandomU64();

}  // namespace mp

#endif  // MP_BASE_RANDOM_H_
