#include "sim/evaluation.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "sim/alert_rule.h"

namespace tapio::sim {
namespace {

using predict::MemorySample;

class ModelDetector : public Detector {
 public:
  explicit ModelDetector(const predict::ModelParams* params) : predictor_(params) {}
  Verdict Update(const MemorySample& s) override {
    predict::Prediction p = predictor_.Update(s);
    Verdict v;
    v.at_risk = p.state == predict::Prediction::State::kAtRisk;
    v.time_to_oom_s = v.at_risk ? static_cast<double>(p.time_to_oom_ms) / 1000 : -1;
    return v;
  }
  int64_t NextDelayMs() const override { return predictor_.SuggestedNextSampleDelayMs(); }
  void SetPriorPeak(uint64_t peak_bytes, uint64_t limit_bytes) override {
    predictor_.SetPriorPeak(peak_bytes, limit_bytes);
  }

 private:
  predict::OomPredictor predictor_;
};

// Baseline 1: non-reclaimable memory at or above 90% of the limit.
class ThresholdDetector : public Detector {
 public:
  Verdict Update(const MemorySample& s) override {
    Verdict v;
    v.at_risk = s.limit_bytes > 0 && static_cast<double>(predict::NonReclaimableBytes(s)) >=
                                         0.9 * static_cast<double>(s.limit_bytes);
    return v;
  }
};

// Baseline 2: least-squares line through total usage over the last 60 s; at risk when it
// reaches the limit within 300 s.
class UsageTrendDetector : public Detector {
 public:
  Verdict Update(const MemorySample& s) override {
    window_.emplace_back(s.time_ms, static_cast<double>(s.usage_bytes));
    while (!window_.empty() && window_.front().first < s.time_ms - 60000) window_.pop_front();
    Verdict v;
    if (s.limit_bytes == 0 || window_.size() < 3) return v;
    double n = static_cast<double>(window_.size()), st = 0, sy = 0, stt = 0, sty = 0;
    for (const auto& [t_ms, y] : window_) {
      double t = static_cast<double>(t_ms - s.time_ms) / 1000;
      st += t;
      sy += y;
      stt += t * t;
      sty += t * y;
    }
    double sxx = stt - st * st / n;
    if (sxx <= 0) return v;
    double b = (sty - st * sy / n) / sxx;
    double level = sy / n - b * st / n;
    if (b <= 0) return v;
    double tt = std::max(0.0, static_cast<double>(s.limit_bytes) - level) / b;
    if (tt <= 300) {
      v.at_risk = true;
      v.time_to_oom_s = tt;
    }
    return v;
  }

 private:
  std::deque<std::pair<int64_t, double>> window_;
};

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double pos = q * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

ClassGroup GroupForTrace(const predict::Trace& t) {
  WorkloadClass c;
  if (ParseWorkloadClass(t.header.workload_class, &c)) return GroupOf(c);
  return t.header.oom_time_ms ? ClassGroup::kPredictable : ClassGroup::kNegative;
}

EvalReport BuildReport(std::array<std::vector<TraceResult>, kDetectorCount> results,
                       std::string split, int64_t seeds_per_class) {
  EvalReport report;
  report.split = std::move(split);
  report.seeds_per_class = seeds_per_class;
  for (int d = 0; d < kDetectorCount; ++d) {
    std::vector<std::string> order;
    std::map<std::string, std::vector<const TraceResult*>> by_class;
    std::map<ClassGroup, std::vector<const TraceResult*>> by_group;
    std::vector<const TraceResult*> positives;
    for (const TraceResult& r : results[d]) {
      if (!by_class.count(r.workload_class)) order.push_back(r.workload_class);
      by_class[r.workload_class].push_back(&r);
      by_group[r.group].push_back(&r);
      if (r.positive) positives.push_back(&r);
    }
    for (const std::string& c : order) {
      report.rows[d].push_back(
          {c, std::string(ClassGroupName(by_class[c].front()->group)), Summarize(by_class[c])});
    }
    for (ClassGroup g : {ClassGroup::kPredictable, ClassGroup::kFastRamp, ClassGroup::kNegative}) {
      if (by_group.count(g)) {
        report.rows[d].push_back({absl::StrCat("pooled:", std::string(ClassGroupName(g))),
                                  std::string(ClassGroupName(g)), Summarize(by_group[g])});
      }
    }
    report.rows[d].push_back({"pooled:positives", "positives", Summarize(positives)});
    for (const TraceResult* r : positives) report.lead_sorted[d].push_back(r->lead_s);
    std::sort(report.lead_sorted[d].begin(), report.lead_sorted[d].end());
    for (int lead = 0; lead <= 600; lead += 5) {
      double n = 0;
      for (double l : report.lead_sorted[d]) n += (l >= lead && l > 0) ? 1 : 0;
      report.recall_curve[d].push_back(
          positives.empty() ? 0 : n / static_cast<double>(positives.size()));
    }
  }
  return report;
}

const EvalReport::Row* FindRow(const EvalReport& r, int d, const std::string& name) {
  for (const auto& row : r.rows[d]) {
    if (row.name == name) return &row;
  }
  return nullptr;
}

}  // namespace

std::string_view DetectorName(DetectorKind k) {
  switch (k) {
    case DetectorKind::kModel:
      return "tapio";
    case DetectorKind::kThreshold:
      return "threshold90";
    case DetectorKind::kUsageTrend:
      return "usage_trend";
  }
  return "unknown";
}

std::unique_ptr<Detector> MakeDetector(DetectorKind kind, const predict::ModelParams* params) {
  switch (kind) {
    case DetectorKind::kModel:
      return std::make_unique<ModelDetector>(params);
    case DetectorKind::kThreshold:
      return std::make_unique<ThresholdDetector>();
    case DetectorKind::kUsageTrend:
      return std::make_unique<UsageTrendDetector>();
  }
  return nullptr;
}

TraceResult ScoreTrace(const predict::Trace& trace, Detector* detector, ClassGroup group) {
  TraceResult r;
  r.workload_class = trace.header.workload_class;
  r.group = group;
  const std::optional<int64_t> oom = trace.header.oom_time_ms;
  r.positive = oom.has_value();
  struct Episode {
    int64_t raise_ms;
    int64_t clear_ms;  // INT64_MAX while open
    double tto_s;
  };
  std::vector<Episode> episodes;
  bool at_risk = false;
  int64_t first_ms = -1, last_ms = -1;
  for (const MemorySample& s : trace.samples) {
    if (oom && s.time_ms >= *oom) break;
    if (first_ms < 0) first_ms = s.time_ms;
    last_ms = s.time_ms;
    ++r.samples;
    Verdict v = detector->Update(s);
    if (v.at_risk && !at_risk) {
      episodes.push_back({s.time_ms, INT64_MAX, v.time_to_oom_s});
      r.raise_times_ms.push_back(s.time_ms);
    } else if (!v.at_risk && at_risk) {
      episodes.back().clear_ms = s.time_ms;
    }
    at_risk = v.at_risk;
  }
  // The replayed span runs to the OOM (positives) or the last sample.
  r.duration_s = first_ms < 0 ? 0 : static_cast<double>((oom ? *oom : last_ms) - first_ms) / 1000;
  r.raises = static_cast<int64_t>(episodes.size());
  for (const Episode& e : episodes) {
    bool explained = oom && (e.clear_ms == INT64_MAX ||
                             static_cast<double>(*oom - e.raise_ms) <= kFalseAlarmHorizonS * 1000);
    if (!explained) ++r.false_alarms;
  }
  if (oom && at_risk && !episodes.empty()) {
    const Episode& e = episodes.back();
    r.detected = true;
    r.lead_s = static_cast<double>(*oom - e.raise_ms) / 1000;
    if (e.tto_s >= 0) r.tto_error_s = std::abs(e.tto_s - r.lead_s);
  }
  return r;
}

Summary Summarize(const std::vector<const TraceResult*>& results) {
  Summary s;
  std::vector<double> leads, errors;
  for (const TraceResult* r : results) {
    ++s.traces;
    if (r->positive) {
      ++s.positives;
      leads.push_back(r->detected ? r->lead_s : 0);
      if (r->detected) ++s.detected;
      if (r->tto_error_s >= 0) errors.push_back(r->tto_error_s);
    }
    s.container_hours += r->duration_s / 3600;
    s.false_alarms += r->false_alarms;
  }
  for (size_t i = 0; i < kRecallLeadsS.size(); ++i) {
    double n = 0;
    for (double l : leads) n += (l > 0 && l >= kRecallLeadsS[i]) ? 1 : 0;
    s.recall[i] = s.positives ? n / static_cast<double>(s.positives) : 0;
  }
  s.lead_p10_s = Percentile(leads, 0.1);
  s.lead_p50_s = Percentile(leads, 0.5);
  s.lead_p90_s = Percentile(leads, 0.9);
  s.false_alarms_per_hour =
      s.container_hours > 0 ? static_cast<double>(s.false_alarms) / s.container_hours : 0;
  s.tto_error_p50_s = errors.empty() ? -1 : Percentile(errors, 0.5);
  return s;
}

predict::Trace SampleAdaptively(const MemcgSimulator& sim, const predict::ModelParams& params,
                                int64_t jump_probe_ms) {
  predict::Trace trace;
  trace.header = sim.Header();
  predict::OomPredictor predictor(&params);
  // Start at a seed-dependent phase so sample times differ between traces.
  int64_t t = static_cast<int64_t>(sim.seed() * 7919 % 1000);
  while (t < sim.end_time_ms()) {
    MemorySample s = sim.SampleAt(t);
    trace.samples.push_back(s);
    predictor.Update(s);
    const int64_t next = t + std::max<int64_t>(1, predictor.SuggestedNextSampleDelayMs());
    t = std::min(next, JumpTriggerTime(sim, params, s, next, jump_probe_ms));
  }
  return trace;
}

int64_t JumpTriggerTime(const MemcgSimulator& sim, const predict::ModelParams& params,
                        const predict::MemorySample& last, int64_t next_ms, int64_t probe_ms) {
  if (params.jump_trigger_fraction <= 0 || last.limit_bytes == 0 || probe_ms <= 0) return next_ms;
  // The agent sums its processes' RSS moves (net) since the reading; in a one-process cgroup that
  // is the growth of its anonymous and shmem memory, the true one (BPF reads the counters, not a
  // noisy file).
  const double trigger_fraction =
      sim.NonReclaimableFraction(static_cast<double>(last.time_ms) / 1000) +
      params.jump_trigger_fraction;
  // Probes at 0.37 s past multiples of probe_ms: a phase unrelated to the readings'.
  const int64_t phase = 370 % probe_ms;
  int64_t probe = (last.time_ms - phase) / probe_ms * probe_ms + phase;
  while (probe <= last.time_ms) probe += probe_ms;
  for (; probe + kJumpLatencyMs < next_ms; probe += probe_ms) {
    if (sim.NonReclaimableFraction(static_cast<double>(probe) / 1000) >= trigger_fraction) {
      return probe + kJumpLatencyMs;
    }
  }
  return next_ms;
}

namespace {

// The detector scored: the model's pages through `alert_rule` when one is given.
std::unique_ptr<Detector> MakeScoredDetector(DetectorKind kind, const predict::ModelParams* params,
                                             const AlertRule* alert_rule) {
  std::unique_ptr<Detector> det = MakeDetector(kind, params);
  if (alert_rule == nullptr || kind != DetectorKind::kModel) return det;
  return std::make_unique<AlertRuleDetector>(std::move(det), *alert_rule);
}

std::string ModelNote(const AlertRule* alert_rule) {
  return alert_rule ? absl::StrCat("paged by TapioOomPredicted ", DescribeAlertRule(*alert_rule))
                    : std::string();
}

}  // namespace

EvalReport EvaluateSimulated(const predict::ModelParams& params, const EvalOptions& options) {
  std::array<std::vector<TraceResult>, kDetectorCount> results;
  for (int c = 0; c < kWorkloadClassCount; ++c) {
    for (int64_t i = 0; i < options.seeds_per_class; ++i) {
      MemcgSimulator sim(static_cast<WorkloadClass>(c),
                         options.seed_base + static_cast<uint64_t>(i), 3600, options.noise_scale);
      predict::Trace trace = options.cadence_ms > 0
                                 ? GenerateTrace(sim, options.cadence_ms, sim.seed() * 7919 % 1000)
                                 : SampleAdaptively(sim, params, options.jump_probe_ms);
      for (int d = 0; d < kDetectorCount; ++d) {
        auto det = MakeScoredDetector(static_cast<DetectorKind>(d), &params, options.alert_rule);
        results[d].push_back(ScoreTrace(trace, det.get(), GroupOf(sim.workload_class())));
      }
    }
  }
  EvalReport report =
      BuildReport(std::move(results), options.seed_base >= kTestSeedBase ? "test" : "tune",
                  options.seeds_per_class);
  report.model_note = ModelNote(options.alert_rule);
  return report;
}

std::optional<predict::RunPeak> PriorRunOf(const predict::Trace& trace) {
  if (trace.header.oom_time_ms) return std::nullopt;
  predict::RunPeak run;
  for (const MemorySample& s : trace.samples) run.Add(s);
  if (!run.usable()) return std::nullopt;
  return run;
}

std::optional<predict::RunPeak> LivePeerRunOf(const predict::Trace& peer, int64_t at_ms,
                                              const predict::ModelParams& params) {
  if (peer.samples.empty() || peer.samples.front().time_ms >= at_ms ||
      peer.samples.back().time_ms < at_ms ||
      (peer.header.oom_time_ms && *peer.header.oom_time_ms <= at_ms)) {
    return std::nullopt;
  }
  predict::OomPredictor predictor(&params);
  predict::RunPeak run;
  bool at_risk = false;
  for (const MemorySample& s : peer.samples) {
    if (s.time_ms > at_ms) break;
    at_risk = predictor.Update(s).state == predict::Prediction::State::kAtRisk;
    run.Add(s);
  }
  if (at_risk || !run.usable()) return std::nullopt;
  return run;
}

EvalReport EvaluateTraces(const predict::ModelParams& params,
                          const std::vector<predict::Trace>& traces,
                          const std::vector<std::optional<predict::RunPeak>>& priors,
                          const AlertRule* alert_rule) {
  std::array<std::vector<TraceResult>, kDetectorCount> results;
  for (size_t i = 0; i < traces.size(); ++i) {
    const predict::Trace& trace = traces[i];
    for (int d = 0; d < kDetectorCount; ++d) {
      auto det = MakeScoredDetector(static_cast<DetectorKind>(d), &params, alert_rule);
      if (i < priors.size() && priors[i]) {
        det->SetPriorPeak(priors[i]->peak_bytes, priors[i]->limit_bytes);
      }
      results[d].push_back(ScoreTrace(trace, det.get(), GroupForTrace(trace)));
    }
  }
  EvalReport report = BuildReport(std::move(results), "files", 0);
  report.model_note = ModelNote(alert_rule);
  return report;
}

std::vector<std::string> CheckGoals(const EvalReport& report) {
  std::vector<std::string> misses;
  const int m = static_cast<int>(DetectorKind::kModel);
  for (const auto& row : report.rows[m]) {
    if (row.name.rfind("pooled:", 0) == 0) continue;
    const Summary& s = row.summary;
    if (row.group == "predictable") {
      if (s.recall[2] < 0.9) {
        misses.push_back(absl::StrFormat("%s: recall@30s %.2f < 0.90", row.name, s.recall[2]));
      }
      if (s.lead_p50_s < 60) {
        misses.push_back(absl::StrFormat("%s: median lead %.0f s < 60 s", row.name, s.lead_p50_s));
      }
    } else if (row.group == "fast_ramp") {
      if (s.recall[0] < 0.7) {
        misses.push_back(absl::StrFormat("%s: recall@5s %.2f < 0.70", row.name, s.recall[0]));
      }
    } else if (row.group == "negative") {
      if (s.false_alarms_per_hour > 0.05) {
        misses.push_back(absl::StrFormat("%s: %.3f false alarms per container-hour > 0.05",
                                         row.name, s.false_alarms_per_hour));
      }
      if (row.name == "page_cache_at_limit" && s.false_alarms > 0) {
        misses.push_back(
            absl::StrFormat("page_cache_at_limit: %d false alarms, want 0", s.false_alarms));
      }
    }
  }
  const EvalReport::Row* neg = FindRow(report, m, "pooled:negative");
  if (neg && neg->summary.false_alarms_per_hour > 0.05) {
    misses.push_back(
        absl::StrFormat("pooled negatives: %.3f false alarms per container-hour > 0.05",
                        neg->summary.false_alarms_per_hour));
  }
  // Better than each baseline: at least its pooled recall@30s and at most its false-alarm rate
  // on negatives, strictly better in one of the two.
  const EvalReport::Row* pos = FindRow(report, m, "pooled:positives");
  for (int b = 1; b < kDetectorCount; ++b) {
    const EvalReport::Row* bpos = FindRow(report, b, "pooled:positives");
    const EvalReport::Row* bneg = FindRow(report, b, "pooled:negative");
    if (!pos || !bpos || !neg || !bneg) continue;
    double r = pos->summary.recall[2], br = bpos->summary.recall[2];
    double f = neg->summary.false_alarms_per_hour, bf = bneg->summary.false_alarms_per_hour;
    if (!(r >= br && f <= bf && (r > br || f < bf))) {
      misses.push_back(absl::StrFormat(
          "not better than %s: recall@30s %.2f vs %.2f, false alarms/h %.3f vs %.3f",
          DetectorName(static_cast<DetectorKind>(b)), r, br, f, bf));
    }
  }
  return misses;
}

std::string ReportToMarkdown(const EvalReport& report) {
  std::string out;
  for (int d = 0; d < kDetectorCount; ++d) {
    absl::StrAppend(&out, "#### ", std::string(DetectorName(static_cast<DetectorKind>(d))), " (",
                    report.split, " split",
                    report.seeds_per_class
                        ? absl::StrCat(", ", report.seeds_per_class, " seeds per class")
                        : "",
                    d == static_cast<int>(DetectorKind::kModel) && !report.model_note.empty()
                        ? absl::StrCat("; ", report.model_note)
                        : "",
                    ")\n\n");
    out +=
        "| class | group | traces | recall@5s | @10s | @30s | @60s | lead p10 / p50 / p90 (s) | "
        "false alarms | per container-hour | TTO error p50 (s) |\n";
    out += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& row : report.rows[d]) {
      const Summary& s = row.summary;
      bool pos = s.positives > 0;
      auto pct = [&](double v) {
        return pos ? absl::StrFormat("%.0f%%", 100 * v) : std::string("-");
      };
      std::string name =
          row.name.rfind("pooled:", 0) == 0 ? absl::StrCat("**", row.name, "**") : row.name;
      absl::StrAppend(
          &out, "| ", name, " | ", row.group, " | ", s.traces, " | ", pct(s.recall[0]), " | ",
          pct(s.recall[1]), " | ", pct(s.recall[2]), " | ", pct(s.recall[3]), " | ",
          pos ? absl::StrFormat("%.0f / %.0f / %.0f", s.lead_p10_s, s.lead_p50_s, s.lead_p90_s)
              : "-",
          " | ", s.false_alarms, " | ", absl::StrFormat("%.3f", s.false_alarms_per_hour), " | ",
          s.tto_error_p50_s >= 0 ? absl::StrFormat("%.0f", s.tto_error_p50_s) : "-", " |\n");
    }
    out += "\n";
  }
  return out;
}

std::string ReportToJson(const EvalReport& report) {
  nlohmann::ordered_json j;
  j["split"] = report.split;
  j["seeds_per_class"] = report.seeds_per_class;
  j["false_alarm_horizon_s"] = kFalseAlarmHorizonS;
  for (int d = 0; d < kDetectorCount; ++d) {
    auto& det = j["detectors"][std::string(DetectorName(static_cast<DetectorKind>(d)))];
    for (const auto& row : report.rows[d]) {
      const Summary& s = row.summary;
      nlohmann::ordered_json r;
      r["group"] = row.group;
      r["traces"] = s.traces;
      r["positives"] = s.positives;
      r["detected"] = s.detected;
      for (size_t i = 0; i < kRecallLeadsS.size(); ++i) {
        r[absl::StrCat("recall_at_", static_cast<int>(kRecallLeadsS[i]), "s")] = s.recall[i];
      }
      r["lead_p10_s"] = s.lead_p10_s;
      r["lead_p50_s"] = s.lead_p50_s;
      r["lead_p90_s"] = s.lead_p90_s;
      r["container_hours"] = s.container_hours;
      r["false_alarms"] = s.false_alarms;
      r["false_alarms_per_container_hour"] = s.false_alarms_per_hour;
      r["tto_error_p50_s"] = s.tto_error_p50_s;
      det[row.name] = r;
    }
  }
  j["goal_misses"] = CheckGoals(report);
  return j.dump(2) + "\n";
}

std::string RecallPlotSvg(const EvalReport& report) {
  const double w = 640, h = 400, left = 60, right = 180, top = 40, bottom = 50;
  const double pw = w - left - right, ph = h - top - bottom;
  static const char* kColors[] = {"#d62728", "#1f77b4", "#2ca02c"};
  std::string out = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" "
      "fill=\"white\"/>\n",
      w, h);
  absl::StrAppend(
      &out,
      absl::StrFormat("<text x=\"%.0f\" y=\"20\" font-size=\"14\">Recall vs lead time, positive "
                      "traces (%s split)</text>\n",
                      left, report.split));
  for (int i = 0; i <= 10; ++i) {
    double y = top + ph - ph * i / 10.0;
    absl::StrAppend(
        &out,
        absl::StrFormat("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n",
                        left, y, left + pw, y, left - 5, y + 4, i * 10));
  }
  for (int lead = 0; lead <= 600; lead += 60) {
    double x = left + pw * lead / 600.0;
    absl::StrAppend(
        &out,
        absl::StrFormat("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n",
                        x, top, x, top + ph, x, top + ph + 15, lead));
  }
  absl::StrAppend(&out, absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">lead "
                                        "time before the OOM kill (s)</text>\n",
                                        left + pw / 2, h - 10));
  const int m = static_cast<int>(DetectorKind::kModel);
  (void)m;
  for (int d = 0; d < kDetectorCount; ++d) {
    std::string pts;
    for (size_t i = 0; i < report.recall_curve[d].size(); ++i) {
      double x = left + pw * (5.0 * static_cast<double>(i)) / 600.0;
      double y = top + ph - ph * report.recall_curve[d][i];
      absl::StrAppend(&pts, absl::StrFormat("%.1f,%.1f ", x, y));
    }
    absl::StrAppend(
        &out, absl::StrFormat(
                  "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n",
                  kColors[d], pts));
    const EvalReport::Row* neg = FindRow(report, d, "pooled:negative");
    double fa = neg ? neg->summary.false_alarms_per_hour : 0;
    double ly = top + 20 + 40.0 * d;
    absl::StrAppend(
        &out,
        absl::StrFormat("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                        "stroke-width=\"2\"/>"
                        "<text x=\"%.1f\" y=\"%.1f\">%s</text><text x=\"%.1f\" y=\"%.1f\" "
                        "font-size=\"10\">%.3f false alarms/h</text>\n",
                        left + pw + 10, ly, left + pw + 30, ly, kColors[d], left + pw + 35, ly + 4,
                        DetectorName(static_cast<DetectorKind>(d)), left + pw + 35, ly + 18, fa));
  }
  out += "</svg>\n";
  return out;
}

std::string TracePlotSvg(const predict::Trace& trace, const TraceResult& model_result,
                         const std::string& title) {
  const double w = 640, h = 300, left = 60, right = 20, top = 40, bottom = 45;
  const double pw = w - left - right, ph = h - top - bottom;
  if (trace.samples.empty()) return "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n";
  const double t0 = static_cast<double>(trace.samples.front().time_ms);
  double t1 = static_cast<double>(trace.header.oom_time_ms.value_or(trace.samples.back().time_ms));
  if (t1 <= t0) t1 = t0 + 1;
  double limit = static_cast<double>(trace.samples.front().limit_bytes);
  if (limit <= 0) limit = 1;
  auto X = [&](double t) { return left + pw * (t - t0) / (t1 - t0); };
  auto Y = [&](double f) { return top + ph - ph * std::clamp(f, 0.0, 1.05) / 1.05; };
  std::string out = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "font-family=\"sans-serif\" "
      "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%.0f\" y=\"20\" font-size=\"14\">%s</text>\n",
      w, h, left, title);
  for (int64_t raise : model_result.raise_times_ms) {
    absl::StrAppend(
        &out, absl::StrFormat("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                              "stroke=\"#d62728\" stroke-dasharray=\"4,3\"/>"
                              "<text x=\"%.1f\" y=\"%.1f\" fill=\"#d62728\">alarm</text>\n",
                              X(static_cast<double>(raise)), top, X(static_cast<double>(raise)),
                              top + ph, X(static_cast<double>(raise)) + 3, top + 12));
  }
  if (trace.header.oom_time_ms) {
    absl::StrAppend(
        &out, absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">OOM kill</text>\n",
                              X(t1), top - 4));
  }
  absl::StrAppend(
      &out,
      absl::StrFormat("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">limit</text>\n",
                      left, Y(1), left + pw, Y(1), left - 5, Y(1) + 4));
  std::string nr, usage;
  size_t step = std::max<size_t>(1, trace.samples.size() / 800);
  for (size_t i = 0; i < trace.samples.size(); i += step) {
    const MemorySample& s = trace.samples[i];
    double x = X(static_cast<double>(s.time_ms));
    absl::StrAppend(
        &nr, absl::StrFormat("%.1f,%.1f ", x,
                             Y(static_cast<double>(predict::NonReclaimableBytes(s)) / limit)));
    absl::StrAppend(
        &usage, absl::StrFormat("%.1f,%.1f ", x, Y(static_cast<double>(s.usage_bytes) / limit)));
  }
  absl::StrAppend(
      &out,
      absl::StrFormat(
          "<polyline fill=\"none\" stroke=\"#aaa\" stroke-width=\"1\" points=\"%s\"/>\n", usage));
  absl::StrAppend(
      &out,
      absl::StrFormat(
          "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"%s\"/>\n", nr));
  absl::StrAppend(
      &out, absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">time (s), %.0f s "
                            "shown; blue: non-reclaimable, grey: usage (share of limit)</text>\n",
                            left + pw / 2, h - 10, (t1 - t0) / 1000));
  out += "</svg>\n";
  return out;
}

}  // namespace tapio::sim
