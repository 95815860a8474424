// tapioctl's output: readable tables and JSON lines for tapio.v1 messages, and the parsing of
// filter flags into a SubscribeRequest. Pure functions (no I/O), so tests can call them.
#ifndef TAPIO_CLI_FORMAT_H_
#define TAPIO_CLI_FORMAT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "tapio/v1/event.pb.h"
#include "tapio/v1/service.pb.h"

namespace tapio::cli {

// The filter flags of `tapioctl watch`, before validation (the server validates too).
struct WatchFlags {
  std::vector<std::string> namespaces, pods, containers, types;
  std::string selector;
  std::vector<std::string> exclude_namespaces, exclude_pods, exclude_containers, exclude_types;
  std::string exclude_selector;
  std::string min_severity;  // "" or debug|info|warning|critical
  std::optional<uint64_t> resume_after;
};

// One allow selector from the allow flags (if any is set) and one deny selector per exclude
// flag that is set. Unknown type or severity names -> INVALID_ARGUMENT naming the flag.
absl::StatusOr<v1::SubscribeRequest> BuildSubscribeRequest(const WatchFlags& flags);

// One JSON object on one line (proto field names, zero values printed), no trailing newline.
std::string ToJsonLine(const google::protobuf::Message& message);

// "oom_kill", "memory_usage", ... ("unknown" when no payload is set).
std::string EventTypeName(const v1::Event& event);
// "1.5GiB", "512B", "-3.0MiB".
std::string HumanBytes(int64_t bytes);

std::string EventTableHeader();
std::string EventTableRow(const v1::Event& event);  // no trailing newline
std::string ContainersTable(const v1::ListContainersResponse& response);
std::string AgentInfoText(const v1::AgentInfo& info);

}  // namespace tapio::cli

#endif  // TAPIO_CLI_FORMAT_H_
