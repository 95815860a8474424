#include "sim/alert_rule.h"

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sim/simulator.h"

namespace tapio::sim {
namespace {

// At risk with the scripted time to OOM (seconds; < 0: not at risk) at each sample's time.
class ScriptedDetector : public Detector {
 public:
  explicit ScriptedDetector(std::function<double(double)> tto_at_s)
      : tto_at_s_(std::move(tto_at_s)) {}
  Verdict Update(const predict::MemorySample& s) override {
    const double tto = tto_at_s_(static_cast<double>(s.time_ms) / 1000);
    Verdict v;
    v.at_risk = tto >= 0;
    v.time_to_oom_s = v.at_risk ? tto : -1;
    return v;
  }
  int64_t NextDelayMs() const override { return 250; }
  void SetPriorPeak(uint64_t peak_bytes, uint64_t limit_bytes) override {
    prior_peak_bytes = peak_bytes;
  }
  uint64_t prior_peak_bytes = 0;

 private:
  std::function<double(double)> tto_at_s_;
};

// Replays samples every second from 0 to `end_s` and returns the times (s) the alert started and
// stopped firing.
std::vector<double> Transitions(std::function<double(double)> tto_at_s, const AlertRule& rule,
                                int end_s = 400) {
  AlertRuleDetector alert(std::make_unique<ScriptedDetector>(std::move(tto_at_s)), rule);
  std::vector<double> out;
  bool firing = false;
  for (int t = 0; t <= end_s; ++t) {
    predict::MemorySample s;
    s.time_ms = 1000 * static_cast<int64_t>(t);
    s.limit_bytes = 100;
    Verdict v = alert.Update(s);
    if (v.at_risk != firing) out.push_back(t);
    firing = v.at_risk;
  }
  return out;
}

AlertRule Rule(double for_s, double scrape_s = 15, double eval_s = 15) {
  AlertRule r;
  r.for_s = for_s;
  r.scrape_s = scrape_s;
  r.eval_s = eval_s;
  return r;
}

double AtRiskFrom20s(double t) { return t >= 20 ? 100 : -1; }

TEST(AlertRuleDetectorTest, FiresAtTheFirstEvaluationAfterTheScrapeThatSawTheRisk) {
  // Scrapes at 0, 15, 30, ...; evaluations 7.5 s after each. The risk from 20 s is scraped at 30 s
  // and evaluated at 37.5 s; the next sample, 38 s, reports it.
  EXPECT_EQ(Transitions(AtRiskFrom20s, Rule(0)), std::vector<double>({38}));
}

TEST(AlertRuleDetectorTest, ForDelaysFiringFromTheFirstPendingEvaluation) {
  // Pending at 37.5 s, firing at the first evaluation 60 s later: 97.5 s.
  EXPECT_EQ(Transitions(AtRiskFrom20s, Rule(60)), std::vector<double>({98}));
  // Evaluations every 30 s (7.5, 37.5, 67.5, ...): pending at 37.5 s; for 45 s fires at the
  // first evaluation after 82.5 s, 97.5 s, and for 61 s only at 127.5 s.
  EXPECT_EQ(Transitions(AtRiskFrom20s, Rule(45, 15, 30)), std::vector<double>({98}));
  EXPECT_EQ(Transitions(AtRiskFrom20s, Rule(61, 15, 30)), std::vector<double>({128}));
}

TEST(AlertRuleDetectorTest, ARiskBetweenTwoScrapesIsNeverSeen) {
  EXPECT_TRUE(Transitions([](double t) { return t >= 16 && t < 29 ? 50 : -1; }, Rule(0)).empty());
}

TEST(AlertRuleDetectorTest, OutsideTheHorizonOrWithoutAnEstimateNothingFires) {
  EXPECT_TRUE(Transitions([](double) { return 600.0; }, Rule(0)).empty());
  // An at-risk verdict with no estimate: the gauge is absent.
  class NoEstimate : public Detector {
   public:
    Verdict Update(const predict::MemorySample&) override { return Verdict{true, -1}; }
  };
  AlertRuleDetector no_estimate(std::make_unique<NoEstimate>(), Rule(0));
  for (int t = 0; t <= 100; ++t) {
    predict::MemorySample s;
    s.time_ms = 1000 * static_cast<int64_t>(t);
    EXPECT_FALSE(no_estimate.Update(s).at_risk) << t;
  }
}

TEST(AlertRuleDetectorTest, AScrapeWithoutTheRiskResetsAPendingAlertAndAFiringOne) {
  // At risk from 20 s, gone for the scrape at 60 s only, back from 65 s: pending at 37.5 s,
  // reset at 67.5 s (the scrape at 60 s), pending again at 82.5 s (scraped at 75 s), firing 60 s
  // later at 142.5 s; gone from 200 s: the scrape at 210 s resolves it at 217.5 s.
  auto tto = [](double t) { return t >= 20 && !(t >= 58 && t < 65) && t < 200 ? 100 : -1; };
  EXPECT_EQ(Transitions(tto, Rule(60)), std::vector<double>({143, 218}));
}

TEST(AlertRuleDetectorTest, ForwardsThePriorAndTheCadenceToTheDetectorItWraps) {
  auto inner = std::make_unique<ScriptedDetector>(AtRiskFrom20s);
  ScriptedDetector* raw = inner.get();
  AlertRuleDetector alert(std::move(inner), Rule(0));
  alert.SetPriorPeak(1234, 100);
  EXPECT_EQ(raw->prior_peak_bytes, 1234u);
  EXPECT_EQ(alert.NextDelayMs(), 250);
}

TEST(AlertRuleEvaluationTest, TheModelIsScoredByItsPagesAndTheBaselinesAreNot) {
  predict::ModelParams params;
  MemcgSimulator sim(WorkloadClass::kLinearLeak, kTestSeedBase);
  std::vector<predict::Trace> traces = {SampleAdaptively(sim, params)};
  EvalReport raised = EvaluateTraces(params, traces);
  const AlertRule rule = Rule(60);
  EvalReport paged = EvaluateTraces(params, traces, {}, &rule);
  const int m = static_cast<int>(DetectorKind::kModel);
  const int t = static_cast<int>(DetectorKind::kThreshold);
  const Summary& r = raised.rows[m].front().summary;
  const Summary& p = paged.rows[m].front().summary;
  ASSERT_EQ(r.detected, 1);
  ASSERT_EQ(p.detected, 1);
  // The page comes at least the rule's for, at most for + a scrape + an evaluation, later.
  EXPECT_GE(r.lead_p50_s - p.lead_p50_s, 60);
  EXPECT_LE(r.lead_p50_s - p.lead_p50_s, 60 + 15 + 15 + 1);
  EXPECT_EQ(raised.rows[t].front().summary.lead_p50_s, paged.rows[t].front().summary.lead_p50_s);
  EXPECT_NE(ReportToMarkdown(paged).find("#### tapio (files split; paged by TapioOomPredicted for "
                                         "60 s (predicted < 600 s"),
            std::string::npos);
  EXPECT_EQ(ReportToMarkdown(raised).find("paged by"), std::string::npos);
}

}  // namespace
}  // namespace tapio::sim
