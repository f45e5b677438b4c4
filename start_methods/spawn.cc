// Copyright 2026 The mp Authors.

#include "start_methods/spawn.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "base/deadline.h"
#include "base/errno_status.h"
#include "base/io.h"

namespace mp {
namespace {

constexpr int kControlFd = 3;
constexpr int kFirstPassedFd = 4;
constexpr uint32_t kMaxRecord = 1u << 30;
// How long a spawn child waits for its launch record.
constexpr absl::Duration kRecordTimeout = absl::Seconds(60);

void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// mp::Init in a spawn child: "spawn:<control fd>:<fd count>".
[[noreturn]] void SpawnChildEntry(absl::string_view argument) {
  std::vector<std::string> parts = absl::StrSplit(argument, ':');
  int control = -1;
  int count = -1;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &control) ||
      !absl::SimpleAtoi(parts[1], &count) || control < 0 || count < 0 || count > 100000) {
    std::fprintf(stderr, "mp: malformed spawn marker '%.*s'\n", static_cast<int>(argument.size()),
                 argument.data());
    _exit(70);
  }
  const Deadline deadline = Deadline::After(kRecordTimeout);
  uint32_t size = 0;
  absl::Status s = ReadFull(control, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&size), 4),
                            deadline, "mp: the size of the spawn launch record");
  if (s.ok() && size > kMaxRecord) {
    s = absl::InvalidArgumentError(
        absl::StrCat("mp: launch record of ", size, " bytes is too big"));
  }
  // 8-byte aligned storage: FlatBuffers reads scalars in place.
  std::vector<uint64_t> storage(s.ok() ? (size + 7) / 8 : 0);
  if (s.ok()) {
    s = ReadFull(control, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(storage.data()), size),
                 deadline, "mp: the spawn launch record");
  }
  if (!s.ok()) {
    std::string line = absl::StrCat("mp: spawn child ", getpid(),
                                    " could not read its launch record: ", s.ToString(), "\n");
    std::fwrite(line.data(), 1, line.size(), stderr);
    _exit(70);
  }
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) fds.push_back(kFirstPassedFd + i);
  process_internal::RunLaunchRecord(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(storage.data()), size),
      std::move(fds), control, /*send_pidfd=*/false, /*parent_pid=*/0);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildHandle>> SpawnMethod::Launch(const LaunchSpec& spec) {
  if (absl::Status s = process_internal::CheckCanReexecute("spawn"); !s.ok()) return s;
  const std::string record = process_internal::BuildLaunchRecord(spec, "spawn");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoStatus(errno, "socketpair for a spawn launch record");
  }
  std::vector<int> fds = {sv[1]};
  const std::vector<int>& passed = spec.target->fds();
  fds.insert(fds.end(), passed.begin(), passed.end());
  std::vector<std::string> argv = {process_internal::ProgramArgv0(), "--mp-spawn"};
  std::vector<std::string> env =
      process_internal::ChildEnvironment(absl::StrCat("spawn:", kControlFd, ":", passed.size()));
  process_internal::FlushStdio();
  absl::StatusOr<pid_t> pid;
  if (!spec.kill_on_parent_death) {
    pid = process_internal::SpawnSelf(fds, argv, env);
  } else {
    // Spawned by the launcher thread, which lives as long as this process: PR_SET_PDEATHSIG (armed
    // by the child) fires when the thread that spawned it exits, and the calling thread may exit
    // before the process does.
    absl::Status on_launcher = process_internal::RunOnLauncherThread(
        [&] { pid = process_internal::SpawnSelf(fds, argv, env); });
    if (!on_launcher.ok()) pid = on_launcher;
  }
  close(sv[1]);
  if (!pid.ok()) {
    close(sv[0]);
    return pid.status();
  }
  const Deadline deadline = Deadline::After(options_.handshake_timeout);
  const std::string no_init =
      absl::StrCat("the spawned child (pid ", *pid,
                   ") exited without reading its launch record: the child program did not call "
                   "mp::Init(argc, argv) at the top of main");
  uint32_t size = static_cast<uint32_t>(record.size());
  std::string frame(reinterpret_cast<const char*>(&size), sizeof(size));
  frame += record;
  absl::Status s = WriteFull(
      sv[0],
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(frame.data()), frame.size()),
      deadline, "mp: sending the spawn launch record");
  absl::StatusOr<pid_t> acked = s.ok()
                                    ? process_internal::ReadAck(sv[0], deadline, no_init, nullptr)
                                    : absl::StatusOr<pid_t>(s);
  close(sv[0]);
  if (!acked.ok()) {
    KillAndReap(*pid);
    absl::Status e = acked.status();
    if (absl::IsDeadlineExceeded(e)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the spawned child (pid ", *pid, ") did not acknowledge its launch record within ",
          absl::FormatDuration(options_.handshake_timeout),
          " and was killed: does the program call mp::Init(argc, argv) at the top of main?"));
    }
    if (absl::IsUnavailable(e)) {  // EPIPE: the child closed its end before reading everything
      return absl::AbortedError(absl::StrCat(no_init, " (", e.message(), ")"));
    }
    return e;
  }
  absl::StatusOr<int> pidfd = process_internal::PidfdOpen(*pid);
  if (!pidfd.ok()) {
    KillAndReap(*pid);
    return pidfd.status();
  }
  return std::make_unique<process_internal::LocalChild>(*pid, *pidfd);
}

std::shared_ptr<StartMethod> SpawnStartMethod() {
  static auto* const method = new std::shared_ptr<StartMethod>(std::make_shared<SpawnMethod>());
  return *method;
}

namespace {
const bool registered = [] {
  process_internal::RegisterStartMethod("spawn", &SpawnStartMethod);
  process_internal::RegisterChildEntry("spawn", &SpawnChildEntry);
  return true;
}();
}  // namespace

}  // namespace mp
