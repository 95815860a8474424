#include "agent/attrib/cri_client.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace tapio::attrib {
namespace {

std::string Fixture(const std::string& name) {
  std::ifstream f("tests/fixtures/attrib/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(ParseVerboseInfo, ContainerdInfoGivesPidAndCgroupsPath) {
  std::string json = Fixture("containerd_status_info.json");
  ASSERT_FALSE(json.empty());
  CriContainerStatus st;
  ASSERT_TRUE(ParseVerboseInfo(json, &st).ok());
  EXPECT_EQ(st.pid, 31337u);
  EXPECT_EQ(st.cgroups_path,
            "/kubepods/burstable/pod5e3f7a1c-2b4d-4e6f-8a9b-0c1d2e3f4a5b/"
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
}

TEST(ParseVerboseInfo, SystemdStyleCgroupsPathIsKeptVerbatim) {
  CriContainerStatus st;
  ASSERT_TRUE(
      ParseVerboseInfo(
          R"({"pid": 5, "runtimeSpec": {"linux": {"cgroupsPath": "kubepods-pod1.slice:cri-containerd:abc"}}})",
          &st)
          .ok());
  EXPECT_EQ(st.cgroups_path, "kubepods-pod1.slice:cri-containerd:abc");
}

TEST(ParseVerboseInfo, MissingFieldsAreLeftUnset) {
  CriContainerStatus st;
  ASSERT_TRUE(ParseVerboseInfo("{}", &st).ok());
  EXPECT_EQ(st.pid, 0u);
  EXPECT_EQ(st.cgroups_path, "");
}

TEST(ParseVerboseInfo, MalformedInputNamesTheField) {
  CriContainerStatus st;
  EXPECT_EQ(ParseVerboseInfo("{\"pid\":", &st).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseVerboseInfo("[1,2]", &st).code(), absl::StatusCode::kInvalidArgument);
  absl::Status s = ParseVerboseInfo(R"({"pid": "12"})", &st);
  EXPECT_NE(s.message().find("'pid'"), std::string::npos) << s;
  s = ParseVerboseInfo(R"({"pid": -3})", &st);
  EXPECT_NE(s.message().find("'pid'"), std::string::npos) << s;
  s = ParseVerboseInfo(R"({"runtimeSpec": {"linux": {"cgroupsPath": 7}}})", &st);
  EXPECT_NE(s.message().find("cgroupsPath"), std::string::npos) << s;
  s = ParseVerboseInfo(R"({"runtimeSpec": 1})", &st);
  EXPECT_NE(s.message().find("runtimeSpec"), std::string::npos) << s;
}

TEST(FindCriEndpoint, ExplicitEndpointFormsAreNormalized) {
  EXPECT_EQ(*FindCriEndpoint("/run/x.sock"), "unix:///run/x.sock");
  EXPECT_EQ(*FindCriEndpoint("unix:///run/x.sock"), "unix:///run/x.sock");
  EXPECT_EQ(*FindCriEndpoint("unix:/run/x.sock"), "unix:///run/x.sock");
  EXPECT_EQ(FindCriEndpoint("tcp://1.2.3.4:1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FindCriEndpoint("relative.sock").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FindCriEndpoint, NoSocketUnderRootIsNotFound) {
  EXPECT_EQ(FindCriEndpoint("", "/nonexistent-root-for-test").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(GrpcCriClient, RejectsNonUnixEndpoints) {
  GrpcCriClient::Options o;
  o.endpoint = "dns:///localhost:1234";
  EXPECT_EQ(GrpcCriClient::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GrpcCriClient, DeadRuntimeFailsFastWithUnavailable) {
  GrpcCriClient::Options o;
  o.endpoint = "unix:///nonexistent-dir-for-test/cri.sock";
  o.call_timeout = absl::Milliseconds(500);
  auto c = GrpcCriClient::Create(o);
  ASSERT_TRUE(c.ok());
  absl::Time start = absl::Now();
  auto v = (*c)->Version();
  EXPECT_FALSE(v.ok());
  EXPECT_TRUE(v.status().code() == absl::StatusCode::kUnavailable ||
              v.status().code() == absl::StatusCode::kDeadlineExceeded)
      << v.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace tapio::attrib
