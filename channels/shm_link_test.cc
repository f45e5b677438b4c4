// Copyright 2026 The mp Authors.
//
// The shared-memory transport of a Connection (channels/shm_link.h) against a hostile peer. One end
// of a link is used through its API; the test plays the other end: it writes the peer's words and
// ring records straight into its own mapping of the segment and sends raw packets on the peer's
// side socket. Whatever it does, the end under test must return a status naming what was wrong
// (never crash, never wait past a deadline, never hold unbounded memory or leak a descriptor).
// Every test counts the process's open descriptors before and after.

#include "channels/shm_link.h"

#include <errno.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sync/futex.h"
#include "sync/shm.h"
#include "sync/test_child.h"
#include "testing/open_fds.h"

namespace mp::channels_internal {
namespace {

using ::mp::testing::CountOpenFds;
using ::mp::testing::TestChild;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr size_t kCap = size_t{64} << 10;
constexpr size_t kQuarter = kCap / 4;
constexpr size_t kNoLimit = size_t{1} << 32;

uint64_t Align8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

// ---- Descriptors --------------------------------------------------------------------------------

// A new file of its own (a distinct inode), to send and recognize.
int NewFile() { return memfd_create("shm_link_test", MFD_CLOEXEC); }

std::pair<dev_t, ino_t> Identity(int fd) {
  struct stat st = {};
  if (fstat(fd, &st) != 0) return {0, 0};
  return {st.st_dev, st.st_ino};
}

void CloseFds(std::vector<int>& fds) {
  for (int fd : fds) close(fd);
  fds.clear();
}

// One raw packet on a side socket: `data` with `fds` as SCM_RIGHTS. Returns sendmsg's result.
ssize_t SendPacket(int sock, absl::string_view data, const std::vector<int>& fds,
                   int flags = MSG_NOSIGNAL) {
  struct iovec iov = {const_cast<char*>(data.data()), data.size()};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, flags);
  } while (n < 0 && errno == EINTR);
  return n;
}

// The payload of a descriptor packet for the record at `pos`.
std::string FdPacket(uint64_t pos) {
  std::string p(9, '\0');
  p[0] = 'F';
  std::memcpy(&p[1], &pos, 8);
  return p;
}

// ---- Receiving ----------------------------------------------------------------------------------

// One message through BeginRecv + ReadBody; descriptors to *fds (the caller closes them, also on
// failure).
absl::StatusOr<std::string> Recv(ShmLink& link, std::vector<int>* fds = nullptr,
                                 size_t max_message_size = kNoLimit) {
  absl::StatusOr<uint32_t> length = link.BeginRecv(fds, max_message_size);
  if (!length.ok()) return length.status();
  std::string body(*length, '\0');
  if (*length > 0) {
    absl::Status s = link.ReadBody(reinterpret_cast<uint8_t*>(body.data()), *length);
    if (!s.ok()) return s;
  }
  return body;
}

absl::Status Send(ShmLink& link, absl::string_view body, const std::vector<int>& fds = {}) {
  return link.Send(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(body.data()), body.size()),
                   fds);
}

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

void ExpectStatus(const absl::Status& status, absl::StatusCode code, absl::string_view names) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(names))) << status;
}

// ---- Bounded waits ------------------------------------------------------------------------------

// What a call run by RunBounded returned, whether it returned within the limit and how long it
// took.
template <typename T>
struct Bounded {
  bool in_time;
  T value;
  absl::Duration took;
};

// Runs `fn` on a thread and waits up to `limit` for it. A call still running then is a bug (it
// spins or waits past its deadline): `rescue` is called, which must make it return (commit a
// record, stop a flood), and the thread is joined. Never a sleep: the limit only bounds a hang.
template <typename Fn>
auto RunBounded(absl::Duration limit, Fn fn, const std::function<void()>& rescue)
    -> Bounded<decltype(fn())> {
  using T = decltype(fn());
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::optional<T> value;
  int64_t took_ns = 0;
  const int64_t start = MonotonicNowNs();
  std::thread t([&] {
    T v = fn();
    const int64_t end = MonotonicNowNs();
    std::lock_guard<std::mutex> lock(mu);
    value.emplace(std::move(v));
    took_ns = end - start;
    done = true;
    cv.notify_all();
  });
  bool in_time;
  {
    std::unique_lock<std::mutex> lock(mu);
    in_time = cv.wait_for(lock, std::chrono::nanoseconds(absl::ToInt64Nanoseconds(limit)),
                          [&] { return done; });
  }
  if (!in_time) rescue();
  t.join();
  return {in_time, *std::move(value), absl::Nanoseconds(took_ns)};
}

// ---- The link and the hostile peer --------------------------------------------------------------

// A link whose end 1 (`link`) is under test. The test is end 0: `peer` is a real end (its Send
// writes honest records, its socket carries raw packets), and `state`/`rings` are a mapping of
// the segment of the test's own, through which it writes whatever it likes.
struct HostileLink {
  ShmLink peer;
  ShmLink link;
  ShmSegment segment;
  LinkState* state = nullptr;
  uint8_t* rings = nullptr;
  size_t cap = 0;

  // Ring 0: written by the peer, read by `link`.
  RingWords& in() const { return state->rings[0]; }
  uint8_t* in_ring() const { return rings; }
  // Ring 1: written by `link`, read by the peer.
  RingWords& out() const { return state->rings[1]; }

  int sock() const { return peer.sock(); }

  // A record header word in ring 0 at `pos`, stored as a writer commits a record (after its
  // bytes, with release order).
  void Header(uint64_t pos, uint32_t length, uint16_t fd_count, uint8_t kind,
              uint8_t zero = 0) const {
    const uint64_t word =
        uint64_t{length} | uint64_t{fd_count} << 32 | uint64_t{kind} << 48 | uint64_t{zero} << 56;
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(in_ring() + (pos & (cap - 1))))
        .store(word, std::memory_order_release);
  }
  // Payload bytes in ring 0 at `pos`, wrapping.
  void Bytes(uint64_t pos, absl::string_view bytes) const {
    for (size_t i = 0; i < bytes.size(); ++i) in_ring()[(pos + i) & (cap - 1)] = bytes[i];
  }
  // A whole record at `pos`; returns the position after it.
  uint64_t Whole(uint64_t pos, absl::string_view body, uint16_t fd_count = 0) const {
    Bytes(pos + kLinkRecordHeaderSize, body);
    Header(pos, static_cast<uint32_t>(body.size()), fd_count, kLinkWhole);
    return pos + Align8(kLinkRecordHeaderSize + body.size());
  }
  // A part record of `n` bytes of 'p'; returns the position after it.
  uint64_t Part(uint64_t pos, uint32_t n, uint8_t kind = kLinkPart, uint16_t fd_count = 0) const {
    Bytes(pos + kLinkRecordHeaderSize, std::string(n, 'p'));
    Header(pos, n, fd_count, kind);
    return pos + Align8(kLinkRecordHeaderSize + n);
  }
  // The tail word an honest writer stores after a record's header word (for the next writer of
  // the end; the reader never reads it).
  void Commit(uint64_t tail) const { in().tail.store(tail, std::memory_order_release); }
  // Ring 1 (written by `link`) at `pos`: a header word as a writer of `link`'s end would store it.
  void OutHeader(uint64_t pos, uint32_t length, uint8_t kind) const {
    const uint64_t word = uint64_t{length} | uint64_t{kind} << 48;
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(rings + cap + (pos & (cap - 1))))
        .store(word, std::memory_order_release);
  }
};

HostileLink MakeLink(size_t cap = kCap) {
  HostileLink h;
  absl::StatusOr<std::pair<ShmLink, ShmLink>> pair = ShmLink::CreatePair(cap);
  EXPECT_TRUE(pair.ok()) << pair.status();
  if (!pair.ok()) return h;
  h.peer = std::move(pair->first);
  h.link = std::move(pair->second);
  absl::StatusOr<ShmSegment> segment = ShmSegment::Attach(h.link.segment_fd());
  EXPECT_TRUE(segment.ok()) << segment.status();
  if (!segment.ok()) return h;
  h.segment = *std::move(segment);
  h.state = static_cast<LinkState*>(h.segment.At(kShmHeaderSize));
  h.rings = static_cast<uint8_t*>(h.segment.At(kShmHeaderSize)) + sizeof(LinkState);
  h.cap = cap;
  return h;
}

// Every test: no descriptor opened during it is left open after it.
class ShmLinkTest : public ::testing::Test {
 protected:
  void SetUp() override { fds_before_ = CountOpenFds(); }
  void TearDown() override { EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptors leaked"; }

  int fds_before_ = 0;
};

#define ASSERT_LINK(h) ASSERT_TRUE((h).state != nullptr)

// =================================================================================================
// The normal path.

TEST_F(ShmLinkTest, RoundTripOfSmallMessages) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  EXPECT_EQ(h.link.ring_bytes(), kCap);
  // Sizes that wrap the ring many times, including whole records of exactly a quarter ring and
  // messages in parts that fit the ring.
  const size_t sizes[] = {1, 7, 8, 9, 100, 1000, kQuarter - 8, kQuarter, kQuarter + 1, 20000, 3};
  for (int round = 0; round < 40; ++round) {
    for (size_t size : sizes) {
      const std::string body = Pattern(size, round * 100 + static_cast<uint32_t>(size));
      ASSERT_TRUE(Send(h.peer, body).ok());
      absl::StatusOr<std::string> got = Recv(h.link);
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(*got, body) << size;
      // And back.
      ASSERT_TRUE(Send(h.link, body).ok());
      absl::StatusOr<std::string> back = Recv(h.peer);
      ASSERT_TRUE(back.ok()) << back.status();
      ASSERT_EQ(*back, body) << size;
    }
  }
  // Several queued before any is read.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Send(h.peer, "message " + std::to_string(i)).ok());
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<std::string> got = Recv(h.link);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "message " + std::to_string(i));
  }
  EXPECT_FALSE(h.link.ReadyNow());
  absl::StatusOr<bool> ready = h.link.Poll(Deadline::After(absl::Milliseconds(10)));
  ASSERT_TRUE(ready.ok());
  EXPECT_FALSE(*ready);
}

// A 1 MiB message through a 64 KiB ring: a start record and 64 parts, the sender (in a thread)
// waiting for room while the receiver reads it in pieces that do not line up with the parts. It
// also carries a descriptor, declared by its start record.
TEST_F(ShmLinkTest, OneMebibyteThroughA64KiBRing) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  const std::string big = Pattern(size_t{1} << 20, 7);
  int file = NewFile();
  ASSERT_GE(file, 0);
  absl::Status sent;
  std::thread sender([&] { sent = Send(h.peer, big, {file}); });
  std::vector<int> fds;
  absl::StatusOr<uint32_t> length = h.link.BeginRecv(&fds, kNoLimit);
  ASSERT_TRUE(length.ok()) << length.status();
  EXPECT_EQ(*length, big.size());
  std::string got(*length, '\0');
  for (size_t done = 0; done < got.size();) {
    const size_t n = std::min<size_t>(10007, got.size() - done);
    absl::Status s = h.link.ReadBody(reinterpret_cast<uint8_t*>(got.data()) + done, n);
    ASSERT_TRUE(s.ok()) << s;
    done += n;
  }
  sender.join();
  EXPECT_TRUE(sent.ok()) << sent;
  EXPECT_TRUE(got == big);
  ASSERT_EQ(fds.size(), 1u);
  EXPECT_EQ(Identity(fds[0]), Identity(file));
  CloseFds(fds);
  close(file);
  // The other way, twice, into a receiver reading it whole.
  for (int i = 0; i < 2; ++i) {
    std::thread back([&] { sent = Send(h.link, big); });
    absl::StatusOr<std::string> echoed = Recv(h.peer);
    back.join();
    ASSERT_TRUE(echoed.ok()) << echoed.status();
    EXPECT_TRUE(sent.ok()) << sent;
    EXPECT_TRUE(*echoed == big);
  }
}

TEST_F(ShmLinkTest, EmptyMessages) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  ASSERT_TRUE(Send(h.peer, "").ok());
  int file = NewFile();
  ASSERT_GE(file, 0);
  ASSERT_TRUE(Send(h.peer, "", {file}).ok());
  close(file);
  ASSERT_TRUE(Send(h.peer, "after").ok());
  absl::StatusOr<uint32_t> empty = h.link.BeginRecv(nullptr, kNoLimit);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, 0u);
  std::vector<int> fds;
  absl::StatusOr<uint32_t> with_fd = h.link.BeginRecv(&fds, kNoLimit);
  ASSERT_TRUE(with_fd.ok()) << with_fd.status();
  EXPECT_EQ(*with_fd, 0u);
  EXPECT_EQ(fds.size(), 1u);
  CloseFds(fds);
  absl::StatusOr<std::string> after = Recv(h.link);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, "after");
}

// The peer closes its end after sending: every message sent before is read, with its descriptors,
// and only then is it end of file (kOutOfRange, every time). A Send to it is kAborted.
TEST_F(ShmLinkTest, EndOfFileOnlyAfterTheMessagesSentBeforeIt) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  int file = NewFile();
  ASSERT_GE(file, 0);
  const std::string chunked = Pattern(20000, 3);
  ASSERT_TRUE(Send(h.peer, "one").ok());
  ASSERT_TRUE(Send(h.peer, "two", {file}).ok());
  ASSERT_TRUE(Send(h.peer, chunked).ok());
  ASSERT_TRUE(Send(h.peer, "").ok());
  h.peer.Close();
  EXPECT_TRUE(h.link.ReadyNow());
  absl::StatusOr<std::string> one = Recv(h.link);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, "one");
  std::vector<int> fds;
  absl::StatusOr<std::string> two = Recv(h.link, &fds);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(*two, "two");
  ASSERT_EQ(fds.size(), 1u);
  EXPECT_EQ(Identity(fds[0]), Identity(file));
  CloseFds(fds);
  close(file);
  absl::StatusOr<std::string> third = Recv(h.link);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_TRUE(*third == chunked);
  absl::StatusOr<std::string> empty = Recv(h.link);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, "");
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<uint32_t> eof = h.link.BeginRecv(nullptr, kNoLimit);
    ExpectStatus(eof.status(), absl::StatusCode::kOutOfRange, "end of file");
  }
  absl::StatusOr<bool> ready = h.link.Poll(Deadline::After(absl::Seconds(10)));
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(*ready);
  EXPECT_TRUE(h.link.ReadyNow());
  ExpectStatus(Send(h.link, "to nobody"), absl::StatusCode::kAborted, "closed its end");
}

// The peer closes its end in the middle of a message in parts: the receive is kDataLoss naming the
// message and how much of it arrived.
TEST_F(ShmLinkTest, PeerClosingMidMessageIsDataLoss) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  h.Header(0, 20000, 0, kLinkStart);
  const uint64_t end = h.Part(8, kQuarter);
  h.Commit(end);
  h.peer.Close();
  absl::StatusOr<uint32_t> length = h.link.BeginRecv(nullptr, kNoLimit);
  ASSERT_TRUE(length.ok()) << length.status();
  EXPECT_EQ(*length, 20000u);
  std::string body(20000, '\0');
  ExpectStatus(h.link.ReadBody(reinterpret_cast<uint8_t*>(body.data()), body.size()),
               absl::StatusCode::kDataLoss, "in the middle of a 20000-byte message (16384 bytes");
}

// A fork child holding a copy of the peer's end closes it (and exits): the peer's end is still
// open here, so this is no end of file. Only when the last copy goes is it.
TEST_F(ShmLinkTest, OnlyTheLastCopyOfAnEndEndsTheStream) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  {
    TestChild child([&] {
      h.peer.Close();
      return 0;
    });
    ASSERT_GT(child.pid(), 0);
    ASSERT_EQ(child.Wait(), 0);
  }
  absl::StatusOr<bool> ready = h.link.Poll(Deadline::After(absl::Milliseconds(50)));
  ASSERT_TRUE(ready.ok());
  EXPECT_FALSE(*ready);
  ASSERT_TRUE(Send(h.peer, "still here").ok());
  absl::StatusOr<std::string> got = Recv(h.link);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "still here");
  // Now the only other copy is in a child that dies without closing anything.
  {
    TestChild child([&] {
      _exit(Send(h.peer, "from the child").ok() ? 0 : 1);
      return 1;
    });
    ASSERT_GT(child.pid(), 0);
    h.peer.Close();
    absl::StatusOr<std::string> last = Recv(h.link);
    ASSERT_TRUE(last.ok()) << last.status();
    EXPECT_EQ(*last, "from the child");
    EXPECT_EQ(child.Wait(), 0);
  }
  ExpectStatus(h.link.BeginRecv(nullptr, kNoLimit).status(), absl::StatusCode::kOutOfRange,
               "end of file");
}

TEST_F(ShmLinkTest, DescriptorsArriveInOrderWithTheirMessages) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  std::vector<int> files;
  for (int i = 0; i < 6; ++i) {
    files.push_back(NewFile());
    ASSERT_GE(files.back(), 0);
  }
  const std::vector<std::vector<int>> plan = {{files[0]}, {}, {files[1], files[2]},
                                              {files[3]}, {}, {files[4], files[5], files[0]}};
  for (size_t i = 0; i < plan.size(); ++i) {
    // Message 3 is in parts: its start record declares the descriptor.
    const std::string body = i == 3 ? Pattern(30000, 1) : "m" + std::to_string(i);
    ASSERT_TRUE(Send(h.peer, body, plan[i]).ok()) << i;
  }
  for (size_t i = 0; i < plan.size(); ++i) {
    std::vector<int> fds;
    absl::StatusOr<std::string> got = Recv(h.link, &fds);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->size(), i == 3 ? 30000u : 2u);
    ASSERT_EQ(fds.size(), plan[i].size()) << i;
    for (size_t k = 0; k < fds.size(); ++k) {
      EXPECT_EQ(Identity(fds[k]), Identity(plan[i][k])) << i << " " << k;
    }
    CloseFds(fds);
  }
  // Declared descriptors of a message received without a place for them are closed.
  ASSERT_TRUE(Send(h.peer, "dropped", {files[1]}).ok());
  absl::StatusOr<std::string> dropped = Recv(h.link, nullptr);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  CloseFds(files);
}

// The configuration is read once: a peer rewriting the ring size afterwards changes nothing.
TEST_F(ShmLinkTest, RingSizeRewrittenAfterCreationIsIgnored) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  h.state->ring_bytes = uint64_t{1} << 30;
  for (int i = 0; i < 20; ++i) {
    const std::string body = Pattern(kQuarter, i);
    ASSERT_TRUE(Send(h.link, body).ok());
    absl::StatusOr<std::string> got = Recv(h.peer);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(*got == body);
  }
  EXPECT_EQ(h.link.ring_bytes(), kCap);
}

// Adopt checks the side socket and the configuration as coming from an untrusted process (and
// takes the socket: closed on failure too).
TEST_F(ShmLinkTest, AdoptRefusesABadSocketOrConfiguration) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    absl::StatusOr<ShmLink> l = ShmLink::Adopt(sv[0], h.link.segment_fd(), 0);
    ExpectStatus(l.status(), absl::StatusCode::kInvalidArgument, "not SOCK_SEQPACKET");
    close(sv[1]);
  }
  {
    absl::StatusOr<ShmLink> l = ShmLink::Adopt(dup(h.peer.sock()), h.link.segment_fd(), 2);
    ExpectStatus(l.status(), absl::StatusCode::kInvalidArgument, "link end 2");
  }
  h.state->ring_bytes = uint64_t{1} << 30;  // larger than the segment
  {
    absl::StatusOr<ShmLink> l = ShmLink::Adopt(dup(h.peer.sock()), h.link.segment_fd(), 0);
    ExpectStatus(l.status(), absl::StatusCode::kInvalidArgument, "ring size of 1073741824");
  }
  h.state->ring_bytes = kCap + 8;  // not a power of two
  {
    absl::StatusOr<ShmLink> l = ShmLink::Adopt(dup(h.peer.sock()), h.link.segment_fd(), 0);
    ExpectStatus(l.status(), absl::StatusCode::kInvalidArgument, "ring size of 65544");
  }
  h.state->ring_bytes = kCap;
  h.state->version = 9;
  {
    absl::StatusOr<ShmLink> l = ShmLink::Adopt(dup(h.peer.sock()), h.link.segment_fd(), 0);
    ExpectStatus(l.status(), absl::StatusCode::kInvalidArgument, "version 9");
  }
  h.state->version = 2;
  {
    absl::StatusOr<ShmLink> l = ShmLink::Adopt(dup(h.peer.sock()), h.link.segment_fd(), 0);
    ASSERT_TRUE(l.ok()) << l.status();
    ASSERT_TRUE(Send(*l, "adopted").ok());
    absl::StatusOr<std::string> got = Recv(h.link);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "adopted");
  }
}

// =================================================================================================
// Ring words.

// A record is committed by its header word alone: the reader never reads the tail word, so
// nonsense there changes nothing for it.
TEST_F(ShmLinkTest, ReaderNeverReadsTheTailWord) {
  for (uint64_t tail : {uint64_t{5}, uint64_t{kCap + 8}, uint64_t{0}, ~uint64_t{0}}) {
    SCOPED_TRACE(tail);
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    ASSERT_TRUE(Send(h.peer, "first").ok());
    h.Commit(tail);
    EXPECT_TRUE(h.link.ReadyNow());
    absl::StatusOr<std::string> got = Recv(h.link);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "first");
    EXPECT_FALSE(h.link.ReadyNow());
  }
}

// Bytes in the ring without a header word are no record; the header word makes them one.
TEST_F(ShmLinkTest, ARecordIsCommittedByItsHeaderWord) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  h.Bytes(8, "body");
  h.Commit(16);
  EXPECT_FALSE(h.link.ReadyNow());
  absl::StatusOr<bool> ready = h.link.Poll(Deadline::After(absl::Milliseconds(20)));
  ASSERT_TRUE(ready.ok());
  EXPECT_FALSE(*ready);
  h.Header(0, 4, 0, kLinkWhole);
  EXPECT_TRUE(h.link.ReadyNow());
  absl::StatusOr<std::string> got = Recv(h.link);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "body");
}

// What an earlier lap of the ring left where the next record will start must not pass for a
// record: the writer zeroes the next header word before it commits a record.
TEST_F(ShmLinkTest, TheWriterZeroesTheNextHeaderWord) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  h.Bytes(16, std::string(8, '\x11'));  // a leftover at the position after "first"
  ASSERT_TRUE(Send(h.peer, "first").ok());
  absl::StatusOr<std::string> got = Recv(h.link);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "first");
  EXPECT_FALSE(h.link.ReadyNow());
  // Around the ring several times, with messages whose records end at every offset mod 64.
  for (int i = 0; i < 4000; ++i) {
    const std::string body(static_cast<size_t>(i % 61), static_cast<char>('a' + i % 26));
    ASSERT_TRUE(Send(h.peer, body).ok()) << i;
    got = Recv(h.link);
    ASSERT_TRUE(got.ok()) << i << got.status();
    ASSERT_EQ(*got, body) << i;
    ASSERT_FALSE(h.link.ReadyNow()) << i;
  }
}

// The id of a thread that has exited: an owner word holding it has a dead holder.
pid_t DeadThreadId() {
  pid_t tid = 0;
  std::thread t([&tid] { tid = CurrentThreadId(); });
  t.join();
  return tid;
}

// A writer of this end that died holding the write side, after committing a record's header word
// but before it stored the tail word: the writer that takes the side over starts after that
// record, so it is delivered and not overwritten. A malformed record there is kDataLoss for it.
// Without a dead writer the word at tail is the writer's own to overwrite (only the peer could
// have written there).
TEST_F(ShmLinkTest, AWriterTakingOverStartsAfterRecordsCommittedPastTheTailWord) {
  {
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    for (size_t i = 0; i < 3; ++i) {
      h.rings[h.cap + 8 + i] = static_cast<uint8_t>('d' + i);
    }
    h.OutHeader(0, 3, kLinkWhole);  // tail stays 0
    h.out().write_lock.store(static_cast<uint32_t>(DeadThreadId()));
    ASSERT_TRUE(Send(h.link, "next").ok());
    absl::StatusOr<std::string> got = Recv(h.peer);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "def");
    got = Recv(h.peer);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "next");
    EXPECT_EQ(h.out().tail.load(), 32u);
    EXPECT_EQ(h.out().write_lock.load(), 0u);
  }
  for (uint32_t length : {uint32_t{3}, uint32_t{kQuarter + 8}}) {
    SCOPED_TRACE(length);
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    h.OutHeader(0, length, length == 3 ? 7 : kLinkWhole);
    h.out().write_lock.store(static_cast<uint32_t>(DeadThreadId()));
    ExpectStatus(Send(h.link, "next"), absl::StatusCode::kDataLoss,
                 "malformed record at its tail position 0 (kind");
  }
  {
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    h.OutHeader(0, 3, 7);  // the peer's garbage; no writer died
    ASSERT_TRUE(Send(h.link, "next").ok());
    absl::StatusOr<std::string> got = Recv(h.peer);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "next");
  }
}

// The reader's own head word, overwritten off the grid by the peer.
TEST_F(ShmLinkTest, ReaderHeadWordOffTheGridIsDataLoss) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  ASSERT_TRUE(Send(h.peer, "x").ok());
  h.in().head.store(4);
  absl::StatusOr<bool> ready = h.link.Poll(Deadline::After(absl::Seconds(10)));
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(*ready);
  ExpectStatus(Recv(h.link).status(), absl::StatusCode::kDataLoss,
               "shared head word (position 4) is not 8-aligned");
}

// The words of the ring the end under test writes: a head (the peer's word) off the grid or ahead
// of tail, a tail (its own, but in the peer's reach) off the grid. Send is kDataLoss as soon as it
// looks at them (it reads head only when its cached copy shows no room: the fourth 16 KiB message).
TEST_F(ShmLinkTest, WriterSeeingNonsenseWordsIsDataLoss) {
  struct Case {
    uint64_t head;
    const char* names;
  };
  for (const Case& c : {Case{12, "shared head word (position 12) does not fit tail position 49176"},
                        Case{uint64_t{1} << 40, "does not fit tail position 49176"},
                        Case{kCap * 4, "does not fit tail position 49176"}}) {
    SCOPED_TRACE(c.names);
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    h.out().head.store(c.head);
    const std::string body(kQuarter, 'q');
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(Send(h.link, body).ok()) << i;
    ExpectStatus(Send(h.link, body), absl::StatusCode::kDataLoss, c.names);
    ExpectStatus(Send(h.link, body), absl::StatusCode::kDataLoss, "head word");
  }
  {
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    h.out().tail.store(3);
    ExpectStatus(Send(h.link, "x"), absl::StatusCode::kDataLoss,
                 "shared tail word (position 3) is not 8-aligned");
  }
  {
    // Tail moved more than a ring past head: no room can ever be made.
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    h.out().tail.store(kCap * 8);
    ExpectStatus(Send(h.link, "x"), absl::StatusCode::kDataLoss,
                 "does not fit tail position 524288");
  }
  {
    // A message in parts meets the nonsense head in the middle.
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    h.out().head.store(20);
    ExpectStatus(Send(h.link, std::string(size_t{1} << 20, 'b')), absl::StatusCode::kDataLoss,
                 "shared head word (position 20)");
  }
}

// =================================================================================================
// Record headers.

TEST_F(ShmLinkTest, RecordOfUnknownKindIsDataLoss) {
  for (uint8_t kind : {uint8_t{0}, uint8_t{kLinkPart}, uint8_t{4}, uint8_t{9}, uint8_t{255}}) {
    SCOPED_TRACE(kind);
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    h.Header(0, 4, 0, kind);
    h.Commit(16);
    ExpectStatus(Recv(h.link).status(), absl::StatusCode::kDataLoss,
                 "malformed record at position 0 (kind " + std::to_string(kind) + ",");
  }
}

TEST_F(ShmLinkTest, RecordWithNonzeroLastHeaderByteIsDataLoss) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  ASSERT_TRUE(Send(h.peer, "good").ok());
  ASSERT_TRUE(Recv(h.link).ok());
  h.Header(16, 4, 0, kLinkWhole, /*zero=*/1);
  h.Commit(32);
  ExpectStatus(Recv(h.link).status(), absl::StatusCode::kDataLoss,
               "malformed record at position 16 (kind 1, 0 descriptors, last byte 1)");
}

// A whole record above a quarter of the ring, all of it committed. The status must name the limit
// it broke, not claim the record is longer than the (larger) committed bytes.
TEST_F(ShmLinkTest, WholeRecordAboveAQuarterRingIsDataLoss) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  const uint64_t end = h.Whole(0, std::string(kQuarter + 8, 'w'));
  h.Commit(end);
  absl::Status s = Recv(h.link).status();
  ExpectStatus(s, absl::StatusCode::kDataLoss, "16392-byte record at position 0");
  EXPECT_THAT(std::string(s.message()), AnyOf(HasSubstr("16384"), HasSubstr("quarter"))) << s;
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("longer than the 16400 bytes committed")))
      << s;
}

TEST_F(ShmLinkTest, StartRecordThatFitsOneRecordIsDataLoss) {
  for (uint32_t length : {uint32_t{0}, uint32_t{100}, uint32_t{kQuarter}}) {
    SCOPED_TRACE(length);
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    h.Header(0, length, 0, kLinkStart);
    h.Commit(8);
    ExpectStatus(Recv(h.link).status(), absl::StatusCode::kDataLoss,
                 std::to_string(length) + "-byte message in parts at position 0 fits one record");
  }
}

// A message above the receiver's max message size is kInvalidArgument, whole or in parts, before
// any of it is read. Its declared descriptors may still be handed over: the caller closes them.
TEST_F(ShmLinkTest, MessageAboveMaxMessageSizeIsInvalidArgument) {
  {
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    h.Header(0, 40000, 0, kLinkStart);
    h.Commit(8);
    ExpectStatus(h.link.BeginRecv(nullptr, 32768).status(), absl::StatusCode::kInvalidArgument,
                 "incoming message of 40000 bytes exceeds the max message size of 32768");
    // A 4 GiB - 1 announcement costs the receiver nothing either.
    h.Header(0, 0xffffffffu, 0, kLinkStart);
    ExpectStatus(h.link.BeginRecv(nullptr, 32768).status(), absl::StatusCode::kInvalidArgument,
                 "incoming message of 4294967295 bytes");
  }
  {
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    int file = NewFile();
    ASSERT_GE(file, 0);
    ASSERT_TRUE(Send(h.peer, std::string(100, 'x'), {file}).ok());
    close(file);
    std::vector<int> fds;
    ExpectStatus(h.link.BeginRecv(&fds, 50).status(), absl::StatusCode::kInvalidArgument,
                 "incoming message of 100 bytes exceeds the max message size of 50");
    EXPECT_LE(fds.size(), 1u);
    CloseFds(fds);
  }
}

// Part records that no Send writes: of the wrong kind, empty, longer than what is left of the
// message, longer than a quarter ring, or declaring descriptors.
TEST_F(ShmLinkTest, BadPartRecordsAreDataLoss) {
  struct Case {
    const char* what;
    uint32_t message;
    // Writes the parts from position 8; returns the tail to commit.
    std::function<uint64_t(const HostileLink&)> parts;
    const char* names;
  };
  const Case cases[] = {
      {"wrong kind", 20000, [](const HostileLink& h) { return h.Part(8, 100, kLinkWhole); },
       "malformed part record at position 8 (kind 1, 100 bytes"},
      {"start kind", 20000, [](const HostileLink& h) { return h.Part(8, 100, kLinkStart); },
       "malformed part record at position 8 (kind 2"},
      {"zero length", 20000, [](const HostileLink& h) { return h.Part(8, 0); },
       "malformed part record at position 8 (kind 3, 0 bytes with 20000 of the message left"},
      {"longer than what is left", 20000,
       [](const HostileLink& h) { return h.Part(h.Part(8, kQuarter), 3624); },
       "malformed part record at position 16400 (kind 3, 3624 bytes with 3616 of the message left"},
      {"above a quarter ring", 40000, [](const HostileLink& h) { return h.Part(8, kQuarter + 8); },
       "malformed part record at position 8 (kind 3, 16392 bytes with 40000 of the message left"},
      {"declaring descriptors", 20000,
       [](const HostileLink& h) { return h.Part(8, 100, kLinkPart, /*fd_count=*/1); },
       "malformed part record at position 8"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    HostileLink h = MakeLink();
    ASSERT_LINK(h);
    h.Header(0, c.message, 0, kLinkStart);
    h.Commit(c.parts(h));
    absl::StatusOr<uint32_t> length = h.link.BeginRecv(nullptr, kNoLimit);
    ASSERT_TRUE(length.ok()) << length.status();
    ASSERT_EQ(*length, c.message);
    std::string body(c.message, '\0');
    ExpectStatus(h.link.ReadBody(reinterpret_cast<uint8_t*>(body.data()), body.size()),
                 absl::StatusCode::kDataLoss, c.names);
  }
}

// More descriptors than any message carries (connection.h's kMaxFdsPerMessage, 253).
TEST_F(ShmLinkTest, RecordDeclaringTooManyDescriptorsIsRefused) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  int file = NewFile();
  ASSERT_GE(file, 0);
  ASSERT_EQ(SendPacket(h.sock(), FdPacket(0), {file}), 9);
  close(file);
  h.Header(0, 4, 254, kLinkWhole);
  h.Commit(16);
  std::vector<int> fds;
  ExpectStatus(Recv(h.link, &fds).status(), absl::StatusCode::kDataLoss, "254 descriptors");
  EXPECT_TRUE(fds.empty());
  CloseFds(fds);
  // 253 is a count a record may declare (here with one arrived: refused for that instead).
  h.Header(0, 4, 253, kLinkWhole);
  ExpectStatus(Recv(h.link, &fds).status(), absl::StatusCode::kInvalidArgument,
               "message says it carries 253 descriptors but 1 arrived");
  EXPECT_TRUE(fds.empty());
}

// =================================================================================================
// Descriptor packets.

TEST_F(ShmLinkTest, DeclaredDescriptorsThatNeverArriveAreInvalidArgument) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  h.Whole(0, "abc", /*fd_count=*/2);
  h.Commit(16);
  std::vector<int> fds;
  ExpectStatus(Recv(h.link, &fds).status(), absl::StatusCode::kInvalidArgument,
               "message says it carries 2 descriptors but none arrived");
  EXPECT_TRUE(fds.empty());
  // A packet for another position is no packet for this record.
  int file = NewFile();
  ASSERT_GE(file, 0);
  ASSERT_EQ(SendPacket(h.sock(), FdPacket(8), {file}), 9);
  close(file);
  ExpectStatus(Recv(h.link, &fds).status(), absl::StatusCode::kInvalidArgument,
               "2 descriptors but none arrived");
  EXPECT_TRUE(fds.empty());
}

TEST_F(ShmLinkTest, FewerDescriptorsThanDeclaredAreInvalidArgumentAndClosed) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  int file = NewFile();
  ASSERT_GE(file, 0);
  ASSERT_EQ(SendPacket(h.sock(), FdPacket(0), {file}), 9);
  close(file);
  h.Whole(0, "abc", /*fd_count=*/2);
  h.Commit(16);
  const int before = CountOpenFds();
  std::vector<int> fds;
  ExpectStatus(Recv(h.link, &fds).status(), absl::StatusCode::kInvalidArgument,
               "message says it carries 2 descriptors but 1 arrived");
  EXPECT_TRUE(fds.empty());
  EXPECT_EQ(CountOpenFds(), before);  // the one that arrived was closed
}

// Descriptors beyond the declared count were declared by nobody: closed, the message delivered
// with the declared ones (the first of the packet).
TEST_F(ShmLinkTest, ExtraDescriptorsAreClosedAndTheMessageDelivered) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  std::vector<int> files = {NewFile(), NewFile(), NewFile()};
  for (int f : files) ASSERT_GE(f, 0);
  ASSERT_EQ(SendPacket(h.sock(), FdPacket(0), files), 9);
  const auto first = Identity(files[0]);
  CloseFds(files);
  uint64_t pos = h.Whole(0, "abc", /*fd_count=*/1);
  pos = h.Whole(pos, "def");
  pos = h.Whole(pos, "ghi");
  h.Commit(pos);
  const int before = CountOpenFds();
  std::vector<int> fds;
  absl::StatusOr<std::string> got = Recv(h.link, &fds);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "abc");
  ASSERT_EQ(fds.size(), 1u);
  EXPECT_EQ(Identity(fds[0]), first);
  EXPECT_EQ(CountOpenFds(), before + 1);
  CloseFds(fds);
  // And a message that declares none, with a packet for it all the same.
  int extra = NewFile();
  ASSERT_GE(extra, 0);
  ASSERT_EQ(SendPacket(h.sock(), FdPacket(16), {extra}), 9);
  close(extra);
  for (const char* want : {"def", "ghi"}) {
    absl::StatusOr<std::string> next = Recv(h.link, &fds);
    ASSERT_TRUE(next.ok()) << next.status();
    EXPECT_EQ(*next, want);
    EXPECT_TRUE(fds.empty());
  }
  EXPECT_LE(CountOpenFds(), before);
}

// Packets for positions the reader has passed are closed when it looks for the next one.
TEST_F(ShmLinkTest, PacketsForStalePositionsAreClosed) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  ASSERT_TRUE(Send(h.peer, "a").ok());
  ASSERT_TRUE(Send(h.peer, "b").ok());
  ASSERT_TRUE(Recv(h.link).ok());
  ASSERT_TRUE(Recv(h.link).ok());  // head is 32
  std::vector<int> stale = {NewFile(), NewFile()};
  for (int f : stale) ASSERT_GE(f, 0);
  ASSERT_EQ(SendPacket(h.sock(), FdPacket(0), stale), 9);
  ASSERT_EQ(SendPacket(h.sock(), FdPacket(16), {stale[0]}), 9);
  ASSERT_EQ(SendPacket(h.sock(), FdPacket(24), {stale[1]}), 9);
  CloseFds(stale);
  int file = NewFile();
  ASSERT_GE(file, 0);
  const auto want = Identity(file);
  ASSERT_TRUE(Send(h.peer, "c", {file}).ok());
  close(file);
  const int before = CountOpenFds();
  std::vector<int> fds;
  absl::StatusOr<std::string> got = Recv(h.link, &fds);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "c");
  ASSERT_EQ(fds.size(), 1u);
  EXPECT_EQ(Identity(fds[0]), want);
  EXPECT_EQ(CountOpenFds(), before + 1);  // the four stale descriptors were closed
  CloseFds(fds);
}

// =================================================================================================
// Malformed side-socket packets.

struct BadPacket {
  const char* what;
  std::string data;
  int fds;
  const char* names;
};

std::vector<BadPacket> BadPackets() {
  return {
      {"unknown type", "X", 0, "malformed 1-byte packet with 0 descriptors"},
      {"unknown type with a descriptor", std::string("Q") + FdPacket(0).substr(1), 1,
       "malformed 9-byte packet with 1 descriptors"},
      {"wake-up with a descriptor", "W", 1, "malformed 1-byte packet with 1 descriptors"},
      {"long wake-up", "WW", 0, "malformed 2-byte packet"},
      {"descriptor packet without descriptors", FdPacket(0), 0,
       "malformed 9-byte packet with 0 descriptors"},
      {"short descriptor packet", FdPacket(0).substr(0, 8), 1, "malformed 8-byte packet"},
      {"long descriptor packet", FdPacket(0) + "x", 2, "malformed 10-byte packet with 2"},
      {"oversized packet", FdPacket(0) + std::string(100, 'x'), 1, "malformed"},
  };
}

// A malformed packet is kInvalidArgument naming its size and descriptors (which are closed), found
// by a Poll (which then returns true: the receive reports it) or by a receive waiting for data.
TEST_F(ShmLinkTest, MalformedPacketsAreInvalidArgument) {
  for (bool through_poll : {true, false}) {
    for (const BadPacket& p : BadPackets()) {
      SCOPED_TRACE(std::string(p.what) + (through_poll ? " (Poll)" : " (BeginRecv)"));
      HostileLink h = MakeLink();
      ASSERT_LINK(h);
      std::vector<int> files;
      for (int i = 0; i < p.fds; ++i) files.push_back(NewFile());
      ASSERT_EQ(SendPacket(h.sock(), p.data, files), static_cast<ssize_t>(p.data.size()));
      CloseFds(files);
      const int before = CountOpenFds();
      if (through_poll) {
        Bounded<absl::StatusOr<bool>> ready = RunBounded(
            absl::Seconds(5), [&] { return h.link.Poll(Deadline::After(absl::Seconds(10))); },
            [&] { h.Commit(h.Whole(0, "rescue")); });
        EXPECT_TRUE(ready.in_time);
        ASSERT_TRUE(ready.value.ok());
        EXPECT_TRUE(*ready.value);
        EXPECT_TRUE(h.link.ReadyNow());
      }
      Bounded<absl::Status> first = RunBounded(
          absl::Seconds(5), [&] { return Recv(h.link).status(); },
          [&] { h.Commit(h.Whole(0, "rescue")); });
      EXPECT_TRUE(first.in_time);
      ExpectStatus(first.value, absl::StatusCode::kInvalidArgument, p.names);
      // Sticky: the next receive fails too.
      ExpectStatus(Recv(h.link).status(), absl::StatusCode::kInvalidArgument, p.names);
      EXPECT_TRUE(h.link.ReadyNow());
      EXPECT_EQ(CountOpenFds(), before);  // its descriptors were closed
    }
  }
}

// Sticky also when a message follows in the ring: a side-socket violation already consumed is
// what every later receive returns (shm_link.h, error_).
TEST_F(ShmLinkTest, MalformedPacketStaysStickyWhenAMessageFollows) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  ASSERT_EQ(SendPacket(h.sock(), "X", {}), 1);
  absl::StatusOr<bool> ready = h.link.Poll(Deadline::After(absl::Seconds(10)));
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(*ready);
  ExpectStatus(Recv(h.link).status(), absl::StatusCode::kInvalidArgument, "malformed 1-byte");
  ASSERT_TRUE(Send(h.peer, "after the violation").ok());
  absl::StatusOr<std::string> after = Recv(h.link);
  ExpectStatus(after.status(), absl::StatusCode::kInvalidArgument, "malformed 1-byte");
}

// The same, with the violation taken in by mp::Wait's path (ArmPollWake / TakeWake).
TEST_F(ShmLinkTest, MalformedPacketTakenByAWaitStaysSticky) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  EXPECT_FALSE(h.link.ArmPollWake());
  ASSERT_EQ(SendPacket(h.sock(), "X", {}), 1);
  absl::StatusOr<short> revents =
      PollUntil(h.link.sock(), POLLIN, Deadline::After(absl::Seconds(10)));
  ASSERT_TRUE(revents.ok());
  ASSERT_NE(*revents & POLLIN, 0);
  h.link.TakeWake(*revents);
  EXPECT_TRUE(h.link.ReadyNow());
  ASSERT_TRUE(Send(h.peer, "after the violation").ok());
  ExpectStatus(Recv(h.link).status(), absl::StatusCode::kInvalidArgument, "malformed 1-byte");
}

// A zero-length packet (mp never sends one) reads like end of file, but the peer is alive: it is
// no end of file, and messages after it arrive.
TEST_F(ShmLinkTest, ZeroLengthPacketIsNotEndOfFile) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(SendPacket(h.sock(), "", {}), 0);
  Bounded<absl::StatusOr<bool>> ready = RunBounded(
      absl::Seconds(5), [&] { return h.link.Poll(Deadline::After(absl::Milliseconds(50))); },
      [&] { h.Commit(h.Whole(0, "rescue")); });
  EXPECT_TRUE(ready.in_time);
  ASSERT_TRUE(ready.value.ok());
  EXPECT_FALSE(*ready.value);
  EXPECT_FALSE(h.link.ReadyNow());
  // Through mp::Wait's path too.
  ASSERT_EQ(SendPacket(h.sock(), "", {}), 0);
  EXPECT_FALSE(h.link.ArmPollWake());
  absl::StatusOr<short> revents =
      PollUntil(h.link.sock(), POLLIN, Deadline::After(absl::Seconds(10)));
  ASSERT_TRUE(revents.ok());
  h.link.TakeWake(*revents);
  EXPECT_FALSE(h.link.ReadyNow());
  ASSERT_TRUE(Send(h.peer, "alive").ok());
  absl::StatusOr<std::string> got = Recv(h.link);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "alive");
}

// =================================================================================================
// Floods.

// Sends up to `count` descriptor packets (for positions far ahead, one descriptor each) without
// blocking; returns how many went.
int FloodFdPackets(int sock, int count) {
  int file = NewFile();
  int sent = 0;
  for (; sent < count; ++sent) {
    if (SendPacket(sock, FdPacket(uint64_t{1} << 40 | static_cast<uint64_t>(sent) * 8), {file},
                   MSG_NOSIGNAL | MSG_DONTWAIT) != 9) {
      break;
    }
  }
  close(file);
  return sent;
}

// A flood of descriptor packets with nothing in the ring: the receiver holds at most
// kMaxPendingPackets of them, and a Poll with a 50 ms deadline returns (well) within a second.
TEST_F(ShmLinkTest, DescriptorPacketFloodDoesNotHoldUpPoll) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  ASSERT_GT(FloodFdPackets(h.sock(), 64), static_cast<int>(kMaxPendingPackets) + 1);
  const int before = CountOpenFds();
  Bounded<absl::StatusOr<bool>> ready = RunBounded(
      absl::Seconds(3), [&] { return h.link.Poll(Deadline::After(absl::Milliseconds(50))); },
      [&] { h.Commit(h.Whole(0, "rescue")); });
  EXPECT_TRUE(ready.in_time) << "Poll(50 ms) still running after 3 s";
  EXPECT_LT(ready.took, absl::Seconds(1));
  EXPECT_TRUE(ready.value.ok());
  EXPECT_LE(CountOpenFds(), before + static_cast<int>(kMaxPendingPackets));
}

// ... and a receive waiting for a message refuses the flood (kInvalidArgument) instead of spinning.
TEST_F(ShmLinkTest, DescriptorPacketFloodFailsAReceive) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  ASSERT_GT(FloodFdPackets(h.sock(), 64), static_cast<int>(kMaxPendingPackets) + 1);
  const int before = CountOpenFds();
  Bounded<absl::Status> got = RunBounded(
      absl::Seconds(3), [&] { return Recv(h.link).status(); },
      [&] { h.Commit(h.Whole(0, "rescue")); });
  EXPECT_TRUE(got.in_time) << "BeginRecv still spinning after 3 s";
  ExpectStatus(got.value, absl::StatusCode::kInvalidArgument, "descriptor packets");
  EXPECT_LE(CountOpenFds(), before + static_cast<int>(kMaxPendingPackets));
}

// ... and through mp::Wait's path (ArmPollWake / TakeWake): ready at once, the receive failing.
TEST_F(ShmLinkTest, DescriptorPacketFloodTakenByAWaitFailsTheReceive) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  ASSERT_GT(FloodFdPackets(h.sock(), 64), static_cast<int>(kMaxPendingPackets) + 1);
  const int before = CountOpenFds();
  EXPECT_FALSE(h.link.ArmPollWake());
  absl::StatusOr<short> revents =
      PollUntil(h.link.sock(), POLLIN, Deadline::After(absl::Seconds(10)));
  ASSERT_TRUE(revents.ok());
  h.link.TakeWake(*revents);
  EXPECT_TRUE(h.link.ReadyNow());
  EXPECT_LE(CountOpenFds(), before + static_cast<int>(kMaxPendingPackets));
  Bounded<absl::Status> got = RunBounded(
      absl::Seconds(3), [&] { return Recv(h.link).status(); },
      [&] { h.Commit(h.Whole(0, "rescue")); });
  EXPECT_TRUE(got.in_time);
  ExpectStatus(got.value, absl::StatusCode::kInvalidArgument,
               "descriptor packets ahead of any message");
}

// The peer writes wake-up packets without pause (six threads) and commits nothing: a Poll never
// returns true without data, and returns at its deadline, not when the flood stops. (Whether a
// flood outpaces the reader at a given moment is up to the scheduler, so a Poll that honours its
// deadline only when poll(2) times out overruns it by a random amount: ten rounds.)
TEST_F(ShmLinkTest, WakePacketFloodNeverMakesPollTrue) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> sent{0};
  std::vector<std::thread> flood;
  for (int t = 0; t < 6; ++t) {
    flood.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        if (SendPacket(h.sock(), "W", {}, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
          sent.fetch_add(1, std::memory_order_relaxed);
        } else {
          struct pollfd p = {h.sock(), POLLOUT, 0};
          poll(&p, 1, 10);
        }
      }
    });
  }
  for (int round = 0; round < 10; ++round) {
    Bounded<absl::StatusOr<bool>> ready = RunBounded(
        absl::Seconds(3), [&] { return h.link.Poll(Deadline::After(absl::Milliseconds(50))); },
        [&] { stop.store(true); });
    EXPECT_TRUE(ready.in_time) << "Poll(50 ms) still running after 3 s of wake-ups";
    EXPECT_LT(ready.took, absl::Seconds(1)) << round;
    ASSERT_TRUE(ready.value.ok());
    EXPECT_FALSE(*ready.value) << round;
    if (!ready.in_time) break;
  }
  stop.store(true);
  for (std::thread& t : flood) t.join();
  EXPECT_GT(sent.load(), 0);
  // The wake-ups change nothing for the next message.
  ASSERT_TRUE(Send(h.peer, "data").ok());
  absl::StatusOr<bool> ready = h.link.Poll(Deadline::After(absl::Seconds(10)));
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(*ready);
  absl::StatusOr<std::string> got = Recv(h.link);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "data");
}

// A peer that keeps writing garbage into the waiting words of both rings costs wake-ups (futex
// wakes, 'W' packets, a busy futex phase), nothing else: messages both ways (1 MiB ones, the
// writer waiting for room) arrive, and a Poll without data still times out at its deadline.
TEST_F(ShmLinkTest, GarbageWaitingWordsOnlyCostWakeUps) {
  HostileLink h = MakeLink();
  ASSERT_LINK(h);
  std::atomic<bool> stop{false};
  std::thread garbage([&] {
    uint32_t x = 0x9e3779b9u;
    while (!stop.load(std::memory_order_relaxed)) {
      x = x * 1103515245u + 12345u;
      for (int e = 0; e < 2; ++e) {
        h.state->rings[e].reader_waiting.store(x | 3, std::memory_order_relaxed);
        h.state->rings[e].writer_waiting.store(~x, std::memory_order_relaxed);
      }
      SpinPause();
    }
  });
  const std::string big = Pattern(size_t{1} << 20, 11);
  for (int i = 0; i < 3; ++i) {
    absl::Status sent;
    std::thread sender([&] { sent = Send(h.peer, big); });
    absl::StatusOr<std::string> got = Recv(h.link);
    sender.join();
    ASSERT_TRUE(sent.ok()) << sent;
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == big);
    std::thread back([&] { sent = Send(h.link, big); });
    absl::StatusOr<std::string> echoed = Recv(h.peer);
    back.join();
    ASSERT_TRUE(sent.ok()) << sent;
    ASSERT_TRUE(echoed.ok()) << echoed.status();
    EXPECT_TRUE(*echoed == big);
  }
  Bounded<absl::StatusOr<bool>> ready = RunBounded(
      absl::Seconds(3), [&] { return h.link.Poll(Deadline::After(absl::Milliseconds(50))); },
      [&] { h.Commit(h.Whole(h.in().tail.load(), "rescue")); });
  EXPECT_TRUE(ready.in_time);
  EXPECT_LT(ready.took, absl::Seconds(1));
  ASSERT_TRUE(ready.value.ok());
  EXPECT_FALSE(*ready.value);
  stop.store(true);
  garbage.join();
  ASSERT_TRUE(Send(h.peer, "small").ok());
  absl::StatusOr<std::string> got = Recv(h.link);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "small");
}

}  // namespace
}  // namespace mp::channels_internal
