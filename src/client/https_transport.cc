#include "client/https_transport.h"

// Boost 1.74's headers use std::exchange without including <utility>.
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "common/base64.h"
#include "common/json.h"

namespace skiff::client {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using nlohmann::json;

constexpr uint64_t kMaxReplyBytes = uint64_t{1} << 30;

struct Endpoint {
  std::string host;  // without brackets
  std::string port;
  std::string host_header;  // as the Host header and the URL write it
  std::string base_path;    // "" or "/prefix" (no trailing slash)
  bool host_is_ip = false;
};

Result<Endpoint> parse_server_url(const std::string& url) {
  constexpr std::string_view kScheme = "https://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) {
    return Status::Invalid("server URL must start with https://: \"" + url + "\"");
  }
  std::string rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  Endpoint e;
  if (slash != std::string::npos) {
    e.base_path = rest.substr(slash);
    while (!e.base_path.empty() && e.base_path.back() == '/') e.base_path.pop_back();
  }
  if (authority.find('@') != std::string::npos) {
    return Status::Invalid("server URL must not carry credentials: \"" + url + "\"");
  }
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return Status::Invalid("bad IPv6 host in \"" + url + "\"");
    e.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status::Invalid("bad server URL \"" + url + "\"");
      port_text = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    e.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (e.host.empty()) return Status::Invalid("server URL has no host: \"" + url + "\"");
  if (port_text.empty()) port_text = "443";
  if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port_text) == 0 || std::stoi(port_text) > 65535) {
    return Status::Invalid("bad port in server URL \"" + url + "\"");
  }
  e.port = port_text;
  error_code ec;
  asio::ip::make_address(e.host, ec);
  e.host_is_ip = !ec;
  bool v6 = e.host.find(':') != std::string::npos;
  e.host_header = (v6 ? "[" + e.host + "]" : e.host);
  if (e.port != "443") e.host_header += ":" + e.port;
  return e;
}

Status ssl_error(const std::string& what, const error_code& ec) {
  return Status::Invalid(what + ": " + ec.message());
}

// One keep-alive connection. Its io_context is run only by the thread using the connection,
// so operations need no strand; beast::tcp_stream's expiry turns a timeout into an error.
struct Connection {
  explicit Connection(ssl::context& ctx) : stream(ioc, ctx) {}
  asio::io_context ioc;
  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  bool reused = false;
  // Set by abort(), on this connection's io_context: every later step fails at once.
  bool aborted = false;

  // Runs the io_context until the operation started before it completes.
  void run() {
    ioc.restart();
    ioc.run();
  }
  void abort() {
    aborted = true;
    close();
  }
  void close() {
    error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream).close();
  }
};

}  // namespace

// Constant after construction; shared with stream threads, which may outlive the transport.
struct HttpsShared {
  HttpsOptions options;
  Endpoint endpoint;
  std::unique_ptr<ssl::context> ctx;
};

struct HttpsTransport::Impl {
  std::shared_ptr<const HttpsShared> shared;
  mutable std::mutex mu;
  std::vector<std::unique_ptr<Connection>> idle;  // guarded by mu
};

namespace {

// Connects and handshakes, verifying the server's certificate and host name.
Status connect(const HttpsShared& sh, Connection& c) {
  const Endpoint& e = sh.endpoint;
  error_code ec;
  // An address needs no lookup. A name is looked up on this thread: asio's asynchronous
  // lookup keeps a thread of its own for as long as the io_context lives, one per
  // connection, each with its stack.
  std::vector<tcp::endpoint> addrs;
  if (e.host_is_ip) {
    addrs.emplace_back(asio::ip::make_address(e.host, ec),
                       static_cast<unsigned short>(std::stoi(e.port)));
  } else {
    tcp::resolver resolver(c.ioc);
    for (const auto& entry : resolver.resolve(e.host, e.port, ec))
      addrs.push_back(entry.endpoint());
  }
  if (c.aborted) return Status::Unavailable("stopped");
  if (ec || addrs.empty()) {
    return Status::Unavailable("cannot resolve " + e.host + ": " +
                               (ec ? ec.message() : std::string("no addresses")));
  }
  auto& tcp_stream = beast::get_lowest_layer(c.stream);
  tcp_stream.expires_after(sh.options.connect_timeout);
  tcp_stream.async_connect(addrs, [&](const error_code& err, const tcp::endpoint&) { ec = err; });
  c.run();
  if (c.aborted) return Status::Unavailable("stopped");
  if (ec) {
    return Status::Unavailable("cannot connect to " + e.host_header + ": " + ec.message());
  }
  tcp_stream.socket().set_option(tcp::no_delay(true), ec);
  SSL* ssl = c.stream.native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (e.host_is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, e.host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, e.host.c_str());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, e.host.c_str(), e.host.size());
  }
  c.stream.async_handshake(ssl::stream_base::client, [&](const error_code& err) { ec = err; });
  c.run();
  if (c.aborted) return Status::Unavailable("stopped");
  if (ec) {
    std::string why = ec.message();
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) why = X509_verify_cert_error_string(verify);
    return Status::Unavailable("TLS handshake with " + e.host_header + " failed: " + why);
  }
  tcp_stream.expires_never();
  return Status::Ok();
}

Result<http::request<http::string_body>> make_request(const HttpsShared& sh, const Request& r) {
  http::verb verb = http::string_to_verb(r.method);
  if (verb == http::verb::unknown) return Status::BadRequest("unknown method " + r.method);
  std::string target = sh.endpoint.base_path + r.path;
  if (!r.query.empty()) target += "?" + r.query;
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, sh.endpoint.host_header);
  req.set(http::field::user_agent, r.user_agent.empty() ? sh.options.user_agent : r.user_agent);
  req.set(http::field::accept, r.accept);
  if (!r.content_type.empty()) req.set(http::field::content_type, r.content_type);
  if (!sh.options.bearer_token.empty()) {
    req.set(http::field::authorization, "Bearer " + sh.options.bearer_token);
  }
  req.keep_alive(true);
  req.body() = r.body;
  req.prepare_payload();
  return req;
}

// What one exchange on a connection came to.
struct Attempt {
  Result<Reply> reply = Status::Unavailable("no reply");
  bool keep = false;          // the connection may serve another request
  bool nothing_read = false;  // failed before any byte of a reply: safe to send again
};

Attempt exchange(const HttpsShared& sh, Connection& c,
                 const http::request<http::string_body>& req) {
  Attempt a;
  auto& tcp_stream = beast::get_lowest_layer(c.stream);
  tcp_stream.expires_after(sh.options.request_timeout);
  error_code ec;
  http::async_write(c.stream, req, [&](const error_code& err, size_t) { ec = err; });
  c.run();
  if (ec) {
    a.nothing_read = true;
    a.reply = Status::Unavailable("sending to " + sh.endpoint.host_header + ": " + ec.message());
    return a;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxReplyBytes);
  http::async_read(c.stream, c.buffer, parser, [&](const error_code& err, size_t) { ec = err; });
  c.run();
  if (ec) {
    a.nothing_read = !parser.got_some();
    std::string why = ec == beast::error::timeout ? "timed out" : ec.message();
    a.reply = Status::Unavailable("reading the reply of " + sh.endpoint.host_header + ": " + why);
    return a;
  }
  tcp_stream.expires_never();
  auto res = parser.release();
  Reply reply;
  reply.status = res.result_int();
  reply.content_type = std::string(res[http::field::content_type]);
  reply.body = std::move(res.body());
  a.keep = res.keep_alive();
  a.reply = std::move(reply);
  return a;
}

// A watch's connection and callbacks, shared by its thread and its Watch handle.
struct StreamState {
  StreamState(std::shared_ptr<const HttpsShared> s) : shared(std::move(s)), conn(*shared->ctx) {}

  std::shared_ptr<const HttpsShared> shared;
  Connection conn;
  // Recursive: a consumer may stop its watch from inside on_data.
  std::recursive_mutex mu;
  bool stopped = false;                           // guarded by mu; once set no callback runs
  std::function<void(std::string_view)> on_data;  // guarded by mu
  std::function<void(const Status&)> on_end;      // guarded by mu

  bool is_stopped() {
    std::lock_guard<std::recursive_mutex> lock(mu);
    return stopped;
  }
  bool deliver(std::string_view data) {
    std::lock_guard<std::recursive_mutex> lock(mu);
    if (stopped) return false;
    // A copy: a consumer that stops the watch from on_data clears on_data while it runs.
    auto fn = on_data;
    if (fn) fn(data);
    return !stopped;
  }
  void finish(const Status& s) {
    std::function<void(const Status&)> end;
    {
      std::lock_guard<std::recursive_mutex> lock(mu);
      if (stopped) return;
      stopped = true;
      end = std::move(on_end);
      on_data = nullptr;
    }
    if (end) end(s);
  }
};

// Body of a stream's thread: connect, send, then pass the body on as it arrives.
Status run_stream(StreamState& st, const http::request<http::string_body>& req) {
  const HttpsShared& sh = *st.shared;
  Connection& c = st.conn;
  Status s = connect(sh, c);
  if (!s.ok() || st.is_stopped()) return s;
  // stop() posts abort() to this connection's io_context, which ends a step waiting on the
  // network; the checks between steps then end the thread.
  auto& tcp_stream = beast::get_lowest_layer(c.stream);
  tcp_stream.expires_after(sh.options.request_timeout);
  error_code ec;
  http::async_write(c.stream, req, [&](const error_code& err, size_t) { ec = err; });
  c.run();
  if (ec) return Status::Unavailable("sending to " + sh.endpoint.host_header + ": " + ec.message());
  if (st.is_stopped()) return Status::Ok();
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  http::async_read_header(c.stream, c.buffer, parser,
                          [&](const error_code& err, size_t) { ec = err; });
  c.run();
  if (ec) {
    return Status::Unavailable("reading the reply of " + sh.endpoint.host_header + ": " +
                               ec.message());
  }
  // A watch stays open as long as the server wants; only the headers had a deadline.
  tcp_stream.expires_never();
  unsigned status = parser.get().result_int();
  // One TLS record's worth: a larger buffer only sits in every watch's memory.
  std::vector<char> buf(16 * 1024);
  while (!parser.is_done()) {
    if (st.is_stopped()) return Status::Ok();
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    http::async_read_some(c.stream, c.buffer, parser,
                          [&](const error_code& err, size_t) { ec = err; });
    c.run();
    if (ec == http::error::need_buffer) ec = {};
    size_t n = buf.size() - parser.get().body().size;
    if (n > 0 && !st.deliver(std::string_view(buf.data(), n))) return Status::Ok();
    if (ec) {
      return Status::Unavailable("the stream from " + sh.endpoint.host_header +
                                 " broke: " + ec.message());
    }
  }
  if (status != 200) {
    return Status(StatusCode::kInternal, "the server answered " + std::to_string(status));
  }
  return Status::Ok();
}

class HttpsWatch final : public Watch {
 public:
  HttpsWatch(std::shared_ptr<StreamState> st, std::thread thread)
      : st_(std::move(st)), thread_(std::move(thread)) {}
  ~HttpsWatch() override { stop(); }

  void stop() override {
    {
      std::lock_guard<std::recursive_mutex> lock(st_->mu);
      st_->stopped = true;
      st_->on_data = nullptr;
      st_->on_end = nullptr;
    }
    // Closing the socket ends whatever the thread is waiting for. The handler runs on the
    // stream's own io_context, the only place its socket is touched; a posted handler
    // survives the restart() between operations, so the close cannot be lost.
    // The handler only runs while the thread (which owns a reference to st_) runs the
    // io_context, so the connection outlives it; a handler never run is destroyed with it.
    Connection* conn = &st_->conn;
    asio::post(conn->ioc, [conn] { conn->abort(); });
    if (!thread_.joinable()) return;
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // stopped from its own callback; the thread ends right after
    } else {
      thread_.join();
    }
  }

 private:
  std::shared_ptr<StreamState> st_;
  std::thread thread_;
};

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path)) return Status::NotFound(path.string() + " does not exist");
    return Status::Invalid("cannot read " + path.string());
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const json* named_entry(const json& doc, const char* list, const char* field,
                        const std::string& name) {
  auto it = doc.find(list);
  if (it == doc.end() || !it->is_array() || it->empty()) return nullptr;
  for (const json& e : *it) {
    if (!e.is_object()) continue;
    auto n = e.find("name");
    if (!name.empty() && (n == e.end() || !n->is_string() || *n != name)) continue;
    auto f = e.find(field);
    return f != e.end() && f->is_object() ? &*f : nullptr;
  }
  return nullptr;
}

std::string string_field(const json* obj, const char* key) {
  if (obj == nullptr) return "";
  auto it = obj->find(key);
  return it != obj->end() && it->is_string() ? it->get<std::string>() : "";
}

// A credential given inline (base64 "<key>-data") or as a file name ("<key>").
Result<std::string> credential(const json* obj, const std::string& key,
                               const std::filesystem::path& dir) {
  std::string data = string_field(obj, (key + "-data").c_str());
  if (!data.empty()) {
    auto decoded = base64_decode(data);
    if (!decoded.ok()) return Status::Invalid(key + "-data: " + decoded.status().message());
    return std::move(decoded).value();
  }
  std::string file = string_field(obj, key.c_str());
  if (file.empty()) return std::string();
  std::filesystem::path p(file);
  if (p.is_relative()) p = dir / p;
  auto content = read_file(p);
  if (!content.ok()) return Status::Invalid(key + ": " + content.status().message());
  return content;
}

}  // namespace

HttpsTransport::HttpsTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsTransport::~HttpsTransport() = default;

Result<std::shared_ptr<HttpsTransport>> HttpsTransport::create(HttpsOptions options) {
  auto endpoint = parse_server_url(options.server);
  if (!endpoint.ok()) return endpoint.status();
  if (options.client_cert_pem.empty() != options.client_key_pem.empty()) {
    return Status::Invalid("a client certificate needs its key, and a key its certificate");
  }
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  // Idle connections (watches, pooled ones) give their record buffers back.
  SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  error_code ec;
  if (options.ca_pem.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return ssl_error("loading the system's trusted certificates", ec);
  } else {
    ctx->add_certificate_authority(asio::buffer(options.ca_pem), ec);
    if (ec) return ssl_error("loading the CA certificate", ec);
  }
  if (!options.client_cert_pem.empty()) {
    ctx->use_certificate_chain(asio::buffer(options.client_cert_pem), ec);
    if (ec) return ssl_error("loading the client certificate", ec);
    ctx->use_private_key(asio::buffer(options.client_key_pem), ssl::context::pem, ec);
    if (ec) return ssl_error("loading the client key", ec);
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
      return Status::Invalid("the client key does not match the client certificate");
    }
  }
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (ec) return ssl_error("setting the verify mode", ec);

  auto shared = std::make_shared<HttpsShared>();
  shared->endpoint = std::move(endpoint).value();
  shared->options = std::move(options);
  shared->ctx = std::move(ctx);
  auto impl = std::make_unique<Impl>();
  impl->shared = std::move(shared);
  return std::shared_ptr<HttpsTransport>(new HttpsTransport(std::move(impl)));
}

Result<HttpsOptions> HttpsTransport::options_from_kubeconfig(const std::string& path) {
  auto text = read_file(path);
  if (!text.ok()) return text.status();
  auto doc = parse_yaml(*text);
  if (!doc.ok()) return Status::Invalid(path + ": " + doc.status().message());
  if (!doc->is_object()) return Status::Invalid(path + ": not a kubeconfig");
  std::string cluster_name, user_name;
  if (std::string current = string_field(&*doc, "current-context"); !current.empty()) {
    const json* ctx = named_entry(*doc, "contexts", "context", current);
    cluster_name = string_field(ctx, "cluster");
    user_name = string_field(ctx, "user");
  }
  const json* cluster = named_entry(*doc, "clusters", "cluster", cluster_name);
  if (cluster == nullptr) cluster = named_entry(*doc, "clusters", "cluster", "");
  const json* user = named_entry(*doc, "users", "user", user_name);
  if (user == nullptr) user = named_entry(*doc, "users", "user", "");
  if (cluster == nullptr) return Status::Invalid(path + ": no cluster");
  std::filesystem::path dir = std::filesystem::path(path).parent_path();

  HttpsOptions o;
  o.server = string_field(cluster, "server");
  if (o.server.empty()) return Status::Invalid(path + ": the cluster has no server");
  auto ca = credential(cluster, "certificate-authority", dir);
  if (!ca.ok()) return Status::Invalid(path + ": " + ca.status().message());
  o.ca_pem = std::move(ca).value();
  auto cert = credential(user, "client-certificate", dir);
  if (!cert.ok()) return Status::Invalid(path + ": " + cert.status().message());
  o.client_cert_pem = std::move(cert).value();
  auto key = credential(user, "client-key", dir);
  if (!key.ok()) return Status::Invalid(path + ": " + key.status().message());
  o.client_key_pem = std::move(key).value();
  o.bearer_token = string_field(user, "token");
  if (std::string token_file = string_field(user, "tokenFile");
      o.bearer_token.empty() && !token_file.empty()) {
    std::filesystem::path p(token_file);
    if (p.is_relative()) p = dir / p;
    auto token = read_file(p);
    if (!token.ok()) return Status::Invalid(path + ": tokenFile: " + token.status().message());
    o.bearer_token = std::move(token).value();
    while (!o.bearer_token.empty() &&
           (o.bearer_token.back() == '\n' || o.bearer_token.back() == '\r')) {
      o.bearer_token.pop_back();
    }
  }
  return o;
}

Result<std::shared_ptr<HttpsTransport>> HttpsTransport::from_kubeconfig(const std::string& path) {
  auto o = options_from_kubeconfig(path);
  if (!o.ok()) return o.status();
  return create(std::move(o).value());
}

const HttpsOptions& HttpsTransport::options() const { return impl_->shared->options; }

size_t HttpsTransport::idle_connections() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->idle.size();
}

Result<Reply> HttpsTransport::round_trip(const Request& r) {
  const HttpsShared& sh = *impl_->shared;
  auto req = make_request(sh, r);
  if (!req.ok()) return req.status();
  for (;;) {
    std::unique_ptr<Connection> c;
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (!impl_->idle.empty()) {
        c = std::move(impl_->idle.back());
        impl_->idle.pop_back();
      }
    }
    if (!c) {
      c = std::make_unique<Connection>(*sh.ctx);
      Status s = connect(sh, *c);
      if (!s.ok()) return s;
    }
    Attempt a = exchange(sh, *c, *req);
    // A pooled connection the server closed while idle fails before any reply byte; the
    // request never reached a handler, so it is sent again on a fresh connection.
    if (!a.reply.ok() && c->reused && a.nothing_read) continue;
    if (a.keep) {
      c->reused = true;
      c->buffer.clear();
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (impl_->idle.size() < sh.options.max_idle_connections) {
        impl_->idle.push_back(std::move(c));
      }
    }
    return std::move(a.reply);
  }
}

Result<std::unique_ptr<Watch>> HttpsTransport::stream(const Request& r,
                                                      std::function<void(std::string_view)> on_data,
                                                      std::function<void(const Status&)> on_end) {
  auto req = make_request(*impl_->shared, r);
  if (!req.ok()) return req.status();
  auto st = std::make_shared<StreamState>(impl_->shared);
  st->on_data = std::move(on_data);
  st->on_end = std::move(on_end);
  std::thread thread([st, req = std::move(req).value()] {
    Status end = run_stream(*st, req);
    st->conn.close();
    st->finish(end);
  });
  return std::unique_ptr<Watch>(std::make_unique<HttpsWatch>(st, std::move(thread)));
}

}  // namespace skiff::client
