// The internal -> tapio.v1 mapping is 1:1, and request validation names the field.
#include "agent/api/convert.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tapio::api {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<const WorkloadIdentity> FullIdentity() {
  auto id = std::make_shared<WorkloadIdentity>();
  id->cgroup_id = 4242;
  id->cgroup_path = "/kubepods/burstable/podu1/c1";
  id->container_id = "c1";
  id->container_name = "app";
  id->pod_name = "web-1";
  id->pod_namespace = "prod";
  id->pod_uid = "u1";
  id->qos_class = "burstable";
  id->labels = {{"app", "web"}, {"tier", "front"}};
  return id;
}

TEST(ConvertTest, EnvelopeAndIdentityAreCopied) {
  Event e;
  e.seq = 17;
  e.time_unix_ns = 1'700'000'000'123'456'789;
  e.severity = Severity::kCritical;
  e.identity = FullIdentity();
  e.payload = MemoryUsage{};
  v1::Event out;
  EventToProto(e, "node-a", &out);
  EXPECT_EQ(out.seq(), 17u);
  EXPECT_EQ(out.time_unix_ns(), 1'700'000'000'123'456'789);
  EXPECT_EQ(out.node(), "node-a");
  EXPECT_EQ(out.severity(), v1::SEVERITY_CRITICAL);
  const auto& id = out.identity();
  EXPECT_EQ(id.cgroup_id(), 4242u);
  EXPECT_EQ(id.cgroup_path(), "/kubepods/burstable/podu1/c1");
  EXPECT_EQ(id.container_id(), "c1");
  EXPECT_EQ(id.container_name(), "app");
  EXPECT_EQ(id.pod_name(), "web-1");
  EXPECT_EQ(id.pod_namespace(), "prod");
  EXPECT_EQ(id.pod_uid(), "u1");
  EXPECT_EQ(id.qos_class(), v1::QOS_CLASS_BURSTABLE);
  ASSERT_EQ(id.labels_size(), 2);
  EXPECT_EQ(id.labels().at("tier"), "front");
}

TEST(ConvertTest, QosClassNames) {
  EXPECT_EQ(QosClassToProto("guaranteed"), v1::QOS_CLASS_GUARANTEED);
  EXPECT_EQ(QosClassToProto("besteffort"), v1::QOS_CLASS_BEST_EFFORT);
  EXPECT_EQ(QosClassToProto(""), v1::QOS_CLASS_UNSPECIFIED);
  EXPECT_EQ(QosClassToProto("weird"), v1::QOS_CLASS_UNSPECIFIED);
}

TEST(ConvertTest, EveryPayloadMapsToItsOneofCase) {
  const std::pair<EventPayload, v1::Event::PayloadCase> cases[] = {
      {MemoryUsage{}, v1::Event::kMemoryUsage},
      {RssChange{}, v1::Event::kRssChange},
      {OomKill{}, v1::Event::kOomKill},
      {OomPrediction{}, v1::Event::kOomPrediction},
      {MemoryPressure{}, v1::Event::kMemoryPressure},
      {ProcessLifecycle{}, v1::Event::kProcessLifecycle},
      {EventsLost{}, v1::Event::kEventsLost},
  };
  for (const auto& [payload, expected] : cases) {
    Event e;
    e.payload = payload;
    v1::Event out;
    EventToProto(e, "", &out);
    EXPECT_EQ(out.payload_case(), expected) << "kind " << static_cast<int>(e.kind());
    EXPECT_EQ(EventKindToProto(e.kind()), static_cast<int>(expected) - v1::Event::kMemoryUsage + 1);
  }
}

TEST(ConvertTest, OomKillFields) {
  OomKill k;
  k.victim_pid = 100;
  k.victim_comm = "hog";
  k.trigger_pid = 101;
  k.trigger_comm = "alloc";
  k.trigger_cgroup_id = 77;
  k.constraint = OomConstraint::kMemcg;
  k.constraint_source = "kmsg";
  k.oom_memcg_path = "/pod/c";
  k.anon_rss_bytes = 1;
  k.file_rss_bytes = 2;
  k.shmem_rss_bytes = 3;
  k.swap_bytes = 4;
  k.total_vm_bytes = 5;
  k.pgtables_bytes = 6;
  k.oom_score_adj = -7;
  Event e;
  e.payload = k;
  v1::Event out;
  EventToProto(e, "", &out);
  const auto& o = out.oom_kill();
  EXPECT_EQ(o.victim_pid(), 100u);
  EXPECT_EQ(o.victim_comm(), "hog");
  EXPECT_EQ(o.trigger_pid(), 101u);
  EXPECT_EQ(o.trigger_comm(), "alloc");
  EXPECT_EQ(o.trigger_cgroup_id(), 77u);
  EXPECT_EQ(o.constraint(), v1::OOM_CONSTRAINT_MEMCG);
  EXPECT_EQ(o.constraint_source(), "kmsg");
  EXPECT_EQ(o.oom_memcg_path(), "/pod/c");
  EXPECT_EQ(o.anon_rss_bytes(), 1u);
  EXPECT_EQ(o.file_rss_bytes(), 2u);
  EXPECT_EQ(o.shmem_rss_bytes(), 3u);
  EXPECT_EQ(o.swap_bytes(), 4u);
  EXPECT_EQ(o.total_vm_bytes(), 5u);
  EXPECT_EQ(o.pgtables_bytes(), 6u);
  EXPECT_EQ(o.oom_score_adj(), -7);

  k.constraint = OomConstraint::kNone;
  e.payload = k;
  EventToProto(e, "", &out);
  EXPECT_EQ(out.oom_kill().constraint(), v1::OOM_CONSTRAINT_GLOBAL);
  k.constraint = OomConstraint::kUnknown;
  e.payload = k;
  EventToProto(e, "", &out);
  EXPECT_EQ(out.oom_kill().constraint(), v1::OOM_CONSTRAINT_UNSPECIFIED);
}

TEST(ConvertTest, PredictionUsagePressureLifecycleLostFields) {
  OomPrediction p;
  p.state = OomPrediction::State::kCleared;
  p.time_to_oom_ms = 1500;
  p.confidence = 0.75;
  p.model = "trend";
  p.reason = "growing";
  p.usage_bytes = 10;
  p.non_reclaimable_bytes = 9;
  p.limit_bytes = 20;
  p.growth_bytes_per_second = 2.5;
  Event e;
  e.payload = p;
  v1::Event out;
  EventToProto(e, "", &out);
  EXPECT_EQ(out.oom_prediction().state(), v1::OomPrediction::STATE_CLEARED);
  EXPECT_EQ(out.oom_prediction().time_to_oom_ms(), 1500);
  EXPECT_DOUBLE_EQ(out.oom_prediction().confidence(), 0.75);
  EXPECT_EQ(out.oom_prediction().model(), "trend");
  EXPECT_EQ(out.oom_prediction().reason(), "growing");
  EXPECT_EQ(out.oom_prediction().non_reclaimable_bytes(), 9u);
  EXPECT_EQ(out.oom_prediction().limit_bytes(), 20u);
  EXPECT_DOUBLE_EQ(out.oom_prediction().growth_bytes_per_second(), 2.5);

  MemoryUsage u{1, 2, 3, 4, 5, 6, 7, 8, 9, "jvm", 10};
  e.payload = u;
  EventToProto(e, "", &out);
  const auto& mu = out.memory_usage();
  EXPECT_EQ(mu.usage_bytes(), 1u);
  EXPECT_EQ(mu.working_set_bytes(), 2u);
  EXPECT_EQ(mu.anon_bytes(), 3u);
  EXPECT_EQ(mu.file_bytes(), 4u);
  EXPECT_EQ(mu.shmem_bytes(), 5u);
  EXPECT_EQ(mu.kernel_unreclaimable_bytes(), 6u);
  EXPECT_EQ(mu.non_reclaimable_bytes(), 7u);
  EXPECT_EQ(mu.swap_bytes(), 8u);
  EXPECT_EQ(mu.limit_bytes(), 9u);
  EXPECT_EQ(mu.runtime(), "jvm");
  EXPECT_EQ(mu.runtime_heap_cap_bytes(), 10u);

  MemoryPressure mp{3, 4000, 2000, 1.5, 0.5, 2};
  e.payload = mp;
  EventToProto(e, "", &out);
  EXPECT_EQ(out.memory_pressure().reclaim_stalls(), 3u);
  EXPECT_EQ(out.memory_pressure().reclaim_stall_ns(), 4000u);
  EXPECT_EQ(out.memory_pressure().max_reclaim_stall_ns(), 2000u);
  EXPECT_DOUBLE_EQ(out.memory_pressure().psi_some_avg10(), 1.5);
  EXPECT_DOUBLE_EQ(out.memory_pressure().psi_full_avg10(), 0.5);
  EXPECT_EQ(out.memory_pressure().limit_hits(), 2u);

  ProcessLifecycle pl;
  pl.phase = ProcessLifecycle::Phase::kExit;
  pl.pid = 5;
  pl.ppid = 1;
  pl.comm = "sh";
  pl.exit_code = 9;
  e.payload = pl;
  EventToProto(e, "", &out);
  EXPECT_EQ(out.process_lifecycle().phase(), v1::ProcessLifecycle::PHASE_EXIT);
  EXPECT_EQ(out.process_lifecycle().pid(), 5u);
  EXPECT_EQ(out.process_lifecycle().ppid(), 1u);
  EXPECT_EQ(out.process_lifecycle().comm(), "sh");
  EXPECT_EQ(out.process_lifecycle().exit_code(), 9);

  e.payload = EventsLost{"ringbuf", 12, 100, 111};
  EventToProto(e, "", &out);
  EXPECT_EQ(out.events_lost().source(), "ringbuf");
  EXPECT_EQ(out.events_lost().count(), 12u);
  EXPECT_EQ(out.events_lost().first_seq(), 100u);
  EXPECT_EQ(out.events_lost().last_seq(), 111u);
}

TEST(ConvertTest, ConversionClearsThePreviousMessage) {
  Event e;
  e.payload = OomKill{};
  v1::Event out;
  EventToProto(e, "n", &out);
  e.payload = MemoryUsage{};
  e.identity = nullptr;
  EventToProto(e, "n", &out);
  EXPECT_FALSE(out.has_oom_kill());
  EXPECT_FALSE(out.has_identity());
}

TEST(ConvertTest, RequestValidationNamesTheField) {
  v1::SubscribeRequest req;
  req.add_allow()->add_event_types(v1::EVENT_TYPE_OOM_KILL);
  req.add_deny()->add_event_types(static_cast<v1::EventType>(99));
  auto spec = FilterSpecFromProto(req);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("deny[0].event_types[0]"));

  v1::SubscribeRequest unspecified;
  unspecified.add_allow()->add_event_types(v1::EVENT_TYPE_UNSPECIFIED);
  EXPECT_FALSE(FilterSpecFromProto(unspecified).ok());

  v1::SubscribeRequest severity;
  severity.set_min_severity(static_cast<v1::Severity>(42));
  spec = FilterSpecFromProto(severity);
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("min_severity"));
}

TEST(ConvertTest, RequestFieldsReachTheSpec) {
  v1::SubscribeRequest req;
  auto* allow = req.add_allow();
  allow->add_namespaces("prod");
  allow->add_pod_name_patterns("web-*");
  allow->add_container_names("app");
  allow->set_label_selector("a=b");
  allow->add_event_types(v1::EVENT_TYPE_OOM_PREDICTION);
  req.set_min_severity(v1::SEVERITY_WARNING);
  auto spec = FilterSpecFromProto(req);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->allow.size(), 1u);
  EXPECT_EQ(spec->allow[0].namespaces, std::vector<std::string>{"prod"});
  EXPECT_EQ(spec->allow[0].pod_name_patterns, std::vector<std::string>{"web-*"});
  EXPECT_EQ(spec->allow[0].container_names, std::vector<std::string>{"app"});
  EXPECT_EQ(spec->allow[0].label_selector, "a=b");
  EXPECT_EQ(spec->allow[0].event_kinds, std::vector<EventKind>{EventKind::kOomPrediction});
  EXPECT_EQ(spec->min_severity, Severity::kWarning);
}

TEST(ConvertTest, ContainerSnapshotWithoutPredictionLeavesItUnset) {
  ContainerSnapshot s;
  s.identity = FullIdentity();
  s.usage.usage_bytes = 5;
  s.usage_time_unix_ns = 9;
  v1::ContainerState out;
  ContainerToProto(s, &out);
  EXPECT_FALSE(out.has_prediction());
  EXPECT_EQ(out.usage().usage_bytes(), 5u);
  OomPrediction p;
  p.time_to_oom_ms = 3000;
  s.prediction = p;
  s.prediction_time_unix_ns = 11;
  ContainerToProto(s, &out);
  ASSERT_TRUE(out.has_prediction());
  EXPECT_EQ(out.prediction().state(), v1::OomPrediction::STATE_AT_RISK);
  EXPECT_EQ(out.prediction_time_unix_ns(), 11);
}

}  // namespace
}  // namespace tapio::api
