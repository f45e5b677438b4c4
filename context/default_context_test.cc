// Copyright 2026 The mp Authors.
//
// The program-wide default: SetStartMethod once (again only with force),
// GetStartMethod(allow_none), GetAllStartMethods, and a library's own context leaving the default
// alone. One test, in order, because the default is process-wide state (CPython's tests do the same
// in a fresh process).

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "context/context.h"
#include "gtest/gtest.h"

namespace {

using ::absl::StatusCode;

// A library that wants spawn, whatever the program chose.
std::string LibraryMethod() { return std::string((*mp::GetContext("spawn"))->method()); }

// CPython: using the default context (get_context()) fixes it, like set_start_method does. Checked
// in a forked copy of this process, taken before anything here fixed the default.
TEST(DefaultContextTest, FirstUseFixesTheDefault) {
  ASSERT_EQ(mp::GetStartMethod(/*allow_none=*/true), std::nullopt) << "run before Lifecycle";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const bool ok = mp::GetContext()->method() == "forkserver" &&
                    mp::GetStartMethod(/*allow_none=*/true) == "forkserver" &&
                    mp::SetStartMethod("fork").code() == StatusCode::kFailedPrecondition;
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(DefaultContextTest, Lifecycle) {
  // Nothing fixed yet.
  EXPECT_EQ(mp::GetStartMethod(/*allow_none=*/true), std::nullopt);
  EXPECT_EQ(mp::GetAllStartMethods(), (std::vector<std::string>{"forkserver", "fork", "spawn"}));
  // This program does not link @mp//mpi:start_method.
  absl::StatusOr<mp::Context*> mpi = mp::GetContext("mpi");
  EXPECT_EQ(mpi.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(mpi.status().message(), "@mp//mpi:start_method")) << mpi.status();

  // A library's own context does not fix or change the default.
  EXPECT_EQ(LibraryMethod(), "spawn");
  EXPECT_EQ(mp::GetStartMethod(/*allow_none=*/true), std::nullopt);

  // Bad names are refused without fixing anything.
  EXPECT_EQ(mp::SetStartMethod("vfork").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::GetStartMethod(/*allow_none=*/true), std::nullopt);

  // The first SetStartMethod fixes the default; a second is refused unless forced.
  ASSERT_TRUE(mp::SetStartMethod("fork").ok());
  EXPECT_EQ(mp::GetStartMethod(), "fork");
  EXPECT_EQ(mp::GetContext()->method(), "fork");
  absl::Status again = mp::SetStartMethod("spawn");
  ASSERT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(again.message(), "already been set to 'fork'")) << again;
  EXPECT_TRUE(absl::StrContains(again.message(), "force")) << again;
  EXPECT_EQ(mp::GetStartMethod(), "fork");

  ASSERT_TRUE(mp::SetStartMethod("spawn", /*force=*/true).ok());
  EXPECT_EQ(mp::GetContext()->method(), "spawn");
  EXPECT_EQ(LibraryMethod(), "spawn");
  ASSERT_TRUE(mp::SetStartMethod("forkserver", /*force=*/true).ok());
  EXPECT_EQ(mp::GetStartMethod(/*allow_none=*/true), "forkserver");
}

}  // namespace
