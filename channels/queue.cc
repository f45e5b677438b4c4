// Copyright 2026 The mp Authors.

#include "channels/queue.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/deadline.h"
#include "channels/ring.h"

namespace mp {
namespace {

using queue_internal::Config;
using queue_internal::kCountMask;
using queue_internal::kPosMask;
using queue_internal::kRecordHeaderSize;
using queue_internal::Shared;
using ring::Align8;
using ring::CopyIn;
using ring::CopyOut;
using ring::ReadOnce;
using ring::SideLock;

constexpr uint32_t kTag = 0x51757071;  // "qpuQ"
constexpr uint32_t kVersion = 2;       // 2: owner and position words on separate lines
constexpr size_t kMinCapacity = size_t{4} << 10;
constexpr size_t kMaxCapacity = size_t{1} << 32;
// The smallest record: header + an empty frame.
constexpr size_t kMinRecord = kRecordHeaderSize + kFrameHeaderSize;

using queue_internal::kFirst;
using queue_internal::kLast;
using queue_internal::kMiddle;
using queue_internal::kWhole;

// While assembling a chunked item, check the writer's liveness this often.
constexpr absl::Duration kWriterCheckSlice = absl::Milliseconds(2);

inline uint64_t Pos(uint64_t w) { return w & kPosMask; }
inline uint64_t Count(uint64_t w) { return w >> queue_internal::kPosBits; }
inline uint64_t Pack(uint64_t pos, uint64_t count) {
  return ((count & kCountMask) << queue_internal::kPosBits) | (pos & kPosMask);
}

// Per-thread buffer for frames that wrap around the ring end or span chunks. Grows to the largest
// such frame this thread handled, up to kScratchKeepBytes; a larger one is given back (TrimScratch)
// once its operation is done, so one huge item does not pin its size for the thread's lifetime.
std::vector<uint8_t>& Scratch() {
  thread_local std::vector<uint8_t> scratch;
  return scratch;
}

void TrimScratch(std::vector<uint8_t>& scratch) {
  if (scratch.capacity() > queue_internal::kScratchKeepBytes) std::vector<uint8_t>().swap(scratch);
}

using queue_internal::ReadHeader;
using queue_internal::RecordHeader;

void WriteHeader(uint8_t* ring, uint64_t cap, uint64_t pos, uint32_t length, uint32_t kind,
                 pid_t writer = CurrentThreadId()) {
  queue_internal::WriteRecordHeader(ring, cap, pos, length,
                                    queue_internal::RecordMeta(kind, writer));
}

// Room for `rec` more bytes (and, if `new_item`, one more item) between head word `h` and tail word
// `t`. `h` may be a stale (older) head: then used is too large, which only errs on "no room"; and a
// head more than a ring behind makes used > cap, also "no room", so the caller refreshes it.
inline bool HasRoom(const Config& c, uint64_t t, uint64_t h, size_t rec, bool new_item) {
  const uint64_t used = (Pos(t) - Pos(h)) & kPosMask;
  if (used > c.capacity) return false;
  const uint64_t items = (Count(t) - Count(h)) & kCountMask;
  return c.capacity - used >= rec && (!new_item || items < c.maxsize);
}

// Whether tail word `t` and head word `h` are as Put and Get leave them: both positions 8-aligned,
// at most a ring and at most maxsize items apart. True of the tail read holding the put side with
// any head read after it, and of the head read holding the get side with any tail read after it:
// head never passes a tail, and a producer never writes more than a ring (or maxsize items) past a
// head it read. Anything else was written by a process that broke the protocol.
inline bool WordsConsistent(const Config& c, uint64_t t, uint64_t h) {
  return ((Pos(t) | Pos(h)) & 7) == 0 && ((Pos(t) - Pos(h)) & kPosMask) <= c.capacity &&
         ((Count(t) - Count(h)) & kCountMask) <= c.maxsize;
}

constexpr absl::string_view kOverwritten = "; another process overwrote the queue's shared memory";

// kDataLoss for a position word (`name`: "tail" or "head") off the 8-byte grid.
absl::Status MisalignedWord(absl::string_view op, absl::string_view name, uint64_t w) {
  return absl::DataLossError(absl::StrCat(op, ": the shared ", name, " word (position ", Pos(w),
                                          ") is not 8-aligned", kOverwritten));
}

// OK when WordsConsistent(c, t, h), else kDataLoss naming what is wrong.
absl::Status CheckWords(absl::string_view op, const Config& c, uint64_t t, uint64_t h) {
  if (WordsConsistent(c, t, h)) return absl::OkStatus();
  if ((Pos(t) & 7) != 0) return MisalignedWord(op, "tail", t);
  if ((Pos(h) & 7) != 0) return MisalignedWord(op, "head", h);
  if (((Pos(t) - Pos(h)) & kPosMask) > c.capacity) {
    return absl::DataLossError(absl::StrCat(
        op, ": the shared tail and head words (tail position ", Pos(t), ", head position ", Pos(h),
        ") are more than the ", c.capacity, "-byte ring apart", kOverwritten));
  }
  return absl::DataLossError(absl::StrCat(
      op, ": the shared tail and head words count ", (Count(t) - Count(h)) & kCountMask,
      " items between them, above maxsize ", c.maxsize, kOverwritten));
}

// Eventcounts: `seq` is the futex word, `waiters` a flag "somebody may sleep on seq". A waiter
// reads seq, sets the flag, re-checks its condition and sleeps on the seq it read. A notifier
// publishes its change, then (seq_cst, so one of the two sees the other's write) clears the flag
// and, if it was set, bumps seq and wakes every sleeper. Clearing the flag means a burst of Puts to
// a consumer that was woken but has not run yet costs one wake-up, not one per Put.
//
// Two ways to publish before notifying, both pairing with a waiter that stores its flag, then makes
// an RMW on the notifier side's owner word (`fence_word`, see WaitFor), then re-checks:
// * Whole-record commits (the hot path) store tail/head with release only and call UnlockAndNotify:
//   the owner word's release exchange is an RMW on the same word as the waiter's, so either the
//   waiter's RMW comes first (the exchange reads it; the acquire fence then makes the flag visible
//   here) or the exchange does (the waiter's RMW reads it and sees the commit). No full barrier or
//   atomic RMW beyond the lock's own two per operation.
// * Chunk commits (made while holding the side) store with seq_cst and call Notify directly: the
//   waiter's seq_cst flag store and re-check order against them.
void Notify(std::atomic<uint32_t>& seq, std::atomic<uint32_t>& waiters) {
  if (waiters.load(std::memory_order_seq_cst) != 0 &&
      waiters.exchange(0, std::memory_order_seq_cst) != 0) {
    seq.fetch_add(1, std::memory_order_seq_cst);
    FutexWake(&seq, kFutexWakeAll);
    ring::WokePeerAtNs() = MonotonicNowNs();
  }
}

// Releases the side held in `lock_word` after a release-store commit, then wakes the other side's
// waiters if any (see above).
inline void UnlockAndNotify(std::atomic<uint32_t>& lock_word, std::atomic<uint32_t>& seq,
                            std::atomic<uint32_t>& waiters) {
  OwnerUnlock(lock_word);
  std::atomic_thread_fence(std::memory_order_acquire);  // no instruction on x86
  Notify(seq, waiters);
}

// Waits until ready() (re-evaluated after every wake-up) or `deadline`. Returns ready().
// `fence_word` is the owner word of the side whose commits this waiter waits for (put_lock for
// data, get_lock for space; nullptr when every notifier publishes with seq_cst, as TaskDone does).
template <typename Ready>
bool WaitFor(std::atomic<uint32_t>& seq, std::atomic<uint32_t>& waiters,
             std::atomic<uint32_t>* fence_word, Deadline deadline, Ready ready) {
  if (ready()) return true;
  if (deadline.Expired()) return false;
  if (ring::Spin(deadline, ready)) return true;
  // Just woke the peer this waits for: its answer is worth its wake-up's time (ring.h).
  for (const int64_t until = ring::WokePeerAtNs() + ring::kWokenPeerPatienceNs;
       MonotonicNowNs() < until && !deadline.Expired();) {
    sched_yield();
    if (ready()) return true;
  }
  for (;;) {
    const uint32_t s = seq.load(std::memory_order_seq_cst);
    waiters.store(1, std::memory_order_seq_cst);
    // An RMW that changes nothing, ordered with the notifier's unlock exchange (see Notify).
    if (fence_word != nullptr) fence_word->fetch_or(0, std::memory_order_seq_cst);
    if (ready()) return true;
    if (deadline.Expired()) return ready();
    FutexWait(&seq, s, deadline);
    if (ready()) return true;
    if (deadline.Expired()) return false;
  }
}

std::string DescribeTimeout(absl::Duration timeout) { return absl::FormatDuration(timeout); }

// When an operation with (block, timeout) gives up waiting: never for a blocking one without a
// timeout, at once for a non-blocking one. (Deadline::Never().Remaining() is infinite, so what is
// left of it can be handed on to a nested operation.)
Deadline OperationDeadline(bool block, absl::Duration timeout) {
  if (!block) return Deadline::After(absl::ZeroDuration());
  return timeout == absl::InfiniteDuration() ? Deadline::Never() : Deadline::After(timeout);
}

// Waits (without the put side) until there is room for `rec` bytes (and an item, if `new_item`),
// or the queue closes, or the words are inconsistent (possibly only because head moved between the
// two loads; the caller's re-check holding the put side tells). False at the deadline.
bool WaitRoom(Shared* s, const Config& config, Deadline deadline, size_t rec, bool new_item) {
  return WaitFor(s->space_seq, s->space_waiters, &s->get_lock, deadline, [&] {
    if (s->closed.load(std::memory_order_acquire) != 0) return true;
    const uint64_t t = s->tail.load(std::memory_order_seq_cst);
    const uint64_t h = s->head.load(std::memory_order_seq_cst);
    return HasRoom(config, t, h, rec, new_item) || !WordsConsistent(config, t, h);
  });
}

// Put's "full" error: kUnavailable when not blocking, else kDeadlineExceeded after `timeout`.
absl::Status FullError(absl::string_view op, const Config& config, uint64_t t, uint64_t h,
                       size_t needed, bool block, absl::Duration timeout) {
  const std::string what = absl::StrCat(
      "queue is full (", (Count(t) - Count(h)) & kCountMask, " items, maxsize ",
      config.maxsize == kCountMask ? std::string("unlimited") : absl::StrCat(config.maxsize), "; ",
      (Pos(t) - Pos(h)) & kPosMask, " of ", config.capacity, " ring bytes used, ", needed,
      " needed)");
  if (!block) return absl::UnavailableError(absl::StrCat(op, ": ", what));
  return absl::DeadlineExceededError(
      absl::StrCat(op, ": ", what, " for ", DescribeTimeout(timeout)));
}

// Sets *ahead to the committed bytes from head `h` (0: none; at most the ring). The cached tail
// answers while it shows some; it is stale when other consumers took items past it (it is then
// behind h). A fresh tail is checked against h first. Called holding the get side.
absl::Status Committed(absl::string_view op, Shared* s, const Config& config,
                       std::atomic<uint64_t>& cached_tail, uint64_t h, uint64_t* ahead) {
  *ahead = (Pos(cached_tail.load(std::memory_order_relaxed)) - Pos(h)) & kPosMask;
  if (*ahead != 0 && *ahead <= config.capacity) return absl::OkStatus();
  const uint64_t t = s->tail.load(std::memory_order_acquire);
  if (absl::Status st = CheckWords(op, config, t, h); !st.ok()) return st;
  cached_tail.store(t, std::memory_order_relaxed);
  *ahead = (Pos(t) - Pos(h)) & kPosMask;
  return absl::OkStatus();
}

// A record at head `h` must be of a known kind and end within the `ahead` committed bytes: no Put
// writes anything else, and then every byte it covers is inside the ring.
absl::Status CheckRecord(absl::string_view op, uint64_t h, uint64_t ahead, const RecordHeader& r) {
  if (r.kind() >= kWhole && r.kind() <= kLast &&
      Align8(kRecordHeaderSize + size_t{r.length}) <= ahead) {
    return absl::OkStatus();
  }
  return absl::DataLossError(absl::StrCat(op, ": corrupt record at ring position ", Pos(h),
                                          " (length ", r.length, ", kind ", r.kind(), "; ", ahead,
                                          " bytes committed from there)", kOverwritten));
}

// Calls decode with the whole record's payload at `payload_pos` (`length` bytes, checked to be
// committed): in place, or copied out of the ring when it wraps around the ring's end.
template <typename Decode>
absl::Status DecodeWhole(const uint8_t* ring, uint64_t cap, uint64_t payload_pos, uint32_t length,
                         Decode decode) {
  const uint64_t off = payload_pos & (cap - 1);
  if (off + length <= cap) return decode(absl::Span<const uint8_t>(ring + off, length));
  std::vector<uint8_t>& scratch = Scratch();
  if (scratch.size() < length) scratch.resize(length);
  CopyOut(ring, cap, payload_pos, scratch.data(), length);
  absl::Status st = decode(absl::Span<const uint8_t>(scratch.data(), length));
  TrimScratch(scratch);
  return st;
}

// Writes the payload of a whole record at `payload_pos` with encode: in place, or through the
// scratch buffer when it would wrap around the ring's end. Nothing is published.
template <typename Encode>
absl::Status EncodeWhole(uint8_t* ring, uint64_t cap, uint64_t payload_pos, size_t frame_size,
                         Encode encode) {
  const uint64_t off = payload_pos & (cap - 1);
  if (off + frame_size <= cap) return encode(absl::Span<uint8_t>(ring + off, frame_size));
  std::vector<uint8_t>& scratch = Scratch();
  if (scratch.size() < frame_size) scratch.resize(frame_size);
  absl::Status st = encode(absl::Span<uint8_t>(scratch.data(), frame_size));
  if (st.ok()) CopyIn(ring, cap, payload_pos, scratch.data(), frame_size);
  TrimScratch(scratch);
  return st;
}

// After a Get found nothing to take at head `h` (the get side released): kOutOfRange when the
// queue is closed and empty, kUnavailable when not blocking, kDeadlineExceeded when nothing came
// before the deadline; OK when something may be there now.
absl::Status AwaitData(absl::string_view op, Shared* s, uint64_t h, bool block, Deadline deadline,
                       absl::Duration timeout) {
  Notify(s->space_seq, s->space_waiters);
  const bool closed_now = s->closed.load(std::memory_order_acquire) != 0;
  if (closed_now && Pos(s->tail.load(std::memory_order_acquire)) == Pos(h)) {
    return absl::OutOfRangeError(absl::StrCat(op, ": the queue is closed and empty"));
  }
  if (!block) return absl::UnavailableError(absl::StrCat(op, ": the queue is empty"));
  if (!WaitFor(s->data_seq, s->data_waiters, &s->put_lock, deadline, [&] {
        return s->closed.load(std::memory_order_acquire) != 0 ||
               Pos(s->tail.load(std::memory_order_seq_cst)) !=
                   Pos(s->head.load(std::memory_order_seq_cst));
      })) {
    return absl::DeadlineExceededError(
        absl::StrCat(op, ": the queue stayed empty for ", DescribeTimeout(timeout)));
  }
  return absl::OkStatus();
}

}  // namespace

size_t queue_internal::ScratchCapacityForTesting() { return Scratch().capacity(); }

// ---------------------------------------------------------------------------------------------------
// Construction.

Queue::Queue(ShmSegment segment, uint64_t offset, const Config& config)
    : segment_(std::move(segment)),
      offset_(offset),
      shared_(static_cast<Shared*>(segment_->At(offset))),
      ring_(static_cast<uint8_t*>(segment_->At(offset)) + queue_internal::kSharedSize),
      config_(config),
      cache_(std::make_unique<Cache>()) {}

Queue::Queue(const Queue& other) {
  if (other.shared_ != nullptr) *this = Queue(*other.segment_, other.offset_, other.config_);
}

Queue& Queue::operator=(const Queue& other) {
  if (this != &other) *this = Queue(other);
  return *this;
}

absl::StatusOr<Queue> Queue::Create(const QueueOptions& options) {
  if (options.maxsize > kCountMask) {
    return absl::InvalidArgumentError(
        absl::StrCat("Queue: maxsize ", options.maxsize, " is above the limit of ", kCountMask));
  }
  if (options.capacity_bytes > kMaxCapacity) {
    return absl::InvalidArgumentError(absl::StrCat("Queue: capacity_bytes ", options.capacity_bytes,
                                                   " is above the limit of 4 GiB"));
  }
  if (options.max_item_size == 0 || options.max_item_size > kMaxFramePayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("Queue: max_item_size ", options.max_item_size, " is not in [1, 2^32 - 1]"));
  }
  size_t cap = kMinCapacity;
  while (cap < options.capacity_bytes) cap <<= 1;
  const size_t total = queue_internal::kSharedSize + cap;
  absl::StatusOr<ShmSegment> segment = ShmSegment::Create(options.domain, total);
  if (!segment.ok()) return segment.status();
  absl::StatusOr<uint64_t> offset = segment->Allocate(total);
  if (!offset.ok()) return offset.status();
  const Config config{.capacity = cap,
                      .maxsize = options.maxsize == 0 ? kCountMask : options.maxsize,
                      .max_item_size = options.max_item_size};
  Shared* s = static_cast<Shared*>(segment->At(*offset));
  s->version = kVersion;
  s->capacity = config.capacity;
  s->maxsize = config.maxsize;
  s->max_item_size = config.max_item_size;
  s->tag.store(kTag, std::memory_order_release);  // everything else is zero-filled
  return Queue(*std::move(segment), *offset, config);
}

absl::StatusOr<Queue> Queue::FromHandle(const ShmHandle& handle) {
  if (absl::Status s =
          handle.segment.CheckBlock(handle.offset, queue_internal::kSharedSize, kTag, "Queue");
      !s.ok()) {
    return s;
  }
  // Each configuration word is read once; the handle keeps these copies (see Config).
  Shared* s = static_cast<Shared*>(handle.segment.At(handle.offset));
  const uint32_t version = ReadOnce(s->version);
  if (version != kVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("Queue: shared layout version ", version, ", this build reads ", kVersion));
  }
  const Config config{.capacity = ReadOnce(s->capacity),
                      .maxsize = ReadOnce(s->maxsize),
                      .max_item_size = ReadOnce(s->max_item_size)};
  const uint64_t cap = config.capacity;
  if (cap < kMinCapacity || cap > kMaxCapacity || (cap & (cap - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("Queue: corrupt header (capacity ", cap,
                                                   " is not a power of two in [4 KiB, 4 GiB])"));
  }
  if (config.maxsize == 0 || config.maxsize > kCountMask) {
    return absl::InvalidArgumentError(absl::StrCat("Queue: corrupt header (maxsize ",
                                                   config.maxsize, " is not in [1, 2^24 - 1])"));
  }
  if (config.max_item_size == 0 || config.max_item_size > kMaxFramePayload) {
    return absl::InvalidArgumentError(absl::StrCat("Queue: corrupt header (max_item_size ",
                                                   config.max_item_size,
                                                   " is not in [1, 2^32 - 1])"));
  }
  if (absl::Status st = handle.segment.CheckBlock(handle.offset, queue_internal::kSharedSize + cap,
                                                  kTag, "Queue");
      !st.ok()) {
    return st;
  }
  return Queue(handle.segment, handle.offset, config);
}

// ---------------------------------------------------------------------------------------------------
// Put.

// The table is reused: no allocation per Put (except to report a refusal).
absl::Status Queue::EncodeRefusingFds(EncodeFn encode, const void* item, absl::Span<uint8_t> out) {
  thread_local FdTable table;
  ScopedFdTable scope(&table);
  absl::Status s = encode(item, out);
  if (table.size() == 0 && table.fork_only().empty()) return s;
  const bool had_fds = table.size() != 0;
  const std::string fork_only = table.fork_only().empty() ? "" : table.fork_only().front();
  table = FdTable();
  if (!s.ok()) return s;
  if (had_fds) {
    return absl::FailedPreconditionError(
        "Queue::Put: items cannot carry file descriptors (mp::PassedFd) or transferable shared "
        "objects; send them over a duplex Connection");
  }
  // A fork-domain object's handle has no descriptor, so no Get could ever decode it.
  return absl::FailedPreconditionError(absl::StrCat(
      "Queue::Put: the item holds a ", fork_only,
      " created by the 'fork' context, which reaches forked children only by inheritance (pass it "
      "when the child is created) and cannot travel inside a queued item"));
}

// The common Put, done without the general path's bookkeeping: the put side is free, the queue
// open, and the whole record fits, in one piece, in the room the cached head already shows (or
// shows once refreshed). Same protocol as the general path: encode beyond tail, one tail store,
// release.
bool Queue::TryPutFast(size_t frame_size, EncodeFn encode, const void* item, absl::Status* result) {
  Shared* s = shared_;
  const uint64_t cap = config_.capacity;
  const size_t record = Align8(kRecordHeaderSize + frame_size);
  if (frame_size > config_.max_item_size || record > cap) return false;
  const pid_t tid = CurrentThreadId();
  if (!OwnerTryLock(s->put_lock, tid)) return false;
  const uint64_t t = s->tail.load(std::memory_order_relaxed);
  const uint64_t pos = Pos(t);
  const uint64_t payload_off = (pos + kRecordHeaderSize) & (cap - 1);
  // An aligned tail keeps the header inside the ring; the payload is checked against it too. A tail
  // off the grid is left to the general path, which reports it.
  bool go = s->closed.load(std::memory_order_acquire) == 0 && (pos & 7) == 0 &&
            payload_off + frame_size <= cap;
  if (go && !HasRoom(config_, t, cache_->head.load(std::memory_order_relaxed), record, true)) {
    const uint64_t h = s->head.load(std::memory_order_acquire);
    cache_->head.store(h, std::memory_order_relaxed);
    go = HasRoom(config_, t, h, record, true);
  }
  if (!go) {
    OwnerUnlock(s->put_lock);
    return false;
  }
  *result = encode(item, absl::Span<uint8_t>(ring_ + payload_off, frame_size));
  if (!result->ok()) {  // nothing was published
    OwnerUnlock(s->put_lock);
    return true;
  }
  WriteHeader(ring_, cap, pos, static_cast<uint32_t>(frame_size), kWhole, tid);
  s->tail.store(Pack(pos + record, Count(t) + 1), std::memory_order_release);  // commit
  UnlockAndNotify(s->put_lock, s->data_seq, s->data_waiters);
  return true;
}

absl::Status Queue::PutFrame(size_t frame_size, EncodeFn encode, const void* item, bool block,
                             absl::Duration timeout) {
  const bool forever = block && timeout == absl::InfiniteDuration();  // the common case, no checks
  if (!forever) {
    if (absl::Status s = CheckAcquireArgs(block, timeout, "Queue::Put"); !s.ok()) return s;
  }
  Shared* s = shared_;
  if (frame_size > config_.max_item_size) {
    return absl::InvalidArgumentError(absl::StrCat("Queue::Put: item of ", frame_size,
                                                   " bytes exceeds max_item_size ",
                                                   config_.max_item_size));
  }
  const uint64_t cap = config_.capacity;
  const size_t record = Align8(kRecordHeaderSize + frame_size);
  const bool chunked = record > cap;
  if (chunked && !block) {
    return absl::UnavailableError(absl::StrCat("Queue::Put: an item of ", frame_size,
                                               " bytes is larger than the ", cap,
                                               "-byte ring and cannot be put without blocking"));
  }
  const Deadline deadline = OperationDeadline(block, timeout);
  const Deadline lock_deadline = block ? deadline : Deadline::Never();
  // The first record's size: the whole item, or the first chunk.
  const size_t chunk_payload = cap / 4 - kRecordHeaderSize;
  const size_t first_record = chunked ? cap / 4 : record;

  const Config& config = config_;
  auto has_room = [&config](uint64_t t, uint64_t h, size_t rec, bool new_item) {
    return HasRoom(config, t, h, rec, new_item);
  };
  auto closed_error = [] {
    return absl::FailedPreconditionError("Queue::Put: the queue is closed");
  };

  for (;;) {
    SideLock lock(s->put_lock, lock_deadline);
    if (!lock.held()) {
      return absl::DeadlineExceededError(
          absl::StrCat("Queue::Put: the put side stayed busy for ", DescribeTimeout(timeout)));
    }
    if (s->closed.load(std::memory_order_acquire) != 0) return closed_error();
    uint64_t t = s->tail.load(std::memory_order_relaxed);
    if ((Pos(t) & 7) != 0) return MisalignedWord("Queue::Put", "tail", t);
    if (!has_room(t, cache_->head.load(std::memory_order_relaxed), first_record, true)) {
      const uint64_t h = s->head.load(std::memory_order_acquire);  // read holding the put side
      if (absl::Status st = CheckWords("Queue::Put", config, t, h); !st.ok()) return st;
      cache_->head.store(h, std::memory_order_relaxed);
      if (!has_room(t, h, first_record, true)) {
        lock.Unlock();
        if (!block || !WaitRoom(s, config, deadline, first_record, true)) {
          return FullError("Queue::Put", config, t, h, first_record, block, timeout);
        }
        continue;
      }
    }
    if (!chunked) {
      const uint64_t pos = Pos(t);
      absl::Status st = EncodeWhole(ring_, cap, pos + kRecordHeaderSize, frame_size,
                                    [&](absl::Span<uint8_t> out) { return encode(item, out); });
      if (!st.ok()) return st;  // nothing was published
      WriteHeader(ring_, cap, pos, static_cast<uint32_t>(frame_size), kWhole);
      s->tail.store(Pack(pos + record, Count(t) + 1), std::memory_order_release);  // commit
      lock.Release();
      UnlockAndNotify(s->put_lock, s->data_seq, s->data_waiters);
      return absl::OkStatus();
    }

    // Larger than the ring: encode once, then publish chunk by chunk, holding the put side.
    std::vector<uint8_t>& scratch = Scratch();
    absl::Cleanup trim = [&scratch] { TrimScratch(scratch); };
    if (scratch.size() < frame_size) scratch.resize(frame_size);
    if (absl::Status st = encode(item, absl::Span<uint8_t>(scratch.data(), frame_size)); !st.ok()) {
      return st;
    }
    for (size_t done = 0; done < frame_size;) {
      const size_t len = std::min(chunk_payload, frame_size - done);
      const uint32_t kind = done == 0 ? kFirst : done + len == frame_size ? kLast : kMiddle;
      const size_t rec = Align8(kRecordHeaderSize + len);
      while (!has_room(t, cache_->head.load(std::memory_order_relaxed), rec, false)) {
        const uint64_t h = s->head.load(std::memory_order_acquire);
        // A corrupt head abandons the item like a timeout does.
        if (absl::Status st = CheckWords("Queue::Put", config, t, h); !st.ok()) return st;
        cache_->head.store(h, std::memory_order_relaxed);
        if (has_room(t, h, rec, false)) break;
        // Consumers see that we still hold the put side and wait for the rest of the item.
        if (!WaitFor(s->space_seq, s->space_waiters, &s->get_lock, deadline, [&] {
              const uint64_t now = s->head.load(std::memory_order_seq_cst);
              return has_room(t, now, rec, false) || !WordsConsistent(config, t, now);
            })) {
          // Abandoned: consumers discard the partial item once we release the put side.
          return absl::DeadlineExceededError(
              absl::StrCat("Queue::Put: no room for the rest of a ", frame_size, "-byte item (",
                           done, " bytes sent) for ", DescribeTimeout(timeout)));
        }
      }
      const uint64_t pos = Pos(t);
      WriteHeader(ring_, cap, pos, static_cast<uint32_t>(len), kind);
      CopyIn(ring_, cap, pos + kRecordHeaderSize, scratch.data() + done, len);
      t = Pack(pos + rec, Count(t) + (kind == kLast ? 1 : 0));
      s->tail.store(t, std::memory_order_seq_cst);
      Notify(s->data_seq, s->data_waiters);
      done += len;
    }
    return absl::OkStatus();
  }
}

// PutMany: rounds of "take the put side, write every item that fits, commit them with one tail
// store", the same protocol as Put's (records beyond tail are invisible until the store).
absl::Status Queue::PutFrames(size_t n, SizeAtFn size, EncodeAtFn encode, WriteRunFn write_run,
                              const void* items, bool block, absl::Duration timeout, size_t* put) {
  size_t done = 0;
  absl::Cleanup report = [&] {
    if (put != nullptr) *put = done;
  };
  const bool forever = block && timeout == absl::InfiniteDuration();
  if (!forever) {
    if (absl::Status s = CheckAcquireArgs(block, timeout, "Queue::PutMany"); !s.ok()) return s;
  }
  Shared* s = shared_;
  const uint64_t cap = config_.capacity;
  const Deadline deadline = OperationDeadline(block, timeout);
  const Deadline lock_deadline = block ? deadline : Deadline::Never();
  const pid_t tid = CurrentThreadId();

  while (done < n) {
    SideLock lock(s->put_lock, lock_deadline);
    if (!lock.held()) {
      return absl::DeadlineExceededError(
          absl::StrCat("Queue::PutMany: the put side stayed busy for ", DescribeTimeout(timeout)));
    }
    if (s->closed.load(std::memory_order_acquire) != 0) {
      return absl::FailedPreconditionError("Queue::PutMany: the queue is closed");
    }
    const uint64_t t0 = s->tail.load(std::memory_order_relaxed);
    if ((Pos(t0) & 7) != 0) return MisalignedWord("Queue::PutMany", "tail", t0);
    uint64_t t = t0;
    uint64_t h = cache_->head.load(std::memory_order_relaxed);
    enum class Stop { kAll, kFull, kLarge, kError } stop = Stop::kAll;
    absl::Status error;
    size_t frame_size = 0;
    size_t record = 0;
    // The room between tail t and head h (HasRoom's arithmetic, kept as two running counts so
    // each item costs two subtractions); a head more than a ring behind leaves no room.
    uint64_t room_bytes = 0;
    uint64_t room_items = 0;
    auto set_room = [&] {
      const uint64_t used = (Pos(t) - Pos(h)) & kPosMask;
      const uint64_t queued = (Count(t) - Count(h)) & kCountMask;
      room_bytes = used > cap ? 0 : cap - used;
      room_items = queued >= config_.maxsize ? 0 : config_.maxsize - queued;
    };
    set_room();
    while (done < n) {
      if (write_run != nullptr) {
        queue_internal::WriteRun run{ring_,
                                     cap,
                                     config_.max_item_size,
                                     queue_internal::RecordMeta(kWhole, tid),
                                     Pos(t),
                                     room_bytes,
                                     room_items,
                                     done,
                                     n};
        write_run(run, items);
        if (run.done != done) {
          t = Pack(run.pos, Count(t) + (run.done - done));
          room_bytes = run.room_bytes;
          room_items = run.room_items;
          done = run.done;
          if (done == n) break;
        }
      }
      // The item the run stopped at (if any), the general way.
      frame_size = size(items, done);
      if (frame_size > config_.max_item_size) {
        error = absl::InvalidArgumentError(absl::StrCat("Queue::PutMany: item ", done, " of ",
                                                        frame_size, " bytes exceeds max_item_size ",
                                                        config_.max_item_size));
        stop = Stop::kError;
        break;
      }
      record = Align8(kRecordHeaderSize + frame_size);
      if (record > cap) {
        stop = Stop::kLarge;
        break;
      }
      if (record > room_bytes || room_items == 0) {
        h = s->head.load(std::memory_order_acquire);  // read holding the put side
        if (error = CheckWords("Queue::PutMany", config_, t, h); !error.ok()) {
          stop = Stop::kError;
          break;
        }
        cache_->head.store(h, std::memory_order_relaxed);
        set_room();
        if (record > room_bytes || room_items == 0) {
          stop = Stop::kFull;
          break;
        }
      }
      const uint64_t pos = Pos(t);
      error = EncodeWhole(ring_, cap, pos + kRecordHeaderSize, frame_size,
                          [&](absl::Span<uint8_t> out) { return encode(items, done, out); });
      if (!error.ok()) {  // this item is not written; the ones before it are
        stop = Stop::kError;
        break;
      }
      WriteHeader(ring_, cap, pos, static_cast<uint32_t>(frame_size), kWhole, tid);
      t = Pack(pos + record, Count(t) + 1);
      room_bytes -= record;
      --room_items;
      ++done;
    }
    if (t != t0) {
      s->tail.store(t, std::memory_order_release);  // commit every item of this round
      lock.Release();
      UnlockAndNotify(s->put_lock, s->data_seq, s->data_waiters);
    } else {
      lock.Unlock();
    }
    switch (stop) {
      case Stop::kAll:
        return absl::OkStatus();
      case Stop::kError:
        return error;
      case Stop::kLarge: {
        // Larger than the ring: Put's chunked path, by itself, in what is left of the timeout.
        struct One {
          EncodeAtFn encode;
          const void* items;
          size_t i;
        } one{encode, items, done};
        constexpr EncodeFn encode_one = [](const void* v, absl::Span<uint8_t> out) {
          const One& o = *static_cast<const One*>(v);
          return o.encode(o.items, o.i, out);
        };
        const absl::Duration left = block ? deadline.Remaining() : absl::ZeroDuration();
        if (absl::Status st = PutFrame(frame_size, encode_one, &one, block, left); !st.ok()) {
          return st;
        }
        ++done;
        break;
      }
      case Stop::kFull:
        if (!block || !WaitRoom(s, config_, deadline, record, true)) {
          return FullError("Queue::PutMany", config_, t, h, record, block, timeout);
        }
        break;
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------------
// Get.

// The common Get: the get side is free and the record at head is a whole item in one piece. Same
// protocol as the general path: decode in place, one head store, release.
bool Queue::TryGetFast(DecodeFn decode, void* out, absl::Status* result) {
  Shared* s = shared_;
  const uint64_t cap = config_.capacity;
  // An empty queue (the usual state of a consumer that keeps up) is left to the general path, which
  // waits, without taking the get side here first. The cached tail answers "not empty" without
  // reading the tail word, which the producer is writing (a line moved between cores per read).
  {
    const uint64_t h = s->head.load(std::memory_order_relaxed);
    const uint64_t ahead = (Pos(cache_->tail.load(std::memory_order_relaxed)) - Pos(h)) & kPosMask;
    if ((ahead == 0 || ahead > cap) && Pos(s->tail.load(std::memory_order_acquire)) == Pos(h)) {
      return false;
    }
    // The record is most likely still in the producer's cache: start fetching it now, so the miss
    // overlaps the lock's atomic instruction instead of following it.
    __builtin_prefetch(ring_ + (Pos(h) & (cap - 1)));
  }
  if (!OwnerTryLock(s->get_lock, CurrentThreadId())) return false;
  const uint64_t h = s->head.load(std::memory_order_relaxed);
  // The cached tail is stale when other consumers took items past it (it is then behind h).
  uint64_t ahead = (Pos(cache_->tail.load(std::memory_order_relaxed)) - Pos(h)) & kPosMask;
  if (ahead == 0 || ahead > cap) {
    const uint64_t t = s->tail.load(std::memory_order_acquire);
    cache_->tail.store(t, std::memory_order_relaxed);
    ahead = (Pos(t) - Pos(h)) & kPosMask;
  }
  // An aligned head keeps the header inside the ring; a committed record ends at or before tail,
  // and ahead <= cap, so a record within `ahead` is within the ring too.
  const RecordHeader r = ahead != 0 && ahead <= cap && (Pos(h) & 7) == 0
                             ? ReadHeader(ring_, cap, Pos(h))
                             : RecordHeader{};
  const uint64_t off = (Pos(h) + kRecordHeaderSize) & (cap - 1);
  if (r.kind() != kWhole || Align8(kRecordHeaderSize + size_t{r.length}) > ahead ||
      off + r.length > cap) {
    OwnerUnlock(s->get_lock);  // empty, chunked, wrapped or corrupt: the general path handles it
    return false;
  }
  *result = decode(absl::Span<const uint8_t>(ring_ + off, r.length), out);
  // Commit: the item is taken (also when it failed to decode).
  s->head.store(Pack(Pos(h) + Align8(kRecordHeaderSize + r.length), Count(h) + 1),
                std::memory_order_release);
  UnlockAndNotify(s->get_lock, s->space_seq, s->space_waiters);
  return true;
}

absl::Status Queue::GetFrame(DecodeFn decode, void* out, bool block, absl::Duration timeout) {
  const bool forever = block && timeout == absl::InfiniteDuration();  // the common case, no checks
  if (!forever) {
    if (absl::Status s = CheckAcquireArgs(block, timeout, "Queue::Get"); !s.ok()) return s;
  }
  Shared* s = shared_;
  const uint64_t cap = config_.capacity;
  const uint64_t max_item_size = config_.max_item_size;
  const Deadline deadline = OperationDeadline(block, timeout);
  const Deadline lock_deadline = block ? deadline : Deadline::Never();

  // Advances head past a record of `length` payload bytes, counting an item if `item_done`.
  // Chunks are committed with seq_cst (their Notify runs while holding the side, see Notify); a
  // whole record with release, followed by UnlockAndNotify.
  auto advance = [&](uint64_t h, uint32_t length, bool item_done,
                     std::memory_order order = std::memory_order_seq_cst) {
    const uint64_t next =
        Pack(Pos(h) + Align8(kRecordHeaderSize + length), Count(h) + (item_done ? 1 : 0));
    s->head.store(next, order);
    return next;
  };
  auto committed = [&](uint64_t h, uint64_t* ahead) {
    return Committed("Queue::Get", s, config_, cache_->tail, h, ahead);
  };
  auto check_record = [](uint64_t h, uint64_t ahead, const RecordHeader& r) {
    return CheckRecord("Queue::Get", h, ahead, r);
  };
  // Chunks skipped by this call that belong to no item being assembled. The rest of one item is
  // less than max_item_size; more means a writer is not following the protocol.
  uint64_t orphan_bytes = 0;

  for (;;) {
    SideLock lock(s->get_lock, lock_deadline);
    if (!lock.held()) {
      return absl::DeadlineExceededError(
          absl::StrCat("Queue::Get: the get side stayed busy for ", DescribeTimeout(timeout)));
    }
    uint64_t h = s->head.load(std::memory_order_relaxed);
    if ((Pos(h) & 7) != 0) return MisalignedWord("Queue::Get", "head", h);
    uint64_t ahead = 0;
    for (;;) {
      if (absl::Status st = committed(h, &ahead); !st.ok()) return st;
      if (ahead == 0) break;
      const RecordHeader r = ReadHeader(ring_, cap, Pos(h));
      if (absl::Status st = check_record(h, ahead, r); !st.ok()) return st;
      if (r.kind() == kWhole) {
        absl::Status st =
            DecodeWhole(ring_, cap, Pos(h) + kRecordHeaderSize, r.length,
                        [&](absl::Span<const uint8_t> frame) { return decode(frame, out); });
        // Commit: the item is taken (also when it failed to decode).
        advance(h, r.length, true, std::memory_order_release);
        lock.Release();
        UnlockAndNotify(s->get_lock, s->space_seq, s->space_waiters);
        return st;
      }
      if (r.kind() != kFirst) {
        // An orphaned chunk (its item's first chunks went to a Get that died or refused the item):
        // skipped; the item counts as taken with its last chunk.
        h = advance(h, r.length, r.kind() == kLast);
        orphan_bytes += r.length;
        if (r.kind() == kLast) {
          lock.Unlock();
          Notify(s->space_seq, s->space_waiters);
          return absl::DataLossError(
              "Queue::Get: skipped the rest of an item larger than the ring whose first chunks "
              "were taken by a Get that died or refused the item; that item is lost (the queue "
              "stays usable)");
        }
        if (orphan_bytes > max_item_size) {
          lock.Unlock();
          Notify(s->space_seq, s->space_waiters);
          return absl::DataLossError(absl::StrCat(
              "Queue::Get: skipped ", orphan_bytes,
              " bytes of chunks that belong to no item, "
              "more than max_item_size ",
              max_item_size, ": a writer is not following the protocol (the next Get skips on)"));
        }
        continue;
      }
      // The first chunk of a large item: assemble it, holding the get side. The item may not pass
      // max_item_size (a Put refuses larger ones), so neither may the buffer.
      const uint32_t writer = r.writer();
      std::vector<uint8_t>& scratch = Scratch();
      absl::Cleanup trim = [&scratch] { TrimScratch(scratch); };
      scratch.clear();
      RecordHeader cur = r;
      bool complete = false;
      for (;;) {
        const size_t at = scratch.size();
        if (at + cur.length > max_item_size) {
          // Refused: this chunk is skipped too, and the next Get skips the rest as orphans.
          const bool last = cur.kind() == kLast;
          h = advance(h, cur.length, last);
          lock.Unlock();
          Notify(s->space_seq, s->space_waiters);
          return absl::InvalidArgumentError(
              absl::StrCat("Queue::Get: an item arriving in chunks reached ", at + cur.length,
                           " bytes, above max_item_size ", max_item_size, "; it is refused",
                           last ? "" : " and the next Get skips the rest of it"));
        }
        scratch.resize(at + cur.length);
        CopyOut(ring_, cap, Pos(h) + kRecordHeaderSize, scratch.data() + at, cur.length);
        h = advance(h, cur.length, cur.kind() == kLast);
        Notify(s->space_seq, s->space_waiters);
        if (cur.kind() == kLast) {
          complete = true;
          break;
        }
        // Wait for the next chunk while the writer is alive and still holds the put side; once it
        // is not, look once more, then give the partial item up.
        bool writer_gone = false;
        for (;;) {
          if (absl::Status st = committed(h, &ahead); !st.ok()) return st;
          if (ahead != 0 || writer_gone) break;
          WaitFor(s->data_seq, s->data_waiters, &s->put_lock, Deadline::After(kWriterCheckSlice),
                  [&] { return Pos(s->tail.load(std::memory_order_seq_cst)) != Pos(h); });
          const uint32_t owner = OwnerOf(s->put_lock.load(std::memory_order_acquire));
          writer_gone = (owner & 0xffffff) != writer || !IsThreadAlive(static_cast<pid_t>(writer));
        }
        if (ahead == 0) break;  // abandoned: the partial item is discarded
        cur = ReadHeader(ring_, cap, Pos(h));
        if (absl::Status st = check_record(h, ahead, cur); !st.ok()) return st;
        if (cur.kind() == kWhole || cur.kind() == kFirst) break;  // the writer gave up
      }
      if (complete) {
        absl::Status st = decode(absl::Span<const uint8_t>(scratch.data(), scratch.size()), out);
        lock.Unlock();
        return st;
      }
      // A partial item was discarded; look again.
    }
    // Nothing to take. Closed (checked before the tail, see Close) and empty: end of the queue.
    lock.Unlock();
    if (absl::Status st = AwaitData("Queue::Get", s, h, block, deadline, timeout); !st.ok()) {
      return st;
    }
  }
}

// GetMany: take the get side, decode every whole record already committed (up to max), commit
// them with one head store: the same protocol as Get's.
absl::StatusOr<size_t> Queue::GetFrames(size_t max, DecodeAtFn decode, ReadRunFn read_run,
                                        void* out, bool block, absl::Duration timeout) {
  const bool forever = block && timeout == absl::InfiniteDuration();
  if (!forever) {
    if (absl::Status s = CheckAcquireArgs(block, timeout, "Queue::GetMany"); !s.ok()) return s;
  }
  if (max == 0) {
    return absl::InvalidArgumentError("Queue::GetMany: room for no item (0 items asked for)");
  }
  Shared* s = shared_;
  const uint64_t cap = config_.capacity;
  const Deadline deadline = OperationDeadline(block, timeout);
  const Deadline lock_deadline = block ? deadline : Deadline::Never();

  for (;;) {
    SideLock lock(s->get_lock, lock_deadline);
    if (!lock.held()) {
      return absl::DeadlineExceededError(
          absl::StrCat("Queue::GetMany: the get side stayed busy for ", DescribeTimeout(timeout)));
    }
    const uint64_t h0 = s->head.load(std::memory_order_relaxed);
    if ((Pos(h0) & 7) != 0) return MisalignedWord("Queue::GetMany", "head", h0);
    uint64_t h = h0;
    size_t got = 0;
    bool large = false;  // the record at head is a chunk: Get's chunked path takes it
    absl::Status first_error;
    uint64_t ahead = 0;  // committed bytes from h, refreshed only when they run out
    while (got < max) {
      absl::Status st;
      if (ahead == 0) {
        st = Committed("Queue::GetMany", s, config_, cache_->tail, h, &ahead);
        if (st.ok() && ahead == 0) break;
      }
      if (st.ok()) {
        queue_internal::ReadRun run{ring_, cap, Pos(h), ahead, got, max};
        read_run(run, out);
        if (run.got != got) {
          h = Pack(run.pos, Count(h) + (run.got - got));
          ahead = run.ahead;
          got = run.got;
          continue;
        }
      }
      // The record the run stopped at, the general way.
      const RecordHeader r = st.ok() ? ReadHeader(ring_, cap, Pos(h)) : RecordHeader{};
      if (st.ok()) st = CheckRecord("Queue::GetMany", h, ahead, r);
      if (!st.ok()) {  // reported now if nothing was taken, else by the next call
        if (got == 0) return st;
        break;
      }
      if (r.kind() != kWhole) {
        large = true;
        break;
      }
      st = DecodeWhole(ring_, cap, Pos(h) + kRecordHeaderSize, r.length,
                       [&](absl::Span<const uint8_t> frame) { return decode(frame, out, got); });
      if (!st.ok()) {
        // Not a T: left for the next call unless it is the first item, which is taken and reported
        // as Get does.
        if (got != 0) break;
        first_error = st;
      }
      const uint64_t record = Align8(kRecordHeaderSize + r.length);  // <= ahead (CheckRecord)
      h = Pack(Pos(h) + record, Count(h) + 1);
      ahead -= record;
      if (!first_error.ok()) break;
      ++got;
    }
    if (h != h0) {
      s->head.store(h, std::memory_order_release);  // commit every item taken
      lock.Release();
      UnlockAndNotify(s->get_lock, s->space_seq, s->space_waiters);
      if (!first_error.ok()) return first_error;
      return got;
    }
    lock.Unlock();
    if (large) {
      struct One {
        DecodeAtFn decode;
        void* out;
      } one{decode, out};
      constexpr DecodeFn decode_one = [](absl::Span<const uint8_t> frame, void* v) {
        const One& o = *static_cast<const One*>(v);
        return o.decode(frame, o.out, 0);
      };
      const absl::Duration left = block ? deadline.Remaining() : absl::ZeroDuration();
      if (absl::Status st = GetFrame(decode_one, &one, block, left); !st.ok()) return st;
      return 1;
    }
    if (absl::Status st = AwaitData("Queue::GetMany", s, h, block, deadline, timeout); !st.ok()) {
      return st;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Sizes, close, tasks.

size_t Queue::Qsize() const {
  const uint64_t h = shared_->head.load(std::memory_order_acquire);
  const uint64_t t = shared_->tail.load(std::memory_order_acquire);
  return static_cast<size_t>((Count(t) - Count(h)) & kCountMask);
}

bool Queue::Full() const {
  const uint64_t h = shared_->head.load(std::memory_order_acquire);
  const uint64_t t = shared_->tail.load(std::memory_order_acquire);
  const uint64_t items = (Count(t) - Count(h)) & kCountMask;
  const uint64_t used = (Pos(t) - Pos(h)) & kPosMask;
  return items >= config_.maxsize || used + kMinRecord > config_.capacity;
}

void Queue::Close() {
  Shared* s = shared_;
  {
    // Under the put side, so no Put that saw the queue open publishes after it closed.
    SideLock lock(s->put_lock, Deadline::Never());
    s->closed.store(1, std::memory_order_seq_cst);
  }
  for (auto* seq : {&s->data_seq, &s->space_seq}) {
    seq->fetch_add(1, std::memory_order_seq_cst);
    FutexWake(seq, kFutexWakeAll);
  }
}

bool Queue::closed() const { return shared_->closed.load(std::memory_order_acquire) != 0; }

size_t Queue::maxsize() const {
  return config_.maxsize == kCountMask ? 0 : static_cast<size_t>(config_.maxsize);
}
size_t Queue::capacity_bytes() const { return static_cast<size_t>(config_.capacity); }
size_t Queue::max_item_size() const { return static_cast<size_t>(config_.max_item_size); }

size_t Queue::UsedBytes() const {
  const uint64_t h = shared_->head.load(std::memory_order_acquire);
  const uint64_t t = shared_->tail.load(std::memory_order_acquire);
  return static_cast<size_t>((Pos(t) - Pos(h)) & kPosMask);
}

pid_t Queue::put_side_owner() const {
  return OwnerOf(shared_->put_lock.load(std::memory_order_acquire));
}
pid_t Queue::get_side_owner() const {
  return OwnerOf(shared_->get_lock.load(std::memory_order_acquire));
}

absl::Status Queue::TaskDoneImpl() {
  Shared* s = shared_;
  uint32_t done = s->tasks_done.load(std::memory_order_acquire);
  for (;;) {
    const uint64_t puts = Count(s->tail.load(std::memory_order_acquire));
    if (((puts - done) & kCountMask) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("JoinableQueue::TaskDone: called more times than items were put (",
                       puts & kCountMask, " items put, all marked done)"));
    }
    const uint32_t next = static_cast<uint32_t>((done + 1) & kCountMask);
    if (s->tasks_done.compare_exchange_weak(done, next, std::memory_order_seq_cst,
                                            std::memory_order_acquire)) {
      if (((Count(s->tail.load(std::memory_order_seq_cst)) - next) & kCountMask) == 0) {
        Notify(s->join_seq, s->join_waiters);
      }
      return absl::OkStatus();
    }
  }
}

absl::Status Queue::JoinImpl(absl::Duration timeout) {
  if (absl::Status st = CheckTimeout(timeout, "JoinableQueue::Join"); !st.ok()) return st;
  Shared* s = shared_;
  auto all_done = [s] {
    return ((Count(s->tail.load(std::memory_order_seq_cst)) -
             s->tasks_done.load(std::memory_order_seq_cst)) &
            kCountMask) == 0;
  };
  if (!WaitFor(s->join_seq, s->join_waiters, nullptr, Deadline::After(timeout), all_done)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "JoinableQueue::Join: tasks still unfinished after ", DescribeTimeout(timeout)));
  }
  return absl::OkStatus();
}

size_t JoinableQueue::Unfinished() const {
  const Shared* s = static_cast<const Shared*>(handle().segment.At(handle().offset));
  return static_cast<size_t>((Count(s->tail.load(std::memory_order_acquire)) -
                              s->tasks_done.load(std::memory_order_acquire)) &
                             kCountMask);
}

// ---------------------------------------------------------------------------------------------------
// SimpleQueue, JoinableQueue, codecs.

absl::StatusOr<SimpleQueue> SimpleQueue::Create(QueueOptions options) {
  options.maxsize = 0;
  absl::StatusOr<Queue> q = Queue::Create(options);
  if (!q.ok()) return q.status();
  return SimpleQueue(*std::move(q));
}

absl::StatusOr<SimpleQueue> SimpleQueue::FromHandle(const ShmHandle& handle) {
  absl::StatusOr<Queue> q = Queue::FromHandle(handle);
  if (!q.ok()) return q.status();
  return SimpleQueue(*std::move(q));
}

absl::StatusOr<JoinableQueue> JoinableQueue::Create(const QueueOptions& options) {
  absl::StatusOr<Queue> q = Queue::Create(options);
  if (!q.ok()) return q.status();
  return JoinableQueue(*std::move(q));
}

absl::StatusOr<JoinableQueue> JoinableQueue::FromHandle(const ShmHandle& handle) {
  absl::StatusOr<Queue> q = Queue::FromHandle(handle);
  if (!q.ok()) return q.status();
  return JoinableQueue(*std::move(q));
}

}  // namespace mp
