// Copyright 2026 The mp Authors.
//
// HMAC-SHA256 against RFC 4231's test cases.

#include "listener/hmac.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace {

std::string Hex(absl::string_view key, absl::string_view message) {
  absl::StatusOr<mp::Sha256Digest> d = mp::HmacSha256(key, message);
  if (!d.ok()) return std::string(d.status().ToString());
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(d->data()), d->size()));
}
std::string Bytes(absl::string_view hex) { return absl::HexStringToBytes(hex); }

// RFC 4231 section 4 (test case 5, a truncated output, does not apply).
TEST(HmacSha256Test, Rfc4231) {
  EXPECT_EQ(Hex(Bytes("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(Hex(std::string(20, '\xaa'), std::string(50, '\xdd')),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  EXPECT_EQ(
      Hex(Bytes("0102030405060708090a0b0c0d0e0f10111213141516171819"), std::string(50, '\xcd')),
      "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  EXPECT_EQ(Hex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(Hex(std::string(131, '\xaa'),
                "This is a test using a larger than block-size key and a larger than block-size "
                "data. The key needs to be hashed before being used by the HMAC algorithm."),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

// An empty key and an empty message are valid inputs (HMAC pads the key with zeros).
TEST(HmacSha256Test, EmptyKeyAndMessage) {
  EXPECT_EQ(Hex("", ""), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  EXPECT_EQ(Hex(std::string("\0", 1), ""), Hex("", ""));  // zero padding makes them equal
}

}  // namespace
