// Costs of attribution on the pipeline's hot path and of a registry refresh, with an in-memory
// CriClient (no runtime: the RPC cost is measured by the e2e test against containerd).
//   build-x/bench/attrib/attrib_bench
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/attrib/cgroup_path_parser.h"
#include "agent/attrib/container_registry.h"
#include "agent/attrib/cri_client.h"
#include "benchmark/benchmark.h"

namespace tapio::attrib {
namespace {

std::string Hex64(uint64_t n) { return absl::StrFormat("%064x", n); }
std::string Uid(uint64_t n) { return absl::StrFormat("%08x-0000-4000-8000-%012x", n, n); }

// N pods with one container each, kubelet labels, two pod labels.
class FakeCri : public CriClient {
 public:
  explicit FakeCri(int n) {
    for (int i = 0; i < n; ++i) {
      CriPodSandbox s;
      s.id = Hex64(1000000 + i);
      s.name = absl::StrCat("pod-", i);
      s.pod_namespace = "bench";
      s.uid = Uid(i);
      s.ready = true;
      s.labels = {{std::string(kLabelPodName), s.name},
                  {std::string(kLabelPodNamespace), "bench"},
                  {std::string(kLabelPodUid), s.uid},
                  {"app", absl::StrCat("app-", i % 10)},
                  {"pod-template-hash", "7d9f8b6c5d"}};
      sandboxes_.push_back(s);
      CriContainer c;
      c.id = Hex64(i);
      c.pod_sandbox_id = s.id;
      c.name = "main";
      c.state = CriContainerState::kRunning;
      c.labels = {{std::string(kLabelContainerName), "main"},
                  {std::string(kLabelPodName), s.name},
                  {std::string(kLabelPodNamespace), "bench"},
                  {std::string(kLabelPodUid), s.uid}};
      containers_.push_back(c);
    }
  }
  absl::StatusOr<CriVersion> Version() override { return CriVersion{"fake", "0", "v1"}; }
  absl::StatusOr<std::vector<CriContainer>> ListContainers() override { return containers_; }
  absl::StatusOr<std::vector<CriPodSandbox>> ListPodSandbox() override { return sandboxes_; }
  absl::StatusOr<CriContainerStatus> ContainerStatus(absl::string_view id, bool) override {
    CriContainerStatus st;
    st.id = std::string(id);
    return st;
  }
  std::string Path(int i) const {
    return absl::StrCat("/kubepods/burstable/pod", Uid(i), "/", Hex64(i));
  }

 private:
  std::vector<CriPodSandbox> sandboxes_;
  std::vector<CriContainer> containers_;
};

std::unique_ptr<ContainerRegistry> MakeRegistry(int n, FakeCri** fake) {
  auto cri = std::make_unique<FakeCri>(n);
  *fake = cri.get();
  ContainerRegistry::Options o;
  o.mode = ContainerRegistry::Mode::kCri;
  o.start_thread = false;
  o.max_status_calls_per_refresh = 1 << 20;
  auto reg = ContainerRegistry::Create(o, std::move(cri));
  (void)(*reg)->RefreshOnce();
  return *std::move(reg);
}

void BM_ParseCgroupPathCgroupfs(benchmark::State& state) {
  const std::string p = absl::StrCat("/kubepods/burstable/pod", Uid(7), "/", Hex64(7));
  for (auto _ : state) benchmark::DoNotOptimize(ParseCgroupPath(p));
}
BENCHMARK(BM_ParseCgroupPathCgroupfs);

void BM_ParseCgroupPathSystemd(benchmark::State& state) {
  std::string uid = Uid(7);
  for (char& c : uid) c = c == '-' ? '_' : c;
  const std::string p =
      absl::StrCat("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod", uid,
                   ".slice/cri-containerd-", Hex64(7), ".scope");
  for (auto _ : state) benchmark::DoNotOptimize(ParseCgroupPath(p));
}
BENCHMARK(BM_ParseCgroupPathSystemd);

// The per-event cost once a cgroup is known: what every BPF event pays.
void BM_ResolveCacheHit(benchmark::State& state) {
  FakeCri* fake;
  auto reg = MakeRegistry(static_cast<int>(state.range(0)), &fake);
  std::vector<std::string> paths;
  for (int i = 0; i < state.range(0); ++i) paths.push_back(fake->Path(i));
  for (size_t i = 0; i < paths.size(); ++i) reg->Resolve(i + 1, paths[i]);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(reg->Resolve(i + 1, paths[i]));
    if (++i == paths.size()) i = 0;
  }
}
BENCHMARK(BM_ResolveCacheHit)->Arg(200)->Arg(5000);

// First event of a cgroup after a change: parse + join + build the shared identity.
void BM_ResolveBuild(benchmark::State& state) {
  FakeCri* fake;
  auto reg = MakeRegistry(200, &fake);
  std::vector<std::string> paths;
  for (int i = 0; i < 200; ++i) paths.push_back(fake->Path(i));
  uint64_t id = 1;
  for (auto _ : state) {
    // A new cgroup id each time: never a cache hit (the cache is cleared at its bound).
    benchmark::DoNotOptimize(reg->Resolve(id, paths[id % paths.size()]));
    ++id;
  }
}
BENCHMARK(BM_ResolveBuild);

// One steady-state refresh (lists unchanged) with N containers, RPCs excluded.
void BM_RefreshUnchanged(benchmark::State& state) {
  FakeCri* fake;
  auto reg = MakeRegistry(static_cast<int>(state.range(0)), &fake);
  for (auto _ : state) benchmark::DoNotOptimize(reg->RefreshOnce());
  state.counters["registry_bytes"] = static_cast<double>(reg->ApproximateMemoryBytes());
}
BENCHMARK(BM_RefreshUnchanged)->Arg(200)->Arg(1000)->Arg(5000)->Unit(benchmark::kMicrosecond);

// Registry memory with N containers and every container's cgroup resolved once.
void BM_RegistryMemory(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    FakeCri* fake;
    auto reg = MakeRegistry(n, &fake);
    for (int i = 0; i < n; ++i) reg->Resolve(i + 1, fake->Path(i));
    state.counters["registry_bytes"] = static_cast<double>(reg->ApproximateMemoryBytes());
    state.counters["bytes_per_container"] = static_cast<double>(reg->ApproximateMemoryBytes()) / n;
  }
}
BENCHMARK(BM_RegistryMemory)->Arg(200)->Arg(5000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tapio::attrib
