// Copyright 2026 The mp Authors.

#include "pool/buffers.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace mp {
namespace pool_internal {
namespace {

std::string WithCapacity(size_t capacity) {
  std::string s;
  s.reserve(capacity);
  return s;
}

TEST(BuffersTest, EmptyGivesAnEmptyString) {
  Buffers b;
  EXPECT_EQ(b.Take(100).capacity(), std::string().capacity());
}

TEST(BuffersTest, TakesTheSmallestThatFits) {
  auto b = std::make_shared<Buffers>();
  for (size_t c : {size_t{5000}, size_t{9000}, size_t{40000}, size_t{8500}, size_t{70000}}) {
    b->Give(WithCapacity(c));
  }
  std::string s = b->Take(8200);
  EXPECT_GE(s.capacity(), 8200u);
  EXPECT_LT(s.capacity(), 9000u + 100);  // 8500 or 9000, never 40000
  EXPECT_GE(b->Take(60000).capacity(), 60000u);
  EXPECT_GE(b->Take(10).capacity(), 4096u);
}

TEST(BuffersTest, NoneLargeEnoughGivesTheLargest) {
  Buffers b;
  b.Give(WithCapacity(5000));
  b.Give(WithCapacity(20000));
  EXPECT_GE(b.Take(1 << 20).capacity(), 20000u);
  EXPECT_GE(b.Take(1 << 20).capacity(), 5000u);
  EXPECT_EQ(b.Take(1 << 20).capacity(), std::string().capacity());
}

TEST(BuffersTest, TinyAndHugeAreNotKept) {
  Buffers b;
  b.Give(WithCapacity(100));
  b.Give(WithCapacity(Buffers::kMaxBytes + 1));
  EXPECT_EQ(b.Take(0).capacity(), std::string().capacity());
}

TEST(BuffersTest, KeepsAtMostPerClassAndInTotal) {
  Buffers b;
  for (size_t i = 0; i < Buffers::kMaxPerClass + 10; ++i) b.Give(WithCapacity(5000));
  size_t kept = 0;
  while (b.Take(5000).capacity() >= 5000) ++kept;
  EXPECT_EQ(kept, Buffers::kMaxPerClass);

  const size_t big = Buffers::kMaxBytes;  // two classes' worth of these exceed the total
  for (int i = 0; i < 4; ++i) b.Give(WithCapacity(big));
  size_t bytes = 0;
  for (;;) {
    const size_t capacity = b.Take(big).capacity();  // a fresh string each time
    if (capacity < big) break;
    bytes += capacity;
  }
  EXPECT_LE(bytes, Buffers::kMaxKeptBytes);
  EXPECT_GT(bytes, 0u);
}

TEST(BuffersTest, ShareComesBack) {
  auto b = std::make_shared<Buffers>();
  { std::shared_ptr<const std::string> blob = b->Share(WithCapacity(10000)); }
  EXPECT_GE(b->Take(10000).capacity(), 10000u);
}

TEST(BuffersTest, ShareOutlivingItsBuffersIsFreed) {
  std::shared_ptr<const std::string> blob;
  {
    auto b = std::make_shared<Buffers>();
    blob = b->Share(WithCapacity(10000));
  }
  blob.reset();  // no Buffers to go back to: freed, no crash (asan checks)
}

}  // namespace
}  // namespace pool_internal
}  // namespace mp
