// Copyright 2026 The mp Authors.
//
// sync/sync_benchmark.cc — mp's process-shared primitives against Boost.Interprocess and raw
// atomics/futexes, measured in the same binary.
//
//   bazel run -c opt //sync:sync_benchmark
//
// BM_*_Uncontended: one thread, acquire + release per iteration. Two floors: BM_RawAtomic (a
//   test-and-set that never sleeps) and BM_RawFutexLock (the cheapest lock that can sleep).
// BM_*_Contended2Proc: this process and a forked child both loop acquire + release on one lock; the
//   time is per acquire + release of this process; "total_ops" counts both processes' pairs per
//   second.
// BM_*_PingPong: one round trip per iteration between this process and a forked child.
//   BM_RawSpin_PingPong (spinning on one shared word; it sleeps only after ~13 us, which on an idle
//   machine never happens) is the floor of any round trip between two processes, the raw limit of
//   tools/bench's "Queue round trip" and "Event ping-pong" rows;
//   BM_RawFutex_PingPong (always sleeps in FUTEX_WAIT) is the cost of a round trip that sleeps.

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "benchmark/benchmark.h"
#include "boost/interprocess/sync/interprocess_mutex.hpp"
#include "sync/event.h"
#include "sync/futex.h"
#include "sync/lock.h"
#include "sync/shm.h"
#include "testing/pin.h"

namespace mp {
namespace {

// Shared control block for two-process benchmarks, in its own fork-domain mapping.
struct alignas(64) Control {
  std::atomic<uint32_t> go{0};
  std::atomic<uint32_t> stop{0};
  std::atomic<uint64_t> child_ops{0};
  alignas(64) std::atomic<uint32_t> word{0};  // raw futex ping-pong
  alignas(64) boost::interprocess::interprocess_mutex boost_mutex;
};

Control* NewControl() {
  void* p =
      mmap(nullptr, sizeof(Control), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  return new (p) Control;
}

void DeleteControl(Control* c) {
  c->~Control();
  munmap(c, sizeof(Control));
}

// The benchmark process runs on the first CPU, its children on another (testing/pin.h).
const bool kPinned = testing::PinSelf(0);

// Forks a child running `body` (which must return when c->stop is set) on another core than this
// process's; returns its pid.
template <typename Body>
pid_t ForkChild(Body body) {
  const pid_t pid = fork();
  if (pid == 0) {
    testing::PinSelf(1);
    body();
    _exit(0);
  }
  if (pid < 0) std::abort();
  return pid;
}

void Reap(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0) {
  }
}

void BM_Lock_Uncontended(benchmark::State& state) {
  Lock lock = *Lock::Create(ShmDomain::kFork);
  for (auto _ : state) {
    benchmark::DoNotOptimize(lock.Acquire());
    benchmark::DoNotOptimize(lock.Release());
  }
}
BENCHMARK(BM_Lock_Uncontended);

void BM_BoostInterprocessMutex_Uncontended(benchmark::State& state) {
  Control* c = NewControl();
  for (auto _ : state) {
    c->boost_mutex.lock();
    c->boost_mutex.unlock();
  }
  DeleteControl(c);
}
BENCHMARK(BM_BoostInterprocessMutex_Uncontended);

// The floor: a CAS to take and a store to give back, no futex, no owner.
void BM_RawAtomic_Uncontended(benchmark::State& state) {
  Control* c = NewControl();
  for (auto _ : state) {
    uint32_t expected = 0;
    while (!c->word.compare_exchange_weak(expected, 1, std::memory_order_acquire)) expected = 0;
    c->word.store(0, std::memory_order_release);
  }
  DeleteControl(c);
}
BENCHMARK(BM_RawAtomic_Uncontended);

// The floor of a lock that can sleep (Drepper's "Futexes Are Tricky", mutex 2): one shared futex
// word, 0 free, 1 taken, 2 taken with waiters. Acquire is a CAS 0 -> 1, or else marks the word 2
// and sleeps in FUTEX_WAIT until an exchange finds it free; release exchanges 0 in and wakes one
// waiter if it took a 2. No owner, no death detection: what mp's Lock adds to this is its cost.
void RawFutexLockAcquire(std::atomic<uint32_t>& word) {
  uint32_t seen = 0;
  if (word.compare_exchange_strong(seen, 1, std::memory_order_acquire)) return;
  if (seen != 2) seen = word.exchange(2, std::memory_order_acquire);
  while (seen != 0) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT, 2, nullptr, nullptr, 0);
    seen = word.exchange(2, std::memory_order_acquire);
  }
}

void RawFutexLockRelease(std::atomic<uint32_t>& word) {
  if (word.exchange(0, std::memory_order_release) == 2) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
  }
}

void BM_RawFutexLock_Uncontended(benchmark::State& state) {
  Control* c = NewControl();
  for (auto _ : state) {
    RawFutexLockAcquire(c->word);
    RawFutexLockRelease(c->word);
  }
  DeleteControl(c);
}
BENCHMARK(BM_RawFutexLock_Uncontended);

template <typename Acquire, typename Release>
void Contended(benchmark::State& state, Acquire acquire, Release release) {
  Control* c = NewControl();
  const pid_t child = ForkChild([&] {
    while (c->go.load(std::memory_order_acquire) == 0) SpinPause();
    uint64_t ops = 0;
    while (c->stop.load(std::memory_order_relaxed) == 0) {
      acquire();
      release();
      ++ops;
    }
    c->child_ops.store(ops);
  });
  c->go.store(1, std::memory_order_release);
  for (auto _ : state) {
    acquire();
    release();
  }
  c->stop.store(1);
  Reap(child);
  state.counters["total_ops"] = benchmark::Counter(
      static_cast<double>(state.iterations() + c->child_ops.load()), benchmark::Counter::kIsRate);
  DeleteControl(c);
}

void BM_Lock_Contended2Proc(benchmark::State& state) {
  Lock lock = *Lock::Create(ShmDomain::kFork);
  Contended(
      state, [&] { benchmark::DoNotOptimize(lock.Acquire()); },
      [&] { benchmark::DoNotOptimize(lock.Release()); });
}
BENCHMARK(BM_Lock_Contended2Proc)->UseRealTime();

void BM_BoostInterprocessMutex_Contended2Proc(benchmark::State& state) {
  // A separate mapping holds the mutex the two processes share.
  Control* shared = NewControl();
  Contended(
      state, [&] { shared->boost_mutex.lock(); }, [&] { shared->boost_mutex.unlock(); });
  DeleteControl(shared);
}
BENCHMARK(BM_BoostInterprocessMutex_Contended2Proc)->UseRealTime();

// The raw limit: a test-and-set spin lock on one shared word (no owner, no sleeping, no death
// detection), hammered by the same two processes.
void BM_RawSpinlock_Contended2Proc(benchmark::State& state) {
  Control* shared = NewControl();
  auto acquire = [&] {
    uint32_t expected = 0;
    while (!shared->word.compare_exchange_weak(expected, 1, std::memory_order_acquire)) {
      expected = 0;
      SpinPause();
    }
  };
  Contended(state, acquire, [&] { shared->word.store(0, std::memory_order_release); });
  DeleteControl(shared);
}
BENCHMARK(BM_RawSpinlock_Contended2Proc)->UseRealTime();

// The sleeping lock's floor hammered by the same two processes.
void BM_RawFutexLock_Contended2Proc(benchmark::State& state) {
  Control* shared = NewControl();
  Contended(
      state, [&] { RawFutexLockAcquire(shared->word); },
      [&] { RawFutexLockRelease(shared->word); });
  DeleteControl(shared);
}
BENCHMARK(BM_RawFutexLock_Contended2Proc)->UseRealTime();

void BM_Event_PingPong(benchmark::State& state) {
  ShmSegment seg = *ShmSegment::Create(ShmDomain::kFork, 4096);
  Event ping = *Event::Create(seg);
  Event pong = *Event::Create(seg);
  Control* c = NewControl();
  const pid_t child = ForkChild([&] {
    for (;;) {
      if (!ping.Wait().value_or(false)) break;
      ping.Clear();
      if (c->stop.load(std::memory_order_relaxed) != 0) break;
      pong.Set();
    }
  });
  for (auto _ : state) {
    ping.Set();
    benchmark::DoNotOptimize(pong.Wait());
    pong.Clear();
  }
  c->stop.store(1);
  ping.Set();
  Reap(child);
  DeleteControl(c);
}
BENCHMARK(BM_Event_PingPong)->UseRealTime();

// Raw futex round trip: the word goes 0 -> 1 (parent) -> 0 (child) with FUTEX_WAIT/FUTEX_WAKE and
// no spinning; 2 tells the child to stop.
void BM_RawFutex_PingPong(benchmark::State& state) {
  Control* c = NewControl();
  std::atomic<uint32_t>* word = &c->word;
  auto wait_while = [](std::atomic<uint32_t>* w, uint32_t v) {
    while (w->load(std::memory_order_acquire) == v) {
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAIT, v, nullptr, nullptr, 0);
    }
  };
  auto wake = [](std::atomic<uint32_t>* w) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAKE, 1, nullptr, nullptr, 0);
  };
  const pid_t child = ForkChild([&] {
    for (;;) {
      wait_while(word, 0);
      if (word->load() == 2) break;
      word->store(0, std::memory_order_release);
      wake(word);
    }
  });
  for (auto _ : state) {
    word->store(1, std::memory_order_release);
    wake(word);
    wait_while(word, 1);
  }
  word->store(2);
  wake(word);
  Reap(child);
  DeleteControl(c);
}
BENCHMARK(BM_RawFutex_PingPong)->UseRealTime();

// The true floor of a round trip between two processes (the raw limit of tools/bench's "Queue round
// trip" and "Event ping-pong" rows): one shared word goes 0 -> 1 (parent) -> 0 (child), each side
// spinning on it (a load and SpinPause), so a round trip is the cache line moving to the other core
// and back; 2 tells the child to stop. One word beats a ping word and a pong word on separate lines
// here (~60 vs ~100 ns per round trip, AMD EPYC VM, idle). A waiter that has spun kSpinFor pauses
// (~13 us, Event::Wait's spin) marks the word (kSleeper) and sleeps in FUTEX_WAIT; the other side
// sets the word with an exchange and wakes it only if marked. While the partner runs on the other
// core the futex is never reached, so on an idle machine this is pure spinning (the exchange costs
// nothing measurable: 61-65 ns per round trip with or without it). When the cores are
// oversubscribed, pure spinning (or spinning and sched_yield) burns the time slice the partner
// needs and measured slower than mp's spin-then-sleep waits (24 us against 15 us at load 4);
// sleeping keeps this a floor there too.
void BM_RawSpin_PingPong(benchmark::State& state) {
  constexpr int kSpinFor = 2 * kSpinIterations;
  constexpr uint32_t kSleeper = 0x80000000u;
  Control* c = NewControl();
  std::atomic<uint32_t>* word = &c->word;
  // Waits until *word (without kSleeper) != v; returns the new value.
  auto wait_while = [](std::atomic<uint32_t>* w, uint32_t v) {
    uint32_t seen;
    for (int spins = 0; ((seen = w->load(std::memory_order_acquire)) & ~kSleeper) == v; ++spins) {
      if (spins < kSpinFor) {
        SpinPause();
      } else if ((seen & kSleeper) != 0 || w->compare_exchange_strong(seen, v | kSleeper)) {
        syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAIT, v | kSleeper, nullptr,
                nullptr, 0);
      }
    }
    return seen & ~kSleeper;
  };
  auto set = [](std::atomic<uint32_t>* w, uint32_t v) {
    if ((w->exchange(v, std::memory_order_acq_rel) & kSleeper) != 0) {
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAKE, 1, nullptr, nullptr, 0);
    }
  };
  const pid_t child = ForkChild([&] {
    while (wait_while(word, 0) != 2) set(word, 0);
  });
  for (auto _ : state) {
    set(word, 1);
    wait_while(word, 1);
  }
  set(word, 2);
  Reap(child);
  DeleteControl(c);
}
BENCHMARK(BM_RawSpin_PingPong)->UseRealTime();

}  // namespace
}  // namespace mp
