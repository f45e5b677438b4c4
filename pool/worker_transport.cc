// Copyright 2026 The mp Authors.

#include "pool/worker_transport.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "base/errno_status.h"

namespace mp {
namespace pool_internal {

absl::StatusOr<std::unique_ptr<ConnectionWorkerTransport>> ConnectionWorkerTransport::Create(
    Connection conn, bool separate_sender) {
  if (!separate_sender || conn.transport() == ConnectionTransport::kSharedMemory) {
    return std::unique_ptr<ConnectionWorkerTransport>(
        new ConnectionWorkerTransport(std::move(conn), Connection(), 0));
  }
  absl::StatusOr<Connection> out = conn.Dup();
  if (!out.ok()) return out.status();
  // Room for two outstanding chunks of the common sizes, so most sends need no thread hop (the
  // kernel caps the request at net.core.wmem_max and doubles it).
  const int want = 1 << 20;
  setsockopt(out->fd(), SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
  int sndbuf = 0;
  socklen_t len = sizeof(sndbuf);
  size_t room = 0;
  if (getsockopt(out->fd(), SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 && sndbuf > 0) {
    room = static_cast<size_t>(sndbuf);
  }
  return std::unique_ptr<ConnectionWorkerTransport>(
      new ConnectionWorkerTransport(std::move(conn), *std::move(out), room));
}

absl::Status ConnectionWorkerTransport::Send(absl::string_view message) {
  return sender().SendBytes(message);
}

// The bytes already queued (SIOCOUTQ, which counts as the kernel's limit does) plus the message
// plus a slack for the kernel's per-buffer overhead stay below SO_SNDBUF (a Unix stream socket
// blocks a send only when the bytes it holds reach SO_SNDBUF).
bool ConnectionWorkerTransport::CanSendWithoutBlocking(size_t size, bool all_read) {
  if (conn_.transport() == ConnectionTransport::kSharedMemory) return conn_.CanSendNow(size);
  constexpr size_t kSlack = size_t{64} << 10;
  int queued = 0;  // nothing when the peer has read everything: no system call
  if (!all_read && (ioctl(sender().fd(), SIOCOUTQ, &queued) != 0 || queued < 0)) return false;
  return size + static_cast<size_t>(queued) + kSlack <= sndbuf_;
}

bool ConnectionWorkerTransport::AllRead() {
  if (conn_.transport() == ConnectionTransport::kSharedMemory) return conn_.PeerTookAll();
  int unread = 0;
  return ioctl(sender().fd(), SIOCOUTQ, &unread) == 0 && unread == 0;
}

absl::Status ConnectionWorkerTransport::Receive(std::string& buffer, size_t* length) {
  std::string whole;
  absl::StatusOr<size_t> n = conn_.RecvBytesInto(
      absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(buffer.data()), buffer.size()), 0, &whole);
  if (n.ok()) {
    *length = *n;
    return absl::OkStatus();
  }
  if (n.status().code() != absl::StatusCode::kResourceExhausted) return n.status();
  buffer = std::move(whole);  // RecvBytesInto hands a longer message over whole
  *length = buffer.size();
  return absl::OkStatus();
}

absl::StatusOr<bool> ConnectionWorkerTransport::Readable() {
  return conn_.Poll(absl::ZeroDuration());
}

// Long enough for a pool's next chunk to come while the worker spins or sleeps on the futex; short
// enough that a worker whose pool died (its sentinel, not its channel, says so) notices soon.
absl::StatusOr<bool> ConnectionWorkerTransport::ReadableSoon() {
  if (conn_.transport() != ConnectionTransport::kSharedMemory) return Readable();
  return conn_.Poll(absl::Milliseconds(2));
}

void ConnectionWorkerTransport::Close() {
  out_.Close();
  conn_.Close();
}

}  // namespace pool_internal
}  // namespace mp
