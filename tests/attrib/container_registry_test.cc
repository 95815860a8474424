#include "agent/attrib/container_registry.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/attrib/mock_cri_client.h"

namespace tapio::attrib {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using ::testing::NiceMock;
using ::testing::Pair;
using ::testing::Return;

constexpr char kUid[] = "5e3f7a1c-2b4d-4e6f-8a9b-0c1d2e3f4a5b";
const std::string kCid(64, 'a');
const std::string kSid(64, 'b');
const std::string kPodPath = std::string("/kubepods/burstable/pod") + kUid;
const std::string kCPath = kPodPath + "/" + kCid;

CriPodSandbox Sandbox() {
  CriPodSandbox s;
  s.id = kSid;
  s.name = "web-7d9f";
  s.pod_namespace = "shop";
  s.uid = kUid;
  s.ready = true;
  s.labels = {{"io.kubernetes.pod.name", "web-7d9f"},
              {"io.kubernetes.pod.namespace", "shop"},
              {"io.kubernetes.pod.uid", kUid},
              {"tier", "front"},
              {"app", "web"}};
  return s;
}

CriContainer Container() {
  CriContainer c;
  c.id = kCid;
  c.pod_sandbox_id = kSid;
  c.name = "nginx";
  c.state = CriContainerState::kRunning;
  c.labels = {{"io.kubernetes.container.name", "nginx"},
              {"io.kubernetes.pod.name", "web-7d9f"},
              {"io.kubernetes.pod.namespace", "shop"},
              {"io.kubernetes.pod.uid", kUid}};
  return c;
}

class RegistryTest : public ::testing::Test {
 protected:
  void Make(ContainerRegistry::Options opts = {}) {
    opts.mode = ContainerRegistry::Mode::kCri;
    opts.start_thread = false;
    opts.clock = [this] { return now_; };
    auto mock = std::make_unique<NiceMock<MockCriClient>>();
    cri_ = mock.get();
    ON_CALL(*cri_, ListPodSandbox()).WillByDefault([this] {
      if (!up_) return absl::StatusOr<std::vector<CriPodSandbox>>(absl::UnavailableError("down"));
      return absl::StatusOr<std::vector<CriPodSandbox>>(sandboxes_);
    });
    ON_CALL(*cri_, ListContainers()).WillByDefault([this] {
      if (!up_) return absl::StatusOr<std::vector<CriContainer>>(absl::UnavailableError("down"));
      return absl::StatusOr<std::vector<CriContainer>>(containers_);
    });
    ON_CALL(*cri_, ContainerStatus(_, _)).WillByDefault([](absl::string_view id, bool) {
      CriContainerStatus st;
      st.id = std::string(id);
      st.pid = 42;
      st.cgroups_path = kPodPath + "/" + std::string(id);
      return absl::StatusOr<CriContainerStatus>(st);
    });
    auto reg = ContainerRegistry::Create(opts, std::move(mock));
    ASSERT_TRUE(reg.ok()) << reg.status();
    reg_ = *std::move(reg);
  }

  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
  bool up_ = true;
  std::vector<CriPodSandbox> sandboxes_;
  std::vector<CriContainer> containers_;
  NiceMock<MockCriClient>* cri_ = nullptr;
  std::unique_ptr<ContainerRegistry> reg_;
};

TEST(ContainerRegistryNoRuntime, NamesCgroupsByPathOnly) {
  ContainerRegistry::Options opts;
  opts.mode = ContainerRegistry::Mode::kNoRuntime;
  auto reg = ContainerRegistry::Create(opts, nullptr);
  ASSERT_TRUE(reg.ok());
  auto id = (*reg)->Resolve(7, "/system.slice/sshd.service");
  EXPECT_EQ(id->cgroup_id, 7u);
  EXPECT_EQ(id->cgroup_path, "/system.slice/sshd.service");
  EXPECT_EQ(id->container_id, "");
  EXPECT_EQ(id->pod_name, "");
  bool called = false;
  (*reg)->WhenKnown(7, "/system.slice/sshd.service", absl::InfiniteFuture(),
                    [&](std::shared_ptr<const WorkloadIdentity>, bool known) {
                      called = true;
                      EXPECT_TRUE(known);
                    });
  EXPECT_TRUE(called);
}

TEST(ContainerRegistryCreate, CriModeWithoutClientIsRejected) {
  ContainerRegistry::Options opts;
  opts.mode = ContainerRegistry::Mode::kCri;
  EXPECT_EQ(ContainerRegistry::Create(opts, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RegistryTest, UnknownContainerIsPathOnlyUntilRefresh) {
  Make();
  auto before = reg_->Resolve(100, kCPath);
  EXPECT_EQ(before->container_id, kCid);  // from the path
  EXPECT_EQ(before->pod_uid, kUid);
  EXPECT_EQ(before->qos_class, "burstable");
  EXPECT_EQ(before->pod_name, "");
  EXPECT_EQ(reg_->stats().path_only_total, 1u);

  sandboxes_ = {Sandbox()};
  containers_ = {Container()};
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  auto after = reg_->Resolve(100, kCPath);
  EXPECT_EQ(after->container_name, "nginx");
  EXPECT_EQ(after->pod_name, "web-7d9f");
  EXPECT_EQ(after->pod_namespace, "shop");
  EXPECT_EQ(after->pod_uid, kUid);
  EXPECT_EQ(after->qos_class, "burstable");
  // Pod labels, sorted, without the kubelet's bookkeeping labels.
  EXPECT_THAT(after->labels, ElementsAre(Pair("app", "web"), Pair("tier", "front")));
}

TEST_F(RegistryTest, TheSandboxsControllerLabelsNameTheWorkload) {
  // What the kubelet copies onto a Deployment's pod sandbox: the pod-template-hash label and a
  // generated name. Without a kubelet these are what ties replicas and restarts together.
  CriPodSandbox s = Sandbox();
  s.labels["io.kubernetes.pod.name"] = "web-7d4b9c8f6d-x2k9p";
  s.labels["pod-template-hash"] = "7d4b9c8f6d";
  sandboxes_ = {s};
  containers_ = {Container()};
  Make();
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  auto id = reg_->Resolve(100, kCPath);
  EXPECT_EQ(id->pod_name, "web-7d4b9c8f6d-x2k9p");
  EXPECT_EQ(id->workload_kind, "Deployment");
  EXPECT_EQ(id->workload_name, "web");
  // A pod without them has no workload (the RestartKey falls back to the pod's own name).
  sandboxes_ = {Sandbox()};
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  id = reg_->Resolve(100, kCPath);
  EXPECT_EQ(id->workload_kind, "");
  EXPECT_EQ(id->workload_name, "");
}

TEST_F(RegistryTest, IdentityIsSharedUntilSomethingChanges) {
  sandboxes_ = {Sandbox()};
  containers_ = {Container()};
  Make();
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  auto a = reg_->Resolve(100, kCPath);
  auto b = reg_->Resolve(100, kCPath);
  EXPECT_EQ(a.get(), b.get());
  ASSERT_TRUE(reg_->RefreshOnce().ok());  // nothing changed
  EXPECT_EQ(reg_->Resolve(100, kCPath).get(), a.get());
  sandboxes_[0].labels["app"] = "web2";
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  auto c = reg_->Resolve(100, kCPath);
  EXPECT_NE(c.get(), a.get());
  EXPECT_THAT(c->labels, ElementsAre(Pair("app", "web2"), Pair("tier", "front")));
}

TEST_F(RegistryTest, NestedCgroupMapsToItsContainer) {
  sandboxes_ = {Sandbox()};
  containers_ = {Container()};
  Make();
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  auto id = reg_->Resolve(101, kCPath + "/container");
  EXPECT_EQ(id->container_name, "nginx");
  EXPECT_EQ(id->cgroup_path, kCPath + "/container");
}

TEST_F(RegistryTest, SandboxCgroupIsThePodsPauseContainer) {
  sandboxes_ = {Sandbox()};
  Make();
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  auto id = reg_->Resolve(102, kPodPath + "/" + kSid);
  EXPECT_EQ(id->container_id, kSid);
  EXPECT_EQ(id->container_name, "POD");
  EXPECT_EQ(id->pod_name, "web-7d9f");
}

TEST_F(RegistryTest, PodLevelCgroupResolvesToThePod) {
  sandboxes_ = {Sandbox()};
  Make();
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  auto id = reg_->Resolve(103, kPodPath);
  EXPECT_EQ(id->container_id, "");
  EXPECT_EQ(id->pod_name, "web-7d9f");
  EXPECT_EQ(id->pod_namespace, "shop");
}

TEST_F(RegistryTest, ContainerLabelsNameThePodWhenTheSandboxIsNotListed) {
  containers_ = {Container()};
  Make();
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  auto id = reg_->Resolve(100, kCPath);
  EXPECT_EQ(id->container_name, "nginx");
  EXPECT_EQ(id->pod_name, "web-7d9f");
  EXPECT_EQ(id->pod_namespace, "shop");
}

TEST_F(RegistryTest, DeletedContainerIsRetainedThenForgotten) {
  sandboxes_ = {Sandbox()};
  containers_ = {Container()};
  ContainerRegistry::Options opts;
  opts.deleted_retention = absl::Minutes(2);
  Make(opts);
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  sandboxes_.clear();
  containers_.clear();
  now_ += absl::Seconds(1);
  ASSERT_TRUE(reg_->RefreshOnce().ok());  // gone from the runtime: marked deleted
  EXPECT_EQ(reg_->stats().retained_deleted, 2u);
  now_ += absl::Seconds(100);
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  EXPECT_EQ(reg_->Resolve(100, kCPath)->pod_name, "web-7d9f");  // OOM event racing teardown
  now_ += absl::Seconds(30);                                    // 130 s > 2 min after deletion
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  EXPECT_EQ(reg_->stats().retained_deleted, 0u);
  EXPECT_EQ(reg_->Resolve(100, kCPath)->pod_name, "");
}

TEST_F(RegistryTest, RuntimeDownKeepsCacheCountsFailuresAndBacksOffExponentially) {
  sandboxes_ = {Sandbox()};
  containers_ = {Container()};
  ContainerRegistry::Options opts;
  opts.initial_backoff = absl::Milliseconds(500);
  opts.max_backoff = absl::Seconds(4);
  Make(opts);
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  EXPECT_TRUE(reg_->stats().runtime_up);
  up_ = false;
  std::vector<int64_t> backoffs;
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(reg_->RefreshOnce().code(), absl::StatusCode::kUnavailable);
    backoffs.push_back(reg_->stats().current_backoff_ms);
  }
  EXPECT_THAT(backoffs, ElementsAre(500, 1000, 2000, 4000, 4000, 4000));
  RegistryStats s = reg_->stats();
  EXPECT_FALSE(s.runtime_up);
  EXPECT_EQ(s.refresh_failures_total, 6u);
  EXPECT_EQ(s.consecutive_failures, 6u);
  // Still attributes what it knew.
  EXPECT_EQ(reg_->Resolve(100, kCPath)->pod_name, "web-7d9f");
}

TEST_F(RegistryTest, RecoversWhenTheRuntimeReturns) {
  Make();
  up_ = false;
  EXPECT_FALSE(reg_->RefreshOnce().ok());
  EXPECT_FALSE(reg_->RefreshOnce().ok());
  up_ = true;
  sandboxes_ = {Sandbox()};
  containers_ = {Container()};
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  RegistryStats s = reg_->stats();
  EXPECT_TRUE(s.runtime_up);
  EXPECT_EQ(s.consecutive_failures, 0u);
  EXPECT_EQ(s.current_backoff_ms, 0);
  EXPECT_EQ(s.refresh_failures_total, 2u);
  EXPECT_EQ(reg_->Resolve(100, kCPath)->container_name, "nginx");
}

TEST_F(RegistryTest, WhenKnownAnswersAtOnceForKnownCgroups) {
  sandboxes_ = {Sandbox()};
  containers_ = {Container()};
  Make();
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  int calls = 0;
  reg_->WhenKnown(100, kCPath, now_ + absl::Seconds(5),
                  [&](std::shared_ptr<const WorkloadIdentity> id, bool known) {
                    ++calls;
                    EXPECT_TRUE(known);
                    EXPECT_EQ(id->container_name, "nginx");
                  });
  EXPECT_EQ(calls, 1);
}

TEST_F(RegistryTest, WhenKnownEnrichesOnTheRefreshThatLearnsTheContainer) {
  Make();
  int calls = 0;
  std::string name;
  reg_->WhenKnown(100, kCPath, now_ + absl::Seconds(5),
                  [&](std::shared_ptr<const WorkloadIdentity> id, bool known) {
                    ++calls;
                    EXPECT_TRUE(known);
                    name = id->container_name;
                  });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(reg_->stats().pending_enrichments, 1u);
  ASSERT_TRUE(reg_->RefreshOnce().ok());  // runtime does not know it yet
  EXPECT_EQ(calls, 0);
  sandboxes_ = {Sandbox()};
  containers_ = {Container()};
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(name, "nginx");
  EXPECT_EQ(reg_->stats().pending_enrichments, 0u);
  EXPECT_EQ(reg_->stats().enrichments_known_total, 1u);
}

TEST_F(RegistryTest, WhenKnownGivesUpAtTheDeadlineWithPathOnlyIdentity) {
  Make();
  int calls = 0;
  reg_->WhenKnown(100, kCPath, now_ + absl::Seconds(2),
                  [&](std::shared_ptr<const WorkloadIdentity> id, bool known) {
                    ++calls;
                    EXPECT_FALSE(known);
                    EXPECT_EQ(id->cgroup_path, kCPath);
                    EXPECT_EQ(id->pod_uid, kUid);
                  });
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  EXPECT_EQ(calls, 0);
  now_ += absl::Seconds(3);
  up_ = false;  // also settles when the runtime is down
  EXPECT_FALSE(reg_->RefreshOnce().ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(reg_->stats().enrichments_expired_total, 1u);
}

TEST_F(RegistryTest, WhenKnownGivesUpAfterMaxAttempts) {
  ContainerRegistry::Options opts;
  opts.max_enrichment_attempts = 3;
  Make(opts);
  int calls = 0;
  reg_->WhenKnown(100, kCPath, absl::InfiniteFuture(),
                  [&](std::shared_ptr<const WorkloadIdentity>, bool known) {
                    ++calls;
                    EXPECT_FALSE(known);
                  });
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  EXPECT_EQ(calls, 1);
}

TEST_F(RegistryTest, WhenKnownQueueIsBoundedAndOverflowIsAnsweredPathOnly) {
  ContainerRegistry::Options opts;
  opts.max_pending = 2;
  Make(opts);
  int known_calls = 0, unknown_calls = 0;
  auto cb = [&](std::shared_ptr<const WorkloadIdentity>, bool known) {
    (known ? known_calls : unknown_calls)++;
  };
  for (uint64_t i = 0; i < 5; ++i) {
    reg_->WhenKnown(200 + i, kPodPath + "/" + std::string(64, 'c' + 0), absl::InfiniteFuture(), cb);
  }
  EXPECT_EQ(unknown_calls, 3);
  EXPECT_EQ(reg_->stats().pending_enrichments, 2u);
  EXPECT_EQ(reg_->stats().enrichments_dropped_total, 3u);
}

TEST_F(RegistryTest, RuntimeReportedCgroupsPathAttributesParentsOutsideKubepods) {
  sandboxes_ = {Sandbox()};
  containers_ = {Container()};
  Make();
  ON_CALL(*cri_, ContainerStatus(_, _)).WillByDefault([](absl::string_view id, bool) {
    CriContainerStatus st;
    st.id = std::string(id);
    st.cgroups_path = "/custom/parent/web";
    return absl::StatusOr<CriContainerStatus>(st);
  });
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  auto id = reg_->Resolve(300, "/custom/parent/web/sub");
  EXPECT_EQ(id->container_name, "nginx");
  EXPECT_EQ(id->pod_name, "web-7d9f");
  EXPECT_EQ(reg_->stats().status_calls_total, 1u);
  ASSERT_TRUE(reg_->RefreshOnce().ok());  // status is asked once per container
  EXPECT_EQ(reg_->stats().status_calls_total, 1u);
}

TEST_F(RegistryTest, ContainerStatusFailureIsCountedAndRetried) {
  sandboxes_ = {Sandbox()};
  containers_ = {Container()};
  Make();
  EXPECT_CALL(*cri_, ContainerStatus(_, true))
      .WillOnce(Return(absl::NotFoundError("gone")))
      .WillOnce(Return(CriContainerStatus{}));
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  RegistryStats s = reg_->stats();
  EXPECT_EQ(s.status_calls_total, 2u);
  EXPECT_EQ(s.status_failures_total, 1u);
}

TEST_F(RegistryTest, MalformedKubepodsPathIsCountedAndNamedByPath) {
  Make();
  auto id = reg_->Resolve(400, "/kubepods/burstable/notapod");
  EXPECT_EQ(id->cgroup_path, "/kubepods/burstable/notapod");
  EXPECT_EQ(id->pod_uid, "");
  EXPECT_EQ(reg_->stats().path_parse_failures_total, 1u);
}

TEST_F(RegistryTest, RestartedPodPrefersTheNewestReadySandbox) {
  CriPodSandbox old_sb = Sandbox();
  old_sb.id = std::string(64, 'd');
  old_sb.ready = false;
  old_sb.created_at_ns = 1;
  old_sb.labels["app"] = "old";
  CriPodSandbox new_sb = Sandbox();
  new_sb.created_at_ns = 2;
  sandboxes_ = {old_sb, new_sb};
  Make();
  ASSERT_TRUE(reg_->RefreshOnce().ok());
  EXPECT_THAT(reg_->Resolve(103, kPodPath)->labels,
              ElementsAre(Pair("app", "web"), Pair("tier", "front")));
}

TEST(ContainerRegistryThread, BackgroundRefreshEnrichesPendingEventsQuickly) {
  auto mock = std::make_unique<NiceMock<MockCriClient>>();
  std::atomic<int> lists{0};
  ON_CALL(*mock, ListPodSandbox()).WillByDefault([&] {
    return absl::StatusOr<std::vector<CriPodSandbox>>(
        lists.load() >= 1 ? std::vector<CriPodSandbox>{Sandbox()} : std::vector<CriPodSandbox>{});
  });
  ON_CALL(*mock, ListContainers()).WillByDefault([&] {
    return absl::StatusOr<std::vector<CriContainer>>(lists.fetch_add(1) >= 1
                                                         ? std::vector<CriContainer>{Container()}
                                                         : std::vector<CriContainer>{});
  });
  ContainerRegistry::Options opts;
  opts.mode = ContainerRegistry::Mode::kCri;
  opts.refresh_interval = absl::Hours(1);  // only wake-ups can make it refresh in time
  opts.min_refresh_gap = absl::Milliseconds(10);
  auto reg = ContainerRegistry::Create(opts, std::move(mock));
  ASSERT_TRUE(reg.ok());
  // The first (startup) refresh sees nothing; wait for it.
  for (int i = 0; i < 200 && lists.load() < 1; ++i) absl::SleepFor(absl::Milliseconds(5));
  absl::Notification done;
  std::string name;
  (*reg)->WhenKnown(100, kCPath, absl::Now() + absl::Seconds(10),
                    [&](std::shared_ptr<const WorkloadIdentity> id, bool known) {
                      if (known) name = id->container_name;
                      done.Notify();
                    });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(name, "nginx");
}

TEST(CreateContainerRegistry, NoSocketOnAPlainHostMeansPathOnlyMode) {
  ContainerRegistry::Options o;
  o.mode = ContainerRegistry::Mode::kCri;
  auto reg = CreateContainerRegistry("", o, "/nonexistent-root-for-test");
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ((*reg)->mode(), ContainerRegistry::Mode::kNoRuntime);
}

TEST(CreateContainerRegistry, ExplicitEndpointIsUsedEvenWhenTheRuntimeIsNotUpYet) {
  ContainerRegistry::Options o;
  o.mode = ContainerRegistry::Mode::kCri;
  o.start_thread = false;
  auto reg = CreateContainerRegistry("/nonexistent-dir-for-test/cri.sock", o);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ((*reg)->mode(), ContainerRegistry::Mode::kCri);
  EXPECT_FALSE((*reg)->RefreshOnce().ok());
  EXPECT_EQ((*reg)->stats().refresh_failures_total, 1u);
  EXPECT_EQ(CreateContainerRegistry("tcp://x", o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tapio::attrib
