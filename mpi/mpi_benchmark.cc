// Copyright 2026 The mp Authors.
//
// The mpi context's rows of tools/bench, each beside its raw limit in the same run:
//   BM_MpiStartJoin      an mpi Process of a function that returns at once: Create + Start + Join
//   BM_RawMpiSpawnWait   the same by hand: MPI_Comm_spawn of this program as a raw MPI child,
//                        which sends its pid and ends (MPI_Finalize); the parent receives the pid
//                        and waits on its pidfd
//   BM_MpiPoolMap        Pool(2) on mpi workers: Map of 200 tasks of 1 ms (sleep)
//   BM_SpawnPoolMap      the same Pool on spawn workers (shared-memory transport): its limit
//   BM_MpiPipeRoundTrip  64 B round trip over GetContext("mpi")->Pipe() to an mpi child echoing
//   BM_RawMpiPingPong    its limit: 64 B MPI_Send/MPI_Recv ping-pong with a raw MPI child
//   BM_MpiPipeThroughput 1 MiB messages to an mpi child over an mpi Pipe, each acknowledged
//   BM_RawMpiThroughput  its limit: the same with MPI_Send/MPI_Recv to a raw MPI child
// The raw spawn runs on a thread with a deadline: Open MPI 4.1's MPI_Comm_spawn now and then never
// returns (mpi/start_method.h); such an iteration ends the benchmark with an error.

#include <mpi.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "benchmark/benchmark.h"
#include "channels/connection.h"
#include "context/context.h"
#include "mpi/runtime.h"
#include "mpi/start_method.h"
#include "pool/pool.h"
#include "start_methods/process.h"
#include "start_methods/spawn.h"
#include "start_methods/start_method.h"

namespace {

constexpr char kRawChildArg[] = "--raw-mpi-child";
constexpr char kRawEchoArg[] = "--raw-mpi-echo";
constexpr int kRawTag = 1;
constexpr size_t kSmall = 64;
constexpr size_t kLarge = size_t{1} << 20;

int Nothing() { return 0; }

int64_t SleepOneMs(int64_t x) {
  absl::SleepFor(absl::Milliseconds(1));
  return x;
}

// A raw MPI child: MPI_Init, its pid to the parent, MPI_Finalize.
int RawChild() {
  MPI_Init(nullptr, nullptr);
  MPI_Comm parent = MPI_COMM_NULL;
  MPI_Comm_get_parent(&parent);
  const int pid = getpid();
  MPI_Send(&pid, 1, MPI_INT, 0, 1, parent);
  MPI_Finalize();
  return 0;
}

// A raw MPI echo child: answers every message from its parent with its first `reply` bytes (the
// first message says how many, as one int), until an empty message.
int RawEcho() {
  MPI_Init(nullptr, nullptr);
  MPI_Comm parent = MPI_COMM_NULL;
  MPI_Comm_get_parent(&parent);
  int reply = 0;
  MPI_Recv(&reply, 1, MPI_INT, 0, kRawTag, parent, MPI_STATUS_IGNORE);
  std::vector<char> buf(kLarge);
  for (;;) {
    MPI_Status status;
    MPI_Recv(buf.data(), static_cast<int>(buf.size()), MPI_BYTE, 0, kRawTag, parent, &status);
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    if (count == 0) break;
    MPI_Send(buf.data(), std::min(count, reply), MPI_BYTE, 0, kRawTag, parent);
  }
  MPI_Comm_disconnect(&parent);
  MPI_Finalize();
  return 0;
}

void BM_MpiStartJoin(benchmark::State& state) {
  std::shared_ptr<mp::StartMethod> method = mp::MpiStartMethod();
  for (auto _ : state) {
    absl::StatusOr<mp::Process> p = mp::Process::Create(method, mp::Call<&Nothing>());
    if (!p.ok() || !p->Start().ok() || !p->Join(absl::Seconds(60)).ok() || p->ExitCode() != 0) {
      state.SkipWithError("mpi Process start+join failed");
      break;
    }
  }
}
BENCHMARK(BM_MpiStartJoin)->UseRealTime()->Unit(benchmark::kMillisecond);

// One raw spawn and wait; false if it failed or did not return within 10 s.
bool RawSpawnWait(const std::string& exe) {
  auto done = std::make_shared<std::promise<bool>>();
  std::future<bool> result = done->get_future();
  std::thread([done, exe] {
    MPI_Comm inter = MPI_COMM_NULL;
    char arg[sizeof(kRawChildArg)];
    std::memcpy(arg, kRawChildArg, sizeof(kRawChildArg));
    char* argv[] = {arg, nullptr};
    int err = MPI_SUCCESS;
    if (MPI_Comm_spawn(exe.c_str(), argv, 1, MPI_INFO_NULL, 0, MPI_COMM_SELF, &inter, &err) !=
        MPI_SUCCESS) {
      done->set_value(false);
      return;
    }
    int pid = 0;
    MPI_Recv(&pid, 1, MPI_INT, 0, 1, inter, MPI_STATUS_IGNORE);
    absl::StatusOr<int> pidfd = mp::process_internal::PidfdOpen(pid);
    if (pidfd.ok()) {
      (void)mp::PollUntil(*pidfd, POLLIN, mp::Deadline::After(absl::Seconds(60)));
      close(*pidfd);
    }
    MPI_Comm_free(&inter);
    done->set_value(pidfd.ok());
  }).detach();
  return result.wait_for(std::chrono::seconds(10)) == std::future_status::ready && result.get();
}

void BM_RawMpiSpawnWait(benchmark::State& state) {
  char exe[4096] = {};
  if (readlink("/proc/self/exe", exe, sizeof(exe) - 1) < 0) {
    state.SkipWithError("readlink /proc/self/exe");
    return;
  }
  if (!mp::mpi_internal::Initialize().ok()) {
    state.SkipWithError("MPI_Init");
    return;
  }
  for (auto _ : state) {
    if (!RawSpawnWait(exe)) {
      state.SkipWithError("raw MPI_Comm_spawn failed or hung");
      break;
    }
  }
}
BENCHMARK(BM_RawMpiSpawnWait)->UseRealTime()->Unit(benchmark::kMillisecond);

mp::Context* Mpi() {
  static mp::Context* const ctx = *mp::GetContext("mpi");
  return ctx;
}

// The mpi child's end: answers each message with its first `reply` bytes until end of file.
int PipeEcho(mp::Connection conn, int64_t reply) {
  for (;;) {
    absl::StatusOr<std::string> s = conn.RecvBytes();
    if (!s.ok()) return s.status().code() == absl::StatusCode::kOutOfRange ? 0 : 1;
    s->resize(std::min<size_t>(s->size(), static_cast<size_t>(reply)));
    if (!conn.SendBytes(*s).ok()) return 2;
  }
}

// `size`-byte messages to an mpi child over an mpi Pipe, each answered with `reply` bytes.
void MpiPipeExchange(benchmark::State& state, size_t size, int64_t reply) {
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = Mpi()->Pipe();
  if (!pipe.ok()) {
    state.SkipWithError("mpi Pipe failed");
    return;
  }
  absl::StatusOr<mp::Process> p = Mpi()->Process<&PipeEcho>(std::move(pipe->second), reply);
  if (!p.ok() || !p->Start().ok()) {
    state.SkipWithError("mpi Process start failed");
    return;
  }
  mp::Connection& conn = pipe->first;
  const std::string message(size, 'x');
  for (auto _ : state) {
    if (!conn.SendBytes(message).ok()) {
      state.SkipWithError("SendBytes failed");
      break;
    }
    absl::StatusOr<std::string> back = conn.RecvBytes();
    if (!back.ok() || back->size() != std::min<size_t>(size, reply)) {
      state.SkipWithError("RecvBytes failed");
      break;
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
  conn.Close();  // the child sees end of file and returns
  if (!p->Join(absl::Seconds(60)).ok() || p->ExitCode() != 0) {
    state.SkipWithError("the mpi Pipe's child did not end well");
  }
}

// The same by hand: a raw MPI child (RawEcho) and MPI_Send/MPI_Recv on the intercommunicator.
void RawMpiExchange(benchmark::State& state, size_t size, int reply) {
  char exe[4096] = {};
  if (readlink("/proc/self/exe", exe, sizeof(exe) - 1) < 0 ||
      !mp::mpi_internal::Initialize().ok()) {
    state.SkipWithError("readlink /proc/self/exe or MPI_Init");
    return;
  }
  MPI_Comm inter = MPI_COMM_NULL;
  char arg[sizeof(kRawEchoArg)];
  std::memcpy(arg, kRawEchoArg, sizeof(kRawEchoArg));
  char* argv[] = {arg, nullptr};
  int err = MPI_SUCCESS;
  if (MPI_Comm_spawn(exe, argv, 1, MPI_INFO_NULL, 0, MPI_COMM_SELF, &inter, &err) !=
      MPI_SUCCESS) {
    state.SkipWithError("raw MPI_Comm_spawn failed");
    return;
  }
  MPI_Send(&reply, 1, MPI_INT, 0, kRawTag, inter);
  std::vector<char> message(size, 'x');
  std::vector<char> back(size);
  for (auto _ : state) {
    MPI_Send(message.data(), static_cast<int>(size), MPI_BYTE, 0, kRawTag, inter);
    MPI_Recv(back.data(), static_cast<int>(size), MPI_BYTE, 0, kRawTag, inter, MPI_STATUS_IGNORE);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
  MPI_Send(message.data(), 0, MPI_BYTE, 0, kRawTag, inter);
  MPI_Comm_disconnect(&inter);
}

void BM_MpiPipeRoundTrip(benchmark::State& state) { MpiPipeExchange(state, kSmall, kSmall); }
BENCHMARK(BM_MpiPipeRoundTrip)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_RawMpiPingPong(benchmark::State& state) { RawMpiExchange(state, kSmall, kSmall); }
BENCHMARK(BM_RawMpiPingPong)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_MpiPipeThroughput(benchmark::State& state) { MpiPipeExchange(state, kLarge, 1); }
BENCHMARK(BM_MpiPipeThroughput)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_RawMpiThroughput(benchmark::State& state) { RawMpiExchange(state, kLarge, 1); }
BENCHMARK(BM_RawMpiThroughput)->UseRealTime()->Unit(benchmark::kMicrosecond);

void PoolMap(benchmark::State& state, std::shared_ptr<mp::StartMethod> method) {
  absl::StatusOr<mp::Pool> pool = mp::Pool::Create(std::move(method), {.processes = 2});
  if (!pool.ok()) {
    state.SkipWithError("Pool::Create failed");
    return;
  }
  std::vector<int64_t> items(200);
  for (size_t i = 0; i < items.size(); ++i) items[i] = static_cast<int64_t>(i);
  for (auto _ : state) {
    absl::StatusOr<std::vector<int64_t>> r = pool->Map<&SleepOneMs>(items);
    if (!r.ok()) {
      state.SkipWithError("Map failed");
      break;
    }
  }
  state.counters["tasks_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * items.size()), benchmark::Counter::kIsRate);
  pool->Close();
  (void)pool->Join(absl::Seconds(60));
}

void BM_MpiPoolMap(benchmark::State& state) { PoolMap(state, mp::MpiStartMethod()); }
BENCHMARK(BM_MpiPoolMap)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_SpawnPoolMap(benchmark::State& state) { PoolMap(state, mp::SpawnStartMethod()); }
BENCHMARK(BM_SpawnPoolMap)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], kRawChildArg) == 0) return RawChild();
  if (argc > 1 && std::strcmp(argv[1], kRawEchoArg) == 0) return RawEcho();
  // A benchmark binary of mp's own: as root, Open MPI's consent; MPI's sockets on loopback.
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  setenv("OMPI_MCA_btl_tcp_if_include", "lo", 0);
  setenv("OMPI_MCA_oob_tcp_if_include", "lo", 0);
  mp::Init(argc, argv);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
