// Copyright 2026 The mp Authors.
//
// start_methods/forkserver.h — the `forkserver` start method: a server process forks the children.
//
// On first use a ForkServer starts a server: this program re-executed (like spawn) in server mode,
// single-threaded, which from then on forks every child from its own small, clean image. Children
// therefore start fast (a fork of a process that never ran user code) and without the parent's
// threads, locks or descriptors.
//
//   int Work(int64_t n, mp::PassedFd out);              // at namespace scope
//   int main(int argc, char** argv) {
//     mp::Init(argc, argv);        // required: runs the server in server mode
//     auto p = mp::Process::Create(mp::ForkServerStartMethod(),
//                                  mp::Call<&Work>(int64_t{3}, mp::PassedFd{w}));
//
// Protocol (one Unix stream connection per child):
//   * The socket lives in a private directory made by mkdtemp under /tmp (mode 0700; TEST_TMPDIR
//     paths are too long for sun_path). The parent creates, binds and listens on it, then passes
//     the listening socket to the server (descriptor 4) together with a pipe (descriptor 3) that
//     first carries the configuration (authkey, socket path) and then stays open: the server exits,
//     removing its directory, when the pipe reports end of file, i.e. when its owner stopped it or
//     died.
//   * Authentication: the server accepts a connection only from a peer with its own uid
//     (SO_PEERCRED) that first sends the 32-byte random authkey this ForkServer generated for the
//     server (compared in constant time). Abseil has no HMAC, and a challenge-response would only
//     add protection against a peer that can read the socket's traffic, which needs the same uid
//     anyway; the 0700 directory already keeps other users from connecting.
//   * Request: u32 size + the FlatBuffers launch record (launch_record.fbs), the target's PassedFd
//     descriptors attached with SCM_RIGHTS.
//   * The server is single-threaded (so that it can fork safely) but serves every connection side
//     by side: one poll loop over the lifeline, the listening socket, the connections still sending
//     their requests (non-blocking, each with its own 10 s deadline; one that has not sent its
//     whole request by then is closed) and the children's pidfds. A silent or slow connection
//     therefore delays no other Start. At most 128 connections are read at once; past that the
//     oldest is closed.
//   * The server forks; the child verifies the record, decodes the arguments, and answers on the
//     connection "A" + its pid with a pidfd of itself attached (so the parent can signal it without
//     ever hitting a recycled pid), or "E" + u32 length + the refusal's status
//     (Codec<absl::Status>); then it closes the connection and runs the target. When the child
//     ends, the server (which polls the children's pidfds) writes "X" + the wait status and closes
//     the connection. The connection is the parent's sentinel: it becomes readable exactly when the
//     child ends. Should the server die while the child runs, the connection reports end of file;
//     the handle then watches the child's pidfd instead (Join keeps waiting for the real end of the
//     child, and Sentinel() returns that pidfd from then on) and the exit code is 255, since the
//     status died with the server (CPython reports 255 as soon as the server is gone).
//   * mp::ParentProcess() in the child is the process that asked for it (the SO_PEERCRED pid), not
//     the server. That process is always the server's owner (a fork child of the owner starts its
//     own server), so the lifeline ends exactly when the requester dies (or stops the server).
//   * A kill_on_parent_death child (process.h) arms PR_SET_PDEATHSIG against the server and keeps
//     the server's lifeline until then: end of file on it means its requester is already gone, and
//     the child kills itself before its target runs. Every child closes the lifeline before its
//     target runs.
//
// Children get the server's stdin (/dev/null), stdout and stderr: those the owner had when the
// server started.
//
// If the server dies (killed, crashed), the next Start notices (connection refused, or the
// connection closing with the server gone), starts a new server and retries once, transparently.
// A fork child of the owner does not inherit the server: it starts its own on first use.
//
// One server per ForkServer object: a Context owns one; DefaultForkServer() is the process-wide one
// behind ForkServerStartMethod() and FindStartMethod("forkserver"). Every server is stopped (and
// its directory removed) when the owning process exits, after its children were joined, or when the
// ForkServer is destroyed.
//
// A server forked from here (internal to mp: start_methods/forked_server.h). The same server loop
// and protocol, but the server is made by fork(2) of the owning process instead of by exec, at once
// (not on first use): it is a single-threaded copy of the owner's memory at that moment, so its
// children see what existed then (fork-domain objects, globals) as fork children do. Only the pool
// uses it, to start every worker of a fork-method pool from a point before the pool's own threads.
//
// Thread safety: a ForkServer may be used from several threads; starts are serialized on its lock
// only while the server is (re)started, not while children run.

#ifndef MP_START_METHODS_FORKSERVER_H_
#define MP_START_METHODS_FORKSERVER_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "base/mutex.h"
#include "start_methods/start_method.h"

namespace mp {

namespace process_internal {
class ForkedServerFactory;  // forked_server.cc
}  // namespace process_internal

struct ForkServerOptions {
  // How long starting one child (connect, request, the child's acknowledgement) may take.
  absl::Duration handshake_timeout = absl::Seconds(60);
};

class ForkServer : public StartMethod {
 public:
  explicit ForkServer(ForkServerOptions options = {});
  ~ForkServer() override;
  ForkServer(const ForkServer&) = delete;
  ForkServer& operator=(const ForkServer&) = delete;

  // "forkserver"; "fork" for a server forked from here (its children are the fork method's).
  absl::string_view Name() const override { return forked_here_ ? "fork" : "forkserver"; }
  // The StartMethod rules; a server forked from here also accepts fork-domain objects (see
  // forked_server.h for the narrow contract).
  absl::Status CheckTarget(const Target& target) const override;
  absl::StatusOr<std::unique_ptr<ChildHandle>> Launch(const LaunchSpec& spec) override;

  // The server's pid while one runs (it may have died since), for diagnostics and tests.
  std::optional<pid_t> ServerPid() const;
  // The private directory holding the server's socket ("" while no server runs).
  std::string SocketDirectory() const;
  // Stops the server and removes its directory; the next Launch starts a new one.
  void Stop();

 private:
  struct Server {
    pid_t pid = -1;
    int pidfd = -1;
    std::string dir;
    std::string path;
    std::string key;
  };
  // A server's endpoints before it runs: the listening socket and the lifeline pipe.
  struct Endpoints {
    Server server;  // dir, path and key set
    int listener = -1;
    int lifeline_r = -1;
    int lifeline_w = -1;
    // Closes the endpoints and removes the server's directory; returns `s` (a failure to start).
    absl::Status Abandon(absl::Status s) const;
  };
  friend void ForkServerAtForkChild();
  friend class process_internal::ForkedServerFactory;

  // A ForkServer whose servers are forked from this process (forked_server.h).
  ForkServer(ForkServerOptions options, bool forked_here);

  // A fresh key, the private directory, the bound and listening socket, the lifeline pipe.
  static absl::StatusOr<Endpoints> MakeEndpoints();
  absl::StatusOr<Server> EnsureRunning() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status StartServerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forks a server from this process and installs it unless one runs by then. Called without mu_
  // (the server is a copy of this process: a mu_ held across the fork would stay held in it and
  // its children).
  absl::Status ForkServerFromHere() ABSL_LOCKS_EXCLUDED(mu_);
  void StopLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetInheritedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReapIfDeadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ForkServerOptions options_;
  const bool forked_here_ = false;
  // Serializes ForkServerFromHere (held across its fork; nothing in the server takes it).
  Mutex fork_mu_;
  mutable Mutex mu_;
  pid_t owner_pid_ ABSL_GUARDED_BY(mu_);
  Server server_ ABSL_GUARDED_BY(mu_);
  // Write end of the server's lifeline pipe; atomic so that a fork child can close its copy from an
  // atfork handler without the lock.
  std::atomic<int> lifeline_{-1};
};

// The process-wide ForkServer (created on first use).
std::shared_ptr<ForkServer> DefaultForkServer();
// DefaultForkServer() as a StartMethod (also FindStartMethod("forkserver")).
std::shared_ptr<StartMethod> ForkServerStartMethod();

}  // namespace mp

#endif  // MP_START_METHODS_FORKSERVER_H_
