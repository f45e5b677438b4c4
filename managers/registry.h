// Copyright 2026 The mp Authors.
//
// managers/registry.h — sharing objects of your own C++ classes through a manager (CPython's
// BaseManager.register(typeid, callable, exposed=..., method_to_typeid=...)), and mp::Proxy<T>,
// their proxy.
//
// A registrar is a function at namespace scope that names the classes and their methods. It runs
// in the server (to make and call the objects) and, before main, in every process of a program
// that names it in BaseManager::Start<&R> or Connect<&R> (so a spawn child that receives a
// Proxy<T> knows T's methods, as Call<&Fn> makes every process know Fn): keep it to Register
// calls.
//
//   class Counter {
//    public:
//     explicit Counter(int64_t start) : n_(start) {}
//     int64_t Add(int64_t d) { return n_ += d; }
//     int64_t Get() const { return n_; }
//     absl::Status Reset(int64_t to);                         // a status travels back as itself
//    private:
//     int64_t n_;
//   };
//   Counter MakeCounter(int64_t start) { return Counter(start); }
//
//   void CounterTypes(mp::TypeRegistry& r) {
//     r.Register<Counter>("Counter", &MakeCounter)
//         .Expose<&Counter::Add>("add")
//         .Expose<&Counter::Get>("get")
//         .Expose<&Counter::Reset>("reset");
//   }
//
//   absl::StatusOr<mp::BaseManager> m = mp::BaseManager::Start<&CounterTypes>(ctx);
//   absl::StatusOr<mp::Proxy<Counter>> c = m->Create<Counter>(int64_t{10});
//   absl::StatusOr<int64_t> n = c->Call<&Counter::Add>(5);    // 15, computed in the server
//
// Rules:
//   * Methods are named by member pointers; every argument and result type needs a Codec
//     (serialize/codec.h): a method that has a type without one is a compile error at Expose.
//     A method may return void, a value, absl::Status or absl::StatusOr<V>; Call<&M> returns
//     absl::Status for the first and third, absl::StatusOr<V> for the others.
//   * The factory is a function (R(*)(A...), R being T, absl::StatusOr<T>, std::unique_ptr<T> or
//     std::shared_ptr<T>); without one, T is default-constructed. A factory returning a
//     std::shared_ptr<T> may hand out one object it keeps to every Create (CPython's
//     register('get_queue', callable=lambda: queue)): the calls of all its proxies then share one
//     mutex (unless ThreadSafe()), and the object outlives them as the factory decides.
//     Create<T>(args...) must pass exactly the factory's parameter types (checked by the server:
//     kInvalidArgument naming both).
//   * ExposeProxy<&M>("name"): a method that returns a U by value (U registered too, before T)
//     makes a new shared object of it in the server; CallProxy<&M> returns its mp::Proxy<U>
//     (CPython's method_to_typeid).
//   * The methods of one object run one at a time (a mutex per object), so a class needs no
//     locking of its own; `.ThreadSafe()` lifts that for a class that synchronizes itself (and
//     may block in a method without holding up its other callers). Such a class should lock with
//     std::mutex rather than absl::Mutex when it is tested under TSan: the system Abseil is not
//     built with TSan, so TSan cannot see absl::Mutex's synchronization.
//   * A method that throws gets its caller kUnknown naming the exception; the server goes on.
//   * A call whose method name or argument types do not match the server's registration (a client
//     built from other source) is kInvalidArgument naming the method and both signatures.

#ifndef MP_MANAGERS_REGISTRY_H_
#define MP_MANAGERS_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeindex>
#include <typeinfo>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/exception.h"
#include "base/mutex.h"
#include "managers/collections.h"
#include "managers/proxy.h"
#include "managers/served_object.h"
#include "serialize/codec.h"
#include "serialize/status.h"

namespace mp {

class TypeRegistry;
template <typename T>
class Proxy;

namespace managers_internal {

// The parts of a member function pointer.
template <typename M>
struct MethodTraits;
template <typename C, typename R, typename... A>
struct MethodTraits<R (C::*)(A...)> {
  using Class = C;
  using Result = R;
  using Args = std::tuple<std::decay_t<A>...>;
};
template <typename C, typename R, typename... A>
struct MethodTraits<R (C::*)(A...) const> : MethodTraits<R (C::*)(A...)> {};
template <typename C, typename R, typename... A>
struct MethodTraits<R (C::*)(A...) noexcept> : MethodTraits<R (C::*)(A...)> {};
template <typename C, typename R, typename... A>
struct MethodTraits<R (C::*)(A...) const noexcept> : MethodTraits<R (C::*)(A...)> {};

// What a call of a method returning R gives its caller, and the value that travels.
template <typename R>
struct ResultShape {
  using Value = R;
  using Returned = absl::StatusOr<R>;
};
template <>
struct ResultShape<void> {
  using Value = void;
  using Returned = absl::Status;
};
template <>
struct ResultShape<absl::Status> {
  using Value = void;
  using Returned = absl::Status;
};
template <typename V>
struct ResultShape<absl::StatusOr<V>> {
  using Value = V;
  using Returned = absl::StatusOr<V>;
};

template <typename V>
std::string ValueName() {
  if constexpr (std::is_void_v<V>) {
    return "void";
  } else {
    return TypeName<V>();
  }
}

template <typename Args, typename R>
std::string SignatureText() {
  return absl::StrCat(TypeName<Args>(), "->",
                      ValueName<typename ResultShape<std::decay_t<R>>::Value>());
}

// The name a method was exposed under in this process, set by Expose.
template <auto M>
struct ExposedName {
  static inline std::atomic<const std::string*> name{nullptr};
};
// The typeid a class was registered under in this process, set by Register.
template <typename T>
struct RegisteredType {
  static inline std::atomic<const std::string*> type_id{nullptr};
};
inline uint64_t RegisteredFingerprint(absl::string_view type_id) {
  return Fingerprint(absl::StrCat("mp::Proxy<", type_id, ">"));
}

template <typename T>
struct Method {
  uint64_t signature = 0;
  std::string signature_text;
  std::function<absl::Status(T&, CallContext&, const std::string&, std::vector<std::string>&)>
      invoke;
};

template <typename T>
struct MethodTable {
  std::string type_id;
  std::string type_name;  // "mp::Proxy<Counter>"
  uint64_t type = 0;
  bool thread_safe = false;
  absl::flat_hash_map<std::string, Method<T>> methods;
};

// An object of a registered class in the server.
template <typename T>
class UserObject : public ServedObject {
 public:
  // `mu` serializes the calls of `value` (unless the class is thread-safe): the object's own, or,
  // for an object a factory shares among proxies, its registration's one mutex.
  UserObject(std::shared_ptr<T> value, std::shared_ptr<const MethodTable<T>> table,
             std::shared_ptr<Mutex> mu)
      : value_(std::move(value)), table_(std::move(table)), mu_(std::move(mu)) {}
  uint64_t type() const override { return table_->type; }
  const std::string& type_name() const override { return table_->type_name; }

  absl::Status Call(CallContext& context, absl::string_view method, uint64_t signature,
                    absl::Span<const std::string> args,
                    std::vector<std::string>& results) override {
    auto it = table_->methods.find(method);
    if (it == table_->methods.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(table_->type_id, " exposes no method '", absl::CHexEscape(method), "'"));
    }
    const Method<T>& m = it->second;
    if (signature != m.signature) {
      return absl::InvalidArgumentError(
          absl::StrCat(table_->type_id, ".", method, " is ", m.signature_text,
                       " in the server; the caller was built with another signature (fingerprint ",
                       signature, ")"));
    }
    if (args.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(table_->type_id, ".", method,
                                                     ": a call carries its arguments as one "
                                                     "value, this one sent ",
                                                     args.size()));
    }
    if (table_->thread_safe) return m.invoke(*value_, context, args[0], results);
    MutexLock lock(mu_.get());
    return m.invoke(*value_, context, args[0], results);
  }

 private:
  const std::shared_ptr<T> value_;
  const std::shared_ptr<const MethodTable<T>> table_;
  const std::shared_ptr<Mutex> mu_;
};

// Decodes a call's arguments (one encoded tuple); kInvalidArgument naming `what` when malformed.
template <typename Args>
absl::Status DecodeArgs(absl::string_view what, const std::string& bytes, Args& args) {
  if (absl::Status s = DecodeInto(AsBytes(bytes), args); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": malformed arguments: ", s.message()));
  }
  return absl::OkStatus();
}

// Runs f (a call of user code), turning an exception into kUnknown naming it.
template <typename F>
absl::Status Guarded(absl::string_view what, F&& f) {
  try {
    return f();
  } catch (...) {
    return absl::UnknownError(absl::StrCat(what, " threw ", CurrentExceptionDescription()));
  }
}

// Whether a factory returning R hands out one object it keeps (std::shared_ptr<T>: CPython's
// register('get_queue', callable=lambda: queue)) rather than a new one per call.
template <typename T, typename R>
constexpr bool kSharesObject = std::is_same_v<std::decay_t<R>, std::shared_ptr<T>>;

// The kinds of factory Register takes, as one that returns a shared_ptr.
template <typename T, typename R>
absl::StatusOr<std::shared_ptr<T>> OwnedResult(R&& r) {
  using D = std::decay_t<R>;
  if constexpr (std::is_same_v<D, std::unique_ptr<T>> || std::is_same_v<D, std::shared_ptr<T>>) {
    if (r == nullptr) return absl::InternalError("the factory returned a null pointer");
    return std::shared_ptr<T>(std::move(r));
  } else if constexpr (std::is_same_v<D, absl::StatusOr<T>>) {
    if (!r.ok()) return r.status();
    return std::make_shared<T>(*std::move(r));
  } else {
    static_assert(std::is_same_v<D, T>,
                  "mp::TypeRegistry::Register: a factory returns T, absl::StatusOr<T>, "
                  "std::unique_ptr<T> or std::shared_ptr<T>");
    return std::make_shared<T>(std::move(r));
  }
}

class RegistrationBase {
 public:
  virtual ~RegistrationBase() = default;
  virtual absl::Status AddTo(TypeTable& table) const = 0;
};

// Runs `registrar` into a registry of its own: what it leaves behind is the names this process
// calls methods by (ExposedName, RegisteredType).
bool RecordNames(void (*registrar)(TypeRegistry&));

// One per registrar a program names: runs it before main in every process of the program.
template <void (*R)(TypeRegistry&)>
struct RegistrarNames {
  static inline const bool recorded = RecordNames(R);
};
// No registrar: nothing to record. (A specialization, not `if constexpr (R != nullptr)`: GCC with
// -fsanitize does not take the address of an inline function, which a registrar in a header is,
// as a constant it may compare.)
template <>
struct RegistrarNames<nullptr> {
  static inline const bool recorded = false;
};

}  // namespace managers_internal

// The exposed methods of one registered class (see the header comment).
template <typename T>
class Registration : public managers_internal::RegistrationBase {
 public:
  // Exposes the method M (a member function of T) under `name`.
  template <auto M>
  Registration& Expose(std::string name) {
    using Traits = managers_internal::MethodTraits<decltype(M)>;
    static_assert(std::is_same_v<typename Traits::Class, T>,
                  "Registration<T>::Expose<&C::M>: M must be a member function of T");
    using Args = typename Traits::Args;
    using R = std::decay_t<typename Traits::Result>;
    using V = typename managers_internal::ResultShape<R>::Value;
    RequireArgCodecs(static_cast<Args*>(nullptr));
    if constexpr (!std::is_void_v<V>) RequireCodec<V>();
    managers_internal::Method<T> method;
    method.signature_text = managers_internal::SignatureText<Args, R>();
    method.signature = Fingerprint(method.signature_text);
    const std::string label = absl::StrCat(table_->type_id, ".", name);
    method.invoke = [label](T& object, managers_internal::CallContext&, const std::string& bytes,
                            std::vector<std::string>& results) -> absl::Status {
      Args args;
      if (absl::Status s = managers_internal::DecodeArgs(label, bytes, args); !s.ok()) return s;
      return managers_internal::Guarded(label, [&]() -> absl::Status {
        auto call = [&]() -> decltype(auto) {
          return std::apply(
              [&](auto&... a) -> decltype(auto) { return (object.*M)(std::move(a)...); }, args);
        };
        if constexpr (std::is_void_v<R>) {
          call();
          return absl::OkStatus();
        } else if constexpr (std::is_same_v<R, absl::Status>) {
          return call();
        } else if constexpr (std::is_void_v<V>) {
          return absl::OkStatus();
        } else {
          R r = call();
          if constexpr (std::is_same_v<R, absl::StatusOr<V>>) {
            if (!r.ok()) return r.status();
            results.push_back(Encode(*r));
          } else {
            results.push_back(Encode(r));
          }
          return absl::OkStatus();
        }
      });
    };
    Add<M>(std::move(name), std::move(method));
    return *this;
  }

  // Exposes M, which returns a U (or absl::StatusOr<U>) of a class registered before T: each call
  // makes a new shared object of the result, and CallProxy<&M> returns its Proxy<U>.
  template <auto M>
  Registration& ExposeProxy(std::string name);

  // The methods of one object may run at once (the class synchronizes itself).
  Registration& ThreadSafe() {
    table_->thread_safe = true;
    return *this;
  }

  const std::string& type_id() const { return table_->type_id; }

 private:
  friend class TypeRegistry;
  using Factory = std::function<absl::StatusOr<std::shared_ptr<T>>(const std::string& args)>;

  // `shares`: the factory hands out one object it keeps (a std::shared_ptr<T>), so the calls of
  // all the proxies it made go through one mutex.
  Registration(TypeRegistry* registry, std::string type_id, Factory factory,
               std::string factory_signature, bool shares)
      : registry_(registry),
        table_(std::make_shared<managers_internal::MethodTable<T>>()),
        factory_(std::move(factory)),
        factory_signature_(std::move(factory_signature)),
        shared_mu_(shares ? std::make_shared<Mutex>() : nullptr) {
    table_->type_id = std::move(type_id);
    table_->type_name = absl::StrCat("mp::Proxy<", table_->type_id, ">");
    table_->type = managers_internal::RegisteredFingerprint(table_->type_id);
  }

  template <typename... A>
  static void RequireArgCodecs(std::tuple<A...>*) {
    (RequireCodec<A>(), ...);
  }

  template <auto M>
  void Add(std::string name, managers_internal::Method<T> method);

  absl::Status AddTo(managers_internal::TypeTable& table) const override {
    std::shared_ptr<const managers_internal::MethodTable<T>> methods = table_;
    Factory factory = factory_;
    const uint64_t factory_fp = Fingerprint(factory_signature_);
    const std::string factory_text = factory_signature_;
    std::shared_ptr<Mutex> shared_mu = shared_mu_;
    return table.Add(
        table_->type_id,
        [methods, factory, factory_fp, factory_text, shared_mu](uint64_t type, absl::string_view,
                                                                absl::Span<const std::string> args)
            -> absl::StatusOr<std::shared_ptr<managers_internal::ServedObject>> {
          if (type != methods->type) {
            return absl::InvalidArgumentError(absl::StrCat(
                "the typeid '", methods->type_id, "' is not the type the caller asked for"));
          }
          // args: the factory's signature fingerprint, then its arguments as one value.
          if (args.size() != 2 || args[0] != Encode(factory_fp)) {
            return absl::InvalidArgumentError(
                absl::StrCat("the factory of '", methods->type_id, "' takes ", factory_text,
                             "; the create call sent other arguments"));
          }
          absl::StatusOr<std::shared_ptr<T>> made = factory(args[1]);
          if (!made.ok()) return made.status();
          return std::make_shared<managers_internal::UserObject<T>>(
              *std::move(made), methods,
              shared_mu != nullptr ? shared_mu : std::make_shared<Mutex>());
        });
  }

  TypeRegistry* const registry_;
  std::shared_ptr<managers_internal::MethodTable<T>> table_;
  Factory factory_;
  std::string factory_signature_;
  std::shared_ptr<Mutex> shared_mu_;  // null unless the factory shares its object
};

// What a registrar fills: the classes a manager's server can make. Errors (a typeid registered
// twice, ExposeProxy of a class not registered) are collected and reported by status(), which
// the manager checks before it starts.
class TypeRegistry {
 public:
  TypeRegistry() = default;
  TypeRegistry(const TypeRegistry&) = delete;
  TypeRegistry& operator=(const TypeRegistry&) = delete;

  // A class made by default construction.
  template <typename T>
  Registration<T>& Register(std::string type_id) {
    static_assert(std::is_default_constructible_v<T>,
                  "mp::TypeRegistry::Register<T>(typeid): T has no default constructor; pass a "
                  "factory");
    return Emplace<T>(
        std::move(type_id),
        [](const std::string& bytes) -> absl::StatusOr<std::shared_ptr<T>> {
          std::tuple<> none;
          if (absl::Status s = DecodeInto(AsBytes(bytes), none); !s.ok()) return s;
          return std::make_shared<T>();
        },
        TypeName<std::tuple<>>(), /*shares=*/false);
  }
  // A class made by `factory(args...)` (see the header comment).
  template <typename T, typename R, typename... A>
  Registration<T>& Register(std::string type_id, R (*factory)(A...)) {
    using Args = std::tuple<std::decay_t<A>...>;
    (RequireCodec<std::decay_t<A>>(), ...);
    const std::string label = type_id;
    return Emplace<T>(
        std::move(type_id),
        [factory, label](const std::string& bytes) -> absl::StatusOr<std::shared_ptr<T>> {
          Args args;
          if (absl::Status s = managers_internal::DecodeArgs(
                  absl::StrCat("the factory of '", label, "'"), bytes, args);
              !s.ok()) {
            return s;
          }
          absl::StatusOr<std::shared_ptr<T>> out;
          absl::Status s = managers_internal::Guarded(
              absl::StrCat("the factory of '", label, "'"), [&]() -> absl::Status {
                out = managers_internal::OwnedResult<T>(std::apply(factory, std::move(args)));
                return absl::OkStatus();
              });
          if (!s.ok()) return s;
          return out;
        },
        TypeName<Args>(), managers_internal::kSharesObject<T, R>);
  }

  // Every error the registrations met (OK if none).
  const absl::Status& status() const { return status_; }
  // The registered typeids, in registration order.
  std::vector<std::string> type_ids() const { return type_ids_; }

  // Adds every registered class to a server's table (managers/manager.cc).
  absl::Status AddTo(managers_internal::TypeTable& table) const {
    absl::Status s = status_;
    for (const auto& r : registrations_) s.Update(r->AddTo(table));
    return s;
  }

 private:
  template <typename U>
  friend class Registration;

  template <typename T>
  Registration<T>& Emplace(std::string type_id, typename Registration<T>::Factory factory,
                           std::string signature, bool shares) {
    type_ids_.push_back(type_id);
    auto* r = new Registration<T>(this, type_id, std::move(factory), std::move(signature), shares);
    registrations_.emplace_back(r);
    tables_[std::type_index(typeid(T))] = r->table_;
    // The names this process uses to call the class (the first registration wins).
    if (managers_internal::RegisteredType<T>::type_id.load() == nullptr) {
      auto* mine = new std::string(type_id);
      const std::string* expected = nullptr;
      if (!managers_internal::RegisteredType<T>::type_id.compare_exchange_strong(expected, mine)) {
        delete mine;
      }
    }
    return *r;
  }
  void Fail(absl::Status s) { status_.Update(std::move(s)); }

  absl::Status status_;
  std::vector<std::string> type_ids_;
  std::vector<std::unique_ptr<managers_internal::RegistrationBase>> registrations_;
  absl::flat_hash_map<std::type_index, std::shared_ptr<void>> tables_;
};

namespace managers_internal {
inline bool RecordNames(void (*registrar)(TypeRegistry&)) {
  TypeRegistry registry;
  registrar(registry);
  return registry.status().ok();
}
}  // namespace managers_internal

template <typename T>
template <auto M>
void Registration<T>::Add(std::string name, managers_internal::Method<T> method) {
  if (!table_->methods.emplace(name, std::move(method)).second) {
    registry_->Fail(absl::AlreadyExistsError(
        absl::StrCat(table_->type_id, " exposes two methods named '", name, "'")));
    return;
  }
  // The first registration names it; later runs of a registrar allocate nothing.
  if (managers_internal::ExposedName<M>::name.load() == nullptr) {
    auto* mine = new std::string(name);
    const std::string* expected = nullptr;
    if (!managers_internal::ExposedName<M>::name.compare_exchange_strong(expected, mine)) {
      delete mine;
    }
  }
}

template <typename T>
template <auto M>
Registration<T>& Registration<T>::ExposeProxy(std::string name) {
  using Traits = managers_internal::MethodTraits<decltype(M)>;
  static_assert(std::is_same_v<typename Traits::Class, T>,
                "Registration<T>::ExposeProxy<&C::M>: M must be a member function of T");
  using Args = typename Traits::Args;
  using R = std::decay_t<typename Traits::Result>;
  using U = typename managers_internal::ResultShape<R>::Value;
  static_assert(!std::is_void_v<U>, "ExposeProxy<&M>: M must return the object to share");
  RequireArgCodecs(static_cast<Args*>(nullptr));
  auto found = registry_->tables_.find(std::type_index(typeid(U)));
  if (found == registry_->tables_.end()) {
    registry_->Fail(absl::FailedPreconditionError(absl::StrCat(
        table_->type_id, ".", name, " returns a class that is not registered (register it before ",
        table_->type_id, ")")));
    return *this;
  }
  std::shared_ptr<const managers_internal::MethodTable<U>> result_table =
      std::static_pointer_cast<const managers_internal::MethodTable<U>>(found->second);
  managers_internal::Method<T> method;
  method.signature_text = absl::StrCat(TypeName<Args>(), "->", result_table->type_name);
  method.signature = Fingerprint(method.signature_text);
  const std::string label = absl::StrCat(table_->type_id, ".", name);
  // Weak: a class whose method returns the class itself would otherwise keep its own table alive
  // (a cycle). The server's TypeTable holds every table for as long as it serves.
  std::weak_ptr<const managers_internal::MethodTable<U>> weak_table = result_table;
  method.invoke = [label, weak_table](T& object, managers_internal::CallContext& context,
                                      const std::string& bytes,
                                      std::vector<std::string>& results) -> absl::Status {
    Args args;
    if (absl::Status s = managers_internal::DecodeArgs(label, bytes, args); !s.ok()) return s;
    std::shared_ptr<const managers_internal::MethodTable<U>> table = weak_table.lock();
    if (table == nullptr) {
      return absl::InternalError(absl::StrCat(label, ": the result's class is not served"));
    }
    std::shared_ptr<U> made;
    absl::Status s = managers_internal::Guarded(label, [&]() -> absl::Status {
      absl::StatusOr<std::shared_ptr<U>> r = managers_internal::OwnedResult<U>(
          std::apply([&](auto&... a) -> R { return (object.*M)(std::move(a)...); }, args));
      if (!r.ok()) return r.status();
      made = *std::move(r);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    const uint64_t id = context.Adopt(std::make_shared<managers_internal::UserObject<U>>(
        std::move(made), std::move(table), std::make_shared<Mutex>()));
    results.push_back(Encode(id));
    return absl::OkStatus();
  };
  Add<M>(std::move(name), std::move(method));
  return *this;
}

// A proxy of an object of a registered class T (see the header comment).
template <typename T>
class Proxy : public managers_internal::TypedProxy<Proxy<T>> {
  using Base = managers_internal::TypedProxy<Proxy<T>>;

 public:
  Proxy() = default;

  // "mp::Proxy<typeid>", or a name saying T is not registered in this process.
  static std::string TypeLabel() {
    const std::string* id = managers_internal::RegisteredType<T>::type_id.load();
    return id == nullptr
               ? absl::StrCat("mp::Proxy<", typeid(T).name(), " (not registered in this process)>")
               : absl::StrCat("mp::Proxy<", *id, ">");
  }
  static uint64_t TypeFingerprint() {
    const std::string* id = managers_internal::RegisteredType<T>::type_id.load();
    return id == nullptr ? 0 : managers_internal::RegisteredFingerprint(*id);
  }

  // Calls M (exposed by this process's registrar) on the object in the server.
  template <auto M, typename... A>
  auto Call(A&&... args) const -> typename managers_internal::ResultShape<
      std::decay_t<typename managers_internal::MethodTraits<decltype(M)>::Result>>::Returned {
    using Traits = managers_internal::MethodTraits<decltype(M)>;
    using R = std::decay_t<typename Traits::Result>;
    using V = typename managers_internal::ResultShape<R>::Value;
    absl::StatusOr<CallResults> r = Send<M>(std::forward<A>(args)...);
    if (!r.ok()) return r.status();
    if constexpr (std::is_void_v<V>) {
      return absl::OkStatus();
    } else {
      return managers_internal::DecodeResult<V>(*r, 0, Name<M>());
    }
  }

  // Calls M, exposed with ExposeProxy: the new object's proxy.
  template <auto M, typename... A>
  auto CallProxy(A&&... args) const -> absl::StatusOr<Proxy<typename managers_internal::ResultShape<
      std::decay_t<typename managers_internal::MethodTraits<decltype(M)>::Result>>::Value>> {
    using Traits = managers_internal::MethodTraits<decltype(M)>;
    using U = typename managers_internal::ResultShape<std::decay_t<typename Traits::Result>>::Value;
    absl::StatusOr<CallResults> r =
        SendAs<M>(absl::StrCat(mp::TypeName<typename Traits::Args>(), "->", Proxy<U>::TypeLabel()),
                  std::forward<A>(args)...);
    if (!r.ok()) return r.status();
    absl::StatusOr<uint64_t> id = managers_internal::DecodeResult<uint64_t>(*r, 0, Name<M>());
    if (!id.ok()) return id.status();
    const Token& mine = this->token();
    return Proxy<U>(BaseProxy::Adopt(Token{mine.address, mine.authkey, *id,
                                           Proxy<U>::TypeFingerprint(), Proxy<U>::TypeLabel()}));
  }

 private:
  template <typename U>
  friend class Proxy;
  friend class BaseManager;
  friend struct managers_internal::ProxyCodec<Proxy>;
  explicit Proxy(BaseProxy base) : Base(std::move(base)) {}

  template <auto M>
  static std::string Name() {
    const std::string* n = managers_internal::ExposedName<M>::name.load();
    return absl::StrCat(TypeLabel(), ".", n == nullptr ? "?" : *n);
  }
  template <auto M, typename... A>
  absl::StatusOr<CallResults> Send(A&&... args) const {
    using Traits = managers_internal::MethodTraits<decltype(M)>;
    return SendAs<M>(managers_internal::SignatureText<typename Traits::Args,
                                                      std::decay_t<typename Traits::Result>>(),
                     std::forward<A>(args)...);
  }
  template <auto M, typename... A>
  absl::StatusOr<CallResults> SendAs(const std::string& signature, A&&... args) const {
    using Traits = managers_internal::MethodTraits<decltype(M)>;
    static_assert(std::is_same_v<typename Traits::Class, T>,
                  "Proxy<T>::Call<&C::M>: M must be a member function of T");
    using Args = typename Traits::Args;
    static_assert(std::tuple_size_v<Args> == sizeof...(A),
                  "Proxy<T>::Call<&M>(args...): the number of arguments does not match M's");
    const std::string* name = managers_internal::ExposedName<M>::name.load();
    if (name == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "a method of ", TypeLabel(),
          " was called that this process's registrar did not expose (run the same registrar "
          "here: BaseManager::Start<&R> or Connect<&R>)"));
    }
    Args values(std::forward<A>(args)...);
    return this->base_.CallMethod(*name, {Encode(values)}, Fingerprint(signature));
  }
};

template <typename T>
struct Codec<Proxy<T>> : managers_internal::ProxyCodec<Proxy<T>> {
  static std::string Name() { return absl::StrCat("mp::Proxy<", typeid(T).name(), ">"); }
};

}  // namespace mp

#endif  // MP_MANAGERS_REGISTRY_H_
