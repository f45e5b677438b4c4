// Copyright 2026 The mp Authors.

#include "pool/wire.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "serialize/codec.h"
#include "serialize/status.h"

namespace mp {
namespace pool_internal {
namespace {

constexpr size_t kHeaderSize = 1 + 8 + 8 + 4;

uint8_t* Grow(std::string& out, size_t size) {
  const size_t at = out.size();
  out.resize(at + size);
  return reinterpret_cast<uint8_t*>(out.data()) + at;
}

void WriteHeader(ByteWriter& w, uint8_t kind, const ChunkHeader& h) {
  w.WriteByte(kind);
  w.WriteLE(h.job);
  w.WriteLE(h.first);
  w.WriteLE(h.count);
}

// Appends the header, flags and function name of a chunk (kind kChunk or kFixedChunk) to `out`,
// `rest` more bytes reserved behind them; returns the writer positioned after the name.
ByteWriter StartChunk(uint8_t kind, const ChunkHeader& h, uint8_t flags, absl::string_view function,
                      size_t rest, std::string& out) {
  const size_t size = kHeaderSize + 1 + VarintSize(function.size()) + function.size() + rest;
  if (out.capacity() < out.size() + size) out.reserve(out.size() + size);
  ByteWriter w(Grow(out, size), size);
  WriteHeader(w, kind, h);
  w.WriteByte(flags);
  w.WriteVarint(function.size());
  w.Write(function.data(), function.size());
  return w;
}

absl::Status ReadHeader(ByteReader& r, uint8_t kind, ChunkHeader* h) {
  h->kind = kind;
  if (absl::Status s = r.ReadLE(&h->job, "job id"); !s.ok()) return s;
  if (absl::Status s = r.ReadLE(&h->first, "first index"); !s.ok()) return s;
  return r.ReadLE(&h->count, "count");
}

absl::StatusOr<absl::Span<const uint8_t>> ReadBlob(ByteReader& r, absl::string_view what) {
  absl::StatusOr<uint64_t> n = r.ReadVarint(what);
  if (!n.ok()) return n.status();
  return r.ReadSpan(*n, what);
}

absl::Status TooMany(absl::string_view what, uint32_t count, size_t left) {
  return absl::InvalidArgumentError(absl::StrCat("Pool wire: ", what, " claims ", count,
                                                 " items but only ", left, " bytes follow"));
}

}  // namespace

void EncodeChunk(const ChunkHeader& h, uint8_t flags, absl::string_view function,
                 const uint8_t* bytes, const uint32_t* offsets, std::string& out) {
  size_t rest = 0;
  for (uint32_t k = 0; k < h.count; ++k) {
    const uint32_t len = offsets[k + 1] - offsets[k];
    rest += VarintSize(len) + len;
  }
  ByteWriter w = StartChunk(kChunk, h, flags, function, rest, out);
  for (uint32_t k = 0; k < h.count; ++k) {
    const uint32_t len = offsets[k + 1] - offsets[k];
    w.WriteVarint(len);
    w.Write(bytes + offsets[k], len);
  }
}

void EncodeFixedChunk(const ChunkHeader& h, uint8_t flags, absl::string_view function,
                      uint32_t item_size, const uint8_t* items, std::string& out) {
  const size_t bytes = size_t{item_size} * h.count;
  out.reserve(out.size() + kHeaderSize + 1 + VarintSize(function.size()) + function.size() + 4 +
              bytes);
  ByteWriter w = StartChunk(kFixedChunk, h, flags, function, 4, out);
  w.WriteLE(item_size);
  out.append(reinterpret_cast<const char*>(items), bytes);  // no zero fill before the copy
}

void StartChunks(std::string& out) {
  out.clear();
  ByteWriter w(Grow(out, 5), 5);
  w.WriteByte(kChunks);
  w.WriteLE(uint32_t{0});
}

size_t StartChunksPart(std::string& out) {
  const size_t at = out.size();
  Grow(out, 4);
  return at;
}

void FinishChunksPart(size_t at, std::string& out) {
  ByteWriter w(reinterpret_cast<uint8_t*>(out.data()) + at, 4);
  w.WriteLE(static_cast<uint32_t>(out.size() - at - 4));
}

void FinishChunks(uint32_t count, std::string& out) {
  ByteWriter w(reinterpret_cast<uint8_t*>(out.data()) + 1, 4);
  w.WriteLE(count);
}

absl::Status SplitChunks(absl::Span<const uint8_t> message,
                         std::vector<absl::Span<const uint8_t>>* parts) {
  parts->clear();
  ByteReader r(message);
  absl::StatusOr<uint8_t> kind = r.ReadByte("message kind");
  if (!kind.ok()) return kind.status();
  if (*kind != kChunks) {
    return absl::InvalidArgumentError(
        absl::StrCat("Pool wire: message kind ", *kind, " is not a chunks message (6)"));
  }
  uint32_t count = 0;
  if (absl::Status s = r.ReadLE(&count, "chunks count"); !s.ok()) return s;
  if (count == 0 || count > kMaxChunksPerMessage) {
    return absl::InvalidArgumentError(absl::StrCat("Pool wire: a chunks message of ", count,
                                                   " chunks (1 to ", kMaxChunksPerMessage, ")"));
  }
  if (count > r.remaining() / 4) return TooMany("a chunks message", count, r.remaining());
  parts->reserve(count);
  for (uint32_t k = 0; k < count; ++k) {
    uint32_t length = 0;
    if (absl::Status s = r.ReadLE(&length, "chunk length"); !s.ok()) return s;
    absl::StatusOr<absl::Span<const uint8_t>> part = r.ReadSpan(length, "chunk");
    if (!part.ok()) return part.status();
    if (part->empty() || ((*part)[0] != kChunk && (*part)[0] != kFixedChunk)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Pool wire: part ", k, " of a chunks message is not a chunk (kind 1 or 4)"));
    }
    parts->push_back(*part);
  }
  if (r.remaining() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Pool wire: ", r.remaining(), " bytes after a chunks message's last chunk"));
  }
  return absl::OkStatus();
}

std::string EncodeStop() { return std::string(1, static_cast<char>(kStop)); }

absl::Status DecodeToWorker(absl::Span<const uint8_t> message, ToWorker* out) {
  ByteReader r(message);
  absl::StatusOr<uint8_t> kind = r.ReadByte("message kind");
  if (!kind.ok()) return kind.status();
  out->kind = *kind;
  out->items.clear();
  out->fixed_items = nullptr;
  out->item_size = 0;
  if (*kind == kStop) {
    if (r.remaining() != 0) return absl::InvalidArgumentError("Pool wire: bytes after a stop");
    return absl::OkStatus();
  }
  if (*kind != kChunk && *kind != kFixedChunk) {
    return absl::InvalidArgumentError(
        absl::StrCat("Pool wire: unknown message kind ", *kind, " for a worker (1, 2 or 4)"));
  }
  if (absl::Status s = ReadHeader(r, *kind, &out->header); !s.ok()) return s;
  absl::StatusOr<uint8_t> flags = r.ReadByte("chunk flags");
  if (!flags.ok()) return flags.status();
  if ((*flags & ~kTimedChunk) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("Pool wire: unknown chunk flags ", *flags));
  }
  out->flags = *flags;
  absl::StatusOr<uint64_t> name_size = r.ReadVarint("function name length");
  if (!name_size.ok()) return name_size.status();
  if (*name_size > kMaxFunctionName) {
    return absl::InvalidArgumentError(absl::StrCat("Pool wire: function name of ", *name_size,
                                                   " bytes (max ", kMaxFunctionName, ")"));
  }
  absl::StatusOr<absl::Span<const uint8_t>> name = r.ReadSpan(*name_size, "function name");
  if (!name.ok()) return name.status();
  out->function = absl::string_view(reinterpret_cast<const char*>(name->data()), name->size());
  const uint32_t count = out->header.count;
  if (*kind == kFixedChunk) {
    if (absl::Status s = r.ReadLE(&out->item_size, "item size"); !s.ok()) return s;
    const uint64_t bytes = uint64_t{out->item_size} * count;
    if (bytes != r.remaining()) {
      return absl::InvalidArgumentError(absl::StrCat("Pool wire: ", count, " fixed items of ",
                                                     out->item_size, " bytes need ", bytes,
                                                     " bytes, the message has ", r.remaining()));
    }
    out->fixed_items = r.position();
    return absl::OkStatus();
  }
  if (count > r.remaining()) return TooMany("a chunk", count, r.remaining());
  out->items.reserve(count);
  for (uint32_t k = 0; k < count; ++k) {
    absl::StatusOr<absl::Span<const uint8_t>> args = ReadBlob(r, "task arguments");
    if (!args.ok()) return args.status();
    out->items.push_back(*args);
  }
  if (r.remaining() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Pool wire: ", r.remaining(), " bytes after the chunk's last task"));
  }
  return absl::OkStatus();
}

void StartResults(const ChunkHeader& h, std::string& out) {
  out.clear();
  ByteWriter w(Grow(out, kHeaderSize), kHeaderSize);
  WriteHeader(w, kChunk, h);
}

void StartFixedResults(const ChunkHeader& h, std::string& out) {
  out.clear();
  ByteWriter w(Grow(out, kHeaderSize + 4), kHeaderSize + 4);
  WriteHeader(w, kFixedResults, h);
  w.WriteLE(uint32_t{0});
}

void FinishFixedResults(uint32_t size, std::string& out) {
  ByteWriter w(reinterpret_cast<uint8_t*>(out.data()) + kHeaderSize, 4);
  w.WriteLE(size);
}

void AppendRawResults(absl::string_view raw, size_t size, uint32_t count, std::string& out) {
  const size_t each = 1 + VarintSize(size) + size;
  ByteWriter w(Grow(out, each * count), each * count);
  for (uint32_t i = 0; i < count; ++i) {
    w.WriteByte(0);
    w.WriteVarint(size);
    w.Write(raw.data() + size_t{i} * size, size);
  }
}

bool CompactResults(uint32_t count, std::string& scratch, std::string& out) {
  if (count == 0 || out.size() < kHeaderSize + 2) return false;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(out.data()) + kHeaderSize;
  const size_t size = p[1];  // a varint below 128 is its one byte
  if (size >= 128 || out.size() != kHeaderSize + size_t{count} * (2 + size)) return false;
  for (uint32_t i = 0; i < count; ++i) {
    if (p[i * (2 + size)] != 0 || p[i * (2 + size) + 1] != size) return false;
  }
  scratch.clear();
  const size_t total = kHeaderSize + 4 + size * count;
  ByteWriter w(Grow(scratch, total), total);
  w.WriteByte(kFixedResults);
  w.Write(out.data() + 1, kHeaderSize - 1);
  w.WriteLE(static_cast<uint32_t>(size));
  for (uint32_t i = 0; i < count; ++i) w.Write(p + i * (2 + size) + 2, size);
  out.swap(scratch);
  return true;
}

std::string EncodeInitFailed(const absl::Status& status) {
  const absl::Status failure = AsFailure(status);
  std::string out;
  const size_t size = 1 + Codec<absl::Status>::Size(failure);
  ByteWriter w(Grow(out, size), size);
  w.WriteByte(kInitFailed);
  Codec<absl::Status>::Encode(failure, w);
  return out;
}

absl::Status DecodeFromWorker(absl::Span<const uint8_t> message, FromWorker* out) {
  if (message.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Pool wire: a worker's message of ", message.size(), " bytes (max 4 GiB)"));
  }
  ByteReader r(message);
  absl::StatusOr<uint8_t> kind = r.ReadByte("message kind");
  if (!kind.ok()) return kind.status();
  out->kind = *kind;
  out->outcomes.clear();
  if (*kind == kInitFailed) {
    absl::Status decoded;
    if (absl::Status s = Codec<absl::Status>::Decode(r, decoded); !s.ok()) return s;
    if (r.remaining() != 0) {
      return absl::InvalidArgumentError("Pool wire: bytes after an initializer's failure");
    }
    out->init_failure = AsFailure(std::move(decoded));
    return absl::OkStatus();
  }
  if (*kind != kChunk && *kind != kFixedResults) {
    return absl::InvalidArgumentError(
        absl::StrCat("Pool wire: unknown message kind ", *kind, " from a worker (1, 3 or 5)"));
  }
  if (absl::Status s = ReadHeader(r, *kind, &out->header); !s.ok()) return s;
  const uint32_t count = out->header.count;
  if (*kind == kFixedResults) {
    if (absl::Status s = r.ReadLE(&out->fixed_size, "result size"); !s.ok()) return s;
    const uint64_t bytes = uint64_t{out->fixed_size} * count;
    if (bytes != r.remaining()) {
      return absl::InvalidArgumentError(absl::StrCat("Pool wire: ", count, " fixed results of ",
                                                     out->fixed_size, " bytes need ", bytes,
                                                     " bytes, the message has ", r.remaining()));
    }
    out->fixed_offset = message.size() - r.remaining();
    return absl::OkStatus();
  }
  if (count > r.remaining()) return TooMany("a results message", count, r.remaining());
  out->outcomes.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    TaskOutcome& o = out->outcomes[i];
    absl::Span<const uint8_t> payload;
    if (absl::Status s = ReadResult(r, &o.status, &payload); !s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat("Pool wire: result of task ", i, ": ", s.message()));
    }
    if (o.status.ok()) {
      o.offset = static_cast<uint32_t>(payload.data() - message.data());
      o.length = static_cast<uint32_t>(payload.size());
    }
  }
  if (r.remaining() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Pool wire: ", r.remaining(), " bytes after the last result"));
  }
  return absl::OkStatus();
}

}  // namespace pool_internal
}  // namespace mp
