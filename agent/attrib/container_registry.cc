#include "agent/attrib/container_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/attrib/cgroup_path_parser.h"
#include "agent/attrib/pod_workload.h"
#include "agent/core/log.h"

namespace tapio::attrib {
namespace {

// Kubelet bookkeeping labels: not the pod's own labels.
bool IsKubeletInternalLabel(absl::string_view key) {
  return key == kLabelPodName || key == kLabelPodNamespace || key == kLabelPodUid ||
         absl::StartsWith(key, "io.kubernetes.container.");
}

std::string LabelOr(const std::map<std::string, std::string>& labels, absl::string_view key,
                    const std::string& fallback) {
  auto it = labels.find(std::string(key));
  return it == labels.end() || it->second.empty() ? fallback : it->second;
}

void FillPod(const CriPodSandbox& s, WorkloadIdentity* id) {
  id->pod_name = LabelOr(s.labels, kLabelPodName, s.name);
  id->pod_namespace = LabelOr(s.labels, kLabelPodNamespace, s.pod_namespace);
  id->pod_uid = LabelOr(s.labels, kLabelPodUid, s.uid);
  id->labels.clear();
  for (const auto& [k, v] : s.labels) {  // std::map: already sorted by key
    if (!IsKubeletInternalLabel(k)) id->labels.emplace_back(k, v);
  }
  // The kubelet copies the pod's labels onto its sandbox; the controller's own labels name it.
  // A configured kubelet enricher replaces this with the ownerReferences.
  PodWorkload w = WorkloadFromPodLabels(id->pod_name, s.labels);
  id->workload_kind = std::move(w.kind);
  id->workload_name = std::move(w.name);
}

size_t StrBytes(const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; }

size_t MapBytes(const std::map<std::string, std::string>& m) {
  size_t n = 0;
  for (const auto& [k, v] : m) n += 32 + 2 * sizeof(std::string) + StrBytes(k) + StrBytes(v);
  return n;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ContainerRegistry>> ContainerRegistry::Create(
    Options options, std::unique_ptr<CriClient> cri) {
  if (options.mode == Mode::kCri && cri == nullptr) {
    return absl::InvalidArgumentError("ContainerRegistry: mode kCri needs a CriClient");
  }
  if (options.refresh_interval <= absl::ZeroDuration() ||
      options.initial_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "ContainerRegistry: refresh_interval and initial_backoff must be positive, "
        "max_backoff >= initial_backoff");
  }
  if (options.max_enrichment_attempts < 1) {
    return absl::InvalidArgumentError("ContainerRegistry: max_enrichment_attempts must be >= 1");
  }
  auto reg =
      std::unique_ptr<ContainerRegistry>(new ContainerRegistry(std::move(options), std::move(cri)));
  if (reg->options_.mode == Mode::kCri && reg->options_.start_thread) {
    reg->thread_ = std::thread([r = reg.get()] { r->Run(); });
  }
  return reg;
}

ContainerRegistry::ContainerRegistry(Options options, std::unique_ptr<CriClient> cri)
    : options_(std::move(options)), cri_(std::move(cri)) {}

ContainerRegistry::~ContainerRegistry() {
  {
    absl::MutexLock l(&wake_mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const WorkloadIdentity> ContainerRegistry::Build(uint64_t cgroup_id,
                                                                 absl::string_view path,
                                                                 bool* known) {
  auto id = std::make_shared<WorkloadIdentity>();
  id->cgroup_id = cgroup_id;
  id->cgroup_path = std::string(path);
  *known = false;
  if (options_.mode == Mode::kNoRuntime) {
    *known = true;
    return id;
  }

  auto fill_container = [&](const ContainerRecord& rec) {
    const CriContainer& c = rec.container;
    id->container_id = c.id;
    id->container_name = LabelOr(c.labels, kLabelContainerName, c.name);
    auto sb = sandboxes_.find(c.pod_sandbox_id);
    if (sb != sandboxes_.end()) {
      FillPod(sb->second.sandbox, id.get());
    } else {  // sandbox gone or not listed yet: the container's own kubelet labels
      id->pod_name = LabelOr(c.labels, kLabelPodName, "");
      id->pod_namespace = LabelOr(c.labels, kLabelPodNamespace, "");
      id->pod_uid = LabelOr(c.labels, kLabelPodUid, id->pod_uid);
    }
    *known = true;
  };

  absl::StatusOr<CgroupPathInfo> info = ParseCgroupPath(path);
  if (info.ok()) {
    id->qos_class = info->qos_class;
    id->pod_uid = info->pod_uid;
  }
  // Paths the runtime reported (verbose ContainerStatus): covers cgroup parents outside kubepods.
  if (!container_by_cgroups_path_.empty()) {
    absl::string_view p = path;
    for (int depth = 0; depth < 8 && !p.empty(); ++depth) {
      if (auto it = container_by_cgroups_path_.find(std::string(p));
          it != container_by_cgroups_path_.end()) {
        if (auto c = containers_.find(it->second); c != containers_.end()) {
          fill_container(c->second);
          return id;
        }
      }
      size_t slash = p.rfind('/');
      if (slash == absl::string_view::npos || slash == 0) break;
      p = p.substr(0, slash);
    }
  }
  if (!info.ok()) {
    ++stats_.path_parse_failures_total;
    TAPIO_LOG(kDebug, "attribution: %s", info.status().message());
    *known = true;  // nothing more to learn: named by path
    return id;
  }
  switch (info->kind) {
    case CgroupKind::kNotKubernetes:
    case CgroupKind::kQosLevel:
      *known = true;
      return id;
    case CgroupKind::kPod: {
      auto it = sandbox_by_pod_uid_.find(info->pod_uid);
      if (it != sandbox_by_pod_uid_.end()) {
        FillPod(sandboxes_.at(it->second).sandbox, id.get());
        *known = true;
      }
      return id;
    }
    case CgroupKind::kContainer: {
      id->container_id = info->container_id;
      if (auto c = containers_.find(info->container_id); c != containers_.end()) {
        fill_container(c->second);
        return id;
      }
      if (auto sb = sandboxes_.find(info->container_id); sb != sandboxes_.end()) {
        FillPod(sb->second.sandbox, id.get());
        id->container_name = "POD";  // the sandbox (pause) container, named as the kubelet does
        *known = true;
        return id;
      }
      // Unknown container in a known pod: pod fields now, container name later.
      if (auto it = sandbox_by_pod_uid_.find(info->pod_uid); it != sandbox_by_pod_uid_.end()) {
        FillPod(sandboxes_.at(it->second).sandbox, id.get());
      }
      return id;
    }
  }
  return id;
}

std::shared_ptr<const WorkloadIdentity> ContainerRegistry::ResolveLocked(uint64_t cgroup_id,
                                                                         absl::string_view path,
                                                                         bool* known, bool* built) {
  ++stats_.resolves_total;
  if (built) *built = false;
  auto it = cache_.find(cgroup_id);
  if (it != cache_.end() && it->second.generation == generation_ &&
      it->second.identity->cgroup_path == path) {
    *known = it->second.known;
    if (!*known) ++stats_.path_only_total;
    return it->second.identity;
  }
  auto identity = Build(cgroup_id, path, known);
  if (built) *built = true;
  if (!*known) ++stats_.path_only_total;
  if (cache_.size() >= options_.max_cached_cgroups) cache_.clear();
  cache_[cgroup_id] = CacheEntry{generation_, *known, identity};
  stats_.cached_cgroups = cache_.size();
  return identity;
}

std::shared_ptr<const WorkloadIdentity> ContainerRegistry::Resolve(uint64_t cgroup_id,
                                                                   absl::string_view cgroup_path) {
  bool known = false;
  bool built = false;
  std::shared_ptr<const WorkloadIdentity> id;
  {
    absl::MutexLock l(&mu_);
    id = ResolveLocked(cgroup_id, cgroup_path, &known, &built);
  }
  // First miss of this cgroup since the last change: ask for an early refresh (once, not per
  // event, so a cgroup the runtime never lists does not keep the runtime busy).
  if (!known && built) RequestRefresh();
  return id;
}

void ContainerRegistry::WhenKnown(uint64_t cgroup_id, absl::string_view cgroup_path,
                                  absl::Time deadline, Callback callback) {
  bool known = false;
  std::shared_ptr<const WorkloadIdentity> id;
  {
    absl::MutexLock l(&mu_);
    id = ResolveLocked(cgroup_id, cgroup_path, &known, nullptr);
  }
  if (known) {
    {
      absl::MutexLock l(&mu_);
      ++stats_.enrichments_known_total;
    }
    callback(std::move(id), true);
    return;
  }
  Callback overflow;  // set when the pending queue is full: answered now, path-only
  {
    absl::MutexLock l(&pending_mu_);
    if (pending_.size() >= options_.max_pending) {
      overflow = std::move(callback);
    } else {
      pending_.push_back(
          Pending{cgroup_id, std::string(cgroup_path), deadline, 0, std::move(callback)});
    }
  }
  if (overflow) {
    {
      absl::MutexLock l(&mu_);
      ++stats_.enrichments_dropped_total;
    }
    overflow(std::move(id), false);
    return;
  }
  RequestRefresh();
}

void ContainerRegistry::RequestRefresh() {
  if (options_.mode != Mode::kCri) return;
  absl::MutexLock l(&wake_mu_);
  wake_ = true;
}

void ContainerRegistry::SettlePending(bool refreshed) {
  std::vector<Pending> work;
  {
    absl::MutexLock l(&pending_mu_);
    work.swap(pending_);
  }
  if (work.empty()) return;
  const absl::Time now = Now();
  struct Done {
    Callback callback;
    std::shared_ptr<const WorkloadIdentity> identity;
    bool known;
  };
  std::vector<Done> done;
  std::vector<Pending> keep;
  {
    absl::MutexLock l(&mu_);
    for (Pending& p : work) {
      bool known = false;
      auto id = ResolveLocked(p.cgroup_id, p.path, &known, nullptr);
      if (refreshed) ++p.attempts;
      if (known) {
        ++stats_.enrichments_known_total;
        done.push_back(Done{std::move(p.callback), std::move(id), true});
      } else if (now >= p.deadline || p.attempts >= options_.max_enrichment_attempts) {
        ++stats_.enrichments_expired_total;
        done.push_back(Done{std::move(p.callback), std::move(id), false});
      } else {
        keep.push_back(std::move(p));
      }
    }
  }
  {
    absl::MutexLock l(&pending_mu_);
    for (Pending& p : pending_) keep.push_back(std::move(p));  // arrived meanwhile
    pending_.swap(keep);
  }
  for (Done& d : done) d.callback(std::move(d.identity), d.known);
}

absl::Status ContainerRegistry::RefreshOnce() {
  if (options_.mode != Mode::kCri) return absl::OkStatus();
  absl::StatusOr<std::vector<CriPodSandbox>> sandboxes = cri_->ListPodSandbox();
  absl::StatusOr<std::vector<CriContainer>> containers =
      sandboxes.ok() ? cri_->ListContainers()
                     : absl::StatusOr<std::vector<CriContainer>>(sandboxes.status());
  const absl::Time now = Now();
  if (!sandboxes.ok() || !containers.ok()) {
    absl::Status err = sandboxes.ok() ? containers.status() : sandboxes.status();
    {
      absl::MutexLock l(&mu_);
      ++stats_.refreshes_total;
      ++stats_.refresh_failures_total;
      ++stats_.consecutive_failures;
      if (stats_.runtime_up || stats_.consecutive_failures == 1) {
        TAPIO_LOG(kWarning, "attribution: runtime refresh failed (%s); path-only identities",
                  err.ToString());
      }
      stats_.runtime_up = false;
      absl::Duration backoff = options_.initial_backoff;
      for (uint64_t i = 1; i < stats_.consecutive_failures && backoff < options_.max_backoff; ++i) {
        backoff *= 2;
      }
      stats_.current_backoff_ms =
          absl::ToInt64Milliseconds(std::min(backoff, options_.max_backoff));
    }
    SettlePending(false);
    return err;
  }

  // Phase 1: merge the lists. Identities depend only on these, so publish before status calls.
  std::vector<std::string> need_status;
  {
    absl::MutexLock l(&mu_);
    bool changed = false;
    if (!stats_.runtime_up && stats_.consecutive_failures > 0) {
      TAPIO_LOG(kInfo, "attribution: runtime reachable again after %d failed refreshes",
                static_cast<int>(stats_.consecutive_failures));
    }
    ++stats_.refreshes_total;
    stats_.runtime_up = true;
    stats_.consecutive_failures = 0;
    stats_.current_backoff_ms = 0;

    std::unordered_map<std::string, bool> listed;
    for (CriPodSandbox& s : *sandboxes) {
      listed[s.id] = true;
      auto [it, inserted] = sandboxes_.try_emplace(s.id);
      SandboxRecord& rec = it->second;
      if (inserted || rec.deleted_at != absl::InfiniteFuture() || rec.sandbox.labels != s.labels ||
          rec.sandbox.ready != s.ready) {
        changed = true;
      }
      rec.sandbox = std::move(s);
      rec.deleted_at = absl::InfiniteFuture();
    }
    for (auto it = sandboxes_.begin(); it != sandboxes_.end();) {
      if (!listed.count(it->first)) {
        if (it->second.deleted_at == absl::InfiniteFuture()) {
          it->second.deleted_at = now;
          changed = true;
        } else if (now - it->second.deleted_at > options_.deleted_retention) {
          it = sandboxes_.erase(it);
          changed = true;
          continue;
        }
      }
      ++it;
    }
    listed.clear();
    for (CriContainer& c : *containers) {
      listed[c.id] = true;
      auto [it, inserted] = containers_.try_emplace(c.id);
      ContainerRecord& rec = it->second;
      if (inserted || rec.deleted_at != absl::InfiniteFuture() ||
          rec.container.labels != c.labels || rec.container.pod_sandbox_id != c.pod_sandbox_id) {
        changed = true;
      }
      rec.container = std::move(c);
      rec.deleted_at = absl::InfiniteFuture();
      if (!rec.have_status && need_status.size() < options_.max_status_calls_per_refresh) {
        need_status.push_back(rec.container.id);
      }
    }
    for (auto it = containers_.begin(); it != containers_.end();) {
      if (!listed.count(it->first)) {
        if (it->second.deleted_at == absl::InfiniteFuture()) {
          it->second.deleted_at = now;
          changed = true;
        } else if (now - it->second.deleted_at > options_.deleted_retention) {
          if (!it->second.cgroups_path.empty())
            container_by_cgroups_path_.erase(it->second.cgroups_path);
          it = containers_.erase(it);
          changed = true;
          continue;
        }
      }
      ++it;
    }
    if (changed) {
      // Newest ready sandbox per pod uid wins (a restarted pod has a new sandbox, same uid).
      sandbox_by_pod_uid_.clear();
      for (const auto& [sid, rec] : sandboxes_) {
        const std::string uid = LabelOr(rec.sandbox.labels, kLabelPodUid, rec.sandbox.uid);
        if (uid.empty()) continue;
        auto [it, inserted] = sandbox_by_pod_uid_.try_emplace(uid, sid);
        if (!inserted) {
          const SandboxRecord& cur = sandboxes_.at(it->second);
          auto rank = [](const SandboxRecord& r) {
            return std::make_tuple(r.deleted_at == absl::InfiniteFuture(), r.sandbox.ready,
                                   r.sandbox.created_at_ns);
          };
          if (rank(rec) > rank(cur)) it->second = sid;
        }
      }
      ++generation_;
    }
    stats_.known_containers = 0;
    stats_.retained_deleted = 0;
    for (const auto& [cid, rec] : containers_) {
      (rec.deleted_at == absl::InfiniteFuture() ? stats_.known_containers
                                                : stats_.retained_deleted)++;
    }
    for (const auto& [sid, rec] : sandboxes_) {
      if (rec.deleted_at != absl::InfiniteFuture()) ++stats_.retained_deleted;
    }
    stats_.known_sandboxes = sandboxes_.size();
  }
  SettlePending(true);

  // Phase 2: verbose status for containers seen for the first time (pid, cgroups path).
  if (need_status.empty()) return absl::OkStatus();
  std::vector<std::pair<std::string, CriContainerStatus>> got;
  uint64_t failures = 0;
  for (const std::string& cid : need_status) {
    absl::StatusOr<CriContainerStatus> st = cri_->ContainerStatus(cid, /*verbose=*/true);
    if (!st.ok()) {
      ++failures;  // removed meanwhile, or runtime trouble: retried next refresh
      TAPIO_LOG(kDebug, "attribution: ContainerStatus %s: %s", cid, st.status().ToString());
      continue;
    }
    got.emplace_back(cid, *std::move(st));
  }
  absl::MutexLock l(&mu_);
  stats_.status_calls_total += need_status.size();
  stats_.status_failures_total += failures;
  bool new_paths = false;
  for (auto& [cid, st] : got) {
    auto it = containers_.find(cid);
    if (it == containers_.end()) continue;
    it->second.have_status = true;
    it->second.pid = st.pid;
    it->second.cgroups_path = st.cgroups_path;
    if (absl::StartsWith(st.cgroups_path, "/")) {  // cgroupfs driver: a real path
      container_by_cgroups_path_[st.cgroups_path] = cid;
      new_paths = true;
    }
  }
  if (new_paths) ++generation_;
  return absl::OkStatus();
}

void ContainerRegistry::Run() {
  absl::Time last_refresh = absl::InfinitePast();
  for (;;) {
    absl::Duration wait;
    bool failing;
    {
      absl::MutexLock l(&mu_);
      failing = stats_.consecutive_failures > 0;
      wait = failing ? absl::Milliseconds(stats_.current_backoff_ms) : options_.refresh_interval;
    }
    absl::Time earliest_pending = absl::InfiniteFuture();
    {
      absl::MutexLock l(&pending_mu_);
      for (const Pending& p : pending_) earliest_pending = std::min(earliest_pending, p.deadline);
    }
    const absl::Time next_refresh = last_refresh + wait;
    bool do_refresh = false;
    {
      absl::MutexLock l(&wake_mu_);
      // While failing, wake-ups do not bypass the backoff.
      auto ready = [this, failing]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(wake_mu_) {
        return stop_ || (wake_ && !failing);
      };
      wake_mu_.AwaitWithDeadline(absl::Condition(&ready), std::min(next_refresh, earliest_pending));
      if (stop_) return;
      absl::Time now = absl::Now();
      if (now >= next_refresh) {
        do_refresh = true;
      } else if (wake_ && !failing) {
        absl::Time gap_end = last_refresh + options_.min_refresh_gap;
        if (now < gap_end) {
          wake_mu_.AwaitWithDeadline(absl::Condition(&stop_), gap_end);
          if (stop_) return;
        }
        do_refresh = true;
      }
      if (do_refresh) wake_ = false;
    }
    if (do_refresh) {
      last_refresh = absl::Now();
      (void)RefreshOnce();
    } else {
      SettlePending(false);  // a pending deadline passed
    }
  }
}

RegistryStats ContainerRegistry::stats() const {
  RegistryStats s;
  {
    absl::MutexLock l(&mu_);
    s = stats_;
  }
  absl::MutexLock l(&pending_mu_);
  s.pending_enrichments = pending_.size();
  return s;
}

size_t ContainerRegistry::ApproximateMemoryBytes() const {
  absl::MutexLock l(&mu_);
  size_t n = sizeof(*this);
  constexpr size_t kNode = 48;  // unordered_map node + bucket overhead, approximately
  for (const auto& [k, r] : containers_) {
    n += kNode + sizeof(r) + StrBytes(k) + StrBytes(r.container.id) +
         StrBytes(r.container.pod_sandbox_id) + StrBytes(r.container.name) +
         StrBytes(r.cgroups_path) + MapBytes(r.container.labels);
  }
  for (const auto& [k, r] : sandboxes_) {
    n += kNode + sizeof(r) + StrBytes(k) + StrBytes(r.sandbox.id) + StrBytes(r.sandbox.name) +
         StrBytes(r.sandbox.pod_namespace) + StrBytes(r.sandbox.uid) + MapBytes(r.sandbox.labels);
  }
  for (const auto& [k, v] : sandbox_by_pod_uid_)
    n += kNode + 2 * sizeof(std::string) + StrBytes(k) + StrBytes(v);
  for (const auto& [k, v] : container_by_cgroups_path_)
    n += kNode + 2 * sizeof(std::string) + StrBytes(k) + StrBytes(v);
  for (const auto& [k, e] : cache_) {
    n += kNode + sizeof(e);
    const WorkloadIdentity& id = *e.identity;
    n += 16 + sizeof(id) + StrBytes(id.cgroup_path) + StrBytes(id.container_id) +
         StrBytes(id.container_name) + StrBytes(id.pod_name) + StrBytes(id.pod_namespace) +
         StrBytes(id.pod_uid) + StrBytes(id.qos_class);
    for (const auto& [lk, lv] : id.labels)
      n += 2 * sizeof(std::string) + StrBytes(lk) + StrBytes(lv);
  }
  return n;
}

absl::StatusOr<std::unique_ptr<ContainerRegistry>> CreateContainerRegistry(
    absl::string_view cri_endpoint, ContainerRegistry::Options options, absl::string_view root) {
  if (options.mode == ContainerRegistry::Mode::kNoRuntime) {
    return ContainerRegistry::Create(std::move(options), nullptr);
  }
  absl::StatusOr<std::string> endpoint = FindCriEndpoint(cri_endpoint, root);
  if (!endpoint.ok()) {
    if (!cri_endpoint.empty() || !absl::IsNotFound(endpoint.status())) return endpoint.status();
    TAPIO_LOG(kInfo, "attribution: no container runtime socket found; naming cgroups by path");
    options.mode = ContainerRegistry::Mode::kNoRuntime;
    return ContainerRegistry::Create(std::move(options), nullptr);
  }
  GrpcCriClient::Options co;
  co.endpoint = *endpoint;
  absl::StatusOr<std::unique_ptr<GrpcCriClient>> cri = GrpcCriClient::Create(co);
  if (!cri.ok()) return cri.status();
  TAPIO_LOG(kInfo, "attribution: CRI runtime at %s", *endpoint);
  return ContainerRegistry::Create(std::move(options), *std::move(cri));
}

}  // namespace tapio::attrib
