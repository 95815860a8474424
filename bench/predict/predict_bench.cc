// Cost of OomPredictor::Update() per sample, on realistic inputs: samples of simulated traces
// (linear leak, GC sawtooth, steady noise near the limit) precomputed so only Update() is timed.
//
//   BM_Update/<class>           mean ns per update (Google Benchmark's own timing)
//   BM_UpdateLatencyPercentiles p50/p99/p999 ns of single updates, timed in batches of 16 with
//                               the steady clock (per-call timing overhead divided out), as
//                               counters
// Per-container state is sizeof(OomPredictor), reported as the counter state_bytes.
#include <algorithm>
#include <chrono>
#include <vector>

#include "agent/predict/model_params.h"
#include "agent/predict/predictor.h"
#include "benchmark/benchmark.h"
#include "sim/simulator.h"

namespace {

using tapio::predict::MemorySample;
using tapio::predict::ModelParams;
using tapio::predict::OomPredictor;
using tapio::sim::MemcgSimulator;
using tapio::sim::WorkloadClass;

std::vector<MemorySample> Samples(WorkloadClass cls) {
  MemcgSimulator sim(cls, 1, 3600);
  std::vector<MemorySample> out;
  for (int64_t t = 0; t < sim.end_time_ms(); t += 1000) out.push_back(sim.SampleAt(t));
  return out;
}

// Makes the time base continue across passes over the same samples.
MemorySample Shifted(const MemorySample& s, int64_t offset_ms) {
  MemorySample c = s;
  c.time_ms += offset_ms;
  return c;
}

void BM_Update(benchmark::State& state) {
  const WorkloadClass cls = static_cast<WorkloadClass>(state.range(0));
  const std::vector<MemorySample> samples = Samples(cls);
  ModelParams params;
  OomPredictor predictor(&params);
  size_t i = 0;
  int64_t offset_ms = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(predictor.Update(Shifted(samples[i], offset_ms)));
    if (++i == samples.size()) {
      i = 0;
      offset_ms += samples.back().time_ms + 1000;
    }
  }
  state.SetLabel(std::string(tapio::sim::WorkloadClassName(cls)));
  state.counters["state_bytes"] = sizeof(OomPredictor);
}
BENCHMARK(BM_Update)
    ->Arg(static_cast<int>(WorkloadClass::kLinearLeak))
    ->Arg(static_cast<int>(WorkloadClass::kGcStablePeak))
    ->Arg(static_cast<int>(WorkloadClass::kSteadyNoise))
    ->Arg(static_cast<int>(WorkloadClass::kStepSpike));

void BM_UpdateLatencyPercentiles(benchmark::State& state) {
  std::vector<MemorySample> samples;
  for (WorkloadClass cls : {WorkloadClass::kLinearLeak, WorkloadClass::kGcStablePeak,
                            WorkloadClass::kSteadyNoise, WorkloadClass::kThrashing}) {
    std::vector<MemorySample> s = Samples(cls);
    samples.insert(samples.end(), s.begin(), s.end());
  }
  // One predictor per class-trace segment would reset the time base; instead keep times
  // increasing by re-basing every sample.
  for (size_t i = 0; i < samples.size(); ++i) samples[i].time_ms = static_cast<int64_t>(i) * 1000;
  ModelParams params;
  constexpr int kBatch = 16;
  std::vector<double> batch_ns;
  batch_ns.reserve(1 << 20);
  size_t i = 0;
  int64_t offset_ms = 0;
  OomPredictor predictor(&params);
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    for (int k = 0; k < kBatch; ++k) {
      benchmark::DoNotOptimize(predictor.Update(Shifted(samples[i], offset_ms)));
      if (++i == samples.size()) {
        i = 0;
        offset_ms += samples.back().time_ms + 1000;
      }
    }
    auto end = std::chrono::steady_clock::now();
    batch_ns.push_back(std::chrono::duration<double, std::nano>(end - start).count() / kBatch);
  }
  std::sort(batch_ns.begin(), batch_ns.end());
  auto pct = [&](double q) {
    return batch_ns[static_cast<size_t>(q * static_cast<double>(batch_ns.size() - 1))];
  };
  state.counters["p50_ns"] = pct(0.5);
  state.counters["p99_ns"] = pct(0.99);
  state.counters["p999_ns"] = pct(0.999);
  state.counters["state_bytes"] = sizeof(OomPredictor);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_UpdateLatencyPercentiles)->Iterations(200000);

}  // namespace
