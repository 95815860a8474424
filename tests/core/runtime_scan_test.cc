// RuntimeCapScanner on a fixture tree written by each test: a cgroup directory with its
// cgroup.procs and a /proc with the processes' cmdline and environ files.
#include "agent/core/runtime_scan.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tapio {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class RuntimeScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(::testing::TempDir(), "/runtime-scan-", getpid(), "-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(cgroup_dir());
    std::filesystem::create_directories(proc_root());
    SetProcs({});
    memory_.limit_bytes = 256 * kMiB;
    memory_.host_bytes = 16384 * kMiB;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string cgroup_dir() const { return root_ + "/cgroup"; }
  std::string proc_root() const { return root_ + "/proc"; }

  static void Write(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
  }
  void SetProcs(const std::vector<int>& pids) {
    std::string text;
    for (int pid : pids) absl::StrAppend(&text, pid, "\n");
    Write(cgroup_dir() + "/cgroup.procs", text);
  }
  // A process with these arguments and environment, NUL-separated as the kernel writes them.
  void AddProcess(int pid, const std::vector<std::string>& argv,
                  const std::vector<std::string>& env = {}) {
    const std::string dir = absl::StrCat(proc_root(), "/", pid);
    std::filesystem::create_directories(dir);
    std::string cmdline;
    for (const auto& a : argv) absl::StrAppend(&cmdline, a, std::string(1, '\0'));
    Write(dir + "/cmdline", cmdline);
    std::string environ;
    for (const auto& e : env) absl::StrAppend(&environ, e, std::string(1, '\0'));
    Write(dir + "/environ", environ);
  }

  RuntimeCapSummary Scan(bool after_exec = false) {
    auto s = scanner_.Scan(cgroup_dir(), memory_, after_exec, &counters_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : RuntimeCapSummary{};
  }

  std::string root_;
  RuntimeMemory memory_;
  RuntimeCapScanner scanner_{"/nonexistent"};  // replaced in tests that read processes
  RuntimeScanCounters counters_;
};

TEST_F(RuntimeScanTest, TheLargestCapNamesTheRuntimeAndTheCapsAreSummed) {
  scanner_ = RuntimeCapScanner(proc_root());
  AddProcess(10, {"/bin/sh", "-c", "start.sh"});
  AddProcess(11, {"/opt/java/bin/java", "-Xmx512m", "-jar", "app.jar"});
  AddProcess(12, {"memcached", "-m", "64"});
  SetProcs({10, 11, 12});
  const RuntimeCapSummary s = Scan();
  EXPECT_EQ(s.kind, RuntimeKind::kJvm);
  EXPECT_EQ(s.cap_bytes, 576 * kMiB);
  EXPECT_EQ(s.runtimes, 2u);
  EXPECT_EQ(s.unknown_caps, 0u);
  EXPECT_EQ(counters_.scans, 1u);
  EXPECT_EQ(counters_.processes_read, 3u);
}

TEST_F(RuntimeScanTest, ARuntimesCapComesFromItsEnvironmentToo) {
  scanner_ = RuntimeCapScanner(proc_root());
  AddProcess(20, {"java", "-cp", "/app", "Main"}, {"PATH=/bin", "JAVA_TOOL_OPTIONS=-Xmx300m"});
  SetProcs({20});
  EXPECT_EQ(Scan().cap_bytes, 300 * kMiB);
}

TEST_F(RuntimeScanTest, ARuntimeWithoutAKnownCapIsCountedAsUnknown) {
  scanner_ = RuntimeCapScanner(proc_root());
  AddProcess(30, {"node", "server.js"});
  SetProcs({30});
  const RuntimeCapSummary s = Scan();
  EXPECT_EQ(s.kind, RuntimeKind::kNode);
  EXPECT_EQ(s.cap_bytes, 0u);
  EXPECT_EQ(s.unknown_caps, 1u);
}

TEST_F(RuntimeScanTest, AProcessThatLeftIsForgotten) {
  scanner_ = RuntimeCapScanner(proc_root());
  AddProcess(40, {"java", "-Xmx100m", "A"});
  AddProcess(41, {"java", "-Xmx200m", "B"});
  SetProcs({40, 41});
  EXPECT_EQ(Scan().cap_bytes, 300 * kMiB);
  SetProcs({41});
  EXPECT_EQ(Scan().cap_bytes, 200 * kMiB);
  SetProcs({});
  EXPECT_EQ(Scan().kind, RuntimeKind::kNone);
}

TEST_F(RuntimeScanTest, AnEntrypointThatExecsARuntimeIsReadAgainOnlyAfterAnExec) {
  scanner_ = RuntimeCapScanner(proc_root());
  AddProcess(50, {"/bin/sh", "/entrypoint.sh"});
  SetProcs({50});
  EXPECT_EQ(Scan().kind, RuntimeKind::kNone);
  AddProcess(50, {"java", "-Xmx700m", "Main"});  // exec: same pid, new command line
  EXPECT_EQ(Scan().kind, RuntimeKind::kNone);    // not read again without an exec
  const RuntimeCapSummary s = Scan(/*after_exec=*/true);
  EXPECT_EQ(s.kind, RuntimeKind::kJvm);
  EXPECT_EQ(s.cap_bytes, 700 * kMiB);
  // A runtime's reading stands: its heap was sized at its start.
  AddProcess(50, {"java", "-Xmx1m", "Main"});
  EXPECT_EQ(Scan(/*after_exec=*/true).cap_bytes, 700 * kMiB);
}

TEST_F(RuntimeScanTest, AProcessGoneBeforeItsCmdlineIsCountedAndReadWhenItIsThere) {
  scanner_ = RuntimeCapScanner(proc_root());
  SetProcs({60});  // listed, but no /proc/60
  const RuntimeCapSummary gone = Scan();
  EXPECT_EQ(gone.kind, RuntimeKind::kNone);
  EXPECT_TRUE(gone.complete());  // a process that is gone holds no memory
  EXPECT_EQ(counters_.processes_vanished, 1u);
  AddProcess(60, {"java", "-Xmx64m", "Main"});
  EXPECT_EQ(Scan().cap_bytes, 64 * kMiB);
}

TEST_F(RuntimeScanTest, AnUnreadableEnvironmentLeavesAJvmsCapUnknownButNotMemcacheds) {
  scanner_ = RuntimeCapScanner(proc_root());
  // JAVA_TOOL_OPTIONS or _JAVA_OPTIONS could override the -Xmx of the command line.
  AddProcess(70, {"java", "-Xmx128m", "Main"});
  AddProcess(71, {"memcached", "-m", "64"});
  for (const char* pid : {"70", "71"}) {
    const std::string environ = proc_root() + "/" + pid + "/environ";
    std::filesystem::remove(environ);
    std::filesystem::create_directory(environ);  // read() fails with EISDIR
  }
  SetProcs({70, 71});
  const RuntimeCapSummary s = Scan();
  EXPECT_EQ(s.runtimes, 2u);
  EXPECT_EQ(s.unknown_caps, 1u);
  EXPECT_EQ(s.cap_bytes, 64 * kMiB);
  EXPECT_EQ(counters_.environ_unreadable, 2u);
}

TEST_F(RuntimeScanTest, ACapTheParserRefusesIsCountedAndLeftUnknown) {
  scanner_ = RuntimeCapScanner(proc_root());
  AddProcess(80, {"java", "-Xmx12q", "Main"});
  SetProcs({80});
  const RuntimeCapSummary s = Scan();
  EXPECT_EQ(s.kind, RuntimeKind::kJvm);
  EXPECT_EQ(s.cap_bytes, 0u);
  EXPECT_EQ(s.unknown_caps, 1u);
  EXPECT_EQ(counters_.parse_errors, 1u);
}

TEST_F(RuntimeScanTest, NewProcessesPastThePerScanBoundWaitForTheNextScan) {
  scanner_ = RuntimeCapScanner(proc_root());
  const int n = RuntimeCapScanner::kMaxNewProcessesPerScan + 6;
  std::vector<int> pids;
  for (int i = 0; i < n; ++i) {
    AddProcess(1000 + i, {"java", "-Xmx1m", "Main"});
    pids.push_back(1000 + i);
  }
  SetProcs(pids);
  const RuntimeCapSummary first = Scan();
  EXPECT_EQ(first.runtimes, static_cast<uint32_t>(RuntimeCapScanner::kMaxNewProcessesPerScan));
  EXPECT_EQ(first.unread, 6u);
  EXPECT_FALSE(first.complete());  // the six unread could run anything
  EXPECT_EQ(counters_.deferred, 6u);
  const RuntimeCapSummary second = Scan();
  EXPECT_EQ(second.runtimes, static_cast<uint32_t>(n));
  EXPECT_TRUE(second.complete());
  EXPECT_EQ(counters_.processes_read, static_cast<uint64_t>(n));  // none read twice
}

TEST_F(RuntimeScanTest, AGoneCgroupIsNotFound) {
  std::filesystem::remove(cgroup_dir() + "/cgroup.procs");
  auto s = scanner_.Scan(cgroup_dir(), memory_, false, &counters_);
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
}

TEST_F(RuntimeScanTest, HostMemoryIsMemTotal) {
  Write(proc_root() + "/meminfo", "MemTotal:       24576000 kB\nMemFree:  1 kB\n");
  EXPECT_EQ(RuntimeCapScanner::HostMemoryBytes(proc_root()), 24576000ull * 1024);
  Write(proc_root() + "/meminfo", "MemFree:  1 kB\n");
  EXPECT_EQ(RuntimeCapScanner::HostMemoryBytes(proc_root()), 0u);
  EXPECT_GT(RuntimeCapScanner::HostMemoryBytes(), 0u);  // this machine's
}

}  // namespace
}  // namespace tapio
