// Copyright 2026 The mp Authors.
//
// The mpi context's rows of tools/bench, each beside its raw limit in the same run:
//   BM_MpiStartJoin      an mpi Process of a function that returns at once: Create + Start + Join
//   BM_RawMpiSpawnWait   the same by hand: MPI_Comm_spawn of this program as a raw MPI child,
//                        which sends its pid and ends (MPI_Finalize); the parent receives the pid
//                        and waits on its pidfd
//   BM_MpiPoolMap        Pool(2) on mpi workers: Map of 200 tasks of 1 ms (sleep)
//   BM_SpawnPoolMap      the same Pool on spawn workers (shared-memory transport): its limit
// The raw spawn runs on a thread with a deadline: Open MPI 4.1's MPI_Comm_spawn now and then never
// returns (mpi/start_method.h); such an iteration ends the benchmark with an error.

#include <mpi.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "benchmark/benchmark.h"
#include "mpi/runtime.h"
#include "mpi/start_method.h"
#include "pool/pool.h"
#include "start_methods/process.h"
#include "start_methods/spawn.h"
#include "start_methods/start_method.h"

namespace {

constexpr char kRawChildArg[] = "--raw-mpi-child";

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
