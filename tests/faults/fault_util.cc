// Copyright 2026 The mp Authors.

#include "tests/faults/fault_util.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace mp::faults {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

FdSnapshot FdSnapshot::Take() {
  FdSnapshot snap;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return snap;
  const int self = dirfd(d);
  while (dirent* e = readdir(d)) {
    int fd;
    if (!absl::SimpleAtoi(e->d_name, &fd) || fd == self) continue;
    char target[256] = {0};
    const std::string path = absl::StrCat("/proc/self/fd/", fd);
    const ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    snap.fds.insert(absl::StrCat(fd, " -> ", n > 0 ? std::string(target, n) : "?"));
  }
  closedir(d);
  return snap;
}

std::string FdSnapshot::DiffFrom(const FdSnapshot& before) const {
  std::vector<std::string> left, lost;
  for (const std::string& f : fds) {
    if (!before.fds.count(f)) left.push_back(f);
  }
  for (const std::string& f : before.fds) {
    if (!fds.count(f)) lost.push_back(f);
  }
  return absl::StrCat("left: [", absl::StrJoin(left, ", "), "], lost: [", absl::StrJoin(lost, ", "),
                      "]");
}

int SegmentMappings() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) n += line.find("memfd:mp-shm") != std::string::npos;
  return n;
}

int SegmentFds() {
  int n = 0;
  for (const std::string& f : FdSnapshot::Take().fds) {
    n += f.find("/memfd:mp-shm") != std::string::npos;
  }
  return n;
}

std::set<std::string> DevShmEntriesOfMp() {
  std::set<std::string> out;
  DIR* d = opendir("/dev/shm");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind("mp", 0) != 0) continue;
    const size_t underscore = name.rfind('_');
    int pid;
    if (underscore != std::string::npos &&
        absl::SimpleAtoi(absl::string_view(name).substr(underscore + 1), &pid) && pid > 0 &&
        pid != getpid() && kill(pid, 0) == 0) {
      continue;
    }
    out.insert(name);
  }
  closedir(d);
  return out;
}

bool NoChildren() {
  errno = 0;
  return waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD;
}

}  // namespace mp::faults
