// TestCgroup on the real kernel: both hierarchies, placement before the workload runs, the OOM
// counter, and complete clean-up. Needs root (LABEL kernel).
#include "tests/support/test_cgroup.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace tapio::testing {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

TEST(TestCgroupTest, CreatesBothHierarchiesAndRemovesThem) {
  std::string memory_dir, v2_dir;
  {
    absl::StatusOr<std::unique_ptr<TestCgroup>> cg = TestCgroup::Create({.limit_bytes = 32 << 20});
    ASSERT_TRUE(cg.ok()) << cg.status();
    memory_dir = (*cg)->memory_dir();
    v2_dir = (*cg)->v2_dir();
    EXPECT_TRUE(Exists(memory_dir));
    EXPECT_TRUE(Exists(v2_dir));
    struct stat st;
    ASSERT_EQ(stat(v2_dir.c_str(), &st), 0);
    EXPECT_EQ((*cg)->cgroup2_id(), st.st_ino);
    if ((*cg)->memory_is_v1()) {
      absl::StatusOr<std::string> limit = ReadFileToString(memory_dir + "/memory.limit_in_bytes");
      ASSERT_TRUE(limit.ok()) << limit.status();
      EXPECT_EQ(*limit, absl::StrCat(32 << 20, "\n"));
    }
    // A process left running must not stop the clean-up.
    absl::StatusOr<ChildProcess> child = (*cg)->Spawn({"/bin/sleep", "1000"});
    ASSERT_TRUE(child.ok()) << child.status();
  }
  EXPECT_FALSE(Exists(memory_dir));
  EXPECT_FALSE(Exists(v2_dir));
}

TEST(TestCgroupTest, ChildIsInBothHierarchiesBeforeItRuns) {
  absl::StatusOr<std::unique_ptr<TestCgroup>> cg = TestCgroup::Create();
  ASSERT_TRUE(cg.ok()) << cg.status();
  // The child prints its own /proc/self/cgroup as its first action.
  absl::StatusOr<ChildProcess> child =
      (*cg)->Spawn({"/bin/cat", "/proc/self/cgroup"}, {.capture_stdout = true});
  ASSERT_TRUE(child.ok()) << child.status();
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(child->stdout_fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  absl::StatusOr<int> status = child->Wait(absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  if ((*cg)->memory_is_v1()) {
    EXPECT_TRUE(absl::StrContains(out, absl::StrCat(":memory:", (*cg)->relative_path(), "\n")))
        << out;
  }
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat("0::", (*cg)->relative_path(), "\n"))) << out;
}

TEST(TestCgroupTest, AllocatorHoldsAndOomKillIsCounted) {
  absl::StatusOr<std::unique_ptr<TestCgroup>> cg = TestCgroup::Create({.limit_bytes = 16 << 20});
  ASSERT_TRUE(cg.ok()) << cg.status();
  absl::StatusOr<uint64_t> before = (*cg)->ReadOomKillCount();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(*before, 0u);

  absl::StatusOr<ChildProcess> child = (*cg)->Spawn({TestAllocPath(), "--mib=0"});
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<int> status = child->Wait(absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFSIGNALED(*status));
  EXPECT_EQ(WTERMSIG(*status), SIGKILL);
  absl::StatusOr<uint64_t> after = (*cg)->ReadOomKillCount();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 1u);
}

TEST(TestCgroupTest, AllocatorReportsReadyAndVmRssMatches) {
  absl::StatusOr<std::unique_ptr<TestCgroup>> cg = TestCgroup::Create({.limit_bytes = 128 << 20});
  ASSERT_TRUE(cg.ok()) << cg.status();
  absl::StatusOr<ChildProcess> child =
      (*cg)->Spawn({TestAllocPath(), "--mib=32"}, {.capture_stdout = true});
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(child->WaitForLine("ready", absl::Seconds(20)).ok());
  absl::StatusOr<uint64_t> rss = ReadVmRssBytes(child->pid);
  ASSERT_TRUE(rss.ok()) << rss.status();
  EXPECT_GE(*rss, 32u << 20);
  EXPECT_LT(*rss, 40u << 20);
  absl::StatusOr<uint64_t> usage = (*cg)->ReadUsageBytes();
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_GE(*usage, 32u << 20);
}

TEST(TestCgroupTest, RejectsBadAllocatorFlags) {
  absl::StatusOr<std::unique_ptr<TestCgroup>> cg = TestCgroup::Create();
  ASSERT_TRUE(cg.ok()) << cg.status();
  absl::StatusOr<ChildProcess> child = (*cg)->Spawn({TestAllocPath(), "--mib=abc"});
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<int> status = child->Wait(absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 2);
}

}  // namespace
}  // namespace tapio::testing
