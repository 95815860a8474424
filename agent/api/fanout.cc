#include "agent/api/fanout.h"

#include <algorithm>
#include <utility>
#include <variant>

namespace tapio::api {
namespace {

// A bus queue large enough for the whole replay window (EventBus default: 65536 events).
constexpr size_t kReplayQueue = 1 << 17;
// While events flow, the dispatcher sleeps this long between drains of the feed instead of being
// woken by every Publish (a wake-up costs the publishing thread a futex call).
constexpr absl::Duration kDispatchPause = absl::Microseconds(200);

EventPtr LostNotice(uint64_t count, uint64_t first_seq, uint64_t last_seq) {
  auto notice = std::make_shared<Event>();
  notice->seq = 0;
  notice->time_unix_ns = absl::ToUnixNanos(absl::Now());
  notice->severity = Severity::kWarning;
  notice->identity = std::make_shared<WorkloadIdentity>();
  notice->payload = EventsLost{"subscriber_queue", count, first_seq, last_seq};
  return notice;
}

}  // namespace

StreamQueue::StreamQueue(std::shared_ptr<const EventFilter> filter, size_t capacity)
    : filter_(std::move(filter)), capacity_(std::max<size_t>(capacity, 1)) {}

void StreamQueue::Offer(const EventPtr& event) {
  if (filter_ && !filter_->Matches(*event)) return;
  absl::MutexLock lock(&mu_);
  if (closed_ || event->seq <= skip_through_seq_) return;
  if (queue_.size() >= capacity_) {
    if (pending_lost_ == 0) lost_first_seq_ = event->seq;
    lost_last_seq_ = event->seq;
    ++pending_lost_;
    ++dropped_total_;
    return;
  }
  queue_.push_back(event);
}

void StreamQueue::Lost(uint64_t count, uint64_t first_seq, uint64_t last_seq) {
  absl::MutexLock lock(&mu_);
  if (closed_ || count == 0) return;
  if (pending_lost_ == 0 || first_seq < lost_first_seq_) lost_first_seq_ = first_seq;
  lost_last_seq_ = std::max(lost_last_seq_, last_seq);
  pending_lost_ += count;
  dropped_total_ += count;
}

void StreamQueue::PushFront(std::vector<EventPtr> replay) {
  absl::MutexLock lock(&mu_);
  queue_.insert(queue_.begin(), std::make_move_iterator(replay.begin()),
                std::make_move_iterator(replay.end()));
}

EventPtr StreamQueue::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closed_ || !queue_.empty() || pending_lost_ > 0;
  };
  if (timeout > absl::ZeroDuration()) mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (closed_) return nullptr;
  // Report a gap before the first event after it (queued events older than the gap go first).
  if (pending_lost_ > 0 && (queue_.empty() || queue_.front()->seq > lost_first_seq_)) {
    EventPtr notice = LostNotice(pending_lost_, lost_first_seq_, lost_last_seq_);
    pending_lost_ = 0;
    return notice;
  }
  if (queue_.empty()) return nullptr;
  EventPtr event = std::move(queue_.front());
  queue_.pop_front();
  return event;
}

void StreamQueue::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  queue_.clear();
}

bool StreamQueue::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

uint64_t StreamQueue::dropped_total() const {
  absl::MutexLock lock(&mu_);
  return dropped_total_;
}

EventFanout::EventFanout(EventBus* bus, size_t feed_capacity)
    : bus_(bus), feed_(bus->Subscribe(nullptr, feed_capacity)) {
  {
    absl::MutexLock lock(&mu_);
    last_dispatched_seq_ = bus_->last_seq();
  }
  dispatcher_ = std::thread([this] { Dispatch(); });
}

EventFanout::~EventFanout() { Stop(); }

void EventFanout::Stop() {
  if (stop_.exchange(true)) return;
  bus_->Unsubscribe(feed_);  // wakes the dispatcher
  if (dispatcher_.joinable()) dispatcher_.join();
  absl::MutexLock lock(&mu_);
  for (const auto& stream : streams_) stream->Close();
}

void EventFanout::Dispatch() {
  bool busy = false;
  while (!stop_.load()) {
    if (busy) absl::SleepFor(kDispatchPause);
    EventPtr event = feed_->Next(busy ? absl::ZeroDuration() : absl::Milliseconds(100));
    busy = event != nullptr;
    while (event) {
      absl::MutexLock lock(&mu_);
      if (event->seq == 0 && event->kind() == EventKind::kEventsLost) {
        // The feed itself overflowed: those events are lost for every stream.
        const auto& lost = std::get<EventsLost>(event->payload);
        for (const auto& stream : streams_) stream->Lost(lost.count, lost.first_seq, lost.last_seq);
        last_dispatched_seq_ = std::max(last_dispatched_seq_, lost.last_seq);
      } else {
        for (const auto& stream : streams_) stream->Offer(event);
        last_dispatched_seq_ = event->seq;
      }
      event = feed_->Next(absl::ZeroDuration());
    }
  }
}

std::shared_ptr<StreamQueue> EventFanout::Attach(const std::shared_ptr<const EventFilter>& filter,
                                                 size_t capacity,
                                                 std::optional<uint64_t> resume_after) {
  auto stream = std::make_shared<StreamQueue>(filter, capacity);
  if (resume_after.has_value()) {
    // Live events the client already has (seq <= resume_after) are not sent again.
    absl::MutexLock lock(&stream->mu_);
    stream->skip_through_seq_ = *resume_after;
  }
  uint64_t seam = 0;  // the stream gets live events with seq > seam from the dispatcher
  {
    absl::MutexLock lock(&mu_);
    if (stop_.load()) stream->Close();
    streams_.push_back(stream);
    seam = last_dispatched_seq_;
  }
  if (!resume_after.has_value() || *resume_after >= seam) return stream;
  // Retained events in (resume_after, seam] come from the bus's replay ring. A short-lived bus
  // subscription replays them synchronously into its queue; take what is at or below the seam.
  auto replay_sub =
      bus_->Subscribe([filter](const Event& e) { return filter == nullptr || filter->Matches(e); },
                      kReplayQueue, resume_after);
  std::vector<EventPtr> replay;
  while (EventPtr e = replay_sub->Next(absl::ZeroDuration())) {
    if (e->seq == 0) {
      const auto& lost = std::get<EventsLost>(e->payload);
      if (lost.source == "replay") {
        // The bus says what left its ring; events above the seam still reach this stream from
        // the dispatcher (they may sit in the feed queue), so only the part <= seam is lost.
        const uint64_t last = std::min(lost.last_seq, seam);
        if (last < lost.first_seq) continue;
        auto notice = std::make_shared<Event>(*e);
        notice->payload = EventsLost{"replay", last - lost.first_seq + 1, lost.first_seq, last};
        e = std::move(notice);
      }
    } else if (e->seq > seam) {
      break;
    }
    replay.push_back(std::move(e));
  }
  bus_->Unsubscribe(replay_sub);
  stream->PushFront(std::move(replay));
  return stream;
}

void EventFanout::Detach(const std::shared_ptr<StreamQueue>& stream) {
  if (!stream) return;
  stream->Close();
  absl::MutexLock lock(&mu_);
  auto it = std::find(streams_.begin(), streams_.end(), stream);
  if (it != streams_.end()) {
    retired_drops_ += (*it)->dropped_total();
    streams_.erase(it);
  }
}

size_t EventFanout::stream_count() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

uint64_t EventFanout::dispatched_seq() const {
  absl::MutexLock lock(&mu_);
  return last_dispatched_seq_;
}

uint64_t EventFanout::drops_total() const {
  absl::MutexLock lock(&mu_);
  uint64_t total = retired_drops_;
  for (const auto& stream : streams_) total += stream->dropped_total();
  return total;
}

}  // namespace tapio::api
