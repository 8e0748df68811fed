#include "controllers/endpointslice/endpoint_slice_controller.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "unit/controllers/garbagecollector/controller_harness.h"

namespace skiff::controllers::endpointslice {
namespace {

using namespace std::chrono_literals;
using testing_support::ControllerHarness;
using testing_support::eventually;
using testing_support::serving_pod;
using testing_support::str;
using testing_support::uid_of;
namespace res = client::resources;

constexpr char kNs[] = "slice-test";
constexpr char kNode[] = "node-1";

json container_ports() {
  return json::array({{{"name", "http"}, {"containerPort", 8080}},
                      {{"name", "metrics"}, {"containerPort", 9090}}});
}

json service(const std::string& name, json ports, json extra_spec = {}) {
  json spec = {{"selector", {{"app", name}}}, {"ports", std::move(ports)}};
  if (extra_spec.is_object()) {
    for (auto& [k, v] : extra_spec.items()) spec[k] = v;
  }
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", kNs}, {"labels", {{"tier", "front"}}}}},
          {"spec", spec}};
}

TEST(EndpointSliceLabelsTest, ServiceLabelsPlusTheControllersOwn) {
  json svc = {{"metadata",
               {{"name", "web"},
                {"labels", {{"tier", "front"}, {kManagedByLabel, "someone-else"}}}}},
              {"spec", {{"clusterIP", "None"}}}};
  EXPECT_EQ(slice_labels(svc), json({{"tier", "front"},
                                     {kServiceNameLabel, "web"},
                                     {kManagedByLabel, kControllerName},
                                     {"service.kubernetes.io/headless", ""}}));
}

TEST(EndpointSliceLabelsTest, PortsOfAPodInServiceOrder) {
  json svc = {{"spec",
               {{"ports", json::array({{{"name", "b"}, {"port", 81}, {"targetPort", "metrics"}},
                                       {{"name", "a"}, {"port", 80}, {"targetPort", "grpc"}},
                                       {{"port", 82}, {"protocol", "UDP"}}})}}}};
  json pod = serving_pod(kNs, "p", {{"app", "web"}}, kNode, container_ports());
  EXPECT_EQ(endpoint_ports(svc, pod),
            json::parse(R"([{"name":"b","port":9090,"protocol":"TCP"},
                            {"name":"","port":82,"protocol":"UDP"}])"));
}

class EndpointSliceControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(h_.ok());
    h_.create_namespace(kNs);
    h_.create_node(kNode, {{"topology.kubernetes.io/zone", "zone-a"}});
  }

  std::vector<json> slices_of(const std::string& svc) {
    client::ListOptions o;
    o.label_selector = std::string(kServiceNameLabel) + "=" + svc;
    auto list = h_.client().list(res::kEndpointSlices.in(kNs), o);
    EXPECT_TRUE(list.ok()) << list.status().to_string();
    std::vector<json> out;
    if (list.ok()) {
      for (auto& s : list->items) out.push_back(*s);
    }
    return out;
  }

  // Every endpoint of the Service's slices by pod name.
  std::map<std::string, json> endpoints_of(const std::string& svc) {
    std::map<std::string, json> out;
    for (const json& s : slices_of(svc)) {
      for (const json& e : s.value("endpoints", json::array())) {
        out[str(e, {"targetRef", "name"})] = e;
      }
    }
    return out;
  }

  std::string dump(const std::string& svc) {
    json all = json::array();
    for (const json& s : slices_of(svc)) all.push_back(s);
    return all.dump(2);
  }

  static json conditions(bool ready, bool serving, bool terminating) {
    return {{"ready", ready}, {"serving", serving}, {"terminating", terminating}};
  }

  ControllerHarness h_{{"endpointslice"}};
};

TEST_F(EndpointSliceControllerTest, SlicesFollowPodReadinessAndTermination) {
  json svc = h_.create(res::kServices.in(kNs),
                       service("web", json::array({{{"name", "http"},
                                                    {"port", 80},
                                                    {"targetPort", "http"}}})));
  // No pods yet: one empty placeholder slice.
  ASSERT_TRUE(eventually([&] {
    auto s = slices_of("web");
    return s.size() == 1 && s[0].value("endpoints", json::array()).empty();
  })) << dump("web");

  json p1 = h_.create(res::kPods.in(kNs),
                      serving_pod(kNs, "web-1", {{"app", "web"}}, kNode, container_ports()));
  h_.create(res::kPods.in(kNs),
            serving_pod(kNs, "web-2", {{"app", "web"}}, kNode, container_ports()));
  h_.set_pod_status(kNs, "web-1", "10.42.0.11", true);
  h_.set_pod_status(kNs, "web-2", "10.42.0.12", false);
  ASSERT_TRUE(eventually([&] {
    auto eps = endpoints_of("web");
    return slices_of("web").size() == 1 && eps.size() == 2 &&
           eps["web-1"]["conditions"] == conditions(true, true, false) &&
           eps["web-2"]["conditions"] == conditions(false, false, false);
  })) << dump("web");

  json slice = slices_of("web")[0];
  EXPECT_EQ(slice["addressType"], "IPv4");
  EXPECT_EQ(slice["metadata"]["labels"], json({{"tier", "front"},
                                               {kServiceNameLabel, "web"},
                                               {kManagedByLabel, kControllerName}}));
  EXPECT_EQ(slice["metadata"]["ownerReferences"],
            json::array({{{"apiVersion", "v1"},
                          {"kind", "Service"},
                          {"name", "web"},
                          {"uid", uid_of(svc)},
                          {"controller", true},
                          {"blockOwnerDeletion", true}}}));
  EXPECT_EQ(slice["metadata"]["name"].get<std::string>().rfind("web-", 0), 0u);
  EXPECT_EQ(slice["ports"], json::parse(R"([{"name":"http","port":8080,"protocol":"TCP"}])"));
  EXPECT_EQ(endpoints_of("web")["web-1"],
            json({{"addresses", {"10.42.0.11"}},
                  {"conditions", conditions(true, true, false)},
                  {"nodeName", kNode},
                  {"zone", "zone-a"},
                  {"targetRef",
                   {{"kind", "Pod"}, {"namespace", kNs}, {"name", "web-1"}, {"uid", uid_of(p1)}}}}));

  h_.set_pod_status(kNs, "web-2", "10.42.0.12", true);
  ASSERT_TRUE(eventually([&] {
    return endpoints_of("web")["web-2"]["conditions"] == conditions(true, true, false);
  })) << dump("web");

  // Terminating (its node exists, so it lingers for its grace period): still serving, not
  // ready.
  h_.remove(res::kPods.in(kNs), "web-1");
  ASSERT_TRUE(eventually([&] {
    return endpoints_of("web")["web-1"]["conditions"] == conditions(false, true, true);
  })) << dump("web");

  // Gone for good.
  h_.remove_now(res::kPods.in(kNs), "web-1");
  ASSERT_TRUE(eventually([&] {
    auto eps = endpoints_of("web");
    return eps.size() == 1 && eps.count("web-2") == 1;
  })) << dump("web");
  EXPECT_EQ(slices_of("web").size(), 1u);
}

TEST_F(EndpointSliceControllerTest, PodsWithDifferentPortsGetDifferentSlices) {
  h_.create(res::kServices.in(kNs),
            service("api", json::array({{{"name", "web"}, {"port", 80}, {"targetPort", 8000}},
                                        {{"name", "metrics"},
                                         {"port", 81},
                                         {"targetPort", "metrics"}}})));
  h_.create(res::kPods.in(kNs), serving_pod(kNs, "full", {{"app", "api"}}, kNode,
                                            container_ports()));
  h_.create(res::kPods.in(kNs),
            serving_pod(kNs, "plain", {{"app", "api"}}, kNode,
                        json::array({{{"name", "http"}, {"containerPort", 8080}}})));
  h_.set_pod_status(kNs, "full", "10.42.1.1", true);
  h_.set_pod_status(kNs, "plain", "10.42.1.2", true);
  ASSERT_TRUE(eventually([&] {
    auto slices = slices_of("api");
    if (slices.size() != 2) return false;
    for (const json& s : slices) {
      if (s.value("endpoints", json::array()).size() != 1) return false;
      std::string pod = str(s["endpoints"][0], {"targetRef", "name"});
      json want = pod == "full"
                      ? json::parse(R"([{"name":"web","port":8000,"protocol":"TCP"},
                                        {"name":"metrics","port":9090,"protocol":"TCP"}])")
                      : json::parse(R"([{"name":"web","port":8000,"protocol":"TCP"}])");
      if (s["ports"] != want) return false;
    }
    return true;
  })) << dump("api");
}

TEST_F(EndpointSliceControllerTest, PodsOnMissingNodesAreLeftOut) {
  h_.create(res::kServices.in(kNs),
            service("web", json::array({{{"port", 80}, {"targetPort", 8080}}})));
  h_.create(res::kPods.in(kNs),
            serving_pod(kNs, "here", {{"app", "web"}}, kNode, container_ports()));
  h_.create(res::kPods.in(kNs),
            serving_pod(kNs, "nowhere", {{"app", "web"}}, "node-gone", container_ports()));
  h_.set_pod_status(kNs, "here", "10.42.2.1", true);
  h_.set_pod_status(kNs, "nowhere", "10.42.2.2", true);
  ASSERT_TRUE(eventually([&] {
    auto eps = endpoints_of("web");
    return eps.size() == 1 && eps.count("here") == 1;
  })) << dump("web");
  // Once the node shows up, the pod joins.
  h_.create_node("node-gone");
  ASSERT_TRUE(eventually([&] { return endpoints_of("web").size() == 2; })) << dump("web");
}

TEST_F(EndpointSliceControllerTest, SlicesHoldAtMostOneHundredEndpoints) {
  h_.create(res::kServices.in(kNs),
            service("big", json::array({{{"port", 80}, {"targetPort", 8080}}})));
  constexpr int kPods = 105;
  for (int i = 0; i < kPods; ++i) {
    std::string name = "big-" + std::to_string(i);
    h_.create(res::kPods.in(kNs), serving_pod(kNs, name, {{"app", "big"}}, kNode,
                                              container_ports()));
    h_.set_pod_status(kNs, name, "10.42.3." + std::to_string(i + 1), true);
  }
  ASSERT_TRUE(eventually([&] { return endpoints_of("big").size() == kPods; }, 60s))
      << endpoints_of("big").size();
  auto slices = slices_of("big");
  ASSERT_EQ(slices.size(), 2u);
  for (const json& s : slices) {
    EXPECT_LE(s["endpoints"].size(), kMaxEndpointsPerSlice);
  }
}

TEST_F(EndpointSliceControllerTest, SlicesGoWithTheirService) {
  h_.create(res::kServices.in(kNs),
            service("web", json::array({{{"port", 80}, {"targetPort", 8080}}})));
  h_.create(res::kPods.in(kNs),
            serving_pod(kNs, "web-1", {{"app", "web"}}, kNode, container_ports()));
  h_.set_pod_status(kNs, "web-1", "10.42.4.1", true);
  ASSERT_TRUE(eventually([&] { return endpoints_of("web").size() == 1; })) << dump("web");
  std::string name = str(slices_of("web")[0], {"metadata", "name"});

  // A slice deleted by someone else is made again.
  h_.remove(res::kEndpointSlices.in(kNs), name);
  ASSERT_TRUE(eventually([&] {
    auto s = slices_of("web");
    return s.size() == 1 && str(s[0], {"metadata", "name"}) != name &&
           s[0].value("endpoints", json::array()).size() == 1;
  })) << dump("web");

  h_.remove(res::kServices.in(kNs), "web");
  ASSERT_TRUE(eventually([&] { return slices_of("web").empty(); })) << dump("web");
}

TEST_F(EndpointSliceControllerTest, ServicesWithoutSelectorGetNoSlices) {
  json svc = service("external", json::array({{{"port", 5432}}}));
  svc["spec"].erase("selector");
  h_.create(res::kServices.in(kNs), svc);
  h_.create(res::kServices.in(kNs),
            service("web", json::array({{{"port", 80}, {"targetPort", 8080}}})));
  ASSERT_TRUE(eventually([&] { return slices_of("web").size() == 1; }));
  EXPECT_TRUE(slices_of("external").empty());
}

}  // namespace
}  // namespace skiff::controllers::endpointslice
