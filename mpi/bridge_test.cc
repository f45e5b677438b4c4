// Copyright 2026 The mp Authors.
//
// mpi/bridge: what can be carried (CheckBridgeable), a carried socket end to end within one
// process (BridgeOffer, ConnectBridges, the relays), and malformed offers, which the child refuses
// without reading past them.

#include "mpi/bridge.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "gtest/gtest.h"

namespace mp::mpi_internal {
namespace {

struct Fds {
  int fd[2] = {-1, -1};
  ~Fds() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
};

TEST(BridgeTest, OnlyConnectedStreamSocketsCanBeCarried) {
  Fds pair;
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair.fd), 0);
  EXPECT_TRUE(CheckBridgeable(pair.fd[0], "f").ok());
  Fds seq;
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, seq.fd), 0);
  EXPECT_EQ(CheckBridgeable(seq.fd[0], "f").code(), absl::StatusCode::kFailedPrecondition);
  Fds p;
  ASSERT_EQ(pipe2(p.fd, O_CLOEXEC), 0);
  absl::Status s = CheckBridgeable(p.fd[0], "ns::F");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("ns::F"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("GetContext(\"mpi\")->Pipe()"), absl::string_view::npos) << s;
  const int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_un autobind{};
  autobind.sun_family = AF_UNIX;  // an address length of the family alone: an abstract name
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&autobind), sizeof(sa_family_t)), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  EXPECT_EQ(CheckBridgeable(listener, "f").code(), absl::StatusCode::kFailedPrecondition);
  close(listener);
}

// The child's side connecting to `offer` on a thread while this one accepts: what it connected.
absl::StatusOr<Bridges> ConnectWhileAccepting(BridgeOffer& offer) {
  const std::string message = offer.message();
  absl::StatusOr<Bridges> child;
  std::thread connect([&] { child = ConnectBridges(message, Deadline::After(absl::Seconds(30))); });
  absl::Status accepted =
      offer.Accept(Deadline::After(absl::Seconds(30)), [] { return absl::OkStatus(); });
  connect.join();
  if (!accepted.ok()) {
    if (child.ok()) {
      for (int fd : child->sockets) close(fd);
      if (child->lifeline >= 0) close(child->lifeline);
    }
    return accepted;
  }
  return child;
}

TEST(BridgeTest, ACarriedSocketRelaysBothWaysAndPassesEndOfFileOn) {
  Fds pair;  // [0] stays "here", [1] is what the child was passed
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair.fd), 0);
  absl::StatusOr<BridgeOffer> offer = BridgeOffer::Create({pair.fd[1]}, true);
  ASSERT_TRUE(offer.ok()) << offer.status();
  close(pair.fd[1]);  // the relay holds its own copy
  pair.fd[1] = -1;
  absl::StatusOr<Bridges> child = ConnectWhileAccepting(*offer);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_EQ(child->sockets.size(), 1u);
  EXPECT_EQ(child->lifeline, -1);
  EXPECT_EQ(offer->TakeLifeline(), -1);
  const int tcp = child->sockets[0];
  ASSERT_EQ(write(pair.fd[0], "ping", 4), 4);
  char buf[8] = {};
  ASSERT_EQ(read(tcp, buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  ASSERT_EQ(write(tcp, "pong", 4), 4);
  ASSERT_EQ(read(pair.fd[0], buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
  close(tcp);  // the child's end closes: end of file here
  EXPECT_EQ(read(pair.fd[0], buf, 1), 0);
}

TEST(BridgeTest, ALifelineEndsInEndOfFileWhenTheChildsEndCloses) {
  Fds pair;
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair.fd), 0);
  absl::StatusOr<BridgeOffer> offer = BridgeOffer::Create({pair.fd[1]}, true, /*lifeline=*/true);
  ASSERT_TRUE(offer.ok()) << offer.status();
  absl::StatusOr<Bridges> child = ConnectWhileAccepting(*offer);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_EQ(child->sockets.size(), 1u);
  ASSERT_GE(child->lifeline, 0);
  Fds ends;  // [0] the parent's end of the lifeline, [1] the child's
  ends.fd[0] = offer->TakeLifeline();
  ends.fd[1] = child->lifeline;
  ASSERT_GE(ends.fd[0], 0);
  EXPECT_EQ(offer->TakeLifeline(), -1);  // taken once
  close(child->sockets[0]);
  // The lifeline relays nothing: the passed socket's bytes do not appear on it.
  ASSERT_EQ(write(pair.fd[0], "ping", 4), 4);
  char buf[8] = {};
  EXPECT_EQ(recv(ends.fd[0], buf, sizeof(buf), MSG_DONTWAIT), -1);
  close(ends.fd[1]);  // the child's end closes (as its process's death would close it)
  ends.fd[1] = -1;
  EXPECT_EQ(read(ends.fd[0], buf, 1), 0);
}

TEST(BridgeTest, MalformedOffersAreRefused) {
  const Deadline soon = Deadline::After(absl::Seconds(5));
  auto u32 = [](uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  EXPECT_EQ(ConnectBridges("", soon).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConnectBridges("abc", soon).status().code(), absl::StatusCode::kInvalidArgument);
  // Counts past the bounds, or past the bytes.
  EXPECT_EQ(ConnectBridges(u32(1u << 30), soon).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConnectBridges(u32(2) + u32(0) + u32(0), soon).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConnectBridges(u32(0) + u32(1000) + u32(0), soon).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConnectBridges(u32(0) + u32(1) + u32(0) + "xx", soon).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConnectBridges(u32(0) + u32(0) + u32(0) + "extra", soon).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConnectBridges(u32(0) + u32(0) + u32(2) + std::string(2 * 34, '\0'), soon)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);  // at most one lifeline
  EXPECT_EQ(ConnectBridges(u32(0) + u32(0) + u32(1), soon).status().code(),
            absl::StatusCode::kInvalidArgument);  // a lifeline declared, its entry missing
  // Well formed, nothing to connect.
  absl::StatusOr<Bridges> none = ConnectBridges(u32(0) + u32(0) + u32(0), soon);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->sockets.empty());
  EXPECT_EQ(none->lifeline, -1);
  // Well formed, but no address answers: kUnavailable, nothing left open.
  absl::StatusOr<Bridges> unreachable =
      ConnectBridges(u32(0) + u32(1) + u32(0) + std::string(2 + 32, '\0'), soon);
  EXPECT_EQ(unreachable.status().code(), absl::StatusCode::kUnavailable) << unreachable.status();
}

}  // namespace
}  // namespace mp::mpi_internal
