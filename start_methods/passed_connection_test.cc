// Copyright 2026 The mp Authors.
//
// A Connection moved into a Process belongs to the child once the process has started: the parent
// keeps no copy of any descriptor it passed, so the parent's end of a Pipe sees end of file when
// the child closes its end or exits (CPython drops the target and its arguments in start()). Once
// per start method and Pipe transport (instances "fork_Socket" ... "forkserver_SharedMemory").

#include <unistd.h>

#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "channels/connection.h"
#include "channels/test_transports.h"
#include "gtest/gtest.h"
#include "start_methods/fork.h"
#include "start_methods/process.h"
#include "start_methods/test_methods.h"
#include "start_methods/test_util.h"

namespace mp_test {

// Returns at once: the child's copy of `conn` is closed when it exits.
int DropConnection(mp::Connection conn) { return 0; }

// Closes its end, then waits for "g" on `go` before it exits.
int CloseConnectionThenWait(mp::Connection conn, mp::PassedFd go) {
  conn.Close();
  char c = 0;
  ssize_t n;
  do {
    n = read(go.fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  return n == 1 && c == 'g' ? 0 : 3;
}

// Receives ints on `conn` until end of file; returns how many arrived (100 on another error).
int CountUntilEndOfFile(mp::Connection conn) {
  int n = 0;
  for (;;) {
    absl::StatusOr<int> v = conn.Recv<int>();
    if (v.ok()) {
      ++n;
      continue;
    }
    return v.status().code() == absl::StatusCode::kOutOfRange ? n : 100;
  }
}

// The parent's end of the pipe, as a fork child inherits it (a global, as in a real program).
mp::Connection* g_parents_end = nullptr;

// 0 when the inherited copy of the parent's end is closed in this (fork) child and using it is
// kFailedPrecondition; 1 when it is still open; 2 when `mine` (given) was closed too.
int InheritedEndState(mp::Connection mine) {
  if (mine.closed()) return 2;
  if (!g_parents_end->closed()) return 1;
  return g_parents_end->Send(1).code() == absl::StatusCode::kFailedPrecondition ? 0 : 3;
}

namespace {

class PassedConnectionTest
    : public ::testing::TestWithParam<std::tuple<std::string, mp::ConnectionTransport>> {
 protected:
  std::shared_ptr<mp::StartMethod> method() const {
    return mp::testing::MethodNamed(std::get<0>(GetParam()));
  }
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> MakePipe() const {
    return mp::Pipe(/*duplex=*/true, std::get<1>(GetParam()));
  }
};

INSTANTIATE_TEST_SUITE_P(
    MethodsAndTransports, PassedConnectionTest,
    ::testing::Combine(::testing::Values(std::string("fork"), std::string("spawn"),
                                         std::string("forkserver")),
                       mp::testing::AllTransports()),
    [](const ::testing::TestParamInfo<PassedConnectionTest::ParamType>& info) {
      return std::get<0>(info.param) + "_" + mp::testing::TransportName(std::get<1>(info.param));
    });

// Generous, so that a parent still holding the child's end fails the test instead of hanging it.
constexpr absl::Duration kEofTimeout = absl::Seconds(20);

// `mine` becomes readable within kEofTimeout, and what it reads is end of file (kOutOfRange).
void ExpectEndOfFile(mp::Connection& mine) {
  absl::StatusOr<bool> readable = mine.Poll(kEofTimeout);
  ASSERT_TRUE(readable.ok()) << readable.status();
  ASSERT_TRUE(*readable) << "no end of file within " << kEofTimeout;
  absl::StatusOr<int> eof = mine.Recv<int>();
  EXPECT_EQ(eof.status().code(), absl::StatusCode::kOutOfRange) << eof.status();
}

TEST_P(PassedConnectionTest, ParentSeesEndOfFileWhenTheChildExits) {
  mp::testing::ChildGuard guard;
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = MakePipe();
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  mp::Connection mine = std::move(pipe->first);
  const int passed = pipe->second.fd();
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(method(), mp::Call<&DropConnection>(std::move(pipe->second)));
  ASSERT_TRUE(p.ok()) << p.status();
  guard.Add(*p);
  ASSERT_TRUE(p->Start().ok());
  // The descriptor went to the child; the parent holds no copy of it.
  EXPECT_EQ(mp::testing::OpenFds().count(passed), 0u) << "descriptor " << passed;
  ASSERT_NO_FATAL_FAILURE(ExpectEndOfFile(mine));
  ASSERT_TRUE(p->Join().ok());
  EXPECT_EQ(p->ExitCode(), 0);
  // Close works as soon as the child has ended.
  EXPECT_TRUE(p->Close().ok());
}

TEST_P(PassedConnectionTest, ParentSeesEndOfFileWhenTheChildClosesItsEnd) {
  mp::testing::ChildGuard guard;
  mp::testing::TestPipe go;
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = MakePipe();
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  mp::Connection mine = std::move(pipe->first);
  const int passed = pipe->second.fd();
  absl::StatusOr<mp::Process> p = mp::Process::Create(
      method(),
      mp::Call<&CloseConnectionThenWait>(std::move(pipe->second), mp::PassedFd{go.r()}));
  ASSERT_TRUE(p.ok()) << p.status();
  guard.Add(*p);
  ASSERT_TRUE(p->Start().ok());
  EXPECT_EQ(mp::testing::OpenFds().count(passed), 0u) << "descriptor " << passed;
  // The child still runs; its closing of the Connection alone must end the parent's reads.
  ASSERT_NO_FATAL_FAILURE(ExpectEndOfFile(mine));
  EXPECT_TRUE(p->IsAlive());
  mp::testing::WriteAllOrDie(go.w(), "g");
  ASSERT_TRUE(p->Join().ok());
  EXPECT_EQ(p->ExitCode(), 0);
}

// close_inherited_connections: "close my end" reaches the child under every method, fork
// included (where the child would otherwise hold a copy of the parent's end itself).
TEST_P(PassedConnectionTest, ClosingInheritedEndsLetsTheChildSeeEndOfFile) {
  mp::testing::ChildGuard guard;
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = MakePipe();
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  mp::Connection mine = std::move(pipe->first);
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(method(), mp::Call<&CountUntilEndOfFile>(std::move(pipe->second)),
                          {.close_inherited_connections = true});
  ASSERT_TRUE(p.ok()) << p.status();
  guard.Add(*p);
  ASSERT_TRUE(p->Start().ok());
  ASSERT_TRUE(mine.Send(1).ok());
  ASSERT_TRUE(mine.Send(2).ok());
  mine.Close();
  ASSERT_TRUE(p->Join(kEofTimeout).ok());
  EXPECT_EQ(p->ExitCode(), 2) << "the child did not see end of file within " << kEofTimeout;
}

// Under fork, the inherited copy of the parent's end is open in the child by default (CPython's
// behaviour) and closed with close_inherited_connections, where using it is kFailedPrecondition;
// the Connection the child was given stays open either way. Once per transport.
class CloseInheritedConnectionsTest : public ::testing::TestWithParam<mp::ConnectionTransport> {};
INSTANTIATE_TEST_SUITE_P(Transports, CloseInheritedConnectionsTest, mp::testing::AllTransports(),
                         mp::testing::TransportParamName());

TEST_P(CloseInheritedConnectionsTest, ForkChildClosesOnlyWhatItWasNotGiven) {
  mp::testing::ChildGuard guard;
  for (const bool close : {false, true}) {
    absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe =
        mp::Pipe(/*duplex=*/true, GetParam());
    ASSERT_TRUE(pipe.ok()) << pipe.status();
    mp::Connection mine = std::move(pipe->first);
    g_parents_end = &mine;
    absl::StatusOr<mp::Process> p = mp::Process::Create(
        mp::ForkStartMethod(), mp::Call<&InheritedEndState>(std::move(pipe->second)),
        {.close_inherited_connections = close});
    ASSERT_TRUE(p.ok()) << p.status();
    guard.Add(*p);
    ASSERT_TRUE(p->Start().ok());
    ASSERT_TRUE(p->Join(kEofTimeout).ok());
    EXPECT_EQ(p->ExitCode(), close ? 0 : 1) << "close_inherited_connections = " << close;
    EXPECT_FALSE(mine.closed());  // the parent's own end is untouched
  }
  g_parents_end = nullptr;
}

int ReturnZero() { return 0; }

TEST(CloseInheritedConnectionsOptionTest, CallableTargetIsRefused) {
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(mp::ForkStartMethod(), mp::Target::Callable([] { return 0; }),
                          {.close_inherited_connections = true});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(p.status().message(), "close_inherited_connections")) << p.status();
  // A Call<&Fn> target is fine.
  EXPECT_TRUE(mp::Process::Create(mp::ForkStartMethod(), mp::Call<&ReturnZero>(),
                                  {.close_inherited_connections = true})
                  .ok());
}

}  // namespace
}  // namespace mp_test
