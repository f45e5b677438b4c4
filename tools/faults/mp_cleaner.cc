// Copyright 2026 The mp Authors.
//
// mp_cleaner — lists (and with --remove, removes) what crashed mp programs left behind: forkserver
// directories whose server died, forkserver processes whose owner died, tracked SharedMemory segments
// whose creator died (SharedMemory::ReclaimOrphans), /dev/shm entries named mp* whose creator is
// gone. See tools/faults/cleaner.h for what counts as stale and why nothing live
// is ever touched.
//
//   bazel run //tools/faults:mp_cleaner               # list
//   bazel run //tools/faults:mp_cleaner -- --remove   # remove the stale ones
//
// Flags: --remove, --tmp_dir=DIR (default /tmp), --min_age_seconds=N (default 60),
// --no_processes. Exit code: 0, 1 if a removal failed, 2 on bad flags or unreadable directories.

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "tools/faults/cleaner.h"

int main(int argc, char** argv) {
  mp::faults::CleanerOptions options;
  bool remove = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    int64_t seconds;
    if (a == "--remove") {
      remove = true;
    } else if (a == "--no_processes") {
      options.processes = false;
    } else if (absl::StartsWith(a, "--tmp_dir=")) {
      options.tmp_dir = a.substr(std::strlen("--tmp_dir="));
    } else if (absl::StartsWith(a, "--min_age_seconds=") &&
               absl::SimpleAtoi(a.substr(std::strlen("--min_age_seconds=")), &seconds) &&
               seconds >= 0) {
      options.min_age = absl::Seconds(seconds);
    } else {
      std::fprintf(stderr,
                   "mp_cleaner: bad argument '%s'\nusage: mp_cleaner [--remove] [--tmp_dir=DIR] "
                   "[--min_age_seconds=N] [--no_processes]\n",
                   a.c_str());
      return 2;
    }
  }
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
        std::printf("SharedMemory segment /dev/shm/%s: its creator died -> removed\n", name.c_str());
        ++removed;
      }
    }
  }
  std::printf("%zu found, %d stale, %d removed%s\n", found->size(), stale, removed,
              remove ? "" : " (list only; --remove removes the stale ones)");
  return failed == 0 ? 0 : 1;
}
