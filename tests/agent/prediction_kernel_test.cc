// The predictor inside the running agent, on real memory cgroups (root): a leak is predicted well
// before the kernel kills it; page cache filling a cgroup to its limit is not a risk.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/agent/agent_process.h"
#include "tests/metrics/http_get.h"
#include "tests/support/test_cgroup.h"

namespace tapio::testing {
namespace {

using nlohmann::json;

absl::Time EventTime(const json& e) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, e["time"].get<std::string>(), &t, &err)) {
    ADD_FAILURE() << "bad time " << e["time"] << ": " << err;
  }
  return t;
}

class PredictionKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF); CI runs as root";
  }
};

// The agent as most tests here run it: every prediction and usage event, one usage event a second.
const std::vector<std::string> kAgentFlags = {"--summary_interval_s=0", "--process_events=false",
                                              "--output_min_severity=info", "--usage_interval_s=1"};

// An at-risk prediction for cgroup `id` (by `model`, when given).
bool IsAtRisk(const json& e, uint64_t id, const std::string& model = "") {
  return e["type"] == "oom_prediction" && e["cgroup_id"] == id &&
         e["oom_prediction"]["state"] == "at_risk" &&
         (model.empty() || e["oom_prediction"]["model"] == model);
}

// The first such prediction among the agent's events so far; null when there is none.
json FirstAtRisk(const AgentProcess& agent, uint64_t id, const std::string& model = "") {
  for (const json& e : agent.Events()) {
    if (IsAtRisk(e, id, model)) return e;
  }
  return json();
}

TEST_F(PredictionKernelTest, LeakIsPredictedAtLeastTenSecondsBeforeTheKill) {
  auto agent = AgentProcess::Start(kAgentFlags);
  ASSERT_TRUE(agent.ok()) << agent.status();
  TestCgroupOptions o;
  o.limit_bytes = 128 << 20;
  auto cg = TestCgroup::Create(o);
  ASSERT_TRUE(cg.ok()) << cg.status();
  // 4 MiB/s into 128 MiB: the kernel kills it about 30 s in.
  auto child = (*cg)->Spawn({TestAllocPath(), "--mib=0", "--step-mib=1", "--rate=4"});
  ASSERT_TRUE(child.ok()) << child.status();
  const uint64_t id = (*cg)->cgroup2_id();
  auto kill = (*agent)->WaitFor(
      [&](const json& e) { return e["type"] == "oom_kill" && e["cgroup_id"] == id; },
      absl::Seconds(90));
  ASSERT_TRUE(kill.ok()) << (*agent)->Log();
  const json prediction = FirstAtRisk(**agent, id);
  ASSERT_FALSE(prediction.is_null()) << "no prediction before the kill\n" << (*agent)->Log();
  const absl::Duration lead = EventTime(*kill) - EventTime(prediction);
  EXPECT_GE(lead, absl::Seconds(10)) << prediction.dump();
  EXPECT_GT(prediction["oom_prediction"]["time_to_oom_ms"].get<int64_t>(), 0);
  EXPECT_EQ(prediction["oom_prediction"]["limit_bytes"].get<uint64_t>(), uint64_t{128} << 20);
  std::cout << "lead time " << absl::FormatDuration(lead) << ", predicted time to OOM "
            << prediction["oom_prediction"]["time_to_oom_ms"] << " ms, model "
            << prediction["oom_prediction"]["model"] << "\n";
}

TEST_F(PredictionKernelTest, PageCacheFillingTheLimitIsNotPredicted) {
  auto agent = AgentProcess::Start(kAgentFlags);
  ASSERT_TRUE(agent.ok()) << agent.status();
  TestCgroupOptions o;
  o.limit_bytes = 64 << 20;
  auto cg = TestCgroup::Create(o);
  ASSERT_TRUE(cg.ok()) << cg.status();
  // 192 MiB written through the page cache of a 64 MiB cgroup (on disk, not tmpfs): the kernel
  // reclaims cache, nothing is killed.
  const std::string file = absl::StrCat("/var/tmp/tapio-cache-test-", getpid());
  SpawnOptions so;
  so.capture_stdout = true;
  auto child = (*cg)->Spawn({TestAllocPath(), "--mib=192", "--step-mib=4", "--rate=16",
                             "--hold-s=5", absl::StrCat("--file=", file)},
                            so);
  ASSERT_TRUE(child.ok()) << child.status();
  auto status = child->Wait(absl::Seconds(60));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  const uint64_t id = (*cg)->cgroup2_id();
  // The cgroup was at its limit (the cache filled it) and sampled all along.
  bool saw_usage_near_limit = false;
  for (const json& e : (*agent)->Events()) {
    if (e["cgroup_id"] != id) continue;
    EXPECT_NE(e["type"], "oom_kill") << e.dump();
    EXPECT_FALSE(IsAtRisk(e, id)) << e.dump();
    if (e["type"] == "memory_usage" &&
        e["memory_usage"]["usage_bytes"].get<double>() > 0.8 * (64 << 20)) {
      saw_usage_near_limit = true;
    }
  }
  EXPECT_TRUE(saw_usage_near_limit) << "the workload never filled the cgroup: test is vacuous\n"
                                    << (*agent)->Log();
  auto kills = (*cg)->ReadOomKillCount();
  ASSERT_TRUE(kills.ok());
  EXPECT_EQ(*kills, 0u);
}

// A heap committed in steps, like G1 with -Xmx above its limit (the staircase model,
// docs/prediction.md "Heaps committed in steps"): processes that each take their memory at once
// and hold it, started one after another in a 128 MiB cgroup: 8 MiB, then 88 MiB, then +8 MiB
// twice 20 s apart, and 30 s later one that allocates until the kernel kills. Between the steps
// memory is flat, so no trend sees growth; the fill is the first step, and once a second one
// leaves less headroom than the fill took, the staircase warns, before the last step.
TEST_F(PredictionKernelTest, AHeapSteppingTowardsItsLimitIsPredictedBeforeTheLastStep) {
  auto agent = AgentProcess::Start(kAgentFlags);
  ASSERT_TRUE(agent.ok()) << agent.status();
  TestCgroupOptions o;
  o.limit_bytes = 128 << 20;
  auto cg = TestCgroup::Create(o);
  ASSERT_TRUE(cg.ok()) << cg.status();
  std::vector<ChildProcess> held;
  const auto take = [&](int mib) {
    SpawnOptions so;
    so.capture_stdout = true;
    auto child = (*cg)->Spawn({TestAllocPath(), absl::StrCat("--mib=", mib),
                               absl::StrCat("--step-mib=", mib), "--rate=0"},
                              so);
    ASSERT_TRUE(child.ok()) << child.status();
    ASSERT_TRUE(child->WaitForLine("ready", absl::Seconds(10)).ok());
    held.push_back(std::move(*child));
  };
  take(8);
  absl::SleepFor(absl::Seconds(10));
  take(88);
  absl::SleepFor(absl::Seconds(20));
  take(8);
  absl::SleepFor(absl::Seconds(20));
  take(8);
  absl::SleepFor(absl::Seconds(30));
  const uint64_t id = (*cg)->cgroup2_id();
  const absl::Time last_step = absl::Now();
  auto leak = (*cg)->Spawn({TestAllocPath(), "--mib=0", "--step-mib=4", "--rate=0"});
  ASSERT_TRUE(leak.ok()) << leak.status();
  auto kill = (*agent)->WaitFor(
      [&](const json& e) { return e["type"] == "oom_kill" && e["cgroup_id"] == id; },
      absl::Seconds(30));
  ASSERT_TRUE(kill.ok()) << (*agent)->Log();
  const json staircase = FirstAtRisk(**agent, id, "staircase");
  ASSERT_FALSE(staircase.is_null()) << "no staircase prediction before the kill\n"
                                    << (*agent)->Log();
  EXPECT_NE(staircase["oom_prediction"]["reason"].get<std::string>().find("stepped_growth"),
            std::string::npos)
      << staircase.dump();
  EXPECT_LT(EventTime(staircase), last_step) << staircase.dump();
  const absl::Duration lead = EventTime(*kill) - EventTime(staircase);
  EXPECT_GE(lead, absl::Seconds(10)) << staircase.dump();
  std::cout << "staircase lead " << absl::FormatDuration(lead) << ", predicted time to OOM "
            << staircase["oom_prediction"]["time_to_oom_ms"] << " ms\n";
}

// The jump trigger on the real kernel: three processes that each take 16 MiB (3% of the limit,
// which stays far from at risk) in one go, 3 s apart, into a cgroup the agent reads every 10 s (a
// model file slows the cadence, so that no regular reading is due when a trigger fires and each
// jump must bring one forward). The RSS moves are the task iterator's (the pipeline unit test times
// the trigger exactly).
void ExpectRssJumpsTriggerReadings(const std::vector<std::string>& extra_flags) {
  const std::string model = ::testing::TempDir() + "/tapio-slow-model-" + std::to_string(getpid());
  std::ofstream(model)
      << R"({"cadence_idle_ms": 10000, "cadence_default_ms": 10000, "jump_trigger_fraction": 0.02})";
  std::vector<std::string> flags = {"--summary_interval_s=0", "--usage_interval_s=1",
                                    "--max_sample_interval_ms=10000", "--model_file=" + model};
  flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
  auto agent = AgentProcess::Start(flags);
  ASSERT_TRUE(agent.ok()) << agent.status();
  TestCgroupOptions o;
  o.limit_bytes = 512 << 20;
  auto cg = TestCgroup::Create(o);
  ASSERT_TRUE(cg.ok()) << cg.status();
  std::vector<ChildProcess> children;
  auto spawn = [&](int mib) {
    auto child = (*cg)->Spawn({TestAllocPath(), absl::StrCat("--mib=", mib),
                               absl::StrCat("--step-mib=", mib), "--hold-s=-1"});
    ASSERT_TRUE(child.ok()) << child.status();
    children.push_back(std::move(*child));
  };
  spawn(8);  // tracked and read (its limit known) before the jumps
  const uint64_t id = (*cg)->cgroup2_id();
  ASSERT_TRUE((*agent)
                  ->WaitFor(
                      [&](const json& e) {
                        return e["type"] == "memory_usage" && e["cgroup_id"] == id &&
                               e["memory_usage"]["non_reclaimable_bytes"].get<double>() >= 7 << 20;
                      },
                      absl::Seconds(20))
                  .ok())
      << (*agent)->Log();
  auto triggered = [&]() -> absl::StatusOr<int64_t> {
    auto port = (*agent)->MetricsPort();
    if (!port.ok()) return port.status();
    auto body = HttpGet(*port, "/metrics");
    if (!body.ok()) return body.status();
    const std::string name = "\ntapio_agent_jump_triggered_readings_total ";
    const size_t at = body->find(name);
    if (at == std::string::npos) return absl::NotFoundError("no jump trigger counter");
    return std::strtoll(body->c_str() + at + name.size(), nullptr, 10);
  };
  auto before = triggered();
  ASSERT_TRUE(before.ok()) << before.status();
  for (int i = 0; i < 3; ++i) {
    spawn(16);
    absl::SleepFor(absl::Seconds(3));
  }
  auto after = triggered();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GE(*after - *before, 3) << (*agent)->Log();
  std::cout << "readings brought forward by 3 jumps: " << (*after - *before) << "\n";
  ASSERT_TRUE((*cg)->KillAll().ok());
  std::remove(model.c_str());
}

TEST_F(PredictionKernelTest, RssJumpsBetweenReadingsTriggerReadings) {
  ExpectRssJumpsTriggerReadings({});
}

// The same with the moves from the per-fault rss_stat hook alone: snapshots only every 10 min.
TEST_F(PredictionKernelTest, RssJumpsSeenByTheRssStatHookTriggerReadings) {
  ExpectRssJumpsTriggerReadings(
      {"--rss_stat_hook", "--rss_track_all", "--snapshot_interval_ms=600000"});
}

// Raised predictions for cgroup `id` among the agent's events so far.
int AtRiskPredictions(const AgentProcess& agent, uint64_t id) {
  int n = 0;
  for (const json& e : agent.Events()) n += IsAtRisk(e, id) ? 1 : 0;
  return n;
}

TEST_F(PredictionKernelTest, ACacheFillingToItsCapBelowTheLimitIsNotPredicted) {
  // memcached with -m 128 in 192 MiB, filled at 1.5 MiB/s: until it reaches its cap (about 85 s)
  // its curve is a leak's, and a second agent without the heap ceiling predicts it. The shipped
  // agent reads the cap from memcached's command line and stays quiet.
  ASSERT_EQ(access("/usr/bin/memcached", X_OK), 0) << "memcached missing: install-deps.sh test";
  const std::string model = ::testing::TempDir() + "/tapio-no-ceiling-" + std::to_string(getpid());
  std::ofstream(model) << R"({"heap_cap_margin_fraction": 0})";
  auto agent = AgentProcess::Start(kAgentFlags);
  ASSERT_TRUE(agent.ok()) << agent.status();
  std::vector<std::string> flags = kAgentFlags;
  flags.push_back("--model_file=" + model);
  auto no_ceiling = AgentProcess::Start(flags);
  ASSERT_TRUE(no_ceiling.ok()) << no_ceiling.status();
  const std::string dir = absl::StrCat("/tmp/tapio-mc-", getpid());
  ASSERT_EQ(std::system(absl::StrCat("mkdir -p ", dir, " && chmod 777 ", dir).c_str()), 0);
  const std::string sock = dir + "/mc.sock";
  TestCgroupOptions o;
  o.limit_bytes = 192 << 20;
  auto cg = TestCgroup::Create(o);
  ASSERT_TRUE(cg.ok()) << cg.status();
  const uint64_t id = (*cg)->cgroup2_id();
  auto cache =
      (*cg)->Spawn({"/usr/bin/memcached", "-u", "memcache", "-m", "128", "-s", sock, "-a", "0666"});
  ASSERT_TRUE(cache.ok()) << cache.status();
  for (int i = 0; i < 50 && access(sock.c_str(), F_OK) != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  // The load comes from outside the cgroup, as a client's would.
  const pid_t load = fork();
  ASSERT_GE(load, 0);
  if (load == 0) {
    execlp("python3", "python3", "sim/workloads/mc_load.py", sock.c_str(), "1536",
           static_cast<char*>(nullptr));
    _exit(127);
  }
  absl::SleepFor(absl::Seconds(130));
  kill(load, SIGKILL);
  waitpid(load, nullptr, 0);
  double peak = 0;
  uint64_t cap = 0;
  for (const json& e : (*agent)->Events()) {
    if (e["type"] != "memory_usage" || e["cgroup_id"] != id) continue;
    peak = std::max(peak, e["memory_usage"]["non_reclaimable_bytes"].get<double>());
    if (e["memory_usage"]["runtime"] == "memcached") {
      cap = e["memory_usage"]["runtime_heap_cap_bytes"].get<uint64_t>();
    }
  }
  std::system(absl::StrCat("rm -rf ", dir).c_str());
  std::remove(model.c_str());
  EXPECT_EQ(cap, uint64_t{128} << 20) << (*agent)->Log();
  ASSERT_GE(peak, 0.6 * (192 << 20)) << "the cache did not fill: the test proves nothing";
  ASSERT_FALSE(FirstAtRisk(**no_ceiling, id).is_null())
      << "the fill was not predicted without the ceiling: the test proves nothing\n"
      << (*no_ceiling)->Log();
  EXPECT_TRUE(FirstAtRisk(**agent, id).is_null()) << FirstAtRisk(**agent, id).dump();
}

TEST_F(PredictionKernelTest, ARestartedWorkloadIsNotPredictedAgainOnItsStartupFill) {
  // A workload that fills 96 of its 128 MiB at 4 MiB/s, holds, and exits without an OOM kill:
  // until it levels off it is the leak above, so its first run is predicted. The same workload
  // restarted in the same cgroup path (a service restarted in place; on Kubernetes the key is the
  // pod's workload and container) gets the first run's peak as its prior and is not. The agent
  // itself is restarted in between (a DaemonSet update): the prior comes from --prior_state_file.
  const std::string state = ::testing::TempDir() + "/tapio-priors-" + std::to_string(getpid());
  std::remove(state.c_str());
  const std::vector<std::string> flags = {
      "--summary_interval_s=0", "--process_events=false",       "--output_min_severity=info",
      "--usage_interval_s=1",   "--max_sample_interval_ms=500", "--prior_state_file=" + state};
  auto agent = AgentProcess::Start(flags);
  ASSERT_TRUE(agent.ok()) << agent.status();
  TestCgroupOptions o;
  o.limit_bytes = 128 << 20;
  o.exact_name = absl::StrCat("tapio-restart-", getpid());
  const std::vector<std::string> fill = {TestAllocPath(), "--mib=96", "--step-mib=1", "--rate=4",
                                         "--hold-s=10"};
  uint64_t first_id = 0;
  {
    auto cg = TestCgroup::Create(o);
    ASSERT_TRUE(cg.ok()) << cg.status();
    first_id = (*cg)->cgroup2_id();
    auto child = (*cg)->Spawn(fill);
    ASSERT_TRUE(child.ok()) << child.status();
    auto status = child->Wait(absl::Seconds(90));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
    ASSERT_GE(AtRiskPredictions(**agent, first_id), 1)
        << "the first run was not predicted: the test would prove nothing\n"
        << (*agent)->Log();
  }  // the cgroup is removed; the agent forgets it after a few failed readings
  absl::SleepFor(absl::Seconds(5));
  ASSERT_TRUE((*agent)->Stop().ok()) << (*agent)->Log();
  {  // the first run's peak is in the file, under its cgroup path (a plain host's RestartKey)
    std::ifstream in(state);
    const json stored = json::parse(in, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(stored.is_object() && stored.contains("priors")) << "no state file " << state;
    bool found = false;
    for (const json& p : stored["priors"]) {
      const std::string key = p.value("key", "");
      if (key.size() >= o.exact_name.size() &&
          key.compare(key.size() - o.exact_name.size(), o.exact_name.size(), o.exact_name) == 0) {
        found = true;
        EXPECT_GE(p.value("peak_bytes", uint64_t{0}), uint64_t{90} << 20) << p;
        EXPECT_EQ(p.value("limit_bytes", uint64_t{0}), uint64_t{128} << 20) << p;
      }
    }
    ASSERT_TRUE(found) << stored.dump();
  }
  agent = AgentProcess::Start(flags);
  ASSERT_TRUE(agent.ok()) << agent.status();
  ASSERT_NE((*agent)->Log().find(" restored from " + state), std::string::npos) << (*agent)->Log();
  auto cg = TestCgroup::Create(o);
  ASSERT_TRUE(cg.ok()) << cg.status();
  const uint64_t second_id = (*cg)->cgroup2_id();
  ASSERT_NE(second_id, first_id);
  auto child = (*cg)->Spawn(fill);
  ASSERT_TRUE(child.ok()) << child.status();
  auto status = child->Wait(absl::Seconds(90));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_EQ(AtRiskPredictions(**agent, second_id), 0) << (*agent)->Log();
  bool sampled = false;  // the second run was watched, near the first run's peak
  for (const json& e : (*agent)->Events()) {
    if (e["type"] == "memory_usage" && e["cgroup_id"] == second_id &&
        e["memory_usage"]["non_reclaimable_bytes"].get<double>() > 0.7 * (128 << 20)) {
      sampled = true;
    }
  }
  EXPECT_TRUE(sampled) << "the second run was not sampled near its peak\n" << (*agent)->Log();
  std::remove(state.c_str());
}

}  // namespace
}  // namespace tapio::testing
