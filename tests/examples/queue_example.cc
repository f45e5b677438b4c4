// Python's docs, "Exchanging objects between processes: Queues", in mp.
//
//   from multiprocessing import Process, Queue
//   def f(q):
//       q.put([42, None, 'hello'])
//   if __name__ == '__main__':
//       q = Queue()
//       p = Process(target=f, args=(q,))
//       p.start()
//       print(q.get())    # prints "[42, None, 'hello']"
//       p.join()

#include <cstdio>
#include <optional>
#include <string>
#include <tuple>

#include "mp.h"

using Item = std::tuple<int, std::optional<int>, std::string>;

absl::Status F(mp::Queue q) { return q.Put(Item{42, std::nullopt, "hello"}); }

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  absl::StatusOr<mp::Queue> q = mp::GetContext()->Queue();
  if (!q.ok()) return 1;
  absl::StatusOr<mp::Process> p = mp::GetContext()->Process<&F>(*q);
  if (!p.ok() || !p->Start().ok()) return 1;
  absl::StatusOr<Item> item = q->Get<Item>();
  if (!item.ok()) {
    std::fprintf(stderr, "%s\n", item.status().ToString().c_str());
    return 1;
  }
  auto [a, b, c] = *item;
  std::printf("[%d, %s, '%s']\n", a, b ? std::to_string(*b).c_str() : "None", c.c_str());
  if (!p->Join().ok() || p->ExitCode() != 0) return 1;
  return (a == 42 && !b && c == "hello") ? 0 : 1;
}
