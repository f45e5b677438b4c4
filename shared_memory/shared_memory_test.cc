// Copyright 2026 The mp Authors.
//
// SharedMemory: CPython's semantics, the registry of tracked segments, reclamation of a SIGKILLed
// creator's segments, and passing a segment to fork / spawn / forkserver children by name.

#include "shared_memory/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "start_methods/fork.h"
#include "start_methods/forkserver.h"
#include "start_methods/process.h"
#include "start_methods/spawn.h"
#include "start_methods/test_methods.h"
#include "start_methods/test_util.h"

namespace shm_test {
namespace {

using ::absl::StatusCode;

// A private registry for this test binary (and its spawn children, which inherit the environment).
const bool kRegistrySet = [] {
  const char* tmp = std::getenv("TEST_TMPDIR");
  if (tmp != nullptr && std::getenv("MP_SHM_REGISTRY") == nullptr) {
    setenv("MP_SHM_REGISTRY", absl::StrCat(tmp, "/mp-shm-registry").c_str(), 1);
  }
  return true;
}();

// Random, not the pid: sandboxed test runs may share a pid (separate pid namespaces) and /dev/shm.
std::string UniqueName(absl::string_view what) {
  static absl::BitGen gen;
  return absl::StrCat("mp_test_", what, "_", absl::Hex(absl::Uniform<uint64_t>(gen)));
}

// Unlinks every name added to it, whatever happened in the test.
class NameGuard {
 public:
  ~NameGuard() {
    for (const std::string& n : names_) shm_unlink(("/" + n).c_str());
  }
  const std::string& Add(std::string n) { return names_.emplace_back(std::move(n)); }

 private:
  std::vector<std::string> names_;
};

bool Exists(const std::string& name) {
  const int fd = shm_open(("/" + name).c_str(), O_RDONLY, 0);
  if (fd < 0) return false;
  close(fd);
  return true;
}

TEST(SharedMemoryTest, CreateAttachShareBytes) {
  NameGuard g;
  const std::string name = g.Add(UniqueName("basic"));
  absl::StatusOr<mp::SharedMemory> a = mp::SharedMemory::Create(name, 100);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->name(), name);
  EXPECT_EQ(a->size(), 100u);
  EXPECT_TRUE(a->created());
  EXPECT_EQ(a->buf()[0], 0);  // zero-filled
  std::memcpy(a->buf().data(), "hello", 5);
  absl::StatusOr<mp::SharedMemory> b = mp::SharedMemory::Attach("/" + name);  // leading "/" is fine
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->name(), name);
  EXPECT_FALSE(b->created());
  EXPECT_GE(b->size(), 100u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(b->buf().data()), 5), "hello");
  b->buf()[10] = 42;
  EXPECT_EQ(a->buf()[10], 42);
  b->Close();
  EXPECT_FALSE(b->valid());
  EXPECT_TRUE(b->buf().empty());
  EXPECT_EQ(b->name(), name);
  ASSERT_TRUE(a->Unlink().ok());
  EXPECT_FALSE(Exists(name));
  EXPECT_EQ(a->buf()[10], 42);  // the mapping outlives the name
  EXPECT_EQ(a->Unlink().code(), StatusCode::kFailedPrecondition);
}

TEST(SharedMemoryTest, CPythonErrors) {
  NameGuard g;
  const std::string name = g.Add(UniqueName("errors"));
  EXPECT_EQ(mp::SharedMemory::Create(name, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::SharedMemory::Create(name, -5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(Exists(name));
  EXPECT_EQ(mp::SharedMemory::Attach(name).status().code(), StatusCode::kNotFound);
  absl::StatusOr<mp::SharedMemory> a = mp::SharedMemory::Create(name, 10);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::Status again = mp::SharedMemory::Create(name, 10).status();
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(again.message().find(name), absl::string_view::npos) << again;
  for (absl::string_view bad : {"", "/", "a/b", "//x", ".", "..", "/.."}) {
    if (bad.empty() || bad == "/") continue;  // those mean "random name" for Create
    EXPECT_EQ(mp::SharedMemory::Create(bad, 10).status().code(), StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(mp::SharedMemory::Attach(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(mp::SharedMemory::Attach("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::SharedMemory::Attach(std::string(251, 'x')).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::SharedMemory::Attach(std::string("a\0b", 3)).status().code(),
            StatusCode::kInvalidArgument);
  // CPython: SharedMemory(None) -> ValueError.
  EXPECT_EQ(mp::SharedMemory::Open(std::nullopt, false).status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(a->Unlink().ok());
  mp::SharedMemory attached_gone;
  EXPECT_EQ(mp::SharedMemory::Attach(name).status().code(), StatusCode::kNotFound);
  // Unlinked by somebody else: kNotFound.
  absl::StatusOr<mp::SharedMemory> c = mp::SharedMemory::Create(name, 10);
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<mp::SharedMemory> d = mp::SharedMemory::Attach(name);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->Unlink().ok());
  EXPECT_EQ(c->Unlink().code(), StatusCode::kNotFound);
}

TEST(SharedMemoryTest, RandomNameAndOpen) {
  absl::StatusOr<mp::SharedMemory> a = mp::SharedMemory::Open(std::nullopt, true, 64);
  ASSERT_TRUE(a.ok()) << a.status();
  NameGuard g;
  g.Add(a->name());
  EXPECT_EQ(a->name().substr(0, 4), "psm_");
  EXPECT_EQ(a->name().size(), 20u);
  absl::StatusOr<mp::SharedMemory> b = mp::SharedMemory::Open(a->name());
  ASSERT_TRUE(b.ok()) << b.status();
  absl::StatusOr<mp::SharedMemory> c = mp::SharedMemory::Create("", 64);
  ASSERT_TRUE(c.ok());
  g.Add(c->name());
  EXPECT_NE(a->name(), c->name());
  EXPECT_TRUE(a->Unlink().ok());
  EXPECT_TRUE(c->Unlink().ok());
}

TEST(SharedMemoryTest, CopiesShareTheMapping) {
  NameGuard g;
  absl::StatusOr<mp::SharedMemory> a = mp::SharedMemory::Create(g.Add(UniqueName("copy")), 16);
  ASSERT_TRUE(a.ok());
  mp::SharedMemory copy = *a;
  a->Close();
  copy.buf()[3] = 7;  // still mapped
  EXPECT_EQ(copy.buf()[3], 7);
  EXPECT_TRUE(copy.Unlink().ok());
}

TEST(SharedMemoryTest, CodecCarriesTheName) {
  NameGuard g;
  absl::StatusOr<mp::SharedMemory> a = mp::SharedMemory::Create(g.Add(UniqueName("codec")), 32);
  ASSERT_TRUE(a.ok());
  a->buf()[0] = 9;
  absl::StatusOr<mp::SharedMemory> back = mp::Decode<mp::SharedMemory>(mp::Encode(*a));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->created());
  EXPECT_EQ(back->buf()[0], 9);
  ASSERT_TRUE(a->Unlink().ok());
  EXPECT_EQ(mp::Decode<mp::SharedMemory>(mp::Encode(*a)).status().code(), StatusCode::kNotFound);
}

// Reclamation: a creator that is SIGKILLed leaves its tracked segment behind; the next
// ReclaimOrphans (or Create) unlinks it. Untracked segments and live creators' segments stay.
TEST(SharedMemoryTest, SigkilledCreatorsSegmentIsReclaimed) {
  NameGuard g;
  const std::string tracked = g.Add(UniqueName("orphan"));
  const std::string untracked = g.Add(UniqueName("kept"));
  mp::testing::TestPipe ready;
  mp::testing::ChildGuard guard;
  absl::StatusOr<mp::Process> p = mp::Process::Create(
      mp::ForkStartMethod(), mp::Target::Callable([&]() -> int {
        absl::StatusOr<mp::SharedMemory> a = mp::SharedMemory::Create(tracked, 4096);
        absl::StatusOr<mp::SharedMemory> b =
            mp::SharedMemory::Create(untracked, 4096, {.track = false});
        if (!a.ok() || !b.ok()) return 1;
        mp::testing::WriteAllOrDie(ready.w(), "r");
        for (;;) pause();  // killed here
      }));
  ASSERT_TRUE(p.ok()) << p.status();
  mp::Process child = guard.Add(*p);
  ASSERT_TRUE(child.Start().ok());
  ASSERT_TRUE(mp::testing::ReadExactly(ready.r(), 1).ok());
  // Creator alive: nothing is reclaimed.
  absl::StatusOr<std::vector<std::string>> none = mp::SharedMemory::ReclaimOrphans();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(Exists(tracked));
  ASSERT_TRUE(child.Kill().ok());
  ASSERT_TRUE(child.Join(absl::Seconds(60)).ok());
  absl::StatusOr<std::vector<std::string>> got = mp::SharedMemory::ReclaimOrphans();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::vector<std::string>{tracked});
  EXPECT_FALSE(Exists(tracked));
  EXPECT_TRUE(Exists(untracked));
  // The name can be created again, and the new segment is not touched by a second pass.
  absl::StatusOr<mp::SharedMemory> again = mp::SharedMemory::Create(tracked, 8);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(mp::SharedMemory::ReclaimOrphans().ok());
  EXPECT_TRUE(Exists(tracked));
  EXPECT_TRUE(again->Unlink().ok());
}

TEST(SharedMemoryTest, UntrackKeepsASegmentPastItsCreator) {
  NameGuard g;
  const std::string name = g.Add(UniqueName("untrack"));
  mp::testing::ChildGuard guard;
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(mp::ForkStartMethod(), mp::Target::Callable([&]() -> int {
                            absl::StatusOr<mp::SharedMemory> a = mp::SharedMemory::Create(name, 64);
                            if (!a.ok() || !a->Untrack().ok()) return 1;
                            return a->Untrack().code() == StatusCode::kNotFound ? 0 : 2;
                          }));
  ASSERT_TRUE(p.ok());
  mp::Process child = guard.Add(*p);
  ASSERT_TRUE(child.Start().ok());
  ASSERT_TRUE(child.Join(absl::Seconds(60)).ok());
  EXPECT_EQ(child.ExitCode(), 0);
  ASSERT_TRUE(mp::SharedMemory::ReclaimOrphans().ok());
  EXPECT_TRUE(Exists(name));
}

TEST(SharedMemoryTest, RegistryWithWrongModeIsRefused) {
  const std::string dir = mp::SharedMemory::RegistryDirectory();
  ASSERT_TRUE(mp::SharedMemory::ReclaimOrphans().ok());  // creates it
  ASSERT_EQ(chmod(dir.c_str(), 0755), 0);
  absl::Status s = mp::SharedMemory::ReclaimOrphans().status();
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("0700"), absl::string_view::npos) << s;
  // The mode found is printed in octal, as chmod spells it.
  EXPECT_NE(s.message().find("mode 0755"), absl::string_view::npos) << s;
  ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
  EXPECT_TRUE(mp::SharedMemory::ReclaimOrphans().ok());
}

// Points MP_SHM_REGISTRY at `path` for the scope's lifetime.
class ScopedRegistry {
 public:
  explicit ScopedRegistry(const std::string& path) {
    if (const char* previous = std::getenv("MP_SHM_REGISTRY"); previous != nullptr) {
      previous_ = previous;
    }
    setenv("MP_SHM_REGISTRY", path.c_str(), 1);
  }
  ~ScopedRegistry() {
    if (previous_.has_value()) {
      setenv("MP_SHM_REGISTRY", previous_->c_str(), 1);
    } else {
      unsetenv("MP_SHM_REGISTRY");
    }
  }

 private:
  std::optional<std::string> previous_;
};

// The registry path inside a fresh private directory of TEST_TMPDIR named after `tag`.
std::string FreshRegistryPath(absl::string_view tag) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  EXPECT_NE(tmp, nullptr);
  if (tmp == nullptr) return "";
  const std::string root = absl::StrCat(tmp, "/", UniqueName(tag));
  EXPECT_EQ(mkdir(root.c_str(), 0755), 0) << root << ": " << std::strerror(errno);
  return root + "/.mp-shm-registry";
}

// Creates `path` as another user's (uid 65534) directory, mode 0700: the squat.
void SquatAsAnotherUser(const std::string& path) {
  ASSERT_EQ(mkdir(path.c_str(), 0700), 0) << path << ": " << std::strerror(errno);
  ASSERT_EQ(chown(path.c_str(), 65534, 65534), 0) << path << ": " << std::strerror(errno);
}

// Another local user can create the registry's path before us (in the sticky /dev/shm we could not
// remove it). Simulated here in a private root: the path belongs to uid 65534, mode 0700. Tracked
// segments must still be created, and orphans still reclaimed by other processes of this user.
TEST(SharedMemoryTest, SquattedRegistryDoesNotBlockCreate) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create a directory owned by another uid";
  const std::string canonical = FreshRegistryPath("squat");
  ASSERT_FALSE(canonical.empty());
  ScopedRegistry scoped(canonical);
  // The squatter's directory, and a squatted fallback-looking name too.
  for (const std::string& path : {canonical, canonical + "-0123456789abcdef"}) {
    ASSERT_NO_FATAL_FAILURE(SquatAsAnotherUser(path));
  }

  NameGuard g;
  const std::string mine = g.Add(UniqueName("squatted"));
  absl::StatusOr<mp::SharedMemory> shm = mp::SharedMemory::Create(mine, 64);
  ASSERT_TRUE(shm.ok()) << shm.status();
  const std::string in_use = mp::SharedMemory::RegistryDirectory();
  EXPECT_NE(in_use, canonical);
  EXPECT_NE(in_use, canonical + "-0123456789abcdef");
  EXPECT_EQ(in_use.rfind(canonical + "-", 0), 0u) << in_use;
  struct stat st;
  ASSERT_EQ(lstat(in_use.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(lstat((in_use + "/e-" + mine).c_str(), &st), 0) << "the entry is in " << in_use;

  // Another process of this user creates a tracked segment and is SIGKILLed: this process finds
  // its entry (in the same fallback directory) and reclaims the segment.
  const std::string orphan = g.Add(UniqueName("squat_orphan"));
  mp::testing::TestPipe ready;
  mp::testing::ChildGuard guard;
  absl::StatusOr<mp::Process> p = mp::Process::Create(
      mp::ForkStartMethod(), mp::Target::Callable([&]() -> int {
        absl::StatusOr<mp::SharedMemory> a = mp::SharedMemory::Create(orphan, 4096);
        if (!a.ok()) return 1;
        mp::testing::WriteAllOrDie(ready.w(), "r");
        for (;;) pause();  // killed here
      }));
  ASSERT_TRUE(p.ok()) << p.status();
  mp::Process child = guard.Add(*p);
  ASSERT_TRUE(child.Start().ok());
  ASSERT_TRUE(mp::testing::ReadExactly(ready.r(), 1).ok());
  ASSERT_TRUE(child.Kill().ok());
  ASSERT_TRUE(child.Join(absl::Seconds(60)).ok());
  absl::StatusOr<std::vector<std::string>> got = mp::SharedMemory::ReclaimOrphans();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::vector<std::string>{orphan});
  EXPECT_FALSE(Exists(orphan));
  EXPECT_TRUE(Exists(mine));

  // Untrack and Unlink find the entry where Create put it.
  EXPECT_TRUE(shm->Untrack().ok());
  EXPECT_EQ(shm->Untrack().code(), StatusCode::kNotFound);
  EXPECT_TRUE(shm->Unlink().ok());
}

// If the squatter goes away and the canonical directory is made later, entries left in a fallback
// directory are still reclaimed: every registry directory of this user is scanned.
TEST(SharedMemoryTest, FallbackEntriesAreReclaimedAfterTheSquatEnds) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create a directory owned by another uid";
  const std::string canonical = FreshRegistryPath("squat_end");
  ASSERT_FALSE(canonical.empty());
  ScopedRegistry scoped(canonical);
  ASSERT_NO_FATAL_FAILURE(SquatAsAnotherUser(canonical));

  NameGuard g;
  const std::string orphan = g.Add(UniqueName("late_orphan"));
  mp::testing::ChildGuard guard;
  absl::StatusOr<mp::Process> p = mp::Process::Create(
      mp::ForkStartMethod(), mp::Target::Callable([&]() -> int {
        return mp::SharedMemory::Create(orphan, 4096).ok() ? 0 : 1;  // exits without Unlink
      }));
  ASSERT_TRUE(p.ok()) << p.status();
  mp::Process child = guard.Add(*p);
  ASSERT_TRUE(child.Start().ok());
  ASSERT_TRUE(child.Join(absl::Seconds(60)).ok());
  ASSERT_EQ(child.ExitCode(), 0);
  ASSERT_TRUE(Exists(orphan));

  ASSERT_EQ(rmdir(canonical.c_str()), 0);  // the squatter leaves
  absl::StatusOr<std::vector<std::string>> got = mp::SharedMemory::ReclaimOrphans();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(mp::SharedMemory::RegistryDirectory(), canonical);
  EXPECT_EQ(*got, std::vector<std::string>{orphan});
  EXPECT_FALSE(Exists(orphan));
}

// A creator SIGKILLed between writing its temporary registry entry and renaming it leaves the
// temporary file behind. Found by the kill trials: with pids repeating across PID namespaces (every
// sandboxed test starts from the same pids), a later creator picked the same temporary name and
// Create failed with "File exists". Temporary names are now random, and stale ones are removed.
TEST(SharedMemoryTest, StaleTemporaryRegistryEntriesDoNotBlockCreate) {
  const std::string dir = mp::SharedMemory::RegistryDirectory();
  ASSERT_TRUE(mp::SharedMemory::ReclaimOrphans().ok());  // creates it
  // Leftovers named as the old scheme named them (t-<pid>-<counter>), for this pid: one old, one
  // fresh (a creator may be between its two steps right now).
  std::vector<std::string> temps;
  for (int counter = 0; counter < 64; ++counter) {
    temps.push_back(absl::StrCat(dir, "/t-", getpid(), "-", counter));
    const int fd = open(temps.back().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << temps.back();
    close(fd);
  }
  const std::string old_one = temps[0];
  struct timespec times[2] = {{time(nullptr) - 120, 0}, {time(nullptr) - 120, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, old_one.c_str(), times, 0), 0);

  absl::StatusOr<mp::SharedMemory> shm = mp::SharedMemory::Create("", 4096);
  ASSERT_TRUE(shm.ok()) << shm.status();
  shm->Unlink().IgnoreError();
  shm->Close();

  struct stat st;
  EXPECT_NE(lstat(old_one.c_str(), &st), 0) << "a two-minute-old temporary entry was not removed";
  EXPECT_EQ(lstat(temps[1].c_str(), &st), 0) << "a fresh temporary entry was removed";
  for (const std::string& t : temps) unlink(t.c_str());
}

// A child of every start method attaches by name (the Codec) and writes into the segment.
int WriteThrough(mp::SharedMemory shm, int64_t value) {
  if (shm.size() < 8) return 3;
  std::memcpy(shm.buf().data(), &value, 8);
  return 0;
}

class SharedMemoryMethodTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SharedMemoryMethodTest, ChildWritesThroughTheName) {
  NameGuard g;
  absl::StatusOr<mp::SharedMemory> shm = mp::SharedMemory::Create(g.Add(UniqueName("child")), 8);
  ASSERT_TRUE(shm.ok());
  std::shared_ptr<mp::StartMethod> method = mp::testing::MethodNamed(GetParam());
  mp::testing::ChildGuard guard;
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(method, mp::Call<&WriteThrough>(*shm, int64_t{0x1234567}));
  ASSERT_TRUE(p.ok()) << p.status();
  mp::Process child = guard.Add(*p);
  ASSERT_TRUE(child.Start().ok());
  ASSERT_TRUE(child.Join(absl::Seconds(60)).ok());
  EXPECT_EQ(child.ExitCode(), 0);
  int64_t got = 0;
  std::memcpy(&got, shm->buf().data(), 8);
  EXPECT_EQ(got, 0x1234567);
  // A child that attached (not created) does not make the segment reclaimable.
  ASSERT_TRUE(mp::SharedMemory::ReclaimOrphans().ok());
  EXPECT_TRUE(Exists(shm->name()));
  EXPECT_TRUE(shm->Unlink().ok());
}

INSTANTIATE_TEST_SUITE_P(Methods, SharedMemoryMethodTest,
                         ::testing::Values("fork", "spawn", "forkserver"));

}  // namespace
}  // namespace shm_test
