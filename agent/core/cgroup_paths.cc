#include "agent/core/cgroup_paths.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace tapio {
namespace {
// How long an unknown id is answered from memory, and how many such ids are remembered.
constexpr absl::Duration kMissMemory = absl::Seconds(1);
constexpr size_t kMaxRememberedMisses = 4096;
}  // namespace

CgroupPathResolver::CgroupPathResolver(std::string id_root, absl::Duration min_rescan_interval)
    : id_root_(std::move(id_root)), min_rescan_interval_(min_rescan_interval) {}

std::optional<std::string> CgroupPathResolver::Lookup(uint64_t cgroup_id) {
  absl::MutexLock lock(&mu_);
  auto it = paths_.find(cgroup_id);
  if (it != paths_.end()) {
    ++stats_.hits;
    return it->second;
  }
  // A recent miss stays a miss for a while: events of a removed cgroup must not each pay a lookup.
  if (auto miss = unknown_.find(cgroup_id); miss != unknown_.end()) {
    if (absl::Now() < miss->second) {
      ++stats_.misses;
      return std::nullopt;
    }
    unknown_.erase(miss);
  }
  // O(1) first: cgroupfs (kernfs) exports file handles whose payload is the id; opening by handle
  // and reading the fd's link gives the path without walking the tree.
  if (handles_work_) {
    if (std::optional<std::string> path = PathByHandleLocked(cgroup_id)) {
      paths_[cgroup_id] = *path;
      ++stats_.hits;
      return path;
    }
  }
  if (absl::Now() - last_rescan_ >= min_rescan_interval_) {
    RescanLocked();
    it = paths_.find(cgroup_id);
    if (it != paths_.end()) {
      ++stats_.hits;
      return it->second;
    }
  }
  ++stats_.misses;
  if (unknown_.size() >= kMaxRememberedMisses) unknown_.clear();
  unknown_[cgroup_id] = absl::Now() + kMissMemory;
  return std::nullopt;
}

std::optional<uint64_t> CgroupPathResolver::IdOf(const std::string& path) const {
  struct stat st;
  const std::string full = path == "/" ? id_root_ : absl::StrCat(id_root_, path);
  if (::stat(full.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
  return static_cast<uint64_t>(st.st_ino);
}

std::optional<std::string> CgroupPathResolver::PathByHandleLocked(uint64_t cgroup_id) {
  if (root_fd_ < 0) {
    root_fd_ = ::open(id_root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd_ < 0) {
      handles_work_ = false;
      return std::nullopt;
    }
  }
  // struct file_handle with an 8-byte payload; FILEID_KERNFS (0xfe) from include/linux/exportfs.h.
  struct {
    struct file_handle fh;
    uint64_t id;
  } handle;
  handle.fh.handle_bytes = sizeof(uint64_t);
  handle.fh.handle_type = 0xfe;
  handle.id = cgroup_id;
  const int fd = ::open_by_handle_at(root_fd_, &handle.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    // EPERM: no CAP_DAC_READ_SEARCH; EOPNOTSUPP/EINVAL: no handles here. Walk from now on.
    if (errno == EPERM || errno == EOPNOTSUPP || errno == EINVAL) handles_work_ = false;
    return std::nullopt;  // ESTALE/ENOENT: the cgroup is gone
  }
  char link[4096];
  const ssize_t n = ::readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), link, sizeof(link) - 1);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  absl::string_view full(link, static_cast<size_t>(n));
  if (!absl::ConsumePrefix(&full, id_root_)) return std::nullopt;  // another mount of the tree
  if (full.empty()) return std::string("/");
  return std::string(full);
}

CgroupPathResolver::~CgroupPathResolver() {
  if (root_fd_ >= 0) ::close(root_fd_);
}

void CgroupPathResolver::Invalidate() {
  absl::MutexLock lock(&mu_);
  unknown_.clear();
  last_rescan_ = absl::InfinitePast();
}

CgroupPathResolver::Stats CgroupPathResolver::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s = stats_;
  s.cached = paths_.size();
  return s;
}

void CgroupPathResolver::RescanLocked() {
  ++stats_.rescans;
  last_rescan_ = absl::Now();
  // Rebuild from scratch: removed cgroups drop out, and inode numbers are never stale.
  absl::flat_hash_map<uint64_t, std::string> fresh;
  fresh.reserve(paths_.size() + 16);
  std::vector<std::string> stack = {""};
  while (!stack.empty()) {
    std::string rel = std::move(stack.back());
    stack.pop_back();
    const std::string full = absl::StrCat(id_root_, rel);
    DIR* dir = ::opendir(full.c_str());
    if (dir == nullptr) continue;  // vanished during the walk
    struct stat st;
    if (::fstat(::dirfd(dir), &st) == 0) {
      fresh[static_cast<uint64_t>(st.st_ino)] = rel.empty() ? "/" : rel;
    }
    while (struct dirent* entry = ::readdir(dir)) {
      if (entry->d_type != DT_DIR || entry->d_name[0] == '.') continue;
      stack.push_back(absl::StrCat(rel, "/", entry->d_name));
    }
    ::closedir(dir);
  }
  paths_ = std::move(fresh);
}

}  // namespace tapio
