// Copyright 2026 The mp Authors.
//
// channels/connection.h — Pipe, Connection and Wait: message channels between processes, over
// shared memory (Pipe()'s default) or a socket or a pipe.
//
// mp's equivalent of Python's multiprocessing.connection. `Pipe()` returns two connected
// `Connection`s; whatever one end sends as a message, the other receives as exactly that message:
// messages never merge or split, an empty message is a message, and a message can be as large as
// the receiver's maximum message size (64 MiB by default, 16 MiB round trips are tested).
//
//   absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = mp::Pipe();
//   auto& [parent, child] = *pipe;
//   if (fork() == 0) {
//     parent.Close();
//     child.Send(std::vector<int>{1, 2, 3}).IgnoreError();
//     _exit(0);
//   }
//   child.Close();
//   absl::StatusOr<std::vector<int>> v = parent.Recv<std::vector<int>>();   // {1, 2, 3}
//   absl::StatusOr<std::vector<int>> eof = parent.Recv<std::vector<int>>(); // kOutOfRange
//
// Duplex pipes (the default) read and write at both ends, and can carry file descriptors
// (SendFd/RecvFd, and typed messages with mp::PassedFd members). A one-way pipe,
// Pipe(/*duplex=*/false): the first Connection only receives, the second only sends; the wrong
// direction is kFailedPrecondition, and so is sending a descriptor over it.
//
// Two transports (ConnectionTransport), one API and one set of semantics:
//   kSharedMemory  Pipe()'s default (and every context's Pipe()): a 256 KiB ring per direction in a
//                  sealed memfd shared by the two ends, plus a side socket (SOCK_SEQPACKET). A
//                  message is copied into the ring and out of it, with no system call while the
//                  other side is awake: a waiting receiver spins briefly (or, while other
//                  processes want its core, yields it), then sleeps on a futex, then in poll(2)
//                  on the side socket. The side socket carries descriptors (in order with the
//                  ring's messages), wakes a receiver asleep in poll (Poll, Wait, a long Recv),
//                  and its hang-up is end of file. Messages larger than a quarter ring travel in
//                  parts. 64 B round trip 0.4-0.6 us, against 8-65 us for a socket (2-core VMs).
//                  channels/shm_link.h has the protocol.
//   kSocket        a socketpair(AF_UNIX, SOCK_STREAM) (duplex) or pipe(2) (one-way), with the
//                  wire format below; Listener/Client connections (listener/) and other hosts use
//                  it, and FromFd() adopts such a descriptor.
// Where they differ: (1) fd() of a shared-memory end is its side socket, which is what poll(2)
// and mp::Wait watch, but not the whole end: pass the end by its Codec (as a spawn argument or in
// a message), not by its bare descriptor, and Release() cannot hand it out (it closes the end and
// returns -1). (2) A peer that dies mid-message leaves nothing half-sent in a ring: the receiver
// sees end of file where a socket gives kDataLoss, except for a message in parts, which is
// kDataLoss too. (3) Send to a peer whose every copy is closed is kAborted on both; after the peer
// *dies* (no Close), a shared-memory Send notices within a millisecond, a socket at once: the few
// messages sent in between are lost, as messages in flight to a dying socket peer are. (4) One
// shared-memory end may have a sending and a receiving thread at once (see "Thread safety").
//
// Wire format of the socket transport (stated once, here). Each message is an 8-byte prefix
// followed by its body:
//
//   offset  size  field
//   0       4     body length in bytes, little-endian (at most the receiver's max message size)
//   4       2     number of file descriptors attached to the message, little-endian (<= 253)
//   6       2     reserved, must be 0
//   8       n     body
//
// SendBytes sends the caller's bytes as the body. Send<T> sends a serialize/frame.h frame (16-byte
// header with the type fingerprint, then the Codec<T> payload) as the body, so RecvBytes can
// receive anything SendBytes or Send sent (a typed message arrives as its frame bytes), and Recv<T>
// of a raw message is kInvalidArgument ("bad magic"). Descriptors travel as SCM_RIGHTS ancillary
// data on the sendmsg that carries the message's first byte; the fd count in the prefix tells the
// receiver how many of the descriptors that arrived belong to this message. Descriptors that arrive
// with a message beyond the count its prefix declares (or inside its body) are closed as soon as
// they arrive, and the message is delivered as usual: a peer cannot make the receiver hold
// descriptors nobody declared. SendFd(fd) is Send(PassedFd{fd}).
//
// Memory: the receiver allocates for a message as its bytes arrive (1 MiB first, then four times
// what arrived), not for the length its prefix announces, so a peer that announces 64 MiB and sends
// one byte costs 1 MiB.
//
// Errors (the Python exception each stands for):
//   kOutOfRange        "end of file": the peer closed its end between messages (EOFError).
//   kDataLoss          the peer closed its end in the middle of a message, or the kernel truncated
//                      the descriptors attached to a message (MSG_CTRUNC: typically this process is
//                      at its RLIMIT_NOFILE); the descriptors that did arrive are closed.
//   kAborted           Send to a peer that has closed its end (EPIPE, ECONNRESET: BrokenPipeError).
//   kFailedPrecondition the connection is closed, or used in a direction it does not have
//                      (OSError).
//   kInvalidArgument   a message longer than RecvBytes' maxlength or the max message size, a
//                      malformed prefix (a hostile or confused peer; this includes declaring more
//                      than 253 descriptors), a prefix declaring more descriptors than arrived with
//                      its message, or a Recv<T> whose message holds another type (names both).
//   kResourceExhausted RecvBytesInto with a buffer too short (BufferTooShort); see there.
//   other codes        a failed system call, by the errno map of base/errno_status.h (e.g. EMFILE
//                      from Pipe() is kResourceExhausted).
// After a malformed prefix, an oversized message, a descriptor count that did not arrive,
// truncated descriptors or a peer closing mid-message, the stream cannot be resynced, so the
// connection closes itself (as CPython does for an oversized message) and every later call is
// kFailedPrecondition. A typed Recv<T> that fails to decode consumes that one message (its
// descriptors are closed) and leaves the connection usable, and so do undeclared descriptors
// (closed, see above). Interrupted system calls (EINTR) are retried.
//
// End of file and fork. kOutOfRange comes once *every* copy of the other end is closed. A fork
// child (the fork start method, or fork(2)) inherits every descriptor its parent holds, so when the
// parent forked its workers while holding both ends of a Pipe, or the ends of other workers' Pipes,
// a worker waiting for end of file on its end may never see it: a copy of the other end is still
// open in the worker itself or in a sibling. CPython behaves the same. Under spawn and forkserver a
// child holds only what it was passed. Under fork, start the child with
// ProcessOptions{.close_inherited_connections = true} (it then closes every Connection it inherited
// except those its Call<&Fn> arguments carry), or close in the child the ends it was not given (the
// example above), or do not use end of file as "no more work" at all:
//   * send a last message that says so (CPython's sentinel idiom: a None at the end; in mp e.g.
//     Send(std::optional<Task>()) and stop at the empty optional);
//   * or wait for the message and for the other process together, so that its end is seen even
//     without end of file:
//       std::vector<mp::Waitable> objects = {mp::Waitable(conn), mp::Waitable(*p.Sentinel())};
//       absl::StatusOr<std::vector<size_t>> ready = mp::Wait(objects);  // a message or p ended
//
// SIGPIPE: writing to a peer that closed its end is kAborted and never kills the process. Sockets
// use MSG_NOSIGNAL. For pipe ends, the first Connection that can write to a pipe sets SIGPIPE to
// SIG_IGN process-wide if it was SIG_DFL (what CPython does at start-up); if the program installed
// its own SIGPIPE handler, it is kept and every pipe write blocks SIGPIPE around the write instead
// (3 extra system calls). Do not set SIGPIPE back to SIG_DFL while pipe Connections are in use.
//
// Timeouts: Poll(timeout) is the timeout variant of every receive: it returns whether a message (or
// its first bytes) can be read, never reads, and so never consumes part of a message. Wait() waits
// for many connections and raw descriptors (e.g. process sentinels) at once. Timeouts run on the
// monotonic clock (a step of the wall clock does not change them) and may be of any length: one
// longer than poll(2) can express (~24.8 days) is waited out in slices.
//
// Shared objects (Queue, Lock...) travel inside messages over a socket Connection as their
// segment's descriptor; a fork-domain one (made by the 'fork' context) cannot, and Send refuses it
// with kFailedPrecondition before sending anything.
//
// Passing a Connection to another process: fd() is the descriptor to pass, and a Connection has an
// mp::Codec that encodes it as an mp::PassedFd (so it travels as a spawn argument or inside a
// message over a socket Connection); the receiver decodes a Connection that owns the descriptor it
// received. A forked child simply keeps using its copy. FromFd() adopts a descriptor by hand.
//
// Thread safety: a Connection is not thread-safe (like CPython's); use one thread at a time per
// Connection. A shared-memory end may also have one thread that only sends and one that only
// receives at the same time (neither closing it while the other runs); a socket end may not (its
// typed receive of a large message uses the send buffer): give each thread its own dup. Distinct
// Connections are independent.

#ifndef MP_CHANNELS_CONNECTION_H_
#define MP_CHANNELS_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "serialize/codec.h"
#include "serialize/fd.h"
#include "serialize/frame.h"

struct msghdr;  // <sys/socket.h>

namespace mp {

namespace channels_internal {
class ShmLink;  // channels/shm_link.h
}  // namespace channels_internal

// How a Connection's messages travel (see "Two transports" above).
enum class ConnectionTransport {
  kSocket,        // a socketpair or pipe(2) (and every Connection of listener/)
  kSharedMemory,  // rings in shared memory beside a side socket: Pipe()'s default
};

// Size of the per-message prefix described above.
inline constexpr size_t kConnectionPrefixSize = 8;
// Most descriptors one message may carry (Linux's SCM_MAX_FD).
inline constexpr size_t kMaxFdsPerMessage = 253;

// The prefix described above, field by field. Decoding checks nothing: a receiver validates each
// field against its own limits (Connection here, the Listener's handshake in listener/).
struct ConnectionPrefix {
  uint32_t length = 0;    // body bytes
  uint16_t fd_count = 0;  // descriptors sent with the message
  uint16_t reserved = 0;  // 0 in every message mp sends
};
// Writes kConnectionPrefixSize bytes to `out`.
void EncodeConnectionPrefix(const ConnectionPrefix& prefix, uint8_t* out);
// Reads kConnectionPrefixSize bytes from `in`.
ConnectionPrefix DecodeConnectionPrefix(const uint8_t* in);

class Connection {
 public:
  // A closed connection (every call is kFailedPrecondition).
  Connection();

  // Adopts `fd` (the Connection owns and closes it). The kind (socket or pipe) and the directions
  // are read from the descriptor: a socket is readable and writable, a pipe end is whichever
  // O_ACCMODE says. kInvalidArgument if fd is negative or neither a stream socket nor a pipe/FIFO.
  static absl::StatusOr<Connection> FromFd(int fd,
                                           size_t max_message_size = kDefaultMaxMessageSize);

  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // A second Connection on the same end (dup(2) of its descriptors), e.g. one per child when
  // several processes share one end; the end's peer sees end of file once every copy is closed.
  // Several copies may send (or receive) at once: messages never interleave on a shared-memory
  // end; on a socket end only messages sent with one write(2) are safe (CPython's rule).
  // kFailedPrecondition on a closed Connection, the errno status of dup otherwise.
  absl::StatusOr<Connection> Dup() const;

  // The descriptor (-1 when closed); still owned by the Connection. For the shared-memory
  // transport, the side socket: what poll(2) watches, and what must be passed (with the segment)
  // for the end to travel, which its Codec does.
  int fd() const { return fd_; }
  // Gives up ownership of the descriptor and leaves the Connection closed. A shared-memory
  // Connection is more than one descriptor: Release() closes it and returns -1.
  int Release();

  bool closed() const { return fd_ < 0; }
  bool readable() const { return readable_; }
  bool writable() const { return writable_; }
  // True for the socket transport's duplex ends (a socket), false for a pipe(2) end and for the
  // shared-memory transport.
  bool is_socket() const { return is_socket_; }
  ConnectionTransport transport() const {
    return shm_ != nullptr ? ConnectionTransport::kSharedMemory : ConnectionTransport::kSocket;
  }

  // Largest body this end accepts (default kDefaultMaxMessageSize, at most 4 GiB - 1) and sends.
  size_t max_message_size() const { return max_message_size_; }
  absl::Status set_max_message_size(size_t size);

  // Sends `size` bytes of `buf` starting at `offset` as one message (size npos: to the end).
  // kInvalidArgument if offset/size fall outside buf or the message exceeds max_message_size().
  static constexpr size_t npos = std::numeric_limits<size_t>::max();
  absl::Status SendBytes(absl::Span<const uint8_t> buf, size_t offset = 0, size_t size = npos);
  absl::Status SendBytes(absl::string_view buf) { return SendBytes(AsBytes(buf)); }

  // Receives one message. A message longer than `maxlength` is kInvalidArgument and closes the
  // connection without reading it (CPython's behaviour). Descriptors attached to it are closed.
  absl::StatusOr<std::string> RecvBytes(size_t maxlength = npos);

  // Receives one message into buffer[offset...] and returns its length. kInvalidArgument if offset
  // > buffer.size(). If the message does not fit, it is still consumed and the result is
  // kResourceExhausted; when `too_short` is not null the whole message is stored there (Python's
  // BufferTooShort carries it the same way, as e.args[0]).
  absl::StatusOr<size_t> RecvBytesInto(absl::Span<uint8_t> buffer, size_t offset = 0,
                                       std::string* too_short = nullptr);

  // Sends `value` as a typed frame. Members of type mp::PassedFd travel as descriptors (sockets
  // only; a one-way pipe refuses with kFailedPrecondition before sending anything).
  template <typename T>
  absl::Status Send(const T& value);

  // Receives one typed frame. kInvalidArgument naming both types if the message holds another type.
  template <typename T>
  absl::StatusOr<T> Recv();

  // Sends / receives a single descriptor. The receiver owns the descriptor RecvFd returns
  // (close-on-exec set). kFailedPrecondition on a one-way pipe.
  absl::Status SendFd(int fd);
  absl::StatusOr<int> RecvFd();

  // Shared-memory ends only (a socket end answers false to both: it cannot tell without system
  // calls): whether a SendBytes of `size` bytes would not wait for the peer now (its ring has the
  // room), and whether the peer has taken every message sent so far (the ring is empty).
  bool CanSendNow(size_t size) const;
  bool PeerTookAll() const;
  // Whether a receive would find a message (or the end) at once, known without a system call
  // (shared memory: the ring holds something; socket: bytes already buffered). False when unsure:
  // Poll is the full answer.
  bool HasInputNow() const;
  // For a process that polls this end's fd() in a loop of its own while another of its threads
  // may take the messages (the pool's engine lets a thread waiting for a result take the reply
  // while the manager thread sleeps in poll(2)). A shared-memory end's fd() is its side socket,
  // which becomes readable for a message only when the writer was asked for a wake-up packet:
  //   ArmWaitWake()   asks for it; returns HasInputNow() (true: a message may already wait and
  //                   no packet come for it, do not sleep on fd()).
  //   QuietWaitWake() withdraws the request while a thread watches the ring itself.
  //   TakeWaitWake()  after fd() polled readable: takes in what made it so (wake-up packets,
  //                   descriptors sent ahead of their message, a hang-up), so that it does not
  //                   stay readable; a receive then says what there is.
  // Only while no other process reads this end (its request would be withdrawn too), and with the
  // end's receives and these calls in one thread at a time. A socket end needs none of them: the
  // kernel makes fd() readable for its bytes (ArmWaitWake returns HasInputNow(), the others do
  // nothing).
  bool ArmWaitWake();
  void QuietWaitWake();
  void TakeWaitWake();

  // Whether a message can be received without blocking (or its first bytes have arrived, or the
  // peer closed: then Recv returns the end-of-file status at once). Waits up to `timeout`
  // (absl::InfiniteDuration() to block). Never consumes anything.
  absl::StatusOr<bool> Poll(absl::Duration timeout = absl::ZeroDuration());

  // Closes the descriptor and any received descriptors not yet handed out. Idempotent.
  void Close();

 private:
  friend struct Codec<Connection>;
  friend absl::StatusOr<std::pair<Connection, Connection>> Pipe(bool duplex,
                                                                ConnectionTransport transport);
  friend absl::StatusOr<std::vector<size_t>> Wait(absl::Span<const class Waitable>, absl::Duration);

  using Prefix = ConnectionPrefix;

  Connection(int fd, bool is_socket, bool readable, bool writable, size_t max_message_size);
  Connection(channels_internal::ShmLink link, bool readable, bool writable,
             size_t max_message_size);
  // Whether this end may send descriptors: the socket transport's sockets, duplex shm ends.
  bool carries_fds() const { return is_socket_ || (shm_ != nullptr && readable_ && writable_); }

  absl::Status CheckReadable() const;
  absl::Status CheckWritable() const;
  // A received descriptor not yet handed to a message, and the stream position (bytes received)
  // at the end of the read it arrived with.
  struct PendingFd {
    int fd;
    uint64_t arrived_by;
  };

  // Writes prefix + body (one piece if the body is small, else gathered) with `fds` attached to the
  // first byte.
  absl::Status WriteMessage(absl::Span<const uint8_t> body, absl::Span<const int> fds);
  // Reads and checks the next prefix and settles the message's descriptors: the ones it declares
  // are appended to *fds (closed if fds is null), the ones that came with it undeclared are closed.
  absl::StatusOr<Prefix> ReadPrefix(std::vector<int>* fds);
  // Reads exactly `n` body bytes into `out`: bytes [done, done + n) of a `total`-byte body.
  absl::Status ReadBody(uint8_t* out, size_t n, size_t total, size_t done);
  // Reads an n-byte body into out[0, n), growing `out` (a std::string or std::vector<uint8_t>) as
  // the bytes arrive rather than to the announced n up front.
  template <typename Buffer>
  absl::Status ReadBodyGrowing(Buffer& out, size_t n);
  // Makes the next `n` buffered bytes contiguous at rbuf_[rpos_] (reading as needed). exact: never
  // reads past those n bytes (otherwise reads as much as the buffer holds).
  absl::Status FillBuffer(size_t n, bool exact = false);
  // One read()/recvmsg(); descriptors go to pending_fds_ or are closed (TakeArrivedFds). 0: EOF.
  absl::StatusOr<size_t> ReadSome(uint8_t* out, size_t n);
  // Files the descriptors one recvmsg returned: pending, or closed if no message can declare them;
  // all closed and kDataLoss if the kernel truncated them (MSG_CTRUNC).
  absl::Status TakeArrivedFds(::msghdr& msg);
  // Closes the connection and returns `status` (for unrecoverable stream errors).
  absl::Status Fail(absl::Status status);
  size_t buffered() const { return rend_ - rpos_; }
  // Receives a typed frame's bytes: returns a view valid until the next call.
  absl::StatusOr<absl::Span<const uint8_t>> RecvFrame(std::vector<int>* fds);
  absl::Status SendFrameBuffer(absl::Span<const int> fds);
  uint8_t* SendBuffer(size_t size);

  int fd_ = -1;
  bool is_socket_ = false;
  bool readable_ = false;
  bool writable_ = false;
  size_t max_message_size_ = kDefaultMaxMessageSize;
  // Receive buffer: bytes [rpos_, rend_) of rbuf_ are received but not yet consumed.
  std::vector<uint8_t> rbuf_;
  size_t rpos_ = 0;
  size_t rend_ = 0;
  // The last message was large (read straight into its destination): read the next prefix alone.
  bool prefix_alone_ = false;
  // Bytes received from fd_ so far (the stream position after them), and the stream position just
  // past the message whose prefix was read last.
  uint64_t received_ = 0;
  uint64_t message_end_ = 0;
  // Descriptors received (in order) and not yet handed to a message; a few at most (see
  // connection.cc, "Descriptors and bytes").
  std::vector<PendingFd> pending_fds_;
  // Reused encode buffer for typed sends: prefix + frame.
  std::vector<uint8_t> sbuf_;
  // The shared-memory transport (null for the socket transport); it owns fd_.
  std::unique_ptr<channels_internal::ShmLink> shm_;
};

// Returns a connected pair. duplex: both ends read and write. One-way: the first Connection
// receives and the second sends. `transport`: see "Two transports" above; kSocket gives a
// socketpair (duplex) or pipe(2) (one-way). Every descriptor is close-on-exec (a forked child
// keeps them; pass the ends to a spawn child as arguments: their Codec carries them).
absl::StatusOr<std::pair<Connection, Connection>> Pipe(
    bool duplex = true, ConnectionTransport transport = ConnectionTransport::kSharedMemory);

// Something Wait() can wait for: a Connection (ready when a message can be received, or it is at
// end of file) or a raw descriptor (ready when readable or hung up, e.g. a process sentinel).
class Waitable {
 public:
  Waitable(const Connection& connection)  // NOLINT: implicit on purpose, Wait({a, b, sentinel})
      : connection_(&connection), fd_(connection.fd()) {}
  Waitable(int fd) : fd_(fd) {}  // NOLINT

  int fd() const { return fd_; }

 private:
  friend absl::StatusOr<std::vector<size_t>> Wait(absl::Span<const Waitable>, absl::Duration);
  const Connection* connection_ = nullptr;
  int fd_ = -1;
};

// Waits until at least one object is ready or `timeout` passes, and returns the indices (into
// `objects`, ascending) of the ready ones; empty after a timeout. kInvalidArgument for a closed
// Connection or a negative / invalid descriptor. poll(2) underneath, until a monotonic deadline
// (base's PollUntil: EINTR and timeouts past poll's range are retried with the remaining time).
absl::StatusOr<std::vector<size_t>> Wait(absl::Span<const Waitable> objects,
                                         absl::Duration timeout = absl::InfiniteDuration());

// A Connection travels as its descriptor (an mp::PassedFd), its max message size and its kind.
// Decoding yields a Connection that owns the received descriptor.
template <>
struct Codec<Connection> {
  static std::string Name() { return "mp::Connection"; }
  static constexpr size_t kMinSize = Codec<PassedFd>::kMinSize + 8 + 1;
  // A shared-memory end also carries its segment's descriptor.
  static size_t Size(const Connection& c) {
    return kMinSize + (c.shm_ != nullptr ? Codec<PassedFd>::kMinSize : 0);
  }
  static void Encode(const Connection& c, ByteWriter& w);
  static absl::Status Decode(ByteReader& r, Connection& out);
};

// ---------------------------------------------------------------------------------------------------
// Implementation details.

template <typename T>
absl::Status Connection::Send(const T& value) {
  RequireCodec<T>();
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  const size_t frame_size = FrameSize(value);
  if (frame_size > max_message_size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("Connection::Send: a ", TypeName<T>(), " encodes to ", frame_size,
                     " bytes, above the max message size of ", max_message_size_));
  }
  uint8_t* out = SendBuffer(frame_size);
  FdTable table;
  {
    ScopedFdTable scope(&table);
    if (absl::Status s = EncodeFrameTo(value, absl::Span<uint8_t>(out, frame_size)); !s.ok()) {
      return s;
    }
  }
  if (!table.fork_only().empty()) {
    // Nobody could decode it: a fork-domain object has no descriptor to travel with.
    return absl::FailedPreconditionError(absl::StrCat(
        "Connection::Send: the ", TypeName<T>(), " holds a ", table.fork_only().front(),
        " created by the 'fork' context, which reaches forked children only (by inheritance) and "
        "cannot travel over a Connection; create it with a 'spawn' or 'forkserver' context"));
  }
  return SendFrameBuffer(table.fds());
}

template <typename T>
absl::StatusOr<T> Connection::Recv() {
  RequireCodec<T>();
  std::vector<int> fds;
  absl::StatusOr<absl::Span<const uint8_t>> frame = RecvFrame(&fds);
  // Owns whatever descriptors arrived, also when the body did not: it closes every descriptor the
  // value does not take.
  FdTable table(std::move(fds));
  if (!frame.ok()) return frame.status();
  ScopedFdTable scope(&table);
  T out{};
  if (absl::Status s = DecodeFrameInto(*frame, out, max_message_size_); !s.ok()) {
    // The message was complete; only its contents are bad. kOutOfRange from the decoder means "the
    // frame is shorter than it says", which on a Connection must not read as end of file.
    if (s.code() == absl::StatusCode::kOutOfRange) {
      return absl::InvalidArgumentError(
          absl::StrCat("Connection::Recv: malformed message: ", s.message()));
    }
    return s;
  }
  return out;
}

}  // namespace mp

#endif  // MP_CHANNELS_CONNECTION_H_
