#include "proxy/service_proxy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "client/informer.h"
#include "proxy/nft.h"
#include "proxy/ruleset.h"
#include "testing/test_server.h"

namespace skiff::proxy {
namespace {

using nlohmann::json;
using skiff::testing::eventually;
using skiff::testing::TestServer;

// Records the scripts it is given; fails the first `failures` of them.
class RecordingApplier : public RulesetApplier {
 public:
  explicit RecordingApplier(int failures = 0) : failures_(failures) {}
  Status apply(const std::string& script) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (failures_ > 0) {
      --failures_;
      return Status::Internal("injected failure");
    }
    scripts_.push_back(script);
    return Status::Ok();
  }
  std::string last() {
    std::lock_guard<std::mutex> lock(mu_);
    return scripts_.empty() ? "" : scripts_.back();
  }
  size_t applied() {
    std::lock_guard<std::mutex> lock(mu_);
    return scripts_.size();
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  int failures_;
  int calls_ = 0;
  std::vector<std::string> scripts_;
};

json service(const std::string& name, const std::string& type = "ClusterIP") {
  json ports = json::array({{{"name", "http"}, {"port", 80}, {"targetPort", 8080}}});
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"type", type}, {"selector", {{"app", name}}}, {"ports", ports}}}};
}

json slice(const std::string& service, const std::string& ip, bool ready) {
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", service + "-abc"},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", service}}}}},
          {"addressType", "IPv4"},
          {"ports", json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}})},
          {"endpoints", json::array({{{"addresses", {ip}}, {"conditions", {{"ready", ready}}}}})}};
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

class ServiceProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    client_ = server_.client("skiff-proxy");
    informers_ = std::make_unique<client::InformerFactory>(*client_);
  }
  void TearDown() override {
    if (informers_) informers_->stop();
  }

  ProxyOptions options(std::shared_ptr<RulesetApplier> applier) {
    ProxyOptions o;
    o.node_ips = {"192.168.1.10"};
    o.applier = std::move(applier);
    return o;
  }

  std::string cluster_ip(const std::string& name) {
    auto svc = client_->get(client::resources::kServices.in("default"), name);
    return svc.ok() ? (*svc)->at("spec").value("clusterIP", "") : "";
  }

  TestServer server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<client::InformerFactory> informers_;
};

TEST_F(ServiceProxyTest, FollowsEndpointReadinessFromTheApi) {
  auto applier = std::make_shared<RecordingApplier>();
  ServiceProxy proxy(*client_, *informers_, options(applier));
  proxy.start();
  // An empty cluster still gets its table, once the informers have synced.
  ASSERT_TRUE(eventually([&] { return applier->applied() >= 1; }));
  EXPECT_TRUE(contains(applier->last(), "table ip skiff {"));

  ASSERT_TRUE(client_->create(client::resources::kServices.in("default"), service("web")).ok());
  std::string ip = cluster_ip("web");
  ASSERT_FALSE(ip.empty());
  // No endpoints yet: rejected.
  ASSERT_TRUE(eventually(
      [&] { return contains(applier->last(), ip + " . tcp . 80 : goto reject-chain"); }));

  ASSERT_TRUE(client_
                  ->create(client::resources::kEndpointSlices.in("default"),
                           slice("web", "10.42.0.5", true))
                  .ok());
  ASSERT_TRUE(eventually([&] { return contains(applier->last(), "dnat to 10.42.0.5:8080"); }));
  EXPECT_TRUE(contains(applier->last(), ip + " . tcp . 80 : goto service-"));

  // The pod stops being ready: traffic is refused again.
  auto current = client_->get(client::resources::kEndpointSlices.in("default"), "web-abc");
  ASSERT_TRUE(current.ok());
  json changed = **current;
  changed["endpoints"][0]["conditions"]["ready"] = false;
  ASSERT_TRUE(client_->update(client::resources::kEndpointSlices.in("default"), changed).ok());
  ASSERT_TRUE(eventually([&] {
    std::string last = applier->last();
    return !contains(last, "dnat to") && contains(last, ip + " . tcp . 80 : goto reject-chain");
  }));

  // Deleting the service removes its rules.
  ASSERT_TRUE(client_->remove(client::resources::kServices.in("default"), "web").ok());
  ASSERT_TRUE(eventually([&] { return !contains(applier->last(), ip); }));
  EXPECT_EQ(proxy.sync_state().ruleset, applier->last());
  EXPECT_TRUE(proxy.sync_state().last_status.ok());
}

TEST_F(ServiceProxyTest, BurstsOfChangesAreCoalesced) {
  auto applier = std::make_shared<RecordingApplier>();
  ProxyOptions o = options(applier);
  o.min_sync_interval = std::chrono::milliseconds(200);
  ServiceProxy proxy(*client_, *informers_, o);
  proxy.start();
  ASSERT_TRUE(eventually([&] { return applier->applied() >= 1; }));
  const size_t before = applier->applied();

  constexpr int kServices = 20;
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kServices; ++i) {
    ASSERT_TRUE(client_
                    ->create(client::resources::kServices.in("default"),
                             service("svc-" + std::to_string(i)))
                    .ok());
  }
  auto took = std::chrono::steady_clock::now() - started;
  std::string last_ip = cluster_ip("svc-" + std::to_string(kServices - 1));
  ASSERT_TRUE(eventually([&] { return contains(applier->last(), last_ip + " . tcp . 80"); }));
  // At most one apply per interval while the burst lasted, plus the trailing one.
  size_t allowed = static_cast<size_t>(took / o.min_sync_interval) + 2;
  EXPECT_LE(applier->applied() - before, allowed)
      << "burst of " << kServices << " creations over "
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  EXPECT_LT(applier->applied() - before, static_cast<size_t>(kServices));

  // Nothing changed: nothing is applied again.
  size_t settled = applier->applied();
  auto svc = client_->get(client::resources::kServices.in("default"), "svc-0");
  ASSERT_TRUE(svc.ok());
  json relabelled = **svc;
  relabelled["metadata"]["labels"]["touched"] = "yes";
  ASSERT_TRUE(client_->update(client::resources::kServices.in("default"), relabelled).ok());
  std::this_thread::sleep_for(o.min_sync_interval * 3);
  EXPECT_EQ(applier->applied(), settled);
}

TEST_F(ServiceProxyTest, FailedAppliesAreRetried) {
  auto applier = std::make_shared<RecordingApplier>(2);
  ProxyOptions o = options(applier);
  o.retry_interval = std::chrono::milliseconds(20);
  ServiceProxy proxy(*client_, *informers_, o);
  proxy.start();
  ASSERT_TRUE(eventually([&] { return applier->applied() == 1; }));
  EXPECT_EQ(applier->calls(), 3);
  auto state = proxy.sync_state();
  EXPECT_EQ(state.failures, 2u);
  EXPECT_EQ(state.applies, 1u);
  EXPECT_TRUE(state.last_status.ok());
}

TEST_F(ServiceProxyTest, NodePortAddressesComeFromTheNode) {
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata", {{"name", "n1"}}},
               {"status",
                {{"addresses", json::array({{{"type", "InternalIP"}, {"address", "192.168.5.5"}},
                                            {{"type", "Hostname"}, {"address", "n1"}}})}}}};
  auto created = client_->create(client::resources::kNodes, node);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  json with_status = **created;
  with_status["status"] = node["status"];
  ASSERT_TRUE(client_->update(client::resources::kNodes, with_status, "status").ok());

  auto applier = std::make_shared<RecordingApplier>();
  ProxyOptions o;
  o.node_name = "n1";
  o.applier = applier;
  ServiceProxy proxy(*client_, *informers_, o);
  proxy.start();
  ASSERT_TRUE(eventually([&] { return applier->applied() >= 1; }));
  EXPECT_TRUE(contains(applier->last(), "set nodeport-ips {"));
  EXPECT_TRUE(contains(applier->last(), "192.168.5.5"));
}

TEST_F(ServiceProxyTest, StopLeavesTheRulesAndCleanupRemovesThem) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto nft_ok = run_command({"nft", "--version"}, "");
  if (!nft_ok.ok() || nft_ok->exit_code != 0) GTEST_SKIP() << "nft is not installed";
  std::string ns = "skiff-t-" + std::to_string(::getpid()) + "-proxy";
  auto added = run_command({"ip", "netns", "add", ns}, "");
  if (!added.ok() || added->exit_code != 0) GTEST_SKIP() << "cannot create a network namespace";

  ASSERT_TRUE(client_->create(client::resources::kServices.in("default"), service("web")).ok());
  ASSERT_TRUE(client_
                  ->create(client::resources::kEndpointSlices.in("default"),
                           slice("web", "10.42.0.5", true))
                  .ok());
  ProxyOptions o;
  o.node_ips = {"192.168.1.10"};
  o.netns = ns;
  NftApplier nft("nft", ns);
  {
    ServiceProxy proxy(*client_, *informers_, o);
    proxy.start();
    EXPECT_TRUE(eventually([&] {
      auto t = nft.list_table();
      return t.ok() && contains(*t, "dnat to 10.42.0.5:8080");
    }));
    proxy.stop();
    EXPECT_TRUE(nft.list_table().ok());
    EXPECT_TRUE(proxy.cleanup().ok());
  }
  EXPECT_EQ(nft.list_table().status().code(), StatusCode::kNotFound);
  run_command({"ip", "netns", "del", ns}, "");
}

}  // namespace
}  // namespace skiff::proxy
