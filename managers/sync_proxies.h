// Copyright 2026 The mp Authors.
//
// managers/sync_proxies.h — proxies of a Manager's queues and synchronization primitives:
// QueueProxy, JoinableQueueProxy, LockProxy, RLockProxy, SemaphoreProxy, BoundedSemaphoreProxy,
// ConditionProxy, EventProxy, BarrierProxy (CPython's manager.Queue(), manager.Lock()...). Their
// methods have the names, arguments and status codes of mp's own Queue, Lock... (channels/,
// sync/): only the object lives in the manager's server instead of in shared memory, so they reach
// any process that can connect, on this host or another.
//
//   absl::StatusOr<mp::LockProxy> lock = m->Lock();
//   absl::StatusOr<bool> got = lock->Acquire(true, absl::Seconds(5));
//   if (mp::IsOwnerDied(got.status())) { /* held; its last holder's process died */ }
//   std::lock_guard<mp::LockProxy> guard(*lock);            // `with lock:`
//
// A blocking call (Get, Acquire, Wait...) waits in the server, at most its timeout; if the
// server dies meanwhile it returns kUnavailable at once. A lock held by a process that dies is
// released by the server, and the next Acquire holds it with kAborted + IsOwnerDied naming that
// process (sync/futex.h), as mp's own locks do; a Barrier whose waiting party's process dies
// breaks.

#ifndef MP_MANAGERS_SYNC_PROXIES_H_
#define MP_MANAGERS_SYNC_PROXIES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "managers/collections.h"
#include "managers/proxy.h"
#include "serialize/codec.h"
#include "sync/futex.h"
#include "sync/lockable.h"

namespace mp {
namespace managers_internal {

// How a (block, timeout) pair reaches the server: 0 for a call that must not wait, nullopt for
// no bound.
inline std::optional<absl::Duration> ServerTimeout(bool block, absl::Duration timeout) {
  if (!block) return absl::ZeroDuration();
  if (timeout == absl::InfiniteDuration()) return std::nullopt;
  return timeout;
}

// An acquire's reply: acquired, holder died (and its pid).
inline absl::StatusOr<bool> AcquireResult(absl::StatusOr<CallResults> r, absl::string_view what) {
  if (!r.ok()) return r.status();
  absl::StatusOr<bool> acquired = DecodeResult<bool>(*r, 0, what);
  if (!acquired.ok()) return acquired.status();
  absl::StatusOr<bool> died = DecodeResult<bool>(*r, 1, what);
  if (!died.ok()) return died.status();
  absl::StatusOr<uint32_t> pid = DecodeResult<uint32_t>(*r, 2, what);
  if (!pid.ok()) return pid.status();
  if (*died) return OwnerDiedError(what, static_cast<pid_t>(*pid), OwnerScope::kProcess);
  return *acquired;
}

// What the lock proxies share: Acquire/Release with mp::Lock's contract, and Lockable's
// lock()/unlock()/try_lock*() for std::lock_guard.
template <typename Self>
class LockLikeProxy : public TypedProxy<Self>, public Lockable<Self> {
 public:
  // true: acquired; false: not (non-blocking and held, or the timeout passed); kAborted +
  // IsOwnerDied: acquired from a holder whose process died; kInvalidArgument for a negative
  // timeout or block == false with a timeout.
  absl::StatusOr<bool> Acquire(bool block = true,
                               absl::Duration timeout = absl::InfiniteDuration()) const {
    if (absl::Status s = CheckAcquireArgs(block, timeout, Self::TypeLabel()); !s.ok()) return s;
    return AcquireResult(this->base_.CallMethod("acquire", {}, 0, ServerTimeout(block, timeout)),
                         Self::TypeLabel());
  }
  // kFailedPrecondition when not held (an RLock: not held by this thread).
  absl::Status Release() const { return this->None("release"); }

 protected:
  LockLikeProxy() = default;
  explicit LockLikeProxy(BaseProxy base) : TypedProxy<Self>(std::move(base)) {}
};

}  // namespace managers_internal

#define MP_MANAGERS_PROXY_TYPE(Class, id, label)                   \
 public:                                                           \
  static constexpr absl::string_view kTypeId = id;                 \
  static const std::string& TypeLabel() {                          \
    static const std::string* const name = new std::string(label); \
    return *name;                                                  \
  }                                                                \
                                                                   \
 private:                                                          \
  friend class BaseManager;                                        \
  friend struct managers_internal::ProxyCodec<Class>;              \
                                                                   \
 public:                                                           \
  static_assert(true, "MP_MANAGERS_PROXY_TYPE needs a trailing semicolon")

// manager.Lock(): not owned (any process may release it), as mp::Lock.
class LockProxy : public managers_internal::LockLikeProxy<LockProxy> {
  MP_MANAGERS_PROXY_TYPE(LockProxy, "Lock", "mp::LockProxy");

 public:
  LockProxy() = default;
  absl::StatusOr<bool> Locked() const { return One<bool>("locked"); }

 private:
  explicit LockProxy(BaseProxy base) : LockLikeProxy(std::move(base)) {}
};

// manager.RLock(): re-entrant, owned by the thread that acquired it.
class RLockProxy : public managers_internal::LockLikeProxy<RLockProxy> {
  MP_MANAGERS_PROXY_TYPE(RLockProxy, "RLock", "mp::RLockProxy");

 public:
  RLockProxy() = default;

 private:
  explicit RLockProxy(BaseProxy base) : LockLikeProxy(std::move(base)) {}
};

// manager.Semaphore(value) / manager.BoundedSemaphore(value).
template <bool kBounded>
class SemaphoreProxyOf : public managers_internal::TypedProxy<SemaphoreProxyOf<kBounded>> {
  MP_MANAGERS_PROXY_TYPE(SemaphoreProxyOf, kBounded ? "BoundedSemaphore" : "Semaphore",
                         kBounded ? "mp::BoundedSemaphoreProxy" : "mp::SemaphoreProxy");

 public:
  SemaphoreProxyOf() = default;
  absl::StatusOr<bool> Acquire(bool block = true,
                               absl::Duration timeout = absl::InfiniteDuration()) const {
    if (absl::Status s = CheckAcquireArgs(block, timeout, TypeLabel()); !s.ok()) return s;
    absl::StatusOr<CallResults> r =
        this->base_.CallMethod("acquire", {}, 0, managers_internal::ServerTimeout(block, timeout));
    if (!r.ok()) return r.status();
    return managers_internal::DecodeResult<bool>(*r, 0, TypeLabel());
  }
  // kFailedPrecondition past a BoundedSemaphore's initial value.
  absl::Status Release() const { return this->None("release"); }
  absl::StatusOr<int64_t> GetValue() const { return this->template One<int64_t>("get_value"); }

 private:
  explicit SemaphoreProxyOf(BaseProxy base)
      : managers_internal::TypedProxy<SemaphoreProxyOf>(std::move(base)) {}
};
using SemaphoreProxy = SemaphoreProxyOf<false>;
using BoundedSemaphoreProxy = SemaphoreProxyOf<true>;

// manager.Event().
class EventProxy : public managers_internal::TypedProxy<EventProxy> {
  MP_MANAGERS_PROXY_TYPE(EventProxy, "Event", "mp::EventProxy");

 public:
  EventProxy() = default;
  absl::StatusOr<bool> IsSet() const { return One<bool>("is_set"); }
  absl::Status Set() const { return None("set"); }
  absl::Status Clear() const { return None("clear"); }
  // true once set; false after `timeout` (kInvalidArgument if negative).
  absl::StatusOr<bool> Wait(absl::Duration timeout = absl::InfiniteDuration()) const {
    if (absl::Status s = CheckTimeout(timeout, "EventProxy::Wait"); !s.ok()) return s;
    absl::StatusOr<CallResults> r =
        base_.CallMethod("wait", {}, 0, managers_internal::ServerTimeout(true, timeout));
    if (!r.ok()) return r.status();
    return managers_internal::DecodeResult<bool>(*r, 0, "EventProxy::Wait");
  }

 private:
  explicit EventProxy(BaseProxy base) : TypedProxy(std::move(base)) {}
};

// manager.Condition(): with an RLock of its own.
class ConditionProxy : public managers_internal::LockLikeProxy<ConditionProxy> {
  MP_MANAGERS_PROXY_TYPE(ConditionProxy, "Condition", "mp::ConditionProxy");

 public:
  ConditionProxy() = default;
  // Releases the lock, waits for a Notify (true) or the timeout (false), and takes the lock back;
  // kFailedPrecondition unless this thread holds it.
  absl::StatusOr<bool> Wait(absl::Duration timeout = absl::InfiniteDuration()) const {
    if (absl::Status s = CheckTimeout(timeout, "ConditionProxy::Wait"); !s.ok()) return s;
    return managers_internal::AcquireResult(
        base_.CallMethod("wait", {}, 0, managers_internal::ServerTimeout(true, timeout)),
        "ConditionProxy::Wait");
  }
  // Waits until pred() (called here, with the lock held) is true or the timeout passes; its last
  // value (CPython's wait_for).
  template <typename Pred>
  absl::StatusOr<bool> WaitFor(Pred pred, absl::Duration timeout = absl::InfiniteDuration()) const {
    if (absl::Status s = CheckTimeout(timeout, "ConditionProxy::WaitFor"); !s.ok()) return s;
    const absl::Time deadline =
        timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
    bool result = pred();
    while (!result) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      absl::StatusOr<bool> woken = Wait(left);
      if (!woken.ok()) return woken.status();
      result = pred();
    }
    return result;
  }
  absl::Status Notify(int64_t n = 1) const { return None("notify", {Encode(n)}); }
  absl::Status NotifyAll() const { return None("notify_all"); }

 private:
  explicit ConditionProxy(BaseProxy base) : LockLikeProxy(std::move(base)) {}
};

// manager.Barrier(parties).
class BarrierProxy : public managers_internal::TypedProxy<BarrierProxy> {
  MP_MANAGERS_PROXY_TYPE(BarrierProxy, "Barrier", "mp::BarrierProxy");

 public:
  BarrierProxy() = default;
  // The arrival index (0 ... parties-1); kAborted when the barrier is or becomes broken,
  // kDeadlineExceeded for the waiter whose timeout broke it.
  absl::StatusOr<int64_t> Wait(absl::Duration timeout = absl::InfiniteDuration()) const {
    if (absl::Status s = CheckTimeout(timeout, "BarrierProxy::Wait"); !s.ok()) return s;
    absl::StatusOr<CallResults> r =
        base_.CallMethod("wait", {}, 0, managers_internal::ServerTimeout(true, timeout));
    if (!r.ok()) return r.status();
    return managers_internal::DecodeResult<int64_t>(*r, 0, "BarrierProxy::Wait");
  }
  absl::Status Abort() const { return None("abort"); }
  absl::Status Reset() const { return None("reset"); }
  absl::StatusOr<int64_t> Parties() const { return One<int64_t>("parties"); }
  absl::StatusOr<int64_t> NWaiting() const { return One<int64_t>("n_waiting"); }
  absl::StatusOr<bool> Broken() const { return One<bool>("broken"); }

 private:
  explicit BarrierProxy(BaseProxy base) : TypedProxy(std::move(base)) {}
};

// manager.Queue(maxsize) / manager.JoinableQueue(maxsize) of T.
template <typename T, bool kJoinable>
class QueueProxyOf : public managers_internal::TypedProxy<QueueProxyOf<T, kJoinable>> {
  MP_MANAGERS_PROXY_TYPE(QueueProxyOf, kJoinable ? "JoinableQueue" : "Queue",
                         absl::StrCat(kJoinable ? "mp::JoinableQueueProxy<" : "mp::QueueProxy<",
                                      TypeName<T>(), ">"));

 public:
  QueueProxyOf() = default;
  // kUnavailable when full and not blocking, kDeadlineExceeded when still full at the timeout.
  absl::Status Put(const T& item, bool block = true,
                   absl::Duration timeout = absl::InfiniteDuration()) const {
    if (absl::Status s = CheckAcquireArgs(block, timeout, "QueueProxy::Put"); !s.ok()) return s;
    std::vector<uint32_t> held;
    if (absl::Status s = this->MarkHeld(item, 0, held); !s.ok()) return s;
    return this->base_
        .CallMethod("put", {Encode(item)}, 0, managers_internal::ServerTimeout(block, timeout),
                    std::move(held))
        .status();
  }
  // kUnavailable when empty and not blocking, kDeadlineExceeded when still empty at the timeout.
  absl::StatusOr<T> Get(bool block = true,
                        absl::Duration timeout = absl::InfiniteDuration()) const {
    if (absl::Status s = CheckAcquireArgs(block, timeout, "QueueProxy::Get"); !s.ok()) return s;
    absl::StatusOr<CallResults> r =
        this->base_.CallMethod("get", {}, 0, managers_internal::ServerTimeout(block, timeout));
    if (!r.ok()) return r.status();
    return managers_internal::DecodeResult<T>(*r, 0, "QueueProxy::Get");
  }
  absl::Status PutNoWait(const T& item) const { return Put(item, false); }
  absl::StatusOr<T> GetNoWait() const { return Get(false); }
  absl::StatusOr<size_t> QSize() const {
    absl::StatusOr<uint64_t> n = this->template One<uint64_t>("qsize");
    if (!n.ok()) return n.status();
    return static_cast<size_t>(*n);
  }
  absl::StatusOr<bool> Empty() const { return this->template One<bool>("empty"); }
  absl::StatusOr<bool> Full() const { return this->template One<bool>("full"); }
  // JoinableQueue only: kFailedPrecondition when called more times than items were put.
  absl::Status TaskDone() const requires kJoinable { return this->None("task_done"); }
  // JoinableQueue only: until every item put is done; kDeadlineExceeded after `timeout`.
  absl::Status Join(absl::Duration timeout = absl::InfiniteDuration()) const requires kJoinable {
    if (absl::Status s = CheckTimeout(timeout, "JoinableQueueProxy::Join"); !s.ok()) return s;
    return this->base_.CallMethod("join", {}, 0, managers_internal::ServerTimeout(true, timeout))
        .status();
  }

 private:
  explicit QueueProxyOf(BaseProxy base)
      : managers_internal::TypedProxy<QueueProxyOf>(std::move(base)) {}
};
template <typename T>
using QueueProxy = QueueProxyOf<T, false>;
template <typename T>
using JoinableQueueProxy = QueueProxyOf<T, true>;

#undef MP_MANAGERS_PROXY_TYPE

template <>
struct Codec<LockProxy> : managers_internal::ProxyCodec<LockProxy> {
  static std::string Name() { return LockProxy::TypeLabel(); }
};
template <>
struct Codec<RLockProxy> : managers_internal::ProxyCodec<RLockProxy> {
  static std::string Name() { return RLockProxy::TypeLabel(); }
};
template <bool kBounded>
struct Codec<SemaphoreProxyOf<kBounded>>
    : managers_internal::ProxyCodec<SemaphoreProxyOf<kBounded>> {
  static std::string Name() { return SemaphoreProxyOf<kBounded>::TypeLabel(); }
};
template <>
struct Codec<EventProxy> : managers_internal::ProxyCodec<EventProxy> {
  static std::string Name() { return EventProxy::TypeLabel(); }
};
template <>
struct Codec<ConditionProxy> : managers_internal::ProxyCodec<ConditionProxy> {
  static std::string Name() { return ConditionProxy::TypeLabel(); }
};
template <>
struct Codec<BarrierProxy> : managers_internal::ProxyCodec<BarrierProxy> {
  static std::string Name() { return BarrierProxy::TypeLabel(); }
};
template <typename T, bool kJoinable>
struct Codec<QueueProxyOf<T, kJoinable>>
    : managers_internal::ProxyCodec<QueueProxyOf<T, kJoinable>> {
  static std::string Name() { return QueueProxyOf<T, kJoinable>::TypeLabel(); }
};

}  // namespace mp

#endif  // MP_MANAGERS_SYNC_PROXIES_H_
