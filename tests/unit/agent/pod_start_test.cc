// Pod start in the node agent: containers are created while the pod's network is attached
// (CNI ADD) and start only once it is, so what depends on the pod's IP (/etc/hosts, env from
// status.podIP) is right in every container. Real containers against an in-process API server;
// needs root, runc, conmon, the CNI plugins and busybox-static (skips with the reason otherwise).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/agent.h"
#include "testing/test_server.h"
#include "unit/agent/agent_fixture.h"
#include "unit/agent/images/test_image.h"
#include "unit/agent/network/net_test_util.h"

namespace skiff::agent {
namespace {

using nlohmann::json;
using skiff::testing::eventually;
using namespace std::chrono_literals;

constexpr char kImage[] = "skiff.test/busybox:1.0";

std::string str(const json& j, const char* a, const char* b) {
  if (!j.contains(a) || !j[a].is_object() || !j[a].contains(b) || !j[a][b].is_string()) return "";
  return j[a][b].get<std::string>();
}

class PodStartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = testing::agent_test_skip_reason(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(server_.ok());
    client_ = server_.client("skiff-pod-start-test");
    data_dir_ = std::make_unique<network::testing::TempDir>("skiff-pod-start-");
    options_ = testing::test_agent_options("start", data_dir_->path());
    ASSERT_FALSE(options_.pod_cidr.empty()) << "no free 10.x.y.0/24 on this host";
    Status imported = testing::import_busybox_image(options_.data_dir, {"sh", "cat", "echo"});
    ASSERT_TRUE(imported.ok()) << imported.to_string();
    agent_ = std::make_unique<Agent>(*client_, options_);
    Status s = agent_->start();
    ASSERT_TRUE(s.ok()) << s.to_string();
  }

  void TearDown() override {
    agent_.reset();
    if (data_dir_ == nullptr) return;
    testing::remove_agent_leftovers(options_);
    data_dir_.reset();
  }

  json get_pod(const std::string& name) {
    auto p = client_->get(client::resources::kPods.in("default"), name);
    return p.ok() ? **p : json::object();
  }

  std::string log_of(const json& pod, const std::string& container) {
    return images::testing::read_all(options_.data_dir + "/agent/pods/" +
                                     str(pod, "metadata", "uid") + "/logs/" + container +
                                     "/0.log");
  }

  skiff::testing::TestServer server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<network::testing::TempDir> data_dir_;
  AgentOptions options_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(PodStartTest, EveryContainerSeesThePodIpInEtcHostsAndInItsEnv) {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "addressed"}, {"namespace", "default"}}},
      {"spec",
       {{"nodeName", options_.node_name},
        {"restartPolicy", "Never"},
        {"hostAliases", {{{"ip", "10.9.8.7"}, {"hostnames", {"db.local"}}}}},
        {"containers",
         {{{"name", "hosts"}, {"image", kImage}, {"command", {"cat", "/etc/hosts"}}},
          {{"name", "env"},
           {"image", kImage},
           {"env",
            {{{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}}}},
           {"command", {"sh", "-c", "echo ip=$POD_IP; cat /etc/hosts"}}}}}}}};
  ASSERT_TRUE(client_->create(client::resources::kPods.in("default"), pod).ok());
  ASSERT_TRUE(eventually(
      [&] { return str(get_pod("addressed"), "status", "phase") == "Succeeded"; }, 60s))
      << get_pod("addressed").dump(2);
  json p = get_pod("addressed");
  const std::string ip = str(p, "status", "podIP");
  ASSERT_FALSE(ip.empty()) << p.dump(2);
  for (const char* c : {"hosts", "env"}) {
    std::string log = log_of(p, c);
    EXPECT_NE(log.find(ip + "\taddressed"), std::string::npos) << c << ": " << log;
    EXPECT_NE(log.find("10.9.8.7\tdb.local"), std::string::npos) << c << ": " << log;
  }
  EXPECT_NE(log_of(p, "env").find("ip=" + ip + "\n"), std::string::npos) << log_of(p, "env");
}

}  // namespace
}  // namespace skiff::agent
