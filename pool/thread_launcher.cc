// Copyright 2026 The mp Authors.

#include "pool/thread_launcher.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/exception.h"
#include "channels/connection.h"
#include "pool/slot.h"
#include "pool/worker_loop.h"

namespace mp {
namespace pool_internal {
namespace {

// What the worker thread and its LaunchedWorker share.
struct ThreadState {
  int exit_code = 0;  // written by the thread before it signals `done`, read after joining it
  int done = -1;      // eventfd, readable once the thread ended
};

void WorkerThread(std::shared_ptr<ThreadState> state, Connection conn, ShmHandle slots, int index,
                  WorkerInitializer init, std::string name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  absl::Status status;
  try {
    absl::StatusOr<std::unique_ptr<ConnectionWorkerTransport>> transport =
        ConnectionWorkerTransport::Create(std::move(conn), false);
    if (transport.ok()) {
      LocalSlot slot(static_cast<Slot*>(slots.segment.At(slots.offset)) + index);
      status = RunWorkerLoop(**transport, slot, -1, std::move(init));
    } else {
      status = transport.status();
    }
  } catch (...) {
    status = absl::UnknownError(
        absl::StrCat("ThreadPool: worker ", name, " threw ", CurrentExceptionDescription()));
  }
  if (!status.ok()) {
    std::fprintf(stderr, "mp: ThreadPool worker %s ended: %s\n", name.c_str(),
                 status.ToString().c_str());
    state->exit_code = 1;
  }
  const uint64_t one = 1;
  (void)!write(state->done, &one, sizeof(one));
}

class ThreadWorker : public LaunchedWorker {
 public:
  ThreadWorker(std::shared_ptr<ThreadState> state, std::thread thread,
               std::unique_ptr<ConnectionWorkerTransport> transport, int tid, int kill_fd)
      : state_(std::move(state)),
        thread_(std::move(thread)),
        transport_(std::move(transport)),
        tid_(tid),
        kill_fd_(kill_fd) {}
  ~ThreadWorker() override {
    if (thread_.joinable()) {
      Kill().IgnoreError();
      thread_.join();
    }
    close(kill_fd_);
    close(state_->done);
  }

  WorkerTransport& transport() override { return *transport_; }
  int pid() const override { return tid_; }
  int sentinel() const override { return state_->done; }
  // Ends both directions of the worker's socket (through a duplicate of its descriptor, which
  // stays valid whatever the thread closes): the loop sees the end at its next receive or send.
  absl::Status Kill() override {
    if (shutdown(kill_fd_, SHUT_RDWR) != 0 && errno != ENOTCONN) {
      return ErrnoStatus(errno, "ThreadPool: shutdown of a worker's socket");
    }
    return absl::OkStatus();
  }
  std::optional<int> Reap() override {
    if (thread_.joinable()) thread_.join();
    return state_->exit_code;
  }

 private:
  std::shared_ptr<ThreadState> state_;
  std::thread thread_;
  std::unique_ptr<ConnectionWorkerTransport> transport_;
  const int tid_;
  const int kill_fd_;
};

// The initializer for one worker thread: its own duplicates of the descriptors (the worker loop
// owns and closes what it is given), and never the in-memory form (which is for forked workers).
absl::StatusOr<WorkerInitializer> ThreadInitializer(const PoolInitializer& init) {
  WorkerInitializer w = ToWorkerInitializer(init);
  w.in_memory = nullptr;
  for (PassedFd& fd : w.fds) {
    const int dup = fcntl(fd.fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      const int err = errno;
      for (PassedFd& done : w.fds) {
        if (&done == &fd) break;
        close(done.fd);
      }
      return ErrnoStatus(err, "ThreadPool: dup of an initializer descriptor");
    }
    fd.fd = dup;
  }
  return w;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LaunchedWorker>> ThreadLauncher::Start(const WorkerSpec& spec) {
  absl::StatusOr<std::pair<Connection, Connection>> pipe = Pipe(true, ConnectionTransport::kSocket);
  if (!pipe.ok()) return pipe.status();
  absl::StatusOr<std::unique_ptr<ConnectionWorkerTransport>> transport =
      ConnectionWorkerTransport::Create(std::move(pipe->first), true);
  if (!transport.ok()) return transport.status();
  absl::StatusOr<WorkerInitializer> init = ThreadInitializer(spec.initializer);
  if (!init.ok()) return init.status();
  auto state = std::make_shared<ThreadState>();
  state->done = eventfd(0, EFD_CLOEXEC);
  if (state->done < 0) {
    const int err = errno;
    for (PassedFd& fd : init->fds) close(fd.fd);
    return ErrnoStatus(err, "ThreadPool: eventfd");
  }
  const int kill_fd = fcntl(pipe->second.fd(), F_DUPFD_CLOEXEC, 0);
  if (kill_fd < 0) {
    const int err = errno;
    close(state->done);
    for (PassedFd& fd : init->fds) close(fd.fd);
    return ErrnoStatus(err, "ThreadPool: dup of a worker's socket");
  }
  // The thread's id, known before Start returns (the engine reports it as the worker's pid).
  int tid_pipe[2];
  if (pipe2(tid_pipe, O_CLOEXEC) != 0) {
    const int err = errno;
    close(kill_fd);
    close(state->done);
    for (PassedFd& fd : init->fds) close(fd.fd);
    return ErrnoStatus(err, "ThreadPool: pipe2");
  }
  std::thread thread;
  try {
    thread = std::thread(
        [state, tid_out = tid_pipe[1]](Connection conn, ShmHandle slots, int index,
                                       WorkerInitializer init, std::string name) {
          const int tid = gettid();
          (void)!write(tid_out, &tid, sizeof(tid));
          close(tid_out);
          WorkerThread(state, std::move(conn), std::move(slots), index, std::move(init),
                       std::move(name));
        },
        std::move(pipe->second), spec.slots, spec.index, *std::move(init), spec.name);
  } catch (...) {
    close(tid_pipe[0]);
    close(tid_pipe[1]);
    close(kill_fd);
    close(state->done);
    return absl::ResourceExhaustedError(absl::StrCat(
        "ThreadPool: starting worker thread ", spec.name, ": ", CurrentExceptionDescription()));
  }
  int tid = 0;
  ssize_t n;
  do {
    n = read(tid_pipe[0], &tid, sizeof(tid));
  } while (n < 0 && errno == EINTR);
  close(tid_pipe[0]);
  return std::unique_ptr<LaunchedWorker>(new ThreadWorker(std::move(state), std::move(thread),
                                                          *std::move(transport),
                                                          n == sizeof(tid) ? tid : 0, kill_fd));
}

}  // namespace pool_internal
}  // namespace mp
