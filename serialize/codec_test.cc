// Copyright 2026 The mp Authors.

#include "serialize/codec.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shop {
enum class Color : uint8_t { kRed = 1, kGreen = 2, kBlue = 3 };

struct Order {
  int64_t id = 0;
  std::string item;
  std::vector<double> prices;
  std::optional<Color> color;
  bool operator==(const Order&) const = default;
};
MP_FIELDS(Order, id, item, prices, color);

struct Basket {
  std::map<std::string, Order> orders;
  std::array<uint16_t, 3> counts{};
  bool operator==(const Basket&) const = default;
};
MP_FIELDS(Basket, orders, counts);
}  // namespace shop

namespace mp {

enum class Level : int32_t { kLow = 0, kHigh = 9 };
template <>
struct EnumRange<Level> {
  static constexpr Level kMin = Level::kLow;
  static constexpr Level kMax = Level::kHigh;
};

namespace {

using ::testing::HasSubstr;

template <typename T>
void ExpectRoundTrip(const T& value) {
  const std::string bytes = Encode(value);
  EXPECT_EQ(bytes.size(), EncodedSize(value));
  absl::StatusOr<T> back = Decode<T>(bytes);
  ASSERT_TRUE(back.ok()) << back.status() << " for " << TypeName<T>();
  EXPECT_EQ(*back, value) << TypeName<T>();
  // Every proper prefix is rejected, never read past.
  for (size_t cut = 0; cut < bytes.size() && cut < 64; ++cut) {
    EXPECT_FALSE(Decode<T>(absl::string_view(bytes.data(), cut)).ok())
        << TypeName<T>() << " cut at " << cut;
  }
}

template <typename T>
class ArithmeticTest : public ::testing::Test {};
using ArithmeticTypes = ::testing::Types<bool, char, int8_t, uint8_t, int16_t, uint16_t, int32_t,
                                         uint32_t, int64_t, uint64_t, float, double>;
TYPED_TEST_SUITE(ArithmeticTest, ArithmeticTypes);

TYPED_TEST(ArithmeticTest, RoundTripsLimits) {
  using T = TypeParam;
  ExpectRoundTrip<T>(T{});
  ExpectRoundTrip<T>(std::numeric_limits<T>::min());
  ExpectRoundTrip<T>(std::numeric_limits<T>::max());
  ExpectRoundTrip<T>(std::numeric_limits<T>::lowest());
  EXPECT_EQ(Encode(T{}).size(), sizeof(T));
}

TEST(Codec, IntegersAreLittleEndian) {
  EXPECT_EQ(Encode(uint32_t{0x01020304}), std::string("\x04\x03\x02\x01", 4));
  EXPECT_EQ(Encode(int16_t{-2}), std::string("\xfe\xff", 2));
}

TEST(Codec, FloatsKeepEveryBit) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  absl::StatusOr<double> back = Decode<double>(Encode(nan));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(std::isnan(*back));
  ExpectRoundTrip(-0.0);
  ExpectRoundTrip(std::numeric_limits<float>::infinity());
  ExpectRoundTrip(std::numeric_limits<double>::denorm_min());
}

TEST(Codec, BoolRejectsValuesOtherThanZeroAndOne) {
  absl::StatusOr<bool> b = Decode<bool>(std::string("\x02", 1));
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(b.status().message(), HasSubstr("bool"));
}

TEST(Codec, Enums) {
  ExpectRoundTrip(shop::Color::kBlue);
  EXPECT_EQ(Encode(shop::Color::kGreen), std::string("\x02", 1));
  ExpectRoundTrip(Level::kHigh);
  absl::StatusOr<Level> bad = Decode<Level>(Encode(int32_t{10}));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("outside its EnumRange [0, 9]"));
}

TEST(Codec, Strings) {
  ExpectRoundTrip(std::string());
  ExpectRoundTrip(std::string("hello"));
  ExpectRoundTrip(std::string("\0with\0zeros", 11));
  ExpectRoundTrip(std::string(300, 'x'));  // two-byte varint length
  EXPECT_EQ(Encode(std::string("ab")), std::string("\x02"
                                                   "ab",
                                                   3));
}

TEST(Codec, Vectors) {
  ExpectRoundTrip(std::vector<int32_t>{});
  ExpectRoundTrip(std::vector<int32_t>{1, -2, 3});
  ExpectRoundTrip(std::vector<bool>{true, false, true});
  ExpectRoundTrip(std::vector<std::string>{"a", "", "ccc"});
  ExpectRoundTrip(std::vector<std::vector<uint8_t>>{{}, {1}, {2, 3}});
}

TEST(Codec, Arrays) {
  ExpectRoundTrip(std::array<int64_t, 4>{1, 2, 3, 4});
  ExpectRoundTrip(std::array<std::string, 2>{"x", "yy"});
  ExpectRoundTrip(std::array<uint8_t, 0>{});
  EXPECT_EQ(Encode(std::array<uint8_t, 3>{1, 2, 3}).size(), 3u);  // no count
}

TEST(Codec, PairsTuplesOptionals) {
  ExpectRoundTrip(std::pair<int, std::string>{7, "seven"});
  ExpectRoundTrip(std::tuple<>{});
  ExpectRoundTrip(std::tuple<int8_t, double, std::string>{-1, 2.5, "z"});
  ExpectRoundTrip(std::optional<int>{});
  ExpectRoundTrip(std::optional<int>{42});
  ExpectRoundTrip(std::optional<std::vector<std::string>>{{"a"}});
  absl::StatusOr<std::optional<int>> bad = Decode<std::optional<int>>(std::string("\x05", 1));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Codec, Maps) {
  ExpectRoundTrip(std::map<std::string, int>{{"a", 1}, {"b", 2}});
  ExpectRoundTrip(std::unordered_map<int, std::string>{{1, "x"}, {2, "y"}});
  ExpectRoundTrip(absl::flat_hash_map<std::string, std::vector<double>>{{"k", {1.0, 2.0}}});
  ExpectRoundTrip(std::map<int, std::map<int, int>>{{1, {{2, 3}}}});
}

TEST(Codec, MapRejectsDuplicateKeys) {
  // count 2, key 1 -> 10, key 1 -> 11
  std::string bytes = std::string("\x02", 1) + Encode(int32_t{1}) + Encode(int32_t{10}) +
                      Encode(int32_t{1}) + Encode(int32_t{11});
  absl::StatusOr<std::map<int32_t, int32_t>> m = Decode<std::map<int32_t, int32_t>>(bytes);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(), HasSubstr("repeats a key"));
}

TEST(Codec, UserTypesWithFields) {
  shop::Order order{7, "pen", {1.5, 2.25}, shop::Color::kRed};
  ExpectRoundTrip(order);
  shop::Basket basket{{{"first", order}, {"second", shop::Order{}}}, {1, 2, 3}};
  ExpectRoundTrip(basket);
  EXPECT_EQ(TypeName<shop::Order>(), "Order{id:i64,item:str,prices:vec<f64>,color:opt<enum:u8>}");
}

TEST(Codec, TypeNamesAreStructural) {
  EXPECT_EQ(TypeName<int32_t>(), "i32");
  EXPECT_EQ(TypeName<std::vector<std::string>>(), "vec<str>");
  EXPECT_EQ((TypeName<std::map<std::string, std::optional<double>>>()), "map<str,opt<f64>>");
  EXPECT_EQ((TypeName<std::tuple<bool, uint8_t>>()), "tuple<bool,u8>");
  EXPECT_EQ((TypeName<std::array<float, 2>>()), "arr<f32,2>");
  EXPECT_NE(TypeFingerprint<std::vector<int32_t>>(), TypeFingerprint<std::vector<uint32_t>>());
  EXPECT_EQ(TypeFingerprint<std::vector<int32_t>>(), Fingerprint("vec<i32>"));
}

TEST(Codec, HugeCountIsRefusedBeforeAllocating) {
  // varint 2^62 as a vector<uint64_t> length with nothing behind it.
  std::string bytes("\x80\x80\x80\x80\x80\x80\x80\x80\x40", 9);
  absl::StatusOr<std::vector<uint64_t>> v = Decode<std::vector<uint64_t>>(bytes);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(v.status().message(), HasSubstr("only 0 bytes remain"));
}

TEST(Codec, VarintsMustBeCanonical) {
  ByteReader overlong(reinterpret_cast<const uint8_t*>("\x81\x00"), 2);
  EXPECT_EQ(overlong.ReadVarint("x").status().code(), absl::StatusCode::kInvalidArgument);
  ByteReader too_big(reinterpret_cast<const uint8_t*>("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"),
                     10);
  EXPECT_EQ(too_big.ReadVarint("x").status().code(), absl::StatusCode::kInvalidArgument);
  ByteReader max(reinterpret_cast<const uint8_t*>("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), 10);
  absl::StatusOr<uint64_t> v = max.ReadVarint("x");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, std::numeric_limits<uint64_t>::max());
}

TEST(Codec, TrailingBytesAreAnError) {
  absl::StatusOr<int32_t> v = Decode<int32_t>(std::string(5, '\0'));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(v.status().message(), HasSubstr("1 bytes left over"));
}

TEST(Codec, TruncationIsOutOfRangeAndNamesWhat) {
  absl::StatusOr<std::string> s =
      Decode<std::string>(std::string("\x05"
                                      "ab",
                                      3));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);  // count check fails first
  absl::StatusOr<int64_t> i = Decode<int64_t>(std::string(3, '\0'));
  EXPECT_EQ(i.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(i.status().message(), HasSubstr("i64"));
}

TEST(Codec, BoundarySizes) {
  ExpectRoundTrip(std::vector<uint8_t>{});
  std::vector<uint8_t> big(16u << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 31);
  const std::string bytes = Encode(big);
  EXPECT_EQ(bytes.size(), big.size() + VarintSize(big.size()));
  absl::StatusOr<std::vector<uint8_t>> back = Decode<std::vector<uint8_t>>(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == big);
}

struct NoCodec {};
static_assert(!HasCodec<NoCodec>);
static_assert(!HasCodec<std::vector<NoCodec>>);
static_assert(HasCodec<shop::Basket>);
static_assert(HasCodec<std::map<std::string, std::vector<std::optional<shop::Order>>>>);

}  // namespace
}  // namespace mp
