// How close recorded traces come to each other before a detector must decide: the evidence side
// of the false-alarm goal. A causal detector sees only the samples up to its decision. If a
// negative trace follows a positive one up to the moment the positive must be raised to be warned
// L seconds ahead, every detector that warns the positive in time raises on the negative as well,
// unless it tells the two apart by the gap between them up to then. tapio-eval --prefix_gaps
// prints these gaps for a set of traces (docs/prediction.md, "What the recorded traces allow").
#ifndef TAPIO_SIM_PREFIX_GAP_H_
#define TAPIO_SIM_PREFIX_GAP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/predict/trace.h"

namespace tapio::sim {

// Non-reclaimable memory as a share of the limit (predict::NonReclaimableBytes), on a grid of
// `step_ms` from the trace's first sample: each point holds the last sample at or before it. The
// grid stops at the last sample before the OOM, or at `until_ms` after the first sample when that
// is >= 0. Empty when the trace has no such sample or a sample has no limit.
std::vector<double> NonReclaimableShareGrid(const predict::Trace& trace, int64_t step_ms,
                                            int64_t until_ms = -1);

struct PrefixGap {
  double gap = 0;        // the largest |difference| of the two shares over the compared span
  int64_t shift_ms = 0;  // `b` at its time t + shift_ms is compared with `a` at t
};

// The closest `b` comes to `a` over `a`'s first `span_ms`: the smallest, over shifts in
// [-max_shift_ms, max_shift_ms] (multiples of step_ms), of the largest difference between a's
// share at t and b's at t + shift (both times from each trace's first sample; before b's first
// sample, b's first share). A positive shift: b's rise came that much later than a's; a negative
// one: earlier. nullopt when a does not cover span_ms or no shift keeps b covering the span.
std::optional<PrefixGap> PrefixGapOf(const predict::Trace& a, const predict::Trace& b,
                                     int64_t span_ms, int64_t max_shift_ms, int64_t step_ms = 1000);

// For every trace with an OOM label among `traces` and every lead L in `leads_s`: the latest time
// a detector may raise to warn it L s ahead (OOM - L, from its first sample), and the `nearest`
// traces without an OOM whose prefix comes closest to it up to then, with their gaps.
std::string PrefixGapsToMarkdown(const std::vector<predict::Trace>& traces,
                                 const std::vector<double>& leads_s, int64_t max_shift_ms,
                                 int nearest);

// The same workload run twice (`firsts[i]`, `seconds[i]`, paired by class): the gap between the
// runs over the first `span_ms` of each, i.e. how much one workload's own start-up varies.
std::string RunToRunGapsToMarkdown(const std::vector<predict::Trace>& firsts,
                                   const std::vector<predict::Trace>& seconds, int64_t span_ms,
                                   int64_t max_shift_ms);

}  // namespace tapio::sim

#endif  // TAPIO_SIM_PREFIX_GAP_H_
