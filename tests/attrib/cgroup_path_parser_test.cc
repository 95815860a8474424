#include "agent/attrib/cgroup_path_parser.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tapio::attrib {
namespace {

constexpr char kId[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
constexpr char kUid[] = "5e3f7a1c-2b4d-4e6f-8a9b-0c1d2e3f4a5b";
constexpr char kUidUnderscore[] = "5e3f7a1c_2b4d_4e6f_8a9b_0c1d2e3f4a5b";

struct Case {
  std::string name;
  std::string path;
  CgroupKind kind;
  ContainerRuntime runtime;
  std::string container_id;
  std::string pod_uid;
  std::string qos;
  std::string container_cgroup;
  bool nested;
};

std::string S(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) out += p;
  return out;
}

class ValidPaths : public ::testing::TestWithParam<Case> {};

TEST_P(ValidPaths, ParsesIdentityFromLayout) {
  const Case& c = GetParam();
  absl::StatusOr<CgroupPathInfo> info = ParseCgroupPath(c.path);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->kind, c.kind);
  EXPECT_EQ(info->runtime, c.runtime);
  EXPECT_EQ(info->container_id, c.container_id);
  EXPECT_EQ(info->pod_uid, c.pod_uid);
  EXPECT_EQ(info->qos_class, c.qos);
  EXPECT_EQ(info->container_cgroup_path, c.container_cgroup);
  EXPECT_EQ(info->nested, c.nested);
}

const std::string kBurstPod = S({"/kubepods/burstable/pod", kUid});
const std::string kSysPod = S(
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod", kUidUnderscore, ".slice"});

INSTANTIATE_TEST_SUITE_P(
    Layouts, ValidPaths,
    ::testing::Values(
        Case{"CgroupfsBurstable", S({kBurstPod, "/", kId}), CgroupKind::kContainer,
             ContainerRuntime::kUnknown, kId, kUid, "burstable", S({kBurstPod, "/", kId}), false},
        Case{"CgroupfsGuaranteed", S({"/kubepods/pod", kUid, "/", kId}), CgroupKind::kContainer,
             ContainerRuntime::kUnknown, kId, kUid, "guaranteed",
             S({"/kubepods/pod", kUid, "/", kId}), false},
        Case{"CgroupfsBestEffort", S({"/kubepods/besteffort/pod", kUid, "/", kId}),
             CgroupKind::kContainer, ContainerRuntime::kUnknown, kId, kUid, "besteffort",
             S({"/kubepods/besteffort/pod", kUid, "/", kId}), false},
        Case{"CgroupfsCrio", S({kBurstPod, "/crio-", kId}), CgroupKind::kContainer,
             ContainerRuntime::kCrio, kId, kUid, "burstable", S({kBurstPod, "/crio-", kId}), false},
        Case{"CgroupfsCrunNestedChild", S({kBurstPod, "/", kId, "/container"}),
             CgroupKind::kContainer, ContainerRuntime::kUnknown, kId, kUid, "burstable",
             S({kBurstPod, "/", kId}), true},
        Case{"CgroupfsDeeplyNested", S({kBurstPod, "/", kId, "/a/b/c"}), CgroupKind::kContainer,
             ContainerRuntime::kUnknown, kId, kUid, "burstable", S({kBurstPod, "/", kId}), true},
        Case{"CgroupfsPodLevel", kBurstPod, CgroupKind::kPod, ContainerRuntime::kUnknown, "", kUid,
             "burstable", "", false},
        Case{"CgroupfsPrefixedByNodeCgroup", S({"/docker/abc/kubepods/pod", kUid, "/", kId}),
             CgroupKind::kContainer, ContainerRuntime::kUnknown, kId, kUid, "guaranteed",
             S({"/docker/abc/kubepods/pod", kUid, "/", kId}), false},
        Case{"CgroupfsStaticPodMd5Uid",
             "/kubepods/burstable/pod0123456789abcdef0123456789abcdef/" + std::string(kId),
             CgroupKind::kContainer, ContainerRuntime::kUnknown, kId,
             "0123456789abcdef0123456789abcdef", "burstable",
             "/kubepods/burstable/pod0123456789abcdef0123456789abcdef/" + std::string(kId), false},
        Case{"SystemdContainerd", S({kSysPod, "/cri-containerd-", kId, ".scope"}),
             CgroupKind::kContainer, ContainerRuntime::kContainerd, kId, kUid, "burstable",
             S({kSysPod, "/cri-containerd-", kId, ".scope"}), false},
        Case{"SystemdCrio", S({kSysPod, "/crio-", kId, ".scope"}), CgroupKind::kContainer,
             ContainerRuntime::kCrio, kId, kUid, "burstable", S({kSysPod, "/crio-", kId, ".scope"}),
             false},
        Case{"SystemdDocker", S({kSysPod, "/docker-", kId, ".scope"}), CgroupKind::kContainer,
             ContainerRuntime::kDocker, kId, kUid, "burstable",
             S({kSysPod, "/docker-", kId, ".scope"}), false},
        Case{"SystemdCrunNested", S({kSysPod, "/crio-", kId, ".scope/container"}),
             CgroupKind::kContainer, ContainerRuntime::kCrio, kId, kUid, "burstable",
             S({kSysPod, "/crio-", kId, ".scope"}), true},
        Case{"SystemdGuaranteed",
             S({"/kubepods.slice/kubepods-pod", kUidUnderscore, ".slice/cri-containerd-", kId,
                ".scope"}),
             CgroupKind::kContainer, ContainerRuntime::kContainerd, kId, kUid, "guaranteed",
             S({"/kubepods.slice/kubepods-pod", kUidUnderscore, ".slice/cri-containerd-", kId,
                ".scope"}),
             false},
        Case{"SystemdBestEffortPodLevel",
             S({"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod", kUidUnderscore,
                ".slice"}),
             CgroupKind::kPod, ContainerRuntime::kUnknown, "", kUid, "besteffort", "", false},
        Case{"SystemdCrioConmonBelongsToPod", S({kSysPod, "/crio-conmon-", kId, ".scope"}),
             CgroupKind::kPod, ContainerRuntime::kCrio, "", kUid, "burstable", "", true},
        Case{
            "UppercaseIdIsLowered",
            S({kBurstPod, "/", "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"}),
            CgroupKind::kContainer, ContainerRuntime::kUnknown, kId, kUid, "burstable",
            S({kBurstPod, "/0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"}),
            false},
        Case{"HostCgroup", "/system.slice/sshd.service", CgroupKind::kNotKubernetes,
             ContainerRuntime::kUnknown, "", "", "", "", false},
        Case{"Root", "/", CgroupKind::kNotKubernetes, ContainerRuntime::kUnknown, "", "", "", "",
             false},
        Case{"KubepodsRoot", "/kubepods", CgroupKind::kQosLevel, ContainerRuntime::kUnknown, "", "",
             "", "", false},
        Case{"QosLevel", "/kubepods/burstable", CgroupKind::kQosLevel, ContainerRuntime::kUnknown,
             "", "", "burstable", "", false},
        Case{"SystemdQosLevel", "/kubepods.slice/kubepods-besteffort.slice", CgroupKind::kQosLevel,
             ContainerRuntime::kUnknown, "", "", "besteffort", "", false},
        Case{"DoubleSlashesIgnored", S({"//kubepods//burstable//pod", kUid, "//", kId}),
             CgroupKind::kContainer, ContainerRuntime::kUnknown, kId, kUid, "burstable",
             S({kBurstPod, "/", kId}), false}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

struct BadCase {
  std::string name;
  std::string path;
  std::string component;  // must be named in the error
};

class MalformedPaths : public ::testing::TestWithParam<BadCase> {};

TEST_P(MalformedPaths, AreRejectedNamingTheComponent) {
  absl::StatusOr<CgroupPathInfo> info = ParseCgroupPath(GetParam().path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(info.status().message().find("'" + GetParam().component + "'"), std::string::npos)
      << info.status();
}

INSTANTIATE_TEST_SUITE_P(
    Bad, MalformedPaths,
    ::testing::Values(BadCase{"NotAPodComponent", "/kubepods/burstable/notapod", "notapod"},
                      BadCase{"EmptyPodUid", "/kubepods/pod/abc", "pod"},
                      BadCase{"NonHexPodUid", "/kubepods/podxyz-123", "podxyz-123"},
                      BadCase{"NonHexContainerId", S({kBurstPod, "/not-a-container"}),
                              "not-a-container"},
                      BadCase{"ShortContainerId", S({kBurstPod, "/abc123"}), "abc123"},
                      BadCase{"SystemdPodWithoutSlice",
                              S({"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod",
                                 kUidUnderscore}),
                              S({"kubepods-burstable-pod", kUidUnderscore})},
                      BadCase{"SystemdQosMismatch",
                              S({"/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod",
                                 kUidUnderscore, ".slice"}),
                              S({"kubepods-besteffort-pod", kUidUnderscore, ".slice"})},
                      BadCase{"SystemdUnknownScope", S({kSysPod, "/runc-", kId, ".scope"}),
                              S({"runc-", kId, ".scope"})},
                      BadCase{"SystemdScopeWithoutSuffix", S({kSysPod, "/cri-containerd-", kId}),
                              S({"cri-containerd-", kId})}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(CgroupPathParser, PodCgroupPathIsThePrefixUpToThePod) {
  absl::StatusOr<CgroupPathInfo> info = ParseCgroupPath(S({kBurstPod, "/", kId, "/container"}));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->pod_cgroup_path, kBurstPod);
}

TEST(CgroupPathParser, RuntimeNames) {
  EXPECT_EQ(ContainerRuntimeName(ContainerRuntime::kContainerd), "containerd");
  EXPECT_EQ(ContainerRuntimeName(ContainerRuntime::kCrio), "cri-o");
  EXPECT_EQ(ContainerRuntimeName(ContainerRuntime::kDocker), "docker");
  EXPECT_EQ(ContainerRuntimeName(ContainerRuntime::kUnknown), "unknown");
}

}  // namespace
}  // namespace tapio::attrib
