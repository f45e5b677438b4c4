// Python's docs, "Customized managers", in mp: a class of your own, made and called in a manager's
// server process through a proxy.
//
//   from multiprocessing.managers import BaseManager
//   class MathsClass:
//       def add(self, x, y):
//           return x + y
//       def mul(self, x, y):
//           return x * y
//   class MyManager(BaseManager):
//       pass
//   MyManager.register('Maths', MathsClass)
//   if __name__ == '__main__':
//       with MyManager() as manager:
//           maths = manager.Maths()
//           print(maths.add(4, 3))         # prints 7
//           print(maths.mul(7, 8))         # prints 56
//
// `MyManager.register(...)` is a registrar: a function at namespace scope that BaseManager::Start
// names, run in the server (to make and call the objects) and in this program (to name the
// methods). It also shows register's method_to_typeid: a method whose result is shared as a new
// object of the server, returned as its proxy (ExposeProxy / CallProxy).

#include <cstdint>
#include <cstdio>

#include "mp.h"

class Accumulator {
 public:
  explicit Accumulator(int64_t start = 0) : total_(start) {}
  int64_t Add(int64_t x) { return total_ += x; }

 private:
  int64_t total_;
};

class MathsClass {
 public:
  int64_t Add(int64_t x, int64_t y) const { return x + y; }
  int64_t Mul(int64_t x, int64_t y) const { return x * y; }
  // Shared as a new object of the server (method_to_typeid={'accumulator': 'Accumulator'}).
  Accumulator MakeAccumulator(int64_t start) const { return Accumulator(start); }
};

// MyManager.register('Maths', MathsClass), with Accumulator first: a class a method returns is
// registered before the class whose method returns it.
void MyManagerTypes(mp::TypeRegistry& r) {
  r.Register<Accumulator>("Accumulator").Expose<&Accumulator::Add>("add");
  r.Register<MathsClass>("Maths")
      .Expose<&MathsClass::Add>("add")
      .Expose<&MathsClass::Mul>("mul")
      .ExposeProxy<&MathsClass::MakeAccumulator>("accumulator");
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  // with MyManager() as manager: (a server process started by the default start method)
  absl::StatusOr<mp::BaseManager> manager =
      mp::BaseManager::Start<&MyManagerTypes>(mp::GetContext()->start_method());
  if (!manager.ok()) {
    std::fprintf(stderr, "%s\n", manager.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<mp::Proxy<MathsClass>> maths = manager->Create<MathsClass>();  // manager.Maths()
  if (!maths.ok()) {
    std::fprintf(stderr, "%s\n", maths.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<int64_t> sum = maths->Call<&MathsClass::Add>(4, 3);      // maths.add(4, 3)
  absl::StatusOr<int64_t> product = maths->Call<&MathsClass::Mul>(7, 8);  // maths.mul(7, 8)
  if (!sum.ok() || !product.ok()) {
    std::fprintf(stderr, "%s %s\n", sum.status().ToString().c_str(),
                 product.status().ToString().c_str());
    return 1;
  }
  std::printf("%lld\n%lld\n", static_cast<long long>(*sum), static_cast<long long>(*product));

  // acc = maths.accumulator(10); acc.add(5); acc.add(5): an object of the server, not a copy.
  absl::StatusOr<mp::Proxy<Accumulator>> acc =
      maths->CallProxy<&MathsClass::MakeAccumulator>(int64_t{10});
  if (!acc.ok()) {
    std::fprintf(stderr, "%s\n", acc.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<int64_t> first = acc->Call<&Accumulator::Add>(int64_t{5});
  absl::StatusOr<int64_t> second = acc->Call<&Accumulator::Add>(int64_t{5});
  if (!first.ok() || !second.ok()) {
    std::fprintf(stderr, "%s %s\n", first.status().ToString().c_str(),
                 second.status().ToString().c_str());
    return 1;
  }
  std::printf("accumulator: %lld, %lld\n", static_cast<long long>(*first),
              static_cast<long long>(*second));
  if (!manager->Shutdown().ok()) return 1;  // leaving the `with` block
  return (*sum == 7 && *product == 56 && *first == 15 && *second == 20) ? 0 : 1;
}
