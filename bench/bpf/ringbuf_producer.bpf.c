// SPDX-License-Identifier: GPL-2.0
/* Bench-only producer: fills a ring buffer with `count` valid tapio records in one
 * bpf_prog_test_run, so that user space can time a drain of them (bare, decoded, or through the
 * agent's pipeline). The mix is bench/agent/ingest_bench.cc's: per 10 records 4 RSS changes,
 * 2 exec, 1 fork, 2 exit and 1 reclaim pass, pids spread over 10,000, each pid in one of the three
 * cgroups of `cgroup_ids` (user space puts the fixture tree's there) for good, as processes are.
 * Record i is a function of i alone, so every fill of the same count produces the same records
 * (timestamps aside). */
// vmlinux.h must come first (libbpf headers use its types).
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpf/tapio_abi.h"
// clang-format on

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 64 << 20);
} bench_rb SEC(".maps");

__u64 produced = 0;
__u64 dropped = 0;
__u64 cgroup_ids[3] = {};

struct args {
  __u32 count;
};

/* splitmix64 of the record index: the record's pid, cgroup and RSS. */
static __always_inline __u64 mix(__u64 i) {
  __u64 x = (i + 1) * 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

static __always_inline void fill_header(struct tapio_header* h, __u16 type, __u64 x) {
  h->version = TAPIO_ABI_VERSION;
  h->type = type;
  h->ts_ns = bpf_ktime_get_boot_ns();
  h->pid = 1000 + (__u32)x % 10000;
  h->tid = h->pid;
  /* Constant indices: the verifier refuses a computed one into the global array. */
  const __u32 k = h->pid % 3;
  h->cgroup_id = k == 0 ? cgroup_ids[0] : k == 1 ? cgroup_ids[1] : cgroup_ids[2];
  __builtin_memcpy(h->comm, "worker", 7);
}

static long produce_one(__u64 i, void* ctx) {
  const __u64 x = mix(i);
  const __u32 slot = (__u32)(i % 10);
  if (slot < 4) {
    struct tapio_rss_record* r = bpf_ringbuf_reserve(&bench_rb, sizeof(*r), 0);
    if (!r) goto full;
    __builtin_memset(r, 0, sizeof(*r));
    fill_header(&r->hdr, TAPIO_REC_RSS_CHANGE, x);
    r->rss.anon_pages = (__u32)(x >> 8) % 100000;
    r->rss.file_pages = (__u32)(x >> 24) % 10000;
    r->ppid = 1;
    bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
  } else if (slot < 9) {
    struct tapio_proc_record* r = bpf_ringbuf_reserve(&bench_rb, sizeof(*r), 0);
    if (!r) goto full;
    __builtin_memset(r, 0, sizeof(*r));
    fill_header(&r->hdr,
                slot < 6    ? TAPIO_REC_PROC_EXEC
                : slot == 6 ? TAPIO_REC_PROC_FORK
                            : TAPIO_REC_PROC_EXIT,
                x);
    r->ppid = 1;
    bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
  } else {
    struct tapio_reclaim_record* r = bpf_ringbuf_reserve(&bench_rb, sizeof(*r), 0);
    if (!r) goto full;
    __builtin_memset(r, 0, sizeof(*r));
    fill_header(&r->hdr, TAPIO_REC_RECLAIM, x);
    r->duration_ns = 20000; /* under the pipeline's 1 ms event minimum: summed, not published */
    bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
  }
  produced++;
  return 0;
full:
  dropped++;
  return 1; /* full: stop */
}

SEC("syscall")
int bench_produce(struct args* a) {
  bpf_loop(a->count, produce_one, 0, 0);
  return 0;
}

/* Calibration: an empty tp_btf/rss_stat program, the floor any per-fault hook pays
 * (BM_FaultStormOverhead/3). */
SEC("tp_btf/rss_stat")
int bench_empty_rss_stat(void* ctx) { return 0; }
