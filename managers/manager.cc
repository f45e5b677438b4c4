// Copyright 2026 The mp Authors.

#include "managers/manager.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "channels/connection.h"
#include "managers/builtins.h"
#include "managers/client.h"
#include "managers/registry.h"
#include "managers/served_object.h"
#include "managers/server.h"
#include "managers/wire.h"
#include "start_methods/process.h"

namespace mp {
namespace managers_internal {

absl::Status CheckOptions(const ManagerOptions& options) {
  if (options.authkey.has_value() && options.authkey->empty()) {
    return absl::InvalidArgumentError("a manager's authkey must not be empty");
  }
  if (options.max_connections == 0) {
    return absl::InvalidArgumentError("a manager's max_connections must be at least 1");
  }
  if (options.max_message_size < 4096 || options.max_message_size > (size_t{1} << 32) - 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a manager's max_message_size must be in [4096, 4 GiB), not ", options.max_message_size));
  }
  if (options.start_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("a manager's start_timeout must not be negative");
  }
  return absl::OkStatus();
}

namespace {

absl::StatusOr<TypeTable> MakeTable(Registrar registrar) {
  TypeTable table;
  if (absl::Status s = AddBuiltins(table); !s.ok()) return s;
  if (registrar != nullptr) {
    TypeRegistry registry;
    registrar(registry);
    if (absl::Status s = registry.AddTo(table); !s.ok()) return s;
  }
  return table;
}

// A socket file in a directory the Listener made ("" address): removed before the process ends,
// since the serving threads (and the Listener) are never destroyed.
void RemoveSocketFile(absl::string_view requested, const std::string& address) {
  if (!requested.empty() || address.empty() || address[0] != '/') return;
  ::unlink(address.c_str());
  const size_t slash = address.rfind('/');
  if (slash != std::string::npos && slash > 0) ::rmdir(address.substr(0, slash).c_str());
}

}  // namespace

absl::Status RunServer(const ServerConfig& config, Registrar registrar,
                       const std::function<absl::Status(const ServerStarted&)>& report,
                       int stop_fd) {
  absl::StatusOr<std::unique_ptr<Server>> server =
      [&]() -> absl::StatusOr<std::unique_ptr<Server>> {
    absl::StatusOr<TypeTable> table = MakeTable(registrar);
    if (!table.ok()) return table.status();
    // A server started by a parent ends with it, unless the caller chose what stops it.
    const int stop = stop_fd >= 0                 ? stop_fd
                     : ParentProcess() != nullptr ? ParentProcess()->Sentinel()
                                                  : -1;
    return Server::Create(ServerOptions{.address = config.address,
                                        .authkey = config.authkey,
                                        .max_message_size = config.max_message_size,
                                        .max_connections = config.max_connections,
                                        .stop_fd = stop},
                          *std::move(table));
  }();
  ServerStarted started{server.ok() ? absl::OkStatus() : server.status(),
                        server.ok() ? (*server)->address() : std::string()};
  if (absl::Status s = report(started); !s.ok() && server.ok()) return s;
  if (!server.ok()) return server.status();
  absl::Status served = (*server)->Serve();
  (*server)->EndObjects();
  RemoveSocketFile(config.address, (*server)->address());
  if (!served.ok()) return served;
  std::fflush(nullptr);
  ::_exit(0);
}

}  // namespace managers_internal

using managers_internal::Op;
using managers_internal::Reply;
using managers_internal::Request;
using managers_internal::ServerClient;

BaseManager::BaseManager(BaseManager&& other) noexcept
    : config_(std::move(other.config_)),
      process_(std::move(other.process_)),
      shut_down_(other.shut_down_) {
  other.process_.reset();
  other.shut_down_ = true;
}

BaseManager& BaseManager::operator=(BaseManager&& other) noexcept {
  if (this != &other) {
    if (process_.has_value() && !shut_down_) Shutdown().IgnoreError();
    config_ = std::move(other.config_);
    process_ = std::move(other.process_);
    shut_down_ = other.shut_down_;
    other.process_.reset();
    other.shut_down_ = true;
  }
  return *this;
}

BaseManager::~BaseManager() {
  if (process_.has_value() && !shut_down_) Shutdown().IgnoreError();
}

absl::Status BaseManager::Prepare(Registrar registrar, const ManagerOptions& options) {
  if (absl::Status s = managers_internal::CheckOptions(options); !s.ok()) return s;
  if (registrar != nullptr) {
    // The registrar runs here too: it names the methods this process calls.
    TypeRegistry registry;
    registrar(registry);
    if (!registry.status().ok()) return registry.status();
  }
  config_.address = options.address;
  config_.authkey = options.authkey.value_or(CurrentProcess().authkey);
  config_.max_message_size = options.max_message_size;
  config_.max_connections = options.max_connections;
  return absl::OkStatus();
}

absl::Status BaseManager::Launch(Process process, Connection& report, absl::Duration timeout) {
  if (absl::Status s = process.Start(); !s.ok()) return s;
  process_ = std::move(process);
  absl::StatusOr<int> sentinel = process_->Sentinel();
  // Wait for the report, or the server's end (a child that failed before it could say why).
  std::vector<Waitable> objects = {Waitable(report)};
  if (sentinel.ok()) objects.emplace_back(*sentinel);
  absl::StatusOr<std::vector<size_t>> ready = Wait(objects, timeout);
  absl::Status failure;
  if (!ready.ok()) {
    failure = ready.status();
  } else if (ready->empty()) {
    failure = absl::DeadlineExceededError(absl::StrCat(
        "the manager's server did not start listening within ", absl::FormatDuration(timeout)));
  } else if (absl::StatusOr<bool> has = report.Poll(); has.ok() && *has) {
    absl::StatusOr<managers_internal::ServerStarted> started =
        report.Recv<managers_internal::ServerStarted>();
    if (!started.ok()) {
      failure = absl::UnavailableError(absl::StrCat(
          "the manager's server ended before it listened (", started.status().message(), ")"));
    } else if (!started->status.ok()) {
      failure = started->status;
    } else {
      config_.address = started->address;
    }
  } else {
    failure = absl::UnavailableError("the manager's server ended before it listened");
  }
  if (!failure.ok()) {
    process_->Kill().IgnoreError();
    process_->Join().IgnoreError();
    shut_down_ = true;
    return failure;
  }
  return absl::OkStatus();
}

absl::Status BaseManager::Ping() const {
  Request request{.op = static_cast<uint8_t>(Op::kObjectCount)};
  Reply reply;
  return ServerClient::Get(config_.address, config_.authkey)->Call(request, reply);
}

absl::StatusOr<size_t> BaseManager::ObjectCount() const {
  Request request{.op = static_cast<uint8_t>(Op::kObjectCount)};
  Reply reply;
  if (absl::Status s = ServerClient::Get(config_.address, config_.authkey)->Call(request, reply);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<uint64_t> n = managers_internal::DecodeResult<uint64_t>(reply.results, 0, "count");
  if (!n.ok()) return n.status();
  return static_cast<size_t>(*n);
}

absl::Status BaseManager::Shutdown() {
  if (!process_.has_value()) {
    if (shut_down_) return absl::OkStatus();
    return absl::FailedPreconditionError(
        "BaseManager::Shutdown: this manager was connected to, not started, by this process");
  }
  if (shut_down_) return absl::OkStatus();
  shut_down_ = true;
  if (process_->IsAlive()) {
    Request request{.op = static_cast<uint8_t>(Op::kShutdown)};
    Reply reply;
    ServerClient::Get(config_.address, config_.authkey)
        ->Call(request, reply, absl::Seconds(1))
        .IgnoreError();  // a server that is gone is shut down
  }
  if (absl::Status s = process_->Join(absl::Seconds(1)); !s.ok()) return s;
  if (process_->IsAlive()) {
    process_->Terminate().IgnoreError();
    if (absl::Status s = process_->Join(absl::Milliseconds(100)); !s.ok()) return s;
    if (process_->IsAlive()) {
      process_->Kill().IgnoreError();
      return process_->Join();
    }
  }
  return absl::OkStatus();
}

absl::Status BaseManager::Join(std::optional<absl::Duration> timeout) {
  if (!process_.has_value()) {
    return absl::FailedPreconditionError(
        "BaseManager::Join: this manager was connected to, not started, by this process");
  }
  return process_->Join(timeout);
}

namespace {
constexpr absl::string_view kTrackerLabel = "mp::SharedMemoryTracker";
}  // namespace

absl::StatusOr<SharedMemoryManager> SharedMemoryManager::Start(std::shared_ptr<StartMethod> method,
                                                               ManagerOptions options) {
  absl::StatusOr<BaseManager> m = BaseManager::Start(std::move(method), std::move(options));
  if (!m.ok()) return m.status();
  absl::StatusOr<BaseProxy> tracker =
      BaseProxy::Create(m->address(), m->authkey(), "SharedMemoryTracker",
                        Fingerprint(kTrackerLabel), std::string(kTrackerLabel), {});
  if (!tracker.ok()) return tracker.status();
  return SharedMemoryManager(*std::move(m), *std::move(tracker));
}

absl::StatusOr<SharedMemory> SharedMemoryManager::SharedMemory(int64_t size) const {
  if (size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("SharedMemoryManager::SharedMemory: size must be positive, not ", size));
  }
  absl::StatusOr<CallResults> r = tracker_.CallMethod("create", {Encode(size)});
  if (!r.ok()) return r.status();
  absl::StatusOr<std::string> name = managers_internal::DecodeResult<std::string>(*r, 0, "create");
  if (!name.ok()) return name.status();
  return mp::SharedMemory::Attach(*name);
}

absl::StatusOr<std::vector<std::string>> SharedMemoryManager::Segments() const {
  absl::StatusOr<CallResults> r = tracker_.CallMethod("list", {});
  if (!r.ok()) return r.status();
  std::vector<std::string> names;
  for (size_t i = 0; i < r->size(); ++i) {
    absl::StatusOr<std::string> name = managers_internal::DecodeResult<std::string>(*r, i, "list");
    if (!name.ok()) return name.status();
    names.push_back(*std::move(name));
  }
  return names;
}

absl::Status SharedMemoryManager::Release(const std::string& name) const {
  return tracker_.CallMethod("release", {Encode(name)}).status();
}

absl::Status ServeManager(ManagerOptions options, Registrar registrar,
                          std::function<void(const std::string& address)> on_listening,
                          int stop_fd) {
  if (absl::Status s = managers_internal::CheckOptions(options); !s.ok()) return s;
  if (stop_fd >= 0 && ::fcntl(stop_fd, F_GETFD) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ServeManager: stop_fd ", stop_fd, " is not an open descriptor"));
  }
  managers_internal::ServerConfig config{
      .address = options.address,
      .authkey = options.authkey.value_or(CurrentProcess().authkey),
      .max_message_size = options.max_message_size,
      .max_connections = options.max_connections};
  return managers_internal::RunServer(
      config, registrar,
      [&on_listening](const managers_internal::ServerStarted& started) {
        if (started.status.ok() && on_listening != nullptr) on_listening(started.address);
        return absl::OkStatus();
      },
      stop_fd);
}

}  // namespace mp
