// Every tunable of the OOM predictor, with compiled-in defaults, and the JSON model-file loader.
//
// The model file (models/default.json, `--model_file`) is one flat JSON object whose keys are the
// field names below. Every key is optional (missing keys keep the compiled-in default); an unknown
// key, a wrong type or a value out of range is refused with a message naming the key. The
// compiled-in defaults and models/default.json are kept equal by a unit test.
#ifndef TAPIO_AGENT_PREDICT_MODEL_PARAMS_H_
#define TAPIO_AGENT_PREDICT_MODEL_PARAMS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace tapio::predict {

struct ModelParams {
  std::string name = "default";

  // --- Trend model: exponentially weighted linear regression on non-reclaimable bytes. ---
  // Two regressions run side by side: a fast one (short memory, catches ramps that reach the
  // limit within seconds) and a slow one (long memory, catches leaks minutes ahead).
  double fast_tau_s = 4;            // e-folding time of the fast regression's weights
  double slow_tau_s = 90;           // e-folding time of the slow regression's weights
  int64_t fast_min_samples = 4;     // the fast fit needs this many samples first
  double slow_min_history_s = 300;  // the slow fit needs this much history first...
  // ...unless, with no drop seen yet, memory has already risen by early_rise_fraction of the
  // limit above its minimum (more than one GC cycle of a heap that doubles between collections
  // would rise), after at least early_min_history_s. Young containers that leak to their limit
  // in under slow_min_history_s get minutes of warning instead of only the fast fit's seconds.
  double early_rise_fraction = 0.5;
  double early_min_history_s = 60;
  // The early-rise wait when the container's runtimes are allowed to fill it: their heap cap,
  // with its heap_cap_margin_fraction, reaches the limit (the complement of the heap ceiling).
  // Such a heap fills to its cap or its working set, whichever comes first; nothing stops it at
  // the limit. 20: JVMs allowed twice their 256 MiB limit filled it 70 s after their start and
  // were warned 12-16 s ahead after the 60 s wait, 34-40 s with this one (tune recording,
  // docs/prediction.md "Heaps allowed past the limit"). Without a cap the wait stays.
  double oversized_early_min_history_s = 20;
  // While the slow trend warns through the early-rise rule (less than slow_min_history_s of
  // history), it does so only while growth goes on: to raise, the fast fit's slope at the bottom
  // of its fast_z interval must be at least this fraction of the slow slope; to keep an alarm,
  // at the top (0 = no such check). A start-up ramp that has levelled off (a JVM committing its
  // heap: kernel_agent_jvm_steady.jsonl; redis loading its data in steps: kernel_redis.jsonl)
  // keeps a positive slow slope for a minute or two after it stopped; this lets it stay quiet.
  double slow_recent_slope_fraction = 0.25;
  double fast_z = 3.0;  // growth must exceed z standard errors to count
  double slow_z = 4.0;
  // Multiplies the slope's standard error: consecutive samples of real workloads are correlated,
  // so the i.i.d. error underestimates the uncertainty.
  double fast_error_inflation = 1.0;
  double slow_error_inflation = 2.0;
  double fast_horizon_s = 30;  // fast fit raises when time to OOM is below this
  // The fast fit raises only on a sample that itself rose by at least this fraction of the fit's
  // slope times the sampling interval (0 = no such check). Its weights lag by fast_tau_s: a heap
  // committed in steps (a JVM growing to -Xmx: kernel_jvm_stable_peak.jsonl) still has a steep
  // fitted slope for seconds after the last step, while a ramp that will reach the limit is
  // still rising on the sample that raises. An alarm that is up is not held to this.
  double fast_confirm_fraction = 0.25;
  double slow_horizon_s = 300;  // slow fit raises when time to OOM is below this

  // --- Envelope model: sawtooth (garbage-collected) heaps. ---
  // A "drop" is a fall of at least drop_min_fraction of the limit within drop_max_duration_s of
  // the cycle's peak. After a drop the trend fits are only trusted when memory breaks out above
  // the highest recent peak; the risk comes from the trend of the peaks instead.
  double drop_min_fraction = 0.08;
  double drop_max_duration_s = 20;
  double envelope_idle_s = 900;    // no drop for this long: back to plain trend mode
  int64_t envelope_min_peaks = 3;  // peaks needed before the peak trend is trusted
  double envelope_z = 2.0;
  double envelope_horizon_s = 600;
  double breakout_margin_fraction = 0.03;  // of the limit, above the highest recent peak

  // --- Staircase model: growth in steps (a JVM committing its heap a region at a time). ---
  // A plateau: step_plateau_s of samples within step_band_fraction of the limit of its first
  // one. A step: from one plateau to the next, a rise of at least step_min_fraction of the limit
  // done within step_max_duration_s. After two steps with no fall in between, when the headroom
  // left is smaller than the largest of them (one more such step reaches the limit), the rate of
  // the staircase (its last step over the time since the step before) gives the time to OOM. A
  // staircase that has not stepped for step_stale_intervals of its last interval has stopped. A
  // step made after the last clear is new evidence: it may raise within the cooldown.
  double step_min_fraction = 0.03;  // 0 = off
  double step_band_fraction = 0.01;
  double step_plateau_s = 3;
  double step_max_duration_s = 15;
  double step_stale_intervals = 2;

  // --- Restart prior: the previous run of the same workload (OomPredictor::SetPriorPeak). ---
  // A container's start-up fill (a cache warming to its size, a heap growing to its -Xmx) is, until
  // it levels off, the same curve as a leak from nothing. When the workload's previous run, at the
  // same limit, levelled off at a peak and was not OOM-killed, the trend models do not raise below
  // that peak plus this fraction of the limit; memory above it drops the prior (0 = no prior used).
  double restart_margin_fraction = 0.05;

  // --- Heap ceiling: the runtimes' own heap caps (MemorySample::runtime_heap_cap_bytes). ---
  // A heap capped below the container's limit levels off at its cap: memory at the first reading
  // that carries the cap plus the cap is how far the container can fill by its heaps. A runtime
  // adds memory of its own beside its heap (a JVM's metaspace, code cache, GC structures and
  // thread stacks): this fraction of the cap on top. While that ceiling is below the limit and
  // memory stays below it, the trend models do not raise (pressure still does). Memory above it
  // drops the ceiling for good (growth outside the heaps: native memory, another process);
  // 0 = caps not used. 0.25: a Parallel-GC JVM capped at 192 MiB used 216 MiB (tune recording,
  // docs/prediction.md "Runtime heap caps").
  double heap_cap_margin_fraction = 0.25;

  // --- Pressure model: limit hits, PSI, reclaim stalls. ---
  // Pressure alone never raises (a thrashing cgroup that does not grow is not going to be
  // killed); under pressure the slow fit needs less evidence (pressure_slow_z), and near the
  // limit (pressure_min_fraction) growth significant at pressure_fast_z raises.
  double psi_some_ref = 20;          // percent (memory.pressure some avg10) counted as pressure
  double psi_full_ref = 5;           // percent (full avg10)
  double stall_fraction_ref = 0.10;  // share of wall time in memcg reclaim (BPF)
  double pressure_slow_z = 2.5;
  double pressure_min_fraction = 0.96;  // non-reclaimable share of the limit
  double pressure_fast_z = 3.0;  // near the limit under pressure, fast growth at this z raises

  // --- Combiner: hysteresis and cooldown. ---
  int64_t raise_consecutive = 2;  // samples in a row with a candidate before raising
  double clear_hold_s = 60;       // no candidate for this long clears the alarm
  // An alarm whose predicted OOM time has passed without the OOM clears then, before the hold
  // ends (the prediction was wrong); one on heaps allowed past the limit (a cap with its margin
  // that reaches it) only this long after that time. Such a heap that stops short of the limit
  // has not been refuted: it grows again when its collector expands it. 60, the hold: a G1 heap
  // allowed twice its limit sat at 86-88% of it after its alarm's time and was killed 43 s later
  // (tune recordings, docs/prediction.md "Heaps allowed past the limit").
  double oversized_deadline_grace_s = 60;
  double cooldown_s = 180;   // no new raise this long after a clear (unless fast)
  double gap_reset_s = 300;  // a sampling gap longer than this restarts the fits

  // --- Adaptive sampling cadence (SuggestedNextSampleDelayMs). ---
  int64_t cadence_idle_ms = 2000;  // non-reclaimable below idle_fraction and not growing
  int64_t cadence_default_ms = 1000;
  int64_t cadence_risk_ms = 500;    // time to OOM within slow_horizon_s
  int64_t cadence_urgent_ms = 250;  // time to OOM within fast_horizon_s
  double idle_fraction = 0.5;
  // The agent's trigger between readings: when the BPF RSS records of a cgroup's processes show
  // net growth of this share of its limit since its last reading, it is read at once, not at the
  // cadence's next tick, so a jump is seen when it happens (0 = off). tapio-eval models it.
  double jump_trigger_fraction = 0;  // opt-in (2% measured with --rss_stat_hook); see docs
};

// Parses a model file. Errors name the offending key: "model file: key 'slow_z': must be > 0".
absl::StatusOr<ModelParams> LoadModelParams(const std::string& json_text);

// The parameters as a model file (pretty-printed, keys in declaration order), loadable again.
std::string ModelParamsToJson(const ModelParams& params);

}  // namespace tapio::predict

#endif  // TAPIO_AGENT_PREDICT_MODEL_PARAMS_H_
