// Copyright 2026 The mp Authors.
//
// pool/sender.h — sends to workers without ever blocking the engine's manager thread (internal to
// mp): a worker blocked sending its results while its own receive buffer is full must always get
// drained, so a send that could block goes, in order, to a sender thread of its own.

#ifndef MP_POOL_SENDER_H_
#define MP_POOL_SENDER_H_

#include <condition_variable>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"
#include "pool/buffers.h"
#include "pool/worker_transport.h"

namespace mp {
namespace pool_internal {

// The sending side of one worker; it keeps the worker's transport alive while messages for it
// wait in the sender thread (which may outlive the engine's record of the worker).
class Outbox {
 public:
  explicit Outbox(std::shared_ptr<LaunchedWorker> worker) : worker_(std::move(worker)) {}
  WorkerTransport& transport() { return worker_->transport(); }

 private:
  friend class Sender;
  const std::shared_ptr<LaunchedWorker> worker_;
  // Its messages queued for or in the sender thread. Guarded by its Sender's mutex (another
  // object's, which the annotations cannot name here).
  int queued_ = 0;
};

class Sender {
 public:
  // Sent messages' buffers go back to `buffers`.
  explicit Sender(std::shared_ptr<Buffers> buffers);
  // Stop().
  ~Sender();
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  // Sends `message` to `to`: here when nothing of `to`'s waits in the sender thread and the
  // transport says the send cannot block (no thread hop: the common case), else through the sender
  // thread, after what waits there. A failed send is ignored: it means the worker is dying, and
  // its sentinel tells the engine. `all_read`: the worker has read every message sent to it (see
  // WorkerTransport::CanSendWithoutBlocking). For one thread at a time (the holder of the engine's
  // work_mu_).
  void Send(const std::shared_ptr<Outbox>& to, std::string message, bool all_read = false);
  // Whether messages for `to` wait in the sender thread.
  bool Queued(const Outbox& to);
  // Drops what waits and joins the sender thread.
  void Stop();

 private:
  void Run();

  const std::shared_ptr<Buffers> buffers_;
  Mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::shared_ptr<Outbox>, std::string>> sends_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_SENDER_H_
