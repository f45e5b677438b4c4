// Python's docs, concurrent.futures "ProcessPoolExecutor Example", in mp, then submit, as_completed
// and wait:
//
//   PRIMES = [112272535095293, 112582705942171, 112272535095293, 115280095190773,
//             115797848077099, 1099726899285419]
//   def is_prime(n): ...
//   with concurrent.futures.ProcessPoolExecutor() as executor:
//       for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES)):
//           print('%d is prime: %s' % (number, prime))
//       futures = {executor.submit(is_prime, n): n for n in PRIMES}
//       for f in concurrent.futures.as_completed(futures, timeout=60):
//           print(futures[f], f.result())
//       done, not_done = concurrent.futures.wait(futures, return_when=FIRST_COMPLETED)

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "mp.h"

bool IsPrime(int64_t n) {
  if (n < 2) return false;
  if (n == 2) return true;
  if (n % 2 == 0) return false;
  const auto sqrt_n = static_cast<int64_t>(std::floor(std::sqrt(static_cast<double>(n))));
  for (int64_t i = 3; i <= sqrt_n; i += 2) {
    if (n % i == 0) return false;
  }
  return true;
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  const std::vector<int64_t> primes = {112272535095293, 112582705942171, 112272535095293,
                                       115280095190773, 115797848077099, 1099726899285419};
  const std::vector<bool> expected = {true, true, true, true, true, false};
  absl::StatusOr<mp::ProcessPoolExecutor> executor =
      mp::GetContext()->ProcessPoolExecutor({.max_workers = 2});
  if (!executor.ok()) {
    std::fprintf(stderr, "%s\n", executor.status().ToString().c_str());
    return 1;
  }
  int wrong = 0;

  // executor.map: results in order.
  mp::MapIterator<bool> results = executor->Map<&IsPrime>(primes);
  for (size_t i = 0; i < primes.size(); ++i) {
    absl::StatusOr<bool> prime = results.Next();
    if (!prime.ok() || *prime != expected[i]) ++wrong;
    std::printf("%lld is prime: %s\n", static_cast<long long>(primes[i]),
                prime.ok() ? (*prime ? "True" : "False") : prime.status().ToString().c_str());
  }

  // submit + as_completed: results in completion order, the future telling which number it was.
  std::vector<mp::Future<bool>> futures;
  absl::flat_hash_map<mp::Future<bool>, size_t> index_of;  // future_to_url
  for (size_t i = 0; i < primes.size(); ++i) {
    futures.push_back(executor->Submit<&IsPrime>(primes[i]));
    index_of[futures.back()] = i;
  }
  size_t seen = 0;
  for (absl::StatusOr<mp::Future<bool>> f : mp::AsCompleted(futures, absl::Seconds(60))) {
    if (!f.ok()) {
      std::fprintf(stderr, "%s\n", f.status().ToString().c_str());  // e.g. a timeout
      return 1;
    }
    const size_t i = index_of[*f];
    absl::StatusOr<bool> prime = f->Result();
    if (!prime.ok() || *prime != expected[i]) ++wrong;
    ++seen;
  }
  if (seen != futures.size()) ++wrong;  // each Submit is a future of its own

  // wait: everything done, nothing left.
  mp::DoneAndNotDone<mp::Future<bool>> r =
      mp::WaitFutures(futures, absl::Seconds(60), mp::ReturnWhen::kAllCompleted);
  std::printf("done: %zu, not done: %zu\n", r.done.size(), r.not_done.size());
  if (r.done.size() != futures.size() || !r.not_done.empty()) ++wrong;
  return wrong == 0 ? 0 : 1;
}
