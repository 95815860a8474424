// Kubelet `/pods` client: what the CRI does not say about a pod, its owner workload (from
// ownerReferences) and per-container memory requests and limits (from the pod spec).
//
// Transport: HTTPS via libcurl (Debian libcurl4-openssl-dev). Chosen over a hand-written OpenSSL
// client because certificate chain + hostname/IP verification, chunked transfer encoding,
// timeouts and redirects are exactly the parts that are easy to get subtly wrong; gRPC's HTTP/2
// transport cannot speak plain HTTP/1.1 to the kubelet.
// Authentication: the pod's service-account token (re-read on every request: projected tokens
// rotate), server verified against the service-account CA (standard in-cluster paths).
//
// Thread-safety: KubeletClient::ListPods may be called from one thread at a time per client.
#ifndef TAPIO_AGENT_ATTRIB_KUBELET_CLIENT_H_
#define TAPIO_AGENT_ATTRIB_KUBELET_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tapio::attrib {

struct KubeletContainer {
  std::string name;
  std::string container_id;          // from status.containerStatuses, scheme stripped ("" if none)
  int64_t memory_request_bytes = 0;  // 0 = not set
  int64_t memory_limit_bytes = 0;    // 0 = not set
};

struct KubeletPod {
  std::string uid, name, pod_namespace, node_name;
  std::string qos_class;               // status.qosClass lowercased: "guaranteed", "burstable", ...
  std::string owner_kind, owner_name;  // the controller ownerReference, "" if none
  std::string workload_kind, workload_name;  // ReplicaSet with pod-template-hash -> Deployment
  std::vector<KubeletContainer> containers;  // spec.containers and spec.initContainers
};

struct KubeletPodList {
  std::vector<KubeletPod> pods;
  uint64_t skipped_items = 0;       // items without metadata.uid/name or wrongly typed
  std::vector<std::string> errors;  // one line per skipped item, naming the field
};

// Kubernetes resource.Quantity -> bytes: plain ("134217728"), binary suffixes (Ki Mi Gi Ti Pi Ei),
// decimal suffixes (k M G T P E), exponent ("1e9"), fractions ("1.5Gi"), milli ("500m": rounded
// up to whole bytes, as the kubelet does for memory). InvalidArgument otherwise.
absl::StatusOr<int64_t> ParseQuantityBytes(absl::string_view quantity);

// Pure parser of a kubelet /pods reply (a v1 PodList). InvalidArgument when the body is not a
// JSON object with an "items" array (truncated or malformed replies); bad items are skipped and
// counted.
absl::StatusOr<KubeletPodList> ParseKubeletPods(absl::string_view body);

class KubeletClient {
 public:
  struct Options {
    // Full URL of /pods. Empty: https://$NODE_NAME:10250/pods (node name from `node_name_env`).
    std::string url;
    std::string node_name_env = "NODE_NAME";
    std::string token_path = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    std::string ca_path = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
    absl::Duration timeout = absl::Seconds(5);
    size_t max_body_bytes = 64 << 20;  // a reply larger than this is refused (bounded memory)
  };
  static absl::StatusOr<std::unique_ptr<KubeletClient>> Create(Options options);
  ~KubeletClient();

  // One GET of /pods. Unavailable for transport/TLS failures, PermissionDenied for 401/403,
  // Internal-ish codes for other HTTP statuses, InvalidArgument for a malformed body.
  absl::StatusOr<KubeletPodList> ListPods();

  const std::string& url() const { return options_.url; }

 private:
  explicit KubeletClient(Options options) : options_(std::move(options)) {}
  Options options_;
};

// The last good kubelet view, indexed for the joins attribution needs: pod uid -> owner and
// workload, (pod uid, container name) -> memory request/limit. Refresh() replaces the view
// atomically; a failed refresh keeps the previous view (and is counted), so a kubelet hiccup
// never blanks out owner data. Thread-safety: Refresh from one thread, lookups from any.
class KubeletPodCache {
 public:
  using Fetch = std::function<absl::StatusOr<KubeletPodList>()>;
  // `fetch` is usually [&client] { return client.ListPods(); }.
  explicit KubeletPodCache(Fetch fetch) : fetch_(std::move(fetch)) {}

  struct Stats {
    uint64_t refreshes_total = 0;
    uint64_t refresh_failures_total = 0;
    uint64_t skipped_items_total = 0;  // malformed pod items across refreshes
    size_t pods = 0;
  };

  absl::Status Refresh();
  // nullopt when the kubelet did not list the pod (or the container, for the second form).
  std::optional<KubeletPod> Pod(absl::string_view pod_uid) const;
  std::optional<KubeletContainer> Container(absl::string_view pod_uid,
                                            absl::string_view container_name) const;
  Stats stats() const;

 private:
  Fetch fetch_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const std::unordered_map<std::string, KubeletPod>> pods_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tapio::attrib

#endif  // TAPIO_AGENT_ATTRIB_KUBELET_CLIENT_H_
