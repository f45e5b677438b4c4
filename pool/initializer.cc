// Copyright 2026 The mp Authors.

#include "pool/initializer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "serialize/frame.h"
#include "serialize/status.h"

namespace mp {
namespace pool_internal {

InitializerResources::~InitializerResources() {
  for (int fd : fds_) close(fd);
}

absl::StatusOr<PoolInitializer> MakeInitializer(const std::string& function, std::string args,
                                                const FdTable& table,
                                                std::function<absl::Status()> run_in_fork_child) {
  std::vector<int> dups;
  dups.reserve(table.size());
  for (int fd : table.fds()) {
    const int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      const int err = errno;
      for (int d : dups) close(d);
      return ErrnoStatus(err, absl::StrCat("MakePoolInitializer<", function,
                                           ">: duplicating descriptor ", fd, " of the arguments"));
    }
    dups.push_back(dup);
  }
  PoolInitializer init;
  init.function = function;
  init.args = std::move(args);
  init.resources = std::make_shared<const InitializerResources>(std::move(dups), table.fork_only(),
                                                                std::move(run_in_fork_child));
  return init;
}

WorkerInitializer ToWorkerInitializer(const PoolInitializer& init) {
  WorkerInitializer w;
  w.function = init.function;
  w.args = init.args;
  if (init.resources != nullptr) {
    for (int fd : init.resources->fds()) w.fds.push_back(PassedFd{fd});
    w.fork_only = init.resources->fork_only();
    // Only fork-domain objects need the in-memory arguments; otherwise a forked worker too decodes
    // the bytes against the duplicated descriptors (the caller may have closed its own).
    if (!w.fork_only.empty()) w.in_memory = init.resources;
  }
  return w;
}

absl::Status InitializerStatus(const std::string& result) {
  if (result.empty()) return absl::OkStatus();
  ByteReader r(AsBytes(result));
  absl::Status outcome;
  absl::Span<const uint8_t> payload;
  if (absl::Status s = ReadResult(r, &outcome, &payload); !s.ok()) return s;
  return outcome;
}

absl::Status RunInitializer(WorkerInitializer& init) {
  if (init.in_memory != nullptr) return init.in_memory->RunInForkChild();
  std::vector<int> fds;
  fds.reserve(init.fds.size());
  for (PassedFd& fd : init.fds) fds.push_back(std::exchange(fd.fd, -1));
  FdTable table(std::move(fds));  // closes whatever the arguments did not take
  TaskFn fn = FindTask(init.function);
  if (fn == nullptr) {
    return absl::NotFoundError(absl::StrCat("no registered function \"", init.function, "\""));
  }
  std::string out;
  {
    ScopedFdTable scope(&table);
    fn(AsBytes(init.args), out);  // catches what the initializer throws
  }
  return InitializerStatus(out);
}

}  // namespace pool_internal

void Codec<pool_internal::WorkerInitializer>::Encode(const pool_internal::WorkerInitializer& v,
                                                     ByteWriter& w) {
  if (FdTable* table = ScopedFdTable::Current()) {
    for (const std::string& kind : v.fork_only) table->NoteForkOnly(kind);
  }
  Codec<std::string>::Encode(v.function, w);
  Codec<std::string>::Encode(v.args, w);
  Codec<std::vector<PassedFd>>::Encode(v.fds, w);
}

absl::Status Codec<pool_internal::WorkerInitializer>::Decode(
    ByteReader& r, pool_internal::WorkerInitializer& out) {
  if (absl::Status s = Codec<std::string>::Decode(r, out.function); !s.ok()) return s;
  if (absl::Status s = Codec<std::string>::Decode(r, out.args); !s.ok()) return s;
  return Codec<std::vector<PassedFd>>::Decode(r, out.fds);
}

}  // namespace mp
