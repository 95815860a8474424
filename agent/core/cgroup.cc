#include "agent/core/cgroup.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tapio {
namespace {

// Limits at or above this are "no limit": v1 reports PAGE_COUNTER_MAX * PAGE_SIZE
// (9223372036854771712 on 4 KiB pages), v2 reports "max" (parsed as UINT64_MAX).
constexpr uint64_t kUnlimitedFloor = uint64_t{1} << 62;
constexpr uint64_t kLimitRefreshReads = 16;

std::string JoinPath(absl::string_view root, absl::string_view rel) {
  if (rel.empty() || rel == "/") return std::string(root);
  if (rel.front() != '/') return absl::StrCat(root, "/", rel);
  return absl::StrCat(root, rel);
}

// Visits "key value" lines of flat-keyed cgroup files (memory.stat, memory.events).
template <typename Fn>
void ForEachKeyValue(absl::string_view text, Fn&& fn) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const size_t space = line.find(' ');
    if (space == absl::string_view::npos) continue;
    uint64_t value = 0;
    if (!absl::SimpleAtoi(line.substr(space + 1), &value)) continue;
    fn(line.substr(0, space), value);
  }
}

absl::Status ReadU64Fd(int fd, std::string* buffer, uint64_t* value, bool allow_max) {
  if (absl::Status s = PreadAll(fd, buffer); !s.ok()) return s;
  if (!ParseU64(*buffer, value, allow_max)) {
    return absl::DataLossError(absl::StrCat("unparsable number: '", *buffer, "'"));
  }
  return absl::OkStatus();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

std::string CgroupLayout::MemoryDir(absl::string_view path) const {
  if (memory_on_unified) return JoinPath(unified_root, path);
  if (!memory_v1_root.empty()) return JoinPath(memory_v1_root, path);
  return "";
}

std::string CgroupLayout::PressureDir(absl::string_view path) const {
  return unified_root.empty() ? "" : JoinPath(unified_root, path);
}

std::string CgroupLayout::Describe() const {
  if (memory_on_unified) return absl::StrCat("cgroup v2 at ", unified_root);
  if (!unified_root.empty() && !memory_v1_root.empty()) {
    return absl::StrCat("hybrid (v1 memory at ", memory_v1_root, ", cgroup2 ids at ", unified_root,
                        ")");
  }
  if (!memory_v1_root.empty()) return absl::StrCat("cgroup v1 (memory at ", memory_v1_root, ")");
  return absl::StrCat("cgroup2 at ", unified_root, " without a memory controller");
}

absl::StatusOr<CgroupLayout> CgroupLayout::FromMounts(absl::string_view mounts,
                                                      absl::string_view unified_controllers) {
  CgroupLayout layout;
  for (absl::string_view line : absl::StrSplit(mounts, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() < 4) continue;
    if (f[2] == "cgroup2" && layout.unified_root.empty()) {
      layout.unified_root = std::string(f[1]);
    } else if (f[2] == "cgroup" && layout.memory_v1_root.empty()) {
      for (absl::string_view opt : absl::StrSplit(f[3], ',')) {
        if (opt == "memory") layout.memory_v1_root = std::string(f[1]);
      }
    }
  }
  if (!layout.unified_root.empty()) {
    for (absl::string_view c : absl::StrSplit(unified_controllers, absl::ByAnyChar(" \n"))) {
      if (c == "memory") layout.memory_on_unified = true;
    }
  }
  if (layout.unified_root.empty() && layout.memory_v1_root.empty()) {
    return absl::FailedPreconditionError(
        "no cgroup filesystem is mounted (neither cgroup2 nor the v1 memory controller); mount "
        "/sys/fs/cgroup (in a container: mount the host's /sys/fs/cgroup read-only)");
  }
  return layout;
}

absl::StatusOr<CgroupLayout> CgroupLayout::Detect(const std::string& mounts_path) {
  auto mounts = ReadFileToString(mounts_path);
  if (!mounts.ok()) return mounts.status();
  auto first = FromMounts(*mounts, "");
  if (!first.ok() || first->unified_root.empty()) return first;
  auto controllers = ReadFileToString(first->unified_root + "/cgroup.controllers");
  return FromMounts(*mounts, controllers.ok() ? *controllers : "");
}

std::map<std::string, std::string> ParseProcCgroup(absl::string_view text) {
  std::map<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    if (f[1].empty()) {
      out["0"] = std::string(f[2]);
      continue;
    }
    out[std::string(f[1])] = std::string(f[2]);
    for (absl::string_view c : absl::StrSplit(f[1], ',')) out[std::string(c)] = std::string(f[2]);
  }
  return out;
}

absl::StatusOr<std::string> ProcessMemoryCgroup(const CgroupLayout& layout, int pid) {
  auto text = ReadFileToString(absl::StrCat("/proc/", pid, "/cgroup"));
  if (!text.ok()) return text.status();
  auto map = ParseProcCgroup(*text);
  const char* key = layout.memory_on_unified || layout.memory_v1_root.empty() ? "0" : "memory";
  auto it = map.find(key);
  if (it == map.end()) {
    return absl::NotFoundError(absl::StrCat("pid ", pid, " has no '", key, "' cgroup"));
  }
  return it->second;
}

uint64_t NormalizeLimit(uint64_t raw_limit_bytes) {
  return raw_limit_bytes >= kUnlimitedFloor ? 0 : raw_limit_bytes;
}

void ParseMemoryStatV2(absl::string_view text, CgroupMemoryStat* stat) {
  uint64_t kernel = 0, slab_reclaimable = 0, slab_unreclaimable = 0, kernel_stack = 0,
           pagetables = 0, percpu = 0, sock = 0, vmalloc = 0;
  bool has_kernel = false;
  ForEachKeyValue(text, [&](absl::string_view key, uint64_t v) {
    if (key == "anon")
      stat->anon_bytes = v;
    else if (key == "file")
      stat->file_bytes = v;
    else if (key == "active_file")
      stat->active_file_bytes = v;
    else if (key == "inactive_file")
      stat->inactive_file_bytes = v;
    else if (key == "shmem")
      stat->shmem_bytes = v;
    else if (key == "kernel") {
      kernel = v;
      has_kernel = true;
    } else if (key == "slab_reclaimable")
      slab_reclaimable = v;
    else if (key == "slab_unreclaimable")
      slab_unreclaimable = v;
    else if (key == "kernel_stack")
      kernel_stack = v;
    else if (key == "pagetables")
      pagetables = v;
    else if (key == "percpu")
      percpu = v;
    else if (key == "sock")
      sock = v;
    else if (key == "vmalloc")
      vmalloc = v;
  });
  // "kernel" (5.18+) includes all slab; older kernels list the parts only.
  stat->kernel_bytes = has_kernel ? kernel
                                  : slab_reclaimable + slab_unreclaimable + kernel_stack +
                                        pagetables + percpu + sock + vmalloc;
  stat->kernel_unreclaimable_bytes =
      stat->kernel_bytes > slab_reclaimable ? stat->kernel_bytes - slab_reclaimable : 0;
}

void ParseMemoryStatV1(absl::string_view text, CgroupMemoryStat* stat,
                       uint64_t* hierarchical_limit) {
  // The total_* fields are hierarchical (this cgroup and its descendants), as usage_in_bytes is.
  ForEachKeyValue(text, [&](absl::string_view key, uint64_t v) {
    if (key == "total_rss")
      stat->anon_bytes = v;
    else if (key == "total_cache")
      stat->file_bytes = v;
    else if (key == "total_active_file")
      stat->active_file_bytes = v;
    else if (key == "total_inactive_file")
      stat->inactive_file_bytes = v;
    else if (key == "total_shmem")
      stat->shmem_bytes = v;
    else if (key == "total_swap")
      stat->swap_bytes = v;
    else if (key == "hierarchical_memory_limit" && hierarchical_limit)
      *hierarchical_limit = v;
  });
}

void ParseMemoryEventsV2(absl::string_view text, CgroupMemoryStat* stat) {
  ForEachKeyValue(text, [&](absl::string_view key, uint64_t v) {
    if (key == "max")
      stat->limit_hits = v;
    else if (key == "oom")
      stat->oom_events = v;
    else if (key == "oom_kill")
      stat->oom_kills = v;
  });
}

void ParseOomControlV1(absl::string_view text, CgroupMemoryStat* stat) {
  ForEachKeyValue(text, [&](absl::string_view key, uint64_t v) {
    if (key == "oom_kill") stat->oom_kills = v;
  });
}

bool ParsePressure(absl::string_view text, CgroupMemoryStat* stat) {
  bool any = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const bool some = absl::ConsumePrefix(&line, "some ");
    const bool full = !some && absl::ConsumePrefix(&line, "full ");
    if (!some && !full) continue;
    for (absl::string_view field : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      if (absl::ConsumePrefix(&field, "avg10=")) {
        double v = 0;
        if (!absl::SimpleAtod(field, &v)) return false;
        (some ? stat->psi_some_avg10 : stat->psi_full_avg10) = v;
        any = true;
      } else if (absl::ConsumePrefix(&field, "total=")) {
        uint64_t v = 0;
        if (!absl::SimpleAtoi(field, &v)) return false;
        (some ? stat->psi_some_total_us : stat->psi_full_total_us) = v;
      }
    }
  }
  stat->has_psi = any;
  return any;
}

CgroupMemoryReader::CgroupMemoryReader(const CgroupLayout& layout, std::string path)
    : layout_(layout), path_(std::move(path)) {}

absl::StatusOr<std::unique_ptr<CgroupMemoryReader>> CgroupMemoryReader::Open(
    const CgroupLayout& layout, std::string path) {
  const std::string dir = layout.MemoryDir(path);
  if (dir.empty()) {
    return absl::FailedPreconditionError("no memory controller mounted (v1 memory or cgroup2)");
  }
  std::unique_ptr<CgroupMemoryReader> reader(new CgroupMemoryReader(layout, std::move(path)));
  reader->v2_ = layout.memory_on_unified;
  auto open = [&dir](const char* name, UniqueFd* fd, bool required) -> absl::Status {
    auto opened = OpenReadOnly(absl::StrCat(dir, "/", name));
    if (opened.ok()) {
      *fd = std::move(*opened);
      return absl::OkStatus();
    }
    return required ? opened.status() : absl::OkStatus();
  };
  absl::Status s;
  if (reader->v2_) {
    s.Update(open("memory.current", &reader->usage_fd_, true));
    s.Update(open("memory.max", &reader->limit_fd_, false));  // absent on the root cgroup
    s.Update(open("memory.stat", &reader->stat_fd_, true));
    s.Update(open("memory.events", &reader->events_fd_, false));
    s.Update(open("memory.swap.current", &reader->swap_fd_, false));
  } else {
    s.Update(open("memory.usage_in_bytes", &reader->usage_fd_, true));
    s.Update(open("memory.limit_in_bytes", &reader->limit_fd_, true));
    s.Update(open("memory.stat", &reader->stat_fd_, true));
    s.Update(open("memory.oom_control", &reader->events_fd_, false));
    s.Update(open("memory.failcnt", &reader->failcnt_fd_, false));
    s.Update(open("memory.kmem.usage_in_bytes", &reader->kmem_fd_, false));
  }
  if (!s.ok()) return s;
  const std::string pressure_dir = layout.PressureDir(reader->path_);
  if (!pressure_dir.empty()) {
    auto fd = OpenReadOnly(pressure_dir + "/memory.pressure");
    if (fd.ok()) reader->pressure_fd_ = std::move(*fd);
  }
  return reader;
}

absl::Status CgroupMemoryReader::ReadEffectiveLimit(uint64_t own_limit, uint64_t* effective) {
  if (reads_ % kLimitRefreshReads == 0) {
    // Walk the ancestors; a pod-level limit above the container's is the common case.
    uint64_t smallest = 0;
    absl::string_view p = path_;
    while (!p.empty() && p != "/") {
      const size_t slash = p.rfind('/');
      p = slash == absl::string_view::npos || slash == 0 ? absl::string_view() : p.substr(0, slash);
      const std::string dir = layout_.MemoryDir(p);
      auto text =
          ReadFileToString(absl::StrCat(dir, v2_ ? "/memory.max" : "/memory.limit_in_bytes"));
      uint64_t raw = 0;
      if (!text.ok() || !ParseU64(*text, &raw, /*allow_max=*/true)) continue;  // root has no file
      const uint64_t limit = NormalizeLimit(raw);
      if (limit != 0 && (smallest == 0 || limit < smallest)) smallest = limit;
    }
    cached_ancestor_limit_ = smallest;
  }
  uint64_t e = own_limit;
  if (cached_ancestor_limit_ != 0 && (e == 0 || cached_ancestor_limit_ < e)) {
    e = cached_ancestor_limit_;
  }
  *effective = e;
  return absl::OkStatus();
}

absl::StatusOr<CgroupMemoryStat> CgroupMemoryReader::Read() {
  CgroupMemoryStat stat;
  uint64_t raw = 0;
  absl::Status s = ReadU64Fd(usage_fd_.get(), &buffer_, &stat.usage_bytes, false);
  if (!s.ok()) {
    // A removed cgroup's open files fail with ENODEV; report it as gone.
    if (absl::IsNotFound(s) || !Exists(layout_.MemoryDir(path_))) {
      return absl::NotFoundError(absl::StrCat("cgroup ", path_, " is gone"));
    }
    return s;
  }
  if (limit_fd_.valid()) {
    if (s = ReadU64Fd(limit_fd_.get(), &buffer_, &raw, true); !s.ok()) return s;
    stat.limit_bytes = NormalizeLimit(raw);
  }
  if (s = PreadAll(stat_fd_.get(), &buffer_); !s.ok()) return s;
  uint64_t hierarchical_limit = 0;
  if (v2_) {
    ParseMemoryStatV2(buffer_, &stat);
    if (events_fd_.valid() && PreadAll(events_fd_.get(), &buffer_).ok()) {
      ParseMemoryEventsV2(buffer_, &stat);
    }
    if (swap_fd_.valid()) {
      uint64_t swap = 0;
      if (ReadU64Fd(swap_fd_.get(), &buffer_, &swap, false).ok()) stat.swap_bytes = swap;
    }
  } else {
    ParseMemoryStatV1(buffer_, &stat, &hierarchical_limit);
    if (events_fd_.valid() && PreadAll(events_fd_.get(), &buffer_).ok()) {
      ParseOomControlV1(buffer_, &stat);
    }
    if (failcnt_fd_.valid())
      ReadU64Fd(failcnt_fd_.get(), &buffer_, &stat.limit_hits, false).IgnoreError();
    if (kmem_fd_.valid()) {
      // v1 cannot split kernel memory into reclaimable and not: count all of it (conservative).
      if (ReadU64Fd(kmem_fd_.get(), &buffer_, &stat.kernel_bytes, false).ok()) {
        stat.kernel_unreclaimable_bytes = stat.kernel_bytes;
      }
    }
  }
  if (pressure_fd_.valid() && PreadAll(pressure_fd_.get(), &buffer_).ok()) {
    ParsePressure(buffer_, &stat);
  }
  if (s = ReadEffectiveLimit(stat.limit_bytes, &stat.effective_limit_bytes); !s.ok()) return s;
  hierarchical_limit = NormalizeLimit(hierarchical_limit);
  if (hierarchical_limit != 0 &&
      (stat.effective_limit_bytes == 0 || hierarchical_limit < stat.effective_limit_bytes)) {
    stat.effective_limit_bytes = hierarchical_limit;
  }
  ++reads_;
  return stat;
}

}  // namespace tapio
