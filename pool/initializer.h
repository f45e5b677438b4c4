// Copyright 2026 The mp Authors.
//
// pool/initializer.h — mp::PoolInitializer: CPython's Pool(initializer=f, initargs=(...)), a
// registered function each worker runs once before its first task.
//
//   mp::Lock* g_lock;                                   // the worker's copy
//   absl::Status Init(mp::Lock lock) { g_lock = new mp::Lock(std::move(lock)); return {}; }
//   ...
//   absl::StatusOr<mp::Lock> lock = ctx->Lock();
//   absl::StatusOr<mp::PoolInitializer> init = mp::MakePoolInitializer<&Init>(*lock);
//   absl::StatusOr<mp::Pool> pool = ctx->Pool({.processes = 4, .initializer = *init});
//
// The arguments may hold shared objects (Lock, RLock, Semaphore, Event, Condition, Barrier, Queue,
// Value, Array, a Connection, a PassedFd), as a Process's arguments may: they travel with each
// worker's start, so every worker (replacements too) gets its own handle to the same object. The
// start method's rules apply when the workers start (Pool::Create): a fork-domain object can reach
// only fork workers, and spawn or forkserver refuse it with kFailedPrecondition naming it.
//
// A PoolInitializer keeps what its arguments refer to alive for as long as it or a copy lives (the
// pool keeps one): a copy of the arguments and a duplicate of every descriptor they hold, so a
// worker started later (a replacement) gets the same objects even after the caller dropped its
// handles. (A fork worker of arguments that hold a fork-domain object runs the initializer with the
// caller's own arguments, as a fork Process runs its target: their raw PassedFd numbers are then
// the caller's, which it must keep open.)

#ifndef MP_POOL_INITIALIZER_H_
#define MP_POOL_INITIALIZER_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pool/task.h"
#include "serialize/codec.h"
#include "serialize/fd.h"

namespace mp {
namespace pool_internal {

// What an initializer's encoded arguments refer to: the descriptors they hold (duplicates, owned
// and closed here; PassedFd slot i of the arguments is fds()[i]), the kinds of the fork-only
// objects they hold, and the arguments themselves, for a worker forked from this process: such a
// worker calls the function with its copy of them (as a fork Process runs its target), since a
// fork-domain object has no descriptor its bytes could carry.
class InitializerResources {
 public:
  // `run_in_fork_child` calls the function with the arguments (moving them: each forked worker
  // has its own copy of this process's memory) and returns its status; it keeps the arguments
  // alive, and with them the fork-domain memory they map.
  InitializerResources(std::vector<int> fds, std::vector<std::string> fork_only,
                       std::function<absl::Status()> run_in_fork_child)
      : fds_(std::move(fds)),
        fork_only_(std::move(fork_only)),
        run_in_fork_child_(std::move(run_in_fork_child)) {}
  ~InitializerResources();
  InitializerResources(const InitializerResources&) = delete;
  InitializerResources& operator=(const InitializerResources&) = delete;

  const std::vector<int>& fds() const { return fds_; }
  const std::vector<std::string>& fork_only() const { return fork_only_; }
  // Only in a worker forked from the process that made the initializer.
  absl::Status RunInForkChild() const { return run_in_fork_child_(); }

 private:
  const std::vector<int> fds_;
  const std::vector<std::string> fork_only_;
  const std::function<absl::Status()> run_in_fork_child_;
};

}  // namespace pool_internal

struct PoolInitializer {
  std::string function;  // registered task name; empty: no initializer
  std::string args;      // encoded arguments (their PassedFd slots index resources->fds())
  std::shared_ptr<const pool_internal::InitializerResources> resources;  // null: none
};

namespace pool_internal {

// Duplicates the descriptors `table` collected while `args` was encoded and builds the
// initializer. Errors of fcntl(F_DUPFD_CLOEXEC) (kResourceExhausted with no descriptor left).
absl::StatusOr<PoolInitializer> MakeInitializer(const std::string& function, std::string args,
                                                const FdTable& table,
                                                std::function<absl::Status()> run_in_fork_child);

// The status an initializer's one encoded result (AppendOk / AppendError) stands for.
absl::Status InitializerStatus(const std::string& result);

// The initializer as it travels to a worker, as one of the worker's start arguments. Its Codec
// carries the descriptors as PassedFd values (so the start method passes them beside the bytes)
// and notes the fork-only objects in the current FdTable (so spawn and forkserver refuse them by
// name).
struct WorkerInitializer {
  std::string function;
  std::string args;
  std::vector<PassedFd> fds;           // encoding side: not owned; decoding side: owned
  std::vector<std::string> fork_only;  // encoding side only; not sent
  // Not sent, and set only when the arguments hold fork-only objects: present in a worker only when
  // the worker was forked from this process (a fork Process runs its target with the parent's
  // in-memory arguments), which then runs the initializer from it instead of decoding `args`.
  std::shared_ptr<const InitializerResources> in_memory;
};
WorkerInitializer ToWorkerInitializer(const PoolInitializer& init);

// In the worker: runs the initializer, with the arguments in memory when `in_memory` is set, else
// with its arguments decoded against its own descriptors (taking ownership of init.fds). OK, or
// its failure (an exception it threw included, as CurrentExceptionStatus); kNotFound when the
// function is not registered.
absl::Status RunInitializer(WorkerInitializer& init);

}  // namespace pool_internal

template <>
struct Codec<pool_internal::WorkerInitializer> {
  static std::string Name() { return "pool initializer"; }
  static constexpr size_t kMinSize = 3;
  static size_t Size(const pool_internal::WorkerInitializer& v) {
    return Codec<std::string>::Size(v.function) + Codec<std::string>::Size(v.args) +
           Codec<std::vector<PassedFd>>::Size(v.fds);
  }
  static void Encode(const pool_internal::WorkerInitializer& v, ByteWriter& w);
  static absl::Status Decode(ByteReader& r, pool_internal::WorkerInitializer& out);
};

// A PoolInitializer running Fn(args...) in every worker before its first task. Every parameter
// type of Fn needs an mp::Codec; Fn returns void or absl::Status (an error status, or an exception
// it throws, fails the pool: see pool.h). Errors of MakeInitializer.
template <auto Fn, typename... A>
absl::StatusOr<PoolInitializer> MakePoolInitializer(A&&... args) {
  pool_internal::CheckTask<Fn>();
  using Values = pool_internal::ArgsOf<Fn>;
  auto values = std::make_shared<Values>(std::forward<A>(args)...);
  FdTable table;
  std::string bytes;
  {
    ScopedFdTable scope(&table);
    bytes = Encode(*values);
  }
  const std::string& name = *pool_internal::TaskRegistrar<Fn>::name;
  auto run_in_fork_child = [values, &name]() -> absl::Status {
    std::string out;
    try {
      pool_internal::CallAndAppend<Fn>(*values, out);
    } catch (...) {
      return pool_internal::CurrentExceptionStatus(name);
    }
    return pool_internal::InitializerStatus(out);
  };
  return pool_internal::MakeInitializer(name, std::move(bytes), table,
                                        std::move(run_in_fork_child));
}

}  // namespace mp

#endif  // MP_POOL_INITIALIZER_H_
