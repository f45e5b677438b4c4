// Copyright 2026 The mp Authors.
//
// Contexts as factories, and the cross-context rules of context.h, one test per cell of the table.

#include "context/context.h"

#include <unistd.h>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "channels/test_transports.h"
#include "gtest/gtest.h"
#include "start_methods/spawn.h"
#include "start_methods/test_util.h"

namespace ctx_test {

using ::absl::StatusCode;

// Registered functions (targets of every method).
int Add(int64_t a, int64_t b) { return static_cast<int>(a + b); }

// Takes the lock, puts (tag, value) on the queue, releases.
absl::Status PutUnderLock(mp::Lock lock, mp::Queue queue, std::string tag, int64_t value) {
  absl::StatusOr<bool> got = lock.Acquire(true, absl::Seconds(60));
  if (!got.ok()) return got.status();
  if (!*got) return absl::DeadlineExceededError("lock not acquired in 60 s");
  absl::Status put = queue.Put(std::make_pair(tag, value), true, absl::Seconds(60));
  absl::Status released = lock.Release();
  return put.ok() ? released : put;
}

int UseEvent(mp::Event event) {
  event.Set();
  return 0;
}
int UseLocks(std::vector<mp::Lock> locks) { return static_cast<int>(locks.size()); }
// Connections own their descriptor (move-only): the target gets the child's own by value.
int UseConnection(mp::Connection conn) { return conn.Send(std::string("hello")).ok() ? 0 : 1; }

class ContextRulesTest : public ::testing::TestWithParam<std::string> {
 protected:
  mp::Context* ctx() const { return *mp::GetContext(GetParam()); }
  bool is_fork() const { return GetParam() == "fork"; }

  // Starts p, joins it (bounded), returns its exit code.
  int RunToExit(mp::Process p) {
    p = guard_.Add(std::move(p));
    EXPECT_TRUE(p.Start().ok());
    EXPECT_TRUE(p.Join(absl::Seconds(60)).ok());
    const std::optional<int> code = p.ExitCode();
    EXPECT_TRUE(code.has_value()) << "child did not end";
    return code.value_or(-1000);
  }

  mp::testing::ChildGuard guard_;
};

TEST_P(ContextRulesTest, ContextKnowsItsMethodAndDomain) {
  EXPECT_EQ(ctx()->method(), GetParam());
  EXPECT_EQ(ctx()->start_method()->Name(), GetParam());
  EXPECT_EQ(ctx()->domain(), is_fork() ? mp::ShmDomain::kFork : mp::ShmDomain::kTransferable);
  absl::StatusOr<mp::Lock> lock = ctx()->Lock();
  ASSERT_TRUE(lock.ok());
  EXPECT_EQ(lock->domain(), ctx()->domain());
  absl::StatusOr<mp::Queue> q = ctx()->Queue();
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->domain(), ctx()->domain());
}

// Row "registered function": ok for every method.
TEST_P(ContextRulesTest, RegisteredFunctionRunsEverywhere) {
  absl::StatusOr<mp::Process> p = ctx()->Process<&Add>(int64_t{2}, int64_t{3});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(RunToExit(*std::move(p)), 5);
}

// Row "any callable": fork only.
TEST_P(ContextRulesTest, CallableOnlyUnderFork) {
  absl::StatusOr<mp::Process> p = ctx()->Process(mp::Target::Callable([] { return 7; }));
  if (is_fork()) {
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(RunToExit(*std::move(p)), 7);
  } else {
    ASSERT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_TRUE(absl::StrContains(p.status().message(), GetParam())) << p.status();
    EXPECT_TRUE(absl::StrContains(p.status().message(), "mp::Call<&Function>")) << p.status();
  }
}

// Row "fork-domain object": fork only; refused at construction, naming object, context and fix.
TEST_P(ContextRulesTest, ForkDomainObjectOnlyUnderFork) {
  mp::Context* fork = *mp::GetContext("fork");
  absl::StatusOr<mp::Event> event = fork->Event();
  ASSERT_TRUE(event.ok());
  absl::StatusOr<mp::Process> p = ctx()->Process<&UseEvent>(*event);
  if (is_fork()) {
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(RunToExit(*std::move(p)), 0);
    EXPECT_TRUE(event->IsSet());
  } else {
    ASSERT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_TRUE(absl::StrContains(
        p.status().message(),
        absl::StrCat("Event was created by the 'fork' context and cannot be passed to a '",
                     GetParam(), "' process")))
        << p.status();
    EXPECT_TRUE(absl::StrContains(p.status().message(),
                                  absl::StrCat("mp::GetContext(\"", GetParam(), "\")->Event()")))
        << p.status();
  }
}

int UseQueue(mp::Queue q) { return q.Put(int64_t{1}).ok() ? 0 : 1; }

// Queues follow the same rule as the sync primitives.
TEST_P(ContextRulesTest, ForkDomainQueueOnlyUnderFork) {
  absl::StatusOr<mp::Queue> q = (*mp::GetContext("fork"))->Queue();
  ASSERT_TRUE(q.ok());
  absl::StatusOr<mp::Process> p = ctx()->Process<&UseQueue>(*q);
  if (is_fork()) {
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(RunToExit(*std::move(p)), 0);
    EXPECT_EQ(*q->Get<int64_t>(true, absl::Seconds(10)), 1);
  } else {
    ASSERT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_TRUE(absl::StrContains(p.status().message(),
                                  absl::StrCat("mp::GetContext(\"", GetParam(), "\")->Queue()")))
        << p.status();
  }
}

// Nested fork-domain objects are found too.
TEST_P(ContextRulesTest, NestedForkDomainObjectsAreFound) {
  mp::Context* fork = *mp::GetContext("fork");
  std::vector<mp::Lock> locks = {*ctx()->Lock(), *fork->Lock()};
  absl::StatusOr<mp::Process> p = ctx()->Process<&UseLocks>(locks);
  if (is_fork()) {
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(RunToExit(*std::move(p)), 2);
  } else {
    ASSERT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_TRUE(absl::StrContains(p.status().message(), "Lock was created by the 'fork' context"))
        << p.status();
  }
}

// Row "transferable object": ok for every method, and the child really uses it.
TEST_P(ContextRulesTest, TransferableObjectsGoEverywhere) {
  mp::Context* spawn = *mp::GetContext("spawn");
  absl::StatusOr<mp::Lock> lock = spawn->Lock();
  absl::StatusOr<mp::Queue> queue = spawn->Queue();
  ASSERT_TRUE(lock.ok() && queue.ok());
  absl::StatusOr<mp::Process> p =
      ctx()->Process<&PutUnderLock>(*lock, *queue, std::string(GetParam()), int64_t{42});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(RunToExit(*std::move(p)), 0);
  absl::StatusOr<std::pair<std::string, int64_t>> got =
      queue->Get<std::pair<std::string, int64_t>>(true, absl::Seconds(60));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->first, GetParam());
  EXPECT_EQ(got->second, 42);
  EXPECT_FALSE(lock->Locked());
}

// Connections are descriptors: every context's Pipe (shared memory, the default) goes to every
// method, and so does a socket Pipe; duplex and one-way (the child gets the write end).
class ContextPipeTest
    : public ::testing::TestWithParam<std::tuple<std::string, mp::ConnectionTransport>> {
 protected:
  mp::Context* ctx() const { return *mp::GetContext(std::get<0>(GetParam())); }
  mp::ConnectionTransport transport() const { return std::get<1>(GetParam()); }
  mp::testing::ChildGuard guard_;
};

INSTANTIATE_TEST_SUITE_P(AllMethodsAndTransports, ContextPipeTest,
                         ::testing::Combine(::testing::Values(std::string("fork"),
                                                              std::string("spawn"),
                                                              std::string("forkserver")),
                                            mp::testing::AllTransports()),
                         [](const ::testing::TestParamInfo<ContextPipeTest::ParamType>& info) {
                           return std::get<0>(info.param) + "_" +
                                  mp::testing::TransportName(std::get<1>(info.param));
                         });

TEST_P(ContextPipeTest, PipeEndsGoEverywhere) {
  mp::Context* fork = *mp::GetContext("fork");
  for (bool duplex : {true, false}) {
    SCOPED_TRACE(duplex ? "duplex" : "one-way");
    // The shared-memory transport is what a Context's Pipe gives.
    absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe =
        transport() == mp::ConnectionTransport::kSharedMemory ? fork->Pipe(duplex)
                                                              : mp::Pipe(duplex, transport());
    ASSERT_TRUE(pipe.ok()) << pipe.status();
    EXPECT_EQ(pipe->first.transport(), transport());
    absl::StatusOr<mp::Process> p = ctx()->Process<&UseConnection>(std::move(pipe->second));
    ASSERT_TRUE(p.ok()) << p.status();
    mp::Process started = guard_.Add(*std::move(p));
    ASSERT_TRUE(started.Start().ok());
    absl::StatusOr<std::string> got = pipe->first.Recv<std::string>();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "hello");
    // The child's end was the only copy: its exit is end of file.
    absl::StatusOr<bool> eof = pipe->first.Poll(absl::Seconds(60));
    ASSERT_TRUE(eof.ok() && *eof) << "no end of file within 60 s";
    EXPECT_EQ(pipe->first.Recv<std::string>().status().code(), StatusCode::kOutOfRange);
    ASSERT_TRUE(started.Join(absl::Seconds(60)).ok());
    EXPECT_EQ(started.ExitCode(), 0);
  }
}

TEST_P(ContextRulesTest, ConditionRefusesALockOfAnotherDomain) {
  const char* other = is_fork() ? "spawn" : "fork";
  absl::StatusOr<mp::Lock> lock = (*mp::GetContext(other))->Lock();
  ASSERT_TRUE(lock.ok());
  absl::StatusOr<mp::Condition> c = ctx()->Condition(*lock);
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition);
  absl::StatusOr<mp::Condition> own = ctx()->Condition(*ctx()->Lock());
  EXPECT_TRUE(own.ok()) << own.status();
  EXPECT_TRUE(ctx()->Condition().ok());
}

TEST_P(ContextRulesTest, EveryFactoryWorks) {
  EXPECT_TRUE(ctx()->RLock().ok());
  EXPECT_TRUE(ctx()->Semaphore(3).ok());
  EXPECT_TRUE(ctx()->BoundedSemaphore(2).ok());
  EXPECT_TRUE(ctx()->SimpleQueue().ok());
  EXPECT_TRUE(ctx()->JoinableQueue(4).ok());
  EXPECT_TRUE(ctx()->Barrier(2).ok());
  EXPECT_TRUE(ctx()->Pipe(/*duplex=*/false).ok());
  EXPECT_EQ(ctx()->Semaphore(-1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ctx()->Barrier(0).status().code(), StatusCode::kInvalidArgument);
}

int64_t Square(int64_t x) { return x * x; }
absl::Status AddToValue(mp::Value<int64_t> v, int64_t n) {
  absl::StatusOr<int64_t> old = v.Get();
  if (!old.ok()) return old.status();
  return v.Set(*old + n);
}

TEST_P(ContextRulesTest, PoolRunsWithTheContextsStartMethod) {
  absl::StatusOr<mp::Pool> pool = ctx()->Pool(2);
  ASSERT_TRUE(pool.ok()) << pool.status();
  absl::StatusOr<std::vector<int64_t>> squares = pool->Map<&Square>(std::vector<int64_t>{1, 2, 3});
  ASSERT_TRUE(squares.ok()) << squares.status();
  EXPECT_EQ(*squares, (std::vector<int64_t>{1, 4, 9}));
  pool->Close();
  ASSERT_TRUE(pool->Join(absl::Seconds(60)).ok());
}

// concurrent.futures.ProcessPoolExecutor(mp_context=ctx): the context chooses the start method.
TEST_P(ContextRulesTest, ProcessPoolExecutorRunsWithTheContextsStartMethod) {
  absl::StatusOr<mp::ProcessPoolExecutor> executor = ctx()->ProcessPoolExecutor({.max_workers = 1});
  ASSERT_TRUE(executor.ok()) << executor.status();
  mp::Future<int64_t> f = executor->Submit<&Square>(int64_t{12});
  absl::StatusOr<int64_t> v = f.Result(absl::Seconds(60));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 144);

  absl::StatusOr<mp::ProcessPoolExecutor> both =
      ctx()->ProcessPoolExecutor({.max_workers = 1, .method = mp::SpawnStartMethod()});
  EXPECT_EQ(both.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(both.status().message().find("leave it null"), absl::string_view::npos)
      << both.status();
}

// A manager's initializer, run in its server process: sets the event it was given.
absl::Status SignalFromServer(mp::Event started, std::string tag) {
  if (tag != "server") return absl::InvalidArgumentError("wrong tag: " + tag);
  started.Set();
  return absl::OkStatus();
}

// ctx.Manager(): a server started by the context's method; its initializer's arguments (a shared
// object of the context's domain too) reach the server process.
TEST_P(ContextRulesTest, ManagerRunsWithTheContextsStartMethodAndInitializer) {
  absl::StatusOr<mp::Event> started = ctx()->Event();
  ASSERT_TRUE(started.ok()) << started.status();
  absl::StatusOr<mp::Manager> m =
      ctx()->Manager<nullptr, &SignalFromServer>({}, *started, std::string("server"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(started->IsSet());
  absl::StatusOr<mp::DictProxy<int64_t, int64_t>> d = m->Dict<int64_t, int64_t>();
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(d->Set(1, 2).ok());
  EXPECT_EQ(*d->Get(1), 2);
  absl::StatusOr<mp::Manager> refused =
      ctx()->Manager<nullptr, &SignalFromServer>({}, *started, std::string("x"));
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << refused.status();
  absl::StatusOr<mp::Manager> plain = ctx()->Manager();
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE(plain->Shutdown().ok());
}

// Value/Array follow the domain rules like every shared object.
TEST_P(ContextRulesTest, ValueOfTheContextGoesToItsChildren) {
  absl::StatusOr<mp::Value<int64_t>> v = ctx()->Value<int64_t>(40);
  ASSERT_TRUE(v.ok()) << v.status();
  absl::StatusOr<mp::Process> p = ctx()->Process<&AddToValue>(*v, int64_t{2});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(RunToExit(*std::move(p)), 0);
  EXPECT_EQ(*v->Get(), 42);
  absl::StatusOr<mp::Array<double>> a = ctx()->Array<double>(3);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->size(), 3u);

  absl::StatusOr<mp::Value<int64_t>> fork_value = (*mp::GetContext("fork"))->Value<int64_t>(1);
  absl::StatusOr<mp::Process> q = ctx()->Process<&AddToValue>(*fork_value, int64_t{1});
  if (is_fork()) {
    EXPECT_TRUE(q.ok()) << q.status();
  } else {
    EXPECT_EQ(q.status().code(), StatusCode::kFailedPrecondition) << q.status();
  }
}

TEST_P(ContextRulesTest, SharedMemoryIsNamed) {
  absl::StatusOr<mp::SharedMemory> shm = ctx()->SharedMemory(std::nullopt, /*create=*/true, 4096);
  ASSERT_TRUE(shm.ok()) << shm.status();
  absl::StatusOr<mp::SharedMemory> again = ctx()->SharedMemory(std::string(shm->name()));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->size(), shm->size());
  EXPECT_EQ(ctx()->SharedMemory(std::string(shm->name()), /*create=*/true, 4096).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_TRUE(shm->Unlink().ok());
  EXPECT_EQ(ctx()->SharedMemory(std::string(shm->name())).status().code(), StatusCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(AllMethods, ContextRulesTest,
                         ::testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

// Several contexts in one program work together: fork, spawn and forkserver children share one
// transferable Queue and one Lock.
TEST(ContextTest, ChildrenOfEveryMethodShareOneQueueAndLock) {
  mp::Context* spawn = *mp::GetContext("spawn");
  absl::StatusOr<mp::Lock> lock = spawn->Lock();
  absl::StatusOr<mp::Queue> queue = spawn->Queue();
  ASSERT_TRUE(lock.ok() && queue.ok());
  mp::testing::ChildGuard guard;
  std::vector<mp::Process> children;
  for (const char* method : {"fork", "spawn", "forkserver"}) {
    for (int64_t i = 0; i < 3; ++i) {
      absl::StatusOr<mp::Process> p =
          (*mp::GetContext(method))->Process<&PutUnderLock>(*lock, *queue, std::string(method), i);
      ASSERT_TRUE(p.ok()) << p.status();
      children.push_back(guard.Add(*std::move(p)));
    }
  }
  for (mp::Process& p : children) ASSERT_TRUE(p.Start().ok());
  std::map<std::string, int> seen;
  for (size_t i = 0; i < children.size(); ++i) {
    absl::StatusOr<std::pair<std::string, int64_t>> got =
        queue->Get<std::pair<std::string, int64_t>>(true, absl::Seconds(60));
    ASSERT_TRUE(got.ok()) << got.status();
    ++seen[got->first];
  }
  for (mp::Process& p : children) {
    ASSERT_TRUE(p.Join(absl::Seconds(60)).ok());
    EXPECT_EQ(p.ExitCode(), std::optional<int>(0));
  }
  EXPECT_EQ(seen, (std::map<std::string, int>{{"fork", 3}, {"forkserver", 3}, {"spawn", 3}}));
}

TEST(ContextTest, UnknownMethodIsInvalidArgument) {
  absl::StatusOr<mp::Context*> c = mp::GetContext("threads");
  ASSERT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(c.status().message(), "'threads'"));
  EXPECT_TRUE(absl::StrContains(c.status().message(), "forkserver, fork, spawn"));
}

TEST(ContextTest, GetContextReturnsOneContextPerMethod) {
  EXPECT_EQ(*mp::GetContext("spawn"), *mp::GetContext("spawn"));
  EXPECT_NE(*mp::GetContext("spawn"), *mp::GetContext("fork"));
}

}  // namespace ctx_test
