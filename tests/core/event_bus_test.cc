#include "agent/core/event_bus.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tapio {
namespace {

Event Usage(uint64_t bytes) {
  Event e;
  MemoryUsage u;
  u.usage_bytes = bytes;
  e.payload = u;
  return e;
}

TEST(EventBusTest, AssignsIncreasingSequenceNumbers) {
  EventBus bus(8);
  EXPECT_EQ(bus.Publish(Usage(1))->seq, 1u);
  EXPECT_EQ(bus.Publish(Usage(2))->seq, 2u);
  EXPECT_EQ(bus.last_seq(), 2u);
}

TEST(EventBusTest, FilterSeesOnlyAcceptedEvents) {
  EventBus bus(8);
  auto sub = bus.Subscribe(
      [](const Event& e) { return std::get<MemoryUsage>(e.payload).usage_bytes > 5; }, 8);
  bus.Publish(Usage(1));
  bus.Publish(Usage(10));
  auto e = sub->Next(absl::Milliseconds(10));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(std::get<MemoryUsage>(e->payload).usage_bytes, 10u);
  EXPECT_EQ(sub->Next(absl::Milliseconds(1)), nullptr);
}

TEST(EventBusTest, SlowSubscriberLosesEventsAndIsToldInBand) {
  EventBus bus(64);
  auto slow = bus.Subscribe(nullptr, 2);
  auto fast = bus.Subscribe(nullptr, 64);
  for (int i = 0; i < 10; ++i) bus.Publish(Usage(i));
  EXPECT_EQ(slow->dropped_total(), 8u);
  EXPECT_EQ(fast->dropped_total(), 0u);
  EXPECT_EQ(slow->Next(absl::ZeroDuration())->seq, 1u);
  EXPECT_EQ(slow->Next(absl::ZeroDuration())->seq, 2u);
  auto notice = slow->Next(absl::ZeroDuration());
  ASSERT_NE(notice, nullptr);
  ASSERT_EQ(notice->kind(), EventKind::kEventsLost);
  const auto& lost = std::get<EventsLost>(notice->payload);
  EXPECT_EQ(lost.count, 8u);
  EXPECT_EQ(lost.first_seq, 3u);
  EXPECT_EQ(lost.last_seq, 10u);
  bus.Publish(Usage(99));
  EXPECT_EQ(slow->Next(absl::ZeroDuration())->seq, 11u);
  EXPECT_EQ(bus.subscriber_drops_total(), 8u);
}

TEST(EventBusTest, LossNoticeNeverPrecedesEventsQueuedBeforeTheLoss) {
  EventBus bus(64);
  auto sub = bus.Subscribe(nullptr, 2);
  bus.Publish(Usage(1));  // seq 1
  bus.Publish(Usage(2));  // seq 2
  bus.Publish(Usage(3));  // seq 3: dropped
  EXPECT_EQ(sub->Next(absl::ZeroDuration())->seq, 1u);
  bus.Publish(Usage(4));  // seq 4: queued after the loss
  bus.Publish(Usage(5));  // seq 5: dropped
  std::vector<std::string> got;
  while (EventPtr e = sub->Next(absl::ZeroDuration())) {
    if (e->kind() == EventKind::kEventsLost) {
      const auto& l = std::get<EventsLost>(e->payload);
      got.push_back("lost " + std::to_string(l.first_seq) + "-" + std::to_string(l.last_seq));
    } else {
      got.push_back(std::to_string(e->seq));
    }
  }
  EXPECT_EQ(got, (std::vector<std::string>{"2", "lost 3-3", "4", "lost 5-5"}));
}

TEST(EventBusTest, ResumeReplaysRetainedEventsAndReportsTheGap) {
  EventBus bus(4);
  for (int i = 0; i < 10; ++i) bus.Publish(Usage(i));  // retains 7..10
  auto sub = bus.Subscribe(nullptr, 16, uint64_t{2});
  auto notice = sub->Next(absl::ZeroDuration());
  ASSERT_EQ(notice->kind(), EventKind::kEventsLost);
  EXPECT_EQ(std::get<EventsLost>(notice->payload).source, "replay");
  EXPECT_EQ(std::get<EventsLost>(notice->payload).count, 4u);  // 3..6
  for (uint64_t want = 7; want <= 10; ++want) EXPECT_EQ(sub->Next(absl::ZeroDuration())->seq, want);
  EXPECT_EQ(sub->Next(absl::ZeroDuration()), nullptr);
}

TEST(EventBusTest, ResumeWithinWindowHasNoGap) {
  EventBus bus(16);
  for (int i = 0; i < 5; ++i) bus.Publish(Usage(i));
  auto sub = bus.Subscribe(nullptr, 16, uint64_t{3});
  EXPECT_EQ(sub->Next(absl::ZeroDuration())->seq, 4u);
  EXPECT_EQ(sub->Next(absl::ZeroDuration())->seq, 5u);
}

TEST(EventBusTest, UnsubscribeClosesAndWakesTheReader) {
  EventBus bus(4);
  auto sub = bus.Subscribe(nullptr, 4);
  bus.Unsubscribe(sub);
  EXPECT_TRUE(sub->closed());
  EXPECT_EQ(sub->Next(absl::Seconds(5)), nullptr);  // returns at once, not after 5 s
  EXPECT_EQ(bus.subscriber_count(), 0u);
  bus.Unsubscribe(sub);  // twice is fine
}

}  // namespace
}  // namespace tapio
