#include "sim/simulator.h"

#include <algorithm>
#include <cmath>

namespace tapio::sim {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kOomFraction = 0.998;  // nr above this: the cache cannot make room any more
constexpr double kLimitHitsPerSecond = 20;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform [0, 1) from a key.
double Unit(uint64_t key) { return static_cast<double>(SplitMix64(key) >> 11) * 0x1.0p-53; }

// Standard normal from a key (Box-Muller).
double Normal(uint64_t key) {
  double u1 = std::max(Unit(key), 1e-12);
  double u2 = Unit(key ^ 0x5bd1e995ULL);
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * kPi * u2);
}

// Parameter stream: the i-th draw of a trace.
class Draws {
 public:
  explicit Draws(uint64_t seed) : state_(SplitMix64(seed * 0x2545f4914f6cdd1dULL + 17)) {}
  double Uniform(double lo, double hi) {
    return lo + (hi - lo) * Unit(state_ + (n_++) * 0x9e37ULL);
  }

 private:
  uint64_t state_;
  uint64_t n_ = 0;
};

double Frac(double x) { return x - std::floor(x); }

}  // namespace

std::string_view WorkloadClassName(WorkloadClass c) {
  switch (c) {
    case WorkloadClass::kLinearLeak:
      return "linear_leak";
    case WorkloadClass::kAcceleratingGrowth:
      return "accelerating_growth";
    case WorkloadClass::kGcRisingFloor:
      return "gc_rising_floor";
    case WorkloadClass::kGcStablePeak:
      return "gc_stable_peak";
    case WorkloadClass::kStepSpike:
      return "step_spike";
    case WorkloadClass::kSteadyNoise:
      return "steady_noise";
    case WorkloadClass::kPageCacheAtLimit:
      return "page_cache_at_limit";
    case WorkloadClass::kTmpfsGrowth:
      return "tmpfs_growth";
    case WorkloadClass::kThrashing:
      return "thrashing";
    case WorkloadClass::kMultiPhaseBatch:
      return "multi_phase_batch";
  }
  return "unknown";
}

bool ParseWorkloadClass(std::string_view name, WorkloadClass* c) {
  for (int i = 0; i < kWorkloadClassCount; ++i) {
    if (WorkloadClassName(static_cast<WorkloadClass>(i)) == name) {
      *c = static_cast<WorkloadClass>(i);
      return true;
    }
  }
  return false;
}

ClassGroup GroupOf(WorkloadClass c) {
  switch (c) {
    case WorkloadClass::kGcStablePeak:
    case WorkloadClass::kSteadyNoise:
    case WorkloadClass::kPageCacheAtLimit:
    case WorkloadClass::kThrashing:
      return ClassGroup::kNegative;
    case WorkloadClass::kStepSpike:
      return ClassGroup::kFastRamp;
    default:
      return ClassGroup::kPredictable;
  }
}

std::string_view ClassGroupName(ClassGroup g) {
  switch (g) {
    case ClassGroup::kPredictable:
      return "predictable";
    case ClassGroup::kFastRamp:
      return "fast_ramp";
    case ClassGroup::kNegative:
      return "negative";
  }
  return "unknown";
}

MemcgSimulator::MemcgSimulator(WorkloadClass cls, uint64_t seed, double max_duration_s,
                               double noise_scale)
    : cls_(cls), seed_(seed) {
  Draws d(seed * 131 + static_cast<uint64_t>(cls));
  static constexpr uint64_t kLimitsMiB[] = {256, 512, 1024, 2048, 4096};
  limit_bytes_ = kLimitsMiB[static_cast<int>(d.Uniform(0, 5)) % 5] << 20;
  kernel_frac_ = d.Uniform(0.01, 0.03);
  file_demand_ = d.Uniform(0.05, 0.5);
  hot_file_ = d.Uniform(0.01, 0.03);
  noise_sigma_ = 0.002;
  double smooth_total = d.Uniform(0.003, 0.012);
  for (int i = 0; i < 3; ++i) {
    sine_amp_[i] = smooth_total / 3 * d.Uniform(0.5, 1.5);
    sine_period_s_[i] = d.Uniform(20, 400);
    sine_phase_[i] = d.Uniform(0, 2 * kPi);
  }
  switch (cls) {
    case WorkloadClass::kLinearLeak:
      p_[0] = d.Uniform(0.15, 0.4);  // base
      p_[1] = d.Uniform(600, 3000);  // time to reach the limit
      break;
    case WorkloadClass::kAcceleratingGrowth: {
      p_[0] = d.Uniform(0.15, 0.35);  // base
      p_[1] = d.Uniform(150, 600);    // e-folding time
      double t = d.Uniform(600, 2400);
      p_[2] = (1 - p_[0]) / (std::exp(t / p_[1]) - 1);  // amplitude
      break;
    }
    case WorkloadClass::kGcRisingFloor: {
      p_[0] = d.Uniform(0.2, 0.35);  // floor at t=0
      p_[1] = d.Uniform(0.15, 0.3);  // amplitude of the sawtooth
      p_[2] = d.Uniform(60, 180);    // GC period
      p_[3] = d.Uniform(0, 1);       // phase
      double t = d.Uniform(900, 3000);
      p_[4] = (1 - p_[0] - p_[1]) / t;  // floor growth per second
      break;
    }
    case WorkloadClass::kGcStablePeak: {
      double peak = d.Uniform(0.85, 0.93);
      p_[1] = d.Uniform(0.2, 0.35);  // amplitude
      p_[0] = peak - p_[1];          // floor
      // A rise faster than the remaining headroom per 45 s is indistinguishable from a spike
      // that will not stop: the class models GC heaps that grow slower than that.
      p_[2] = std::max(d.Uniform(60, 240), p_[1] * 45 / (1 - peak));
      p_[3] = d.Uniform(0, 1);
      p_[4] = 0;
      break;
    }
    case WorkloadClass::kStepSpike:
      p_[0] = d.Uniform(0.25, 0.5);  // base
      p_[1] = d.Uniform(300, 2400);  // spike start
      p_[2] = d.Uniform(10, 40);     // seconds from base to the limit
      break;
    case WorkloadClass::kSteadyNoise:
      p_[0] = d.Uniform(0.85, 0.94);
      for (double& a : sine_amp_) a *= 1.5;
      break;
    case WorkloadClass::kPageCacheAtLimit:
      p_[0] = d.Uniform(0.1, 0.4);
      file_demand_ = d.Uniform(1.5, 4.0);  // far more file data than fits: cache at the limit
      break;
    case WorkloadClass::kTmpfsGrowth:
      p_[0] = d.Uniform(0.1, 0.3);   // anon
      p_[1] = d.Uniform(0, 0.05);    // tmpfs at t=0
      p_[2] = d.Uniform(600, 3000);  // time to reach the limit
      break;
    case WorkloadClass::kThrashing:
      p_[0] = d.Uniform(0.86, 0.94);
      hot_file_ = d.Uniform(0.1, 0.3);  // hot file set larger than the room left: refaults
      file_demand_ = std::max(file_demand_, hot_file_ + 0.1);
      break;
    case WorkloadClass::kMultiPhaseBatch: {
      // Breakpoints (t, level) of a piecewise-linear profile: load, hold, release, x2, then grow.
      double t = 0, level = d.Uniform(0.05, 0.15);
      p_[0] = level;
      double t1 = t + d.Uniform(60, 180), l1 = d.Uniform(0.3, 0.6);
      double t2 = t1 + d.Uniform(120, 480);
      double t3 = t2 + 5, l3 = d.Uniform(0.1, 0.2);
      double t4 = t3 + d.Uniform(60, 180), l4 = d.Uniform(0.5, 0.8);
      double t5 = t4 + d.Uniform(120, 480);
      double t6 = t5 + 5, l6 = d.Uniform(0.1, 0.25);
      double grow_s = d.Uniform(300, 1200);
      p_[1] = t1;
      p_[2] = l1;
      p_[3] = t2;
      p_[4] = t3;
      p_[5] = l3;
      p_[6] = t4;
      p_[7] = l4;
      p_[8] = t5;
      p_[9] = t6;
      p_[10] = l6;
      p_[11] = (1.05 - l6) / grow_s;
      break;
    }
  }

  noise_sigma_ *= noise_scale;
  for (double& a : sine_amp_) a *= noise_scale;

  // Ground truth: OOM time at 100 ms resolution; cumulative distress integrals per second.
  const int64_t max_ms = static_cast<int64_t>(max_duration_s * 1000);
  for (int64_t t = 0; t < max_ms; t += 100) {
    if (NonReclaimableFraction(static_cast<double>(t) / 1000) >= kOomFraction) {
      oom_time_ms_ = t;
      break;
    }
  }
  end_time_ms_ = oom_time_ms_.value_or(max_ms);
  const int64_t seconds = end_time_ms_ / 1000 + 2;
  at_limit_s_.assign(seconds, 0);
  stall_s_.assign(seconds, 0);
  double at_limit = 0, stall = 0;
  for (int64_t s = 1; s < seconds; ++s) {
    double t = static_cast<double>(s) - 0.5;
    double nr = NonReclaimableFraction(t);
    bool full = nr + FileDemand(t) >= 1;
    if (full) {
      at_limit += 1;
      stall += 0.005 + 0.5 * Refault(t);
    }
    at_limit_s_[s] = static_cast<float>(at_limit);
    stall_s_[s] = static_cast<float>(stall);
  }
}

double MemcgSimulator::Smooth(double t) const {
  double v = 0;
  for (int i = 0; i < 3; ++i)
    v += sine_amp_[i] * std::sin(2 * kPi * t / sine_period_s_[i] + sine_phase_[i]);
  return v;
}

double MemcgSimulator::NonReclaimableFraction(double t) const {
  double nr = 0;
  switch (cls_) {
    case WorkloadClass::kLinearLeak:
      nr = p_[0] + (1 - p_[0]) * t / p_[1];
      break;
    case WorkloadClass::kAcceleratingGrowth:
      nr = p_[0] + p_[2] * (std::exp(t / p_[1]) - 1);
      break;
    case WorkloadClass::kGcRisingFloor:
    case WorkloadClass::kGcStablePeak: {
      double cycles = t / p_[2] + p_[3];
      uint64_t cycle = static_cast<uint64_t>(cycles);
      // Each cycle's peak varies by up to +-1% of the limit.
      double jitter = 0.01 * (2 * Unit(seed_ * 7919 + cycle) - 1);
      nr = p_[0] + p_[4] * t + (p_[1] + jitter) * Frac(cycles);
      return std::max(0.0, nr + Smooth(t) * 0.3);
    }
    case WorkloadClass::kStepSpike:
      nr = p_[0] + (t > p_[1] ? (1 - p_[0]) * (t - p_[1]) / p_[2] : 0);
      break;
    case WorkloadClass::kSteadyNoise:
      return std::min(0.97, p_[0] + Smooth(t));
    case WorkloadClass::kPageCacheAtLimit:
      nr = p_[0];
      break;
    case WorkloadClass::kTmpfsGrowth:
      nr = p_[0] + ShmemFraction(t);
      break;
    case WorkloadClass::kThrashing:
      return std::min(0.97, p_[0] + Smooth(t) * 0.5);
    case WorkloadClass::kMultiPhaseBatch: {
      auto lerp = [](double t, double t0, double l0, double t1, double l1) {
        return l0 + (l1 - l0) * (t - t0) / (t1 - t0);
      };
      if (t < p_[1])
        nr = lerp(t, 0, p_[0], p_[1], p_[2]);
      else if (t < p_[3])
        nr = p_[2];
      else if (t < p_[4])
        nr = lerp(t, p_[3], p_[2], p_[4], p_[5]);
      else if (t < p_[6])
        nr = lerp(t, p_[4], p_[5], p_[6], p_[7]);
      else if (t < p_[8])
        nr = p_[7];
      else if (t < p_[9])
        nr = lerp(t, p_[8], p_[7], p_[9], p_[10]);
      else
        nr = p_[10] + p_[11] * (t - p_[9]);
      break;
    }
  }
  return std::max(0.0, nr + Smooth(t));
}

double MemcgSimulator::ShmemFraction(double t) const {
  if (cls_ != WorkloadClass::kTmpfsGrowth) return 0;
  return p_[1] + (1 - p_[0] - p_[1]) * t / p_[2];
}

double MemcgSimulator::FileDemand(double t) const { return file_demand_; }
double MemcgSimulator::HotFile(double t) const { return hot_file_; }

double MemcgSimulator::Refault(double t) const {
  double room = std::max(0.0, 1 - NonReclaimableFraction(t));
  double hot = HotFile(t);
  return hot > room ? (hot - room) / hot : 0;
}

predict::MemorySample MemcgSimulator::SampleAt(int64_t time_ms) const {
  const double t = static_cast<double>(time_ms) / 1000;
  const double limit = static_cast<double>(limit_bytes_);
  const uint64_t key =
      seed_ * 0x100000001b3ULL + static_cast<uint64_t>(time_ms) * 31 + static_cast<uint64_t>(cls_);
  double nr = std::clamp(NonReclaimableFraction(t) + noise_sigma_ * Normal(key), 0.0, kOomFraction);
  double shmem = std::min(ShmemFraction(t), nr);
  double kernel = std::min(kernel_frac_, nr - shmem);
  double anon = nr - shmem - kernel;
  double cache = std::clamp(std::min(FileDemand(t), 1 - nr), 0.0, 1.0);
  double refault = Refault(t);
  double hot = std::min(HotFile(t), cache);

  predict::MemorySample s;
  s.time_ms = time_ms;
  s.limit_bytes = limit_bytes_;
  auto bytes = [&](double f) { return static_cast<uint64_t>(std::max(0.0, f) * limit); };
  s.anon_bytes = bytes(anon);
  s.shmem_bytes = bytes(shmem);
  s.kernel_unreclaimable_bytes = bytes(kernel);
  s.file_bytes = bytes(cache + shmem);
  s.active_file_bytes = bytes(hot + shmem);  // tmpfs pages sit on the LRU lists too
  s.inactive_file_bytes =
      s.file_bytes > s.active_file_bytes ? s.file_bytes - s.active_file_bytes : 0;
  s.usage_bytes =
      std::min(limit_bytes_, s.anon_bytes + s.kernel_unreclaimable_bytes + s.file_bytes);
  s.swap_bytes = 0;
  const size_t sec = std::min<size_t>(static_cast<size_t>(std::max<int64_t>(0, time_ms / 1000)),
                                      at_limit_s_.size() - 1);
  s.limit_hits = static_cast<uint64_t>(at_limit_s_[sec] * kLimitHitsPerSecond);
  s.reclaim_stall_ns = static_cast<uint64_t>(static_cast<double>(stall_s_[sec]) * 1e9);
  s.oom_kills = 0;
  double some =
      std::clamp(100 * 0.8 * refault + 2 * std::abs(Normal(key + 1)) * refault, 0.0, 100.0);
  s.psi_some_avg10 = std::round(some * 100) / 100;
  s.psi_full_avg10 = std::round(some * 0.4 * 100) / 100;
  return s;
}

predict::TraceHeader MemcgSimulator::Header() const {
  predict::TraceHeader h;
  h.workload_class = std::string(WorkloadClassName(cls_));
  h.source = "sim";
  h.name = std::string(WorkloadClassName(cls_)) + "/" + std::to_string(seed_);
  h.seed = seed_;
  h.oom_time_ms = oom_time_ms_;
  return h;
}

predict::Trace GenerateTrace(const MemcgSimulator& sim, int64_t cadence_ms, int64_t phase_ms) {
  predict::Trace trace;
  trace.header = sim.Header();
  for (int64_t t = phase_ms; t < sim.end_time_ms(); t += cadence_ms) {
    trace.samples.push_back(sim.SampleAt(t));
  }
  return trace;
}

}  // namespace tapio::sim
