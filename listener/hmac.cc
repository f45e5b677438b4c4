// Copyright 2026 The mp Authors.

#include "listener/hmac.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mp {

absl::StatusOr<Sha256Digest> HmacSha256(absl::string_view key, absl::string_view message) {
  if (key.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat("HmacSha256: the key has ", key.size(),
                                                   " bytes; OpenSSL takes at most ", INT_MAX));
  }
  // An empty string_view may have a null data(), which OpenSSL reads as "no key" rather than an
  // empty one.
  static constexpr unsigned char kEmpty = 0;
  const void* key_data = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  const unsigned char* message_data =
      message.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(message.data());
  Sha256Digest mac;
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key_data, static_cast<int>(key.size()), message_data, message.size(),
           mac.data(), &length) == nullptr ||
      length != mac.size()) {
    char reason[256] = "no OpenSSL error queued";
    if (const unsigned long err = ERR_get_error(); err != 0) {
      ERR_error_string_n(err, reason, sizeof(reason));
    }
    ERR_clear_error();
    return absl::InternalError(
        absl::StrCat("HmacSha256: OpenSSL's HMAC(EVP_sha256()) failed: ", reason));
  }
  return mac;
}

}  // namespace mp
