// Copyright 2026 The mp Authors.

#include "context/context.h"

#include <array>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/host_addresses.h"
#include "start_methods/fork.h"
#include "start_methods/forkserver.h"
#include "start_methods/spawn.h"

namespace mp {
namespace {

// The default start method when SetStartMethod was not called (see context.h for why).
constexpr absl::string_view kDefaultMethod = "forkserver";
// Every method, in GetAllStartMethods() order after the default.
constexpr std::array<absl::string_view, 3> kMethods = {"forkserver", "fork", "spawn"};

struct Defaults {
  std::mutex mu;
  Context* actual = nullptr;  // the default context once fixed
};
Defaults& GetDefaults() {
  static Defaults* const d = new Defaults;
  return *d;
}

std::shared_ptr<StartMethod> MethodFor(absl::string_view method) {
  if (method == "fork") return ForkStartMethod();
  if (method == "spawn") return SpawnStartMethod();
  if (method == "forkserver") return ForkServerStartMethod();
  // Registered by @mp//mpi:start_method when the program links it (context does not depend on
  // it: a program that never uses mpi does not load Open MPI).
  if (absl::StatusOr<std::shared_ptr<StartMethod>> m = FindStartMethod(method); m.ok()) return *m;
  return nullptr;
}

constexpr absl::string_view kMpi = "mpi";

}  // namespace

Context::Context(std::string method, std::shared_ptr<StartMethod> start_method)
    : method_(std::move(method)),
      domain_(method_ == "fork" ? ShmDomain::kFork : ShmDomain::kTransferable),
      start_method_(std::move(start_method)) {}

absl::StatusOr<Context*> GetContext(absl::string_view method) {
  // One context per method for the whole program, never destroyed.
  static Context* const contexts[] = {
      new Context("forkserver", MethodFor("forkserver")),
      new Context("fork", MethodFor("fork")),
      new Context("spawn", MethodFor("spawn")),
  };
  static Context* const mpi = [] {
    std::shared_ptr<StartMethod> m = MethodFor(kMpi);
    return m == nullptr ? nullptr : new Context(std::string(kMpi), std::move(m));
  }();
  for (Context* c : contexts) {
    if (c->method() == method) return c;
  }
  if (method == kMpi) {
    if (mpi != nullptr) return mpi;
    return absl::InvalidArgumentError(
        "mp::GetContext(\"mpi\"): this program does not link the mpi start method; add "
        "\"@mp//mpi:start_method\" to its deps");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("mp::GetContext: unknown start method '", method, "'; the start methods are ",
                   absl::StrJoin(kMethods, ", "), mpi != nullptr ? ", mpi" : ""));
}

Context* GetContext() {
  Defaults& d = GetDefaults();
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.actual == nullptr) d.actual = *GetContext(kDefaultMethod);
  return d.actual;
}

absl::Status SetStartMethod(absl::string_view method, bool force) {
  absl::StatusOr<Context*> ctx = GetContext(method);
  if (!ctx.ok()) return ctx.status();
  Defaults& d = GetDefaults();
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.actual != nullptr && !force) {
    return absl::FailedPreconditionError(absl::StrCat(
        "mp::SetStartMethod('", method, "'): the default context has already been set to '",
        d.actual->method(),
        "' (by an earlier SetStartMethod or a use of the default context); pass force = true to "
        "change it, or use mp::GetContext(\"",
        method, "\") without changing the default"));
  }
  d.actual = *ctx;
  return absl::OkStatus();
}

std::optional<std::string> GetStartMethod(bool allow_none) {
  Defaults& d = GetDefaults();
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.actual != nullptr) return std::string(d.actual->method());
    if (allow_none) return std::nullopt;
  }
  return std::string(GetContext()->method());
}

std::vector<std::string> GetAllStartMethods() {
  std::vector<std::string> out = {std::string(kDefaultMethod)};
  for (absl::string_view m : kMethods) {
    if (m != kDefaultMethod) out.emplace_back(m);
  }
  if (GetContext(kMpi).ok()) out.emplace_back(kMpi);
  return out;
}

absl::StatusOr<mp::Process> Context::Process(Target target, ProcessOptions options) const {
  // The start method checks the target (callables, fork-only arguments) and names the fix.
  return mp::Process::Create(start_method_, std::move(target), std::move(options));
}

absl::Status Context::CheckHostLocal(absl::string_view what) const {
  if (method_ != kMpi) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "mp: GetContext(\"mpi\")->", what, "(): a ", what,
      " lives in this host's shared memory, which an mpi process on another host cannot reach; "
      "share one through the mpi context's Manager instead (a ",
      what, " proxy of mp::GetContext(\"mpi\")->Manager(), served on TCP)"));
}

std::shared_ptr<StartMethod> Context::ManagerMethod(ManagerOptions& options) const {
  if (method_ != kMpi) return start_method_;
  if (options.address.empty()) {
    const std::vector<uint32_t> ips = HostIPv4Addresses(/*loopback_first=*/false, 1);
    options.address = absl::StrCat(ips.empty() ? "127.0.0.1" : FormatIPv4(ips.front()), ":0");
  }
  return SpawnStartMethod();
}

absl::StatusOr<std::pair<Connection, Connection>> Context::Pipe(bool duplex) const {
  if (method_ != kMpi) return mp::Pipe(duplex);
  // Socket ends: the mpi method carries a socket to a child over TCP (mpi/bridge.h); a ring in
  // this host's memory could not follow it.
  if (!duplex) {
    return absl::UnimplementedError(
        "mp: GetContext(\"mpi\")->Pipe(false): one-way mpi Pipes are not available; use Pipe() "
        "(duplex) and send in one direction");
  }
  return mp::Pipe(true, ConnectionTransport::kSocket);
}

absl::StatusOr<mp::Queue> Context::Queue(size_t maxsize) const {
  QueueOptions options;
  options.maxsize = maxsize;
  return Queue(options);
}

absl::StatusOr<mp::Queue> Context::Queue(QueueOptions options) const {
  if (absl::Status s = CheckHostLocal("Queue"); !s.ok()) return s;
  options.domain = domain_;
  return mp::Queue::Create(options);
}

absl::StatusOr<mp::SimpleQueue> Context::SimpleQueue() const {
  if (absl::Status s = CheckHostLocal("SimpleQueue"); !s.ok()) return s;
  QueueOptions options;
  options.domain = domain_;
  return mp::SimpleQueue::Create(options);
}

absl::StatusOr<mp::JoinableQueue> Context::JoinableQueue(size_t maxsize) const {
  if (absl::Status s = CheckHostLocal("JoinableQueue"); !s.ok()) return s;
  QueueOptions options;
  options.maxsize = maxsize;
  options.domain = domain_;
  return mp::JoinableQueue::Create(options);
}

absl::StatusOr<mp::Lock> Context::Lock() const {
  if (absl::Status s = CheckHostLocal("Lock"); !s.ok()) return s;
  return mp::Lock::Create(domain_);
}
absl::StatusOr<mp::RLock> Context::RLock() const {
  if (absl::Status s = CheckHostLocal("RLock"); !s.ok()) return s;
  return mp::RLock::Create(domain_);
}
absl::StatusOr<mp::Semaphore> Context::Semaphore(int64_t value) const {
  if (absl::Status s = CheckHostLocal("Semaphore"); !s.ok()) return s;
  return mp::Semaphore::Create(domain_, value);
}
absl::StatusOr<mp::BoundedSemaphore> Context::BoundedSemaphore(int64_t value) const {
  if (absl::Status s = CheckHostLocal("BoundedSemaphore"); !s.ok()) return s;
  return mp::BoundedSemaphore::Create(domain_, value);
}
absl::StatusOr<mp::Event> Context::Event() const {
  if (absl::Status s = CheckHostLocal("Event"); !s.ok()) return s;
  return mp::Event::Create(domain_);
}

absl::Status Context::CheckSameDomain(ShmDomain domain, absl::string_view what) const {
  if (domain == domain_) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "mp: the ", what, " given to GetContext(\"", method_, "\")->Condition() lives in the ",
      ShmDomainName(domain), " domain but this context makes ", ShmDomainName(domain_),
      " objects; create the lock with mp::GetContext(\"", method_, "\")->", what, "()"));
}

absl::StatusOr<mp::Condition> Context::Condition() const {
  if (absl::Status s = CheckHostLocal("Condition"); !s.ok()) return s;
  return mp::Condition::Create(domain_);
}
absl::StatusOr<mp::Condition> Context::Condition(const mp::Lock& lock) const {
  if (absl::Status s = CheckHostLocal("Condition"); !s.ok()) return s;
  if (absl::Status s = CheckSameDomain(lock.domain(), "Lock"); !s.ok()) return s;
  return mp::Condition::Create(lock);
}
absl::StatusOr<mp::Condition> Context::Condition(const mp::RLock& lock) const {
  if (absl::Status s = CheckHostLocal("Condition"); !s.ok()) return s;
  if (absl::Status s = CheckSameDomain(lock.domain(), "RLock"); !s.ok()) return s;
  return mp::Condition::Create(lock);
}

absl::StatusOr<mp::Barrier> Context::Barrier(int parties, mp::Barrier::Action action,
                                             absl::Duration timeout) const {
  if (absl::Status s = CheckHostLocal("Barrier"); !s.ok()) return s;
  return mp::Barrier::Create(domain_, parties, std::move(action), timeout);
}

absl::StatusOr<mp::Pool> Context::Pool(PoolOptions options) const {
  return mp::Pool::Create(start_method_, std::move(options));
}

absl::StatusOr<mp::Pool> Context::Pool(int processes) const {
  PoolOptions options;
  options.processes = processes;
  return Pool(std::move(options));
}

absl::StatusOr<mp::ProcessPoolExecutor> Context::ProcessPoolExecutor(
    ProcessPoolExecutorOptions options) const {
  if (options.method != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Context::ProcessPoolExecutor: options.method is set (", options.method->Name(),
        ") but the '", start_method_->Name(), "' context chooses the start method; leave it null"));
  }
  options.method = start_method_;
  return mp::ProcessPoolExecutor::Create(std::move(options));
}

absl::StatusOr<mp::SharedMemory> Context::SharedMemory(std::optional<std::string> name, bool create,
                                                       int64_t size) const {
  if (absl::Status s = CheckHostLocal("SharedMemory"); !s.ok()) return s;
  return mp::SharedMemory::Open(std::move(name), create, size);
}

}  // namespace mp
