// SPDX-License-Identifier: GPL-2.0
/* Bench-only producer: fills a ring buffer with `count` 64-byte tapio_proc_record-shaped records in
 * one bpf_prog_test_run, so that user space can time a bare libbpf drain of them. */
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

struct args {
  __u32 count;
};

static long produce_one(__u64 i, void* ctx) {
  struct tapio_proc_record* r = bpf_ringbuf_reserve(&bench_rb, sizeof(*r), 0);
  if (!r) {
    dropped++;
    return 1; /* full: stop */
  }
  __builtin_memset(r, 0, sizeof(*r));
  r->hdr.version = TAPIO_ABI_VERSION;
  r->hdr.type = TAPIO_REC_PROC_EXEC;
  r->hdr.pid = (__u32)i;
  r->hdr.cgroup_id = i & 1023;
  bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
  produced++;
  return 0;
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
