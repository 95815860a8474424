#include "agent/core/runtime_scan.h"

#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/core/file_util.h"

namespace tapio {
namespace {

// JVM class paths make long command lines; a process's environment is usually a few KiB.
constexpr size_t kMaxCmdlineBytes = 256 << 10;
constexpr size_t kMaxEnvironBytes = 256 << 10;

}  // namespace

uint64_t RuntimeCapScanner::HostMemoryBytes(const std::string& proc_root) {
  auto text = ReadFileToString(absl::StrCat(proc_root, "/meminfo"), 64 << 10);
  if (!text.ok()) return 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (!absl::ConsumePrefix(&line, "MemTotal:")) continue;
    line = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumeSuffix(&line, "kB")) return 0;
    uint64_t kib = 0;
    if (!ParseU64(line, &kib)) return 0;
    return kib << 10;
  }
  return 0;
}

absl::StatusOr<RuntimeCapSummary> RuntimeCapScanner::Scan(const std::string& cgroup_dir,
                                                          const RuntimeMemory& memory,
                                                          bool after_exec,
                                                          RuntimeScanCounters* counters) {
  auto procs = ReadFileToString(absl::StrCat(cgroup_dir, "/cgroup.procs"));
  if (!procs.ok()) return procs.status();
  ++counters->scans;

  std::vector<uint32_t> pids;
  for (absl::string_view line : absl::StrSplit(*procs, '\n', absl::SkipWhitespace())) {
    uint32_t pid = 0;
    // 0: a process outside this pid namespace.
    if (absl::SimpleAtoi(line, &pid) && pid != 0) pids.push_back(pid);
  }
  // Forget the processes that left.
  absl::flat_hash_set<uint32_t> present(pids.begin(), pids.end());
  absl::erase_if(seen_, [&present, after_exec](const auto& entry) {
    return !present.contains(entry.first) ||
           (after_exec && entry.second.kind == RuntimeKind::kNone);
  });

  int read_now = 0;
  uint32_t unread = 0;
  for (uint32_t pid : pids) {
    if (seen_.contains(pid)) continue;
    if (read_now == kMaxNewProcessesPerScan ||
        seen_.size() >= static_cast<size_t>(kMaxTrackedProcesses)) {
      ++counters->deferred;
      ++unread;
      continue;
    }
    ++read_now;
    const std::string dir = absl::StrCat(proc_root_, "/", pid);
    auto cmdline = ReadFileToString(dir + "/cmdline", kMaxCmdlineBytes);
    if (!cmdline.ok()) {
      // Gone between cgroup.procs and here (ENOENT, ESRCH); anything else is as good as gone
      // for this reading, and is looked at again next scan.
      ++counters->processes_vanished;
      continue;
    }
    ++counters->processes_read;
    const std::vector<std::string> argv = SplitNulSeparated(*cmdline);
    RuntimeHeapCap cap;
    cap.kind = RuntimeKindOf(argv);
    // Only a runtime's environment matters; a kernel thread or a shell is not read further.
    if (cap.kind == RuntimeKind::kNone) {
      seen_[pid] = cap;
      continue;
    }
    std::vector<std::string> environ;
    bool environ_read = true;
    if (auto env = ReadFileToString(dir + "/environ", kMaxEnvironBytes); env.ok()) {
      environ = SplitNulSeparated(*env);
    } else if (absl::IsNotFound(env.status())) {
      ++counters->processes_vanished;
      continue;
    } else {
      ++counters->environ_unreadable;
      environ_read = false;
    }
    auto parsed = ParseRuntimeHeapCap(argv, environ, memory);
    if (!parsed.ok()) {
      ++counters->parse_errors;  // the kind stays, its cap unknown
    } else if (!environ_read && cap.kind != RuntimeKind::kMemcached) {
      // JAVA_TOOL_OPTIONS, _JAVA_OPTIONS or NODE_OPTIONS may set the heap: without the
      // environment the command line's answer may be wrong, so the cap is unknown.
    } else {
      cap = *parsed;
    }
    seen_[pid] = cap;
  }

  // Deterministic whatever the map's order: the largest cap names the kind, then the lowest pid.
  RuntimeCapSummary summary;
  summary.unread = unread;
  uint64_t best_cap = 0;
  uint32_t best_pid = 0;
  for (const auto& [pid, cap] : seen_) {
    if (cap.kind == RuntimeKind::kNone) continue;
    ++summary.runtimes;
    summary.cap_bytes += cap.cap_bytes;
    if (cap.cap_bytes == 0) ++summary.unknown_caps;
    if (summary.runtimes == 1 || cap.cap_bytes > best_cap ||
        (cap.cap_bytes == best_cap && pid < best_pid)) {
      best_cap = cap.cap_bytes;
      best_pid = pid;
      summary.kind = cap.kind;
    }
  }
  return summary;
}

}  // namespace tapio
