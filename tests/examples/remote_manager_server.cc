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
// connect to (the real port). It serves until its standard input has something to read or ends
// (Enter, Ctrl-D, or the end of whoever holds the other end of a pipe), then exits 0:
// ServeManager's stop_fd.

#include <unistd.h>

#include <cstdio>
#include <string>

#include "mp.h"
#include "tests/examples/remote_queue.h"

// ServeManager's on_listening: the address, first, alone on stdout.
void PrintAddress(const std::string& address) {
  std::printf("%s\n", address.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "serving 'get_queue' at %s; press Enter or Ctrl-D to stop\n",
               address.c_str());
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
  // s = m.get_server(); s.serve_forever()
  absl::Status s =
      mp::ServeManager(options, &remote_queue::QueueTypes, &PrintAddress, STDIN_FILENO);
  std::fprintf(stderr, "%s\n", s.ToString().c_str());
  return 1;
}
