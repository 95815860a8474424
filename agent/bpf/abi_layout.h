// Compile-time proof that the C++ view of bpf/tapio_abi.h matches the layout the BPF side writes.
// Every size and every field offset is pinned here; a change in tapio_abi.h that moves anything
// fails the build until this file and TAPIO_ABI_VERSION are updated together.
#ifndef TAPIO_AGENT_BPF_ABI_LAYOUT_H_
#define TAPIO_AGENT_BPF_ABI_LAYOUT_H_

#include <cstddef>

#include "bpf/tapio_abi.h"

namespace tapio::bpf::abi_layout {

static_assert(TAPIO_ABI_VERSION == 1, "update the offsets below together with the version");

static_assert(sizeof(tapio_header) == 48);
static_assert(offsetof(tapio_header, version) == 0);
static_assert(offsetof(tapio_header, type) == 2);
static_assert(offsetof(tapio_header, cpu) == 4);
static_assert(offsetof(tapio_header, ts_ns) == 8);
static_assert(offsetof(tapio_header, pid) == 16);
static_assert(offsetof(tapio_header, tid) == 20);
static_assert(offsetof(tapio_header, cgroup_id) == 24);
static_assert(offsetof(tapio_header, comm) == 32);

static_assert(sizeof(tapio_rss) == 32);
static_assert(offsetof(tapio_rss, file_pages) == 0);
static_assert(offsetof(tapio_rss, anon_pages) == 8);
static_assert(offsetof(tapio_rss, swap_entries) == 16);
static_assert(offsetof(tapio_rss, shmem_pages) == 24);

static_assert(sizeof(tapio_rss_record) == 96);
static_assert(offsetof(tapio_rss_record, rss) == 48);
static_assert(offsetof(tapio_rss_record, ppid) == 80);
static_assert(offsetof(tapio_rss_record, flags) == 84);
static_assert(offsetof(tapio_rss_record, start_time_ns) == 88);

static_assert(sizeof(tapio_oom_record) == 128);
static_assert(offsetof(tapio_oom_record, rss) == 48);
static_assert(offsetof(tapio_oom_record, total_vm_pages) == 80);
static_assert(offsetof(tapio_oom_record, pgtables_bytes) == 88);
static_assert(offsetof(tapio_oom_record, trigger_pid) == 96);
static_assert(offsetof(tapio_oom_record, oom_score_adj) == 100);
static_assert(offsetof(tapio_oom_record, page_shift) == 102);
static_assert(offsetof(tapio_oom_record, trigger_cgroup_id) == 104);
static_assert(offsetof(tapio_oom_record, trigger_comm) == 112);

static_assert(sizeof(tapio_proc_record) == 64);
static_assert(offsetof(tapio_proc_record, ppid) == 48);
static_assert(offsetof(tapio_proc_record, exit_code) == 52);
static_assert(offsetof(tapio_proc_record, start_time_ns) == 56);

static_assert(sizeof(tapio_reclaim_record) == 72);
static_assert(offsetof(tapio_reclaim_record, duration_ns) == 48);
static_assert(offsetof(tapio_reclaim_record, nr_reclaimed) == 56);
static_assert(offsetof(tapio_reclaim_record, order) == 64);
static_assert(offsetof(tapio_reclaim_record, gfp_flags) == 68);

static_assert(sizeof(tapio_oom_context_record) == 80);
static_assert(offsetof(tapio_oom_context_record, oom_memcg_id) == 48);
static_assert(offsetof(tapio_oom_context_record, totalpages) == 56);
static_assert(offsetof(tapio_oom_context_record, constraint) == 64);
static_assert(offsetof(tapio_oom_context_record, trigger_pid) == 68);
static_assert(offsetof(tapio_oom_context_record, gfp_order) == 72);

static_assert(sizeof(tapio_reclaim_total) == 32);
static_assert(offsetof(tapio_reclaim_total, count) == 0);
static_assert(offsetof(tapio_reclaim_total, total_ns) == 8);
static_assert(offsetof(tapio_reclaim_total, max_ns) == 16);
static_assert(offsetof(tapio_reclaim_total, nr_reclaimed) == 24);

}  // namespace tapio::bpf::abi_layout

#endif  // TAPIO_AGENT_BPF_ABI_LAYOUT_H_
