// Copyright 2026 The mp Authors.
//
// Queue against a hostile or broken peer: another process that maps the same segment and writes its
// shared words and ring records directly, bypassing Put and Get. Whatever it writes, this process's
// Put and Get stay inside their own mapping and bounded memory and return a status naming what was
// wrong; none of these tests may crash or hang.

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "channels/queue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sync/futex.h"
#include "sync/test_child.h"

namespace mp {
namespace {

using ::mp::testing::TestChild;
using queue_internal::kCountMask;
using queue_internal::kPosBits;
using queue_internal::kRecordHeaderSize;
using queue_internal::kScratchKeepBytes;
using queue_internal::kSharedSize;
using queue_internal::ScratchCapacityForTesting;
using queue_internal::Shared;
using ::testing::HasSubstr;

// The record layout (queue.h's queue_internal), written here the way a peer would.
using queue_internal::kFirst;
using queue_internal::kLast;
using queue_internal::kMiddle;
using queue_internal::kWhole;
using queue_internal::RecordMeta;
using queue_internal::WriteRecordHeader;
using ring::Align8;

Queue MakeQueue(QueueOptions options) {
  absl::StatusOr<Queue> q = Queue::Create(options);
  EXPECT_TRUE(q.ok()) << q.status();
  return *std::move(q);
}

// The queue's shared header and ring as a peer mapping the same segment sees them.
Shared* SharedOf(const Queue& q) {
  return static_cast<Shared*>(q.handle().segment.At(q.handle().offset));
}
uint8_t* RingOf(const Queue& q) { return reinterpret_cast<uint8_t*>(SharedOf(q)) + kSharedSize; }

uint64_t Word(uint64_t pos, uint64_t count) { return count << kPosBits | pos; }
uint64_t PosOf(uint64_t word) { return word & ((uint64_t{1} << kPosBits) - 1); }

// ---- Configuration words ------------------------------------------------------------------------

// The configuration is read once, when a handle is made: a peer that rewrites it later (capacity
// 2^32 over a 64 KiB ring, no item limit, a larger max_item_size) changes nothing for open handles,
// and Puts keep writing inside the 64 KiB ring.
TEST(QueueHostileTest, ConfigRewrittenAfterOpenIsIgnored) {
  constexpr size_t kCap = 64 << 10;
  Queue q = MakeQueue({.maxsize = 4, .capacity_bytes = kCap, .max_item_size = 256 << 10});
  absl::StatusOr<Queue> peer = Queue::FromHandle(q.handle());
  ASSERT_TRUE(peer.ok()) << peer.status();
  Shared* s = SharedOf(q);
  s->capacity = uint64_t{1} << 32;
  s->maxsize = kCountMask;
  s->max_item_size = 0xffffffff;
  s->version = 77;

  EXPECT_EQ(q.capacity_bytes(), kCap);
  EXPECT_EQ(q.maxsize(), 4u);
  EXPECT_EQ(q.max_item_size(), size_t{256} << 10);
  // Each item moves tail by about 4 KiB: 200 of them go round the ring a dozen times. Trusting the
  // rewritten capacity, they would be written up to 800 KiB past the ring's start.
  std::string item(4000, 'x');
  for (int i = 0; i < 200; ++i) {
    item[0] = static_cast<char>(i);
    ASSERT_TRUE(q.Put(item).ok()) << i;
    absl::StatusOr<std::string> got = peer->Get<std::string>(true, absl::Seconds(10));
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(*got, item) << i;
  }
  // The item limit and the item size limit are the creator's.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(q.PutNoWait(i).ok()) << i;
  EXPECT_EQ(q.PutNoWait(4).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(q.Full());
  absl::Status too_big = q.Put(std::string(300 << 10, 'y'), true, absl::Seconds(1));
  EXPECT_EQ(too_big.code(), absl::StatusCode::kInvalidArgument) << too_big;
  EXPECT_THAT(too_big.message(), HasSubstr("exceeds max_item_size 262144"));
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<int> got = peer->GetNoWait<int>();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, i);
  }
  // A copy of a handle keeps the snapshot; a new handle is refused.
  Queue copy = q;
  EXPECT_EQ(copy.capacity_bytes(), kCap);
  absl::StatusOr<Queue> reopened = Queue::FromHandle(q.handle());
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kInvalidArgument) << reopened.status();
}

// ---- Position and record words ------------------------------------------------------------------

constexpr size_t kSmallCap = 4096;

// A queue of kSmallCap bytes and maxsize 8 whose shared tail and head words are then overwritten.
Queue QueueWithWords(uint64_t tail, uint64_t head) {
  Queue q = MakeQueue({.maxsize = 8, .capacity_bytes = kSmallCap});
  SharedOf(q)->tail.store(tail);
  SharedOf(q)->head.store(head);
  return q;
}

void ExpectDataLoss(const absl::Status& status, absl::string_view names) {
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(), HasSubstr(names)) << status;
}

// A tail word off the 8-byte grid would put a record header across the ring's end (4 bytes past
// it); a head word off the grid would read one there.
TEST(QueueHostileTest, MisalignedPositionsAreDataLoss) {
  {
    Queue q = QueueWithWords(Word(kSmallCap - 4, 0), Word(kSmallCap - 4, 0));
    ExpectDataLoss(q.PutNoWait(1), "tail word");
    ExpectDataLoss(q.Put(1, true, absl::Seconds(1)), "tail word");
    ExpectDataLoss(q.GetNoWait<int>().status(), "head word");
  }
  {
    Queue q = QueueWithWords(Word(kSmallCap, 1), Word(kSmallCap - 4, 0));
    ExpectDataLoss(q.GetNoWait<int>().status(), "head word");
    ExpectDataLoss(q.Get<int>(true, absl::Seconds(1)).status(), "head word");
  }
}

// Tail and head more than a ring apart (in either order), or more items between them than maxsize:
// no Put or Get ever leaves the words like that.
TEST(QueueHostileTest, InconsistentPositionsAreDataLoss) {
  {
    Queue q = QueueWithWords(Word(3 * kSmallCap, 1), Word(0, 0));
    ExpectDataLoss(q.PutNoWait(1), "more than the 4096-byte ring");
    ExpectDataLoss(q.Put(1, true, absl::Seconds(1)), "more than the 4096-byte ring");
    ExpectDataLoss(q.GetNoWait<int>().status(), "more than the 4096-byte ring");
  }
  {
    // Head ahead of tail. (A Put reads head only when its cached copy shows no room: here the
    // cached 0 shows a full ring.)
    Queue q = QueueWithWords(Word(kSmallCap, 1), Word(kSmallCap + 64, 2));
    ExpectDataLoss(q.PutNoWait(1), "tail and head words");
    ExpectDataLoss(q.GetNoWait<int>().status(), "tail and head words");
  }
  {
    Queue q = QueueWithWords(Word(0, 100), Word(0, 0));
    ExpectDataLoss(q.PutNoWait(1), "100 items");
    ExpectDataLoss(q.Put(1, true, absl::Seconds(1)), "maxsize 8");
    ExpectDataLoss(q.GetNoWait<int>().status(), "100 items");
  }
}

// A record header whose length or kind no Put writes: longer than the bytes committed behind it
// (Get would decode bytes past tail and move head beyond tail), longer than the ring, or of an
// unknown kind.
TEST(QueueHostileTest, CorruptRecordHeadersAreDataLoss) {
  struct Case {
    uint32_t length;
    uint32_t kind;
    const char* names;
  };
  for (const Case& c : {Case{2000, kWhole, "length 2000"}, Case{0xfffffff0u, kWhole, "length"},
                        Case{8, 9, "kind 9"}, Case{2000, kFirst, "length 2000"}}) {
    SCOPED_TRACE(c.names);
    Queue q = MakeQueue({.maxsize = 8, .capacity_bytes = kSmallCap});
    ASSERT_TRUE(q.Put(uint32_t{7}).ok());
    WriteRecordHeader(RingOf(q), kSmallCap, 0, c.length, RecordMeta(c.kind, CurrentThreadId()));
    ExpectDataLoss(q.GetNoWait<uint32_t>().status(), c.names);
    ExpectDataLoss(q.Get<uint32_t>(true, absl::Seconds(1)).status(), c.names);
    EXPECT_EQ(q.Qsize(), 1u);  // nothing was taken
  }
}

// The batch calls check the same words and records. A corrupt record behind good ones stops a
// GetMany before it: the good items are returned, and the next call reports the record.
TEST(QueueHostileTest, BatchesCheckWordsAndRecords) {
  const std::vector<int> items = {1, 2};
  int out[4];
  {
    Queue q = QueueWithWords(Word(kSmallCap - 4, 0), Word(kSmallCap - 4, 0));
    ExpectDataLoss(q.PutMany(absl::Span<const int>(items), false), "tail word");
    ExpectDataLoss(q.GetMany(absl::Span<int>(out), false).status(), "head word");
  }
  {
    Queue q = QueueWithWords(Word(3 * kSmallCap, 1), Word(0, 0));
    ExpectDataLoss(q.GetMany(absl::Span<int>(out), true, absl::Seconds(1)).status(),
                   "more than the 4096-byte ring");
  }
  {
    Queue q = QueueWithWords(Word(0, 100), Word(0, 0));
    ExpectDataLoss(q.PutMany(absl::Span<const int>(items), true, absl::Seconds(1)), "100 items");
  }
  Queue q = MakeQueue({.maxsize = 8, .capacity_bytes = kSmallCap});
  ASSERT_TRUE(q.PutMany(absl::Span<const int>(std::vector<int>{1, 2, 3})).ok());
  // The third record (each is 8 + 16 + 4 bytes, padded to 32) claims 2000 bytes.
  WriteRecordHeader(RingOf(q), kSmallCap, 64, 2000, RecordMeta(kWhole, CurrentThreadId()));
  absl::StatusOr<size_t> n = q.GetMany(absl::Span<int>(out), false);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[1], 2);
  ExpectDataLoss(q.GetMany(absl::Span<int>(out), false).status(), "length 2000");
  EXPECT_EQ(q.Qsize(), 1u);  // the corrupt record was not taken
}

// ---- Chunked items beyond max_item_size ---------------------------------------------------------

// A peer writing raw chunk records, as the producer of an item larger than the ring does, holding
// the put side: a first chunk, then middle chunks up to `total` payload bytes, the final one a last
// chunk if `last` (without it the peer exits holding the put side, mid-item). Waits for room like a
// producer (space eventcount, futex), at most 60 s in all. Returns 0 when everything was written.
int WriteRawChunks(const Queue& q, uint64_t total, bool last) {
  Shared* s = SharedOf(q);
  uint8_t* ring = RingOf(q);
  const uint64_t cap = q.capacity_bytes();
  const pid_t tid = CurrentThreadId();
  if (!OwnerTryLock(s->put_lock, tid)) return 1;
  const Deadline deadline = Deadline::After(absl::Seconds(60));
  const uint64_t chunk = cap / 4 - kRecordHeaderSize;
  uint64_t t = s->tail.load();
  for (uint64_t sent = 0; sent < total;) {
    const uint64_t len = std::min(chunk, total - sent);
    const uint32_t kind = sent == 0 ? kFirst : last && sent + len == total ? kLast : kMiddle;
    const uint64_t record = Align8(kRecordHeaderSize + len);
    auto room = [&] { return cap - (PosOf(t) - PosOf(s->head.load())) >= record; };
    while (!room()) {
      const uint32_t seq = s->space_seq.load();
      s->space_waiters.store(1);
      s->get_lock.fetch_or(0);  // orders the flag against the consumer's unlock (see queue.cc)
      if (room()) break;
      if (deadline.Expired()) return 2;
      FutexWait(&s->space_seq, seq, deadline);
    }
    WriteRecordHeader(ring, cap, PosOf(t), static_cast<uint32_t>(len), RecordMeta(kind, tid));
    std::memset(ring + ((PosOf(t) + kRecordHeaderSize) & (cap - 1)), 0x5a, len);  // never wraps
    t = Word(PosOf(t) + record, (t >> kPosBits) + (kind == kLast ? 1 : 0));
    s->tail.store(t);
    if (s->data_waiters.exchange(0) != 0) {
      s->data_seq.fetch_add(1);
      FutexWake(&s->data_seq, kFutexWakeAll);
    }
    sent += len;
  }
  if (last) OwnerUnlock(s->put_lock);
  return 0;
}

constexpr size_t kChunkCap = 64 << 10;
constexpr size_t kMaxItem = 16 << 20;

// A peer sends 24 MiB of chunks for one item although max_item_size is 16 MiB. The Get assembling
// it refuses it once it would pass 16 MiB, naming both sizes, and its scratch buffer is given back;
// the next Get skips the item's remaining chunks (kDataLoss: that item is lost) and the queue goes
// on.
TEST(QueueHostileTest, ChunkedItemBeyondMaxItemSizeIsRefused) {
  Queue q = MakeQueue({.capacity_bytes = kChunkCap, .max_item_size = kMaxItem});
  TestChild writer([&] { return WriteRawChunks(q, 24 << 20, /*last=*/true); });
  absl::StatusOr<std::string> refused = q.Get<std::string>(true, absl::Seconds(60));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("above max_item_size 16777216"));
  EXPECT_LE(ScratchCapacityForTesting(), kScratchKeepBytes);
  absl::StatusOr<std::string> rest = q.Get<std::string>(true, absl::Seconds(60));
  EXPECT_EQ(rest.status().code(), absl::StatusCode::kDataLoss) << rest.status();
  EXPECT_THAT(rest.status().message(), HasSubstr("that item is lost"));
  EXPECT_LE(ScratchCapacityForTesting(), kScratchKeepBytes);
  EXPECT_EQ(writer.Wait(), 0);
  EXPECT_EQ(q.UsedBytes(), 0u);
  ASSERT_TRUE(q.Put(std::string("after")).ok());
  absl::StatusOr<std::string> after = q.GetNoWait<std::string>();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, "after");
}

// A peer sends a first chunk and then middle chunks without end (64 MiB here, 4 times
// max_item_size; a consumer without the limit takes them all). The Get refuses the item at
// max_item_size instead of growing with it; once the peer is gone, the next item arrives.
TEST(QueueHostileTest, EndlessChunkedItemIsRefusedAtMaxItemSize) {
  Queue q = MakeQueue({.capacity_bytes = kChunkCap, .max_item_size = kMaxItem});
  TestChild writer([&] { return WriteRawChunks(q, 64 << 20, /*last=*/false); });
  absl::StatusOr<std::string> refused = q.Get<std::string>(true, absl::Seconds(20));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("above max_item_size 16777216"));
  EXPECT_LE(ScratchCapacityForTesting(), kScratchKeepBytes);
  writer.Kill();
  writer.Wait();
  // A Get skips the peer's leftover chunks, which fill the ring; then the put side is taken over
  // from the dead peer and the next item goes through.
  EXPECT_EQ(q.GetNoWait<std::string>().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(q.UsedBytes(), 0u);
  absl::Status put = q.Put(std::string("next"), true, absl::Seconds(10));
  ASSERT_TRUE(put.ok()) << put;
  absl::StatusOr<std::string> next = q.Get<std::string>(true, absl::Seconds(10));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, "next");
  EXPECT_EQ(q.UsedBytes(), 0u);
}

// A legitimate item larger than kScratchKeepBytes: delivered intact, and neither the producer's nor
// the consumer's scratch buffer keeps its size afterwards.
TEST(QueueHostileTest, ScratchShrinksAfterALargeItem) {
  Queue q = MakeQueue({.capacity_bytes = kChunkCap, .max_item_size = kMaxItem});
  const std::string big(12 << 20, 'b');
  TestChild producer([&] {
    if (!q.Put(big, true, absl::Seconds(60)).ok()) return 1;
    return ScratchCapacityForTesting() <= kScratchKeepBytes ? 0 : 2;
  });
  absl::StatusOr<std::string> got = q.Get<std::string>(true, absl::Seconds(60));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == big);
  EXPECT_LE(ScratchCapacityForTesting(), kScratchKeepBytes);
  EXPECT_EQ(producer.Wait(), 0);
}

}  // namespace
}  // namespace mp
