// Copyright 2026 The mp Authors.

#include "channels/shm_link.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/scm_rights.h"
#include "channels/ring.h"
#include "sync/futex.h"

namespace mp::channels_internal {
namespace {

using ring::Align8;
using ring::CopyIn;
using ring::CopyOut;
using ring::ReadOnce;

constexpr uint32_t kTag = 0x4b4e4c53;  // "SLNK"
constexpr uint32_t kVersion = 2;
constexpr uint64_t kStateOffset = kShmHeaderSize;
constexpr size_t kMaxFds = kMaxRightsFds;  // connection.h's kMaxFdsPerMessage
// A reader sleeps on the futex this long before it moves to poll(2) on the side socket.
constexpr int64_t kFutexPhaseNs = 2'000'000;
// A reader asleep in poll(2) re-announces itself after each slice (doubling up to the cap).
constexpr int64_t kPollSliceNs = 1'000'000;
constexpr int64_t kPollSliceMaxNs = 100'000'000;
// A writer waiting for room checks for a hang-up after each slice (doubling up to the cap).
constexpr int64_t kRoomSliceNs = 200'000;
constexpr int64_t kRoomSliceMaxNs = 10'000'000;
// A writer checks for a hang-up about this often while sending (on the coarse clock: a tick later
// at worst).
constexpr int64_t kHupCheckNs = 1'000'000;
constexpr uint8_t kWakePacket = 'W';
constexpr uint8_t kFdPacket = 'F';
constexpr size_t kFdPacketSize = 9;
constexpr int kDrainBudget = 64;

constexpr absl::string_view kOverwritten =
    "; the peer overwrote the connection's shared memory, the connection is closed";

// A record header is one 64-bit word (little-endian: length, descriptor count, kind, 0) at an
// 8-aligned position, so never split by the ring end. Its store (release) is what commits the
// record: a reader that sees it nonzero sees the record's bytes.
std::atomic_ref<uint64_t> HeaderWord(uint8_t* ring, uint64_t cap, uint64_t pos) {
  return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(ring + (pos & (cap - 1))));
}

uint64_t EncodeHeader(const RecordHeader& h) {
  return uint64_t{h.length} | uint64_t{h.fd_count} << 32 | uint64_t{h.kind} << 48 |
         uint64_t{h.zero} << 56;
}

RecordHeader DecodeHeader(uint64_t word) {
  return {.length = static_cast<uint32_t>(word),
          .fd_count = static_cast<uint16_t>(word >> 32),
          .kind = static_cast<uint8_t>(word >> 48),
          .zero = static_cast<uint8_t>(word >> 56)};
}

// A reader's spin checks the ring after at most this many pauses (ring.h: the Queue's 16 would add
// up to ~0.6 us to a round trip).
constexpr int kMaxSpinPauses = 2;

// Between spinning and sleeping: while other processes want this core (more processes than
// cores, e.g. a parent and 4 workers on 2 cores), giving the core away with sched_yield lets the
// peer this reader waits for run at once, and its commit then needs no FUTEX_WAKE. A yield that
// comes back at once means nobody else wanted the core: after kIdleYields of those in a row (or
// kYieldPhaseNs in all) the reader goes to sleep instead, unless it is still before
// `patient_until_ns` (see ring::kWokenPeerPatienceNs).
constexpr int64_t kYieldPhaseNs = 50'000;
constexpr int64_t kIdleYieldNs = 2'000;
constexpr int kIdleYields = 8;

// Whether this thread's last yield phase found other processes wanting its core. Its next wait
// then yields at once instead of spinning first: with more runnable processes than cores (a parent
// and 4 workers on 2 cores) a spinning waiter holds the core the process it waits for needs, and
// every microsecond spun is one the answer comes later (BM_PipeWorkers: 20 yields and ~20 us per
// round with a 1 us spin first; a yield-only waiter of raw shared words needs ~6 and ~3.5 us). A
// yield phase whose yields all came back at once clears it.
constexpr int kContendedPolls = 4;
bool& CoreContended() {
  thread_local bool contended = false;
  return contended;
}

// Context switches of the calling thread so far (voluntary and not: a sched_yield that ran
// another process counts as involuntary).
int64_t ThreadContextSwitches() {
  struct rusage ru;
  if (getrusage(RUSAGE_THREAD, &ru) != 0) return -1;
  return static_cast<int64_t>(ru.ru_nvcsw) + static_cast<int64_t>(ru.ru_nivcsw);
}

// Whether a yield of `ns` ran another process, by its duration: one that took several times this
// thread's fastest yield so far did (a bare sched_yield takes ~0.16 us here; one that switched to
// another process and back takes two context switches and that process's run, ~1 us or more).
// A short one may still have (a switch to a process that yields back at once), which only the
// thread's context-switch count tells.
bool LongYield(int64_t ns) {
  thread_local int64_t fastest = kIdleYieldNs;
  fastest = std::min(fastest, ns);
  return ns > std::min(kIdleYieldNs, 3 * fastest + 100);
}

// Yields from `start` (now, MonotonicNowNs) until ready(), the phase's end or `deadline`. Returns
// ready(); *only_idle: no yield ran another process (nobody else wanted the core). A phase
// with a long yield (LongYield) was not idle; one of short yields only is idle if the thread's
// context-switch count (getrusage, about as costly as a yield) did not move since it was last read:
// at the end of the phase, and after every kIdleYields short yields in a row, before the waiter
// goes to sleep on their word. So a waiter on a busy core, whose yields run other processes, makes
// no getrusage calls (they cost the 4-worker Pipe row ~15%).
template <typename Ready>
bool YieldUntil(Deadline deadline, Ready ready, int64_t start, int64_t patient_until_ns,
                bool* only_idle) {
  thread_local int64_t last_switches = -1;
  // Whether the count moved since it was last read (and reads it).
  auto switched = [&]() {
    const int64_t switches = ThreadContextSwitches();
    const bool moved = switches != last_switches;
    last_switches = switches;
    return moved;
  };
  const int64_t phase_end = std::max(start + kYieldPhaseNs, patient_until_ns);
  int short_yields = 0;  // in a row
  bool busy = false;
  bool done = false;
  for (int64_t now = start; now < phase_end && !deadline.Expired();) {
    sched_yield();
    done = ready();
    const int64_t after = MonotonicNowNs();
    if (LongYield(after - now)) {
      busy = true;
      short_yields = 0;
    } else {
      ++short_yields;
    }
    if (done) break;
    if (short_yields >= kIdleYields && after >= patient_until_ns) {
      if (!switched()) {
        *only_idle = !busy;
        return false;
      }
      busy = true;
      short_yields = 0;
    }
    now = after;
  }
  *only_idle = !busy && !switched();
  return done;
}

size_t SegmentBytes(size_t cap) { return sizeof(LinkState) + 2 * cap; }

absl::Status BrokenPipe(absl::string_view what) {
  return absl::AbortedError(absl::StrCat(
      "Connection: the peer has closed its end (broken pipe); the message was not ", what));
}

void CloseAll(absl::Span<const int> fds) {
  for (int fd : fds) ::close(fd);
}

}  // namespace

ShmLink::ShmLink(int sock, ShmSegment segment, int end, size_t cap)
    : sock_(sock),
      segment_(std::move(segment)),
      state_(static_cast<LinkState*>(segment_.At(kStateOffset))),
      rings_(static_cast<uint8_t*>(segment_.At(kStateOffset)) + sizeof(LinkState)),
      end_(end),
      cap_(cap) {
  seen_closes_ = state_->closes[1 - end_].load(std::memory_order_relaxed);
  reader_seen_closes_ = seen_closes_;
  cached_head_ = out_words().head.load(std::memory_order_relaxed);
}

ShmLink::ShmLink(ShmLink&& other) noexcept { *this = std::move(other); }

ShmLink& ShmLink::operator=(ShmLink&& other) noexcept {
  if (this != &other) {
    Close();
    sock_ = std::exchange(other.sock_, -1);
    segment_ = std::move(other.segment_);
    other.segment_ = ShmSegment();
    state_ = std::exchange(other.state_, nullptr);
    rings_ = std::exchange(other.rings_, nullptr);
    end_ = other.end_;
    cap_ = other.cap_;
    cached_head_ = other.cached_head_;
    seen_closes_ = other.seen_closes_;
    reader_seen_closes_ = other.reader_seen_closes_;
    next_hup_check_ns_ = other.next_hup_check_ns_;
    in_message_ = std::exchange(other.in_message_, false);
    msg_left_ = other.msg_left_;
    body_pos_ = other.body_pos_;
    part_left_ = other.part_left_;
    record_end_ = other.record_end_;
    next_record_ = other.next_record_;
    msg_length_ = other.msg_length_;
    read_locked_ = std::exchange(other.read_locked_, false);
    peer_gone_.store(other.peer_gone_.load());
    woke_peer_ns_.store(other.woke_peer_ns_.load());
    error_ = std::move(other.error_);
    failed_.store(other.failed_.load());
    packets_ = std::move(other.packets_);
    other.packets_.clear();
  }
  return *this;
}

absl::StatusOr<std::pair<ShmLink, ShmLink>> ShmLink::CreatePair(size_t ring_bytes) {
  if (ring_bytes < kMinRingBytes || ring_bytes > kMaxRingBytes ||
      (ring_bytes & (ring_bytes - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("Pipe: ring size ", ring_bytes,
                                                   " is not a power of two in [", kMinRingBytes,
                                                   ", ", kMaxRingBytes, "]"));
  }
  // The sockets first: a Pipe refused for want of descriptors then never made (and dropped) a
  // segment.
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoStatus(errno, "Pipe: socketpair(AF_UNIX, SOCK_SEQPACKET)");
  }
  auto fail = [&sv](absl::Status s) {
    ::close(sv[0]);
    ::close(sv[1]);
    return s;
  };
  absl::StatusOr<ShmSegment> segment =
      ShmSegment::Create(ShmDomain::kTransferable, SegmentBytes(ring_bytes));
  if (!segment.ok()) return fail(segment.status());
  absl::StatusOr<uint64_t> offset = segment->Allocate(SegmentBytes(ring_bytes));
  if (!offset.ok()) return fail(offset.status());
  if (*offset != kStateOffset) {
    return fail(absl::InternalError(absl::StrCat("Pipe: link block at offset ", *offset)));
  }
  auto* state = new (segment->At(kStateOffset)) LinkState{};
  state->version = kVersion;
  state->ring_bytes = ring_bytes;
  state->tag.store(kTag, std::memory_order_release);
  ShmLink first(sv[0], *segment, 0, ring_bytes);
  ShmLink second(sv[1], *std::move(segment), 1, ring_bytes);
  return std::make_pair(std::move(first), std::move(second));
}

absl::StatusOr<ShmLink> ShmLink::Adopt(int sock, int segment_fd, int end) {
  auto fail = [sock](absl::Status s) {
    ::close(sock);
    return s;
  };
  if (end != 0 && end != 1) {
    return fail(absl::InvalidArgumentError(absl::StrCat("Connection: link end ", end)));
  }
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return fail(ErrnoStatus(errno, "Connection: getsockopt(SO_TYPE) of a shared-memory end"));
  }
  if (type != SOCK_SEQPACKET) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("Connection: the side socket of a shared-memory end is of type ", type,
                     ", not SOCK_SEQPACKET")));
  }
  absl::StatusOr<ShmSegment> segment = ShmSegment::Attach(segment_fd);
  if (!segment.ok()) return fail(segment.status());
  if (absl::Status s =
          segment->CheckBlock(kStateOffset, sizeof(LinkState), kTag, "shared-memory Connection");
      !s.ok()) {
    return fail(s);
  }
  auto* state = static_cast<LinkState*>(segment->At(kStateOffset));
  const uint32_t version = ReadOnce(state->version);
  const uint64_t cap = ReadOnce(state->ring_bytes);  // the one read: the peer may change it later
  if (version != kVersion) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("Connection: shared-memory link version ", version, ", expected ", kVersion)));
  }
  if (cap < kMinRingBytes || cap > kMaxRingBytes || (cap & (cap - 1)) != 0 ||
      segment->size() < kStateOffset + SegmentBytes(cap)) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("Connection: shared-memory link with a ring size of ", cap,
                     " bytes (not a power of two in range, or larger than its ", segment->size(),
                     "-byte segment)")));
  }
  return ShmLink(sock, *std::move(segment), end, cap);
}

void ShmLink::ClosePackets() {
  for (const Packet& p : packets_) CloseAll(p.fds);
  packets_.clear();
}

void ShmLink::Close() {
  if (sock_ < 0) return;
  UnlockRead();  // a message given up half-read (an error; the connection is closing)
  ::close(sock_);
  sock_ = -1;
  // After the close, so that a writer that sees the count move also sees the hang-up (if this was
  // the last copy); a peer asleep on a futex re-checks for one.
  state_->closes[end_].fetch_add(1, std::memory_order_seq_cst);
  FutexWake(&out_words().reader_waiting, kFutexWakeAll);
  FutexWake(&in_words().writer_waiting, kFutexWakeAll);
  segment_ = ShmSegment();
  state_ = nullptr;
  rings_ = nullptr;
  ClosePackets();
  in_message_ = false;
}

absl::Status ShmLink::Sticky(absl::Status s) {
  if (error_.ok()) {
    error_ = s;
    failed_.store(true, std::memory_order_relaxed);
  }
  return s;
}

// An honest peer has at most one descriptor packet ahead of the records it committed (it sends the
// packet, then commits the record), so kMaxPendingPackets of them with nothing to read is a flood.
absl::Status ShmLink::RefuseFlood() {
  return Sticky(absl::InvalidArgumentError(
      absl::StrCat("Connection: the peer sent ", packets_.size(),
                   " descriptor packets ahead of any message; the connection is closed")));
}

bool ShmLink::PeerGone() {
  if (peer_gone_) return true;
  // Events 0: only a hang-up (or an error) is reported.
  absl::StatusOr<short> revents = PollUntil(sock_, 0, Deadline::After(absl::ZeroDuration()));
  if (revents.ok() && (*revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) peer_gone_ = true;
  return peer_gone_;
}

// ---------------------------------------------------------------------------------------------------
// Writing.

void ShmLink::Commit(uint64_t pos, const RecordHeader& h, uint64_t end) {
  RingWords& w = out_words();
  uint8_t* ring = out_ring();
  // The next record's header word is zero before this one is seen (the reader polls it next):
  // whatever an earlier lap left there must not pass for a record.
  HeaderWord(ring, cap_, end).store(0, std::memory_order_relaxed);
  HeaderWord(ring, cap_, pos).store(EncodeHeader(h), std::memory_order_release);
  w.tail.store(end, std::memory_order_release);  // for the next writer
  // Ordered against a reader that announces its sleep and then re-checks the header word (see
  // the header).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (w.reader_waiting.load(std::memory_order_relaxed) == 0) return;
  const uint32_t sleeper = w.reader_waiting.exchange(0, std::memory_order_seq_cst);
  if ((sleeper & (kFutexSleeper | kPollSleeper)) != 0) {
    woke_peer_ns_.store(MonotonicNowNs(), std::memory_order_relaxed);
  }
  if ((sleeper & kFutexSleeper) != 0) FutexWake(&w.reader_waiting, kFutexWakeAll);
  if ((sleeper & kPollSleeper) != 0) {
    // A full socket is already readable, and a gone reader needs no wake-up: ignore both.
    ssize_t n;
    do {
      n = ::send(sock_, &kWakePacket, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
  }
}

absl::Status ShmLink::WaitRoom(uint64_t tail, size_t rec) {
  RingWords& w = out_words();
  auto room = [&](uint64_t head) { return head <= tail && tail - head <= cap_ - rec; };
  if (room(cached_head_)) return absl::OkStatus();
  absl::Status bad;
  auto refresh = [&]() {
    const uint64_t head = w.head.load(std::memory_order_acquire);
    if ((head & 7) != 0 || head > tail || tail - head > cap_) {
      bad = absl::DataLossError(absl::StrCat("Connection: the shared head word (position ", head,
                                             ") does not fit tail position ", tail, kOverwritten));
      return true;
    }
    cached_head_ = head;
    return room(head);
  };
  if (refresh() || ring::Spin(Deadline::Never(), refresh)) return bad;
  int64_t slice = kRoomSliceNs;
  for (;;) {
    w.writer_waiting.store(1, std::memory_order_seq_cst);
    if (refresh()) {
      w.writer_waiting.store(0, std::memory_order_relaxed);
      return bad;
    }
    FutexWait(&w.writer_waiting, 1, Deadline::AtNs(MonotonicNowNs() + slice));
    if (refresh()) return bad;
    if (PeerGone()) {
      return BrokenPipe("sent whole");
    }
    slice = std::min(slice * 2, kRoomSliceMaxNs);
  }
}

bool ShmLink::RoomFor(size_t size) {
  if (sock_ < 0 || size > cap_ / 4) return false;
  const RingWords& w = out_words();
  const uint64_t tail = w.tail.load(std::memory_order_relaxed);
  const uint64_t head = w.head.load(std::memory_order_acquire);
  const size_t rec = Align8(kLinkRecordHeaderSize + size);
  return head <= tail && tail - head <= cap_ - rec;
}

bool ShmLink::AllTaken() {
  if (sock_ < 0) return false;
  const RingWords& w = out_words();
  return w.head.load(std::memory_order_acquire) == w.tail.load(std::memory_order_relaxed);
}

absl::Status ShmLink::SendFds(uint64_t pos, absl::Span<const int> fds) {
  uint8_t data[kFdPacketSize];
  data[0] = kFdPacket;
  std::memcpy(data + 1, &pos, 8);
  RightsBuffer control;
  struct iovec iov = {data, sizeof(data)};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  AttachRights(msg, control, fds);
  for (;;) {
    if (::sendmsg(sock_, &msg, MSG_NOSIGNAL) >= 0) return absl::OkStatus();
    if (errno == EINTR) continue;
    if (errno == EPIPE || errno == ECONNRESET) {
      peer_gone_ = true;
      return BrokenPipe("sent");
    }
    if (errno == EBADF)
      return absl::InvalidArgumentError("Connection: a descriptor to send is not open");
    return ErrnoStatus(errno, "Connection: sendmsg of descriptors");
  }
}

absl::Status ShmLink::Send(absl::Span<const uint8_t> body, absl::Span<const int> fds) {
  if (sock_ < 0) return absl::FailedPreconditionError("Connection is closed");
  if (peer_gone_) {
    return BrokenPipe("sent");
  }
  // A peer that closed (a close count moved) or may have died (now and then) is checked for.
  const uint32_t closes = state_->closes[1 - end_].load(std::memory_order_relaxed);
  const int64_t now = CoarseMonotonicNowNs();
  if (closes != seen_closes_ || now >= next_hup_check_ns_) {
    seen_closes_ = closes;
    next_hup_check_ns_ = now + kHupCheckNs;
    if (PeerGone()) {
      return BrokenPipe("sent");
    }
  }
  RingWords& w = out_words();
  ring::SideLock side(w.write_lock, Deadline::Never());
  absl::StatusOr<uint64_t> at = WriteStart(side.recovered());
  if (!at.ok()) return at.status();
  uint64_t tail = *at;
  if (!fds.empty()) {
    if (absl::Status s = SendFds(tail, fds); !s.ok()) return s;
  }
  const size_t quarter = cap_ / 4;
  const uint8_t* src = body.data();
  size_t left = body.size();
  const uint16_t fd_count = static_cast<uint16_t>(fds.size());
  // Each record needs room for itself and the next record's header word, which Commit zeroes.
  if (left <= quarter) {
    const size_t rec = Align8(kLinkRecordHeaderSize + left);
    if (absl::Status s = WaitRoom(tail, rec + kLinkRecordHeaderSize); !s.ok()) return s;
    CopyIn(out_ring(), cap_, tail + kLinkRecordHeaderSize, src, left);
    Commit(tail, {static_cast<uint32_t>(left), fd_count, kLinkWhole, 0}, tail + rec);
    return absl::OkStatus();
  }
  // A start record, then parts of at most a quarter ring, each committed as soon as written.
  if (absl::Status s = WaitRoom(tail, 2 * kLinkRecordHeaderSize); !s.ok()) return s;
  Commit(tail, {static_cast<uint32_t>(left), fd_count, kLinkStart, 0},
         tail + kLinkRecordHeaderSize);
  tail += kLinkRecordHeaderSize;
  while (left > 0) {
    const size_t n = std::min(left, quarter);
    const size_t rec = Align8(kLinkRecordHeaderSize + n);
    if (absl::Status s = WaitRoom(tail, rec + kLinkRecordHeaderSize); !s.ok()) return s;
    CopyIn(out_ring(), cap_, tail + kLinkRecordHeaderSize, src, n);
    Commit(tail, {static_cast<uint32_t>(n), 0, kLinkPart, 0}, tail + rec);
    tail += rec;
    src += n;
    left -= n;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ShmLink::WriteStart(bool after_dead_writer) {
  RingWords& w = out_words();
  uint64_t tail = w.tail.load(std::memory_order_acquire);  // another writer's commit, if any
  if ((tail & 7) != 0) {
    return absl::DataLossError(absl::StrCat("Connection: the shared tail word (position ", tail,
                                            ") is not 8-aligned", kOverwritten));
  }
  // Records committed past the tail word: a writer that held the side died between a record's
  // header and its tail store (a writer that unlocked stored its tail first). The word at tail is
  // otherwise the zero the last Commit left, and only the peer could have changed it since: this
  // writer overwrites it either way.
  if (!after_dead_writer) return tail;
  for (uint64_t word;
       (word = HeaderWord(out_ring(), cap_, tail).load(std::memory_order_relaxed)) != 0;) {
    const RecordHeader h = DecodeHeader(word);
    const uint64_t head = w.head.load(std::memory_order_acquire);
    const bool known = h.zero == 0 && (h.kind == kLinkWhole || h.kind == kLinkPart ||
                                       (h.kind == kLinkStart && h.length > cap_ / 4));
    const uint64_t rec =
        h.kind == kLinkStart ? kLinkRecordHeaderSize : Align8(kLinkRecordHeaderSize + h.length);
    if (!known || (h.kind != kLinkStart && h.length > cap_ / 4) || head > tail ||
        tail + rec + kLinkRecordHeaderSize - head > cap_) {
      return absl::DataLossError(absl::StrCat("Connection: the outgoing ring holds a malformed ",
                                              "record at its tail position ", tail, " (kind ",
                                              h.kind, ", ", h.length, " bytes)", kOverwritten));
    }
    tail += rec;
  }
  return tail;
}

// ---------------------------------------------------------------------------------------------------
// Reading.

bool ShmLink::Sealed(uint64_t pos) {
  // Relaxed: a reader that goes on to read the record loads the word again with acquire order.
  return HeaderWord(in_ring(), cap_, pos).load(std::memory_order_relaxed) != 0;
}

absl::StatusOr<ShmLink::Wait> ShmLink::WaitData(uint64_t pos, Deadline deadline) {
  auto ready = [&]() { return Sealed(pos); };
  auto result = []() -> absl::StatusOr<Wait> { return Wait::kReady; };
  // The peer is gone: what it committed before it went is still read first.
  auto at_end = [&]() -> absl::StatusOr<Wait> { return ready() ? result() : Wait::kEnd; };
  if (ready()) return result();
  if (!error_.ok()) return error_;
  if (peer_gone_) return at_end();
  if (deadline.Expired()) {
    if (PeerGone()) return at_end();
    return Wait::kTimeout;
  }
  bool& contended = CoreContended();
  int64_t wait_start = 0;
  int64_t yield_start = 0;
  if (contended) {
    // A few polls first (~0.2 us): an answer already on its way needs no context switch.
    for (int i = 0; i < kContendedPolls; ++i) {
      SpinPause();
      if (ready()) return result();
    }
    wait_start = yield_start = MonotonicNowNs();
  } else {
    if (ring::Spin(deadline, ready, kMaxSpinPauses, &wait_start)) return result();
    yield_start = MonotonicNowNs();
  }
  const int64_t patient_until =
      woke_peer_ns_.load(std::memory_order_relaxed) + ring::kWokenPeerPatienceNs;
  bool only_idle;
  const bool done = YieldUntil(deadline, ready, yield_start, patient_until, &only_idle);
  contended = !only_idle;
  if (done) {
    if (only_idle) ring::SpinWouldHaveServed(MonotonicNowNs() - wait_start);
    return result();
  }
  RingWords& w = in_words();
  // An announcement is never withdrawn: copies of this end in other processes may be asleep on
  // the same word, and clearing it could erase their bit. A stale bit costs the writer one wake-up
  // nobody needed, and the writer clears it.
  uint32_t word = 0;  // the word as this reader's announcement left it
  auto announce = [&](uint32_t bit) {
    word = w.reader_waiting.fetch_or(bit, std::memory_order_seq_cst) | bit;
    // Pairs with the writer's fence between its tail store and its load of the word.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return ready();
  };
  // Futex phase: a prompt peer wakes this reader with one FUTEX_WAKE.
  const Deadline futex_end =
      Deadline::Earlier(deadline, Deadline::AtNs(MonotonicNowNs() + kFutexPhaseNs));
  while (!futex_end.Expired()) {
    if (announce(kFutexSleeper)) return result();
    // A copy of the other end closed since this reader last looked: maybe the last one.
    const uint32_t closes = state_->closes[1 - end_].load(std::memory_order_seq_cst);
    if (closes != reader_seen_closes_) {
      reader_seen_closes_ = closes;
      if (PeerGone()) return at_end();
    }
    FutexWait(&w.reader_waiting, word, futex_end);
    if (ready()) return result();
    if (PeerGone()) return at_end();
  }
  // Poll phase: the side socket wakes this reader for a 'W' packet, descriptors or a hang-up. In
  // slices: when copies of this end in several processes sleep here, the one that drains a 'W'
  // packet may take it from under another's poll(2) (which then sleeps on), so each re-announces
  // itself after a slice.
  int64_t slice = kPollSliceNs;
  for (;;) {
    if (announce(kPollSleeper)) return result();
    absl::StatusOr<short> revents = PollUntil(
        sock_, POLLIN, Deadline::Earlier(deadline, Deadline::AtNs(MonotonicNowNs() + slice)));
    if (!revents.ok()) return revents.status();
    slice = std::min(slice * 2, kPollSliceMaxNs);
    if (*revents == 0) {
      if (ready()) return result();
      if (deadline.Expired()) return Wait::kTimeout;
      continue;
    }
    if ((*revents & (POLLHUP | POLLERR)) != 0) peer_gone_ = true;
    if (absl::Status s = Drain(); !s.ok()) return s;
    if (ready()) return result();
    if (peer_gone_) return at_end();
    if (packets_.size() >= kMaxPendingPackets) return RefuseFlood();
    if (deadline.Expired()) return Wait::kTimeout;
  }
}

void ShmLink::Consume(uint64_t head) {
  RingWords& w = in_words();
  w.head.store(head, std::memory_order_release);
  // No fence: a writer waiting for room sleeps in slices, so a wake-up missed here costs at most a
  // slice, while a fence would cost every message.
  if (w.writer_waiting.load(std::memory_order_relaxed) != 0 &&
      w.writer_waiting.exchange(0, std::memory_order_seq_cst) != 0) {
    FutexWake(&w.writer_waiting, kFutexWakeAll);
  }
}

absl::Status ShmLink::Drain() {
  RightsBuffer control;
  // At most kDrainBudget packets per call, so that a peer flooding wake-ups cannot keep a waiter
  // here past its deadline.
  for (int budget = 0; packets_.size() < kMaxPendingPackets && budget < kDrainBudget; ++budget) {
    uint8_t data[16];
    struct iovec iov = {data, sizeof(data)};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data;
    msg.msg_controllen = sizeof(control.data);
    const ssize_t n = ::recvmsg(sock_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
      if (errno == ECONNRESET) {
        peer_gone_ = true;
        return absl::OkStatus();
      }
      return Sticky(ErrnoStatus(errno, "Connection: recvmsg on the side socket"));
    }
    std::vector<int> fds;
    CollectRights(msg, &fds);
    if ((msg.msg_flags & MSG_CTRUNC) != 0) {
      CloseAll(fds);
      return Sticky(absl::DataLossError(absl::StrCat(
          "Connection: descriptors sent with a message were truncated by the kernel (MSG_CTRUNC; "
          "is this process out of descriptors? see RLIMIT_NOFILE); the ",
          fds.size(), " that arrived were closed and the connection is closed")));
    }
    if (n == 0 && fds.empty()) {
      // End of file, or an empty packet (which mp never sends): a hang-up tells them apart.
      if (PeerGone()) return absl::OkStatus();
      continue;
    }
    if (n == 1 && data[0] == kWakePacket && fds.empty()) continue;
    if (n == static_cast<ssize_t>(kFdPacketSize) && data[0] == kFdPacket && !fds.empty() &&
        (msg.msg_flags & MSG_TRUNC) == 0) {
      uint64_t pos;
      std::memcpy(&pos, data + 1, 8);
      packets_.push_back({pos, std::move(fds)});
      continue;
    }
    CloseAll(fds);
    return Sticky(absl::InvalidArgumentError(absl::StrCat(
        "Connection: malformed ", n, "-byte packet with ", fds.size(),
        " descriptors on the side socket of a shared-memory end; the connection is closed")));
  }
  return absl::OkStatus();
}

absl::Status ShmLink::TakeFds(uint64_t pos, size_t count, std::vector<int>* fds) {
  auto drop_stale = [&]() {
    size_t stale = 0;
    while (stale < packets_.size() && packets_[stale].pos < pos) CloseAll(packets_[stale++].fds);
    packets_.erase(packets_.begin(), packets_.begin() + stale);
  };
  drop_stale();
  if (count > 0 && (packets_.empty() || packets_.front().pos != pos)) {
    if (absl::Status s = Drain(); !s.ok()) return s;
    drop_stale();
  }
  if (packets_.empty() || packets_.front().pos != pos) {
    if (count == 0) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("Connection: message says it carries ", count,
                     " descriptors but none arrived; the connection is closed"));
  }
  Packet p = std::move(packets_.front());
  packets_.erase(packets_.begin());
  if (p.fds.size() < count) {
    const size_t arrived = p.fds.size();
    CloseAll(p.fds);
    return absl::InvalidArgumentError(absl::StrCat("Connection: message says it carries ", count,
                                                   " descriptors but ", arrived,
                                                   " arrived; the connection is closed"));
  }
  // Descriptors beyond the declared count were declared by nobody: closed, the message delivered.
  const auto declared_end = p.fds.begin() + static_cast<ptrdiff_t>(count);
  if (fds != nullptr) {
    fds->insert(fds->end(), p.fds.begin(), declared_end);
  } else {
    CloseAll(absl::MakeConstSpan(p.fds).first(count));
  }
  CloseAll(absl::MakeConstSpan(p.fds).subspan(count));
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> ShmLink::BeginRecv(std::vector<int>* fds, size_t max_message_size) {
  if (sock_ < 0) return absl::FailedPreconditionError("Connection is closed");
  if (in_message_) {
    return absl::FailedPreconditionError("Connection: a message is half received");
  }
  if (!error_.ok()) return error_;
  // Wait for a record without holding the read side, then take it and check that no other reader
  // took the record meanwhile.
  uint64_t head;
  for (;;) {
    head = in_words().head.load(std::memory_order_acquire);
    if ((head & 7) != 0) {
      return absl::DataLossError(absl::StrCat("Connection: the shared head word (position ", head,
                                              ") is not 8-aligned", kOverwritten));
    }
    absl::StatusOr<Wait> w = WaitData(head, Deadline::Never());
    if (!w.ok()) return w.status();
    if (*w == Wait::kEnd) {
      return absl::OutOfRangeError("Connection: end of file (the peer closed its end)");
    }
    ring::SideLock side(in_words().read_lock, Deadline::Never());
    side.Release();  // held until the message's end (UnlockRead)
    read_locked_ = true;
    if (in_words().head.load(std::memory_order_acquire) == head) break;
    UnlockRead();
  }
  // Every return below without a message in progress gives the read side back.
  absl::Cleanup unlock = [this] {
    if (!in_message_) UnlockRead();
  };
  // Read once (acquire: the record's bytes are then visible), then checked.
  const RecordHeader h =
      DecodeHeader(HeaderWord(in_ring(), cap_, head).load(std::memory_order_acquire));
  if (h.zero != 0 || (h.kind != kLinkWhole && h.kind != kLinkStart) || h.fd_count > kMaxFds) {
    return absl::DataLossError(absl::StrCat("Connection: malformed record at position ", head,
                                            " (kind ", h.kind, ", ", h.fd_count,
                                            " descriptors, last byte ", h.zero, ")", kOverwritten));
  }
  if (h.kind == kLinkWhole && h.length > cap_ / 4) {
    return absl::DataLossError(absl::StrCat("Connection: a ", h.length, "-byte record at position ",
                                            head, " is above a record's limit of ", cap_ / 4,
                                            " bytes (a quarter of the ring)", kOverwritten));
  }
  if (h.kind == kLinkStart && h.length <= cap_ / 4) {
    return absl::DataLossError(absl::StrCat("Connection: a ", h.length,
                                            "-byte message in parts at position ", head,
                                            " fits one record", kOverwritten));
  }
  if (absl::Status s = TakeFds(head, h.fd_count, fds); !s.ok()) return s;
  if (h.length > max_message_size) {
    return absl::InvalidArgumentError(absl::StrCat("Connection: incoming message of ", h.length,
                                                   " bytes exceeds the max message size of ",
                                                   max_message_size, "; the connection is closed"));
  }
  msg_length_ = h.length;
  msg_left_ = h.length;
  if (h.kind == kLinkWhole) {
    body_pos_ = head + kLinkRecordHeaderSize;
    part_left_ = h.length;
    record_end_ = head + Align8(kLinkRecordHeaderSize + h.length);
    if (h.length == 0) {
      Consume(record_end_);
      return h.length;
    }
  } else {
    part_left_ = 0;
    next_record_ = head + kLinkRecordHeaderSize;
    Consume(next_record_);
  }
  in_message_ = true;
  return h.length;
}

absl::Status ShmLink::ReadBody(uint8_t* out, size_t n) {
  if (n == 0) return absl::OkStatus();  // an empty message is complete once begun
  if (!in_message_ || n > msg_left_) {
    return absl::InternalError("Connection: body read past the message");
  }
  while (n > 0) {
    if (part_left_ == 0) {
      const uint64_t pos = next_record_;
      absl::StatusOr<Wait> w = WaitData(pos, Deadline::Never());
      if (!w.ok()) return w.status();
      if (*w == Wait::kEnd) {
        in_message_ = false;
        UnlockRead();
        return absl::DataLossError(
            absl::StrCat("Connection: the peer closed its end in the middle of a ", msg_length_,
                         "-byte message (", msg_length_ - msg_left_, " bytes arrived)"));
      }
      const RecordHeader h =
          DecodeHeader(HeaderWord(in_ring(), cap_, pos).load(std::memory_order_acquire));
      if (h.kind != kLinkPart || h.zero != 0 || h.fd_count != 0 || h.length == 0 ||
          h.length > cap_ / 4 || h.length > msg_left_) {
        return absl::DataLossError(absl::StrCat(
            "Connection: malformed part record at position ", pos, " (kind ", h.kind, ", ",
            h.length, " bytes with ", msg_left_, " of the message left)", kOverwritten));
      }
      body_pos_ = pos + kLinkRecordHeaderSize;
      part_left_ = h.length;
      record_end_ = pos + Align8(kLinkRecordHeaderSize + h.length);
    }
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n, part_left_));
    CopyOut(in_ring(), cap_, body_pos_, out, k);
    body_pos_ += k;
    part_left_ -= k;
    msg_left_ -= k;
    out += k;
    n -= k;
    if (part_left_ == 0) {
      next_record_ = record_end_;
      Consume(record_end_);
    }
  }
  if (msg_left_ == 0) {
    in_message_ = false;
    UnlockRead();
  }
  return absl::OkStatus();
}

void ShmLink::UnlockRead() {
  if (read_locked_) OwnerUnlock(in_words().read_lock);
  read_locked_ = false;
}

bool ShmLink::ReadyNow() {
  // Only atomics and what Close alone changes: a thread may ask while another receives.
  if (sock_ < 0 || failed_.load(std::memory_order_relaxed) || peer_gone_) return true;
  const uint64_t head = in_words().head.load(std::memory_order_relaxed);
  // A record, or words a receive will report as broken.
  return (head & 7) != 0 || Sealed(head);
}

absl::StatusOr<bool> ShmLink::Poll(Deadline deadline) {
  if (ReadyNow()) return true;
  const uint64_t head = in_words().head.load(std::memory_order_relaxed);
  if ((head & 7) != 0) return true;  // the receive reports it
  absl::StatusOr<Wait> w = WaitData(head, deadline);
  if (!w.ok()) return true;  // the receive reports it (and closes the connection)
  return *w != Wait::kTimeout;
}

bool ShmLink::ArmPollWake() {
  in_words().reader_waiting.fetch_or(kPollSleeper, std::memory_order_seq_cst);
  return ReadyNow();
}

void ShmLink::DisarmPollWake() {
  in_words().reader_waiting.fetch_and(~kPollSleeper, std::memory_order_relaxed);
}

void ShmLink::TakeWake(short revents) {
  if ((revents & (POLLHUP | POLLERR)) != 0) peer_gone_ = true;
  if ((revents & POLLIN) != 0) Drain().IgnoreError();  // kept in error_ for the next receive
  // More descriptor packets than any honest peer leaves before committing their records: the
  // socket would stay readable and a Wait would spin, so the next receive fails instead.
  if (packets_.size() >= kMaxPendingPackets) {
    const uint64_t head = in_words().head.load(std::memory_order_relaxed);
    if (in_words().tail.load(std::memory_order_acquire) == head) RefuseFlood().IgnoreError();
  }
}

}  // namespace mp::channels_internal
