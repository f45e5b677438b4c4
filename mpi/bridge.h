// Copyright 2026 The mp Authors.
//
// mpi/bridge.h — the stream sockets an mpi child is passed (a Connection of
// GetContext("mpi")->Pipe(), a PassedFd of a socket), carried over TCP (internal to mp).
//
// A descriptor cannot reach another host, but the bytes of a stream socket can. For each such
// argument the parent listens on a TCP port of every address it has and sends the child, with the
// launch record, its addresses and one (port, 32-byte random token) per socket (kTagBridge). The
// child connects to each port (trying the addresses in turn: 2 s each), sends the token, and takes
// the connection once the parent has sent the token back; the connected TCP socket then stands in
// the child's descriptor table where the socket was, so the argument decodes as usual (a socket
// Connection reads and writes a TCP socket as it does a Unix one). In the parent, two relay threads
// per socket copy bytes between the TCP connection and a copy of the socket the child was passed
// (whose other end the parent, or another process, holds), each direction until its end of file,
// which they pass on (shutdown): closing or losing one side is end of file on the other.
//
// A lifeline (for a child on another host) is one more such connection that relays nothing: the
// child holds its end for as long as it lives and the parent watches its own, so the child's death
// is end of file on the parent's host at once (its kernel closes the socket), where heartbeats
// (mpi/start_method.h) would take their whole timeout. A lost host closes nothing: heartbeats
// still tell that.
//
// What does not cross: descriptors sent over such a Connection (SCM_RIGHTS cannot ride TCP: the
// receiver sees a message that declares descriptors none came with, kInvalidArgument), a listening
// socket, and anything not a stream socket (refused by CheckBridgeable). The message from the
// parent is checked in full by the child: counts bounded, sizes exact.

#ifndef MP_MPI_BRIDGE_H_
#define MP_MPI_BRIDGE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/deadline.h"

namespace mp::mpi_internal {

// kFailedPrecondition naming `function` unless `fd` is a connected stream socket of this host
// (AF_UNIX, SOCK_STREAM, not listening): what a bridge can carry.
absl::Status CheckBridgeable(int fd, absl::string_view function);

// The parent's side for one child: a listening TCP socket and a token per socket to carry.
class BridgeOffer {
 public:
  // Listens for `sockets.size()` connections (the descriptors are duplicated: the caller keeps its
  // own), and one more when `lifeline`. `child_on_this_host`: the child may also use the loopback
  // address (tried first).
  static absl::StatusOr<BridgeOffer> Create(const std::vector<int>& sockets,
                                            bool child_on_this_host, bool lifeline = false);
  BridgeOffer(BridgeOffer&& other) noexcept;
  BridgeOffer& operator=(BridgeOffer&&) = delete;
  ~BridgeOffer();

  // What the child is sent (kTagBridge).
  const std::string& message() const { return message_; }
  // Accepts the child's connections (ignoring any with a wrong token) and starts the relays.
  // kDeadlineExceeded at `deadline`; `alive`'s error (the child died) ends the wait.
  absl::Status Accept(Deadline deadline, absl::FunctionRef<absl::Status()> alive);
  // After Accept: the parent's end of the lifeline (owned by the caller from now on), or -1 when
  // none was offered.
  int TakeLifeline();

 private:
  BridgeOffer() = default;
  std::vector<int> local_;      // copies of the sockets to carry (owned until relayed)
  std::vector<int> listeners_;  // owned
  std::vector<std::string> tokens_;
  std::string message_;
  int lifeline_ = -1;  // owned; accepted, not yet taken
};

// What a child connected: the sockets it was passed, in order, and its end of the lifeline (-1
// when none was offered). All owned by the caller.
struct Bridges {
  std::vector<int> sockets;
  int lifeline = -1;
};

// The child's side: connects one TCP socket per socket the parent offers in `message`, and the
// lifeline if one is offered. kInvalidArgument for a malformed message.
absl::StatusOr<Bridges> ConnectBridges(absl::string_view message, Deadline deadline);

}  // namespace mp::mpi_internal

#endif  // MP_MPI_BRIDGE_H_
