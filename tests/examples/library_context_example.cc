// Python's docs, "Contexts and start methods": a library uses its own context and leaves the
// program's default start method alone.
//
//   import multiprocessing as mp
//   def foo(q):
//       q.put('hello')
//   if __name__ == '__main__':
//       ctx = mp.get_context('spawn')
//       q = ctx.Queue()
//       p = ctx.Process(target=foo, args=(q,))
//       p.start()
//       print(q.get())
//       p.join()

#include <cstdio>
#include <string>

#include "mp.h"

namespace library {

absl::Status Foo(mp::Queue q) { return q.Put(std::string("hello")); }

// The library's entry point: spawn, whatever the program chose.
absl::StatusOr<std::string> Hello() {
  mp::Context* ctx = *mp::GetContext("spawn");
  absl::StatusOr<mp::Queue> q = ctx->Queue();
  if (!q.ok()) return q.status();
  absl::StatusOr<mp::Process> p = ctx->Process<&Foo>(*q);
  if (!p.ok()) return p.status();
  if (absl::Status s = p->Start(); !s.ok()) return s;
  absl::StatusOr<std::string> got = q->Get<std::string>();
  if (absl::Status s = p->Join(); !s.ok()) return s;
  return got;
}

}  // namespace library

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  if (!mp::SetStartMethod("fork").ok()) return 1;  // the program's own choice
  absl::StatusOr<std::string> hello = library::Hello();
  if (!hello.ok()) {
    std::fprintf(stderr, "%s\n", hello.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", hello->c_str());
  // The library did not change the program's default.
  return (*hello == "hello" && mp::GetStartMethod() == "fork") ? 0 : 1;
}
