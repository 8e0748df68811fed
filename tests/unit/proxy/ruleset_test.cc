#include "proxy/ruleset.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace skiff::proxy {
namespace {

using client::ObjectPtr;
using nlohmann::json;

ObjectPtr obj(json j) { return std::make_shared<const json>(std::move(j)); }

json service(const std::string& name, const std::string& cluster_ip, json ports,
             const std::string& type = "ClusterIP") {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"resourceVersion", "1"}}},
          {"spec", {{"type", type}, {"clusterIP", cluster_ip}, {"ports", std::move(ports)}}}};
}

json endpoint(const std::string& ip, bool ready, json extra = json::object()) {
  json e = {{"addresses", {ip}}, {"conditions", {{"ready", ready}, {"serving", ready}}}};
  for (auto& [k, v] : extra.items()) {
    if (k == "conditions") {
      for (auto& [ck, cv] : v.items()) e["conditions"][ck] = cv;
    } else {
      e[k] = v;
    }
  }
  return e;
}

json slice(const std::string& name, const std::string& service, json ports, json endpoints) {
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", name},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", service}}}}},
          {"addressType", "IPv4"},
          {"ports", std::move(ports)},
          {"endpoints", std::move(endpoints)}};
}

json port(const std::string& name, int p, const std::string& protocol = "TCP") {
  return {{"name", name}, {"port", p}, {"protocol", protocol}};
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) {
    ++n;
  }
  return n;
}

TEST(ServicePorts, OnlyReadyEndpointsAreUsed) {
  auto ports = service_ports(
      {obj(service("web", "10.43.0.20", json::array({port("http", 80)})))},
      {obj(slice("web-a", "web", json::array({port("http", 8080)}),
                 json::array({endpoint("10.42.0.5", true), endpoint("10.42.0.6", false),
                              endpoint("10.42.0.7", true)})))});
  ASSERT_EQ(ports.size(), 1u);
  ASSERT_EQ(ports[0].endpoints.size(), 2u);
  EXPECT_EQ(ports[0].endpoints[0].ip, "10.42.0.5");
  EXPECT_EQ(ports[0].endpoints[1].ip, "10.42.0.7");
  EXPECT_EQ(ports[0].endpoints[0].port, 8080);
  EXPECT_EQ(ports[0].protocol, "tcp");
  EXPECT_EQ(ports[0].cluster_ip, "10.43.0.20");
}

TEST(ServicePorts, ServingTerminatingEndpointsAreAFallbackOnly) {
  json terminating =
      endpoint("10.42.0.8", false, {{"conditions", {{"serving", true}, {"terminating", true}}}});
  json not_serving = endpoint("10.42.0.9", false, {{"conditions", {{"terminating", true}}}});
  auto svc = obj(service("web", "10.43.0.20", json::array({port("http", 80)})));
  auto only_terminating =
      service_ports({svc}, {obj(slice("s", "web", json::array({port("http", 8080)}),
                                      json::array({terminating, not_serving})))});
  ASSERT_EQ(only_terminating.size(), 1u);
  ASSERT_EQ(only_terminating[0].endpoints.size(), 1u);
  EXPECT_EQ(only_terminating[0].endpoints[0].ip, "10.42.0.8");

  auto with_ready =
      service_ports({svc}, {obj(slice("s", "web", json::array({port("http", 8080)}),
                                      json::array({terminating, endpoint("10.42.0.10", true)})))});
  ASSERT_EQ(with_ready[0].endpoints.size(), 1u);
  EXPECT_EQ(with_ready[0].endpoints[0].ip, "10.42.0.10");
}

TEST(ServicePorts, AbsentConditionsMeanReady) {
  json bare = {{"addresses", {"10.42.0.11"}}};
  auto ports =
      service_ports({obj(service("web", "10.43.0.20", json::array({port("", 80)})))},
                    {obj(slice("s", "web", json::array({port("", 8080)}), json::array({bare})))});
  ASSERT_EQ(ports[0].endpoints.size(), 1u);
}

TEST(ServicePorts, NamedTargetPortsResolvePerSlice) {
  // Two pod generations name the same container port differently in number: the slices carry
  // the resolved numbers, each for its own endpoints.
  auto ports = service_ports({obj(service("web", "10.43.0.20", json::array({port("http", 80)})))},
                             {obj(slice("web-old", "web", json::array({port("http", 8080)}),
                                        json::array({endpoint("10.42.0.5", true)}))),
                              obj(slice("web-new", "web", json::array({port("http", 9090)}),
                                        json::array({endpoint("10.42.1.5", true)})))});
  ASSERT_EQ(ports[0].endpoints.size(), 2u);
  EXPECT_EQ(ports[0].endpoints[0].port, 8080);
  EXPECT_EQ(ports[0].endpoints[1].port, 9090);
  std::string text = render_ruleset(ports, {});
  EXPECT_TRUE(contains(text, "dnat to 10.42.0.5:8080"));
  EXPECT_TRUE(contains(text, "dnat to 10.42.1.5:9090"));
}

TEST(ServicePorts, MultiplePortsMatchSlicePortsByNameAndProtocol) {
  auto ports =
      service_ports({obj(service("dns", "10.43.0.10",
                                 json::array({port("dns", 53, "UDP"), port("dns-tcp", 53, "TCP"),
                                              port("metrics", 9153)})))},
                    {obj(slice("dns-a", "dns",
                               json::array({port("dns", 5353, "UDP"), port("dns-tcp", 5354, "TCP"),
                                            port("metrics", 9153)}),
                               json::array({endpoint("10.42.0.3", true)})))});
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(ports[0].port_name, "dns");
  EXPECT_EQ(ports[0].protocol, "udp");
  EXPECT_EQ(ports[0].endpoints[0].port, 5353);
  EXPECT_EQ(ports[1].port_name, "dns-tcp");
  EXPECT_EQ(ports[1].endpoints[0].port, 5354);
  EXPECT_EQ(ports[2].endpoints[0].port, 9153);
  std::string text = render_ruleset(ports, {});
  EXPECT_TRUE(contains(text, "10.43.0.10 . udp . 53 : goto service-"));
  EXPECT_TRUE(contains(text, "10.43.0.10 . tcp . 53 : goto service-"));
  EXPECT_TRUE(contains(text, "10.43.0.10 . tcp . 9153 : goto service-"));
  EXPECT_TRUE(contains(text, "meta l4proto udp dnat to 10.42.0.3:5353"));
  EXPECT_TRUE(contains(text, "meta l4proto tcp dnat to 10.42.0.3:5354"));
}

TEST(ServicePorts, HeadlessExternalNameAndBrokenServicesGetNothing) {
  json external = service("ext", "", json::array({port("http", 80)}), "ExternalName");
  external["spec"]["externalName"] = "example.com";
  auto ports =
      service_ports({obj(service("headless", "None", json::array({port("http", 80)}))),
                     obj(external), obj(service("pending", "", json::array({port("http", 80)}))),
                     obj(service("badport", "10.43.0.30", json::array({port("http", 70000)}))),
                     obj(json::array()), nullptr},
                    {obj(slice("headless-a", "headless", json::array({port("http", 8080)}),
                               json::array({endpoint("10.42.0.5", true)})))});
  EXPECT_TRUE(ports.empty());
  std::string text = render_ruleset(ports, {});
  EXPECT_FALSE(contains(text, "10.42.0.5"));
  EXPECT_FALSE(contains(text, ": goto service-"));
}

TEST(RenderRuleset, ReplacesTheWholeTableAtomically) {
  std::string text = render_ruleset({}, {});
  EXPECT_EQ(text.rfind("table ip skiff\ndelete table ip skiff\ntable ip skiff {\n", 0), 0u);
  EXPECT_TRUE(contains(text, "type nat hook prerouting priority dstnat"));
  EXPECT_TRUE(contains(text, "type nat hook output priority -100"));
  EXPECT_TRUE(contains(text, "type nat hook postrouting priority srcnat"));
  EXPECT_TRUE(contains(text, "map service-ips {"));
  EXPECT_EQ(text, render_ruleset({}, {}));
  EXPECT_EQ(delete_ruleset(), "table ip skiff\ndelete table ip skiff\n");
}

TEST(RenderRuleset, UsesTheNodesOwnTable) {
  ServicePort p;
  p.ns = "default";
  p.name = "skiff";  // a service named like the table keeps its chains' names
  p.protocol = "tcp";
  p.cluster_ip = "10.43.0.20";
  p.port = 80;
  Endpoint e;
  e.ip = "10.42.0.5";
  e.port = 8080;
  p.endpoints = {e};
  RulesetOptions ro;
  ro.table = "skiff-br1";
  std::string text = render_ruleset({p}, ro);
  EXPECT_EQ(text.rfind("table ip skiff-br1\ndelete table ip skiff-br1\ntable ip skiff-br1 {\n", 0),
            0u)
      << text;
  EXPECT_FALSE(contains(text, "table ip skiff\n")) << text;
  EXPECT_TRUE(contains(text, "service-")) << text;
  EXPECT_EQ(delete_ruleset("skiff-br1"), "table ip skiff-br1\ndelete table ip skiff-br1\n");
}

TEST(RenderRuleset, LoadBalancesWithNumgenOverReadyEndpoints) {
  auto ports = service_ports(
      {obj(service("web", "10.43.0.20", json::array({port("http", 80)})))},
      {obj(slice("web-a", "web", json::array({port("http", 8080)}),
                 json::array({endpoint("10.42.0.5", true), endpoint("10.42.0.6", false),
                              endpoint("10.42.0.7", true), endpoint("10.42.0.8", true)})))});
  std::string text = render_ruleset(ports, {"", {}, "10.42.0.0/16"});
  EXPECT_TRUE(contains(text, "10.43.0.20 . tcp . 80 : goto service-"));
  EXPECT_TRUE(contains(text, "numgen random mod 3 vmap { 0 : goto endpoint-"));
  EXPECT_EQ(count(text, "dnat to"), 3);
  EXPECT_FALSE(contains(text, "10.42.0.6"));
  // Traffic from outside the pod network to the ClusterIP is masqueraded; hairpin too.
  EXPECT_TRUE(contains(text,
                       "ip daddr 10.43.0.20 tcp dport 80 ip saddr != 10.42.0.0/16 jump "
                       "mark-for-masquerade"));
  EXPECT_TRUE(contains(text, "ip saddr 10.42.0.5 jump mark-for-masquerade"));
  EXPECT_FALSE(contains(text, "goto reject-chain,"));
}

TEST(RenderRuleset, ServiceWithoutReadyEndpointsIsRejected) {
  auto ports = service_ports(
      {obj(service("web", "10.43.0.20", json::array({port("http", 80)}), "NodePort"))},
      {obj(slice("web-a", "web", json::array({port("http", 8080)}),
                 json::array({endpoint("10.42.0.6", false)})))});
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_TRUE(ports[0].endpoints.empty());
  std::string text = render_ruleset(ports, {});
  EXPECT_TRUE(contains(text, "10.43.0.20 . tcp . 80 : goto reject-chain"));
  EXPECT_FALSE(contains(text, "dnat to"));
  EXPECT_FALSE(contains(text, ": goto service-"));
  EXPECT_TRUE(contains(text, "ct state new jump service-endpoints-check"));
}

TEST(RenderRuleset, NodePortsGoThroughAMasqueradingExternalChain) {
  json svc = service("web", "10.43.0.20", json::array({port("http", 80)}), "NodePort");
  svc["spec"]["ports"][0]["nodePort"] = 30080;
  svc["spec"]["externalIPs"] = {"192.0.2.9"};
  auto ports =
      service_ports({obj(svc)}, {obj(slice("web-a", "web", json::array({port("http", 8080)}),
                                           json::array({endpoint("10.42.0.5", true)})))});
  ASSERT_EQ(ports[0].node_port, 30080);
  std::string with_ips = render_ruleset(ports, {"n1", {"192.168.1.10", "192.168.1.11"}, ""});
  EXPECT_TRUE(contains(with_ips, "set nodeport-ips {"));
  EXPECT_TRUE(contains(with_ips, "192.168.1.10,"));
  EXPECT_TRUE(contains(with_ips,
                       "ip daddr @nodeport-ips meta l4proto . th dport vmap "
                       "@service-nodeports"));
  EXPECT_TRUE(contains(with_ips, "tcp . 30080 : goto external-"));
  EXPECT_TRUE(contains(with_ips, "192.0.2.9 . tcp . 80 : goto external-"));
  EXPECT_TRUE(contains(with_ips, "jump mark-for-masquerade\n\t\tgoto service-"));

  std::string without_ips = render_ruleset(ports, {});
  EXPECT_FALSE(contains(without_ips, "nodeport-ips"));
  EXPECT_TRUE(contains(without_ips,
                       "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto "
                       ". th dport vmap @service-nodeports"));

  // A ClusterIP service's nodePort field, if any, is not served.
  json plain = service("web", "10.43.0.20", json::array({port("http", 80)}));
  plain["spec"]["ports"][0]["nodePort"] = 30080;
  EXPECT_EQ(service_ports({obj(plain)}, {})[0].node_port, 0);
}

TEST(RenderRuleset, NodePortWithoutEndpointsIsRejected) {
  json svc = service("web", "10.43.0.20", json::array({port("http", 80)}), "LoadBalancer");
  svc["spec"]["ports"][0]["nodePort"] = 30081;
  std::string text = render_ruleset(service_ports({obj(svc)}, {}), {});
  EXPECT_TRUE(contains(text, "tcp . 30081 : goto reject-chain"));
  EXPECT_TRUE(contains(text, "ct state new jump nodeport-endpoints-check"));
}

TEST(RenderRuleset, ExternalTrafficPolicyLocalUsesOnlyThisNodesEndpoints) {
  json svc = service("web", "10.43.0.20", json::array({port("http", 80)}), "NodePort");
  svc["spec"]["ports"][0]["nodePort"] = 30080;
  svc["spec"]["externalTrafficPolicy"] = "Local";
  auto ports = service_ports(
      {obj(svc)}, {obj(slice("web-a", "web", json::array({port("http", 8080)}),
                             json::array({endpoint("10.42.0.5", true, {{"nodeName", "n1"}}),
                                          endpoint("10.42.1.5", true, {{"nodeName", "n2"}})})))});
  std::string on_n1 = render_ruleset(ports, {"n1", {"192.168.1.10"}, "10.42.0.0/16"});
  EXPECT_TRUE(contains(on_n1, "ip saddr 10.42.0.0/16 goto service-"));
  EXPECT_TRUE(contains(on_n1, "fib saddr type local goto service-"));
  // External traffic goes straight to the local endpoint, unmasqueraded.
  size_t ext = on_n1.find("chain external-");
  ASSERT_NE(ext, std::string::npos);
  std::string chain = on_n1.substr(ext, on_n1.find('}', ext) - ext);
  EXPECT_TRUE(contains(chain, "10.42.0.5/8080"));
  EXPECT_FALSE(contains(chain, "10.42.1.5"));
  std::string on_n3 = render_ruleset(ports, {"n3", {"192.168.1.12"}, "10.42.0.0/16"});
  ext = on_n3.find("chain external-");
  chain = on_n3.substr(ext, on_n3.find('}', ext) - ext);
  EXPECT_TRUE(contains(chain, "\t\tdrop\n"));
}

TEST(RenderRuleset, SessionAffinityKeepsClientsOnTheirEndpoint) {
  json svc = service("web", "10.43.0.20", json::array({port("http", 80)}));
  svc["spec"]["sessionAffinity"] = "ClientIP";
  svc["spec"]["sessionAffinityConfig"] = {{"clientIP", {{"timeoutSeconds", 600}}}};
  auto ports = service_ports(
      {obj(svc)},
      {obj(slice("web-a", "web", json::array({port("http", 8080)}),
                 json::array({endpoint("10.42.0.5", true), endpoint("10.42.0.6", true)})))});
  ASSERT_EQ(ports[0].affinity_timeout_seconds, 600);
  std::string text = render_ruleset(ports, {});
  EXPECT_EQ(count(text, "flags dynamic,timeout"), 2);
  EXPECT_EQ(count(text, "timeout 600s"), 2);
  EXPECT_EQ(count(text, "update @affinity-"), 2);
  EXPECT_EQ(count(text, "ip saddr @affinity-"), 2);
}

TEST(RenderRuleset, OutputIsDeterministicWhateverTheInputOrder) {
  auto a = obj(service("a", "10.43.0.21", json::array({port("http", 80)})));
  auto b = obj(service("b", "10.43.0.22", json::array({port("http", 80)})));
  auto sa = obj(slice("a-1", "a", json::array({port("http", 80)}),
                      json::array({endpoint("10.42.0.9", true), endpoint("10.42.0.10", true)})));
  auto sb = obj(slice("b-1", "b", json::array({port("http", 80)}),
                      json::array({endpoint("10.42.0.11", true)})));
  EXPECT_EQ(desired_ruleset({a, b}, {sa, sb}, {}), desired_ruleset({b, a}, {sb, sa}, {}));
  // Numeric address order: .9 before .10.
  auto ports = service_ports({a}, {sa});
  EXPECT_EQ(ports[0].endpoints[0].ip, "10.42.0.9");
}

}  // namespace
}  // namespace skiff::proxy
