#include "agent/core/process_table.h"

#include <algorithm>
#include <cstring>

namespace tapio {

absl::string_view ProcessInfo::comm_view() const {
  return absl::string_view(comm.data(), strnlen(comm.data(), comm.size()));
}

void ProcessTable::Account(uint64_t cgroup_id, int delta) {
  if (delta > 0) {
    ++per_cgroup_[cgroup_id];
    return;
  }
  auto it = per_cgroup_.find(cgroup_id);
  if (it == per_cgroup_.end()) return;
  if (--it->second == 0) per_cgroup_.erase(it);
}

ProcessInfo& ProcessTable::Upsert(uint32_t pid, uint64_t cgroup_id, uint64_t start_time_ns,
                                  uint32_t ppid, absl::string_view comm, bool* moved) {
  auto [it, inserted] = processes_.try_emplace(pid);
  ProcessInfo& info = it->second;
  if (moved != nullptr) *moved = inserted || info.cgroup_id != cgroup_id;
  if (!inserted && start_time_ns != 0 && info.start_time_ns != 0 &&
      info.start_time_ns != start_time_ns) {
    info.rss = ProcessRss{};  // pid reused by a new process
  }
  if (inserted) {
    Account(cgroup_id, +1);
  } else if (info.cgroup_id != cgroup_id) {
    Account(info.cgroup_id, -1);  // migrated to another cgroup
    Account(cgroup_id, +1);
  }
  info.cgroup_id = cgroup_id;
  if (start_time_ns != 0) info.start_time_ns = start_time_ns;
  if (ppid != 0) info.ppid = ppid;
  const size_t n = std::min(comm.size(), info.comm.size() - 1);
  std::memcpy(info.comm.data(), comm.data(), n);
  info.comm[n] = '\0';
  info.seen_generation = generation_;
  return info;
}

ProcessInfo* ProcessTable::Find(uint32_t pid) {
  auto it = processes_.find(pid);
  return it == processes_.end() ? nullptr : &it->second;
}

bool ProcessTable::Remove(uint32_t pid) {
  auto it = processes_.find(pid);
  if (it == processes_.end()) return false;
  Account(it->second.cgroup_id, -1);
  processes_.erase(it);
  return true;
}

size_t ProcessTable::SweepUnseen() {
  size_t removed = 0;
  for (auto it = processes_.begin(); it != processes_.end();) {
    if (it->second.seen_generation != generation_) {
      Account(it->second.cgroup_id, -1);
      processes_.erase(it++);
      ++removed;
    } else {
      ++it;
    }
  }
  return removed;
}

}  // namespace tapio
