// The one place where absl::Status becomes grpc::Status (and back, for clients).
#ifndef TAPIO_AGENT_API_STATUS_H_
#define TAPIO_AGENT_API_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace tapio::api {

// Codes map 1:1 (absl and gRPC share the canonical code numbering); the message is kept.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);
// "INVALID_ARGUMENT", "UNAVAILABLE", ...
absl::string_view GrpcCodeName(grpc::StatusCode code);

}  // namespace tapio::api

#endif  // TAPIO_AGENT_API_STATUS_H_
