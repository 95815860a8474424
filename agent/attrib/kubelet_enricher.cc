#include "agent/attrib/kubelet_enricher.h"

namespace tapio::attrib {
namespace {
// Bound on remembered joins; cleared when exceeded (recomputed on next use).
constexpr size_t kMaxJoined = 1 << 16;
}  // namespace

void KubeletEnricher::OnKubeletRefreshed() {
  absl::MutexLock lock(&mu_);
  ++generation_;
}

std::shared_ptr<const WorkloadIdentity> KubeletEnricher::Enrich(
    const std::shared_ptr<const WorkloadIdentity>& identity) {
  if (identity == nullptr || identity->pod_uid.empty()) return identity;
  absl::MutexLock lock(&mu_);
  Joined& j = joined_[identity->cgroup_id];
  if (j.source == identity && j.generation == generation_ && j.enriched) return j.enriched;
  std::optional<KubeletPod> pod = cache_->Pod(identity->pod_uid);
  std::shared_ptr<const WorkloadIdentity> out = identity;
  if (pod.has_value()) {
    auto copy = std::make_shared<WorkloadIdentity>(*identity);
    copy->workload_kind = pod->workload_kind.empty() ? pod->owner_kind : pod->workload_kind;
    copy->workload_name = pod->workload_name.empty() ? pod->owner_name : pod->workload_name;
    if (!identity->container_name.empty()) {
      if (auto c = cache_->Container(identity->pod_uid, identity->container_name)) {
        copy->memory_request_bytes = c->memory_request_bytes;
        copy->memory_limit_bytes = c->memory_limit_bytes;
      }
    }
    out = std::move(copy);
  }
  if (joined_.size() > kMaxJoined) {
    joined_.clear();
    return out;
  }
  Joined& slot = joined_[identity->cgroup_id];
  slot.source = identity;
  slot.generation = generation_;
  slot.enriched = out;
  return out;
}

}  // namespace tapio::attrib
