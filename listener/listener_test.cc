// Copyright 2026 The mp Authors.
//
// Listener / Client on loopback only: Unix sockets (file and abstract), TCP 127.0.0.1, the authkey
// handshake (right key, wrong key on both sides, a peer without a key), timeouts, address errors,
// and a spawn child connecting with the key.

#include "listener/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "base/random.h"
#include "gtest/gtest.h"
#include "start_methods/process.h"
#include "start_methods/spawn.h"
#include "start_methods/test_util.h"

namespace listener_test {

using ::absl::StatusCode;

bool PathExists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

// Round trip over an accepted connection: the client sends, the server echoes with a suffix.
void RoundTrip(mp::Listener& listener, const std::optional<std::string>& key) {
  absl::StatusOr<mp::Connection> client;
  std::thread t([&] {
    client = mp::Client(listener.address(), key);
    if (client.ok()) client->Send(std::string("ping")).IgnoreError();
  });
  absl::StatusOr<mp::Connection> server = listener.Accept(absl::Seconds(60));
  t.join();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<std::string> got = server->Recv<std::string>();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ping");
  ASSERT_TRUE(server->Send(*got + "-pong").ok());
  EXPECT_EQ(*client->Recv<std::string>(), "ping-pong");
}

TEST(ListenerTest, DefaultUnixAddressInPrivateDirectory) {
  absl::StatusOr<mp::Listener> l = mp::Listener::Create({});
  ASSERT_TRUE(l.ok()) << l.status();
  const std::string address = l->address();
  EXPECT_TRUE(absl::StartsWith(address, "/tmp/mp-")) << address;
  const std::string dir = address.substr(0, address.rfind('/'));
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  RoundTrip(*l, std::nullopt);
  RoundTrip(*l, std::nullopt);  // a second client
  l->Close();
  EXPECT_FALSE(PathExists(address));
  EXPECT_FALSE(PathExists(dir));
  EXPECT_EQ(l->Accept().status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(mp::Client(address).status().code(), StatusCode::kNotFound);
}

TEST(ListenerTest, TcpWithAuthkey) {
  absl::StatusOr<mp::Listener> l =
      mp::Listener::Create({.address = "127.0.0.1:0", .authkey = "secret"});
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_TRUE(absl::StartsWith(l->address(), "127.0.0.1:")) << l->address();
  EXPECT_NE(l->address(), "127.0.0.1:0");
  RoundTrip(*l, "secret");
  EXPECT_TRUE(absl::StartsWith(l->last_accepted(), "127.0.0.1:")) << l->last_accepted();
}

TEST(ListenerTest, AbstractUnixWithAuthkey) {
  // Random, not the pid: sandboxed tests may share a pid in separate pid namespaces but share the
  // abstract socket namespace.
  absl::StatusOr<uint64_t> r = mp::RandomU64();
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string name = absl::StrCat("@mp-listener-test-", absl::Hex(*r));
  absl::StatusOr<mp::Listener> l = mp::Listener::Create({.address = name, .authkey = "k"});
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->address(), name);
  RoundTrip(*l, "k");
  EXPECT_EQ(mp::Listener::Create({.address = name}).status().code(), StatusCode::kAlreadyExists);
}

TEST(ListenerTest, WrongKeyIsRefusedOnBothSides) {
  absl::StatusOr<mp::Listener> l =
      mp::Listener::Create({.address = "127.0.0.1:0", .authkey = "right"});
  ASSERT_TRUE(l.ok()) << l.status();
  absl::StatusOr<mp::Connection> client;
  std::thread t([&] { client = mp::Client(l->address(), "wrong"); });
  absl::StatusOr<mp::Connection> server = l->Accept(absl::Seconds(60));
  t.join();
  EXPECT_EQ(server.status().code(), StatusCode::kUnauthenticated) << server.status();
  EXPECT_NE(server.status().message().find("failed the authkey challenge (digest mismatch)"),
            absl::string_view::npos)
      << server.status();
  EXPECT_EQ(client.status().code(), StatusCode::kUnauthenticated) << client.status();
  EXPECT_NE(client.status().message().find("refused our authkey"), absl::string_view::npos)
      << client.status();
  // The listener still serves clients with the right key.
  RoundTrip(*l, "right");
}

TEST(ListenerTest, ClientWithKeyServerWithout) {
  absl::StatusOr<mp::Listener> l = mp::Listener::Create({.address = "127.0.0.1:0"});
  ASSERT_TRUE(l.ok());
  absl::StatusOr<mp::Connection> client;
  std::thread t([&] { client = mp::Client(l->address(), "key"); });
  absl::StatusOr<mp::Connection> server = l->Accept(absl::Seconds(60));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(server->SendBytes("hello").ok());
  t.join();
  EXPECT_EQ(client.status().code(), StatusCode::kUnauthenticated) << client.status();
  EXPECT_NE(client.status().message().find("expected an authkey challenge"),
            absl::string_view::npos)
      << client.status();
}

TEST(ListenerTest, ServerWithKeyClientWithoutTimesOut) {
  absl::StatusOr<mp::Listener> l = mp::Listener::Create(
      {.address = "127.0.0.1:0", .authkey = "key", .auth_timeout = absl::ZeroDuration()});
  ASSERT_TRUE(l.ok());
  absl::StatusOr<mp::Connection> client = mp::Client(l->address());  // no key: no handshake
  ASSERT_TRUE(client.ok()) << client.status();
  absl::Status s = l->Accept(absl::Seconds(60)).status();
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s;
  // A client that hangs up mid-handshake.
  client->Close();
  absl::StatusOr<mp::Connection> c2 = mp::Client(l->address());
  ASSERT_TRUE(c2.ok());
  c2->Close();
  absl::StatusOr<mp::Listener> patient =
      mp::Listener::Create({.address = "127.0.0.1:0", .authkey = "key"});
  ASSERT_TRUE(patient.ok());
  absl::StatusOr<mp::Connection> c3 = mp::Client(patient->address());
  ASSERT_TRUE(c3.ok());
  c3->Close();
  // CPython's accept() raises EOFError here; a hang-up is not a failed challenge.
  EXPECT_EQ(patient->Accept(absl::Seconds(60)).status().code(), StatusCode::kOutOfRange);
}

TEST(ListenerTest, Errors) {
  absl::StatusOr<mp::Listener> l = mp::Listener::Create({.address = "127.0.0.1:0"});
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->Accept(absl::ZeroDuration()).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(l->Accept(absl::Milliseconds(-1)).status().code(), StatusCode::kInvalidArgument);
  const std::string closed_address = l->address();
  l->Close();
  EXPECT_EQ(mp::Client(closed_address).status().code(), StatusCode::kUnavailable);
  for (const std::string& bad :
       {std::string("nope"), std::string("1.2.3:5"), std::string("127.0.0.1:70000"),
        std::string("127.0.0.1:x"), std::string("example.com:80"), std::string("@"),
        "/" + std::string(120, 'a')}) {
    EXPECT_EQ(mp::Listener::Create({.address = bad}).status().code(), StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(mp::Client(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(mp::Listener::Create({.backlog = 0}).status().code(), StatusCode::kInvalidArgument);
  const absl::Status empty_key = mp::Listener::Create({.authkey = ""}).status();
  EXPECT_EQ(empty_key.code(), StatusCode::kInvalidArgument);
  // An empty string where "no authkey" was meant is the common mistake: the message says the fix.
  EXPECT_NE(empty_key.message().find("pass std::nullopt for no authkey"), absl::string_view::npos)
      << empty_key;
  EXPECT_EQ(mp::Client("/nonexistent/mp/socket").status().code(), StatusCode::kNotFound);
}

// A spawn child connects with the key and sends its pid.
absl::Status ConnectAndSend(std::string address, std::string key) {
  absl::StatusOr<mp::Connection> c = mp::Client(address, key);
  if (!c.ok()) return c.status();
  return c->Send(int64_t{getpid()});
}

TEST(ListenerTest, SpawnChildConnects) {
  absl::StatusOr<mp::Listener> l = mp::Listener::Create({.authkey = "family"});
  ASSERT_TRUE(l.ok()) << l.status();
  mp::testing::ChildGuard guard;
  absl::StatusOr<mp::Process> p = mp::Process::Create(
      mp::SpawnStartMethod(), mp::Call<&ConnectAndSend>(l->address(), std::string("family")));
  ASSERT_TRUE(p.ok()) << p.status();
  mp::Process child = guard.Add(*p);
  ASSERT_TRUE(child.Start().ok());
  absl::StatusOr<mp::Connection> conn = l->Accept(absl::Seconds(60));
  ASSERT_TRUE(conn.ok()) << conn.status();
  absl::StatusOr<int64_t> pid = conn->Recv<int64_t>();
  ASSERT_TRUE(pid.ok()) << pid.status();
  EXPECT_EQ(*pid, *child.Pid());
  ASSERT_TRUE(child.Join(absl::Seconds(60)).ok());
  EXPECT_EQ(child.ExitCode(), 0);
}

// ---------------------------------------------------------------------------------------------------
// Peers that start the handshake and go silent.

absl::Duration Since(int64_t start_ns) {
  return absl::Nanoseconds(mp::MonotonicNowNs() - start_ns);
}

// Runs `action` on a thread once `delay` has passed, unless destroyed first. The tests use it as a
// watchdog (so a regression fails an assertion instead of hanging the test) and to connect late.
class RunAfter {
 public:
  RunAfter(absl::Duration delay, std::function<void()> action) {
    if (pipe2(stop_, O_CLOEXEC) != 0) std::abort();
    thread_ = std::thread([this, delay, action = std::move(action)] {
      absl::StatusOr<short> stopped = mp::PollUntil(stop_[0], POLLIN, mp::Deadline::After(delay));
      if (stopped.ok() && *stopped == 0) action();
    });
  }
  ~RunAfter() {
    const char c = 0;
    (void)!write(stop_[1], &c, 1);
    thread_.join();
    close(stop_[0]);
    close(stop_[1]);
  }

 private:
  int stop_[2];
  std::thread thread_;
};

// Closes a descriptor when it goes out of scope (declared before a RunAfter that uses it, so the
// watchdog is joined before the descriptor is closed and its number reused).
struct ScopedFd {
  int fd;
  ~ScopedFd() {
    if (fd >= 0) close(fd);
  }
};

// A raw socket connected to a Listener's address (TCP "host:port" or a Unix path); -1 on failure.
int RawConnect(const std::string& address, bool nonblocking = false) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (address[0] == '/') {
    auto* un = reinterpret_cast<sockaddr_un*>(&ss);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, address.data(), address.size());
    len = sizeof(sockaddr_un);
  } else {
    const size_t colon = address.rfind(':');
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    inet_pton(AF_INET, address.substr(0, colon).c_str(), &in->sin_addr);
    len = sizeof(sockaddr_in);
  }
  const int fd =
      socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A Connection message prefix (channels/connection.h) announcing a body of `length` bytes.
std::string Prefix(uint32_t length) {
  std::string p(mp::kConnectionPrefixSize, '\0');
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return p;
}

void SendRaw(int fd, const std::string& bytes) {
  ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
}

// What a silent client sends before it stops: one byte, a whole prefix, a prefix and part of a
// body.
const std::vector<std::string>& SilentOpenings() {
  static const std::vector<std::string>* openings =
      new std::vector<std::string>{"x", Prefix(40), Prefix(40) + "{sha256}ab"};
  return *openings;
}

// A client that sends one byte and goes silent must not hold up a client that follows it: Accept
// returns the second client's connection while the first one's 30 s auth timeout is still running.
TEST(ListenerHandshakeTest, SilentClientDoesNotDelayTheNextOne) {
  for (const std::string& opening : SilentOpenings()) {
    absl::StatusOr<mp::Listener> l = mp::Listener::Create(
        {.address = "127.0.0.1:0", .authkey = "key", .auth_timeout = absl::Seconds(30)});
    ASSERT_TRUE(l.ok()) << l.status();
    const ScopedFd silent{RawConnect(l->address())};
    ASSERT_GE(silent.fd, 0);
    SendRaw(silent.fd, opening);
    RunAfter watchdog(absl::Seconds(20), [fd = silent.fd] { shutdown(fd, SHUT_RDWR); });
    absl::StatusOr<mp::Connection> client;
    std::thread good([&] {
      client = mp::Client(l->address(), "key", absl::Seconds(30));
      if (client.ok()) client->Send(std::string("the good one")).IgnoreError();
    });
    const int64_t start = mp::MonotonicNowNs();
    absl::StatusOr<mp::Connection> server = l->Accept(absl::Seconds(60));
    const absl::Duration elapsed = Since(start);
    good.join();
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE(client.ok()) << client.status();
    EXPECT_LT(elapsed, absl::Seconds(15));
    absl::StatusOr<std::string> got = server->Recv<std::string>();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "the good one");
  }
}

// Accept(200ms) with only a silent client returns kDeadlineExceeded at the caller's timeout, not
// after the client's auth timeout (20 s).
TEST(ListenerHandshakeTest, AcceptTimeoutHoldsDespiteASilentClient) {
  for (const std::string& opening : SilentOpenings()) {
    const absl::Duration auth_timeout = absl::Seconds(20);
    absl::StatusOr<mp::Listener> l = mp::Listener::Create(
        {.address = "127.0.0.1:0", .authkey = "key", .auth_timeout = auth_timeout});
    ASSERT_TRUE(l.ok()) << l.status();
    const ScopedFd silent{RawConnect(l->address())};
    ASSERT_GE(silent.fd, 0);
    SendRaw(silent.fd, opening);
    RunAfter watchdog(absl::Seconds(15), [fd = silent.fd] { shutdown(fd, SHUT_RDWR); });
    const int64_t start = mp::MonotonicNowNs();
    absl::Status s = l->Accept(absl::Milliseconds(200)).status();
    EXPECT_LT(Since(start), auth_timeout / 2);
    EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s;
    EXPECT_NE(s.message().find("no client"), absl::string_view::npos) << s;
  }
}

// A server that accepts the connection, sends half a challenge and goes silent: Client's timeout
// covers the whole handshake, so it returns kDeadlineExceeded instead of waiting for the rest.
TEST(ListenerHandshakeTest, ClientTimesOutAgainstAHalfSpeakingServer) {
  for (const std::string& address : {std::string("127.0.0.1:0"), std::string()}) {
    absl::StatusOr<mp::Listener> l = mp::Listener::Create({.address = address});  // no key
    ASSERT_TRUE(l.ok()) << l.status();
    absl::StatusOr<mp::Connection> client;
    absl::Duration elapsed;
    std::thread t([&] {
      const int64_t start = mp::MonotonicNowNs();
      client = mp::Client(l->address(), "key", absl::Milliseconds(500));
      elapsed = Since(start);
    });
    absl::StatusOr<mp::Connection> server = l->Accept(absl::Seconds(60));
    ASSERT_TRUE(server.ok()) << server.status();
    const int server_fd = server->fd();
    RunAfter watchdog(absl::Seconds(15), [server_fd] { shutdown(server_fd, SHUT_RDWR); });
    SendRaw(server_fd, Prefix(51) + "#CHALLENGE#{sha2");
    t.join();
    EXPECT_EQ(client.status().code(), StatusCode::kDeadlineExceeded) << client.status();
    EXPECT_LT(elapsed, absl::Seconds(10));
  }
}

// Client's timeout also covers connect: a Unix listener whose backlog is full (nobody accepts)
// makes connect(2) wait, and Client gives up at its timeout.
TEST(ListenerHandshakeTest, ClientConnectTimesOutWhenTheBacklogIsFull) {
  absl::StatusOr<mp::Listener> l = mp::Listener::Create({.backlog = 1});
  ASSERT_TRUE(l.ok()) << l.status();
  std::vector<int> queued;
  for (int i = 0; i < 16; ++i) {
    const int fd = RawConnect(l->address(), /*nonblocking=*/true);
    if (fd < 0) break;  // EAGAIN: the backlog is full
    queued.push_back(fd);
  }
  ASSERT_LT(queued.size(), 16u);
  const std::string address = l->address();
  const int listener_fd = l->fd();
  // Should Client hang in connect, accepting one queued connection lets it through (and fail).
  RunAfter watchdog(absl::Seconds(15), [listener_fd] {
    const int c = accept4(listener_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) close(c);
  });
  const int64_t start = mp::MonotonicNowNs();
  absl::Status s = mp::Client(address, std::nullopt, absl::Milliseconds(300)).status();
  EXPECT_LT(Since(start), absl::Seconds(10));
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s;
  for (int fd : queued) close(fd);
}

// Accept timeouts beyond poll(2)'s int range of milliseconds still wait for a client (2^32 ms used
// to wrap around to a zero timeout).
TEST(ListenerHandshakeTest, HugeAcceptTimeoutStillWaits) {
  for (absl::Duration timeout : {absl::Hours(24 * 30), absl::Milliseconds(int64_t{1} << 32)}) {
    absl::StatusOr<mp::Listener> l = mp::Listener::Create({.address = "127.0.0.1:0"});
    ASSERT_TRUE(l.ok()) << l.status();
    absl::StatusOr<mp::Connection> client;
    const std::string address = l->address();
    absl::StatusOr<mp::Connection> server;
    {
      // Connects a little later, so that Accept really has to wait; the result does not depend on
      // how late.
      RunAfter late(absl::Milliseconds(300), [&] { client = mp::Client(address); });
      server = l->Accept(timeout);
      // When Accept returns early, `late` is cancelled here and the client never connects.
    }
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE(client.ok()) << client.status();
  }
}

// A hostile client announcing a handshake message larger than any handshake message, or a prefix
// with descriptors or reserved bits, is refused at once, without waiting for the body.
TEST(ListenerHandshakeTest, OversizedOrMalformedHandshakeMessageIsRefused) {
  for (const std::string& bad :
       {Prefix(1000), Prefix(5).replace(4, 1, "\x01"), Prefix(5).replace(6, 1, "\x01")}) {
    absl::StatusOr<mp::Listener> l = mp::Listener::Create(
        {.address = "127.0.0.1:0", .authkey = "key", .auth_timeout = absl::Seconds(30)});
    ASSERT_TRUE(l.ok()) << l.status();
    const ScopedFd fd{RawConnect(l->address())};
    ASSERT_GE(fd.fd, 0);
    SendRaw(fd.fd, bad);
    const int64_t start = mp::MonotonicNowNs();
    absl::Status s = l->Accept(absl::Seconds(20)).status();
    EXPECT_LT(Since(start), absl::Seconds(10));
    EXPECT_EQ(s.code(), StatusCode::kUnauthenticated) << s;
  }
}

// A failed handshake is reported by the Accept that sees it fail (CPython's accept() raises
// AuthenticationError) while a silent client's handshake stays pending; the next Accept serves the
// next client, and the silent one times out on its own deadline.
TEST(ListenerHandshakeTest, FailuresAreReportedOneAtATimeWhileOthersStayPending) {
  absl::StatusOr<mp::Listener> l = mp::Listener::Create(
      {.address = "127.0.0.1:0", .authkey = "right", .auth_timeout = absl::Seconds(30)});
  ASSERT_TRUE(l.ok()) << l.status();
  const ScopedFd silent{RawConnect(l->address())};
  ASSERT_GE(silent.fd, 0);
  SendRaw(silent.fd, "x");
  EXPECT_EQ(l->Accept(absl::Milliseconds(50)).status().code(), StatusCode::kDeadlineExceeded);

  absl::Status intruder;
  std::thread t([&] { intruder = mp::Client(l->address(), "wrong", absl::Seconds(30)).status(); });
  absl::Status refused = l->Accept(absl::Seconds(30)).status();
  t.join();
  EXPECT_EQ(refused.code(), StatusCode::kUnauthenticated) << refused;
  EXPECT_NE(refused.message().find("digest mismatch"), absl::string_view::npos) << refused;
  EXPECT_EQ(intruder.code(), StatusCode::kUnauthenticated) << intruder;

  RoundTrip(*l, "right");
}

// A handshake that does not finish within auth_timeout ends with kDeadlineExceeded from Accept,
// naming the client and the step it stopped in; the listener serves the next client.
TEST(ListenerHandshakeTest, SilentClientTimesOutOnItsAuthDeadline) {
  absl::StatusOr<mp::Listener> l = mp::Listener::Create(
      {.address = "127.0.0.1:0", .authkey = "key", .auth_timeout = absl::Milliseconds(200)});
  ASSERT_TRUE(l.ok()) << l.status();
  const ScopedFd silent{RawConnect(l->address())};
  ASSERT_GE(silent.fd, 0);
  SendRaw(silent.fd, Prefix(40) + "{sha");
  absl::Status s = l->Accept(absl::Seconds(30)).status();
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s;
  EXPECT_NE(s.message().find("did not finish the authentication within 200ms"),
            absl::string_view::npos)
      << s;
  EXPECT_NE(s.message().find("waiting for the answer to our challenge, 12 bytes received"),
            absl::string_view::npos)
      << s;
  EXPECT_TRUE(absl::StartsWith(l->last_accepted(), "127.0.0.1:")) << l->last_accepted();
  RoundTrip(*l, "key");
}

TEST(ListenerHandshakeTest, NegativeTimeoutsAreInvalid) {
  EXPECT_EQ(mp::Listener::Create({.auth_timeout = absl::Seconds(-1)}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::Client("127.0.0.1:1", std::nullopt, absl::Seconds(-1)).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace listener_test
