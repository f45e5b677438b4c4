// Callbacks: concurrent.futures' add_done_callback and Pool.apply_async's callback /
// error_callback, in mp.
//
//   f = executor.submit(square, 7)
//   f.add_done_callback(lambda f: print('done:', f.result()))
//   pool.apply_async(square, (8,), callback=print, error_callback=print)
//   pool.apply_async(fail, (0,), callback=print, error_callback=print)

#include <atomic>
#include <cstdint>
#include <cstdio>

#include "mp.h"

int64_t Square(int64_t x) { return x * x; }
absl::StatusOr<int64_t> Fail(int64_t) { return absl::InvalidArgumentError("no good"); }

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  int wrong = 0;

  // A Future's done callback runs once, in the executor's result thread (or at once in the caller's
  // thread when the future is already done).
  {
    absl::StatusOr<mp::ProcessPoolExecutor> executor =
        mp::GetContext()->ProcessPoolExecutor({.max_workers = 1});
    if (!executor.ok()) return 1;
    std::atomic<int64_t> seen{0};
    mp::Future<int64_t> f = executor->Submit<&Square>(int64_t{7});
    f.AddDoneCallback([&seen](const mp::Future<int64_t>& done) {
      absl::StatusOr<int64_t> v = done.Result();
      std::printf("done: %lld\n", static_cast<long long>(v.ok() ? *v : -1));
      seen = v.ok() ? *v : -1;
    });
    if (!f.Result().ok()) ++wrong;
    if (!executor->Shutdown().ok()) ++wrong;  // the callback has run by the time Shutdown returns
    if (seen != 49) ++wrong;
  }

  // Pool: callback on success, error_callback on failure, in the pool's result thread, before Get
  // reports the result.
  {
    absl::StatusOr<mp::Pool> pool = mp::GetContext()->Pool(1);
    if (!pool.ok()) return 1;
    std::atomic<int64_t> value{0};
    std::atomic<bool> failed{false};
    mp::AsyncCallbacks<int64_t> callbacks{
        .callback = [&value](const int64_t& v) { value = v; },
        .error_callback =
            [&failed](const absl::Status& s) {
              std::printf("error_callback: %s\n", s.ToString().c_str());
              failed = true;
            },
    };
    mp::AsyncResult<int64_t> ok = pool->ApplyAsync<&Square>(callbacks, int64_t{8});
    mp::AsyncResult<int64_t> bad = pool->ApplyAsync<&Fail>(callbacks, int64_t{0});
    if (!ok.Get().ok() || value != 64) ++wrong;
    if (bad.Get().ok() || !failed) ++wrong;
    pool->Close();
    if (!pool->Join().ok()) ++wrong;
  }
  return wrong == 0 ? 0 : 1;
}
