// The kernel log's OOM summary line, the source of an OOM's constraint and OOM memcg on kernels
// where fentry/oom_kill_process cannot attach (DESIGN.md §2). The kernel prints it from
// dump_oom_victim() (mm/oom_kill.c) just before it marks the victim, e.g.:
//   oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,
//   oom_memcg=/a/b,task_memcg=/a/b/c,task=leak,pid=4242,uid=0
// Note: the kernel ratelimits these lines (DEFAULT_RATELIMIT_BURST per 5 s); a kill without one is
// reported with constraint "unknown" or from the memcg counters, never dropped.
#ifndef TAPIO_AGENT_CORE_KMSG_H_
#define TAPIO_AGENT_CORE_KMSG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/core/event.h"
#include "agent/core/file_util.h"

namespace tapio {

struct KmsgOomSummary {
  OomConstraint constraint = OomConstraint::kUnknown;
  std::string oom_memcg;  // "" for a global OOM
  std::string task_memcg;
  std::string task;
  uint32_t pid = 0;
};

// Parses one /dev/kmsg record ("<prio>,<seq>,<ts>,<flags>;<message>") or a bare message line.
// nullopt unless it is an oom-kill summary with at least a constraint and a pid.
std::optional<KmsgOomSummary> ParseKmsgOomLine(absl::string_view line);

// Reads /dev/kmsg from its end (only new records), non-blocking. One owner thread.
class KmsgReader {
 public:
  static absl::StatusOr<std::unique_ptr<KmsgReader>> Open(const std::string& path = "/dev/kmsg");
  int fd() const { return fd_.get(); }
  // Reads what is available; calls `on_oom` for each OOM summary. Returns records read.
  // Overrun records (EPIPE: the kernel's buffer wrapped) are counted in overruns().
  template <typename Fn>
  int Drain(Fn&& on_oom) {
    int n = 0;
    absl::string_view record;
    while (ReadRecord(&record)) {
      ++n;
      if (auto summary = ParseKmsgOomLine(record)) on_oom(*summary);
    }
    return n;
  }
  uint64_t overruns() const { return overruns_; }

 private:
  explicit KmsgReader(UniqueFd fd) : fd_(std::move(fd)) {}
  bool ReadRecord(absl::string_view* record);

  UniqueFd fd_;
  char buffer_[8192];
  uint64_t overruns_ = 0;
};

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_KMSG_H_
