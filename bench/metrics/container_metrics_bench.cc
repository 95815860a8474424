// Cost of the metrics path: Observe() per event (on the feed thread) and Collect()+serialise
// per scrape, for N containers. Results: docs/performance/metrics.md.
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "agent/metrics/container_metrics.h"
#include "benchmark/benchmark.h"
#include "prometheus/text_serializer.h"

namespace tapio::metrics {
namespace {

std::vector<std::shared_ptr<const WorkloadIdentity>> Identities(int n) {
  std::vector<std::shared_ptr<const WorkloadIdentity>> ids;
  for (int i = 0; i < n; ++i) {
    auto id = std::make_shared<WorkloadIdentity>();
    id->cgroup_id = 1000 + i;
    id->cgroup_path = "/kubepods/burstable/pod" + std::to_string(i) + "/c";
    id->container_id = std::string(64, 'a');
    id->container_name = "app";
    id->pod_name = "pod-" + std::to_string(i);
    id->pod_namespace = "ns-" + std::to_string(i % 10);
    ids.push_back(std::move(id));
  }
  return ids;
}

std::unique_ptr<ContainerMetrics> Make() {
  auto m = ContainerMetrics::Create(ContainerMetrics::Options{});
  return std::move(*m);
}

void BM_ObserveUsage(benchmark::State& state) {
  auto ids = Identities(static_cast<int>(state.range(0)));
  auto m = Make();
  Event e;
  MemoryUsage u;
  u.usage_bytes = 1 << 20;
  e.payload = u;
  size_t i = 0;
  for (auto _ : state) {
    e.identity = ids[i++ % ids.size()];
    m->Observe(e);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ObserveUsage)->Arg(100)->Arg(1000);

void BM_ScrapeText(benchmark::State& state) {
  auto ids = Identities(static_cast<int>(state.range(0)));
  auto m = Make();
  for (const auto& id : ids) {
    Event e;
    e.identity = id;
    e.payload = MemoryUsage{};
    m->Observe(e);
    OomPrediction p;
    p.time_to_oom_ms = 1000;
    e.payload = p;
    m->Observe(e);
  }
  size_t bytes = 0;
  for (auto _ : state) {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, m->Collect());
    bytes = out.str().size();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["exposition_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ScrapeText)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tapio::metrics
