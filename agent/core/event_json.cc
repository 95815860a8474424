#include "agent/core/event_json.h"

#include <string>

#include "absl/time/time.h"

namespace tapio {
namespace {

using nlohmann::json;

std::string Str(absl::string_view s) { return std::string(s); }

json PayloadToJson(const MemoryUsage& u) {
  return {{"usage_bytes", u.usage_bytes},
          {"working_set_bytes", u.working_set_bytes},
          {"anon_bytes", u.anon_bytes},
          {"file_bytes", u.file_bytes},
          {"shmem_bytes", u.shmem_bytes},
          {"kernel_unreclaimable_bytes", u.kernel_unreclaimable_bytes},
          {"non_reclaimable_bytes", u.non_reclaimable_bytes},
          {"swap_bytes", u.swap_bytes},
          {"limit_bytes", u.limit_bytes},
          {"runtime", u.runtime},
          {"runtime_heap_cap_bytes", u.runtime_heap_cap_bytes}};
}

json PayloadToJson(const RssChange& r) {
  return {{"pid", r.pid},
          {"comm", r.comm},
          {"anon_bytes", r.anon_bytes},
          {"file_bytes", r.file_bytes},
          {"shmem_bytes", r.shmem_bytes},
          {"swap_bytes", r.swap_bytes},
          {"rss_bytes", r.anon_bytes + r.file_bytes + r.shmem_bytes},
          {"delta_bytes", r.delta_bytes}};
}

json PayloadToJson(const OomKill& k) {
  return {{"victim_pid", k.victim_pid},
          {"victim_comm", k.victim_comm},
          {"trigger_pid", k.trigger_pid},
          {"trigger_comm", k.trigger_comm},
          {"trigger_cgroup_id", k.trigger_cgroup_id},
          {"constraint", Str(OomConstraintName(k.constraint))},
          {"constraint_source", k.constraint_source},
          {"oom_memcg_path", k.oom_memcg_path},
          {"anon_rss_bytes", k.anon_rss_bytes},
          {"file_rss_bytes", k.file_rss_bytes},
          {"shmem_rss_bytes", k.shmem_rss_bytes},
          {"swap_bytes", k.swap_bytes},
          {"total_vm_bytes", k.total_vm_bytes},
          {"pgtables_bytes", k.pgtables_bytes},
          {"oom_score_adj", k.oom_score_adj}};
}

json PayloadToJson(const OomPrediction& p) {
  return {{"state", p.state == OomPrediction::State::kAtRisk ? "at_risk" : "cleared"},
          {"time_to_oom_ms", p.time_to_oom_ms},
          {"confidence", p.confidence},
          {"model", p.model},
          {"reason", p.reason},
          {"usage_bytes", p.usage_bytes},
          {"non_reclaimable_bytes", p.non_reclaimable_bytes},
          {"limit_bytes", p.limit_bytes},
          {"growth_bytes_per_second", p.growth_bytes_per_second}};
}

json PayloadToJson(const MemoryPressure& p) {
  json j = {{"reclaim_stalls", p.reclaim_stalls},
            {"reclaim_stall_ns", p.reclaim_stall_ns},
            {"max_reclaim_stall_ns", p.max_reclaim_stall_ns},
            {"limit_hits", p.limit_hits}};
  if (p.psi_some_avg10 >= 0) j["psi_some_avg10"] = p.psi_some_avg10;
  if (p.psi_full_avg10 >= 0) j["psi_full_avg10"] = p.psi_full_avg10;
  return j;
}

json PayloadToJson(const ProcessLifecycle& p) {
  const char* phase = p.phase == ProcessLifecycle::Phase::kExec   ? "exec"
                      : p.phase == ProcessLifecycle::Phase::kFork ? "fork"
                                                                  : "exit";
  json j = {{"phase", phase}, {"pid", p.pid}, {"ppid", p.ppid}, {"comm", p.comm}};
  if (p.phase == ProcessLifecycle::Phase::kExit) j["exit_code"] = p.exit_code;
  return j;
}

json PayloadToJson(const EventsLost& l) {
  return {{"source", l.source},
          {"count", l.count},
          {"first_seq", l.first_seq},
          {"last_seq", l.last_seq}};
}

}  // namespace

json EventToJson(const Event& event, const std::string& node_name) {
  json j;
  j["seq"] = event.seq;
  j["time"] = absl::FormatTime(absl::RFC3339_full, absl::FromUnixNanos(event.time_unix_ns),
                               absl::UTCTimeZone());
  j["type"] = Str(EventKindName(event.kind()));
  j["severity"] = Str(SeverityName(event.severity));
  if (!node_name.empty()) j["node"] = node_name;
  if (event.identity) {
    const WorkloadIdentity& id = *event.identity;
    j["cgroup_id"] = id.cgroup_id;
    j["cgroup_path"] = id.cgroup_path;
    if (!id.container_id.empty()) j["container_id"] = id.container_id;
    if (!id.container_name.empty()) j["container"] = id.container_name;
    if (!id.pod_name.empty()) j["pod"] = id.pod_name;
    if (!id.pod_namespace.empty()) j["namespace"] = id.pod_namespace;
    if (!id.pod_uid.empty()) j["pod_uid"] = id.pod_uid;
    if (!id.qos_class.empty()) j["qos_class"] = id.qos_class;
    if (!id.workload_kind.empty()) j["workload"] = id.workload_kind + "/" + id.workload_name;
    if (id.memory_request_bytes > 0) j["memory_request_bytes"] = id.memory_request_bytes;
    if (id.memory_limit_bytes > 0) j["memory_limit_bytes"] = id.memory_limit_bytes;
  }
  std::visit(
      [&j, &event](const auto& payload) {
        j[Str(EventKindName(event.kind()))] = PayloadToJson(payload);
      },
      event.payload);
  return j;
}

}  // namespace tapio
