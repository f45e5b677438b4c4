// Copyright 2026 The mp Authors.
//
// mp_cleaner — lists (and with --remove, removes) what crashed mp programs left behind: forkserver
// directories whose server died, forkserver processes whose owner died, tracked SharedMemory
// segments whose creator died (SharedMemory::ReclaimOrphans), /dev/shm entries named mp* whose
// creator is gone. See tools/faults/cleaner.h for what counts as stale and why nothing live is ever
// touched.
//
//   bazel run //tools/faults:mp_cleaner               # list
//   bazel run //tools/faults:mp_cleaner -- --remove   # remove the stale ones
//
// Flags (absl::flags; --help lists them): --remove, --tmp_dir=DIR (default /tmp),
// --min_age_seconds=N (default 60), --noprocesses. Exit code: 0; 1 if a removal failed or a flag
// is malformed; 2 on a stray argument, a negative age or unreadable directories.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tools/faults/cleaner.h"

ABSL_FLAG(bool, remove, false, "remove the stale leftovers (default: only list them)");
ABSL_FLAG(std::string, tmp_dir, "/tmp", "where forkserver and Listener directories live");
ABSL_FLAG(int64_t, min_age_seconds, 60,
          "leftovers younger than this are never stale (a program may be starting up)");
ABSL_FLAG(bool, processes, true, "also look for forkserver processes whose owner died");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "mp_cleaner [--remove] [--tmp_dir=DIR] [--min_age_seconds=N] [--noprocesses]");
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "mp_cleaner: unexpected argument '%s' (flags only; see --help)\n",
                 rest[1]);
    return 2;
  }
  if (absl::GetFlag(FLAGS_min_age_seconds) < 0) {
    std::fprintf(stderr, "mp_cleaner: --min_age_seconds must be >= 0, got %lld\n",
                 static_cast<long long>(absl::GetFlag(FLAGS_min_age_seconds)));
    return 2;
  }
  mp::faults::CleanerOptions options;
  options.tmp_dir = absl::GetFlag(FLAGS_tmp_dir);
  options.min_age = absl::Seconds(absl::GetFlag(FLAGS_min_age_seconds));
  options.processes = absl::GetFlag(FLAGS_processes);
  const bool remove = absl::GetFlag(FLAGS_remove);
  absl::StatusOr<std::vector<mp::faults::Leftover>> found = mp::faults::FindLeftovers(options);
  if (!found.ok()) {
    std::fprintf(stderr, "mp_cleaner: %s\n", found.status().ToString().c_str());
    return 2;
  }
  int stale = 0, removed = 0, failed = 0;
  for (const mp::faults::Leftover& l : *found) {
    std::string action = "";
    if (l.stale) {
      ++stale;
      if (remove) {
        absl::Status s = mp::faults::RemoveLeftover(l);
        if (s.ok()) {
          ++removed;
          action = " -> removed";
        } else {
          ++failed;
          action = " -> NOT removed: " + s.ToString();
        }
      }
    }
    std::printf("%s %s: %s%s\n", std::string(mp::faults::LeftoverKindName(l.kind)).c_str(),
                l.path.c_str(), l.reason.c_str(), action.c_str());
  }
  if (remove) {
    absl::StatusOr<std::vector<std::string>> reclaimed = mp::faults::ReclaimSharedMemory();
    if (!reclaimed.ok()) {
      ++failed;
      std::printf("SharedMemory::ReclaimOrphans: %s\n", reclaimed.status().ToString().c_str());
    } else {
      for (const std::string& name : *reclaimed) {
        std::printf("SharedMemory segment /dev/shm/%s: its creator died -> removed\n",
                    name.c_str());
        ++removed;
      }
    }
  }
  std::printf("%zu found, %d stale, %d removed%s\n", found->size(), stale, removed,
              remove ? "" : " (list only; --remove removes the stale ones)");
  return failed == 0 ? 0 : 1;
}
