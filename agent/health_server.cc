#include "agent/health_server.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace tapio {
namespace {
constexpr char kApiService[] = "tapio.v1.TapioService";
}  // namespace

absl::StatusOr<std::unique_ptr<HealthServer>> HealthServer::Create(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (absl::StartsWith(address, "unix:") || colon == std::string::npos || colon == 0 ||
      colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--health_address: want host:port, got '", address, "'"));
  }
  grpc::EnableDefaultHealthCheckService(true);
  std::unique_ptr<HealthServer> hs(new HealthServer());
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // a taken port is an error
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &hs->port_);
  hs->server_ = builder.BuildAndStart();
  if (hs->server_ == nullptr || hs->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("--health_address: cannot listen on ", address));
  }
  if (auto* health = hs->server_->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus(kApiService, true);
  }
  return hs;
}

void HealthServer::SetNotServing() {
  if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);
}

HealthServer::~HealthServer() {
  if (server_) {
    if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
    server_->Shutdown();
  }
}

}  // namespace tapio
