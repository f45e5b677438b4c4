// Copyright 2026 The mp Authors.
//
// The built-in collections of a manager's server: dict, list, Namespace, Value, Array (see
// builtins.h for their methods). Each object serializes its methods with its own mutex, so calls
// from many clients on one object are atomic, as they are under CPython's GIL.

#include "managers/builtins.h"

#include <algorithm>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/mutex.h"
#include "serialize/codec.h"

namespace mp::managers_internal {

absl::Status CheckArgCount(absl::string_view type_name, absl::string_view method,
                           absl::Span<const std::string> args, size_t n) {
  if (args.size() == n) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(type_name, ".", method, " takes ", n, " argument",
                                                 n == 1 ? "" : "s", ", the call sent ",
                                                 args.size()));
}

absl::Status NoSuchMethod(absl::string_view type_name, absl::string_view method) {
  return absl::InvalidArgumentError(
      absl::StrCat(type_name, " has no method '", absl::CHexEscape(method), "'"));
}

absl::StatusOr<int64_t> DecodeI64(absl::string_view type_name, absl::string_view method,
                                  const std::string& arg) {
  absl::StatusOr<int64_t> v = Decode<int64_t>(arg);
  if (!v.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        type_name, ".", method, ": a malformed integer argument: ", v.status().message()));
  }
  return v;
}

Stored StoredArg(CallContext& context, absl::Span<const std::string> args, size_t i) {
  return Stored{args[i], context.HeldArg(i)};
}

void Emit(CallContext& context, std::vector<std::string>& out, const Stored& value) {
  if (value.held != nullptr) context.Give(out.size(), *value.held);
  out.push_back(value.bytes);
}

std::string EncodeU64(uint64_t v) { return Encode(v); }
std::string EncodeI64(int64_t v) { return Encode(v); }
std::string EncodeBool(bool v) { return Encode(v); }

namespace {

// The part every built-in shares: its type as its creator named it.
class Builtin : public ServedObject {
 public:
  Builtin(uint64_t type, std::string type_name) : type_(type), type_name_(std::move(type_name)) {}
  uint64_t type() const override { return type_; }
  const std::string& type_name() const override { return type_name_; }

 protected:
  absl::Status Args(absl::string_view method, absl::Span<const std::string> args, size_t n) const {
    return CheckArgCount(type_name_, method, args, n);
  }
  absl::Status NoMethod(absl::string_view method) const { return NoSuchMethod(type_name_, method); }

 private:
  const uint64_t type_;
  const std::string type_name_;
};

// Python's index rules: a negative index counts from the end; out of range is IndexError.
absl::StatusOr<size_t> ItemIndex(absl::string_view type_name, absl::string_view method,
                                 const std::string& arg, size_t size) {
  absl::StatusOr<int64_t> i = DecodeI64(type_name, method, arg);
  if (!i.ok()) return i.status();
  int64_t index = *i;
  if (index < 0) index += static_cast<int64_t>(size);
  if (index < 0 || static_cast<uint64_t>(index) >= size) {
    return absl::OutOfRangeError(absl::StrCat(type_name, ".", method, ": index ", *i,
                                              " out of range for a length of ", size));
  }
  return static_cast<size_t>(index);
}

// A slice bound (Python's rules: negative counts from the end, then clamped to [0, size]).
absl::StatusOr<size_t> SliceBound(absl::string_view type_name, absl::string_view method,
                                  const std::string& arg, size_t size) {
  absl::StatusOr<int64_t> i = DecodeI64(type_name, method, arg);
  if (!i.ok()) return i.status();
  int64_t index = *i;
  const int64_t n = static_cast<int64_t>(size);
  if (index < 0) index = std::max<int64_t>(0, index + n);
  return static_cast<size_t>(std::min(index, n));
}

absl::StatusOr<std::pair<size_t, size_t>> SliceBounds(absl::string_view type_name,
                                                      absl::string_view method,
                                                      absl::Span<const std::string> args,
                                                      size_t size) {
  absl::StatusOr<size_t> start = SliceBound(type_name, method, args[0], size);
  if (!start.ok()) return start.status();
  absl::StatusOr<size_t> stop = SliceBound(type_name, method, args[1], size);
  if (!stop.ok()) return stop.status();
  return std::make_pair(*start, std::max(*start, *stop));
}

// dict: insertion-ordered, as Python's.
class Dict : public Builtin {
 public:
  using Builtin::Builtin;

  absl::Status Call(CallContext& c, absl::string_view m, uint64_t, absl::Span<const std::string> a,
                    std::vector<std::string>& out) override {
    MutexLock lock(&mu_);
    if (m == "getitem" || m == "pop") {
      if (absl::Status s = Args(m, a, 1); !s.ok()) return s;
      auto it = index_.find(a[0]);
      if (it == index_.end()) return Missing(m);
      Emit(c, out, it->second->second);
      if (m == "pop") Erase(it);
      return absl::OkStatus();
    }
    if (m == "setitem") {
      if (absl::Status s = Args(m, a, 2); !s.ok()) return s;
      Set(a[0], StoredArg(c, a, 1));
      return absl::OkStatus();
    }
    if (m == "contains") {
      if (absl::Status s = Args(m, a, 1); !s.ok()) return s;
      out.push_back(EncodeBool(index_.contains(a[0])));
      return absl::OkStatus();
    }
    if (m == "delitem") {
      if (absl::Status s = Args(m, a, 1); !s.ok()) return s;
      auto it = index_.find(a[0]);
      if (it == index_.end()) return Missing(m);
      Erase(it);
      return absl::OkStatus();
    }
    if (m == "len") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      out.push_back(EncodeU64(order_.size()));
      return absl::OkStatus();
    }
    if (m == "items" || m == "keys" || m == "values") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      out.reserve(order_.size() * (m == "items" ? 2 : 1));
      for (const auto& [k, v] : order_) {
        if (m != "values") out.push_back(k);
        if (m != "keys") Emit(c, out, v);
      }
      return absl::OkStatus();
    }
    if (m == "update") {
      if (a.size() % 2 != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            type_name(), ".update takes key, value pairs, the call sent ", a.size(), " values"));
      }
      for (size_t i = 0; i < a.size(); i += 2) Set(a[i], StoredArg(c, a, i + 1));
      return absl::OkStatus();
    }
    if (m == "setdefault") {
      if (absl::Status s = Args(m, a, 2); !s.ok()) return s;
      auto it = index_.find(a[0]);
      if (it == index_.end()) {
        Stored v = StoredArg(c, a, 1);
        Emit(c, out, v);
        Set(a[0], std::move(v));
      } else {
        Emit(c, out, it->second->second);
      }
      return absl::OkStatus();
    }
    if (m == "popitem") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      if (order_.empty()) {
        return absl::NotFoundError(absl::StrCat(type_name(), ".popitem: the dict is empty"));
      }
      out.push_back(order_.back().first);
      Emit(c, out, order_.back().second);
      Erase(index_.find(order_.back().first));
      return absl::OkStatus();
    }
    if (m == "clear") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      index_.clear();
      order_.clear();
      return absl::OkStatus();
    }
    return NoMethod(m);
  }

 private:
  using Order = std::list<std::pair<std::string, Stored>>;

  absl::Status Missing(absl::string_view m) const {
    return absl::NotFoundError(absl::StrCat(type_name(), ".", m, ": no such key"));
  }
  void Set(const std::string& k, Stored v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = index_.find(k);
    if (it != index_.end()) {
      it->second->second = std::move(v);
      return;
    }
    order_.emplace_back(k, std::move(v));
    index_.emplace(k, std::prev(order_.end()));
  }
  void Erase(absl::flat_hash_map<std::string, Order::iterator>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const Order::iterator entry = it->second;
    index_.erase(it);
    order_.erase(entry);
  }

  Mutex mu_;
  Order order_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Order::iterator> index_ ABSL_GUARDED_BY(mu_);
};

class List : public Builtin {
 public:
  List(uint64_t type, std::string type_name, absl::Span<const std::string> items)
      : Builtin(type, std::move(type_name)) {
    for (const std::string& item : items) items_.push_back(Stored{item, nullptr});
  }

  absl::Status Call(CallContext& c, absl::string_view m, uint64_t, absl::Span<const std::string> a,
                    std::vector<std::string>& out) override {
    MutexLock lock(&mu_);
    if (m == "append") {
      if (absl::Status s = Args(m, a, 1); !s.ok()) return s;
      items_.push_back(StoredArg(c, a, 0));
      return absl::OkStatus();
    }
    if (m == "extend") {
      for (size_t i = 0; i < a.size(); ++i) items_.push_back(StoredArg(c, a, i));
      return absl::OkStatus();
    }
    if (m == "getitem" || m == "setitem" || m == "delitem" || m == "pop") {
      if (absl::Status s = Args(m, a, m == "setitem" ? 2 : 1); !s.ok()) return s;
      absl::StatusOr<size_t> i = ItemIndex(type_name(), m, a[0], items_.size());
      if (!i.ok()) return i.status();
      if (m == "getitem" || m == "pop") Emit(c, out, items_[*i]);
      if (m == "setitem") items_[*i] = StoredArg(c, a, 1);
      if (m == "delitem" || m == "pop") items_.erase(items_.begin() + static_cast<ptrdiff_t>(*i));
      return absl::OkStatus();
    }
    if (m == "insert") {
      if (absl::Status s = Args(m, a, 2); !s.ok()) return s;
      absl::StatusOr<size_t> i = SliceBound(type_name(), m, a[0], items_.size());
      if (!i.ok()) return i.status();
      items_.insert(items_.begin() + static_cast<ptrdiff_t>(*i), StoredArg(c, a, 1));
      return absl::OkStatus();
    }
    if (m == "len") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      out.push_back(EncodeU64(items_.size()));
      return absl::OkStatus();
    }
    if (m == "index" || m == "remove") {
      if (absl::Status s = Args(m, a, 1); !s.ok()) return s;
      auto it = std::find_if(items_.begin(), items_.end(),
                             [&](const Stored& v) { return v.bytes == a[0]; });
      if (it == items_.end()) {
        return absl::NotFoundError(
            absl::StrCat(type_name(), ".", m, ": the value is not in the list"));
      }
      if (m == "index") out.push_back(EncodeI64(it - items_.begin()));
      if (m == "remove") items_.erase(it);
      return absl::OkStatus();
    }
    if (m == "count") {
      if (absl::Status s = Args(m, a, 1); !s.ok()) return s;
      out.push_back(EncodeU64(static_cast<uint64_t>(std::count_if(
          items_.begin(), items_.end(), [&](const Stored& v) { return v.bytes == a[0]; }))));
      return absl::OkStatus();
    }
    if (m == "slice") {
      if (absl::Status s = Args(m, a, 2); !s.ok()) return s;
      absl::StatusOr<std::pair<size_t, size_t>> b = SliceBounds(type_name(), m, a, items_.size());
      if (!b.ok()) return b.status();
      for (size_t i = b->first; i < b->second; ++i) Emit(c, out, items_[i]);
      return absl::OkStatus();
    }
    if (m == "clear" || m == "reverse") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      if (m == "clear") items_.clear();
      if (m == "reverse") std::reverse(items_.begin(), items_.end());
      return absl::OkStatus();
    }
    return NoMethod(m);
  }

 private:
  Mutex mu_;
  std::vector<Stored> items_ ABSL_GUARDED_BY(mu_);
};

// Attributes keep the fingerprint of their value's type: reading one as another type is
// kInvalidArgument at the proxy (which compares it), not garbage.
class Namespace : public Builtin {
 public:
  using Builtin::Builtin;

  absl::Status Call(CallContext& c, absl::string_view m, uint64_t, absl::Span<const std::string> a,
                    std::vector<std::string>& out) override {
    MutexLock lock(&mu_);
    if (m == "getattr") {
      if (absl::Status s = Args(m, a, 1); !s.ok()) return s;
      auto it = attrs_.find(a[0]);
      if (it == attrs_.end()) return Missing(m, a[0]);
      out.push_back(it->second.first);
      Emit(c, out, it->second.second);
      return absl::OkStatus();
    }
    if (m == "setattr") {
      if (absl::Status s = Args(m, a, 3); !s.ok()) return s;
      if (a[1].size() != sizeof(uint64_t)) {
        return absl::InvalidArgumentError(
            absl::StrCat(type_name(), ".setattr: a malformed type fingerprint"));
      }
      attrs_[a[0]] = {a[1], StoredArg(c, a, 2)};
      return absl::OkStatus();
    }
    if (m == "delattr") {
      if (absl::Status s = Args(m, a, 1); !s.ok()) return s;
      if (attrs_.erase(a[0]) == 0) return Missing(m, a[0]);
      return absl::OkStatus();
    }
    if (m == "names") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      std::vector<std::string> names;
      for (const auto& [name, value] : attrs_) names.push_back(name);
      std::sort(names.begin(), names.end());
      for (const std::string& name : names) out.push_back(Encode(name));
      return absl::OkStatus();
    }
    return NoMethod(m);
  }

 private:
  absl::Status Missing(absl::string_view m, const std::string& name) const {
    return absl::NotFoundError(
        absl::StrCat(type_name(), ".", m, ": no attribute '", absl::CHexEscape(name), "'"));
  }

  Mutex mu_;
  // name -> (encoded type fingerprint, encoded value)
  absl::flat_hash_map<std::string, std::pair<std::string, Stored>> attrs_ ABSL_GUARDED_BY(mu_);
};

class Value : public Builtin {
 public:
  Value(uint64_t type, std::string type_name, std::string value)
      : Builtin(type, std::move(type_name)), value_{std::move(value), nullptr} {}

  absl::Status Call(CallContext& c, absl::string_view m, uint64_t, absl::Span<const std::string> a,
                    std::vector<std::string>& out) override {
    MutexLock lock(&mu_);
    if (m == "get") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      Emit(c, out, value_);
      return absl::OkStatus();
    }
    if (m == "set") {
      if (absl::Status s = Args(m, a, 1); !s.ok()) return s;
      value_ = StoredArg(c, a, 0);
      return absl::OkStatus();
    }
    return NoMethod(m);
  }

 private:
  Mutex mu_;
  Stored value_ ABSL_GUARDED_BY(mu_);
};

// A fixed length, as a multiprocessing Array's.
class Array : public Builtin {
 public:
  Array(uint64_t type, std::string type_name, std::vector<std::string> items)
      : Builtin(type, std::move(type_name)), items_(std::move(items)) {}

  absl::Status Call(CallContext&, absl::string_view m, uint64_t, absl::Span<const std::string> a,
                    std::vector<std::string>& out) override {
    MutexLock lock(&mu_);
    if (m == "getitem" || m == "setitem") {
      if (absl::Status s = Args(m, a, m == "setitem" ? 2 : 1); !s.ok()) return s;
      absl::StatusOr<size_t> i = ItemIndex(type_name(), m, a[0], items_.size());
      if (!i.ok()) return i.status();
      if (m == "getitem") {
        out.push_back(items_[*i]);
      } else {
        items_[*i] = a[1];
      }
      return absl::OkStatus();
    }
    if (m == "len") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      out.push_back(EncodeU64(items_.size()));
      return absl::OkStatus();
    }
    if (m == "slice") {
      if (absl::Status s = Args(m, a, 2); !s.ok()) return s;
      absl::StatusOr<std::pair<size_t, size_t>> b = SliceBounds(type_name(), m, a, items_.size());
      if (!b.ok()) return b.status();
      out.assign(items_.begin() + static_cast<ptrdiff_t>(b->first),
                 items_.begin() + static_cast<ptrdiff_t>(b->second));
      return absl::OkStatus();
    }
    return NoMethod(m);
  }

 private:
  Mutex mu_;
  std::vector<std::string> items_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status AddBuiltinCollections(TypeTable& table) {
  auto no_args = [](absl::string_view type_id, absl::Span<const std::string> args) {
    return args.empty() ? absl::OkStatus()
                        : absl::InvalidArgumentError(absl::StrCat(
                              type_id, " is made without arguments, the call sent ", args.size()));
  };
  absl::Status s =
      table.Add("dict",
                [no_args](uint64_t type, absl::string_view name, absl::Span<const std::string> args)
                    -> absl::StatusOr<std::shared_ptr<ServedObject>> {
                  if (absl::Status s = no_args("dict", args); !s.ok()) return s;
                  return std::make_shared<Dict>(type, std::string(name));
                });
  s.Update(table.Add(
      "list",
      [](uint64_t type, absl::string_view name,
         absl::Span<const std::string> args) -> absl::StatusOr<std::shared_ptr<ServedObject>> {
        return std::make_shared<List>(type, std::string(name),
                                      std::vector<std::string>(args.begin(), args.end()));
      }));
  s.Update(
      table.Add("Namespace",
                [no_args](uint64_t type, absl::string_view name, absl::Span<const std::string> args)
                    -> absl::StatusOr<std::shared_ptr<ServedObject>> {
                  if (absl::Status s = no_args("Namespace", args); !s.ok()) return s;
                  return std::make_shared<Namespace>(type, std::string(name));
                }));
  s.Update(table.Add("Value",
                     [](uint64_t type, absl::string_view name, absl::Span<const std::string> args)
                         -> absl::StatusOr<std::shared_ptr<ServedObject>> {
                       if (absl::Status s = CheckArgCount("Value", "create", args, 1); !s.ok())
                         return s;
                       return std::make_shared<Value>(type, std::string(name), args[0]);
                     }));
  s.Update(table.Add(
      "Array",
      [](uint64_t type, absl::string_view name,
         absl::Span<const std::string> args) -> absl::StatusOr<std::shared_ptr<ServedObject>> {
        return std::make_shared<Array>(type, std::string(name),
                                       std::vector<std::string>(args.begin(), args.end()));
      }));
  return s;
}

absl::Status AddBuiltins(TypeTable& table) {
  absl::Status s = AddBuiltinCollections(table);
  s.Update(AddBuiltinSync(table));
  s.Update(AddSharedMemoryTracker(table));
  return s;
}

}  // namespace mp::managers_internal
