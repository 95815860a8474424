// The golden corpus: the simulated test split (seeds from kTestSeedBase, never used for tuning)
// replayed through models/default.json at the predictor's adaptive cadence. Fails when any
// quality goal of the brief is missed (CheckGoals), and prints the report on failure.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "agent/predict/model_params.h"
#include "agent/predict/trace.h"
#include "gtest/gtest.h"
#include "sim/evaluation.h"
#include "sim/prefix_gap.h"

namespace tapio::sim {
namespace {

predict::ModelParams LoadShippedModel() {
  std::ifstream in(std::string(TAPIO_SOURCE_DIR) + "/models/default.json");
  std::stringstream buf;
  buf << in.rdbuf();
  absl::StatusOr<predict::ModelParams> p = predict::LoadModelParams(buf.str());
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : predict::ModelParams();
}

TEST(GoldenCorpusTest, TestSplitMeetsEveryQualityGoal) {
  predict::ModelParams params = LoadShippedModel();
  EvalOptions options;
  options.seeds_per_class = 40;
  options.seed_base = kTestSeedBase;
  EvalReport report = EvaluateSimulated(params, options);
  std::vector<std::string> misses = CheckGoals(report);
  std::string all;
  for (const std::string& m : misses) all += m + "\n";
  EXPECT_TRUE(misses.empty()) << all << "\n" << ReportToMarkdown(report);
}

TEST(GoldenCorpusTest, FixedOneSecondCadenceAlsoMeetsTheGoals) {
  // The agent may not honour the suggested cadence (e.g. a global sampling tick).
  predict::ModelParams params = LoadShippedModel();
  EvalOptions options;
  options.seeds_per_class = 20;
  options.seed_base = kTestSeedBase + 500;
  options.cadence_ms = 1000;
  EvalReport report = EvaluateSimulated(params, options);
  std::vector<std::string> misses = CheckGoals(report);
  std::string all;
  for (const std::string& m : misses) all += m + "\n";
  EXPECT_TRUE(misses.empty()) << all << "\n" << ReportToMarkdown(report);
}

// Negative traces with a known, documented false alarm (docs/prediction.md, "Known limits"),
// pinned: at most one raise, and only inside the window where the trace is ambiguous.
struct KnownAmbiguity {
  const char* workload_class;
  int64_t raise_window_ms;  // from the first sample
  const char* late_raise;   // the failure message for a raise after the window
};
// kernel_sawtooth_stable: the heap's first fill rises from nothing to 81% of the limit by the
// program of the 1 MiB/s leak in kernel_leak.jsonl; until the first collection no causal model can
// tell them apart (TheRecordedSawtoothIsTheRecordedLeakUntilItsFirstCollection, below). The
// early-rise rule chooses the warning: one raise in the first cycle, none once the sawtooth is
// known.
// The start-up fills of sim/record_negatives.sh (tests/fixtures/predict/README.md): a cache or
// heap filling from nothing at 1-20 MiB/s and levelling off at 50-72% of its limit. Until it
// levels off it comes within 2.4-11% of the limit of a recorded leak from nothing
// (kernel_agent_leak, kernel_jvm_leak, kernel_node_leak) up to when that leak must be warned 60 s
// ahead (tapio-eval --prefix_gaps, docs/prediction.md), and kernel_py_batch's 6 s fill is as fast
// as the simulated step_spike ramps, which must be warned 5 s ahead; the early-rise rule and the
// fast trend warn. One raise inside the first 3 minutes, none after; a restart of the same
// workload is kept quiet by the restart prior (the test below). kernel_redis is not among them:
// its fill stopped 12 s before the early-rise rule could speak, and raising needs growth that goes
// on (slow_recent_slope_fraction), so it is held to no alarm.
constexpr int64_t kStartupFillWindowMs = 180000;
constexpr const char* kStartupFill = "raise after the start-up fill";
constexpr KnownAmbiguity kKnownAmbiguities[] = {
    {"kernel_sawtooth_stable", 205000, "raise after the first GC"},
    {"kernel_memcached", kStartupFillWindowMs, kStartupFill},
    {"kernel_py_lru", kStartupFillWindowMs, kStartupFill},
    {"kernel_py_batch", kStartupFillWindowMs, kStartupFill},
    {"kernel_tmpfs_ring", kStartupFillWindowMs, kStartupFill},
    {"kernel_jvm_churn_large", kStartupFillWindowMs, kStartupFill},
};

const KnownAmbiguity* FindKnownAmbiguity(const std::string& workload_class) {
  for (const KnownAmbiguity& k : kKnownAmbiguities) {
    if (workload_class == k.workload_class) return &k;
  }
  return nullptr;
}

// Every recorded trace (*.jsonl) directly in `dir`, with its path. A file that does not parse is
// a test failure, and is left out.
std::vector<std::pair<std::filesystem::path, predict::Trace>> ReadTracesIn(
    const std::filesystem::path& dir) {
  std::vector<std::pair<std::filesystem::path, predict::Trace>> traces;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".jsonl") continue;
    absl::StatusOr<predict::Trace> trace = predict::ReadTraceFile(entry.path().string());
    if (!trace.ok()) {
      ADD_FAILURE() << trace.status();
      continue;
    }
    traces.emplace_back(entry.path(), std::move(*trace));
  }
  return traces;
}

TEST(GoldenCorpusTest, RecordedKernelTracesAreDetectedThirtySecondsAheadAndNegativesNeverRaise) {
  const std::filesystem::path dir =
      std::filesystem::path(TAPIO_SOURCE_DIR) / "tests/fixtures/predict";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no recorded traces yet";
  predict::ModelParams params = LoadShippedModel();
  const auto traces = ReadTracesIn(dir);
  for (const auto& [path, trace] : traces) {
    auto det = MakeDetector(DetectorKind::kModel, &params);
    TraceResult r =
        ScoreTrace(trace, det.get(),
                   trace.header.oom_time_ms ? ClassGroup::kPredictable : ClassGroup::kNegative);
    if (const KnownAmbiguity* known = FindKnownAmbiguity(trace.header.workload_class)) {
      EXPECT_LE(r.false_alarms, 1) << path;
      for (int64_t t : r.raise_times_ms) {
        EXPECT_LT(t - trace.samples.front().time_ms, known->raise_window_ms)
            << path << ": " << known->late_raise;
      }
      continue;
    }
    EXPECT_EQ(r.false_alarms, 0) << path;
    if (trace.header.oom_time_ms) {
      EXPECT_TRUE(r.detected) << path;
      EXPECT_GE(r.lead_s, 30) << path << ": the goal is recall@30s";
    }
  }
  if (traces.empty()) GTEST_SKIP() << "no recorded traces yet";
}

// tests/fixtures/predict/unseen: OOM kills recorded by sim/record_positives.sh on 2026-12-04,
// after the model was last changed, and not used to change it. Each must stay warned as far
// ahead as it was when first replayed, so that a model change that loses one of them fails here:
// 30 s ahead (the recall goal), except one that was not, as measured (docs/prediction.md,
// "OOM kills the model never saw"): kernel_py_batch_oversized builds 300 MiB in 60 s into
// 256 MiB, a fast ramp, warned 29 s ahead, so it is held to the fast-ramp goal of 5 s.
// kernel_jvm_heap_oversized commits its heap in steps (35% -> 85% in 9 s, then 90%, then the
// limit in one second) and was warned 1 s ahead, by the pressure model only, until the staircase
// model was written for it (2026-12-04, twelfth session): 35 s now. It is out of sample no more;
// tests/fixtures/predict/steps holds the JVMs recorded after that model.
TEST(GoldenCorpusTest, OomKillsTheModelNeverSawAreWarnedAsFarAheadAsMeasured) {
  const std::filesystem::path dir =
      std::filesystem::path(TAPIO_SOURCE_DIR) / "tests/fixtures/predict/unseen";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no unseen traces";
  const std::map<std::string, double> lead_below_goal_s = {
      {"kernel_py_batch_oversized", 5},
  };
  predict::ModelParams params = LoadShippedModel();
  const auto traces = ReadTracesIn(dir);
  for (const auto& [path, trace] : traces) {
    ASSERT_TRUE(trace.header.oom_time_ms.has_value()) << path << ": not OOM-killed";
    auto det = MakeDetector(DetectorKind::kModel, &params);
    TraceResult r = ScoreTrace(trace, det.get(), ClassGroup::kPredictable);
    auto below = lead_below_goal_s.find(trace.header.workload_class);
    const double want_s = below == lead_below_goal_s.end() ? 30 : below->second;
    EXPECT_TRUE(r.detected) << path;
    EXPECT_GE(r.lead_s, want_s) << path;
    EXPECT_EQ(r.false_alarms, 0) << path;
  }
  EXPECT_EQ(traces.size(), 7u);
}

// tests/fixtures/predict/steps: JVM heaps committed in steps, recorded by sim/record_steps.sh on
// 2026-12-04 after the staircase model was written, and not used to change it (docs/prediction.md,
// "Heaps committed in steps"). Each is held to what was measured when first replayed:
// - the kills, to their lead: g1_large_oversized 29 s (the staircase model: 0 s without it),
//   g1_slow_oversized 41 s, serial_oversized 16 s and parallel_oversized 12 s (young fills that
//   do not stop, warned by the slow trend as soon as the early-rise rule allows); g1_oversized
//   is not warned: its heap sat flat at 87% for 56 s and reached the limit in one second, the
//   shape of kernel_py_hold_near_limit until then;
// - the heaps capped below the limit, to at most one raise, during their start-up fill (none for
//   g1_ram_percentage).
TEST(GoldenCorpusTest, JvmHeapsRecordedAfterTheStaircaseModelAreWarnedAsMeasured) {
  const std::filesystem::path dir =
      std::filesystem::path(TAPIO_SOURCE_DIR) / "tests/fixtures/predict/steps";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no stepped-heap traces";
  const std::map<std::string, double> lead_s = {
      {"kernel_g1_large_oversized", 25}, {"kernel_g1_slow_oversized", 30},
      {"kernel_serial_oversized", 10},   {"kernel_parallel_oversized", 10},
      {"kernel_g1_oversized", -1},  // not warned
  };
  const std::map<std::string, int> false_alarms = {
      {"kernel_g1_capped", 1}, {"kernel_parallel_capped", 1}, {"kernel_g1_ram_percentage", 0}};
  predict::ModelParams params = LoadShippedModel();
  predict::ModelParams no_staircase = params;
  no_staircase.step_min_fraction = 0;
  const auto traces = ReadTracesIn(dir);
  for (const auto& [path, trace] : traces) {
    const std::string& cls = trace.header.workload_class;
    auto det = MakeDetector(DetectorKind::kModel, &params);
    if (trace.header.oom_time_ms) {
      ASSERT_EQ(lead_s.count(cls), 1u) << path;
      TraceResult r = ScoreTrace(trace, det.get(), ClassGroup::kPredictable);
      EXPECT_EQ(r.false_alarms, 0) << path;
      if (lead_s.at(cls) >= 0) {
        EXPECT_TRUE(r.detected) << path;
        EXPECT_GE(r.lead_s, lead_s.at(cls)) << path;
      }
      if (cls == "kernel_g1_large_oversized") {
        auto without = MakeDetector(DetectorKind::kModel, &no_staircase);
        TraceResult w = ScoreTrace(trace, without.get(), ClassGroup::kPredictable);
        EXPECT_LT(w.detected ? w.lead_s : 0, 5) << path << ": what the staircase model adds";
      }
    } else {
      ASSERT_EQ(false_alarms.count(cls), 1u) << path;
      TraceResult r = ScoreTrace(trace, det.get(), ClassGroup::kNegative);
      EXPECT_LE(r.false_alarms, false_alarms.at(cls)) << path;
      for (int64_t t : r.raise_times_ms) {
        EXPECT_LT(t - trace.samples.front().time_ms, kStartupFillWindowMs)
            << path << ": " << kStartupFill;
      }
    }
  }
  EXPECT_EQ(traces.size(), 8u);
}

// Replays every trace of `dir` (recorded by an agent that reads heap caps; unless
// `every_trace_capped` is false, each first sample carries one) with the shipped model and with
// one that ignores the caps (heap_cap_margin_fraction 0: no ceiling, no shortened early wait, no
// deadline grace), and holds each to what was measured: a killed one warned at least lead_s
// ahead (-1: not warned), never later than without the caps, with no false alarm; one that lived
// to false_alarms (with, without the caps).
void ExpectCapsAsMeasured(const std::filesystem::path& dir,
                          const std::map<std::string, double>& lead_s,
                          const std::map<std::string, std::pair<int, int>>& false_alarms,
                          bool every_trace_capped = true) {
  predict::ModelParams params = LoadShippedModel();
  predict::ModelParams no_caps = params;
  no_caps.heap_cap_margin_fraction = 0;
  const auto traces = ReadTracesIn(dir);
  for (const auto& [path, trace] : traces) {
    const std::string& cls = trace.header.workload_class;
    if (every_trace_capped) {
      ASSERT_GT(trace.samples.front().runtime_heap_cap_bytes, 0u) << path << ": recorded with caps";
    }
    auto det = MakeDetector(DetectorKind::kModel, &params);
    auto without = MakeDetector(DetectorKind::kModel, &no_caps);
    if (trace.header.oom_time_ms) {
      ASSERT_EQ(lead_s.count(cls), 1u) << path;
      TraceResult r = ScoreTrace(trace, det.get(), ClassGroup::kPredictable);
      TraceResult w = ScoreTrace(trace, without.get(), ClassGroup::kPredictable);
      EXPECT_EQ(r.false_alarms, 0) << path;
      EXPECT_GE(r.detected, w.detected) << path << ": warned without the caps";
      if (r.detected && w.detected) {
        EXPECT_GE(r.lead_s, w.lead_s) << path;
      }
      EXPECT_EQ(r.detected, lead_s.at(cls) >= 0) << path;
      if (lead_s.at(cls) >= 0) {
        EXPECT_GE(r.lead_s, lead_s.at(cls)) << path;
      }
    } else {
      ASSERT_EQ(false_alarms.count(cls), 1u) << path;
      EXPECT_EQ(ScoreTrace(trace, det.get(), ClassGroup::kNegative).false_alarms,
                false_alarms.at(cls).first)
          << path;
      EXPECT_EQ(ScoreTrace(trace, without.get(), ClassGroup::kNegative).false_alarms,
                false_alarms.at(cls).second)
          << path << ": without the caps";
    }
  }
  EXPECT_EQ(traces.size(), lead_s.size() + false_alarms.size()) << dir;
}

// tests/fixtures/predict/steps_caps: the workloads of steps/ recorded again (sim/record_steps.sh,
// 2026-12-08) by an agent that reads the runtimes' heap caps; the heap ceiling's margin
// (heap_cap_margin_fraction) and, for heaps allowed past the limit, the early wait
// (oversized_early_min_history_s) and the deadline grace (oversized_deadline_grace_s) were set on
// these. The capped heaps raise nothing (parallel_capped once without the caps: what the ceiling
// adds); the killed ones, all allowed past the limit, are warned earlier than without the caps:
// g1_large 67 s ahead (57 without), serial 34 (16), parallel 40 (12), g1_slow 141 (141), and
// g1_oversized 60 s (not warned: its alarm cleared at its deadline while the heap sat at 86%).
TEST(GoldenCorpusTest, HeapsRecordedWithTheirCapsAreWarnedAsMeasured) {
  ExpectCapsAsMeasured(
      std::filesystem::path(TAPIO_SOURCE_DIR) / "tests/fixtures/predict/steps_caps",
      {{"kernel_g1_large_oversized", 60},
       {"kernel_g1_slow_oversized", 120},
       {"kernel_serial_oversized", 30},
       {"kernel_parallel_oversized", 30},
       {"kernel_g1_oversized", 50}},
      {{"kernel_g1_capped", {0, 0}},
       {"kernel_parallel_capped", {0, 1}},
       {"kernel_g1_ram_percentage", {0, 0}}});
}

// tests/fixtures/predict/caps: JVMs, memcached and Node.js recorded with their heap caps after the
// heap ceiling and its margin were set (sim/record_caps.sh, 2026-12-08): its held-out test. The
// three killed ones are warned at least 50 s ahead; of the six that lived, only
// jvm_percentage_oversized raises (its cap, 95% of the limit, is no ceiling; its JVM died of a
// Java heap OutOfMemoryError at 83% of the limit, which the kernel does not label), and three
// capped ones raise once each without the ceiling: what it adds.
TEST(GoldenCorpusTest, RuntimesRecordedAfterTheHeapCeilingAreWarnedAsMeasured) {
  ExpectCapsAsMeasured(std::filesystem::path(TAPIO_SOURCE_DIR) / "tests/fixtures/predict/caps",
                       {{"kernel_jvm_parallel_oversized", 90},
                        {"kernel_memcached_oversized_2", 50},
                        {"kernel_node_oversized", 100}},
                       {{"kernel_jvm_default_384", {0, 0}},
                        {"kernel_jvm_parallel_percentage", {0, 1}},
                        {"kernel_jvm_percentage_oversized", {1, 1}},
                        {"kernel_jvm_serial_capped", {0, 1}},
                        {"kernel_memcached_capped", {0, 1}},
                        {"kernel_node_capped", {0, 0}}});
}

// tests/fixtures/predict/oversized (sim/record_oversized.sh OUT 20, 2026-12-08): runtimes allowed
// past their limits. Set 1 was recorded after oversized_early_min_history_s was set (its held-out
// test) and before oversized_deadline_grace_s, which was set on it; set 2 (the *_2 files and
// node_slow_past) after both, the held-out test of both. Six JVMs whose working set fits were
// killed anyway.
// - Set 1: serial_fits 136 s ahead (not warned without the grace: its alarm cleared at 98% of the
//   limit 9 s before the kill), parallel_past 97 (78 without the caps), node_past 85 (73), g1_past
//   58 (30), memcached_past 42 (29), parallel_fits 27 (3); g1_fits not warned (its alarm cleared
//   at the end of its hold, 0.4 s before the kill).
// - Set 2: node_slow_past 280 (280), serial_fits_2 132 (132), g1_fits_2 78 (not warned),
//   parallel_fits_2 53 (37), g1_past_2 40 (19), memcached_past_2 37 (28).
// Of the six that lived, the memcached and MaxRAMPercentage JVM start-up fills raise once each,
// with or without the caps; the Node.js ones do not.
TEST(GoldenCorpusTest, HeapsAllowedPastTheirLimitAreWarnedAsMeasured) {
  ExpectCapsAsMeasured(std::filesystem::path(TAPIO_SOURCE_DIR) / "tests/fixtures/predict/oversized",
                       {{"kernel_jvm_serial_fits", 120},
                        {"kernel_jvm_parallel_past", 90},
                        {"kernel_node_past", 80},
                        {"kernel_jvm_g1_past", 50},
                        {"kernel_memcached_past", 40},
                        {"kernel_jvm_parallel_fits", 25},
                        {"kernel_jvm_g1_fits", -1},  // not warned
                        {"kernel_node_slow_past", 250},
                        {"kernel_jvm_serial_fits_2", 120},
                        {"kernel_jvm_g1_fits_2", 70},
                        {"kernel_jvm_parallel_fits_2", 50},
                        {"kernel_jvm_g1_past_2", 35},
                        {"kernel_memcached_past_2", 30}},
                       {{"kernel_jvm_percentage_fits", {1, 1}},
                        {"kernel_memcached_fits", {1, 1}},
                        {"kernel_node_fits", {0, 0}},
                        {"kernel_jvm_percentage_fits_2", {1, 1}},
                        {"kernel_memcached_fits_2", {1, 1}},
                        {"kernel_node_fits_2", {0, 0}}});
}

// tests/fixtures/predict/negatives_caps: the thirteen negatives of sim/record_negatives.sh
// recorded again (95 minutes, 2026-12-08) by an agent that reads heap caps, after the heap
// ceiling and the rules for heaps allowed past the limit were set: their held-out test on
// services that live. The five runtimes carry caps below their limits; with them the memcached
// (-m 160 in 256 MiB) and jvm_churn_large (-Xmx256m in 384 MiB) start-up fills raise nothing,
// without them once each, as in the first recording. The three left are start-up fills with no
// cap to read (a Python batch and LRU cache, a tmpfs ring), as in the first recording.
TEST(GoldenCorpusTest, NegativesRecordedWithTheirCapsRaiseAsMeasured) {
  ExpectCapsAsMeasured(
      std::filesystem::path(TAPIO_SOURCE_DIR) / "tests/fixtures/predict/negatives_caps", {},
      {{"kernel_jvm_churn_large", {0, 1}},
       {"kernel_memcached", {0, 1}},
       {"kernel_jvm_churn_small", {0, 0}},
       {"kernel_node_churn", {0, 0}},
       {"kernel_node_churn_capped", {0, 0}},
       {"kernel_page_cache_reader", {0, 0}},
       {"kernel_postgres", {0, 0}},
       {"kernel_py_hold_near_limit", {0, 0}},
       {"kernel_redis", {0, 0}},
       {"kernel_sort_batch", {0, 0}},
       {"kernel_py_batch", {1, 1}},
       {"kernel_py_lru", {1, 1}},
       {"kernel_tmpfs_ring", {1, 1}}},
      /*every_trace_capped=*/false);
}

// The first known ambiguity, measured on the traces themselves: the sawtooth ran the leak's
// program (+1 MiB per second) until its first collection at about 203 s, so the two agree to the
// sampling step (1 MiB, 0.4% of the limit) up to 188 s, when kernel_leak must be raised to be
// warned 60 s ahead; past the collection they are far apart.
TEST(GoldenCorpusTest, TheRecordedSawtoothIsTheRecordedLeakUntilItsFirstCollection) {
  const std::filesystem::path dir =
      std::filesystem::path(TAPIO_SOURCE_DIR) / "tests/fixtures/predict";
  absl::StatusOr<predict::Trace> leak =
      predict::ReadTraceFile((dir / "kernel_leak.jsonl").string());
  absl::StatusOr<predict::Trace> saw =
      predict::ReadTraceFile((dir / "kernel_sawtooth_stable.jsonl").string());
  ASSERT_TRUE(leak.ok()) << leak.status();
  ASSERT_TRUE(saw.ok()) << saw.status();
  ASSERT_TRUE(leak->header.oom_time_ms.has_value());
  const int64_t warned_60s_ahead_ms =
      *leak->header.oom_time_ms - leak->samples.front().time_ms - 60000;
  std::optional<PrefixGap> before = PrefixGapOf(*leak, *saw, warned_60s_ahead_ms, 2000);
  ASSERT_TRUE(before.has_value());
  EXPECT_LE(before->gap, 0.005) << "shift " << before->shift_ms << " ms";
  std::optional<PrefixGap> after = PrefixGapOf(*leak, *saw, 210000, 2000);
  ASSERT_TRUE(after.has_value());
  EXPECT_GT(after->gap, 0.5);
}

// tests/fixtures/predict/restart: second runs of recorded negatives (sim/record_negatives.sh run
// again while the first runs were still going, on the same clock), each replayed with a prior
// from its first run (the trace of the same class one directory up):
// - as a restart: the first run's peak (the agent's restart prior, Pipeline::RememberRun);
// - as a new replica beside a live one: the first run's peak so far, when it is running and not
//   at risk at the second run's start (the agent's live-peer prior: a scale-up, a rolling update).
// None may raise; without a prior their start-up fills do, so the prior is what keeps them quiet.
enum class PriorFrom { kFinishedRun, kLivePeer };

void ExpectSecondRunsQuietWithPrior(PriorFrom from) {
  const std::filesystem::path dir =
      std::filesystem::path(TAPIO_SOURCE_DIR) / "tests/fixtures/predict";
  if (!std::filesystem::exists(dir / "restart")) GTEST_SKIP() << "no restart traces";
  predict::ModelParams params = LoadShippedModel();
  int n = 0, raises_without_prior = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "restart")) {
    if (entry.path().extension() != ".jsonl") continue;
    absl::StatusOr<predict::Trace> second = predict::ReadTraceFile(entry.path().string());
    ASSERT_TRUE(second.ok()) << second.status();
    absl::StatusOr<predict::Trace> first =
        predict::ReadTraceFile((dir / entry.path().filename()).string());
    ASSERT_TRUE(first.ok()) << entry.path() << ": no first run: " << first.status();
    ASSERT_EQ(first->header.workload_class, second->header.workload_class);
    ASSERT_FALSE(second->header.oom_time_ms.has_value()) << entry.path();
    ASSERT_FALSE(second->samples.empty()) << entry.path();
    std::optional<predict::RunPeak> prior =
        from == PriorFrom::kFinishedRun
            ? PriorRunOf(*first)
            : LivePeerRunOf(*first, second->samples.front().time_ms, params);
    ASSERT_TRUE(prior.has_value()) << entry.path();
    ++n;
    auto plain = MakeDetector(DetectorKind::kModel, &params);
    raises_without_prior += ScoreTrace(*second, plain.get(), ClassGroup::kNegative).raises;
    auto with_prior = MakeDetector(DetectorKind::kModel, &params);
    with_prior->SetPriorPeak(prior->peak_bytes, prior->limit_bytes);
    TraceResult r = ScoreTrace(*second, with_prior.get(), ClassGroup::kNegative);
    EXPECT_EQ(r.false_alarms, 0) << entry.path();
  }
  ASSERT_GT(n, 0);
  EXPECT_GT(raises_without_prior, 0) << "the restart corpus no longer tests the prior";
}

TEST(GoldenCorpusTest, RestartsOfRecordedNegativesStayQuietWithTheFirstRunsPeak) {
  ExpectSecondRunsQuietWithPrior(PriorFrom::kFinishedRun);
}

TEST(GoldenCorpusTest, ReplicasStartedBesideRecordedNegativesStayQuietWithTheLivePeersPeak) {
  ExpectSecondRunsQuietWithPrior(PriorFrom::kLivePeer);
}

}  // namespace
}  // namespace tapio::sim
