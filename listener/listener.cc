// Copyright 2026 The mp Authors.

#include "listener/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "listener/hmac.h"

namespace mp {
namespace {

constexpr absl::string_view kChallenge = "#CHALLENGE#";
constexpr absl::string_view kWelcome = "#WELCOME#";
constexpr absl::string_view kFailure = "#FAILURE#";
constexpr absl::string_view kDigestPrefix = "{sha256}";
constexpr size_t kNonceSize = 32;
constexpr size_t kMaxHandshakeMessage = 256;

absl::Status ErrnoStatus(absl::string_view what, int err) {
  std::string message = absl::StrCat(what, ": ", std::strerror(err), " (errno ", err, ")");
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EADDRINUSE:
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ECONNREFUSED:
    case ECONNRESET:
      return absl::UnavailableError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

// A parsed address.
struct Parsed {
  bool tcp = false;
  sockaddr_storage addr{};
  socklen_t len = 0;
};

absl::StatusOr<Parsed> ParseAddress(absl::string_view address, absl::string_view who) {
  Parsed p;
  if (!address.empty() && (address[0] == '/' || address[0] == '@' || address[0] == '\0')) {
    auto* un = reinterpret_cast<sockaddr_un*>(&p.addr);
    un->sun_family = AF_UNIX;
    if (address.size() > sizeof(un->sun_path) - 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": Unix socket address \"", address, "\" has ", address.size(),
                       " bytes; at most ", sizeof(un->sun_path) - 1, " fit in sun_path"));
    }
    if (address.size() == 1 && address[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(who, ": empty abstract socket name"));
    }
    std::memcpy(un->sun_path, address.data(), address.size());
    if (address[0] == '@') un->sun_path[0] = '\0';
    // Abstract names are exactly the given bytes (no trailing NUL); paths are NUL-terminated.
    p.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() +
                                   (address[0] == '/' ? 1 : 0));
    return p;
  }
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": address \"", address,
        "\" is neither \"host:port\" (TCP) nor an absolute path or \"@name\" (Unix socket)"));
  }
  std::string host(address.substr(0, colon));
  if (host == "localhost") host = "127.0.0.1";
  int port = -1;
  auto* in = reinterpret_cast<sockaddr_in*>(&p.addr);
  in->sin_family = AF_INET;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535 ||
      inet_pton(AF_INET, host.c_str(), &in->sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": address \"", address,
        "\" is not \"host:port\" with an IPv4 host (or localhost) and a port in 0..65535"));
  }
  in->sin_port = htons(static_cast<uint16_t>(port));
  p.tcp = true;
  p.len = sizeof(sockaddr_in);
  return p;
}

std::string FormatInet(const sockaddr_in& in) {
  char host[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &in.sin_addr, host, sizeof(host));
  return absl::StrCat(host, ":", ntohs(in.sin_port));
}

void SetNoDelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Receives one handshake message within `timeout`.
absl::StatusOr<std::string> RecvHandshake(Connection& conn, absl::Duration timeout,
                                          absl::string_view who) {
  absl::StatusOr<bool> ready = conn.Poll(timeout);
  if (!ready.ok()) return ready.status();
  if (!*ready) {
    return absl::DeadlineExceededError(absl::StrCat(who, ": no authentication message within ",
                                                    absl::FormatDuration(timeout)));
  }
  absl::StatusOr<std::string> msg = conn.RecvBytes(kMaxHandshakeMessage);
  if (!msg.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat(who, ": the peer broke off the authentication: ", msg.status().ToString()));
  }
  return msg;
}

std::string Response(absl::string_view authkey, absl::string_view challenge_body) {
  const Sha256Digest mac = HmacSha256(authkey, challenge_body);
  return absl::StrCat(kDigestPrefix,
                      absl::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

// Sends a challenge and checks the answer (CPython's deliver_challenge). `peer` names the other side.
absl::Status DeliverChallenge(Connection& conn, absl::string_view authkey, absl::Duration timeout,
                              absl::string_view who, absl::string_view failed_message) {
  std::string nonce(kNonceSize, '\0');
  for (size_t got = 0; got < nonce.size();) {
    const ssize_t n = getrandom(nonce.data() + got, nonce.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(absl::StrCat(who, ": getrandom"), errno);
    got += static_cast<size_t>(n);
  }
  const std::string body = absl::StrCat(kDigestPrefix, nonce);
  if (absl::Status s = conn.SendBytes(absl::StrCat(kChallenge, body)); !s.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(who, ": could not send the challenge: ", s.ToString()));
  }
  absl::StatusOr<std::string> answer = RecvHandshake(conn, timeout, who);
  if (!answer.ok()) return answer.status();
  const bool good = ConstantTimeEqual(*answer, Response(authkey, body));
  conn.SendBytes(good ? kWelcome : kFailure).IgnoreError();
  if (!good) {
    return absl::UnauthenticatedError(absl::StrCat(
        who, ": ", failed_message,
        absl::StartsWith(*answer, kDigestPrefix) ? " (digest mismatch)"
                                                 : " (the answer is not a {sha256} digest)"));
  }
  return absl::OkStatus();
}

// Answers a challenge (CPython's answer_challenge).
absl::Status AnswerChallenge(Connection& conn, absl::string_view authkey, absl::Duration timeout,
                             absl::string_view who, absl::string_view refused_message) {
  absl::StatusOr<std::string> challenge = RecvHandshake(conn, timeout, who);
  if (!challenge.ok()) return challenge.status();
  if (!absl::StartsWith(*challenge, kChallenge) ||
      !absl::StartsWith(absl::string_view(*challenge).substr(kChallenge.size()), kDigestPrefix)) {
    return absl::UnauthenticatedError(absl::StrCat(
        who, ": expected an authkey challenge, got a ", challenge->size(),
        "-byte message that is not one (does the peer use an authkey?)"));
  }
  const absl::string_view body = absl::string_view(*challenge).substr(kChallenge.size());
  if (absl::Status s = conn.SendBytes(Response(authkey, body)); !s.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(who, ": could not answer the challenge: ", s.ToString()));
  }
  absl::StatusOr<std::string> verdict = RecvHandshake(conn, timeout, who);
  if (!verdict.ok()) return verdict.status();
  if (*verdict == kWelcome) return absl::OkStatus();
  if (*verdict == kFailure) return absl::UnauthenticatedError(absl::StrCat(who, ": ", refused_message));
  return absl::UnauthenticatedError(
      absl::StrCat(who, ": expected #WELCOME# or #FAILURE#, got a ", verdict->size(), "-byte message"));
}

absl::Status CheckAuthkey(const std::optional<std::string>& authkey, absl::string_view who) {
  if (authkey.has_value() && authkey->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": the authkey is empty (use nullopt for none)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Listener> Listener::Create(ListenerOptions options) {
  if (options.backlog < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("Listener::Create: backlog must be >= 1, got ", options.backlog));
  }
  if (absl::Status s = CheckAuthkey(options.authkey, "Listener::Create"); !s.ok()) return s;
  Listener l;
  l.authkey_ = std::move(options.authkey);
  l.auth_timeout_ = options.auth_timeout;
  std::string address = std::move(options.address);
  if (address.empty()) {
    char tmpl[] = "/tmp/mp-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return ErrnoStatus("Listener::Create: mkdtemp(/tmp/mp-XXXXXX)", errno);
    l.temp_dir_ = tmpl;
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r)) r = static_cast<uint64_t>(getpid());
    address = absl::StrCat(l.temp_dir_, "/listener-", absl::Hex(r));
  }
  absl::StatusOr<Parsed> parsed = ParseAddress(address, "Listener::Create");
  if (!parsed.ok()) return parsed.status();  // ~Listener removes temp_dir_
  l.tcp_ = parsed->tcp;
  l.fd_ = socket(parsed->tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l.fd_ < 0) return ErrnoStatus("Listener::Create: socket", errno);
  if (parsed->tcp) {
    const int one = 1;
    setsockopt(l.fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  if (bind(l.fd_, reinterpret_cast<const sockaddr*>(&parsed->addr), parsed->len) != 0) {
    return ErrnoStatus(absl::StrCat("Listener::Create: bind(\"", address, "\")"), errno);
  }
  if (!parsed->tcp && address[0] == '/') l.socket_file_ = address;
  if (listen(l.fd_, options.backlog) != 0) {
    return ErrnoStatus(absl::StrCat("Listener::Create: listen(\"", address, "\")"), errno);
  }
  if (parsed->tcp) {
    sockaddr_in bound{};
    socklen_t len = sizeof(bound);
    if (getsockname(l.fd_, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
      return ErrnoStatus("Listener::Create: getsockname", errno);
    }
    l.address_ = FormatInet(bound);
  } else {
    l.address_ = address;
    if (l.address_[0] == '\0') l.address_[0] = '@';
  }
  return l;
}

Listener::Listener(Listener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      tcp_(other.tcp_),
      address_(std::move(other.address_)),
      last_accepted_(std::move(other.last_accepted_)),
      authkey_(std::move(other.authkey_)),
      auth_timeout_(other.auth_timeout_),
      socket_file_(std::exchange(other.socket_file_, "")),
      temp_dir_(std::exchange(other.temp_dir_, "")) {}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    tcp_ = other.tcp_;
    address_ = std::move(other.address_);
    last_accepted_ = std::move(other.last_accepted_);
    authkey_ = std::move(other.authkey_);
    auth_timeout_ = other.auth_timeout_;
    socket_file_ = std::exchange(other.socket_file_, "");
    temp_dir_ = std::exchange(other.temp_dir_, "");
  }
  return *this;
}

Listener::~Listener() { Close(); }

void Listener::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (!socket_file_.empty()) unlink(socket_file_.c_str());
  socket_file_.clear();
  if (!temp_dir_.empty()) rmdir(temp_dir_.c_str());
  temp_dir_.clear();
}

absl::StatusOr<Connection> Listener::Accept(absl::Duration timeout) {
  if (fd_ < 0) return absl::FailedPreconditionError("Listener::Accept: the listener is closed");
  if (timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("Listener::Accept: negative timeout");
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    int ms = -1;
    if (timeout != absl::InfiniteDuration()) {
      const absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
      ms = static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
    }
    const int r = poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus("Listener::Accept: poll", errno);
    if (r == 0) {
      return absl::DeadlineExceededError(absl::StrCat("Listener::Accept: no client on ", address_,
                                                      " within ", absl::FormatDuration(timeout)));
    }
    break;
  }
  sockaddr_storage peer{};
  socklen_t len = sizeof(peer);
  int fd;
  do {
    fd = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(absl::StrCat("Listener::Accept: accept(", address_, ")"), errno);
  if (tcp_) SetNoDelay(fd);
  last_accepted_ = tcp_ ? FormatInet(*reinterpret_cast<sockaddr_in*>(&peer)) : "";
  absl::StatusOr<Connection> conn = Connection::FromFd(fd);
  if (!conn.ok()) {
    close(fd);
    return conn.status();
  }
  if (authkey_.has_value()) {
    const std::string peer_name = tcp_ ? last_accepted_ : "(unix socket peer)";
    if (absl::Status s = DeliverChallenge(
            *conn, *authkey_, auth_timeout_, "Listener::Accept",
            absl::StrCat("the client at ", peer_name, " failed the authkey challenge"));
        !s.ok()) {
      return s;
    }
    if (absl::Status s = AnswerChallenge(
            *conn, *authkey_, auth_timeout_, "Listener::Accept",
            absl::StrCat("the client at ", peer_name, " refused our authkey"));
        !s.ok()) {
      return s;
    }
  }
  return conn;
}

absl::StatusOr<Connection> Client(absl::string_view address, std::optional<std::string> authkey,
                                  absl::Duration auth_timeout) {
  if (absl::Status s = CheckAuthkey(authkey, "Client"); !s.ok()) return s;
  absl::StatusOr<Parsed> parsed = ParseAddress(address, "Client");
  if (!parsed.ok()) return parsed.status();
  const int fd = socket(parsed->tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("Client: socket", errno);
  int r;
  do {
    r = connect(fd, reinterpret_cast<const sockaddr*>(&parsed->addr), parsed->len);
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(absl::StrCat("Client: connect(\"", address, "\")"), err);
  }
  if (parsed->tcp) SetNoDelay(fd);
  absl::StatusOr<Connection> conn = Connection::FromFd(fd);
  if (!conn.ok()) {
    close(fd);
    return conn.status();
  }
  if (authkey.has_value()) {
    if (absl::Status s = AnswerChallenge(*conn, *authkey, auth_timeout, "Client",
                                         absl::StrCat(address, " refused our authkey"));
        !s.ok()) {
      return s;
    }
    if (absl::Status s = DeliverChallenge(*conn, *authkey, auth_timeout, "Client",
                                          absl::StrCat(address, " failed our authkey challenge"));
        !s.ok()) {
      return s;
    }
  }
  return conn;
}

}  // namespace mp
