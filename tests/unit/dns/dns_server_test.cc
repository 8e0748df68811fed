// The cluster DNS against a real API server, queried over real UDP and TCP sockets with a
// query builder and answer reader of the test's own (independent of src/dns/message.h).
#include "dns/dns_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/informer.h"
#include "testing/test_server.h"

namespace skiff::dns {
namespace {

using nlohmann::json;
using skiff::testing::eventually;
using skiff::testing::TestServer;

constexpr uint16_t A = 1, NS = 2, CNAME = 5, SOA = 6, AAAA = 28, SRV = 33, OPT = 41;

// --- the test's own wire format ----------------------------------------------------------------

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

struct QueryOptions {
  uint16_t id = 0x4242;
  bool edns = false;
  uint16_t edns_size = 4096;
  uint8_t edns_version = 0;
  uint16_t qdcount = 1;
  uint16_t opcode = 0;
};

std::string build_query(const std::string& name, uint16_t type, QueryOptions o = {}) {
  std::string q;
  put16(q, o.id);
  put16(q, static_cast<uint16_t>(0x0100 | (o.opcode << 11)));  // RD
  put16(q, o.qdcount);
  put16(q, 0);
  put16(q, 0);
  put16(q, o.edns ? 1 : 0);
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<char>(dot - start));
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q.push_back(0);
  put16(q, type);
  put16(q, 1);
  if (o.edns) {
    q.push_back(0);
    put16(q, OPT);
    put16(q, o.edns_size);
    q.push_back(0);
    q.push_back(static_cast<char>(o.edns_version));
    put16(q, 0);
    put16(q, 0);
  }
  return q;
}

struct Rr {
  std::string name;  // lower case, with a trailing dot
  uint16_t type = 0;
  uint32_t ttl = 0;
  std::string data;  // A: dotted; SRV: "prio weight port target"; names: the name
};

struct Answer {
  uint16_t id = 0;
  bool aa = false, tc = false, ra = false;
  int rcode = -1;
  int qdcount = 0;
  std::vector<Rr> answers, authority, additional;
  bool opt = false;
  uint8_t opt_ext_rcode = 0;
};

class WireReader {
 public:
  explicit WireReader(const std::string& d) : d_(d) {}
  bool ok() const { return ok_; }
  uint8_t u8() {
    if (pos_ >= d_.size()) return fail();
    return static_cast<uint8_t>(d_[pos_++]);
  }
  uint16_t u16() {
    uint16_t hi = u8();
    return static_cast<uint16_t>((hi << 8) | u8());
  }
  uint32_t u32() {
    uint32_t hi = u16();
    return (hi << 16) | u16();
  }
  std::string name() { return name_at(&pos_, 0); }
  size_t pos() const { return pos_; }
  void skip(size_t n) { pos_ += n; }

 private:
  uint8_t fail() {
    ok_ = false;
    return 0;
  }
  std::string name_at(size_t* pos, int depth) {
    std::string out;
    while (ok_ && depth < 20) {
      if (*pos >= d_.size()) return fail(), out;
      uint8_t len = static_cast<uint8_t>(d_[*pos]);
      if ((len & 0xC0) == 0xC0) {
        size_t target = ((len & 0x3F) << 8) | static_cast<uint8_t>(d_.at(*pos + 1));
        *pos += 2;
        return out + name_at(&target, depth + 1);
      }
      ++*pos;
      if (len == 0) return out.empty() ? "." : out;
      for (size_t i = 0; i < len && *pos < d_.size(); ++i) {
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(d_[(*pos)++]))));
      }
      out += ".";
    }
    fail();
    return out;
  }

  const std::string& d_;
  size_t pos_ = 0;
  bool ok_ = true;
};

std::optional<Answer> read_answer(const std::string& wire) {
  WireReader r(wire);
  Answer a;
  a.id = r.u16();
  uint16_t flags = r.u16();
  a.aa = flags & 0x0400;
  a.tc = flags & 0x0200;
  a.ra = flags & 0x0080;
  a.rcode = flags & 0xF;
  a.qdcount = r.u16();
  int counts[3] = {r.u16(), r.u16(), r.u16()};
  for (int i = 0; i < a.qdcount; ++i) {
    r.name();
    r.u16();
    r.u16();
  }
  std::vector<Rr>* sections[3] = {&a.answers, &a.authority, &a.additional};
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < counts[s]; ++i) {
      Rr rr;
      rr.name = r.name();
      rr.type = r.u16();
      uint16_t klass = r.u16();
      rr.ttl = r.u32();
      uint16_t len = r.u16();
      size_t end = r.pos() + len;
      if (rr.type == A) {
        rr.data = std::to_string(r.u8());
        for (int k = 0; k < 3; ++k) rr.data += "." + std::to_string(r.u8());
      } else if (rr.type == SRV) {
        uint16_t prio = r.u16(), weight = r.u16(), port = r.u16();
        rr.data = std::to_string(prio) + " " + std::to_string(weight) + " " + std::to_string(port) +
                  " " + r.name();
      } else if (rr.type == CNAME || rr.type == NS || rr.type == SOA) {
        rr.data = r.name();
      } else if (rr.type == OPT) {
        a.opt = true;
        a.opt_ext_rcode = static_cast<uint8_t>(rr.ttl >> 24);
        (void)klass;
      }
      if (r.pos() > end) return std::nullopt;
      r.skip(end - r.pos());
      if (rr.type != OPT) sections[s]->push_back(rr);
    }
  }
  if (!r.ok() || r.pos() != wire.size()) return std::nullopt;
  return a;
}

// --- sockets ---------------------------------------------------------------------------------

sockaddr_in local(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Sends one datagram and waits for one; nullopt when nothing comes back in time.
std::optional<std::string> udp_exchange(uint16_t port, const std::string& packet,
                                        int timeout_ms = 2000) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to = local(port);
  ::sendto(fd, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  pollfd p{fd, POLLIN, 0};
  std::optional<std::string> out;
  if (::poll(&p, 1, timeout_ms) == 1) {
    std::string buf(65535, '\0');
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n >= 0) out = buf.substr(0, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

bool read_full(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 3000) != 1) return false;
    ssize_t r = ::read(fd, buf + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// One TCP connection carrying the given queries in turn; the answers (fewer when the server
// closes the connection).
std::vector<std::string> tcp_exchange(uint16_t port, const std::vector<std::string>& queries,
                                      bool framed = true) {
  std::vector<std::string> out;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to = local(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    ::close(fd);
    return out;
  }
  for (const auto& q : queries) {
    std::string msg;
    if (framed) put16(msg, static_cast<uint16_t>(q.size()));
    msg += q;
    if (::write(fd, msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) break;
    char len[2];
    if (!read_full(fd, len, 2)) break;
    std::string reply((static_cast<uint8_t>(len[0]) << 8) | static_cast<uint8_t>(len[1]), '\0');
    if (!read_full(fd, reply.data(), reply.size())) break;
    out.push_back(reply);
  }
  ::close(fd);
  return out;
}

// --- fixtures ---------------------------------------------------------------------------------

json service(const std::string& name, json spec) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", std::move(spec)}};
}

json ports_http() {
  return json::array({{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}},
                      {{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}}});
}

json endpoint(const std::string& ip, bool ready, const std::string& hostname = "") {
  json e = {{"addresses", {ip}}, {"conditions", {{"ready", ready}}}};
  if (!hostname.empty()) e["hostname"] = hostname;
  return e;
}

json slice(const std::string& name, const std::string& service, json endpoints) {
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", name},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", service}}}}},
          {"addressType", "IPv4"},
          {"ports", json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}})},
          {"endpoints", std::move(endpoints)}};
}

class DnsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    client_ = server_.client("skiff-dns");
    informers_ = std::make_unique<client::InformerFactory>(*client_);
  }
  void TearDown() override {
    dns_.reset();
    if (informers_) informers_->stop();
  }

  void start(DnsOptions o = {}) {
    o.address = "127.0.0.1";
    o.port = 0;
    if (o.upstreams.empty()) o.resolv_conf = "";
    dns_ = std::make_unique<DnsServer>(*informers_, o);
    Status s = dns_->start();
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_NE(dns_->port(), 0);
  }

  std::optional<Answer> ask(const std::string& name, uint16_t type, QueryOptions o = {}) {
    auto wire = udp_exchange(dns_->port(), build_query(name, type, o));
    if (!wire) return std::nullopt;
    return read_answer(*wire);
  }

  // Waits until the name answers with `count` records of the type asked.
  bool answers(const std::string& name, uint16_t type, size_t count) {
    return eventually([&] {
      auto a = ask(name, type);
      return a && a->rcode == 0 && a->answers.size() == count;
    });
  }

  std::string create(const client::ResourceRef& r, const json& obj) {
    auto created = client_->create(r.in("default"), obj);
    EXPECT_TRUE(created.ok()) << created.status().to_string();
    return created.ok() ? (*created)->dump() : "";
  }

  std::string cluster_ip(const std::string& name) {
    auto svc = client_->get(client::resources::kServices.in("default"), name);
    return svc.ok() ? (*svc)->at("spec").value("clusterIP", "") : "";
  }

  TestServer server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<client::InformerFactory> informers_;
  std::unique_ptr<DnsServer> dns_;
};

TEST_F(DnsServerTest, ClusterIpServiceHasAnARecord) {
  create(client::resources::kServices, service("web", {{"ports", ports_http()}}));
  std::string ip = cluster_ip("web");
  ASSERT_FALSE(ip.empty());
  start();
  ASSERT_TRUE(answers("web.default.svc.cluster.local", A, 1));
  auto a = ask("WEB.Default.svc.cluster.local", A);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->id, 0x4242);
  EXPECT_TRUE(a->aa);
  EXPECT_EQ(a->rcode, 0);
  ASSERT_EQ(a->answers.size(), 1u);
  EXPECT_EQ(a->answers[0].name, "web.default.svc.cluster.local.");
  EXPECT_EQ(a->answers[0].type, A);
  EXPECT_EQ(a->answers[0].data, ip);
  EXPECT_EQ(a->answers[0].ttl, 5u);
}

TEST_F(DnsServerTest, SrvRecordsNameThePorts) {
  create(client::resources::kServices, service("web", {{"ports", ports_http()}}));
  std::string ip = cluster_ip("web");
  start();
  ASSERT_TRUE(answers("_http._tcp.web.default.svc.cluster.local", SRV, 1));
  auto a = ask("_http._tcp.web.default.svc.cluster.local", SRV);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->answers[0].data, "0 100 80 web.default.svc.cluster.local.");
  ASSERT_EQ(a->additional.size(), 1u);
  EXPECT_EQ(a->additional[0].name, "web.default.svc.cluster.local.");
  EXPECT_EQ(a->additional[0].data, ip);

  auto udp = ask("_dns._udp.web.default.svc.cluster.local", SRV);
  ASSERT_TRUE(udp);
  ASSERT_EQ(udp->answers.size(), 1u);
  EXPECT_EQ(udp->answers[0].data, "0 100 53 web.default.svc.cluster.local.");

  // The bare service name lists every port.
  auto all = ask("web.default.svc.cluster.local", SRV);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->answers.size(), 2u);

  // Wrong protocol or unknown port: no such name.
  EXPECT_EQ(ask("_http._udp.web.default.svc.cluster.local", SRV)->rcode, 3);
  EXPECT_EQ(ask("_nope._tcp.web.default.svc.cluster.local", SRV)->rcode, 3);
}

TEST_F(DnsServerTest, HeadlessServiceAnswersReadyEndpoints) {
  create(client::resources::kServices,
         service("db", {{"clusterIP", "None"}, {"ports", ports_http()}}));
  create(client::resources::kEndpointSlices,
         slice("db-1", "db",
               {endpoint("10.42.0.5", true, "db-0"), endpoint("10.42.0.6", true),
                endpoint("10.42.0.7", false)}));
  start();
  ASSERT_TRUE(answers("db.default.svc.cluster.local", A, 2));
  auto a = ask("db.default.svc.cluster.local", A);
  std::set<std::string> ips;
  for (const auto& rr : a->answers) ips.insert(rr.data);
  EXPECT_EQ(ips, (std::set<std::string>{"10.42.0.5", "10.42.0.6"}));

  auto srv = ask("_http._tcp.db.default.svc.cluster.local", SRV);
  ASSERT_TRUE(srv);
  std::set<std::string> targets;
  for (const auto& rr : srv->answers) targets.insert(rr.data);
  EXPECT_EQ(targets, (std::set<std::string>{"0 50 8080 db-0.db.default.svc.cluster.local.",
                                            "0 50 8080 10-42-0-6.db.default.svc.cluster.local."}));
  EXPECT_EQ(srv->additional.size(), 2u);

  auto by_hostname = ask("db-0.db.default.svc.cluster.local", A);
  ASSERT_EQ(by_hostname->answers.size(), 1u);
  EXPECT_EQ(by_hostname->answers[0].data, "10.42.0.5");
  auto by_address = ask("10-42-0-6.db.default.svc.cluster.local", A);
  ASSERT_EQ(by_address->answers.size(), 1u);
  EXPECT_EQ(by_address->answers[0].data, "10.42.0.6");
  // Not ready: not published.
  EXPECT_EQ(ask("10-42-0-7.db.default.svc.cluster.local", A)->rcode, 3);

  // A headless service without ready endpoints does not resolve.
  create(client::resources::kServices,
         service("idle", {{"clusterIP", "None"}, {"ports", ports_http()}}));
  ASSERT_TRUE(eventually([&] {
    auto idle = ask("idle.default.svc.cluster.local", A);
    return idle && idle->rcode == 3;
  }));
}

TEST_F(DnsServerTest, NxdomainAndNodataCarryTheSoa) {
  create(client::resources::kServices, service("web", {{"ports", ports_http()}}));
  start();
  ASSERT_TRUE(answers("web.default.svc.cluster.local", A, 1));

  auto missing = ask("nothere.default.svc.cluster.local", A);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->rcode, 3);
  EXPECT_TRUE(missing->aa);
  ASSERT_EQ(missing->authority.size(), 1u);
  EXPECT_EQ(missing->authority[0].type, SOA);
  EXPECT_EQ(missing->authority[0].name, "cluster.local.");

  auto nodata = ask("web.default.svc.cluster.local", AAAA);
  EXPECT_EQ(nodata->rcode, 0);
  EXPECT_TRUE(nodata->answers.empty());
  ASSERT_EQ(nodata->authority.size(), 1u);
  EXPECT_EQ(nodata->authority[0].type, SOA);

  EXPECT_EQ(ask("default.svc.cluster.local", A)->rcode, 0);
  EXPECT_EQ(ask("emptyns.svc.cluster.local", A)->rcode, 3);
  EXPECT_EQ(ask("svc.cluster.local", A)->rcode, 0);
  EXPECT_EQ(ask("a.b.c.d.e.f.svc.cluster.local", A)->rcode, 3);
  EXPECT_EQ(ask("web.default.other.cluster.local", A)->rcode, 3);
  auto soa = ask("cluster.local", SOA);
  ASSERT_EQ(soa->answers.size(), 1u);
  EXPECT_EQ(soa->answers[0].type, SOA);
}

TEST_F(DnsServerTest, ExternalNameIsACname) {
  create(client::resources::kServices,
         service("ext", {{"type", "ExternalName"}, {"externalName", "db.example.com"}}));
  start();
  ASSERT_TRUE(answers("ext.default.svc.cluster.local", A, 1));
  auto a = ask("ext.default.svc.cluster.local", A);
  EXPECT_EQ(a->answers[0].type, CNAME);
  EXPECT_EQ(a->answers[0].data, "db.example.com.");
}

TEST_F(DnsServerTest, PodRecordsAreVerifiedAgainstPods) {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "p1"}, {"namespace", "default"}}},
              {"spec", {{"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}};
  auto created = client_->create(client::resources::kPods.in("default"), pod);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  json with_ip = **created;
  with_ip["status"]["podIP"] = "10.42.3.9";
  with_ip["status"]["podIPs"] = {{{"ip", "10.42.3.9"}}};
  auto updated = client_->update(client::resources::kPods.in("default"), with_ip, "status");
  ASSERT_TRUE(updated.ok()) << updated.status().to_string();
  start();
  ASSERT_TRUE(answers("10-42-3-9.default.pod.cluster.local", A, 1));
  EXPECT_EQ(ask("10-42-3-9.default.pod.cluster.local", A)->answers[0].data, "10.42.3.9");
  EXPECT_EQ(ask("10-42-3-10.default.pod.cluster.local", A)->rcode, 3);
  EXPECT_EQ(ask("10-42-3-9.other.pod.cluster.local", A)->rcode, 3);
  EXPECT_EQ(ask("not-an-ip.default.pod.cluster.local", A)->rcode, 3);
}

TEST_F(DnsServerTest, InsecurePodRecordsEchoTheAddress) {
  DnsOptions o;
  o.pods = PodRecords::kInsecure;
  start(o);
  ASSERT_TRUE(answers("1-2-3-4.any.pod.cluster.local", A, 1));
  EXPECT_EQ(ask("1-2-3-4.any.pod.cluster.local", A)->answers[0].data, "1.2.3.4");
}

TEST_F(DnsServerTest, LargeAnswersAreTruncatedOverUdpAndWholeOverTcp) {
  create(client::resources::kServices,
         service("big", {{"clusterIP", "None"}, {"ports", ports_http()}}));
  json endpoints = json::array();
  for (int i = 1; i <= 60; ++i) endpoints.push_back(endpoint("10.42.9." + std::to_string(i), true));
  create(client::resources::kEndpointSlices, slice("big-1", "big", endpoints));
  start();
  const std::string name = "big.default.svc.cluster.local";
  ASSERT_TRUE(eventually([&] {
    auto a = ask(name, A);
    return a && (a->tc || a->answers.size() == 60);
  }));

  auto wire = udp_exchange(dns_->port(), build_query(name, A));
  ASSERT_TRUE(wire);
  EXPECT_LE(wire->size(), 512u);
  auto classic = read_answer(*wire);
  ASSERT_TRUE(classic);
  EXPECT_TRUE(classic->tc);
  EXPECT_GT(classic->answers.size(), 0u);
  EXPECT_LT(classic->answers.size(), 60u);

  QueryOptions edns;
  edns.edns = true;
  auto large = ask(name, A, edns);
  ASSERT_TRUE(large);
  EXPECT_FALSE(large->tc);
  EXPECT_TRUE(large->opt);
  EXPECT_EQ(large->answers.size(), 60u);

  auto over_tcp = tcp_exchange(dns_->port(), {build_query(name, A), build_query(name, SRV)});
  ASSERT_EQ(over_tcp.size(), 2u);
  auto a = read_answer(over_tcp[0]);
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->tc);
  EXPECT_EQ(a->answers.size(), 60u);
  auto srv = read_answer(over_tcp[1]);
  ASSERT_TRUE(srv);
  EXPECT_EQ(srv->answers.size(), 60u);
  EXPECT_EQ(srv->additional.size(), 60u);
}

TEST_F(DnsServerTest, MalformedQueriesNeverCrashIt) {
  create(client::resources::kServices, service("web", {{"ports", ports_http()}}));
  start();
  ASSERT_TRUE(answers("web.default.svc.cluster.local", A, 1));
  const uint16_t port = dns_->port();

  // Shorter than a header: ignored.
  EXPECT_FALSE(udp_exchange(port, "abc", 300));
  // A header claiming a question that is not there: FORMERR with the same id.
  std::string header_only = build_query("x", A).substr(0, 12);
  auto formerr = read_answer(udp_exchange(port, header_only).value_or(""));
  ASSERT_TRUE(formerr);
  EXPECT_EQ(formerr->id, 0x4242);
  EXPECT_EQ(formerr->rcode, 1);
  // A compression loop.
  std::string loop = header_only + std::string("\xC0\x0C\x00\x01\x00\x01", 6);
  EXPECT_EQ(read_answer(udp_exchange(port, loop).value_or(""))->rcode, 1);
  // Two questions.
  QueryOptions two;
  two.qdcount = 2;
  EXPECT_EQ(
      read_answer(
          udp_exchange(port, build_query("web.default.svc.cluster.local", A, two)).value_or(""))
          ->rcode,
      1);
  // Not a QUERY: NOTIMP.
  QueryOptions notify;
  notify.opcode = 4;
  EXPECT_EQ(ask("web.default.svc.cluster.local", A, notify)->rcode, 4);
  // EDNS version 1: BADVERS (16), its upper bits in the OPT record.
  QueryOptions v1;
  v1.edns = true;
  v1.edns_version = 1;
  auto badvers = ask("web.default.svc.cluster.local", A, v1);
  ASSERT_TRUE(badvers);
  EXPECT_TRUE(badvers->opt);
  EXPECT_EQ((badvers->opt_ext_rcode << 4) | badvers->rcode, 16);
  // A response is never answered (no reflection loops).
  std::string response = build_query("web.default.svc.cluster.local", A);
  response[2] = static_cast<char>(response[2] | 0x80);
  EXPECT_FALSE(udp_exchange(port, response, 300));
  // Zone transfers are refused.
  EXPECT_EQ(ask("cluster.local", 252)->rcode, 5);

  // Random junk over UDP, and garbage over TCP.
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    std::string junk(12 + rng() % 100, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    junk[2] = static_cast<char>(junk[2] & 0x7F);
    udp_exchange(port, junk, 20);
  }
  EXPECT_TRUE(tcp_exchange(port,
                           {std::string("\x00\x03"
                                        "abc",
                                        5)},
                           false)
                  .empty());
  EXPECT_TRUE(tcp_exchange(port, {"garbage that is not a dns message"}).size() <= 1);

  // Still serving, over both transports.
  auto a = ask("web.default.svc.cluster.local", A);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->answers.size(), 1u);
  auto over_tcp = tcp_exchange(port, {build_query("web.default.svc.cluster.local", A)});
  ASSERT_EQ(over_tcp.size(), 1u);
  EXPECT_EQ(read_answer(over_tcp[0])->answers.size(), 1u);
}

TEST_F(DnsServerTest, OtherNamesAreRefusedWithoutUpstreams) {
  start();
  auto a = ask("example.org", A);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->rcode, 5);
  EXPECT_FALSE(a->aa);
}

// A stand-in upstream resolver: answers every UDP query for anything with 192.0.2.1.
class FakeUpstream {
 public:
  FakeUpstream() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = local(0);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeUpstream() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) continue;
      std::string buf(4096, '\0');
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      ssize_t n =
          ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 12) continue;
      buf.resize(static_cast<size_t>(n));
      // The question as asked, then one A record pointing back at it.
      std::string reply = buf.substr(0, 12);
      reply[2] = static_cast<char>(0x81);
      reply[3] = static_cast<char>(0x80);
      reply[7] = 1;
      reply[11] = 0;
      size_t end = 12;
      while (end < buf.size() && buf[end] != 0) end += static_cast<uint8_t>(buf[end]) + 1;
      reply += buf.substr(12, end + 5 - 12);
      reply += std::string("\xC0\x0C\x00\x01\x00\x01\x00\x00\x00\x3C\x00\x04\xC0\x00\x02\x01", 16);
      ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(DnsServerTest, OtherNamesAreForwardedUpstream) {
  FakeUpstream upstream;
  DnsOptions o;
  o.upstreams = {"127.0.0.1:" + std::to_string(upstream.port())};
  start(o);
  EXPECT_EQ(dns_->upstreams(), o.upstreams);
  auto a = ask("example.org", A);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->rcode, 0);
  EXPECT_TRUE(a->ra);
  ASSERT_EQ(a->answers.size(), 1u);
  EXPECT_EQ(a->answers[0].data, "192.0.2.1");
}

TEST_F(DnsServerTest, UnreachableUpstreamGivesServfail) {
  // A port nothing listens on: the query times out.
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = local(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  DnsOptions o;
  o.upstreams = {"127.0.0.1:" + std::to_string(ntohs(a.sin_port))};
  o.upstream_timeout = std::chrono::milliseconds(200);
  start(o);
  auto answer = ask("example.org", A);
  ::close(fd);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->rcode, 2);
}

TEST(ResolvConf, ListsNameservers) {
  EXPECT_EQ(parse_resolv_conf("# comment\nsearch x\nnameserver 10.0.0.2\nnameserver  fd00::1\n"
                              "nameserver fe80::1%eth0\nnameserver bogus\n"),
            (std::vector<std::string>{"10.0.0.2:53", "[fd00::1]:53"}));
}

TEST(DnsServerStart, BadAddressIsRejected) {
  TestServer server;
  ASSERT_TRUE(server.ok());
  auto client = server.client();
  client::InformerFactory informers(*client);
  DnsOptions o;
  o.address = "not-an-address";
  DnsServer dns(informers, o);
  EXPECT_EQ(dns.start().code(), StatusCode::kBadRequest);
}

}  // namespace
}  // namespace skiff::dns
