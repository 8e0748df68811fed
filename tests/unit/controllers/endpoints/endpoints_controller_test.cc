#include "controllers/endpoints/endpoints_controller.h"

#include <gtest/gtest.h>

#include <string>

#include "controllers/endpoints/endpoint_util.h"
#include "unit/controllers/garbagecollector/controller_harness.h"

namespace skiff::controllers::endpoints {
namespace {

using client::ObjectPtr;
using testing_support::ControllerHarness;
using testing_support::eventually;
using testing_support::serving_pod;
using testing_support::str;
using testing_support::uid_of;
namespace res = client::resources;

constexpr char kNs[] = "ep-test";
constexpr char kNode[] = "node-1";

json http_ports() {
  return json::array({{{"name", "http"}, {"containerPort", 8080}},
                      {{"name", "metrics"}, {"containerPort", 9090}}});
}

json service(const std::string& name, json selector, json ports, json extra_spec = {}) {
  json spec = {{"ports", std::move(ports)}};
  if (!selector.is_null()) spec["selector"] = std::move(selector);
  if (extra_spec.is_object()) {
    for (auto& [k, v] : extra_spec.items()) spec[k] = v;
  }
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", kNs}, {"labels", {{"tier", "front"}}}}},
          {"spec", spec}};
}

// --- pure parts --------------------------------------------------------------------------------

json ready_pod(const std::string& name, const std::string& ip, bool ready, json ports) {
  json p = serving_pod(kNs, name, {{"app", "web"}}, kNode, std::move(ports));
  p["metadata"]["uid"] = "uid-" + name;
  p["status"] = {{"phase", "Running"},
                 {"podIP", ip},
                 {"conditions", json::array({{{"type", "Ready"},
                                              {"status", ready ? "True" : "False"}}})}};
  return p;
}

TEST(EndpointUtilTest, FindsPortsByNumberAndByName) {
  json pod = ready_pod("p", "10.42.0.5", true, http_ports());
  EXPECT_EQ(*find_port(pod, {{"port", 80}, {"targetPort", 8081}}), 8081);
  EXPECT_EQ(*find_port(pod, {{"port", 80}}), 80) << "targetPort defaults to the port";
  EXPECT_EQ(*find_port(pod, {{"port", 80}, {"targetPort", "metrics"}}), 9090);
  EXPECT_FALSE(find_port(pod, {{"port", 80}, {"targetPort", "grpc"}}).ok());
  EXPECT_FALSE(find_port(pod, {{"port", 80}, {"targetPort", "http"}, {"protocol", "UDP"}}).ok())
      << "the protocol must match";
  pod["spec"]["initContainers"] = json::array(
      {{{"name", "proxy"},
        {"image", "envoy"},
        {"restartPolicy", "Always"},
        {"ports", json::array({{{"name", "admin"}, {"containerPort", 15000}}})}}});
  EXPECT_EQ(*find_port(pod, {{"port", 80}, {"targetPort", "admin"}}), 15000)
      << "sidecar containers count";
}

TEST(EndpointUtilTest, WhichPodsBelongInEndpoints) {
  json pod = ready_pod("p", "10.42.0.5", true, http_ports());
  EXPECT_TRUE(should_pod_be_in_endpoints(pod, false));
  json no_ip = pod;
  no_ip["status"].erase("podIP");
  EXPECT_FALSE(should_pod_be_in_endpoints(no_ip, false));
  json done = pod;
  done["status"]["phase"] = "Succeeded";
  EXPECT_FALSE(should_pod_be_in_endpoints(done, true));
  json leaving = pod;
  leaving["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  EXPECT_FALSE(should_pod_be_in_endpoints(leaving, false));
  EXPECT_TRUE(should_pod_be_in_endpoints(leaving, true));
}

TEST(EndpointsSubsetsTest, PacksAddressesThatShareTheirPorts) {
  json svc = service("web", {{"app", "web"}},
                     json::array({{{"name", "http"}, {"port", 80}, {"targetPort", "http"}},
                                  {{"name", "metrics"}, {"port", 81}, {"targetPort", "metrics"}}}));
  std::vector<ObjectPtr> pods = {
      std::make_shared<const json>(ready_pod("b", "10.42.0.12", true, http_ports())),
      std::make_shared<const json>(ready_pod("a", "10.42.0.11", false, http_ports())),
      std::make_shared<const json>(ready_pod(
          "c", "10.42.0.13", true, json::array({{{"name", "http"}, {"containerPort", 8080}}})))};
  json subsets = endpoint_subsets(svc, pods);
  // As RepackSubsets: one subset per set of addresses, with every port that set offers. All
  // three pods offer http; only a and b offer metrics.
  ASSERT_EQ(subsets.size(), 2u) << subsets.dump(2);
  json http;
  json metrics;
  for (const json& s : subsets) (s["ports"][0]["name"] == "http" ? http : metrics) = s;
  ASSERT_TRUE(http.is_object() && metrics.is_object()) << subsets.dump(2);
  EXPECT_EQ(http["ports"], json::parse(R"([{"name":"http","port":8080,"protocol":"TCP"}])"));
  EXPECT_EQ(metrics["ports"], json::parse(R"([{"name":"metrics","port":9090,"protocol":"TCP"}])"));
  ASSERT_EQ(http["addresses"].size(), 2u);
  EXPECT_EQ(http["addresses"][0], json::parse(R"({"ip":"10.42.0.12","nodeName":"node-1",
      "targetRef":{"kind":"Pod","namespace":"ep-test","name":"b","uid":"uid-b"}})"));
  EXPECT_EQ(http["addresses"][1]["ip"], "10.42.0.13");
  ASSERT_EQ(http["notReadyAddresses"].size(), 1u);
  EXPECT_EQ(http["notReadyAddresses"][0]["ip"], "10.42.0.11");
  ASSERT_EQ(metrics["addresses"].size(), 1u);
  EXPECT_EQ(metrics["addresses"][0]["ip"], "10.42.0.12");
  EXPECT_EQ(metrics["notReadyAddresses"][0]["ip"], "10.42.0.11");
}

TEST(EndpointsSubsetsTest, TruncatesPastCapacity) {
  json subsets = json::array();
  json addrs = json::array();
  for (size_t i = 0; i < kMaxCapacity + 10; ++i) addrs.push_back({{"ip", "10.0.0.1"}});
  subsets.push_back({{"addresses", addrs}, {"notReadyAddresses", addrs}});
  EXPECT_TRUE(truncate_subsets(subsets));
  EXPECT_EQ(subsets[0]["addresses"].size(), kMaxCapacity);
  EXPECT_FALSE(subsets[0].contains("notReadyAddresses"));
  EXPECT_FALSE(truncate_subsets(subsets));
}

// --- against a server --------------------------------------------------------------------------

class EndpointsControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(h_.ok());
    h_.create_namespace(kNs);
    h_.create_node(kNode);
  }

  json endpoints(const std::string& name) {
    auto e = h_.get(res::kEndpoints.in(kNs), name);
    return e ? *e : json();
  }

  // Waits until the Endpoints' subsets satisfy `check`.
  bool wait_subsets(const std::string& name, const std::function<bool(const json&)>& check) {
    return eventually([&] {
      json e = endpoints(name);
      if (!e.is_object()) return false;
      return check(e.value("subsets", json::array()));
    });
  }

  static std::vector<std::string> ips(const json& subsets, const char* field) {
    std::vector<std::string> out;
    for (const json& s : subsets) {
      for (const json& a : s.value(field, json::array())) out.push_back(a.value("ip", ""));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  ControllerHarness h_{{"endpoints"}};
};

TEST_F(EndpointsControllerTest, EndpointsFollowPodReadiness) {
  h_.create(res::kServices.in(kNs),
            service("web", {{"app", "web"}},
                    json::array({{{"name", "http"}, {"port", 80}, {"targetPort", "http"}}})));
  json p1 = h_.create(res::kPods.in(kNs), serving_pod(kNs, "web-1", {{"app", "web"}}, kNode,
                                                      http_ports()));
  h_.create(res::kPods.in(kNs), serving_pod(kNs, "web-2", {{"app", "web"}}, kNode, http_ports()));
  h_.create(res::kPods.in(kNs), serving_pod(kNs, "db", {{"app", "db"}}, kNode, http_ports()));
  h_.set_pod_status(kNs, "web-1", "10.42.0.11", true);
  h_.set_pod_status(kNs, "web-2", "10.42.0.12", false);
  h_.set_pod_status(kNs, "db", "10.42.0.13", true);

  ASSERT_TRUE(wait_subsets("web", [](const json& s) {
    return ips(s, "addresses") == std::vector<std::string>{"10.42.0.11"} &&
           ips(s, "notReadyAddresses") == std::vector<std::string>{"10.42.0.12"};
  })) << endpoints("web").dump(2);
  json e = endpoints("web");
  EXPECT_EQ(e["metadata"]["labels"], json({{"tier", "front"}}));
  json subset = e["subsets"][0];
  EXPECT_EQ(subset["ports"], json::parse(R"([{"name":"http","port":8080,"protocol":"TCP"}])"));
  EXPECT_EQ(subset["addresses"][0],
            json({{"ip", "10.42.0.11"},
                  {"nodeName", kNode},
                  {"targetRef",
                   {{"kind", "Pod"}, {"namespace", kNs}, {"name", "web-1"}, {"uid", uid_of(p1)}}}}));

  h_.set_pod_status(kNs, "web-2", "10.42.0.12", true);
  ASSERT_TRUE(wait_subsets("web", [](const json& s) {
    return ips(s, "addresses") == std::vector<std::string>{"10.42.0.11", "10.42.0.12"} &&
           ips(s, "notReadyAddresses").empty();
  })) << endpoints("web").dump(2);

  h_.set_pod_status(kNs, "web-1", "10.42.0.11", false);
  ASSERT_TRUE(wait_subsets("web", [](const json& s) {
    return ips(s, "addresses") == std::vector<std::string>{"10.42.0.12"} &&
           ips(s, "notReadyAddresses") == std::vector<std::string>{"10.42.0.11"};
  })) << endpoints("web").dump(2);

  // A pod being deleted (its node exists, so it lingers for its grace period) leaves.
  h_.remove(res::kPods.in(kNs), "web-2");
  ASSERT_TRUE(wait_subsets("web", [](const json& s) {
    return ips(s, "addresses").empty() &&
           ips(s, "notReadyAddresses") == std::vector<std::string>{"10.42.0.11"};
  })) << endpoints("web").dump(2);

  // A pod whose labels no longer match leaves; the last one leaves an empty Endpoints.
  h_.merge_patch(res::kPods.in(kNs), "web-1", {{"metadata", {{"labels", {{"app", "old"}}}}}});
  ASSERT_TRUE(wait_subsets("web", [](const json& s) { return s.empty(); }))
      << endpoints("web").dump(2);
}

TEST_F(EndpointsControllerTest, PortsResolveByNumberAndByContainerPortName) {
  h_.create(res::kServices.in(kNs),
            service("api", {{"app", "web"}},
                    json::array({{{"name", "web"}, {"port", 80}, {"targetPort", 8000}},
                                 {{"name", "metrics"}, {"port", 81}, {"targetPort", "metrics"}}})));
  h_.create(res::kPods.in(kNs), serving_pod(kNs, "full", {{"app", "web"}}, kNode, http_ports()));
  h_.create(res::kPods.in(kNs),
            serving_pod(kNs, "plain", {{"app", "web"}}, kNode,
                        json::array({{{"name", "http"}, {"containerPort", 8080}}})));
  h_.set_pod_status(kNs, "full", "10.42.1.1", true);
  h_.set_pod_status(kNs, "plain", "10.42.1.2", true);
  ASSERT_TRUE(wait_subsets("api", [](const json& s) {
    // Both pods offer web (by number); only "full" has a container port named metrics.
    json want = json::parse(R"([
      {"addresses":[{"ip":"10.42.1.1"},{"ip":"10.42.1.2"}],
       "ports":[{"name":"web","port":8000,"protocol":"TCP"}]},
      {"addresses":[{"ip":"10.42.1.1"}],
       "ports":[{"name":"metrics","port":9090,"protocol":"TCP"}]}])");
    if (s.size() != 2) return false;
    for (const json& w : want) {
      bool found = false;
      for (const json& subset : s) {
        if (subset["ports"] != w["ports"]) continue;
        found = ips(json::array({subset}), "addresses") == ips(json::array({w}), "addresses");
      }
      if (!found) return false;
    }
    return true;
  })) << endpoints("api").dump(2);
}

TEST_F(EndpointsControllerTest, HeadlessAndPublishNotReadyServices) {
  h_.create(res::kServices.in(kNs),
            service("peers", {{"app", "web"}}, json::array(),
                    {{"clusterIP", "None"}, {"publishNotReadyAddresses", true}}));
  json p = serving_pod(kNs, "peer-0", {{"app", "web"}}, kNode, http_ports());
  p["spec"]["hostname"] = "peer-0";
  p["spec"]["subdomain"] = "peers";
  h_.create(res::kPods.in(kNs), p);
  h_.set_pod_status(kNs, "peer-0", "10.42.2.1", false);
  ASSERT_TRUE(wait_subsets("peers", [](const json& s) {
    return s.size() == 1 && ips(s, "addresses") == std::vector<std::string>{"10.42.2.1"};
  })) << endpoints("peers").dump(2);
  json e = endpoints("peers");
  EXPECT_EQ(e["subsets"][0]["addresses"][0]["hostname"], "peer-0");
  EXPECT_FALSE(e["subsets"][0].contains("ports"));
  EXPECT_EQ(e["metadata"]["labels"], json({{"tier", "front"}, {kHeadlessServiceLabel, ""}}));
}

TEST_F(EndpointsControllerTest, EndpointsGoWithTheirServiceAndComeBackIfDeleted) {
  h_.create(res::kServices.in(kNs),
            service("web", {{"app", "web"}}, json::array({{{"port", 80}, {"targetPort", 8080}}})));
  h_.create(res::kPods.in(kNs), serving_pod(kNs, "web-1", {{"app", "web"}}, kNode, http_ports()));
  h_.set_pod_status(kNs, "web-1", "10.42.3.1", true);
  ASSERT_TRUE(wait_subsets("web", [](const json& s) { return s.size() == 1; }));
  json first = endpoints("web");

  h_.remove(res::kEndpoints.in(kNs), "web");
  ASSERT_TRUE(eventually([&] {
    json e = endpoints("web");
    return e.is_object() && uid_of(e) != uid_of(first) && e.value("subsets", json()).size() == 1;
  })) << "recreated";

  h_.remove(res::kServices.in(kNs), "web");
  EXPECT_TRUE(h_.wait_gone(res::kEndpoints.in(kNs), "web"));
}

TEST_F(EndpointsControllerTest, ServicesWithoutSelectorAreLeftAlone) {
  h_.create(res::kServices.in(kNs),
            service("external", nullptr, json::array({{{"port", 5432}}})));
  json manual = {{"apiVersion", "v1"},
                 {"kind", "Endpoints"},
                 {"metadata", {{"name", "external"}, {"namespace", kNs}}},
                 {"subsets",
                  json::array({{{"addresses", json::array({{{"ip", "192.0.2.10"}}})},
                                {"ports", json::array({{{"port", 5432}}})}}})}};
  h_.create(res::kEndpoints.in(kNs), manual);
  // A Service with a selector next to it is handled, so the controller is running.
  h_.create(res::kServices.in(kNs),
            service("web", {{"app", "web"}}, json::array({{{"port", 80}}})));
  ASSERT_TRUE(eventually([&] { return endpoints("web").is_object(); }));
  json e = endpoints("external");
  ASSERT_TRUE(e.is_object());
  EXPECT_EQ(e["subsets"][0]["addresses"][0]["ip"], "192.0.2.10");
  // The API server's own Endpoints stay as it keeps them.
  auto kube = h_.get(res::kEndpoints.in("default"), "kubernetes");
  ASSERT_TRUE(kube);
  EXPECT_EQ(str(*kube, {"metadata", "labels", "endpointslice.kubernetes.io/skip-mirror"}), "true");
}

}  // namespace
}  // namespace skiff::controllers::endpoints
