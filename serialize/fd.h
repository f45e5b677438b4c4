// Copyright 2026 The mp Authors.
//
// serialize/fd.h — file descriptors that travel inside messages.
//
// A `mp::PassedFd` is a value with a Codec, so it can be a member of any encodable type (a Lock's
// shared segment, a Connection's socket, a Queue's ring). Its bytes are only an index: the
// descriptor itself travels beside the bytes, in whatever way the transport carries descriptors
// (inherited across exec by a spawn launch, SCM_RIGHTS over a Unix socket for forkserver and
// Connection::Send). The transport makes an FdTable current while it encodes or decodes:
//
//   mp::FdTable table;
//   std::string bytes;
//   {
//     mp::ScopedFdTable scope(&table);
//     bytes = mp::Encode(args);          // each PassedFd appends its fd to `table`
//   }
//   send(bytes, table.fds());            // the transport moves the fds
//   ...
//   mp::FdTable received(fds_that_arrived);
//   mp::ScopedFdTable scope(&received);
//   auto args = mp::Decode<Args>(bytes); // each PassedFd takes its fd from `received`
//
// The table also collects the objects a message holds that only a forked child can use (see
// NoteForkOnly), so a start method or transport can refuse them by name before anything is sent.
//
// Without a current table (a transport that cannot carry descriptors, or plain mp::Encode) a
// PassedFd encodes as "absent" and decoding it fails with kFailedPrecondition, so an fd never
// silently turns into a number that means something else in the receiver. Transports that refuse
// descriptors check `table.size() == 0` after encoding and return their own error.
//
// Ownership: a PassedFd does not own its fd. The sender keeps its copy; the receiver gets a new
// descriptor (a dup or an SCM_RIGHTS copy) owned by the FdTable it was received into, which closes
// every descriptor nobody Release()d.
//
// Thread safety: the current table is per thread.

#ifndef MP_SERIALIZE_FD_H_
#define MP_SERIALIZE_FD_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "serialize/codec.h"

namespace mp {

struct PassedFd {
  int fd = -1;
  bool operator==(const PassedFd&) const = default;
};

class FdTable {
 public:
  // A table to encode into: starts empty, does not own what is added.
  FdTable() = default;
  // A table of received descriptors, owned by the table until taken with Take().
  explicit FdTable(std::vector<int> received);
  FdTable(FdTable&& other) noexcept;
  FdTable& operator=(FdTable&& other) noexcept;
  FdTable(const FdTable&) = delete;
  FdTable& operator=(const FdTable&) = delete;
  ~FdTable();

  // Encoding side: appends fd, returns its index (the same fd added twice gets one index).
  size_t Add(int fd);
  // Decoding side: the descriptor at `index`. Ownership moves to the caller; asking for an index
  // twice returns the same descriptor (it is one descriptor), owned by whoever took it first.
  absl::StatusOr<int> Take(size_t index);

  const std::vector<int>& fds() const { return fds_; }
  size_t size() const { return fds_.size(); }

  // Encoding side: records that the message holds an object that only a forked child can use (a
  // fork-domain Lock, Queue...: anonymous shared memory, no descriptor to pass). `kind` names it
  // ("Lock"). Each shareable object's Codec calls NoteForkOnly on the current table; a transport
  // that reaches processes other than forked children (spawn, forkserver, a socket to anyone)
  // refuses the message when fork_only() is not empty, naming the objects.
  void NoteForkOnly(std::string kind) { fork_only_.push_back(std::move(kind)); }
  const std::vector<std::string>& fork_only() const { return fork_only_; }

 private:
  std::vector<int> fds_;
  std::vector<std::string> fork_only_;
  std::vector<bool> owned_;  // received descriptors not yet taken
};

// Makes `table` current for this thread for the scope's lifetime (scopes nest).
class ScopedFdTable {
 public:
  explicit ScopedFdTable(FdTable* table);
  ~ScopedFdTable();
  ScopedFdTable(const ScopedFdTable&) = delete;
  ScopedFdTable& operator=(const ScopedFdTable&) = delete;

  static FdTable* Current();

 private:
  FdTable* previous_;
};

template <>
struct Codec<PassedFd> {
  static std::string Name() { return "fd"; }
  // Encoded as a little-endian u32 slot: index + 1 in the current table, or 0 when there is no
  // current table or fd < 0. Fixed width, so Size() does not depend on the table's state.
  static constexpr size_t kMinSize = 4;
  static size_t Size(const PassedFd&) { return 4; }
  static void Encode(const PassedFd& v, ByteWriter& w);
  static absl::Status Decode(ByteReader& r, PassedFd& out);
};

}  // namespace mp

#endif  // MP_SERIALIZE_FD_H_
