// Copyright 2026 The mp Authors.

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/constant_time.h"
#include "base/deadline.h"
#include "base/errno_status.h"
#include "base/exception.h"
#include "base/inherited.h"
#include "base/io.h"
#include "base/mutex.h"
#include "base/random.h"
#include "base/scm_rights.h"
#include "gtest/gtest.h"

namespace mp {
namespace {

TEST(ErrnoStatusTest, OneMapping) {
  EXPECT_EQ(ErrnoStatus(EMFILE, "pipe2").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatus(ENFILE, "x").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatus(ENOMEM, "x").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatus(ENOENT, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatus(EEXIST, "x").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrnoStatus(EADDRINUSE, "x").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrnoStatus(EACCES, "x").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus(EINVAL, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoStatus(ETIMEDOUT, "x").code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ErrnoStatus(ECONNREFUSED, "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoStatus(ENOSYS, "x").code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(ErrnoStatus(EIO, "x").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ErrnoStatus(EMFILE, "Pipe: pipe2").message(),
            "Pipe: pipe2: Too many open files (errno 24)");
}

TEST(DeadlineTest, NeverAndExpired) {
  EXPECT_TRUE(Deadline::Never().IsNever());
  EXPECT_FALSE(Deadline::Never().Expired());
  EXPECT_TRUE(Deadline::After(absl::InfiniteDuration()).IsNever());
  EXPECT_TRUE(Deadline::After(absl::ZeroDuration()).Expired());
  EXPECT_TRUE(Deadline::After(absl::Seconds(-5)).Expired());
  EXPECT_EQ(Deadline::After(absl::Seconds(-5)).Remaining(), absl::ZeroDuration());
  EXPECT_EQ(Deadline::Never().Remaining(), absl::InfiniteDuration());
  const Deadline hour = Deadline::After(absl::Hours(1));
  EXPECT_FALSE(hour.Expired());
  EXPECT_LE(hour.Remaining(), absl::Hours(1));
  EXPECT_GT(hour.Remaining(), absl::Minutes(59));
  // AtNs is the point ns() names; INT64_MAX is Never and a past point is expired.
  EXPECT_EQ(Deadline::AtNs(hour.ns()).ns(), hour.ns());
  EXPECT_TRUE(Deadline::AtNs(INT64_MAX).IsNever());
  EXPECT_TRUE(Deadline::AtNs(MonotonicNowNs() - 1).Expired());
  // Durations past the clock's range are Never, not an overflow into the past.
  EXPECT_TRUE(Deadline::After(absl::Hours(24 * 365 * 400)).IsNever());
  EXPECT_EQ(Deadline::Earlier(hour, Deadline::Never()).ns(), hour.ns());
  EXPECT_LE(Deadline::Never().CappedAfter(absl::Seconds(1)).ns(), hour.ns());
}

TEST(DeadlineTest, PollMillisIsClampedAndRoundsUp) {
  EXPECT_EQ(PollMillis(Deadline::Never()), -1);
  EXPECT_EQ(PollMillis(Deadline::After(absl::ZeroDuration())), 0);
  // 30 days is more milliseconds than an int holds: clamped, never negative (which means forever).
  EXPECT_EQ(PollMillis(Deadline::After(absl::Hours(24 * 30))), kMaxPollMillis);
  EXPECT_EQ(PollMillis(Deadline::After(absl::Hours(24 * 9000))), kMaxPollMillis);
  EXPECT_GE(PollMillis(Deadline::After(absl::Microseconds(100))), 0);
  EXPECT_LE(PollMillis(Deadline::After(absl::Microseconds(100))), 1);
}

class SocketPair : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_), 0); }
  void TearDown() override {
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }
  int fds_[2] = {-1, -1};
};

TEST_F(SocketPair, PollUntilReportsReadyAndTimesOut) {
  absl::StatusOr<short> ready = PollUntil(fds_[0], POLLIN, Deadline::After(absl::Milliseconds(1)));
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(*ready, 0);
  ASSERT_EQ(write(fds_[1], "x", 1), 1);
  ready = PollUntil(fds_[0], POLLIN, Deadline::Never());
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_TRUE(*ready & POLLIN);
}

TEST_F(SocketPair, ReadFullRoundTrip) {
  const std::array<uint8_t, 5> sent = {1, 2, 3, 4, 5};
  ASSERT_TRUE(WriteFull(fds_[1], sent, Deadline::Never(), "write").ok());
  std::array<uint8_t, 5> got = {};
  ASSERT_TRUE(ReadFull(fds_[0], absl::MakeSpan(got), Deadline::Never(), "read").ok());
  EXPECT_EQ(got, sent);
}

// A peer that sends part of what was asked for and goes silent holds the reader only until the
// deadline, measured from the first byte to the last.
TEST_F(SocketPair, ReadFullOfASilentPeerEndsAtTheDeadline) {
  ASSERT_EQ(write(fds_[1], "ab", 2), 2);
  std::array<uint8_t, 8> got = {};
  absl::Status s =
      ReadFull(fds_[0], absl::MakeSpan(got), Deadline::After(absl::Milliseconds(20)), "handshake");
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_EQ(s.message(), "handshake: timed out after 2 of 8 bytes");
}

TEST_F(SocketPair, ReadFullReportsEndOfFile) {
  ASSERT_EQ(write(fds_[1], "abc", 3), 3);
  close(fds_[1]);
  fds_[1] = -1;
  std::array<uint8_t, 8> got = {};
  absl::Status s = ReadFull(fds_[0], absl::MakeSpan(got), Deadline::Never(), "body");
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  EXPECT_EQ(s.message(), "body: end of file after 3 of 8 bytes");
}

TEST_F(SocketPair, WriteFullToAFullSocketEndsAtTheDeadline) {
  std::vector<uint8_t> big(64 << 20, 7);  // far more than a socket buffer holds
  absl::Status s = WriteFull(fds_[1], big, Deadline::After(absl::Milliseconds(20)), "flood");
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
}

TEST_F(SocketPair, WriteFullToAClosedPeerFailsWithoutSigpipe) {
  close(fds_[0]);
  fds_[0] = -1;
  const std::array<uint8_t, 3> data = {1, 2, 3};
  absl::Status s = WriteFull(fds_[1], data, Deadline::Never(), "send");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
}

TEST(IoTest, PipesToo) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  const std::array<uint8_t, 3> data = {9, 8, 7};
  ASSERT_TRUE(WriteFull(p[1], data, Deadline::Never(), "w").ok());
  std::array<uint8_t, 4> got = {};
  absl::Status s = ReadFull(p[0], absl::MakeSpan(got), Deadline::After(absl::Milliseconds(5)), "r");
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  close(p[1]);
  s = ReadFull(p[0], absl::MakeSpan(got), Deadline::Never(), "r");
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  close(p[0]);
}

TEST(RandomTest, FillsAndDiffers) {
  std::array<uint8_t, 64> a = {}, b = {};
  ASSERT_TRUE(RandomBytes(absl::MakeSpan(a)).ok());
  ASSERT_TRUE(RandomBytes(absl::MakeSpan(b)).ok());
  EXPECT_NE(a, b);  // 2^-512
  absl::StatusOr<uint64_t> x = RandomU64(), y = RandomU64();
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_NE(*x, *y);
  EXPECT_TRUE(RandomBytes({}).ok());
}

TEST(ConstantTimeEqualTest, Compares) {
  EXPECT_TRUE(ConstantTimeEqual("", ""));
  EXPECT_TRUE(ConstantTimeEqual("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEqual("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEqual("secret", "secre"));
  EXPECT_FALSE(ConstantTimeEqual(absl::string_view("a\0b", 3), absl::string_view("a\0c", 3)));
}

TEST(ExceptionTest, DescribesTypeAndWhat) {
  EXPECT_EQ(CurrentExceptionDescription(), "no exception");
  try {
    throw std::runtime_error("boom");
  } catch (...) {
    EXPECT_EQ(CurrentExceptionDescription(), "std::runtime_error: boom");
  }
  try {
    throw 7;
  } catch (...) {
    EXPECT_EQ(CurrentExceptionDescription(), "int");
  }
}

TEST(MutexTest, AwaitSeesTheConditionOrTheDeadline) {
  Mutex mu;
  std::condition_variable cv;
  bool ready = false;
  {
    MutexLock lock(&mu);
    EXPECT_FALSE(mu.Await(cv, Deadline::After(absl::Milliseconds(1)), [&] { return ready; }));
  }
  std::thread setter([&] {
    MutexLock lock(&mu);
    ready = true;
    cv.notify_all();
  });
  {
    MutexLock lock(&mu);
    EXPECT_TRUE(mu.Await(cv, Deadline::Never(), [&] { return ready; }));
  }
  setter.join();
}

std::vector<std::vector<int>>* g_closer_calls = nullptr;
void RecordA(absl::Span<const int> keep) { g_closer_calls->emplace_back(keep.begin(), keep.end()); }
void RecordB(absl::Span<const int> keep) { g_closer_calls->push_back({-1}); }

TEST(InheritedTest, ClosersRunInOrderWithTheKeptDescriptors) {
  std::vector<std::vector<int>> calls;
  g_closer_calls = &calls;
  RegisterInheritedCloser(&RecordA);
  RegisterInheritedCloser(&RecordB);
  const int keep[] = {3, 7};
  CloseInherited(keep);
  g_closer_calls = nullptr;
  // This binary links no other closer (no channels).
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], (std::vector<int>{3, 7}));
  EXPECT_EQ(calls[1], (std::vector<int>{-1}));
}

// Descriptors attached with AttachRights arrive, in order and open, through CollectRights; no
// descriptors means no control message; the most a message may carry fit the buffer.
TEST(ScmRightsTest, DescriptorsTravelInOrder) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  for (size_t count : {size_t{0}, size_t{1}, size_t{3}, kMaxRightsFds}) {
    std::vector<int> sent;
    for (size_t i = 0; i < count; ++i) sent.push_back(i % 2 == 0 ? sv[0] : sv[1]);
    char byte = 'x';
    iovec iov{&byte, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    RightsBuffer out;
    AttachRights(msg, out, sent);
    EXPECT_EQ(msg.msg_controllen == 0, count == 0);
    ASSERT_EQ(sendmsg(sv[0], &msg, MSG_NOSIGNAL), 1) << count;
    RightsBuffer in;
    msghdr got{};
    got.msg_iov = &iov;
    got.msg_iovlen = 1;
    got.msg_control = in.data;
    got.msg_controllen = sizeof(in.data);
    ASSERT_EQ(recvmsg(sv[1], &got, MSG_CMSG_CLOEXEC), 1);
    EXPECT_EQ(got.msg_flags & MSG_CTRUNC, 0);
    std::vector<int> fds = {-7};  // appended to, not replaced
    CollectRights(got, &fds);
    ASSERT_EQ(fds.size(), count + 1);
    for (size_t i = 0; i < count; ++i) {
      struct stat a, b;
      ASSERT_EQ(fstat(fds[i + 1], &a), 0);
      ASSERT_EQ(fstat(sent[i], &b), 0);
      EXPECT_EQ(a.st_ino, b.st_ino) << "descriptor " << i;
      close(fds[i + 1]);
    }
  }
  close(sv[0]);
  close(sv[1]);
}

}  // namespace
}  // namespace mp
