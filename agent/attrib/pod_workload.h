// The controller a pod belongs to, from what the pod carries itself: its name and the labels its
// controller stamps on it. The kubelet's ownerReferences say it directly (KubeletClient); this is
// for the CRI alone (no kubelet configured, or it refuses us), so that a workload's runs and
// replicas still share one RestartKey. The result agrees with the kubelet's where both speak.
#ifndef TAPIO_AGENT_ATTRIB_POD_WORKLOAD_H_
#define TAPIO_AGENT_ATTRIB_POD_WORKLOAD_H_

#include <map>
#include <string>

#include "absl/strings/string_view.h"

namespace tapio::attrib {

struct PodWorkload {
  std::string kind;  // "Deployment", "StatefulSet", "DaemonSet", "Job", or "" when unknown
  std::string name;
};

// Deployment: label pod-template-hash, name "<deployment>-<hash>-<5 chars>".
// StatefulSet: label statefulset.kubernetes.io/pod-name equal to the name "<set>-<ordinal>".
// DaemonSet: labels controller-revision-hash and pod-template-generation, name "<set>-<5 chars>".
// Job: label batch.kubernetes.io/job-name (or the older job-name).
// A name the controller had to truncate (prefixes over 58 characters) gives "": a guessed
// prefix would not match the kubelet's answer for the same pod.
PodWorkload WorkloadFromPodLabels(absl::string_view pod_name,
                                  const std::map<std::string, std::string>& labels);

// The Deployment owning ReplicaSet `replica_set` ("web-7d4b9c8f6d" with hash "7d4b9c8f6d" ->
// "web"), or "" when the name does not end in "-<hash>".
std::string DeploymentOfReplicaSet(absl::string_view replica_set, absl::string_view template_hash);

}  // namespace tapio::attrib

#endif  // TAPIO_AGENT_ATTRIB_POD_WORKLOAD_H_
