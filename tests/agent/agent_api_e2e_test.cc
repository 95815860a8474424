// The real tapio-agent binary on the real kernel, driven through its gRPC API by real clients:
// the C++ stub (tapio_proto), Debian's python3-grpcio (tests/api/client.py, a subprocess that
// compiles the published .proto files itself) and tapioctl. LABEL e2e: needs root (BPF), protoc
// and python3-grpcio. Every cgroup, process and socket a test makes is removed, even on failure.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tapio/v1/service.grpc.pb.h"
#include "tests/agent/agent_process.h"
#include "tests/api/api_test_util.h"
#include "tests/support/test_cgroup.h"

namespace tapio::testing {
namespace {

using nlohmann::json;

// A temp dir removed with everything in it.
using ::tapio::api::testing::ReadWholeFile;
using ::tapio::api::testing::Subprocess;
using ::tapio::api::testing::TempDir;

// Runs argv to completion (deadline `timeout`), returns {exit code, stdout, stderr}.
struct RunResult {
  int code = -1;
  std::string out, err;
};
RunResult RunCommand(const std::vector<std::string>& argv, const std::string& dir,
                     const std::string& tag, absl::Duration timeout = absl::Seconds(30)) {
  Subprocess p(argv, dir, tag);
  RunResult r;
  r.code = p.Wait(timeout);
  r.out = p.out();
  r.err = p.err();
  return r;
}

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    auto j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

// proto3 JSON writes 64-bit integers as strings; accept both.
uint64_t JsonU64(const json& j) {
  if (j.is_number_unsigned() || j.is_number_integer()) return j.get<uint64_t>();
  uint64_t v = 0;
  if (j.is_string() && absl::SimpleAtoi(j.get<std::string>(), &v)) return v;
  return 0;
}

std::string SourceDir() { return TAPIO_SOURCE_DIR; }

class AgentApiE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF); CI runs as root";
    ASSERT_FALSE(tmp_.path().empty());
    auto agent = AgentProcess::Start({"--summary_interval_s=0", "--process_events=false",
                                      "--attribution=none", "--usage_interval_s=1",
                                      "--max_sample_interval_ms=1000", "--node_name=e2e-node"});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    channel_ = grpc::CreateChannel(agent_->grpc_address(), grpc::InsecureChannelCredentials());
    stub_ = v1::TapioService::NewStub(channel_);
  }
  void TearDown() override {
    if (agent_ == nullptr) return;
    const std::string socket = agent_->grpc_socket_path();
    auto status = agent_->Stop();
    EXPECT_TRUE(status.ok()) << status.status();
    if (status.ok()) {
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status << agent_->Log();
    }
    struct stat st;
    if (!socket.empty() && ::stat(socket.c_str(), &st) == 0) {
      ADD_FAILURE() << "the agent left its socket behind: " << socket;
      ::unlink(socket.c_str());
    }
  }

  absl::StatusOr<v1::AgentInfo> Info() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::AgentInfo info;
    grpc::Status s = stub_->GetAgentInfo(&ctx, v1::GetAgentInfoRequest(), &info);
    if (!s.ok()) return absl::UnavailableError(s.error_message());
    return info;
  }

  // Polls GetAgentInfo until `n` Subscribe streams are registered.
  bool WaitSubscribers(uint32_t n, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      auto info = Info();
      if (info.ok() && info->subscribers() >= n) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  TempDir tmp_;
  std::unique_ptr<AgentProcess> agent_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TapioService::Stub> stub_;
};

TEST_F(AgentApiE2eTest, CppAndPythonSubscribersBothReceiveTheRealOomKill) {
  // Both clients resume after the last seq published before they subscribe: an event published
  // while a stream is being set up (the agent counts a subscriber a moment before it attaches it to
  // the fan-out) still reaches it, from the replay window.
  auto before = Info();
  ASSERT_TRUE(before.ok()) << before.status();
  const uint64_t resume_after = before->last_seq();
  // The python client: only oom_kill, one event, bounded in time.
  Subprocess py({"/usr/bin/python3", SourceDir() + "/tests/api/client.py", "subscribe", "--address",
                 agent_->grpc_address(), "--proto-dir", SourceDir() + "/api", "--type", "oom_kill",
                 "--resume-after", absl::StrCat(resume_after), "--count", "1", "--timeout", "60"},
                tmp_.path(), "py");

  // The C++ client, on its own thread, with the same filter.
  struct Received {
    absl::Mutex mu;
    std::vector<v1::Event> events ABSL_GUARDED_BY(mu);
    grpc::Status status;
  } cpp;
  grpc::ClientContext cpp_ctx;
  cpp_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
  v1::SubscribeRequest req;
  req.add_allow()->add_event_types(v1::EVENT_TYPE_OOM_KILL);
  req.set_resume_after(resume_after);
  std::thread reader([&] {
    auto stream = stub_->Subscribe(&cpp_ctx, req);
    v1::Event e;
    while (stream->Read(&e)) {
      absl::MutexLock lock(&cpp.mu);
      cpp.events.push_back(e);
    }
    cpp.status = stream->Finish();
  });
  struct JoinOnExit {
    grpc::ClientContext* ctx;
    std::thread* t;
    ~JoinOnExit() {
      ctx->TryCancel();
      if (t->joinable()) t->join();
    }
  } join{&cpp_ctx, &reader};

  // Python compiles the protos first: wait until both streams are registered by the agent.
  ASSERT_TRUE(WaitSubscribers(2, absl::Seconds(30)))
      << "python stderr: " << py.err() << "\nagent log:\n"
      << agent_->Log();

  // Some unrelated traffic that the filter must keep out: a workload that holds memory.
  auto noise = TestCgroup::Create();
  ASSERT_TRUE(noise.ok()) << noise.status();
  SpawnOptions so;
  so.capture_stdout = true;
  auto holder = (*noise)->Spawn({TestAllocPath(), "--mib=8", "--hold-s=-1"}, so);
  ASSERT_TRUE(holder.ok()) << holder.status();
  ASSERT_TRUE(holder->WaitForLine("ready", absl::Seconds(20)).ok());

  TestCgroupOptions o;
  o.limit_bytes = 16 << 20;
  auto cg = TestCgroup::Create(o);
  ASSERT_TRUE(cg.ok()) << cg.status();
  auto child = (*cg)->Spawn({TestAllocPath(), "--mib=0", "--step-mib=1"});
  ASSERT_TRUE(child.ok()) << child.status();
  const int victim = child->pid;
  auto wstatus = child->Wait(absl::Seconds(30));
  ASSERT_TRUE(wstatus.ok()) << wstatus.status();
  ASSERT_TRUE(WIFSIGNALED(*wstatus) && WTERMSIG(*wstatus) == SIGKILL) << *wstatus;
  auto kills = (*cg)->ReadOomKillCount();
  ASSERT_TRUE(kills.ok());
  ASSERT_EQ(*kills, 1u) << "the kernel's own oom_kill counter";
  // The cgroup id events must carry: the inode of the cgroup2 directory.
  struct stat v2;
  ASSERT_EQ(::stat((*cg)->v2_dir().c_str(), &v2), 0);
  const uint64_t inode = v2.st_ino;

  // Python: exits 0 after its one event.
  const int py_code = py.Wait(absl::Seconds(30));
  SCOPED_TRACE(
      absl::StrCat("python exit ", py_code, "; stdout: ", py.out(), "; stderr: ", py.err()));
  ASSERT_EQ(py_code, 0) << "stdout: " << py.out() << "\nstderr: " << py.err();
  auto py_events = JsonLines(py.out());
  ASSERT_EQ(py_events.size(), 1u) << py.out();
  const json& pe = py_events[0];
  ASSERT_TRUE(pe.contains("oom_kill")) << pe.dump();
  EXPECT_EQ(pe["oom_kill"]["victim_pid"].get<int>(), victim) << pe.dump();
  EXPECT_EQ(pe["oom_kill"]["victim_comm"].get<std::string>(), "tapio-test-allo");
  EXPECT_EQ(pe["oom_kill"]["constraint"].get<std::string>(), "OOM_CONSTRAINT_MEMCG") << pe.dump();
  EXPECT_EQ(JsonU64(pe["identity"]["cgroup_id"]), inode) << pe.dump();
  EXPECT_EQ(pe["identity"]["cgroup_path"].get<std::string>(), (*cg)->relative_path());
  EXPECT_EQ(pe["severity"].get<std::string>(), "SEVERITY_CRITICAL");
  EXPECT_EQ(pe["node"].get<std::string>(), "e2e-node");
  EXPECT_GT(JsonU64(pe["seq"]), resume_after);

  // C++: the same event (same seq), and nothing but oom_kill events.
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  v1::Event ce;
  bool got = false;
  while (!got && absl::Now() < deadline) {
    {
      absl::MutexLock lock(&cpp.mu);
      for (const auto& e : cpp.events) {
        if (e.has_oom_kill() && static_cast<int>(e.oom_kill().victim_pid()) == victim) {
          ce = e;
          got = true;
        }
      }
    }
    if (!got) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(got) << "C++ subscriber got no oom_kill for pid " << victim << "\n" << agent_->Log();
  EXPECT_EQ(ce.identity().cgroup_id(), inode);
  EXPECT_EQ(ce.identity().cgroup_path(), (*cg)->relative_path());
  EXPECT_EQ(ce.oom_kill().victim_comm(), "tapio-test-allo");
  EXPECT_EQ(ce.oom_kill().constraint(), v1::OOM_CONSTRAINT_MEMCG);
  EXPECT_EQ(ce.oom_kill().oom_memcg_path(), (*cg)->relative_path());
  EXPECT_GT(ce.oom_kill().anon_rss_bytes(), uint64_t{8} << 20);
  EXPECT_EQ(ce.seq(), JsonU64(pe["seq"]));
  // The agent's own JSON output saw the same kill with the same seq: one pipeline, three sinks.
  auto local = agent_->WaitFor(
      [&](const json& e) {
        return e.value("type", "") == "oom_kill" && e["oom_kill"]["victim_pid"] == victim;
      },
      absl::Seconds(5));
  ASSERT_TRUE(local.ok());
  EXPECT_EQ((*local)["seq"].get<uint64_t>(), ce.seq());
  absl::SleepFor(absl::Milliseconds(500));  // late duplicates, if any
  absl::MutexLock lock(&cpp.mu);
  int kills_for_victim = 0;
  for (const auto& e : cpp.events) {
    EXPECT_TRUE(e.has_oom_kill() || e.has_events_lost()) << e.ShortDebugString();
    if (e.has_oom_kill() && static_cast<int>(e.oom_kill().victim_pid()) == victim) {
      ++kills_for_victim;
    }
  }
  EXPECT_EQ(kills_for_victim, 1);
}

TEST_F(AgentApiE2eTest, TapioctlContainersAndInfoShowTheRealCgroupAndPrograms) {
  auto cg = TestCgroup::Create();
  ASSERT_TRUE(cg.ok()) << cg.status();
  SpawnOptions so;
  so.capture_stdout = true;
  auto holder = (*cg)->Spawn({TestAllocPath(), "--mib=32", "--hold-s=-1"}, so);
  ASSERT_TRUE(holder.ok()) << holder.status();
  ASSERT_TRUE(holder->WaitForLine("ready", absl::Seconds(20)).ok());

  // `tapioctl containers`: the test cgroup appears, sampled, with its 32 MiB of anon memory. The
  // agent learns of a cgroup from its events and samples it within a usage interval: poll.
  const std::string address = absl::StrCat("--address=", agent_->grpc_address());
  json found;
  RunResult last;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (found.is_null() && absl::Now() < deadline) {
    last = RunCommand({TAPIO_TAPIOCTL_BIN, address, "--output=json", "containers"}, tmp_.path(),
                      "containers");
    ASSERT_EQ(last.code, 0) << last.err;
    for (const json& c : JsonLines(last.out)) {
      if (JsonU64(c["identity"]["cgroup_id"]) == (*cg)->cgroup2_id() &&
          JsonU64(c["usage"]["anon_bytes"]) >= uint64_t{30} << 20) {
        found = c;
      }
    }
    if (found.is_null()) absl::SleepFor(absl::Milliseconds(500));
  }
  ASSERT_FALSE(found.is_null()) << "test cgroup " << (*cg)->relative_path() << " id "
                                << (*cg)->cgroup2_id() << " not listed with >= 30 MiB anon:\n"
                                << last.out << "\nagent log:\n"
                                << agent_->Log();
  EXPECT_EQ(found["identity"]["cgroup_path"].get<std::string>(), (*cg)->relative_path());
  EXPECT_GT(JsonU64(found["usage_time_unix_ns"]), 0u);
  auto usage = (*cg)->ReadUsageBytes();
  ASSERT_TRUE(usage.ok());
  // The kernel's own figure now, and the agent's sample at most a second old: close.
  EXPECT_NEAR(static_cast<double>(JsonU64(found["usage"]["usage_bytes"])),
              static_cast<double>(*usage), 0.1 * *usage);

  // The table form names the cgroup too.
  RunResult table = RunCommand({TAPIO_TAPIOCTL_BIN, address, "containers"}, tmp_.path(), "table");
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find((*cg)->relative_path()), std::string::npos) << table.out;

  // `tapioctl info`: the real kernel, the programs attached on this kernel, our configuration.
  RunResult info =
      RunCommand({TAPIO_TAPIOCTL_BIN, address, "--output=json", "info"}, tmp_.path(), "info");
  ASSERT_EQ(info.code, 0) << info.err;
  auto lines = JsonLines(info.out);
  ASSERT_EQ(lines.size(), 1u) << info.out;
  const json& ai = lines[0];
  struct utsname un;
  ASSERT_EQ(uname(&un), 0);
  EXPECT_EQ(ai["kernel_release"].get<std::string>(), un.release);
  EXPECT_EQ(ai["node"].get<std::string>(), "e2e-node");
  EXPECT_FALSE(ai["version"].get<std::string>().empty());
  int attached = 0;
  bool oom_hook = false;
  for (const json& p : ai["programs"]) {
    if (p["status"] == "STATUS_ATTACHED" || p["status"] == "STATUS_FALLBACK") {
      ++attached;
      const std::string point = p["attach_point"].get<std::string>();
      if (point.find("mark_victim") != std::string::npos) oom_hook = true;
    }
  }
  EXPECT_GE(attached, 2) << info.out;
  EXPECT_TRUE(oom_hook) << "no attached program on the OOM victim tracepoint: " << info.out;
  // Everything attached is reported as such in the agent's own log.
  for (const json& p : ai["programs"]) {
    if (p["status"] == "STATUS_ATTACHED") {
      EXPECT_NE(agent_->Log().find(absl::StrCat("attached ", p["name"].get<std::string>())),
                std::string::npos)
          << p.dump();
    }
  }
  EXPECT_EQ(ai["config"]["attribution"].get<std::string>(), "none") << ai["config"].dump();
  EXPECT_EQ(ai["config"]["usage_interval_s"].get<std::string>(), "1") << ai["config"].dump();

  // The table form: one line per program at least.
  RunResult info_text = RunCommand({TAPIO_TAPIOCTL_BIN, address, "info"}, tmp_.path(), "info_text");
  ASSERT_EQ(info_text.code, 0) << info_text.err;
  EXPECT_NE(info_text.out.find(un.release), std::string::npos) << info_text.out;

  // A client error is plain and non-zero: a bad selector names the field.
  RunResult bad = RunCommand({TAPIO_TAPIOCTL_BIN, address, "--selector=a in (", "containers"},
                             tmp_.path(), "bad");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("selector"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace tapio::testing
