// RuntimeCapScanner: which managed runtimes run in one cgroup, and how far their own settings let
// their heaps grow (runtime_cap.h). One per tracked cgroup, owned and called by the sampler
// thread only (not thread-safe).
//
// A scan reads the cgroup's cgroup.procs, then /proc/PID/cmdline and /proc/PID/environ of each
// process it has not seen before (at most kMaxNewProcessesPerScan a scan; the rest wait for the
// next one), and forgets the processes that left. A runtime's cap is read once: it sizes its heap
// at start. A process that was no runtime is read again when the caller says a process of the
// cgroup has exec'd since (an entrypoint script that execs java keeps its pid). A pid reused
// inside the same cgroup between two scans keeps the old reading (it would have to exit and a new
// process get the same pid in the same cgroup within one scan interval). Until every process has
// been read, the summary says so (unread), and the caller scans again sooner.
//
// Errors are the environment's: a process that exits between cgroup.procs and its cmdline is
// skipped (counted as vanished); an unreadable environ (another user's process, read without
// CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) leaves a JVM's or Node.js's cap unknown, since their
// options variables may set it (memcached has none); a cap the parser refuses is counted and
// treated as unknown. A cgroup that is gone is NotFound.
#ifndef TAPIO_AGENT_CORE_RUNTIME_SCAN_H_
#define TAPIO_AGENT_CORE_RUNTIME_SCAN_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "agent/core/runtime_cap.h"

namespace tapio {

// The runtimes of one cgroup as of its last scan.
struct RuntimeCapSummary {
  // The recognised runtime with the largest cap (ties and unknown caps: the lowest pid); kNone
  // when the cgroup runs none.
  RuntimeKind kind = RuntimeKind::kNone;
  // Sum of the known caps of its runtime processes; 0 when none is known.
  uint64_t cap_bytes = 0;
  uint32_t runtimes = 0;      // recognised runtime processes
  uint32_t unknown_caps = 0;  // of them, how many with no known cap
  // Processes of the cgroup left unread by the per-scan bound: what they run is unknown, so the
  // caps above may not be all of the cgroup's. (One that vanished before it was read is gone,
  // its memory with it.)
  uint32_t unread = 0;
  // Every process read and every runtime's cap known: cap_bytes is the cgroup's.
  bool complete() const { return unread == 0 && unknown_caps == 0; }
};

struct RuntimeScanCounters {
  uint64_t scans = 0;
  uint64_t processes_read = 0;      // cmdlines read and parsed
  uint64_t processes_vanished = 0;  // gone between cgroup.procs and their /proc files (or the
                                    // cmdline unreadable: read again at the next scan)
  uint64_t environ_unreadable = 0;  // /proc/PID/environ refused (EACCES): command line only
  uint64_t parse_errors = 0;        // a cap value the parser refused (runtime_cap.h)
  uint64_t deferred = 0;            // new processes left for the next scan (the per-scan bound)
  void Add(const RuntimeScanCounters& other) {
    scans += other.scans;
    processes_read += other.processes_read;
    processes_vanished += other.processes_vanished;
    environ_unreadable += other.environ_unreadable;
    parse_errors += other.parse_errors;
    deferred += other.deferred;
  }
};

class RuntimeCapScanner {
 public:
  static constexpr int kMaxNewProcessesPerScan = 64;
  // At most this many processes are remembered per cgroup; more are left unread.
  static constexpr int kMaxTrackedProcesses = 4096;

  // `proc_root`: "/proc" (tests pass a fixture tree).
  explicit RuntimeCapScanner(std::string proc_root = "/proc") : proc_root_(std::move(proc_root)) {}

  // `cgroup_dir`: the directory holding the cgroup's cgroup.procs (its memory cgroup). `memory`:
  // what a runtime starting now would size itself against. `after_exec`: a process of the cgroup
  // has exec'd since the last scan, so the ones that were no runtime are read again. Counters are
  // added to `counters`.
  absl::StatusOr<RuntimeCapSummary> Scan(const std::string& cgroup_dir, const RuntimeMemory& memory,
                                         bool after_exec, RuntimeScanCounters* counters);

  // MemTotal of <proc_root>/meminfo in bytes; 0 when unreadable.
  static uint64_t HostMemoryBytes(const std::string& proc_root = "/proc");

 private:
  std::string proc_root_;
  absl::flat_hash_map<uint32_t, RuntimeHeapCap> seen_;  // pid -> its reading (kNone: no runtime)
};

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_RUNTIME_SCAN_H_
