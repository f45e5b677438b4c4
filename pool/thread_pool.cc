// Copyright 2026 The mp Authors.

#include "pool/thread_pool.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pool/engine.h"
#include "pool/thread_launcher.h"

namespace mp {

absl::StatusOr<ThreadPool> ThreadPool::Create(PoolOptions options) {
  if (options.task_timeout != absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ThreadPool::Create: task_timeout ", absl::FormatDuration(options.task_timeout),
        ": a worker thread cannot be killed, so a ThreadPool cannot stop a task over "
        "its limit; use a Pool (processes) for time limits"));
  }
  if (options.initializer.resources != nullptr &&
      !options.initializer.resources->fork_only().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ThreadPool::Create: the initializer's arguments hold fork-domain objects (",
        absl::StrJoin(options.initializer.resources->fork_only(), ", "),
        "), which reach worker threads only through their descriptors; create them in the "
        "transferable domain (a 'spawn' or 'forkserver' context)"));
  }
  absl::StatusOr<pool_internal::EngineOptions> engine =
      pool_internal::MakeEngineOptions(std::move(options), "ThreadPool::Create");
  if (!engine.ok()) return engine.status();
  engine->worker_name = "ThreadPoolWorker";
  absl::StatusOr<std::unique_ptr<pool_internal::Engine>> e = pool_internal::Engine::Create(
      std::make_unique<pool_internal::ThreadLauncher>(), *std::move(engine));
  if (!e.ok()) return e.status();
  return ThreadPool(Pool(*std::move(e)));
}

}  // namespace mp
