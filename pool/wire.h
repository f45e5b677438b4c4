// Copyright 2026 The mp Authors.
//
// pool/wire.h — the messages between the pool and a worker (internal to mp), stated once.
//
// Pool -> worker, a chunk:        u8 1 | u64 job | u64 first | u32 count | u8 flags |
//                                 varint len + function name | count x (varint len + arguments)
// Pool -> worker, a fixed chunk:  u8 4 | u64 job | u64 first | u32 count | u8 flags |
//                                 varint len + function name | u32 item size | count x item
// Pool -> worker, chunks:         u8 6 | u32 n | n x (u32 length + a chunk or fixed chunk)
//                                 (several chunks for one worker in one message, 1 <= n <= 1024)
// Pool -> worker, stop:           u8 2
// Worker -> pool, results:        u8 1 | u64 job | u64 first | u32 count | count x result
//                                 (task.h's AppendOk / AppendError)
// Worker -> pool, fixed results:  u8 5 | u64 job | u64 first | u32 count | u32 size |
//                                 count x payload (every task succeeded with a payload of `size`)
// Worker -> pool, initializer failed: u8 3 | Codec<absl::Status>
// Integers are little-endian; varints are serialize's (ByteWriter::WriteVarint); statuses are the
// shared Codec<absl::Status> and a decoded failure is never OK (AsFailure). Every decoder bounds
// every length by the bytes it was given and fails with a status naming what was wrong.
//
// A worker numbers the chunks it receives 1, 2, 3... and claims each in its Slot (slot.h) before
// running it; a chunk the pool took back first is skipped without a reply.

#ifndef MP_POOL_WIRE_H_
#define MP_POOL_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "pool/task.h"

namespace mp {
namespace pool_internal {

enum MessageKind : uint8_t {
  kChunk = 1,
  kStop = 2,
  kInitFailed = 3,
  kFixedChunk = 4,
  kFixedResults = 5,
  kChunks = 6,
};

// Chunk flags.
inline constexpr uint8_t kTimedChunk = 1;  // the worker records when each task starts (Slot)

// The most chunks a chunks message may carry.
inline constexpr uint32_t kMaxChunksPerMessage = 1024;

// The longest function name a chunk may carry.
inline constexpr size_t kMaxFunctionName = 4096;

struct ChunkHeader {
  uint8_t kind = 0;
  uint64_t job = 0;
  uint64_t first = 0;
  uint32_t count = 0;
};

// ---- Pool -> worker ----

// Appends a chunk of `h.count` tasks to `out`: task k's arguments are bytes[offsets[k],
// offsets[k + 1]) (offsets holds count + 1 entries).
void EncodeChunk(const ChunkHeader& h, uint8_t flags, absl::string_view function,
                 const uint8_t* bytes, const uint32_t* offsets, std::string& out);
// Appends a chunk of `h.count` fixed-size arguments, item_size bytes each, back to back in
// `items`.
void EncodeFixedChunk(const ChunkHeader& h, uint8_t flags, absl::string_view function,
                      uint32_t item_size, const uint8_t* items, std::string& out);
// A chunks message: StartChunks replaces `out` with its header; then for each chunk,
// `at = StartChunksPart(out)`, the chunk appended (EncodeChunk / EncodeFixedChunk), and
// FinishChunksPart(at, out), which stores its length; last, FinishChunks stores how many there
// are. At most kMaxChunksPerMessage chunks of at most 4 GiB each.
void StartChunks(std::string& out);
size_t StartChunksPart(std::string& out);
void FinishChunksPart(size_t at, std::string& out);
void FinishChunks(uint32_t count, std::string& out);
// The chunks of the chunks message `message` into *parts (views into the message; each then goes
// to DecodeToWorker). A status naming what was wrong: kOutOfRange (ByteReader's) for a truncated
// message or a length past its end, kInvalidArgument for a count of 0 or above
// kMaxChunksPerMessage, bytes after the last chunk, or a part that is not a chunk (a stop or
// another chunks message).
absl::Status SplitChunks(absl::Span<const uint8_t> message,
                         std::vector<absl::Span<const uint8_t>>* parts);
std::string EncodeStop();

// A decoded pool -> worker message; the views point into the message.
struct ToWorker {
  uint8_t kind = 0;  // kChunk, kFixedChunk or kStop
  ChunkHeader header;
  uint8_t flags = 0;
  absl::string_view function;
  uint32_t item_size = 0;                        // kFixedChunk: each item's size
  const uint8_t* fixed_items = nullptr;          // kFixedChunk: count x item_size bytes
  std::vector<absl::Span<const uint8_t>> items;  // kChunk: each task's arguments
};
// Decodes `message` (a chunk, a fixed chunk or a stop; a chunks message goes to SplitChunks first)
// into *out (out->items reused). kInvalidArgument naming the field for a truncated, oversized or
// unknown message.
absl::Status DecodeToWorker(absl::Span<const uint8_t> message, ToWorker* out);

// ---- Worker -> pool ----

// Replaces `out` with the header of a results message for chunk `h` (kind kChunk); the tasks'
// results follow (AppendOk / AppendError).
void StartResults(const ChunkHeader& h, std::string& out);
// Replaces `out` with the header of a fixed results message; the raw payloads follow, then
// FinishFixedResults stores their size.
void StartFixedResults(const ChunkHeader& h, std::string& out);
void FinishFixedResults(uint32_t size, std::string& out);
// Appends `count` OK results whose Codec payloads are `raw`'s consecutive `size`-byte pieces.
void AppendRawResults(absl::string_view raw, size_t size, uint32_t count, std::string& out);
// When every one of the `count` results in the results message `out` succeeded with one payload
// size below 128 bytes, rewrites it as a fixed results message (dropping each result's tag and
// length; `scratch` is reused) and returns true.
bool CompactResults(uint32_t count, std::string& scratch, std::string& out);
std::string EncodeInitFailed(const absl::Status& status);

// A decoded worker -> pool message.
struct FromWorker {
  uint8_t kind = 0;  // kChunk (results), kFixedResults or kInitFailed
  ChunkHeader header;
  // kFixedResults: task k's payload is message[fixed_offset + k * fixed_size, + fixed_size).
  uint32_t fixed_size = 0;
  size_t fixed_offset = 0;
  std::vector<TaskOutcome> outcomes;  // kChunk: one per task, offsets into the message
  absl::Status init_failure;          // kInitFailed: never OK
};
// Decodes `message` (at most 4 GiB) into *out. kInvalidArgument naming the field for a truncated,
// oversized or unknown message, or one whose count disagrees with its contents.
absl::Status DecodeFromWorker(absl::Span<const uint8_t> message, FromWorker* out);

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_WIRE_H_
