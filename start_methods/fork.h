// Copyright 2026 The mp Authors.
//
// start_methods/fork.h — the `fork` start method: the child is a fork(2) of the parent.
//
// The child is a copy of the parent at the moment of Start: it can run any callable
// (mp::Target::Callable) as well as registered functions, and it sees the parent's memory, so
// anonymous shared mappings and every inherited descriptor work in it unchanged (the "fork domain"
// of shared/DESIGN.md).
//
//   absl::StatusOr<mp::Process> p = mp::Process::Create(
//       mp::ForkStartMethod(), mp::Target::Callable([&] { return table.size() > 0 ? 0 : 3; }));
//   p->Start();
//
// What the child does, in order: becomes "Process-N" (mp::CurrentProcess), opens a pidfd of its
// parent (mp::ParentProcess), runs the target, terminates its daemon children and joins the others,
// flushes its own stdio and calls _exit with the target's exit code. It never returns into the
// parent's code, never runs the parent's atexit handlers and never flushes stdio buffered before
// the fork (Start flushes every stdio stream before forking).
//
// Threads: only the thread that called Start exists in the child. Like CPython 3.12, Start prints a
// warning on stderr when this process has more than one thread (counted in /proc/self/task), since
// a lock held by another thread at the fork stays locked forever in the child. Prefer `spawn` or
// `forkserver` in multi-threaded programs.
//
// The sentinel is a pidfd of the child. mp::Init is not needed for fork (but harmless).
//
// Thread safety: ForkStartMethod() returns a shared, stateless method; Launch may be called from
// any thread.

#ifndef MP_START_METHODS_FORK_H_
#define MP_START_METHODS_FORK_H_

#include <memory>

#include "start_methods/start_method.h"

namespace mp {

class ForkMethod : public StartMethod {
 public:
  absl::string_view Name() const override { return "fork"; }
  // Every non-empty target.
  absl::Status CheckTarget(const Target& target) const override;
  absl::StatusOr<std::unique_ptr<ChildHandle>> Launch(const LaunchSpec& spec) override;
};

// The process-wide fork method (also FindStartMethod("fork")).
std::shared_ptr<StartMethod> ForkStartMethod();

// Threads of this process (entries of /proc/self/task); 0 if that cannot be read
// (process_internal::CountThreads).
int CountThreads();

}  // namespace mp

#endif  // MP_START_METHODS_FORK_H_
