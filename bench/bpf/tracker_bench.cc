// Kernel cost of the memory tracker and the bare ring buffer drain rate. Root only.
//
//   BM_FaultStormOverhead/mode:<mode>/fresh:<0|1>
//                                 paired storms in a TestCgroup child, tracker off vs on, order
//                                 alternated per pair; counter overhead_pct = median over pairs of
//                                 (rate_off / rate_on - 1) * 100. mode 0: default tracker (no
//                                 rss_stat hook); mode 1: rss_stat hook on, the storm's cgroup
//                                 tracked; mode 2: hook on, storm cgroup not tracked; mode 3: an
//                                 empty tp_btf/rss_stat program (the floor of any per-fault hook).
//                                 fresh 0: the reuse storm (64 pages over and over), 1: the fresh
//                                 storm (a new 64 MiB region per pass), see kStormChunk.
//                                 Rates are faults per CPU-second of the storm child. BPF stats
//                                 stay off here (they add clock reads per run).
//   BM_RssStatRunCost/tracked:<0|1>/fresh:<0|1>
//                                 kernel.bpf_stats_enabled=1 (restored after) during a storm with
//                                 the hook on: ns per tapio_rss_stat run, runs per fault.
//   BM_RingbufBareDrain           a BPF producer fills a ring buffer (bpf_prog_test_run) with the
//                                 ingest bench's record mix; the time of ring_buffer__consume()
//                                 alone is measured: records/s.
//   BM_RingbufDecodeDrain         the same with RecordView::Decode per record.
//   BM_RingReaderBareDrain        the same fill drained by the agent's own consumer (RingReader,
//                                 batches of 64), records counted: records/s.
//   BM_RingbufPipelineDrain       the same records the agent's way: RingReader batches through
//                                 Pipeline::HandleRecords (decode, process table, attribution,
//                                 event bus), and in the same iteration, order rotated, a bare
//                                 libbpf drain and a bare RingReader drain of identical fills:
//                                 counters bare_records_per_s (libbpf), reader_records_per_s,
//                                 pipeline_records_per_s, ratio (median over iterations of
//                                 pipeline rate / bare libbpf rate: the goal's) and
//                                 ratio_to_reader (pipeline / bare RingReader), all wall time;
//                                 the *_per_cpu_s rates count the draining thread's CPU time
//                                 instead. Needs the agent build.
//   BM_SnapshotTasks              one task-iterator pass (SnapshotTasks) over every process.
//   BM_MapMemory/<mode>           fdinfo memlock of every map of the tracker object.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "agent/bpf/memory_tracker.h"
#include "agent/bpf/record.h"
#include "agent/bpf/ring_reader.h"
#include "agent/core/log.h"
#include "agent/core/runtime.h"
#include "benchmark/benchmark.h"
#if TAPIO_BENCH_PIPELINE
#include "agent/pipeline.h"
#include "bench/support/agent_consumers.h"
#endif
#include "bpf/ringbuf_producer.skel.h"
#include "tests/support/test_cgroup.h"

namespace tapio::bpf {
namespace {

using ::tapio::testing::ChildProcess;
using ::tapio::testing::TestCgroup;

constexpr int kStormMs = 150;
// Storm shapes. Reuse: 64 pages mapped, touched and unmapped over and over; each chunk stays
// under the 256-page RSS threshold, so the hook aggregates and never reports, and the pages come
// back hot from the per-CPU free lists: the cheapest fault there is, so the largest relative
// cost of a hook. Fresh: a 64 MiB region per pass, touched once (a heap or buffer growing into new
// memory, cache-cold page zeroing): what MACHINE.md's reference storm did, and in tracked mode
// a report every 256 pages.
constexpr size_t kStormChunk = 256 << 10;
constexpr size_t kFreshChunk = 64 << 20;
// The mapping size of a benchmark's `fresh` argument (0: reuse storm, 1: fresh storm).
size_t StormChunk(int64_t fresh) { return fresh == 0 ? kStormChunk : kFreshChunk; }

double NowSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// CPU time of the calling process: storm rates are faults per CPU-second, so that other work on
// the (shared, 2-core) machine taking the CPU away does not count as tracker overhead.
double CpuSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// CPU time of the calling thread: a drain's cost without the time other work took the CPU.
double ThreadCpuSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Runs a page-fault storm (mmap `chunk` bytes, touch every page, munmap) for kStormMs in a child
// placed in `cg`; returns faults per CPU-second of the child, or < 0 on error.
double Storm(TestCgroup& cg, size_t chunk = kStormChunk) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  absl::StatusOr<ChildProcess> child = cg.SpawnFunction([&]() {
    const long page = sysconf(_SC_PAGESIZE);
    uint64_t faults = 0;
    double start = NowSeconds(), end = start + kStormMs / 1000.0;
    double cpu_start = CpuSeconds();
    while (NowSeconds() < end) {
      for (size_t rep = 0; rep < std::max<size_t>(1, (4 << 20) / chunk); ++rep) {
        char* p = static_cast<char*>(
            mmap(nullptr, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (p == MAP_FAILED) return 1;
        for (size_t off = 0; off < chunk; off += page) p[off] = 1;
        munmap(p, chunk);
        faults += chunk / page;
      }
    }
    double rate = faults / (CpuSeconds() - cpu_start);
    return write(fds[1], &rate, sizeof(rate)) == sizeof(rate) ? 0 : 1;
  });
  close(fds[1]);
  double rate = -1;
  if (child.ok()) {
    if (read(fds[0], &rate, sizeof(rate)) != sizeof(rate)) rate = -1;
    (void)child->Wait(absl::Seconds(10));
  }
  close(fds[0]);
  return rate;
}

TrackerOptions ModeOptions(int mode) {
  TrackerOptions o;
  o.try_fentry = false;
  o.rss_stat_hook = (mode == 1 || mode == 2);
  return o;
}

void BM_FaultStormOverhead(benchmark::State& state) {
  if (geteuid() != 0) return state.SkipWithError("needs root");
  const int mode = static_cast<int>(state.range(0));
  const size_t chunk = StormChunk(state.range(1));
  absl::StatusOr<std::unique_ptr<TestCgroup>> cg = TestCgroup::Create();
  if (!cg.ok()) return state.SkipWithError(cg.status().ToString().c_str());
  // Modes 1 and 2: one tracker, the hook detached/attached around each storm. Mode 0: the
  // default tracker (nothing on the fault path) present vs destroyed.
  std::unique_ptr<MemoryTracker> hooked;
  ringbuf_producer_bpf* empty = nullptr;  // mode 3: the empty calibration program
  bpf_link* empty_link = nullptr;
  if (mode == 3) {
    empty = ringbuf_producer_bpf__open_and_load();
    if (!empty) return state.SkipWithError("calibration object failed to load");
  } else if (mode != 0) {
    absl::StatusOr<std::unique_ptr<MemoryTracker>> t = MemoryTracker::Create(ModeOptions(mode));
    if (!t.ok()) return state.SkipWithError(t.status().ToString().c_str());
    hooked = std::move(*t);
    if (mode == 1 && !hooked->SetRssTracked((*cg)->cgroup2_id(), true).ok()) {
      return state.SkipWithError("SetRssTracked failed");
    }
  }
  std::vector<double> log_ratios, off_rates, on_rates;
  int pair = 0;
  for (auto _ : state) {
    double off = 0, on = 0;
    std::unique_ptr<MemoryTracker> plain;
    auto set_on = [&](bool enable) {
      if (mode == 3) {
        if (enable && !empty_link)
          empty_link = bpf_program__attach(empty->progs.bench_empty_rss_stat);
        if (!enable && empty_link) {
          bpf_link__destroy(empty_link);
          empty_link = nullptr;
        }
        return !enable || empty_link != nullptr;
      }
      if (mode != 0) return hooked->SetRssStatAttached(enable).ok();
      if (!enable) {
        plain.reset();
        return true;
      }
      absl::StatusOr<std::unique_ptr<MemoryTracker>> t = MemoryTracker::Create(ModeOptions(0));
      if (!t.ok()) return false;
      plain = std::move(*t);
      return true;
    };
    bool ok = true;
    if (pair % 2 == 0) {
      ok = set_on(false);
      off = Storm(**cg, chunk);
      ok = ok && set_on(true);
      on = Storm(**cg, chunk);
    } else {
      ok = set_on(true);
      on = Storm(**cg, chunk);
      ok = ok && set_on(false);
      off = Storm(**cg, chunk);
    }
    ++pair;
    if (!ok || off <= 0 || on <= 0) {
      if (empty_link) bpf_link__destroy(empty_link);
      if (empty) ringbuf_producer_bpf__destroy(empty);
      return state.SkipWithError("storm or tracker failed");
    }
    state.SetIterationTime(2 * kStormMs / 1000.0);
    off_rates.push_back(off);
    on_rates.push_back(on);
    log_ratios.push_back(std::log(off / on));
  }
  if (empty_link) bpf_link__destroy(empty_link);
  if (empty) ringbuf_producer_bpf__destroy(empty);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  double mean_log = 0;
  for (double r : log_ratios) mean_log += r / log_ratios.size();
  // Slowdown = time per fault with / without - 1 = rate_off / rate_on - 1.
  state.counters["overhead_pct_median"] = (std::exp(median(log_ratios)) - 1) * 100;
  state.counters["overhead_pct_geomean"] = (std::exp(mean_log) - 1) * 100;
  state.counters["faults_per_cpu_s_off"] = median(off_rates);
  state.counters["faults_per_cpu_s_on"] = median(on_rates);
  state.counters["pairs"] = pair;
}
BENCHMARK(BM_FaultStormOverhead)
    ->ArgNames({"mode", "fresh"})
    ->ArgsProduct({{0, 1, 2, 3}, {0, 1}})
    ->Iterations(30)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void BM_RssStatRunCost(benchmark::State& state) {
  if (geteuid() != 0) return state.SkipWithError("needs root");
  absl::StatusOr<std::unique_ptr<TestCgroup>> cg = TestCgroup::Create();
  if (!cg.ok()) return state.SkipWithError(cg.status().ToString().c_str());
  absl::StatusOr<std::unique_ptr<MemoryTracker>> t = MemoryTracker::Create(ModeOptions(1));
  if (!t.ok()) return state.SkipWithError(t.status().ToString().c_str());
  // Arg 1: the storm's cgroup tracked (storage + counters per fault); 0: untracked (cache hit).
  if (state.range(0) == 1) (void)(*t)->SetRssTracked((*cg)->cgroup2_id(), true);
  absl::StatusOr<bool> previous = SetBpfStatsEnabled(true);
  if (!previous.ok()) return state.SkipWithError(previous.status().ToString().c_str());
  for (auto _ : state) {
    if (Storm(**cg, StormChunk(state.range(1))) <= 0) {
      return state.SkipWithError("storm failed");
    }
    state.SetIterationTime(kStormMs / 1000.0);
  }
  for (const ProgramStatus& p : (*t)->Programs()) {
    if (p.name == "tapio_rss_stat" && p.run_count > 0) {
      state.counters["ns_per_run"] = static_cast<double>(p.run_time_ns) / p.run_count;
      state.counters["runs"] = static_cast<double>(p.run_count);
    }
  }
  (void)SetBpfStatsEnabled(*previous);
}
BENCHMARK(BM_RssStatRunCost)
    ->ArgNames({"tracked", "fresh"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->Iterations(4)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// Default mode: BPF stats over a storm count every run of every tracker program, machine-wide.
// The storm itself costs one fork + one exit; nothing runs per fault.
void BM_DefaultModeRunsPerStorm(benchmark::State& state) {
  if (geteuid() != 0) return state.SkipWithError("needs root");
  absl::StatusOr<std::unique_ptr<TestCgroup>> cg = TestCgroup::Create();
  if (!cg.ok()) return state.SkipWithError(cg.status().ToString().c_str());
  absl::StatusOr<std::unique_ptr<MemoryTracker>> t = MemoryTracker::Create(ModeOptions(0));
  if (!t.ok()) return state.SkipWithError(t.status().ToString().c_str());
  absl::StatusOr<bool> previous = SetBpfStatsEnabled(true);
  if (!previous.ok()) return state.SkipWithError(previous.status().ToString().c_str());
  for (auto _ : state) {
    double rate = Storm(**cg);
    if (rate <= 0) break;
    state.SetIterationTime(kStormMs / 1000.0);
  }
  uint64_t runs = 0, run_ns = 0;
  for (const ProgramStatus& p : (*t)->Programs()) {
    runs += p.run_count;
    run_ns += p.run_time_ns;
  }
  (void)SetBpfStatsEnabled(*previous);
  state.counters["runs_per_storm"] = static_cast<double>(runs) / state.iterations();
  state.counters["run_ns_per_storm"] = static_cast<double>(run_ns) / state.iterations();
}
BENCHMARK(BM_DefaultModeRunsPerStorm)
    ->Iterations(8)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// The same BPF-stats figure for the empty calibration program: what the stats themselves and the
// program entry cost, to subtract from BM_RssStatRunCost.
void BM_EmptyRssStatRunCost(benchmark::State& state) {
  if (geteuid() != 0) return state.SkipWithError("needs root");
  absl::StatusOr<std::unique_ptr<TestCgroup>> cg = TestCgroup::Create();
  if (!cg.ok()) return state.SkipWithError(cg.status().ToString().c_str());
  ringbuf_producer_bpf* empty = ringbuf_producer_bpf__open_and_load();
  if (!empty) return state.SkipWithError("calibration object failed to load");
  bpf_link* link = bpf_program__attach(empty->progs.bench_empty_rss_stat);
  absl::StatusOr<bool> previous = SetBpfStatsEnabled(true);
  if (link && previous.ok()) {
    for (auto _ : state) {
      if (Storm(**cg, StormChunk(state.range(0))) <= 0) break;
      state.SetIterationTime(kStormMs / 1000.0);
    }
    struct bpf_prog_info info = {};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(empty->progs.bench_empty_rss_stat), &info, &len) ==
            0 &&
        info.run_cnt > 0) {
      state.counters["ns_per_run"] = static_cast<double>(info.run_time_ns) / info.run_cnt;
      state.counters["runs"] = static_cast<double>(info.run_cnt);
    }
    (void)SetBpfStatsEnabled(*previous);
  } else {
    state.SkipWithError("attach or bpf_stats_enabled failed");
  }
  if (link) bpf_link__destroy(link);
  ringbuf_producer_bpf__destroy(empty);
}
BENCHMARK(BM_EmptyRssStatRunCost)
    ->ArgName("fresh")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(4)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// Inode of a fixture cgroup directory (its cgroup id for CgroupPathResolver), 0 if missing.
uint64_t FixtureCgroupId(const char* rel) {
  struct stat st;
  if (stat((std::string(TAPIO_FIXTURE_CGROUP2) + rel).c_str(), &st) != 0) return 0;
  return st.st_ino;
}

constexpr uint32_t kDrainRecords = 500000;

// The producer and ring buffer managers over its map (several may share it: they are never
// consumed at the same time, and the consumer position lives in the map).
struct Producer {
  ringbuf_producer_bpf* skel = nullptr;
  std::vector<ring_buffer*> rings;
  std::unique_ptr<RingReader> reader;
  ~Producer() {
    for (ring_buffer* rb : rings) ring_buffer__free(rb);
    if (skel) ringbuf_producer_bpf__destroy(skel);
  }
  // Loads the producer, its records carrying the fixture tree's cgroup ids; empty on success.
  std::string Open() {
    skel = ringbuf_producer_bpf__open_and_load();
    if (!skel) return "producer load failed";
    const char* rels[] = {"/kubepods/pod1/ctr1", "/kubepods/pod1", "/kubepods"};
    for (int i = 0; i < 3; ++i) {
      skel->bss->cgroup_ids[i] = FixtureCgroupId(rels[i]);
      if (skel->bss->cgroup_ids[i] == 0) return "fixture cgroup tree not found";
    }
    absl::StatusOr<std::unique_ptr<RingReader>> r =
        RingReader::Open(bpf_map__fd(skel->maps.bench_rb));
    if (!r.ok()) return r.status().ToString();
    reader = std::move(*r);
    return "";
  }
  ring_buffer* Ring(ring_buffer_sample_fn fn, void* ctx) {
    ring_buffer* rb = ring_buffer__new(bpf_map__fd(skel->maps.bench_rb), fn, ctx, nullptr);
    if (rb) rings.push_back(rb);
    return rb;
  }
  // Fills the ring with `count` records; returns how many were produced.
  uint64_t Fill(uint32_t count) {
    uint64_t before = skel->bss->produced;
    struct {
      uint32_t count;
    } args = {count};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &args, .ctx_size_in = sizeof(args));
    if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.bench_produce), &opts) != 0) return 0;
    return skel->bss->produced - before;
  }
  // Fills the ring and times `drain` (which returns how many records it took, < 0 on error):
  // wall seconds (and, into `cpu_seconds`, the draining thread's CPU seconds), < 0 on a mismatch.
  double FillAndTime(absl::FunctionRef<int64_t()> drain, double* cpu_seconds) {
    uint64_t produced = Fill(kDrainRecords);
    double cpu_start = ThreadCpuSeconds();
    double start = NowSeconds();
    int64_t n = drain();
    double elapsed = NowSeconds() - start;
    if (cpu_seconds) *cpu_seconds += ThreadCpuSeconds() - cpu_start;
    if (n < 0 || produced == 0 || static_cast<uint64_t>(n) != produced) return -1;
    return elapsed;
  }
  // Drained with libbpf's `rb`.
  double FillAndDrain(ring_buffer* rb, double* cpu_seconds = nullptr) {
    return FillAndTime([rb] { return static_cast<int64_t>(ring_buffer__consume(rb)); },
                       cpu_seconds);
  }
  // Drained through `reader`, batches handed to `on_batch`.
  double FillAndRead(RingReader::BatchFn on_batch, double* cpu_seconds = nullptr) {
    return FillAndTime([&] { return reader->Consume(on_batch); }, cpu_seconds);
  }
};

void SumPids(uint64_t* sum, const RecordBatch& batch) {
  for (size_t i = 0; i < batch.count; ++i) {
    *sum += static_cast<const tapio_header*>(batch.records[i].data)->pid;
  }
}

template <bool kDecode>
int CountRecord(void* ctx, void* data, size_t size) {
  auto* sum = static_cast<uint64_t*>(ctx);
  if (kDecode) {
    absl::StatusOr<RecordView> v = RecordView::Decode(data, size);
    if (v.ok()) *sum += v->header().pid;
  } else {
    *sum += static_cast<const tapio_header*>(data)->pid;
  }
  return 0;
}

// One fill-and-drain per iteration, timed by `fill_and_drain` (seconds; < 0 on a mismatch).
template <typename FillAndDrain>
void TimeDrains(benchmark::State& state, FillAndDrain fill_and_drain) {
  for (auto _ : state) {
    const double seconds = fill_and_drain();
    if (seconds < 0) return state.SkipWithError("drain mismatch");
    state.SetIterationTime(seconds);
  }
  state.SetItemsProcessed(state.iterations() * kDrainRecords);
}

template <bool kDecode>
void BM_RingbufDrain(benchmark::State& state) {
  if (geteuid() != 0) return state.SkipWithError("needs root");
  Producer p;
  if (std::string error = p.Open(); !error.empty()) return state.SkipWithError(error.c_str());
  uint64_t sum = 0;
  ring_buffer* rb = p.Ring(&CountRecord<kDecode>, &sum);
  if (!rb) return state.SkipWithError("ring_buffer__new failed");
  TimeDrains(state, [&] { return p.FillAndDrain(rb); });
  benchmark::DoNotOptimize(sum);
  state.counters["dropped_in_producer"] = static_cast<double>(p.skel->bss->dropped);
}
void BM_RingbufBareDrain(benchmark::State& state) { BM_RingbufDrain<false>(state); }
void BM_RingbufDecodeDrain(benchmark::State& state) { BM_RingbufDrain<true>(state); }
BENCHMARK(BM_RingbufBareDrain)->Iterations(20)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RingbufDecodeDrain)->Iterations(20)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_RingReaderBareDrain(benchmark::State& state) {
  if (geteuid() != 0) return state.SkipWithError("needs root");
  Producer p;
  if (std::string error = p.Open(); !error.empty()) return state.SkipWithError(error.c_str());
  uint64_t sum = 0;
  auto count = [&](const RecordBatch& batch) { SumPids(&sum, batch); };
  TimeDrains(state, [&] { return p.FillAndRead(count); });
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_RingReaderBareDrain)->Iterations(20)->UseManualTime()->Unit(benchmark::kMillisecond);

#if TAPIO_BENCH_PIPELINE
// The agent's consumers, as BM_PipelineIngest (bench/agent/ingest_bench.cc), lifecycle events on;
// arg firehose:1 adds a subscriber that takes every event. Each iteration is a triple, order
// rotated: one fill drained bare by libbpf, one bare by RingReader, one through the pipeline the
// way the agent's ingest loop does it (agent/agent.cc, IngestLoop). The iteration time is the
// pipeline drain's. One untimed pipeline drain first fills the process table, the tracked
// cgroups and the identity cache (the agent's steady state).
void BM_RingbufPipelineDrain(benchmark::State& state) {
  if (geteuid() != 0) return state.SkipWithError("needs root");
  Producer p;
  if (std::string error = p.Open(); !error.empty()) return state.SkipWithError(error.c_str());
  CgroupLayout layout;
  layout.unified_root = TAPIO_FIXTURE_CGROUP2;
  layout.memory_on_unified = true;
  bench::AgentConsumers consumers(static_cast<bench::Consumers>(state.range(0)));
  EventBus& bus = consumers.bus;
  PathIdentityResolver resolver;
  predict::ModelParams params;
  Pipeline pipeline(PipelineOptions{}, layout, &bus, &resolver, &params);
  uint64_t sum = 0;
  const int64_t offset = BootToUnixOffsetNs();
  ring_buffer* bare = p.Ring(&CountRecord<false>, &sum);
  if (!bare) return state.SkipWithError("ring_buffer__new failed");
  auto count = [&](const RecordBatch& batch) { SumPids(&sum, batch); };
  auto piped = [&](const RecordBatch& batch) { pipeline.HandleRecords(batch, offset); };
  if (p.FillAndRead(piped) < 0) return state.SkipWithError("drain mismatch");

  const uint64_t published_before = bus.last_seq();
  double bare_seconds = 0, reader_seconds = 0, pipeline_seconds = 0;
  double bare_cpu = 0, reader_cpu = 0, pipeline_cpu = 0;
  std::vector<double> ratios, reader_ratios;
  int turn = 0;
  for (auto _ : state) {
    double b = 0, r = 0, q = 0;
    for (int k = 0; k < 3; ++k) {
      switch ((turn + k) % 3) {
        case 0:
          b = p.FillAndDrain(bare, &bare_cpu);
          break;
        case 1:
          r = p.FillAndRead(count, &reader_cpu);
          break;
        default:
          q = p.FillAndRead(piped, &pipeline_cpu);
          break;
      }
    }
    ++turn;
    if (b <= 0 || r <= 0 || q <= 0) return state.SkipWithError("drain mismatch");
    state.SetIterationTime(q);
    bare_seconds += b;
    reader_seconds += r;
    pipeline_seconds += q;
    ratios.push_back(b / q);  // same record count: pipeline rate / bare rate
    reader_ratios.push_back(r / q);
  }
  benchmark::DoNotOptimize(sum);
  const PipelineCounters c = pipeline.counters();
  if (c.records_malformed != 0) return state.SkipWithError("pipeline refused records");
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  const double records = static_cast<double>(state.iterations()) * kDrainRecords;
  state.SetItemsProcessed(state.iterations() * kDrainRecords);
  state.counters["bare_records_per_s"] = records / bare_seconds;
  state.counters["reader_records_per_s"] = records / reader_seconds;
  state.counters["pipeline_records_per_s"] = records / pipeline_seconds;
  state.counters["ratio"] = median(ratios);
  state.counters["ratio_to_reader"] = median(reader_ratios);
  state.counters["bare_records_per_cpu_s"] = records / bare_cpu;
  state.counters["reader_records_per_cpu_s"] = records / reader_cpu;
  state.counters["pipeline_records_per_cpu_s"] = records / pipeline_cpu;
  state.counters["events_per_record"] = (bus.last_seq() - published_before) / records;
  state.counters["cgroup_path_misses"] = static_cast<double>(c.cgroup_path_misses);
  state.counters["tracked_cgroups"] = static_cast<double>(pipeline.Containers().size());
  state.counters["dropped_in_producer"] = static_cast<double>(p.skel->bss->dropped);
}
BENCHMARK(BM_RingbufPipelineDrain)
    ->ArgName("firehose")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(20)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
#endif

// One iter/task pass over every process of the machine, records validated and counted.
void BM_SnapshotTasks(benchmark::State& state) {
  if (geteuid() != 0) return state.SkipWithError("needs root");
  absl::StatusOr<std::unique_ptr<MemoryTracker>> t = MemoryTracker::Create(ModeOptions(0));
  if (!t.ok()) return state.SkipWithError(t.status().ToString().c_str());
  uint64_t processes = 0;
  for (auto _ : state) {
    absl::Status s = (*t)->SnapshotTasks([&](const tapio_rss_record&) { ++processes; });
    if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
  }
  state.counters["processes_per_pass"] = static_cast<double>(processes) / state.iterations();
  state.SetItemsProcessed(processes);
}
BENCHMARK(BM_SnapshotTasks)->Unit(benchmark::kMicrosecond);

void BM_MapMemory(benchmark::State& state) {
  if (geteuid() != 0) return state.SkipWithError("needs root");
  absl::StatusOr<std::unique_ptr<MemoryTracker>> t =
      MemoryTracker::Create(ModeOptions(static_cast<int>(state.range(0))));
  if (!t.ok()) return state.SkipWithError(t.status().ToString().c_str());
  for (auto _ : state) benchmark::DoNotOptimize((*t)->MapMemoryBytes());
  state.counters["map_memlock_bytes"] = static_cast<double>((*t)->MapMemoryBytes());
}
BENCHMARK(BM_MapMemory)->Arg(0)->Arg(1)->Iterations(1);

}  // namespace
}  // namespace tapio::bpf

int main(int argc, char** argv) {
  tapio::DisableMutexDeadlockDetection();
  tapio::SetLogLevel(tapio::LogLevel::kWarning);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
