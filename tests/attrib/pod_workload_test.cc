#include "agent/attrib/pod_workload.h"

#include <gtest/gtest.h>

#include <string>

namespace tapio::attrib {
namespace {

using Labels = std::map<std::string, std::string>;

void ExpectWorkload(const PodWorkload& w, const std::string& kind, const std::string& name) {
  EXPECT_EQ(w.kind, kind);
  EXPECT_EQ(w.name, name);
}

TEST(PodWorkloadTest, ADeploymentsPodNamesItsDeployment) {
  ExpectWorkload(WorkloadFromPodLabels("web-7d4b9c8f6d-x2k9p",
                                       {{"app", "web"}, {"pod-template-hash", "7d4b9c8f6d"}}),
                 "Deployment", "web");
  // Dashes inside the Deployment's name stay.
  ExpectWorkload(WorkloadFromPodLabels("api-gateway-v2-5f6c7d8e9a-q7w8z",
                                       {{"pod-template-hash", "5f6c7d8e9a"}}),
                 "Deployment", "api-gateway-v2");
}

TEST(PodWorkloadTest, AHashThatIsNotInTheNameNamesNothing) {
  // A hand-made pod carrying the label, or a name that is not "<rs>-<5 chars>".
  ExpectWorkload(WorkloadFromPodLabels("web-1", {{"pod-template-hash", "7d4b9c8f6d"}}), "", "");
  ExpectWorkload(
      WorkloadFromPodLabels("web-7d4b9c8f6d-x2k9pq", {{"pod-template-hash", "7d4b9c8f6d"}}), "",
      "");
  ExpectWorkload(WorkloadFromPodLabels("web-other-x2k9p", {{"pod-template-hash", "7d4b9c8f6d"}}),
                 "", "");
  ExpectWorkload(WorkloadFromPodLabels("7d4b9c8f6d-x2k9p", {{"pod-template-hash", "7d4b9c8f6d"}}),
                 "", "");
  ExpectWorkload(
      WorkloadFromPodLabels("web-7d4b9c8f6d-X2K9P", {{"pod-template-hash", "7d4b9c8f6d"}}), "", "");
}

TEST(PodWorkloadTest, AGeneratedNameThatMayHaveBeenCutNamesNothing) {
  // generateName keeps 58 characters of "<replicaset>-" and adds 5: from 58 on, the prefix (and
  // with it the Deployment's name) may be cut, so the kubelet's full name would differ.
  const std::string deploy(46, 'd');  // "<46>-<10>-" = 58 characters
  const std::string hash = "7d4b9c8f6d";
  ExpectWorkload(
      WorkloadFromPodLabels(deploy + "-" + hash + "-x2k9p", {{"pod-template-hash", hash}}), "", "");
  const std::string shorter(45, 'd');  // 57: generated from the whole prefix
  ExpectWorkload(
      WorkloadFromPodLabels(shorter + "-" + hash + "-x2k9p", {{"pod-template-hash", hash}}),
      "Deployment", shorter);
}

TEST(PodWorkloadTest, AStatefulSetsPodNamesItsSet) {
  ExpectWorkload(
      WorkloadFromPodLabels("db-main-12", {{"controller-revision-hash", "db-main-6c8f7b5d4"},
                                           {"statefulset.kubernetes.io/pod-name", "db-main-12"}}),
      "StatefulSet", "db-main");
  // The label must be this pod's own name, and the suffix an ordinal.
  ExpectWorkload(
      WorkloadFromPodLabels("db-main-12", {{"statefulset.kubernetes.io/pod-name", "db-0"}}), "",
      "");
  ExpectWorkload(
      WorkloadFromPodLabels("db-main-x", {{"statefulset.kubernetes.io/pod-name", "db-main-x"}}), "",
      "");
}

TEST(PodWorkloadTest, ADaemonSetsPodNamesItsSet) {
  ExpectWorkload(WorkloadFromPodLabels("node-exporter-4mzq7", {{"controller-revision-hash", "6b9c"},
                                                               {"pod-template-generation", "3"}}),
                 "DaemonSet", "node-exporter");
  // controller-revision-hash alone is also a StatefulSet's label: not enough.
  ExpectWorkload(
      WorkloadFromPodLabels("node-exporter-4mzq7", {{"controller-revision-hash", "6b9c"}}), "", "");
}

TEST(PodWorkloadTest, AJobsPodNamesItsJob) {
  ExpectWorkload(WorkloadFromPodLabels("backup-28433520-7xk2p",
                                       {{"batch.kubernetes.io/job-name", "backup-28433520"},
                                        {"job-name", "backup-28433520"}}),
                 "Job", "backup-28433520");
  ExpectWorkload(WorkloadFromPodLabels("migrate-abcde", {{"job-name", "migrate"}}), "Job",
                 "migrate");
}

TEST(PodWorkloadTest, APodWithoutControllerLabelsNamesNothing) {
  ExpectWorkload(WorkloadFromPodLabels("web-1", {{"app", "web"}}), "", "");
  ExpectWorkload(WorkloadFromPodLabels("", {}), "", "");
}

TEST(PodWorkloadTest, AReplicaSetNamesItsDeploymentOnlyWithItsHash) {
  EXPECT_EQ(DeploymentOfReplicaSet("web-7d4b9c8f6d", "7d4b9c8f6d"), "web");
  EXPECT_EQ(DeploymentOfReplicaSet("web-7d4b9c8f6d", ""), "");
  EXPECT_EQ(DeploymentOfReplicaSet("web-7d4b9c8f6d", "5f6c7d8e9a"), "");
  EXPECT_EQ(DeploymentOfReplicaSet("-7d4b9c8f6d", "7d4b9c8f6d"), "");
  EXPECT_EQ(DeploymentOfReplicaSet("web7d4b9c8f6d", "7d4b9c8f6d"), "");
}

}  // namespace
}  // namespace tapio::attrib
