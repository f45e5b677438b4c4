// What the two programs of the remote-manager example share (remote_manager_server.cc,
// remote_manager_client.cc): the class the server registers as 'get_queue' and the registrar both
// run, as both of CPython's programs define QueueManager and register 'get_queue'.
//
//   queue = queue.Queue()                                        # in the server
//   QueueManager.register('get_queue', callable=lambda: queue)   # every call: the one queue
//
// GetQueue, the factory, returns the server's one queue to every Create<QueueHandle>()
// (m.get_queue()): a factory returning a std::shared_ptr shares what it returns.

#ifndef MP_TESTS_EXAMPLES_REMOTE_QUEUE_H_
#define MP_TESTS_EXAMPLES_REMOTE_QUEUE_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "mp.h"

namespace remote_queue {

// queue.Queue(): std::mutex, not absl::Mutex, since the system Abseil is not built with TSan
// (base/mutex.h).
class QueueHandle {
 public:
  // queue.put(item)
  void Put(std::string item) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
  }
  // queue.get(timeout=timeout): kDeadlineExceeded (queue.Empty) when nothing came.
  absl::StatusOr<std::string> Get(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    const auto ready = [this] { return !items_.empty(); };
    // wait_for(chrono max) overflows the clock in libstdc++: an infinite timeout waits untimed.
    if (timeout == absl::InfiniteDuration()) {
      cv_.wait(lock, ready);
    } else if (!cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), ready)) {
      return absl::DeadlineExceededError("queue.Empty: nothing was put");
    }
    std::string item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> items_;  // guarded by mu_
};

// queue = Queue(); callable=lambda: queue — the one queue, in the server process.
inline std::shared_ptr<QueueHandle> GetQueue() {
  static const std::shared_ptr<QueueHandle>* const queue =
      new std::shared_ptr<QueueHandle>(std::make_shared<QueueHandle>());
  return *queue;
}

// QueueManager.register('get_queue'): both programs name it (the server to serve the class, a
// client to name its methods). ThreadSafe: the handle synchronizes itself, so a Get that waits
// holds up no other caller.
inline void QueueTypes(mp::TypeRegistry& r) {
  r.Register<QueueHandle>("get_queue", &GetQueue)
      .Expose<&QueueHandle::Put>("put")
      .Expose<&QueueHandle::Get>("get")
      .ThreadSafe();
}

}  // namespace remote_queue

#endif  // MP_TESTS_EXAMPLES_REMOTE_QUEUE_H_
