// Copyright 2026 The mp Authors.
//
// A hostile peer writes bytes (and descriptors) straight into a Connection's socket (the socket
// transport, ConnectionTransport::kSocket: the peer is the released other end of its Pipe):
// random bytes, valid prefixes followed by garbage, huge lengths, bad reserved fields, wrong
// descriptor counts, frames with flipped bytes, and closes mid-frame. The receiver is checked against a reference
// parser of the wire format documented in channels/connection.h:
//   * a complete, well-formed message arrives exactly as sent (RecvBytes, RecvBytesInto, Recv<T>);
//   * a malformed prefix, an oversized length (max message size or RecvBytes' maxlength) or a
//     descriptor count that does not match what arrived is kInvalidArgument, and the connection
//     closes itself: every later call is kFailedPrecondition;
//   * end of file between messages is kOutOfRange (and stays so); in the middle of a prefix or body
//     it is kDataLoss and the connection is closed;
//   * RecvBytesInto with too little room is kResourceExhausted, consumes the message and leaves the
//     connection usable;
//   * Recv<T> of a message that is not a valid T frame fails with exactly DecodeFrame<T>'s status,
//     consumes the message and leaves the connection usable;
//   * no descriptor is leaked, nothing crashes (the randomized run is part of the asan/ubsan runs).

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "channels/connection.h"
#include "channels/test_transports.h"
#include "gtest/gtest.h"
#include "serialize/codec.h"
#include "serialize/frame.h"
#include "testing/sanitizers.h"
#include "tests/faults/fault_util.h"

namespace mp::faults {

struct Point {
  int32_t x = 0;
  std::string name;
  std::vector<uint16_t> tags;
  bool operator==(const Point& o) const { return x == o.x && name == o.name && tags == o.tags; }
};
MP_FIELDS(Point, x, name, tags);

namespace {

uint32_t Le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}
uint16_t Le16(const std::string& s, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(s[at]) |
                               (static_cast<uint8_t>(s[at + 1]) << 8));
}
std::string Prefix(uint32_t length, uint16_t fds, uint16_t reserved = 0) {
  std::string p(8, '\0');
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(length >> (8 * i));
  p[4] = static_cast<char>(fds);
  p[5] = static_cast<char>(fds >> 8);
  p[6] = static_cast<char>(reserved);
  p[7] = static_cast<char>(reserved >> 8);
  return p;
}

// Writes `bytes` (with `nfds` descriptors of /dev/null attached) into the raw end, then closes it.
void HostileWrite(int raw, const std::string& bytes, int nfds) {
  size_t done = 0;
  if (nfds > 0) {
    int fds[3];
    for (int i = 0; i < nfds; ++i) fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    char control[CMSG_SPACE(sizeof(fds))] = {};
    iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    const ssize_t n = sendmsg(raw, &msg, MSG_NOSIGNAL);
    for (int i = 0; i < nfds; ++i) close(fds[i]);
    ASSERT_EQ(n, static_cast<ssize_t>(iov.iov_len));
    done = bytes.size();
  }
  while (done < bytes.size()) {
    const ssize_t n = send(raw, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    done += static_cast<size_t>(n);
  }
  close(raw);
}

// What the next receive must produce, by the documented wire format.
struct Expected {
  enum Kind { kMessage, kBadPrefix, kTooLong, kFdMismatch, kTruncated, kEof } kind;
  std::string body;
  uint32_t length = 0;
};

// Reference parser state over the bytes the hostile peer sent.
class Reference {
 public:
  Reference(std::string bytes, size_t pending_fds, size_t max_message_size)
      : bytes_(std::move(bytes)), pending_fds_(pending_fds), max_(max_message_size) {}

  // The outcome of the next receive with `maxlength` (RecvBytes; npos otherwise).
  Expected Next(size_t maxlength) {
    const size_t left = bytes_.size() - pos_;
    if (left == 0) return {Expected::kEof};
    if (left < 8) return {Expected::kTruncated};
    const uint32_t length = Le32(bytes_, pos_);
    const uint16_t fds = Le16(bytes_, pos_ + 4);
    const uint16_t reserved = Le16(bytes_, pos_ + 6);
    if (reserved != 0) return {Expected::kBadPrefix};
    if (length > max_) return {Expected::kTooLong};
    if (fds > kMaxFdsPerMessage || fds > pending_fds_) return {Expected::kFdMismatch};
    if (length > maxlength) return {Expected::kTooLong};
    if (left - 8 < length) return {Expected::kTruncated};
    Expected e{Expected::kMessage, bytes_.substr(pos_ + 8, length), length};
    pos_ += 8 + length;
    pending_fds_ -= fds;
    return e;
  }

 private:
  std::string bytes_;
  size_t pos_ = 0;
  size_t pending_fds_;
  size_t max_;
};

// Makes one hostile input.
std::string MakeInput(Rng& rng, int* nfds) {
  *nfds = 0;
  std::string out;
  auto random_bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng.Next());
    return s;
  };
  auto frame = [&]() -> std::string {
    switch (rng.Range(0, 2)) {
      case 0:
        return *EncodeFrame(random_bytes(rng.Range(0, 40)));
      case 1:
        return *EncodeFrame(std::vector<int32_t>(rng.Range(0, 10), 7));
      default:
        return *EncodeFrame(
            Point{static_cast<int32_t>(rng.Next()), random_bytes(rng.Range(0, 9)), {1, 2, 3}});
    }
  };
  const int messages = static_cast<int>(rng.Range(0, 4));
  for (int m = 0; m < messages; ++m) {
    switch (rng.Range(0, 9)) {
      case 0:  // garbage
        out += random_bytes(rng.Range(0, 24));
        break;
      case 1:  // huge length
        out += Prefix(static_cast<uint32_t>(rng.Range(1 << 16, 0xffffffffu)), 0);
        break;
      case 2:  // bad reserved field
        out += Prefix(static_cast<uint32_t>(rng.Range(0, 8)), 0,
                      static_cast<uint16_t>(rng.Range(1, 0xffff)));
        break;
      case 3:  // descriptor count out of thin air
        out += Prefix(0, static_cast<uint16_t>(rng.Range(1, 300)));
        break;
      case 4:  // a frame with a flipped byte
      case 5: {
        std::string f = frame();
        if (rng.Range(0, 1) == 0 && !f.empty())
          f[rng.Range(0, f.size() - 1)] ^= 1 << rng.Range(0, 7);
        if (rng.Range(0, 3) == 0) f.resize(rng.Range(0, f.size()));  // truncated inside the body
        out += Prefix(static_cast<uint32_t>(f.size()), 0) + f;
        break;
      }
      default: {  // valid raw message (maybe claiming a descriptor)
        const std::string body = random_bytes(rng.Range(0, 100));
        uint16_t fds = 0;
        if (rng.Range(0, 4) == 0 && *nfds < 3) {
          fds = 1;
          ++*nfds;
        }
        out += Prefix(static_cast<uint32_t>(body.size()), fds) + body;
      }
    }
  }
  if (rng.Range(0, 3) == 0 && !out.empty()) out.resize(rng.Range(0, out.size()));  // close mid-way
  if (rng.Range(0, 5) == 0 && *nfds < 3) ++*nfds;  // a stray descriptor nobody claims
  if (out.empty()) *nfds = 0;                      // descriptors need a byte to ride on
  return out;
}

template <typename T>
void CheckTyped(Connection& c, const Expected& e, const std::string& where) {
  absl::StatusOr<T> got = c.Recv<T>();
  absl::StatusOr<T> want = DecodeFrame<T>(e.body, c.max_message_size());
  if (want.status().code() == absl::StatusCode::kOutOfRange) {
    // A complete message whose frame is cut short is malformed, not end of file (known_bugs_test,
    // bug 1, fixed).
    want = absl::InvalidArgumentError(
        absl::StrCat("Connection::Recv: malformed message: ", want.status().message()));
  }
  ASSERT_EQ(got.status(), want.status()) << where;
  if (want.ok()) {
    ASSERT_TRUE(*got == *want) << where;
  }
}

// A Connection and the raw socket of its peer (the socket transport: a shared-memory end has no raw
// socket to write into).
absl::StatusOr<std::pair<Connection, Connection>> SocketPipe() {
  return mp::Pipe(/*duplex=*/true, ConnectionTransport::kSocket);
}

// Runs one hostile input against a fresh Connection; returns how many receive calls were checked.
int RunOne(uint64_t seed) {
  Rng rng(seed);
  int nfds = 0;
  const std::string input = MakeInput(rng, &nfds);
  absl::StatusOr<std::pair<Connection, Connection>> pipe = SocketPipe();
  EXPECT_TRUE(pipe.ok());
  if (!pipe.ok()) return 0;
  Connection& c = pipe->first;
  const size_t max = rng.Range(0, 3) == 0 ? rng.Range(1, 64) : kDefaultMaxMessageSize;
  EXPECT_TRUE(c.set_max_message_size(max).ok());
  HostileWrite(pipe->second.Release(), input, nfds);
  Reference ref(input, nfds, max);
  const std::string where =
      absl::StrCat("seed ", seed, ", ", input.size(), " bytes, ", nfds, " fds");
  if (getenv("MP_HOSTILE_DEBUG") != nullptr && std::stoull(getenv("MP_HOSTILE_DEBUG")) == seed) {
    std::string hex;
    for (unsigned char ch : input) absl::StrAppend(&hex, absl::Hex(ch, absl::kZeroPad2));
    fprintf(stderr, "%s: %s\n", where.c_str(), hex.c_str());
  }
  int calls = 0;
  for (int step = 0; step < 10; ++step) {
    ++calls;
    const int how = static_cast<int>(rng.Range(0, 5));
    const size_t maxlength = how == 1 ? rng.Range(0, 120) : Connection::npos;
    const Expected e = ref.Next(maxlength);
    if (e.kind == Expected::kMessage) {
      switch (how) {
        case 0:
        case 1: {
          absl::StatusOr<std::string> got = c.RecvBytes(maxlength);
          EXPECT_TRUE(got.ok()) << where << got.status();
          if (got.ok()) {
            EXPECT_EQ(*got, e.body) << where;
          }
          break;
        }
        case 2: {
          std::vector<uint8_t> buf(rng.Range(0, 120));
          const size_t offset = rng.Range(0, buf.size());
          std::string too_short;
          absl::StatusOr<size_t> got = c.RecvBytesInto(absl::MakeSpan(buf), offset, &too_short);
          if (e.body.size() <= buf.size() - offset) {
            EXPECT_TRUE(got.ok()) << where << got.status();
            if (got.ok()) {
              EXPECT_EQ(*got, e.body.size());
              EXPECT_EQ(std::string(buf.begin() + offset, buf.begin() + offset + *got), e.body);
            }
          } else {
            EXPECT_TRUE(absl::IsResourceExhausted(got.status())) << where << got.status();
            EXPECT_EQ(too_short, e.body) << where;
          }
          break;
        }
        case 3:
          CheckTyped<std::string>(c, e, where);
          break;
        case 4:
          CheckTyped<std::vector<int32_t>>(c, e, where);
          break;
        default:
          CheckTyped<Point>(c, e, where);
      }
      if (::testing::Test::HasFailure()) return calls;
      continue;
    }
    absl::Status s;
    if (how == 3) {
      s = c.Recv<std::string>().status();
    } else {
      s = c.RecvBytes(maxlength).status();
    }
    switch (e.kind) {
      case Expected::kEof:
        EXPECT_TRUE(absl::IsOutOfRange(s)) << where << s;
        EXPECT_TRUE(absl::IsOutOfRange(c.RecvBytes().status())) << where;  // and stays so
        return calls;
      case Expected::kTruncated:
        EXPECT_TRUE(absl::IsDataLoss(s)) << where << s;
        break;
      default:
        EXPECT_TRUE(absl::IsInvalidArgument(s)) << where << s;
    }
    // Cleanly closed: every later call is kFailedPrecondition.
    EXPECT_TRUE(c.closed()) << where;
    EXPECT_TRUE(absl::IsFailedPrecondition(c.RecvBytes().status())) << where;
    return calls;
  }
  return calls;
}

TEST(HostilePeerTest, GarbageIsInvalidArgumentAndCloses) {
  absl::StatusOr<std::pair<Connection, Connection>> pipe = SocketPipe();
  ASSERT_TRUE(pipe.ok());
  const int raw = pipe->second.Release();
  ASSERT_EQ(write(raw, "GET / HTTP/1.1\r\n\r\n", 18), 18);
  absl::StatusOr<std::string> got = pipe->first.RecvBytes();
  EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
  EXPECT_TRUE(pipe->first.closed());
  EXPECT_TRUE(absl::IsFailedPrecondition(pipe->first.Poll().status()));
  close(raw);
}

TEST(HostilePeerTest, HugeLengthIsRefusedWithoutAllocating) {
  absl::StatusOr<std::pair<Connection, Connection>> pipe = SocketPipe();
  ASSERT_TRUE(pipe.ok());
  const int raw = pipe->second.Release();
  const std::string p = Prefix(0xffffffffu, 0);
  ASSERT_EQ(write(raw, p.data(), p.size()), 8);
  absl::StatusOr<std::string> got = pipe->first.RecvBytes();
  EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
  EXPECT_NE(got.status().message().find("4294967295"), absl::string_view::npos) << got.status();
  EXPECT_TRUE(pipe->first.closed());
  close(raw);
}

TEST(HostilePeerTest, CloseMidFrameIsDataLoss) {
  absl::StatusOr<std::pair<Connection, Connection>> pipe = SocketPipe();
  ASSERT_TRUE(pipe.ok());
  const int raw = pipe->second.Release();
  const std::string m = Prefix(100, 0) + std::string(40, 'x');
  ASSERT_EQ(write(raw, m.data(), m.size()), static_cast<ssize_t>(m.size()));
  close(raw);
  absl::StatusOr<std::string> got = pipe->first.RecvBytes();
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
  EXPECT_TRUE(absl::IsFailedPrecondition(pipe->first.RecvBytes().status()));
}

TEST(HostilePeerTest, ValidPrefixThenGarbageTypedRecvConsumesOnlyThatMessage) {
  absl::StatusOr<std::pair<Connection, Connection>> pipe = SocketPipe();
  ASSERT_TRUE(pipe.ok());
  const int raw = pipe->second.Release();
  const std::string garbage = "not a frame at all, definitely";
  const std::string good = *EncodeFrame(std::string("after"));
  const std::string m = Prefix(garbage.size(), 0) + garbage + Prefix(good.size(), 0) + good;
  ASSERT_EQ(write(raw, m.data(), m.size()), static_cast<ssize_t>(m.size()));
  absl::StatusOr<std::string> bad = pipe->first.Recv<std::string>();
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  absl::StatusOr<std::string> next = pipe->first.Recv<std::string>();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, "after");
  close(raw);
}

// An honest peer sending another type: nothing raw here, so both transports.
class HostilePeerTransportTest : public ::testing::TestWithParam<ConnectionTransport> {};
INSTANTIATE_TEST_SUITE_P(Transports, HostilePeerTransportTest, ::mp::testing::AllTransports(),
                         ::mp::testing::TransportParamName());

TEST_P(HostilePeerTransportTest, WrongTypeNamesBothAndStaysUsable) {
  absl::StatusOr<std::pair<Connection, Connection>> pipe = mp::Pipe(/*duplex=*/true, GetParam());
  ASSERT_TRUE(pipe.ok());
  ASSERT_TRUE(pipe->second.Send(std::vector<int32_t>{1, 2}).ok());
  ASSERT_TRUE(pipe->second.Send(std::string("ok")).ok());
  absl::StatusOr<std::string> wrong = pipe->first.Recv<std::string>();
  EXPECT_TRUE(absl::IsInvalidArgument(wrong.status())) << wrong.status();
  EXPECT_NE(wrong.status().message().find("vec<i32>"), absl::string_view::npos) << wrong.status();
  absl::StatusOr<std::string> right = pipe->first.Recv<std::string>();
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_EQ(*right, "ok");
}

// A shared-memory end's hostile peer can write into the side socket (fd() of its end) what no
// honest end sends: a malformed packet is kInvalidArgument at the next receive (which Poll and
// Wait report as ready), and the connection closes itself; descriptor packets for records that
// never come are held at most kMaxPendingPackets (16) at a time, then refused; nothing leaks.
TEST(HostilePeerTest, SharedMemorySideSocketGarbageIsInvalidArgumentAndCloses) {
  const FdSnapshot before = FdSnapshot::Take();
  {
    absl::StatusOr<std::pair<Connection, Connection>> pipe =
        mp::Pipe(/*duplex=*/true, ConnectionTransport::kSharedMemory);
    ASSERT_TRUE(pipe.ok());
    ASSERT_EQ(send(pipe->second.fd(), "GET / HTTP/1.1", 14, MSG_NOSIGNAL), 14);
    absl::StatusOr<bool> ready = pipe->first.Poll(absl::Seconds(60));
    ASSERT_TRUE(ready.ok()) << ready.status();
    EXPECT_TRUE(*ready);
    absl::StatusOr<std::string> got = pipe->first.RecvBytes();
    EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
    EXPECT_TRUE(pipe->first.closed());
    EXPECT_TRUE(absl::IsFailedPrecondition(pipe->first.RecvBytes().status()));
  }
  {
    absl::StatusOr<std::pair<Connection, Connection>> pipe =
        mp::Pipe(/*duplex=*/true, ConnectionTransport::kSharedMemory);
    ASSERT_TRUE(pipe.ok());
    const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(devnull, 0);
    // 'F' + a ring position no record will ever have, with a descriptor: 40 of them.
    for (uint64_t i = 0; i < 40; ++i) {
      std::string packet(9, 'F');
      const uint64_t pos = (uint64_t{1} << 40) + 8 * i;
      std::memcpy(packet.data() + 1, &pos, 8);
      char control[CMSG_SPACE(sizeof(int))] = {};
      iovec iov{packet.data(), packet.size()};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &devnull, sizeof(int));
      ASSERT_EQ(sendmsg(pipe->second.fd(), &msg, MSG_NOSIGNAL), 9);
    }
    close(devnull);
    // An honest message in between is delivered; then nothing is left to read but the packets.
    ASSERT_TRUE(pipe->second.SendBytes("honest").ok());
    absl::StatusOr<std::string> honest = pipe->first.RecvBytes();
    ASSERT_TRUE(honest.ok()) << honest.status();
    EXPECT_EQ(*honest, "honest");
    absl::StatusOr<std::vector<size_t>> ready = mp::Wait({pipe->first}, absl::Seconds(60));
    ASSERT_TRUE(ready.ok()) << ready.status();
    EXPECT_EQ(*ready, std::vector<size_t>{0});
    absl::StatusOr<std::string> got = pipe->first.RecvBytes();
    EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
    EXPECT_TRUE(pipe->first.closed());
  }
  const FdSnapshot after = FdSnapshot::Take();
  EXPECT_EQ(after, before) << after.DiffFrom(before);
}

// The randomized run: 100,000 hostile inputs, deterministic seeds (plain, asan, ubsan). The
// receiver is single-threaded, so ThreadSanitizer has nothing to find here; under tsan (which slows
// the run ~15x) it runs the first 10,000.
#if defined(MP_TESTING_TSAN)
constexpr uint64_t kHostileInputs = 10000;
#else
constexpr uint64_t kHostileInputs = 100000;
#endif

TEST(HostilePeerTest, RandomizedHundredThousandInputs) {
  const FdSnapshot before = FdSnapshot::Take();
  int calls = 0;
  for (uint64_t seed = 0; seed < kHostileInputs; ++seed) {
    calls += RunOne(seed);
    if (::testing::Test::HasFailure()) break;
    if (seed % 1000 == 999 || seed < 1000) {
      const FdSnapshot now = FdSnapshot::Take();
      ASSERT_EQ(now, before) << "descriptors leaked by the hostile inputs up to seed " << seed
                             << ": " << now.DiffFrom(before);
    }
  }
  EXPECT_GE(calls, static_cast<int>(kHostileInputs));
}

}  // namespace
}  // namespace mp::faults
