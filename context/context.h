// Copyright 2026 The mp Authors.
//
// context/context.h — contexts: Python's multiprocessing.get_context() and set_start_method().
//
// A Context binds one start method ("fork", "spawn" or "forkserver") and is the factory for
// everything: Process, Pipe, Queue, SimpleQueue, JoinableQueue, Lock, RLock, Semaphore,
// BoundedSemaphore, Event, Condition, Barrier, Pool, ProcessPoolExecutor, Manager, SharedMemory,
// Value, Array. What a context makes can go to the processes it starts:
//
//   mp::Context* ctx = *mp::GetContext("spawn");
//   absl::StatusOr<mp::Queue> q = ctx->Queue();
//   absl::StatusOr<mp::Lock> lock = ctx->Lock();
//   absl::StatusOr<mp::Process> p = ctx->Process<&Worker>(*q, *lock, int64_t{7});
//   p->Start(); ... p->Join();
//
// Sharing domains (../shared/DESIGN.md). The fork context makes its shared objects in the fork
// domain (anonymous MAP_SHARED memory: cheapest, but only a forked child inherits it); spawn and
// forkserver make them in the transferable domain (memfd segments whose descriptors travel to the
// child). A Pipe's Connections (shared-memory rings in a sealed memfd beside a side socket; see
// channels/connection.h) travel as descriptors, which every start method can carry, so every
// context's Pipe works everywhere.
//
// The rules, checked when a Process is constructed, never later:
//   object / target          fork child   spawn child        forkserver child
//   fork-domain object       ok           refused            refused
//   transferable object      ok           ok                 ok
//   any callable (lambda)    ok           refused            refused
//   registered function      ok           ok                 ok
//   argument without Codec   compile error (for every method: Process<&Fn> encodes its arguments)
// "Refused" is kFailedPrecondition naming the object, the context that made it, the start method
// that refused it and the fix ("Lock was created by the 'fork' context and cannot be passed to a
// 'spawn' process ...; create it with mp::GetContext(\"spawn\")->Lock()"). Objects nested inside
// arguments (a vector of Locks, a struct holding a Queue) are found too: each shareable object's
// Codec notes itself while the arguments are encoded (serialize/fd.h, FdTable::NoteForkOnly).
//
// The default context. GetContext() returns the default context; the first call fixes it, as
// CPython's get_context() does. SetStartMethod(method) chooses it before that, once;
// SetStartMethod(method, /*force=*/true) changes it at any time. The default start method is
// "forkserver", as in CPython 3.14 on Linux: forking the caller's process (the "fork" method) from
// a program that has threads can deadlock the child on a lock some other thread held, and "spawn"
// pays an exec per child; the forkserver forks from a small single-threaded server, costs about a
// fork, and runs the same registered functions spawn runs. Programs whose targets are lambdas
// choose "fork" explicitly. A library that wants a method uses GetContext(method) and leaves the
// program's default alone.
//
// The "mpi" context (mpi/start_method.h) starts processes with Open MPI, on this host or others:
// it exists when the program links @mp//mpi:start_method. Its processes may be on another host, so
// it makes no object that lives in this host's memory or kernel: Lock, RLock, Semaphore,
// BoundedSemaphore, Event, Condition, Barrier, Queue, SimpleQueue, JoinableQueue, Value, Array
// and SharedMemory are kFailedPrecondition naming the fix (a Manager served on TCP, whose proxies
// reach every host). Its Pipe() gives socket Connections, which an mpi process on any host can be
// passed (the mpi method carries them over TCP; Pipe(false) is kUnimplemented); its Pool and
// ProcessPoolExecutor run their workers as mpi processes (mpi/pool_launcher.h); its Manager serves
// on TCP at an address of this host that other hosts reach, so its proxies work on every host.
//
// Contexts are never destroyed (like CPython's module-level context objects), so Context* stays
// valid for the whole program. All functions here are thread-safe.

#ifndef MP_CONTEXT_CONTEXT_H_
#define MP_CONTEXT_CONTEXT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "channels/connection.h"
#include "channels/queue.h"
#include "managers/manager.h"
#include "pool/pool.h"
#include "pool/process_pool_executor.h"
#include "shared_memory/shared_memory.h"
#include "shared_memory/value.h"
#include "start_methods/process.h"
#include "start_methods/start_method.h"
#include "start_methods/target.h"
#include "sync/barrier.h"
#include "sync/condition.h"
#include "sync/event.h"
#include "sync/lock.h"
#include "sync/rlock.h"
#include "sync/semaphore.h"
#include "sync/shm.h"

namespace mp {

class Context {
 public:
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // "fork", "spawn" or "forkserver".
  absl::string_view method() const { return method_; }
  // Where this context's shared objects live: kFork for "fork", kTransferable otherwise.
  ShmDomain domain() const { return domain_; }
  const std::shared_ptr<StartMethod>& start_method() const { return start_method_; }

  // ---- Processes ----

  // A process that will call Fn(args...) (Python's ctx.Process(target=Fn, args=(...))). Every start
  // method runs it; the arguments are checked against the rules above now.
  template <auto Fn, typename... A>
  absl::StatusOr<mp::Process> Process(A&&... args) const {
    return Process(Call<Fn>(std::forward<A>(args)...));
  }
  // The same with a name and daemon flag.
  template <auto Fn, typename... A>
  absl::StatusOr<mp::Process> NamedProcess(ProcessOptions options, A&&... args) const {
    return Process(Call<Fn>(std::forward<A>(args)...), std::move(options));
  }
  // A process that runs `target`: mp::Call<&Fn>(...) (every method) or Target::Callable(lambda)
  // ("fork" only).
  absl::StatusOr<mp::Process> Process(Target target, ProcessOptions options = {}) const;

  // ---- Channels ----

  // Two connected Connections over shared memory (channels/connection.h, "Two transports"); duplex
  // or one-way (first end reads, second writes).
  absl::StatusOr<std::pair<Connection, Connection>> Pipe(bool duplex = true) const;
  // maxsize 0 is unlimited in items (the ring's byte capacity still bounds it).
  absl::StatusOr<mp::Queue> Queue(size_t maxsize = 0) const;
  // The full set of options; options.domain is replaced by this context's domain.
  absl::StatusOr<mp::Queue> Queue(QueueOptions options) const;
  absl::StatusOr<mp::SimpleQueue> SimpleQueue() const;
  absl::StatusOr<mp::JoinableQueue> JoinableQueue(size_t maxsize = 0) const;

  // ---- Synchronization ----

  absl::StatusOr<mp::Lock> Lock() const;
  absl::StatusOr<mp::RLock> RLock() const;
  absl::StatusOr<mp::Semaphore> Semaphore(int64_t value = 1) const;
  absl::StatusOr<mp::BoundedSemaphore> BoundedSemaphore(int64_t value = 1) const;
  absl::StatusOr<mp::Event> Event() const;
  // Condition() owns a new RLock, as CPython's does; the others use the given lock, which must come
  // from a context of the same domain.
  absl::StatusOr<mp::Condition> Condition() const;
  absl::StatusOr<mp::Condition> Condition(const mp::Lock& lock) const;
  absl::StatusOr<mp::Condition> Condition(const mp::RLock& lock) const;
  absl::StatusOr<mp::Barrier> Barrier(int parties, mp::Barrier::Action action = nullptr,
                                      absl::Duration timeout = absl::InfiniteDuration()) const;

  // ---- Pools and shared data ----

  // Workers started by this context's start method (tasks are registered functions, so every
  // method runs them). processes 0 means CpuCount().
  absl::StatusOr<mp::Pool> Pool(PoolOptions options = {}) const;
  absl::StatusOr<mp::Pool> Pool(int processes) const;
  // concurrent.futures.ProcessPoolExecutor(mp_context=ctx): workers started by this context's start
  // method. options.method must be left null (kInvalidArgument otherwise: the context chooses it).
  absl::StatusOr<mp::ProcessPoolExecutor> ProcessPoolExecutor(
      ProcessPoolExecutorOptions options = {}) const;
  // ---- Managers ----

  // multiprocessing.Manager() / ctx.Manager(): a manager's server process started by this
  // context's start method, serving the built-in shared types (managers/manager.h); with a
  // registrar, the classes it registers too (managers/registry.h). Its proxies are network-domain
  // objects: they go to children of every start method.
  // On the mpi context: the server is a spawn process of this host listening on TCP at this host's
  // first address other hosts can reach (options.address, when empty), so that its proxies work in
  // mpi processes on every host.
  absl::StatusOr<mp::Manager> Manager(ManagerOptions options = {}) const {
    std::shared_ptr<StartMethod> method = ManagerMethod(options);  // before options moves
    return mp::Manager::Start(std::move(method), std::move(options));
  }
  // With an initializer (CPython's manager.start(initializer, initargs)): see
  // BaseManager::Start. ctx->Manager<nullptr, &Init>(options, args...) for one without a registrar.
  template <Registrar R, auto Init = nullptr, typename... A>
  absl::StatusOr<mp::Manager> Manager(ManagerOptions options = {}, A&&... initargs) const {
    std::shared_ptr<StartMethod> method = ManagerMethod(options);
    return mp::Manager::Start<R, Init>(std::move(method), std::move(options),
                                       std::forward<A>(initargs)...);
  }

  // Named POSIX shared memory (multiprocessing.shared_memory.SharedMemory): travels by name, so
  // every start method takes it. See shared_memory/shared_memory.h for names and reclamation.
  absl::StatusOr<mp::SharedMemory> SharedMemory(std::optional<std::string> name,
                                                bool create = false, int64_t size = 0) const;
  // Value(typecode, v, lock) / Array(typecode, n or sequence, lock) of this context's domain;
  // lock = false is RawValue / RawArray.
  template <typename T>
  absl::StatusOr<mp::Value<T>> Value(const T& initial = T{}, bool lock = true) const {
    if (absl::Status s = CheckHostLocal("Value"); !s.ok()) return s;
    return mp::Value<T>::Create(domain_, initial, lock);
  }
  template <typename T>
  absl::StatusOr<mp::Array<T>> Array(size_t length, bool lock = true) const {
    if (absl::Status s = CheckHostLocal("Array"); !s.ok()) return s;
    return mp::Array<T>::Create(domain_, length, lock);
  }
  template <typename T>
  absl::StatusOr<mp::Array<T>> Array(absl::Span<const T> init, bool lock = true) const {
    if (absl::Status s = CheckHostLocal("Array"); !s.ok()) return s;
    return mp::Array<T>::Create(domain_, init, lock);
  }

 private:
  friend absl::StatusOr<Context*> GetContext(absl::string_view method);
  Context(std::string method, std::shared_ptr<StartMethod> start_method);

  // kFailedPrecondition unless `domain` (of a lock given to Condition) is this context's.
  absl::Status CheckSameDomain(ShmDomain domain, absl::string_view what) const;
  // The mpi context's refusal of an object that lives in this host's memory or kernel (`what`:
  // "Lock"), naming the fix; OK in every other context.
  absl::Status CheckHostLocal(absl::string_view what) const;
  // The mpi context's kUnimplemented for what it does not offer yet (`what`: "Pool"), naming what
  // works meanwhile; OK in every other context.
  // The start method of this context's Manager server, and its options: on the mpi context a
  // spawn server on TCP at an address other hosts reach (options->address, when empty).
  std::shared_ptr<StartMethod> ManagerMethod(ManagerOptions& options) const;

  std::string method_;
  ShmDomain domain_;
  std::shared_ptr<StartMethod> start_method_;
};

// The context of `method`: "fork", "spawn", "forkserver", or "mpi" when the program links
// @mp//mpi:start_method. kInvalidArgument naming the methods that exist for any other name (and
// the target to link for "mpi").
absl::StatusOr<Context*> GetContext(absl::string_view method);
// The default context (see the header comment); fixes the default start method if it was not set.
Context* GetContext();

// Chooses the default start method. kFailedPrecondition if the default was already fixed (by an
// earlier SetStartMethod or a use of the default context) unless `force`; kInvalidArgument for an
// unknown method.
absl::Status SetStartMethod(absl::string_view method, bool force = false);

// The default start method. With allow_none, nullopt if it has not been fixed yet (and it stays
// unfixed); without, fixes it (to "forkserver" unless SetStartMethod chose) and returns it.
std::optional<std::string> GetStartMethod(bool allow_none = false);

// Every start method this program has, the default first ("mpi" last, when linked).
std::vector<std::string> GetAllStartMethods();

}  // namespace mp

#endif  // MP_CONTEXT_CONTEXT_H_
