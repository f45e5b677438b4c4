// Copyright 2026 The mp Authors.
//
// start_methods/test_methods.h — the three start methods as types, for typed tests that run the
// same contract once per method:
//
//   template <typename M> class MyTest : public ::testing::Test {};
//   TYPED_TEST_SUITE(MyTest, mp::testing::AllStartMethods, mp::testing::StartMethodNames);
//   TYPED_TEST(MyTest, X) { mp::Process::Create(TypeParam::Get(), ...); }

#ifndef MP_START_METHODS_TEST_METHODS_H_
#define MP_START_METHODS_TEST_METHODS_H_

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "start_methods/fork.h"
#include "start_methods/forkserver.h"
#include "start_methods/spawn.h"
#include "start_methods/start_method.h"

namespace mp::testing {

struct Fork {
  static std::shared_ptr<StartMethod> Get() { return ForkStartMethod(); }
  static constexpr bool kFreshProcess = false;  // the child inherits everything
};
struct Spawn {
  static std::shared_ptr<StartMethod> Get() { return SpawnStartMethod(); }
  static constexpr bool kFreshProcess = true;
};
struct ForkServer {
  static std::shared_ptr<StartMethod> Get() { return ForkServerStartMethod(); }
  static constexpr bool kFreshProcess = true;
};

using AllStartMethods = ::testing::Types<Fork, Spawn, ForkServer>;

// For value-parameterized tests over the method names: the method `name` names (FindStartMethod).
// Aborts on a name no linked method has (a typo in the test's parameters).
inline std::shared_ptr<StartMethod> MethodNamed(absl::string_view name) {
  absl::StatusOr<std::shared_ptr<StartMethod>> method = FindStartMethod(name);
  if (!method.ok()) {
    ADD_FAILURE() << method.status();
    std::abort();
  }
  return *method;
}

// Names the typed tests' instances "fork", "spawn", "forkserver".
class StartMethodNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::string(T::Get()->Name());
  }
};

}  // namespace mp::testing

#endif  // MP_START_METHODS_TEST_METHODS_H_
