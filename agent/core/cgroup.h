// Cgroup filesystem access: where the hierarchies are mounted (v1, v2, hybrid), a process's cgroup
// paths, and one reader per cgroup of the memory files the predictor and metrics need.
//
// Identity rule (DESIGN.md §2): cgroup ids are cgroup v2 ids (inode numbers in the cgroup2 tree),
// which also holds on hybrid hosts where runtimes create every path in both trees. Only on pure v1
// hosts (no cgroup2 mount) are ids the v1 memory controller's kernfs ids (inodes in that tree).
#ifndef TAPIO_AGENT_CORE_CGROUP_H_
#define TAPIO_AGENT_CORE_CGROUP_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/core/file_util.h"

namespace tapio {

struct CgroupLayout {
  std::string unified_root;        // cgroup2 mount point, "" if none
  std::string memory_v1_root;      // v1 memory controller mount point, "" if none
  bool memory_on_unified = false;  // memory controller enabled on cgroup2 (pure v2 hosts)

  // Pure v1: ids are the v1 memory controller's kernfs ids.
  bool ids_from_v1_memory() const { return unified_root.empty(); }
  // The tree whose directory inode numbers are the cgroup ids the BPF side reports.
  const std::string& id_root() const {
    return ids_from_v1_memory() ? memory_v1_root : unified_root;
  }
  // Directory holding the memory.* files of `path` (relative, "/a/b"); "" if no memory controller.
  std::string MemoryDir(absl::string_view path) const;
  // Directory holding memory.pressure (cgroup2 only, also present on hybrid hosts); "" if none.
  std::string PressureDir(absl::string_view path) const;
  std::string Describe() const;  // "hybrid (v1 memory at ..., cgroup2 at ...)" for logs

  // From the text of /proc/<pid>/mounts. `unified_controllers` is the content of
  // <cgroup2 mount>/cgroup.controllers (pass "" when unknown).
  static absl::StatusOr<CgroupLayout> FromMounts(absl::string_view mounts,
                                                 absl::string_view unified_controllers);
  static absl::StatusOr<CgroupLayout> Detect(const std::string& mounts_path = "/proc/self/mounts");
};

// Parses /proc/<pid>/cgroup: hierarchy key ("0" for cgroup2, else the controller list such as
// "memory" or "cpu,cpuacct") -> path. Each comma-separated controller also gets its own key.
std::map<std::string, std::string> ParseProcCgroup(absl::string_view text);

// Relative cgroup path of a process in the tree that holds memory (v1 "memory" or cgroup2 "0").
absl::StatusOr<std::string> ProcessMemoryCgroup(const CgroupLayout& layout, int pid);

// Kernel "unlimited" limits (v1 PAGE_COUNTER_MAX * PAGE_SIZE, v2 "max") are reported as 0.
uint64_t NormalizeLimit(uint64_t raw_limit_bytes);

// One reading of a cgroup's memory files, bytes. Counters are cumulative as the kernel keeps them.
struct CgroupMemoryStat {
  uint64_t usage_bytes = 0;
  uint64_t limit_bytes = 0;            // this cgroup's own limit, 0 = unlimited
  uint64_t effective_limit_bytes = 0;  // smallest along the ancestors, 0 = unlimited
  uint64_t anon_bytes = 0;
  uint64_t file_bytes = 0;
  uint64_t active_file_bytes = 0;
  uint64_t inactive_file_bytes = 0;
  uint64_t shmem_bytes = 0;
  uint64_t kernel_bytes = 0;
  uint64_t kernel_unreclaimable_bytes = 0;
  uint64_t swap_bytes = 0;
  uint64_t limit_hits = 0;  // v2 memory.events "max"; v1 memory.failcnt
  uint64_t oom_events = 0;  // v2 memory.events "oom"; v1: under_oom transitions are not counted (0)
  uint64_t oom_kills = 0;   // v2 memory.events "oom_kill"; v1 memory.oom_control "oom_kill"
  bool has_psi = false;
  double psi_some_avg10 = -1;
  double psi_full_avg10 = -1;
  uint64_t psi_some_total_us = 0;
  uint64_t psi_full_total_us = 0;

  uint64_t working_set_bytes() const {
    return usage_bytes > inactive_file_bytes ? usage_bytes - inactive_file_bytes : 0;
  }
  // What the OOM killer acts on: anon + shmem/tmpfs + unreclaimable kernel memory.
  uint64_t non_reclaimable_bytes() const {
    return anon_bytes + shmem_bytes + kernel_unreclaimable_bytes;
  }
};

// Pure parsers, fed file contents (tests use fixture trees through CgroupMemoryReader, and strings
// here).
void ParseMemoryStatV2(absl::string_view text, CgroupMemoryStat* stat);
void ParseMemoryStatV1(absl::string_view text, CgroupMemoryStat* stat,
                       uint64_t* hierarchical_limit);
void ParseMemoryEventsV2(absl::string_view text, CgroupMemoryStat* stat);
void ParseOomControlV1(absl::string_view text, CgroupMemoryStat* stat);
bool ParsePressure(absl::string_view text, CgroupMemoryStat* stat);

// Reads one cgroup's memory files. Keeps the files open and re-reads them with pread, so a sample
// costs a few syscalls and no path lookups. The effective limit (ancestor walk) is re-evaluated
// every `limit_refresh_reads` reads. Not thread-safe: one owner (the sampler thread).
class CgroupMemoryReader {
 public:
  static absl::StatusOr<std::unique_ptr<CgroupMemoryReader>> Open(const CgroupLayout& layout,
                                                                  std::string path);
  // NotFound when the cgroup has gone (an expected race, not an error to alarm on).
  absl::StatusOr<CgroupMemoryStat> Read();
  const std::string& path() const { return path_; }

 private:
  CgroupMemoryReader(const CgroupLayout& layout, std::string path);
  absl::Status ReadEffectiveLimit(uint64_t own_limit, uint64_t* effective);

  const CgroupLayout layout_;
  const std::string path_;
  bool v2_ = false;
  UniqueFd usage_fd_, limit_fd_, stat_fd_, events_fd_, failcnt_fd_, kmem_fd_, pressure_fd_,
      swap_fd_;
  uint64_t reads_ = 0;
  uint64_t cached_ancestor_limit_ = 0;
  std::string buffer_;
};

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_CGROUP_H_
