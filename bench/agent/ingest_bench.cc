// Ingest: records from the BPF ABI through decode, process table, attribution and the event bus,
// on one core, the path every kernel record takes (Pipeline::HandleRecord). Compared in the same
// run with decode alone (the floor: validation + dispatch). The ring buffer itself is measured by
// bench/bpf (bare libbpf drain of the real ring buffer), see docs/performance.md.
//
//   build/bench/agent/ingest_bench --benchmark_min_time=2
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <cstring>
#include <random>
#include <vector>

#include "agent/bpf/record.h"
#include "agent/pipeline.h"
#include "bench/support/agent_consumers.h"

namespace tapio {
namespace {

constexpr char kRoot[] = "tests/fixtures/core/cgroup2";

uint64_t InodeOf(const std::string& rel) {
  struct stat st;
  if (stat((std::string(kRoot) + rel).c_str(), &st) != 0) return 0;
  return st.st_ino;
}

struct RecordBuffer {
  std::vector<std::vector<uint64_t>> storage;  // 8-byte aligned, like ring buffer records
  std::vector<std::pair<const void*, size_t>> records;
};

template <typename T>
void Add(RecordBuffer* buf, const T& record) {
  std::vector<uint64_t> words((sizeof(T) + 7) / 8);
  std::memcpy(words.data(), &record, sizeof(T));
  buf->storage.push_back(std::move(words));
}

// A realistic mix: 10,000 processes over the fixture cgroups; per 10 records: 4 RSS changes,
// 2 exec, 1 fork, 2 exit, 1 reclaim pass.
RecordBuffer MakeRecords(size_t n) {
  const uint64_t ids[] = {InodeOf("/kubepods/pod1/ctr1"), InodeOf("/kubepods/pod1"),
                          InodeOf("/kubepods")};
  std::mt19937 rng(42);
  RecordBuffer buf;
  for (size_t i = 0; i < n; ++i) {
    tapio_header h{};
    h.version = TAPIO_ABI_VERSION;
    h.pid = 1000 + static_cast<uint32_t>(rng() % 10000);
    h.tid = h.pid;
    h.cgroup_id = ids[rng() % 3];
    h.ts_ns = i * 1000;
    std::strncpy(h.comm, "worker", sizeof(h.comm));
    switch (i % 10) {
      case 0:
      case 1:
      case 2:
      case 3: {
        tapio_rss_record r{};
        h.type = TAPIO_REC_RSS_CHANGE;
        r.hdr = h;
        r.rss.anon_pages = rng() % 100000;
        r.rss.file_pages = rng() % 10000;
        Add(&buf, r);
        break;
      }
      case 4:
      case 5:
      case 6:
      case 7:
      case 8: {
        tapio_proc_record r{};
        h.type = i % 10 <= 5   ? TAPIO_REC_PROC_EXEC
                 : i % 10 == 6 ? TAPIO_REC_PROC_FORK
                               : TAPIO_REC_PROC_EXIT;
        r.hdr = h;
        r.ppid = 1;
        Add(&buf, r);
        break;
      }
      default: {
        tapio_reclaim_record r{};
        h.type = TAPIO_REC_RECLAIM;
        r.hdr = h;
        r.duration_ns = 20000;
        Add(&buf, r);
        break;
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const auto* hdr = reinterpret_cast<const tapio_header*>(buf.storage[i].data());
    buf.records.emplace_back(buf.storage[i].data(), bpf::RecordSize(hdr->type));
  }
  return buf;
}

void BM_DecodeOnly(benchmark::State& state) {
  const RecordBuffer buf = MakeRecords(1 << 16);
  size_t i = 0;
  for (auto _ : state) {
    const auto& [data, size] = buf.records[i++ & 0xffff];
    auto view = bpf::RecordView::Decode(data, size);
    benchmark::DoNotOptimize(view);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeOnly);

// The agent's consumers (bench/support/agent_consumers.h), lifecycle events on. arg 0: the
// default (nobody asks for debug events, so RSS changes and lifecycle are not built); arg 1: a
// firehose subscriber too (every record becomes a published event where the pipeline would
// publish one).
void BM_PipelineIngest(benchmark::State& state) {
  const RecordBuffer buf = MakeRecords(1 << 16);
  CgroupLayout layout;
  layout.unified_root = kRoot;
  layout.memory_on_unified = true;
  PipelineOptions options;
  bench::AgentConsumers consumers(static_cast<bench::Consumers>(state.range(0)));
  PathIdentityResolver resolver;
  predict::ModelParams params;
  Pipeline pipeline(options, layout, &consumers.bus, &resolver, &params);
  size_t i = 0;
  for (auto _ : state) {
    const auto& [data, size] = buf.records[i++ & 0xffff];
    pipeline.HandleRecord(data, size, 0);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["published"] = static_cast<double>(consumers.bus.last_seq());
  state.counters["not_built"] = static_cast<double>(pipeline.counters().events_not_built);
}
BENCHMARK(BM_PipelineIngest)->ArgName("firehose")->Arg(0)->Arg(1);

}  // namespace
}  // namespace tapio
