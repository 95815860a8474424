// tapioctl's flag -> request mapping and its output helpers.
#include "cli/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tapio::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(TapioctlFormatTest, AllowFlagsFormOneSelectorAndEachExcludeItsOwn) {
  WatchFlags flags;
  flags.namespaces = {"prod"};
  flags.pods = {"web-*"};
  flags.types = {"oom_kill", "oom_prediction"};
  flags.exclude_namespaces = {"kube-system"};
  flags.exclude_selector = "canary=true";
  flags.min_severity = "warning";
  flags.resume_after = 41;
  auto req = BuildSubscribeRequest(flags);
  ASSERT_TRUE(req.ok()) << req.status();
  ASSERT_EQ(req->allow_size(), 1);
  EXPECT_EQ(req->allow(0).namespaces(0), "prod");
  EXPECT_EQ(req->allow(0).pod_name_patterns(0), "web-*");
  ASSERT_EQ(req->allow(0).event_types_size(), 2);
  EXPECT_EQ(req->allow(0).event_types(0), v1::EVENT_TYPE_OOM_KILL);
  EXPECT_EQ(req->allow(0).event_types(1), v1::EVENT_TYPE_OOM_PREDICTION);
  ASSERT_EQ(req->deny_size(), 2);
  EXPECT_EQ(req->deny(0).namespaces(0), "kube-system");
  EXPECT_EQ(req->deny(1).label_selector(), "canary=true");
  EXPECT_EQ(req->min_severity(), v1::SEVERITY_WARNING);
  ASSERT_TRUE(req->has_resume_after());
  EXPECT_EQ(req->resume_after(), 41u);
}

TEST(TapioctlFormatTest, NoFlagsMeanNoSelectorsAndNoResume) {
  auto req = BuildSubscribeRequest(WatchFlags{});
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->allow_size(), 0);
  EXPECT_EQ(req->deny_size(), 0);
  EXPECT_FALSE(req->has_resume_after());
}

TEST(TapioctlFormatTest, UnknownNamesNameTheFlag) {
  WatchFlags flags;
  flags.types = {"oom"};
  auto req = BuildSubscribeRequest(flags);
  ASSERT_FALSE(req.ok());
  EXPECT_THAT(req.status().message(), HasSubstr("--type"));
  flags.types.clear();
  flags.min_severity = "loud";
  req = BuildSubscribeRequest(flags);
  ASSERT_FALSE(req.ok());
  EXPECT_THAT(req.status().message(), HasSubstr("--min_severity"));
}

TEST(TapioctlFormatTest, HumanBytes) {
  EXPECT_EQ(HumanBytes(512), "512B");
  EXPECT_EQ(HumanBytes(1536), "1.5KiB");
  EXPECT_EQ(HumanBytes(64LL << 20), "64.0MiB");
  EXPECT_EQ(HumanBytes(-(3LL << 20)), "-3.0MiB");
}

TEST(TapioctlFormatTest, JsonLineIsOneLineWithProtoNames) {
  v1::Event e;
  e.set_seq(9);
  e.mutable_oom_kill()->set_victim_pid(5);
  const std::string line = ToJsonLine(e);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_THAT(line, HasSubstr("\"victim_pid\":5"));
  EXPECT_THAT(line, HasSubstr("\"seq\":\"9\""));
  EXPECT_EQ(EventTypeName(e), "oom_kill");
}

TEST(TapioctlFormatTest, LostEventsRowShowsTheGap) {
  v1::Event e;
  auto* lost = e.mutable_events_lost();
  lost->set_source("subscriber_queue");
  lost->set_count(12);
  lost->set_first_seq(100);
  lost->set_last_seq(111);
  EXPECT_THAT(EventTableRow(e), HasSubstr("LOST 12 events (subscriber_queue) seq 100..111"));
}

TEST(TapioctlFormatTest, UsageRowNamesTheRuntimeAndItsHeapCapOnlyWhenThereIsOne) {
  v1::Event e;
  auto* u = e.mutable_memory_usage();
  u->set_usage_bytes(100LL << 20);
  u->set_limit_bytes(256LL << 20);
  EXPECT_THAT(EventTableRow(e), Not(HasSubstr("heap_cap")));
  u->set_runtime("jvm");
  EXPECT_THAT(EventTableRow(e), HasSubstr("limit=256.0MiB jvm heap_cap=unknown"));
  u->set_runtime_heap_cap_bytes(512LL << 20);
  EXPECT_THAT(EventTableRow(e), HasSubstr("limit=256.0MiB jvm heap_cap=512.0MiB"));
}

}  // namespace
}  // namespace tapio::cli
