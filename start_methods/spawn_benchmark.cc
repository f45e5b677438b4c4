// start+join of a spawn child, beside its raw limits, from a binary shaped like a user's program.
//
// A spawn child is a fresh exec of the parent's own executable, so what the child pays before main
// (the kernel's exec and the dynamic loader) belongs to the figure. A Google Benchmark binary
// cannot show what a program built with mp pays: Debian ships libbenchmark only as a shared
// object, which brings libstdc++.so, libm and libgcc_s back into every child, about 0.6 ms of
// loading on the 2-core VM. This binary therefore links no Google Benchmark: it links mp as any
// program does (mp, Abseil, FlatBuffers, libstdc++ and libgcc statically, see
// third_party/system.BUILD; only libc and libm dynamically) and times its loops itself. It prints
// the subset of Google Benchmark's JSON that tools/bench reads, and takes the same flags:
//   --benchmark_filter=REGEX  --benchmark_format=json|console  --benchmark_repetitions=N
//   --benchmark_min_time=SECONDS  (plus --static_child=PATH, default: raw_static_child beside
//   this executable)
//
//   BM_Spawn/real_time                mp::Process Create + Start + Join + Close, spawn method.
//   BM_RawPosixSpawnStatic/real_time  posix_spawn of raw_static_child (-static, main is _exit(0))
//                                     and waitpid: the floor of any spawn on this machine, the
//                                     limit of "start+join spawn".
//   BM_RawPosixSpawn/real_time        posix_spawn of this binary with an argument that makes main
//                                     _exit(0) before mp::Init: exec plus this binary's own
//                                     loading and static initialization, what every spawn child
//                                     of it pays at least.
//   BM_RawForkExec/real_time          fork + execve of the same raw child: the alternative spawn
//                                     could use (its cost grows with the parent's page tables).
// The raw children inherit descriptors 0-2 only (mp's spawn child: 0-2 and its control socket).
//
// Measured 2026-12-03 on the 2-core VM (medians of 3): the static raw child 0.43 ms. With mp's
// default link (spawn_benchmark: libc and libm shared), this binary's raw exec 0.90 ms and
// BM_Spawn 1.04 ms (2.4x the static floor); the same program linked -static
// (spawn_benchmark_static) 0.40 ms and 0.49 ms (1.15-1.2x). With every library shared
// (--define=mp_link=shared) BM_Spawn was 3.8 ms. What mp adds to a raw exec of the same binary
// (the socketpair, the launch record, the child's acknowledgement, the join) is about 0.1 ms; the
// rest of the default mode's gap to the floor is the dynamic loading of libc and libm and the
// page faults of a larger binary.
//
//   bazel build -c opt //start_methods:spawn_benchmark &&
//       bazel-bin/start_methods/spawn_benchmark --benchmark_repetitions=3

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "start_methods/process.h"
#include "start_methods/spawn.h"

extern char** environ;

namespace {

int Trivial() { return 0; }

// The argument that makes this binary a raw child: main checks it first and calls _exit(0).
constexpr char kRawChildArg[] = "--mp-bench-raw-child";

// What a benchmark's loop body does once; a non-OK status stops the run.
using Iteration = std::function<absl::Status()>;

struct Benchmark {
  std::string name;
  // Builds the state the iterations share (run once per repetition, untimed) and returns the body.
  std::function<absl::StatusOr<Iteration>()> setup;
};

struct Options {
  std::string filter = ".";
  bool json = false;
  int repetitions = 1;
  double min_time_s = 0.5;
  std::string static_child;
};

double NowSeconds(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

absl::Status WaitExitedZero(pid_t pid, const char* what) {
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return absl::InternalError(absl::StrCat("waitpid of ", what, ": ", strerror(errno)));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(
        absl::StrCat(what, " did not exit with 0 (wait status ", status, ")"));
  }
  return absl::OkStatus();
}

// posix_spawn of `path` with argv {path, arg}, descriptors 0-2 only, and wait for it.
absl::Status PosixSpawnAndWait(const std::string& path, const char* arg) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::string arg0 = path;
  std::string arg1 = arg == nullptr ? "" : arg;
  char* argv[] = {arg0.data(), arg == nullptr ? nullptr : arg1.data(), nullptr};
  pid_t pid;
  int rc = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return absl::InternalError(absl::StrCat("posix_spawn(", path, "): ", strerror(rc)));
  return WaitExitedZero(pid, path.c_str());
}

absl::Status ForkExecAndWait() {
  char arg0[] = "spawn_benchmark";
  char arg1[sizeof(kRawChildArg)];
  std::memcpy(arg1, kRawChildArg, sizeof(kRawChildArg));
  char* argv[] = {arg0, arg1, nullptr};
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    close_range(3, ~0u, 0);
    execve("/proc/self/exe", argv, environ);
    _exit(127);
  }
  return WaitExitedZero(pid, "the fork+execve child");
}

absl::Status StartJoinSpawn() {
  absl::StatusOr<mp::Process> p = mp::Process::Create(mp::SpawnStartMethod(), mp::Call<&Trivial>());
  if (!p.ok()) return p.status();
  if (absl::Status s = p->Start(); !s.ok()) return s;
  if (absl::Status s = p->Join(); !s.ok()) return s;
  if (p->ExitCode() != 0) return absl::InternalError("the spawn child's exit code is not 0");
  return p->Close();
}

std::vector<Benchmark> Benchmarks(const Options& options) {
  return {
      {"BM_RawPosixSpawnStatic/real_time",
       [&options]() -> absl::StatusOr<Iteration> {
         if (access(options.static_child.c_str(), X_OK) != 0) {
           return absl::NotFoundError(absl::StrCat("the static raw child ", options.static_child,
                                                   " is not an executable (build "
                                                   "//start_methods:raw_static_child, or pass "
                                                   "--static_child=PATH)"));
         }
         return Iteration([&options] { return PosixSpawnAndWait(options.static_child, nullptr); });
       }},
      {"BM_RawPosixSpawn/real_time",
       []() -> absl::StatusOr<Iteration> {
         return Iteration([] { return PosixSpawnAndWait("/proc/self/exe", kRawChildArg); });
       }},
      {"BM_RawForkExec/real_time",
       []() -> absl::StatusOr<Iteration> { return Iteration(ForkExecAndWait); }},
      {"BM_Spawn/real_time",
       []() -> absl::StatusOr<Iteration> { return Iteration(StartJoinSpawn); }},
  };
}

struct Run {
  int64_t iterations = 0;
  double real_ns = 0;  // per iteration
  double cpu_ns = 0;   // this process's CPU time per iteration (children's not counted)
};

// Two untimed warm-up iterations, then iterations until min_time has passed (at least 10).
absl::StatusOr<Run> RunOnce(const Iteration& body, double min_time_s) {
  for (int i = 0; i < 2; ++i) {
    if (absl::Status s = body(); !s.ok()) return s;
  }
  Run run;
  const double real0 = NowSeconds(CLOCK_MONOTONIC);
  const double cpu0 = NowSeconds(CLOCK_PROCESS_CPUTIME_ID);
  double real1 = real0;
  while (run.iterations < 10 || real1 - real0 < min_time_s) {
    if (absl::Status s = body(); !s.ok()) return s;
    ++run.iterations;
    real1 = NowSeconds(CLOCK_MONOTONIC);
  }
  const double cpu1 = NowSeconds(CLOCK_PROCESS_CPUTIME_ID);
  run.real_ns = (real1 - real0) * 1e9 / static_cast<double>(run.iterations);
  run.cpu_ns = (cpu1 - cpu0) * 1e9 / static_cast<double>(run.iterations);
  return run;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string JsonEntry(const std::string& name, const std::string& run_name, const char* run_type,
                      const std::string& extra, int64_t iterations, double real_ns, double cpu_ns) {
  return absl::StrFormat(
      "    {\"name\": \"%s\", \"run_name\": \"%s\", \"run_type\": \"%s\",%s \"iterations\": %d, "
      "\"real_time\": %.6g, \"cpu_time\": %.6g, \"time_unit\": \"ns\"}",
      name, run_name, run_type, extra, iterations, real_ns, cpu_ns);
}

absl::StatusOr<Options> ParseFlags(int argc, char** argv) {
  Options options;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    std::string path(self, static_cast<size_t>(n));
    options.static_child = path.substr(0, path.rfind('/') + 1) + "raw_static_child";
  }
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    absl::string_view value;
    auto flag = [&](absl::string_view prefix) {
      if (!absl::StartsWith(arg, prefix)) return false;
      value = arg.substr(prefix.size());
      return true;
    };
    if (flag("--benchmark_filter=")) {
      options.filter = std::string(value);
    } else if (flag("--benchmark_format=")) {
      if (value != "json" && value != "console") {
        return absl::InvalidArgumentError(
            absl::StrCat("--benchmark_format=", value, ": json or console"));
      }
      options.json = value == "json";
    } else if (flag("--benchmark_repetitions=")) {
      if (!absl::SimpleAtoi(value, &options.repetitions) || options.repetitions < 1 ||
          options.repetitions > 1000) {
        return absl::InvalidArgumentError(absl::StrCat(arg, ": a count from 1 to 1000"));
      }
    } else if (flag("--benchmark_min_time=")) {
      absl::ConsumeSuffix(&value, "s");
      if (!absl::SimpleAtod(value, &options.min_time_s) || !(options.min_time_s >= 0) ||
          options.min_time_s > 3600) {
        return absl::InvalidArgumentError(absl::StrCat(arg, ": seconds from 0 to 3600"));
      }
    } else if (flag("--static_child=")) {
      options.static_child = std::string(value);
    } else if (arg == "--benchmark_report_aggregates_only=true" ||
               arg == "--benchmark_enable_random_interleaving=false") {
      // Accepted for the same command lines as the Google Benchmark binaries; no effect here.
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
    }
  }
  return options;
}

int RunBenchmarks(const Options& options) {
  std::regex filter;
  try {
    filter = std::regex(options.filter, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    std::fprintf(stderr, "--benchmark_filter=%s: not a regular expression (%s)\n",
                 options.filter.c_str(), e.what());
    return 2;
  }
  std::vector<std::string> entries;
  for (const Benchmark& b : Benchmarks(options)) {
    if (!std::regex_search(b.name, filter)) continue;
    std::vector<double> real, cpu;
    int64_t iterations = 0;
    for (int rep = 0; rep < options.repetitions; ++rep) {
      absl::StatusOr<Iteration> body = b.setup();
      absl::StatusOr<Run> run = body.ok() ? RunOnce(*body, options.min_time_s) : body.status();
      if (!run.ok()) {
        std::fprintf(stderr, "%s: %s\n", b.name.c_str(), run.status().ToString().c_str());
        return 1;
      }
      real.push_back(run->real_ns);
      cpu.push_back(run->cpu_ns);
      iterations = run->iterations;
      entries.push_back(JsonEntry(b.name, b.name, "iteration",
                                  absl::StrFormat(" \"repetitions\": %d, \"repetition_index\": %d,",
                                                  options.repetitions, rep),
                                  run->iterations, run->real_ns, run->cpu_ns));
      if (!options.json) {
        std::printf("%-36s %12.0f ns %12.0f ns %8lld\n", b.name.c_str(), run->real_ns, run->cpu_ns,
                    static_cast<long long>(run->iterations));
      }
    }
    if (options.repetitions > 1) {
      const double real_median = Median(real);
      const double cpu_median = Median(cpu);
      entries.push_back(
          JsonEntry(b.name + "_median", b.name, "aggregate",
                    absl::StrFormat(" \"aggregate_name\": \"median\", \"repetitions\": %d,",
                                    options.repetitions),
                    iterations, real_median, cpu_median));
      if (!options.json) {
        std::printf("%-36s %12.0f ns %12.0f ns\n", (b.name + "_median").c_str(), real_median,
                    cpu_median);
      }
    }
  }
  if (options.json) {
    std::printf(
        "{\n  \"context\": {\"executable\": \"spawn_benchmark\"},\n  \"benchmarks\": [\n%s\n  "
        "]\n}\n",
        absl::StrJoin(entries, ",\n").c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], kRawChildArg) == 0) _exit(0);
  mp::Init(argc, argv);
  absl::StatusOr<Options> options = ParseFlags(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "spawn_benchmark: %s\n", options.status().message().data());
    return 2;
  }
  return RunBenchmarks(*options);
}
