// Copyright 2026 The mp Authors.
//
// The raw limits of tools/bench's "Executor Submit+Result trivial task" rows: what one Submit+Result
// over the executor's transport cannot beat.
//
//   BM_RawShmPipeRequestResponse      the executor's transport today, mp's shared-memory Pipe (the
//                                     engine's worker connections): one request {task id, argument}
//                                     to a worker forked once outside the timed loop, which computes
//                                     x * x and sends the reply {task id, result}; the parent
//                                     receives it and checks the id and the result. One SendBytes
//                                     and one RecvBytesInto on each side, 16-byte messages, no pool
//                                     code, no threads.
//   BM_RawSocketpairRequestResponse   the same over a Unix stream socketpair with read(2) and
//                                     write(2) (20-byte messages with their length prefix): the
//                                     executor's transport before the shared-memory one, kept as
//                                     the row the socket transport is measured against.
//
// Placement as the executor rows' other sides: this process on the first CPU, the worker on the
// second (testing/pin.h), so every request and reply crosses cores. MP_BENCH_NO_PIN=1 turns it off.
//
//   bazel run -c opt //tools/bench:executor_limits_benchmark
//   bash tools/bench/run --only Executor     # beside mp and CPython

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"
#include "channels/connection.h"
#include "testing/pin.h"

namespace {

const bool kPinned = mp::testing::PinSelf(0);

// A request and a reply: a length prefix, as a framed transport has, then the task id and the
// argument (or the result).
struct Message {
  uint32_t length;
  uint64_t id;
  int64_t value;
} __attribute__((packed));
static_assert(sizeof(Message) == 20);

bool ReadMessage(int fd, Message& m) {
  char* p = reinterpret_cast<char*>(&m);
  for (size_t left = sizeof(m); left > 0;) {
    const ssize_t r = read(fd, p, left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    left -= static_cast<size_t>(r);
  }
  return m.length == sizeof(m) - sizeof(m.length);
}

bool WriteMessage(int fd, const Message& m) {
  const char* p = reinterpret_cast<const char*>(&m);
  for (size_t left = sizeof(m); left > 0;) {
    const ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    left -= static_cast<size_t>(w);
  }
  return true;
}

// The worker: answers requests until end of file (exit code 0) or a broken message (1).
int Serve(int fd) {
  mp::testing::PinSelf(1);
  Message m;
  while (ReadMessage(fd, m)) {
    m.value *= m.value;
    if (!WriteMessage(fd, m)) return 1;
  }
  return 0;
}

void BM_RawSocketpairRequestResponse(benchmark::State& state) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    state.SkipWithError(std::strerror(errno));
    return;
  }
  const pid_t worker = fork();
  if (worker == 0) {
    close(fds[0]);
    _exit(Serve(fds[1]));
  }
  close(fds[1]);
  if (worker < 0) {
    state.SkipWithError(std::strerror(errno));
    close(fds[0]);
    return;
  }
  const uint32_t length = sizeof(Message) - sizeof(uint32_t);
  uint64_t id = 0;
  for (auto _ : state) {
    const int64_t x = static_cast<int64_t>(id % 1000);
    Message reply;
    if (!WriteMessage(fds[0], {length, id, x}) || !ReadMessage(fds[0], reply)) {
      state.SkipWithError("the worker's socket broke");
      break;
    }
    if (reply.id != id || reply.value != x * x) {
      state.SkipWithError("the worker's reply is wrong");
      break;
    }
    ++id;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["pinned"] = kPinned;
  close(fds[0]);  // the worker reads end of file and exits
  int status = 0;
  while (waitpid(worker, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("the worker failed");
}
BENCHMARK(BM_RawSocketpairRequestResponse)->Unit(benchmark::kMicrosecond)->UseRealTime();

struct Payload {
  uint64_t id;
  int64_t value;
};

// The worker of BM_RawShmPipeRequestResponse: answers until end of file (0) or a broken message.
int ServeShm(mp::Connection conn) {
  mp::testing::PinSelf(1);
  Payload m;
  for (;;) {
    absl::StatusOr<size_t> n =
        conn.RecvBytesInto(absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&m), sizeof(m)));
    if (!n.ok()) return n.status().code() == absl::StatusCode::kOutOfRange ? 0 : 1;
    if (*n != sizeof(m)) return 1;
    m.value *= m.value;
    if (!conn.SendBytes(absl::string_view(reinterpret_cast<const char*>(&m), sizeof(m))).ok()) {
      return 1;
    }
  }
}

void BM_RawShmPipeRequestResponse(benchmark::State& state) {
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = mp::Pipe(true);
  if (!pipe.ok()) {
    state.SkipWithError(pipe.status().ToString().c_str());
    return;
  }
  mp::Connection& conn = pipe->first;
  const pid_t worker = fork();
  if (worker == 0) {
    conn.Close();
    _exit(ServeShm(std::move(pipe->second)));
  }
  pipe->second.Close();
  if (worker < 0) {
    state.SkipWithError(std::strerror(errno));
    return;
  }
  uint64_t id = 0;
  for (auto _ : state) {
    const int64_t x = static_cast<int64_t>(id % 1000);
    const Payload request{id, x};
    Payload reply{};
    if (!conn.SendBytes(absl::string_view(reinterpret_cast<const char*>(&request), sizeof(request)))
             .ok()) {
      state.SkipWithError("the worker's connection broke");
      break;
    }
    absl::StatusOr<size_t> n =
        conn.RecvBytesInto(absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&reply), sizeof(reply)));
    if (!n.ok() || *n != sizeof(reply) || reply.id != id || reply.value != x * x) {
      state.SkipWithError("the worker's reply is wrong or missing");
      break;
    }
    ++id;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["pinned"] = kPinned;
  conn.Close();  // the worker receives end of file and exits
  int status = 0;
  while (waitpid(worker, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("the worker failed");
}
BENCHMARK(BM_RawShmPipeRequestResponse)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
