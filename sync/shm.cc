// Copyright 2026 The mp Authors.

#include "sync/shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <new>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/errno_status.h"

// Linux 5.1; older headers lack the name.
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace mp {
namespace {

constexpr uint64_t kMagic = 0x31676573'5f706d00ull;  // "\0mp_seg1"
constexpr uint32_t kVersion = 1;

// Lives at offset 0 of every segment. Everything but `next` is written once, before the segment is
// visible to anybody else.
struct alignas(kShmAlignment) SegmentHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t domain;
  uint64_t size;
  std::atomic<uint64_t> next;  // offset of the next free block
};
static_assert(sizeof(SegmentHeader) == kShmHeaderSize);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// RAM plus swap in bytes, 0 if unknown.
uint64_t MachineMemoryBytes() {
  struct sysinfo info;
  if (sysinfo(&info) != 0) return 0;
  return (uint64_t{info.totalram} + uint64_t{info.totalswap}) * info.mem_unit;
}

// The seals every transferable segment carries: its size can never change, so no process can
// shrink it under another's mapping (an access past the end of a mapped file is SIGBUS).
constexpr int kRequiredSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

// "F_SEAL_SHRINK, F_SEAL_GROW": the names of the required seals missing from `seals`.
std::string MissingSeals(int seals) {
  std::string out;
  for (const auto& [seal, name] : {std::pair<int, const char*>{F_SEAL_SHRINK, "F_SEAL_SHRINK"},
                                   {F_SEAL_GROW, "F_SEAL_GROW"},
                                   {F_SEAL_SEAL, "F_SEAL_SEAL"}}) {
    if ((seals & seal) == 0) absl::StrAppend(&out, out.empty() ? "" : ", ", name);
  }
  return out;
}

// st_mode as ls and chmod spell it: 0100600, 010600.
std::string OctalMode(mode_t mode) { return absl::StrFormat("0%o", mode); }

}  // namespace

struct ShmSegment::Mapping {
  Mapping(void* b, size_t s, int f, ShmDomain d) : base(b), size(s), fd(f), domain(d) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    munmap(base, size);
    if (fd >= 0) close(fd);
  }
  SegmentHeader* header() const { return static_cast<SegmentHeader*>(base); }

  void* base;
  size_t size;
  int fd;
  ShmDomain domain;
};

absl::string_view ShmDomainName(ShmDomain domain) {
  switch (domain) {
    case ShmDomain::kFork:
      return "fork";
    case ShmDomain::kTransferable:
      return "transferable";
  }
  return "unknown";
}

absl::StatusOr<ShmSegment> ShmSegment::Create(ShmDomain domain, size_t capacity) {
  if (domain != ShmDomain::kFork && domain != ShmDomain::kTransferable) {
    return absl::InvalidArgumentError(
        absl::StrCat("ShmSegment::Create: unknown domain ", static_cast<uint32_t>(domain)));
  }
  if (capacity == 0 || capacity > kShmMaxSize) {
    return absl::InvalidArgumentError(absl::StrCat("ShmSegment::Create: capacity must be in [1, ",
                                                   kShmMaxSize, "], got ", capacity));
  }
  const size_t page = PageSize();
  const size_t size = (kShmHeaderSize + capacity + page - 1) / page * page;
  // A memfd would be created sparse (and MAP_NORESERVE-like), so a segment larger than the machine
  // could ever back "succeeds" and fails later, at a page fault. Refuse it here, as a status.
  if (const uint64_t memory = MachineMemoryBytes(); memory != 0 && size > memory) {
    return absl::ResourceExhaustedError(
        absl::StrCat("ShmSegment::Create: a segment of ", size, " bytes (capacity ", capacity,
                     ") exceeds this machine's memory limit (RAM + swap: ", memory, " bytes)"));
  }

  int fd = -1;
  void* base = MAP_FAILED;
  if (domain == ShmDomain::kFork) {
    base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
      const int err = errno;
      return ErrnoStatus(err, absl::StrCat("ShmSegment::Create: mmap(anonymous, ", size, ")"));
    }
  } else {
    fd = memfd_create("mp-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return ErrnoStatus(errno, "ShmSegment::Create: memfd_create(\"mp-shm\")");
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
      const int err = errno;
      close(fd);
      return ErrnoStatus(err, absl::StrCat("ShmSegment::Create: ftruncate(memfd, ", size, ")"));
    }
    // Nobody may change the size later; Attach refuses a segment without these seals.
    if (fcntl(fd, F_ADD_SEALS, kRequiredSeals) != 0) {
      const int err = errno;
      close(fd);
      return ErrnoStatus(err, "ShmSegment::Create: fcntl(memfd, F_ADD_SEALS)");
    }
    base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
      const int err = errno;
      close(fd);
      return ErrnoStatus(err, absl::StrCat("ShmSegment::Create: mmap(memfd, ", size, ")"));
    }
  }
  auto* header = new (base) SegmentHeader;
  header->magic = kMagic;
  header->version = kVersion;
  header->domain = static_cast<uint32_t>(domain);
  header->size = size;
  header->next.store(kShmHeaderSize, std::memory_order_release);
  return ShmSegment(std::make_shared<Mapping>(base, size, fd, domain));
}

absl::StatusOr<ShmSegment> ShmSegment::Attach(int fd) {
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat("ShmSegment::Attach: bad fd ", fd));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    if (err == EBADF) {
      return absl::InvalidArgumentError(
          absl::StrCat("ShmSegment::Attach: fd ", fd, " is not an open file descriptor"));
    }
    return ErrnoStatus(err, absl::StrCat("ShmSegment::Attach: fstat(", fd, ")"));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("ShmSegment::Attach: fd ", fd,
                                                   " is not a shared memory file (st_mode ",
                                                   OctalMode(st.st_mode), ")"));
  }
  // The descriptor comes from another process, which may still hold it: unless the file is sealed
  // against resizing, the sender could shrink it after we map it, and this process would die of
  // SIGBUS on its next access. Only the seals make the size read below final.
  const int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 && errno != EINVAL) {  // EINVAL: a file that cannot carry seals
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat("ShmSegment::Attach: fcntl(", fd, ", F_GET_SEALS)"));
  }
  if (seals < 0 || (seals & kRequiredSeals) != kRequiredSeals) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ShmSegment::Attach: fd ", fd, " is not sealed against resizing (missing ",
        MissingSeals(seals < 0 ? 0 : seals),
        seals < 0 ? "; the file cannot carry seals, so it is no memfd" : "",
        "): an mp segment is a memfd sealed with F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, "
        "without which its sender could shrink it under this process's mapping"));
  }
  if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ShmSegment::Attach: fd ", fd, " is sealed against writing (seals 0x",
                     absl::Hex(seals), "); an mp segment must be writable"));
  }
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat("ShmSegment::Attach: fstat(", fd, ")"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < kShmHeaderSize || size % PageSize() != 0 || size > kShmMaxSize + PageSize()) {
    return absl::InvalidArgumentError(absl::StrCat("ShmSegment::Attach: fd ", fd, " has size ",
                                                   size, ", which no mp segment has"));
  }
  // Create never makes a segment the machine could not back; a (sparse) file that large would
  // let its sender make us size buffers by it.
  if (const uint64_t memory = MachineMemoryBytes(); memory != 0 && size > memory) {
    return absl::InvalidArgumentError(
        absl::StrCat("ShmSegment::Attach: fd ", fd, " has size ", size,
                     ", more than this machine's memory (RAM + swap: ", memory,
                     " bytes), which no mp segment has"));
  }
  const int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat("ShmSegment::Attach: fcntl(", fd, ", F_DUPFD_CLOEXEC)"));
  }
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, own, 0);
  if (base == MAP_FAILED) {
    const int err = errno;
    close(own);
    return ErrnoStatus(err, absl::StrCat("ShmSegment::Attach: mmap(fd ", fd, ", ", size, ")"));
  }
  // From here on the Mapping owns `base` and `own`.
  auto* header = static_cast<SegmentHeader*>(base);
  auto mapping = std::make_shared<Mapping>(base, size, own, ShmDomain::kTransferable);
  if (header->magic != kMagic || header->version != kVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("ShmSegment::Attach: fd ", fd, " does not hold an mp segment (magic 0x",
                     absl::Hex(header->magic), ", version ", header->version, ")"));
  }
  if (header->size != size || header->domain != static_cast<uint32_t>(ShmDomain::kTransferable)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ShmSegment::Attach: fd ", fd, " holds a segment header for size ", header->size,
        " and domain ", header->domain, " but the file is a transferable segment of size ", size));
  }
  const uint64_t next = header->next.load(std::memory_order_acquire);
  if (next < kShmHeaderSize || next > size) {
    return absl::InvalidArgumentError(
        absl::StrCat("ShmSegment::Attach: fd ", fd, " has a corrupt arena offset ", next));
  }
  return ShmSegment(std::move(mapping));
}

ShmDomain ShmSegment::domain() const { return mapping_ ? mapping_->domain : ShmDomain::kFork; }
size_t ShmSegment::size() const { return mapping_ ? mapping_->size : 0; }
void* ShmSegment::base() const { return mapping_->base; }
int ShmSegment::fd() const { return mapping_ ? mapping_->fd : -1; }

uint64_t ShmSegment::used() const {
  if (!valid()) return 0;
  return mapping_->header()->next.load(std::memory_order_acquire);
}

void* ShmSegment::At(uint64_t offset) const { return static_cast<char*>(mapping_->base) + offset; }

absl::StatusOr<uint64_t> ShmSegment::Allocate(size_t size) {
  if (!valid()) return absl::FailedPreconditionError("ShmSegment::Allocate: empty segment");
  if (size == 0) return absl::InvalidArgumentError("ShmSegment::Allocate: size must be > 0");
  const uint64_t total = mapping_->size;
  if (size > total) {
    return absl::ResourceExhaustedError(
        absl::StrCat("ShmSegment::Allocate: ", size, " bytes do not fit a segment of ", total));
  }
  const uint64_t rounded = (size + kShmAlignment - 1) / kShmAlignment * kShmAlignment;
  std::atomic<uint64_t>& next = mapping_->header()->next;
  uint64_t offset = next.load(std::memory_order_relaxed);
  do {
    if (offset > total || total - offset < rounded) {
      return absl::ResourceExhaustedError(
          absl::StrCat("ShmSegment::Allocate: segment full: ", size, " bytes asked, ",
                       offset > total ? 0 : total - offset, " of ", total, " left"));
    }
  } while (!next.compare_exchange_weak(offset, offset + rounded, std::memory_order_acq_rel,
                                       std::memory_order_relaxed));
  // Fresh mappings are zero-filled and blocks are never reused, so the block is already zero.
  return offset;
}

absl::Status ShmSegment::CheckBlock(uint64_t offset, size_t size, uint32_t tag,
                                    absl::string_view what) const {
  if (!valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the handle's segment is empty (a default-constructed object)"));
  }
  const uint64_t used_now = used();
  if (offset < kShmHeaderSize || offset % kShmAlignment != 0 || offset > used_now ||
      used_now - offset < size) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": offset ", offset, " is not an allocated ", size, "-byte block of this ",
        ShmDomainName(domain()), " segment (", used_now, " of ", mapping_->size, " bytes used)"));
  }
  const uint32_t found =
      reinterpret_cast<const std::atomic<uint32_t>*>(At(offset))->load(std::memory_order_acquire);
  if (found != tag) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": offset ", offset, " does not hold a ",
                                                   what, " (tag 0x", absl::Hex(found),
                                                   ", expected 0x", absl::Hex(tag), ")"));
  }
  return absl::OkStatus();
}

void Codec<ShmHandle>::Encode(const ShmHandle& h, ByteWriter& w) {
  Codec<PassedFd>::Encode(PassedFd{h.segment.fd()}, w);
  w.WriteLE(h.offset);
}

absl::Status Codec<ShmHandle>::Decode(ByteReader& r, ShmHandle& out) {
  PassedFd fd;
  if (absl::Status s = Codec<PassedFd>::Decode(r, fd); !s.ok()) return s;
  uint64_t offset = 0;
  absl::Status s = r.ReadLE(&offset, "shared object offset");
  absl::StatusOr<ShmSegment> segment = s.ok() ? ShmSegment::Attach(fd.fd) : s;
  ::close(fd.fd);  // the received descriptor is ours; Attach keeps its own duplicate
  if (!segment.ok()) return segment.status();
  out = ShmHandle{*std::move(segment), offset};
  return absl::OkStatus();
}

namespace shm_internal {
absl::Status ExplainDecodeFailure(absl::Status status, absl::string_view kind) {
  if (status.code() != absl::StatusCode::kFailedPrecondition) return status;
  return absl::FailedPreconditionError(absl::StrCat(
      "mp::Decode: a ", kind,
      " arrived without its shared memory descriptor: a fork-domain object (made by the 'fork' "
      "context) reaches forked children only; create it with a 'spawn' or 'forkserver' context. ",
      status.message()));
}
}  // namespace shm_internal

}  // namespace mp
