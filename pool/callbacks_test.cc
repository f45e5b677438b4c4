// Copyright 2026 The mp Authors.
//
// callback / error_callback on ApplyAsync, MapAsync and StarmapAsync under every start method:
// exactly one runs, in the pool's result thread, before Get returns; a callback that throws is
// reported by Get and leaves the pool working.

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "pool/pool.h"
#include "start_methods/fork.h"
#include "start_methods/forkserver.h"
#include "start_methods/spawn.h"
#include "start_methods/test_methods.h"

namespace callbacks_test {

using ::absl::StatusCode;

int64_t Triple(int64_t x) { return 3 * x; }
absl::StatusOr<int64_t> FailOnSeven(int64_t x) {
  if (x == 7) return absl::InvalidArgumentError("seven is not allowed");
  return x;
}
std::string Label(std::string s, int64_t n) { return absl::StrCat(s, n); }

class CallbacksTest : public ::testing::TestWithParam<std::string> {
 protected:
  mp::Pool MakePool() {
    std::shared_ptr<mp::StartMethod> method = mp::testing::MethodNamed(GetParam());
    absl::StatusOr<mp::Pool> pool = mp::Pool::Create(method, {.processes = 2});
    EXPECT_TRUE(pool.ok()) << pool.status();
    return *std::move(pool);
  }
};

TEST_P(CallbacksTest, CallbackRunsOnceInTheResultThreadBeforeGetReturns) {
  mp::Pool pool = MakePool();
  std::atomic<int> calls{0}, errors{0};
  std::atomic<int64_t> seen{0};
  std::atomic<bool> other_thread{false};
  const std::thread::id caller = std::this_thread::get_id();
  mp::AsyncResult<int64_t> r = pool.ApplyAsync<&Triple>(
      mp::AsyncCallbacks<int64_t>{.callback =
                                      [&](const int64_t& v) {
                                        seen = v;
                                        other_thread = std::this_thread::get_id() != caller;
                                        ++calls;
                                      },
                                  .error_callback = [&](const absl::Status&) { ++errors; }},
      int64_t{14});
  absl::StatusOr<int64_t> v = r.Get(absl::Seconds(60));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 42);
  EXPECT_EQ(calls, 1);  // before Get returned
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(seen, 42);
  EXPECT_TRUE(other_thread);
  EXPECT_TRUE(r.Ready());
  EXPECT_TRUE(*r.Successful());
}

TEST_P(CallbacksTest, ErrorCallbackGetsTheFailure) {
  mp::Pool pool = MakePool();
  std::atomic<int> calls{0};
  absl::Status failure;
  std::vector<int64_t> xs = {1, 7, 3};
  mp::AsyncResult<std::vector<int64_t>> r =
      pool.MapAsync<&FailOnSeven>(xs, 1,
                                  {.callback = [&](const std::vector<int64_t>&) { ++calls; },
                                   .error_callback = [&](const absl::Status& s) { failure = s; }});
  EXPECT_EQ(r.Get(absl::Seconds(60)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(failure, absl::InvalidArgumentError("seven is not allowed"));
  EXPECT_FALSE(*r.Successful());
}

TEST_P(CallbacksTest, MapAndStarmapCallbacksGetTheWholeResult) {
  mp::Pool pool = MakePool();
  std::vector<int64_t> xs(1000);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<int64_t>(i);
  std::vector<int64_t> mapped;
  mp::AsyncResult<std::vector<int64_t>> m = pool.MapAsync<&Triple>(
      xs, 0, {.callback = [&](const std::vector<int64_t>& v) { mapped = v; }});
  ASSERT_TRUE(m.Wait(absl::Seconds(60)));
  ASSERT_EQ(mapped.size(), xs.size());
  for (size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(mapped[i], 3 * xs[i]);

  std::vector<std::tuple<std::string, int64_t>> pairs = {{"a", 1}, {"b", 2}};
  std::vector<std::string> labels;
  mp::AsyncResult<std::vector<std::string>> s = pool.StarmapAsync<&Label>(
      pairs, 1, {.callback = [&](const std::vector<std::string>& v) { labels = v; }});
  ASSERT_TRUE(s.Get(absl::Seconds(60)).ok());
  EXPECT_EQ(labels, (std::vector<std::string>{"a1", "b2"}));

  // No items: the result is ready at once, and the callback runs in the caller's thread.
  const std::thread::id caller = std::this_thread::get_id();
  bool ran_here = false;
  mp::AsyncResult<std::vector<int64_t>> empty = pool.MapAsync<&Triple>(
      std::vector<int64_t>{}, 0, {.callback = [&](const std::vector<int64_t>& v) {
        ran_here = v.empty() && std::this_thread::get_id() == caller;
      }});
  EXPECT_TRUE(ran_here);
  EXPECT_TRUE(empty.Ready());
}

TEST_P(CallbacksTest, ThrowingCallbacksAreReportedAndThePoolLives) {
  mp::Pool pool = MakePool();
  mp::AsyncResult<int64_t> r = pool.ApplyAsync<&Triple>(
      mp::AsyncCallbacks<int64_t>{
          .callback = [](const int64_t&) { throw std::runtime_error("boom in callback"); }},
      int64_t{1});
  absl::StatusOr<int64_t> v = r.Get(absl::Seconds(60));
  ASSERT_EQ(v.status().code(), StatusCode::kUnknown) << v.status();
  EXPECT_NE(v.status().message().find(
                "the callback of ApplyAsync<callbacks_test::Triple> threw std::runtime_error: "
                "boom in callback"),
            absl::string_view::npos)
      << v.status();
  EXPECT_FALSE(*r.Successful());

  mp::AsyncResult<int64_t> e = pool.ApplyAsync<&FailOnSeven>(
      mp::AsyncCallbacks<int64_t>{.error_callback = [](const absl::Status&) { throw 42; }},
      int64_t{7});
  absl::StatusOr<int64_t> ev = e.Get(absl::Seconds(60));
  ASSERT_EQ(ev.status().code(), StatusCode::kUnknown) << ev.status();
  EXPECT_NE(ev.status().message().find(
                "the error_callback of ApplyAsync<callbacks_test::FailOnSeven> threw"),
            absl::string_view::npos)
      << ev.status();
  EXPECT_NE(ev.status().message().find("seven is not allowed"), absl::string_view::npos)
      << ev.status();

  // The pool goes on.
  EXPECT_EQ(*pool.Apply<&Triple>(int64_t{5}), 15);
  pool.Close();
  EXPECT_TRUE(pool.Join(absl::Seconds(60)).ok());
}

INSTANTIATE_TEST_SUITE_P(Methods, CallbacksTest, ::testing::Values("fork", "spawn", "forkserver"));

}  // namespace callbacks_test
