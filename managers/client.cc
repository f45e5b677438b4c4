// Copyright 2026 The mp Authors.

#include "managers/client.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/mutex.h"
#include "base/pid.h"
#include "base/random.h"
#include "channels/connection.h"
#include "listener/listener.h"
#include "managers/wire.h"

namespace mp::managers_internal {
namespace {

// This process's session token and clients. A fork child finds its parent's registry (pid
// differs) and makes its own, leaving the parent's untouched: its mutex may have been held by a
// thread that does not exist in the child.
struct Registry {
  pid_t pid = 0;
  std::string session;
  Mutex mu;
  absl::flat_hash_map<std::string, std::weak_ptr<ServerClient>> clients ABSL_GUARDED_BY(mu);
};

Registry* ThisProcess() {
  static std::atomic<Registry*> current{nullptr};
  Registry* r = current.load(std::memory_order_acquire);
  const pid_t pid = CurrentPid();
  if (r != nullptr && r->pid == pid) return r;
  auto* fresh = new Registry;
  fresh->pid = pid;
  fresh->session.resize(kSessionBytes);
  if (!RandomBytes(absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(fresh->session.data()),
                                       fresh->session.size()))
           .ok()) {
    // getrandom cannot fail on the kernels mp runs on; a session still needs to be unique.
    const uint64_t words[2] = {static_cast<uint64_t>(pid),
                               static_cast<uint64_t>(absl::GetCurrentTimeNanos())};
    fresh->session.assign(reinterpret_cast<const char*>(words), sizeof(words));
  }
  if (current.compare_exchange_strong(r, fresh, std::memory_order_acq_rel)) return fresh;
  delete fresh;  // another thread of this process made it first
  return r;      // the parent's registry stays as it was (leaked in the child on purpose)
}

}  // namespace

uint64_t ServerClient::ThreadId() {
  thread_local const uint64_t tid = static_cast<uint64_t>(::syscall(SYS_gettid));
  return tid;
}

std::shared_ptr<ServerClient> ServerClient::Get(const std::string& address,
                                                const std::optional<std::string>& authkey) {
  Registry* r = ThisProcess();
  std::string key = absl::StrCat(address.size(), ":", address, authkey.has_value() ? "k" : "n",
                                 authkey.value_or(""));
  MutexLock lock(&r->mu);
  std::weak_ptr<ServerClient>& slot = r->clients[key];
  if (std::shared_ptr<ServerClient> client = slot.lock()) return client;
  std::shared_ptr<ServerClient> client(new ServerClient(address, authkey, r->session));
  slot = client;
  return client;
}

ServerClient::ServerClient(std::string address, std::optional<std::string> authkey,
                           std::string session)
    : address_(std::move(address)),
      authkey_(std::move(authkey)),
      session_(std::move(session)),
      pid_(CurrentPid()) {}

ServerClient::~ServerClient() = default;

absl::Status ServerClient::Unavailable(absl::string_view what, const absl::Status& cause) const {
  return absl::UnavailableError(
      absl::StrCat("the manager at ", address_, " ", what, ": ", cause.message()));
}

absl::Status ServerClient::Anchor() {
  MutexLock lock(&anchor_mu_);
  if (anchor_.has_value()) return absl::OkStatus();
  absl::StatusOr<Connection> c = Connect(/*shared_memory=*/false);
  if (!c.ok()) return c.status();
  anchor_ = *std::move(c);
  return absl::OkStatus();
}

absl::StatusOr<Connection> ServerClient::Connect(bool shared_memory) {
  absl::StatusOr<Connection> c = Client(address_, authkey_);
  if (!c.ok()) {
    if (c.status().code() == absl::StatusCode::kUnauthenticated) return c.status();
    return Unavailable("cannot be reached", c.status());
  }
  Hello hello{.version = kProtocolVersion,
              .session = session_,
              .pid = static_cast<uint32_t>(pid_),
              .shared_memory = shared_memory};
  if (absl::Status s = c->Send(hello); !s.ok()) return Unavailable("closed the connection", s);
  absl::StatusOr<HelloReply> reply = c->Recv<HelloReply>();
  if (!reply.ok()) return Unavailable("did not answer the hello", reply.status());
  if (!reply->status.ok()) return reply->status;
  if (reply->max_message_size < 4096) {
    return absl::DataLossError(absl::StrCat(
        "the manager at ", address_, " announced a max message size of ", reply->max_message_size));
  }
  const size_t limit =
      static_cast<size_t>(std::min<uint64_t>(reply->max_message_size, c->max_message_size()));
  if (!reply->shared_memory) {
    if (absl::Status s = c->set_max_message_size(limit); !s.ok()) return s;
    return c;
  }
  absl::StatusOr<Connection> moved = c->Recv<Connection>();
  if (!moved.ok()) return Unavailable("did not send its shared-memory pipe", moved.status());
  if (moved->transport() != ConnectionTransport::kSharedMemory) {
    return absl::DataLossError(absl::StrCat("the manager at ", address_,
                                            " sent a socket where a shared-memory pipe belongs"));
  }
  if (absl::Status s = moved->set_max_message_size(limit); !s.ok()) return s;
  return moved;
}

absl::Status ServerClient::Call(Request& request, Reply& reply, absl::Duration timeout) {
  std::unique_ptr<Connection> connection;
  {
    MutexLock lock(&mu_);
    if (!idle_.empty()) {
      connection = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (connection == nullptr) {
    if (absl::Status s = Anchor(); !s.ok()) return s;
    absl::StatusOr<Connection> fresh = Connect(/*shared_memory=*/true);
    if (!fresh.ok()) return fresh.status();
    connection = std::make_unique<Connection>(*std::move(fresh));
  }
  request.thread = ThreadId();
  if (absl::Status s = connection->Send(request); !s.ok()) {
    // Too large a request leaves the connection as it was.
    if (s.code() == absl::StatusCode::kInvalidArgument && !connection->closed()) {
      MutexLock lock(&mu_);
      idle_.push_back(std::move(connection));
      return s;
    }
    return Unavailable("closed the connection", s);
  }
  if (timeout != absl::InfiniteDuration()) {
    absl::StatusOr<bool> ready = connection->Poll(timeout);
    if (!ready.ok()) return Unavailable("closed the connection", ready.status());
    if (!*ready) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the manager at ", address_, " did not answer within ", absl::FormatDuration(timeout)));
    }
  }
  absl::StatusOr<Reply> received = connection->Recv<Reply>();
  if (!received.ok()) {
    if (received.status().code() == absl::StatusCode::kInvalidArgument && !connection->closed()) {
      return absl::DataLossError(absl::StrCat(
          "the manager at ", address_, " sent a malformed reply: ", received.status().message()));
    }
    return Unavailable("closed the connection (it shut down or died)", received.status());
  }
  reply = *std::move(received);
  {
    MutexLock lock(&mu_);
    idle_.push_back(std::move(connection));
  }
  return reply.status;
}

}  // namespace mp::managers_internal
