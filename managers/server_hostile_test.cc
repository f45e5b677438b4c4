// Copyright 2026 The mp Authors.
//
// A manager's server facing clients that do not follow the protocol: unauthenticated peers,
// garbage instead of a hello or a request, requests with a bad op, object id, type, method,
// argument count or argument bytes, messages of another type, oversized messages, more
// connections than allowed, and silent clients. Each gets a status naming what was wrong (or its
// connection closed), and the server goes on serving a well-behaved client throughout.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "channels/connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "listener/listener.h"
#include "managers/manager.h"
#include "managers/wire.h"
#include "serialize/codec.h"
#include "start_methods/fork.h"

namespace server_hostile_test {

using ::absl::StatusCode;
using ::mp::managers_internal::Hello;
using ::mp::managers_internal::HelloReply;
using ::mp::managers_internal::Op;
using ::mp::managers_internal::Reply;
using ::mp::managers_internal::Request;
using ::testing::HasSubstr;

class ServerHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<mp::Manager> m = mp::Manager::Start(mp::ForkStartMethod(), options_);
    ASSERT_TRUE(m.ok()) << m.status();
    manager_.emplace(*std::move(m));
    absl::StatusOr<mp::DictProxy<int64_t, int64_t>> d = manager_->Dict<int64_t, int64_t>();
    ASSERT_TRUE(d.ok()) << d.status();
    dict_ = *std::move(d);
    ASSERT_TRUE(dict_.Set(1, 1).ok());
  }

  // The well-behaved client is still served.
  void ExpectStillServing() {
    ASSERT_TRUE(dict_.Set(2, 2).ok());
    absl::StatusOr<int64_t> v = dict_.Get(1);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, 1);
  }

  // An authenticated connection that has said its hello (socket transport: no shared memory).
  mp::Connection Greeted() {
    absl::StatusOr<mp::Connection> c = mp::Client(manager_->address(), manager_->authkey());
    EXPECT_TRUE(c.ok()) << c.status();
    Hello hello{.session = std::string(16, 'h'), .pid = 1};
    EXPECT_TRUE(c->Send(hello).ok());
    absl::StatusOr<HelloReply> reply = c->Recv<HelloReply>();
    EXPECT_TRUE(reply.ok() && reply->status.ok() && !reply->shared_memory);
    return *std::move(c);
  }

  absl::Status Ask(mp::Connection& c, const Request& request) {
    if (absl::Status s = c.Send(request); !s.ok()) return s;
    absl::StatusOr<Reply> reply = c.Recv<Reply>();
    if (!reply.ok()) return reply.status();
    return reply->status;
  }

  Request CallDict(std::string method, std::vector<std::string> args) const {
    return Request{.op = static_cast<uint8_t>(Op::kCall),
                   .id = dict_.token().id,
                   .type = dict_.token().type,
                   .method = std::move(method),
                   .args = std::move(args)};
  }

  mp::ManagerOptions options_{.max_message_size = 1 << 16, .max_connections = 16};
  std::optional<mp::Manager> manager_;
  mp::DictProxy<int64_t, int64_t> dict_;
};

TEST_F(ServerHostileTest, AnUnauthenticatedPeerGetsNothing) {
  absl::StatusOr<mp::Connection> wrong = mp::Client(manager_->address(), "not the key");
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated) << wrong.status();
  // A raw socket that sends garbage instead of answering the challenge.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, manager_->address().c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string garbage(300, '\xff');
  EXPECT_EQ(::write(fd, garbage.data(), garbage.size()), static_cast<ssize_t>(garbage.size()));
  char buf[512];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof(buf));  // the challenge, then end of file
  } while (n > 0);
  EXPECT_LE(n, 0);  // end of file, or a reset for the garbage it never read
  ::close(fd);
  ExpectStillServing();
}

TEST_F(ServerHostileTest, GarbageInsteadOfAHelloClosesThatConnection) {
  absl::StatusOr<mp::Connection> c = mp::Client(manager_->address(), manager_->authkey());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->SendBytes("not a hello").ok());
  EXPECT_EQ(c->RecvBytes().status().code(), StatusCode::kOutOfRange);
  absl::StatusOr<mp::Connection> c2 = mp::Client(manager_->address(), manager_->authkey());
  ASSERT_TRUE(c2.ok());
  ASSERT_TRUE(c2->Send(Hello{.version = 99, .session = std::string(16, 'x')}).ok());
  absl::StatusOr<HelloReply> reply = c2->Recv<HelloReply>();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(reply->status.message(), HasSubstr("version"));
  absl::StatusOr<mp::Connection> c3 = mp::Client(manager_->address(), manager_->authkey());
  ASSERT_TRUE(c3->Send(Hello{.session = "short"}).ok());
  reply = c3->Recv<HelloReply>();
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status.code(), StatusCode::kInvalidArgument);
  ExpectStillServing();
}

TEST_F(ServerHostileTest, EveryMalformedRequestGetsAStatusAndTheConnectionGoesOn) {
  mp::Connection c = Greeted();
  // Bad op.
  absl::Status s = Ask(c, Request{.op = 0});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  s = Ask(c, Request{.op = 200});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  // No such object.
  Request missing = CallDict("len", {});
  missing.id = 987654;
  EXPECT_EQ(Ask(c, missing).code(), StatusCode::kNotFound);
  // The wrong type for the object.
  Request wrong_type = CallDict("len", {});
  wrong_type.type ^= 1;
  s = Ask(c, wrong_type);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("mp::DictProxy<i64,i64>"));
  // No such method, the wrong number of arguments.
  s = Ask(c, CallDict("\x01nope", {}));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("no method"));
  s = Ask(c, CallDict("setitem", {mp::Encode(int64_t{1})}));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("takes 2 arguments"));
  s = Ask(c, CallDict("update", {"a", "b", "c"}));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  // Malformed argument bytes where the server reads them (a list index).
  absl::StatusOr<mp::ListProxy<int64_t>> l = manager_->List<int64_t>();
  ASSERT_TRUE(l.ok());
  Request bad_index{.op = static_cast<uint8_t>(Op::kCall),
                    .id = l->token().id,
                    .type = l->token().type,
                    .method = "getitem",
                    .args = {"\x01\x02\x03"}};
  s = Ask(c, bad_index);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  // Creating an unknown typeid; a create with no type name; bad factory arguments.
  s = Ask(
      c,
      Request{.op = static_cast<uint8_t>(Op::kCreate), .type = 1, .method = "nope", .args = {"x"}});
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s;
  s = Ask(c, Request{.op = static_cast<uint8_t>(Op::kCreate), .type = 1, .method = "dict"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  s = Ask(c, Request{.op = static_cast<uint8_t>(Op::kCreate),
                     .type = 1,
                     .method = "Barrier",
                     .args = {"b", mp::Encode(int64_t{0})}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  // Stored proxies (held_args) that name no argument, twice the same, malformed tokens, tokens of
  // objects that do not exist or of another type.
  Request held = CallDict("setitem", {mp::Encode(int64_t{5}), "junk"});
  held.held_args = {7};
  EXPECT_EQ(Ask(c, held).code(), StatusCode::kInvalidArgument);
  held.held_args = {1, 1};
  EXPECT_EQ(Ask(c, held).code(), StatusCode::kInvalidArgument);
  held.held_args = {1};
  s = Ask(c, held);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("malformed"));
  mp::Token ghost = dict_.token();
  ghost.id = 424242;
  held.args[1] = mp::Encode(ghost);
  EXPECT_EQ(Ask(c, held).code(), StatusCode::kNotFound);
  mp::Token liar = l->token();
  liar.type = dict_.token().type;
  held.args[1] = mp::Encode(liar);
  s = Ask(c, held);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_FALSE(*dict_.Contains(5));
  // A decref of a reference this session does not hold.
  s = Ask(c, Request{.op = static_cast<uint8_t>(Op::kDecref), .id = dict_.token().id});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  // A message of another type, and raw bytes: answered, and the connection is still in step.
  ASSERT_TRUE(c.Send(std::string("hello")).ok());
  absl::StatusOr<Reply> reply = c.Recv<Reply>();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status.code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(c.SendBytes("\x00\x01garbage").ok());
  reply = c.Recv<Reply>();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status.code(), StatusCode::kInvalidArgument);
  // A good request on the same connection.
  EXPECT_TRUE(Ask(c, CallDict("len", {})).ok());
  ExpectStillServing();
  EXPECT_EQ(*manager_->ObjectCount(), 2u);  // the dict and the list: nothing made by the junk
}

TEST_F(ServerHostileTest, AnOversizedMessageClosesOnlyThatConnection) {
  mp::Connection c = Greeted();
  ASSERT_TRUE(c.set_max_message_size(1 << 20).ok());
  const std::string big(options_.max_message_size + 1, 'x');
  absl::Status sent = c.SendBytes(big);
  // The server closes the connection without reading the message.
  absl::StatusOr<std::string> after = c.RecvBytes();
  EXPECT_FALSE(after.ok());
  (void)sent;
  ExpectStillServing();
  // The proxy's own oversized request is refused before it is sent, and the proxy goes on.
  absl::StatusOr<mp::DictProxy<std::string, std::string>> d =
      manager_->Dict<std::string, std::string>();
  ASSERT_TRUE(d.ok());
  absl::Status s = d->Set("k", big);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(d->Set("k", "v").ok());
}

TEST_F(ServerHostileTest, SilentAndBlockedClientsHoldUpNobody) {
  // Authenticated but never says its hello.
  absl::StatusOr<mp::Connection> silent = mp::Client(manager_->address(), manager_->authkey());
  ASSERT_TRUE(silent.ok());
  // Greeted and then sends half a message.
  mp::Connection half = Greeted();
  const std::string half_message = std::string("\x40\0\0\0\0\0\0\0", 8) + "abc";
  ASSERT_GE(::write(half.fd(), half_message.data(), half_message.size()), 0);
  // Blocked in the server.
  absl::StatusOr<mp::QueueProxy<int64_t>> q = manager_->Queue<int64_t>();
  ASSERT_TRUE(q.ok());
  absl::Status blocked;
  std::thread getter([&] { blocked = q->Get(true, absl::Seconds(60)).status(); });
  ExpectStillServing();
  ASSERT_TRUE(q->Put(5).ok());
  getter.join();
  EXPECT_TRUE(blocked.ok()) << blocked;
}

TEST_F(ServerHostileTest, ConnectionsBeyondTheLimitAreClosed) {
  std::vector<mp::Connection> held;
  // The proxy's client holds two connections already (its anchor and one for calls).
  for (size_t i = 2; i < options_.max_connections; ++i) held.push_back(Greeted());
  absl::StatusOr<mp::Connection> extra = mp::Client(manager_->address(), manager_->authkey());
  ASSERT_TRUE(extra.ok()) << extra.status();  // the challenge runs before the count
  // The server closes it, before or after this hello arrives.
  extra->Send(Hello{.session = std::string(16, 'e')}).IgnoreError();
  EXPECT_FALSE(extra->Recv<HelloReply>().ok());
  held.clear();
  ExpectStillServing();
}

TEST_F(ServerHostileTest, ManyClientsAtOnce) {
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = 0; i < 200; ++i) {
        if (absl::Status s = dict_.Set(1000 * (t + 1) + i, i); !s.ok()) {
          results[t] = s;
          return;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(*dict_.Size(), 1u + 8 * 200);
}

}  // namespace server_hostile_test
