// Python's docs, "Using a remote manager", in mp — the clients: programs that connect to the
// server of remote_manager_server.cc (on this host or another) and use the queue it serves.
//
//   from multiprocessing.managers import BaseManager
//   class QueueManager(BaseManager): pass
//   QueueManager.register('get_queue')
//   m = QueueManager(address=('foo.bar.org', 50000), authkey=b'abracadabra')
//   m.connect()
//   queue = m.get_queue()
//   queue.put('hello')
//
// and another client:
//
//   ...
//   queue = m.get_queue()
//   queue.get()                                  # 'hello'
//
//   remote_manager_client --address=HOST:PORT [--authkey=KEY] put ITEM
//   remote_manager_client --address=HOST:PORT [--authkey=KEY] get [TIMEOUT_SECONDS]
//
// put prints "put 'ITEM'", get "got 'ITEM'" (after at most TIMEOUT_SECONDS, default 60: then
// DEADLINE_EXCEEDED, queue.Empty). Exit 0 on success, 1 with the status on stderr on failure (a
// wrong authkey: UNAUTHENTICATED), 2 for bad arguments.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mp.h"
#include "tests/examples/remote_queue.h"

using remote_queue::QueueHandle;

int Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --address=HOST:PORT [--authkey=KEY] put ITEM\n"
               "       %s --address=HOST:PORT [--authkey=KEY] get [TIMEOUT_SECONDS]\n",
               argv0, argv0);
  return 2;
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "%s\n", s.ToString().c_str());
  return 1;
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  std::string address;
  std::string authkey = "abracadabra";
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--address=", 0) == 0) {
      address = arg.substr(10);
    } else if (arg.rfind("--authkey=", 0) == 0) {
      authkey = arg.substr(10);
    } else {
      words.push_back(arg);
    }
  }
  const bool put = words.size() == 2 && words[0] == "put";
  const bool get = (words.size() == 1 || words.size() == 2) && words[0] == "get";
  if (address.empty() || (!put && !get)) return Usage(argv[0]);
  double timeout_seconds = 60;
  if (get && words.size() == 2) {
    char* end = nullptr;
    timeout_seconds = std::strtod(words[1].c_str(), &end);
    if (end == words[1].c_str() || *end != '\0' || !(timeout_seconds >= 0)) return Usage(argv[0]);
  }

  // m = QueueManager(address, authkey); m.connect(): reaches the server and proves the authkey.
  absl::StatusOr<mp::BaseManager> m =
      mp::BaseManager::Connect<&remote_queue::QueueTypes>(address, authkey);
  if (!m.ok()) return Fail(m.status());
  // queue = m.get_queue()
  absl::StatusOr<mp::Proxy<QueueHandle>> queue = m->Create<QueueHandle>();
  if (!queue.ok()) return Fail(queue.status());
  if (put) {
    if (absl::Status s = queue->Call<&QueueHandle::Put>(words[1]); !s.ok()) return Fail(s);
    std::printf("put '%s'\n", words[1].c_str());
  } else {
    absl::StatusOr<std::string> item =
        queue->Call<&QueueHandle::Get>(absl::Seconds(timeout_seconds));
    if (!item.ok()) return Fail(item.status());
    std::printf("got '%s'\n", item->c_str());
  }
  return 0;
}
