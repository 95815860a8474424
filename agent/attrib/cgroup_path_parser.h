// Pure parser: a cgroup path (relative to a hierarchy root, as the lead's cgroup id -> path
// resolver returns it) -> what the kubelet's cgroup layout says about it: container id, runtime,
// pod uid and QoS class. No I/O.
//
// Layouts understood (the kubelet's two cgroup drivers; see kubelet pkg/kubelet/cm
// cgroup_manager_linux.go and the runtimes' naming):
//   cgroupfs: /kubepods[/burstable|/besteffort]/pod<uid>[/<container>[/<nested>...]]
//             <container> = <id> (containerd, docker) or crio-<id> (CRI-O)
//   systemd:
//   /kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid_with_underscores>.slice
//             [/<scope>[/<nested>...]]
//             <scope> = cri-containerd-<id>.scope | crio-<id>.scope | docker-<id>.scope
// Anything before the kubepods component is ignored (kind nodes, nested runtimes put the node's
// cgroup first). Guaranteed pods have no QoS component. Cgroups below a container (crun's
// `container/` child, a process's own sub-cgroups) map to that container.
// CRI-O's conmon scope (crio-conmon-<id>.scope) is the runtime's monitor, not the container:
// it maps to the pod.
#ifndef TAPIO_AGENT_ATTRIB_CGROUP_PATH_PARSER_H_
#define TAPIO_AGENT_ATTRIB_CGROUP_PATH_PARSER_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tapio::attrib {

enum class ContainerRuntime { kUnknown = 0, kContainerd, kCrio, kDocker };
absl::string_view ContainerRuntimeName(ContainerRuntime runtime);  // "containerd", "cri-o", ...

enum class CgroupKind {
  kNotKubernetes = 0,  // no kubepods component: a plain host cgroup, named by its path
  kQosLevel,           // /kubepods or /kubepods/burstable itself
  kPod,                // the pod-level cgroup (pod<uid>), or a runtime helper beside containers
  kContainer,          // a container's cgroup, or a cgroup nested below it
};

struct CgroupPathInfo {
  CgroupKind kind = CgroupKind::kNotKubernetes;
  ContainerRuntime runtime = ContainerRuntime::kUnknown;  // unknown for bare cgroupfs ids
  std::string container_id;                               // lowercase hex, "" unless kContainer
  std::string pod_uid;                // with dashes (systemd underscores converted), "" if none
  std::string qos_class;              // "guaranteed", "burstable", "besteffort", "" if none
  std::string pod_cgroup_path;        // prefix of the input up to the pod cgroup
  std::string container_cgroup_path;  // prefix up to the container cgroup (nested stripped)
  bool nested = false;                // the input is below the container cgroup
};

// Never fails for paths outside kubepods (kind kNotKubernetes). Returns InvalidArgument naming the
// offending path component when the path is inside kubepods but does not follow either layout
// (e.g. a pod component with an empty or non-hex uid, a container id that is not hex).
absl::StatusOr<CgroupPathInfo> ParseCgroupPath(absl::string_view path);

}  // namespace tapio::attrib

#endif  // TAPIO_AGENT_ATTRIB_CGROUP_PATH_PARSER_H_
