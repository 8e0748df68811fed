// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include "dns/dns_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <ctime>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <utility>

#include "common/log.h"
#include "dns/message.h"

namespace skiff::dns {

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;

constexpr const char* kSliceServiceIndex = "dns-service";
constexpr const char* kPodIpIndex = "dns-pod-ip";
constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";
constexpr uint16_t kAdvertisedUdpSize = 1232;
constexpr size_t kMaxUdpAnswer = 4096;
constexpr size_t kMaxTcpMessage = 65535;

std::string meta_string(const nlohmann::json& obj, const char* field) {
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) return "";
  auto v = meta->find(field);
  return v != meta->end() && v->is_string() ? v->get<std::string>() : "";
}

// The Catalog over informer caches.
class InformerCatalog : public Catalog {
 public:
  InformerCatalog(client::Informer& services, client::Informer& slices, client::Informer* pods)
      : services_(services), slices_(slices), pods_(pods) {}

  client::ObjectPtr service(const std::string& ns, const std::string& name) const override {
    return services_.get(ns, name);
  }
  bool namespace_has_services(const std::string& ns) const override {
    return !services_.list(ns).empty();
  }
  std::vector<client::ObjectPtr> endpoint_slices(const std::string& ns,
                                                 const std::string& service) const override {
    return slices_.by_index(kSliceServiceIndex, ns + "/" + service);
  }
  bool pod_has_ip(const std::string& ns, const std::string& ip) const override {
    if (pods_ == nullptr) return false;
    for (const auto& pod : pods_->by_index(kPodIpIndex, ip)) {
      if (meta_string(*pod, "namespace") == ns) return true;
    }
    return false;
  }
  bool synced() const {
    return services_.synced() && slices_.synced() && (pods_ == nullptr || pods_->synced());
  }

 private:
  client::Informer& services_;
  client::Informer& slices_;
  client::Informer* pods_;
};

std::vector<std::string> slice_service_keys(const nlohmann::json& slice) {
  auto meta = slice.find("metadata");
  if (meta == slice.end() || !meta->is_object()) return {};
  auto labels = meta->find("labels");
  if (labels == meta->end() || !labels->is_object()) return {};
  auto svc = labels->find(kServiceNameLabel);
  if (svc == labels->end() || !svc->is_string()) return {};
  return {meta_string(slice, "namespace") + "/" + svc->get<std::string>()};
}

std::vector<std::string> pod_ips(const nlohmann::json& pod) {
  std::vector<std::string> out;
  auto status = pod.find("status");
  if (status == pod.end() || !status->is_object()) return out;
  if (auto ip = status->find("podIP"); ip != status->end() && ip->is_string()) {
    out.push_back(ip->get<std::string>());
  }
  if (auto ips = status->find("podIPs"); ips != status->end() && ips->is_array()) {
    for (const auto& entry : *ips) {
      if (!entry.is_object()) continue;
      auto ip = entry.find("ip");
      if (ip != entry.end() && ip->is_string() &&
          std::find(out.begin(), out.end(), ip->get<std::string>()) == out.end()) {
        out.push_back(ip->get<std::string>());
      }
    }
  }
  return out;
}

// "1.2.3.4", "1.2.3.4:53", "[::1]:53", "::1" -> an endpoint.
bool parse_endpoint(const std::string& text, udp::endpoint* out) {
  std::string host = text;
  uint16_t port = 53;
  error_code ec;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return false;
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return false;
      port = static_cast<uint16_t>(std::atoi(text.c_str() + close + 2));
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    size_t colon = text.find(':');
    host = text.substr(0, colon);
    port = static_cast<uint16_t>(std::atoi(text.c_str() + colon + 1));
  }
  auto addr = asio::ip::make_address(host, ec);
  if (ec || port == 0) return false;
  *out = udp::endpoint(addr, port);
  return true;
}

std::string endpoint_text(const udp::endpoint& ep) {
  std::string a = ep.address().to_string();
  if (ep.address().is_v6()) a = "[" + a + "]";
  return a + ":" + std::to_string(ep.port());
}

// What to do with one received message.
struct Handled {
  std::string reply;     // empty: no answer (dropped), unless forward
  bool forward = false;  // send the query on to the upstreams
};

}  // namespace

std::vector<std::string> parse_resolv_conf(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (!(words >> key >> value) || key != "nameserver") continue;
    // A zone index ("fe80::1%eth0") cannot be used from here.
    if (value.find('%') != std::string::npos) continue;
    udp::endpoint ep;
    if (parse_endpoint(value.find(':') != std::string::npos ? "[" + value + "]" : value, &ep)) {
      out.push_back(endpoint_text(ep));
    }
  }
  return out;
}

struct DnsServer::Impl {
  Impl(client::InformerFactory& f, DnsOptions o) : informers(f), options(std::move(o)) {
    zone.cluster_domain = options.cluster_domain;
    zone.ttl = options.ttl;
    zone.pods = options.pods;
    zone.soa_serial = static_cast<uint32_t>(std::time(nullptr));
  }

  // Declared first: destroyed last, after every socket that uses it.
  asio::io_context io;
  client::InformerFactory& informers;
  const DnsOptions options;
  ZoneOptions zone;

  std::mutex mu;
  bool started = false;  // guarded by mu
  bool stopped = false;  // guarded by mu
  std::thread thread;    // guarded by mu

  // Set by start() before the io thread runs; constant afterwards.
  std::unique_ptr<InformerCatalog> catalog;
  std::vector<udp::endpoint> upstreams;
  udp::socket udp_socket{io};
  tcp::acceptor acceptor{io};
  std::atomic<uint16_t> bound_port{0};

  // Used only on the io thread.
  size_t tcp_connections = 0;

  // --- answering ----------------------------------------------------------------------------

  Handled handle(std::string_view packet, bool over_tcp) const {
    Handled out;
    Query query;
    ParseOutcome outcome = parse_query(packet, &query);
    if (outcome == ParseOutcome::kDrop) return out;
    Response r;
    r.header.id = query.header.id;
    r.header.opcode = query.header.opcode;
    r.header.rd = query.header.rd;
    r.header.ra = !upstreams.empty();
    if (outcome == ParseOutcome::kFormatError) {
      r.header.rcode = kFormErr;
      out.reply = encode(r, kClassicUdpSize);
      return out;
    }
    r.questions = query.questions;
    size_t limit = kClassicUdpSize;
    if (query.edns.present) {
      r.edns.present = true;
      r.edns.udp_size = kAdvertisedUdpSize;
      limit = std::clamp<size_t>(query.edns.udp_size, kClassicUdpSize, kMaxUdpAnswer);
    }
    if (over_tcp) limit = kMaxTcpMessage;
    if (query.header.opcode != 0) {
      r.header.rcode = kNotImp;
      out.reply = encode(r, limit);
      return out;
    }
    if (query.questions.size() != 1) {
      r.header.rcode = kFormErr;
      out.reply = encode(r, limit);
      return out;
    }
    if (query.edns.present && query.edns.version != 0) {
      r.edns.extended_rcode = static_cast<uint8_t>(kBadVers >> 4);
      r.header.rcode = kBadVers & 0xF;
      out.reply = encode(r, limit);
      return out;
    }
    const Question& q = query.questions[0];
    if ((q.klass != kClassIN && q.klass != kClassANY) || q.type == kTypeAXFR ||
        q.type == kTypeIXFR) {
      r.header.rcode = kRefused;
      out.reply = encode(r, limit);
      return out;
    }
    Resolution res = resolve(*catalog, q, zone);
    if (!res.in_zone) {
      if (!upstreams.empty()) {
        out.forward = true;
        return out;
      }
      r.header.rcode = kRefused;
      out.reply = encode(r, limit);
      return out;
    }
    if (!catalog->synced()) {
      r.header.rcode = kServFail;
      out.reply = encode(r, limit);
      return out;
    }
    r.header.aa = true;
    r.header.rcode = res.rcode;
    r.answers = std::move(res.answers);
    r.authority = std::move(res.authority);
    r.additional = std::move(res.additional);
    out.reply = encode(r, limit);
    return out;
  }

  // SERVFAIL for a query the upstreams did not answer.
  static std::string server_failure(std::string_view packet) {
    Query query;
    if (parse_query(packet, &query) == ParseOutcome::kDrop) return "";
    Response r;
    r.header.id = query.header.id;
    r.header.opcode = query.header.opcode;
    r.header.rd = query.header.rd;
    r.header.ra = true;
    r.header.rcode = kServFail;
    r.questions = query.questions;
    return encode(r, kClassicUdpSize);
  }

  // --- forwarding ---------------------------------------------------------------------------

  // One exchange with one upstream over UDP; empty on timeout or error.
  asio::awaitable<std::string> ask_udp(std::string query, udp::endpoint upstream) {
    auto socket = std::make_shared<udp::socket>(io);
    error_code ec;
    socket->open(upstream.protocol(), ec);
    if (ec) co_return std::string();
    asio::steady_timer timer(io);
    timer.expires_after(options.upstream_timeout);
    timer.async_wait([socket](error_code wait_ec) {
      if (!wait_ec) {
        error_code ignored;
        socket->close(ignored);
      }
    });
    co_await socket->async_send_to(asio::buffer(query), upstream,
                                   asio::redirect_error(asio::use_awaitable, ec));
    std::string reply;
    std::vector<char> buf(kMaxTcpMessage);
    while (!ec) {
      udp::endpoint from;
      size_t n = co_await socket->async_receive_from(asio::buffer(buf), from,
                                                     asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      // Only the upstream's answer to this very query counts.
      if (from == upstream && n >= kHeaderSize && buf[0] == query[0] && buf[1] == query[1]) {
        reply.assign(buf.data(), n);
        break;
      }
    }
    timer.cancel();
    co_return reply;
  }

  // One exchange with one upstream over TCP; empty on timeout or error.
  asio::awaitable<std::string> ask_tcp(std::string query, udp::endpoint upstream) {
    auto socket = std::make_shared<tcp::socket>(io);
    asio::steady_timer timer(io);
    timer.expires_after(options.upstream_timeout);
    timer.async_wait([socket](error_code wait_ec) {
      if (!wait_ec) {
        error_code ignored;
        socket->close(ignored);
      }
    });
    error_code ec;
    tcp::endpoint target(upstream.address(), upstream.port());
    co_await socket->async_connect(target, asio::redirect_error(asio::use_awaitable, ec));
    std::string reply;
    if (!ec) {
      std::string framed;
      framed.push_back(static_cast<char>(query.size() >> 8));
      framed.push_back(static_cast<char>(query.size() & 0xFF));
      framed += query;
      co_await asio::async_write(*socket, asio::buffer(framed),
                                 asio::redirect_error(asio::use_awaitable, ec));
    }
    unsigned char length[2] = {0, 0};
    if (!ec) {
      co_await asio::async_read(*socket, asio::buffer(length),
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!ec) {
      reply.resize((static_cast<size_t>(length[0]) << 8) | length[1]);
      co_await asio::async_read(*socket, asio::buffer(reply),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) reply.clear();
    }
    timer.cancel();
    error_code ignored;
    socket->close(ignored);
    co_return reply;
  }

  // Tries each upstream in turn; SERVFAIL when none answers.
  asio::awaitable<std::string> forward(std::string query, bool over_tcp) {
    for (const auto& upstream : upstreams) {
      std::string reply;
      if (over_tcp) {
        reply = co_await ask_tcp(query, upstream);
      } else {
        reply = co_await ask_udp(query, upstream);
      }
      if (!reply.empty()) co_return reply;
    }
    co_return server_failure(query);
  }

  asio::awaitable<void> forward_udp(std::string query, udp::endpoint client) {
    std::string reply = co_await forward(query, false);
    if (reply.empty()) co_return;
    error_code ec;
    co_await udp_socket.async_send_to(asio::buffer(reply), client,
                                      asio::redirect_error(asio::use_awaitable, ec));
  }

  // --- serving ------------------------------------------------------------------------------

  asio::awaitable<void> udp_loop() {
    std::vector<char> buf(kMaxTcpMessage);
    while (true) {
      udp::endpoint client;
      error_code ec;
      size_t n = co_await udp_socket.async_receive_from(
          asio::buffer(buf), client, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !udp_socket.is_open()) co_return;
        continue;  // e.g. an ICMP error from an earlier answer
      }
      std::string_view packet(buf.data(), n);
      Handled h = handle(packet, false);
      if (h.forward) {
        asio::co_spawn(io, forward_udp(std::string(packet), client), asio::detached);
        continue;
      }
      if (h.reply.empty()) continue;
      co_await udp_socket.async_send_to(asio::buffer(h.reply), client,
                                        asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<void> tcp_session(std::shared_ptr<tcp::socket> socket) {
    ++tcp_connections;
    asio::steady_timer idle(io);
    while (true) {
      // An idle or stalled client is cut off, so it cannot hold a connection slot forever.
      idle.expires_after(options.tcp_idle_timeout);
      idle.async_wait([socket](error_code wait_ec) {
        if (!wait_ec) {
          error_code ignored;
          socket->close(ignored);
        }
      });
      error_code ec;
      unsigned char length[2] = {0, 0};
      co_await asio::async_read(*socket, asio::buffer(length),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      std::string message((static_cast<size_t>(length[0]) << 8) | length[1], '\0');
      co_await asio::async_read(*socket, asio::buffer(message),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      Handled h = handle(message, true);
      std::string reply = std::move(h.reply);
      if (h.forward) reply = co_await forward(message, true);
      if (reply.empty()) break;  // not a query: nothing sensible to say on this stream
      std::string framed;
      framed.push_back(static_cast<char>(reply.size() >> 8));
      framed.push_back(static_cast<char>(reply.size() & 0xFF));
      framed += reply;
      co_await asio::async_write(*socket, asio::buffer(framed),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    idle.cancel();
    error_code ignored;
    socket->close(ignored);
    --tcp_connections;
  }

  asio::awaitable<void> accept_loop() {
    while (true) {
      error_code ec;
      tcp::socket socket(io);
      co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        continue;
      }
      if (tcp_connections >= options.max_tcp_connections) {
        error_code ignored;
        socket.close(ignored);
        continue;
      }
      asio::co_spawn(io, tcp_session(std::make_shared<tcp::socket>(std::move(socket))),
                     asio::detached);
    }
  }

  Status bind(const asio::ip::address& address) {
    // With port 0 the UDP port is picked first and TCP must get the same number; another
    // process may hold it on TCP, so a few picks are tried.
    for (int attempt = 0; attempt < 20; ++attempt) {
      error_code ec;
      udp_socket.open(address.is_v6() ? udp::v6() : udp::v4(), ec);
      if (!ec) udp_socket.bind(udp::endpoint(address, options.port), ec);
      if (ec) {
        error_code ignored;
        udp_socket.close(ignored);
        return Status::Unavailable("dns: cannot bind udp " + options.address + ":" +
                                   std::to_string(options.port) + ": " + ec.message());
      }
      uint16_t port = udp_socket.local_endpoint(ec).port();
      acceptor.open(address.is_v6() ? tcp::v6() : tcp::v4(), ec);
      if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) acceptor.bind(tcp::endpoint(address, port), ec);
      if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
      if (!ec) {
        bound_port = port;
        return Status::Ok();
      }
      error_code ignored;
      acceptor.close(ignored);
      udp_socket.close(ignored);
      if (options.port != 0) {
        return Status::Unavailable("dns: cannot bind tcp " + options.address + ":" +
                                   std::to_string(options.port) + ": " + ec.message());
      }
    }
    return Status::Unavailable("dns: no port free for both udp and tcp on " + options.address);
  }

  void load_upstreams(const udp::endpoint& self) {
    std::vector<std::string> names = options.upstreams;
    if (names.empty() && !options.resolv_conf.empty()) {
      std::ifstream in(options.resolv_conf);
      std::stringstream text;
      text << in.rdbuf();
      names = parse_resolv_conf(text.str());
    }
    for (const auto& n : names) {
      udp::endpoint ep;
      if (!parse_endpoint(n, &ep)) {
        SKIFF_LOG(Warn) << "dns: ignoring upstream " << n << ": not an address";
        continue;
      }
      // Forwarding to ourselves would loop.
      if (ep == self || (ep.port() == self.port() && self.address().is_unspecified())) continue;
      upstreams.push_back(ep);
    }
  }
};

DnsServer::DnsServer(client::InformerFactory& informers, DnsOptions options)
    : impl_(std::make_unique<Impl>(informers, std::move(options))) {}

DnsServer::~DnsServer() { stop(); }

Status DnsServer::start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->stopped) return Status::Unavailable("dns: server stopped");
  if (impl_->started) return Status::Ok();
  error_code ec;
  auto address = asio::ip::make_address(impl_->options.address, ec);
  if (ec)
    return Status::BadRequest("dns: listen address " + impl_->options.address + ": " +
                              ec.message());
  Status s = impl_->bind(address);
  if (!s.ok()) return s;
  impl_->load_upstreams(udp::endpoint(address, impl_->bound_port));

  client::Informer& services = impl_->informers.informer(client::resources::kServices);
  client::Informer& slices = impl_->informers.informer(client::resources::kEndpointSlices);
  slices.add_index(kSliceServiceIndex, slice_service_keys);
  client::Informer* pods = nullptr;
  if (impl_->options.pods == PodRecords::kVerified) {
    pods = &impl_->informers.informer(client::resources::kPods);
    pods->add_index(kPodIpIndex, pod_ips);
  }
  impl_->catalog = std::make_unique<InformerCatalog>(services, slices, pods);
  services.start();
  slices.start();
  if (pods != nullptr) pods->start();

  Impl* impl = impl_.get();
  asio::co_spawn(impl->io, impl->udp_loop(), asio::detached);
  asio::co_spawn(impl->io, impl->accept_loop(), asio::detached);
  impl_->thread = std::thread([impl] { impl->io.run(); });
  impl_->started = true;
  SKIFF_LOG(Info) << "dns: serving " << impl_->options.cluster_domain << " on "
                  << impl_->options.address << ":" << impl_->bound_port << " (udp, tcp), "
                  << impl_->upstreams.size() << " upstream(s)";
  return Status::Ok();
}

void DnsServer::stop() {
  std::thread thread;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
    thread = std::move(impl_->thread);
  }
  impl_->io.stop();
  if (thread.joinable()) thread.join();
  error_code ignored;
  impl_->udp_socket.close(ignored);
  impl_->acceptor.close(ignored);
}

uint16_t DnsServer::port() const { return impl_->bound_port; }

std::vector<std::string> DnsServer::upstreams() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& ep : impl_->upstreams) out.push_back(endpoint_text(ep));
  return out;
}

}  // namespace skiff::dns
