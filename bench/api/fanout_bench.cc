// Fan-out of the gRPC event API over a real unix socket: an EventBus feeding an ApiServer, with
// N real C++ client streams (each on its own connection) of which some never read ("stalled").
//
// One benchmark run = one configuration held for --duration (Iterations(1), real time):
//   args: subscribers, stalled, target_rate (events/s; 0 = publish as fast as possible),
//         nice (ApiServerOptions::stream_thread_nice, also applied to the client threads, which
//         stand in for other processes), batch (1: the clients use SubscribeBatches)
// Counters:
//   publish_per_s    events the publisher thread got through Publish() per second
//   delivered_per_s  events received by all reading clients together, per second
//   per_reader_per_s delivered_per_s / reading clients
//   drops            events dropped for slow subscribers (ApiServerStats::drops_total)
//   feed_drops       of those, events the server's own bus feed dropped (fan-out too slow)
//   lat_p50_us / lat_p99_us / lat_max_us   publish -> client Read() returned, over every event
//                    every reading client received (wall clock, same host)
//
// Run: build-api/bench/api/api_fanout_bench --benchmark_counters_tabular=true
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/api/server.h"
#include "agent/core/log.h"
#include "benchmark/benchmark.h"
#include "grpcpp/grpcpp.h"
#include "tapio/v1/service.grpc.pb.h"

namespace tapio::api {
namespace {

constexpr absl::Duration kDuration = absl::Seconds(2);
constexpr absl::Duration kWarmup = absl::Milliseconds(200);

class NoState : public AgentStateSource {
 public:
  std::vector<ContainerSnapshot> ListContainers() const override { return {}; }
  AgentInfo GetAgentInfo() const override { return {}; }
};

struct Client {
  std::unique_ptr<v1::TapioService::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::Event>> reader;
  std::unique_ptr<grpc::ClientReader<v1::EventBatch>> batch_reader;
  std::thread thread;
  std::atomic<uint64_t> received{0};
  std::vector<int64_t> latencies_ns;  // written by `thread` only, read after join
};

void BM_FanOut(benchmark::State& state) {
  const int subscribers = static_cast<int>(state.range(0));
  const int stalled = static_cast<int>(state.range(1));
  const int64_t target_rate = state.range(2);
  const int nice = static_cast<int>(state.range(3));
  const bool batch = state.range(4) != 0;
  SetLogLevel(LogLevel::kWarning);

  char tmpl[] = "/tmp/tapio-api-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  EventBus bus(65536);
  NoState no_state;
  ApiServerOptions options;
  options.grpc_address = absl::StrCat("unix://", dir, "/tapio.sock");
  options.subscriber_queue = 4096;
  options.max_subscribers = subscribers + 1;
  options.node_name = "bench";
  options.stream_thread_nice = nice;
  auto server = ApiServer::Create(options, &bus, &no_state);
  if (!server.ok()) {
    state.SkipWithError(std::string(server.status().message()).c_str());
    return;
  }

  std::atomic<bool> measuring{false};
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < subscribers; ++i) {
    auto c = std::make_unique<Client>();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    c->stub = v1::TapioService::NewStub(
        grpc::CreateCustomChannel((*server)->address(), grpc::InsecureChannelCredentials(), args));
    if (batch) {
      c->batch_reader = c->stub->SubscribeBatches(&c->context, v1::SubscribeRequest());
    } else {
      c->reader = c->stub->Subscribe(&c->context, v1::SubscribeRequest());
    }
    if (i >= stalled) {
      Client* raw = c.get();
      c->latencies_ns.reserve(1 << 20);
      c->thread = std::thread([raw, &measuring, nice] {
        // The clients stand in for other processes; give them the handlers' priority.
        if (nice > 0) setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), nice);
        auto take = [&](const v1::Event& e, int64_t now_ns) {
          if (e.seq() == 0) return;  // in-band loss notice
          if (measuring.load(std::memory_order_relaxed)) {
            raw->latencies_ns.push_back(now_ns - e.time_unix_ns());
            raw->received.fetch_add(1, std::memory_order_relaxed);
          }
        };
        if (raw->batch_reader) {
          v1::EventBatch b;
          while (raw->batch_reader->Read(&b)) {
            const int64_t now_ns = absl::ToUnixNanos(absl::Now());
            for (const v1::Event& e : b.events()) take(e, now_ns);
          }
        } else {
          v1::Event e;
          while (raw->reader->Read(&e)) take(e, absl::ToUnixNanos(absl::Now()));
        }
      });
    }
    clients.push_back(std::move(c));
  }
  while ((*server)->stats().subscribers < static_cast<uint64_t>(subscribers)) {
    absl::SleepFor(absl::Milliseconds(1));
  }

  auto identity = std::make_shared<WorkloadIdentity>();
  identity->cgroup_id = 1234;
  identity->cgroup_path = "/kubepods/burstable/pod0/c0";
  identity->pod_namespace = "bench";
  identity->pod_name = "web-0";
  identity->container_name = "app";
  auto publish_one = [&] {
    Event e;
    e.time_unix_ns = absl::ToUnixNanos(absl::Now());
    e.identity = identity;
    MemoryUsage u;
    u.usage_bytes = 100 << 20;
    u.limit_bytes = 128 << 20;
    e.payload = u;
    bus.Publish(std::move(e));
  };

  uint64_t published = 0;
  uint64_t drops_before = 0;
  absl::Duration elapsed;
  for (auto _ : state) {
    // Warm-up at the target rate, then measure.
    for (int phase = 0; phase < 2; ++phase) {
      const absl::Duration span = phase == 0 ? kWarmup : kDuration;
      if (phase == 1) {
        drops_before = (*server)->stats().drops_total;
        measuring = true;
      }
      const absl::Time start = absl::Now();
      const absl::Time end = start + span;
      uint64_t n = 0;
      absl::Time now = start;
      while (now < end) {
        if (target_rate > 0) {
          // Publish what is due by now (1 ms granularity bursts at most), then sleep.
          const uint64_t due =
              static_cast<uint64_t>(absl::ToDoubleSeconds(now - start) * target_rate);
          while (n < due) {
            publish_one();
            // A publisher that falls behind still stops at the end of the window.
            if ((++n & 63) == 0 && absl::Now() >= end) break;
          }
          absl::SleepFor(absl::Microseconds(200));
        } else {
          for (int i = 0; i < 256; ++i) publish_one();
          n += 256;
        }
        now = absl::Now();
      }
      if (phase == 1) {
        published = n;
        elapsed = now - start;
      }
    }
    measuring = false;
  }
  const uint64_t drops = (*server)->stats().drops_total - drops_before;
  const uint64_t feed_drops = bus.subscriber_drops_total();
  absl::SleepFor(absl::Milliseconds(200));  // let in-flight events arrive (not counted)
  (*server)->Shutdown();
  std::vector<int64_t> latencies;
  uint64_t delivered = 0;
  for (auto& c : clients) {
    c->context.TryCancel();
    if (c->thread.joinable()) c->thread.join();
    delivered += c->received.load();
    latencies.insert(latencies.end(), c->latencies_ns.begin(), c->latencies_ns.end());
  }
  clients.clear();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);

  const double seconds = absl::ToDoubleSeconds(elapsed);
  const int readers = subscribers - stalled;
  state.counters["publish_per_s"] = published / seconds;
  state.counters["delivered_per_s"] = delivered / seconds;
  state.counters["per_reader_per_s"] = readers > 0 ? delivered / seconds / readers : 0;
  state.counters["drops"] = static_cast<double>(drops);
  state.counters["feed_drops"] = static_cast<double>(feed_drops);
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    auto pct = [&](double p) {
      return latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))] /
             1e3;
    };
    state.counters["lat_p50_us"] = pct(0.50);
    state.counters["lat_p99_us"] = pct(0.99);
    state.counters["lat_max_us"] = latencies.back() / 1e3;
  }
}

// {subscribers, stalled, target events/s, stream_thread_nice, batch}
BENCHMARK(BM_FanOut)
    ->ArgNames({"subs", "stalled", "rate", "nice", "batch"})
    // As fast as the publisher can go.
    ->Args({0, 0, 0, 10, 0})
    ->Args({1, 0, 0, 10, 0})
    ->Args({10, 0, 0, 10, 0})
    ->Args({100, 10, 0, 10, 0})
    // At 100,000 events/s, then 10,000 events/s.
    ->Args({0, 0, 100000, 10, 0})
    ->Args({1, 0, 100000, 10, 0})
    ->Args({10, 0, 100000, 10, 0})
    ->Args({100, 10, 100000, 10, 0})
    ->Args({1, 0, 10000, 10, 0})
    ->Args({10, 0, 10000, 10, 0})
    ->Args({100, 10, 10000, 10, 0})
    // SubscribeBatches: the same rows.
    ->Args({1, 0, 0, 10, 1})
    ->Args({10, 0, 0, 10, 1})
    ->Args({100, 10, 0, 10, 1})
    ->Args({1, 0, 100000, 10, 1})
    ->Args({10, 0, 100000, 10, 1})
    ->Args({100, 10, 100000, 10, 1})
    ->Args({1, 0, 10000, 10, 1})
    ->Args({10, 0, 10000, 10, 1})
    ->Args({100, 10, 10000, 10, 1})
    // Stream threads at normal priority, for comparison.
    ->Args({1, 0, 100000, 0, 0})
    ->Args({1, 0, 100000, 0, 1})
    ->Args({100, 10, 10000, 0, 0})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tapio::api
