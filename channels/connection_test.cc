// Copyright 2026 The mp Authors.
//
// Pipe, Connection and Wait. Every test of user-visible behaviour runs once per transport (the
// "Socket" and "SharedMemory" instances, channels/test_transports.h). Tests whose subject is the
// socket wire format itself (raw bytes written into fd(), FromFd and Release of raw sockets) pin
// ConnectionTransport::kSocket and say so; a few cover what only the shared-memory transport has.

#include "channels/connection.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "channels/test_transports.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serialize/fd.h"
#include "serialize/frame.h"
#include "sync/test_child.h"
#include "testing/proc_state.h"

namespace mp {

struct FdMessage {
  std::string label;
  PassedFd first;
  PassedFd second;
};
MP_FIELDS(FdMessage, label, first, second);

namespace {

using ::mp::testing::AwaitSleep;
using ::mp::testing::IsSleeping;
using ::mp::testing::PipeOf;
using ::mp::testing::TestChild;
using ::mp::testing::TestPipe;
using ::testing::HasSubstr;

constexpr ConnectionTransport kSocket = ConnectionTransport::kSocket;
constexpr ConnectionTransport kSharedMemory = ConnectionTransport::kSharedMemory;
constexpr absl::StatusCode kOutOfRange = absl::StatusCode::kOutOfRange;
constexpr absl::StatusCode kDataLoss = absl::StatusCode::kDataLoss;
constexpr absl::StatusCode kAborted = absl::StatusCode::kAborted;
constexpr absl::StatusCode kFailedPrecondition = absl::StatusCode::kFailedPrecondition;
constexpr absl::StatusCode kInvalidArgument = absl::StatusCode::kInvalidArgument;

// Long enough that only a broken Poll/Wait runs into it (they return as soon as something arrives).
constexpr absl::Duration kLong = absl::Seconds(60);

// Tests whose lambdas use the ends name them as references into the pair: clang before 16 cannot
// capture a structured binding.
class ConnectionTest : public ::testing::TestWithParam<ConnectionTransport> {
 protected:
  std::pair<Connection, Connection> MakePipe(bool duplex = true) const {
    return PipeOf(GetParam(), duplex);
  }
  bool shm() const { return GetParam() == kSharedMemory; }
};

INSTANTIATE_TEST_SUITE_P(Transports, ConnectionTest, ::mp::testing::AllTransports(),
                         ::mp::testing::TransportParamName());

// For the tests of the socket wire format (raw bytes, raw sockets).
std::pair<Connection, Connection> SocketPipe(bool duplex = true) { return PipeOf(kSocket, duplex); }

// Writes raw bytes to a descriptor, bypassing Connection (to play a hostile peer).
void WriteRaw(int fd, absl::string_view bytes) {
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

std::string Prefix(uint32_t length, uint16_t fds, uint16_t reserved = 0) {
  std::string p(8, '\0');
  std::memcpy(p.data(), &length, 4);
  std::memcpy(p.data() + 4, &fds, 2);
  std::memcpy(p.data() + 6, &reserved, 2);
  return p;
}

// `size` bytes that differ with `seed` and along the message (a shifted or torn copy shows).
std::string Pattern(size_t size, size_t seed) {
  std::string m(size, '\0');
  for (size_t k = 0; k < size; ++k) m[k] = static_cast<char>(seed * 7 + k * 131 + (k >> 9));
  return m;
}

ino_t Inode(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---------------------------------------------------------------------------------------------------
// Both transports.

TEST_P(ConnectionTest, DuplexBytesBothWays) {
  auto [a, b] = MakePipe();
  EXPECT_EQ(a.transport(), GetParam());
  EXPECT_EQ(b.transport(), GetParam());
  EXPECT_EQ(a.is_socket(), GetParam() == kSocket);
  EXPECT_TRUE(a.readable() && a.writable() && b.readable() && b.writable());
  ASSERT_TRUE(a.SendBytes("hello").ok());
  ASSERT_TRUE(b.SendBytes("world").ok());
  EXPECT_EQ(*b.RecvBytes(), "hello");
  EXPECT_EQ(*a.RecvBytes(), "world");
}

TEST_P(ConnectionTest, SendBytesOffsetAndSize) {
  auto [a, b] = MakePipe();
  const std::string s = "0123456789";
  ASSERT_TRUE(a.SendBytes(AsBytes(s), 2, 3).ok());
  ASSERT_TRUE(a.SendBytes(AsBytes(s), 7).ok());
  EXPECT_EQ(*b.RecvBytes(), "234");
  EXPECT_EQ(*b.RecvBytes(), "789");
  EXPECT_EQ(a.SendBytes(AsBytes(s), 11).code(), kInvalidArgument);
  absl::Status s2 = a.SendBytes(AsBytes(s), 5, 6);
  EXPECT_EQ(s2.code(), kInvalidArgument);
  EXPECT_THAT(s2.message(), HasSubstr("offset 5 + size 6"));
}

TEST_P(ConnectionTest, OneWayPipeDirections) {
  auto [r, w] = MakePipe(/*duplex=*/false);
  EXPECT_EQ(r.transport(), GetParam());
  EXPECT_FALSE(r.is_socket());
  EXPECT_TRUE(r.readable());
  EXPECT_FALSE(r.writable());
  EXPECT_FALSE(w.readable());
  EXPECT_TRUE(w.writable());
  absl::Status s = r.SendBytes("x");
  EXPECT_EQ(s.code(), kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("read-only"));
  EXPECT_EQ(w.RecvBytes().status().code(), kFailedPrecondition);
  EXPECT_EQ(w.Poll().status().code(), kFailedPrecondition);
  EXPECT_EQ(w.RecvFd().status().code(), kFailedPrecondition);
  ASSERT_TRUE(w.SendBytes("one way").ok());
  EXPECT_EQ(*r.RecvBytes(), "one way");
  ASSERT_TRUE(w.Send(int64_t{42}).ok());
  EXPECT_EQ(*r.Recv<int64_t>(), 42);
  // Descriptors cannot travel over a one-way pipe, whichever the transport.
  EXPECT_EQ(w.SendFd(0).code(), kFailedPrecondition);
  absl::Status fd_status = w.Send(FdMessage{"x", PassedFd{0}, PassedFd{1}});
  EXPECT_EQ(fd_status.code(), kFailedPrecondition);
  EXPECT_THAT(fd_status.message(), HasSubstr("one-way pipe"));
  EXPECT_FALSE(*r.Poll());  // nothing was sent by the refused calls
}

TEST_P(ConnectionTest, EmptyMessagesAndNoMergingOrSplitting) {
  for (bool duplex : {true, false}) {
    SCOPED_TRACE(duplex ? "duplex" : "one-way");
    std::pair<Connection, Connection> ends = MakePipe(duplex);
    Connection& rx = ends.first;
    Connection& tx = ends.second;
    ASSERT_TRUE(tx.SendBytes("").ok());
    std::vector<std::string> sent;
    for (int i = 0; i < 200; ++i) {
      sent.push_back(
          std::string(static_cast<size_t>(i * 37 % 300), static_cast<char>('a' + i % 26)));
    }
    TestChild child([&] {
      for (const std::string& m : sent) {
        if (!tx.SendBytes(m).ok()) return 1;
      }
      return tx.SendBytes("").ok() ? 0 : 2;
    });
    EXPECT_EQ(*rx.RecvBytes(), "");
    for (const std::string& m : sent) {
      absl::StatusOr<std::string> got = rx.RecvBytes();
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(*got, m);
    }
    EXPECT_EQ(*rx.RecvBytes(), "");
    EXPECT_EQ(child.Wait(), 0);
  }
}

// An empty message is a message for every receive call: RecvBytes gives "", RecvBytesInto 0 bytes
// (at any offset), and Recv<T> refuses it as a malformed frame (kInvalidArgument) and stays usable.
TEST_P(ConnectionTest, EmptyMessageThroughEveryReceiveCall) {
  auto [a, b] = MakePipe();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(a.SendBytes("").ok());
  ASSERT_TRUE(a.Send(std::string("after")).ok());
  EXPECT_EQ(*b.RecvBytes(), "");
  std::vector<uint8_t> buffer(4, '.');
  absl::StatusOr<size_t> n = b.RecvBytesInto(absl::MakeSpan(buffer));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0u);
  n = b.RecvBytesInto(absl::MakeSpan(buffer), buffer.size());  // no room at all, none needed
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(std::string(buffer.begin(), buffer.end()), "....");
  absl::StatusOr<std::string> typed = b.Recv<std::string>();
  EXPECT_EQ(typed.status().code(), kInvalidArgument) << typed.status();
  EXPECT_FALSE(b.closed());
  EXPECT_EQ(*b.Recv<std::string>(), "after");
}

// Sizes on both sides of the socket receive buffer (64 KiB), the one-write limit (1 KiB) and the
// shared-memory record limits (a quarter ring, 64 KiB, is one record; more travels in parts), so
// the receiver switches between buffered prefixes and prefixes read alone after large bodies,
// through every receive call, with descriptors on a message that follows a large one.
TEST_P(ConnectionTest, MixedSizesAroundTheReceiveBufferNeverMergeOrSplit) {
  const std::vector<size_t> sizes = {100000,  5,      0,    70000,   65536,   65535,  65537, 3,
                                     1 << 20, 8,      1024, 1025,    200000,  131072, 0,     1000,
                                     65536,   100000, 7,    1 << 20, 1 << 20, 64};
  for (bool duplex : {true, false}) {
    SCOPED_TRACE(duplex ? "duplex" : "one-way");
    std::pair<Connection, Connection> ends = MakePipe(duplex);
    Connection& rx = ends.first;
    Connection& tx = ends.second;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    TestChild child([&] {
      rx.Close();
      for (size_t i = 0; i < sizes.size(); ++i) {
        const std::string m = Pattern(sizes[i], i);
        const absl::Status s = i % 3 == 2 ? tx.Send(m) : tx.SendBytes(m);
        if (!s.ok()) return 1;
        // A descriptor right behind a large body, read by a receiver reading that prefix alone.
        if (duplex && i == 4 && !tx.SendFd(fds[0]).ok()) return 2;
      }
      return 0;
    });
    tx.Close();
    std::vector<uint8_t> buffer((1 << 20) + 16);
    for (size_t i = 0; i < sizes.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("message ", i, " of ", sizes[i], " bytes"));
      const std::string want = Pattern(sizes[i], i);
      if (i % 3 == 2) {  // typed
        absl::StatusOr<std::string> got = rx.Recv<std::string>();
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_TRUE(*got == want);
      } else if (i % 2 == 0) {
        absl::StatusOr<std::string> got = rx.RecvBytes();
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_TRUE(*got == want);
      } else {
        absl::StatusOr<size_t> n = rx.RecvBytesInto(absl::MakeSpan(buffer), 16);
        ASSERT_TRUE(n.ok()) << n.status();
        ASSERT_EQ(*n, sizes[i]);
        EXPECT_EQ(std::memcmp(buffer.data() + 16, want.data(), want.size()), 0);
      }
      if (duplex && i == 4) {
        absl::StatusOr<int> fd = rx.RecvFd();
        ASSERT_TRUE(fd.ok()) << fd.status();
        ASSERT_EQ(::write(fds[1], "z", 1), 1);
        char c = 0;
        EXPECT_EQ(::read(*fd, &c, 1), 1);
        EXPECT_EQ(c, 'z');
        ::close(*fd);
      }
    }
    EXPECT_EQ(rx.RecvBytes().status().code(), kOutOfRange);
    EXPECT_EQ(child.Wait(), 0);
    ::close(fds[0]);
    ::close(fds[1]);
  }
}

TEST_P(ConnectionTest, SixteenMiBRoundTripAcrossFork) {
  for (bool typed : {false, true}) {
    SCOPED_TRACE(typed ? "typed" : "bytes");
    std::pair<Connection, Connection> ends = MakePipe();
    Connection& parent = ends.first;
    Connection& child_end = ends.second;
    const std::string big = Pattern(16 << 20, 1);
    TestChild child([&] {
      parent.Close();
      if (typed) {
        absl::StatusOr<std::string> got = child_end.Recv<std::string>();
        if (!got.ok()) return 1;
        return child_end.Send(*got).ok() ? 0 : 2;
      }
      absl::StatusOr<std::string> got = child_end.RecvBytes();
      if (!got.ok()) return 1;
      return child_end.SendBytes(*got).ok() ? 0 : 2;
    });
    child_end.Close();
    if (typed) {
      ASSERT_TRUE(parent.Send(big).ok());
      absl::StatusOr<std::string> back = parent.Recv<std::string>();
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_TRUE(*back == big);
    } else {
      ASSERT_TRUE(parent.SendBytes(big).ok());
      absl::StatusOr<std::string> back = parent.RecvBytes();
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_TRUE(*back == big);
    }
    EXPECT_EQ(child.Wait(), 0);
  }
}

// The shared-memory rings hold 256 KiB: a quarter ring (64 KiB) is the largest message that is
// one record, and 1 MiB and 16 MiB are many rings' worth, written while the receiver reads. Every
// receive call, with descriptors attached to the large messages too.
TEST_P(ConnectionTest, MessagesLargerThanTheRingArriveWholeFromAForkedChild) {
  const std::vector<size_t> sizes = {65536 - 16,      65536,   65537,   256 << 10,
                                     (256 << 10) + 1, 1 << 20, 16 << 20};
  std::pair<Connection, Connection> ends = MakePipe();
  Connection& rx = ends.first;
  Connection& tx = ends.second;
  int data[2];
  ASSERT_EQ(::pipe2(data, O_CLOEXEC), 0);
  TestChild child([&] {
    rx.Close();
    for (size_t i = 0; i < sizes.size(); ++i) {
      const std::string m = Pattern(sizes[i], i);
      if (!tx.SendBytes(m).ok()) return 1;
      if (!tx.Send(m).ok()) return 2;
      if (!tx.Send(FdMessage{m, PassedFd{data[0]}, PassedFd{data[1]}}).ok()) return 3;
    }
    return 0;
  });
  tx.Close();
  std::vector<uint8_t> buffer(16 << 20);
  for (size_t i = 0; i < sizes.size(); ++i) {
    SCOPED_TRACE(absl::StrCat(sizes[i], "-byte messages"));
    const std::string want = Pattern(sizes[i], i);
    if (i % 2 == 0) {
      absl::StatusOr<std::string> got = rx.RecvBytes();
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_TRUE(*got == want);
    } else {
      absl::StatusOr<size_t> n = rx.RecvBytesInto(absl::MakeSpan(buffer));
      ASSERT_TRUE(n.ok()) << n.status();
      ASSERT_EQ(*n, want.size());
      EXPECT_EQ(std::memcmp(buffer.data(), want.data(), want.size()), 0);
    }
    absl::StatusOr<std::string> typed = rx.Recv<std::string>();
    ASSERT_TRUE(typed.ok()) << typed.status();
    EXPECT_TRUE(*typed == want);
    absl::StatusOr<FdMessage> with_fds = rx.Recv<FdMessage>();
    ASSERT_TRUE(with_fds.ok()) << with_fds.status();
    EXPECT_TRUE(with_fds->label == want);
    EXPECT_EQ(Inode(with_fds->first.fd), Inode(data[0]));
    EXPECT_EQ(Inode(with_fds->second.fd), Inode(data[1]));
    ::close(with_fds->first.fd);
    ::close(with_fds->second.fd);
  }
  EXPECT_EQ(rx.RecvBytes().status().code(), kOutOfRange);
  EXPECT_EQ(child.Wait(), 0);
  ::close(data[0]);
  ::close(data[1]);
}

TEST_P(ConnectionTest, RecvBytesMaxLengthClosesTheConnection) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.SendBytes("0123456789").ok());
  absl::StatusOr<std::string> got = b.RecvBytes(4);
  EXPECT_EQ(got.status().code(), kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr("10 bytes is longer than maxlength 4"));
  EXPECT_TRUE(b.closed());
  EXPECT_EQ(b.RecvBytes().status().code(), kFailedPrecondition);
}

TEST_P(ConnectionTest, RecvBytesInto) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.SendBytes("abc").ok());
  ASSERT_TRUE(a.SendBytes("too long for it").ok());
  ASSERT_TRUE(a.SendBytes("ok").ok());
  std::vector<uint8_t> buf(6, '.');
  absl::StatusOr<size_t> n = b.RecvBytesInto(absl::MakeSpan(buf), 2);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 3u);
  EXPECT_EQ(std::string(buf.begin(), buf.end()), "..abc.");
  std::string whole;
  n = b.RecvBytesInto(absl::MakeSpan(buf), 0, &whole);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(n.status().message(), HasSubstr("15 bytes does not fit the 6 bytes"));
  EXPECT_EQ(whole, "too long for it");
  // The short buffer consumed exactly that message; the next one is intact.
  n = b.RecvBytesInto(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf.begin(), buf.begin() + 2), "ok");
  EXPECT_EQ(b.RecvBytesInto(absl::MakeSpan(buf), 7).status().code(), kInvalidArgument);
}

struct Point {
  int32_t x;
  int32_t y;
};
MP_FIELDS(Point, x, y);

TEST_P(ConnectionTest, TypedMessagesAndWrongType) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.Send(Point{3, 4}).ok());
  ASSERT_TRUE(a.Send(std::vector<int32_t>{1, 2}).ok());
  ASSERT_TRUE(a.Send(std::string("after")).ok());
  absl::StatusOr<Point> p = b.Recv<Point>();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->x, 3);
  EXPECT_EQ(p->y, 4);
  absl::StatusOr<std::string> wrong = b.Recv<std::string>();
  EXPECT_EQ(wrong.status().code(), kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("vec<i32>"));
  EXPECT_THAT(wrong.status().message(), HasSubstr("'str' was asked for"));
  // The wrong-type message was consumed; the connection is still usable.
  EXPECT_EQ(*b.Recv<std::string>(), "after");
  // A typed message received as bytes is its frame; raw bytes received as typed are refused.
  ASSERT_TRUE(a.Send(int32_t{7}).ok());
  absl::StatusOr<std::string> frame = b.RecvBytes();
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(*DecodeFrame<int32_t>(*frame), 7);
  ASSERT_TRUE(a.SendBytes("not a frame at all").ok());
  EXPECT_EQ(b.Recv<int32_t>().status().code(), kInvalidArgument);
  ASSERT_TRUE(a.Send(int32_t{8}).ok());
  EXPECT_EQ(*b.Recv<int32_t>(), 8);
}

// A message that does not fit the ring (or the socket buffer) is in flight, its sender blocked:
// Poll says it can be received (its first bytes are there) and reads none of it.
TEST_P(ConnectionTest, PollNeverConsumesPartOfAMessage) {
  {
    std::pair<Connection, Connection> ends = MakePipe();
    Connection& tx = ends.first;
    Connection& rx = ends.second;
    EXPECT_FALSE(*rx.Poll());
    EXPECT_FALSE(*rx.Poll(absl::Milliseconds(5)));
    const std::string big = Pattern(1 << 20, 5);
    TestChild child([&] {
      rx.Close();
      return tx.SendBytes(big).ok() && tx.SendBytes("after").ok() ? 0 : 1;
    });
    tx.Close();
    ASSERT_GT(child.pid(), 0);
    ASSERT_TRUE(AwaitSleep(child.pid())) << "the sender ended: its message fitted";
    EXPECT_TRUE(*rx.Poll());
    EXPECT_TRUE(*rx.Poll(absl::InfiniteDuration()));
    EXPECT_TRUE(*rx.Poll(kLong));
    absl::StatusOr<std::string> got = rx.RecvBytes();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == big);
    EXPECT_TRUE(*rx.Poll(kLong));
    EXPECT_EQ(*rx.RecvBytes(), "after");
    EXPECT_EQ(child.Wait(), 0);
  }
  // Two messages queued together are two messages, and Poll sees the second one.
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.SendBytes("one").ok());
  ASSERT_TRUE(a.SendBytes("two").ok());
  EXPECT_TRUE(*b.Poll(absl::InfiniteDuration()));
  EXPECT_EQ(*b.RecvBytes(), "one");
  EXPECT_TRUE(*b.Poll());
  EXPECT_EQ(*b.RecvBytes(), "two");
  EXPECT_FALSE(*b.Poll());
}

// Poll(timeout) is false once its timeout has passed, and true as soon as a message or the end of
// file arrives from another process that sends after Poll began: for the shared-memory transport
// once while the receiver sleeps in its first (futex) stage, most likely, and once it has moved on
// to poll(2) on the side socket.
TEST_P(ConnectionTest, PollTimesOutThenSeesAMessageAndEndOfFileFromAnotherProcess) {
  std::pair<Connection, Connection> ends = MakePipe();
  Connection& mine = ends.first;
  Connection& theirs = ends.second;
  for (absl::Duration timeout : {absl::ZeroDuration(), absl::Milliseconds(1), absl::Milliseconds(3),
                                 absl::Milliseconds(30)}) {
    SCOPED_TRACE(absl::FormatDuration(timeout));
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<bool> ready = mine.Poll(timeout);
    ASSERT_TRUE(ready.ok()) << ready.status();
    EXPECT_FALSE(*ready);
    EXPECT_GE(SecondsSince(start), absl::ToDoubleSeconds(timeout));
  }
  TestPipe next;  // parent -> child: "the last one arrived, send the next"
  const pid_t parent = ::getpid();
  TestChild child([&, parent] {
    mine.Close();
    next.CloseWrite();
    if (!AwaitSleep(parent)) return 90;
    if (!theirs.SendBytes("first").ok()) return 1;
    if (next.Receive() != 'x') return 2;
    if (!AwaitSleep(parent, /*in_poll=*/true)) return 90;
    if (!theirs.SendBytes("second").ok()) return 3;
    if (next.Receive() != 'x') return 4;
    if (!AwaitSleep(parent, /*in_poll=*/true)) return 90;
    return 0;  // the end of file: this process ends with its end open
  });
  theirs.Close();
  next.CloseRead();
  for (const char* want : {"first", "second"}) {
    SCOPED_TRACE(want);
    absl::StatusOr<bool> ready = mine.Poll(kLong);
    ASSERT_TRUE(ready.ok()) << ready.status();
    ASSERT_TRUE(*ready);
    EXPECT_TRUE(*mine.Poll());
    EXPECT_EQ(*mine.RecvBytes(), want);
    ASSERT_TRUE(next.Send());
  }
  absl::StatusOr<bool> eof = mine.Poll(kLong);
  ASSERT_TRUE(eof.ok()) << eof.status();
  EXPECT_TRUE(*eof);
  EXPECT_EQ(mine.RecvBytes().status().code(), kOutOfRange);
  EXPECT_EQ(child.Wait(), 0);
}

TEST_P(ConnectionTest, EndOfFileBetweenMessages) {
  {
    auto [a, b] = MakePipe();
    ASSERT_TRUE(a.SendBytes("last").ok());
    a.Close();
    EXPECT_EQ(*b.RecvBytes(), "last");
    EXPECT_TRUE(*b.Poll());  // end of file is "ready"
    absl::StatusOr<std::string> eof = b.RecvBytes();
    EXPECT_EQ(eof.status().code(), kOutOfRange);
    EXPECT_THAT(eof.status().message(), HasSubstr("end of file"));
    EXPECT_EQ(b.Recv<int>().status().code(), kOutOfRange);
    EXPECT_EQ(b.RecvBytes().status().code(), kOutOfRange);  // and stays so
    EXPECT_TRUE(*b.Poll(kLong));
  }
  {
    auto [r, w] = MakePipe(false);
    w.Close();
    EXPECT_EQ(r.RecvBytes().status().code(), kOutOfRange);
  }
}

// A peer killed while it is blocked in the middle of a message (16 MiB: far more than a ring or a
// socket buffer holds) leaves the receiver a message it cannot complete: kDataLoss, and the
// connection closes itself.
TEST_P(ConnectionTest, PeerKilledInTheMiddleOfAMessageIsDataLossThenClosed) {
  const std::string big = Pattern(16 << 20, 2);
  std::vector<uint8_t> buffer(big.size());
  for (int how : {0, 1, 2}) {
    SCOPED_TRACE(how == 0 ? "RecvBytes" : how == 1 ? "RecvBytesInto" : "Recv<std::string>");
    std::pair<Connection, Connection> ends = MakePipe();
    Connection& rx = ends.first;
    Connection& tx = ends.second;
    TestChild child([&] {
      rx.Close();
      return (how == 2 ? tx.Send(big) : tx.SendBytes(big)).ok() ? 0 : 1;
    });
    tx.Close();
    ASSERT_GT(child.pid(), 0);
    ASSERT_TRUE(AwaitSleep(child.pid())) << "the sender ended: its message fitted";
    EXPECT_TRUE(*rx.Poll());  // its first bytes are there
    child.Kill();
    EXPECT_EQ(child.Wait(), 128 + SIGKILL);
    absl::Status s;
    if (how == 0) {
      s = rx.RecvBytes().status();
    } else if (how == 1) {
      s = rx.RecvBytesInto(absl::MakeSpan(buffer)).status();
    } else {
      s = rx.Recv<std::string>().status();
    }
    EXPECT_EQ(s.code(), kDataLoss) << s;
    EXPECT_THAT(s.message(), HasSubstr("in the middle of a"));
    EXPECT_TRUE(rx.closed());
    EXPECT_EQ(rx.RecvBytes().status().code(), kFailedPrecondition);
    EXPECT_EQ(rx.Poll().status().code(), kFailedPrecondition);
  }
}

// A peer process that ends without closing its end (the kernel closes it) is end of file to a Recv
// blocked on it, within moments (the shared-memory receiver checks for the hang-up after its
// futex stage, and its poll(2) stage sees it at once). Both stages are tried.
TEST_P(ConnectionTest, PeerExitingWithoutClosingIsPromptEndOfFileToABlockedRecv) {
  for (bool in_poll : {false, true}) {
    SCOPED_TRACE(in_poll ? "receiver asleep in poll(2)" : "receiver asleep");
    std::pair<Connection, Connection> ends = MakePipe();
    Connection& mine = ends.first;
    Connection& theirs = ends.second;
    const pid_t parent = ::getpid();
    TestChild child([&, parent] {
      mine.Close();
      if (!theirs.SendBytes("before").ok()) return 1;
      // The parent has received "before" and is on its way into the next Recv.
      absl::StatusOr<std::string> ack = theirs.RecvBytes();
      if (!ack.ok() || *ack != "ack") return 2;
      // A socket receiver sleeps in recvmsg(2), never in poll(2).
      if (!AwaitSleep(parent, in_poll && !theirs.is_socket())) return 90;
      ::_exit(0);  // `theirs` is still open: the kernel closes it with the process
    });
    theirs.Close();
    EXPECT_EQ(*mine.RecvBytes(), "before");
    ASSERT_TRUE(mine.SendBytes("ack").ok());
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::string> eof = mine.RecvBytes();
    const double waited = SecondsSince(start);
    EXPECT_EQ(eof.status().code(), kOutOfRange) << eof.status();
    EXPECT_LT(waited, 5.0) << "end of file took " << waited << " s after the peer exited";
    EXPECT_EQ(child.Wait(), 0);
    EXPECT_EQ(mine.RecvBytes().status().code(), kOutOfRange);
    EXPECT_TRUE(*mine.Poll());
  }
}

// End of file comes once every copy of the other end is closed: a fork child holds copies of both
// ends, and neither its closing of its copy of one end, nor the parent's closing of its own, ends
// the stream while the other copy is open.
TEST_P(ConnectionTest, ForkChildWithBothEndsSeesEndOfFileOnlyWhenTheLastCopyCloses) {
  {
    // The child closes its copy of `a` first; the parent's copy still talks to it.
    std::pair<Connection, Connection> ends = MakePipe();
    Connection& a = ends.first;
    Connection& b = ends.second;
    TestPipe closed_its_copy;
    TestChild child([&] {
      closed_its_copy.CloseRead();
      a.Close();
      absl::StatusOr<bool> ready = b.Poll();
      if (!ready.ok() || *ready) return 1;  // no end of file: the parent's copy is open
      if (!b.SendBytes("a copy of a closed").ok()) return 2;
      if (!closed_its_copy.Send()) return 3;
      absl::StatusOr<std::string> m = b.RecvBytes();
      if (!m.ok() || *m != "from the parent") return 4;
      absl::StatusOr<bool> eof_ready = b.Poll(kLong);  // the parent closes the last copy
      if (!eof_ready.ok() || !*eof_ready) return 5;
      return b.RecvBytes().status().code() == kOutOfRange ? 0 : 6;
    });
    closed_its_copy.CloseWrite();
    ASSERT_EQ(closed_its_copy.Receive(), 'x');
    EXPECT_EQ(*a.RecvBytes(), "a copy of a closed");
    ASSERT_TRUE(a.SendBytes("from the parent").ok());
    a.Close();
    EXPECT_EQ(child.Wait(), 0);
  }
  {
    // The parent closes its copy of `a` first; the child's own copy keeps the stream open until
    // the child closes it too.
    std::pair<Connection, Connection> ends = MakePipe();
    Connection& a = ends.first;
    Connection& b = ends.second;
    TestPipe parent_closed;
    TestChild child([&] {
      parent_closed.CloseWrite();
      if (parent_closed.Receive() != 'x') return 1;
      absl::StatusOr<std::string> m = b.RecvBytes();
      if (!m.ok() || *m != "sent before closing") return 2;
      absl::StatusOr<bool> ready = b.Poll(absl::Milliseconds(20));
      if (!ready.ok() || *ready) return 3;  // this process's copy of `a` is still open
      if (!a.SendBytes("from the child's copy").ok()) return 4;
      absl::StatusOr<std::string> own = b.RecvBytes();
      if (!own.ok() || *own != "from the child's copy") return 5;
      a.Close();  // the last copy
      absl::StatusOr<bool> eof_ready = b.Poll(kLong);
      if (!eof_ready.ok() || !*eof_ready) return 6;
      return b.RecvBytes().status().code() == kOutOfRange ? 0 : 7;
    });
    parent_closed.CloseRead();
    ASSERT_TRUE(a.SendBytes("sent before closing").ok());
    a.Close();
    b.Close();
    ASSERT_TRUE(parent_closed.Send());
    EXPECT_EQ(child.Wait(), 0);
  }
}

// Send to a peer whose every copy is closed is kAborted ("broken pipe"), every time: the peer does
// not come back. No SIGPIPE is raised or left pending.
TEST_P(ConnectionTest, SendToClosedPeerIsAbortedWithoutSigpipe) {
  for (bool duplex : {true, false}) {
    SCOPED_TRACE(duplex ? "duplex" : "one-way");
    auto [r, w] = MakePipe(duplex);
    r.Close();
    for (int i = 0; i < 20; ++i) {
      absl::Status s = w.SendBytes("nobody listens");
      ASSERT_EQ(s.code(), kAborted) << "send #" << i << ": " << s;
      EXPECT_THAT(s.message(), HasSubstr("broken pipe"));
    }
    EXPECT_EQ(w.Send(std::string("typed")).code(), kAborted);
    if (duplex) {
      EXPECT_EQ(w.SendFd(0).code(), kAborted);
    }
    // No SIGPIPE was left pending either.
    sigset_t pending;
    sigpending(&pending);
    EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
  }
  if (GetParam() == kSocket) {
    // Documented: a writable pipe(2) Connection leaves SIGPIPE ignored (it was SIG_DFL here).
    struct sigaction current;
    ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &current), 0);
    EXPECT_EQ(current.sa_handler, SIG_IGN);
  }
}

// Also when SIGPIPE is at its default (which kills): duplex ends of either transport and the
// shared-memory transport's one-way ends never raise it, and leave its disposition alone. (A
// one-way pipe(2) end relies on SIGPIPE being ignored, connection.h: not tried at SIG_DFL.)
TEST_P(ConnectionTest, SendToClosedPeerNeverRaisesSigpipeAtItsDefault) {
  const ConnectionTransport transport = GetParam();
  TestChild child([transport] {
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    if (::sigaction(SIGPIPE, &dfl, nullptr) != 0) return 1;
    for (bool duplex : {true, false}) {
      if (!duplex && transport == kSocket) continue;
      absl::StatusOr<std::pair<Connection, Connection>> p = Pipe(duplex, transport);
      if (!p.ok()) return 2;
      p->first.Close();
      if (p->second.SendBytes("x").code() != kAborted) return 3;
      // Whatever these return (SendToClosedPeerIsAbortedWithoutSigpipe checks that), they must
      // not kill: a message with a descriptor goes to the side socket of a shared-memory end.
      (void)p->second.SendBytes("y");
      if (duplex) (void)p->second.SendFd(0);
      (void)p->second.Send(std::string(300000, 'z'));
      struct sigaction now;
      if (::sigaction(SIGPIPE, nullptr, &now) != 0 || now.sa_handler != SIG_DFL) return 4;
    }
    return 0;
  });
  EXPECT_EQ(child.Wait(), 0) << "128 + " << SIGPIPE << " is death by SIGPIPE";
}

// A peer process killed while this process keeps sending to it (small messages, paced so that its
// ring or socket buffer never fills): once the peer has been reaped, Send is kAborted, at once,
// whenever the sender last found the peer alive (a socket says EPIPE to every send after the
// peer's end is gone). Twenty trials (a check for a hang-up that happens to come due right then
// would hide a sender that checks only now and then).
TEST_P(ConnectionTest, SendAfterThePeerProcessWasReapedIsAborted) {
  for (int trial = 0; trial < 20; ++trial) {
    SCOPED_TRACE(absl::StrCat("trial ", trial));
    std::pair<Connection, Connection> ends = MakePipe();
    Connection& mine = ends.first;
    Connection& theirs = ends.second;
    TestChild child([&] {
      mine.Close();
      for (;;) {
        if (!theirs.RecvBytes().ok()) return 1;
      }
    });
    theirs.Close();
    std::atomic<bool> reaped{false};
    std::atomic<int> sent{0};  // Sends that found the peer alive; -1 after one that did not
    absl::Status after;
    std::thread sender([&] {
      while (!reaped.load()) {
        // OK while the peer lives, kAborted once it is seen gone.
        if (mine.SendBytes("x").ok()) {
          if (sent.load() >= 0) sent.fetch_add(1);
        } else {
          sent = -1;
        }
        const auto next = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
        while (std::chrono::steady_clock::now() < next) {
        }
      }
      after = mine.SendBytes("after the peer was reaped");
      // A shared-memory end checks for a dead peer's hang-up at least every millisecond, not on
      // every Send (connection.h, "Two transports" (3)): a Send within that window may succeed.
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      while (GetParam() == ConnectionTransport::kSharedMemory && after.ok() &&
             std::chrono::steady_clock::now() < give_up) {
        after = mine.SendBytes("after the peer was reaped");
      }
    });
    // The peer dies while the sender is sending to it, not before its first Send.
    while (sent.load() >= 0 && sent.load() < 3) {
    }
    EXPECT_GE(sent.load(), 3) << "a Send to the live peer failed";
    child.Kill();
    EXPECT_EQ(child.Wait(), 128 + SIGKILL);
    reaped = true;
    sender.join();
    EXPECT_EQ(after.code(), kAborted) << after;
  }
}

// The peer closes (or dies) while the sender is blocked on a message that does not fit: kAborted.
TEST_P(ConnectionTest, PeerGoingAwayWhileTheSenderIsBlockedIsAborted) {
  const std::string big = Pattern(4 << 20, 4);
  for (bool killed : {false, true}) {
    SCOPED_TRACE(killed ? "peer killed" : "peer closes");
    std::pair<Connection, Connection> ends = MakePipe();
    Connection& tx = ends.first;
    Connection& rx = ends.second;
    const pid_t parent = ::getpid();
    const pid_t parent_thread = static_cast<pid_t>(::syscall(SYS_gettid));
    TestPipe never;
    TestChild child([&, parent, killed] {
      tx.Close();
      never.CloseWrite();
      if (killed) {
        never.Receive();  // blocks until killed
        return 1;
      }
      if (!AwaitSleep(parent)) return 90;  // blocked: its message did not fit
      rx.Close();  // the last copy: the parent closed its own before sending
      return 0;
    });
    rx.Close();
    never.CloseRead();
    ASSERT_GT(child.pid(), 0);
    std::thread killer;
    std::atomic<bool> returned{false};
    if (killed) {
      killer = std::thread([&] {
        while (!returned.load() && !IsSleeping(parent_thread)) {
        }
        child.Kill();
      });
    }
    absl::Status s = tx.SendBytes(big);
    returned = true;
    if (killer.joinable()) killer.join();
    EXPECT_EQ(s.code(), kAborted) << s;
    EXPECT_EQ(child.Wait(), killed ? 128 + SIGKILL : 0);
  }
}

TEST_P(ConnectionTest, GarbageFrameInAWellFormedMessageFailsOnlyThatMessage) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.SendBytes(std::string(16, '\xff')).ok());
  ASSERT_TRUE(a.Send(int16_t{5}).ok());
  EXPECT_EQ(b.Recv<int16_t>().status().code(), kInvalidArgument);
  EXPECT_EQ(*b.Recv<int16_t>(), 5);
  EXPECT_FALSE(b.closed());
}

TEST_P(ConnectionTest, MaxMessageSize) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.set_max_message_size(8).ok());
  absl::Status s = a.SendBytes("123456789");
  EXPECT_EQ(s.code(), kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("9 bytes exceeds the max message size of 8"));
  EXPECT_EQ(a.Send(std::string("long enough string")).code(), kInvalidArgument);
  EXPECT_EQ(a.set_max_message_size(0).code(), kInvalidArgument);
  ASSERT_TRUE(a.SendBytes("12345678").ok());
  EXPECT_EQ(*b.RecvBytes(), "12345678");
}

// A message above the receiver's own max message size (an honest peer with a larger one) is
// refused unread, and the connection closes itself.
TEST_P(ConnectionTest, MessageAboveTheReceiversMaxMessageSizeCloses) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(b.set_max_message_size(1024).ok());
  ASSERT_TRUE(a.SendBytes(std::string(1025, 'x')).ok());
  absl::StatusOr<std::string> got = b.RecvBytes();
  EXPECT_EQ(got.status().code(), kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr("exceeds the max message size of 1024"));
  EXPECT_TRUE(b.closed());
  EXPECT_EQ(b.RecvBytes().status().code(), kFailedPrecondition);
}

TEST_P(ConnectionTest, SendFdRecvFdAcrossFork) {
  std::pair<Connection, Connection> ends = MakePipe();
  Connection& parent = ends.first;
  Connection& child_end = ends.second;
  int data[2];
  ASSERT_EQ(::pipe(data), 0);
  TestChild child([&] {
    parent.Close();
    absl::StatusOr<int> fd = child_end.RecvFd();
    if (!fd.ok()) return 1;
    if ((::fcntl(*fd, F_GETFD) & FD_CLOEXEC) == 0) return 2;
    if (::write(*fd, "via fd", 6) != 6) return 3;
    ::close(*fd);
    return 0;
  });
  child_end.Close();
  ASSERT_TRUE(parent.SendFd(data[1]).ok());
  ::close(data[1]);
  char buf[16] = {};
  ASSERT_EQ(::read(data[0], buf, sizeof(buf)), 6);
  EXPECT_EQ(std::string(buf, 6), "via fd");
  EXPECT_EQ(child.Wait(), 0);
  ::close(data[0]);
  EXPECT_EQ(parent.SendFd(-1).code(), kInvalidArgument);
}

TEST_P(ConnectionTest, TypedMessagesCarryPassedFds) {
  auto [a, b] = MakePipe();
  int p1[2], p2[2];
  ASSERT_EQ(::pipe(p1), 0);
  ASSERT_EQ(::pipe(p2), 0);
  // Interleave plain and descriptor-carrying messages so descriptors must match their messages.
  ASSERT_TRUE(a.SendBytes("plain").ok());
  ASSERT_TRUE(a.Send(FdMessage{"two", PassedFd{p1[1]}, PassedFd{p2[1]}}).ok());
  ASSERT_TRUE(a.Send(FdMessage{"same twice", PassedFd{p1[1]}, PassedFd{p1[1]}}).ok());
  ASSERT_TRUE(a.SendBytes("plain again").ok());
  ::close(p1[1]);
  ::close(p2[1]);
  EXPECT_EQ(*b.RecvBytes(), "plain");
  absl::StatusOr<FdMessage> m = b.Recv<FdMessage>();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->label, "two");
  ASSERT_EQ(::write(m->first.fd, "1", 1), 1);
  ASSERT_EQ(::write(m->second.fd, "2", 1), 1);
  char c;
  ASSERT_EQ(::read(p1[0], &c, 1), 1);
  EXPECT_EQ(c, '1');
  ASSERT_EQ(::read(p2[0], &c, 1), 1);
  EXPECT_EQ(c, '2');
  ::close(m->first.fd);
  ::close(m->second.fd);
  absl::StatusOr<FdMessage> same = b.Recv<FdMessage>();
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->first.fd, same->second.fd);
  ::close(same->first.fd);
  EXPECT_EQ(*b.RecvBytes(), "plain again");
  // Every write end is closed now, so the read ends see end of file.
  EXPECT_EQ(::read(p1[0], &c, 1), 0);
  EXPECT_EQ(::read(p2[0], &c, 1), 0);
  ::close(p1[0]);
  ::close(p2[0]);
}

// Descriptors stay with their messages in order: many descriptor messages (more than the
// shared-memory receiver holds ahead, 16) queued before the receiver reads any, between plain,
// empty and larger messages; then a sender in another process racing the receiver.
TEST_P(ConnectionTest, DescriptorsTravelInOrderWithTheirMessagesEvenWhenQueued) {
  constexpr int kPipes = 40;
  int pipes[kPipes][2];
  for (auto& p : pipes) ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto label = [](int i) {
    return std::string(static_cast<size_t>(i % 5 == 4 ? 3000 : i), static_cast<char>('a' + i % 26));
  };
  {
    auto [a, b] = MakePipe();
    for (int i = 0; i < kPipes; ++i) {
      switch (i % 4) {
        case 0:
          ASSERT_TRUE(a.SendFd(pipes[i][1]).ok());
          break;
        case 1:
          ASSERT_TRUE(a.Send(FdMessage{label(i), PassedFd{pipes[i][1]},
                                       PassedFd{pipes[(i + 1) % kPipes][1]}})
                          .ok());
          break;
        case 2:
          ASSERT_TRUE(a.SendBytes(label(i)).ok());
          ASSERT_TRUE(a.SendFd(pipes[i][1]).ok());
          break;
        default:
          ASSERT_TRUE(a.SendBytes("").ok());
          ASSERT_TRUE(
              a.Send(FdMessage{label(i), PassedFd{pipes[i][1]}, PassedFd{pipes[i][1]}}).ok());
      }
    }
    ASSERT_TRUE(a.SendBytes("end").ok());
    for (int i = 0; i < kPipes; ++i) {
      SCOPED_TRACE(absl::StrCat("message ", i));
      if (i % 4 == 2) {
        EXPECT_TRUE(*b.RecvBytes() == label(i));
      }
      if (i % 4 == 3) {
        EXPECT_EQ(*b.RecvBytes(), "");
      }
      if (i % 4 == 0 || i % 4 == 2) {
        absl::StatusOr<int> fd = b.RecvFd();
        ASSERT_TRUE(fd.ok()) << fd.status();
        EXPECT_EQ(Inode(*fd), Inode(pipes[i][1]));
        ::close(*fd);
        continue;
      }
      absl::StatusOr<FdMessage> m = b.Recv<FdMessage>();
      ASSERT_TRUE(m.ok()) << m.status();
      EXPECT_TRUE(m->label == label(i));
      EXPECT_EQ(Inode(m->first.fd), Inode(pipes[i][1]));
      EXPECT_EQ(Inode(m->second.fd), Inode(pipes[i % 4 == 1 ? (i + 1) % kPipes : i][1]));
      ::close(m->first.fd);
      ::close(m->second.fd);
    }
    EXPECT_EQ(*b.RecvBytes(), "end");
    EXPECT_FALSE(*b.Poll());
  }
  {
    constexpr int kMessages = 300;
    std::pair<Connection, Connection> ends = MakePipe();
    Connection& rx = ends.first;
    Connection& tx = ends.second;
    TestChild child([&] {
      rx.Close();
      for (int i = 0; i < kMessages; ++i) {
        const int p = i % kPipes;
        const absl::Status s = i % 3 == 0
                                   ? tx.SendFd(pipes[p][1])
                                   : tx.Send(FdMessage{label(i), PassedFd{pipes[p][1]},
                                                       PassedFd{pipes[(p + 7) % kPipes][1]}});
        if (!s.ok()) return 1;
        if (i % 10 == 0 && !tx.SendBytes(label(i)).ok()) return 2;
      }
      return 0;
    });
    tx.Close();
    for (int i = 0; i < kMessages; ++i) {
      SCOPED_TRACE(absl::StrCat("message ", i));
      const int p = i % kPipes;
      if (i % 3 == 0) {
        absl::StatusOr<int> fd = rx.RecvFd();
        ASSERT_TRUE(fd.ok()) << fd.status();
        EXPECT_EQ(Inode(*fd), Inode(pipes[p][1]));
        ::close(*fd);
      } else {
        absl::StatusOr<FdMessage> m = rx.Recv<FdMessage>();
        ASSERT_TRUE(m.ok()) << m.status();
        EXPECT_TRUE(m->label == label(i));
        EXPECT_EQ(Inode(m->first.fd), Inode(pipes[p][1]));
        EXPECT_EQ(Inode(m->second.fd), Inode(pipes[(p + 7) % kPipes][1]));
        ::close(m->first.fd);
        ::close(m->second.fd);
      }
      if (i % 10 == 0) {
        EXPECT_TRUE(*rx.RecvBytes() == label(i));
      }
    }
    EXPECT_EQ(rx.RecvBytes().status().code(), kOutOfRange);
    EXPECT_EQ(child.Wait(), 0);
  }
  for (auto& p : pipes) {
    ::close(p[0]);
    ::close(p[1]);
  }
}

// A Connection travels inside a message over another one (its Codec), within this process: each
// transport's one-way write end, over each transport.
TEST_P(ConnectionTest, ConnectionTravelsOverAConnection) {
  for (ConnectionTransport inner : ::mp::testing::kAllTransports) {
    SCOPED_TRACE(absl::StrCat("passed end: ", ::mp::testing::TransportName(inner)));
    auto [a, b] = MakePipe();
    auto [inner_r, inner_w] = PipeOf(inner, false);
    ASSERT_TRUE(a.Send(inner_w).ok());
    inner_w.Close();
    absl::StatusOr<Connection> got = b.Recv<Connection>();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->transport(), inner);
    EXPECT_TRUE(got->writable());
    EXPECT_FALSE(got->readable());
    ASSERT_TRUE(got->SendBytes("through the passed end").ok());
    EXPECT_EQ(*inner_r.RecvBytes(), "through the passed end");
    got->Close();
    EXPECT_EQ(inner_r.RecvBytes().status().code(), kOutOfRange);
    // Without a descriptor transport a Connection does not encode into something usable.
    absl::StatusOr<Connection> plain = Decode<Connection>(Encode(inner_r));
    EXPECT_EQ(plain.status().code(), kFailedPrecondition);
  }
}

// An end (of this instance's transport; duplex and one-way) travels as a typed message over a
// Connection (of either transport) to a fork child that closed every copy it inherited: the copy
// that arrived is a working end, and the only one, so its process's exit is end of file.
TEST_P(ConnectionTest, AnEndSentToAnotherProcessIsAWorkingEndThere) {
  const ConnectionTransport transport = GetParam();
  for (ConnectionTransport carrier : ::mp::testing::kAllTransports) {
    for (bool duplex : {true, false}) {
      SCOPED_TRACE(absl::StrCat("over ", ::mp::testing::TransportName(carrier),
                                duplex ? ", duplex" : ", one-way"));
      std::pair<Connection, Connection> channel = PipeOf(carrier);
      std::pair<Connection, Connection> passed_pair = MakePipe(duplex);
      Connection& mine = passed_pair.first;  // one-way: the read end
      Connection& passed = passed_pair.second;
      TestChild child([&] {
        channel.first.Close();
        mine.Close();
        passed.Close();
        absl::StatusOr<Connection> got = channel.second.Recv<Connection>();
        if (!got.ok()) return 1;
        if (got->transport() != transport || !got->writable() || got->readable() != duplex) {
          return 2;
        }
        if (duplex) {
          absl::StatusOr<std::string> m = got->RecvBytes();
          if (!m.ok() || *m != "to the child") return 3;
        }
        return got->SendBytes("from the child").ok() ? 0 : 4;
      });
      channel.second.Close();
      ASSERT_TRUE(channel.first.Send(passed).ok());
      passed.Close();
      if (duplex) {
        ASSERT_TRUE(mine.SendBytes("to the child").ok());
      }
      absl::StatusOr<std::string> m = mine.RecvBytes();
      ASSERT_TRUE(m.ok()) << m.status();
      EXPECT_EQ(*m, "from the child");
      EXPECT_EQ(mine.RecvBytes().status().code(), kOutOfRange);
      EXPECT_EQ(child.Wait(), 0);
    }
  }
}

std::atomic<int> g_signals{0};
void CountSignal(int) { g_signals.fetch_add(1); }

// A signal that interrupts a blocked receive (no SA_RESTART) is retried: twice, the second time
// once the receiver sleeps in poll(2) (the shared-memory transport's second stage).
TEST_P(ConnectionTest, InterruptedReceiveIsRetried) {
  struct sigaction sa = {};
  sa.sa_handler = CountSignal;
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls fail with EINTR
  struct sigaction old;
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  g_signals = 0;
  std::pair<Connection, Connection> ends = MakePipe();
  Connection& a = ends.first;
  Connection& b = ends.second;
  const pid_t parent = ::getpid();
  const bool stages = shm();
  TestChild child([&, parent, stages] {
    b.Close();
    // A socket receiver sleeps in recvmsg(2); a shared-memory one on a futex, then in poll(2).
    if (!AwaitSleep(parent)) return 90;
    if (::kill(parent, SIGUSR1) != 0) return 1;
    if (!AwaitSleep(parent, stages)) return 90;
    if (::kill(parent, SIGUSR1) != 0) return 1;
    if (!AwaitSleep(parent, stages)) return 90;
    return a.Send(std::string("after the signals")).ok() ? 0 : 2;
  });
  absl::StatusOr<std::string> got = b.Recv<std::string>();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "after the signals");
  EXPECT_EQ(g_signals.load(), 2);
  EXPECT_EQ(child.Wait(), 0);
  ::sigaction(SIGUSR1, &old, nullptr);
}

// ---------------------------------------------------------------------------------------------------
// Wait.

class WaitTest : public ConnectionTest {};
INSTANTIATE_TEST_SUITE_P(Transports, WaitTest, ::mp::testing::AllTransports(),
                         ::mp::testing::TransportParamName());

TEST_P(WaitTest, ConnectionsAndSentinels) {
  auto [a1, b1] = MakePipe();
  std::pair<Connection, Connection> ends = MakePipe(false);
  Connection& a2 = ends.first;
  Connection& b2 = ends.second;
  int sentinel[2];
  ASSERT_EQ(::pipe2(sentinel, O_CLOEXEC), 0);
  absl::StatusOr<std::vector<size_t>> r = Wait({b1, a2, sentinel[0]}, absl::ZeroDuration());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->empty());
  // A child that holds the sentinel's write end: its exit makes the sentinel ready.
  TestChild child([&] {
    ::close(sentinel[0]);
    return b2.SendBytes("from child").ok() ? 0 : 1;
  });
  ::close(sentinel[1]);
  b2.Close();
  std::vector<size_t> seen;
  while (seen.size() < 2) {
    r = Wait({b1, a2, sentinel[0]});
    ASSERT_TRUE(r.ok()) << r.status();
    for (size_t i : *r) {
      if (i == 1) {
        absl::StatusOr<std::string> m = a2.RecvBytes();
        if (m.ok()) {
          EXPECT_EQ(*m, "from child");
          seen.push_back(1);
        }
      }
      if (i == 2 && std::find(seen.begin(), seen.end(), 2) == seen.end()) seen.push_back(2);
      EXPECT_NE(i, 0u);
    }
  }
  EXPECT_EQ(child.Wait(), 0);
  ASSERT_TRUE(a1.SendBytes("x").ok());
  r = Wait({b1, sentinel[0]}, absl::Seconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<size_t>{0, 1}));
  ::close(sentinel[0]);
  EXPECT_EQ(Wait({b1, sentinel[0]}).status().code(), kInvalidArgument);
  EXPECT_EQ(Wait({b2}).status().code(), kInvalidArgument);  // closed
  EXPECT_EQ(Wait({a1}, absl::ZeroDuration()).status().code(), absl::StatusCode::kOk);
  b1.Close();
  EXPECT_EQ(Wait({b1}).status().code(), kInvalidArgument);
  EXPECT_EQ(Wait({-1}).status().code(), kInvalidArgument);
}

// Wait returns every object that is ready, and refuses a closed descriptor, also when one of the
// Connections is ready before it polls (a shared-memory end with a message in its ring, a socket
// end with a message read ahead into its buffer).
TEST_P(WaitTest, ReportsEveryReadyObjectWhenAConnectionIsReadyAtOnce) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.SendBytes("one").ok());
  ASSERT_TRUE(a.SendBytes("two").ok());
  int raw[2];
  ASSERT_EQ(::pipe2(raw, O_CLOEXEC), 0);
  ASSERT_EQ(::write(raw[1], "r", 1), 1);
  // Both are ready: the message in the Connection and the byte in the pipe.
  absl::StatusOr<std::vector<size_t>> r = Wait({b, raw[0]}, kLong);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (std::vector<size_t>{0, 1}));
  // A socket end that received "one" holds "two" already (read ahead): ready with no poll(2).
  EXPECT_EQ(*b.RecvBytes(), "one");
  r = Wait({b, raw[0]}, kLong);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (std::vector<size_t>{0, 1}));
  // A descriptor that is not open is refused, ready Connection or not.
  ::close(raw[0]);
  ::close(raw[1]);
  EXPECT_EQ(Wait({b, raw[0]}, kLong).status().code(), kInvalidArgument);
  EXPECT_EQ(*b.RecvBytes(), "two");
  EXPECT_EQ(Wait({b, raw[0]}, kLong).status().code(), kInvalidArgument);
}

TEST_P(WaitTest, TimesOutEmptyAndSeesEndOfFile) {
  auto [a, b] = MakePipe();
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<size_t>> r = Wait({b}, absl::Milliseconds(30));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->empty());
  EXPECT_GE(SecondsSince(start), 0.030);
  a.Close();
  r = Wait({b}, kLong);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::vector<size_t>{0});
  EXPECT_EQ(b.RecvBytes().status().code(), kOutOfRange);
}

// One Wait over shared-memory ends, socket ends and a raw descriptor, woken each time by another
// process that writes to one of them after the Wait began (asleep in poll(2)): exactly that one is
// ready.
TEST(WaitMixTest, SharedMemorySocketAndRawDescriptorWakeAWaitFromAnotherProcess) {
  std::pair<Connection, Connection> shm = PipeOf(kSharedMemory);
  std::pair<Connection, Connection> shm_one_way = PipeOf(kSharedMemory, false);
  std::pair<Connection, Connection> sock = PipeOf(kSocket);
  std::pair<Connection, Connection> sock_one_way = PipeOf(kSocket, false);
  int raw[2];
  ASSERT_EQ(::pipe2(raw, O_CLOEXEC), 0);
  TestPipe next;  // parent -> child: "consumed, waiting again"
  const pid_t parent = ::getpid();
  constexpr int kRounds = 7;  // each object once, then the shared-memory end twice more
  TestChild child([&, parent] {
    next.CloseWrite();
    ::close(raw[0]);
    shm.first.Close();
    shm_one_way.first.Close();
    sock.first.Close();
    sock_one_way.first.Close();
    for (int round = 0; round < kRounds; ++round) {
      if (!AwaitSleep(parent, /*in_poll=*/true)) return 90;
      const std::string m = std::to_string(round);
      bool ok = true;
      switch (round % 5) {
        case 0:
          ok = shm.second.SendBytes(m).ok();
          break;
        case 1:
          ok = shm_one_way.second.SendBytes(m).ok();
          break;
        case 2:
          ok = sock.second.SendBytes(m).ok();
          break;
        case 3:
          ok = sock_one_way.second.SendBytes(m).ok();
          break;
        default:
          ok = ::write(raw[1], "r", 1) == 1;
      }
      if (!ok) return 10 + round;
      if (next.Receive() != 'x') return 20 + round;
    }
    return 0;
  });
  next.CloseRead();
  ::close(raw[1]);
  shm.second.Close();
  shm_one_way.second.Close();
  sock.second.Close();
  sock_one_way.second.Close();
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const size_t want = static_cast<size_t>(round % 5);
    absl::StatusOr<std::vector<size_t>> r =
        Wait({shm.first, shm_one_way.first, sock.first, sock_one_way.first, raw[0]}, kLong);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(*r, std::vector<size_t>{want});
    Connection* conns[] = {&shm.first, &shm_one_way.first, &sock.first, &sock_one_way.first};
    if (want < 4) {
      EXPECT_EQ(*conns[want]->RecvBytes(), std::to_string(round));
    } else {
      char c = 0;
      EXPECT_EQ(::read(raw[0], &c, 1), 1);
    }
    ASSERT_TRUE(next.Send());
  }
  EXPECT_EQ(child.Wait(), 0);
  ::close(raw[0]);
}

// ---------------------------------------------------------------------------------------------------
// The socket wire format (ConnectionTransport::kSocket): raw bytes written into the socket.

TEST(ConnectionSocketWireTest, PollNeverConsumesPartOfAPrefixedMessage) {
  auto [a, b] = SocketPipe();
  EXPECT_FALSE(*b.Poll());
  EXPECT_FALSE(*b.Poll(absl::Milliseconds(5)));
  // Only the prefix and half the body arrive: Poll says data is there but reads nothing.
  const std::string body = "0123456789";
  WriteRaw(a.fd(), Prefix(10, 0) + body.substr(0, 5));
  EXPECT_TRUE(*b.Poll());
  EXPECT_TRUE(*b.Poll(absl::InfiniteDuration()));
  WriteRaw(a.fd(), body.substr(5));
  EXPECT_EQ(*b.RecvBytes(), body);
  EXPECT_FALSE(*b.Poll());
}

TEST(ConnectionSocketWireTest, PeerClosingInsideAPrefixOrBodyIsDataLoss) {
  {
    auto [a, b] = SocketPipe();
    WriteRaw(a.fd(), Prefix(100, 0) + "partial");
    a.Close();
    absl::StatusOr<std::string> got = b.RecvBytes();
    EXPECT_EQ(got.status().code(), kDataLoss);
    EXPECT_THAT(got.status().message(), HasSubstr("middle of a 100-byte message"));
    EXPECT_TRUE(b.closed());
  }
  {
    auto [a, b] = SocketPipe();
    WriteRaw(a.fd(), "abc");
    a.Close();
    EXPECT_EQ(b.RecvBytes().status().code(), kDataLoss);
  }
}

TEST(ConnectionSocketWireTest, HostilePrefixesCloseTheConnection) {
  {
    auto [a, b] = SocketPipe();
    WriteRaw(a.fd(), Prefix(3, 0, /*reserved=*/0xbeef) + "abc");
    absl::StatusOr<std::string> got = b.RecvBytes();
    EXPECT_EQ(got.status().code(), kInvalidArgument);
    EXPECT_THAT(got.status().message(), HasSubstr("malformed message prefix"));
    EXPECT_TRUE(b.closed());
  }
  {
    auto [a, b] = SocketPipe();
    ASSERT_TRUE(b.set_max_message_size(1024).ok());
    WriteRaw(a.fd(), Prefix(0xfffffff0u, 0));
    absl::StatusOr<std::string> got = b.RecvBytes();
    EXPECT_EQ(got.status().code(), kInvalidArgument);
    EXPECT_THAT(got.status().message(), HasSubstr("exceeds the max message size of 1024"));
    EXPECT_TRUE(b.closed());
  }
  {
    auto [a, b] = SocketPipe();
    WriteRaw(a.fd(), Prefix(1, 3) + "x");  // claims descriptors that never came
    absl::StatusOr<std::string> got = b.RecvBytes();
    EXPECT_EQ(got.status().code(), kInvalidArgument);
    EXPECT_THAT(got.status().message(), HasSubstr("carries 3 descriptors but 0 arrived"));
    EXPECT_TRUE(b.closed());
  }
}

TEST(ConnectionSocketWireTest, FromFdAndRelease) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  absl::StatusOr<Connection> a = Connection::FromFd(sv[0]);
  absl::StatusOr<Connection> b = Connection::FromFd(sv[1]);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->transport(), kSocket);
  ASSERT_TRUE(a->SendBytes("adopted").ok());
  EXPECT_EQ(*b->RecvBytes(), "adopted");
  EXPECT_EQ(Connection::FromFd(-3).status().code(), kInvalidArgument);
  int dgram[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram), 0);
  EXPECT_EQ(Connection::FromFd(dgram[0]).status().code(), kInvalidArgument);
  ::close(dgram[0]);
  ::close(dgram[1]);
  int file = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(file, 0);
  absl::StatusOr<Connection> f = Connection::FromFd(file);
  EXPECT_EQ(f.status().code(), kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("neither a stream socket nor a pipe"));
  ::close(file);
  int released = a->Release();
  EXPECT_TRUE(a->closed());
  EXPECT_EQ(released, sv[0]);
  ::close(released);
  // A Pipe()'s socket end releases its socket the same way.
  auto [c, d] = SocketPipe();
  const int fd = c.fd();
  EXPECT_EQ(c.Release(), fd);
  EXPECT_TRUE(c.closed());
  WriteRaw(fd, Prefix(3, 0) + "raw");
  EXPECT_EQ(*d.RecvBytes(), "raw");
  ::close(fd);
}

// ---------------------------------------------------------------------------------------------------
// What only the shared-memory transport has.

// A shared-memory end is more than one descriptor: Release() closes it and returns -1, and the
// peer sees it as closed.
TEST(ConnectionSharedMemoryTest, ReleaseClosesTheEndAndReturnsMinusOne) {
  auto [a, b] = PipeOf(kSharedMemory);
  ASSERT_TRUE(b.SendBytes("unread").ok());
  EXPECT_EQ(a.Release(), -1);
  EXPECT_TRUE(a.closed());
  EXPECT_EQ(a.RecvBytes().status().code(), kFailedPrecondition);
  EXPECT_EQ(b.RecvBytes().status().code(), kOutOfRange);
  EXPECT_EQ(b.SendBytes("x").code(), kAborted);
}

// fd() of a shared-memory end is its SOCK_SEQPACKET side socket: what poll(2) watches, not a
// Connection of its own.
TEST(ConnectionSharedMemoryTest, TheSideSocketIsNotAStreamConnection) {
  auto [a, b] = PipeOf(kSharedMemory);
  ASSERT_GE(a.fd(), 0);
  const int copy = ::fcntl(a.fd(), F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(copy, 0);
  absl::StatusOr<Connection> c = Connection::FromFd(copy);
  EXPECT_EQ(c.status().code(), kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("not SOCK_STREAM"));
  ::close(copy);  // refused: still ours
  ASSERT_TRUE(a.SendBytes("still fine").ok());
  EXPECT_EQ(*b.RecvBytes(), "still fine");
}

// Several processes send on copies (Dup) of one end at once: every message arrives whole, once, and
// in each sender's order. Shared-memory ends also carry messages larger than a quarter ring (in
// parts, the write side held for the whole message); a socket only keeps small sends apart.
TEST_P(ConnectionTest, SeveralWritersOnCopiesOfOneEnd) {
  constexpr int kWriters = 4;
  constexpr int kMessages = 300;
  const bool large = GetParam() == ConnectionTransport::kSharedMemory;
  auto size_of = [large](int w, int i) -> size_t {
    if (large && i % 50 == 7) return size_t{100} << 10;  // 100 KiB: in parts through the ring
    return 8 + static_cast<size_t>((w * 31 + i * 17) % 600);
  };
  auto message = [&](int w, int i) {
    std::string m = Pattern(size_of(w, i), static_cast<size_t>(w * 1000 + i));
    m[0] = static_cast<char>(w);
    std::memcpy(&m[1], &i, sizeof(i));
    return m;
  };
  std::pair<Connection, Connection> ends = MakePipe();
  Connection& r = ends.first;
  Connection& w = ends.second;
  std::vector<TestChild> writers;
  for (int k = 0; k < kWriters; ++k) {
    absl::StatusOr<Connection> copy = w.Dup();
    ASSERT_TRUE(copy.ok()) << copy.status();
    writers.emplace_back([&, k, &copy = *copy] {
      r.Close();
      w.Close();
      for (int i = 0; i < kMessages; ++i) {
        if (!copy.SendBytes(message(k, i)).ok()) return 1;
      }
      return 0;
    });
  }
  w.Close();
  std::vector<int> next(kWriters, 0);
  for (int n = 0; n < kWriters * kMessages; ++n) {
    absl::StatusOr<std::string> got = r.RecvBytes();
    ASSERT_TRUE(got.ok()) << "message " << n << ": " << got.status();
    ASSERT_GE(got->size(), 5u);
    const int k = (*got)[0];
    int i;
    std::memcpy(&i, got->data() + 1, sizeof(i));
    ASSERT_TRUE(k >= 0 && k < kWriters) << "writer byte " << k;
    ASSERT_EQ(i, next[k]) << "writer " << k << " out of order";
    ASSERT_EQ(*got, message(k, i)) << "writer " << k << " message " << i << " torn";
    ++next[k];
  }
  for (TestChild& c : writers) EXPECT_EQ(c.Wait(), 0);
  EXPECT_EQ(r.RecvBytes().status().code(), absl::StatusCode::kOutOfRange);
}

// Several processes receive on copies of one end at once: each message goes to exactly one of them.
TEST_P(ConnectionTest, SeveralReadersOnCopiesOfOneEnd) {
  if (GetParam() == ConnectionTransport::kSocket) {
    GTEST_SKIP() << "a socket end read by two processes at once can split a message between them "
                    "(as in CPython); the shared-memory transport holds its read side per message";
  }
  constexpr int kReaders = 3;
  constexpr int kMessages = 900;
  // a: the sender; b: read by every reader, which answers on its copy.
  std::pair<Connection, Connection> ends = MakePipe();
  Connection& a = ends.first;
  Connection& b = ends.second;
  std::vector<TestChild> readers;
  for (int k = 0; k < kReaders; ++k) {
    readers.emplace_back([&] {
      a.Close();
      for (;;) {
        absl::StatusOr<std::string> m = b.RecvBytes();
        if (!m.ok()) {
          if (absl::IsOutOfRange(m.status())) return 0;
          fprintf(stderr, "reader: %s\n", m.status().ToString().c_str());
          return 1;
        }
        if (m->empty()) return 0;  // the end of the work
        if (*m != Pattern(m->size(), m->size())) return 2;
        if (!b.SendBytes(*m).ok()) return 3;  // echoed: the parent counts each one once
      }
    });
  }
  b.Close();
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(a.SendBytes(Pattern(16 + i, 16 + i)).ok());
  }
  std::vector<int> seen(kMessages, 0);
  for (int n = 0; n < kMessages; ++n) {
    absl::StatusOr<std::string> got = a.RecvBytes();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_GE(got->size(), 16u);
    ++seen[got->size() - 16];
  }
  for (int i = 0; i < kMessages; ++i) EXPECT_EQ(seen[i], 1) << "message " << i;
  for (int k = 0; k < kReaders; ++k) ASSERT_TRUE(a.SendBytes("").ok());
  for (TestChild& c : readers) EXPECT_EQ(c.Wait(), 0);
}

// A writer killed while it holds the write side (blocked on a full ring in the middle of a message
// in parts) does not block the other writers: the next one takes the side over and sends; the
// reader of the half-sent message gets kDataLoss (and the connection closes, as after any torn
// message).
TEST(ConnectionShmTest, WriterKilledHoldingTheWriteSideIsTakenOver) {
  std::pair<Connection, Connection> ends = PipeOf(ConnectionTransport::kSharedMemory);
  Connection& r = ends.first;
  Connection& w = ends.second;
  absl::StatusOr<Connection> other = w.Dup();
  ASSERT_TRUE(other.ok());
  // Nobody reads yet: the victim fills the ring with the first parts and blocks mid-message.
  TestChild victim([&] {
    r.Close();
    other->Close();
    w.SendBytes(Pattern(4 << 20, 1)).IgnoreError();
    return 0;
  });
  ASSERT_TRUE(AwaitSleep(victim.pid()));
  victim.Kill();
  EXPECT_EQ(victim.Wait(), 128 + SIGKILL);
  w.Close();
  TestChild survivor([&] {
    r.Close();
    return other->SendBytes("after the takeover").ok() ? 0 : 1;
  });
  other->Close();
  // The victim's message began (its first parts are in the ring) and will never end.
  absl::StatusOr<std::string> partial = r.RecvBytes();
  EXPECT_EQ(partial.status().code(), absl::StatusCode::kDataLoss) << partial.status();
  EXPECT_EQ(survivor.Wait(), 0);
}

}  // namespace
}  // namespace mp
