#include "client/https_transport.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "client_test_util.h"
#include "common/base64.h"
#include "tcp_proxy.h"

namespace skiff::client {
namespace {

using testing::admin_https_options;
using testing::config_map;
using testing::eventually;
using testing::json;
using testing::read_file;
using testing::server_url;
using testing::SharedServer;
using testing::TcpProxy;
using testing::tls_file;

std::shared_ptr<HttpsTransport> must_create(HttpsOptions o) {
  auto t = HttpsTransport::create(std::move(o));
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return t.ok() ? *t : nullptr;
}

Request get_request(const std::string& path) {
  Request r;
  r.method = "GET";
  r.path = path;
  return r;
}

// Waits for a watch to close and says how.
class Closed {
 public:
  WatchClosedFn fn() {
    return [this](const Status& s) {
      std::lock_guard<std::mutex> lock(mu_);
      status_ = s;
      cv_.notify_all();
    };
  }
  std::optional<Status> wait(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return status_.has_value(); });
    return status_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Status> status_;
};

TEST(HttpsTransportTest, KubeconfigReachesTheServerAsAdmin) {
  auto t =
      HttpsTransport::from_kubeconfig((SharedServer::get().dir() / "kubeconfig.yaml").string());
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ((*t)->options().server, server_url());
  EXPECT_FALSE((*t)->options().client_cert_pem.empty());
  auto reply = (*t)->round_trip(get_request("/api/v1/namespaces/default"));
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(reply->content_type, "application/json");
  EXPECT_EQ(json::parse(reply->body)["metadata"]["name"], "default");
}

TEST(HttpsTransportTest, KubeconfigMayNameFilesRelativeToItself) {
  std::filesystem::path dir = SharedServer::get().dir();
  std::string path = (dir / "files-kubeconfig.yaml").string();
  std::ofstream(dir / "token-file") << "secret-token\n";
  std::ofstream(path)
      << "apiVersion: v1\nkind: Config\n"
         "clusters:\n- name: other\n  cluster:\n    server: https://10.0.0.1\n"
         "- name: here\n  cluster:\n    server: "
      << server_url() << "\n"
      << "    certificate-authority: tls/ca.crt\n"
         "users:\n- name: u\n  user:\n    client-certificate: tls/client-admin.crt\n"
         "    client-key: "
      << (dir / "tls" / "client-admin.key").string() << "\n"
      << "    tokenFile: token-file\n"
         "contexts:\n- name: c\n  context:\n    cluster: here\n    user: u\n"
         "current-context: c\n";
  auto o = HttpsTransport::options_from_kubeconfig(path);
  ASSERT_TRUE(o.ok()) << o.status().to_string();
  EXPECT_EQ(o->server, server_url());
  EXPECT_EQ(o->ca_pem, tls_file("ca.crt"));
  EXPECT_EQ(o->client_cert_pem, tls_file("client-admin.crt"));
  EXPECT_EQ(o->client_key_pem, tls_file("client-admin.key"));
  EXPECT_EQ(o->bearer_token, "secret-token");
  auto t = HttpsTransport::create(*o);
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  auto reply = (*t)->round_trip(get_request("/api/v1/namespaces/default"));
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 200u);
}

TEST(HttpsTransportTest, BadConfigurationIsRejected) {
  EXPECT_EQ(HttpsTransport::from_kubeconfig("/nonexistent/kubeconfig").status().code(),
            StatusCode::kNotFound);
  HttpsOptions o = admin_https_options();
  o.server = "http://127.0.0.1:1";
  EXPECT_EQ(HttpsTransport::create(o).status().code(), StatusCode::kInvalid);
  o.server = "https://:443";
  EXPECT_EQ(HttpsTransport::create(o).status().code(), StatusCode::kInvalid);
  o.server = "https://127.0.0.1:99999";
  EXPECT_EQ(HttpsTransport::create(o).status().code(), StatusCode::kInvalid);
  o = admin_https_options();
  o.ca_pem = "not a certificate";
  EXPECT_EQ(HttpsTransport::create(o).status().code(), StatusCode::kInvalid);
  o = admin_https_options();
  o.client_key_pem.clear();
  EXPECT_EQ(HttpsTransport::create(o).status().code(), StatusCode::kInvalid);

  std::string path = (SharedServer::get().dir() / "empty-kubeconfig.yaml").string();
  std::ofstream(path) << "apiVersion: v1\nkind: Config\n";
  EXPECT_EQ(HttpsTransport::from_kubeconfig(path).status().code(), StatusCode::kInvalid);
}

TEST(HttpsTransportTest, BearerTokenAuthenticates) {
  HttpsOptions o;
  o.server = server_url();
  o.ca_pem = tls_file("ca.crt");
  o.bearer_token = read_file((SharedServer::get().dir() / "token").string());
  while (!o.bearer_token.empty() && o.bearer_token.back() == '\n') o.bearer_token.pop_back();
  Client c(must_create(o), "skiff-agent");
  auto ns = c.get(resources::kNamespaces, "default");
  EXPECT_TRUE(ns.ok()) << ns.status().to_string();

  o.bearer_token = "K10::server:wrong";
  Client wrong(must_create(o), "skiff-agent");
  EXPECT_EQ(wrong.get(resources::kNamespaces, "default").status().code(),
            StatusCode::kUnauthorized);
}

TEST(HttpsTransportTest, ServerCertificateMustChainToTheCa) {
  HttpsOptions o = admin_https_options();
  o.ca_pem = tls_file("client-admin.crt");  // a certificate, but not the server's issuer
  auto t = must_create(o);
  auto reply = t->round_trip(get_request("/version"));
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(reply.status().message().find("TLS handshake"), std::string::npos)
      << reply.status().message();
}

TEST(HttpsTransportTest, ServerCertificateMustNameTheHost) {
  // "localhost" is among the serving certificate's names.
  auto by_name = must_create(admin_https_options("localhost"));
  auto ok = by_name->round_trip(get_request("/version"));
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->status, 200u);

  // 127.0.0.2 is not, though it reaches the same server.
  TcpProxy proxy("127.0.0.2", SharedServer::get().port());
  HttpsOptions o = admin_https_options();
  o.server = "https://127.0.0.2:" + std::to_string(proxy.port());
  auto t = must_create(o);
  auto reply = t->round_trip(get_request("/version"));
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(reply.status().message().find("mismatch"), std::string::npos)
      << reply.status().message();
}

TEST(HttpsTransportTest, UnreachableServerIsUnavailable) {
  unsigned port;
  {
    TcpProxy unused("127.0.0.1", 1);
    port = unused.port();
  }  // nothing listens there any more
  HttpsOptions o = admin_https_options();
  o.server = "https://127.0.0.1:" + std::to_string(port);
  Client c(must_create(o), "tester");
  EXPECT_EQ(c.get(resources::kNamespaces, "default").status().code(), StatusCode::kUnavailable);
}

TEST(HttpsTransportTest, KeepAliveConnectionsAreReusedAndDroppedOnesReplaced) {
  TcpProxy proxy("127.0.0.1", SharedServer::get().port());
  HttpsOptions o = admin_https_options();
  o.server = "https://127.0.0.1:" + std::to_string(proxy.port());
  auto t = must_create(o);
  Client c(t, "tester");
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.get(resources::kNamespaces, "default").ok());
  EXPECT_EQ(proxy.accepted(), 1);
  EXPECT_EQ(t->idle_connections(), 1u);

  // The server side of the idle connection goes away; the next request notices and retries
  // on a new connection instead of failing.
  proxy.close_all();
  auto again = c.get(resources::kNamespaces, "default");
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(proxy.accepted(), 2);
  EXPECT_EQ(t->idle_connections(), 1u);
}

TEST(HttpsTransportTest, ThreadsShareASmallPool) {
  TcpProxy proxy("127.0.0.1", SharedServer::get().port());
  HttpsOptions o = admin_https_options();
  o.server = "https://127.0.0.1:" + std::to_string(proxy.port());
  o.max_idle_connections = 2;
  auto t = must_create(o);
  Client c(t, "tester");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 15; ++j) {
        if (!c.get(resources::kNamespaces, "default").ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(t->idle_connections(), 2u);
  EXPECT_LE(proxy.accepted(), 6 * 15);
}

TEST(HttpsTransportTest, StopEndsAQuietStreamPromptly) {
  auto t = must_create(admin_https_options());
  Client c(t, "tester");
  std::atomic<int> events{0};
  Closed closed;
  auto list = c.list(resources::kNamespaces);
  ASSERT_TRUE(list.ok());
  ListOptions o;
  o.resource_version = list->resource_version;  // nothing to replay: the stream stays quiet
  auto w = c.watch(
      resources::kConfigMaps.in("kube-public"), o, [&](const WatchEvent&) { ++events; },
      closed.fn());
  ASSERT_TRUE(w.ok());
  auto began = std::chrono::steady_clock::now();
  (*w)->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(2));
  EXPECT_FALSE(closed.wait(std::chrono::milliseconds(50)).has_value());
  w->reset();
  EXPECT_EQ(events.load(), 0);
}

TEST(HttpsTransportTest, ABrokenStreamClosesAsUnavailable) {
  TcpProxy proxy("127.0.0.1", SharedServer::get().port());
  HttpsOptions o = admin_https_options();
  o.server = "https://127.0.0.1:" + std::to_string(proxy.port());
  Client c(must_create(o), "tester");
  std::atomic<int> events{0};
  Closed closed;
  auto w = c.watch(
      resources::kNamespaces, {}, [&](const WatchEvent&) { ++events; }, closed.fn());
  ASSERT_TRUE(w.ok());
  // The initial events (every namespace) show the stream is up.
  ASSERT_TRUE(eventually([&] { return events.load() > 0; }));
  proxy.close_all();
  auto s = closed.wait();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->code(), StatusCode::kUnavailable) << s->to_string();
}

TEST(HttpsTransportTest, StopFromInsideTheCallback) {
  auto t = must_create(admin_https_options());
  Client c(t, "tester");
  std::promise<Watch*> handle;
  std::shared_future<Watch*> handle_ready = handle.get_future().share();
  std::atomic<int> events{0};
  std::atomic<bool> done{false};
  auto w = c.watch(
      resources::kNamespaces, {},
      [&](const WatchEvent&) {
        // Every namespace arrives as an initial event; the first one stops the stream.
        if (events++ == 0) {
          handle_ready.get()->stop();
          done = true;
        }
      },
      [](const Status&) {});
  ASSERT_TRUE(w.ok());
  handle.set_value(w->get());
  ASSERT_TRUE(eventually([&] { return done.load(); }));
  w->reset();
  EXPECT_EQ(events.load(), 1);
}

}  // namespace
}  // namespace skiff::client
