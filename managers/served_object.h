// Copyright 2026 The mp Authors.
//
// managers/served_object.h — what a manager's server holds: objects that answer method calls
// whose arguments and results are encoded values (managers/wire.h), and the table of typeids the
// server can make objects of. Internal to managers/.

#ifndef MP_MANAGERS_SERVED_OBJECT_H_
#define MP_MANAGERS_SERVED_OBJECT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/deadline.h"

namespace mp::managers_internal {

class ServedObject;

// A reference the server took for an object stored inside another (see Request::held_args): the
// object lives while the HeldRef does.
class HeldRef {
 public:
  virtual ~HeldRef() = default;
  virtual uint64_t id() const = 0;
};

// What a method call knows of its caller and its server.
class CallContext {
 public:
  virtual ~CallContext() = default;
  // The caller's session (a number the server gave it) and thread (Request::thread): who owns an
  // RLock or a Lock acquired by this call.
  virtual uint64_t session() const = 0;
  // The caller's process id as its hello said (for messages only: it is not checked).
  virtual uint32_t pid() const = 0;
  virtual uint64_t thread() const = 0;
  // The bound of a blocking call (Request::timeout_ns: 0 must not wait, negative has none).
  virtual Deadline deadline() const = 0;
  virtual int64_t timeout_ns() const = 0;
  // Whether the caller has gone (its connection hung up) while the call waits: a blocking method
  // asks between slices of its wait and gives up, so that nothing is acquired for a dead client.
  virtual bool CallerGone() = 0;
  // Puts `object` into the server's table with one reference held by the caller's session and
  // returns its id (for a method that returns a new shared object: CPython's method_to_typeid).
  virtual uint64_t Adopt(std::shared_ptr<ServedObject> object) = 0;
  // The reference taken for argument `i` when the caller marked it as a proxy to hold
  // (Request::held_args); null for any other argument.
  virtual std::shared_ptr<HeldRef> HeldArg(size_t i) = 0;
  // Result `index` is a stored proxy of `held`'s object: gives the caller's session a reference
  // to it (Reply::given).
  virtual void Give(size_t index, const HeldRef& held) = 0;
};

class ServedObject {
 public:
  virtual ~ServedObject() = default;
  // The fingerprint a caller must name (Request::type) and the type's name for messages.
  virtual uint64_t type() const = 0;
  virtual const std::string& type_name() const = 0;
  // Runs `method` with `args`, appending the encoded results to `results`. Any failure is a status
  // naming the type and the method; nothing a caller sends can crash the server.
  virtual absl::Status Call(CallContext& context, absl::string_view method, uint64_t signature,
                            absl::Span<const std::string> args,
                            std::vector<std::string>& results) = 0;
  // The session `session` has ended (its process exited or died): release what it held (the
  // lock it acquired). Called with no server lock held.
  virtual void SessionEnded(uint64_t /*session*/) {}
  // Whether SessionEnded does anything (the server calls it only on those that say so).
  virtual bool WatchesSessions() const { return false; }
  // The server is about to end (shutdown, or the end of the process that started it): release
  // what must not outlive it (a SharedMemoryManager's segments).
  virtual void ServerEnding() {}
};

// How a server makes an object of one typeid: from the Request's type and arguments.
using Factory = std::function<absl::StatusOr<std::shared_ptr<ServedObject>>(
    uint64_t type, absl::string_view type_name, absl::Span<const std::string> args)>;

// The typeids a server can make. Filled before the server starts, read-only afterwards.
class TypeTable {
 public:
  // kAlreadyExists if `type_id` is already in the table.
  absl::Status Add(std::string type_id, Factory factory);
  const Factory* Find(absl::string_view type_id) const;
  std::vector<std::string> Names() const;

 private:
  absl::flat_hash_map<std::string, Factory> factories_;
};

}  // namespace mp::managers_internal

#endif  // MP_MANAGERS_SERVED_OBJECT_H_
