// Copyright 2026 The mp Authors.

#include "sync/shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "serialize/codec.h"
#include "serialize/fd.h"
#include "sync/lock.h"
#include "sync/test_child.h"

namespace mp {
namespace {

using ::mp::testing::TestChild;
using ::mp::testing::TestPipe;

TEST(ShmSegmentTest, ForkDomainBasics) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 100);
  ASSERT_TRUE(seg.ok()) << seg.status();
  EXPECT_EQ(seg->domain(), ShmDomain::kFork);
  EXPECT_EQ(seg->fd(), -1);
  EXPECT_GE(seg->size(), kShmHeaderSize + 100);
  EXPECT_EQ(seg->size() % static_cast<size_t>(sysconf(_SC_PAGESIZE)), 0u);
  EXPECT_NE(seg->base(), nullptr);
  EXPECT_EQ(seg->used(), kShmHeaderSize);
  EXPECT_EQ(ShmDomainName(seg->domain()), "fork");
}

TEST(ShmSegmentTest, CreateRejectsBadArguments) {
  EXPECT_EQ(ShmSegment::Create(ShmDomain::kFork, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShmSegment::Create(ShmDomain::kTransferable, kShmMaxSize + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status bad = ShmSegment::Create(static_cast<ShmDomain>(7), 64).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("7"), std::string::npos) << bad;
}

// A segment larger than the machine's RAM + swap could never be backed: a memfd of that size would
// be created sparse and fail only at a page fault, so Create refuses it up front.
TEST(ShmSegmentTest, CreateRefusesMoreThanTheMachineHas) {
  struct sysinfo info;
  ASSERT_EQ(sysinfo(&info), 0);
  const uint64_t memory = (uint64_t{info.totalram} + info.totalswap) * info.mem_unit;
  if (memory >= kShmMaxSize) GTEST_SKIP() << "this machine has " << memory << " bytes";
  for (ShmDomain domain : {ShmDomain::kFork, ShmDomain::kTransferable}) {
    absl::Status s = ShmSegment::Create(domain, kShmMaxSize).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_NE(s.message().find(absl::StrCat(kShmMaxSize)), std::string::npos) << s;
    EXPECT_NE(s.message().find(absl::StrCat("limit (RAM + swap: ", memory)), std::string::npos)
        << s;
  }
}

TEST(ShmSegmentTest, AllocateIsAlignedDistinctAndBounded) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 4096 - kShmHeaderSize);
  ASSERT_TRUE(seg.ok()) << seg.status();
  std::set<uint64_t> offsets;
  for (;;) {
    absl::StatusOr<uint64_t> off = seg->Allocate(1);
    if (!off.ok()) {
      EXPECT_EQ(off.status().code(), absl::StatusCode::kResourceExhausted) << off.status();
      break;
    }
    EXPECT_EQ(*off % kShmAlignment, 0u);
    EXPECT_GE(*off, kShmHeaderSize);
    EXPECT_LE(*off + kShmAlignment, seg->size());
    EXPECT_TRUE(offsets.insert(*off).second);
  }
  EXPECT_EQ(offsets.size(), (seg->size() - kShmHeaderSize) / kShmAlignment);
  EXPECT_EQ(seg->Allocate(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(seg->Allocate(seg->size() + 1).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ShmSegmentTest, BlocksAreZeroed) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kTransferable, 1000);
  ASSERT_TRUE(seg.ok()) << seg.status();
  absl::StatusOr<uint64_t> off = seg->Allocate(1000);
  ASSERT_TRUE(off.ok()) << off.status();
  const char* p = static_cast<const char*>(seg->At(*off));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(p[i], 0) << i;
}

TEST(ShmSegmentTest, TransferableIsAnUnnamedMemfd) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kTransferable, 64);
  ASSERT_TRUE(seg.ok()) << seg.status();
  EXPECT_EQ(seg->domain(), ShmDomain::kTransferable);
  ASSERT_GE(seg->fd(), 0);
  EXPECT_TRUE(fcntl(seg->fd(), F_GETFD) & FD_CLOEXEC);
  char link[256] = {};
  const std::string path = "/proc/self/fd/" + std::to_string(seg->fd());
  ASSERT_GT(readlink(path.c_str(), link, sizeof(link) - 1), 0);
  // A memfd: nothing in /dev/shm or any file system to leak.
  EXPECT_EQ(std::string(link).rfind("/memfd:mp-shm", 0), 0u) << link;
  // Sealed: nobody can shrink it under another process's mapping.
  EXPECT_NE(ftruncate(seg->fd(), 0), 0);
}

TEST(ShmSegmentTest, LastCopyClosesTheFd) {
  int fd = -1;
  {
    absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kTransferable, 64);
    ASSERT_TRUE(seg.ok()) << seg.status();
    ShmSegment copy = *seg;
    fd = seg->fd();
    EXPECT_TRUE(copy.SameMapping(*seg));
    seg = absl::UnknownError("drop the original");
    EXPECT_GE(fcntl(fd, F_GETFD), 0);  // the copy keeps it alive
    static_cast<char*>(copy.base())[kShmHeaderSize] = 1;
  }
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);
}

TEST(ShmSegmentTest, AttachSharesMemoryAndArena) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kTransferable, 256);
  ASSERT_TRUE(seg.ok()) << seg.status();
  absl::StatusOr<uint64_t> a = seg->Allocate(8);
  ASSERT_TRUE(a.ok());
  absl::StatusOr<ShmSegment> other = ShmSegment::Attach(seg->fd());
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_FALSE(other->SameMapping(*seg));
  EXPECT_NE(other->fd(), seg->fd());
  EXPECT_EQ(other->size(), seg->size());
  EXPECT_EQ(other->domain(), ShmDomain::kTransferable);
  std::strcpy(static_cast<char*>(seg->At(*a)), "hello");
  EXPECT_STREQ(static_cast<const char*>(other->At(*a)), "hello");
  absl::StatusOr<uint64_t> b = other->Allocate(8);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(seg->used(), other->used());
}

TEST(ShmSegmentTest, AttachRejectsBadFds) {
  EXPECT_EQ(ShmSegment::Attach(-1).status().code(), absl::StatusCode::kInvalidArgument);

  TestPipe pipe;
  ASSERT_TRUE(pipe.ok());
  absl::Status not_file = ShmSegment::Attach(pipe.r()).status();
  EXPECT_EQ(not_file.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(not_file.message().find("not a shared memory file"), std::string::npos) << not_file;

  const int closed = dup(pipe.r());
  close(closed);
  absl::Status bad_fd = ShmSegment::Attach(closed).status();
  EXPECT_EQ(bad_fd.code(), absl::StatusCode::kInvalidArgument) << bad_fd;

  const int empty = memfd_create("empty", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(empty, 0);
  absl::Status too_small = ShmSegment::Attach(empty).status();
  EXPECT_EQ(too_small.code(), absl::StatusCode::kInvalidArgument) << too_small;
  ASSERT_EQ(ftruncate(empty, 4096), 0);
  ASSERT_EQ(fcntl(empty, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
  absl::Status no_magic = ShmSegment::Attach(empty).status();
  EXPECT_EQ(no_magic.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_magic.message().find("does not hold an mp segment"), std::string::npos) << no_magic;
  close(empty);
}

// What a hostile peer can send: a new memfd of `file_size` bytes holding a copy of a genuine
// segment's bytes (so its header and objects look valid), with `seals` added (0: none).
int ForgedSegment(const ShmSegment& genuine, size_t file_size, int seals) {
  const int fd = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  const size_t n = std::min(genuine.size(), file_size);
  if (ftruncate(fd, static_cast<off_t>(file_size)) != 0 ||
      pwrite(fd, genuine.base(), n, 0) != static_cast<ssize_t>(n) ||
      (seals != 0 && fcntl(fd, F_ADD_SEALS, seals) != 0)) {
    close(fd);
    return -1;
  }
  return fd;
}

// Decodes a Lock whose segment descriptor is replaced by `fd` in transit, as Recv<Lock> (or a
// spawn child's launch) would on the receiving side.
absl::StatusOr<Lock> DecodeLockArrivingAs(const Lock& lock, int fd) {
  FdTable sent;
  std::string bytes;
  {
    ScopedFdTable scope(&sent);
    bytes = Encode(lock);
  }
  FdTable received(std::vector<int>{dup(fd)});
  ScopedFdTable scope(&received);
  return Decode<Lock>(bytes);
}

constexpr int kRequiredSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

// A peer's own memfd without the seals could be shrunk under the receiver's mapping (SIGBUS on the
// next access), so a received segment without them is refused, however valid its header looks.
TEST(ShmSegmentTest, AttachRefusesUnsealedSegments) {
  absl::StatusOr<ShmSegment> genuine = ShmSegment::Create(ShmDomain::kTransferable, 4096);
  ASSERT_TRUE(genuine.ok()) << genuine.status();
  absl::StatusOr<Lock> lock = Lock::Create(*genuine);
  ASSERT_TRUE(lock.ok()) << lock.status();
  for (int seals :
       {0, F_SEAL_GROW | F_SEAL_SEAL, F_SEAL_SHRINK | F_SEAL_SEAL, F_SEAL_SHRINK | F_SEAL_GROW}) {
    SCOPED_TRACE(absl::StrCat("seals 0x", absl::Hex(seals)));
    const int forged = ForgedSegment(*genuine, genuine->size(), seals);
    ASSERT_GE(forged, 0);
    absl::Status attached = ShmSegment::Attach(forged).status();
    EXPECT_EQ(attached.code(), absl::StatusCode::kInvalidArgument) << attached;
    EXPECT_NE(attached.message().find("F_SEAL_"), std::string::npos) << attached;
    // The decoding path a received Lock (or Queue, Value...) takes refuses it the same way.
    absl::Status decoded = DecodeLockArrivingAs(*lock, forged).status();
    EXPECT_EQ(decoded.code(), absl::StatusCode::kInvalidArgument) << decoded;
    EXPECT_NE(decoded.message().find("F_SEAL_"), std::string::npos) << decoded;
    close(forged);
  }
  // Each missing seal is named.
  const int unsealed = ForgedSegment(*genuine, genuine->size(), 0);
  ASSERT_GE(unsealed, 0);
  absl::Status none = ShmSegment::Attach(unsealed).status();
  for (const char* seal : {"F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_SEAL"}) {
    EXPECT_NE(none.message().find(seal), std::string::npos) << none;
  }
  close(unsealed);
  // The same bytes, sealed: accepted, and the Lock inside is usable.
  const int sealed = ForgedSegment(*genuine, genuine->size(), kRequiredSeals);
  ASSERT_GE(sealed, 0);
  absl::StatusOr<Lock> fine = DecodeLockArrivingAs(*lock, sealed);
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_TRUE(fine->Acquire(false).value_or(false));
  EXPECT_TRUE(fine->Release().ok());
  close(sealed);
}

// A sealed segment whose file size differs from the size its header records is refused too.
TEST(ShmSegmentTest, AttachRefusesASizeOtherThanTheHeaders) {
  absl::StatusOr<ShmSegment> genuine = ShmSegment::Create(ShmDomain::kTransferable, 4096);
  ASSERT_TRUE(genuine.ok()) << genuine.status();
  absl::StatusOr<Lock> lock = Lock::Create(*genuine);
  ASSERT_TRUE(lock.ok()) << lock.status();
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (size_t file_size : {genuine->size() + page, genuine->size() * 4, genuine->size() - page}) {
    SCOPED_TRACE(file_size);
    const int forged = ForgedSegment(*genuine, file_size, kRequiredSeals);
    ASSERT_GE(forged, 0);
    absl::Status attached = ShmSegment::Attach(forged).status();
    EXPECT_EQ(attached.code(), absl::StatusCode::kInvalidArgument) << attached;
    EXPECT_NE(attached.message().find(absl::StrCat("size ", genuine->size())), std::string::npos)
        << attached;
    absl::Status decoded = DecodeLockArrivingAs(*lock, forged).status();
    EXPECT_EQ(decoded.code(), absl::StatusCode::kInvalidArgument) << decoded;
    close(forged);
  }
}

// A sealed, sparse file larger than this machine's memory is no segment Create could have made,
// even when its header agrees with its size.
TEST(ShmSegmentTest, AttachRefusesMoreThanTheMachineHas) {
  struct sysinfo info;
  ASSERT_EQ(sysinfo(&info), 0);
  const uint64_t memory = (uint64_t{info.totalram} + info.totalswap) * info.mem_unit;
  if (memory >= kShmMaxSize) GTEST_SKIP() << "this machine has " << memory << " bytes";
  absl::StatusOr<ShmSegment> genuine = ShmSegment::Create(ShmDomain::kTransferable, 4096);
  ASSERT_TRUE(genuine.ok()) << genuine.status();
  const int forged = ForgedSegment(*genuine, kShmMaxSize, 0);
  ASSERT_GE(forged, 0);
  // The header's size field (after the 8-byte magic, 4-byte version and 4-byte domain).
  const uint64_t size = kShmMaxSize;
  ASSERT_EQ(pwrite(forged, &size, sizeof(size), 16), static_cast<ssize_t>(sizeof(size)));
  ASSERT_EQ(fcntl(forged, F_ADD_SEALS, kRequiredSeals), 0);
  absl::Status attached = ShmSegment::Attach(forged).status();
  EXPECT_EQ(attached.code(), absl::StatusCode::kInvalidArgument) << attached;
  EXPECT_NE(attached.message().find("RAM + swap"), std::string::npos) << attached;
  close(forged);
}

// st_mode is printed in octal, as ls and chmod spell it (a FIFO read end: 010600).
TEST(ShmSegmentTest, AttachPrintsFileModesInOctal) {
  TestPipe pipe;
  ASSERT_TRUE(pipe.ok());
  struct stat st;
  ASSERT_EQ(fstat(pipe.r(), &st), 0);
  absl::Status not_file = ShmSegment::Attach(pipe.r()).status();
  EXPECT_NE(not_file.message().find(absl::StrFormat("st_mode 0%o", st.st_mode)), std::string::npos)
      << not_file;
}

TEST(ShmSegmentTest, CheckBlockValidatesOffsetAndTag) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 256);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<uint64_t> off = seg->Allocate(64);
  ASSERT_TRUE(off.ok());
  reinterpret_cast<std::atomic<uint32_t>*>(seg->At(*off))->store(0x1234);
  EXPECT_TRUE(seg->CheckBlock(*off, 64, 0x1234, "Thing").ok());
  absl::Status wrong_tag = seg->CheckBlock(*off, 64, 0x9999, "Thing");
  EXPECT_EQ(wrong_tag.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_tag.message().find("does not hold a Thing"), std::string::npos) << wrong_tag;
  EXPECT_EQ(seg->CheckBlock(*off + 8, 32, 0x1234, "Thing").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(seg->CheckBlock(0, 64, 0x1234, "Thing").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(seg->CheckBlock(*off, 128, 0x1234, "Thing").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(seg->CheckBlock(*off + 64, 64, 0, "Thing").code(), absl::StatusCode::kInvalidArgument);
}

TEST(ShmSegmentTest, ForkChildSeesForkDomain) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 64);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<uint64_t> off = seg->Allocate(8);
  ASSERT_TRUE(off.ok());
  auto* word = static_cast<uint64_t*>(seg->At(*off));
  TestChild child([&] {
    *word = 42;
    return 0;
  });
  ASSERT_GT(child.pid(), 0);
  EXPECT_EQ(child.Wait(), 0);
  EXPECT_EQ(*word, 42u);
}

TEST(ShmSegmentTest, ChildAttachesByFd) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kTransferable, 64);
  ASSERT_TRUE(seg.ok());
  const int fd = seg->fd();
  TestChild child([fd] {
    absl::StatusOr<ShmSegment> mine = ShmSegment::Attach(fd);
    if (!mine.ok()) return 1;
    absl::StatusOr<uint64_t> off = mine->Allocate(8);
    if (!off.ok()) return 2;
    *static_cast<uint64_t*>(mine->At(*off)) = 7;
    return 0;
  });
  ASSERT_GT(child.pid(), 0);
  EXPECT_EQ(child.Wait(), 0);
  EXPECT_EQ(seg->used(), kShmHeaderSize + kShmAlignment);
  EXPECT_EQ(*static_cast<uint64_t*>(seg->At(kShmHeaderSize)), 7u);
}

}  // namespace
}  // namespace mp
