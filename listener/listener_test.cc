// Copyright 2026 The mp Authors.
//
// Listener / Client on loopback only: Unix sockets (file and abstract), TCP 127.0.0.1, the authkey
// handshake (right key, wrong key on both sides, a peer without a key), timeouts, address errors, and
// a spawn child connecting with the key.

#include "listener/listener.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
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
  uint64_t r = 0;
  ASSERT_EQ(getrandom(&r, sizeof(r), 0), static_cast<ssize_t>(sizeof(r)));
  const std::string name = absl::StrCat("@mp-listener-test-", absl::Hex(r));
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
  EXPECT_NE(client.status().message().find("expected an authkey challenge"), absl::string_view::npos)
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
  absl::StatusOr<mp::Listener> patient = mp::Listener::Create({.address = "127.0.0.1:0", .authkey = "key"});
  ASSERT_TRUE(patient.ok());
  absl::StatusOr<mp::Connection> c3 = mp::Client(patient->address());
  ASSERT_TRUE(c3.ok());
  c3->Close();
  EXPECT_EQ(patient->Accept(absl::Seconds(60)).status().code(), StatusCode::kUnauthenticated);
}

TEST(ListenerTest, Errors) {
  absl::StatusOr<mp::Listener> l = mp::Listener::Create({.address = "127.0.0.1:0"});
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->Accept(absl::ZeroDuration()).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(l->Accept(absl::Milliseconds(-1)).status().code(), StatusCode::kInvalidArgument);
  const std::string closed_address = l->address();
  l->Close();
  EXPECT_EQ(mp::Client(closed_address).status().code(), StatusCode::kUnavailable);
  for (const std::string& bad : {std::string("nope"), std::string("1.2.3:5"),
                                 std::string("127.0.0.1:70000"), std::string("127.0.0.1:x"),
                                 std::string("example.com:80"), std::string("@"),
                                 "/" + std::string(120, 'a')}) {
    EXPECT_EQ(mp::Listener::Create({.address = bad}).status().code(), StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(mp::Client(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(mp::Listener::Create({.backlog = 0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::Listener::Create({.authkey = ""}).status().code(), StatusCode::kInvalidArgument);
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
  EXPECT_EQ(**child.ExitCode(), 0);
}

}  // namespace listener_test
