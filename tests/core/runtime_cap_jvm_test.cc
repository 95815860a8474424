// ParseRuntimeHeapCap's JVM rules against the JVM itself: for each case a memory cgroup with the
// case's limit is made (TestCgroup), `java <flags> -XX:+PrintFlagsFinal -version` runs inside it
// with exactly the case's environment, and the MaxHeapSize the JVM settled on must equal the cap
// the parser computes from the same argv, environment, limit and host memory. Needs root (LABEL
// kernel) and java, which `scripts/install-deps.sh test` installs (openjdk-17-jre-headless): a
// missing java fails the test rather than skipping it.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "agent/core/runtime_cap.h"
#include "gtest/gtest.h"
#include "tests/support/test_cgroup.h"

namespace tapio {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

struct JvmCase {
  std::string name;
  uint64_t limit_mib;
  std::vector<std::string> flags;
  std::vector<std::string> environ;  // the child's whole environment
  // Heaps sized from the host's memory: the JVM picks G1 with 2 or more CPUs and Serial with
  // one, which align heaps above 4 GiB differently; the parser assumes G1 (runtime_cap.cc).
  bool sized_from_host = false;
};

std::ostream& operator<<(std::ostream& os, const JvmCase& c) { return os << c.name; }

const std::vector<JvmCase>& Cases() {
  static const auto* cases = new std::vector<JvmCase>{
      {"Limit128Default", 128, {}, {}},
      {"Limit128MaxRAMPercentage75", 128, {"-XX:MaxRAMPercentage=75"}, {}},
      {"Limit128MinRAMPercentage80", 128, {"-XX:MinRAMPercentage=80"}, {}},
      {"Limit128MaxRAM1g", 128, {"-XX:MaxRAM=1g"}, {}},
      {"Limit128Xms200m", 128, {"-Xms200m"}, {}},
      {"Limit128NoContainerSupport", 128, {"-XX:-UseContainerSupport"}, {}, true},
      {"Limit200Default", 200, {}, {}},
      {"Limit200MinRAMPercentage80", 200, {"-XX:MinRAMPercentage=80"}, {}},
      {"Limit249Default", 249, {}, {}},
      {"Limit249MaxRAMPercentage75", 249, {"-XX:MaxRAMPercentage=75"}, {}},
      {"Limit250Default", 250, {}, {}},
      {"Limit250MaxRAMPercentage75", 250, {"-XX:MaxRAMPercentage=75"}, {}},
      {"Limit256Default", 256, {}, {}},
      {"Limit256MaxRAMPercentage75", 256, {"-XX:MaxRAMPercentage=75"}, {}},
      {"Limit256Xmx300m", 256, {"-Xmx300m"}, {}},
      {"Limit256Xmx301m", 256, {"-Xmx301m"}, {}},
      {"Limit256G1Xmx10001m", 256, {"-XX:+UseG1GC", "-Xmx10001m"}, {}},
      {"Limit256SerialXmx10001m", 256, {"-XX:+UseSerialGC", "-Xmx10001m"}, {}},
      {"Limit384Default", 384, {}, {}},
      {"Limit384MaxRAMPercentage75", 384, {"-XX:MaxRAMPercentage=75"}, {}},
      {"Limit1024Default", 1024, {}, {}},
      {"Limit1024MaxRAMPercentage75", 1024, {"-XX:MaxRAMPercentage=75"}, {}},
      {"Limit1024MaxRAM1g", 1024, {"-XX:MaxRAM=1g"}, {}},
      {"Limit1024MaxRAMFraction2", 1024, {"-XX:MaxRAMFraction=2"}, {}},
      {"Limit1024ErgoHeapSizeLimit100m", 1024, {"-XX:ErgoHeapSizeLimit=100m"}, {}},
      {"Limit4096Default", 4096, {}, {}},
      {"Limit4096MaxRAMPercentage75", 4096, {"-XX:MaxRAMPercentage=75"}, {}},
      {"Limit1024JavaToolOptionsPercentage",
       1024,
       {},
       {"JAVA_TOOL_OPTIONS=-XX:MaxRAMPercentage=75"}},
      {"Limit256JavaToolOptionsLosesToTheCommandLine",
       256,
       {"-Xmx300m"},
       {"JAVA_TOOL_OPTIONS=-Xmx200m"}},
      {"Limit256JdkJavaOptions", 256, {}, {"JDK_JAVA_OPTIONS=-Xmx160m"}},
      {"Limit256JavaOptionsWinOverTheCommandLine", 256, {"-Xmx300m"}, {"_JAVA_OPTIONS=-Xmx100m"}},
  };
  return *cases;
}

// The first executable "java" on PATH (or the default PATH), as execve needs a path.
std::optional<std::string> FindJava() {
  const char* path = std::getenv("PATH");
  const std::string dirs = path != nullptr && *path != '\0' ? path : "/usr/local/bin:/usr/bin:/bin";
  for (absl::string_view dir : absl::StrSplit(dirs, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/java");
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

// MemTotal from /proc/meminfo, in bytes: what HotSpot's os::physical_memory() reports.
absl::StatusOr<uint64_t> ReadMemTotalBytes() {
  absl::StatusOr<std::string> meminfo = testing::ReadFileToString("/proc/meminfo");
  if (!meminfo.ok()) return meminfo.status();
  for (absl::string_view line : absl::StrSplit(*meminfo, '\n')) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    uint64_t kib = 0;
    if (fields.size() == 3 && fields[0] == "MemTotal:" && fields[2] == "kB" &&
        absl::SimpleAtoi(fields[1], &kib)) {
      return kib * 1024;
    }
  }
  return absl::NotFoundError("no MemTotal in /proc/meminfo");
}

int UsableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
}

// MaxHeapSize from -XX:+PrintFlagsFinal, e.g.
// "   size_t MaxHeapSize                              = 132120576        {product} {ergonomic}".
std::optional<uint64_t> ParseMaxHeapSize(const std::string& flags_final) {
  for (absl::string_view line : absl::StrSplit(flags_final, '\n')) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    uint64_t value = 0;
    if (fields.size() >= 4 && fields[0] == "size_t" && fields[1] == "MaxHeapSize" &&
        fields[2] == "=" && absl::SimpleAtoi(fields[3], &value)) {
      return value;
    }
  }
  return std::nullopt;
}

class RuntimeCapAgainstRealJvmTest : public ::testing::TestWithParam<JvmCase> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (memory cgroups); CI runs as root";
    std::optional<std::string> java = FindJava();
    ASSERT_TRUE(java.has_value())
        << "java not found on PATH; `scripts/install-deps.sh test` installs "
           "openjdk-17-jre-headless";
    java_ = *java;
    absl::StatusOr<uint64_t> host = ReadMemTotalBytes();
    ASSERT_TRUE(host.ok()) << host.status();
    host_bytes_ = *host;
  }

  std::string java_;
  uint64_t host_bytes_ = 0;
};

TEST_P(RuntimeCapAgainstRealJvmTest, MaxHeapSizeIsTheParsersCap) {
  const JvmCase& c = GetParam();
  const uint64_t limit_bytes = c.limit_mib * kMiB;
  testing::TestCgroupOptions options;
  options.limit_bytes = limit_bytes;
  options.name_prefix = "tapio-jvm-cap";
  absl::StatusOr<std::unique_ptr<testing::TestCgroup>> cgroup =
      testing::TestCgroup::Create(options);
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();

  // argv as /proc/PID/cmdline shows it: argv[0] is what was exec'd.
  std::vector<std::string> argv = {java_};
  argv.insert(argv.end(), c.flags.begin(), c.flags.end());
  argv.emplace_back("-XX:+PrintFlagsFinal");
  argv.emplace_back("-version");

  // Built before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> env_storage = c.environ;
  std::vector<char*> argv_ptrs;
  argv_ptrs.reserve(argv.size() + 1);
  for (std::string& arg : argv) argv_ptrs.push_back(arg.data());
  argv_ptrs.push_back(nullptr);
  std::vector<char*> env_ptrs;
  env_ptrs.reserve(env_storage.size() + 1);
  for (std::string& entry : env_storage) env_ptrs.push_back(entry.data());
  env_ptrs.push_back(nullptr);
  const char* java_path = java_.c_str();
  absl::StatusOr<testing::ChildProcess> child = (*cgroup)->SpawnFunction(
      [&]() {
        // -version and the "Picked up ..._OPTIONS" notes go to stderr: keep the log quiet.
        const int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull >= 0) dup2(devnull, STDERR_FILENO);
        execve(java_path, argv_ptrs.data(), env_ptrs.data());
        return 127;
      },
      {.capture_stdout = true});
  ASSERT_TRUE(child.ok()) << child.status();
  std::string out;
  char buf[65536];
  ssize_t n = 0;
  while ((n = read(child->stdout_fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  absl::StatusOr<int> status = child->Wait(absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << absl::StrJoin(argv, " ") << " exited with status " << *status;
  std::optional<uint64_t> jvm_bytes = ParseMaxHeapSize(out);
  ASSERT_TRUE(jvm_bytes.has_value())
      << "no MaxHeapSize in the output of " << absl::StrJoin(argv, " ") << ":\n"
      << out;

  absl::StatusOr<RuntimeHeapCap> cap =
      ParseRuntimeHeapCap(argv, c.environ, {.limit_bytes = limit_bytes, .host_bytes = host_bytes_});
  ASSERT_TRUE(cap.ok()) << cap.status();
  std::cout << c.name << ": limit " << c.limit_mib << " MiB, " << absl::StrJoin(c.flags, " ")
            << (c.environ.empty() ? "" : " ") << absl::StrJoin(c.environ, " ")
            << ": jvm MaxHeapSize " << *jvm_bytes << ", parsed " << cap->cap_bytes << " ("
            << cap->source << ")\n";
  EXPECT_EQ(cap->kind, RuntimeKind::kJvm);
  if (c.sized_from_host && UsableCpus() < 2) {
    // Serial instead of G1 (see JvmCase): the parser may be high by less than a G1 region.
    EXPECT_LE(cap->cap_bytes - *jvm_bytes, 32 * kMiB);
    EXPECT_GE(cap->cap_bytes, *jvm_bytes);
  } else {
    EXPECT_EQ(cap->cap_bytes, *jvm_bytes);
  }
}

INSTANTIATE_TEST_SUITE_P(Measured, RuntimeCapAgainstRealJvmTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<JvmCase>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace tapio
