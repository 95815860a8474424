// AgentStateSource: what the API server needs to know about the agent besides the event stream.
// A pure interface with plain C++ types; the agent (the lead's code) implements it over its
// container registry, state store and BPF loader, tests implement it with fixed data.
//
// Thread-safety: the server calls both methods from gRPC handler threads, concurrently with each
// other and with the pipeline; implementations synchronise internally and return copies.
#ifndef TAPIO_AGENT_API_STATE_SOURCE_H_
#define TAPIO_AGENT_API_STATE_SOURCE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/core/event.h"

namespace tapio::api {

// One container (cgroup) now: its identity, latest memory sample and latest prediction.
struct ContainerSnapshot {
  std::shared_ptr<const WorkloadIdentity> identity;  // never null
  MemoryUsage usage;
  int64_t usage_time_unix_ns = 0;  // 0: never sampled
  std::optional<OomPrediction> prediction;
  int64_t prediction_time_unix_ns = 0;
};

// A kernel feature probed at start-up, e.g. {"btf", true, "/sys/kernel/btf/vmlinux"},
// {"fentry", false, "EPERM at load"}.
struct KernelFeature {
  std::string name;
  bool available = false;
  std::string detail;
};

struct BpfProgramInfo {
  enum class Status : uint8_t { kAttached = 1, kFallback = 2, kDisabled = 3, kFailed = 4 };
  std::string name;          // "handle_mark_victim"
  std::string attach_point;  // "tp_btf/mark_victim"
  Status status = Status::kAttached;
  std::string error;  // set when kFailed (or why a fallback was taken)
};

struct AgentInfo {
  std::string version;
  std::string node;
  std::string kernel_release;
  int64_t start_time_unix_ns = 0;
  std::vector<KernelFeature> kernel_features;
  std::vector<BpfProgramInfo> programs;
  std::vector<std::pair<std::string, std::string>> config;  // flag name -> effective value
};

class AgentStateSource {
 public:
  virtual ~AgentStateSource() = default;
  virtual std::vector<ContainerSnapshot> ListContainers() const = 0;
  virtual AgentInfo GetAgentInfo() const = 0;
};

}  // namespace tapio::api

#endif  // TAPIO_AGENT_API_STATE_SOURCE_H_
