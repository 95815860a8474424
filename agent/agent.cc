#include "agent/agent.h"

#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/core/event_json.h"
#include "agent/core/file_util.h"
#include "agent/core/log.h"

namespace tapio {

Agent::Agent(const AgentOptions& options)
    : options_(options), bus_(options.replay_capacity) {}

Agent::~Agent() { Stop(); }

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(const AgentOptions& options) {
  std::unique_ptr<Agent> agent(new Agent(options));
  if (!options.model_file.empty()) {
    auto text = ReadFileToString(options.model_file);
    if (!text.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--model_file: ", text.status().message()));
    }
    auto params = predict::LoadModelParams(*text);
    if (!params.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--model_file ", options.model_file, ": ", params.status().message()));
    }
    agent->model_params_ = *params;
  }
  auto layout = CgroupLayout::Detect();
  if (!layout.ok()) return layout.status();
  agent->layout_ = *layout;
  TAPIO_LOG(kInfo, "cgroups: %s", agent->layout_.Describe());

  bpf::TrackerOptions tracker_options = options.tracker;
  tracker_options.use_v1_memcg_id = agent->layout_.ids_from_v1_memory();
  auto tracker = bpf::MemoryTracker::Create(tracker_options);
  if (!tracker.ok()) return tracker.status();
  agent->tracker_ = std::move(*tracker);
  for (const auto& p : agent->tracker_->Programs()) {
    if (p.attached) {
      TAPIO_LOG(kInfo, "attached %s at %s", p.name, p.attach_point);
    } else {
      TAPIO_LOG(kInfo, "skipped %s (%s): %s", p.name, p.attach_point, p.skip_reason);
    }
  }
  TAPIO_LOG(kInfo, "event transport: %s",
            agent->tracker_->using_ringbuf() ? "ring buffer" : "perf buffer");

  if (!options.kmsg_path.empty()) {
    auto kmsg = KmsgReader::Open(options.kmsg_path);
    if (kmsg.ok()) {
      agent->kmsg_ = std::move(*kmsg);
    } else {
      // Without the kernel log an OOM kill is still reported, with constraint "unknown".
      TAPIO_LOG(kWarning, "no OOM constraint from the kernel log: %s", kmsg.status().ToString());
    }
  }
  agent->pipeline_ =
      std::make_unique<Pipeline>(options.pipeline, agent->layout_, &agent->bus_,
                                 &agent->path_resolver_, &agent->model_params_);
  return agent;
}

absl::Status Agent::Start() {
  if (started_) return absl::FailedPreconditionError("agent already started");
  started_ = true;
  // Counts every published event by kind without queueing anything: the filter runs inside
  // EventBus::Publish and always declines.
  count_sub_ = bus_.Subscribe(
      [this](const Event& e) {
        published_[static_cast<size_t>(e.kind())].fetch_add(1, std::memory_order_relaxed);
        return false;
      },
      1);
  if (options_.json_output) {
    const Severity min = options_.json_min_severity;
    json_sub_ = bus_.Subscribe([min](const Event& e) { return e.severity >= min; },
                               options_.json_queue);
    json_ = std::thread(&Agent::JsonLoop, this);
  }
  ingest_ = std::thread(&Agent::IngestLoop, this);
  sampler_ = std::thread(&Agent::SamplerLoop, this);
  return absl::OkStatus();
}

void Agent::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  if (ingest_.joinable()) ingest_.join();
  if (sampler_.joinable()) sampler_.join();
  // Detach from the kernel before the last events are written out.
  tracker_.reset();
  if (json_sub_) {
    json_sub_->Close();  // JsonLoop drains what is queued, then ends
    if (json_.joinable()) json_.join();
  }
}

void Agent::PublishKernelLoss(const bpf::LossCounters& now) {
  uint64_t ring_new = 0, perf_new = 0;
  {
    absl::MutexLock lock(&counts_mu_);
    ring_new = now.ringbuf_reserve - reported_loss_.ringbuf_reserve;
    perf_new = (now.perfbuf_output + now.perfbuf_lost_samples) -
               (reported_loss_.perfbuf_output + reported_loss_.perfbuf_lost_samples);
    reported_loss_ = now;
  }
  auto publish = [this](const char* source, uint64_t count) {
    Event e;
    e.time_unix_ns = absl::ToUnixNanos(absl::Now());
    e.severity = Severity::kWarning;
    e.payload = EventsLost{source, count, 0, 0};
    bus_.Publish(std::move(e));
  };
  if (ring_new > 0) publish("ringbuf", ring_new);
  if (perf_new > 0) publish("perfbuf", perf_new);
}

void Agent::IngestLoop() {
  absl::Time next_snapshot = absl::InfinitePast();
  absl::Time next_loss_check = absl::Now() + absl::Seconds(1);
  auto drain_kmsg = [this]() {
    if (kmsg_) kmsg_->Drain([this](const KmsgOomSummary& s) { pipeline_->HandleKmsgOom(s); });
  };
  while (!stopping_.load()) {
    const int64_t offset = BootToUnixOffsetNs();
    auto handled = tracker_->Poll(100, [this, offset](const void* data, size_t size) {
      pipeline_->HandleRecord(data, size, offset);
    });
    if (!handled.ok()) {
      if (poll_errors_.fetch_add(1) % 100 == 0) {
        TAPIO_LOG(kWarning, "poll: %s", handled.status().ToString());
      }
    }
    drain_kmsg();
    const absl::Time now = absl::Now();
    pipeline_->FlushPendingOoms(now, /*all=*/false);
    if (now >= next_snapshot) {
      pipeline_->BeginTaskSnapshot();
      absl::Status s = tracker_->SnapshotTasks(
          [this, offset](const tapio_rss_record& r) { pipeline_->HandleTaskRss(r, offset); });
      pipeline_->EndTaskSnapshot();
      if (!s.ok()) TAPIO_LOG(kWarning, "task snapshot: %s", s.ToString());
      next_snapshot = now + (pipeline_->any_at_risk() ? options_.snapshot_interval_at_risk
                                                      : options_.snapshot_interval);
    }
    if (now >= next_loss_check) {
      PublishKernelLoss(tracker_->ReadLoss());
      next_loss_check = now + absl::Seconds(1);
    }
  }
  // Drain: what the kernel produced before we stopped is delivered, not dropped.
  for (int i = 0; i < 64; ++i) {
    auto n = tracker_->Poll(0, [this, offset = BootToUnixOffsetNs()](const void* d, size_t s) {
      pipeline_->HandleRecord(d, s, offset);
    });
    if (!n.ok() || *n == 0) break;
  }
  drain_kmsg();
  pipeline_->FlushPendingOoms(absl::Now(), /*all=*/true);
  PublishKernelLoss(tracker_->ReadLoss());
}

void Agent::SamplerLoop() {
  while (!stopping_.load()) {
    const absl::Time next = pipeline_->SampleDue(absl::Now());
    // Wake at the next due sample, but at least every 50 ms to notice OOM-triggered samples.
    absl::Duration wait = std::clamp(next - absl::Now(), absl::Milliseconds(5),
                                     absl::Milliseconds(50));
    absl::SleepFor(wait);
  }
}

void Agent::JsonLoop() {
  const std::string& node = options_.pipeline.node_name;
  std::string line;
  while (true) {
    EventPtr e = json_sub_->Next(absl::Milliseconds(200));
    if (e == nullptr) {
      if (json_sub_->closed()) break;
      continue;
    }
    line = EventToJson(*e, node).dump();
    line.push_back('\n');
    if (fwrite(line.data(), 1, line.size(), stdout) != line.size()) {
      TAPIO_LOG(kError, "stdout closed; JSON output stops");
      break;
    }
    fflush(stdout);
  }
}

AgentCounts Agent::Counts() const {
  AgentCounts c;
  for (int i = 0; i < kEventKindCount; ++i) {
    c.published_by_kind[i] = published_[i].load();
    c.published_total += c.published_by_kind[i];
  }
  {
    absl::MutexLock lock(&counts_mu_);
    c.kernel_loss = reported_loss_;
  }
  c.json_dropped = json_sub_ ? json_sub_->dropped_total() : 0;
  c.pipeline = pipeline_->counters();
  c.kmsg_overruns = kmsg_ ? kmsg_->overruns() : 0;
  c.poll_errors = poll_errors_.load();
  return c;
}

std::string Agent::SummaryLine() const {
  const AgentCounts c = Counts();
  std::vector<std::string> parts;
  for (int i = 0; i < kEventKindCount; ++i) {
    parts.push_back(absl::StrCat(EventKindName(static_cast<EventKind>(i)), "=",
                                 c.published_by_kind[i]));
  }
  return absl::StrCat("events ", c.published_total, " (", absl::StrJoin(parts, " "),
                      ") lost: ringbuf=", c.kernel_loss.ringbuf_reserve,
                      " perfbuf=", c.kernel_loss.perfbuf_output + c.kernel_loss.perfbuf_lost_samples,
                      " json=", c.json_dropped, " malformed=", c.pipeline.records_malformed,
                      "; processes=", c.pipeline.processes, " cgroups=", c.pipeline.cgroups_tracked,
                      " samples=", c.pipeline.samples);
}

}  // namespace tapio
