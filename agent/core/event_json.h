// The one JSON rendering of an Event (nlohmann_json), used by --output=json and trace tooling.
// Field names match the protobuf schema's JSON names where the two overlap (snake_case here).
#ifndef TAPIO_AGENT_CORE_EVENT_JSON_H_
#define TAPIO_AGENT_CORE_EVENT_JSON_H_

#include <string>

#include "agent/core/event.h"
#include "nlohmann/json.hpp"

namespace tapio {

nlohmann::json EventToJson(const Event& event, const std::string& node_name);

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_EVENT_JSON_H_
