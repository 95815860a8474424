// A real Prometheus server (Debian's /usr/bin/prometheus) for end-to-end tests: scrapes one
// target every second from a temporary directory of its own, answers PromQL over its HTTP API.
// Header-only, like http_get.h, for tests/metrics and tests/agent.
#ifndef TAPIO_TESTS_METRICS_PROMETHEUS_SERVER_H_
#define TAPIO_TESTS_METRICS_PROMETHEUS_SERVER_H_

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tests/metrics/http_get.h"

namespace tapio::testing {

// A TCP port on 127.0.0.1 that was free a moment ago, or -1.
inline int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
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

class PrometheusServer {
 public:
  static constexpr char kBinary[] = "/usr/bin/prometheus";

  // Starts Prometheus scraping 127.0.0.1:`target_port` (job "tapio"), every second, with the
  // rules of `rule_file` when one is given (its groups' own intervals apply). ok() says whether it
  // was started; whether it serves yet, Query tells.
  explicit PrometheusServer(int target_port, const std::string& rule_file = "") {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tapio-prom-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return;
    dir_ = tmpl;
    port_ = FreeLoopbackPort();
    if (port_ <= 0) return;
    {
      std::ofstream cfg(dir_ / "prometheus.yml");
      cfg << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
          << "scrape_configs:\n  - job_name: tapio\n    static_configs:\n"
          << "      - targets: ['127.0.0.1:" << target_port << "']\n";
      if (!rule_file.empty()) {
        cfg << "rule_files:\n  - '" << std::filesystem::absolute(rule_file).string() << "'\n";
      }
    }
    std::vector<std::string> argv = {kBinary, "--config.file=" + (dir_ / "prometheus.yml").string(),
                                     "--storage.tsdb.path=" + (dir_ / "data").string(),
                                     absl::StrCat("--web.listen-address=127.0.0.1:", port_),
                                     "--log.level=warn"};
    const std::string log = (dir_ / "prometheus.log").string();
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
  // SIGTERM, then SIGKILL after 5 s; reaped; the directory removed.
  ~PrometheusServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      bool reaped = false;
      for (int i = 0; i < 100 && !reaped; ++i) {
        reaped = waitpid(pid_, nullptr, WNOHANG) == pid_;
        if (!reaped) absl::SleepFor(absl::Milliseconds(50));
      }
      if (!reaped) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  bool ok() const { return pid_ > 0; }
  bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  int port() const { return port_; }
  std::string Log() const {
    std::ifstream in(dir_ / "prometheus.log");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  // Instant query: the response's "data" object, or an error naming the query.
  absl::StatusOr<nlohmann::json> Query(const std::string& promql) const {
    auto body = HttpGet(port_, "/api/v1/query?query=" + UrlEncode(promql));
    if (!body.ok()) return body.status();
    nlohmann::json j = nlohmann::json::parse(*body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return absl::InternalError("query response is not JSON: " + *body);
    if (j.value("status", "") != "success") {
      return absl::InvalidArgumentError(absl::StrCat(promql, ": ", j.dump()));
    }
    return j["data"];
  }

  // The value of the query's only sample (as Prometheus prints it); NotFound unless exactly one.
  absl::StatusOr<std::string> SingleValue(const std::string& promql) const {
    auto data = Query(promql);
    if (!data.ok()) return data.status();
    const nlohmann::json& result = (*data)["result"];
    if (!result.is_array() || result.size() != 1) {
      return absl::NotFoundError(absl::StrCat(promql, ": ", data->dump()));
    }
    return result[0]["value"][1].get<std::string>();
  }

  absl::StatusOr<double> Single(const std::string& promql) const {
    auto value = SingleValue(promql);
    if (!value.ok()) return value.status();
    double v = 0;
    if (!absl::SimpleAtod(*value, &v)) {
      return absl::InvalidArgumentError(absl::StrCat(promql, ": bad value ", *value));
    }
    return v;
  }

  // SingleValue, polled every 500 ms until it has one sample or `deadline` passes.
  absl::StatusOr<std::string> PollSingleValue(const std::string& promql,
                                              absl::Time deadline) const {
    absl::Status last = absl::DeadlineExceededError("no attempt");
    while (absl::Now() < deadline) {
      auto value = SingleValue(promql);
      if (value.ok()) return value;
      last = value.status();
      absl::SleepFor(absl::Milliseconds(500));
    }
    return absl::DeadlineExceededError(absl::StrCat("after deadline: ", last.ToString()));
  }

 private:
  std::filesystem::path dir_;
  int port_ = -1;
  pid_t pid_ = -1;
};

}  // namespace tapio::testing

#endif  // TAPIO_TESTS_METRICS_PROMETHEUS_SERVER_H_
