// tapio-agent: the per-node memory agent. Flags are documented by --help and docs/configuration.md.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/core/log.h"
#include "agent/core/runtime.h"

ABSL_FLAG(std::string, output, "none",
          "Event output on stdout: 'json' (one JSON object per event and line) or 'none'.");
ABSL_FLAG(std::string, output_min_severity, "debug",
          "Lowest severity written by --output=json: debug, info, warning or critical. RSS "
          "changes and process lifecycle are debug; usage and cleared predictions info; pressure "
          "and predictions warning; OOM kills critical.");
ABSL_FLAG(std::string, node_name, "",
          "Node name put on every event (default: $NODE_NAME, else the host name).");
ABSL_FLAG(int32_t, snapshot_interval_ms, 1000,
          "Interval of the BPF task-iterator pass that reads every process's RSS counters.");
ABSL_FLAG(int32_t, snapshot_interval_at_risk_ms, 250,
          "Task-iterator interval while any cgroup is predicted at risk of OOM.");
ABSL_FLAG(double, snapshot_cpu_budget_pct, 0.5,
          "Share of one core (percent) the task-iterator passes may use; with many processes the "
          "interval grows beyond --snapshot_interval_ms to stay within it. 0: no limit.");
ABSL_FLAG(int32_t, rss_threshold_kib, 1024,
          "A process's RSS change is reported once it moved this many KiB (snapshots and the "
          "in-kernel rss_stat threshold).");
ABSL_FLAG(bool, rss_stat_hook, false,
          "Attach tp_btf/rss_stat for per-page-fault RSS tracking (costs every page fault on "
          "the node; cgroups at risk are tracked, or all with --rss_track_all).");
ABSL_FLAG(bool, rss_track_all, false, "With --rss_stat_hook: track every cgroup.");
ABSL_FLAG(int32_t, ringbuf_kib, 8192, "BPF ring buffer size in KiB (a power of two).");
ABSL_FLAG(bool, force_perfbuf, false, "Use the perf buffer even where the ring buffer works.");
ABSL_FLAG(int32_t, reclaim_event_min_us, 1000,
          "Memcg reclaim passes at least this long are reported as their own pressure event; "
          "shorter ones are summed into the periodic pressure event.");
ABSL_FLAG(int32_t, usage_interval_s, 10, "Interval of memory_usage events per cgroup.");
ABSL_FLAG(int32_t, runtime_scan_interval_s, 30,
          "Interval at which the processes of each memory-limited cgroup are read for managed "
          "runtimes (JVM, Node.js, memcached) and the heap caps their settings give them "
          "(/proc/PID/cmdline and environ; memory_usage.runtime_heap_cap_bytes). 0: never.");
ABSL_FLAG(int32_t, max_sample_interval_ms, 5000,
          "Longest interval between two readings of a cgroup's memory files; the predictor "
          "samples faster as time to OOM shrinks.");
ABSL_FLAG(int32_t, min_sample_interval_ms, 100, "Shortest interval between two readings.");
ABSL_FLAG(int32_t, summary_interval_s, 30, "Interval of the summary line on stderr (0: none).");
ABSL_FLAG(std::string, model_file, "",
          "Predictor parameters (JSON; see models/default.json). Default: compiled-in values.");
ABSL_FLAG(std::string, prior_state_file, "",
          "Keep the restart priors (each workload's last peak, so its next start-up fill is not "
          "predicted again) in this file across agent restarts and node reboots; written "
          "atomically when they change. '' = in memory only.");
ABSL_FLAG(std::string, kmsg, "/dev/kmsg",
          "Kernel log device for OOM constraints and OOM memcg ('' to disable).");
ABSL_FLAG(bool, process_events, true, "Emit process exec/fork/exit events.");
ABSL_FLAG(std::string, record_traces_dir, "",
          "Write every tracked cgroup's memory samples as a predictor trace (JSON lines, "
          "labelled with the kernel's OOM kill) to DIR/<cgroup id>.jsonl, for tapio-eval.");
ABSL_FLAG(std::string, log_level, "info", "stderr log level: debug, info, warning, error.");
ABSL_FLAG(std::string, grpc_address, "unix:///run/tapio/tapio.sock",
          "gRPC API address: unix:///path (socket mode 0660, directory created) or host:port "
          "(TLS with client certificates unless --grpc_insecure_tcp). '' disables the API.");
ABSL_FLAG(std::string, grpc_tls_cert, "", "PEM server certificate chain for TCP.");
ABSL_FLAG(std::string, grpc_tls_key, "", "PEM private key for TCP.");
ABSL_FLAG(std::string, grpc_tls_client_ca, "",
          "PEM CA bundle that client certificates must chain to (mTLS).");
ABSL_FLAG(bool, grpc_insecure_tcp, false,
          "Allow plaintext TCP without client authentication (explicit opt-in).");
ABSL_FLAG(int32_t, subscriber_queue, 4096,
          "Events buffered per gRPC subscriber; a slower subscriber loses events (counted, and "
          "told in-band), never slows the pipeline.");
ABSL_FLAG(int32_t, max_subscribers, 64,
          "Concurrent Subscribe streams (RESOURCE_EXHAUSTED past it).");
ABSL_FLAG(int32_t, replay_events, static_cast<int32_t>(tapio::kDefaultReplayCapacity),
          "Events kept for Subscribe(resume_after): the bounded replay window.");
ABSL_FLAG(std::string, replay_min_severity, "info",
          "Lowest severity the replay window keeps: debug, info, warning or critical. Lower "
          "events (RSS changes, process lifecycle are debug) are delivered live only, and built "
          "only while a consumer asks for them; a resume that wants them is told in-band "
          "(events_lost, source replay_live_only).");
ABSL_FLAG(std::string, metrics_address, "127.0.0.1:9464",
          "Prometheus /metrics listen address (host:port); '' disables metrics.");
ABSL_FLAG(std::string, health_address, "",
          "host:port serving only the standard gRPC health service in plaintext, for kubelet "
          "gRPC probes (e.g. 0.0.0.0:9465). '' disables it.");
ABSL_FLAG(std::string, metrics_labels, "namespace,pod,container",
          "Identity labels on per-container series: any of namespace, pod, container, "
          "container_id, cgroup (comma-separated).");
ABSL_FLAG(std::string, attribution, "auto",
          "cgroup -> container/pod: 'auto' (the CRI if a runtime socket is found, else cgroup "
          "paths), 'cri' (require it) or 'none' (cgroup paths only).");
ABSL_FLAG(std::string, cri_endpoint, "",
          "CRI runtime socket (default: /run/containerd/containerd.sock, /run/crio/crio.sock).");
ABSL_FLAG(int32_t, cri_refresh_s, 5, "Interval of the container list refresh from the runtime.");
ABSL_FLAG(bool, kubelet, false,
          "Read the kubelet's /pods (service-account token and CA) for each container's workload "
          "and memory request/limit.");
ABSL_FLAG(std::string, kubelet_url, "",
          "Kubelet /pods URL (default: https://$NODE_NAME:10250/pods).");
ABSL_FLAG(int32_t, kubelet_refresh_s, 30, "Interval of the kubelet /pods refresh.");
ABSL_FLAG(bool, enable_bpf_stats, false,
          "Switch kernel.bpf_stats_enabled on while running (per-program run count and time in "
          "metrics; costs a little per program run). Restored at exit.");
ABSL_FLAG(bool, try_fentry, true,
          "Try fentry/oom_kill_process for OOM constraint (skipped where the kernel refuses).");

namespace {

bool ParseLogLevel(const std::string& s, tapio::LogLevel* level) {
  if (s == "debug")
    *level = tapio::LogLevel::kDebug;
  else if (s == "info")
    *level = tapio::LogLevel::kInfo;
  else if (s == "warning")
    *level = tapio::LogLevel::kWarning;
  else if (s == "error")
    *level = tapio::LogLevel::kError;
  else
    return false;
  return true;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "tapio-agent: %s\n", message.c_str());
  return 2;
}

std::string DefaultNodeName() {
  if (const char* env = std::getenv("NODE_NAME"); env != nullptr && *env != '\0') return env;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) return host;
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Tapio memory agent: follows memory in the kernel (eBPF), attributes it to cgroups and "
      "containers, predicts OOM kills and streams events.\n"
      "  tapio-agent --output=json       # this host, events as JSON lines on stdout");
  absl::ParseCommandLine(argc, argv);
  tapio::DisableMutexDeadlockDetection();

  tapio::LogLevel level;
  if (!ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return Fail("--log_level: want debug, info, warning or error");
  }
  tapio::SetLogLevel(level);

  tapio::AgentOptions options;
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output != "json" && output != "none") return Fail("--output: want 'json' or 'none'");
  options.json_output = output == "json";
  if (!tapio::ParseSeverity(absl::GetFlag(FLAGS_output_min_severity), &options.json_min_severity)) {
    return Fail("--output_min_severity: want debug, info, warning or critical");
  }
  if (!tapio::ParseSeverity(absl::GetFlag(FLAGS_replay_min_severity),
                            &options.replay_min_severity)) {
    return Fail("--replay_min_severity: want debug, info, warning or critical");
  }
  auto positive = [](int32_t v) { return v > 0; };
  const int32_t snapshot_ms = absl::GetFlag(FLAGS_snapshot_interval_ms);
  const int32_t snapshot_risk_ms = absl::GetFlag(FLAGS_snapshot_interval_at_risk_ms);
  const int32_t rss_kib = absl::GetFlag(FLAGS_rss_threshold_kib);
  const int32_t ring_kib = absl::GetFlag(FLAGS_ringbuf_kib);
  const int32_t usage_s = absl::GetFlag(FLAGS_usage_interval_s);
  const int32_t max_sample_ms = absl::GetFlag(FLAGS_max_sample_interval_ms);
  const int32_t min_sample_ms = absl::GetFlag(FLAGS_min_sample_interval_ms);
  if (!positive(snapshot_ms)) return Fail("--snapshot_interval_ms: must be > 0");
  if (!positive(snapshot_risk_ms)) return Fail("--snapshot_interval_at_risk_ms: must be > 0");
  if (!positive(rss_kib)) return Fail("--rss_threshold_kib: must be > 0");
  if (ring_kib < 4 || (ring_kib & (ring_kib - 1)) != 0) {
    return Fail("--ringbuf_kib: must be a power of two >= 4");
  }
  if (!positive(usage_s)) return Fail("--usage_interval_s: must be > 0");
  const int32_t runtime_scan_s = absl::GetFlag(FLAGS_runtime_scan_interval_s);
  if (runtime_scan_s < 0) return Fail("--runtime_scan_interval_s: must be >= 0");
  if (!positive(min_sample_ms) || max_sample_ms < min_sample_ms) {
    return Fail("--min_sample_interval_ms/--max_sample_interval_ms: need 0 < min <= max");
  }
  if (absl::GetFlag(FLAGS_reclaim_event_min_us) < 0) {
    return Fail("--reclaim_event_min_us: must be >= 0");
  }

  options.snapshot_interval = absl::Milliseconds(snapshot_ms);
  options.snapshot_interval_at_risk = absl::Milliseconds(snapshot_risk_ms);
  const double budget_pct = absl::GetFlag(FLAGS_snapshot_cpu_budget_pct);
  if (!(budget_pct >= 0 && budget_pct <= 100)) {
    return Fail("--snapshot_cpu_budget_pct: must be within 0..100");
  }
  options.snapshot_cpu_budget = budget_pct / 100;
  options.kmsg_path = absl::GetFlag(FLAGS_kmsg);
  options.model_file = absl::GetFlag(FLAGS_model_file);
  options.prior_state_file = absl::GetFlag(FLAGS_prior_state_file);
  if (!options.prior_state_file.empty()) {
    const std::string dir = std::filesystem::path(options.prior_state_file).parent_path().string();
    if (access(dir.empty() ? "." : dir.c_str(), W_OK | X_OK) != 0) {
      return Fail(absl::StrCat("--prior_state_file: ", options.prior_state_file,
                               ": its directory is not writable"));
    }
  }
  options.pipeline.node_name = absl::GetFlag(FLAGS_node_name);
  if (options.pipeline.node_name.empty()) options.pipeline.node_name = DefaultNodeName();
  options.pipeline.page_size = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  options.pipeline.rss_report_threshold_bytes = static_cast<uint64_t>(rss_kib) * 1024;
  options.pipeline.reclaim_event_min =
      absl::Microseconds(absl::GetFlag(FLAGS_reclaim_event_min_us));
  options.pipeline.usage_interval = absl::Seconds(usage_s);
  options.pipeline.runtime_scan_interval = absl::Seconds(runtime_scan_s);
  options.pipeline.min_sample_interval = absl::Milliseconds(min_sample_ms);
  options.pipeline.max_sample_interval = absl::Milliseconds(max_sample_ms);
  options.pipeline.emit_process_events = absl::GetFlag(FLAGS_process_events);
  options.pipeline.trace_dir = absl::GetFlag(FLAGS_record_traces_dir);
  if (!options.pipeline.trace_dir.empty() &&
      access(options.pipeline.trace_dir.c_str(), W_OK | X_OK) != 0) {
    return Fail(absl::StrCat("--record_traces_dir: ", options.pipeline.trace_dir,
                             " is not a writable directory"));
  }
  options.tracker.ringbuf_bytes = static_cast<size_t>(ring_kib) * 1024;
  options.tracker.force_perfbuf = absl::GetFlag(FLAGS_force_perfbuf);
  options.tracker.rss_stat_hook = absl::GetFlag(FLAGS_rss_stat_hook);
  options.tracker.rss_track_all = absl::GetFlag(FLAGS_rss_track_all);
  options.tracker.rss_threshold_pages = static_cast<uint32_t>(
      options.pipeline.rss_report_threshold_bytes / options.pipeline.page_size);
  options.tracker.min_reclaim_ns = 0;  // every pass: the pipeline sums the short ones
  options.tracker.try_fentry = absl::GetFlag(FLAGS_try_fentry);
  const int32_t queue = absl::GetFlag(FLAGS_subscriber_queue);
  const int32_t max_subs = absl::GetFlag(FLAGS_max_subscribers);
  const int32_t replay = absl::GetFlag(FLAGS_replay_events);
  const int32_t cri_refresh_s = absl::GetFlag(FLAGS_cri_refresh_s);
  if (queue < 1) return Fail("--subscriber_queue: must be >= 1");
  if (max_subs < 1) return Fail("--max_subscribers: must be >= 1");
  if (replay < 0) return Fail("--replay_events: must be >= 0");
  if (cri_refresh_s < 1) return Fail("--cri_refresh_s: must be >= 1");
  options.api_enabled = !absl::GetFlag(FLAGS_grpc_address).empty();
  options.api.grpc_address = absl::GetFlag(FLAGS_grpc_address);
  options.api.tls_cert_path = absl::GetFlag(FLAGS_grpc_tls_cert);
  options.api.tls_key_path = absl::GetFlag(FLAGS_grpc_tls_key);
  options.api.tls_client_ca_path = absl::GetFlag(FLAGS_grpc_tls_client_ca);
  options.api.insecure_tcp = absl::GetFlag(FLAGS_grpc_insecure_tcp);
  options.api.subscriber_queue = static_cast<size_t>(queue);
  options.api.max_subscribers = max_subs;
  options.replay_capacity = static_cast<size_t>(replay);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.metrics_labels = absl::GetFlag(FLAGS_metrics_labels);
  options.health_address = absl::GetFlag(FLAGS_health_address);
  options.attribution = absl::GetFlag(FLAGS_attribution);
  options.cri_endpoint = absl::GetFlag(FLAGS_cri_endpoint);
  options.cri_refresh_interval = absl::Seconds(cri_refresh_s);
  options.kubelet = absl::GetFlag(FLAGS_kubelet);
  options.kubelet_url = absl::GetFlag(FLAGS_kubelet_url);
  if (absl::GetFlag(FLAGS_kubelet_refresh_s) < 1) return Fail("--kubelet_refresh_s: must be >= 1");
  options.kubelet_refresh_interval = absl::Seconds(absl::GetFlag(FLAGS_kubelet_refresh_s));
  options.enable_bpf_stats = absl::GetFlag(FLAGS_enable_bpf_stats);
  // Effective configuration for GetAgentInfo: every flag this binary defines.
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::string_view(flag->Filename()).find("agent/main.cc") == absl::string_view::npos) {
      continue;
    }
    options.config.emplace_back(std::string(name), flag->CurrentValue());
  }
  std::sort(options.config.begin(), options.config.end());

  // Signals are taken synchronously by this thread; the agent's threads inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto agent = tapio::Agent::Create(options);
  if (!agent.ok()) return Fail(std::string(agent.status().message()));
  if (absl::Status s = (*agent)->Start(); !s.ok()) return Fail(std::string(s.message()));
  TAPIO_LOG(kInfo, "running on node %s", options.pipeline.node_name);

  const int32_t summary_s = absl::GetFlag(FLAGS_summary_interval_s);
  while (true) {
    struct timespec timeout = {summary_s > 0 ? summary_s : 3600, 0};
    const int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGINT || sig == SIGTERM) {
      TAPIO_LOG(kInfo, "signal %d: detaching and draining", sig);
      break;
    }
    if (summary_s > 0) TAPIO_LOG(kInfo, "%s", (*agent)->SummaryLine());
  }
  (*agent)->Stop();
  TAPIO_LOG(kInfo, "final: %s", (*agent)->SummaryLine());
  return 0;
}
