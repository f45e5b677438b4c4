// Copyright 2026 The mp Authors.

#include "pool/wire.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "pool/task.h"
#include "serialize/codec.h"
#include "serialize/frame.h"

namespace mp::pool_internal {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) { return AsBytes(s); }

std::string VarintChunk() {
  const std::string bytes = "abcdefg";
  const std::vector<uint32_t> offsets = {0, 3, 3, 7};  // "abc", "", "defg"
  std::string out;
  EncodeChunk(ChunkHeader{0, 7, 40, 3}, kTimedChunk, "ns::Fn",
              reinterpret_cast<const uint8_t*>(bytes.data()), offsets.data(), out);
  return out;
}

std::string FixedChunk() {
  const std::vector<int64_t> items = {1, -2, 3};
  std::string out;
  EncodeFixedChunk(ChunkHeader{0, 9, 100, 3}, 0, "ns::Square", sizeof(int64_t),
                   reinterpret_cast<const uint8_t*>(items.data()), out);
  return out;
}

std::string MixedResults() {
  std::string out;
  StartResults(ChunkHeader{0, 7, 40, 3}, out);
  AppendOk(out, int64_t{5});
  AppendError(out, absl::NotFoundError("gone"));
  AppendOk(out, std::string("hello"));
  return out;
}

TEST(WireTest, ChunkRoundTrip) {
  const std::string m = VarintChunk();
  ToWorker w;
  ASSERT_TRUE(DecodeToWorker(Bytes(m), &w).ok());
  EXPECT_EQ(w.kind, kChunk);
  EXPECT_EQ(w.header.job, 7u);
  EXPECT_EQ(w.header.first, 40u);
  EXPECT_EQ(w.header.count, 3u);
  EXPECT_EQ(w.flags, kTimedChunk);
  EXPECT_EQ(w.function, "ns::Fn");
  ASSERT_EQ(w.items.size(), 3u);
  auto text = [](absl::Span<const uint8_t> s) {
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  };
  EXPECT_EQ(text(w.items[0]), "abc");
  EXPECT_EQ(text(w.items[1]), "");
  EXPECT_EQ(text(w.items[2]), "defg");
}

TEST(WireTest, FixedChunkRoundTrip) {
  const std::string m = FixedChunk();
  ToWorker w;
  ASSERT_TRUE(DecodeToWorker(Bytes(m), &w).ok());
  EXPECT_EQ(w.kind, kFixedChunk);
  EXPECT_EQ(w.header.job, 9u);
  EXPECT_EQ(w.function, "ns::Square");
  EXPECT_EQ(w.item_size, sizeof(int64_t));
  int64_t second = 0;
  std::memcpy(&second, w.fixed_items + sizeof(int64_t), sizeof(second));
  EXPECT_EQ(second, -2);
}

TEST(WireTest, EncodersAppend) {
  std::string m = "head";
  const std::vector<uint32_t> offsets = {0, 0};
  EncodeChunk(ChunkHeader{0, 7, 40, 1}, 0, "f", nullptr, offsets.data(), m);
  ASSERT_EQ(m.substr(0, 4), "head");
  ToWorker w;
  ASSERT_TRUE(DecodeToWorker(Bytes(m.substr(4)), &w).ok());
  EXPECT_EQ(w.header.job, 7u);
}

// Pseudo-random bytes (xorshift64), the same on every run.
class XorShift {
 public:
  std::string Bytes(size_t n) {
    std::string out(n, '\0');
    for (char& c : out) {
      x_ ^= x_ << 13;
      x_ ^= x_ >> 7;
      x_ ^= x_ << 17;
      c = static_cast<char>(x_);
    }
    return out;
  }

 private:
  uint64_t x_ = 88172645463325252ull;
};

// Chunks messages: several chunks for one worker in one message.
std::string ChunksOf(const std::vector<std::string>& chunks) {
  std::string m = "stale contents";
  StartChunks(m);
  for (const std::string& c : chunks) {
    const size_t at = StartChunksPart(m);
    m.append(c);
    FinishChunksPart(at, m);
  }
  FinishChunks(static_cast<uint32_t>(chunks.size()), m);
  return m;
}

TEST(WireTest, ChunksRoundTrip) {
  const std::string m = ChunksOf({VarintChunk(), FixedChunk(), VarintChunk()});
  EXPECT_EQ(static_cast<uint8_t>(m[0]), kChunks);
  std::vector<absl::Span<const uint8_t>> parts;
  ASSERT_TRUE(SplitChunks(Bytes(m), &parts).ok());
  ASSERT_EQ(parts.size(), 3u);
  ToWorker w;
  ASSERT_TRUE(DecodeToWorker(parts[0], &w).ok());
  EXPECT_EQ(w.kind, kChunk);
  EXPECT_EQ(w.header.job, 7u);
  ASSERT_TRUE(DecodeToWorker(parts[1], &w).ok());
  EXPECT_EQ(w.kind, kFixedChunk);
  EXPECT_EQ(w.header.job, 9u);
  ASSERT_TRUE(DecodeToWorker(parts[2], &w).ok());
  EXPECT_EQ(w.function, "ns::Fn");
  // A chunks message is not a chunk.
  EXPECT_EQ(DecodeToWorker(Bytes(m), &w).code(), absl::StatusCode::kInvalidArgument);
}

TEST(WireTest, BadChunksMessagesAreAStatus) {
  std::vector<absl::Span<const uint8_t>> parts;
  auto code = [&parts](const std::string& m) { return SplitChunks(Bytes(m), &parts).code(); };
  const auto kBad = absl::StatusCode::kInvalidArgument;
  // Every truncation.
  const std::string good = ChunksOf({VarintChunk(), FixedChunk()});
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_NE(code(good.substr(0, n)), absl::StatusCode::kOk) << "prefix " << n;
  }
  // No chunks; more than kMaxChunksPerMessage; a count beyond the bytes.
  EXPECT_EQ(code(ChunksOf({})), kBad);
  std::string m = good;
  m[1] = m[2] = m[3] = m[4] = static_cast<char>(0xff);
  EXPECT_EQ(code(m), kBad);
  m = good;
  m[1] = 3;  // three chunks claimed, two present
  EXPECT_EQ(code(m), absl::StatusCode::kOutOfRange);
  // A length past the end.
  m = good;
  m[5 + 3] = static_cast<char>(0x7f);
  EXPECT_EQ(code(m), absl::StatusCode::kOutOfRange);
  // Bytes after the last chunk.
  EXPECT_EQ(code(good + "z"), kBad);
  // A stop, another chunks message, or an empty part inside.
  EXPECT_EQ(code(ChunksOf({VarintChunk(), EncodeStop()})), kBad);
  EXPECT_EQ(code(ChunksOf({good})), kBad);
  EXPECT_EQ(code(ChunksOf({VarintChunk(), ""})), kBad);
  // Not a chunks message at all.
  EXPECT_EQ(code(VarintChunk()), kBad);
  // Random bytes: a status or parts inside the message, never a crash.
  XorShift random;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string r = random.Bytes(1 + trial % 64);
    r[0] = static_cast<char>(kChunks);
    if (trial % 2 == 0 && r.size() >= 5) r[2] = r[3] = r[4] = 0;  // a small count
    if (SplitChunks(Bytes(r), &parts).ok()) {
      for (absl::Span<const uint8_t> p : parts) {
        EXPECT_GE(p.data(), reinterpret_cast<const uint8_t*>(r.data()));
        EXPECT_LE(p.data() + p.size(), reinterpret_cast<const uint8_t*>(r.data()) + r.size());
      }
    }
  }
}

TEST(WireTest, Stop) {
  ToWorker w;
  ASSERT_TRUE(DecodeToWorker(Bytes(EncodeStop()), &w).ok());
  EXPECT_EQ(w.kind, kStop);
  EXPECT_FALSE(DecodeToWorker(Bytes(EncodeStop() + "x"), &w).ok());
}

TEST(WireTest, ResultsRoundTrip) {
  const std::string m = MixedResults();
  FromWorker f;
  ASSERT_TRUE(DecodeFromWorker(Bytes(m), &f).ok());
  EXPECT_EQ(f.kind, kChunk);
  EXPECT_EQ(f.header.first, 40u);
  ASSERT_EQ(f.outcomes.size(), 3u);
  EXPECT_TRUE(f.outcomes[0].status.ok());
  int64_t v = 0;
  ASSERT_TRUE(DecodeInto(Bytes(m).subspan(f.outcomes[0].offset, f.outcomes[0].length), v).ok());
  EXPECT_EQ(v, 5);
  EXPECT_EQ(f.outcomes[1].status, absl::NotFoundError("gone"));
  std::string s;
  ASSERT_TRUE(DecodeInto(Bytes(m).subspan(f.outcomes[2].offset, f.outcomes[2].length), s).ok());
  EXPECT_EQ(s, "hello");
}

TEST(WireTest, CompactResultsAndRawResults) {
  std::string out, scratch;
  StartResults(ChunkHeader{0, 3, 10, 2}, out);
  AppendOk(out, int32_t{11});
  AppendOk(out, int32_t{22});
  ASSERT_TRUE(CompactResults(2, scratch, out));
  FromWorker f;
  ASSERT_TRUE(DecodeFromWorker(Bytes(out), &f).ok());
  EXPECT_EQ(f.kind, kFixedResults);
  EXPECT_EQ(f.fixed_size, sizeof(int32_t));
  int32_t second = 0;
  std::memcpy(&second, out.data() + f.fixed_offset + 4, 4);
  EXPECT_EQ(second, 22);

  // Mixed results stay as they are.
  std::string mixed = MixedResults();
  EXPECT_FALSE(CompactResults(3, scratch, mixed));
  EXPECT_EQ(mixed, MixedResults());

  // Raw results become ordinary OK results.
  const int32_t raw[2] = {7, 8};
  StartResults(ChunkHeader{0, 3, 10, 2}, out);
  AppendRawResults(absl::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)), 4, 2, out);
  ASSERT_TRUE(DecodeFromWorker(Bytes(out), &f).ok());
  ASSERT_EQ(f.outcomes.size(), 2u);
  int32_t v = 0;
  ASSERT_TRUE(DecodeInto(Bytes(out).subspan(f.outcomes[1].offset, f.outcomes[1].length), v).ok());
  EXPECT_EQ(v, 8);
}

TEST(WireTest, FixedResultsRoundTrip) {
  std::string out;
  StartFixedResults(ChunkHeader{0, 1, 0, 3}, out);
  out.append(std::string(6, 'x'));
  FinishFixedResults(2, out);
  FromWorker f;
  ASSERT_TRUE(DecodeFromWorker(Bytes(out), &f).ok());
  EXPECT_EQ(f.fixed_size, 2u);
  EXPECT_EQ(f.fixed_offset, out.size() - 6);
  FinishFixedResults(3, out);  // 3 x 3 != 6 bytes
  EXPECT_EQ(DecodeFromWorker(Bytes(out), &f).code(), absl::StatusCode::kInvalidArgument);
}

TEST(WireTest, InitFailed) {
  FromWorker f;
  ASSERT_TRUE(DecodeFromWorker(Bytes(EncodeInitFailed(absl::InternalError("no db"))), &f).ok());
  EXPECT_EQ(f.kind, kInitFailed);
  EXPECT_EQ(f.init_failure, absl::InternalError("no db"));
  // An OK status in the failure's place stays a failure.
  ASSERT_TRUE(DecodeFromWorker(Bytes(EncodeInitFailed(absl::OkStatus())), &f).ok());
  EXPECT_FALSE(f.init_failure.ok());
}

// Every prefix of a valid message fails with a status (and never reads past its end: the sanitizer
// builds check that).
TEST(WireTest, EveryTruncationIsAStatus) {
  for (const std::string& m : {VarintChunk(), FixedChunk()}) {
    for (size_t n = 0; n < m.size(); ++n) {
      ToWorker w;
      const std::string cut = m.substr(0, n);
      EXPECT_FALSE(DecodeToWorker(Bytes(cut), &w).ok()) << "prefix " << n;
    }
  }
  std::string fixed;
  StartFixedResults(ChunkHeader{0, 1, 0, 2}, fixed);
  fixed.append("abcd");
  FinishFixedResults(2, fixed);
  for (const std::string& m : {MixedResults(), fixed, EncodeInitFailed(absl::InternalError("x"))}) {
    for (size_t n = 0; n < m.size(); ++n) {
      FromWorker f;
      const std::string cut = m.substr(0, n);
      EXPECT_FALSE(DecodeFromWorker(Bytes(cut), &f).ok()) << "prefix " << n;
    }
  }
}

TEST(WireTest, GarbageIsAStatus) {
  ToWorker w;
  FromWorker f;
  EXPECT_EQ(DecodeToWorker(Bytes(std::string("\x09", 1)), &w).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeFromWorker(Bytes(std::string("\x02", 1)), &f).code(),
            absl::StatusCode::kInvalidArgument);
  // A result tag other than 0 or 1.
  std::string bad;
  StartResults(ChunkHeader{0, 1, 0, 1}, bad);
  bad.push_back(7);
  EXPECT_EQ(DecodeFromWorker(Bytes(bad), &f).code(), absl::StatusCode::kInvalidArgument);
  // Trailing bytes after the last result or task.
  std::string trailing = MixedResults() + "z";
  EXPECT_EQ(DecodeFromWorker(Bytes(trailing), &f).code(), absl::StatusCode::kInvalidArgument);
  trailing = VarintChunk() + "z";
  EXPECT_EQ(DecodeToWorker(Bytes(trailing), &w).code(), absl::StatusCode::kInvalidArgument);
  // Unknown chunk flags.
  std::string flags = VarintChunk();
  flags[21] = static_cast<char>(0x80);
  EXPECT_EQ(DecodeToWorker(Bytes(flags), &w).code(), absl::StatusCode::kInvalidArgument);
  // Random bytes after every kind byte: a status either way, never a crash.
  XorShift random;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string m = random.Bytes(1 + trial % 64);
    m[0] = static_cast<char>(1 + trial % 5);
    DecodeToWorker(Bytes(m), &w).IgnoreError();
    DecodeFromWorker(Bytes(m), &f).IgnoreError();
  }
}

TEST(WireTest, OversizedFieldsAreRefused) {
  ToWorker w;
  FromWorker f;
  // A chunk whose count claims more tasks than bytes follow.
  std::string m = VarintChunk();
  m[17] = m[18] = m[19] = m[20] = static_cast<char>(0xff);
  EXPECT_EQ(DecodeToWorker(Bytes(m), &w).code(), absl::StatusCode::kInvalidArgument);
  // A function name longer than kMaxFunctionName.
  const std::string name(kMaxFunctionName + 1, 'f');
  const uint32_t offsets[1] = {0};
  std::string big;
  EncodeChunk(ChunkHeader{0, 1, 0, 0}, 0, name, nullptr, offsets, big);
  EXPECT_EQ(DecodeToWorker(Bytes(big), &w).code(), absl::StatusCode::kInvalidArgument);
  // Fixed items whose size times count overflows what the message holds.
  m = FixedChunk();
  m[22 + 1 + 10] = static_cast<char>(0xff);  // item size's low byte (after the name)
  EXPECT_FALSE(DecodeToWorker(Bytes(m), &w).ok());
  // Results whose count exceeds the bytes.
  std::string r = MixedResults();
  r[17] = r[18] = r[19] = r[20] = static_cast<char>(0xff);
  EXPECT_EQ(DecodeFromWorker(Bytes(r), &f).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mp::pool_internal
