/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one ABI between Tapio's BPF programs and the agent.
 *
 * Included by bpf/tapio.bpf.c (with vmlinux.h types) and by the C++ agent (with <cstdint>), which
 * static_asserts every size and offset in agent/bpf/abi_layout.h. Rules:
 *   - fixed-width types only, explicit padding, every struct a multiple of 8 bytes;
 *   - every record starts with struct tapio_header, whose `version` is TAPIO_ABI_VERSION;
 *   - change a layout => bump TAPIO_ABI_VERSION; the agent refuses records of another version.
 */
#ifndef TAPIO_BPF_TAPIO_ABI_H_
#define TAPIO_BPF_TAPIO_ABI_H_

#ifndef __VMLINUX_H__
/* User space: the kernel's own fixed-width types (what libbpf headers use too). */
#include <linux/types.h>
#include <stdint.h>
#endif

#define TAPIO_ABI_VERSION 1
#define TAPIO_COMM_LEN 16

/* Record types carried by the ring buffer (and perf buffer fallback). */
enum tapio_record_type {
  TAPIO_REC_UNSPECIFIED = 0,
  TAPIO_REC_RSS_CHANGE = 1,  /* tp_btf/rss_stat, past the rodata threshold */
  TAPIO_REC_OOM_KILL = 2,    /* tp_btf/mark_victim (or tp/oom/mark_victim) */
  TAPIO_REC_PROC_EXEC = 3,   /* sched_process_exec */
  TAPIO_REC_PROC_FORK = 4,   /* sched_process_fork, new processes only (not threads) */
  TAPIO_REC_PROC_EXIT = 5,   /* sched_process_exit, thread-group leaders only */
  TAPIO_REC_RECLAIM = 6,     /* mm_vmscan_memcg_reclaim_begin/_end pair past min duration */
  TAPIO_REC_OOM_CONTEXT = 7, /* fentry/oom_kill_process where permitted */
  TAPIO_REC_TASK_RSS = 8,    /* iter/task snapshot line (read from the iterator, not the ring) */
  TAPIO_REC_MAX = 9,
};

/* Indices of the per-CPU loss counters (map `tapio_lost`). */
enum tapio_loss_slot {
  TAPIO_LOSS_RINGBUF_RESERVE = 0, /* bpf_ringbuf_reserve() returned NULL */
  TAPIO_LOSS_PERFBUF_OUTPUT = 1,  /* bpf_perf_event_output() failed */
  TAPIO_LOSS_RECLAIM_TABLE = 2,   /* reclaim begin could not be recorded (map full) */
  TAPIO_LOSS_SLOTS = 4,
};

/* 48 bytes. `ts_ns` is bpf_ktime_get_boot_ns() (CLOCK_BOOTTIME). `cgroup_id` is the cgroup v2 id
 * (kernfs node id == inode of the cgroup2 directory) or, on pure v1 hosts (rodata use_v1_memcg_id),
 * the memory controller's kernfs id. For OOM kills it is the victim's, never current's. */
struct tapio_header {
  __u16 version;
  __u16 type; /* enum tapio_record_type */
  __u32 cpu;
  __u64 ts_ns;
  __u32 pid; /* tgid: the process */
  __u32 tid; /* the thread that ran the hook */
  __u64 cgroup_id;
  char comm[TAPIO_COMM_LEN];
};

/* Resident memory of one process in pages, as the kernel's mm->rss_stat counters hold it
 * (MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES from include/linux/mm_types_task.h). */
struct tapio_rss {
  __u64 file_pages;
  __u64 anon_pages;
  __u64 swap_entries;
  __u64 shmem_pages;
};

/* TAPIO_REC_RSS_CHANGE and TAPIO_REC_TASK_RSS: 96 bytes. */
struct tapio_rss_record {
  struct tapio_header hdr;
  struct tapio_rss rss;
  __u32 ppid;
  __u32 flags;         /* bit 0: exiting */
  __u64 start_time_ns; /* task->start_boottime (CLOCK_BOOTTIME ns, as /proc/<pid>/stat
                        * starttime): tells reused pids apart */
};

/* TAPIO_REC_OOM_KILL: 128 bytes. hdr.pid/comm/cgroup_id are the victim's. */
struct tapio_oom_record {
  struct tapio_header hdr;
  struct tapio_rss rss; /* victim's RSS counters in pages at mark time */
  __u64 total_vm_pages;
  __u64 pgtables_bytes;
  __u32 trigger_pid; /* current: the task whose allocation triggered the OOM */
  __s16 oom_score_adj;
  __u16 page_shift; /* PAGE_SHIFT of the kernel, for pages->bytes */
  __u64 trigger_cgroup_id;
  char trigger_comm[TAPIO_COMM_LEN];
};

/* TAPIO_REC_PROC_EXEC / _FORK / _EXIT: 64 bytes. For fork, hdr.pid is the child and ppid the
 * parent; the cgroup id is the child's, captured in the kernel. For exit, exit_code is
 * task->exit_code (signal in low 7 bits) and the cgroup id is captured before the cgroup can go. */
struct tapio_proc_record {
  struct tapio_header hdr;
  __u32 ppid;
  __s32 exit_code;
  __u64 start_time_ns;
};

/* TAPIO_REC_RECLAIM: 72 bytes. One memcg reclaim pass that took at least the rodata minimum. */
struct tapio_reclaim_record {
  struct tapio_header hdr;
  __u64 duration_ns;
  __u64 nr_reclaimed; /* pages */
  __u32 order;
  __u32 gfp_flags;
};

/* TAPIO_REC_OOM_CONTEXT: 80 bytes, from fentry/oom_kill_process where the kernel permits. */
struct tapio_oom_context_record {
  struct tapio_header hdr; /* pid/cgroup: the victim chosen */
  __u64 oom_memcg_id;      /* 0 for a global OOM */
  __u64 totalpages;
  __u32 constraint; /* enum oom_constraint: 0 none, 1 cpuset, 2 mempolicy, 3 memcg */
  __u32 trigger_pid;
  __u64 gfp_order;
};

/* Per-cgroup reclaim totals kept in the kernel (map `tapio_reclaim_totals`, key cgroup id). */
struct tapio_reclaim_total {
  __u64 count;
  __u64 total_ns;
  __u64 max_ns;
  __u64 nr_reclaimed;
};

#endif /* TAPIO_BPF_TAPIO_ABI_H_ */
