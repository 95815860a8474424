// A deterministic memcg simulator that produces labelled traces for the predictor.
//
// Model of one memory cgroup (all quantities as fractions of its limit, time in seconds):
//   - the workload class gives the non-reclaimable part nr(t) = anon + shmem + kernel as a
//     function of time (trend + smooth process noise from seeded sines);
//   - page cache fills whatever the non-reclaimable part leaves free, up to the workload's file
//     demand, and is reclaimed first: usage = min(limit, nr + file demand);
//   - the OOM kill happens at the first instant (100 ms resolution) where nr(t) >= 1 - 0.2%
//     (the cache cannot shrink to nothing): that is the label. The trace ends there.
//   - distress signals: limit hits accumulate while usage sits at the limit (20/s); reclaim stall
//     time and PSI grow with refaults, i.e. when the workload's hot file set no longer fits
//     beside the non-reclaimable memory. PSI is instantaneous here, not a 10 s average.
//   - readings carry white measurement noise seeded by (seed, time), so a sample depends only on
//     (class, seed, time) and not on the sampling cadence: the same trace can be read at any
//     cadence, including the predictor's adaptive one.
// Random numbers come from splitmix64, not <random> distributions, so traces are identical on
// every platform and standard library.
#ifndef TAPIO_SIM_SIMULATOR_H_
#define TAPIO_SIM_SIMULATOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/predict/predictor.h"
#include "agent/predict/trace.h"

namespace tapio::sim {

enum class WorkloadClass : uint8_t {
  kLinearLeak = 0,
  kAcceleratingGrowth,
  kGcRisingFloor,
  kGcStablePeak,  // negative
  kStepSpike,
  kSteadyNoise,       // negative
  kPageCacheAtLimit,  // negative (zero false alarms required)
  kTmpfsGrowth,
  kThrashing,  // negative
  kMultiPhaseBatch,
};
inline constexpr int kWorkloadClassCount = 10;

// How the goals treat a class: predictable (recall@30s, median lead), fast ramp (recall@5s),
// negative (false alarms).
enum class ClassGroup : uint8_t { kPredictable, kFastRamp, kNegative };

std::string_view WorkloadClassName(WorkloadClass c);  // "linear_leak", ...
bool ParseWorkloadClass(std::string_view name, WorkloadClass* c);
ClassGroup GroupOf(WorkloadClass c);
std::string_view ClassGroupName(ClassGroup g);  // "predictable", "fast_ramp", "negative"

// Seeds [1, 1000) form the tune split, [1000, 2000) the test split.
inline constexpr uint64_t kTuneSeedBase = 1;
inline constexpr uint64_t kTestSeedBase = 1000;

class MemcgSimulator {
 public:
  // Draws the workload's parameters from `seed`. Traces last until the OOM or max_duration_s.
  // noise_scale multiplies both the smooth process noise and the white measurement noise
  // (1 = the corpus; used to measure how quality degrades with noisier workloads).
  MemcgSimulator(WorkloadClass cls, uint64_t seed, double max_duration_s = 3600,
                 double noise_scale = 1.0);

  WorkloadClass workload_class() const { return cls_; }
  uint64_t seed() const { return seed_; }
  std::optional<int64_t> oom_time_ms() const { return oom_time_ms_; }
  // Samples are valid in [0, end_time_ms()): the OOM time, or the maximum duration.
  int64_t end_time_ms() const { return end_time_ms_; }
  uint64_t limit_bytes() const { return limit_bytes_; }

  // The reading at time_ms, deterministic in (class, seed, time_ms).
  predict::MemorySample SampleAt(int64_t time_ms) const;
  predict::TraceHeader Header() const;

  // True non-reclaimable fraction of the limit at t (no measurement noise).
  double NonReclaimableFraction(double t_s) const;

 private:
  double FileDemand(double t_s) const;
  double HotFile(double t_s) const;
  double ShmemFraction(double t_s) const;
  double Smooth(double t_s) const;
  double Refault(double t_s) const;

  WorkloadClass cls_;
  uint64_t seed_;
  uint64_t limit_bytes_;
  double p_[12] = {};  // class parameters (meaning per class, see simulator.cc)
  double sine_amp_[3], sine_period_s_[3], sine_phase_[3];
  double file_demand_, hot_file_, kernel_frac_, noise_sigma_;
  std::optional<int64_t> oom_time_ms_;
  int64_t end_time_ms_;
  // Cumulative seconds at the limit and seconds stalled in reclaim, per whole second.
  std::vector<float> at_limit_s_, stall_s_;
};

// A trace at a fixed cadence (first sample at phase_ms), up to the OOM or the end.
predict::Trace GenerateTrace(const MemcgSimulator& sim, int64_t cadence_ms, int64_t phase_ms = 0);

}  // namespace tapio::sim

#endif  // TAPIO_SIM_SIMULATOR_H_
