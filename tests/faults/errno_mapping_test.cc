// Copyright 2026 The mp Authors.
//
// One errno, one status code, whichever package makes the failing system call: with no descriptor
// left (EMFILE), Pipe, Queue, Lock, SharedMemory and Listener all answer kResourceExhausted, the
// README's errno table (base/errno_status.h). Pipe once per transport (a shared-memory Pipe needs a
// memfd and a socket pair), also with a few descriptors left, where a Pipe that fails halfway must
// leave nothing behind.

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "channels/connection.h"
#include "channels/test_transports.h"
#include "context/context.h"
#include "gtest/gtest.h"
#include "listener/listener.h"
#include "testing/open_fds.h"

namespace mp {
namespace {

// Lowers RLIMIT_NOFILE so that no new descriptor can be opened; restores it on destruction.
class NoDescriptorsLeft {
 public:
  NoDescriptorsLeft() {
    getrlimit(RLIMIT_NOFILE, &saved_);
    const int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    close(probe);
    struct rlimit tight = saved_;
    tight.rlim_cur = static_cast<rlim_t>(probe);  // every descriptor >= probe is refused
    ok_ = probe > 0 && setrlimit(RLIMIT_NOFILE, &tight) == 0;
  }
  ~NoDescriptorsLeft() { setrlimit(RLIMIT_NOFILE, &saved_); }
  bool ok() const { return ok_; }

 private:
  struct rlimit saved_ = {};
  bool ok_ = false;
};

void ExpectExhausted(const absl::Status& s, absl::string_view what) {
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << what << ": " << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "errno 24")) << what << ": " << s;
}

TEST(ErrnoMappingTest, EveryPackageMapsEmfileToResourceExhausted) {
  Context* fork = *GetContext("fork");
  Context* spawn = *GetContext("spawn");
  absl::Status pipe, queue, lock, shm, listener;
  {
    NoDescriptorsLeft limit;
    ASSERT_TRUE(limit.ok());
    pipe = fork->Pipe().status();
    queue = spawn->Queue().status();  // a memfd
    lock = spawn->Lock().status();    // a memfd
    shm = spawn->SharedMemory(std::nullopt, /*create=*/true, 4096).status();
    listener = Listener::Create({.address = "localhost:0"}).status();
  }
  ExpectExhausted(pipe, "Pipe");
  ExpectExhausted(queue, "Queue");
  ExpectExhausted(lock, "Lock");
  ExpectExhausted(shm, "SharedMemory");
  ExpectExhausted(listener, "Listener");
}

// Lowers RLIMIT_NOFILE so that exactly `left` more descriptors can be opened; restores it on
// destruction.
class DescriptorsLeft {
 public:
  explicit DescriptorsLeft(int left) {
    getrlimit(RLIMIT_NOFILE, &saved_);
    // The limit just past the `left`-th free descriptor number.
    int free_slots = 0, limit = 0;
    for (int fd = 0; free_slots < left; ++fd) {
      if (fcntl(fd, F_GETFD) < 0) ++free_slots;
      limit = fd + 1;
    }
    struct rlimit tight = saved_;
    tight.rlim_cur = static_cast<rlim_t>(limit);
    ok_ = setrlimit(RLIMIT_NOFILE, &tight) == 0;
  }
  ~DescriptorsLeft() { setrlimit(RLIMIT_NOFILE, &saved_); }
  bool ok() const { return ok_; }

 private:
  struct rlimit saved_ = {};
  bool ok_ = false;
};

class PipeErrnoTest : public ::testing::TestWithParam<ConnectionTransport> {};
INSTANTIATE_TEST_SUITE_P(Transports, PipeErrnoTest, ::mp::testing::AllTransports(),
                         ::mp::testing::TransportParamName());

TEST_P(PipeErrnoTest, PipeWithNoDescriptorLeftIsResourceExhausted) {
  for (bool duplex : {true, false}) {
    absl::Status pipe;
    {
      NoDescriptorsLeft limit;
      ASSERT_TRUE(limit.ok());
      pipe = mp::Pipe(duplex, GetParam()).status();
    }
    ExpectExhausted(pipe, duplex ? "Pipe()" : "Pipe(false)");
  }
}

// With 1 to 3 descriptors left, Pipe succeeds if it has the descriptors it needs (a socket pair
// or pipe(2): 2; a shared-memory link: its memfd and a socket pair, 3) and is kResourceExhausted
// otherwise, and one that failed (e.g. after its memfd, at its socket pair) leaves no descriptor
// behind.
TEST_P(PipeErrnoTest, PipeThatRunsOutHalfwayLeavesNothingBehind) {
#ifdef MP_UBSAN
  // UBSan's vptr check probes memory through a pipe(2) of its own: with no descriptor left it
  // reports a false "invalid vptr" in the segment's make_shared (--config=ubsan defines MP_UBSAN).
  if (GetParam() == ConnectionTransport::kSharedMemory) GTEST_SKIP() << "UBSan needs descriptors";
#endif
  const int needs = GetParam() == ConnectionTransport::kSocket ? 2 : 3;
  for (int left : {1, 2, 3}) {
    for (bool duplex : {true, false}) {
      const std::string what = absl::StrCat(left, " left, ", duplex ? "duplex" : "one-way");
      const int before = ::mp::testing::CountOpenFds();
      {
        absl::StatusOr<std::pair<Connection, Connection>> pipe;
        {
          DescriptorsLeft limit(left);
          ASSERT_TRUE(limit.ok()) << what;
          pipe = mp::Pipe(duplex, GetParam());
        }
        EXPECT_EQ(pipe.ok(), left >= needs) << what << ": " << pipe.status();
        if (!pipe.ok()) {
          ExpectExhausted(pipe.status(), what);
        } else {
          EXPECT_GT(::mp::testing::CountOpenFds(), before) << what;
          ASSERT_TRUE(pipe->second.SendBytes("works").ok()) << what;
          absl::StatusOr<std::string> got = pipe->first.RecvBytes();
          EXPECT_TRUE(got.ok() && *got == "works") << what << ": " << got.status();
        }
      }
      EXPECT_EQ(::mp::testing::CountOpenFds(), before) << what;
    }
  }
}

}  // namespace
}  // namespace mp
