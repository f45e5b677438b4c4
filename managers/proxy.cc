// Copyright 2026 The mp Authors.

#include "managers/proxy.h"

#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/mutex.h"
#include "base/pid.h"
#include "managers/client.h"
#include "managers/wire.h"

namespace mp {

using managers_internal::Op;
using managers_internal::Reply;
using managers_internal::ReplyView;
using managers_internal::Request;
using managers_internal::RequestFields;
using managers_internal::ServerClient;

BaseProxy::Ref::~Ref() {
  // A fork child's copy of its parent's reference is the parent's to drop.
  if (client == nullptr || CurrentPid() != pid) return;
  Request request{.op = static_cast<uint8_t>(Op::kDecref), .id = token.id, .type = token.type};
  Reply reply;
  client->Call(request, reply).IgnoreError();  // a server that is gone has dropped it already
}

const Token& BaseProxy::token() const {
  static const Token* const kEmpty = new Token;
  MutexLock lock(&mu_);
  return ref_ == nullptr ? *kEmpty : ref_->token;
}

absl::StatusOr<BaseProxy> BaseProxy::Attach(Token token) {
  std::shared_ptr<ServerClient> client = ServerClient::Get(token.address, token.authkey);
  Request request{.op = static_cast<uint8_t>(Op::kIncref), .id = token.id, .type = token.type};
  Reply reply;
  if (absl::Status s = client->Call(request, reply); !s.ok()) return s;
  BaseProxy proxy;
  proxy.ref_ = std::make_shared<Ref>(std::move(token), std::move(client), CurrentPid());
  return proxy;
}

BaseProxy BaseProxy::Adopt(Token token) {
  std::shared_ptr<ServerClient> client = ServerClient::Get(token.address, token.authkey);
  BaseProxy proxy;
  proxy.ref_ = std::make_shared<Ref>(std::move(token), std::move(client), CurrentPid());
  return proxy;
}

absl::StatusOr<BaseProxy> BaseProxy::Create(const std::string& address,
                                            const std::optional<std::string>& authkey,
                                            absl::string_view type_id, uint64_t type,
                                            std::string type_name, std::vector<std::string> args,
                                            uint64_t signature) {
  std::shared_ptr<ServerClient> client = ServerClient::Get(address, authkey);
  Request request{.op = static_cast<uint8_t>(Op::kCreate),
                  .type = type,
                  .method = std::string(type_id),
                  .signature = signature};
  request.args.reserve(args.size() + 1);
  request.args.push_back(type_name);
  for (std::string& a : args) request.args.push_back(std::move(a));
  Reply reply;
  if (absl::Status s = client->Call(request, reply); !s.ok()) return s;
  absl::StatusOr<uint64_t> id =
      managers_internal::DecodeResult<uint64_t>(reply.results, 0, "create");
  if (!id.ok()) return id.status();
  BaseProxy proxy;
  proxy.ref_ = std::make_shared<Ref>(Token{address, authkey, *id, type, std::move(type_name)},
                                     std::move(client), CurrentPid());
  return proxy;
}

absl::StatusOr<std::shared_ptr<BaseProxy::Ref>> BaseProxy::ThisProcessRef() const {
  MutexLock lock(&mu_);
  if (ref_ == nullptr) {
    return absl::FailedPreconditionError("manager: a call through an empty proxy");
  }
  if (ref_->pid == CurrentPid()) return ref_;
  // A fork child: its own reference, so that the object outlives the parent's proxies.
  absl::StatusOr<BaseProxy> attached = Attach(ref_->token);
  if (!attached.ok()) return attached.status();
  ref_ = attached->ref_;
  return ref_;
}

absl::Status BaseProxy::CallWith(
    absl::string_view method, uint64_t signature, std::optional<absl::Duration> server_timeout,
    absl::Span<const uint32_t> held_args, const managers_internal::RequestArgs& args,
    absl::FunctionRef<absl::Status(const ReplyView&)> on_result) const {
  absl::StatusOr<std::shared_ptr<Ref>> ref = ThisProcessRef();
  if (!ref.ok()) return ref.status();
  const RequestFields fields{
      .op = static_cast<uint8_t>(Op::kCall),
      .id = (*ref)->token.id,
      .type = (*ref)->token.type,
      .method = method,
      .signature = signature,
      .timeout_ns = server_timeout.has_value() ? absl::ToInt64Nanoseconds(*server_timeout) : -1,
      .held_args = held_args};
  return (*ref)->client->CallWith(fields, args, [&](const ReplyView& reply) -> absl::Status {
    if (!reply.status.ok()) return reply.status;
    for (const uint32_t g : reply.given) {
      if (g >= reply.results.size()) {
        return absl::DataLossError(absl::StrCat(
            "manager: ", method, " gave a reference for result ", g, " of ", reply.results.size()));
      }
    }
    return on_result(reply);
  });
}

absl::StatusOr<CallResults> BaseProxy::CallMethod(absl::string_view method,
                                                  std::vector<std::string> args, uint64_t signature,
                                                  std::optional<absl::Duration> server_timeout,
                                                  std::vector<uint32_t> held_args) const {
  CallResults out;
  if (absl::Status s = CallWith(method, signature, server_timeout, held_args,
                                managers_internal::StringArgs(args),
                                [&out](const ReplyView& reply) {
                                  managers_internal::CopyResults(reply, out.values, out.given);
                                  return absl::OkStatus();
                                });
      !s.ok()) {
    return s;
  }
  return out;
}

namespace managers_internal {
bool& AdoptingDecode() {
  thread_local bool adopting = false;
  return adopting;
}
}  // namespace managers_internal

}  // namespace mp
