// The consumers a running agent puts on its event bus, for the ingest benchmarks
// (bench/agent/ingest_bench.cc, bench/bpf/tracker_bench.cc): what decides which events the
// pipeline builds (EventBus::Wants). Mirrors Agent::Start and MetricsExporter::Create.
#ifndef TAPIO_BENCH_SUPPORT_AGENT_CONSUMERS_H_
#define TAPIO_BENCH_SUPPORT_AGENT_CONSUMERS_H_

#include <memory>
#include <optional>

#include "agent/core/event_bus.h"
#include "agent/metrics/container_metrics.h"

namespace tapio::bench {

enum class Consumers {
  // The DaemonSet's default: the replay ring at its default severity, the per-kind counter, the
  // metrics feed, and no client asking for debug events.
  kDefault = 0,
  // The same plus one subscriber taking every event (a firehose client, or --output=json).
  kFirehose = 1,
};

struct AgentConsumers {
  explicit AgentConsumers(Consumers which)
      : bus(kDefaultReplayCapacity, kDefaultReplayMinSeverity) {
    counter = bus.Subscribe([](const Event&) { return false; }, 1, std::nullopt, Interest::None());
    // A queue of 1 that is never read: the feed's cost is the offer, its losses are counted.
    const Interest observed = metrics::ContainerMetrics::Observed();
    metrics =
        bus.Subscribe([observed](const Event& e) { return observed.Admits(e.kind(), e.severity); },
                      1, std::nullopt, observed);
    if (which == Consumers::kFirehose) {
      firehose = bus.Subscribe([](const Event&) { return false; }, 1);
    }
  }

  EventBus bus;
  std::shared_ptr<EventBus::Subscription> counter, metrics, firehose;
};

}  // namespace tapio::bench

#endif  // TAPIO_BENCH_SUPPORT_AGENT_CONSUMERS_H_
