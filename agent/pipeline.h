// Pipeline: turns kernel records and cgroup readings into attributed events (DESIGN.md §1).
//
//   ingest thread  -> HandleRecord / HandleTask* / HandleKmsgOom / FlushPendingOoms
//                     (process table, OOM context join, RSS deltas, lifecycle, reclaim stalls)
//   sampler thread -> SampleDue (cgroup memory files -> predictor -> usage / pressure / prediction)
//   any thread     -> Containers(), counters()
//
// It owns no kernel handle and no thread: agent/agent.cc runs it, tests feed it synthetic records.
// Ownership: the bus, the identity resolver and the model parameters outlive the pipeline.
#ifndef TAPIO_AGENT_PIPELINE_H_
#define TAPIO_AGENT_PIPELINE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/bpf/record.h"
#include "agent/core/cgroup.h"
#include "agent/core/cgroup_paths.h"
#include "agent/core/event.h"
#include "agent/core/event_bus.h"
#include "agent/core/kmsg.h"
#include "agent/core/process_table.h"
#include "agent/core/runtime_scan.h"
#include "agent/predict/model_params.h"
#include "agent/predict/predictor.h"
#include "agent/predict/trace.h"
#include "agent/prior_store.h"
#include "bpf/tapio_abi.h"

namespace tapio {

// cgroup -> who it is. Implementations: PathIdentityResolver (plain host, the default) and the
// container registry (agent/attrib). Resolve is called on the ingest and sampler threads and must
// not block on I/O to a runtime: answer from a cache, enrich in the background.
class IdentityResolver {
 public:
  virtual ~IdentityResolver() = default;
  virtual std::shared_ptr<const WorkloadIdentity> Resolve(uint64_t cgroup_id,
                                                          const std::string& cgroup_path) = 0;
  // The cgroup is gone; an implementation may keep it a while for late events.
  virtual void Forget(uint64_t cgroup_id) {}
};

// Plain host: a container is a cgroup, named by its path. Thread-safe.
class PathIdentityResolver final : public IdentityResolver {
 public:
  std::shared_ptr<const WorkloadIdentity> Resolve(uint64_t cgroup_id,
                                                  const std::string& cgroup_path) override;
  void Forget(uint64_t cgroup_id) override;

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<const WorkloadIdentity>> cache_
      ABSL_GUARDED_BY(mu_);
};

struct PipelineOptions {
  std::string node_name;
  // A process's RSS is reported when it moved this much since its last report (snapshots).
  uint64_t rss_report_threshold_bytes = 1 << 20;
  // Reclaim passes at least this long become their own memory_pressure event; shorter ones are
  // summed into the periodic pressure event.
  absl::Duration reclaim_event_min = absl::Milliseconds(1);
  // How long an OOM kill waits for its kernel-log summary (constraint, OOM memcg).
  absl::Duration oom_context_wait = absl::Milliseconds(250);
  // How long an OOM kill of a container the runtime does not know yet waits for its pod
  // identity (kills race container start and teardown). Later kills queue behind it, in order.
  absl::Duration oom_enrichment_wait = absl::Seconds(3);
  // Periodic memory_usage event per cgroup.
  absl::Duration usage_interval = absl::Seconds(10);
  // Sampling cadence bounds; the predictor chooses within them.
  absl::Duration min_sample_interval = absl::Milliseconds(100);
  absl::Duration max_sample_interval = absl::Seconds(5);
  bool emit_process_events = true;
  // When set, every tracked cgroup's samples are written as a predictor trace
  // (agent/predict/trace.h, JSON lines) to <trace_dir>/<cgroup id>.jsonl, labelled with the
  // kernel's OOM kill when one happens: the real-kernel corpus for tapio-eval.
  std::string trace_dir;
  // How often the processes of a limited cgroup are looked at for managed runtimes and their
  // heap caps (agent/core/runtime_scan.h): the first reading with a limit, then at this
  // interval. Zero: never.
  absl::Duration runtime_scan_interval = absl::Seconds(30);
  std::string proc_root = "/proc";
  // Sample the hierarchy root too (normally not: it has no limit to predict against).
  bool sample_root = false;
  uint32_t page_size = 4096;
  // The predictor's clock, monotonic ms; empty = CLOCK_MONOTONIC. Tests drive it.
  std::function<int64_t()> monotonic_ms;
};

// What ListContainers shows per cgroup: latest reading and prediction.
struct ContainerState {
  std::shared_ptr<const WorkloadIdentity> identity;
  MemoryUsage usage;
  MemoryPressure pressure;
  OomPrediction prediction;
  bool at_risk = false;
  uint64_t oom_kills = 0;
  int64_t last_sample_unix_ns = 0;
  uint32_t processes = 0;
};

struct PipelineCounters {
  std::array<uint64_t, TAPIO_REC_MAX> records_by_type{};
  uint64_t records_malformed = 0;  // bad size, version or type
  uint64_t oom_with_kmsg_context = 0;
  uint64_t oom_without_context = 0;    // waited, no summary line (ratelimited, or no /dev/kmsg)
  uint64_t oom_victim_unresolved = 0;  // no cgroup for the victim (old kernels pass only the pid)
  uint64_t samples = 0;
  uint64_t sample_errors = 0;
  uint64_t cgroups_vanished = 0;
  uint64_t cgroup_path_misses = 0;
  uint64_t trace_errors = 0;
  uint64_t restart_priors_applied = 0;  // runs given their workload's previous peak (RestartKey)
  uint64_t peer_priors_applied = 0;     // runs given a running replica's peak instead
  // Readings brought forward because the cgroup's RSS grew by jump_trigger_fraction of its limit
  // since the last one (the BPF RSS records between readings).
  uint64_t jump_triggered_samples = 0;
  // Debug events (RSS changes, process lifecycle) not built because no consumer asked for them
  // (EventBus::Wants): not a loss, nothing would have received them.
  uint64_t events_not_built = 0;
  RuntimeScanCounters runtime_scan;  // the runtime heap cap scans, summed over cgroups
  uint64_t processes = 0;
  uint64_t cgroups_tracked = 0;
};

class Pipeline {
 public:
  Pipeline(PipelineOptions options, CgroupLayout layout, EventBus* bus, IdentityResolver* resolver,
           const predict::ModelParams* params);

  // ---- ingest thread ----
  // One raw ring/perf buffer record. `boot_to_unix_ns` converts the record's CLOCK_BOOTTIME
  // stamp to wall time (unix = boot + offset).
  void HandleRecord(const void* data, size_t size, int64_t boot_to_unix_ns);
  // A batch of them, in order (MemoryTracker::PollBatches): the same as HandleRecord on each,
  // with the process-table slots of the records a few ahead and the ring lines of the next batch
  // (RecordBatch::next) fetched into the cache meanwhile.
  void HandleRecords(const bpf::RecordBatch& batch, int64_t boot_to_unix_ns);
  void BeginTaskSnapshot();
  void HandleTaskRss(const tapio_rss_record& record, int64_t boot_to_unix_ns);
  void EndTaskSnapshot();
  void HandleKmsgOom(const KmsgOomSummary& summary);
  // After each poll: publishes OOM kills whose context arrived or whose wait expired (all of them
  // when `all`), and folds the reclaim passes tallied since into their cgroups.
  void FlushPendingOoms(absl::Time now, bool all);

  // ---- sampler thread ----
  // Samples every tracked cgroup whose next sample is due; returns when the next one is due.
  absl::Time SampleDue(absl::Time now);
  // Called by SampleDue, with no lock held, for each tracked cgroup it found gone (its files
  // unreadable on 4 samples in a row) and has forgotten: the agent drops the container's metric
  // series then. Set before the sampler thread starts.
  void OnCgroupGone(std::function<void(uint64_t cgroup_id)> callback) {
    on_cgroup_gone_ = std::move(callback);
  }

  // ---- any thread ----
  std::vector<ContainerState> Containers() const;
  PipelineCounters counters() const;

  // ---- the restart priors, for a file that outlives the agent (any thread; prior_store.h) ----
  // The finished runs' peaks. `generation`, when given, is set to a number that changes whenever
  // they do, so that a writer can skip a set it has already written. With `with_running`, the
  // runs still going count as if they had finished now (the agent is stopping: on a reboot they
  // end with it), unless they are at risk: per workload, the higher peak at the latest limit.
  std::vector<StoredPrior> FinishedRunPriors(uint64_t* generation = nullptr,
                                             bool with_running = false) const;
  // A previous agent's priors; a run that finished since keeps its own. Returns how many were
  // taken (at most kRestartPriorsMax are kept). The generation does not change: the file
  // already holds them. A prior stored from a run still going is not applied to that same
  // cgroup if it is still there.
  size_t RestorePriors(const std::vector<StoredPrior>& priors);
  bool any_at_risk() const { return at_risk_count_.load() > 0; }
  const CgroupLayout& layout() const { return layout_; }

 private:
  struct PendingOom {
    absl::Time deadline;                             // for the OOM context (kernel log line)
    Event event;                                     // OomKill payload, identity resolved
    absl::Time enrich_until = absl::InfinitePast();  // waiting for the runtime to know it
    // From the memcg counters at record time: used when no kernel-log line or fentry context
    // arrives. kUnknown when the counters could not tell.
    OomConstraint counters_constraint = OomConstraint::kUnknown;
    std::string counters_oom_memcg;
  };
  struct TrackedCgroup {
    std::string path;
    std::unique_ptr<CgroupMemoryReader> reader;
    std::unique_ptr<predict::OomPredictor> predictor;
    absl::Time next_sample = absl::InfinitePast();
    absl::Time next_usage_event = absl::InfinitePast();
    uint64_t last_limit_hits = 0;
    uint64_t reclaim_total_ns = 0;  // cumulative, from BPF records
    uint64_t reclaim_count = 0;
    uint64_t reclaim_max_ns = 0;  // since the last pressure event
    uint64_t reclaim_count_reported = 0;
    uint64_t reclaim_ns_reported = 0;
    uint64_t open_failures = 0;
    int64_t rss_moved_bytes = 0;  // net RSS moves of its processes since the last reading
    std::unique_ptr<predict::TraceWriter> trace;
    int64_t oom_label_ms = -1;  // OOM kill time (monotonic ms) not yet written to the trace
    // This run, for the next run of the same workload (RestartKey) and for replicas started
    // beside it.
    predict::RunPeak run_peak;
    bool prior_applied = false;             // the previous run's (or a live peer's) peak was found
    uint64_t prior_lookup_limit_bytes = 0;  // the limit of the last lookup (0: none since keyed)
    bool prior_waits_for_peer = false;  // found none, but passed over a peer at risk: look again
                                        // when that workload's peer clears
    std::string restart_key;  // RestartKey of keyed_identity ("" = none, or not keyed yet)
    // The identity restart_key was taken from: a later one (the pod's sandbox or the kubelet's
    // ownerReferences learnt after the container) may name the workload, and is keyed again.
    std::shared_ptr<const WorkloadIdentity> keyed_identity;
    // Sampler thread only (like reader): written without the lock, read by ApplySample.
    std::unique_ptr<RuntimeCapScanner> runtime_scanner;
    absl::Time last_runtime_scan = absl::InfinitePast();
    RuntimeCapSummary runtime;  // of the last scan; one with processes unread goes on next reading
    // Under the lock: a process exec'd here (FoldTallies). Taken by the next reading at least
    // kExecRescanMin after the last scan, so that a shell loop's execs do not rescan every reading.
    bool exec_since_scan = false;
    ContainerState state;
  };

  struct CachedIdentity {
    std::shared_ptr<const WorkloadIdentity> identity;
    absl::Time expires;
  };
  std::shared_ptr<const WorkloadIdentity> IdentityFor(uint64_t cgroup_id);
  void BumpRecordCount(uint16_t type);
  static bool AwaitsEnrichment(const WorkloadIdentity& id);
  void Publish(Event event);
  // Whether any consumer takes such an event (EventBus::Wants); counts the ones not built.
  bool Wanted(EventKind kind, Severity severity);
  // HandleRecord's body, inlined into HandleRecords' loop; the cold parts (a malformed record, an
  // event to build) are functions of their own, out of the loop's way.
  void Dispatch(const void* data, size_t size, int64_t boot_to_unix_ns);
  void CountMalformed(const void* data, size_t size);
  void PublishRssChange(const tapio_rss_record& r, int64_t delta_bytes, int64_t boot_to_unix_ns);
  void PublishLifecycle(const tapio_proc_record& r, int64_t boot_to_unix_ns);
  void OnRssRecord(const tapio_rss_record& r, int64_t boot_to_unix_ns, bool from_snapshot);
  void OnOomRecord(const tapio_oom_record& r, int64_t boot_to_unix_ns);
  void OnProcRecord(const tapio_proc_record& r, int64_t boot_to_unix_ns);
  // A process gone (its exit record, or a snapshot that no longer sees it): off the jump tally.
  void TakeOffRss(const ProcessInfo& gone);
  void OnReclaimRecord(const tapio_reclaim_record& r, int64_t boot_to_unix_ns);
  void OnOomContextRecord(const tapio_oom_context_record& r);
  // Adds the reclaim and RSS tallies to the tracked cgroups (one lock) and asks for sooner
  // samples: at once for reclaim, and for a net RSS growth of jump_trigger_fraction of the limit.
  void FoldTallies();
  // FoldTallies, once kReclaimFoldNs of record time has passed since the last fold.
  void FoldTalliesEvery(uint64_t record_ts_ns);
  void ConstraintFromCounters(const std::string& victim_path, OomKill* kill) const;
  void TrackCgroup(uint64_t cgroup_id);
  // Sampler thread, without the cgroup table lock: opens/reads the cgroup's memory files.
  absl::StatusOr<CgroupMemoryStat> ReadCgroup(TrackedCgroup& cg);
  // Sampler thread, without the lock, after a good reading: the cgroup's runtimes and heap caps
  // when a scan is due (RuntimeCapScanner), into cg.runtime.
  // `after_exec`: a process exec'd in it since the last scan; scan now, and read again the
  // processes that were no runtime.
  void ScanRuntimes(TrackedCgroup& cg, const CgroupMemoryStat& stat, absl::Time now,
                    bool after_exec, RuntimeScanCounters* counters);
  // Sampler thread, under the lock: state, predictor, trace, events.
  void ApplySample(uint64_t cgroup_id, TrackedCgroup& cg, const CgroupMemoryStat& stat,
                   absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(cgroups_mu_);
  // A tracked cgroup is gone: its peak becomes the prior of the workload's next run.
  void RememberRun(const TrackedCgroup& cg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(cgroups_mu_);
  // A new run's prior at `limit_bytes`: the higher of its workload's last finished run's peak and
  // the peaks so far of its running replicas that are not at risk (a scale-up or rolling update
  // starts the new run beside them). Counted; false (nothing set) when neither exists at this
  // limit.
  bool ApplyPrior(uint64_t cgroup_id, TrackedCgroup& cg, uint64_t limit_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cgroups_mu_);

  const PipelineOptions options_;
  const CgroupLayout layout_;
  EventBus* const bus_;
  IdentityResolver* const resolver_;
  std::function<void(uint64_t)> on_cgroup_gone_;
  const predict::ModelParams* const params_;
  CgroupPathResolver paths_;
  const uint64_t host_memory_bytes_;  // MemTotal, for runtimes sized from the host's memory

  // Ingest-thread state.
  ProcessTable processes_;
  std::deque<PendingOom> pending_ooms_;
  absl::flat_hash_map<uint32_t, KmsgOomSummary> kmsg_by_pid_;  // recent summaries, bounded
  absl::flat_hash_map<uint64_t, CachedIdentity> identity_cache_;
  std::array<std::atomic<uint64_t>, TAPIO_REC_MAX> records_by_type_{};
  std::atomic<uint64_t> events_not_built_{0};
  // cgroup ids TrackCgroup has settled (tracked, or the root left alone): no lock for them.
  absl::flat_hash_set<uint64_t> known_cgroups_;
  // Reclaim passes per cgroup since the last FoldTallies: a reclaim storm sends hundreds of
  // thousands a second, and each taking the cgroup table lock and the clock would cost more than
  // the rest of ingest. Folded every kReclaimFoldNs of record time and after every poll.
  struct ReclaimTally {
    uint64_t count = 0;
    uint64_t total_ns = 0;
    uint64_t max_ns = 0;
  };
  absl::flat_hash_map<uint64_t, ReclaimTally> reclaim_tally_;
  // Net RSS moves per cgroup (snapshots and rss_stat records) since the last fold, for the jump
  // trigger (ModelParams::jump_trigger_fraction); folded with the reclaim tally.
  absl::flat_hash_map<uint64_t, int64_t> rss_tally_;
  // cgroups with an exec since the last fold: their runtimes are scanned again at the next reading.
  absl::flat_hash_set<uint64_t> exec_tally_;
  uint64_t reclaim_folded_at_ns_ = 0;  // record time (CLOCK_BOOTTIME) of the last fold

  mutable absl::Mutex cgroups_mu_;
  // Pointer-stable: the sampler reads files for an entry without the lock (see SampleDue).
  absl::node_hash_map<uint64_t, TrackedCgroup> cgroups_ ABSL_GUARDED_BY(cgroups_mu_);
  // RestartKey -> the last finished run's peak (bounded, see kRestartPriorsMax).
  absl::flat_hash_map<std::string, predict::RunPeak> restart_priors_ ABSL_GUARDED_BY(cgroups_mu_);
  uint64_t restart_priors_generation_ ABSL_GUARDED_BY(cgroups_mu_) = 0;
  // RestartKey -> the cgroup of the run a restored prior was taken from while it was still going
  // (StoredPrior::cgroup_id): that run's own peak is no prior for itself.
  absl::flat_hash_map<std::string, uint64_t> restored_from_running_ ABSL_GUARDED_BY(cgroups_mu_);

  mutable absl::Mutex counters_mu_;
  PipelineCounters counters_ ABSL_GUARDED_BY(counters_mu_);
  std::atomic<int> at_risk_count_{0};
};

// Which runs are "the same workload" for the restart and live-peer priors
// (predict::OomPredictor::SetPriorPeak): a pod's container across restarts, and the containers of
// one controller's pods (a Deployment's replicas, a CronJob's runs): namespace / controller (else
// pod) / container name. On a plain
// host, the cgroup path (a service restarted in place). "" (no prior) for a container without pod
// metadata, whose path names only this one run.
std::string RestartKey(const WorkloadIdentity& identity);

// CLOCK_REALTIME - CLOCK_BOOTTIME now, in ns: add to a BPF timestamp to get unix time.
int64_t BootToUnixOffsetNs();

}  // namespace tapio

#endif  // TAPIO_AGENT_PIPELINE_H_
