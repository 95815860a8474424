// LossyQueue: the bounded queue behind every subscriber of Tapio's events (EventBus
// subscriptions, the API's stream queues). When full it drops the new item and records the loss
// at that point of the queue, so the consumer learns of a gap exactly where it happened: after
// every item queued before it, before every item queued after it. Consecutive drops make one
// loss whose range holds only dropped sequence numbers.
//
// Not thread-safe: the owner guards it with its own lock.
#ifndef TAPIO_AGENT_CORE_LOSSY_QUEUE_H_
#define TAPIO_AGENT_CORE_LOSSY_QUEUE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <utility>
#include <vector>

namespace tapio {

struct QueueLoss {
  uint64_t count = 0;
  uint64_t first_seq = 0;  // 0 when unknown
  uint64_t last_seq = 0;
};

template <typename T>
class LossyQueue {
 public:
  explicit LossyQueue(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

  // Queues `item`, or, when `capacity` items are queued, records it (by `seq`) as lost here.
  // Returns whether it was queued.
  bool Push(T item, uint64_t seq) {
    if (items_ >= capacity_) {
      AddLoss(1, seq, seq);
      return false;
    }
    entries_.push_back(Entry{std::move(item), QueueLoss{}, false});
    ++items_;
    return true;
  }

  // Records `count` items lost at the tail (extends a loss already there). Loss markers do not
  // count against the capacity: there is at most one between two queued items.
  void AddLoss(uint64_t count, uint64_t first_seq, uint64_t last_seq) {
    if (count == 0) return;
    dropped_total_ += count;
    if (!entries_.empty() && entries_.back().is_loss) {
      QueueLoss& loss = entries_.back().loss;
      loss.count += count;
      if (first_seq != 0 && (loss.first_seq == 0 || first_seq < loss.first_seq)) {
        loss.first_seq = first_seq;
      }
      loss.last_seq = std::max(loss.last_seq, last_seq);
      return;
    }
    entries_.push_back(Entry{T{}, QueueLoss{count, first_seq, last_seq}, true});
  }

  // Puts `items` before everything queued (a replay), whatever the capacity.
  void PushFront(std::vector<T> items) {
    std::vector<Entry> front;
    front.reserve(items.size());
    for (T& item : items) front.push_back(Entry{std::move(item), QueueLoss{}, false});
    items_ += front.size();
    entries_.insert(entries_.begin(), std::make_move_iterator(front.begin()),
                    std::make_move_iterator(front.end()));
  }

  enum class Popped { kNothing, kItem, kLoss };
  // The oldest entry: an item (into *item) or a loss (into *loss).
  Popped Pop(T* item, QueueLoss* loss) {
    if (entries_.empty()) return Popped::kNothing;
    Entry& front = entries_.front();
    Popped what = Popped::kItem;
    if (front.is_loss) {
      *loss = front.loss;
      what = Popped::kLoss;
    } else {
      *item = std::move(front.item);
      --items_;
    }
    entries_.pop_front();
    return what;
  }

  bool empty() const { return entries_.empty(); }  // no item and no loss to report
  void clear() {
    entries_.clear();
    items_ = 0;
  }
  uint64_t dropped_total() const { return dropped_total_; }

 private:
  struct Entry {
    T item;
    QueueLoss loss;
    bool is_loss;
  };
  const size_t capacity_;
  std::deque<Entry> entries_;
  size_t items_ = 0;  // entries that are items (markers excluded)
  uint64_t dropped_total_ = 0;
};

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_LOSSY_QUEUE_H_
