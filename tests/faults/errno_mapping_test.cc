// Copyright 2026 The mp Authors.
//
// One errno, one status code, whichever package makes the failing system call: with no descriptor
// left (EMFILE), Pipe, Queue, Lock, SharedMemory and Listener all answer kResourceExhausted, the
// README's errno table (base/errno_status.h).

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "context/context.h"
#include "gtest/gtest.h"
#include "listener/listener.h"

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

}  // namespace
}  // namespace mp
