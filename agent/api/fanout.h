// EventFanout: the API server's one subscriber on the EventBus, and its own fan-out to streams.
//
// Why: EventBus::Publish offers each event to every bus subscription on the publishing (pipeline)
// thread. With one bus subscription per gRPC stream, the pipeline pays for every stream, and
// measured on the 2-core VM its publish rate fell from ~10,000/s to ~1,000/s with 100 streams
// (docs/performance/api.md). Here the bus sees one subscription (the "feed"); a dispatcher thread
// owned by this class offers each event to the streams' bounded queues.
//
// Contracts:
//  - A stream's queue is bounded; when full, events are dropped for that stream only and counted,
//    and the stream's next Next() returns an in-band EventsLost (seq 0, source
//    "subscriber_queue", count and seq range) before the events that follow: the same contract
//    as EventBus::Subscription.
//  - If the dispatcher itself falls behind, the feed's bus queue overflows; those events are lost
//    for every stream and reported to each, in-band, the same way.
//  - Resume: Attach(resume_after = N) first delivers the bus's retained events with seq > N (and
//    an EventsLost "replay" if some already left the replay window), then live events, with no
//    gap or duplicate at the seam.
//  - Thread-safety: Attach/Detach from any thread; a StreamQueue's Next() from one thread.
#ifndef TAPIO_AGENT_API_FANOUT_H_
#define TAPIO_AGENT_API_FANOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/api/filter.h"
#include "agent/core/event_bus.h"

namespace tapio::api {

class StreamQueue {
 public:
  StreamQueue(std::shared_ptr<const EventFilter> filter, size_t capacity);

  // The next event for the stream, waiting up to `timeout`; nullptr on timeout or once closed.
  EventPtr Next(absl::Duration timeout);
  void Close();
  bool closed() const;
  uint64_t dropped_total() const;

 private:
  friend class EventFanout;
  // Dispatcher side. Offer filters; Lost records events that never reached the dispatcher.
  void Offer(const EventPtr& event);
  void Lost(uint64_t count, uint64_t first_seq, uint64_t last_seq);
  // Replay side (the attaching thread, before live events are read).
  void PushFront(std::vector<EventPtr> replay);

  const std::shared_ptr<const EventFilter> filter_;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<EventPtr> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t pending_lost_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t lost_first_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t lost_last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_total_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t skip_through_seq_ ABSL_GUARDED_BY(mu_) = 0;  // resume_after: already delivered
};

class EventFanout {
 public:
  // Subscribes to `bus` with a queue of `feed_capacity` events and starts the dispatcher.
  EventFanout(EventBus* bus, size_t feed_capacity);
  ~EventFanout();  // Stop()
  EventFanout(const EventFanout&) = delete;
  EventFanout& operator=(const EventFanout&) = delete;

  std::shared_ptr<StreamQueue> Attach(const std::shared_ptr<const EventFilter>& filter,
                                      size_t capacity, std::optional<uint64_t> resume_after);
  void Detach(const std::shared_ptr<StreamQueue>& stream);
  // Closes every stream, stops the dispatcher, leaves the bus. Idempotent.
  void Stop();

  size_t stream_count() const;
  // The last bus sequence number the dispatcher has handed to the streams (lag = bus last_seq
  // minus this).
  uint64_t dispatched_seq() const;
  // Dropped for streams (their queues and the feed's), over current and past streams.
  uint64_t drops_total() const;

 private:
  void Dispatch();

  EventBus* const bus_;
  std::shared_ptr<EventBus::Subscription> feed_;
  std::atomic<bool> stop_{false};
  std::thread dispatcher_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<StreamQueue>> streams_ ABSL_GUARDED_BY(mu_);
  uint64_t last_dispatched_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t retired_drops_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tapio::api

#endif  // TAPIO_AGENT_API_FANOUT_H_
