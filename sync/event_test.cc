// Copyright 2026 The mp Authors.

#include "sync/event.h"

#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "sync/shm.h"
#include "sync/test_child.h"

namespace mp {
namespace {

using ::mp::testing::TestChild;
using ::mp::testing::TestPipe;

TEST(EventTest, SetClearIsSetWait) {
  absl::StatusOr<Event> event = Event::Create(ShmDomain::kFork);
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_FALSE(event->IsSet());
  EXPECT_FALSE(event->Wait(absl::ZeroDuration()).value());
  EXPECT_FALSE(event->Wait(absl::Milliseconds(2)).value());
  event->Set();
  EXPECT_TRUE(event->IsSet());
  EXPECT_TRUE(event->Wait().value());
  EXPECT_TRUE(event->Wait(absl::ZeroDuration()).value());
  event->Set();  // idempotent
  event->Clear();
  EXPECT_FALSE(event->IsSet());
  absl::Status negative = event->Wait(absl::Seconds(-1)).status();
  EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument) << negative;
}

TEST(EventTest, WakesEveryWaitingProcessAndThread) {
  absl::StatusOr<Event> event = Event::Create(ShmDomain::kTransferable);
  ASSERT_TRUE(event.ok());
  const int fd = event->handle().segment.fd();
  const uint64_t offset = event->handle().offset;
  TestPipe started;
  std::vector<TestChild> children;
  for (int c = 0; c < 4; ++c) {
    children.emplace_back([&] {
      // Half re-open it from the fd, as a spawned child would.
      Event mine = *event;
      if (c % 2 == 0) {
        absl::StatusOr<ShmSegment> seg = ShmSegment::Attach(fd);
        if (!seg.ok()) return 1;
        absl::StatusOr<Event> opened = Event::FromHandle({*seg, offset});
        if (!opened.ok()) return 2;
        mine = *opened;
      }
      started.Send();
      return mine.Wait(absl::Seconds(60)).value_or(false) ? 0 : 3;
    });
  }
  std::vector<std::thread> threads;
  std::vector<int> results(3, -1);
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] { results[t] = event->Wait(absl::Seconds(60)).value_or(false); });
  }
  for (int c = 0; c < 4; ++c) ASSERT_EQ(started.Receive(), 'x');
  event->Set();
  for (auto& t : threads) t.join();
  for (int r : results) EXPECT_EQ(r, 1);
  for (auto& child : children) EXPECT_EQ(child.Wait(), 0);
}

TEST(EventTest, PingPongBetweenProcesses) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 4096);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<Event> ping = Event::Create(*seg);
  absl::StatusOr<Event> pong = Event::Create(*seg);
  ASSERT_TRUE(ping.ok() && pong.ok());
  constexpr int kRounds = 2000;
  TestChild child([&] {
    for (int i = 0; i < kRounds; ++i) {
      if (!ping->Wait(absl::Seconds(60)).value_or(false)) return 1;
      ping->Clear();
      pong->Set();
    }
    return 0;
  });
  for (int i = 0; i < kRounds; ++i) {
    ping->Set();
    ASSERT_TRUE(pong->Wait(absl::Seconds(60)).value());
    pong->Clear();
  }
  EXPECT_EQ(child.Wait(), 0);
}

TEST(EventHandleTest, FromHandleValidates) {
  absl::StatusOr<ShmSegment> seg = ShmSegment::Create(ShmDomain::kFork, 4096);
  ASSERT_TRUE(seg.ok());
  absl::StatusOr<Event> event = Event::Create(*seg);
  ASSERT_TRUE(event.ok());
  absl::StatusOr<Event> again = Event::FromHandle(event->handle());
  ASSERT_TRUE(again.ok());
  event->Set();
  EXPECT_TRUE(again->IsSet());
  EXPECT_EQ(again->domain(), ShmDomain::kFork);
  absl::StatusOr<uint64_t> raw = seg->Allocate(64);
  ASSERT_TRUE(raw.ok());
  absl::Status bad = Event::FromHandle({*seg, *raw}).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("Event"), std::string::npos) << bad;
}

}  // namespace
}  // namespace mp
