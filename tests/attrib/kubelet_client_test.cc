// KubeletClient against an in-process HTTPS server (OpenSSL, 127.0.0.1, certificates made with
// the openssl CLI per test run) that answers like the kubelet's /pods, including broken replies.
#include "agent/attrib/kubelet_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tapio::attrib {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Certificates for one test run: a CA, a server cert for IP 127.0.0.1 signed by it, and an
// unrelated second CA. Removed in the destructor.
class TestPki {
 public:
  TestPki() {
    char tmpl[] = "/tmp/tapio-kubelet-test.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    const std::string d = dir_;
    std::string script = absl::StrCat(
        "set -e; cd ", d, ";",
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "
        "/CN=test-ca -keyout ca.key -out ca.crt;",
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "
        "/CN=other-ca -keyout other.key -out other.crt;",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=kubelet "
        "-keyout server.key -out server.csr;",
        "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext;",
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile san.ext -out server.crt;",
        "printf 'token-one\\n' > token");
    ok_ = std::system(absl::StrCat("(", script, ") >/dev/null 2>&1").c_str()) == 0;
  }
  ~TestPki() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
  bool ok_ = false;
};

// One-connection-at-a-time HTTPS/1.1 server. `handler(request_head)` returns the raw bytes to
// send (status line, headers, body) and may ask to stall before answering.
class TestHttpsServer {
 public:
  struct Reply {
    std::string raw;
    absl::Duration delay = absl::ZeroDuration();
  };
  using Handler = std::function<Reply(const std::string& head)>;

  TestHttpsServer(const TestPki& pki, Handler handler) : handler_(std::move(handler)) {
    ::signal(SIGPIPE, SIG_IGN);  // the client may hang up first (timeouts, size limit)
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_chain_file(ctx_, pki.path("server.crt").c_str());
    SSL_CTX_use_PrivateKey_file(ctx_, pki.path("server.key").c_str(), SSL_FILETYPE_PEM);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(fd_, 8);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~TestHttpsServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  std::string url() const { return absl::StrCat("https://127.0.0.1:", port_, "/pods"); }
  std::string last_head() {
    absl::MutexLock l(&mu_);
    return last_head_;
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) == 1) {
        std::string head;
        char buf[4096];
        while (!absl::StrContains(head, "\r\n\r\n")) {
          int n = SSL_read(ssl, buf, sizeof(buf));
          if (n <= 0) break;
          head.append(buf, n);
        }
        {
          absl::MutexLock l(&mu_);
          last_head_ = head;
        }
        Reply r = handler_(head);
        absl::Time until = absl::Now() + r.delay;
        while (!stop_ && absl::Now() < until) absl::SleepFor(absl::Milliseconds(10));
        size_t off = 0;
        while (off < r.raw.size()) {
          int n = SSL_write(ssl, r.raw.data() + off, static_cast<int>(r.raw.size() - off));
          if (n <= 0) break;
          off += n;
        }
        SSL_shutdown(ssl);
      }
      SSL_free(ssl);
      ::close(c);
    }
  }

  Handler handler_;
  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Mutex mu_;
  std::string last_head_ ABSL_GUARDED_BY(mu_);
};

std::string Http(int code, const std::string& body, const std::string& extra = "") {
  return absl::StrCat("HTTP/1.1 ", code,
                      " X\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
                      "\r\nConnection: close\r\n", extra, "\r\n", body);
}

class KubeletClientTest : public ::testing::Test {
 protected:
  // One PKI for the suite (key generation is the slow part); each test resets the token.
  static void SetUpTestSuite() { pki_ = new TestPki(); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(pki_->ok()) << "openssl CLI failed";
    std::ofstream(pki_->path("token")) << "token-one\n";
  }
  std::unique_ptr<KubeletClient> Client(const std::string& url, const std::string& ca = "ca.crt",
                                        absl::Duration timeout = absl::Seconds(5),
                                        size_t max_body = 64 << 20) {
    KubeletClient::Options o;
    o.url = url;
    o.ca_path = pki_->path(ca);
    o.token_path = pki_->path("token");
    o.timeout = timeout;
    o.max_body_bytes = max_body;
    auto c = KubeletClient::Create(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }
  static TestPki* pki_;
};
TestPki* KubeletClientTest::pki_ = nullptr;

TEST_F(KubeletClientTest, ListsPodsWithOwnerWorkloadAndMemory) {
  const std::string body = ReadFile("tests/fixtures/attrib/kubelet_pods.json");
  ASSERT_FALSE(body.empty());
  TestHttpsServer server(*pki_, [&](const std::string& head) {
    if (!absl::StartsWith(head, "GET /pods ")) return TestHttpsServer::Reply{Http(404, "{}")};
    return TestHttpsServer::Reply{Http(200, body)};
  });
  auto client = Client(server.url());
  ASSERT_NE(client, nullptr);
  auto list = client->ListPods();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->pods.size(), 3u);
  EXPECT_EQ(list->skipped_items, 2u);
  EXPECT_THAT(list->errors,
              ::testing::ElementsAre(::testing::HasSubstr("metadata.uid"),
                                     ::testing::HasSubstr("resources.limits.memory")));
  const KubeletPod& web = list->pods[0];
  EXPECT_EQ(web.name, "web-7d9f8b6c5d-x2x9q");
  EXPECT_EQ(web.pod_namespace, "shop");
  EXPECT_EQ(web.uid, "5e3f7a1c-2b4d-4e6f-8a9b-0c1d2e3f4a5b");
  EXPECT_EQ(web.node_name, "node-a");
  EXPECT_EQ(web.qos_class, "burstable");
  EXPECT_EQ(web.owner_kind, "ReplicaSet");
  EXPECT_EQ(web.owner_name, "web-7d9f8b6c5d");
  EXPECT_EQ(web.workload_kind, "Deployment");
  EXPECT_EQ(web.workload_name, "web");
  ASSERT_EQ(web.containers.size(), 3u);
  EXPECT_EQ(web.containers[0].name, "migrate");
  EXPECT_EQ(web.containers[0].memory_limit_bytes, 64 << 20);
  EXPECT_EQ(web.containers[1].name, "nginx");
  EXPECT_EQ(web.containers[1].memory_request_bytes, 128 << 20);
  EXPECT_EQ(web.containers[1].memory_limit_bytes, 256 << 20);
  EXPECT_EQ(web.containers[1].container_id,
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  EXPECT_EQ(web.containers[2].memory_limit_bytes, 0);
  const KubeletPod& db = list->pods[1];
  EXPECT_EQ(db.owner_kind, "StatefulSet");  // the controller reference, not the first one
  EXPECT_EQ(db.workload_kind, "StatefulSet");
  EXPECT_EQ(db.containers[0].memory_request_bytes, int64_t{1} << 30);
  EXPECT_EQ(list->pods[2].owner_kind, "");  // static pod: no owner
  EXPECT_EQ(list->pods[2].qos_class, "besteffort");
  // Sent the service-account token.
  EXPECT_THAT(server.last_head(), ::testing::HasSubstr("Authorization: Bearer token-one\r\n"));
}

TEST_F(KubeletClientTest, RereadsTheTokenOnEveryRequest) {
  TestHttpsServer server(*pki_, [](const std::string& head) {
    bool ok = absl::StrContains(head, "Authorization: Bearer token-two\r\n");
    return TestHttpsServer::Reply{ok ? Http(200, R"({"items":[]})") : Http(401, "Unauthorized")};
  });
  auto client = Client(server.url());
  EXPECT_EQ(client->ListPods().status().code(), absl::StatusCode::kPermissionDenied);
  std::ofstream(pki_->path("token")) << "token-two\n";  // projected token rotated
  auto list = client->ListPods();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->pods.empty());
}

TEST_F(KubeletClientTest, UntrustedServerCertificateIsRejected) {
  TestHttpsServer server(*pki_, [](const std::string&) {
    return TestHttpsServer::Reply{Http(200, R"({"items":[]})")};
  });
  auto client = Client(server.url(), "other.crt");
  auto list = client->ListPods();
  EXPECT_EQ(list.status().code(), absl::StatusCode::kUnavailable) << list.status();
}

TEST_F(KubeletClientTest, ServerErrorIsUnavailableNamingTheStatus) {
  TestHttpsServer server(
      *pki_, [](const std::string&) { return TestHttpsServer::Reply{Http(500, "oops")}; });
  auto list = Client(server.url())->ListPods();
  EXPECT_EQ(list.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(list.status().message()), ::testing::HasSubstr("HTTP 500"));
}

TEST_F(KubeletClientTest, ConnectionClosedMidBodyIsAnError) {
  const std::string body = ReadFile("tests/fixtures/attrib/kubelet_pods.json");
  TestHttpsServer server(*pki_, [&](const std::string&) {
    std::string full = Http(200, body);
    return TestHttpsServer::Reply{full.substr(0, full.size() - body.size() / 2)};
  });
  auto list = Client(server.url())->ListPods();
  EXPECT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), absl::StatusCode::kUnavailable) << list.status();
}

TEST_F(KubeletClientTest, TruncatedJsonIsInvalidArgument) {
  const std::string body = ReadFile("tests/fixtures/attrib/kubelet_pods.json");
  TestHttpsServer server(*pki_, [&](const std::string&) {
    return TestHttpsServer::Reply{Http(200, body.substr(0, body.size() / 2))};
  });
  auto list = Client(server.url())->ListPods();
  EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument) << list.status();
}

TEST_F(KubeletClientTest, ChunkedReplyIsAccepted) {
  TestHttpsServer server(*pki_, [](const std::string&) {
    std::string b = R"({"items":[{"metadata":{"name":"a","uid":"u1"}}]})";
    std::string chunked =
        absl::StrCat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                     absl::Hex(10), "\r\n", b.substr(0, 10), "\r\n", absl::Hex(b.size() - 10),
                     "\r\n", b.substr(10), "\r\n0\r\n\r\n");
    return TestHttpsServer::Reply{chunked};
  });
  auto list = Client(server.url())->ListPods();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->pods.size(), 1u);
  EXPECT_EQ(list->pods[0].uid, "u1");
}

TEST_F(KubeletClientTest, OversizedReplyIsRefused) {
  std::string big = absl::StrCat(R"({"items":[)", std::string(0, ' '));
  for (int i = 0; i < 2000; ++i)
    absl::StrAppend(&big, i ? "," : "", R"({"metadata":{"name":"p","uid":"u"}})");
  big += "]}";
  TestHttpsServer server(
      *pki_, [&](const std::string&) { return TestHttpsServer::Reply{Http(200, big)}; });
  auto list = Client(server.url(), "ca.crt", absl::Seconds(5), 16 << 10)->ListPods();
  EXPECT_EQ(list.status().code(), absl::StatusCode::kResourceExhausted) << list.status();
}

TEST_F(KubeletClientTest, SlowKubeletTimesOut) {
  TestHttpsServer server(*pki_, [](const std::string&) {
    return TestHttpsServer::Reply{Http(200, R"({"items":[]})"), absl::Seconds(3)};
  });
  absl::Time start = absl::Now();
  auto list = Client(server.url(), "ca.crt", absl::Milliseconds(300))->ListPods();
  EXPECT_EQ(list.status().code(), absl::StatusCode::kUnavailable) << list.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(KubeletClientTest, MissingTokenFileIsFailedPrecondition) {
  KubeletClient::Options o;
  o.url = "https://127.0.0.1:1/pods";
  o.token_path = "/nonexistent/token";
  auto c = KubeletClient::Create(o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->ListPods().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(KubeletClientCreate, UrlComesFromTheNodeNameEnvironment) {
  KubeletClient::Options o;
  o.node_name_env = "TAPIO_TEST_NODE_NAME_UNSET_XYZ";
  EXPECT_EQ(KubeletClient::Create(o).status().code(), absl::StatusCode::kFailedPrecondition);
  ::setenv("TAPIO_TEST_NODE_NAME", "node-a", 1);
  o.node_name_env = "TAPIO_TEST_NODE_NAME";
  auto c = KubeletClient::Create(o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->url(), "https://node-a:10250/pods");
  ::unsetenv("TAPIO_TEST_NODE_NAME");
  o.url = "http://node-a:10255/pods";
  EXPECT_EQ(KubeletClient::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

struct QuantityCase {
  const char* text;
  int64_t bytes;
};

TEST(ParseQuantityBytes, KubernetesQuantitiesBecomeBytes) {
  for (const QuantityCase& c : std::initializer_list<QuantityCase>{{"134217728", 134217728},
                                                                   {"128Mi", 134217728},
                                                                   {"1Gi", 1073741824},
                                                                   {"1.5Gi", 1610612736},
                                                                   {"100M", 100000000},
                                                                   {"1k", 1000},
                                                                   {"2Ki", 2048},
                                                                   {"1e9", 1000000000},
                                                                   {"1E3", 1000},
                                                                   {"500m", 1},
                                                                   {"0", 0},
                                                                   {" 64Mi ", 67108864},
                                                                   {"1Ti", int64_t{1} << 40}}) {
    auto v = ParseQuantityBytes(c.text);
    ASSERT_TRUE(v.ok()) << c.text << ": " << v.status();
    EXPECT_EQ(*v, c.bytes) << c.text;
  }
}

TEST(ParseQuantityBytes, GarbageIsRejected) {
  for (const char* bad : {"", "lots", "12Q", "Mi", "1.2.3", "--1", "1e", "-5Mi", "1Gie3"}) {
    EXPECT_EQ(ParseQuantityBytes(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ParseKubeletPods, StructuralErrorsAreInvalidArgument) {
  EXPECT_EQ(ParseKubeletPods("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKubeletPods("[]").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKubeletPods(R"({"kind":"PodList"})").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKubeletPods(R"({"items":{}})").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto empty = ParseKubeletPods(R"({"items":null})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->pods.empty());
}

TEST(ParseKubeletPods, WronglyTypedItemFieldsSkipTheItemNamingTheField) {
  auto list = ParseKubeletPods(
      R"({"items":[1, {"metadata":{"name":"a","uid":"u","ownerReferences":{}}},
                     {"metadata":{"name":"b","uid":"v"},"spec":{"containers":[{"resources":{}}]}},
                     {"metadata":{"name":"c","uid":"w"},"spec":{"containers":[{"name":"x","resources":{"limits":{"memory":5}}}]}},
                     {"metadata":{"name":"ok","uid":"z"}}]})");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->pods.size(), 1u);
  EXPECT_EQ(list->skipped_items, 4u);
  EXPECT_THAT(list->errors,
              ::testing::ElementsAre(::testing::HasSubstr("items[0]: metadata"),
                                     ::testing::HasSubstr("ownerReferences"),
                                     ::testing::HasSubstr("name missing"),
                                     ::testing::HasSubstr("limits.memory is not a string")));
}

TEST(KubeletPodCache, JoinsByPodUidAndKeepsTheLastGoodViewOnFailure) {
  const std::string body = ReadFile("tests/fixtures/attrib/kubelet_pods.json");
  bool fail = false;
  KubeletPodCache cache([&]() -> absl::StatusOr<KubeletPodList> {
    if (fail) return absl::UnavailableError("kubelet down");
    return ParseKubeletPods(body);
  });
  EXPECT_FALSE(cache.Pod("5e3f7a1c-2b4d-4e6f-8a9b-0c1d2e3f4a5b").has_value());  // nothing yet
  ASSERT_TRUE(cache.Refresh().ok());
  auto pod = cache.Pod("5e3f7a1c-2b4d-4e6f-8a9b-0c1d2e3f4a5b");
  ASSERT_TRUE(pod.has_value());
  EXPECT_EQ(pod->workload_kind, "Deployment");
  EXPECT_EQ(pod->workload_name, "web");
  auto c = cache.Container("5e3f7a1c-2b4d-4e6f-8a9b-0c1d2e3f4a5b", "nginx");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->memory_limit_bytes, 256 << 20);
  EXPECT_FALSE(cache.Container("5e3f7a1c-2b4d-4e6f-8a9b-0c1d2e3f4a5b", "nope").has_value());
  EXPECT_FALSE(cache.Pod("unknown").has_value());
  fail = true;
  EXPECT_EQ(cache.Refresh().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(cache.Pod("5e3f7a1c-2b4d-4e6f-8a9b-0c1d2e3f4a5b").has_value());  // kept
  KubeletPodCache::Stats s = cache.stats();
  EXPECT_EQ(s.refreshes_total, 2u);
  EXPECT_EQ(s.refresh_failures_total, 1u);
  EXPECT_EQ(s.skipped_items_total, 2u);
  EXPECT_EQ(s.pods, 3u);
}

}  // namespace
}  // namespace tapio::attrib
