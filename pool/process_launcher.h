// Copyright 2026 The mp Authors.
//
// pool/process_launcher.h — workers as mp::Process children of any StartMethod (internal to mp),
// connected by a socketpair (SocketWorkerTransport). The only part of the pool that knows how a
// worker is started.

#ifndef MP_POOL_PROCESS_LAUNCHER_H_
#define MP_POOL_PROCESS_LAUNCHER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "pool/worker_transport.h"
#include "start_methods/start_method.h"

namespace mp {
namespace pool_internal {

// Starts each worker as a daemon Process of `method` running PoolWorkerMain (worker_loop.h).
class ProcessLauncher : public WorkerLauncher {
 public:
  explicit ProcessLauncher(std::shared_ptr<StartMethod> method) : method_(std::move(method)) {}
  // Errors of Pipe, Process::Create and Start.
  absl::StatusOr<std::unique_ptr<LaunchedWorker>> Start(const WorkerSpec& spec) override;

 private:
  const std::shared_ptr<StartMethod> method_;
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_PROCESS_LAUNCHER_H_
