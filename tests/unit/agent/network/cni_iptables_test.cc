#include "agent/network/cni_iptables.h"

#include <gtest/gtest.h>

#include "agent/network/process.h"
#include "agent/network/sandbox_namespaces.h"
#include "net_test_util.h"

namespace skiff::agent::network {
namespace {

// Rules shaped exactly like the ones the bridge (ipMasq) and portmap plugins add, for two
// networks. Every test runs in a private network namespace of its own (iptables state is per
// namespace, and helpers spawned from a thread inherit its namespace), so nothing here can
// touch the host's rules or another test run's.
class CniIptablesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::running_as_root()) GTEST_SKIP() << "needs root (iptables, namespaces)";
    if (!testing::iptables_installed()) GTEST_SKIP() << "needs iptables";
    dir_ = std::make_unique<testing::TempDir>();
    auto ns = create_sandbox_namespaces(dir_->path() + "/netns", "iptables-test", "ipt");
    ASSERT_TRUE(ns.ok()) << ns.status().to_string();
    netns_ = ns->net;
    std::string id = testing::unique_suffix();
    mine_ = "skt" + id;
    theirs_ = "sko" + id;
    std::string script =
        "*nat\n:CNI-MQ1 - [0:0]\n:CNI-MQ2 - [0:0]\n:CNI-DN-A - [0:0]\n"
        ":CNI-OT - [0:0]\n:CNI-HOSTPORT-DNAT - [0:0]\n" +
        rule("POSTROUTING", "10.251.1.2", mine_, "pod1", "CNI-MQ1") +
        rule("POSTROUTING", "10.251.1.3", mine_, "pod2", "CNI-MQ2") +
        rule("POSTROUTING", "10.251.1.4", theirs_, "pod1", "CNI-OT") +
        "-A CNI-MQ1 -d 10.251.1.0/24 -m comment --comment \"name: \\\"" + mine_ +
        "\\\" id: \\\"pod1\\\"\" -j ACCEPT\n" +
        "-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: \\\"" + mine_ +
        "\\\" id: \\\"pod1\\\"\" -m multiport --dports 18080 -j CNI-DN-A\n" +
        "-A CNI-DN-A -p tcp -m tcp --dport 18080 -j DNAT --to-destination "
        "10.251.1.2:80\n" +
        "COMMIT\n";
    ASSERT_EQ(restore(script), "");
  }
  void TearDown() override {
    if (dir_ == nullptr) return;
    EXPECT_TRUE(remove_all_sandbox_namespaces(dir_->path() + "/netns").ok());
  }

  static std::string rule(const std::string& chain, const std::string& ip, const std::string& net,
                          const std::string& id, const std::string& target) {
    return "-A " + chain + " -s " + ip + "/32 -m comment --comment \"name: \\\"" + net +
           "\\\" id: \\\"" + id + "\\\"\" -j " + target + "\n";
  }

  // Runs `fn` inside the test's network namespace.
  template <typename Fn>
  void in_ns(Fn fn) {
    ASSERT_TRUE(testing::run_in_namespace(netns_, CLONE_NEWNET, fn));
  }
  // Loads `script` with iptables-restore; "" on success, else the complaint.
  std::string restore(const std::string& script) {
    std::string err = "not run";
    in_ns([&] {
      auto r = run_process({"iptables-restore", "--noflush", "-w"}, helper_environment({}), script,
                           std::chrono::milliseconds(30000));
      err = !r.ok() ? r.status().to_string() : r->exit_code != 0 ? r->stderr_text : "";
    });
    return err;
  }
  std::string saved() {
    std::string text;
    in_ns([&] {
      auto s = iptables_save();
      EXPECT_TRUE(s.ok());
      if (s.ok()) text = *s;
    });
    return text;
  }
  bool has_chain(const std::string& c) { return saved().find(":" + c + " ") != std::string::npos; }
  Status remove_rules(const std::string& net, const std::string& id) {
    Status s = Status::Internal("not run");
    in_ns([&] { s = remove_cni_iptables_rules(net, id); });
    return s;
  }
  Status remove_unused() {
    Status s = Status::Internal("not run");
    in_ns([&] { s = remove_unused_hostport_chains(); });
    return s;
  }

  std::unique_ptr<testing::TempDir> dir_;
  std::string netns_;
  std::string mine_, theirs_;
};

TEST_F(CniIptablesTest, TheHostsRulesAreNotTheTestsRules) {
  // The rules loaded in SetUp live only in the test's namespace.
  EXPECT_TRUE(has_chain("CNI-MQ1"));
  auto host = iptables_save();
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->find(mine_), std::string::npos);
}

TEST_F(CniIptablesTest, RemovesOneContainersRulesAndChainsOnly) {
  ASSERT_TRUE(remove_rules(mine_, "pod1").ok());
  std::string s = saved();
  EXPECT_FALSE(has_chain("CNI-MQ1"));
  EXPECT_FALSE(has_chain("CNI-DN-A"));
  EXPECT_EQ(s.find("-j CNI-MQ1"), std::string::npos) << s;
  EXPECT_EQ(s.find("dnat name: \\\"" + mine_), std::string::npos) << s;
  EXPECT_TRUE(has_chain("CNI-MQ2"));            // another pod of the same network
  EXPECT_TRUE(has_chain("CNI-OT"));             // the same pod id in another network
  EXPECT_TRUE(has_chain("CNI-HOSTPORT-DNAT"));  // shared with everyone
  // Nothing left to remove is fine.
  EXPECT_TRUE(remove_rules(mine_, "pod1").ok());
}

TEST_F(CniIptablesTest, RemovesEveryRuleOfANetwork) {
  ASSERT_TRUE(remove_rules(mine_, "").ok());
  std::string s = saved();
  EXPECT_EQ(s.find(mine_), std::string::npos) << s;
  EXPECT_FALSE(has_chain("CNI-MQ1"));
  EXPECT_FALSE(has_chain("CNI-MQ2"));
  EXPECT_FALSE(has_chain("CNI-DN-A"));
  EXPECT_NE(s.find(theirs_), std::string::npos);
  EXPECT_TRUE(has_chain("CNI-OT"));
}

TEST_F(CniIptablesTest, SharedHostportChainsGoOnlyWhenNoPortIsForwarded) {
  ASSERT_EQ(restore("*nat\n:CNI-HOSTPORT-SETMARK - [0:0]\n:CNI-HOSTPORT-MASQ - [0:0]\n"
                    "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
                    "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
                    "-A POSTROUTING -m comment --comment \"CNI portfwd requiring masquerade\" "
                    "-j CNI-HOSTPORT-MASQ\n"
                    "-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE\n"
                    "-A CNI-HOSTPORT-SETMARK -m comment --comment \"CNI portfwd masquerade "
                    "mark\" -j MARK --set-xmark 0x2000/0x2000\n"
                    "COMMIT\n"),
            "");
  ASSERT_TRUE(remove_unused().ok());
  EXPECT_TRUE(has_chain("CNI-HOSTPORT-DNAT"));  // still forwards a port of network mine_
  EXPECT_TRUE(has_chain("CNI-HOSTPORT-MASQ"));

  ASSERT_TRUE(remove_rules(mine_, "").ok());
  ASSERT_TRUE(remove_unused().ok());
  std::string s = saved();
  EXPECT_EQ(s.find("CNI-HOSTPORT"), std::string::npos) << s;
  EXPECT_TRUE(has_chain("CNI-OT"));  // other networks' own chains stay
  EXPECT_TRUE(remove_unused().ok());
}

}  // namespace
}  // namespace skiff::agent::network
