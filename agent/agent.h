// Agent: the running process. Owns the memory tracker (kernel handles), the pipeline, the event
// bus and the sinks, and the threads that drive them:
//   ingest  - MemoryTracker::Poll -> Pipeline::HandleRecord; task snapshots at an adaptive
//             interval; /dev/kmsg OOM summaries; pending OOM flush. Sole owner of the tracker.
//   sampler - Pipeline::SampleDue (cgroup files -> predictor).
//   json    - one bus subscription written as JSON lines to stdout (--output=json).
// Run() blocks until Stop(); then it detaches, drains what the kernel already produced and
// returns the final counts. Thread-safe: Stop() and Snapshot*() may be called from any thread.
#ifndef TAPIO_AGENT_AGENT_H_
#define TAPIO_AGENT_AGENT_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/api/server.h"
#include "agent/api/state_source.h"
#include "agent/attrib/container_registry.h"
#include "agent/bpf/memory_tracker.h"
#include "agent/core/event_bus.h"
#include "agent/core/kmsg.h"
#include "agent/health_server.h"
#include "agent/metrics/metrics_exporter.h"
#include "agent/pipeline.h"
#include "agent/predict/model_params.h"

namespace tapio {

struct AgentOptions {
  PipelineOptions pipeline;
  bpf::TrackerOptions tracker;
  absl::Duration snapshot_interval = absl::Seconds(1);
  absl::Duration snapshot_interval_at_risk = absl::Milliseconds(250);
  // Share of one core the task-iterator passes may take (0 = no limit): the interval grows with
  // the number of processes to stay within it.
  double snapshot_cpu_budget = 0.005;
  std::string kmsg_path = "/dev/kmsg";  // "" disables the kernel-log OOM context
  std::string model_file;               // "" = compiled-in defaults
  // The restart priors are kept in this file across agent restarts and node reboots
  // (prior_store.h): read at start, written when they changed, every minute and at stop.
  // "" = in memory only.
  std::string prior_state_file;
  bool json_output = false;
  Severity json_min_severity = Severity::kDebug;
  size_t replay_capacity = kDefaultReplayCapacity;
  // The ring keeps events of this severity and above; lower ones (RSS changes, process
  // lifecycle) are delivered live only, and built only while some consumer asks for them.
  Severity replay_min_severity = kDefaultReplayMinSeverity;
  size_t json_queue = 1 << 16;
  // gRPC API; "" grpc address disables it.
  bool api_enabled = true;
  api::ApiServerOptions api;
  // Prometheus; "" disables it.
  std::string metrics_address = "127.0.0.1:9464";
  std::string health_address;  // "" = none; host:port serving only grpc.health.v1
  std::string metrics_labels = "namespace,pod,container";
  // Attribution: "auto" (CRI if a runtime socket is found, else cgroup paths), "cri", "none".
  std::string attribution = "auto";
  std::string cri_endpoint;
  absl::Duration cri_refresh_interval = absl::Seconds(5);
  // Kubelet /pods for workload and memory requests/limits (in a cluster: https://$NODE_NAME:10250).
  bool kubelet = false;
  std::string kubelet_url;  // "" = https://$NODE_NAME:10250/pods
  absl::Duration kubelet_refresh_interval = absl::Seconds(30);
  bool enable_bpf_stats = false;  // kernel.bpf_stats_enabled for per-program run time
  std::vector<std::pair<std::string, std::string>> config;  // effective flags, for GetAgentInfo
};

struct AgentCounts {
  std::array<uint64_t, kEventKindCount> published_by_kind{};
  uint64_t published_total = 0;
  bpf::LossCounters kernel_loss;
  uint64_t json_dropped = 0;
  PipelineCounters pipeline;
  uint64_t kmsg_overruns = 0;
  uint64_t poll_errors = 0;
};

class Agent : public api::AgentStateSource {
 public:
  static absl::StatusOr<std::unique_ptr<Agent>> Create(const AgentOptions& options);
  ~Agent() override;

  // api::AgentStateSource (gRPC handler threads).
  std::vector<api::ContainerSnapshot> ListContainers() const override;
  api::AgentInfo GetAgentInfo() const override;

  // Starts the threads; returns once they run. Call once.
  absl::Status Start();
  // Stops, drains, joins. Idempotent.
  void Stop();
  AgentCounts Counts() const;
  std::string SummaryLine() const;

  EventBus& bus() { return bus_; }
  Pipeline& pipeline() { return *pipeline_; }
  const bpf::MemoryTracker& tracker() const { return *tracker_; }
  const AgentOptions& options() const { return options_; }

 private:
  explicit Agent(const AgentOptions& options);
  void IngestLoop();
  void SamplerLoop();
  void JsonLoop();
  void PublishKernelLoss(const bpf::LossCounters& now);
  // prior_state_file: read once at start; written by the sampler thread, then by Stop.
  void RestorePriors();
  // `at_stop`: also the runs still going, and written even if nothing finished since.
  void SavePriors(bool at_stop);
  metrics::AgentHealth Health() const;

  const AgentOptions options_;
  predict::ModelParams model_params_;
  CgroupLayout layout_;
  EventBus bus_;
  std::unique_ptr<IdentityResolver> resolver_;
  attrib::ContainerRegistry* registry_ = nullptr;  // owned by resolver_ when attribution is on
  std::unique_ptr<api::ApiServer> api_;
  std::unique_ptr<HealthServer> health_;
  std::unique_ptr<metrics::MetricsExporter> metrics_;
  int64_t start_time_unix_ns_ = 0;
  bool bpf_stats_were_enabled_ = false;
  bool bpf_stats_changed_ = false;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<bpf::MemoryTracker> tracker_;
  std::unique_ptr<KmsgReader> kmsg_;
  std::shared_ptr<EventBus::Subscription> json_sub_;
  std::shared_ptr<EventBus::Subscription> count_sub_;

  std::atomic<bool> stopping_{false};
  absl::Notification ingest_done_;
  std::thread ingest_, sampler_, json_;
  bool started_ = false;
  bool stopped_ = false;

  mutable absl::Mutex counts_mu_;
  bpf::LossCounters reported_loss_ ABSL_GUARDED_BY(counts_mu_);
  std::atomic<uint64_t> poll_errors_{0};
  std::atomic<uint64_t> prior_store_errors_{0};  // unreadable, malformed or unwritable state
  // Pipeline::FinishedRunPriors' generation last written; both start at 0 (nothing to write).
  uint64_t priors_saved_generation_ = 0;
  absl::Time priors_next_save_ = absl::InfinitePast();
  std::string priors_last_error_;  // logged once per distinct error
  std::atomic<int64_t> last_snapshot_interval_ns_{0};
  std::array<std::atomic<uint64_t>, kEventKindCount> published_{};
};

}  // namespace tapio

#endif  // TAPIO_AGENT_AGENT_H_
