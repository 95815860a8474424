// Kernel to subscriber latency, end to end, against a running tapio-agent (bench/api/e2e_latency.sh
// starts one with the per-fault rss_stat hook on and a one-page threshold).
//
// A child process faults in pages at --rate pages per second (bursts every millisecond, in a
// 64 MiB mapping it unmaps and maps again); with a one-page threshold every fault is one
// RSS_CHANGE record in the kernel's ring buffer, stamped by the kernel at the fault. This program
// subscribes (SubscribeBatches, or Subscribe with --batches=false) to rss_change events and, for
// every event of the child's pid, takes now - Event.time_unix_ns: the time from the fault in the
// kernel through the ring buffer, the agent's ingest, bus and fan-out, gRPC and the client's
// parse. Prints the delivered rate and the latency percentiles.
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "tapio/v1/service.grpc.pb.h"

ABSL_FLAG(std::string, address, "unix:///run/tapio/tapio.sock", "the agent's gRPC address");
ABSL_FLAG(int64_t, rate, 100000, "page faults (so RSS_CHANGE events) per second");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "how long to measure");
ABSL_FLAG(bool, batches, true, "SubscribeBatches (true) or Subscribe (false)");

namespace {

// Faults pages in at `rate` per second until killed.
[[noreturn]] void FaultStorm(int64_t rate) {
  constexpr size_t kMapping = 64 << 20;
  const long page = sysconf(_SC_PAGESIZE);
  const size_t pages = kMapping / static_cast<size_t>(page);
  const int64_t per_ms = std::max<int64_t>(1, rate / 1000);
  char* map = nullptr;
  size_t next = pages;
  timespec tick;
  clock_gettime(CLOCK_MONOTONIC, &tick);
  for (;;) {
    for (int64_t i = 0; i < per_ms; ++i) {
      if (next == pages) {
        if (map != nullptr) munmap(map, kMapping);
        map = static_cast<char*>(
            mmap(nullptr, kMapping, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (map == MAP_FAILED) _exit(1);
        next = 0;
      }
      map[next++ * static_cast<size_t>(page)] = 1;
    }
    tick.tv_nsec += 1000000;
    if (tick.tv_nsec >= 1000000000) {
      tick.tv_nsec -= 1000000000;
      ++tick.tv_sec;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, nullptr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int64_t rate = absl::GetFlag(FLAGS_rate);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);

  auto stub = tapio::v1::TapioService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_address), grpc::InsecureChannelCredentials()));
  tapio::v1::SubscribeRequest request;
  request.add_allow()->add_event_types(tapio::v1::EVENT_TYPE_RSS_CHANGE);
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<tapio::v1::EventBatch>> batches;
  std::unique_ptr<grpc::ClientReader<tapio::v1::Event>> events;
  if (absl::GetFlag(FLAGS_batches)) {
    batches = stub->SubscribeBatches(&context, request);
  } else {
    events = stub->Subscribe(&context, request);
  }

  const pid_t child = fork();
  if (child == 0) FaultStorm(rate);
  if (child < 0) {
    std::perror("fork");
    return 1;
  }

  std::atomic<bool> measuring{false};
  std::vector<int64_t> latencies;
  latencies.reserve(static_cast<size_t>(rate * absl::ToDoubleSeconds(duration) * 2) + 1024);
  uint64_t lost = 0;
  std::thread reader([&] {
    auto take = [&](const tapio::v1::Event& e, int64_t now_ns) {
      if (e.has_events_lost()) {
        if (measuring.load(std::memory_order_relaxed)) lost += e.events_lost().count();
        return;
      }
      if (e.rss_change().pid() != static_cast<uint32_t>(child)) return;
      if (measuring.load(std::memory_order_relaxed)) {
        latencies.push_back(now_ns - e.time_unix_ns());
      }
    };
    if (batches) {
      tapio::v1::EventBatch b;
      while (batches->Read(&b)) {
        const int64_t now_ns = absl::ToUnixNanos(absl::Now());
        for (const auto& e : b.events()) take(e, now_ns);
      }
    } else {
      tapio::v1::Event e;
      while (events->Read(&e)) take(e, absl::ToUnixNanos(absl::Now()));
    }
  });

  absl::SleepFor(absl::Seconds(1));  // warm-up: the agent learns the child, queues settle
  measuring = true;
  absl::SleepFor(duration);
  measuring = false;
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  context.TryCancel();
  reader.join();

  if (latencies.empty()) {
    std::fprintf(stderr,
                 "e2e_latency: no rss_change event of pid %d arrived (is the agent "
                 "running with --rss_stat_hook --rss_track_all --rss_threshold_kib=4?)\n",
                 child);
    return 1;
  }
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))] /
           1e3;
  };
  std::printf(
      "mode=%s target_rate=%lld delivered_per_s=%.0f lost=%llu p50_us=%.0f p90_us=%.0f "
      "p99_us=%.0f p999_us=%.0f max_us=%.0f\n",
      batches ? "SubscribeBatches" : "Subscribe", static_cast<long long>(rate),
      latencies.size() / absl::ToDoubleSeconds(duration), static_cast<unsigned long long>(lost),
      pct(0.50), pct(0.90), pct(0.99), pct(0.999), latencies.back() / 1e3);
  return 0;
}
