// Copyright 2026 The mp Authors.
//
// start_methods/spawn.h — the `spawn` start method: the child is a fresh run of this program.
//
// Start posix_spawns /proc/self/exe (glibc uses a vfork-style clone, so the cost does not grow with
// the parent's memory) with:
//   * stdin /dev/null, stdout and stderr inherited;
//   * descriptor 3: one end of a control socketpair; descriptors 4, 5, ...: the descriptors of the
//     target's PassedFd arguments, in FdTable order; every other descriptor closed (no leaks,
//     whatever the parent forgot to mark close-on-exec);
//   * argv {argv0, "--mp-spawn"} and the environment variable MP_START=spawn:3:<fd count>.
// The child's mp::Init sees MP_START (and removes it), reads the FlatBuffers launch record
// (launch_record.fbs: function name, encoded arguments, fd count, authkey, parent, name, daemon)
// from descriptor 3, verifies it, decodes the arguments with an FdTable of descriptors 4.. current,
// acknowledges ("A" + pid, or "E" + the error, e.g. arguments that do not decode), and runs the
// target; main's remaining lines never run in the child.
//
//   int Work(std::string job, mp::PassedFd out);         // at namespace scope
//   int main(int argc, char** argv) {
//     mp::Init(argc, argv);                               // required for spawn
//     auto p = mp::Process::Create(mp::SpawnStartMethod(), mp::Call<&Work>("a", mp::PassedFd{w}));
//     ...
//
// Start returns once the child acknowledged. A program that forgot mp::Init gets a clear status
// instead of a fork bomb: the parent refuses to spawn when Init was not called in it; a child whose
// main skipped Init (e.g. Init behind a condition) still has MP_START set, so it cannot spawn
// further children itself, and the parent reports "did not call mp::Init" when the child exits
// without reading its record, or kills it and reports kDeadlineExceeded when it does not answer
// within SpawnOptions::handshake_timeout.
//
// The sentinel is a pidfd of the child.
//
// Thread safety: Launch may be called from any thread; the method object is immutable.

#ifndef MP_START_METHODS_SPAWN_H_
#define MP_START_METHODS_SPAWN_H_

#include <memory>

#include "absl/time/time.h"
#include "start_methods/start_method.h"

namespace mp {

struct SpawnOptions {
  // How long a child may take to acknowledge its launch record (exec, dynamic loading, static
  // initializers, mp::Init) before it is killed and Start fails with kDeadlineExceeded.
  absl::Duration handshake_timeout = absl::Seconds(60);
};

class SpawnMethod : public StartMethod {
 public:
  explicit SpawnMethod(SpawnOptions options = {}) : options_(options) {}
  absl::string_view Name() const override { return "spawn"; }
  absl::StatusOr<std::unique_ptr<ChildHandle>> Launch(const LaunchSpec& spec) override;

 private:
  SpawnOptions options_;
};

// The process-wide spawn method with default options (also FindStartMethod("spawn")).
std::shared_ptr<StartMethod> SpawnStartMethod();

}  // namespace mp

#endif  // MP_START_METHODS_SPAWN_H_
