// Copyright 2026 The mp Authors.
//
// Pool's contract, for every start method (pool_test_cases.h): every call, failing tasks, the
// initializer, maxtasksperchild, a worker SIGKILLed mid-task (deterministic: the task reports its
// pid through a FIFO and blocks; the test kills it), a stopped worker, Close/Terminate/Join rules.

#include "pool/pool_test_cases.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "pool/test_util.h"

namespace pool_test {

using ::absl::StatusCode;

int64_t Square(int64_t x) { return x * x; }
std::string Join2(std::string a, int64_t b) { return absl::StrCat(a, ":", b); }
absl::StatusOr<int64_t> FailOnSeven(int64_t x) {
  if (x == 7) return absl::InvalidArgumentError("seven is not allowed");
  return x;
}
absl::Status NothingUnlessNegative(int64_t x) {
  return x < 0 ? absl::OutOfRangeError(absl::StrCat("negative: ", x)) : absl::OkStatus();
}
int64_t Pid(int64_t) { return getpid(); }
std::string Echo(std::string s) { return s; }

int64_t g_init_value = 0;
absl::Status SetInitValue(int64_t v) {
  if (v < 0) return absl::PermissionDeniedError("initializer refused");
  g_init_value = v;
  return absl::OkStatus();
}
int64_t InitValue(int64_t x) { return g_init_value + x; }

// Writes this worker's pid (decimal, newline) into the FIFO at `fifo` and blocks until killed.
// With an empty path it returns at once.
absl::StatusOr<int64_t> ReportAndBlock(std::string fifo) {
  if (fifo.empty()) return int64_t{getpid()};
  const int fd = open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError("open fifo");
  const std::string line = absl::StrCat(getpid(), "\n");
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    return absl::InternalError("write fifo");
  }
  close(fd);
  for (;;) pause();
}

std::string FifoPathFor(int64_t token);
constexpr int64_t kMinToken = int64_t{1} << 40;

// Arithmetic in and out (the batched fast path): a task whose argument is a token (>= kMinToken)
// reports its pid through FifoPathFor(token) and blocks until killed.
int64_t BlockAtToken(int64_t x) {
  if (x >= kMinToken) {
    absl::StatusOr<int64_t> never = ReportAndBlock(FifoPathFor(x));
    return never.ok() ? *never : -1;
  }
  return x * 10;
}

// Writes this worker's pid into the FIFO `ready`, then blocks until the test writes a byte into the
// FIFO `release` (or closes it); returns the pid.
int64_t BlockUntilReleased(std::string ready, std::string release) {
  return mp::pool_testing::ReportAndAwaitRelease(ready, absl::StrCat(getpid(), "\n"), release)
             ? getpid()
             : -1;
}

// Appends "<x>\n" to the file at `log` (O_APPEND: one write per task), returns this worker's pid.
absl::StatusOr<int64_t> AppendToLog(std::string log, int64_t x) {
  const int fd = open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError("open log");
  const std::string line = absl::StrCat(x, "\n");
  const bool wrote = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  close(fd);
  if (!wrote) return absl::InternalError("write log");
  return int64_t{getpid()};
}

// The FIFO BlockAtToken uses, named after a random token that travels as the task's argument (an
// environment variable would not reach forkserver children; pids repeat across sandboxed runs).
std::string FifoPathFor(int64_t token) { return absl::StrCat("/tmp/mp-pool-test-fifo-", token); }

// A FIFO, removed at the end.
class Fifo {
 public:
  explicit Fifo(std::string path = "") {
    if (path.empty()) {
      char tmpl[] = "/tmp/mp-pool-test-XXXXXX";
      dir_ = mkdtemp(tmpl);
      path = dir_ + "/fifo";
    }
    path_ = std::move(path);
    unlink(path_.c_str());
    mkfifo(path_.c_str(), 0600);
  }
  ~Fifo() {
    unlink(path_.c_str());
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }
  // Reads the pid line a task writes; -1 if none comes within 60 s (the test fails, not hangs).
  int ReadPid() const {
    const int fd = open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    std::string text;
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 60000) <= 0) break;
      char c;
      const ssize_t n = read(fd, &c, 1);
      if (n == 1 && c == '\n') break;
      if (n == 1) {
        text.push_back(c);
      } else if (n == 0 || errno != EAGAIN) {
        break;
      }
    }
    close(fd);
    int pid = 0;
    return absl::SimpleAtoi(text, &pid) ? pid : -1;
  }

 private:
  std::string dir_, path_;
};

TEST_P(PoolTest, MapStarmapApply) {
  mp::Pool pool = MakePool();
  EXPECT_EQ(pool.processes(), 2);
  std::vector<int64_t> xs;
  for (int64_t i = 0; i < 1000; ++i) xs.push_back(i);
  absl::StatusOr<std::vector<int64_t>> squares = pool.Map<&Square>(xs);
  ASSERT_TRUE(squares.ok()) << squares.status();
  ASSERT_EQ(squares->size(), 1000u);
  for (int64_t i = 0; i < 1000; ++i) EXPECT_EQ((*squares)[i], i * i);
  // Conversions (int -> int64_t) and chunk sizes that do not divide the input.
  std::vector<int> small = {1, 2, 3, 4, 5};
  EXPECT_EQ(*pool.Map<&Square>(small, 2), (std::vector<int64_t>{1, 4, 9, 16, 25}));
  EXPECT_TRUE(pool.Map<&Square>(std::vector<int64_t>{})->empty());
  std::vector<std::pair<std::string, int64_t>> pairs = {{"a", 1}, {"b", 2}};
  EXPECT_EQ(*pool.Starmap<&Join2>(pairs), (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(*pool.Apply<&Join2>(std::string("x"), int64_t{9}), "x:9");
  mp::AsyncResult<int64_t> r = pool.ApplyAsync<&Square>(int64_t{12});
  EXPECT_TRUE(r.Wait(absl::Seconds(60)));
  EXPECT_TRUE(r.Ready());
  EXPECT_TRUE(*r.Successful());
  EXPECT_EQ(*r.Get(), 144);
  pool.Close();
  EXPECT_TRUE(pool.Join(absl::Seconds(60)).ok());
}

// Chunks and results far larger than a socket buffer, both ways at once: the pool never blocks on a
// send while the worker blocks sending results.
TEST_P(PoolTest, LargeChunksBothWays) {
  mp::Pool pool = MakePool({.processes = 1});
  std::vector<std::string> items;
  for (int i = 0; i < 8; ++i) items.push_back(std::string(1 << 20, static_cast<char>('a' + i)));
  absl::StatusOr<std::vector<std::string>> r = pool.Map<&Echo>(items, 2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, items);
}

TEST_P(PoolTest, ImapAndImapUnordered) {
  mp::Pool pool = MakePool();
  std::vector<int64_t> xs = {3, 1, 4, 1, 5, 9, 2, 6};
  mp::ImapIterator<int64_t> it = pool.Imap<&Square>(xs);
  for (int64_t x : xs) {
    absl::StatusOr<int64_t> v = it.Next(absl::Seconds(60));
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, x * x);
  }
  EXPECT_EQ(it.Next().status().code(), StatusCode::kOutOfRange);
  mp::ImapIterator<int64_t> un = pool.ImapUnordered<&Square>(xs, 3);
  std::multiset<int64_t> got;
  for (size_t i = 0; i < xs.size(); ++i) got.insert(*un.Next(absl::Seconds(60)));
  std::multiset<int64_t> want;
  for (int64_t x : xs) want.insert(x * x);
  EXPECT_EQ(got, want);
  EXPECT_EQ(un.Next().status().code(), StatusCode::kOutOfRange);
}

TEST_P(PoolTest, FailingTasksReturnTheirStatus) {
  mp::Pool pool = MakePool();
  std::vector<int64_t> xs = {1, 7, 3, 7};
  absl::StatusOr<std::vector<int64_t>> m = pool.Map<&FailOnSeven>(xs, 1);
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m.status().message(), "seven is not allowed");
  mp::ImapIterator<int64_t> it = pool.Imap<&FailOnSeven>(xs);
  EXPECT_EQ(*it.Next(), 1);
  EXPECT_EQ(it.Next().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*it.Next(), 3);
  mp::AsyncResult<mp::PoolUnit> bad = pool.ApplyAsync<&NothingUnlessNegative>(int64_t{-4});
  EXPECT_EQ(bad.Get().status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(bad.Get().status().message(), "negative: -4");
  EXPECT_FALSE(*bad.Successful());
  EXPECT_TRUE(pool.Apply<&NothingUnlessNegative>(int64_t{4}).ok());
}

// Results are kept by runs (one per chunk, split around failures); check the bookkeeping on many
// items: results in order, the lowest failure wins, empty (PoolUnit) results, every index of an
// unordered iteration exactly once.
TEST_P(PoolTest, ManyItemsInRunsAroundFailures) {
  mp::Pool pool = MakePool();
  std::vector<int64_t> xs(1000);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<int64_t>(i);
  absl::StatusOr<std::vector<int64_t>> squares = pool.Map<&Square>(xs, 7);
  ASSERT_TRUE(squares.ok()) << squares.status();
  ASSERT_EQ(squares->size(), xs.size());
  for (size_t i = 0; i < xs.size(); ++i) ASSERT_EQ((*squares)[i], xs[i] * xs[i]) << i;

  absl::StatusOr<std::vector<mp::PoolUnit>> units = pool.Map<&NothingUnlessNegative>(xs, 9);
  ASSERT_TRUE(units.ok()) << units.status();
  EXPECT_EQ(units->size(), xs.size());

  std::vector<int64_t> some_negative = xs;
  some_negative[500] = -500;
  some_negative[123] = -123;
  mp::AsyncResult<std::vector<mp::PoolUnit>> failed =
      pool.MapAsync<&NothingUnlessNegative>(some_negative, 50);
  EXPECT_EQ(failed.Get().status().message(), "negative: -123");
  EXPECT_FALSE(*failed.Successful());

  // A failure in the middle of a chunk splits its run: the items around it keep their results.
  std::vector<int64_t> with_seven = {5, 6, 7, 8, 9};
  mp::ImapIterator<int64_t> around = pool.Imap<&FailOnSeven>(with_seven, 5);
  EXPECT_EQ(*around.Next(), 5);
  EXPECT_EQ(*around.Next(), 6);
  EXPECT_EQ(around.Next().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*around.Next(), 8);
  EXPECT_EQ(*around.Next(), 9);

  mp::ImapIterator<int64_t> un = pool.ImapUnordered<&Square>(xs, 13);
  std::vector<int> seen(xs.size(), 0);
  for (size_t i = 0; i < xs.size(); ++i) {
    absl::StatusOr<int64_t> v = un.Next(absl::Seconds(60));
    ASSERT_TRUE(v.ok()) << v.status();
    const int64_t root = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(*v))));
    ASSERT_EQ(root * root, *v);
    ++seen[static_cast<size_t>(root)];
  }
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << i;
  EXPECT_EQ(un.Next().status().code(), StatusCode::kOutOfRange);
}

TEST_P(PoolTest, Initializer) {
  absl::StatusOr<mp::PoolInitializer> init = mp::MakePoolInitializer<&SetInitValue>(int64_t{100});
  ASSERT_TRUE(init.ok());
  mp::Pool pool = MakePool({.processes = 2, .initializer = *init});
  EXPECT_EQ(*pool.Map<&InitValue>(std::vector<int64_t>{1, 2}), (std::vector<int64_t>{101, 102}));
}

TEST_P(PoolTest, FailingInitializerFailsTheTasks) {
  absl::StatusOr<mp::PoolInitializer> init = mp::MakePoolInitializer<&SetInitValue>(int64_t{-1});
  ASSERT_TRUE(init.ok());
  mp::Pool pool = MakePool({.processes = 1, .initializer = *init});
  absl::StatusOr<int64_t> r = pool.ApplyAsync<&InitValue>(int64_t{1}).Get(absl::Seconds(60));
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find("initializer refused"), absl::string_view::npos)
      << r.status();
  pool.Close();
  EXPECT_TRUE(pool.Join(absl::Seconds(60)).ok());
}

TEST_P(PoolTest, MaxTasksPerChildReplacesWorkers) {
  mp::Pool pool = MakePool({.processes = 1, .maxtasksperchild = 1});
  std::set<int64_t> pids;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<int64_t> pid = pool.Apply<&Pid>(int64_t{0});
    ASSERT_TRUE(pid.ok()) << pid.status();
    pids.insert(*pid);
  }
  EXPECT_EQ(pids.size(), 3u);
  // With chunks: 4 items in chunks of 2 -> 2 workers' worth.
  absl::StatusOr<std::vector<int64_t>> m = pool.Map<&Pid>(std::vector<int64_t>{0, 0, 0, 0}, 2);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[0], (*m)[1]);
  EXPECT_NE((*m)[1], (*m)[2]);
  pool.Close();
  EXPECT_TRUE(pool.Join(absl::Seconds(60)).ok());
}

TEST_P(PoolTest, KilledWorkerFailsOnlyItsTaskAndIsReplaced) {
  mp::Pool pool = MakePool();
  Fifo fifo;
  std::vector<std::string> args = {"", "", fifo.path(), "", "", ""};
  mp::ImapIterator<int64_t> it = pool.Imap<&ReportAndBlock>(args, 1);
  const int victim = fifo.ReadPid();
  ASSERT_GT(victim, 0);
  std::vector<int> before = pool.WorkerPids();
  EXPECT_NE(std::find(before.begin(), before.end(), victim), before.end());
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  for (size_t i = 0; i < args.size(); ++i) {
    absl::StatusOr<int64_t> v = it.Next(absl::Seconds(60));
    if (i == 2) {
      EXPECT_EQ(v.status().code(), StatusCode::kAborted) << v.status();
      EXPECT_NE(v.status().message().find(absl::StrCat("worker pid ", victim, " died (signal 9)")),
                absl::string_view::npos)
          << v.status();
      EXPECT_NE(v.status().message().find("task 2"), absl::string_view::npos) << v.status();
    } else {
      // Every other task succeeds. Some may carry the victim's pid even with a higher index: a
      // worker runs its chunks in order, but an idle worker takes back chunks another one has not
      // started, so the victim may have finished tasks 3.. before it took task 2 over.
      EXPECT_TRUE(v.ok()) << i << ": " << v.status();
    }
  }
  // A new worker took its place.
  std::vector<int64_t> pids = *pool.Map<&Pid>(std::vector<int64_t>(20, 0), 1);
  EXPECT_EQ(std::find(pids.begin(), pids.end(), victim), pids.end());
  EXPECT_EQ(pool.WorkerPids().size(), 2u);
  pool.Close();
  EXPECT_TRUE(pool.Join(absl::Seconds(60)).ok());
}

TEST_P(PoolTest, KilledWorkerInABatchedChunk) {
  absl::BitGen gen;
  const int64_t token = absl::Uniform<int64_t>(gen, kMinToken, kMinToken << 10);
  Fifo fifo(FifoPathFor(token));
  mp::Pool pool = MakePool({.processes = 1});
  std::vector<int64_t> xs = {0, 1, 2, token, 4, 5, 6, 7};
  mp::ImapIterator<int64_t> it = pool.Imap<&BlockAtToken>(xs, /*chunksize=*/8);
  const int victim = fifo.ReadPid();
  ASSERT_GT(victim, 0);
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  for (int64_t x : xs) {
    absl::StatusOr<int64_t> v = it.Next(absl::Seconds(60));
    if (x < 3) {  // the items before the token
      // Ran in the same chunk before the crash: their results died with the worker.
      EXPECT_EQ(v.status().code(), StatusCode::kAborted) << v.status();
      EXPECT_NE(v.status().message().find("was lost"), absl::string_view::npos) << v.status();
    } else if (x == token) {
      EXPECT_EQ(v.status().code(), StatusCode::kAborted) << v.status();
      EXPECT_NE(v.status().message().find("died (signal 9) while running task 3"),
                absl::string_view::npos)
          << v.status();
    } else {
      ASSERT_TRUE(v.ok()) << x << ": " << v.status();  // not started: run by the new worker
      EXPECT_EQ(*v, x * 10);
    }
  }
}

TEST_P(PoolTest, TimeoutsAndTerminate) {
  mp::Pool pool = MakePool({.processes = 1});
  Fifo fifo;
  mp::AsyncResult<int64_t> blocked = pool.ApplyAsync<&ReportAndBlock>(fifo.path());
  mp::AsyncResult<int64_t> queued = pool.ApplyAsync<&Square>(int64_t{3});
  ASSERT_GT(fifo.ReadPid(), 0);
  EXPECT_EQ(blocked.Get(absl::ZeroDuration()).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(blocked.Ready());
  EXPECT_EQ(blocked.Successful().status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool.Join().code(), StatusCode::kFailedPrecondition);
  pool.Terminate();
  EXPECT_TRUE(pool.Join(absl::Seconds(60)).ok());
  EXPECT_EQ(blocked.Get().status().code(), StatusCode::kCancelled);
  EXPECT_EQ(queued.Get().status().code(), StatusCode::kCancelled);
  EXPECT_EQ(pool.Apply<&Square>(int64_t{1}).status().code(), StatusCode::kFailedPrecondition);
}

TEST_P(PoolTest, CloseRunsWhatWasSubmitted) {
  mp::Pool pool = MakePool();
  mp::AsyncResult<std::vector<int64_t>> r = pool.MapAsync<&Square>(std::vector<int64_t>{1, 2, 3});
  pool.Close();
  absl::Status after = pool.Apply<&Square>(int64_t{1}).status();
  EXPECT_EQ(after.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(after.message().find("closed"), absl::string_view::npos) << after;
  EXPECT_TRUE(pool.Join(absl::Seconds(60)).ok());
  EXPECT_EQ(*r.Get(), (std::vector<int64_t>{1, 4, 9}));
  EXPECT_TRUE(pool.WorkerPids().empty());
}

// Lets a BlockUntilReleased task return (open blocks until the task has the FIFO open for reading).
void Release(const Fifo& release) {
  const int fd = open(release.path().c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(write(fd, "x", 1), 1);
  close(fd);
}

// A busy worker does not hold back a task while another worker is idle: the quick Apply runs on the
// other worker while the first task is still blocked.
TEST_P(PoolTest, IdleWorkerTakesTaskWhileAnotherIsBusy) {
  mp::Pool pool = MakePool({.processes = 2});
  Fifo ready, release;
  mp::AsyncResult<int64_t> blocked =
      pool.ApplyAsync<&BlockUntilReleased>(ready.path(), release.path());
  const int busy = ready.ReadPid();
  ASSERT_GT(busy, 0);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<int64_t> quick = pool.ApplyAsync<&Pid>(int64_t{0}).Get(absl::Seconds(60));
    ASSERT_TRUE(quick.ok()) << quick.status();
    EXPECT_NE(*quick, busy);
  }
  absl::StatusOr<std::vector<int64_t>> map =
      pool.MapAsync<&Pid>(std::vector<int64_t>(6, 0), 1).Get(absl::Seconds(60));
  ASSERT_TRUE(map.ok()) << map.status();
  for (int64_t pid : *map) EXPECT_NE(pid, busy);
  EXPECT_FALSE(blocked.Ready());
  Release(release);
  absl::StatusOr<int64_t> first = blocked.Get(absl::Seconds(60));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, busy);
  pool.Close();
  EXPECT_TRUE(pool.Join(absl::Seconds(60)).ok());
}

// With every worker busy, a task may wait as a worker's second chunk; once another worker is free,
// that task comes back to it instead of waiting behind the long one.
TEST_P(PoolTest, QueuedTaskComesBackWhenAnotherWorkerIsFree) {
  mp::Pool pool = MakePool({.processes = 2});
  const std::vector<int> pids = pool.WorkerPids();
  ASSERT_EQ(pids.size(), 2u);
  Fifo ready_a, release_a, ready_b, release_b;
  mp::AsyncResult<int64_t> a =
      pool.ApplyAsync<&BlockUntilReleased>(ready_a.path(), release_a.path());
  const int pid_a = ready_a.ReadPid();
  mp::AsyncResult<int64_t> b =
      pool.ApplyAsync<&BlockUntilReleased>(ready_b.path(), release_b.path());
  const int pid_b = ready_b.ReadPid();
  ASSERT_GT(pid_a, 0);
  ASSERT_GT(pid_b, 0);
  ASSERT_NE(pid_a, pid_b);
  // Both busy: the quick task goes to a worker as its second chunk (the first worker in the
  // pool's order). Free the other worker: the quick task must run there.
  mp::AsyncResult<int64_t> quick = pool.ApplyAsync<&Pid>(int64_t{0});
  const bool a_first = pid_a == pids[0];
  Release(a_first ? release_b : release_a);
  absl::StatusOr<int64_t> freed = (a_first ? b : a).Get(absl::Seconds(60));
  ASSERT_TRUE(freed.ok()) << freed.status();
  absl::StatusOr<int64_t> q = quick.Get(absl::Seconds(60));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(*q, a_first ? pid_b : pid_a);
  EXPECT_FALSE((a_first ? a : b).Ready());
  Release(a_first ? release_a : release_b);
  absl::StatusOr<int64_t> last = (a_first ? a : b).Get(absl::Seconds(60));
  ASSERT_TRUE(last.ok()) << last.status();
  pool.Close();
  EXPECT_TRUE(pool.Join(absl::Seconds(60)).ok());
}

// A stopped worker (SIGSTOP) holds back only the task it has started: chunks it was given but never
// started go to the worker that is free, and run exactly once (the log has every item once after
// the stopped worker was continued and the pool joined).
TEST_P(PoolTest, StoppedWorkerBlocksOnlyWhatItStarted) {
  mp::Pool pool = MakePool({.processes = 2});
  std::vector<int> pids = pool.WorkerPids();
  ASSERT_EQ(pids.size(), 2u);
  // The first worker in the pool's order is the one stopped.
  const int stopped = pids[0], running = pids[1];
  ASSERT_EQ(kill(stopped, SIGSTOP), 0);
  struct Continue {
    int pid;
    ~Continue() { kill(pid, SIGCONT); }
  } resume{stopped};
  char tmpl[] = "/tmp/mp-pool-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, log = dir + "/log";
  struct RemoveDir {
    std::string dir, log;
    ~RemoveDir() {
      unlink(log.c_str());
      rmdir(dir.c_str());
    }
  } remove_dir{dir, log};
  int64_t next = 0;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<int64_t> pid = pool.ApplyAsync<&AppendToLog>(log, next++).Get(absl::Seconds(60));
    ASSERT_TRUE(pid.ok()) << pid.status();
    EXPECT_EQ(*pid, running);
  }
  std::vector<std::pair<std::string, int64_t>> items;
  for (int i = 0; i < 6; ++i) items.emplace_back(log, next++);
  absl::StatusOr<std::vector<int64_t>> map =
      pool.StarmapAsync<&AppendToLog>(items, 1).Get(absl::Seconds(60));
  ASSERT_TRUE(map.ok()) << map.status();
  for (int64_t pid : *map) EXPECT_EQ(pid, running);
  ASSERT_EQ(kill(stopped, SIGCONT), 0);
  pool.Close();
  ASSERT_TRUE(pool.Join(absl::Seconds(60)).ok());
  std::ifstream in(log);
  std::map<int64_t, int> runs;
  for (int64_t x; in >> x;) ++runs[x];
  ASSERT_EQ(runs.size(), static_cast<size_t>(next));
  for (const auto& [x, n] : runs) EXPECT_EQ(n, 1) << "item " << x << " ran " << n << " times";
}

}  // namespace pool_test
