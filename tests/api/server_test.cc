// ApiServer over a real unix socket (and TCP with mTLS), with real clients: the generated C++
// stub, tapioctl as a subprocess, and tests/api/client.py (python3-grpcio, protos compiled at run
// time). A test EventBus is fed synthetic events.
#include "agent/api/server.h"

#include <sys/stat.h>

#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tapio/v1/service.grpc.pb.h"
#include "tests/api/api_test_util.h"

namespace tapio::api {
namespace {

using ::tapio::api::testing::FakeStateSource;
using ::tapio::api::testing::Lines;
using ::tapio::api::testing::Subprocess;
using ::tapio::api::testing::TempDir;
using ::tapio::api::testing::WaitFor;
using ::testing::HasSubstr;

constexpr char kTapioctl[] = TAPIO_TAPIOCTL_BIN;
const std::string kClientPy = std::string(TAPIO_SOURCE_DIR) + "/tests/api/client.py";

std::shared_ptr<const WorkloadIdentity> Pod(
    const std::string& ns, const std::string& pod, const std::string& container,
    std::vector<std::pair<std::string, std::string>> labels = {}) {
  auto id = std::make_shared<WorkloadIdentity>();
  id->cgroup_id = std::hash<std::string>()(ns + pod + container) & 0xffffff;
  id->cgroup_path = absl::StrCat("/kubepods/burstable/pod-", pod, "/", container);
  id->pod_namespace = ns;
  id->pod_name = pod;
  id->container_name = container;
  id->labels = std::move(labels);
  return id;
}

Event OomKillEvent(std::shared_ptr<const WorkloadIdentity> id, uint32_t pid) {
  Event e;
  e.time_unix_ns = 1'700'000'000'000'000'000 + pid;
  e.severity = Severity::kCritical;
  e.identity = std::move(id);
  OomKill k;
  k.victim_pid = pid;
  k.victim_comm = "hog";
  k.constraint = OomConstraint::kMemcg;
  k.anon_rss_bytes = 64 << 20;
  e.payload = k;
  return e;
}

Event UsageEvent(std::shared_ptr<const WorkloadIdentity> id, uint64_t usage,
                 size_t reason_bytes = 0) {
  Event e;
  e.time_unix_ns = absl::ToUnixNanos(absl::Now());
  e.severity = Severity::kInfo;
  e.identity = std::move(id);
  if (reason_bytes > 0) {
    OomPrediction p;  // a payload with a string, to make events big on the wire
    p.reason = std::string(reason_bytes, 'r');
    p.usage_bytes = usage;
    e.payload = p;
  } else {
    MemoryUsage u;
    u.usage_bytes = usage;
    e.payload = u;
  }
  return e;
}

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.grpc_address = absl::StrCat("unix://", dir_.path(), "/run/tapio.sock");
    options_.node_name = "node-a";
    AgentInfo info;
    info.version = "0.1.0-test";
    info.node = "node-a";
    info.kernel_release = "6.18.0";
    info.kernel_features = {{"btf", true, "/sys/kernel/btf/vmlinux"}, {"fentry", false, "EPERM"}};
    info.programs = {
        {"handle_mark_victim", "tp_btf/mark_victim", BpfProgramInfo::Status::kAttached, ""}};
    info.config = {{"subscriber_queue", "4096"}};
    state_.SetInfo(info);
  }

  void StartServer() {
    auto server = ApiServer::Create(options_, &bus_, &state_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<v1::TapioService::Stub> Stub() {
    return v1::TapioService::NewStub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }

  // One GetAgentInfo call to the running server: is it answering?
  grpc::Status CallGetAgentInfo() {
    v1::AgentInfo info;
    grpc::ClientContext ctx;
    return Stub()->GetAgentInfo(&ctx, v1::GetAgentInfoRequest(), &info);
  }

  // Streams the server currently serves (the bus itself sees one subscriber: the fan-out).
  bool WaitSubscribers(size_t n) {
    return WaitFor([&] { return server_->stats().subscribers == n; });
  }

  TempDir dir_;
  EventBus bus_{1024};
  FakeStateSource state_;
  ApiServerOptions options_;
  std::unique_ptr<ApiServer> server_;
};

TEST_F(ApiServerTest, SubscriberReceivesEventsInOrderWithEnvelope) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  auto reader = stub->Subscribe(&ctx, v1::SubscribeRequest());
  ASSERT_TRUE(WaitSubscribers(1));
  auto id = Pod("prod", "web-1", "app", {{"app", "web"}});
  bus_.Publish(OomKillEvent(id, 100));
  bus_.Publish(UsageEvent(id, 12345));
  v1::Event e;
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_EQ(e.seq(), 1u);
  EXPECT_EQ(e.node(), "node-a");
  EXPECT_EQ(e.severity(), v1::SEVERITY_CRITICAL);
  EXPECT_EQ(e.identity().pod_name(), "web-1");
  EXPECT_EQ(e.identity().labels().at("app"), "web");
  ASSERT_TRUE(e.has_oom_kill());
  EXPECT_EQ(e.oom_kill().victim_pid(), 100u);
  EXPECT_EQ(e.oom_kill().constraint(), v1::OOM_CONSTRAINT_MEMCG);
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_EQ(e.seq(), 2u);
  EXPECT_EQ(e.memory_usage().usage_bytes(), 12345u);
  ctx.TryCancel();
  reader->Finish();
}

TEST_F(ApiServerTest, AllowAndDenyFiltersApplyPerSubscriber) {
  StartServer();
  auto stub = Stub();
  v1::SubscribeRequest req;
  auto* allow = req.add_allow();
  allow->add_namespaces("prod");
  allow->add_event_types(v1::EVENT_TYPE_OOM_KILL);
  req.add_deny()->set_label_selector("canary=true");
  grpc::ClientContext filtered_ctx, all_ctx;
  auto filtered = stub->Subscribe(&filtered_ctx, req);
  auto all = stub->Subscribe(&all_ctx, v1::SubscribeRequest());
  ASSERT_TRUE(WaitSubscribers(2));

  bus_.Publish(OomKillEvent(Pod("dev", "a", "c"), 1));                          // 1: namespace
  bus_.Publish(UsageEvent(Pod("prod", "a", "c"), 1));                           // 2: type
  bus_.Publish(OomKillEvent(Pod("prod", "a", "c", {{"canary", "true"}}), 3));   // 3: denied
  bus_.Publish(OomKillEvent(Pod("prod", "b", "c", {{"canary", "false"}}), 4));  // 4: passes
  bus_.Publish(OomKillEvent(Pod("prod", "d", "c"), 5));                         // 5: passes

  v1::Event e;
  ASSERT_TRUE(filtered->Read(&e));
  EXPECT_EQ(e.seq(), 4u);
  ASSERT_TRUE(filtered->Read(&e));
  EXPECT_EQ(e.seq(), 5u);
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    ASSERT_TRUE(all->Read(&e));
    EXPECT_EQ(e.seq(), seq);
  }
  filtered_ctx.TryCancel();
  all_ctx.TryCancel();
  filtered->Finish();
  all->Finish();
}

TEST_F(ApiServerTest, ResumeAfterReplaysRetainedEventsThenLiveOnes) {
  StartServer();
  auto id = Pod("prod", "web", "app");
  for (int i = 1; i <= 10; ++i) bus_.Publish(UsageEvent(id, i));
  auto stub = Stub();
  v1::SubscribeRequest req;
  req.set_resume_after(7);
  grpc::ClientContext ctx;
  auto reader = stub->Subscribe(&ctx, req);
  v1::Event e;
  for (uint64_t seq = 8; seq <= 10; ++seq) {
    ASSERT_TRUE(reader->Read(&e));
    EXPECT_EQ(e.seq(), seq);
  }
  bus_.Publish(UsageEvent(id, 11));
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_EQ(e.seq(), 11u);
  ctx.TryCancel();
  reader->Finish();
}

TEST_F(ApiServerTest, ResumeBeyondTheReplayWindowSaysSoInBand) {
  EventBus small_bus(4);
  auto server = ApiServer::Create(options_, &small_bus, &state_);
  ASSERT_TRUE(server.ok()) << server.status();
  auto id = Pod("prod", "web", "app");
  for (int i = 1; i <= 10; ++i) small_bus.Publish(UsageEvent(id, i));  // retains 7..10
  // Once the fan-out has handled 1..10, 3..6 are gone for good (out of the ring, already
  // dispatched); before that they could still reach a new stream (fanout_test covers that).
  ASSERT_TRUE(WaitFor([&] { return (*server)->stats().dispatched_seq == 10; }));
  auto stub = v1::TapioService::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  v1::SubscribeRequest req;
  req.set_resume_after(2);
  // Loss notices come through even when the filter does not ask for events_lost.
  req.add_allow()->add_event_types(v1::EVENT_TYPE_MEMORY_USAGE);
  grpc::ClientContext ctx;
  auto reader = stub->Subscribe(&ctx, req);
  v1::Event e;
  ASSERT_TRUE(reader->Read(&e));
  ASSERT_TRUE(e.has_events_lost());
  EXPECT_EQ(e.events_lost().source(), "replay");
  EXPECT_EQ(e.events_lost().first_seq(), 3u);
  EXPECT_EQ(e.events_lost().last_seq(), 6u);
  EXPECT_EQ(e.events_lost().count(), 4u);
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_EQ(e.seq(), 7u);
  ctx.TryCancel();
  reader->Finish();
}

// A client that stops reading loses events (counted, told in-band with the gap) while a fast
// client on the same server gets every event: the slow one never slows the others.
TEST_F(ApiServerTest, StalledClientLosesEventsInBandWithoutSlowingOthers) {
  options_.subscriber_queue = 8;
  StartServer();
  auto stub = Stub();
  grpc::ClientContext stalled_ctx, fast_ctx;
  auto stalled = stub->Subscribe(&stalled_ctx, v1::SubscribeRequest());
  auto fast = stub->Subscribe(&fast_ctx, v1::SubscribeRequest());
  ASSERT_TRUE(WaitSubscribers(2));

  std::atomic<uint64_t> fast_last_seq{0};
  std::atomic<bool> fast_gap{false};
  std::thread fast_reader([&] {
    v1::Event e;
    uint64_t expect = 1;
    while (fast->Read(&e)) {
      if (e.seq() != expect++) fast_gap = true;
      fast_last_seq = e.seq();
    }
  });

  // 4 KiB events, 3000 of them: 12 MiB, far beyond the transport's buffers and windows.
  constexpr int kEvents = 3000;
  auto id = Pod("prod", "web", "app");
  for (int i = 1; i <= kEvents; ++i) {
    bus_.Publish(UsageEvent(id, i, 4096));
    // Paced by the fast client, so only the stalled one can fall behind.
    ASSERT_TRUE(WaitFor([&] { return fast_last_seq.load() == static_cast<uint64_t>(i); },
                        absl::Seconds(10), absl::Microseconds(20)))
        << "fast client stuck at " << fast_last_seq.load();
  }
  EXPECT_FALSE(fast_gap.load());
  EXPECT_GT(server_->stats().drops_total, 0u);
  EXPECT_EQ(bus_.subscriber_drops_total(), 0u) << "the server's bus feed must not lose events";

  // Now the stalled client reads: every seq 1..kEvents is either received or inside a
  // reported gap, and the gap counts add up to exactly what the bus dropped.
  std::set<uint64_t> received;
  std::vector<v1::EventsLost> losses;
  uint64_t lost_total = 0;
  uint64_t last = 0;
  v1::Event e;
  while (last < kEvents && stalled->Read(&e)) {
    if (e.has_events_lost()) {
      EXPECT_EQ(e.seq(), 0u);
      EXPECT_EQ(e.events_lost().source(), "subscriber_queue");
      lost_total += e.events_lost().count();
      losses.push_back(e.events_lost());
      last = std::max(last, e.events_lost().last_seq());
      continue;
    }
    EXPECT_GT(e.seq(), last) << "out of order";
    received.insert(e.seq());
    last = e.seq();
  }
  ASSERT_FALSE(losses.empty());
  EXPECT_EQ(received.size() + lost_total, static_cast<size_t>(kEvents));
  EXPECT_EQ(lost_total, server_->stats().drops_total);
  for (uint64_t seq = 1; seq <= kEvents; ++seq) {
    if (received.count(seq)) continue;
    bool covered = false;
    for (const auto& l : losses) covered |= seq >= l.first_seq() && seq <= l.last_seq();
    EXPECT_TRUE(covered) << "seq " << seq << " neither received nor reported lost";
    if (!covered) break;
  }
  stalled_ctx.TryCancel();
  fast_ctx.TryCancel();
  fast_reader.join();
  stalled->Finish();
  fast->Finish();
}

TEST_F(ApiServerTest, SubscribeBatchesCarriesTheFilteredEventsInOrderManyPerMessage) {
  StartServer();
  auto stub = Stub();
  v1::SubscribeRequest req;
  req.add_allow()->add_namespaces("prod");
  grpc::ClientContext ctx;
  auto reader = stub->SubscribeBatches(&ctx, req);
  ASSERT_TRUE(WaitSubscribers(1));
  // Published in one go, before the client reads: the server finds many queued per write.
  constexpr int kEvents = 2000;
  std::vector<uint64_t> want;
  for (int i = 1; i <= kEvents; ++i) {
    const bool prod = i % 3 != 0;
    bus_.Publish(UsageEvent(Pod(prod ? "prod" : "dev", "web", "app"), i));
    if (prod) want.push_back(static_cast<uint64_t>(i));
  }
  std::vector<uint64_t> got;
  size_t largest = 0;
  v1::EventBatch batch;
  while (got.size() < want.size() && reader->Read(&batch)) {
    ASSERT_GT(batch.events_size(), 0) << "no empty batches";
    largest = std::max(largest, static_cast<size_t>(batch.events_size()));
    for (const v1::Event& e : batch.events()) {
      EXPECT_EQ(e.node(), "node-a");
      EXPECT_EQ(e.identity().pod_namespace(), "prod");
      EXPECT_EQ(e.memory_usage().usage_bytes(), e.seq());
      got.push_back(e.seq());
    }
  }
  EXPECT_EQ(got, want);
  EXPECT_GT(largest, 1u) << "every event went alone: nothing was batched";
  // Counted when the write completes on the server, which may be after the client has it.
  EXPECT_TRUE(WaitFor([&] { return server_->stats().events_sent_total == want.size(); }))
      << server_->stats().events_sent_total;
  ctx.TryCancel();
  reader->Finish();
  EXPECT_TRUE(WaitSubscribers(0));
}

TEST_F(ApiServerTest, SubscribeBatchesReportsLossInBandAtItsPlace) {
  options_.subscriber_queue = 8;
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  auto reader = stub->SubscribeBatches(&ctx, v1::SubscribeRequest());
  ASSERT_TRUE(WaitSubscribers(1));
  // 4 KiB events, 3000 of them, to a client that does not read yet: its queue overflows.
  constexpr uint64_t kEvents = 3000;
  auto id = Pod("prod", "web", "app");
  for (uint64_t i = 1; i <= kEvents; ++i) bus_.Publish(UsageEvent(id, i, 4096));
  ASSERT_TRUE(WaitFor([&] { return server_->stats().dispatched_seq == kEvents; }));
  ASSERT_GT(server_->stats().drops_total, 0u);

  uint64_t received = 0;
  uint64_t lost = 0;
  uint64_t last = 0;  // highest seq received or reported lost
  v1::EventBatch batch;
  while (last < kEvents && reader->Read(&batch)) {
    for (const v1::Event& e : batch.events()) {
      if (e.has_events_lost()) {
        EXPECT_EQ(e.seq(), 0u);
        EXPECT_EQ(e.events_lost().source(), "subscriber_queue");
        EXPECT_GT(e.events_lost().first_seq(), last) << "a gap reported out of place";
        lost += e.events_lost().count();
        last = e.events_lost().last_seq();
        continue;
      }
      EXPECT_GT(e.seq(), last) << "out of order";
      ++received;
      last = e.seq();
    }
  }
  EXPECT_EQ(received + lost, kEvents);
  EXPECT_EQ(lost, server_->stats().drops_total);
  ctx.TryCancel();
  reader->Finish();
}

TEST_F(ApiServerTest, CancelledClientFreesItsSubscription) {
  StartServer();
  auto stub = Stub();
  auto ctx = std::make_unique<grpc::ClientContext>();
  auto reader = stub->Subscribe(ctx.get(), v1::SubscribeRequest());
  ASSERT_TRUE(WaitSubscribers(1));
  EXPECT_EQ(server_->stats().subscribers, 1u);
  ctx->TryCancel();
  reader->Finish();
  EXPECT_TRUE(WaitSubscribers(0));
}

TEST_F(ApiServerTest, KilledClientProcessFreesItsSubscription) {
  StartServer();
  Subprocess client({kTapioctl, "watch", "--address=" + server_->address(), "--output=json"},
                    dir_.path(), "watch");
  ASSERT_TRUE(WaitSubscribers(1)) << client.err();
  client.Kill();
  EXPECT_EQ(client.Wait(absl::Seconds(5)), 128 + SIGKILL);
  EXPECT_TRUE(WaitSubscribers(0));
}

TEST_F(ApiServerTest, BadRequestsAreInvalidArgumentNamingTheField) {
  StartServer();
  auto stub = Stub();
  struct Case {
    v1::SubscribeRequest request;
    std::string field;
  };
  std::vector<Case> cases(4);
  cases[0].request.add_allow()->set_label_selector("app in (");
  cases[0].field = "allow[0].label_selector";
  cases[1].request.add_allow();
  cases[1].request.add_deny()->add_pod_name_patterns("web-[0-9");
  cases[1].field = "deny[0].pod_name_patterns[0]";
  cases[2].request.add_allow()->add_event_types(static_cast<v1::EventType>(99));
  cases[2].field = "allow[0].event_types[0]";
  cases[3].request.set_min_severity(static_cast<v1::Severity>(42));
  cases[3].field = "min_severity";
  for (const Case& c : cases) {
    grpc::ClientContext ctx;
    auto reader = stub->Subscribe(&ctx, c.request);
    v1::Event e;
    EXPECT_FALSE(reader->Read(&e));
    grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_THAT(status.error_message(), HasSubstr(c.field));
  }
  EXPECT_EQ(server_->stats().subscribers, 0u);
  EXPECT_EQ(server_->stats().rejected_invalid_total, cases.size());

  v1::ListContainersRequest list;
  list.mutable_selector()->add_event_types(v1::EVENT_TYPE_OOM_KILL);
  v1::ListContainersResponse response;
  grpc::ClientContext ctx;
  grpc::Status status = stub->ListContainers(&ctx, list, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("selector.event_types"));
}

TEST_F(ApiServerTest, SubscribersBeyondTheMaximumAreResourceExhausted) {
  options_.max_subscribers = 2;
  StartServer();
  auto stub = Stub();
  grpc::ClientContext c1, c2;
  auto r1 = stub->Subscribe(&c1, v1::SubscribeRequest());
  auto r2 = stub->Subscribe(&c2, v1::SubscribeRequest());
  ASSERT_TRUE(WaitSubscribers(2));
  {
    grpc::ClientContext c3;
    auto r3 = stub->Subscribe(&c3, v1::SubscribeRequest());
    v1::Event e;
    EXPECT_FALSE(r3->Read(&e));
    grpc::Status status = r3->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(status.error_message(), HasSubstr("max_subscribers"));
  }
  EXPECT_EQ(server_->stats().rejected_exhausted_total, 1u);
  // A freed slot can be taken again.
  c1.TryCancel();
  r1->Finish();
  ASSERT_TRUE(WaitSubscribers(1));
  grpc::ClientContext c4;
  auto r4 = stub->Subscribe(&c4, v1::SubscribeRequest());
  EXPECT_TRUE(WaitSubscribers(2));
  bus_.Publish(UsageEvent(Pod("a", "b", "c"), 1));
  v1::Event e;
  EXPECT_TRUE(r4->Read(&e));
  c2.TryCancel();
  c4.TryCancel();
  r2->Finish();
  r4->Finish();
}

TEST_F(ApiServerTest, ListContainersAndAgentInfo) {
  ContainerSnapshot web;
  web.identity = Pod("prod", "web-1", "app");
  web.usage.usage_bytes = 100 << 20;
  web.usage.limit_bytes = 128 << 20;
  web.usage_time_unix_ns = 5;
  OomPrediction p;
  p.time_to_oom_ms = 4000;
  p.model = "trend";
  web.prediction = p;
  ContainerSnapshot db;
  db.identity = Pod("dev", "db-0", "postgres");
  state_.SetContainers({web, db});
  StartServer();
  bus_.Publish(UsageEvent(web.identity, 1));
  auto stub = Stub();

  v1::ListContainersResponse all;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->ListContainers(&ctx, v1::ListContainersRequest(), &all).ok());
  }
  ASSERT_EQ(all.containers_size(), 2);
  EXPECT_EQ(all.containers(0).identity().pod_name(), "web-1");
  EXPECT_EQ(all.containers(0).usage().limit_bytes(), 128u << 20);
  EXPECT_EQ(all.containers(0).prediction().time_to_oom_ms(), 4000);
  EXPECT_FALSE(all.containers(1).has_prediction());

  v1::ListContainersRequest only_dev;
  only_dev.mutable_selector()->add_namespaces("dev");
  v1::ListContainersResponse dev;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->ListContainers(&ctx, only_dev, &dev).ok());
  }
  ASSERT_EQ(dev.containers_size(), 1);
  EXPECT_EQ(dev.containers(0).identity().container_name(), "postgres");

  v1::AgentInfo info;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->GetAgentInfo(&ctx, v1::GetAgentInfoRequest(), &info).ok());
  EXPECT_EQ(info.version(), "0.1.0-test");
  EXPECT_EQ(info.kernel_features_size(), 2);
  EXPECT_FALSE(info.kernel_features(1).available());
  ASSERT_EQ(info.programs_size(), 1);
  EXPECT_EQ(info.programs(0).status(), v1::BpfProgram::STATUS_ATTACHED);
  EXPECT_EQ(info.config().at("subscriber_queue"), "4096");
  EXPECT_EQ(info.last_seq(), 1u);
}

TEST_F(ApiServerTest, UnixSocketIsMode0660InACreatedDirectory) {
  StartServer();
  const std::string path = dir_.path() + "/run/tapio.sock";
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  server_->Shutdown();
  EXPECT_NE(stat(path.c_str(), &st), 0) << "socket left behind after Shutdown";
}

TEST_F(ApiServerTest, StaleSocketIsReplacedAndALiveOneRefused) {
  StartServer();
  // A second server on the same live socket is refused.
  auto second = ApiServer::Create(options_, &bus_, &state_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("grpc_address"));
  server_.reset();
  // A stale socket file (nobody listening) is removed and replaced.
  const std::string path = dir_.path() + "/run/tapio.sock";
  {
    Subprocess py({"/usr/bin/python3", "-c",
                   "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])", path},
                  dir_.path(), "bind");
    ASSERT_EQ(py.Wait(absl::Seconds(10)), 0) << py.err();
  }
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  StartServer();
  EXPECT_TRUE(CallGetAgentInfo().ok());
}

// A server shut down at once after it started (an agent whose next component failed to start)
// must not abort: its first waiting calls were once requested by the stream thread, which could
// run after Shutdown had already shut the completion queue down (a gRPC assertion, SIGABRT).
TEST_F(ApiServerTest, ServerShutDownRightAfterStartingDoesNotAbort) {
  for (int i = 0; i < 1000; ++i) {
    auto server = ApiServer::Create(options_, &bus_, &state_);
    ASSERT_TRUE(server.ok()) << server.status();
    server->reset();
  }
  StartServer();
  EXPECT_TRUE(CallGetAgentInfo().ok());
}

TEST_F(ApiServerTest, BadOptionsAreRefusedNamingTheOption) {
  struct Case {
    std::function<void(ApiServerOptions*)> mutate;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {[](ApiServerOptions* o) { o->grpc_address = "127.0.0.1:0"; }, "grpc_insecure_tcp"},
      {[](ApiServerOptions* o) { o->grpc_address = "localhost"; }, "grpc_address"},
      {[](ApiServerOptions* o) { o->grpc_address = "unix:relative.sock"; }, "grpc_address"},
      {[](ApiServerOptions* o) {
         o->grpc_address = "127.0.0.1:0";
         o->tls_cert_path = "/nonexistent/cert.pem";
       },
       "grpc_tls_"},
      {[](ApiServerOptions* o) {
         o->grpc_address = "127.0.0.1:0";
         o->tls_cert_path = "/nonexistent/cert.pem";
         o->tls_key_path = "/nonexistent/key.pem";
         o->tls_client_ca_path = "/nonexistent/ca.pem";
       },
       "grpc_tls_cert: cannot read"},
      {[](ApiServerOptions* o) { o->subscriber_queue = 0; }, "subscriber_queue"},
      {[](ApiServerOptions* o) { o->max_subscribers = 0; }, "max_subscribers"},
      {[](ApiServerOptions* o) { o->feed_queue = 0; }, "feed_queue"},
      {[](ApiServerOptions* o) { o->stream_thread_nice = 20; }, "stream_thread_nice"},
  };
  for (const Case& c : cases) {
    ApiServerOptions o = options_;
    c.mutate(&o);
    auto server = ApiServer::Create(o, &bus_, &state_);
    ASSERT_FALSE(server.ok()) << c.needle;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << server.status();
    EXPECT_THAT(server.status().message(), HasSubstr(c.needle));
  }
}

TEST_F(ApiServerTest, InsecureTcpOnlyWhenAskedFor) {
  options_.grpc_address = "127.0.0.1:0";
  options_.insecure_tcp = true;
  StartServer();
  EXPECT_TRUE(absl::StartsWith(server_->address(), "127.0.0.1:"));
  EXPECT_NE(server_->address(), "127.0.0.1:0");
  EXPECT_TRUE(CallGetAgentInfo().ok());
}

TEST_F(ApiServerTest, TcpPortInUseIsUnavailableAndLeavesNothingBehind) {
  options_.grpc_address = "127.0.0.1:0";
  options_.insecure_tcp = true;
  StartServer();
  ApiServerOptions second = options_;
  second.grpc_address = server_->address();  // taken by the first server
  for (int i = 0; i < 3; ++i) {              // and again: a failed Create frees what it built
    auto other = ApiServer::Create(second, &bus_, &state_);
    ASSERT_FALSE(other.ok());
    EXPECT_EQ(other.status().code(), absl::StatusCode::kUnavailable) << other.status();
    EXPECT_THAT(std::string(other.status().message()), ::testing::HasSubstr("grpc_address"));
  }
  EXPECT_EQ(bus_.subscriber_count(), 1u) << "only the running server's feed";
}

// --- tapioctl as a subprocess ---

TEST_F(ApiServerTest, TapioctlWatchPrintsFilteredEventsAsJsonLines) {
  StartServer();
  Subprocess watch(
      {kTapioctl, "watch", "--address=" + server_->address(), "--output=json", "--namespace=prod",
       "--type=oom_kill", "--exclude_pod=*-debug", "--count=2", "--timeout=20s"},
      dir_.path(), "watch");
  ASSERT_TRUE(WaitSubscribers(1)) << watch.err();
  bus_.Publish(OomKillEvent(Pod("dev", "a", "c"), 1));
  bus_.Publish(OomKillEvent(Pod("prod", "a-debug", "c"), 2));
  bus_.Publish(UsageEvent(Pod("prod", "a", "c"), 3));
  bus_.Publish(OomKillEvent(Pod("prod", "web-1", "app"), 4));
  bus_.Publish(OomKillEvent(Pod("prod", "web-2", "app"), 5));
  ASSERT_EQ(watch.Wait(absl::Seconds(20)), 0) << watch.err();
  const auto lines = Lines(watch.out());
  ASSERT_EQ(lines.size(), 2u) << watch.out();
  auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["seq"], "4");  // proto3 JSON writes 64-bit integers as strings
  EXPECT_EQ(first["identity"]["pod_name"], "web-1");
  EXPECT_EQ(first["oom_kill"]["victim_pid"], 4);
  EXPECT_EQ(first["oom_kill"]["constraint"], "OOM_CONSTRAINT_MEMCG");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["identity"]["pod_name"], "web-2");
  EXPECT_TRUE(WaitSubscribers(0));
}

TEST_F(ApiServerTest, TapioctlWatchTableIsReadable) {
  StartServer();
  Subprocess watch({kTapioctl, "watch", "--address=" + server_->address(), "--count=1"},
                   dir_.path(), "watch");
  ASSERT_TRUE(WaitSubscribers(1)) << watch.err();
  bus_.Publish(OomKillEvent(Pod("prod", "web-1", "app"), 4321));
  ASSERT_EQ(watch.Wait(absl::Seconds(20)), 0) << watch.err();
  const auto lines = Lines(watch.out());
  ASSERT_EQ(lines.size(), 2u) << watch.out();
  EXPECT_THAT(lines[0], HasSubstr("SEVERITY"));
  EXPECT_THAT(lines[1], HasSubstr("prod/web-1/app"));
  EXPECT_THAT(lines[1], HasSubstr("oom_kill"));
  EXPECT_THAT(lines[1], HasSubstr("victim=4321(hog)"));
  EXPECT_THAT(lines[1], HasSubstr("CRITICAL"));
}

TEST_F(ApiServerTest, TapioctlWatchTimeoutEndsCleanly) {
  StartServer();
  Subprocess watch({kTapioctl, "watch", "--address=" + server_->address(), "--timeout=300ms"},
                   dir_.path(), "watch");
  EXPECT_EQ(watch.Wait(absl::Seconds(20)), 0) << watch.err();
  EXPECT_EQ(Lines(watch.out()).size(), 1u) << watch.out();  // the header only
  EXPECT_TRUE(WaitSubscribers(0));
}

TEST_F(ApiServerTest, TapioctlShowsServerErrorsWithNonZeroExit) {
  StartServer();
  Subprocess bad({kTapioctl, "watch", "--address=" + server_->address(), "--selector=app in ("},
                 dir_.path(), "bad");
  EXPECT_EQ(bad.Wait(absl::Seconds(20)), 1);
  EXPECT_THAT(bad.err(), HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(bad.err(), HasSubstr("allow[0].label_selector"));

  Subprocess unreachable({kTapioctl, "info", "--address=unix://" + dir_.path() + "/none.sock"},
                         dir_.path(), "unreachable");
  EXPECT_EQ(unreachable.Wait(absl::Seconds(20)), 1);
  EXPECT_THAT(unreachable.err(), HasSubstr("UNAVAILABLE"));

  Subprocess usage({kTapioctl, "frobnicate", "--address=" + server_->address()}, dir_.path(),
                   "usage");
  EXPECT_EQ(usage.Wait(absl::Seconds(20)), 2);
  Subprocess bad_type({kTapioctl, "watch", "--address=" + server_->address(), "--type=oom"},
                      dir_.path(), "badtype");
  EXPECT_EQ(bad_type.Wait(absl::Seconds(20)), 2);
  EXPECT_THAT(bad_type.err(), HasSubstr("--type"));
}

TEST_F(ApiServerTest, TapioctlInfoAndContainers) {
  ContainerSnapshot web;
  web.identity = Pod("prod", "web-1", "app");
  web.usage.usage_bytes = 100 << 20;
  OomPrediction p;
  p.time_to_oom_ms = 4000;
  p.model = "trend";
  web.prediction = p;
  state_.SetContainers({web});
  StartServer();
  Subprocess info({kTapioctl, "info", "--address=" + server_->address()}, dir_.path(), "info");
  ASSERT_EQ(info.Wait(absl::Seconds(20)), 0) << info.err();
  EXPECT_THAT(info.out(), HasSubstr("0.1.0-test"));
  EXPECT_THAT(info.out(), HasSubstr("tp_btf/mark_victim"));
  Subprocess containers({kTapioctl, "containers", "--address=" + server_->address()}, dir_.path(),
                        "containers");
  ASSERT_EQ(containers.Wait(absl::Seconds(20)), 0) << containers.err();
  EXPECT_THAT(containers.out(), HasSubstr("prod/web-1/app"));
  EXPECT_THAT(containers.out(), HasSubstr("100.0MiB"));
  EXPECT_THAT(containers.out(), HasSubstr("AT_RISK in 4.0s (trend)"));
}

// --- a client not written in C++: python3-grpcio with the .proto files compiled at run time ---

TEST_F(ApiServerTest, PythonClientSubscribesWithTheProtoFiles) {
  StartServer();
  Subprocess py({"/usr/bin/python3", kClientPy, "subscribe", "--address", server_->address(),
                 "--type", "oom_kill", "--namespace", "prod", "--count", "2", "--timeout", "30"},
                dir_.path(), "py");
  ASSERT_TRUE(WaitSubscribers(1)) << py.err();
  bus_.Publish(UsageEvent(Pod("prod", "a", "c"), 1));
  bus_.Publish(OomKillEvent(Pod("prod", "web-1", "app", {{"app", "web"}}), 77));
  bus_.Publish(OomKillEvent(Pod("dev", "web-1", "app"), 78));
  bus_.Publish(OomKillEvent(Pod("prod", "web-2", "app"), 79));
  ASSERT_EQ(py.Wait(absl::Seconds(30)), 0) << py.err();
  const auto lines = Lines(py.out());
  ASSERT_EQ(lines.size(), 2u) << py.out();
  auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["seq"], "2");
  EXPECT_EQ(first["node"], "node-a");
  EXPECT_EQ(first["identity"]["labels"]["app"], "web");
  EXPECT_EQ(first["oom_kill"]["victim_pid"], 77);
  EXPECT_EQ(nlohmann::json::parse(lines[1])["oom_kill"]["victim_pid"], 79);
  EXPECT_TRUE(WaitSubscribers(0));
}

// The batch stream is built by the server from serialized events (EventBatch field 1, by hand):
// a protobuf implementation not our own (Python's) must read it as the .proto says.
TEST_F(ApiServerTest, PythonClientReadsSubscribeBatchesWithTheProtoFiles) {
  StartServer();
  Subprocess py({"/usr/bin/python3", kClientPy, "subscribe", "--batches", "--address",
                 server_->address(), "--namespace", "prod", "--count", "300", "--timeout", "30"},
                dir_.path(), "py");
  ASSERT_TRUE(WaitSubscribers(1)) << py.err();
  // Published in one go, so that batches carry many events; every third is filtered out.
  for (int i = 1; i <= 450; ++i) {
    bus_.Publish(i % 3 == 0 ? OomKillEvent(Pod("dev", "x", "c"), i)
                            : OomKillEvent(Pod("prod", "web-1", "app", {{"app", "web"}}), i));
  }
  ASSERT_EQ(py.Wait(absl::Seconds(30)), 0) << py.err();
  const auto lines = Lines(py.out());
  ASSERT_EQ(lines.size(), 300u) << py.err();
  uint64_t want_pid = 1;
  for (const std::string& line : lines) {
    auto e = nlohmann::json::parse(line);
    if (want_pid % 3 == 0) ++want_pid;
    EXPECT_EQ(e["oom_kill"]["victim_pid"], want_pid);
    EXPECT_EQ(e["seq"], std::to_string(want_pid));
    EXPECT_EQ(e["node"], "node-a");
    EXPECT_EQ(e["identity"]["labels"]["app"], "web");
    ++want_pid;
  }
  EXPECT_GT(server_->stats().events_sent_total, 0u);
  EXPECT_TRUE(WaitSubscribers(0));
}

TEST_F(ApiServerTest, PythonClientTimesOutWithExitCode3) {
  StartServer();
  Subprocess py({"/usr/bin/python3", kClientPy, "subscribe", "--address", server_->address(),
                 "--count", "1", "--timeout", "0.5"},
                dir_.path(), "py");
  EXPECT_EQ(py.Wait(absl::Seconds(30)), 3) << py.err();
}

TEST_F(ApiServerTest, HealthIsServingAndReflectionListsTheService) {
  StartServer();
  for (const std::string service : {"", "tapio.v1.TapioService"}) {
    Subprocess health({"/usr/bin/python3", kClientPy, "health", "--address", server_->address(),
                       "--service", service},
                      dir_.path(), "health");
    ASSERT_EQ(health.Wait(absl::Seconds(30)), 0) << health.err();
    EXPECT_EQ(nlohmann::json::parse(health.out())["status"], "SERVING") << service;
  }
  Subprocess unknown({"/usr/bin/python3", kClientPy, "health", "--address", server_->address(),
                      "--service", "no.such.Service"},
                     dir_.path(), "unknown");
  EXPECT_EQ(unknown.Wait(absl::Seconds(30)), 1);
  EXPECT_THAT(unknown.err(), HasSubstr("NOT_FOUND"));

  Subprocess services({"/usr/bin/python3", kClientPy, "services", "--address", server_->address()},
                      dir_.path(), "services");
  ASSERT_EQ(services.Wait(absl::Seconds(30)), 0) << services.err();
  auto names = nlohmann::json::parse(services.out())["services"];
  EXPECT_THAT(names.get<std::vector<std::string>>(),
              ::testing::IsSupersetOf({"tapio.v1.TapioService", "grpc.health.v1.Health"}));
}

// --- mTLS on TCP with certificates made by openssl during the test ---

class MtlsTest : public ApiServerTest {
 protected:
  void MakeCerts() {
    const std::string script = absl::StrCat(
        "set -e; cd ", dir_.path(), "\n",
        "ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n",
        "openssl req -x509 $ec -keyout ca.key -out ca.crt -days 1 -subj /CN=tapio-test-ca\n",
        "openssl req $ec -keyout server.key -out server.csr -subj /CN=localhost\n",
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext\n",
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 "
        "-extfile server.ext -out server.crt\n",
        "openssl req $ec -keyout client.key -out client.csr -subj /CN=tapio-client\n",
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 "
        "-out client.crt\n",
        "openssl req -x509 $ec -keyout rogue.key -out rogue.crt -days 1 -subj /CN=rogue\n");
    Subprocess sh({"/bin/sh", "-c", script}, dir_.path(), "openssl");
    ASSERT_EQ(sh.Wait(absl::Seconds(60)), 0) << sh.err();
  }
  std::string File(const std::string& name) {
    return testing::ReadWholeFile(dir_.path() + "/" + name);
  }
  grpc::Status CallInfo(const std::string& cert, const std::string& key) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = File("ca.crt");
    ssl.pem_cert_chain = cert;
    ssl.pem_private_key = key;
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    auto stub = v1::TapioService::NewStub(
        grpc::CreateCustomChannel(server_->address(), grpc::SslCredentials(ssl), args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::AgentInfo info;
    return stub->GetAgentInfo(&ctx, v1::GetAgentInfoRequest(), &info);
  }
};

TEST_F(MtlsTest, GoodClientCertIsAcceptedAndMissingOrForeignOnesRefused) {
  MakeCerts();
  options_.grpc_address = "127.0.0.1:0";
  options_.tls_cert_path = dir_.path() + "/server.crt";
  options_.tls_key_path = dir_.path() + "/server.key";
  options_.tls_client_ca_path = dir_.path() + "/ca.crt";
  StartServer();
  grpc::Status good = CallInfo(File("client.crt"), File("client.key"));
  EXPECT_TRUE(good.ok()) << good.error_message();
  grpc::Status none = CallInfo("", "");
  EXPECT_FALSE(none.ok());
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAVAILABLE) << none.error_message();
  grpc::Status rogue = CallInfo(File("rogue.crt"), File("rogue.key"));
  EXPECT_FALSE(rogue.ok());
  // Plaintext to the TLS port fails too.
  auto plain = v1::TapioService::NewStub(
      grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::AgentInfo info;
  EXPECT_FALSE(plain->GetAgentInfo(&ctx, v1::GetAgentInfoRequest(), &info).ok());

  // tapioctl with the client certificate.
  Subprocess ctl(
      {kTapioctl, "info", "--address=" + server_->address(), "--tls_ca=" + dir_.path() + "/ca.crt",
       "--tls_cert=" + dir_.path() + "/client.crt", "--tls_key=" + dir_.path() + "/client.key",
       "--tls_server_name=localhost"},
      dir_.path(), "ctl");
  EXPECT_EQ(ctl.Wait(absl::Seconds(20)), 0) << ctl.err();
  EXPECT_THAT(ctl.out(), HasSubstr("0.1.0-test"));
}

}  // namespace
}  // namespace tapio::api
