#include "sim/prefix_gap.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/predict/predictor.h"

namespace tapio::sim {

std::vector<double> NonReclaimableShareGrid(const predict::Trace& trace, int64_t step_ms,
                                            int64_t until_ms) {
  std::vector<double> grid;
  if (trace.samples.empty() || step_ms <= 0) return grid;
  const int64_t t0 = trace.samples.front().time_ms;
  const int64_t oom = trace.header.oom_time_ms.value_or(INT64_MAX);
  const int64_t stop = until_ms >= 0 ? t0 + until_ms : INT64_MAX;
  double held = 0;
  size_t next = 0;  // the first sample not yet held
  for (int64_t g = t0; g <= stop; g += step_ms) {
    while (next < trace.samples.size() && trace.samples[next].time_ms <= g &&
           trace.samples[next].time_ms < oom) {
      const predict::MemorySample& s = trace.samples[next];
      if (s.limit_bytes == 0) return {};
      held =
          static_cast<double>(predict::NonReclaimableBytes(s)) / static_cast<double>(s.limit_bytes);
      ++next;
    }
    // Past the last sample before the OOM (or the trace's end) nothing is known.
    const bool more = next < trace.samples.size() && trace.samples[next].time_ms < oom;
    if (!more && (next == 0 || g > trace.samples[next - 1].time_ms)) break;
    grid.push_back(held);
  }
  return grid;
}

std::optional<PrefixGap> PrefixGapOf(const predict::Trace& a, const predict::Trace& b,
                                     int64_t span_ms, int64_t max_shift_ms, int64_t step_ms) {
  if (step_ms <= 0 || span_ms < 0 || max_shift_ms < 0) return std::nullopt;
  const std::vector<double> ga = NonReclaimableShareGrid(a, step_ms, span_ms);
  const std::vector<double> gb = NonReclaimableShareGrid(b, step_ms);
  const int64_t n = span_ms / step_ms + 1;  // grid points of a compared
  if (static_cast<int64_t>(ga.size()) < n || gb.empty()) return std::nullopt;
  const int64_t max_k = max_shift_ms / step_ms;
  std::optional<PrefixGap> best;
  // Shifts nearest zero first, so that among equal gaps the smallest shift is kept.
  for (int64_t m = 0; m <= 2 * max_k; ++m) {
    const int64_t k = (m % 2 == 0) ? m / 2 : -(m + 1) / 2;
    if (n - 1 + k >= static_cast<int64_t>(gb.size())) continue;
    double gap = 0;
    for (int64_t i = 0; i < n && (!best || gap < best->gap); ++i) {
      // Before b's first sample, b is taken at its first level (it had not begun to rise).
      gap = std::max(gap, std::fabs(ga[i] - gb[std::max<int64_t>(0, i + k)]));
    }
    if (!best || gap < best->gap) best = PrefixGap{gap, k * step_ms};
  }
  return best;
}

namespace {

double SecondsFromStart(const predict::Trace& t, int64_t ms) {
  return static_cast<double>(ms - t.samples.front().time_ms) / 1000.0;
}

std::string FormatGap(const PrefixGap& g) {
  return absl::StrFormat("%.1f%% (%+lld s)", 100 * g.gap,
                         static_cast<long long>(g.shift_ms / 1000));
}

}  // namespace

std::string PrefixGapsToMarkdown(const std::vector<predict::Trace>& traces,
                                 const std::vector<double>& leads_s, int64_t max_shift_ms,
                                 int nearest) {
  std::string out =
      "| positive | OOM after (s) | lead (s) | raised by (s) | nearest negatives: largest gap "
      "up to then, % of the limit (shift) |\n|---|---:|---:|---:|---|\n";
  for (const predict::Trace& p : traces) {
    if (!p.header.oom_time_ms || p.samples.empty()) continue;
    const double oom_s = SecondsFromStart(p, *p.header.oom_time_ms);
    for (double lead : leads_s) {
      const double by_s = oom_s - lead;
      if (by_s <= 0) continue;
      std::vector<std::pair<PrefixGap, const predict::Trace*>> gaps;
      for (const predict::Trace& n : traces) {
        if (n.header.oom_time_ms) continue;
        std::optional<PrefixGap> g =
            PrefixGapOf(p, n, static_cast<int64_t>(by_s * 1000), max_shift_ms);
        if (g) gaps.emplace_back(*g, &n);
      }
      std::stable_sort(gaps.begin(), gaps.end(),
                       [](const auto& x, const auto& y) { return x.first.gap < y.first.gap; });
      std::vector<std::string> cells;
      for (size_t i = 0; i < gaps.size() && static_cast<int>(i) < nearest; ++i) {
        cells.push_back(
            absl::StrCat(gaps[i].second->header.workload_class, " ", FormatGap(gaps[i].first)));
      }
      absl::StrAppendFormat(&out, "| %s | %.0f | %.0f | %.0f | %s |\n", p.header.workload_class,
                            oom_s, lead, by_s, cells.empty() ? "-" : absl::StrJoin(cells, ", "));
    }
  }
  return out;
}

std::string RunToRunGapsToMarkdown(const std::vector<predict::Trace>& firsts,
                                   const std::vector<predict::Trace>& seconds, int64_t span_ms,
                                   int64_t max_shift_ms) {
  std::map<std::string, const predict::Trace*> by_class;
  for (const predict::Trace& t : firsts) by_class[t.header.workload_class] = &t;
  std::string out = absl::StrFormat(
      "| workload | largest gap between its two runs over the first %lld s, %% of the limit "
      "(shift) |\n|---|---|\n",
      static_cast<long long>(span_ms / 1000));
  for (const predict::Trace& second : seconds) {
    auto it = by_class.find(second.header.workload_class);
    if (it == by_class.end()) continue;
    std::optional<PrefixGap> g = PrefixGapOf(*it->second, second, span_ms, max_shift_ms);
    absl::StrAppendFormat(&out, "| %s | %s |\n", second.header.workload_class,
                          g ? FormatGap(*g) : std::string("too short"));
  }
  return out;
}

}  // namespace tapio::sim
