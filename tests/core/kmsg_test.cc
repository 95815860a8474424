#include "agent/core/kmsg.h"

#include <gtest/gtest.h>

namespace tapio {
namespace {

TEST(KmsgOomLineTest, ParsesMemcgConstraintFromKmsgRecord) {
  auto s = ParseKmsgOomLine(
      "6,1234,5678901,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
      "mems_allowed=0,oom_memcg=/process_api/x/t1,task_memcg=/process_api/x/t1,task=leak,"
      "pid=4242,uid=0\n");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->constraint, OomConstraint::kMemcg);
  EXPECT_EQ(s->oom_memcg, "/process_api/x/t1");
  EXPECT_EQ(s->task_memcg, "/process_api/x/t1");
  EXPECT_EQ(s->task, "leak");
  EXPECT_EQ(s->pid, 4242u);
}

TEST(KmsgOomLineTest, GlobalOomHasNoMemcg) {
  auto s = ParseKmsgOomLine(
      "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
      "task_memcg=/a,task=big,pid=7,uid=0");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->constraint, OomConstraint::kNone);
  EXPECT_EQ(s->oom_memcg, "");
}

TEST(KmsgOomLineTest, IgnoresOtherLinesAndMalformedSummaries) {
  EXPECT_FALSE(ParseKmsgOomLine("6,1,2,-;Out of memory: Killed process 7 (big)").has_value());
  EXPECT_FALSE(ParseKmsgOomLine("oom-kill:constraint=CONSTRAINT_MEMCG,pid=abc").has_value());
  EXPECT_FALSE(ParseKmsgOomLine("oom-kill:constraint=BOGUS,pid=3").has_value());
  EXPECT_FALSE(ParseKmsgOomLine("oom-kill:task=x").has_value());
}

}  // namespace
}  // namespace tapio
