// main() of every Google Benchmark harness here: the agent's process-wide settings first, so the
// benchmarks measure the code as the agent runs it.
#include <benchmark/benchmark.h>

#include "agent/core/runtime.h"

int main(int argc, char** argv) {
  tapio::DisableMutexDeadlockDetection();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
