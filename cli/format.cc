#include "cli/format.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "agent/api/convert.h"
#include "agent/core/event.h"
#include "google/protobuf/util/json_util.h"

namespace tapio::cli {
namespace {

absl::Status AddTypes(const std::vector<std::string>& names, const char* flag,
                      v1::Selector* selector) {
  for (const std::string& name : names) {
    EventKind kind;
    if (!ParseEventKind(name, &kind)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": unknown event type '", name,
                       "' (memory_usage, rss_change, oom_kill, oom_prediction, memory_pressure, "
                       "process_lifecycle, events_lost)"));
    }
    selector->add_event_types(api::EventKindToProto(kind));
  }
  return absl::OkStatus();
}

std::string Workload(const v1::WorkloadIdentity& id) {
  if (!id.pod_name().empty()) {
    std::string out = absl::StrCat(id.pod_namespace(), "/", id.pod_name());
    if (!id.container_name().empty()) absl::StrAppend(&out, "/", id.container_name());
    return out;
  }
  if (!id.cgroup_path().empty()) return id.cgroup_path();
  return "-";
}

std::string Detail(const v1::Event& e) {
  switch (e.payload_case()) {
    case v1::Event::kMemoryUsage: {
      const auto& m = e.memory_usage();
      std::string out = absl::StrCat(
          "usage=", HumanBytes(m.usage_bytes()), " working_set=", HumanBytes(m.working_set_bytes()),
          " non_reclaimable=", HumanBytes(m.non_reclaimable_bytes()),
          " limit=", m.limit_bytes() ? HumanBytes(m.limit_bytes()) : "none");
      if (!m.runtime().empty()) {
        absl::StrAppend(
            &out, " ", m.runtime(), " heap_cap=",
            m.runtime_heap_cap_bytes() ? HumanBytes(m.runtime_heap_cap_bytes()) : "unknown");
      }
      return out;
    }
    case v1::Event::kRssChange: {
      const auto& r = e.rss_change();
      return absl::StrCat("pid=", r.pid(), "(", r.comm(), ") anon=", HumanBytes(r.anon_bytes()),
                          " file=", HumanBytes(r.file_bytes()),
                          " shmem=", HumanBytes(r.shmem_bytes()),
                          " delta=", HumanBytes(r.delta_bytes()));
    }
    case v1::Event::kOomKill: {
      const auto& k = e.oom_kill();
      std::string constraint = v1::OomConstraint_Name(k.constraint());
      return absl::StrCat("victim=", k.victim_pid(), "(", k.victim_comm(),
                          ") constraint=", constraint.substr(std::string("OOM_CONSTRAINT_").size()),
                          " anon_rss=", HumanBytes(k.anon_rss_bytes()),
                          " file_rss=", HumanBytes(k.file_rss_bytes()),
                          " shmem_rss=", HumanBytes(k.shmem_rss_bytes()),
                          " oom_score_adj=", k.oom_score_adj(),
                          k.oom_memcg_path().empty() ? "" : " memcg=", k.oom_memcg_path());
    }
    case v1::Event::kOomPrediction: {
      const auto& p = e.oom_prediction();
      std::string state = v1::OomPrediction::State_Name(p.state());
      return absl::StrCat(
          state.substr(std::string("STATE_").size()),
          p.time_to_oom_ms() >= 0 ? absl::StrFormat(" in=%.1fs", p.time_to_oom_ms() / 1000.0)
                                  : std::string(),
          absl::StrFormat(" confidence=%.2f", p.confidence()), " model=", p.model(),
          " usage=", HumanBytes(p.usage_bytes()), " limit=", HumanBytes(p.limit_bytes()),
          p.reason().empty() ? "" : " reason=\"", p.reason(), p.reason().empty() ? "" : "\"");
    }
    case v1::Event::kMemoryPressure: {
      const auto& p = e.memory_pressure();
      return absl::StrFormat(
          "reclaim_stalls=%d stall=%.3fms max_stall=%.3fms psi_some=%.2f "
          "psi_full=%.2f limit_hits=%d",
          p.reclaim_stalls(), p.reclaim_stall_ns() / 1e6, p.max_reclaim_stall_ns() / 1e6,
          p.psi_some_avg10(), p.psi_full_avg10(), p.limit_hits());
    }
    case v1::Event::kProcessLifecycle: {
      const auto& p = e.process_lifecycle();
      std::string phase = v1::ProcessLifecycle::Phase_Name(p.phase());
      std::string out = absl::StrCat(phase.substr(std::string("PHASE_").size()), " pid=", p.pid(),
                                     "(", p.comm(), ") ppid=", p.ppid());
      if (p.phase() == v1::ProcessLifecycle::PHASE_EXIT) {
        absl::StrAppend(&out, " exit_code=", p.exit_code());
      }
      return out;
    }
    case v1::Event::kEventsLost: {
      const auto& l = e.events_lost();
      std::string out = absl::StrCat("LOST ", l.count(), " events (", l.source(), ")");
      if (l.first_seq() != 0) absl::StrAppend(&out, " seq ", l.first_seq(), "..", l.last_seq());
      return out;
    }
    case v1::Event::PAYLOAD_NOT_SET:
      break;
  }
  return "";
}

}  // namespace

absl::StatusOr<v1::SubscribeRequest> BuildSubscribeRequest(const WatchFlags& flags) {
  v1::SubscribeRequest request;
  v1::Selector allow;
  for (const auto& ns : flags.namespaces) allow.add_namespaces(ns);
  for (const auto& pod : flags.pods) allow.add_pod_name_patterns(pod);
  for (const auto& c : flags.containers) allow.add_container_names(c);
  allow.set_label_selector(flags.selector);
  if (absl::Status s = AddTypes(flags.types, "type", &allow); !s.ok()) return s;
  if (allow.ByteSizeLong() > 0) *request.add_allow() = allow;

  if (!flags.exclude_namespaces.empty()) {
    for (const auto& ns : flags.exclude_namespaces) request.add_deny()->add_namespaces(ns);
  }
  if (!flags.exclude_pods.empty()) {
    auto* deny = request.add_deny();
    for (const auto& pod : flags.exclude_pods) deny->add_pod_name_patterns(pod);
  }
  if (!flags.exclude_containers.empty()) {
    auto* deny = request.add_deny();
    for (const auto& c : flags.exclude_containers) deny->add_container_names(c);
  }
  if (!flags.exclude_selector.empty())
    request.add_deny()->set_label_selector(flags.exclude_selector);
  if (!flags.exclude_types.empty()) {
    if (absl::Status s = AddTypes(flags.exclude_types, "exclude_type", request.add_deny());
        !s.ok()) {
      return s;
    }
  }
  if (!flags.min_severity.empty()) {
    Severity severity;
    if (!ParseSeverity(flags.min_severity, &severity)) {
      return absl::InvalidArgumentError(absl::StrCat("--min_severity: unknown severity '",
                                                     flags.min_severity,
                                                     "' (debug, info, warning, critical)"));
    }
    request.set_min_severity(api::SeverityToProto(severity));
  }
  if (flags.resume_after.has_value()) request.set_resume_after(*flags.resume_after);
  return request;
}

std::string ToJsonLine(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return absl::StrCat("{\"error\":\"cannot encode as JSON\"}");
  return out;
}

std::string EventTypeName(const v1::Event& event) {
  if (event.payload_case() == v1::Event::PAYLOAD_NOT_SET) return "unknown";
  const auto sv = EventKindName(
      static_cast<EventKind>(static_cast<int>(event.payload_case()) - v1::Event::kMemoryUsage));
  return std::string(sv.data(), sv.size());
}

std::string HumanBytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = std::fabs(static_cast<double>(bytes));
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  const char* sign = bytes < 0 ? "-" : "";
  if (unit == 0) return absl::StrCat(sign, static_cast<int64_t>(value), "B");
  return absl::StrFormat("%s%.1f%s", sign, value, units[unit]);
}

std::string EventTableHeader() {
  return absl::StrFormat("%-12s %8s %-8s %-17s %-40s %s", "TIME", "SEQ", "SEVERITY", "TYPE",
                         "WORKLOAD", "DETAIL");
}

std::string EventTableRow(const v1::Event& event) {
  const std::string time = absl::FormatTime("%H:%M:%E3S", absl::FromUnixNanos(event.time_unix_ns()),
                                            absl::UTCTimeZone());
  std::string severity = v1::Severity_Name(event.severity());
  severity = severity.substr(std::string("SEVERITY_").size());
  return absl::StrFormat("%-12s %8d %-8s %-17s %-40s %s", time, event.seq(), severity,
                         EventTypeName(event), Workload(event.identity()), Detail(event));
}

std::string ContainersTable(const v1::ListContainersResponse& response) {
  std::string out = absl::StrFormat("%-40s %10s %12s %16s %10s  %s\n", "WORKLOAD", "USAGE",
                                    "WORKING_SET", "NON_RECLAIMABLE", "LIMIT", "PREDICTION");
  for (const auto& c : response.containers()) {
    std::string prediction = "-";
    if (c.has_prediction()) {
      const auto& p = c.prediction();
      std::string state = v1::OomPrediction::State_Name(p.state());
      prediction = state.substr(std::string("STATE_").size());
      if (p.time_to_oom_ms() >= 0) {
        absl::StrAppend(&prediction, absl::StrFormat(" in %.1fs", p.time_to_oom_ms() / 1000.0));
      }
      absl::StrAppend(&prediction, " (", p.model(), ")");
    }
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "%-40s %10s %12s %16s %10s  %s\n", Workload(c.identity()),
            HumanBytes(c.usage().usage_bytes()), HumanBytes(c.usage().working_set_bytes()),
            HumanBytes(c.usage().non_reclaimable_bytes()),
            c.usage().limit_bytes() ? HumanBytes(c.usage().limit_bytes()) : "none", prediction));
  }
  return out;
}

std::string AgentInfoText(const v1::AgentInfo& info) {
  std::string out;
  absl::StrAppend(&out, "version:        ", info.version(), "\n");
  absl::StrAppend(&out, "node:           ", info.node(), "\n");
  absl::StrAppend(&out, "kernel:         ", info.kernel_release(), "\n");
  if (info.start_time_unix_ns() != 0) {
    absl::StrAppend(
        &out, "started:        ",
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixNanos(info.start_time_unix_ns()),
                         absl::UTCTimeZone()),
        "\n");
  }
  absl::StrAppend(&out, "subscribers:    ", info.subscribers(), " (dropped ",
                  info.subscriber_drops_total(), " events in total)\n");
  absl::StrAppend(&out, "sequence:       last ", info.last_seq(), ", oldest retained ",
                  info.oldest_retained_seq(), "\n");
  absl::StrAppend(&out, "kernel features:\n");
  for (const auto& f : info.kernel_features()) {
    absl::StrAppend(&out, absl::StrFormat("  %-24s %-3s %s\n", f.name(),
                                          f.available() ? "yes" : "no", f.detail()));
  }
  absl::StrAppend(&out, "programs:\n");
  for (const auto& p : info.programs()) {
    std::string status = v1::BpfProgram::Status_Name(p.status());
    absl::StrAppend(&out, absl::StrFormat("  %-28s %-36s %-9s %s\n", p.name(), p.attach_point(),
                                          status.substr(std::string("STATUS_").size()), p.error()));
  }
  absl::StrAppend(&out, "config:\n");
  std::vector<std::pair<std::string, std::string>> config(info.config().begin(),
                                                          info.config().end());
  std::sort(config.begin(), config.end());
  for (const auto& [k, v] : config) absl::StrAppend(&out, "  ", k, "=", v, "\n");
  return out;
}

}  // namespace tapio::cli
