#include "agent/pipeline.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/bpf/record.h"
#include "agent/core/file_util.h"
#include "agent/core/log.h"
#include "agent/core/prefetch.h"

namespace tapio {
namespace {

// Identities cached on the ingest thread: how long, and how many cgroups at most.
constexpr absl::Duration kIdentityCacheTtl = absl::Seconds(1);
constexpr size_t kIdentityCacheMax = 65536;
// At most this many kernel-log OOM summaries are kept while they wait for their BPF record.
constexpr size_t kMaxKmsgSummaries = 256;
// Finished runs remembered for the restart prior (one entry per workload).
constexpr size_t kRestartPriorsMax = kMaxStoredPriors;
// Reclaim passes are folded into their cgroups at least this often (record time, ns).
constexpr uint64_t kReclaimFoldNs = 10'000'000;
// An exec in a cgroup brings its runtime scan forward, but not sooner than this after the last.
constexpr absl::Duration kExecRescanMin = absl::Seconds(5);

std::string CommOf(const char (&comm)[TAPIO_COMM_LEN]) { return std::string(bpf::CommView(comm)); }

int64_t ClockNs(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

MemoryUsage UsageFrom(const CgroupMemoryStat& s) {
  MemoryUsage u;
  u.usage_bytes = s.usage_bytes;
  u.working_set_bytes = s.working_set_bytes();
  u.anon_bytes = s.anon_bytes;
  u.file_bytes = s.file_bytes;
  u.shmem_bytes = s.shmem_bytes;
  u.kernel_unreclaimable_bytes = s.kernel_unreclaimable_bytes;
  u.non_reclaimable_bytes = s.non_reclaimable_bytes();
  u.swap_bytes = s.swap_bytes;
  u.limit_bytes = s.effective_limit_bytes;
  return u;
}

}  // namespace

std::string RestartKey(const WorkloadIdentity& identity) {
  if (!identity.pod_namespace.empty() && !identity.container_name.empty()) {
    const std::string owner =
        identity.workload_name.empty()
            ? absl::StrCat("pod/", identity.pod_name)
            : absl::StrCat(identity.workload_kind, "/", identity.workload_name);
    return absl::StrCat(identity.pod_namespace, "/", owner, "/", identity.container_name);
  }
  if (!identity.container_id.empty()) return "";
  return identity.cgroup_path;
}

int64_t BootToUnixOffsetNs() { return ClockNs(CLOCK_REALTIME) - ClockNs(CLOCK_BOOTTIME); }

std::shared_ptr<const WorkloadIdentity> PathIdentityResolver::Resolve(
    uint64_t cgroup_id, const std::string& cgroup_path) {
  absl::MutexLock lock(&mu_);
  auto& slot = cache_[cgroup_id];
  if (!slot || slot->cgroup_path != cgroup_path) {
    auto identity = std::make_shared<WorkloadIdentity>();
    identity->cgroup_id = cgroup_id;
    identity->cgroup_path = cgroup_path;
    slot = std::move(identity);
  }
  return slot;
}

void PathIdentityResolver::Forget(uint64_t cgroup_id) {
  absl::MutexLock lock(&mu_);
  cache_.erase(cgroup_id);
}

Pipeline::Pipeline(PipelineOptions options, CgroupLayout layout, EventBus* bus,
                   IdentityResolver* resolver, const predict::ModelParams* params)
    : options_(std::move(options)),
      layout_(std::move(layout)),
      bus_(bus),
      resolver_(resolver),
      params_(params),
      paths_(layout_.id_root()),
      host_memory_bytes_(RuntimeCapScanner::HostMemoryBytes(options_.proc_root)) {}

std::shared_ptr<const WorkloadIdentity> Pipeline::IdentityFor(uint64_t cgroup_id) {
  // Ingest-thread cache: most records hit it, with no lock. Entries are re-resolved after
  // kIdentityCacheTtl so enrichment by the resolver (container, pod) reaches later events.
  const absl::Time now = absl::Now();
  auto it = identity_cache_.find(cgroup_id);
  if (it != identity_cache_.end() && now < it->second.expires) return it->second.identity;
  std::optional<std::string> path = paths_.Lookup(cgroup_id);
  if (!path) {
    absl::MutexLock lock(&counters_mu_);
    ++counters_.cgroup_path_misses;
  }
  // An unknown id (a cgroup already removed) still gets an identity: the id, and no path.
  auto identity = resolver_->Resolve(cgroup_id, path.value_or(""));
  // A container the runtime has not told us about yet is asked again on its next event.
  if (!AwaitsEnrichment(*identity)) {
    if (identity_cache_.size() >= kIdentityCacheMax) identity_cache_.clear();
    identity_cache_[cgroup_id] = CachedIdentity{identity, now + kIdentityCacheTtl};
  }
  return identity;
}

bool Pipeline::AwaitsEnrichment(const WorkloadIdentity& id) {
  // The path names a container (its id parsed from the cgroup path) but no runtime data joined.
  return !id.container_id.empty() && id.container_name.empty();
}

void Pipeline::BumpRecordCount(uint16_t type) {
  // Single writer (the ingest thread): a relaxed load and store, no locked instruction.
  auto& c = records_by_type_[type < TAPIO_REC_MAX ? type : 0];
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void Pipeline::Publish(Event event) { bus_->Publish(std::move(event)); }

bool Pipeline::Wanted(EventKind kind, Severity severity) {
  if (bus_->Wants(kind, severity)) return true;
  // Single writer (the ingest thread), as BumpRecordCount.
  events_not_built_.store(events_not_built_.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
  return false;
}

void Pipeline::CountMalformed(const void* data, size_t size) {
  absl::MutexLock lock(&counters_mu_);
  if (counters_.records_malformed++ == 0) {
    TAPIO_LOG(kWarning, "malformed BPF record (counted, skipped): %s",
              bpf::RecordView::Decode(data, size).status().ToString());
  }
}

inline ABSL_ATTRIBUTE_ALWAYS_INLINE void Pipeline::Dispatch(const void* data, size_t size,
                                                            int64_t boot_to_unix_ns) {
  if (!bpf::IsWellFormed(data, size)) return CountMalformed(data, size);
  const bpf::RecordView view = bpf::RecordView::OfWellFormed(data);
  BumpRecordCount(view.type());
  switch (view.type()) {
    case TAPIO_REC_RSS_CHANGE:
    case TAPIO_REC_TASK_RSS:
      OnRssRecord(*view.rss(), boot_to_unix_ns, /*from_snapshot=*/false);
      break;
    case TAPIO_REC_OOM_KILL:
      OnOomRecord(*view.oom_kill(), boot_to_unix_ns);
      break;
    case TAPIO_REC_PROC_EXEC:
    case TAPIO_REC_PROC_FORK:
    case TAPIO_REC_PROC_EXIT:
      OnProcRecord(*view.proc(), boot_to_unix_ns);
      break;
    case TAPIO_REC_RECLAIM:
      OnReclaimRecord(*view.reclaim(), boot_to_unix_ns);
      break;
    case TAPIO_REC_OOM_CONTEXT:
      OnOomContextRecord(*view.oom_context());
      break;
    default:  // IsWellFormed knows no other type
      break;
  }
}

void Pipeline::HandleRecord(const void* data, size_t size, int64_t boot_to_unix_ns) {
  Dispatch(data, size, boot_to_unix_ns);
}

void Pipeline::HandleRecords(const bpf::RecordBatch& batch, int64_t boot_to_unix_ns) {
  // Two kinds of memory wait would otherwise add up per record (bench/bpf
  // BM_RingbufPipelineDrain): the process table, the one random access of nearly every record,
  // whose slot for record i + kAhead is requested while record i is handled; and the ring
  // itself, which the reader walks header by header after this returns: two of its next lines
  // are requested per record handled here, so they arrive while the work is done.
  constexpr size_t kAhead = 8;
  const bpf::RawRecord* records = batch.records;
  const size_t count = batch.count;
  auto prefetch = [&](size_t i) {
    if (records[i].size >= sizeof(tapio_header)) {
      processes_.Prefetch(static_cast<const tapio_header*>(records[i].data)->pid);
    }
  };
  for (size_t i = 0; i < std::min(count, kAhead); ++i) prefetch(i);
  for (size_t i = 0; i < count; ++i) {
    if (i + kAhead < count) prefetch(i + kAhead);
    if (128 * i < batch.next_bytes) {
      PrefetchForRead(batch.next + 128 * i);
      PrefetchForRead(batch.next + 128 * i + 64);
    }
    Dispatch(records[i].data, records[i].size, boot_to_unix_ns);
  }
}

void Pipeline::OnOomContextRecord(const tapio_oom_context_record& r) {
  // fentry/oom_kill_process context: joins the pending OOM of the same victim.
  for (PendingOom& p : pending_ooms_) {
    auto& kill = std::get<OomKill>(p.event.payload);
    if (kill.victim_pid != r.hdr.pid) continue;
    kill.constraint = r.constraint == 3   ? OomConstraint::kMemcg
                      : r.constraint == 1 ? OomConstraint::kCpuset
                      : r.constraint == 2 ? OomConstraint::kMempolicy
                                          : OomConstraint::kNone;
    kill.constraint_source = "fentry";
    if (r.oom_memcg_id != 0) kill.oom_memcg_path = paths_.Lookup(r.oom_memcg_id).value_or("");
    p.deadline = absl::InfinitePast();  // complete: publish at the next flush
  }
}

void Pipeline::OnRssRecord(const tapio_rss_record& r, int64_t boot_to_unix_ns, bool from_snapshot) {
  bool moved = false;
  ProcessInfo& info = processes_.Upsert(r.hdr.pid, r.hdr.cgroup_id, r.start_time_ns, &moved);
  if (moved) TrackCgroup(r.hdr.cgroup_id);
  const uint64_t page = options_.page_size;
  const uint64_t before = info.resident_pages * page;
  const uint64_t now = (r.rss.file_pages + r.rss.anon_pages + r.rss.shmem_pages) * page;
  const int64_t delta = static_cast<int64_t>(now) - static_cast<int64_t>(before);
  // Snapshots report only moves past the threshold (a first sighting counts from zero); kernel
  // RSS_CHANGE records already passed the in-kernel threshold.
  const uint64_t magnitude =
      delta < 0 ? static_cast<uint64_t>(-delta) : static_cast<uint64_t>(delta);
  if (from_snapshot && magnitude < options_.rss_report_threshold_bytes) return;
  info.resident_pages = r.rss.file_pages + r.rss.anon_pages + r.rss.shmem_pages;
  // The jump trigger: RSS moves from the task-iterator snapshots (every --snapshot_interval_ms)
  // and, when attached, the rss_stat hook; a new process counts from nothing, a process that
  // brought its memory from another cgroup does not count.
  if (!(moved && before != 0) && params_->jump_trigger_fraction > 0) {
    rss_tally_[r.hdr.cgroup_id] += delta;
    FoldTalliesEvery(r.hdr.ts_ns);
  }
  if (!Wanted(EventKind::kRssChange, Severity::kDebug)) return;
  PublishRssChange(r, delta, boot_to_unix_ns);
}

void Pipeline::PublishRssChange(const tapio_rss_record& r, int64_t delta_bytes,
                                int64_t boot_to_unix_ns) {
  const uint64_t page = options_.page_size;
  Event e;
  e.time_unix_ns = static_cast<int64_t>(r.hdr.ts_ns) + boot_to_unix_ns;
  e.severity = Severity::kDebug;
  e.identity = IdentityFor(r.hdr.cgroup_id);
  RssChange c;
  c.pid = r.hdr.pid;
  c.comm = CommOf(r.hdr.comm);
  c.anon_bytes = r.rss.anon_pages * page;
  c.file_bytes = r.rss.file_pages * page;
  c.shmem_bytes = r.rss.shmem_pages * page;
  c.swap_bytes = r.rss.swap_entries * page;
  c.delta_bytes = delta_bytes;
  e.payload = std::move(c);
  Publish(std::move(e));
}

void Pipeline::BeginTaskSnapshot() {
  processes_.BeginGeneration();
  known_cgroups_.clear();
}

void Pipeline::HandleTaskRss(const tapio_rss_record& record, int64_t boot_to_unix_ns) {
  BumpRecordCount(TAPIO_REC_TASK_RSS);
  OnRssRecord(record, boot_to_unix_ns, /*from_snapshot=*/true);
  if (ProcessInfo* info = processes_.Find(record.hdr.pid)) processes_.Touch(*info);
}

void Pipeline::EndTaskSnapshot() {
  processes_.SweepUnseen([this](const ProcessInfo& gone) { TakeOffRss(gone); });
  absl::MutexLock lock(&counters_mu_);
  counters_.processes = processes_.size();
}

void Pipeline::OnOomRecord(const tapio_oom_record& r, int64_t boot_to_unix_ns) {
  uint64_t cgroup_id = r.hdr.cgroup_id;
  if (cgroup_id == 0) {
    // Kernels whose mark_victim passes only the pid: resolve it through the process table.
    if (const ProcessInfo* info = processes_.Find(r.hdr.pid)) cgroup_id = info->cgroup_id;
  }
  if (cgroup_id == 0) {
    absl::MutexLock lock(&counters_mu_);
    ++counters_.oom_victim_unresolved;
  }
  const uint64_t page = uint64_t{1} << (r.page_shift ? r.page_shift : 12);
  Event e;
  e.time_unix_ns = static_cast<int64_t>(r.hdr.ts_ns) + boot_to_unix_ns;
  e.severity = Severity::kCritical;
  e.identity = IdentityFor(cgroup_id);
  OomKill k;
  k.victim_pid = r.hdr.pid;
  k.victim_comm = CommOf(r.hdr.comm);
  k.trigger_pid = r.trigger_pid;
  k.trigger_comm = CommOf(r.trigger_comm);
  k.trigger_cgroup_id = r.trigger_cgroup_id;
  k.anon_rss_bytes = r.rss.anon_pages * page;
  k.file_rss_bytes = r.rss.file_pages * page;
  k.shmem_rss_bytes = r.rss.shmem_pages * page;
  k.swap_bytes = r.rss.swap_entries * page;
  k.total_vm_bytes = r.total_vm_pages * page;
  k.pgtables_bytes = r.pgtables_bytes;
  k.oom_score_adj = r.oom_score_adj;
  // The kernel prints the summary line before it marks the victim, so it is usually here already.
  auto it = kmsg_by_pid_.find(r.hdr.pid);
  absl::Time deadline = absl::Now() + options_.oom_context_wait;
  if (it != kmsg_by_pid_.end()) {
    k.constraint = it->second.constraint;
    k.constraint_source = "kmsg";
    k.oom_memcg_path = it->second.oom_memcg;
    kmsg_by_pid_.erase(it);
    deadline = absl::InfinitePast();
  }
  // The counters fallback is read now, while the victim's memcg still exists: by the time the
  // kill is published its container (and cgroup) may have been removed.
  OomKill from_counters;
  if (k.constraint_source.empty()) ConstraintFromCounters(e.identity->cgroup_path, &from_counters);
  e.payload = std::move(k);
  const bool enrich = AwaitsEnrichment(*e.identity);
  pending_ooms_.push_back(
      PendingOom{deadline, std::move(e),
                 enrich ? absl::Now() + options_.oom_enrichment_wait : absl::InfinitePast(),
                 from_counters.constraint, from_counters.oom_memcg_path});
  // Read the cgroup at once: the kill changes its memory, and the OOM counter confirms it.
  absl::MutexLock lock(&cgroups_mu_);
  auto cg = cgroups_.find(cgroup_id);
  if (cg != cgroups_.end()) {
    cg->second.next_sample = absl::InfinitePast();
    // The kill on the samples' (monotonic) clock, for the trace label.
    const int64_t boot_to_mono_ns = ClockNs(CLOCK_MONOTONIC) - ClockNs(CLOCK_BOOTTIME);
    cg->second.oom_label_ms = (static_cast<int64_t>(r.hdr.ts_ns) + boot_to_mono_ns) / 1000000;
  }
}

void Pipeline::HandleKmsgOom(const KmsgOomSummary& summary) {
  for (PendingOom& p : pending_ooms_) {
    auto& kill = std::get<OomKill>(p.event.payload);
    if (kill.victim_pid != summary.pid || !kill.constraint_source.empty()) continue;
    kill.constraint = summary.constraint;
    kill.constraint_source = "kmsg";
    kill.oom_memcg_path = summary.oom_memcg;
    p.deadline = absl::InfinitePast();
    return;
  }
  if (kmsg_by_pid_.size() >= kMaxKmsgSummaries) kmsg_by_pid_.clear();  // stale: no record came
  kmsg_by_pid_[summary.pid] = summary;
}

void Pipeline::FlushPendingOoms(absl::Time now, bool all) {
  FoldTallies();
  while (!pending_ooms_.empty()) {
    // In order: a later kill never overtakes an earlier one.
    PendingOom& p = pending_ooms_.front();
    if (p.enrich_until > absl::InfinitePast()) {
      // Late enrichment: OOM kills race container start and teardown; give the runtime's view a
      // moment (the registry refreshes early on a miss) before publishing a path-only identity.
      p.event.identity =
          resolver_->Resolve(p.event.identity->cgroup_id, p.event.identity->cgroup_path);
      if (!AwaitsEnrichment(*p.event.identity)) {
        p.enrich_until = absl::InfinitePast();
      } else if (!all && now < p.enrich_until) {
        break;
      }
    }
    if (!all && p.deadline > now) break;
    auto& kill = std::get<OomKill>(p.event.payload);
    if (kill.constraint_source.empty()) {
      kill.constraint = p.counters_constraint;
      kill.constraint_source =
          p.counters_constraint == OomConstraint::kUnknown ? "" : "memcg_counters";
      kill.oom_memcg_path = p.counters_oom_memcg;
    }
    {
      absl::MutexLock lock(&counters_mu_);
      if (kill.constraint_source != "kmsg" && kill.constraint_source != "fentry") {
        ++counters_.oom_without_context;
      } else {
        ++counters_.oom_with_kmsg_context;
      }
    }
    Publish(std::move(p.event));
    pending_ooms_.pop_front();
  }
}

void Pipeline::ConstraintFromCounters(const std::string& victim_path, OomKill* kill) const {
  // Fallback when neither fentry nor the kernel log told the constraint (the log line is
  // ratelimited: DEFAULT_RATELIMIT_BURST reports per 5 s). A memcg OOM needs a limit in the
  // victim's chain, and the memcg that hit it has its usage watermark at that limit (v1
  // memory.max_usage_in_bytes / memsw, v2 memory.peak) or counted the failed charge (v2
  // memory.events.local "max"). So: the lowest limited ancestor with that evidence is the OOM
  // memcg; no limit anywhere means a global OOM. (v1 failcnt is not used: 6.x kernels leave it 0.)
  if (victim_path.empty() || layout_.MemoryDir("/").empty()) return;
  const bool v2 = layout_.memory_on_unified;
  auto read_u64 = [](const std::string& path, uint64_t* v) {
    auto text = ReadFileToString(path);
    return text.ok() && ParseU64(*text, v, /*allow_max=*/true);
  };
  bool any_limit = false;
  std::string p = victim_path;
  if (::access(layout_.MemoryDir(p).c_str(), F_OK) != 0) return;  // gone: unknown, not global
  while (!p.empty()) {
    const std::string dir = layout_.MemoryDir(p);
    uint64_t raw = 0;
    if (read_u64(dir + (v2 ? "/memory.max" : "/memory.limit_in_bytes"), &raw) &&
        NormalizeLimit(raw) != 0) {
      const uint64_t limit = NormalizeLimit(raw);
      any_limit = true;
      // Within 1% (at least 256 KiB) of the limit: the charge that failed was at most that short.
      const uint64_t slack = std::max<uint64_t>(limit / 100, 256 << 10);
      bool hit = false;
      static constexpr const char* kPeakFilesV1[] = {"/memory.max_usage_in_bytes",
                                                     "/memory.memsw.max_usage_in_bytes"};
      static constexpr const char* kPeakFilesV2[] = {"/memory.peak", nullptr};
      for (const char* file : v2 ? kPeakFilesV2 : kPeakFilesV1) {
        uint64_t peak = 0;
        if (file != nullptr && read_u64(dir + file, &peak) && peak + slack >= limit) hit = true;
      }
      if (v2 && !hit) {
        CgroupMemoryStat local;
        auto events = ReadFileToString(dir + "/memory.events.local");
        if (events.ok()) ParseMemoryEventsV2(*events, &local);
        hit = local.limit_hits > 0;
      }
      if (hit) {
        kill->constraint = OomConstraint::kMemcg;
        kill->constraint_source = "memcg_counters";
        kill->oom_memcg_path = p;
        return;
      }
    }
    if (p == "/") break;
    const size_t slash = p.rfind('/');
    p = slash == 0 ? "/" : p.substr(0, slash);
  }
  TAPIO_LOG(kDebug, "oom of %s: no limited memcg at its limit (any limit: %d)", victim_path,
            any_limit);
  if (!any_limit) {
    kill->constraint = OomConstraint::kNone;
    kill->constraint_source = "memcg_counters";
  }
}

void Pipeline::TakeOffRss(const ProcessInfo& gone) {
  // Its memory is freed: not growth a later process's RSS adds to.
  if (gone.resident_pages != 0 && params_->jump_trigger_fraction > 0) {
    rss_tally_[gone.cgroup_id] -= static_cast<int64_t>(gone.resident_pages * options_.page_size);
  }
}

void Pipeline::OnProcRecord(const tapio_proc_record& r, int64_t boot_to_unix_ns) {
  if (r.hdr.type == TAPIO_REC_PROC_EXIT) {
    if (const ProcessInfo* info = processes_.Find(r.hdr.pid)) TakeOffRss(*info);
    processes_.Remove(r.hdr.pid);
  } else {
    // A new process, or one its runtime moved into a container's cgroup before exec.
    bool moved = false;
    processes_.Upsert(r.hdr.pid, r.hdr.cgroup_id, r.start_time_ns, &moved);
    if (moved) TrackCgroup(r.hdr.cgroup_id);
    if (r.hdr.type == TAPIO_REC_PROC_EXEC) exec_tally_.insert(r.hdr.cgroup_id);
  }
  if (!options_.emit_process_events) return;
  if (!Wanted(EventKind::kProcessLifecycle, Severity::kDebug)) return;
  PublishLifecycle(r, boot_to_unix_ns);
}

void Pipeline::PublishLifecycle(const tapio_proc_record& r, int64_t boot_to_unix_ns) {
  ProcessLifecycle l;
  l.phase = r.hdr.type == TAPIO_REC_PROC_EXEC   ? ProcessLifecycle::Phase::kExec
            : r.hdr.type == TAPIO_REC_PROC_FORK ? ProcessLifecycle::Phase::kFork
                                                : ProcessLifecycle::Phase::kExit;
  l.pid = r.hdr.pid;
  l.ppid = r.ppid;
  l.comm = CommOf(r.hdr.comm);
  if (l.phase == ProcessLifecycle::Phase::kExit) l.exit_code = r.exit_code;
  Event e;
  e.time_unix_ns = static_cast<int64_t>(r.hdr.ts_ns) + boot_to_unix_ns;
  e.severity = Severity::kDebug;
  e.identity = IdentityFor(r.hdr.cgroup_id);
  e.payload = std::move(l);
  Publish(std::move(e));
}

void Pipeline::OnReclaimRecord(const tapio_reclaim_record& r, int64_t boot_to_unix_ns) {
  ReclaimTally& t = reclaim_tally_[r.hdr.cgroup_id];
  ++t.count;
  t.total_ns += r.duration_ns;
  t.max_ns = std::max<uint64_t>(t.max_ns, r.duration_ns);
  FoldTalliesEvery(r.hdr.ts_ns);
  if (absl::Nanoseconds(r.duration_ns) < options_.reclaim_event_min) return;
  Event e;
  e.time_unix_ns = static_cast<int64_t>(r.hdr.ts_ns) + boot_to_unix_ns;
  e.severity = Severity::kWarning;
  e.identity = IdentityFor(r.hdr.cgroup_id);
  MemoryPressure p;
  p.reclaim_stalls = 1;
  p.reclaim_stall_ns = r.duration_ns;
  p.max_reclaim_stall_ns = r.duration_ns;
  e.payload = p;
  Publish(std::move(e));
}

void Pipeline::FoldTalliesEvery(uint64_t record_ts_ns) {
  if (record_ts_ns - reclaim_folded_at_ns_ < kReclaimFoldNs) return;
  reclaim_folded_at_ns_ = record_ts_ns;
  FoldTallies();
}

void Pipeline::FoldTallies() {
  if (reclaim_tally_.empty() && rss_tally_.empty() && exec_tally_.empty()) return;
  // Distress, or a jump: sample sooner.
  const absl::Time now = absl::Now();
  const absl::Time soon = now + options_.min_sample_interval;
  uint64_t triggered = 0;
  absl::MutexLock lock(&cgroups_mu_);
  for (const auto& [cgroup_id, t] : reclaim_tally_) {
    auto it = cgroups_.find(cgroup_id);
    if (it == cgroups_.end()) continue;  // not tracked (the root, or gone): nothing to sample
    TrackedCgroup& cg = it->second;
    cg.reclaim_total_ns += t.total_ns;
    cg.reclaim_count += t.count;
    cg.reclaim_max_ns = std::max(cg.reclaim_max_ns, t.max_ns);
    cg.next_sample = std::min(cg.next_sample, soon);
  }
  reclaim_tally_.clear();
  for (const auto& [cgroup_id, moved] : rss_tally_) {
    auto it = cgroups_.find(cgroup_id);
    if (it == cgroups_.end()) continue;
    TrackedCgroup& cg = it->second;
    cg.rss_moved_bytes += moved;
    const uint64_t limit = cg.state.usage.limit_bytes;  // of the last reading (0: none, unlimited)
    if (limit == 0 || cg.rss_moved_bytes <= 0 ||
        static_cast<double>(cg.rss_moved_bytes) <
            params_->jump_trigger_fraction * static_cast<double>(limit)) {
      continue;
    }
    // Read at once, but not more often than min_sample_interval after the last reading.
    const absl::Time at = std::max(
        now, absl::FromUnixNanos(cg.state.last_sample_unix_ns) + options_.min_sample_interval);
    if (at < cg.next_sample) {
      cg.next_sample = at;
      ++triggered;
    }
  }
  rss_tally_.clear();
  for (uint64_t cgroup_id : exec_tally_) {
    auto it = cgroups_.find(cgroup_id);
    if (it != cgroups_.end()) it->second.exec_since_scan = true;
  }
  exec_tally_.clear();
  if (triggered != 0) {
    absl::MutexLock counters_lock(&counters_mu_);
    counters_.jump_triggered_samples += triggered;
  }
}

void Pipeline::TrackCgroup(uint64_t cgroup_id) {
  if (cgroup_id == 0) return;
  // Most new processes start in a cgroup already seen: answered here, without the table lock.
  // Cleared at each task snapshot, so a cgroup the sampler forgot is looked at again.
  if (known_cgroups_.contains(cgroup_id)) return;
  {
    absl::MutexLock lock(&cgroups_mu_);
    if (cgroups_.contains(cgroup_id)) {
      known_cgroups_.insert(cgroup_id);
      return;
    }
  }
  std::optional<std::string> path = paths_.Lookup(cgroup_id);
  if (!path) return;  // gone already
  known_cgroups_.insert(cgroup_id);
  if (*path == "/" && !options_.sample_root) return;
  absl::MutexLock lock(&cgroups_mu_);
  TrackedCgroup& cg = cgroups_[cgroup_id];
  cg.path = *path;
  cg.predictor = std::make_unique<predict::OomPredictor>(params_);
  cg.state.identity = resolver_->Resolve(cgroup_id, *path);
  if (!options_.trace_dir.empty()) {
    predict::TraceHeader header;
    header.workload_class = "kernel_unlabelled";
    header.source = "kernel";
    header.name = *path;
    auto writer = predict::TraceWriter::Create(
        absl::StrCat(options_.trace_dir, "/", cgroup_id, ".jsonl"), header);
    if (writer.ok()) {
      cg.trace = std::move(*writer);
    } else {
      absl::MutexLock counters_lock(&counters_mu_);
      if (counters_.trace_errors++ == 0) {
        TAPIO_LOG(kWarning, "trace recording: %s", writer.status().ToString());
      }
    }
  }
}

absl::Time Pipeline::SampleDue(absl::Time now) {
  // Three phases, so the cgroup table lock (which the ingest thread takes for OOM and reclaim
  // records) is never held across file I/O: pick what is due, read the files without the lock,
  // then fold the readings in. Entries are pointer-stable (node_hash_map) and only this thread
  // erases them or touches their readers.
  struct Due {
    uint64_t id;
    TrackedCgroup* cg;
    bool after_exec = false;
    absl::StatusOr<CgroupMemoryStat> stat = absl::UnknownError("not read");
  };
  std::vector<Due> due;
  {
    absl::MutexLock lock(&cgroups_mu_);
    for (auto& [id, cg] : cgroups_) {
      if (cg.next_sample > now) continue;
      cg.next_sample = now + options_.max_sample_interval;  // until the reading says otherwise
      const bool after_exec = cg.exec_since_scan && now >= cg.last_runtime_scan + kExecRescanMin;
      if (after_exec) cg.exec_since_scan = false;
      due.push_back(Due{id, &cg, after_exec});
    }
  }
  RuntimeScanCounters scan_counters;
  for (Due& d : due) {
    d.stat = ReadCgroup(*d.cg);
    if (d.stat.ok()) ScanRuntimes(*d.cg, *d.stat, now, d.after_exec, &scan_counters);
  }
  absl::Time next = now + options_.max_sample_interval;
  std::vector<uint64_t> gone;
  {
    absl::MutexLock lock(&cgroups_mu_);
    for (Due& d : due) {
      if (d.stat.ok()) {
        ApplySample(d.id, *d.cg, *d.stat, now);
      } else {
        ++d.cg->open_failures;
        absl::MutexLock counters_lock(&counters_mu_);
        ++(absl::IsNotFound(d.stat.status()) ? counters_.cgroups_vanished
                                             : counters_.sample_errors);
      }
    }
    for (auto& [id, cg] : cgroups_) {
      if (cg.reader == nullptr && cg.open_failures > 3) gone.push_back(id);
      next = std::min(next, cg.next_sample);
    }
    for (uint64_t id : gone) {
      if (cgroups_[id].state.at_risk) at_risk_count_.fetch_sub(1);
      RememberRun(cgroups_[id]);
      cgroups_.erase(id);
      resolver_->Forget(id);
    }
    absl::MutexLock counters_lock(&counters_mu_);
    counters_.cgroups_tracked = cgroups_.size();
    counters_.runtime_scan.Add(scan_counters);
  }
  if (on_cgroup_gone_) {
    for (uint64_t id : gone) on_cgroup_gone_(id);
  }
  return next;
}

void Pipeline::RememberRun(const TrackedCgroup& cg) {
  // Set at the first sample with a settled identity; a run that never had one has no key either.
  const std::string& key = cg.restart_key;
  if (key.empty()) return;
  ++restart_priors_generation_;
  restored_from_running_.erase(key);
  if (!cg.run_peak.usable()) {
    restart_priors_.erase(key);  // a run that was killed (or unlimited) bounds nothing
    return;
  }
  if (restart_priors_.size() >= kRestartPriorsMax && !restart_priors_.contains(key)) {
    restart_priors_.erase(restart_priors_.begin());
  }
  restart_priors_[key] = cg.run_peak;
}

std::vector<StoredPrior> Pipeline::FinishedRunPriors(uint64_t* generation,
                                                     bool with_running) const {
  absl::MutexLock lock(&cgroups_mu_);
  if (generation != nullptr) *generation = restart_priors_generation_;
  struct Entry {
    predict::RunPeak run;
    uint64_t cgroup_id = 0;  // a run still going
  };
  absl::flat_hash_map<std::string, Entry> runs;
  for (const auto& [key, run] : restart_priors_) {
    auto own = restored_from_running_.find(key);
    runs.try_emplace(key, Entry{run, own == restored_from_running_.end() ? 0 : own->second});
  }
  if (with_running) {
    for (const auto& [id, cg] : cgroups_) {
      if (cg.restart_key.empty() || cg.state.at_risk || !cg.run_peak.usable()) continue;
      auto [it, inserted] = runs.try_emplace(cg.restart_key, Entry{cg.run_peak, id});
      if (inserted) continue;
      // The limit it runs with now, or the higher peak at the same limit.
      if (it->second.run.limit_bytes != cg.run_peak.limit_bytes ||
          cg.run_peak.peak_bytes > it->second.run.peak_bytes) {
        it->second = Entry{cg.run_peak, id};
      }
    }
  }
  std::vector<StoredPrior> out;
  out.reserve(std::min(runs.size(), kRestartPriorsMax));
  for (const auto& [key, entry] : runs) {
    if (out.size() >= kRestartPriorsMax) break;
    out.push_back(StoredPrior{key, entry.run, entry.cgroup_id});
  }
  return out;
}

size_t Pipeline::RestorePriors(const std::vector<StoredPrior>& priors) {
  absl::MutexLock lock(&cgroups_mu_);
  size_t taken = 0;
  for (const StoredPrior& p : priors) {
    if (p.key.empty() || !p.run.usable()) continue;
    if (restart_priors_.size() >= kRestartPriorsMax) break;
    if (!restart_priors_.try_emplace(p.key, p.run).second) continue;
    if (p.cgroup_id != 0) restored_from_running_[p.key] = p.cgroup_id;
    ++taken;
  }
  return taken;
}

bool Pipeline::ApplyPrior(uint64_t cgroup_id, TrackedCgroup& cg, uint64_t limit_bytes) {
  const predict::RunPeak* prior = nullptr;
  auto finished = restart_priors_.find(cg.restart_key);
  auto own = restored_from_running_.find(cg.restart_key);
  const bool own_run = own != restored_from_running_.end() && own->second == cgroup_id;
  if (finished != restart_priors_.end() && finished->second.limit_bytes == limit_bytes &&
      !own_run) {
    prior = &finished->second;
  }
  bool from_peer = false;
  int passed_over = 0;  // peers of this workload that were no prior: at risk, killed, other limit
  bool peer_at_risk = false;
  // One pass over the tracked cgroups per new run; a peer is one whose identity has settled.
  for (const auto& [id, peer] : cgroups_) {
    if (&peer == &cg || peer.restart_key != cg.restart_key) continue;
    if (peer.state.at_risk || !peer.run_peak.usable() || peer.run_peak.limit_bytes != limit_bytes) {
      peer_at_risk = peer_at_risk || peer.state.at_risk;
      ++passed_over;
      continue;
    }
    if (prior == nullptr || peer.run_peak.peak_bytes > prior->peak_bytes) {
      prior = &peer.run_peak;
      from_peer = true;
    }
  }
  TAPIO_LOG(kDebug, "prior for cgroup %d (%s, limit %d): %s, %d peer(s) passed over", cgroup_id,
            cg.restart_key, limit_bytes,
            prior == nullptr
                ? std::string("none")
                : absl::StrCat(from_peer ? "peer" : "restart", " peak ", prior->peak_bytes),
            passed_over);
  cg.prior_waits_for_peer = prior == nullptr && peer_at_risk;
  if (prior == nullptr) return false;
  cg.predictor->SetPriorPeak(prior->peak_bytes, prior->limit_bytes);
  absl::MutexLock counters_lock(&counters_mu_);
  ++(from_peer ? counters_.peer_priors_applied : counters_.restart_priors_applied);
  return true;
}

absl::StatusOr<CgroupMemoryStat> Pipeline::ReadCgroup(TrackedCgroup& cg) {
  if (cg.reader == nullptr) {
    auto reader = CgroupMemoryReader::Open(layout_, cg.path);
    if (!reader.ok()) return reader.status();
    cg.reader = std::move(*reader);
  }
  auto stat = cg.reader->Read();
  if (!stat.ok()) cg.reader.reset();  // reopen next time; counted by the caller
  return stat;
}

void Pipeline::ScanRuntimes(TrackedCgroup& cg, const CgroupMemoryStat& stat, absl::Time now,
                            bool after_exec, RuntimeScanCounters* counters) {
  // An unlimited cgroup has no limit for a heap cap to be measured against (and a host's
  // unlimited slices hold most of its processes).
  if (options_.runtime_scan_interval <= absl::ZeroDuration() || stat.effective_limit_bytes == 0 ||
      (now < cg.last_runtime_scan + options_.runtime_scan_interval && cg.runtime.unread == 0 &&
       !after_exec)) {
    return;
  }
  cg.last_runtime_scan = now;
  if (cg.runtime_scanner == nullptr) {
    cg.runtime_scanner = std::make_unique<RuntimeCapScanner>(options_.proc_root);
  }
  RuntimeMemory memory;
  memory.limit_bytes = stat.effective_limit_bytes;
  memory.host_bytes = host_memory_bytes_;
  auto summary = cg.runtime_scanner->Scan(layout_.MemoryDir(cg.path), memory, after_exec, counters);
  // Gone since the reading: the next reading says so. The last summary stands meanwhile.
  // Processes left unread (the per-scan bound) make the next reading scan again, not the one in
  // 30 s, so that a cgroup of many processes is read in about a second per 64.
  if (summary.ok()) cg.runtime = *summary;
}

void Pipeline::ApplySample(uint64_t cgroup_id, TrackedCgroup& cg, const CgroupMemoryStat& stat,
                           absl::Time now) {
  {
    absl::MutexLock lock(&counters_mu_);
    ++counters_.samples;
  }
  cg.open_failures = 0;
  cg.rss_moved_bytes = 0;
  const int64_t now_unix_ns = absl::ToUnixNanos(now);
  const auto identity = resolver_->Resolve(cgroup_id, cg.path);
  cg.state.identity = identity;
  cg.state.usage = UsageFrom(stat);
  cg.state.usage.runtime = std::string(RuntimeKindName(cg.runtime.kind));
  // A cap of some heaps but not all (or of the processes read so far) is no ceiling: unknown.
  const uint64_t heap_cap_bytes = cg.runtime.complete() ? cg.runtime.cap_bytes : 0;
  cg.state.usage.runtime_heap_cap_bytes = heap_cap_bytes;
  cg.state.oom_kills = stat.oom_kills;
  cg.state.last_sample_unix_ns = now_unix_ns;

  predict::MemorySample sample;
  // The predictor wants monotonic time: a wall-clock step must not look like a gap or go back.
  sample.time_ms =
      options_.monotonic_ms ? options_.monotonic_ms() : ClockNs(CLOCK_MONOTONIC) / 1000000;
  sample.usage_bytes = stat.usage_bytes;
  sample.limit_bytes = stat.effective_limit_bytes;
  sample.anon_bytes = stat.anon_bytes;
  sample.file_bytes = stat.file_bytes;
  sample.active_file_bytes = stat.active_file_bytes;
  sample.inactive_file_bytes = stat.inactive_file_bytes;
  sample.shmem_bytes = stat.shmem_bytes;
  sample.kernel_unreclaimable_bytes = stat.kernel_unreclaimable_bytes;
  sample.swap_bytes = stat.swap_bytes;
  sample.limit_hits = stat.limit_hits;
  sample.oom_kills = stat.oom_kills;
  sample.psi_some_avg10 = stat.psi_some_avg10;
  sample.psi_full_avg10 = stat.psi_full_avg10;
  sample.reclaim_stall_ns = cg.reclaim_total_ns;
  sample.runtime_heap_cap_bytes = heap_cap_bytes;
  // The restart prior, once the identity says which workload this is (a container the runtime
  // does not know yet is looked up at a later sample). An identity that changes later may name
  // the workload only then (the container was listed before its pod's sandbox; the kubelet's
  // owner arrived after the runtime's answer): the run is keyed again, and if it has no prior
  // yet, looked up again.
  if (identity != nullptr && identity != cg.keyed_identity && !AwaitsEnrichment(*identity)) {
    cg.keyed_identity = identity;
    if (std::string key = RestartKey(*identity); key != cg.restart_key) {
      cg.restart_key = std::move(key);
      if (!cg.prior_applied) cg.prior_lookup_limit_bytes = 0;
    }
  }
  // A prior is for one limit, so the lookup also waits for the run's limit: runc makes the cgroup
  // before it writes memory.max, and a reading in between sees none. A limit changed later (an
  // in-place resize) makes the predictor drop the prior it has: look again under the new one,
  // unless the run is at risk (a resize to save it): a prior must not be what clears an alarm. A
  // key of "" (a plain host's cgroup with no path) has nothing to look up.
  if (!cg.restart_key.empty() && sample.limit_bytes != 0 &&
      sample.limit_bytes != cg.prior_lookup_limit_bytes) {
    cg.prior_lookup_limit_bytes = sample.limit_bytes;
    cg.prior_applied = !cg.state.at_risk && ApplyPrior(cgroup_id, cg, sample.limit_bytes);
  }
  const predict::Prediction p = cg.predictor->Update(sample);
  cg.run_peak.Add(sample);
  if (cg.trace != nullptr) {
    absl::Status ts = cg.trace->Append(sample);
    if (ts.ok() && cg.oom_label_ms >= 0) {
      ts = cg.trace->AppendOomLabel(cg.oom_label_ms);
      cg.oom_label_ms = -1;
    }
    if (!ts.ok()) {
      cg.trace.reset();  // stop recording this cgroup, keep running
      absl::MutexLock lock(&counters_mu_);
      if (counters_.trace_errors++ == 0) TAPIO_LOG(kWarning, "trace recording: %s", ts.ToString());
    }
  }
  const int64_t delay_ms = cg.predictor->SuggestedNextSampleDelayMs();
  absl::Duration delay = std::clamp(absl::Milliseconds(delay_ms), options_.min_sample_interval,
                                    options_.max_sample_interval);
  cg.next_sample = now + delay;

  if (p.changed && (p.state == predict::Prediction::State::kAtRisk ||
                    p.state == predict::Prediction::State::kCleared)) {
    const bool at_risk = p.state == predict::Prediction::State::kAtRisk;
    if (at_risk != cg.state.at_risk) at_risk_count_.fetch_add(at_risk ? 1 : -1);
    cg.state.at_risk = at_risk;
    if (!at_risk && !cg.restart_key.empty()) {
      // A peer again: replicas that started while it was at risk look at their next reading (not
      // one at risk itself: a prior must not be what clears an alarm).
      for (auto& [id, other] : cgroups_) {
        if (other.prior_waits_for_peer && !other.state.at_risk &&
            other.restart_key == cg.restart_key) {
          other.prior_waits_for_peer = false;
          other.prior_lookup_limit_bytes = 0;
        }
      }
    }
    OomPrediction out;
    out.state = at_risk ? OomPrediction::State::kAtRisk : OomPrediction::State::kCleared;
    out.time_to_oom_ms = p.time_to_oom_ms;
    out.confidence = p.confidence;
    out.model = std::string(p.model);
    out.reason = predict::DescribePrediction(p, sample.limit_bytes);
    out.usage_bytes = stat.usage_bytes;
    out.non_reclaimable_bytes = p.non_reclaimable_bytes;
    out.limit_bytes = stat.effective_limit_bytes;
    out.growth_bytes_per_second = p.growth_bytes_per_second;
    cg.state.prediction = out;
    Event e;
    e.time_unix_ns = now_unix_ns;
    e.severity = at_risk ? (p.time_to_oom_ms >= 0 && p.time_to_oom_ms < 30000 ? Severity::kCritical
                                                                              : Severity::kWarning)
                         : Severity::kInfo;
    e.identity = identity;
    e.payload = std::move(out);
    Publish(std::move(e));
  } else if (cg.state.at_risk && p.state == predict::Prediction::State::kAtRisk) {
    // Keep the snapshot's estimate fresh without an event per sample.
    cg.state.prediction.time_to_oom_ms = p.time_to_oom_ms;
    cg.state.prediction.confidence = p.confidence;
  }

  if (now >= cg.next_usage_event) {
    cg.next_usage_event = now + options_.usage_interval;
    Event e;
    e.time_unix_ns = now_unix_ns;
    e.severity = Severity::kInfo;
    e.identity = identity;
    e.payload = cg.state.usage;
    Publish(std::move(e));
    // Pressure summary for the interval: limit hits, reclaim passes, PSI.
    MemoryPressure mp;
    mp.limit_hits = stat.limit_hits - std::min(stat.limit_hits, cg.last_limit_hits);
    mp.reclaim_stalls = cg.reclaim_count - cg.reclaim_count_reported;
    mp.reclaim_stall_ns = cg.reclaim_total_ns - cg.reclaim_ns_reported;
    mp.max_reclaim_stall_ns = cg.reclaim_max_ns;
    mp.psi_some_avg10 = stat.psi_some_avg10;
    mp.psi_full_avg10 = stat.psi_full_avg10;
    const bool first = cg.last_limit_hits == 0 && cg.reclaim_count_reported == 0;
    cg.last_limit_hits = stat.limit_hits;
    cg.reclaim_count_reported = cg.reclaim_count;
    cg.reclaim_ns_reported = cg.reclaim_total_ns;
    cg.reclaim_max_ns = 0;
    cg.state.pressure = mp;
    const bool distress = mp.limit_hits > 0 || mp.reclaim_stalls > 0 || mp.psi_some_avg10 > 0;
    if (distress && !(first && mp.reclaim_stalls == 0)) {
      Event pe;
      pe.time_unix_ns = now_unix_ns;
      pe.severity = Severity::kWarning;
      pe.identity = identity;
      pe.payload = mp;
      Publish(std::move(pe));
    }
  }
}

std::vector<ContainerState> Pipeline::Containers() const {
  std::vector<ContainerState> out;
  absl::MutexLock lock(&cgroups_mu_);
  out.reserve(cgroups_.size());
  for (const auto& [id, cg] : cgroups_) {
    if (cg.state.identity == nullptr) continue;
    out.push_back(cg.state);
  }
  return out;
}

PipelineCounters Pipeline::counters() const {
  PipelineCounters c;
  {
    absl::MutexLock lock(&counters_mu_);
    c = counters_;
  }
  for (size_t i = 0; i < c.records_by_type.size(); ++i) {
    c.records_by_type[i] = records_by_type_[i].load(std::memory_order_relaxed);
  }
  c.events_not_built = events_not_built_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace tapio
