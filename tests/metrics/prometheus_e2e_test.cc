// End to end against real Prometheus tools (Debian package `prometheus`): a real server scrapes a
// test exporter fed synthetic events, and PromQL over the HTTP API returns the OOM kill count and
// the predicted time to OOM of a test container; the dashboard's queries parse and run; and
// `promtool check metrics` finds nothing to complain about in a real exposition.
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "agent/metrics/metrics_exporter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/metrics/http_get.h"
#include "tests/metrics/prometheus_server.h"

namespace tapio::metrics {
namespace {

namespace fs = std::filesystem;
using tapio::testing::HttpGet;
using tapio::testing::PrometheusServer;
using tapio::testing::UrlEncode;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tapio-prom-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (p != nullptr) path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::shared_ptr<const WorkloadIdentity> Leaky() {
  auto id = std::make_shared<WorkloadIdentity>();
  id->cgroup_id = 4242;
  id->cgroup_path = "/kubepods/burstable/pod1234/leaky";
  id->container_id = "0123456789ab";
  id->container_name = "leaker";
  id->pod_name = "leaky";
  id->pod_namespace = "e2e";
  return id;
}

std::unique_ptr<MetricsExporter> FedExporter() {
  MetricsExporter::Options o;
  o.listen_address = "127.0.0.1:0";
  o.metrics.health = [] {
    AgentHealth h;
    h.sources.push_back({"ringbuf", 100, 0});
    h.bpf_programs.push_back({"handle_mark_victim", 2, 30000});
    h.subscribers = 1;
    h.version = "e2e";
    return h;
  };
  auto exporter = MetricsExporter::Create(std::move(o));
  EXPECT_TRUE(exporter.ok()) << exporter.status();
  if (!exporter.ok()) return nullptr;
  Event usage;
  usage.identity = Leaky();
  MemoryUsage u;
  u.usage_bytes = 60 << 20;
  u.working_set_bytes = 58 << 20;
  u.anon_bytes = 57 << 20;
  u.non_reclaimable_bytes = 57 << 20;
  u.limit_bytes = 64 << 20;
  usage.payload = u;
  (*exporter)->Observe(usage);
  Event prediction;
  prediction.identity = Leaky();
  OomPrediction p;
  p.time_to_oom_ms = 42000;
  p.confidence = 0.75;
  prediction.payload = p;
  (*exporter)->Observe(prediction);
  Event kill;
  kill.identity = Leaky();
  kill.payload = OomKill{};
  (*exporter)->Observe(kill);
  (*exporter)->Observe(kill);
  return std::move(*exporter);
}

TEST(PrometheusE2eTest, RealPrometheusScrapesOomKillsAndPredictedTimeToOom) {
  ASSERT_EQ(access("/usr/bin/prometheus", X_OK), 0)
      << "install Debian's prometheus (scripts/install-deps.sh test)";
  auto exporter = FedExporter();
  ASSERT_NE(exporter, nullptr);
  PrometheusServer prometheus(exporter->port());
  ASSERT_TRUE(prometheus.ok()) << "cannot start " << PrometheusServer::kBinary;
  // Prometheus answers its first sample after about 6 s here; allow 30 s.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  auto kills = prometheus.PollSingleValue(
      "tapio_container_oom_kills_total{namespace=\"e2e\",pod=\"leaky\",container=\"leaker\","
      "job=\"tapio\"}",
      deadline);
  ASSERT_TRUE(kills.ok()) << kills.status() << "\nprometheus running: " << prometheus.running();
  EXPECT_EQ(*kills, "2");
  auto predicted =
      prometheus.PollSingleValue("tapio_container_oom_predicted_seconds{pod=\"leaky\"}", deadline);
  ASSERT_TRUE(predicted.ok()) << predicted.status();
  EXPECT_EQ(*predicted, "42");
  auto limit = prometheus.PollSingleValue("tapio_container_spec_memory_limit_bytes{pod=\"leaky\"}",
                                          deadline);
  ASSERT_TRUE(limit.ok()) << limit.status();
  EXPECT_EQ(*limit, "67108864");

  // Every dashboard query parses and runs (Grafana variables replaced by what Grafana sends).
  std::ifstream in("deploy/helm/tapio/files/tapio-dashboard.json");
  ASSERT_TRUE(in.good()) << "run from the repository root";
  nlohmann::json dashboard = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(dashboard.is_discarded()) << "dashboard is not valid JSON";
  int checked = 0;
  bool saw_oom_panel = false;
  for (const auto& panel : dashboard["panels"]) {
    for (const auto& target : panel["targets"]) {
      std::string expr = target["expr"].get<std::string>();
      expr = absl::StrReplaceAll(
          expr,
          {{"$namespace", ".*"}, {"$pod", ".*"}, {"$__rate_interval", "1m"}, {"$__range", "1h"}});
      auto result = prometheus.Query(expr);
      EXPECT_TRUE(result.ok()) << panel["title"] << ": " << result.status();
      if (result.ok() && expr.find("tapio_container_oom_predicted_seconds") != std::string::npos) {
        saw_oom_panel = true;
        EXPECT_EQ((*result)["result"].size(), 1u) << expr;
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 8);
  EXPECT_TRUE(saw_oom_panel);
}

TEST(PrometheusE2eTest, PromtoolFindsRealExpositionClean) {
  ASSERT_EQ(access("/usr/bin/promtool", X_OK), 0)
      << "install Debian's prometheus (scripts/install-deps.sh test)";
  auto exporter = FedExporter();
  ASSERT_NE(exporter, nullptr);
  auto body = HttpGet(exporter->port(), "/metrics");  // the full exposition, exposer_* included
  ASSERT_TRUE(body.ok()) << body.status();
  ASSERT_THAT(*body, ::testing::HasSubstr("tapio_agent_bpf_program_runs_total"));
  TempDir dir;
  const fs::path file = dir.path() / "exposition.txt";
  std::ofstream(file) << *body;
  FILE* p = popen(("/usr/bin/promtool check metrics < " + file.string() + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) output.append(buf, n);
  const int status = pclose(p);
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_EQ(output, "") << output;
}

}  // namespace
}  // namespace tapio::metrics
