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
#include "agent/bpf/ring_reader.h"
#include "agent/core/process_table.h"
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

// Records packed one after the other, each 8-byte aligned behind an 8-byte header slot, as in
// the ring buffer's data area.
struct RecordBuffer {
  std::vector<uint64_t> storage;
  std::vector<size_t> offsets;  // in words
  std::vector<bpf::RawRecord> records;
};

template <typename T>
void Add(RecordBuffer* buf, const T& record) {
  buf->storage.push_back(0);  // where the ring's record header would be
  buf->offsets.push_back(buf->storage.size());
  buf->storage.resize(buf->storage.size() + (sizeof(T) + 7) / 8);
  std::memcpy(&buf->storage[buf->offsets.back()], &record, sizeof(T));
}

// A realistic mix: 10,000 processes over the fixture cgroups, each pid in one of them for good (a
// migration is rare: a runtime moving a process before exec); per 10 records: 4 RSS changes,
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
    h.cgroup_id = ids[h.pid % 3];  // a process stays in its cgroup
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
  for (size_t offset : buf.offsets) {  // storage no longer grows: pointers stay valid
    const uint64_t* data = &buf.storage[offset];
    const auto* hdr = reinterpret_cast<const tapio_header*>(data);
    buf.records.push_back(bpf::RawRecord{data, static_cast<uint32_t>(bpf::RecordSize(hdr->type))});
  }
  return buf;
}

// The process table alone, the one random access of nearly every record: Upsert of a known pid
// (10,000 processes, pids at random), arg prefetch:1 requesting each slot 8 updates ahead as
// Pipeline::HandleRecords does.
void BM_ProcessTableUpsert(benchmark::State& state) {
  const bool prefetch = state.range(0) != 0;
  ProcessTable table;
  std::mt19937 rng(7);
  std::vector<uint32_t> pids(1 << 16);
  for (uint32_t& pid : pids) pid = 1000 + rng() % 10000;
  for (uint32_t pid : pids) table.Upsert(pid, 100 + pid % 3, 1);
  size_t i = 0;
  for (auto _ : state) {
    if (prefetch) table.Prefetch(pids[(i + 8) & 0xffff]);
    const uint32_t pid = pids[i++ & 0xffff];
    benchmark::DoNotOptimize(table.Upsert(pid, 100 + pid % 3, 1));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["capacity"] = static_cast<double>(table.capacity());
}
BENCHMARK(BM_ProcessTableUpsert)->ArgName("prefetch")->Arg(0)->Arg(1);

void BM_DecodeOnly(benchmark::State& state) {
  const RecordBuffer buf = MakeRecords(1 << 16);
  size_t i = 0;
  for (auto _ : state) {
    const bpf::RawRecord& r = buf.records[i++ & 0xffff];
    auto view = bpf::RecordView::Decode(r.data, r.size);
    benchmark::DoNotOptimize(view);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeOnly);

// The agent's consumers (bench/support/agent_consumers.h), lifecycle events on. arg 0: the
// default (nobody asks for debug events, so RSS changes and lifecycle are not built); arg 1: a
// firehose subscriber too (every record becomes a published event where the pipeline would
// publish one). jump_trigger 0: ModelParams::jump_trigger_fraction off (no RSS tally), for the
// trigger's cost.
void BM_PipelineIngest(benchmark::State& state) {
  const RecordBuffer buf = MakeRecords(1 << 16);
  CgroupLayout layout;
  layout.unified_root = kRoot;
  layout.memory_on_unified = true;
  PipelineOptions options;
  bench::AgentConsumers consumers(static_cast<bench::Consumers>(state.range(0)));
  PathIdentityResolver resolver;
  predict::ModelParams params;
  params.jump_trigger_fraction = state.range(1) == 0 ? 0 : 0.02;
  Pipeline pipeline(options, layout, &consumers.bus, &resolver, &params);
  // In batches, as the agent's ring reader hands them over (RingReader::kMaxBatch).
  constexpr size_t kBatch = bpf::RingReader::kMaxBatch;
  size_t i = 0;
  for (auto _ : state) {
    bpf::RecordBatch batch;
    batch.records = &buf.records[i];
    batch.count = kBatch;
    pipeline.HandleRecords(batch, 0);
    i = (i + kBatch) & 0xffff;
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["published"] = static_cast<double>(consumers.bus.last_seq());
  state.counters["not_built"] = static_cast<double>(pipeline.counters().events_not_built);
}
BENCHMARK(BM_PipelineIngest)
    ->ArgNames({"firehose", "jump_trigger"})
    ->Args({0, 1})
    ->Args({0, 0})
    ->Args({1, 1});

}  // namespace
}  // namespace tapio
