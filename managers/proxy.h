// Copyright 2026 The mp Authors.
//
// managers/proxy.h — mp::BaseProxy: a reference to an object that lives in a manager's server
// (CPython's multiprocessing.managers.BaseProxy). The typed proxies (managers/collections.h for
// Dict, List, Namespace, Value, Array; managers/registry.h's Proxy<T> for registered classes)
// build on it.
//
// What a proxy is: a Token (the server's address, the authkey, the object's id and type) and a
// reference the server counts. The object lives while some proxy in some process refers to it
// (CPython's incref/decref): copies of a proxy in one process share one reference; a proxy that
// travels to another process (a spawn or forkserver argument, a Queue item, a Pipe message:
// every proxy has a Codec) takes a reference of its own when it is decoded there, and a fork
// child takes its own on its first call. When the last proxy of a process goes, its reference is
// dropped, and when a process dies holding proxies the server drops their references itself
// (managers/server.h). Hand a proxy over while you still hold it: a receiver that decodes it after
// every other reference is gone gets kNotFound (as CPython's).
//
// A proxy's bytes hold the manager's authkey (a receiver needs it to connect): send proxies only
// to processes you would give the authkey.
//
// Calls: each method of a proxy is one round trip to the server (managers/client.h). Errors are
// the method's own (KeyError is kNotFound...), or kUnavailable when the server cannot be reached
// or went away during the call, also for a call that was blocked in it; an empty proxy (default
// constructed or moved from) is kFailedPrecondition.
//
// Thread safety: a proxy object may be used by several threads at once (each call runs on a
// connection of its own).

#ifndef MP_MANAGERS_PROXY_H_
#define MP_MANAGERS_PROXY_H_

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/mutex.h"
#include "managers/token.h"
#include "managers/wire.h"
#include "serialize/codec.h"
#include "serialize/frame.h"

namespace mp {

namespace managers_internal {
class ServerClient;  // managers/client.h
template <typename Self>
class TypedProxy;  // managers/collections.h
}  // namespace managers_internal

// What a call returns: the encoded results, and the indices of those for which the server gave
// this process's session a reference (stored proxies, managers/wire.h Reply::given): decoding
// one of those (DecodeResult) takes that reference over.
struct CallResults {
  std::vector<std::string> values;
  std::vector<uint32_t> given;
  size_t size() const { return values.size(); }
};

class BaseProxy {
 public:
  // An empty proxy: every call is kFailedPrecondition.
  BaseProxy() = default;

  bool empty() const { return ref_ == nullptr; }
  // The token (an empty one for an empty proxy).
  const Token& token() const;

  // CPython's _callmethod: calls `method` with encoded arguments and returns the encoded results.
  // `signature` is the method's type fingerprint (0 for built-in types); `server_timeout` bounds a
  // blocking method's wait in the server (nullopt: no bound); `held_args` names the arguments that
  // are proxies of this server's objects for the object to keep alive (Request::held_args).
  absl::StatusOr<CallResults> CallMethod(
      absl::string_view method, std::vector<std::string> args, uint64_t signature = 0,
      std::optional<absl::Duration> server_timeout = std::nullopt,
      std::vector<uint32_t> held_args = {}) const;

  // A proxy for the object `token` names, with a reference of its own (an incref). kNotFound if
  // the object is gone, kUnavailable if its server cannot be reached.
  static absl::StatusOr<BaseProxy> Attach(Token token);
  // A proxy that takes over a reference this process's session already holds (the one a create
  // request or a method returning an object gave it).
  static BaseProxy Adopt(Token token);
  // Asks the server at `address` for a new object of `type_id` (a create request) and returns its
  // proxy. `type` / `type_name` are the fingerprint and name of the proxy type; `args` the
  // encoded constructor arguments; `signature` the fingerprint of their types (0: built-in).
  static absl::StatusOr<BaseProxy> Create(const std::string& address,
                                          const std::optional<std::string>& authkey,
                                          absl::string_view type_id, uint64_t type,
                                          std::string type_name, std::vector<std::string> args,
                                          uint64_t signature = 0);

 private:
  template <typename Self>
  friend class managers_internal::TypedProxy;

  // CallMethod's fast path (the typed proxies'): the arguments are written straight into the
  // request, and `on_result` gets the reply of a call that succeeded (its views valid until it
  // returns; it must not call through a proxy of the same server). Returns the call's status,
  // or else on_result's.
  absl::Status CallWith(
      absl::string_view method, uint64_t signature, std::optional<absl::Duration> server_timeout,
      absl::Span<const uint32_t> held_args, const managers_internal::RequestArgs& args,
      absl::FunctionRef<absl::Status(const managers_internal::ReplyView&)> on_result) const;

  // The reference: one per process, shared by the copies of a proxy in that process.
  struct Ref {
    Ref(Token t, std::shared_ptr<managers_internal::ServerClient> c, pid_t p)
        : token(std::move(t)), client(std::move(c)), pid(p) {}
    Ref(const Ref&) = delete;
    Ref& operator=(const Ref&) = delete;
    ~Ref();  // drops the reference (a decref), in the process that took it

    const Token token;
    const std::shared_ptr<managers_internal::ServerClient> client;
    const pid_t pid;
  };
  // The reference of this process: ref_, or (in a fork child, whose ref_ is its parent's) a new
  // one taken now.
  absl::StatusOr<std::shared_ptr<Ref>> ThisProcessRef() const;

  mutable Mutex mu_;  // guards ref_ replacing itself in a fork child
  mutable std::shared_ptr<Ref> ref_;

 public:
  BaseProxy(const BaseProxy& other) : ref_(other.Snapshot()) {}
  BaseProxy& operator=(const BaseProxy& other) {
    if (this != &other) {
      std::shared_ptr<Ref> ref = other.Snapshot();
      MutexLock lock(&mu_);
      ref_ = std::move(ref);
    }
    return *this;
  }
  BaseProxy(BaseProxy&& other) noexcept : ref_(other.Take()) {}
  BaseProxy& operator=(BaseProxy&& other) noexcept {
    if (this != &other) {
      std::shared_ptr<Ref> ref = other.Take();
      MutexLock lock(&mu_);
      ref_ = std::move(ref);
    }
    return *this;
  }

 private:
  std::shared_ptr<Ref> Snapshot() const {
    MutexLock lock(&mu_);
    return ref_;
  }
  std::shared_ptr<Ref> Take() {
    MutexLock lock(&mu_);
    return std::move(ref_);
  }
};

namespace managers_internal {

// A proxy type (every typed proxy derives from TypedProxy, which names the tag).
template <typename T>
concept IsProxy = requires {
  typename T::ProxyTag;
};

// True while DecodeResult decodes a result the server gave a reference for: the proxy's Codec
// then takes that reference over instead of asking for one. One decode only (it clears it).
bool& AdoptingDecode();

// Each argument encoded by its Codec as a Request argument (managers/wire.h), written straight
// into the request. Holds references to `args`: use it within the call's full expression.
template <typename... A>
class TypedArgs final : public RequestArgs {
 public:
  explicit TypedArgs(const A&... args) : values_(args...), sizes_{EncodedSize(args)...} {
    for (const size_t n : sizes_) size_ += VarintSize(n) + n;
  }
  size_t count() const override { return sizeof...(A); }
  size_t size() const override { return size_; }
  void Write(ByteWriter& w) const override {
    std::apply(
        [&](const A&... a) {
          size_t i = 0;
          ((w.WriteVarint(sizes_[i++]), Codec<A>::Encode(a, w)), ...);
          (void)i;
        },
        values_);
  }

 private:
  std::tuple<const A&...> values_;
  std::array<size_t, sizeof...(A)> sizes_;
  size_t size_ = 0;
};
template <typename... A>
TypedArgs<A...> EncodeArgs(const A&... args) {
  return TypedArgs<A...>(args...);
}

// Results of these types are decoded straight from the reply's bytes (decoding them cannot call
// the server, as a proxy's Codec does).
template <typename T>
inline constexpr bool kDecodesInPlace = std::is_arithmetic_v<T> || std::is_same_v<T, std::string>;

// Decodes result `i` of `results` (a reply's views) into `out`; kDataLoss naming `label`.`method`
// when the server sent fewer results or bytes of another shape (DecodeResult's messages).
template <typename T>
absl::Status DecodeResultInPlace(absl::Span<const absl::string_view> results, size_t i,
                                 absl::string_view label, absl::string_view method, T& out) {
  if (i >= results.size()) {
    return absl::DataLossError(absl::StrCat("manager: ", label, ".", method, " returned ",
                                            results.size(), " values, fewer than expected"));
  }
  if (absl::Status s = DecodeInto(AsBytes(results[i]), out); !s.ok()) {
    return absl::DataLossError(absl::StrCat("manager: ", label, ".", method,
                                            " returned a malformed ", TypeName<T>(), ": ",
                                            s.message()));
  }
  return absl::OkStatus();
}

// Decodes one result; kDataLoss naming the method when the server sent bytes of another shape.
template <typename T>
absl::StatusOr<T> DecodeResult(const std::vector<std::string>& results, size_t i,
                               absl::string_view method);
// The same for a call's results: a proxy the server gave a reference for takes it over.
template <typename T>
absl::StatusOr<T> DecodeResult(const CallResults& results, size_t i, absl::string_view method) {
  if constexpr (IsProxy<T>) {
    bool given = false;
    for (const uint32_t g : results.given) given = given || g == i;
    AdoptingDecode() = given;
    absl::StatusOr<T> out = DecodeResult<T>(results.values, i, method);
    AdoptingDecode() = false;
    return out;
  } else {
    return DecodeResult<T>(results.values, i, method);
  }
}

template <typename T>
absl::StatusOr<T> DecodeResult(const std::vector<std::string>& results, size_t i,
                               absl::string_view method) {
  if (i >= results.size()) {
    return absl::DataLossError(absl::StrCat("manager: ", method, " returned ", results.size(),
                                            " values, fewer than expected"));
  }
  absl::StatusOr<T> v = Decode<T>(results[i]);
  if (!v.ok()) {
    return absl::DataLossError(absl::StrCat("manager: ", method, " returned a malformed ",
                                            TypeName<T>(), ": ", v.status().message()));
  }
  return v;
}

// The Codec of every typed proxy: its Token; decoding attaches (an incref in this process) after
// checking that the token is of the type `Fingerprint` names.
template <typename P>
struct ProxyCodec {
  static constexpr size_t kMinSize = Codec<Token>::kMinSize;
  static size_t Size(const P& p) { return Codec<Token>::Size(p.token()); }
  static void Encode(const P& p, ByteWriter& w) { Codec<Token>::Encode(p.token(), w); }
  static absl::Status Decode(ByteReader& r, P& out) {
    Token token;
    if (absl::Status s = Codec<Token>::Decode(r, token); !s.ok()) return s;
    if (token.id == 0) {  // an empty proxy travels as an empty token
      AdoptingDecode() = false;
      out = P();
      return absl::OkStatus();
    }
    const uint64_t expected = P::TypeFingerprint();
    if (token.type != expected) {
      return absl::InvalidArgumentError(absl::StrCat("a proxy of a ", token.type_name,
                                                     " cannot be decoded as a ", P::TypeLabel()));
    }
    if (AdoptingDecode()) {
      AdoptingDecode() = false;
      out = P(BaseProxy::Adopt(std::move(token)));
      return absl::OkStatus();
    }
    absl::StatusOr<BaseProxy> attached = BaseProxy::Attach(std::move(token));
    if (!attached.ok()) return attached.status();
    out = P(*std::move(attached));
    return absl::OkStatus();
  }
};

}  // namespace managers_internal
}  // namespace mp

#endif  // MP_MANAGERS_PROXY_H_
