// Copyright 2026 The mp Authors.
//
// The built-in queues and synchronization primitives of a manager's server: Queue, JoinableQueue,
// Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier (see builtins.h for their
// methods). A blocking method waits in the serving thread of its caller's connection, in slices
// of kCallerCheck between which it looks whether the caller is still there: a waiter whose client
// died gives up, so nothing is acquired or taken for a process that no longer exists. A lock whose
// holder's session ends (the process died) is released, and the next acquirer hears that its
// holder died (IsOwnerDied), as with mp's own locks.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/deadline.h"
#include "base/mutex.h"
#include "managers/builtins.h"
#include "managers/served_object.h"
#include "serialize/codec.h"

namespace mp::managers_internal {
namespace {

// How often a blocked call looks whether its caller is still connected.
constexpr absl::Duration kCallerCheck = absl::Milliseconds(50);

// What every blocking built-in shares: a mutex, a condition variable, and a wait that ends at the
// call's deadline or when the caller is gone.
class Blocking : public ServedObject {
 public:
  Blocking(uint64_t type, std::string type_name) : type_(type), type_name_(std::move(type_name)) {}
  uint64_t type() const override { return type_; }
  const std::string& type_name() const override { return type_name_; }

 protected:
  enum class Waited { kReady, kTimedOut, kCallerGone };

  // Waits until pred() holds (kReady), the call's deadline passes (kTimedOut) or its caller
  // leaves (kCallerGone). pred runs with mu_ held.
  // A call that had to wait looks once more before it takes anything: a client that died while
  // it waited must not be given the item or the lock.
  template <typename Pred>
  Waited Await(CallContext& context, Pred pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (pred()) return Waited::kReady;
    const Deadline deadline = context.deadline();
    for (;;) {
      if (deadline.Expired()) return Waited::kTimedOut;
      const bool ready =
          mu_.Await(cv_, Deadline::Earlier(deadline, Deadline::After(kCallerCheck)), pred);
      if (context.CallerGone()) return Waited::kCallerGone;
      if (ready) return Waited::kReady;
    }
  }
  absl::Status Args(absl::string_view method, absl::Span<const std::string> args, size_t n) const {
    return CheckArgCount(type_name_, method, args, n);
  }
  absl::Status NoMethod(absl::string_view method) const { return NoSuchMethod(type_name_, method); }
  absl::Status Gone(absl::string_view method) const {
    return absl::CancelledError(absl::StrCat(type_name_, ".", method, ": the caller went away"));
  }
  absl::StatusOr<bool> Flag(absl::string_view method, const std::string& arg) const {
    absl::StatusOr<bool> v = Decode<bool>(arg);
    if (!v.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(type_name_, ".", method, ": a malformed flag: ", v.status().message()));
    }
    return v;
  }

  Mutex mu_;
  std::condition_variable cv_;

 private:
  const uint64_t type_;
  const std::string type_name_;
};

// The lock state of Lock, RLock and Condition: a count, the session and thread that hold it, and
// whether its last holder's session ended while holding it (the next acquirer is told, with that
// process's pid). Replies to an acquire are: bool acquired, bool holder_died, u32 the dead
// holder's pid.
class OwnedLock : public Blocking {
 public:
  using Blocking::Blocking;

  bool WatchesSessions() const override { return true; }
  void SessionEnded(uint64_t session) override {
    MutexLock lock(&mu_);
    if (count_ > 0 && session_ == session) {
      count_ = 0;
      abandoned_ = true;
      dead_pid_ = pid_;
      cv_.notify_all();
    }
  }

 protected:
  // Whether the caller's thread holds it.
  bool Mine(const CallContext& context) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return count_ > 0 && session_ == context.session() && thread_ == context.thread();
  }
  // acquire: re-entrant (a holder takes it again at once) when `recursive`.
  absl::Status Acquire(CallContext& context, absl::string_view m, bool recursive,
                       std::vector<std::string>& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (recursive && Mine(context)) {
      ++count_;
      out = {EncodeBool(true), EncodeBool(false), Encode<uint32_t>(0)};
      return absl::OkStatus();
    }
    switch (Await(context, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ == 0; })) {
      case Waited::kTimedOut:
        out = {EncodeBool(false), EncodeBool(false), Encode<uint32_t>(0)};
        return absl::OkStatus();
      case Waited::kCallerGone:
        return Gone(m);
      case Waited::kReady:
        break;
    }
    Take(context, 1, /*first=*/true, out);
    return absl::OkStatus();
  }
  // The caller now holds it `count` times; the reply says true (an acquire) or `first` (a
  // Condition's wait: whether it was notified), and whether the last holder had died.
  void Take(CallContext& context, uint64_t count, bool first, std::vector<std::string>& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    count_ = count;
    session_ = context.session();
    thread_ = context.thread();
    pid_ = context.pid();
    out = {EncodeBool(first), EncodeBool(abandoned_), Encode<uint32_t>(dead_pid_)};
    abandoned_ = false;
  }

  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;

 private:
  uint64_t session_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t thread_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t pid_ ABSL_GUARDED_BY(mu_) = 0;
  bool abandoned_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t dead_pid_ ABSL_GUARDED_BY(mu_) = 0;
};

// Lock (not owned: any caller may release it) and RLock (owned by the thread that acquired it,
// re-entrant).
class ServedLock : public OwnedLock {
 public:
  ServedLock(uint64_t type, std::string type_name, bool recursive)
      : OwnedLock(type, std::move(type_name)), recursive_(recursive) {}

  absl::Status Call(CallContext& context, absl::string_view m, uint64_t,
                    absl::Span<const std::string> a, std::vector<std::string>& out) override {
    MutexLock lock(&mu_);
    if (m == "acquire") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      return Acquire(context, m, recursive_, out);
    }
    if (m == "release") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      if (count_ == 0) {
        return absl::FailedPreconditionError(absl::StrCat(type_name(), ".release: not held"));
      }
      if (recursive_ && !Mine(context)) {
        return absl::FailedPreconditionError(
            absl::StrCat(type_name(), ".release: held by another thread"));
      }
      if (--count_ == 0) cv_.notify_all();
      return absl::OkStatus();
    }
    if (m == "locked") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      out.push_back(EncodeBool(count_ > 0));
      return absl::OkStatus();
    }
    return NoMethod(m);
  }

 private:
  const bool recursive_;
};

// Semaphore and BoundedSemaphore (bound > 0: release past it is kFailedPrecondition).
class ServedSemaphore : public Blocking {
 public:
  ServedSemaphore(uint64_t type, std::string type_name, int64_t value, bool bounded)
      : Blocking(type, std::move(type_name)), value_(value), bound_(bounded ? value : -1) {}

  absl::Status Call(CallContext& context, absl::string_view m, uint64_t,
                    absl::Span<const std::string> a, std::vector<std::string>& out) override {
    MutexLock lock(&mu_);
    if (m == "acquire") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      switch (Await(context, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return value_ > 0; })) {
        case Waited::kTimedOut:
          out.push_back(EncodeBool(false));
          return absl::OkStatus();
        case Waited::kCallerGone:
          return Gone(m);
        case Waited::kReady:
          break;
      }
      --value_;
      out.push_back(EncodeBool(true));
      return absl::OkStatus();
    }
    if (m == "release") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      if (bound_ >= 0 && value_ >= bound_) {
        return absl::FailedPreconditionError(
            absl::StrCat(type_name(), ".release: the semaphore is released too many times"));
      }
      ++value_;
      cv_.notify_one();
      return absl::OkStatus();
    }
    if (m == "get_value") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      out.push_back(EncodeI64(value_));
      return absl::OkStatus();
    }
    return NoMethod(m);
  }

 private:
  int64_t value_ ABSL_GUARDED_BY(mu_);
  const int64_t bound_;
};

class ServedEvent : public Blocking {
 public:
  using Blocking::Blocking;

  absl::Status Call(CallContext& context, absl::string_view m, uint64_t,
                    absl::Span<const std::string> a, std::vector<std::string>& out) override {
    MutexLock lock(&mu_);
    if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
    if (m == "is_set") {
      out.push_back(EncodeBool(set_));
      return absl::OkStatus();
    }
    if (m == "set" || m == "clear") {
      set_ = m == "set";
      if (set_) cv_.notify_all();
      return absl::OkStatus();
    }
    if (m == "wait") {
      const Waited w = Await(context, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return set_; });
      if (w == Waited::kCallerGone) return Gone(m);
      out.push_back(EncodeBool(w == Waited::kReady));
      return absl::OkStatus();
    }
    return NoMethod(m);
  }

 private:
  bool set_ ABSL_GUARDED_BY(mu_) = false;
};

// Condition with its own RLock. wait: the caller must hold it; the lock is released while
// waiting and taken back before the reply, as threading.Condition does. Notify(n) wakes the n
// oldest waiters, never one that began waiting after it.
class ServedCondition : public OwnedLock {
 public:
  using OwnedLock::OwnedLock;

  absl::Status Call(CallContext& context, absl::string_view m, uint64_t,
                    absl::Span<const std::string> a, std::vector<std::string>& out) override {
    MutexLock lock(&mu_);
    const bool mine = Mine(context);
    if (m == "acquire") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      return Acquire(context, m, /*recursive=*/true, out);
    }
    if (m == "release") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      if (!mine) return NotHeld(m);
      if (--count_ == 0) cv_.notify_all();
      return absl::OkStatus();
    }
    if (m == "notify") {
      if (absl::Status s = Args(m, a, 1); !s.ok()) return s;
      if (!mine) return NotHeld(m);
      absl::StatusOr<int64_t> n = DecodeI64(type_name(), m, a[0]);
      if (!n.ok()) return n.status();
      for (int64_t i = 0; i < *n && !waiting_.empty(); ++i) {
        notified_.push_back(waiting_.front());
        waiting_.pop_front();
      }
      cv_.notify_all();
      return absl::OkStatus();
    }
    if (m == "notify_all") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      if (!mine) return NotHeld(m);
      notified_.insert(notified_.end(), waiting_.begin(), waiting_.end());
      waiting_.clear();
      cv_.notify_all();
      return absl::OkStatus();
    }
    if (m == "wait") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      if (!mine) return NotHeld(m);
      const uint64_t ticket = next_ticket_++;
      const uint64_t saved = count_;
      waiting_.push_back(ticket);
      count_ = 0;
      cv_.notify_all();
      const Waited w = Await(context, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return Contains(notified_, ticket);
      });
      Remove(waiting_, ticket);
      const bool notified = Remove(notified_, ticket);
      // Take the lock back (without a deadline: threading.Condition.wait does too).
      while (count_ != 0) {
        mu_.Await(cv_, Deadline::After(kCallerCheck),
                  [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ == 0; });
        if (count_ != 0 && context.CallerGone()) return Gone(m);
      }
      if (w == Waited::kCallerGone) return Gone(m);
      Take(context, saved, notified, out);
      return absl::OkStatus();
    }
    return NoMethod(m);
  }

 private:
  absl::Status NotHeld(absl::string_view m) const {
    return absl::FailedPreconditionError(
        absl::StrCat(type_name(), ".", m, ": the caller does not hold the lock"));
  }
  static bool Contains(const std::deque<uint64_t>& d, uint64_t t) {
    for (uint64_t x : d) {
      if (x == t) return true;
    }
    return false;
  }
  static bool Remove(std::deque<uint64_t>& d, uint64_t t) {
    for (auto it = d.begin(); it != d.end(); ++it) {
      if (*it == t) {
        d.erase(it);
        return true;
      }
    }
    return false;
  }

  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  std::deque<uint64_t> waiting_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> notified_ ABSL_GUARDED_BY(mu_);
};

// Barrier(parties): wait -> the arrival index; kAborted when broken (abort, reset while waiting,
// a waiter's timeout, a waiter whose client went away), kDeadlineExceeded for the waiter whose
// timeout broke it.
class ServedBarrier : public Blocking {
 public:
  ServedBarrier(uint64_t type, std::string type_name, int64_t parties)
      : Blocking(type, std::move(type_name)), parties_(parties) {}

  absl::Status Call(CallContext& context, absl::string_view m, uint64_t,
                    absl::Span<const std::string> a, std::vector<std::string>& out) override {
    MutexLock lock(&mu_);
    if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
    if (m == "wait") {
      if (broken_) return Broken(m);
      const uint64_t generation = generation_;
      const int64_t index = parties_ - 1 - waiting_;
      if (++waiting_ == parties_) {
        waiting_ = 0;
        ++generation_;
        cv_.notify_all();
        out.push_back(EncodeI64(index));
        return absl::OkStatus();
      }
      const Waited w = Await(context, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return generation_ != generation || broken_;
      });
      if (generation_ != generation) {
        out.push_back(EncodeI64(index));
        return absl::OkStatus();
      }
      if (broken_) return Broken(m);
      Break();
      if (w == Waited::kCallerGone) return Gone(m);
      return absl::DeadlineExceededError(
          absl::StrCat(type_name(), ".wait: timed out; the barrier is broken"));
    }
    if (m == "abort") {
      Break();
      return absl::OkStatus();
    }
    if (m == "reset") {
      if (waiting_ > 0) Break();
      broken_ = false;
      waiting_ = 0;
      return absl::OkStatus();
    }
    if (m == "parties" || m == "n_waiting") {
      out.push_back(EncodeI64(m == "parties" ? parties_ : (broken_ ? 0 : waiting_)));
      return absl::OkStatus();
    }
    if (m == "broken") {
      out.push_back(EncodeBool(broken_));
      return absl::OkStatus();
    }
    return NoMethod(m);
  }

 private:
  void Break() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    broken_ = true;
    waiting_ = 0;
    cv_.notify_all();
  }
  absl::Status Broken(absl::string_view m) const {
    return absl::AbortedError(absl::StrCat(type_name(), ".", m, ": the barrier is broken"));
  }

  const int64_t parties_;
  int64_t waiting_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

// Queue(maxsize) and JoinableQueue(maxsize): items are encoded values. put(item) / get():
// kUnavailable when full / empty and the call does not wait (a zero timeout), kDeadlineExceeded
// when it waited until its timeout, as mp::Queue.
class ServedQueue : public Blocking {
 public:
  ServedQueue(uint64_t type, std::string type_name, int64_t maxsize, bool joinable)
      : Blocking(type, std::move(type_name)), maxsize_(maxsize), joinable_(joinable) {}

  absl::Status Call(CallContext& context, absl::string_view m, uint64_t,
                    absl::Span<const std::string> a, std::vector<std::string>& out) override {
    MutexLock lock(&mu_);
    if (m == "put") {
      if (absl::Status s = Args(m, a, 1); !s.ok()) return s;
      switch (Await(context, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !Full(); })) {
        case Waited::kTimedOut:
          return Unready(context, m, "full");
        case Waited::kCallerGone:
          return Gone(m);
        case Waited::kReady:
          break;
      }
      items_.push_back(StoredArg(context, a, 0));
      ++unfinished_;
      cv_.notify_all();
      return absl::OkStatus();
    }
    if (m == "get") {
      if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
      switch (
          Await(context, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !items_.empty(); })) {
        case Waited::kTimedOut:
          return Unready(context, m, "empty");
        case Waited::kCallerGone:
          return Gone(m);
        case Waited::kReady:
          break;
      }
      Emit(context, out, items_.front());
      items_.pop_front();
      cv_.notify_all();
      return absl::OkStatus();
    }
    if (absl::Status s = Args(m, a, 0); !s.ok()) return s;
    if (m == "qsize") {
      out.push_back(EncodeU64(items_.size()));
      return absl::OkStatus();
    }
    if (m == "empty" || m == "full") {
      out.push_back(EncodeBool(m == "empty" ? items_.empty() : Full()));
      return absl::OkStatus();
    }
    if (joinable_ && m == "task_done") {
      if (unfinished_ == 0) {
        return absl::FailedPreconditionError(
            absl::StrCat(type_name(), ".task_done: called more times than items were put"));
      }
      if (--unfinished_ == 0) cv_.notify_all();
      return absl::OkStatus();
    }
    if (joinable_ && m == "join") {
      switch (Await(context,
                    [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return unfinished_ == 0; })) {
        case Waited::kTimedOut:
          return absl::DeadlineExceededError(
              absl::StrCat(type_name(), ".join: ", unfinished_, " items are not done yet"));
        case Waited::kCallerGone:
          return Gone(m);
        case Waited::kReady:
          return absl::OkStatus();
      }
    }
    return NoMethod(m);
  }

 private:
  bool Full() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return maxsize_ > 0 && items_.size() >= static_cast<uint64_t>(maxsize_);
  }
  absl::Status Unready(CallContext& context, absl::string_view m, absl::string_view what) const {
    const std::string message = absl::StrCat(type_name(), ".", m, ": the queue is ", what);
    // A call that could not wait at all is queue.Full / queue.Empty; one that waited timed out.
    if (context.timeout_ns() == 0) {
      return absl::UnavailableError(message);
    }
    return absl::DeadlineExceededError(message);
  }

  const int64_t maxsize_;
  const bool joinable_;
  std::deque<Stored> items_ ABSL_GUARDED_BY(mu_);
  uint64_t unfinished_ ABSL_GUARDED_BY(mu_) = 0;
};

// A single i64 argument of a factory (parties, a semaphore's value, a queue's maxsize).
absl::StatusOr<int64_t> FactoryI64(absl::string_view type_id, absl::Span<const std::string> args,
                                   int64_t min) {
  if (absl::Status s = CheckArgCount(type_id, "create", args, 1); !s.ok()) return s;
  absl::StatusOr<int64_t> v = DecodeI64(type_id, "create", args[0]);
  if (!v.ok()) return v.status();
  if (*v < min) {
    return absl::InvalidArgumentError(
        absl::StrCat(type_id, ": the argument must be at least ", min, ", not ", *v));
  }
  return v;
}

}  // namespace

absl::Status AddBuiltinSync(TypeTable& table) {
  using Made = absl::StatusOr<std::shared_ptr<ServedObject>>;
  absl::Status s;
  for (const bool recursive : {false, true}) {
    const char* id = recursive ? "RLock" : "Lock";
    s.Update(table.Add(id,
                       [recursive, id](uint64_t type, absl::string_view name,
                                       absl::Span<const std::string> args) -> Made {
                         if (absl::Status s = CheckArgCount(id, "create", args, 0); !s.ok())
                           return s;
                         return std::make_shared<ServedLock>(type, std::string(name), recursive);
                       }));
  }
  for (const bool bounded : {false, true}) {
    const char* id = bounded ? "BoundedSemaphore" : "Semaphore";
    s.Update(table.Add(id,
                       [bounded, id](uint64_t type, absl::string_view name,
                                     absl::Span<const std::string> args) -> Made {
                         absl::StatusOr<int64_t> value = FactoryI64(id, args, 0);
                         if (!value.ok()) return value.status();
                         return std::make_shared<ServedSemaphore>(type, std::string(name), *value,
                                                                  bounded);
                       }));
  }
  for (const bool joinable : {false, true}) {
    const char* id = joinable ? "JoinableQueue" : "Queue";
    s.Update(table.Add(id,
                       [joinable, id](uint64_t type, absl::string_view name,
                                      absl::Span<const std::string> args) -> Made {
                         absl::StatusOr<int64_t> maxsize = FactoryI64(id, args, 0);
                         if (!maxsize.ok()) return maxsize.status();
                         return std::make_shared<ServedQueue>(type, std::string(name), *maxsize,
                                                              joinable);
                       }));
  }
  s.Update(table.Add(
      "Event",
      [](uint64_t type, absl::string_view name, absl::Span<const std::string> args) -> Made {
        if (absl::Status s = CheckArgCount("Event", "create", args, 0); !s.ok()) return s;
        return std::make_shared<ServedEvent>(type, std::string(name));
      }));
  s.Update(table.Add(
      "Condition",
      [](uint64_t type, absl::string_view name, absl::Span<const std::string> args) -> Made {
        if (absl::Status s = CheckArgCount("Condition", "create", args, 0); !s.ok()) return s;
        return std::make_shared<ServedCondition>(type, std::string(name));
      }));
  s.Update(table.Add(
      "Barrier",
      [](uint64_t type, absl::string_view name, absl::Span<const std::string> args) -> Made {
        absl::StatusOr<int64_t> parties = FactoryI64("Barrier", args, 1);
        if (!parties.ok()) return parties.status();
        return std::make_shared<ServedBarrier>(type, std::string(name), *parties);
      }));
  return s;
}

}  // namespace mp::managers_internal
