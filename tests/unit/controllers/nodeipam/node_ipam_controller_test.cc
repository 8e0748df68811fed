#include "controllers/nodeipam/node_ipam_controller.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "controllers/framework.h"
#include "testing/test_server.h"

namespace skiff::controllers::nodeipam {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using skiff::testing::eventually;
using skiff::testing::TestServer;

class NodeIpamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    client_ = server_.client("skiff-test");
    manager_client_ = server_.client("skiff-controller-manager");
  }
  void TearDown() override { stop_manager(); }

  // Four /24 ranges, so that the cluster fills up quickly.
  void start_manager(const std::string& cluster_cidr = "10.42.0.0/22", int mask = 24) {
    ManagerOptions o;
    o.identity = "node-ipam-test-" + std::to_string(generation_++);
    o.enabled = {"node_ipam"};
    o.controller_options.cluster_cidr = cluster_cidr;
    o.controller_options.node_cidr_mask_size = mask;
    o.lease_duration = 2s;
    o.renew_deadline = 1500ms;
    o.retry_period = 200ms;
    manager_ = std::make_unique<ControllerManager>(*manager_client_, o);
    manager_->start();
  }
  void stop_manager() {
    if (manager_) manager_->stop();
    manager_.reset();
  }

  void create_node(const std::string& name, const std::string& pod_cidr = "") {
    json node = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", name}}}};
    if (!pod_cidr.empty()) node["spec"] = {{"podCIDR", pod_cidr}, {"podCIDRs", {pod_cidr}}};
    auto r = client_->create(client::resources::kNodes, node);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  void delete_node(const std::string& name) {
    auto r = client_->remove(client::resources::kNodes, name);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }

  std::string pod_cidr(const std::string& name) {
    auto g = client_->get(client::resources::kNodes, name);
    if (!g.ok()) return "";
    const json& node = **g;
    if (!node.contains("spec")) return "";
    std::string single = node["spec"].value("podCIDR", "");
    if (node["spec"].contains("podCIDRs") && node["spec"]["podCIDRs"].size() == 1 &&
        node["spec"]["podCIDRs"][0] != single) {
      return "mismatch";
    }
    return single;
  }

  // Waits until every node in `names` has a range; returns them by node.
  std::map<std::string, std::string> await_ranges(const std::vector<std::string>& names) {
    std::map<std::string, std::string> out;
    bool all = eventually([&] {
      out.clear();
      for (const std::string& n : names) {
        std::string c = pod_cidr(n);
        if (c.empty()) return false;
        out[n] = c;
      }
      return true;
    });
    EXPECT_TRUE(all);
    return out;
  }

  std::vector<json> events(const std::string& reason, const std::string& name) {
    std::vector<json> out;
    auto l = client_->list(client::resources::kEvents);
    if (!l.ok()) return out;
    for (const auto& e : l->items) {
      if ((*e).value("reason", "") == reason &&
          (*e)["involvedObject"].value("name", "") == name) {
        out.push_back(*e);
      }
    }
    return out;
  }

  TestServer server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<client::Client> manager_client_;
  std::unique_ptr<ControllerManager> manager_;
  int generation_ = 0;
};

TEST_F(NodeIpamTest, NodesGetDistinctRangesFromTheClusterCidr) {
  start_manager("10.42.0.0/16", 24);
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) {
    names.push_back("node-" + std::to_string(i));
    create_node(names.back());
  }
  auto ranges = await_ranges(names);
  std::set<std::string> distinct;
  for (const auto& [node, cidr] : ranges) {
    EXPECT_EQ(cidr.rfind("10.42.", 0), 0u) << node << ": " << cidr;
    EXPECT_EQ(cidr.substr(cidr.size() - 3), "/24") << node << ": " << cidr;
    EXPECT_NE(cidr, "mismatch") << node;
    distinct.insert(cidr);
  }
  EXPECT_EQ(distinct.size(), names.size());
}

TEST_F(NodeIpamTest, FullRangeIsReportedAndADeletedNodesRangeReused) {
  start_manager();
  std::vector<std::string> first = {"a", "b", "c", "d"};
  for (const auto& n : first) create_node(n);
  auto ranges = await_ranges(first);
  std::set<std::string> distinct;
  for (const auto& [n, c] : ranges) distinct.insert(c);
  ASSERT_EQ(distinct.size(), 4u);

  create_node("e");
  EXPECT_TRUE(eventually([&] { return !events("CIDRNotAvailable", "e").empty(); }));
  auto warning = events("CIDRNotAvailable", "e");
  ASSERT_FALSE(warning.empty());
  EXPECT_EQ(warning[0]["type"], "Warning");
  EXPECT_EQ(warning[0]["message"], "Node e status is now: CIDRNotAvailable");
  EXPECT_EQ(pod_cidr("e"), "");

  // Deleting a node frees its range for the one waiting.
  std::string freed = ranges["b"];
  delete_node("b");
  EXPECT_TRUE(eventually([&] { return pod_cidr("e") == freed; })) << pod_cidr("e");
}

TEST_F(NodeIpamTest, RestartRebuildsTheAllocationFromTheNodes) {
  // Ranges assigned before the controller runs (by an earlier run) are respected.
  create_node("old-1", "10.42.0.0/24");
  create_node("old-2", "10.42.2.0/24");
  start_manager();
  create_node("new-1");
  create_node("new-2");
  auto ranges = await_ranges({"new-1", "new-2"});
  std::set<std::string> got = {ranges["new-1"], ranges["new-2"]};
  EXPECT_EQ(got, (std::set<std::string>{"10.42.1.0/24", "10.42.3.0/24"}));
  EXPECT_EQ(pod_cidr("old-1"), "10.42.0.0/24");
  EXPECT_EQ(pod_cidr("old-2"), "10.42.2.0/24");

  // A new controller (another leadership term) sees the range full, and hands out a range
  // only once one is freed.
  stop_manager();
  delete_node("old-2");
  create_node("late");
  start_manager();
  EXPECT_TRUE(eventually([&] { return pod_cidr("late") == "10.42.2.0/24"; })) << pod_cidr("late");
  create_node("extra");
  EXPECT_TRUE(eventually([&] { return !events("CIDRNotAvailable", "extra").empty(); }));
  EXPECT_EQ(pod_cidr("extra"), "");
}

TEST_F(NodeIpamTest, RecreatedNodeGetsARange) {
  start_manager();
  create_node("phoenix");
  auto first = await_ranges({"phoenix"});
  delete_node("phoenix");
  create_node("phoenix");
  auto second = await_ranges({"phoenix"});
  EXPECT_FALSE(second["phoenix"].empty());
  create_node("other");
  auto other = await_ranges({"other"});
  EXPECT_NE(other["other"], second["phoenix"]);
  (void)first;
}

}  // namespace
}  // namespace skiff::controllers::nodeipam
