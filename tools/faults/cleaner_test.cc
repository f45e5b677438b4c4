// Copyright 2026 The mp Authors.

#include "tools/faults/cleaner.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "shared_memory/shared_memory.h"
#include "start_methods/forkserver.h"
#include "start_methods/process.h"
#include "start_methods/target.h"

namespace mp::faults {

int ReturnCode(int code) { return code; }

namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// Binds (and listens on) a Unix socket at `path`; returns the socket.
int Listen(const std::string& path) {
  const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(s, 4) != 0) {
    ADD_FAILURE() << "cannot listen on " << path << ": " << strerror(errno);
  }
  return s;
}

const Leftover* FindPath(const std::vector<Leftover>& all, const std::string& path) {
  for (const Leftover& l : all) {
    if (l.path == path) return &l;
  }
  return nullptr;
}

class CleanerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mp-cleaner-test-XXXXXX";  // short: socket paths must fit sun_path
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    options_.tmp_dir = root_;
    options_.min_age = absl::ZeroDuration();
    options_.processes = false;
    options_.shared_memory_registry = false;
  }
  void TearDown() override {
    // Remove whatever a failing test left, our own scratch directory included.
    std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }
  std::string MakeDir(const std::string& suffix) {
    const std::string dir = root_ + "/mp-forkserver-" + suffix;
    EXPECT_EQ(mkdir(dir.c_str(), 0700), 0);
    EXPECT_EQ(chmod(dir.c_str(), 0700), 0);  // umask-proof
    return dir;
  }
  std::string root_;
  CleanerOptions options_;
};

TEST_F(CleanerTest, RemovesADeadServersDirectoryAndKeepsALiveOne) {
  // Stale: a socket bound and listened on by a process that then died (the "owner" pid is gone).
  const std::string stale = MakeDir("dead01");
  const pid_t owner = fork();
  if (owner == 0) {
    Listen(stale + "/s");
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(owner, &status, 0), owner);
  ASSERT_TRUE(Exists(stale + "/s"));
  // Live: we listen on it.
  const std::string live = MakeDir("live01");
  const int listener = Listen(live + "/s");

  absl::StatusOr<std::vector<Leftover>> found = FindLeftovers(options_);
  ASSERT_TRUE(found.ok()) << found.status();
  const Leftover* s = FindPath(*found, stale);
  const Leftover* l = FindPath(*found, live);
  ASSERT_NE(s, nullptr);
  ASSERT_NE(l, nullptr);
  EXPECT_TRUE(s->stale) << s->reason;
  EXPECT_FALSE(l->stale) << l->reason;
  EXPECT_TRUE(RemoveLeftover(*s).ok());
  EXPECT_FALSE(Exists(stale));
  EXPECT_TRUE(absl::IsFailedPrecondition(RemoveLeftover(*l)));
  EXPECT_TRUE(Exists(live + "/s"));
  close(listener);
}

TEST_F(CleanerTest, LeavesYoungForeignOddAndNonDirectoryEntriesAlone) {
  const std::string young = MakeDir("young1");  // no socket yet: a server may be starting
  const std::string odd_mode = MakeDir("mode01");
  ASSERT_EQ(chmod(odd_mode.c_str(), 0755), 0);
  const std::string file = root_ + "/mp-forkserver-file01";
  ASSERT_EQ(close(creat(file.c_str(), 0600)), 0);
  const std::string extra = MakeDir("extra1");  // stale, but holds something no server makes
  ASSERT_EQ(close(creat((extra + "/precious").c_str(), 0600)), 0);
  std::string foreign;
  if (geteuid() == 0) {  // root outside a user namespace can make a directory of another user
    foreign = MakeDir("other1");
    if (chown(foreign.c_str(), 12345, 12345) != 0) {
      rmdir(foreign.c_str());
      foreign.clear();
    }
  }
  options_.min_age = absl::Hours(1);
  absl::StatusOr<std::vector<Leftover>> found = FindLeftovers(options_);
  ASSERT_TRUE(found.ok()) << found.status();
  for (const std::string& path : {young, odd_mode, file, extra, foreign}) {
    if (path.empty()) continue;
    const Leftover* l = FindPath(*found, path);
    ASSERT_NE(l, nullptr) << path;
    EXPECT_FALSE(l->stale) << path << ": " << l->reason;
  }
  // Old enough now: the empty young one becomes stale; the one with a foreign file is refused.
  options_.min_age = absl::ZeroDuration();
  found = FindLeftovers(options_);
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(FindPath(*found, young)->stale);
  EXPECT_TRUE(RemoveLeftover(*FindPath(*found, young)).ok());
  EXPECT_FALSE(Exists(young));
  const Leftover* e = FindPath(*found, extra);
  ASSERT_TRUE(e->stale);
  EXPECT_TRUE(absl::IsFailedPrecondition(RemoveLeftover(*e)));
  EXPECT_TRUE(Exists(extra + "/precious"));
  EXPECT_TRUE(Exists(odd_mode));
  EXPECT_TRUE(Exists(file));
}

TEST_F(CleanerTest, MissingTmpDirIsAStatus) {
  options_.tmp_dir = root_ + "/nope";
  EXPECT_TRUE(absl::IsNotFound(FindLeftovers(options_).status()));
}

// A tracked SharedMemory segment whose creator died is listed and reclaimed.
TEST(CleanerSharedMemoryTest, SegmentOfADeadCreatorIsReclaimed) {
  const std::string name =
      absl::StrCat("mp_cleaner_test_", getpid(), "_", absl::ToUnixNanos(absl::Now()));
  const pid_t creator = fork();
  if (creator == 0) {
    absl::StatusOr<SharedMemory> shm = SharedMemory::Create(name, 4096);
    _exit(shm.ok() ? 0 : 1);  // dies without Unlink
  }
  int status = 0;
  ASSERT_EQ(waitpid(creator, &status, 0), creator);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_TRUE(Exists("/dev/shm/" + name));
  CleanerOptions options;
  options.tmp_dir = "/tmp";
  options.processes = false;
  absl::StatusOr<std::vector<Leftover>> found = FindLeftovers(options);
  ASSERT_TRUE(found.ok()) << found.status();
  const Leftover* entry = nullptr;
  for (const Leftover& l : *found) {
    if (l.kind == Leftover::Kind::kSharedMemoryEntry && absl::EndsWith(l.path, name)) entry = &l;
  }
  ASSERT_NE(entry, nullptr) << "the registry entry is listed";
  EXPECT_TRUE(absl::StartsWith(entry->path, SharedMemory::RegistryDirectory() + "/"));
  absl::StatusOr<std::vector<std::string>> reclaimed = ReclaimSharedMemory();
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status();
  EXPECT_NE(std::find(reclaimed->begin(), reclaimed->end(), name), reclaimed->end());
  EXPECT_FALSE(Exists("/dev/shm/" + name));
}

// The real thing: a forkserver SIGKILLed leaves its directory; the cleaner finds it stale and
// removes it, while a live server's directory and process are reported live and kept.
TEST(CleanerRealForkServerTest, KilledServerLeavesADirectoryTheCleanerRemoves) {
  auto doomed = std::make_shared<ForkServer>();
  auto alive = std::make_shared<ForkServer>();
  for (auto& server : {doomed, alive}) {
    absl::StatusOr<Process> p = Process::Create(server, Call<&ReturnCode>(3));
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_TRUE(p->Start().ok());
    ASSERT_TRUE(p->Join().ok());
    ASSERT_EQ(p->ExitCode(), 3);
  }
  const std::string doomed_dir = doomed->SocketDirectory();
  const std::string alive_dir = alive->SocketDirectory();
  std::optional<pid_t> doomed_pid = doomed->ServerPid();
  std::optional<pid_t> alive_pid = alive->ServerPid();
  ASSERT_TRUE(doomed_pid && alive_pid);

  CleanerOptions options;
  options.min_age = absl::ZeroDuration();
  absl::StatusOr<std::vector<Leftover>> found = FindLeftovers(options);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_NE(FindPath(*found, alive_dir), nullptr);
  EXPECT_FALSE(FindPath(*found, alive_dir)->stale) << FindPath(*found, alive_dir)->reason;
  const Leftover* alive_proc = FindPath(*found, absl::StrCat("/proc/", *alive_pid));
  ASSERT_NE(alive_proc, nullptr) << "the live server process is listed";
  EXPECT_FALSE(alive_proc->stale) << alive_proc->reason;

  ASSERT_EQ(kill(*doomed_pid, SIGKILL), 0);
  // Reaping is the owner's job; wait for the kill to land without sleeping: the pid's exit.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, *doomed_pid, &info, WEXITED | WNOWAIT), 0);
  ASSERT_TRUE(Exists(doomed_dir + "/s")) << "a SIGKILLed server cannot remove its directory";
  found = FindLeftovers(options);
  ASSERT_TRUE(found.ok()) << found.status();
  const Leftover* d = FindPath(*found, doomed_dir);
  ASSERT_NE(d, nullptr);
  EXPECT_TRUE(d->stale) << d->reason;
  EXPECT_TRUE(RemoveLeftover(*d).ok());
  EXPECT_FALSE(Exists(doomed_dir));
  EXPECT_TRUE(Exists(alive_dir + "/s"));
  doomed->Stop();  // reaps the server; its directory is already gone
  alive->Stop();
  EXPECT_FALSE(Exists(alive_dir));
}

}  // namespace
}  // namespace mp::faults
