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
#include "serialize/frame.h"

namespace mp::managers_internal {
namespace {

// The bytes a channel keeps for its request and reply frames between calls (a larger frame gets a
// buffer of its own, released after the call).
constexpr size_t kKeptFrameBytes = 64 * 1024;

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
  request.thread = ThreadId();
  const RequestFields fields{.op = request.op,
                             .id = request.id,
                             .type = request.type,
                             .method = request.method,
                             .signature = request.signature,
                             .thread = request.thread,
                             .timeout_ns = request.timeout_ns,
                             .held_args = request.held_args};
  return CallWith(
      fields, StringArgs(request.args),
      [&reply](const ReplyView& view) {
        reply.status = view.status;
        CopyResults(view, reply.results, reply.given);
        return reply.status;
      },
      timeout);
}

absl::Status ServerClient::CallWith(RequestFields fields, const RequestArgs& args,
                                    absl::FunctionRef<absl::Status(const ReplyView&)> on_reply,
                                    absl::Duration timeout) {
  std::unique_ptr<Channel> channel;
  {
    MutexLock lock(&mu_);
    if (!idle_.empty()) {
      channel = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (channel == nullptr) {
    if (absl::Status s = Anchor(); !s.ok()) return s;
    absl::StatusOr<Connection> fresh = Connect(/*shared_memory=*/true);
    if (!fresh.ok()) return fresh.status();
    channel = std::make_unique<Channel>(*std::move(fresh));
  }
  Connection& connection = channel->connection;
  fields.thread = ThreadId();
  if (absl::Status s = EncodeRequestFrame(fields, args, channel->out); !s.ok()) {
    MutexLock lock(&mu_);
    idle_.push_back(std::move(channel));
    return s;
  }
  if (absl::Status s = connection.SendBytes(channel->out); !s.ok()) {
    // Too large a request leaves the connection as it was.
    if (s.code() == absl::StatusCode::kInvalidArgument && !connection.closed()) {
      MutexLock lock(&mu_);
      idle_.push_back(std::move(channel));
      return s;
    }
    return Unavailable("closed the connection", s);
  }
  if (channel->out.capacity() > kKeptFrameBytes) std::string().swap(channel->out);
  if (timeout != absl::InfiniteDuration()) {
    absl::StatusOr<bool> ready = connection.Poll(timeout);
    if (!ready.ok()) return Unavailable("closed the connection", ready.status());
    if (!*ready) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the manager at ", address_, " did not answer within ", absl::FormatDuration(timeout)));
    }
  }
  // The reply's frame, copied out of the transport into this channel's buffer (or, when longer,
  // into too_short), and decoded there.
  if (channel->in.size() < kKeptFrameBytes) channel->in.resize(kKeptFrameBytes);
  absl::StatusOr<size_t> n =
      connection.RecvBytesInto(absl::MakeSpan(channel->in), 0, &channel->too_short);
  absl::Span<const uint8_t> frame;
  if (n.ok()) {
    frame = absl::Span<const uint8_t>(channel->in.data(), *n);
  } else if (n.status().code() == absl::StatusCode::kResourceExhausted && !connection.closed()) {
    frame = AsBytes(channel->too_short);
  } else {
    return Unavailable("closed the connection (it shut down or died)", n.status());
  }
  if (absl::Status s = DecodeReplyFrame(frame, connection.max_message_size(), channel->reply);
      !s.ok()) {
    return absl::DataLossError(
        absl::StrCat("the manager at ", address_, " sent a malformed reply: ", s.message()));
  }
  absl::Status status = on_reply(channel->reply);
  channel->reply.results.clear();
  if (!channel->too_short.empty()) std::string().swap(channel->too_short);
  {
    MutexLock lock(&mu_);
    idle_.push_back(std::move(channel));
  }
  return status;
}

}  // namespace mp::managers_internal
