// HTTP plumbing shared by the API server's handlers (private to src/apiserver).
//
// One connection is one coroutine on its own strand; a handler answers an Exchange either
// with a complete Response or as a chunked stream (watches, followed logs).
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace skiff::client {
enum class WatchEventType;
}  // namespace skiff::client

namespace skiff::apiserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Stream = beast::ssl_stream<beast::tcp_stream>;
using HttpRequest = http::request<http::string_body>;

// Largest request body accepted; larger ones get 413 before the body is read.
inline constexpr size_t kMaxBodyBytes = 3 * 1024 * 1024;
// How much of a refused body is read and dropped before the connection closes.
inline constexpr size_t kMaxDrainBytes = 64 * 1024 * 1024;

// Who sent a request, as established by authentication.
struct User {
  std::string name;  // "system:admin", "system:serviceaccount:ns:sa", "system:node:n1"
  std::vector<std::string> groups;
  std::string uid;
  bool authenticated() const { return !name.empty(); }
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // The body as a document, when the handler has it without parsing: an in-process client
  // takes it instead of parsing body (which must hold the same object). Optional.
  std::shared_ptr<const nlohmann::json> object;
};

// Query parameters, percent-decoded; repeated keys keep every value in order.
class Query {
 public:
  Query() = default;
  explicit Query(std::string_view raw);
  // The first value of key, or fallback.
  std::string get(std::string_view key, std::string_view fallback = {}) const;
  bool has(std::string_view key) const;
  std::vector<std::string> all(std::string_view key) const;
  // "true"/"1" → true.
  bool flag(std::string_view key) const;

 private:
  std::multimap<std::string, std::string, std::less<>> values_;
};

std::string percent_decode(std::string_view s);

// One request and the means to answer it. Handlers call reply() exactly once, or
// begin_stream() followed by write_chunk()... and end_stream(). Requests arrive over the
// network (NetworkExchange) or from components inside the server (LocalExchange, through
// the in-process client transport); handlers cannot tell them apart.
class Exchange {
 public:
  Exchange(HttpRequest& req, User user);
  virtual ~Exchange() = default;

  HttpRequest& request() { return req_; }
  const User& user() const { return user_; }
  const std::string& path() const { return path_; }
  const Query& query() const { return query_; }
  std::string header(std::string_view name) const;

  virtual asio::awaitable<void> reply(Response r) = 0;
  // Starts a chunked response; false if the client is gone.
  virtual asio::awaitable<bool> begin_stream(unsigned status, std::string content_type) = 0;
  // Writes and flushes one chunk; false if the client is gone.
  virtual asio::awaitable<bool> write_chunk(std::string_view data) = 0;
  virtual asio::awaitable<void> end_stream() = 0;
  // Whether the client takes watch events as shared objects (write_event) rather than bytes:
  // an in-process client, which would only parse the bytes again.
  virtual bool takes_events() const { return false; }
  // Passes one watch event of a stream begun with begin_stream(); false if the client is gone.
  // REQUIRES: takes_events(). The object is shared and never changed.
  virtual bool write_event(client::WatchEventType type,
                           std::shared_ptr<const nlohmann::json> object) {
    (void)type;
    (void)object;
    return false;
  }

  bool responded() const { return responded_; }
  bool keep_alive() const { return keep_alive_; }

 protected:
  HttpRequest& req_;
  User user_;
  std::string path_;
  Query query_;
  bool responded_ = false;
  bool keep_alive_ = true;
};

// An exchange on a client's TLS connection.
class NetworkExchange final : public Exchange {
 public:
  NetworkExchange(Stream& stream, HttpRequest& req, User user);
  asio::awaitable<void> reply(Response r) override;
  asio::awaitable<bool> begin_stream(unsigned status, std::string content_type) override;
  asio::awaitable<bool> write_chunk(std::string_view data) override;
  asio::awaitable<void> end_stream() override;
  Stream& stream() { return stream_; }

 private:
  Stream& stream_;
};

using Handler = std::function<asio::awaitable<void>(Exchange&)>;
// Identifies the user of a connection from its verified client certificate (if any) and the
// request's Authorization header; returns an unauthenticated User when neither is valid.
using Authenticator = std::function<User(Stream& stream, const HttpRequest& req)>;

// An HTTPS server: accepts connections, handshakes TLS with `ctx`, reads requests (bodies
// bounded by kMaxBodyBytes) and passes each to `handler`.
// Threading: shared-nothing per core. Each io_context in `workers` is run by exactly one
// thread; a connection lives on one of them (round-robin), so its coroutine never needs a
// strand. The acceptor lives on workers[0].
class HttpServer {
 public:
  HttpServer(std::vector<asio::io_context*> workers, asio::ssl::context& ctx, Handler handler,
             Authenticator authenticator);
  // Binds and listens; returns the bound port (useful with port 0).
  unsigned listen(const std::string& address, unsigned port, boost::system::error_code& ec);
  void stop();

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(tcp::socket socket);

  std::vector<asio::io_context*> workers_;
  size_t next_worker_ = 0;  // used by accept_loop only
  asio::ssl::context& ctx_;
  Handler handler_;
  Authenticator authenticator_;
  tcp::acceptor acceptor_;
};

}  // namespace skiff::apiserver
