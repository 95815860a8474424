#include "agent/core/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tapio {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
constexpr char kLevelChars[] = {'D', 'I', 'W', 'E'};
}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void LogLine(LogLevel level, absl::string_view message) {
  std::string line;
  line.reserve(message.size() + 32);
  line.push_back(kLevelChars[static_cast<int>(level)]);
  line += absl::FormatTime("%m%d %H:%M:%E6S ", absl::Now(), absl::UTCTimeZone());
  line.append(message.data(), message.size());
  line.push_back('\n');
  // One write per line keeps lines whole when threads log at once; a failed write to stderr has
  // nowhere better to be reported.
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace tapio
