// Copyright 2026 The mp Authors.

#include "pool/test_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"

namespace mp::pool_testing {

namespace {
// The worker's copy of the Lock given to KeepLock.
std::unique_ptr<Lock> g_lock;
}  // namespace

int64_t Pid(int64_t) { return getpid(); }

absl::Status KeepLock(Lock lock) {
  g_lock = std::make_unique<Lock>(std::move(lock));
  return absl::OkStatus();
}

bool LockWasFree(int64_t) {
  if (g_lock == nullptr) return false;
  absl::StatusOr<bool> got = g_lock->Acquire(false);
  if (!got.ok() || !*got) return false;
  return g_lock->Release().ok();
}

bool LockCanBeTaken(int64_t) {
  if (g_lock == nullptr) return false;
  absl::StatusOr<bool> got = g_lock->Acquire(true, absl::Seconds(60));
  if (!got.ok() || !*got) return false;
  return g_lock->Release().ok();
}

bool ReportAndAwaitRelease(const std::string& ready, absl::string_view line,
                           const std::string& release) {
  const int out = open(ready.c_str(), O_WRONLY | O_CLOEXEC);
  if (out < 0) return false;
  const bool wrote = write(out, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  close(out);
  if (!wrote) return false;
  const int in = open(release.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return false;
  char c;
  while (read(in, &c, 1) < 0 && errno == EINTR) {
  }
  close(in);
  return true;
}

}  // namespace mp::pool_testing
