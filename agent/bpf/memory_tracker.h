// The eBPF memory tracker: loads bpf/tapio.bpf.c (CO-RE skeleton), picks attach points by feature
// probing, and hands raw records to the caller (decode them with agent/bpf/record.h).
//
// What gets attached (docs/kernel.md has the full table and the fallbacks):
//   always     iter/task, sched_process_{exec,fork,exit} (tp_btf), mark_victim (tp_btf, or the
//              classic tracepoint when tp_btf's argument is not a task_struct: then OOM_KILL
//              records carry cgroup_id 0 and the caller resolves the victim pid itself)
//   if present memcg reclaim begin/end (classic tracepoints)
//   if asked   tp_btf/rss_stat (TrackerOptions::rss_stat_hook: costs every page fault)
//   if allowed fentry/oom_kill_process (probed; EPERM on this VM: logged and listed as skipped)
//
// Threading: a MemoryTracker has one owner thread (the ingest thread) that calls Poll and
// SnapshotTasks. ReadLoss, Programs, ReadReclaimTotals and SetRssTracked only touch map fds and
// state fixed at Create time, and may be called from any thread concurrently with Poll.
#ifndef TAPIO_AGENT_BPF_MEMORY_TRACKER_H_
#define TAPIO_AGENT_BPF_MEMORY_TRACKER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/bpf/record.h"
#include "agent/bpf/ring_reader.h"
#include "bpf/tapio_abi.h"

struct tapio_bpf;  // bpftool skeleton (gen/bpf/tapio.skel.h)
struct bpf_link;
struct perf_buffer;

namespace tapio::bpf {

struct TrackerOptions {
  size_t ringbuf_bytes = 8 << 20;      // power of two, >= page size; perf buffer: split per CPU
  bool force_perfbuf = false;          // use the perf buffer even where a ring buffer exists
  bool rss_stat_hook = false;          // attach tp_btf/rss_stat (costs every page fault)
  bool rss_track_all = false;          // with the hook: every cgroup, not only tracked ones
  uint32_t rss_threshold_pages = 256;  // 1 MiB on 4 KiB pages
  uint64_t min_reclaim_ns = 0;         // emit every reclaim pass by default
  bool use_v1_memcg_id = false;        // pure v1 hosts (the caller decides from the host)
  bool try_fentry = true;              // probe fentry/oom_kill_process; skipped if refused
  // Use the classic tp/oom/mark_victim even where tp_btf works (tests the fallback path; its
  // OOM_KILL records carry cgroup_id 0).
  bool force_classic_mark_victim = false;
};

// One program of the object. run_count/run_time_ns are the kernel's BPF stats: non-zero only
// while kernel.bpf_stats_enabled is 1 (see EnableBpfStats).
struct ProgramStatus {
  std::string name;          // BPF program name, e.g. "tapio_mark_victim"
  std::string attach_point;  // section, e.g. "tp_btf/mark_victim"
  bool attached = false;
  std::string skip_reason;  // why not attached ("" when attached)
  uint64_t run_count = 0;
  uint64_t run_time_ns = 0;
};

// Records the kernel could not deliver, summed over CPUs since load.
struct LossCounters {
  uint64_t ringbuf_reserve = 0;       // ring buffer full
  uint64_t perfbuf_output = 0;        // perf buffer output failed
  uint64_t reclaim_table = 0;         // reclaim begin/totals could not be recorded (map full)
  uint64_t perfbuf_lost_samples = 0;  // lost samples libbpf reported on the perf buffer
};

class MemoryTracker {
 public:
  static absl::StatusOr<std::unique_ptr<MemoryTracker>> Create(const TrackerOptions& options);
  ~MemoryTracker();
  MemoryTracker(const MemoryTracker&) = delete;
  MemoryTracker& operator=(const MemoryTracker&) = delete;

  // Waits up to timeout_ms (0: no wait) for records, then hands them over in batches of up to
  // RingReader::kMaxBatch, in order (RingReader). Zero copy on the ring buffer; perf samples are
  // copied to aligned storage first and come one per batch. Records are valid only during the
  // call. Returns the number of records handled (EINTR: 0).
  absl::StatusOr<int> PollBatches(int timeout_ms, RingReader::BatchFn on_batch);
  // The same, one record per call.
  absl::StatusOr<int> Poll(int timeout_ms, absl::FunctionRef<void(const void*, size_t)> on_record);

  // Runs the task iterator once: one callback per process (thread-group leader with an mm).
  // Records that fail validation are counted (snapshot_rejects) and skipped.
  absl::Status SnapshotTasks(absl::FunctionRef<void(const tapio_rss_record&)> on_task);

  LossCounters ReadLoss() const;
  std::vector<ProgramStatus> Programs() const;
  // The kernel's per-cgroup reclaim totals (key: cgroup id as in record headers).
  std::vector<std::pair<uint64_t, tapio_reclaim_total>> ReadReclaimTotals() const;
  // Adds/removes a cgroup id from the rss_stat hook's filter (no effect without the hook).
  absl::Status SetRssTracked(uint64_t cgroup_id, bool tracked);

  // Attaches/detaches the rss_stat hook at run time, so that the per-fault cost is paid only while
  // some cgroup is followed. FailedPrecondition unless created with rss_stat_hook (the program
  // is loaded only then). Owner thread only.
  absl::Status SetRssStatAttached(bool attached);

  bool using_ringbuf() const { return ringbuf_ != nullptr; }
  bool rss_stat_attached() const;
  // Map memory the kernel charged for this object's maps (fdinfo memlock), in bytes.
  uint64_t MapMemoryBytes() const;
  // Task-iterator records that failed validation since Create. Any thread.
  uint64_t snapshot_rejects() const { return snapshot_rejects_.load(std::memory_order_relaxed); }

 private:
  MemoryTracker() = default;
  absl::Status Load(const TrackerOptions& options);
  absl::Status AttachAll(const TrackerOptions& options);
  static void OnPerfSample(void* ctx, int cpu, void* data, uint32_t size);
  static void OnPerfLost(void* ctx, int cpu, __u64 count);

  tapio_bpf* skel_ = nullptr;
  std::vector<bpf_link*> links_;
  bpf_link* iter_link_ = nullptr;  // owned through links_
  bpf_link* rss_link_ = nullptr;   // owned here (not in links_): attached/detached at run time
  std::unique_ptr<RingReader> ringbuf_;
  perf_buffer* perfbuf_ = nullptr;
  std::vector<ProgramStatus> programs_;  // fixed after Create, except the rss_stat entry
  // Valid only during PollBatches: where the perf buffer callback delivers.
  RingReader::BatchFn* sink_ = nullptr;
  int delivered_ = 0;
  std::vector<uint64_t> perf_scratch_;          // aligned copy of one perf sample
  std::atomic<uint64_t> perf_lost_samples_{0};  // written in Poll, read by ReadLoss (any thread)
  std::atomic<uint64_t> snapshot_rejects_{0};
};

// Pre-flight, called by Create and callable alone: root or CAP_BPF+CAP_PERFMON (or
// CAP_SYS_ADMIN), kernel BTF at /sys/kernel/btf/vmlinux, kernel >= 5.8, tracefs mounted at
// /sys/kernel/tracing (mounted here if absent and permitted), bpffs at /sys/fs/bpf (mounted if
// absent and permitted; only a warning if that fails: nothing is pinned). Errors say what is
// missing and how to fix it.
absl::Status CheckEnvironment();

// Sets kernel.bpf_stats_enabled; returns the previous value so that callers can restore it.
absl::StatusOr<bool> SetBpfStatsEnabled(bool enabled);

}  // namespace tapio::bpf

#endif  // TAPIO_AGENT_BPF_MEMORY_TRACKER_H_
