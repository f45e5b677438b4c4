// Copyright 2026 The mp Authors.
//
// listener/hmac.h — SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for the authkey challenge of
// Listener/Client (listener/listener.h). Written here because the workspace builds from Debian
// packages that do not include a crypto library (OpenSSL is not among tools/setup's packages).
// Checked against the FIPS 180-2 examples and the RFC 4231 test vectors (hmac_test.cc).
//
//   std::array<uint8_t, 32> mac = mp::HmacSha256(key, message);
//   bool same = mp::ConstantTimeEqual(mac, received);
//
// Thread safety: Sha256 objects are not shared between threads; the functions are pure.

#ifndef MP_LISTENER_HMAC_H_
#define MP_LISTENER_HMAC_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mp {

inline constexpr size_t kSha256Size = 32;
inline constexpr size_t kSha256BlockSize = 64;
using Sha256Digest = std::array<uint8_t, kSha256Size>;

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  void Update(absl::Span<const uint8_t> data);
  void Update(absl::string_view data);
  // The digest; the object must not be updated afterwards.
  Sha256Digest Finish();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buffer_[kSha256BlockSize];
  size_t buffered_ = 0;
  uint64_t length_ = 0;  // bytes
};

Sha256Digest Sha256Of(absl::string_view data);
// HMAC-SHA256(key, message), any key length (keys longer than 64 bytes are hashed first).
Sha256Digest HmacSha256(absl::string_view key, absl::string_view message);
// Compares without an early exit (no timing leak of the first differing byte); false for different
// lengths.
bool ConstantTimeEqual(absl::string_view a, absl::string_view b);

}  // namespace mp

#endif  // MP_LISTENER_HMAC_H_
