// Python's docs, "Using a remote manager", run as the docs run it: the server program
// (remote_manager_server.cc) in one process, each client program (remote_manager_client.cc) in
// another; one client puts 'hello', another gets it. A client with the wrong authkey is refused
// and the server goes on serving. The programs are this test's data; it starts them with
// posix_spawn, reads the server's address from its stdout, and stops the server by closing its
// stdin. Every process it starts is killed and reaped whatever the outcome.
//
//   bazel test //tests/examples:remote_manager_test

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/deadline.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace remote_manager_test {
namespace {

using ::testing::HasSubstr;

// A program among this test's runfiles (bazel runs a test in its runfiles tree, the workspace's
// directory there).
std::string Runfile(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  const std::string relative = absl::StrCat("tests/examples/", name);
  if (srcdir == nullptr || workspace == nullptr) return relative;
  return absl::StrCat(srcdir, "/", workspace, "/", relative);
}

// A descriptor closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// A pipe whose ends are not inherited (a spawned child gets only what it is dup2'ed).
absl::Status MakePipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Errno("pipe2");
  read_end = Fd(fds[0]);
  write_end = Fd(fds[1]);
  return absl::OkStatus();
}

// A process this test started: killed and reaped when it goes out of scope unless Wait reaped it.
class Child {
 public:
  // Starts `path args...` with stdin from `in`, stdout from `out` and stderr from `err` (-1: this
  // process's).
  static absl::StatusOr<Child> Spawn(const std::string& path, const std::vector<std::string>& args,
                                     int in, int out, int err) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (in >= 0) posix_spawn_file_actions_adddup2(&actions, in, STDIN_FILENO);
    if (out >= 0) posix_spawn_file_actions_adddup2(&actions, out, STDOUT_FILENO);
    if (err >= 0) posix_spawn_file_actions_adddup2(&actions, err, STDERR_FILENO);
    std::vector<std::string> words = {path};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      return absl::InternalError(absl::StrCat("posix_spawn ", path, ": ", std::strerror(rc)));
    }
    Child child(pid);
    child.pidfd_ = Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (child.pidfd_.get() < 0) return Errno("pidfd_open");
    return child;
  }

  Child(Child&& other) noexcept : pid_(other.pid_), pidfd_(std::move(other.pidfd_)) {
    other.pid_ = -1;
  }
  Child& operator=(Child&&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  // Waits at most `timeout` for it to end and reaps it: its exit code, or -signal.
  absl::StatusOr<int> Wait(absl::Duration timeout) {
    if (pid_ <= 0) return absl::FailedPreconditionError("already reaped");
    absl::StatusOr<short> ready = mp::PollUntil(pidfd_.get(), POLLIN, mp::Deadline::After(timeout));
    if (!ready.ok()) return ready.status();
    if (*ready == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid_, " still runs after ", absl::FormatDuration(timeout)));
    }
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return Errno("waitpid");
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  Fd pidfd_;
};

// Reads `fd` until `stop` returns true for what was read, the end of the file, or the deadline.
absl::StatusOr<std::string> ReadUntil(int fd, mp::Deadline deadline,
                                      bool (*stop)(const std::string&)) {
  std::string out;
  while (!stop(out)) {
    absl::StatusOr<short> ready = mp::PollUntil(fd, POLLIN, deadline);
    if (!ready.ok()) return ready.status();
    if (*ready == 0) {
      return absl::DeadlineExceededError(absl::StrCat("read only '", out, "' before the deadline"));
    }
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read");
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

bool HasLine(const std::string& s) { return s.find('\n') != std::string::npos; }
bool Never(const std::string&) { return false; }

constexpr absl::Duration kTimeout = absl::Seconds(60);

struct ClientRun {
  int exit_code = 0;
  std::string output;  // stdout and stderr
};

class RemoteManagerTest : public ::testing::Test {
 protected:
  // Starts the server on a free loopback port and reads its address.
  void SetUp() override {
    Fd out_read, out_write, in_read;
    ASSERT_TRUE(MakePipe(out_read, out_write).ok());
    ASSERT_TRUE(MakePipe(in_read, server_stdin_).ok());
    absl::StatusOr<Child> server =
        Child::Spawn(Runfile("remote_manager_server"), {"127.0.0.1:0", "abracadabra"},
                     in_read.get(), out_write.get(), -1);
    ASSERT_TRUE(server.ok()) << server.status();
    server_.emplace(*std::move(server));
    out_write.Reset();  // only the server writes it now: its end is this pipe's end
    in_read.Reset();
    absl::StatusOr<std::string> line =
        ReadUntil(out_read.get(), mp::Deadline::After(kTimeout), &HasLine);
    ASSERT_TRUE(line.ok()) << line.status();
    ASSERT_TRUE(HasLine(*line)) << "the server ended before it printed its address: '" << *line
                                << "'";
    address_ = line->substr(0, line->find('\n'));
    ASSERT_THAT(address_, HasSubstr("127.0.0.1:"));
    server_stdout_ = std::move(out_read);
  }

  // The client program with `args`: its exit code and everything it printed.
  ClientRun Client(std::vector<std::string> args) {
    ClientRun run{.exit_code = -1, .output = ""};
    Fd out_read, out_write;
    if (absl::Status s = MakePipe(out_read, out_write); !s.ok()) {
      ADD_FAILURE() << s;
      return run;
    }
    args.insert(args.begin(), absl::StrCat("--address=", address_));
    absl::StatusOr<Child> client =
        Child::Spawn(Runfile("remote_manager_client"), args, -1, out_write.get(), out_write.get());
    if (!client.ok()) {
      ADD_FAILURE() << client.status();
      return run;
    }
    out_write.Reset();
    absl::StatusOr<std::string> output =
        ReadUntil(out_read.get(), mp::Deadline::After(kTimeout), &Never);
    if (!output.ok()) {
      ADD_FAILURE() << output.status();
      return run;  // ~Child kills it
    }
    run.output = *std::move(output);
    absl::StatusOr<int> code = client->Wait(kTimeout);
    if (!code.ok()) {
      ADD_FAILURE() << code.status();
      return run;
    }
    run.exit_code = *code;
    return run;
  }

  // Closing its stdin asks the server to stop: it exits 0.
  void StopServer() {
    server_stdin_.Reset();
    absl::StatusOr<int> code = server_->Wait(kTimeout);
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0);
    server_.reset();
  }

  std::optional<Child> server_;
  Fd server_stdin_;
  Fd server_stdout_;
  std::string address_;
};

// queue.put('hello') in one client, queue.get() in another: 'hello'.
TEST_F(RemoteManagerTest, OneClientPutsAndAnotherGets) {
  ClientRun put = Client({"--authkey=abracadabra", "put", "hello"});
  EXPECT_EQ(put.exit_code, 0) << put.output;
  EXPECT_EQ(put.output, "put 'hello'\n");
  ClientRun get = Client({"--authkey=abracadabra", "get"});
  EXPECT_EQ(get.exit_code, 0) << get.output;
  EXPECT_EQ(get.output, "got 'hello'\n");
  // The queue is empty again: a get waits its timeout and says so.
  ClientRun empty = Client({"get", "0.1"});
  EXPECT_EQ(empty.exit_code, 1) << empty.output;
  EXPECT_THAT(empty.output, HasSubstr("DEADLINE_EXCEEDED"));
  StopServer();
}

// A client with the wrong authkey is refused (kUnauthenticated, exit 1) and the server goes on
// serving the others.
TEST_F(RemoteManagerTest, AWrongAuthkeyIsRefused) {
  ClientRun intruder = Client({"--authkey=open sesame", "put", "spam"});
  EXPECT_EQ(intruder.exit_code, 1) << intruder.output;
  EXPECT_THAT(intruder.output, HasSubstr("UNAUTHENTICATED"));
  ClientRun put = Client({"put", "hello"});
  EXPECT_EQ(put.exit_code, 0) << put.output;
  ClientRun get = Client({"get"});
  EXPECT_EQ(get.exit_code, 0) << get.output;
  EXPECT_EQ(get.output, "got 'hello'\n");  // not the intruder's 'spam'
  StopServer();
}

// Bad arguments: a usage message and exit 2, before anything is connected.
TEST_F(RemoteManagerTest, BadArgumentsAreAUsageError) {
  ClientRun run = Client({"pop"});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr("usage:"));
  StopServer();
}

}  // namespace
}  // namespace remote_manager_test
