// Copyright 2026 The mp Authors.
//
// Regression test for a leak mp_cleaner found on the shared build machine: /tmp/mp-forkserver-*
// directories whose server was gone. The forkserver runs in its owner's process group; with
// SIGINT's default action, a Ctrl-C in a terminal (SIGINT to the foreground process group) ended
// the server together with its owner, and neither removed the directory. Fixed in
// start_methods/forkserver.cc: the server ignores SIGINT (as CPython's does) and exits cleanly when
// its owner's death closes the lifeline; the children it forks get the owner's SIGINT disposition
// back. (A killpg(SIGKILL), e.g. bazel's test timeout, still leaks the directory: mp_cleaner
// --remove cleans that up.)
//
//   bazel test //tests/faults:forkserver_sigint_test

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "gtest/gtest.h"
#include "start_methods/forkserver.h"
#include "start_methods/process.h"
#include "start_methods/target.h"

namespace mp::faults {

int SigintReturn(int code) { return code; }

namespace {

TEST(ForkServerSigintTest, CtrlCOfTheOwnerLeavesNoDirectory) {
  int info[2];
  ASSERT_EQ(pipe(info), 0);
  const pid_t owner = fork();
  if (owner == 0) {
    close(info[0]);
    setpgid(0, 0);  // a process group of its own, like a job in a shell
    auto server = std::make_shared<ForkServer>();
    absl::StatusOr<Process> p = Process::Create(server, Call<&SigintReturn>(0));
    if (!p.ok() || !p->Start().ok() || !p->Join().ok()) _exit(1);
    const std::string msg = absl::StrCat(*server->ServerPid(), " ", server->SocketDirectory());
    (void)!write(info[1], msg.data(), msg.size());
    close(info[1]);
    pause();  // until the SIGINT
    _exit(2);
  }
  close(info[1]);
  char buf[256] = {};
  ssize_t n = read(info[0], buf, sizeof(buf) - 1);
  close(info[0]);
  ASSERT_GT(n, 0);
  pid_t server_pid = 0;
  char dir[200] = {};
  ASSERT_EQ(sscanf(buf, "%d %199s", &server_pid, dir), 2);
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, server_pid, 0));
  ASSERT_GE(pidfd, 0);
  ASSERT_EQ(kill(-owner, SIGINT), 0);  // Ctrl-C
  int status = 0;
  ASSERT_EQ(waitpid(owner, &status, 0), owner);
  absl::StatusOr<short> ready = PollUntil(pidfd, POLLIN, Deadline::After(absl::Seconds(10)));
  const bool server_ended = ready.ok() && *ready != 0;
  close(pidfd);
  struct stat st {};
  const bool leaked = stat(dir, &st) == 0;
  if (leaked) {  // clean up after the reproduction
    unlink(absl::StrCat(dir, "/s").c_str());
    rmdir(dir);
  }
  if (!server_ended) kill(server_pid, SIGKILL);
  EXPECT_FALSE(leaked) << dir << " outlived its owner and server after a Ctrl-C (server "
                       << (server_ended ? "died with its owner" : "still running") << ")";
}

}  // namespace
}  // namespace mp::faults
