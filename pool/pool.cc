// Copyright 2026 The mp Authors.

#include "pool/pool.h"

#include <algorithm>
#include <utility>

#include "pool/process_launcher.h"
#include "start_methods/process.h"

namespace mp {

namespace pool_internal {

absl::StatusOr<EngineOptions> MakeEngineOptions(PoolOptions options, absl::string_view caller) {
  if (options.processes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(caller, ": processes must be >= 0 (0: CpuCount()), got ", options.processes));
  }
  if (options.maxtasksperchild < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        caller, ": maxtasksperchild must be >= 0 (0: no limit), got ", options.maxtasksperchild));
  }
  if (!options.initializer.function.empty() && FindTask(options.initializer.function) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        caller, ": initializer \"", options.initializer.function, "\" is not registered"));
  }
  EngineOptions engine;
  engine.workers = options.processes == 0 ? std::max(1, CpuCount()) : options.processes;
  engine.initializer = std::move(options.initializer);
  engine.max_tasks_per_child = options.maxtasksperchild;
  engine.task_timeout = options.task_timeout;
  return engine;
}

}  // namespace pool_internal

absl::StatusOr<Pool> Pool::Create(std::shared_ptr<StartMethod> method, PoolOptions options) {
  if (method == nullptr) return absl::InvalidArgumentError("Pool::Create: null start method");
  absl::StatusOr<pool_internal::EngineOptions> options_or =
      pool_internal::MakeEngineOptions(std::move(options), "Pool::Create");
  if (!options_or.ok()) return options_or.status();
  pool_internal::EngineOptions engine = *std::move(options_or);
  // Before the engine's threads: under fork the launcher forks its worker helper now.
  absl::StatusOr<std::unique_ptr<pool_internal::WorkerLauncher>> launcher =
      pool_internal::MakeWorkerLauncher(std::move(method), engine.initializer);
  if (!launcher.ok()) return launcher.status();
  absl::StatusOr<std::unique_ptr<pool_internal::Engine>> e =
      pool_internal::Engine::Create(*std::move(launcher), std::move(engine));
  if (!e.ok()) return e.status();
  return Pool(*std::move(e));
}

Pool::Pool(std::unique_ptr<pool_internal::Engine> engine) : engine_(std::move(engine)) {}
Pool::Pool(Pool&&) noexcept = default;
Pool& Pool::operator=(Pool&&) noexcept = default;
Pool::~Pool() = default;

absl::Status Pool::Submit(std::shared_ptr<pool_internal::Job> job, const std::string& function,
                          pool_internal::Batch batch, size_t chunksize) {
  if (engine_ == nullptr) return absl::FailedPreconditionError("Pool: moved-from pool");
  return engine_->Submit(std::move(job), function, std::move(batch), chunksize);
}

std::string Pool::TakeBuffer(size_t size) {
  std::string b = engine_ == nullptr ? std::string() : engine_->TakeBuffer(size);
  b.clear();
  return b;
}

size_t Pool::DefaultChunksize(size_t items) const {
  const size_t parts = 4 * static_cast<size_t>(engine_ == nullptr ? 1 : engine_->workers());
  return std::max<size_t>(1, (items + parts - 1) / parts);
}

void Pool::Close() {
  if (engine_ != nullptr) engine_->Close();
}
void Pool::Terminate() {
  if (engine_ != nullptr) engine_->Terminate();
}
absl::Status Pool::Join(absl::Duration timeout) {
  if (engine_ == nullptr) return absl::FailedPreconditionError("Pool: moved-from pool");
  return engine_->Join(timeout);
}
int Pool::processes() const { return engine_ == nullptr ? 0 : engine_->workers(); }
std::vector<int> Pool::WorkerPids() const {
  return engine_ == nullptr ? std::vector<int>{} : engine_->WorkerPids();
}

}  // namespace mp
