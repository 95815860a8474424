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
//    and the stream gets an in-band EventsLost (seq 0, source "subscriber_queue", count and seq
//    range) exactly where they were dropped: after the events queued before them, before those
//    that follow. Consecutive drops make one notice, whose range holds only dropped events.
//  - If the dispatcher itself falls behind, the feed's bus queue overflows; those events are lost
//    for every stream and reported to each, in-band, the same way.
//  - Resume: Attach(resume_after = N) first delivers the bus's retained events with seq > N (and
//    an EventsLost "replay" if some already left the replay window), then live events, with no
//    gap or duplicate at the seam.
//  - Each event a stream takes is serialized once for all streams (WireEncoder), not once per
//    stream.
//  - Thread-safety: Attach/Detach from any thread; a StreamQueue's Next()/TryPop() from one
//    consumer at a time.
#ifndef TAPIO_AGENT_API_FANOUT_H_
#define TAPIO_AGENT_API_FANOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/api/filter.h"
#include "agent/core/event_bus.h"
#include "agent/core/lossy_queue.h"
#include "grpcpp/support/slice.h"

namespace tapio::api {

// One message for a stream: the event and, when the fan-out has an encoder, its wire form
// (a serialized tapio.v1.Event) made once and shared, by reference count, by every stream that
// takes it. An empty `wire` (in-band loss notices, replayed events, no encoder) is for the
// consumer to encode.
struct StreamItem {
  EventPtr event;
  grpc::Slice wire;
};

class StreamQueue {
 public:
  StreamQueue(std::shared_ptr<const EventFilter> filter, size_t capacity);

  // The next event for the stream, waiting up to `timeout`; nullptr on timeout or once closed.
  EventPtr Next(absl::Duration timeout);

  // Non-blocking, for a consumer driven by callbacks (the API's stream reactor): kItem fills
  // `item`; kEmpty arms the wake function, which is then called once, on the dispatcher's
  // thread or the closing thread, when an event or a loss arrives or the queue closes; kClosed
  // means the stream is over.
  enum class PopResult { kItem, kEmpty, kClosed };
  PopResult TryPop(StreamItem* item);
  // Set before the first TryPop. Called without any of the queue's or the fan-out's locks held.
  void SetWake(std::function<void()> wake);
  bool empty() const;

  void Close();
  bool closed() const;
  uint64_t dropped_total() const;

 private:
  friend class EventFanout;
  // Dispatcher side. Accepts: the stream's filter. Offer and Lost return true when the consumer
  // is waiting and must be woken (the dispatcher calls Wake() once it has released its lock).
  bool Accepts(const Event& event) const;
  bool Offer(const EventPtr& event, const grpc::Slice& wire);
  bool Lost(uint64_t count, uint64_t first_seq, uint64_t last_seq);
  void Wake();
  // Replay side (the attaching thread, before live events are read).
  void PushFront(std::vector<EventPtr> replay);
  // Pops the next item (a loss as its EventsLost notice); false when none.
  bool PopLocked(StreamItem* item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<const EventFilter> filter_;
  mutable absl::Mutex mu_;
  LossyQueue<StreamItem> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_armed_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> wake_ ABSL_GUARDED_BY(mu_);
  uint64_t skip_through_seq_ ABSL_GUARDED_BY(mu_) = 0;  // resume_after: already delivered
};

class EventFanout {
 public:
  // Serializes an event for the wire; called at most once per event, on the dispatcher thread,
  // and only when some stream takes the event.
  using WireEncoder = std::function<grpc::Slice(const Event&)>;

  // Subscribes to `bus` with a queue of `feed_capacity` events and starts the dispatcher.
  // Without an encoder, items carry no wire form.
  EventFanout(EventBus* bus, size_t feed_capacity, WireEncoder encoder = nullptr);
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
  // Offers one feed event (or the feed's own loss) to every stream; collects those to wake.
  void DispatchLocked(const EventPtr& event, std::vector<std::shared_ptr<StreamQueue>>* to_wake)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Declares to the bus what the attached streams can take (EventBus::Wants).
  void UpdateFeedInterestLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EventBus* const bus_;
  const WireEncoder encoder_;
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
