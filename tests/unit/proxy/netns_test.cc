// The generated rules loaded into a real kernel, inside throw-away network namespaces, and real
// TCP traffic sent through them. Skipped unless running as root with nft and ip available.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "proxy/nft.h"
#include "proxy/ruleset.h"

namespace skiff::proxy {
namespace {

using nlohmann::json;

bool run_ok(const std::vector<std::string>& argv, std::string* output = nullptr) {
  auto r = run_command(argv, "");
  if (output != nullptr) *output = r.ok() ? r->output : r.status().to_string();
  return r.ok() && r->exit_code == 0;
}

// Why the kernel tests cannot run here, or "" when they can.
std::string skip_reason() {
  if (::geteuid() != 0) return "needs root";
  if (!run_ok({"nft", "--version"})) return "nft is not installed";
  if (!run_ok({"ip", "-V"})) return "ip (iproute2) is not installed";
  return "";
}

// A named network namespace, removed on destruction.
class NetNs {
 public:
  explicit NetNs(const std::string& role) {
    static std::atomic<int> counter{0};
    name_ = "skiff-t-" + std::to_string(::getpid()) + "-" + role + "-" + std::to_string(counter++);
    std::string out;
    ok_ = run_ok({"ip", "netns", "add", name_}, &out);
    if (!ok_) error_ = out;
    if (ok_) run_ok({"ip", "-n", name_, "link", "set", "lo", "up"});
  }
  ~NetNs() {
    if (ok_) run_ok({"ip", "netns", "del", name_});
  }
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }

  // Runs fn on a thread that has entered this namespace (sockets it creates stay in it).
  bool run_inside(const std::function<void()>& fn) const {
    bool entered = false;
    std::thread t([&] {
      int fd = ::open(("/var/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return;
      entered = ::setns(fd, CLONE_NEWNET) == 0;
      ::close(fd);
      if (entered) fn();
    });
    t.join();
    return entered;
  }

 private:
  std::string name_;
  std::string error_;
  bool ok_ = false;
};

// Listening TCP sockets standing in for pods: each answers a connection with its own address.
class Backends {
 public:
  // Creates the sockets inside `ns`.
  Backends(const NetNs& ns, const std::vector<std::string>& ips, int port) {
    ns.run_inside([&] {
      for (const auto& ip : ips) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd, 64) != 0) {
          ::close(fd);
          continue;
        }
        listeners_[fd] = ip;
      }
    });
    thread_ = std::thread([this] { serve(); });
  }
  ~Backends() {
    stop_ = true;
    thread_.join();
    for (auto& [fd, ip] : listeners_) ::close(fd);
  }
  size_t listening() const { return listeners_.size(); }

 private:
  void serve() {
    while (!stop_) {
      std::vector<pollfd> fds;
      for (auto& [fd, ip] : listeners_) fds.push_back({fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
      for (auto& p : fds) {
        if ((p.revents & POLLIN) == 0) continue;
        int c = ::accept4(p.fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        const std::string& reply = listeners_[p.fd];
        (void)!::write(c, reply.data(), reply.size());
        ::close(c);
      }
    }
  }

  std::map<int, std::string> listeners_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Connects from inside `ns` and returns what the backend said, or "error: <reason>".
std::string fetch(const NetNs& ns, const std::string& ip, int port) {
  std::string result = "error: not run";
  ns.run_inside([&] {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    if (rc != 0 && errno != EINPROGRESS) {
      result = std::string("error: ") + std::strerror(errno);
      ::close(fd);
      return;
    }
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 3000) != 1) {
      result = "error: connect timed out";
      ::close(fd);
      return;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      result = std::string("error: ") + std::strerror(err);
      ::close(fd);
      return;
    }
    std::string got;
    while (true) {
      pollfd r{fd, POLLIN, 0};
      if (::poll(&r, 1, 3000) != 1) break;
      char buf[64];
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    result = got;
  });
  return result;
}

client::ObjectPtr obj(json j) { return std::make_shared<const json>(std::move(j)); }

json service(const std::string& name, const std::string& ip, json ports,
             const std::string& type = "ClusterIP") {
  return {{"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"type", type}, {"clusterIP", ip}, {"ports", std::move(ports)}}}};
}

json slice(const std::string& service, json ports, json endpoints) {
  return {{"metadata",
           {{"name", service + "-x"},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", service}}}}},
          {"addressType", "IPv4"},
          {"ports", std::move(ports)},
          {"endpoints", std::move(endpoints)}};
}

json ep(const std::string& ip, bool ready) {
  return {{"addresses", {ip}}, {"conditions", {{"ready", ready}}}};
}

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = skip_reason();
    if (!why.empty()) GTEST_SKIP() << why;
  }
};

TEST_F(NetnsTest, RulesetLoadsIntoTheKernelAndReplacesTheTable) {
  NetNs ns("load");
  if (!ns.ok()) GTEST_SKIP() << "cannot create a network namespace: " << ns.error();
  NftApplier nft("nft", ns.name());
  EXPECT_EQ(nft.list_table().status().code(), StatusCode::kNotFound);

  json web = service("web", "10.43.0.20",
                     {{{"name", "http"}, {"port", 80}, {"nodePort", 30080}},
                      {{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}}},
                     "NodePort");
  web["spec"]["sessionAffinity"] = "ClientIP";
  json local = service("local", "10.43.0.22",
                       {{{"name", "http"}, {"port", 80}, {"nodePort", 30082}}}, "LoadBalancer");
  local["spec"]["externalTrafficPolicy"] = "Local";
  local["status"]["loadBalancer"]["ingress"] = {{{"ip", "192.0.2.50"}}};
  std::vector<client::ObjectPtr> services = {
      obj(web), obj(local), obj(service("empty", "10.43.0.21", {{{"name", "http"}, {"port", 80}}})),
      obj(service("headless", "None", {{{"name", "http"}, {"port", 80}}}))};
  std::vector<client::ObjectPtr> slices = {
      obj(slice("web",
                {{{"name", "http"}, {"port", 8080}},
                 {{"name", "dns"}, {"port", 5353}, {"protocol", "UDP"}}},
                {ep("10.42.0.5", true), ep("10.42.0.6", true), ep("10.42.0.7", false)})),
      obj(slice("local", {{{"name", "http"}, {"port", 8080}}}, {ep("10.42.0.8", true)})),
      obj(slice("headless", {{{"name", "http"}, {"port", 8080}}}, {ep("10.42.0.9", true)}))};
  RulesetOptions options{"n1", {"192.168.7.1"}, "10.42.0.0/16"};
  Status s = nft.apply(desired_ruleset(services, slices, options));
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto table = nft.list_table();
  ASSERT_TRUE(table.ok()) << table.status().to_string();
  EXPECT_NE(table->find("table ip skiff"), std::string::npos);
  EXPECT_NE(table->find("dnat to 10.42.0.5:8080"), std::string::npos);
  EXPECT_NE(table->find("dnat to 10.42.0.6:5353"), std::string::npos);
  EXPECT_NE(table->find("numgen random mod 2"), std::string::npos);
  EXPECT_EQ(table->find("10.42.0.7"), std::string::npos);  // not ready
  EXPECT_EQ(table->find("10.42.0.9"), std::string::npos);  // headless
  EXPECT_NE(table->find("10.43.0.21 . tcp . 80 : goto reject-chain"), std::string::npos);
  EXPECT_NE(table->find("192.0.2.50 . tcp . 80 : goto external-"), std::string::npos);

  // A second apply replaces the table whole: the endpoint that left is gone.
  slices[0] = obj(slice("web", {{{"name", "http"}, {"port", 8080}}}, {ep("10.42.0.6", true)}));
  s = nft.apply(desired_ruleset(services, slices, options));
  ASSERT_TRUE(s.ok()) << s.to_string();
  table = nft.list_table();
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->find("10.42.0.5"), std::string::npos);
  EXPECT_NE(table->find("dnat to 10.42.0.6:8080"), std::string::npos);

  // A broken script changes nothing.
  std::string before = *table;
  s = nft.apply("table ip skiff\ndelete table ip skiff\ntable ip skiff { chain x { bogus } }\n");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(nft.list_table().value(), before);

  ASSERT_TRUE(nft.apply(delete_ruleset()).ok());
  EXPECT_EQ(nft.list_table().status().code(), StatusCode::kNotFound);
  // Deleting again is fine.
  EXPECT_TRUE(nft.apply(delete_ruleset()).ok());
}

TEST_F(NetnsTest, MissingNftIsUnavailable) {
  NftApplier nft("/nonexistent/nft", "");
  EXPECT_EQ(nft.apply(delete_ruleset()).code(), StatusCode::kUnavailable);
}

// A node namespace and a pod namespace joined by a veth pair: connections made on the node to
// a ClusterIP or a NodePort are DNATed to the pods' listeners.
TEST_F(NetnsTest, TrafficReachesOnlyReadyEndpoints) {
  NetNs node("node"), pod("pod");
  if (!node.ok() || !pod.ok()) GTEST_SKIP() << "cannot create network namespaces";
  std::string out;
  bool wired =
      run_ok({"ip", "-n", node.name(), "link", "add", "veth-n", "type", "veth", "peer", "name",
              "veth-p", "netns", pod.name()},
             &out) &&
      run_ok({"ip", "-n", node.name(), "addr", "add", "10.99.0.1/24", "dev", "veth-n"}, &out) &&
      run_ok({"ip", "-n", node.name(), "link", "set", "veth-n", "up"}, &out) &&
      run_ok({"ip", "-n", node.name(), "route", "add", "10.43.0.0/16", "dev", "veth-n"}, &out) &&
      run_ok({"ip", "-n", pod.name(), "addr", "add", "10.99.0.2/24", "dev", "veth-p"}, &out) &&
      run_ok({"ip", "-n", pod.name(), "addr", "add", "10.99.0.3/24", "dev", "veth-p"}, &out) &&
      run_ok({"ip", "-n", pod.name(), "addr", "add", "10.99.0.4/24", "dev", "veth-p"}, &out) &&
      run_ok({"ip", "-n", pod.name(), "link", "set", "veth-p", "up"}, &out);
  if (!wired) GTEST_SKIP() << "cannot wire the namespaces: " << out;

  Backends backends(pod, {"10.99.0.2", "10.99.0.3", "10.99.0.4"}, 8080);
  ASSERT_EQ(backends.listening(), 3u);
  // Direct reachability first, so that a failure below is the rules' fault.
  ASSERT_EQ(fetch(node, "10.99.0.2", 8080), "10.99.0.2");

  json web = service("web", "10.43.0.20", {{{"name", "http"}, {"port", 80}, {"nodePort", 30080}}},
                     "NodePort");
  std::vector<client::ObjectPtr> services = {
      obj(web), obj(service("empty", "10.43.0.21", {{{"name", "http"}, {"port", 80}}}))};
  // 10.99.0.4 listens too, but is not ready: it must never be chosen.
  std::vector<client::ObjectPtr> slices = {
      obj(slice("web", {{{"name", "http"}, {"port", 8080}}},
                {ep("10.99.0.2", true), ep("10.99.0.3", true), ep("10.99.0.4", false)}))};
  NftApplier nft("nft", node.name());
  Status s = nft.apply(desired_ruleset(services, slices, {"", {"10.99.0.1"}, "10.42.0.0/16"}));
  ASSERT_TRUE(s.ok()) << s.to_string();

  std::set<std::string> seen;
  for (int i = 0; i < 40; ++i) {
    std::string got = fetch(node, "10.43.0.20", 80);
    ASSERT_TRUE(got == "10.99.0.2" || got == "10.99.0.3") << "connection " << i << ": " << got;
    seen.insert(got);
  }
  EXPECT_EQ(seen.size(), 2u) << "numgen should spread 40 connections over both endpoints";

  std::string via_node_port = fetch(node, "10.99.0.1", 30080);
  EXPECT_TRUE(via_node_port == "10.99.0.2" || via_node_port == "10.99.0.3") << via_node_port;

  auto started = std::chrono::steady_clock::now();
  std::string refused = fetch(node, "10.43.0.21", 80);
  EXPECT_EQ(refused, std::string("error: ") + std::strerror(ECONNREFUSED));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
}
}  // namespace
}  // namespace skiff::proxy
