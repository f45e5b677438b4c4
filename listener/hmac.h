// Copyright 2026 The mp Authors.
//
// listener/hmac.h — HMAC-SHA256 (RFC 2104) for the authkey challenge of Listener/Client
// (listener/listener.h), computed by OpenSSL's libcrypto (HMAC() with EVP_sha256(), what CPython's
// hmac.digest uses). Checked against the RFC 4231 test vectors (hmac_test.cc). Compare MACs with
// mp::ConstantTimeEqual (base/constant_time.h).
//
//   absl::StatusOr<mp::Sha256Digest> mac = mp::HmacSha256(key, message);
//
// Thread safety: the function is pure and may be called from any thread.

#ifndef MP_LISTENER_HMAC_H_
#define MP_LISTENER_HMAC_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mp {

inline constexpr size_t kSha256Size = 32;
using Sha256Digest = std::array<uint8_t, kSha256Size>;

// HMAC-SHA256(key, message), any key length (keys longer than SHA-256's 64-byte block are hashed
// first, as RFC 2104 says). kInvalidArgument for a key longer than INT_MAX bytes (OpenSSL's limit),
// kInternal naming OpenSSL's error if libcrypto fails.
absl::StatusOr<Sha256Digest> HmacSha256(absl::string_view key, absl::string_view message);

}  // namespace mp

#endif  // MP_LISTENER_HMAC_H_
