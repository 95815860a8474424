#include "agent/api/server.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agent/api/convert.h"
#include "agent/api/fanout.h"
#include "agent/api/filter.h"
#include "agent/api/status.h"
#include "agent/core/log.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "tapio/v1/service.grpc.pb.h"

namespace tapio::api {
namespace {

constexpr char kServiceName[] = "tapio.v1.TapioService";

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view option) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(option, ": cannot read '", path, "': ", std::strerror(errno)));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (buffer.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(option, ": '", path, "' is empty"));
  }
  return buffer.str();
}

// mkdir -p with `mode` for the directories it creates.
absl::Status MakeDirs(const std::string& dir, mode_t mode) {
  if (dir.empty()) return absl::OkStatus();
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string prefix = dir.substr(0, pos);
    if (mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      return absl::InvalidArgumentError(absl::StrCat("grpc_address: cannot create directory '",
                                                     prefix, "': ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

// Leaves `path` free for a new socket: removes a stale socket, refuses a live one or a non-socket.
absl::Status PrepareUnixSocketPath(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("grpc_address: unix socket path '", path,
                                                   "' is longer than ",
                                                   sizeof(sockaddr_un::sun_path) - 1, " bytes"));
  }
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    if (absl::Status s = MakeDirs(path.substr(0, slash), 0755); !s.ok()) return s;
  }
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return absl::OkStatus();  // nothing there
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("grpc_address: '", path, "' exists and is not a socket"));
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    const bool live = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (live) {
      return absl::FailedPreconditionError(
          absl::StrCat("grpc_address: another process is serving '", path, "'"));
    }
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::FailedPreconditionError(absl::StrCat("grpc_address: cannot remove stale socket '",
                                                      path, "': ", std::strerror(errno)));
  }
  TAPIO_LOG(kInfo, "api: removed stale socket %s", path);
  return absl::OkStatus();
}

// Lowers the calling thread's scheduling priority to `nice` (never raises it: that needs
// CAP_SYS_NICE). gRPC reuses its threads, so the change sticks to the thread: every API handler
// thread ends up at this priority, which is the intent (the API yields to the pipeline).
void LowerThreadPriority(int nice) {
  if (nice <= 0) return;
  thread_local bool lowered = false;
  if (lowered) return;
  lowered = true;
  const id_t tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, tid);
  if (errno == 0 && current < nice && setpriority(PRIO_PROCESS, tid, nice) != 0) {
    TAPIO_LOG(kWarning, "api: cannot lower handler thread priority to nice %d: %s", nice,
              std::strerror(errno));
  }
}

}  // namespace

class ApiServer::Service final : public v1::TapioService::Service {
 public:
  Service(const ApiServerOptions& options, EventBus* bus, EventFanout* fanout,
          AgentStateSource* state)
      : options_(options), bus_(bus), fanout_(fanout), state_(state) {}

  grpc::Status Subscribe(grpc::ServerContext* context, const v1::SubscribeRequest* request,
                         grpc::ServerWriter<v1::Event>* writer) override {
    auto spec = FilterSpecFromProto(*request);
    absl::StatusOr<EventFilter> filter =
        spec.ok() ? EventFilter::Compile(*spec) : absl::StatusOr<EventFilter>(spec.status());
    if (!filter.ok()) {
      rejected_invalid_.fetch_add(1, std::memory_order_relaxed);
      return ToGrpcStatus(filter.status());
    }
    if (active_.fetch_add(1) >= options_.max_subscribers) {
      active_.fetch_sub(1);
      rejected_exhausted_.fetch_add(1, std::memory_order_relaxed);
      return ToGrpcStatus(absl::ResourceExhaustedError(
          absl::StrCat("the agent already serves ", options_.max_subscribers,
                       " subscribers (max_subscribers)")));
    }
    auto shared_filter = std::make_shared<const EventFilter>(*std::move(filter));
    std::optional<uint64_t> resume_after;
    if (request->has_resume_after()) resume_after = request->resume_after();
    auto sub = fanout_->Attach(shared_filter, options_.subscriber_queue, resume_after);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) sub->Close();
      live_.push_back(sub);
    }
    // Counted as a subscriber only once attached: a client that sees `subscribers` include it
    // can rely on its stream receiving what is published from then on.
    attached_.fetch_add(1);
    subscribes_total_.fetch_add(1, std::memory_order_relaxed);
    TAPIO_LOG(kDebug, "api: subscriber %s joined (%d active)", context->peer(), active_.load());

    LowerThreadPriority(options_.stream_thread_nice);
    // Headers first, on their own: the stream is established for the client at once, and no
    // event write carries (and waits on) the initial metadata.
    writer->SendInitialMetadata();
    v1::Event message;
    bool client_gone = false;
    while (!client_gone && !context->IsCancelled()) {
      // Idle: block on the queue, so the first event is written at once.
      EventPtr next = sub->Next(options_.idle_poll);
      if (!next) {
        if (sub->closed()) break;
        continue;
      }
      // Busy: write what is queued, then sleep for the coalescing window instead of waiting on
      // the queue. A thread waiting on the queue is woken by the next Publish (a futex wake paid
      // on the publisher's thread, for each waiting subscriber); sleeping caps the wake-ups at
      // one per window and takes them off the publisher. Back to blocking on the queue only once
      // `linger` has passed with nothing queued, so a steady stream never pays the wake.
      const absl::Duration window = options_.coalesce_window;
      const int64_t linger_windows = window > absl::ZeroDuration() ? options_.linger / window : 0;
      int64_t empty_windows = 0;
      while (!client_gone) {
        while (next) {
          EventToProto(*next, options_.node_name, &message);
          next = sub->Next(absl::ZeroDuration());
          // While more events are queued, let the transport coalesce writes (it completes a
          // hinted write at once while less than its write buffer is pending); the last write
          // of a drain is unhinted and flushes.
          grpc::WriteOptions write_options;
          if (next) write_options.set_buffer_hint();
          if (!writer->Write(message, write_options)) {
            client_gone = true;
            break;
          }
          events_sent_.fetch_add(1, std::memory_order_relaxed);
        }
        if (client_gone || window <= absl::ZeroDuration()) break;
        absl::SleepFor(window);
        if (context->IsCancelled() || sub->closed()) break;
        next = sub->Next(absl::ZeroDuration());
        if (next) {
          empty_windows = 0;
        } else if (++empty_windows > linger_windows) {
          break;  // idle: block on the queue again
        }
      }
    }

    fanout_->Detach(sub);
    {
      absl::MutexLock lock(&mu_);
      live_.erase(std::remove(live_.begin(), live_.end(), sub), live_.end());
    }
    attached_.fetch_sub(1);
    active_.fetch_sub(1);
    TAPIO_LOG(kDebug, "api: subscriber %s left (dropped %d events)", context->peer(),
              sub->dropped_total());
    return grpc::Status::OK;
  }

  grpc::Status ListContainers(grpc::ServerContext* context,
                              const v1::ListContainersRequest* request,
                              v1::ListContainersResponse* response) override {
    auto spec = SelectorSpecFromProto(request->selector(), "selector");
    absl::StatusOr<CompiledSelector> selector =
        spec.ok() ? CompiledSelector::Compile(*spec, "selector")
                  : absl::StatusOr<CompiledSelector>(spec.status());
    if (selector.ok() && selector->has_event_kinds()) {
      selector = absl::InvalidArgumentError(
          "selector.event_types: ListContainers selects containers, not events; leave it empty");
    }
    if (!selector.ok()) {
      rejected_invalid_.fetch_add(1, std::memory_order_relaxed);
      return ToGrpcStatus(selector.status());
    }
    for (const ContainerSnapshot& snapshot : state_->ListContainers()) {
      static const WorkloadIdentity kNoIdentity;
      if (!selector->MatchesIdentity(snapshot.identity ? *snapshot.identity : kNoIdentity)) {
        continue;
      }
      ContainerToProto(snapshot, response->add_containers());
    }
    return grpc::Status::OK;
  }

  grpc::Status GetAgentInfo(grpc::ServerContext* context, const v1::GetAgentInfoRequest* request,
                            v1::AgentInfo* response) override {
    AgentInfoToProto(state_->GetAgentInfo(), response);
    if (response->node().empty()) response->set_node(options_.node_name);
    response->set_subscribers(static_cast<uint32_t>(std::max(attached_.load(), 0)));
    response->set_subscriber_drops_total(fanout_->drops_total());
    response->set_last_seq(bus_->last_seq());
    response->set_oldest_retained_seq(bus_->oldest_retained_seq());
    return grpc::Status::OK;
  }

  // Makes every live and future stream end promptly.
  void StopStreams() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (const auto& sub : live_) sub->Close();
  }

  ApiServerStats stats() const {
    ApiServerStats s;
    s.subscribers = static_cast<uint64_t>(std::max(attached_.load(), 0));
    s.subscribes_total = subscribes_total_.load();
    s.rejected_invalid_total = rejected_invalid_.load();
    s.rejected_exhausted_total = rejected_exhausted_.load();
    s.events_sent_total = events_sent_.load();
    s.drops_total = fanout_->drops_total();
    s.dispatched_seq = fanout_->dispatched_seq();
    return s;
  }

 private:
  const ApiServerOptions options_;
  EventBus* const bus_;
  EventFanout* const fanout_;
  AgentStateSource* const state_;
  std::atomic<int> active_{0};    // slots taken (enforces max_subscribers)
  std::atomic<int> attached_{0};  // streams attached to the fan-out (what is reported)
  std::atomic<uint64_t> subscribes_total_{0};
  std::atomic<uint64_t> rejected_invalid_{0};
  std::atomic<uint64_t> rejected_exhausted_{0};
  std::atomic<uint64_t> events_sent_{0};
  absl::Mutex mu_;
  std::vector<std::shared_ptr<StreamQueue>> live_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Create(const ApiServerOptions& options,
                                                             EventBus* bus,
                                                             AgentStateSource* state) {
  if (bus == nullptr || state == nullptr) {
    return absl::InvalidArgumentError("ApiServer needs an EventBus and an AgentStateSource");
  }
  if (options.subscriber_queue < 1) {
    return absl::InvalidArgumentError("subscriber_queue: must be at least 1");
  }
  if (options.feed_queue < 1) {
    return absl::InvalidArgumentError("feed_queue: must be at least 1");
  }
  if (options.max_subscribers < 1) {
    return absl::InvalidArgumentError("max_subscribers: must be at least 1");
  }
  if (options.coalesce_window < absl::ZeroDuration() ||
      options.coalesce_window > absl::Milliseconds(100)) {
    return absl::InvalidArgumentError("coalesce_window: must be between 0 and 100ms");
  }
  if (options.stream_thread_nice < 0 || options.stream_thread_nice > 19) {
    return absl::InvalidArgumentError("stream_thread_nice: must be between 0 and 19");
  }
  if (options.idle_poll <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("idle_poll: must be positive");
  }
  const std::string& address = options.grpc_address;
  if (address.empty()) return absl::InvalidArgumentError("grpc_address: empty");

  std::unique_ptr<ApiServer> server(new ApiServer());
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::string listen_address;
  const bool is_unix = absl::StartsWith(address, "unix:");
  if (is_unix) {
    std::string path = address.substr(5);
    if (absl::StartsWith(path, "//")) path = path.substr(2);
    if (path.empty() || path[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("grpc_address: '", address,
                       "' must name an absolute path, e.g. unix:///run/tapio/x.sock"));
    }
    if (absl::Status s = PrepareUnixSocketPath(path); !s.ok()) return s;
    server->unix_socket_path_ = path;
    listen_address = absl::StrCat("unix:", path);
    credentials = grpc::InsecureServerCredentials();  // access control: the socket's mode
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon + 1 == address.size() ||
        address.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("grpc_address: '", address, "' is neither unix:///path nor host:port"));
    }
    listen_address = address;
    const bool any_tls = !options.tls_cert_path.empty() || !options.tls_key_path.empty() ||
                         !options.tls_client_ca_path.empty();
    if (any_tls) {
      if (options.tls_cert_path.empty() || options.tls_key_path.empty() ||
          options.tls_client_ca_path.empty()) {
        return absl::InvalidArgumentError(
            "grpc_tls_cert, grpc_tls_key, grpc_tls_client_ca: TLS on TCP needs all three (mTLS)");
      }
      auto cert = ReadFile(options.tls_cert_path, "grpc_tls_cert");
      if (!cert.ok()) return cert.status();
      auto key = ReadFile(options.tls_key_path, "grpc_tls_key");
      if (!key.ok()) return key.status();
      auto ca = ReadFile(options.tls_client_ca_path, "grpc_tls_client_ca");
      if (!ca.ok()) return ca.status();
      grpc::SslServerCredentialsOptions ssl(
          GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      ssl.pem_root_certs = *ca;
      ssl.pem_key_cert_pairs.push_back({*key, *cert});
      credentials = grpc::SslServerCredentials(ssl);
    } else if (options.insecure_tcp) {
      TAPIO_LOG(kWarning,
                "api: serving plaintext TCP on %s without authentication "
                "(grpc_insecure_tcp)",
                address);
      credentials = grpc::InsecureServerCredentials();
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("grpc_address: TCP address '", address,
                       "' needs grpc_tls_cert, grpc_tls_key and grpc_tls_client_ca (mTLS), or "
                       "grpc_insecure_tcp"));
    }
  }

  server->fanout_ = std::make_unique<EventFanout>(bus, options.feed_queue);
  server->service_ = std::make_unique<Service>(options, bus, server->fanout_.get(), state);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(listen_address, credentials, is_unix ? nullptr : &selected_port);
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || (!is_unix && selected_port == 0)) {
    return absl::UnavailableError(absl::StrCat("grpc_address: cannot listen on '", address, "'"));
  }
  if (is_unix) {
    if (chmod(server->unix_socket_path_.c_str(), 0660) != 0) {
      return absl::InternalError(absl::StrCat(
          "grpc_address: chmod 0660 '", server->unix_socket_path_, "': ", std::strerror(errno)));
    }
    server->address_ = absl::StrCat("unix://", server->unix_socket_path_);
  } else {
    server->address_ = absl::StrCat(address.substr(0, address.rfind(':')), ":", selected_port);
  }
  if (auto* health = server->server_->GetHealthCheckService()) {
    health->SetServingStatus(kServiceName, true);
  }
  TAPIO_LOG(kInfo, "api: serving %s on %s", kServiceName, server->address_);
  return server;
}

ApiServer::~ApiServer() { Shutdown(); }

void ApiServer::Shutdown() {
  if (shut_down_.exchange(true)) return;
  if (!server_) {
    if (fanout_) fanout_->Stop();
    return;
  }
  service_->StopStreams();
  if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  fanout_->Stop();
  if (!unix_socket_path_.empty()) unlink(unix_socket_path_.c_str());
}

ApiServerStats ApiServer::stats() const { return service_ ? service_->stats() : ApiServerStats{}; }

}  // namespace tapio::api
