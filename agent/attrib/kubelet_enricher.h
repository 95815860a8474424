// KubeletEnricher: joins what the kubelet's /pods says (controlling workload, the container's
// memory request and limit) into identities that the container registry produced from the CRI.
// The join key is (pod uid, container name), both from kubelet-set CRI labels.
//
// Enrich() is called per event on the pipeline threads: an unchanged identity returns the same
// enriched object (no allocation); a new registry identity or a kubelet refresh
// (OnKubeletRefreshed) recomputes it. Thread-safe. `cache` must outlive the enricher.
#ifndef TAPIO_AGENT_ATTRIB_KUBELET_ENRICHER_H_
#define TAPIO_AGENT_ATTRIB_KUBELET_ENRICHER_H_

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "agent/attrib/kubelet_client.h"
#include "agent/core/event.h"

namespace tapio::attrib {

class KubeletEnricher {
 public:
  explicit KubeletEnricher(const KubeletPodCache* cache) : cache_(cache) {}

  std::shared_ptr<const WorkloadIdentity> Enrich(
      const std::shared_ptr<const WorkloadIdentity>& identity);
  // The cache has new content: joins are recomputed on their next use.
  void OnKubeletRefreshed();

 private:
  struct Joined {
    std::shared_ptr<const WorkloadIdentity> source;  // the registry identity it was made from
    uint64_t generation = 0;
    std::shared_ptr<const WorkloadIdentity> enriched;
  };
  const KubeletPodCache* const cache_;
  absl::Mutex mu_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Joined> joined_ ABSL_GUARDED_BY(mu_);  // by cgroup id
};

}  // namespace tapio::attrib

#endif  // TAPIO_AGENT_ATTRIB_KUBELET_ENRICHER_H_
