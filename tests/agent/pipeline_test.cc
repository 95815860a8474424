// Pipeline logic on synthetic BPF records and a fixture cgroup2 tree (ids = inode numbers of the
// fixture directories, as on a real host).
#include "agent/pipeline.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"

namespace tapio {
namespace {

constexpr char kRoot[] = "tests/fixtures/core/cgroup2";

uint64_t InodeOf(const std::string& rel) {
  struct stat st;
  EXPECT_EQ(stat((std::string(kRoot) + rel).c_str(), &st), 0) << rel;
  return st.st_ino;
}

tapio_header Header(uint16_t type, uint32_t pid, uint64_t cgroup_id, const char* comm) {
  tapio_header h{};
  h.version = TAPIO_ABI_VERSION;
  h.type = type;
  h.ts_ns = 1000;
  h.pid = pid;
  h.tid = pid;
  h.cgroup_id = cgroup_id;
  std::strncpy(h.comm, comm, sizeof(h.comm) - 1);
  return h;
}

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest() {
    layout_.unified_root = kRoot;
    layout_.memory_on_unified = true;
    // Long enough that no flush in a test reaches it by accident on a loaded machine; the
    // tests pass explicit future times to FlushPendingOoms to expire it.
    options_.oom_context_wait = absl::Seconds(5);
    options_.usage_interval = absl::Seconds(1);
    pipeline_ = std::make_unique<Pipeline>(options_, layout_, &bus_, &resolver_, &params_);
    sub_ = bus_.Subscribe(nullptr, 1024);
    ctr_ = InodeOf("/kubepods/pod1/ctr1");
  }

  template <typename T>
  void Feed(const T& record) {
    pipeline_->HandleRecord(&record, sizeof(record), 0);
  }

  std::vector<EventPtr> Drain() {
    std::vector<EventPtr> out;
    while (EventPtr e = sub_->Next(absl::ZeroDuration())) out.push_back(e);
    return out;
  }

  CgroupLayout layout_;
  PipelineOptions options_;
  EventBus bus_{1024};
  PathIdentityResolver resolver_;
  predict::ModelParams params_;
  std::unique_ptr<Pipeline> pipeline_;
  std::shared_ptr<EventBus::Subscription> sub_;
  uint64_t ctr_ = 0;
};

TEST_F(PipelineTest, OomKillCarriesVictimCgroupAndKmsgConstraint) {
  pipeline_->HandleKmsgOom(
      {OomConstraint::kMemcg, "/kubepods/pod1", "/kubepods/pod1/ctr1", "leak", 42});
  tapio_oom_record r{};
  r.hdr = Header(TAPIO_REC_OOM_KILL, 42, ctr_, "leak");
  r.rss.anon_pages = 1000;
  r.trigger_pid = 43;
  r.page_shift = 12;
  std::strncpy(r.trigger_comm, "other", sizeof(r.trigger_comm));
  Feed(r);
  pipeline_->FlushPendingOoms(absl::Now(), false);
  auto events = Drain();
  ASSERT_EQ(events.size(), 1u);
  const auto& kill = std::get<OomKill>(events[0]->payload);
  EXPECT_EQ(kill.victim_pid, 42u);
  EXPECT_EQ(kill.trigger_pid, 43u);
  EXPECT_EQ(kill.trigger_comm, "other");
  EXPECT_EQ(kill.constraint, OomConstraint::kMemcg);
  EXPECT_EQ(kill.constraint_source, "kmsg");
  EXPECT_EQ(kill.oom_memcg_path, "/kubepods/pod1");
  EXPECT_EQ(kill.anon_rss_bytes, 1000u * 4096);
  EXPECT_EQ(events[0]->identity->cgroup_path, "/kubepods/pod1/ctr1");
  EXPECT_EQ(events[0]->severity, Severity::kCritical);
}

TEST_F(PipelineTest, OomKillWithoutContextWaitsThenPublishesUnknownConstraint) {
  tapio_oom_record r{};
  r.hdr = Header(TAPIO_REC_OOM_KILL, 7, ctr_, "leak");
  Feed(r);
  pipeline_->FlushPendingOoms(absl::Now(), false);
  EXPECT_TRUE(Drain().empty());  // still waiting for the kernel log
  pipeline_->FlushPendingOoms(absl::Now() + absl::Seconds(10), false);
  auto events = Drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::get<OomKill>(events[0]->payload).constraint, OomConstraint::kUnknown);
  EXPECT_EQ(pipeline_->counters().oom_without_context, 1u);
}

TEST_F(PipelineTest, LateKmsgLineCompletesAPendingOom) {
  tapio_oom_record r{};
  r.hdr = Header(TAPIO_REC_OOM_KILL, 9, ctr_, "leak");
  Feed(r);
  pipeline_->HandleKmsgOom({OomConstraint::kNone, "", "/kubepods/pod1/ctr1", "leak", 9});
  pipeline_->FlushPendingOoms(absl::Now(), false);
  auto events = Drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::get<OomKill>(events[0]->payload).constraint, OomConstraint::kNone);
}

TEST_F(PipelineTest, VictimWithoutCgroupIsResolvedThroughTheProcessTable) {
  tapio_proc_record exec{};
  exec.hdr = Header(TAPIO_REC_PROC_EXEC, 55, ctr_, "app");
  Feed(exec);
  tapio_oom_record r{};
  r.hdr = Header(TAPIO_REC_OOM_KILL, 55, 0, "app");  // classic tracepoint: pid only
  Feed(r);
  pipeline_->FlushPendingOoms(absl::Now(), true);
  auto events = Drain();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1]->identity->cgroup_id, ctr_);
}

TEST_F(PipelineTest, MalformedRecordsAreCountedAndSkipped) {
  tapio_proc_record bad{};
  bad.hdr = Header(TAPIO_REC_PROC_EXEC, 1, ctr_, "x");
  bad.hdr.version = TAPIO_ABI_VERSION + 1;
  Feed(bad);
  char tiny[8] = {};
  pipeline_->HandleRecord(tiny, sizeof(tiny), 0);
  EXPECT_TRUE(Drain().empty());
  EXPECT_EQ(pipeline_->counters().records_malformed, 2u);
}

TEST_F(PipelineTest, EventsNobodyAsksForAreNotBuiltButTheStateStillFollows) {
  EventBus bus(1024, Severity::kInfo);  // the agent's ring: debug events are live only
  Pipeline pipeline(options_, layout_, &bus, &resolver_, &params_);
  auto sub = bus.Subscribe(nullptr, 64, std::nullopt, Interest::Kinds({EventKind::kOomKill}));
  auto drain = [&sub] {
    std::vector<EventPtr> out;
    while (EventPtr e = sub->Next(absl::ZeroDuration())) out.push_back(e);
    return out;
  };
  tapio_proc_record exec{};
  exec.hdr = Header(TAPIO_REC_PROC_EXEC, 300, ctr_, "app");
  pipeline.HandleRecord(&exec, sizeof(exec), 0);
  tapio_rss_record r{};
  r.hdr = Header(TAPIO_REC_RSS_CHANGE, 300, ctr_, "app");
  r.rss.anon_pages = 1000;
  pipeline.HandleRecord(&r, sizeof(r), 0);
  EXPECT_TRUE(drain().empty());
  EXPECT_EQ(pipeline.counters().events_not_built, 2u);
  EXPECT_EQ(bus.last_seq(), 0u);
  // Once a consumer asks again, the next RSS change's delta counts from the unpublished one.
  bus.SetInterest(sub, Interest::All());
  r.rss.anon_pages = 1500;
  pipeline.HandleRecord(&r, sizeof(r), 0);
  auto events = drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::get<RssChange>(events[0]->payload).delta_bytes, 500 * 4096);
  EXPECT_EQ(events[0]->identity->cgroup_id, ctr_);
  EXPECT_EQ(pipeline.counters().events_not_built, 2u);
  // The process table followed too: an OOM record without a cgroup resolves through it.
  bus.SetInterest(sub, Interest::Kinds({EventKind::kOomKill}));
  tapio_oom_record oom{};
  oom.hdr = Header(TAPIO_REC_OOM_KILL, 300, 0, "app");
  pipeline.HandleRecord(&oom, sizeof(oom), 0);
  pipeline.FlushPendingOoms(absl::Now() + absl::Seconds(60), /*all=*/true);
  events = drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]->identity->cgroup_id, ctr_);
}

TEST_F(PipelineTest, SnapshotsReportOnlyMovesPastTheThreshold) {
  tapio_rss_record r{};
  r.hdr = Header(TAPIO_REC_TASK_RSS, 100, ctr_, "app");
  r.rss.anon_pages = 512;  // 2 MiB: first sighting, past 1 MiB
  pipeline_->BeginTaskSnapshot();
  pipeline_->HandleTaskRss(r, 0);
  pipeline_->EndTaskSnapshot();
  r.rss.anon_pages = 600;  // +352 KiB: below the threshold
  pipeline_->BeginTaskSnapshot();
  pipeline_->HandleTaskRss(r, 0);
  pipeline_->EndTaskSnapshot();
  r.rss.anon_pages = 1000;  // +1.9 MiB from the last report
  pipeline_->BeginTaskSnapshot();
  pipeline_->HandleTaskRss(r, 0);
  pipeline_->EndTaskSnapshot();
  auto events = Drain();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(std::get<RssChange>(events[1]->payload).anon_bytes, 1000u * 4096);
  EXPECT_EQ(std::get<RssChange>(events[1]->payload).delta_bytes, (1000 - 512) * 4096);
  EXPECT_EQ(pipeline_->counters().processes, 1u);
}

TEST_F(PipelineTest, SamplerPublishesUsageOfTrackedCgroupWithPodLimit) {
  tapio_proc_record exec{};
  exec.hdr = Header(TAPIO_REC_PROC_EXEC, 77, ctr_, "app");
  Feed(exec);
  Drain();
  pipeline_->SampleDue(absl::Now());
  auto events = Drain();
  const MemoryUsage* usage = nullptr;
  for (const auto& e : events) {
    if (e->kind() == EventKind::kMemoryUsage) usage = &std::get<MemoryUsage>(e->payload);
  }
  ASSERT_NE(usage, nullptr);
  EXPECT_EQ(usage->usage_bytes, 524288000u);
  EXPECT_EQ(usage->limit_bytes, 1073741824u);
  EXPECT_EQ(usage->working_set_bytes, 524288000u - 200000000u);
  auto containers = pipeline_->Containers();
  ASSERT_EQ(containers.size(), 1u);
  EXPECT_EQ(containers[0].identity->cgroup_path, "/kubepods/pod1/ctr1");
  EXPECT_EQ(containers[0].oom_kills, 1u);
}

TEST_F(PipelineTest, ShortReclaimPassesAreSummedIntoThePressureEvent) {
  tapio_proc_record exec{};
  exec.hdr = Header(TAPIO_REC_PROC_EXEC, 77, ctr_, "app");
  Feed(exec);
  Drain();
  auto reclaim = [&](uint64_t ts_ns, uint64_t duration_ns) {
    tapio_reclaim_record r{};
    r.hdr = Header(TAPIO_REC_RECLAIM, 77, ctr_, "app");
    r.hdr.ts_ns = ts_ns;
    r.duration_ns = duration_ns;
    Feed(r);
  };
  int samples = 0;
  auto pressure = [&]() -> std::optional<MemoryPressure> {
    pipeline_->SampleDue(absl::Now() + absl::Hours(++samples));  // usage and pressure due
    std::optional<MemoryPressure> out;
    for (const auto& e : Drain()) {
      if (e->kind() == EventKind::kMemoryPressure) out = std::get<MemoryPressure>(e->payload);
    }
    return out;
  };
  // Under the 1 ms event minimum: no event of their own, tallied for the cgroup. The first pass
  // is folded in at once (nothing was for 10 ms), the next two after the poll (FlushPendingOoms)...
  reclaim(1'000'000'000, 20'000);
  reclaim(1'000'000'100, 50'000);
  reclaim(1'000'000'200, 30'000);
  EXPECT_TRUE(Drain().empty());
  pipeline_->FlushPendingOoms(absl::Now(), false);
  std::optional<MemoryPressure> p = pressure();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->reclaim_stalls, 3u);
  EXPECT_EQ(p->reclaim_stall_ns, 100'000u);
  EXPECT_EQ(p->max_reclaim_stall_ns, 50'000u);
  // ...or, within one long poll, once 10 ms of record time have passed since the last fold.
  reclaim(1'005'000'000, 10'000);
  reclaim(1'020'000'000, 40'000);
  p = pressure();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->reclaim_stalls, 2u);
  EXPECT_EQ(p->reclaim_stall_ns, 50'000u);
  EXPECT_EQ(p->max_reclaim_stall_ns, 40'000u);
}

TEST_F(PipelineTest, VanishedCgroupIsDroppedAfterRepeatedFailures) {
  // An id that is not in the tree: never tracked, counted as a path miss.
  tapio_proc_record exec{};
  exec.hdr = Header(TAPIO_REC_PROC_EXEC, 78, 999999999, "gone");
  Feed(exec);
  pipeline_->SampleDue(absl::Now());
  EXPECT_TRUE(pipeline_->Containers().empty());
  EXPECT_GE(pipeline_->counters().cgroup_path_misses, 1u);
}

// A container's identity as a resolver starts it: the cgroup and the id parsed from its path.
std::shared_ptr<WorkloadIdentity> ContainerIdentity(uint64_t cgroup_id, const std::string& path,
                                                    std::string container_id) {
  auto id = std::make_shared<WorkloadIdentity>();
  id->cgroup_id = cgroup_id;
  id->cgroup_path = path;
  id->container_id = std::move(container_id);
  return id;
}

// A runtime that learns about a container only after a while.
class LateRuntimeResolver final : public IdentityResolver {
 public:
  std::shared_ptr<const WorkloadIdentity> Resolve(uint64_t cgroup_id,
                                                  const std::string& path) override {
    auto id = ContainerIdentity(cgroup_id, path, "abc123");
    if (++calls_ > known_after_) {
      id->container_name = "app";
      id->pod_name = "web-1";
      id->pod_namespace = "shop";
    }
    return id;
  }
  int calls_ = 0;
  int known_after_ = 0;
};

TEST_F(PipelineTest, OomOfAContainerNotYetKnownWaitsForItsPodIdentity) {
  LateRuntimeResolver late;
  late.known_after_ = 2;  // the record's lookup and the first flush see no runtime data
  options_.oom_enrichment_wait = absl::Seconds(5);
  Pipeline pipeline(options_, layout_, &bus_, &late, &params_);
  pipeline.HandleKmsgOom({OomConstraint::kMemcg, "/kubepods/pod1/ctr1", "", "app", 5});
  tapio_oom_record r{};
  r.hdr = Header(TAPIO_REC_OOM_KILL, 5, ctr_, "app");
  pipeline.HandleRecord(&r, sizeof(r), 0);
  pipeline.FlushPendingOoms(absl::Now(), false);
  EXPECT_TRUE(Drain().empty());  // held: the runtime does not know the container yet
  pipeline.FlushPendingOoms(absl::Now(), false);
  auto events = Drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]->identity->pod_name, "web-1");
  EXPECT_EQ(events[0]->identity->container_name, "app");
}

TEST_F(PipelineTest, OomOfAContainerTheRuntimeNeverLearnsIsPublishedAtTheDeadline) {
  LateRuntimeResolver never;
  never.known_after_ = 1 << 30;
  options_.oom_enrichment_wait = absl::Milliseconds(100);
  Pipeline pipeline(options_, layout_, &bus_, &never, &params_);
  tapio_oom_record r{};
  r.hdr = Header(TAPIO_REC_OOM_KILL, 6, ctr_, "app");
  pipeline.HandleRecord(&r, sizeof(r), 0);
  pipeline.FlushPendingOoms(absl::Now(), false);
  EXPECT_TRUE(Drain().empty());
  pipeline.FlushPendingOoms(absl::Now() + absl::Seconds(10), false);
  auto events = Drain();
  ASSERT_EQ(events.size(), 1u);  // never lost: published with what is known (id, path)
  EXPECT_EQ(events[0]->identity->container_id, "abc123");
  EXPECT_EQ(events[0]->identity->pod_name, "");
}

TEST(RestartKeyTest, NamesTheWorkloadNotTheRun) {
  WorkloadIdentity pod;
  pod.container_id = "abc";
  pod.container_name = "app";
  pod.pod_name = "web-7d4f-x2x9q";
  pod.pod_namespace = "shop";
  EXPECT_EQ(RestartKey(pod), "shop/pod/web-7d4f-x2x9q/app");
  pod.workload_kind = "Deployment";
  pod.workload_name = "web";
  EXPECT_EQ(RestartKey(pod), "shop/Deployment/web/app");
  WorkloadIdentity bare_container;  // a runtime's container without pod metadata
  bare_container.container_id = "abc";
  bare_container.cgroup_path = "/system.slice/docker-abc.scope";
  EXPECT_EQ(RestartKey(bare_container), "");
  WorkloadIdentity host;  // plain host: the cgroup
  host.cgroup_path = "/system.slice/redis.service";
  EXPECT_EQ(RestartKey(host), "/system.slice/redis.service");
}

// Every cgroup is a run of the same Deployment's container, in a pod of its own.
class OneWorkloadResolver final : public IdentityResolver {
 public:
  std::shared_ptr<const WorkloadIdentity> Resolve(uint64_t cgroup_id,
                                                  const std::string& path) override {
    auto id = ContainerIdentity(cgroup_id, path, absl::StrCat("c", cgroup_id));
    id->container_name = "app";
    id->pod_name = absl::StrCat("web-", cgroup_id);
    id->pod_namespace = "shop";
    if (!unnamed_paths.count(path)) {
      id->workload_kind = "Deployment";
      id->workload_name = "web";
    }
    return id;
  }
  // Cgroups whose workload is not known (yet): the pod's sandbox or owner not learnt.
  std::set<std::string> unnamed_paths;
};

class PipelineRestartTest : public ::testing::Test {
 protected:
  PipelineRestartTest() : root_(::testing::TempDir() + "/restart-" + std::to_string(getpid())) {
    std::filesystem::create_directories(root_);
    WriteText(root_ + "/cgroup.controllers", "memory\n");
    layout_.unified_root = root_;
    layout_.memory_on_unified = true;
    options_.monotonic_ms = [this] { return absl::ToUnixMillis(now_); };  // 10 s per Sample()
    pipeline_ = std::make_unique<Pipeline>(options_, layout_, &bus_, &resolver_, &params_);
  }
  ~PipelineRestartTest() override { std::filesystem::remove_all(root_); }

  static void WriteText(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }
  // The runs' cgroups, made up front: a directory removed and another made could reuse its inode
  // (the cgroup id here); the kernel never reuses cgroup ids.
  void MakeCgroups(std::initializer_list<const char*> names) {
    for (const char* name : names) std::filesystem::create_directories(root_ + "/" + name);
  }
  // A run: a container cgroup at `limit` (1 GiB; 0: "max", none yet) with `anon` bytes, seen
  // through one exec record.
  void Start(const std::string& name, uint64_t anon, int oom_kills, uint64_t limit = 1ull << 30) {
    const std::string dir = root_ + "/" + name;
    SetLimit(name, limit);
    SetAnon(name, anon);
    WriteText(dir + "/memory.events", absl::StrCat("max 0\noom 0\noom_kill ", oom_kills, "\n"));
    struct stat st;
    ASSERT_EQ(stat(dir.c_str(), &st), 0);
    tapio_proc_record exec{};
    exec.hdr = Header(TAPIO_REC_PROC_EXEC, ++pid_, st.st_ino, "app");
    pipeline_->HandleRecord(&exec, sizeof(exec), 0);
    Sample();
  }
  void SetLimit(const std::string& name, uint64_t limit) {
    WriteText(root_ + "/" + name + "/memory.max",
              limit == 0 ? std::string("max\n") : absl::StrCat(limit, "\n"));
  }
  void SetAnon(const std::string& name, uint64_t anon) {
    const std::string dir = root_ + "/" + name;
    WriteText(dir + "/memory.current", absl::StrCat(anon + 4096, "\n"));
    WriteText(dir + "/memory.stat", absl::StrCat("anon ", anon, "\nfile 4096\nshmem 0\n"));
  }
  bool AtRisk(const std::string& name) {
    for (const ContainerState& c : pipeline_->Containers()) {
      if (c.identity != nullptr && c.identity->cgroup_path == "/" + name) return c.at_risk;
    }
    ADD_FAILURE() << name << " is not tracked";
    return false;
  }
  // A run leaking 10 MiB/s from nothing, sampled until it is predicted (or at 810 MiB).
  bool LeakUntilAtRisk(const std::string& name) {
    Start(name, 10 << 20, 0);
    for (uint64_t mib = 110; mib <= 810 && !AtRisk(name); mib += 100) {
      SetAnon(name, mib << 20);
      Sample();
    }
    return AtRisk(name);
  }
  // The run ends: its usage stops parsing (cgroupfs fails reads of a removed cgroup), its
  // directory goes, and the sampler lets it go.
  void End(const std::string& name) {
    const std::string dir = root_ + "/" + name;
    WriteText(dir + "/memory.current", "");
    std::filesystem::remove_all(dir);
    for (int i = 0; i < 6; ++i) Sample();
  }
  void Sample() {
    now_ += absl::Seconds(10);
    pipeline_->SampleDue(now_);
  }

  const std::string root_;
  CgroupLayout layout_;
  PipelineOptions options_;
  EventBus bus_{1024};
  OneWorkloadResolver resolver_;
  predict::ModelParams params_;
  std::unique_ptr<Pipeline> pipeline_;
  absl::Time now_ = absl::Now();
  uint32_t pid_ = 100;
};

TEST_F(PipelineRestartTest, TheNextRunOfAWorkloadGetsThePreviousRunsPeak) {
  MakeCgroups({"run1", "run2"});
  Start("run1", 600 << 20, 0);
  EXPECT_EQ(pipeline_->counters().restart_priors_applied, 0u);  // a first run has no prior
  End("run1");
  ASSERT_EQ(pipeline_->counters().cgroups_tracked, 0u);
  Start("run2", 100 << 20, 0);
  EXPECT_EQ(pipeline_->counters().restart_priors_applied, 1u);
}

TEST_F(PipelineRestartTest, AReplicaStartedBesideARunningOneGetsItsPeak) {
  MakeCgroups({"run1", "run2", "run3"});
  Start("run1", 600 << 20, 0);
  for (int i = 0; i < 10; ++i) Sample();  // 100 s at 600 MiB, quiet
  ASSERT_FALSE(AtRisk("run1"));
  Start("run2", 100 << 20, 0);  // a scale-up: run1 is still running
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 1u);
  EXPECT_EQ(pipeline_->counters().restart_priors_applied, 0u);
  Start("run3", 100 << 20, 0, 2ull << 30);  // another limit: run1's peak says nothing about it
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 1u);
}

TEST_F(PipelineRestartTest, AReplicaWhoseWorkloadIsLearntLateGetsItsPeakThen) {
  // The container is known before its pod's sandbox (or the kubelet's owner): its first identity
  // has only the pod's own name, which no replica shares.
  MakeCgroups({"run1", "run2"});
  Start("run1", 600 << 20, 0);
  for (int i = 0; i < 10; ++i) Sample();
  resolver_.unnamed_paths.insert("/run2");
  Start("run2", 100 << 20, 0);
  Sample();
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 0u);
  resolver_.unnamed_paths.clear();
  Sample();
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 1u);
  for (int i = 0; i < 5; ++i) Sample();  // the same workload again: no second prior
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 1u);
  EXPECT_EQ(pipeline_->counters().restart_priors_applied, 0u);
}

TEST_F(PipelineRestartTest, AReplicaReadBeforeItsLimitIsWrittenGetsItsPeakOnceItIs) {
  // runc makes the cgroup, then writes memory.max: a reading in between has the workload but no
  // limit, and a prior is for one limit.
  MakeCgroups({"run1", "run2", "run3"});
  Start("run1", 600 << 20, 0);
  Start("run3", 700 << 20, 0, 2ull << 30);  // another limit: no prior from run1
  for (int i = 0; i < 10; ++i) Sample();
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 0u);
  Start("run2", 0, 0, /*limit=*/0);
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 0u);
  SetLimit("run2", 1ull << 30);
  SetAnon("run2", 100 << 20);
  for (int i = 0; i < 5; ++i) Sample();  // one lookup, not one per reading
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 1u);
  // Resized in place: the predictor drops run1's peak, and run3's is the one for the new limit.
  SetLimit("run2", 2ull << 30);
  for (int i = 0; i < 5; ++i) Sample();
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 2u);
}

TEST_F(PipelineRestartTest, AReplicaAtRiskIsNoPriorUntilItClears) {
  MakeCgroups({"run1", "run2", "run3"});
  ASSERT_TRUE(LeakUntilAtRisk("run1")) << "the leak was not predicted: the test proves nothing";
  Start("run2", 100 << 20, 0);
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 0u);
  Sample();
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 0u);  // no lookup per reading
  // run1's leak stops and it frees most of it: the alarm clears, and run2, which started beside
  // it while it was at risk, takes its peak then.
  SetAnon("run1", 300 << 20);
  for (int i = 0; i < 30 && AtRisk("run1"); ++i) Sample();
  ASSERT_FALSE(AtRisk("run1")) << "run1 never cleared: the test proves nothing";
  Sample();
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 1u);
  Start("run3", 100 << 20, 0);  // and a replica started now takes it at once
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 2u);
}

TEST_F(PipelineRestartTest, ARunAtRiskResizedInPlaceTakesNoPrior) {
  // A limit raised to save a run at risk is looked up under, but a prior must not be what clears
  // the alarm: run1's quiet peak at the new limit is not taken.
  MakeCgroups({"run1", "run2"});
  Start("run1", 600 << 20, 0, 2ull << 30);
  for (int i = 0; i < 10; ++i) Sample();
  ASSERT_TRUE(LeakUntilAtRisk("run2")) << "the leak was not predicted: the test proves nothing";
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 0u);  // run1 is at another limit
  SetLimit("run2", 2ull << 30);
  Sample();
  EXPECT_EQ(pipeline_->counters().peer_priors_applied, 0u);
}

TEST_F(PipelineRestartTest, FinishedRunsOutliveThePipelineThroughTheirStoredPriors) {
  MakeCgroups({"run1", "run2"});
  uint64_t generation = 0;
  EXPECT_TRUE(pipeline_->FinishedRunPriors(&generation).empty());
  const uint64_t empty_generation = generation;
  Start("run1", 600 << 20, 0);
  End("run1");
  const std::vector<StoredPrior> stored = pipeline_->FinishedRunPriors(&generation);
  EXPECT_NE(generation, empty_generation);  // a writer knows there is something new
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].key, "shop/Deployment/web/app");
  EXPECT_EQ(stored[0].run.limit_bytes, 1ull << 30);
  EXPECT_GE(stored[0].run.peak_bytes, 600ull << 20);

  // The agent restarts: a new pipeline, the stored priors read back from their file format.
  pipeline_ = std::make_unique<Pipeline>(options_, layout_, &bus_, &resolver_, &params_);
  absl::StatusOr<std::vector<StoredPrior>> read = PriorsFromJson(PriorsToJson(stored));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(pipeline_->RestorePriors(*read), 1u);
  uint64_t restored_generation = 0;
  pipeline_->FinishedRunPriors(&restored_generation);
  Start("run2", 100 << 20, 0);
  EXPECT_EQ(pipeline_->counters().restart_priors_applied, 1u);
  uint64_t after = 0;
  pipeline_->FinishedRunPriors(&after);
  EXPECT_EQ(after, restored_generation);  // starting a run changes nothing to write
}

// At stop (a reboot ends every run with the agent) the runs still going are stored too, unless
// they are at risk; a finished run of the same workload gives way to a higher running peak.
TEST_F(PipelineRestartTest, AtStopTheQuietRunningRunsAreStoredToo) {
  MakeCgroups({"run1", "run2"});
  Start("run1", 300 << 20, 0);
  End("run1");
  Start("run2", 700 << 20, 0);
  ASSERT_FALSE(AtRisk("run2"));
  std::vector<StoredPrior> stored = pipeline_->FinishedRunPriors(nullptr, /*with_running=*/true);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_GE(stored[0].run.peak_bytes, 700ull << 20);
  stored = pipeline_->FinishedRunPriors();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_LT(stored[0].run.peak_bytes, 400ull << 20);  // without: only the finished run
}

// After an agent restart a run stored while still going may still be going: its own peak is no
// prior for itself, but is one for the workload's next run.
TEST_F(PipelineRestartTest, ARunStoredWhileGoingGetsNoPriorFromItselfAfterAnAgentRestart) {
  MakeCgroups({"run1", "run2"});
  Start("run1", 700 << 20, 0);
  const std::vector<StoredPrior> stored =
      pipeline_->FinishedRunPriors(nullptr, /*with_running=*/true);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_NE(stored[0].cgroup_id, 0u);
  absl::StatusOr<std::vector<StoredPrior>> read = PriorsFromJson(PriorsToJson(stored));
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].cgroup_id, stored[0].cgroup_id);

  pipeline_ = std::make_unique<Pipeline>(options_, layout_, &bus_, &resolver_, &params_);
  EXPECT_EQ(pipeline_->RestorePriors(*read), 1u);
  Start("run1", 700 << 20, 0);  // the same cgroup, seen again by the new agent
  EXPECT_EQ(pipeline_->counters().restart_priors_applied, 0u);
  End("run1");
  Start("run2", 100 << 20, 0);
  EXPECT_EQ(pipeline_->counters().restart_priors_applied, 1u);
}

// The jump trigger: BPF RSS records between two readings that add up to jump_trigger_fraction
// (2%) of the limit bring the next reading forward; less, or memory that came and went with a
// process, does not.
TEST_F(PipelineRestartTest, AnRssJumpBetweenReadingsIsReadAtOnce) {
  params_.jump_trigger_fraction = 0.02;
  MakeCgroups({"run1"});
  Start("run1", 100 << 20, 0);  // 100 MiB of 1 GiB: the idle cadence (2 s)
  const uint32_t pid = pid_;
  struct stat st;
  ASSERT_EQ(stat((root_ + "/run1").c_str(), &st), 0);
  tapio_rss_record r{};
  r.hdr = Header(TAPIO_REC_TASK_RSS, pid, st.st_ino, "app");
  r.rss.anon_pages = 100 * 256;  // a first sighting: growth from nothing, read with the next
  pipeline_->BeginTaskSnapshot();
  pipeline_->HandleTaskRss(r, 0);
  pipeline_->EndTaskSnapshot();
  pipeline_->FlushPendingOoms(absl::Now(), /*all=*/false);  // what the ingest loop does next
  Sample();
  const absl::Time read_at = now_;
  const uint64_t samples = pipeline_->counters().samples;
  const uint64_t triggered_before = pipeline_->counters().jump_triggered_samples;
  auto rss = [&](uint32_t p, uint64_t mib, bool fold = true) {
    r.hdr = Header(TAPIO_REC_RSS_CHANGE, p, st.st_ino, "app");
    r.rss.anon_pages = mib * 256;
    pipeline_->HandleRecord(&r, sizeof(r), 0);
    if (fold) pipeline_->FlushPendingOoms(absl::Now(), /*all=*/false);  // folds the tallies
  };
  auto read_by = [&](absl::Duration d) {
    pipeline_->SampleDue(read_at + d);
    return pipeline_->counters().samples - samples;
  };
  EXPECT_EQ(read_by(absl::Milliseconds(300)), 0u);  // not due yet
  rss(pid, 110);                                    // +10 MiB: 1% of the limit
  EXPECT_EQ(read_by(absl::Milliseconds(400)), 0u);
  rss(pid, 125);  // +25 MiB since the reading: 2.4%
  EXPECT_EQ(read_by(absl::Milliseconds(500)), 1u);
  EXPECT_EQ(pipeline_->counters().jump_triggered_samples - triggered_before, 1u);

  // A helper process comes, allocates 30 MiB (3%) and exits: no net growth, no early reading.
  const uint64_t triggered = pipeline_->counters().jump_triggered_samples;
  tapio_proc_record exec{};
  exec.hdr = Header(TAPIO_REC_PROC_EXEC, pid + 1000, st.st_ino, "helper");
  pipeline_->HandleRecord(&exec, sizeof(exec), 0);
  rss(pid + 1000, 30, /*fold=*/false);
  tapio_proc_record exit{};
  exit.hdr = Header(TAPIO_REC_PROC_EXIT, pid + 1000, st.st_ino, "helper");
  pipeline_->HandleRecord(&exit, sizeof(exit), 0);
  pipeline_->FlushPendingOoms(absl::Now(), /*all=*/false);
  EXPECT_EQ(pipeline_->counters().jump_triggered_samples, triggered);
}

TEST_F(PipelineRestartTest, AProcessGoneWithoutItsExitRecordTakesItsRssOffTheJumpTally) {
  params_.jump_trigger_fraction = 0.02;
  MakeCgroups({"run1"});
  Start("run1", 100 << 20, 0);
  const uint32_t pid = pid_;
  struct stat st;
  ASSERT_EQ(stat((root_ + "/run1").c_str(), &st), 0);
  tapio_rss_record r{};
  auto snapshot = [&] {  // sees the app (unchanged) and nothing else
    pipeline_->BeginTaskSnapshot();
    r.hdr = Header(TAPIO_REC_TASK_RSS, pid, st.st_ino, "app");
    r.rss.anon_pages = 100 * 256;
    pipeline_->HandleTaskRss(r, 0);
    pipeline_->EndTaskSnapshot();
    pipeline_->FlushPendingOoms(absl::Now(), /*all=*/false);
  };
  snapshot();
  Sample();  // the tally starts again from this reading
  const uint64_t samples = pipeline_->counters().samples;
  const uint64_t triggered = pipeline_->counters().jump_triggered_samples;
  // Helpers of 15 MiB each (1.5% of the limit), one after the other, whose exit records are lost:
  // the snapshot between them no longer sees the first, so there is never net growth of 2%.
  auto helper = [&](uint32_t p) {
    tapio_proc_record exec{};
    exec.hdr = Header(TAPIO_REC_PROC_EXEC, p, st.st_ino, "helper");
    pipeline_->HandleRecord(&exec, sizeof(exec), 0);
    r.hdr = Header(TAPIO_REC_RSS_CHANGE, p, st.st_ino, "helper");
    r.rss.anon_pages = 15 * 256;
    pipeline_->HandleRecord(&r, sizeof(r), 0);
    pipeline_->FlushPendingOoms(absl::Now(), /*all=*/false);
  };
  helper(pid + 1000);
  snapshot();
  helper(pid + 1001);
  pipeline_->SampleDue(now_ + absl::Milliseconds(500));
  EXPECT_EQ(pipeline_->counters().jump_triggered_samples, triggered);
  EXPECT_EQ(pipeline_->counters().samples, samples);
}

TEST_F(PipelineRestartTest, AtStopARunningRunAtRiskIsNotStored) {
  MakeCgroups({"run1"});
  ASSERT_TRUE(LeakUntilAtRisk("run1")) << "the leak was not predicted: the test proves nothing";
  EXPECT_TRUE(pipeline_->FinishedRunPriors(nullptr, /*with_running=*/true).empty());
}

TEST_F(PipelineRestartTest, ARunThatWasOomKilledLeavesNoPrior) {
  MakeCgroups({"run1", "run2", "run3"});
  Start("run1", 600 << 20, 0);
  End("run1");
  Start("run2", 1000 << 20, 1);  // gets run1's prior, then is killed
  EXPECT_EQ(pipeline_->counters().restart_priors_applied, 1u);
  End("run2");
  Start("run3", 100 << 20, 0);
  EXPECT_EQ(pipeline_->counters().restart_priors_applied, 1u);
}

// The runtime heap cap scan on a fixture cgroup2 tree and /proc written by the test.
class PipelineRuntimeTest : public ::testing::Test {
 protected:
  PipelineRuntimeTest() : root_(::testing::TempDir() + "/runtime-" + std::to_string(getpid())) {
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ + "/cg");
    std::filesystem::create_directories(root_ + "/proc");
    std::filesystem::create_directories(root_ + "/traces");
    Write(root_ + "/cg/cgroup.controllers", "memory\n");
    layout_.unified_root = root_ + "/cg";
    layout_.memory_on_unified = true;
    options_.proc_root = root_ + "/proc";
    options_.trace_dir = root_ + "/traces";
    options_.monotonic_ms = [this] { return absl::ToUnixMillis(now_); };
    options_.usage_interval = absl::Seconds(1);
    pipeline_ = std::make_unique<Pipeline>(options_, layout_, &bus_, &resolver_, &params_);
    sub_ = bus_.Subscribe(nullptr, 1024);
  }
  ~PipelineRuntimeTest() override { std::filesystem::remove_all(root_); }

  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  }
  // A container cgroup `name` at `limit` ("max" when 0) holding `pids`; returns its id.
  uint64_t MakeCgroup(const std::string& name, uint64_t limit, const std::vector<int>& pids) {
    const std::string dir = root_ + "/cg/" + name;
    std::filesystem::create_directories(dir);
    Write(dir + "/memory.max", limit == 0 ? std::string("max\n") : absl::StrCat(limit, "\n"));
    Write(dir + "/memory.current", "104857600\n");
    Write(dir + "/memory.stat", "anon 94371840\nfile 10485760\nshmem 0\n");
    Write(dir + "/memory.events", "max 0\noom 0\noom_kill 0\n");
    std::string procs;
    for (int pid : pids) absl::StrAppend(&procs, pid, "\n");
    Write(dir + "/cgroup.procs", procs);
    struct stat st;
    EXPECT_EQ(stat(dir.c_str(), &st), 0);
    return st.st_ino;
  }
  void SetCmdline(int pid, const std::vector<std::string>& argv) {
    const std::string dir = absl::StrCat(root_, "/proc/", pid);
    std::filesystem::create_directories(dir);
    std::string text;
    for (const auto& a : argv) absl::StrAppend(&text, a, std::string(1, '\0'));
    Write(dir + "/cmdline", text);
    Write(dir + "/environ", "");
  }
  void Exec(uint64_t cgroup_id, uint32_t pid) {
    tapio_proc_record exec{};
    exec.hdr = Header(TAPIO_REC_PROC_EXEC, pid, cgroup_id, "app");
    pipeline_->HandleRecord(&exec, sizeof(exec), 0);
    pipeline_->FlushPendingOoms(absl::Now(), false);  // folds the exec tally
  }
  // The last memory_usage event of the cgroup since the previous call.
  std::optional<MemoryUsage> Usage(uint64_t cgroup_id) {
    std::optional<MemoryUsage> out;
    while (EventPtr e = sub_->Next(absl::ZeroDuration())) {
      if (e->kind() == EventKind::kMemoryUsage && e->identity->cgroup_id == cgroup_id) {
        out = std::get<MemoryUsage>(e->payload);
      }
    }
    return out;
  }

  const std::string root_;
  CgroupLayout layout_;
  PipelineOptions options_;
  EventBus bus_{1024};
  PathIdentityResolver resolver_;
  predict::ModelParams params_;
  std::unique_ptr<Pipeline> pipeline_;
  std::shared_ptr<EventBus::Subscription> sub_;
  absl::Time now_ = absl::Now();
};

TEST_F(PipelineRuntimeTest, AJvmsHeapCapComesWithItsContainersUsageAndInItsTrace) {
  SetCmdline(4242, {"/usr/bin/java", "-Xmx512m", "-jar", "app.jar"});
  const uint64_t id = MakeCgroup("box", 256 << 20, {4242});
  Exec(id, 4242);
  pipeline_->SampleDue(now_);
  auto usage = Usage(id);
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->runtime, "jvm");
  EXPECT_EQ(usage->runtime_heap_cap_bytes, 512u << 20);
  EXPECT_EQ(usage->limit_bytes, 256u << 20);
  EXPECT_EQ(pipeline_->counters().runtime_scan.scans, 1u);
  // The recorder keeps it with each sample, for evaluating models that use it.
  auto trace = predict::ReadTraceFile(absl::StrCat(root_, "/traces/", id, ".jsonl"));
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_FALSE(trace->samples.empty());
  EXPECT_EQ(trace->samples.back().runtime_heap_cap_bytes, 512u << 20);
}

TEST_F(PipelineRuntimeTest, AnEntrypointThatExecsAJvmIsReadAgainAfterTheExec) {
  SetCmdline(5000, {"/bin/sh", "/entrypoint.sh"});
  const uint64_t id = MakeCgroup("box", 256 << 20, {5000});
  Exec(id, 5000);
  pipeline_->SampleDue(now_);
  EXPECT_EQ(Usage(id)->runtime, "");
  SetCmdline(5000, {"java", "-Xmx300m", "Main"});
  // No exec seen: the next readings, before the scan interval, keep the old answer.
  now_ += absl::Seconds(6);
  pipeline_->SampleDue(now_);
  EXPECT_EQ(Usage(id)->runtime, "");
  Exec(id, 5000);
  now_ += absl::Seconds(6);
  pipeline_->SampleDue(now_);
  auto usage = Usage(id);
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->runtime, "jvm");
  EXPECT_EQ(usage->runtime_heap_cap_bytes, 300u << 20);
}

TEST_F(PipelineRuntimeTest, ACapOfSomeHeapsButNotAllIsReportedAsUnknown) {
  SetCmdline(7000, {"java", "-Xmx128m", "Main"});
  SetCmdline(7001, {"node", "sidecar.js"});  // no --max-old-space-size: its cap is unknown
  const uint64_t id = MakeCgroup("box", 256 << 20, {7000, 7001});
  Exec(id, 7000);
  pipeline_->SampleDue(now_);
  auto usage = Usage(id);
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->runtime, "jvm");
  EXPECT_EQ(usage->runtime_heap_cap_bytes, 0u);
  auto trace = predict::ReadTraceFile(absl::StrCat(root_, "/traces/", id, ".jsonl"));
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_EQ(trace->samples.back().runtime_heap_cap_bytes, 0u);
}

TEST_F(PipelineRuntimeTest, ACgroupOfManyProcessesHasNoCapUntilAllAreReadAtTheNextReadings) {
  // cgroup.procs order: a JVM, 70 shells, then memcached, which the first scan's bound leaves
  // unread: until it is read the JVM's cap is not the cgroup's.
  SetCmdline(9000, {"java", "-Xmx64m", "Main"});
  std::vector<int> pids = {9000};
  for (int i = 0; i < 70; ++i) {
    SetCmdline(8000 + i, {"/bin/sh", "-c", "worker"});
    pids.push_back(8000 + i);
  }
  SetCmdline(9001, {"memcached", "-m", "32"});
  pids.push_back(9001);
  ASSERT_GT(pids.size(), static_cast<size_t>(RuntimeCapScanner::kMaxNewProcessesPerScan));
  const uint64_t id = MakeCgroup("many", 256 << 20, pids);
  Exec(id, 9000);
  pipeline_->SampleDue(now_);
  auto usage = Usage(id);
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->runtime, "jvm");
  EXPECT_EQ(usage->runtime_heap_cap_bytes, 0u);
  // The next reading goes on with the rest, well within the 30 s scan interval.
  now_ += absl::Seconds(2);
  pipeline_->SampleDue(now_);
  usage = Usage(id);
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->runtime_heap_cap_bytes, 96u << 20);
  EXPECT_EQ(pipeline_->counters().runtime_scan.scans, 2u);
}

TEST_F(PipelineRuntimeTest, AnUnlimitedCgroupIsNotScanned) {
  SetCmdline(6000, {"java", "-Xmx512m", "Main"});
  const uint64_t id = MakeCgroup("free", 0, {6000});
  Exec(id, 6000);
  pipeline_->SampleDue(now_);
  EXPECT_EQ(Usage(id)->runtime, "");
  EXPECT_EQ(pipeline_->counters().runtime_scan.scans, 0u);
}

}  // namespace
}  // namespace tapio
