// Copyright 2026 The mp Authors.

#include "shared_memory/shared_memory.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/errno_status.h"
#include "base/random.h"

namespace mp {
namespace {

constexpr absl::string_view kEntryPrefix = "e-";
constexpr absl::string_view kTempPrefix = "t-";
// A fallback registry directory is named "<canonical>-<16 hex digits>".
constexpr size_t kFallbackSuffixDigits = 16;

// The name without its optional leading "/", or kInvalidArgument saying what is wrong with it.
absl::StatusOr<std::string> ValidateName(absl::string_view name) {
  absl::string_view bare = name;
  if (!bare.empty() && bare.front() == '/') bare.remove_prefix(1);
  if (bare.empty() || bare.size() > kSharedMemoryMaxName) {
    return absl::InvalidArgumentError(absl::StrCat("SharedMemory: name \"", name,
                                                   "\" must have 1 to ", kSharedMemoryMaxName,
                                                   " bytes after the optional leading '/'"));
  }
  if (bare == "." || bare == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("SharedMemory: name \"", name, "\" is reserved"));
  }
  for (char c : bare) {
    if (c == '/' || c == '\0') {
      return absl::InvalidArgumentError(absl::StrCat("SharedMemory: name \"", name, "\" contains '",
                                                     c == '/' ? "/" : "\\0",
                                                     "' (only a leading '/' is allowed)"));
    }
  }
  return std::string(bare);
}

// /proc/<pid>/stat: the state letter and the start time (field 22), or nullopt-like failure.
struct ProcStat {
  char state = '?';
  uint64_t start_time = 0;
};
absl::StatusOr<ProcStat> ReadProcStat(int pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/stat");
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat("open ", path));
  }
  char buf[1024];
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* close_paren = std::strrchr(buf, ')');
  if (close_paren == nullptr) return absl::InternalError(absl::StrCat(path, ": malformed"));
  // After ") ": field 3 (state) ... field 22 (starttime).
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(close_paren + 2), ' ', absl::SkipEmpty());
  ProcStat st;
  if (fields.size() < 20 || fields[0].empty() || !absl::SimpleAtoi(fields[19], &st.start_time)) {
    return absl::InternalError(absl::StrCat(path, ": malformed"));
  }
  st.state = fields[0][0];
  return st;
}

std::string PidNamespace() {
  char buf[64];
  const ssize_t n = readlink("/proc/self/ns/pid", buf, sizeof(buf) - 1);
  if (n <= 0) return "unknown";
  return std::string(buf, static_cast<size_t>(n));
}

// False only when `pid` with `start_time` is certainly gone (or a zombie).
bool CreatorAlive(int pid, uint64_t start_time) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  absl::StatusOr<ProcStat> st = ReadProcStat(pid);
  if (!st.ok()) {
    // Gone between kill and open, or /proc hidden (hidepid): only "gone" counts as dead.
    return kill(pid, 0) == 0 || errno != ESRCH;
  }
  if (st->state == 'Z' || st->state == 'X') return false;
  return st->start_time == start_time;
}

struct Entry {
  int pid = 0;
  uint64_t start_time = 0;
  std::string pid_ns;
  uint64_t inode = 0;
};

std::string FormatEntry(const Entry& e) {
  return absl::StrCat(e.pid, " ", e.start_time, " ", e.pid_ns, " ", e.inode, "\n");
}

bool ParseEntry(absl::string_view text, Entry* e) {
  std::vector<absl::string_view> f =
      absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  return f.size() == 4 && absl::SimpleAtoi(f[0], &e->pid) &&
         absl::SimpleAtoi(f[1], &e->start_time) && (e->pid_ns = std::string(f[2]), true) &&
         absl::SimpleAtoi(f[3], &e->inode);
}

// A file mode as chmod spells it: 0700, 0755.
std::string OctalMode(mode_t mode) { return absl::StrFormat("0%o", mode & 07777); }

// The registry directory of this user when nobody else holds its name (the header comment).
std::string CanonicalRegistry() {
  if (const char* env = std::getenv("MP_SHM_REGISTRY"); env != nullptr && env[0] != '\0') {
    std::string dir = env;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return dir;
  }
  return absl::StrCat("/dev/shm/.mp-shm-", geteuid());
}

// An open registry directory of ours: every entry is reached through `fd` (openat & co.), so a
// path swapped after the ownership check cannot redirect what is read, written or unlinked.
class RegistryDir {
 public:
  RegistryDir(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  RegistryDir(RegistryDir&& other) noexcept
      : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}
  RegistryDir& operator=(RegistryDir&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) close(fd_);
      path_ = std::move(other.path_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~RegistryDir() {
    if (fd_ >= 0) close(fd_);
  }
  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

 private:
  std::string path_;
  int fd_;
};

// What is at a registry path.
struct Probe {
  enum Kind { kOurs, kForeign, kMissing } kind;
  std::optional<RegistryDir> dir;  // for kOurs
};

// Opens `path` as a registry directory. kOurs: a directory (not a symlink) owned by us with mode
// 0700. kForeign: something another user owns -- a squatter; it is ignored, never read. kMissing:
// nothing there. kPermissionDenied for something of ours that is not such a directory: nobody else
// can have made it, and its entries could have been written by others while it was open to them.
absl::StatusOr<Probe> ProbeRegistryDir(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return Probe{Probe::kMissing};
    if (err != ENOTDIR && err != ELOOP && err != EACCES) {
      return ErrnoStatus(err, absl::StrCat("SharedMemory registry: open ", path));
    }
    if (lstat(path.c_str(), &st) != 0) {
      const int lstat_err = errno;
      if (lstat_err == ENOENT) return Probe{Probe::kMissing};
      return ErrnoStatus(lstat_err, absl::StrCat("SharedMemory registry: lstat ", path));
    }
  } else if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(err, absl::StrCat("SharedMemory registry: fstat ", path));
  }
  if (st.st_uid != geteuid()) {
    if (fd >= 0) close(fd);
    return Probe{Probe::kForeign};
  }
  if (fd < 0 || (st.st_mode & 0777) != 0700) {
    if (fd >= 0) close(fd);
    return absl::PermissionDeniedError(absl::StrCat(
        "SharedMemory registry: ", path, " must be a directory owned by uid ", geteuid(),
        " with mode 0700 (found ", S_ISDIR(st.st_mode) ? "a directory" : "a non-directory",
        " with mode ", OctalMode(st.st_mode), ", uid ", st.st_uid, ")"));
  }
  return Probe{Probe::kOurs, RegistryDir(path, fd)};
}

// mkdir(path, 0700), then the mode forced to 0700 (a umask may have cleared owner bits). OK if
// something already exists there (the caller probes it).
absl::Status MakeRegistryDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0) {
    const int err = errno;
    if (err == EEXIST) return absl::OkStatus();
    return ErrnoStatus(err, absl::StrCat("SharedMemory registry: mkdir ", path));
  }
  chmod(path.c_str(), 0700);  // ours, just made, in a directory whose sticky bit keeps it ours
  return absl::OkStatus();
}

// Every registry directory of this user: the canonical one, and the fallbacks
// "<canonical>-<16 hex digits>" (made while another user held the canonical name) -- whichever
// exist and are ours. The first is where new entries go. With `create`, makes the canonical one,
// or if another user holds that name, a new fallback, when none is usable. Without `create` the
// result may be empty.
absl::StatusOr<std::vector<RegistryDir>> OpenRegistries(bool create) {
  const std::string canonical = CanonicalRegistry();
  absl::StatusOr<Probe> first = ProbeRegistryDir(canonical);
  if (!first.ok()) return first.status();
  if (first->kind == Probe::kMissing && create) {
    if (absl::Status s = MakeRegistryDir(canonical); !s.ok()) return s;
    first = ProbeRegistryDir(canonical);
    if (!first.ok()) return first.status();
  }
  std::vector<RegistryDir> dirs;
  if (first->kind == Probe::kOurs) dirs.push_back(*std::move(first->dir));

  // Fallbacks live beside the canonical directory. They are looked for even when the canonical one
  // is usable: a squatter may have left after entries were recorded in a fallback.
  const size_t slash = canonical.rfind('/');
  const std::string parent = slash == 0 ? "/" : canonical.substr(0, slash);
  const std::string prefix = absl::StrCat(canonical.substr(slash + 1), "-");
  std::vector<std::string> fallbacks;
  if (DIR* d = opendir(parent.c_str()); d != nullptr) {
    while (const dirent* ent = readdir(d)) {
      absl::string_view file(ent->d_name);
      if (file.size() != prefix.size() + kFallbackSuffixDigits || !absl::StartsWith(file, prefix)) {
        continue;
      }
      const absl::string_view hex = file.substr(prefix.size());
      if (std::all_of(hex.begin(), hex.end(), absl::ascii_isxdigit)) {
        fallbacks.push_back(absl::StrCat(parent == "/" ? "" : parent, "/", file));
      }
    }
    closedir(d);
  }
  std::sort(fallbacks.begin(), fallbacks.end());
  for (const std::string& path : fallbacks) {
    absl::StatusOr<Probe> probe = ProbeRegistryDir(path);
    if (!probe.ok()) return probe.status();
    if (probe->kind == Probe::kOurs) dirs.push_back(*std::move(probe->dir));
  }
  if (!dirs.empty() || !create) return dirs;

  // The canonical name is held by another user and there is no fallback yet: make one, under a
  // name nobody can predict (so nobody can squat it first).
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<uint64_t> random = RandomU64();
    if (!random.ok()) return random.status();
    const std::string path = absl::StrCat(canonical, "-", absl::Hex(*random, absl::kZeroPad16));
    if (mkdir(path.c_str(), 0700) != 0) {
      const int err = errno;
      if (err == EEXIST && attempt < 8) continue;
      return ErrnoStatus(err, absl::StrCat("SharedMemory registry: mkdir ", path, " (", canonical,
                                           " belongs to another user)"));
    }
    chmod(path.c_str(), 0700);
    absl::StatusOr<Probe> probe = ProbeRegistryDir(path);
    if (!probe.ok()) return probe.status();
    if (probe->kind != Probe::kOurs) {
      return absl::PermissionDeniedError(absl::StrCat(
          "SharedMemory registry: ", path, ", just made, does not belong to uid ", geteuid()));
    }
    dirs.push_back(*std::move(probe->dir));
    return dirs;
  }
}

absl::StatusOr<std::string> ReadAll(int fd) {
  std::string out;
  char buf[256];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      return ErrnoStatus(err, "read registry entry");
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > 4096) return absl::InvalidArgumentError("registry entry too long");
  }
}

std::string EntryName(absl::string_view name) { return absl::StrCat(kEntryPrefix, name); }

absl::Status WriteEntry(const RegistryDir& dir, absl::string_view name, uint64_t inode) {
  absl::StatusOr<ProcStat> self = ReadProcStat(getpid());
  if (!self.ok()) return self.status();
  // The temporary name must not collide with another creator's, nor with the leftover of a creator
  // killed between creating and renaming it: pids repeat across PID namespaces (every sandboxed
  // test starts from the same pids), so the name carries 64 random bits as well.
  static std::atomic<uint64_t> counter{0};
  const std::string text = FormatEntry({getpid(), self->start_time, PidNamespace(), inode});
  std::string temp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    absl::StatusOr<uint64_t> random = RandomU64();
    if (!random.ok()) return random.status();
    temp = absl::StrCat(kTempPrefix, getpid(), "-", counter++, "-",
                        absl::Hex(*random, absl::kZeroPad16));
    fd = openat(dir.fd(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && (errno != EEXIST || attempt >= 8)) {
      const int err = errno;
      return ErrnoStatus(err,
                         absl::StrCat("SharedMemory registry: create ", dir.path(), "/", temp));
    }
  }
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int err = errno;
  close(fd);
  if (!written) {
    unlinkat(dir.fd(), temp.c_str(), 0);
    return ErrnoStatus(err, absl::StrCat("SharedMemory registry: write ", dir.path(), "/", temp));
  }
  if (renameat(dir.fd(), temp.c_str(), dir.fd(), EntryName(name).c_str()) != 0) {
    const int rename_err = errno;
    unlinkat(dir.fd(), temp.c_str(), 0);
    return ErrnoStatus(rename_err,
                       absl::StrCat("SharedMemory registry: rename ", dir.path(), "/", temp));
  }
  return absl::OkStatus();
}

// Opens the entry `file` of `dir` and locks it (flock, exclusive). -1 if there is none. The lock is
// released when the descriptor is closed.
int OpenLockedEntry(const RegistryDir& dir, const std::string& file) {
  const int fd = openat(dir.fd(), file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -1;
  while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  return fd;
}

// True if `fd` is still the file named `file` in `dir` (not removed or replaced while we waited
// for its lock).
bool StillNamed(const RegistryDir& dir, const std::string& file, int fd) {
  struct stat by_fd, by_name;
  return fstat(fd, &by_fd) == 0 && by_fd.st_nlink > 0 &&
         fstatat(dir.fd(), file.c_str(), &by_name, AT_SYMLINK_NOFOLLOW) == 0 &&
         by_fd.st_ino == by_name.st_ino && by_fd.st_dev == by_name.st_dev;
}

// What ReclaimEntry did.
enum class Reclaimed { kKept, kEntryRemoved, kSegmentUnlinked };

// Removes the entry of `name` that records `inode` (Unlink/Untrack), in whichever registry
// directory holds it. kNotFound if there is none.
absl::Status RemoveEntryFor(absl::string_view name, uint64_t inode) {
  absl::StatusOr<std::vector<RegistryDir>> dirs = OpenRegistries(/*create=*/false);
  if (!dirs.ok()) return dirs.status();
  const std::string file = EntryName(name);
  for (const RegistryDir& dir : *dirs) {
    const int fd = OpenLockedEntry(dir, file);
    if (fd < 0) continue;
    absl::StatusOr<std::string> text = ReadAll(fd);
    Entry e;
    const bool ours =
        text.ok() && ParseEntry(*text, &e) && e.inode == inode && StillNamed(dir, file, fd);
    if (ours) unlinkat(dir.fd(), file.c_str(), 0);
    close(fd);
    if (ours) return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("SharedMemory: no registry entry for \"", name, "\""));
}

// The rule of the header comment, for one entry.
Reclaimed ReclaimEntry(const RegistryDir& dir, absl::string_view name, const std::string& my_ns) {
  const std::string file = EntryName(name);
  const int fd = OpenLockedEntry(dir, file);
  if (fd < 0) return Reclaimed::kKept;
  Reclaimed result = Reclaimed::kKept;
  if (StillNamed(dir, file, fd)) {
    absl::StatusOr<std::string> text = ReadAll(fd);
    Entry e;
    if (text.ok() && ParseEntry(*text, &e) && e.pid_ns == my_ns &&
        !CreatorAlive(e.pid, e.start_time)) {
      const std::string shm_name = absl::StrCat("/", name);
      const int shm = shm_open(shm_name.c_str(), O_RDONLY | O_CLOEXEC, 0);
      struct stat seg;
      result = Reclaimed::kEntryRemoved;
      if (shm >= 0) {
        if (fstat(shm, &seg) == 0 && seg.st_ino == e.inode && shm_unlink(shm_name.c_str()) == 0) {
          result = Reclaimed::kSegmentUnlinked;
        }
        close(shm);
      }
      unlinkat(dir.fd(), file.c_str(), 0);
    }
  }
  close(fd);
  return result;
}

// ReclaimOrphans over `dirs`.
absl::StatusOr<std::vector<std::string>> ReclaimIn(const std::vector<RegistryDir>& dirs) {
  const std::string my_ns = PidNamespace();
  std::vector<std::string> unlinked;
  for (const RegistryDir& dir : dirs) {
    const int listing = fcntl(dir.fd(), F_DUPFD_CLOEXEC, 0);
    DIR* d = listing < 0 ? nullptr : fdopendir(listing);
    if (d == nullptr) {
      const int err = errno;
      if (listing >= 0) close(listing);
      return ErrnoStatus(err, absl::StrCat("SharedMemory registry: opendir ", dir.path()));
    }
    std::vector<std::string> names;
    std::vector<std::string> stale_temps;
    const time_t now = time(nullptr);
    while (const dirent* ent = readdir(d)) {
      absl::string_view file(ent->d_name);
      if (absl::StartsWith(file, kEntryPrefix)) {
        names.emplace_back(file.substr(kEntryPrefix.size()));
      } else if (absl::StartsWith(file, kTempPrefix)) {
        // A creator holds its temporary entry for microseconds; one a minute old was left by a
        // creator killed before renaming it.
        struct stat st;
        if (fstatat(dir.fd(), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            now - st.st_mtime > 60) {
          stale_temps.emplace_back(file);
        }
      }
    }
    closedir(d);  // closes `listing`
    for (const std::string& temp : stale_temps) unlinkat(dir.fd(), temp.c_str(), 0);
    for (const std::string& name : names) {
      if (!ValidateName(name).ok()) continue;
      if (ReclaimEntry(dir, name, my_ns) == Reclaimed::kSegmentUnlinked) unlinked.push_back(name);
    }
  }
  return unlinked;
}

}  // namespace

struct SharedMemory::Mapping {
  Mapping(void* b, size_t s, uint64_t ino) : base(b), size(s), inode(ino) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (size > 0) munmap(base, size);
  }
  void* base;
  size_t size;
  uint64_t inode;
};

std::string SharedMemory::RegistryDirectory() {
  absl::StatusOr<std::vector<RegistryDir>> dirs = OpenRegistries(/*create=*/false);
  if (dirs.ok() && !dirs->empty()) return dirs->front().path();
  return CanonicalRegistry();
}

absl::StatusOr<std::vector<std::string>> SharedMemory::RegistryDirectories() {
  absl::StatusOr<std::vector<RegistryDir>> dirs = OpenRegistries(/*create=*/false);
  if (!dirs.ok()) return dirs.status();
  std::vector<std::string> paths;
  for (const RegistryDir& dir : *dirs) paths.push_back(dir.path());
  return paths;
}

absl::StatusOr<std::vector<std::string>> SharedMemory::ReclaimOrphans() {
  absl::StatusOr<std::vector<RegistryDir>> dirs = OpenRegistries(/*create=*/true);
  if (!dirs.ok()) return dirs.status();
  return ReclaimIn(*dirs);
}

absl::StatusOr<SharedMemory> SharedMemory::Create(absl::string_view name, int64_t size,
                                                  SharedMemoryOptions options) {
  if (size <= 0 || static_cast<uint64_t>(size) > kSharedMemoryMaxSize) {
    return absl::InvalidArgumentError(absl::StrCat("SharedMemory::Create: size must be in [1, ",
                                                   kSharedMemoryMaxSize, "], got ", size));
  }
  const bool random_name = name.empty() || name == "/";
  std::string bare;
  if (!random_name) {
    absl::StatusOr<std::string> valid = ValidateName(name);
    if (!valid.ok()) return valid.status();
    bare = *std::move(valid);
  }
  // Reclaim first, so that a name left behind by a dead creator can be created again. An untracked
  // segment does not need the registry, so a registry that cannot be used only fails tracked ones.
  absl::StatusOr<std::vector<RegistryDir>> registry = OpenRegistries(/*create=*/true);
  if (registry.ok()) {
    absl::StatusOr<std::vector<std::string>> reclaimed = ReclaimIn(*registry);
    if (!reclaimed.ok() && options.track) return reclaimed.status();
  } else if (options.track) {
    return registry.status();
  }
  int fd = -1;
  for (int attempt = 0;; ++attempt) {
    if (random_name) {
      absl::StatusOr<uint64_t> random = RandomU64();
      if (!random.ok()) return random.status();
      bare = absl::StrCat("psm_", absl::Hex(*random, absl::kZeroPad16));
    }
    const std::string path = absl::StrCat("/", bare);
    fd = shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) break;
    const int err = errno;
    if (err == EEXIST && random_name && attempt < 100) continue;
    if (err == EEXIST) {
      return absl::AlreadyExistsError(
          absl::StrCat("SharedMemory::Create: a segment named \"", bare, "\" already exists"));
    }
    return ErrnoStatus(err, absl::StrCat("SharedMemory::Create: shm_open(\"", path, "\")"));
  }
  const std::string path = absl::StrCat("/", bare);
  auto fail = [&](absl::Status s) {
    close(fd);
    shm_unlink(path.c_str());
    return s;
  };
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    return fail(ErrnoStatus(
        err, absl::StrCat("SharedMemory::Create: ftruncate(\"", bare, "\", ", size, ")")));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    return fail(ErrnoStatus(err, "SharedMemory::Create: fstat"));
  }
  void* base = mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    const int err = errno;
    return fail(ErrnoStatus(err, absl::StrCat("SharedMemory::Create: mmap(", size, ")")));
  }
  auto mapping = std::make_shared<Mapping>(base, static_cast<size_t>(size), st.st_ino);
  if (options.track) {
    if (absl::Status s = WriteEntry(registry->front(), bare, st.st_ino); !s.ok()) {
      return fail(std::move(s));
    }
  }
  close(fd);
  return SharedMemory(std::move(mapping), std::move(bare), /*created=*/true);
}

absl::StatusOr<SharedMemory> SharedMemory::Attach(absl::string_view name) {
  absl::StatusOr<std::string> bare = ValidateName(name);
  if (!bare.ok()) return bare.status();
  const std::string path = absl::StrCat("/", *bare);
  const int fd = shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("SharedMemory::Attach: no segment named \"", *bare, "\""));
    }
    return ErrnoStatus(err, absl::StrCat("SharedMemory::Attach: shm_open(\"", path, "\")"));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(err, "SharedMemory::Attach: fstat");
  }
  if (st.st_size <= 0) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("SharedMemory::Attach: segment \"", *bare,
                                                   "\" has size ", st.st_size,
                                                   " (created but never sized?)"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);
  if (base == MAP_FAILED) {
    return ErrnoStatus(err,
                       absl::StrCat("SharedMemory::Attach: mmap(\"", *bare, "\", ", size, ")"));
  }
  return SharedMemory(std::make_shared<Mapping>(base, size, st.st_ino), *std::move(bare),
                      /*created=*/false);
}

absl::StatusOr<SharedMemory> SharedMemory::Open(std::optional<std::string> name, bool create,
                                                int64_t size, SharedMemoryOptions options) {
  if (create) return Create(name.value_or(""), size, options);
  if (!name.has_value()) {
    return absl::InvalidArgumentError("SharedMemory::Open: 'name' can only be None if create=True");
  }
  return Attach(*name);
}

absl::Span<uint8_t> SharedMemory::buf() const {
  if (mapping_ == nullptr) return {};
  return absl::Span<uint8_t>(static_cast<uint8_t*>(mapping_->base), mapping_->size);
}

size_t SharedMemory::size() const { return mapping_ == nullptr ? 0 : mapping_->size; }

void SharedMemory::Close() { mapping_.reset(); }

absl::Status SharedMemory::Unlink() {
  if (name_.empty()) return absl::FailedPreconditionError("SharedMemory::Unlink: no segment");
  if (unlinked_) {
    return absl::FailedPreconditionError(
        absl::StrCat("SharedMemory::Unlink: \"", name_, "\" was already unlinked by this handle"));
  }
  const std::string path = absl::StrCat("/", name_);
  if (shm_unlink(path.c_str()) != 0) {
    const int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(absl::StrCat("SharedMemory::Unlink: no segment named \"", name_,
                                              "\" (already unlinked)"));
    }
    return ErrnoStatus(err, absl::StrCat("SharedMemory::Unlink: shm_unlink(\"", path, "\")"));
  }
  unlinked_ = true;
  if (mapping_ != nullptr) RemoveEntryFor(name_, mapping_->inode).IgnoreError();
  return absl::OkStatus();
}

absl::Status SharedMemory::Untrack() {
  if (mapping_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("SharedMemory::Untrack: \"", name_, "\" is closed"));
  }
  return RemoveEntryFor(name_, mapping_->inode);
}

absl::Status Codec<SharedMemory>::Decode(ByteReader& r, SharedMemory& out) {
  std::string name;
  if (absl::Status s = Codec<std::string>::Decode(r, name); !s.ok()) return s;
  absl::StatusOr<SharedMemory> shm = SharedMemory::Attach(name);
  if (!shm.ok()) return shm.status();
  out = *std::move(shm);
  return absl::OkStatus();
}

}  // namespace mp
