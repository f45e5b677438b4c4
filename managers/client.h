// Copyright 2026 The mp Authors.
//
// managers/client.h — a process's connections to one manager's server, and the calls that travel
// over them (CPython's per-thread proxy connections). Internal to managers/.
//
// One ServerClient per (process, address, authkey): every proxy of that server in this process
// shares it. Its first connection is an anchor that carries no call (managers/wire.h): the
// session, and with it every reference this process holds, lasts while the anchor is open, that
// is until this process ends or the ServerClient (its last proxy) goes. A call takes an idle
// connection (or opens one: connect, authkey challenge, hello; a local server then moves it to a
// shared-memory Pipe, managers/wire.h), sends its Request, waits for the Reply, and gives the
// connection back; so calls from several threads run at once, each on its own connection, and a
// thread blocked in Queue.Get through a proxy holds up nobody.
//
// A fork child never uses its parent's ServerClients (their connections belong to the parent's
// session): Get() in a new process makes new ones, and the parent's are left alone.
//
// Errors: a server that cannot be reached, or that goes away during a call (it shut down, was
// killed, its host is gone: the connection ends), is kUnavailable naming the address, for every
// call and at once, also for a call that was waiting in a blocking method; a reply that does not
// decode is kDataLoss. The connection of a failed call is closed, never reused.

#ifndef MP_MANAGERS_CLIENT_H_
#define MP_MANAGERS_CLIENT_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/mutex.h"
#include "channels/connection.h"
#include "managers/wire.h"

namespace mp::managers_internal {

class ServerClient {
 public:
  // This process's client of the server at `address`, made (without connecting) if there is none.
  static std::shared_ptr<ServerClient> Get(const std::string& address,
                                           const std::optional<std::string>& authkey);
  ServerClient(const ServerClient&) = delete;
  ServerClient& operator=(const ServerClient&) = delete;
  ~ServerClient();

  const std::string& address() const { return address_; }
  const std::optional<std::string>& authkey() const { return authkey_; }
  pid_t pid() const { return pid_; }

  // Sends `request` and fills `reply`. The returned status is the call's: the transport's failure
  // (kUnavailable, kDataLoss, kDeadlineExceeded when no reply came within `timeout`) or else
  // reply.status. `timeout` bounds the wait for the reply (the default: none).
  absl::Status Call(Request& request, Reply& reply,
                    absl::Duration timeout = absl::InfiniteDuration());

  // Call's fast path: sends the Request that `fields` (whose thread it fills in) and `args` make,
  // waits for the Reply and passes it to `on_reply`, whose views of the reply's bytes are valid
  // until it returns (the connection is reused after that). The returned status is the
  // transport's failure (as Call's) or else on_reply's. on_reply must not call this client.
  absl::Status CallWith(RequestFields fields, const RequestArgs& args,
                        absl::FunctionRef<absl::Status(const ReplyView&)> on_reply,
                        absl::Duration timeout = absl::InfiniteDuration());

  // The calling thread's id, as Request::thread carries it.
  static uint64_t ThreadId();

 private:
  ServerClient(std::string address, std::optional<std::string> authkey, std::string session);
  // A new connection: connect, authkey challenge, hello (and the move to shared memory if asked).
  absl::StatusOr<Connection> Connect(bool shared_memory);
  // Opens the anchor (managers/wire.h) if it is not open yet.
  absl::Status Anchor();
  absl::Status Unavailable(absl::string_view what, const absl::Status& cause) const;

  const std::string address_;
  const std::optional<std::string> authkey_;
  const std::string session_;
  const pid_t pid_;
  Mutex anchor_mu_;
  std::optional<Connection> anchor_ ABSL_GUARDED_BY(anchor_mu_);
  // A connection and the buffers its calls reuse (no allocation per call).
  struct Channel {
    explicit Channel(Connection c) : connection(std::move(c)) {}
    Connection connection;
    std::string out;          // the request frame
    std::vector<uint8_t> in;  // the reply frame
    std::string too_short;    // a reply frame longer than `in`
    ReplyView reply;
  };
  Mutex mu_;
  // Held by pointer: moving a Connection object updates the process's registry of live
  // Connections (a global mutex), which a call should not pay twice.
  std::vector<std::unique_ptr<Channel>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mp::managers_internal

#endif  // MP_MANAGERS_CLIENT_H_
