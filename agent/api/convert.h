// The one mapping between the agent's plain C++ types (agent/core/event.h, state_source.h,
// filter.h) and tapio.v1 protobuf. Everything protobuf stays behind this edge.
//
// Internal -> proto is total (every internal value has a proto form). Proto -> internal
// (requests) validates: errors are INVALID_ARGUMENT naming the field, e.g.
// "allow[0].event_types[1]".
#ifndef TAPIO_AGENT_API_CONVERT_H_
#define TAPIO_AGENT_API_CONVERT_H_

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/api/filter.h"
#include "agent/api/state_source.h"
#include "agent/core/event.h"
#include "tapio/v1/event.pb.h"
#include "tapio/v1/service.pb.h"

namespace tapio::api {

// Fills `out` (cleared first). `node` goes into Event.node.
void EventToProto(const Event& event, absl::string_view node, v1::Event* out);
void IdentityToProto(const WorkloadIdentity& identity, v1::WorkloadIdentity* out);
void MemoryUsageToProto(const MemoryUsage& usage, v1::MemoryUsage* out);
void OomPredictionToProto(const OomPrediction& prediction, v1::OomPrediction* out);
void ContainerToProto(const ContainerSnapshot& snapshot, v1::ContainerState* out);
void AgentInfoToProto(const AgentInfo& info, v1::AgentInfo* out);

v1::EventType EventKindToProto(EventKind kind);
v1::Severity SeverityToProto(Severity severity);
v1::QosClass QosClassToProto(absl::string_view qos_class);
// Inverse of EventKindToProto; false for UNSPECIFIED and unknown numbers.
bool EventKindFromProto(int type, EventKind* kind);
// Inverse of SeverityToProto; false for UNSPECIFIED and unknown numbers.
bool SeverityFromProto(int severity, Severity* out);

// Validates and converts. `field` prefixes error messages ("allow[0]", "selector").
absl::StatusOr<SelectorSpec> SelectorSpecFromProto(const v1::Selector& selector,
                                                   absl::string_view field);
// Filters of a Subscribe request (resume_after is read by the server directly).
absl::StatusOr<FilterSpec> FilterSpecFromProto(const v1::SubscribeRequest& request);

}  // namespace tapio::api

#endif  // TAPIO_AGENT_API_CONVERT_H_
