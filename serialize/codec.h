// Copyright 2026 The mp Authors.
//
// serialize/codec.h — typed values <-> bytes.
//
// `mp::Codec<T>` turns a value into bytes and back. It is what lets a Queue, a Connection or a
// spawned Process carry a `T`: a type without a Codec cannot cross a process boundary, and the
// library says so at compile time (see `mp::RequireCodec<T>()`).
//
// Supported out of the box:
//   * arithmetic types (bool, char, all integer widths, float, double) and enums;
//   * std::string, std::vector<T>, std::array<T, N>, std::pair<A, B>, std::tuple<Ts...>,
//     std::optional<T>, std::map<K, V>, std::unordered_map<K, V>, absl::flat_hash_map<K, V>,
//     and any nesting of these;
//   * user types: either list the members once with MP_FIELDS, or specialize mp::Codec<T> yourself.
//
//   namespace shop {
//   struct Order {
//     int64_t id;
//     std::string item;
//     std::vector<double> prices;
//   };
//   MP_FIELDS(Order, id, item, prices);   // in the type's own namespace
//   }  // namespace shop
//
//   std::string bytes = mp::Encode(shop::Order{7, "pen", {1.5}});
//   absl::StatusOr<shop::Order> back = mp::Decode<shop::Order>(bytes);
//
// Wire format (version kWireFormatVersion, stated once here):
//   * integers and floating point: fixed width, little-endian, no padding;
//   * bool: one byte, 0 or 1 (anything else is a decode error);
//   * enums: their underlying integer;
//   * lengths and element counts: unsigned LEB128 varints (canonical: at most 10 bytes, no overlong
//     encodings);
//   * string / vector / map: varint count, then the elements; std::array: the N elements, no count;
//   * pair / tuple / MP_FIELDS types: the members in order, no tags;
//   * optional: one byte 0 (empty) or 1 (present), then the value.
// The version and the type travel in the frame header (serialize/frame.h), not in each value.
//
// Decoding never trusts its input: every read is bounds-checked, counts are checked against the
// bytes that remain before anything is allocated, and every failure is an absl::Status naming what
// was wrong (kInvalidArgument for malformed input, kOutOfRange for input that ends early).
//
// Thread safety: codecs are stateless; `TypeName<T>()` is safe to call from any thread.

#ifndef MP_SERIALIZE_CODEC_H_
#define MP_SERIALIZE_CODEC_H_

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mp {

// The version of the encoding described above. Frames carry it; a reader refuses other versions.
inline constexpr uint8_t kWireFormatVersion = 1;

// ---------------------------------------------------------------------------------------------------
// ByteWriter: appends into a caller-provided buffer whose size was computed with Codec<T>::Size.
// Writing past the end is a programming error inside mp; it is checked and aborts with a message.
class ByteWriter {
 public:
  ByteWriter(uint8_t* data, size_t size) : pos_(data), end_(data + size) {}
  explicit ByteWriter(absl::Span<uint8_t> out) : ByteWriter(out.data(), out.size()) {}

  void Write(const void* data, size_t size) {
    Check(size);
    if (size != 0) std::memcpy(pos_, data, size);
    pos_ += size;
  }
  void WriteByte(uint8_t b) {
    Check(1);
    *pos_++ = b;
  }
  void WriteVarint(uint64_t v) {
    while (v >= 0x80) {
      WriteByte(static_cast<uint8_t>(v) | 0x80);
      v >>= 7;
    }
    WriteByte(static_cast<uint8_t>(v));
  }
  // Little-endian fixed width.
  template <typename U>
  requires std::is_integral_v<U>
  void WriteLE(U v) {
    if constexpr (std::endian::native == std::endian::big && sizeof(U) > 1) {
      v = ByteSwap(v);
    }
    Write(&v, sizeof(v));
  }

  size_t remaining() const { return static_cast<size_t>(end_ - pos_); }
  uint8_t* position() const { return pos_; }

  template <typename U>
  static U ByteSwap(U v) {
    using Unsigned = std::make_unsigned_t<U>;
    Unsigned u = static_cast<Unsigned>(v), r = 0;
    for (size_t i = 0; i < sizeof(U); ++i) {
      r = static_cast<Unsigned>((r << 8) | (u & 0xff));
      u = static_cast<Unsigned>(u >> 8);
    }
    return static_cast<U>(r);
  }

 private:
  void Check(size_t size) {
    if (size > remaining()) Overflow(size);
  }
  [[noreturn]] void Overflow(size_t size) const;

  uint8_t* pos_;
  uint8_t* end_;
};

// ---------------------------------------------------------------------------------------------------
// ByteReader: bounds-checked reads from untrusted bytes. Every failure names what was being read.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : pos_(data), end_(data + size) {}
  explicit ByteReader(absl::Span<const uint8_t> in) : ByteReader(in.data(), in.size()) {}

  absl::Status Read(void* out, size_t size, absl::string_view what) {
    if (size > remaining()) return Truncated(size, what);
    if (size != 0) std::memcpy(out, pos_, size);
    pos_ += size;
    return absl::OkStatus();
  }
  // Returns a view of the next `size` bytes and skips them.
  absl::StatusOr<absl::Span<const uint8_t>> ReadSpan(size_t size, absl::string_view what) {
    if (size > remaining()) return Truncated(size, what);
    absl::Span<const uint8_t> s(pos_, size);
    pos_ += size;
    return s;
  }
  absl::StatusOr<uint8_t> ReadByte(absl::string_view what) {
    if (remaining() < 1) return Truncated(1, what);
    return *pos_++;
  }
  template <typename U>
  requires std::is_integral_v<U> absl::Status ReadLE(U* v, absl::string_view what) {
    if (absl::Status s = Read(v, sizeof(U), what); !s.ok()) return s;
    if constexpr (std::endian::native == std::endian::big && sizeof(U) > 1) {
      *v = ByteWriter::ByteSwap(*v);
    }
    return absl::OkStatus();
  }
  // Canonical unsigned LEB128: at most 10 bytes, no overlong (trailing zero) groups.
  absl::StatusOr<uint64_t> ReadVarint(absl::string_view what);
  // A varint element count, checked against the bytes that remain: `count * min_element_size` must
  // fit, so a hostile count can never make the decoder allocate more than the input could fill.
  absl::StatusOr<size_t> ReadCount(size_t min_element_size, absl::string_view what);

  size_t remaining() const { return static_cast<size_t>(end_ - pos_); }
  const uint8_t* position() const { return pos_; }

 private:
  absl::Status Truncated(size_t wanted, absl::string_view what) const;

  const uint8_t* pos_;
  const uint8_t* end_;
};

// Number of bytes WriteVarint(v) writes.
constexpr size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------
// The customization point. A specialization provides:
//   static std::string Name();                             // structural type name, e.g. "vec<i32>"
//   static constexpr size_t kMinSize;                      // fewest bytes any value encodes to
//   static size_t Size(const T& v);                        // exact encoded size of v
//   static void Encode(const T& v, ByteWriter& w);         // writes exactly Size(v) bytes
//   static absl::Status Decode(ByteReader& r, T& out);     // reads one value, never trusts r
// The primary template is left undefined: "no Codec" is detectable (see HasCodec).
template <typename T, typename Enable = void>
struct Codec;

template <typename T>
concept HasCodec = requires(const T& v, T& out, ByteWriter& w, ByteReader& r) {
  { Codec<T>::Name() } -> std::convertible_to<std::string>;
  { Codec<T>::kMinSize } -> std::convertible_to<size_t>;
  { Codec<T>::Size(v) } -> std::convertible_to<size_t>;
  Codec<T>::Encode(v, w);
  { Codec<T>::Decode(r, out) } -> std::same_as<absl::Status>;
};

// Use in templates that take user types, so a missing Codec reads as a sentence, not a wall of
// errors.
template <typename T>
constexpr void RequireCodec() {
  static_assert(HasCodec<T>,
                "mp: this type has no mp::Codec, so it cannot be sent to another process. Add "
                "MP_FIELDS(Type, member1, member2, ...) next to the type, or specialize "
                "mp::Codec<Type> (see serialize/codec.h).");
}

// ---------------------------------------------------------------------------------------------------
// Type names and fingerprints.
//
// TypeName<T>() is structural ("map<str,vec<f64>>", "shop::Order{id:i64,item:str,prices:vec<f64>}")
// so it is the same in every process and every build of the same source, and it changes when a
// field's type changes. TypeFingerprint<T>() is its 64-bit FNV-1a hash, carried in frame headers.
uint64_t Fingerprint(absl::string_view type_name);

// Remembers fingerprint -> name so a receiver can name the type a sender used. Every type that is
// framed anywhere in a binary is registered at start-up (see frame.h), so processes running the
// same binary name each other's types; otherwise the fingerprint is shown in hex.
void RegisterTypeName(uint64_t fingerprint, absl::string_view name);
std::string DescribeFingerprint(uint64_t fingerprint);

template <typename T>
const std::string& TypeName() {
  RequireCodec<T>();
  static const std::string* const name = new std::string(Codec<T>::Name());
  return *name;
}

template <typename T>
uint64_t TypeFingerprint() {
  static const uint64_t fp = [] {
    uint64_t f = Fingerprint(TypeName<T>());
    RegisterTypeName(f, TypeName<T>());
    return f;
  }();
  return fp;
}

namespace codec_internal {

// A literal, so naming a type in an error path costs nothing on the fast path.
template <typename T>
constexpr const char* ArithmeticName() {
  if constexpr (std::is_same_v<T, bool>) {
    return "bool";
  } else if constexpr (std::is_same_v<T, char>) {
    return "char";
  } else if constexpr (std::is_floating_point_v<T>) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8,
                  "mp: only 32- and 64-bit floating point are encodable");
    return sizeof(T) == 4 ? "f32" : "f64";
  } else {
    constexpr const char* kSigned[] = {"", "i8", "i16", "", "i32", "", "", "", "i64"};
    constexpr const char* kUnsigned[] = {"", "u8", "u16", "", "u32", "", "", "", "u64"};
    static_assert(sizeof(T) <= 8, "mp: integers wider than 64 bits are not encodable");
    return std::is_signed_v<T> ? kSigned[sizeof(T)] : kUnsigned[sizeof(T)];
  }
}

// Element counts of the same form are used by every container.
template <typename E>
absl::StatusOr<size_t> ReadElementCount(ByteReader& r, absl::string_view what) {
  return r.ReadCount(Codec<E>::kMinSize, what);
}

// Whether a vector/array of E may be copied as one block of bytes.
template <typename E>
inline constexpr bool kBulkCopyable = std::is_arithmetic_v<E> && !std::is_same_v<E, bool> &&
                                      std::endian::native == std::endian::little;

}  // namespace codec_internal

// Arithmetic types (bool is validated: only 0 and 1 are values).
template <typename T>
struct Codec<T, std::enable_if_t<std::is_arithmetic_v<T>>> {
  static std::string Name() { return codec_internal::ArithmeticName<T>(); }
  static constexpr size_t kMinSize = sizeof(T);
  static size_t Size(const T&) { return sizeof(T); }
  static void Encode(const T& v, ByteWriter& w) {
    if constexpr (std::is_same_v<T, bool>) {
      w.WriteByte(v ? 1 : 0);
    } else if constexpr (std::is_integral_v<T>) {
      w.WriteLE(v);
    } else {
      using Bits = std::conditional_t<sizeof(T) == 4, uint32_t,
                                      std::conditional_t<sizeof(T) == 8, uint64_t, void>>;
      static_assert(!std::is_void_v<Bits>, "mp: only 32- and 64-bit floating point are encodable");
      w.WriteLE(std::bit_cast<Bits>(v));
    }
  }
  static absl::Status Decode(ByteReader& r, T& out) {
    if constexpr (std::is_same_v<T, bool>) {
      absl::StatusOr<uint8_t> b = r.ReadByte("bool");
      if (!b.ok()) return b.status();
      if (*b > 1) {
        return absl::InvalidArgumentError("mp::Decode: a bool must be encoded as 0 or 1, got " +
                                          std::to_string(*b));
      }
      out = *b == 1;
      return absl::OkStatus();
    } else if constexpr (std::is_integral_v<T>) {
      return r.ReadLE(&out, codec_internal::ArithmeticName<T>());
    } else {
      using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
      Bits bits = 0;
      if (absl::Status s = r.ReadLE(&bits, codec_internal::ArithmeticName<T>()); !s.ok()) return s;
      out = std::bit_cast<T>(bits);
      return absl::OkStatus();
    }
  }
};

// Enums travel as their underlying integer. Specialize EnumRange<E> (kMin, kMax) to have decoding
// refuse values outside the range; do so for unscoped enums without a fixed underlying type, where
// an out-of-range value is undefined behaviour.
template <typename E>
struct EnumRange {};

template <typename E>
concept HasEnumRange = requires {
  { EnumRange<E>::kMin } -> std::convertible_to<E>;
  { EnumRange<E>::kMax } -> std::convertible_to<E>;
};

template <typename T>
struct Codec<T, std::enable_if_t<std::is_enum_v<T>>> {
  using U = std::underlying_type_t<T>;
  static std::string Name() { return std::string("enum:") + codec_internal::ArithmeticName<U>(); }
  static constexpr size_t kMinSize = sizeof(U);
  static size_t Size(const T&) { return sizeof(U); }
  static void Encode(const T& v, ByteWriter& w) { w.WriteLE(static_cast<U>(v)); }
  static absl::Status Decode(ByteReader& r, T& out) {
    U u;
    if (absl::Status s = r.ReadLE(&u, "enum"); !s.ok()) return s;
    if constexpr (HasEnumRange<T>) {
      if (u < static_cast<U>(EnumRange<T>::kMin) || u > static_cast<U>(EnumRange<T>::kMax)) {
        return absl::InvalidArgumentError(
            "mp::Decode: enum value " + std::to_string(u) + " is outside its EnumRange [" +
            std::to_string(static_cast<U>(EnumRange<T>::kMin)) + ", " +
            std::to_string(static_cast<U>(EnumRange<T>::kMax)) + "]");
      }
    }
    out = static_cast<T>(u);
    return absl::OkStatus();
  }
};

template <>
struct Codec<std::string> {
  static std::string Name() { return "str"; }
  static constexpr size_t kMinSize = 1;
  static size_t Size(const std::string& v) { return VarintSize(v.size()) + v.size(); }
  static void Encode(const std::string& v, ByteWriter& w) {
    w.WriteVarint(v.size());
    w.Write(v.data(), v.size());
  }
  static absl::Status Decode(ByteReader& r, std::string& out) {
    absl::StatusOr<size_t> n = r.ReadCount(1, "string length");
    if (!n.ok()) return n.status();
    out.resize(*n);
    return r.Read(out.data(), *n, "string bytes");
  }
};

template <typename E>
struct Codec<std::vector<E>, std::enable_if_t<HasCodec<E>>> {
  static std::string Name() { return "vec<" + TypeName<E>() + ">"; }
  static constexpr size_t kMinSize = 1;
  static size_t Size(const std::vector<E>& v) {
    size_t n = VarintSize(v.size());
    if constexpr (codec_internal::kBulkCopyable<E>) {
      n += v.size() * sizeof(E);
    } else {
      for (const E& e : v) n += Codec<E>::Size(e);
    }
    return n;
  }
  static void Encode(const std::vector<E>& v, ByteWriter& w) {
    w.WriteVarint(v.size());
    if constexpr (codec_internal::kBulkCopyable<E>) {
      w.Write(v.data(), v.size() * sizeof(E));
    } else {
      for (const E& e : v) Codec<E>::Encode(e, w);
    }
  }
  static absl::Status Decode(ByteReader& r, std::vector<E>& out) {
    absl::StatusOr<size_t> n = codec_internal::ReadElementCount<E>(r, "vector length");
    if (!n.ok()) return n.status();
    if constexpr (codec_internal::kBulkCopyable<E>) {
      out.resize(*n);
      return r.Read(out.data(), *n * sizeof(E), "vector elements");
    } else {
      out.clear();
      out.reserve(*n);
      for (size_t i = 0; i < *n; ++i) {
        E e{};
        if (absl::Status s = Codec<E>::Decode(r, e); !s.ok()) return s;
        out.push_back(std::move(e));
      }
      return absl::OkStatus();
    }
  }
};

template <typename E, size_t N>
struct Codec<std::array<E, N>, std::enable_if_t<HasCodec<E>>> {
  static std::string Name() { return "arr<" + TypeName<E>() + "," + std::to_string(N) + ">"; }
  static constexpr size_t kMinSize = N * Codec<E>::kMinSize;
  static size_t Size(const std::array<E, N>& v) {
    if constexpr (codec_internal::kBulkCopyable<E>) {
      return N * sizeof(E);
    } else {
      size_t n = 0;
      for (const E& e : v) n += Codec<E>::Size(e);
      return n;
    }
  }
  static void Encode(const std::array<E, N>& v, ByteWriter& w) {
    if constexpr (codec_internal::kBulkCopyable<E>) {
      w.Write(v.data(), N * sizeof(E));
    } else {
      for (const E& e : v) Codec<E>::Encode(e, w);
    }
  }
  static absl::Status Decode(ByteReader& r, std::array<E, N>& out) {
    if constexpr (codec_internal::kBulkCopyable<E>) {
      return r.Read(out.data(), N * sizeof(E), "array elements");
    } else {
      for (E& e : out) {
        if (absl::Status s = Codec<E>::Decode(r, e); !s.ok()) return s;
      }
      return absl::OkStatus();
    }
  }
};

template <typename... Ts>
struct Codec<std::tuple<Ts...>, std::enable_if_t<(HasCodec<Ts> && ...)>> {
  static std::string Name() {
    std::string n = "tuple<";
    bool first = true;
    ((n += (first ? "" : ","), n += TypeName<Ts>(), first = false), ...);
    return n + ">";
  }
  static constexpr size_t kMinSize = (size_t{0} + ... + Codec<Ts>::kMinSize);
  static size_t Size(const std::tuple<Ts...>& v) {
    return std::apply([](const Ts&... e) { return (size_t{0} + ... + Codec<Ts>::Size(e)); }, v);
  }
  static void Encode(const std::tuple<Ts...>& v, ByteWriter& w) {
    // [&], not [&w]: an empty tuple's lambda does not use w.
    std::apply([&](const Ts&... e) { (Codec<Ts>::Encode(e, w), ...); }, v);
  }
  static absl::Status Decode(ByteReader& r, std::tuple<Ts...>& out) {
    absl::Status status;
    std::apply([&](Ts&... e) { ((status.ok() ? (status = Codec<Ts>::Decode(r, e), 0) : 0), ...); },
               out);
    return status;
  }
};

template <typename A, typename B>
struct Codec<std::pair<A, B>, std::enable_if_t<HasCodec<A> && HasCodec<B>>> {
  static std::string Name() { return "pair<" + TypeName<A>() + "," + TypeName<B>() + ">"; }
  static constexpr size_t kMinSize = Codec<A>::kMinSize + Codec<B>::kMinSize;
  static size_t Size(const std::pair<A, B>& v) {
    return Codec<A>::Size(v.first) + Codec<B>::Size(v.second);
  }
  static void Encode(const std::pair<A, B>& v, ByteWriter& w) {
    Codec<A>::Encode(v.first, w);
    Codec<B>::Encode(v.second, w);
  }
  static absl::Status Decode(ByteReader& r, std::pair<A, B>& out) {
    if (absl::Status s = Codec<A>::Decode(r, out.first); !s.ok()) return s;
    return Codec<B>::Decode(r, out.second);
  }
};

template <typename E>
struct Codec<std::optional<E>, std::enable_if_t<HasCodec<E>>> {
  static std::string Name() { return "opt<" + TypeName<E>() + ">"; }
  static constexpr size_t kMinSize = 1;
  static size_t Size(const std::optional<E>& v) { return 1 + (v ? Codec<E>::Size(*v) : 0); }
  static void Encode(const std::optional<E>& v, ByteWriter& w) {
    w.WriteByte(v ? 1 : 0);
    if (v) Codec<E>::Encode(*v, w);
  }
  static absl::Status Decode(ByteReader& r, std::optional<E>& out) {
    absl::StatusOr<uint8_t> present = r.ReadByte("optional flag");
    if (!present.ok()) return present.status();
    if (*present > 1) {
      return absl::InvalidArgumentError("mp::Decode: an optional's flag must be 0 or 1, got " +
                                        std::to_string(*present));
    }
    if (*present == 0) {
      out.reset();
      return absl::OkStatus();
    }
    E e{};
    if (absl::Status s = Codec<E>::Decode(r, e); !s.ok()) return s;
    out = std::move(e);
    return absl::OkStatus();
  }
};

namespace codec_internal {

// One implementation for every map type: count, then key/value pairs; duplicate keys are refused.
template <typename M, typename K, typename V>
struct MapCodec {
  static std::string Name() { return "map<" + TypeName<K>() + "," + TypeName<V>() + ">"; }
  static constexpr size_t kMinSize = 1;
  static size_t Size(const M& m) {
    size_t n = VarintSize(m.size());
    for (const auto& [k, v] : m) n += Codec<K>::Size(k) + Codec<V>::Size(v);
    return n;
  }
  static void Encode(const M& m, ByteWriter& w) {
    w.WriteVarint(m.size());
    for (const auto& [k, v] : m) {
      Codec<K>::Encode(k, w);
      Codec<V>::Encode(v, w);
    }
  }
  static absl::Status Decode(ByteReader& r, M& out) {
    absl::StatusOr<size_t> n = r.ReadCount(Codec<K>::kMinSize + Codec<V>::kMinSize, "map size");
    if (!n.ok()) return n.status();
    out.clear();
    for (size_t i = 0; i < *n; ++i) {
      K k{};
      V v{};
      if (absl::Status s = Codec<K>::Decode(r, k); !s.ok()) return s;
      if (absl::Status s = Codec<V>::Decode(r, v); !s.ok()) return s;
      if (!out.emplace(std::move(k), std::move(v)).second) {
        return absl::InvalidArgumentError("mp::Decode: map entry " + std::to_string(i) +
                                          " repeats a key of " + Name());
      }
    }
    return absl::OkStatus();
  }
};

}  // namespace codec_internal

template <typename K, typename V, typename C, typename A>
struct Codec<std::map<K, V, C, A>, std::enable_if_t<HasCodec<K> && HasCodec<V>>>
    : codec_internal::MapCodec<std::map<K, V, C, A>, K, V> {};

template <typename K, typename V, typename H, typename Eq, typename A>
struct Codec<std::unordered_map<K, V, H, Eq, A>, std::enable_if_t<HasCodec<K> && HasCodec<V>>>
    : codec_internal::MapCodec<std::unordered_map<K, V, H, Eq, A>, K, V> {};

template <typename K, typename V, typename H, typename Eq, typename A>
struct Codec<absl::flat_hash_map<K, V, H, Eq, A>, std::enable_if_t<HasCodec<K> && HasCodec<V>>>
    : codec_internal::MapCodec<absl::flat_hash_map<K, V, H, Eq, A>, K, V> {};

// ---------------------------------------------------------------------------------------------------
// User types with listed members: MP_FIELDS(Type, member...) in the type's namespace defines
// `MpFields(Type&)` / `MpFields(const Type&)` (found by ADL) and `MpTypeName(const Type*)`; Codec
// uses them, encoding the members in order. The type must be default-constructible.
template <typename T>
concept HasMpFields = requires(T& v, const T& c) {
  MpFields(v);
  MpFields(c);
  { MpTypeName(static_cast<const T*>(nullptr)) } -> std::convertible_to<std::string>;
};

namespace codec_internal {
template <typename Tuple>
struct FieldsOf;
template <typename... Refs>
struct FieldsOf<std::tuple<Refs...>> {
  using Values = std::tuple<std::remove_cvref_t<Refs>...>;
};
}  // namespace codec_internal

template <typename T>
struct Codec<T, std::enable_if_t<HasMpFields<T>>> {
  using Fields = decltype(MpFields(std::declval<T&>()));
  using Values = typename codec_internal::FieldsOf<Fields>::Values;
  static std::string Name() { return MpTypeName(static_cast<const T*>(nullptr)); }
  static constexpr size_t kMinSize = Codec<Values>::kMinSize;
  static size_t Size(const T& v) {
    return std::apply(
        [](const auto&... f) {
          return (size_t{0} + ... + Codec<std::remove_cvref_t<decltype(f)>>::Size(f));
        },
        MpFields(v));
  }
  static void Encode(const T& v, ByteWriter& w) {
    std::apply(
        [&w](const auto&... f) { (Codec<std::remove_cvref_t<decltype(f)>>::Encode(f, w), ...); },
        MpFields(v));
  }
  static absl::Status Decode(ByteReader& r, T& out) {
    absl::Status status;
    std::apply(
        [&](auto&... f) {
          ((status.ok() ? (status = Codec<std::remove_cvref_t<decltype(f)>>::Decode(r, f), 0) : 0),
           ...);
        },
        MpFields(out));
    return status;
  }
};

namespace codec_internal {
// Builds "Type{a:i32,b:str}" from the stringified member list and the member types.
std::string AggregateName(absl::string_view type, absl::string_view members,
                          const std::vector<std::string>& member_types);
template <typename... Fs>
std::vector<std::string> MemberTypeNames(const std::tuple<Fs&...>*) {
  return {TypeName<std::remove_cvref_t<Fs>>()...};
}
}  // namespace codec_internal

// MP_FIELDS(Type, m1, m2, ...): makes Type encodable by encoding its members in order. Use it in
// the namespace that declares Type, after the type is complete. The list binds every non-static
// data member in declaration order (it is a structured binding, so leaving one out is a compile
// error and no member is ever silently dropped); the names appear in TypeName<Type>() and so in the
// fingerprint. Types with private members, bases or invariants specialize mp::Codec<Type> instead.
#define MP_FIELDS(Type, ...)                                                            \
  [[maybe_unused]] inline auto MpFields(Type& mp_v) {                                   \
    auto& [__VA_ARGS__] = mp_v;                                                         \
    return std::tie(__VA_ARGS__);                                                       \
  }                                                                                     \
  [[maybe_unused]] inline auto MpFields(const Type& mp_v) {                             \
    auto& [__VA_ARGS__] = mp_v;                                                         \
    return std::tie(__VA_ARGS__);                                                       \
  }                                                                                     \
  [[maybe_unused]] inline std::string MpTypeName(const Type*) {                         \
    using MpFieldsT = decltype(MpFields(std::declval<Type&>()));                        \
    return ::mp::codec_internal::AggregateName(                                         \
        #Type, #__VA_ARGS__,                                                            \
        ::mp::codec_internal::MemberTypeNames(static_cast<const MpFieldsT*>(nullptr))); \
  }                                                                                     \
  static_assert(true, "MP_FIELDS needs a trailing semicolon")

// ---------------------------------------------------------------------------------------------------
// Whole-value helpers (no frame header; see frame.h for the framed form).

template <typename T>
size_t EncodedSize(const T& v) {
  RequireCodec<T>();
  return Codec<T>::Size(v);
}

// Writes v into `out`, which must be exactly EncodedSize(v) bytes long.
template <typename T>
void EncodeTo(const T& v, absl::Span<uint8_t> out) {
  RequireCodec<T>();
  ByteWriter w(out);
  Codec<T>::Encode(v, w);
}

template <typename T>
std::string Encode(const T& v) {
  std::string out(EncodedSize(v), '\0');
  EncodeTo(v, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  return out;
}

// Decodes one T that must use every byte of `in`.
template <typename T>
absl::Status DecodeInto(absl::Span<const uint8_t> in, T& out) {
  RequireCodec<T>();
  ByteReader r(in);
  if (absl::Status s = Codec<T>::Decode(r, out); !s.ok()) return s;
  if (r.remaining() != 0) {
    return absl::InvalidArgumentError("mp::Decode: " + std::to_string(r.remaining()) +
                                      " bytes left over after decoding a " + TypeName<T>());
  }
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> Decode(absl::Span<const uint8_t> in) {
  static_assert(!std::is_same_v<T, absl::Status>,
                "mp: StatusOr<absl::Status> cannot tell a decoded status from a failed decode; "
                "use DecodeInto(bytes, status)");
  T out{};
  if (absl::Status s = DecodeInto(in, out); !s.ok()) return s;
  return out;
}

template <typename T>
absl::StatusOr<T> Decode(absl::string_view in) {
  return Decode<T>(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(in.data()), in.size()));
}

}  // namespace mp

#endif  // MP_SERIALIZE_CODEC_H_
