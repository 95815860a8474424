// The predictor inside the running agent, on real memory cgroups (root): a leak is predicted well
// before the kernel kills it; page cache filling a cgroup to its limit is not a risk.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/agent/agent_process.h"
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

TEST_F(PredictionKernelTest, LeakIsPredictedAtLeastTenSecondsBeforeTheKill) {
  auto agent = AgentProcess::Start({"--summary_interval_s=0", "--process_events=false",
                                    "--output_min_severity=info", "--usage_interval_s=1"});
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
  json prediction;
  for (const json& e : (*agent)->Events()) {
    if (e["type"] == "oom_prediction" && e["cgroup_id"] == id &&
        e["oom_prediction"]["state"] == "at_risk") {
      prediction = e;
      break;
    }
  }
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
  auto agent = AgentProcess::Start({"--summary_interval_s=0", "--process_events=false",
                                    "--output_min_severity=info", "--usage_interval_s=1"});
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
    EXPECT_FALSE(e["type"] == "oom_prediction" && e["oom_prediction"]["state"] == "at_risk")
        << e.dump();
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

}  // namespace
}  // namespace tapio::testing
