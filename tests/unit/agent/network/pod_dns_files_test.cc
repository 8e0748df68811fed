#include "agent/network/pod_dns_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "net_test_util.h"

namespace skiff::agent::network {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(HostsFileTest, HasLocalhostThePodAndItsAliases) {
  PodHostsConfig c;
  c.pod_ip = "10.42.0.7";
  c.hostname = "web-0";
  c.host_aliases = {{"127.0.0.1", {"foo.local", "bar.local"}}, {"10.1.2.3", {"foo.remote"}}};
  auto text = render_hosts_file(c);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "# Kubernetes-managed hosts file.\n"
            "127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\n"
            "fe00::0\tip6-mcastprefix\n"
            "fe00::1\tip6-allnodes\n"
            "fe00::2\tip6-allrouters\n"
            "10.42.0.7\tweb-0\n"
            "\n"
            "# Entries added by HostAliases.\n"
            "127.0.0.1\tfoo.local\tbar.local\n"
            "10.1.2.3\tfoo.remote\n");
}

TEST(HostsFileTest, NamesTheFqdnWithASubdomain) {
  PodHostsConfig c;
  c.pod_ip = "10.42.0.8";
  c.hostname = "db-0";
  c.subdomain = "db";
  c.pod_namespace = "prod";
  auto text = render_hosts_file(c);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("10.42.0.8\tdb-0.db.prod.svc.cluster.local\tdb-0\n"), std::string::npos)
      << *text;
}

TEST(HostsFileTest, HostNetworkPodsSeeTheHostsFile) {
  testing::TempDir dir;
  std::ofstream(dir.path() + "/hosts") << "127.0.0.1 localhost\n192.0.2.9 node-1";
  PodHostsConfig c;
  c.host_network = true;
  c.host_hosts_file = dir.path() + "/hosts";
  c.pod_ip = "192.0.2.9";
  c.hostname = "node-1";
  c.host_aliases = {{"10.0.0.1", {"x"}}};
  auto text = render_hosts_file(c);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"
            "192.0.2.9 node-1\n\n# Entries added by HostAliases.\n10.0.0.1\tx\n");
  c.host_hosts_file = dir.path() + "/missing";
  EXPECT_EQ(render_hosts_file(c).status().code(), StatusCode::kInternal);
}

PodResolvConfig cluster_first() {
  PodResolvConfig c;
  c.pod_namespace = "shop";
  c.cluster_dns = "10.43.0.10";
  return c;
}

TEST(ResolvConfTest, ClusterFirstPointsAtTheClusterDns) {
  auto text = render_resolv_conf(cluster_first());
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
            "nameserver 10.43.0.10\n"
            "options ndots:5\n");
  PodResolvConfig with_host_net = cluster_first();
  with_host_net.dns_policy = "ClusterFirstWithHostNet";
  with_host_net.host_network = true;
  EXPECT_EQ(*render_resolv_conf(with_host_net), *text);
}

class HostResolvConfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.path() + "/resolv.conf")
        << "# generated\ndomain corp.example\nnameserver 192.0.2.53\n"
           "nameserver 192.0.2.54 ; second\noptions edns0 timeout:2\n";
  }
  PodResolvConfig config(const std::string& policy) {
    PodResolvConfig c = cluster_first();
    c.dns_policy = policy;
    c.host_resolv_conf = dir_.path() + "/resolv.conf";
    return c;
  }
  testing::TempDir dir_;
};

TEST_F(HostResolvConfTest, DefaultUsesTheHostsResolvConf) {
  auto text = render_resolv_conf(config("Default"));
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  EXPECT_EQ(*text,
            "search corp.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n"
            "options edns0 timeout:2\n");
  // A hostNetwork pod with ClusterFirst gets the same, as with the kubelet.
  PodResolvConfig host_net = config("ClusterFirst");
  host_net.host_network = true;
  EXPECT_EQ(*render_resolv_conf(host_net), *text);
  // So does any pod when no cluster DNS is configured.
  PodResolvConfig no_dns = config("");
  no_dns.cluster_dns = "";
  EXPECT_EQ(*render_resolv_conf(no_dns), *text);
  PodResolvConfig missing = config("Default");
  missing.host_resolv_conf = dir_.path() + "/missing";
  EXPECT_EQ(render_resolv_conf(missing).status().code(), StatusCode::kInternal);
}

TEST_F(HostResolvConfTest, DnsConfigIsMergedIn) {
  PodResolvConfig c = config("Default");
  c.dns_config = PodDnsConfig{{"192.0.2.53", "1.1.1.1"},
                              {"extra.example"},
                              {{"timeout", "5"}, {"ndots", "2"}, {"single-request", {}}}};
  auto text = render_resolv_conf(c);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "search corp.example extra.example\n"
            "nameserver 192.0.2.53\nnameserver 192.0.2.54\nnameserver 1.1.1.1\n"
            "options edns0 timeout:5 ndots:2 single-request\n");
}

TEST(ResolvConfTest, NoneUsesOnlyDnsConfig) {
  PodResolvConfig c = cluster_first();
  c.dns_policy = "None";
  EXPECT_EQ(render_resolv_conf(c).status().code(), StatusCode::kInvalid);
  c.dns_config = PodDnsConfig{{"1.2.3.4"}, {"a.example", "b.example"}, {{"ndots", "1"}}};
  auto text = render_resolv_conf(c);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "search a.example b.example\nnameserver 1.2.3.4\noptions ndots:1\n");
}

TEST(ResolvConfTest, KeepsAtMostThreeNameserversAndRejectsUnknownPolicies) {
  PodResolvConfig c = cluster_first();
  c.dns_config = PodDnsConfig{{"1.1.1.1", "2.2.2.2", "3.3.3.3"}, {}, {}};
  auto text = render_resolv_conf(c);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("nameserver 2.2.2.2\n"), std::string::npos);
  EXPECT_EQ(text->find("3.3.3.3"), std::string::npos);
  c.dns_policy = "Sometimes";
  auto bad = render_resolv_conf(c);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalid);
  EXPECT_NE(bad.status().message().find("Sometimes"), std::string::npos);
}

TEST(PodDnsFilesTest, WritesHostsResolvConfAndHostnameIntoThePodDir) {
  testing::TempDir dir;
  PodHostsConfig hosts;
  hosts.pod_ip = "10.42.0.9";
  hosts.hostname = "api-1";
  auto files = write_pod_dns_files(dir.path() + "/pod", hosts, cluster_first());
  ASSERT_TRUE(files.ok()) << files.status().to_string();
  EXPECT_NE(slurp(files->hosts).find("10.42.0.9\tapi-1\n"), std::string::npos);
  EXPECT_EQ(slurp(files->resolv_conf).rfind("search shop.svc.cluster.local", 0), 0u);
  EXPECT_EQ(slurp(files->hostname), "api-1\n");
  struct stat st {};
  ASSERT_EQ(::stat(files->resolv_conf.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  // Rewriting replaces the content (a new pod IP after a sandbox restart).
  hosts.pod_ip = "10.42.0.10";
  ASSERT_TRUE(write_pod_dns_files(dir.path() + "/pod", hosts, cluster_first()).ok());
  EXPECT_EQ(slurp(files->hosts).find("10.42.0.9"), std::string::npos);
  EXPECT_NE(slurp(files->hosts).find("10.42.0.10\tapi-1\n"), std::string::npos);
  // Nothing but the three files is left in the pod dir (no temporaries).
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() + "/pod")) {
    (void)e;
    ++n;
  }
  EXPECT_EQ(n, 3u);
}

TEST(PodDnsFilesTest, HostsFileGetsThePodIpInPlaceForContainersCreatedBeforeIt) {
  testing::TempDir dir;
  PodHostsConfig hosts;
  hosts.hostname = "early";
  hosts.host_aliases.push_back({"10.1.2.3", {"db"}});
  auto files = write_pod_dns_files(dir.path() + "/pod", hosts, cluster_first());
  ASSERT_TRUE(files.ok()) << files.status().to_string();
  EXPECT_EQ(slurp(files->hosts).find("\tearly\n"), std::string::npos) << slurp(files->hosts);
  // A second name for the file stands for a container's bind mount of it: both see the inode.
  const std::string mounted = dir.path() + "/mounted-hosts";
  ASSERT_EQ(::link(files->hosts.c_str(), mounted.c_str()), 0) << std::strerror(errno);
  hosts.pod_ip = "10.42.0.77";
  Status s = update_pod_hosts_file(dir.path() + "/pod", hosts);
  ASSERT_TRUE(s.ok()) << s.to_string();
  std::string seen = slurp(mounted);
  EXPECT_NE(seen.find("10.42.0.77\tearly\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("10.1.2.3\tdb\n"), std::string::npos) << seen;
  EXPECT_EQ(seen, slurp(files->hosts));
  // A shorter content leaves nothing of the longer one behind.
  ASSERT_TRUE(overwrite_file_in_place(mounted, "short\n").ok());
  EXPECT_EQ(slurp(files->hosts), "short\n");
  EXPECT_TRUE(update_pod_hosts_file(dir.path() + "/none", hosts).is_not_found());
}

}  // namespace
}  // namespace skiff::agent::network
