#include "agent/core/process_table.h"

#include <gtest/gtest.h>

namespace tapio {
namespace {

TEST(ProcessTableTest, CountsProcessesPerCgroupThroughMigrationAndExit) {
  ProcessTable table;
  table.Upsert(10, 100, 1, 1, "a");
  table.Upsert(11, 100, 2, 1, "b");
  table.Upsert(12, 200, 3, 1, "c");
  EXPECT_EQ(table.processes_per_cgroup().at(100), 2u);
  table.Upsert(11, 200, 2, 1, "b");  // migrated
  EXPECT_EQ(table.processes_per_cgroup().at(100), 1u);
  EXPECT_EQ(table.processes_per_cgroup().at(200), 2u);
  EXPECT_TRUE(table.Remove(10));
  EXPECT_FALSE(table.Remove(10));
  EXPECT_EQ(table.processes_per_cgroup().count(100), 0u);
  EXPECT_EQ(table.size(), 2u);
}

TEST(ProcessTableTest, ReusedPidResetsRss) {
  ProcessTable table;
  table.Upsert(10, 100, 1, 1, "old").rss.anon_pages = 50;
  EXPECT_EQ(table.Upsert(10, 100, 1, 1, "old").rss.anon_pages, 50u);
  EXPECT_EQ(table.Upsert(10, 100, 99, 1, "new").rss.anon_pages, 0u);
  EXPECT_EQ(table.Find(10)->comm_view(), "new");
}

TEST(ProcessTableTest, SweepRemovesWhatTheSnapshotDidNotSee) {
  ProcessTable table;
  table.Upsert(1, 5, 1, 0, "a");
  table.Upsert(2, 5, 2, 0, "b");
  table.BeginGeneration();
  table.Touch(*table.Find(1));
  EXPECT_EQ(table.SweepUnseen(), 1u);
  EXPECT_NE(table.Find(1), nullptr);
  EXPECT_EQ(table.Find(2), nullptr);
}

TEST(ProcessTableTest, LongCommIsTruncatedToKernelLength) {
  ProcessTable table;
  table.Upsert(1, 5, 1, 0, "a-very-long-process-name");
  EXPECT_EQ(table.Find(1)->comm_view().size(), 15u);
}

}  // namespace
}  // namespace tapio
