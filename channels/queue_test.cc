// Copyright 2026 The mp Authors.

#include "channels/queue.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "channels/connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serialize/fd.h"
#include "sync/test_child.h"
#include "testing/proc_state.h"
#include "testing/sanitizers.h"

namespace mp {

struct Msg {
  uint32_t producer;
  uint32_t seq;
};
MP_FIELDS(Msg, producer, seq);

struct Blob {
  uint32_t seq;
  std::vector<uint8_t> bytes;
};
MP_FIELDS(Blob, seq, bytes);

struct WithFd {
  PassedFd fd;
};
MP_FIELDS(WithFd, fd);

namespace {

using ::mp::testing::TestChild;
using ::testing::HasSubstr;

Queue MakeQueue(QueueOptions options = {}) {
  absl::StatusOr<Queue> q = Queue::Create(options);
  EXPECT_TRUE(q.ok()) << q.status();
  return *std::move(q);
}

// Blob bytes follow a pattern of (seq % 64), so neighbouring items differ and a torn or mixed item
// is detected, while a producer can reuse 64 prebuilt blobs.
uint8_t BlobByte(uint32_t seq, size_t i) { return static_cast<uint8_t>((seq % 64) * 7 + i * 13); }

Blob MakeBlob(uint32_t seq, size_t size) {
  Blob b{seq, std::vector<uint8_t>(size)};
  for (size_t i = 0; i < size; ++i) b.bytes[i] = BlobByte(seq, i);
  return b;
}

bool BlobIntact(const Blob& b, size_t size) {
  if (b.bytes.size() != size) return false;
  for (size_t i = 0; i < size; ++i) {
    if (b.bytes[i] != BlobByte(b.seq, i)) return false;
  }
  return true;
}

// Zero-filled anonymous shared memory that children write results into.
template <typename T>
class SharedArray {
 public:
  explicit SharedArray(size_t n) : n_(n) {
    void* p =
        ::mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    data_ = p == MAP_FAILED ? nullptr : static_cast<T*>(p);
  }
  ~SharedArray() {
    if (data_ != nullptr) ::munmap(data_, n_ * sizeof(T));
  }
  T& operator[](size_t i) { return data_[i]; }
  bool ok() const { return data_ != nullptr; }

 private:
  size_t n_;
  T* data_;
};

TEST(QueueTest, TypedFifo) {
  Queue q = MakeQueue();
  ASSERT_TRUE(q.Put(int32_t{1}).ok());
  ASSERT_TRUE(q.Put(std::string("two")).ok());
  ASSERT_TRUE(q.Put(Msg{3, 4}).ok());
  EXPECT_EQ(q.Qsize(), 3u);
  EXPECT_EQ(*q.Get<int32_t>(), 1);
  EXPECT_EQ(*q.Get<std::string>(), "two");
  absl::StatusOr<Msg> m = q.Get<Msg>();
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->producer, 3u);
  EXPECT_EQ(m->seq, 4u);
  EXPECT_TRUE(q.Empty());
}

TEST(QueueTest, WrongTypeNamesBothAndConsumesTheItem) {
  Queue q = MakeQueue();
  ASSERT_TRUE(q.Put(std::vector<int32_t>{1, 2}).ok());
  ASSERT_TRUE(q.Put(std::string("next")).ok());
  absl::StatusOr<std::string> wrong = q.Get<std::string>();
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("vec<i32>"));
  EXPECT_THAT(wrong.status().message(), HasSubstr("'str' was asked for"));
  EXPECT_EQ(*q.Get<std::string>(), "next");
}

TEST(QueueTest, NonBlockingAndTimeouts) {
  Queue q = MakeQueue({.maxsize = 2});
  absl::StatusOr<int> empty = q.GetNoWait<int>();
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(q.Get<int>(true, absl::Milliseconds(20)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(q.PutNoWait(1).ok());
  ASSERT_TRUE(q.Put(2, true, absl::ZeroDuration()).ok());
  EXPECT_TRUE(q.Full());
  absl::Status full = q.PutNoWait(3);
  EXPECT_EQ(full.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(full.message(), HasSubstr("2 items, maxsize 2"));
  EXPECT_EQ(q.Put(3, true, absl::Milliseconds(20)).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(q.Put(3, true, absl::Seconds(-1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(q.Put(3, false, absl::Seconds(1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(q.Get<int>(false, absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*q.GetNoWait<int>(), 1);
  EXPECT_FALSE(q.Full());
  EXPECT_EQ(*q.Get<int>(true, absl::Seconds(30)), 2);
  EXPECT_EQ(q.maxsize(), 2u);
}

TEST(QueueTest, OptionsAreChecked) {
  EXPECT_EQ(Queue::Create({.maxsize = size_t{1} << 24}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Queue::Create({.capacity_bytes = (size_t{1} << 32) + 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Queue::Create({.max_item_size = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  Queue q = MakeQueue({.capacity_bytes = 5000});
  EXPECT_EQ(q.capacity_bytes(), 8192u);  // rounded up to a power of two
  EXPECT_EQ(MakeQueue({.capacity_bytes = 1}).capacity_bytes(), 4096u);
}

TEST(QueueTest, ByteCapacityBoundsTheRing) {
  Queue q = MakeQueue({.capacity_bytes = 4096});
  // Each 1000-byte vector takes 8 + 16 + 2 + 1000 -> 1032 bytes of ring: three fit in 4096.
  const std::vector<uint8_t> item(1000, 7);
  ASSERT_TRUE(q.PutNoWait(item).ok());
  ASSERT_TRUE(q.PutNoWait(item).ok());
  ASSERT_TRUE(q.PutNoWait(item).ok());
  absl::Status s = q.PutNoWait(item);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("3096 of 4096 ring bytes used"));
  EXPECT_EQ(q.Qsize(), 3u);
  ASSERT_TRUE(q.GetNoWait<std::vector<uint8_t>>().ok());
  EXPECT_TRUE(q.PutNoWait(item).ok());
}

TEST(QueueTest, WrapAroundKeepsEveryItemIntact) {
  Queue q = MakeQueue({.capacity_bytes = 4096});
  uint32_t put = 0, got = 0;
  for (int round = 0; round < 2000; ++round) {
    const size_t size = static_cast<size_t>(round * 97 % 700);
    while (!q.PutNoWait(MakeBlob(put, size)).ok()) {
      absl::StatusOr<Blob> b = q.GetNoWait<Blob>();
      ASSERT_TRUE(b.ok()) << b.status();
      ASSERT_EQ(b->seq, got);
      ASSERT_TRUE(BlobIntact(*b, static_cast<size_t>(got * 97 % 700)));
      ++got;
    }
    ++put;
  }
  while (got < put) {
    absl::StatusOr<Blob> b = q.GetNoWait<Blob>();
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_EQ(b->seq, got);
    ASSERT_TRUE(BlobIntact(*b, static_cast<size_t>(got * 97 % 700)));
    ++got;
  }
  EXPECT_TRUE(q.Empty());
}

TEST(QueueTest, ItemsLargerThanTheRingTravelInChunks) {
  Queue q = MakeQueue({.capacity_bytes = 4096, .max_item_size = 4 << 20});
  constexpr size_t kSize = 3 << 20;
  TestChild producer([&] {
    for (uint32_t i = 0; i < 3; ++i) {
      if (!q.Put(MakeBlob(i, kSize)).ok()) return 1;
      if (!q.Put(MakeBlob(100 + i, 10)).ok()) return 2;  // small items between large ones
    }
    return 0;
  });
  for (uint32_t i = 0; i < 3; ++i) {
    absl::StatusOr<Blob> b = q.Get<Blob>(true, absl::Seconds(60));
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(b->seq, i);
    EXPECT_TRUE(BlobIntact(*b, kSize));
    absl::StatusOr<Blob> small = q.Get<Blob>(true, absl::Seconds(60));
    ASSERT_TRUE(small.ok()) << small.status();
    EXPECT_EQ(small->seq, 100 + i);
  }
  EXPECT_EQ(producer.Wait(), 0);
  absl::Status too_big = q.Put(MakeBlob(0, 5 << 20));
  EXPECT_EQ(too_big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_big.message(), HasSubstr("exceeds max_item_size 4194304"));
  EXPECT_EQ(q.PutNoWait(MakeBlob(0, 8192)).code(), absl::StatusCode::kUnavailable);
  // A chunked Put that runs out of time mid-item leaves nothing a consumer could see.
  EXPECT_EQ(q.Put(MakeBlob(7, 64 << 10), true, absl::Milliseconds(20)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(q.Get<Blob>(true, absl::Milliseconds(20)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(q.Put(MakeBlob(8, 100)).ok());
  absl::StatusOr<Blob> after = q.GetNoWait<Blob>();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->seq, 8u);
}

TEST(QueueTest, CloseDrainsThenEndsEveryGet) {
  Queue q = MakeQueue();
  TestChild waiter([&] {
    // Blocks until the parent closes the (empty) queue.
    absl::StatusOr<int> r = q.Get<int>();
    return r.status().code() == absl::StatusCode::kOutOfRange ? 0 : 1;
  });
  // The child may or may not be asleep yet; either way Close ends its Get.
  q.Close();
  EXPECT_EQ(waiter.Wait(), 0);
  EXPECT_TRUE(q.closed());
  Queue q2 = MakeQueue();
  ASSERT_TRUE(q2.Put(5).ok());
  q2.Close();
  q2.Close();  // idempotent
  absl::Status put = q2.Put(6);
  EXPECT_EQ(put.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(put.message(), HasSubstr("closed"));
  EXPECT_EQ(*q2.Get<int>(), 5);
  absl::StatusOr<int> end = q2.Get<int>();
  EXPECT_EQ(end.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(end.status().message(), HasSubstr("closed and empty"));
  EXPECT_EQ(q2.GetNoWait<int>().status().code(), absl::StatusCode::kOutOfRange);
}

TEST(QueueTest, BlockedPutAndGetAreWokenAcrossProcesses) {
  Queue q = MakeQueue({.maxsize = 1});
  TestChild child([&] {
    // Get wakes the parent's blocked Put; then the child blocks in Get until the parent puts again.
    for (int i = 0; i < 100; ++i) {
      absl::StatusOr<int> v = q.Get<int>(true, absl::Seconds(60));
      if (!v.ok() || *v != i) return 1;
    }
    return 0;
  });
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(q.Put(i, true, absl::Seconds(60)).ok());
  EXPECT_EQ(child.Wait(), 0);
}

TEST(QueueTest, QueueRefusesDescriptors) {
  Queue q = MakeQueue();
  absl::Status s = q.Put(WithFd{PassedFd{0}});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("cannot carry file descriptors"));
  EXPECT_TRUE(q.Empty());
}

// Which items skip the descriptor table (queue_internal::PlainItem): only those that cannot hold a
// PassedFd or a shared object.
static_assert(queue_internal::PlainItem<int>::value);
static_assert(queue_internal::PlainItem<std::string>::value);
static_assert(queue_internal::PlainItem<Msg>::value);
static_assert(queue_internal::PlainItem<Blob>::value);
static_assert(queue_internal::PlainItem<std::optional<std::array<int64_t, 4>>>::value);
static_assert(!queue_internal::PlainItem<std::optional<WithFd>>::value);
static_assert(queue_internal::PlainItem<std::pair<Msg, std::vector<std::string>>>::value);
static_assert(!queue_internal::PlainItem<PassedFd>::value);
static_assert(!queue_internal::PlainItem<WithFd>::value);
static_assert(!queue_internal::PlainItem<std::vector<WithFd>>::value);
static_assert(!queue_internal::PlainItem<std::tuple<int, WithFd>>::value);
static_assert(!queue_internal::PlainItem<Queue>::value);

TEST(QueueTest, DescriptorsInsideContainersAreRefusedToo) {
  Queue q = MakeQueue();
  EXPECT_EQ(q.Put(std::vector<WithFd>{WithFd{PassedFd{0}}}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(q.Put(std::make_pair(1, PassedFd{0})).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(q.Empty());
  // The refusal leaves nothing behind: the next items go through.
  ASSERT_TRUE(q.Put(std::vector<WithFd>{}).ok());
  ASSERT_TRUE(q.Put(Msg{1, 2}).ok());
  EXPECT_TRUE(q.Get<std::vector<WithFd>>()->empty());
  EXPECT_EQ(q.Get<Msg>()->seq, 2u);
}

// A fork-domain object inside an item could never be decoded (its handle has no descriptor): Put
// refuses it by name, every time, and the queue stays usable.
TEST(QueueTest, ForkDomainObjectsAreRefused) {
  Queue q = MakeQueue();
  Queue inner = MakeQueue({.capacity_bytes = 4096});
  for (int i = 0; i < 100; ++i) {
    absl::Status s = q.Put(std::make_pair(i, inner));
    ASSERT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(s.message(), HasSubstr("holds a Queue created by the 'fork' context"));
  }
  EXPECT_TRUE(q.Empty());
  ASSERT_TRUE(q.Put(7).ok());
  EXPECT_EQ(*q.Get<int>(), 7);
}

// Two processes hand one item back and forth, each sleeping in Get until the other's Put: a lost
// wake-up (a Put that commits while the other side is about to sleep and does not wake it) hangs.
TEST(QueueTest, PingPongNeverLosesAWakeUp) {
  Queue ping = MakeQueue({.capacity_bytes = 4096});
  Queue pong = MakeQueue({.maxsize = 1, .capacity_bytes = 4096});
  constexpr int kRounds = 5000;
  TestChild child([&] {
    for (int i = 0; i < kRounds; ++i) {
      absl::StatusOr<int> v = ping.Get<int>();
      if (!v.ok() || *v != i) return 1;
      if (!pong.Put(i).ok()) return 2;
    }
    return 0;
  });
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(ping.Put(i).ok());
    absl::StatusOr<int> v = pong.Get<int>(true, absl::Seconds(60));
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_EQ(*v, i);
  }
  EXPECT_EQ(child.Wait(), 0);
}

TEST(QueueTest, TransferableQueueTravelsOverAConnection) {
  Queue q = MakeQueue({.domain = ShmDomain::kTransferable});
  absl::StatusOr<std::pair<Connection, Connection>> pipe = Pipe();
  ASSERT_TRUE(pipe.ok());
  auto& [a, b] = *pipe;
  ASSERT_TRUE(a.Send(q).ok());
  absl::StatusOr<Queue> other = b.Recv<Queue>();
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(other->Put(std::string("through the copy")).ok());
  EXPECT_EQ(*q.Get<std::string>(), "through the copy");
  // A fork-domain queue carries no descriptor: sending it is refused with the reason.
  Queue fork_q = MakeQueue();
  absl::Status refused = a.Send(fork_q);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("holds a Queue created by the 'fork' context"));
  // And bytes that claim one anyway (encoded without a descriptor table) do not decode.
  ASSERT_TRUE(a.SendBytes(*EncodeFrame(fork_q)).ok());
  absl::StatusOr<Queue> undecodable = b.Recv<Queue>();
  EXPECT_EQ(undecodable.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(undecodable.status().message(),
              HasSubstr("a Queue arrived without its shared memory descriptor"));
  // Re-opening by handle, and a handle that is not a queue.
  absl::StatusOr<Queue> again = Queue::FromHandle(q.handle());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Queue::FromHandle({q.handle().segment, q.handle().offset + 64}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(QueueTest, ThreadsShareOneHandle) {
  Queue q = MakeQueue({.capacity_bytes = 8192});
  constexpr int kPerProducer = 20000;
  std::atomic<int64_t> sum{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < 2; ++p) {
    threads.emplace_back([&q] {
      for (int i = 1; i <= kPerProducer; ++i) ASSERT_TRUE(q.Put(i).ok());
      ASSERT_TRUE(q.Put(-1).ok());
    });
  }
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&q, &sum] {
      for (;;) {
        absl::StatusOr<int> v = q.Get<int>();
        ASSERT_TRUE(v.ok()) << v.status();
        if (*v < 0) return;
        sum.fetch_add(*v);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(sum.load(), 2 * int64_t{kPerProducer} * (kPerProducer + 1) / 2);
  EXPECT_TRUE(q.Empty());
}

TEST(QueueTest, ThreadsShareOneHandleWithChunkedItems) {
  Queue q = MakeQueue({.capacity_bytes = 4096});
  constexpr uint32_t kPerProducer = 200;
  constexpr size_t kBig = 10000;  // larger than the ring: every item travels in chunks
  std::atomic<int> received{0};
  std::vector<std::thread> threads;
  for (uint32_t p = 0; p < 2; ++p) {
    threads.emplace_back([&q, p] {
      for (uint32_t i = 0; i < kPerProducer; ++i) {
        ASSERT_TRUE(q.Put(MakeBlob(p * kPerProducer + i, kBig)).ok());
      }
    });
  }
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&q, &received] {
      for (;;) {
        absl::StatusOr<Blob> b = q.Get<Blob>();
        if (b.status().code() == absl::StatusCode::kOutOfRange) return;
        ASSERT_TRUE(b.ok()) << b.status();
        ASSERT_TRUE(BlobIntact(*b, kBig));
        received.fetch_add(1);
      }
    });
  }
  threads[0].join();
  threads[1].join();
  q.Close();
  threads[2].join();
  threads[3].join();
  EXPECT_EQ(received.load(), 2 * static_cast<int>(kPerProducer));
}

TEST(QueueTest, QueueKindsTravelAsTransferableHandles) {
  absl::StatusOr<JoinableQueue> jq = JoinableQueue::Create({.domain = ShmDomain::kTransferable});
  absl::StatusOr<SimpleQueue> sq = SimpleQueue::Create({.domain = ShmDomain::kTransferable});
  ASSERT_TRUE(jq.ok() && sq.ok());
  absl::StatusOr<std::pair<Connection, Connection>> pipe = Pipe();
  ASSERT_TRUE(pipe.ok());
  ASSERT_TRUE(pipe->first.Send(*jq).ok());
  ASSERT_TRUE(pipe->first.Send(*sq).ok());
  absl::StatusOr<JoinableQueue> jq2 = pipe->second.Recv<JoinableQueue>();
  absl::StatusOr<SimpleQueue> sq2 = pipe->second.Recv<SimpleQueue>();
  ASSERT_TRUE(jq2.ok()) << jq2.status();
  ASSERT_TRUE(sq2.ok()) << sq2.status();
  ASSERT_TRUE(jq2->Put(1).ok());
  EXPECT_EQ(*jq->Get<int>(), 1);
  ASSERT_TRUE(jq2->TaskDone().ok());
  EXPECT_TRUE(jq->Join(absl::ZeroDuration()).ok());
  ASSERT_TRUE(sq2->Put(std::string("s")).ok());
  EXPECT_EQ(*sq->Get<std::string>(), "s");
  absl::StatusOr<SimpleQueue> sq3 = SimpleQueue::FromHandle(sq->handle());
  ASSERT_TRUE(sq3.ok());
  EXPECT_TRUE(sq3->Empty());
}

TEST(SimpleQueueTest, PutGetEmptyClose) {
  absl::StatusOr<SimpleQueue> q = SimpleQueue::Create({.maxsize = 3});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->queue().maxsize(), 0u);
  EXPECT_TRUE(q->Empty());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(q->Put(i).ok());
  EXPECT_FALSE(q->Empty());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(*q->Get<int>(), i);
  q->Close();
  EXPECT_EQ(q->Get<int>().status().code(), absl::StatusCode::kOutOfRange);
}

TEST(JoinableQueueTest, TaskDoneAndJoin) {
  absl::StatusOr<JoinableQueue> q = JoinableQueue::Create();
  ASSERT_TRUE(q.ok());
  absl::Status extra = q->TaskDone();
  EXPECT_EQ(extra.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(extra.message(), HasSubstr("more times than items were put"));
  EXPECT_TRUE(q->Join(absl::ZeroDuration()).ok());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(q->Put(i).ok());
  EXPECT_EQ(q->Unfinished(), 50u);
  EXPECT_EQ(q->Join(absl::Milliseconds(10)).code(), absl::StatusCode::kDeadlineExceeded);
  TestChild worker([&] {
    for (int i = 0; i < 50; ++i) {
      absl::StatusOr<int> v = q->Get<int>();
      if (!v.ok() || *v != i) return 1;
      if (!q->TaskDone().ok()) return 2;
    }
    return 0;
  });
  EXPECT_TRUE(q->Join().ok());
  EXPECT_EQ(q->Unfinished(), 0u);
  EXPECT_EQ(worker.Wait(), 0);
  EXPECT_EQ(q->TaskDone().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(q->Join(absl::Seconds(-1)).code(), absl::StatusCode::kInvalidArgument);
}

// 4 producers x 4 consumers; every message delivered exactly once, FIFO per producer as seen by
// each consumer. 10^6 messages in the plain build; fewer under sanitizers (MP_QUEUE_STRESS_MESSAGES
// overrides).
size_t StressMessages() {
  if (const char* env = std::getenv("MP_QUEUE_STRESS_MESSAGES"))
    return std::strtoul(env, nullptr, 10);
#if defined(MP_TESTING_ASAN) || defined(MP_TESTING_TSAN)
  return 100'000;
#else
  return 1'000'000;
#endif
}

TEST(QueueStressTest, FourProducersFourConsumersExactlyOnce) {
  constexpr uint32_t kProducers = 4, kConsumers = 4;
  const uint32_t per_producer = static_cast<uint32_t>(StressMessages() / kProducers);
  Queue q = MakeQueue({.capacity_bytes = 64 << 10});
  SharedArray<std::atomic<uint8_t>> seen(size_t{kProducers} * per_producer);
  ASSERT_TRUE(seen.ok());
  std::vector<std::unique_ptr<TestChild>> consumers, producers;
  for (uint32_t c = 0; c < kConsumers; ++c) {
    consumers.push_back(std::make_unique<TestChild>([&] {
      std::vector<int64_t> last(kProducers, -1);
      for (;;) {
        absl::StatusOr<Msg> m = q.Get<Msg>();
        if (m.status().code() == absl::StatusCode::kOutOfRange) return 0;
        if (!m.ok()) return 1;
        if (m->producer >= kProducers || m->seq >= per_producer) return 2;
        if (static_cast<int64_t>(m->seq) <= last[m->producer]) return 3;  // FIFO per producer
        last[m->producer] = m->seq;
        seen[size_t{m->producer} * per_producer + m->seq].fetch_add(1, std::memory_order_relaxed);
      }
    }));
  }
  for (uint32_t p = 0; p < kProducers; ++p) {
    producers.push_back(std::make_unique<TestChild>([&, p] {
      for (uint32_t i = 0; i < per_producer; ++i) {
        if (!q.Put(Msg{p, i}).ok()) return 1;
      }
      return 0;
    }));
  }
  for (auto& p : producers) EXPECT_EQ(p->Wait(), 0);
  q.Close();
  for (auto& c : consumers) EXPECT_EQ(c->Wait(), 0);
  size_t missing = 0, duplicated = 0;
  for (size_t i = 0; i < size_t{kProducers} * per_producer; ++i) {
    const uint8_t n = seen[i].load();
    missing += n == 0;
    duplicated += n > 1;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(duplicated, 0u);
}

// Runs `produce` in a child, SIGKILLs it once the queue holds `target` items and reaps it. Returns
// whether it died holding the put side.
template <typename Produce>
bool KillProducerOnceQueued(Queue& q, size_t target, Produce produce) {
  TestChild producer(produce);
  while (q.Qsize() < target) {
  }
  producer.Kill();
  const pid_t child_pid = producer.pid();
  EXPECT_EQ(producer.Wait(), 128 + SIGKILL);
  return q.put_side_owner() == child_pid;
}

// After a producer died: the queue is drained, and its put side is taken over at once.
void ExpectEmptyAndPutSideTakenOver(Queue& q, int round) {
  ASSERT_EQ(q.GetNoWait<Blob>().status().code(), absl::StatusCode::kUnavailable)
      << "round " << round;
  ASSERT_TRUE(q.Put(MakeBlob(9999, 10), true, absl::Seconds(30)).ok()) << "round " << round;
  absl::StatusOr<Blob> after = q.GetNoWait<Blob>();
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->seq, 9999u);
}

// A producer SIGKILLed while putting: no torn item becomes visible, every committed item arrives
// exactly once and in order, and the next producer is not blocked.
TEST(QueueCrashTest, ProducerKilledMidPut) {
  constexpr int kRounds = 200;
  constexpr size_t kBlob = 16 << 10;
  Queue q = MakeQueue({.capacity_bytes = 2 << 20});
  int killed_holding_put_side = 0;
  for (int round = 0; round < kRounds; ++round) {
    const size_t target = 1 + static_cast<size_t>(round % 32);
    killed_holding_put_side += KillProducerOnceQueued(q, target, [&] {
      // Prebuilt items: the child spends its time inside Put, where the kill should land.
      std::vector<Blob> blobs;
      for (uint32_t i = 0; i < 64; ++i) blobs.push_back(MakeBlob(i, kBlob));
      for (uint32_t i = 0;; ++i) {
        Blob& b = blobs[i % 64];
        b.seq = i;
        if (!q.Put(b).ok()) return 1;
      }
    });
    const size_t committed = q.Qsize();
    ASSERT_GE(committed, target);
    for (uint32_t i = 0; i < committed; ++i) {
      absl::StatusOr<Blob> b = q.GetNoWait<Blob>();
      ASSERT_TRUE(b.ok()) << "round " << round << ": " << b.status();
      ASSERT_EQ(b->seq, i) << "round " << round;
      ASSERT_TRUE(BlobIntact(*b, kBlob)) << "round " << round;
    }
    ASSERT_NO_FATAL_FAILURE(ExpectEmptyAndPutSideTakenOver(q, round));
  }
  // Most kills land inside Put (the child does nothing else); at least some must have.
  EXPECT_GT(killed_holding_put_side, 0);
  RecordProperty("killed_holding_put_side", killed_holding_put_side);
}

// A consumer SIGKILLed while getting: the item it was taking stays in the queue for the next one.
TEST(QueueCrashTest, ConsumerKilledMidGet) {
  constexpr int kRounds = 50;
  constexpr uint32_t kItems = 64;
  constexpr size_t kBlob = 16 << 10;
  Queue q = MakeQueue({.capacity_bytes = 2 << 20});
  int exact_rounds = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (uint32_t i = 0; i < kItems; ++i) ASSERT_TRUE(q.Put(MakeBlob(i, kBlob)).ok());
    SharedArray<std::atomic<uint32_t>> got(kItems + 1);  // [kItems] = how many recorded
    const uint32_t target = 1 + static_cast<uint32_t>(round % 40);
    TestChild consumer([&] {
      for (;;) {
        absl::StatusOr<Blob> b = q.Get<Blob>();
        if (!b.ok() || !BlobIntact(*b, kBlob)) return 1;
        got[b->seq].store(1);
        got[kItems].fetch_add(1);
      }
    });
    while (got[kItems].load() < target) {
    }
    consumer.Kill();
    EXPECT_EQ(consumer.Wait(), 128 + SIGKILL);
    std::vector<int> count(kItems, 0);
    for (uint32_t i = 0; i < kItems; ++i) count[i] += got[i].load();
    int64_t last = -1;
    for (;;) {
      absl::StatusOr<Blob> b = q.GetNoWait<Blob>();
      if (!b.ok()) {
        ASSERT_EQ(b.status().code(), absl::StatusCode::kUnavailable);
        break;
      }
      ASSERT_TRUE(BlobIntact(*b, kBlob));
      ASSERT_GT(static_cast<int64_t>(b->seq), last);
      last = b->seq;
      ++count[b->seq];
    }
    int missing = 0;
    for (uint32_t i = 0; i < kItems; ++i) {
      ASSERT_LE(count[i], 1) << "item " << i << " delivered twice in round " << round;
      missing += count[i] == 0;
    }
    // At most the one item whose Get had returned in the child before it could record it.
    ASSERT_LE(missing, 1) << "round " << round;
    exact_rounds += missing == 0;
  }
  RecordProperty("exact_rounds", exact_rounds);
}

// A producer killed in the middle of an item larger than the ring: the consumer discards the
// partial item (it was never committed) and later items arrive intact.
TEST(QueueCrashTest, ProducerKilledMidChunkedItem) {
  constexpr size_t kBig = 256 << 10;
  Queue q = MakeQueue({.capacity_bytes = 4096});
  for (int round = 0; round < 10; ++round) {
    TestChild producer([&] {
      for (uint32_t i = 0;; ++i) {
        if (!q.Put(MakeBlob(i, kBig)).ok()) return 1;
      }
    });
    absl::StatusOr<Blob> first = q.Get<Blob>(true, absl::Seconds(60));
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_EQ(first->seq, 0u);
    EXPECT_TRUE(BlobIntact(*first, kBig));
    // The producer is now inside Put of item 1 (the ring holds less than one item).
    producer.Kill();
    EXPECT_EQ(producer.Wait(), 128 + SIGKILL);
    absl::StatusOr<Blob> partial = q.Get<Blob>(true, absl::Milliseconds(100));
    if (partial.ok()) {
      // Item 1 was complete before the kill landed; then item 2 was the partial one.
      EXPECT_EQ(partial->seq, 1u);
      EXPECT_TRUE(BlobIntact(*partial, kBig));
      partial = q.Get<Blob>(true, absl::Milliseconds(100));
    }
    EXPECT_EQ(partial.status().code(), absl::StatusCode::kDeadlineExceeded) << partial.status();
    // The dead producer's put side is taken over, and a whole large item goes through again.
    TestChild consumer([&] {
      absl::StatusOr<Blob> b = q.Get<Blob>(true, absl::Seconds(60));
      return b.ok() && b->seq == 500 && BlobIntact(*b, kBig) ? 0 : 1;
    });
    ASSERT_TRUE(q.Put(MakeBlob(500, kBig), true, absl::Seconds(60)).ok());
    EXPECT_EQ(consumer.Wait(), 0);
  }
}

// A consumer killed while assembling an item larger than the ring: the next Get skips the orphaned
// chunks and reports kDataLoss once for that item; every other item arrives intact and in order.
TEST(QueueCrashTest, ConsumerKilledMidChunkedItem) {
  constexpr size_t kBig = 64 << 10;
  constexpr uint32_t kItems = 6;
  int killed_mid_item = 0;
  for (int attempt = 0; attempt < 20 && killed_mid_item < 3; ++attempt) {
    Queue q = MakeQueue({.capacity_bytes = 4096});
    SharedArray<std::atomic<uint32_t>> got(kItems + 1);  // [kItems] = how many recorded
    ASSERT_TRUE(got.ok());
    TestChild producer([&] {
      for (uint32_t i = 0; i < kItems; ++i) {
        if (!q.Put(MakeBlob(i, kBig)).ok()) return 1;
      }
      return 0;
    });
    TestChild consumer([&] {
      for (;;) {
        absl::StatusOr<Blob> b = q.Get<Blob>();
        if (!b.ok() || !BlobIntact(*b, kBig)) return 1;
        got[b->seq].store(1);
        got[kItems].fetch_add(1);
      }
    });
    while (got[kItems].load() < 1) {
    }
    // Freeze the producer; once the consumer drained what was published it is either idle or
    // holding the get side in the middle of an item, waiting for chunks that do not come.
    ASSERT_EQ(::kill(producer.pid(), SIGSTOP), 0);
    while (q.UsedBytes() != 0) {
    }
    // Wait until the consumer sleeps: then it is either idle (not holding the get side) or blocked
    // mid-item holding it -- never in one of the brief windows where it holds the side while
    // running.
    while (!::mp::testing::IsSleeping(consumer.pid())) {
    }
    const bool mid_item = q.get_side_owner() == consumer.pid();
    if (mid_item) consumer.Kill();
    ASSERT_EQ(::kill(producer.pid(), SIGCONT), 0);
    if (!mid_item) continue;  // not the case under test this time; try again
    ++killed_mid_item;
    EXPECT_EQ(consumer.Wait(), 128 + SIGKILL);
    std::vector<int> count(kItems, 0);
    for (uint32_t i = 0; i < kItems; ++i) count[i] = static_cast<int>(got[i].load());
    int lost = 0;
    int64_t last = -1;
    auto accounted = [&] {
      int n = lost;
      for (int c : count) n += c;
      return n;
    };
    while (accounted() < static_cast<int>(kItems)) {  // the lost item may be the last one
      absl::StatusOr<Blob> b = q.Get<Blob>(true, absl::Seconds(60));
      if (b.status().code() == absl::StatusCode::kDataLoss) {
        EXPECT_THAT(b.status().message(), HasSubstr("that item is lost"));
        ++lost;
        continue;
      }
      ASSERT_TRUE(b.ok()) << b.status();
      ASSERT_TRUE(BlobIntact(*b, kBig));
      ASSERT_GT(static_cast<int64_t>(b->seq), last);
      last = b->seq;
      ++count[b->seq];
    }
    EXPECT_EQ(producer.Wait(), 0);
    EXPECT_EQ(lost, 1);
    int missing = 0;
    for (uint32_t i = 0; i < kItems; ++i) {
      EXPECT_LE(count[i], 1) << "item " << i;
      missing += count[i] == 0;
    }
    EXPECT_EQ(missing, 1);  // exactly the lost one
    EXPECT_TRUE(q.Empty());
  }
  EXPECT_GT(killed_mid_item, 0);
}

// ---- Batches ------------------------------------------------------------------------------------

TEST(QueueBatchTest, PutManyGetManyKeepOrder) {
  Queue q = MakeQueue({.capacity_bytes = 64 << 10});
  std::vector<uint64_t> items(1000);
  for (size_t i = 0; i < items.size(); ++i) items[i] = i * 3;
  size_t put = 0;
  ASSERT_TRUE(
      q.PutMany(absl::Span<const uint64_t>(items), true, absl::InfiniteDuration(), &put).ok());
  EXPECT_EQ(put, items.size());
  EXPECT_EQ(q.Qsize(), items.size());
  std::vector<uint64_t> got;
  std::array<uint64_t, 64> batch;
  while (got.size() < items.size()) {
    absl::StatusOr<size_t> n = q.GetMany(absl::Span<uint64_t>(batch), false);
    ASSERT_TRUE(n.ok()) << n.status();
    ASSERT_GE(*n, 1u);
    ASSERT_LE(*n, batch.size());
    got.insert(got.end(), batch.begin(), batch.begin() + *n);
  }
  EXPECT_EQ(got, items);
  EXPECT_EQ(q.GetMany(absl::Span<uint64_t>(batch), false).status().code(),
            absl::StatusCode::kUnavailable);
  // Batches and single calls see one queue.
  ASSERT_TRUE(q.Put(uint64_t{5}).ok());
  ASSERT_TRUE(q.PutMany(absl::Span<const uint64_t>(items).subspan(0, 3)).ok());
  absl::StatusOr<std::vector<uint64_t>> v = q.GetMany<uint64_t>(100);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, (std::vector<uint64_t>{5, 0, 3, 6}));
}

TEST(QueueBatchTest, ArgumentsAndEmptyQueue) {
  Queue q = MakeQueue();
  std::array<int, 4> out;
  EXPECT_EQ(q.GetMany(absl::Span<int>(out), false).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(q.GetMany(absl::Span<int>(out), true, absl::Milliseconds(20)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  absl::Status zero = q.GetMany(absl::Span<int>(out.data(), 0)).status();
  EXPECT_EQ(zero.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(zero.message(), HasSubstr("0 items"));
  EXPECT_EQ(q.GetMany(absl::Span<int>(out), true, absl::Seconds(-1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(q.GetMany(absl::Span<int>(out), false, absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<int> items = {1, 2};
  EXPECT_EQ(q.PutMany(absl::Span<const int>(items), true, absl::Seconds(-1)).code(),
            absl::StatusCode::kInvalidArgument);
  size_t put = 99;
  ASSERT_TRUE(q.PutMany(absl::Span<const int>(), true, absl::InfiniteDuration(), &put).ok());
  EXPECT_EQ(put, 0u);
  EXPECT_EQ(q.Qsize(), 0u);
}

// A full queue mid-batch: what fits is put, the rest is kUnavailable (not blocking) or waits for
// room; *put counts the prefix that went in.
TEST(QueueBatchTest, PutManyStopsWhereTheQueueIsFull) {
  Queue q = MakeQueue({.maxsize = 10});
  std::vector<int> items(15);
  for (int i = 0; i < 15; ++i) items[static_cast<size_t>(i)] = i;
  size_t put = 0;
  absl::Status st = q.PutMany(absl::Span<const int>(items), false, absl::InfiniteDuration(), &put);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_THAT(st.message(), HasSubstr("Queue::PutMany: queue is full (10 items, maxsize 10"));
  EXPECT_EQ(put, 10u);
  st = q.PutMany(absl::Span<const int>(items).subspan(put), true, absl::Milliseconds(20), &put);
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
  EXPECT_EQ(put, 0u);
  absl::StatusOr<std::vector<int>> v = q.GetMany<int>(64, false);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->size(), 10u);
  EXPECT_EQ(v->back(), 9);
}

// A blocking PutMany larger than the queue goes on as a consumer makes room: every item arrives
// once, in order, across processes.
TEST(QueueBatchTest, PutManyWaitsForRoomAcrossProcesses) {
  constexpr uint32_t kItems = 20000;
  Queue q = MakeQueue({.maxsize = 50, .capacity_bytes = 4 << 10});
  TestChild producer([&] {
    std::vector<Msg> items(kItems);
    for (uint32_t i = 0; i < kItems; ++i) items[i] = Msg{1, i};
    for (size_t at = 0; at < items.size(); at += 300) {
      const size_t n = std::min<size_t>(300, items.size() - at);
      if (!q.PutMany(absl::Span<const Msg>(items).subspan(at, n)).ok()) return 1;
    }
    return 0;
  });
  std::array<Msg, 37> batch;
  uint32_t next = 0;
  while (next < kItems) {
    absl::StatusOr<size_t> n = q.GetMany(absl::Span<Msg>(batch), true, absl::Seconds(60));
    ASSERT_TRUE(n.ok()) << n.status();
    for (size_t i = 0; i < *n; ++i) ASSERT_EQ(batch[i].seq, next++);
  }
  EXPECT_EQ(producer.Wait(), 0);
  EXPECT_EQ(q.Qsize(), 0u);
}

// An item of another type stops a batch before it; the next call takes it alone and reports it
// (consumed, as Get does), and the one after goes on.
TEST(QueueBatchTest, WrongTypeStopsTheBatchBeforeIt) {
  Queue q = MakeQueue();
  ASSERT_TRUE(q.Put(int32_t{1}).ok());
  ASSERT_TRUE(q.Put(int32_t{2}).ok());
  ASSERT_TRUE(q.Put(std::string("three")).ok());
  ASSERT_TRUE(q.Put(int32_t{4}).ok());
  absl::StatusOr<std::vector<int32_t>> v = q.GetMany<int32_t>(10, false);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, (std::vector<int32_t>{1, 2}));
  v = q.GetMany<int32_t>(10, false);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << v.status();
  v = q.GetMany<int32_t>(10, false);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, (std::vector<int32_t>{4}));
}

// Records that wrap around the ring's end and items larger than the ring, inside batches.
TEST(QueueBatchTest, WrappedAndChunkedItemsInBatches) {
  constexpr size_t kCap = 4 << 10;
  Queue q = MakeQueue({.capacity_bytes = kCap});
  TestChild producer([&] {
    std::vector<Blob> items;
    for (uint32_t i = 0; i < 400; ++i) {
      const size_t size = i % 50 == 7 ? 3 * kCap : 1 + (i * 37) % 500;  // some larger than the ring
      items.push_back(MakeBlob(i, size));
    }
    for (size_t at = 0; at < items.size(); at += 9) {
      const size_t n = std::min<size_t>(9, items.size() - at);
      if (!q.PutMany(absl::Span<const Blob>(items).subspan(at, n)).ok()) return 1;
    }
    return 0;
  });
  uint32_t next = 0;
  while (next < 400) {
    absl::StatusOr<std::vector<Blob>> v = q.GetMany<Blob>(16, true, absl::Seconds(60));
    ASSERT_TRUE(v.ok()) << v.status();
    for (const Blob& b : *v) {
      ASSERT_EQ(b.seq, next);
      const size_t size = next % 50 == 7 ? 3 * kCap : 1 + (next * 37) % 500;
      ASSERT_TRUE(BlobIntact(b, size)) << next;
      ++next;
    }
  }
  EXPECT_EQ(producer.Wait(), 0);
}

TEST(QueueBatchTest, CloseEndsBatches) {
  Queue q = MakeQueue();
  const std::vector<int> items = {1, 2, 3};
  ASSERT_TRUE(q.PutMany(absl::Span<const int>(items)).ok());
  q.Close();
  size_t put = 99;
  EXPECT_EQ(q.PutMany(absl::Span<const int>(items), true, absl::InfiniteDuration(), &put).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(put, 0u);
  absl::StatusOr<std::vector<int>> v = q.GetMany<int>(2);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->size(), 2u);
  v = q.GetMany<int>(2);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, std::vector<int>{3});
  EXPECT_EQ(q.GetMany<int>(2).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(QueueBatchTest, DescriptorsAndOversizedItemsAreRefusedWithTheirIndex) {
  Queue q = MakeQueue({.max_item_size = 100});
  std::vector<std::string> items = {"a", "b", std::string(200, 'x'), "d"};
  size_t put = 0;
  absl::Status st =
      q.PutMany(absl::Span<const std::string>(items), true, absl::InfiniteDuration(), &put);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr("item 2 of"));
  EXPECT_EQ(put, 2u);
  EXPECT_EQ(q.Qsize(), 2u);
  std::vector<WithFd> fds;
  fds.push_back(WithFd{PassedFd{0}});
  st = q.PutMany(absl::Span<const WithFd>(fds), true, absl::InfiniteDuration(), &put);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(put, 0u);
  EXPECT_EQ(q.Qsize(), 2u);
}

// Four producers and four consumers, all in batches: every item is delivered exactly once.
TEST(QueueBatchTest, FourProducersFourConsumersExactlyOnce) {
#if defined(MP_TESTING_ASAN) || defined(MP_TESTING_TSAN)
  constexpr uint32_t kPerProducer = 2000;
#else
  constexpr uint32_t kPerProducer = 20000;
#endif
  constexpr uint32_t kProducers = 4;
  Queue q = MakeQueue({.maxsize = 500, .capacity_bytes = 16 << 10});
  SharedArray<std::atomic<uint32_t>> seen(kProducers * kPerProducer);
  ASSERT_TRUE(seen.ok());
  std::vector<std::unique_ptr<TestChild>> children;
  for (uint32_t p = 0; p < kProducers; ++p) {
    children.push_back(std::make_unique<TestChild>([&, p] {
      std::vector<Msg> items(64);
      for (uint32_t at = 0; at < kPerProducer; at += 64) {
        const uint32_t n = std::min<uint32_t>(64, kPerProducer - at);
        for (uint32_t i = 0; i < n; ++i) items[i] = Msg{p, at + i};
        if (!q.PutMany(absl::Span<const Msg>(items.data(), n)).ok()) return 1;
      }
      return 0;
    }));
  }
  for (int c = 0; c < 4; ++c) {
    children.push_back(std::make_unique<TestChild>([&] {
      std::array<Msg, 64> batch;
      std::vector<uint32_t> last(kProducers, 0);
      std::vector<bool> any(kProducers, false);
      for (;;) {
        absl::StatusOr<size_t> n = q.GetMany(absl::Span<Msg>(batch), true, absl::Seconds(60));
        if (!n.ok()) return n.status().code() == absl::StatusCode::kOutOfRange ? 0 : 1;
        for (size_t i = 0; i < *n; ++i) {
          const Msg& m = batch[i];
          if (m.producer >= kProducers || m.seq >= kPerProducer) return 2;
          // Each producer's items reach one consumer in the order they were put.
          if (any[m.producer] && m.seq <= last[m.producer]) return 3;
          any[m.producer] = true;
          last[m.producer] = m.seq;
          seen[m.producer * kPerProducer + m.seq].fetch_add(1);
        }
      }
    }));
  }
  for (uint32_t p = 0; p < kProducers; ++p) EXPECT_EQ(children[p]->Wait(), 0);
  q.Close();
  for (size_t c = kProducers; c < children.size(); ++c) EXPECT_EQ(children[c]->Wait(), 0);
  for (uint32_t i = 0; i < kProducers * kPerProducer; ++i) {
    ASSERT_EQ(seen[i].load(), 1u) << "item " << i;
  }
}

// A producer SIGKILLed inside PutMany: every item it committed is whole and in order, and none is
// seen twice; the put side is taken over at once.
TEST(QueueBatchCrashTest, ProducerKilledMidPutMany) {
  constexpr int kRounds = 100;
  constexpr size_t kBlob = 4 << 10;
  Queue q = MakeQueue({.capacity_bytes = 2 << 20});
  int killed_holding_put_side = 0;
  for (int round = 0; round < kRounds; ++round) {
    const size_t target = 1 + static_cast<size_t>(round % 97);
    killed_holding_put_side += KillProducerOnceQueued(q, target, [&] {
      std::vector<Blob> blobs;
      for (uint32_t i = 0; i < 64; ++i) blobs.push_back(MakeBlob(i, kBlob));
      for (uint32_t base = 0;; base += 64) {
        for (uint32_t i = 0; i < 64; ++i) blobs[i].seq = base + i;
        if (!q.PutMany(absl::Span<const Blob>(blobs)).ok()) return 1;
      }
    });
    const size_t committed = q.Qsize();
    ASSERT_GE(committed, target);
    uint32_t next = 0;
    while (next < committed) {
      absl::StatusOr<std::vector<Blob>> v = q.GetMany<Blob>(50, false);
      ASSERT_TRUE(v.ok()) << "round " << round << ": " << v.status();
      for (const Blob& b : *v) {
        ASSERT_EQ(b.seq, next++) << "round " << round;
        ASSERT_TRUE(BlobIntact(b, kBlob)) << "round " << round;
      }
    }
    ASSERT_EQ(next, committed);
    ASSERT_NO_FATAL_FAILURE(ExpectEmptyAndPutSideTakenOver(q, round));
  }
  EXPECT_GT(killed_holding_put_side, 0);
  RecordProperty("killed_holding_put_side", killed_holding_put_side);
}

// A consumer SIGKILLed inside GetMany: the batch it was taking stays in the queue, so every item is
// delivered at most once and none is lost except those a returned GetMany handed to it before it
// could record them.
TEST(QueueBatchCrashTest, ConsumerKilledMidGetMany) {
  constexpr int kRounds = 50;
  constexpr uint32_t kItems = 256;
  constexpr size_t kBlob = 4 << 10;
  constexpr size_t kBatch = 16;
  Queue q = MakeQueue({.capacity_bytes = 2 << 20});
  for (int round = 0; round < kRounds; ++round) {
    std::vector<Blob> items;
    for (uint32_t i = 0; i < kItems; ++i) items.push_back(MakeBlob(i, kBlob));
    ASSERT_TRUE(q.PutMany(absl::Span<const Blob>(items)).ok());
    // [kItems]: how many recorded; [kItems + 1]: the size of the batch being recorded.
    SharedArray<std::atomic<uint32_t>> got(kItems + 2);
    const uint32_t target = 1 + static_cast<uint32_t>(round % 200);
    TestChild consumer([&] {
      std::array<Blob, kBatch> batch;
      for (;;) {
        absl::StatusOr<size_t> n = q.GetMany(absl::Span<Blob>(batch));
        if (!n.ok()) return 1;
        got[kItems + 1].store(static_cast<uint32_t>(*n));
        for (size_t i = 0; i < *n; ++i) {
          if (!BlobIntact(batch[i], kBlob)) return 2;
          got[batch[i].seq].store(1);
          got[kItems].fetch_add(1);
        }
      }
    });
    while (got[kItems].load() < target) {
    }
    consumer.Kill();
    EXPECT_EQ(consumer.Wait(), 128 + SIGKILL);
    std::vector<int> count(kItems, 0);
    for (uint32_t i = 0; i < kItems; ++i) count[i] += static_cast<int>(got[i].load());
    int64_t last = -1;
    for (;;) {
      absl::StatusOr<std::vector<Blob>> v = q.GetMany<Blob>(kBatch, false);
      if (!v.ok()) {
        ASSERT_EQ(v.status().code(), absl::StatusCode::kUnavailable);
        break;
      }
      for (const Blob& b : *v) {
        ASSERT_TRUE(BlobIntact(b, kBlob));
        ASSERT_GT(static_cast<int64_t>(b.seq), last);
        last = b.seq;
        ++count[b.seq];
      }
    }
    int missing = 0;
    for (uint32_t i = 0; i < kItems; ++i) {
      ASSERT_LE(count[i], 1) << "item " << i << " delivered twice in round " << round;
      missing += count[i] == 0;
    }
    // At most one returned batch the child had not finished recording.
    ASSERT_LE(missing, static_cast<int>(kBatch)) << "round " << round;
  }
}

}  // namespace
}  // namespace mp
