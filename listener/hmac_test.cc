// Copyright 2026 The mp Authors.
//
// SHA-256 against the FIPS 180-2 examples, HMAC-SHA256 against RFC 4231's test cases.

#include "listener/hmac.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace {

std::string Hex(const mp::Sha256Digest& d) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}
std::string Bytes(absl::string_view hex) { return absl::HexStringToBytes(hex); }

TEST(Sha256Test, Fips180Examples) {
  EXPECT_EQ(Hex(mp::Sha256Of("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(mp::Sha256Of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(mp::Sha256Of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  mp::Sha256 million;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.Update(chunk);
  EXPECT_EQ(Hex(million.Finish()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 7));
  for (size_t split = 0; split <= data.size(); split += 13) {
    mp::Sha256 s;
    s.Update(absl::string_view(data).substr(0, split));
    s.Update(absl::string_view(data).substr(split));
    EXPECT_EQ(s.Finish(), mp::Sha256Of(data)) << split;
  }
}

// RFC 4231 section 4 (test case 5, a truncated output, does not apply).
TEST(HmacSha256Test, Rfc4231) {
  EXPECT_EQ(Hex(mp::HmacSha256(Bytes("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(Hex(mp::HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(Hex(mp::HmacSha256(std::string(20, '\xaa'), std::string(50, '\xdd'))),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  EXPECT_EQ(Hex(mp::HmacSha256(Bytes("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                               std::string(50, '\xcd'))),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  EXPECT_EQ(Hex(mp::HmacSha256(std::string(131, '\xaa'),
                               "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(Hex(mp::HmacSha256(
                std::string(131, '\xaa'),
                "This is a test using a larger than block-size key and a larger than block-size "
                "data. The key needs to be hashed before being used by the HMAC algorithm.")),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST(HmacSha256Test, ConstantTimeEqual) {
  EXPECT_TRUE(mp::ConstantTimeEqual("abc", "abc"));
  EXPECT_FALSE(mp::ConstantTimeEqual("abc", "abd"));
  EXPECT_FALSE(mp::ConstantTimeEqual("abc", "ab"));
  EXPECT_TRUE(mp::ConstantTimeEqual("", ""));
}

}  // namespace
