// Copyright 2026 The mp Authors.

#include "pool/process_launcher.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "base/mutex.h"
#include "channels/connection.h"
#include "pool/worker_loop.h"
#include "serialize/fd.h"
#include "start_methods/forked_server.h"
#include "start_methods/process.h"

namespace mp {
namespace pool_internal {
namespace {

class ProcessWorker : public LaunchedWorker {
 public:
  ProcessWorker(Process process, std::unique_ptr<ConnectionWorkerTransport> transport, int pid,
                int sentinel)
      : process_(std::move(process)),
        transport_(std::move(transport)),
        pid_(pid),
        sentinel_(sentinel) {}
  ~ProcessWorker() override {
    if (!reaped_) {
      process_.Kill().IgnoreError();
      process_.Join().IgnoreError();
    }
    process_.Close().IgnoreError();
  }

  WorkerTransport& transport() override { return *transport_; }
  int pid() const override { return pid_; }
  int sentinel() const override { return sentinel_; }
  absl::Status Kill() override { return process_.Kill(); }
  std::optional<int> Reap() override {
    process_.Join().IgnoreError();
    reaped_ = true;
    return process_.ExitCode();
  }

 private:
  Process process_;
  std::unique_ptr<ConnectionWorkerTransport> transport_;
  const int pid_;
  const int sentinel_;
  bool reaped_ = false;
};

// What the initializer's in-memory arguments are pinned as (forked_server.h).
constexpr char kInitializerPin[] = "pool initializer";

// The entry point of a worker forked by the pool's fork server: PoolWorkerMain, with the
// initializer's in-memory arguments found under `pin` (0: none) in this worker's copy of the
// pool's memory, as a worker forked from the pool's process has them in its Target. (Not found
// cannot happen, since they were pinned before the server was forked; the worker would then decode
// the arguments' bytes, and a fork-domain object among them fails the initializer by name.)
absl::Status ForkServerWorkerMain(Connection conn, ShmHandle slots, int64_t slot_index,
                                  WorkerInitializer init, uint64_t pin) {
  if (pin != 0) {
    absl::StatusOr<std::shared_ptr<const void>> pinned =
        process_internal::FindPinned(pin, kInitializerPin);
    if (pinned.ok()) init.in_memory = std::static_pointer_cast<const InitializerResources>(*pinned);
  }
  return PoolWorkerMain(std::move(conn), std::move(slots), slot_index, std::move(init));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProcessLauncher>> ProcessLauncher::Create(
    std::shared_ptr<StartMethod> method, const PoolInitializer& initializer) {
  if (method == nullptr || method->Name() != "fork") {
    return std::make_unique<ProcessLauncher>(std::move(method));
  }
  uint64_t pin = 0;
  if (initializer.resources != nullptr && !initializer.resources->fork_only().empty()) {
    absl::StatusOr<uint64_t> key =
        process_internal::PinForForkChildren(initializer.resources, kInitializerPin);
    if (!key.ok()) return key.status();
    pin = *key;
  }
  absl::StatusOr<std::shared_ptr<ForkServer>> server = process_internal::ForkedServerStartMethod();
  if (!server.ok()) {
    if (pin != 0) process_internal::Unpin(pin);
    return server.status();
  }
  return std::unique_ptr<ProcessLauncher>(new ProcessLauncher(*std::move(server), pin));
}

ProcessLauncher::~ProcessLauncher() {
  if (initializer_pin_ != 0) process_internal::Unpin(initializer_pin_);
}

absl::StatusOr<std::unique_ptr<LaunchedWorker>> ProcessLauncher::Start(const WorkerSpec& spec) {
  absl::StatusOr<std::pair<Connection, Connection>> pipe = Pipe(true);
  if (!pipe.ok()) return pipe.status();
  // The worker's end travels as an argument (its Codec: the side socket and the ring's memfd);
  // Start drops the parent's copy with the target, so that a dead worker's end is closed everywhere
  // (sends to it fail instead of blocking, and its replies' end of file is seen).
  Connection child_end = std::move(pipe->second);
  absl::StatusOr<std::unique_ptr<ConnectionWorkerTransport>> transport =
      ConnectionWorkerTransport::Create(std::move(pipe->first), true);
  if (!transport.ok()) return transport.status();
  absl::StatusOr<Process> p = Process::Create(
      method_,
      via_fork_server_
          ? Call<&ForkServerWorkerMain>(std::move(child_end), spec.slots, int64_t{spec.index},
                                        ToWorkerInitializer(spec.initializer), initializer_pin_)
          : Call<&PoolWorkerMain>(std::move(child_end), spec.slots, int64_t{spec.index},
                                  ToWorkerInitializer(spec.initializer)),
      ProcessOptions{.name = spec.name, .daemon = true});
  if (!p.ok()) return p.status();
  if (absl::Status started = p->Start(); !started.ok()) return started;
  absl::StatusOr<int> sentinel = p->Sentinel();
  if (!sentinel.ok()) {
    p->Kill().IgnoreError();
    p->Join().IgnoreError();
    return sentinel.status();
  }
  const int pid = p->Pid().value_or(0);
  return std::unique_ptr<LaunchedWorker>(
      new ProcessWorker(*std::move(p), *std::move(transport), pid, *sentinel));
}

namespace {

struct LauncherRegistry {
  Mutex mu;
  absl::flat_hash_map<std::string, WorkerLauncherFactory> factories ABSL_GUARDED_BY(mu);
};

LauncherRegistry& Launchers() {
  static auto* const registry = new LauncherRegistry;
  return *registry;
}

}  // namespace

void RegisterWorkerLauncher(absl::string_view method_name, WorkerLauncherFactory factory) {
  LauncherRegistry& r = Launchers();
  MutexLock lock(&r.mu);
  r.factories[method_name] = factory;
}

absl::StatusOr<std::unique_ptr<WorkerLauncher>> MakeWorkerLauncher(
    std::shared_ptr<StartMethod> method, const PoolInitializer& initializer) {
  if (method == nullptr) return absl::InvalidArgumentError("mp: a pool needs a start method");
  WorkerLauncherFactory factory = nullptr;
  {
    LauncherRegistry& r = Launchers();
    MutexLock lock(&r.mu);
    auto it = r.factories.find(method->Name());
    if (it != r.factories.end()) factory = it->second;
  }
  if (factory != nullptr) return factory(std::move(method), initializer);
  absl::StatusOr<std::unique_ptr<ProcessLauncher>> launcher =
      ProcessLauncher::Create(std::move(method), initializer);
  if (!launcher.ok()) return launcher.status();
  return std::unique_ptr<WorkerLauncher>(*std::move(launcher));
}

}  // namespace pool_internal
}  // namespace mp
