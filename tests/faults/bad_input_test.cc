// Copyright 2026 The mp Authors.
//
// Bad sizes and bad handles given to every public call of mp that takes one: each is a clear status
// (the code the header documents, a message naming the value), never a crash, a huge allocation or
// a hang; and the object is still usable (or, where the header says so, cleanly closed) afterwards.

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "channels/connection.h"
#include "channels/queue.h"
#include "channels/test_transports.h"
#include "gtest/gtest.h"
#include "serialize/frame.h"
#include "sync/barrier.h"
#include "sync/condition.h"
#include "sync/event.h"
#include "sync/lock.h"
#include "sync/rlock.h"
#include "sync/semaphore.h"
#include "sync/shm.h"
#include "tests/faults/fault_util.h"

namespace mp::faults {
namespace {

constexpr size_t kHugeSize = std::numeric_limits<size_t>::max();

// `status` has `code` and its message contains `needle` (the offending value, usually).
::testing::AssertionResult Is(const absl::Status& status, absl::StatusCode code,
                              absl::string_view needle = "") {
  if (status.code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << absl::StatusCodeToString(code) << ", got " << status;
  }
  if (status.message().find(needle) == absl::string_view::npos) {
    return ::testing::AssertionFailure() << "message does not name '" << needle << "': " << status;
  }
  return ::testing::AssertionSuccess();
}
constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override { before_ = FdSnapshot::Take(); }
  void TearDown() override {
    const FdSnapshot after = FdSnapshot::Take();
    EXPECT_EQ(after, before_) << after.DiffFrom(before_);
    EXPECT_EQ(SegmentMappings(), 0) << "mp segments still mapped";
    EXPECT_TRUE(NoChildren());
  }
  FdSnapshot before_;
};

// ---------------------------------------------------------------------------------------------------
// Connection: every bad input once per transport.

class BadConnectionInputTest : public BadInputTest,
                               public ::testing::WithParamInterface<ConnectionTransport> {
 protected:
  absl::StatusOr<std::pair<Connection, Connection>> MakePipe() const {
    return mp::Pipe(/*duplex=*/true, GetParam());
  }
};
INSTANTIATE_TEST_SUITE_P(Transports, BadConnectionInputTest, ::mp::testing::AllTransports(),
                         ::mp::testing::TransportParamName());

TEST_P(BadConnectionInputTest, SendBytesOffsetAndSize) {
  absl::StatusOr<std::pair<Connection, Connection>> p = MakePipe();
  ASSERT_TRUE(p.ok());
  const std::string buf = "0123456789";
  const absl::Span<const uint8_t> bytes = AsBytes(buf);
  EXPECT_TRUE(Is(p->first.SendBytes(bytes, 11), kInvalid, "offset 11"));
  EXPECT_TRUE(Is(p->first.SendBytes(bytes, kHugeSize), kInvalid, "past the end"));
  EXPECT_TRUE(Is(p->first.SendBytes(bytes, 4, 7), kInvalid, "size 7"));
  // offset + size overflows size_t: must still be refused, not wrap around.
  EXPECT_TRUE(Is(p->first.SendBytes(bytes, 5, kHugeSize - 2), kInvalid, "past the end"));
  EXPECT_TRUE(Is(p->first.SendBytes(bytes, 10, 1), kInvalid, "past the end"));
  // Edge cases that are fine: an empty tail, and everything.
  EXPECT_TRUE(p->first.SendBytes(bytes, 10, 0).ok());
  EXPECT_TRUE(p->first.SendBytes(bytes, 3).ok());
  // Nothing bad was sent: the peer gets exactly the two good messages.
  absl::StatusOr<std::string> a = p->second.RecvBytes();
  absl::StatusOr<std::string> b = p->second.RecvBytes();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, "");
  EXPECT_EQ(*b, "3456789");
}

TEST_P(BadConnectionInputTest, SendAboveMaxMessageSizeIsRefusedAndUsable) {
  absl::StatusOr<std::pair<Connection, Connection>> p = MakePipe();
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->first.set_max_message_size(16).ok());
  EXPECT_TRUE(Is(p->first.SendBytes(std::string(17, 'x')), kInvalid, "17"));
  EXPECT_TRUE(Is(p->first.Send(std::string(100, 'x')), kInvalid, "max message size"));
  EXPECT_TRUE(p->first.SendBytes(std::string(16, 'y')).ok());
  absl::StatusOr<std::string> got = p->second.RecvBytes();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::string(16, 'y'));
}

TEST_P(BadConnectionInputTest, SetMaxMessageSize) {
  absl::StatusOr<std::pair<Connection, Connection>> p = MakePipe();
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(Is(p->first.set_max_message_size(0), kInvalid, "0"));
  EXPECT_TRUE(Is(p->first.set_max_message_size(size_t{1} << 32), kInvalid, "4294967296"));
  EXPECT_TRUE(Is(p->first.set_max_message_size(kHugeSize), kInvalid, ""));
  EXPECT_EQ(p->first.max_message_size(), kDefaultMaxMessageSize);
}

TEST_P(BadConnectionInputTest, RecvBytesMaxlengthClosesAsDocumented) {
  absl::StatusOr<std::pair<Connection, Connection>> p = MakePipe();
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->first.SendBytes(std::string()).ok());
  ASSERT_TRUE(p->first.SendBytes(std::string("abc")).ok());
  // maxlength 0 accepts the empty message.
  absl::StatusOr<std::string> empty = p->second.RecvBytes(0);
  ASSERT_TRUE(empty.ok()) << empty.status();
  // A longer message than maxlength: kInvalidArgument, connection closed (CPython's behaviour).
  EXPECT_TRUE(Is(p->second.RecvBytes(2).status(), kInvalid, "maxlength 2"));
  EXPECT_TRUE(p->second.closed());
  EXPECT_TRUE(Is(p->second.RecvBytes().status(), absl::StatusCode::kFailedPrecondition));
}

TEST_P(BadConnectionInputTest, RecvBytesIntoOffsetAndShortBuffer) {
  absl::StatusOr<std::pair<Connection, Connection>> p = MakePipe();
  ASSERT_TRUE(p.ok());
  std::vector<uint8_t> buf(4);
  EXPECT_TRUE(Is(p->second.RecvBytesInto(absl::MakeSpan(buf), 5).status(), kInvalid, "offset 5"));
  EXPECT_TRUE(Is(p->second.RecvBytesInto(absl::MakeSpan(buf), kHugeSize).status(), kInvalid, ""));
  // The bad offset consumed nothing and did not close the connection.
  ASSERT_FALSE(p->second.closed());
  ASSERT_TRUE(p->first.SendBytes(std::string("hello")).ok());
  ASSERT_TRUE(p->first.SendBytes(std::string("ok")).ok());
  std::string whole;
  EXPECT_TRUE(Is(p->second.RecvBytesInto(absl::MakeSpan(buf), 1, &whole).status(),
                 absl::StatusCode::kResourceExhausted, "5 bytes"));
  EXPECT_EQ(whole, "hello");
  absl::StatusOr<size_t> n = p->second.RecvBytesInto(absl::MakeSpan(buf), 2);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(buf[2], 'o');
  EXPECT_EQ(buf[3], 'k');
}

// Descriptors that cannot be sent are refused before anything is sent: the stream stays usable.
TEST_P(BadConnectionInputTest, DescriptorsThatCannotBeSent) {
  absl::StatusOr<std::pair<Connection, Connection>> p = MakePipe();
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(Is(p->first.SendFd(-1), kInvalid, "-1"));
  const int gone = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(gone, 0);
  close(gone);  // a number that is not an open descriptor
  EXPECT_TRUE(Is(p->first.SendFd(gone), kInvalid, "not open"));
  EXPECT_FALSE(p->first.closed());
  ASSERT_TRUE(p->first.SendBytes(std::string("after")).ok());
  absl::StatusOr<std::string> got = p->second.RecvBytes();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "after");
  // A write-only end is nothing to wait for.
  absl::StatusOr<std::pair<Connection, Connection>> one_way = mp::Pipe(/*duplex=*/false, GetParam());
  ASSERT_TRUE(one_way.ok());
  EXPECT_TRUE(Is(mp::Wait({Waitable(one_way->second)}, absl::ZeroDuration()).status(), kInvalid,
                 "write-only"));
}

TEST_F(BadInputTest, FromFdAndWaitRefuseBadDescriptors) {
  EXPECT_TRUE(Is(Connection::FromFd(-1).status(), kInvalid, "-1"));
  const int file = memfd_create("not-a-socket", MFD_CLOEXEC);
  ASSERT_GE(file, 0);
  absl::StatusOr<Connection> c = Connection::FromFd(file);
  EXPECT_TRUE(Is(c.status(), kInvalid));
  if (!c.ok()) close(file);  // refused: still ours
  EXPECT_TRUE(Is(mp::Wait({Waitable(-5)}, absl::ZeroDuration()).status(), kInvalid, "-5"));
  Connection closed;
  EXPECT_TRUE(Is(mp::Wait({Waitable(closed)}, absl::ZeroDuration()).status(), kInvalid, "closed"));
}

TEST_P(BadConnectionInputTest, PollWithNegativeTimeoutDoesNotBlock) {
  absl::StatusOr<std::pair<Connection, Connection>> p = MakePipe();
  ASSERT_TRUE(p.ok());
  absl::StatusOr<bool> r = p->first.Poll(-absl::Seconds(5));
  // Either refused or treated as "do not wait"; never a 5 s (or endless) wait.
  if (r.ok()) {
    EXPECT_FALSE(*r);
  } else {
    EXPECT_TRUE(Is(r.status(), kInvalid));
  }
}

// ---------------------------------------------------------------------------------------------------
// Queue.

TEST_F(BadInputTest, QueueOptions) {
  EXPECT_TRUE(Is(Queue::Create({.maxsize = size_t{1} << 24}).status(), kInvalid, "16777216"));
  EXPECT_TRUE(Is(Queue::Create({.maxsize = kHugeSize}).status(), kInvalid, ""));
  EXPECT_TRUE(Is(Queue::Create({.capacity_bytes = (size_t{4} << 30) + 1}).status(), kInvalid, ""));
  EXPECT_TRUE(Is(Queue::Create({.capacity_bytes = kHugeSize}).status(), kInvalid, ""));
  EXPECT_TRUE(Is(Queue::Create({.max_item_size = 0}).status(), kInvalid, ""));
  EXPECT_TRUE(Is(Queue::Create({.max_item_size = size_t{1} << 32}).status(), kInvalid, ""));
  EXPECT_TRUE(Is(Queue::Create({.domain = static_cast<ShmDomain>(9)}).status(), kInvalid, ""));
  // Small capacities are rounded up, not refused.
  absl::StatusOr<Queue> tiny = Queue::Create({.capacity_bytes = 0});
  ASSERT_TRUE(tiny.ok()) << tiny.status();
  EXPECT_GE(tiny->capacity_bytes(), 4096u);
}

TEST_F(BadInputTest, QueuePutGetArguments) {
  absl::StatusOr<Queue> q = Queue::Create({.capacity_bytes = 4096, .max_item_size = 100});
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(Is(q->Put(std::string(200, 'x')), kInvalid, "100"));
  EXPECT_TRUE(Is(q->Put(1, true, -absl::Seconds(1)), kInvalid));
  EXPECT_TRUE(Is(q->Put(1, false, absl::Seconds(1)), kInvalid));
  EXPECT_TRUE(Is(q->Get<int>(true, -absl::Seconds(1)).status(), kInvalid));
  EXPECT_TRUE(Is(q->Get<int>(false, absl::Seconds(1)).status(), kInvalid));
  // Nothing was put by the refused calls; the queue works.
  EXPECT_EQ(q->Qsize(), 0u);
  ASSERT_TRUE(q->Put(std::string("fine")).ok());
  // Wrong type: kInvalidArgument naming both, the item consumed, the queue usable.
  EXPECT_TRUE(Is(q->Get<int32_t>(false).status(), kInvalid, "str"));
  EXPECT_TRUE(q->Empty());
  ASSERT_TRUE(q->Put(int32_t{7}).ok());
  absl::StatusOr<int32_t> seven = q->Get<int32_t>(false);
  ASSERT_TRUE(seven.ok());
  EXPECT_EQ(*seven, 7);
}

TEST_F(BadInputTest, JoinableQueueTaskDoneTooManyTimes) {
  absl::StatusOr<JoinableQueue> q = JoinableQueue::Create();
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(Is(q->TaskDone(), absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(Is(q->Join(-absl::Seconds(1)), kInvalid));
}

// ---------------------------------------------------------------------------------------------------
// Shared memory and the primitives.

TEST_F(BadInputTest, ShmSegmentCreateSizes) {
  EXPECT_TRUE(Is(ShmSegment::Create(ShmDomain::kFork, 0).status(), kInvalid, "got 0"));
  EXPECT_TRUE(Is(ShmSegment::Create(ShmDomain::kTransferable, kShmMaxSize + 1).status(), kInvalid,
                 absl::StrCat(kShmMaxSize + 1)));
  EXPECT_TRUE(Is(ShmSegment::Create(ShmDomain::kFork, kHugeSize).status(), kInvalid, ""));
  // Overflow of header + capacity rounding must not wrap to a small mapping.
  EXPECT_TRUE(Is(ShmSegment::Create(ShmDomain::kFork, kHugeSize - 10).status(), kInvalid, ""));
  EXPECT_TRUE(Is(ShmSegment::Create(static_cast<ShmDomain>(0), 4096).status(), kInvalid, ""));
}

TEST_F(BadInputTest, ShmSegmentAllocateAndAttach) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kTransferable, 4096);
  ASSERT_TRUE(seg.ok());
  EXPECT_TRUE(Is(seg->Allocate(0).status(), kInvalid));
  EXPECT_TRUE(Is(seg->Allocate(kHugeSize).status(), absl::StatusCode::kResourceExhausted));
  EXPECT_TRUE(Is(seg->Allocate(kHugeSize - 62).status(), absl::StatusCode::kResourceExhausted));
  EXPECT_TRUE(Is(seg->Allocate(size_t{1} << 20).status(), absl::StatusCode::kResourceExhausted));
  EXPECT_TRUE(seg->Allocate(64).ok());  // still usable
  EXPECT_TRUE(Is(ShmSegment::Attach(-1).status(), kInvalid, "-1"));
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  EXPECT_TRUE(Is(ShmSegment::Attach(pipe_fds[0]).status(), kInvalid));
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  // A memfd that is not an mp segment: garbage header.
  const int memfd = memfd_create("garbage", MFD_CLOEXEC);
  ASSERT_GE(memfd, 0);
  ASSERT_EQ(ftruncate(memfd, 8192), 0);
  const std::string junk(64, '\x5a');
  ASSERT_EQ(pwrite(memfd, junk.data(), junk.size(), 0), 64);
  EXPECT_TRUE(Is(ShmSegment::Attach(memfd).status(), kInvalid));
  close(memfd);
}

TEST_F(BadInputTest, FromHandleWithGarbageOffsets) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 8192);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<Lock> lock = Lock::Create(*seg);
  ASSERT_TRUE(lock.ok());
  const uint64_t good = lock->handle().offset;
  for (uint64_t offset :
       {uint64_t{0}, good + 1, good + 64, uint64_t{1} << 40, std::numeric_limits<uint64_t>::max(),
        std::numeric_limits<uint64_t>::max() - 63}) {
    SCOPED_TRACE(offset);
    EXPECT_TRUE(Is(Lock::FromHandle({*seg, offset}).status(), kInvalid));
    EXPECT_TRUE(Is(RLock::FromHandle({*seg, offset}).status(), kInvalid));
    EXPECT_TRUE(Is(Semaphore::FromHandle({*seg, offset}).status(), kInvalid));
    EXPECT_TRUE(Is(Event::FromHandle({*seg, offset}).status(), kInvalid));
    EXPECT_TRUE(Is(Condition::FromHandle({*seg, offset}).status(), kInvalid));
    EXPECT_TRUE(Is(Barrier::FromHandle({*seg, offset}).status(), kInvalid));
    EXPECT_TRUE(Is(Queue::FromHandle({*seg, offset}).status(), kInvalid));
  }
  // The wrong kind at a good offset.
  EXPECT_TRUE(Is(Semaphore::FromHandle({*seg, good}).status(), kInvalid));
  EXPECT_TRUE(Is(Queue::FromHandle({*seg, good}).status(), kInvalid));
  // An empty segment (ShmSegment(), a decode target's state): known_bugs_test, bug 3 (fixed).
  EXPECT_TRUE(Is(Lock::FromHandle({ShmSegment(), 64}).status(), kInvalid));
  EXPECT_TRUE(Is(Queue::FromHandle({ShmSegment(), 64}).status(), kInvalid));
}

TEST_F(BadInputTest, SemaphoreValues) {
  for (int64_t v : {int64_t{-1}, std::numeric_limits<int64_t>::min(), kSemaphoreMax + 1,
                    std::numeric_limits<int64_t>::max()}) {
    SCOPED_TRACE(v);
    EXPECT_TRUE(Is(Semaphore::Create(ShmDomain::kFork, v).status(), kInvalid, absl::StrCat(v)));
    EXPECT_TRUE(Is(BoundedSemaphore::Create(ShmDomain::kFork, v).status(), kInvalid));
  }
  absl::StatusOr<Semaphore> zero = Semaphore::Create(ShmDomain::kFork, 0);
  ASSERT_TRUE(zero.ok());
  absl::StatusOr<bool> got = zero->Acquire(false);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(*got);
  EXPECT_TRUE(Is(zero->Acquire(true, -absl::Seconds(1)).status(), kInvalid));
  absl::StatusOr<Semaphore> max = Semaphore::Create(ShmDomain::kFork, kSemaphoreMax);
  ASSERT_TRUE(max.ok());
  EXPECT_TRUE(Is(max->Release(), absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(max->GetValue(), kSemaphoreMax);
}

TEST_F(BadInputTest, BarrierParties) {
  for (int parties : {0, -1, std::numeric_limits<int>::min()}) {
    SCOPED_TRACE(parties);
    EXPECT_TRUE(
        Is(Barrier::Create(ShmDomain::kFork, parties).status(), kInvalid, absl::StrCat(parties)));
  }
  EXPECT_TRUE(
      Is(Barrier::Create(ShmDomain::kFork, 2, nullptr, -absl::Seconds(1)).status(), kInvalid));
  absl::StatusOr<Barrier> one = Barrier::Create(ShmDomain::kFork, 1);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(Is(one->Wait(-absl::Seconds(1)).status(), kInvalid));
  absl::StatusOr<int> index = one->Wait(absl::Seconds(5));
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(*index, 0);
  // A huge party count is either refused or a valid barrier that a lone waiter times out on.
  absl::StatusOr<Barrier> huge = Barrier::Create(ShmDomain::kFork, std::numeric_limits<int>::max());
  if (huge.ok()) {
    EXPECT_TRUE(Is(huge->Wait(absl::ZeroDuration()).status(), absl::StatusCode::kAborted));
  } else {
    EXPECT_TRUE(Is(huge.status(), kInvalid));
  }
}

TEST_F(BadInputTest, LockConditionEventArguments) {
  absl::StatusOr<Lock> lock = Lock::Create(ShmDomain::kFork);
  ASSERT_TRUE(lock.ok());
  EXPECT_TRUE(Is(lock->Acquire(true, -absl::Seconds(1)).status(), kInvalid));
  EXPECT_TRUE(Is(lock->Acquire(false, absl::Seconds(1)).status(), kInvalid));
  EXPECT_TRUE(Is(lock->Release(), absl::StatusCode::kFailedPrecondition));
  absl::StatusOr<Condition> cond = Condition::Create(*lock);
  ASSERT_TRUE(cond.ok());
  EXPECT_TRUE(Is(cond->Wait(absl::Seconds(1)).status(), absl::StatusCode::kFailedPrecondition));
  ASSERT_TRUE(cond->Acquire().ok());
  EXPECT_TRUE(Is(cond->Notify(-1), kInvalid));
  EXPECT_TRUE(Is(cond->Wait(-absl::Seconds(1)).status(), kInvalid));
  EXPECT_TRUE(cond->Notify(std::numeric_limits<int>::max()).ok());  // no waiters: wakes none
  ASSERT_TRUE(cond->Release().ok());
  absl::StatusOr<Event> event = Event::Create(ShmDomain::kFork);
  ASSERT_TRUE(event.ok());
  EXPECT_TRUE(Is(event->Wait(-absl::Seconds(1)).status(), kInvalid));
}

}  // namespace
}  // namespace mp::faults
