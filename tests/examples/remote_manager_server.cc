// Python's docs, "Using a remote manager", in mp — the server: a program that serves one queue to
// clients on other hosts (remote_manager_client.cc is the client; remote_manager_test.cc runs
// both).
//
//   from multiprocessing.managers import BaseManager
//   from queue import Queue
//   queue = Queue()
//   class QueueManager(BaseManager): pass
//   QueueManager.register('get_queue', callable=lambda:queue)
//   m = QueueManager(address=('', 50000), authkey=b'abracadabra')
//   s = m.get_server()
//   s.serve_forever()
//
//   remote_manager_server [ADDRESS [AUTHKEY]]     # default 127.0.0.1:0 abracadabra
//
// ADDRESS as listener/listener.h takes it: "0.0.0.0:50000" serves other hosts, as ('', 50000)
// does; port 0 has the kernel pick a free one. The first line on stdout is the address clients
// connect to (the real port). It serves until its standard input closes (Ctrl-D, or the end of
// whoever holds the other end of a pipe), then exits 0: ServeManager, like serve_forever(), has no
// stop of its own but a shutdown request, which only a manager that started its server can send.

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <thread>

#include "mp.h"
#include "tests/examples/remote_queue.h"

// ServeManager's on_listening: the address, first, alone on stdout.
void PrintAddress(const std::string& address) {
  std::printf("%s\n", address.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "serving 'get_queue' at %s; close stdin (Ctrl-D) to stop\n",
               address.c_str());
}

// Ends the process when stdin reaches its end; a stdin that cannot be read leaves it serving.
void ExitAtEndOfStdin() {
  char buf[256];
  while (true) {
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
    if (n > 0 || (n < 0 && errno == EINTR)) continue;
    if (n < 0) return;
    std::fprintf(stderr, "stdin closed: stopping\n");
    std::fflush(nullptr);
    ::_exit(0);  // as ServeManager ends after a shutdown request: its serving threads still run
  }
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  if (argc > 3) {
    std::fprintf(stderr, "usage: %s [ADDRESS [AUTHKEY]]\n", argv[0]);
    return 2;
  }
  mp::ManagerOptions options;
  options.address = argc > 1 ? argv[1] : "127.0.0.1:0";
  options.authkey = argc > 2 ? argv[2] : "abracadabra";
  std::thread(&ExitAtEndOfStdin).detach();
  // s = m.get_server(); s.serve_forever()
  absl::Status s = mp::ServeManager(options, &remote_queue::QueueTypes, &PrintAddress);
  std::fprintf(stderr, "%s\n", s.ToString().c_str());
  return 1;
}
