// Copyright 2026 The mp Authors.

#include "shared_memory/shared_memory.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mp {
namespace {

constexpr absl::string_view kEntryPrefix = "e-";
constexpr absl::string_view kTempPrefix = "t-";

absl::Status ErrnoStatus(absl::string_view what, int err) {
  std::string message = absl::StrCat(what, ": ", std::strerror(err), " (errno ", err, ")");
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case EINVAL:
    case ENAMETOOLONG:
      return absl::InvalidArgumentError(message);
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case ENOSPC:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

// The name without its optional leading "/", or kInvalidArgument saying what is wrong with it.
absl::StatusOr<std::string> ValidateName(absl::string_view name) {
  absl::string_view bare = name;
  if (!bare.empty() && bare.front() == '/') bare.remove_prefix(1);
  if (bare.empty() || bare.size() > kSharedMemoryMaxName) {
    return absl::InvalidArgumentError(
        absl::StrCat("SharedMemory: name \"", name, "\" must have 1 to ", kSharedMemoryMaxName,
                     " bytes after the optional leading '/'"));
  }
  if (bare == "." || bare == "..") {
    return absl::InvalidArgumentError(absl::StrCat("SharedMemory: name \"", name, "\" is reserved"));
  }
  for (char c : bare) {
    if (c == '/' || c == '\0') {
      return absl::InvalidArgumentError(absl::StrCat(
          "SharedMemory: name \"", name, "\" contains '", c == '/' ? "/" : "\\0",
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
  if (f == nullptr) return ErrnoStatus(absl::StrCat("open ", path), errno);
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
  std::vector<absl::string_view> f = absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  return f.size() == 4 && absl::SimpleAtoi(f[0], &e->pid) && absl::SimpleAtoi(f[1], &e->start_time) &&
         (e->pid_ns = std::string(f[2]), true) && absl::SimpleAtoi(f[3], &e->inode);
}

// Creates (first use) and checks the registry directory: a directory owned by us, mode 0700.
absl::StatusOr<std::string> EnsureRegistry() {
  const std::string dir = SharedMemory::RegistryDirectory();
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("SharedMemory registry: mkdir ", dir), errno);
  }
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) {
    return ErrnoStatus(absl::StrCat("SharedMemory registry: lstat ", dir), errno);
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "SharedMemory registry: ", dir, " must be a directory owned by uid ", geteuid(),
        " with mode 0700 (found mode 0", absl::Hex(st.st_mode & 07777), ", uid ", st.st_uid, ")"));
  }
  return dir;
}

std::string EntryPath(const std::string& dir, absl::string_view name) {
  return absl::StrCat(dir, "/", kEntryPrefix, name);
}

absl::StatusOr<std::string> ReadAll(int fd) {
  std::string out;
  char buf[256];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read registry entry", errno);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > 4096) return absl::InvalidArgumentError("registry entry too long");
  }
}

absl::Status WriteEntry(absl::string_view name, uint64_t inode) {
  absl::StatusOr<std::string> dir = EnsureRegistry();
  if (!dir.ok()) return dir.status();
  absl::StatusOr<ProcStat> self = ReadProcStat(getpid());
  if (!self.ok()) return self.status();
  // The temporary name must not collide with another creator's, nor with the leftover of a creator
  // killed between creating and renaming it: pids repeat across PID namespaces (every sandboxed
  // test starts from the same pids), so the name carries 64 random bits as well.
  static std::atomic<uint64_t> counter{0};
  absl::BitGen gen;
  const std::string text = FormatEntry({getpid(), self->start_time, PidNamespace(), inode});
  std::string temp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    temp = absl::StrCat(*dir, "/", kTempPrefix, getpid(), "-", counter++, "-",
                        absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16));
    fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && (errno != EEXIST || attempt >= 8)) {
      return ErrnoStatus(absl::StrCat("SharedMemory registry: create ", temp), errno);
    }
  }
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int err = errno;
  close(fd);
  if (!written) {
    unlink(temp.c_str());
    return ErrnoStatus(absl::StrCat("SharedMemory registry: write ", temp), err);
  }
  if (rename(temp.c_str(), EntryPath(*dir, name).c_str()) != 0) {
    const int rename_err = errno;
    unlink(temp.c_str());
    return ErrnoStatus(absl::StrCat("SharedMemory registry: rename ", temp), rename_err);
  }
  return absl::OkStatus();
}

// What ReclaimEntry did.
enum class Reclaimed { kKept, kEntryRemoved, kSegmentUnlinked };

// Removes the entry of `name` if it records `inode` (Unlink/Untrack). kNotFound if there is none.
absl::Status RemoveEntryFor(absl::string_view name, uint64_t inode) {
  const std::string dir = SharedMemory::RegistryDirectory();
  const std::string path = EntryPath(dir, name);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ErrnoStatus(absl::StrCat("SharedMemory registry: open ", path), errno);
  flock(fd, LOCK_EX);
  absl::StatusOr<std::string> text = ReadAll(fd);
  Entry e;
  absl::Status result = absl::OkStatus();
  struct stat by_fd, by_path;
  if (text.ok() && ParseEntry(*text, &e) && e.inode == inode && fstat(fd, &by_fd) == 0 &&
      stat(path.c_str(), &by_path) == 0 && by_fd.st_ino == by_path.st_ino) {
    unlink(path.c_str());
  } else {
    result = absl::NotFoundError(absl::StrCat("SharedMemory: no registry entry for \"", name, "\""));
  }
  close(fd);
  return result;
}

// The rule of the header comment, for one entry.
Reclaimed ReclaimEntry(const std::string& dir, absl::string_view name, const std::string& my_ns) {
  const std::string path = EntryPath(dir, name);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Reclaimed::kKept;
  flock(fd, LOCK_EX);
  Reclaimed result = Reclaimed::kKept;
  struct stat by_fd, by_path;
  // Still the entry at `path` (not removed or replaced while we waited for the lock)?
  if (fstat(fd, &by_fd) == 0 && by_fd.st_nlink > 0 && stat(path.c_str(), &by_path) == 0 &&
      by_fd.st_ino == by_path.st_ino) {
    absl::StatusOr<std::string> text = ReadAll(fd);
    Entry e;
    if (text.ok() && ParseEntry(*text, &e) && e.pid_ns == my_ns && !CreatorAlive(e.pid, e.start_time)) {
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
      unlink(path.c_str());
    }
  }
  close(fd);
  return result;
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
  if (const char* env = std::getenv("MP_SHM_REGISTRY"); env != nullptr && env[0] != '\0') {
    return env;
  }
  return absl::StrCat("/dev/shm/.mp-shm-", geteuid());
}

absl::StatusOr<std::vector<std::string>> SharedMemory::ReclaimOrphans() {
  absl::StatusOr<std::string> dir = EnsureRegistry();
  if (!dir.ok()) return dir.status();
  DIR* d = opendir(dir->c_str());
  if (d == nullptr) return ErrnoStatus(absl::StrCat("SharedMemory registry: opendir ", *dir), errno);
  std::vector<std::string> names;
  std::vector<std::string> stale_temps;
  const time_t now = time(nullptr);
  while (dirent* ent = readdir(d)) {
    absl::string_view file(ent->d_name);
    if (file.substr(0, kEntryPrefix.size()) == kEntryPrefix) {
      names.emplace_back(file.substr(kEntryPrefix.size()));
    } else if (file.substr(0, kTempPrefix.size()) == kTempPrefix) {
      // A creator holds its temporary entry for microseconds; one a minute old was left by a
      // creator killed before renaming it.
      struct stat st;
      const std::string path = absl::StrCat(*dir, "/", file);
      if (lstat(path.c_str(), &st) == 0 && now - st.st_mtime > 60) stale_temps.push_back(path);
    }
  }
  closedir(d);
  for (const std::string& path : stale_temps) unlink(path.c_str());
  const std::string my_ns = PidNamespace();
  std::vector<std::string> unlinked;
  for (const std::string& name : names) {
    if (!ValidateName(name).ok()) continue;
    if (ReclaimEntry(*dir, name, my_ns) == Reclaimed::kSegmentUnlinked) unlinked.push_back(name);
  }
  return unlinked;
}

absl::StatusOr<SharedMemory> SharedMemory::Create(absl::string_view name, int64_t size,
                                                  SharedMemoryOptions options) {
  if (size <= 0 || static_cast<uint64_t>(size) > kSharedMemoryMaxSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SharedMemory::Create: size must be in [1, ", kSharedMemoryMaxSize, "], got ", size));
  }
  const bool random_name = name.empty() || name == "/";
  std::string bare;
  if (!random_name) {
    absl::StatusOr<std::string> valid = ValidateName(name);
    if (!valid.ok()) return valid.status();
    bare = *std::move(valid);
  }
  // Reclaim first, so that a name left behind by a dead creator can be created again.
  if (absl::StatusOr<std::vector<std::string>> r = ReclaimOrphans(); !r.ok() && options.track) {
    return r.status();
  }
  int fd = -1;
  absl::BitGen gen;
  for (int attempt = 0;; ++attempt) {
    if (random_name) {
      bare = absl::StrCat("psm_", absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16));
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
    return ErrnoStatus(absl::StrCat("SharedMemory::Create: shm_open(\"", path, "\")"), err);
  }
  const std::string path = absl::StrCat("/", bare);
  auto fail = [&](absl::Status s) {
    close(fd);
    shm_unlink(path.c_str());
    return s;
  };
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return fail(ErrnoStatus(absl::StrCat("SharedMemory::Create: ftruncate(\"", bare, "\", ", size, ")"),
                            errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(ErrnoStatus("SharedMemory::Create: fstat", errno));
  void* base = mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    return fail(ErrnoStatus(absl::StrCat("SharedMemory::Create: mmap(", size, ")"), errno));
  }
  auto mapping = std::make_shared<Mapping>(base, static_cast<size_t>(size), st.st_ino);
  if (options.track) {
    if (absl::Status s = WriteEntry(bare, st.st_ino); !s.ok()) return fail(std::move(s));
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
    return ErrnoStatus(absl::StrCat("SharedMemory::Attach: shm_open(\"", path, "\")"), err);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus("SharedMemory::Attach: fstat", err);
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
    return ErrnoStatus(absl::StrCat("SharedMemory::Attach: mmap(\"", *bare, "\", ", size, ")"), err);
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
      return absl::NotFoundError(
          absl::StrCat("SharedMemory::Unlink: no segment named \"", name_, "\" (already unlinked)"));
    }
    return ErrnoStatus(absl::StrCat("SharedMemory::Unlink: shm_unlink(\"", path, "\")"), err);
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
