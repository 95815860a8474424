#include "agent/attrib/kubelet_enricher.h"

#include <gtest/gtest.h>

namespace tapio::attrib {
namespace {

std::shared_ptr<const WorkloadIdentity> Container(const std::string& uid, const std::string& name) {
  auto id = std::make_shared<WorkloadIdentity>();
  id->cgroup_id = 7;
  id->pod_uid = uid;
  id->container_name = name;
  id->pod_name = "web-1";
  return id;
}

KubeletPodList Pods(int64_t limit) {
  KubeletPod pod;
  pod.uid = "u1";
  pod.name = "web-1";
  pod.owner_kind = "ReplicaSet";
  pod.owner_name = "web-5d9f";
  pod.workload_kind = "Deployment";
  pod.workload_name = "web";
  KubeletContainer c;
  c.name = "app";
  c.memory_request_bytes = 64 << 20;
  c.memory_limit_bytes = limit;
  pod.containers.push_back(c);
  KubeletPodList list;
  list.pods.push_back(pod);
  return list;
}

TEST(KubeletEnricherTest, JoinsWorkloadAndMemoryRequestsByPodUidAndContainerName) {
  int64_t limit = 128 << 20;
  KubeletPodCache cache([&] { return Pods(limit); });
  ASSERT_TRUE(cache.Refresh().ok());
  KubeletEnricher enricher(&cache);
  auto in = Container("u1", "app");
  auto out = enricher.Enrich(in);
  EXPECT_EQ(out->workload_kind, "Deployment");
  EXPECT_EQ(out->workload_name, "web");
  EXPECT_EQ(out->memory_request_bytes, 64 << 20);
  EXPECT_EQ(out->memory_limit_bytes, 128 << 20);
  EXPECT_EQ(out->pod_name, "web-1");    // the registry's fields are kept
  EXPECT_EQ(enricher.Enrich(in), out);  // same input, same object: no allocation per event

  limit = 256 << 20;  // the pod spec changed; the next refresh is seen
  ASSERT_TRUE(cache.Refresh().ok());
  enricher.OnKubeletRefreshed();
  EXPECT_EQ(enricher.Enrich(in)->memory_limit_bytes, 256 << 20);
}

TEST(KubeletEnricherTest, UnknownPodsAndHostCgroupsPassThroughUnchanged) {
  KubeletPodCache cache([] { return Pods(0); });
  ASSERT_TRUE(cache.Refresh().ok());
  KubeletEnricher enricher(&cache);
  auto other = Container("u2", "app");
  EXPECT_EQ(enricher.Enrich(other), other);
  auto host = std::make_shared<WorkloadIdentity>();
  host->cgroup_path = "/system.slice";
  EXPECT_EQ(enricher.Enrich(host), host);
  EXPECT_EQ(enricher.Enrich(nullptr), nullptr);
}

TEST(KubeletEnricherTest, KubeletDownKeepsTheRegistryIdentity) {
  KubeletPodCache cache([]() -> absl::StatusOr<KubeletPodList> {
    return absl::UnavailableError("connection refused");
  });
  EXPECT_FALSE(cache.Refresh().ok());
  KubeletEnricher enricher(&cache);
  auto in = Container("u1", "app");
  EXPECT_EQ(enricher.Enrich(in), in);
}

}  // namespace
}  // namespace tapio::attrib
