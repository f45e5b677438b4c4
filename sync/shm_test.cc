// Copyright 2026 The mp Authors.

#include "sync/shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
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

  const int empty = memfd_create("empty", MFD_CLOEXEC);
  ASSERT_GE(empty, 0);
  absl::Status too_small = ShmSegment::Attach(empty).status();
  EXPECT_EQ(too_small.code(), absl::StatusCode::kInvalidArgument) << too_small;
  ASSERT_EQ(ftruncate(empty, 4096), 0);
  absl::Status no_magic = ShmSegment::Attach(empty).status();
  EXPECT_EQ(no_magic.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_magic.message().find("does not hold an mp segment"), std::string::npos) << no_magic;
  close(empty);
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
  EXPECT_EQ(seg->CheckBlock(*off, 128, 0x1234, "Thing").code(),
            absl::StatusCode::kInvalidArgument);
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
