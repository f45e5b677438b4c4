// Copyright 2026 The mp Authors.
//
// What a peer can make a receiving Connection hold: descriptors it attaches without declaring them,
// descriptors the kernel had to truncate, and memory for a message it announces but does not send.
// The hostile peer is a raw socket (the other end of a Pipe(ConnectionTransport::kSocket),
// released), so it can send anything the socket wire format allows and more: those tests are of the
// socket transport. What an honest peer does (declared descriptors, truncation at the receiver's
// RLIMIT_NOFILE, a large message cut short) runs on both transports.

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "channels/connection.h"
#include "channels/test_transports.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serialize/fd.h"
#include "serialize/frame.h"
#include "sync/test_child.h"
#include "testing/open_fds.h"
#include "testing/proc_state.h"

namespace mp {
namespace {

using ::mp::testing::CountOpenFds;
using ::mp::testing::TestChild;
using ::testing::HasSubstr;

std::string Prefix(uint32_t length, uint16_t fds) {
  std::string p(8, '\0');
  std::memcpy(p.data(), &length, 4);
  std::memcpy(p.data() + 4, &fds, 2);
  return p;
}

// Sends `bytes` on the raw socket with `fds` attached as one SCM_RIGHTS message; sendmsg's result.
ssize_t SendMsg(int raw, absl::string_view bytes, const std::vector<int>& fds) {
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return sendmsg(raw, &msg, MSG_NOSIGNAL);
}

void SendWithFds(int raw, absl::string_view bytes, const std::vector<int>& fds) {
  ASSERT_EQ(SendMsg(raw, bytes, fds), static_cast<ssize_t>(bytes.size()));
}

void SendAll(int raw, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(raw, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// A connection whose peer is a raw socket the test writes into (the socket transport: a
// shared-memory end has no raw socket to release).
struct RawPeer {
  Connection conn;
  int raw = -1;
  RawPeer() {
    absl::StatusOr<std::pair<Connection, Connection>> p =
        Pipe(/*duplex=*/true, ConnectionTransport::kSocket);
    EXPECT_TRUE(p.ok()) << p.status();
    conn = std::move(p->first);
    raw = p->second.Release();
  }
  ~RawPeer() {
    if (raw >= 0) close(raw);
  }
  void CloseRaw() {
    close(raw);
    raw = -1;
  }
};

// `count` copies of one descriptor of /dev/null (the receiver gets `count` distinct descriptors).
std::vector<int> DevNullTimes(int devnull, size_t count) {
  return std::vector<int>(count, devnull);
}

}  // namespace

struct Labeled {
  std::string label;
  PassedFd first;
  PassedFd second;
};
MP_FIELDS(Labeled, label, first, second);

namespace {

ino_t Inode(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

class ConnectionLimitsTest : public ::testing::TestWithParam<ConnectionTransport> {};
INSTANTIATE_TEST_SUITE_P(Transports, ConnectionLimitsTest, ::mp::testing::AllTransports(),
                         ::mp::testing::TransportParamName());

// An honest sender's descriptors stay with their messages however the receiver's reads cut the
// stream: small messages read ahead in one read, messages right behind large bodies (or, in shared
// memory, messages in parts), large bodies carrying descriptors, and every receive call in turn.
TEST_P(ConnectionLimitsTest, DeclaredDescriptorsArriveWithTheirMessages) {
  constexpr int kPipes = 12;
  int pipes[kPipes][2];
  for (auto& p : pipes) ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  absl::StatusOr<std::pair<Connection, Connection>> ends = Pipe(/*duplex=*/true, GetParam());
  ASSERT_TRUE(ends.ok()) << ends.status();
  Connection& rx = ends->first;
  Connection& tx = ends->second;
  const std::vector<size_t> label_sizes = {3,     0, 70000, 10,     200000, 5,
                                           65536, 1, 1000,  300000, 2,      64};
  const int before = CountOpenFds();
  std::thread sender([&] {
    for (int i = 0; i < kPipes; ++i) {
      const std::string label(label_sizes[i], static_cast<char>('a' + i));
      if (!tx.SendBytes(label).ok()) return;
      if (!tx.Send(Labeled{label, PassedFd{pipes[i][1]}, PassedFd{pipes[(i + 1) % kPipes][1]}})
               .ok()) {
        return;
      }
    }
  });
  // Also after a failed assertion: closing the receiving end lets a blocked sender return.
  absl::Cleanup join_sender = [&] {
    rx.Close();
    sender.join();
  };
  std::vector<uint8_t> buffer(400000);
  for (int i = 0; i < kPipes; ++i) {
    SCOPED_TRACE(absl::StrCat("message pair ", i));
    const std::string label(label_sizes[i], static_cast<char>('a' + i));
    if (i % 2 == 0) {
      absl::StatusOr<std::string> raw = rx.RecvBytes();
      ASSERT_TRUE(raw.ok()) << raw.status();
      EXPECT_TRUE(*raw == label);
    } else {
      absl::StatusOr<size_t> n = rx.RecvBytesInto(absl::MakeSpan(buffer));
      ASSERT_TRUE(n.ok()) << n.status();
      EXPECT_EQ(*n, label.size());
    }
    absl::StatusOr<Labeled> m = rx.Recv<Labeled>();
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_TRUE(m->label == label);
    EXPECT_EQ(Inode(m->first.fd), Inode(pipes[i][1]));
    EXPECT_EQ(Inode(m->second.fd), Inode(pipes[(i + 1) % kPipes][1]));
    close(m->first.fd);
    close(m->second.fd);
    if (GetParam() == ConnectionTransport::kSocket) {
      EXPECT_EQ(CountOpenFds(), before);
    } else {
      // A shared-memory receiver may hold the descriptors of messages it has not received yet
      // (the side socket's packets, read ahead, at most kMaxPendingPackets), never more.
      EXPECT_LE(CountOpenFds(), before + 2 * (kPipes - 1 - i));
    }
  }
  std::move(join_sender).Invoke();
  EXPECT_EQ(CountOpenFds(), before - 1) << "only the receiving end was closed";
  for (auto& p : pipes) {
    close(p[0]);
    close(p[1]);
  }
}

TEST(ConnectionDescriptorLimitsTest, UndeclaredDescriptorsAreClosedAtOnce) {
  RawPeer peer;
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(devnull, 0);
  const int before = CountOpenFds();
  for (int i = 0; i < 70; ++i) {
    SCOPED_TRACE(absl::StrCat("message ", i));
    // Declares no descriptor, carries 250.
    SendWithFds(peer.raw, Prefix(4, 0) + "body", DevNullTimes(devnull, 250));
    absl::StatusOr<std::string> got = peer.conn.RecvBytes();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "body");
    ASSERT_EQ(CountOpenFds(), before) << "the receiver holds descriptors nobody declared";
  }
  // The stream is intact: the next message arrives as sent.
  SendWithFds(peer.raw, Prefix(4, 0) + "last", {});
  EXPECT_EQ(*peer.conn.RecvBytes(), "last");
  close(devnull);
}

TEST(ConnectionDescriptorLimitsTest, DescriptorsBeyondTheDeclaredCountAreClosed) {
  RawPeer peer;
  int data[2];
  ASSERT_EQ(pipe2(data, O_CLOEXEC), 0);
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(devnull, 0);
  const int before = CountOpenFds();
  // A typed PassedFd message declaring its one descriptor, with two more attached behind it.
  std::string frame;
  {
    FdTable table;
    ScopedFdTable scope(&table);
    frame = *EncodeFrame(PassedFd{data[1]});
  }
  SendWithFds(peer.raw, Prefix(static_cast<uint32_t>(frame.size()), 1) + frame,
              {data[1], devnull, devnull});
  absl::StatusOr<int> fd = peer.conn.RecvFd();
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(CountOpenFds(), before + 1) << "only the declared descriptor may stay open";
  ASSERT_EQ(write(*fd, "k", 1), 1);  // and it is the first one that was attached
  char c = 0;
  ASSERT_EQ(read(data[0], &c, 1), 1);
  EXPECT_EQ(c, 'k');
  close(*fd);
  // A raw message declaring 2 of the 5 attached: the message arrives, all 5 are closed.
  SendWithFds(peer.raw, Prefix(2, 2) + "xy", DevNullTimes(devnull, 5));
  EXPECT_EQ(*peer.conn.RecvBytes(), "xy");
  EXPECT_EQ(CountOpenFds(), before);
  EXPECT_FALSE(peer.conn.closed());
  close(devnull);
  close(data[0]);
  close(data[1]);
}

// Descriptors that arrive inside a message's body (no message starts there, so none declared them)
// are closed as they arrive, also when the receiver reads a large body straight into its result.
TEST(ConnectionDescriptorLimitsTest, DescriptorsInsideABodyAreClosedAsTheyArrive) {
  for (size_t size : {size_t{40000}, size_t{300000}}) {
    SCOPED_TRACE(absl::StrCat(size, "-byte body"));
    RawPeer peer;
    const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(devnull, 0);
    const int before = CountOpenFds();
    const std::string body(size, 'b');
    std::thread writer([&] {
      SendAll(peer.raw, Prefix(static_cast<uint32_t>(size), 0) + body.substr(0, size / 2));
      for (size_t i = 0; i < 8; ++i) {
        SendWithFds(peer.raw, body.substr(size / 2 + i, 1), DevNullTimes(devnull, 100));
      }
      SendAll(peer.raw, body.substr(size / 2 + 8));
      SendAll(peer.raw, Prefix(4, 0) + "next");
    });
    absl::StatusOr<std::string> got = peer.conn.RecvBytes();
    writer.join();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == body);
    EXPECT_EQ(CountOpenFds(), before);
    EXPECT_EQ(*peer.conn.RecvBytes(), "next");
    close(devnull);
  }
}

TEST(ConnectionDescriptorLimitsTest, MoreThanTheMaxDescriptorsPerMessageIsRefused) {
  for (uint16_t declared : {uint16_t{254}, uint16_t{0xffff}}) {
    RawPeer peer;
    const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(devnull, 0);
    const int before = CountOpenFds();
    SendWithFds(peer.raw, Prefix(1, declared) + "x", DevNullTimes(devnull, kMaxFdsPerMessage));
    absl::StatusOr<std::string> got = peer.conn.RecvBytes();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
    EXPECT_THAT(std::string(got.status().message()),
                HasSubstr(absl::StrCat("declares ", declared)));
    EXPECT_THAT(std::string(got.status().message()), HasSubstr("at most 253"));
    EXPECT_TRUE(peer.conn.closed());
    EXPECT_EQ(CountOpenFds(), before - 1) << "the connection's own descriptor is the only one gone";
    close(devnull);
  }
}

// The kernel truncates the descriptors it cannot install (here: the receiver is at its
// RLIMIT_NOFILE): the message is broken, kDataLoss, and nothing that did arrive stays open. An
// honest sender's message with five descriptors; the shared-memory receiver meets the truncation
// on its side socket.
TEST_P(ConnectionLimitsTest, TruncatedDescriptorsAreDataLossAndClose) {
  const ConnectionTransport transport = GetParam();
  TestChild child([transport] {
    // No gtest assertions in the child: it reports through its exit code.
    absl::StatusOr<std::pair<Connection, Connection>> pipe = Pipe(/*duplex=*/true, transport);
    if (!pipe.ok()) return 1;
    Connection& conn = pipe->first;
    // Five distinct descriptors (a message carries each distinct descriptor once).
    std::vector<PassedFd> five;
    for (int i = 0; i < 5; ++i) {
      five.push_back(PassedFd{open("/dev/null", O_RDONLY | O_CLOEXEC)});
      if (five.back().fd < 0) return 1;
    }
    if (!pipe->second.Send(five).ok()) return 1;
    const int before = CountOpenFds();
    // Room for exactly two more descriptors.
    int free_slots = 0, limit = 0;
    for (int fd = 0; free_slots < 2; ++fd) {
      if (fcntl(fd, F_GETFD) < 0) ++free_slots;
      limit = fd + 1;
    }
    struct rlimit old;
    if (getrlimit(RLIMIT_NOFILE, &old) != 0) return 2;
    struct rlimit low = old;
    low.rlim_cur = static_cast<rlim_t>(limit);
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) return 3;
    absl::StatusOr<std::string> got = conn.RecvBytes();
    if (setrlimit(RLIMIT_NOFILE, &old) != 0) return 4;
    if (got.status().code() != absl::StatusCode::kDataLoss) return 5;
    if (got.status().message().find("truncated") == absl::string_view::npos) return 6;
    if (!conn.closed()) return 7;
    // Only the connection's descriptor went away (a shared-memory end's segment stays open: the
    // other end, still open here, holds it too).
    if (CountOpenFds() != before - 1) return 8;
    return 0;
  });
  EXPECT_EQ(child.Wait(), 0);
}

// Resident memory of this process, in bytes.
int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// A peer announces a 64 MiB message and sends one byte of it: while the receiver waits for the
// rest, it holds memory for what arrived, not for what was announced. Every receive call that
// allocates for a message is checked: RecvBytes, RecvBytesInto with a short buffer (which stores
// the whole message), and Recv<T> of a large frame.
TEST(ConnectionMemoryLimitsTest, AnnouncedLengthIsNotAllocatedBeforeItArrives) {
  constexpr uint32_t kAnnounced = 64 << 20;
  for (int how : {0, 1, 2}) {
    SCOPED_TRACE(how == 0 ? "RecvBytes" : how == 1 ? "RecvBytesInto" : "Recv<std::string>");
    RawPeer peer;
    ASSERT_EQ(peer.conn.max_message_size(), kAnnounced);
    std::atomic<pid_t> tid{0};
    absl::Status status;
    // Everything the peer will send is there before the receiver starts, so the receiver's first
    // sleep is the wait for the rest of the body.
    SendAll(peer.raw, Prefix(kAnnounced, 0) + "x");
    const int64_t before = ResidentBytes();
    std::thread receiver([&] {
      tid = static_cast<pid_t>(syscall(SYS_gettid));
      if (how == 0) {
        status = peer.conn.RecvBytes().status();
      } else if (how == 1) {
        std::vector<uint8_t> small(16);
        std::string whole;
        status = peer.conn.RecvBytesInto(absl::MakeSpan(small), 0, &whole).status();
      } else {
        status = peer.conn.Recv<std::string>().status();
      }
    });
    while (tid.load() == 0 || !::mp::testing::IsSleeping(tid.load())) {
    }
    const int64_t grew = ResidentBytes() - before;
    peer.CloseRaw();
    receiver.join();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_LT(grew, 8 << 20) << "the receiver allocated for bytes that never came";
  }
}

// An honest peer in another process starts a 60 MiB message and is stopped (SIGSTOP) once it is
// blocked on the rest (its ring or socket buffer is full): the receiver, which reads what arrived
// and waits for more, holds memory for what arrived, not for the 60 MiB announced. The peer's
// death then is kDataLoss. Every receive call that allocates for a message, on both transports.
TEST_P(ConnectionLimitsTest, AMessageCutShortByAStoppedSenderCostsWhatArrived) {
  constexpr size_t kAnnounced = 60 << 20;
  for (int how : {0, 1, 2}) {
    SCOPED_TRACE(how == 0 ? "RecvBytes" : how == 1 ? "RecvBytesInto" : "Recv<std::string>");
    absl::StatusOr<std::pair<Connection, Connection>> ends = Pipe(/*duplex=*/true, GetParam());
    ASSERT_TRUE(ends.ok()) << ends.status();
    Connection& rx = ends->first;
    Connection& tx = ends->second;
    TestChild sender([&] {
      rx.Close();
      const std::string big(kAnnounced, 'x');  // this process's memory, not the receiver's
      return (how == 2 ? tx.Send(big) : tx.SendBytes(big)).ok() ? 0 : 1;
    });
    tx.Close();
    ASSERT_GT(sender.pid(), 0);
    ASSERT_TRUE(::mp::testing::AwaitSleep(sender.pid()))  // blocked on the rest of the message
        << "the sender ended: its message fitted";
    ASSERT_EQ(kill(sender.pid(), SIGSTOP), 0);
    for (char state = '?'; state != 'T';) {
      state = ::mp::testing::ProcState(sender.pid());
      ASSERT_NE(state, 'Z') << "the sender ended";
    }
    const int64_t before = ResidentBytes();
    std::atomic<pid_t> tid{0};
    absl::Status status;
    std::thread receiver([&] {
      tid = static_cast<pid_t>(syscall(SYS_gettid));
      if (how == 0) {
        status = rx.RecvBytes().status();
      } else if (how == 1) {
        std::vector<uint8_t> small(16);
        std::string whole;
        status = rx.RecvBytesInto(absl::MakeSpan(small), 0, &whole).status();
      } else {
        status = rx.Recv<std::string>().status();
      }
    });
    while (tid.load() == 0) {
    }
    // Asleep waiting for the rest (or ended: the expectations below say how).
    ::mp::testing::AwaitSleep(tid.load());
    const int64_t grew = ResidentBytes() - before;
    sender.Kill();
    EXPECT_EQ(sender.Wait(), 128 + SIGKILL);
    receiver.join();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_LT(grew, 8 << 20) << "the receiver allocated for bytes that never came";
    EXPECT_TRUE(rx.closed());
  }
}

}  // namespace
}  // namespace mp
