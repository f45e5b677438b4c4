// Copyright 2026 The mp Authors.
//
// The "mpi" context: it exists when the program links @mp//mpi:start_method, starts processes
// with Open MPI, and refuses what lives in this host's memory.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "context/context.h"
#include "gtest/gtest.h"

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
  mp::Context* ctx = Mpi();
  EXPECT_EQ(ctx->Pipe().status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(ctx->Manager().status().code(), absl::StatusCode::kUnimplemented);
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
