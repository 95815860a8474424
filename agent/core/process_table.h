// ProcessTable: pid -> (cgroup id, start time, last RSS), fed by BPF lifecycle records and
// task-iterator snapshots. Lets the agent resolve a pid to its cgroup after the fact (OOM records
// from kernels that pass only the pid), compute RSS deltas, and know which cgroups hold processes.
// (No comm: every record carries its task's own.) Not thread-safe: owned by the ingest thread.
// No allocation per update once a pid is known.
//
// The map is an open-addressing table of its own rather than a flat_hash_map: it is the one
// random memory access of nearly every kernel record, so an entry is 32 bytes with its key (two
// to a cache line), and a pid's slot is computable from the pid alone (multiplicative hash,
// linear probing, at most half full), which is what lets Prefetch ask for the right line a few
// records ahead (Pipeline::HandleRecords). Deletion shifts the following entries back (no
// tombstones).
#ifndef TAPIO_AGENT_CORE_PROCESS_TABLE_H_
#define TAPIO_AGENT_CORE_PROCESS_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "agent/core/prefetch.h"

namespace tapio {

// One slot of the table: never straddles a cache line.
struct alignas(32) ProcessInfo {
  uint32_t pid = 0;
  uint32_t seen_generation = 0;
  uint64_t cgroup_id = 0;
  uint64_t start_time_ns = 0;   // task->start_time: a reused pid has a different one
  uint64_t resident_pages = 0;  // file + anon + shmem at the last report
};
static_assert(sizeof(ProcessInfo) == 32, "two processes per cache line");

class ProcessTable {
 public:
  // Never a pid (pid_max is at most 2^22): marks an empty slot. Upsert of it returns an entry
  // outside the table, Find and Remove do not find it.
  static constexpr uint32_t kNoPid = UINT32_MAX;

  // Inserts or updates; a different start time means the pid was reused: the entry is replaced.
  // `moved` (optional) is set when the pid is new or now in another cgroup. One probe.
  ProcessInfo& Upsert(uint32_t pid, uint64_t cgroup_id, uint64_t start_time_ns,
                      bool* moved = nullptr);
  ProcessInfo* Find(uint32_t pid);
  // Removes the pid; returns false if it was not known.
  bool Remove(uint32_t pid);
  // Starts loading the pid's slot (and the next, where a probe or a removal's shift goes on)
  // into the cache. A hint: no effect on the contents.
  void Prefetch(uint32_t pid) const {
    if (slots_.empty()) return;
    const size_t home = Home(pid);
    PrefetchForRead(&slots_[home]);
    PrefetchForRead(&slots_[(home + 1) & (slots_.size() - 1)]);
  }
  // Snapshot bookkeeping: bump the generation, Upsert (or Touch) what the snapshot saw, then
  // Sweep removes the processes it did not see (exits whose records were lost), showing each to
  // `gone` first.
  uint32_t BeginGeneration() { return ++generation_; }
  void Touch(ProcessInfo& info) { info.seen_generation = generation_; }
  size_t SweepUnseen(absl::FunctionRef<void(const ProcessInfo&)> gone = [](const ProcessInfo&) {});

  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }
  // Live processes per cgroup id.
  const absl::flat_hash_map<uint64_t, uint32_t>& processes_per_cgroup() const {
    return per_cgroup_;
  }

 private:
  void Account(uint64_t cgroup_id, int delta);
  size_t Home(uint32_t pid) const {
    return static_cast<size_t>((pid * 0x9E3779B97F4A7C15ULL) >> shift_);
  }
  // The slot holding `pid`, or the empty slot where it would go.
  size_t Probe(uint32_t pid) const;
  void EraseAt(size_t i);
  void Grow();

  std::vector<ProcessInfo> slots_;  // a power of two of them (pid kNoPid: empty), or none yet
  int shift_ = 64;                  // 64 - log2(capacity)
  size_t size_ = 0;
  ProcessInfo outside_;  // what Upsert(kNoPid) returns
  absl::flat_hash_map<uint64_t, uint32_t> per_cgroup_;
  uint32_t generation_ = 0;  // equality only: wrapping is harmless
};

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_PROCESS_TABLE_H_
