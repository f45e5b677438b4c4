// Copyright 2026 The mp Authors.
//
// shared_memory/shared_memory.h — mp::SharedMemory: Python's
// multiprocessing.shared_memory.SharedMemory.
//
// A SharedMemory is a named POSIX shared memory object (shm_open, so a file under /dev/shm, mode
// 0600) mapped into this process. Any process of the same user that knows the name can attach to it
// -- another mp program, a spawn child, or a Python program calling SharedMemory(name).
//
//   absl::StatusOr<mp::SharedMemory> shm = mp::SharedMemory::Create("orders", 4096);
//   if (!shm.ok()) return shm.status();            // kAlreadyExists if "orders" exists
//   std::memcpy(shm->buf().data(), "hello", 5);
//   // ... in another process (or pass *shm as a Process argument: it travels by name):
//   absl::StatusOr<mp::SharedMemory> other = mp::SharedMemory::Attach("orders");  // kNotFound if
//   gone
//   ...
//   other->Close();                                // every user closes
//   shm->Unlink();                                 // exactly one user (normally the creator)
//   unlinks
//
// CPython's SharedMemory(name=None, create=False, size=0) is SharedMemory::Open(name, create,
// size):
//   create, name given      a new segment called `name` of `size` bytes (zero-filled)
//   create, no name         a new segment with a random name "psm_<16 hex digits>" (retried on
//   clash) attach                  the existing segment `name`; `size` is ignored, size() is the
//   segment's
// Names. CPython passes the name to shm_open with a leading "/" added when missing, and name()
// returns it without the "/". mp does the same, and checks names first: 1 to 250 bytes after the
// optional leading "/", no other "/", no NUL, not "." or "..".
//
// Status codes (CPython exception -> mp):
//   kInvalidArgument  a bad name (ValueError/OSError), size <= 0 with create (ValueError: "'size'
//   must
//                     be a positive number"), a size above 2^40
//   kAlreadyExists    create of a name that exists (FileExistsError)
//   kNotFound         attach to a name that does not exist (FileNotFoundError)
//   kPermissionDenied the segment exists but belongs to somebody else (PermissionError); a tracked
//                     Create when this user's registry directory has a wrong mode (see below)
//   kFailedPrecondition  Unlink of a segment already unlinked by this handle
//   kResourceExhausted / kInternal   a system call failed (named, with errno)
//
// Close and Unlink. Close() drops this handle's mapping: buf() is empty afterwards and size() 0.
// Copies of a SharedMemory share one mapping, which is unmapped when the last copy is closed or
// destroyed (CPython's close() unmaps at once; here a copy cannot pull the memory away from
// another). Unlink() removes the name (shm_unlink): existing mappings stay valid, new Attach calls
// fail with kNotFound, and the memory is freed when the last process unmaps it.
//
// Reclaiming segments of a creator that died (CPython uses a resource tracker process that unlinks,
// with a "leaked shared_memory" warning, what the program did not unlink when it ends). mp keeps a
// registry instead: a directory of this user with one entry per tracked segment, named after the
// segment and holding "<creator pid> <creator start time> <pid namespace> <segment inode>". Create
// writes the entry right after creating the segment (an entry is tracked unless
// SharedMemoryOptions::track is false, CPython 3.13's track=False); Unlink and Untrack remove it.
// ReclaimOrphans() -- run by every Create, and callable by tools -- applies this exact rule to each
// entry: if the creator recorded in it is dead (no process with that pid, or one with another start
// time, i.e. the pid was reused) and lived in this process's pid namespace, and the segment of that
// name is still the same file (same inode), the segment is unlinked and the entry removed; an entry
// whose segment is gone or was replaced is removed without touching the segment. Entries of
// creators in other pid namespaces are left alone (their liveness cannot be judged from here). Each
// entry is handled under an exclusive flock, re-read after locking, so concurrent reclaimers cannot
// unlink a segment created again under the same name after the first reclaimer removed the old one.
// Consequences: a segment outlives its creator only until the next Create (or tool run) on the
// machine
// -- creators that hand a segment to processes that outlive them create it with track = false (or
// call Untrack), and then someone must Unlink it. A creator killed between shm_open and writing its
// entry (a window of a few system calls) leaks its segment; tools/cleaner can remove /dev/shm/psm_*
// by hand.
//
// Where the registry lives, so that no other user can block it. The canonical directory is
// /dev/shm/.mp-shm-<euid> (the environment variable MP_SHM_REGISTRY names another path, for tests),
// mode 0700, created on first use. /dev/shm is writable by everybody, so another local user can
// create that name first -- and, the directory being sticky, we could never remove it. A registry
// path is therefore used only if it is a directory (not a symlink) owned by this user with mode
// 0700; one owned by another user is a squat and is ignored (never read: its entries could name our
// segments). While the canonical name is squatted, Create makes a fallback directory beside it,
// "<canonical>-<16 random hex digits>" (mkdir is exclusive, and a name nobody can predict cannot be
// squatted in advance). Every process of the user finds the same directories the same way -- the
// canonical one and every "<canonical>-<16 hex>" directory beside it that it owns -- so entries go
// to the first usable one, and ReclaimOrphans, Unlink and Untrack look in all of them (a fallback
// keeps being scanned after a squatter leaves). Every access goes through the directory's open
// descriptor, checked with fstat. A registry path of this user that is not such a directory (wrong
// mode, not a directory) is its owner's doing, and Create fails with kPermissionDenied naming the
// path, the mode found (in octal) and the one needed, since others may have written entries in it.
//
// Passing to another process: SharedMemory has an mp::Codec that carries its name (and only that);
// the receiver attaches by name, so it works for every start method and any context, and the
// receiver is never the creator (it does not track or reclaim the segment).
//
// Thread safety: a SharedMemory handle is not synchronized (use one thread at a time per handle, or
// copies: copies are independent handles sharing the mapping). The bytes of buf() are shared with
// other processes without any synchronization; use a Lock or atomics for concurrent access.

#ifndef MP_SHARED_MEMORY_SHARED_MEMORY_H_
#define MP_SHARED_MEMORY_SHARED_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "serialize/codec.h"

namespace mp {

// Longest name (without the leading "/") SharedMemory accepts.
inline constexpr size_t kSharedMemoryMaxName = 250;
// Largest segment Create accepts.
inline constexpr size_t kSharedMemoryMaxSize = size_t{1} << 40;

struct SharedMemoryOptions {
  // Record the segment in the registry so that it is reclaimed once this process dies without
  // unlinking it (see the header comment). CPython 3.13's track parameter.
  bool track = true;
};

class SharedMemory {
 public:
  // A new segment called `name` ("" or "/" alone: a random "psm_..." name) of `size` bytes.
  static absl::StatusOr<SharedMemory> Create(absl::string_view name, int64_t size,
                                             SharedMemoryOptions options = {});
  // The existing segment `name`.
  static absl::StatusOr<SharedMemory> Attach(absl::string_view name);
  // CPython's SharedMemory(name, create, size): Create if `create`, else Attach (size ignored).
  static absl::StatusOr<SharedMemory> Open(std::optional<std::string> name, bool create = false,
                                           int64_t size = 0, SharedMemoryOptions options = {});

  // Applies the reclamation rule of the header comment to every registry entry. Returns the names
  // of the segments it unlinked. Errors only for a registry directory of this user that cannot be
  // used (kPermissionDenied for a wrong mode or type; unreadable), never for one another user
  // holds.
  static absl::StatusOr<std::vector<std::string>> ReclaimOrphans();
  // The registry directory new entries go to (see the header comment): the canonical one
  // (MP_SHM_REGISTRY or /dev/shm/.mp-shm-<euid>) unless another user holds that name, then this
  // user's fallback. Before any exists, the canonical path.
  static std::string RegistryDirectory();
  // Every registry directory of this user that exists (the one RegistryDirectory() names first);
  // ReclaimOrphans looks at all of them. Errors as for ReclaimOrphans.
  static absl::StatusOr<std::vector<std::string>> RegistryDirectories();

  // A closed handle (valid() false, empty buf, empty name): the start state of a decode target.
  SharedMemory() = default;
  SharedMemory(const SharedMemory&) = default;
  SharedMemory& operator=(const SharedMemory&) = default;
  SharedMemory(SharedMemory&&) = default;
  SharedMemory& operator=(SharedMemory&&) = default;
  ~SharedMemory() = default;

  // The segment's bytes in this process; empty after Close.
  absl::Span<uint8_t> buf() const;
  // Bytes in the segment (the created size, or the segment's size when attached); 0 after Close.
  size_t size() const;
  // The name without the leading "/" (kept after Close, as in CPython).
  const std::string& name() const { return name_; }
  // True until Close.
  bool valid() const { return mapping_ != nullptr; }
  // True if this handle created the segment.
  bool created() const { return created_; }

  // Drops this handle's mapping (see the header comment). Idempotent.
  void Close();
  // Removes the name (and its registry entry). kNotFound if somebody else already unlinked it,
  // kFailedPrecondition if this handle already did.
  absl::Status Unlink();
  // Removes the registry entry: the segment is no longer reclaimed when its creator dies.
  absl::Status Untrack();

 private:
  struct Mapping;
  SharedMemory(std::shared_ptr<Mapping> mapping, std::string name, bool created)
      : mapping_(std::move(mapping)), name_(std::move(name)), created_(created) {}

  std::shared_ptr<Mapping> mapping_;
  std::string name_;
  bool created_ = false;
  bool unlinked_ = false;
};

// A SharedMemory travels as its name; the receiver attaches (kNotFound if it was unlinked
// meanwhile).
template <>
struct Codec<SharedMemory> {
  static std::string Name() { return "mp::SharedMemory"; }
  static constexpr size_t kMinSize = Codec<std::string>::kMinSize;
  static size_t Size(const SharedMemory& v) { return Codec<std::string>::Size(v.name()); }
  static void Encode(const SharedMemory& v, ByteWriter& w) {
    Codec<std::string>::Encode(v.name(), w);
  }
  static absl::Status Decode(ByteReader& r, SharedMemory& out);
};

}  // namespace mp

#endif  // MP_SHARED_MEMORY_SHARED_MEMORY_H_
