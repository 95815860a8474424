// EventFanout: the API server's single bus subscription and its own fan-out to streams.
#include "agent/api/fanout.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace tapio::api {
namespace {

Event Usage(uint64_t usage) {
  Event e;
  MemoryUsage u;
  u.usage_bytes = usage;
  e.payload = u;
  return e;
}

std::shared_ptr<const EventFilter> AcceptAll() {
  return std::make_shared<const EventFilter>(*EventFilter::Compile(FilterSpec{}));
}

std::shared_ptr<const EventFilter> OnlyKind(EventKind kind) {
  FilterSpec spec;
  SelectorSpec selector;
  selector.event_kinds = {kind};
  spec.allow = {selector};
  return std::make_shared<const EventFilter>(*EventFilter::Compile(spec));
}

// Reads until the stream has been idle for 300 ms (callers publish everything first, or join
// their publisher before the stream can go idle); returns the seqs and adds up the losses.
std::vector<uint64_t> ReadAll(StreamQueue* stream, uint64_t* lost) {
  std::vector<uint64_t> seqs;
  while (EventPtr e = stream->Next(absl::Milliseconds(300))) {
    if (e->seq == 0) {
      *lost += std::get<EventsLost>(e->payload).count;
      continue;
    }
    seqs.push_back(e->seq);
  }
  return seqs;
}

TEST(EventFanoutTest, BusSeesOneSubscriberWhateverTheStreamCount) {
  EventBus bus(1024);
  EventFanout fanout(&bus, 1024);
  std::vector<std::shared_ptr<StreamQueue>> streams;
  for (int i = 0; i < 5; ++i) streams.push_back(fanout.Attach(AcceptAll(), 16, std::nullopt));
  EXPECT_EQ(bus.subscriber_count(), 1u);
  EXPECT_EQ(fanout.stream_count(), 5u);
  bus.Publish(Usage(1));
  for (auto& s : streams) {
    EventPtr e = s->Next(absl::Seconds(5));
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->seq, 1u);
  }
  fanout.Detach(streams[0]);
  EXPECT_EQ(fanout.stream_count(), 4u);
  EXPECT_EQ(streams[0]->Next(absl::Milliseconds(1)), nullptr);
}

TEST(EventFanoutTest, ResumeWhilePublishingHasNoGapOrDuplicateAtTheSeam) {
  for (int round = 0; round < 10; ++round) {
    EventBus bus(65536);
    EventFanout fanout(&bus, 65536);
    constexpr uint64_t kEvents = 3000;
    for (uint64_t i = 0; i < 200; ++i) bus.Publish(Usage(i));
    std::thread publisher([&] {
      for (uint64_t i = 200; i < kEvents; ++i) bus.Publish(Usage(i));
    });
    auto stream = fanout.Attach(AcceptAll(), kEvents, uint64_t{100});
    uint64_t lost = 0;
    auto seqs = ReadAll(stream.get(), &lost);  // the publisher never pauses 300 ms
    publisher.join();
    EXPECT_EQ(lost, 0u);
    ASSERT_EQ(seqs.size(), kEvents - 100) << "round " << round;
    for (size_t i = 0; i < seqs.size(); ++i) {
      ASSERT_EQ(seqs[i], 101 + i) << "round " << round << " index " << i;
    }
  }
}

TEST(EventFanoutTest, ResumeBeyondWhatWasDispatchedSkipsWhatTheClientHas) {
  EventBus bus(1024);
  EventFanout fanout(&bus, 1024);
  // resume_after 5 before anything was published: seqs 1..5 must not be delivered.
  auto stream = fanout.Attach(AcceptAll(), 64, uint64_t{5});
  for (int i = 0; i < 8; ++i) bus.Publish(Usage(i));
  uint64_t lost = 0;
  auto seqs = ReadAll(stream.get(), &lost);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{6, 7, 8}));
}

TEST(EventFanoutTest, ReplayLossCountsOnlyWhatNoPathCanDeliver) {
  // Ring of 4: after 10 events only 7..10 are retained. Whether the dispatcher has already
  // handled them when the stream attaches or not, the client must get every event after 2 except
  // exactly those reported lost: no event twice, none both lost and delivered.
  for (int round = 0; round < 10; ++round) {
    EventBus bus(4);
    EventFanout fanout(&bus, 1024);
    for (int i = 0; i < 10; ++i) bus.Publish(Usage(i));
    if (round % 2) absl::SleepFor(absl::Milliseconds(2));  // let the dispatcher catch up
    auto stream = fanout.Attach(AcceptAll(), 64, uint64_t{2});
    uint64_t lost = 0;
    auto seqs = ReadAll(stream.get(), &lost);
    ASSERT_FALSE(seqs.empty());
    EXPECT_EQ(seqs.back(), 10u);
    EXPECT_EQ(seqs.size() + lost, 8u) << "round " << round;
    for (size_t i = 1; i < seqs.size(); ++i) EXPECT_GT(seqs[i], seqs[i - 1]);
  }
}

TEST(EventFanoutTest, FeedOverflowIsToldToEveryStream) {
  EventBus bus(1024);
  EventFanout fanout(&bus, 4);  // a tiny feed: the dispatcher cannot keep up with a burst
  auto a = fanout.Attach(AcceptAll(), 100000, std::nullopt);
  auto b = fanout.Attach(AcceptAll(), 100000, std::nullopt);
  constexpr uint64_t kEvents = 20000;
  for (uint64_t i = 0; i < kEvents; ++i) bus.Publish(Usage(i));
  const uint64_t feed_drops = bus.subscriber_drops_total();
  ASSERT_GT(feed_drops, 0u) << "the burst did not overflow the feed; the test proves nothing";
  for (auto* s : {a.get(), b.get()}) {
    uint64_t lost = 0;
    auto seqs = ReadAll(s, &lost);
    EXPECT_EQ(seqs.size() + lost, kEvents);
    EXPECT_EQ(lost, feed_drops);
  }
  EXPECT_EQ(fanout.drops_total(), 2 * feed_drops);
}

TEST(EventFanoutTest, SlowStreamLosesOnlyItsOwnEvents) {
  EventBus bus(1024);
  EventFanout fanout(&bus, 65536);
  auto slow = fanout.Attach(AcceptAll(), 2, std::nullopt);
  auto fast = fanout.Attach(AcceptAll(), 100000, std::nullopt);
  for (uint64_t i = 0; i < 1000; ++i) bus.Publish(Usage(i));
  uint64_t fast_lost = 0, slow_lost = 0;
  EXPECT_EQ(ReadAll(fast.get(), &fast_lost).size(), 1000u);
  EXPECT_EQ(fast_lost, 0u);
  auto slow_seqs = ReadAll(slow.get(), &slow_lost);
  EXPECT_GT(slow_lost, 0u);
  EXPECT_EQ(slow_seqs.size() + slow_lost, 1000u);
  EXPECT_EQ(bus.subscriber_drops_total(), 0u);
}

TEST(EventFanoutTest, FilterAppliesPerStream) {
  EventBus bus(1024);
  EventFanout fanout(&bus, 1024);
  auto kills = fanout.Attach(OnlyKind(EventKind::kOomKill), 16, std::nullopt);
  bus.Publish(Usage(1));
  Event kill;
  kill.payload = OomKill{};
  bus.Publish(std::move(kill));
  EventPtr e = kills->Next(absl::Seconds(5));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->seq, 2u);
}

TEST(EventFanoutTest, TheFeedAsksTheBusForWhatTheStreamsCanTake) {
  EventBus bus(0);  // no ring: only subscriptions decide what is wanted
  EventFanout fanout(&bus, 64);
  EXPECT_FALSE(bus.Wants(EventKind::kOomKill, Severity::kCritical));  // no stream yet
  auto a = fanout.Attach(OnlyKind(EventKind::kOomKill), 16, std::nullopt);
  EXPECT_TRUE(bus.Wants(EventKind::kOomKill, Severity::kCritical));
  EXPECT_FALSE(bus.Wants(EventKind::kRssChange, Severity::kDebug));
  auto b = fanout.Attach(AcceptAll(), 16, std::nullopt);
  EXPECT_TRUE(bus.Wants(EventKind::kRssChange, Severity::kDebug));
  fanout.Detach(b);
  EXPECT_FALSE(bus.Wants(EventKind::kRssChange, Severity::kDebug));
  fanout.Detach(a);
  EXPECT_FALSE(bus.Wants(EventKind::kOomKill, Severity::kCritical));
}

}  // namespace
}  // namespace tapio::api
