// A counter in shared memory that several children increment: Value<T>::Update is CPython's
// "with v.get_lock(): v.value += 1", the read-modify-write under the Value's own lock.
//
//   from multiprocessing import Process, Value
//   def count(v):
//       for _ in range(1000):
//           with v.get_lock():
//               v.value += 1
//   if __name__ == '__main__':
//       v = Value('q', 0)
//       ps = [Process(target=count, args=(v,)) for _ in range(4)]
//       for p in ps: p.start()
//       for p in ps: p.join()
//       print(v.value)       # 4000

#include <cstdint>
#include <cstdio>
#include <vector>

#include "mp.h"

constexpr int kChildren = 4;
constexpr int kIncrements = 1000;

absl::Status Count(mp::Value<int64_t> v) {
  for (int i = 0; i < kIncrements; ++i) {
    absl::StatusOr<int64_t> now = v.Update([](int64_t& value) { value += 1; });
    if (!now.ok()) return now.status();
  }
  return absl::OkStatus();
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  mp::Context* ctx = mp::GetContext();
  absl::StatusOr<mp::Value<int64_t>> v = ctx->Value<int64_t>(0);
  if (!v.ok()) return 1;
  std::vector<mp::Process> ps;
  for (int i = 0; i < kChildren; ++i) {
    absl::StatusOr<mp::Process> p = ctx->Process<&Count>(*v);
    if (!p.ok() || !p->Start().ok()) return 1;
    ps.push_back(*p);
  }
  int failed = 0;
  for (mp::Process& p : ps) failed += (p.Join().ok() && p.ExitCode() == 0) ? 0 : 1;
  absl::StatusOr<int64_t> value = v->Get();
  if (!value.ok()) return 1;
  std::printf("%lld\n", static_cast<long long>(*value));
  return failed == 0 && *value == kChildren * kIncrements ? 0 : 1;
}
