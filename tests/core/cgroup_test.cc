#include "agent/core/cgroup.h"

#include <gtest/gtest.h>

#include "agent/core/cgroup_paths.h"
#include "agent/core/file_util.h"

namespace tapio {
namespace {

constexpr char kHybridMounts[] =
    "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
    "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n"
    "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
    "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";

TEST(CgroupLayoutTest, HybridHostUsesCgroup2IdsAndV1Memory) {
  auto layout = CgroupLayout::FromMounts(kHybridMounts, "");
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->unified_root, "/sys/fs/cgroup/unified");
  EXPECT_EQ(layout->memory_v1_root, "/sys/fs/cgroup/memory");
  EXPECT_FALSE(layout->memory_on_unified);
  EXPECT_FALSE(layout->ids_from_v1_memory());
  EXPECT_EQ(layout->id_root(), "/sys/fs/cgroup/unified");
  EXPECT_EQ(layout->MemoryDir("/a/b"), "/sys/fs/cgroup/memory/a/b");
  EXPECT_EQ(layout->PressureDir("/a/b"), "/sys/fs/cgroup/unified/a/b");
}

TEST(CgroupLayoutTest, PureV2HostReadsMemoryFromCgroup2) {
  auto layout =
      CgroupLayout::FromMounts("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n", "cpu memory io\n");
  ASSERT_TRUE(layout.ok());
  EXPECT_TRUE(layout->memory_on_unified);
  EXPECT_EQ(layout->MemoryDir("/x"), "/sys/fs/cgroup/x");
}

TEST(CgroupLayoutTest, PureV1HostTakesIdsFromTheMemoryTree) {
  auto layout = CgroupLayout::FromMounts("cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n", "");
  ASSERT_TRUE(layout.ok());
  EXPECT_TRUE(layout->ids_from_v1_memory());
  EXPECT_EQ(layout->id_root(), "/sys/fs/cgroup/memory");
  EXPECT_EQ(layout->PressureDir("/x"), "");
}

TEST(CgroupLayoutTest, NoCgroupMountIsAClearError) {
  auto layout = CgroupLayout::FromMounts("proc /proc proc rw 0 0\n", "");
  EXPECT_EQ(layout.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(layout.status().message().find("/sys/fs/cgroup"), absl::string_view::npos);
}

TEST(ProcCgroupTest, SplitsCombinedControllers) {
  auto map = ParseProcCgroup("4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/d\n");
  EXPECT_EQ(map["memory"], "/a/b");
  EXPECT_EQ(map["cpu"], "/c");
  EXPECT_EQ(map["cpuacct"], "/c");
  EXPECT_EQ(map["0"], "/d");
}

TEST(CgroupLimitTest, KernelUnlimitedValuesBecomeZero) {
  EXPECT_EQ(NormalizeLimit(9223372036854771712ULL), 0u);
  EXPECT_EQ(NormalizeLimit(UINT64_MAX), 0u);
  EXPECT_EQ(NormalizeLimit(64 << 20), uint64_t{64} << 20);
}

CgroupLayout FixtureV2() {
  CgroupLayout layout;
  layout.unified_root = "tests/fixtures/core/cgroup2";
  layout.memory_on_unified = true;
  return layout;
}

TEST(CgroupMemoryReaderTest, V2FixtureGivesNonReclaimableAndPodLimit) {
  auto reader = CgroupMemoryReader::Open(FixtureV2(), "/kubepods/pod1/ctr1");
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto stat = (*reader)->Read();
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_EQ(stat->usage_bytes, 524288000u);
  EXPECT_EQ(stat->limit_bytes, 0u);                     // "max"
  EXPECT_EQ(stat->effective_limit_bytes, 1073741824u);  // the pod's limit
  EXPECT_EQ(stat->anon_bytes, 209715200u);
  EXPECT_EQ(stat->shmem_bytes, 52428800u);
  EXPECT_EQ(stat->kernel_unreclaimable_bytes, 20971520u - 10485760u);
  EXPECT_EQ(stat->non_reclaimable_bytes(), 209715200u + 52428800u + 10485760u);
  EXPECT_EQ(stat->working_set_bytes(), 524288000u - 200000000u);
  EXPECT_EQ(stat->limit_hits, 17u);
  EXPECT_EQ(stat->oom_events, 2u);
  EXPECT_EQ(stat->oom_kills, 1u);
  EXPECT_TRUE(stat->has_psi);
  EXPECT_DOUBLE_EQ(stat->psi_some_avg10, 1.5);
  EXPECT_DOUBLE_EQ(stat->psi_full_avg10, 0.25);
  EXPECT_EQ(stat->psi_some_total_us, 123456u);
}

TEST(CgroupMemoryReaderTest, V1FixtureUsesHierarchicalTotalsAndAncestorLimit) {
  CgroupLayout layout;
  layout.memory_v1_root = "tests/fixtures/core/v1/memory";
  auto reader = CgroupMemoryReader::Open(layout, "/a/b");
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto stat = (*reader)->Read();
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_EQ(stat->usage_bytes, 104857600u);
  EXPECT_EQ(stat->limit_bytes, 0u);
  EXPECT_EQ(stat->effective_limit_bytes, 268435456u);
  EXPECT_EQ(stat->anon_bytes, 52428800u);
  EXPECT_EQ(stat->file_bytes, 41943040u);
  EXPECT_EQ(stat->inactive_file_bytes, 31457280u);
  EXPECT_EQ(stat->oom_kills, 3u);
  EXPECT_EQ(stat->limit_hits, 42u);
  EXPECT_EQ(stat->kernel_bytes, 4194304u);
  EXPECT_FALSE(stat->has_psi);
}

TEST(CgroupMemoryReaderTest, MissingCgroupIsNotFound) {
  auto reader = CgroupMemoryReader::Open(FixtureV2(), "/does/not/exist");
  EXPECT_TRUE(absl::IsNotFound(reader.status())) << reader.status();
}

TEST(CgroupMemoryStatTest, PressureParserRejectsGarbage) {
  CgroupMemoryStat stat;
  EXPECT_FALSE(ParsePressure("some avg10=abc total=1\n", &stat));
  EXPECT_FALSE(ParsePressure("", &stat));
}

TEST(CgroupMemoryStatTest, V2StatWithoutKernelFieldSumsTheParts) {
  CgroupMemoryStat stat;
  ParseMemoryStatV2("anon 10\nslab_reclaimable 4\nslab_unreclaimable 6\nkernel_stack 2\n", &stat);
  EXPECT_EQ(stat.kernel_bytes, 12u);
  EXPECT_EQ(stat.kernel_unreclaimable_bytes, 8u);
}

TEST(CgroupPathResolverTest, FindsDirectoriesByInodeAndMissesUnknownIds) {
  CgroupPathResolver resolver("tests/fixtures/core/cgroup2", absl::ZeroDuration());
  auto id = resolver.IdOf("/kubepods/pod1/ctr1");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(resolver.Lookup(*id), "/kubepods/pod1/ctr1");
  EXPECT_EQ(resolver.Lookup(*resolver.IdOf("/")), "/");
  EXPECT_FALSE(resolver.Lookup(1).has_value());
  EXPECT_GE(resolver.stats().rescans, 1u);
  EXPECT_EQ(resolver.stats().misses, 1u);
}

}  // namespace
}  // namespace tapio
