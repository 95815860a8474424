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

namespace tapio::metrics {
namespace {

namespace fs = std::filesystem;
using tapio::testing::HttpGet;
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

// A child process, SIGTERMed (then SIGKILLed) and reaped on destruction.
class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> argv, const fs::path& log) {
    pid_ = fork();
    if (pid_ == 0) {
      FILE* out = freopen(log.c_str(), "w", stdout);
      (void)out;
      dup2(STDOUT_FILENO, STDERR_FILENO);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~ChildProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      absl::SleepFor(absl::Milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
};

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

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

// Runs an instant query; returns the parsed "data" object, or an error naming what went wrong.
absl::StatusOr<nlohmann::json> Query(int port, const std::string& promql) {
  auto body = HttpGet(port, "/api/v1/query?query=" + UrlEncode(promql));
  if (!body.ok()) return body.status();
  nlohmann::json j = nlohmann::json::parse(*body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InternalError("query response is not JSON: " + *body);
  if (j.value("status", "") != "success") {
    return absl::InvalidArgumentError(absl::StrCat(promql, ": ", j.dump()));
  }
  return j["data"];
}

// Polls until the query returns a vector with one sample, up to `deadline`; returns its value.
absl::StatusOr<std::string> PollSingleValue(int port, const std::string& promql,
                                            absl::Time deadline) {
  absl::Status last = absl::DeadlineExceededError("no attempt");
  while (absl::Now() < deadline) {
    auto data = Query(port, promql);
    if (data.ok() && (*data)["result"].is_array() && (*data)["result"].size() == 1) {
      return (*data)["result"][0]["value"][1].get<std::string>();
    }
    last =
        data.ok() ? absl::NotFoundError(absl::StrCat(promql, ": ", data->dump())) : data.status();
    absl::SleepFor(absl::Milliseconds(500));
  }
  return absl::DeadlineExceededError(absl::StrCat("after deadline: ", last.ToString()));
}

TEST(PrometheusE2eTest, RealPrometheusScrapesOomKillsAndPredictedTimeToOom) {
  ASSERT_EQ(access("/usr/bin/prometheus", X_OK), 0)
      << "install Debian's prometheus (scripts/install-deps.sh test)";
  auto exporter = FedExporter();
  ASSERT_NE(exporter, nullptr);
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const int prom_port = FreeLoopbackPort();
  ASSERT_GT(prom_port, 0);
  {
    std::ofstream cfg(dir.path() / "prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n  - job_name: tapio\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << exporter->port() << "']\n";
  }
  ChildProcess prometheus(
      {"/usr/bin/prometheus", "--config.file=" + (dir.path() / "prometheus.yml").string(),
       "--storage.tsdb.path=" + (dir.path() / "data").string(),
       absl::StrCat("--web.listen-address=127.0.0.1:", prom_port), "--log.level=warn"},
      dir.path() / "prometheus.log");
  // Prometheus answers its first sample after about 6 s here; allow 30 s.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  auto kills = PollSingleValue(prom_port,
                               "tapio_container_oom_kills_total{namespace=\"e2e\",pod=\"leaky\","
                               "container=\"leaker\",job=\"tapio\"}",
                               deadline);
  ASSERT_TRUE(kills.ok()) << kills.status() << "\nprometheus running: " << prometheus.running();
  EXPECT_EQ(*kills, "2");
  auto predicted =
      PollSingleValue(prom_port, "tapio_container_oom_predicted_seconds{pod=\"leaky\"}", deadline);
  ASSERT_TRUE(predicted.ok()) << predicted.status();
  EXPECT_EQ(*predicted, "42");
  auto limit = PollSingleValue(prom_port, "tapio_container_spec_memory_limit_bytes{pod=\"leaky\"}",
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
      auto result = Query(prom_port, expr);
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
