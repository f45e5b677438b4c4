// Copyright 2026 The mp Authors.

#include "channels/connection.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/deadline.h"
#include "base/errno_status.h"
#include "base/inherited.h"
#include "base/scm_rights.h"
#include "channels/shm_link.h"

namespace mp {

void EncodeConnectionPrefix(const ConnectionPrefix& prefix, uint8_t* out) {
  ByteWriter w(out, kConnectionPrefixSize);
  w.WriteLE(prefix.length);
  w.WriteLE(prefix.fd_count);
  w.WriteLE(prefix.reserved);
}

ConnectionPrefix DecodeConnectionPrefix(const uint8_t* in) {
  ByteReader r(in, kConnectionPrefixSize);
  ConnectionPrefix p;
  // Cannot fail: exactly the prefix's bytes are there.
  (void)r.ReadLE(&p.length, "length");
  (void)r.ReadLE(&p.fd_count, "fd count");
  (void)r.ReadLE(&p.reserved, "reserved");
  return p;
}
namespace {

// Receive buffer. A read for a prefix asks for this much, so the small messages behind it arrive
// with the same system call; a message at least this long is read straight into its destination,
// and the prefix after it is read alone (see ReadPrefix), so the next large body is not pulled into
// the buffer only to be copied out again.
constexpr size_t kReceiveBufferSize = 64 * 1024;
// Bodies up to this size are copied behind their prefix and sent with one write(2)/send(2) (the
// cheapest system call, like a raw pipe write) instead of a gathering writev/sendmsg.
constexpr size_t kCoalesceBodySize = 1024;
// A body's destination grows as the body arrives (ReadBodyGrowing): first to this much (or the
// whole body if shorter), then by kBodyGrowth each time it is full. A peer's announced length thus
// costs at most max(kBodyFirstStep, kBodyGrowth x what it sent). Fourfold rather than twofold: a
// 16 MiB body is copied 5 MiB in growing instead of 15 MiB (measured: RecvBytes of 16 MiB took 7%
// more CPU than one allocation up front, against 35% when doubling; 1 MiB bodies cost nothing).
constexpr size_t kBodyFirstStep = size_t{1} << 20;
constexpr size_t kBodyGrowth = 4;

// A failed poll(2) as `who`'s status (base's errno status, with the caller named).
absl::Status PollFailed(absl::string_view who, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(who, ": ", status.message()));
}

// True once SIGPIPE is ignored process-wide (see connection.h, "SIGPIPE").
std::atomic<bool> g_sigpipe_ignored{false};

void IgnoreSigpipeIfDefault() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current;
    if (::sigaction(SIGPIPE, nullptr, &current) != 0) return;
    if ((current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_IGN) {
      g_sigpipe_ignored = true;
    } else if ((current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_DFL) {
      struct sigaction ignore = {};
      ignore.sa_handler = SIG_IGN;
      sigemptyset(&ignore.sa_mask);
      if (::sigaction(SIGPIPE, &ignore, nullptr) == 0) g_sigpipe_ignored = true;
    }
  });
}

// Writes to a pipe so that a reader that went away is an EPIPE status and never kills the process:
// with SIGPIPE ignored, a plain write (writev for several pieces); otherwise (the program installed
// its own SIGPIPE handler) with SIGPIPE blocked for this thread, swallowing a SIGPIPE this write
// raised.
ssize_t WritevNoSigpipe(int fd, const struct iovec* iov, int iovcnt) {
  if (g_sigpipe_ignored.load(std::memory_order_relaxed)) {
    return iovcnt == 1 ? ::write(fd, iov[0].iov_base, iov[0].iov_len) : ::writev(fd, iov, iovcnt);
  }
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigemptyset(&pending);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  bool was_pending = false;
  if (sigpending(&pending) == 0) was_pending = sigismember(&pending, SIGPIPE) == 1;
  ssize_t n = ::writev(fd, iov, iovcnt);
  int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = err;
  return n;
}

// Every Connection of this process that holds a descriptor, for CloseInheritedConnections. Its
// lock is held across fork(2) (pthread_atfork), so that a fork child finds the set whole.
struct LiveConnections {
  std::mutex mu;
  absl::flat_hash_set<Connection*> set;
};
LiveConnections& Live() {
  static LiveConnections* const live = [] {
    auto* l = new LiveConnections;
    pthread_atfork([] { Live().mu.lock(); }, [] { Live().mu.unlock(); },
                   [] { Live().mu.unlock(); });
    return l;
  }();
  return *live;
}
// `from` (may be null) no longer holds a descriptor; `to` (may be null) does.
void Track(Connection* from, Connection* to) {
  LiveConnections& live = Live();
  std::lock_guard<std::mutex> lock(live.mu);
  if (from != nullptr) live.set.erase(from);
  if (to != nullptr) live.set.insert(to);
}

// A fork child's closer (base/inherited.h): every Connection whose descriptor is not in `keep`
// is closed, so that its later use is kFailedPrecondition and the other end can see end of file.
void CloseInheritedConnections(absl::Span<const int> keep) {
  std::vector<Connection*> inherited;
  {
    LiveConnections& live = Live();
    std::lock_guard<std::mutex> lock(live.mu);
    for (Connection* c : live.set) {
      if (std::find(keep.begin(), keep.end(), c->fd()) == keep.end()) inherited.push_back(c);
    }
  }
  for (Connection* c : inherited) c->Close();
}
const bool kCloserRegistered = (RegisterInheritedCloser(&CloseInheritedConnections), true);

}  // namespace

Connection::Connection(int fd, bool is_socket, bool readable, bool writable,
                       size_t max_message_size)
    : fd_(fd),
      is_socket_(is_socket),
      readable_(readable),
      writable_(writable),
      max_message_size_(max_message_size) {
  if (!is_socket && writable) IgnoreSigpipeIfDefault();
  if (fd_ >= 0) Track(nullptr, this);
}

Connection::Connection(channels_internal::ShmLink link, bool readable, bool writable,
                       size_t max_message_size)
    : fd_(link.sock()),
      readable_(readable),
      writable_(writable),
      max_message_size_(max_message_size),
      shm_(std::make_unique<channels_internal::ShmLink>(std::move(link))) {
  if (fd_ >= 0) Track(nullptr, this);
}

Connection::Connection(Connection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      is_socket_(other.is_socket_),
      readable_(std::exchange(other.readable_, false)),
      writable_(std::exchange(other.writable_, false)),
      max_message_size_(other.max_message_size_),
      rbuf_(std::move(other.rbuf_)),
      rpos_(std::exchange(other.rpos_, 0)),
      rend_(std::exchange(other.rend_, 0)),
      prefix_alone_(std::exchange(other.prefix_alone_, false)),
      received_(std::exchange(other.received_, 0)),
      message_end_(std::exchange(other.message_end_, 0)),
      pending_fds_(std::move(other.pending_fds_)),
      sbuf_(std::move(other.sbuf_)),
      shm_(std::move(other.shm_)) {
  if (fd_ >= 0) Track(&other, this);
  other.pending_fds_.clear();
}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    if (fd_ >= 0) Track(&other, this);
    is_socket_ = other.is_socket_;
    readable_ = std::exchange(other.readable_, false);
    writable_ = std::exchange(other.writable_, false);
    max_message_size_ = other.max_message_size_;
    rbuf_ = std::move(other.rbuf_);
    rpos_ = std::exchange(other.rpos_, 0);
    rend_ = std::exchange(other.rend_, 0);
    prefix_alone_ = std::exchange(other.prefix_alone_, false);
    received_ = std::exchange(other.received_, 0);
    message_end_ = std::exchange(other.message_end_, 0);
    pending_fds_ = std::move(other.pending_fds_);
    other.pending_fds_.clear();
    sbuf_ = std::move(other.sbuf_);
    shm_ = std::move(other.shm_);
  }
  return *this;
}

Connection::Connection() = default;
Connection::~Connection() { Close(); }

absl::StatusOr<Connection> Connection::FromFd(int fd, size_t max_message_size) {
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat("Connection::FromFd: invalid descriptor ", fd));
  }
  if (max_message_size == 0 || max_message_size > kMaxFramePayload) {
    return absl::InvalidArgumentError(absl::StrCat("Connection::FromFd: max message size ",
                                                   max_message_size, " is not in [1, 2^32 - 1]"));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("Connection::FromFd: fstat of descriptor ", fd));
  }
  if (S_ISSOCK(st.st_mode)) {
    int type = 0;
    socklen_t len = sizeof(type);
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
      return ErrnoStatus(errno, "Connection::FromFd: getsockopt(SO_TYPE)");
    }
    if (type != SOCK_STREAM) {
      return absl::InvalidArgumentError(absl::StrCat("Connection::FromFd: descriptor ", fd,
                                                     " is a socket of type ", type,
                                                     ", not SOCK_STREAM"));
    }
    return Connection(fd, /*is_socket=*/true, true, true, max_message_size);
  }
  if (S_ISFIFO(st.st_mode)) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) return ErrnoStatus(errno, "Connection::FromFd: fcntl(F_GETFL)");
    const int mode = flags & O_ACCMODE;
    return Connection(fd, /*is_socket=*/false, mode == O_RDONLY || mode == O_RDWR,
                      mode == O_WRONLY || mode == O_RDWR, max_message_size);
  }
  return absl::InvalidArgumentError(absl::StrCat("Connection::FromFd: descriptor ", fd,
                                                 " is neither a stream socket nor a pipe (mode 0",
                                                 absl::Hex(st.st_mode & S_IFMT), ")"));
}

bool Connection::CanSendNow(size_t size) const {
  return shm_ != nullptr && writable_ && size <= max_message_size_ && shm_->RoomFor(size);
}

bool Connection::HasInputNow() const {
  if (fd_ < 0 || !readable_) return false;
  return shm_ != nullptr ? shm_->ReadyNow() : buffered() > 0;
}

bool Connection::ArmWaitWake() {
  if (shm_ == nullptr || fd_ < 0 || !readable_) return HasInputNow();
  return shm_->ArmPollWake();
}

void Connection::QuietWaitWake() {
  if (shm_ != nullptr && fd_ >= 0 && readable_) shm_->DisarmPollWake();
}

void Connection::TakeWaitWake() {
  if (shm_ != nullptr && fd_ >= 0 && readable_) shm_->TakeWake(POLLIN);
}

bool Connection::PeerTookAll() const { return shm_ != nullptr && writable_ && shm_->AllTaken(); }

absl::StatusOr<Connection> Connection::Dup() const {
  if (fd_ < 0) return absl::FailedPreconditionError("Connection::Dup: the connection is closed");
  const int copy = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return ErrnoStatus(errno, "Connection::Dup: dup");
  if (shm_ == nullptr) {
    Connection c(copy, is_socket_, readable_, writable_, max_message_size_);
    return c;
  }
  absl::StatusOr<channels_internal::ShmLink> link =
      channels_internal::ShmLink::Adopt(copy, shm_->segment_fd(), shm_->end());
  if (!link.ok()) return link.status();
  return Connection(*std::move(link), readable_, writable_, max_message_size_);
}

int Connection::Release() {
  if (shm_ != nullptr) {
    Close();
    return -1;
  }
  int fd = std::exchange(fd_, -1);
  if (fd >= 0) Track(this, nullptr);
  Close();
  return fd;
}

void Connection::Close() {
  if (fd_ >= 0) {
    if (shm_ != nullptr) {
      shm_->Close();
    } else {
      ::close(fd_);  // never retried: on Linux the descriptor is gone even after EINTR
    }
    fd_ = -1;
    Track(this, nullptr);
  }
  shm_.reset();
  readable_ = writable_ = false;
  for (const PendingFd& p : pending_fds_) ::close(p.fd);
  pending_fds_.clear();
  rpos_ = rend_ = 0;
  prefix_alone_ = false;
  received_ = message_end_ = 0;
}

absl::Status Connection::set_max_message_size(size_t size) {
  if (size == 0 || size > kMaxFramePayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("Connection: max message size ", size, " is not in [1, 2^32 - 1]"));
  }
  max_message_size_ = size;
  return absl::OkStatus();
}

absl::Status Connection::CheckReadable() const {
  if (fd_ < 0) return absl::FailedPreconditionError("Connection is closed");
  if (!readable_) {
    return absl::FailedPreconditionError(
        "Connection is write-only (the second end of a one-way Pipe(false)); receive on the first");
  }
  return absl::OkStatus();
}

absl::Status Connection::CheckWritable() const {
  if (fd_ < 0) return absl::FailedPreconditionError("Connection is closed");
  if (!writable_) {
    return absl::FailedPreconditionError(
        "Connection is read-only (the first end of a one-way Pipe(false)); send on the second");
  }
  return absl::OkStatus();
}

absl::Status Connection::Fail(absl::Status status) {
  Close();
  return status;
}

// ---------------------------------------------------------------------------------------------------
// Sending.

absl::Status Connection::WriteMessage(absl::Span<const uint8_t> body, absl::Span<const int> fds) {
  if (body.size() > max_message_size_) {
    return absl::InvalidArgumentError(absl::StrCat("Connection: message of ", body.size(),
                                                   " bytes exceeds the max message size of ",
                                                   max_message_size_));
  }
  if (!fds.empty() && !carries_fds()) {
    return absl::FailedPreconditionError(
        "Connection: a one-way pipe cannot carry file descriptors; use Pipe(/*duplex=*/true)");
  }
  if (fds.size() > kMaxFdsPerMessage) {
    return absl::InvalidArgumentError(absl::StrCat("Connection: a message can carry at most ",
                                                   kMaxFdsPerMessage, " descriptors, got ",
                                                   fds.size()));
  }
  if (shm_ != nullptr) {
    absl::Status s = shm_->Send(body, fds);
    // A broken ring cannot be trusted for the next message either.
    if (s.code() == absl::StatusCode::kDataLoss) return Fail(s);
    return s;
  }
  // A small body travels in one piece behind its prefix: one plain write.
  uint8_t prefix[kConnectionPrefixSize + kCoalesceBodySize];
  EncodeConnectionPrefix(
      {.length = static_cast<uint32_t>(body.size()), .fd_count = static_cast<uint16_t>(fds.size())},
      prefix);
  struct iovec iov[2];
  iov[0].iov_base = prefix;
  iov[0].iov_len = kConnectionPrefixSize;
  iov[1].iov_base = const_cast<uint8_t*>(body.data());
  iov[1].iov_len = body.size();
  int first = 0;
  int count = body.empty() ? 1 : 2;
  if (count == 2 && body.size() <= kCoalesceBodySize) {
    std::memcpy(prefix + kConnectionPrefixSize, body.data(), body.size());
    iov[0].iov_len += body.size();
    count = 1;
  }
  bool fds_sent = fds.empty();
  RightsBuffer control;
  while (count > 0) {
    ssize_t n;
    if (is_socket_) {
      struct msghdr msg = {};
      msg.msg_iov = iov + first;
      msg.msg_iovlen = count;
      if (!fds_sent) AttachRights(msg, control, fds);
      n = fds_sent && count == 1
              ? ::send(fd_, iov[first].iov_base, iov[first].iov_len, MSG_NOSIGNAL)
              : ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    } else {
      n = WritevNoSigpipe(fd_, iov + first, count);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      // Before the errno map: a peer that went away is BrokenPipeError (kAborted), not the map's
      // kUnavailable.
      if (errno == EPIPE || errno == ECONNRESET) {
        return absl::AbortedError(
            "Connection: the peer has closed its end (broken pipe); the message was not sent");
      }
      if (errno == EBADF && !fds_sent) {
        return absl::InvalidArgumentError("Connection: a descriptor to send is not open");
      }
      return ErrnoStatus(errno, is_socket_ ? "Connection: sendmsg" : "Connection: writev");
    }
    fds_sent = true;
    size_t left = static_cast<size_t>(n);
    while (count > 0 && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      ++first;
      --count;
    }
    if (count > 0) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return absl::OkStatus();
}

absl::Status Connection::SendBytes(absl::Span<const uint8_t> buf, size_t offset, size_t size) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  if (offset > buf.size()) {
    return absl::InvalidArgumentError(absl::StrCat("Connection::SendBytes: offset ", offset,
                                                   " is past the end of a ", buf.size(),
                                                   "-byte buffer"));
  }
  if (size == npos) size = buf.size() - offset;
  if (size > buf.size() - offset) {
    return absl::InvalidArgumentError(absl::StrCat("Connection::SendBytes: offset ", offset,
                                                   " + size ", size, " is past the end of a ",
                                                   buf.size(), "-byte buffer"));
  }
  return WriteMessage(buf.subspan(offset, size), {});
}

uint8_t* Connection::SendBuffer(size_t size) {
  if (sbuf_.size() < size) sbuf_.resize(size);
  return sbuf_.data();
}

absl::Status Connection::SendFrameBuffer(absl::Span<const int> fds) {
  // The frame header says how long the frame is.
  absl::StatusOr<FrameHeader> h = ParseFrameHeader(sbuf_, kMaxFramePayload);
  if (!h.ok()) return h.status();
  return WriteMessage(absl::Span<const uint8_t>(sbuf_.data(), kFrameHeaderSize + h->payload_size),
                      fds);
}

absl::Status Connection::SendFd(int fd) {
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat("Connection::SendFd: invalid descriptor ", fd));
  }
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  if (!carries_fds()) {
    return absl::FailedPreconditionError(
        "Connection::SendFd: a one-way pipe cannot carry file descriptors; use "
        "Pipe(/*duplex=*/true)");
  }
  return Send(PassedFd{fd});
}

absl::StatusOr<int> Connection::RecvFd() {
  if (absl::Status s = CheckReadable(); !s.ok()) return s;
  if (!carries_fds()) {
    return absl::FailedPreconditionError(
        "Connection::RecvFd: a one-way pipe cannot carry file descriptors; use "
        "Pipe(/*duplex=*/true)");
  }
  absl::StatusOr<PassedFd> got = Recv<PassedFd>();
  if (!got.ok()) return got.status();
  return got->fd;
}

// ---------------------------------------------------------------------------------------------------
// Receiving.
//
// Descriptors and bytes. The sender attaches a message's descriptors to the sendmsg that carries
// the message's first byte, and recvmsg(2) on a stream socket returns the descriptors of at most
// one sendmsg, ending its read at the end of that sendmsg's first socket buffer. So a batch of
// descriptors arrives with the read that holds the first byte of its message, and that read ends
// inside the message: every received descriptor is recorded with the stream position where its read
// ended
// (`arrived_by`). When a message's prefix is parsed (it starts at `start`, ends at `end`), the
// pending descriptors that arrived after `start` are the candidates, in arrival order; the message
// takes the number its prefix declares, and any others that arrived by `end` (with this message's
// bytes, beyond its declared count) are closed at once. A read that lies inside the body of the
// message being received, past its prefix, cannot carry descriptors anybody declared: they are
// closed as they arrive. So a peer cannot make this process hold descriptors it did not ask for:
// what stays pending is at most what came with the reads of one prefix (8 bytes, so at most 8
// reads) and with one read past the current message.

absl::Status Connection::TakeArrivedFds(struct msghdr& msg) {
  // Descriptors of a read that ended inside the current message's body were declared by no one.
  const bool keep = received_ > message_end_;
  const bool truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  std::vector<int> fds;
  CollectRights(msg, &fds);
  const size_t arrived = fds.size();
  for (int fd : fds) {
    if (keep && !truncated) {
      pending_fds_.push_back({fd, received_});
    } else {
      ::close(fd);
    }
  }
  if (truncated) {
    // The kernel could not deliver every descriptor of this sendmsg (typically: this process is at
    // its RLIMIT_NOFILE), so the message they belong to cannot be delivered as sent.
    return absl::DataLossError(absl::StrCat(
        "Connection: descriptors sent with a message were truncated by the kernel (MSG_CTRUNC; is "
        "this process out of descriptors? see RLIMIT_NOFILE); the ",
        arrived, " that arrived were closed and the connection is closed"));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> Connection::ReadSome(uint8_t* out, size_t n) {
  for (;;) {
    ssize_t got;
    if (is_socket_) {
      RightsBuffer control;
      struct iovec iov = {out, n};
      struct msghdr msg = {};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control.data;
      msg.msg_controllen = sizeof(control.data);
      got = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
      if (got >= 0) {
        received_ += static_cast<uint64_t>(got);
        if (msg.msg_controllen > 0 || (msg.msg_flags & MSG_CTRUNC) != 0) {
          if (absl::Status s = TakeArrivedFds(msg); !s.ok()) return s;
        }
        return static_cast<size_t>(got);
      }
    } else {
      got = ::read(fd_, out, n);
      if (got >= 0) {
        received_ += static_cast<uint64_t>(got);
        return static_cast<size_t>(got);
      }
    }
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return size_t{0};  // the peer closed with data unread: end of file
    return ErrnoStatus(errno, is_socket_ ? "Connection: recvmsg" : "Connection: read");
  }
}

absl::Status Connection::FillBuffer(size_t n, bool exact) {
  if (buffered() >= n) return absl::OkStatus();
  if (rbuf_.size() < std::max(n, kReceiveBufferSize)) {
    rbuf_.resize(std::max(n, kReceiveBufferSize));
  }
  if (rpos_ + n > rbuf_.size()) {  // compact
    std::memmove(rbuf_.data(), rbuf_.data() + rpos_, buffered());
    rend_ -= rpos_;
    rpos_ = 0;
  }
  while (buffered() < n) {
    absl::StatusOr<size_t> got =
        ReadSome(rbuf_.data() + rend_, exact ? n - buffered() : rbuf_.size() - rend_);
    if (!got.ok()) return Fail(got.status());
    if (*got == 0) {
      return absl::OutOfRangeError("");  // caller words it: between or inside a message
    }
    rend_ += *got;
  }
  return absl::OkStatus();
}

absl::StatusOr<Connection::Prefix> Connection::ReadPrefix(std::vector<int>* fds) {
  if (absl::Status s = CheckReadable(); !s.ok()) return s;
  if (shm_ != nullptr) {
    absl::StatusOr<uint32_t> length = shm_->BeginRecv(fds, max_message_size_);
    if (!length.ok()) {
      if (length.status().code() == absl::StatusCode::kOutOfRange) return length.status();
      return Fail(length.status());
    }
    return Prefix{.length = *length};
  }
  if (rpos_ == rend_) rpos_ = rend_ = 0;
  const size_t had = buffered();
  if (absl::Status s = FillBuffer(kConnectionPrefixSize, /*exact=*/prefix_alone_); !s.ok()) {
    if (s.code() != absl::StatusCode::kOutOfRange) return s;
    if (had == 0 && buffered() == 0) {
      return absl::OutOfRangeError("Connection: end of file (the peer closed its end)");
    }
    return Fail(absl::DataLossError(
        absl::StrCat("Connection: the peer closed its end in the middle of a message prefix (",
                     buffered(), " of ", kConnectionPrefixSize, " bytes)")));
  }
  const Prefix p = DecodeConnectionPrefix(rbuf_.data() + rpos_);
  if (p.reserved != 0) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "Connection: malformed message prefix (reserved field is ", p.reserved,
        ", must be 0): the peer does not speak mp's wire format; the connection is closed")));
  }
  if (p.length > max_message_size_) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "Connection: incoming message of ", p.length, " bytes exceeds the max message size of ",
        max_message_size_, "; the connection is closed")));
  }
  if (p.fd_count > kMaxFdsPerMessage) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("Connection: malformed message prefix (it declares ", p.fd_count,
                     " descriptors; a message carries at most ", kMaxFdsPerMessage,
                     "); the connection is closed")));
  }
  // The message's descriptors (see "Descriptors and bytes" above).
  const uint64_t start = received_ - buffered();
  const uint64_t end = start + kConnectionPrefixSize + p.length;
  if (!pending_fds_.empty() || p.fd_count > 0) {
    size_t first = 0;  // pending_fds_[0, first) came with earlier messages: none declared them
    while (first < pending_fds_.size() && pending_fds_[first].arrived_by <= start) ++first;
    if (p.fd_count > pending_fds_.size() - first) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("Connection: message says it carries ", p.fd_count, " descriptors but ",
                       pending_fds_.size() - first, " arrived; the connection is closed")));
    }
    const size_t taken_end = first + p.fd_count;
    size_t last = taken_end;  // [taken_end, last) came with this message beyond its count
    while (last < pending_fds_.size() && pending_fds_[last].arrived_by <= end) ++last;
    for (size_t i = 0; i < last; ++i) {
      if (i >= first && i < taken_end && fds != nullptr) {
        fds->push_back(pending_fds_[i].fd);
      } else {
        ::close(pending_fds_[i].fd);
      }
    }
    pending_fds_.erase(pending_fds_.begin(), pending_fds_.begin() + last);
  }
  message_end_ = end;
  rpos_ += kConnectionPrefixSize;
  prefix_alone_ = p.length >= kReceiveBufferSize;
  return p;
}

absl::Status Connection::ReadBody(uint8_t* out, size_t n, size_t total, size_t done) {
  if (shm_ != nullptr) {
    if (absl::Status s = shm_->ReadBody(out, n); !s.ok()) return Fail(s);
    return absl::OkStatus();
  }
  const size_t from_buffer = std::min(n, buffered());
  if (from_buffer > 0) std::memcpy(out, rbuf_.data() + rpos_, from_buffer);
  rpos_ += from_buffer;
  out += from_buffer;
  n -= from_buffer;
  done += from_buffer;
  while (n > 0) {
    absl::StatusOr<size_t> got = ReadSome(out, n);  // straight into the destination, never past
    if (!got.ok()) return Fail(got.status());
    if (*got == 0) {
      return Fail(absl::DataLossError(
          absl::StrCat("Connection: the peer closed its end in the middle of a ", total,
                       "-byte message (", done, " bytes arrived)")));
    }
    out += *got;
    n -= *got;
    done += *got;
  }
  return absl::OkStatus();
}

// The length in the prefix is the peer's word, not yet backed by bytes: the destination grows as
// the body arrives (see kBodyFirstStep), so a peer that announces a large message and sends little
// of it makes this process hold little.
template <typename Buffer>
absl::Status Connection::ReadBodyGrowing(Buffer& out, size_t n) {
  size_t done = 0;
  while (done < n) {
    const size_t step = std::min(n, std::max(kBodyFirstStep, kBodyGrowth * done));
    if (out.size() < step) out.resize(step);
    if (absl::Status s =
            ReadBody(reinterpret_cast<uint8_t*>(out.data()) + done, step - done, n, done);
        !s.ok()) {
      return s;
    }
    done = step;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Connection::RecvBytes(size_t maxlength) {
  absl::StatusOr<Prefix> p = ReadPrefix(/*fds=*/nullptr);
  if (!p.ok()) return p.status();
  if (p->length > maxlength) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("Connection::RecvBytes: message of ", p->length,
                     " bytes is longer than maxlength ", maxlength, "; the connection is closed")));
  }
  std::string out;
  if (absl::Status s = ReadBodyGrowing(out, p->length); !s.ok()) return s;
  return out;
}

absl::StatusOr<size_t> Connection::RecvBytesInto(absl::Span<uint8_t> buffer, size_t offset,
                                                 std::string* too_short) {
  if (offset > buffer.size()) {
    return absl::InvalidArgumentError(absl::StrCat("Connection::RecvBytesInto: offset ", offset,
                                                   " is past the end of a ", buffer.size(),
                                                   "-byte buffer"));
  }
  absl::StatusOr<Prefix> p = ReadPrefix(/*fds=*/nullptr);
  if (!p.ok()) return p.status();
  const size_t room = buffer.size() - offset;
  if (p->length <= room) {
    if (absl::Status s = ReadBody(buffer.data() + offset, p->length, p->length, 0); !s.ok()) {
      return s;
    }
    return static_cast<size_t>(p->length);
  }
  std::string whole;
  if (absl::Status s = ReadBodyGrowing(whole, p->length); !s.ok()) return s;
  if (too_short != nullptr) *too_short = std::move(whole);
  return absl::ResourceExhaustedError(absl::StrCat(
      "Connection::RecvBytesInto: message of ", p->length, " bytes does not fit the ", room,
      " bytes after offset ", offset, " (buffer too short; the message was consumed",
      too_short != nullptr ? " and stored in *too_short)" : ")"));
}

absl::StatusOr<absl::Span<const uint8_t>> Connection::RecvFrame(std::vector<int>* fds) {
  absl::StatusOr<Prefix> p = ReadPrefix(fds);
  if (!p.ok()) return p.status();
  if (shm_ != nullptr) {
    // Copied out of shared memory before it is decoded (the peer cannot change it under the
    // decoder), into the receive buffer only, so that a sending thread may use sbuf_ meanwhile.
    if (p->length <= kReceiveBufferSize) {
      if (rbuf_.size() < kReceiveBufferSize) rbuf_.resize(kReceiveBufferSize);
      if (absl::Status s = ReadBody(rbuf_.data(), p->length, p->length, 0); !s.ok()) return s;
    } else if (absl::Status s = ReadBodyGrowing(rbuf_, p->length); !s.ok()) {
      return s;
    }
    return absl::Span<const uint8_t>(rbuf_.data(), p->length);
  }
  if (shm_ == nullptr && (buffered() >= p->length || p->length <= kReceiveBufferSize)) {
    // Decode in place from the receive buffer.
    if (absl::Status s = FillBuffer(p->length); !s.ok()) {
      if (s.code() != absl::StatusCode::kOutOfRange) return s;
      return Fail(absl::DataLossError(
          absl::StrCat("Connection: the peer closed its end in the middle of a ", p->length,
                       "-byte message (", buffered(), " bytes arrived)")));
    }
    absl::Span<const uint8_t> frame(rbuf_.data() + rpos_, p->length);
    rpos_ += p->length;
    return frame;
  }
  // Large message: read it into the send-side scratch buffer (not used while receiving).
  if (absl::Status s = ReadBodyGrowing(sbuf_, p->length); !s.ok()) return s;
  return absl::Span<const uint8_t>(sbuf_.data(), p->length);
}

absl::StatusOr<bool> Connection::Poll(absl::Duration timeout) {
  if (absl::Status s = CheckReadable(); !s.ok()) return s;
  if (shm_ != nullptr) return shm_->Poll(Deadline::After(timeout));
  if (buffered() > 0) return true;
  absl::StatusOr<short> ready = PollUntil(fd_, POLLIN, Deadline::After(timeout));
  if (!ready.ok()) return PollFailed("Connection::Poll", ready.status());
  return *ready != 0;
}

// ---------------------------------------------------------------------------------------------------

absl::StatusOr<std::pair<Connection, Connection>> Pipe(bool duplex, ConnectionTransport transport) {
  if (transport == ConnectionTransport::kSharedMemory) {
    absl::StatusOr<std::pair<channels_internal::ShmLink, channels_internal::ShmLink>> links =
        channels_internal::ShmLink::CreatePair(channels_internal::kDefaultRingBytes);
    if (!links.ok()) return links.status();
    return std::make_pair(
        Connection(std::move(links->first), true, duplex, kDefaultMaxMessageSize),
        Connection(std::move(links->second), duplex, true, kDefaultMaxMessageSize));
  }
  int fds[2];
  if (duplex) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return ErrnoStatus(errno, "Pipe: socketpair(AF_UNIX, SOCK_STREAM)");
    }
    return std::make_pair(Connection(fds[0], true, true, true, kDefaultMaxMessageSize),
                          Connection(fds[1], true, true, true, kDefaultMaxMessageSize));
  }
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, "Pipe: pipe2");
  return std::make_pair(Connection(fds[0], false, true, false, kDefaultMaxMessageSize),
                        Connection(fds[1], false, false, true, kDefaultMaxMessageSize));
}

absl::StatusOr<std::vector<size_t>> Wait(absl::Span<const Waitable> objects,
                                         absl::Duration timeout) {
  const Deadline deadline = Deadline::After(timeout);
  std::vector<struct pollfd> polls(objects.size());
  // The shared-memory ends among the objects: ready when their ring holds a message; otherwise
  // they announce a poll(2) sleeper so that the next message wakes their side socket. Objects
  // ready before polling (a message in a ring, or buffered) are still polled once at once, so that
  // every ready object is reported and every descriptor checked.
  std::vector<channels_internal::ShmLink*> links(objects.size(), nullptr);
  std::vector<bool> buffered(objects.size(), false);
  bool any_link = false;
  for (size_t i = 0; i < objects.size(); ++i) {
    const Waitable& w = objects[i];
    if (w.connection_ != nullptr) {
      if (w.connection_->closed()) {
        return absl::InvalidArgumentError(
            absl::StrCat("mp::Wait: object #", i, " is a closed Connection"));
      }
      if (!w.connection_->readable()) {
        return absl::InvalidArgumentError(
            absl::StrCat("mp::Wait: object #", i, " is a write-only Connection"));
      }
      links[i] = w.connection_->shm_.get();
      any_link = any_link || links[i] != nullptr;
      buffered[i] = links[i] == nullptr && w.connection_->buffered() > 0;
    } else if (w.fd_ < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("mp::Wait: object #", i, " is an invalid descriptor ", w.fd_));
    }
    polls[i] = {w.fd_, POLLIN, 0};
  }
  std::vector<bool> ready_now(objects.size(), false);
  for (;;) {
    bool any = false;
    for (size_t i = 0; i < links.size(); ++i) {
      ready_now[i] = buffered[i] || (links[i] != nullptr && links[i]->ArmPollWake());
      any = any || ready_now[i];
    }
    // With shared-memory ends, in slices of at most 100 ms: another process's copy of an end may
    // drain the wake-up packet meant for this one (see shm_link.cc, the poll phase).
    const Deadline until =
        any         ? Deadline::After(absl::ZeroDuration())
        : !any_link ? deadline
                    : Deadline::Earlier(deadline, Deadline::After(absl::Milliseconds(100)));
    absl::StatusOr<int> r = PollUntil(absl::MakeSpan(polls), until);
    if (!r.ok()) return PollFailed("mp::Wait", r.status());
    std::vector<size_t> ready;
    for (size_t i = 0; i < polls.size(); ++i) {
      if (polls[i].revents & POLLNVAL) {
        return absl::InvalidArgumentError(absl::StrCat("mp::Wait: object #", i, " (descriptor ",
                                                       polls[i].fd, ") is not an open descriptor"));
      }
      if (polls[i].revents != 0) {
        if (links[i] == nullptr) {
          ready_now[i] = true;
        } else {
          // Woken by a wake-up packet, descriptors or a hang-up: ready only with a message or the
          // end.
          links[i]->TakeWake(polls[i].revents);
          ready_now[i] = ready_now[i] || links[i]->ReadyNow();
        }
      }
      polls[i].revents = 0;
      if (ready_now[i]) ready.push_back(i);
    }
    // Nothing ready after a slice (or a wake-up packet that was another copy's): look again.
    if (!ready.empty() || deadline.Expired()) return ready;
  }
}

// ---------------------------------------------------------------------------------------------------

// Flags: 1 socket, 2 readable, 4 writable, 8 shared memory (then the segment follows), 16 end 1
// of its link.
void Codec<Connection>::Encode(const Connection& c, ByteWriter& w) {
  Codec<PassedFd>::Encode(PassedFd{c.fd_}, w);
  w.WriteLE(static_cast<uint64_t>(c.max_message_size_));
  uint8_t flags = (c.is_socket_ ? 1 : 0) | (c.readable_ ? 2 : 0) | (c.writable_ ? 4 : 0);
  if (c.shm_ != nullptr) flags |= 8 | (c.shm_->end() == 1 ? 16 : 0);
  w.WriteByte(flags);
  if (c.shm_ != nullptr) Codec<PassedFd>::Encode(PassedFd{c.shm_->segment_fd()}, w);
}

absl::Status Codec<Connection>::Decode(ByteReader& r, Connection& out) {
  PassedFd fd;
  if (absl::Status s = Codec<PassedFd>::Decode(r, fd); !s.ok()) return s;
  uint64_t max_size = 0;
  absl::Status s = r.ReadLE(&max_size, "Connection max message size");
  absl::StatusOr<uint8_t> flags = r.ReadByte("Connection flags");
  if (s.ok() && !flags.ok()) s = flags.status();
  if (s.ok() && (max_size == 0 || max_size > kMaxFramePayload)) {
    s = absl::InvalidArgumentError(absl::StrCat("mp::Decode: Connection max message size ",
                                                max_size, " is not in [1, 2^32 - 1]"));
  }
  if (s.ok() && (*flags & ~uint8_t{31}) != 0) {
    s = absl::InvalidArgumentError(
        absl::StrCat("mp::Decode: Connection flags 0x", absl::Hex(*flags), " has unknown bits"));
  }
  PassedFd segment;
  if (s.ok() && (*flags & 8) != 0) s = Codec<PassedFd>::Decode(r, segment);
  if (!s.ok()) {
    ::close(fd.fd);
    return s;
  }
  if ((*flags & 8) != 0) {
    absl::StatusOr<channels_internal::ShmLink> link =
        channels_internal::ShmLink::Adopt(fd.fd, segment.fd, (*flags & 16) != 0 ? 1 : 0);
    ::close(segment.fd);  // Adopt mapped (and duplicated) it
    if (!link.ok()) return link.status();
    if ((*flags & 1) != 0) {
      return absl::InvalidArgumentError("mp::Decode: a shared-memory Connection flagged socket");
    }
    out = Connection(*std::move(link), (*flags & 2) != 0, (*flags & 4) != 0, max_size);
    return absl::OkStatus();
  }
  // The received descriptor says what it is; the flags must agree with it.
  absl::StatusOr<Connection> c = Connection::FromFd(fd.fd, max_size);
  if (!c.ok()) {
    ::close(fd.fd);
    return c.status();
  }
  const bool is_socket = *flags & 1, readable = *flags & 2, writable = *flags & 4;
  if (c->is_socket_ != is_socket || (readable && !c->readable_) || (writable && !c->writable_)) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp::Decode: Connection flags 0x", absl::Hex(*flags),
                     " disagree with the descriptor that arrived (socket=", c->is_socket_, ")"));
  }
  c->readable_ = readable;
  c->writable_ = writable;
  out = *std::move(c);
  return absl::OkStatus();
}

}  // namespace mp
