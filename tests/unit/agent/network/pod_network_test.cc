#include "agent/network/pod_network.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <chrono>
#include <thread>

#include "agent/network/cni_iptables.h"
#include "agent/network/link.h"
#include "agent/network/sandbox_namespaces.h"
#include "net_test_util.h"

namespace skiff::agent::network {
namespace {

using testing::accept_one;
using testing::connect_to;
using testing::file_exists;
using testing::hostname_in;
using testing::listen_on;
using testing::read_all;
using testing::tcp_socket_in;

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Every test gets its own bridge (sk<6 random>), network name, pod CIDR and state dir, and
// removes all of it afterwards, also when the test fails half-way.
class PodNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::running_as_root()) GTEST_SKIP() << "needs root (network namespaces, bridge)";
    if (!testing::cni_plugins_installed()) {
      GTEST_SKIP() << "needs containernetworking-plugins in /usr/lib/cni";
    }
    if (!testing::iptables_installed()) GTEST_SKIP() << "needs iptables";
    state_ = std::make_unique<testing::TempDir>();
    ASSERT_FALSE(state_->path().empty());
    options_.state_dir = state_->path();
    options_.bridge_name = "sk" + testing::unique_suffix();
    options_.pod_cidr = testing::free_pod_cidr();
    ASSERT_FALSE(options_.pod_cidr.empty()) << "no free 10.x.y.0/24 on this host";
    prefix_ = options_.pod_cidr.substr(0, options_.pod_cidr.rfind(".0/") + 1);  // "10.a.b."
  }

  void TearDown() override {
    if (state_ == nullptr) return;
    net_.reset();
    Status s = cleanup_pod_network(options_);
    EXPECT_TRUE(s.ok()) << s.to_string();
    state_.reset();
  }

  // Opens the network into net_; false (with the reason reported) on failure.
  bool open() {
    auto net = PodNetwork::open(options_);
    EXPECT_TRUE(net.ok()) << net.status().to_string();
    if (!net.ok()) return false;
    net_ = std::move(*net);
    return true;
  }

  PodSandboxRequest request(const std::string& name) {
    PodSandboxRequest r;
    r.pod_uid = new_uuid();
    r.pod_name = name;
    r.pod_namespace = "default";
    return r;
  }

  std::string ipam_file(const std::string& ip) const {
    return options_.state_dir + "/network/ipam/" + options_.bridge_name + "/" + ip;
  }

  // iptables-save lines that carry this test's network name.
  std::vector<std::string> tagged_rules() const {
    auto saved = iptables_save();
    EXPECT_TRUE(saved.ok()) << saved.status().to_string();
    std::vector<std::string> lines;
    std::istringstream in(saved.ok() ? *saved : "");
    std::string line;
    std::string tag = "name: \\\"" + options_.bridge_name + "\\\"";
    while (std::getline(in, line)) {
      if (line.find(tag) != std::string::npos) lines.push_back(line);
    }
    return lines;
  }

  // Names of the per-container CNI chains (CNI-<hash>, CNI-DN-<hash>) this test's rules use.
  std::set<std::string> tagged_chains() const {
    std::set<std::string> chains;
    for (const auto& line : tagged_rules()) {
      for (const char* flag : {"-A ", "-j "}) {
        auto pos = line.find(flag);
        while (pos != std::string::npos) {
          auto start = pos + 3;
          std::string name = line.substr(start, line.find(' ', start) - start);
          if (name.rfind("CNI-", 0) == 0 && name.rfind("CNI-HOSTPORT", 0) != 0) {
            chains.insert(name);
          }
          pos = line.find(flag, start);
        }
      }
    }
    return chains;
  }

  bool chain_exists(const std::string& chain) const {
    auto saved = iptables_save();
    return saved.ok() && saved->find(":" + chain + " ") != std::string::npos;
  }

  // Sends a greeting from a listener inside `server` (port `port`) to a connection made from
  // `client_netns` ("" for the host) to ip:connect_port, and returns what arrived plus the
  // address the server saw the connection come from.
  std::pair<std::string, std::string> exchange(const PodSandbox& server, int port,
                                               const std::string& client_netns,
                                               const std::string& ip, int connect_port) {
    FdCloser listener(tcp_socket_in(server.net_ns));
    EXPECT_GE(listener.get(), 0);
    EXPECT_TRUE(listen_on(listener.get(), port)) << std::strerror(errno);
    FdCloser client(client_netns.empty() ? ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)
                                         : tcp_socket_in(client_netns));
    EXPECT_GE(client.get(), 0);
    std::string err = connect_to(client.get(), ip, connect_port);
    if (!err.empty()) return {"connect failed: " + err, ""};
    FdCloser conn(accept_one(listener.get()));
    if (conn.get() < 0) return {"accept timed out", ""};
    std::string greeting = "hello from " + server.pod_name;
    EXPECT_EQ(::write(conn.get(), greeting.data(), greeting.size()),
              static_cast<ssize_t>(greeting.size()));
    std::string from = testing::peer_ip(conn.get());
    ::shutdown(conn.get(), SHUT_WR);
    return {read_all(client.get()), from};
  }

  PodNetworkOptions options_;
  std::string prefix_;
  std::unique_ptr<testing::TempDir> state_;
  std::unique_ptr<PodNetwork> net_;
};

TEST_F(PodNetworkTest, TwoPodsGetAddressesInThePodCidrAndReachEachOther) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  EXPECT_EQ(net.cni_version(), "1.0.0");
  auto a = net.create_sandbox(request("pod-a"));
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto b = net.create_sandbox(request("pod-b"));
  ASSERT_TRUE(b.ok()) << b.status().to_string();

  for (const PodSandbox* s : {&*a, &*b}) {
    EXPECT_EQ(s->pod_ip.rfind(prefix_, 0), 0u) << s->pod_ip << " not in " << options_.pod_cidr;
    EXPECT_NE(s->pod_ip, prefix_ + "1");  // the gateway's
    EXPECT_EQ(s->prefix_length, 24);
    EXPECT_EQ(s->gateway, prefix_ + "1");
    EXPECT_TRUE(link_exists(s->host_interface)) << s->host_interface;
    EXPECT_TRUE(is_namespace_mount(s->net_ns));
    EXPECT_TRUE(is_namespace_mount(s->ipc_ns));
    EXPECT_TRUE(is_namespace_mount(s->uts_ns));
  }
  EXPECT_NE(a->pod_ip, b->pod_ip);
  EXPECT_TRUE(link_exists(options_.bridge_name));
  EXPECT_EQ(net.list_sandboxes().size(), 2u);
  auto got = net.get_sandbox(a->pod_uid);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->pod_ip, a->pod_ip);

  auto [text, from] = exchange(*a, 8080, b->net_ns, a->pod_ip, 8080);
  EXPECT_EQ(text, "hello from pod-a");
  EXPECT_EQ(from, b->pod_ip);  // pod to pod without NAT
  auto [back, from_a] = exchange(*b, 9090, a->net_ns, b->pod_ip, 9090);
  EXPECT_EQ(back, "hello from pod-b");
  EXPECT_EQ(from_a, a->pod_ip);
  // The host reaches pods directly too.
  auto [host_text, host_from] = exchange(*a, 8081, "", a->pod_ip, 8081);
  EXPECT_EQ(host_text, "hello from pod-a");
}

TEST_F(PodNetworkTest, PodsShareOwnNamespacesWithTheirHostnameSet) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  auto a = net.create_sandbox(request("web-0"));
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  PodSandboxRequest r = request("db-0");
  r.hostname = std::string(70, 'h') + "-";  // cut to 63 like the kubelet does
  auto b = net.create_sandbox(r);
  ASSERT_TRUE(b.ok()) << b.status().to_string();

  EXPECT_EQ(hostname_in(a->uts_ns), "web-0");
  EXPECT_EQ(b->hostname, std::string(63, 'h'));
  EXPECT_EQ(hostname_in(b->uts_ns), std::string(63, 'h'));
  // Each namespace is the pod's own, not the host's nor the other pod's.
  for (auto [path, self] :
       {std::pair{a->net_ns, "/proc/self/ns/net"}, std::pair{a->ipc_ns, "/proc/self/ns/ipc"},
        std::pair{a->uts_ns, "/proc/self/ns/uts"}}) {
    struct stat pod {
    }, host{};
    ASSERT_EQ(::stat(path.c_str(), &pod), 0) << path;
    ASSERT_EQ(::stat(self, &host), 0);
    EXPECT_NE(pod.st_ino, host.st_ino) << path;
  }
  struct stat ipc_a {
  }, ipc_b{};
  ASSERT_EQ(::stat(a->ipc_ns.c_str(), &ipc_a), 0);
  ASSERT_EQ(::stat(b->ipc_ns.c_str(), &ipc_b), 0);
  EXPECT_NE(ipc_a.st_ino, ipc_b.st_ino);
  // The loopback plugin brought lo up: a listener on 127.0.0.1 inside the pod is reachable.
  FdCloser listener(tcp_socket_in(a->net_ns));
  ASSERT_TRUE(listen_on(listener.get(), 7070));
  FdCloser client(tcp_socket_in(a->net_ns));
  EXPECT_EQ(connect_to(client.get(), "127.0.0.1", 7070), "");
}

TEST_F(PodNetworkTest, HostPortReachesAListenerInsideThePod) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  const int host_port = testing::free_host_port();
  PodSandboxRequest r = request("web");
  r.port_mappings.push_back(HostPortMapping{8080, host_port, "TCP", ""});
  auto web = net.create_sandbox(r);
  ASSERT_TRUE(web.ok()) << web.status().to_string();
  auto other = net.create_sandbox(request("client"));
  ASSERT_TRUE(other.ok()) << other.status().to_string();

  // From the host, to localhost (portmap marks it for masquerade and sets route_localnet)...
  auto [via_localhost, from1] = exchange(*web, 8080, "", "127.0.0.1", host_port);
  EXPECT_EQ(via_localhost, "hello from web");
  // ... and to the bridge's address, a local address of the node.
  auto [via_gateway, from2] = exchange(*web, 8080, "", web->gateway, host_port);
  EXPECT_EQ(via_gateway, "hello from web");
  // From another pod through the node's address.
  auto [via_pod, from3] = exchange(*web, 8080, other->net_ns, web->gateway, host_port);
  EXPECT_EQ(via_pod, "hello from web");
  // And hairpin: the pod reaching itself through its own host port.
  auto [hairpin, from4] = exchange(*web, 8080, web->net_ns, web->gateway, host_port);
  EXPECT_EQ(hairpin, "hello from web");

  EXPECT_FALSE(tagged_rules().empty());
  ASSERT_TRUE(net.remove_sandbox(web->pod_uid).ok());
  // The forwarding is gone with the pod: nothing answers on the host port any more.
  FdCloser client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_NE(connect_to(client.get(), "127.0.0.1", host_port, 2000), "");
}

TEST_F(PodNetworkTest, RemovingASandboxDeletesTheVethAndFreesTheAddress) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  PodSandboxRequest r = request("short-lived");
  r.port_mappings.push_back(HostPortMapping{80, testing::free_host_port(), "tcp", ""});
  auto s = net.create_sandbox(r);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_TRUE(file_exists(ipam_file(s->pod_ip))) << ipam_file(s->pod_ip);
  ASSERT_TRUE(link_exists(s->host_interface));
  std::set<std::string> chains = tagged_chains();
  EXPECT_EQ(chains.size(), 2u);  // the bridge's masquerade chain and portmap's DNAT chain

  Status removed = net.remove_sandbox(s->pod_uid);
  ASSERT_TRUE(removed.ok()) << removed.to_string();
  EXPECT_FALSE(link_exists(s->host_interface));
  EXPECT_FALSE(file_exists(ipam_file(s->pod_ip)));
  EXPECT_FALSE(file_exists(s->net_ns));
  EXPECT_FALSE(file_exists(options_.state_dir + "/netns/" + s->pod_uid));
  EXPECT_FALSE(file_exists(options_.state_dir + "/network/pods/" + s->pod_uid + ".json"));
  EXPECT_TRUE(tagged_rules().empty());
  for (const auto& c : chains) EXPECT_FALSE(chain_exists(c)) << c;
  EXPECT_TRUE(net.get_sandbox(s->pod_uid).status().is_not_found());
  EXPECT_TRUE(net.list_sandboxes().empty());
  // Removing again, or removing a pod never seen, is fine.
  EXPECT_TRUE(net.remove_sandbox(s->pod_uid).ok());
  EXPECT_TRUE(net.remove_sandbox(new_uuid()).ok());
  // The freed address can be handed out again: the range is not leaking.
  auto again = net.create_sandbox(request("next"));
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_TRUE(file_exists(ipam_file(again->pod_ip)));
}

TEST_F(PodNetworkTest, PodsStartedConcurrentlyGetDistinctAddresses) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  constexpr int kPods = 4;
  std::vector<PodSandboxRequest> requests;
  for (int i = 0; i < kPods; ++i) requests.push_back(request("pod-" + std::to_string(i)));
  std::vector<Result<PodSandbox>> results(kPods, Status::Internal("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kPods; ++i) {
    threads.emplace_back([&, i] { results[i] = net.create_sandbox(requests[i]); });
  }
  // The same pod from two threads at once ends up as one sandbox.
  Result<PodSandbox> dup = net.create_sandbox(requests[0]);
  for (auto& t : threads) t.join();
  std::set<std::string> ips;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ips.insert(r->pod_ip);
  }
  EXPECT_EQ(ips.size(), static_cast<size_t>(kPods));
  ASSERT_TRUE(dup.ok()) << dup.status().to_string();
  EXPECT_EQ(dup->pod_ip, results[0]->pod_ip);
  EXPECT_EQ(net.list_sandboxes().size(), static_cast<size_t>(kPods));
  for (int i = 0; i < kPods; ++i) {
    threads[i] = std::thread([&, i] { EXPECT_TRUE(net.remove_sandbox(requests[i].pod_uid).ok()); });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(net.list_sandboxes().empty());
  for (const auto& ip : ips) EXPECT_FALSE(file_exists(ipam_file(ip))) << ip;
}

TEST_F(PodNetworkTest, CreatingTheSameSandboxTwiceReturnsTheExistingOne) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  PodSandboxRequest r = request("twice");
  auto first = net.create_sandbox(r);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  auto second = net.create_sandbox(r);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_EQ(second->pod_ip, first->pod_ip);
  EXPECT_EQ(second->host_interface, first->host_interface);
  EXPECT_TRUE(link_exists(first->host_interface));
  size_t allocations = 0;
  for (const auto& e : std::filesystem::directory_iterator(options_.state_dir + "/network/ipam/" +
                                                           options_.bridge_name)) {
    if (e.path().filename().string().rfind(prefix_, 0) == 0) ++allocations;
  }
  EXPECT_EQ(allocations, 1u);
  EXPECT_TRUE(net.check_sandbox(r.pod_uid).ok()) << net.check_sandbox(r.pod_uid).to_string();
}

TEST_F(PodNetworkTest, ANewPodNetworkFindsExistingSandboxesAndTearsThemDown) {
  std::string uid, ip, veth;
  {
    auto net = PodNetwork::open(options_);
    ASSERT_TRUE(net.ok()) << net.status().to_string();
    auto s = (*net)->create_sandbox(request("survivor"));
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    uid = s->pod_uid;
    ip = s->pod_ip;
    veth = s->host_interface;
  }  // the agent stops; the sandbox stays
  ASSERT_TRUE(link_exists(veth));

  ASSERT_TRUE(open());
  PodNetwork& restarted = *net_;
  auto found = restarted.get_sandbox(uid);
  ASSERT_TRUE(found.ok()) << found.status().to_string();
  EXPECT_EQ(found->pod_ip, ip);
  EXPECT_EQ(found->pod_name, "survivor");
  EXPECT_EQ(hostname_in(found->uts_ns), "survivor");
  ASSERT_EQ(restarted.list_sandboxes().size(), 1u);
  EXPECT_TRUE(restarted.check_sandbox(uid).ok());
  // Creating it again after the restart keeps the same sandbox.
  PodSandboxRequest same = request("survivor");
  same.pod_uid = uid;
  auto again = restarted.create_sandbox(same);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->pod_ip, ip);

  Status removed = restarted.remove_sandbox(uid);
  ASSERT_TRUE(removed.ok()) << removed.to_string();
  EXPECT_FALSE(link_exists(veth));
  EXPECT_FALSE(file_exists(ipam_file(ip)));
  EXPECT_TRUE(tagged_rules().empty());
}

TEST_F(PodNetworkTest, TeardownWorksWhenTheNamespacesAreAlreadyGone) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  PodSandboxRequest r = request("orphan");
  r.port_mappings.push_back(HostPortMapping{80, testing::free_host_port(), "TCP", ""});
  auto s = net.create_sandbox(r);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  std::set<std::string> chains = tagged_chains();
  ASSERT_FALSE(chains.empty());
  // As after a host reboot or someone removing them: the veth goes with the namespace.
  ASSERT_TRUE(
      remove_sandbox_namespaces(sandbox_namespace_paths(options_.state_dir + "/netns", r.pod_uid))
          .ok());
  // The kernel frees a namespace, and the veth with it, asynchronously.
  for (int i = 0; i < 100 && link_exists(s->host_interface); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(link_exists(s->host_interface));
  EXPECT_FALSE(net.check_sandbox(r.pod_uid).ok());

  Status removed = net.remove_sandbox(r.pod_uid);
  ASSERT_TRUE(removed.ok()) << removed.to_string();
  EXPECT_FALSE(file_exists(ipam_file(s->pod_ip)));
  EXPECT_TRUE(tagged_rules().empty());
  for (const auto& c : chains) EXPECT_FALSE(chain_exists(c)) << c;
}

TEST_F(PodNetworkTest, ASandboxWhoseNamespacesDiedIsCreatedAnew) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  PodSandboxRequest r = request("phoenix");
  auto s = net.create_sandbox(r);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_TRUE(
      remove_sandbox_namespaces(sandbox_namespace_paths(options_.state_dir + "/netns", r.pod_uid))
          .ok());
  auto again = net.create_sandbox(r);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_TRUE(is_namespace_mount(again->net_ns));
  EXPECT_TRUE(link_exists(again->host_interface));
  EXPECT_EQ(hostname_in(again->uts_ns), "phoenix");
  EXPECT_TRUE(net.check_sandbox(r.pod_uid).ok()) << net.check_sandbox(r.pod_uid).to_string();
}

TEST_F(PodNetworkTest, BeginCreateGivesTheNamespacesBeforeTheNetworkIsAttached) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  PodSandboxRequest r = request("early");
  auto pending = net.begin_create_sandbox(r);
  ASSERT_TRUE(pending.ok()) << pending.status().to_string();
  const PodSandbox& ns = (*pending)->namespaces();
  EXPECT_EQ(ns.pod_uid, r.pod_uid);
  EXPECT_TRUE(is_namespace_mount(ns.net_ns));
  EXPECT_TRUE(is_namespace_mount(ns.ipc_ns));
  EXPECT_EQ(hostname_in(ns.uts_ns), "early");
  auto s = (*pending)->wait();
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->net_ns, ns.net_ns);
  EXPECT_EQ(s->pod_ip.rfind(prefix_, 0), 0u) << s->pod_ip;
  EXPECT_TRUE(link_exists(s->host_interface));
  EXPECT_TRUE(net.check_sandbox(r.pod_uid).ok()) << net.check_sandbox(r.pod_uid).to_string();
  auto recorded = net.get_sandbox(r.pod_uid);
  ASSERT_TRUE(recorded.ok()) << recorded.status().to_string();
  EXPECT_EQ(recorded->pod_ip, s->pod_ip);
  // Waiting again gives the same answer.
  auto again = (*pending)->wait();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->pod_ip, s->pod_ip);
  // A sandbox that exists is returned finished, unchanged.
  auto existing = net.begin_create_sandbox(r);
  ASSERT_TRUE(existing.ok()) << existing.status().to_string();
  EXPECT_EQ((*existing)->namespaces().pod_ip, s->pod_ip);
  auto same = (*existing)->wait();
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->host_interface, s->host_interface);
  EXPECT_EQ(net.list_sandboxes().size(), 1u);
}

TEST_F(PodNetworkTest, DroppingAPendingSandboxStillFinishesItsAttach) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  PodSandboxRequest r = request("dropped");
  {
    auto pending = net.begin_create_sandbox(r);
    ASSERT_TRUE(pending.ok()) << pending.status().to_string();
  }
  auto s = net.get_sandbox(r.pod_uid);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_TRUE(net.check_sandbox(r.pod_uid).ok()) << net.check_sandbox(r.pod_uid).to_string();
  EXPECT_TRUE(net.remove_sandbox(r.pod_uid).ok());
  EXPECT_FALSE(file_exists(ipam_file(s->pod_ip)));
}

TEST_F(PodNetworkTest, AFailedAttachIsReportedByWaitAndLeavesNothingBehind) {
  options_.pod_cidr = testing::free_pod_cidr(30);  // room for one pod
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  ASSERT_TRUE(net.create_sandbox(request("fits")).ok());
  PodSandboxRequest r = request("does-not-fit");
  auto pending = net.begin_create_sandbox(r);
  ASSERT_TRUE(pending.ok()) << pending.status().to_string();
  EXPECT_EQ((*pending)->namespaces().pod_uid, r.pod_uid);
  auto s = (*pending)->wait();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("no IP addresses available"), std::string::npos)
      << s.status().to_string();
  EXPECT_FALSE(file_exists(options_.state_dir + "/netns/" + r.pod_uid));
  EXPECT_FALSE(file_exists(options_.state_dir + "/network/pods/" + r.pod_uid + ".json"));
  EXPECT_TRUE(net.get_sandbox(r.pod_uid).status().is_not_found());
  EXPECT_EQ(net.list_sandboxes().size(), 1u);
  PodSandboxRequest bad = request("");
  EXPECT_EQ(net.begin_create_sandbox(bad).status().code(), StatusCode::kInvalid);
}

TEST_F(PodNetworkTest, CheckReportsAPodWhoseVethWasRemoved) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  auto s = net.create_sandbox(request("checked"));
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_TRUE(net.check_sandbox(s->pod_uid).ok());
  ASSERT_TRUE(delete_link(s->host_interface).ok());
  Status checked = net.check_sandbox(s->pod_uid);
  EXPECT_FALSE(checked.ok());
  EXPECT_NE(checked.message().find("CNI plugin \"bridge\" CHECK"), std::string::npos)
      << checked.to_string();
  EXPECT_TRUE(net.check_sandbox(new_uuid()).is_not_found());
  EXPECT_TRUE(net.remove_sandbox(s->pod_uid).ok());
  EXPECT_FALSE(file_exists(ipam_file(s->pod_ip)));
}

TEST_F(PodNetworkTest, AnExhaustedRangeFailsClearlyAndLeavesNothingBehind) {
  // A /30 has one address for pods: .1 is the gateway, .3 the broadcast address.
  options_.pod_cidr = testing::free_pod_cidr(30);
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  auto first = net.create_sandbox(request("fits"));
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  PodSandboxRequest r = request("does-not-fit");
  auto second = net.create_sandbox(r);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kInternal);
  EXPECT_NE(second.status().message().find("CNI plugin \"bridge\" ADD"), std::string::npos)
      << second.status().to_string();
  EXPECT_NE(second.status().message().find("no IP addresses available"), std::string::npos)
      << second.status().to_string();
  EXPECT_FALSE(file_exists(options_.state_dir + "/netns/" + r.pod_uid));
  EXPECT_FALSE(file_exists(options_.state_dir + "/network/pods/" + r.pod_uid + ".json"));
  EXPECT_TRUE(net.get_sandbox(r.pod_uid).status().is_not_found());
  EXPECT_EQ(net.list_sandboxes().size(), 1u);
}

TEST_F(PodNetworkTest, CleanupRemovesBridgeRulesNamespacesAndState) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  PodSandboxRequest a = request("a");
  a.port_mappings.push_back(HostPortMapping{80, testing::free_host_port(), "TCP", ""});
  a.port_mappings.push_back(HostPortMapping{53, testing::free_host_port(), "UDP", "127.0.0.1"});
  ASSERT_TRUE(net.create_sandbox(a).ok());
  auto b = net.create_sandbox(request("b"));
  ASSERT_TRUE(b.ok());
  // A sandbox whose namespaces vanished also has to go.
  ASSERT_TRUE(
      remove_sandbox_namespaces(sandbox_namespace_paths(options_.state_dir + "/netns", b->pod_uid))
          .ok());
  std::set<std::string> chains = tagged_chains();
  EXPECT_EQ(chains.size(), 3u);
  net_.reset();

  Status s = cleanup_pod_network(options_);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_FALSE(link_exists(options_.bridge_name));
  EXPECT_TRUE(tagged_rules().empty());
  for (const auto& c : chains) EXPECT_FALSE(chain_exists(c)) << c;
  auto saved = iptables_save();
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->find(options_.bridge_name), std::string::npos);
  EXPECT_FALSE(file_exists(options_.state_dir + "/network"));
  EXPECT_FALSE(file_exists(options_.state_dir + "/netns"));
  // The state dir itself is empty and removable (no mount left inside).
  EXPECT_EQ(::rmdir(options_.state_dir.c_str()), 0) << std::strerror(errno);
  ASSERT_EQ(::mkdir(options_.state_dir.c_str(), 0700), 0);
  // Cleaning up again finds nothing to do.
  EXPECT_TRUE(cleanup_pod_network(options_).ok());
}

TEST_F(PodNetworkTest, CleanupAlsoRemovesLeftoversWithoutRecords) {
  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  PodSandboxRequest r = request("leftover");
  r.port_mappings.push_back(HostPortMapping{80, testing::free_host_port(), "TCP", ""});
  auto s = net.create_sandbox(r);
  ASSERT_TRUE(s.ok());
  net_.reset();
  // As after a crash that lost the records: only the namespaces, bridge and rules remain.
  std::filesystem::remove_all(options_.state_dir + "/network/pods");
  Status cleaned = cleanup_pod_network(options_);
  ASSERT_TRUE(cleaned.ok()) << cleaned.to_string();
  EXPECT_FALSE(link_exists(options_.bridge_name));
  EXPECT_FALSE(link_exists(s->host_interface));
  EXPECT_TRUE(tagged_rules().empty());
  EXPECT_FALSE(file_exists(options_.state_dir + "/netns"));
}

TEST_F(PodNetworkTest, OpenRejectsBadOptionsNamingThem) {
  PodNetworkOptions o = options_;
  o.pod_cidr = "10.1.2.3/24";
  auto r = PodNetwork::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
  EXPECT_NE(r.status().message().find("host bits"), std::string::npos);

  o = options_;
  o.pod_cidr = "fd00::/64";
  EXPECT_EQ(PodNetwork::open(o).status().code(), StatusCode::kInvalid);
  o = options_;
  o.bridge_name = "a-bridge-name-too-long";
  r = PodNetwork::open(o);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
  EXPECT_NE(r.status().message().find("bridge_name"), std::string::npos);
  o = options_;
  o.state_dir = "relative/dir";
  EXPECT_EQ(PodNetwork::open(o).status().code(), StatusCode::kInvalid);

  ASSERT_TRUE(open());
  PodNetwork& net = *net_;
  PodSandboxRequest bad = request("x");
  bad.pod_uid = "../escape";
  EXPECT_EQ(net.create_sandbox(bad).status().code(), StatusCode::kInvalid);
  bad = request("x");
  bad.port_mappings.push_back(HostPortMapping{80, 70000, "TCP", ""});
  EXPECT_EQ(net.create_sandbox(bad).status().code(), StatusCode::kInvalid);
  bad = request("x");
  bad.port_mappings.push_back(HostPortMapping{80, 8080, "ICMP", ""});
  EXPECT_EQ(net.create_sandbox(bad).status().code(), StatusCode::kInvalid);
}

TEST_F(PodNetworkTest, OpenFailsClearlyWhenThePluginsAreMissing) {
  testing::TempDir empty("skiff-cni-bin-");
  PodNetworkOptions o = options_;
  o.cni_bin_dir = empty.path();
  auto r = PodNetwork::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("containernetworking-plugins"), std::string::npos)
      << r.status().to_string();
}

}  // namespace
}  // namespace skiff::agent::network
