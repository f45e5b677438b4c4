// Python's docs, "Synchronization between processes", in mp: ten processes print under one Lock.
//
//   from multiprocessing import Process, Lock
//   def f(l, i):
//       l.acquire()
//       try:
//           print('hello world', i)
//       finally:
//           l.release()
//   if __name__ == '__main__':
//       lock = Lock()
//       for num in range(10):
//           Process(target=f, args=(lock, num)).start()

#include <cstdio>
#include <vector>

#include "mp.h"

absl::Status F(mp::Lock l, int i) {
  absl::StatusOr<bool> got = l.Acquire();
  if (!got.ok() && !mp::IsOwnerDied(got.status())) return got.status();
  std::printf("hello world %d\n", i);
  std::fflush(stdout);
  return l.Release();
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  mp::Context* ctx = mp::GetContext();
  absl::StatusOr<mp::Lock> lock = ctx->Lock();
  if (!lock.ok()) return 1;
  std::vector<mp::Process> processes;
  for (int num = 0; num < 10; ++num) {
    absl::StatusOr<mp::Process> p = ctx->Process<&F>(*lock, num);
    if (!p.ok() || !p->Start().ok()) return 1;
    processes.push_back(*p);
  }
  int failed = 0;
  for (mp::Process& p : processes) {
    failed += (p.Join().ok() && p.ExitCode() == 0) ? 0 : 1;
  }
  return failed == 0 ? 0 : 1;
}
