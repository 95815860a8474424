#include "agent/attrib/pod_workload.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tapio::attrib {
namespace {

// generateName appends 5 random characters to a prefix cut to 58 (63, the name limit, minus 5).
constexpr size_t kRandomSuffixLength = 5;
constexpr size_t kMaxGeneratedPrefix = 58;

absl::string_view Label(const std::map<std::string, std::string>& labels, absl::string_view key) {
  auto it = labels.find(std::string(key));
  return it == labels.end() ? absl::string_view() : absl::string_view(it->second);
}

bool IsRandomSuffix(absl::string_view s) {
  if (s.size() != kRandomSuffixLength) return false;
  for (char c : s) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c)) return false;
  }
  return true;
}

// The prefix generateName was given (without its "-") of a name "<prefix>-<5 chars>", or "" when
// the name is not one, or its prefix may have been cut: a prefix and "-" of 58 characters or more
// (at exactly 58 possibly just after a "-" of a longer name).
absl::string_view GeneratedPrefix(absl::string_view name) {
  const size_t dash = name.rfind('-');
  if (dash == absl::string_view::npos || dash == 0) return {};
  if (!IsRandomSuffix(name.substr(dash + 1))) return {};
  if (dash + 1 >= kMaxGeneratedPrefix) return {};
  return name.substr(0, dash);
}

bool IsOrdinal(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return true;
}

}  // namespace

std::string DeploymentOfReplicaSet(absl::string_view replica_set, absl::string_view template_hash) {
  if (template_hash.empty() || replica_set.size() <= template_hash.size() + 1) return "";
  if (!absl::EndsWith(replica_set, absl::StrCat("-", template_hash))) return "";
  return std::string(replica_set.substr(0, replica_set.size() - template_hash.size() - 1));
}

PodWorkload WorkloadFromPodLabels(absl::string_view pod_name,
                                  const std::map<std::string, std::string>& labels) {
  PodWorkload w;
  if (absl::string_view hash = Label(labels, "pod-template-hash"); !hash.empty()) {
    const absl::string_view rs = GeneratedPrefix(pod_name);
    if (std::string d = DeploymentOfReplicaSet(rs, hash); !d.empty()) {
      w.kind = "Deployment";
      w.name = std::move(d);
    }
    return w;
  }
  if (Label(labels, "statefulset.kubernetes.io/pod-name") == pod_name) {
    // A StatefulSet's pods are named, not generated: "<set>-<ordinal>", never truncated.
    const size_t dash = pod_name.rfind('-');
    if (dash != absl::string_view::npos && dash > 0 && IsOrdinal(pod_name.substr(dash + 1))) {
      w.kind = "StatefulSet";
      w.name = std::string(pod_name.substr(0, dash));
    }
    return w;
  }
  if (!Label(labels, "controller-revision-hash").empty() &&
      !Label(labels, "pod-template-generation").empty()) {
    if (absl::string_view ds = GeneratedPrefix(pod_name); !ds.empty()) {
      w.kind = "DaemonSet";
      w.name = std::string(ds);
    }
    return w;
  }
  absl::string_view job = Label(labels, "batch.kubernetes.io/job-name");
  if (job.empty()) job = Label(labels, "job-name");
  if (!job.empty()) {
    w.kind = "Job";
    w.name = std::string(job);
  }
  return w;
}

}  // namespace tapio::attrib
