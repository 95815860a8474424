// SPDX-License-Identifier: GPL-2.0
/* Test-only producer for tests/bpf/ring_reader_test.cc: writes records numbered first_seq,
 * first_seq + 1, ... into a small ring buffer (it wraps every few hundred records), each
 * 8 + (seq * 13) % 120 bytes long (8..127: every rounding to 8), every discard_every-th reserved
 * and then discarded instead, in one bpf_prog_test_run. */
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
// clang-format on

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 16 << 10);
} test_rb SEC(".maps");

__u64 written = 0;
__u64 discarded = 0;
__u64 full = 0;
/* This run's arguments (from struct args), for the loop callback. */
__u32 first_seq = 0;
__u32 discard_every = 0;

struct args {
  __u32 count;
  __u32 first_seq;
  __u32 discard_every; /* 0: none */
};

struct rec {
  __u32 seq;
  __u32 len;
  __u8 fill[120];
};

static long one(__u64 i, void* ctx) {
  const __u32 seq = first_seq + (__u32)i;
  const __u32 every = discard_every;
  if (every != 0 && seq % every == 0) {
    struct rec* r = bpf_ringbuf_reserve(&test_rb, 16, 0);
    if (!r) goto out_of_room;
    r->seq = seq;
    bpf_ringbuf_discard(r, 0);
    discarded++;
    return 0;
  }
  struct rec r = {};
  const __u32 len = 8 + (seq * 13) % 120; /* 8..127 */
  r.seq = seq;
  r.len = len;
  for (int k = 0; k < 120; k++) r.fill[k] = (__u8)(seq + k);
  /* & 127: the bound the verifier wants to see (a no-op on 8..127). */
  if (bpf_ringbuf_output(&test_rb, &r, len & 127, 0) != 0) goto out_of_room;
  written++;
  return 0;
out_of_room:
  full++;
  return 1;
}

SEC("syscall")
int produce(struct args* a) {
  first_seq = a->first_seq;
  discard_every = a->discard_every;
  return bpf_loop(a->count, one, 0, 0); /* iterations run, or < 0 */
}
