#include "agent/api/convert.h"

#include <type_traits>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tapio::api {
namespace {

// EventKind is 0-based in variant order; v1::EventType is the same order shifted by one (0 is
// UNSPECIFIED). The static_asserts pin the two orders together.
static_assert(static_cast<int>(EventKind::kMemoryUsage) + 1 == v1::EVENT_TYPE_MEMORY_USAGE);
static_assert(static_cast<int>(EventKind::kRssChange) + 1 == v1::EVENT_TYPE_RSS_CHANGE);
static_assert(static_cast<int>(EventKind::kOomKill) + 1 == v1::EVENT_TYPE_OOM_KILL);
static_assert(static_cast<int>(EventKind::kOomPrediction) + 1 == v1::EVENT_TYPE_OOM_PREDICTION);
static_assert(static_cast<int>(EventKind::kMemoryPressure) + 1 == v1::EVENT_TYPE_MEMORY_PRESSURE);
static_assert(static_cast<int>(EventKind::kProcessLifecycle) + 1 ==
              v1::EVENT_TYPE_PROCESS_LIFECYCLE);
static_assert(static_cast<int>(EventKind::kEventsLost) + 1 == v1::EVENT_TYPE_EVENTS_LOST);
static_assert(kEventKindCount == v1::EventType_MAX);
static_assert(static_cast<int>(Severity::kDebug) == v1::SEVERITY_DEBUG);
static_assert(static_cast<int>(Severity::kInfo) == v1::SEVERITY_INFO);
static_assert(static_cast<int>(Severity::kWarning) == v1::SEVERITY_WARNING);
static_assert(static_cast<int>(Severity::kCritical) == v1::SEVERITY_CRITICAL);

v1::OomConstraint ConstraintToProto(OomConstraint c) {
  switch (c) {
    case OomConstraint::kNone:
      return v1::OOM_CONSTRAINT_GLOBAL;
    case OomConstraint::kCpuset:
      return v1::OOM_CONSTRAINT_CPUSET;
    case OomConstraint::kMempolicy:
      return v1::OOM_CONSTRAINT_MEMPOLICY;
    case OomConstraint::kMemcg:
      return v1::OOM_CONSTRAINT_MEMCG;
    case OomConstraint::kUnknown:
      break;
  }
  return v1::OOM_CONSTRAINT_UNSPECIFIED;
}

void RssChangeToProto(const RssChange& in, v1::RssChange* out) {
  out->set_pid(in.pid);
  out->set_comm(in.comm);
  out->set_anon_bytes(in.anon_bytes);
  out->set_file_bytes(in.file_bytes);
  out->set_shmem_bytes(in.shmem_bytes);
  out->set_swap_bytes(in.swap_bytes);
  out->set_delta_bytes(in.delta_bytes);
}

void OomKillToProto(const OomKill& in, v1::OomKill* out) {
  out->set_victim_pid(in.victim_pid);
  out->set_victim_comm(in.victim_comm);
  out->set_trigger_pid(in.trigger_pid);
  out->set_trigger_comm(in.trigger_comm);
  out->set_trigger_cgroup_id(in.trigger_cgroup_id);
  out->set_constraint(ConstraintToProto(in.constraint));
  out->set_constraint_source(in.constraint_source);
  out->set_oom_memcg_path(in.oom_memcg_path);
  out->set_anon_rss_bytes(in.anon_rss_bytes);
  out->set_file_rss_bytes(in.file_rss_bytes);
  out->set_shmem_rss_bytes(in.shmem_rss_bytes);
  out->set_swap_bytes(in.swap_bytes);
  out->set_total_vm_bytes(in.total_vm_bytes);
  out->set_pgtables_bytes(in.pgtables_bytes);
  out->set_oom_score_adj(in.oom_score_adj);
}

void PressureToProto(const MemoryPressure& in, v1::MemoryPressure* out) {
  out->set_reclaim_stalls(in.reclaim_stalls);
  out->set_reclaim_stall_ns(in.reclaim_stall_ns);
  out->set_max_reclaim_stall_ns(in.max_reclaim_stall_ns);
  out->set_psi_some_avg10(in.psi_some_avg10);
  out->set_psi_full_avg10(in.psi_full_avg10);
  out->set_limit_hits(in.limit_hits);
}

void LifecycleToProto(const ProcessLifecycle& in, v1::ProcessLifecycle* out) {
  switch (in.phase) {
    case ProcessLifecycle::Phase::kExec:
      out->set_phase(v1::ProcessLifecycle::PHASE_EXEC);
      break;
    case ProcessLifecycle::Phase::kFork:
      out->set_phase(v1::ProcessLifecycle::PHASE_FORK);
      break;
    case ProcessLifecycle::Phase::kExit:
      out->set_phase(v1::ProcessLifecycle::PHASE_EXIT);
      break;
  }
  out->set_pid(in.pid);
  out->set_ppid(in.ppid);
  out->set_comm(in.comm);
  out->set_exit_code(in.exit_code);
}

void EventsLostToProto(const EventsLost& in, v1::EventsLost* out) {
  out->set_source(in.source);
  out->set_count(in.count);
  out->set_first_seq(in.first_seq);
  out->set_last_seq(in.last_seq);
}

absl::Status FieldError(absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", message));
}

}  // namespace

v1::EventType EventKindToProto(EventKind kind) {
  return static_cast<v1::EventType>(static_cast<int>(kind) + 1);
}

bool EventKindFromProto(int type, EventKind* kind) {
  if (type < 1 || type > kEventKindCount) return false;
  *kind = static_cast<EventKind>(type - 1);
  return true;
}

v1::Severity SeverityToProto(Severity severity) { return static_cast<v1::Severity>(severity); }

bool SeverityFromProto(int severity, Severity* out) {
  if (severity < v1::SEVERITY_DEBUG || severity > v1::SEVERITY_CRITICAL) return false;
  *out = static_cast<Severity>(severity);
  return true;
}

v1::QosClass QosClassToProto(absl::string_view qos_class) {
  if (qos_class == "guaranteed") return v1::QOS_CLASS_GUARANTEED;
  if (qos_class == "burstable") return v1::QOS_CLASS_BURSTABLE;
  if (qos_class == "besteffort") return v1::QOS_CLASS_BEST_EFFORT;
  return v1::QOS_CLASS_UNSPECIFIED;
}

void IdentityToProto(const WorkloadIdentity& in, v1::WorkloadIdentity* out) {
  out->set_cgroup_id(in.cgroup_id);
  out->set_cgroup_path(in.cgroup_path);
  out->set_container_id(in.container_id);
  out->set_container_name(in.container_name);
  out->set_pod_name(in.pod_name);
  out->set_pod_namespace(in.pod_namespace);
  out->set_pod_uid(in.pod_uid);
  out->set_qos_class(QosClassToProto(in.qos_class));
  out->set_workload_kind(in.workload_kind);
  out->set_workload_name(in.workload_name);
  out->set_memory_request_bytes(in.memory_request_bytes);
  out->set_memory_limit_bytes(in.memory_limit_bytes);
  auto* labels = out->mutable_labels();
  for (const auto& [key, value] : in.labels) (*labels)[key] = value;
}

void MemoryUsageToProto(const MemoryUsage& in, v1::MemoryUsage* out) {
  out->set_usage_bytes(in.usage_bytes);
  out->set_working_set_bytes(in.working_set_bytes);
  out->set_anon_bytes(in.anon_bytes);
  out->set_file_bytes(in.file_bytes);
  out->set_shmem_bytes(in.shmem_bytes);
  out->set_kernel_unreclaimable_bytes(in.kernel_unreclaimable_bytes);
  out->set_non_reclaimable_bytes(in.non_reclaimable_bytes);
  out->set_swap_bytes(in.swap_bytes);
  out->set_limit_bytes(in.limit_bytes);
  out->set_runtime(in.runtime);
  out->set_runtime_heap_cap_bytes(in.runtime_heap_cap_bytes);
}

void OomPredictionToProto(const OomPrediction& in, v1::OomPrediction* out) {
  out->set_state(in.state == OomPrediction::State::kAtRisk ? v1::OomPrediction::STATE_AT_RISK
                                                           : v1::OomPrediction::STATE_CLEARED);
  out->set_time_to_oom_ms(in.time_to_oom_ms);
  out->set_confidence(in.confidence);
  out->set_model(in.model);
  out->set_reason(in.reason);
  out->set_usage_bytes(in.usage_bytes);
  out->set_non_reclaimable_bytes(in.non_reclaimable_bytes);
  out->set_limit_bytes(in.limit_bytes);
  out->set_growth_bytes_per_second(in.growth_bytes_per_second);
}

void EventToProto(const Event& event, absl::string_view node, v1::Event* out) {
  out->Clear();
  out->set_seq(event.seq);
  out->set_time_unix_ns(event.time_unix_ns);
  out->set_node(std::string(node));
  out->set_severity(SeverityToProto(event.severity));
  if (event.identity) IdentityToProto(*event.identity, out->mutable_identity());
  std::visit(
      [out](const auto& payload) {
        using T = std::decay_t<decltype(payload)>;
        if constexpr (std::is_same_v<T, MemoryUsage>) {
          MemoryUsageToProto(payload, out->mutable_memory_usage());
        } else if constexpr (std::is_same_v<T, RssChange>) {
          RssChangeToProto(payload, out->mutable_rss_change());
        } else if constexpr (std::is_same_v<T, OomKill>) {
          OomKillToProto(payload, out->mutable_oom_kill());
        } else if constexpr (std::is_same_v<T, OomPrediction>) {
          OomPredictionToProto(payload, out->mutable_oom_prediction());
        } else if constexpr (std::is_same_v<T, MemoryPressure>) {
          PressureToProto(payload, out->mutable_memory_pressure());
        } else if constexpr (std::is_same_v<T, ProcessLifecycle>) {
          LifecycleToProto(payload, out->mutable_process_lifecycle());
        } else {
          static_assert(std::is_same_v<T, EventsLost>, "unmapped payload type");
          EventsLostToProto(payload, out->mutable_events_lost());
        }
      },
      event.payload);
}

void ContainerToProto(const ContainerSnapshot& in, v1::ContainerState* out) {
  out->Clear();
  if (in.identity) IdentityToProto(*in.identity, out->mutable_identity());
  MemoryUsageToProto(in.usage, out->mutable_usage());
  out->set_usage_time_unix_ns(in.usage_time_unix_ns);
  if (in.prediction.has_value()) {
    OomPredictionToProto(*in.prediction, out->mutable_prediction());
    out->set_prediction_time_unix_ns(in.prediction_time_unix_ns);
  }
}

void AgentInfoToProto(const AgentInfo& in, v1::AgentInfo* out) {
  out->set_version(in.version);
  out->set_node(in.node);
  out->set_kernel_release(in.kernel_release);
  out->set_start_time_unix_ns(in.start_time_unix_ns);
  for (const KernelFeature& f : in.kernel_features) {
    auto* pf = out->add_kernel_features();
    pf->set_name(f.name);
    pf->set_available(f.available);
    pf->set_detail(f.detail);
  }
  for (const BpfProgramInfo& p : in.programs) {
    auto* pp = out->add_programs();
    pp->set_name(p.name);
    pp->set_attach_point(p.attach_point);
    pp->set_error(p.error);
    switch (p.status) {
      case BpfProgramInfo::Status::kAttached:
        pp->set_status(v1::BpfProgram::STATUS_ATTACHED);
        break;
      case BpfProgramInfo::Status::kFallback:
        pp->set_status(v1::BpfProgram::STATUS_FALLBACK);
        break;
      case BpfProgramInfo::Status::kDisabled:
        pp->set_status(v1::BpfProgram::STATUS_DISABLED);
        break;
      case BpfProgramInfo::Status::kFailed:
        pp->set_status(v1::BpfProgram::STATUS_FAILED);
        break;
    }
  }
  auto* config = out->mutable_config();
  for (const auto& [key, value] : in.config) (*config)[key] = value;
}

absl::StatusOr<SelectorSpec> SelectorSpecFromProto(const v1::Selector& in,
                                                   absl::string_view field) {
  SelectorSpec spec;
  spec.namespaces.assign(in.namespaces().begin(), in.namespaces().end());
  spec.pod_name_patterns.assign(in.pod_name_patterns().begin(), in.pod_name_patterns().end());
  spec.container_names.assign(in.container_names().begin(), in.container_names().end());
  spec.label_selector = in.label_selector();
  for (int i = 0; i < in.event_types_size(); ++i) {
    EventKind kind;
    if (!EventKindFromProto(in.event_types(i), &kind)) {
      return FieldError(absl::StrCat(field, ".event_types[", i, "]"),
                        absl::StrCat("unknown or unspecified event type ", in.event_types(i)));
    }
    spec.event_kinds.push_back(kind);
  }
  return spec;
}

absl::StatusOr<FilterSpec> FilterSpecFromProto(const v1::SubscribeRequest& request) {
  FilterSpec spec;
  for (int i = 0; i < request.allow_size(); ++i) {
    auto sel = SelectorSpecFromProto(request.allow(i), absl::StrCat("allow[", i, "]"));
    if (!sel.ok()) return sel.status();
    spec.allow.push_back(*std::move(sel));
  }
  for (int i = 0; i < request.deny_size(); ++i) {
    auto sel = SelectorSpecFromProto(request.deny(i), absl::StrCat("deny[", i, "]"));
    if (!sel.ok()) return sel.status();
    spec.deny.push_back(*std::move(sel));
  }
  if (request.min_severity() != v1::SEVERITY_UNSPECIFIED) {
    Severity severity;
    if (!SeverityFromProto(request.min_severity(), &severity)) {
      return FieldError("min_severity", absl::StrCat("unknown severity ",
                                                     static_cast<int>(request.min_severity())));
    }
    spec.min_severity = severity;
  }
  return spec;
}

}  // namespace tapio::api
