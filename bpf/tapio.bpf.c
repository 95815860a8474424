// SPDX-License-Identifier: GPL-2.0
/*
 * Tapio's kernel side (DESIGN.md section 2). One object, loaded by agent/bpf/memory_tracker.cc.
 *
 * Programs and their fallbacks (the loader picks by feature probing, see docs/kernel.md):
 *   iter/task                         TASK_RSS snapshot lines, read through the iterator fd
 *   tp_btf/rss_stat                   RSS_CHANGE past rss_threshold_pages (attached only if asked)
 *   tp_btf/mark_victim | tp/oom/mark_victim          OOM_KILL (victim's cgroup; 0 on the classic
 * path) fentry/oom_kill_process           OOM_CONTEXT (autoload off unless the probe says fentry
 * works) tp_btf/sched_process_{exec,fork,exit}            PROC_EXEC / PROC_FORK / PROC_EXIT
 *   tp/vmscan/mm_vmscan_memcg_reclaim_{begin,end}    RECLAIM + per-cgroup totals
 * Records go to the ring buffer `tapio_rb`, or to the perf buffer `tapio_pb` when rodata
 * use_perfbuf is set (ring buffer missing, or forced). Every failed output is counted in the
 * per-CPU array `tapio_lost` (enum tapio_loss_slot): loss is never silent.
 */
// vmlinux.h must come first (libbpf headers use its types).
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpf/tapio_abi.h"
// clang-format on

char LICENSE[] SEC("license") = "GPL";

/* ---- settings: rodata, set by the loader before load ---------------------------------------- */
const volatile __u32 abi_version = TAPIO_ABI_VERSION;
const volatile bool use_v1_memcg_id = false; /* pure v1 hosts: memory controller's kernfs id */
const volatile bool use_perfbuf = false;     /* emit through tapio_pb instead of tapio_rb */
const volatile bool rss_track_all = false;   /* rss_stat: every cgroup, not only tapio_tracked */
const volatile __u32 rss_threshold_pages = 256;
const volatile __u64 min_reclaim_ns = 0;
const volatile __u32 page_shift = 12;

/* ---- maps ------------------------------------------------------------------------------------ */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 8 << 20); /* resized by the loader (power of two, >= page size) */
} tapio_rb SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} tapio_pb SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, TAPIO_LOSS_SLOTS);
  __type(key, __u32);
  __type(value, __u64);
} tapio_lost SEC(".maps");

/* Cgroups whose processes the rss_stat hook follows (key: cgroup id as in the header). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC); /* memory only for live entries */
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, __u8);
} tapio_tracked SEC(".maps");

/* Per-process state of the rss_stat hook, on the thread-group leader: the last reported RSS. */
struct rss_state {
  __u64 pages[4];
};
struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct rss_state);
} tapio_rss_last SEC(".maps");

/* Per-CPU cache of the last faulting task: its tracked decision and its process's last reported
 * RSS, so that a fault of the same task on the same CPU costs no helper call and no hash or
 * task-storage lookup, only loads. Valid while the task has not migrated (se.nr_migrations), not
 * changed cgroups (its css_set) and the tracked set has not changed (tracked_gen); anything else
 * takes the slow path, which reloads from tapio_tracked and the task storage (the authoritative
 * copy, written on every report). Threads of one process on two CPUs each compare against their
 * CPU's copy, so one of them may report early once after the other reported: an extra record
 * with correct absolute values, never a missed one. Races: a program preempted while refreshing
 * the cache on the same CPU can leave a decision made under the previous generation, only if the
 * tracked set changed at that instant; the next miss corrects it. */
struct fault_cache {
  __u64 task;          /* the task_struct, as an integer */
  __u64 nr_migrations; /* its se.nr_migrations when cached */
  __u64 css_set;       /* its cgroups pointer when cached */
  __u64 cgroup_id;
  __u32 gen;
  __u32 tracked;
  __u64 pages[4]; /* its process's last reported RSS */
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct fault_cache);
} tapio_fault_cache SEC(".maps");

/* Bumped by user space after every change of tapio_tracked (.bss, mmapped by the skeleton). */
volatile __u32 tracked_gen = 0;

/* memcg reclaim passes in flight, key: thread id. */
struct reclaim_start {
  __u64 start_ns;
  __u32 order;
  __u32 gfp_flags;
};
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC); /* memory only for live entries */
  __uint(max_entries, 8192);
  __type(key, __u32);
  __type(value, struct reclaim_start);
} tapio_reclaim_start SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC); /* memory only for live entries */
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct tapio_reclaim_total);
} tapio_reclaim_totals SEC(".maps");

/* ---- helpers --------------------------------------------------------------------------------- */
static __always_inline void count_loss(__u32 slot) {
  __u64* v = bpf_map_lookup_elem(&tapio_lost, &slot);
  if (v) *v += 1; /* per-CPU slot: no atomics needed */
}

/* Sends one record; `ctx` is the program's context (needed by the perf buffer helper). */
static __always_inline void emit(void* ctx, void* rec, __u64 size) {
  if (use_perfbuf) {
    if (bpf_perf_event_output(ctx, &tapio_pb, BPF_F_CURRENT_CPU, rec, size) != 0)
      count_loss(TAPIO_LOSS_PERFBUF_OUTPUT);
  } else {
    if (bpf_ringbuf_output(&tapio_rb, rec, size, 0) != 0) count_loss(TAPIO_LOSS_RINGBUF_RESERVE);
  }
}

/* The cgroup id of `task` per the rodata mode. CO-RE reads: valid for any task pointer. */
static __always_inline __u64 task_cgroup_id(struct task_struct* task) {
  if (use_v1_memcg_id) {
    int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
    return BPF_CORE_READ(task, cgroups, subsys[id], cgroup, kn, id);
  }
  return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

static __always_inline __u64 current_cgroup_id(void) {
  if (use_v1_memcg_id) return task_cgroup_id((struct task_struct*)bpf_get_current_task());
  return bpf_get_current_cgroup_id();
}

static __always_inline void fill_header(struct tapio_header* h, __u16 type,
                                        struct task_struct* task, __u64 cgroup_id) {
  h->version = TAPIO_ABI_VERSION;
  h->type = type;
  h->cpu = bpf_get_smp_processor_id();
  h->ts_ns = bpf_ktime_get_boot_ns();
  h->pid = BPF_CORE_READ(task, tgid);
  h->tid = BPF_CORE_READ(task, pid);
  h->cgroup_id = cgroup_id;
  BPF_CORE_READ_STR_INTO(&h->comm, task, comm);
}

/* Kernels before 6.2 keep RSS counters as atomics in struct mm_rss_stat. */
struct mm_rss_stat___old {
  atomic_long_t count[4];
} __attribute__((preserve_access_index));
struct mm_struct___old {
  struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

static __always_inline __u64 clamp_pages(long v) { return v < 0 ? 0 : (__u64)v; }

/* Reads the 4 RSS counters (MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES). On 6.2+ this
 * is percpu_counter.count, the same approximate value get_mm_counter() (and the rss_stat
 * tracepoint) reports: off by at most the per-CPU batch on each CPU. */
static __always_inline void read_rss(struct mm_struct* mm, __u64 out[4]) {
  if (bpf_core_type_exists(struct mm_rss_stat___old)) {
    struct mm_struct___old* old = (void*)mm;
    out[0] = clamp_pages(BPF_CORE_READ(old, rss_stat.count[0].counter));
    out[1] = clamp_pages(BPF_CORE_READ(old, rss_stat.count[1].counter));
    out[2] = clamp_pages(BPF_CORE_READ(old, rss_stat.count[2].counter));
    out[3] = clamp_pages(BPF_CORE_READ(old, rss_stat.count[3].counter));
  } else {
    out[0] = clamp_pages(BPF_CORE_READ(mm, rss_stat[0].count));
    out[1] = clamp_pages(BPF_CORE_READ(mm, rss_stat[1].count));
    out[2] = clamp_pages(BPF_CORE_READ(mm, rss_stat[2].count));
    out[3] = clamp_pages(BPF_CORE_READ(mm, rss_stat[3].count));
  }
}

static __always_inline void rss_to_abi(const __u64 c[4], struct tapio_rss* r) {
  r->file_pages = c[0];
  r->anon_pages = c[1];
  r->swap_entries = c[2];
  r->shmem_pages = c[3];
}

#define TAPIO_PF_EXITING 0x00000004 /* include/linux/sched.h */

static __always_inline void fill_rss_record(struct tapio_rss_record* rec, __u16 type,
                                            struct task_struct* task, struct mm_struct* mm,
                                            __u64 cgroup_id, const __u64 c[4]) {
  fill_header(&rec->hdr, type, task, cgroup_id);
  rss_to_abi(c, &rec->rss);
  rec->ppid = BPF_CORE_READ(task, real_parent, tgid);
  rec->flags = (BPF_CORE_READ(task, flags) & TAPIO_PF_EXITING) ? 1 : 0;
  rec->start_time_ns = BPF_CORE_READ(task, start_boottime);
}

/* ---- iter/task: RSS of every process in one pass -------------------------------------------- */
SEC("iter/task")
int tapio_task_rss(struct bpf_iter__task* ctx) {
  struct seq_file* seq = ctx->meta->seq;
  struct task_struct* task = ctx->task;
  if (!task) return 0;
  if (task->pid != task->tgid) return 0; /* thread-group leaders only */
  struct mm_struct* mm = task->mm;
  if (!mm) return 0; /* kernel threads, zombies */
  struct tapio_rss_record rec = {};
  __u64 c[4];
  read_rss(mm, c);
  fill_rss_record(&rec, TAPIO_REC_TASK_RSS, task, mm, task_cgroup_id(task), c);
  bpf_seq_write(seq, &rec, sizeof(rec));
  return 0;
}

/* ---- tp_btf/rss_stat: per-fault path, aggregated in task local storage ---------------------- */
/* The hottest code here: it runs on about every page fault of the node. Direct (BTF) loads only,
 * three helper calls in the common case (current task, storage, cgroup id), no map lookup
 * unless the cached decision is stale. */
static __always_inline void read_rss_direct(struct mm_struct* mm, __u64 out[4]) {
  if (bpf_core_type_exists(struct mm_rss_stat___old)) {
    read_rss(mm, out);
    return;
  }
  out[0] = clamp_pages(mm->rss_stat[0].count);
  out[1] = clamp_pages(mm->rss_stat[1].count);
  out[2] = clamp_pages(mm->rss_stat[2].count);
  out[3] = clamp_pages(mm->rss_stat[3].count);
}

/* The cgroup id of a BTF (trusted) task by direct loads: what bpf_get_current_cgroup_id() computes,
 * without the helper call. */
static __always_inline __u64 task_cgroup_id_direct(struct task_struct* task) {
  if (use_v1_memcg_id) {
    int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
    return task->cgroups->subsys[id]->cgroup->kn->id;
  }
  return task->cgroups->dfl_cgrp->kn->id;
}

SEC("tp_btf/rss_stat")
int BPF_PROG(tapio_rss_stat, struct mm_struct* mm, int member) {
  struct task_struct* cur = bpf_get_current_task_btf();
  if (cur->mm != mm) return 0; /* remote updates (e.g. the OOM reaper): not this process's fault */
  __u32 zero = 0;
  struct fault_cache* fc = bpf_map_lookup_elem(&tapio_fault_cache, &zero);
  if (!fc) return 0;
  const __u32 gen = tracked_gen;
  const __u64 migrations = cur->se.nr_migrations;
  const __u64 css_set = (__u64)cur->cgroups;
  if (fc->task != (__u64)cur || fc->nr_migrations != migrations || fc->css_set != css_set ||
      fc->gen != gen) {
    /* Slow path: another task, or this one moved. */
    __u64 cgid = task_cgroup_id_direct(cur);
    __u32 tracked = rss_track_all || bpf_map_lookup_elem(&tapio_tracked, &cgid) != 0;
    fc->task = (__u64)cur;
    fc->nr_migrations = migrations;
    fc->css_set = css_set;
    fc->cgroup_id = cgid;
    fc->gen = gen;
    fc->tracked = tracked;
    if (!tracked) return 0;
    struct rss_state* st =
        bpf_task_storage_get(&tapio_rss_last, cur->group_leader, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!st) {
      fc->task = 0; /* retry the storage next time */
      return 0;
    }
    fc->pages[0] = st->pages[0];
    fc->pages[1] = st->pages[1];
    fc->pages[2] = st->pages[2];
    fc->pages[3] = st->pages[3];
  } else if (!fc->tracked) {
    return 0;
  }
  __u64 c[4];
  read_rss_direct(mm, c);
  __u64 now = c[0] + c[1] + c[3];
  __u64 then = fc->pages[0] + fc->pages[1] + fc->pages[3];
  __u64 diff = now > then ? now - then : then - now;
  if (diff < rss_threshold_pages) return 0;
  fc->pages[0] = c[0];
  fc->pages[1] = c[1];
  fc->pages[2] = c[2];
  fc->pages[3] = c[3];
  struct rss_state* st =
      bpf_task_storage_get(&tapio_rss_last, cur->group_leader, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (st) {
    st->pages[0] = c[0];
    st->pages[1] = c[1];
    st->pages[2] = c[2];
    st->pages[3] = c[3];
  }
  struct tapio_rss_record rec = {};
  fill_rss_record(&rec, TAPIO_REC_RSS_CHANGE, cur, mm, fc->cgroup_id, c);
  emit(ctx, &rec, sizeof(rec));
  return 0;
}

/* ---- OOM kill -------------------------------------------------------------------------------- */
static __always_inline void fill_trigger(struct tapio_oom_record* rec) {
  rec->trigger_pid = bpf_get_current_pid_tgid() >> 32;
  rec->trigger_cgroup_id = current_cgroup_id();
  bpf_get_current_comm(&rec->trigger_comm, sizeof(rec->trigger_comm));
  rec->page_shift = page_shift;
}

/* 6.x: the tracepoint hands over the victim's task_struct. */
SEC("tp_btf/mark_victim")
int BPF_PROG(tapio_mark_victim, struct task_struct* task, uid_t uid) {
  struct tapio_oom_record rec = {};
  fill_header(&rec.hdr, TAPIO_REC_OOM_KILL, task, task_cgroup_id(task));
  struct mm_struct* mm = BPF_CORE_READ(task, mm);
  if (mm) {
    __u64 c[4];
    read_rss(mm, c);
    rss_to_abi(c, &rec.rss);
    rec.total_vm_pages = BPF_CORE_READ(mm, total_vm);
    rec.pgtables_bytes = BPF_CORE_READ(mm, pgtables_bytes.counter);
  }
  rec.oom_score_adj = BPF_CORE_READ(task, signal, oom_score_adj);
  fill_trigger(&rec);
  emit(ctx, &rec, sizeof(rec));
  return 0;
}

/* Classic tracepoint fallback (older kernels pass only the pid to tp_btf). The cgroup id is 0:
 * user space resolves the victim pid through its process table. RSS fields, when the kernel has
 * them (5.19+), are in kB. */
struct trace_event_raw_mark_victim___new {
  int pid;
  __u32 __data_loc_comm;
  unsigned long total_vm;
  unsigned long anon_rss;
  unsigned long file_rss;
  unsigned long shmem_rss;
  unsigned long pgtables;
  short oom_score_adj;
} __attribute__((preserve_access_index));

SEC("tp/oom/mark_victim")
int tapio_mark_victim_tp(struct trace_event_raw_mark_victim* ctx) {
  struct tapio_oom_record rec = {};
  rec.hdr.version = TAPIO_ABI_VERSION;
  rec.hdr.type = TAPIO_REC_OOM_KILL;
  rec.hdr.cpu = bpf_get_smp_processor_id();
  rec.hdr.ts_ns = bpf_ktime_get_boot_ns();
  rec.hdr.pid = BPF_CORE_READ(ctx, pid);
  rec.hdr.tid = rec.hdr.pid;
  rec.hdr.cgroup_id = 0;
  struct trace_event_raw_mark_victim___new* n = (void*)ctx;
  if (bpf_core_field_exists(n->anon_rss)) {
    __u32 kb_shift = page_shift - 10;
    rec.rss.anon_pages = BPF_CORE_READ(n, anon_rss) >> kb_shift;
    rec.rss.file_pages = BPF_CORE_READ(n, file_rss) >> kb_shift;
    rec.rss.shmem_pages = BPF_CORE_READ(n, shmem_rss) >> kb_shift;
    rec.total_vm_pages = BPF_CORE_READ(n, total_vm) >> kb_shift;
    rec.pgtables_bytes = BPF_CORE_READ(n, pgtables) << 10;
    rec.oom_score_adj = BPF_CORE_READ(n, oom_score_adj);
    __u32 loc = BPF_CORE_READ(n, __data_loc_comm);
    bpf_probe_read_kernel_str(rec.hdr.comm, sizeof(rec.hdr.comm), (void*)ctx + (loc & 0xffff));
  }
  fill_trigger(&rec);
  emit(ctx, &rec, sizeof(rec));
  return 0;
}

/* Optional: constraint and OOM memcg. Autoload is off unless the loader's fentry probe passed. */
SEC("fentry/oom_kill_process")
int BPF_PROG(tapio_oom_kill_process, struct oom_control* oc, const char* message) {
  struct tapio_oom_context_record rec = {};
  struct task_struct* victim = BPF_CORE_READ(oc, chosen);
  if (!victim) return 0;
  fill_header(&rec.hdr, TAPIO_REC_OOM_CONTEXT, victim, task_cgroup_id(victim));
  struct mem_cgroup* memcg = BPF_CORE_READ(oc, memcg);
  rec.oom_memcg_id = memcg ? BPF_CORE_READ(memcg, css.cgroup, kn, id) : 0;
  rec.totalpages = BPF_CORE_READ(oc, totalpages);
  rec.constraint = BPF_CORE_READ(oc, constraint);
  rec.trigger_pid = bpf_get_current_pid_tgid() >> 32;
  rec.gfp_order = BPF_CORE_READ(oc, order);
  emit(ctx, &rec, sizeof(rec));
  return 0;
}

/* ---- process lifecycle ----------------------------------------------------------------------- */
static __always_inline void emit_proc(void* ctx, __u16 type, struct task_struct* task,
                                      __s32 exit_code) {
  struct tapio_proc_record rec = {};
  fill_header(&rec.hdr, type, task, task_cgroup_id(task));
  rec.ppid = BPF_CORE_READ(task, real_parent, tgid);
  rec.exit_code = exit_code;
  rec.start_time_ns = BPF_CORE_READ(task, start_boottime);
  emit(ctx, &rec, sizeof(rec));
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tapio_exec, struct task_struct* p, pid_t old_pid, struct linux_binprm* bprm) {
  emit_proc(ctx, TAPIO_REC_PROC_EXEC, p, 0);
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(tapio_fork, struct task_struct* parent, struct task_struct* child) {
  if (child->pid != child->tgid) return 0; /* a new thread, not a process */
  emit_proc(ctx, TAPIO_REC_PROC_FORK, child, 0);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tapio_exit, struct task_struct* p) {
  if (p->pid != p->tgid) return 0; /* threads */
  emit_proc(ctx, TAPIO_REC_PROC_EXIT, p, BPF_CORE_READ(p, exit_code));
  return 0;
}

/* ---- memcg reclaim stalls -------------------------------------------------------------------- */
SEC("tp/vmscan/mm_vmscan_memcg_reclaim_begin")
int tapio_reclaim_begin(struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template* ctx) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct reclaim_start s = {
      .start_ns = bpf_ktime_get_ns(),
      .order = BPF_CORE_READ(ctx, order),
      .gfp_flags = BPF_CORE_READ(ctx, gfp_flags),
  };
  if (bpf_map_update_elem(&tapio_reclaim_start, &tid, &s, BPF_ANY) != 0)
    count_loss(TAPIO_LOSS_RECLAIM_TABLE);
  return 0;
}

SEC("tp/vmscan/mm_vmscan_memcg_reclaim_end")
int tapio_reclaim_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template* ctx) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct reclaim_start* s = bpf_map_lookup_elem(&tapio_reclaim_start, &tid);
  if (!s) return 0; /* began before we attached, or the table was full (counted) */
  __u64 duration_ns = bpf_ktime_get_ns() - s->start_ns;
  __u32 order = s->order, gfp = s->gfp_flags;
  bpf_map_delete_elem(&tapio_reclaim_start, &tid);
  __u64 nr = BPF_CORE_READ(ctx, nr_reclaimed);
  __u64 cgid = current_cgroup_id();

  struct tapio_reclaim_total* t = bpf_map_lookup_elem(&tapio_reclaim_totals, &cgid);
  if (!t) {
    struct tapio_reclaim_total zero = {};
    bpf_map_update_elem(&tapio_reclaim_totals, &cgid, &zero, BPF_NOEXIST);
    t = bpf_map_lookup_elem(&tapio_reclaim_totals, &cgid);
  }
  if (t) {
    __sync_fetch_and_add(&t->count, 1);
    __sync_fetch_and_add(&t->total_ns, duration_ns);
    __sync_fetch_and_add(&t->nr_reclaimed, nr);
    if (duration_ns > t->max_ns) t->max_ns = duration_ns; /* racy max: may miss a concurrent peak */
  } else {
    count_loss(TAPIO_LOSS_RECLAIM_TABLE);
  }

  if (duration_ns < min_reclaim_ns) return 0;
  struct tapio_reclaim_record rec = {};
  fill_header(&rec.hdr, TAPIO_REC_RECLAIM, (struct task_struct*)bpf_get_current_task(), cgid);
  rec.duration_ns = duration_ns;
  rec.nr_reclaimed = nr;
  rec.order = order;
  rec.gfp_flags = gfp;
  emit(ctx, &rec, sizeof(rec));
  return 0;
}
