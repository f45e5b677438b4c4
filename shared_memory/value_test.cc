// Copyright 2026 The mp Authors.
//
// Value<T> / Array<T>: Get/Set under the lock, raw access, errors, both domains, children of every
// start method, and the refusal of fork-domain objects by spawn and forkserver.

#include "shared_memory/value.h"

#include <sys/sysinfo.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "context/context.h"
#include "gtest/gtest.h"
#include "start_methods/fork.h"
#include "start_methods/forkserver.h"
#include "start_methods/process.h"
#include "start_methods/spawn.h"
#include "start_methods/test_methods.h"
#include "start_methods/test_util.h"

namespace value_test {
namespace {

using ::absl::StatusCode;

struct Point {
  int32_t x;
  double y;
};

TEST(ValueTest, GetSetBothDomains) {
  for (mp::ShmDomain d : {mp::ShmDomain::kFork, mp::ShmDomain::kTransferable}) {
    absl::StatusOr<mp::Value<int64_t>> v = mp::Value<int64_t>::Create(d, 41);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->domain(), d);
    EXPECT_EQ(*v->Get(), 41);
    ASSERT_TRUE(v->Set(42).ok());
    EXPECT_EQ(*v->Get(), 42);
    EXPECT_EQ(*v->get_obj(), 42);
    EXPECT_TRUE(v->has_lock());
    ASSERT_TRUE(v->GetLock().ok());
    // Get waits for the lock: while we hold it, another thread's Get cannot run; check with
    // a non-blocking acquire that Get released it afterwards.
    mp::Lock lock = *v->GetLock();
    EXPECT_FALSE(lock.Locked());
    absl::StatusOr<mp::Value<Point>> p = mp::Value<Point>::Create(d, Point{1, 2.5}, /*lock=*/false);
    ASSERT_TRUE(p.ok());
    EXPECT_FALSE(p->has_lock());
    EXPECT_EQ(p->GetLock().status().code(), StatusCode::kFailedPrecondition);
    ASSERT_TRUE(p->Set(Point{3, 4.5}).ok());
    EXPECT_EQ(p->Get()->x, 3);
    EXPECT_EQ(p->Get()->y, 4.5);
  }
}

TEST(ValueTest, FromHandleChecksTheType) {
  absl::StatusOr<mp::Value<int64_t>> v = mp::Value<int64_t>::Create(mp::ShmDomain::kFork, 5);
  ASSERT_TRUE(v.ok());
  absl::StatusOr<mp::Value<int64_t>> same = mp::Value<int64_t>::FromHandle(v->handle());
  ASSERT_TRUE(same.ok()) << same.status();
  ASSERT_TRUE(same->Set(6).ok());
  EXPECT_EQ(*v->Get(), 6);
  absl::Status wrong = mp::Value<int32_t>::FromHandle(v->handle()).status();
  EXPECT_EQ(wrong.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.message().find("8-byte"), absl::string_view::npos) << wrong;
  absl::StatusOr<mp::Array<int64_t>> a = mp::Array<int64_t>::Create(mp::ShmDomain::kFork, 3);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(mp::Value<int64_t>::FromHandle(a->handle()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(mp::Value<int64_t>::FromHandle({v->handle().segment, 4096 * 16}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ArrayTest, Elements) {
  absl::StatusOr<mp::Array<double>> a =
      mp::Array<double>::Create(mp::ShmDomain::kTransferable, {1.0, 2.0, 3.0});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->size(), 3u);
  EXPECT_EQ(*a->Get(2), 3.0);
  ASSERT_TRUE(a->Set(1, 5.0).ok());
  EXPECT_EQ(*a->GetAll(), (std::vector<double>{1.0, 5.0, 3.0}));
  EXPECT_EQ(a->Get(3).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(a->Set(3, 0).code(), StatusCode::kOutOfRange);
  std::vector<double> two = {1, 2};
  EXPECT_EQ(a->SetAll(two).code(), StatusCode::kInvalidArgument);
  std::vector<double> three = {7, 8, 9};
  ASSERT_TRUE(a->SetAll(three).ok());
  EXPECT_EQ(a->data()[2], 9.0);
  EXPECT_EQ(mp::Array<double>::Create(mp::ShmDomain::kFork, size_t{0}).status().code(),
            StatusCode::kInvalidArgument);
  absl::StatusOr<mp::Array<int32_t>> zeros = mp::Array<int32_t>::Create(mp::ShmDomain::kFork, 1000);
  ASSERT_TRUE(zeros.ok());
  EXPECT_EQ(*zeros->Get(999), 0);
}

// This machine's RAM plus swap, in bytes.
uint64_t MachineMemory() {
  struct sysinfo info;
  if (sysinfo(&info) != 0) return 0;
  return (uint64_t{info.totalram} + info.totalswap) * info.mem_unit;
}

// A length no machine could hold is a status naming the length and the limit, never an abort: no
// heap buffer of that size is built first, and count * sizeof(T) cannot wrap around.
template <typename T>
void ExpectRefused(mp::ShmDomain domain, size_t n, bool lock) {
  SCOPED_TRACE(absl::StrCat(n, " elements of ", sizeof(T), " bytes, lock ", lock));
  const absl::Status s = mp::Array<T>::Create(domain, n, lock).status();
  EXPECT_TRUE(s.code() == StatusCode::kInvalidArgument ||
              s.code() == StatusCode::kResourceExhausted)
      << s;
  EXPECT_NE(s.message().find(absl::StrCat(n)), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("limit"), absl::string_view::npos) << s;
}

TEST(ArrayTest, HugeLengthsAreStatuses) {
  for (mp::ShmDomain d : {mp::ShmDomain::kFork, mp::ShmDomain::kTransferable}) {
    for (bool lock : {true, false}) {
      if (MachineMemory() < (uint64_t{1} << 38)) ExpectRefused<int32_t>(d, size_t{1} << 36, lock);
      ExpectRefused<int32_t>(d, SIZE_MAX, lock);
      ExpectRefused<int32_t>(d, SIZE_MAX / 4 + 1, lock);  // * 4 wraps to 0
      ExpectRefused<double>(d, SIZE_MAX / 4, lock);
      ExpectRefused<double>(d, SIZE_MAX / 8 + 2, lock);  // * 8 wraps to 8
      ExpectRefused<Point>(d, SIZE_MAX / sizeof(Point) + 1, lock);
      ExpectRefused<char>(d, (size_t{1} << 39) + 1, lock);
    }
  }
  // Through a context, as CPython's ctx.Array('i', n).
  for (const char* method : {"fork", "spawn"}) {
    absl::StatusOr<mp::Context*> ctx = mp::GetContext(method);
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    for (size_t n : {size_t{1} << 36, SIZE_MAX}) {
      if (n == size_t{1} << 36 && MachineMemory() >= (uint64_t{1} << 38)) continue;
      const absl::Status s = (*ctx)->Array<int32_t>(n).status();
      EXPECT_TRUE(s.code() == StatusCode::kInvalidArgument ||
                  s.code() == StatusCode::kResourceExhausted)
          << s;
      EXPECT_NE(s.message().find(absl::StrCat(n)), absl::string_view::npos) << s;
    }
    EXPECT_FALSE((*ctx)->Array<double>(SIZE_MAX / 4, /*lock=*/false).ok());
  }
  // Still fine afterwards.
  absl::StatusOr<mp::Array<int32_t>> small = mp::Array<int32_t>::Create(mp::ShmDomain::kFork, 4);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(*small->Get(3), 0);
}

TEST(ArrayTest, SharesASegment) {
  absl::StatusOr<mp::ShmSegment> seg = mp::ShmSegment::Create(mp::ShmDomain::kFork, 4096);
  ASSERT_TRUE(seg.ok());
  std::vector<int32_t> init = {1, 2};
  absl::StatusOr<mp::Array<int32_t>> a = mp::Array<int32_t>::Create(*seg, init);
  absl::StatusOr<mp::Value<int32_t>> v = mp::Value<int32_t>::Create(*seg, 3);
  ASSERT_TRUE(a.ok() && v.ok());
  EXPECT_TRUE(a->handle().segment.SameMapping(v->handle().segment));
  std::vector<int32_t> huge(10000);
  EXPECT_EQ(mp::Array<int32_t>::Create(*seg, huge).status().code(), StatusCode::kResourceExhausted);
}

// A holder SIGKILLed with the lock held: Get recovers the lock and says the data may be torn
// (kAborted), then works normally.
TEST(ValueTest, DeadLockHolder) {
  absl::StatusOr<mp::Value<int64_t>> v = mp::Value<int64_t>::Create(mp::ShmDomain::kFork, 7);
  ASSERT_TRUE(v.ok());
  mp::testing::TestPipe ready;
  mp::testing::ChildGuard guard;
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(mp::ForkStartMethod(), mp::Target::Callable([&]() -> int {
                            absl::StatusOr<bool> got = v->GetLock()->Acquire();
                            if (!got.ok() || !*got) return 1;
                            mp::testing::WriteAllOrDie(ready.w(), "r");
                            for (;;) pause();
                          }));
  ASSERT_TRUE(p.ok());
  mp::Process child = guard.Add(*p);
  ASSERT_TRUE(child.Start().ok());
  ASSERT_TRUE(mp::testing::ReadExactly(ready.r(), 1).ok());
  ASSERT_TRUE(child.Kill().ok());
  ASSERT_TRUE(child.Join(absl::Seconds(60)).ok());
  absl::StatusOr<int64_t> torn = v->Get();
  EXPECT_EQ(torn.status().code(), StatusCode::kAborted) << torn.status();
  EXPECT_NE(torn.status().message().find("died"), absl::string_view::npos) << torn.status();
  EXPECT_EQ(*v->Get(), 7);
  EXPECT_TRUE(v->Set(8).ok());
  EXPECT_EQ(*v->Get(), 8);
}

// Registered targets.
absl::Status AddMany(mp::Value<int64_t> v, mp::Array<int64_t> a, int64_t times) {
  for (int64_t i = 0; i < times; ++i) {
    absl::StatusOr<mp::Lock> lock = v.GetLock();
    if (!lock.ok()) return lock.status();
    absl::StatusOr<bool> got = lock->Acquire();
    if (!got.ok() || !*got) return absl::InternalError("lock");
    *v.get_obj() += 1;
    if (absl::Status s = lock->Release(); !s.ok()) return s;
  }
  absl::StatusOr<int64_t> first = a.Get(0);
  if (!first.ok()) return first.status();
  return a.Set(1, *first + 1);
}

// Increments `v` `n` times with Update (CPython's "with v.get_lock(): v.value += 1").
absl::Status UpdateMany(mp::Value<int64_t> v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    absl::StatusOr<int64_t> now = v.Update([](int64_t& x) { x += 1; });
    if (!now.ok()) return now.status();
  }
  return absl::OkStatus();
}

TEST(ValueTest, UpdateReturnsTheNewValueAndAThrowLeavesItUnchanged) {
  absl::StatusOr<mp::Value<int64_t>> v = mp::Value<int64_t>::Create(mp::ShmDomain::kFork, 40);
  ASSERT_TRUE(v.ok()) << v.status();
  absl::StatusOr<int64_t> now = v->Update([](int64_t& x) { x += 2; });
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(*now, 42);
  now = v->Update([](int64_t& x) {
    x = -1;
    throw std::runtime_error("boom");
  });
  EXPECT_EQ(now.status().code(), absl::StatusCode::kUnknown) << now.status();
  EXPECT_NE(now.status().message().find("std::runtime_error: boom"), absl::string_view::npos)
      << now.status();
  EXPECT_EQ(*v->Get(), 42);
  // The lock was released: the next Update goes through.
  EXPECT_EQ(*v->Update([](int64_t& x) { x *= 2; }), 84);
}

class ValueMethodTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<mp::StartMethod> method() const { return mp::testing::MethodNamed(GetParam()); }
  mp::ShmDomain domain() const {
    return GetParam() == "fork" ? mp::ShmDomain::kFork : mp::ShmDomain::kTransferable;
  }
  // Starts three children running `target` side by side and waits until each has exited 0.
  void RunThreeChildren(const mp::Target& target) {
    mp::testing::ChildGuard guard;
    std::vector<mp::Process> children;
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<mp::Process> p = mp::Process::Create(method(), target);
      ASSERT_TRUE(p.ok()) << p.status();
      children.push_back(guard.Add(*p));
      ASSERT_TRUE(children.back().Start().ok());
    }
    for (mp::Process& c : children) {
      ASSERT_TRUE(c.Join(absl::Seconds(120)).ok());
      EXPECT_EQ(c.ExitCode(), 0);
    }
  }
};

TEST_P(ValueMethodTest, ChildrenIncrementUnderTheLock) {
  absl::StatusOr<mp::Value<int64_t>> v = mp::Value<int64_t>::Create(domain(), 0);
  absl::StatusOr<mp::Array<int64_t>> a = mp::Array<int64_t>::Create(domain(), {10, 0});
  ASSERT_TRUE(v.ok() && a.ok());
  RunThreeChildren(mp::Call<&AddMany>(*v, *a, int64_t{2000}));
  EXPECT_EQ(*v->Get(), 6000);
  EXPECT_EQ(*a->Get(1), 11);
}

TEST_P(ValueMethodTest, ChildrenUpdateWithoutLosingAnIncrement) {
  absl::StatusOr<mp::Value<int64_t>> v = mp::Value<int64_t>::Create(domain(), 0);
  ASSERT_TRUE(v.ok()) << v.status();
  RunThreeChildren(mp::Call<&UpdateMany>(*v, int64_t{2000}));
  EXPECT_EQ(*v->Get(), 6000);
}

TEST_P(ValueMethodTest, ForkDomainObjectsAreRefusedBySpawnAndForkserver) {
  absl::StatusOr<mp::Value<int64_t>> v = mp::Value<int64_t>::Create(mp::ShmDomain::kFork, 0);
  absl::StatusOr<mp::Array<int64_t>> a = mp::Array<int64_t>::Create(mp::ShmDomain::kFork, {1, 2});
  ASSERT_TRUE(v.ok() && a.ok());
  absl::StatusOr<mp::Process> p =
      mp::Process::Create(method(), mp::Call<&AddMany>(*v, *a, int64_t{1}));
  if (GetParam() == "fork") {
    ASSERT_TRUE(p.ok()) << p.status();
    mp::testing::ChildGuard guard;
    mp::Process child = guard.Add(*p);
    ASSERT_TRUE(child.Start().ok());
    ASSERT_TRUE(child.Join(absl::Seconds(60)).ok());
    EXPECT_EQ(child.ExitCode(), 0);
    EXPECT_EQ(*v->Get(), 1);
  } else {
    EXPECT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(p.status().message().find("Value"), absl::string_view::npos) << p.status();
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, ValueMethodTest,
                         ::testing::Values("fork", "spawn", "forkserver"));

}  // namespace
}  // namespace value_test
