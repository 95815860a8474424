#include "sim/prefix_gap.h"

#include <functional>
#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tapio::sim {
namespace {

// A trace of anon memory share(t) (seconds from its start) sampled every `cadence_ms` from `t0_ms`
// until `end_s`; limit 1000 bytes so that shares are exact to a thousandth.
predict::Trace Curve(const std::string& cls, std::function<double(double)> share, double end_s,
                     std::optional<int64_t> oom_after_ms = std::nullopt, int64_t cadence_ms = 1000,
                     int64_t t0_ms = 5000) {
  predict::Trace t;
  t.header.workload_class = cls;
  if (oom_after_ms) t.header.oom_time_ms = t0_ms + *oom_after_ms;
  for (int64_t ms = 0; ms <= static_cast<int64_t>(end_s * 1000); ms += cadence_ms) {
    predict::MemorySample s;
    s.time_ms = t0_ms + ms;
    s.limit_bytes = 1000;
    s.anon_bytes = static_cast<uint64_t>(share(static_cast<double>(ms) / 1000) * 1000 + 0.5);
    s.usage_bytes = s.anon_bytes;
    t.samples.push_back(s);
  }
  return t;
}

double Ramp(double s) { return 0.005 * s; }  // 0.5% of the limit per second

TEST(NonReclaimableShareGridTest, HoldsTheLastSampleAndStopsAtTheLastOneBeforeTheOom) {
  // Samples every 3 s; a 1 s grid holds each for three points.
  predict::Trace t = Curve("x", Ramp, 30, /*oom_after_ms=*/20000, /*cadence_ms=*/3000);
  std::vector<double> g = NonReclaimableShareGrid(t, 1000);
  // The last sample before the OOM is at 18 s: grid points 0..18.
  ASSERT_EQ(g.size(), 19u);
  EXPECT_DOUBLE_EQ(g[0], 0);
  EXPECT_DOUBLE_EQ(g[2], 0);
  EXPECT_DOUBLE_EQ(g[3], 0.015);
  EXPECT_DOUBLE_EQ(g[5], 0.015);
  EXPECT_DOUBLE_EQ(g[18], 0.09);
  EXPECT_EQ(NonReclaimableShareGrid(t, 1000, 4000).size(), 5u);
}

TEST(NonReclaimableShareGridTest, ATraceWithoutALimitOrSamplesHasNoGrid) {
  predict::Trace t = Curve("x", Ramp, 10);
  t.samples[3].limit_bytes = 0;
  EXPECT_TRUE(NonReclaimableShareGrid(t, 1000).empty());
  EXPECT_TRUE(NonReclaimableShareGrid(predict::Trace(), 1000).empty());
}

TEST(PrefixGapTest, TheSameCurveHasNoGapAndALaterStartIsFoundAsAShift) {
  predict::Trace a = Curve("leak", Ramp, 100);
  std::optional<PrefixGap> same = PrefixGapOf(a, Curve("fill", Ramp, 100), 60000, 20000);
  ASSERT_TRUE(same.has_value());
  EXPECT_DOUBLE_EQ(same->gap, 0);
  EXPECT_EQ(same->shift_ms, 0);
  // The same rise starting 7 s into the trace (its first samples flat at zero).
  predict::Trace later = Curve(
      "fill", [](double s) { return s < 7 ? 0 : Ramp(s - 7); }, 100);
  std::optional<PrefixGap> shifted = PrefixGapOf(a, later, 60000, 20000);
  ASSERT_TRUE(shifted.has_value());
  EXPECT_DOUBLE_EQ(shifted->gap, 0);
  EXPECT_EQ(shifted->shift_ms, 7000);
  // Without shifts allowed the gap is the 7 s lead of the first: 3.5% of the limit.
  EXPECT_NEAR(PrefixGapOf(a, later, 60000, 0)->gap, 0.035, 1e-9);
}

TEST(PrefixGapTest, AFillThatLevelsOffIsTheLeakOnlyUntilItDoes) {
  predict::Trace leak = Curve("leak", Ramp, 200, /*oom_after_ms=*/200000);
  predict::Trace fill = Curve(
      "fill", [](double s) { return Ramp(std::min(s, 120.0)); }, 600);
  EXPECT_DOUBLE_EQ(PrefixGapOf(leak, fill, 120000, 0)->gap, 0);
  // 50 s after the fill stops, the leak is 25% of the limit above it.
  EXPECT_NEAR(PrefixGapOf(leak, fill, 170000, 0)->gap, 0.25, 1e-9);
}

TEST(PrefixGapTest, NoAnswerWhenEitherTraceIsShorterThanTheSpan) {
  predict::Trace a = Curve("a", Ramp, 50);
  EXPECT_FALSE(PrefixGapOf(a, Curve("b", Ramp, 100), 60000, 0).has_value());
  EXPECT_FALSE(PrefixGapOf(Curve("b", Ramp, 100), a, 60000, 0).has_value());
  // A shift may not reach past b's end either: the +7 s that would match is out of reach.
  predict::Trace late = Curve(
      "late", [](double s) { return s < 7 ? 0 : Ramp(s - 7); }, 50);
  std::optional<PrefixGap> g = PrefixGapOf(Curve("b", Ramp, 100), late, 50000, 20000);
  ASSERT_TRUE(g.has_value());
  EXPECT_LE(g->shift_ms, 0);
  EXPECT_GT(g->gap, 0.03);
}

TEST(PrefixGapsToMarkdownTest, ListsTheNearestNegativesOfEachPositiveAtEachLead) {
  std::vector<predict::Trace> traces = {
      Curve("leak", Ramp, 200, /*oom_after_ms=*/190000),
      Curve(
          "fill_far", [](double s) { return Ramp(std::min(s, 60.0)); }, 600),
      Curve(
          "fill_near", [](double s) { return Ramp(std::min(s, 150.0)); }, 600),
  };
  std::string md = PrefixGapsToMarkdown(traces, {30, 60}, 0, 4);
  // Warned 60 s ahead: raised by 130 s, when fill_near (stops at 150 s) is still the leak.
  EXPECT_THAT(md, testing::HasSubstr("| leak | 190 | 60 | 130 | fill_near 0.0% (+0 s), fill_far "
                                     "35.0% (+0 s) |"));
  // Warned 30 s ahead: raised by 160 s, 10 s after fill_near stops, 5% above it.
  EXPECT_THAT(md, testing::HasSubstr("| leak | 190 | 30 | 160 | fill_near 5.0% (+0 s), fill_far "
                                     "50.0% (+0 s) |"));
}

TEST(RunToRunGapsToMarkdownTest, PairsRunsByClassAndSaysWhenOneIsTooShort) {
  std::vector<predict::Trace> firsts = {Curve("a", Ramp, 300), Curve("b", Ramp, 300)};
  std::vector<predict::Trace> seconds = {Curve(
                                             "a", [](double s) { return Ramp(s) + 0.01; }, 300),
                                         Curve("b", Ramp, 60), Curve("c", Ramp, 300)};
  std::string md = RunToRunGapsToMarkdown(firsts, seconds, 120000, 0);
  EXPECT_THAT(md, testing::HasSubstr("| a | 1.0% (+0 s) |"));
  EXPECT_THAT(md, testing::HasSubstr("| b | too short |"));
  EXPECT_THAT(md, testing::Not(testing::HasSubstr("| c |")));
}

}  // namespace
}  // namespace tapio::sim
