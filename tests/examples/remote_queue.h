// What the two programs of the remote-manager example share (remote_manager_server.cc,
// remote_manager_client.cc): the class the server registers as 'get_queue' and the registrar both
// run, as both of CPython's programs define QueueManager and register 'get_queue'.
//
//   queue = queue.Queue()                                        # in the server
//   QueueManager.register('get_queue', callable=lambda: queue)   # every call: the one queue
//
// Each Create<QueueHandle>() (m.get_queue()) makes a handle in the server, and every handle is the
// server's one queue.

#ifndef MP_TESTS_EXAMPLES_REMOTE_QUEUE_H_
#define MP_TESTS_EXAMPLES_REMOTE_QUEUE_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

#include "mp.h"

namespace remote_queue {

class QueueHandle {
 public:
  // queue.put(item)
  void Put(std::string item) {
    State& s = state();
    {
      std::lock_guard<std::mutex> lock(s.mu);
      s.items.push_back(std::move(item));
    }
    s.cv.notify_one();
  }
  // queue.get(timeout=timeout_seconds): kDeadlineExceeded (queue.Empty) when nothing came.
  absl::StatusOr<std::string> Get(double timeout_seconds) {
    State& s = state();
    std::unique_lock<std::mutex> lock(s.mu);
    if (!s.cv.wait_for(lock, std::chrono::duration<double>(timeout_seconds),
                       [&s] { return !s.items.empty(); })) {
      return absl::DeadlineExceededError("queue.Empty: nothing was put");
    }
    std::string item = std::move(s.items.front());
    s.items.pop_front();
    return item;
  }

 private:
  // The server's one queue (only the server process touches it). std::mutex, not absl::Mutex:
  // the system Abseil is not built with TSan (base/mutex.h).
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::string> items;  // guarded by mu
  };
  static State& state() {
    static State* const s = new State();
    return *s;
  }
};

// QueueManager.register('get_queue'): both programs name it (the server to serve the class, a
// client to name its methods). ThreadSafe: the handle synchronizes itself, so a Get that waits
// holds up no other caller.
inline void QueueTypes(mp::TypeRegistry& r) {
  r.Register<QueueHandle>("get_queue")
      .Expose<&QueueHandle::Put>("put")
      .Expose<&QueueHandle::Get>("get")
      .ThreadSafe();
}

}  // namespace remote_queue

#endif  // MP_TESTS_EXAMPLES_REMOTE_QUEUE_H_
