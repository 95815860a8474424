// ContainerRegistry: cgroup (id, path) -> WorkloadIdentity for the pipeline.
//
// What it models: the runtime's view of containers and pod sandboxes (CRI ListContainers,
// ListPodSandbox, and a verbose ContainerStatus once per new container for its pid and cgroups
// path), joined with what the cgroup path itself says (cgroup_path_parser.h).
//
// Contracts:
//  - Resolve() never blocks on the runtime: it answers from the cache built by the last refresh,
//    with a path-only identity (cgroup id, path, pod uid/QoS/container id from the path) when the
//    runtime does not know the cgroup (yet). A hit is one hash lookup under the registry mutex
//    (held only for lookups and for swapping in refreshed records, never across an RPC).
//  - WhenKnown() is for late enrichment: the callback runs once, either when a refresh learns the
//    cgroup (known = true) or at the deadline / after max_enrichment_attempts refreshes / when the
//    pending queue is full (known = false, with the path-only identity). It runs on the caller's
//    thread when the answer is already final, else on the refresh thread; callbacks must be short.
//  - Deleted containers are kept deleted_retention after they leave the runtime's list (OOM kill
//    events race teardown).
//  - Runtime down, slow or restarting: refreshes fail, are counted, and back off exponentially
//    (initial_backoff doubling to max_backoff); the cache keeps its last content; the first
//    successful refresh resets the backoff.
//  - Mode kNoRuntime (a plain host): no CRI at all, identity = cgroup id + path.
//
// Threads: one background refresh thread (unless Options::start_thread is false, then the owner
// calls RefreshOnce(), e.g. tests with a fake clock). All public methods are thread-safe.
#ifndef TAPIO_AGENT_ATTRIB_CONTAINER_REGISTRY_H_
#define TAPIO_AGENT_ATTRIB_CONTAINER_REGISTRY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/attrib/cri_client.h"
#include "agent/core/event.h"

namespace tapio::attrib {

// Counters for metrics (plain struct: agent/metrics maps it). Totals are monotonic.
struct RegistryStats {
  bool runtime_up = false;  // the last refresh succeeded
  uint64_t refreshes_total = 0;
  uint64_t refresh_failures_total = 0;
  uint64_t consecutive_failures = 0;
  int64_t current_backoff_ms = 0;  // 0 when healthy
  uint64_t status_calls_total = 0;
  uint64_t status_failures_total = 0;
  uint64_t resolves_total = 0;
  uint64_t path_only_total = 0;  // Resolve answers without runtime data
  uint64_t path_parse_failures_total = 0;
  uint64_t enrichments_known_total = 0;
  uint64_t enrichments_expired_total = 0;
  uint64_t enrichments_dropped_total = 0;  // pending queue full
  size_t pending_enrichments = 0;
  size_t known_containers = 0;
  size_t known_sandboxes = 0;
  size_t retained_deleted = 0;
  size_t cached_cgroups = 0;
};

class ContainerRegistry {
 public:
  enum class Mode { kNoRuntime, kCri };
  using Clock = std::function<absl::Time()>;
  using Callback =
      std::function<void(std::shared_ptr<const WorkloadIdentity> identity, bool known)>;

  struct Options {
    Mode mode = Mode::kNoRuntime;
    absl::Duration refresh_interval = absl::Seconds(5);
    // A miss asks for an early refresh; at most one per this gap (bounds runtime load).
    absl::Duration min_refresh_gap = absl::Milliseconds(50);
    absl::Duration initial_backoff = absl::Milliseconds(500);
    absl::Duration max_backoff = absl::Seconds(30);
    absl::Duration deleted_retention = absl::Minutes(5);
    size_t max_pending = 4096;
    int max_enrichment_attempts = 20;  // refreshes a pending request waits through
    size_t max_status_calls_per_refresh = 512;
    size_t max_cached_cgroups = 1 << 16;  // identity cache bound: cleared when exceeded
    bool start_thread = true;
    Clock clock;  // null = absl::Now
  };

  // `cri` may be null only in kNoRuntime mode.
  static absl::StatusOr<std::unique_ptr<ContainerRegistry>> Create(Options options,
                                                                   std::unique_ptr<CriClient> cri);
  Mode mode() const { return options_.mode; }
  ~ContainerRegistry();  // stops the refresh thread; pending callbacks are NOT run

  std::shared_ptr<const WorkloadIdentity> Resolve(uint64_t cgroup_id,
                                                  absl::string_view cgroup_path);
  void WhenKnown(uint64_t cgroup_id, absl::string_view cgroup_path, absl::Time deadline,
                 Callback callback);

  // One refresh cycle now, on the caller's thread (what the thread runs). Returns the runtime
  // error when listing failed. Also settles pending enrichments.
  absl::Status RefreshOnce();
  // Wakes the refresh thread for an early refresh (rate-limited by min_refresh_gap).
  void RequestRefresh();

  RegistryStats stats() const;
  // Heap estimate of the registry's own state (records, strings, cache), for docs/performance.
  size_t ApproximateMemoryBytes() const;

 private:
  struct ContainerRecord {
    CriContainer container;
    bool have_status = false;
    uint32_t pid = 0;
    std::string cgroups_path;
    absl::Time deleted_at = absl::InfiniteFuture();  // InfiniteFuture = still listed
  };
  struct SandboxRecord {
    CriPodSandbox sandbox;
    absl::Time deleted_at = absl::InfiniteFuture();
  };
  struct CacheEntry {
    uint64_t generation = 0;
    bool known = false;
    std::shared_ptr<const WorkloadIdentity> identity;
  };
  struct Pending {
    uint64_t cgroup_id;
    std::string path;
    absl::Time deadline;
    int attempts = 0;
    Callback callback;
  };

  ContainerRegistry(Options options, std::unique_ptr<CriClient> cri);
  absl::Time Now() const { return options_.clock ? options_.clock() : absl::Now(); }
  void Run();
  // Builds the identity for a path from the current records. Sets *known.
  std::shared_ptr<const WorkloadIdentity> Build(uint64_t cgroup_id, absl::string_view path,
                                                bool* known) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `*built` (optional) says whether the identity was (re)built rather than a cache hit.
  std::shared_ptr<const WorkloadIdentity> ResolveLocked(uint64_t cgroup_id, absl::string_view path,
                                                        bool* known, bool* built)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SettlePending(bool refreshed);

  const Options options_;
  const std::unique_ptr<CriClient> cri_;

  mutable absl::Mutex mu_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 1;
  std::unordered_map<std::string, ContainerRecord> containers_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, SandboxRecord> sandboxes_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::string> sandbox_by_pod_uid_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::string> container_by_cgroups_path_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, CacheEntry> cache_ ABSL_GUARDED_BY(mu_);
  RegistryStats stats_ ABSL_GUARDED_BY(mu_);

  mutable absl::Mutex pending_mu_;
  std::vector<Pending> pending_ ABSL_GUARDED_BY(pending_mu_);

  absl::Mutex wake_mu_;
  bool stop_ ABSL_GUARDED_BY(wake_mu_) = false;
  bool wake_ ABSL_GUARDED_BY(wake_mu_) = false;
  absl::Time last_refresh_ ABSL_GUARDED_BY(wake_mu_) = absl::InfinitePast();
  std::thread thread_;
};

// The agent's way to build a registry from its flags. `options.mode` kNoRuntime: no CRI.
// Otherwise the CRI endpoint is `cri_endpoint` if given (used even when the socket is absent
// now: the runtime may start later; the registry backs off and retries), else the first socket
// found by FindCriEndpoint below `root` ("" = /); when none exists the registry runs in
// kNoRuntime mode (a plain host, the embedded default) and says so in the log.
absl::StatusOr<std::unique_ptr<ContainerRegistry>> CreateContainerRegistry(
    absl::string_view cri_endpoint, ContainerRegistry::Options options,
    absl::string_view root = "");

}  // namespace tapio::attrib

#endif  // TAPIO_AGENT_ATTRIB_CONTAINER_REGISTRY_H_
