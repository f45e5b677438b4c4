// Copyright 2026 The mp Authors.

#include "tools/faults/cleaner.h"

#include <dirent.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/errno_status.h"
#include "shared_memory/shared_memory.h"

namespace mp::faults {
namespace {

std::vector<std::string> ListDir(const std::string& dir, int* err) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    *err = errno;
    return names;
  }
  *err = 0;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  return names;
}

// Listening Unix sockets in this network namespace (/proc/net/unix, flag __SO_ACCEPTCON): path ->
// inode.
std::map<std::string, std::string> ListeningUnixPaths(const std::string& proc) {
  std::map<std::string, std::string> paths;
  std::ifstream in(proc + "/net/unix");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    // Num RefCount Protocol Flags Type St Inode [Path]
    if (f.size() < 8) continue;
    uint32_t flags = 0;
    if (!absl::SimpleHexAtoi(f[3], &flags)) continue;
    if (flags & 0x10000) paths[f[7]] = f[6];
  }
  return paths;
}

// Whether something accepts connections on the socket at `path` (any namespace). ECONNREFUSED and
// ENOENT mean nobody; anything else (success, EAGAIN: backlog full) counts as alive.
bool SomebodyListens(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return true;  // cannot check: assume alive
  const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return true;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int r = connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  close(s);
  if (r == 0) return true;
  return !(err == ECONNREFUSED || err == ENOENT);
}

void FindForkServerDirectories(const CleanerOptions& options, std::vector<Leftover>* out,
                               absl::Status* status) {
  int err = 0;
  const std::vector<std::string> names = ListDir(options.tmp_dir, &err);
  if (err != 0) {
    *status = ErrnoStatus(err, absl::StrCat("opendir(", options.tmp_dir, ")"));
    return;
  }
  const std::map<std::string, std::string> listening = ListeningUnixPaths(options.proc);
  const absl::Time now = absl::Now();
  for (const std::string& name : names) {
    if (!absl::StartsWith(name, kForkServerDirPrefix)) continue;
    Leftover l{Leftover::Kind::kForkServerDirectory, options.tmp_dir + "/" + name};
    struct stat st {};
    if (lstat(l.path.c_str(), &st) != 0) continue;  // vanished meanwhile
    if (!S_ISDIR(st.st_mode)) {
      l.reason = "not a directory (left alone)";
    } else if (st.st_uid != geteuid()) {
      l.reason = absl::StrCat("owned by uid ", st.st_uid, ", not us (left alone)");
    } else if ((st.st_mode & 0777) != 0700) {
      l.reason = absl::StrCat("mode 0", absl::Hex(st.st_mode & 0777),
                              " is not the forkserver's 0700 (left alone)");
    } else {
      const std::string socket_path = l.path + "/s";
      const absl::Duration age = now - absl::FromTimeT(st.st_mtime);
      if (listening.count(socket_path)) {
        l.reason = "live: a server listens on its socket";
      } else if (age < options.min_age) {
        l.reason =
            absl::StrCat("young (", absl::FormatDuration(age), "): a server may be starting");
      } else if (SomebodyListens(socket_path)) {
        l.reason = "live: its socket accepts connections (another network namespace)";
      } else {
        l.stale = true;
        l.reason = "stale: nobody listens on its socket (the server died)";
      }
    }
    out->push_back(std::move(l));
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ExeOf(const std::string& proc, pid_t pid) {
  char target[4096];
  const std::string link = absl::StrCat(proc, "/", pid, "/exe");
  const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : "";
}

// Uid and PPid from /proc/<pid>/status.
bool StatusOf(const std::string& proc, pid_t pid, uid_t* uid, pid_t* ppid) {
  std::istringstream in(ReadFile(absl::StrCat(proc, "/", pid, "/status")));
  std::string line;
  bool got_uid = false, got_ppid = false;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "Uid:")) {
      std::vector<std::string> f =
          absl::StrSplit(line.substr(4), absl::ByAnyChar(" \t"), absl::SkipEmpty());
      got_uid = !f.empty() && absl::SimpleAtoi(f[0], uid);
    } else if (absl::StartsWith(line, "PPid:")) {
      got_ppid = absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(5)), ppid);
    }
  }
  return got_uid && got_ppid;
}

void FindForkServerProcesses(const CleanerOptions& options, std::vector<Leftover>* out,
                             absl::Status* status) {
  int err = 0;
  const std::vector<std::string> names = ListDir(options.proc, &err);
  if (err != 0) {
    *status = ErrnoStatus(err, absl::StrCat("opendir(", options.proc, ")"));
    return;
  }
  std::set<std::string> server_sockets;  // "socket:[inode]" of listening forkserver sockets
  for (const auto& [path, inode] : ListeningUnixPaths(options.proc)) {
    if (absl::StrContains(path, absl::StrCat("/", kForkServerDirPrefix))) {
      server_sockets.insert(absl::StrCat("socket:[", inode, "]"));
    }
  }
  for (const std::string& name : names) {
    pid_t pid;
    if (!absl::SimpleAtoi(name, &pid) || pid <= 0) continue;
    const std::string cmdline = ReadFile(absl::StrCat(options.proc, "/", pid, "/cmdline"));
    const std::vector<std::string> argv = absl::StrSplit(cmdline, '\0');
    bool server = false;
    for (const std::string& a : argv) server |= a == kForkServerFlag;
    if (!server) continue;
    // The server holds a listening forkserver socket; the children it forked (same argv) closed it.
    bool listens = false;
    int fd_err = 0;
    const std::string fd_dir = absl::StrCat(options.proc, "/", pid, "/fd");
    for (const std::string& fd : ListDir(fd_dir, &fd_err)) {
      char target[128];
      const std::string link = fd_dir + "/" + fd;
      const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
      if (n > 0) listens |= server_sockets.count(std::string(target, static_cast<size_t>(n))) > 0;
    }
    if (!listens) continue;
    uid_t uid = static_cast<uid_t>(-1);
    pid_t ppid = 0;
    if (!StatusOf(options.proc, pid, &uid, &ppid)) continue;  // gone meanwhile
    if (uid != geteuid()) continue;  // not ours: never listed, never touched
    Leftover l{Leftover::Kind::kForkServerProcess, absl::StrCat(options.proc, "/", pid), pid};
    const std::string exe = ExeOf(options.proc, pid);
    const std::string parent_exe = ppid > 0 ? ExeOf(options.proc, ppid) : "";
    if (!exe.empty() && parent_exe == exe) {
      l.reason = absl::StrCat("live: its owner (pid ", ppid, ") runs");
    } else if (exe.empty()) {
      l.reason = "cannot read its executable (left alone)";
    } else {
      l.stale = true;
      l.reason = absl::StrCat("orphaned: its owner died (parent is now pid ", ppid, ")");
    }
    out->push_back(std::move(l));
  }
}

void FindDevShm(const CleanerOptions& options, std::vector<Leftover>* out) {
  int err = 0;
  for (const std::string& name : ListDir(options.dev_shm, &err)) {
    const bool psm = absl::StartsWith(name, "psm_");
    if (!absl::StartsWith(name, "mp") && !psm) continue;
    Leftover l{Leftover::Kind::kDevShmEntry, options.dev_shm + "/" + name};
    struct stat st {};
    if (lstat(l.path.c_str(), &st) != 0) continue;
    if (psm) {
      l.reason =
          "a SharedMemory segment with a random name: reclaimed by --remove if tracked and its "
          "creator died, else left alone (owner unknown)";
      out->push_back(std::move(l));
      continue;
    }
    const size_t underscore = name.rfind('_');
    pid_t pid = 0;
    const bool has_pid = underscore != std::string::npos &&
                         absl::SimpleAtoi(absl::string_view(name).substr(underscore + 1), &pid) &&
                         pid > 0;
    if (st.st_uid != geteuid()) {
      l.reason = absl::StrCat("owned by uid ", st.st_uid, " (left alone)");
    } else if (!has_pid) {
      l.reason = "not named <name>_<pid>: owner unknown (left alone; the mp library names nothing)";
    } else if (kill(pid, 0) == 0 || errno == EPERM) {
      l.reason = absl::StrCat("live: pid ", pid, " runs");
    } else {
      l.stale = true;
      l.reason = absl::StrCat("stale: pid ", pid, " is gone");
    }
    out->push_back(std::move(l));
  }
}

}  // namespace

absl::string_view LeftoverKindName(Leftover::Kind kind) {
  switch (kind) {
    case Leftover::Kind::kForkServerDirectory:
      return "forkserver directory";
    case Leftover::Kind::kForkServerProcess:
      return "forkserver process";
    case Leftover::Kind::kDevShmEntry:
      return "/dev/shm entry";
    case Leftover::Kind::kSharedMemoryEntry:
      return "SharedMemory registry entry";
  }
  return "?";
}

absl::StatusOr<std::vector<Leftover>> FindLeftovers(const CleanerOptions& options) {
  std::vector<Leftover> out;
  absl::Status status;
  FindForkServerDirectories(options, &out, &status);
  if (!status.ok()) return status;
  if (options.processes) {
    FindForkServerProcesses(options, &out, &status);
    if (!status.ok()) return status;
  }
  FindDevShm(options, &out);
  if (options.shared_memory_registry) {
    // The canonical registry and any fallback directory made while another user squatted it.
    absl::StatusOr<std::vector<std::string>> registries = SharedMemory::RegistryDirectories();
    if (!registries.ok()) return registries.status();
    for (const std::string& registry : *registries) {
      int err = 0;
      for (const std::string& name : ListDir(registry, &err)) {
        Leftover l{Leftover::Kind::kSharedMemoryEntry, registry + "/" + name};
        l.reason =
            "tracks a named segment; --remove runs SharedMemory::ReclaimOrphans(), which "
            "unlinks it if its creator died";
        out.push_back(std::move(l));
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ReclaimSharedMemory() {
  return SharedMemory::ReclaimOrphans();
}

absl::Status RemoveLeftover(const Leftover& leftover) {
  if (!leftover.stale) {
    return absl::FailedPreconditionError(absl::StrCat("not removing ",
                                                      LeftoverKindName(leftover.kind), " ",
                                                      leftover.path, ": ", leftover.reason));
  }
  switch (leftover.kind) {
    case Leftover::Kind::kForkServerDirectory: {
      int err = 0;
      for (const std::string& name : ListDir(leftover.path, &err)) {
        if (name != "s") {
          return absl::FailedPreconditionError(absl::StrCat(
              leftover.path, " holds '", name, "', which no forkserver makes; not removing it"));
        }
      }
      if (err != 0) return ErrnoStatus(err, absl::StrCat("opendir(", leftover.path, ")"));
      const std::string socket_path = leftover.path + "/s";
      if (unlink(socket_path.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, absl::StrCat("unlink(", socket_path, ")"));
      }
      if (rmdir(leftover.path.c_str()) != 0) {
        return ErrnoStatus(errno, absl::StrCat("rmdir(", leftover.path, ")"));
      }
      return absl::OkStatus();
    }
    case Leftover::Kind::kDevShmEntry:
      if (unlink(leftover.path.c_str()) != 0) {
        return ErrnoStatus(errno, absl::StrCat("unlink(", leftover.path, ")"));
      }
      return absl::OkStatus();
    case Leftover::Kind::kForkServerProcess:
      if (kill(leftover.pid, SIGKILL) != 0 && errno != ESRCH) {
        return ErrnoStatus(errno, absl::StrCat("kill(", leftover.pid, ", SIGKILL)"));
      }
      return absl::OkStatus();
    case Leftover::Kind::kSharedMemoryEntry:
      return absl::FailedPreconditionError("registry entries are handled by ReclaimSharedMemory()");
  }
  return absl::InvalidArgumentError("unknown leftover kind");
}

}  // namespace mp::faults
