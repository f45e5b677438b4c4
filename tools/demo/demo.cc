// Copyright 2026 The mp Authors.
//
// bazel run //tools/demo — the main job of mp, end to end: children started by fork, spawn and
// forkserver share one Queue and one Lock, report over a Pipe, and every failure is a status that
// says why. It is also a test (//tools/demo:demo_test): it exits non-zero if a step does not hold.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mp.h"
#include "serialize/sample_generated.h"

namespace demo {

struct Job {
  int64_t id = 0;
  std::string command;
  std::vector<std::string> args;
  std::map<std::string, double> limits;
};
MP_FIELDS(Job, id, command, args, limits);

struct Report {
  std::string method;
  int64_t pid = 0;
  int64_t job_id = 0;
  int64_t counter_after = 0;
};
MP_FIELDS(Report, method, pid, job_id, counter_after);

// A worker: takes a job from the queue, bumps a shared counter under the lock, reports on the pipe.
absl::Status Worker(std::string method, mp::Queue jobs, mp::Lock lock, mp::Queue counter,
                    mp::Connection report) {
  absl::StatusOr<Job> job = jobs.Get<Job>(true, absl::Seconds(30));
  if (!job.ok()) return job.status();
  absl::StatusOr<bool> got = lock.Acquire(true, absl::Seconds(30));
  if (!got.ok() && !mp::IsOwnerDied(got.status())) return got.status();
  // The counter is a one-item queue: take it, bump it, put it back, all under the lock.
  absl::StatusOr<int64_t> value = counter.Get<int64_t>(true, absl::Seconds(30));
  absl::Status put = value.ok() ? counter.Put(*value + 1) : value.status();
  absl::Status released = lock.Release();
  if (!put.ok()) return put;
  if (!released.ok()) return released;
  return report.Send(Report{method, ::getpid(), job->id, *value + 1});
}

}  // namespace demo

namespace {

int failures = 0;

void Check(bool ok, const std::string& what) {
  std::printf("  [%s] %s\n", ok ? " ok " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

void Serialization() {
  std::printf("1. typed messages (serialize/)\n");
  demo::Job job{7, "render", {"--fast", "scene.bin"}, {{"cpu", 1.5}, {"mem_gib", 2}}};
  absl::StatusOr<std::string> frame = mp::EncodeFrame(job);
  Check(frame.ok(),
        "encode a user struct (MP_FIELDS) into a frame: " + std::to_string(frame->size()) +
            " bytes, type " + mp::TypeName<demo::Job>());
  absl::StatusOr<demo::Job> back = mp::DecodeFrame<demo::Job>(*frame);
  Check(back.ok() && back->command == "render" && back->limits.at("cpu") == 1.5,
        "decode it back intact");
  absl::StatusOr<std::string> wrong = mp::DecodeFrame<std::string>(*frame);
  Check(wrong.status().code() == absl::StatusCode::kInvalidArgument,
        "the wrong type is refused: " + wrong.status().ToString());
  absl::StatusOr<demo::Job> torn = mp::DecodeFrame<demo::Job>(frame->substr(0, frame->size() - 3));
  Check(!torn.ok(), "a truncated message is refused: " + torn.status().ToString());
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<double> values = {0.5, 1.5};
  fbb.Finish(mp::sample::CreateSampleDirect(fbb, 99, "sensor", mp::sample::Level_Warning, &values));
  absl::StatusOr<std::string> flat = mp::EncodeFlatFrame<mp::sample::Sample>(fbb);
  absl::StatusOr<mp::FlatView<mp::sample::Sample>> view =
      mp::FlatView<mp::sample::Sample>::Parse(mp::AsBytes(*flat));
  Check(view.ok() && (*view)->id() == 99, "a FlatBuffers record arrives as a verified view");
}

// Each child gets its own copy of the shared write end (a Connection owns its descriptors); the six
// children's reports never interleave.
mp::Connection WriteEnd(const mp::Connection& shared) {
  absl::StatusOr<mp::Connection> c = shared.Dup();
  return c.ok() ? *std::move(c) : mp::Connection();
}

void Processes() {
  std::printf("\n2. fork, spawn and forkserver children share one Queue and one Lock\n");
  // Transferable objects (made by the spawn context) can go to children of every start method.
  mp::Context* shared = *mp::GetContext("spawn");
  absl::StatusOr<mp::Queue> jobs = shared->Queue();
  absl::StatusOr<mp::Queue> counter = shared->Queue(/*maxsize=*/1);
  absl::StatusOr<mp::Lock> lock = shared->Lock();
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = shared->Pipe();
  if (!jobs.ok() || !counter.ok() || !lock.ok() || !pipe.ok()) {
    Check(false, "create the shared objects");
    return;
  }
  Check(counter->Put(int64_t{0}).ok(), "queue, counter, lock and pipe created");
  std::vector<mp::Process> children;
  for (const char* method : {"fork", "spawn", "forkserver"}) {
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<mp::Process> p =
          (*mp::GetContext(method))
              ->Process<&demo::Worker>(std::string(method), *jobs, *lock, *counter,
                                       WriteEnd(pipe->second));
      if (!p.ok() || !p->Start().ok()) {
        Check(false, std::string("start a ") + method + " child: " + p.status().ToString());
        continue;
      }
      children.push_back(*p);
    }
  }
  for (int64_t id = 1; id <= static_cast<int64_t>(children.size()); ++id) {
    (void)jobs->Put(demo::Job{id, "job", {}, {}});
  }
  std::map<std::string, int> per_method;
  for (size_t i = 0; i < children.size(); ++i) {
    absl::StatusOr<bool> ready = pipe->first.Poll(absl::Seconds(30));
    absl::StatusOr<demo::Report> r =
        ready.ok() && *ready
            ? pipe->first.Recv<demo::Report>()
            : absl::StatusOr<demo::Report>(absl::DeadlineExceededError("no report"));
    if (!r.ok()) {
      Check(false, "a report: " + r.status().ToString());
      continue;
    }
    ++per_method[r->method];
    std::printf("        %-10s child pid %-7lld did job %lld, counter now %lld\n",
                r->method.c_str(), static_cast<long long>(r->pid),
                static_cast<long long>(r->job_id), static_cast<long long>(r->counter_after));
  }
  int exit_ok = 0;
  for (mp::Process& p : children) {
    exit_ok += (p.Join(absl::Seconds(30)).ok() && p.ExitCode() == 0) ? 1 : 0;
  }
  absl::StatusOr<int64_t> total = counter->Get<int64_t>(true, absl::Seconds(5));
  Check(exit_ok == 6 && per_method.size() == 3,
        "6 children (2 per method) did their jobs, exit code 0");
  Check(total.ok() && *total == 6, "the counter, bumped under the lock, is exactly 6");
}

void Rules() {
  std::printf("\n3. what a start method cannot carry is refused when the Process is made\n");
  absl::StatusOr<mp::Lock> fork_lock = (*mp::GetContext("fork"))->Lock();
  absl::StatusOr<mp::Process> p =
      (*mp::GetContext("spawn"))->Process(mp::Target::Callable([] { return 0; }));
  Check(p.status().code() == absl::StatusCode::kFailedPrecondition,
        "a lambda for a spawn child: " + p.status().ToString());
  absl::StatusOr<mp::Queue> q = (*mp::GetContext("spawn"))->Queue();
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = mp::Pipe();
  if (!fork_lock.ok() || !q.ok() || !pipe.ok()) {
    Check(false, "create a lock, a queue and a pipe");
    return;
  }
  absl::StatusOr<mp::Process> p2 =
      (*mp::GetContext("forkserver"))
          ->Process<&demo::Worker>(std::string("x"), *q, *fork_lock, *q, std::move(pipe->second));
  Check(p2.status().code() == absl::StatusCode::kFailedPrecondition,
        "a fork-context Lock for a forkserver child: " + p2.status().ToString());
}

}  // namespace

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  std::printf("mp demo: Python's multiprocessing for C++\n\n");
  Serialization();
  Processes();
  Rules();
  std::printf("\n%s\n", failures == 0 ? "demo: all steps held" : "demo: SOME STEPS FAILED");
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
