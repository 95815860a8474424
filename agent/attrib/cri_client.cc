#include "agent/attrib/cri_client.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/attrib/cri/api.grpc.pb.h"

namespace tapio::attrib {
namespace {

namespace pb = ::runtime::v1;

// One place maps grpc::Status onto absl::Status.
absl::Status FromGrpc(const grpc::Status& s, absl::string_view call) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat("CRI ", call, ": ", s.error_message()));
}

CriContainerState FromPb(pb::ContainerState s) {
  switch (s) {
    case pb::CONTAINER_CREATED:
      return CriContainerState::kCreated;
    case pb::CONTAINER_RUNNING:
      return CriContainerState::kRunning;
    case pb::CONTAINER_EXITED:
      return CriContainerState::kExited;
    default:
      return CriContainerState::kUnknown;
  }
}

template <typename M>
std::map<std::string, std::string> ToMap(const M& m) {
  return std::map<std::string, std::string>(m.begin(), m.end());
}

pb::SecurityProfile::ProfileType ProfileTypeOf(GrpcCriClient::Seccomp seccomp) {
  return seccomp == GrpcCriClient::Seccomp::kRuntimeDefault ? pb::SecurityProfile::RuntimeDefault
                                                            : pb::SecurityProfile::Unconfined;
}

void FillPodConfig(const GrpcCriClient::PodSpec& pod, pb::PodSandboxConfig* cfg) {
  cfg->mutable_metadata()->set_name(pod.name);
  cfg->mutable_metadata()->set_namespace_(pod.pod_namespace);
  cfg->mutable_metadata()->set_uid(pod.uid);
  cfg->mutable_metadata()->set_attempt(pod.attempt);
  cfg->set_log_directory(pod.log_directory);
  for (const auto& [k, v] : pod.labels) (*cfg->mutable_labels())[k] = v;
  auto* linux = cfg->mutable_linux();
  linux->set_cgroup_parent(pod.cgroup_parent);
  auto* sc = linux->mutable_security_context();
  sc->mutable_namespace_options()->set_network(pb::NODE);
  if (pod.host_pid) sc->mutable_namespace_options()->set_pid(pb::NODE);
  if (pod.seccomp != GrpcCriClient::Seccomp::kUnset) {
    sc->mutable_seccomp()->set_profile_type(ProfileTypeOf(pod.seccomp));
  }
}

bool IsSocket(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

absl::Status ParseVerboseInfo(absl::string_view json, CriContainerStatus* status) {
  nlohmann::json j = nlohmann::json::parse(json.begin(), json.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("ContainerStatus info: 'info' is not a JSON object");
  }
  if (auto it = j.find("pid"); it != j.end()) {
    if (!it->is_number_unsigned() && !it->is_number_integer()) {
      return absl::InvalidArgumentError("ContainerStatus info: field 'pid' is not an integer");
    }
    int64_t pid = it->get<int64_t>();
    if (pid < 0 || pid > 0x7fffffff) {
      return absl::InvalidArgumentError("ContainerStatus info: field 'pid' out of range");
    }
    status->pid = static_cast<uint32_t>(pid);
  }
  if (auto spec = j.find("runtimeSpec"); spec != j.end()) {
    if (!spec->is_object()) {
      return absl::InvalidArgumentError(
          "ContainerStatus info: field 'runtimeSpec' is not an object");
    }
    if (auto linux = spec->find("linux"); linux != spec->end() && linux->is_object()) {
      if (auto cp = linux->find("cgroupsPath"); cp != linux->end()) {
        if (!cp->is_string()) {
          return absl::InvalidArgumentError(
              "ContainerStatus info: field 'runtimeSpec.linux.cgroupsPath' is not a string");
        }
        status->cgroups_path = cp->get<std::string>();
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FindCriEndpoint(absl::string_view explicit_endpoint,
                                            absl::string_view root) {
  if (!explicit_endpoint.empty()) {
    absl::string_view p = explicit_endpoint;
    if (absl::ConsumePrefix(&p, "unix://")) {
    } else if (absl::ConsumePrefix(&p, "unix:")) {
    }
    if (p.empty() || p[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat("cri_endpoint '", explicit_endpoint,
                                                     "': expected an absolute unix socket path"));
    }
    return absl::StrCat("unix://", p);
  }
  for (absl::string_view candidate :
       {"/run/containerd/containerd.sock", "/run/crio/crio.sock",
        "/var/run/containerd/containerd.sock", "/var/run/crio/crio.sock"}) {
    std::string path = absl::StrCat(root, candidate);
    if (IsSocket(path)) return absl::StrCat("unix://", path);
  }
  return absl::NotFoundError(
      "no CRI socket at /run/containerd/containerd.sock or "
      "/run/crio/crio.sock; pass --cri_endpoint");
}

struct GrpcCriClient::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::RuntimeService::Stub> stub;
};

GrpcCriClient::GrpcCriClient(Options options, std::unique_ptr<Impl> impl)
    : options_(std::move(options)), impl_(std::move(impl)) {}
GrpcCriClient::~GrpcCriClient() = default;

absl::StatusOr<std::unique_ptr<GrpcCriClient>> GrpcCriClient::Create(Options options) {
  if (!absl::StartsWith(options.endpoint, "unix:")) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint '", options.endpoint, "': only unix sockets are supported"));
  }
  if (options.call_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("call_timeout must be positive");
  }
  grpc::ChannelArguments args;
  const int max_backoff_ms =
      static_cast<int>(absl::ToInt64Milliseconds(options.max_reconnect_backoff));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(100, max_backoff_ms));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, std::min(100, max_backoff_ms));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
  args.SetMaxReceiveMessageSize(64 << 20);  // ListContainers on a big node
  auto impl = std::make_unique<Impl>();
  impl->channel =
      grpc::CreateCustomChannel(options.endpoint, grpc::InsecureChannelCredentials(), args);
  impl->stub = pb::RuntimeService::NewStub(impl->channel);
  return std::unique_ptr<GrpcCriClient>(new GrpcCriClient(std::move(options), std::move(impl)));
}

namespace {
void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::microseconds(absl::ToInt64Microseconds(timeout)));
}
}  // namespace

absl::StatusOr<CriVersion> GrpcCriClient::Version() {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, options_.call_timeout);
  pb::VersionRequest req;
  req.set_version("v1");
  pb::VersionResponse resp;
  if (auto s = FromGrpc(impl_->stub->Version(&ctx, req, &resp), "Version"); !s.ok()) return s;
  return CriVersion{resp.runtime_name(), resp.runtime_version(), resp.runtime_api_version()};
}

absl::StatusOr<std::vector<CriContainer>> GrpcCriClient::ListContainers() {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, options_.call_timeout);
  pb::ListContainersRequest req;
  pb::ListContainersResponse resp;
  if (auto s = FromGrpc(impl_->stub->ListContainers(&ctx, req, &resp), "ListContainers"); !s.ok()) {
    return s;
  }
  std::vector<CriContainer> out;
  out.reserve(resp.containers_size());
  for (const auto& c : resp.containers()) {
    out.push_back(CriContainer{c.id(), c.pod_sandbox_id(), c.metadata().name(), FromPb(c.state()),
                               c.created_at(), ToMap(c.labels())});
  }
  return out;
}

absl::StatusOr<std::vector<CriPodSandbox>> GrpcCriClient::ListPodSandbox() {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, options_.call_timeout);
  pb::ListPodSandboxRequest req;
  pb::ListPodSandboxResponse resp;
  if (auto s = FromGrpc(impl_->stub->ListPodSandbox(&ctx, req, &resp), "ListPodSandbox"); !s.ok()) {
    return s;
  }
  std::vector<CriPodSandbox> out;
  out.reserve(resp.items_size());
  for (const auto& p : resp.items()) {
    out.push_back(CriPodSandbox{p.id(), p.metadata().name(), p.metadata().namespace_(),
                                p.metadata().uid(), p.state() == pb::SANDBOX_READY, p.created_at(),
                                ToMap(p.labels())});
  }
  return out;
}

absl::StatusOr<CriContainerStatus> GrpcCriClient::ContainerStatus(absl::string_view container_id,
                                                                  bool verbose) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, options_.call_timeout);
  pb::ContainerStatusRequest req;
  req.set_container_id(std::string(container_id));
  req.set_verbose(verbose);
  pb::ContainerStatusResponse resp;
  if (auto s = FromGrpc(impl_->stub->ContainerStatus(&ctx, req, &resp), "ContainerStatus");
      !s.ok()) {
    return s;
  }
  const auto& st = resp.status();
  CriContainerStatus out;
  out.id = st.id();
  out.name = st.metadata().name();
  out.state = FromPb(st.state());
  out.exit_code = st.exit_code();
  out.reason = st.reason();
  out.finished_at_ns = st.finished_at();
  out.labels = ToMap(st.labels());
  if (auto it = resp.info().find("info"); it != resp.info().end()) {
    if (auto s = ParseVerboseInfo(it->second, &out); !s.ok()) return s;
  }
  return out;
}

absl::StatusOr<std::string> GrpcCriClient::RunPodSandbox(const PodSpec& pod) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, lifecycle_timeout_);
  pb::RunPodSandboxRequest req;
  FillPodConfig(pod, req.mutable_config());
  pb::RunPodSandboxResponse resp;
  if (auto s = FromGrpc(impl_->stub->RunPodSandbox(&ctx, req, &resp), "RunPodSandbox"); !s.ok()) {
    return s;
  }
  return resp.pod_sandbox_id();
}

absl::Status GrpcCriClient::StopPodSandbox(absl::string_view id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, lifecycle_timeout_);
  pb::StopPodSandboxRequest req;
  req.set_pod_sandbox_id(std::string(id));
  pb::StopPodSandboxResponse resp;
  return FromGrpc(impl_->stub->StopPodSandbox(&ctx, req, &resp), "StopPodSandbox");
}

absl::Status GrpcCriClient::RemovePodSandbox(absl::string_view id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, lifecycle_timeout_);
  pb::RemovePodSandboxRequest req;
  req.set_pod_sandbox_id(std::string(id));
  pb::RemovePodSandboxResponse resp;
  return FromGrpc(impl_->stub->RemovePodSandbox(&ctx, req, &resp), "RemovePodSandbox");
}

absl::StatusOr<std::string> GrpcCriClient::CreateContainer(absl::string_view pod_sandbox_id,
                                                           const ContainerSpec& c,
                                                           const PodSpec& pod) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, lifecycle_timeout_);
  pb::CreateContainerRequest req;
  req.set_pod_sandbox_id(std::string(pod_sandbox_id));
  FillPodConfig(pod, req.mutable_sandbox_config());
  auto* cfg = req.mutable_config();
  cfg->mutable_metadata()->set_name(c.name);
  cfg->mutable_image()->set_image(c.image);
  for (const auto& s : c.command) cfg->add_command(s);
  for (const auto& s : c.args) cfg->add_args(s);
  for (const auto& [k, v] : c.labels) (*cfg->mutable_labels())[k] = v;
  cfg->set_log_path(c.log_path);
  auto* linux = cfg->mutable_linux();
  if (c.memory_limit_bytes > 0) {
    linux->mutable_resources()->set_memory_limit_in_bytes(c.memory_limit_bytes);
  }
  if (c.cpu_period_us > 0) linux->mutable_resources()->set_cpu_period(c.cpu_period_us);
  if (c.cpu_quota_us > 0) linux->mutable_resources()->set_cpu_quota(c.cpu_quota_us);
  if (c.cpu_shares > 0) linux->mutable_resources()->set_cpu_shares(c.cpu_shares);
  for (const auto& [k, v] : c.envs) {
    auto* kv = cfg->add_envs();
    kv->set_key(k);
    kv->set_value(v);
  }
  for (const auto& m : c.mounts) {
    auto* pm = cfg->add_mounts();
    pm->set_host_path(m.host_path);
    pm->set_container_path(m.container_path);
    pm->set_readonly(m.readonly);
  }
  auto* sc = linux->mutable_security_context();
  sc->mutable_namespace_options()->set_network(pb::NODE);
  if (c.host_pid) sc->mutable_namespace_options()->set_pid(pb::NODE);
  if (!c.capabilities_add.empty() || !c.capabilities_drop.empty()) {
    for (const auto& cap : c.capabilities_add) {
      sc->mutable_capabilities()->add_add_capabilities(cap);
    }
    for (const auto& cap : c.capabilities_drop) {
      sc->mutable_capabilities()->add_drop_capabilities(cap);
    }
  }
  sc->set_privileged(c.privileged);
  sc->set_readonly_rootfs(c.readonly_rootfs);
  sc->set_no_new_privs(c.no_new_privs);
  if (c.run_as_user >= 0) sc->mutable_run_as_user()->set_value(c.run_as_user);
  if (c.run_as_group >= 0) sc->mutable_run_as_group()->set_value(c.run_as_group);
  if (c.seccomp != Seccomp::kUnset) {
    sc->mutable_seccomp()->set_profile_type(ProfileTypeOf(c.seccomp));
  }
  for (const auto& p : c.masked_paths) sc->add_masked_paths(p);
  for (const auto& p : c.readonly_paths) sc->add_readonly_paths(p);
  pb::CreateContainerResponse resp;
  if (auto s = FromGrpc(impl_->stub->CreateContainer(&ctx, req, &resp), "CreateContainer");
      !s.ok()) {
    return s;
  }
  return resp.container_id();
}

absl::Status GrpcCriClient::StartContainer(absl::string_view id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, lifecycle_timeout_);
  pb::StartContainerRequest req;
  req.set_container_id(std::string(id));
  pb::StartContainerResponse resp;
  return FromGrpc(impl_->stub->StartContainer(&ctx, req, &resp), "StartContainer");
}

absl::Status GrpcCriClient::StopContainer(absl::string_view id, int64_t timeout_seconds) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, lifecycle_timeout_ + absl::Seconds(timeout_seconds));
  pb::StopContainerRequest req;
  req.set_container_id(std::string(id));
  req.set_timeout(timeout_seconds);
  pb::StopContainerResponse resp;
  return FromGrpc(impl_->stub->StopContainer(&ctx, req, &resp), "StopContainer");
}

absl::Status GrpcCriClient::RemoveContainer(absl::string_view id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, lifecycle_timeout_);
  pb::RemoveContainerRequest req;
  req.set_container_id(std::string(id));
  pb::RemoveContainerResponse resp;
  return FromGrpc(impl_->stub->RemoveContainer(&ctx, req, &resp), "RemoveContainer");
}

}  // namespace tapio::attrib
