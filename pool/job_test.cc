// Copyright 2026 The mp Authors.

#include "pool/job.h"

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "pool/task.h"

namespace mp::pool_internal {
namespace {

// A results "message": the encoded payloads of `values` back to back; *spans their positions.
std::shared_ptr<const std::string> Payloads(const std::vector<int64_t>& values,
                                            std::vector<TaskOutcome>* outcomes) {
  auto blob = std::make_shared<std::string>();
  for (int64_t v : values) {
    const size_t at = blob->size();
    AppendOk(*blob, v);  // tag, length, payload
    TaskOutcome o;
    o.offset = static_cast<uint32_t>(at + 2);
    o.length = static_cast<uint32_t>(blob->size() - at - 2);
    outcomes->push_back(o);
  }
  return blob;
}

std::shared_ptr<const std::string> Raw(const std::vector<int64_t>& values) {
  return std::make_shared<const std::string>(reinterpret_cast<const char*>(values.data()),
                                             values.size() * sizeof(int64_t));
}

TEST(JobTest, FinishRangeAndItemResults) {
  Job job(3, "Map<f>");
  EXPECT_FALSE(job.Ready());
  std::vector<TaskOutcome> outcomes;
  auto blob = Payloads({10, 20, 30}, &outcomes);
  outcomes[1].status = absl::NotFoundError("task 1");
  job.FinishRange(0, blob, outcomes);
  EXPECT_TRUE(job.Ready());
  EXPECT_EQ(*ItemResult<int64_t>(job, 0), 10);
  EXPECT_EQ(ItemResult<int64_t>(job, 1).status(), absl::NotFoundError("task 1"));
  EXPECT_EQ(*ItemResult<int64_t>(job, 2), 30);
  EXPECT_EQ(job.FirstFailure(), absl::NotFoundError("task 1"));
}

TEST(JobTest, FinishFixedRunsInItemOrder) {
  Job job(5, "Map<f>");
  job.FinishFixed(3, 2, Raw({4, 5}), 0, sizeof(int64_t));
  job.FinishFixed(0, 3, Raw({1, 2, 3}), 0, sizeof(int64_t));
  ASSERT_TRUE(job.WaitAll(Deadline::After(absl::ZeroDuration())));
  std::vector<int64_t> all;
  ASSERT_TRUE(job.ForEachRun([&](const Job::Run& run) {
                   for (size_t k = 0; k < run.count; ++k) {
                     int64_t v;
                     std::memcpy(&v, run.Payload(k).data(), sizeof(v));
                     all.push_back(v);
                   }
                   return absl::OkStatus();
                 })
                  .ok());
  EXPECT_EQ(all, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(job.FirstFailure().ok());
}

TEST(JobTest, SettledItemsKeepTheirFirstOutcome) {
  Job job(4, "Map<f>");
  job.Finish(1, nullptr, 0, 0, absl::AbortedError("worker died"));
  job.Finish(1, nullptr, 0, 0, absl::InternalError("second"));    // ignored: already done
  job.FinishFixed(0, 4, Raw({7, 8, 9, 10}), 0, sizeof(int64_t));  // fills 0, 2, 3 only
  ASSERT_TRUE(job.Ready());
  EXPECT_EQ(*ItemResult<int64_t>(job, 0), 7);
  EXPECT_EQ(ItemResult<int64_t>(job, 1).status(), absl::AbortedError("worker died"));
  EXPECT_EQ(*ItemResult<int64_t>(job, 3), 10);
  // ForEachRun reports the lowest failure instead of runs.
  EXPECT_EQ(job.ForEachRun([](const Job::Run&) { return absl::OkStatus(); }),
            absl::AbortedError("worker died"));
}

TEST(JobTest, FirstFailureIsTheLowestIndex) {
  Job job(6, "Map<f>");
  job.Finish(4, nullptr, 0, 0, absl::InternalError("four"));
  job.Finish(2, nullptr, 0, 0, absl::InternalError("two"));
  job.FailUnfinished(absl::CancelledError("rest"));
  ASSERT_TRUE(job.Ready());
  EXPECT_EQ(job.FirstFailure(), absl::CancelledError("rest"));  // item 0
  EXPECT_EQ(ItemResult<int64_t>(job, 2).status(), absl::InternalError("two"));
  EXPECT_EQ(ItemResult<int64_t>(job, 5).status(), absl::CancelledError("rest"));
}

TEST(JobTest, FailUnfinishedLeavesFinishedItems) {
  Job job(3, "Map<f>");
  job.FinishFixed(1, 1, Raw({42}), 0, sizeof(int64_t));
  job.FailUnfinished(absl::CancelledError("terminated"));
  EXPECT_EQ(*ItemResult<int64_t>(job, 1), 42);
  EXPECT_EQ(ItemResult<int64_t>(job, 0).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(ItemResult<int64_t>(job, 2).status().code(), absl::StatusCode::kCancelled);
}

TEST(JobTest, WaitsTimeOut) {
  Job job(2, "Map<f>");
  EXPECT_FALSE(job.WaitAll(Deadline::After(absl::Milliseconds(1))));
  EXPECT_FALSE(job.WaitItem(0, Deadline::After(absl::Milliseconds(1))));
  EXPECT_FALSE(job.WaitCompleted(0, Deadline::After(absl::Milliseconds(1))).has_value());
  job.FinishFixed(1, 1, Raw({5}), 0, sizeof(int64_t));
  EXPECT_TRUE(job.WaitItem(1, Deadline::After(absl::ZeroDuration())));
  EXPECT_FALSE(job.WaitItem(0, Deadline::After(absl::Milliseconds(1))));
  EXPECT_FALSE(job.WaitAll(Deadline::After(absl::Milliseconds(1))));
}

TEST(JobTest, WaitCompletedFollowsCompletionOrder) {
  Job job(6, "Map<f>");
  job.FinishFixed(4, 2, Raw({5, 6}), 0, sizeof(int64_t));
  job.Finish(1, nullptr, 0, 0, absl::InternalError("one"));
  job.FinishFixed(0, 1, Raw({1}), 0, sizeof(int64_t));
  std::vector<size_t> order;
  for (size_t p = 0; p < 4; ++p) {
    std::optional<size_t> i = job.WaitCompleted(p, Deadline::After(absl::ZeroDuration()));
    ASSERT_TRUE(i.has_value());
    order.push_back(*i);
  }
  EXPECT_EQ(order, (std::vector<size_t>{4, 5, 1, 0}));
  EXPECT_FALSE(job.WaitCompleted(4, Deadline::After(absl::Milliseconds(1))).has_value());
}

// Waiters in other threads wake when the items they wait for finish (no timing: each waiter
// blocks until its condition holds, bounded by a generous safety deadline).
TEST(JobTest, WaitersInOtherThreadsWake) {
  constexpr size_t kItems = 64;
  Job job(kItems, "Map<f>");
  std::vector<size_t> unordered;
  std::vector<bool> item_seen(kItems, false);
  std::thread all([&] { EXPECT_TRUE(job.WaitAll(Deadline::After(absl::Seconds(60)))); });
  std::thread items([&] {
    for (size_t i = 0; i < kItems; ++i) {
      item_seen[i] = job.WaitItem(i, Deadline::After(absl::Seconds(60)));
    }
  });
  std::thread completed([&] {
    for (size_t p = 0; p < kItems; ++p) {
      std::optional<size_t> i = job.WaitCompleted(p, Deadline::After(absl::Seconds(60)));
      if (!i.has_value()) return;
      unordered.push_back(*i);
    }
  });
  std::thread producer([&] {
    for (size_t i = kItems; i-- > 0;) {
      job.FinishFixed(i, 1, Raw({static_cast<int64_t>(i)}), 0, sizeof(int64_t));
    }
  });
  producer.join();
  all.join();
  items.join();
  completed.join();
  for (size_t i = 0; i < kItems; ++i) EXPECT_TRUE(item_seen[i]) << i;
  ASSERT_EQ(unordered.size(), kItems);
  for (size_t p = 0; p < kItems; ++p) EXPECT_EQ(unordered[p], kItems - 1 - p);
}

TEST(JobTest, DoneHooksRunOnceWhenTheLastItemIsRecorded) {
  Job job(2, "Map<f>");
  std::vector<int> ran;
  ASSERT_TRUE(job.AddDoneHook([&] { ran.push_back(1); }));
  ASSERT_TRUE(job.AddDoneHook([&] {
    ran.push_back(2);
    EXPECT_TRUE(job.Ready());  // the job's lock is not held
  }));
  EXPECT_FALSE(job.AnyDone());
  job.FinishFixed(1, 1, Raw({5}), 0, sizeof(int64_t));
  EXPECT_TRUE(job.AnyDone());
  EXPECT_TRUE(ran.empty());
  job.Finish(0, nullptr, 0, 0, absl::InternalError("zero"));
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
  job.FailUnfinished(absl::CancelledError("late"));  // nothing left: no second run
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
  // Added after the job is done: refused and left to the caller, untouched.
  Job::DoneHook late = [&] { ran.push_back(3); };
  EXPECT_FALSE(job.AddDoneHook(std::move(late)));
  ASSERT_TRUE(late);
  std::move(late)();
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
}

TEST(JobTest, EmptyJobIsReady) {
  Job job(0, "Map<f>");
  EXPECT_TRUE(job.Ready());
  EXPECT_TRUE(job.WaitAll(Deadline::After(absl::ZeroDuration())));
  EXPECT_FALSE(job.AddDoneHook([] {}));
}

TEST(BatchTest, AddItemRefusesDescriptorsAndCounts) {
  Batch batch;
  ASSERT_TRUE(AddItem(batch, std::tuple<int64_t, std::string>(3, "x")).ok());
  ASSERT_TRUE(AddItem(batch, std::tuple<int64_t, std::string>(4, "yz")).ok());
  EXPECT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch.offsets.size(), 3u);
}

}  // namespace
}  // namespace mp::pool_internal
