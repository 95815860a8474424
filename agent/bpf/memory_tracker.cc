#include "agent/bpf/memory_tracker.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/bpf/record.h"
#include "agent/core/log.h"
#include "bpf/tapio.skel.h"

namespace tapio::bpf {
namespace {

constexpr long kTracefsMagic = 0x74726163;  // include/uapi/linux/magic.h TRACEFS_MAGIC
constexpr long kBpffsMagic = 0xcafe4a11;    // BPF_FS_MAGIC
constexpr int kCapPerfmon = 38;             // include/uapi/linux/capability.h
constexpr int kCapBpf = 39;
constexpr int kMinKernelMajor = 5, kMinKernelMinor = 8;  // ring buffer, iter/task, boot ns

// libbpf messages go through the one logging helper; its DEBUG chatter only at kDebug.
int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  LogLevel ours = level == LIBBPF_WARN ? LogLevel::kWarning : LogLevel::kDebug;
  if (level == LIBBPF_DEBUG && !LogEnabled(LogLevel::kDebug)) return 0;
  if (!LogEnabled(ours)) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), format, args);
  std::string_view line(buf, n < 0 ? 0 : std::min<size_t>(n, sizeof(buf) - 1));
  while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  // libbpf prefixes its own messages with "libbpf: ".
  LogLine(ours, std::string(line.data(), line.size()));
  return 0;
}

void InstallLibbpfLogger() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(LibbpfPrint); });
}

absl::Status ErrnoStatus(int err, std::string_view what) {
  return absl::ErrnoToStatus(err, std::string(what));
}

bool IsMountedAs(const char* path, long magic) {
  struct statfs st;
  return statfs(path, &st) == 0 && static_cast<long>(st.f_type) == magic;
}

// Whether BTF says tp_btf/<name>'s argument `index` (after the void* context) is a pointer to
// `struct struct_name`. Distinguishes e.g. 6.x mark_victim(task_struct*, uid) from the older
// mark_victim(int pid), where a tp_btf program written for the former cannot load.
bool TpBtfArgIsStructPtr(const struct btf* vmlinux, const char* tp, int index,
                         const char* struct_name) {
  std::string typedef_name = absl::StrCat("btf_trace_", tp);
  int id = btf__find_by_name_kind(vmlinux, typedef_name.c_str(), BTF_KIND_TYPEDEF);
  if (id < 0) return false;
  const struct btf_type* t = btf__type_by_id(vmlinux, btf__type_by_id(vmlinux, id)->type);
  if (!t || !btf_is_ptr(t)) return false;
  t = btf__type_by_id(vmlinux, t->type);
  if (!t || !btf_is_func_proto(t)) return false;
  int arg = index + 1;  // param 0 is the tracepoint's void *__data
  if (btf_vlen(t) <= arg) return false;
  const struct btf_param* p = btf_params(t) + arg;
  const struct btf_type* a = btf__type_by_id(vmlinux, p->type);
  while (a && (btf_is_typedef(a) || btf_is_const(a) || btf_is_volatile(a))) {
    a = btf__type_by_id(vmlinux, a->type);
  }
  if (!a || !btf_is_ptr(a)) return false;
  a = btf__type_by_id(vmlinux, a->type);
  return a && btf_is_struct(a) &&
         strcmp(btf__name_by_offset(vmlinux, a->name_off), struct_name) == 0;
}

// Tries to load a minimal fentry program on oom_kill_process. OK when the kernel permits
// fentry there; the error otherwise (EPERM on VMs without BPF trampolines).
absl::Status ProbeFentry(const struct btf* vmlinux) {
  int func_id = btf__find_by_name_kind(vmlinux, "oom_kill_process", BTF_KIND_FUNC);
  if (func_id < 0) return absl::NotFoundError("oom_kill_process not in kernel BTF (inlined?)");
  struct bpf_insn insns[2];  // r0 = 0; exit
  std::memset(insns, 0, sizeof(insns));
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[0].dst_reg = BPF_REG_0;
  insns[1].code = BPF_JMP | BPF_EXIT;
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
              .attach_btf_id = static_cast<__u32>(func_id));
  int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "tapio_probe", "GPL", insns, 2, &opts);
  if (fd < 0) return ErrnoStatus(-fd, "load fentry/oom_kill_process probe");
  close(fd);
  return absl::OkStatus();
}

bool IsPowerOfTwo(size_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

// ---------------------------------------------------------------------------------------------

absl::Status CheckEnvironment() {
  // Privileges.
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return ErrnoStatus(errno, "capget");
  auto has = [&](int cap) { return (data[cap / 32].effective >> (cap % 32)) & 1u; };
  bool sys_admin = has(CAP_SYS_ADMIN);
  if (!sys_admin && !(has(kCapBpf) && has(kCapPerfmon))) {
    return absl::PermissionDeniedError(
        "missing capabilities: need CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN on kernels < 5.8); "
        "run as root or grant them");
  }
  // Kernel version.
  struct utsname u;
  if (uname(&u) == 0) {
    int major = 0, minor = 0;
    if (sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
        (major < kMinKernelMajor || (major == kMinKernelMajor && minor < kMinKernelMinor))) {
      return absl::FailedPreconditionError(
          absl::StrCat("kernel ", u.release, " is too old: need >= ", kMinKernelMajor, ".",
                       kMinKernelMinor, " (BPF ring buffer, task iterator)"));
    }
  }
  // BTF: CO-RE relocations and tp_btf need it.
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return absl::FailedPreconditionError(
        "no kernel BTF at /sys/kernel/btf/vmlinux: the kernel needs CONFIG_DEBUG_INFO_BTF=y");
  }
  // tracefs: libbpf resolves classic tracepoint ids through it.
  const char* tracefs = "/sys/kernel/tracing";
  if (!IsMountedAs(tracefs, kTracefsMagic) &&
      !IsMountedAs("/sys/kernel/debug/tracing", kTracefsMagic)) {
    if (mount("tracefs", tracefs, "tracefs", 0, nullptr) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("tracefs is not mounted at ", tracefs, " and mounting it failed (",
                       strerror(errno), "): mount -t tracefs tracefs ", tracefs));
    }
    TAPIO_LOG(kInfo, "mounted tracefs at %s", tracefs);
  }
  // bpffs: not needed (nothing is pinned) but expected by operators; mount when missing.
  const char* bpffs = "/sys/fs/bpf";
  if (!IsMountedAs(bpffs, kBpffsMagic)) {
    if (mount("bpf", bpffs, "bpf", 0, nullptr) == 0) {
      TAPIO_LOG(kInfo, "mounted bpffs at %s", bpffs);
    } else {
      TAPIO_LOG(kWarning, "bpffs not mounted at %s (%s); continuing: nothing is pinned", bpffs,
                strerror(errno));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> SetBpfStatsEnabled(bool enabled) {
  const char* path = "/proc/sys/kernel/bpf_stats_enabled";
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
  char c = '0';
  bool previous = read(fd, &c, 1) == 1 && c == '1';
  char v = enabled ? '1' : '0';
  ssize_t n = pwrite(fd, &v, 1, 0);
  int err = errno;
  close(fd);
  if (n != 1) return ErrnoStatus(err, absl::StrCat("write ", path));
  return previous;
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<MemoryTracker>> MemoryTracker::Create(
    const TrackerOptions& options) {
  InstallLibbpfLogger();
  long page = sysconf(_SC_PAGESIZE);
  if (!IsPowerOfTwo(options.ringbuf_bytes) || options.ringbuf_bytes < static_cast<size_t>(page)) {
    return absl::InvalidArgumentError(absl::StrCat("ringbuf_bytes: ", options.ringbuf_bytes,
                                                   " is not a power of two >= the page size ",
                                                   page));
  }
  if (options.rss_threshold_pages == 0) {
    return absl::InvalidArgumentError("rss_threshold_pages: must be > 0");
  }
  absl::Status env = CheckEnvironment();
  if (!env.ok()) return env;
  auto tracker = std::unique_ptr<MemoryTracker>(new MemoryTracker());
  absl::Status s = tracker->Load(options);
  if (!s.ok()) return s;
  s = tracker->AttachAll(options);
  if (!s.ok()) return s;
  return tracker;
}

absl::Status MemoryTracker::Load(const TrackerOptions& options) {
  struct btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return ErrnoStatus(errno, "load kernel BTF");
  bool tp_btf_victim = !options.force_classic_mark_victim &&
                       TpBtfArgIsStructPtr(vmlinux, "mark_victim", 0, "task_struct");
  bool have_rss_stat = TpBtfArgIsStructPtr(vmlinux, "rss_stat", 0, "mm_struct");
  absl::Status fentry = options.try_fentry ? ProbeFentry(vmlinux)
                                           : absl::CancelledError("disabled by try_fentry=false");
  btf__free(vmlinux);

  bool have_ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
  bool use_perfbuf = options.force_perfbuf || !have_ringbuf;
  bool have_task_storage = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, nullptr) == 1;
  if (options.rss_stat_hook && !(have_rss_stat && have_task_storage)) {
    return absl::FailedPreconditionError(
        "rss_stat_hook: this kernel lacks tp_btf/rss_stat(mm, member) or task local storage");
  }
  bool load_fentry = fentry.ok();
  std::string fentry_skip = load_fentry ? "" : std::string(fentry.message());
  if (!load_fentry) TAPIO_LOG(kInfo, "fentry/oom_kill_process skipped: %s", fentry_skip);

  for (int attempt = 0; attempt < 2; ++attempt) {
    // CO-RE against vmlinux BTF only: without btf_custom_path, libbpf 1.1 searches kernel module
    // BTFs for types absent from vmlinux (our old-kernel fallback types), and listing them
    // (BPF_BTF_GET_NEXT_ID) needs CAP_SYS_ADMIN: CAP_BPF + CAP_PERFMON alone would fail to load.
    LIBBPF_OPTS(bpf_object_open_opts, open_opts, .btf_custom_path = "/sys/kernel/btf/vmlinux");
    skel_ = tapio_bpf__open_opts(&open_opts);
    if (!skel_) return ErrnoStatus(errno, "open BPF skeleton");
    skel_->rodata->use_v1_memcg_id = options.use_v1_memcg_id;
    skel_->rodata->use_perfbuf = use_perfbuf;
    skel_->rodata->rss_track_all = options.rss_track_all;
    skel_->rodata->rss_threshold_pages = options.rss_threshold_pages;
    skel_->rodata->min_reclaim_ns = options.min_reclaim_ns;
    skel_->rodata->page_shift = static_cast<__u32>(__builtin_ctzl(sysconf(_SC_PAGESIZE)));
    // The unused output map is kept minimal (it must exist: both paths are in the code).
    bpf_map__set_max_entries(skel_->maps.tapio_rb,
                             use_perfbuf ? sysconf(_SC_PAGESIZE) : options.ringbuf_bytes);
    if (!have_task_storage) bpf_map__set_autocreate(skel_->maps.tapio_rss_last, false);
    bpf_program__set_autoload(skel_->progs.tapio_rss_stat, options.rss_stat_hook);
    bpf_program__set_autoload(skel_->progs.tapio_mark_victim, tp_btf_victim);
    bpf_program__set_autoload(skel_->progs.tapio_mark_victim_tp, !tp_btf_victim);
    bpf_program__set_autoload(skel_->progs.tapio_oom_kill_process, load_fentry);
    int err = tapio_bpf__load(skel_);
    if (err == 0) break;
    tapio_bpf__destroy(skel_);
    skel_ = nullptr;
    if (load_fentry) {  // the probe passed but the real program did not: retry without it
      load_fentry = false;
      fentry_skip = absl::StrCat("load failed: ", strerror(-err));
      TAPIO_LOG(kWarning, "fentry/oom_kill_process failed to load (%s); retrying without it",
                strerror(-err));
      continue;
    }
    return ErrnoStatus(-err, "load BPF object (see libbpf messages above)");
  }

  // Program table, in object order; reasons for the ones not loaded.
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    ProgramStatus st;
    st.name = bpf_program__name(prog);
    st.attach_point = bpf_program__section_name(prog);
    if (!bpf_program__autoload(prog)) {
      if (prog == skel_->progs.tapio_rss_stat)
        st.skip_reason = "rss_stat_hook is off";
      else if (prog == skel_->progs.tapio_oom_kill_process)
        st.skip_reason = fentry_skip;
      else if (prog == skel_->progs.tapio_mark_victim)
        st.skip_reason = options.force_classic_mark_victim
                             ? "force_classic_mark_victim is set"
                             : "tp_btf/mark_victim has no task_struct argument on this kernel";
      else if (prog == skel_->progs.tapio_mark_victim_tp)
        st.skip_reason = "not needed: tp_btf/mark_victim is used";
      else
        st.skip_reason = "not loaded";
    }
    programs_.push_back(std::move(st));
  }
  TAPIO_LOG(kInfo, "BPF object loaded: %s output, %zu programs",
            use_perfbuf ? "perf buffer" : "ring buffer", programs_.size());
  return absl::OkStatus();
}

absl::Status MemoryTracker::AttachAll(const TrackerOptions& options) {
  // Output first: a perf event array slot without an open event makes bpf_perf_event_output
  // fail (counted as loss) for every record emitted between attach and perf_buffer__new.
  if (skel_->rodata->use_perfbuf) {
    long page = sysconf(_SC_PAGESIZE);
    int ncpu = libbpf_num_possible_cpus();
    size_t per_cpu = options.ringbuf_bytes / page / (ncpu > 0 ? ncpu : 1);
    size_t pages = 1;
    while (pages * 2 <= per_cpu) pages *= 2;  // perf buffers need a power of two
    perfbuf_ = perf_buffer__new(bpf_map__fd(skel_->maps.tapio_pb), pages, &OnPerfSample,
                                &OnPerfLost, this, nullptr);
    if (!perfbuf_) return ErrnoStatus(errno, "perf_buffer__new");
    perf_scratch_.resize(32);
  } else {
    absl::StatusOr<std::unique_ptr<RingReader>> reader =
        RingReader::Open(bpf_map__fd(skel_->maps.tapio_rb));
    if (!reader.ok()) return reader.status();
    ringbuf_ = std::move(*reader);
  }
  // Programs whose absence makes the tracker pointless; the rest are attached if they can be.
  auto required = [this](const struct bpf_program* p) {
    return p == skel_->progs.tapio_task_rss || p == skel_->progs.tapio_mark_victim ||
           p == skel_->progs.tapio_mark_victim_tp || p == skel_->progs.tapio_exec ||
           p == skel_->progs.tapio_fork || p == skel_->progs.tapio_exit ||
           p == skel_->progs.tapio_rss_stat;  // asked for explicitly
  };
  size_t i = 0;
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    ProgramStatus& st = programs_[i++];
    if (!bpf_program__autoload(prog)) continue;
    struct bpf_link* link = bpf_program__attach(prog);
    if (!link) {
      int err = errno;
      st.skip_reason = absl::StrCat("attach failed: ", strerror(err));
      if (required(prog)) {
        return ErrnoStatus(err, absl::StrCat("attach ", st.attach_point));
      }
      TAPIO_LOG(kWarning, "%s not attached: %s", st.attach_point, st.skip_reason);
      continue;
    }
    if (prog == skel_->progs.tapio_rss_stat) {
      rss_link_ = link;
    } else {
      links_.push_back(link);
    }
    if (prog == skel_->progs.tapio_task_rss) iter_link_ = link;
    st.attached = true;
  }
  for (const ProgramStatus& st : programs_) {
    if (st.attached) {
      TAPIO_LOG(kInfo, "attached %s (%s)", st.attach_point, st.name);
    } else {
      TAPIO_LOG(kInfo, "skipped %s: %s", st.attach_point, st.skip_reason);
    }
  }

  return absl::OkStatus();
}

MemoryTracker::~MemoryTracker() {
  // Detach first, so that no program writes into an output that is being torn down.
  for (bpf_link* link : links_) bpf_link__destroy(link);
  if (rss_link_) bpf_link__destroy(rss_link_);
  ringbuf_.reset();  // unmaps before the map goes
  if (perfbuf_) perf_buffer__free(perfbuf_);
  if (skel_) tapio_bpf__destroy(skel_);
}

void MemoryTracker::OnPerfSample(void* ctx, int cpu, void* data, uint32_t size) {
  auto* self = static_cast<MemoryTracker*>(ctx);
  if (!self->sink_) return;
  // Perf samples sit 4 bytes past an 8-byte boundary and are padded: copy to aligned storage
  // and trim the padding when the header names a known record type.
  size_t words = (size + 7) / 8;
  if (self->perf_scratch_.size() < words) self->perf_scratch_.resize(words);
  std::memcpy(self->perf_scratch_.data(), data, size);
  size_t n = size;
  if (size >= sizeof(tapio_header)) {
    size_t want =
        RecordSize(reinterpret_cast<const tapio_header*>(self->perf_scratch_.data())->type);
    if (want != 0 && want <= size && size - want < 8) n = want;
  }
  const RawRecord record{self->perf_scratch_.data(), static_cast<uint32_t>(n)};
  RecordBatch batch;
  batch.records = &record;
  batch.count = 1;
  (*self->sink_)(batch);
  ++self->delivered_;
}

void MemoryTracker::OnPerfLost(void* ctx, int cpu, __u64 count) {
  static_cast<MemoryTracker*>(ctx)->perf_lost_samples_.fetch_add(count, std::memory_order_relaxed);
}

absl::StatusOr<int> MemoryTracker::PollBatches(int timeout_ms, RingReader::BatchFn on_batch) {
  if (ringbuf_) {
    absl::StatusOr<int64_t> n = ringbuf_->Poll(timeout_ms, on_batch);
    if (!n.ok()) return n.status();
    return static_cast<int>(*n);
  }
  sink_ = &on_batch;
  delivered_ = 0;
  int rc = perf_buffer__poll(perfbuf_, timeout_ms);
  sink_ = nullptr;
  if (rc < 0 && rc != -EINTR) return ErrnoStatus(-rc, "perf_buffer__poll");
  return delivered_;
}

absl::StatusOr<int> MemoryTracker::Poll(int timeout_ms,
                                        absl::FunctionRef<void(const void*, size_t)> on_record) {
  return PollBatches(timeout_ms, [&](const RecordBatch& batch) {
    for (size_t i = 0; i < batch.count; ++i)
      on_record(batch.records[i].data, batch.records[i].size);
  });
}

absl::Status MemoryTracker::SnapshotTasks(
    absl::FunctionRef<void(const tapio_rss_record&)> on_task) {
  if (!iter_link_) return absl::FailedPreconditionError("iter/task is not attached");
  int fd = bpf_iter_create(bpf_link__fd(iter_link_));
  if (fd < 0) return ErrnoStatus(errno, "bpf_iter_create");
  constexpr size_t kRec = sizeof(tapio_rss_record);
  std::vector<uint64_t> buf(kRec * 64 / 8);  // aligned; whole records are consumed from the front
  size_t have = 0;
  char* base = reinterpret_cast<char*>(buf.data());
  absl::Status status = absl::OkStatus();
  while (true) {
    ssize_t n = read(fd, base + have, buf.size() * 8 - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      status = ErrnoStatus(errno, "read task iterator");
      break;
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
    size_t off = 0;
    for (; have - off >= kRec; off += kRec) {
      absl::StatusOr<RecordView> view = RecordView::Decode(base + off, kRec);
      if (!view.ok() || view->type() != TAPIO_REC_TASK_RSS) {
        ++snapshot_rejects_;
        continue;
      }
      on_task(*view->rss());
    }
    if (off > 0) {
      std::memmove(base, base + off, have - off);
      have -= off;
    }
  }
  close(fd);
  if (status.ok() && have != 0) {
    ++snapshot_rejects_;
    return absl::DataLossError(
        absl::StrCat("task iterator ended with a partial record of ", have, " bytes"));
  }
  return status;
}

LossCounters MemoryTracker::ReadLoss() const {
  LossCounters out;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return out;
  std::vector<uint64_t> values(ncpu);
  auto sum = [&](uint32_t slot) -> uint64_t {
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.tapio_lost), &slot, values.data()) != 0) {
      return 0;
    }
    uint64_t total = 0;
    for (uint64_t v : values) total += v;
    return total;
  };
  out.ringbuf_reserve = sum(TAPIO_LOSS_RINGBUF_RESERVE);
  out.perfbuf_output = sum(TAPIO_LOSS_PERFBUF_OUTPUT);
  out.reclaim_table = sum(TAPIO_LOSS_RECLAIM_TABLE);
  out.perfbuf_lost_samples = perf_lost_samples_.load(std::memory_order_relaxed);
  return out;
}

std::vector<ProgramStatus> MemoryTracker::Programs() const {
  std::vector<ProgramStatus> out = programs_;
  size_t i = 0;
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    ProgramStatus& st = out[i++];
    if (prog == skel_->progs.tapio_rss_stat && bpf_program__autoload(prog)) {
      st.attached = rss_link_ != nullptr;
      st.skip_reason = st.attached ? "" : "detached by SetRssStatAttached(false)";
    }
    int fd = bpf_program__fd(prog);
    if (fd < 0) continue;
    struct bpf_prog_info info = {};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
      st.run_count = info.run_cnt;
      st.run_time_ns = info.run_time_ns;
    }
  }
  return out;
}

std::vector<std::pair<uint64_t, tapio_reclaim_total>> MemoryTracker::ReadReclaimTotals() const {
  std::vector<std::pair<uint64_t, tapio_reclaim_total>> out;
  int fd = bpf_map__fd(skel_->maps.tapio_reclaim_totals);
  uint64_t key = 0, next = 0;
  uint64_t* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    tapio_reclaim_total total = {};
    if (bpf_map_lookup_elem(fd, &next, &total) == 0) out.emplace_back(next, total);
    key = next;
    prev = &key;
  }
  return out;
}

absl::Status MemoryTracker::SetRssTracked(uint64_t cgroup_id, bool tracked) {
  int fd = bpf_map__fd(skel_->maps.tapio_tracked);
  if (tracked) {
    uint8_t one = 1;
    if (bpf_map_update_elem(fd, &cgroup_id, &one, BPF_ANY) != 0) {
      return ErrnoStatus(errno, absl::StrCat("track cgroup ", cgroup_id));
    }
  } else if (bpf_map_delete_elem(fd, &cgroup_id) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("untrack cgroup ", cgroup_id));
  }
  // Invalidates the hook's per-CPU caches of tracked decisions (tapio_fault_cache), so a
  // process that keeps faulting sees the change at its next fault.
  __atomic_fetch_add(&skel_->bss->tracked_gen, 1, __ATOMIC_SEQ_CST);
  return absl::OkStatus();
}

bool MemoryTracker::rss_stat_attached() const { return rss_link_ != nullptr; }

absl::Status MemoryTracker::SetRssStatAttached(bool attached) {
  if (!bpf_program__autoload(skel_->progs.tapio_rss_stat)) {
    return absl::FailedPreconditionError("rss_stat hook not loaded: create with rss_stat_hook");
  }
  if (attached == (rss_link_ != nullptr)) return absl::OkStatus();
  if (!attached) {
    bpf_link__destroy(rss_link_);
    rss_link_ = nullptr;
    return absl::OkStatus();
  }
  rss_link_ = bpf_program__attach(skel_->progs.tapio_rss_stat);
  if (!rss_link_) return ErrnoStatus(errno, "attach tp_btf/rss_stat");
  return absl::OkStatus();
}

uint64_t MemoryTracker::MapMemoryBytes() const {
  uint64_t total = 0;
  struct bpf_map* map;
  bpf_object__for_each_map(map, skel_->obj) {
    int fd = bpf_map__fd(map);
    if (fd < 0) continue;
    int info = open(absl::StrCat("/proc/self/fdinfo/", fd).c_str(), O_RDONLY | O_CLOEXEC);
    if (info < 0) continue;
    char buf[1024];
    ssize_t n = read(info, buf, sizeof(buf) - 1);
    close(info);
    if (n <= 0) continue;
    for (absl::string_view line : absl::StrSplit(absl::string_view(buf, n), '\n')) {
      if (absl::ConsumePrefix(&line, "memlock:")) {
        uint64_t v = 0;
        if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &v)) total += v;
      }
    }
  }
  return total;
}

}  // namespace tapio::bpf
