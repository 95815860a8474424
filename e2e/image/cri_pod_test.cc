// The agent IMAGE run as a real CRI pod, the local stand-in for a kind node (issue 6): a real
// containerd 1.6 (e2e/containerd fixture, driven through Tapio's CRI client the way the kubelet
// drives it) imports the image archive from e2e/image/build.sh, runs the agent with the chart's
// container security context, hostPID, hostPath mounts and args, then runs a second pod whose
// container allocates until its memory limit OOM-kills it. Asserts that
//   - the runtime applied the chart's privileges: the agent process (seen from the host) has
//     exactly CAP_BPF+CAP_PERFMON effective, NoNewPrivs, seccomp filter mode, read-only root fs,
//     and shares the host pid namespace;
//   - the agent loaded its BPF programs (its container log, read from the CRI log path, and
//     GetAgentInfo over the API socket in the chart's socket-dir hostPath);
//   - a Subscribe stream on that socket gets the oom_kill of the second pod's container, with the
//     second pod's namespace/name/uid and container name (from the CRI through /host/cri.sock).
//
// Every setting is read by hand from deploy/manifests/tapio.yaml (the chart rendered with its
// defaults), DaemonSet tapio, container "agent"; see AgentContainerSpec() for the field-by-field
// mapping and the two deliberate deviations (host network, so 127.0.0.1 ports).
//
// Inputs (environment): TAPIO_IMAGE_ARCHIVE (required: `e2e/image/build.sh --oci-archive FILE`),
// TAPIO_IMAGE (default docker.io/library/tapio:0.1.0). LABEL image: root, containerd, runc, gcc,
// and an image build of about 10 minutes first, so it is not part of `make test`; run it with
// e2e/image/run-cri-pod.sh.
//
// Cleanup, also on failure: the fixture's destructor removes both pods, their containers and pod
// cgroups in every hierarchy and stops containerd; the guards below unmount the emptyDir tmpfs and
// remove the socket and scratch dirs (declared before the fixture, so they outlive it).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/attrib/cri_client.h"
#include "e2e/containerd/containerd_fixture.h"
#include "tapio/v1/service.grpc.pb.h"

namespace tapio::e2e {
namespace {

namespace v1 = ::tapio::v1;
using attrib::GrpcCriClient;

constexpr char kNodeName[] = "e2e-image-node";
constexpr char kAgentNamespace[] = "tapio";  // the chart's namespace
constexpr char kHogNamespace[] = "e2e-image";

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = ::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int RunShell(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// A temp dir removed on destruction; optionally a tmpfs mounted on it (emptyDir medium: Memory).
class ScratchDir {
 public:
  explicit ScratchDir(const char* prefix) {
    std::string tmpl = absl::StrCat("/tmp/", prefix, ".XXXXXX");
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~ScratchDir() {
    if (path_.empty()) return;
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  bool MountTmpfs(const std::string& options) {
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0;
    return mounted_;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

// The kubelet's default masks for a non-privileged container (DefaultProcMount).
const std::vector<std::string> kMaskedPaths = {"/proc/asound",
                                               "/proc/acpi",
                                               "/proc/kcore",
                                               "/proc/keys",
                                               "/proc/latency_stats",
                                               "/proc/timer_list",
                                               "/proc/timer_stats",
                                               "/proc/sched_debug",
                                               "/proc/scsi",
                                               "/sys/firmware",
                                               "/sys/devices/virtual/powercap"};
const std::vector<std::string> kReadonlyPaths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                 "/proc/sysrq-trigger"};

// deploy/manifests/tapio.yaml, DaemonSet tapio, spec.template.spec.containers[agent], translated
// the way the kubelet does it. Deviations, both because the fixture has no CNI (host-network pods
// only): --metrics_address and --health_address listen on 127.0.0.1:0 instead of 0.0.0.0:9464 /
// 0.0.0.0:9465 (on the host network those ports could clash, and tests listen on loopback only);
// the socket-dir and state hostPaths are private temp dirs instead of /run/tapio and
// /var/lib/tapio, and the cri-socket hostPath
// is the fixture's containerd socket instead of /run/containerd/containerd.sock.
GrpcCriClient::ContainerSpec AgentContainerSpec(const std::string& image,
                                                const std::string& cri_socket,
                                                const std::string& socket_dir,
                                                const std::string& state_dir,
                                                const std::string& tmp_dir) {
  GrpcCriClient::ContainerSpec c;
  c.name = "agent";  // containers[0].name
  c.image = image;   // "tapio:0.1.0", as containerd resolves it
  // args: verbatim, $(NODE_NAME) expanded by us as the kubelet would (env NODE_NAME from
  // fieldRef spec.nodeName).
  c.args = {"--grpc_address=unix:///run/tapio/tapio.sock",
            "--health_address=127.0.0.1:0",   // chart: 0.0.0.0:9465 (see above)
            "--metrics_address=127.0.0.1:0",  // chart: 0.0.0.0:9464 (see above)
            "--metrics_labels=namespace,pod,container",
            "--cri_endpoint=unix:///host/cri.sock",
            absl::StrCat("--node_name=", kNodeName),
            "--log_level=info",
            "--prior_state_file=/var/lib/tapio/priors.json",
            "--kmsg="};
  c.envs = {{"NODE_NAME", kNodeName}};
  // resources: limits cpu 500m memory 256Mi, requests cpu 50m (kubelet: quota 50000 per 100000 us
  // period, shares 50*1024/1000 = 51).
  c.memory_limit_bytes = int64_t{256} << 20;
  c.cpu_period_us = 100000;
  c.cpu_quota_us = 50000;
  c.cpu_shares = 51;
  // securityContext.
  c.privileged = false;                                 // privileged: false
  c.no_new_privs = true;                                // allowPrivilegeEscalation: false
  c.readonly_rootfs = true;                             // readOnlyRootFilesystem: true
  c.run_as_user = 0;                                    // runAsUser: 0
  c.run_as_group = 0;                                   // runAsGroup: 0
  c.capabilities_drop = {"ALL"};                        // capabilities.drop: ["ALL"]
  c.capabilities_add = {"BPF", "PERFMON"};              // capabilities.add: [BPF, PERFMON]
  c.seccomp = GrpcCriClient::Seccomp::kRuntimeDefault;  // pod seccompProfile: RuntimeDefault
  c.host_pid = true;                                    // pod hostPID: true
  c.masked_paths = kMaskedPaths;
  c.readonly_paths = kReadonlyPaths;
  // volumeMounts + volumes.
  c.mounts = {
      {"/sys/fs/bpf", "/sys/fs/bpf", false},                 // bpffs (read-write)
      {"/sys/kernel/tracing", "/sys/kernel/tracing", true},  // tracefs, readOnly
      {"/sys/fs/cgroup", "/sys/fs/cgroup", true},            // cgroup, readOnly
      {"/proc", "/host/proc", true},                         // proc, readOnly
      {cri_socket, "/host/cri.sock", false},                 // cri-socket
      {socket_dir, "/run/tapio", false},                     // socket-dir
      {state_dir, "/var/lib/tapio", false},                  // state
      {tmp_dir, "/tmp", false},                              // tmp: emptyDir Memory 16Mi
  };
  return c;
}

// "/proc/<pid>/status" field, e.g. "CapEff".
std::string StatusField(pid_t pid, absl::string_view field) {
  for (absl::string_view line :
       absl::StrSplit(ReadFile(absl::StrCat("/proc/", pid, "/status")), '\n')) {
    if (absl::ConsumePrefix(&line, field) && absl::ConsumePrefix(&line, ":")) {
      return std::string(absl::StripAsciiWhitespace(line));
    }
  }
  return "";
}

// Polls `pred` every 100 ms until it is true or `timeout` passes.
template <typename Pred>
bool WaitFor(absl::Duration timeout, Pred pred) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return pred();
}

// What one run of the two pods observed; the TESTs below each check one part of it. The run
// happens once per binary (SetUpTestSuite, it takes about 40 s) and cleans up after itself
// before the first TEST body runs.
struct Observed {
  std::string setup_error;  // non-empty: the run could not get as far as the OOM kill
  std::string agent_log;    // the agent container's CRI log at the end of the run
  // Agent process, from the host's /proc.
  std::string cap_eff, cap_bnd, no_new_privs, seccomp;
  bool host_pid_ns = false;
  bool root_readonly = false;
  bool log_says_loaded = false;
  v1::AgentInfo info;  // GetAgentInfo over the API socket
  // The victim pod.
  std::string hog_pod_name, hog_pod_uid, hog_container_id, hog_reason;
  bool got_kill = false;
  v1::Event kill;
  std::string all_events;           // every event the oom_kill stream delivered
  bool victim_cgroup_gone = false;  // the v1 memcg of the victim was removed when the event came
  bool agent_running_after = false;
};

// Runs the scenario; returns early with setup_error on the first step that fails.
void RunScenario(Observed* o) {
  const std::string archive = Env("TAPIO_IMAGE_ARCHIVE");
  struct stat st;
  if (archive.empty() || ::stat(archive.c_str(), &st) != 0) {
    o->setup_error = absl::StrCat("TAPIO_IMAGE_ARCHIVE: no OCI archive at '", archive,
                                  "' (make one with e2e/image/build.sh --oci-archive FILE)");
    return;
  }
  const std::string image = Env("TAPIO_IMAGE", "docker.io/library/tapio:0.1.0");

  // Declared before the fixture: destroyed after it (after the pods that mount them are gone).
  ScratchDir socket_dir("tapio-image-sock");
  ScratchDir state_dir("tapio-image-state");
  ScratchDir tmp_dir("tapio-image-tmp");
  if (socket_dir.path().empty() || state_dir.path().empty() || tmp_dir.path().empty() ||
      !tmp_dir.MountTmpfs("size=16m,mode=0755")) {
    o->setup_error = "scratch dirs / tmpfs for the emptyDir";
    return;
  }
  auto fx_or = ContainerdFixture::Start({});
  if (!fx_or.ok()) {
    o->setup_error = fx_or.status().ToString();
    return;
  }
  std::unique_ptr<ContainerdFixture> fx = *std::move(fx_or);
  GrpcCriClient& cri = fx->cri();

  const absl::Time import_start = absl::Now();
  const std::string import_log = fx->dir() + "/images/tapio-import.log";
  if (RunShell(absl::StrCat("ctr -a ", fx->dir(), "/containerd.sock -n k8s.io images import ",
                            archive, " >", import_log, " 2>&1")) != 0) {
    o->setup_error = "ctr images import: " + ReadFile(import_log);
    return;
  }
  std::cerr << "imported " << archive << " in " << absl::FormatDuration(absl::Now() - import_start)
            << "\n";

  // The agent's pod: the chart's labels, hostPID, RuntimeDefault seccomp; burstable QoS
  // (requests < limits).
  ContainerdFixture::PodOptions agent_pod_options;
  agent_pod_options.labels = {{"app.kubernetes.io/name", "tapio"},
                              {"app.kubernetes.io/instance", "tapio"},
                              {"app.kubernetes.io/component", "node-agent"}};
  agent_pod_options.host_pid = true;
  agent_pod_options.seccomp = GrpcCriClient::Seccomp::kRuntimeDefault;
  auto agent_pod = fx->RunPod("tapio-e2e01", kAgentNamespace, agent_pod_options);
  if (!agent_pod.ok()) {
    o->setup_error = agent_pod.status().ToString();
    return;
  }
  GrpcCriClient::ContainerSpec spec = AgentContainerSpec(
      image, fx->dir() + "/containerd.sock", socket_dir.path(), state_dir.path(), tmp_dir.path());
  spec.log_path = "agent.log";
  spec.labels = {{std::string(attrib::kLabelContainerName), spec.name},
                 {std::string(attrib::kLabelPodName), agent_pod->name},
                 {std::string(attrib::kLabelPodNamespace), agent_pod->pod_namespace},
                 {std::string(attrib::kLabelPodUid), agent_pod->uid}};
  const std::string agent_log = agent_pod->spec.log_directory + "/" + spec.log_path;
  struct SaveLog {  // whatever happens below, keep the agent's log for the report
    Observed* o;
    const std::string& path;
    ~SaveLog() { o->agent_log = ReadFile(path); }
  } save_log{o, agent_log};
  auto agent_id = cri.CreateContainer(agent_pod->sandbox_id, spec, agent_pod->spec);
  if (!agent_id.ok()) {
    o->setup_error = agent_id.status().ToString();
    return;
  }
  if (auto s = cri.StartContainer(*agent_id); !s.ok()) {
    o->setup_error = s.ToString();
    return;
  }
  const absl::Time agent_start = absl::Now();

  // Loaded: the BPF loader's log line, in the CRI container log.
  o->log_says_loaded = WaitFor(absl::Seconds(60), [&] {
    return absl::StrContains(ReadFile(agent_log), "BPF object loaded");
  });
  auto agent_status = cri.ContainerStatus(*agent_id, /*verbose=*/true);
  if (!agent_status.ok() || agent_status->state != attrib::CriContainerState::kRunning ||
      agent_status->pid == 0) {
    o->setup_error =
        absl::StrCat("the agent container is not running: ",
                     agent_status.ok() ? agent_status->reason : agent_status.status().ToString());
    return;
  }
  std::cerr << "agent " << (o->log_says_loaded ? "loaded its programs " : "did not log loading ")
            << absl::FormatDuration(absl::Now() - agent_start) << " after StartContainer\n";

  // The runtime's view of the chart's security context, from the host (hostPID makes the verbose
  // status pid a host pid).
  const pid_t agent_pid = static_cast<pid_t>(agent_status->pid);
  o->cap_eff = StatusField(agent_pid, "CapEff");
  o->cap_bnd = StatusField(agent_pid, "CapBnd");
  o->no_new_privs = StatusField(agent_pid, "NoNewPrivs");
  o->seccomp = StatusField(agent_pid, "Seccomp");
  char self_ns[64] = {}, agent_ns[64] = {};
  o->host_pid_ns = ::readlink("/proc/self/ns/pid", self_ns, sizeof(self_ns) - 1) > 0 &&
                   ::readlink(absl::StrCat("/proc/", agent_pid, "/ns/pid").c_str(), agent_ns,
                              sizeof(agent_ns) - 1) > 0 &&
                   std::string(self_ns) == std::string(agent_ns);
  for (absl::string_view line :
       absl::StrSplit(ReadFile(absl::StrCat("/proc/", agent_pid, "/mounts")), '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() >= 4 && f[1] == "/") {  // the last mount on "/" is the one in effect
      o->root_readonly = absl::StartsWith(f[3], "ro,") || f[3] == "ro";
    }
  }

  // The API socket in the socket-dir hostPath, as node-local clients use it.
  const std::string api_socket = socket_dir.path() + "/tapio.sock";
  if (!WaitFor(absl::Seconds(20), [&] { return ::stat(api_socket.c_str(), &st) == 0; })) {
    o->setup_error = "no API socket " + api_socket;
    return;
  }
  auto channel = grpc::CreateChannel("unix://" + api_socket, grpc::InsecureChannelCredentials());
  auto stub = v1::TapioService::NewStub(channel);
  auto info = [&]() -> absl::StatusOr<v1::AgentInfo> {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::AgentInfo out;
    grpc::Status s = stub->GetAgentInfo(&ctx, v1::GetAgentInfoRequest(), &out);
    if (!s.ok()) return absl::UnavailableError(s.error_message());
    return out;
  };
  auto agent_info = info();
  if (!agent_info.ok()) {
    o->setup_error = "GetAgentInfo: " + agent_info.status().ToString();
    return;
  }
  o->info = *agent_info;

  // Subscribe (oom_kill only, server-side filter: the host's whole event stream is large).
  struct Received {
    absl::Mutex mu;
    std::vector<v1::Event> events ABSL_GUARDED_BY(mu);
  } received;
  grpc::ClientContext sub_ctx;
  sub_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  v1::SubscribeRequest req;
  req.add_allow()->add_event_types(v1::EVENT_TYPE_OOM_KILL);
  std::thread reader([&] {
    auto stream = stub->Subscribe(&sub_ctx, req);
    v1::Event e;
    while (stream->Read(&e)) {
      absl::MutexLock l(&received.mu);
      received.events.push_back(e);
    }
    (void)stream->Finish();
  });
  struct JoinOnExit {
    grpc::ClientContext* ctx;
    std::thread* t;
    ~JoinOnExit() {
      ctx->TryCancel();
      t->join();
    }
  } join_on_exit{&sub_ctx, &reader};
  if (!WaitFor(absl::Seconds(20), [&] {
        auto i = info();
        return i.ok() && i->subscribers() >= 1;
      })) {
    o->setup_error = "the Subscribe stream never registered";
    return;
  }

  // The victim: another pod whose container allocates 1 MiB per 10 ms until its 96 MiB limit
  // OOM-kills it (about a second after its start).
  auto hog_pod = fx->RunPod("hog-e2e01", kHogNamespace, "burstable", {{"app", "hog"}});
  if (!hog_pod.ok()) {
    o->setup_error = hog_pod.status().ToString();
    return;
  }
  o->hog_pod_name = hog_pod->name;
  o->hog_pod_uid = hog_pod->uid;
  auto hog_id = fx->StartContainer(*hog_pod, "hog", {"hog", "1"}, int64_t{96} << 20);
  if (!hog_id.ok()) {
    o->setup_error = hog_id.status().ToString();
    return;
  }
  o->hog_container_id = *hog_id;
  o->got_kill = WaitFor(absl::Seconds(30), [&] {
    absl::MutexLock l(&received.mu);
    for (const auto& e : received.events) {
      if (e.has_oom_kill() && e.identity().container_id() == *hog_id) {
        o->kill = e;
        return true;
      }
    }
    return false;
  });
  if (o->got_kill) {
    o->victim_cgroup_gone =
        ::stat(absl::StrCat("/sys/fs/cgroup/memory", o->kill.identity().cgroup_path()).c_str(),
               &st) != 0;
  }
  {
    absl::MutexLock l(&received.mu);
    for (const auto& e : received.events)
      absl::StrAppend(&o->all_events, e.ShortDebugString(), "\n");
  }
  if (auto hs = cri.ContainerStatus(*hog_id, /*verbose=*/false); hs.ok())
    o->hog_reason = hs->reason;
  auto after = cri.ContainerStatus(*agent_id, /*verbose=*/false);
  o->agent_running_after = after.ok() && after->state == attrib::CriContainerState::kRunning;
}

class ImageCriPodTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    observed_ = new Observed;
    RunScenario(observed_);  // everything it made is gone when it returns
  }
  static void TearDownTestSuite() {
    delete observed_;
    observed_ = nullptr;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (containerd, BPF)";
    ASSERT_TRUE(observed_->setup_error.empty()) << observed_->setup_error << "\nagent log:\n"
                                                << observed_->agent_log;
  }
  const Observed& o() const { return *observed_; }
  static Observed* observed_;
};
Observed* ImageCriPodTest::observed_ = nullptr;

TEST_F(ImageCriPodTest, AgentRunsWithExactlyTheChartsPrivileges) {
  EXPECT_EQ(o().cap_eff, "000000c000000000")
      << "effective capabilities must be exactly CAP_PERFMON (38) + CAP_BPF (39)";
  EXPECT_EQ(o().cap_bnd, "000000c000000000") << "drop ALL: the bounding set too";
  EXPECT_EQ(o().no_new_privs, "1") << "allowPrivilegeEscalation: false";
  EXPECT_EQ(o().seccomp, "2") << "seccompProfile RuntimeDefault: filter mode";
  EXPECT_TRUE(o().host_pid_ns) << "hostPID: the agent must be in the host pid namespace";
  EXPECT_TRUE(o().root_readonly) << "readOnlyRootFilesystem: the agent's / must be mounted ro";
}

TEST_F(ImageCriPodTest, AgentLoadsItsProgramsUnderTheChartsPrivileges) {
  EXPECT_TRUE(o().log_says_loaded) << o().agent_log;
  int attached = 0;
  bool oom_program = false;
  for (const auto& p : o().info.programs()) {
    std::cerr << "  program " << p.name() << " " << p.attach_point() << " "
              << v1::BpfProgram::Status_Name(p.status()) << " " << p.error() << "\n";
    const bool ok = p.status() == v1::BpfProgram::STATUS_ATTACHED ||
                    p.status() == v1::BpfProgram::STATUS_FALLBACK;
    attached += ok;
    if (ok && absl::StrContains(p.attach_point(), "mark_victim")) oom_program = true;
    EXPECT_NE(p.status(), v1::BpfProgram::STATUS_FAILED) << p.ShortDebugString();
  }
  EXPECT_GE(attached, 5) << o().info.ShortDebugString();
  EXPECT_TRUE(oom_program) << "no attached program on oom/mark_victim: "
                           << o().info.ShortDebugString();
  EXPECT_TRUE(o().agent_running_after) << "the agent container stopped\n" << o().agent_log;
}

TEST_F(ImageCriPodTest, OomKillInAnotherPodArrivesOnTheSocketWithThatPodsIdentity) {
  EXPECT_EQ(o().hog_reason, "OOMKilled") << "the runtime's view of the victim";
  ASSERT_TRUE(o().got_kill) << "no oom_kill for container " << o().hog_container_id
                            << " on the API socket; got:\n"
                            << o().all_events << "agent log:\n"
                            << o().agent_log;
  const v1::Event& kill = o().kill;
  std::cerr << "oom_kill event: " << kill.ShortDebugString() << "\n";
  EXPECT_EQ(kill.node(), kNodeName) << "--node_name=$(NODE_NAME)";
  EXPECT_EQ(kill.identity().pod_namespace(), kHogNamespace);
  EXPECT_EQ(kill.identity().pod_name(), o().hog_pod_name);
  EXPECT_EQ(kill.identity().pod_uid(), o().hog_pod_uid);
  EXPECT_EQ(kill.identity().container_name(), "hog");
  EXPECT_EQ(kill.oom_kill().victim_comm(), "memhog");
  EXPECT_TRUE(absl::StrContains(kill.identity().cgroup_path(), o().hog_pod_uid))
      << kill.identity().cgroup_path();
}

// Under the chart's flags the agent has neither the kernel log (--kmsg=) nor fentry (needs
// CAP_SYS_ADMIN), so the constraint comes from the memcg counters. The victim's container had the
// only limit (96 MiB); a memcg OOM must not be reported as a global one.
TEST_F(ImageCriPodTest, OomKillOfALimitedContainerIsAMemcgOomUnderTheChartsFlags) {
  ASSERT_TRUE(o().got_kill);
  EXPECT_EQ(o().kill.oom_kill().constraint(), v1::OOM_CONSTRAINT_MEMCG)
      << "constraint_source " << o().kill.oom_kill().constraint_source()
      << "; the victim's memcg was "
      << (o().victim_cgroup_gone ? "already removed" : "still present")
      << " when the event arrived\n"
      << o().kill.ShortDebugString();
  EXPECT_EQ(o().kill.oom_kill().oom_memcg_path(), o().kill.identity().cgroup_path());
}

}  // namespace
}  // namespace tapio::e2e
