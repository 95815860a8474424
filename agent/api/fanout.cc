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
// Events offered between two rounds of waking the streams that were waiting.
constexpr int kWakeBatch = 256;

}  // namespace

StreamQueue::StreamQueue(std::shared_ptr<const EventFilter> filter, size_t capacity)
    : filter_(std::move(filter)), queue_(capacity) {}

bool StreamQueue::Accepts(const Event& event) const { return !filter_ || filter_->Matches(event); }

bool StreamQueue::Offer(const EventPtr& event, const grpc::Slice& wire) {
  absl::MutexLock lock(&mu_);
  if (closed_ || event->seq <= skip_through_seq_) return false;
  queue_.Push(StreamItem{event, wire}, event->seq);
  return std::exchange(wake_armed_, false);
}

bool StreamQueue::Lost(uint64_t count, uint64_t first_seq, uint64_t last_seq) {
  absl::MutexLock lock(&mu_);
  if (closed_ || count == 0) return false;
  queue_.AddLoss(count, first_seq, last_seq);
  return std::exchange(wake_armed_, false);
}

void StreamQueue::Wake() {
  std::function<void()> wake;
  {
    absl::MutexLock lock(&mu_);
    wake = wake_;
  }
  if (wake) wake();
}

void StreamQueue::SetWake(std::function<void()> wake) {
  absl::MutexLock lock(&mu_);
  wake_ = std::move(wake);
}

void StreamQueue::PushFront(std::vector<EventPtr> replay) {
  absl::MutexLock lock(&mu_);
  std::vector<StreamItem> items;
  items.reserve(replay.size());
  for (EventPtr& e : replay) items.push_back(StreamItem{std::move(e), grpc::Slice()});
  queue_.PushFront(std::move(items));
}

bool StreamQueue::PopLocked(StreamItem* item) {
  QueueLoss loss;
  switch (queue_.Pop(item, &loss)) {
    case LossyQueue<StreamItem>::Popped::kNothing:
      return false;
    case LossyQueue<StreamItem>::Popped::kLoss:
      *item =
          StreamItem{MakeLostNotice("subscriber_queue", loss.count, loss.first_seq, loss.last_seq),
                     grpc::Slice()};
      return true;
    case LossyQueue<StreamItem>::Popped::kItem:
      return true;
  }
  return false;
}

EventPtr StreamQueue::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || !queue_.empty(); };
  if (timeout > absl::ZeroDuration()) mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (closed_) return nullptr;
  StreamItem item;
  return PopLocked(&item) ? std::move(item.event) : nullptr;
}

StreamQueue::PopResult StreamQueue::TryPop(StreamItem* item) {
  absl::MutexLock lock(&mu_);
  if (closed_) return PopResult::kClosed;
  if (PopLocked(item)) return PopResult::kItem;
  wake_armed_ = true;
  return PopResult::kEmpty;
}

bool StreamQueue::empty() const {
  absl::MutexLock lock(&mu_);
  return queue_.empty();
}

void StreamQueue::Close() {
  bool wake = false;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    queue_.clear();
    wake = std::exchange(wake_armed_, false);
  }
  if (wake) Wake();
}

bool StreamQueue::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

uint64_t StreamQueue::dropped_total() const {
  absl::MutexLock lock(&mu_);
  return queue_.dropped_total();
}

EventFanout::EventFanout(EventBus* bus, size_t feed_capacity, WireEncoder encoder)
    : bus_(bus),
      encoder_(std::move(encoder)),
      feed_(bus->Subscribe(nullptr, feed_capacity, std::nullopt, Interest::None())) {
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
  std::vector<std::shared_ptr<StreamQueue>> streams;
  {
    absl::MutexLock lock(&mu_);
    streams = streams_;
  }
  for (const auto& stream : streams) stream->Close();  // wakes consumers: outside our lock
}

void EventFanout::DispatchLocked(const EventPtr& event,
                                 std::vector<std::shared_ptr<StreamQueue>>* to_wake) {
  if (event->seq == 0 && event->kind() == EventKind::kEventsLost) {
    // The feed itself overflowed: those events are lost for every stream.
    const auto& lost = std::get<EventsLost>(event->payload);
    for (const auto& stream : streams_) {
      if (stream->Lost(lost.count, lost.first_seq, lost.last_seq)) to_wake->push_back(stream);
    }
    last_dispatched_seq_ = std::max(last_dispatched_seq_, lost.last_seq);
    return;
  }
  grpc::Slice wire;  // serialized at most once, for the first stream that takes the event
  bool encoded = false;
  for (const auto& stream : streams_) {
    if (!stream->Accepts(*event)) continue;
    if (!encoded && encoder_) wire = encoder_(*event);
    encoded = true;
    if (stream->Offer(event, wire)) to_wake->push_back(stream);
  }
  last_dispatched_seq_ = event->seq;
}

void EventFanout::Dispatch() {
  bool busy = false;
  std::vector<std::shared_ptr<StreamQueue>> to_wake;
  while (!stop_.load()) {
    if (busy) absl::SleepFor(kDispatchPause);
    EventPtr event = feed_->Next(busy ? absl::ZeroDuration() : absl::Milliseconds(100));
    busy = event != nullptr;
    while (event) {
      // A bounded batch, then the waiting consumers are woken once each, outside the lock.
      {
        absl::MutexLock lock(&mu_);
        for (int n = 0; event && n < kWakeBatch; ++n) {
          DispatchLocked(event, &to_wake);
          event = feed_->Next(absl::ZeroDuration());
        }
      }
      for (const auto& stream : to_wake) stream->Wake();
      to_wake.clear();
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
    UpdateFeedInterestLocked();
    seam = last_dispatched_seq_;
  }
  if (!resume_after.has_value() || *resume_after >= seam) return stream;
  // Retained events in (resume_after, seam] come from the bus's replay ring. A short-lived bus
  // subscription replays them synchronously into its queue; take what is at or below the seam.
  auto replay_sub =
      bus_->Subscribe([filter](const Event& e) { return filter == nullptr || filter->Matches(e); },
                      kReplayQueue, resume_after, filter ? filter->interest() : Interest::All());
  std::vector<EventPtr> replay;
  while (EventPtr e = replay_sub->Next(absl::ZeroDuration())) {
    if (e->seq == 0) {
      const auto& lost = std::get<EventsLost>(e->payload);
      if (lost.source == "replay" || lost.source == "replay_live_only") {
        // The bus says what left its ring (or was never kept); events above the seam still reach
        // this stream from the dispatcher (they may sit in the feed queue), so only the part
        // <= seam is lost.
        const uint64_t last = std::min(lost.last_seq, seam);
        if (last < lost.first_seq) continue;
        auto notice = std::make_shared<Event>(*e);
        const uint64_t count = std::min(lost.count, last - lost.first_seq + 1);
        notice->payload = EventsLost{lost.source, count, lost.first_seq, last};
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
    UpdateFeedInterestLocked();
  }
}

void EventFanout::UpdateFeedInterestLocked() {
  // The union of the streams' filters: with no stream attached the feed asks for nothing, and
  // the pipeline need not build events only a client would have wanted.
  Interest all{0, Severity::kCritical};
  for (const auto& stream : streams_) {
    const Interest i = stream->filter_ ? stream->filter_->interest() : Interest::All();
    if (i.kinds == 0) continue;
    all.kinds |= i.kinds;
    all.min_severity = std::min(all.min_severity, i.min_severity);
  }
  bus_->SetInterest(feed_, all);
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
