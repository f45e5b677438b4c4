// Copyright 2026 The mp Authors.
//
// PoolInitializer with shared objects in its arguments (CPython's Pool(initializer=init,
// initargs=(lock,))), under every start method: a Lock the workers share with the test, a
// descriptor the caller closed right after MakePoolInitializer (which a replacement worker still
// gets), a fork-domain object refused by spawn and forkserver, and the codec of the initializer as
// it travels to a worker.

#include "pool/initializer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "pool/pool.h"
#include "pool/test_util.h"
#include "start_methods/test_methods.h"
#include "sync/lock.h"

namespace initializer_test {

using ::absl::StatusCode;
using ::mp::pool_testing::KeepLock;
using ::mp::pool_testing::LockCanBeTaken;
using ::mp::pool_testing::LockWasFree;
using ::mp::pool_testing::Pid;

// Writes "<pid>\n" to the descriptor the initializer was given.
absl::Status WritePid(mp::PassedFd fd) {
  const std::string line = absl::StrCat(getpid(), "\n");
  if (write(fd.fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    return absl::InternalError(absl::StrCat("WritePid: write failed, errno ", errno));
  }
  close(fd.fd);
  return absl::OkStatus();
}

// Reads pid lines from `fd` until `count` were read (at most 30 s).
std::vector<int> ReadPids(int fd, size_t count) {
  std::vector<int> pids;
  std::string pending;
  while (pids.size() < count) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 30000) != 1) break;
    char buf[256];
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      int pid = 0;
      EXPECT_TRUE(absl::SimpleAtoi(pending.substr(0, nl), &pid)) << pending;
      pids.push_back(pid);
      pending.erase(0, nl + 1);
    }
  }
  return pids;
}

template <typename M>
class InitializerTest : public ::testing::Test {};
TYPED_TEST_SUITE(InitializerTest, mp::testing::AllStartMethods, mp::testing::StartMethodNames);

// The workers hold the same Lock as the test: while the test holds it no worker can take it, and
// once released every worker can.
TYPED_TEST(InitializerTest, WorkersShareALockGivenToTheInitializer) {
  absl::StatusOr<mp::Lock> lock = mp::Lock::Create(mp::ShmDomain::kTransferable);
  ASSERT_TRUE(lock.ok()) << lock.status();
  absl::StatusOr<mp::PoolInitializer> init = mp::MakePoolInitializer<&KeepLock>(*lock);
  ASSERT_TRUE(init.ok()) << init.status();
  absl::StatusOr<mp::Pool> pool =
      mp::Pool::Create(TypeParam::Get(), {.processes = 2, .initializer = *init});
  ASSERT_TRUE(pool.ok()) << pool.status();
  const std::vector<int64_t> items = {0, 1, 2, 3};

  ASSERT_TRUE(lock->Acquire().ok());
  absl::StatusOr<std::vector<bool>> held = pool->Map<&LockWasFree>(items, 1);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(*held, std::vector<bool>(items.size(), false));

  ASSERT_TRUE(lock->Release().ok());
  // Two workers run these side by side: each waits out the other's brief hold.
  absl::StatusOr<std::vector<bool>> free = pool->Map<&LockCanBeTaken>(items, 1);
  ASSERT_TRUE(free.ok()) << free.status();
  EXPECT_EQ(*free, std::vector<bool>(items.size(), true));
  pool->Close();
  EXPECT_TRUE(pool->Join(absl::Seconds(30)).ok());
}

// The caller closes its descriptor right after MakePoolInitializer: every worker, and the
// replacement of a killed one, still gets it (the initializer keeps a duplicate).
TYPED_TEST(InitializerTest, AReplacementWorkerGetsTheDescriptorTheCallerClosed) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  absl::StatusOr<mp::PoolInitializer> init =
      mp::MakePoolInitializer<&WritePid>(mp::PassedFd{fds[1]});
  ASSERT_TRUE(init.ok()) << init.status();
  close(fds[1]);
  {
    absl::StatusOr<mp::Pool> pool =
        mp::Pool::Create(TypeParam::Get(), {.processes = 2, .initializer = *std::move(init)});
    ASSERT_TRUE(pool.ok()) << pool.status();
    std::vector<int> first = ReadPids(fds[0], 2);
    ASSERT_EQ(first.size(), 2u);
    std::vector<int> workers = pool->WorkerPids();
    EXPECT_EQ(std::set<int>(first.begin(), first.end()),
              std::set<int>(workers.begin(), workers.end()));

    ASSERT_EQ(kill(first[0], SIGKILL), 0);
    std::vector<int> replacement = ReadPids(fds[0], 1);
    ASSERT_EQ(replacement.size(), 1u);
    EXPECT_NE(replacement[0], first[0]);
    EXPECT_NE(replacement[0], first[1]);
    // The pool still works, on the replacement too.
    absl::StatusOr<std::vector<int64_t>> pids = pool->Map<&Pid>(std::vector<int64_t>(8, 0), 1);
    ASSERT_TRUE(pids.ok()) << pids.status();
    pool->Close();
    EXPECT_TRUE(pool->Join(absl::Seconds(30)).ok());
  }
  close(fds[0]);
}

// A fork-domain Lock reaches only fork workers; spawn and forkserver refuse it by name at Create.
TYPED_TEST(InitializerTest, AForkDomainObjectReachesOnlyForkWorkers) {
  absl::StatusOr<mp::Lock> lock = mp::Lock::Create(mp::ShmDomain::kFork);
  ASSERT_TRUE(lock.ok()) << lock.status();
  absl::StatusOr<mp::PoolInitializer> init = mp::MakePoolInitializer<&KeepLock>(*lock);
  ASSERT_TRUE(init.ok()) << init.status();
  absl::StatusOr<mp::Pool> pool =
      mp::Pool::Create(TypeParam::Get(), {.processes = 1, .initializer = *init});
  if (TypeParam::kFreshProcess) {
    ASSERT_FALSE(pool.ok());
    EXPECT_EQ(pool.status().code(), StatusCode::kFailedPrecondition) << pool.status();
    EXPECT_NE(pool.status().message().find("Lock"), absl::string_view::npos) << pool.status();
    return;
  }
  ASSERT_TRUE(pool.ok()) << pool.status();
  ASSERT_TRUE(lock->Acquire().ok());
  absl::StatusOr<std::vector<bool>> held = pool->Map<&LockWasFree>(std::vector<int64_t>{0}, 1);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(*held, std::vector<bool>{false});
  ASSERT_TRUE(lock->Release().ok());
  pool->Close();
  EXPECT_TRUE(pool->Join(absl::Seconds(30)).ok());
}

TEST(WorkerInitializerCodecTest, RoundTripsAndRefusesTruncations) {
  mp::pool_internal::WorkerInitializer in;
  in.function = "ns::Init";
  in.args = std::string("\x01\x02\x03", 3);
  const std::string bytes = mp::Encode(in);  // no FdTable: no descriptors
  absl::StatusOr<mp::pool_internal::WorkerInitializer> out =
      mp::Decode<mp::pool_internal::WorkerInitializer>(bytes);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->function, in.function);
  EXPECT_EQ(out->args, in.args);
  EXPECT_TRUE(out->fds.empty());
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(mp::Decode<mp::pool_internal::WorkerInitializer>(bytes.substr(0, n)).ok()) << n;
  }
}

TEST(WorkerInitializerTest, AnUnregisteredFunctionIsNotFound) {
  mp::pool_internal::WorkerInitializer init;
  init.function = "no::Such";
  absl::Status s = mp::pool_internal::RunInitializer(init);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s;
  EXPECT_NE(s.message().find("no::Such"), absl::string_view::npos) << s;
}

TEST(WorkerInitializerTest, ForkOnlyKindsAreNotedWhileEncoding) {
  mp::pool_internal::WorkerInitializer init;
  init.function = "ns::Init";
  init.fork_only = {"Lock", "Queue"};
  mp::FdTable table;
  {
    mp::ScopedFdTable scope(&table);
    mp::Encode(init);
  }
  EXPECT_EQ(table.fork_only(), (std::vector<std::string>{"Lock", "Queue"}));
}

}  // namespace initializer_test
