#include "agent/metrics/metrics_exporter.h"

#include <exception>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/core/log.h"
#include "prometheus/exposer.h"
#include "prometheus/text_serializer.h"

namespace tapio::metrics {

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Create(Options options) {
  if (options.listen_address.empty() || options.listen_address.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_address: want host:port, got \"", options.listen_address, "\""));
  }
  if (options.http_threads == 0) {
    return absl::InvalidArgumentError("metrics http_threads: must be >= 1");
  }
  if (options.bus != nullptr && options.bus_queue_capacity == 0) {
    return absl::InvalidArgumentError("metrics bus_queue_capacity: must be >= 1");
  }
  auto metrics = ContainerMetrics::Create(std::move(options.metrics));
  if (!metrics.ok()) return metrics.status();

  std::unique_ptr<MetricsExporter> exporter(new MetricsExporter());
  exporter->metrics_ = std::shared_ptr<ContainerMetrics>(std::move(*metrics));
  // civetweb reports bind failures by throwing; keep exceptions inside this module.
  try {
    exporter->exposer_ =
        std::make_unique<prometheus::Exposer>(options.listen_address, options.http_threads);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics_address: cannot listen on \"",
                                               options.listen_address, "\": ", e.what()));
  }
  const std::vector<int> ports = exporter->exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("metrics_address: no listening port for \"", options.listen_address, "\""));
  }
  exporter->port_ = ports.front();
  exporter->exposer_->RegisterCollectable(exporter->metrics_);

  if (options.bus != nullptr) {
    exporter->bus_ = options.bus;
    // Only what the metrics export: the pipeline need not build per-process detail for them.
    // The filter keeps out what other consumers asked for, so it never queues behind it.
    const Interest observed = ContainerMetrics::Observed();
    exporter->subscription_ = options.bus->Subscribe(
        [observed](const Event& e) { return observed.Admits(e.kind(), e.severity); },
        options.bus_queue_capacity, std::nullopt, observed);
    exporter->feed_thread_ = std::thread([e = exporter.get()] { e->FeedLoop(); });
  }
  TAPIO_LOG(kInfo, "metrics: serving /metrics on %s (port %d)", options.listen_address,
            exporter->port_);
  return exporter;
}

MetricsExporter::~MetricsExporter() {
  stop_.store(true);
  if (subscription_ != nullptr) bus_->Unsubscribe(subscription_);  // wakes Next()
  if (feed_thread_.joinable()) feed_thread_.join();
  exposer_.reset();  // stops the HTTP threads before metrics_ goes away
}

void MetricsExporter::FeedLoop() {
  while (!stop_.load()) {
    EventPtr event = subscription_->Next(absl::Milliseconds(200));
    if (event != nullptr) {
      metrics_->Observe(*event);
    } else if (subscription_->closed()) {
      break;
    }
  }
}

std::string MetricsExporter::RenderText() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, metrics_->Collect());
  return out.str();
}

}  // namespace tapio::metrics
