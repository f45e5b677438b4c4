// Copyright 2026 The mp Authors.

#include "mpi/bridge.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "base/constant_time.h"
#include "base/errno_status.h"
#include "base/host_addresses.h"
#include "base/io.h"
#include "base/random.h"

namespace mp::mpi_internal {
namespace {

constexpr size_t kTokenSize = 32;
constexpr uint32_t kMaxAddresses = 64;
constexpr uint32_t kMaxBridges = 253;  // the most descriptors a Connection message declares
constexpr absl::Duration kConnectTimeout = absl::Seconds(2);

void PutU32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }

// Both directions of one carried socket share the two descriptors; the last to finish closes them.
struct RelayPair {
  int local;
  int tcp;
  std::atomic<int> running{2};
  ~RelayPair() {
    close(local);
    close(tcp);
  }
};

// Copies `from` to `to` until end of file or an error, then passes the end on: a clean end of
// file as a write shutdown, an error (a reset) as a full shutdown of both, so that the other
// direction ends too.
void Relay(std::shared_ptr<RelayPair> pair, bool up) {
  const int from = up ? pair->local : pair->tcp;
  const int to = up ? pair->tcp : pair->local;
  char buffer[64 * 1024];
  bool clean = false;
  for (;;) {
    const ssize_t n = read(from, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) clean = true;
    if (n <= 0) break;
    if (!WriteFull(to,
                   absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(buffer),
                                             static_cast<size_t>(n)),
                   Deadline::Never(), "a bridge's relay")
             .ok()) {
      break;
    }
  }
  if (clean) {
    shutdown(to, SHUT_WR);
  } else {
    shutdown(from, SHUT_RDWR);
    shutdown(to, SHUT_RDWR);
  }
}

void StartRelays(int local, int tcp) {
  auto pair = std::make_shared<RelayPair>();
  pair->local = local;
  pair->tcp = tcp;
  std::thread(Relay, pair, true).detach();
  std::thread(Relay, std::move(pair), false).detach();
}

void NoDelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// One connection to ip:port that answers `token` with `token`, or -1.
int TryConnect(uint32_t ip, uint16_t port, absl::string_view token, Deadline deadline) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = ip;
  const Deadline attempt = Deadline::Earlier(deadline, Deadline::After(kConnectTimeout));
  bool connected = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  if (!connected && errno == EINPROGRESS) {
    absl::StatusOr<short> ready = PollUntil(fd, POLLOUT, attempt);
    int err = 0;
    socklen_t len = sizeof(err);
    connected = ready.ok() && *ready != 0 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
  }
  std::string answer(kTokenSize, '\0');
  if (!connected ||
      !WriteFull(
           fd,
           absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(token.data()), token.size()),
           attempt, "a bridge's token")
           .ok() ||
      !ReadFull(fd, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(answer.data()), kTokenSize),
                attempt, "a bridge's answer")
           .ok() ||
      !ConstantTimeEqual(answer, token)) {
    close(fd);
    return -1;
  }
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  NoDelay(fd);
  return fd;
}

}  // namespace

absl::Status CheckBridgeable(int fd, absl::string_view function) {
  int type = 0, domain = 0, listening = 0;
  socklen_t len = sizeof(int);
  struct stat st;
  const bool ok = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
                  getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM &&
                  getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX &&
                  getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && !listening;
  if (ok) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "mp: an argument of ", function,
      " holds a descriptor that cannot reach an 'mpi' process on another host (a Lock, Queue, "
      "Value, SharedMemory, a Connection of a host-local Pipe, a PassedFd that is not a connected "
      "stream socket); pass a Connection of mp::GetContext(\"mpi\")->Pipe() (carried over TCP), "
      "or share the object through a Manager (mp::GetContext(\"mpi\")->Manager(), then its "
      "proxies)"));
}

absl::StatusOr<BridgeOffer> BridgeOffer::Create(const std::vector<int>& sockets,
                                                bool child_on_this_host, bool lifeline) {
  if (sockets.size() > kMaxBridges) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp: ", sockets.size(), " sockets for one mpi child; at most ", kMaxBridges));
  }
  BridgeOffer offer;
  const std::vector<uint32_t> addresses = HostIPv4Addresses(child_on_this_host, kMaxAddresses);
  PutU32(offer.message_, static_cast<uint32_t>(addresses.size()));
  for (uint32_t ip : addresses) PutU32(offer.message_, ip);
  PutU32(offer.message_, static_cast<uint32_t>(sockets.size()));
  PutU32(offer.message_, lifeline ? 1 : 0);
  // One listener per connection; the lifeline's is last and has no local socket (-1).
  for (size_t i = 0; i < sockets.size() + (lifeline ? 1 : 0); ++i) {
    int local = -1;
    if (i < sockets.size()) {
      local = fcntl(sockets[i], F_DUPFD_CLOEXEC, 0);
      if (local < 0) return ErrnoStatus(errno, "dup of a socket to carry to an mpi child");
    }
    offer.local_.push_back(local);
    const int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l < 0) return ErrnoStatus(errno, "socket for an mpi child's bridge");
    offer.listeners_.push_back(l);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t len = sizeof(addr);
    if (bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(l, 4) != 0 ||
        getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return ErrnoStatus(errno, "listening for an mpi child's bridge");
    }
    std::string token(kTokenSize, '\0');
    if (absl::Status st =
            RandomBytes(absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(token.data()), kTokenSize));
        !st.ok()) {
      return st;
    }
    const uint16_t port = ntohs(addr.sin_port);
    offer.message_.append(reinterpret_cast<const char*>(&port), 2);
    offer.message_.append(token);
    offer.tokens_.push_back(std::move(token));
  }
  return offer;
}

BridgeOffer::BridgeOffer(BridgeOffer&& other) noexcept
    : local_(std::move(other.local_)),
      listeners_(std::move(other.listeners_)),
      tokens_(std::move(other.tokens_)),
      message_(std::move(other.message_)),
      lifeline_(other.lifeline_) {
  other.local_.clear();
  other.listeners_.clear();
  other.lifeline_ = -1;
}

BridgeOffer::~BridgeOffer() {
  for (int fd : local_) {
    if (fd >= 0) close(fd);
  }
  for (int fd : listeners_) close(fd);
  if (lifeline_ >= 0) close(lifeline_);
}

int BridgeOffer::TakeLifeline() {
  const int fd = lifeline_;
  lifeline_ = -1;
  return fd;
}

absl::Status BridgeOffer::Accept(Deadline deadline, absl::FunctionRef<absl::Status()> alive) {
  for (size_t i = 0; i < listeners_.size(); ++i) {
    for (;;) {
      if (absl::Status s = alive(); !s.ok()) return s;
      if (deadline.Expired()) {
        return absl::DeadlineExceededError(
            "mp: an mpi child did not connect the Connection it was passed in time");
      }
      absl::StatusOr<short> ready =
          PollUntil(listeners_[i], POLLIN,
                    Deadline::Earlier(deadline, Deadline::After(absl::Milliseconds(100))));
      if (!ready.ok()) return ready.status();
      if (*ready == 0) continue;
      const int c = accept4(listeners_[i], nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string token(kTokenSize, '\0');
      const Deadline answer = Deadline::Earlier(deadline, Deadline::After(kConnectTimeout));
      if (!ReadFull(c, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(token.data()), kTokenSize),
                    answer, "a bridge's token")
               .ok() ||
          !ConstantTimeEqual(token, tokens_[i]) ||
          !WriteFull(c,
                     absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(token.data()),
                                               kTokenSize),
                     answer, "a bridge's answer")
               .ok()) {
        close(c);  // not the child (or not in time): wait for the right one
        continue;
      }
      NoDelay(c);
      if (local_[i] < 0) {  // the lifeline: kept, not relayed
        lifeline_ = c;
      } else {
        StartRelays(local_[i], c);
        local_[i] = -1;
      }
      break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Bridges> ConnectBridges(absl::string_view message, Deadline deadline) {
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    std::memcpy(&v, message.data() + at, 4);
    return v;
  };
  if (message.size() < 4) return absl::InvalidArgumentError("mp: a bridge message under 4 bytes");
  const uint32_t n_addresses = u32(0);
  if (n_addresses > kMaxAddresses || message.size() < 12 + size_t{4} * n_addresses) {
    return absl::InvalidArgumentError(absl::StrCat("mp: a bridge message with ", n_addresses,
                                                   " addresses in ", message.size(),
                                                   " bytes (at most ", kMaxAddresses, ")"));
  }
  std::vector<uint32_t> addresses;
  for (uint32_t i = 0; i < n_addresses; ++i) addresses.push_back(u32(4 + size_t{4} * i));
  const size_t at = 4 + size_t{4} * n_addresses;
  const uint32_t n = u32(at);
  const uint32_t lifelines = u32(at + 4);
  if (n > kMaxBridges || lifelines > 1 ||
      message.size() != at + 8 + (size_t{n} + lifelines) * (2 + kTokenSize)) {
    return absl::InvalidArgumentError(absl::StrCat("mp: a bridge message with ", n, " sockets and ",
                                                   lifelines, " lifelines in ", message.size(),
                                                   " bytes"));
  }
  std::vector<int> out;
  for (uint32_t b = 0; b < n + lifelines; ++b) {
    const size_t entry = at + 8 + size_t{b} * (2 + kTokenSize);
    uint16_t port = 0;
    std::memcpy(&port, message.data() + entry, 2);
    const absl::string_view token = message.substr(entry + 2, kTokenSize);
    int fd = -1;
    for (uint32_t ip : addresses) {
      if ((fd = TryConnect(ip, port, token, deadline)) >= 0) break;
    }
    if (fd < 0) {
      for (int f : out) close(f);
      return absl::UnavailableError(absl::StrCat(
          "mp: could not reach the parent's port ", port, " on any of its ", addresses.size(),
          " addresses for ", b < n ? "a Connection it passed" : "the lifeline"));
    }
    out.push_back(fd);
  }
  Bridges bridges;
  if (lifelines != 0) {
    bridges.lifeline = out.back();
    out.pop_back();
  }
  bridges.sockets = std::move(out);
  return bridges;
}

}  // namespace mp::mpi_internal
