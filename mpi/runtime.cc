// Copyright 2026 The mp Authors.

#include "mpi/runtime.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/pid.h"
#include "start_methods/start_method.h"

namespace mp::mpi_internal {
namespace {

// Before main, while the program has one thread: setenv is not safe once threads run.
const bool environment_prepared = [] {
  setenv("OMPI_MCA_orte_enable_recovery", "1", /*overwrite=*/1);
  setenv("OMPI_MCA_pml", "ob1", /*overwrite=*/0);
  setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", /*overwrite=*/0);
  // PMIx's shared-memory store of job data ("gds ds12/ds21") fails with "No permission" on lock
  // files that an earlier or a concurrent Open MPI session left in /tmp (seen under Bazel, whose
  // tests share /tmp); the hash store keeps that data in each process.
  setenv("PMIX_MCA_gds", "hash", /*overwrite=*/0);
  return true;
}();

enum class State { kNone, kInitialized, kFinalized };

struct Runtime {
  std::mutex init_mu;  // Initialize, one at a time
  bool tried = false;
  absl::Status init_status;
  pid_t init_pid = 0;  // the process that initialized MPI (a fork child is another)

  std::shared_timed_mutex mu;  // shared: a Hold; exclusive: MPI_Finalize
  std::atomic<State> state{State::kNone};
};
Runtime& R() {
  static Runtime* const r = new Runtime;
  return *r;
}

// MPI's descriptors, closed in fork children. Written once before the atfork handler is
// registered, read only by it.
constexpr int kMaxMpiFds = 64;
int mpi_fds[kMaxMpiFds];
std::atomic<int> mpi_fd_count{0};

void CloseMpiFdsInForkChild() {
  const int n = mpi_fd_count.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) close(mpi_fds[i]);
}

std::vector<int> OpenFds() {
  std::vector<int> out;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return out;
  const int own = dirfd(dir);
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd != own) out.push_back(fd);
  }
  closedir(dir);
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status CheckRootConsent() {
  if (geteuid() != 0) return absl::OkStatus();
  auto set = [](const char* name) {
    const char* v = getenv(name);
    return v != nullptr && std::strcmp(v, "1") == 0;
  };
  if (set("OMPI_ALLOW_RUN_AS_ROOT") && set("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM")) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      "mp: the mpi context runs Open MPI, which refuses to run as root (it would abort this "
      "program) unless OMPI_ALLOW_RUN_AS_ROOT=1 and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 are set in "
      "the environment: set both, or run as another user");
}

absl::Status InitializeLocked(Runtime& r) {
  if (absl::Status s = CheckRootConsent(); !s.ok()) return s;
  int already = 0;
  MPI_Initialized(&already);
  if (already) {
    return absl::FailedPreconditionError(
        "mp: MPI was initialized outside mp; the mpi context must be the one to call MPI_Init "
        "(drop the program's own MPI_Init, or do not use the mpi context)");
  }
  const std::vector<int> before = OpenFds();
  int provided = 0;
  int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
  if (rc != MPI_SUCCESS) return MpiStatus(rc, "MPI_Init_thread");
  r.state.store(State::kInitialized, std::memory_order_release);
  MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  const std::vector<int> after = OpenFds();
  int n = 0;
  for (int fd : after) {
    if (std::binary_search(before.begin(), before.end(), fd)) continue;
    const int flags = fcntl(fd, F_GETFD);
    if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    if (n < kMaxMpiFds) mpi_fds[n++] = fd;
  }
  mpi_fd_count.store(n, std::memory_order_release);
  pthread_atfork(nullptr, nullptr, &CloseMpiFdsInForkChild);
  if (provided < MPI_THREAD_MULTIPLE) {
    return absl::FailedPreconditionError(
        absl::StrCat("mp: this Open MPI gives thread level ", provided, ", the mpi context needs ",
                     MPI_THREAD_MULTIPLE, " (MPI_THREAD_MULTIPLE)"));
  }
  // A parent finalizes at its exit; an mpi child does it itself after reporting its exit code.
  MPI_Comm parent = MPI_COMM_NULL;
  MPI_Comm_get_parent(&parent);
  if (parent == MPI_COMM_NULL) process_internal::AtExitAfterChildren([] { Finalize(); });
  return absl::OkStatus();
}

}  // namespace

absl::Status Initialize() {
  Runtime& r = R();
  std::lock_guard<std::mutex> lock(r.init_mu);
  if (r.tried) {
    if (r.init_pid != CurrentPid()) {
      return absl::FailedPreconditionError(
          "mp: this process is a fork child of one that started MPI, and MPI does not survive "
          "fork: start mpi processes from the process that first used the mpi context");
    }
    return r.init_status;
  }
  r.tried = true;
  r.init_pid = CurrentPid();
  r.init_status = InitializeLocked(r);
  return r.init_status;
}

// Holds this thread has: a nested Take (a failure path inside a held section) does not lock the
// shared mutex twice, which std::shared_timed_mutex does not allow.
static thread_local int holds_on_this_thread = 0;

absl::StatusOr<Hold> Hold::Take() {
  Runtime& r = R();
  if (holds_on_this_thread > 0) {
    ++holds_on_this_thread;
    return Hold();
  }
  r.mu.lock_shared();
  if (r.state.load(std::memory_order_acquire) != State::kInitialized ||
      r.init_pid != CurrentPid()) {
    r.mu.unlock_shared();
    return absl::FailedPreconditionError("mp: MPI is not running in this process");
  }
  holds_on_this_thread = 1;
  return Hold();
}

Hold::~Hold() {
  if (held_ && --holds_on_this_thread == 0) R().mu.unlock_shared();
}

void Finalize() {
  Runtime& r = R();
  if (r.state.load(std::memory_order_acquire) != State::kInitialized) return;
  if (r.init_pid != CurrentPid()) return;
  if (!r.mu.try_lock_for(std::chrono::seconds(1))) return;
  if (r.state.load(std::memory_order_acquire) == State::kInitialized) {
    r.state.store(State::kFinalized, std::memory_order_release);
    MPI_Finalize();
  }
  r.mu.unlock();
}

absl::Status MpiStatus(int rc, absl::string_view what) {
  if (rc == MPI_SUCCESS) return absl::OkStatus();
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
  return absl::InternalError(absl::StrCat("mp: ", what, " failed: MPI error ", rc, " (",
                                          absl::string_view(text, std::max(len, 0)), ")"));
}

namespace {

// Calls `ready` until it is true (OK) or fails, sleeping from 20 us growing to 2 ms between calls
// and calling `alive` (its error ends the wait); kDeadlineExceeded naming `what` at the deadline.
absl::Status PollWithBackoff(Deadline deadline, absl::string_view what,
                             absl::FunctionRef<absl::Status()> alive,
                             absl::FunctionRef<absl::StatusOr<bool>()> ready) {
  absl::Duration pause = absl::Microseconds(20);
  for (;;) {
    absl::StatusOr<bool> done = ready();
    if (!done.ok()) return done.status();
    if (*done) return absl::OkStatus();
    if (absl::Status s = alive(); !s.ok()) return s;
    if (deadline.Expired()) {
      return absl::DeadlineExceededError(absl::StrCat("mp: ", what, " timed out"));
    }
    absl::SleepFor(std::min(pause, deadline.Remaining()));
    pause = std::min(pause * 2, absl::Milliseconds(2));
  }
}

}  // namespace

absl::Status WaitRequest(MPI_Request* request, Deadline deadline, absl::string_view what,
                         MPI_Status* status, absl::FunctionRef<absl::Status()> alive) {
  MPI_Status local;
  return PollWithBackoff(deadline, what, alive, [&]() -> absl::StatusOr<bool> {
    int done = 0;
    if (int rc = MPI_Test(request, &done, status != nullptr ? status : &local); rc != MPI_SUCCESS) {
      return MpiStatus(rc, what);
    }
    return done != 0;
  });
}

absl::Status WaitRequest(MPI_Request* request, Deadline deadline, absl::string_view what,
                         MPI_Status* status) {
  return WaitRequest(request, deadline, what, status, [] { return absl::OkStatus(); });
}

void CancelRequest(MPI_Request* request) {
  if (*request == MPI_REQUEST_NULL) return;
  MPI_Cancel(request);
  // A cancelled receive completes at once; a send Open MPI cannot cancel is let go.
  int done = 0;
  MPI_Test(request, &done, MPI_STATUS_IGNORE);
  if (!done && *request != MPI_REQUEST_NULL) MPI_Request_free(request);
}

absl::Status SendBytes(MPI_Comm comm, int tag, absl::string_view bytes, Deadline deadline,
                       absl::string_view what) {
  return SendBytes(comm, tag, bytes, deadline, what, [] { return absl::OkStatus(); });
}

absl::Status SendBytes(MPI_Comm comm, int tag, absl::string_view bytes, Deadline deadline,
                       absl::string_view what, absl::FunctionRef<absl::Status()> alive) {
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp: ", what, " of ", bytes.size(), " bytes is more than MPI can send"));
  }
  // A message past the eager size is read from its buffer only when the receiver matches it, which
  // may be after a failed wait: such a send goes from a copy that a failed wait leaves to MPI.
  constexpr size_t kEagerBytes = 4096;
  std::unique_ptr<std::string> copy;
  const char* data = bytes.data();
  if (bytes.size() > kEagerBytes) {
    copy = std::make_unique<std::string>(bytes);
    data = copy->data();
  }
  MPI_Request request = MPI_REQUEST_NULL;
  if (int rc = MPI_Isend(data, static_cast<int>(bytes.size()), MPI_BYTE, 0, tag, comm, &request);
      rc != MPI_SUCCESS) {
    return MpiStatus(rc, what);
  }
  absl::Status s = WaitRequest(&request, deadline, what, nullptr, alive);
  if (!s.ok()) {
    CancelRequest(&request);
    (void)copy.release();  // MPI may still read it (a leak bounded by the failed large sends)
  }
  return s;
}

absl::StatusOr<std::string> ReceiveBytes(MPI_Comm comm, int tag, size_t max_bytes,
                                         Deadline deadline, absl::string_view what,
                                         absl::FunctionRef<absl::Status()> alive) {
  MPI_Status status;
  if (absl::Status s = PollWithBackoff(deadline, what, alive,
                                       [&]() -> absl::StatusOr<bool> {
                                         int flag = 0;
                                         if (int rc = MPI_Iprobe(0, tag, comm, &flag, &status);
                                             rc != MPI_SUCCESS) {
                                           return MpiStatus(rc, what);
                                         }
                                         return flag != 0;
                                       });
      !s.ok()) {
    return s;
  }
  int count = 0;
  if (int rc = MPI_Get_count(&status, MPI_BYTE, &count); rc != MPI_SUCCESS) {
    return MpiStatus(rc, what);
  }
  if (count < 0 || static_cast<size_t>(count) > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("mp: ", what, " announces ", count,
                                                   " bytes; at most ", max_bytes, " are accepted"));
  }
  std::string out(static_cast<size_t>(count), '\0');
  // The message is there (probed), so this receive completes without waiting on the peer.
  if (int rc = MPI_Recv(out.data(), count, MPI_BYTE, 0, tag, comm, MPI_STATUS_IGNORE);
      rc != MPI_SUCCESS) {
    return MpiStatus(rc, what);
  }
  return out;
}

bool ReadableNow(int fd) {
  absl::StatusOr<short> r = PollUntil(fd, POLLIN, Deadline::After(absl::ZeroDuration()));
  return !r.ok() || *r != 0;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

}  // namespace mp::mpi_internal
