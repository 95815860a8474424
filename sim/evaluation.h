// Evaluation: replays labelled traces through the predictor and two baselines, and scores them.
//
// Definitions (also in docs/prediction.md):
//   alarm episode   from a raise (not at risk -> at risk) to the next clear (or the trace end).
//   detected        a positive trace whose detector is at risk at its last sample before the OOM;
//                   lead = OOM time - raise time of that episode. A missed trace has lead 0.
//   recall@L        share of positive traces with lead >= L seconds.
//   false alarm     a raise that is not followed by an OOM while its episode lasts or within
//                   kFalseAlarmHorizonS of the raise. Every raise on a negative trace is one.
//                   Rate = false alarms / container-hours replayed (negatives unless stated).
//   TTO error       |predicted time to OOM at the raise - actual time left|, detected traces.
#ifndef TAPIO_SIM_EVALUATION_H_
#define TAPIO_SIM_EVALUATION_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/predict/model_params.h"
#include "agent/predict/predictor.h"
#include "agent/predict/trace.h"
#include "sim/simulator.h"

namespace tapio::sim {

struct AlertRule;  // sim/alert_rule.h

inline constexpr double kFalseAlarmHorizonS = 900;
inline constexpr std::array<double, 4> kRecallLeadsS = {5, 10, 30, 60};

// What every detector under evaluation reports per sample.
struct Verdict {
  bool at_risk = false;
  double time_to_oom_s = -1;  // -1 when the detector gives none
};

class Detector {
 public:
  virtual ~Detector() = default;
  virtual Verdict Update(const predict::MemorySample& s) = 0;
  // Delay to the next sample this detector would like (only the model's is used for cadence).
  virtual int64_t NextDelayMs() const { return 1000; }
  // The previous run of the same workload (OomPredictor::SetPriorPeak); baselines ignore it.
  virtual void SetPriorPeak(uint64_t peak_bytes, uint64_t limit_bytes) {}
};

enum class DetectorKind : uint8_t { kModel = 0, kThreshold = 1, kUsageTrend = 2 };
inline constexpr int kDetectorCount = 3;
std::string_view DetectorName(DetectorKind k);  // "tapio", "threshold90", "usage_trend"

// kModel: OomPredictor with `params`; kThreshold: non-reclaimable >= 90% of the limit;
// kUsageTrend: least squares over the last 60 s of total usage, at risk when the line reaches the
// limit within 300 s.
std::unique_ptr<Detector> MakeDetector(DetectorKind kind, const predict::ModelParams* params);

struct TraceResult {
  std::string workload_class;
  ClassGroup group = ClassGroup::kNegative;
  bool positive = false;  // the label says OOM
  double duration_s = 0;  // replayed span
  int64_t samples = 0;
  bool detected = false;
  double lead_s = 0;
  double tto_error_s = -1;  // -1 when not detected or the detector gives no estimate
  int64_t raises = 0;
  int64_t false_alarms = 0;
  std::vector<int64_t> raise_times_ms;
};

// Replays `samples` (those before the OOM only) through a detector.
TraceResult ScoreTrace(const predict::Trace& trace, Detector* detector, ClassGroup group);

struct Summary {
  int64_t traces = 0, positives = 0, detected = 0;
  std::array<double, 4> recall{};  // at kRecallLeadsS; NaN-free: 0 when no positives
  double lead_p10_s = 0, lead_p50_s = 0, lead_p90_s = 0;  // over positives, missed = 0
  double container_hours = 0;
  int64_t false_alarms = 0;
  double false_alarms_per_hour = 0;
  double tto_error_p50_s = -1;
};
Summary Summarize(const std::vector<const TraceResult*>& results);

struct EvalReport {
  std::string split;  // "tune", "test", or "files"
  int64_t seeds_per_class = 0;
  // [detector][row]: one row per class present, then pooled rows.
  struct Row {
    std::string name;  // class name or "pooled:<group>" / "pooled:positives"
    std::string group;
    Summary summary;
  };
  std::array<std::vector<Row>, kDetectorCount> rows;
  // Recall curve over lead 0..600 s (pooled positives), for the plot.
  std::array<std::vector<double>, kDetectorCount> recall_curve;
  std::array<std::vector<double>, kDetectorCount> lead_sorted;  // pooled positives
  std::string model_note;  // how the model was scored, when not by its own raises
};

// How often the agent sees RSS between readings: its default --snapshot_interval_ms. With
// --rss_stat_hook --rss_track_all it sees every page fault: model that with a probe of 50 ms.
inline constexpr int64_t kJumpProbeMs = 1000;
inline constexpr int64_t kJumpLatencyMs = 60;

struct EvalOptions {
  int64_t seeds_per_class = 40;
  uint64_t seed_base = kTestSeedBase;
  // Cadence: 0 = the model's adaptive cadence (SuggestedNextSampleDelayMs), else fixed.
  int64_t cadence_ms = 0;
  double noise_scale = 1.0;              // see MemcgSimulator
  int64_t jump_probe_ms = kJumpProbeMs;  // adaptive cadence: see JumpTriggerTime
  // Score the model by the pages of this alert rule instead of its raises (not owned).
  const AlertRule* alert_rule = nullptr;
};

// Generates the split and scores every detector on the same samples.
EvalReport EvaluateSimulated(const predict::ModelParams& params, const EvalOptions& options);
// What the agent remembers of a finished run for the next one (Pipeline::RememberRun): the
// trace's RunPeak. Nothing for a run that was OOM-killed or unlimited.
std::optional<predict::RunPeak> PriorRunOf(const predict::Trace& trace);
// A replica of the same workload still running when a new run starts at `at_ms` (a rolling update
// or a scale-up starts it beside the old ones; Pipeline's live-peer prior): the peer's RunPeak
// up to then, as the agent would see it. Nothing if the peer had not started or had ended by then,
// was OOM-killed, or was itself at risk (its own predictor replayed to `at_ms`).
std::optional<predict::RunPeak> LivePeerRunOf(const predict::Trace& peer, int64_t at_ms,
                                              const predict::ModelParams& params);

// Scores traces read from files (their recorded cadence). `priors`, when not empty, is aligned
// with `traces`: each trace with a prior is replayed as the restart of that run. `alert_rule`:
// as in EvalOptions.
EvalReport EvaluateTraces(const predict::ModelParams& params,
                          const std::vector<predict::Trace>& traces,
                          const std::vector<std::optional<predict::RunPeak>>& priors = {},
                          const AlertRule* alert_rule = nullptr);

// Samples of one simulated trace as the agent reads them: at the model's adaptive cadence, and
// sooner when the jump trigger fires (JumpTriggerTime).
predict::Trace SampleAdaptively(const MemcgSimulator& sim, const predict::ModelParams& params,
                                int64_t jump_probe_ms = kJumpProbeMs);

// The agent's jump trigger between two readings (ModelParams::jump_trigger_fraction), modelled:
// the first probe at which non-reclaimable memory has grown by that share of the limit since
// `last`, plus kJumpLatencyMs (the pipeline folds RSS moves after every poll and its sampler wakes
// at least every 50 ms); `next_ms` when none does before it. Probes are where the agent sees RSS:
// its task-iterator snapshots, every `probe_ms` at a phase of their own.
int64_t JumpTriggerTime(const MemcgSimulator& sim, const predict::ModelParams& params,
                        const predict::MemorySample& last, int64_t next_ms, int64_t probe_ms);

// Goals from the brief, checked on a report. Empty = all met; otherwise one line per miss.
std::vector<std::string> CheckGoals(const EvalReport& report);

std::string ReportToMarkdown(const EvalReport& report);
std::string ReportToJson(const EvalReport& report);
std::string RecallPlotSvg(const EvalReport& report);
// One trace with the model's alarm marked (non-reclaimable and usage vs limit).
std::string TracePlotSvg(const predict::Trace& trace, const TraceResult& model_result,
                         const std::string& title);

}  // namespace tapio::sim

#endif  // TAPIO_SIM_EVALUATION_H_
