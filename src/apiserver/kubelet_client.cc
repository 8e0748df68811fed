#include "apiserver/kubelet_client.h"

#include <nlohmann/json.hpp>

#include "apiserver/pki/pki.h"
#include "common/strings.h"

namespace skiff::apiserver {

using nlohmann::json;

namespace {

constexpr auto kDialTimeout = std::chrono::seconds(10);
constexpr size_t kMaxGetBody = 64 << 20;

}  // namespace

std::string KubeletEndpoint::address() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

Status kubelet_error(unsigned http_status, const std::string& body) {
  std::string message(trim_space(body));
  if (message.empty()) message = "the node's kubelet answered " + std::to_string(http_status);
  switch (http_status) {
    case 400:
      return Status::BadRequest(message);
    case 404:
      return Status::NotFound(message);
    case 409:
      return Status::Conflict(message);
    case 503:
      return Status::Unavailable(message);
    default:
      return Status::Internal(message);
  }
}

KubeletClient::KubeletClient(ServerContext& ctx) : ctx_(ctx) {
  ssl_.set_verify_mode(asio::ssl::verify_none);
  auto token = pki::parse_join_token(ctx.pki.join_token);
  authorization_ = "Bearer " + (token.ok() ? token->secret : std::string());
}

KubeletClient::~KubeletClient() = default;

Result<KubeletEndpoint> KubeletClient::endpoint(const std::string& node) const {
  ObjectPtr o = ctx_.cache->get("/registry/core/nodes/" + node);
  if (!o) return Status::NotFound("nodes \"" + node + "\" not found");
  json n = json::parse(*o->json, nullptr, false);
  KubeletEndpoint ep;
  ep.node = node;
  const json status = n.is_object() ? n.value("status", json::object()) : json::object();
  const json addresses = status.value("addresses", json::array());
  for (const char* type : {"InternalIP", "ExternalIP", "Hostname"}) {
    if (!ep.host.empty()) break;
    if (!addresses.is_array()) break;
    for (const auto& a : addresses) {
      if (a.is_object() && a.value("type", "") == type && !a.value("address", "").empty()) {
        ep.host = a.value("address", "");
        break;
      }
    }
  }
  if (ep.host.empty()) {
    return Status::Unavailable("node \"" + node + "\" reports no address for its kubelet");
  }
  if (status.contains("daemonEndpoints") && status["daemonEndpoints"].is_object()) {
    const json& de = status["daemonEndpoints"];
    if (de.contains("kubeletEndpoint") && de["kubeletEndpoint"].is_object()) {
      int port = de["kubeletEndpoint"].value("Port", 0);
      if (port > 0 && port < 65536) ep.port = static_cast<unsigned>(port);
    }
  }
  return ep;
}

asio::awaitable<Result<std::unique_ptr<KubeletConnection>>> KubeletClient::connect(
    std::string node) {
  auto ep = endpoint(node);
  if (!ep.ok()) co_return ep.status();
  auto executor = co_await asio::this_coro::executor;
  auto conn = std::make_unique<KubeletConnection>(executor, ssl_);
  conn->endpoint = *ep;
  const std::string where = "dial tcp " + ep->address();
  boost::system::error_code ec;
  tcp::resolver resolver(executor);
  const std::string service = std::to_string(ep->port);
  auto results = co_await resolver.async_resolve(ep->host, service,
                                                 asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Status::Unavailable(where + ": " + ec.message());
  auto& tcp_stream = beast::get_lowest_layer(conn->stream);
  tcp_stream.expires_after(kDialTimeout);
  co_await tcp_stream.async_connect(results, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Status::Unavailable(where + ": " + ec.message());
  tcp_stream.socket().set_option(tcp::no_delay(true), ec);
  tcp_stream.expires_after(kDialTimeout);
  co_await conn->stream.async_handshake(asio::ssl::stream_base::client,
                                        asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
    co_return Status::Unavailable("TLS handshake with " + ep->address() + ": " + ec.message());
  tcp_stream.expires_never();
  co_return std::move(conn);
}

asio::awaitable<Result<std::string>> KubeletClient::get(std::string node, std::string path) {
  auto conn = co_await connect(node);
  if (!conn.ok()) co_return conn.status();
  KubeletConnection& c = **conn;
  http::request<http::empty_body> req{http::verb::get, path, 11};
  req.set(http::field::host, c.endpoint.address());
  req.set(http::field::authorization, authorization_);
  req.set(http::field::user_agent, "skiff-apiserver");
  req.keep_alive(false);
  boost::system::error_code ec;
  beast::get_lowest_layer(c.stream).expires_after(std::chrono::seconds(60));
  co_await http::async_write(c.stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Status::Unavailable("sending to the kubelet of " + node + ": " + ec.message());
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxGetBody);
  co_await http::async_read(c.stream, c.buffer, parser,
                            asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return Status::Unavailable("reading from the kubelet of " + node + ": " + ec.message());
  }
  auto res = parser.release();
  beast::get_lowest_layer(c.stream).socket().close(ec);
  if (res.result_int() != 200) co_return kubelet_error(res.result_int(), res.body());
  co_return std::move(res.body());
}

}  // namespace skiff::apiserver
