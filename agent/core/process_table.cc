#include "agent/core/process_table.h"

namespace tapio {
namespace {

constexpr size_t kInitialCapacity = 1024;

ProcessInfo EmptySlot() {
  ProcessInfo slot;
  slot.pid = ProcessTable::kNoPid;
  return slot;
}

}  // namespace

void ProcessTable::Account(uint64_t cgroup_id, int delta) {
  if (delta > 0) {
    ++per_cgroup_[cgroup_id];
    return;
  }
  auto it = per_cgroup_.find(cgroup_id);
  if (it == per_cgroup_.end()) return;
  if (--it->second == 0) per_cgroup_.erase(it);
}

size_t ProcessTable::Probe(uint32_t pid) const {
  const size_t mask = slots_.size() - 1;
  size_t i = Home(pid);
  while (slots_[i].pid != pid && slots_[i].pid != kNoPid) i = (i + 1) & mask;
  return i;
}

void ProcessTable::Grow() {
  std::vector<ProcessInfo> old = std::move(slots_);
  const size_t capacity = old.empty() ? kInitialCapacity : old.size() * 2;
  slots_.assign(capacity, EmptySlot());
  shift_ = 64 - __builtin_ctzll(capacity);
  for (const ProcessInfo& s : old) {
    if (s.pid != kNoPid) slots_[Probe(s.pid)] = s;
  }
}

ProcessInfo& ProcessTable::Upsert(uint32_t pid, uint64_t cgroup_id, uint64_t start_time_ns,
                                  bool* moved) {
  if (pid == kNoPid) {
    if (moved != nullptr) *moved = false;
    outside_ = ProcessInfo{};
    return outside_;
  }
  if ((size_ + 1) * 2 > slots_.size()) Grow();  // at most half full: short probes
  ProcessInfo& info = slots_[Probe(pid)];
  const bool inserted = info.pid == kNoPid;
  if (inserted) {
    info = ProcessInfo{};
    info.pid = pid;
    ++size_;
  }
  if (moved != nullptr) *moved = inserted || info.cgroup_id != cgroup_id;
  if (!inserted && start_time_ns != 0 && info.start_time_ns != 0 &&
      info.start_time_ns != start_time_ns) {
    info.resident_pages = 0;  // pid reused by a new process
  }
  if (inserted) {
    Account(cgroup_id, +1);
  } else if (info.cgroup_id != cgroup_id) {
    Account(info.cgroup_id, -1);  // migrated to another cgroup
    Account(cgroup_id, +1);
  }
  info.cgroup_id = cgroup_id;
  if (start_time_ns != 0) info.start_time_ns = start_time_ns;
  info.seen_generation = generation_;
  return info;
}

ProcessInfo* ProcessTable::Find(uint32_t pid) {
  if (slots_.empty() || pid == kNoPid) return nullptr;
  ProcessInfo& slot = slots_[Probe(pid)];
  return slot.pid == pid ? &slot : nullptr;
}

void ProcessTable::EraseAt(size_t i) {
  // Backward shift: every entry of the run after the hole that may live there (its home is not
  // between the hole and itself) moves into it, leaving the hole where it was; the run ends at
  // the first empty slot.
  const size_t mask = slots_.size() - 1;
  size_t j = i;
  while (true) {
    j = (j + 1) & mask;
    if (slots_[j].pid == kNoPid) break;
    const size_t home = Home(slots_[j].pid);
    const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    slots_[i] = slots_[j];
    i = j;
  }
  slots_[i].pid = kNoPid;
  --size_;
}

bool ProcessTable::Remove(uint32_t pid) {
  if (slots_.empty() || pid == kNoPid) return false;
  const size_t i = Probe(pid);
  if (slots_[i].pid != pid) return false;
  Account(slots_[i].cgroup_id, -1);
  EraseAt(i);
  return true;
}

size_t ProcessTable::SweepUnseen(absl::FunctionRef<void(const ProcessInfo&)> gone) {
  std::vector<uint32_t> unseen;
  for (const ProcessInfo& s : slots_) {
    if (s.pid != kNoPid && s.seen_generation != generation_) {
      gone(s);
      unseen.push_back(s.pid);
    }
  }
  for (uint32_t pid : unseen) Remove(pid);
  return unseen.size();
}

}  // namespace tapio
