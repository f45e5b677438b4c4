// Copyright 2026 The mp Authors.
//
// A program whose spawn children skip mp::Init gets clear errors, never a fork bomb. This test has
// its own main: it calls mp::Init, except in a child when MP_TEST_SKIP_INIT is set, where it plays
// a program that forgot it (and writes what it saw to the file MP_TEST_REPORT names).

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "start_methods/process.h"
#include "start_methods/spawn.h"
#include "start_methods/test_util.h"

namespace mp_test {

int Nothing() { return 0; }

// What the child's main does instead of mp::Init.
int ActWithoutInit(const std::string& mode) {
  if (mode == "hang") {
    for (;;) pause();
  }
  if (mode == "no-marker") unsetenv("MP_START");  // as if Init had never been heard of
  absl::StatusOr<mp::Process> p = mp::Process::Create(mp::SpawnStartMethod(), mp::Call<&Nothing>());
  absl::Status s = p.ok() ? p->Start() : p.status();
  if (const char* report = getenv("MP_TEST_REPORT"); report != nullptr) {
    std::ofstream(report) << s.ToString();
  }
  return s.ok() ? 0 : 1;
}

class ForgotInitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    report_ =
        absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp", "/report-", getpid());
    unlink(report_.c_str());
    setenv("MP_TEST_REPORT", report_.c_str(), 1);
  }
  void TearDown() override {
    unsetenv("MP_TEST_SKIP_INIT");
    unsetenv("MP_TEST_REPORT");
    unlink(report_.c_str());
  }
  absl::Status StartChild(const char* mode, absl::Duration handshake = absl::Seconds(60)) {
    setenv("MP_TEST_SKIP_INIT", mode, 1);
    auto method = std::make_shared<mp::SpawnMethod>(mp::SpawnOptions{handshake});
    absl::StatusOr<mp::Process> p = mp::Process::Create(method, mp::Call<&Nothing>());
    if (!p.ok()) return p.status();
    absl::Status s = p->Start();
    unsetenv("MP_TEST_SKIP_INIT");
    return s;
  }
  std::string Report() {
    std::ifstream in(report_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string report_;
};

TEST_F(ForgotInitTest, ChildThatRunsMainIsReportedAndCannotRecurse) {
  absl::Status s = StartChild("recurse");
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_TRUE(absl::StrContains(
      s.message(), "the child program did not call mp::Init(argc, argv) at the top of main"))
      << s;
  // The child's own attempt to spawn was refused: no recursion.
  EXPECT_TRUE(absl::StrContains(Report(), "did not call mp::Init(argc, argv)")) << Report();
  EXPECT_TRUE(absl::StrContains(Report(), "refusing to start a 'spawn' child")) << Report();
  EXPECT_TRUE(mp::ActiveChildren().empty());
  EXPECT_FALSE(mp::testing::HasZombieChild());
}

TEST_F(ForgotInitTest, ProgramWithoutInitCannotSpawn) {
  absl::Status s = StartChild("no-marker");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(Report(), "needs mp::Init(argc, argv) as the first line of main"))
      << Report();
}

TEST_F(ForgotInitTest, ChildThatNeverAnswersIsKilledAfterTheHandshakeTimeout) {
  absl::Status s = StartChild("hang", absl::Seconds(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "mp::Init(argc, argv)")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "was killed")) << s;
  EXPECT_TRUE(mp::ActiveChildren().empty());
  EXPECT_FALSE(mp::testing::HasZombieChild());
}

}  // namespace mp_test

int main(int argc, char** argv) {
  if (const char* mode = getenv("MP_TEST_SKIP_INIT");
      mode != nullptr && getenv("MP_START") != nullptr) {
    return mp_test::ActWithoutInit(mode);
  }
  mp::Init(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
