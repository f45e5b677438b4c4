// Copyright 2026 The mp Authors.
//
// Shared objects crossing a process boundary as bytes + descriptors (sync/shm.h ShmObjectCodec):
// a transferable object decodes, from the descriptors that arrived, into a handle on the same
// shared state; a fork-domain object notes itself as fork-only and cannot be decoded elsewhere.

#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "serialize/codec.h"
#include "serialize/fd.h"
#include "sync/barrier.h"
#include "sync/condition.h"
#include "sync/event.h"
#include "sync/lock.h"
#include "sync/rlock.h"
#include "sync/semaphore.h"
#include "sync/shm.h"

namespace mp {
namespace {

// Encodes `v` with a table, then decodes it from duplicates of the descriptors, as a transport that
// moves descriptors to another process would.
template <typename T>
absl::StatusOr<T> Carry(const T& v, std::vector<std::string>* fork_only = nullptr) {
  FdTable sent;
  std::string bytes;
  {
    ScopedFdTable scope(&sent);
    bytes = Encode(v);
  }
  if (fork_only != nullptr) *fork_only = sent.fork_only();
  std::vector<int> dups;
  for (int fd : sent.fds()) dups.push_back(::dup(fd));
  FdTable received(std::move(dups));
  ScopedFdTable scope(&received);
  return Decode<T>(bytes);
}

TEST(ShmObjectCodec, TransferableObjectsArriveAsTheSameSharedState) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kTransferable);
  ASSERT_TRUE(lock.ok());
  absl::StatusOr<Lock> other = Carry(*lock);
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(*lock->Acquire());
  EXPECT_TRUE(other->Locked());
  EXPECT_TRUE(other->Release().ok());
  EXPECT_FALSE(lock->Locked());

  absl::StatusOr<Event> event = Event::Create(ShmDomain::kTransferable);
  absl::StatusOr<Event> event2 = Carry(*event);
  ASSERT_TRUE(event2.ok()) << event2.status();
  event->Set();
  EXPECT_TRUE(event2->IsSet());

  absl::StatusOr<Semaphore> sem = Semaphore::Create(ShmDomain::kTransferable, 3);
  absl::StatusOr<Semaphore> sem2 = Carry(*sem);
  ASSERT_TRUE(sem2.ok()) << sem2.status();
  ASSERT_TRUE(*sem->Acquire());
  EXPECT_EQ(sem2->GetValue(), 2);

  absl::StatusOr<BoundedSemaphore> bsem = BoundedSemaphore::Create(ShmDomain::kTransferable, 1);
  EXPECT_TRUE(Carry(*bsem).ok());
  absl::StatusOr<RLock> rlock = RLock::Create(ShmDomain::kTransferable);
  EXPECT_TRUE(Carry(*rlock).ok());
  absl::StatusOr<Condition> cond = Condition::Create(ShmDomain::kTransferable);
  EXPECT_TRUE(Carry(*cond).ok());
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kTransferable, 3);
  absl::StatusOr<Barrier> barrier2 = Carry(*barrier);
  ASSERT_TRUE(barrier2.ok()) << barrier2.status();
  EXPECT_EQ(barrier2->Parties(), 3);
}

TEST(ShmObjectCodec, ObjectsSharingASegmentShareOneDescriptor) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kTransferable, 4096);
  ASSERT_TRUE(seg.ok());
  std::vector<Lock> locks = {*Lock::Create(*seg), *Lock::Create(*seg)};
  FdTable sent;
  ScopedFdTable scope(&sent);
  Encode(locks);
  EXPECT_EQ(sent.size(), 1u);
}

TEST(ShmObjectCodec, ForkDomainObjectsNoteThemselvesAndCannotBeDecoded) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok());
  std::vector<std::string> fork_only;
  absl::StatusOr<Lock> other = Carry(*lock, &fork_only);
  EXPECT_EQ(fork_only, std::vector<std::string>{"Lock"});
  ASSERT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(
      absl::StrContains(other.status().message(), "a Lock arrived without its shared memory"))
      << other.status();

  std::vector<std::string> notes;
  absl::StatusOr<Barrier> barrier = Barrier::Create(ShmDomain::kFork, 2);
  EXPECT_FALSE(Carry(*barrier, &notes).ok());
  EXPECT_EQ(notes, std::vector<std::string>{"Barrier"});
}

TEST(ShmObjectCodec, GarbageHandlesAreRefused) {
  absl::StatusOr<Event> event = Event::Create(ShmDomain::kTransferable);
  ASSERT_TRUE(event.ok());
  // Point the handle at an offset that holds no Event.
  ShmHandle bad = event->handle();
  bad.offset += 64;
  FdTable sent;
  std::string bytes;
  {
    ScopedFdTable scope(&sent);
    bytes = Encode(bad);
  }
  FdTable received(std::vector<int>{::dup(sent.fds()[0])});
  ScopedFdTable scope(&received);
  absl::StatusOr<Event> decoded = Decode<Event>(bytes);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << decoded.status();
  // A descriptor that is not a segment at all.
  FdTable not_shm(std::vector<int>{::dup(STDERR_FILENO)});
  ScopedFdTable scope2(&not_shm);
  EXPECT_FALSE(Decode<Event>(bytes).ok());
}

TEST(ShmObjectCodec, EmptyObjectsAreOnlyDecodeTargets) {
  Lock empty;
  EXPECT_EQ(empty.domain(), ShmDomain::kFork);
  EXPECT_FALSE(empty.handle().segment.valid());
  absl::StatusOr<Lock> real = Lock::Create(ShmDomain::kTransferable);
  empty = *real;
  EXPECT_TRUE(empty.handle().segment.valid());
}

}  // namespace
}  // namespace mp
