// ContainerdFixture: a real containerd 1.6 (Debian) started for one test binary, with everything
// (root, state, sockets, runc root, logs, images) under a private temp dir, driven through
// Tapio's own CRI client the way the kubelet drives it. Reusable by any e2e test
// (target tapio_containerd_fixture).
//
// Lifetime and cleanup: the destructor removes every pod and container the fixture created, the
// pod-level cgroups in every v1 hierarchy and in cgroup2 (the kubelet's job, so ours here), stops
// containerd, kills leftover shims and container processes of this instance (by pid, found by
// this instance's socket path and pod cgroups), unmounts whatever is still mounted below the temp
// dir and removes it. It also runs when a test fails (gtest failures do not skip destructors).
//
// Images: a static pause (sandbox image) and a static memory workload (e2e/containerd/memhog.c),
// built with gcc -static and packed as OCI layouts by e2e/containerd/build-image.sh, imported with
// `ctr -n k8s.io images import`.
//
// Thread-safety: RunPod/StartContainer/RemovePod may be called from several threads at once;
// Kill/Restart must not race other calls.
#ifndef TAPIO_E2E_CONTAINERD_CONTAINERD_FIXTURE_H_
#define TAPIO_E2E_CONTAINERD_CONTAINERD_FIXTURE_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/attrib/cri_client.h"

namespace tapio::e2e {

inline constexpr char kPauseImage[] = "docker.io/tapio/pause:e2e";
inline constexpr char kMemhogImage[] = "docker.io/tapio/memhog:e2e";

class ContainerdFixture {
 public:
  struct Options {
    std::string source_dir;  // the repository (for e2e/containerd/*); "" = compiled-in path
    absl::Duration ready_timeout = absl::Seconds(20);
  };
  static absl::StatusOr<std::unique_ptr<ContainerdFixture>> Start(Options options);
  ~ContainerdFixture();

  const std::string& dir() const { return dir_; }
  std::string endpoint() const { return "unix://" + dir_ + "/containerd.sock"; }
  attrib::GrpcCriClient& cri() { return *cri_; }
  pid_t containerd_pid() const { return pid_; }

  // SIGKILL containerd (shims and containers keep running, as in a real crash).
  absl::Status Kill();
  // Starts containerd again on the same dirs and waits until the CRI answers.
  absl::Status Restart();

  struct Pod {
    std::string sandbox_id;
    std::string name, pod_namespace, uid;
    std::string qos;            // "burstable", "besteffort", "guaranteed"
    std::string cgroup_parent;  // "/kubepods/burstable/pod<uid>"
    attrib::GrpcCriClient::PodSpec spec;
  };
  // RunPodSandbox with kubelet labels (io.kubernetes.pod.*), host network, cgroup_parent by QoS.
  absl::StatusOr<Pod> RunPod(absl::string_view name, absl::string_view pod_namespace,
                             absl::string_view qos = "burstable",
                             const std::map<std::string, std::string>& labels = {});
  // The same with the pod-level settings a pod spec can add (hostPID, seccompProfile).
  struct PodOptions {
    std::string qos = "burstable";
    std::map<std::string, std::string> labels;
    bool host_pid = false;
    attrib::GrpcCriClient::Seccomp seccomp = attrib::GrpcCriClient::Seccomp::kUnset;
  };
  absl::StatusOr<Pod> RunPod(absl::string_view name, absl::string_view pod_namespace,
                             const PodOptions& options);
  // CreateContainer + StartContainer of the memhog image with `args` (see memhog.c) and kubelet
  // labels. Returns the container id.
  absl::StatusOr<std::string> StartContainer(const Pod& pod, absl::string_view name,
                                             const std::vector<std::string>& args,
                                             int64_t memory_limit_bytes = 0);
  // Stops and removes the pod's containers and sandbox, then its pod-level cgroups.
  absl::Status RemovePod(const Pod& pod);

  static std::string NewUid();  // random RFC 4122 v4 uuid

 private:
  explicit ContainerdFixture(Options options) : options_(std::move(options)) {}
  absl::Status Spawn();
  absl::Status WaitReady();
  absl::Status BuildAndImportImages();
  void StopContainerd();
  void RemovePodCgroups(const std::string& cgroup_parent);
  void KillLeftovers();

  Options options_;
  std::string dir_;
  pid_t pid_ = -1;
  std::unique_ptr<attrib::GrpcCriClient> cri_;
  std::vector<std::string> created_qos_dirs_;  // /kubepods... dirs that did not exist before

  absl::Mutex mu_;
  std::map<std::string, Pod> pods_ ABSL_GUARDED_BY(mu_);  // by sandbox id, until removed
};

// The cgroup path of `pid` in the v1 hierarchy holding `controller` ("memory"), or in cgroup2 when
// `controller` is empty, from /proc/<pid>/cgroup.
absl::StatusOr<std::string> CgroupPathOfPid(pid_t pid, absl::string_view controller);
// Inode number of <hierarchy_dir><path>: the cgroup id (cgroup2: what BPF reports).
absl::StatusOr<uint64_t> CgroupInode(absl::string_view hierarchy_dir, absl::string_view path);

}  // namespace tapio::e2e

#endif  // TAPIO_E2E_CONTAINERD_CONTAINERD_FIXTURE_H_
