// CriClient: the read side of the CRI runtime.v1.RuntimeService that attribution needs, as plain
// C++ types (protobuf stays inside cri_client.cc). GrpcCriClient talks to containerd or CRI-O over
// a unix socket, every call with a deadline; it also offers the lifecycle calls (RunPodSandbox,
// CreateContainer, ...) the e2e harness uses to create pods the way the kubelet does.
//
// Thread-safety: GrpcCriClient may be used from any number of threads at once (a gRPC stub is).
// The interface is mockable (tests/attrib/mock_cri_client.h).
#ifndef TAPIO_AGENT_ATTRIB_CRI_CLIENT_H_
#define TAPIO_AGENT_ATTRIB_CRI_CLIENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tapio::attrib {

// Kubelet-set labels (k8s.io/kubernetes pkg/kubelet/types/labels.go).
inline constexpr absl::string_view kLabelPodName = "io.kubernetes.pod.name";
inline constexpr absl::string_view kLabelPodNamespace = "io.kubernetes.pod.namespace";
inline constexpr absl::string_view kLabelPodUid = "io.kubernetes.pod.uid";
inline constexpr absl::string_view kLabelContainerName = "io.kubernetes.container.name";

struct CriVersion {
  std::string runtime_name;  // "containerd", "cri-o"
  std::string runtime_version;
  std::string runtime_api_version;  // "v1"
};

enum class CriContainerState { kCreated = 0, kRunning = 1, kExited = 2, kUnknown = 3 };

struct CriPodSandbox {
  std::string id;
  std::string name;  // metadata.name
  std::string pod_namespace;
  std::string uid;
  bool ready = false;
  int64_t created_at_ns = 0;
  std::map<std::string, std::string> labels;
};

struct CriContainer {
  std::string id;
  std::string pod_sandbox_id;
  std::string name;  // metadata.name
  CriContainerState state = CriContainerState::kUnknown;
  int64_t created_at_ns = 0;
  std::map<std::string, std::string> labels;
};

struct CriContainerStatus {
  std::string id;
  std::string name;
  CriContainerState state = CriContainerState::kUnknown;
  int32_t exit_code = 0;
  std::string reason;  // "OOMKilled", "Completed", "Error", ...
  int64_t finished_at_ns = 0;
  std::map<std::string, std::string> labels;
  // From the verbose `info` JSON (0 / "" when not verbose or not reported).
  uint32_t pid = 0;
  std::string cgroups_path;  // runtimeSpec.linux.cgroupsPath, as the runtime was given it
};

class CriClient {
 public:
  virtual ~CriClient() = default;
  virtual absl::StatusOr<CriVersion> Version() = 0;
  virtual absl::StatusOr<std::vector<CriContainer>> ListContainers() = 0;
  virtual absl::StatusOr<std::vector<CriPodSandbox>> ListPodSandbox() = 0;
  virtual absl::StatusOr<CriContainerStatus> ContainerStatus(absl::string_view container_id,
                                                             bool verbose) = 0;
};

// Parses the verbose ContainerStatus `info["info"]` JSON (containerd and CRI-O both put a JSON
// object there with "pid" and "runtimeSpec"): sets pid and cgroups_path. InvalidArgument naming
// the field for malformed JSON or wrongly typed fields; missing fields are left unset.
absl::Status ParseVerboseInfo(absl::string_view json, CriContainerStatus* status);

// The runtime socket: `explicit_endpoint` if given ("unix:///x", "/x" or "unix:/x"), else the
// first existing socket among /run/containerd/containerd.sock, /run/crio/crio.sock (below `root`,
// "" = /). Returns a gRPC target "unix:///...". NotFound when none exists.
absl::StatusOr<std::string> FindCriEndpoint(absl::string_view explicit_endpoint,
                                            absl::string_view root = "");

class GrpcCriClient : public CriClient {
 public:
  struct Options {
    std::string endpoint;  // gRPC target, e.g. "unix:///run/x.sock"
    absl::Duration call_timeout = absl::Seconds(2);
    // gRPC reconnect backoff cap: low so that a restarted runtime is found again quickly
    // (the gRPC default grows to 120 s).
    absl::Duration max_reconnect_backoff = absl::Seconds(1);
  };
  static absl::StatusOr<std::unique_ptr<GrpcCriClient>> Create(Options options);
  ~GrpcCriClient() override;

  absl::StatusOr<CriVersion> Version() override;
  absl::StatusOr<std::vector<CriContainer>> ListContainers() override;
  absl::StatusOr<std::vector<CriPodSandbox>> ListPodSandbox() override;
  absl::StatusOr<CriContainerStatus> ContainerStatus(absl::string_view container_id,
                                                     bool verbose) override;

  // Lifecycle, as the kubelet drives it (used by the e2e harness). Host network namespace.
  // Every field added after the first version defaults to "not set", which gives the same request
  // as before it existed.
  enum class Seccomp {
    kUnset = 0,           // no profile in the request (containerd: unconfined)
    kRuntimeDefault = 1,  // the runtime's default profile (pod seccompProfile: RuntimeDefault)
    kUnconfined = 2,
  };
  struct PodSpec {
    std::string name, pod_namespace, uid;
    uint32_t attempt = 0;
    std::map<std::string, std::string> labels;  // kubelet labels are added by the caller
    std::string cgroup_parent;                  // e.g. "/kubepods/burstable/pod<uid>"
    std::string log_directory;
    bool host_pid = false;  // hostPID: the sandbox's pid namespace is the node's
    Seccomp seccomp = Seccomp::kUnset;
  };
  // A host path bind-mounted into the container (a hostPath or emptyDir volume after the kubelet
  // resolved it to a host directory).
  struct Mount {
    std::string host_path;
    std::string container_path;
    bool readonly = false;
  };
  struct ContainerSpec {
    std::string name;
    std::string image;
    std::vector<std::string> command, args;
    std::map<std::string, std::string> labels;
    int64_t memory_limit_bytes = 0;  // 0 = none
    std::string log_path;            // relative to the pod's log_directory
    // Resources beyond memory (0 = not set): CFS period/quota in microseconds, cpu.shares.
    int64_t cpu_period_us = 0, cpu_quota_us = 0, cpu_shares = 0;
    std::vector<std::pair<std::string, std::string>> envs;  // already expanded by the caller
    std::vector<Mount> mounts;
    // The container security context, as the kubelet maps securityContext to the CRI.
    std::vector<std::string> capabilities_add;   // "BPF", "PERFMON" (runtime adds CAP_)
    std::vector<std::string> capabilities_drop;  // "ALL"
    bool privileged = false;
    bool readonly_rootfs = false;
    bool no_new_privs = false;  // allowPrivilegeEscalation: false
    bool host_pid = false;      // namespace_options.pid = NODE (the pod's hostPID)
    int64_t run_as_user = -1;   // -1 = not set (the image's user)
    int64_t run_as_group = -1;  // -1 = not set
    Seccomp seccomp = Seccomp::kUnset;
    // The kubelet sends the default /proc masks for non-privileged containers; empty = none sent.
    std::vector<std::string> masked_paths, readonly_paths;
  };
  absl::StatusOr<std::string> RunPodSandbox(const PodSpec& pod);
  absl::Status StopPodSandbox(absl::string_view pod_sandbox_id);
  absl::Status RemovePodSandbox(absl::string_view pod_sandbox_id);
  absl::StatusOr<std::string> CreateContainer(absl::string_view pod_sandbox_id,
                                              const ContainerSpec& container, const PodSpec& pod);
  absl::Status StartContainer(absl::string_view container_id);
  absl::Status StopContainer(absl::string_view container_id, int64_t timeout_seconds);
  absl::Status RemoveContainer(absl::string_view container_id);

  // Longer deadline for the slow lifecycle calls (pod creation starts a shim: ~100s of ms).
  void set_lifecycle_timeout(absl::Duration timeout) { lifecycle_timeout_ = timeout; }

 private:
  struct Impl;
  explicit GrpcCriClient(Options options, std::unique_ptr<Impl> impl);
  Options options_;
  absl::Duration lifecycle_timeout_ = absl::Seconds(60);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tapio::attrib

#endif  // TAPIO_AGENT_ATTRIB_CRI_CLIENT_H_
