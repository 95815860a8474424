// The one logging helper: leveled lines on stderr, "I1201 22:43:35.123456 message".
// Thread-safe (one write(2) per line). Level threshold set once at start-up by SetLogLevel.
#ifndef TAPIO_AGENT_CORE_LOG_H_
#define TAPIO_AGENT_CORE_LOG_H_

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace tapio {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, absl::string_view message);

}  // namespace tapio

// TAPIO_LOG(kInfo, "attached %d programs", n): absl::StrFormat syntax, checked at compile time.
#define TAPIO_LOG(level, ...)                                                     \
  do {                                                                            \
    if (::tapio::LogEnabled(::tapio::LogLevel::level)) {                          \
      ::tapio::LogLine(::tapio::LogLevel::level, ::absl::StrFormat(__VA_ARGS__)); \
    }                                                                             \
  } while (0)

#endif  // TAPIO_AGENT_CORE_LOG_H_
