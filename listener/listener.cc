// Copyright 2026 The mp Authors.

#include "listener/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/constant_time.h"
#include "base/deadline.h"
#include "base/errno_status.h"
#include "base/random.h"
#include "listener/hmac.h"

namespace mp {
namespace {

constexpr absl::string_view kChallenge = "#CHALLENGE#";
constexpr absl::string_view kWelcome = "#WELCOME#";
constexpr absl::string_view kFailure = "#FAILURE#";
constexpr absl::string_view kDigestPrefix = "{sha256}";
constexpr size_t kNonceSize = 32;
constexpr size_t kMaxHandshakeMessage = 256;

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
      return absl::InvalidArgumentError(absl::StrCat(who, ": Unix socket address \"", address,
                                                     "\" has ", address.size(), " bytes; at most ",
                                                     sizeof(un->sun_path) - 1, " fit in sun_path"));
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

// A handshake message as a Connection message: the 8-byte prefix of channels/connection.h (body
// length little-endian, no descriptors, reserved 0), then the body.
std::string Frame(absl::string_view body) {
  std::string out(kConnectionPrefixSize, '\0');
  EncodeConnectionPrefix({.length = static_cast<uint32_t>(body.size())},
                         reinterpret_cast<uint8_t*>(out.data()));
  out.append(body.data(), body.size());
  return out;
}

// "{sha256}" + HMAC-SHA256(authkey, challenge_body): the answer to a challenge.
absl::StatusOr<std::string> Response(absl::string_view authkey, absl::string_view challenge_body) {
  absl::StatusOr<Sha256Digest> mac = HmacSha256(authkey, challenge_body);
  if (!mac.ok()) return mac.status();
  return absl::StrCat(kDigestPrefix,
                      absl::string_view(reinterpret_cast<const char*>(mac->data()), mac->size()));
}

absl::Status CheckAuthkey(const std::optional<std::string>& authkey, absl::string_view who) {
  if (authkey.has_value() && authkey->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": the authkey is empty; pass std::nullopt for no authkey"));
  }
  return absl::OkStatus();
}

// SO_SNDTIMEO for the time left until `deadline` (at most kMaxPollMillis; none for Never()). A Unix
// socket's blocking connect(2) waits that long for room in the listener's backlog.
absl::Status SetSendTimeout(int fd, Deadline deadline, absl::string_view what) {
  timeval tv{};  // zero: no timeout
  if (!deadline.IsNever()) {
    absl::Duration left = std::min(deadline.Remaining(), absl::Milliseconds(kMaxPollMillis));
    tv = absl::ToTimeval(std::max(left, absl::Microseconds(1)));  // zero would mean "forever"
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
    return ErrnoStatus(errno, absl::StrCat(what, ": setsockopt(SO_SNDTIMEO)"));
  }
  return absl::OkStatus();
}

// connect(2) that gives up at `deadline`. TCP connects without blocking and polls for the result; a
// Unix socket connects at once or waits for room in the backlog, which SO_SNDTIMEO bounds (and
// which is reset afterwards, so the Connection's sends never time out).
absl::Status ConnectBefore(int fd, const Parsed& p, Deadline deadline, absl::Duration timeout,
                           absl::string_view address) {
  const std::string what = absl::StrCat("Client: connect(\"", address, "\")");
  const auto timed_out = [&](absl::string_view why) {
    return absl::DeadlineExceededError(
        absl::StrCat(what, ": not connected within ", absl::FormatDuration(timeout), why));
  };
  const sockaddr* addr = reinterpret_cast<const sockaddr*>(&p.addr);
  if (p.tcp) {
    const int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
      return ErrnoStatus(errno, absl::StrCat(what, ": fcntl(O_NONBLOCK)"));
    }
    if (connect(fd, addr, p.len) != 0) {
      // EINTR: the connection goes on in the background, like EINPROGRESS.
      if (errno != EINPROGRESS && errno != EINTR) return ErrnoStatus(errno, what);
      absl::StatusOr<short> ready = PollUntil(fd, POLLOUT, deadline);
      if (!ready.ok()) return ready.status();
      if (*ready == 0) return timed_out("");
      int err = 0;
      socklen_t len = sizeof(err);
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) return ErrnoStatus(err, what);
    }
    if (fcntl(fd, F_SETFL, flags) != 0) {
      return ErrnoStatus(errno, absl::StrCat(what, ": fcntl(F_SETFL)"));
    }
    return absl::OkStatus();
  }
  for (;;) {
    if (absl::Status s = SetSendTimeout(fd, deadline, what); !s.ok()) return s;
    if (connect(fd, addr, p.len) == 0) break;
    if (errno == EINTR) continue;
    // EAGAIN: the backlog stayed full for the whole slice.
    if (errno != EAGAIN) return ErrnoStatus(errno, what);
    if (deadline.Expired()) return timed_out(" (the listener's backlog is full)");
  }
  return SetSendTimeout(fd, Deadline::Never(), what);
}

}  // namespace

namespace listener_internal {

// One side of the authkey handshake on a connected socket, driven without ever blocking: Advance()
// moves every byte the socket takes or holds right now and says whether the handshake finished; in
// between, the caller polls fd() for events() until deadline(), the one deadline of the whole
// handshake. Messages are read exactly (the prefix, then the body it announces), never past the
// handshake's last message, so whatever the peer sends after it stays in the socket for the
// Connection. Owns the socket until Release().
class Handshake {
 public:
  enum class Role { kServer, kClient };
  // How messages name the two sides.
  struct Names {
    std::string who;      // the API: "Listener::Accept" or "Client"
    std::string peer;     // the other side: "the client at 127.0.0.1:5000", "/tmp/sock"
    std::string failed;   // the peer's answer to our challenge is wrong
    std::string refused;  // the peer says our answer is wrong
  };

  // Takes ownership of `fd` (closed on failure too) and prepares the first message.
  static absl::StatusOr<std::unique_ptr<Handshake>> Start(int fd, Role role, std::string authkey,
                                                          absl::Duration timeout, Deadline deadline,
                                                          Names names, std::string peer_address) {
    std::unique_ptr<Handshake> h(new Handshake(fd, role, std::move(authkey), timeout, deadline,
                                               std::move(names), std::move(peer_address)));
    if (absl::Status s = h->Enter(); !s.ok()) return s;
    return h;
  }

  Handshake(const Handshake&) = delete;
  Handshake& operator=(const Handshake&) = delete;
  ~Handshake() {
    if (fd_ >= 0) close(fd_);
  }

  int fd() const { return fd_; }
  short events() const { return Sending() ? POLLOUT : POLLIN; }
  Deadline deadline() const { return deadline_; }
  // "ip:port" of a TCP peer, "" otherwise (Listener::last_accepted()).
  const std::string& peer_address() const { return peer_address_; }
  // Gives up the socket (after a finished handshake).
  int Release() { return std::exchange(fd_, -1); }

  // True once the handshake finished, false while it waits for the socket (before the deadline).
  // Failures: kUnauthenticated (wrong key, a peer breaking the protocol or hanging up),
  // kDeadlineExceeded (the deadline passed), the errno status of a failed recv/send.
  absl::StatusOr<bool> Advance() {
    while (index_ < kSteps) {
      if (Sending()) {
        if (out_pos_ == out_.size()) {
          if (!failure_.ok()) return failure_;  // the #FAILURE# verdict is out
          ++index_;
          if (absl::Status s = Enter(); !s.ok()) return s;
          continue;
        }
        const ssize_t n =
            send(fd_, out_.data() + out_pos_, out_.size() - out_pos_, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) {
          out_pos_ += static_cast<size_t>(n);
          continue;
        }
      } else {
        const ssize_t n = recv(fd_, in_.data() + in_got_, in_want_ - in_got_, MSG_DONTWAIT);
        if (n > 0) {
          in_got_ += static_cast<size_t>(n);
          if (in_got_ < in_want_) continue;
          if (in_want_ == kConnectionPrefixSize) {
            if (absl::Status s = ParsePrefix(); !s.ok()) return s;
            if (in_got_ < in_want_) continue;  // a body follows
          }
          if (absl::Status s = OnMessage(absl::string_view(in_.data() + kConnectionPrefixSize,
                                                           in_got_ - kConnectionPrefixSize));
              !s.ok()) {
            return s;
          }
          ++index_;
          if (absl::Status s = Enter(); !s.ok()) return s;
          continue;
        }
        // A peer that hangs up or resets mid-handshake did not fail the challenge: CPython raises
        // EOFError / ConnectionResetError there, not AuthenticationError, and a caller (a manager
        // client racing its server's death) must be able to tell "gone" from "refused".
        if (n == 0) {
          return absl::OutOfRangeError(
              absl::StrCat(names_.who, ": ", names_.peer,
                           " closed the connection during the authentication (", Progress(), ")"));
        }
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!deadline_.Expired()) return false;
        return absl::DeadlineExceededError(absl::StrCat(
            names_.who, ": ", names_.peer, " did not finish the authentication within ",
            absl::FormatDuration(timeout_), " (", Progress(), ")"));
      }
      const int err = errno;
      if (err == ECONNRESET || err == EPIPE || err == ECONNABORTED) {
        return absl::AbortedError(absl::StrCat(
            names_.who, ": ", names_.peer, " broke off the authentication (", Progress(),
            "): ", ErrnoStatus(err, Sending() ? "send" : "recv").message()));
      }
      return ErrnoStatus(err, absl::StrCat(names_.who, ": ", Sending() ? "send" : "recv",
                                           " during the authentication with ", names_.peer));
    }
    return true;
  }

 private:
  // The server delivers its challenge first, then answers the client's; the client the reverse.
  enum class Step {
    kSendChallenge,
    kRecvAnswer,
    kSendVerdict,
    kRecvChallenge,
    kSendResponse,
    kRecvVerdict,
  };
  static constexpr size_t kSteps = 6;
  static constexpr std::array<Step, kSteps> kServerSteps = {
      Step::kSendChallenge, Step::kRecvAnswer,   Step::kSendVerdict,
      Step::kRecvChallenge, Step::kSendResponse, Step::kRecvVerdict};
  static constexpr std::array<Step, kSteps> kClientSteps = {
      Step::kRecvChallenge, Step::kSendResponse, Step::kRecvVerdict,
      Step::kSendChallenge, Step::kRecvAnswer,   Step::kSendVerdict};

  Handshake(int fd, Role role, std::string authkey, absl::Duration timeout, Deadline deadline,
            Names names, std::string peer_address)
      : fd_(fd),
        steps_(role == Role::kServer ? kServerSteps : kClientSteps),
        authkey_(std::move(authkey)),
        timeout_(timeout),
        deadline_(deadline),
        names_(std::move(names)),
        peer_address_(std::move(peer_address)),
        in_(kConnectionPrefixSize + kMaxHandshakeMessage, '\0') {}

  Step step() const { return steps_[index_]; }
  bool Sending() const {
    return index_ < kSteps && (step() == Step::kSendChallenge || step() == Step::kSendResponse ||
                               step() == Step::kSendVerdict);
  }

  // Sets up the step index_ points at: a receive starts with an empty buffer, our challenge gets a
  // fresh nonce (the answer and the verdict were prepared by OnMessage).
  absl::Status Enter() {
    in_got_ = 0;
    in_want_ = kConnectionPrefixSize;
    out_pos_ = 0;
    if (index_ < kSteps && step() == Step::kSendChallenge) {
      std::array<uint8_t, kNonceSize> nonce;
      if (absl::Status s = RandomBytes(absl::MakeSpan(nonce)); !s.ok()) {
        return absl::Status(s.code(),
                            absl::StrCat(names_.who, ": the challenge's nonce: ", s.message()));
      }
      challenge_body_ = absl::StrCat(
          kDigestPrefix,
          absl::string_view(reinterpret_cast<const char*>(nonce.data()), nonce.size()));
      out_ = Frame(absl::StrCat(kChallenge, challenge_body_));
    }
    return absl::OkStatus();
  }

  // Checks the prefix that has arrived and sets how much of the message remains.
  absl::Status ParsePrefix() {
    const ConnectionPrefix prefix =
        DecodeConnectionPrefix(reinterpret_cast<const uint8_t*>(in_.data()));
    const uint32_t length = prefix.length;
    const uint32_t fd_count = prefix.fd_count;
    const uint32_t reserved = prefix.reserved;
    if (fd_count != 0 || reserved != 0) {
      return absl::UnauthenticatedError(
          absl::StrCat(names_.who, ": ", names_.peer, " sent a malformed message prefix (",
                       Progress(), "): descriptor count ", fd_count, " and reserved field ",
                       reserved, " must both be 0 in the authentication"));
    }
    if (length > kMaxHandshakeMessage) {
      return absl::UnauthenticatedError(absl::StrCat(
          names_.who, ": ", names_.peer, " announced a ", length, "-byte message (", Progress(),
          "); authentication messages have at most ", kMaxHandshakeMessage, " bytes"));
    }
    in_want_ = kConnectionPrefixSize + length;
    return absl::OkStatus();
  }

  // Acts on a whole received message; prepares out_ when a reply is due.
  absl::Status OnMessage(absl::string_view message) {
    switch (step()) {
      case Step::kRecvAnswer: {
        absl::StatusOr<std::string> expected = Response(authkey_, challenge_body_);
        if (!expected.ok()) return expected.status();
        const bool good = ConstantTimeEqual(message, *expected);
        out_ = Frame(good ? kWelcome : kFailure);
        if (!good) {
          // CPython sends #FAILURE# and then raises; Advance returns this once the verdict is out.
          failure_ = absl::UnauthenticatedError(absl::StrCat(
              names_.who, ": ", names_.failed,
              absl::StartsWith(message, kDigestPrefix) ? " (digest mismatch)"
                                                       : " (the answer is not a {sha256} digest)"));
        }
        return absl::OkStatus();
      }
      case Step::kRecvChallenge: {
        if (!absl::StartsWith(message, kChallenge) ||
            !absl::StartsWith(message.substr(kChallenge.size()), kDigestPrefix)) {
          return absl::UnauthenticatedError(absl::StrCat(
              names_.who, ": expected an authkey challenge from ", names_.peer, ", got a ",
              message.size(), "-byte message that is not one (does the peer use an authkey?)"));
        }
        absl::StatusOr<std::string> response =
            Response(authkey_, message.substr(kChallenge.size()));
        if (!response.ok()) return response.status();
        out_ = Frame(*response);
        return absl::OkStatus();
      }
      case Step::kRecvVerdict:
        if (message == kWelcome) return absl::OkStatus();
        if (message == kFailure) {
          return absl::UnauthenticatedError(absl::StrCat(names_.who, ": ", names_.refused));
        }
        return absl::UnauthenticatedError(
            absl::StrCat(names_.who, ": expected #WELCOME# or #FAILURE# from ", names_.peer,
                         ", got a ", message.size(), "-byte message"));
      default:
        return absl::InternalError("Handshake::OnMessage called in a sending step");
    }
  }

  // What the handshake was doing, for error messages.
  std::string Progress() const {
    if (index_ >= kSteps) return "finished";
    switch (step()) {
      case Step::kSendChallenge:
        return absl::StrCat("sending our challenge, ", out_pos_, " of ", out_.size(),
                            " bytes sent");
      case Step::kSendResponse:
        return absl::StrCat("sending our answer, ", out_pos_, " of ", out_.size(), " bytes sent");
      case Step::kSendVerdict:
        return absl::StrCat("sending the verdict, ", out_pos_, " of ", out_.size(), " bytes sent");
      case Step::kRecvAnswer:
        return absl::StrCat("waiting for the answer to our challenge, ", in_got_,
                            " bytes received");
      case Step::kRecvChallenge:
        return absl::StrCat("waiting for the challenge, ", in_got_, " bytes received");
      case Step::kRecvVerdict:
        return absl::StrCat("waiting for the verdict on our answer, ", in_got_, " bytes received");
    }
    return "";
  }

  int fd_;
  const std::array<Step, kSteps>& steps_;
  size_t index_ = 0;  // into steps_; kSteps once finished
  const std::string authkey_;
  const absl::Duration timeout_;  // for messages; deadline_ is what counts
  const Deadline deadline_;
  const Names names_;
  const std::string peer_address_;
  std::string challenge_body_;  // "{sha256}" + our nonce, to check the answer against
  std::string out_;             // the message being sent (prefix and body)
  size_t out_pos_ = 0;
  std::string in_;  // the message being received (prefix and body)
  size_t in_got_ = 0;
  size_t in_want_ = kConnectionPrefixSize;  // the prefix, then the prefix and its body
  absl::Status failure_;                    // to return once the #FAILURE# verdict has been sent
};

}  // namespace listener_internal

using listener_internal::Handshake;

Listener::Listener() = default;

absl::StatusOr<Listener> Listener::Create(ListenerOptions options) {
  if (options.backlog < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("Listener::Create: backlog must be >= 1, got ", options.backlog));
  }
  if (options.auth_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("Listener::Create: negative auth_timeout ",
                                                   absl::FormatDuration(options.auth_timeout)));
  }
  if (absl::Status s = CheckAuthkey(options.authkey, "Listener::Create"); !s.ok()) return s;
  Listener l;
  l.authkey_ = std::move(options.authkey);
  l.auth_timeout_ = options.auth_timeout;
  std::string address = std::move(options.address);
  if (address.empty()) {
    char tmpl[] = "/tmp/mp-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      return ErrnoStatus(errno, "Listener::Create: mkdtemp(/tmp/mp-XXXXXX)");
    }
    l.temp_dir_ = tmpl;
    absl::StatusOr<uint64_t> r = RandomU64();
    if (!r.ok()) {  // ~Listener removes temp_dir_
      return absl::Status(r.status().code(), absl::StrCat("Listener::Create: the socket's name: ",
                                                          r.status().message()));
    }
    address = absl::StrCat(l.temp_dir_, "/listener-", absl::Hex(*r));
  }
  absl::StatusOr<Parsed> parsed = ParseAddress(address, "Listener::Create");
  if (!parsed.ok()) return parsed.status();  // ~Listener removes temp_dir_
  l.tcp_ = parsed->tcp;
  // Non-blocking: Accept polls before accept4, and a client that vanished in between must not
  // block it.
  l.fd_ = socket(parsed->tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (l.fd_ < 0) return ErrnoStatus(errno, "Listener::Create: socket");
  if (parsed->tcp) {
    const int one = 1;
    setsockopt(l.fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  if (bind(l.fd_, reinterpret_cast<const sockaddr*>(&parsed->addr), parsed->len) != 0) {
    return ErrnoStatus(errno, absl::StrCat("Listener::Create: bind(\"", address, "\")"));
  }
  if (!parsed->tcp && address[0] == '/') l.socket_file_ = address;
  if (listen(l.fd_, options.backlog) != 0) {
    return ErrnoStatus(errno, absl::StrCat("Listener::Create: listen(\"", address, "\")"));
  }
  if (parsed->tcp) {
    sockaddr_in bound{};
    socklen_t len = sizeof(bound);
    if (getsockname(l.fd_, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
      return ErrnoStatus(errno, "Listener::Create: getsockname");
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
      temp_dir_(std::exchange(other.temp_dir_, "")),
      pending_(std::exchange(other.pending_, {})) {}

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
    pending_ = std::exchange(other.pending_, {});
  }
  return *this;
}

Listener::~Listener() { Close(); }

void Listener::Close() {
  pending_.clear();  // closes their sockets
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (!socket_file_.empty()) unlink(socket_file_.c_str());
  socket_file_.clear();
  if (!temp_dir_.empty()) rmdir(temp_dir_.c_str());
  temp_dir_.clear();
}

std::optional<absl::StatusOr<Connection>> Listener::AcceptWaiting() {
  while (pending_.size() < kMaxPendingHandshakes) {
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    const int fd = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;  // the next one, if any
      if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
      return absl::StatusOr<Connection>(
          ErrnoStatus(errno, absl::StrCat("Listener::Accept: accept(", address_, ")")));
    }
    if (tcp_) SetNoDelay(fd);
    std::string peer_address = tcp_ ? FormatInet(*reinterpret_cast<sockaddr_in*>(&peer)) : "";
    if (!authkey_.has_value()) {
      last_accepted_ = std::move(peer_address);
      absl::StatusOr<Connection> conn = Connection::FromFd(fd);
      if (!conn.ok()) close(fd);
      return conn;
    }
    const std::string peer_name =
        tcp_ ? absl::StrCat("the client at ", peer_address) : "the client (Unix socket peer)";
    absl::StatusOr<std::unique_ptr<Handshake>> h = Handshake::Start(
        fd, Handshake::Role::kServer, *authkey_, auth_timeout_, Deadline::After(auth_timeout_),
        {.who = "Listener::Accept",
         .peer = peer_name,
         .failed = absl::StrCat(peer_name, " failed the authkey challenge"),
         .refused = absl::StrCat(peer_name, " refused our authkey")},
        peer_address);
    if (!h.ok()) {
      last_accepted_ = std::move(peer_address);
      return absl::StatusOr<Connection>(h.status());
    }
    pending_.push_back(*std::move(h));
  }
  return std::nullopt;
}

absl::StatusOr<Connection> Listener::FinishPending(size_t i, absl::Status failure) {
  std::unique_ptr<Handshake> h = std::move(pending_[i]);
  pending_.erase(pending_.begin() + static_cast<ptrdiff_t>(i));
  last_accepted_ = h->peer_address();
  if (!failure.ok()) return failure;  // ~Handshake closes the connection
  const int fd = h->Release();
  absl::StatusOr<Connection> conn = Connection::FromFd(fd);
  if (!conn.ok()) close(fd);
  return conn;
}

absl::StatusOr<Connection> Listener::Accept(absl::Duration timeout) {
  if (fd_ < 0) return absl::FailedPreconditionError("Listener::Accept: the listener is closed");
  if (timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("Listener::Accept: negative timeout");
  }
  const Deadline deadline = Deadline::After(timeout);
  // fds[0] is the listening socket, fds[1 + i] pending_[i] (for the first `polled` handshakes).
  std::vector<pollfd> fds;
  bool first = true;  // nothing polled yet: look at everything
  size_t polled = 0;
  for (;;) {
    if (first || fds[0].revents != 0) {
      if (std::optional<absl::StatusOr<Connection>> r = AcceptWaiting(); r.has_value()) {
        return *std::move(r);
      }
    }
    // Moves every handshake that poll reported, that was accepted just now, or whose deadline
    // passed; the first one to finish, either way, is the result.
    for (size_t i = 0; i < pending_.size(); ++i) {
      if (!first && i < polled && fds[1 + i].revents == 0 && !pending_[i]->deadline().Expired()) {
        continue;
      }
      absl::StatusOr<bool> done = pending_[i]->Advance();
      if (!done.ok()) return FinishPending(i, done.status());
      if (*done) return FinishPending(i, absl::OkStatus());
    }
    if (deadline.Expired()) {
      return absl::DeadlineExceededError(absl::StrCat("Listener::Accept: no client on ", address_,
                                                      " within ", absl::FormatDuration(timeout)));
    }
    fds.clear();
    // With kMaxPendingHandshakes pending, new clients wait in the backlog (poll skips fd -1).
    fds.push_back({pending_.size() < kMaxPendingHandshakes ? fd_ : -1, POLLIN, 0});
    Deadline wake = deadline;
    for (const std::unique_ptr<Handshake>& h : pending_) {
      fds.push_back({h->fd(), h->events(), 0});
      wake = Deadline::Earlier(wake, h->deadline());
    }
    polled = pending_.size();
    first = false;
    absl::StatusOr<int> ready = PollUntil(absl::MakeSpan(fds), wake);
    if (!ready.ok()) {
      return absl::Status(ready.status().code(),
                          absl::StrCat("Listener::Accept: ", ready.status().message()));
    }
  }
}

absl::StatusOr<Connection> Client(absl::string_view address, std::optional<std::string> authkey,
                                  absl::Duration timeout) {
  if (absl::Status s = CheckAuthkey(authkey, "Client"); !s.ok()) return s;
  if (timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Client: negative timeout ", absl::FormatDuration(timeout)));
  }
  const Deadline deadline = Deadline::After(timeout);
  absl::StatusOr<Parsed> parsed = ParseAddress(address, "Client");
  if (!parsed.ok()) return parsed.status();
  int fd = socket(parsed->tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "Client: socket");
  if (absl::Status s = ConnectBefore(fd, *parsed, deadline, timeout, address); !s.ok()) {
    close(fd);
    return s;
  }
  if (parsed->tcp) SetNoDelay(fd);
  if (authkey.has_value()) {
    const std::string peer(address);
    absl::StatusOr<std::unique_ptr<Handshake>> h =
        Handshake::Start(fd, Handshake::Role::kClient, *std::move(authkey), timeout, deadline,
                         {.who = "Client",
                          .peer = peer,
                          .failed = absl::StrCat(peer, " failed our authkey challenge"),
                          .refused = absl::StrCat(peer, " refused our authkey")},
                         "");
    if (!h.ok()) return h.status();
    for (;;) {
      absl::StatusOr<bool> done = (*h)->Advance();
      if (!done.ok()) return done.status();
      if (*done) break;
      absl::StatusOr<short> ready = PollUntil((*h)->fd(), (*h)->events(), (*h)->deadline());
      if (!ready.ok()) {
        return absl::Status(ready.status().code(),
                            absl::StrCat("Client: ", ready.status().message()));
      }
    }
    fd = (*h)->Release();
  }
  absl::StatusOr<Connection> conn = Connection::FromFd(fd);
  if (!conn.ok()) close(fd);
  return conn;
}

}  // namespace mp
