// Copyright 2026 The mp Authors.
//
// managers/manager.h — mp::Manager and mp::BaseManager: a server process that owns shared objects,
// and proxies to them from any process, on this host or another (CPython's
// multiprocessing.managers: SyncManager, BaseManager).
//
//   absl::StatusOr<mp::Manager> m = ctx->Manager();          // a server started by ctx's method
//   absl::StatusOr<mp::DictProxy<std::string, int64_t>> d = m->Dict<std::string, int64_t>();
//   absl::StatusOr<mp::ListProxy<double>> l = m->List<double>();
//   absl::StatusOr<mp::Process> p = ctx->Process<&F>(*d, *l);  // F(DictProxy<...>, ListProxy<...>)
//   p->Start(); p->Join();
//   absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> items = d->Items();
//   // ~Manager shuts the server down, as leaving `with Manager() as m:` does.
//
// The built-in types: Dict, List, Namespace, Value, Array (managers/collections.h); Queue,
// JoinableQueue, Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier
// (managers/sync_proxies.h). Classes of your own: a registrar (managers/registry.h) and
// BaseManager::Start<&Registrar> / Create<T>(args...).
//
// Local and remote. A manager started with the default options listens on a Unix socket in a
// fresh private directory, and its local clients talk to it over shared-memory Pipes
// (managers/wire.h): a proxy call is a round trip without a system call while both sides are
// awake. With `.address = "127.0.0.1:0"` (or "0.0.0.0:port" to be reached from other hosts; the
// default stays loopback and Unix) it listens on TCP, and another program joins with
// BaseManager::Connect(address, authkey) (CPython's "Using a remote manager"). ServeManager runs a
// server in the calling process instead of a child (CPython's get_server().serve_forever()).
//
// Authkey: every client proves it knows the manager's authkey (listener/listener.h, both
// directions) before it is served. The default is this process's authkey
// (mp::CurrentProcess().authkey), which every process this program starts inherits, so proxies
// passed to children just work; a remote program must be given it.
//
// Reliability (where CPython hangs or leaks):
//   * The server dies (even SIGKILL): every call of every proxy in every client, including one
//     blocked in the server, returns kUnavailable at once (its connection ends).
//   * A client dies: the server drops the references it held and releases the locks it held
//     (the next acquirer sees IsOwnerDied), so nothing leaks; ObjectCount() shows it.
//   * A malformed or hostile request gets a status naming what was wrong and the server keeps
//     serving; an unauthenticated peer gets nothing but the challenge.
//   * Each client connection is served by its own thread: a slow client blocks nobody.
//   * The server process ends when the process that started it ends, however it ends.
//
// Thread safety: a Manager may be used from several threads; proxies too (managers/proxy.h).

#ifndef MP_MANAGERS_MANAGER_H_
#define MP_MANAGERS_MANAGER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "channels/connection.h"
#include "managers/collections.h"
#include "managers/proxy.h"
#include "managers/registry.h"
#include "managers/served_object.h"
#include "managers/sync_proxies.h"
#include "serialize/codec.h"
#include "shared_memory/shareable_list.h"
#include "shared_memory/shared_memory.h"
#include "start_methods/process.h"
#include "start_methods/start_method.h"
#include "start_methods/target.h"

namespace mp {

// A function at namespace scope that registers classes (managers/registry.h); nullptr: none.
using Registrar = void (*)(TypeRegistry&);

struct ManagerOptions {
  // "" (default): a Unix socket in a fresh 0700 directory (local clients, shared-memory Pipes).
  // "host:port": TCP (see listener/listener.h for every form); "127.0.0.1:0" picks a free port.
  std::string address;
  // nullopt: this process's authkey (mp::CurrentProcess().authkey). Must not be empty.
  std::optional<std::string> authkey;
  // The largest request or reply (a longer one closes that client's connection).
  size_t max_message_size = size_t{16} << 20;
  // The most client connections served at once (one thread each).
  size_t max_connections = 256;
  // How long Start waits for the server to listen.
  absl::Duration start_timeout = absl::Seconds(60);
};

namespace managers_internal {

// What a server process is started with.
struct ServerConfig {
  std::string address;
  std::string authkey;
  uint64_t max_message_size = 0;
  uint64_t max_connections = 0;
};
MP_FIELDS(ServerConfig, address, authkey, max_message_size, max_connections);

// What it reports back once it listens (or why it cannot).
struct ServerStarted {
  absl::Status status;
  std::string address;
};
MP_FIELDS(ServerStarted, status, address);

// Serves with the built-in types and the registrar's until shutdown, then ends the process.
// `report` hears the address, or the error that stopped the start (its own failure stops it too).
// `stop_fd`: the server stops when it is readable or hung up; -1: the parent's sentinel when mp
// started this process, else none.
absl::Status RunServer(const ServerConfig& config, Registrar registrar,
                       const std::function<absl::Status(const ServerStarted&)>& report,
                       int stop_fd = -1);

// A server process's target (a registered function: every start method runs it): it serves until
// shutdown or the end of its parent, and reports over `report` first.
template <Registrar R>
absl::Status ServerMain(ServerConfig config, Connection report) {
  return RunServer(config, R, [&report](const ServerStarted& started) {
    absl::Status s = report.Send(started);
    report.Close();
    return s;
  });
}

// The server's target when the manager has an initializer (CPython's start(initializer,
// initargs)): runs Init(args...) in the server process before it listens. An error status or an
// exception of Init is what Start returns, naming Init; the server process then ends (exit 1).
template <Registrar R, auto Init, typename Values>
struct InitializedServer;
template <Registrar R, auto Init, typename... P>
struct InitializedServer<R, Init, std::tuple<P...>> {
  static absl::Status Main(ServerConfig config, Connection report, P... args) {
    using Result = decltype(Init(std::move(args)...));
    static_assert(std::is_void_v<Result> || std::is_same_v<Result, absl::Status>,
                  "a manager's initializer returns void or absl::Status");
    const std::string what =
        absl::StrCat("the manager's initializer ", process_internal::QualifiedName<Init>());
    absl::Status init = Guarded(what, [&]() -> absl::Status {
      if constexpr (std::is_void_v<Result>) {
        Init(std::move(args)...);
        return absl::OkStatus();
      } else {
        return Init(std::move(args)...);
      }
    });
    if (!init.ok()) {
      const absl::Status failed(init.code(), absl::StrCat(what, " failed: ", init.message()));
      report.Send(ServerStarted{.status = failed, .address = ""}).IgnoreError();
      report.Close();
      return failed;
    }
    return ServerMain<R>(std::move(config), std::move(report));
  }
};

// The target of a server process: ServerMain<R>, or InitializedServer when there is an Init.
template <Registrar R, auto Init, typename... A>
Target ServerTarget(const ServerConfig& config, Connection report, A&&... initargs) {
  if constexpr (std::is_null_pointer_v<decltype(Init)>) {
    static_assert(sizeof...(A) == 0, "initializer arguments given without an initializer");
    return Call<&ServerMain<R>>(config, std::move(report));
  } else {
    using Values = typename process_internal::FunctionTraits<decltype(Init)>::Values;
    return Call<&InitializedServer<R, Init, Values>::Main>(config, std::move(report),
                                                           std::forward<A>(initargs)...);
  }
}

absl::Status CheckOptions(const ManagerOptions& options);

}  // namespace managers_internal

class BaseManager {
 public:
  // Starts a server process with `method` (a Context's start method: ctx->Manager() does this)
  // serving the built-in types and the registrar's classes, and waits until it listens.
  // kInvalidArgument for bad options, the registrar's errors (TypeRegistry::status()), the
  // start method's refusal, or the server's own failure to listen (kAlreadyExists for an address
  // in use); kDeadlineExceeded when it does not listen within start_timeout.
  //
  // With an initializer (CPython's start(initializer, initargs)), the server process runs
  // Init(initargs...) first, before it listens: a registered function of any parameters with
  // Codecs, returning void or absl::Status, its arguments carried as a Process's are (shared
  // objects included; the start method's rules apply). Its error status or exception is Start's
  // failure, naming Init. start_timeout covers it.
  //
  //   absl::Status Init(std::string name) { ... }           // runs in the server process
  //   mp::BaseManager::Start<nullptr, &Init>(method, {}, std::string("x"));
  template <Registrar R = nullptr, auto Init = nullptr, typename... A>
  static absl::StatusOr<BaseManager> Start(std::shared_ptr<StartMethod> method,
                                           ManagerOptions options = {}, A&&... initargs) {
    (void)managers_internal::RegistrarNames<R>::recorded;
    BaseManager m;
    if (absl::Status s = m.Prepare(R, options); !s.ok()) return s;
    absl::StatusOr<std::pair<Connection, Connection>> pipe = Pipe();
    if (!pipe.ok()) return pipe.status();
    absl::StatusOr<Process> process =
        Process::Create(std::move(method),
                        managers_internal::ServerTarget<R, Init>(m.config_, std::move(pipe->second),
                                                                 std::forward<A>(initargs)...),
                        ProcessOptions{.name = "SyncManager"});
    if (!process.ok()) return process.status();
    if (absl::Status s = m.Launch(*std::move(process), pipe->first, options.start_timeout);
        !s.ok()) {
      return s;
    }
    return m;
  }

  // A client of a manager another program serves (CPython's BaseManager(address, authkey) +
  // connect()): checks that it can be reached and authenticates, and runs the registrar here (so
  // that Proxy<T>::Call names the methods). It shuts nothing down when destroyed.
  template <Registrar R = nullptr>
  static absl::StatusOr<BaseManager> Connect(std::string address, std::string authkey) {
    (void)managers_internal::RegistrarNames<R>::recorded;
    BaseManager m;
    if (absl::Status s = m.Prepare(R, ManagerOptions{.address = address, .authkey = authkey});
        !s.ok()) {
      return s;
    }
    if (absl::Status s = m.Ping(); !s.ok()) return s;
    return m;
  }

  BaseManager(BaseManager&& other) noexcept;
  BaseManager& operator=(BaseManager&& other) noexcept;
  BaseManager(const BaseManager&) = delete;
  BaseManager& operator=(const BaseManager&) = delete;
  // A manager this process started: Shutdown() (errors ignored), as `with` does.
  ~BaseManager();

  // The address clients connect to (for a TCP manager, "ip:port" with the real port).
  const std::string& address() const { return config_.address; }
  const std::string& authkey() const { return config_.authkey; }

  // Asks the server to stop and waits (up to 1 s, then terminates it, as CPython's finalizer
  // does) for its process to end. Proxies' calls are kUnavailable afterwards. Only a manager that
  // Start()ed its server: kFailedPrecondition for a Connect()ed one. Idempotent.
  absl::Status Shutdown();
  // Waits for the server process to end (after Shutdown, or after it died).
  absl::Status Join(std::optional<absl::Duration> timeout = std::nullopt);
  // The server process (nullptr for a Connect()ed manager).
  const Process* process() const { return process_.has_value() ? &*process_ : nullptr; }

  // How many shared objects the server holds (CPython's _number_of_objects, for tests).
  absl::StatusOr<size_t> ObjectCount() const;

  // A new shared object of a registered class T, made in the server by its factory from `args`
  // (exactly the factory's parameter types).
  template <typename T, typename... A>
  absl::StatusOr<Proxy<T>> Create(A&&... args) const {
    const std::string* type_id = managers_internal::RegisteredType<T>::type_id.load();
    if (type_id == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("BaseManager::Create: ", Proxy<T>::TypeLabel(),
                       "; name the registrar that registers it in Start<&R> or Connect<&R>"));
    }
    using Args = std::tuple<std::decay_t<A>...>;
    Args values(std::forward<A>(args)...);
    absl::StatusOr<BaseProxy> base = BaseProxy::Create(
        config_.address, config_.authkey, *type_id, Proxy<T>::TypeFingerprint(),
        Proxy<T>::TypeLabel(), {Encode(Fingerprint(TypeName<Args>())), Encode(values)});
    if (!base.ok()) return base.status();
    return Proxy<T>(*std::move(base));
  }

 protected:
  BaseManager() = default;

  // A new object of a built-in type P (a proxy class of managers/collections.h).
  template <typename P>
  absl::StatusOr<P> CreateBuiltin(std::vector<std::string> args) const {
    absl::StatusOr<BaseProxy> base =
        BaseProxy::Create(config_.address, config_.authkey, P::kTypeId, P::TypeFingerprint(),
                          std::string(P::TypeLabel()), std::move(args));
    if (!base.ok()) return base.status();
    return P(*std::move(base));
  }

 private:
  // Checks the options and the registrar, and fills config_.
  absl::Status Prepare(Registrar registrar, const ManagerOptions& options);
  // Starts `process` and waits for its report on `report`.
  absl::Status Launch(Process process, Connection& report, absl::Duration timeout);
  absl::Status Ping() const;

  managers_internal::ServerConfig config_;
  std::optional<Process> process_;
  bool shut_down_ = false;
};

// CPython's SyncManager: a BaseManager with factories for the built-in shared types.
class Manager : public BaseManager {
 public:
  // As BaseManager::Start (an initializer included).
  template <Registrar R = nullptr, auto Init = nullptr, typename... A>
  static absl::StatusOr<Manager> Start(std::shared_ptr<StartMethod> method,
                                       ManagerOptions options = {}, A&&... initargs) {
    absl::StatusOr<BaseManager> m = BaseManager::Start<R, Init>(
        std::move(method), std::move(options), std::forward<A>(initargs)...);
    if (!m.ok()) return m.status();
    return Manager(*std::move(m));
  }
  template <Registrar R = nullptr>
  static absl::StatusOr<Manager> Connect(std::string address, std::string authkey) {
    absl::StatusOr<BaseManager> m = BaseManager::Connect<R>(std::move(address), std::move(authkey));
    if (!m.ok()) return m.status();
    return Manager(*std::move(m));
  }

  // manager.dict(), manager.dict(pairs)
  template <typename K, typename V>
  absl::StatusOr<DictProxy<K, V>> Dict(absl::Span<const std::pair<K, V>> initial = {}) const {
    absl::StatusOr<DictProxy<K, V>> d = CreateBuiltin<DictProxy<K, V>>({});
    if (d.ok() && !initial.empty()) {
      if (absl::Status s = d->Update(initial); !s.ok()) return s;
    }
    return d;
  }
  // manager.list(), manager.list(sequence)
  template <typename T>
  absl::StatusOr<ListProxy<T>> List(absl::Span<const T> initial = {}) const {
    if constexpr (managers_internal::IsProxy<T>) {
      // Proxies are stored by a call, which has the server keep their objects alive.
      absl::StatusOr<ListProxy<T>> l = CreateBuiltin<ListProxy<T>>({});
      if (l.ok() && !initial.empty()) {
        if (absl::Status s = l->Extend(initial); !s.ok()) return s;
      }
      return l;
    } else {
      return CreateBuiltin<ListProxy<T>>(managers_internal::EncodeEach(initial));
    }
  }
  // manager.Namespace()
  absl::StatusOr<NamespaceProxy> Namespace() const { return CreateBuiltin<NamespaceProxy>({}); }
  // manager.Value(typecode, value)
  template <typename T>
  absl::StatusOr<ValueProxy<T>> Value(const T& initial = T{}) const {
    if constexpr (managers_internal::IsProxy<T>) {
      absl::StatusOr<ValueProxy<T>> v = CreateBuiltin<ValueProxy<T>>({Encode(T())});
      if (v.ok()) {
        if (absl::Status s = v->Set(initial); !s.ok()) return s;
      }
      return v;
    } else {
      return CreateBuiltin<ValueProxy<T>>({Encode(initial)});
    }
  }
  // manager.Array(typecode, sequence) / an array of `length` T{}
  template <typename T>
  absl::StatusOr<ArrayProxy<T>> Array(absl::Span<const T> initial) const {
    return CreateBuiltin<ArrayProxy<T>>(managers_internal::EncodeEach(initial));
  }
  template <typename T>
  absl::StatusOr<ArrayProxy<T>> Array(size_t length) const {
    return CreateBuiltin<ArrayProxy<T>>(std::vector<std::string>(length, Encode(T{})));
  }

  // manager.Queue(maxsize) / manager.JoinableQueue(maxsize) of T (0: unbounded).
  template <typename T>
  absl::StatusOr<QueueProxy<T>> Queue(int64_t maxsize = 0) const {
    return CreateBuiltin<QueueProxy<T>>({Encode(maxsize)});
  }
  template <typename T>
  absl::StatusOr<JoinableQueueProxy<T>> JoinableQueue(int64_t maxsize = 0) const {
    return CreateBuiltin<JoinableQueueProxy<T>>({Encode(maxsize)});
  }
  // manager.Lock(), RLock(), Semaphore(value), BoundedSemaphore(value), Condition(), Event(),
  // Barrier(parties) (kInvalidArgument for a negative value, parties < 1).
  absl::StatusOr<LockProxy> Lock() const { return CreateBuiltin<LockProxy>({}); }
  absl::StatusOr<RLockProxy> RLock() const { return CreateBuiltin<RLockProxy>({}); }
  absl::StatusOr<SemaphoreProxy> Semaphore(int64_t value = 1) const {
    return CreateBuiltin<SemaphoreProxy>({Encode(value)});
  }
  absl::StatusOr<BoundedSemaphoreProxy> BoundedSemaphore(int64_t value = 1) const {
    return CreateBuiltin<BoundedSemaphoreProxy>({Encode(value)});
  }
  absl::StatusOr<ConditionProxy> Condition() const { return CreateBuiltin<ConditionProxy>({}); }
  absl::StatusOr<EventProxy> Event() const { return CreateBuiltin<EventProxy>({}); }
  absl::StatusOr<BarrierProxy> Barrier(int64_t parties) const {
    return CreateBuiltin<BarrierProxy>({Encode(parties)});
  }

 private:
  explicit Manager(BaseManager&& m) : BaseManager(std::move(m)) {}
};

// CPython's multiprocessing.managers.SharedMemoryManager: named SharedMemory segments and
// ShareableLists that live as long as the manager. The server makes each segment (and, being
// their creator, has them reclaimed by shared_memory.h's registry even if it is killed); Shutdown,
// or the end of the process that started the server, unlinks them all.
//
//   absl::StatusOr<mp::SharedMemoryManager> smm = mp::SharedMemoryManager::Start(method);
//   absl::StatusOr<mp::SharedMemory> shm = smm->SharedMemory(4096);
//   absl::StatusOr<mp::ShareableList<int64_t>> sl = smm->ShareableList<int64_t>(values);
//   // pass *shm, *sl to children of any start method (they travel by name) ...
//   smm->Shutdown();                                // both segments are unlinked
class SharedMemoryManager : public BaseManager {
 public:
  static absl::StatusOr<SharedMemoryManager> Start(std::shared_ptr<StartMethod> method,
                                                   ManagerOptions options = {});

  // A new segment of `size` bytes, mapped here (kInvalidArgument for size <= 0).
  absl::StatusOr<mp::SharedMemory> SharedMemory(int64_t size) const;
  // A new ShareableList holding `values`.
  template <typename T>
  absl::StatusOr<mp::ShareableList<T>> ShareableList(absl::Span<const T> values) const {
    absl::StatusOr<mp::SharedMemory> shm =
        SharedMemory(static_cast<int64_t>(mp::ShareableList<T>::Bytes(values.size())));
    if (!shm.ok()) return shm.status();
    return mp::ShareableList<T>::Format(*std::move(shm), values);
  }
  // The names of the segments it made and has not released.
  absl::StatusOr<std::vector<std::string>> Segments() const;
  // Unlinks one of its segments now (kNotFound if it made no such segment).
  absl::Status Release(const std::string& name) const;

 private:
  SharedMemoryManager(BaseManager&& m, BaseProxy tracker)
      : BaseManager(std::move(m)), tracker_(std::move(tracker)) {}
  BaseProxy tracker_;
};

// Serves a manager in this process (CPython's get_server().serve_forever()) on `options.address`
// with the built-in types and the registrar's: `on_listening` (if set) hears the real address
// first. It serves until a shutdown request, or until `stop_fd` (if >= 0) is readable or hung up
// (e.g. STDIN_FILENO: a key press or the end of its input; the read end of a pipe whose writer
// closes); with stop_fd -1, a program that mp started also stops when its parent ends. Returns
// only an error that stopped it from serving; when it stops, the process exits with status 0 (the
// serving threads are still running), as serve_forever() does.
//
// The default authkey is this process's (mp::CurrentProcess().authkey): right for a server that
// this program's own processes use; a server for other programs needs options.authkey.
absl::Status ServeManager(ManagerOptions options, Registrar registrar = nullptr,
                          std::function<void(const std::string& address)> on_listening = nullptr,
                          int stop_fd = -1);

}  // namespace mp

#endif  // MP_MANAGERS_MANAGER_H_
