// Copyright 2026 The mp Authors.
//
// The "mpi" context: it exists when the program links @mp//mpi:start_method, starts processes
// with Open MPI, and refuses what lives in this host's memory.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "context/context.h"
#include "gtest/gtest.h"
#include "managers/collections.h"

namespace mp_test {
namespace {

int Square(int x) { return x * x; }
int TakeQueue(mp::Queue q) { return 0; }

mp::Context* Mpi() {
  absl::StatusOr<mp::Context*> ctx = mp::GetContext("mpi");
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return *ctx;
}

TEST(MpiContextTest, IsListedAndRunsProcesses) {
  std::vector<std::string> all = mp::GetAllStartMethods();
  EXPECT_EQ(all.back(), "mpi");
  absl::StatusOr<mp::Process> p = Mpi()->Process<&Square>(7);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->Start().ok());
  ASSERT_TRUE(p->Join(absl::Seconds(60)).ok());
  EXPECT_EQ(p->ExitCode(), 49);
  EXPECT_EQ(p->StartMethodName(), "mpi");
}

void ExpectHostLocalRefusal(const absl::Status& s, const std::string& what) {
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << what << ": " << s;
  EXPECT_TRUE(absl::StrContains(s.message(), what)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "Manager")) << s;
}

TEST(MpiContextTest, RefusesHostLocalObjectsNamingTheFix) {
  mp::Context* ctx = Mpi();
  ExpectHostLocalRefusal(ctx->Lock().status(), "Lock");
  ExpectHostLocalRefusal(ctx->RLock().status(), "RLock");
  ExpectHostLocalRefusal(ctx->Semaphore(2).status(), "Semaphore");
  ExpectHostLocalRefusal(ctx->BoundedSemaphore(2).status(), "BoundedSemaphore");
  ExpectHostLocalRefusal(ctx->Event().status(), "Event");
  ExpectHostLocalRefusal(ctx->Condition().status(), "Condition");
  ExpectHostLocalRefusal(ctx->Barrier(2).status(), "Barrier");
  ExpectHostLocalRefusal(ctx->Queue().status(), "Queue");
  ExpectHostLocalRefusal(ctx->SimpleQueue().status(), "SimpleQueue");
  ExpectHostLocalRefusal(ctx->JoinableQueue().status(), "JoinableQueue");
  ExpectHostLocalRefusal(ctx->Value<int64_t>(1).status(), "Value");
  ExpectHostLocalRefusal(ctx->Array<int32_t>(4).status(), "Array");
  ExpectHostLocalRefusal(ctx->SharedMemory(std::nullopt, true, 4096).status(), "SharedMemory");
  absl::StatusOr<mp::Lock> lock = (*mp::GetContext("spawn"))->Lock();
  ASSERT_TRUE(lock.ok());
  ExpectHostLocalRefusal(ctx->Condition(*lock).status(), "Condition");
}

TEST(MpiContextTest, WhatIsNotBuiltYetSaysSo) {
  EXPECT_EQ(Mpi()->Pipe(false).status().code(), absl::StatusCode::kUnimplemented);
}

// Sets d[key] = 7 through a proxy of the mpi context's Manager.
int SetSeven(mp::DictProxy<std::string, int64_t> d, std::string key) {
  return d.Set(key, 7).ok() ? 0 : 1;
}

TEST(MpiContextTest, ManagerProxiesWorkInMpiProcesses) {
  absl::StatusOr<mp::Manager> m = Mpi()->Manager();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(absl::StartsWith(m->address(), "/")) << m->address();  // TCP, not a Unix socket
  absl::StatusOr<mp::DictProxy<std::string, int64_t>> d = m->Dict<std::string, int64_t>();
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<mp::Process> p = Mpi()->Process<&SetSeven>(*d, std::string("k"));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->Start().ok());
  ASSERT_TRUE(p->Join(absl::Seconds(60)).ok());
  EXPECT_EQ(p->ExitCode(), 0);
  absl::StatusOr<int64_t> v = d->Get("k");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 7);
  EXPECT_TRUE(m->Shutdown().ok());
}

// The child's end of an mpi Pipe: echoes strings until end of file, then answers how many.
int Echo(mp::Connection conn) {
  int n = 0;
  for (;;) {
    absl::StatusOr<std::string> s = conn.Recv<std::string>();
    if (!s.ok()) return s.status().code() == absl::StatusCode::kOutOfRange ? 100 + n : 1;
    ++n;
    if (!conn.Send(*s + "!").ok()) return 2;
  }
}

// Closes its end at once (its parent then sees end of file).
int CloseAtOnce(mp::Connection conn) {
  conn.Close();
  return 0;
}

TEST(MpiContextTest, PipeEndsReachAnMpiChild) {
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = Mpi()->Pipe();
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  absl::StatusOr<mp::Process> p = Mpi()->Process<&Echo>(std::move(pipe->second));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->Start().ok());
  mp::Connection& conn = pipe->first;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(conn.Send(std::string(i == 2 ? 1 << 20 : 5, 'a' + i)).ok());
    absl::StatusOr<bool> ready = conn.Poll(absl::Seconds(60));
    ASSERT_TRUE(ready.ok() && *ready) << ready.status();
    absl::StatusOr<std::string> back = conn.Recv<std::string>();
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, std::string(i == 2 ? 1 << 20 : 5, 'a' + i) + "!");
  }
  conn.Close();  // the child sees end of file
  ASSERT_TRUE(p->Join(absl::Seconds(60)).ok());
  EXPECT_EQ(p->ExitCode(), 103);
}

TEST(MpiContextTest, AnMpiChildsEndClosingIsEndOfFileHere) {
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = Mpi()->Pipe();
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  absl::StatusOr<mp::Process> p = Mpi()->Process<&CloseAtOnce>(std::move(pipe->second));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->Start().ok());
  absl::StatusOr<std::string> eof = pipe->first.Recv<std::string>();
  EXPECT_EQ(eof.status().code(), absl::StatusCode::kOutOfRange) << eof.status();
  ASSERT_TRUE(p->Join(absl::Seconds(60)).ok());
}

TEST(MpiContextTest, AKilledMpiChildIsEndOfFileHere) {
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = Mpi()->Pipe();
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  absl::StatusOr<mp::Process> p = Mpi()->Process<&Echo>(std::move(pipe->second));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->Start().ok());
  ASSERT_TRUE(pipe->first.Send(std::string("x")).ok());
  ASSERT_TRUE(pipe->first.Recv<std::string>().ok());
  ASSERT_TRUE(p->Kill().ok());
  absl::StatusOr<std::string> eof = pipe->first.Recv<std::string>();
  EXPECT_TRUE(eof.status().code() == absl::StatusCode::kOutOfRange ||
              eof.status().code() == absl::StatusCode::kDataLoss)
      << eof.status();
  ASSERT_TRUE(p->Join(absl::Seconds(60)).ok());
}

TEST(MpiContextTest, AHostLocalPipeEndIsRefusedNamingTheMpiPipe) {
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> local =
      (*mp::GetContext("spawn"))->Pipe();
  ASSERT_TRUE(local.ok());
  absl::StatusOr<mp::Process> p = Mpi()->Process<&Echo>(std::move(local->second));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition) << p.status();
  EXPECT_TRUE(absl::StrContains(p.status().message(), "GetContext(\"mpi\")->Pipe()")) << p.status();
}

TEST(MpiContextTest, ProcessesRefuseHostLocalArguments) {
  absl::StatusOr<mp::Queue> q = (*mp::GetContext("spawn"))->Queue();
  ASSERT_TRUE(q.ok());
  absl::StatusOr<mp::Process> p = Mpi()->Process<&TakeQueue>(*q);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition) << p.status();
  EXPECT_TRUE(absl::StrContains(p.status().message(), "Manager")) << p.status();
}

}  // namespace
}  // namespace mp_test
