// Copyright 2026 The mp Authors.

#include "pool/process_launcher.h"

#include <optional>
#include <utility>

#include "channels/connection.h"
#include "pool/worker_loop.h"
#include "serialize/fd.h"
#include "start_methods/process.h"

namespace mp {
namespace pool_internal {
namespace {

class ProcessWorker : public LaunchedWorker {
 public:
  ProcessWorker(Process process, std::unique_ptr<SocketWorkerTransport> transport, int pid,
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
    absl::StatusOr<std::optional<int>> code = process_.ExitCode();
    return code.ok() ? *code : std::nullopt;
  }

 private:
  Process process_;
  std::unique_ptr<SocketWorkerTransport> transport_;
  const int pid_;
  const int sentinel_;
  bool reaped_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LaunchedWorker>> ProcessLauncher::Start(const WorkerSpec& spec) {
  absl::StatusOr<std::pair<Connection, Connection>> pipe = Pipe(true);
  if (!pipe.ok()) return pipe.status();
  // The worker's end travels as a plain descriptor that this process closes right after Start, so
  // that a dead worker's socket is closed (sends to it fail instead of blocking).
  Connection child_end = std::move(pipe->second);
  absl::StatusOr<std::unique_ptr<SocketWorkerTransport>> transport =
      SocketWorkerTransport::Create(std::move(pipe->first), true);
  if (!transport.ok()) return transport.status();
  absl::StatusOr<Process> p = Process::Create(
      method_,
      Call<&PoolWorkerMain>(PassedFd{child_end.fd()}, spec.slots, int64_t{spec.index},
                            ToWorkerInitializer(spec.initializer)),
      ProcessOptions{.name = spec.name, .daemon = true});
  if (!p.ok()) return p.status();
  absl::Status started = p->Start();
  child_end.Close();
  if (!started.ok()) return started;
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

}  // namespace pool_internal
}  // namespace mp
