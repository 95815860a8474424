// MemoryTracker on the real kernel, as root (LABEL kernel). Every workload runs in its own
// TestCgroup (v1 memory + the same path in cgroup2), which is removed even when a test fails.
// The tracker sees the whole machine: assertions filter by the test's own pids and cgroup ids.
#include "agent/bpf/memory_tracker.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/bpf/record.h"
#include "agent/core/log.h"
#include "gtest/gtest.h"
#include "tests/support/test_cgroup.h"

namespace tapio::bpf {
namespace {

using ::tapio::testing::ChildProcess;
using ::tapio::testing::ReadVmRssBytes;
using ::tapio::testing::TestAllocPath;
using ::tapio::testing::TestCgroup;
using ::tapio::testing::TestCgroupOptions;

std::unique_ptr<MemoryTracker> MustCreate(const TrackerOptions& options) {
  absl::StatusOr<std::unique_ptr<MemoryTracker>> t = MemoryTracker::Create(options);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

std::unique_ptr<TestCgroup> MustCgroup(uint64_t limit_bytes) {
  TestCgroupOptions o;
  o.limit_bytes = limit_bytes;
  absl::StatusOr<std::unique_ptr<TestCgroup>> cg = TestCgroup::Create(o);
  EXPECT_TRUE(cg.ok()) << cg.status();
  return cg.ok() ? std::move(*cg) : nullptr;
}

// Polls until `done` returns true for a decoded record or the deadline passes. Counts rejects.
struct Drain {
  int records = 0;
  int rejects = 0;
};
Drain PollUntil(MemoryTracker& t, absl::Duration timeout,
                const std::function<bool(const RecordView&)>& done) {
  Drain d;
  absl::Time deadline = absl::Now() + timeout;
  bool finished = false;
  while (!finished && absl::Now() < deadline) {
    absl::StatusOr<int> n = t.Poll(50, [&](const void* data, size_t size) {
      absl::StatusOr<RecordView> v = RecordView::Decode(data, size);
      if (!v.ok()) {
        ++d.rejects;
        return;
      }
      ++d.records;
      if (!finished && done(*v)) finished = true;
    });
    EXPECT_TRUE(n.ok()) << n.status();
  }
  return d;
}

class MemoryTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root and the real kernel";
  }
};

TEST_F(MemoryTrackerTest, LoadsAndAttachesEveryRequiredProgram) {
  auto t = MustCreate({});
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->using_ringbuf());
  bool victim = false;
  std::vector<std::string> attached;
  for (const ProgramStatus& p : t->Programs()) {
    std::cout << (p.attached ? "attached " : "skipped  ") << p.attach_point << " (" << p.name << ")"
              << (p.attached ? "" : ": " + p.skip_reason) << "\n";
    if (p.attached) attached.push_back(p.name);
    if (!p.attached) {
      EXPECT_FALSE(p.skip_reason.empty()) << p.name;
    }
    if ((p.name == "tapio_mark_victim" || p.name == "tapio_mark_victim_tp") && p.attached) {
      victim = true;
    }
    if (p.name == "tapio_rss_stat") {
      EXPECT_FALSE(p.attached) << "attached without being asked";
    }
  }
  EXPECT_TRUE(victim);
  for (const char* name : {"tapio_task_rss", "tapio_exec", "tapio_fork", "tapio_exit",
                           "tapio_reclaim_begin", "tapio_reclaim_end"}) {
    EXPECT_NE(std::find(attached.begin(), attached.end(), name), attached.end()) << name;
  }
  EXPECT_GT(t->MapMemoryBytes(), 0u);
}

// The least privilege DESIGN.md section 7 promises: CAP_BPF + CAP_PERFMON, nothing else (no
// CAP_SYS_ADMIN: libbpf must not list module BTFs).
TEST_F(MemoryTrackerTest, LoadsWithOnlyCapBpfAndCapPerfmon) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {};
    const int kCapPerfmon = 38, kCapBpf = 39;
    for (int cap : {kCapPerfmon, kCapBpf}) {
      data[cap / 32].effective |= 1u << (cap % 32);
      data[cap / 32].permitted |= 1u << (cap % 32);
    }
    if (syscall(SYS_capset, &hdr, data) != 0) _exit(10);
    TrackerOptions o;
    o.rss_stat_hook = true;  // every program that can load here
    absl::StatusOr<std::unique_ptr<MemoryTracker>> t = MemoryTracker::Create(o);
    if (!t.ok()) {
      fprintf(stderr, "Create with CAP_BPF+CAP_PERFMON: %s\n", t.status().ToString().c_str());
      _exit(11);
    }
    for (const ProgramStatus& p : (*t)->Programs()) {
      if (p.name == "tapio_task_rss" && !p.attached) _exit(12);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: capset, 11: Create failed, 12: iterator not attached";
}

TEST_F(MemoryTrackerTest, RejectsRingBufferSizeThatIsNotAPowerOfTwo) {
  TrackerOptions o;
  o.ringbuf_bytes = 3 * 4096;
  absl::StatusOr<std::unique_ptr<MemoryTracker>> t = MemoryTracker::Create(o);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("ringbuf_bytes"), std::string::npos);
}

TEST_F(MemoryTrackerTest, SnapshotReportsChildRssWithinFivePercentAndItsCgroup) {
  auto t = MustCreate({});
  ASSERT_NE(t, nullptr);
  auto cg = MustCgroup(256 << 20);
  ASSERT_NE(cg, nullptr);
  absl::StatusOr<ChildProcess> child =
      cg->Spawn({TestAllocPath(), "--mib=64"}, {.capture_stdout = true});
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(child->WaitForLine("ready", absl::Seconds(20)).ok());

  absl::StatusOr<uint64_t> vmrss = ReadVmRssBytes(child->pid);
  ASSERT_TRUE(vmrss.ok()) << vmrss.status();
  bool found = false;
  int processes = 0;
  tapio_rss_record mine = {};
  absl::Status s = t->SnapshotTasks([&](const tapio_rss_record& r) {
    ++processes;
    if (r.hdr.pid == static_cast<uint32_t>(child->pid)) {
      found = true;
      mine = r;
    }
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(t->snapshot_rejects(), 0u);
  EXPECT_GT(processes, 1);
  ASSERT_TRUE(found) << "child " << child->pid << " not in the snapshot of " << processes;
  uint64_t page = sysconf(_SC_PAGESIZE);
  uint64_t rss_bytes = (mine.rss.anon_pages + mine.rss.file_pages + mine.rss.shmem_pages) * page;
  EXPECT_NEAR(static_cast<double>(rss_bytes), static_cast<double>(*vmrss), 0.05 * *vmrss)
      << "BPF " << rss_bytes << " vs VmRSS " << *vmrss;
  EXPECT_GE(mine.rss.anon_pages * page, 64u << 20);
  EXPECT_EQ(mine.hdr.cgroup_id, cg->cgroup2_id());
  EXPECT_EQ(mine.hdr.type, TAPIO_REC_TASK_RSS);
  EXPECT_EQ(CommView(mine.hdr.comm), "tapio-test-allo");
  EXPECT_EQ(mine.ppid, static_cast<uint32_t>(getpid()));
}

TEST_F(MemoryTrackerTest, RssStatHookReportsOnlyTrackedCgroups) {
  TrackerOptions o;
  o.rss_stat_hook = true;
  o.rss_threshold_pages = 256;  // 1 MiB
  auto t = MustCreate(o);
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->rss_stat_attached());
  auto tracked = MustCgroup(256 << 20);
  auto untracked = MustCgroup(256 << 20);
  ASSERT_NE(tracked, nullptr);
  ASSERT_NE(untracked, nullptr);
  ASSERT_TRUE(t->SetRssTracked(tracked->cgroup2_id(), true).ok());

  absl::StatusOr<ChildProcess> a =
      tracked->Spawn({TestAllocPath(), "--mib=32"}, {.capture_stdout = true});
  absl::StatusOr<ChildProcess> b =
      untracked->Spawn({TestAllocPath(), "--mib=32"}, {.capture_stdout = true});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(a->WaitForLine("ready", absl::Seconds(20)).ok());
  ASSERT_TRUE(b->WaitForLine("ready", absl::Seconds(20)).ok());

  int mine = 0, from_untracked = 0, other_cgroup = 0;
  uint64_t max_anon = 0;
  PollUntil(*t, absl::Seconds(2), [&](const RecordView& v) {
    if (v.type() != TAPIO_REC_RSS_CHANGE) return false;
    const tapio_rss_record* r = v.rss();
    if (r->hdr.cgroup_id != tracked->cgroup2_id()) ++other_cgroup;
    if (r->hdr.pid == static_cast<uint32_t>(a->pid)) {
      ++mine;
      max_anon = std::max<uint64_t>(max_anon, r->rss.anon_pages);
    }
    if (r->hdr.pid == static_cast<uint32_t>(b->pid)) ++from_untracked;
    return false;
  });
  // 32 MiB in 1 MiB steps past a 1 MiB threshold: one report per step or so.
  EXPECT_GE(mine, 16);
  EXPECT_LE(mine, 40);
  EXPECT_GE(max_anon * sysconf(_SC_PAGESIZE), 31u << 20);
  EXPECT_EQ(from_untracked, 0);
  EXPECT_EQ(other_cgroup, 0);
}

TEST_F(MemoryTrackerTest, RssStatHookDetachesAndReattachesAtRunTime) {
  auto plain = MustCreate({});
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->SetRssStatAttached(true).code(), absl::StatusCode::kFailedPrecondition);
  plain.reset();

  TrackerOptions o;
  o.rss_stat_hook = true;
  auto t = MustCreate(o);
  ASSERT_NE(t, nullptr);
  auto cg = MustCgroup(256 << 20);
  ASSERT_NE(cg, nullptr);
  ASSERT_TRUE(t->SetRssTracked(cg->cgroup2_id(), true).ok());
  auto count_for = [&](pid_t pid) {
    int n = 0;
    PollUntil(*t, absl::Milliseconds(500), [&](const RecordView& v) {
      if (v.type() == TAPIO_REC_RSS_CHANGE && v.header().pid == static_cast<uint32_t>(pid)) ++n;
      return false;
    });
    return n;
  };
  ASSERT_TRUE(t->SetRssStatAttached(false).ok());
  EXPECT_FALSE(t->rss_stat_attached());
  absl::StatusOr<ChildProcess> quiet =
      cg->Spawn({TestAllocPath(), "--mib=16"}, {.capture_stdout = true});
  ASSERT_TRUE(quiet.ok());
  ASSERT_TRUE(quiet->WaitForLine("ready", absl::Seconds(20)).ok());
  EXPECT_EQ(count_for(quiet->pid), 0);

  ASSERT_TRUE(t->SetRssStatAttached(true).ok());
  EXPECT_TRUE(t->rss_stat_attached());
  absl::StatusOr<ChildProcess> loud =
      cg->Spawn({TestAllocPath(), "--mib=16"}, {.capture_stdout = true});
  ASSERT_TRUE(loud.ok());
  ASSERT_TRUE(loud->WaitForLine("ready", absl::Seconds(20)).ok());
  EXPECT_GE(count_for(loud->pid), 8);

  // Untracking stops the records although the hook stays attached.
  ASSERT_TRUE(t->SetRssTracked(cg->cgroup2_id(), false).ok());
  absl::StatusOr<ChildProcess> untracked =
      cg->Spawn({TestAllocPath(), "--mib=16"}, {.capture_stdout = true});
  ASSERT_TRUE(untracked.ok());
  ASSERT_TRUE(untracked->WaitForLine("ready", absl::Seconds(20)).ok());
  EXPECT_EQ(count_for(untracked->pid), 0);
}

// The per-CPU fault cache: a process that keeps faulting is followed across a change of the
// tracked set (its cached decision is dropped at once), and one report per threshold step still
// holds while it runs (no storm of duplicates).
TEST_F(MemoryTrackerTest, RssStatHookFollowsARunningProcessAcrossTrackingChanges) {
  TrackerOptions o;
  o.rss_stat_hook = true;
  o.rss_threshold_pages = 256;  // 1 MiB
  auto t = MustCreate(o);
  ASSERT_NE(t, nullptr);
  auto cg = MustCgroup(256 << 20);
  ASSERT_NE(cg, nullptr);
  ASSERT_TRUE(t->SetRssTracked(cg->cgroup2_id(), true).ok());
  // 1 MiB steps, 20 per second, up to 120 MiB: about 6 s of faults.
  absl::StatusOr<ChildProcess> child =
      cg->Spawn({TestAllocPath(), "--mib=120", "--step-mib=1", "--rate=20"});
  ASSERT_TRUE(child.ok());
  auto count_for = [&](absl::Duration d) {
    int n = 0;
    PollUntil(*t, d, [&](const RecordView& v) {
      if (v.type() == TAPIO_REC_RSS_CHANGE && v.header().pid == static_cast<uint32_t>(child->pid)) {
        ++n;
      }
      return false;
    });
    return n;
  };
  const int tracked_1s = count_for(absl::Seconds(1));
  EXPECT_GE(tracked_1s, 10) << "20 MiB/s past a 1 MiB threshold";
  EXPECT_LE(tracked_1s, 30) << "more than one report per step";
  ASSERT_TRUE(t->SetRssTracked(cg->cgroup2_id(), false).ok());
  count_for(absl::Milliseconds(100));  // what was in flight
  EXPECT_EQ(count_for(absl::Seconds(1)), 0) << "still reported after untracking";
  ASSERT_TRUE(t->SetRssTracked(cg->cgroup2_id(), true).ok());
  EXPECT_GE(count_for(absl::Seconds(1)), 10) << "not followed again after re-tracking";
}

TEST_F(MemoryTrackerTest, OomKillReportedExactlyOnceWithVictimIdentityTwentyTimes) {
  auto t = MustCreate({});
  ASSERT_NE(t, nullptr);
  // Leave nothing of earlier activity in the ring.
  PollUntil(*t, absl::Milliseconds(50), [](const RecordView&) { return false; });
  int reported = 0, twice = 0;
  for (int run = 0; run < 20; ++run) {
    auto cg = MustCgroup(16 << 20);
    ASSERT_NE(cg, nullptr);
    absl::StatusOr<ChildProcess> child = cg->Spawn({TestAllocPath(), "--mib=0"});
    ASSERT_TRUE(child.ok()) << child.status();
    pid_t pid = child->pid;
    absl::StatusOr<int> status = child->Wait(absl::Seconds(30));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << "run " << run;
    int seen = 0;
    tapio_oom_record rec = {};
    // The record is emitted before the kill is delivered; drain a little longer for duplicates.
    PollUntil(*t, absl::Milliseconds(200), [&](const RecordView& v) {
      if (v.type() == TAPIO_REC_OOM_KILL && v.oom_kill()->hdr.pid == static_cast<uint32_t>(pid)) {
        ++seen;
        rec = *v.oom_kill();
      }
      return false;
    });
    if (seen >= 1) ++reported;
    if (seen > 1) ++twice;
    EXPECT_EQ(seen, 1) << "run " << run;
    EXPECT_EQ(rec.hdr.cgroup_id, cg->cgroup2_id()) << "run " << run;
    EXPECT_EQ(CommView(rec.hdr.comm), "tapio-test-allo") << "run " << run;
    EXPECT_EQ(rec.trigger_pid, static_cast<uint32_t>(pid)) << "run " << run;
    EXPECT_EQ(rec.trigger_cgroup_id, cg->cgroup2_id()) << "run " << run;
    EXPECT_GT(rec.rss.anon_pages << rec.page_shift, 8u << 20) << "run " << run;
    EXPECT_LE(rec.rss.anon_pages << rec.page_shift, 16u << 20) << "run " << run;
    absl::StatusOr<uint64_t> kills = cg->ReadOomKillCount();
    ASSERT_TRUE(kills.ok()) << kills.status();
    EXPECT_EQ(*kills, 1u) << "run " << run;
  }
  EXPECT_EQ(reported, 20);
  EXPECT_EQ(twice, 0);
}

TEST_F(MemoryTrackerTest, V1MemcgIdModeReportsTheMemoryControllersId) {
  TrackerOptions o;
  o.use_v1_memcg_id = true;
  o.rss_stat_hook = true;
  auto t = MustCreate(o);
  ASSERT_NE(t, nullptr);
  auto cg = MustCgroup(256 << 20);
  ASSERT_NE(cg, nullptr);
  if (!cg->memory_is_v1()) GTEST_SKIP() << "memory controller is not on cgroup v1 here";
  ASSERT_NE(cg->memcg_id(), cg->cgroup2_id());
  ASSERT_TRUE(t->SetRssTracked(cg->memcg_id(), true).ok());
  absl::StatusOr<ChildProcess> child =
      cg->Spawn({TestAllocPath(), "--mib=16"}, {.capture_stdout = true});
  ASSERT_TRUE(child.ok());
  ASSERT_TRUE(child->WaitForLine("ready", absl::Seconds(20)).ok());
  uint64_t snapshot_id = 0;
  ASSERT_TRUE(t->SnapshotTasks([&](const tapio_rss_record& r) {
                 if (r.hdr.pid == static_cast<uint32_t>(child->pid)) snapshot_id = r.hdr.cgroup_id;
               }).ok());
  EXPECT_EQ(snapshot_id, cg->memcg_id());
  int changes = 0, exec_ok = 0;
  PollUntil(*t, absl::Milliseconds(500), [&](const RecordView& v) {
    if (v.header().pid != static_cast<uint32_t>(child->pid)) return false;
    if (v.type() == TAPIO_REC_RSS_CHANGE && v.header().cgroup_id == cg->memcg_id()) ++changes;
    if (v.type() == TAPIO_REC_PROC_EXEC && v.header().cgroup_id == cg->memcg_id()) ++exec_ok;
    return false;
  });
  EXPECT_GE(changes, 8);
  EXPECT_EQ(exec_ok, 1);
}

TEST_F(MemoryTrackerTest, RssTrackAllReportsUntrackedCgroupsToo) {
  TrackerOptions o;
  o.rss_stat_hook = true;
  o.rss_track_all = true;
  auto t = MustCreate(o);
  ASSERT_NE(t, nullptr);
  auto cg = MustCgroup(256 << 20);
  ASSERT_NE(cg, nullptr);
  absl::StatusOr<ChildProcess> child =
      cg->Spawn({TestAllocPath(), "--mib=16"}, {.capture_stdout = true});
  ASSERT_TRUE(child.ok());
  ASSERT_TRUE(child->WaitForLine("ready", absl::Seconds(20)).ok());
  int mine = 0;
  PollUntil(*t, absl::Milliseconds(500), [&](const RecordView& v) {
    // Before exec the forked child still runs the test's image, in the test's cgroup (it is
    // placed after fork): only the allocator's own records must carry the child cgroup.
    if (v.type() == TAPIO_REC_RSS_CHANGE && v.header().pid == static_cast<uint32_t>(child->pid) &&
        CommView(v.header().comm) == "tapio-test-allo") {
      ++mine;
      EXPECT_EQ(v.header().cgroup_id, cg->cgroup2_id());
    }
    return false;
  });
  EXPECT_GE(mine, 8);
}

TEST_F(MemoryTrackerTest, OomRecordCarriesOomScoreAdjVmAndPageTables) {
  auto t = MustCreate({});
  ASSERT_NE(t, nullptr);
  auto cg = MustCgroup(16 << 20);
  ASSERT_NE(cg, nullptr);
  std::string alloc = TestAllocPath();
  // Positive oom_score_adj needs no privilege; set it, then become the allocator.
  absl::StatusOr<ChildProcess> child = cg->SpawnFunction([&alloc]() {
    int fd = open("/proc/self/oom_score_adj", O_WRONLY);
    if (fd < 0 || write(fd, "500", 3) != 3) return 20;
    close(fd);
    execl(alloc.c_str(), alloc.c_str(), "--mib=0", static_cast<char*>(nullptr));
    return 21;
  });
  ASSERT_TRUE(child.ok());
  uint32_t pid = child->pid;
  absl::StatusOr<int> status = child->Wait(absl::Seconds(30));
  ASSERT_TRUE(status.ok());
  ASSERT_TRUE(WIFSIGNALED(*status)) << "exit " << WEXITSTATUS(*status);
  tapio_oom_record rec = {};
  int seen = 0;
  PollUntil(*t, absl::Milliseconds(300), [&](const RecordView& v) {
    if (v.type() == TAPIO_REC_OOM_KILL && v.header().pid == pid) {
      ++seen;
      rec = *v.oom_kill();
    }
    return false;
  });
  ASSERT_EQ(seen, 1);
  EXPECT_EQ(rec.oom_score_adj, 500);
  EXPECT_GE(rec.total_vm_pages, rec.rss.anon_pages + rec.rss.file_pages);
  EXPECT_GT(rec.pgtables_bytes, 0u);
  EXPECT_EQ(rec.page_shift, __builtin_ctzl(sysconf(_SC_PAGESIZE)));
}

TEST_F(MemoryTrackerTest, ClassicMarkVictimFallbackReportsPidCommAndRss) {
  TrackerOptions o;
  o.force_classic_mark_victim = true;
  auto t = MustCreate(o);
  ASSERT_NE(t, nullptr);
  bool classic = false;
  for (const ProgramStatus& p : t->Programs()) {
    if (p.name == "tapio_mark_victim_tp") classic = p.attached;
    if (p.name == "tapio_mark_victim") EXPECT_FALSE(p.attached);
  }
  ASSERT_TRUE(classic);
  auto cg = MustCgroup(16 << 20);
  ASSERT_NE(cg, nullptr);
  absl::StatusOr<ChildProcess> child = cg->Spawn({TestAllocPath(), "--mib=0"});
  ASSERT_TRUE(child.ok());
  uint32_t pid = child->pid;
  ASSERT_TRUE(child->Wait(absl::Seconds(30)).ok());
  int seen = 0;
  tapio_oom_record rec = {};
  PollUntil(*t, absl::Milliseconds(300), [&](const RecordView& v) {
    if (v.type() == TAPIO_REC_OOM_KILL && v.header().pid == pid) {
      ++seen;
      rec = *v.oom_kill();
    }
    return false;
  });
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(rec.hdr.cgroup_id, 0u);  // by contract: user space resolves the pid
  EXPECT_EQ(CommView(rec.hdr.comm), "tapio-test-allo");
  EXPECT_GT(rec.rss.anon_pages << rec.page_shift, 8u << 20);
  EXPECT_EQ(rec.trigger_cgroup_id, cg->cgroup2_id());
}

TEST_F(MemoryTrackerTest, ProcessLifecycleRecordsCarryTheChildsCgroup) {
  auto t = MustCreate({});
  ASSERT_NE(t, nullptr);
  auto cg = MustCgroup(0);
  ASSERT_NE(cg, nullptr);
  // sh forks /bin/true (not the last command, so it is not exec'd in place), then exits 3.
  absl::StatusOr<ChildProcess> child = cg->Spawn({"/bin/sh", "-c", "/bin/true; exit 3"});
  ASSERT_TRUE(child.ok()) << child.status();
  uint32_t sh = child->pid;
  absl::StatusOr<int> status = child->Wait(absl::Seconds(10));
  ASSERT_TRUE(status.ok());
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 3);
  bool exec = false, fork = false, exit = false, grandchild_exec = false;
  PollUntil(*t, absl::Seconds(3), [&](const RecordView& v) {
    const tapio_proc_record* p = v.proc();
    if (!p) return false;
    if (p->hdr.cgroup_id != cg->cgroup2_id()) return false;
    if (v.type() == TAPIO_REC_PROC_EXEC && p->hdr.pid == sh) exec = true;
    if (v.type() == TAPIO_REC_PROC_EXEC && p->ppid == sh && CommView(p->hdr.comm) == "true") {
      grandchild_exec = true;
    }
    if (v.type() == TAPIO_REC_PROC_FORK && p->ppid == sh) fork = true;
    if (v.type() == TAPIO_REC_PROC_EXIT && p->hdr.pid == sh) {
      exit = true;
      EXPECT_EQ((p->exit_code >> 8) & 0xff, 3);
    }
    return exec && fork && exit && grandchild_exec;
  });
  EXPECT_TRUE(exec);
  EXPECT_TRUE(fork);
  EXPECT_TRUE(grandchild_exec);
  EXPECT_TRUE(exit);
}

TEST_F(MemoryTrackerTest, ReclaimNearTheLimitIsReportedAndTotalled) {
  auto t = MustCreate({});
  ASSERT_NE(t, nullptr);
  auto cg = MustCgroup(32 << 20);
  ASSERT_NE(cg, nullptr);
  char dir[] = "/var/tmp/tapio-reclaim-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string file = absl::StrCat(dir, "/cache");
  // 96 MiB of page cache through a 32 MiB memcg: the charge path reclaims over and over.
  absl::StatusOr<ChildProcess> child =
      cg->Spawn({TestAllocPath(), "--mib=96", "--hold-s=0", absl::StrCat("--file=", file)});
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<int> status = child->Wait(absl::Seconds(60));
  rmdir(dir);  // the workload unlinked its file at start
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  int mine = 0;
  PollUntil(*t, absl::Seconds(2), [&](const RecordView& v) {
    if (v.type() == TAPIO_REC_RECLAIM && v.reclaim()->hdr.cgroup_id == cg->cgroup2_id()) {
      ++mine;
      EXPECT_GT(v.reclaim()->duration_ns, 0u);
    }
    return false;
  });
  EXPECT_GT(mine, 0);
  bool totalled = false;
  for (const auto& [id, total] : t->ReadReclaimTotals()) {
    if (id != cg->cgroup2_id()) continue;
    totalled = true;
    EXPECT_EQ(total.count, static_cast<uint64_t>(mine));
    EXPECT_GT(total.nr_reclaimed, 0u);
    EXPECT_GE(total.total_ns, total.max_ns);
  }
  EXPECT_TRUE(totalled);
}

TEST_F(MemoryTrackerTest, TinyRingBufferCountsLostRecords) {
  TrackerOptions o;
  o.ringbuf_bytes = sysconf(_SC_PAGESIZE);  // the minimum: ~50 lifecycle records
  auto t = MustCreate(o);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ReadLoss().ringbuf_reserve, 0u);
  auto cg = MustCgroup(0);
  ASSERT_NE(cg, nullptr);
  // A burst of 100 short processes (fork + exec + exit each) without draining.
  absl::StatusOr<ChildProcess> child =
      cg->Spawn({"/bin/sh", "-c", "i=0; while [ $i -lt 100 ]; do /bin/true; i=$((i+1)); done"});
  ASSERT_TRUE(child.ok());
  ASSERT_TRUE(child->Wait(absl::Seconds(30)).ok());
  LossCounters loss = t->ReadLoss();
  EXPECT_GT(loss.ringbuf_reserve, 0u);
  // What did fit is still delivered and well formed.
  Drain d = PollUntil(*t, absl::Milliseconds(200), [](const RecordView&) { return false; });
  EXPECT_GT(d.records, 0);
  EXPECT_EQ(d.rejects, 0);
}

TEST_F(MemoryTrackerTest, PerfBufferFallbackDeliversRecords) {
  TrackerOptions o;
  o.force_perfbuf = true;
  auto t = MustCreate(o);
  ASSERT_NE(t, nullptr);
  EXPECT_FALSE(t->using_ringbuf());
  auto cg = MustCgroup(0);
  ASSERT_NE(cg, nullptr);
  absl::StatusOr<ChildProcess> child = cg->Spawn({"/bin/true"});
  ASSERT_TRUE(child.ok());
  uint32_t pid = child->pid;
  ASSERT_TRUE(child->Wait(absl::Seconds(10)).ok());
  bool exec = false, exit = false;
  Drain d = PollUntil(*t, absl::Seconds(3), [&](const RecordView& v) {
    if (!v.proc() || v.header().pid != pid) return false;
    // The fork record carries the parent's cgroup: the child is placed after fork.
    if (v.type() == TAPIO_REC_PROC_FORK) return false;
    EXPECT_EQ(v.header().cgroup_id, cg->cgroup2_id());
    if (v.type() == TAPIO_REC_PROC_EXEC) exec = true;
    if (v.type() == TAPIO_REC_PROC_EXIT) exit = true;
    return exec && exit;
  });
  EXPECT_TRUE(exec);
  EXPECT_TRUE(exit);
  EXPECT_EQ(d.rejects, 0);
  EXPECT_EQ(t->ReadLoss().perfbuf_output, 0u);
}

}  // namespace
}  // namespace tapio::bpf
