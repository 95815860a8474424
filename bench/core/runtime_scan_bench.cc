// Cost of finding a cgroup's runtimes and their heap caps (agent/core/runtime_scan.h), which the
// sampler pays once per --runtime_scan_interval_s per memory-limited cgroup, and at an exec.
//
//   BM_ParseJvm             ParseRuntimeHeapCap on a Kubernetes-style JVM: a long class path,
//                           JAVA_TOOL_OPTIONS, 40 environment variables, its heap from the
//                           container's limit (ergonomics)
//   BM_ScanFirst/<n>        a first scan of a cgroup of n processes of this machine's real
//                           /proc (each one's cmdline read; runtimes' environ too)
//   BM_ScanAgain/<n>        a later scan of the same cgroup: cgroup.procs only, nothing new
// The cgroup is a directory with a cgroup.procs file listing real pids of this machine.
#include <dirent.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/core/runtime_cap.h"
#include "agent/core/runtime_scan.h"
#include "benchmark/benchmark.h"

namespace {

using tapio::ParseRuntimeHeapCap;
using tapio::RuntimeCapScanner;
using tapio::RuntimeMemory;
using tapio::RuntimeScanCounters;

void BM_ParseJvm(benchmark::State& state) {
  std::string cp = "/app/classes";
  for (int i = 0; i < 60; ++i) absl::StrAppend(&cp, ":/app/lib/dependency-", i, "-1.2.3.jar");
  const std::vector<std::string> argv = {"/opt/java/openjdk/bin/java",
                                         "-XX:+UseG1GC",
                                         "-XX:MaxRAMPercentage=75.0",
                                         "-Dspring.profiles.active=prod",
                                         "-cp",
                                         cp,
                                         "com.example.Application",
                                         "--server.port=8080"};
  std::vector<std::string> env;
  for (int i = 0; i < 40; ++i) env.push_back(absl::StrCat("SERVICE_", i, "_PORT=tcp://10.0.0.", i));
  env.push_back("JAVA_TOOL_OPTIONS=-XX:+ExitOnOutOfMemoryError -Xss512k");
  RuntimeMemory memory;
  memory.limit_bytes = 1ull << 30;
  memory.host_bytes = 64ull << 30;
  for (auto _ : state) {
    auto cap = ParseRuntimeHeapCap(argv, env, memory);
    benchmark::DoNotOptimize(cap);
  }
}
BENCHMARK(BM_ParseJvm);

// A cgroup directory listing up to n real pids of this machine.
std::string FixtureCgroup(int n) {
  const std::string dir = absl::StrCat("/tmp/tapio-runtime-scan-bench-", getpid(), "-", n);
  std::filesystem::create_directories(dir);
  std::ofstream procs(dir + "/cgroup.procs");
  DIR* d = opendir("/proc");
  int listed = 0;
  while (dirent* e = d ? readdir(d) : nullptr) {
    uint32_t pid = 0;
    if (listed < n && absl::SimpleAtoi(e->d_name, &pid)) {
      procs << pid << "\n";
      ++listed;
    }
  }
  if (d) closedir(d);
  return dir;
}

void BM_ScanFirst(benchmark::State& state) {
  const std::string dir = FixtureCgroup(static_cast<int>(state.range(0)));
  RuntimeMemory memory;
  memory.limit_bytes = 1ull << 30;
  RuntimeScanCounters counters;
  for (auto _ : state) {
    RuntimeCapScanner scanner;
    auto s = scanner.Scan(dir, memory, false, &counters);
    benchmark::DoNotOptimize(s);
  }
  state.counters["processes_read_per_scan"] =
      static_cast<double>(counters.processes_read) / static_cast<double>(counters.scans);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ScanFirst)->Arg(10)->Arg(50);

void BM_ScanAgain(benchmark::State& state) {
  const std::string dir = FixtureCgroup(static_cast<int>(state.range(0)));
  RuntimeMemory memory;
  memory.limit_bytes = 1ull << 30;
  RuntimeScanCounters counters;
  RuntimeCapScanner scanner;
  auto first = scanner.Scan(dir, memory, false, &counters);
  benchmark::DoNotOptimize(first);
  for (auto _ : state) {
    auto s = scanner.Scan(dir, memory, false, &counters);
    benchmark::DoNotOptimize(s);
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ScanAgain)->Arg(10)->Arg(50);

}  // namespace
