#include "agent/predict/trace.h"

#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace tapio::predict {
namespace {

using Json = nlohmann::ordered_json;

// The sample's integer fields, in file order.
struct U64Field {
  const char* key;
  uint64_t MemorySample::*member;
};
constexpr U64Field kU64Fields[] = {
    {"usage_bytes", &MemorySample::usage_bytes},
    {"limit_bytes", &MemorySample::limit_bytes},
    {"anon_bytes", &MemorySample::anon_bytes},
    {"file_bytes", &MemorySample::file_bytes},
    {"active_file_bytes", &MemorySample::active_file_bytes},
    {"inactive_file_bytes", &MemorySample::inactive_file_bytes},
    {"shmem_bytes", &MemorySample::shmem_bytes},
    {"kernel_unreclaimable_bytes", &MemorySample::kernel_unreclaimable_bytes},
    {"swap_bytes", &MemorySample::swap_bytes},
    {"limit_hits", &MemorySample::limit_hits},
    {"oom_kills", &MemorySample::oom_kills},
    {"reclaim_stall_ns", &MemorySample::reclaim_stall_ns},
};
constexpr size_t kSampleFieldCount = std::size(kU64Fields) + 3;  // + time_ms and two PSI
// Optional (absent = 0, written only when set): traces recorded before the agent read runtime
// heap caps have none.
constexpr char kRuntimeCapKey[] = "runtime_heap_cap_bytes";

absl::Status LineError(size_t line, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", what));
}

// j[key], which must be a non-negative integer.
absl::Status ReadU64(const nlohmann::json& j, const char* key, size_t line, uint64_t* out) {
  const auto& v = j[key];
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
    return LineError(line, absl::StrCat("field '", key, "': expected a non-negative integer"));
  }
  *out = v.get<uint64_t>();
  return absl::OkStatus();
}

absl::Status ParseSample(const nlohmann::json& j, size_t line, MemorySample* s) {
  for (const auto& [key, value] : j.items()) {
    bool known = key == "time_ms" || key == "psi_some_avg10" || key == "psi_full_avg10";
    for (const U64Field& f : kU64Fields) known = known || key == f.key;
    if (!known && key != kRuntimeCapKey) {
      return LineError(line, absl::StrCat("unknown field '", key, "'"));
    }
  }
  const bool has_cap = j.contains(kRuntimeCapKey);
  if (j.size() != kSampleFieldCount + (has_cap ? 1 : 0)) {
    for (const char* key : {"time_ms", "psi_some_avg10", "psi_full_avg10"}) {
      if (!j.contains(key)) return LineError(line, absl::StrCat("field '", key, "': missing"));
    }
    for (const U64Field& f : kU64Fields) {
      if (!j.contains(f.key)) return LineError(line, absl::StrCat("field '", f.key, "': missing"));
    }
  }
  const auto& t = j["time_ms"];
  if (!t.is_number_integer()) return LineError(line, "field 'time_ms': expected an integer");
  s->time_ms = t.get<int64_t>();
  for (const U64Field& f : kU64Fields) {
    if (absl::Status st = ReadU64(j, f.key, line, &(s->*f.member)); !st.ok()) return st;
  }
  s->runtime_heap_cap_bytes = 0;
  if (has_cap) {
    if (absl::Status st = ReadU64(j, kRuntimeCapKey, line, &s->runtime_heap_cap_bytes); !st.ok()) {
      return st;
    }
  }
  for (auto [key, member] : {std::pair{"psi_some_avg10", &MemorySample::psi_some_avg10},
                             std::pair{"psi_full_avg10", &MemorySample::psi_full_avg10}}) {
    const auto& v = j[key];
    if (!v.is_number())
      return LineError(line, absl::StrCat("field '", key, "': expected a number"));
    double d = v.get<double>();
    if (!(d == -1 || (d >= 0 && d <= 100))) {
      return LineError(line, absl::StrCat("field '", key, "': expected -1 or 0..100"));
    }
    s->*member = d;
  }
  return absl::OkStatus();
}

absl::Status ParseHeader(const nlohmann::json& j, size_t line, TraceHeader* h) {
  if (!j.contains("tapio_trace"))
    return LineError(line, "field 'tapio_trace': missing (not a trace header)");
  if (!j["tapio_trace"].is_number_integer() || j["tapio_trace"].get<int64_t>() != 1) {
    return LineError(line, "field 'tapio_trace': unsupported version (expected 1)");
  }
  for (const auto& [key, value] : j.items()) {
    if (key == "tapio_trace") continue;
    if (key == "class" || key == "source" || key == "name") {
      if (!value.is_string())
        return LineError(line, absl::StrCat("field '", key, "': expected a string"));
      std::string v = value.get<std::string>();
      if (key == "class") h->workload_class = v;
      if (key == "source") h->source = v;
      if (key == "name") h->name = v;
    } else if (key == "seed") {
      if (!value.is_number_unsigned())
        return LineError(line, "field 'seed': expected a non-negative integer");
      h->seed = value.get<uint64_t>();
    } else if (key == "oom_time_ms") {
      if (value.is_null()) {
        h->oom_time_ms.reset();
      } else if (value.is_number_integer()) {
        h->oom_time_ms = value.get<int64_t>();
      } else {
        return LineError(line, "field 'oom_time_ms': expected an integer or null");
      }
    } else {
      return LineError(line, absl::StrCat("unknown field '", key, "'"));
    }
  }
  if (h->workload_class.empty()) return LineError(line, "field 'class': missing");
  return absl::OkStatus();
}

}  // namespace

std::string TraceHeaderToJsonLine(const TraceHeader& h) {
  Json j;
  j["tapio_trace"] = 1;
  j["class"] = h.workload_class;
  j["source"] = h.source;
  j["name"] = h.name;
  j["seed"] = h.seed;
  if (h.oom_time_ms) {
    j["oom_time_ms"] = *h.oom_time_ms;
  } else {
    j["oom_time_ms"] = nullptr;
  }
  return j.dump();
}

std::string SampleToJsonLine(const MemorySample& s) {
  Json j;
  j["time_ms"] = s.time_ms;
  for (const U64Field& f : kU64Fields) j[f.key] = s.*f.member;
  j["psi_some_avg10"] = s.psi_some_avg10;
  j["psi_full_avg10"] = s.psi_full_avg10;
  if (s.runtime_heap_cap_bytes != 0) j[kRuntimeCapKey] = s.runtime_heap_cap_bytes;
  return j.dump();
}

std::string LabelToJsonLine(int64_t oom_time_ms) {
  Json j;
  j["label"]["oom_time_ms"] = oom_time_ms;
  return j.dump();
}

std::string TraceToText(const Trace& trace) {
  std::string out = TraceHeaderToJsonLine(trace.header);
  out += '\n';
  for (const MemorySample& s : trace.samples) {
    out += SampleToJsonLine(s);
    out += '\n';
  }
  return out;
}

absl::StatusOr<Trace> ParseTrace(std::string_view text) {
  Trace trace;
  bool have_header = false;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
      if (end == text.size()) break;
      continue;
    }
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return LineError(line_no, "not valid JSON");
    if (!j.is_object()) return LineError(line_no, "expected a JSON object");
    if (!have_header) {
      if (absl::Status st = ParseHeader(j, line_no, &trace.header); !st.ok()) return st;
      have_header = true;
    } else if (j.contains("label")) {
      const auto& l = j["label"];
      if (j.size() != 1 || !l.is_object() || l.size() != 1 || !l.contains("oom_time_ms") ||
          !l["oom_time_ms"].is_number_integer()) {
        return LineError(line_no, "field 'label': expected {\"oom_time_ms\": <integer>}");
      }
      trace.header.oom_time_ms = l["oom_time_ms"].get<int64_t>();
    } else {
      MemorySample s;
      if (absl::Status st = ParseSample(j, line_no, &s); !st.ok()) return st;
      if (!trace.samples.empty() && s.time_ms <= trace.samples.back().time_ms) {
        return LineError(line_no, absl::StrCat("field 'time_ms': ", s.time_ms, " does not follow ",
                                               trace.samples.back().time_ms));
      }
      trace.samples.push_back(s);
    }
    if (end == text.size()) break;
  }
  if (!have_header) return absl::InvalidArgumentError("line 1: missing trace header");
  return trace;
}

absl::StatusOr<Trace> ReadTraceFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open trace file ", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  absl::StatusOr<Trace> trace = ParseTrace(buf.str());
  if (!trace.ok()) {
    return absl::Status(trace.status().code(), absl::StrCat(path, ": ", trace.status().message()));
  }
  return trace;
}

TraceWriter::TraceWriter(std::string path, std::ofstream out)
    : path_(std::move(path)), out_(std::move(out)) {}

TraceWriter::~TraceWriter() { (void)Close(); }

absl::StatusOr<std::unique_ptr<TraceWriter>> TraceWriter::Create(const std::string& path,
                                                                 const TraceHeader& header) {
  if (header.workload_class.empty()) {
    return absl::InvalidArgumentError("trace header: field 'class' must not be empty");
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::UnavailableError(absl::StrCat("cannot create trace file ", path));
  auto writer = std::unique_ptr<TraceWriter>(new TraceWriter(path, std::move(out)));
  if (absl::Status st = writer->WriteLine(TraceHeaderToJsonLine(header)); !st.ok()) return st;
  return writer;
}

absl::Status TraceWriter::WriteLine(const std::string& line) {
  if (!out_.is_open()) return absl::FailedPreconditionError(absl::StrCat(path_, ": closed"));
  out_ << line << '\n';
  out_.flush();
  if (!out_) return absl::DataLossError(absl::StrCat("write to ", path_, " failed"));
  return absl::OkStatus();
}

absl::Status TraceWriter::Append(const MemorySample& sample) {
  if (sample.time_ms <= last_time_ms_) {
    return absl::InvalidArgumentError(absl::StrCat("trace sample: field 'time_ms' ", sample.time_ms,
                                                   " does not follow ", last_time_ms_));
  }
  last_time_ms_ = sample.time_ms;
  return WriteLine(SampleToJsonLine(sample));
}

absl::Status TraceWriter::AppendOomLabel(int64_t oom_time_ms) {
  return WriteLine(LabelToJsonLine(oom_time_ms));
}

absl::Status TraceWriter::Close() {
  if (!out_.is_open()) return absl::OkStatus();
  out_.close();
  if (out_.fail()) return absl::DataLossError(absl::StrCat("closing ", path_, " failed"));
  return absl::OkStatus();
}

}  // namespace tapio::predict
