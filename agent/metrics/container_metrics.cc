#include "agent/metrics/container_metrics.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "prometheus/metric_type.h"

namespace tapio::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr std::pair<ContainerLabel, std::string_view> kLabelNames[] = {
    {ContainerLabel::kNamespace, "namespace"}, {ContainerLabel::kPod, "pod"},
    {ContainerLabel::kContainer, "container"}, {ContainerLabel::kContainerId, "container_id"},
    {ContainerLabel::kCgroup, "cgroup"},
};

const std::string& LabelValue(const WorkloadIdentity& id, ContainerLabel label) {
  switch (label) {
    case ContainerLabel::kNamespace:
      return id.pod_namespace;
    case ContainerLabel::kPod:
      return id.pod_name;
    case ContainerLabel::kContainer:
      return id.container_name;
    case ContainerLabel::kContainerId:
      return id.container_id;
    case ContainerLabel::kCgroup:
      return id.cgroup_path;
  }
  return id.cgroup_path;  // unreachable: the switch covers every enumerator
}

// Everything one exposed per-container series aggregates (see the header for the merge rules).
struct SeriesAggregate {
  bool has_usage = false;
  double working_set_bytes = 0;
  double usage_bytes = 0;
  double rss_bytes = 0;
  double cache_bytes = 0;
  double shmem_bytes = 0;
  double swap_bytes = 0;
  double non_reclaimable_bytes = 0;
  double limit_bytes = 0;
  bool any_unlimited = false;
  double runtime_heap_cap_bytes = 0;  // sum of the containers' caps (each 0 when unknown)
  double oom_kills_total = 0;
  double limit_hits_total = 0;
  double reclaim_stalls_total = 0;
  double reclaim_stall_seconds_total = 0;
  double psi_some = -1;
  double psi_full = -1;
  bool has_prediction = false;
  double risk = 0;
  double predicted_seconds = -1;  // -1: none at risk with an estimate
  double confidence = 0;
};

ClientMetric Sample(const std::vector<ClientMetric::Label>& labels, MetricType type, double v) {
  ClientMetric m;
  m.label = labels;
  if (type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  return m;
}

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

}  // namespace

std::string_view ContainerLabelName(ContainerLabel label) {
  for (const auto& [l, name] : kLabelNames) {
    if (l == label) return name;
  }
  return "unknown";
}

std::vector<ContainerLabel> DefaultContainerLabels() {
  std::vector<ContainerLabel> labels;
  labels.push_back(ContainerLabel::kNamespace);
  labels.push_back(ContainerLabel::kPod);
  labels.push_back(ContainerLabel::kContainer);
  return labels;
}

absl::StatusOr<std::vector<ContainerLabel>> ParseContainerLabels(absl::string_view spec) {
  std::vector<ContainerLabel> out;
  for (absl::string_view part : absl::StrSplit(spec, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics labels: empty entry in \"", spec,
                       "\" (want a comma-separated subset of namespace,pod,container,"
                       "container_id,cgroup)"));
    }
    bool found = false;
    for (const auto& [label, name] : kLabelNames) {
      if (absl::string_view(name.data(), name.size()) != part) continue;
      if (std::find(out.begin(), out.end(), label) != out.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("metrics labels: \"", part, "\" given twice"));
      }
      out.push_back(label);
      found = true;
    }
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics labels: unknown label \"", part,
                       "\" (known: namespace,pod,container,container_id,cgroup)"));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<ContainerMetrics>> ContainerMetrics::Create(Options options) {
  if (options.labels.empty()) {
    return absl::InvalidArgumentError("metrics labels: at least one label is required");
  }
  if (options.stale_after < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("metrics stale_after: must be >= 0");
  }
  return std::unique_ptr<ContainerMetrics>(new ContainerMetrics(std::move(options)));
}

ContainerMetrics::ContainerMetrics(Options options) : options_(std::move(options)) {}

absl::Time ContainerMetrics::Now() const { return options_.clock ? options_.clock() : absl::Now(); }

Interest ContainerMetrics::Observed() {
  return Interest::Kinds({EventKind::kMemoryUsage, EventKind::kOomKill, EventKind::kOomPrediction,
                          EventKind::kMemoryPressure, EventKind::kEventsLost});
}

void ContainerMetrics::Observe(const Event& event) {
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  ++observed_events_total_;
  if (const auto* lost = std::get_if<EventsLost>(&event.payload)) {
    // In-band loss notices concern the feed, not a container (their identity may be a placeholder).
    feed_lost_total_[lost->source] += lost->count;
    return;
  }
  if (event.identity == nullptr) {
    ++invalid_events_total_;
    return;
  }
  ContainerState& c = containers_[event.identity->cgroup_id];
  c.identity = event.identity;  // newest identity wins: attribution may have filled in names
  c.last_event = now;
  std::visit(
      [&c](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, MemoryUsage>) {
          c.has_usage = true;
          c.usage = p;
        } else if constexpr (std::is_same_v<T, OomKill>) {
          ++c.oom_kills_total;
        } else if constexpr (std::is_same_v<T, OomPrediction>) {
          c.has_prediction = true;
          c.at_risk = p.state == OomPrediction::State::kAtRisk;
          c.time_to_oom_ms = c.at_risk ? p.time_to_oom_ms : -1;
          c.confidence = p.confidence;
        } else if constexpr (std::is_same_v<T, MemoryPressure>) {
          c.reclaim_stalls_total += p.reclaim_stalls;
          c.reclaim_stall_ns_total += p.reclaim_stall_ns;
          c.limit_hits_total += p.limit_hits;
          c.psi_some_avg10 = p.psi_some_avg10;
          c.psi_full_avg10 = p.psi_full_avg10;
        }
        // RssChange, ProcessLifecycle: per-process detail, not exported per container (the
        // cardinality of per-pid series is unbounded), and not subscribed to (Observed()).
      },
      event.payload);
}

void ContainerMetrics::ForgetContainer(uint64_t cgroup_id) {
  absl::MutexLock lock(&mu_);
  containers_.erase(cgroup_id);
}

size_t ContainerMetrics::container_count() const {
  absl::MutexLock lock(&mu_);
  return containers_.size();
}

void ContainerMetrics::DropStaleLocked(absl::Time now) const {
  if (options_.stale_after == absl::ZeroDuration()) return;
  for (auto it = containers_.begin(); it != containers_.end();) {
    if (now - it->second.last_event > options_.stale_after) {
      ++stale_dropped_total_;
      it = containers_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<MetricFamily> ContainerMetrics::Collect() const {
  // Pull health first, outside our lock: the provider may take other components' locks.
  AgentHealth health;
  const bool have_health = static_cast<bool>(options_.health);
  if (have_health) health = options_.health();

  const absl::Time now = Now();
  std::map<std::vector<std::string>, SeriesAggregate> series;
  std::vector<std::vector<ClientMetric::Label>> info_labels;
  uint64_t invalid = 0, observed = 0, stale = 0, containers = 0;
  std::map<std::string, uint64_t> feed_lost;
  {
    absl::MutexLock lock(&mu_);
    DropStaleLocked(now);
    invalid = invalid_events_total_;
    observed = observed_events_total_;
    stale = stale_dropped_total_;
    containers = containers_.size();
    feed_lost.insert(feed_lost_total_.begin(), feed_lost_total_.end());
    info_labels.reserve(containers_.size());
    for (const auto& [cgroup_id, c] : containers_) {
      const WorkloadIdentity& id = *c.identity;
      std::vector<std::string> key;
      key.reserve(options_.labels.size());
      for (ContainerLabel l : options_.labels) key.push_back(LabelValue(id, l));
      SeriesAggregate& a = series[std::move(key)];
      if (c.has_usage) {
        a.has_usage = true;
        a.working_set_bytes += c.usage.working_set_bytes;
        a.usage_bytes += c.usage.usage_bytes;
        a.rss_bytes += c.usage.anon_bytes;
        a.cache_bytes += c.usage.file_bytes;
        a.shmem_bytes += c.usage.shmem_bytes;
        a.swap_bytes += c.usage.swap_bytes;
        a.non_reclaimable_bytes += c.usage.non_reclaimable_bytes;
        if (c.usage.limit_bytes == 0) a.any_unlimited = true;
        a.limit_bytes += c.usage.limit_bytes;
        a.runtime_heap_cap_bytes += c.usage.runtime_heap_cap_bytes;
      }
      a.oom_kills_total += c.oom_kills_total;
      a.limit_hits_total += c.limit_hits_total;
      a.reclaim_stalls_total += c.reclaim_stalls_total;
      a.reclaim_stall_seconds_total += c.reclaim_stall_ns_total / 1e9;
      a.psi_some = std::max(a.psi_some, c.psi_some_avg10);
      a.psi_full = std::max(a.psi_full, c.psi_full_avg10);
      if (c.has_prediction) {
        a.has_prediction = true;
        a.confidence = std::max(a.confidence, c.confidence);
        if (c.at_risk) {
          a.risk = 1;
          if (c.time_to_oom_ms >= 0) {
            const double s = c.time_to_oom_ms / 1e3;
            a.predicted_seconds = a.predicted_seconds < 0 ? s : std::min(a.predicted_seconds, s);
          }
        }
      }
      info_labels.push_back({{"cgroup", id.cgroup_path},
                             {"container", id.container_name},
                             {"container_id", id.container_id},
                             {"namespace", id.pod_namespace},
                             {"pod", id.pod_name},
                             {"qos_class", id.qos_class}});
    }
  }

  std::vector<MetricFamily> out;
  auto add_family = [&out](MetricFamily f) {
    if (!f.metric.empty()) out.push_back(std::move(f));
  };

  // Per-container families.
  struct Def {
    const char* name;
    const char* help;
    MetricType type;
    bool needs_usage;
    double SeriesAggregate::*field;
  };
  static constexpr Def kDefs[] = {
      {"tapio_container_memory_working_set_bytes",
       "Memory usage minus inactive page cache, as cAdvisor container_memory_working_set_bytes.",
       MetricType::Gauge, true, &SeriesAggregate::working_set_bytes},
      {"tapio_container_memory_usage_bytes",
       "Memory charged to the cgroup (memory.current or memory.usage_in_bytes).", MetricType::Gauge,
       true, &SeriesAggregate::usage_bytes},
      {"tapio_container_memory_rss_bytes", "Anonymous memory, as cAdvisor container_memory_rss.",
       MetricType::Gauge, true, &SeriesAggregate::rss_bytes},
      {"tapio_container_memory_cache_bytes",
       "Page cache including tmpfs, as cAdvisor container_memory_cache.", MetricType::Gauge, true,
       &SeriesAggregate::cache_bytes},
      {"tapio_container_memory_shmem_bytes", "Shared memory and tmpfs (not reclaimable).",
       MetricType::Gauge, true, &SeriesAggregate::shmem_bytes},
      {"tapio_container_memory_swap_bytes", "Swap used by the cgroup.", MetricType::Gauge, true,
       &SeriesAggregate::swap_bytes},
      {"tapio_container_memory_non_reclaimable_bytes",
       "Anon plus shmem plus unreclaimable kernel memory: what an OOM kill is decided on.",
       MetricType::Gauge, true, &SeriesAggregate::non_reclaimable_bytes},
      {"tapio_container_oom_kills_total",
       "Processes of the container killed by the OOM killer, as cAdvisor "
       "container_oom_events_total.",
       MetricType::Counter, false, &SeriesAggregate::oom_kills_total},
      {"tapio_container_memory_limit_hits_total",
       "Times usage hit the limit (v1 failcnt, v2 memory.events max), as cAdvisor "
       "container_memory_failcnt.",
       MetricType::Counter, false, &SeriesAggregate::limit_hits_total},
      {"tapio_container_memory_reclaim_stalls_total",
       "Memory cgroup direct reclaim passes (vmscan memcg reclaim tracepoints).",
       MetricType::Counter, false, &SeriesAggregate::reclaim_stalls_total},
      {"tapio_container_memory_reclaim_stall_seconds_total",
       "Time spent in memory cgroup direct reclaim.", MetricType::Counter, false,
       &SeriesAggregate::reclaim_stall_seconds_total},
  };
  std::vector<ClientMetric::Label> base;
  for (const Def& d : kDefs) {
    MetricFamily f = Family(d.name, d.help, d.type);
    for (const auto& [key, a] : series) {
      if (d.needs_usage && !a.has_usage) continue;
      base.clear();
      for (size_t i = 0; i < key.size(); ++i) {
        base.push_back({std::string(ContainerLabelName(options_.labels[i])), key[i]});
      }
      f.metric.push_back(Sample(base, d.type, a.*d.field));
    }
    add_family(std::move(f));
  }

  auto labels_of = [this](const std::vector<std::string>& key) {
    std::vector<ClientMetric::Label> l;
    for (size_t i = 0; i < key.size(); ++i) {
      l.push_back({std::string(ContainerLabelName(options_.labels[i])), key[i]});
    }
    return l;
  };
  MetricFamily limit = Family("tapio_container_spec_memory_limit_bytes",
                              "Effective memory limit (smallest along the ancestors), 0 when "
                              "unlimited, as cAdvisor container_spec_memory_limit_bytes.",
                              MetricType::Gauge);
  MetricFamily heap_cap =
      Family("tapio_container_runtime_heap_cap_bytes",
             "Heap cap the container's managed runtimes are given by their own settings (JVM -Xmx "
             "or its default sizing, Node.js --max-old-space-size, memcached -m), summed; present "
             "only when every runtime's cap is known. Above the memory limit, the heap may grow "
             "into the OOM killer.",
             MetricType::Gauge);
  MetricFamily psi_some = Family("tapio_container_memory_pressure_some_ratio",
                                 "Memory PSI some avg10 as a ratio: share of the last 10 s in "
                                 "which at least one task stalled on memory.",
                                 MetricType::Gauge);
  MetricFamily psi_full = Family("tapio_container_memory_pressure_full_ratio",
                                 "Memory PSI full avg10 as a ratio: share of the last 10 s in "
                                 "which all non-idle tasks stalled on memory.",
                                 MetricType::Gauge);
  MetricFamily risk = Family("tapio_container_oom_risk",
                             "1 while the predictor says the container is at risk of an OOM "
                             "kill, else 0.",
                             MetricType::Gauge);
  MetricFamily predicted = Family("tapio_container_oom_predicted_seconds",
                                  "Predicted time until the container is OOM killed; present "
                                  "only while at risk with an estimate.",
                                  MetricType::Gauge);
  MetricFamily confidence =
      Family("tapio_container_oom_prediction_confidence",
             "Confidence (0..1) of the last OOM prediction.", MetricType::Gauge);
  for (const auto& [key, a] : series) {
    const auto l = labels_of(key);
    if (a.has_usage) {
      limit.metric.push_back(Sample(l, MetricType::Gauge, a.any_unlimited ? 0 : a.limit_bytes));
      if (a.runtime_heap_cap_bytes > 0) {
        heap_cap.metric.push_back(Sample(l, MetricType::Gauge, a.runtime_heap_cap_bytes));
      }
    }
    if (a.psi_some >= 0) psi_some.metric.push_back(Sample(l, MetricType::Gauge, a.psi_some / 100));
    if (a.psi_full >= 0) psi_full.metric.push_back(Sample(l, MetricType::Gauge, a.psi_full / 100));
    if (a.has_prediction) {
      risk.metric.push_back(Sample(l, MetricType::Gauge, a.risk));
      confidence.metric.push_back(Sample(l, MetricType::Gauge, a.confidence));
      if (a.predicted_seconds >= 0) {
        predicted.metric.push_back(Sample(l, MetricType::Gauge, a.predicted_seconds));
      }
    }
  }
  add_family(std::move(limit));
  add_family(std::move(heap_cap));
  add_family(std::move(psi_some));
  add_family(std::move(psi_full));
  add_family(std::move(risk));
  add_family(std::move(predicted));
  add_family(std::move(confidence));
  MetricFamily info = Family("tapio_container_info",
                             "1 for every container the agent follows, with all identity labels.",
                             MetricType::Gauge);
  for (auto& l : info_labels) info.metric.push_back(Sample(l, MetricType::Gauge, 1));
  add_family(std::move(info));

  // The metrics feed's own counters: always present, so "no events" is visible as 0.
  auto single = [&out](const char* name, const char* help, MetricType type, double v) {
    MetricFamily f = Family(name, help, type);
    f.metric.push_back(Sample({}, type, v));
    out.push_back(std::move(f));
  };
  single("tapio_metrics_observed_events_total", "Events the metrics exporter has folded in.",
         MetricType::Counter, observed);
  single("tapio_metrics_invalid_events_total",
         "Events the metrics exporter ignored because they had no workload identity.",
         MetricType::Counter, invalid);
  single("tapio_metrics_stale_containers_dropped_total",
         "Containers whose series were dropped after no event for the staleness window.",
         MetricType::Counter, stale);
  single("tapio_metrics_containers", "Containers with series in this exporter.", MetricType::Gauge,
         containers);
  {
    MetricFamily f = Family("tapio_metrics_events_lost_total",
                            "Events the metrics feed was told it missed (in-band loss notices), "
                            "by source.",
                            MetricType::Counter);
    for (const auto& [source, n] : feed_lost) {
      f.metric.push_back(Sample({{"source", source}}, MetricType::Counter, n));
    }
    add_family(std::move(f));
  }

  if (!have_health) return out;
  MetricFamily received = Family("tapio_agent_events_received_total",
                                 "Events received from each source.", MetricType::Counter);
  MetricFamily lost =
      Family("tapio_agent_events_lost_total", "Events each source lost before the agent read them.",
             MetricType::Counter);
  for (const auto& s : health.sources) {
    received.metric.push_back(Sample({{"source", s.name}}, MetricType::Counter, s.received_total));
    lost.metric.push_back(Sample({{"source", s.name}}, MetricType::Counter, s.lost_total));
  }
  add_family(std::move(received));
  add_family(std::move(lost));
  single("tapio_agent_ringbuf_lost_events_total",
         "BPF ring buffer reserve failures (events dropped in the kernel).", MetricType::Counter,
         health.ringbuf_lost_total);
  single("tapio_agent_subscriber_dropped_events_total",
         "Events dropped for slow subscribers (bounded per-subscriber queues).",
         MetricType::Counter, health.subscriber_drops_total);
  single("tapio_agent_subscribers", "Current event subscribers.", MetricType::Gauge,
         health.subscribers);
  single("tapio_agent_attribution_failures_total", "cgroup to container lookups that failed.",
         MetricType::Counter, health.attribution_failures_total);
  {
    MetricFamily f = Family("tapio_agent_prediction_priors_total",
                            "New runs whose start-up fill is measured against a prior peak: of "
                            "the workload's last finished run (restart) or of a running replica "
                            "(peer).",
                            MetricType::Counter);
    f.metric.push_back(
        Sample({{"source", "restart"}}, MetricType::Counter, health.restart_priors_total));
    f.metric.push_back(Sample({{"source", "peer"}}, MetricType::Counter, health.peer_priors_total));
    add_family(std::move(f));
  }
  single("tapio_agent_prior_store_errors_total",
         "Failures to read or write --prior_state_file (the priors stay in memory).",
         MetricType::Counter, health.prior_store_errors_total);
  single("tapio_agent_jump_triggered_readings_total",
         "cgroup readings brought forward because BPF saw its RSS grow by jump_trigger_fraction "
         "of the limit since the last reading.",
         MetricType::Counter, health.jump_triggered_samples_total);
  {
    const RuntimeScanCounters& rs = health.runtime_scan;
    single("tapio_agent_runtime_scans_total",
           "Reads of a memory-limited cgroup's processes for managed runtimes and heap caps.",
           MetricType::Counter, rs.scans);
    MetricFamily f = Family("tapio_agent_runtime_scan_processes_total",
                            "Processes met by the runtime scans, by what came of them: read, "
                            "vanished (gone before their /proc files were read), "
                            "environ_unreadable (command line only), parse_error (a heap cap "
                            "value not understood: cap unknown), deferred (over the per-scan "
                            "bound; read at the next scan).",
                            MetricType::Counter);
    for (const auto& [result, value] :
         {std::pair{"read", rs.processes_read}, std::pair{"vanished", rs.processes_vanished},
          std::pair{"environ_unreadable", rs.environ_unreadable},
          std::pair{"parse_error", rs.parse_errors}, std::pair{"deferred", rs.deferred}}) {
      f.metric.push_back(Sample({{"result", result}}, MetricType::Counter, value));
    }
    add_family(std::move(f));
  }
  single("tapio_agent_events_not_built_total",
         "Records not turned into an event because no subscriber, output or metrics feed asks for "
         "their kind and severity (work saved, not a loss).",
         MetricType::Counter, health.events_not_built_total);
  single("tapio_agent_bpf_stats_enabled",
         "1 when kernel.bpf_stats_enabled is on, so BPF run counts and times are collected.",
         MetricType::Gauge, health.bpf_stats_enabled ? 1 : 0);
  MetricFamily runs =
      Family("tapio_agent_bpf_program_runs_total",
             "Times each BPF program ran (bpf_prog_info run_cnt).", MetricType::Counter);
  MetricFamily run_s =
      Family("tapio_agent_bpf_program_run_seconds_total",
             "Time spent in each BPF program (bpf_prog_info run_time_ns).", MetricType::Counter);
  for (const auto& p : health.bpf_programs) {
    runs.metric.push_back(Sample({{"program", p.name}}, MetricType::Counter, p.run_count));
    run_s.metric.push_back(Sample({{"program", p.name}}, MetricType::Counter, p.run_time_ns / 1e9));
  }
  add_family(std::move(runs));
  add_family(std::move(run_s));
  {
    MetricFamily f =
        Family("tapio_agent_build_info", "1, labelled with the agent version.", MetricType::Gauge);
    f.metric.push_back(Sample({{"version", health.version}}, MetricType::Gauge, 1));
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace tapio::metrics
