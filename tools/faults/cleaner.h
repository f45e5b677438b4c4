// Copyright 2026 The mp Authors.
//
// tools/faults/cleaner.h — finds (and removes) what a crashed mp program can leave behind.
//
// What mp can leave, and why so little:
//   * Segments of sync/, channels/ and shared_memory's Value/Array: nothing. They are anonymous
//     MAP_SHARED memory or memfds (sync/shm.h); the kernel frees them with the last mapping or
//     descriptor, SIGKILL included.
//   * Named SharedMemory segments (shared_memory/shared_memory.h, /dev/shm/<name>): tracked ones
//   have
//     an entry in the registry (SharedMemory::RegistryDirectory()); SharedMemory::ReclaimOrphans()
//     unlinks those whose creator died, and mp_cleaner --remove runs it (the rule lives there, not
//     here). The cleaner lists the registry entries, and /dev/shm entries named "psm_*" (random
//     SharedMemory names) for information only: an untracked segment's owner cannot be known.
//   * /dev/shm entries named "mp*": channels_benchmark's Boost.Interprocess queue,
//     "mp_channels_benchmark_<pid>", is removed when its <pid> is dead.
//   * Forkserver directories, /tmp/mp-forkserver-XXXXXX (start_methods/forkserver.cc), holding the
//     socket "s". The server removes its directory when its owner stops it or dies (the lifeline
//     pipe); only if the server itself is SIGKILLed (or the machine loses power) does the directory
//     stay. A directory is stale when it is ours (owner uid, a real directory, not a symlink), at
//     least `min_age` old, and nobody listens on its socket: no listening socket bound to that path
//     in /proc/net/unix and connect() is refused (or there is no socket file). connect() is only
//     tried when /proc/net/unix shows nothing, so a live server of this network namespace is never
//     disturbed; one in another namespace (a sandbox) is found by connect() and kept.
//   * Forkserver processes whose owner is gone: a process of our uid with "--mp-forkserver" in its
//     argv that holds a listening socket in an mp-forkserver- directory (the children the server
//     forks share its argv but closed that socket, so they are never listed: a child that outlives
//     its server is the user's work). A server exits by itself when its lifeline pipe closes, so
//     one that outlives its owner is wedged. It is orphaned when
//     its parent is no longer an mp program of the same executable (the owner spawns the server
//     itself, so its parent is the owner until the owner dies and it is re-parented). Only
//     processes of our uid are considered.
//
//   absl::StatusOr<std::vector<mp::faults::Leftover>> found = mp::faults::FindLeftovers({});
//   for (const auto& l : *found) if (l.stale) mp::faults::RemoveLeftover(l).IgnoreError();
//
// Thread safety: stateless functions; safe from any thread.

#ifndef MP_TOOLS_FAULTS_CLEANER_H_
#define MP_TOOLS_FAULTS_CLEANER_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mp::faults {

// The prefix start_methods/forkserver.cc gives its directories (mkdtemp template without XXXXXX).
inline constexpr absl::string_view kForkServerDirPrefix = "mp-forkserver-";
// The argument that puts an mp program in forkserver mode.
inline constexpr absl::string_view kForkServerFlag = "--mp-forkserver";

struct CleanerOptions {
  // Where forkserver directories are made (tests point this at a private directory).
  std::string tmp_dir = "/tmp";
  std::string dev_shm = "/dev/shm";
  std::string proc = "/proc";
  // Directories younger than this are left alone: a server may be starting (mkdtemp before bind).
  absl::Duration min_age = absl::Seconds(60);
  // Whether to look for orphaned forkserver processes.
  bool processes = true;
  // Whether to list the SharedMemory registry's entries (SharedMemory::RegistryDirectory()).
  bool shared_memory_registry = true;
};

struct Leftover {
  enum class Kind { kForkServerDirectory, kForkServerProcess, kDevShmEntry, kSharedMemoryEntry };
  Kind kind;
  std::string path;    // the directory or /dev/shm entry; /proc/<pid> for a process
  pid_t pid = 0;       // kForkServerProcess only
  bool stale = false;  // safe to remove; false: listed for information (live, young, ...)
  std::string reason;  // why it is (not) stale
};

// "forkserver directory", "forkserver process", "/dev/shm entry", "SharedMemory registry entry".
absl::string_view LeftoverKindName(Leftover::Kind kind);

// Lists everything of mp's found under the options' paths. Errors only when a directory that must
// exist cannot be read (tmp_dir, proc); a missing /dev/shm is not an error.
absl::StatusOr<std::vector<Leftover>> FindLeftovers(const CleanerOptions& options);

// Runs SharedMemory::ReclaimOrphans() (tracked named segments of dead creators) and returns the
// names it unlinked.
absl::StatusOr<std::vector<std::string>> ReclaimSharedMemory();

// Removes one stale leftover: a directory with its socket (unlink + rmdir, nothing else inside is
// touched: kFailedPrecondition if the directory holds anything but "s"), a /dev/shm entry (unlink),
// a process (SIGKILL). kFailedPrecondition if `leftover.stale` is false.
absl::Status RemoveLeftover(const Leftover& leftover);

}  // namespace mp::faults

#endif  // MP_TOOLS_FAULTS_CLEANER_H_
