// HealthServer: plain-text gRPC on a TCP address serving only grpc.health.v1.Health, for kubelet
// gRPC probes (which cannot use the API's unix socket or present client certificates). It exposes
// nothing but liveness: SERVING for "" and tapio.v1.TapioService while the agent runs.
// Thread-safety: Create/destruction from one thread; serving happens on gRPC's threads.
#ifndef TAPIO_AGENT_HEALTH_SERVER_H_
#define TAPIO_AGENT_HEALTH_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace tapio {

class HealthServer {
 public:
  // `address` is host:port (port 0 picks one). INVALID_ARGUMENT for a unix address or a malformed
  // one, UNAVAILABLE when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<HealthServer>> Create(const std::string& address);
  ~HealthServer();
  // Probes see NOT_SERVING from here on (used while shutting down).
  void SetNotServing();
  int port() const { return port_; }

 private:
  HealthServer() = default;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace tapio

#endif  // TAPIO_AGENT_HEALTH_SERVER_H_
