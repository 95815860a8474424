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

Event Rss(uint32_t pid) {
  Event e;
  e.severity = Severity::kDebug;
  RssChange r;
  r.pid = pid;
  e.payload = r;
  return e;
}

TEST(EventBusTest, WantsFollowsTheInterestOfSubscriptionsAndTheRing) {
  EventBus bus(16, Severity::kInfo);  // the ring wants info and above, of every kind
  EXPECT_TRUE(bus.Wants(EventKind::kMemoryUsage, Severity::kInfo));
  EXPECT_FALSE(bus.Wants(EventKind::kRssChange, Severity::kDebug));
  auto metrics = bus.Subscribe(nullptr, 4, std::nullopt, Interest::Kinds({EventKind::kOomKill}));
  EXPECT_FALSE(bus.Wants(EventKind::kRssChange, Severity::kDebug));
  auto debug = bus.Subscribe(nullptr, 4, std::nullopt,
                             Interest::Kinds({EventKind::kRssChange}, Severity::kDebug));
  EXPECT_TRUE(bus.Wants(EventKind::kRssChange, Severity::kDebug));
  EXPECT_FALSE(bus.Wants(EventKind::kProcessLifecycle, Severity::kDebug));
  bus.SetInterest(debug, Interest::None());
  EXPECT_FALSE(bus.Wants(EventKind::kRssChange, Severity::kDebug));
  bus.SetInterest(debug, Interest::All());
  EXPECT_TRUE(bus.Wants(EventKind::kProcessLifecycle, Severity::kDebug));
  bus.Unsubscribe(debug);
  EXPECT_FALSE(bus.Wants(EventKind::kProcessLifecycle, Severity::kDebug));
  // No ring: only subscriptions count.
  EventBus no_ring(0);
  EXPECT_FALSE(no_ring.Wants(EventKind::kOomKill, Severity::kCritical));
  auto all = no_ring.Subscribe(nullptr, 4);  // the default interest: everything
  EXPECT_TRUE(no_ring.Wants(EventKind::kRssChange, Severity::kDebug));
}

TEST(EventBusTest, EventsBelowTheRingSeverityAreLiveOnlyAndAResumeIsToldSo) {
  EventBus bus(16, Severity::kInfo);
  auto live = bus.Subscribe(nullptr, 16);
  bus.Publish(Usage(1));  // 1, retained
  bus.Publish(Rss(7));    // 2, delivered live, not retained
  bus.Publish(Rss(8));    // 3
  bus.Publish(Usage(2));  // 4
  for (uint64_t want = 1; want <= 4; ++want) EXPECT_EQ(live->Next(absl::ZeroDuration())->seq, want);
  EXPECT_EQ(bus.oldest_retained_seq(), 1u);

  // A resume that wants debug events learns that two of the gap cannot be replayed.
  auto debug = bus.Subscribe(nullptr, 16, uint64_t{0});
  auto notice = debug->Next(absl::ZeroDuration());
  ASSERT_EQ(notice->kind(), EventKind::kEventsLost);
  const auto& lost = std::get<EventsLost>(notice->payload);
  EXPECT_EQ(lost.source, "replay_live_only");
  EXPECT_EQ(lost.count, 2u);
  EXPECT_EQ(lost.first_seq, 1u);
  EXPECT_EQ(lost.last_seq, 4u);
  EXPECT_EQ(debug->Next(absl::ZeroDuration())->seq, 1u);
  EXPECT_EQ(debug->Next(absl::ZeroDuration())->seq, 4u);
  EXPECT_EQ(debug->Next(absl::ZeroDuration()), nullptr);

  // One that asks only for kinds never left out of the ring (here: usage) has no gap either.
  auto usage = bus.Subscribe(nullptr, 16, uint64_t{0}, Interest::Kinds({EventKind::kMemoryUsage}));
  EXPECT_EQ(usage->Next(absl::ZeroDuration())->seq, 1u);

  // One that asks for info and above has no gap: everything it could take is retained.
  auto info =
      bus.Subscribe(nullptr, 16, uint64_t{0}, Interest{Interest::kAllKinds, Severity::kInfo});
  EXPECT_EQ(info->Next(absl::ZeroDuration())->seq, 1u);
  EXPECT_EQ(info->Next(absl::ZeroDuration())->seq, 4u);
  EXPECT_EQ(info->Next(absl::ZeroDuration()), nullptr);
}

TEST(EventBusTest, EvictionFromASeverityFilteredRingIsReportedFromTheNewestEvicted) {
  EventBus bus(2, Severity::kInfo);
  bus.Publish(Usage(1));  // 1, evicted below
  bus.Publish(Rss(1));    // 2, never retained
  bus.Publish(Usage(2));  // 3
  bus.Publish(Usage(3));  // 4: the ring holds 3, 4
  auto sub =
      bus.Subscribe(nullptr, 16, uint64_t{0}, Interest{Interest::kAllKinds, Severity::kInfo});
  auto notice = sub->Next(absl::ZeroDuration());
  ASSERT_EQ(notice->kind(), EventKind::kEventsLost);
  EXPECT_EQ(std::get<EventsLost>(notice->payload).source, "replay");
  EXPECT_EQ(std::get<EventsLost>(notice->payload).last_seq, 1u);  // 1 left; 2 was never kept
  EXPECT_EQ(sub->Next(absl::ZeroDuration())->seq, 3u);
  EXPECT_EQ(sub->Next(absl::ZeroDuration())->seq, 4u);
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
