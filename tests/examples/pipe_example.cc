// Python's docs, "Exchanging objects between processes: Pipes", in mp.
//
//   from multiprocessing import Process, Pipe
//   def f(conn):
//       conn.send([42, None, 'hello'])
//       conn.close()
//   if __name__ == '__main__':
//       parent_conn, child_conn = Pipe()
//       p = Process(target=f, args=(child_conn,))
//       p.start()
//       print(parent_conn.recv())   # prints "[42, None, 'hello']"
//       p.join()

#include <cstdio>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "mp.h"

using Item = std::tuple<int, std::optional<int>, std::string>;

absl::Status F(mp::Connection conn) {
  absl::Status s = conn.Send(Item{42, std::nullopt, "hello"});
  conn.Close();
  return s;
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> pipe = mp::GetContext()->Pipe();
  if (!pipe.ok()) return 1;
  auto& [parent_conn, child_conn] = *pipe;
  absl::StatusOr<mp::Process> p = mp::GetContext()->Process<&F>(std::move(child_conn));
  if (!p.ok() || !p->Start().ok()) return 1;
  absl::StatusOr<Item> item = parent_conn.Recv<Item>();
  if (!item.ok()) {
    std::fprintf(stderr, "%s\n", item.status().ToString().c_str());
    return 1;
  }
  auto [a, b, c] = *item;
  std::printf("[%d, %s, '%s']\n", a, b ? std::to_string(*b).c_str() : "None", c.c_str());
  if (!p->Join().ok() || p->ExitCode() != 0) return 1;
  return (a == 42 && !b && c == "hello") ? 0 : 1;
}
