#include "agent/core/runtime_cap.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"

namespace tapio {
namespace {

constexpr uint64_t kKiB = uint64_t{1} << 10;
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
// MemTotal of the machine the JVM figures below were measured on (23.5 GiB).
constexpr uint64_t kHostBytes = 24683772 * kKiB;

RuntimeMemory InCgroupMiB(uint64_t limit_mib) { return {limit_mib * kMiB, kHostBytes}; }

absl::StatusOr<RuntimeHeapCap> Parse(const std::vector<std::string>& argv,
                                     const std::vector<std::string>& environ = {},
                                     const RuntimeMemory& memory = InCgroupMiB(1024)) {
  return ParseRuntimeHeapCap(argv, environ, memory);
}

// The cap of a command line that must parse.
RuntimeHeapCap Cap(const std::vector<std::string>& argv,
                   const std::vector<std::string>& environ = {},
                   const RuntimeMemory& memory = InCgroupMiB(1024)) {
  absl::StatusOr<RuntimeHeapCap> cap = Parse(argv, environ, memory);
  EXPECT_TRUE(cap.ok()) << absl::StrJoin(argv, " ") << ": " << cap.status();
  return cap.value_or(RuntimeHeapCap{});
}

std::vector<std::string> Java(const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {"java"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.emplace_back("Main");
  return argv;
}

// ---------------------------------------------------------------------------------------------
// Which process is which runtime.

TEST(RuntimeCapTest, ProcessesThatAreNoManagedRuntimeHaveNoCap) {
  for (const std::vector<std::string>& argv :
       std::vector<std::vector<std::string>>{{"python3", "-c", "print(1)"},
                                             {"/bin/bash", "-c", "java -Xmx1g Main"},
                                             {"/usr/bin/javac", "-J-Xmx1g", "Main.java"},
                                             {"redis-server", "*:6379"},
                                             {"/usr/bin/memcached-tool", "localhost", "-m", "64"},
                                             {""},
                                             {}}) {
    RuntimeHeapCap cap = Cap(argv);
    EXPECT_EQ(cap.kind, RuntimeKind::kNone) << absl::StrJoin(argv, " ");
    EXPECT_EQ(cap.cap_bytes, 0u);
    EXPECT_EQ(cap.source, "unknown");
  }
}

TEST(RuntimeCapTest, TheRuntimeIsRecognisedByTheBasenameOfArgvZero) {
  EXPECT_EQ(Cap({"/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "-Xmx1g", "Main"}).kind,
            RuntimeKind::kJvm);
  EXPECT_EQ(Cap({"/usr/local/bin/node", "app.js"}).kind, RuntimeKind::kNode);
  EXPECT_EQ(Cap({"nodejs", "app.js"}).kind, RuntimeKind::kNode);
  EXPECT_EQ(Cap({"/usr/bin/memcached"}).kind, RuntimeKind::kMemcached);
  EXPECT_EQ(Cap({"/opt/java/bin/java-wrapper", "-Xmx1g"}).kind, RuntimeKind::kNone);
  // The kind alone, for a scanner that reads a runtime's environment only.
  const std::vector<std::string> jvm = {"/opt/java/bin/java", "-Xmx12q"};  // bad value: no matter
  EXPECT_EQ(RuntimeKindOf(jvm), RuntimeKind::kJvm);
  EXPECT_EQ(RuntimeKindOf(std::vector<std::string>{"python3", "app.py"}), RuntimeKind::kNone);
  EXPECT_EQ(RuntimeKindOf(std::vector<std::string>{}), RuntimeKind::kNone);
}

TEST(RuntimeCapTest, KindNamesAreTheWireNames) {
  EXPECT_EQ(RuntimeKindName(RuntimeKind::kNone), "");
  EXPECT_EQ(RuntimeKindName(RuntimeKind::kJvm), "jvm");
  EXPECT_EQ(RuntimeKindName(RuntimeKind::kNode), "node");
  EXPECT_EQ(RuntimeKindName(RuntimeKind::kMemcached), "memcached");
}

TEST(RuntimeCapTest, ATrailingNulEndsTheLastEntryInsteadOfStartingAnEmptyOne) {
  using std::string_literals::operator""s;
  EXPECT_EQ(SplitNulSeparated("java\0-Xmx1g\0Main\0"s),
            (std::vector<std::string>{"java", "-Xmx1g", "Main"}));
  EXPECT_EQ(SplitNulSeparated("java\0-Xmx1g"s), (std::vector<std::string>{"java", "-Xmx1g"}));
  EXPECT_EQ(SplitNulSeparated("a\0\0b\0"s), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(SplitNulSeparated("a\0\0"s), (std::vector<std::string>{"a", ""}));
  EXPECT_TRUE(SplitNulSeparated("").empty());
}

// ---------------------------------------------------------------------------------------------
// JVM: HotSpot's ergonomics.

struct MeasuredHeap {
  uint64_t limit_mib;
  std::vector<std::string> flags;
  uint64_t max_heap_bytes;  // MaxHeapSize from -XX:+PrintFlagsFinal
};

TEST(RuntimeCapJvmTest, ErgonomicMaximumMatchesOpenJdk17InMemoryCgroups) {
  // Measured with OpenJDK 17.0.15 in cgroup v1 memory cgroups (runtime_cap_jvm_test.cc repeats
  // them against the java installed on the machine).
  const std::vector<MeasuredHeap> measured = {
      {128, {}, 64 * kMiB},  // MinRAMPercentage (50) of a small memory
      {128, {"-XX:MaxRAMPercentage=75"}, 64 * kMiB},
      {128, {"-XX:MinRAMPercentage=80"}, 106496 * kKiB},  // 102.4 MiB aligned up to 2 MiB
      {128, {"-XX:MaxRAM=1g"}, 256 * kMiB},               // MaxRAM replaces the limit
      {200, {}, 100 * kMiB},
      {200, {"-XX:MinRAMPercentage=80"}, 129024 * kKiB},  // 160 MiB is not small: the default
      {249, {}, 129024 * kKiB},  // 124.5 MiB is not below 124.8 MiB: the default MaxHeapSize
      {249, {"-XX:MaxRAMPercentage=75"}, 126 * kMiB},
      {250, {}, 126 * kMiB},
      {250, {"-XX:MaxRAMPercentage=75"}, 192512 * kKiB},  // 187.5 MiB aligned up
      {256, {}, 126 * kMiB},
      {256, {"-XX:MaxRAMPercentage=75"}, 192 * kMiB},
      {384, {}, 126 * kMiB},
      {384, {"-XX:MaxRAMPercentage=75"}, 288 * kMiB},
      {1024, {}, 256 * kMiB},
      {1024, {"-XX:MaxRAMPercentage=75"}, 768 * kMiB},
      {1024, {"-XX:MaxRAM=1g"}, 256 * kMiB},
      {4096, {}, 1024 * kMiB},
      {4096, {"-XX:MaxRAMPercentage=75"}, 3072 * kMiB},
  };
  for (const MeasuredHeap& m : measured) {
    SCOPED_TRACE(::testing::Message() << m.limit_mib << " MiB, " << absl::StrJoin(m.flags, " "));
    RuntimeHeapCap cap = Cap(Java(m.flags), {}, InCgroupMiB(m.limit_mib));
    EXPECT_EQ(cap.kind, RuntimeKind::kJvm);
    EXPECT_EQ(cap.cap_bytes, m.max_heap_bytes);
    EXPECT_EQ(cap.source, "ergonomics");
  }
}

TEST(RuntimeCapJvmTest, WithoutContainerSupportTheHeapIsSizedFromTheHost) {
  // Measured: 25% of this 23.5 GiB host, 6028 MiB, inside a 128 MiB cgroup.
  RuntimeHeapCap cap = Cap(Java({"-XX:-UseContainerSupport"}), {}, InCgroupMiB(128));
  EXPECT_EQ(cap.cap_bytes, 6028 * kMiB);
  EXPECT_EQ(cap.source, "ergonomics");
}

TEST(RuntimeCapJvmTest, TheLastUseContainerSupportWins) {
  EXPECT_EQ(
      Cap(Java({"-XX:-UseContainerSupport", "-XX:+UseContainerSupport"}), {}, InCgroupMiB(128))
          .cap_bytes,
      64 * kMiB);
  EXPECT_EQ(
      Cap(Java({"-XX:+UseContainerSupport", "-XX:-UseContainerSupport"}), {}, InCgroupMiB(128))
          .cap_bytes,
      6028 * kMiB);
}

TEST(RuntimeCapJvmTest, WithoutAContainerLimitTheHeapIsSizedFromTheHost) {
  EXPECT_EQ(Cap(Java({}), {}, {0, 8 * kGiB}).cap_bytes, 2 * kGiB);
  // A cgroup v1 limit at or above the host's memory counts as none.
  EXPECT_EQ(Cap(Java({}), {}, {64 * kGiB, 8 * kGiB}).cap_bytes, 2 * kGiB);
  EXPECT_EQ(Cap(Java({}), {}, {kHostBytes, kHostBytes}).cap_bytes, 6028 * kMiB);
}

TEST(RuntimeCapJvmTest, WithNoMemoryKnownTheErgonomicHeapIsUnknown) {
  RuntimeHeapCap cap = Cap(Java({}), {}, {0, 0});
  EXPECT_EQ(cap.kind, RuntimeKind::kJvm);
  EXPECT_EQ(cap.cap_bytes, 0u);
  EXPECT_EQ(cap.source, "unknown");
  // A limit alone is enough, and so is MaxRAM or an explicit maximum.
  EXPECT_EQ(Cap(Java({}), {}, {1024 * kMiB, 0}).cap_bytes, 256 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:MaxRAM=1g"}), {}, {0, 0}).cap_bytes, 256 * kMiB);
  EXPECT_EQ(Cap(Java({"-Xmx300m"}), {}, {0, 0}).cap_bytes, 300 * kMiB);
}

TEST(RuntimeCapJvmTest, MaxRamsDefaultCapsPhysicalMemoryAt128GiB) {
  // Without compressed oops, so that their ceiling (not modelled) does not come first.
  EXPECT_EQ(Cap(Java({"-XX:-UseCompressedOops"}), {}, {0, 512 * kGiB}).cap_bytes, 32 * kGiB);
  EXPECT_EQ(Cap(Java({"-XX:-UseCompressedOops"}), {}, {256 * kGiB, 512 * kGiB}).cap_bytes,
            32 * kGiB);
  EXPECT_EQ(Cap(Java({"-XX:-UseCompressedOops"}), {}, {64 * kGiB, 512 * kGiB}).cap_bytes,
            16 * kGiB);
}

TEST(RuntimeCapJvmTest, NamingAPercentageLiftsThe128GiBCap) {
  // override_coop_limit in Arguments::set_heap_size: the memory the JVM sees is used as is.
  EXPECT_EQ(Cap(Java({"-XX:MaxRAMPercentage=25"}), {}, {0, 512 * kGiB}).cap_bytes, 128 * kGiB);
  EXPECT_EQ(Cap(Java({"-XX:InitialRAMPercentage=10"}), {}, {0, 512 * kGiB}).cap_bytes, 128 * kGiB);
  EXPECT_EQ(Cap(Java({"-XX:MinRAMFraction=2"}), {}, {0, 512 * kGiB}).cap_bytes, 128 * kGiB);
  // An explicit MaxRAM replaces the memory instead.
  EXPECT_EQ(Cap(Java({"-XX:MaxRAM=256g"}), {}, {0, 512 * kGiB}).cap_bytes, 64 * kGiB);
}

TEST(RuntimeCapJvmTest, PercentagesAreDoubles) {
  EXPECT_EQ(Cap(Java({"-XX:MaxRAMPercentage=75.0"}), {}, InCgroupMiB(1024)).cap_bytes, 768 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:MaxRAMPercentage=37.5"}), {}, InCgroupMiB(1024)).cap_bytes, 384 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:MaxRAMPercentage=0.5"}), {}, {0, 400 * kGiB}).cap_bytes, 2 * kGiB);
}

TEST(RuntimeCapJvmTest, TheLastOccurrenceOfAFlagWins) {
  EXPECT_EQ(Cap(Java({"-XX:MaxRAMPercentage=75", "-XX:MaxRAMPercentage=50"})).cap_bytes,
            512 * kMiB);
  EXPECT_EQ(Cap(Java({"-Xmx1g", "-Xmx2g"})).cap_bytes, 2 * kGiB);
  EXPECT_EQ(Cap(Java({"-XX:MaxHeapSize=1g", "-Xmx2g", "-XX:MaxHeapSize=3g"})).cap_bytes, 3 * kGiB);
}

TEST(RuntimeCapJvmTest, AFractionSetsThePercentageOnlyWhenThePercentageIsNotGiven) {
  EXPECT_EQ(Cap(Java({"-XX:MaxRAMFraction=2"})).cap_bytes, 512 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:MaxRAMFraction=2", "-XX:MaxRAMPercentage=75"})).cap_bytes, 768 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:MaxRAMPercentage=75", "-XX:MaxRAMFraction=2"})).cap_bytes, 768 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:MinRAMFraction=4"}), {}, InCgroupMiB(128)).cap_bytes, 32 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:MinRAMFraction=4", "-XX:MinRAMPercentage=80"}), {}, InCgroupMiB(128))
                .cap_bytes,
            106496 * kKiB);
  // 100/3 = 33.3%: 341.3 MiB, aligned up.
  EXPECT_EQ(Cap(Java({"-XX:MaxRAMFraction=3"})).cap_bytes, 342 * kMiB);
}

TEST(RuntimeCapJvmTest, AnInitialHeapAboveTheErgonomicMaximumRaisesIt) {
  EXPECT_EQ(Cap(Java({"-Xms200m"}), {}, InCgroupMiB(128)).cap_bytes, 200 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:InitialHeapSize=200m"}), {}, InCgroupMiB(128)).cap_bytes, 200 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:MinHeapSize=200m"}), {}, InCgroupMiB(128)).cap_bytes, 200 * kMiB);
  EXPECT_EQ(Cap(Java({"-Xms201m"}), {}, InCgroupMiB(128)).cap_bytes, 202 * kMiB);
  EXPECT_EQ(Cap(Java({"-Xms200m"}), {}, InCgroupMiB(128)).source, "ergonomics");
  // Below the ergonomic maximum it changes nothing.
  EXPECT_EQ(Cap(Java({"-Xms16m"}), {}, InCgroupMiB(128)).cap_bytes, 64 * kMiB);
  // It does not override an explicit maximum (the JVM refuses Xms > Xmx at start).
  EXPECT_EQ(Cap(Java({"-Xms2g", "-Xmx1g"})).cap_bytes, 1 * kGiB);
}

TEST(RuntimeCapJvmTest, ErgoHeapSizeLimitCapsTheErgonomicMaximum) {
  EXPECT_EQ(Cap(Java({"-XX:ErgoHeapSizeLimit=100m"})).cap_bytes, 100 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:ErgoHeapSizeLimit=0"})).cap_bytes, 256 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:ErgoHeapSizeLimit=100m", "-Xmx1g"})).cap_bytes, 1 * kGiB);
}

TEST(RuntimeCapJvmTest, AnExplicitMaximumIsTheCapAtAnyLimit) {
  for (uint64_t limit_mib : {128, 256, 1024, 4096}) {
    SCOPED_TRACE(limit_mib);
    RuntimeHeapCap xmx = Cap(Java({"-Xmx300m"}), {}, InCgroupMiB(limit_mib));
    EXPECT_EQ(xmx.cap_bytes, 314572800u);
    EXPECT_EQ(xmx.source, "flag");
    EXPECT_EQ(Cap(Java({"-XX:MaxHeapSize=300m"}), {}, InCgroupMiB(limit_mib)).cap_bytes,
              314572800u);
    EXPECT_EQ(
        Cap(Java({"-Xmx300m", "-XX:MaxRAMPercentage=75"}), {}, InCgroupMiB(limit_mib)).cap_bytes,
        314572800u);
  }
}

TEST(RuntimeCapJvmTest, AnExplicitMaximumIsAlignedUpLikeHotSpotDoes) {
  // Measured: -Xmx301m runs with 302 MiB, -Xmx100000001 with 96 MiB.
  EXPECT_EQ(Cap(Java({"-Xmx301m"})).cap_bytes, 302 * kMiB);
  EXPECT_EQ(Cap(Java({"-Xmx100000001"})).cap_bytes, 96 * kMiB);
  // G1 aligns to its region: 10001 MiB / 2048 rounds up to 8 MiB regions (measured 10008 MiB);
  // Serial to 2 MiB (measured 10002 MiB).
  EXPECT_EQ(Cap(Java({"-XX:+UseG1GC", "-Xmx10001m"})).cap_bytes, 10008 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:+UseSerialGC", "-Xmx10001m"})).cap_bytes, 10002 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:+UseParallelGC", "-Xmx10001m"})).cap_bytes, 10002 * kMiB);
  EXPECT_EQ(Cap(Java({"-XX:+UseG1GC", "-XX:G1HeapRegionSize=32m", "-Xmx10001m"})).cap_bytes,
            10016 * kMiB);
  // With no collector named, G1 on a machine of 1792 MiB or more (2 CPUs assumed), else Serial.
  EXPECT_EQ(Cap(Java({"-Xmx10001m"}), {}, InCgroupMiB(16384)).cap_bytes, 10008 * kMiB);
  EXPECT_EQ(Cap(Java({"-Xmx10001m"}), {}, InCgroupMiB(1024)).cap_bytes, 10002 * kMiB);
}

TEST(RuntimeCapJvmTest, SizesTakeHotSpotsSuffixes) {
  EXPECT_EQ(Cap(Java({"-Xmx1073741824"})).cap_bytes, 1 * kGiB);
  EXPECT_EQ(Cap(Java({"-Xmx1048576k"})).cap_bytes, 1 * kGiB);
  EXPECT_EQ(Cap(Java({"-Xmx1048576K"})).cap_bytes, 1 * kGiB);
  EXPECT_EQ(Cap(Java({"-Xmx1024m"})).cap_bytes, 1 * kGiB);
  EXPECT_EQ(Cap(Java({"-Xmx1024M"})).cap_bytes, 1 * kGiB);
  EXPECT_EQ(Cap(Java({"-Xmx1g"})).cap_bytes, 1 * kGiB);
  EXPECT_EQ(Cap(Java({"-Xmx1G"})).cap_bytes, 1 * kGiB);
  EXPECT_EQ(Cap(Java({"-XX:+UseSerialGC", "-Xmx1t"})).cap_bytes, 1024 * kGiB);
  EXPECT_EQ(Cap(Java({"-XX:+UseSerialGC", "-Xmx2T"})).cap_bytes, 2048 * kGiB);
  EXPECT_EQ(Cap(Java({"-Xmx0x40000000"})).cap_bytes, 1 * kGiB);
}

// Command-line structure: where the JVM's options end.

TEST(RuntimeCapJvmTest, AnXmxAfterTheMainClassIsTheApplicationsNotTheHeaps) {
  RuntimeHeapCap cap = Cap({"java", "-cp", "x", "Main", "-Xmx9g"});
  EXPECT_EQ(cap.cap_bytes, 256 * kMiB);
  EXPECT_EQ(cap.source, "ergonomics");
}

TEST(RuntimeCapJvmTest, JarAndModuleEndTheOptions) {
  EXPECT_EQ(Cap({"java", "-jar", "app.jar", "-Xmx9g"}).cap_bytes, 256 * kMiB);
  EXPECT_EQ(Cap({"java", "-jar", "-Xmx9g"}).cap_bytes, 256 * kMiB);  // the jar's name
  EXPECT_EQ(Cap({"java", "-m", "app/app.Main", "-Xmx9g"}).cap_bytes, 256 * kMiB);
  EXPECT_EQ(Cap({"java", "--module", "app/app.Main", "-Xmx9g"}).cap_bytes, 256 * kMiB);
  EXPECT_EQ(Cap({"java", "--module=app/app.Main", "-Xmx9g"}).cap_bytes, 256 * kMiB);
  EXPECT_EQ(Cap({"java", "-Xmx2g", "-jar", "app.jar", "-Xmx9g"}).cap_bytes, 2 * kGiB);
  // A bad size among the application's arguments is none of the JVM's business.
  EXPECT_TRUE(Parse({"java", "-jar", "app.jar", "-Xmx12q"}).ok());
}

TEST(RuntimeCapJvmTest, TheValueOfALauncherOptionIsNotTheMainClass) {
  for (const char* option :
       {"-cp", "-classpath", "--class-path", "-p", "--module-path", "--upgrade-module-path",
        "--add-modules", "--limit-modules", "--add-reads", "--add-exports", "--add-opens",
        "--patch-module", "--enable-native-access", "--source"}) {
    SCOPED_TRACE(option);
    EXPECT_EQ(Cap({"java", option, "value", "-Xmx2g", "Main"}).cap_bytes, 2 * kGiB);
  }
  // Nor does an option's separate value count as an option.
  EXPECT_EQ(Cap({"java", "-cp", "-Xmx9g", "Main"}).cap_bytes, 256 * kMiB);
  // The --opt=value spelling is one argument.
  EXPECT_EQ(Cap({"java", "--class-path=a.jar", "-Xmx2g", "Main"}).cap_bytes, 2 * kGiB);
}

TEST(RuntimeCapJvmTest, AnArgfileLeavesTheCapUnknownUnlessAnExplicitMaximumFollowsIt) {
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {"java", "@/app/jvm.args", "Main"},
           {"java", "-Xmx1g", "@/app/jvm.args", "Main"},  // the file may override it
           {"java", "-XX:VMOptionsFile=/app/vm.options", "Main"},
           {"java", "-XX:MaxRAMPercentage=75", "@/app/jvm.args", "Main"}}) {
    RuntimeHeapCap cap = Cap(argv);
    EXPECT_EQ(cap.kind, RuntimeKind::kJvm) << absl::StrJoin(argv, " ");
    EXPECT_EQ(cap.cap_bytes, 0u) << absl::StrJoin(argv, " ");
    EXPECT_EQ(cap.source, "unknown");
  }
  EXPECT_EQ(Cap({"java", "@/app/jvm.args", "-Xmx1g", "Main"}).cap_bytes, 1 * kGiB);
  EXPECT_EQ(Cap({"java", "-XX:VMOptionsFile=/app/vm.options", "-Xmx1g", "Main"}).cap_bytes,
            1 * kGiB);
  // _JAVA_OPTIONS comes after the whole command line.
  RuntimeHeapCap env = Cap({"java", "@/app/jvm.args", "Main"}, {"_JAVA_OPTIONS=-Xmx1g"});
  EXPECT_EQ(env.cap_bytes, 1 * kGiB);
  EXPECT_EQ(env.source, "env");
  // JDK_JAVA_OPTIONS may name an argfile too.
  EXPECT_EQ(Cap(Java({}), {"JDK_JAVA_OPTIONS=@/app/jvm.args"}).cap_bytes, 0u);
  // After the main class an @ argument is the application's; after --disable-@files, or
  // escaped as @@, it is no file.
  EXPECT_EQ(Cap({"java", "Main", "@/app/jvm.args"}).cap_bytes, 256 * kMiB);
  EXPECT_EQ(Cap({"java", "--disable-@files", "-Xmx2g", "@Main"}).cap_bytes, 2 * kGiB);
  EXPECT_EQ(Cap({"java", "-Xmx2g", "@@Main"}).cap_bytes, 2 * kGiB);
}

// Environment variables.

TEST(RuntimeCapJvmTest, OptionsVariablesApplyInHotSpotsOrder) {
  // JAVA_TOOL_OPTIONS, then JDK_JAVA_OPTIONS, then the command line, then _JAVA_OPTIONS.
  RuntimeHeapCap tool = Cap(Java({}), {"JAVA_TOOL_OPTIONS=-Xmx1g"});
  EXPECT_EQ(tool.cap_bytes, 1 * kGiB);
  EXPECT_EQ(tool.source, "env");
  RuntimeHeapCap jdk = Cap(Java({}), {"JAVA_TOOL_OPTIONS=-Xmx1g", "JDK_JAVA_OPTIONS=-Xmx2g"});
  EXPECT_EQ(jdk.cap_bytes, 2 * kGiB);
  EXPECT_EQ(jdk.source, "env");
  EXPECT_EQ(Cap(Java({}), {"JDK_JAVA_OPTIONS=-Xmx2g", "JAVA_TOOL_OPTIONS=-Xmx1g"}).cap_bytes,
            2 * kGiB);
  RuntimeHeapCap flag =
      Cap(Java({"-Xmx3g"}), {"JAVA_TOOL_OPTIONS=-Xmx1g", "JDK_JAVA_OPTIONS=-Xmx2g"});
  EXPECT_EQ(flag.cap_bytes, 3 * kGiB);
  EXPECT_EQ(flag.source, "flag");
  RuntimeHeapCap last = Cap(Java({"-Xmx3g"}), {"_JAVA_OPTIONS=-Xmx4g", "JAVA_TOOL_OPTIONS=-Xmx1g",
                                               "JDK_JAVA_OPTIONS=-Xmx2g"});
  EXPECT_EQ(last.cap_bytes, 4 * kGiB);
  EXPECT_EQ(last.source, "env");
}

TEST(RuntimeCapJvmTest, ErgonomicFlagsFromTheEnvironmentCount) {
  RuntimeHeapCap cap = Cap(Java({}), {"JAVA_TOOL_OPTIONS=-XX:MaxRAMPercentage=75"});
  EXPECT_EQ(cap.cap_bytes, 768 * kMiB);
  EXPECT_EQ(cap.source, "ergonomics");
  EXPECT_EQ(Cap(Java({"-XX:MaxRAMPercentage=50"}), {"JAVA_TOOL_OPTIONS=-XX:MaxRAMPercentage=75"})
                .cap_bytes,
            512 * kMiB);
  EXPECT_EQ(
      Cap(Java({}), {"JAVA_TOOL_OPTIONS=-XX:-UseContainerSupport"}, InCgroupMiB(128)).cap_bytes,
      6028 * kMiB);
}

TEST(RuntimeCapJvmTest, OptionsVariablesSplitOnWhitespaceAndHonourQuotes) {
  EXPECT_EQ(Cap(Java({}), {"JAVA_TOOL_OPTIONS=  -Dx=1\t-Xmx1g\n-Dy=2 "}).cap_bytes, 1 * kGiB);
  EXPECT_EQ(Cap(Java({}), {"JAVA_TOOL_OPTIONS=-Dname='a -Xmx9g b' -Xmx1g"}).cap_bytes, 1 * kGiB);
  EXPECT_EQ(Cap(Java({}), {"JAVA_TOOL_OPTIONS=-Dname=\"a -Xmx9g\""}).cap_bytes, 256 * kMiB);
  EXPECT_EQ(Cap(Java({}), {"JAVA_TOOL_OPTIONS=\"-Xmx1g\""}).cap_bytes, 1 * kGiB);
  // JDK_JAVA_OPTIONS may carry launcher options with separate values.
  EXPECT_EQ(Cap(Java({}), {"JDK_JAVA_OPTIONS=--add-opens java.base/java.lang=ALL-UNNAMED -Xmx1g"})
                .cap_bytes,
            1 * kGiB);
}

TEST(RuntimeCapJvmTest, OnlyTheOptionsVariablesOfTheEnvironmentCount) {
  EXPECT_EQ(Cap(Java({}), {"JAVA_OPTS=-Xmx1g", "XJAVA_TOOL_OPTIONS=-Xmx1g", "JAVA_TOOL_OPTIONS"})
                .cap_bytes,
            256 * kMiB);
  // Like getenv, the first of two entries with the same name.
  EXPECT_EQ(Cap(Java({}), {"JAVA_TOOL_OPTIONS=-Xmx1g", "JAVA_TOOL_OPTIONS=-Xmx2g"}).cap_bytes,
            1 * kGiB);
}

// Bad values.

TEST(RuntimeCapJvmTest, ABadSizeThatCountsIsAnErrorNamingTheOption) {
  absl::StatusOr<RuntimeHeapCap> cap = Parse(Java({"-Xmx12q"}));
  ASSERT_FALSE(cap.ok());
  EXPECT_EQ(cap.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cap.status().message(), "jvm option -Xmx12q: bad size");
  for (const char* option : {"-Xmx", "-Xmx0", "-Xmx-1g", "-Xmx1gg", "-Xmx 1g", "-Xmx99999999999t",
                             "-XX:MaxHeapSize=lots"}) {
    absl::StatusOr<RuntimeHeapCap> bad = Parse(Java({option}));
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << option;
    EXPECT_TRUE(absl::StrContains(bad.status().message(), option)) << bad.status();
  }
  EXPECT_EQ(Parse({"java"}, {"_JAVA_OPTIONS=-Xmx12q"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RuntimeCapJvmTest, ABadErgonomicFlagIsAnErrorOnlyWhenTheErgonomicsCount) {
  for (const char* option :
       {"-XX:MaxRAMPercentage=lots", "-XX:MaxRAMPercentage=101", "-XX:MinRAMPercentage=-1",
        "-XX:MaxRAMPercentage=nan", "-XX:MaxRAMFraction=0", "-XX:MaxRAM=1q", "-Xms1q",
        "-XX:ErgoHeapSizeLimit=x"}) {
    absl::StatusOr<RuntimeHeapCap> bad = Parse(Java({option}));
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << option;
    EXPECT_TRUE(absl::StrContains(bad.status().message(), option)) << bad.status();
    // With an explicit maximum they decide nothing.
    EXPECT_TRUE(Parse(Java({option, "-Xmx1g"})).ok()) << option;
  }
  // A bad value overridden by a later one is not the one that counts.
  EXPECT_EQ(Cap(Java({"-Xmx12q", "-Xmx1g"})).cap_bytes, 1 * kGiB);
  EXPECT_EQ(Cap(Java({"-Xmx1g"}), {"JAVA_TOOL_OPTIONS=-Xmx12q"}).cap_bytes, 1 * kGiB);
}

// ---------------------------------------------------------------------------------------------
// Node

TEST(RuntimeCapNodeTest, MaxOldSpaceSizeIsTheCapInMiB) {
  RuntimeHeapCap cap = Cap({"node", "--max-old-space-size=4096", "server.js"});
  EXPECT_EQ(cap.kind, RuntimeKind::kNode);
  EXPECT_EQ(cap.cap_bytes, 4 * kGiB);
  EXPECT_EQ(cap.source, "flag");
  EXPECT_EQ(Cap({"node", "--max_old_space_size=512", "server.js"}).cap_bytes, 512 * kMiB);
  EXPECT_EQ(Cap({"node", "--max-old-space-size", "512", "server.js"}).cap_bytes, 512 * kMiB);
  EXPECT_EQ(Cap({"node", "--max_old_space_size", "512", "server.js"}).cap_bytes, 512 * kMiB);
  EXPECT_EQ(Cap({"node", "--max-old-space-size=1", "--max-old-space-size=2", "s.js"}).cap_bytes,
            2 * kMiB);
}

TEST(RuntimeCapNodeTest, WithoutTheFlagTheCapIsUnknown) {
  RuntimeHeapCap cap = Cap({"node", "server.js"});
  EXPECT_EQ(cap.kind, RuntimeKind::kNode);
  EXPECT_EQ(cap.cap_bytes, 0u);
  EXPECT_EQ(cap.source, "unknown");
}

TEST(RuntimeCapNodeTest, NodeOptionsCountAndTheCommandLineWins) {
  RuntimeHeapCap env = Cap({"node", "server.js"}, {"NODE_OPTIONS=--max-old-space-size=1024"});
  EXPECT_EQ(env.cap_bytes, 1 * kGiB);
  EXPECT_EQ(env.source, "env");
  RuntimeHeapCap flag = Cap({"node", "--max-old-space-size=2048", "server.js"},
                            {"NODE_OPTIONS=--max-old-space-size=1024"});
  EXPECT_EQ(flag.cap_bytes, 2 * kGiB);
  EXPECT_EQ(flag.source, "flag");
  EXPECT_EQ(
      Cap({"node", "s.js"}, {"NODE_OPTIONS=--require ./a.js --max-old-space-size 300"}).cap_bytes,
      300 * kMiB);
}

TEST(RuntimeCapNodeTest, OptionsEndAtTheScriptOrDoubleDash) {
  EXPECT_EQ(Cap({"node", "server.js", "--max-old-space-size=4096"}).cap_bytes, 0u);
  EXPECT_EQ(Cap({"node", "--", "server.js", "--max-old-space-size=4096"}).cap_bytes, 0u);
  EXPECT_EQ(Cap({"node", "-", "--max-old-space-size=4096"}).cap_bytes, 0u);
  // Application arguments are not checked.
  EXPECT_TRUE(Parse({"node", "server.js", "--max-old-space-size=lots"}).ok());
}

TEST(RuntimeCapNodeTest, TheValueOfEvalPrintOrRequireIsNotTheScript) {
  for (const char* option : {"-e", "--eval", "-p", "--print", "-r", "--require"}) {
    SCOPED_TRACE(option);
    EXPECT_EQ(Cap({"node", option, "x", "--max-old-space-size=100"}).cap_bytes, 100 * kMiB);
  }
  EXPECT_EQ(Cap({"node", "--require=x", "--max-old-space-size=100", "s.js"}).cap_bytes, 100 * kMiB);
}

TEST(RuntimeCapNodeTest, ANonNumericSizeIsAnErrorNamingTheOption) {
  absl::StatusOr<RuntimeHeapCap> cap = Parse({"node", "--max-old-space-size=lots", "s.js"});
  EXPECT_EQ(cap.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cap.status().message(), "node option --max-old-space-size=lots: bad size");
  for (const std::vector<std::string>& argv :
       std::vector<std::vector<std::string>>{{"node", "--max-old-space-size=1.5", "s.js"},
                                             {"node", "--max-old-space-size=", "s.js"},
                                             {"node", "--max-old-space-size=1g", "s.js"},
                                             {"node", "--max-old-space-size"},
                                             {"node", "--max-old-space-size", "lots"}}) {
    EXPECT_EQ(Parse(argv).status().code(), absl::StatusCode::kInvalidArgument)
        << absl::StrJoin(argv, " ");
  }
  EXPECT_EQ(Parse({"node", "s.js"}, {"NODE_OPTIONS=--max-old-space-size=x"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// memcached

TEST(RuntimeCapMemcachedTest, WithoutMTheItemMemoryIs64MiB) {
  RuntimeHeapCap cap = Cap({"memcached", "-u", "memcache", "-p", "11211"});
  EXPECT_EQ(cap.kind, RuntimeKind::kMemcached);
  EXPECT_EQ(cap.cap_bytes, 64 * kMiB);
  EXPECT_EQ(cap.source, "default");
}

TEST(RuntimeCapMemcachedTest, EverySpellingOfTheMemoryLimitIsMiB) {
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {"memcached", "-m", "1024"},
           {"memcached", "-m1024"},
           {"memcached", "--memory-limit=1024"},
           {"memcached", "--memory-limit", "1024"},
           {"memcached", "-u", "nobody", "-m", "1024", "-c", "4096"}}) {
    RuntimeHeapCap cap = Cap(argv);
    EXPECT_EQ(cap.cap_bytes, 1 * kGiB) << absl::StrJoin(argv, " ");
    EXPECT_EQ(cap.source, "flag");
  }
}

TEST(RuntimeCapMemcachedTest, ASuffixSetsTheUnit) {
  EXPECT_EQ(Cap({"memcached", "-m", "64m"}).cap_bytes, 64 * kMiB);
  EXPECT_EQ(Cap({"memcached", "-m", "64M"}).cap_bytes, 64 * kMiB);
  EXPECT_EQ(Cap({"memcached", "-m", "1g"}).cap_bytes, 1 * kGiB);
  EXPECT_EQ(Cap({"memcached", "-m", "2G"}).cap_bytes, 2 * kGiB);
  EXPECT_EQ(Cap({"memcached", "-m", "65536k"}).cap_bytes, 64 * kMiB);
}

TEST(RuntimeCapMemcachedTest, TheLastMWins) {
  EXPECT_EQ(Cap({"memcached", "-m", "128", "--memory-limit=256", "-m512"}).cap_bytes, 512 * kMiB);
  EXPECT_EQ(Cap({"memcached", "-m", "lots", "-m", "128"}).cap_bytes, 128 * kMiB);
}

TEST(RuntimeCapMemcachedTest, ABadMemoryLimitIsAnErrorNamingTheOption) {
  absl::StatusOr<RuntimeHeapCap> cap = Parse({"memcached", "-m", "lots"});
  EXPECT_EQ(cap.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cap.status().message(), "memcached option -m lots: bad size");
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {"memcached", "-m"}, {"memcached", "-m", "1t"}, {"memcached", "--memory-limit="}}) {
    EXPECT_EQ(Parse(argv).status().code(), absl::StatusCode::kInvalidArgument)
        << absl::StrJoin(argv, " ");
  }
}

}  // namespace
}  // namespace tapio
