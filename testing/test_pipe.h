// Copyright 2026 The mp Authors.
//
// testing/test_pipe.h — mp::testing::TestPipe, the one pipe helper every multi-process test uses to
// sequence processes without sleeping: a child blocks in Receive() until the parent Send()s.
//
//   mp::testing::TestPipe ready;
//   ... fork ...  child: ready.CloseRead(); ... ready.Send();
//                 parent: ready.CloseWrite(); ASSERT_EQ(ready.Receive(), 'x');
//
// Both ends are close-on-exec and are closed on destruction. Not thread-safe (one owner).

#ifndef MP_TESTING_TEST_PIPE_H_
#define MP_TESTING_TEST_PIPE_H_

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

namespace mp::testing {

class TestPipe {
 public:
  TestPipe() {
    if (pipe2(fds_, O_CLOEXEC) != 0) fds_[0] = fds_[1] = -1;
  }
  TestPipe(const TestPipe&) = delete;
  TestPipe& operator=(const TestPipe&) = delete;
  ~TestPipe() {
    CloseRead();
    CloseWrite();
  }

  // False if pipe2 failed (both ends are then -1).
  bool ok() const { return fds_[0] >= 0; }
  int r() const { return fds_[0]; }
  int w() const { return fds_[1]; }
  void CloseRead() {
    if (fds_[0] >= 0) close(fds_[0]);
    fds_[0] = -1;
  }
  void CloseWrite() {
    if (fds_[1] >= 0) close(fds_[1]);
    fds_[1] = -1;
  }
  // Writes one byte; false on error (EINTR retried).
  bool Send(char c = 'x') const {
    ssize_t n;
    do {
      n = write(fds_[1], &c, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1;
  }
  // Blocks for one byte; -1 at end of file or on error (EINTR retried).
  int Receive() const {
    char c;
    ssize_t n;
    do {
      n = read(fds_[0], &c, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1 ? static_cast<unsigned char>(c) : -1;
  }

 private:
  int fds_[2];
};

}  // namespace mp::testing

#endif  // MP_TESTING_TEST_PIPE_H_
