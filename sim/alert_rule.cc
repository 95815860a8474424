#include "sim/alert_rule.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"

namespace tapio::sim {

namespace {
int64_t Ms(double s) { return std::max<int64_t>(1, std::llround(s * 1000)); }
}  // namespace

std::string DescribeAlertRule(const AlertRule& rule) {
  return absl::StrFormat(
      "for %.0f s (predicted < %.0f s; scrape every %.0f s, evaluation every %.0f s)", rule.for_s,
      rule.horizon_s, rule.scrape_s, rule.eval_s);
}

AlertRuleDetector::AlertRuleDetector(std::unique_ptr<Detector> inner, const AlertRule& rule)
    : inner_(std::move(inner)),
      scrape_ms_(Ms(rule.scrape_s)),
      eval_ms_(Ms(rule.eval_s)),
      for_ms_(std::max<int64_t>(0, std::llround(rule.for_s * 1000))),
      horizon_s_(rule.horizon_s) {}

Verdict AlertRuleDetector::Update(const predict::MemorySample& s) {
  if (origin_ms_ < 0) {
    origin_ms_ = s.time_ms;
    next_scrape_ms_ = s.time_ms;
    next_eval_ms_ = s.time_ms + scrape_ms_ / 2;
  }
  RunUntil(s.time_ms - 1);  // instants before this sample see the state before it
  inner_now_ = inner_->Update(s);
  RunUntil(s.time_ms);
  Verdict v;
  v.at_risk = firing_;
  v.time_to_oom_s = firing_ ? firing_tto_s_ : -1;
  return v;
}

void AlertRuleDetector::RunUntil(int64_t until_ms) {
  while (std::min(next_scrape_ms_, next_eval_ms_) <= until_ms) {
    if (next_scrape_ms_ <= next_eval_ms_) {  // a scrape at the same instant comes first
      scraped_true_ = inner_now_.at_risk && inner_now_.time_to_oom_s >= 0 &&
                      inner_now_.time_to_oom_s < horizon_s_;
      scraped_tto_s_ = inner_now_.time_to_oom_s;
      next_scrape_ms_ += scrape_ms_;
      continue;
    }
    if (scraped_true_) {
      if (pending_since_ms_ < 0) pending_since_ms_ = next_eval_ms_;
      firing_ = next_eval_ms_ - pending_since_ms_ >= for_ms_;
      firing_tto_s_ = scraped_tto_s_;
    } else {
      pending_since_ms_ = -1;
      firing_ = false;
    }
    next_eval_ms_ += eval_ms_;
  }
}

}  // namespace tapio::sim
