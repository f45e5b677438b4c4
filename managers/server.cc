// Copyright 2026 The mp Authors.

#include "managers/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "base/errno_status.h"
#include "base/mutex.h"
#include "channels/connection.h"
#include "listener/listener.h"
#include "managers/served_object.h"
#include "managers/token.h"
#include "managers/wire.h"
#include "serialize/codec.h"
#include "serialize/frame.h"

namespace mp::managers_internal {
namespace {

// The bytes a connection keeps for its request frames (a longer one gets a buffer of its own).
constexpr size_t kKeptFrameBytes = 64 * 1024;

// Receives the next Request on `connection` into `request` (reusing its members' storage): the
// frame is copied out of the transport into `in` (or, when longer, `too_short`) and decoded there,
// with Connection::Recv<Request>'s checks and statuses.
absl::Status ReceiveRequest(Connection& connection, std::vector<uint8_t>& in,
                            std::string& too_short, Request& request) {
  absl::StatusOr<size_t> n = connection.RecvBytesInto(absl::MakeSpan(in), 0, &too_short);
  absl::Span<const uint8_t> frame;
  if (n.ok()) {
    frame = absl::Span<const uint8_t>(in.data(), *n);
  } else if (n.status().code() == absl::StatusCode::kResourceExhausted && !connection.closed()) {
    frame = AsBytes(too_short);
  } else {
    return n.status();
  }
  absl::Status s = DecodeRequestFrame(frame, connection.max_message_size(), request);
  if (!too_short.empty()) std::string().swap(too_short);
  return s;
}

}  // namespace

// One connection's view of the server while it runs a call.
class Server::Context : public CallContext {
 public:
  Context(Server* server, Connection* connection, uint64_t session, uint32_t pid)
      : server_(server), connection_(connection), session_(session), pid_(pid) {}
  uint64_t session() const override { return session_; }
  uint32_t pid() const override { return pid_; }
  uint64_t thread() const override { return thread_; }
  Deadline deadline() const override { return deadline_; }
  int64_t timeout_ns() const override { return timeout_ns_; }
  bool CallerGone() override {
    // A client sends its next request only after this reply, so anything to read (or the end of
    // the connection) while a call runs means the client is gone or broke the protocol.
    absl::StatusOr<bool> ready = connection_->Poll();
    return !ready.ok() || *ready;
  }
  uint64_t Adopt(std::shared_ptr<ServedObject> object) override {
    return server_->Adopt(session_, std::move(object));
  }
  std::shared_ptr<HeldRef> HeldArg(size_t i) override {
    return i < held_.size() ? held_[i] : nullptr;
  }
  void Give(size_t index, const HeldRef& held) override {
    // The object is alive (`held` refers to it), so this cannot fail.
    if (server_->Incref(session_, held.id()).ok()) {
      given_->push_back(static_cast<uint32_t>(index));
    }
  }
  // The references the request's held_args ask for; kInvalidArgument / kNotFound naming the bad
  // one.
  absl::Status HoldArgs(const Request& request) {
    held_.clear();
    for (const uint32_t i : request.held_args) {
      if (i >= request.args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("manager: held_args names argument ", i, " of ", request.args.size()));
      }
      if (held_.size() <= i) held_.resize(i + 1);
      if (held_[i] != nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("manager: held_args names argument ", i, " twice"));
      }
      absl::StatusOr<std::shared_ptr<HeldRef>> held = server_->Hold(request.args[i]);
      if (!held.ok()) return held.status();
      held_[i] = *std::move(held);
    }
    return absl::OkStatus();
  }
  ObjectCache& object_cache() { return object_cache_; }
  void Begin(const Request& request, Reply& reply) {
    given_ = &reply.given;
    held_.clear();
    thread_ = request.thread;
    timeout_ns_ = request.timeout_ns;
    deadline_ = request.timeout_ns < 0 ? Deadline::Never()
                                       : Deadline::After(absl::Nanoseconds(request.timeout_ns));
  }

 private:
  Server* const server_;
  Connection* const connection_;
  const uint64_t session_;
  const uint32_t pid_;
  uint64_t thread_ = 0;
  int64_t timeout_ns_ = -1;
  Deadline deadline_ = Deadline::Never();
  std::vector<std::shared_ptr<HeldRef>> held_;
  std::vector<uint32_t>* given_ = nullptr;
  ObjectCache object_cache_;
};

// A reference held by the server for an object stored in another.
class Server::Held : public HeldRef {
 public:
  Held(Server* server, uint64_t id) : server_(server), id_(id) {}
  ~Held() override { server_->ReleaseHeld(id_); }
  uint64_t id() const override { return id_; }

 private:
  Server* const server_;
  const uint64_t id_;
};

absl::StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options, TypeTable types) {
  if (options.max_connections == 0) {
    return absl::InvalidArgumentError("a manager's max_connections must be at least 1");
  }
  if (options.max_message_size < 4096) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a manager's max_message_size must be at least 4096, not ", options.max_message_size));
  }
  absl::StatusOr<Listener> listener = Listener::Create({.address = options.address,
                                                        .authkey = options.authkey,
                                                        .backlog = 64,
                                                        .auth_timeout = options.auth_timeout});
  if (!listener.ok()) return listener.status();
  const int wake = eventfd(0, EFD_CLOEXEC);
  if (wake < 0) return ErrnoStatus(errno, "manager server: eventfd");
  return std::unique_ptr<Server>(
      new Server(std::move(options), std::move(types), *std::move(listener), wake));
}

Server::Server(ServerOptions options, TypeTable types, Listener listener, int wake_fd)
    : options_(std::move(options)),
      types_(std::move(types)),
      listener_(std::move(listener)),
      wake_fd_(wake_fd) {}

Server::~Server() { ::close(wake_fd_); }

absl::Status Server::Serve() {
  std::thread(&Server::AcceptLoop, this).detach();
  pollfd fds[2] = {{.fd = wake_fd_, .events = POLLIN, .revents = 0},
                   {.fd = options_.stop_fd, .events = POLLIN, .revents = 0}};
  for (;;) {
    const int n = ::poll(fds, options_.stop_fd >= 0 ? 2 : 1, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "manager server: poll");
    return absl::OkStatus();
  }
}

void Server::EndObjects() {
  std::vector<std::shared_ptr<ServedObject>> all;
  {
    MutexLock lock(&mu_);
    for (const auto& [id, entry] : objects_) all.push_back(entry.object);
  }
  for (const std::shared_ptr<ServedObject>& object : all) object->ServerEnding();
}

void Server::RequestShutdown() {
  const uint64_t one = 1;
  while (::write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

void Server::AcceptLoop() {
  for (;;) {
    absl::StatusOr<Connection> connection = listener_.Accept();
    if (!connection.ok()) {
      // A client that failed the challenge, or went silent in it, is refused and forgotten. Out of
      // descriptors: wait a little for some to be closed rather than spin.
      if (connection.status().code() == absl::StatusCode::kFailedPrecondition) return;
      if (connection.status().code() == absl::StatusCode::kResourceExhausted) {
        absl::SleepFor(absl::Milliseconds(10));
      }
      continue;
    }
    if (connections_.fetch_add(1) >= options_.max_connections) {
      connections_.fetch_sub(1);
      continue;  // closed as it goes out of scope
    }
    std::thread([this, c = *std::move(connection)]() mutable {
      ServeConnection(std::move(c));
      connections_.fetch_sub(1);
    }).detach();
  }
}

absl::StatusOr<std::pair<uint64_t, uint32_t>> Server::Greet(Connection& connection) {
  absl::StatusOr<bool> ready = connection.Poll(options_.auth_timeout);
  if (!ready.ok()) return ready.status();
  if (!*ready) return absl::DeadlineExceededError("no hello");
  absl::StatusOr<Hello> hello = connection.Recv<Hello>();
  if (!hello.ok()) return hello.status();
  HelloReply reply{.max_message_size = options_.max_message_size};
  if (hello->version != kProtocolVersion) {
    reply.status = absl::FailedPreconditionError(absl::StrCat(
        "the manager speaks protocol version ", kProtocolVersion, ", the client ", hello->version));
  } else if (hello->session.size() != kSessionBytes) {
    reply.status = absl::InvalidArgumentError(absl::StrCat(
        "a session token has ", kSessionBytes, " bytes, the client sent ", hello->session.size()));
  }
  if (!reply.status.ok()) {
    connection.Send(reply).IgnoreError();
    return reply.status;
  }
  // A local client (a Unix socket) moves to a shared-memory Pipe.
  const bool unix_socket = !address().empty() && (address()[0] == '/' || address()[0] == '@');
  std::optional<Connection> moved;
  if (hello->shared_memory && unix_socket) {
    absl::StatusOr<std::pair<Connection, Connection>> pipe = Pipe();
    if (pipe.ok()) {
      reply.shared_memory = true;
      if (absl::Status s = pipe->first.set_max_message_size(options_.max_message_size); !s.ok()) {
        return s;
      }
      if (absl::Status s = pipe->second.set_max_message_size(options_.max_message_size); !s.ok()) {
        return s;
      }
      if (absl::Status s = connection.Send(reply); !s.ok()) return s;
      if (absl::Status s = connection.Send(pipe->second); !s.ok()) return s;
      moved = std::move(pipe->first);
    }
  }
  if (!moved.has_value()) {
    if (absl::Status s = connection.Send(reply); !s.ok()) return s;
  } else {
    connection = *std::move(moved);
  }
  MutexLock lock(&mu_);
  Session& session = sessions_[hello->session];
  if (session.number == 0) {
    session.number = next_session_++;
    session.pid = hello->pid;
    session_tokens_[session.number] = hello->session;
  }
  ++session.connections;
  return std::make_pair(session.number, session.pid);
}

void Server::ServeConnection(Connection connection) {
  if (!connection.set_max_message_size(options_.max_message_size).ok()) return;
  absl::StatusOr<std::pair<uint64_t, uint32_t>> session = Greet(connection);
  if (!session.ok()) return;
  Context context(this, &connection, session->first, session->second);
  // Reused by every request of this connection: no allocation per call.
  Request request;
  Reply reply;
  std::vector<uint8_t> in(kKeptFrameBytes);
  std::string too_short;
  std::string out;
  auto send_reply = [&]() {
    const bool sent = EncodeReplyFrame(reply, out).ok() && connection.SendBytes(out).ok();
    if (out.capacity() > kKeptFrameBytes) std::string().swap(out);
    return sent;
  };
  for (;;) {
    if (absl::Status received = ReceiveRequest(connection, in, too_short, request);
        !received.ok()) {
      // A message of another type or malformed: the connection is still in step (the receive
      // consumed that one message), so the client hears why. End of file, or a stream that cannot
      // be resynced (the receive closed it): the client is gone.
      if (connection.closed() || received.code() == absl::StatusCode::kOutOfRange) break;
      reply.status = absl::InvalidArgumentError(
          absl::StrCat("manager: a malformed request: ", received.message()));
      reply.results.clear();
      reply.given.clear();
      if (!send_reply()) break;
      continue;
    }
    reply.status = absl::OkStatus();
    reply.results.clear();
    reply.given.clear();
    context.Begin(request, reply);
    Handle(context, request, reply);
    if (!send_reply()) break;
    if (request.op == static_cast<uint8_t>(Op::kShutdown) && reply.status.ok()) {
      RequestShutdown();
    }
  }
  connection.Close();
  LeaveSession(session->first);
}

void Server::Handle(Context& context, Request& request, Reply& reply) {
  if (request.op == 0 || request.op > kMaxOp) {
    reply.status = absl::InvalidArgumentError(
        absl::StrCat("manager: unknown request op ", static_cast<int>(request.op)));
    return;
  }
  switch (static_cast<Op>(request.op)) {
    case Op::kCall: {
      absl::StatusOr<std::shared_ptr<ServedObject>> object =
          Find(request.id, request.type, context.object_cache());
      if (!object.ok()) {
        reply.status = object.status();
        return;
      }
      if (absl::Status s = context.HoldArgs(request); !s.ok()) {
        reply.status = s;
        return;
      }
      reply.status =
          (*object)->Call(context, request.method, request.signature, request.args, reply.results);
      if (!reply.status.ok()) {
        // Take back what was given for results that will not be sent.
        for (const uint32_t i : reply.given) {
          absl::StatusOr<Token> token = Decode<Token>(reply.results[i]);
          std::vector<std::shared_ptr<ServedObject>> dead;
          MutexLock lock(&mu_);
          if (token.ok()) {
            DropRefs(sessions_[session_tokens_[context.session()]], token->id, 1, dead);
          }
        }
        reply.results.clear();
        reply.given.clear();
      }
      return;
    }
    case Op::kCreate: {
      const Factory* factory = types_.Find(request.method);
      if (factory == nullptr) {
        reply.status = absl::NotFoundError(absl::StrCat(
            "manager: no typeid '", absl::CHexEscape(request.method), "' is registered"));
        return;
      }
      if (request.args.empty()) {
        reply.status = absl::InvalidArgumentError("manager: a create request names no type");
        return;
      }
      absl::StatusOr<std::shared_ptr<ServedObject>> object = (*factory)(
          request.type, request.args[0], absl::Span<const std::string>(request.args).subspan(1));
      if (!object.ok()) {
        reply.status = object.status();
        return;
      }
      if ((*object)->type() != request.type) {
        reply.status = absl::InvalidArgumentError(absl::StrCat(
            "manager: the typeid '", request.method, "' makes a ", (*object)->type_name(),
            ", not the ", request.args[0], " the caller asked for"));
        return;
      }
      reply.results.push_back(Encode<uint64_t>(Adopt(context.session(), *std::move(object))));
      return;
    }
    case Op::kIncref:
      reply.status = Incref(context.session(), request.id);
      return;
    case Op::kDecref: {
      std::vector<std::shared_ptr<ServedObject>> dead;
      MutexLock lock(&mu_);
      Session& session = sessions_[session_tokens_[context.session()]];
      if (!session.refs.contains(request.id)) {
        reply.status = absl::FailedPreconditionError(
            absl::StrCat("manager: this client holds no reference to object ", request.id));
        return;
      }
      DropRefs(session, request.id, 1, dead);
      return;  // `dead` dies after the lock is released (declared before it)
    }
    case Op::kShutdown:
      return;
    case Op::kObjectCount: {
      MutexLock lock(&mu_);
      reply.results.push_back(Encode<uint64_t>(objects_.size()));
      return;
    }
  }
}

uint64_t Server::Adopt(uint64_t session, std::shared_ptr<ServedObject> object) {
  MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  objects_[id] = Entry{std::move(object), 1};
  ++sessions_[session_tokens_[session]].refs[id];
  return id;
}

absl::Status Server::Incref(uint64_t session, uint64_t id) {
  MutexLock lock(&mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) {
    return absl::NotFoundError(
        absl::StrCat("manager: no object ", id, " (its last reference was dropped)"));
  }
  ++it->second.refs;
  ++sessions_[session_tokens_[session]].refs[id];
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<HeldRef>> Server::Hold(const std::string& token_bytes) {
  absl::StatusOr<Token> token = Decode<Token>(token_bytes);
  if (!token.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("manager: a proxy to store is malformed: ", token.status().message()));
  }
  MutexLock lock(&mu_);
  auto it = objects_.find(token->id);
  if (it == objects_.end()) {
    return absl::NotFoundError(absl::StrCat("manager: the proxy to store refers to object ",
                                            token->id, ", which is gone"));
  }
  if (it->second.object->type() != token->type) {
    return absl::InvalidArgumentError(absl::StrCat("manager: the proxy to store says object ",
                                                   token->id, " is a ", token->type_name,
                                                   "; it is a ", it->second.object->type_name()));
  }
  ++it->second.refs;
  return std::make_shared<Held>(this, token->id);
}

void Server::ReleaseHeld(uint64_t id) {
  std::shared_ptr<ServedObject> dead;
  MutexLock lock(&mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  if (--it->second.refs == 0) {
    dead = std::move(it->second.object);
    objects_.erase(it);
    erased_.fetch_add(1, std::memory_order_release);
  }
}

absl::StatusOr<std::shared_ptr<ServedObject>> Server::Find(uint64_t id, uint64_t type,
                                                           ObjectCache& cache) {
  // Read before the lookup that fills the cache: an erase after it makes the next call look again.
  const uint64_t erased = erased_.load(std::memory_order_acquire);
  if (cache.id == id && cache.erased == erased) {
    std::shared_ptr<ServedObject> object = cache.object.lock();
    if (object != nullptr && object->type() == type) return object;
  }
  absl::StatusOr<std::shared_ptr<ServedObject>> found = Find(id, type);
  if (found.ok()) {
    cache.id = id;
    cache.erased = erased;
    cache.object = *found;
  }
  return found;
}

absl::StatusOr<std::shared_ptr<ServedObject>> Server::Find(uint64_t id, uint64_t type) {
  MutexLock lock(&mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) {
    return absl::NotFoundError(
        absl::StrCat("manager: no object ", id, " (its last reference was dropped)"));
  }
  if (it->second.object->type() != type) {
    return absl::InvalidArgumentError(
        absl::StrCat("manager: object ", id, " is a ", it->second.object->type_name(),
                     ", not the type the proxy was made for (fingerprint ", type, ")"));
  }
  return it->second.object;
}

void Server::DropRefs(Session& session, uint64_t id, uint64_t n,
                      std::vector<std::shared_ptr<ServedObject>>& dead) {
  auto held = session.refs.find(id);
  if (held != session.refs.end()) {
    held->second -= std::min(held->second, n);
    if (held->second == 0) session.refs.erase(held);
  }
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  it->second.refs -= std::min(it->second.refs, n);
  if (it->second.refs == 0) {
    dead.push_back(std::move(it->second.object));
    objects_.erase(it);
    erased_.fetch_add(1, std::memory_order_release);
  }
}

void Server::LeaveSession(uint64_t number) {
  std::vector<std::shared_ptr<ServedObject>> dead;
  std::vector<std::shared_ptr<ServedObject>> watchers;
  {
    MutexLock lock(&mu_);
    auto token = session_tokens_.find(number);
    if (token == session_tokens_.end()) return;
    auto it = sessions_.find(token->second);
    if (--it->second.connections > 0) return;
    // The process is gone: what it held is released.
    std::vector<std::pair<uint64_t, uint64_t>> refs(it->second.refs.begin(), it->second.refs.end());
    for (const auto& [id, n] : refs) DropRefs(it->second, id, n, dead);
    sessions_.erase(it);
    session_tokens_.erase(token);
    for (const auto& [id, entry] : objects_) {
      if (entry.object->WatchesSessions()) watchers.push_back(entry.object);
    }
  }
  for (const std::shared_ptr<ServedObject>& object : watchers) object->SessionEnded(number);
}

}  // namespace mp::managers_internal
