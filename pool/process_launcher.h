// Copyright 2026 The mp Authors.
//
// pool/process_launcher.h — workers as mp::Process children of any StartMethod (internal to mp),
// connected by a socketpair (ConnectionWorkerTransport). The only part of the pool that knows how a
// worker is started.

#ifndef MP_POOL_PROCESS_LAUNCHER_H_
#define MP_POOL_PROCESS_LAUNCHER_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "pool/initializer.h"
#include "pool/worker_transport.h"
#include "start_methods/start_method.h"

namespace mp {
namespace pool_internal {

// Starts each worker as a daemon Process of `method` running PoolWorkerMain (worker_loop.h).
class ProcessLauncher : public WorkerLauncher {
 public:
  // The launcher of a pool: call it before the pool's threads start. Under the fork method (a
  // method whose Name() is "fork") the workers are not forked from this process, whose pool
  // threads would make every replacement a fork of a multi-threaded process (with the fork
  // method's warning about mp's own threads): this forks a single-threaded fork server now
  // (start_methods/forked_server.h) and every worker, replacements too, is forked from it. Its
  // workers therefore see this process's memory as it is now, and `initializer` (the one every
  // WorkerSpec will carry) is pinned for them when its arguments hold fork-domain objects, which
  // such a worker runs from memory as a fork worker does. The fork method's warning is printed
  // here, once, only if this process already has threads (the user's). Other methods are used as
  // they are. Errors of ForkedServerStartMethod and PinForForkChildren.
  static absl::StatusOr<std::unique_ptr<ProcessLauncher>> Create(
      std::shared_ptr<StartMethod> method, const PoolInitializer& initializer);
  // Workers started directly by `method` (any method, fork included).
  explicit ProcessLauncher(std::shared_ptr<StartMethod> method) : method_(std::move(method)) {}
  ~ProcessLauncher() override;
  // Errors of Pipe, Process::Create and Start.
  absl::StatusOr<std::unique_ptr<LaunchedWorker>> Start(const WorkerSpec& spec) override;

 private:
  ProcessLauncher(std::shared_ptr<StartMethod> fork_server, uint64_t pin)
      : method_(std::move(fork_server)), initializer_pin_(pin), via_fork_server_(true) {}

  const std::shared_ptr<StartMethod> method_;
  // Under a fork server: the key of the initializer's pinned in-memory arguments (0: none), which
  // the workers start through ForkServerWorkerMain.
  const uint64_t initializer_pin_ = 0;
  const bool via_fork_server_ = false;
};

// The launcher of a pool whose workers start by `method`: the one registered for method->Name()
// (RegisterWorkerLauncher: the mpi method's, whose workers a Pipe cannot reach), else
// ProcessLauncher::Create(method, initializer). kInvalidArgument for a null method.
absl::StatusOr<std::unique_ptr<WorkerLauncher>> MakeWorkerLauncher(
    std::shared_ptr<StartMethod> method, const PoolInitializer& initializer);

using WorkerLauncherFactory = absl::StatusOr<std::unique_ptr<WorkerLauncher>> (*)(
    std::shared_ptr<StartMethod> method, const PoolInitializer& initializer);
// Makes MakeWorkerLauncher use `factory` for the start method named `method_name` (from a static
// initializer of the library that defines the method's launcher).
void RegisterWorkerLauncher(absl::string_view method_name, WorkerLauncherFactory factory);

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_PROCESS_LAUNCHER_H_
