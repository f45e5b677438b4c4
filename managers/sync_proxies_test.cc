// Copyright 2026 The mp Authors.
//
// The manager's queues and synchronization primitives under every start method: each method and
// its status codes, use across processes, a lock holder that dies (released, IsOwnerDied), a
// blocked waiter whose client dies (takes nothing), and a call blocked in a server that is killed.

#include "managers/sync_proxies.h"

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "managers/manager.h"
#include "managers/test_util.h"
#include "start_methods/process.h"
#include "start_methods/test_methods.h"
#include "start_methods/test_util.h"
#include "sync/futex.h"

namespace sync_proxies_test {

using ::absl::StatusCode;
using ::testing::HasSubstr;

// ---- Children ----

absl::Status AcquireAndDie(mp::LockProxy lock, mp::QueueProxy<int64_t> ready) {
  absl::StatusOr<bool> got = lock.Acquire();
  if (!got.ok() || !*got) return absl::InternalError("not acquired");
  if (absl::Status s = ready.Put(getpid()); !s.ok()) return s;
  ::kill(::getpid(), SIGKILL);
  return absl::InternalError("not killed");
}

absl::Status GetForever(mp::QueueProxy<int64_t> q, mp::QueueProxy<int64_t> ready) {
  if (absl::Status s = ready.Put(getpid()); !s.ok()) return s;
  absl::StatusOr<int64_t> item = q.Get();
  return absl::InternalError(absl::StrCat("Get returned ", item.ok() ? "an item" : "an error"));
}

absl::Status WaitForEvent(mp::EventProxy e, mp::QueueProxy<int64_t> ready) {
  if (absl::Status s = ready.Put(1); !s.ok()) return s;
  absl::StatusOr<bool> set = e.Wait(absl::Seconds(60));
  if (!set.ok()) return set.status();
  return *set ? absl::OkStatus() : absl::DeadlineExceededError("not set");
}

// Consumer: waits on the condition for `n` items in the list, then sums them into `out`.
absl::Status Consume(mp::ConditionProxy c, mp::ListProxy<int64_t> items, int64_t n,
                     mp::ValueProxy<int64_t> out) {
  absl::StatusOr<bool> got = c.Acquire();
  if (!got.ok()) return got.status();
  absl::StatusOr<bool> ready = c.WaitFor(
      [&] {
        absl::StatusOr<size_t> size = items.Size();
        return size.ok() && *size >= static_cast<size_t>(n);
      },
      absl::Seconds(60));
  if (!ready.ok()) return ready.status();
  if (!*ready) return absl::DeadlineExceededError("items did not come");
  absl::StatusOr<std::vector<int64_t>> all = items.ToVector();
  if (!all.ok()) return all.status();
  int64_t sum = 0;
  for (int64_t x : *all) sum += x;
  if (absl::Status s = c.Release(); !s.ok()) return s;
  return out.Set(sum);
}

absl::Status MeetAtBarrier(mp::BarrierProxy b, mp::QueueProxy<int64_t> indices) {
  absl::StatusOr<int64_t> i = b.Wait(absl::Seconds(60));
  if (!i.ok()) return i.status();
  return indices.Put(*i);
}

absl::Status Work(mp::JoinableQueueProxy<int64_t> q, mp::ValueProxy<int64_t> total) {
  for (;;) {
    absl::StatusOr<int64_t> item = q.Get();
    if (!item.ok()) return item.status();
    if (*item < 0) return q.TaskDone();
    absl::StatusOr<int64_t> t = total.Get();
    if (!t.ok()) return t.status();
    if (absl::Status s = total.Set(*t + *item); !s.ok()) return s;
    if (absl::Status s = q.TaskDone(); !s.ok()) return s;
  }
}

template <typename M>
using SyncProxiesTest = mp::testing::ManagerTestBase<M>;
TYPED_TEST_SUITE(SyncProxiesTest, mp::testing::AllStartMethods, mp::testing::StartMethodNames);

TYPED_TEST(SyncProxiesTest, Lock) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::LockProxy> lock = m.Lock();
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_TRUE(*lock->Acquire());
  EXPECT_TRUE(*lock->Locked());
  EXPECT_FALSE(*lock->Acquire(false));  // not re-entrant
  EXPECT_FALSE(*lock->Acquire(true, absl::Milliseconds(10)));
  EXPECT_EQ(lock->Acquire(false, absl::Seconds(1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(lock->Acquire(true, absl::Seconds(-1)).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(lock->Release().ok());
  EXPECT_EQ(lock->Release().code(), StatusCode::kFailedPrecondition);
  {
    std::lock_guard<mp::LockProxy> guard(*lock);
    EXPECT_TRUE(*lock->Locked());
  }
  EXPECT_FALSE(*lock->Locked());
}

TYPED_TEST(SyncProxiesTest, RLockBelongsToItsThread) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::RLockProxy> lock = m.RLock();
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_TRUE(*lock->Acquire());
  EXPECT_TRUE(*lock->Acquire());
  std::thread other([&] {
    EXPECT_FALSE(*lock->Acquire(false));
    EXPECT_EQ(lock->Release().code(), StatusCode::kFailedPrecondition);
  });
  other.join();
  ASSERT_TRUE(lock->Release().ok());
  ASSERT_TRUE(lock->Release().ok());
  EXPECT_EQ(lock->Release().code(), StatusCode::kFailedPrecondition);
}

TYPED_TEST(SyncProxiesTest, ALockWhoseHolderDiesIsReleasedAndSaysSo) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::LockProxy> lock = m.Lock();
  absl::StatusOr<mp::QueueProxy<int64_t>> ready = m.Queue<int64_t>();
  ASSERT_TRUE(lock.ok() && ready.ok());
  mp::Process p = this->Run(mp::Call<&AcquireAndDie>(*lock, *ready));
  absl::StatusOr<int64_t> pid = ready->Get(true, absl::Seconds(60));
  ASSERT_TRUE(pid.ok()) << pid.status();
  ASSERT_TRUE(p.Join(absl::Seconds(60)).ok());
  absl::StatusOr<bool> got = lock->Acquire(true, absl::Seconds(60));
  EXPECT_TRUE(mp::IsOwnerDied(got.status())) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr(absl::StrCat("process ", *pid)));
  ASSERT_TRUE(lock->Release().ok());
  EXPECT_TRUE(*lock->Acquire());  // works normally afterwards
}

TYPED_TEST(SyncProxiesTest, Semaphores) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::SemaphoreProxy> s = m.Semaphore(2);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(*s->Acquire());
  EXPECT_TRUE(*s->Acquire());
  EXPECT_FALSE(*s->Acquire(false));
  EXPECT_EQ(*s->GetValue(), 0);
  ASSERT_TRUE(s->Release().ok());
  ASSERT_TRUE(s->Release().ok());
  ASSERT_TRUE(s->Release().ok());  // unbounded
  EXPECT_EQ(*s->GetValue(), 3);
  absl::StatusOr<mp::BoundedSemaphoreProxy> b = m.BoundedSemaphore(1);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->Release().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(*b->Acquire());
  ASSERT_TRUE(b->Release().ok());
  EXPECT_EQ(m.Semaphore(-1).status().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(SyncProxiesTest, EventAcrossProcesses) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::EventProxy> e = m.Event();
  absl::StatusOr<mp::QueueProxy<int64_t>> ready = m.Queue<int64_t>();
  ASSERT_TRUE(e.ok() && ready.ok());
  EXPECT_FALSE(*e->IsSet());
  EXPECT_FALSE(*e->Wait(absl::Milliseconds(1)));
  mp::Process p = this->Run(mp::Call<&WaitForEvent>(*e, *ready));
  ASSERT_TRUE(ready->Get(true, absl::Seconds(60)).ok());
  ASSERT_TRUE(e->Set().ok());
  this->ExpectExit(p, 0);
  EXPECT_TRUE(*e->Wait());
  ASSERT_TRUE(e->Clear().ok());
  EXPECT_FALSE(*e->IsSet());
}

TYPED_TEST(SyncProxiesTest, ConditionProducerConsumer) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::ConditionProxy> c = m.Condition();
  absl::StatusOr<mp::ListProxy<int64_t>> items = m.List<int64_t>();
  absl::StatusOr<mp::ValueProxy<int64_t>> sum = m.Value<int64_t>(0);
  ASSERT_TRUE(c.ok() && items.ok() && sum.ok());
  EXPECT_EQ(c->Wait(absl::Milliseconds(1)).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(c->Notify().code(), StatusCode::kFailedPrecondition);
  mp::Process p = this->Run(mp::Call<&Consume>(*c, *items, int64_t{5}, *sum));
  for (int64_t i = 1; i <= 5; ++i) {
    ASSERT_TRUE(*c->Acquire());
    ASSERT_TRUE(items->Append(i).ok());
    ASSERT_TRUE(c->NotifyAll().ok());
    ASSERT_TRUE(c->Release().ok());
  }
  this->ExpectExit(p, 0);
  EXPECT_EQ(*sum->Get(), 15);
  // A wait that nobody notifies times out holding the lock again.
  ASSERT_TRUE(*c->Acquire());
  EXPECT_FALSE(*c->Wait(absl::Milliseconds(1)));
  ASSERT_TRUE(c->Release().ok());
}

TYPED_TEST(SyncProxiesTest, Barrier) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::BarrierProxy> b = m.Barrier(3);
  absl::StatusOr<mp::QueueProxy<int64_t>> indices = m.Queue<int64_t>();
  ASSERT_TRUE(b.ok() && indices.ok());
  EXPECT_EQ(*b->Parties(), 3);
  mp::Process p1 = this->Run(mp::Call<&MeetAtBarrier>(*b, *indices));
  mp::Process p2 = this->Run(mp::Call<&MeetAtBarrier>(*b, *indices));
  absl::StatusOr<int64_t> mine = b->Wait(absl::Seconds(60));
  ASSERT_TRUE(mine.ok()) << mine.status();
  this->ExpectExit(p1, 0);
  this->ExpectExit(p2, 0);
  std::vector<int64_t> all = {*mine, *indices->Get(), *indices->Get()};
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<int64_t>{0, 1, 2}));
  // A timeout breaks it.
  EXPECT_EQ(b->Wait(absl::Milliseconds(1)).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(*b->Broken());
  EXPECT_EQ(b->Wait().status().code(), StatusCode::kAborted);
  ASSERT_TRUE(b->Reset().ok());
  EXPECT_FALSE(*b->Broken());
  EXPECT_EQ(m.Barrier(0).status().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(SyncProxiesTest, Queues) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::QueueProxy<std::string>> q = m.Queue<std::string>(2);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_TRUE(*q->Empty());
  EXPECT_EQ(q->GetNoWait().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(q->Get(true, absl::Milliseconds(1)).status().code(), StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(q->Put("a").ok());
  ASSERT_TRUE(q->Put("b").ok());
  EXPECT_TRUE(*q->Full());
  EXPECT_EQ(q->PutNoWait("c").code(), StatusCode::kUnavailable);
  EXPECT_EQ(q->Put("c", true, absl::Milliseconds(1)).code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(*q->QSize(), 2u);
  EXPECT_EQ(*q->Get(), "a");
  EXPECT_EQ(*q->Get(), "b");

  absl::StatusOr<mp::JoinableQueueProxy<int64_t>> jq = m.JoinableQueue<int64_t>();
  absl::StatusOr<mp::ValueProxy<int64_t>> total = m.Value<int64_t>(0);
  ASSERT_TRUE(jq.ok() && total.ok());
  EXPECT_EQ(jq->TaskDone().code(), StatusCode::kFailedPrecondition);
  mp::Process p = this->Run(mp::Call<&Work>(*jq, *total));
  for (int64_t i = 1; i <= 10; ++i) ASSERT_TRUE(jq->Put(i).ok());
  ASSERT_TRUE(jq->Join(absl::Seconds(60)).ok());
  EXPECT_EQ(*total->Get(), 55);
  ASSERT_TRUE(jq->Put(-1).ok());
  this->ExpectExit(p, 0);
}

TYPED_TEST(SyncProxiesTest, AWaiterWhoseClientDiedTakesNothing) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::QueueProxy<int64_t>> q = m.Queue<int64_t>();
  absl::StatusOr<mp::QueueProxy<int64_t>> ready = m.Queue<int64_t>();
  ASSERT_TRUE(q.ok() && ready.ok());
  mp::Process p = this->Run(mp::Call<&GetForever>(*q, *ready));
  ASSERT_TRUE(ready->Get(true, absl::Seconds(60)).ok());
  ASSERT_TRUE(p.Kill().ok());
  ASSERT_TRUE(p.Join(absl::Seconds(60)).ok());
  ASSERT_TRUE(q->Put(7).ok());
  absl::StatusOr<int64_t> item = q->Get(true, absl::Seconds(60));
  ASSERT_TRUE(item.ok()) << item.status();
  EXPECT_EQ(*item, 7);
}

TYPED_TEST(SyncProxiesTest, ACallBlockedInAKilledServerIsUnavailable) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::QueueProxy<int64_t>> q = m.Queue<int64_t>();
  ASSERT_TRUE(q.ok());
  const std::string socket = m.address();
  absl::Status blocked;
  std::thread getter([&] { blocked = q->Get().status(); });
  ASSERT_TRUE(const_cast<mp::Process*>(m.process())->Kill().ok());
  getter.join();
  EXPECT_EQ(blocked.code(), StatusCode::kUnavailable) << blocked;
  ASSERT_TRUE(m.Join(absl::Seconds(60)).ok());
  ::unlink(socket.c_str());
  ::rmdir(socket.substr(0, socket.rfind('/')).c_str());
}

}  // namespace sync_proxies_test
