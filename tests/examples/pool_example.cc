// Python's docs, "Using a pool of workers", in mp.
//
//   from multiprocessing import Pool
//   def f(x):
//       return x*x
//   if __name__ == '__main__':
//       with Pool(5) as p:
//           print(p.map(f, [1, 2, 3]))     # prints "[1, 4, 9]"

#include <cstdio>
#include <vector>

#include "mp.h"

int64_t F(int64_t x) { return x * x; }

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  absl::StatusOr<mp::Pool> p = mp::GetContext()->Pool(5);
  if (!p.ok()) return 1;
  absl::StatusOr<std::vector<int64_t>> squares = p->Map<&F>(std::vector<int64_t>{1, 2, 3});
  if (!squares.ok()) {
    std::fprintf(stderr, "%s\n", squares.status().ToString().c_str());
    return 1;
  }
  std::printf("[%lld, %lld, %lld]\n", static_cast<long long>((*squares)[0]),
              static_cast<long long>((*squares)[1]), static_cast<long long>((*squares)[2]));
  p->Close();
  if (!p->Join().ok()) return 1;
  return *squares == std::vector<int64_t>{1, 4, 9} ? 0 : 1;
}
