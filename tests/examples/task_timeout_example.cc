// A time limit per task (pebble's schedule(timeout=), mpire's task_timeout; CPython has none): a
// task that hangs fails with kDeadlineExceeded, only its worker is killed and replaced, and the
// other tasks carry on. The limit counts from when the task starts running in a worker.
//
//   with ProcessPool(max_workers=2) as pool:                       # pebble
//       hung = pool.schedule(hang, timeout=0.2)
//       quick = [pool.schedule(square, args=(i,)) for i in range(10)]
//       hung.result()          # raises TimeoutError; quick results are fine

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "mp.h"

int64_t Square(int64_t x) { return x * x; }
// Never returns (a stuck call, a lost network peer...).
int64_t Hang(int64_t) {
  for (;;) pause();
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  int wrong = 0;

  // ProcessPoolExecutor: a limit for one task.
  {
    absl::StatusOr<mp::ProcessPoolExecutor> executor =
        mp::GetContext()->ProcessPoolExecutor({.max_workers = 2});
    if (!executor.ok()) return 1;
    mp::Future<int64_t> hung =
        executor->Submit<&Hang>({.timeout = absl::Milliseconds(200)}, int64_t{0});
    std::vector<mp::Future<int64_t>> quick;
    for (int64_t i = 0; i < 10; ++i) quick.push_back(executor->Submit<&Square>(i));
    absl::StatusOr<int64_t> r = hung.Result();
    std::printf("hung task: %s\n", r.status().ToString().c_str());
    if (r.status().code() != absl::StatusCode::kDeadlineExceeded) ++wrong;
    for (int64_t i = 0; i < 10; ++i) {
      absl::StatusOr<int64_t> v = quick[i].Result();
      if (!v.ok() || *v != i * i) ++wrong;
    }
  }

  // Pool: a limit for every task of the pool.
  {
    absl::StatusOr<mp::Pool> pool =
        mp::GetContext()->Pool({.processes = 2, .task_timeout = absl::Milliseconds(200)});
    if (!pool.ok()) return 1;
    mp::AsyncResult<int64_t> hung = pool->ApplyAsync<&Hang>(int64_t{0});
    absl::StatusOr<std::vector<int64_t>> squares =
        pool->Map<&Square>(std::vector<int64_t>{1, 2, 3}, 1);
    absl::StatusOr<int64_t> r = hung.Get();
    std::printf("hung pool task: %s\n", r.status().ToString().c_str());
    if (r.status().code() != absl::StatusCode::kDeadlineExceeded) ++wrong;
    if (!squares.ok() || *squares != std::vector<int64_t>{1, 4, 9}) ++wrong;
    pool->Close();
    if (!pool->Join().ok()) ++wrong;
  }
  return wrong == 0 ? 0 : 1;
}
