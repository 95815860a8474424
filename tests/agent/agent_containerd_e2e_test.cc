// The real tapio-agent with --attribution=cri against a real containerd 1.6 (e2e/containerd
// fixture: pods and containers made through Tapio's CRI client with kubelet labels and
// /kubepods cgroup parents). Proves, through the agent's JSON output AND its gRPC Subscribe
// stream, that memory_usage and oom_kill events carry the right namespace/pod/container, and that
// the agent survives containerd being killed and restarted mid-run and attributes pods created
// afterwards. LABEL e2e: root, containerd, runc, gcc (static images). About a minute.
//
// Cleanup: the fixture's destructor removes every pod, container, pod cgroup and containerd
// process it made; the agent is SIGKILLed by AgentProcess's destructor if a test fails midway.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "e2e/containerd/containerd_fixture.h"
#include "nlohmann/json.hpp"
#include "tapio/v1/service.grpc.pb.h"
#include "tests/agent/agent_process.h"
#include "tests/metrics/http_get.h"
#include "tests/support/test_cgroup.h"

namespace tapio::testing {
namespace {

using ::nlohmann::json;
using ::tapio::e2e::ContainerdFixture;
using ::testing::HasSubstr;

constexpr char kNamespace[] = "e2e-agent";

bool IsType(const json& e, const char* type) { return e.value("type", "") == type; }
std::string Str(const json& e, const char* key) { return e.value(key, std::string()); }

// One gRPC Subscribe stream read on its own thread; events kept in arrival order.
class Subscriber {
 public:
  Subscriber(v1::TapioService::Stub* stub, const v1::SubscribeRequest& req) {
    thread_ = std::thread([this, stub, req] {
      auto stream = stub->Subscribe(&ctx_, req);
      v1::Event e;
      while (stream->Read(&e)) {
        absl::MutexLock lock(&mu_);
        events_.push_back(e);
      }
      grpc::Status s = stream->Finish();
      absl::MutexLock lock(&mu_);
      finished_ = true;
      status_ = s;
    });
  }
  ~Subscriber() {
    ctx_.TryCancel();
    if (thread_.joinable()) thread_.join();
  }
  // The first event (from index 0) satisfying `pred`, waiting up to `timeout`.
  bool WaitFor(const std::function<bool(const v1::Event&)>& pred, absl::Duration timeout,
               v1::Event* out) {
    const absl::Time deadline = absl::Now() + timeout;
    size_t checked = 0;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        for (; checked < events_.size(); ++checked) {
          if (pred(events_[checked])) {
            *out = events_[checked];
            return true;
          }
        }
        if (finished_) return false;
      }
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  std::vector<v1::Event> Events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::string Status() {
    absl::MutexLock lock(&mu_);
    return finished_
               ? absl::StrCat("finished: ", status_.error_code(), " ", status_.error_message())
               : "streaming";
  }

 private:
  grpc::ClientContext ctx_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<v1::Event> events_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

class AgentContainerdE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, containerd); CI runs as root";
    auto fx = ContainerdFixture::Start({});
    ASSERT_TRUE(fx.ok()) << fx.status();
    fx_ = *std::move(fx);
    auto agent = AgentProcess::Start(
        {"--attribution=cri", absl::StrCat("--cri_endpoint=", fx_->endpoint()), "--cri_refresh_s=1",
         "--usage_interval_s=1", "--max_sample_interval_ms=1000", "--summary_interval_s=0",
         "--log_level=debug"});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    stub_ = v1::TapioService::NewStub(
        grpc::CreateChannel(agent_->grpc_address(), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    // Pods first (the fixture would too), then the agent, then containerd (fixture destructor).
    for (const auto& pod : pods_) {
      auto s = fx_->RemovePod(pod);
      EXPECT_TRUE(s.ok()) << s;
    }
    if (agent_ != nullptr && agent_->Running()) {
      auto status = agent_->Stop();
      EXPECT_TRUE(status.ok()) << status.status();
      if (status.ok()) {
        EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status << agent_->Log();
      }
    }
  }

  absl::StatusOr<ContainerdFixture::Pod> RunPod(
      const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    auto pod = fx_->RunPod(name, kNamespace, "burstable", labels);
    if (pod.ok()) pods_.push_back(*pod);
    return pod;
  }

  // Waits for the agent's JSON output to show a memory_usage event of container `cid` attributed
  // to `pod`/`container`, with seq above `after_seq`.
  absl::StatusOr<json> WaitAttributedUsage(const std::string& cid, const std::string& pod,
                                           const std::string& container, uint64_t after_seq,
                                           absl::Duration timeout) {
    return agent_->WaitFor(
        [&](const json& e) {
          return IsType(e, "memory_usage") && Str(e, "container_id") == cid &&
                 Str(e, "pod") == pod && Str(e, "container") == container &&
                 e["seq"].get<uint64_t>() > after_seq;
        },
        timeout);
  }

  // Polls GetAgentInfo until `n` Subscribe streams are registered.
  bool WaitSubscribers(uint32_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      v1::AgentInfo info;
      if (stub_->GetAgentInfo(&ctx, v1::GetAgentInfoRequest(), &info).ok() &&
          info.subscribers() >= n) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  uint64_t LastSeq() {
    uint64_t seq = 0;
    for (const json& e : agent_->Events()) seq = std::max(seq, e.value("seq", uint64_t{0}));
    return seq;
  }

  std::unique_ptr<ContainerdFixture> fx_;
  std::unique_ptr<AgentProcess> agent_;
  std::unique_ptr<v1::TapioService::Stub> stub_;
  std::vector<ContainerdFixture::Pod> pods_;
};

TEST_F(AgentContainerdE2eTest, EventsCarryPodIdentityAndContainerdRestartIsSurvived) {
  // A gRPC subscriber that asks for this namespace only: attribution drives the server filter.
  v1::SubscribeRequest req;
  req.add_allow()->add_namespaces(kNamespace);
  Subscriber sub(stub_.get(), req);
  ASSERT_TRUE(WaitSubscribers(1));

  // 1. A pod with kubelet labels and a 128 MiB container holding 16 MiB.
  auto pod = RunPod("web-1", {{"app", "web"}});
  ASSERT_TRUE(pod.ok()) << pod.status();
  auto cid = fx_->StartContainer(*pod, "mem", {"hold", "16"}, 128 << 20);
  ASSERT_TRUE(cid.ok()) << cid.status();
  const std::string path = pod->cgroup_parent + "/" + *cid;
  auto usage = agent_->WaitFor(
      [&](const json& e) {
        return IsType(e, "memory_usage") && Str(e, "container_id") == *cid &&
               e["memory_usage"]["anon_bytes"].get<uint64_t>() >= uint64_t{15} << 20;
      },
      absl::Seconds(20));
  ASSERT_TRUE(usage.ok()) << "no memory_usage with 16 MiB anon for container " << *cid << "\n"
                          << agent_->Log();
  EXPECT_EQ(Str(*usage, "namespace"), kNamespace) << usage->dump();
  EXPECT_EQ(Str(*usage, "pod"), "web-1");
  EXPECT_EQ(Str(*usage, "container"), "mem");
  EXPECT_EQ(Str(*usage, "pod_uid"), pod->uid);
  EXPECT_EQ(Str(*usage, "qos_class"), "burstable");
  EXPECT_EQ(Str(*usage, "cgroup_path"), path);
  EXPECT_EQ((*usage)["memory_usage"]["limit_bytes"].get<uint64_t>(), uint64_t{128} << 20);

  v1::Event ge;
  ASSERT_TRUE(sub.WaitFor(
      [&](const v1::Event& e) {
        return e.has_memory_usage() && e.identity().container_id() == *cid;
      },
      absl::Seconds(10), &ge))
      << sub.Status();
  EXPECT_EQ(ge.identity().pod_name(), "web-1");
  EXPECT_EQ(ge.identity().pod_namespace(), kNamespace);
  EXPECT_EQ(ge.identity().container_name(), "mem");
  EXPECT_EQ(ge.identity().pod_uid(), pod->uid);
  EXPECT_EQ(ge.identity().qos_class(), v1::QOS_CLASS_BURSTABLE);
  EXPECT_EQ(ge.identity().cgroup_path(), path);
  auto label = ge.identity().labels().find("app");
  ASSERT_NE(label, ge.identity().labels().end()) << ge.ShortDebugString();
  EXPECT_EQ(label->second, "web");
  auto ino = e2e::CgroupInode("/sys/fs/cgroup/unified", path);
  ASSERT_TRUE(ino.ok()) << ino.status();
  EXPECT_EQ(ge.identity().cgroup_id(), *ino);

  // 2. An OOM kill inside the (known) container: a second process joins its cgroup in both
  // hierarchies and allocates until the 128 MiB limit kills it (the largest task; memhog's 16 MiB
  // survives). The oom_kill event carries the pod identity.
  const pid_t intruder = fork();
  ASSERT_GE(intruder, 0);
  if (intruder == 0) {
    for (const char* root : {"/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"}) {
      const std::string procs = absl::StrCat(root, path, "/cgroup.procs");
      FILE* f = std::fopen(procs.c_str(), "w");
      if (f == nullptr || std::fprintf(f, "%d\n", getpid()) < 0 || std::fclose(f) != 0) _exit(125);
    }
    const std::string alloc = TestAllocPath();
    execl(alloc.c_str(), alloc.c_str(), "--mib=0", "--step-mib=2", nullptr);
    _exit(127);
  }
  int intruder_status = 0;
  const absl::Time intruder_deadline = absl::Now() + absl::Seconds(30);
  while (waitpid(intruder, &intruder_status, WNOHANG) != intruder) {
    if (absl::Now() > intruder_deadline) {
      ::kill(intruder, SIGKILL);
      waitpid(intruder, &intruder_status, 0);
      FAIL() << "the intruder was not OOM-killed in 30 s";
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(WIFSIGNALED(intruder_status) && WTERMSIG(intruder_status) == SIGKILL)
      << "intruder status " << intruder_status << " (125: could not join the container cgroup)";
  auto known_kill = agent_->WaitFor(
      [&](const json& e) {
        return IsType(e, "oom_kill") && e["oom_kill"]["victim_pid"] == intruder;
      },
      absl::Seconds(10));
  ASSERT_TRUE(known_kill.ok()) << "no oom_kill for pid " << intruder << "\n" << agent_->Log();
  EXPECT_EQ(Str(*known_kill, "cgroup_path"), path) << known_kill->dump();
  EXPECT_EQ(Str(*known_kill, "namespace"), kNamespace) << known_kill->dump();
  EXPECT_EQ(Str(*known_kill, "pod"), "web-1");
  EXPECT_EQ(Str(*known_kill, "container"), "mem");
  EXPECT_EQ((*known_kill)["oom_kill"]["constraint"].get<std::string>(), "memcg");
  ASSERT_TRUE(sub.WaitFor(
      [&](const v1::Event& e) {
        return e.has_oom_kill() && static_cast<pid_t>(e.oom_kill().victim_pid()) == intruder;
      },
      absl::Seconds(10), &ge))
      << sub.Status();
  EXPECT_EQ(ge.identity().pod_name(), "web-1");
  EXPECT_EQ(ge.identity().container_name(), "mem");
  EXPECT_EQ(ge.seq(), (*known_kill)["seq"].get<uint64_t>());

  // 3. containerd is killed (shims and containers keep running): the agent keeps streaming, and
  // what it knew it still attributes.
  ASSERT_TRUE(fx_->Kill().ok());
  const uint64_t seq_at_kill = LastSeq();
  absl::SleepFor(absl::Seconds(3));  // several failed refreshes at --cri_refresh_s=1
  ASSERT_TRUE(agent_->Running()) << "the agent exited with containerd down:\n" << agent_->Log();
  auto during = WaitAttributedUsage(*cid, "web-1", "mem", seq_at_kill, absl::Seconds(10));
  EXPECT_TRUE(during.ok()) << "no attributed memory_usage while containerd was down\n"
                           << agent_->Log();
  ASSERT_TRUE(sub.WaitFor(
      [&](const v1::Event& e) {
        return e.has_memory_usage() && e.seq() > seq_at_kill && e.identity().container_id() == *cid;
      },
      absl::Seconds(10), &ge))
      << "gRPC stream stalled with containerd down: " << sub.Status();

  // 4. containerd is back: a pod created afterwards is attributed.
  ASSERT_TRUE(fx_->Restart().ok());
  auto after = RunPod("after-1");
  ASSERT_TRUE(after.ok()) << after.status();
  auto cid2 = fx_->StartContainer(*after, "app", {"hold", "8"}, 32 << 20);
  ASSERT_TRUE(cid2.ok()) << cid2.status();
  auto attributed = WaitAttributedUsage(*cid2, "after-1", "app", 0, absl::Seconds(30));
  ASSERT_TRUE(attributed.ok()) << "pod created after the restart not attributed\n" << agent_->Log();
  EXPECT_EQ(Str(*attributed, "namespace"), kNamespace);
  EXPECT_EQ(Str(*attributed, "pod_uid"), after->uid);
  EXPECT_EQ((*attributed)["memory_usage"]["limit_bytes"].get<uint64_t>(), uint64_t{32} << 20);
  ASSERT_TRUE(sub.WaitFor(
      [&](const v1::Event& e) {
        return e.has_memory_usage() && e.identity().container_id() == *cid2 &&
               e.identity().pod_name() == "after-1";
      },
      absl::Seconds(10), &ge))
      << sub.Status();
  EXPECT_TRUE(agent_->Running());
  EXPECT_EQ(sub.Status(), "streaming");
}

// A container that allocates until its 64 MiB limit kills it (memhog at 4 MiB per 10 ms: dead
// within about 0.2 s of its start, before the agent's next CRI refresh) gives one oom_kill event
// carrying its pod identity: the OOM races the registry learning of the container, which is
// exactly what late enrichment (WhenKnown) is for.
TEST_F(AgentContainerdE2eTest, OomKillOfAFreshContainerCarriesItsPodIdentity) {
  v1::SubscribeRequest req;
  req.add_allow()->add_namespaces(kNamespace);
  Subscriber sub(stub_.get(), req);
  ASSERT_TRUE(WaitSubscribers(1));
  auto hog_pod = RunPod("hog-1");
  ASSERT_TRUE(hog_pod.ok()) << hog_pod.status();
  auto hog = fx_->StartContainer(*hog_pod, "hog", {"hog", "4"}, 64 << 20);
  ASSERT_TRUE(hog.ok()) << hog.status();
  auto kill = agent_->WaitFor(
      [&](const json& e) { return IsType(e, "oom_kill") && Str(e, "container_id") == *hog; },
      absl::Seconds(30));
  ASSERT_TRUE(kill.ok()) << "no oom_kill for container " << *hog << "\n" << agent_->Log();
  // For the diagnosis when the identity is missing: every event of this cgroup, and what the
  // agent's ListContainers says about it now.
  std::string history;
  for (const json& e : agent_->Events()) {
    if (Str(e, "container_id") == *hog) {
      absl::StrAppend(&history, Str(e, "time"), " ", Str(e, "type"), " pod=", Str(e, "pod"), "\n");
    }
  }
  std::string listed = "not listed";
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ListContainersResponse list;
    if (stub_->ListContainers(&ctx, v1::ListContainersRequest(), &list).ok()) {
      for (const auto& c : list.containers()) {
        if (c.identity().container_id() == *hog) listed = c.identity().ShortDebugString();
      }
    }
  }
  SCOPED_TRACE(absl::StrCat("events of the container:\n", history, "ListContainers now: ", listed));
  EXPECT_EQ(Str(*kill, "namespace"), kNamespace) << kill->dump();
  EXPECT_EQ(Str(*kill, "pod"), "hog-1");
  EXPECT_EQ(Str(*kill, "container"), "hog");
  EXPECT_EQ(Str(*kill, "pod_uid"), hog_pod->uid);
  EXPECT_EQ((*kill)["oom_kill"]["victim_comm"].get<std::string>(), "memhog");
  EXPECT_EQ((*kill)["oom_kill"]["constraint"].get<std::string>(), "memcg");
  EXPECT_EQ((*kill)["oom_kill"]["oom_memcg_path"].get<std::string>(),
            hog_pod->cgroup_parent + "/" + *hog);
  // The runtime agrees: the container exited OOMKilled.
  absl::StatusOr<attrib::CriContainerStatus> st;
  const absl::Time exit_deadline = absl::Now() + absl::Seconds(20);
  do {
    st = fx_->cri().ContainerStatus(*hog, false);
    ASSERT_TRUE(st.ok()) << st.status();
    if (st->state == attrib::CriContainerState::kExited) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < exit_deadline);
  EXPECT_EQ(st->state, attrib::CriContainerState::kExited);
  EXPECT_EQ(st->reason, "OOMKilled");
  v1::Event gk;
  ASSERT_TRUE(sub.WaitFor(
      [&](const v1::Event& e) { return e.has_oom_kill() && e.identity().container_id() == *hog; },
      absl::Seconds(10), &gk))
      << sub.Status();
  EXPECT_EQ(gk.identity().pod_name(), "hog-1");
  EXPECT_EQ(gk.identity().container_name(), "hog");
  EXPECT_EQ(gk.seq(), (*kill)["seq"].get<uint64_t>());
  absl::SleepFor(absl::Seconds(1));  // late duplicates, if any
  int kills = 0;
  for (const json& e : agent_->Events()) {
    if (IsType(e, "oom_kill") && Str(e, "container_id") == *hog) ++kills;
  }
  EXPECT_EQ(kills, 1);
  int grpc_kills = 0;
  for (const v1::Event& e : sub.Events()) {
    if (e.has_oom_kill() && e.identity().pod_name() == "hog-1") ++grpc_kills;
    // The namespace filter, on real attribution: nothing from other namespaces.
    if (!e.has_events_lost()) {
      EXPECT_EQ(e.identity().pod_namespace(), kNamespace) << e.ShortDebugString();
    }
  }
  EXPECT_EQ(grpc_kills, 1);
}

// Replicas of one Deployment, without a kubelet: the workload comes from the pod-template-hash
// label the kubelet copies onto each sandbox, so a replica started beside a running one gets that
// one's peak as its prior (the live-peer prior) and its start-up fill is not predicted. A pod of
// another Deployment doing the same fill at the same time, with no peer, is: the control that
// makes the quiet replica mean something (this fill is the first run of
// prediction_kernel_test's restart test).
TEST_F(AgentContainerdE2eTest, AReplicaStartedBesideARunningOneIsNotPredictedOnItsStartupFill) {
  constexpr int64_t kLimit = 128 << 20;
  const std::map<std::string, std::string> web = {{"app", "web"},
                                                  {"pod-template-hash", "7d4b9c8f6d"}};
  auto running_pod = RunPod("web-7d4b9c8f6d-aaaaa", web);
  ASSERT_TRUE(running_pod.ok()) << running_pod.status();
  auto running = fx_->StartContainer(*running_pod, "app", {"hold", "96"}, kLimit);
  ASSERT_TRUE(running.ok()) << running.status();
  auto held = agent_->WaitFor(
      [&](const json& e) {
        return IsType(e, "memory_usage") && Str(e, "container_id") == *running &&
               Str(e, "pod") == "web-7d4b9c8f6d-aaaaa" &&
               e["memory_usage"]["non_reclaimable_bytes"].get<uint64_t>() >= uint64_t{95} << 20;
      },
      absl::Seconds(30));
  ASSERT_TRUE(held.ok()) << "the running replica was not seen at 96 MiB\n" << agent_->Log();
  EXPECT_EQ(Str(*held, "workload"), "Deployment/web") << held->dump();
  // Its 96 MiB arrive in one step, which a reading taken mid-way (the jump trigger makes that
  // likely) sees as a fast ramp: a replica at risk is no peer, so wait until it has cleared.
  auto state_of = [](const std::string& cid, const char* state) {
    return [cid, state](const json& e) {
      return IsType(e, "oom_prediction") && Str(e, "container_id") == cid &&
             e["oom_prediction"]["state"] == state;
    };
  };
  if (agent_->WaitFor(state_of(*running, "at_risk"), absl::Seconds(3)).ok()) {
    ASSERT_TRUE(agent_->WaitFor(state_of(*running, "cleared"), absl::Seconds(120)).ok())
        << "the running replica never cleared\n"
        << agent_->Log();
  }

  // 96 MiB at about 4 MiB/s, then held: the replica, and a pod of another Deployment.
  const std::vector<std::string> fill = {"fill", "96", "250"};
  auto replica_pod = RunPod("web-7d4b9c8f6d-bbbbb", web);
  ASSERT_TRUE(replica_pod.ok()) << replica_pod.status();
  auto other_pod = RunPod("cache-5f6c7d8e9a-ccccc", {{"pod-template-hash", "5f6c7d8e9a"}});
  ASSERT_TRUE(other_pod.ok()) << other_pod.status();
  auto replica = fx_->StartContainer(*replica_pod, "app", fill, kLimit);
  ASSERT_TRUE(replica.ok()) << replica.status();
  auto other = fx_->StartContainer(*other_pod, "app", fill, kLimit);
  ASSERT_TRUE(other.ok()) << other.status();

  auto at_risk = [&](const std::string& cid) { return state_of(cid, "at_risk"); };
  auto control = agent_->WaitFor(at_risk(*other), absl::Seconds(60));
  ASSERT_TRUE(control.ok()) << "the replica-less fill was not predicted: the test would prove "
                               "nothing\n"
                            << agent_->Log();
  EXPECT_EQ(Str(*control, "workload"), "Deployment/cache") << control->dump();
  auto filled = agent_->WaitFor(
      [&](const json& e) {
        return IsType(e, "memory_usage") && Str(e, "container_id") == *replica &&
               e["memory_usage"]["non_reclaimable_bytes"].get<uint64_t>() >= uint64_t{95} << 20;
      },
      absl::Seconds(60));
  ASSERT_TRUE(filled.ok()) << "the replica did not fill to 96 MiB\n" << agent_->Log();
  absl::SleepFor(absl::Seconds(5));  // held at its peak: a late raise would show here
  // On a failure, the predictions of both replicas and the agent's log (which says what prior
  // each run found) tell a late peer from a missing key.
  std::string raised, replicas;
  for (const json& e : agent_->Events()) {
    if (at_risk(*replica)(e)) absl::StrAppend(&raised, e.dump(), "\n");
    if (IsType(e, "oom_prediction") &&
        (Str(e, "container_id") == *replica || Str(e, "container_id") == *running)) {
      absl::StrAppend(&replicas, e.dump(), "\n");
    }
  }
  EXPECT_EQ(raised, "") << "the replica was predicted; the replicas' predictions:\n"
                        << replicas << agent_->Log();
  EXPECT_EQ(Str(*filled, "workload"), "Deployment/web") << filled->dump();

  // The agent says why: one peer prior (the replica's), no restart prior.
  auto port = agent_->MetricsPort();
  ASSERT_TRUE(port.ok()) << port.status();
  auto metrics = HttpGet(*port, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  std::string priors;  // the two series, not the whole exposition, in a failure message
  for (absl::string_view line : absl::StrSplit(*metrics, '\n')) {
    if (absl::StartsWith(line, "tapio_agent_prediction_priors_total{")) {
      absl::StrAppend(&priors, line, "\n");
    }
  }
  EXPECT_THAT(priors, HasSubstr("tapio_agent_prediction_priors_total{source=\"peer\"} 1\n"));
  EXPECT_THAT(priors, HasSubstr("tapio_agent_prediction_priors_total{source=\"restart\"} 0\n"));
}

}  // namespace
}  // namespace tapio::testing
