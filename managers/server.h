// Copyright 2026 The mp Authors.
//
// managers/server.h — a manager's server: the process that owns the shared objects and answers
// the proxies' calls (CPython's multiprocessing.managers.Server). Internal to managers/; users
// start one with BaseManager::Start or serve with ServeManager (managers/manager.h).
//
// Serving. A Listener (listener/listener.h) accepts clients and runs their authkey challenges
// concurrently; each client connection then has a thread of its own, so a slow client, or a call
// that blocks (Queue.Get, Lock.Acquire), never holds up the others. At most max_connections are
// served at a time; a connection beyond that is closed at once.
//
// References (as CPython's: an object lives while a proxy refers to it). Each object has a count
// of references; each session (a client process, managers/wire.h) has its own count per object.
// kCreate gives the caller's session one, kIncref one more, kDecref one less; at zero the object
// is destroyed. When a session's last connection closes (the process exited, or was killed) the
// server drops every reference the session still held, and the objects that watch sessions (the
// locks) release what the session held: a dead client leaks nothing and holds nothing.
//
// Hostile clients: every message is bounded by max_message_size (a longer one closes that
// connection), every request is checked (op, object id, type, method, argument count and bytes)
// and answered with a status naming what was wrong, and the server goes on serving everyone.
//
// Shutdown: a kShutdown request (BaseManager::Shutdown), or the end of the process whose sentinel
// the server watches (the parent that started it), makes Serve return; the caller then ends the
// process (_exit), as CPython's serve_forever() does with sys.exit().

#ifndef MP_MANAGERS_SERVER_H_
#define MP_MANAGERS_SERVER_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/mutex.h"
#include "channels/connection.h"
#include "listener/listener.h"
#include "managers/served_object.h"
#include "managers/wire.h"

namespace mp::managers_internal {

struct ServerOptions {
  std::string address;  // a Listener address ("" a fresh Unix socket)
  std::optional<std::string> authkey;
  size_t max_message_size = size_t{16} << 20;
  size_t max_connections = 256;
  absl::Duration auth_timeout = absl::Seconds(20);
  // A descriptor that becomes readable when the server should stop (the parent's pidfd), or -1.
  int stop_fd = -1;
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Create(ServerOptions options, TypeTable types);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Not destroyed while serving threads run: a server lives until its process ends.
  ~Server();

  const std::string& address() const { return listener_.address(); }

  // Accepts and serves until a shutdown request arrives or stop_fd becomes readable. The serving
  // threads are still running when it returns: end the process.
  absl::Status Serve();
  // Tells every object the server is ending (ServedObject::ServerEnding); after Serve returns.
  void EndObjects();

 private:
  struct Session {
    uint64_t number = 0;
    uint32_t pid = 0;
    int connections = 0;
    absl::flat_hash_map<uint64_t, uint64_t> refs;  // object id -> references held
  };
  struct Entry {
    std::shared_ptr<ServedObject> object;
    uint64_t refs = 0;
  };
  class Context;
  class Held;

  Server(ServerOptions options, TypeTable types, Listener listener, int wake_fd);

  void AcceptLoop();
  void ServeConnection(Connection connection);
  // The hello; the session's number and pid, or why the client is refused.
  absl::StatusOr<std::pair<uint64_t, uint32_t>> Greet(Connection& connection);
  void Handle(Context& context, Request& request, Reply& reply);
  void LeaveSession(uint64_t session);
  uint64_t Adopt(uint64_t session, std::shared_ptr<ServedObject> object);
  // A reference to the object a stored proxy's token names (kNotFound if gone, kInvalidArgument
  // for a token of another type or malformed bytes).
  absl::StatusOr<std::shared_ptr<HeldRef>> Hold(const std::string& token_bytes);
  void ReleaseHeld(uint64_t id);
  // One more reference of `session` to `id` (kNotFound if the object is gone).
  absl::Status Incref(uint64_t session, uint64_t id);
  absl::StatusOr<std::shared_ptr<ServedObject>> Find(uint64_t id, uint64_t type);
  // A connection's last object, found again without the server's mutex while no object has left
  // the table since (a weak reference: the cache never keeps an object alive).
  struct ObjectCache {
    uint64_t id = 0;
    uint64_t erased = 0;  // erased_ when it was filled
    std::weak_ptr<ServedObject> object;
  };
  absl::StatusOr<std::shared_ptr<ServedObject>> Find(uint64_t id, uint64_t type,
                                                     ObjectCache& cache);
  // Drops `n` references of `session` to `id` (collecting the object in `dead` if it dies).
  void DropRefs(Session& session, uint64_t id, uint64_t n,
                std::vector<std::shared_ptr<ServedObject>>& dead)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RequestShutdown();

  const ServerOptions options_;
  const TypeTable types_;
  Listener listener_;
  const int wake_fd_;  // an eventfd: written by RequestShutdown
  std::atomic<size_t> connections_{0};

  Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> objects_ ABSL_GUARDED_BY(mu_);
  // How many objects have left objects_ (incremented, under mu_, with each erase; ids are never
  // reused). An ObjectCache filled when it read the same count names an object still in the table.
  std::atomic<uint64_t> erased_{0};
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<std::string, Session> sessions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::string> session_tokens_ ABSL_GUARDED_BY(mu_);
  uint64_t next_session_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace mp::managers_internal

#endif  // MP_MANAGERS_SERVER_H_
