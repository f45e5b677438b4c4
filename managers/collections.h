// Copyright 2026 The mp Authors.
//
// managers/collections.h — proxies of the built-in shared collections of a Manager: DictProxy,
// ListProxy, NamespaceProxy, ValueProxy, ArrayProxy (CPython's DictProxy, ListProxy,
// NamespaceProxy, and the Value / Array of a SyncManager). Get them from a Manager
// (managers/manager.h):
//
//   absl::StatusOr<mp::Manager> m = ctx->Manager();
//   absl::StatusOr<mp::DictProxy<std::string, int64_t>> d = m->Dict<std::string, int64_t>();
//   d->Set("a", 1).IgnoreError();
//   absl::StatusOr<int64_t> a = d->Get("a");               // 1; kNotFound for a missing key
//   absl::StatusOr<mp::ListProxy<int64_t>> l = m->List<int64_t>({1, 2, 3});
//   l->Append(4).IgnoreError();
//   ctx->Process<&Worker>(*d, *l);                          // proxies travel to every start method
//
// Keys and values travel by their Codecs; the server keeps them as bytes (managers/builtins.h), so
// two keys are one key when their encodings are equal. Every method is one round trip and atomic
// (the object's methods run one at a time in the server). Reads return copies: mutating what
// Get() returned changes nothing in the server (as CPython's `d[k].append(x)` does not), so
// write the new value back with Set.
//
// Nested proxies: a value that is itself a proxy of the same manager (a DictProxy whose values are
// ListProxy<T>, a ListProxy of DictProxy...) keeps its object alive while it is stored, as
// CPython's nested proxies do, and a proxy read back from a container is a full proxy of that
// object. Only a value that is a proxy is kept (not a proxy inside a struct or a vector), and a
// proxy of another manager cannot be stored (kInvalidArgument).
//
// Errors: a missing key is kNotFound (KeyError), an index out of range kOutOfRange (IndexError), a
// value not in a list kNotFound (ValueError), a missing attribute kNotFound (AttributeError), a
// Namespace attribute read as another type than it was written kInvalidArgument; the rest are
// BaseProxy's (managers/proxy.h).

#ifndef MP_MANAGERS_COLLECTIONS_H_
#define MP_MANAGERS_COLLECTIONS_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "managers/proxy.h"
#include "serialize/codec.h"

namespace mp {

class BaseManager;

namespace managers_internal {

// What the typed proxies share: a BaseProxy, and calls that decode their results.
template <typename Self>
class TypedProxy {
 public:
  using ProxyTag = void;  // managers_internal::IsProxy

  bool empty() const { return base_.empty(); }
  const Token& token() const { return base_.token(); }
  const BaseProxy& base() const { return base_; }

  // The type's fingerprint (Token::type) and its name.
  static uint64_t TypeFingerprint() {
    static const uint64_t fp = Fingerprint(Self::TypeLabel());
    return fp;
  }

 protected:
  TypedProxy() = default;
  explicit TypedProxy(BaseProxy base) : base_(std::move(base)) {}

  absl::Status None(absl::string_view m, const std::vector<std::string>& args = {},
                    absl::Span<const uint32_t> held = {}) const {
    return None(m, StringArgs(args), held);
  }
  absl::Status None(absl::string_view m, const RequestArgs& args,
                    absl::Span<const uint32_t> held = {}) const {
    return base_.CallWith(m, 0, std::nullopt, held, args,
                          [](const ReplyView&) { return absl::OkStatus(); });
  }
  // Argument `index` will be `v`: if it is a proxy (a Dict value that is a ListProxy), the server
  // keeps its object alive while it is stored. A proxy of another manager cannot be stored here
  // (kInvalidArgument): its object would not be kept.
  template <typename V>
  absl::Status MarkHeld(const V& v, uint32_t index, std::vector<uint32_t>& held) const {
    if constexpr (IsProxy<V>) {
      if (v.empty()) return absl::OkStatus();
      if (v.token().address != token().address) {
        return absl::InvalidArgumentError(
            absl::StrCat(Self::TypeLabel(), ": a proxy of the manager at ", v.token().address,
                         " cannot be stored in an object of the manager at ", token().address));
      }
      held.push_back(index);
    }
    return absl::OkStatus();
  }
  template <typename R>
  absl::StatusOr<R> One(absl::string_view m, const std::vector<std::string>& args = {},
                        absl::Span<const uint32_t> held = {}) const {
    return One<R>(m, StringArgs(args), held);
  }
  template <typename R>
  absl::StatusOr<R> One(absl::string_view m, const RequestArgs& args,
                        absl::Span<const uint32_t> held = {}) const {
    if constexpr (kDecodesInPlace<R>) {
      R out{};
      if (absl::Status s = base_.CallWith(m, 0, std::nullopt, held, args,
                                          [&](const ReplyView& reply) {
                                            return DecodeResultInPlace<R>(
                                                reply.results, 0, Self::TypeLabel(), m, out);
                                          });
          !s.ok()) {
        return s;
      }
      return out;
    } else {
      CallResults r;
      if (absl::Status s = base_.CallWith(m, 0, std::nullopt, held, args,
                                          [&r](const ReplyView& reply) {
                                            CopyResults(reply, r.values, r.given);
                                            return absl::OkStatus();
                                          });
          !s.ok()) {
        return s;
      }
      return DecodeResult<R>(r, 0, Label(m));
    }
  }
  template <typename R>
  absl::StatusOr<std::vector<R>> Many(absl::string_view m,
                                      const std::vector<std::string>& args = {}) const {
    return Many<R>(m, StringArgs(args));
  }
  template <typename R>
  absl::StatusOr<std::vector<R>> Many(absl::string_view m, const RequestArgs& args) const {
    CallResults r;
    if (absl::Status s = base_.CallWith(m, 0, std::nullopt, {}, args,
                                        [&r](const ReplyView& reply) {
                                          CopyResults(reply, r.values, r.given);
                                          return absl::OkStatus();
                                        });
        !s.ok()) {
      return s;
    }
    const std::string label = Label(m);
    std::vector<R> out;
    out.reserve(r.size());
    for (size_t i = 0; i < r.size(); ++i) {
      absl::StatusOr<R> v = DecodeResult<R>(r, i, label);
      if (!v.ok()) return v.status();
      out.push_back(*std::move(v));
    }
    return out;
  }
  std::string Label(absl::string_view m) const { return absl::StrCat(Self::TypeLabel(), ".", m); }

  BaseProxy base_;
};

template <typename T>
std::vector<std::string> EncodeEach(absl::Span<const T> values) {
  std::vector<std::string> out;
  out.reserve(values.size());
  for (const T& v : values) out.push_back(Encode(v));
  return out;
}

}  // namespace managers_internal

// dict: keys K, values V (each with a Codec). Insertion-ordered, as Python's.
template <typename K, typename V>
class DictProxy : public managers_internal::TypedProxy<DictProxy<K, V>> {
  using Base = managers_internal::TypedProxy<DictProxy<K, V>>;

 public:
  static constexpr absl::string_view kTypeId = "dict";
  static const std::string& TypeLabel() {
    static const std::string* const label =
        new std::string(absl::StrCat("mp::DictProxy<", TypeName<K>(), ",", TypeName<V>(), ">"));
    return *label;
  }

  DictProxy() = default;

  // d[k]: kNotFound when k is not in the dict.
  absl::StatusOr<V> Get(const K& k) const {
    return this->template One<V>("getitem", managers_internal::EncodeArgs(k));
  }
  // d.get(k, default)
  absl::StatusOr<V> Get(const K& k, V default_value) const {
    absl::StatusOr<V> v = Get(k);
    if (v.status().code() == absl::StatusCode::kNotFound) return default_value;
    return v;
  }
  // d[k] = v
  absl::Status Set(const K& k, const V& v) const {
    std::vector<uint32_t> held;
    if (absl::Status s = this->MarkHeld(v, 1, held); !s.ok()) return s;
    return this->None("setitem", managers_internal::EncodeArgs(k, v), std::move(held));
  }
  // del d[k]: kNotFound when k is not in the dict.
  absl::Status Erase(const K& k) const {
    return this->None("delitem", managers_internal::EncodeArgs(k));
  }
  absl::StatusOr<bool> Contains(const K& k) const {
    return this->template One<bool>("contains", managers_internal::EncodeArgs(k));
  }
  absl::StatusOr<size_t> Size() const {
    absl::StatusOr<uint64_t> n = this->template One<uint64_t>("len");
    if (!n.ok()) return n.status();
    return static_cast<size_t>(*n);
  }
  absl::StatusOr<std::vector<std::pair<K, V>>> Items() const {
    absl::StatusOr<CallResults> r = this->base_.CallMethod("items", {});
    if (!r.ok()) return r.status();
    if (r->size() % 2 != 0) {
      return absl::DataLossError(absl::StrCat(this->Label("items"), " returned an odd count"));
    }
    std::vector<std::pair<K, V>> out;
    out.reserve(r->size() / 2);
    for (size_t i = 0; i < r->size(); i += 2) {
      absl::StatusOr<K> k = managers_internal::DecodeResult<K>(*r, i, this->Label("items"));
      if (!k.ok()) return k.status();
      absl::StatusOr<V> v = managers_internal::DecodeResult<V>(*r, i + 1, this->Label("items"));
      if (!v.ok()) return v.status();
      out.emplace_back(*std::move(k), *std::move(v));
    }
    return out;
  }
  absl::StatusOr<std::vector<K>> Keys() const { return this->template Many<K>("keys"); }
  absl::StatusOr<std::vector<V>> Values() const { return this->template Many<V>("values"); }
  // d.update(pairs): one call, atomic.
  absl::Status Update(absl::Span<const std::pair<K, V>> pairs) const {
    std::vector<std::string> args;
    std::vector<uint32_t> held;
    args.reserve(pairs.size() * 2);
    for (const auto& [k, v] : pairs) {
      if (absl::Status s = this->MarkHeld(v, static_cast<uint32_t>(args.size() + 1), held);
          !s.ok()) {
        return s;
      }
      args.push_back(Encode(k));
      args.push_back(Encode(v));
    }
    return this->None("update", std::move(args), std::move(held));
  }
  // d.pop(k): kNotFound when absent; d.pop(k, default).
  absl::StatusOr<V> Pop(const K& k) const {
    return this->template One<V>("pop", managers_internal::EncodeArgs(k));
  }
  absl::StatusOr<V> Pop(const K& k, V default_value) const {
    absl::StatusOr<V> v = Pop(k);
    if (v.status().code() == absl::StatusCode::kNotFound) return default_value;
    return v;
  }
  // d.setdefault(k, v): the value now at k.
  absl::StatusOr<V> SetDefault(const K& k, const V& v) const {
    std::vector<uint32_t> held;
    if (absl::Status s = this->MarkHeld(v, 1, held); !s.ok()) return s;
    return this->template One<V>("setdefault", managers_internal::EncodeArgs(k, v),
                                 std::move(held));
  }
  // d.popitem(): the last inserted pair; kNotFound when empty.
  absl::StatusOr<std::pair<K, V>> PopItem() const {
    absl::StatusOr<CallResults> r = this->base_.CallMethod("popitem", {});
    if (!r.ok()) return r.status();
    absl::StatusOr<K> k = managers_internal::DecodeResult<K>(*r, 0, this->Label("popitem"));
    if (!k.ok()) return k.status();
    absl::StatusOr<V> v = managers_internal::DecodeResult<V>(*r, 1, this->Label("popitem"));
    if (!v.ok()) return v.status();
    return std::make_pair(*std::move(k), *std::move(v));
  }
  absl::Status Clear() const { return this->None("clear"); }

 private:
  friend class BaseManager;
  friend struct managers_internal::ProxyCodec<DictProxy>;
  explicit DictProxy(BaseProxy base) : Base(std::move(base)) {}
};

// list of T.
template <typename T>
class ListProxy : public managers_internal::TypedProxy<ListProxy<T>> {
  using Base = managers_internal::TypedProxy<ListProxy<T>>;

 public:
  static constexpr absl::string_view kTypeId = "list";
  static const std::string& TypeLabel() {
    static const std::string* const label =
        new std::string(absl::StrCat("mp::ListProxy<", TypeName<T>(), ">"));
    return *label;
  }

  ListProxy() = default;

  absl::Status Append(const T& v) const {
    std::vector<uint32_t> held;
    if (absl::Status s = this->MarkHeld(v, 0, held); !s.ok()) return s;
    return this->None("append", managers_internal::EncodeArgs(v), std::move(held));
  }
  absl::Status Extend(absl::Span<const T> values) const {
    std::vector<uint32_t> held;
    for (size_t i = 0; i < values.size(); ++i) {
      if (absl::Status s = this->MarkHeld(values[i], static_cast<uint32_t>(i), held); !s.ok()) {
        return s;
      }
    }
    return this->None("extend", managers_internal::EncodeEach(values), std::move(held));
  }
  // l.insert(i, v): Python's clamping (an index past the end appends).
  absl::Status Insert(int64_t i, const T& v) const {
    std::vector<uint32_t> held;
    if (absl::Status s = this->MarkHeld(v, 1, held); !s.ok()) return s;
    return this->None("insert", managers_internal::EncodeArgs(i, v), std::move(held));
  }
  // l[i] (negative from the end): kOutOfRange outside the list.
  absl::StatusOr<T> Get(int64_t i) const {
    return this->template One<T>("getitem", managers_internal::EncodeArgs(i));
  }
  absl::Status Set(int64_t i, const T& v) const {
    std::vector<uint32_t> held;
    if (absl::Status s = this->MarkHeld(v, 1, held); !s.ok()) return s;
    return this->None("setitem", managers_internal::EncodeArgs(i, v), std::move(held));
  }
  // del l[i]
  absl::Status Erase(int64_t i) const {
    return this->None("delitem", managers_internal::EncodeArgs(i));
  }
  absl::StatusOr<T> Pop(int64_t i = -1) const {
    return this->template One<T>("pop", managers_internal::EncodeArgs(i));
  }
  absl::StatusOr<size_t> Size() const {
    absl::StatusOr<uint64_t> n = this->template One<uint64_t>("len");
    if (!n.ok()) return n.status();
    return static_cast<size_t>(*n);
  }
  // l.index(v): kNotFound when v is not in the list.
  absl::StatusOr<int64_t> Index(const T& v) const {
    return this->template One<int64_t>("index", managers_internal::EncodeArgs(v));
  }
  absl::StatusOr<size_t> Count(const T& v) const {
    absl::StatusOr<uint64_t> n =
        this->template One<uint64_t>("count", managers_internal::EncodeArgs(v));
    if (!n.ok()) return n.status();
    return static_cast<size_t>(*n);
  }
  // l.remove(v): the first equal value; kNotFound when there is none.
  absl::Status Remove(const T& v) const {
    return this->None("remove", managers_internal::EncodeArgs(v));
  }
  // l[start:stop], a copy (Python's bounds: negative from the end, clamped).
  absl::StatusOr<std::vector<T>> Slice(int64_t start, int64_t stop) const {
    return this->template Many<T>("slice", managers_internal::EncodeArgs(start, stop));
  }
  // l[:]
  absl::StatusOr<std::vector<T>> ToVector() const {
    return Slice(0, std::numeric_limits<int64_t>::max());
  }
  absl::Status Clear() const { return this->None("clear"); }
  absl::Status Reverse() const { return this->None("reverse"); }

 private:
  friend class BaseManager;
  friend struct managers_internal::ProxyCodec<ListProxy>;
  explicit ListProxy(BaseProxy base) : Base(std::move(base)) {}
};

// Namespace: named attributes of any Codec type; each remembers its type.
class NamespaceProxy : public managers_internal::TypedProxy<NamespaceProxy> {
 public:
  static constexpr absl::string_view kTypeId = "Namespace";
  static const std::string& TypeLabel() {
    static const std::string* const label = new std::string("mp::NamespaceProxy");
    return *label;
  }

  NamespaceProxy() = default;

  // ns.name = value
  template <typename T>
  absl::Status Set(absl::string_view name, const T& value) const {
    std::vector<uint32_t> held;
    if (absl::Status s = MarkHeld(value, 2, held); !s.ok()) return s;
    return None("setattr", {std::string(name), Encode(mp::TypeFingerprint<T>()), Encode(value)},
                std::move(held));
  }
  // ns.name: kNotFound when there is no such attribute, kInvalidArgument naming both types when
  // it was set as another type.
  template <typename T>
  absl::StatusOr<T> Get(absl::string_view name) const {
    absl::StatusOr<CallResults> r = base_.CallMethod("getattr", {std::string(name)});
    if (!r.ok()) return r.status();
    absl::StatusOr<uint64_t> type = managers_internal::DecodeResult<uint64_t>(*r, 0, "getattr");
    if (!type.ok()) return type.status();
    if (*type != mp::TypeFingerprint<T>()) {
      return absl::InvalidArgumentError(absl::StrCat("Namespace attribute '", name, "' holds a ",
                                                     DescribeFingerprint(*type), ", not a ",
                                                     TypeName<T>()));
    }
    return managers_internal::DecodeResult<T>(*r, 1, "getattr");
  }
  // del ns.name
  absl::Status Erase(absl::string_view name) const { return None("delattr", {std::string(name)}); }
  // The attributes' names, sorted.
  absl::StatusOr<std::vector<std::string>> Names() const { return Many<std::string>("names"); }

 private:
  friend class BaseManager;
  friend struct managers_internal::ProxyCodec<NamespaceProxy>;
  explicit NamespaceProxy(BaseProxy base) : TypedProxy(std::move(base)) {}
};

// Manager.Value(typecode, value): one shared T.
template <typename T>
class ValueProxy : public managers_internal::TypedProxy<ValueProxy<T>> {
  using Base = managers_internal::TypedProxy<ValueProxy<T>>;

 public:
  static constexpr absl::string_view kTypeId = "Value";
  static const std::string& TypeLabel() {
    static const std::string* const label =
        new std::string(absl::StrCat("mp::ValueProxy<", TypeName<T>(), ">"));
    return *label;
  }

  ValueProxy() = default;

  absl::StatusOr<T> Get() const { return this->template One<T>("get"); }
  absl::Status Set(const T& v) const {
    std::vector<uint32_t> held;
    if (absl::Status s = this->MarkHeld(v, 0, held); !s.ok()) return s;
    return this->None("set", managers_internal::EncodeArgs(v), std::move(held));
  }

 private:
  friend class BaseManager;
  friend struct managers_internal::ProxyCodec<ValueProxy>;
  explicit ValueProxy(BaseProxy base) : Base(std::move(base)) {}
};

// Manager.Array(typecode, sequence): a fixed number of T.
template <typename T>
class ArrayProxy : public managers_internal::TypedProxy<ArrayProxy<T>> {
  static_assert(!managers_internal::IsProxy<T>,
                "mp::ArrayProxy holds plain values; keep proxies in a ListProxy");
  using Base = managers_internal::TypedProxy<ArrayProxy<T>>;

 public:
  static constexpr absl::string_view kTypeId = "Array";
  static const std::string& TypeLabel() {
    static const std::string* const label =
        new std::string(absl::StrCat("mp::ArrayProxy<", TypeName<T>(), ">"));
    return *label;
  }

  ArrayProxy() = default;

  // a[i] (negative from the end): kOutOfRange outside the array.
  absl::StatusOr<T> Get(int64_t i) const {
    return this->template One<T>("getitem", managers_internal::EncodeArgs(i));
  }
  absl::Status Set(int64_t i, const T& v) const {
    return this->None("setitem", managers_internal::EncodeArgs(i, v));
  }
  absl::StatusOr<size_t> Size() const {
    absl::StatusOr<uint64_t> n = this->template One<uint64_t>("len");
    if (!n.ok()) return n.status();
    return static_cast<size_t>(*n);
  }
  absl::StatusOr<std::vector<T>> Slice(int64_t start, int64_t stop) const {
    return this->template Many<T>("slice", managers_internal::EncodeArgs(start, stop));
  }
  absl::StatusOr<std::vector<T>> ToVector() const {
    return Slice(0, std::numeric_limits<int64_t>::max());
  }

 private:
  friend class BaseManager;
  friend struct managers_internal::ProxyCodec<ArrayProxy>;
  explicit ArrayProxy(BaseProxy base) : Base(std::move(base)) {}
};

template <typename K, typename V>
struct Codec<DictProxy<K, V>> : managers_internal::ProxyCodec<DictProxy<K, V>> {
  static std::string Name() { return DictProxy<K, V>::TypeLabel(); }
};
template <typename T>
struct Codec<ListProxy<T>> : managers_internal::ProxyCodec<ListProxy<T>> {
  static std::string Name() { return ListProxy<T>::TypeLabel(); }
};
template <>
struct Codec<NamespaceProxy> : managers_internal::ProxyCodec<NamespaceProxy> {
  static std::string Name() { return NamespaceProxy::TypeLabel(); }
};
template <typename T>
struct Codec<ValueProxy<T>> : managers_internal::ProxyCodec<ValueProxy<T>> {
  static std::string Name() { return ValueProxy<T>::TypeLabel(); }
};
template <typename T>
struct Codec<ArrayProxy<T>> : managers_internal::ProxyCodec<ArrayProxy<T>> {
  static std::string Name() { return ArrayProxy<T>::TypeLabel(); }
};

}  // namespace mp

#endif  // MP_MANAGERS_COLLECTIONS_H_
