// EventBus: the fan-out at the end of the pipeline. Assigns sequence numbers, keeps a bounded
// replay ring, and hands every published event to each subscription whose filter accepts it.
//
// Contracts:
//  - Publish never blocks on a subscriber: each subscription has a bounded queue; when it is full
//    the event is dropped for that subscriber only and counted. The subscriber gets an in-band
//    EventsLost event (seq 0, source "subscriber_queue") with the count and the sequence range
//    exactly where the events were dropped (LossyQueue), before the events that follow.
//  - Resume: Subscribe(resume_after = N) first replays retained events with seq > N that pass the
//    filter; if events after N have already left the ring, an EventsLost (source "replay") says so.
//  - Thread-safety: every method may be called from any thread. Publish is called by the pipeline
//    threads (ingest, sampler); Next() by one consumer thread per subscription.
#ifndef TAPIO_AGENT_CORE_EVENT_BUS_H_
#define TAPIO_AGENT_CORE_EVENT_BUS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/core/event.h"
#include "agent/core/lossy_queue.h"

namespace tapio {

// An in-band EventsLost notice (seq 0, severity warning, the agent's own empty identity):
// `source` is "subscriber_queue", "replay", "ringbuf", ... (see EventsLost).
EventPtr MakeLostNotice(const char* source, uint64_t count, uint64_t first_seq, uint64_t last_seq);

class EventBus {
 public:
  using Filter = std::function<bool(const Event&)>;  // null = accept all

  class Subscription {
   public:
    Subscription(Filter filter, size_t capacity);
    // Next event for this subscriber, waiting up to `timeout`. nullptr on timeout or once
    // closed and drained.
    EventPtr Next(absl::Duration timeout);
    // Stops new events, wakes a blocked Next(); Next() then returns what is still queued and
    // nullptr after that. Idempotent.
    void Close();
    bool closed() const;
    uint64_t dropped_total() const;  // events dropped for this subscriber since it began
    uint64_t delivered_total() const;

   private:
    friend class EventBus;
    // Called under EventBus's publish lock; takes only this subscription's lock.
    void Offer(const EventPtr& event);

    const Filter filter_;
    mutable absl::Mutex mu_;
    LossyQueue<EventPtr> queue_ ABSL_GUARDED_BY(mu_);
    bool closed_ ABSL_GUARDED_BY(mu_) = false;
    uint64_t delivered_total_ ABSL_GUARDED_BY(mu_) = 0;
  };

  explicit EventBus(size_t replay_capacity = 65536);

  // Assigns the next sequence number, retains the event for replay, offers it to subscribers.
  EventPtr Publish(Event event);

  // `queue_capacity` >= 1. With resume_after, replays retained events first (see above).
  std::shared_ptr<Subscription> Subscribe(Filter filter, size_t queue_capacity,
                                          std::optional<uint64_t> resume_after = std::nullopt);
  // Closes and forgets the subscription. Safe to call twice.
  void Unsubscribe(const std::shared_ptr<Subscription>& subscription);

  size_t subscriber_count() const;
  uint64_t last_seq() const;
  uint64_t oldest_retained_seq() const;     // 0 when nothing retained
  uint64_t subscriber_drops_total() const;  // summed over current and past subscribers

 private:
  const size_t replay_capacity_;
  mutable absl::Mutex mu_;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::deque<EventPtr> replay_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Subscription>> subscribers_ ABSL_GUARDED_BY(mu_);
  uint64_t retired_drops_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_EVENT_BUS_H_
