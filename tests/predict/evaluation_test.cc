#include "sim/evaluation.h"

#include <functional>
#include <utility>

#include "gtest/gtest.h"

namespace tapio::sim {
namespace {

// Says "at risk" whenever the script says so for the sample's time.
class ScriptedDetector : public Detector {
 public:
  explicit ScriptedDetector(std::function<bool(int64_t)> script) : script_(std::move(script)) {}
  Verdict Update(const predict::MemorySample& s) override {
    Verdict v;
    v.at_risk = script_(s.time_ms);
    v.time_to_oom_s = v.at_risk ? 50 : -1;
    return v;
  }

 private:
  std::function<bool(int64_t)> script_;
};

predict::Trace MakeTrace(int64_t end_ms, std::optional<int64_t> oom_ms) {
  predict::Trace t;
  t.header.workload_class = "linear_leak";
  t.header.oom_time_ms = oom_ms;
  for (int64_t ms = 0; ms < end_ms; ms += 1000) {
    predict::MemorySample s;
    s.time_ms = ms;
    s.limit_bytes = 100;
    t.samples.push_back(s);
  }
  return t;
}

TEST(ScoreTraceTest, LeadIsMeasuredFromTheRaiseOfTheEpisodeActiveAtTheOom) {
  predict::Trace t = MakeTrace(3000 * 1000, 2000 * 1000);  // samples after the OOM are ignored
  ScriptedDetector d([](int64_t ms) { return (ms >= 100000 && ms < 200000) || ms >= 1900000; });
  TraceResult r = ScoreTrace(t, &d, ClassGroup::kPredictable);
  EXPECT_TRUE(r.positive);
  EXPECT_TRUE(r.detected);
  EXPECT_DOUBLE_EQ(r.lead_s, 100);
  EXPECT_EQ(r.raises, 2);
  EXPECT_EQ(r.false_alarms, 1);  // the episode at 100 s cleared and the OOM came 1900 s later
  EXPECT_DOUBLE_EQ(r.tto_error_s, 50);  // predicted 50 s, 100 s were left
  EXPECT_EQ(r.samples, 2000);
  EXPECT_DOUBLE_EQ(r.duration_s, 2000);
}

TEST(ScoreTraceTest, AlarmClearedBeforeTheOomIsAMissButNotAFalseAlarmWithinTheHorizon) {
  predict::Trace t = MakeTrace(1000 * 1000, 1000 * 1000);
  ScriptedDetector d([](int64_t ms) { return ms >= 500000 && ms < 900000; });
  TraceResult r = ScoreTrace(t, &d, ClassGroup::kPredictable);
  EXPECT_FALSE(r.detected);
  EXPECT_EQ(r.false_alarms, 0);
}

TEST(ScoreTraceTest, EveryRaiseOnANegativeTraceIsAFalseAlarm) {
  predict::Trace t = MakeTrace(3600 * 1000, std::nullopt);
  ScriptedDetector d(
      [](int64_t ms) { return (ms / 1000) % 1000 == 10 || (ms / 1000) % 1000 == 11; });
  TraceResult r = ScoreTrace(t, &d, ClassGroup::kNegative);
  EXPECT_FALSE(r.positive);
  EXPECT_EQ(r.raises, 4);  // at 10, 1010, 2010 and 3010 s
  EXPECT_EQ(r.false_alarms, 4);
  std::vector<const TraceResult*> all = {&r};
  Summary s = Summarize(all);
  EXPECT_NEAR(s.container_hours, 3599.0 / 3600, 1e-9);
  EXPECT_NEAR(s.false_alarms_per_hour, 4 / (3599.0 / 3600), 1e-9);
}

// 1 GiB limit; anon from `anon_mib(t_s)` every second from `start_s` to `end_s`.
predict::Trace PeerTrace(int64_t start_s, int64_t end_s,
                         const std::function<double(double)>& anon_mib) {
  predict::Trace t;
  t.header.workload_class = "kernel_redis";
  for (int64_t sec = start_s; sec < end_s; ++sec) {
    predict::MemorySample s;
    s.time_ms = sec * 1000;
    s.limit_bytes = 1024ull << 20;
    s.anon_bytes = static_cast<uint64_t>(anon_mib(static_cast<double>(sec - start_s)) * (1 << 20));
    s.usage_bytes = s.anon_bytes;
    t.samples.push_back(s);
  }
  return t;
}

TEST(LivePeerRunOfTest, IsThePeersPeakSoFarWhileItRunsQuietly) {
  const predict::ModelParams params;
  // Filled to 600 MiB in the first 60 s, then flat; later (after the new run started) 700 MiB.
  predict::Trace peer =
      PeerTrace(100, 2000, [](double t) { return t < 60 ? 10 * t : (t < 1000 ? 600 : 700); });
  std::optional<predict::RunPeak> run = LivePeerRunOf(peer, 600 * 1000, params);
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->peak_bytes, 600ull << 20);  // not what the peer reaches after the new start
  EXPECT_EQ(run->limit_bytes, 1024ull << 20);
  EXPECT_FALSE(LivePeerRunOf(peer, 100 * 1000, params).has_value());   // not started before
  EXPECT_FALSE(LivePeerRunOf(peer, 2000 * 1000, params).has_value());  // ended
  peer.header.oom_time_ms = 500 * 1000;
  EXPECT_FALSE(LivePeerRunOf(peer, 600 * 1000, params).has_value());  // killed before
}

TEST(LivePeerRunOfTest, APeerAtRiskIsNoPrior) {
  const predict::ModelParams params;
  // Leaking 2 MiB/s from 10 MiB: at risk (the early-rise rule) well before 400 s.
  predict::Trace peer = PeerTrace(0, 500, [](double t) { return 10 + 2 * t; });
  EXPECT_FALSE(LivePeerRunOf(peer, 400 * 1000, params).has_value());
  EXPECT_TRUE(LivePeerRunOf(peer, 30 * 1000, params).has_value());  // not yet at risk
}

TEST(SummarizeTest, RecallCountsLeadAtLeastTheThresholdAndMissesAsZero) {
  TraceResult a, b, c, d;
  for (TraceResult* r : {&a, &b, &c, &d}) r->positive = true;
  a.detected = true;
  a.lead_s = 7;
  b.detected = true;
  b.lead_s = 30;
  c.detected = true;
  c.lead_s = 200;
  d.detected = false;
  Summary s = Summarize({&a, &b, &c, &d});
  EXPECT_DOUBLE_EQ(s.recall[0], 0.75);   // >= 5 s
  EXPECT_DOUBLE_EQ(s.recall[1], 0.5);    // >= 10 s
  EXPECT_DOUBLE_EQ(s.recall[2], 0.5);    // >= 30 s
  EXPECT_DOUBLE_EQ(s.recall[3], 0.25);   // >= 60 s
  EXPECT_DOUBLE_EQ(s.lead_p50_s, 18.5);  // of {0, 7, 30, 200}
}

TEST(BaselineTest, ThresholdFiresAtNinetyPercentNonReclaimable) {
  auto det = MakeDetector(DetectorKind::kThreshold, nullptr);
  predict::MemorySample s;
  s.limit_bytes = 1000;
  s.anon_bytes = 899;
  EXPECT_FALSE(det->Update(s).at_risk);
  s.anon_bytes = 880;
  s.shmem_bytes = 20;
  EXPECT_TRUE(det->Update(s).at_risk);
}

TEST(BaselineTest, UsageTrendFiresOnRisingTotalUsage) {
  auto det = MakeDetector(DetectorKind::kUsageTrend, nullptr);
  Verdict v;
  for (int64_t i = 0; i < 30; ++i) {
    predict::MemorySample s;
    s.time_ms = i * 1000;
    s.limit_bytes = 100000;
    s.usage_bytes = 50000 + 200 * static_cast<uint64_t>(i);  // reaches the limit in ~220 s
    v = det->Update(s);
  }
  EXPECT_TRUE(v.at_risk);
  EXPECT_NEAR(v.time_to_oom_s, 221, 2);
}

}  // namespace
}  // namespace tapio::sim
