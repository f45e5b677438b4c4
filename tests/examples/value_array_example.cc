// Python's docs, "Sharing state between processes: Shared memory", in mp.
//
//   from multiprocessing import Process, Value, Array
//   def f(n, a):
//       n.value = 3.1415927
//       for i in range(len(a)):
//           a[i] = -a[i]
//   if __name__ == '__main__':
//       num = Value('d', 0.0)
//       arr = Array('i', range(10))
//       p = Process(target=f, args=(num, arr))
//       p.start()
//       p.join()
//       print(num.value)     # 3.1415927
//       print(arr[:])        # [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]

#include <cstdio>
#include <numeric>
#include <vector>

#include "mp.h"

absl::Status F(mp::Value<double> n, mp::Array<int32_t> a) {
  if (absl::Status s = n.Set(3.1415927); !s.ok()) return s;
  for (size_t i = 0; i < a.size(); ++i) {
    absl::StatusOr<int32_t> v = a.Get(i);
    if (!v.ok()) return v.status();
    if (absl::Status s = a.Set(i, -*v); !s.ok()) return s;
  }
  return absl::OkStatus();
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  mp::Context* ctx = mp::GetContext();
  std::vector<int32_t> range(10);
  std::iota(range.begin(), range.end(), 0);
  absl::StatusOr<mp::Value<double>> num = ctx->Value<double>(0.0);
  absl::StatusOr<mp::Array<int32_t>> arr = ctx->Array<int32_t>(absl::MakeConstSpan(range));
  if (!num.ok() || !arr.ok()) return 1;
  absl::StatusOr<mp::Process> p = ctx->Process<&F>(*num, *arr);
  if (!p.ok() || !p->Start().ok() || !p->Join().ok() || p->ExitCode() != 0) return 1;
  absl::StatusOr<double> value = num->Get();
  absl::StatusOr<std::vector<int32_t>> all = arr->GetAll();
  if (!value.ok() || !all.ok()) return 1;
  std::printf("%.7f\n[", *value);
  for (size_t i = 0; i < all->size(); ++i) std::printf("%s%d", i ? ", " : "", (*all)[i]);
  std::printf("]\n");
  std::vector<int32_t> want(10);
  for (int i = 0; i < 10; ++i) want[i] = -i;
  return (*value == 3.1415927 && *all == want) ? 0 : 1;
}
