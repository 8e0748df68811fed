// Container probes: spec parsing, the result state machine, the httpGet and tcpSocket handlers
// against real servers on loopback (HTTP and HTTPS), the Prober's workers, and exec probes run
// in a real container (runc under conmon; needs root, runc, conmon and busybox-static, else
// those tests skip with the reason).
#include "agent/probes.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "agent/runtime/runtime.h"
#include "testing/test_server.h"

namespace skiff::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using skiff::testing::eventually;
using namespace std::chrono_literals;

// A loopback server on a free port: each connection gets `status` (or, when `silent`, no
// answer until the server stops). With `tls`, it speaks HTTPS with a self-signed certificate.
// Keeps the requests it read.
class LoopbackHttpServer {
 public:
  LoopbackHttpServer(int status, bool tls = false, bool silent = false)
      : status_(status), silent_(silent) {
    if (tls) make_tls_context();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~LoopbackHttpServer() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
      cv_.notify_all();
    }
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    ::close(fd_);
    if (ctx_) SSL_CTX_free(ctx_);
  }

  int port() const { return port_; }
  void set_status(int status) { status_ = status; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void make_tls_context() {
    ctx_ = SSL_CTX_new(TLS_server_method());
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("probe-test"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    SSL_CTX_use_certificate(ctx_, cert);
    SSL_CTX_use_PrivateKey(ctx_, key);
    X509_free(cert);
    EVP_PKEY_free(key);
  }

  void serve() {
    while (true) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      SSL* ssl = nullptr;
      if (ctx_) {
        ssl = SSL_new(ctx_);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) != 1) {
          SSL_free(ssl);
          ::close(c);
          continue;
        }
      }
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        int n =
            ssl ? SSL_read(ssl, buf, sizeof(buf)) : static_cast<int>(::read(c, buf, sizeof(buf)));
        if (n <= 0) break;
        req.append(buf, n);
      }
      {
        std::unique_lock<std::mutex> l(mu_);
        requests_.push_back(req);
        if (silent_) cv_.wait(l, [&] { return stopping_; });
      }
      std::string resp = "HTTP/1.1 " + std::to_string(status_.load()) +
                         " Status\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      if (ssl) {
        SSL_write(ssl, resp.data(), static_cast<int>(resp.size()));
        SSL_shutdown(ssl);
        SSL_free(ssl);
      } else {
        (void)!::write(c, resp.data(), resp.size());
      }
      ::close(c);
    }
  }

  std::atomic<int> status_;
  const bool silent_;
  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::string> requests_;
};

// A loopback port nothing listens on (bound, then closed).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// --- parsing ---

TEST(ParseProbeTest, AppliesTheApiDefaults) {
  json c = {{"name", "app"}, {"readinessProbe", {{"exec", {{"command", {"true"}}}}}}};
  auto p = parse_probe(c, ProbeKind::kReadiness);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->handler, ProbeSpec::Handler::kExec);
  EXPECT_EQ(p->command, std::vector<std::string>{"true"});
  EXPECT_EQ(p->initial_delay_seconds, 0);
  EXPECT_EQ(p->period_seconds, 10);
  EXPECT_EQ(p->timeout_seconds, 1);
  EXPECT_EQ(p->success_threshold, 1);
  EXPECT_EQ(p->failure_threshold, 3);
  EXPECT_TRUE(p->error.empty());
  EXPECT_FALSE(parse_probe(c, ProbeKind::kLiveness).has_value());
}

TEST(ParseProbeTest, ResolvesNamedPortsFromTheContainer) {
  json c = {{"name", "web"},
            {"ports", {{{"name", "http"}, {"containerPort", 8080}}}},
            {"livenessProbe",
             {{"httpGet",
               {{"port", "http"},
                {"path", "healthz"},
                {"scheme", "HTTPS"},
                {"httpHeaders", {{{"name", "X-Probe"}, {"value", "1"}}}}}},
              {"successThreshold", 3},
              {"terminationGracePeriodSeconds", 7}}},
            {"readinessProbe", {{"tcpSocket", {{"port", "metrics"}}}}}};
  auto live = parse_probe(c, ProbeKind::kLiveness);
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->handler, ProbeSpec::Handler::kHttpGet);
  EXPECT_EQ(live->port, 8080);
  EXPECT_EQ(live->path, "/healthz");
  EXPECT_EQ(live->scheme, "HTTPS");
  ASSERT_EQ(live->http_headers.size(), 1u);
  EXPECT_EQ(live->http_headers[0].first, "X-Probe");
  EXPECT_EQ(live->success_threshold, 1) << "liveness probes succeed after one success";
  EXPECT_EQ(live->termination_grace_period_seconds, std::optional<int64_t>(7));
  auto ready = parse_probe(c, ProbeKind::kReadiness);
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->handler, ProbeSpec::Handler::kTcpSocket);
  EXPECT_EQ(ready->error, "port metrics not found");
}

TEST(ParseProbeTest, GrpcAndHandlerlessProbesAreErrors) {
  json c = {{"name", "app"},
            {"startupProbe", {{"grpc", {{"port", 9000}}}}},
            {"livenessProbe", {{"periodSeconds", 5}}}};
  EXPECT_NE(parse_probe(c, ProbeKind::kStartup)->error.find("not supported"), std::string::npos);
  EXPECT_EQ(parse_probe(c, ProbeKind::kLiveness)->error, "missing probe handler");
}

// --- state ---

ProbeSpec spec_with(int success, int failure, int delay = 0) {
  ProbeSpec s;
  s.success_threshold = success;
  s.failure_threshold = failure;
  s.initial_delay_seconds = delay;
  return s;
}

TEST(ProbeStateTest, ReadinessFlipsOnlyAfterTheThresholds) {
  ProbeState s(ProbeKind::kReadiness, spec_with(2, 3));
  EXPECT_EQ(s.result(), ProbeResult::kFailure) << "not ready until the probe succeeds";
  EXPECT_FALSE(s.record(ProbeResult::kSuccess));
  EXPECT_FALSE(s.record(ProbeResult::kError)) << "errors are discarded";
  EXPECT_TRUE(s.record(ProbeResult::kSuccess));
  EXPECT_EQ(s.result(), ProbeResult::kSuccess);
  EXPECT_FALSE(s.record(ProbeResult::kFailure));
  EXPECT_FALSE(s.record(ProbeResult::kFailure));
  EXPECT_FALSE(s.record(ProbeResult::kSuccess)) << "a success breaks the run of failures";
  EXPECT_FALSE(s.record(ProbeResult::kFailure));
  EXPECT_FALSE(s.record(ProbeResult::kFailure));
  EXPECT_TRUE(s.record(ProbeResult::kFailure));
  EXPECT_EQ(s.result(), ProbeResult::kFailure);
  EXPECT_FALSE(s.on_hold()) << "readiness keeps probing";
}

TEST(ProbeStateTest, LivenessFailureHoldsUntilTheContainerIsReplaced) {
  ProbeState s(ProbeKind::kLiveness, spec_with(1, 2));
  TimePoint start = now();
  EXPECT_EQ(s.result(), ProbeResult::kSuccess);
  EXPECT_TRUE(s.should_probe(start, start, true));
  EXPECT_FALSE(s.record(ProbeResult::kFailure));
  EXPECT_TRUE(s.record(ProbeResult::kFailure));
  EXPECT_EQ(s.result(), ProbeResult::kFailure);
  EXPECT_TRUE(s.on_hold());
  EXPECT_FALSE(s.should_probe(start + 1h, start, true));
  EXPECT_FALSE(s.record(ProbeResult::kSuccess));
  EXPECT_EQ(s.result(), ProbeResult::kFailure);
}

TEST(ProbeStateTest, InitialDelayAndStartupGateTheTicks) {
  TimePoint start = now();
  ProbeState live(ProbeKind::kLiveness, spec_with(1, 3, 15));
  EXPECT_FALSE(live.should_probe(start + 14s, start, true));
  EXPECT_TRUE(live.should_probe(start + 15s, start, true));
  EXPECT_FALSE(live.should_probe(start + 60s, start, false)) << "the startup probe runs first";
  ProbeState startup(ProbeKind::kStartup, spec_with(1, 3));
  EXPECT_EQ(startup.result(), ProbeResult::kError) << "unknown until probed";
  EXPECT_TRUE(startup.should_probe(start, start, false));
  EXPECT_FALSE(startup.should_probe(start, start, true)) << "done once started";
}

// --- handlers ---

TEST(HttpProbeTest, SucceedsBelow400AndReportsTheStatusCodeOtherwise) {
  LoopbackHttpServer server(200);
  auto ok = http_probe("HTTP", "127.0.0.1", server.port(), "/healthz",
                       {{"X-Custom", "yes"}, {"Host", "probe.example"}}, 2s);
  EXPECT_EQ(ok.result, ProbeResult::kSuccess) << ok.message;
  ASSERT_EQ(server.requests().size(), 1u);
  const std::string req = server.requests()[0];
  EXPECT_EQ(req.rfind("GET /healthz HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("X-Custom: yes\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("Host: probe.example\r\n"), std::string::npos) << req;
  EXPECT_EQ(req.find("Host: 127.0.0.1"), std::string::npos) << req;
  EXPECT_NE(req.find("User-Agent: kube-probe/"), std::string::npos) << req;

  server.set_status(302);
  EXPECT_EQ(http_probe("HTTP", "127.0.0.1", server.port(), "/", {}, 2s).result,
            ProbeResult::kSuccess);
  server.set_status(500);
  auto bad = http_probe("HTTP", "127.0.0.1", server.port(), "/", {}, 2s);
  EXPECT_EQ(bad.result, ProbeResult::kFailure);
  EXPECT_EQ(bad.message, "HTTP probe failed with statuscode: 500");
}

TEST(HttpProbeTest, RefusedConnectionFailsWithGoStyleMessage) {
  int port = closed_port();
  auto r = http_probe("HTTP", "127.0.0.1", port, "/", {}, 2s);
  EXPECT_EQ(r.result, ProbeResult::kFailure);
  EXPECT_EQ(r.message, "Get \"http://127.0.0.1:" + std::to_string(port) +
                           "/\": dial tcp 127.0.0.1:" + std::to_string(port) +
                           ": connect: connection refused");
}

TEST(HttpProbeTest, ServerThatNeverAnswersFailsWithTheTimeout) {
  LoopbackHttpServer server(200, false, /*silent=*/true);
  auto r = http_probe("HTTP", "127.0.0.1", server.port(), "/", {}, 300ms);
  EXPECT_EQ(r.result, ProbeResult::kFailure);
  EXPECT_NE(r.message.find("Client.Timeout exceeded"), std::string::npos) << r.message;
}

TEST(HttpProbeTest, HttpsSkipsCertificateVerification) {
  LoopbackHttpServer server(204, /*tls=*/true);
  auto r = http_probe("HTTPS", "127.0.0.1", server.port(), "/tls", {}, 5s);
  EXPECT_EQ(r.result, ProbeResult::kSuccess) << r.message;
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].rfind("GET /tls HTTP/1.1", 0), 0u);
  server.set_status(503);
  EXPECT_EQ(http_probe("HTTPS", "127.0.0.1", server.port(), "/", {}, 5s).message,
            "HTTP probe failed with statuscode: 503");
}

TEST(TcpProbeTest, ConnectsToAListeningPortAndFailsOnAClosedOne) {
  LoopbackHttpServer server(200);
  EXPECT_EQ(tcp_probe("127.0.0.1", server.port(), 2s).result, ProbeResult::kSuccess);
  int port = closed_port();
  auto r = tcp_probe("127.0.0.1", port, 2s);
  EXPECT_EQ(r.result, ProbeResult::kFailure);
  EXPECT_EQ(r.message,
            "dial tcp 127.0.0.1:" + std::to_string(port) + ": connect: connection refused");
}

// --- the prober, with an exec callback the test controls ---

ProbeSpec exec_spec(const std::string& command, int failure_threshold = 1) {
  ProbeSpec s;
  s.handler = ProbeSpec::Handler::kExec;
  s.command = {command};
  s.period_seconds = 1;
  s.failure_threshold = failure_threshold;
  return s;
}

// Records what the Prober calls back with; answers exec probes by command name.
struct ProberHarness {
  ProberHarness() {
    ProberOptions o;
    o.exec = [this](const std::string&, const std::vector<std::string>& cmd,
                    std::chrono::milliseconds) -> Result<runtime::ExecResult> {
      std::lock_guard<std::mutex> l(mu);
      ++calls[cmd[0]];
      runtime::ExecResult r;
      if (cmd[0] == "slow") return Status(StatusCode::kTimeout, "command timed out");
      r.exit_code = passing[cmd[0]] ? 0 : 1;
      if (r.exit_code != 0) r.stdout_data = cmd[0] + " says no\n";
      return r;
    };
    o.on_unhealthy = [this](const ProbeTarget& t, const std::string& message) {
      std::lock_guard<std::mutex> l(mu);
      unhealthy.push_back(t.container_name + ": " + message);
    };
    o.on_change = [this](const std::string& uid) {
      std::lock_guard<std::mutex> l(mu);
      changed.push_back(uid);
    };
    prober = std::make_unique<Prober>(std::move(o));
  }

  void set_passing(const std::string& cmd, bool pass) {
    std::lock_guard<std::mutex> l(mu);
    passing[cmd] = pass;
  }
  int call_count(const std::string& cmd) {
    std::lock_guard<std::mutex> l(mu);
    return calls[cmd];
  }
  bool saw_unhealthy(const std::string& text) {
    std::lock_guard<std::mutex> l(mu);
    for (const auto& u : unhealthy) {
      if (u == text) return true;
    }
    return false;
  }

  ProbeTarget target(const std::string& id = "pod1_app_0") {
    ProbeTarget t;
    t.pod_uid = "pod1";
    t.pod_namespace = "default";
    t.pod_name = "p";
    t.container_name = "app";
    t.container_id = id;
    t.pod_ip = "127.0.0.1";
    t.started_at = now();
    return t;
  }
  ContainerProbeStatus status(const std::string& id = "pod1_app_0") {
    return prober->status("pod1", "app", id);
  }

  std::mutex mu;
  std::map<std::string, bool> passing;
  std::map<std::string, int> calls;
  std::vector<std::string> unhealthy;
  std::vector<std::string> changed;
  std::unique_ptr<Prober> prober;
};

TEST(ProberTest, ContainerWithoutProbesIsReadyOnceRunning) {
  ProberHarness h;
  EXPECT_FALSE(h.status().ready) << "unknown containers are not ready";
  h.prober->update(h.target());
  EXPECT_TRUE(h.status().started);
  EXPECT_TRUE(h.status().ready);
  EXPECT_FALSE(h.status("pod1_app_1").ready) << "another attempt of the container";
  h.prober->remove_container("pod1", "app");
  EXPECT_FALSE(h.status().ready);
}

TEST(ProberTest, ReadinessFollowsTheProbeBothWays) {
  ProberHarness h;
  ProbeTarget t = h.target();
  t.readiness = exec_spec("ready");
  h.prober->update(t);
  EXPECT_TRUE(h.status().started);
  EXPECT_FALSE(h.status().ready) << "not ready before the first success";
  EXPECT_TRUE(
      eventually([&] { return h.saw_unhealthy("app: Readiness probe failed: ready says no\n"); }));
  h.set_passing("ready", true);
  ASSERT_TRUE(eventually([&] { return h.status().ready; }, 10s));
  h.set_passing("ready", false);
  ASSERT_TRUE(eventually([&] { return !h.status().ready; }, 10s));
  EXPECT_FALSE(h.status().failed.has_value()) << "readiness never kills";
  std::lock_guard<std::mutex> l(h.mu);
  EXPECT_GE(h.changed.size(), 2u);
  EXPECT_EQ(h.changed[0], "pod1");
}

TEST(ProberTest, LivenessFailurePastTheThresholdAsksForAKillWithTheProbesGrace) {
  ProberHarness h;
  ProbeTarget t = h.target();
  t.liveness = exec_spec("alive", 2);
  t.liveness->termination_grace_period_seconds = 5;
  h.prober->update(t);
  EXPECT_TRUE(h.status().ready) << "liveness alone does not gate readiness";
  ASSERT_TRUE(eventually([&] { return h.status().failed.has_value(); }, 10s));
  EXPECT_EQ(*h.status().failed, ProbeKind::kLiveness);
  EXPECT_EQ(h.status().termination_grace_period_seconds, std::optional<int64_t>(5));
  EXPECT_GE(h.call_count("alive"), 2) << "failureThreshold 2 needs two failures";
  EXPECT_TRUE(h.saw_unhealthy("app: Liveness probe failed: alive says no\n"));

  // The restarted container (a new id) is probed afresh, healthy until proven otherwise.
  h.set_passing("alive", true);
  h.prober->update(h.target("pod1_app_1"));
  EXPECT_FALSE(h.status("pod1_app_1").failed.has_value());
  EXPECT_FALSE(h.status("pod1_app_0").ready);
}

TEST(ProberTest, ExecTimeoutIsAFailure) {
  ProberHarness h;
  ProbeTarget t = h.target();
  t.liveness = exec_spec("slow", 1);
  h.prober->update(t);
  ASSERT_TRUE(eventually([&] { return h.status().failed.has_value(); }, 10s));
  EXPECT_TRUE(h.saw_unhealthy("app: Liveness probe failed: command \"slow\" timed out"));
}

TEST(ProberTest, StartupProbeGatesLivenessAndReadiness) {
  ProberHarness h;
  ProbeTarget t = h.target();
  t.startup = exec_spec("startup", 1000);
  t.liveness = exec_spec("alive", 3);
  t.readiness = exec_spec("ready");
  h.set_passing("alive", true);
  h.set_passing("ready", true);
  h.prober->update(t);
  ASSERT_TRUE(eventually([&] { return h.call_count("startup") >= 2; }, 10s));
  EXPECT_FALSE(h.status().started);
  EXPECT_FALSE(h.status().ready);
  EXPECT_EQ(h.call_count("alive"), 0);
  EXPECT_EQ(h.call_count("ready"), 0);
  h.set_passing("startup", true);
  ASSERT_TRUE(eventually([&] { return h.status().ready; }, 10s));
  EXPECT_TRUE(h.status().started);
  EXPECT_TRUE(eventually([&] { return h.call_count("alive") >= 1; }, 10s));
}

TEST(ProberTest, StartupFailureAsksForAKill) {
  ProberHarness h;
  ProbeTarget t = h.target();
  t.startup = exec_spec("startup", 2);
  h.prober->update(t);
  ASSERT_TRUE(eventually([&] { return h.status().failed.has_value(); }, 10s));
  EXPECT_EQ(*h.status().failed, ProbeKind::kStartup);
  EXPECT_FALSE(h.status().started);
  EXPECT_TRUE(h.saw_unhealthy("app: Startup probe failed: startup says no\n"));
}

TEST(ProberTest, GrpcProbeErrorsWithoutChangingTheResult) {
  ProberHarness h;
  ProbeTarget t = h.target();
  json c = {
      {"name", "app"},
      {"livenessProbe", {{"grpc", {{"port", 9}}}, {"failureThreshold", 1}, {"periodSeconds", 1}}}};
  t.liveness = parse_probe(c, ProbeKind::kLiveness);
  h.prober->update(t);
  ASSERT_TRUE(eventually([&] {
    return h.saw_unhealthy(
        "app: Liveness probe errored: gRPC probes are not supported by this node");
  }));
  EXPECT_FALSE(h.status().failed.has_value());
}

TEST(ProberTest, HttpReadinessAgainstThePodIp) {
  ProberHarness h;
  LoopbackHttpServer server(500);
  json c = {{"name", "app"},
            {"ports", {{{"name", "web"}, {"containerPort", server.port()}}}},
            {"readinessProbe",
             {{"httpGet", {{"port", "web"}, {"path", "/ready"}}},
              {"periodSeconds", 1},
              {"failureThreshold", 1}}}};
  ProbeTarget t = h.target();
  t.readiness = parse_probe(c, ProbeKind::kReadiness);
  h.prober->update(t);
  ASSERT_TRUE(eventually([&] {
    return h.saw_unhealthy("app: Readiness probe failed: HTTP probe failed with statuscode: 500");
  }));
  EXPECT_FALSE(h.status().ready);
  server.set_status(200);
  ASSERT_TRUE(eventually([&] { return h.status().ready; }, 10s));
  EXPECT_EQ(server.requests().back().rfind("GET /ready HTTP/1.1", 0), 0u);
}

// --- exec probes in a real container ---

class ExecProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run containers";
    for (const char* bin : {"/usr/sbin/runc", "/usr/bin/conmon", "/bin/busybox"}) {
      if (::access(bin, X_OK) != 0) GTEST_SKIP() << bin << " is missing (scripts/install-deps.sh)";
    }
    char tmpl[] = "/tmp/skiff-probes-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::random_device rd;
    tag_ = std::to_string(rd() % 100000000);
    std::string rootfs = dir_ + "/image";
    for (const char* d : {"/bin", "/etc", "/tmp", "/proc", "/sys", "/dev"}) {
      fs::create_directories(rootfs + d);
    }
    fs::permissions(rootfs + "/tmp", fs::perms::all | fs::perms::sticky_bit);
    fs::copy_file("/bin/busybox", rootfs + "/bin/busybox");
    for (const char* applet : {"sh", "sleep", "test", "touch", "rm", "echo"}) {
      fs::create_symlink("busybox", rootfs + "/bin/" + applet);
    }
    std::ofstream(rootfs + "/etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n";
    std::ofstream(rootfs + "/etc/group") << "root:x:0:\n";
    runtime::RuntimeOptions ro;
    ro.root_dir = dir_ + "/state";
    auto rt = runtime::ContainerRuntime::open(ro);
    ASSERT_TRUE(rt.ok()) << rt.status().to_string();
    runtime_ = std::move(*rt);
    runtime::ContainerConfig c;
    c.id = "probed-" + tag_;
    c.rootfs.path = rootfs;
    c.args = {"sleep", "3600"};
    c.env = {"PATH=/bin"};
    c.cgroup_parent = "/skiff-probes-" + tag_;
    c.log_path = dir_ + "/probed.log";
    c.network = runtime::NamespaceOption::host();
    ASSERT_TRUE(runtime_->create(c).ok());
    ASSERT_TRUE(runtime_->start(c.id).ok());
    id_ = c.id;
  }

  void TearDown() override {
    if (runtime_) {
      auto all = runtime_->list();
      if (all.ok()) {
        for (const auto& c : *all) runtime_->remove(c.id);
      }
      runtime_.reset();
      for (const char* ctl :
           {"", "/cpu", "/cpuacct", "/cpuset", "/memory", "/devices", "/freezer", "/blkio", "/pids",
            "/systemd", "/net_cls", "/perf_event", "/net_prio", "/hugetlb", "/rdma", "/misc"}) {
        ::rmdir(("/sys/fs/cgroup" + std::string(ctl) + "/skiff-probes-" + tag_).c_str());
      }
    }
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  std::string dir_, tag_, id_;
  std::unique_ptr<runtime::ContainerRuntime> runtime_;
};

TEST_F(ExecProbeTest, ReadinessFollowsAFileInTheContainer) {
  std::mutex mu;
  std::vector<std::string> unhealthy;
  ProberOptions o;
  o.exec = [this](const std::string& id, const std::vector<std::string>& cmd,
                  std::chrono::milliseconds timeout) {
    return runtime_->exec_sync(id, cmd, timeout);
  };
  o.on_unhealthy = [&](const ProbeTarget&, const std::string& m) {
    std::lock_guard<std::mutex> l(mu);
    unhealthy.push_back(m);
  };
  Prober prober(std::move(o));
  json c = {
      {"name", "app"},
      {"readinessProbe",
       {{"exec", {{"command", {"sh", "-c", "test -f /tmp/ready || { echo not yet; exit 1; }"}}}},
        {"periodSeconds", 1},
        {"failureThreshold", 1},
        {"timeoutSeconds", 10}}}};
  ProbeTarget t;
  t.pod_uid = "u";
  t.container_name = "app";
  t.container_id = id_;
  t.started_at = now();
  t.readiness = parse_probe(c, ProbeKind::kReadiness);
  prober.update(t);
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard<std::mutex> l(mu);
        return !unhealthy.empty();
      },
      30s));
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_EQ(unhealthy[0], "Readiness probe failed: not yet\n");
  }
  EXPECT_FALSE(prober.status("u", "app", id_).ready);
  ASSERT_TRUE(runtime_->exec_sync(id_, {"touch", "/tmp/ready"}, 30s).ok());
  ASSERT_TRUE(eventually([&] { return prober.status("u", "app", id_).ready; }, 30s));
  ASSERT_TRUE(runtime_->exec_sync(id_, {"rm", "/tmp/ready"}, 30s).ok());
  ASSERT_TRUE(eventually([&] { return !prober.status("u", "app", id_).ready; }, 30s));
}

TEST_F(ExecProbeTest, SlowCommandFailsAfterTimeoutSeconds) {
  std::mutex mu;
  std::vector<std::string> unhealthy;
  ProberOptions o;
  o.exec = [this](const std::string& id, const std::vector<std::string>& cmd,
                  std::chrono::milliseconds timeout) {
    return runtime_->exec_sync(id, cmd, timeout);
  };
  o.on_unhealthy = [&](const ProbeTarget&, const std::string& m) {
    std::lock_guard<std::mutex> l(mu);
    unhealthy.push_back(m);
  };
  Prober prober(std::move(o));
  ProbeTarget t;
  t.pod_uid = "u";
  t.container_name = "app";
  t.container_id = id_;
  t.started_at = now();
  ProbeSpec s;
  s.command = {"sleep", "30"};
  s.timeout_seconds = 1;
  s.failure_threshold = 1;
  t.liveness = s;
  prober.update(t);
  ASSERT_TRUE(eventually([&] { return prober.status("u", "app", id_).failed.has_value(); }, 30s));
  std::lock_guard<std::mutex> l(mu);
  ASSERT_FALSE(unhealthy.empty());
  EXPECT_EQ(unhealthy[0], "Liveness probe failed: command \"sleep 30\" timed out");
}

}  // namespace
}  // namespace skiff::agent

namespace skiff::agent {
namespace {

TEST(UnhealthyEventTest, RepeatsRaiseTheCountOfOneEvent) {
  skiff::testing::TestServer server;
  ASSERT_TRUE(server.ok());
  auto client = server.client("probe-events");
  json pod = {
      {"metadata",
       {{"name", "p"}, {"namespace", "default"}, {"uid", "uid-1"}, {"resourceVersion", "5"}}}};
  const std::string msg = "Readiness probe failed: HTTP probe failed with statuscode: 500";
  ASSERT_TRUE(record_unhealthy_event(*client, pod, "node-a", "app", msg).ok());
  ASSERT_TRUE(record_unhealthy_event(*client, pod, "node-a", "app", msg).ok());
  ASSERT_TRUE(
      record_unhealthy_event(*client, pod, "node-a", "app", "Liveness probe failed: x").ok());
  auto list = client->list(client::resources::kEvents.in("default"));
  ASSERT_TRUE(list.ok()) << list.status().to_string();
  std::map<std::string, int64_t> counts;
  for (const auto& e : list->items) {
    const json& ev = *e;
    EXPECT_EQ(ev["reason"], "Unhealthy");
    EXPECT_EQ(ev["type"], "Warning");
    EXPECT_EQ(ev["involvedObject"]["fieldPath"], "spec.containers{app}");
    EXPECT_EQ(ev["involvedObject"]["uid"], "uid-1");
    EXPECT_EQ(ev["source"]["host"], "node-a");
    counts[ev["message"].get<std::string>()] = ev["count"].get<int64_t>();
  }
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[msg], 2);
  EXPECT_EQ(counts["Liveness probe failed: x"], 1);
}

}  // namespace
}  // namespace skiff::agent
