// Attribution against a real containerd (Debian's 1.6), pods created through Tapio's own CRI
// client with kubelet-style labels and cgroup parents. LABEL e2e: needs root, containerd, runc,
// gcc (static images are built at start).
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/attrib/container_registry.h"
#include "agent/attrib/cri_client.h"
#include "e2e/containerd/containerd_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tapio::attrib {
namespace {

using ::tapio::e2e::CgroupInode;
using ::tapio::e2e::CgroupPathOfPid;
using ::tapio::e2e::ContainerdFixture;
using ::testing::Contains;
using ::testing::Pair;

constexpr char kUnified[] = "/sys/fs/cgroup/unified";
constexpr char kMemoryV1[] = "/sys/fs/cgroup/memory";

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s;
}

class ContainerdE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fx = ContainerdFixture::Start({});
    ASSERT_TRUE(fx.ok()) << fx.status();
    fx_ = *std::move(fx);
  }

  std::unique_ptr<ContainerRegistry> MakeRegistry(absl::Duration refresh = absl::Seconds(1)) {
    GrpcCriClient::Options co;
    co.endpoint = fx_->endpoint();
    co.call_timeout = absl::Seconds(2);
    auto cri = GrpcCriClient::Create(co);
    EXPECT_TRUE(cri.ok());
    ContainerRegistry::Options ro;
    ro.mode = ContainerRegistry::Mode::kCri;
    ro.refresh_interval = refresh;
    ro.min_refresh_gap = absl::Milliseconds(20);
    ro.initial_backoff = absl::Milliseconds(200);
    ro.max_backoff = absl::Seconds(1);
    auto reg = ContainerRegistry::Create(ro, *std::move(cri));
    EXPECT_TRUE(reg.ok()) << reg.status();
    return reg.ok() ? *std::move(reg) : nullptr;
  }

  // Waits for the registry to know the cgroup; returns the identity (known or not).
  static std::pair<std::shared_ptr<const WorkloadIdentity>, bool> WaitKnown(
      ContainerRegistry& reg, uint64_t cgroup_id, const std::string& path,
      absl::Duration timeout = absl::Seconds(10)) {
    struct Result {
      absl::Notification done;
      std::shared_ptr<const WorkloadIdentity> id;
      bool known = false;
    };
    auto r = std::make_shared<Result>();
    reg.WhenKnown(cgroup_id, path, absl::Now() + timeout,
                  [r](std::shared_ptr<const WorkloadIdentity> id, bool known) {
                    r->id = std::move(id);
                    r->known = known;
                    r->done.Notify();
                  });
    r->done.WaitForNotificationWithTimeout(timeout + absl::Seconds(5));
    return {r->id, r->known};
  }

  std::unique_ptr<ContainerdFixture> fx_;
};

TEST_F(ContainerdE2eTest, OwnCriClientSpeaksToContainerd) {
  auto v = fx_->cri().Version();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->runtime_name, "containerd");
  EXPECT_EQ(v->runtime_api_version, "v1");
}

TEST_F(ContainerdE2eTest, ContainerCgroupInBothHierarchiesResolvesToItsPod) {
  auto pod = fx_->RunPod("web-1", "e2e-ns", "burstable", {{"app", "web"}});
  ASSERT_TRUE(pod.ok()) << pod.status();
  auto cid = fx_->StartContainer(*pod, "mem", {"hold", "16"}, 128 << 20);
  ASSERT_TRUE(cid.ok()) << cid.status();

  auto st = fx_->cri().ContainerStatus(*cid, /*verbose=*/true);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->state, CriContainerState::kRunning);
  ASSERT_GT(st->pid, 0u);
  const std::string expected_path = pod->cgroup_parent + "/" + *cid;
  EXPECT_EQ(st->cgroups_path, expected_path);
  EXPECT_EQ(st->labels.at(std::string(kLabelContainerName)), "mem");

  auto v1 = CgroupPathOfPid(st->pid, "memory");
  auto v2 = CgroupPathOfPid(st->pid, "");
  ASSERT_TRUE(v1.ok()) << v1.status();
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(*v1, expected_path);
  EXPECT_EQ(*v2, expected_path);
  // The memory limit went through our CRI subset (LinuxContainerResources field 4).
  EXPECT_EQ(ReadFile(std::string(kMemoryV1) + *v1 + "/memory.limit_in_bytes"),
            absl::StrCat(128 << 20, "\n"));

  auto reg = MakeRegistry();
  ASSERT_NE(reg, nullptr);
  for (auto [root, path] : {std::pair<const char*, std::string>{kUnified, *v2}, {kMemoryV1, *v1}}) {
    auto ino = CgroupInode(root, path);
    ASSERT_TRUE(ino.ok()) << ino.status();
    auto [id, known] = WaitKnown(*reg, *ino, path);
    ASSERT_NE(id, nullptr);
    EXPECT_TRUE(known) << root;
    EXPECT_EQ(id->cgroup_id, *ino);
    EXPECT_EQ(id->container_id, *cid);
    EXPECT_EQ(id->container_name, "mem");
    EXPECT_EQ(id->pod_name, "web-1");
    EXPECT_EQ(id->pod_namespace, "e2e-ns");
    EXPECT_EQ(id->pod_uid, pod->uid);
    EXPECT_EQ(id->qos_class, "burstable");
    EXPECT_THAT(id->labels, Contains(Pair("app", "web")));
  }

  // The sandbox (pause) container and the pod-level cgroup.
  const std::string sandbox_path = pod->cgroup_parent + "/" + pod->sandbox_id;
  auto sb_ino = CgroupInode(kUnified, sandbox_path);
  ASSERT_TRUE(sb_ino.ok()) << sb_ino.status();
  auto sb = reg->Resolve(*sb_ino, sandbox_path);
  EXPECT_EQ(sb->container_name, "POD");
  EXPECT_EQ(sb->pod_name, "web-1");
  auto pod_ino = CgroupInode(kUnified, pod->cgroup_parent);
  ASSERT_TRUE(pod_ino.ok());
  auto pod_id = reg->Resolve(*pod_ino, pod->cgroup_parent);
  EXPECT_EQ(pod_id->container_id, "");
  EXPECT_EQ(pod_id->pod_name, "web-1");
  EXPECT_EQ(pod_id->pod_namespace, "e2e-ns");

  ASSERT_TRUE(fx_->RemovePod(*pod).ok());
  struct stat s;
  EXPECT_NE(::stat((std::string(kMemoryV1) + pod->cgroup_parent).c_str(), &s), 0);
  EXPECT_NE(::stat((std::string(kUnified) + pod->cgroup_parent).c_str(), &s), 0);
}

TEST_F(ContainerdE2eTest, AllocatingContainerIsOomKilledAndStaysAttributedAfterRemoval) {
  auto pod = fx_->RunPod("hog-1", "e2e-ns", "burstable");
  ASSERT_TRUE(pod.ok()) << pod.status();
  auto reg = MakeRegistry(absl::Milliseconds(200));
  ASSERT_NE(reg, nullptr);
  auto cid = fx_->StartContainer(*pod, "hog", {"hog", "4"}, 64 << 20);
  ASSERT_TRUE(cid.ok()) << cid.status();
  const std::string path = pod->cgroup_parent + "/" + *cid;
  auto [id, known] = WaitKnown(*reg, 4242, path);  // id as a BPF event would carry it
  EXPECT_TRUE(known);

  absl::StatusOr<CriContainerStatus> st;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    st = fx_->cri().ContainerStatus(*cid, false);
    ASSERT_TRUE(st.ok()) << st.status();
    if (st->state == CriContainerState::kExited) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  ASSERT_EQ(st->state, CriContainerState::kExited);
  EXPECT_EQ(st->reason, "OOMKilled");
  EXPECT_EQ(st->exit_code, 137);

  // OOM events race teardown: after the container is removed it still resolves.
  ASSERT_TRUE(fx_->cri().StopContainer(*cid, 0).ok());
  ASSERT_TRUE(fx_->cri().RemoveContainer(*cid).ok());
  ASSERT_TRUE(reg->RefreshOnce().ok());
  auto after = reg->Resolve(4243, path);
  EXPECT_EQ(after->container_name, "hog");
  EXPECT_EQ(after->pod_name, "hog-1");
  EXPECT_GE(reg->stats().retained_deleted, 1u);
  ASSERT_TRUE(fx_->RemovePod(*pod).ok());
}

TEST_F(ContainerdE2eTest, RegistrySurvivesContainerdRestartAndAttributesNewPods) {
  auto reg = MakeRegistry(absl::Milliseconds(200));
  ASSERT_NE(reg, nullptr);
  auto pod = fx_->RunPod("before-1", "e2e-ns");
  ASSERT_TRUE(pod.ok()) << pod.status();
  auto cid = fx_->StartContainer(*pod, "app", {"sleep"});
  ASSERT_TRUE(cid.ok()) << cid.status();
  const std::string path = pod->cgroup_parent + "/" + *cid;
  ASSERT_TRUE(WaitKnown(*reg, 1, path).second);

  ASSERT_TRUE(fx_->Kill().ok());
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline && reg->stats().consecutive_failures < 2) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  RegistryStats down = reg->stats();
  EXPECT_FALSE(down.runtime_up);
  EXPECT_GE(down.refresh_failures_total, 2u);
  EXPECT_GT(down.current_backoff_ms, 0);
  EXPECT_EQ(reg->Resolve(1, path)->pod_name, "before-1");  // what it knew, it still knows
  // A cgroup it has never seen gets a path-only identity while the runtime is down.
  const std::string unknown = pod->cgroup_parent + "/" + std::string(64, 'e');
  auto path_only = reg->Resolve(2, unknown);
  EXPECT_EQ(path_only->container_name, "");
  EXPECT_EQ(path_only->pod_uid, pod->uid);

  ASSERT_TRUE(fx_->Restart().ok());
  auto pod2 = fx_->RunPod("after-1", "e2e-ns");
  ASSERT_TRUE(pod2.ok()) << pod2.status();
  auto cid2 = fx_->StartContainer(*pod2, "app", {"sleep"});
  ASSERT_TRUE(cid2.ok()) << cid2.status();
  auto [id2, known2] = WaitKnown(*reg, 3, pod2->cgroup_parent + "/" + *cid2, absl::Seconds(15));
  EXPECT_TRUE(known2);
  EXPECT_EQ(id2->pod_name, "after-1");
  EXPECT_EQ(id2->container_name, "app");
  EXPECT_TRUE(reg->stats().runtime_up);
  EXPECT_EQ(reg->stats().consecutive_failures, 0u);
  // The pod from before the restart survived it (shims kept running) and is still attributed.
  EXPECT_EQ(reg->Resolve(1, path)->pod_name, "before-1");
  EXPECT_TRUE(fx_->RemovePod(*pod).ok());
  EXPECT_TRUE(fx_->RemovePod(*pod2).ok());
}

TEST_F(ContainerdE2eTest, TwoHundredContainersAreAllAttributed) {
  constexpr int kPods = 20;
  constexpr int kPerPod = 10;
  auto reg = MakeRegistry(absl::Seconds(5));  // wake-ups, not the interval, must do the work
  ASSERT_NE(reg, nullptr);
  const size_t mem_before = reg->ApproximateMemoryBytes();

  struct Sample {
    std::string path, pod, container;
    absl::Time started;
    absl::Time known_at = absl::InfinitePast();
    std::shared_ptr<const WorkloadIdentity> id;
    bool known = false;
  };
  absl::Mutex mu;
  std::vector<std::unique_ptr<Sample>> samples;
  std::vector<ContainerdFixture::Pod> pods(kPods);
  std::atomic<int> next{0}, failures{0}, answered{0};
  auto worker = [&] {
    for (int p; (p = next.fetch_add(1)) < kPods;) {
      auto pod = fx_->RunPod(absl::StrCat("scale-", p), "e2e-scale");
      if (!pod.ok()) {
        ++failures;
        continue;
      }
      pods[p] = *pod;
      for (int c = 0; c < kPerPod; ++c) {
        std::string name = absl::StrCat("c", c);
        auto cid = fx_->StartContainer(*pod, name, {"sleep"});
        if (!cid.ok()) {
          ++failures;
          continue;
        }
        auto s = std::make_unique<Sample>();
        s->path = pod->cgroup_parent + "/" + *cid;
        s->pod = pod->name;
        s->container = name;
        s->started = absl::Now();
        Sample* raw = s.get();
        {
          absl::MutexLock l(&mu);
          samples.push_back(std::move(s));
        }
        reg->WhenKnown(1000 + p * 100 + c, raw->path, absl::Now() + absl::Seconds(60),
                       [raw, &answered](std::shared_ptr<const WorkloadIdentity> id, bool known) {
                         raw->known_at = absl::Now();
                         raw->id = std::move(id);
                         raw->known = known;
                         ++answered;
                       });
      }
    }
  };
  const absl::Time t0 = absl::Now();
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  const absl::Duration create_time = absl::Now() - t0;
  EXPECT_EQ(failures.load(), 0);
  absl::Time deadline = absl::Now() + absl::Seconds(70);
  while (answered.load() < static_cast<int>(samples.size()) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(answered.load(), kPods * kPerPod);

  std::vector<double> latency_ms;
  int correct = 0;
  for (const auto& s : samples) {
    EXPECT_TRUE(s->known) << s->path;
    if (s->known && s->id->pod_name == s->pod && s->id->container_name == s->container &&
        s->id->pod_namespace == "e2e-scale") {
      ++correct;
    }
    latency_ms.push_back(absl::ToDoubleMilliseconds(s->known_at - s->started));
  }
  EXPECT_EQ(correct, kPods * kPerPod);
  // Every cgroup, resolved again from the cache.
  for (size_t i = 0; i < samples.size(); ++i) {
    auto id = reg->Resolve(5000 + i, samples[i]->path);
    EXPECT_EQ(id->container_name, samples[i]->container);
  }
  std::sort(latency_ms.begin(), latency_ms.end());
  auto pct = [&](double q) {
    return latency_ms[std::min(latency_ms.size() - 1, static_cast<size_t>(q * latency_ms.size()))];
  };
  RegistryStats st = reg->stats();
  const size_t mem_after = reg->ApproximateMemoryBytes();

  // Cold path: a container appears while the registry is idle (5 s interval, no wake-up
  // pending); the first event's miss must trigger the refresh that learns it.
  std::vector<double> cold_ms;
  for (int i = 0; i < 10; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    auto cid = fx_->StartContainer(pods[0], absl::StrCat("cold", i), {"sleep"});
    ASSERT_TRUE(cid.ok()) << cid.status();
    absl::Time start = absl::Now();
    auto [id, known] = WaitKnown(*reg, 9000 + i, pods[0].cgroup_parent + "/" + *cid);
    cold_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    EXPECT_TRUE(known);
    EXPECT_EQ(id->container_name, absl::StrCat("cold", i));
  }
  std::sort(cold_ms.begin(), cold_ms.end());
  std::string report = absl::StrFormat(
      "attrib-scale containers=%d pods=%d create_s=%.1f time_to_attribute_ms p50=%.1f p99=%.1f "
      "max=%.1f registry_bytes=%d (before=%d, per_container=%.0f) refreshes=%d status_calls=%d "
      "known_containers=%d sandboxes=%d cached_cgroups=%d cold_miss_ms p50=%.1f max=%.1f",
      static_cast<int>(samples.size()), kPods, absl::ToDoubleSeconds(create_time), pct(0.50),
      pct(0.99), latency_ms.back(), mem_after, mem_before,
      static_cast<double>(mem_after - mem_before) / samples.size(),
      static_cast<int>(st.refreshes_total), static_cast<int>(st.status_calls_total),
      static_cast<int>(st.known_containers), static_cast<int>(st.known_sandboxes),
      static_cast<int>(st.cached_cgroups), cold_ms[cold_ms.size() / 2], cold_ms.back());
  std::cout << report << std::endl;
  RecordProperty("scale", report);
  if (const char* out = std::getenv("TAPIO_ATTRIB_PERF_OUT"))
    std::ofstream(out, std::ios::app) << report << "\n";

  std::atomic<int> next_rm{0}, rm_failures{0};
  std::vector<std::thread> removers;
  for (int i = 0; i < 4; ++i) {
    removers.emplace_back([&] {
      for (int p; (p = next_rm.fetch_add(1)) < kPods;) {
        if (!pods[p].sandbox_id.empty() && !fx_->RemovePod(pods[p]).ok()) ++rm_failures;
      }
    });
  }
  for (auto& t : removers) t.join();
  EXPECT_EQ(rm_failures.load(), 0);
}

}  // namespace
}  // namespace tapio::attrib
