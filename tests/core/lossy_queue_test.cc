#include "agent/core/lossy_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tapio {
namespace {

// What a consumer reads: "seq" for items, "lost:count:first-last" for losses.
std::vector<std::string> DrainAll(LossyQueue<uint64_t>* q) {
  std::vector<std::string> out;
  uint64_t item = 0;
  QueueLoss loss;
  for (;;) {
    switch (q->Pop(&item, &loss)) {
      case LossyQueue<uint64_t>::Popped::kNothing:
        return out;
      case LossyQueue<uint64_t>::Popped::kItem:
        out.push_back(std::to_string(item));
        break;
      case LossyQueue<uint64_t>::Popped::kLoss:
        out.push_back("lost:" + std::to_string(loss.count) + ":" + std::to_string(loss.first_seq) +
                      "-" + std::to_string(loss.last_seq));
        break;
    }
  }
}

TEST(LossyQueueTest, ALossIsToldExactlyWhereItHappened) {
  LossyQueue<uint64_t> q(2);
  EXPECT_TRUE(q.Push(1, 1));
  EXPECT_TRUE(q.Push(2, 2));
  EXPECT_FALSE(q.Push(3, 3));  // full: lost after 2
  uint64_t item = 0;
  QueueLoss loss;
  ASSERT_EQ(q.Pop(&item, &loss), LossyQueue<uint64_t>::Popped::kItem);  // 1 leaves: room
  EXPECT_TRUE(q.Push(4, 4));
  EXPECT_FALSE(q.Push(5, 5));  // lost after 4, not merged with the loss before 4
  EXPECT_FALSE(q.Push(6, 6));  // merged with 5
  EXPECT_EQ(DrainAll(&q), (std::vector<std::string>{"2", "lost:1:3-3", "4", "lost:2:5-6"}));
  EXPECT_EQ(q.dropped_total(), 3u);
  EXPECT_TRUE(q.empty());
}

TEST(LossyQueueTest, ExternalLossesAndReplayKeepTheirPlace) {
  LossyQueue<uint64_t> q(8);
  q.Push(10, 10);
  q.AddLoss(5, 11, 15);
  q.AddLoss(0, 0, 0);  // nothing
  q.AddLoss(2, 16, 17);
  q.Push(18, 18);
  q.PushFront({7, 8, 9});
  EXPECT_EQ(DrainAll(&q), (std::vector<std::string>{"7", "8", "9", "10", "lost:7:11-17", "18"}));
  EXPECT_EQ(q.dropped_total(), 7u);
}

TEST(LossyQueueTest, CapacityCountsItemsNotLossMarkers) {
  LossyQueue<uint64_t> q(1);
  q.Push(1, 1);
  q.Push(2, 2);  // lost
  uint64_t item = 0;
  QueueLoss loss;
  ASSERT_EQ(q.Pop(&item, &loss), LossyQueue<uint64_t>::Popped::kItem);
  EXPECT_TRUE(q.Push(3, 3)) << "the marker must not take the only slot";
  EXPECT_EQ(DrainAll(&q), (std::vector<std::string>{"lost:1:2-2", "3"}));
  q.Push(4, 4);
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.Push(5, 5));
}

}  // namespace
}  // namespace tapio
