#include "simnodes/sim_nodes.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "client/informer.h"
#include "simnodes/objects.h"
#include "testing/test_server.h"

namespace skiff::simnodes {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using skiff::testing::eventually;
using skiff::testing::TestServer;

// Functions, not globals: the resources they derive from are globals of another file.
client::ResourceRef node_leases() { return client::resources::kLeases.in("kube-node-lease"); }
client::ResourceRef default_pods() { return client::resources::kPods.in("default"); }

// The string at `path` (object members, or array indices written as numbers), or "".
std::string str(const json& obj, std::initializer_list<const char*> path) {
  const json* cur = &obj;
  for (const char* p : path) {
    if (cur->is_array()) {
      size_t i = std::strtoul(p, nullptr, 10);
      if (i >= cur->size()) return "";
      cur = &(*cur)[i];
      continue;
    }
    if (!cur->is_object() || !cur->contains(p)) return "";
    cur = &(*cur)[p];
  }
  return cur->is_string() ? cur->get<std::string>() : "";
}

std::string condition(const json& obj, const std::string& type) {
  const json* conds = nullptr;
  if (obj.contains("status") && obj["status"].contains("conditions")) {
    conds = &obj["status"]["conditions"];
  }
  if (conds == nullptr || !conds->is_array()) return "";
  for (const json& c : *conds) {
    if (c.value("type", "") == type) return c.value("status", "");
  }
  return "";
}

SimNodesOptions fast_options(int count, const std::string& prefix = "sim-") {
  SimNodesOptions o;
  o.count = count;
  o.name_prefix = prefix;
  o.lease_renew_interval = 200ms;
  o.job_run_time = 100ms;
  o.deletion_delay = 50ms;
  o.workers = 4;
  return o;
}

class SimNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    client_ = server_.client("skiff-sim-test");
  }

  json get(const client::ResourceRef& r, const std::string& name) {
    auto g = client_->get(r, name);
    return g.ok() ? **g : json();
  }

  Status create_pod(const std::string& name, const std::string& node, json extra_spec = {}) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec",
                 {{"nodeName", node}, {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}};
    if (extra_spec.is_object()) {
      for (auto& [k, v] : extra_spec.items()) pod["spec"][k] = v;
    }
    auto r = client_->create(default_pods(), pod);
    return r.ok() ? Status::Ok() : r.status();
  }

  Status assign_pod_cidr(const std::string& node, const std::string& cidr) {
    json patch = {{"spec", {{"podCIDR", cidr}, {"podCIDRs", {cidr}}}}};
    auto r = client_->patch(client::resources::kNodes, node, client::PatchType::kMerge,
                            patch.dump());
    return r.ok() ? Status::Ok() : r.status();
  }

  TestServer server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(SimNodesTest, NodesRegisterReadyAndRenewTheirLeases) {
  SimNodesOptions o = fast_options(3);
  o.labels = {{"topology.kubernetes.io/zone", "zone-a"}};
  SimNodes sim(*client_, o);
  ASSERT_TRUE(sim.start().ok());
  EXPECT_EQ(sim.node_names(), (std::vector<std::string>{"sim-0", "sim-1", "sim-2"}));

  std::set<std::string> ips;
  for (const std::string& name : sim.node_names()) {
    json node = get(client::resources::kNodes, name);
    ASSERT_FALSE(node.is_null()) << name;
    EXPECT_EQ(condition(node, "Ready"), "True");
    EXPECT_EQ(condition(node, "MemoryPressure"), "False");
    EXPECT_EQ(condition(node, "DiskPressure"), "False");
    EXPECT_EQ(condition(node, "PIDPressure"), "False");
    EXPECT_EQ(str(node, {"status", "nodeInfo", "kubeletVersion"}), "v1.32.0-skiff");
    EXPECT_EQ(str(node, {"status", "capacity", "cpu"}), "4");
    EXPECT_EQ(str(node, {"metadata", "labels", "topology.kubernetes.io/zone"}), "zone-a");
    ips.insert(str(node, {"status", "addresses", "0", "address"}));
    json lease = get(node_leases(), name);
    ASSERT_FALSE(lease.is_null()) << name;
    EXPECT_EQ(str(lease, {"spec", "holderIdentity"}), name);
    EXPECT_EQ(lease["spec"]["leaseDurationSeconds"], 40);
    EXPECT_EQ(lease["metadata"]["ownerReferences"][0]["uid"], node["metadata"]["uid"]);
  }

  std::string first_renewal = str(get(node_leases(), "sim-1"), {"spec", "renewTime"});
  EXPECT_TRUE(eventually([&] {
    return str(get(node_leases(), "sim-1"), {"spec", "renewTime"}) != first_renewal;
  }));
  EXPECT_GT(sim.stats().lease_renewals, 0u);
  EXPECT_EQ(sim.stats().nodes_registered, 3u);
}

TEST_F(SimNodesTest, BoundPodsRunWithIpsFromTheNodesPodCidr) {
  SimNodes sim(*client_, fast_options(2));
  ASSERT_TRUE(sim.start().ok());
  ASSERT_TRUE(assign_pod_cidr("sim-0", "10.42.7.0/24").ok());
  auto block = Ipv4Block::parse("10.42.7.0/24");
  auto ip_of = [&](const std::string& name) {
    json pod = get(default_pods(), name);
    if (str(pod, {"status", "phase"}) != "Running") return std::optional<uint32_t>();
    return parse_ipv4(str(pod, {"status", "podIP"}));
  };

  // The simulated kubelet learns its range through its node informer; until then pods get
  // addresses of a fallback range. Probe until the range is in use.
  int probes = 0;
  ASSERT_TRUE(eventually([&] {
    std::string name = "probe-" + std::to_string(probes++);
    if (!create_pod(name, "sim-0").ok()) return false;
    std::optional<uint32_t> ip;
    if (!eventually([&] { return (ip = ip_of(name)).has_value(); })) return false;
    return block->contains(*ip);
  }));

  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(create_pod("web-" + std::to_string(i), "sim-0").ok());
  }
  ASSERT_TRUE(create_pod("other", "sim-1").ok());

  std::set<std::string> ips;
  ASSERT_TRUE(eventually([&] {
    ips.clear();
    for (int i = 0; i < 5; ++i) {
      json pod = get(default_pods(), "web-" + std::to_string(i));
      if (str(pod, {"status", "phase"}) != "Running" || condition(pod, "Ready") != "True") {
        return false;
      }
      ips.insert(str(pod, {"status", "podIP"}));
    }
    return true;
  }));
  EXPECT_EQ(ips.size(), 5u) << "pod IPs must be distinct";

  json node = get(client::resources::kNodes, "sim-0");
  std::string host_ip = str(node, {"status", "addresses", "0", "address"});
  for (int i = 0; i < 5; ++i) {
    json pod = get(default_pods(), "web-" + std::to_string(i));
    std::string ip = str(pod, {"status", "podIP"});
    auto parsed = parse_ipv4(ip);
    ASSERT_TRUE(parsed.has_value()) << ip;
    EXPECT_TRUE(block->contains(*parsed)) << ip;
    EXPECT_NE(ip, "10.42.7.0");
    EXPECT_NE(ip, "10.42.7.1") << "the gateway address is not handed out";
    EXPECT_EQ(str(pod, {"status", "podIPs", "0", "ip"}), ip);
    EXPECT_EQ(str(pod, {"status", "hostIP"}), host_ip);
    EXPECT_EQ(condition(pod, "ContainersReady"), "True");
    EXPECT_EQ(condition(pod, "Initialized"), "True");
    EXPECT_EQ(condition(pod, "PodScheduled"), "True");
    const json& cs = pod["status"]["containerStatuses"][0];
    EXPECT_EQ(cs["ready"], true);
    EXPECT_EQ(cs["started"], true);
    EXPECT_EQ(cs["restartCount"], 0);
    EXPECT_TRUE(cs["state"].contains("running"));
    EXPECT_FALSE(cs.value("imageID", "").empty());
    EXPECT_FALSE(str(pod, {"status", "startTime"}).empty());
  }

  EXPECT_TRUE(eventually([&] {
    auto ip = ip_of("other");
    return ip && fallback_pod_range(1).contains(*ip);
  })) << "a node without spec.podCIDR uses its fallback range";
}

TEST_F(SimNodesTest, DeletedPodsAreFinalizedAndTheirIpsReused) {
  SimNodes sim(*client_, fast_options(1));
  ASSERT_TRUE(sim.start().ok());
  ASSERT_TRUE(create_pod("doomed", "sim-0").ok());
  ASSERT_TRUE(eventually(
      [&] { return str(get(default_pods(), "doomed"), {"status", "phase"}) == "Running"; }));

  // A graceful delete only marks the pod (its node exists); the kubelet finalizes it.
  auto removed = client_->remove(default_pods(), "doomed");
  ASSERT_TRUE(removed.ok()) << removed.status().to_string();
  EXPECT_TRUE(eventually([&] { return get(default_pods(), "doomed").is_null(); }));
  EXPECT_GE(sim.stats().pods_finalized, 1u);

  // A pod that never ran is finalized the same way.
  ASSERT_TRUE(sim.pause_node("sim-0").ok());
  ASSERT_TRUE(create_pod("never-ran", "sim-0").ok());
  ASSERT_TRUE(client_->remove(default_pods(), "never-ran").ok());
  ASSERT_FALSE(get(default_pods(), "never-ran").is_null());
  ASSERT_TRUE(sim.resume_node("sim-0").ok());
  EXPECT_TRUE(eventually([&] { return get(default_pods(), "never-ran").is_null(); }));
}

TEST_F(SimNodesTest, RunToCompletionPodsSucceedOrFail) {
  SimNodes sim(*client_, fast_options(1));
  ASSERT_TRUE(sim.start().ok());
  ASSERT_TRUE(create_pod("job-ok", "sim-0", {{"restartPolicy", "Never"}}).ok());
  ASSERT_TRUE(create_pod("job-retry", "sim-0", {{"restartPolicy", "OnFailure"}}).ok());
  json failing = {{"apiVersion", "v1"},
                  {"kind", "Pod"},
                  {"metadata",
                   {{"name", "job-fails"},
                    {"namespace", "default"},
                    {"annotations", {{kExitCodeAnnotation, "2"}, {kRunTimeAnnotation, "200ms"}}}}},
                  {"spec",
                   {{"nodeName", "sim-0"},
                    {"restartPolicy", "Never"},
                    {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}};
  ASSERT_TRUE(client_->create(default_pods(), failing).ok());
  ASSERT_TRUE(create_pod("server", "sim-0").ok());

  EXPECT_TRUE(eventually([&] {
    return str(get(default_pods(), "job-ok"), {"status", "phase"}) == "Succeeded" &&
           str(get(default_pods(), "job-retry"), {"status", "phase"}) == "Succeeded";
  }));
  EXPECT_TRUE(eventually(
      [&] { return str(get(default_pods(), "job-fails"), {"status", "phase"}) == "Failed"; }));
  json ok = get(default_pods(), "job-ok");
  EXPECT_EQ(ok["status"]["containerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
  EXPECT_EQ(condition(ok, "Ready"), "False");
  json failed = get(default_pods(), "job-fails");
  EXPECT_EQ(failed["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 2);
  // A pod that restarts Always keeps running.
  EXPECT_EQ(str(get(default_pods(), "server"), {"status", "phase"}), "Running");
  EXPECT_GE(sim.stats().pods_completed, 3u);
}

TEST_F(SimNodesTest, PausedNodeStopsRenewingAndResumesReady) {
  SimNodes sim(*client_, fast_options(2));
  ASSERT_TRUE(sim.start().ok());
  ASSERT_TRUE(sim.pause_node("sim-0").ok());
  EXPECT_TRUE(sim.node_paused("sim-0"));
  EXPECT_EQ(sim.pause_node("nope").code(), StatusCode::kNotFound);

  // Once a renewal that may have been in flight has landed, the lease stands still while
  // the other node's keeps moving.
  std::string frozen;
  std::string other = str(get(node_leases(), "sim-1"), {"spec", "renewTime"});
  int other_moves = 0;
  ASSERT_TRUE(eventually(
      [&] {
        std::string now = str(get(node_leases(), "sim-0"), {"spec", "renewTime"});
        std::string o = str(get(node_leases(), "sim-1"), {"spec", "renewTime"});
        if (o != other) {
          other = o;
          ++other_moves;
        }
        if (now != frozen) {
          frozen = now;
          other_moves = 0;
        }
        return other_moves >= 3;
      },
      30s));
  EXPECT_EQ(str(get(node_leases(), "sim-0"), {"spec", "renewTime"}), frozen);

  // While paused, a pod bound to it stays Pending and the server's view of the node is left
  // alone, as with a stopped kubelet.
  ASSERT_TRUE(create_pod("waiting", "sim-0").ok());
  json unknown = {{"status",
                   {{"conditions",
                     {{{"type", "Ready"},
                       {"status", "Unknown"},
                       {"reason", "NodeStatusUnknown"},
                       {"message", "Kubelet stopped posting node status."}}}}}}};
  ASSERT_TRUE(client_
                  ->patch(client::resources::kNodes, "sim-0", client::PatchType::kStrategicMerge,
                          unknown.dump(), "status")
                  .ok());
  EXPECT_EQ(str(get(default_pods(), "waiting"), {"status", "phase"}), "Pending");

  ASSERT_TRUE(sim.resume_node("sim-0").ok());
  EXPECT_FALSE(sim.node_paused("sim-0"));
  EXPECT_TRUE(eventually([&] {
    return str(get(node_leases(), "sim-0"), {"spec", "renewTime"}) != frozen &&
           condition(get(client::resources::kNodes, "sim-0"), "Ready") == "True" &&
           str(get(default_pods(), "waiting"), {"status", "phase"}) == "Running";
  }));
}

TEST_F(SimNodesTest, NodeReportsReadyAgainWhenTheServerShowsOtherwise) {
  SimNodes sim(*client_, fast_options(1));
  ASSERT_TRUE(sim.start().ok());
  json unknown = {{"status", {{"conditions", {{{"type", "Ready"}, {"status", "Unknown"}}}}}}};
  ASSERT_TRUE(client_
                  ->patch(client::resources::kNodes, "sim-0", client::PatchType::kStrategicMerge,
                          unknown.dump(), "status")
                  .ok());
  EXPECT_TRUE(eventually(
      [&] { return condition(get(client::resources::kNodes, "sim-0"), "Ready") == "True"; }));
}

TEST_F(SimNodesTest, RestartedSimulationTakesOverExistingNodesAndPods) {
  {
    SimNodes first(*client_, fast_options(1));
    ASSERT_TRUE(first.start().ok());
    ASSERT_TRUE(create_pod("survivor", "sim-0").ok());
    ASSERT_TRUE(eventually(
        [&] { return str(get(default_pods(), "survivor"), {"status", "phase"}) == "Running"; }));
  }
  std::string ip = str(get(default_pods(), "survivor"), {"status", "podIP"});
  std::string uid = str(get(client::resources::kNodes, "sim-0"), {"metadata", "uid"});

  SimNodes second(*client_, fast_options(1));
  ASSERT_TRUE(second.start().ok());
  EXPECT_EQ(second.stats().nodes_registered, 1u);
  EXPECT_EQ(str(get(client::resources::kNodes, "sim-0"), {"metadata", "uid"}), uid);
  // The address of the pod that kept running is not handed out again.
  ASSERT_TRUE(create_pod("newcomer", "sim-0").ok());
  ASSERT_TRUE(eventually(
      [&] { return str(get(default_pods(), "newcomer"), {"status", "phase"}) == "Running"; }));
  EXPECT_NE(str(get(default_pods(), "newcomer"), {"status", "podIP"}), ip);
  EXPECT_EQ(str(get(default_pods(), "survivor"), {"status", "podIP"}), ip);
}

TEST_F(SimNodesTest, DeleteNodesRemovesNodesAndLeases) {
  SimNodes sim(*client_, fast_options(2, "gone-"));
  ASSERT_TRUE(sim.start().ok());
  ASSERT_TRUE(sim.delete_nodes().ok());
  for (const char* name : {"gone-0", "gone-1"}) {
    EXPECT_TRUE(get(client::resources::kNodes, name).is_null()) << name;
    EXPECT_TRUE(get(node_leases(), name).is_null()) << name;
  }
}

TEST_F(SimNodesTest, SharesTheInformersItIsGiven) {
  client::InformerFactory factory(*client_);
  {
    SimNodes sim(*client_, fast_options(1, "shared-"), &factory);
    ASSERT_TRUE(sim.start().ok());
    ASSERT_TRUE(create_pod("p", "shared-0").ok());
    ASSERT_TRUE(eventually(
        [&] { return str(get(default_pods(), "p"), {"status", "phase"}) == "Running"; }));
    EXPECT_EQ(factory.informer(client::resources::kPods)
                  .by_index(kPodNodeNameIndex, "shared-0")
                  .size(),
              1u);
  }
  // The informers outlive the simulation; events after it stopped are ignored.
  ASSERT_TRUE(create_pod("q", "shared-0").ok());
  ASSERT_TRUE(eventually([&] {
    return factory.informer(client::resources::kPods).get("default", "q") != nullptr;
  }));
  EXPECT_EQ(str(get(default_pods(), "q"), {"status", "phase"}), "Pending");
  factory.stop();
}

TEST_F(SimNodesTest, RejectsBadOptions) {
  SimNodesOptions o = fast_options(1);
  o.memory = "lots";
  EXPECT_EQ(SimNodes(*client_, o).start().code(), StatusCode::kBadRequest);
  o = fast_options(1);
  o.first_internal_ip = "300.0.0.1";
  EXPECT_EQ(SimNodes(*client_, o).start().code(), StatusCode::kBadRequest);
  o = fast_options(1);
  o.taints = {{"k", "", "Sometimes"}};
  EXPECT_EQ(SimNodes(*client_, o).start().code(), StatusCode::kBadRequest);
}

TEST_F(SimNodesTest, HundredsOfNodesRenewAndRunPods) {
  constexpr int kNodes = 200;
  constexpr int kPods = 400;
  SimNodesOptions o = fast_options(kNodes, "many-");
  o.lease_renew_interval = 1s;
  o.workers = 8;
  SimNodes sim(*client_, o);
  auto began = std::chrono::steady_clock::now();
  ASSERT_TRUE(sim.start().ok());
  auto registered = std::chrono::steady_clock::now();
  for (int i = 0; i < kPods; ++i) {
    ASSERT_TRUE(create_pod("bulk-" + std::to_string(i), "many-" + std::to_string(i % kNodes)).ok());
  }
  client::ListOptions all;
  ASSERT_TRUE(eventually(
      [&] {
        auto l = client_->list(default_pods(), all);
        if (!l.ok()) return false;
        int running = 0;
        for (const auto& p : l->items) running += str(*p, {"status", "phase"}) == "Running";
        return running == kPods;
      },
      60s));
  auto running = std::chrono::steady_clock::now();
  // Every lease is renewed within a couple of intervals.
  auto renewed_before = sim.stats().lease_renewals;
  ASSERT_TRUE(eventually([&] { return sim.stats().lease_renewals >= renewed_before + 2 * kNodes; },
                         30s));
  EXPECT_EQ(sim.stats().lease_failures, 0u);
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  std::printf("registered %d nodes in %lld ms; %d pods running %lld ms later\n", kNodes,
              static_cast<long long>(duration_cast<milliseconds>(registered - began).count()),
              kPods,
              static_cast<long long>(duration_cast<milliseconds>(running - registered).count()));
}

}  // namespace
}  // namespace skiff::simnodes
