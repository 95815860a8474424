#include "agent/core/event_bus.h"

#include <algorithm>
#include <utility>

namespace tapio {
namespace {

const std::shared_ptr<const WorkloadIdentity>& AgentIdentity() {
  static const auto* const kIdentity =
      new std::shared_ptr<const WorkloadIdentity>(std::make_shared<WorkloadIdentity>());
  return *kIdentity;
}

}  // namespace

EventPtr MakeLostNotice(const char* source, uint64_t count, uint64_t first_seq, uint64_t last_seq) {
  auto notice = std::make_shared<Event>();
  notice->seq = 0;  // in-band notices are not part of the bus sequence
  notice->time_unix_ns = absl::ToUnixNanos(absl::Now());
  notice->severity = Severity::kWarning;
  notice->identity = AgentIdentity();
  notice->payload = EventsLost{source, count, first_seq, last_seq};
  return notice;
}

Interest Interest::Kinds(std::initializer_list<EventKind> kinds, Severity min) {
  Interest interest{0, min};
  for (EventKind kind : kinds) interest.kinds |= 1u << static_cast<unsigned>(kind);
  return interest;
}

EventBus::Subscription::Subscription(Filter filter, size_t capacity, Interest interest)
    : filter_(std::move(filter)), interest_(interest), queue_(capacity) {}

void EventBus::Subscription::Offer(const EventPtr& event) {
  if (filter_ && !filter_(*event)) return;
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  queue_.Push(event, event->seq);
}

EventPtr EventBus::Subscription::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || !queue_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  EventPtr event;
  QueueLoss loss;
  switch (queue_.Pop(&event, &loss)) {
    case LossyQueue<EventPtr>::Popped::kNothing:
      return nullptr;
    case LossyQueue<EventPtr>::Popped::kLoss:
      return MakeLostNotice("subscriber_queue", loss.count, loss.first_seq, loss.last_seq);
    case LossyQueue<EventPtr>::Popped::kItem:
      break;
  }
  ++delivered_total_;
  return event;
}

void EventBus::Subscription::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;  // what is queued stays readable: a closing consumer drains it
}

bool EventBus::Subscription::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

uint64_t EventBus::Subscription::dropped_total() const {
  absl::MutexLock lock(&mu_);
  return queue_.dropped_total();
}

uint64_t EventBus::Subscription::delivered_total() const {
  absl::MutexLock lock(&mu_);
  return delivered_total_;
}

EventBus::EventBus(size_t replay_capacity, Severity replay_min_severity)
    : replay_capacity_(replay_capacity), replay_min_severity_(replay_min_severity) {
  absl::MutexLock lock(&mu_);
  RecomputeWantedLocked();
}

void EventBus::RecomputeWantedLocked() {
  constexpr uint8_t kNobody = 0xff;
  std::array<uint8_t, kEventKindCount> min;
  min.fill(replay_capacity_ > 0 ? static_cast<uint8_t>(replay_min_severity_) : kNobody);
  for (const auto& sub : subscribers_) {
    for (int k = 0; k < kEventKindCount; ++k) {
      if ((sub->interest_.kinds >> k & 1u) == 0) continue;
      min[k] = std::min(min[k], static_cast<uint8_t>(sub->interest_.min_severity));
    }
  }
  for (int k = 0; k < kEventKindCount; ++k) min_wanted_[k].store(min[k], std::memory_order_relaxed);
}

EventPtr EventBus::Publish(Event event) {
  if (!event.identity) event.identity = AgentIdentity();
  absl::MutexLock lock(&mu_);
  event.seq = next_seq_++;
  auto shared = std::make_shared<const Event>(std::move(event));
  if (replay_capacity_ > 0 && shared->severity >= replay_min_severity_) {
    if (replay_.size() >= replay_capacity_) {
      evicted_through_seq_ = replay_.front()->seq;
      replay_.pop_front();
    }
    replay_.push_back(shared);
  } else {
    live_only_kinds_ |= 1u << static_cast<unsigned>(shared->kind());
  }
  for (const auto& sub : subscribers_) sub->Offer(shared);
  return shared;
}

std::shared_ptr<EventBus::Subscription> EventBus::Subscribe(Filter filter, size_t queue_capacity,
                                                            std::optional<uint64_t> resume_after,
                                                            Interest interest) {
  auto sub = std::make_shared<Subscription>(std::move(filter), queue_capacity, interest);
  absl::MutexLock lock(&mu_);
  if (resume_after.has_value()) {
    const uint64_t want_from = *resume_after + 1;
    const uint64_t last = next_seq_ - 1;
    // Gone from the ring (or never kept: no ring at all).
    const uint64_t lost_through = replay_capacity_ == 0 ? last : evicted_through_seq_;
    std::vector<EventPtr> notices;
    if (want_from <= lost_through) {
      notices.push_back(
          MakeLostNotice("replay", lost_through - want_from + 1, want_from, lost_through));
    }
    // Still in the window but below the ring's severity (of a kind this subscriber takes):
    // delivered live only.
    const uint64_t from = std::max(want_from, lost_through + 1);
    if (from <= last && interest.min_severity < replay_min_severity_ &&
        (interest.kinds & live_only_kinds_) != 0) {
      uint64_t retained = 0;
      for (auto it = replay_.rbegin(); it != replay_.rend() && (*it)->seq >= from; ++it) ++retained;
      const uint64_t live_only = last - from + 1 - retained;
      if (live_only > 0) {
        notices.push_back(MakeLostNotice("replay_live_only", live_only, from, last));
      }
    }
    if (!notices.empty()) {
      absl::MutexLock sub_lock(&sub->mu_);
      sub->queue_.PushFront(std::move(notices));
    }
    for (const auto& event : replay_) {
      if (event->seq >= want_from) sub->Offer(event);
    }
  }
  subscribers_.push_back(sub);
  RecomputeWantedLocked();
  return sub;
}

void EventBus::SetInterest(const std::shared_ptr<Subscription>& subscription, Interest interest) {
  if (!subscription) return;
  absl::MutexLock lock(&mu_);
  subscription->interest_ = interest;
  RecomputeWantedLocked();
}

void EventBus::Unsubscribe(const std::shared_ptr<Subscription>& subscription) {
  if (!subscription) return;
  subscription->Close();
  absl::MutexLock lock(&mu_);
  auto it = std::find(subscribers_.begin(), subscribers_.end(), subscription);
  if (it != subscribers_.end()) {
    retired_drops_ += (*it)->dropped_total();
    subscribers_.erase(it);
    RecomputeWantedLocked();
  }
}

size_t EventBus::subscriber_count() const {
  absl::MutexLock lock(&mu_);
  return subscribers_.size();
}

uint64_t EventBus::last_seq() const {
  absl::MutexLock lock(&mu_);
  return next_seq_ - 1;
}

uint64_t EventBus::oldest_retained_seq() const {
  absl::MutexLock lock(&mu_);
  return replay_.empty() ? 0 : replay_.front()->seq;
}

uint64_t EventBus::subscriber_drops_total() const {
  absl::MutexLock lock(&mu_);
  uint64_t total = retired_drops_;
  for (const auto& sub : subscribers_) total += sub->dropped_total();
  return total;
}

}  // namespace tapio
