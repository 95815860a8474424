// ApiServer: the agent's gRPC endpoint (tapio.v1.TapioService, grpc.health.v1.Health, server
// reflection). The server is one subscriber of the EventBus and fans events out to its streams
// itself (EventFanout), so the pipeline's Publish costs the same for 1 or 100 streams. Each
// stream has a bounded queue: a slow client loses events (counted, told in-band as EventsLost)
// and never slows the pipeline or other clients; a client that cancels or vanishes frees it.
//
// Transport (ApiServerOptions::grpc_address):
//  - "unix:///path" (default /run/tapio/tapio.sock): the directory is created (0755) if missing,
//    a stale socket file is removed (a socket someone still serves is an error), and the socket is
//    chmod 0660 right after it is bound.
//  - "host:port": TCP, only with TLS and verified client certificates (mTLS) from tls_cert_path,
//    tls_key_path, tls_client_ca_path, unless insecure_tcp is set. Port 0 picks a free port;
//    address() reports it.
//
// Threads: Subscribe streams are asynchronous calls on one completion queue served by one thread
// (no thread per stream); writes start there or on the fan-out's dispatcher thread, from the
// wire form the fan-out serialized once per event. ListContainers and GetAgentInfo run on gRPC's
// synchronous pool and only read the AgentStateSource (thread-safe by contract) and this class's
// counters. Lifetime: `bus` and `state` must outlive the server.
#ifndef TAPIO_AGENT_API_SERVER_H_
#define TAPIO_AGENT_API_SERVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/api/state_source.h"
#include "agent/core/event_bus.h"

namespace grpc {
class Server;
class ServerCompletionQueue;
}  // namespace grpc

namespace tapio::api {

class EventFanout;

// Every field corresponds to one agent flag; the lead defines the flags in the agent's main.
struct ApiServerOptions {
  std::string grpc_address = "unix:///run/tapio/tapio.sock";  // --grpc_address
  std::string tls_cert_path;       // --grpc_tls_cert: PEM server certificate chain
  std::string tls_key_path;        // --grpc_tls_key: PEM private key
  std::string tls_client_ca_path;  // --grpc_tls_client_ca: PEM CA bundle client certs must chain to
  bool insecure_tcp = false;       // --grpc_insecure_tcp: allow plaintext TCP (no TLS, no auth)
  size_t subscriber_queue = 4096;  // --subscriber_queue: events buffered per subscriber, >= 1
  // The server is one subscriber of the EventBus and fans out itself (agent/api/fanout.h): this
  // is its bus queue. If the fan-out falls this far behind, every stream is told of the loss.
  size_t feed_queue = 65536;
  int max_subscribers = 64;  // --max_subscribers: concurrent Subscribe streams, >= 1
  std::string node_name;     // Event.node in every event sent
  // Nice value (0..19) of the threads that write Subscribe streams (the stream thread and the
  // fan-out's dispatcher), so that on a
  // CPU-saturated node the pipeline threads (ingest, sampler, Publish) win over the fan-out and
  // slow subscribers lose events instead of slowing the pipeline. 0 = leave priorities alone.
  int stream_thread_nice = 10;
};

// Counters of the server's own decisions, for the agent's metrics.
struct ApiServerStats {
  uint64_t subscribers = 0;               // current Subscribe streams
  uint64_t subscribes_total = 0;          // accepted Subscribe streams, ever
  uint64_t rejected_invalid_total = 0;    // INVALID_ARGUMENT answers (any method)
  uint64_t rejected_exhausted_total = 0;  // RESOURCE_EXHAUSTED answers
  uint64_t events_sent_total = 0;         // events written to streams
  uint64_t dispatched_seq = 0;            // last bus seq the fan-out handed to the streams
  uint64_t drops_total = 0;               // events dropped for slow streams (and the feed)
};

class ApiServer {
 public:
  // Validates `options` (errors name the option: "grpc_address: ..."), binds and starts serving.
  static absl::StatusOr<std::unique_ptr<ApiServer>> Create(const ApiServerOptions& options,
                                                           EventBus* bus, AgentStateSource* state);
  ~ApiServer();  // Shutdown()
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Ends every stream (clients see the stream finish), stops serving, removes the unix socket.
  // Idempotent; waits at most ~1 s for handlers to return.
  void Shutdown();

  // The address clients dial: "unix:///path" or "host:port" with the chosen port.
  const std::string& address() const { return address_; }
  ApiServerStats stats() const;

  class Service;  // implementation detail (server.cc)

 private:
  ApiServer() = default;

  std::string address_;
  std::string unix_socket_path_;         // "" for TCP
  std::unique_ptr<EventFanout> fanout_;  // outlives service_ and server_
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;  // Subscribe calls (Service::Run)
  std::thread stream_thread_;                        // runs Service::Run
  std::atomic<bool> shut_down_{false};
};

}  // namespace tapio::api

#endif  // TAPIO_AGENT_API_SERVER_H_
