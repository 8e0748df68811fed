// The node agent against an in-process API server, with real containers: runc under conmon, an
// overlay rootfs from a busybox-static image built here, CNI networking on a bridge of its own.
// Needs root, runc, conmon, the CNI plugins and busybox-static (scripts/install-deps.sh); skips
// with the reason otherwise.
#include "agent/agent.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/images/store.h"
#include "agent/agent_internal.h"
#include "agent/network/pod_network.h"
#include "agent/pod_cgroups.h"
#include "agent/runtime/runtime.h"
#include "testing/test_server.h"
#include "unit/agent/images/test_image.h"
#include "unit/agent/agent_fixture.h"
#include "unit/agent/network/net_test_util.h"

namespace skiff::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using skiff::testing::eventually;
using namespace std::chrono_literals;

constexpr char kImage[] = "skiff.test/busybox:1.0";

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
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_number() || cur->is_boolean()) return cur->dump();
  return "";
}

std::string condition(const json& pod, const std::string& type) {
  if (!pod.contains("status") || !pod["status"].contains("conditions")) return "";
  const json& conds = pod["status"]["conditions"];
  if (!conds.is_array()) return "";
  for (const auto& c : conds) {
    if (c.value("type", "") == type) return c.value("status", "");
  }
  return "";
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = testing::agent_test_skip_reason(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(server_.ok());
    client_ = server_.client("skiff-agent-test");
    data_dir_ = std::make_unique<network::testing::TempDir>("skiff-agent-");
    options_ = testing::test_agent_options("agent", data_dir_->path());
    ASSERT_FALSE(options_.pod_cidr.empty()) << "no free 10.x.y.0/24 on this host";
    Status imported = testing::import_busybox_image(
        options_.data_dir,
        {"sh", "sleep", "echo", "cat", "true", "false", "hostname", "ls", "id", "ip", "ifconfig"});
    ASSERT_TRUE(imported.ok()) << imported.to_string();
    start_agent();
  }

  void TearDown() override {
    agent_.reset();
    if (data_dir_ == nullptr) return;
    testing::remove_agent_leftovers(options_);
    data_dir_.reset();
  }

  void start_agent() {
    agent_ = std::make_unique<Agent>(*client_, options_);
    Status s = agent_->start();
    ASSERT_TRUE(s.ok()) << s.to_string();
  }

  Status create_pod(const std::string& name, const std::vector<std::string>& command,
                    const std::string& restart_policy = "Always", int grace_seconds = 30) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec",
                 {{"nodeName", options_.node_name},
                  {"restartPolicy", restart_policy},
                  {"terminationGracePeriodSeconds", grace_seconds},
                  {"containers", {{{"name", "main"}, {"image", kImage}, {"command", command}}}}}}};
    return client_->create(default_pods(), pod).status();
  }

  json get_pod(const std::string& name) {
    auto p = client_->get(default_pods(), name);
    return p.ok() ? **p : json::object();
  }

  // Runtime containers (by id) of the pod with this uid.
  std::vector<std::string> containers_of(const std::string& uid) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e :
         fs::directory_iterator(options_.data_dir + "/agent/runtime/containers", ec)) {
      std::string id = e.path().filename().string();
      if (id.rfind(uid + "_", 0) == 0) out.push_back(id);
    }
    return out;
  }

  skiff::testing::TestServer server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<network::testing::TempDir> data_dir_;
  AgentOptions options_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(AgentTest, RegistersItsNodeAndRenewsItsLease) {
  auto node = client_->get(client::resources::kNodes, options_.node_name);
  ASSERT_TRUE(node.ok()) << node.status().to_string();
  const json& n = **node;
  EXPECT_EQ(str(n, {"status", "capacity", "pods"}), "110");
  EXPECT_FALSE(str(n, {"status", "capacity", "cpu"}).empty());
  EXPECT_NE(str(n, {"status", "capacity", "memory"}).find("Ki"), std::string::npos);
  EXPECT_EQ(condition(n, "Ready"), "True");
  EXPECT_EQ(condition(n, "MemoryPressure"), "False");
  EXPECT_EQ(str(n, {"status", "nodeInfo", "kubeletVersion"}), "v1.32.0-skiff");
  EXPECT_EQ(str(n, {"status", "nodeInfo", "containerRuntimeVersion"}).rfind("runc://", 0), 0u);
  EXPECT_EQ(str(n, {"status", "addresses", "1", "type"}), "Hostname");
  EXPECT_EQ(str(n, {"status", "addresses", "1", "address"}), options_.node_name);
  auto lease = client_->get(client::resources::kLeases.in("kube-node-lease"), options_.node_name);
  ASSERT_TRUE(lease.ok()) << lease.status().to_string();
  EXPECT_EQ(str(**lease, {"spec", "holderIdentity"}), options_.node_name);
  EXPECT_EQ(agent_->pod_cidr(), options_.pod_cidr);
}

TEST_F(AgentTest, PodRunsWithAnIpAndBecomesReady) {
  ASSERT_TRUE(create_pod("web", {"sh", "-c", "echo started; sleep 3600"}).ok());
  ASSERT_TRUE(eventually(
      [&] {
        json p = get_pod("web");
        return str(p, {"status", "phase"}) == "Running" && condition(p, "Ready") == "True";
      },
      60s))
      << get_pod("web").dump(2);
  json p = get_pod("web");
  std::string ip = str(p, {"status", "podIP"});
  EXPECT_FALSE(ip.empty());
  std::string prefix = options_.pod_cidr.substr(0, options_.pod_cidr.rfind('.') + 1);
  EXPECT_EQ(ip.rfind(prefix, 0), 0u) << ip << " not in " << options_.pod_cidr;
  EXPECT_EQ(str(p, {"status", "podIPs", "0", "ip"}), ip);
  EXPECT_FALSE(str(p, {"status", "hostIP"}).empty());
  EXPECT_FALSE(str(p, {"status", "startTime"}).empty());
  EXPECT_EQ(condition(p, "ContainersReady"), "True");
  EXPECT_EQ(condition(p, "Initialized"), "True");
  EXPECT_EQ(condition(p, "PodReadyToStartContainers"), "True");
  const json& cs = p["status"]["containerStatuses"][0];
  EXPECT_EQ(str(cs, {"name"}), "main");
  EXPECT_TRUE(cs["state"].contains("running")) << cs.dump();
  EXPECT_EQ(str(cs, {"containerID"}).rfind("runc://", 0), 0u);
  EXPECT_EQ(str(cs, {"restartCount"}), "0");
  EXPECT_EQ(str(cs, {"ready"}), "true");
  EXPECT_EQ(str(cs, {"image"}), kImage);
  EXPECT_FALSE(str(cs, {"imageID"}).empty());

  // The container sees its hostname and the cluster DNS.
  std::string log_path =
      options_.data_dir + "/agent/pods/" + str(p, {"metadata", "uid"}) + "/logs/main/0.log";
  EXPECT_TRUE(eventually(
      [&] { return images::testing::read_all(log_path).find("started") != std::string::npos; }));
  std::string resolv = images::testing::read_all(options_.data_dir + "/agent/pods/" +
                                                 str(p, {"metadata", "uid"}) + "/resolv.conf");
  EXPECT_NE(resolv.find("nameserver 10.43.0.10"), std::string::npos) << resolv;

  // Events as the kubelet reports them.
  EXPECT_TRUE(eventually([&] {
    auto events = client_->list(client::resources::kEvents.in("default"));
    if (!events.ok()) return false;
    bool created = false, started = false;
    for (const auto& e : events->items) {
      if (str(*e, {"involvedObject", "name"}) != "web") continue;
      created |= str(*e, {"reason"}) == "Created";
      started |= str(*e, {"reason"}) == "Started";
    }
    return created && started;
  }));
}

TEST_F(AgentTest, CommandExitingZeroWithRestartNeverSucceeds) {
  ASSERT_TRUE(create_pod("job", {"sh", "-c", "echo done"}, "Never").ok());
  ASSERT_TRUE(eventually(
      [&] {
        return str(get_pod("job"), {"status", "phase"}) == "Succeeded";
      },
      60s))
      << get_pod("job").dump(2);
  json p = get_pod("job");
  const json& cs = p["status"]["containerStatuses"][0];
  EXPECT_EQ(str(cs, {"state", "terminated", "exitCode"}), "0");
  EXPECT_EQ(str(cs, {"state", "terminated", "reason"}), "Completed");
  EXPECT_EQ(str(cs, {"restartCount"}), "0");
  EXPECT_EQ(condition(p, "Ready"), "False");
}

TEST_F(AgentTest, CommandExitingOneWithRestartNeverFails) {
  ASSERT_TRUE(create_pod("bad", {"sh", "-c", "exit 3"}, "Never").ok());
  ASSERT_TRUE(eventually(
      [&] {
        return str(get_pod("bad"), {"status", "phase"}) == "Failed";
      },
      60s))
      << get_pod("bad").dump(2);
  json p = get_pod("bad");
  const json& cs = p["status"]["containerStatuses"][0];
  EXPECT_EQ(str(cs, {"state", "terminated", "exitCode"}), "3");
  EXPECT_EQ(str(cs, {"state", "terminated", "reason"}), "Error");
}

TEST_F(AgentTest, ContainerSeesItsEnvWorkingDirHostnameAndPodFiles) {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "ident"}, {"namespace", "default"}}},
      {"spec",
       {{"nodeName", options_.node_name},
        {"restartPolicy", "Never"},
        {"containers",
         {{{"name", "main"},
           {"image", kImage},
           {"workingDir", "/tmp"},
           {"env",
            {{{"name", "GREETING"}, {"value", "hello"}},
             {{"name", "POD_NAME"},
              {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}}}},
           {"command",
            {"sh", "-c",
             "echo greeting=$GREETING pod=$POD_NAME; echo cwd=$(pwd); echo host=$(hostname); "
             "echo api=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT; "
             "cat /etc/hosts /etc/resolv.conf"}}}}}}}};
  ASSERT_TRUE(client_->create(default_pods(), pod).ok());
  ASSERT_TRUE(eventually(
      [&] {
        return str(get_pod("ident"), {"status", "phase"}) == "Succeeded";
      },
      60s))
      << get_pod("ident").dump(2);
  json p = get_pod("ident");
  std::string log = images::testing::read_all(options_.data_dir + "/agent/pods/" +
                                              str(p, {"metadata", "uid"}) + "/logs/main/0.log");
  EXPECT_NE(log.find("greeting=hello pod=ident"), std::string::npos) << log;
  EXPECT_NE(log.find("cwd=/tmp"), std::string::npos) << log;
  EXPECT_NE(log.find("host=ident"), std::string::npos) << log;
  auto api = client_->get(client::resources::kServices.in("default"), "kubernetes");
  ASSERT_TRUE(api.ok()) << api.status().to_string();
  EXPECT_NE(log.find("api=" + str(**api, {"spec", "clusterIP"}) + ":443"), std::string::npos)
      << log;
  EXPECT_NE(log.find(str(p, {"status", "podIP"}) + "\tident"), std::string::npos) << log;
  EXPECT_NE(log.find("nameserver 10.43.0.10"), std::string::npos) << log;
  EXPECT_NE(log.find("search default.svc.cluster.local"), std::string::npos) << log;
}

TEST_F(AgentTest, CrashingContainerIsRestartedWithCrashLoopBackOff) {
  ASSERT_TRUE(create_pod("crash", {"sh", "-c", "exit 1"}, "Always").ok());
  bool saw_backoff = false;
  ASSERT_TRUE(eventually(
      [&] {
        json p = get_pod("crash");
        if (str(p, {"status", "containerStatuses", "0", "state", "waiting", "reason"}) ==
            "CrashLoopBackOff") {
          saw_backoff = true;
        }
        std::string restarts = str(p, {"status", "containerStatuses", "0", "restartCount"});
        return saw_backoff && !restarts.empty() && std::stoi(restarts) >= 2;
      },
      90s))
      << get_pod("crash").dump(2);
  json p = get_pod("crash");
  EXPECT_EQ(str(p, {"status", "phase"}), "Running");
  EXPECT_EQ(condition(p, "Ready"), "False");
  EXPECT_TRUE(eventually([&] {
    json q = get_pod("crash");
    return str(q, {"status", "containerStatuses", "0", "lastState", "terminated", "exitCode"}) ==
           "1";
  }));
  EXPECT_TRUE(eventually([&] {
    auto events = client_->list(client::resources::kEvents.in("default"));
    if (!events.ok()) return false;
    for (const auto& e : events->items) {
      if (str(*e, {"involvedObject", "name"}) == "crash" && str(*e, {"reason"}) == "BackOff") {
        return true;
      }
    }
    return false;
  }));
}

TEST_F(AgentTest, GracefulDeleteStopsTheContainerAndRemovesThePod) {
  ASSERT_TRUE(create_pod("victim", {"sh", "-c",
                                    "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"})
                  .ok());
  ASSERT_TRUE(eventually([&] { return condition(get_pod("victim"), "Ready") == "True"; }, 60s))
      << get_pod("victim").dump(2);
  std::string uid = str(get_pod("victim"), {"metadata", "uid"});
  ASSERT_EQ(containers_of(uid).size(), 1u);
  ASSERT_TRUE(client_->remove(default_pods(), "victim").ok());
  ASSERT_TRUE(eventually(
      [&] { return client_->get(default_pods(), "victim").status().is_not_found(); }, 60s));
  EXPECT_TRUE(containers_of(uid).empty());
  EXPECT_FALSE(fs::exists(options_.data_dir + "/agent/pods/" + uid));
  auto events = client_->list(client::resources::kEvents.in("default"));
  ASSERT_TRUE(events.ok());
  bool killing = false;
  for (const auto& e : events->items) {
    killing |= str(*e, {"involvedObject", "name"}) == "victim" && str(*e, {"reason"}) == "Killing";
  }
  EXPECT_TRUE(killing);
  EXPECT_FALSE(fs::exists(options_.data_dir + "/agent/network/pods/" + uid + ".json"));
}

TEST_F(AgentTest, RestartedAgentAdoptsTheRunningPod) {
  ASSERT_TRUE(create_pod("stay", {"sh", "-c", "sleep 3600"}).ok());
  ASSERT_TRUE(eventually([&] { return condition(get_pod("stay"), "Ready") == "True"; }, 60s))
      << get_pod("stay").dump(2);
  json before = get_pod("stay");
  std::string uid = str(before, {"metadata", "uid"});
  std::string id = str(before, {"status", "containerStatuses", "0", "containerID"});

  agent_.reset();
  start_agent();
  // A new pod running shows the new agent is syncing.
  ASSERT_TRUE(create_pod("after", {"sh", "-c", "sleep 3600"}).ok());
  ASSERT_TRUE(eventually([&] { return condition(get_pod("after"), "Ready") == "True"; }, 60s))
      << get_pod("after").dump(2);

  json after = get_pod("stay");
  EXPECT_EQ(str(after, {"status", "containerStatuses", "0", "containerID"}), id);
  EXPECT_EQ(str(after, {"status", "containerStatuses", "0", "restartCount"}), "0");
  EXPECT_EQ(str(after, {"status", "phase"}), "Running");
  EXPECT_EQ(containers_of(uid).size(), 1u);
}

TEST_F(AgentTest, InitContainersRunInOrderBeforeTheMainContainer) {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "init"}, {"namespace", "default"}}},
      {"spec",
       {{"nodeName", options_.node_name},
        {"initContainers",
         {{{"name", "first"}, {"image", kImage}, {"command", {"sh", "-c", "echo one"}}},
          {{"name", "second"}, {"image", kImage}, {"command", {"sh", "-c", "echo two"}}}}},
        {"containers",
         {{{"name", "main"}, {"image", kImage}, {"command", {"sh", "-c", "sleep 3600"}}}}}}}};
  ASSERT_TRUE(client_->create(default_pods(), pod).ok());
  ASSERT_TRUE(eventually([&] { return condition(get_pod("init"), "Ready") == "True"; }, 60s))
      << get_pod("init").dump(2);
  json p = get_pod("init");
  EXPECT_EQ(condition(p, "Initialized"), "True");
  ASSERT_EQ(p["status"]["initContainerStatuses"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const json& ics = p["status"]["initContainerStatuses"][i];
    EXPECT_EQ(str(ics, {"state", "terminated", "exitCode"}), "0") << ics.dump();
    EXPECT_EQ(str(ics, {"state", "terminated", "reason"}), "Completed");
  }
  // The second init container started after the first one finished.
  std::string first_done =
      str(p, {"status", "initContainerStatuses", "0", "state", "terminated", "finishedAt"});
  std::string second_started =
      str(p, {"status", "initContainerStatuses", "1", "state", "terminated", "startedAt"});
  EXPECT_LE(first_done, second_started);
}

TEST_F(AgentTest, FailingInitContainerWithRestartNeverFailsThePod) {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "badinit"}, {"namespace", "default"}}},
      {"spec",
       {{"nodeName", options_.node_name},
        {"restartPolicy", "Never"},
        {"initContainers",
         {{{"name", "setup"}, {"image", kImage}, {"command", {"sh", "-c", "exit 7"}}}}},
        {"containers",
         {{{"name", "main"}, {"image", kImage}, {"command", {"sh", "-c", "sleep 3600"}}}}}}}};
  ASSERT_TRUE(client_->create(default_pods(), pod).ok());
  ASSERT_TRUE(eventually(
      [&] {
        return str(get_pod("badinit"), {"status", "phase"}) == "Failed";
      },
      60s))
      << get_pod("badinit").dump(2);
  json p = get_pod("badinit");
  EXPECT_EQ(str(p, {"status", "initContainerStatuses", "0", "state", "terminated", "exitCode"}),
            "7");
  EXPECT_TRUE(p["status"]["containerStatuses"][0]["state"].contains("waiting"));
  EXPECT_EQ(condition(p, "Initialized"), "False");
}

TEST_F(AgentTest, UnpullableImageReportsErrImagePullThenImagePullBackOff) {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "nopull"}, {"namespace", "default"}}},
              {"spec",
               {{"nodeName", options_.node_name},
                {"containers",
                 {{{"name", "main"},
                   {"image", "127.0.0.1:1/skiff-test/missing:1.0"},
                   {"command", {"sh", "-c", "sleep 3600"}}}}}}}};
  ASSERT_TRUE(client_->create(default_pods(), pod).ok());
  auto reason = [&] {
    return str(get_pod("nopull"),
               {"status", "containerStatuses", "0", "state", "waiting", "reason"});
  };
  ASSERT_TRUE(eventually([&] { return reason() == "ErrImagePull"; }, 60s))
      << get_pod("nopull").dump(2);
  ASSERT_TRUE(eventually([&] { return reason() == "ImagePullBackOff"; }, 60s))
      << get_pod("nopull").dump(2);
  EXPECT_EQ(str(get_pod("nopull"), {"status", "phase"}), "Pending");
  // The agent keeps serving other pods.
  ASSERT_TRUE(create_pod("other", {"sh", "-c", "sleep 3600"}).ok());
  EXPECT_TRUE(eventually([&] { return condition(get_pod("other"), "Ready") == "True"; }, 60s));
}

TEST_F(AgentTest, LeaseIsRenewed) {
  agent_.reset();
  options_.lease_renew_interval = 200ms;
  start_agent();
  auto leases = client::resources::kLeases.in("kube-node-lease");
  auto first = client_->get(leases, options_.node_name);
  ASSERT_TRUE(first.ok());
  std::string t0 = str(**first, {"spec", "renewTime"});
  EXPECT_TRUE(eventually([&] {
    auto l = client_->get(leases, options_.node_name);
    return l.ok() && str(**l, {"spec", "renewTime"}) > t0;
  }));
}

TEST_F(AgentTest, ContainersOfPodsGoneWhileTheAgentWasDownAreRemoved) {
  ASSERT_TRUE(create_pod("gone", {"sh", "-c", "sleep 3600"}).ok());
  ASSERT_TRUE(eventually([&] { return condition(get_pod("gone"), "Ready") == "True"; }, 60s))
      << get_pod("gone").dump(2);
  std::string uid = str(get_pod("gone"), {"metadata", "uid"});
  agent_.reset();
  client::DeleteOptions force;
  force.grace_period_seconds = 0;
  ASSERT_TRUE(client_->remove(default_pods(), "gone", force).ok());
  start_agent();
  EXPECT_TRUE(eventually([&] { return containers_of(uid).empty(); }, 60s));
}

TEST(PodChangeTest, OnlyChangesBeyondTheStatusNeedASync) {
  json a = {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata",
             {{"name", "p"}, {"uid", "u1"}, {"resourceVersion", "5"}, {"labels", {{"a", "1"}}}}},
            {"spec", {{"containers", {{{"name", "c"}, {"image", "i"}}}}}},
            {"status", {{"phase", "Pending"}}}};
  json b = a;
  b["status"]["phase"] = "Running";
  b["metadata"]["resourceVersion"] = "6";
  b["metadata"]["managedFields"] = json::array({{{"manager", "skiff-agent"}}});
  EXPECT_FALSE(pod_changed_beyond_status(a, b));
  json deleting = b;
  deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  EXPECT_TRUE(pod_changed_beyond_status(b, deleting));
  json relabelled = b;
  relabelled["metadata"]["labels"]["a"] = "2";
  EXPECT_TRUE(pod_changed_beyond_status(b, relabelled));
  json unlabelled = b;
  unlabelled["metadata"].erase("labels");
  EXPECT_TRUE(pod_changed_beyond_status(b, unlabelled));
  EXPECT_TRUE(pod_changed_beyond_status(unlabelled, b));
  json respec = b;
  respec["spec"]["containers"][0]["image"] = "j";
  EXPECT_TRUE(pod_changed_beyond_status(b, respec));
}

}  // namespace
}  // namespace skiff::agent
