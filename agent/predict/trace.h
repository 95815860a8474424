// Trace files: labelled series of MemorySample, one JSON object per line.
//
//   line 1   header  {"tapio_trace":1,"class":"linear_leak","source":"sim","name":"...",
//                     "seed":7,"oom_time_ms":1234567}       (oom_time_ms null or absent: no OOM)
//   line 2.. sample  {"time_ms":0,"usage_bytes":...,"limit_bytes":...,"anon_bytes":...,
//                     "file_bytes":...,"active_file_bytes":...,"inactive_file_bytes":...,
//                     "shmem_bytes":...,"kernel_unreclaimable_bytes":...,"swap_bytes":...,
//                     "limit_hits":...,"oom_kills":...,"psi_some_avg10":-1,"psi_full_avg10":-1,
//                     "reclaim_stall_ns":...}               (every field required, but
//                     "runtime_heap_cap_bytes":..., written only when non-zero)
//            label   {"label":{"oom_time_ms":1234567}}     (optional, any line after the
//                     header; sets the OOM time, for recorders that learn it at the end)
// Sample times strictly increase. Blank lines are ignored. Any other line is an error naming
// the line number and the field. Samples at or after the OOM time describe the killed cgroup and
// are kept as read; evaluation replays only those before it.
#ifndef TAPIO_AGENT_PREDICT_TRACE_H_
#define TAPIO_AGENT_PREDICT_TRACE_H_

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/predict/predictor.h"

namespace tapio::predict {

struct TraceHeader {
  std::string workload_class;          // "linear_leak", ..., or e.g. "kernel_leak" for real runs
  std::string source = "sim";          // "sim" or "kernel"
  std::string name;                    // free text: cgroup path, workload command, ...
  uint64_t seed = 0;                   // simulator seed (0 for real traces)
  std::optional<int64_t> oom_time_ms;  // time of the OOM kill on the samples' clock; none: no OOM
};

struct Trace {
  TraceHeader header;
  std::vector<MemorySample> samples;
};

std::string TraceHeaderToJsonLine(const TraceHeader& header);  // no trailing newline
std::string SampleToJsonLine(const MemorySample& sample);
std::string LabelToJsonLine(int64_t oom_time_ms);
std::string TraceToText(const Trace& trace);  // header + samples, '\n' after each

// Errors: "line 4: field 'usage_bytes': expected a non-negative integer".
absl::StatusOr<Trace> ParseTrace(std::string_view text);
absl::StatusOr<Trace> ReadTraceFile(const std::string& path);

// Appends a trace to a file as samples arrive (the agent's recorder). Owns the stream.
// Not thread-safe.
class TraceWriter {
 public:
  static absl::StatusOr<std::unique_ptr<TraceWriter>> Create(const std::string& path,
                                                             const TraceHeader& header);
  absl::Status Append(const MemorySample& sample);
  absl::Status AppendOomLabel(int64_t oom_time_ms);
  absl::Status Close();  // flushes; further appends fail
  ~TraceWriter();

 private:
  TraceWriter(std::string path, std::ofstream out);
  absl::Status WriteLine(const std::string& line);
  std::string path_;
  std::ofstream out_;
  int64_t last_time_ms_ = INT64_MIN;
};

}  // namespace tapio::predict

#endif  // TAPIO_AGENT_PREDICT_TRACE_H_
