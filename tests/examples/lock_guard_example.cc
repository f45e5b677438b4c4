// CPython's "with lock:" in mp. mp::Lock, RLock and Semaphore are C++ Lockables (sync/lockable.h),
// so std::lock_guard, std::scoped_lock and std::unique_lock hold them across processes.
//
//   from multiprocessing import Process, Lock, RLock, Semaphore, Value
//   def add(lock, total):                    # total = Value('q', 0, lock=False)
//       for _ in range(1000):
//           with lock:
//               total.value += 1
//   def busy(lock):                          # while the parent holds the lock
//       assert not lock.acquire(timeout=0.05)
//   def visit(sem, pair, inside, most):      # sem = Semaphore(2), pair = Barrier(2)
//       with sem:                            # two visitors inside at a time, never three
//           pair.wait()
//
// And what CPython cannot do: a child killed while it holds the Lock does not hang the parent. The
// parent's guard takes the lock over, and owner_died() says that what it protects may be
// half-written.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include "mp.h"

constexpr int kAdds = 1000;

// `with lock: total.value += 1`; `total` has no lock of its own, so only `lock` keeps it right.
absl::Status AddUnderLock(mp::Lock lock, mp::Value<int64_t> total) {
  for (int i = 0; i < kAdds; ++i) {
    std::lock_guard<mp::Lock> guard(lock);
    absl::StatusOr<int64_t> v = total.Get();
    if (!v.ok()) return v.status();
    if (absl::Status s = total.Set(*v + 1); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// The same under two locks at once (std::scoped_lock takes both without deadlock), entering the
// RLock a second time as an RLock allows.
absl::Status AddUnderBoth(mp::Lock lock, mp::RLock rlock, mp::Value<int64_t> total) {
  for (int i = 0; i < kAdds; ++i) {
    std::scoped_lock both(lock, rlock);
    std::lock_guard<mp::RLock> again(rlock);
    absl::StatusOr<int64_t> v = total.Get();
    if (!v.ok()) return v.status();
    if (absl::Status s = total.Set(*v + 1); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// Gives up after 50 ms on a Lock somebody else holds: exit code 0 if it did not get it.
int TryBusyLock(mp::Lock lock) {
  std::unique_lock<mp::Lock> attempt(lock, std::chrono::milliseconds(50));
  return attempt.owns_lock() ? 1 : 0;
}

// `with sem:` for one of the semaphore's slots: records how many visitors are inside, and waits
// there for a second one (two slots: two at a time).
absl::Status Visit(mp::Semaphore sem, mp::Barrier pair, mp::Value<int32_t> inside,
                   mp::Value<int32_t> most) {
  std::unique_lock<mp::Semaphore> slot(sem, std::chrono::seconds(30));
  if (!slot.owns_lock()) return absl::DeadlineExceededError("no free slot within 30 s");
  absl::StatusOr<int32_t> now = inside.Update([](int32_t& n) { ++n; });
  if (!now.ok()) return now.status();
  if (absl::Status s = most.Update([&](int32_t& m) { m = std::max(m, *now); }).status(); !s.ok()) {
    return s;
  }
  if (absl::Status s = pair.Wait(absl::Seconds(30)).status(); !s.ok()) return s;
  return inside.Update([](int32_t& n) { --n; }).status();
}

// Takes the lock, says so, and waits to be killed while holding it.
absl::Status HoldUntilKilled(mp::Lock lock, mp::Event holding, mp::Event never) {
  lock.lock();
  holding.Set();
  never.Wait(absl::Seconds(60)).IgnoreError();
  return absl::InternalError("HoldUntilKilled: was not killed");
}

// Prints what went wrong; the example's exit code is the number of failed checks.
int failures = 0;
void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "lock_guard_example: %s\n", what);
    ++failures;
  }
}

// Starts `p`; true once it has run and exited with code 0.
bool RunsCleanly(absl::StatusOr<mp::Process> p) {
  return p.ok() && p->Start().ok() && p->Join().ok() && p->ExitCode() == 0;
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  mp::Context* ctx = mp::GetContext();
  absl::StatusOr<mp::Lock> lock = ctx->Lock();
  absl::StatusOr<mp::RLock> rlock = ctx->RLock();
  absl::StatusOr<mp::Value<int64_t>> total = ctx->Value<int64_t>(0, /*lock=*/false);
  if (!lock.ok() || !rlock.ok() || !total.ok()) return 1;

  // Four children add 1000 each: two under std::lock_guard, two under std::scoped_lock.
  std::vector<mp::Process> adders;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<mp::Process> p = i % 2 == 0 ? ctx->Process<&AddUnderLock>(*lock, *total)
                                               : ctx->Process<&AddUnderBoth>(*lock, *rlock, *total);
    if (!p.ok() || !p->Start().ok()) return 1;
    adders.push_back(*p);
  }
  for (mp::Process& p : adders) Check(p.Join().ok() && p.ExitCode() == 0, "an adder failed");
  absl::StatusOr<int64_t> sum = total->Get();
  Check(sum.ok() && *sum == 4 * kAdds, "the total is not 4000");
  std::printf("total: %lld\n", static_cast<long long>(sum.value_or(-1)));

  // std::unique_lock with try_lock_for: a child cannot take the Lock the parent holds.
  {
    std::unique_lock<mp::Lock> held(*lock);
    Check(RunsCleanly(ctx->Process<&TryBusyLock>(*lock)), "a child took a held Lock");
  }

  // Semaphore(2): four visitors, two inside at a time.
  absl::StatusOr<mp::Semaphore> sem = ctx->Semaphore(2);
  absl::StatusOr<mp::Barrier> pair = ctx->Barrier(2);
  absl::StatusOr<mp::Value<int32_t>> inside = ctx->Value<int32_t>(0);
  absl::StatusOr<mp::Value<int32_t>> most = ctx->Value<int32_t>(0);
  if (!sem.ok() || !pair.ok() || !inside.ok() || !most.ok()) return 1;
  std::vector<mp::Process> visitors;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<mp::Process> p = ctx->Process<&Visit>(*sem, *pair, *inside, *most);
    if (!p.ok() || !p->Start().ok()) return 1;
    visitors.push_back(*p);
  }
  for (mp::Process& p : visitors) Check(p.Join().ok() && p.ExitCode() == 0, "a visitor failed");
  absl::StatusOr<int32_t> crowd = most->Get();
  Check(crowd.ok() && *crowd == 2, "not exactly two visitors at most inside Semaphore(2)");
  std::printf("at most %d inside Semaphore(2)\n", crowd.value_or(-1));

  // A holder killed with the lock held: the parent's guard takes it over, and knows.
  absl::StatusOr<mp::Event> holding = ctx->Event();
  absl::StatusOr<mp::Event> never = ctx->Event();
  if (!holding.ok() || !never.ok()) return 1;
  absl::StatusOr<mp::Process> holder = ctx->Process<&HoldUntilKilled>(*lock, *holding, *never);
  if (!holder.ok() || !holder->Start().ok()) return 1;
  absl::StatusOr<bool> held = holding->Wait(absl::Seconds(60));
  Check(held.ok() && *held, "the holder never took the lock");
  Check(holder->Kill().ok() && holder->Join().ok(), "could not kill the holder");
  {
    std::lock_guard<mp::Lock> guard(*lock);
    Check(lock->owner_died(), "owner_died() is false after the holder was killed");
    std::printf("took over the lock of killed pid %d: owner_died() = %d\n",
                holder->Pid().value_or(-1), lock->owner_died());
  }
  // The next acquire is an ordinary one.
  {
    std::lock_guard<mp::Lock> guard(*lock);
    Check(!lock->owner_died(), "owner_died() stayed true after a normal acquire");
  }
  return failures == 0 ? 0 : 1;
}
