#include "sim/simulator.h"

#include "agent/predict/trace.h"
#include "gtest/gtest.h"

namespace tapio::sim {
namespace {

TEST(SimulatorTest, SameSeedGivesTheSameTrace) {
  for (int c = 0; c < kWorkloadClassCount; ++c) {
    MemcgSimulator a(static_cast<WorkloadClass>(c), 42), b(static_cast<WorkloadClass>(c), 42);
    EXPECT_EQ(predict::TraceToText(GenerateTrace(a, 1000)),
              predict::TraceToText(GenerateTrace(b, 1000)))
        << WorkloadClassName(static_cast<WorkloadClass>(c));
  }
}

TEST(SimulatorTest, DifferentSeedsGiveDifferentTraces) {
  MemcgSimulator a(WorkloadClass::kLinearLeak, 1), b(WorkloadClass::kLinearLeak, 2);
  EXPECT_NE(predict::TraceToText(GenerateTrace(a, 1000)),
            predict::TraceToText(GenerateTrace(b, 1000)));
}

TEST(SimulatorTest, SampleDependsOnlyOnItsTimeNotOnTheCadence) {
  MemcgSimulator sim(WorkloadClass::kGcRisingFloor, 7);
  predict::Trace fine = GenerateTrace(sim, 250);
  predict::Trace coarse = GenerateTrace(sim, 1000);
  ASSERT_GT(coarse.samples.size(), 100u);
  for (size_t i = 0; i < 100; ++i) {
    EXPECT_EQ(predict::SampleToJsonLine(coarse.samples[i]),
              predict::SampleToJsonLine(fine.samples[4 * i]));
  }
}

TEST(SimulatorTest, PositiveClassesOomAndNegativeClassesNever) {
  for (int c = 0; c < kWorkloadClassCount; ++c) {
    WorkloadClass cls = static_cast<WorkloadClass>(c);
    for (uint64_t seed = kTuneSeedBase; seed < kTuneSeedBase + 20; ++seed) {
      MemcgSimulator sim(cls, seed);
      EXPECT_EQ(sim.oom_time_ms().has_value(), GroupOf(cls) != ClassGroup::kNegative)
          << WorkloadClassName(cls) << " seed " << seed;
    }
  }
}

TEST(SimulatorTest, OomHappensExactlyWhenNonReclaimableMemoryNoLongerFits) {
  MemcgSimulator sim(WorkloadClass::kLinearLeak, 5);
  ASSERT_TRUE(sim.oom_time_ms().has_value());
  double at = static_cast<double>(*sim.oom_time_ms()) / 1000;
  EXPECT_GE(sim.NonReclaimableFraction(at), 0.998);
  EXPECT_LT(sim.NonReclaimableFraction(at - 0.1), 0.998);
  EXPECT_EQ(sim.end_time_ms(), *sim.oom_time_ms());
  predict::Trace t = GenerateTrace(sim, 1000);
  EXPECT_LT(t.samples.back().time_ms, *sim.oom_time_ms());
  EXPECT_EQ(t.header.oom_time_ms, sim.oom_time_ms());
}

TEST(SimulatorTest, PageCacheIsReclaimedFirstSoUsageSitsAtTheLimit) {
  MemcgSimulator sim(WorkloadClass::kPageCacheAtLimit, 3);
  predict::Trace t = GenerateTrace(sim, 10000);
  ASSERT_FALSE(t.samples.empty());
  uint64_t prev_hits = 0;
  for (const predict::MemorySample& s : t.samples) {
    EXPECT_GE(static_cast<double>(s.usage_bytes), 0.99 * static_cast<double>(s.limit_bytes));
    EXPECT_LT(static_cast<double>(predict::NonReclaimableBytes(s)),
              0.5 * static_cast<double>(s.limit_bytes));
    EXPECT_GE(s.limit_hits, prev_hits);
    prev_hits = s.limit_hits;
  }
  EXPECT_GT(prev_hits, 0u);
}

TEST(SimulatorTest, TmpfsIsFileMemoryButNonReclaimable) {
  MemcgSimulator sim(WorkloadClass::kTmpfsGrowth, 4);
  predict::Trace t = GenerateTrace(sim, 60000);
  ASSERT_GT(t.samples.size(), 3u);
  const predict::MemorySample& first = t.samples.front();
  const predict::MemorySample& last = t.samples.back();
  EXPECT_GT(last.shmem_bytes, first.shmem_bytes);
  EXPECT_GE(last.file_bytes, last.shmem_bytes);
  EXPECT_GE(predict::NonReclaimableBytes(last), last.shmem_bytes + last.anon_bytes);
}

TEST(SimulatorTest, ThrashingShowsPressureWithoutOom) {
  MemcgSimulator sim(WorkloadClass::kThrashing, 9);
  predict::Trace t = GenerateTrace(sim, 5000);
  double psi = 0;
  for (const predict::MemorySample& s : t.samples) psi += s.psi_some_avg10;
  EXPECT_GT(psi / static_cast<double>(t.samples.size()), 5);
  EXPECT_GT(t.samples.back().reclaim_stall_ns, 0u);
  EXPECT_FALSE(sim.oom_time_ms().has_value());
}

TEST(SimulatorTest, ClassNamesRoundTrip) {
  for (int c = 0; c < kWorkloadClassCount; ++c) {
    WorkloadClass parsed;
    ASSERT_TRUE(ParseWorkloadClass(WorkloadClassName(static_cast<WorkloadClass>(c)), &parsed));
    EXPECT_EQ(static_cast<int>(parsed), c);
  }
  WorkloadClass unused;
  EXPECT_FALSE(ParseWorkloadClass("nope", &unused));
}

}  // namespace
}  // namespace tapio::sim
