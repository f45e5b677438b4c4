// Copyright 2026 The mp Authors.
//
// listener/listener.h — Listener and Client: Python's multiprocessing.connection.Listener / Client.
//
// A Listener is a bound, listening socket; Accept() returns an mp::Connection
// (channels/connection.h) for each client, and Client(address) returns the client's end. With an
// authkey, both sides prove they know it (HMAC-SHA256 challenge, both directions) before the
// Connection is returned.
//
//   absl::StatusOr<mp::Listener> listener =
//       mp::Listener::Create({.address = "127.0.0.1:0", .authkey = "secret"});
//   std::string address = listener->address();                   // "127.0.0.1:41235"
//   // in another process:
//   absl::StatusOr<mp::Connection> c = mp::Client(address, "secret");
//   c->Send(std::string("hello")).IgnoreError();
//   // here:
//   absl::StatusOr<mp::Connection> conn = listener->Accept();
//   absl::StatusOr<std::string> msg = conn->Recv<std::string>();  // "hello"
//
// Addresses (strings; CPython's tuple / str addresses):
//   ""               Listener only: a new Unix socket "listener-<random>" in a fresh 0700 directory
//                    /tmp/mp-XXXXXX (CPython's arbitrary_address('AF_UNIX')); removed by Close
//   "/abs/path"      a Unix socket file (must not exist; removed by Close of the Listener that
//                    created it; protect it with the directory's permissions). At most 107 bytes
//                    (sun_path).
//   "@name" or "\0name"  a Linux abstract-namespace Unix socket (no file); address() uses '@'
//   "host:port"      TCP over IPv4; host is a dotted IPv4 literal or "localhost" (127.0.0.1), port
//                    0..65535 (0: the kernel picks; address() tells which). Listeners set
//                    SO_REUSEADDR, both ends TCP_NODELAY.
// Anything else is kInvalidArgument naming the address.
//
// Authentication (when an authkey is given; CPython's deliver_challenge/answer_challenge, with the
// messages carried as Connection messages, so the wire is not CPython's):
//   1. server -> client  "#CHALLENGE#{sha256}" + 32 random bytes (base/random.h)
//   2. client -> server  "{sha256}" + HMAC-SHA256(authkey, "{sha256}" + the 32 bytes)
//   3. server -> client  "#WELCOME#" or "#FAILURE#"
//   4-6. the same with the roles swapped (the client checks the server too).
// HMAC-SHA256 is OpenSSL's (listener/hmac.h). Messages in the handshake are at most 256 bytes and
// carry no descriptors.
//
// Deadlines: the whole handshake, from its first byte to its last, is bounded by one deadline
// (ListenerOptions::auth_timeout from the moment the server accepts the connection; Client's
// `timeout`, which also covers connect(2)). A peer that sends part of a message and goes silent
// holds nobody past it.
//
// Accept and slow clients: Accept runs the handshakes of all the clients it has accepted
// concurrently, without blocking on any of them: it polls the listening socket and every pending
// handshake together (each with its own auth deadline), accepts new clients while others are still
// authenticating (at most kMaxPendingHandshakes at a time; later ones wait in the kernel's
// backlog), and returns as soon as one handshake finishes. One silent client therefore never
// delays the authentication of the others, and Accept(timeout) returns at `timeout` even while
// handshakes are in progress (they stay pending in the Listener and continue in the next Accept).
// Like CPython's Listener.accept(), which raises AuthenticationError, a handshake that fails is
// reported by the Accept call that sees it fail (the connection is closed, last_accepted() names
// that peer, and the other pending handshakes carry on in the next call).
//
// A wrong key is refused on both sides with kUnauthenticated (CPython's AuthenticationError):
//   server: "Listener::Accept: the client at <peer> failed the authkey challenge (digest mismatch)"
//   client: "Client: <address> refused our authkey" (or "... failed our authkey challenge" when the
//           server is the one with the wrong key)
// A peer that does not speak the protocol (no challenge, a malformed or oversized message) is
// kUnauthenticated too, naming what arrived. A peer that hangs up mid-handshake is kOutOfRange (end
// of file, CPython's EOFError), one that resets the connection kAborted: it did not fail the
// challenge, it went away (a manager's client tells a dead server from a refusal by this). A handshake that does not finish
// within its deadline is kDeadlineExceeded ("... did not finish the authentication within <t>",
// naming the step and how many bytes of it had moved). The Listener stays usable after a refused
// client.
//
// Other errors: Accept(timeout) with no handshake finishing in time -> kDeadlineExceeded ("no
// client on <address> within <t>"); Client to a Unix path that does not exist -> kNotFound; to an
// address nobody listens on -> kUnavailable (connection refused); Client whose connect and
// handshake do not finish within its timeout -> kDeadlineExceeded; Create on an address in use ->
// kAlreadyExists; calls on a closed Listener -> kFailedPrecondition; a negative timeout ->
// kInvalidArgument. System call failures map through mp::ErrnoStatus (base/errno_status.h).
//
// Thread safety: a Listener may be used by one thread at a time (Accept from several threads needs
// external synchronization); Close must not race with Accept. Client() is thread-safe.

#ifndef MP_LISTENER_LISTENER_H_
#define MP_LISTENER_LISTENER_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "channels/connection.h"

namespace mp {

namespace listener_internal {
class Handshake;  // one connection's authkey handshake in progress (listener.cc)
}  // namespace listener_internal

// Most handshakes one Listener runs at a time (see "Accept and slow clients" above).
inline constexpr size_t kMaxPendingHandshakes = 64;

struct ListenerOptions {
  std::string address;                 // see the header comment; "" for a fresh Unix socket
  std::optional<std::string> authkey;  // nullopt: no authentication (CPython's authkey=None)
  int backlog = 1;                     // listen(2) backlog, CPython's default
  // Bounds each client's whole handshake, from the accept to the last byte.
  absl::Duration auth_timeout = absl::Seconds(20);
};

class Listener {
 public:
  // Binds and listens. kInvalidArgument for a bad address or backlog < 1 or an empty authkey;
  // kAlreadyExists when the address is in use; kInvalidArgument for a negative auth_timeout.
  static absl::StatusOr<Listener> Create(ListenerOptions options);

  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&& other) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener();  // Close()

  // Waits for a client (at most `timeout`) and, when there is an authkey, for one of the pending
  // handshakes to finish (see "Accept and slow clients" above). Timeouts of any length are fine
  // (waits longer than poll(2)'s range are done in slices).
  absl::StatusOr<Connection> Accept(absl::Duration timeout = absl::InfiniteDuration());

  // The bound address, in the form Client() takes (the real port for "host:0").
  const std::string& address() const { return address_; }
  // The peer of the connection the last Accept returned or refused ("ip:port" for TCP, "" for Unix
  // sockets).
  const std::string& last_accepted() const { return last_accepted_; }
  // The listening socket (-1 when closed; non-blocking), e.g. for Wait().
  int fd() const { return fd_; }

  // Closes the socket and the connections of pending handshakes, and removes what Create made on
  // the file system. Idempotent.
  void Close();

 private:
  Listener();

  // Accepts the clients waiting in the backlog (without blocking). Without an authkey, returns the
  // first one's connection; with one, starts their handshakes. nullopt: nothing more to return now.
  std::optional<absl::StatusOr<Connection>> AcceptWaiting();
  // Removes pending_[i] and returns what its handshake ended with: the Connection, or `failure`.
  absl::StatusOr<Connection> FinishPending(size_t i, absl::Status failure);

  int fd_ = -1;
  bool tcp_ = false;
  std::string address_;
  std::string last_accepted_;
  std::optional<std::string> authkey_;
  absl::Duration auth_timeout_;
  std::string socket_file_;  // to unlink on Close
  std::string temp_dir_;     // to rmdir on Close
  // Accepted connections whose handshake has not finished, oldest first (each owns its socket).
  std::vector<std::unique_ptr<listener_internal::Handshake>> pending_;
};

// Connects to a Listener's address and, with an authkey, runs the handshake. `timeout` bounds both
// together, from the start of connect(2) to the handshake's last byte (absl::InfiniteDuration():
// no bound); kDeadlineExceeded when they do not finish in time, kInvalidArgument when negative.
absl::StatusOr<Connection> Client(absl::string_view address,
                                  std::optional<std::string> authkey = std::nullopt,
                                  absl::Duration timeout = absl::Seconds(20));

}  // namespace mp

#endif  // MP_LISTENER_LISTENER_H_
