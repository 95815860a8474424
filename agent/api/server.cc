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
#include "google/protobuf/io/coded_stream.h"
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

// Serializes `event` as a tapio.v1.Event straight into a gRPC slice (no intermediate string).
grpc::Slice EncodeEvent(const Event& event, absl::string_view node) {
  thread_local v1::Event message;
  message.Clear();
  EventToProto(event, node, &message);
  grpc::Slice slice(message.ByteSizeLong());
  message.SerializeWithCachedSizesToArray(const_cast<uint8_t*>(slice.begin()));
  return slice;
}

// SubscribeBatches packs at most this much into one message (gRPC clients accept 4 MiB).
constexpr size_t kMaxBatchEvents = 4096;
constexpr size_t kMaxBatchBytes = 1 << 20;

// A tapio.v1.EventBatch from serialized events: each is field 1 (`events`), length-delimited,
// so the batch is built by copying bytes, with no second serialization.
grpc::Slice EncodeBatch(const std::vector<grpc::Slice>& events) {
  using google::protobuf::io::CodedOutputStream;
  constexpr uint8_t kEventsTag = (1 << 3) | 2;  // field 1, wire type LEN
  size_t size = 0;
  for (const grpc::Slice& e : events) {
    size += 1 + CodedOutputStream::VarintSize32(static_cast<uint32_t>(e.size())) + e.size();
  }
  grpc::Slice batch(size);
  uint8_t* out = const_cast<uint8_t*>(batch.begin());
  for (const grpc::Slice& e : events) {
    *out++ = kEventsTag;
    out = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(e.size()), out);
    std::memcpy(out, e.begin(), e.size());
    out += e.size();
  }
  return batch;
}

}  // namespace

// Subscribe is served asynchronously on one completion queue, driven by one thread (Run): no
// thread per stream, and each event is written from the wire form the fan-out serialized once
// for every stream (StreamItem::wire). ListContainers and GetAgentInfo stay synchronous.
class ApiServer::Service final
    : public v1::TapioService::WithRawMethod_Subscribe<
          v1::TapioService::WithRawMethod_SubscribeBatches<v1::TapioService::Service>> {
 public:
  Service(const ApiServerOptions& options, EventBus* bus, EventFanout* fanout,
          AgentStateSource* state)
      : options_(options), bus_(bus), fanout_(fanout), state_(state) {}

  // Waits for the first Subscribe and SubscribeBatches calls on `cq`. Called before the thread
  // that runs `cq` exists: the two waiting calls are counted (calls_) before Shutdown can look,
  // so Shutdown never shuts the queue down under a request still to be made.
  void Start(grpc::ServerCompletionQueue* cq) {
    cq_ = cq;
    Call::Request(this, /*batched=*/false);
    Call::Request(this, /*batched=*/true);
  }

  // Serves Subscribe calls from the started queue until it is shut down and drained.
  void Run() {
    LowerThreadPriority(options_.stream_thread_nice);
    grpc::ServerCompletionQueue* cq = cq_;
    void* tag = nullptr;
    bool ok = false;
    while (cq->Next(&tag, &ok)) static_cast<Call::Tag*>(tag)->Done(ok);
  }

  // After the server's Shutdown (which cancels every call): waits until every call has seen its
  // last tag, so the completion queue can be shut down with no operation left to start on it.
  void AwaitCallsGone(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto gone = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_ == 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&gone), timeout)) {
      TAPIO_LOG(kWarning, "api: %d subscribe calls still open at shutdown", calls_);
    }
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
    std::vector<std::shared_ptr<StreamQueue>> live;
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      live = live_;
    }
    for (const auto& queue : live) queue->Close();  // wakes its stream: outside our lock
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
  // One Subscribe call: from the request (a Call waits for it) to its last tag. At most one
  // operation (write or Finish) is in flight; Pump() starts the next write when the previous
  // completes (on the queue's thread) or when the stream's queue, empty until then, receives
  // something (the fan-out's wake, on its dispatcher thread). A write is hinted (coalesced by
  // the transport) while more is queued; the last of a burst flushes. Owned by `self_` until
  // gRPC holds none of its tags, and by a wake while one runs.
  class Call {
   public:
    struct Tag {
      Call* call;
      void (Call::*on_done)(bool ok);
      void Done(bool ok) { (call->*on_done)(ok); }
    };

    // Starts waiting for the next Subscribe (or SubscribeBatches) call.
    static void Request(Service* service, bool batched) {
      auto call = std::shared_ptr<Call>(new Call(service, batched));
      call->self_ = call;
      {
        absl::MutexLock lock(&service->mu_);
        ++service->calls_;
      }
      call->context_.AsyncNotifyWhenDone(&call->done_tag_);
      if (batched) {
        service->RequestSubscribeBatches(&call->context_, &call->request_, &call->writer_,
                                         service->cq_, service->cq_, &call->request_tag_);
      } else {
        service->RequestSubscribe(&call->context_, &call->request_, &call->writer_, service->cq_,
                                  service->cq_, &call->request_tag_);
      }
    }

   private:
    Call(Service* service, bool batched)
        : service_(service), batched_(batched), writer_(&context_) {}

    void OnRequest(bool ok) {
      if (!ok) {  // shutting down: no call came, and no other tag will
        Release();
        return;
      }
      Request(service_, batched_);  // the next caller
      const grpc::Status refused = Accept();
      absl::MutexLock lock(&mu_);
      in_flight_ = true;
      if (!refused.ok()) {
        finished_ = true;
        writer_.Finish(refused, &finish_tag_);
      } else {
        // Headers first, on their own: the stream is established for the client at once.
        writer_.SendInitialMetadata(&write_tag_);
      }
    }

    // Validates the request and attaches the stream; a non-OK status refuses the call.
    grpc::Status Accept() {
      v1::SubscribeRequest request;
      if (!grpc::SerializationTraits<v1::SubscribeRequest>::Deserialize(&request_, &request).ok()) {
        service_->rejected_invalid_.fetch_add(1, std::memory_order_relaxed);
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request: not a SubscribeRequest");
      }
      auto spec = FilterSpecFromProto(request);
      absl::StatusOr<EventFilter> filter =
          spec.ok() ? EventFilter::Compile(*spec) : absl::StatusOr<EventFilter>(spec.status());
      if (!filter.ok()) {
        service_->rejected_invalid_.fetch_add(1, std::memory_order_relaxed);
        return ToGrpcStatus(filter.status());
      }
      if (service_->active_.fetch_add(1) >= service_->options_.max_subscribers) {
        service_->active_.fetch_sub(1);
        service_->rejected_exhausted_.fetch_add(1, std::memory_order_relaxed);
        return ToGrpcStatus(absl::ResourceExhaustedError(
            absl::StrCat("the agent already serves ", service_->options_.max_subscribers,
                         " subscribers (max_subscribers)")));
      }
      std::optional<uint64_t> resume_after;
      if (request.has_resume_after()) resume_after = request.resume_after();
      auto queue =
          service_->fanout_->Attach(std::make_shared<const EventFilter>(*std::move(filter)),
                                    service_->options_.subscriber_queue, resume_after);
      std::weak_ptr<Call> weak = self_;
      queue->SetWake([weak] {
        if (auto call = weak.lock()) call->Pump();
      });
      {
        absl::MutexLock lock(&mu_);
        queue_ = queue;
      }
      {
        absl::MutexLock lock(&service_->mu_);
        if (service_->stopping_) queue->Close();
        service_->live_.push_back(queue);
      }
      // Counted as a subscriber only once attached: a client that sees `subscribers` include
      // it can rely on its stream receiving what is published from then on.
      service_->attached_.fetch_add(1);
      service_->subscribes_total_.fetch_add(1, std::memory_order_relaxed);
      TAPIO_LOG(kDebug, "api: subscriber %s joined (%d active)", context_.peer(),
                service_->active_.load());
      return grpc::Status::OK;
    }

    void OnWrite(bool ok) {
      {
        absl::MutexLock lock(&mu_);
        in_flight_ = false;
        if (!ok) broken_ = true;  // the client went away (or the server is shutting down)
        if (ok) service_->events_sent_.fetch_add(events_in_write_, std::memory_order_relaxed);
        events_in_write_ = 0;
      }
      Pump();
    }

    void OnFinish(bool /*ok*/) {
      {
        absl::MutexLock lock(&mu_);
        in_flight_ = false;
      }
      MaybeRelease();
    }

    void OnCallDone(bool /*ok*/) {
      {
        absl::MutexLock lock(&mu_);
        call_done_ = true;
        broken_ = true;  // finished or cancelled: nothing more will be written
      }
      Pump();
    }

    void Pump() {
      LowerThreadPriority(service_->options_.stream_thread_nice);  // also the dispatcher's
      {
        absl::MutexLock lock(&mu_);
        if (in_flight_ || finished_ || !queue_) {
          // Busy, over, or refused/not yet attached: nothing to start.
        } else if (broken_) {
          finished_ = true;  // a cancelled call needs no Finish: its done tag comes anyway
        } else {
          // One event (Subscribe), or every queued one up to the caps (SubscribeBatches).
          const size_t max_events = batched_ ? kMaxBatchEvents : 1;
          size_t bytes = 0;
          StreamQueue::PopResult pop = StreamQueue::PopResult::kEmpty;
          StreamItem item;
          batch_.clear();
          while (batch_.size() < max_events && bytes < kMaxBatchBytes &&
                 (pop = queue_->TryPop(&item)) == StreamQueue::PopResult::kItem) {
            batch_.push_back(item.wire.size() > 0
                                 ? std::move(item.wire)
                                 : EncodeEvent(*item.event, service_->options_.node_name));
            bytes += batch_.back().size();
          }
          if (batch_.empty() && pop == StreamQueue::PopResult::kEmpty) {
            return;  // woken when something arrives
          }
          if (batch_.empty()) {  // closed: end the stream
            finished_ = true;
            in_flight_ = true;
            writer_.Finish(grpc::Status::OK, &finish_tag_);
            return;
          }
          const size_t events = batch_.size();
          if (batched_) {
            grpc::Slice wire = EncodeBatch(batch_);
            buffer_ = grpc::ByteBuffer(&wire, 1);
          } else {
            buffer_ = grpc::ByteBuffer(batch_.data(), 1);
          }
          batch_.clear();
          grpc::WriteOptions options;
          if (!queue_->empty()) options.set_buffer_hint();
          in_flight_ = true;
          events_in_write_ = events;
          writer_.Write(buffer_, options, &write_tag_);
          return;
        }
      }
      MaybeRelease();
    }

    // Drops the call once gRPC holds none of its tags.
    void MaybeRelease() {
      {
        absl::MutexLock lock(&mu_);
        if (!call_done_ || in_flight_ || released_) return;
        released_ = true;
      }
      Release();
    }

    void Release() {
      std::shared_ptr<StreamQueue> queue;
      {
        absl::MutexLock lock(&mu_);
        queue = queue_;
      }
      if (queue) service_->Retire(queue, context_.peer());
      std::shared_ptr<Call> self = std::move(self_);
      {
        absl::MutexLock lock(&service_->mu_);
        --service_->calls_;
      }
      // `self` going out of scope may destroy this call (unless a wake still holds it).
    }

    Service* const service_;
    const bool batched_;  // SubscribeBatches: EventBatch messages
    grpc::ServerContext context_;
    grpc::ByteBuffer request_;
    grpc::ServerAsyncWriter<grpc::ByteBuffer> writer_;
    Tag request_tag_{this, &Call::OnRequest};
    Tag write_tag_{this, &Call::OnWrite};
    Tag finish_tag_{this, &Call::OnFinish};
    Tag done_tag_{this, &Call::OnCallDone};
    std::shared_ptr<Call> self_;  // dropped by Release
    absl::Mutex mu_;
    std::shared_ptr<StreamQueue> queue_ ABSL_GUARDED_BY(mu_);  // set once accepted
    bool in_flight_ ABSL_GUARDED_BY(mu_) = false;              // a write or Finish awaits its tag
    uint64_t events_in_write_ ABSL_GUARDED_BY(mu_) = 0;        // events the write in flight carries
    bool broken_ ABSL_GUARDED_BY(mu_) = false;                 // cancelled, done, or a write failed
    bool finished_ ABSL_GUARDED_BY(mu_) = false;               // Finish started (or not needed)
    bool call_done_ ABSL_GUARDED_BY(mu_) = false;              // the done tag came
    bool released_ ABSL_GUARDED_BY(mu_) = false;
    grpc::ByteBuffer buffer_;         // the write in flight
    std::vector<grpc::Slice> batch_;  // scratch: the events of the next batch
  };

  // A stream's end: frees its queue and its subscriber slot.
  void Retire(const std::shared_ptr<StreamQueue>& queue, const std::string& peer) {
    fanout_->Detach(queue);
    {
      absl::MutexLock lock(&mu_);
      live_.erase(std::remove(live_.begin(), live_.end(), queue), live_.end());
    }
    attached_.fetch_sub(1);
    active_.fetch_sub(1);
    TAPIO_LOG(kDebug, "api: subscriber %s left (dropped %d events)", peer, queue->dropped_total());
  }

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
  grpc::ServerCompletionQueue* cq_ = nullptr;  // set by Start, before the first call
  absl::Mutex mu_;
  std::vector<std::shared_ptr<StreamQueue>> live_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;  // Call objects alive (waiting ones included)
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
  if (options.stream_thread_nice < 0 || options.stream_thread_nice > 19) {
    return absl::InvalidArgumentError("stream_thread_nice: must be between 0 and 19");
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

  server->fanout_ = std::make_unique<EventFanout>(
      bus, options.feed_queue,
      [node = options.node_name](const Event& event) { return EncodeEvent(event, node); });
  server->service_ = std::make_unique<Service>(options, bus, server->fanout_.get(), state);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second agent on the same TCP port would silently take
  // half of the connections. A taken port is an error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int selected_port = 0;
  builder.AddListeningPort(listen_address, credentials, is_unix ? nullptr : &selected_port);
  builder.RegisterService(server->service_.get());
  server->cq_ = builder.AddCompletionQueue();
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
  server->service_->Start(server->cq_.get());
  server->stream_thread_ = std::thread([s = server.get()] { s->service_->Run(); });
  if (auto* health = server->server_->GetHealthCheckService()) {
    health->SetServingStatus(kServiceName, true);
  }
  TAPIO_LOG(kInfo, "api: serving %s on %s", kServiceName, server->address_);
  return server;
}

ApiServer::~ApiServer() { Shutdown(); }

void ApiServer::Shutdown() {
  if (shut_down_.exchange(true)) return;
  // A queue no call was ever requested on (Create failed before the stream thread started).
  auto drain_unused_queue = [this] {
    if (!cq_ || stream_thread_.joinable()) return;
    cq_->Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_->Next(&tag, &ok)) {
    }
  };
  if (!server_) {
    drain_unused_queue();
    if (fanout_) fanout_->Stop();
    return;
  }
  service_->StopStreams();
  if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  // Every call is cancelled now; once their last tags are handled nothing starts an operation,
  // and the queue can shut down.
  if (stream_thread_.joinable()) {
    service_->AwaitCallsGone(absl::Seconds(5));
    cq_->Shutdown();
    stream_thread_.join();
  } else {
    drain_unused_queue();
  }
  fanout_->Stop();
  if (!unix_socket_path_.empty()) unlink(unix_socket_path_.c_str());
}

ApiServerStats ApiServer::stats() const { return service_ ? service_->stats() : ApiServerStats{}; }

}  // namespace tapio::api
