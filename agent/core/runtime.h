// Process-wide settings the agent and the benchmarks apply once, at start.
#ifndef TAPIO_AGENT_CORE_RUNTIME_H_
#define TAPIO_AGENT_CORE_RUNTIME_H_

namespace tapio {

// Debian's abseil (20220623) is built without NDEBUG, so absl::Mutex maintains its deadlock
// detection graph on every Lock: measured here, 84 ns against 24 ns for a pair of nested locks,
// and 18% of all CPU in the API fan-out benchmark (docs/performance.md). The agent and the
// benchmarks switch it off before any thread starts; the tests leave it on, so a lock-order
// inversion still fails them.
void DisableMutexDeadlockDetection();

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_RUNTIME_H_
