// Copyright 2026 The mp Authors.
//
// Feeds random and mutated buffers to every decoder in serialize/. The property: each input yields
// a value or a status, never a crash, a hang, an over-read or undefined behaviour (run under
// --config=asan and --config=ubsan). Deterministic: a fixed seed, so a failure reproduces.

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"
#include "serialize/codec.h"
#include "serialize/fd.h"
#include "serialize/flat.h"
#include "serialize/frame.h"
#include "serialize/sample_generated.h"

namespace fuzz {
struct Record {
  int32_t id = 0;
  std::string name;
  std::vector<double> values;
  std::optional<std::map<std::string, int64_t>> attrs;
  bool flag = false;
};
MP_FIELDS(Record, id, name, values, attrs, flag);
}  // namespace fuzz

namespace mp {
namespace {

using Bytes = std::vector<uint8_t>;

// One decoder under test: returns whether it accepted the input (the value is discarded).
struct Decoder {
  std::string name;
  std::function<bool(absl::Span<const uint8_t>)> decode;
  std::vector<Bytes> seeds;
};

Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

template <typename T>
Decoder ValueDecoder(std::vector<T> samples) {
  Decoder d{"Decode<" + TypeName<T>() + ">",
            [](absl::Span<const uint8_t> in) { return Decode<T>(in).ok(); },
            {}};
  for (const T& s : samples) d.seeds.push_back(ToBytes(Encode(s)));
  return d;
}

template <typename T>
Decoder FrameDecoder(std::vector<T> samples) {
  Decoder d{"DecodeFrame<" + TypeName<T>() + ">",
            [](absl::Span<const uint8_t> in) { return DecodeFrame<T>(in).ok(); },
            {}};
  for (const T& s : samples) d.seeds.push_back(ToBytes(*EncodeFrame(s)));
  return d;
}

Bytes SampleFlatBuffer(uint64_t id, int tags) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<double> values(static_cast<size_t>(id % 7), 1.5);
  std::vector<flatbuffers::Offset<sample::Tag>> t;
  for (int i = 0; i < tags; ++i) t.push_back(sample::CreateTagDirect(fbb, "k", "v"));
  std::vector<uint8_t> payload(static_cast<size_t>(id % 13), 7);
  fbb.Finish(
      sample::CreateSampleDirect(fbb, id, "src", sample::Level_Error, &values, &t, &payload));
  return Bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

std::vector<Decoder> AllDecoders() {
  fuzz::Record rec{5, "five", {1, 2}, std::map<std::string, int64_t>{{"a", 1}}, true};
  std::vector<Decoder> d;
  d.push_back(ValueDecoder<bool>({true, false}));
  d.push_back(ValueDecoder<int64_t>({0, -1, 1ll << 40}));
  d.push_back(ValueDecoder<double>({0.5, -1e300}));
  d.push_back(ValueDecoder<std::string>({"", "abc", std::string(200, 'z')}));
  d.push_back(ValueDecoder<std::vector<int32_t>>({{}, {1, 2, 3}}));
  d.push_back(ValueDecoder<std::vector<std::string>>({{"a", "bb", ""}}));
  d.push_back(ValueDecoder<std::array<uint16_t, 3>>({{1, 2, 3}}));
  d.push_back(ValueDecoder<std::pair<int8_t, std::string>>({{1, "x"}}));
  d.push_back(ValueDecoder<std::tuple<bool, float, std::vector<uint8_t>>>({{true, 1.f, {9}}}));
  d.push_back(ValueDecoder<std::optional<std::string>>({std::nullopt, "x"}));
  d.push_back(ValueDecoder<std::map<std::string, std::vector<int16_t>>>({{{"k", {1}}, {"j", {}}}}));
  d.push_back(ValueDecoder<std::unordered_map<int32_t, bool>>({{{1, true}, {2, false}}}));
  d.push_back(ValueDecoder<absl::flat_hash_map<uint8_t, std::string>>({{{1, "one"}}}));
  d.push_back(ValueDecoder<fuzz::Record>({rec, fuzz::Record{}}));
  d.push_back(ValueDecoder<std::vector<fuzz::Record>>({{rec, rec}}));
  d.push_back(FrameDecoder<std::string>({"hello", ""}));
  d.push_back(FrameDecoder<fuzz::Record>({rec}));
  d.push_back(FrameDecoder<std::vector<std::optional<double>>>({{1.0, std::nullopt}}));
  d.push_back(Decoder{"ParseFrameHeader",
                      [](absl::Span<const uint8_t> in) { return ParseFrameHeader(in).ok(); },
                      {ToBytes(*EncodeFrame(int32_t{3}))}});
  d.push_back(Decoder{"Decode<PassedFd> with a table",
                      [](absl::Span<const uint8_t> in) {
                        FdTable table(std::vector<int>{-1, -1});  // slots, never real fds
                        ScopedFdTable scope(&table);
                        return Decode<std::vector<PassedFd>>(in).ok();
                      },
                      {ToBytes(std::string("\x02\x01\x00\x00\x00\x02\x00\x00\x00", 9))}});
  // FlatBuffers: the owned copy path, the Codec path and the zero-copy frame path.
  std::vector<Bytes> flat_seeds = {SampleFlatBuffer(1, 0), SampleFlatBuffer(20, 3)};
  d.push_back(Decoder{
      "FlatBuffer<Sample>::Copy",
      [](absl::Span<const uint8_t> in) { return FlatBuffer<sample::Sample>::Copy(in).ok(); },
      flat_seeds});
  Decoder flat_frame{"FlatView<Sample>::Parse",
                     [](absl::Span<const uint8_t> in) {
                       // Receive buffers are 8-aligned; copy there like a transport would.
                       std::vector<uint64_t> aligned((in.size() + 7) / 8 + 1);
                       if (!in.empty()) std::memcpy(aligned.data(), in.data(), in.size());
                       return FlatView<sample::Sample>::Parse(
                                  {reinterpret_cast<const uint8_t*>(aligned.data()), in.size()})
                           .ok();
                     },
                     {}};
  for (const Bytes& b : flat_seeds) {
    Bytes frame(kFrameHeaderSize + b.size());
    WriteFrameHeader({static_cast<uint32_t>(b.size()), FlatFrameFingerprint<sample::Sample>()},
                     absl::Span<uint8_t>(frame.data(), kFrameHeaderSize));
    std::memcpy(frame.data() + kFrameHeaderSize, b.data(), b.size());
    flat_frame.seeds.push_back(frame);
  }
  d.push_back(flat_frame);
  d.push_back(Decoder{
      "DecodeFrame<FlatBuffer<Sample>>",
      [](absl::Span<const uint8_t> in) { return DecodeFrame<FlatBuffer<sample::Sample>>(in).ok(); },
      {}});
  for (const Bytes& b : flat_seeds) {
    d.back().seeds.push_back(ToBytes(*EncodeFrame(*FlatBuffer<sample::Sample>::Copy(b))));
  }
  return d;
}

Bytes Mutate(const Bytes& seed, std::mt19937_64& rng) {
  Bytes b = seed;
  std::uniform_int_distribution<int> op_dist(0, 6);
  const int ops = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < ops; ++k) {
    const size_t pos = b.empty() ? 0 : rng() % b.size();
    switch (op_dist(rng)) {
      case 0:  // flip a bit
        if (!b.empty()) b[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1:  // set an interesting byte
        if (!b.empty()) {
          static constexpr uint8_t kInteresting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x40};
          b[pos] = kInteresting[rng() % sizeof(kInteresting)];
        }
        break;
      case 2:  // truncate
        b.resize(pos);
        break;
      case 3:  // insert random bytes
        b.insert(b.begin() + static_cast<ptrdiff_t>(pos), 1 + rng() % 8,
                 static_cast<uint8_t>(rng()));
        break;
      case 4:  // erase a run
        if (!b.empty()) {
          b.erase(b.begin() + static_cast<ptrdiff_t>(pos),
                  b.begin() + static_cast<ptrdiff_t>(std::min(b.size(), pos + 1 + rng() % 8)));
        }
        break;
      case 5:  // overwrite 4 bytes with a huge little-endian length
        if (b.size() >= 4) {
          const size_t p = rng() % (b.size() - 3);
          const uint32_t v = static_cast<uint32_t>(rng()) | 0x80000000u;
          std::memcpy(&b[p], &v, 4);
        }
        break;
      case 6:  // duplicate a run
        if (!b.empty()) {
          const size_t len = std::min<size_t>(b.size() - pos, 1 + rng() % 16);
          Bytes run(b.begin() + static_cast<ptrdiff_t>(pos),
                    b.begin() + static_cast<ptrdiff_t>(pos + len));
          b.insert(b.begin() + static_cast<ptrdiff_t>(pos), run.begin(), run.end());
        }
        break;
    }
  }
  return b;
}

TEST(DecodeFuzz, RandomAndMutatedInputsNeverCrash) {
  std::vector<Decoder> decoders = AllDecoders();
  std::mt19937_64 rng(0x6d70);  // fixed: failures reproduce
  constexpr int kInputsPerDecoder = 5000;
  size_t total = 0;
  for (Decoder& d : decoders) {
    ASSERT_FALSE(d.seeds.empty()) << d.name;
    for (const Bytes& seed : d.seeds) {
      ASSERT_TRUE(d.decode(seed)) << d.name << " rejects its own seed";
    }
    size_t accepted = 0;
    for (int i = 0; i < kInputsPerDecoder; ++i) {
      Bytes input;
      if (i % 4 == 0) {  // pure random
        input.resize(rng() % 64);
        for (uint8_t& x : input) x = static_cast<uint8_t>(rng());
      } else {
        input = Mutate(d.seeds[rng() % d.seeds.size()], rng);
      }
      accepted += d.decode(input) ? 1 : 0;
      ++total;
    }
    // Mutations must actually reach the error paths: most inputs are refused.
    EXPECT_LT(accepted, static_cast<size_t>(kInputsPerDecoder)) << d.name;
  }
  EXPECT_GE(total, 100'000u);
}

}  // namespace
}  // namespace mp
