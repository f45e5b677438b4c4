// Copyright 2026 The mp Authors.
//
// sync/event.h — mp::Event, a process-shared flag that threads and processes can wait for: Python's
// multiprocessing.Event.
//
//   absl::StatusOr<mp::Event> ready = mp::Event::Create(mp::ShmDomain::kFork);
//   // child:  ... ready->Set();
//   // parent:
//   absl::StatusOr<bool> set = ready->Wait(absl::Seconds(10));
//   if (!set.ok()) return set.status();                 // negative timeout
//   if (!*set) return absl::DeadlineExceededError("child not ready after 10s");
//
//   Set()           sets the flag and wakes every waiter (a FUTEX_WAKE only if somebody sleeps)
//   Clear()         resets the flag
//   IsSet()         the flag
//   Wait(timeout)   true once the flag is set (immediately if it is); false if `timeout` passed
//                   first (CPython's return value); kInvalidArgument if timeout < 0.
//
// Wait spins briefly before it sleeps, so a ping-pong between two processes on two cores stays in
// user space most of the time. A process that dies cannot be "waited for" through an Event (it has
// no owner), which is why every Wait has a timeout.
//
// Thread-safety: a cheap copyable handle; all methods are safe from any thread. One cache line.

#ifndef MP_SYNC_EVENT_H_
#define MP_SYNC_EVENT_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sync/shm.h"

namespace mp {

struct alignas(64) EventState {
  std::atomic<uint32_t> tag;      // kTag once initialized
  std::atomic<uint32_t> flag;     // futex word: 0 clear, 1 set
  std::atomic<uint32_t> waiters;  // threads that may be sleeping on `flag`
};

class Event : public ShmObject<EventState> {
 public:
  using State = EventState;
  static_assert(sizeof(State) == 64);
  static constexpr uint32_t kTag = 0x7645706d;  // "mpEv"

  static absl::StatusOr<Event> Create(ShmDomain domain);
  static absl::StatusOr<Event> Create(ShmSegment segment);
  static absl::StatusOr<Event> FromHandle(const ShmHandle& handle);

  // An empty Event: the state a decode target starts in, before a real one is assigned to it. Only
  // assignment and destruction are allowed on it.
  Event() = default;
  Event(const Event&) = default;
  Event& operator=(const Event&) = default;
  Event(Event&&) = default;
  Event& operator=(Event&&) = default;

  void Set();
  void Clear();
  bool IsSet() const;
  absl::StatusOr<bool> Wait(absl::Duration timeout = absl::InfiniteDuration());

 private:
  Event(ShmSegment segment, uint64_t offset) : ShmObject(std::move(segment), offset) {}
};

// A Event travels to another process as its segment's descriptor and offset (sync/shm.h
// ShmObjectCodec): a transferable one to any child, a fork-domain one to forked children only.
template <>
struct Codec<Event> : ShmObjectCodec<Event, "Event"> {};

}  // namespace mp

#endif  // MP_SYNC_EVENT_H_
