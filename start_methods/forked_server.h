// Copyright 2026 The mp Authors.
//
// start_methods/forked_server.h — a forkserver made by fork(2) of this process (internal to mp).
//
// A pool under the fork method starts workers while its own threads (manager, sender) run: forking
// them from the pool's process would make every replacement a fork of a multi-threaded process,
// with the fork method's warning about threads that are mp's, which the user can neither avoid
// nor silence. Instead the pool makes this server at Pool::Create, before its threads:
//
//   absl::StatusOr<std::shared_ptr<mp::ForkServer>> helper =
//       mp::process_internal::ForkedServerStartMethod();
//   ... Process::Create(*helper, mp::Call<&Worker>(...)) ...   // every worker, replacements too
//
// The server is a fork of this process at that moment, single-threaded, and serves Start requests
// with the forkserver protocol (forkserver.h: launch record, SCM_RIGHTS, the pidfd and exit
// status reports, the lifeline). Each child is a fork of the server, so it sees this process's
// memory as it was when the server was made, and holds the descriptors that were open then (as a
// fork child holds its parent's), plus those its own arguments pass. Children behave as fork
// children do otherwise: mp::ParentProcess() is the process that asked (the pool's), daemon
// children are terminated at its exit, exit codes and signals are reported, Kill works on a
// stopped child, the sentinel is the per-child connection; a child's kernel parent is the server,
// which exits when its owner does (the lifeline), so orphans are not left behind.
//
// The multi-threaded warning. The server is made by one fork of this process; the fork method's
// warning (WarnIfForkingThreads) is printed then, once, if this process has threads of its own
// (the user's; mp's launcher thread is left out), because every child is a copy of that moment.
// Children the server forks print nothing: the server is single-threaded. Should the server die,
// the next Start forks a new one from this process as it is then, and that fork warns again when
// other threads run (its children are copies of a multi-threaded process: the warning is true).
//
// The narrow contract (why this is not a user API). Name() is "fork". CheckTarget accepts
// registered functions only (a callable made after the server cannot travel to it), but with
// fork-domain objects among the arguments: the caller guarantees that every fork-domain object its
// targets carry existed when the server was made and reaches the child through a pin (below), not
// through its bytes (which cannot carry it). Only the pool uses it, making it at Pool::Create (its
// initializer's arguments exist by then). The children's memory being a snapshot also means a
// global changed after the server was made keeps its old value in them (shared mappings, being
// shared, do not).
//
// In-memory objects. A child decodes its arguments from bytes, and a fork-domain object has no
// bytes that could carry it (no descriptor). What a fork child would take from its copy of the
// parent's memory, a forked server's child finds through a pin: PinForForkChildren keeps an object
// alive in this process under a random key, and every process forked from this one afterwards (the
// server, and its children) finds it with FindPinned(key) in its own copy of the memory. An object
// pinned after the server was made is not in the server's copy: FindPinned says so instead of
// handing out a pointer into nothing.
//
// Thread safety: as ForkServer; the pin table is thread-safe.

#ifndef MP_START_METHODS_FORKED_SERVER_H_
#define MP_START_METHODS_FORKED_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "start_methods/forkserver.h"

namespace mp {
namespace process_internal {

// Forks the server now (see the header comment). Errors of mkdtemp, socket, bind, pipe2, fork and
// pidfd_open, each naming the call. The server stops when the returned ForkServer (and every copy
// of the pointer) is gone, or at this process's exit.
absl::StatusOr<std::shared_ptr<ForkServer>> ForkedServerStartMethod(ForkServerOptions options = {});

// Keeps `object` alive in this process until Unpin(key) and returns its key (never 0), which
// `kind` (e.g. "pool initializer") must match when it is found. Errors of getrandom.
absl::StatusOr<uint64_t> PinForForkChildren(std::shared_ptr<const void> object, std::string kind);
// Drops the pin (a no-op for an unknown key). Processes forked before keep their copy.
void Unpin(uint64_t key);
// The object pinned under `key` in this process's memory (this process's own pins, and those it
// inherited by fork); kNotFound naming the key when there is none (pinned after this process was
// forked, or never), kInvalidArgument when it was pinned as another kind.
absl::StatusOr<std::shared_ptr<const void>> FindPinned(uint64_t key, absl::string_view kind);

}  // namespace process_internal
}  // namespace mp

#endif  // MP_START_METHODS_FORKED_SERVER_H_
