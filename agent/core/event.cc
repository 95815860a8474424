#include "agent/core/event.h"

#include <array>

namespace tapio {
namespace {

constexpr std::array<absl::string_view, kEventKindCount> kKindNames = {
    "memory_usage",    "rss_change",        "oom_kill",   "oom_prediction",
    "memory_pressure", "process_lifecycle", "events_lost"};

constexpr std::array<absl::string_view, 4> kSeverityNames = {"debug", "info", "warning",
                                                             "critical"};

}  // namespace

absl::string_view EventKindName(EventKind kind) {
  const auto index = static_cast<size_t>(kind);
  return index < kKindNames.size() ? kKindNames[index] : "unknown";
}

bool ParseEventKind(absl::string_view name, EventKind* kind) {
  for (size_t i = 0; i < kKindNames.size(); ++i) {
    if (kKindNames[i] == name) {
      *kind = static_cast<EventKind>(i);
      return true;
    }
  }
  return false;
}

absl::string_view SeverityName(Severity severity) {
  const auto index = static_cast<size_t>(severity) - 1;
  return index < kSeverityNames.size() ? kSeverityNames[index] : "unknown";
}

bool ParseSeverity(absl::string_view name, Severity* severity) {
  for (size_t i = 0; i < kSeverityNames.size(); ++i) {
    if (kSeverityNames[i] == name) {
      *severity = static_cast<Severity>(i + 1);
      return true;
    }
  }
  return false;
}

absl::string_view OomConstraintName(OomConstraint c) {
  switch (c) {
    case OomConstraint::kNone:
      return "global";
    case OomConstraint::kCpuset:
      return "cpuset";
    case OomConstraint::kMempolicy:
      return "mempolicy";
    case OomConstraint::kMemcg:
      return "memcg";
    case OomConstraint::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace tapio
