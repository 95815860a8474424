// The agent's one internal event model. Every stage (BPF ingest, cgroup sampler, predictor)
// produces these; every sink (JSON lines, gRPC, metrics) consumes them. Plain C++ types only:
// protobuf stays at the API edge (agent/api), which maps these 1:1 onto tapio.v1.Event.
#ifndef TAPIO_AGENT_CORE_EVENT_H_
#define TAPIO_AGENT_CORE_EVENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"

namespace tapio {

// Ordered: a subscriber's minimum severity keeps this level and above.
enum class Severity : uint8_t { kDebug = 1, kInfo = 2, kWarning = 3, kCritical = 4 };

// One per payload alternative below, in the same order as the variant.
enum class EventKind : uint8_t {
  kMemoryUsage = 0,
  kRssChange = 1,
  kOomKill = 2,
  kOomPrediction = 3,
  kMemoryPressure = 4,
  kProcessLifecycle = 5,
  kEventsLost = 6,
};
inline constexpr int kEventKindCount = 7;

absl::string_view EventKindName(EventKind kind);  // "memory_usage", "oom_kill", ...
bool ParseEventKind(absl::string_view name, EventKind* kind);
absl::string_view SeverityName(Severity severity);  // "debug", "info", "warning", "critical"
bool ParseSeverity(absl::string_view name, Severity* severity);

// Who a cgroup is. Immutable once published; shared by every event of that cgroup, so events
// carry a pointer, not copies of strings. On a plain host only cgroup_id/cgroup_path are set.
struct WorkloadIdentity {
  uint64_t cgroup_id = 0;    // cgroup v2 id (inode of the cgroup2 dir), or v1 memcg kernfs id
  std::string cgroup_path;   // relative to the hierarchy root, e.g. "/kubepods/burstable/pod.../id"
  std::string container_id;  // runtime's full id, "" when not a container
  std::string container_name;
  std::string pod_name;
  std::string pod_namespace;
  std::string pod_uid;
  std::string qos_class;  // "guaranteed", "burstable", "besteffort" or ""
  std::vector<std::pair<std::string, std::string>> labels;  // pod labels, sorted by key
  // From the kubelet's /pods (optional): the controlling workload and the container's memory
  // request and limit as the pod spec sets them (0 = not set).
  std::string workload_kind;  // "Deployment", "StatefulSet", "DaemonSet", "Job", ... or ""
  std::string workload_name;
  int64_t memory_request_bytes = 0;
  int64_t memory_limit_bytes = 0;
};

// Memory of one cgroup as its memory files report it. Bytes throughout; 0 limit = unlimited.
struct MemoryUsage {
  uint64_t usage_bytes = 0;        // memory.current / memory.usage_in_bytes
  uint64_t working_set_bytes = 0;  // usage - inactive_file (cAdvisor/kubelet figure)
  uint64_t anon_bytes = 0;
  uint64_t file_bytes = 0;   // page cache, tmpfs included on v2
  uint64_t shmem_bytes = 0;  // tmpfs/shm: counted as file, not reclaimable
  uint64_t kernel_unreclaimable_bytes = 0;
  uint64_t non_reclaimable_bytes = 0;  // anon + shmem + unreclaimable kernel: what OOM kills on
  uint64_t swap_bytes = 0;
  uint64_t limit_bytes = 0;  // effective: smallest along the ancestors
  // The managed runtimes in the cgroup and how far their own settings let their heaps grow
  // (agent/core/runtime_cap.h): "jvm", "node", "memcached", or "" when none was found; the sum
  // of their heap caps, 0 when any of them is unknown.
  std::string runtime;
  uint64_t runtime_heap_cap_bytes = 0;
};

// A process's RSS moved past the threshold (tp_btf/rss_stat) or a task-iterator snapshot.
struct RssChange {
  uint32_t pid = 0;
  std::string comm;
  uint64_t anon_bytes = 0;
  uint64_t file_bytes = 0;
  uint64_t shmem_bytes = 0;
  uint64_t swap_bytes = 0;
  int64_t delta_bytes = 0;  // change of anon+file+shmem since the previous report of this pid
};

enum class OomConstraint : uint8_t {
  kUnknown = 0,
  kNone = 1,
  kCpuset = 2,
  kMempolicy = 3,
  kMemcg = 4
};
absl::string_view OomConstraintName(OomConstraint c);  // "unknown", "global", "cpuset", ...

struct OomKill {
  uint32_t victim_pid = 0;
  std::string victim_comm;
  uint32_t trigger_pid = 0;  // the task whose allocation invoked the OOM killer
  std::string trigger_comm;
  uint64_t trigger_cgroup_id = 0;
  OomConstraint constraint = OomConstraint::kUnknown;
  std::string constraint_source;  // "fentry", "kmsg", "memcg_counters" or ""
  std::string oom_memcg_path;     // the memcg that hit its limit ("" for global / unknown)
  uint64_t anon_rss_bytes = 0;
  uint64_t file_rss_bytes = 0;
  uint64_t shmem_rss_bytes = 0;
  uint64_t swap_bytes = 0;
  uint64_t total_vm_bytes = 0;
  uint64_t pgtables_bytes = 0;
  int32_t oom_score_adj = 0;
};

struct OomPrediction {
  enum class State : uint8_t { kAtRisk = 1, kCleared = 2 };
  State state = State::kAtRisk;
  int64_t time_to_oom_ms = -1;  // -1: not estimated (e.g. cleared)
  double confidence = 0;        // 0..1
  std::string model;            // "trend", "envelope", "staircase", "pressure"
  std::string reason;           // a sentence for humans
  uint64_t usage_bytes = 0;
  uint64_t non_reclaimable_bytes = 0;
  uint64_t limit_bytes = 0;
  double growth_bytes_per_second = 0;
};

struct MemoryPressure {
  uint64_t reclaim_stalls = 0;    // memcg reclaim passes in the interval (BPF)
  uint64_t reclaim_stall_ns = 0;  // their total duration
  uint64_t max_reclaim_stall_ns = 0;
  double psi_some_avg10 = -1;  // percent, -1 when the cgroup has no memory.pressure
  double psi_full_avg10 = -1;
  uint64_t limit_hits = 0;  // memory.events max / v1 failcnt, increase in the interval
};

struct ProcessLifecycle {
  enum class Phase : uint8_t { kExec = 1, kFork = 2, kExit = 3 };
  Phase phase = Phase::kExec;
  uint32_t pid = 0;
  uint32_t ppid = 0;
  std::string comm;
  int32_t exit_code = 0;  // task->exit_code on exit (signal in the low 7 bits)
};

struct EventsLost {
  std::string source;  // "ringbuf", "perfbuf", "subscriber_queue", "replay", "replay_live_only"
  uint64_t count = 0;
  uint64_t first_seq = 0;  // gap in the bus sequence, when known (0 otherwise)
  uint64_t last_seq = 0;
};

using EventPayload = std::variant<MemoryUsage, RssChange, OomKill, OomPrediction, MemoryPressure,
                                  ProcessLifecycle, EventsLost>;

struct Event {
  uint64_t seq = 0;          // assigned by EventBus::Publish, strictly increasing from 1
  int64_t time_unix_ns = 0;  // when it happened (kernel time converted to wall clock)
  Severity severity = Severity::kInfo;
  std::shared_ptr<const WorkloadIdentity> identity;  // never null once published
  EventPayload payload;

  EventKind kind() const { return static_cast<EventKind>(payload.index()); }
};

using EventPtr = std::shared_ptr<const Event>;

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_EVENT_H_
