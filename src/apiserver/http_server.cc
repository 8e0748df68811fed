#include <chrono>
#include <vector>

#include "apiserver/http.h"
#include "common/status.h"

namespace skiff::apiserver {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr auto kHandshakeTimeout = std::chrono::seconds(30);
constexpr auto kIdleTimeout = std::chrono::minutes(5);

std::string status_body(StatusCode code, const std::string& message) {
  // Built by hand: this file stays free of the JSON library. message is escaped minimally.
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    escaped.push_back(c);
  }
  return std::string("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},") +
         "\"status\":\"Failure\",\"message\":\"" + escaped + "\",\"reason\":\"" + reason(code) +
         "\",\"code\":" + std::to_string(http_code(code)) + "}";
}

}  // namespace

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Query::Query(std::string_view raw) {
  while (!raw.empty()) {
    size_t amp = raw.find('&');
    std::string_view part = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string key = percent_decode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : percent_decode(part.substr(eq + 1));
    values_.emplace(std::move(key), std::move(value));
  }
}

std::string Query::get(std::string_view key, std::string_view fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? std::string(fallback) : it->second;
}

bool Query::has(std::string_view key) const { return values_.find(key) != values_.end(); }

std::vector<std::string> Query::all(std::string_view key) const {
  std::vector<std::string> out;
  auto [b, e] = values_.equal_range(key);
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

bool Query::flag(std::string_view key) const {
  std::string v = get(key);
  return v == "true" || v == "1" || v == "True";
}

Exchange::Exchange(HttpRequest& req, User user) : req_(req), user_(std::move(user)) {
  std::string_view target(req.target().data(), req.target().size());
  size_t q = target.find('?');
  path_ = percent_decode(target.substr(0, q));
  if (q != std::string_view::npos) query_ = Query(target.substr(q + 1));
  keep_alive_ = req.keep_alive();
}

std::string Exchange::header(std::string_view name) const {
  auto it = req_.find(beast::string_view(name.data(), name.size()));
  if (it == req_.end()) return {};
  return std::string(it->value());
}

NetworkExchange::NetworkExchange(Stream& stream, HttpRequest& req, User user)
    : Exchange(req, std::move(user)), stream_(stream) {}

asio::awaitable<void> NetworkExchange::reply(Response r) {
  responded_ = true;
  http::response<http::string_body> res{static_cast<http::status>(r.status), req_.version()};
  res.set(http::field::content_type, r.content_type);
  res.set(http::field::cache_control, "no-cache, private");
  for (auto& [k, v] : r.headers) res.set(k, v);
  res.keep_alive(keep_alive_);
  res.body() = std::move(r.body);
  res.prepare_payload();
  boost::system::error_code ec;
  co_await http::async_write(stream_, res, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) keep_alive_ = false;
}

asio::awaitable<bool> NetworkExchange::begin_stream(unsigned status, std::string content_type) {
  responded_ = true;
  http::response<http::empty_body> res{static_cast<http::status>(status), req_.version()};
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-cache, private");
  res.chunked(true);
  res.keep_alive(keep_alive_);
  http::response_serializer<http::empty_body> sr{res};
  boost::system::error_code ec;
  // Streams have no idle limit; the handler decides when they end.
  beast::get_lowest_layer(stream_).expires_never();
  co_await http::async_write_header(stream_, sr, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    keep_alive_ = false;
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> NetworkExchange::write_chunk(std::string_view data) {
  if (data.empty()) co_return true;  // an empty chunk would end the stream
  boost::system::error_code ec;
  co_await asio::async_write(stream_, http::make_chunk(asio::buffer(data.data(), data.size())),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    keep_alive_ = false;
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> NetworkExchange::end_stream() {
  boost::system::error_code ec;
  co_await asio::async_write(stream_, http::make_chunk_last(),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) keep_alive_ = false;
}

HttpServer::HttpServer(std::vector<asio::io_context*> workers, asio::ssl::context& ctx,
                       Handler handler, Authenticator authenticator)
    : workers_(std::move(workers)),
      ctx_(ctx),
      handler_(std::move(handler)),
      authenticator_(std::move(authenticator)),
      acceptor_(*workers_.front()) {}

unsigned HttpServer::listen(const std::string& address, unsigned port,
                            boost::system::error_code& ec) {
  auto addr = asio::ip::make_address(address, ec);
  if (ec) return 0;
  tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  acceptor_.open(ep.protocol(), ec);
  if (ec) return 0;
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  acceptor_.bind(ep, ec);
  if (ec) return 0;
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return 0;
  unsigned bound = acceptor_.local_endpoint().port();
  asio::co_spawn(*workers_.front(), accept_loop(), asio::detached);
  return bound;
}

void HttpServer::stop() {
  asio::post(*workers_.front(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
}

asio::awaitable<void> HttpServer::accept_loop() {
  for (;;) {
    boost::system::error_code ec;
    asio::io_context& worker = *workers_[next_worker_++ % workers_.size()];
    tcp::socket socket =
        co_await acceptor_.async_accept(worker, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      continue;  // e.g. EMFILE; keep serving the connections we have
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(worker, session(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> HttpServer::session(tcp::socket socket) {
  Stream stream(std::move(socket), ctx_);
  boost::system::error_code ec;
  beast::get_lowest_layer(stream).expires_after(kHandshakeTimeout);
  co_await stream.async_handshake(asio::ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    parser.header_limit(64 * 1024);
    beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
    co_await http::async_read_header(stream, buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
    // A Content-Length over the limit fails the header read itself (body_limit).
    bool header_too_large = ec == http::error::body_limit;
    if (ec && !header_too_large) break;
    auto too_large = [&]() -> asio::awaitable<void> {
      http::response<http::string_body> res{http::status::payload_too_large, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = status_body(StatusCode::kTooLarge, "the request body is larger than 3 MiB");
      res.keep_alive(false);
      res.prepare_payload();
      boost::system::error_code wec;
      co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, wec));
      // Lingering close: read and drop what the client is still sending for a moment, since
      // closing a socket with unread data resets the connection and the client would lose
      // the response it has not read yet.
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
      std::vector<char> scratch(64 * 1024);
      size_t drained = 0;
      while (!wec && drained < kMaxDrainBytes) {
        size_t n = co_await stream.async_read_some(asio::buffer(scratch),
                                                   asio::redirect_error(asio::use_awaitable, wec));
        drained += n;
      }
    };
    auto length = parser.content_length();
    if (header_too_large || (length && *length > kMaxBodyBytes)) {
      co_await too_large();  // refused before the body is read
      break;
    }
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::body_limit) {
      co_await too_large();
      break;
    }
    if (ec) break;
    HttpRequest req = parser.release();
    User user = authenticator_(stream, req);
    NetworkExchange ex(stream, req, std::move(user));
    std::string failure;
    try {
      co_await handler_(ex);
    } catch (const std::exception& e) {
      // A handler bug must not take the server down; the client gets a 500.
      failure = e.what();
      if (failure.empty()) failure = "unknown";
    }
    if (!failure.empty()) {
      if (ex.responded()) break;
      Response r;
      r.status = 500;
      r.body = status_body(StatusCode::kInternal, "internal error: " + failure);
      co_await ex.reply(std::move(r));
    }
    if (!ex.keep_alive()) break;
  }
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
  co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace skiff::apiserver
