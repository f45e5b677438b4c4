// Copyright 2026 The mp Authors.
//
// sync/shm.h — process-shared memory for mp's synchronization primitives and small shared objects.
//
// A ShmSegment is one shared mapping in one of the two sharing domains (../shared/DESIGN.md):
//
//   ShmDomain::kFork          anonymous MAP_SHARED memory. Only the creator and its forked children
//   see
//                             it; it cannot be passed to a spawn or forkserver child. fd() is -1.
//   ShmDomain::kTransferable  a memfd_create(MFD_CLOEXEC) file, sealed so that its size can never
//                             change, mapped MAP_SHARED. Its fd can be passed
//                             to another process (inherited over exec, or SCM_RIGHTS), which calls
//                             ShmSegment::Attach(fd).
//
// No segment is ever named: nothing is created in /dev/shm or on any file system. The memory
// belongs to the kernel objects (the mapping, the memfd) and is freed when the last process that
// maps it or holds its fd is gone -- including processes killed by SIGKILL. Leaked segments are
// impossible by construction; there is nothing to unlink and no cleaner is needed.
//
// A segment is also a small arena: the first 64 bytes are a header (magic, size, an atomic bump
// offset), and Allocate() hands out 64-byte aligned blocks from the rest, from any process mapping
// the segment (the offset is an atomic in the shared header). Blocks are never freed individually;
// the segment goes away as a whole. A shared object is identified across processes by its
// ShmHandle, (segment, offset), which is what each primitive's handle() returns and FromHandle()
// takes.
//
//   absl::StatusOr<mp::ShmSegment> seg = mp::ShmSegment::Create(mp::ShmDomain::kTransferable,
//   4096); absl::StatusOr<mp::Lock> a = mp::Lock::Create(*seg);   // both locks live in one segment
//   absl::StatusOr<mp::Lock> b = mp::Lock::Create(*seg);
//   // ... pass seg->fd() and a->handle().offset to another process, which does:
//   absl::StatusOr<mp::ShmSegment> mine = mp::ShmSegment::Attach(fd);
//   absl::StatusOr<mp::Lock> lock = mp::Lock::FromHandle({*mine, offset});
//
// ShmSegment is a cheap, copyable reference to a mapping: copies share it, and the mapping (and the
// fd this process holds) is released when the last copy in this process is destroyed. The header
// fields are immutable after Create except the atomic bump offset, so every method is thread-safe.

#ifndef MP_SYNC_SHM_H_
#define MP_SYNC_SHM_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "serialize/codec.h"
#include "serialize/fd.h"

namespace mp {

enum class ShmDomain : uint32_t {
  kFork = 1,
  kTransferable = 2,
};

// "fork" or "transferable".
absl::string_view ShmDomainName(ShmDomain domain);

// Alignment of every block Allocate() returns: one cache line.
inline constexpr size_t kShmAlignment = 64;
// Size of the segment header at offset 0; the first block starts here.
inline constexpr size_t kShmHeaderSize = 64;
// Largest segment Create() accepts.
inline constexpr size_t kShmMaxSize = size_t{1} << 40;

class ShmSegment {
 public:
  // Maps a new segment with room for `capacity` bytes of blocks (the mapping is the header plus
  // `capacity`, rounded up to whole pages; the extra is usable too). A transferable segment's
  // memfd is sealed with F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL: its size never changes.
  // kInvalidArgument for a capacity of 0 or above kShmMaxSize or an unknown domain;
  // kResourceExhausted for a segment larger than this machine's RAM plus swap (which it could
  // never back), and, like kInternal, naming the failing system call otherwise.
  static absl::StatusOr<ShmSegment> Create(ShmDomain domain, size_t capacity);

  // Maps the transferable segment behind `fd` (as returned by another process's fd()). The fd is
  // not taken: Attach duplicates it (close-on-exec) and the caller still owns `fd`. The fd usually
  // comes from another process, which is not trusted: Attach validates with fstat, the seals and
  // the header, and returns kInvalidArgument if fd is negative, not a regular file, not sealed
  // with F_SEAL_SHRINK, F_SEAL_GROW and F_SEAL_SEAL (naming the missing seals: without them the
  // sender could shrink the file under this process's mapping, and the next access would be
  // SIGBUS), sealed against writing, too small, or does not hold an mp segment (bad magic, or a
  // header whose size differs from the file's).
  static absl::StatusOr<ShmSegment> Attach(int fd);

  // An empty segment: no mapping (valid() is false, domain() kFork, fd() -1, size() 0). Only the
  // starting state of an object that is assigned later (a decode target); base() and At() of an
  // empty segment must not be used.
  ShmSegment() = default;
  bool valid() const { return mapping_ != nullptr; }

  ShmSegment(const ShmSegment&) = default;
  ShmSegment& operator=(const ShmSegment&) = default;
  ShmSegment(ShmSegment&&) = default;
  ShmSegment& operator=(ShmSegment&&) = default;
  ~ShmSegment() = default;

  ShmDomain domain() const;
  // Bytes mapped, header included.
  size_t size() const;
  // Where the segment is mapped in this process (differs between processes).
  void* base() const;
  // The memfd (kTransferable), owned by this segment and closed with its last copy; -1 for kFork.
  int fd() const;

  // Reserves `size` bytes (rounded up to kShmAlignment), zero-filled, from any process.
  // kInvalidArgument for size 0; kResourceExhausted when the segment is full, naming what is left.
  absl::StatusOr<uint64_t> Allocate(size_t size);
  // Bytes handed out so far, header included (the next block's offset).
  uint64_t used() const;

  // The address of `offset` in this process. No checks: use CheckBlock first for untrusted offsets.
  void* At(uint64_t offset) const;

  // Checks that [offset, offset + size) is an allocated, aligned block whose first 4 bytes hold
  // `tag` (each object kind writes its own tag there once initialized). kInvalidArgument naming
  // `what`, the offset and what was found otherwise.
  absl::Status CheckBlock(uint64_t offset, size_t size, uint32_t tag, absl::string_view what) const;

  // True if both refer to the same mapping in this process.
  bool SameMapping(const ShmSegment& other) const { return mapping_ == other.mapping_; }

 private:
  struct Mapping;
  explicit ShmSegment(std::shared_ptr<Mapping> mapping) : mapping_(std::move(mapping)) {}

  std::shared_ptr<Mapping> mapping_;
};

// A shared object's identity across processes: the segment holding it and its offset there.
struct ShmHandle {
  ShmSegment segment;
  uint64_t offset = 0;
};

// ---------------------------------------------------------------------------------------------------
// What every shared object (Lock, Event, Barrier...) has: where its State lives, and the two steps
// that make one -- Place (allocate, construct, publish the tag) and Check (re-open from a handle).
// A State begins with `std::atomic<uint32_t> tag`, stored last with release order once the rest is
// initialized, so a process that re-opens the object from a handle (CheckBlock) never sees it
// half-built.
template <typename State>
class ShmObject {
 public:
  ShmHandle handle() const { return {segment_, offset_}; }
  ShmDomain domain() const { return segment_.domain(); }

 protected:
  ShmObject() = default;
  ShmObject(ShmSegment segment, uint64_t offset)
      : segment_(std::move(segment)),
        offset_(offset),
        state_(static_cast<State*>(segment_.At(offset))) {}

  // Allocates a State in `segment` (kResourceExhausted when full), value-initializes it, lets
  // `init(State&)` fill it in, then publishes `tag`. Returns its offset.
  template <typename Init>
  static absl::StatusOr<uint64_t> Place(ShmSegment& segment, uint32_t tag, Init init) {
    absl::StatusOr<uint64_t> offset = segment.Allocate(sizeof(State));
    if (!offset.ok()) return offset.status();
    State* state = new (segment.At(*offset)) State{};
    init(*state);
    state->tag.store(tag, std::memory_order_release);
    return offset;
  }
  // kInvalidArgument naming `what` unless `handle` points at a State tagged `tag`.
  static absl::Status Check(const ShmHandle& handle, uint32_t tag, absl::string_view what) {
    return handle.segment.CheckBlock(handle.offset, sizeof(State), tag, what);
  }

  ShmSegment segment_;
  uint64_t offset_ = 0;
  State* state_ = nullptr;
};

// ---------------------------------------------------------------------------------------------------
// Carrying shared objects to other processes.
//
// A ShmHandle encodes as its segment's memfd (an mp::PassedFd, serialize/fd.h) and its offset; the
// receiver attaches the segment (ShmSegment::Attach) from the descriptor that arrived. A
// fork-domain segment has no descriptor: it encodes as "absent" and decoding it is
// kFailedPrecondition.
template <>
struct Codec<ShmHandle> {
  static std::string Name() { return "mp::ShmHandle"; }
  static constexpr size_t kMinSize = Codec<PassedFd>::kMinSize + 8;
  static size_t Size(const ShmHandle&) { return kMinSize; }
  static void Encode(const ShmHandle& h, ByteWriter& w);
  static absl::Status Decode(ByteReader& r, ShmHandle& out);
};

namespace shm_internal {
// A string literal usable as a template argument.
template <size_t N>
struct Kind {
  constexpr Kind(const char (&s)[N]) {  // NOLINT(google-explicit-constructor): for literals
    for (size_t i = 0; i < N; ++i) value[i] = s[i];
  }
  char value[N];
};
// Adds "a fork-domain <kind> ... create it in the transferable domain" to a failed decode.
absl::Status ExplainDecodeFailure(absl::Status status, absl::string_view kind);
}  // namespace shm_internal

// The Codec of every object that lives in a segment (Lock, Event, Queue...): T has handle(),
// domain() and static FromHandle(const ShmHandle&). A fork-domain object notes itself as fork-only
// in the current FdTable while it is encoded, so spawn and forkserver refuse it by name when a
// Process is created (start_methods CheckTarget) instead of failing in the child.
//
//   template <> struct Codec<Lock> : ShmObjectCodec<Lock, "Lock"> {};
template <typename T, shm_internal::Kind kKind>
struct ShmObjectCodec {
  static std::string Name() { return std::string("mp::") + kKind.value; }
  static constexpr size_t kMinSize = Codec<ShmHandle>::kMinSize;
  static size_t Size(const T&) { return kMinSize; }
  static void Encode(const T& v, ByteWriter& w) {
    if (v.domain() == ShmDomain::kFork) {
      if (FdTable* table = ScopedFdTable::Current()) table->NoteForkOnly(kKind.value);
    }
    Codec<ShmHandle>::Encode(v.handle(), w);
  }
  static absl::Status Decode(ByteReader& r, T& out) {
    ShmHandle handle;
    if (absl::Status s = Codec<ShmHandle>::Decode(r, handle); !s.ok()) {
      return shm_internal::ExplainDecodeFailure(std::move(s), kKind.value);
    }
    absl::StatusOr<T> object = T::FromHandle(handle);
    if (!object.ok()) return object.status();
    out = *std::move(object);
    return absl::OkStatus();
  }
};

}  // namespace mp

#endif  // MP_SYNC_SHM_H_
