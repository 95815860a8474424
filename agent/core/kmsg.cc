#include "agent/core/kmsg.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tapio {

std::optional<KmsgOomSummary> ParseKmsgOomLine(absl::string_view line) {
  // Strip the /dev/kmsg record prefix if present.
  if (size_t semi = line.find(';');
      semi != absl::string_view::npos && line.find("oom-kill:") > semi) {
    line.remove_prefix(semi + 1);
  }
  const size_t at = line.find("oom-kill:");
  if (at == absl::string_view::npos) return std::nullopt;
  line.remove_prefix(at + 9);
  line = absl::StripTrailingAsciiWhitespace(line);
  KmsgOomSummary out;
  bool has_constraint = false;
  // Values are paths and names without commas in practice; the task name comes last but one.
  for (absl::string_view field : absl::StrSplit(line, ',')) {
    const size_t eq = field.find('=');
    if (eq == absl::string_view::npos) continue;
    absl::string_view key = field.substr(0, eq);
    absl::string_view value = field.substr(eq + 1);
    if (key == "constraint") {
      has_constraint = true;
      if (value == "CONSTRAINT_NONE")
        out.constraint = OomConstraint::kNone;
      else if (value == "CONSTRAINT_CPUSET")
        out.constraint = OomConstraint::kCpuset;
      else if (value == "CONSTRAINT_MEMORY_POLICY")
        out.constraint = OomConstraint::kMempolicy;
      else if (value == "CONSTRAINT_MEMCG")
        out.constraint = OomConstraint::kMemcg;
      else
        has_constraint = false;
    } else if (key == "oom_memcg") {
      out.oom_memcg = std::string(value);
    } else if (key == "task_memcg") {
      out.task_memcg = std::string(value);
    } else if (key == "task") {
      out.task = std::string(value);
    } else if (key == "pid") {
      if (!absl::SimpleAtoi(value, &out.pid)) return std::nullopt;
    }
  }
  if (!has_constraint || out.pid == 0) return std::nullopt;
  return out;
}

absl::StatusOr<std::unique_ptr<KmsgReader>> KmsgReader::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open " + path);
  UniqueFd owner(fd);
  // Only records from now on: an OOM from before the agent started is history, not an event.
  if (::lseek(fd, 0, SEEK_END) < 0) return ErrnoToStatus(errno, "seek " + path);
  return std::unique_ptr<KmsgReader>(new KmsgReader(std::move(owner)));
}

bool KmsgReader::ReadRecord(absl::string_view* record) {
  while (true) {
    const ssize_t n = ::read(fd_.get(), buffer_, sizeof(buffer_) - 1);
    if (n > 0) {
      *record = absl::string_view(buffer_, static_cast<size_t>(n));
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) {  // records were overwritten before we read them
      ++overruns_;
      continue;
    }
    return false;  // EAGAIN: nothing more now
  }
}

}  // namespace tapio
