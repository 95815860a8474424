// RuntimeHeapCap: how far a managed runtime's own settings let its heap grow, read from the
// process's argv and environment (/proc/PID/cmdline, /proc/PID/environ). A heap capped well below
// the container's limit levels off before the OOM killer; one allowed past it (a JVM with -Xmx
// above the limit, memcached with -m above it) can only end in an OOM kill once it fills. The
// pipeline reports the cap with each container's memory_usage event and in its traces.
//
// Runtimes and the facts each one's cap is computed from:
//   jvm        basename of argv[0] is "java". HotSpot reads JAVA_TOOL_OPTIONS, then the command
//              line, then _JAVA_OPTIONS, and the last value of a flag wins. JDK_JAVA_OPTIONS is
//              expanded by the launcher and does not appear in /proc/PID/cmdline, so it is read
//              from the environment between JAVA_TOOL_OPTIONS and the command line. Options end
//              at the main class, after -jar FILE, or after -m/--module MODULE.
//              -Xmx / -XX:MaxHeapSize give the cap. Without them it is HotSpot's ergonomics
//              (Arguments::set_heap_size, JDK 10+): physical memory is -XX:MaxRAM if set, else the
//              container's limit (with UseContainerSupport, the default) or the host's memory,
//              at most 128 GiB unless a Max/Min/InitialRAMPercentage or -Fraction flag is given;
//              the heap is MinRAMPercentage (50) of it when that is below the default
//              MaxHeapSize (96 MiB scaled by 1.3 for 64-bit words, 124.8 MiB), else the larger of
//              MaxRAMPercentage (25) of it and that default; -XX:MaxRAMFraction and
//              MinRAMFraction (deprecated) set the percentages when those are not given; at
//              least -Xms. Explicit or not, the maximum is aligned up to the collector's heap
//              alignment: 2 MiB, or G1's region size (up to 32 MiB) for heaps above 4 GiB. The
//              compressed-oops ceiling (about 30 GiB, only reached from 120 GiB of memory) is
//              not modelled. Checked against `java -XX:+PrintFlagsFinal` in memory cgroups
//              (tests/core/runtime_cap_jvm_test.cc).
//   node       basename "node" or "nodejs". --max-old-space-size=MiB (or --max_old_space_size,
//              either with the value as the next argument) from NODE_OPTIONS, then the command
//              line, which wins; options end at the script. Without it V8 sizes the heap from
//              the memory it sees, by rules that change between versions: the cap is unknown.
//   memcached  basename "memcached". -m / --memory-limit MiB (the item memory; connections and
//              the hash table come on top), default 64 MiB.
// Not covered: redis-server rewrites its argv to its process title, so maxmemory is not in
// /proc/PID/cmdline; Python and Go have no heap cap in their arguments (GOMEMLIMIT is a soft
// target, not a cap). A JVM started with an @argfile or -XX:VMOptionsFile without an -Xmx after
// it has cap 0 (unknown): the file lives in the container's filesystem and is not read.
//
// Pure: no I/O. Thread-compatible.
#ifndef TAPIO_AGENT_CORE_RUNTIME_CAP_H_
#define TAPIO_AGENT_CORE_RUNTIME_CAP_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tapio {

enum class RuntimeKind : uint8_t { kNone = 0, kJvm = 1, kNode = 2, kMemcached = 3 };

// "" for kNone, else "jvm", "node", "memcached".
std::string_view RuntimeKindName(RuntimeKind kind);

struct RuntimeHeapCap {
  RuntimeKind kind = RuntimeKind::kNone;
  // The heap's maximum in bytes; 0 when the settings leave it unknown (see above).
  uint64_t cap_bytes = 0;
  // Where cap_bytes came from, a static string: "flag" (the command line), "env" (an options
  // variable: JAVA_TOOL_OPTIONS, JDK_JAVA_OPTIONS, _JAVA_OPTIONS, NODE_OPTIONS), "ergonomics"
  // (the JVM's default sizing), "default" (memcached without -m), or "unknown".
  std::string_view source = "unknown";
};

// What the runtime sizes itself against.
struct RuntimeMemory {
  uint64_t limit_bytes = 0;  // the process's effective memory cgroup limit; 0 = none
  uint64_t host_bytes = 0;   // MemTotal of the host
};

// Which runtime argv[0] names (its basename), without reading any option.
RuntimeKind RuntimeKindOf(absl::Span<const std::string> argv);

// argv: /proc/PID/cmdline split at NULs. environ: "NAME=value" entries of /proc/PID/environ
// (empty: only the command line counts; RuntimeCapScanner does not trust a JVM's or Node.js's
// answer without their environment). A process that is no runtime listed above gives kind
// kNone, cap 0. A cap value that does not parse (-Xmx12q, -m lots) is InvalidArgument naming the
// option: the runtime itself would have refused it, so this parser, not the process, is wrong.
absl::StatusOr<RuntimeHeapCap> ParseRuntimeHeapCap(absl::Span<const std::string> argv,
                                                   absl::Span<const std::string> environ,
                                                   const RuntimeMemory& memory);

// /proc/PID/cmdline or /proc/PID/environ contents split at NUL bytes; a trailing NUL ends the
// last entry rather than starting an empty one.
std::vector<std::string> SplitNulSeparated(std::string_view data);

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_RUNTIME_CAP_H_
