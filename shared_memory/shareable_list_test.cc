// Copyright 2026 The mp Authors.
//
// ShareableList: every method and its errors, a forked child writing through its own attachment,
// and a segment whose header is of another type or corrupt.

#include "shared_memory/shareable_list.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared_memory/shared_memory.h"

namespace shareable_list_test {

using ::absl::StatusCode;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Unlinks the segment at the end of the test, whatever happens.
struct Unlinker {
  std::string name;
  ~Unlinker() {
    absl::StatusOr<mp::SharedMemory> shm = mp::SharedMemory::Attach(name);
    if (shm.ok()) shm->Unlink().IgnoreError();
  }
};

TEST(ShareableListTest, Methods) {
  const std::vector<int64_t> init = {1, 2, 3, 2};
  absl::StatusOr<mp::ShareableList<int64_t>> sl = mp::ShareableList<int64_t>::Create(init);
  ASSERT_TRUE(sl.ok()) << sl.status();
  Unlinker unlink{sl->name()};
  EXPECT_EQ(sl->size(), 4u);
  EXPECT_EQ(*sl->Get(0), 1);
  EXPECT_EQ(*sl->Get(-1), 2);
  EXPECT_EQ(sl->Get(4).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(sl->Get(-5).status().code(), StatusCode::kOutOfRange);
  ASSERT_TRUE(sl->Set(0, 10).ok());
  EXPECT_EQ(sl->Set(9, 1).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(*sl->Index(2), 1);
  EXPECT_EQ(sl->Index(42).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(sl->Count(2), 2u);
  EXPECT_THAT(sl->ToVector(), ElementsAre(10, 2, 3, 2));

  const std::vector<std::array<char, 8>> names = {{"alpha"}, {"beta"}};
  absl::StatusOr<mp::ShareableList<std::array<char, 8>>> strings =
      mp::ShareableList<std::array<char, 8>>::Create(names);
  ASSERT_TRUE(strings.ok()) << strings.status();
  Unlinker unlink_strings{strings->name()};
  EXPECT_STREQ(strings->Get(1)->data(), "beta");
}

TEST(ShareableListTest, AnotherProcessWritesThroughItsOwnAttachment) {
  const std::vector<double> init = {0.5, 1.5};
  absl::StatusOr<mp::ShareableList<double>> sl = mp::ShareableList<double>::Create(init);
  ASSERT_TRUE(sl.ok()) << sl.status();
  Unlinker unlink{sl->name()};
  const std::string name = sl->name();
  const pid_t pid = fork();
  if (pid == 0) {
    absl::StatusOr<mp::ShareableList<double>> mine = mp::ShareableList<double>::Attach(name);
    _exit(mine.ok() && mine->Set(1, 9.5).ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(*sl->Get(1), 9.5);
  // Through its Codec too (it travels by name).
  absl::StatusOr<mp::ShareableList<double>> decoded =
      mp::Decode<mp::ShareableList<double>>(mp::Encode(*sl));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded->Get(1), 9.5);
}

TEST(ShareableListTest, AForeignOrCorruptSegmentIsRefused) {
  const std::vector<int32_t> init = {1, 2};
  absl::StatusOr<mp::ShareableList<int32_t>> sl = mp::ShareableList<int32_t>::Create(init);
  ASSERT_TRUE(sl.ok()) << sl.status();
  Unlinker unlink{sl->name()};
  absl::StatusOr<mp::ShareableList<int64_t>> wrong = mp::ShareableList<int64_t>::Attach(sl->name());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("another type"));
  // A count past the segment's end.
  const uint64_t huge = uint64_t{1} << 40;
  std::memcpy(sl->shm().buf().data() + 16, &huge, sizeof(huge));
  absl::StatusOr<mp::ShareableList<int32_t>> corrupt =
      mp::ShareableList<int32_t>::Attach(sl->name());
  EXPECT_EQ(corrupt.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(corrupt.status().message(), HasSubstr("room for"));
  // The attached list keeps the count it read, whatever the header says now.
  EXPECT_EQ(sl->size(), 2u);
  // Not a ShareableList at all.
  absl::StatusOr<mp::SharedMemory> plain = mp::SharedMemory::Create("", 64);
  ASSERT_TRUE(plain.ok());
  Unlinker unlink_plain{plain->name()};
  EXPECT_EQ(mp::ShareableList<int32_t>::Attach(plain->name()).status().code(),
            StatusCode::kInvalidArgument);
  absl::StatusOr<mp::SharedMemory> tiny = mp::SharedMemory::Create("", 8);
  ASSERT_TRUE(tiny.ok());
  Unlinker unlink_tiny{tiny->name()};
  EXPECT_EQ(mp::ShareableList<int32_t>::Attach(tiny->name()).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace shareable_list_test
