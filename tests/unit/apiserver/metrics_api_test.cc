// metrics.k8s.io/v1beta1 over a real store and watch cache. The kubelet summaries come from a
// SummaryFetcher standing in for the nodes' kubelets (the agent's summary and the kubelet
// client are tested on their own and end to end in tests/e2e/agent_top_test.sh).
#include "apiserver/metrics_api.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "apiserver/discovery.h"
#include "apiserver/server_context.h"
#include "apiserver/strategy.h"
#include "store/sqlite_store.h"

namespace skiff::apiserver {
namespace {

using nlohmann::json;

class CapturingExchange final : public Exchange {
 public:
  CapturingExchange(HttpRequest& req) : Exchange(req, User{"tester", {"system:masters"}, ""}) {}
  asio::awaitable<void> reply(Response r) override {
    response = std::move(r);
    responded_ = true;
    co_return;
  }
  asio::awaitable<bool> begin_stream(unsigned, std::string) override { co_return false; }
  asio::awaitable<bool> write_chunk(std::string_view) override { co_return false; }
  asio::awaitable<void> end_stream() override { co_return; }
  Response response;
};

json node(const std::string& name, bool ready, int kubelet_port,
          const std::map<std::string, std::string>& labels = {},
          const std::string& runtime = "skiff://0.1.0") {
  json n = {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata", {{"name", name}}},
      {"status",
       {{"conditions", json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}})}}}};
  if (!labels.empty()) n["metadata"]["labels"] = labels;
  n["status"]["nodeInfo"] = {{"containerRuntimeVersion", runtime}};
  if (kubelet_port > 0) {
    n["status"]["daemonEndpoints"] = {{"kubeletEndpoint", {{"Port", kubelet_port}}}};
  }
  return n;
}

json pod(const std::string& ns, const std::string& name, const std::string& app) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", app}}}}},
          {"spec", {{"nodeName", "n1"}, {"containers", json::array({{{"name", "c"}}})}}}};
}

json pod_summary(const std::string& ns, const std::string& name,
                 const std::vector<std::pair<std::string, uint64_t>>& containers) {
  json cs = json::array();
  for (const auto& [c, cpu] : containers) {
    cs.push_back({{"name", c},
                  {"cpu", {{"time", "2025-01-01T00:00:00Z"}, {"usageNanoCores", cpu}}},
                  {"memory", {{"time", "2025-01-01T00:00:00Z"}, {"workingSetBytes", 4 << 20}}}});
  }
  return {{"podRef", {{"name", name}, {"namespace", ns}, {"uid", name + "-uid"}}},
          {"containers", cs}};
}

class MetricsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-metrics-api-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ctx_.registry = api::make_builtin_registry();
    MetricsApi::register_resources(*ctx_.registry);
    auto s = store::SqliteStore::open((dir_ / "state.db").string(), {});
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    ctx_.store = std::move(s.value());
    ctx_.cache = std::make_unique<WatchCache>(*ctx_.store, index_fields);
    ASSERT_TRUE(ctx_.cache->start().ok());

    put("/registry/core/nodes/n1", node("n1", true, 10250, {{"zone", "a"}}));
    put("/registry/core/nodes/n2", node("n2", true, 10250, {{"zone", "b"}}));
    put("/registry/core/nodes/sim", node("sim", true, 10250, {}, "sim://0.1.0"));
    put("/registry/core/nodes/noport", node("noport", true, 0));
    put("/registry/core/nodes/down", node("down", false, 10250));
    put("/registry/core/pods/default/web", pod("default", "web", "web"));
    put("/registry/core/pods/default/db", pod("default", "db", "db"));
    put("/registry/core/pods/other/job", pod("other", "job", "web"));
    put("/registry/core/pods/default/pending", pod("default", "pending", "web"));

    summaries_["n1"] = {
        {"node",
         {{"nodeName", "n1"},
          {"cpu", {{"time", "2025-01-01T00:00:00Z"}, {"usageNanoCores", 250'000'000}}},
          {"memory", {{"time", "2025-01-01T00:00:00Z"}, {"workingSetBytes", 2 << 20}}}}},
        {"pods", json::array({pod_summary("default", "web", {{"app", 200'000'000}, {"side", 5}}),
                              pod_summary("default", "db", {{"db", 1'000}}),
                              pod_summary("other", "job", {{"job", 7}})})}};
    summaries_["n2"] = {
        {"node",
         {{"nodeName", "n2"},
          {"cpu", {{"time", "2025-01-01T00:00:00Z"}, {"usageNanoCores", 1}}},
          {"memory", {{"time", "2025-01-01T00:00:00Z"}, {"workingSetBytes", 1024}}}}},
        {"pods", json::array()}};
  }

  void TearDown() override {
    api_.reset();
    ctx_.cache.reset();
    ctx_.store.reset();
    std::filesystem::remove_all(dir_);
  }

  void put(const std::string& key, const json& obj) {
    auto w = ctx_.store->create(key, obj.dump());
    ASSERT_TRUE(w.ok()) << w.status().to_string();
  }

  void make_api(std::chrono::milliseconds ttl) {
    MetricsApi::Options o;
    o.cache_ttl = ttl;
    api_ = std::make_unique<MetricsApi>(
        ctx_,
        [this](std::string name) -> asio::awaitable<Result<std::string>> {
          {
            std::lock_guard<std::mutex> l(mu_);
            fetched_.insert(name);
            fetches_++;
          }
          if (auto raw = raw_.find(name); raw != raw_.end()) co_return raw->second;
          auto it = summaries_.find(name);
          if (it == summaries_.end()) co_return Status::Unavailable("no kubelet on " + name);
          co_return it->second.dump();
        },
        o);
  }

  // Sends one request through MetricsApi::serve and returns the response.
  Response request(const std::string& method, const std::string& target,
                   const std::string& accept = "application/json") {
    if (!api_) make_api(std::chrono::seconds(10));
    HttpRequest req;
    req.method_string(method);
    req.target(target);
    req.set(http::field::accept, accept);
    CapturingExchange ex(req);
    RequestInfo ri;
    EXPECT_TRUE(parse_request_info(method, ex.path(), false, &ri)) << target;
    // One io_context for the whole test, as the server's connection threads outlive requests
    // (the fetch pool hands completions back to it).
    ioc_.restart();
    bool done = false;
    asio::co_spawn(ioc_, api_->serve(ex, ri), [&](std::exception_ptr e) {
      EXPECT_FALSE(e) << "serve threw";
      done = true;
      ioc_.stop();
    });
    ioc_.run();
    EXPECT_TRUE(done);
    EXPECT_TRUE(ex.responded()) << target;
    return ex.response;
  }

  json get_json(const std::string& target, unsigned want_status = 200) {
    Response r = request("GET", target);
    EXPECT_EQ(r.status, want_status) << target << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }

  static std::set<std::string> names(const json& list) {
    std::set<std::string> out;
    for (const auto& i : list["items"]) {
      std::string ns = i["metadata"].value("namespace", "");
      out.insert(ns.empty() ? i["metadata"]["name"].get<std::string>()
                            : ns + "/" + i["metadata"]["name"].get<std::string>());
    }
    return out;
  }

  std::filesystem::path dir_;
  ServerContext ctx_;
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(ioc_);
  std::unique_ptr<MetricsApi> api_;
  std::map<std::string, json> summaries_;
  std::map<std::string, std::string> raw_;  // bodies sent as they are
  std::mutex mu_;
  std::set<std::string> fetched_;  // guarded by mu_
  int fetches_ = 0;                // guarded by mu_
};

TEST_F(MetricsApiTest, NodeMetricsComeFromReadyNodesWithAKubelet) {
  json list = get_json("/apis/metrics.k8s.io/v1beta1/nodes");
  EXPECT_EQ(list["kind"], "NodeMetricsList");
  EXPECT_EQ(list["apiVersion"], "metrics.k8s.io/v1beta1");
  EXPECT_EQ(names(list), (std::set<std::string>{"n1", "n2"}));
  // The simulated node, the one without a kubelet port and the NotReady one are not asked.
  EXPECT_EQ(fetched_, (std::set<std::string>{"n1", "n2"}));

  json n1 = get_json("/apis/metrics.k8s.io/v1beta1/nodes/n1");
  EXPECT_EQ(n1["kind"], "NodeMetrics");
  EXPECT_EQ(n1["metadata"]["name"], "n1");
  EXPECT_EQ(n1["metadata"]["labels"]["zone"], "a");
  EXPECT_EQ(n1["usage"]["cpu"], "250000000n");
  EXPECT_EQ(n1["usage"]["memory"], "2048Ki");
  EXPECT_EQ(n1["timestamp"], "2025-01-01T00:00:00Z");
  EXPECT_TRUE(n1["window"].is_string());

  json zone_b = get_json("/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=zone%3Db");
  EXPECT_EQ(names(zone_b), (std::set<std::string>{"n2"}));

  json sim = get_json("/apis/metrics.k8s.io/v1beta1/nodes/sim", 404);
  EXPECT_EQ(sim["reason"], "NotFound");
  EXPECT_EQ(sim["message"], "nodemetrics.metrics.k8s.io \"sim\" not found");
  get_json("/apis/metrics.k8s.io/v1beta1/nodes/noport", 404);
  get_json("/apis/metrics.k8s.io/v1beta1/nodes/nosuch", 404);
}

TEST_F(MetricsApiTest, PodMetricsPerNamespaceAndAcrossNamespaces) {
  json list = get_json("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods");
  EXPECT_EQ(list["kind"], "PodMetricsList");
  // "pending" has no running containers in any summary.
  EXPECT_EQ(names(list), (std::set<std::string>{"default/web", "default/db"}));

  json all = get_json("/apis/metrics.k8s.io/v1beta1/pods");
  EXPECT_EQ(names(all), (std::set<std::string>{"default/web", "default/db", "other/job"}));

  json web = get_json("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web");
  EXPECT_EQ(web["kind"], "PodMetrics");
  EXPECT_EQ(web["metadata"]["labels"]["app"], "web");
  ASSERT_EQ(web["containers"].size(), 2u);
  EXPECT_EQ(web["containers"][0]["name"], "app");
  EXPECT_EQ(web["containers"][0]["usage"]["cpu"], "200000000n");
  EXPECT_EQ(web["containers"][0]["usage"]["memory"], "4096Ki");
  EXPECT_EQ(web["containers"][1]["name"], "side");
}

TEST_F(MetricsApiTest, LabelAndFieldSelectorsFilterPods) {
  json webs = get_json("/apis/metrics.k8s.io/v1beta1/pods?labelSelector=app%3Dweb");
  EXPECT_EQ(names(webs), (std::set<std::string>{"default/web", "other/job"}));
  json not_web =
      get_json("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app!%3Dweb");
  EXPECT_EQ(names(not_web), (std::set<std::string>{"default/db"}));
  json by_name = get_json(
      "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?fieldSelector=metadata.name%3Ddb");
  EXPECT_EQ(names(by_name), (std::set<std::string>{"default/db"}));
  json bad = get_json("/apis/metrics.k8s.io/v1beta1/pods?labelSelector=app%3D%3D%3D", 400);
  EXPECT_EQ(bad["reason"], "BadRequest");
}

TEST_F(MetricsApiTest, UnknownPodsAndPodsWithoutMetricsAreNotFound) {
  json missing = get_json("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nosuch", 404);
  EXPECT_EQ(missing["reason"], "NotFound");
  EXPECT_EQ(missing["message"], "pods \"nosuch\" not found");
  json pending = get_json("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/pending", 404);
  EXPECT_EQ(pending["message"], "podmetrics.metrics.k8s.io \"default/pending\" not found");
  // The pod exists, but in another namespace.
  get_json("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/job", 404);
}

TEST_F(MetricsApiTest, ReadOnlyAndOnlyItsOwnResources) {
  EXPECT_EQ(request("DELETE", "/apis/metrics.k8s.io/v1beta1/nodes/n1").status, 405u);
  EXPECT_EQ(request("POST", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").status, 405u);
  EXPECT_EQ(request("GET", "/apis/metrics.k8s.io/v1beta1/services").status, 404u);
  EXPECT_EQ(request("GET", "/apis/metrics.k8s.io/v1/nodes").status, 404u);
}

TEST_F(MetricsApiTest, SummariesAreCachedForTheTtl) {
  make_api(std::chrono::hours(1));
  get_json("/apis/metrics.k8s.io/v1beta1/nodes");
  get_json("/apis/metrics.k8s.io/v1beta1/pods");
  get_json("/apis/metrics.k8s.io/v1beta1/nodes/n1");
  EXPECT_EQ(fetches_, 2);  // one round: n1 and n2

  make_api(std::chrono::milliseconds(0));
  fetches_ = 0;
  get_json("/apis/metrics.k8s.io/v1beta1/nodes");
  get_json("/apis/metrics.k8s.io/v1beta1/nodes");
  EXPECT_EQ(fetches_, 4);
}

TEST_F(MetricsApiTest, AFailingKubeletLeavesOnlyItsNodeOut) {
  summaries_.erase("n2");
  json list = get_json("/apis/metrics.k8s.io/v1beta1/nodes");
  EXPECT_EQ(names(list), (std::set<std::string>{"n1"}));
}

TEST_F(MetricsApiTest, ASummaryThatIsNotJsonLeavesItsNodeOut) {
  raw_["n2"] = "<html>";
  json list = get_json("/apis/metrics.k8s.io/v1beta1/nodes");
  EXPECT_EQ(names(list), (std::set<std::string>{"n1"}));
}

TEST_F(MetricsApiTest, TablesForKubectlGet) {
  Response r = request("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
                       "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
  ASSERT_EQ(r.status, 200u) << r.body;
  json t = json::parse(r.body);
  EXPECT_EQ(t["kind"], "Table");
  ASSERT_EQ(t["rows"].size(), 2u);
  // Rows in key order: db, web; web's CPU is the sum of its containers.
  EXPECT_EQ(t["rows"][1]["cells"][0], "web");
  EXPECT_EQ(t["rows"][1]["cells"][1], "200m");
  EXPECT_EQ(t["rows"][1]["cells"][2], "8192Ki");
}

TEST_F(MetricsApiTest, DiscoveryListsTheGroupInBothForms) {
  RequestInfo ri;
  ASSERT_TRUE(parse_request_info("GET", "/apis", false, &ri));
  json legacy = json::parse(discovery_response(*ctx_.registry, ri, "application/json").body);
  bool found = false;
  for (const auto& g : legacy["groups"]) {
    if (g["name"] == "metrics.k8s.io") {
      found = true;
      EXPECT_EQ(g["preferredVersion"]["groupVersion"], "metrics.k8s.io/v1beta1");
    }
  }
  EXPECT_TRUE(found);

  json aggregated = json::parse(
      discovery_response(*ctx_.registry, ri,
                         "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
          .body);
  std::set<std::string> resources;
  for (const auto& g : aggregated["items"]) {
    if (g["metadata"].value("name", "") != "metrics.k8s.io") continue;
    for (const auto& r : g["versions"][0]["resources"]) {
      resources.insert(r["resource"].get<std::string>() + ":" + r["scope"].get<std::string>());
      EXPECT_EQ(r["verbs"], json::array({"get", "list"}));
    }
  }
  EXPECT_EQ(resources, (std::set<std::string>{"nodes:Cluster", "pods:Namespaced"}));

  ASSERT_TRUE(parse_request_info("GET", "/apis/metrics.k8s.io/v1beta1", false, &ri));
  json list = json::parse(discovery_response(*ctx_.registry, ri, "application/json").body);
  EXPECT_EQ(list["kind"], "APIResourceList");
  std::set<std::string> kinds;
  for (const auto& r : list["resources"]) kinds.insert(r["kind"].get<std::string>());
  EXPECT_EQ(kinds, (std::set<std::string>{"NodeMetrics", "PodMetrics"}));
}

}  // namespace
}  // namespace skiff::apiserver
