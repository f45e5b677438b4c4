// Copyright 2026 The mp Authors.

#include "start_methods/fork.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace mp {

int CountThreads() {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return 0;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

absl::Status ForkMethod::CheckTarget(const Target& target) const { return absl::OkStatus(); }

absl::StatusOr<std::unique_ptr<ChildHandle>> ForkMethod::Launch(const LaunchSpec& spec) {
  if (int threads = CountThreads(); threads > 1) {
    std::string warning = absl::StrCat(
        "mp: warning: process ", getpid(), " has ", threads,
        " threads; forking a multi-threaded process may deadlock the child (a lock another thread "
        "held stays locked); use the 'spawn' or 'forkserver' start method\n");
    std::fwrite(warning.data(), 1, warning.size(), stderr);
  }
  process_internal::ChildIdentity id = process_internal::IdentityForChild(spec);
  const Target& target = *spec.target;
  process_internal::FlushStdio();
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    // ChildMain catches whatever the target throws and _exits: the child never comes back here,
    // where it would unwind into (or return to) the parent's code that called Start.
    process_internal::ChildMain(id, [&target] { return target.Run(); });
  }
  absl::StatusOr<int> pidfd = process_internal::PidfdOpen(pid);
  if (!pidfd.ok()) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return pidfd.status();
  }
  return std::make_unique<process_internal::LocalChild>(pid, *pidfd);
}

std::shared_ptr<StartMethod> ForkStartMethod() {
  static auto* const method = new std::shared_ptr<StartMethod>(std::make_shared<ForkMethod>());
  return *method;
}

namespace {
const bool registered = [] {
  process_internal::RegisterStartMethod("fork", &ForkStartMethod);
  return true;
}();
}  // namespace

}  // namespace mp
