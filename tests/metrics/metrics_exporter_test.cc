#include "agent/metrics/metrics_exporter.h"

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/metrics/http_get.h"

namespace tapio::metrics {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<const WorkloadIdentity> Identity(uint64_t cgroup_id) {
  auto id = std::make_shared<WorkloadIdentity>();
  id->cgroup_id = cgroup_id;
  id->cgroup_path = "/kubepods/pod-x/c";
  id->pod_name = "web-0";
  id->pod_namespace = "default";
  id->container_name = "nginx";
  return id;
}

TEST(MetricsExporterTest, ServesObservedSeriesOverHttp) {
  MetricsExporter::Options o;
  o.listen_address = "127.0.0.1:0";
  auto exporter = MetricsExporter::Create(std::move(o));
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  ASSERT_GT((*exporter)->port(), 0);
  Event e;
  e.identity = Identity(3);
  e.payload = OomKill{};
  (*exporter)->Observe(e);
  auto body = tapio::testing::HttpGet((*exporter)->port(), "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_THAT(*body, HasSubstr("tapio_container_oom_kills_total{namespace=\"default\","
                               "pod=\"web-0\",container=\"nginx\"} 1"));
}

TEST(MetricsExporterTest, FeedsItselfFromTheEventBus) {
  EventBus bus(128);
  MetricsExporter::Options o;
  o.listen_address = "127.0.0.1:0";
  o.bus = &bus;
  auto exporter = MetricsExporter::Create(std::move(o));
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  EXPECT_EQ(bus.subscriber_count(), 1u);
  Event e;
  e.identity = Identity(3);
  e.payload = OomKill{};
  bus.Publish(e);
  bus.Publish(e);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::string text;
  while (absl::Now() < deadline) {
    text = (*exporter)->RenderText();
    if (text.find("container=\"nginx\"} 2") != std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_THAT(text, HasSubstr("tapio_container_oom_kills_total{namespace=\"default\","
                              "pod=\"web-0\",container=\"nginx\"} 2"));
  exporter->reset();  // stops the feed thread and unsubscribes
  EXPECT_EQ(bus.subscriber_count(), 0u);
}

TEST(MetricsExporterTest, RejectsAddressWithoutPort) {
  MetricsExporter::Options o;
  o.listen_address = "localhost";
  auto exporter = MetricsExporter::Create(std::move(o));
  ASSERT_FALSE(exporter.ok());
  EXPECT_EQ(exporter.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(exporter.status().message()), HasSubstr("metrics_address"));
}

TEST(MetricsExporterTest, PortInUseIsUnavailableNotACrash) {
  MetricsExporter::Options a;
  a.listen_address = "127.0.0.1:0";
  auto first = MetricsExporter::Create(std::move(a));
  ASSERT_TRUE(first.ok()) << first.status();
  MetricsExporter::Options b;
  b.listen_address = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = MetricsExporter::Create(std::move(b));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tapio::metrics
