#include "agent/predict/predictor.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"

namespace tapio::predict {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// Confidence in (0, 1) from a slope and its standard error: 0.5 when the growth is exactly z
// standard errors above zero, approaching 1 as the evidence grows.
double SlopeConfidence(double slope, double stderr_, double z) {
  if (stderr_ <= 0) return 0.99;
  double t = slope / stderr_;
  return std::clamp(t / (t + std::max(z, 1e-9)), 0.0, 0.99);
}

double Square(double x) { return x * x; }

}  // namespace

static_assert(sizeof(OomPredictor) <= 1024, "per-container predictor state must stay <= 1 KiB");

uint64_t NonReclaimableBytes(const MemorySample& s) {
  uint64_t total = s.anon_bytes;
  for (uint64_t part : {s.shmem_bytes, s.kernel_unreclaimable_bytes}) {
    total = (total > UINT64_MAX - part) ? UINT64_MAX : total + part;
  }
  return total;
}

void RunPeak::Add(const MemorySample& s) {
  const uint64_t nr = NonReclaimableBytes(s);
  if (s.limit_bytes != limit_bytes) {
    limit_bytes = s.limit_bytes;
    peak_bytes = nr;
  } else {
    peak_bytes = std::max(peak_bytes, nr);
  }
  if (s.oom_kills > 0) oom_killed = true;
}

std::string_view PredictionStateName(Prediction::State state) {
  switch (state) {
    case Prediction::State::kNone:
      return "none";
    case Prediction::State::kAtRisk:
      return "at_risk";
    case Prediction::State::kCleared:
      return "cleared";
  }
  return "unknown";
}

std::string DescribePrediction(const Prediction& p, uint64_t limit_bytes) {
  double nr_mib = static_cast<double>(p.non_reclaimable_bytes) / kMiB;
  double limit_mib = static_cast<double>(limit_bytes) / kMiB;
  double growth_mib_s = p.growth_bytes_per_second / kMiB;
  if (p.state == Prediction::State::kAtRisk) {
    return absl::StrFormat(
        "OOM expected in %.0f s (%s model, %s): non-reclaimable memory %.1f MiB of %.1f MiB limit, "
        "growing %.3f MiB/s, confidence %.2f",
        static_cast<double>(p.time_to_oom_ms) / 1000.0, std::string(p.model), std::string(p.reason),
        nr_mib, limit_mib, growth_mib_s, p.confidence);
  }
  if (p.state == Prediction::State::kCleared) {
    return absl::StrFormat("OOM risk cleared (%s): non-reclaimable memory %.1f MiB of %.1f MiB",
                           std::string(p.reason), nr_mib, limit_mib);
  }
  return absl::StrFormat("no OOM risk: non-reclaimable memory %.1f MiB of %.1f MiB", nr_mib,
                         limit_mib);
}

void DecayingRegression::Add(double dt_s, double decay, double y) {
  // Move the origin to the new sample: every old t_i becomes t_i - dt.
  stt = stt - 2 * dt_s * st + dt_s * dt_s * s0;
  sty = sty - dt_s * sy;
  st = st - dt_s * s0;
  s0 *= decay;
  st *= decay;
  sy *= decay;
  stt *= decay;
  sty *= decay;
  syy *= decay;
  sw2 *= decay * decay;
  s0 += 1;
  sy += y;
  syy += y * y;
  sw2 += 1;
  ++samples;
}

bool DecayingRegression::Fit(double* level, double* slope, double* slope_variance) const {
  if (samples < 3 || s0 <= 0) return false;
  const double inv_s0 = 1.0 / s0;
  const double sxx = stt - st * st * inv_s0;
  if (!(sxx > 1e-9)) return false;
  const double sxy = sty - st * sy * inv_s0;
  const double inv_sxx = 1.0 / sxx;
  const double b = sxy * inv_sxx;
  *slope = b;
  *level = (sy - b * st) * inv_s0;  // at t = 0, the newest sample
  // With n_eff = s0^2 / sw2 (Kish's effective sample size), the residual variance is
  // sse / s0 * n_eff / (n_eff - 2) and Var(slope) = sigma^2 / (sxx * n_eff / s0), which
  // simplifies to sse * sw2 / ((s0^2 - 2 sw2) * sxx). Unweighted, that is sse / (n - 2) / sxx.
  const double denom = s0 * s0 - 2 * sw2;
  if (denom <= 0) {
    *slope_variance = std::numeric_limits<double>::infinity();
    return true;
  }
  const double sse = std::max(0.0, syy - sy * sy * inv_s0 - b * sxy);
  *slope_variance = sse * sw2 * inv_sxx / denom;
  return true;
}

OomPredictor::OomPredictor(const ModelParams* params)
    : params_(params),
      fast_decay_per_s_ln_(-1.0 / params->fast_tau_s),
      slow_decay_per_s_ln_(-1.0 / params->slow_tau_s),
      fast_z2_(Square(params->fast_z * params->fast_error_inflation)),
      slow_z2_(Square(params->slow_z * params->slow_error_inflation)),
      pressure_slow_z2_(Square(params->pressure_slow_z * params->slow_error_inflation)),
      pressure_fast_z2_(Square(params->pressure_fast_z * params->fast_error_inflation)),
      next_delay_ms_(params->cadence_default_ms) {}

void OomPredictor::SetPriorPeak(uint64_t peak_bytes, uint64_t limit_bytes) {
  if (params_->restart_margin_fraction <= 0 || limit_bytes == 0) return;
  prior_peak_mib_ = static_cast<double>(peak_bytes) / kMiB;
  prior_limit_bytes_ = limit_bytes;
}

void OomPredictor::ResetModels() {
  fast_.Reset();
  slow_.Reset();
  history_s_ = 0;
  min_mib_ = -1;
  last_mib_ = -1;
  peak_count_ = 0;
  peak_head_ = 0;
  peak_fit_valid_ = false;
  max_peak_mib_ = -1;
  cycle_peak_mib_ = -1;
  recent_max_mib_ = -1;
  last_drop_time_ms_ = -1;
  plateau_mib_ = -1;
  settled_mib_ = -1;
  steps_ = 0;
  largest_step_mib_ = 0;
}

void OomPredictor::UpdateEnvelope(int64_t time_ms, double y, double limit) {
  const ModelParams& p = *params_;
  // The reference maximum only looks back drop_max_duration_s, so a slow decline is no drop.
  if (recent_max_mib_ < 0 || y >= recent_max_mib_ ||
      time_ms - recent_max_time_ms_ > static_cast<int64_t>(p.drop_max_duration_s * 1000)) {
    recent_max_mib_ = y;
    recent_max_time_ms_ = time_ms;
  }
  if (cycle_peak_mib_ < 0 || y > cycle_peak_mib_) {
    cycle_peak_mib_ = y;
    cycle_peak_time_ms_ = time_ms;
  }
  if (recent_max_mib_ - y >= p.drop_min_fraction * limit) {
    // A drop: the cycle that ends here peaked at cycle_peak_mib_.
    peak_time_ms_[peak_head_] = cycle_peak_time_ms_;
    peak_mib_[peak_head_] = static_cast<float>(cycle_peak_mib_);
    peak_head_ = (peak_head_ + 1) % kMaxPeaks;
    peak_count_ = std::min(peak_count_ + 1, kMaxPeaks);
    last_drop_time_ms_ = time_ms;
    FitPeaks(time_ms);
    cycle_peak_mib_ = y;
    cycle_peak_time_ms_ = time_ms;
    recent_max_mib_ = y;
    recent_max_time_ms_ = time_ms;
  }
}

void OomPredictor::UpdateStaircase(int64_t time_ms, double y, double limit) {
  const ModelParams& p = *params_;
  if (p.step_min_fraction <= 0) return;
  const double band = p.step_band_fraction * limit;
  if (plateau_mib_ < 0 || std::abs(y - plateau_mib_) > band) {
    plateau_mib_ = y;  // the samples left the plateau: a new one may start here (step_plateau_s
    plateau_start_ms_ = time_ms;  // is > 0, so not established by this sample)
    return;
  }
  if (settled_start_ms_ == plateau_start_ms_ && settled_mib_ >= 0) {
    settled_last_ms_ = time_ms;  // still on the established plateau
    return;
  }
  if (static_cast<double>(time_ms - plateau_start_ms_) < p.step_plateau_s * 1000) return;
  // The current plateau is established: compare it with the one before.
  if (settled_mib_ >= 0) {
    const double rise = plateau_mib_ - settled_mib_;
    if (rise < -band) {
      steps_ = 0;  // a fall ends the staircase
      largest_step_mib_ = 0;
    } else if (rise >= p.step_min_fraction * limit &&
               static_cast<double>(plateau_start_ms_ - settled_last_ms_) <=
                   p.step_max_duration_s * 1000) {
      prev_step_ms_ = last_step_ms_;
      last_step_ms_ = plateau_start_ms_;
      last_step_mib_ = rise;
      largest_step_mib_ = std::max(largest_step_mib_, rise);
      steps_ = std::min(steps_ + 1, 2);
    }
  }
  settled_mib_ = plateau_mib_;
  settled_start_ms_ = plateau_start_ms_;
  settled_last_ms_ = time_ms;
}

void OomPredictor::FitPeaks(int64_t now_ms) {
  // Least squares through the recent peaks, time in seconds relative to now_ms. Runs once per
  // drop; Update() extrapolates the line.
  max_peak_mib_ = -1;
  for (int i = 0; i < peak_count_; ++i)
    max_peak_mib_ = std::max(max_peak_mib_, double{peak_mib_[i]});
  peak_fit_valid_ = false;
  if (peak_count_ < params_->envelope_min_peaks) return;
  const double n = peak_count_;
  double st = 0, sy = 0, stt = 0, sty = 0, syy = 0;
  for (int i = 0; i < peak_count_; ++i) {
    const double t = static_cast<double>(peak_time_ms_[i] - now_ms) / 1000.0;
    const double v = peak_mib_[i];
    st += t;
    sy += v;
    stt += t * t;
    sty += t * v;
    syy += v * v;
  }
  const double sxx = stt - st * st / n;
  if (!(sxx > 1e-9)) return;
  const double sxy = sty - st * sy / n;
  peak_fit_slope_ = sxy / sxx;
  peak_fit_level_ = sy / n - peak_fit_slope_ * st / n;
  const double sse = std::max(0.0, (syy - sy * sy / n) - peak_fit_slope_ * sxy);
  peak_fit_se_ = std::sqrt(sse / (n - 2) / sxx);
  peak_fit_ref_ms_ = now_ms;
  peak_fit_valid_ = true;
}

double OomPredictor::PressureScore(const MemorySample& s, double dt_s, double nr_fraction) const {
  const ModelParams& p = *params_;
  double score = 0;
  // Limit hits alone are no distress (page cache hits the limit all the time); with nearly all
  // of the limit non-reclaimable they mean reclaim is failing.
  if (have_last_ && s.limit_hits > last_limit_hits_ && nr_fraction >= p.pressure_min_fraction) {
    score = 1;
  }
  if (s.psi_some_avg10 >= 0) score = std::max(score, s.psi_some_avg10 / p.psi_some_ref);
  if (s.psi_full_avg10 >= 0) score = std::max(score, s.psi_full_avg10 / p.psi_full_ref);
  if (have_last_ && dt_s > 0 && s.reclaim_stall_ns >= last_stall_ns_) {
    double stalled_s = static_cast<double>(s.reclaim_stall_ns - last_stall_ns_) / 1e9;
    score = std::max(score, stalled_s / dt_s / p.stall_fraction_ref);
  }
  return score;
}

void OomPredictor::Consider(Candidate* best, double tt_s, double conf, double growth_mib_s,
                            std::string_view model, std::string_view reason,
                            bool after_clear) const {
  if (best->present && best->time_to_oom_s <= tt_s) return;
  best->after_clear = after_clear;
  best->present = true;
  best->time_to_oom_s = tt_s;
  best->confidence = conf;
  best->growth_bytes_per_s = growth_mib_s * kMiB;
  best->model = model;
  best->reason = reason;
}

Prediction OomPredictor::Update(const MemorySample& s) {
  const ModelParams& p = *params_;
  current_.changed = false;
  if (state_ == Prediction::State::kCleared) state_ = Prediction::State::kNone;
  if (have_last_ && s.time_ms <= last_time_ms_) {
    ++out_of_order_samples_;
    Prediction stale = current_;
    stale.state = state_;
    return stale;
  }
  const uint64_t nr_bytes = NonReclaimableBytes(s);
  current_.non_reclaimable_bytes = nr_bytes;
  const bool oom_killed = have_last_ && s.oom_kills > last_oom_kills_;
  const double dt_s = have_last_ ? static_cast<double>(s.time_ms - last_time_ms_) / 1000.0 : 0;
  const double pressure = PressureScore(
      s, dt_s,
      s.limit_bytes ? static_cast<double>(nr_bytes) / static_cast<double>(s.limit_bytes) : 0);
  have_last_ = true;
  last_time_ms_ = s.time_ms;
  last_limit_hits_ = s.limit_hits;
  last_oom_kills_ = s.oom_kills;
  last_stall_ns_ = s.reclaim_stall_ns;

  if (s.limit_bytes == 0 || oom_killed) {
    // Unlimited cgroups are never predicted; after a kill the history describes dead processes.
    ResetModels();
    if (oom_killed) prior_peak_mib_ = -1;
    consecutive_ = 0;
    if (state_ == Prediction::State::kAtRisk) {
      state_ = Prediction::State::kCleared;
      current_.changed = true;
    }
    current_.state = state_;
    current_.time_to_oom_ms = -1;
    current_.confidence = 0;
    current_.growth_bytes_per_second = 0;
    current_.model = "";
    current_.reason = s.limit_bytes == 0 ? "unlimited" : "oom_killed";
    next_delay_ms_ = p.cadence_idle_ms;
    return current_;
  }

  if (dt_s > p.gap_reset_s) ResetModels();
  constexpr double kPerMiB = 1.0 / kMiB;
  const double y = static_cast<double>(nr_bytes) * kPerMiB;
  const double limit = static_cast<double>(s.limit_bytes) * kPerMiB;
  if (fast_.samples == 0) {
    fast_.Add(0, 1, y);
    slow_.Add(0, 1, y);
  } else {
    // Sampling is usually periodic: reuse the decay factors while the interval repeats.
    if (dt_s != cached_dt_s_) {
      cached_dt_s_ = dt_s;
      cached_fast_decay_ = std::exp(dt_s * fast_decay_per_s_ln_);
      cached_slow_decay_ = std::exp(dt_s * slow_decay_per_s_ln_);
    }
    fast_.Add(dt_s, cached_fast_decay_, y);
    slow_.Add(dt_s, cached_slow_decay_, y);
    history_s_ += dt_s;
  }
  UpdateEnvelope(s.time_ms, y, limit);
  UpdateStaircase(s.time_ms, y, limit);
  if (min_mib_ < 0 || y < min_mib_) min_mib_ = y;
  const double rise_mib = last_mib_ >= 0 ? y - last_mib_ : 0;  // since the previous sample
  last_mib_ = y;

  // --- Candidates from each model; the earliest time to OOM wins. ---
  Candidate best;
  const double max_peak = max_peak_mib_;
  const bool sawtooth =
      last_drop_time_ms_ >= 0 &&
      s.time_ms - last_drop_time_ms_ <= static_cast<int64_t>(p.envelope_idle_s * 1000);
  if (prior_peak_mib_ >= 0 && (s.limit_bytes != prior_limit_bytes_ ||
                               y >= prior_peak_mib_ + p.restart_margin_fraction * limit)) {
    prior_peak_mib_ = -1;  // outgrown the previous run, or not comparable with it
  }
  // The heap ceiling: set from the first sample with a cap (a new cap sets it again), dropped for
  // good once memory outgrows it; it gates only while it is below the limit.
  if (s.runtime_heap_cap_bytes != heap_cap_bytes_ && p.heap_cap_margin_fraction > 0) {
    heap_cap_bytes_ = s.runtime_heap_cap_bytes;
    heap_ceiling_mib_ =
        heap_cap_bytes_ == 0 ? -1 : y + static_cast<double>(heap_cap_bytes_) * kPerMiB;
  }
  const double ceiling_top = heap_ceiling_mib_ + p.heap_cap_margin_fraction *
                                                     static_cast<double>(heap_cap_bytes_) * kPerMiB;
  if (heap_ceiling_mib_ >= 0 && y >= ceiling_top) heap_ceiling_mib_ = -1;
  const bool under_ceiling = heap_ceiling_mib_ >= 0 && ceiling_top < limit;
  const bool oversized = heap_ceiling_mib_ >= 0 && ceiling_top >= limit;
  const bool gated = (sawtooth && y < max_peak + p.breakout_margin_fraction * limit) ||
                     prior_peak_mib_ >= 0 || under_ceiling;

  // Significance without square roots: slope - z * k * se > 0  <=>  slope > 0 and
  // slope^2 > (z k)^2 var. The square root is only taken for a candidate's confidence.
  double fast_level = 0, fast_slope = 0, fast_var = 0;
  const bool fast_ok =
      fast_.samples >= p.fast_min_samples && fast_.Fit(&fast_level, &fast_slope, &fast_var);
  // Raising needs this sample to be rising too (fast_confirm_fraction); keeping does not.
  const bool fast_rising = p.fast_confirm_fraction <= 0 || state_ == Prediction::State::kAtRisk ||
                           rise_mib >= p.fast_confirm_fraction * fast_slope * dt_s;
  if (!gated && fast_ok && fast_rising && fast_slope > 0 &&
      fast_slope * fast_slope > fast_z2_ * fast_var) {
    // Fast ramps must reach the limit within the horizon even at the low end of the slope's
    // interval: a noisy wiggle near the limit has a wide interval, a real ramp a narrow one.
    const double headroom = std::max(0.0, limit - fast_level);
    const double se = std::sqrt(fast_var) * p.fast_error_inflation;
    if (headroom <= p.fast_horizon_s * (fast_slope - p.fast_z * se)) {
      Consider(&best, headroom / fast_slope, SlopeConfidence(fast_slope, se, p.fast_z), fast_slope,
               "trend", "fast_growth");
    }
  }
  double slow_level = 0, slow_slope = 0, slow_var = 0;
  const bool slow_ready =
      history_s_ >= p.slow_min_history_s ||
      (last_drop_time_ms_ < 0 &&
       history_s_ >= (oversized ? p.oversized_early_min_history_s : p.early_min_history_s) &&
       y - min_mib_ >= p.early_rise_fraction * limit);
  // The sawtooth gate stops in-cycle rises from raising an alarm; it does not take the slow
  // trend's support from an alarm that is up: a collection does not refute the long fit's trend,
  // which already includes the drop (a V8 heap leaking under frequent small collections,
  // kernel_node_rising_floor.jsonl, lost its alarm at its first large collection and was then held
  // off by the cooldown until 12 s before its OOM).
  const bool keeping = state_ == Prediction::State::kAtRisk;
  if ((!gated || keeping) && slow_ready && slow_.Fit(&slow_level, &slow_slope, &slow_var)) {
    const bool pressured = pressure >= 1;
    // Early (young history, early-rise rule), the long fit is mostly the start-up itself, so the
    // recent (fast) slope must agree with it, with hysteresis: to raise, its interval must lie
    // above slow_recent_slope_fraction of the long slope (growth going on now, not a fill that
    // stopped seconds ago or one step); to keep an alarm, only its top must (growth not seen
    // to stop). Sampled more coarsely than the fast fit resolves (its variance infinite: a few
    // seconds apart), the recent slope says nothing, and the long fit decides alone.
    bool recent_disagrees = false;
    if (history_s_ < p.slow_min_history_s && p.slow_recent_slope_fraction > 0 && fast_ok &&
        std::isfinite(fast_var)) {
      const double bound = p.fast_z * std::sqrt(fast_var) * p.fast_error_inflation;
      const double recent = keeping ? fast_slope + bound : fast_slope - bound;
      recent_disagrees = recent < p.slow_recent_slope_fraction * slow_slope;
    }
    if (!recent_disagrees && slow_slope > 0 &&
        slow_slope * slow_slope > (pressured ? pressure_slow_z2_ : slow_z2_) * slow_var) {
      const double headroom = std::max(0.0, limit - slow_level);
      if (headroom <= p.slow_horizon_s * slow_slope) {
        const double z = pressured ? p.pressure_slow_z : p.slow_z;
        const double se = std::sqrt(slow_var) * p.slow_error_inflation;
        Consider(&best, headroom / slow_slope, SlopeConfidence(slow_slope, se, z), slow_slope,
                 "trend", "steady_growth");
      }
    }
  }
  if (sawtooth && peak_fit_valid_ && peak_fit_slope_ > 0 &&
      peak_fit_slope_ > p.envelope_z * peak_fit_se_) {
    const double level = peak_fit_level_ + peak_fit_slope_ *
                                               static_cast<double>(s.time_ms - peak_fit_ref_ms_) /
                                               1000.0;
    const double headroom = std::max(0.0, limit - level);
    if (headroom <= p.envelope_horizon_s * peak_fit_slope_) {
      Consider(&best, headroom / peak_fit_slope_,
               SlopeConfidence(peak_fit_slope_, peak_fit_se_, p.envelope_z), peak_fit_slope_,
               "envelope", "rising_peaks");
    }
  }
  // A staircase that has made two steps and has less headroom left than its largest step: one more
  // such step reaches the limit. Its flat plateaus give the trends nothing to see (a JVM heap
  // committed region by region, kernel_jvm_heap_oversized.jsonl, sat at 85% and then 90% of its
  // limit for a minute before the last step killed it).
  if (!gated && steps_ >= 2 && last_step_ms_ > prev_step_ms_) {
    const double headroom = std::max(0.0, limit - y);
    const double interval_ms = static_cast<double>(last_step_ms_ - prev_step_ms_);
    if (headroom < largest_step_mib_ &&
        static_cast<double>(s.time_ms - last_step_ms_) < p.step_stale_intervals * interval_ms) {
      const double rate_mib_s = last_step_mib_ / (interval_ms / 1000.0);
      if (headroom <= p.slow_horizon_s * rate_mib_s) {
        Consider(&best, headroom / rate_mib_s,
                 std::clamp(1.0 - headroom / largest_step_mib_, 0.05, 0.9), rate_mib_s, "staircase",
                 "stepped_growth", last_step_ms_ > last_clear_ms_);
      }
    }
  }
  if (pressure >= 1 && y >= p.pressure_min_fraction * limit && fast_ok && fast_slope > 0 &&
      fast_slope * fast_slope > pressure_fast_z2_ * fast_var) {
    double tt = std::min(std::max(0.0, limit - fast_level) / fast_slope, p.slow_horizon_s);
    Consider(&best, tt, std::min(0.99, 0.5 + 0.1 * pressure), fast_slope, "pressure",
             "pressure_near_limit");
  }

  // --- Combiner: hysteresis, hold, cooldown. ---
  if (state_ == Prediction::State::kAtRisk) {
    if (best.present) {
      last_support_ms_ = s.time_ms;
      oom_deadline_ms_ = s.time_ms + static_cast<int64_t>(best.time_to_oom_s * 1000);
      current_.confidence = best.confidence;
      current_.growth_bytes_per_second = best.growth_bytes_per_s;
      current_.model = best.model;
      current_.reason = best.reason;
    } else {
      // No model supports the alarm any more. It clears when the hold is over, or once the
      // predicted OOM time has passed without the OOM: the prediction was wrong, so it is not
      // held at "0 s to OOM" for the rest of the hold. Heaps allowed past the limit get a grace
      // past that time: one that paused short of the limit is not refuted by the pause.
      const int64_t clear_at_ms =
          oom_deadline_ms_ +
          (oversized ? static_cast<int64_t>(p.oversized_deadline_grace_s * 1000) : 0);
      if (static_cast<double>(s.time_ms - last_support_ms_) >= p.clear_hold_s * 1000 ||
          s.time_ms >= clear_at_ms) {
        state_ = Prediction::State::kCleared;
        current_.changed = true;
        current_.reason = s.time_ms >= oom_deadline_ms_ ? "deadline_passed" : "risk_gone";
        cooldown_until_ms_ = s.time_ms + static_cast<int64_t>(p.cooldown_s * 1000);
        last_clear_ms_ = s.time_ms;
      }
    }
  } else if (best.present) {
    ++consecutive_;
    if (consecutive_ >= p.raise_consecutive &&
        (s.time_ms >= cooldown_until_ms_ || best.time_to_oom_s <= p.fast_horizon_s ||
         best.after_clear)) {
      state_ = Prediction::State::kAtRisk;
      current_.changed = true;
      consecutive_ = 0;
      last_support_ms_ = s.time_ms;
      oom_deadline_ms_ = s.time_ms + static_cast<int64_t>(best.time_to_oom_s * 1000);
      current_.confidence = best.confidence;
      current_.growth_bytes_per_second = best.growth_bytes_per_s;
      current_.model = best.model;
      current_.reason = best.reason;
    }
  } else {
    consecutive_ = 0;
  }

  current_.state = state_;
  if (state_ == Prediction::State::kAtRisk) {
    current_.time_to_oom_ms = std::max<int64_t>(0, oom_deadline_ms_ - s.time_ms);
  } else {
    current_.time_to_oom_ms = -1;
    if (state_ == Prediction::State::kNone) {
      current_.confidence = 0;
      current_.growth_bytes_per_second = fast_ok ? fast_slope * kMiB : 0;
      current_.model = "";
      current_.reason = "";
    } else {
      current_.confidence = 0;
    }
  }

  // --- Cadence. ---
  double tt_s = std::numeric_limits<double>::infinity();
  if (state_ == Prediction::State::kAtRisk)
    tt_s = static_cast<double>(current_.time_to_oom_ms) / 1000;
  if (best.present) tt_s = std::min(tt_s, best.time_to_oom_s);
  if (tt_s <= p.fast_horizon_s) {
    next_delay_ms_ = p.cadence_urgent_ms;
  } else if (tt_s <= p.slow_horizon_s) {
    next_delay_ms_ = p.cadence_risk_ms;
  } else if (y < p.idle_fraction * limit &&
             !(fast_ok && fast_slope > 0 &&
               (limit - fast_level) / fast_slope <= 4 * p.slow_horizon_s)) {
    next_delay_ms_ = p.cadence_idle_ms;
  } else {
    next_delay_ms_ = p.cadence_default_ms;
  }
  return current_;
}

}  // namespace tapio::predict
