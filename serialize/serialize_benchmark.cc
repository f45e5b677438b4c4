// Copyright 2026 The mp Authors.
//
// Encode+decode costs against memcpy of the same bytes, in one binary:
//   bazel run -c opt //serialize:serialize_benchmark
// Each codec benchmark has a *_Memcpy twin copying as many bytes as the encoding holds (twice: one
// copy out, one copy back, as encode+decode touches the data twice), so their ratio is the price of
// the codec.

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "serialize/codec.h"
#include "serialize/flat.h"
#include "serialize/frame.h"
#include "serialize/sample_generated.h"

namespace bench {
struct Small {
  int64_t id = 0;
  double x = 0, y = 0;
  int32_t kind = 0;
  std::string tag;
};
MP_FIELDS(Small, id, x, y, kind, tag);
}  // namespace bench

namespace {

void MemcpyTwice(benchmark::State& state, size_t n) {
  std::vector<uint8_t> src(n, 1), mid(n), dst(n);
  for (auto _ : state) {
    std::memcpy(mid.data(), src.data(), n);
    benchmark::DoNotOptimize(mid.data());
    std::memcpy(dst.data(), mid.data(), n);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}

template <typename T>
void RoundTrip(benchmark::State& state, const T& value) {
  const size_t size = mp::FrameSize(value);
  std::vector<uint8_t> buf(size);
  T out{};
  for (auto _ : state) {
    if (!mp::EncodeFrameTo(value, absl::Span<uint8_t>(buf)).ok()) state.SkipWithError("encode");
    if (!mp::DecodeFrameInto(absl::Span<const uint8_t>(buf), out).ok())
      state.SkipWithError("decode");
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  state.counters["bytes"] = static_cast<double>(size);
}

const bench::Small kSmall{42, 1.5, -2.5, 7, "sensor-1"};

void BM_SmallStruct_Codec(benchmark::State& state) { RoundTrip(state, kSmall); }
void BM_SmallStruct_Memcpy(benchmark::State& state) { MemcpyTwice(state, mp::FrameSize(kSmall)); }

const std::vector<uint8_t>& OneMiB() {
  static const std::vector<uint8_t> v(1 << 20, 0x5a);
  return v;
}
void BM_Vector1MiB_Codec(benchmark::State& state) { RoundTrip(state, OneMiB()); }
void BM_Vector1MiB_Memcpy(benchmark::State& state) { MemcpyTwice(state, mp::FrameSize(OneMiB())); }

// FlatBuffer: the sender frames a finished buffer; the receiver verifies it in place (zero-copy).
std::vector<uint64_t> FlatFrame() {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<double> values(16, 0.25);
  std::vector<flatbuffers::Offset<mp::sample::Tag>> tags = {
      mp::sample::CreateTagDirect(fbb, "host", "a"), mp::sample::CreateTagDirect(fbb, "pid", "9")};
  fbb.Finish(
      mp::sample::CreateSampleDirect(fbb, 1, "bench", mp::sample::Level_Info, &values, &tags));
  std::string frame = *mp::EncodeFlatFrame<mp::sample::Sample>(fbb);
  std::vector<uint64_t> aligned((frame.size() + 7) / 8);
  std::memcpy(aligned.data(), frame.data(), frame.size());
  aligned.push_back(frame.size());  // remember the size in the last word
  return aligned;
}
void BM_FlatBuffer_BuildFrameVerify(benchmark::State& state) {
  std::vector<double> values(16, 0.25);
  size_t bytes = 0;
  for (auto _ : state) {
    flatbuffers::FlatBufferBuilder fbb(512);
    std::vector<flatbuffers::Offset<mp::sample::Tag>> tags = {
        mp::sample::CreateTagDirect(fbb, "host", "a"),
        mp::sample::CreateTagDirect(fbb, "pid", "9")};
    fbb.Finish(
        mp::sample::CreateSampleDirect(fbb, 1, "bench", mp::sample::Level_Info, &values, &tags));
    absl::StatusOr<std::string> frame = mp::EncodeFlatFrame<mp::sample::Sample>(fbb);
    // std::string storage from operator new is 16-aligned for this size: the view is zero-copy.
    auto view = mp::FlatView<mp::sample::Sample>::Parse(mp::AsBytes(*frame));
    if (!view.ok()) state.SkipWithError("verify");
    benchmark::DoNotOptimize((*view)->id());
    bytes = frame->size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
void BM_FlatBuffer_VerifyOnly(benchmark::State& state) {
  std::vector<uint64_t> frame = FlatFrame();
  const size_t size = frame.back();
  absl::Span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(frame.data()), size);
  for (auto _ : state) {
    auto view = mp::FlatView<mp::sample::Sample>::Parse(bytes);
    if (!view.ok()) state.SkipWithError("verify");
    benchmark::DoNotOptimize((*view)->id());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}
void BM_FlatBuffer_Memcpy(benchmark::State& state) { MemcpyTwice(state, FlatFrame().back()); }

BENCHMARK(BM_SmallStruct_Codec);
BENCHMARK(BM_SmallStruct_Memcpy);
BENCHMARK(BM_Vector1MiB_Codec);
BENCHMARK(BM_Vector1MiB_Memcpy);
BENCHMARK(BM_FlatBuffer_BuildFrameVerify);
BENCHMARK(BM_FlatBuffer_VerifyOnly);
BENCHMARK(BM_FlatBuffer_Memcpy);

}  // namespace
