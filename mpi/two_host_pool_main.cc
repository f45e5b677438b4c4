// Copyright 2026 The mp Authors.
//
// A program that runs GetContext("mpi")->Pool(4) across the hosts in MP_MPI_HOSTS (two simulated
// hosts in two_host_pool_test.sh): its tasks run on both, a worker on the second host that dies
// mid-task fails only that task (kAborted) at once (its lifeline, long before the heartbeat
// timeout) and is replaced, and the pool goes on; then an mpi Pipe
// to a process on the second host carries round trips and end of file. Exit code 0 when all of
// that held; otherwise 1, with what failed on stderr.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "context/context.h"
#include "managers/collections.h"
#include "mpi/start_method.h"
#include "pool/pool.h"
#include "start_methods/process.h"

namespace {

std::string Host() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

std::string HostOf(int64_t) { return Host(); }

int64_t SleepOneMs(int64_t x) {
  absl::SleepFor(absl::Milliseconds(1));
  return x;
}

// Seconds for a Map of `n` tasks of 1 ms on `pool`; negative if it failed.
double TimeMap(mp::Pool& pool, size_t n) {
  std::vector<int64_t> items(n, 0);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<int64_t>> r = pool.Map<&SleepOneMs>(items);
  return r.ok() ? absl::ToDoubleSeconds(absl::Now() - start) : -1;
}

// Kills its worker when it runs on `victim`; otherwise returns the host's name.
std::string DieOn(std::string victim) {
  if (Host() == victim) raise(SIGKILL);
  return Host();
}

// The other end of an mpi Pipe on another host: answers each string with it and its host's name,
// until end of file.
int AnswerWithHost(mp::Connection conn) {
  for (;;) {
    absl::StatusOr<std::string> s = conn.Recv<std::string>();
    if (!s.ok()) return s.status().code() == absl::StatusCode::kOutOfRange ? 0 : 1;
    if (!conn.Send(absl::StrCat(*s, "@", Host())).ok()) return 2;
  }
}

// Records its host's name in `d` through the mpi context's Manager.
int RecordHost(mp::DictProxy<std::string, std::string> d) {
  return d.Set("host", Host()).ok() ? 0 : 1;
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "two_host_pool: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  const std::string here = Host();
  absl::StatusOr<mp::Context*> ctx = mp::GetContext("mpi");
  if (!ctx.ok()) return Fail(ctx.status().ToString());
  // The hosts of MP_MPI_HOSTS, with a heartbeat timeout far longer than the test: a worker's death
  // on the other host must be seen through its lifeline.
  const char* hosts_env = getenv("MP_MPI_HOSTS");
  constexpr absl::Duration kHeartbeatTimeout = absl::Seconds(120);
  absl::StatusOr<std::shared_ptr<mp::StartMethod>> method = mp::MakeMpiStartMethod(
      {.hosts = absl::StrSplit(hosts_env != nullptr ? hosts_env : "", ',', absl::SkipEmpty()),
       .heartbeat_timeout = kHeartbeatTimeout});
  if (!method.ok()) return Fail(method.status().ToString());
  const absl::Time t0 = absl::Now();
  absl::StatusOr<mp::Pool> pool = mp::Pool::Create(*method, {.processes = 4});
  if (!pool.ok()) return Fail(pool.status().ToString());
  std::fprintf(stderr, "two_host_pool: 4 workers started from %s in %s\n", here.c_str(),
               absl::FormatDuration(absl::Now() - t0).c_str());
  absl::StatusOr<std::vector<std::string>> hosts =
      pool->Map<&HostOf>(std::vector<int64_t>(200, 0), 1);
  if (!hosts.ok()) return Fail(hosts.status().ToString());
  const std::set<std::string> seen(hosts->begin(), hosts->end());
  std::fprintf(stderr, "two_host_pool: tasks ran on %s\n", absl::StrJoin(seen, ", ").c_str());
  if (seen.size() < 2) return Fail("the tasks did not run on two hosts");
  const std::string other = *seen.begin() == here ? *seen.rbegin() : *seen.begin();

  // One task per worker at first (idle workers are served first): those on the other host die.
  const absl::Time t1 = absl::Now();
  std::vector<std::string> victims(8, other);
  mp::ImapIterator<std::string> it = pool->Imap<&DieOn>(victims, 1);
  int aborted = 0, ran = 0;
  for (size_t i = 0; i < victims.size(); ++i) {
    absl::StatusOr<std::string> r = it.Next(absl::Seconds(60));
    if (r.ok()) {
      ++ran;
      if (*r == other) return Fail("a task on the victim host returned");
    } else if (r.status().code() == absl::StatusCode::kAborted) {
      ++aborted;
    } else {
      return Fail(absl::StrCat("task ", i, ": ", r.status().ToString()));
    }
  }
  std::fprintf(
      stderr, "two_host_pool: %d tasks aborted with their workers on %s, %d ran on %s (%s)\n",
      aborted, other.c_str(), ran, here.c_str(), absl::FormatDuration(absl::Now() - t1).c_str());
  if (aborted < 1) return Fail("no worker on the other host died");
  if (absl::Now() - t1 >= kHeartbeatTimeout / 2) {
    return Fail("the deaths on the other host were seen only through the heartbeat timeout");
  }

  absl::StatusOr<std::vector<std::string>> after =
      pool->Map<&HostOf>(std::vector<int64_t>(100, 0), 1);
  if (!after.ok()) return Fail(absl::StrCat("after the deaths: ", after.status().ToString()));
  if (pool->WorkerPids().size() != 4) return Fail("the dead workers were not all replaced");

  // A measurement, not a check: 10,000 tasks of 1 ms over the two hosts, and on 4 spawn workers
  // of this host.
  const double two_hosts = TimeMap(*pool, 10000);
  absl::StatusOr<mp::Pool> local = (*mp::GetContext("spawn"))->Pool(4);
  const double one_host = local.ok() ? TimeMap(*local, 10000) : -1;
  std::fprintf(stderr,
               "two_host_pool: Map of 10000 tasks of 1 ms: %.2f s on 2 hosts x 2 mpi workers, "
               "%.2f s on 4 spawn workers of %s (%.2fx)\n",
               two_hosts, one_host, here.c_str(), one_host > 0 ? two_hosts / one_host : 0.0);
  if (two_hosts < 0) return Fail("the timed Map failed");
  pool->Close();
  if (absl::Status s = pool->Join(absl::Seconds(60)); !s.ok()) return Fail(s.ToString());

  // An mpi Pipe to a process on the other host: round trips, then end of file both ways.
  absl::StatusOr<std::shared_ptr<mp::StartMethod>> there =
      mp::MakeMpiStartMethod({.hosts = {other}});
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = (*ctx)->Pipe();
  if (!there.ok() || !pipe.ok()) return Fail("an mpi method for the other host, or a Pipe");
  absl::StatusOr<mp::Process> peer =
      mp::Process::Create(*there, mp::Call<&AnswerWithHost>(std::move(pipe->second)));
  if (!peer.ok()) return Fail(peer.status().ToString());
  if (absl::Status s = peer->Start(); !s.ok()) return Fail(s.ToString());
  const absl::Time t2 = absl::Now();
  constexpr int kRoundTrips = 1000;
  for (int i = 0; i < kRoundTrips; ++i) {
    if (!pipe->first.Send(std::to_string(i)).ok()) return Fail("a send over the mpi Pipe");
    absl::StatusOr<std::string> back = pipe->first.Recv<std::string>();
    if (!back.ok() || *back != absl::StrCat(i, "@", other)) {
      return Fail(absl::StrCat(
          "round trip ", i, " over the mpi Pipe: ", back.ok() ? *back : back.status().ToString()));
    }
  }
  std::fprintf(stderr, "two_host_pool: %d round trips over an mpi Pipe to %s: %.1f us each\n",
               kRoundTrips, other.c_str(),
               absl::ToDoubleMicroseconds(absl::Now() - t2) / kRoundTrips);
  pipe->first.Close();
  if (absl::Status s = peer->Join(absl::Seconds(60)); !s.ok()) return Fail(s.ToString());
  if (peer->ExitCode() != 0) return Fail("the Pipe's peer did not see end of file");

  // A Manager proxy in a process on the other host.
  absl::StatusOr<mp::Manager> manager = (*ctx)->Manager();
  if (!manager.ok()) return Fail(manager.status().ToString());
  absl::StatusOr<mp::DictProxy<std::string, std::string>> d =
      manager->Dict<std::string, std::string>();
  if (!d.ok()) return Fail(d.status().ToString());
  absl::StatusOr<mp::Process> recorder = mp::Process::Create(*there, mp::Call<&RecordHost>(*d));
  if (!recorder.ok()) return Fail(recorder.status().ToString());
  if (absl::Status s = recorder->Start(); !s.ok()) return Fail(s.ToString());
  if (absl::Status s = recorder->Join(absl::Seconds(60)); !s.ok()) return Fail(s.ToString());
  absl::StatusOr<std::string> recorded = d->Get("host");
  if (recorder->ExitCode() != 0 || !recorded.ok() || *recorded != other) {
    return Fail(absl::StrCat("the Manager's Dict from ", other, ": ",
                             recorded.ok() ? *recorded : recorded.status().ToString()));
  }
  std::fprintf(stderr, "two_host_pool: a Dict proxy of the Manager at %s was set on %s\n",
               manager->address().c_str(), other.c_str());
  (void)manager->Shutdown();
  std::fprintf(stderr, "two_host_pool: OK\n");
  return 0;
}
