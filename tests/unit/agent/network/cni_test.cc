#include "agent/network/cni.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent/network/link.h"
#include "net_test_util.h"

namespace skiff::agent::network {
namespace {

using nlohmann::json;

CniNetworkConfig sample_config() {
  CniNetworkConfig c;
  c.name = "sknet1";
  c.cni_version = "1.0.0";
  c.bridge = "sknet1";
  c.subnet = "10.200.3.0/24";
  c.gateway = "10.200.3.1";
  c.ipam_data_dir = "/var/lib/skiff/network/ipam";
  return c;
}

TEST(CniConfigTest, ConflistChainsBridgeWithHostLocalThenPortmap) {
  json list = json::parse(render_conflist(sample_config()));
  EXPECT_EQ(list["cniVersion"], "1.0.0");
  EXPECT_EQ(list["name"], "sknet1");
  ASSERT_EQ(list["plugins"].size(), 2u);
  const json& bridge = list["plugins"][0];
  EXPECT_EQ(bridge["type"], "bridge");
  EXPECT_EQ(bridge["bridge"], "sknet1");
  EXPECT_EQ(bridge["isGateway"], true);
  EXPECT_EQ(bridge["ipMasq"], true);
  EXPECT_EQ(bridge["hairpinMode"], true);
  EXPECT_FALSE(bridge.contains("mtu"));
  const json& ipam = bridge["ipam"];
  EXPECT_EQ(ipam["type"], "host-local");
  EXPECT_EQ(ipam["ranges"][0][0]["subnet"], "10.200.3.0/24");
  EXPECT_EQ(ipam["ranges"][0][0]["gateway"], "10.200.3.1");
  EXPECT_EQ(ipam["routes"][0]["dst"], "0.0.0.0/0");
  EXPECT_EQ(ipam["dataDir"], "/var/lib/skiff/network/ipam");
  const json& portmap = list["plugins"][1];
  EXPECT_EQ(portmap["type"], "portmap");
  EXPECT_EQ(portmap["capabilities"]["portMappings"], true);

  CniNetworkConfig with_mtu = sample_config();
  with_mtu.mtu = 1400;
  EXPECT_EQ(json::parse(render_conflist(with_mtu))["plugins"][0]["mtu"], 1400);
  json lo = json::parse(render_loopback_config("1.0.0"));
  EXPECT_EQ(lo["type"], "loopback");
  EXPECT_EQ(lo["cniVersion"], "1.0.0");
}

TEST(CniResultTest, ReadsTheContainerAddressOfA100Result) {
  const char* result = R"({"cniVersion":"1.0.0",
    "interfaces":[{"name":"sknet1","mac":"e2:41:51:9d:5f:b3"},
                  {"name":"veth8c78a9c5","mac":"fe:35:76:fb:29:93"},
                  {"name":"eth0","mac":"aa:5a:09:fb:11:65","sandbox":"/x/net"}],
    "ips":[{"interface":2,"address":"10.200.3.7/24","gateway":"10.200.3.1"}],
    "routes":[{"dst":"0.0.0.0/0"}],"dns":{}})";
  auto s = parse_cni_result(result, "eth0", "sknet1");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->pod_ip, "10.200.3.7");
  EXPECT_EQ(s->prefix_length, 24);
  EXPECT_EQ(s->gateway, "10.200.3.1");
  EXPECT_EQ(s->mac, "aa:5a:09:fb:11:65");
  EXPECT_EQ(s->host_interface, "veth8c78a9c5");
}

TEST(CniResultTest, ReadsA040ResultAndSkipsIpv6) {
  const char* result = R"({"cniVersion":"0.4.0",
    "interfaces":[{"name":"br"},{"name":"vethx"},{"name":"eth0","sandbox":"/n"}],
    "ips":[{"version":"6","interface":2,"address":"fd00::5/64"},
           {"version":"4","interface":2,"address":"10.9.0.5/16","gateway":"10.9.0.1"}]})";
  auto s = parse_cni_result(result, "eth0", "br");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->pod_ip, "10.9.0.5");
  EXPECT_EQ(s->prefix_length, 16);
  EXPECT_EQ(s->host_interface, "vethx");
}

TEST(CniResultTest, RejectsResultsWithoutAnAddress) {
  EXPECT_EQ(parse_cni_result("not json", "eth0", "br").status().code(), StatusCode::kInternal);
  EXPECT_EQ(parse_cni_result(R"({"ips":[]})", "eth0", "br").status().code(), StatusCode::kInternal);
  // An address on an interface other than the pod's does not count.
  auto other = parse_cni_result(
      R"({"interfaces":[{"name":"br"}],"ips":[{"interface":0,"address":"10.0.0.1/24"}]})", "eth0",
      "br");
  EXPECT_FALSE(other.ok());
  // Odd shapes are errors, not crashes.
  EXPECT_FALSE(parse_cni_result(R"({"ips":[{"address":7}],"interfaces":3})", "eth0", "br").ok());
}

TEST(CniPluginTest, TheInstalledPluginsSpeakCni100) {
  if (!testing::cni_plugins_installed()) GTEST_SKIP() << "needs containernetworking-plugins";
  for (const char* plugin : {"bridge", "host-local", "portmap", "loopback"}) {
    auto v = cni_supported_versions(std::string("/usr/lib/cni/") + plugin);
    ASSERT_TRUE(v.ok()) << plugin << ": " << v.status().to_string();
    EXPECT_NE(std::find(v->begin(), v->end(), "1.0.0"), v->end()) << plugin;
  }
}

TEST(CniPluginTest, AMissingPluginIsUnavailableWithAHint) {
  testing::TempDir empty("skiff-cni-bin-");
  CniRuntime rt;
  rt.bin_dir = empty.path();
  rt.container_id = "c1";
  rt.netns = "/nonexistent";
  auto r = cni_add_list(render_conflist(sample_config()), rt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("containernetworking-plugins"), std::string::npos);
}

TEST(CniPluginTest, APluginErrorNamesThePluginCommandAndMessage) {
  if (!testing::cni_plugins_installed()) GTEST_SKIP() << "needs containernetworking-plugins";
  if (!testing::running_as_root()) GTEST_SKIP() << "needs root (the plugin creates the bridge)";
  testing::TempDir dir;
  CniNetworkConfig c = sample_config();
  // The bridge plugin creates the bridge before it looks at the namespace.
  c.name = c.bridge = "sk" + testing::unique_suffix();
  c.ipam_data_dir = dir.path() + "/ipam";
  struct BridgeRemover {
    std::string name;
    ~BridgeRemover() { (void)delete_link(name); }
  } remover{c.bridge};
  CniRuntime rt;
  rt.container_id = "c1";
  rt.netns = dir.path() + "/no-such-netns";
  auto r = cni_add_list(render_conflist(c), rt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("CNI plugin \"bridge\" ADD for c1 failed"), std::string::npos)
      << r.status().to_string();
  EXPECT_NE(r.status().message().find("no-such-netns"), std::string::npos)
      << r.status().to_string();
  // DEL without a namespace is fine and leaves nothing.
  rt.netns = "";
  Status del = cni_del_list(render_conflist(c), rt, "");
  EXPECT_TRUE(del.ok()) << del.to_string();
  EXPECT_FALSE(testing::file_exists(c.ipam_data_dir + "/" + c.name + "/10.200.3.2"));
}

TEST(CniPluginTest, CheckNeedsTheAddResult) {
  CniRuntime rt;
  rt.container_id = "c1";
  EXPECT_EQ(cni_check_list(render_conflist(sample_config()), rt, "").code(), StatusCode::kInvalid);
}

}  // namespace
}  // namespace skiff::agent::network
