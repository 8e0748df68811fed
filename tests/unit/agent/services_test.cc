// The node's service proxy and cluster DNS (agent/services.h) against an in-process API
// server, on a real network: a bridge of its own with two "pods" (network namespaces on veth
// pairs), nftables in this host's namespace under names unique to the run. Needs root, nft and
// iproute2 (scripts/install-deps.sh); skips with the reason otherwise.
#include "agent/services.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "proxy/nft.h"
#include "proxy/ruleset.h"
#include "testing/test_server.h"
#include "unit/agent/network/net_test_util.h"

namespace skiff::agent {
namespace {

using nlohmann::json;
using skiff::testing::eventually;
namespace nt = network::testing;
using namespace std::chrono_literals;

// --- a minimal DNS client, independent of src/dns -------------------------------------------

std::string dns_query(const std::string& name, uint16_t type) {
  std::string q = {'\x12', '\x34', '\x01', '\x00', 0, 1, 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q += static_cast<char>(dot - start);
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q += '\0';
  q += static_cast<char>(type >> 8);
  q += static_cast<char>(type & 0xff);
  q += '\0';
  q += '\1';
  return q;
}

size_t skip_name(const std::string& m, size_t p) {
  while (p < m.size()) {
    auto len = static_cast<unsigned char>(m[p]);
    if (len == 0) return p + 1;
    if ((len & 0xc0) == 0xc0) return p + 2;
    p += len + 1;
  }
  return m.size();
}

// The addresses of the A records answering `m`, or "rcode N" for an error.
std::vector<std::string> a_records(const std::string& m) {
  if (m.size() < 12) return {"short answer"};
  int rcode = m[3] & 0x0f;
  if (rcode != 0) return {"rcode " + std::to_string(rcode)};
  auto u16 = [&](size_t p) {
    return static_cast<unsigned>((static_cast<unsigned char>(m[p]) << 8) |
                                 static_cast<unsigned char>(m[p + 1]));
  };
  unsigned answers = u16(6);
  size_t p = skip_name(m, 12) + 4;
  std::vector<std::string> out;
  for (unsigned i = 0; i < answers && p < m.size(); ++i) {
    p = skip_name(m, p);
    if (p + 10 > m.size()) break;
    unsigned type = u16(p), len = u16(p + 8);
    p += 10;
    if (type == 1 && len == 4 && p + 4 <= m.size()) {
      out.push_back(std::to_string(static_cast<unsigned char>(m[p])) + "." +
                    std::to_string(static_cast<unsigned char>(m[p + 1])) + "." +
                    std::to_string(static_cast<unsigned char>(m[p + 2])) + "." +
                    std::to_string(static_cast<unsigned char>(m[p + 3])));
    }
    p += len;
  }
  return out;
}

// Sends `query` over UDP to ip:port from inside `netns` ("" for this one); "" on timeout.
std::string udp_exchange(const std::string& netns, const std::string& ip, int port,
                         const std::string& query) {
  int fd = -1;
  auto make = [&] { fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); };
  if (netns.empty()) {
    make();
  } else {
    nt::run_in_namespace(netns, CLONE_NEWNET, make);
  }
  if (fd < 0) return "";
  sockaddr_in a = nt::ipv4_address(ip, port);
  std::string reply;
  if (::sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) ==
      static_cast<ssize_t>(query.size())) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 3000) == 1) {
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) reply.assign(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return reply;
}

// The same over TCP (two-byte length prefix) from inside `netns`.
std::string tcp_exchange(const std::string& netns, const std::string& ip, int port,
                         const std::string& query) {
  int fd = nt::tcp_socket_in(netns);
  if (fd < 0) return "";
  std::string reply;
  if (nt::connect_to(fd, ip, port, 3000).empty()) {
    std::string framed = {static_cast<char>(query.size() >> 8),
                          static_cast<char>(query.size() & 0xff)};
    framed += query;
    if (::write(fd, framed.data(), framed.size()) == static_cast<ssize_t>(framed.size())) {
      ::shutdown(fd, SHUT_WR);
      std::string all = nt::read_all(fd, 3000);
      if (all.size() > 2) reply = all.substr(2);
    }
  }
  ::close(fd);
  return reply;
}

Result<proxy::CommandResult> run(const std::vector<std::string>& argv) {
  return proxy::run_command(argv, "");
}

bool table_exists(const std::string& table) {
  auto r = run({"nft", "list", "table", "ip", table});
  return r.ok() && r->exit_code == 0;
}

std::string list_table(const std::string& table) {
  auto r = run({"nft", "list", "table", "ip", table});
  return r.ok() && r->exit_code == 0 ? r->output : "";
}

// --- the kube-dns Service -------------------------------------------------------------------

TEST(KubeDnsService, TheServerCreatesItAtTheTenthServiceAddress) {
  skiff::testing::TestServer server;
  ASSERT_TRUE(server.ok());
  auto client = server.client();
  auto svc = client->get(client::resources::kServices.in("kube-system"), "kube-dns");
  ASSERT_TRUE(svc.ok()) << svc.status().to_string();
  const json& s = **svc;
  EXPECT_EQ(s["spec"].value("clusterIP", ""), "10.43.0.10");
  EXPECT_EQ(s["metadata"]["labels"].value("k8s-app", ""), "kube-dns");
  ASSERT_TRUE(s["spec"]["ports"].is_array());
  ASSERT_EQ(s["spec"]["ports"].size(), 2u);
  EXPECT_EQ(s["spec"]["ports"][0].value("name", ""), "dns");
  EXPECT_EQ(s["spec"]["ports"][0].value("protocol", ""), "UDP");
  EXPECT_EQ(s["spec"]["ports"][0].value("port", 0), 53);
  EXPECT_EQ(s["spec"]["ports"][1].value("name", ""), "dns-tcp");
  EXPECT_EQ(s["spec"]["ports"][1].value("protocol", ""), "TCP");
  EXPECT_EQ(s["spec"]["ports"][1].value("port", 0), 53);
  // No selector: no controller ever gives it endpoints that would compete with the agents.
  EXPECT_FALSE(s["spec"].contains("selector") && !s["spec"]["selector"].empty());
}

// --- on a real network ----------------------------------------------------------------------

// A bridge with an address, and two pods: network namespaces on veth pairs with an address
// of the bridge's /24 and a default route through it.
class ServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (nftables, network namespaces)";
    for (const char* tool : {"nft", "ip"}) {
      auto r = run({tool, "-V"});
      if (!r.ok() || r->exit_code != 0) {
        GTEST_SKIP() << tool << " is missing (scripts/install-deps.sh: nftables, iproute2)";
      }
    }
    ASSERT_TRUE(server_.ok());
    client_ = server_.client("skiff-services-test");
    suffix_ = nt::unique_suffix();
    bridge_ = "sv" + suffix_;
    std::string cidr = nt::free_pod_cidr();
    ASSERT_FALSE(cidr.empty());
    prefix_ = cidr.substr(0, cidr.rfind(".0/"));  // "10.a.b"
    sh({"ip", "link", "add", bridge_, "type", "bridge"});
    sh({"ip", "addr", "add", prefix_ + ".1/24", "dev", bridge_});
    sh({"ip", "link", "set", bridge_, "up"});
    for (int i = 0; i < 2; ++i) {
      std::string ns = "svc-" + suffix_ + "-" + std::to_string(i);
      std::string host_end = "sv" + suffix_ + "h" + std::to_string(i);
      std::string ip = prefix_ + "." + std::to_string(10 + i);
      sh({"ip", "netns", "add", ns});
      netns_.push_back(ns);
      sh({"ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns});
      sh({"ip", "link", "set", host_end, "master", bridge_, "up"});
      sh({"ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"});
      sh({"ip", "-n", ns, "link", "set", "eth0", "up"});
      sh({"ip", "-n", ns, "link", "set", "lo", "up"});
      sh({"ip", "-n", ns, "route", "add", "default", "via", prefix_ + ".1"});
      pod_ips_.push_back(ip);
    }
  }

  void TearDown() override {
    if (services_) services_->stop();
    for (const auto& ns : netns_) run({"ip", "netns", "del", ns});
    if (!bridge_.empty()) run({"ip", "link", "del", bridge_});
  }

  void sh(const std::vector<std::string>& argv) {
    auto r = run(argv);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->exit_code, 0) << argv[0] << " " << argv[1] << ": " << r->output;
  }

  std::string netns_path(int i) const { return "/var/run/netns/" + netns_[i]; }

  NodeServicesOptions options() const {
    NodeServicesOptions o;
    o.node_name = "node-" + suffix_;
    o.bridge_name = bridge_;
    o.cluster_cidr = prefix_ + ".0/24";
    o.cluster_dns = "10.43.0.10";
    o.resolv_conf = "/nonexistent";  // no upstream: names outside the cluster are refused
    return o;
  }

  // Service `name` (port 80 -> 8080) with an EndpointSlice of `endpoint_ip`; its cluster IP.
  // The IP is picked at random: every test server hands out the same first addresses, and
  // the rules of a test running in parallel live in this same network namespace.
  std::string create_service(const std::string& name, const std::string& endpoint_ip) {
    std::string ip = "10.43." + std::to_string(1 + random_below(254)) + "." +
                     std::to_string(1 + random_below(254));
    json svc = {
        {"apiVersion", "v1"},
        {"kind", "Service"},
        {"metadata", {{"name", name}, {"namespace", "default"}}},
        {"spec",
         {{"clusterIP", ip},
          {"ports",
           json::array(
               {{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}, {"targetPort", 8080}}})}}}};
    auto created = client_->create(client::resources::kServices.in("default"), svc);
    EXPECT_TRUE(created.ok()) << created.status().to_string();
    if (!created.ok()) return "";
    json slice = {
        {"apiVersion", "discovery.k8s.io/v1"},
        {"kind", "EndpointSlice"},
        {"metadata",
         {{"name", name + "-abc"},
          {"namespace", "default"},
          {"labels", {{"kubernetes.io/service-name", name}}}}},
        {"addressType", "IPv4"},
        {"endpoints", json::array({{{"addresses", json::array({endpoint_ip})},
                                    {"conditions", {{"ready", true}}}}})},
        {"ports", json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}})}};
    auto s = client_->create(client::resources::kEndpointSlices.in("default"), slice);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return (**created)["spec"].value("clusterIP", "");
  }

  skiff::testing::TestServer server_;
  std::unique_ptr<client::Client> client_;
  std::string suffix_, bridge_, prefix_;
  std::vector<std::string> netns_;
  std::vector<std::string> pod_ips_;
  std::unique_ptr<NodeServices> services_;
};

TEST_F(ServicesTest, PodReachesAServiceByItsClusterIpAndName) {
  std::string cluster_ip = create_service("web", pod_ips_[1]);
  ASSERT_FALSE(cluster_ip.empty());
  services_ = std::make_unique<NodeServices>(*client_, options());
  ASSERT_TRUE(services_->start().ok());
  EXPECT_EQ(services_->proxy_table(), "skiff-" + bridge_);
  ASSERT_TRUE(eventually([&] { return services_->proxy_applies() > 0; }));
  EXPECT_NE(list_table(services_->proxy_table()).find(pod_ips_[1] + ":8080"), std::string::npos);

  // Pod 1 serves 8080; pod 0 connects to the ClusterIP, port 80, and they talk both ways
  // (replies cross the bridge directly and must be translated back).
  int listener = nt::tcp_socket_in(netns_path(1));
  ASSERT_GE(listener, 0);
  ASSERT_TRUE(nt::listen_on(listener, 8080));
  int client = nt::tcp_socket_in(netns_path(0));
  ASSERT_GE(client, 0);
  ASSERT_EQ(nt::connect_to(client, cluster_ip, 80), "");
  int conn = nt::accept_one(listener);
  ASSERT_GE(conn, 0);
  EXPECT_EQ(nt::peer_ip(conn), pod_ips_[0]);  // no masquerading inside the cluster CIDR
  ASSERT_EQ(::write(conn, "hello", 5), 5);
  ::close(conn);
  EXPECT_EQ(nt::read_all(client), "hello");
  ::close(client);
  ::close(listener);

  // The name, from the pod, at the cluster DNS address: over UDP and over TCP.
  std::string query = dns_query("web.default.svc.cluster.local", 1);
  std::vector<std::string> want = {cluster_ip};
  EXPECT_EQ(a_records(udp_exchange(netns_path(0), "10.43.0.10", 53, query)), want);
  EXPECT_EQ(a_records(tcp_exchange(netns_path(0), "10.43.0.10", 53, query)), want);
  // Answers come from the cluster DNS address, as the pod's resolver expects; the server
  // itself answers on its own port from this host too.
  EXPECT_EQ(a_records(udp_exchange("", "127.0.0.1", services_->dns_port(), query)), want);
  EXPECT_EQ(a_records(udp_exchange(netns_path(0), "10.43.0.10", 53,
                                   dns_query("nothing.default.svc.cluster.local", 1))),
            std::vector<std::string>{"rcode 3"});
}

TEST_F(ServicesTest, StopRemovesTheRulesAndUnchangedServicesAreNotReapplied) {
  create_service("web", pod_ips_[1]);
  services_ = std::make_unique<NodeServices>(*client_, options());
  ASSERT_TRUE(services_->start().ok());
  ASSERT_TRUE(eventually([&] { return services_->proxy_applies() > 0; }));
  EXPECT_TRUE(table_exists(services_->proxy_table()));
  std::string dns_rules = list_table(services_->dns_table());
  EXPECT_NE(dns_rules.find("redirect to :" + std::to_string(services_->dns_port())),
            std::string::npos)
      << dns_rules;
  // The DNS port is closed to interfaces other than the bridge and loopback.
  EXPECT_NE(dns_rules.find("th dport " + std::to_string(services_->dns_port()) + " drop"),
            std::string::npos)
      << dns_rules;

  services_->stop();
  EXPECT_FALSE(table_exists(services_->proxy_table()));
  EXPECT_FALSE(table_exists(services_->dns_table()));
  EXPECT_EQ(
      udp_exchange(netns_path(0), "10.43.0.10", 53, dns_query("web.default.svc.cluster.local", 1)),
      "");
  services_->stop();  // idempotent
}

TEST_F(ServicesTest, TwoNodesOnOneHostKeepTheirOwnRules) {
  std::string cluster_ip = create_service("web", pod_ips_[1]);
  services_ = std::make_unique<NodeServices>(*client_, options());
  ASSERT_TRUE(services_->start().ok());
  NodeServicesOptions other = options();
  other.node_name = "other-" + suffix_;
  other.bridge_name = "sw" + suffix_;
  auto second = std::make_unique<NodeServices>(*client_, other);
  ASSERT_TRUE(second->start().ok());
  ASSERT_TRUE(eventually([&] { return second->proxy_applies() > 0; }));
  EXPECT_NE(second->dns_port(), services_->dns_port());
  second->stop();
  EXPECT_FALSE(table_exists(second->proxy_table()));
  // The first node still answers its pods.
  EXPECT_TRUE(table_exists(services_->proxy_table()));
  EXPECT_EQ(a_records(udp_exchange(netns_path(0), "10.43.0.10", 53,
                                   dns_query("web.default.svc.cluster.local", 1))),
            std::vector<std::string>{cluster_ip});
}

TEST(NodeServicesOptions, BadOptionsAreInvalid) {
  skiff::testing::TestServer server;
  ASSERT_TRUE(server.ok());
  auto client = server.client();
  NodeServicesOptions o;
  o.node_name = "n";
  o.bridge_name = "a\"b";
  EXPECT_EQ(NodeServices(*client, o).start().code(), StatusCode::kInvalid);
  o.bridge_name = "much-too-long-bridge";
  EXPECT_EQ(NodeServices(*client, o).start().code(), StatusCode::kInvalid);
  o.bridge_name = "br0";
  o.cluster_dns = "fd00::10";
  EXPECT_EQ(NodeServices(*client, o).start().code(), StatusCode::kInvalid);
  o.cluster_dns = "10.43.0.10";
  o.node_name = "";
  EXPECT_EQ(NodeServices(*client, o).start().code(), StatusCode::kInvalid);
}

}  // namespace
}  // namespace skiff::agent
