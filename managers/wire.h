// Copyright 2026 The mp Authors.
//
// managers/wire.h — the manager protocol: what a client and a manager's server say to each other
// (internal to managers/; stated once, here).
//
// A client reaches a server through a Listener (listener/listener.h: a Unix socket for a local
// manager, TCP for a remote one; the authkey challenge first). On every new connection the client
// then sends a Hello and the server answers a HelloReply:
//   Hello       {version, session, pid, shared_memory}
//   HelloReply  {status, shared_memory, max_message_size}
// `session` names the client process (16 random bytes, new in every process, fork children
// included): the references a process holds belong to its session, and when the last connection
// of a session closes (the client exited or died) the server drops what the session still held.
// With `shared_memory` asked for on a Unix socket, the server answers shared_memory = true and
// sends, as the next message, one end of a new shared-memory Pipe (channels/connection.h); both
// sides then talk over that Pipe and close the socket. Over TCP the socket stays. A client asks
// for no shared memory on its anchor: the first connection it opens, which it never uses for a
// call, so that its session lasts as long as the process, whatever happens to the connections
// its calls use (one may be closed for a request too large, a reply too slow).
//
// After the hello, the client sends Requests and the server answers each with one Reply, in order,
// one at a time per connection (a client with several calls in flight uses several connections):
//   Request {op, id, type, method, signature, thread, timeout_ns, args, held_args}
//   Reply   {status, results, given}
//   op         kCall: call `method` of object `id`; kCreate: make a new object of typeid `method`
//              with `args` (the reply's results[0] is the new object's Token, whose reference the
//              caller's session holds); kIncref / kDecref: one reference of the caller's session
//              to `id` more or less; kShutdown: stop the server (it replies, then exits);
//              kObjectCount: how many objects the server holds (results[0]: a uint64_t).
//   type       the fingerprint of the type the caller believes `id` has (Token::type): a call whose
//              type differs from the object's is kInvalidArgument naming both.
//   signature  for methods of registered C++ classes, the fingerprint of the method's argument
//              and result types as the caller compiled them (0 for the built-in types, whose
//              arguments are typed by `type` alone); a mismatch is kInvalidArgument naming both.
//   thread     the calling thread of the client (gettid), the owner of an RLock it acquires.
//   timeout_ns how long a blocking method (Queue.Get, Lock.Acquire, Event.Wait...) may wait on the
//              server; negative: no bound.
//   args / results  each value encoded by its Codec (serialize/codec.h), one string per value, so
//              a built-in container keeps its keys and values as bytes and needs no C++ type of
//              its own in the server.
//   held_args  the indices of the arguments that are proxies (their Token's encoding) of this
//              server's objects, which the object that stores them must keep alive (a Dict value
//              that is a List proxy): the server takes a reference for each while it is stored.
//   given      the indices of the results that are such stored proxies, for each of which the
//              server gave the caller's session a reference: the proxy the caller decodes from it
//              takes that reference over instead of asking for one (no window in which the last
//              reference could go).
// Every message is a typed Connection frame (serialize/frame.h), so a message of another type is
// refused by its fingerprint before it is decoded, and decoding checks every length. A server
// refuses any message above its max_message_size (ManagerOptions) and closes that connection; a
// malformed request on a connection that is still in sync gets a Reply with kInvalidArgument and
// the connection goes on.

#ifndef MP_MANAGERS_WIRE_H_
#define MP_MANAGERS_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "serialize/codec.h"
#include "serialize/status.h"

namespace mp::managers_internal {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kSessionBytes = 16;

enum class Op : uint8_t {
  kCall = 1,
  kCreate = 2,
  kIncref = 3,
  kDecref = 4,
  kShutdown = 5,
  kObjectCount = 6,
};
inline constexpr uint8_t kMaxOp = 6;

struct Hello {
  uint32_t version = kProtocolVersion;
  std::string session;
  uint32_t pid = 0;  // the client's process id, for messages ("the holder, process N, died")
  bool shared_memory = false;
};
MP_FIELDS(Hello, version, session, pid, shared_memory);

struct HelloReply {
  absl::Status status;
  bool shared_memory = false;
  uint64_t max_message_size = 0;  // the server's limit, which the client then keeps to
};
MP_FIELDS(HelloReply, status, shared_memory, max_message_size);

struct Request {
  uint8_t op = 0;
  uint64_t id = 0;
  uint64_t type = 0;
  std::string method;
  uint64_t signature = 0;
  uint64_t thread = 0;
  int64_t timeout_ns = -1;
  std::vector<std::string> args;
  std::vector<uint32_t> held_args;
};
MP_FIELDS(Request, op, id, type, method, signature, thread, timeout_ns, args, held_args);

struct Reply {
  absl::Status status;
  std::vector<std::string> results;
  std::vector<uint32_t> given;
};
MP_FIELDS(Reply, status, results, given);

// ---- The fast path of a call: the same bytes, without building a Request or a Reply ----------

// A Request's fields other than its arguments, by reference.
struct RequestFields {
  uint8_t op = 0;
  uint64_t id = 0;
  uint64_t type = 0;
  absl::string_view method;
  uint64_t signature = 0;
  uint64_t thread = 0;
  int64_t timeout_ns = -1;
  absl::Span<const uint32_t> held_args;
};

// A Request's arguments as they are written: count() values whose encodings (each a varint
// length and its bytes, as a std::string's Codec writes it) take size() bytes in all, which
// Write writes.
class RequestArgs {
 public:
  virtual ~RequestArgs() = default;
  virtual size_t count() const = 0;
  virtual size_t size() const = 0;
  virtual void Write(ByteWriter& w) const = 0;
};

// Arguments already encoded, one string per value.
class StringArgs final : public RequestArgs {
 public:
  explicit StringArgs(const std::vector<std::string>& args);
  size_t count() const override { return args_.size(); }
  size_t size() const override { return size_; }
  void Write(ByteWriter& w) const override;

 private:
  const std::vector<std::string>& args_;
  size_t size_ = 0;
};

// Writes into `out` (resized to fit) the frame that EncodeFrame(Request{...}) gives for these
// fields and arguments. kInvalidArgument above the 4 GiB frame limit.
absl::Status EncodeRequestFrame(const RequestFields& fields, const RequestArgs& args,
                                std::string& out);

// Writes into `out` (resized to fit) the frame EncodeFrame(reply) gives. kInvalidArgument above
// the 4 GiB frame limit.
absl::Status EncodeReplyFrame(const Reply& reply, std::string& out);

// A Reply decoded in place: its results are views of the frame's bytes, valid while those are.
struct ReplyView {
  absl::Status status;
  absl::InlinedVector<absl::string_view, 4> results;
  absl::InlinedVector<uint32_t, 2> given;
};

// The view's results and given, copied (into a Reply's or a proxy's CallResults' members).
void CopyResults(const ReplyView& view, std::vector<std::string>& results,
                 std::vector<uint32_t>& given);

// Decode a Request / Reply frame: what Connection::Recv of that type accepts, with its checks and
// statuses (kInvalidArgument for a frame of another type or malformed bytes), and nothing else.
// The Request is decoded into `out`'s members, reusing their storage.
absl::Status DecodeRequestFrame(absl::Span<const uint8_t> frame, size_t max_payload_size,
                                Request& out);
absl::Status DecodeReplyFrame(absl::Span<const uint8_t> frame, size_t max_payload_size,
                              ReplyView& out);

}  // namespace mp::managers_internal

#endif  // MP_MANAGERS_WIRE_H_
