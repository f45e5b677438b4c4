// Copyright 2026 The mp Authors.
//
// pool/worker_transport.h — how the engine reaches a worker (internal to mp).
//
// The engine (engine.h) neither knows how a worker was started nor how its bytes travel: it asks a
// WorkerLauncher to start worker i and talks to it through the WorkerTransport it gets back. An
// mp::Connection (ConnectionWorkerTransport, below: shared-memory rings for worker processes, a
// socketpair for worker threads) is one transport; the Process-based launcher (process_launcher.h,
// every StartMethod) is one launcher.

#ifndef MP_POOL_WORKER_TRANSPORT_H_
#define MP_POOL_WORKER_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "channels/connection.h"
#include "pool/initializer.h"
#include "sync/shm.h"

namespace mp {
namespace pool_internal {

// One end of a worker's message channel. Messages arrive whole and in order. Send may run in one
// thread while Receive / Poll / CanSendWithoutBlocking / AllRead run in another; each of the two
// groups is for one thread at a time.
class WorkerTransport {
 public:
  virtual ~WorkerTransport() = default;
  // Sends one message; blocks while the channel is full. Fails (kAborted when the peer is gone)
  // rather than blocking on a peer that died.
  virtual absl::Status Send(absl::string_view message) = 0;
  // Whether a Send of `size` bytes now cannot block (false when unsure). Only Send makes it false
  // again: the peer can only make room. `all_read`: the caller knows the peer has read every
  // message sent so far (it answered them all), so the transport need not ask.
  virtual bool CanSendWithoutBlocking(size_t size, bool all_read) = 0;
  // Whether the peer has read every message sent so far.
  virtual bool AllRead() = 0;
  // Receives one message into `buffer`, reusing its memory: the message is buffer[0, *length). A
  // message longer than the buffer replaces it. kOutOfRange at the channel's end.
  virtual absl::Status Receive(std::string& buffer, size_t* length) = 0;
  // Whether a message (or the end) waits now.
  virtual absl::StatusOr<bool> Readable() = 0;
  // Readable(), after waiting briefly where waiting costs no system call while the peer answers
  // soon (a shared-memory end: spin, yield, futex); a worker calls it before it sleeps in Wait on
  // its channel and its parent's sentinel.
  virtual absl::StatusOr<bool> ReadableSoon() { return Readable(); }
  // Whether a message (or the end) waits, known without a system call; false when unsure. For the
  // manager's brief spin before it sleeps in Wait, and a waiting thread's (Engine::Assist).
  virtual bool HasInputNow() { return false; }
  // Whether HasInputNow() is the whole answer (a shared-memory ring), not only what is buffered:
  // only such transports are spun on.
  virtual bool SeesInputWithoutSystemCall() const { return false; }
  // The manager's side of a transport that other threads may receive from too (Engine::Assist
  // lets a thread waiting for a result take the reply while the manager sleeps): the manager polls
  // WakeWaitable(), a plain descriptor, so that its Wait never touches the transport's receive
  // state; before it sleeps it calls ArmWake(), which makes input wake that descriptor and returns
  // HasInputNow() (true: do not sleep, input may wait already); after the descriptor polled
  // readable it calls TakeWake(), which takes in what made it so. A thread that watches
  // HasInputNow() itself calls QuietWake(), so that input does not wake the manager, and ArmWake()
  // before it leaves. The defaults fit a transport no other thread receives from (those whose
  // SeesInputWithoutSystemCall() is false): its ReadWaitable(), which the kernel wakes.
  virtual Waitable WakeWaitable() const { return ReadWaitable(); }
  virtual bool ArmWake() { return false; }
  virtual void QuietWake() {}
  virtual void TakeWake() {}
  // What channels' Wait() polls for: ready when Readable() would be true (input the transport
  // already holds included), for a poll loop over many workers and sentinels.
  virtual Waitable ReadWaitable() const = 0;
  // Closes both directions; the peer sees the end.
  virtual void Close() = 0;
};

// An mp::Connection end of either transport (channels/connection.h). On a shared-memory end a Send
// and a Receive may run in two threads on the one Connection; a socket end's sends go through their
// own dup of the descriptor, so that they touch two Connections.
class ConnectionWorkerTransport : public WorkerTransport {
 public:
  // `conn` is one end of Pipe(true). With `separate_sender`, a socket end gets a dup of its
  // descriptor for sends and an enlarged send buffer (the pool's side); errors of dup.
  static absl::StatusOr<std::unique_ptr<ConnectionWorkerTransport>> Create(Connection conn,
                                                                           bool separate_sender);

  absl::Status Send(absl::string_view message) override;
  bool CanSendWithoutBlocking(size_t size, bool all_read) override;
  bool AllRead() override;
  absl::Status Receive(std::string& buffer, size_t* length) override;
  absl::StatusOr<bool> Readable() override;
  absl::StatusOr<bool> ReadableSoon() override;
  bool HasInputNow() override { return conn_.HasInputNow(); }
  bool SeesInputWithoutSystemCall() const override {
    return conn_.transport() == ConnectionTransport::kSharedMemory;
  }
  Waitable WakeWaitable() const override {
    return SeesInputWithoutSystemCall() ? Waitable(conn_.fd()) : Waitable(conn_);
  }
  bool ArmWake() override { return SeesInputWithoutSystemCall() && conn_.ArmWaitWake(); }
  void QuietWake() override { conn_.QuietWaitWake(); }
  void TakeWake() override { conn_.TakeWaitWake(); }
  Waitable ReadWaitable() const override { return Waitable(conn_); }
  void Close() override;

  Connection& connection() { return conn_; }

 private:
  ConnectionWorkerTransport(Connection conn, Connection out, size_t sndbuf)
      : conn_(std::move(conn)), out_(std::move(out)), sndbuf_(sndbuf) {}
  Connection& sender() { return out_.fd() >= 0 ? out_ : conn_; }

  Connection conn_;
  Connection out_;  // the dup that sends, or closed (conn_ sends)
  size_t sndbuf_ = 0;
};

// What a worker is started with.
struct WorkerSpec {
  int index = 0;     // its slot: 0 .. workers - 1 (a replacement takes the dead one's index)
  std::string name;  // for its process title / error messages
  ShmHandle slots;   // the engine's array of Slot (slot.h); the worker uses slots[index]
  PoolInitializer initializer;  // run once before the first chunk
};

// A started worker.
class LaunchedWorker {
 public:
  virtual ~LaunchedWorker() = default;
  virtual WorkerTransport& transport() = 0;
  virtual int pid() const = 0;
  // A descriptor that polls readable once the worker has ended.
  virtual int sentinel() const = 0;
  // Ends the worker now (SIGKILL for a process); works on a stopped or hung worker.
  virtual absl::Status Kill() = 0;
  // After the worker ended: reaps it. Its exit code (negative: the signal that ended it), nullopt
  // when unknown.
  virtual std::optional<int> Reap() = 0;
};

class WorkerLauncher {
 public:
  virtual ~WorkerLauncher() = default;
  // Starts one worker running the pool's worker loop (worker_loop.h) for `spec`.
  virtual absl::StatusOr<std::unique_ptr<LaunchedWorker>> Start(const WorkerSpec& spec) = 0;
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_WORKER_TRANSPORT_H_
