// ContainerMetrics: the per-container and agent-health Prometheus series, as a prometheus-cpp
// Collectable. Pure state, no I/O: Observe() folds events into per-cgroup state; Collect() (called
// by the HTTP exposer at scrape time) turns that state, plus an AgentHealth pulled from a provider
// callback, into metric families. MetricsExporter (metrics_exporter.h) puts it behind /metrics.
//
// Series (docs/metrics.md is the reference; cAdvisor meaning where one exists):
//   tapio_container_memory_working_set_bytes   usage - inactive_file
//   (container_memory_working_set_bytes) tapio_container_memory_usage_bytes         memory.current
//   / usage_in_bytes (container_memory_usage_bytes) tapio_container_memory_rss_bytes           anon
//   (container_memory_rss) tapio_container_memory_cache_bytes         page cache incl. tmpfs
//   (container_memory_cache) tapio_container_memory_shmem_bytes, _swap_bytes,
//   _non_reclaimable_bytes tapio_container_spec_memory_limit_bytes    effective limit, 0 =
//   unlimited (container_spec_memory_limit_bytes) tapio_container_oom_kills_total            OOM
//   kills of a process in the container (container_oom_events_total)
//   tapio_container_memory_limit_hits_total    failcnt / memory.events max
//   (container_memory_failcnt) tapio_container_memory_reclaim_stalls_total,
//   tapio_container_memory_reclaim_stall_seconds_total tapio_container_memory_pressure_some_ratio,
//   _full_ratio   PSI avg10 / 100, when the cgroup has PSI tapio_container_oom_risk 1 while a
//   prediction says at risk, else 0 tapio_container_oom_predicted_seconds      predicted time to
//   OOM; present only while at risk tapio_container_oom_prediction_confidence  0..1, last
//   prediction tapio_container_info                       1, with every identity label (for joins)
// Agent health (tapio_agent_*) comes from AgentHealthProvider at scrape time.
//
// Label modes: the per-container series carry the labels named in Options::labels, a subset of
// {namespace, pod, container, container_id, cgroup}. Two cgroups that map to the same label values
// (for example label "pod" for two containers of one pod) are merged into one series: byte gauges
// and counters are summed, predicted seconds take the minimum, risk/confidence/pressure the
// maximum.
//
// Lifetime of series: a cgroup's series exist from its first event until ForgetContainer(cgroup_id)
// (called by whoever owns container lifecycle: the attribution registry when it drops a container
// after its retention window), or, as a safety net, until no event has arrived for
// Options::stale_after (checked at scrape time with the injected clock).
//
// Thread-safety: every method may be called from any thread; one mutex guards the state. Observe is
// O(1) map work under the mutex and allocates only for a cgroup's first event.
#ifndef TAPIO_AGENT_METRICS_CONTAINER_METRICS_H_
#define TAPIO_AGENT_METRICS_CONTAINER_METRICS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/core/event.h"
#include "agent/core/event_bus.h"
#include "agent/core/runtime_scan.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace tapio::metrics {

// Identity labels a per-container series can carry.
enum class ContainerLabel : uint8_t { kNamespace, kPod, kContainer, kContainerId, kCgroup };
std::string_view ContainerLabelName(ContainerLabel label);  // "namespace", "pod", ...

// Parses a comma-separated label list such as "namespace,pod,container" or "cgroup". Rejects
// unknown names, duplicates and an empty list with INVALID_ARGUMENT naming the offending entry.
absl::StatusOr<std::vector<ContainerLabel>> ParseContainerLabels(absl::string_view spec);
// namespace, pod, container: the kubelet/cAdvisor identity of a container.
std::vector<ContainerLabel> DefaultContainerLabels();

// Agent health, a plain snapshot filled by the agent at scrape time. Counters are totals since the
// agent started (monotonic); gauges are current values.
struct AgentHealth {
  struct Source {
    std::string name;             // "ringbuf", "perfbuf", "cgroup_sampler", "task_iter", ...
    uint64_t received_total = 0;  // events read from this source
    uint64_t lost_total = 0;      // events this source lost before user space saw them
  };
  struct BpfProgram {
    std::string name;          // program name as in the skeleton, e.g. "handle_mark_victim"
    uint64_t run_count = 0;    // bpf_prog_info.run_cnt (needs kernel.bpf_stats_enabled=1)
    uint64_t run_time_ns = 0;  // bpf_prog_info.run_time_ns
  };
  std::vector<Source> sources;
  uint64_t ringbuf_lost_total = 0;      // ring buffer reserve failures (per-CPU BPF counter summed)
  uint64_t subscriber_drops_total = 0;  // EventBus::subscriber_drops_total()
  uint64_t subscribers = 0;             // EventBus::subscriber_count()
  uint64_t attribution_failures_total = 0;  // cgroup id -> container lookups that failed
  // New runs given a prior peak, by where it came from (Pipeline::ApplyPrior).
  uint64_t restart_priors_total = 0;      // the workload's last finished run
  uint64_t peer_priors_total = 0;         // a running replica of it
  uint64_t prior_store_errors_total = 0;  // --prior_state_file unreadable, malformed, unwritable
  uint64_t jump_triggered_samples_total = 0;  // readings brought forward by the RSS jump trigger
  uint64_t events_not_built_total = 0;        // records no consumer wanted as events (no loss)
  RuntimeScanCounters runtime_scan;           // Pipeline's runtime heap cap scans
  bool bpf_stats_enabled = false;             // whether run_count/run_time_ns are meaningful
  std::vector<BpfProgram> bpf_programs;
  std::string version;  // agent version, for tapio_agent_build_info
};
using AgentHealthProvider = std::function<AgentHealth()>;

class ContainerMetrics : public prometheus::Collectable {
 public:
  struct Options {
    std::vector<ContainerLabel> labels = DefaultContainerLabels();  // namespace,pod,container
    // Series of a cgroup with no event for this long are dropped at scrape time. Zero: never.
    // Default: 10 minutes, far above any sampler cadence (seconds).
    absl::Duration stale_after = absl::Minutes(10);
    AgentHealthProvider health;         // may be null: no tapio_agent_* health series
    std::function<absl::Time()> clock;  // null: absl::Now
  };

  static absl::StatusOr<std::unique_ptr<ContainerMetrics>> Create(Options options);

  // Folds one event into its cgroup's state. Events without an identity are counted in
  // tapio_metrics_invalid_events_total and otherwise ignored. EventsLost events are counted in
  // tapio_metrics_events_lost_total{source} (losses the metrics feed itself saw).
  void Observe(const Event& event);
  // The events Observe exports something for: what a metrics feed subscribes to. Per-process
  // detail (RSS changes, process lifecycle) is not among them.
  static Interest Observed();

  // Deletes every series of this cgroup. Unknown ids are ignored. A later event recreates them
  // (with counters starting again from zero, which Prometheus treats as a counter reset).
  void ForgetContainer(uint64_t cgroup_id);

  size_t container_count() const;

  // prometheus::Collectable: called by the exposer's HTTP threads at scrape time.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct ContainerState {
    std::shared_ptr<const WorkloadIdentity> identity;
    absl::Time last_event;
    bool has_usage = false;
    MemoryUsage usage;
    uint64_t oom_kills_total = 0;
    uint64_t limit_hits_total = 0;
    uint64_t reclaim_stalls_total = 0;
    uint64_t reclaim_stall_ns_total = 0;
    double psi_some_avg10 = -1;
    double psi_full_avg10 = -1;
    bool has_prediction = false;
    bool at_risk = false;
    int64_t time_to_oom_ms = -1;
    double confidence = 0;
  };

  explicit ContainerMetrics(Options options);
  absl::Time Now() const;
  void DropStaleLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  // mutable: Collect() is const (Collectable's contract) but expires stale series.
  mutable std::unordered_map<uint64_t, ContainerState> containers_ ABSL_GUARDED_BY(mu_);
  uint64_t invalid_events_total_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t observed_events_total_ ABSL_GUARDED_BY(mu_) = 0;
  std::unordered_map<std::string, uint64_t> feed_lost_total_ ABSL_GUARDED_BY(mu_);
  mutable uint64_t stale_dropped_total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tapio::metrics

#endif  // TAPIO_AGENT_METRICS_CONTAINER_METRICS_H_
