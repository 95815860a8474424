// tapioctl: the command-line client of the Tapio agent's gRPC API.
//
//   tapioctl watch [filter flags] [--output=table|json] [--count=N] [--timeout=10s]
//   tapioctl containers [--namespace=..] [--pod=..] [--container=..] [--selector=..]
//   tapioctl info
//
// --address (default unix:///run/tapio/tapio.sock) or host:port with --tls_ca/--tls_cert/--tls_key
// (mTLS) or --insecure. Exit status: 0 on success (watch: ended by --count or --timeout),
// 1 when the server or the connection fails (the gRPC code and message on stderr), 2 on bad usage.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/api/status.h"
#include "cli/format.h"
#include "grpcpp/grpcpp.h"
#include "tapio/v1/service.grpc.pb.h"

ABSL_FLAG(std::string, address, "unix:///run/tapio/tapio.sock",
          "agent API address: unix:///path or host:port");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA bundle to verify the agent's certificate (TCP)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate for mTLS (TCP)");
ABSL_FLAG(std::string, tls_key, "", "PEM client private key for mTLS (TCP)");
ABSL_FLAG(std::string, tls_server_name, "", "override the name checked in the agent's certificate");
ABSL_FLAG(bool, insecure, false, "plaintext TCP (only if the agent runs with --grpc_insecure_tcp)");
ABSL_FLAG(std::string, output, "table", "table or json (one JSON object per line)");
ABSL_FLAG(absl::Duration, timeout, absl::ZeroDuration(),
          "watch: stop after this long (exit 0); other commands: deadline (default 10s)");
ABSL_FLAG(int64_t, count, 0, "watch: stop after this many events (0: no limit)");
ABSL_FLAG(std::vector<std::string>, namespace, {}, "only these pod namespaces (comma-separated)");
ABSL_FLAG(std::vector<std::string>, pod, {}, "only pods whose name matches one of these globs");
ABSL_FLAG(std::vector<std::string>, container, {}, "only these container names");
ABSL_FLAG(std::string, selector, "", "only pods matching this Kubernetes label selector");
ABSL_FLAG(std::vector<std::string>, type, {},
          "watch: only these event types (memory_usage, rss_change, oom_kill, oom_prediction, "
          "memory_pressure, process_lifecycle, events_lost)");
ABSL_FLAG(std::vector<std::string>, exclude_namespace, {}, "watch: drop these namespaces");
ABSL_FLAG(std::vector<std::string>, exclude_pod, {}, "watch: drop pods matching these globs");
ABSL_FLAG(std::vector<std::string>, exclude_container, {}, "watch: drop these container names");
ABSL_FLAG(std::string, exclude_selector, "", "watch: drop pods matching this label selector");
ABSL_FLAG(std::vector<std::string>, exclude_type, {}, "watch: drop these event types");
ABSL_FLAG(std::string, min_severity, "", "watch: debug, info, warning or critical");
ABSL_FLAG(int64_t, resume_after, -1,
          "watch: first replay retained events with a sequence number above this (-1: off)");

namespace tapio::cli {
namespace {

constexpr int kExitServerError = 1;
constexpr int kExitUsage = 2;

int Usage(const std::string& message) {
  std::fprintf(stderr, "tapioctl: %s\n", message.c_str());
  return kExitUsage;
}

int ServerError(const grpc::Status& status) {
  std::fprintf(stderr, "tapioctl: %s: %s\n",
               std::string(api::GrpcCodeName(status.error_code())).c_str(),
               status.error_message().c_str());
  return kExitServerError;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

void WriteLine(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::shared_ptr<grpc::Channel> Connect(std::string* error) {
  const std::string address = absl::GetFlag(FLAGS_address);
  if (absl::StartsWith(address, "unix:")) {
    return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  }
  if (absl::GetFlag(FLAGS_insecure)) {
    return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  }
  grpc::SslCredentialsOptions ssl;
  const std::string ca = absl::GetFlag(FLAGS_tls_ca);
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  if (!ca.empty() && !ReadFile(ca, &ssl.pem_root_certs)) {
    *error = absl::StrCat("--tls_ca: cannot read '", ca, "'");
    return nullptr;
  }
  if (cert.empty() != key.empty()) {
    *error = "--tls_cert and --tls_key go together";
    return nullptr;
  }
  if (!cert.empty() &&
      (!ReadFile(cert, &ssl.pem_cert_chain) || !ReadFile(key, &ssl.pem_private_key))) {
    *error = absl::StrCat("--tls_cert/--tls_key: cannot read '", cert, "' or '", key, "'");
    return nullptr;
  }
  grpc::ChannelArguments args;
  if (!absl::GetFlag(FLAGS_tls_server_name).empty()) {
    args.SetSslTargetNameOverride(absl::GetFlag(FLAGS_tls_server_name));
  }
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
}

void SetDeadline(grpc::ClientContext* context, absl::Duration fallback) {
  absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (timeout <= absl::ZeroDuration()) timeout = fallback;
  if (timeout > absl::ZeroDuration())
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

v1::Selector IdentitySelector() {
  v1::Selector selector;
  for (const auto& ns : absl::GetFlag(FLAGS_namespace)) selector.add_namespaces(ns);
  for (const auto& pod : absl::GetFlag(FLAGS_pod)) selector.add_pod_name_patterns(pod);
  for (const auto& c : absl::GetFlag(FLAGS_container)) selector.add_container_names(c);
  selector.set_label_selector(absl::GetFlag(FLAGS_selector));
  return selector;
}

int Watch(v1::TapioService::Stub* stub, bool json) {
  WatchFlags flags;
  flags.namespaces = absl::GetFlag(FLAGS_namespace);
  flags.pods = absl::GetFlag(FLAGS_pod);
  flags.containers = absl::GetFlag(FLAGS_container);
  flags.selector = absl::GetFlag(FLAGS_selector);
  flags.types = absl::GetFlag(FLAGS_type);
  flags.exclude_namespaces = absl::GetFlag(FLAGS_exclude_namespace);
  flags.exclude_pods = absl::GetFlag(FLAGS_exclude_pod);
  flags.exclude_containers = absl::GetFlag(FLAGS_exclude_container);
  flags.exclude_selector = absl::GetFlag(FLAGS_exclude_selector);
  flags.exclude_types = absl::GetFlag(FLAGS_exclude_type);
  flags.min_severity = absl::GetFlag(FLAGS_min_severity);
  if (absl::GetFlag(FLAGS_resume_after) >= 0) {
    flags.resume_after = static_cast<uint64_t>(absl::GetFlag(FLAGS_resume_after));
  }
  auto request = BuildSubscribeRequest(flags);
  if (!request.ok()) return Usage(std::string(request.status().message()));

  grpc::ClientContext context;
  const bool bounded_by_time = absl::GetFlag(FLAGS_timeout) > absl::ZeroDuration();
  SetDeadline(&context, absl::ZeroDuration());
  // Batches: at high event rates one message carries many events (same events, same order).
  auto reader = stub->SubscribeBatches(&context, *request);
  if (!json) WriteLine(EventTableHeader());
  const int64_t count = absl::GetFlag(FLAGS_count);
  int64_t received = 0;
  v1::EventBatch batch;
  while (reader->Read(&batch)) {
    for (const v1::Event& event : batch.events()) {
      WriteLine(json ? ToJsonLine(event) : EventTableRow(event));
      if (count > 0 && ++received >= count) {
        context.TryCancel();
        reader->Finish();
        return 0;
      }
    }
  }
  grpc::Status status = reader->Finish();
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && bounded_by_time) return 0;
  if (status.ok()) {
    std::fprintf(stderr, "tapioctl: the agent ended the stream\n");
    return 0;
  }
  return ServerError(status);
}

int Containers(v1::TapioService::Stub* stub, bool json) {
  v1::ListContainersRequest request;
  *request.mutable_selector() = IdentitySelector();
  v1::ListContainersResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  grpc::Status status = stub->ListContainers(&context, request, &response);
  if (!status.ok()) return ServerError(status);
  if (json) {
    for (const auto& c : response.containers()) WriteLine(ToJsonLine(c));
  } else {
    std::fputs(ContainersTable(response).c_str(), stdout);
  }
  return 0;
}

int Info(v1::TapioService::Stub* stub, bool json) {
  v1::AgentInfo info;
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  grpc::Status status = stub->GetAgentInfo(&context, v1::GetAgentInfoRequest(), &info);
  if (!status.ok()) return ServerError(status);
  if (json) {
    WriteLine(ToJsonLine(info));
  } else {
    std::fputs(AgentInfoText(info).c_str(), stdout);
  }
  return 0;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tapioctl watch|containers|info [flags]: talk to the Tapio agent's gRPC API");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) return Usage("expected one command: watch, containers or info (--help)");
  const std::string command = args[1];
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output != "table" && output != "json") return Usage("--output: table or json");
  std::string error;
  auto channel = Connect(&error);
  if (!channel) return Usage(error);
  auto stub = v1::TapioService::NewStub(channel);
  const bool json = output == "json";
  if (command == "watch") return Watch(stub.get(), json);
  if (command == "containers") return Containers(stub.get(), json);
  if (command == "info") return Info(stub.get(), json);
  return Usage(absl::StrCat("unknown command '", command, "' (watch, containers, info)"));
}

}  // namespace
}  // namespace tapio::cli

int main(int argc, char** argv) { return tapio::cli::Main(argc, argv); }
