// Copyright 2026 The mp Authors.
//
// A Connection moved into a Process belongs to the child once the process has started: the parent
// keeps no copy of any descriptor it passed, so the parent's end of a Pipe sees end of file when
// the child closes its end or exits (CPython drops the target and its arguments in start()). Once
// per start method.

#include <unistd.h>

#include <memory>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "channels/connection.h"
#include "gtest/gtest.h"
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

namespace {

template <typename M>
class PassedConnectionTest : public ::testing::Test {};

TYPED_TEST_SUITE(PassedConnectionTest, mp::testing::AllStartMethods, mp::testing::StartMethodNames);

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

TYPED_TEST(PassedConnectionTest, ParentSeesEndOfFileWhenTheChildExits) {
  mp::testing::ChildGuard guard;
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = mp::Pipe();
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  mp::Connection mine = std::move(pipe->first);
  const int passed = pipe->second.fd();
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(TypeParam::Get(), mp::Call<&DropConnection>(std::move(pipe->second)));
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

TYPED_TEST(PassedConnectionTest, ParentSeesEndOfFileWhenTheChildClosesItsEnd) {
  mp::testing::ChildGuard guard;
  mp::testing::TestPipe go;
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = mp::Pipe();
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  mp::Connection mine = std::move(pipe->first);
  const int passed = pipe->second.fd();
  absl::StatusOr<mp::Process> p = mp::Process::Create(
      TypeParam::Get(),
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

}  // namespace
}  // namespace mp_test
