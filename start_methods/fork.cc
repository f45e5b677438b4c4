// Copyright 2026 The mp Authors.

#include "start_methods/fork.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/errno_status.h"
#include "base/inherited.h"

namespace mp {

int CountThreads() { return process_internal::CountThreads(); }

absl::Status ForkMethod::CheckTarget(const Target& target) const { return absl::OkStatus(); }

absl::StatusOr<std::unique_ptr<ChildHandle>> ForkMethod::Launch(const LaunchSpec& spec) {
  process_internal::WarnIfForkingThreads();
  process_internal::ChildIdentity id = process_internal::IdentityForChild(spec);
  const Target& target = *spec.target;
  const bool close_inherited = spec.close_inherited_connections;
  // The child's work: what it inherited but was not given closed first, when asked.
  auto run = [&target, close_inherited] {
    if (close_inherited) CloseInherited(target.fds());
    return target.Run();
  };
  process_internal::FlushStdio();
  pid_t pid = -1;
  int fork_errno = 0;
  if (!spec.kill_on_parent_death) {
    pid = fork();
    fork_errno = errno;
    if (pid == 0) {
      // ChildMain catches whatever the target throws and _exits: the child never comes back here,
      // where it would unwind into (or return to) the parent's code that called Start.
      process_internal::ChildMain(id, run);
    }
  } else {
    // Forked by the launcher thread, which lives as long as this process: PR_SET_PDEATHSIG fires
    // when the thread that forked exits, and the calling thread may exit before the process does.
    // The child runs on the launcher's stack, with the calling thread's signal mask.
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    absl::Status on_launcher = process_internal::RunOnLauncherThread([&] {
      pid = fork();
      fork_errno = errno;
      if (pid == 0) {
        pthread_sigmask(SIG_SETMASK, &mask, nullptr);
        process_internal::ChildMain(id, run);
      }
    });
    if (!on_launcher.ok()) return on_launcher;
  }
  if (pid < 0) return ErrnoStatus(fork_errno, "fork");
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
