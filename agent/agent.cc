#include "agent/agent.h"

#include <poll.h>
#include <stdio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/attrib/kubelet_client.h"
#include "agent/attrib/kubelet_enricher.h"
#include "agent/core/event_json.h"
#include "agent/core/file_util.h"
#include "agent/core/log.h"

namespace tapio {
namespace {

int64_t ThreadCpuNs() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

constexpr char kVersion[] = TAPIO_VERSION;

// The container registry as the pipeline's IdentityResolver, optionally joined with the
// kubelet's /pods (workload, memory requests and limits), refreshed on its own thread.
class RegistryResolver final : public IdentityResolver {
 public:
  explicit RegistryResolver(std::unique_ptr<attrib::ContainerRegistry> registry)
      : registry_(std::move(registry)) {}
  ~RegistryResolver() override {
    if (kubelet_thread_.joinable()) {
      stop_.Notify();
      kubelet_thread_.join();
    }
  }
  void EnableKubelet(std::unique_ptr<attrib::KubeletClient> client, absl::Duration interval) {
    kubelet_ = std::move(client);
    cache_ = std::make_unique<attrib::KubeletPodCache>([this] { return kubelet_->ListPods(); });
    enricher_ = std::make_unique<attrib::KubeletEnricher>(cache_.get());
    kubelet_thread_ = std::thread([this, interval] {
      do {
        absl::Status s = cache_->Refresh();
        if (s.ok()) {
          enricher_->OnKubeletRefreshed();
        } else if (cache_->stats().refresh_failures_total % 10 == 1) {
          TAPIO_LOG(kWarning, "kubelet /pods: %s (identities keep the runtime's data)",
                    s.ToString());
        }
      } while (!stop_.WaitForNotificationWithTimeout(interval));
    });
  }
  std::shared_ptr<const WorkloadIdentity> Resolve(uint64_t cgroup_id,
                                                  const std::string& cgroup_path) override {
    auto identity = registry_->Resolve(cgroup_id, cgroup_path);
    return enricher_ ? enricher_->Enrich(identity) : identity;
  }
  attrib::ContainerRegistry* registry() { return registry_.get(); }
  uint64_t kubelet_failures() const { return cache_ ? cache_->stats().refresh_failures_total : 0; }

 private:
  std::unique_ptr<attrib::ContainerRegistry> registry_;
  std::unique_ptr<attrib::KubeletClient> kubelet_;
  std::unique_ptr<attrib::KubeletPodCache> cache_;
  std::unique_ptr<attrib::KubeletEnricher> enricher_;
  absl::Notification stop_;
  std::thread kubelet_thread_;
};

absl::StatusOr<std::unique_ptr<IdentityResolver>> MakeResolver(const AgentOptions& options,
                                                               attrib::ContainerRegistry** out) {
  attrib::ContainerRegistry::Options ro;
  ro.refresh_interval = options.cri_refresh_interval;
  std::unique_ptr<attrib::CriClient> cri;
  if (options.attribution == "cri" || options.attribution == "auto") {
    auto endpoint = attrib::FindCriEndpoint(options.cri_endpoint);
    if (endpoint.ok()) {
      attrib::GrpcCriClient::Options co;
      co.endpoint = *endpoint;
      auto client = attrib::GrpcCriClient::Create(co);
      if (!client.ok()) return client.status();
      cri = std::move(*client);
      ro.mode = attrib::ContainerRegistry::Mode::kCri;
      TAPIO_LOG(kInfo, "attribution: container runtime at %s", *endpoint);
    } else if (options.attribution == "cri") {
      return absl::FailedPreconditionError(absl::StrCat(
          "--attribution=cri: ", endpoint.status().message(), " (give --cri_endpoint)"));
    } else {
      TAPIO_LOG(kInfo,
                "attribution: no container runtime socket found; containers are cgroups "
                "named by path");
    }
  } else if (options.attribution != "none") {
    return absl::InvalidArgumentError("--attribution: want auto, cri or none");
  }
  auto registry = attrib::ContainerRegistry::Create(ro, std::move(cri));
  if (!registry.ok()) return registry.status();
  auto resolver = std::make_unique<RegistryResolver>(std::move(*registry));
  if (options.kubelet) {
    attrib::KubeletClient::Options ko;
    ko.url = options.kubelet_url;
    auto kubelet = attrib::KubeletClient::Create(ko);
    if (!kubelet.ok()) {
      return absl::Status(kubelet.status().code(),
                          absl::StrCat("--kubelet: ", kubelet.status().message()));
    }
    TAPIO_LOG(kInfo, "kubelet: workloads and memory requests from %s", (*kubelet)->url());
    resolver->EnableKubelet(std::move(*kubelet), options.kubelet_refresh_interval);
  }
  *out = resolver->registry();
  return resolver;
}

bool ReadBpfStatsEnabled() {
  auto text = ReadFileToString("/proc/sys/kernel/bpf_stats_enabled");
  return text.ok() && !text->empty() && (*text)[0] == '1';
}

}  // namespace

Agent::Agent(const AgentOptions& options)
    : options_(options), bus_(options.replay_capacity, options.replay_min_severity) {}

Agent::~Agent() { Stop(); }

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(const AgentOptions& options) {
  std::unique_ptr<Agent> agent(new Agent(options));
  if (!options.model_file.empty()) {
    auto text = ReadFileToString(options.model_file);
    if (!text.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--model_file: ", text.status().message()));
    }
    auto params = predict::LoadModelParams(*text);
    if (!params.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--model_file ", options.model_file, ": ", params.status().message()));
    }
    agent->model_params_ = *params;
  }
  auto layout = CgroupLayout::Detect();
  if (!layout.ok()) return layout.status();
  agent->layout_ = *layout;
  TAPIO_LOG(kInfo, "cgroups: %s", agent->layout_.Describe());

  bpf::TrackerOptions tracker_options = options.tracker;
  tracker_options.use_v1_memcg_id = agent->layout_.ids_from_v1_memory();
  auto tracker = bpf::MemoryTracker::Create(tracker_options);
  if (!tracker.ok()) return tracker.status();
  agent->tracker_ = std::move(*tracker);
  for (const auto& p : agent->tracker_->Programs()) {
    if (p.attached) {
      TAPIO_LOG(kInfo, "attached %s at %s", p.name, p.attach_point);
    } else {
      TAPIO_LOG(kInfo, "skipped %s (%s): %s", p.name, p.attach_point, p.skip_reason);
    }
  }
  TAPIO_LOG(kInfo, "event transport: %s",
            agent->tracker_->using_ringbuf() ? "ring buffer" : "perf buffer");

  if (!options.kmsg_path.empty()) {
    auto kmsg = KmsgReader::Open(options.kmsg_path);
    if (kmsg.ok()) {
      agent->kmsg_ = std::move(*kmsg);
    } else {
      // Without the kernel log an OOM kill is still reported; its constraint then comes from the
      // memcg counters (or is "unknown").
      TAPIO_LOG(kWarning, "no OOM constraint from the kernel log: %s", kmsg.status().ToString());
    }
  }
  auto resolver = MakeResolver(options, &agent->registry_);
  if (!resolver.ok()) return resolver.status();
  agent->resolver_ = std::move(*resolver);
  agent->pipeline_ = std::make_unique<Pipeline>(options.pipeline, agent->layout_, &agent->bus_,
                                                agent->resolver_.get(), &agent->model_params_);
  agent->RestorePriors();
  if (options.enable_bpf_stats) {
    auto previous = bpf::SetBpfStatsEnabled(true);
    if (previous.ok()) {
      agent->bpf_stats_were_enabled_ = *previous;
      agent->bpf_stats_changed_ = true;
    } else {
      TAPIO_LOG(kWarning, "--enable_bpf_stats: %s", previous.status().ToString());
    }
  }
  return agent;
}

absl::Status Agent::Start() {
  if (started_) return absl::FailedPreconditionError("agent already started");
  started_ = true;
  // Counts every published event by kind without queueing anything: the filter runs inside
  // EventBus::Publish and always declines. It asks for nothing (Interest::None), so events that
  // no consumer wants are not built just to be counted.
  count_sub_ = bus_.Subscribe(
      [this](const Event& e) {
        published_[static_cast<size_t>(e.kind())].fetch_add(1, std::memory_order_relaxed);
        return false;
      },
      1, std::nullopt, Interest::None());
  if (options_.json_output) {
    const Severity min = options_.json_min_severity;
    json_sub_ =
        bus_.Subscribe([min](const Event& e) { return e.severity >= min; }, options_.json_queue,
                       std::nullopt, Interest{Interest::kAllKinds, min});
    json_ = std::thread(&Agent::JsonLoop, this);
  }
  start_time_unix_ns_ = absl::ToUnixNanos(absl::Now());
  if (!options_.metrics_address.empty()) {
    metrics::MetricsExporter::Options mo;
    mo.listen_address = options_.metrics_address;
    mo.bus = &bus_;
    auto labels = metrics::ParseContainerLabels(options_.metrics_labels);
    if (!labels.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metrics_labels: ", labels.status().message()));
    }
    mo.metrics.labels = *labels;
    mo.metrics.health = [this]() { return Health(); };
    auto exporter = metrics::MetricsExporter::Create(mo);
    if (!exporter.ok()) {
      return absl::Status(exporter.status().code(),
                          absl::StrCat("--metrics_address: ", exporter.status().message()));
    }
    metrics_ = std::move(*exporter);
    // A gone container's series leave with it (staleness would keep them 10 minutes).
    pipeline_->OnCgroupGone([m = metrics_.get()](uint64_t id) { m->ForgetContainer(id); });
    // The bound port: with ":0" the kernel chose it.
    const std::string host =
        options_.metrics_address.substr(0, options_.metrics_address.rfind(':'));
    TAPIO_LOG(kInfo, "metrics on http://%s:%d/metrics", host, metrics_->port());
  }
  if (options_.api_enabled) {
    api::ApiServerOptions ao = options_.api;
    ao.node_name = options_.pipeline.node_name;
    auto server = api::ApiServer::Create(ao, &bus_, this);
    if (!server.ok()) return server.status();
    api_ = std::move(*server);
    TAPIO_LOG(kInfo, "gRPC API on %s", api_->address());
  }
  if (!options_.health_address.empty()) {
    auto health = HealthServer::Create(options_.health_address);
    if (!health.ok()) return health.status();
    health_ = std::move(*health);
    TAPIO_LOG(kInfo, "gRPC health on port %d", health_->port());
  }
  ingest_ = std::thread(&Agent::IngestLoop, this);
  sampler_ = std::thread(&Agent::SamplerLoop, this);
  return absl::OkStatus();
}

void Agent::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  if (health_) health_->SetNotServing();
  if (api_) api_->Shutdown();
  if (ingest_.joinable()) ingest_.join();
  if (sampler_.joinable()) sampler_.join();
  SavePriors(/*at_stop=*/true);
  metrics_.reset();  // its scrape threads read the tracker
  // Detach from the kernel before the last events are written out.
  tracker_.reset();
  if (bpf_stats_changed_) (void)bpf::SetBpfStatsEnabled(bpf_stats_were_enabled_);
  if (json_sub_) {
    json_sub_->Close();  // JsonLoop drains what is queued, then ends
    if (json_.joinable()) json_.join();
  }
}

void Agent::PublishKernelLoss(const bpf::LossCounters& now) {
  uint64_t ring_new = 0, perf_new = 0;
  {
    absl::MutexLock lock(&counts_mu_);
    ring_new = now.ringbuf_reserve - reported_loss_.ringbuf_reserve;
    perf_new = (now.perfbuf_output + now.perfbuf_lost_samples) -
               (reported_loss_.perfbuf_output + reported_loss_.perfbuf_lost_samples);
    reported_loss_ = now;
  }
  auto publish = [this](const char* source, uint64_t count) {
    Event e;
    e.time_unix_ns = absl::ToUnixNanos(absl::Now());
    e.severity = Severity::kWarning;
    e.payload = EventsLost{source, count, 0, 0};
    bus_.Publish(std::move(e));
  };
  if (ring_new > 0) publish("ringbuf", ring_new);
  if (perf_new > 0) publish("perfbuf", perf_new);
}

void Agent::IngestLoop() {
  absl::Time next_snapshot = absl::InfinitePast();
  absl::Time next_loss_check = absl::Now() + absl::Seconds(1);
  auto drain_kmsg = [this]() {
    if (kmsg_) kmsg_->Drain([this](const KmsgOomSummary& s) { pipeline_->HandleKmsgOom(s); });
  };
  while (!stopping_.load()) {
    const int64_t offset = BootToUnixOffsetNs();
    auto handled = tracker_->PollBatches(100, [this, offset](const bpf::RecordBatch& batch) {
      pipeline_->HandleRecords(batch, offset);
    });
    if (!handled.ok()) {
      if (poll_errors_.fetch_add(1) % 100 == 0) {
        TAPIO_LOG(kWarning, "poll: %s", handled.status().ToString());
      }
    }
    drain_kmsg();
    const absl::Time now = absl::Now();
    pipeline_->FlushPendingOoms(now, /*all=*/false);
    if (now >= next_snapshot) {
      const int64_t cpu_before_ns = ThreadCpuNs();
      pipeline_->BeginTaskSnapshot();
      absl::Status s = tracker_->SnapshotTasks(
          [this, offset](const tapio_rss_record& r) { pipeline_->HandleTaskRss(r, offset); });
      pipeline_->EndTaskSnapshot();
      if (!s.ok()) TAPIO_LOG(kWarning, "task snapshot: %s", s.ToString());
      // Adaptive interval: the pass costs CPU in proportion to the number of processes (about
      // 2.4 us each here, iterator included); stretch the interval so passes stay within the CPU
      // budget. While a cgroup is at risk the faster interval wins, budget or not.
      const absl::Duration pass_cpu = absl::Nanoseconds(ThreadCpuNs() - cpu_before_ns);
      absl::Duration interval = options_.snapshot_interval;
      if (options_.snapshot_cpu_budget > 0) {
        interval = std::max(interval, pass_cpu / options_.snapshot_cpu_budget);
      }
      last_snapshot_interval_ns_.store(absl::ToInt64Nanoseconds(interval));
      next_snapshot =
          now + (pipeline_->any_at_risk() ? options_.snapshot_interval_at_risk : interval);
    }
    if (now >= next_loss_check) {
      PublishKernelLoss(tracker_->ReadLoss());
      next_loss_check = now + absl::Seconds(1);
    }
  }
  // Drain: what the kernel produced before we stopped is delivered, not dropped.
  for (int i = 0; i < 64; ++i) {
    auto n = tracker_->PollBatches(
        0, [this, offset = BootToUnixOffsetNs()](const bpf::RecordBatch& batch) {
          pipeline_->HandleRecords(batch, offset);
        });
    if (!n.ok() || *n == 0) break;
  }
  drain_kmsg();
  pipeline_->FlushPendingOoms(absl::Now(), /*all=*/true);
  PublishKernelLoss(tracker_->ReadLoss());
}

void Agent::RestorePriors() {
  const std::string& path = options_.prior_state_file;
  if (path.empty()) return;
  absl::StatusOr<std::string> text = ReadFileToString(path, 4 << 20);
  if (absl::IsNotFound(text.status())) {
    TAPIO_LOG(kInfo, "restart priors: %s does not exist yet; it will be written", path);
    return;
  }
  absl::StatusOr<std::vector<StoredPrior>> priors =
      text.ok() ? PriorsFromJson(*text) : absl::StatusOr<std::vector<StoredPrior>>(text.status());
  if (!priors.ok()) {
    // Starting without priors only costs start-up predictions; the file is rewritten once a run
    // finishes.
    prior_store_errors_.fetch_add(1);
    TAPIO_LOG(kWarning, "restart priors: ignoring %s: %s", path, priors.status().ToString());
    return;
  }
  // Restoring leaves the generation as it was (what the file holds is written already).
  const size_t taken = pipeline_->RestorePriors(*priors);
  TAPIO_LOG(kInfo, "restart priors: %zu of %zu restored from %s", taken, priors->size(), path);
}

void Agent::SavePriors(bool at_stop) {
  const std::string& path = options_.prior_state_file;
  if (path.empty()) return;
  uint64_t generation = 0;
  const std::vector<StoredPrior> priors = pipeline_->FinishedRunPriors(&generation, at_stop);
  if (!at_stop && generation == priors_saved_generation_) return;
  const absl::Status written = ReplaceFileAtomically(path, PriorsToJson(priors));
  if (written.ok()) {
    priors_saved_generation_ = generation;
    if (!priors_last_error_.empty()) TAPIO_LOG(kInfo, "restart priors: %s written again", path);
    priors_last_error_.clear();
    return;
  }
  prior_store_errors_.fetch_add(1);
  if (written.ToString() != priors_last_error_) {
    priors_last_error_ = written.ToString();
    TAPIO_LOG(kWarning, "restart priors: cannot write %s: %s (kept in memory, retried)", path,
              priors_last_error_);
  }
}

void Agent::SamplerLoop() {
  while (!stopping_.load()) {
    const absl::Time now = absl::Now();
    const absl::Time next = pipeline_->SampleDue(now);
    if (now >= priors_next_save_) {
      priors_next_save_ = now + absl::Minutes(1);
      SavePriors(/*at_stop=*/false);
    }
    // Wake at the next due sample, but at least every 50 ms to notice OOM-triggered samples.
    absl::Duration wait =
        std::clamp(next - absl::Now(), absl::Milliseconds(5), absl::Milliseconds(50));
    absl::SleepFor(wait);
  }
}

void Agent::JsonLoop() {
  const std::string& node = options_.pipeline.node_name;
  std::string line;
  while (true) {
    EventPtr e = json_sub_->Next(absl::Milliseconds(200));
    if (e == nullptr) {
      if (json_sub_->closed()) break;
      continue;
    }
    line = EventToJson(*e, node).dump();
    line.push_back('\n');
    if (fwrite(line.data(), 1, line.size(), stdout) != line.size()) {
      TAPIO_LOG(kError, "stdout closed; JSON output stops");
      break;
    }
    fflush(stdout);
  }
}

std::vector<api::ContainerSnapshot> Agent::ListContainers() const {
  std::vector<api::ContainerSnapshot> out;
  for (ContainerState& c : pipeline_->Containers()) {
    api::ContainerSnapshot snap;
    snap.identity = std::move(c.identity);
    snap.usage = c.usage;
    snap.usage_time_unix_ns = c.last_sample_unix_ns;
    if (c.at_risk || c.prediction.state == OomPrediction::State::kCleared) {
      snap.prediction = c.prediction;
      snap.prediction_time_unix_ns = c.last_sample_unix_ns;
    }
    out.push_back(std::move(snap));
  }
  return out;
}

api::AgentInfo Agent::GetAgentInfo() const {
  api::AgentInfo info;
  info.version = kVersion;
  info.node = options_.pipeline.node_name;
  struct utsname u;
  if (uname(&u) == 0) info.kernel_release = u.release;
  info.start_time_unix_ns = start_time_unix_ns_;
  info.kernel_features.push_back({"btf", true, "/sys/kernel/btf/vmlinux"});
  info.kernel_features.push_back({"ringbuf", tracker_ && tracker_->using_ringbuf(),
                                  tracker_ && tracker_->using_ringbuf() ? "" : "perf buffer"});
  info.kernel_features.push_back({"cgroup", true, layout_.Describe()});
  info.kernel_features.push_back({"kmsg", kmsg_ != nullptr, options_.kmsg_path});
  if (tracker_) {
    for (const auto& p : tracker_->Programs()) {
      api::BpfProgramInfo b;
      b.name = p.name;
      b.attach_point = p.attach_point;
      b.status = p.attached ? api::BpfProgramInfo::Status::kAttached
                            : api::BpfProgramInfo::Status::kDisabled;
      b.error = p.skip_reason;
      info.programs.push_back(std::move(b));
      if (p.attach_point.rfind("fentry/", 0) == 0) {
        info.kernel_features.push_back({"fentry", p.attached, p.skip_reason});
      }
    }
  }
  info.config = options_.config;
  return info;
}

metrics::AgentHealth Agent::Health() const {
  const AgentCounts c = Counts();
  metrics::AgentHealth h;
  uint64_t ring_records = 0;
  for (size_t i = 0; i < c.pipeline.records_by_type.size(); ++i) {
    if (i != TAPIO_REC_TASK_RSS) ring_records += c.pipeline.records_by_type[i];
  }
  const bool ring = tracker_ && tracker_->using_ringbuf();
  h.sources.push_back({ring ? "ringbuf" : "perfbuf", ring_records,
                       ring ? c.kernel_loss.ringbuf_reserve
                            : c.kernel_loss.perfbuf_output + c.kernel_loss.perfbuf_lost_samples});
  h.sources.push_back({"task_iter", c.pipeline.records_by_type[TAPIO_REC_TASK_RSS], 0});
  h.sources.push_back({"cgroup_sampler", c.pipeline.samples, c.pipeline.sample_errors});
  h.ringbuf_lost_total = c.kernel_loss.ringbuf_reserve;
  // The API server is one bus subscriber fanning out to its streams: count its streams and
  // their drops, not the one subscription.
  h.subscriber_drops_total = bus_.subscriber_drops_total();
  h.subscribers = 0;
  if (api_) {
    const api::ApiServerStats as = api_->stats();
    h.subscriber_drops_total += as.drops_total;
    h.subscribers = as.subscribers;
  }
  h.attribution_failures_total = c.pipeline.cgroup_path_misses;
  if (registry_ != nullptr) {
    const attrib::RegistryStats rs = registry_->stats();
    h.attribution_failures_total += rs.refresh_failures_total + rs.status_failures_total;
  }
  h.restart_priors_total = c.pipeline.restart_priors_applied;
  h.peer_priors_total = c.pipeline.peer_priors_applied;
  h.jump_triggered_samples_total = c.pipeline.jump_triggered_samples;
  h.events_not_built_total = c.pipeline.events_not_built;
  h.runtime_scan = c.pipeline.runtime_scan;
  h.prior_store_errors_total = prior_store_errors_.load();
  h.bpf_stats_enabled = ReadBpfStatsEnabled();
  if (tracker_) {
    for (const auto& p : tracker_->Programs()) {
      if (p.attached) h.bpf_programs.push_back({p.name, p.run_count, p.run_time_ns});
    }
  }
  h.version = kVersion;
  return h;
}

AgentCounts Agent::Counts() const {
  AgentCounts c;
  for (int i = 0; i < kEventKindCount; ++i) {
    c.published_by_kind[i] = published_[i].load();
    c.published_total += c.published_by_kind[i];
  }
  {
    absl::MutexLock lock(&counts_mu_);
    c.kernel_loss = reported_loss_;
  }
  c.json_dropped = json_sub_ ? json_sub_->dropped_total() : 0;
  c.pipeline = pipeline_->counters();
  c.kmsg_overruns = kmsg_ ? kmsg_->overruns() : 0;
  c.poll_errors = poll_errors_.load();
  return c;
}

std::string Agent::SummaryLine() const {
  const AgentCounts c = Counts();
  std::vector<std::string> parts;
  parts.reserve(kEventKindCount);
  for (int i = 0; i < kEventKindCount; ++i) {
    parts.push_back(
        absl::StrCat(EventKindName(static_cast<EventKind>(i)), "=", c.published_by_kind[i]));
  }
  return absl::StrCat("events ", c.published_total, " (", absl::StrJoin(parts, " "),
                      ") lost: ringbuf=", c.kernel_loss.ringbuf_reserve, " perfbuf=",
                      c.kernel_loss.perfbuf_output + c.kernel_loss.perfbuf_lost_samples,
                      " json=", c.json_dropped, " malformed=", c.pipeline.records_malformed,
                      "; processes=", c.pipeline.processes, " snapshot_every=",
                      absl::FormatDuration(absl::Nanoseconds(last_snapshot_interval_ns_.load())),
                      " cgroups=", c.pipeline.cgroups_tracked, " samples=", c.pipeline.samples,
                      " (jump-triggered ", c.pipeline.jump_triggered_samples, ")",
                      " priors: restart=", c.pipeline.restart_priors_applied,
                      " peer=", c.pipeline.peer_priors_applied);
}

}  // namespace tapio
