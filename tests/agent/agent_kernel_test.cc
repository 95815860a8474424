// The agent binary on the real kernel (root): RSS of a process in a memory cgroup, OOM kills with
// the victim's identity, and loss accounting. Each test makes its own cgroups (TestCgroup) and
// removes them, even on failure.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/agent/agent_process.h"
#include "tests/support/test_cgroup.h"

namespace tapio::testing {
namespace {

using nlohmann::json;

bool IsType(const json& e, const char* type) { return e.value("type", "") == type; }

class AgentKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF); CI runs as root";
  }
};

TEST_F(AgentKernelTest, ReportsRssOfAProcessInItsCgroupWithinFivePercent) {
  auto agent = AgentProcess::Start({"--snapshot_interval_ms=200", "--summary_interval_s=0"});
  ASSERT_TRUE(agent.ok()) << agent.status();
  auto cg = TestCgroup::Create();
  ASSERT_TRUE(cg.ok()) << cg.status();
  SpawnOptions so;
  so.capture_stdout = true;
  auto child = (*cg)->Spawn({TestAllocPath(), "--mib=64", "--hold-s=-1"}, so);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(child->WaitForLine("ready", absl::Seconds(20)).ok());
  auto vmrss = ReadVmRssBytes(child->pid);
  ASSERT_TRUE(vmrss.ok()) << vmrss.status();
  const int pid = child->pid;
  // The last report at or above the held size: snapshots report moves past 1 MiB.
  auto e = (*agent)->WaitFor(
      [&](const json& e) {
        return IsType(e, "rss_change") && e["rss_change"]["pid"] == pid &&
               e["rss_change"]["rss_bytes"].get<double>() >= 0.95 * *vmrss;
      },
      absl::Seconds(15));
  ASSERT_TRUE(e.ok()) << "no rss_change for pid " << pid << "\n" << (*agent)->Log();
  const double rss = (*e)["rss_change"]["rss_bytes"].get<double>();
  EXPECT_NEAR(rss, static_cast<double>(*vmrss), 0.05 * *vmrss);
  EXPECT_EQ((*e)["cgroup_id"].get<uint64_t>(), (*cg)->cgroup2_id());
  EXPECT_EQ((*e)["cgroup_path"].get<std::string>(), (*cg)->relative_path());
  EXPECT_EQ((*e)["rss_change"]["comm"].get<std::string>(), "tapio-test-allo");
  // The cgroup is sampled too: a memory_usage event for it, usage at least the held anon memory.
  auto usage = (*agent)->WaitFor(
      [&](const json& e) {
        return IsType(e, "memory_usage") && e["cgroup_id"] == (*cg)->cgroup2_id() &&
               e["memory_usage"]["anon_bytes"].get<double>() >= 60.0 * (1 << 20);
      },
      absl::Seconds(20));
  EXPECT_TRUE(usage.ok()) << (*agent)->Log();
  auto status = (*agent)->Stop();
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_NE((*agent)->Log().find("final: events"), std::string::npos) << (*agent)->Log();
}

TEST_F(AgentKernelTest, AJvmsHeapCapComesWithItsCgroupsUsage) {
  // A real JVM (scripts/install-deps.sh installs it for the tests) whose -Xmx is twice its
  // cgroup's limit: the heap it is allowed can only end in the OOM killer.
  ASSERT_EQ(access("/usr/bin/java", X_OK), 0) << "java missing: scripts/install-deps.sh test";
  const std::string source = ::testing::TempDir() + "/TapioSleep.java";
  {
    FILE* f = fopen(source.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs(
        "public class TapioSleep { public static void main(String[] a) throws Exception {"
        " System.out.println(\"ready\"); System.out.flush(); Thread.sleep(120000); } }\n",
        f);
    fclose(f);
  }
  auto agent = AgentProcess::Start({"--usage_interval_s=1", "--summary_interval_s=0",
                                    "--runtime_scan_interval_s=2", "--process_events=false"});
  ASSERT_TRUE(agent.ok()) << agent.status();
  TestCgroupOptions o;
  o.limit_bytes = 256 << 20;
  auto cg = TestCgroup::Create(o);
  ASSERT_TRUE(cg.ok()) << cg.status();
  SpawnOptions so;
  so.capture_stdout = true;
  // Source-file mode: java compiles it in memory, no build step.
  auto child = (*cg)->Spawn({"/usr/bin/java", "-Xmx512m", "-XX:+UseSerialGC", source}, so);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(child->WaitForLine("ready", absl::Seconds(60)).ok());
  auto e = (*agent)->WaitFor(
      [&](const json& e) {
        return IsType(e, "memory_usage") && e["cgroup_id"] == (*cg)->cgroup2_id() &&
               e["memory_usage"]["runtime"] == "jvm";
      },
      absl::Seconds(20));
  ASSERT_TRUE(e.ok()) << "no memory_usage naming the JVM\n" << (*agent)->Log();
  EXPECT_EQ((*e)["memory_usage"]["runtime_heap_cap_bytes"].get<uint64_t>(), 512u << 20);
  EXPECT_EQ((*e)["memory_usage"]["limit_bytes"].get<uint64_t>(), 256u << 20);
  std::remove(source.c_str());
}

TEST_F(AgentKernelTest, EveryOomKillIsReportedOnceWithTheVictimsIdentity) {
  auto agent = AgentProcess::Start({"--summary_interval_s=0", "--process_events=false"});
  ASSERT_TRUE(agent.ok()) << agent.status();
  constexpr int kRuns = 20;
  std::map<int, int> victims;  // pid -> run
  for (int run = 0; run < kRuns; ++run) {
    TestCgroupOptions o;
    o.limit_bytes = 16 << 20;
    auto cg = TestCgroup::Create(o);
    ASSERT_TRUE(cg.ok()) << cg.status();
    auto child = (*cg)->Spawn({TestAllocPath(), "--mib=0", "--step-mib=1"});
    ASSERT_TRUE(child.ok()) << child.status();
    const int pid = child->pid;
    auto wstatus = child->Wait(absl::Seconds(30));
    ASSERT_TRUE(wstatus.ok()) << wstatus.status();
    ASSERT_TRUE(WIFSIGNALED(*wstatus) && WTERMSIG(*wstatus) == SIGKILL) << "run " << run;
    auto kills = (*cg)->ReadOomKillCount();
    ASSERT_TRUE(kills.ok());
    ASSERT_EQ(*kills, 1u) << "the kernel's own oom_kill counter, run " << run;
    auto e = (*agent)->WaitFor(
        [&](const json& e) { return IsType(e, "oom_kill") && e["oom_kill"]["victim_pid"] == pid; },
        absl::Seconds(10));
    if (!e.ok()) {
      auto stopped = (*agent)->Stop();  // for the final counts in the log
      FAIL() << "run " << run << ": no oom_kill for pid " << pid << "; agent exit status "
             << (stopped.ok() ? std::to_string(*stopped) : stopped.status().ToString()) << "\n"
             << (*agent)->Log();
    }
    victims[pid] = run;
    EXPECT_EQ((*e)["cgroup_id"].get<uint64_t>(), (*cg)->cgroup2_id()) << "run " << run;
    EXPECT_EQ((*e)["cgroup_path"].get<std::string>(), (*cg)->relative_path());
    EXPECT_EQ((*e)["oom_kill"]["victim_comm"].get<std::string>(), "tapio-test-allo");
    // From the kernel log, or, when the kernel ratelimited its OOM report, from the counters.
    EXPECT_EQ((*e)["oom_kill"]["constraint"].get<std::string>(), "memcg") << e->dump();
    EXPECT_EQ((*e)["oom_kill"]["oom_memcg_path"].get<std::string>(), (*cg)->relative_path());
    EXPECT_EQ((*e)["severity"].get<std::string>(), "critical");
    EXPECT_GT((*e)["oom_kill"]["anon_rss_bytes"].get<uint64_t>(), uint64_t{8} << 20);
  }
  // Let late duplicates, if any, arrive before counting.
  absl::SleepFor(absl::Milliseconds(500));
  std::map<int, int> reported;
  for (const json& e : (*agent)->Events()) {
    if (IsType(e, "oom_kill")) ++reported[e["oom_kill"]["victim_pid"].get<int>()];
  }
  EXPECT_EQ(victims.size(), static_cast<size_t>(kRuns));
  for (const auto& [pid, run] : victims) EXPECT_EQ(reported[pid], 1) << "pid " << pid;
}

TEST_F(AgentKernelTest, WithoutTheKernelLogTheConstraintComesFromCountersReadAtTheKill) {
  // No /dev/kmsg (as in the chart's default) and the victim's cgroup removed right after the kill,
  // as a runtime does with an exited container: the constraint is still memcg, from the memcg
  // counters read when the kill record arrived, never "global" for want of a cgroup.
  auto agent = AgentProcess::Start({"--kmsg=", "--summary_interval_s=0", "--process_events=false"});
  ASSERT_TRUE(agent.ok()) << agent.status();
  TestCgroupOptions o;
  o.limit_bytes = 16 << 20;
  auto cg = TestCgroup::Create(o);
  ASSERT_TRUE(cg.ok()) << cg.status();
  const std::string path = (*cg)->relative_path();
  auto child = (*cg)->Spawn({TestAllocPath(), "--mib=0"});
  ASSERT_TRUE(child.ok()) << child.status();
  const int pid = child->pid;
  ASSERT_TRUE(child->Wait(absl::Seconds(30)).ok());
  cg->reset();  // removes the cgroup now, well within the agent's 250 ms context wait
  auto e = (*agent)->WaitFor(
      [&](const json& e) { return IsType(e, "oom_kill") && e["oom_kill"]["victim_pid"] == pid; },
      absl::Seconds(10));
  ASSERT_TRUE(e.ok()) << (*agent)->Log();
  EXPECT_EQ((*e)["oom_kill"]["constraint"], "memcg") << e->dump();
  EXPECT_EQ((*e)["oom_kill"]["constraint_source"], "memcg_counters") << e->dump();
  EXPECT_EQ((*e)["oom_kill"]["oom_memcg_path"], path) << e->dump();
}

TEST_F(AgentKernelTest, KernelLossIsCountedAndReportedInBand) {
  // A one-page ring buffer and a stopped consumer: the burst cannot fit, reserves fail.
  auto agent = AgentProcess::Start({"--ringbuf_kib=4", "--summary_interval_s=0"});
  ASSERT_TRUE(agent.ok()) << agent.status();
  ASSERT_EQ(kill((*agent)->pid(), SIGSTOP), 0);
  for (int i = 0; i < 300; ++i) {
    const pid_t p = fork();
    if (p == 0) {
      execl("/bin/true", "true", nullptr);
      _exit(127);
    }
    waitpid(p, nullptr, 0);
  }
  ASSERT_EQ(kill((*agent)->pid(), SIGCONT), 0);
  auto lost = (*agent)->WaitFor(
      [](const json& e) {
        return IsType(e, "events_lost") && e["events_lost"]["source"] == "ringbuf" &&
               e["events_lost"]["count"].get<uint64_t>() > 0;
      },
      absl::Seconds(10));
  EXPECT_TRUE(lost.ok()) << (*agent)->Log();
  auto status = (*agent)->Stop();
  ASSERT_TRUE(status.ok());
  const std::string log = (*agent)->Log();
  const size_t at = log.find("lost: ringbuf=");
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_NE(log.substr(at, 16), "lost: ringbuf=0 ") << log;
}

TEST_F(AgentKernelTest, HealthAddressServesGrpcHealthForProbes) {
  auto agent = AgentProcess::Start({"--health_address=127.0.0.1:0", "--summary_interval_s=0"});
  ASSERT_TRUE(agent.ok()) << agent.status();
  const std::string log = (*agent)->Log();
  const size_t at = log.find("gRPC health on port ");
  ASSERT_NE(at, std::string::npos) << log;
  const int port = std::atoi(log.c_str() + at + 20);
  ASSERT_GT(port, 0) << log;
  const std::string cmd =
      absl::StrCat("/usr/bin/python3 ", TAPIO_SOURCE_DIR,
                   "/tests/api/client.py health --insecure --address 127.0.0.1:", port, " 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096] = {};
  const size_t n = fread(buf, 1, sizeof(buf) - 1, p);
  const int rc = pclose(p);
  EXPECT_EQ(rc, 0) << std::string(buf, n);
  EXPECT_NE(std::string(buf, n).find("SERVING"), std::string::npos) << std::string(buf, n);
  // A second agent on the same health port is refused (no silent SO_REUSEPORT sharing) with the
  // flag named, and the first one goes on serving.
  auto second = AgentProcess::Start(
      {absl::StrCat("--health_address=127.0.0.1:", port), "--summary_interval_s=0"});
  ASSERT_FALSE(second.ok()) << "a second agent bound the taken health port";
  EXPECT_NE(second.status().message().find("--health_address: cannot listen"),
            absl::string_view::npos)
      << second.status();
  // The same for its metrics port.
  absl::StatusOr<int> metrics_port = (*agent)->MetricsPort();
  ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
  auto third = AgentProcess::Start(
      {absl::StrCat("--metrics_address=127.0.0.1:", *metrics_port), "--summary_interval_s=0"});
  ASSERT_FALSE(third.ok()) << "a second agent bound the taken metrics port";
  EXPECT_NE(third.status().message().find("--metrics_address"), absl::string_view::npos)
      << third.status();
  EXPECT_TRUE((*agent)->Running());
  EXPECT_TRUE((*agent)->Stop().ok());
}

// A prior state file the agent cannot trust costs only its priors: the agent starts, says why,
// and counts it (tapio_agent_prior_store_errors_total).
TEST(AgentFlagsTest, AMalformedPriorStateFileIsIgnoredWithAWarning) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF); CI runs as root";
  const std::string state = ::testing::TempDir() + "/tapio-bad-priors.json";
  {
    FILE* f = fopen(state.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("{\"tapio_priors\": 1, \"priors\": [{\"key\": \"a\"}]}", f);
    fclose(f);
  }
  auto agent = AgentProcess::Start(
      {"--prior_state_file=" + state, "--summary_interval_s=0", "--metrics_address=127.0.0.1:0"});
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_NE((*agent)->Log().find("restart priors: ignoring " + state), std::string::npos)
      << (*agent)->Log();
  EXPECT_NE((*agent)->Log().find("priors[0]: field 'peak_bytes'"), std::string::npos)
      << (*agent)->Log();
  EXPECT_TRUE((*agent)->Running());
  EXPECT_TRUE((*agent)->Stop().ok());
  std::remove(state.c_str());
}

TEST(AgentFlagsTest, BadFlagsAreRefusedWithTheFlagNamed) {
  const std::string bad_model = ::testing::TempDir() + "/tapio-bad-model.json";
  {
    FILE* f = fopen(bad_model.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("{\"no_such_key\": 1}", f);
    fclose(f);
  }
  const std::string model_flag = "--model_file=" + bad_model;
  for (const char* flag :
       {"--ringbuf_kib=3", "--health_address=unix:///x", "--attribution=magic",
        "--metrics_labels=bogus", "--output=xml", "--model_file=/nonexistent", model_flag.c_str(),
        "--record_traces_dir=/nonexistent", "--replay_min_severity=loud",
        "--prior_state_file=/nonexistent/priors.json", "--runtime_scan_interval_s=-1"}) {
    auto agent = AgentProcess::Start({flag}, absl::Seconds(10));
    ASSERT_FALSE(agent.ok()) << flag;
    const std::string name = std::string(flag).substr(0, std::string(flag).find('='));
    EXPECT_NE(agent.status().message().find(name), absl::string_view::npos)
        << flag << ": " << agent.status();
  }
}

}  // namespace
}  // namespace tapio::testing
