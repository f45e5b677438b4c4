// Copyright 2026 The mp Authors.

#include "channels/connection.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

using ::mp::testing::TestChild;
using ::testing::HasSubstr;

// Tests whose lambdas use the ends name them as references into the pair: clang before 16 cannot
// capture a structured binding.
std::pair<Connection, Connection> MakePipe(bool duplex = true) {
  absl::StatusOr<std::pair<Connection, Connection>> p = Pipe(duplex);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

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

TEST(ConnectionTest, DuplexBytesBothWays) {
  auto [a, b] = MakePipe();
  EXPECT_TRUE(a.is_socket());
  ASSERT_TRUE(a.SendBytes("hello").ok());
  ASSERT_TRUE(b.SendBytes("world").ok());
  EXPECT_EQ(*b.RecvBytes(), "hello");
  EXPECT_EQ(*a.RecvBytes(), "world");
}

TEST(ConnectionTest, SendBytesOffsetAndSize) {
  auto [a, b] = MakePipe();
  const std::string s = "0123456789";
  ASSERT_TRUE(a.SendBytes(AsBytes(s), 2, 3).ok());
  ASSERT_TRUE(a.SendBytes(AsBytes(s), 7).ok());
  EXPECT_EQ(*b.RecvBytes(), "234");
  EXPECT_EQ(*b.RecvBytes(), "789");
  EXPECT_EQ(a.SendBytes(AsBytes(s), 11).code(), absl::StatusCode::kInvalidArgument);
  absl::Status s2 = a.SendBytes(AsBytes(s), 5, 6);
  EXPECT_EQ(s2.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s2.message(), HasSubstr("offset 5 + size 6"));
}

TEST(ConnectionTest, OneWayPipeDirections) {
  auto [r, w] = MakePipe(/*duplex=*/false);
  EXPECT_FALSE(r.is_socket());
  EXPECT_TRUE(r.readable());
  EXPECT_FALSE(r.writable());
  absl::Status s = r.SendBytes("x");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("read-only"));
  EXPECT_EQ(w.RecvBytes().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.Poll().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(w.SendBytes("one way").ok());
  EXPECT_EQ(*r.RecvBytes(), "one way");
  ASSERT_TRUE(w.Send(int64_t{42}).ok());
  EXPECT_EQ(*r.Recv<int64_t>(), 42);
  // Descriptors cannot travel over a pipe.
  EXPECT_EQ(w.SendFd(0).code(), absl::StatusCode::kFailedPrecondition);
  absl::Status fd_status = w.Send(FdMessage{"x", PassedFd{0}, PassedFd{1}});
  EXPECT_EQ(fd_status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(fd_status.message(), HasSubstr("one-way pipe"));
  EXPECT_FALSE(*r.Poll());  // nothing was sent by the refused calls
}

TEST(ConnectionTest, EmptyMessagesAndNoMergingOrSplitting) {
  for (bool duplex : {true, false}) {
    auto [x, y] = MakePipe(duplex);
    Connection& rx = duplex ? x : x;
    Connection& tx = duplex ? y : y;
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

// Sizes on both sides of the receive buffer (64 KiB) and of the one-write limit (1 KiB), so the
// receiver switches between buffered prefixes and prefixes read alone after large bodies, through
// every receive call, with descriptors on a message that follows a large one.
TEST(ConnectionTest, MixedSizesAroundTheReceiveBufferNeverMergeOrSplit) {
  const std::vector<size_t> sizes = {100000,  5,      0,    70000,   65536,   65535,  65537, 3,
                                     1 << 20, 8,      1024, 1025,    200000,  131072, 0,     1000,
                                     65536,   100000, 7,    1 << 20, 1 << 20, 64};
  auto message = [](size_t i, size_t size) {
    std::string m(size, '\0');
    for (size_t k = 0; k < size; ++k) m[k] = static_cast<char>(i * 7 + k * 131 + (k >> 9));
    return m;
  };
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
        const std::string m = message(i, sizes[i]);
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
      const std::string want = message(i, sizes[i]);
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
    EXPECT_EQ(rx.RecvBytes().status().code(), absl::StatusCode::kOutOfRange);
    EXPECT_EQ(child.Wait(), 0);
    ::close(fds[0]);
    ::close(fds[1]);
  }
}

TEST(ConnectionTest, SixteenMiBRoundTripAcrossFork) {
  for (bool typed : {false, true}) {
    std::pair<Connection, Connection> ends = MakePipe();
    Connection& parent = ends.first;
    Connection& child_end = ends.second;
    std::string big(16 << 20, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + (i >> 12));
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

TEST(ConnectionTest, RecvBytesMaxLengthClosesTheConnection) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.SendBytes("0123456789").ok());
  absl::StatusOr<std::string> got = b.RecvBytes(4);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr("10 bytes is longer than maxlength 4"));
  EXPECT_TRUE(b.closed());
  EXPECT_EQ(b.RecvBytes().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ConnectionTest, RecvBytesInto) {
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
  EXPECT_EQ(b.RecvBytesInto(absl::MakeSpan(buf), 7).status().code(),
            absl::StatusCode::kInvalidArgument);
}

struct Point {
  int32_t x;
  int32_t y;
};
MP_FIELDS(Point, x, y);

TEST(ConnectionTest, TypedMessagesAndWrongType) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.Send(Point{3, 4}).ok());
  ASSERT_TRUE(a.Send(std::vector<int32_t>{1, 2}).ok());
  ASSERT_TRUE(a.Send(std::string("after")).ok());
  absl::StatusOr<Point> p = b.Recv<Point>();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->x, 3);
  EXPECT_EQ(p->y, 4);
  absl::StatusOr<std::string> wrong = b.Recv<std::string>();
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
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
  EXPECT_EQ(b.Recv<int32_t>().status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(a.Send(int32_t{8}).ok());
  EXPECT_EQ(*b.Recv<int32_t>(), 8);
}

TEST(ConnectionTest, PollNeverConsumesPartOfAMessage) {
  auto [a, b] = MakePipe();
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
  // Two messages arriving together are two messages, and Poll sees the buffered second one.
  ASSERT_TRUE(a.SendBytes("one").ok());
  ASSERT_TRUE(a.SendBytes("two").ok());
  EXPECT_TRUE(*b.Poll(absl::InfiniteDuration()));
  EXPECT_EQ(*b.RecvBytes(), "one");
  EXPECT_TRUE(*b.Poll());
  EXPECT_EQ(*b.RecvBytes(), "two");
}

TEST(ConnectionTest, EndOfFileAndTruncation) {
  {
    auto [a, b] = MakePipe();
    ASSERT_TRUE(a.SendBytes("last").ok());
    a.Close();
    EXPECT_EQ(*b.RecvBytes(), "last");
    EXPECT_TRUE(*b.Poll());  // end of file is "ready"
    absl::StatusOr<std::string> eof = b.RecvBytes();
    EXPECT_EQ(eof.status().code(), absl::StatusCode::kOutOfRange);
    EXPECT_THAT(eof.status().message(), HasSubstr("end of file"));
    EXPECT_EQ(b.Recv<int>().status().code(), absl::StatusCode::kOutOfRange);
  }
  {
    auto [r, w] = MakePipe(false);
    w.Close();
    EXPECT_EQ(r.RecvBytes().status().code(), absl::StatusCode::kOutOfRange);
  }
  {
    auto [a, b] = MakePipe();
    WriteRaw(a.fd(), Prefix(100, 0) + "partial");
    a.Close();
    absl::StatusOr<std::string> got = b.RecvBytes();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(got.status().message(), HasSubstr("middle of a 100-byte message"));
  }
  {
    auto [a, b] = MakePipe();
    WriteRaw(a.fd(), "abc");
    a.Close();
    EXPECT_EQ(b.RecvBytes().status().code(), absl::StatusCode::kDataLoss);
  }
}

TEST(ConnectionTest, SendToClosedPeerIsAbortedWithoutSigpipe) {
  for (bool duplex : {true, false}) {
    auto [r, w] = MakePipe(duplex);
    r.Close();
    absl::Status s = w.SendBytes("nobody listens");
    EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
    EXPECT_THAT(s.message(), HasSubstr("broken pipe"));
    // No SIGPIPE was left pending either.
    sigset_t pending;
    sigpending(&pending);
    EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
  }
  // Documented: a writable pipe Connection leaves SIGPIPE ignored (it was SIG_DFL in this test).
  struct sigaction current;
  ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &current), 0);
  EXPECT_EQ(current.sa_handler, SIG_IGN);
}

TEST(ConnectionTest, HostilePeerClosesTheConnection) {
  {
    auto [a, b] = MakePipe();
    WriteRaw(a.fd(), Prefix(3, 0, /*reserved=*/0xbeef) + "abc");
    absl::StatusOr<std::string> got = b.RecvBytes();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(got.status().message(), HasSubstr("malformed message prefix"));
    EXPECT_TRUE(b.closed());
  }
  {
    auto [a, b] = MakePipe();
    ASSERT_TRUE(b.set_max_message_size(1024).ok());
    WriteRaw(a.fd(), Prefix(0xfffffff0u, 0));
    absl::StatusOr<std::string> got = b.RecvBytes();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(got.status().message(), HasSubstr("exceeds the max message size of 1024"));
    EXPECT_TRUE(b.closed());
  }
  {
    auto [a, b] = MakePipe();
    WriteRaw(a.fd(), Prefix(1, 3) + "x");  // claims descriptors that never came
    absl::StatusOr<std::string> got = b.RecvBytes();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(got.status().message(), HasSubstr("carries 3 descriptors but 0 arrived"));
    EXPECT_TRUE(b.closed());
  }
  {
    // A frame with a garbage header inside a well-formed message: that message fails, the stream
    // stays usable.
    auto [a, b] = MakePipe();
    ASSERT_TRUE(a.SendBytes(std::string(16, '\xff')).ok());
    ASSERT_TRUE(a.Send(int16_t{5}).ok());
    EXPECT_EQ(b.Recv<int16_t>().status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(*b.Recv<int16_t>(), 5);
  }
}

TEST(ConnectionTest, MaxMessageSize) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.set_max_message_size(8).ok());
  absl::Status s = a.SendBytes("123456789");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("9 bytes exceeds the max message size of 8"));
  EXPECT_EQ(a.Send(std::string("long enough string")).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.set_max_message_size(0).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(a.SendBytes("12345678").ok());
  EXPECT_EQ(*b.RecvBytes(), "12345678");
}

TEST(ConnectionTest, SendFdRecvFdAcrossFork) {
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
  EXPECT_EQ(parent.SendFd(-1).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConnectionTest, TypedMessagesCarryPassedFds) {
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

TEST(ConnectionTest, ConnectionTravelsOverAConnection) {
  auto [a, b] = MakePipe();
  auto [inner_r, inner_w] = MakePipe(false);
  ASSERT_TRUE(a.Send(inner_w).ok());
  inner_w.Close();
  absl::StatusOr<Connection> got = b.Recv<Connection>();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->writable());
  EXPECT_FALSE(got->readable());
  ASSERT_TRUE(got->SendBytes("through the passed end").ok());
  EXPECT_EQ(*inner_r.RecvBytes(), "through the passed end");
  got->Close();
  EXPECT_EQ(inner_r.RecvBytes().status().code(), absl::StatusCode::kOutOfRange);
  // Without a descriptor transport a Connection does not encode into something usable.
  absl::StatusOr<Connection> plain = Decode<Connection>(Encode(inner_r));
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ConnectionTest, FromFd) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  absl::StatusOr<Connection> a = Connection::FromFd(sv[0]);
  absl::StatusOr<Connection> b = Connection::FromFd(sv[1]);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(a->SendBytes("adopted").ok());
  EXPECT_EQ(*b->RecvBytes(), "adopted");
  EXPECT_EQ(Connection::FromFd(-3).status().code(), absl::StatusCode::kInvalidArgument);
  int dgram[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram), 0);
  EXPECT_EQ(Connection::FromFd(dgram[0]).status().code(), absl::StatusCode::kInvalidArgument);
  ::close(dgram[0]);
  ::close(dgram[1]);
  int file = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(file, 0);
  absl::StatusOr<Connection> f = Connection::FromFd(file);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("neither a stream socket nor a pipe"));
  ::close(file);
  int released = a->Release();
  EXPECT_TRUE(a->closed());
  EXPECT_EQ(released, sv[0]);
  ::close(released);
}

TEST(WaitTest, ConnectionsAndSentinels) {
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
  EXPECT_EQ(Wait({b1, sentinel[0]}).status().code(), absl::StatusCode::kInvalidArgument);
  b1.Close();
  EXPECT_EQ(Wait({b1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Wait({-1}).status().code(), absl::StatusCode::kInvalidArgument);
}

std::atomic<int> g_signals{0};
void CountSignal(int) { g_signals.fetch_add(1); }

TEST(ConnectionTest, InterruptedReceiveIsRetried) {
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
  TestChild child([&, parent] {
    b.Close();
    // Interrupt the parent while it is blocked in Recv, then send the message.
    while (!::mp::testing::IsSleeping(parent)) {
    }
    if (::kill(parent, SIGUSR1) != 0) return 1;
    while (!::mp::testing::IsSleeping(parent)) {
    }
    return a.Send(std::string("after the signal")).ok() ? 0 : 2;
  });
  absl::StatusOr<std::string> got = b.Recv<std::string>();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "after the signal");
  EXPECT_EQ(g_signals.load(), 1);
  EXPECT_EQ(child.Wait(), 0);
  ::sigaction(SIGUSR1, &old, nullptr);
}

}  // namespace
}  // namespace mp
