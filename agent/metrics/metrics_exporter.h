// MetricsExporter: serves ContainerMetrics (per-container and agent-health series) on
// http://<listen_address>/metrics with prometheus-cpp's civetweb exposer.
//
// Feeding it: either the agent calls Observe() for every event, or (Options::bus set) the exporter
// subscribes to the EventBus itself and runs one feed thread. The bus subscription is the
// recommended wiring: a slow scrape or a burst can never block the pipeline (the bus drops for
// this subscriber only, and the in-band EventsLost shows up as tapio_metrics_events_lost_total).
// Lifecycle: the owner of container lifetime calls ForgetContainer(cgroup_id) when a container is
// gone for good (after the attribution retention window), which deletes its series.
//
// Thread-safety: all methods may be called from any thread. Destruction stops the feed thread and
// the HTTP server before returning.
#ifndef TAPIO_AGENT_METRICS_METRICS_EXPORTER_H_
#define TAPIO_AGENT_METRICS_METRICS_EXPORTER_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "agent/core/event.h"
#include "agent/core/event_bus.h"
#include "agent/metrics/container_metrics.h"

namespace prometheus {
class Exposer;
}

namespace tapio::metrics {

class MetricsExporter {
 public:
  struct Options {
    // host:port for the HTTP listener, e.g. "127.0.0.1:9464" or "0.0.0.0:9464"; port 0 picks a
    // free port (see port()). 9464 is the agent's default metrics port.
    std::string listen_address = "127.0.0.1:9464";
    size_t http_threads = 2;
    ContainerMetrics::Options metrics;
    EventBus* bus = nullptr;            // optional: subscribe and feed from it (not owned)
    size_t bus_queue_capacity = 16384;  // per-subscriber queue; drops are counted, never block
  };

  // INVALID_ARGUMENT for bad options, UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Create(Options options);
  ~MetricsExporter();
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  void Observe(const Event& event) { metrics_->Observe(event); }
  void ForgetContainer(uint64_t cgroup_id) { metrics_->ForgetContainer(cgroup_id); }

  int port() const { return port_; }  // the bound TCP port
  ContainerMetrics& metrics() { return *metrics_; }
  // The exposition text of ContainerMetrics alone (without the exposer's own exposer_* series).
  std::string RenderText() const;

 private:
  MetricsExporter() = default;
  void FeedLoop();

  std::shared_ptr<ContainerMetrics> metrics_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  EventBus* bus_ = nullptr;
  std::shared_ptr<EventBus::Subscription> subscription_;
  std::atomic<bool> stop_{false};
  std::thread feed_thread_;
};

}  // namespace tapio::metrics

#endif  // TAPIO_AGENT_METRICS_METRICS_EXPORTER_H_
