// OomPredictor: one per container. Turns the cgroup's memory readings into an OOM prediction.
//
// What it models (DESIGN.md §4): the memcg OOM killer runs when the cgroup is at its limit and
// reclaim cannot free enough. Page cache is reclaimed first, so the predictor works on the
// non-reclaimable part, anon + shmem (tmpfs) + unreclaimable kernel memory, against the
// effective limit. Three models produce candidates, the combiner turns them into a state:
//   trend     exponentially weighted linear regressions (fast and slow) of non-reclaimable bytes,
//             with the slope's standard error as the uncertainty interval; raises when the lower
//             bound of the growth is positive and the time to reach the limit is within horizon.
//   envelope  for sawtooth (GC) heaps: after a large fast drop, the within-cycle rise is not
//             trusted; the trend of the cycle peaks is, and memory breaking out above the recent
//             peaks re-enables the trend fits.
//   staircase growth in steps (plateau, fast rise, plateau): after two steps, when the headroom
//             left is smaller than the largest step, the staircase's rate gives the time to OOM.
//   pressure  limit hits, PSI and BPF reclaim stalls: lowers the evidence the slow fit needs and,
//             very near the limit, any growth raises. Pressure without growth never raises.
//   restart   SetPriorPeak: the previous run of the same workload levelled off at a peak without
//             an OOM kill; the trends stay quiet below it (its start-up fill again) until memory
//             outgrows it.
//   ceiling   MemorySample::runtime_heap_cap_bytes: heaps capped below the limit cannot fill it
//             by themselves; the trends stay quiet below memory-when-the-cap-arrived plus the cap
//             (and the runtimes' own share of it) until memory outgrows that. Heaps allowed
//             past the limit may fill it: the slow trend's early-rise rule waits less for them,
//             and their alarms clear a grace after a passed deadline, not at it.
//   combiner  raise after raise_consecutive samples with a candidate; clear after clear_hold_s
//             without one (one kCleared prediction, then kNone); cooldown_s after a clear.
//
// Contract: pure. No I/O, no clock reads: time comes only from MemorySample::time_ms. Not
// thread-safe; the owner (the agent's sampler thread) serialises calls. Update() allocates
// nothing. State is a few hundred bytes (static_assert below).
#ifndef TAPIO_AGENT_PREDICT_PREDICTOR_H_
#define TAPIO_AGENT_PREDICT_PREDICTOR_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/predict/model_params.h"

namespace tapio::predict {

// One reading of a cgroup's memory files. Bytes unless the name says otherwise.
struct MemorySample {
  int64_t time_ms = 0;       // monotonic; samples must come in increasing order
  uint64_t usage_bytes = 0;  // memory.current / memory.usage_in_bytes
  uint64_t limit_bytes = 0;  // effective limit (smallest of the ancestors); 0 = none
  uint64_t anon_bytes = 0;
  uint64_t file_bytes = 0;  // page cache; tmpfs included (v2 file, v1 cache)
  uint64_t active_file_bytes = 0;
  uint64_t inactive_file_bytes = 0;
  uint64_t shmem_bytes = 0;                 // tmpfs/shm: part of file_bytes, but not reclaimable
  uint64_t kernel_unreclaimable_bytes = 0;  // v2: kernel - slab_reclaimable (or sock+kstack+...)
  uint64_t swap_bytes = 0;
  uint64_t limit_hits = 0;     // cumulative: memory.events max (v2) or failcnt (v1)
  uint64_t oom_kills = 0;      // cumulative: memory.events oom_kill / oom_control
  double psi_some_avg10 = -1;  // percent; -1 when absent
  double psi_full_avg10 = -1;
  uint64_t reclaim_stall_ns = 0;  // cumulative memcg reclaim time from BPF; 0 if unknown
  // Sum of the heap caps of the managed runtimes in the cgroup (agent/core/runtime_cap.h); 0 when
  // none is known or any runtime's is unknown. The heap ceiling (ModelParams) reads it.
  uint64_t runtime_heap_cap_bytes = 0;
};

// anon + shmem + unreclaimable kernel memory, saturating.
uint64_t NonReclaimableBytes(const MemorySample& s);

// One run of a workload as the restart prior remembers it (OomPredictor::SetPriorPeak): the peak
// of non-reclaimable memory at the run's latest limit (a new limit starts it again), and whether
// the run was OOM-killed. The agent keeps one per tracked cgroup; tapio-eval derives it from a
// trace.
struct RunPeak {
  uint64_t peak_bytes = 0;
  uint64_t limit_bytes = 0;
  bool oom_killed = false;
  void Add(const MemorySample& s);
  // What a next run may use: a limited run that was not killed.
  bool usable() const { return !oom_killed && limit_bytes != 0; }
};

struct Prediction {
  enum class State : uint8_t { kNone = 0, kAtRisk = 1, kCleared = 2 };
  State state = State::kNone;
  int64_t time_to_oom_ms = -1;  // -1 when not at risk
  double confidence = 0;        // 0..1
  // Static strings (no allocation per update): model "trend", "envelope", "staircase",
  // "pressure" or ""; reason a short code such as "fast_growth", "steady_growth", "rising_peaks",
  // "stepped_growth", "pressure_near_limit", "risk_gone", "deadline_passed", "oom_killed",
  // "unlimited".
  // DescribePrediction() turns a prediction into a sentence for humans (at transitions only: it
  // allocates).
  std::string_view model;
  std::string_view reason;
  uint64_t non_reclaimable_bytes = 0;
  double growth_bytes_per_second = 0;  // of non-reclaimable memory, from the model that decided
  bool changed = false;                // the state changed with this update (raise or clear)
};

std::string_view PredictionStateName(Prediction::State state);  // "none", "at_risk", "cleared"
std::string DescribePrediction(const Prediction& p, uint64_t limit_bytes);

// Weighted least-squares line through (time, value) with exponentially decaying weights, kept as
// sufficient statistics with the time origin at the newest sample. O(1) per sample.
struct DecayingRegression {
  double s0 = 0, st = 0, sy = 0, stt = 0, sty = 0, syy = 0, sw2 = 0;
  int64_t samples = 0;
  void Reset() { *this = DecayingRegression(); }
  // Shifts the origin dt_s forward, decays every weight by `decay`, adds y at the new origin.
  void Add(double dt_s, double decay, double y);
  // Fit at the newest sample. False when it is degenerate (fewer than 3 samples or no spread).
  // slope_variance: of the slope estimate, from the weighted residuals (infinite when the
  // effective sample size is 2 or less).
  bool Fit(double* level, double* slope, double* slope_variance) const;
};

class OomPredictor {
 public:
  // `params` must outlive the predictor.
  explicit OomPredictor(const ModelParams* params);

  Prediction Update(const MemorySample& sample);

  // The previous run of the same workload, at limit `limit_bytes`, reached at most `peak_bytes` of
  // non-reclaimable memory and was not OOM-killed. While this run stays below that peak plus
  // restart_margin_fraction of the limit, the trend models do not raise (pressure still does):
  // the rise is taken for the same start-up fill. Memory above it, a different limit, or an OOM
  // kill drops the prior for good. Ignored when restart_margin_fraction is 0.
  void SetPriorPeak(uint64_t peak_bytes, uint64_t limit_bytes);

  // When to read the cgroup next: faster as time to OOM shrinks, slower for idle cgroups.
  int64_t SuggestedNextSampleDelayMs() const { return next_delay_ms_; }

  // Samples refused because their time did not advance (counted; the caller may export it).
  uint64_t out_of_order_samples() const { return out_of_order_samples_; }

 private:
  static constexpr int kMaxPeaks = 6;
  struct Candidate {
    bool present = false;
    double time_to_oom_s = 0;
    double confidence = 0;
    double growth_bytes_per_s = 0;
    std::string_view model;
    std::string_view reason;
    bool after_clear = false;  // made of evidence newer than the last clear: passes the cooldown
  };
  void ResetModels();
  void UpdateEnvelope(int64_t time_ms, double y, double limit);
  void UpdateStaircase(int64_t time_ms, double y, double limit);
  void FitPeaks(int64_t now_ms);
  void Consider(Candidate* best, double tt_s, double conf, double growth_mib_s,
                std::string_view model, std::string_view reason, bool after_clear = false) const;
  // >= 1 means the cgroup is under memory pressure.
  double PressureScore(const MemorySample& s, double dt_s, double nr_fraction) const;

  const ModelParams* params_;
  double fast_decay_per_s_ln_;  // -1 / fast_tau_s (so decay = exp(dt * this))
  double slow_decay_per_s_ln_;
  double fast_z2_;  // (z * error inflation)^2, precomputed
  double slow_z2_;
  double pressure_slow_z2_;
  double pressure_fast_z2_;
  double cached_dt_s_ = -1;  // interval the cached decay factors below are for
  double cached_fast_decay_ = 1;
  double cached_slow_decay_ = 1;

  // Trend.
  DecayingRegression fast_;
  DecayingRegression slow_;
  double history_s_ = 0;
  double min_mib_ = -1;   // lowest non-reclaimable level since the last reset
  double last_mib_ = -1;  // the previous sample's non-reclaimable level (-1: none since the reset)
  double prior_peak_mib_ = -1;  // SetPriorPeak (-1: none, or dropped)
  uint64_t prior_limit_bytes_ = 0;
  // Heap ceiling: memory at the first sample carrying the current cap, plus the cap (-1: none,
  // or dropped for good: outgrown).
  double heap_ceiling_mib_ = -1;
  uint64_t heap_cap_bytes_ = 0;  // the cap the ceiling was made from (0: none seen)

  // Envelope: ring of recent cycle peaks (time, MiB); the current cycle's extremes.
  int64_t peak_time_ms_[kMaxPeaks] = {};
  float peak_mib_[kMaxPeaks] = {};
  int32_t peak_count_ = 0;  // valid entries, newest at (peak_head_ - 1)
  int32_t peak_head_ = 0;
  double cycle_peak_mib_ = -1;  // maximum since the last drop
  int64_t cycle_peak_time_ms_ = 0;
  double recent_max_mib_ = -1;  // maximum over about the last drop_max_duration_s
  int64_t recent_max_time_ms_ = 0;
  int64_t last_drop_time_ms_ = -1;  // -1: never
  double max_peak_mib_ = -1;        // highest peak in the ring
  // Line through the peaks, refitted at each drop: level (MiB) at peak_fit_ref_ms_, slope MiB/s.
  bool peak_fit_valid_ = false;
  double peak_fit_level_ = 0, peak_fit_slope_ = 0, peak_fit_se_ = 0;
  int64_t peak_fit_ref_ms_ = 0;

  // Staircase: the plateau the samples are on now (a candidate until step_plateau_s old), the
  // last established plateau, and the steps between established plateaus since the last fall.
  double plateau_mib_ = -1;  // -1: none since the reset
  int64_t plateau_start_ms_ = 0;
  double settled_mib_ = -1;  // the last established plateau (-1: none yet)
  int64_t settled_start_ms_ = 0;
  int64_t settled_last_ms_ = 0;
  int32_t steps_ = 0;  // since the last fall, saturating at 2
  double last_step_mib_ = 0;
  double largest_step_mib_ = 0;
  int64_t last_step_ms_ = 0;  // when the plateau after each of the last two steps began
  int64_t prev_step_ms_ = 0;

  // Previous sample, for deltas.
  bool have_last_ = false;
  int64_t last_time_ms_ = 0;
  uint64_t last_limit_hits_ = 0;
  uint64_t last_oom_kills_ = 0;
  uint64_t last_stall_ns_ = 0;

  // Combiner.
  Prediction::State state_ = Prediction::State::kNone;
  int64_t consecutive_ = 0;
  int64_t last_support_ms_ = 0;
  int64_t oom_deadline_ms_ = 0;  // when the last supporting candidate expected the OOM
  int64_t cooldown_until_ms_ = INT64_MIN;
  int64_t last_clear_ms_ = INT64_MIN;
  Prediction current_;
  int64_t next_delay_ms_;
  uint64_t out_of_order_samples_ = 0;
};

}  // namespace tapio::predict

#endif  // TAPIO_AGENT_PREDICT_PREDICTOR_H_
