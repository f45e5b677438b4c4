// Copyright 2026 The mp Authors.
//
// channels/shm_link.h — internal: the shared-memory transport under a Connection (connection.h
// says what users see; this file says how it works).
//
// A link is two single-producer single-consumer byte rings in one sealed memfd segment
// (sync/shm.h), one per direction, and a SOCK_SEQPACKET socketpair beside them, the "side socket".
// End e writes ring e and reads ring 1 - e. Each end holds its side socket and the segment.
//
// Ring records start on the 8-byte grid with a 64-bit header word (little-endian: u32 length, u16
// descriptor count, u8 kind, u8 0), then `length` payload bytes (wrapping around the ring end),
// padded to 8. Kinds:
//   1 whole   a message of `length` bytes (at most a quarter of the ring)
//   2 start   a larger message of `length` bytes; no payload; its bytes follow as parts
//   3 part    `length` (1 .. ring / 4) more bytes of the message being assembled
// Only whole and start records declare descriptors. Positions are byte counts that never wrap
// (the ring offset is pos & (ring - 1)). The header word commits its record: the writer stores it
// (release order) after the record's bytes, and before that zeroes the header word of the record
// that will follow, so that a reader polls exactly one word, the one at `head` (bytes consumed,
// stored only by the reader), and a nonzero word there is a whole record. Polling the record itself
// rather than a separate tail word saves the reader a cache miss per message (a 64 B round trip
// went from 0.92 to 0.79 us here). `tail` (bytes committed) is for the writers only: where the next
// message goes, stored after each record's header word; a writer that died between the two left a
// committed record past it, which the next writer steps over (WriteStart).
//
// The side socket carries what a ring cannot:
//   * descriptors: one packet 'F' + u64 position (of the record that declares them) with the
//     descriptors as SCM_RIGHTS, sent before that record is committed, so the reader finds it
//     waiting when it reads the record; packets for other positions are closed;
//   * wake-ups for a reader asleep in poll(2) (Poll, mp::Wait, a long Recv): one packet 'W', sent
//     only when the reader said it sleeps there (see waiting words);
//   * the end of the peer: every copy of the other end closed (or its processes dead) is a hang-up
//     of the socket. It is the only end-of-file signal: a copy of an end closing in one process
//     (a fork child's) must not end the stream for the copies still open.
//
// Several processes (or threads) may hold copies of one end: each side has an owner word. A writer
// holds the write side for a whole message (all its parts), a reader the read side from a
// record's header to the message's last byte; a holder that died is taken over (its half-written
// bytes were never committed; a half-read message is read again from its start, unless it came in
// parts, then the next reader gets kDataLoss). Descriptors reach the copy that drains the side
// socket: an end read by several processes at once should not carry them.
//
// Waiting. A reader spins (ring.h), yields while other processes want its core, then sleeps on its
// ring's `reader_waiting` word with FUTEX_WAIT for up to 2 ms (cheap wake-ups for a peer that
// answers soon), then sleeps in poll(2) on the side socket, where a hang-up wakes it at once. It
// announces each sleep in the word (kFutexSleeper / kPollSleeper, never withdrawn: copies of the
// end in other processes may sleep on the same word) and re-checks the ring after a fence; the
// writer stores the header word, fences, and wakes whichever sleepers the word names (exchange 0):
// FUTEX_WAKE and/or a 'W' packet. A writer without room for a record sleeps on `writer_waiting` in
// slices, checking for a hang-up between slices; the reader wakes it after consuming.
//
// Hostile peers. The other end can write anything into the segment and send anything on the side
// socket. Each end reads the configuration once when it attaches (Adopt) and checks it; every
// tail, head and record header is read once into a local and checked before use (positions on the
// grid, tail - head within one ring, known kind, lengths within a quarter ring and the receiver's
// max message size, parts summing to their message); bytes are
// copied out of the ring before anyone decodes them. A violation is kDataLoss (ring words or
// records, a record's descriptor count above 253 included) or kInvalidArgument (side-socket
// packets, descriptors that did not arrive as declared, a message above the max size) naming what
// was wrong, and a side-socket violation stays: every later receive returns it;
// Connection then closes itself. A peer can thus make a receiver fail, never crash or touch memory
// outside the segment, and never hold more than kMaxPendingPackets descriptor packets.

#ifndef MP_CHANNELS_SHM_LINK_H_
#define MP_CHANNELS_SHM_LINK_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/deadline.h"
#include "sync/shm.h"

namespace mp::channels_internal {

// Bytes of each direction's ring (a power of two).
inline constexpr size_t kDefaultRingBytes = size_t{256} << 10;
inline constexpr size_t kMinRingBytes = size_t{4} << 10;
inline constexpr size_t kMaxRingBytes = size_t{1} << 30;
inline constexpr size_t kLinkRecordHeaderSize = 8;
// Descriptor packets a reader holds ahead of the records that declare them; a peer sending more
// with nothing committed to read is refused.
inline constexpr size_t kMaxPendingPackets = 16;

enum LinkRecordKind : uint8_t { kLinkWhole = 1, kLinkStart = 2, kLinkPart = 3 };

// A record header, as read from (or for) its 64-bit word in the ring.
struct RecordHeader {
  uint32_t length;
  uint16_t fd_count;
  uint8_t kind;
  uint8_t zero;
};

// Bits of a ring's reader_waiting word.
inline constexpr uint32_t kFutexSleeper = 1;
inline constexpr uint32_t kPollSleeper = 2;

// The shared words of one direction, each side's on its own cache line. write_lock / read_lock are
// owner words (sync/futex.h) that make each side safe for several writers (readers) at once: the
// processes sharing a copy of one end, e.g. forked workers all reporting on one Pipe end.
struct RingWords {
  alignas(64) std::atomic<uint64_t> tail{0};
  std::atomic<uint32_t> write_lock{0};
  alignas(64) std::atomic<uint64_t> head{0};
  std::atomic<uint32_t> read_lock{0};
  alignas(64) std::atomic<uint32_t> reader_waiting{0};
  std::atomic<uint32_t> writer_waiting{0};
};

// The block at the start of a link's segment; the two rings follow it.
struct LinkState {
  std::atomic<uint32_t> tag{0};
  uint32_t version = 0;
  uint64_t ring_bytes = 0;
  // Bumped each time a copy of end e is closed: the writer then checks for a hang-up at once.
  std::atomic<uint32_t> closes[2] = {0, 0};
  RingWords rings[2];
};

class ShmLink {
 public:
  // Both ends of a new link with rings of `ring_bytes` (a power of two in [kMinRingBytes,
  // kMaxRingBytes]; kInvalidArgument otherwise).
  static absl::StatusOr<std::pair<ShmLink, ShmLink>> CreatePair(size_t ring_bytes);
  // End `end` of the link whose side socket is `sock` (taken: closed on failure too) and whose
  // segment is behind `segment_fd` (not taken). Checks both as coming from an untrusted process.
  static absl::StatusOr<ShmLink> Adopt(int sock, int segment_fd, int end);

  ShmLink() = default;
  ShmLink(ShmLink&& other) noexcept;
  ShmLink& operator=(ShmLink&& other) noexcept;
  ShmLink(const ShmLink&) = delete;
  ShmLink& operator=(const ShmLink&) = delete;
  ~ShmLink() { Close(); }

  bool open() const { return sock_ >= 0; }
  int sock() const { return sock_; }
  int segment_fd() const { return segment_.fd(); }
  int end() const { return end_; }
  size_t ring_bytes() const { return cap_; }

  // Sends one message of body.size() bytes with `fds` (at most kMaxFdsPerMessage), blocking while
  // the ring is full. kAborted once every copy of the other end is closed.
  absl::Status Send(absl::Span<const uint8_t> body, absl::Span<const int> fds);

  // Whether Send(body of `size` bytes) would find its room at once (false for a message in parts),
  // and whether the reader has taken everything written (tail == head). Never wait.
  bool RoomFor(size_t size);
  bool AllTaken();

  // Waits for the next message and returns its length; its declared descriptors are appended to
  // *fds (closed if fds is null). kOutOfRange (empty message) at end of file; kInvalidArgument for
  // a message above `max_message_size`. Then ReadBody must read the whole body.
  absl::StatusOr<uint32_t> BeginRecv(std::vector<int>* fds, size_t max_message_size);
  // The next n bytes of the message BeginRecv began. kDataLoss if the peer ends mid-message.
  absl::Status ReadBody(uint8_t* out, size_t n);

  // Whether a message (or end of file, or an error) can be received now without waiting. Safe
  // from a thread other than the receiving one.
  bool ReadyNow();
  // Waits until ReadyNow() or `deadline`; returns ReadyNow().
  absl::StatusOr<bool> Poll(Deadline deadline);
  // For mp::Wait over many descriptors: announce a poll(2) sleeper (returns ReadyNow() after the
  // announcement; an announcement stays until the writer's next commit clears it, see WaitData),
  // and take in what woke the socket.
  bool ArmPollWake();
  void TakeWake(short revents);
  // Withdraws a poll(2) sleeper's announcement: for a thread that watches the ring itself while
  // another thread of this process sleeps in mp::Wait on this end (the writer then sends no
  // wake-up packet). Only where no other process reads this end: its announcement would be erased
  // too. ArmPollWake makes it again.
  void DisarmPollWake();

  // Closes the side socket, tells the peer (a copy of this end is gone), unmaps. Idempotent.
  void Close();

 private:
  struct Packet {
    uint64_t pos;
    std::vector<int> fds;
  };
  enum class Wait { kReady, kEnd, kTimeout };

  ShmLink(int sock, ShmSegment segment, int end, size_t cap);

  RingWords& out_words() const { return state_->rings[end_]; }
  RingWords& in_words() const { return state_->rings[1 - end_]; }
  uint8_t* out_ring() const { return rings_ + end_ * cap_; }
  uint8_t* in_ring() const { return rings_ + (1 - end_) * cap_; }

  // Whether the incoming ring's header word at `pos` is nonzero: a record committed there (or
  // words a receive will report as broken).
  bool Sealed(uint64_t pos);
  // Waits until Sealed(pos), the peer is gone, or `deadline`.
  absl::StatusOr<Wait> WaitData(uint64_t pos, Deadline deadline);
  // Waits for room for `rec` bytes at `tail` in the outgoing ring.
  absl::Status WaitRoom(uint64_t tail, size_t rec);
  // The outgoing ring's tail for a new message (the write side held): the tail word, and after
  // taking the side over from a writer that died, past any records it committed without storing
  // the tail (checked: kDataLoss).
  absl::StatusOr<uint64_t> WriteStart(bool after_dead_writer);
  // Commits the record at `pos` (its bytes written) whose header is `h` and which ends at `end`,
  // and wakes a sleeping reader.
  void Commit(uint64_t pos, const RecordHeader& h, uint64_t end);
  // Consumes the incoming ring up to `head` and wakes a writer waiting for room.
  void Consume(uint64_t head);
  absl::Status SendFds(uint64_t pos, absl::Span<const int> fds);
  // Reads what the side socket holds (wake-ups, descriptor packets, a hang-up) without waiting.
  absl::Status Drain();
  // Hands the descriptors of the record at `pos` (declaring `count`) to *fds.
  absl::Status TakeFds(uint64_t pos, size_t count, std::vector<int>* fds);
  // Whether every copy of the other end is closed (a hang-up of the side socket); sticky.
  bool PeerGone();
  absl::Status Sticky(absl::Status s);
  absl::Status RefuseFlood();
  void UnlockRead();
  void ClosePackets();

  int sock_ = -1;
  ShmSegment segment_;
  LinkState* state_ = nullptr;
  uint8_t* rings_ = nullptr;
  int end_ = 0;
  size_t cap_ = 0;
  // Writer: head as last read (only ever behind the true head), the peer's close count and time of
  // the last hang-up check.
  uint64_t cached_head_ = 0;
  uint32_t seen_closes_ = 0;
  int64_t next_hup_check_ns_ = 0;
  // Reader: the peer's close count as last seen, the message being received.
  uint32_t reader_seen_closes_ = 0;
  bool in_message_ = false;
  uint64_t msg_left_ = 0;     // body bytes still to read
  uint64_t body_pos_ = 0;     // ring position of the next body byte
  uint64_t part_left_ = 0;    // bytes left in the current whole or part record
  uint64_t record_end_ = 0;   // head after the current record
  uint64_t next_record_ = 0;  // position of the next part record
  uint32_t msg_length_ = 0;
  bool read_locked_ = false;  // this handle holds in_words().read_lock
  // Written by the receiving and the sending thread (a Connection may have one of each).
  std::atomic<bool> peer_gone_{false};
  absl::Status error_;  // a side-socket violation already consumed: every later receive returns it
  std::atomic<bool> failed_{false};  // !error_.ok(), for ReadyNow from another thread
  // When this end's last commit that woke a sleeping reader did so (MonotonicNowNs; written by
  // the sending thread, read by the receiving one): its answer is then waited for longer.
  std::atomic<int64_t> woke_peer_ns_{INT64_MIN / 2};
  std::vector<Packet> packets_;
};

}  // namespace mp::channels_internal

#endif  // MP_CHANNELS_SHM_LINK_H_
