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
//  - Interest: each subscription declares which kinds and severities it can accept at all; the
//    bus keeps their union (with what the replay ring retains) so a producer can ask Wants()
//    before it builds an event, and skip events that nobody would take. The Filter refines the
//    interest per event. Events below the ring's retention severity (debug by default: every
//    event) are delivered live but not retained; a resume whose interest reaches below it gets an
//    EventsLost (source "replay_live_only") for the events of the gap that cannot be replayed.
//  - Thread-safety: every method may be called from any thread. Publish is called by the pipeline
//    threads (ingest, sampler); Next() by one consumer thread per subscription.
#ifndef TAPIO_AGENT_CORE_EVENT_BUS_H_
#define TAPIO_AGENT_CORE_EVENT_BUS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
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

// Which events a subscriber can take at all: a bit per EventKind and a minimum severity.
struct Interest {
  static constexpr uint32_t kAllKinds = (1u << kEventKindCount) - 1;
  uint32_t kinds = kAllKinds;
  Severity min_severity = Severity::kDebug;

  static Interest All() { return Interest{}; }
  static Interest None() { return Interest{0, Severity::kCritical}; }
  static Interest Kinds(std::initializer_list<EventKind> kinds, Severity min = Severity::kDebug);
  bool Admits(EventKind kind, Severity severity) const {
    return (kinds >> static_cast<unsigned>(kind) & 1u) != 0 && severity >= min_severity;
  }
};

// The agent's replay window by default (--replay_events, --replay_min_severity): RSS changes and
// process lifecycle (debug) are live only.
inline constexpr size_t kDefaultReplayCapacity = 65536;
inline constexpr Severity kDefaultReplayMinSeverity = Severity::kInfo;

class EventBus {
 public:
  using Filter = std::function<bool(const Event&)>;  // null = accept all

  class Subscription {
   public:
    Subscription(Filter filter, size_t capacity, Interest interest);
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
    Interest interest_;  // guarded by the EventBus's lock
    mutable absl::Mutex mu_;
    LossyQueue<EventPtr> queue_ ABSL_GUARDED_BY(mu_);
    bool closed_ ABSL_GUARDED_BY(mu_) = false;
    uint64_t delivered_total_ ABSL_GUARDED_BY(mu_) = 0;
  };

  // The ring keeps up to `replay_capacity` events of at least `replay_min_severity`.
  explicit EventBus(size_t replay_capacity = 65536,
                    Severity replay_min_severity = Severity::kDebug);

  // Assigns the next sequence number, retains the event for replay, offers it to subscribers.
  EventPtr Publish(Event event);

  // Whether any subscription's interest, or the replay ring, would take an event of this kind and
  // severity. Lock-free (one relaxed load): for producers, before they build an event. An event
  // published while a new subscription is being added may miss it, as if published just before.
  bool Wants(EventKind kind, Severity severity) const {
    return static_cast<uint8_t>(severity) >=
           min_wanted_[static_cast<size_t>(kind)].load(std::memory_order_relaxed);
  }

  // `queue_capacity` >= 1. With resume_after, replays retained events first (see above).
  std::shared_ptr<Subscription> Subscribe(Filter filter, size_t queue_capacity,
                                          std::optional<uint64_t> resume_after = std::nullopt,
                                          Interest interest = Interest::All());
  // Changes what a subscription declares it takes (a fan-out whose clients come and go).
  void SetInterest(const std::shared_ptr<Subscription>& subscription, Interest interest);
  // Closes and forgets the subscription. Safe to call twice.
  void Unsubscribe(const std::shared_ptr<Subscription>& subscription);

  size_t subscriber_count() const;
  uint64_t last_seq() const;
  uint64_t oldest_retained_seq() const;     // 0 when nothing retained
  uint64_t subscriber_drops_total() const;  // summed over current and past subscribers

 private:
  void RecomputeWantedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t replay_capacity_;
  const Severity replay_min_severity_;
  // Per kind: the lowest severity anyone takes (0xff: none). Written under mu_, read lock-free.
  std::array<std::atomic<uint8_t>, kEventKindCount> min_wanted_;
  mutable absl::Mutex mu_;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::deque<EventPtr> replay_ ABSL_GUARDED_BY(mu_);
  uint64_t evicted_through_seq_ ABSL_GUARDED_BY(mu_) = 0;  // newest seq the ring let go
  uint32_t live_only_kinds_ ABSL_GUARDED_BY(mu_) = 0;      // kinds published and not retained
  std::vector<std::shared_ptr<Subscription>> subscribers_ ABSL_GUARDED_BY(mu_);
  uint64_t retired_drops_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_EVENT_BUS_H_
