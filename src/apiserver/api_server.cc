#include "apiserver/api_server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <condition_variable>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/openapi/openapi.h"
#include "apiserver/crd_registrar.h"
#include "apiserver/discovery.h"
#include "apiserver/http.h"
#include "apiserver/kubelet_client.h"
#include "apiserver/local_transport.h"
#include "apiserver/metrics_api.h"
#include "apiserver/pod_proxy.h"
#include "apiserver/request_info.h"
#include "apiserver/responses.h"
#include "apiserver/rest.h"
#include "apiserver/server_context.h"
#include "apiserver/strategy.h"
#include "common/log.h"
#include "store/sqlite_store.h"

namespace skiff::apiserver {

extern const char kKubernetesGitVersion[];

using nlohmann::json;

struct ApiServer::Impl {
  ServerContext ctx;
  // One io_context per thread (see HttpServer); ioc() is the first, which also runs the
  // server's own background work.
  std::vector<std::unique_ptr<asio::io_context>> workers;
  asio::io_context& ioc() { return *workers.front(); }
  // Keep idle workers running until stop().
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  asio::ssl::context ssl{asio::ssl::context::tls_server};
  std::unique_ptr<RestHandler> rest;
  // The node agents' kubelet API, and the pod subresources proxied to it.
  std::unique_ptr<KubeletClient> kubelet;
  std::unique_ptr<PodProxy> pod_proxy;
  // metrics.k8s.io (kubectl top), from the kubelets' /stats/summary.
  std::unique_ptr<MetricsApi> metrics;
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<api::OpenApiV3Cache> openapi;
  std::vector<std::thread> threads;
  unsigned port = 0;
  std::string kubeconfig;
  std::mutex mu;
  std::condition_variable cv;
  bool stopped = false;
  bool signaled = false;  // SIGINT or SIGTERM arrived

  asio::awaitable<void> handle(Exchange& ex);
  asio::awaitable<void> bootstrap();
  asio::awaitable<void> reconcile_kubernetes_endpoints();
  User authenticate(Stream& stream, const HttpRequest& req);
};

namespace {

Response text(unsigned code, std::string body) {
  Response r;
  r.status = code;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

json version_info() {
  return {{"major", "1"},
          {"minor", "32"},
          {"gitVersion", std::string(kKubernetesGitVersion)},
          {"gitCommit", "skiff"},
          {"gitTreeState", "clean"},
          {"buildDate", "2026-01-01T00:00:00Z"},
          {"goVersion", "go1.23.0"},
          {"compiler", "gc"},
          {"platform", "linux/amd64"}};
}

}  // namespace

User ApiServer::Impl::authenticate(Stream& stream, const HttpRequest& req) {
  User u;
  SSL* ssl = stream.native_handle();
  const X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert != nullptr && SSL_get_verify_result(ssl) == X509_V_OK) {
    auto info = pki::user_from_certificate(cert);
    if (info.ok()) {
      u.name = info->name;
      u.groups = info->groups;
      u.groups.push_back("system:authenticated");
      return u;
    }
  }
  auto it = req.find(http::field::authorization);
  if (it == req.end()) return u;
  std::string_view value(it->value().data(), it->value().size());
  if (value.substr(0, 7) != "Bearer " && value.substr(0, 7) != "bearer ") return u;
  std::string_view token = value.substr(7);
  if (std::count(token.begin(), token.end(), '.') == 2) {
    auto claims = pki::verify_token(token, ctx.pki, now_unix());
    if (!claims.ok()) return u;
    auto info = pki::user_from_service_account_claims(*claims);
    if (!info.ok()) return u;
    u.name = info->name;
    u.groups = info->groups;
    u.uid = info->uid;
    u.groups.push_back("system:authenticated");
    return u;
  }
  if (pki::check_join_token(token, ctx.pki)) {
    u.name = "skiff:agent";
    u.groups = {"system:nodes", "system:authenticated"};
  }
  return u;
}

asio::awaitable<void> ApiServer::Impl::handle(Exchange& ex) {
  const std::string& path = ex.path();
  std::string method(ex.request().method_string());
  if (path == "/healthz" || path == "/livez" || path == "/readyz" ||
      path.rfind("/healthz/", 0) == 0 || path.rfind("/livez/", 0) == 0 ||
      path.rfind("/readyz/", 0) == 0) {
    co_await ex.reply(text(200, "ok"));
    co_return;
  }
  if (path == "/version" || path == "/version/") {
    Response r;
    r.body = version_info().dump();
    co_await ex.reply(std::move(r));
    co_return;
  }
  if (path == "/cacerts") {
    // What a joining agent downloads and checks against the hash in its token.
    Response r = text(200, ctx.pki.ca_cert_pem);
    co_await ex.reply(std::move(r));
    co_return;
  }
  if (!ex.user().authenticated()) {
    co_await ex.reply(status_response(Status::Unauthorized("Unauthorized")));
    co_return;
  }
  if (path == "/openapi/v3" || path == "/openapi/v3/") {
    Response r;
    r.body = *openapi->index();
    co_await ex.reply(std::move(r));
    co_return;
  }
  if (path.rfind("/openapi/v3/", 0) == 0) {
    auto doc = openapi->document(std::string_view(path).substr(strlen("/openapi/v3/")));
    if (!doc.ok()) {
      co_await ex.reply(status_response(doc.status()));
      co_return;
    }
    Response r;
    r.body = (*doc)->body;
    r.headers.emplace_back("ETag", "\"" + (*doc)->hash + "\"");
    if (ex.query().has("hash")) r.headers.emplace_back("Cache-Control", "public, immutable");
    co_await ex.reply(std::move(r));
    co_return;
  }
  RequestInfo ri;
  if (!parse_request_info(method, path, ex.query().flag("watch"), &ri)) {
    co_await ex.reply(
        status_response(Status::NotFound("the server could not find the requested resource")));
    co_return;
  }
  if (!ri.is_resource) {
    if (method != "GET") {
      co_await ex.reply(status_response(
          Status(StatusCode::kMethodNotAllowed,
                 "the server does not allow this method on the requested resource")));
      co_return;
    }
    co_await ex.reply(discovery_response(*ctx.registry, ri, ex.header("Accept")));
    co_return;
  }
  if (ri.group == MetricsApi::kGroup) {
    co_await metrics->serve(ex, ri);
    co_return;
  }
  auto def = ctx.registry->find(ri.group, ri.version, ri.resource);
  if (!def) {
    co_await ex.reply(
        status_response(Status::NotFound("the server could not find the requested resource")));
    co_return;
  }
  if (PodProxy::handles(ri)) {
    co_await pod_proxy->serve(ex, ri);
    co_return;
  }
  co_await rest->serve(ex, ri, def);
}

asio::awaitable<void> ApiServer::Impl::bootstrap() {
  auto ns_def = ctx.registry->find("", "v1", "namespaces");
  for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    if (ctx.cache->get(std::string("/registry/core/namespaces/") + ns)) continue;
    json obj = {{"apiVersion", "v1"},
                {"kind", "Namespace"},
                {"metadata", {{"name", ns}, {"labels", {{"kubernetes.io/metadata.name", ns}}}}}};
    Status s = co_await rest->create_internal(*ns_def, obj);
    if (!s.ok() && s.code() != StatusCode::kAlreadyExists) {
      SKIFF_LOGF(Error, "creating namespace %s: %s", ns, s.to_string().c_str());
    }
  }
  if (!ctx.cache->get("/registry/core/services/default/kubernetes")) {
    auto svc_def = ctx.registry->find("", "v1", "services");
    json svc = {
        {"apiVersion", "v1"},
        {"kind", "Service"},
        {"metadata",
         {{"name", "kubernetes"},
          {"namespace", "default"},
          {"labels", {{"component", "apiserver"}, {"provider", "kubernetes"}}}}},
        {"spec",
         {{"type", "ClusterIP"},
          {"clusterIP", ctx.services->nth_ip(1)},
          {"ports",
           json::array({{{"name", "https"},
                         {"port", 443},
                         {"protocol", "TCP"},
                         {"targetPort", static_cast<int>(port)}}})}}}};
    Status s = co_await rest->create_internal(*svc_def, svc);
    if (!s.ok() && s.code() != StatusCode::kAlreadyExists) {
      SKIFF_LOGF(Error, "creating the kubernetes service: %s", s.to_string().c_str());
    }
  }
  // The cluster DNS Service at the tenth address of the service CIDR, named and labelled as
  // K3s's CoreDNS one. Every node agent answers it for its own pods (see
  // agent/services.h), so it has no selector and no endpoints.
  if (!ctx.cache->get("/registry/core/services/kube-system/kube-dns")) {
    auto svc_def = ctx.registry->find("", "v1", "services");
    json svc = {
        {"apiVersion", "v1"},
        {"kind", "Service"},
        {"metadata",
         {{"name", "kube-dns"},
          {"namespace", "kube-system"},
          {"labels",
           {{"k8s-app", "kube-dns"},
            {"kubernetes.io/cluster-service", "true"},
            {"kubernetes.io/name", "CoreDNS"}}}}},
        {"spec",
         {{"type", "ClusterIP"},
          {"clusterIP", ctx.services->nth_ip(10)},
          {"ports", json::array({{{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}},
                                 {{"name", "dns-tcp"}, {"port", 53}, {"protocol", "TCP"}}})}}}};
    Status s = co_await rest->create_internal(*svc_def, svc);
    if (!s.ok() && s.code() != StatusCode::kAlreadyExists) {
      SKIFF_LOGF(Error, "creating the kube-dns service: %s", s.to_string().c_str());
    }
  }
  co_await reconcile_kubernetes_endpoints();
}

namespace {
// The address clients in the cluster reach the API server at: the bind address when it is a
// specific one, else the first non-loopback IPv4 address of this host.
std::string advertise_address(const std::string& bind) {
  if (bind != "0.0.0.0" && bind != "::" && !bind.empty()) return bind;
  struct ifaddrs* list = nullptr;
  std::string found = "127.0.0.1";
  if (getifaddrs(&list) == 0) {
    for (auto* a = list; a != nullptr; a = a->ifa_next) {
      if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
      if (a->ifa_flags & IFF_LOOPBACK) continue;
      char buf[INET_ADDRSTRLEN];
      auto* in = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
      if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf)) != nullptr) {
        found = buf;
        break;
      }
    }
    freeifaddrs(list);
  }
  return found;
}

json kubernetes_endpoints(const std::string& ip, unsigned port) {
  return {{"apiVersion", "v1"},
          {"kind", "Endpoints"},
          {"metadata",
           {{"name", "kubernetes"},
            {"namespace", "default"},
            {"labels", {{"endpointslice.kubernetes.io/skip-mirror", "true"}}}}},
          {"subsets",
           json::array({{{"addresses", json::array({{{"ip", ip}}})},
                         {"ports", json::array({{{"name", "https"},
                                                 {"port", static_cast<int>(port)},
                                                 {"protocol", "TCP"}}})}}})}};
}
}  // namespace

// The `kubernetes` Service has no selector: the API server keeps its Endpoints pointing at
// itself, as Kubernetes does.
asio::awaitable<void> ApiServer::Impl::reconcile_kubernetes_endpoints() {
  auto def = ctx.registry->find("", "v1", "endpoints");
  json want = kubernetes_endpoints(advertise_address(ctx.options.bind_address), port);
  ObjectPtr cur = ctx.cache->get("/registry/core/endpoints/default/kubernetes");
  if (!cur) {
    Status s = co_await rest->create_internal(*def, want);
    if (!s.ok() && s.code() != StatusCode::kAlreadyExists) {
      SKIFF_LOGF(Error, "creating the kubernetes endpoints: %s", s.to_string().c_str());
    }
    co_return;
  }
  json obj = json::parse(*cur->json, nullptr, false);
  if (!obj.is_object() || obj.value("subsets", json()) == want["subsets"]) co_return;
  obj["subsets"] = want["subsets"];
  obj["metadata"].erase("resourceVersion");
  store::WriteOp op;
  op.kind = store::WriteOp::Kind::kUpdate;
  op.key = cur->key;
  op.expected_mod_revision = cur->mod_revision;
  op.value = std::make_shared<const std::string>(obj.dump());
  co_await store_write(*ctx.store, std::move(op));
}

ApiServer::ApiServer() : impl_(std::make_unique<Impl>()) {}

ApiServer::~ApiServer() {
  stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  // Teardown order matters: the store's writer may still complete writes, posting to the
  // (stopped) io_contexts, so it goes first; then the io_contexts, whose suspended
  // coroutines may unregister watches from the cache, which goes last with the rest.
  impl_->ctx.store.reset();
  impl_->http.reset();
  impl_->work.clear();
  impl_->workers.clear();
}

Result<std::unique_ptr<ApiServer>> ApiServer::start(const Options& o) {
  std::unique_ptr<ApiServer> server(new ApiServer());
  Impl& s = *server->impl_;
  ServerContext& ctx = s.ctx;
  ctx.options.data_dir = o.data_dir;
  ctx.options.port = o.port;
  ctx.options.bind_address = o.bind_address;
  ctx.options.tls_sans = o.tls_sans;
  ctx.options.service_cidr = o.service_cidr;
  ctx.options.cluster_cidr = o.cluster_cidr;
  ctx.options.disable_agent = o.disable_agent;
  ctx.options.threads = std::max(1, o.threads);

  if (::mkdir(o.data_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::Invalid("cannot create data dir " + o.data_dir + ": " + strerror(errno));
  }
  pki::PkiOptions popts;
  popts.data_dir = o.data_dir;
  popts.service_cidr = o.service_cidr;
  popts.bind_address = o.bind_address;
  popts.tls_sans = o.tls_sans;
  if (Status st = pki::ensure_pki(popts, &ctx.pki); !st.ok()) return st;
  if (Status st = pki::configure_server_tls(s.ssl.native_handle(), ctx.pki); !st.ok()) return st;

  ctx.registry = api::make_builtin_registry();
  MetricsApi::register_resources(*ctx.registry);
  s.openapi = std::make_unique<api::OpenApiV3Cache>(*ctx.registry);
  store::SqliteStoreOptions sopts;
  auto store = store::SqliteStore::open(o.data_dir + "/state.db", sopts);
  if (!store.ok()) return store.status();
  ctx.store = std::move(store.value());
  ctx.cache = std::make_unique<WatchCache>(*ctx.store, index_fields);
  watch_crds(ctx);
  if (Status st = ctx.cache->start(); !st.ok()) return st;
  register_stored_crds(ctx);
  ctx.services = std::make_unique<ServiceAllocator>(o.service_cidr, *ctx.cache);
  if (Status st = ctx.services->valid_cidr(); !st.ok()) return st;

  s.rest = std::make_unique<RestHandler>(ctx);
  s.kubelet = std::make_unique<KubeletClient>(ctx);
  s.pod_proxy = std::make_unique<PodProxy>(ctx, *s.kubelet);
  {
    KubeletClient* kubelet = s.kubelet.get();
    s.metrics = std::make_unique<MetricsApi>(
        ctx,
        [kubelet](std::string node) { return kubelet->get(std::move(node), "/stats/summary"); },
        MetricsApi::Options{});
  }
  Impl* impl = &s;
  std::vector<asio::io_context*> worker_ptrs;
  for (int i = 0; i < ctx.options.threads; ++i) {
    s.workers.push_back(std::make_unique<asio::io_context>(1));
    s.work.push_back(asio::make_work_guard(*s.workers.back()));
    worker_ptrs.push_back(s.workers.back().get());
  }
  s.http = std::make_unique<HttpServer>(
      worker_ptrs, s.ssl, [impl](Exchange& ex) { return impl->handle(ex); },
      [impl](Stream& stream, const HttpRequest& req) { return impl->authenticate(stream, req); });
  boost::system::error_code ec;
  s.port = s.http->listen(o.bind_address, o.port, ec);
  if (ec) {
    return Status::Unavailable("cannot listen on " + o.bind_address + ":" +
                               std::to_string(o.port) + ": " + ec.message());
  }
  for (auto& w : s.workers) {
    asio::io_context* ioc = w.get();
    s.threads.emplace_back([ioc] { ioc->run(); });
  }
  // The built-in objects must exist before clients are told where the server is.
  std::promise<void> booted;
  asio::co_spawn(
      s.ioc(),
      [impl, &booted]() -> asio::awaitable<void> {
        co_await impl->bootstrap();
        booted.set_value();
      },
      asio::detached);
  booted.get_future().wait();

  std::string host = o.bind_address == "0.0.0.0" || o.bind_address == "::" ? "127.0.0.1"
                                                                             : o.bind_address;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  s.kubeconfig = o.data_dir + "/kubeconfig.yaml";
  if (Status st = pki::write_kubeconfig(s.kubeconfig,
                                        "https://" + host + ":" + std::to_string(s.port), ctx.pki);
      !st.ok()) {
    return st;
  }
  {
    std::string tmp = o.data_dir + "/port.tmp";
    std::ofstream(tmp) << s.port << "\n";
    std::rename(tmp.c_str(), (o.data_dir + "/port").c_str());
  }
  return server;
}

unsigned ApiServer::port() const { return impl_->port; }

std::shared_ptr<client::Transport> ApiServer::local_transport(const std::string& user_name) {
  std::vector<asio::io_context*> workers;
  for (auto& w : impl_->workers) workers.push_back(w.get());
  Impl* impl = impl_.get();
  User user{user_name, {"system:masters", "system:authenticated"}, ""};
  return std::make_shared<LocalTransport>(
      workers, [impl](Exchange& ex) { return impl->handle(ex); }, user);
}
std::string ApiServer::kubeconfig_path() const { return impl_->kubeconfig; }

void ApiServer::wait(const std::function<void()>& before_stop) {
  asio::signal_set signals(impl_->ioc(), SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->signaled = true;
    impl_->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait(lock, [this] { return impl_->stopped || impl_->signaled; });
  bool signaled = !impl_->stopped;
  lock.unlock();
  signals.cancel();
  if (signaled) {
    if (before_stop) before_stop();
    stop();
  }
}

void ApiServer::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  if (impl_->http) impl_->http->stop();
  for (auto& w : impl_->workers) w->stop();
  impl_->cv.notify_all();
}

}  // namespace skiff::apiserver
