// Copyright 2026 The mp Authors.
//
// Security properties that are not already tested where they are implemented:
//   * the forkserver refuses a connection that does not present its authkey (and keeps serving),
//     and its private directory holds nothing but the socket;
//   * shared segments are memfds: unnamed (no link anywhere, nothing in /dev/shm), close-on-exec,
//     sealed against resizing, and gone (no descriptor, no mapping) once the last object is
//     destroyed.
// Already covered elsewhere (not repeated here):
//   * the forkserver directory is 0700 and ours: start_methods/process_test.cc,
//     ForkServerTest.PrivateDirectoryIsRemovedWhenStopped;
//   * spawn and forkserver children hold exactly 0, 1, 2 and the descriptors they were given,
//   listed
//     from inside the child and reported over a passed pipe: start_methods/start_methods_test.cc,
//     StartMethodTest.ChildGetsOnlyItsDescriptors (typed over spawn and forkserver);
//   * the server checks the peer's uid (SO_PEERCRED) before reading the key: forkserver.cc
//     ServeConnection (a test needs a second uid, which the sandbox does not give).
//
// Access to a segment: a memfd has no name, so the only ways in are holding its descriptor (passed
// explicitly: SCM_RIGHTS or an inherited fd list) or opening /proc/<pid>/fd/<n> of a process that
// holds it, which the kernel allows only to processes that may ptrace-read that process (same uid
// and not restricted by dumpability / Yama). Its inode mode is whatever the kernel gives memfds
// (0777 on most kernels); the mode is not what protects it.

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "channels/queue.h"
#include "gtest/gtest.h"
#include "start_methods/forkserver.h"
#include "start_methods/process.h"
#include "start_methods/target.h"
#include "sync/lock.h"
#include "sync/shm.h"
#include "tests/faults/fault_util.h"

namespace mp::faults {

int SecurityReturn(int code) { return code; }

namespace {

int RunOn(std::shared_ptr<ForkServer> server, int code) {
  absl::StatusOr<Process> p = Process::Create(std::move(server), Call<&SecurityReturn>(code));
  if (!p.ok() || !p->Start().ok() || !p->Join().ok()) return -1;
  std::optional<int> exit_code = p->ExitCode();
  return exit_code.value_or(-1);
}

TEST(SecurityTest, ForkServerDropsAConnectionWithoutTheAuthkey) {
  auto server = std::make_shared<ForkServer>();
  ASSERT_EQ(RunOn(server, 4), 4);
  const std::string dir = server->SocketDirectory();
  ASSERT_TRUE(absl::StartsWith(dir, "/tmp/mp-forkserver-")) << dir;

  // Nothing but the socket in the private directory.
  std::vector<std::string> entries;
  {
    DIR* d = opendir(dir.c_str());
    ASSERT_NE(d, nullptr);
    while (dirent* e = readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
        entries.push_back(e->d_name);
      }
    }
    closedir(d);
  }
  EXPECT_EQ(entries, std::vector<std::string>{"s"});
  struct stat st {};
  ASSERT_EQ(lstat((dir + "/s").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_uid, geteuid());

  for (const std::string& offered :
       {std::string(32, '\0'), std::string(31, 'k') + "\n",
        std::string("GET / HTTP/1.0\r\n\r\n") + std::string(14, ' ')}) {
    const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = dir + "/s";
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(write(s, offered.data(), offered.size()), static_cast<ssize_t>(offered.size()));
    // A request after the wrong key: must never be acted on.
    const std::string request = "\x10\0\0\0garbage-request!";
    (void)send(s, request.data(), request.size(), MSG_NOSIGNAL);
    pollfd p{s, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 30000), 1) << "the server neither answered nor closed";
    char buf[64];
    const ssize_t n = read(s, buf, sizeof(buf));
    EXPECT_LE(n, 0) << "the server answered a peer without the authkey";
    close(s);
  }
  // Still serving.
  EXPECT_EQ(RunOn(server, 5), 5);
  server->Stop();
}

TEST(SecurityTest, SegmentsAreUnnamedSealedCloseOnExecMemfds) {
  const FdSnapshot before = FdSnapshot::Take();
  const int segments_before = SegmentFds();
  const std::set<std::string> shm_before = DevShmEntriesOfMp();
  {
    absl::StatusOr<Queue> q = Queue::Create({.domain = ShmDomain::kTransferable});
    ASSERT_TRUE(q.ok()) << q.status();
    absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kTransferable);
    ASSERT_TRUE(lock.ok()) << lock.status();
    for (int fd : {q->handle().segment.fd(), lock->handle().segment.fd()}) {
      SCOPED_TRACE(fd);
      ASSERT_GE(fd, 0);
      char target[256] = {};
      ASSERT_GT(readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), target, sizeof(target) - 1),
                0);
      EXPECT_TRUE(absl::StartsWith(target, "/memfd:mp-shm")) << target;
      struct stat st {};
      ASSERT_EQ(fstat(fd, &st), 0);
      EXPECT_TRUE(S_ISREG(st.st_mode));
      EXPECT_EQ(st.st_nlink, 0u) << "a segment must not be reachable by any name";
      EXPECT_EQ(st.st_uid, geteuid());
      EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC) << "segments reach children only when passed";
      const int seals = fcntl(fd, F_GET_SEALS);
      EXPECT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
                F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
      EXPECT_NE(ftruncate(fd, 0), 0) << "a peer must not be able to shrink a segment (SIGBUS)";
    }
    EXPECT_EQ(SegmentFds(), segments_before + 2);
    EXPECT_GE(SegmentMappings(), 2);
    EXPECT_EQ(DevShmEntriesOfMp(), shm_before) << "mp never names a segment";
    // A fork-domain segment has no descriptor at all.
    absl::StatusOr<Lock> fork_lock = Lock::Create(ShmDomain::kFork);
    ASSERT_TRUE(fork_lock.ok());
    EXPECT_EQ(fork_lock->handle().segment.fd(), -1);
  }
  EXPECT_EQ(SegmentFds(), segments_before);
  EXPECT_EQ(SegmentMappings(), 0);
  const FdSnapshot after = FdSnapshot::Take();
  EXPECT_EQ(after, before) << after.DiffFrom(before);
}

}  // namespace
}  // namespace mp::faults
