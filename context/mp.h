// Copyright 2026 The mp Authors.
//
// mp.h — the umbrella header of @mp//:mp. Include this one file to use mp.
//
//   #include "mp.h"
//
//   int Worker(mp::Queue q, int64_t n);      // at namespace scope: spawn/forkserver children run
//   it
//
//   int main(int argc, char** argv) {
//     mp::Init(argc, argv);                  // first line of main: runs mp's children, then exits
//     mp::Context* ctx = mp::GetContext();   // the default context (forkserver)
//     absl::StatusOr<mp::Queue> q = ctx->Queue();
//     absl::StatusOr<mp::Process> p = ctx->Process<&Worker>(*q, int64_t{3});
//     ...
//   }
//
// See context/context.h for contexts and the cross-context rules, and the README for the
// Python -> mp name table.

#ifndef MP_CONTEXT_MP_H_
#define MP_CONTEXT_MP_H_

#include "channels/connection.h"           // IWYU pragma: export
#include "channels/queue.h"                // IWYU pragma: export
#include "context/context.h"               // IWYU pragma: export
#include "futures/future.h"                // IWYU pragma: export
#include "futures/thread_pool_executor.h"  // IWYU pragma: export
#include "futures/wait.h"                  // IWYU pragma: export
#include "listener/listener.h"             // IWYU pragma: export
#include "managers/collections.h"          // IWYU pragma: export
#include "managers/manager.h"              // IWYU pragma: export
#include "managers/proxy.h"                // IWYU pragma: export
#include "managers/registry.h"             // IWYU pragma: export
#include "managers/sync_proxies.h"         // IWYU pragma: export
#include "pool/initializer.h"              // IWYU pragma: export
#include "pool/pool.h"                     // IWYU pragma: export
#include "pool/process_pool_executor.h"    // IWYU pragma: export
#include "pool/thread_pool.h"              // IWYU pragma: export
#include "serialize/codec.h"               // IWYU pragma: export
#include "serialize/fd.h"                  // IWYU pragma: export
#include "serialize/flat.h"                // IWYU pragma: export
#include "serialize/frame.h"               // IWYU pragma: export
#include "serialize/time.h"                // IWYU pragma: export
#include "shared_memory/shared_memory.h"   // IWYU pragma: export
#include "shared_memory/value.h"           // IWYU pragma: export
#include "start_methods/fork.h"            // IWYU pragma: export
#include "start_methods/forkserver.h"      // IWYU pragma: export
#include "start_methods/process.h"         // IWYU pragma: export
#include "start_methods/spawn.h"           // IWYU pragma: export
#include "start_methods/target.h"          // IWYU pragma: export
#include "sync/barrier.h"                  // IWYU pragma: export
#include "sync/condition.h"                // IWYU pragma: export
#include "sync/event.h"                    // IWYU pragma: export
#include "sync/lock.h"                     // IWYU pragma: export
#include "sync/rlock.h"                    // IWYU pragma: export
#include "sync/semaphore.h"                // IWYU pragma: export
#include "sync/shm.h"                      // IWYU pragma: export

#endif  // MP_CONTEXT_MP_H_
