#include "agent/metrics/container_metrics.h"

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace tapio::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::shared_ptr<const WorkloadIdentity> Pod(uint64_t cgroup_id, std::string ns, std::string pod,
                                            std::string container) {
  auto id = std::make_shared<WorkloadIdentity>();
  id->cgroup_id = cgroup_id;
  id->cgroup_path = "/kubepods/burstable/pod-" + pod + "/" + container;
  id->container_id = "cid-" + container;
  id->container_name = std::move(container);
  id->pod_name = std::move(pod);
  id->pod_namespace = std::move(ns);
  id->qos_class = "burstable";
  return id;
}

Event Usage(std::shared_ptr<const WorkloadIdentity> id, uint64_t ws, uint64_t limit) {
  Event e;
  e.identity = std::move(id);
  MemoryUsage u;
  u.usage_bytes = ws + 100;
  u.working_set_bytes = ws;
  u.anon_bytes = ws - 10;
  u.file_bytes = 110;
  u.limit_bytes = limit;
  e.payload = u;
  return e;
}

Event Kill(std::shared_ptr<const WorkloadIdentity> id) {
  Event e;
  e.identity = std::move(id);
  e.payload = OomKill{};
  return e;
}

Event Prediction(std::shared_ptr<const WorkloadIdentity> id, OomPrediction::State state,
                 int64_t ttl_ms, double confidence) {
  Event e;
  e.identity = std::move(id);
  OomPrediction p;
  p.state = state;
  p.time_to_oom_ms = ttl_ms;
  p.confidence = confidence;
  e.payload = p;
  return e;
}

struct FakeClock {
  absl::Time now = absl::FromUnixSeconds(1'000'000);
};

class ContainerMetricsTest : public ::testing::Test {
 protected:
  std::unique_ptr<ContainerMetrics> Make(std::vector<ContainerLabel> labels = {
                                             ContainerLabel::kNamespace, ContainerLabel::kPod,
                                             ContainerLabel::kContainer}) {
    ContainerMetrics::Options o;
    o.labels = std::move(labels);
    o.clock = [this] { return clock_.now; };
    auto m = ContainerMetrics::Create(std::move(o));
    EXPECT_TRUE(m.ok()) << m.status();
    return std::move(*m);
  }
  static std::string Text(const ContainerMetrics& m) {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, m.Collect());
    return out.str();
  }
  FakeClock clock_;
};

TEST_F(ContainerMetricsTest, UsageEventCreatesSeriesWithDefaultLabels) {
  auto m = Make();
  m->Observe(Usage(Pod(7, "shop", "cart-1", "app"), 5000, 64 << 20));
  const std::string text = Text(*m);
  EXPECT_THAT(text, HasSubstr("tapio_container_memory_working_set_bytes{namespace=\"shop\","
                              "pod=\"cart-1\",container=\"app\"} 5000"));
  EXPECT_THAT(text, HasSubstr("tapio_container_spec_memory_limit_bytes{namespace=\"shop\","
                              "pod=\"cart-1\",container=\"app\"} 67108864"));
  EXPECT_THAT(text, HasSubstr("tapio_container_memory_rss_bytes{namespace=\"shop\","
                              "pod=\"cart-1\",container=\"app\"} 4990"));
  EXPECT_THAT(text, HasSubstr("tapio_container_memory_cache_bytes{namespace=\"shop\","
                              "pod=\"cart-1\",container=\"app\"} 110"));
  EXPECT_THAT(text, HasSubstr("tapio_container_oom_kills_total{namespace=\"shop\","
                              "pod=\"cart-1\",container=\"app\"} 0"));
  EXPECT_THAT(text, Not(HasSubstr("cgroup=\"/kubepods/burstable/pod-cart-1/app\"} 5000")));
  EXPECT_EQ(m->container_count(), 1u);
}

TEST_F(ContainerMetricsTest, ForgetContainerDeletesEverySeriesOfThatContainerOnly) {
  auto m = Make();
  m->Observe(Usage(Pod(7, "shop", "cart-1", "app"), 5000, 0));
  m->Observe(Kill(Pod(7, "shop", "cart-1", "app")));
  m->Observe(Usage(Pod(8, "shop", "cart-2", "app"), 6000, 0));
  m->ForgetContainer(7);
  m->ForgetContainer(12345);  // unknown: ignored
  const std::string text = Text(*m);
  EXPECT_THAT(text, Not(HasSubstr("cart-1")));
  EXPECT_THAT(text, HasSubstr("pod=\"cart-2\",container=\"app\"} 6000"));
  EXPECT_EQ(m->container_count(), 1u);
}

TEST_F(ContainerMetricsTest, CgroupLabelModeLabelsByPathOnly) {
  auto m = Make({ContainerLabel::kCgroup});
  m->Observe(Usage(Pod(7, "shop", "cart-1", "app"), 5000, 0));
  const std::string text = Text(*m);
  EXPECT_THAT(text, HasSubstr("tapio_container_memory_working_set_bytes{cgroup=\"/kubepods/"
                              "burstable/pod-cart-1/app\"} 5000"));
  EXPECT_THAT(text, Not(HasSubstr("tapio_container_memory_working_set_bytes{namespace")));
}

TEST_F(ContainerMetricsTest, ContainersSharingLabelValuesAreMerged) {
  auto m = Make({ContainerLabel::kNamespace, ContainerLabel::kPod});
  m->Observe(Usage(Pod(7, "shop", "cart-1", "app"), 5000, 1000000));
  m->Observe(Usage(Pod(8, "shop", "cart-1", "sidecar"), 3000, 2000000));
  m->Observe(Kill(Pod(8, "shop", "cart-1", "sidecar")));
  m->Observe(Prediction(Pod(7, "shop", "cart-1", "app"), OomPrediction::State::kAtRisk, 90000, .6));
  m->Observe(
      Prediction(Pod(8, "shop", "cart-1", "sidecar"), OomPrediction::State::kAtRisk, 30000, .9));
  const std::string text = Text(*m);
  const std::string l = "{namespace=\"shop\",pod=\"cart-1\"}";
  EXPECT_THAT(text, HasSubstr("tapio_container_memory_working_set_bytes" + l + " 8000"));
  EXPECT_THAT(text, HasSubstr("tapio_container_spec_memory_limit_bytes" + l + " 3000000"));
  EXPECT_THAT(text, HasSubstr("tapio_container_oom_kills_total" + l + " 1"));
  EXPECT_THAT(text, HasSubstr("tapio_container_oom_predicted_seconds" + l + " 30"));
  EXPECT_THAT(text, HasSubstr("tapio_container_oom_prediction_confidence" + l + " 0.9"));
  // Exactly one series per family for the merged pod.
  const std::string needle = "tapio_container_memory_working_set_bytes{";
  size_t count = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++count;
  EXPECT_EQ(count, 1u);
}

TEST_F(ContainerMetricsTest, UnlimitedMemberMakesMergedLimitUnlimited) {
  auto m = Make({ContainerLabel::kPod});
  m->Observe(Usage(Pod(7, "shop", "cart-1", "app"), 5000, 1000000));
  m->Observe(Usage(Pod(8, "shop", "cart-1", "sidecar"), 3000, 0));
  EXPECT_THAT(Text(*m), HasSubstr("tapio_container_spec_memory_limit_bytes{pod=\"cart-1\"} 0\n"));
}

TEST_F(ContainerMetricsTest, OomKillsCountPerContainer) {
  auto m = Make();
  auto id = Pod(7, "shop", "cart-1", "app");
  m->Observe(Kill(id));
  m->Observe(Kill(id));
  m->Observe(Kill(Pod(9, "shop", "cart-3", "app")));
  const std::string text = Text(*m);
  EXPECT_THAT(text, HasSubstr("tapio_container_oom_kills_total{namespace=\"shop\",pod=\"cart-1\","
                              "container=\"app\"} 2"));
  EXPECT_THAT(text, HasSubstr("tapio_container_oom_kills_total{namespace=\"shop\",pod=\"cart-3\","
                              "container=\"app\"} 1"));
  // A kill alone carries no usage: no byte gauges invented for that container.
  EXPECT_THAT(text, Not(HasSubstr("working_set_bytes{namespace=\"shop\",pod=\"cart-3\"")));
}

TEST_F(ContainerMetricsTest, ClearedPredictionRemovesPredictedSecondsAndZeroesRisk) {
  auto m = Make({ContainerLabel::kPod});
  auto id = Pod(7, "shop", "cart-1", "app");
  m->Observe(Prediction(id, OomPrediction::State::kAtRisk, 42500, 0.8));
  std::string text = Text(*m);
  EXPECT_THAT(text, HasSubstr("tapio_container_oom_predicted_seconds{pod=\"cart-1\"} 42.5"));
  EXPECT_THAT(text, HasSubstr("tapio_container_oom_risk{pod=\"cart-1\"} 1"));
  m->Observe(Prediction(id, OomPrediction::State::kCleared, -1, 0.1));
  text = Text(*m);
  EXPECT_THAT(text, Not(HasSubstr("tapio_container_oom_predicted_seconds{")));
  EXPECT_THAT(text, HasSubstr("tapio_container_oom_risk{pod=\"cart-1\"} 0"));
}

TEST_F(ContainerMetricsTest, AtRiskWithoutEstimateHasRiskButNoSeconds) {
  auto m = Make({ContainerLabel::kPod});
  m->Observe(Prediction(Pod(7, "shop", "cart-1", "app"), OomPrediction::State::kAtRisk, -1, .5));
  const std::string text = Text(*m);
  EXPECT_THAT(text, HasSubstr("tapio_container_oom_risk{pod=\"cart-1\"} 1"));
  EXPECT_THAT(text, Not(HasSubstr("tapio_container_oom_predicted_seconds{")));
}

TEST_F(ContainerMetricsTest, PressureAccumulatesStallsAndReportsPsiRatio) {
  auto m = Make({ContainerLabel::kPod});
  auto id = Pod(7, "shop", "cart-1", "app");
  for (int i = 0; i < 2; ++i) {
    Event e;
    e.identity = id;
    MemoryPressure p;
    p.reclaim_stalls = 3;
    p.reclaim_stall_ns = 1'500'000'000;
    p.limit_hits = 2;
    p.psi_some_avg10 = 12.5;
    p.psi_full_avg10 = -1;  // no PSI full: no series
    e.payload = p;
    m->Observe(e);
  }
  const std::string text = Text(*m);
  EXPECT_THAT(text, HasSubstr("tapio_container_memory_reclaim_stalls_total{pod=\"cart-1\"} 6"));
  EXPECT_THAT(text,
              HasSubstr("tapio_container_memory_reclaim_stall_seconds_total{pod=\"cart-1\"} 3"));
  EXPECT_THAT(text, HasSubstr("tapio_container_memory_limit_hits_total{pod=\"cart-1\"} 4"));
  EXPECT_THAT(text, HasSubstr("tapio_container_memory_pressure_some_ratio{pod=\"cart-1\"} 0.125"));
  EXPECT_THAT(text, Not(HasSubstr("tapio_container_memory_pressure_full_ratio{")));
}

TEST_F(ContainerMetricsTest, EventWithoutIdentityIsCountedAndIgnored) {
  auto m = Make();
  Event e;
  e.payload = MemoryUsage{};
  m->Observe(e);
  EXPECT_EQ(m->container_count(), 0u);
  EXPECT_THAT(Text(*m), HasSubstr("tapio_metrics_invalid_events_total 1"));
}

TEST_F(ContainerMetricsTest, EventsLostNoticesAreCountedBySource) {
  auto m = Make();
  Event e;
  EventsLost lost;
  lost.source = "subscriber_queue";
  lost.count = 17;
  e.payload = lost;
  m->Observe(e);
  m->Observe(e);
  EXPECT_THAT(Text(*m),
              HasSubstr("tapio_metrics_events_lost_total{source=\"subscriber_queue\"} 34"));
  EXPECT_EQ(m->container_count(), 0u);
}

TEST_F(ContainerMetricsTest, StaleContainersAreDroppedAtScrape) {
  auto m = Make();
  m->Observe(Usage(Pod(7, "shop", "cart-1", "app"), 5000, 0));
  clock_.now += absl::Minutes(5);
  m->Observe(Usage(Pod(8, "shop", "cart-2", "app"), 6000, 0));
  clock_.now += absl::Minutes(6);  // cart-1 silent for 11 min > 10 min default, cart-2 for 6
  const std::string text = Text(*m);
  EXPECT_THAT(text, Not(HasSubstr("cart-1")));
  EXPECT_THAT(text, HasSubstr("cart-2"));
  EXPECT_THAT(text, HasSubstr("tapio_metrics_stale_containers_dropped_total 1"));
}

TEST_F(ContainerMetricsTest, HealthIsPulledFromProviderAtEveryScrape) {
  int calls = 0;
  ContainerMetrics::Options o;
  o.health = [&calls] {
    ++calls;
    AgentHealth h;
    h.sources.push_back({"ringbuf", 1000u + calls, 3});
    h.ringbuf_lost_total = 3;
    h.subscriber_drops_total = 5;
    h.subscribers = 2;
    h.attribution_failures_total = 4;
    h.restart_priors_total = 6;
    h.peer_priors_total = 7;
    h.jump_triggered_samples_total = 8;
    h.events_not_built_total = 9;
    h.prior_store_errors_total = 8;
    h.bpf_stats_enabled = true;
    h.bpf_programs.push_back({"handle_mark_victim", 10, 2'000'000'000});
    h.version = "0.1.0";
    return h;
  };
  auto m = ContainerMetrics::Create(std::move(o));
  ASSERT_TRUE(m.ok());
  std::string text = Text(**m);
  EXPECT_THAT(text, HasSubstr("tapio_agent_events_received_total{source=\"ringbuf\"} 1001"));
  EXPECT_THAT(text, HasSubstr("tapio_agent_events_lost_total{source=\"ringbuf\"} 3"));
  EXPECT_THAT(text, HasSubstr("tapio_agent_ringbuf_lost_events_total 3"));
  EXPECT_THAT(text, HasSubstr("tapio_agent_subscriber_dropped_events_total 5"));
  EXPECT_THAT(text, HasSubstr("tapio_agent_subscribers 2"));
  EXPECT_THAT(text, HasSubstr("tapio_agent_attribution_failures_total 4"));
  EXPECT_THAT(text, HasSubstr("tapio_agent_prediction_priors_total{source=\"restart\"} 6"));
  EXPECT_THAT(text, HasSubstr("tapio_agent_prediction_priors_total{source=\"peer\"} 7"));
  EXPECT_THAT(text, HasSubstr("tapio_agent_jump_triggered_readings_total 8"));
  EXPECT_THAT(text, HasSubstr("tapio_agent_events_not_built_total 9"));
  EXPECT_THAT(text, HasSubstr("tapio_agent_prior_store_errors_total 8"));
  EXPECT_THAT(text,
              HasSubstr("tapio_agent_bpf_program_runs_total{program=\"handle_mark_victim\"} 10"));
  EXPECT_THAT(text, HasSubstr("tapio_agent_bpf_program_run_seconds_total{program=\"handle_mark_"
                              "victim\"} 2"));
  EXPECT_THAT(text, HasSubstr("tapio_agent_build_info{version=\"0.1.0\"} 1"));
  text = Text(**m);
  EXPECT_THAT(text, HasSubstr("tapio_agent_events_received_total{source=\"ringbuf\"} 1002"));
  EXPECT_EQ(calls, 2);
}

TEST_F(ContainerMetricsTest, AHeapCapIsExposedOnlyForContainersWithOne) {
  auto m = Make();
  m->Observe(Usage(Pod(7, "shop", "cart-1", "app"), 5000, 256 << 20));
  Event jvm = Usage(Pod(8, "shop", "cart-2", "app"), 5000, 256 << 20);
  std::get<MemoryUsage>(jvm.payload).runtime = "jvm";
  std::get<MemoryUsage>(jvm.payload).runtime_heap_cap_bytes = 512 << 20;
  m->Observe(jvm);
  const std::string text = Text(*m);
  EXPECT_THAT(text, HasSubstr("tapio_container_runtime_heap_cap_bytes{namespace=\"shop\","
                              "pod=\"cart-2\",container=\"app\"} 536870912"));
  EXPECT_THAT(text, Not(HasSubstr("tapio_container_runtime_heap_cap_bytes{namespace=\"shop\","
                                  "pod=\"cart-1\"")));
}

TEST_F(ContainerMetricsTest, RuntimeScanCountersAreExposedByResult) {
  ContainerMetrics::Options o;
  o.health = [] {
    AgentHealth h;
    h.runtime_scan.scans = 11;
    h.runtime_scan.processes_read = 12;
    h.runtime_scan.processes_vanished = 13;
    h.runtime_scan.environ_unreadable = 14;
    h.runtime_scan.parse_errors = 15;
    h.runtime_scan.deferred = 16;
    return h;
  };
  auto m = ContainerMetrics::Create(std::move(o));
  ASSERT_TRUE(m.ok());
  const std::string text = Text(**m);
  EXPECT_THAT(text, HasSubstr("tapio_agent_runtime_scans_total 11"));
  for (const auto& [result, value] :
       {std::pair{"read", 12}, std::pair{"vanished", 13}, std::pair{"environ_unreadable", 14},
        std::pair{"parse_error", 15}, std::pair{"deferred", 16}}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("tapio_agent_runtime_scan_processes_total{result=\"",
                                             result, "\"} ", value)));
  }
}

TEST_F(ContainerMetricsTest, NoHealthProviderMeansNoAgentSeries) {
  auto m = Make();
  EXPECT_THAT(Text(*m), Not(HasSubstr("tapio_agent_")));
}

TEST(ParseContainerLabelsTest, AcceptsKnownNamesInOrder) {
  auto labels = ParseContainerLabels("pod, container_id,cgroup");
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(*labels,
            (std::vector<ContainerLabel>{ContainerLabel::kPod, ContainerLabel::kContainerId,
                                         ContainerLabel::kCgroup}));
}

TEST(ParseContainerLabelsTest, RejectsUnknownDuplicateAndEmptyNamingTheEntry) {
  auto unknown = ParseContainerLabels("namespace,image");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("\"image\""));
  auto dup = ParseContainerLabels("pod,pod");
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("\"pod\" given twice"));
  EXPECT_FALSE(ParseContainerLabels("").ok());
  EXPECT_FALSE(ParseContainerLabels("pod,,container").ok());
}

TEST(ContainerMetricsCreateTest, RejectsEmptyLabelList) {
  ContainerMetrics::Options o;
  o.labels.clear();
  EXPECT_FALSE(ContainerMetrics::Create(std::move(o)).ok());
}

}  // namespace
}  // namespace tapio::metrics
