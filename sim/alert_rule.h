// The chart's TapioOomPredicted alert (deploy/helm/tapio/templates/_rules.tpl) replayed on a
// detector: what a person is paged with, as opposed to what the predictor says. The rule is
//   tapio_container_oom_predicted_seconds < horizon_s   for: for_s
// over the agent's gauge, which is present only while the container is at risk with an estimate.
// Prometheus scrapes the gauge every scrape_s from the first sample and evaluates the rule every
// eval_s from half a scrape interval after that (the average lag). An evaluation whose last scrape
// satisfies the
// expression makes the alert pending (from then) or keeps it; one that does not resets it. A
// pending alert fires at the first evaluation at least for_s after it became pending. Not
// modelled: Alertmanager's group_wait (30 s by default) before the first notification.
#ifndef TAPIO_SIM_ALERT_RULE_H_
#define TAPIO_SIM_ALERT_RULE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "sim/evaluation.h"

namespace tapio::sim {

// Defaults: the chart's (values.yaml).
struct AlertRule {
  double horizon_s = 600;  // prometheusRule.oomHorizonSeconds
  double for_s = 0;        // prometheusRule.oomPredictedFor (1m until 2026-12-04)
  double scrape_s = 15;    // serviceMonitor.interval
  double eval_s = 15;      // prometheusRule.oomEvaluationInterval (prometheus-operator: 30 s)
};

// "for 0 s (predicted < 600 s; scrape every 15 s, evaluation every 15 s)"
std::string DescribeAlertRule(const AlertRule& rule);

// Says "at risk" while the alert fires. The verdict changes only at evaluations, so a sample
// reports the state of the last evaluation at or before it (a page at most one sample late).
class AlertRuleDetector : public Detector {
 public:
  AlertRuleDetector(std::unique_ptr<Detector> inner, const AlertRule& rule);
  Verdict Update(const predict::MemorySample& s) override;
  int64_t NextDelayMs() const override { return inner_->NextDelayMs(); }
  void SetPriorPeak(uint64_t peak_bytes, uint64_t limit_bytes) override {
    inner_->SetPriorPeak(peak_bytes, limit_bytes);
  }

 private:
  // Runs the scrapes and evaluations due up to (and including) `until_ms`, with the inner
  // detector's state as of its last sample.
  void RunUntil(int64_t until_ms);

  std::unique_ptr<Detector> inner_;
  int64_t scrape_ms_, eval_ms_, for_ms_;
  double horizon_s_;
  int64_t origin_ms_ = -1;      // the first sample's time; scrapes at origin + k * scrape
  Verdict inner_now_;           // the inner detector's verdict at its last sample
  int64_t next_scrape_ms_ = 0;  // absolute times
  int64_t next_eval_ms_ = 0;
  bool scraped_true_ = false;  // the last scrape satisfied the expression
  double scraped_tto_s_ = -1;  // and its value
  int64_t pending_since_ms_ = -1;
  bool firing_ = false;
  double firing_tto_s_ = -1;  // the scraped value at the last evaluation
};

}  // namespace tapio::sim

#endif  // TAPIO_SIM_ALERT_RULE_H_
