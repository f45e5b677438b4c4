// Copyright 2026 The mp Authors.
//
// managers/builtins.h — the server side of the built-in shared types of a Manager (CPython's
// SyncManager): dict, list, Namespace, Value, Array (builtins.cc), and Queue, JoinableQueue,
// Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier (builtin_sync.cc).
// Internal to managers/.
//
// They hold encoded values (managers/wire.h: one string per value), never C++ objects, so a server
// serves a Dict<K, V> of any K and V, also one built by another program: the proxies
// (managers/collections.h) encode and decode, and the object's type
// fingerprint, fixed by the proxy that created it, keeps every caller to the same K and V. Two
// keys are the same key when their encodings are equal: for every Codec mp ships that is equality
// of the values, except floating point (0.0 and -0.0 are two keys, a NaN key can be found again).
//
// Methods and their arguments (each argument and result one encoded value; i64 indices count from
// the end when negative, as Python's do):
//   dict       getitem(k)->v  setitem(k, v)  delitem(k)  contains(k)->bool  len->u64
//              items->k,v,...  keys->k...  values->v...  update(k, v, ...)  pop(k)->v
//              setdefault(k, v)->v  popitem->k,v  clear
//              (a missing key is kNotFound, Python's KeyError)
//   list       append(v)  extend(v...)  insert(i64, v)  getitem(i64)->v  setitem(i64, v)
//              delitem(i64)  pop(i64)->v  len->u64  index(v)->i64  count(v)->u64  remove(v)
//              slice(i64 start, i64 stop)->v...  clear  reverse
//              (an index out of range is kOutOfRange, IndexError; a value not in the list is
//              kNotFound, ValueError)
//   Namespace  getattr(name)->u64 type, v  setattr(name, u64 type, v)  delattr(name)
//              names->str...   (a name argument is its raw bytes; a missing attribute is
//              kNotFound, AttributeError)
//   Value      get->v  set(v)
//   Array      getitem(i64)->v  setitem(i64, v)  len->u64  slice(i64, i64)->v...
//              (made with its elements as arguments)
// The blocking methods wait at most the request's timeout (managers/wire.h; 0: not at all):
//   Lock/RLock acquire->bool acquired, bool holder_died, u32 dead holder's pid  release
//              locked->bool
//              (an RLock is re-entrant and belongs to the thread that acquired it; release of a
//              lock not held, or an RLock held by another thread, is kFailedPrecondition)
//   Semaphore, BoundedSemaphore (made with an i64 value)  acquire->bool  release  get_value->i64
//   Event      is_set->bool  set  clear  wait->bool
//   Condition  acquire, release as RLock's; wait->bool notified, bool holder_died, u32 pid;
//              notify(i64 n);
//              notify_all (all but acquire need the caller to hold it: kFailedPrecondition)
//   Barrier (made with i64 parties)  wait->i64 index  abort  reset  parties->i64
//              n_waiting->i64  broken->bool   (broken: kAborted; the timed-out waiter
//              kDeadlineExceeded)
//   Queue, JoinableQueue (made with i64 maxsize, 0 unbounded)  put(v)  get->v  qsize->u64
//              empty->bool  full->bool  task_done  join   (full / empty: kUnavailable without a
//              wait, kDeadlineExceeded after one; too many task_done: kFailedPrecondition)
// A blocked call whose client goes away ends with kCancelled (nobody reads it).
// A stored value that is a proxy of this server's objects (a Dict value that is a ListProxy; the
// client marks it, Request::held_args) keeps its object alive while it is stored: in a dict,
// list, Namespace, Value or Queue.

#ifndef MP_MANAGERS_BUILTINS_H_
#define MP_MANAGERS_BUILTINS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "managers/served_object.h"

namespace mp::managers_internal {

// Adds every built-in typeid to `table`.
absl::Status AddBuiltins(TypeTable& table);
absl::Status AddBuiltinCollections(TypeTable& table);
absl::Status AddBuiltinSync(TypeTable& table);
absl::Status AddSharedMemoryTracker(TypeTable& table);  // shared_memory_tracker.cc

// A value a container stores: its bytes and, for a proxy of this server's objects that the
// caller asked to be held (Request::held_args), the reference that keeps its object alive while
// it is stored.
struct Stored {
  std::string bytes;
  std::shared_ptr<HeldRef> held;
};
// Argument i as a value to store.
Stored StoredArg(CallContext& context, absl::Span<const std::string> args, size_t i);
// Appends a stored value to a call's results; for a held proxy the caller's session is given a
// reference (Reply::given).
void Emit(CallContext& context, std::vector<std::string>& out, const Stored& value);

// kInvalidArgument unless `args` has `n` values: "<type>.<method> takes n arguments, the call
// sent m".
absl::Status CheckArgCount(absl::string_view type_name, absl::string_view method,
                           absl::Span<const std::string> args, size_t n);
// kInvalidArgument naming the method: "<type> has no method <method>".
absl::Status NoSuchMethod(absl::string_view type_name, absl::string_view method);
// Decodes a fixed-width little-endian integer argument (an index, a count, a timeout).
absl::StatusOr<int64_t> DecodeI64(absl::string_view type_name, absl::string_view method,
                                  const std::string& arg);
std::string EncodeU64(uint64_t v);
std::string EncodeI64(int64_t v);
std::string EncodeBool(bool v);

}  // namespace mp::managers_internal

#endif  // MP_MANAGERS_BUILTINS_H_
