#include "serialize/codec.h"
#include "gtest/gtest.h"
TEST(Codec, Smoke) {
  auto back = mp::Decode<std::vector<int>>(mp::Encode(std::vector<int>{1,2,3}));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->size(), 3u);
}
