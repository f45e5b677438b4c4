// Copyright 2026 The mp Authors.

#include "serialize/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serialize/codec.h"

namespace fdtest {
struct Channel {
  std::string name;
  mp::PassedFd read_end;
  mp::PassedFd write_end;
};
MP_FIELDS(Channel, name, read_end, write_end);
}  // namespace fdtest

namespace mp {
namespace {

using ::testing::HasSubstr;

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(PassedFd, TravelsBesideTheBytes) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  fdtest::Channel ch{"c", PassedFd{p[0]}, PassedFd{p[1]}};
  FdTable sent;
  std::string bytes;
  {
    ScopedFdTable scope(&sent);
    bytes = Encode(ch);
  }
  ASSERT_EQ(sent.fds(), (std::vector<int>{p[0], p[1]}));
  // The transport delivers copies of the descriptors (here: dup).
  FdTable received(std::vector<int>{::dup(p[0]), ::dup(p[1])});
  ScopedFdTable scope(&received);
  absl::StatusOr<fdtest::Channel> back = Decode<fdtest::Channel>(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_NE(back->write_end.fd, p[1]);
  ASSERT_EQ(::write(back->write_end.fd, "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  for (int fd : {p[0], p[1], back->read_end.fd, back->write_end.fd}) ::close(fd);
}

TEST(PassedFd, SameDescriptorTwiceIsOneSlot) {
  FdTable sent;
  ScopedFdTable scope(&sent);
  Encode(std::vector<PassedFd>{{5}, {5}, {6}});
  EXPECT_EQ(sent.size(), 2u);
}

TEST(PassedFd, WithoutATableItCannotBeDecoded) {
  std::string bytes = Encode(PassedFd{3});  // no current table
  FdTable received(std::vector<int>{});
  ScopedFdTable scope(&received);
  absl::StatusOr<PassedFd> fd = Decode<PassedFd>(bytes);
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(fd.status().message(), HasSubstr("cannot travel"));
}

TEST(PassedFd, ReceiverWithoutTableIsRefused) {
  FdTable sent;
  std::string bytes;
  {
    ScopedFdTable scope(&sent);
    bytes = Encode(PassedFd{3});
  }
  absl::StatusOr<PassedFd> fd = Decode<PassedFd>(bytes);
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PassedFd, SlotBeyondWhatArrivedIsInvalid) {
  FdTable sent;
  std::string bytes;
  {
    ScopedFdTable scope(&sent);
    bytes = Encode(std::vector<PassedFd>{{7}, {8}});
  }
  FdTable received(std::vector<int>{::dup(0)});  // one arrived, two announced
  ScopedFdTable scope(&received);
  absl::StatusOr<std::vector<PassedFd>> v = Decode<std::vector<PassedFd>>(bytes);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(v.status().message(), HasSubstr("only 1 arrived"));
}

TEST(FdTable, CollectsForkOnlyObjects) {
  FdTable table;
  table.NoteForkOnly("Lock");
  table.NoteForkOnly("Queue");
  FdTable moved = std::move(table);
  EXPECT_EQ(moved.fork_only(), (std::vector<std::string>{"Lock", "Queue"}));
  EXPECT_TRUE(table.fork_only().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
}

TEST(FdTable, ClosesWhatNobodyTook) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  {
    FdTable received(std::vector<int>{p[0], p[1]});
    absl::StatusOr<int> taken = received.Take(1);
    ASSERT_TRUE(taken.ok());
  }
  EXPECT_FALSE(IsOpen(p[0]));
  EXPECT_TRUE(IsOpen(p[1]));
  ::close(p[1]);
}

}  // namespace
}  // namespace mp
