#include "agent/core/process_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace tapio {
namespace {

TEST(ProcessTableTest, CountsProcessesPerCgroupThroughMigrationAndExit) {
  ProcessTable table;
  table.Upsert(10, 100, 1);
  table.Upsert(11, 100, 2);
  table.Upsert(12, 200, 3);
  EXPECT_EQ(table.processes_per_cgroup().at(100), 2u);
  table.Upsert(11, 200, 2);  // migrated
  EXPECT_EQ(table.processes_per_cgroup().at(100), 1u);
  EXPECT_EQ(table.processes_per_cgroup().at(200), 2u);
  EXPECT_TRUE(table.Remove(10));
  EXPECT_FALSE(table.Remove(10));
  EXPECT_EQ(table.processes_per_cgroup().count(100), 0u);
  EXPECT_EQ(table.size(), 2u);
}

TEST(ProcessTableTest, ACgroupEmptiedAndRefilledIsCountedAgain) {
  ProcessTable table;
  table.Upsert(1, 100, 1);
  table.Upsert(2, 200, 1);
  EXPECT_TRUE(table.Remove(1));  // 100 empty: gone from the counts
  EXPECT_EQ(table.processes_per_cgroup().count(100), 0u);
  table.Upsert(3, 100, 1);  // and back
  table.Upsert(4, 100, 1);
  EXPECT_EQ(table.processes_per_cgroup().at(100), 2u);
  EXPECT_TRUE(table.Remove(2));
  EXPECT_TRUE(table.Remove(3));
  EXPECT_EQ(table.processes_per_cgroup().at(100), 1u);
  EXPECT_EQ(table.processes_per_cgroup().count(200), 0u);
}

TEST(ProcessTableTest, ReusedPidResetsRss) {
  ProcessTable table;
  table.Upsert(10, 100, 1).resident_pages = 50;
  EXPECT_EQ(table.Upsert(10, 100, 1).resident_pages, 50u);
  EXPECT_EQ(table.Upsert(10, 100, 99).resident_pages, 0u);
}

TEST(ProcessTableTest, SweepRemovesWhatTheSnapshotDidNotSee) {
  ProcessTable table;
  table.Upsert(1, 5, 1);
  table.Upsert(2, 5, 2);
  table.BeginGeneration();
  table.Touch(*table.Find(1));
  EXPECT_EQ(table.SweepUnseen(), 1u);
  EXPECT_NE(table.Find(1), nullptr);
  EXPECT_EQ(table.Find(2), nullptr);
}

TEST(ProcessTableTest, TheNoPidMarkerIsNeverStored) {
  ProcessTable table;
  table.Upsert(ProcessTable::kNoPid, 5, 1).resident_pages = 9;
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.Find(ProcessTable::kNoPid), nullptr);
  EXPECT_FALSE(table.Remove(ProcessTable::kNoPid));
  EXPECT_TRUE(table.processes_per_cgroup().empty());
  table.Upsert(7, 5, 1);
  EXPECT_NE(table.Find(7), nullptr);
}

// The table is open addressing with backward-shift deletion: a random mix of inserts, updates,
// removals and sweeps, checked against a std::map after every step, across several growths and
// with pids that collide (dense runs, and pids spread over the whole 22-bit pid space), and with
// cgroups that empty and fill again.
TEST(ProcessTableTest, AgreesWithAReferenceMapUnderRandomChurn) {
  for (uint32_t span : {20u, 300u, 5000u, 1u << 22}) {  // 20: cgroups empty and refill
    ProcessTable table;
    std::map<uint32_t, uint64_t> want;  // pid -> cgroup
    std::mt19937 rng(span);
    for (int step = 0; step < 60000; ++step) {
      const uint32_t pid = 1 + rng() % span;
      const uint64_t cgroup = 100 + (pid + (rng() % 16 == 0 ? 1 : 0)) % 7;  // some migrate
      switch (rng() % 8) {
        case 0:
        case 1:
        case 2:
          table.Upsert(pid, cgroup, 1);
          want[pid] = cgroup;
          break;
        case 3:
        case 4:
          EXPECT_EQ(table.Remove(pid), want.erase(pid) == 1) << pid;
          break;
        case 5:
          if (step % 500 == 0) {  // a snapshot that saw only the even pids
            table.BeginGeneration();
            for (auto it = want.begin(); it != want.end();) {
              if (it->first % 2 == 0) {
                table.Touch(*table.Find(it->first));
                ++it;
              } else {
                it = want.erase(it);
              }
            }
            table.SweepUnseen();
          }
          break;
        default: {
          const ProcessInfo* info = table.Find(pid);
          auto it = want.find(pid);
          ASSERT_EQ(info != nullptr, it != want.end()) << "pid " << pid << " step " << step;
          if (info != nullptr) {
            EXPECT_EQ(info->cgroup_id, it->second);
          }
        }
      }
      ASSERT_EQ(table.size(), want.size()) << "step " << step;
    }
    for (const auto& [pid, cgroup] : want) {
      ASSERT_NE(table.Find(pid), nullptr) << pid;
      EXPECT_EQ(table.Find(pid)->cgroup_id, cgroup);
    }
    std::map<uint64_t, uint32_t> per_cgroup;
    for (const auto& [pid, cgroup] : want) ++per_cgroup[cgroup];
    const std::map<uint64_t, uint32_t> counted(table.processes_per_cgroup().begin(),
                                               table.processes_per_cgroup().end());
    EXPECT_EQ(counted, per_cgroup);
    EXPECT_LE(table.size() * 2, table.capacity());
  }
}

}  // namespace
}  // namespace tapio
