// CgroupPathResolver: cgroup id -> path relative to the id tree's root (DESIGN.md §3.1).
// A cgroup id is the inode number of its directory in the id tree (cgroup2, or the v1 memory tree
// on pure v1 hosts). Lookups hit a cache; a miss opens the cgroup by file handle (kernfs handles
// carry the id; needs CAP_DAC_READ_SEARCH) and, where that is refused, rescans the tree at most
// once per `min_rescan_interval`, so a storm of unknown ids cannot become a storm of tree walks.
// Thread-safe.
#ifndef TAPIO_AGENT_CORE_CGROUP_PATHS_H_
#define TAPIO_AGENT_CORE_CGROUP_PATHS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tapio {

class CgroupPathResolver {
 public:
  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;  // ids not found even after a rescan (vanished or never seen)
    uint64_t rescans = 0;
    size_t cached = 0;
  };

  explicit CgroupPathResolver(std::string id_root,
                              absl::Duration min_rescan_interval = absl::Milliseconds(200));
  ~CgroupPathResolver();
  CgroupPathResolver(const CgroupPathResolver&) = delete;
  CgroupPathResolver& operator=(const CgroupPathResolver&) = delete;

  // The path ("/" for the root, "/a/b" below it), or nullopt when the id is unknown.
  std::optional<std::string> Lookup(uint64_t cgroup_id);
  // Id of a relative path (stat of its directory), or nullopt if it does not exist.
  std::optional<uint64_t> IdOf(const std::string& path) const;
  // Forces the next miss to rescan, e.g. after a container start.
  void Invalidate();
  Stats stats() const;
  const std::string& id_root() const { return id_root_; }

 private:
  void RescanLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<std::string> PathByHandleLocked(uint64_t cgroup_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string id_root_;
  const absl::Duration min_rescan_interval_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::string> paths_ ABSL_GUARDED_BY(mu_);
  absl::Time last_rescan_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  Stats stats_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, absl::Time> unknown_ ABSL_GUARDED_BY(mu_);  // id -> until
  int root_fd_ ABSL_GUARDED_BY(mu_) = -1;
  bool handles_work_ ABSL_GUARDED_BY(mu_) = true;
};

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_CGROUP_PATHS_H_
