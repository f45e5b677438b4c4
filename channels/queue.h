// Copyright 2026 The mp Authors.
//
// channels/queue.h — Queue, SimpleQueue and JoinableQueue over shared memory: Python's
// multiprocessing.Queue family, without a feeder thread and without a pipe.
//
// A Queue is a bounded ring of variable-size messages in one shared segment (sync/shm.h), in the
// fork domain (anonymous MAP_SHARED: the creator and its forked children) or the transferable
// domain (a memfd that travels to spawn/forkserver children; Queue has an mp::Codec carrying it as
// a PassedFd). Put encodes the item (serialize/frame.h: 16-byte header with the type fingerprint,
// then the Codec<T> payload) straight into the ring and Get decodes straight out of it: a Put/Get
// of a trivially encodable item (integers, fixed arrays, MP_FIELDS structs of those) allocates
// nothing. Waiting is a short adaptive spin, then a futex sleep (sync/futex.h); there is no timed
// polling.
//
//   absl::StatusOr<mp::Queue> q = mp::Queue::Create({.maxsize = 100});
//   if (fork() == 0) {
//     q->Put(std::string("hello")).IgnoreError();
//     _exit(0);
//   }
//   absl::StatusOr<std::string> s = q->Get<std::string>(/*block=*/true, absl::Seconds(5));
//
// Semantics (CPython name -> here):
//   put(item, block, timeout)   Put(item, block, timeout)    kUnavailable (full, non-blocking),
//                                                            kDeadlineExceeded (full until timeout)
//   get(block, timeout)         Get<T>(block, timeout)       kUnavailable (empty, non-blocking),
//                                                            kDeadlineExceeded (empty until
//                                                            timeout)
//   put_nowait / get_nowait     PutNoWait / GetNoWait<T>
//   qsize / empty / full        Qsize / Empty / Full         approximate (see below)
//   close                       Close                        see "Closing"
//   JoinableQueue.task_done     TaskDone                     kFailedPrecondition if called more
//   times
//                                                            than items were put (CPython
//                                                            ValueError)
//   JoinableQueue.join          Join(timeout)                kDeadlineExceeded after the timeout
// A Get whose message holds another type is kInvalidArgument naming both types; that item is
// consumed. Crashed peers need no error: a dead producer's or consumer's half-done operation is
// invisible or undone (see the protocol below) and its side is taken over. The one exception is
// kDataLoss from the Get that finds an item larger than the ring half-taken by a consumer that
// died. A peer that breaks the protocol (a buggy or hostile process writing the shared memory)
// cannot make this process touch memory outside the queue's ring or grow without bound: each handle
// copies the configuration (capacity, maxsize, max_item_size) when it is made and never reads it
// again, and every head, tail and record header read from shared memory is checked against that
// copy first. Words no Put or Get leaves behind (a position off the 8-byte grid, tail and head more
// than a ring or more than maxsize items apart, a record longer than the bytes committed behind it
// or of an unknown kind) make Put and Get return kDataLoss naming the word; the queue stays broken
// until the peer's damage is undone. An item arriving in chunks that would pass max_item_size is
// refused (kInvalidArgument naming both sizes) as soon as its next chunk would pass the limit, and
// the next Get skips the rest of it (kDataLoss, that item is lost). An item holding a descriptor
// (mp::PassedFd) or a shared object (Lock, Queue...: a transferable one is a descriptor, a
// fork-domain one has none to travel with) cannot be carried by a ring: Put is kFailedPrecondition
// and puts nothing; send those over a duplex Connection, or pass fork-domain objects to the child
// when it is created. Bad arguments (negative timeout, a timeout with block = false, items above
// max_item_size) are kInvalidArgument. block = false never waits for room or for an item; like
// CPython's put_nowait it may still wait for another producer's (consumer's) operation in progress
// on the same side, which for an item larger than the ring lasts until that item is through.
// Close() waits the same way.
//
// Capacity: `maxsize` counts items as in CPython (0: no item limit other than 2^24 - 1), and
// `capacity_bytes` bounds the ring (rounded up to a power of two, 4 KiB .. 4 GiB; default 1 MiB).
// Each item takes 8 bytes of record header + 16 bytes of frame header + its encoding, rounded up
// to 8. Items up to the ring's size travel as one record. Larger items, up to `max_item_size`
// (default kDefaultMaxMessageSize, 64 MiB), are carried in chunks of capacity/4 (the producer holds
// the put side and the consumer the get side for the whole item, so chunks of two items never
// interleave); above max_item_size Put is kInvalidArgument. A queue's memory is its ring plus one
// 512-byte header: it never grows.
//
// Qsize() is (items committed by Put) - (items taken by Get), read from two words without a lock:
// it is exact when the queue is quiet and may be off by the operations in flight otherwise. Empty()
// is Qsize() == 0; Full() is Qsize() >= maxsize or the ring has no room for even the smallest item.
//
// Closing: Close() closes the queue for everybody (not only the calling process, unlike CPython's
// close()): later Puts are kFailedPrecondition, waiters are woken, Gets drain what is left and then
// return kOutOfRange ("closed and empty", the end-of-file of a queue) instead of blocking. This is
// how consumers learn that every producer is done: the queue does not know who its producers are,
// so without Close() a Get on an empty queue whose producers all exited waits for its timeout.
//
// ---------------------------------------------------------------------------------------------------
// Shared layout and protocol (crash consistency by construction).
//
//   Shared (512 bytes: config, put_lock, tail, get_lock, head and each eventcount on separate cache
//   lines; then the ring):
//     config: tag, version, capacity, maxsize, max_item_size (immutable after Create; read once by
//             Create/FromHandle into the handle, which uses only its own copy)
//     put side:  put_lock (sync/futex.h owner word), tail = puts << 40 | tail_pos
//     get side:  get_lock (owner word),               head = gets << 40 | head_pos
//     events:    data_seq/data_waiters, space_seq/space_waiters, join_seq/join_waiters
//     (eventcounts:
//                a futex word and a "somebody may sleep" flag),
//                tasks_done (24-bit counter), closed
//   Positions are byte offsets modulo 2^40 (the ring offset is pos & (capacity - 1)); puts/gets are
//   item counters modulo 2^24. Items in the queue = (puts - gets) mod 2^24, bytes = tail_pos -
//   head_pos.
//
//   A record at an 8-aligned ring offset: u32 length (payload bytes), u32 kind | writer tid << 8
//   (tids are below 2^22 on Linux), then the payload (wrapping around the ring end if needed),
//   padded to 8. Kinds: 1 whole item, 2 first chunk, 3 middle chunk, 4 last chunk.
//
//   Put: take put_lock; check space against head (a per-handle cached copy, refreshed only when it
//   looks full); write the record(s) beyond tail; then publish with ONE atomic store of tail that
//   advances both tail_pos and puts; release put_lock; wake data waiters if any. Get: take
//   get_lock; read the record at head (committed because head < tail, which was loaded with
//   acquire; a per-handle cached tail is used until head reaches it); decode; then ONE atomic store
//   of head advancing head_pos and gets; release; wake space waiters if any. Locks are never held
//   while sleeping for data or space (except between the chunks of one large item). The common case
//   (a free side, a whole record in one piece, no waiting) runs a lean copy of the same steps
//   (TryPutFast/TryGetFast); everything else takes the general path.
//
//   Wake-ups cost no fence on the common path: a whole-record commit is a release store, and the
//   owner word's release exchange (which every unlock makes anyway) orders it against the waiters
//   flag. A side about to sleep sets its eventcount's waiters flag, then makes a no-op atomic RMW
//   on the other side's owner word, then re-checks: the two RMWs on one word are ordered, so either
//   the committer's unlock sees the flag (and wakes) or the waiter's re-check sees the commit.
//   Chunks are committed with seq_cst stores while holding the side, and their wake-up orders the
//   same way through the seq_cst flag store and re-check. Only a side that finds its waiters flag
//   set makes the futex wake system call.
//
//   Why a crash cannot tear or lose anything:
//   * A producer SIGKILLed mid-Put dies before its single tail store, so its half-written bytes are
//     beyond tail: never visible, and overwritten by the next Put. The next producer takes put_lock
//     over from the dead holder (sync/futex.h detects the dead tid), so nobody blocks.
//   * A consumer SIGKILLed mid-Get dies before its single head store, so the item stays at head and
//     the next consumer (taking get_lock over) receives it: every committed Put is delivered
//     exactly once to a consumer whose Get returned. (An item that was already returned by Get to a
//     process that then died is, of course, gone with it.)
//   * The counters puts/gets travel in the same word as the positions, so counts and bytes can
//   never
//     disagree; tasks_done is a single atomic; unfinished tasks = puts - tasks_done.
//   * Chunked (larger than the ring) items: puts is advanced only with the last chunk. A producer
//   that
//     dies (or times out) mid-item leaves a partial item; the consumer assembling it notices
//     because put_lock no longer names the writer's tid, or the writer is dead, or a new item
//     starts, and discards the partial item (it was never counted as put). A consumer that dies
//     mid-item has already released the earlier chunks' space: the next consumer skips the orphaned
//     chunks, counts the item as taken and returns kDataLoss saying so (call Get again for the next
//     item) -- the one case where a committed item is lost, and only for items larger than the
//     ring. Once a consumer took the first chunk it waits for the rest past its timeout as long as
//     the writer is alive and holds the put side.
//   * A waiter killed while registered in an eventcount leaves its *_waiters flag set: harmless
//   (the
//     next notifier makes one futex call and clears it).
//
// Where the time of a small item goes (measured 2026-12-03 on the 2-core VM, 16-byte items; perf
// has no hardware counters under gVisor, so by taking the path apart in benchmarks). One item
// through Put and Get 1->1 between two processes costs about 61 ns (16 M items/s). The same
// Put+Get in one thread, where no cache line moves between cores, costs 50 ns, so about 80% is
// work on each side, not coherence traffic. Of that:
// * The side lock. Each Put and Get takes its side with a CAS and releases it with an exchange.
//   Those two atomic read-modify-writes are what the sleeping-lock floor measures (12 ns a pair
//   here; atomics are slow on this virtual CPU), so about 24 ns per item. The lock is what makes
//   a dead holder's half-done operation recoverable and lets many producers and consumers share
//   variable-size records. A Vyukov MPMC ring (the "MPMC limit" rows, 7 ns an item) has no lock,
//   but a producer killed between claiming a slot and filling it stalls every consumer behind
//   that slot for good, which is exactly what this queue must not do.
// * Framing: the 16-byte frame header (length and type fingerprint) and the record header, about
//   4 ns to encode and as much to check and decode.
// * The rest, about 18 ns: the fast path's checks of every shared word against the handle's
//   configuration, the commit stores, the wake-up flag checks, and the calls through the
//   encode/decode function pointers that keep the protocol out of the header.
// * Moving lines between the cores: tail, the record's lines, and head, about 11 ns an item.
// Sleeps are not part of it: while the benchmark ran, each process made fewer than 10 voluntary
// context switches a second (/proc/<pid>/status) for 16 M items a second. The consumer keeps up
// by spinning; a futex wake-up costs about 35 µs on this VM, so any that happened would show as
// a collapse, not as a few ns.
// PutMany/GetMany pay the lock, the commit and the wake-up checks once per batch, and encode and
// decode in loops compiled for the item type (queue_internal::WriteRecords/ReadRecords), with the
// frame header built once per payload size. In one thread a 16-byte item costs 15 ns through
// PutMany+GetMany against 50 through Put+Get; batches of 64 move about 105 M items/s 1->1 and
// 90 M 4->4 (channels_benchmark).
//
// Assumes every process using the queue is in one PID namespace (see sync/futex.h).
//
// Thread safety: a Queue handle is cheap to copy (copies share the queue) and every method is safe
// to call from any number of threads and processes at once.

#ifndef MP_CHANNELS_QUEUE_H_
#define MP_CHANNELS_QUEUE_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "channels/ring.h"
#include "serialize/codec.h"
#include "serialize/fd.h"
#include "serialize/frame.h"
#include "sync/futex.h"
#include "sync/shm.h"

namespace mp {

struct QueueOptions {
  // Most items the queue holds (CPython's maxsize); 0 means no item limit (2^24 - 1 in fact).
  size_t maxsize = 0;
  // Ring size in bytes, rounded up to a power of two in [4 KiB, 4 GiB].
  size_t capacity_bytes = size_t{1} << 20;
  // Largest encoded item (frame) Put accepts; above the ring size items travel in chunks.
  size_t max_item_size = kDefaultMaxMessageSize;
  ShmDomain domain = ShmDomain::kFork;
};

namespace queue_internal {

inline constexpr uint64_t kPosBits = 40;
inline constexpr uint64_t kPosMask = (uint64_t{1} << kPosBits) - 1;
inline constexpr uint64_t kCountMask = (uint64_t{1} << 24) - 1;
inline constexpr size_t kRecordHeaderSize = 8;

// The immutable configuration, as a handle keeps it (validated when the handle was made).
struct Config {
  uint64_t capacity = 0;       // ring bytes, a power of two
  uint64_t maxsize = 0;        // effective: 1 .. kCountMask
  uint64_t max_item_size = 0;  // largest frame
};

struct alignas(64) Shared {
  // Line 0: immutable configuration.
  std::atomic<uint32_t> tag;
  uint32_t version;
  uint64_t capacity;
  uint64_t maxsize;  // effective: 1 .. kCountMask
  uint64_t max_item_size;
  // Lines 1-4: each side's owner word apart from its position word, so taking and releasing a side
  // does not steal the line the other side polls (tail for consumers, head for producers).
  alignas(64) std::atomic<uint32_t> put_lock;
  alignas(64) std::atomic<uint64_t> tail;
  alignas(64) std::atomic<uint32_t> get_lock;
  alignas(64) std::atomic<uint64_t> head;
  // Line 5: data-available eventcount.
  alignas(64) std::atomic<uint32_t> data_seq;
  std::atomic<uint32_t> data_waiters;
  // Line 6: space-available eventcount.
  alignas(64) std::atomic<uint32_t> space_seq;
  std::atomic<uint32_t> space_waiters;
  // Line 7: JoinableQueue, close.
  alignas(64) std::atomic<uint32_t> tasks_done;
  std::atomic<uint32_t> join_seq;
  std::atomic<uint32_t> join_waiters;
  std::atomic<uint32_t> closed;
};
inline constexpr size_t kSharedSize = 512;
static_assert(sizeof(Shared) <= kSharedSize);

// Items that can hold neither an mp::PassedFd nor a shared object (arithmetic types, enums,
// strings, and MP_FIELDS structs, pairs, tuples, arrays, vectors and optionals of those): Put
// encodes them directly, without the per-thread descriptor table that refuses descriptors (see
// Queue::Put).
template <typename T>
struct PlainItem : std::bool_constant<std::is_arithmetic_v<T> || std::is_enum_v<T>> {};
template <>
struct PlainItem<std::string> : std::true_type {};
template <typename E>
struct PlainItem<std::vector<E>> : PlainItem<E> {};
template <typename E>
struct PlainItem<std::optional<E>> : PlainItem<E> {};
template <typename E, size_t N>
struct PlainItem<std::array<E, N>> : PlainItem<E> {};
template <typename A, typename B>
struct PlainItem<std::pair<A, B>> : std::bool_constant<PlainItem<A>::value && PlainItem<B>::value> {
};
template <typename... Ts>
struct PlainItem<std::tuple<Ts...>> : std::bool_constant<(PlainItem<Ts>::value && ...)> {};
template <typename T>
requires HasMpFields<T>
struct PlainItem<T> : PlainItem<typename Codec<T>::Values> {
};

// Record kinds and the 8-byte record header (see the layout above).
enum RecordKind : uint32_t { kWhole = 1, kFirst = 2, kMiddle = 3, kLast = 4 };

struct RecordHeader {
  uint32_t length;
  uint32_t meta;  // kind | writer tid << 8
  uint32_t kind() const { return meta & 0xff; }
  uint32_t writer() const { return meta >> 8; }
};

inline uint32_t RecordMeta(uint32_t kind, pid_t writer) {
  return kind | (static_cast<uint32_t>(writer) << 8);
}

// At an 8-aligned position, so never split by the ring's end.
inline void WriteRecordHeader(uint8_t* ring, uint64_t cap, uint64_t pos, uint32_t length,
                              uint32_t meta) {
  uint8_t* at = ring + (pos & (cap - 1));
  std::memcpy(at, &length, 4);
  std::memcpy(at + 4, &meta, 4);
}

// One read of the header's two words, copied out of shared memory.
inline RecordHeader ReadHeader(const uint8_t* ring, uint64_t cap, uint64_t pos) {
  RecordHeader h;
  const uint8_t* at = ring + (pos & (cap - 1));
  std::memcpy(&h.length, at, 4);
  std::memcpy(&h.meta, at + 4, 4);
  return h;
}

// The frame header a T with a payload of `payload` bytes gets, built again only when the payload
// size changes (the items of a batch of one type almost always share one).
template <typename T>
class TypeHeader {
 public:
  const uint8_t* For(uint64_t payload) {
    if (payload != payload_) {
      WriteFrameHeader({static_cast<uint32_t>(payload), TypeFingerprint<T>()},
                       absl::Span<uint8_t>(bytes_, kFrameHeaderSize));
      payload_ = payload;
    }
    return bytes_;
  }

 private:
  uint8_t bytes_[kFrameHeaderSize];
  uint64_t payload_ = ~uint64_t{0};
};

// Where a batch Get decodes its i-th item: `out` is a T* (the caller's span) or a std::vector<T>*
// grown item by item.
template <typename T, typename Out>
T& BatchOutput(void* out, size_t i) {
  if constexpr (std::is_same_v<Out, T*>) {
    return static_cast<T*>(out)[i];
  } else {
    std::vector<T>& v = *static_cast<Out>(out);
    if (v.size() <= i) v.resize(i + 1);
    return v[i];
  }
}

// The batch calls' inner loops, compiled for each item type T so that sizing, encoding and
// decoding inline (through a function pointer per item they cost about as much again). A run
// handles only the common case and stops, leaving the rest to queue.cc's general loop, at anything
// else; that loop re-reads and checks whatever the run stopped at.
//
// PutMany: writes whole records of items[done..n) from ring position `pos` while each fits the
// room and lies in one piece before the ring's end. Commits nothing (queue.cc stores tail).
struct WriteRun {
  uint8_t* ring;
  uint64_t cap;
  uint64_t max_item_size;
  uint32_t meta;  // RecordMeta(kWhole, writer)
  uint64_t pos;
  uint64_t room_bytes;
  uint64_t room_items;
  size_t done;
  size_t n;
};
template <typename T>
void WriteRecords(WriteRun& run, const void* items) {
  const T* in = static_cast<const T*>(items);
  // EncodeFrameTo's work, the frame header built once for each payload size in a row.
  (void)frame_internal::TypeRegistrar<T>::registered;
  TypeHeader<T> header;
  while (run.done < run.n) {
    const T& item = in[run.done];
    const size_t frame_size = FrameSize(item);
    const uint64_t record = ring::Align8(kRecordHeaderSize + frame_size);
    const uint64_t off = (run.pos + kRecordHeaderSize) & (run.cap - 1);
    if (frame_size > run.max_item_size || record > run.room_bytes || run.room_items == 0 ||
        off + frame_size > run.cap) {
      return;
    }
    const uint64_t payload = frame_size - kFrameHeaderSize;
    if (payload > kMaxFramePayload) return;  // Put's error path names it
    uint8_t* frame = run.ring + off;
    std::memcpy(frame, header.For(payload), kFrameHeaderSize);
    EncodeTo(item, absl::Span<uint8_t>(frame + kFrameHeaderSize, payload));
    WriteRecordHeader(run.ring, run.cap, run.pos, static_cast<uint32_t>(frame_size), run.meta);
    run.pos += record;
    run.room_bytes -= record;
    --run.room_items;
    ++run.done;
  }
}

// GetMany: decodes whole records from ring position `pos` (8-aligned, `ahead` committed bytes
// behind it) into out[got..max) while each is a well-formed record of a T in one piece. Takes
// nothing (queue.cc stores head).
struct ReadRun {
  const uint8_t* ring;
  uint64_t cap;
  uint64_t pos;
  uint64_t ahead;
  size_t got;
  size_t max;
};
// Out is T* (a span) or std::vector<T>* (grown item by item), as for BatchOutput.
template <typename T, typename Out>
void ReadRecords(ReadRun& run, void* out) {
  TypeHeader<T> expected;
  while (run.got < run.max && run.ahead != 0) {
    const RecordHeader r = ReadHeader(run.ring, run.cap, run.pos);
    const uint64_t record = ring::Align8(kRecordHeaderSize + uint64_t{r.length});
    const uint64_t off = (run.pos + kRecordHeaderSize) & (run.cap - 1);
    if (r.kind() != kWhole || record > run.ahead || off + r.length > run.cap ||
        r.length < kFrameHeaderSize) {
      return;
    }
    const uint64_t payload = r.length - kFrameHeaderSize;
    const uint8_t* frame = run.ring + off;
    if (std::memcmp(expected.For(payload), frame, kFrameHeaderSize) != 0) {
      return;  // Get's error path names it
    }
    if (!DecodeInto(absl::Span<const uint8_t>(frame + kFrameHeaderSize, payload),
                    BatchOutput<T, Out>(out, run.got))
             .ok()) {
      return;
    }
    run.pos += record;
    run.ahead -= record;
    ++run.got;
  }
}

// Each thread's scratch buffer (frames that wrap around the ring end or travel in chunks) keeps at
// most this much capacity after an operation: a larger item's buffer is given back once it is done.
// 8 MiB keeps the buffer of the common bulk sizes (items up to 4 MiB and their headers, wrapped
// records of rings up to 8 MiB) from being allocated anew for every item; a bound just below an
// item's size makes each wrapped or chunked one pay for a fresh buffer (about half again the time
// of a 4 MiB item).
inline constexpr size_t kScratchKeepBytes = size_t{8} << 20;
// The calling thread's scratch capacity in bytes. For tests.
size_t ScratchCapacityForTesting();

// Where a Get's frame is: in the ring (one or two pieces) or assembled elsewhere.
struct FrameView {
  absl::Span<const uint8_t> first;
  absl::Span<const uint8_t> second;  // non-empty when the record wraps around the ring end
};

}  // namespace queue_internal

class Queue {
 public:
  // A new queue in its own segment. kInvalidArgument for maxsize above 2^24 - 1, capacity_bytes
  // above 4 GiB or max_item_size of 0 or above 4 GiB - 1.
  static absl::StatusOr<Queue> Create(const QueueOptions& options = {});
  // Re-opens the queue at `handle` (e.g. after ShmSegment::Attach in another process).
  // kInvalidArgument if the handle does not point at a queue.
  static absl::StatusOr<Queue> FromHandle(const ShmHandle& handle);

  // An empty handle, only good for assigning a real queue to (decoding needs it).
  Queue() = default;
  Queue(const Queue& other);
  Queue& operator=(const Queue& other);
  Queue(Queue&&) = default;
  Queue& operator=(Queue&&) = default;
  ~Queue() = default;

  // Puts `item` (see the table above). `timeout` applies when block is true.
  template <typename T>
  absl::Status Put(const T& item, bool block = true,
                   absl::Duration timeout = absl::InfiniteDuration());
  template <typename T>
  absl::Status PutNoWait(const T& item) {
    return Put(item, /*block=*/false);
  }

  // Takes the oldest item, which must be a T.
  template <typename T>
  absl::StatusOr<T> Get(bool block = true, absl::Duration timeout = absl::InfiniteDuration());
  template <typename T>
  absl::StatusOr<T> GetNoWait() {
    return Get<T>(/*block=*/false);
  }

  // Batches (beyond CPython). PutMany puts items[0], items[1], ... in order, taking the put side
  // once for as many as the ring has room for and committing them with one tail store: a producer
  // killed mid-batch leaves every item it committed whole and none of the rest, as a killed Put
  // does. When the ring fills up mid-batch, what was written is committed, the put side released
  // (another producer's items may then come between this batch's), and the rest waits for room
  // like Put, within one `timeout` for the whole batch. An item larger than the ring goes through
  // Put's chunked path by itself. OK when every item was put; otherwise the status is Put's for the
  // first item that was not (kUnavailable full, kDeadlineExceeded, kFailedPrecondition closed,
  // kInvalidArgument too large) and `*put`, when given, says how many items (a prefix) were put.
  template <typename T>
  absl::Status PutMany(absl::Span<const T> items, bool block = true,
                       absl::Duration timeout = absl::InfiniteDuration(), size_t* put = nullptr);
  // Takes up to out.size() items into out[0..n) and returns n >= 1: waits like Get for the first
  // (kUnavailable, kDeadlineExceeded, kOutOfRange closed and empty; out.size() == 0 is
  // kInvalidArgument), then takes what is already committed behind it, up to out.size(), holding
  // the get side once and committing the batch with one head store (a consumer killed mid-batch
  // leaves every item in the queue). The batch stops before an item that is not a T (that item
  // stays for the next call, whose first item it is: Get's kInvalidArgument, consumed), before an
  // item larger than the ring (taken alone by the next call) and before a corrupt record (reported
  // by the next call): nothing taken is lost.
  template <typename T>
  absl::StatusOr<size_t> GetMany(absl::Span<T> out, bool block = true,
                                 absl::Duration timeout = absl::InfiniteDuration());
  // The same, into a new vector of 1 .. max items.
  template <typename T>
  absl::StatusOr<std::vector<T>> GetMany(size_t max, bool block = true,
                                         absl::Duration timeout = absl::InfiniteDuration());

  // Approximate, see the header comment.
  size_t Qsize() const;
  bool Empty() const { return Qsize() == 0; }
  bool Full() const;

  // Closes the queue for every process (see "Closing"). Idempotent.
  void Close();
  bool closed() const;

  size_t maxsize() const;         // 0 if unlimited
  size_t capacity_bytes() const;  // the ring size
  size_t max_item_size() const;
  // An empty handle's segment is empty (ShmSegment()) and its domain kFork.
  ShmHandle handle() const { return {segment_.value_or(ShmSegment()), offset_}; }
  ShmDomain domain() const { return segment_ ? segment_->domain() : ShmDomain::kFork; }

  // Ring bytes in use (records of committed items and of items being put in chunks); approximate
  // like Qsize().
  size_t UsedBytes() const;

  // Thread ids holding the put / get side (0 if free). For tests and diagnostics.
  pid_t put_side_owner() const;
  pid_t get_side_owner() const;

 protected:
  // JoinableQueue's operations; every Queue counts tasks, only JoinableQueue exposes them.
  absl::Status TaskDoneImpl();
  absl::Status JoinImpl(absl::Duration timeout);

 private:
  Queue(ShmSegment segment, uint64_t offset, const queue_internal::Config& config);

  // Put of an encoded frame: the encoder writes exactly `frame_size` bytes into the span it is
  // given.
  using EncodeFn = absl::Status (*)(const void* item, absl::Span<uint8_t> out);
  // EncodeFrameTo for a T, refusing descriptors unless T is a PlainItem.
  template <typename T>
  static absl::Status EncodeItem(const void* item, absl::Span<uint8_t> out) {
    if constexpr (queue_internal::PlainItem<T>::value) {
      return EncodeFrameTo(*static_cast<const T*>(item), out);
    } else {
      return EncodeRefusingFds(
          [](const void* v, absl::Span<uint8_t> o) {
            return EncodeFrameTo(*static_cast<const T*>(v), o);
          },
          item, out);
    }
  }
  // Runs `encode` with a per-thread descriptor table in scope and fails if the item held a
  // descriptor or a fork-domain shared object (a ring cannot carry them).
  static absl::Status EncodeRefusingFds(EncodeFn encode, const void* item, absl::Span<uint8_t> out);
  absl::Status PutFrame(size_t frame_size, EncodeFn encode, const void* item, bool block,
                        absl::Duration timeout);
  // Get of one frame; `decode` is called (holding the get side) with the frame in one piece.
  using DecodeFn = absl::Status (*)(absl::Span<const uint8_t> frame, void* out);
  absl::Status GetFrame(DecodeFn decode, void* out, bool block, absl::Duration timeout);
  // The batch forms. Item i of the caller's array `items` has a frame of size(items, i) bytes,
  // which encode(items, i, out) writes; decode(frame, out, i) decodes into the i-th output.
  using SizeAtFn = size_t (*)(const void* items, size_t i);
  using EncodeAtFn = absl::Status (*)(const void* items, size_t i, absl::Span<uint8_t> out);
  using DecodeAtFn = absl::Status (*)(absl::Span<const uint8_t> frame, void* out, size_t i);
  // The inline runs (queue_internal::WriteRecords / ReadRecords) for the common case; none for
  // items that may hold descriptors (they are refused through Put's descriptor table).
  using WriteRunFn = void (*)(queue_internal::WriteRun& run, const void* items);
  using ReadRunFn = void (*)(queue_internal::ReadRun& run, void* out);
  absl::Status PutFrames(size_t n, SizeAtFn size, EncodeAtFn encode, WriteRunFn write_run,
                         const void* items, bool block, absl::Duration timeout, size_t* put);
  absl::StatusOr<size_t> GetFrames(size_t max, DecodeAtFn decode, ReadRunFn read_run, void* out,
                                   bool block, absl::Duration timeout);
  // Get's frame decoder for a T (the header compared whole first, see Get).
  template <typename T>
  static absl::Status DecodeItem(absl::Span<const uint8_t> frame, T& out);
  // DecodeItem into a batch Get's i-th output (queue_internal::BatchOutput).
  template <typename T, typename Out>
  static absl::Status DecodeBatchItem(absl::Span<const uint8_t> frame, void* out, size_t i);
  // PutFrame/GetFrame's common case (uncontended side, a whole item in one piece, no waiting).
  // Returns false, having changed nothing and holding nothing, when the general path must run;
  // otherwise the operation's status is in *result.
  bool TryPutFast(size_t frame_size, EncodeFn encode, const void* item, absl::Status* result);
  bool TryGetFast(DecodeFn decode, void* out, absl::Status* result);
  // Whether (block, timeout) passes CheckAcquireArgs (sync/futex.h), without building a status.
  static bool ValidWaitArgs(bool block, absl::Duration timeout) {
    return timeout >= absl::ZeroDuration() && (block || timeout == absl::InfiniteDuration());
  }

  queue_internal::Shared* shared() const { return shared_; }
  uint8_t* ring() const { return ring_; }

  std::optional<ShmSegment> segment_;  // empty only in a default-constructed handle
  uint64_t offset_ = 0;
  queue_internal::Shared* shared_ = nullptr;
  uint8_t* ring_ = nullptr;
  // This handle's copy of the shared configuration words. Every bound (ring offsets, room, item
  // limits) comes from here: a peer that rewrites the shared words changes nothing.
  queue_internal::Config config_;
  // Lower bounds of the other side's word, only written while holding the put (head) or get (tail)
  // side. Shared by the threads using this handle. Atomic (relaxed) because TryGetFast reads the
  // cached tail as a hint before taking the get side.
  struct Cache {
    std::atomic<uint64_t> head{0};  // put side's view of head
    std::atomic<uint64_t> tail{0};  // get side's view of tail
  };
  std::unique_ptr<Cache> cache_;
};

// Python's SimpleQueue: no item limit, no timeout on Put (it blocks only while the ring is full).
class SimpleQueue {
 public:
  SimpleQueue() = default;  // an empty handle, see Queue()
  // maxsize is ignored (always 0).
  static absl::StatusOr<SimpleQueue> Create(QueueOptions options = {});
  static absl::StatusOr<SimpleQueue> FromHandle(const ShmHandle& handle);

  template <typename T>
  absl::Status Put(const T& item) {
    return queue_.Put(item);
  }
  template <typename T>
  absl::StatusOr<T> Get() {
    return queue_.Get<T>();
  }
  bool Empty() const { return queue_.Empty(); }
  void Close() { queue_.Close(); }
  ShmHandle handle() const { return queue_.handle(); }
  ShmDomain domain() const { return queue_.domain(); }
  const Queue& queue() const { return queue_; }

 private:
  explicit SimpleQueue(Queue q) : queue_(std::move(q)) {}
  Queue queue_;
};

// Python's JoinableQueue: a Queue that also counts unfinished tasks.
class JoinableQueue : public Queue {
 public:
  JoinableQueue() = default;  // an empty handle, see Queue()
  static absl::StatusOr<JoinableQueue> Create(const QueueOptions& options = {});
  static absl::StatusOr<JoinableQueue> FromHandle(const ShmHandle& handle);

  // Marks one item taken by Get as processed. kFailedPrecondition if called more times than items
  // were put (CPython: ValueError "task_done() called too many times").
  absl::Status TaskDone() { return TaskDoneImpl(); }
  // Blocks until every item put has been marked done; kDeadlineExceeded after `timeout`.
  absl::Status Join(absl::Duration timeout = absl::InfiniteDuration()) { return JoinImpl(timeout); }
  // Items put and not yet marked done (exact when quiet).
  size_t Unfinished() const;

 private:
  explicit JoinableQueue(Queue q) : Queue(std::move(q)) {}
};

// Queues travel to other processes like every shared object (sync/shm.h ShmObjectCodec): a
// transferable queue as its segment's memfd and offset, to any child; a fork-domain queue notes
// itself as fork-only, so spawn and forkserver refuse it when the Process is created.
template <>
struct Codec<Queue> : ShmObjectCodec<Queue, "Queue"> {};
template <>
struct Codec<SimpleQueue> : ShmObjectCodec<SimpleQueue, "SimpleQueue"> {};
template <>
struct Codec<JoinableQueue> : ShmObjectCodec<JoinableQueue, "JoinableQueue"> {};

// ---------------------------------------------------------------------------------------------------
// Implementation details.

template <typename T>
absl::Status Queue::Put(const T& item, bool block, absl::Duration timeout) {
  RequireCodec<T>();
  const size_t frame_size = FrameSize(item);
  constexpr EncodeFn encode = &EncodeItem<T>;  // items holding an mp::PassedFd are refused
  if (ValidWaitArgs(block, timeout)) {         // invalid ones get their error from PutFrame
    absl::Status result;
    if (TryPutFast(frame_size, encode, &item, &result)) return result;
  }
  return PutFrame(frame_size, encode, &item, block, timeout);
}

template <typename T>
absl::Status Queue::DecodeItem(absl::Span<const uint8_t> frame, T& out) {
  // The frame is almost always exactly the header a T of this size gets: compare it whole, and
  // leave every other case (and its precise error) to DecodeFrameInto.
  const size_t payload = frame.size() - kFrameHeaderSize;
  if (frame.size() >= kFrameHeaderSize && payload <= kMaxFramePayload) {
    queue_internal::TypeHeader<T> expected;
    if (std::memcmp(expected.For(payload), frame.data(), kFrameHeaderSize) == 0) {
      return DecodeInto(frame.subspan(kFrameHeaderSize), out);
    }
  }
  return DecodeFrameInto(frame, out, kMaxFramePayload);
}

template <typename T>
absl::Status Queue::PutMany(absl::Span<const T> items, bool block, absl::Duration timeout,
                            size_t* put) {
  RequireCodec<T>();
  constexpr SizeAtFn size = [](const void* v, size_t i) -> size_t {
    return FrameSize(static_cast<const T*>(v)[i]);
  };
  constexpr EncodeAtFn encode = [](const void* v, size_t i, absl::Span<uint8_t> o) {
    return EncodeItem<T>(static_cast<const T*>(v) + i, o);
  };
  constexpr WriteRunFn write_run =
      queue_internal::PlainItem<T>::value ? &queue_internal::WriteRecords<T> : nullptr;
  return PutFrames(items.size(), size, encode, write_run, items.data(), block, timeout, put);
}

template <typename T, typename Out>
absl::Status Queue::DecodeBatchItem(absl::Span<const uint8_t> frame, void* out, size_t i) {
  return DecodeItem<T>(frame, queue_internal::BatchOutput<T, Out>(out, i));
}

template <typename T>
absl::StatusOr<size_t> Queue::GetMany(absl::Span<T> out, bool block, absl::Duration timeout) {
  RequireCodec<T>();
  return GetFrames(out.size(), &DecodeBatchItem<T, T*>, &queue_internal::ReadRecords<T, T*>,
                   out.data(), block, timeout);
}

template <typename T>
absl::StatusOr<std::vector<T>> Queue::GetMany(size_t max, bool block, absl::Duration timeout) {
  RequireCodec<T>();
  // The vector grows item by item, so a large max costs nothing until items are there.
  std::vector<T> out;
  absl::StatusOr<size_t> n =
      GetFrames(max, &DecodeBatchItem<T, std::vector<T>*>,
                &queue_internal::ReadRecords<T, std::vector<T>*>, &out, block, timeout);
  if (!n.ok()) return n.status();
  out.resize(*n);
  return out;
}

template <typename T>
absl::StatusOr<T> Queue::Get(bool block, absl::Duration timeout) {
  RequireCodec<T>();
  constexpr DecodeFn decode = [](absl::Span<const uint8_t> frame, void* o) -> absl::Status {
    return DecodeItem<T>(frame, *static_cast<T*>(o));
  };
  T out{};
  absl::Status s;
  if (!ValidWaitArgs(block, timeout) || !TryGetFast(decode, &out, &s)) {
    s = GetFrame(decode, &out, block, timeout);
  }
  if (!s.ok()) return s;
  return out;
}

}  // namespace mp

#endif  // MP_CHANNELS_QUEUE_H_
