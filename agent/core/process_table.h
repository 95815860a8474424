// ProcessTable: pid -> (cgroup id, comm, start time, last RSS), fed by BPF lifecycle records and
// task-iterator snapshots. Lets the agent resolve a pid to its cgroup after the fact (OOM records
// from kernels that pass only the pid), compute RSS deltas, and know which cgroups hold processes.
// Not thread-safe: owned by the ingest thread. No allocation per update once a pid is known.
#ifndef TAPIO_AGENT_CORE_PROCESS_TABLE_H_
#define TAPIO_AGENT_CORE_PROCESS_TABLE_H_

#include <array>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace tapio {

struct ProcessRss {  // pages, as the kernel's mm counters
  uint64_t file_pages = 0;
  uint64_t anon_pages = 0;
  uint64_t swap_entries = 0;
  uint64_t shmem_pages = 0;
  uint64_t resident_pages() const { return file_pages + anon_pages + shmem_pages; }
};

struct ProcessInfo {
  uint64_t cgroup_id = 0;
  uint64_t start_time_ns = 0;  // task->start_time: a reused pid has a different one
  uint32_t ppid = 0;
  std::array<char, 16> comm{};  // NUL-terminated, as the kernel's TASK_COMM_LEN
  ProcessRss rss;
  uint64_t seen_generation = 0;
  absl::string_view comm_view() const;
};

class ProcessTable {
 public:
  // Inserts or updates; a different start time means the pid was reused: the entry is replaced.
  // `moved` (optional) is set when the pid is new or now in another cgroup. One hash lookup.
  ProcessInfo& Upsert(uint32_t pid, uint64_t cgroup_id, uint64_t start_time_ns, uint32_t ppid,
                      absl::string_view comm, bool* moved = nullptr);
  ProcessInfo* Find(uint32_t pid);
  // Removes the pid; returns false if it was not known.
  bool Remove(uint32_t pid);
  // Snapshot bookkeeping: bump the generation, Upsert+Touch what the snapshot saw, then Sweep
  // removes the processes it did not see (exits whose records were lost).
  uint64_t BeginGeneration() { return ++generation_; }
  void Touch(ProcessInfo& info) { info.seen_generation = generation_; }
  size_t SweepUnseen();

  size_t size() const { return processes_.size(); }
  // Live processes per cgroup id.
  const absl::flat_hash_map<uint64_t, uint32_t>& processes_per_cgroup() const {
    return per_cgroup_;
  }

 private:
  void Account(uint64_t cgroup_id, int delta);

  absl::flat_hash_map<uint32_t, ProcessInfo> processes_;
  absl::flat_hash_map<uint64_t, uint32_t> per_cgroup_;
  uint64_t generation_ = 0;
};

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_PROCESS_TABLE_H_
