// The kubelet API server: connections, authentication, routing and container logs. Exec,
// attach and port-forward sessions are in streams.cc.
#include "agent/server/kubelet_server.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <nlohmann/json.hpp>

#include "agent/runtime/cri_log.h"
#include "agent/runtime/runtime.h"
#include "agent/server/server_internal.h"
#include "agent/server/serving_cert.h"
#ifdef SKIFF_AGENT_PORTFORWARD
#include "agent/portforward/portforward.h"
#endif
#include "common/log.h"
#include "common/time.h"

namespace skiff::agent::server {

using nlohmann::json;

namespace {

constexpr auto kHandshakeTimeout = std::chrono::seconds(30);
constexpr auto kIdleTimeout = std::chrono::minutes(5);
// A followed log's reader waits once this much output is queued and not yet sent.
constexpr size_t kMaxQueuedLogBytes = 1 << 20;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Blocks SIGPIPE in the calling thread: writes to a pipe whose reader exited (an exec'd
// process's stdin) then fail with EPIPE instead of killing the agent.
void block_sigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

bool secret_matches(const HttpRequest& req, const std::string& secret) {
  auto it = req.find(http::field::authorization);
  if (it == req.end() || secret.empty()) return false;
  std::string_view value(it->value().data(), it->value().size());
  if (value.size() < 7) return false;
  std::string scheme(value.substr(0, 7));
  if (scheme != "Bearer " && scheme != "bearer ") return false;
  std::string_view token = value.substr(7);
  if (token.size() != secret.size()) return false;
  return CRYPTO_memcmp(token.data(), secret.data(), secret.size()) == 0;
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

ParsedTarget parse_target(std::string_view target) {
  ParsedTarget t;
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string_view seg =
        path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    t.segments.push_back(percent_decode(seg));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  if (q != std::string_view::npos) {
    std::string_view raw = target.substr(q + 1);
    while (!raw.empty()) {
      size_t amp = raw.find('&');
      std::string_view part = raw.substr(0, amp);
      raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
      if (part.empty()) continue;
      size_t eq = part.find('=');
      t.query.emplace(percent_decode(part.substr(0, eq)),
                      eq == std::string_view::npos ? "" : percent_decode(part.substr(eq + 1)));
    }
  }
  return t;
}

std::string ParsedTarget::get(const std::string& key) const {
  auto it = query.find(key);
  return it == query.end() ? std::string() : it->second;
}

bool ParsedTarget::flag(const std::string& key) const {
  std::string v = get(key);
  return v == "true" || v == "1" || v == "True";
}

std::vector<std::string> ParsedTarget::all(const std::string& key) const {
  std::vector<std::string> out;
  auto [b, e] = query.equal_range(key);
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

asio::awaitable<bool> write_text(Stream& stream, const HttpRequest& req, unsigned status,
                                 std::string body) {
  http::response<http::string_body> res{static_cast<http::status>(status), req.version()};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  beast::error_code ec;
  co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec && req.keep_alive();
}

asio::awaitable<bool> write_status(Stream& stream, const HttpRequest& req, const Status& s) {
  unsigned code = static_cast<unsigned>(http_code(s.code()));
  std::string message = s.message();
  co_return co_await write_text(stream, req, code, std::move(message));
}

asio::awaitable<void> Latch::wait() {
  while (count > 0) {
    beast::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void Latch::done() {
  if (--count <= 0) timer.cancel();
}

// ---------------------------------------------------------------------------------------------
// Container logs.

namespace {

// What a log request's reader thread and its connection share. chunks, done and wake are
// touched on the I/O thread only (the reader posts to it); pending and gone are guarded by mu.
struct LogPipe {
  explicit LogPipe(const asio::any_io_executor& ex)
      : wake(ex, std::chrono::steady_clock::time_point::max()) {}
  std::mutex mu;
  std::condition_variable cv;
  size_t pending = 0;  // bytes queued and not yet written; guarded by mu
  bool gone = false;   // the client went away; guarded by mu

  std::deque<std::string> chunks;
  bool done = false;
  asio::steady_timer wake;

  void set_gone() {
    std::lock_guard<std::mutex> l(mu);
    gone = true;
    cv.notify_all();
  }
  bool is_gone() {
    std::lock_guard<std::mutex> l(mu);
    return gone;
  }
};

Result<runtime::LogOptions> log_options(const ParsedTarget& t) {
  runtime::LogOptions o;
  auto number = [&](const char* key, int64_t* out) -> Status {
    std::string v = t.get(key);
    if (v.empty()) return Status::Ok();
    char* end = nullptr;
    long long n = std::strtoll(v.c_str(), &end, 10);
    if (end == v.c_str() || *end != '\0') {
      return Status::BadRequest(std::string("invalid ") + key + " \"" + v + "\"");
    }
    *out = n;
    return Status::Ok();
  };
  int64_t tail = -1, since_seconds = 0, limit = 0;
  if (t.query.count("tailLines")) {
    if (Status s = number("tailLines", &tail); !s.ok()) return s;
    if (tail < 0) return Status::BadRequest("tailLines must be a non-negative integer");
    o.tail_lines = tail;
  }
  if (Status s = number("sinceSeconds", &since_seconds); !s.ok()) return s;
  if (since_seconds < 0) return Status::BadRequest("sinceSeconds must be a positive integer");
  if (since_seconds > 0) o.since = now() - std::chrono::seconds(since_seconds);
  std::string since_time = t.get("sinceTime");
  if (!since_time.empty()) {
    if (since_seconds > 0) {
      return Status::BadRequest("at most one of sinceTime or sinceSeconds may be specified");
    }
    auto tp = parse_rfc3339(since_time);
    if (!tp.ok()) return Status::BadRequest("invalid sinceTime \"" + since_time + "\"");
    o.since = *tp;
  }
  if (Status s = number("limitBytes", &limit); !s.ok()) return s;
  if (limit < 0) return Status::BadRequest("limitBytes must be a positive integer");
  o.limit_bytes = limit;
  o.timestamps = t.flag("timestamps");
  o.follow = t.flag("follow");
  return o;
}

}  // namespace

asio::awaitable<bool> serve_logs(KubeletServer::Impl* impl, Stream& stream, const HttpRequest& req,
                                 const ParsedTarget& t) {
  if (t.segments.size() != 4 || t.segments[1].empty() || t.segments[2].empty() ||
      t.segments[3].empty()) {
    std::string message = "want /containerLogs/{namespace}/{pod}/{container}";
    co_return co_await write_text(stream, req, 404, std::move(message));
  }
  auto opts = log_options(t);
  if (!opts.ok()) co_return co_await write_status(stream, req, opts.status());
  const std::string ns = t.segments[1], pod = t.segments[2], container = t.segments[3];
  const bool previous = t.flag("previous");
  std::function<Result<ContainerTarget>()> find = [impl, ns, pod, container, previous] {
    return impl->options.find_container(ns, pod, container, previous);
  };
  auto target = co_await offload<Result<ContainerTarget>>(*impl, find);
  if (!target.ok()) co_return co_await write_status(stream, req, target.status());

  runtime::LogOptions lo = *opts;
  // Only the current attempt of a running container has more to come.
  if (previous || !target->running) lo.follow = false;

  http::response<http::empty_body> res{http::status::ok, req.version()};
  res.set(http::field::content_type, "text/plain");
  res.chunked(true);
  res.keep_alive(req.keep_alive());
  http::response_serializer<http::empty_body> sr{res};
  beast::error_code ec;
  beast::get_lowest_layer(stream).expires_never();
  co_await http::async_write_header(stream, sr, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return false;

  auto executor = co_await asio::this_coro::executor;
  auto pipe = std::make_shared<LogPipe>(executor);
  const std::string id = target->id;
  const std::string path = target->log_path;
  runtime::ContainerRuntime* rt = impl->options.runtime;
  lo.keep_following = [pipe, impl, rt, id] {
    if (pipe->is_gone() || impl->stopping) return false;
    auto st = rt->status(id);
    return st.ok() && st->state == runtime::ContainerState::kRunning;
  };
  lo.poll_interval = std::chrono::milliseconds(200);
  impl->begin_background();
  std::thread([pipe, impl = impl->shared_from_this(), lo, path, executor] {
    auto sink = [&](std::string_view text) {
      {
        std::unique_lock<std::mutex> l(pipe->mu);
        pipe->cv.wait(
            l, [&] { return pipe->pending < kMaxQueuedLogBytes || pipe->gone || impl->stopping; });
        if (pipe->gone || impl->stopping) return false;
        pipe->pending += text.size();
      }
      asio::post(executor, [pipe, chunk = std::string(text)]() mutable {
        pipe->chunks.push_back(std::move(chunk));
        pipe->wake.cancel();
      });
      return true;
    };
    Status s = runtime::read_container_log(path, lo, sink);
    if (!s.ok() && !s.is_not_found()) {
      SKIFF_LOG(Warn) << "reading log " << path << ": " << s.to_string();
    }
    asio::post(executor, [pipe] {
      pipe->done = true;
      pipe->wake.cancel();
    });
    impl->end_background();
  }).detach();

  // The client (the API server) sends nothing on this connection while the log streams;
  // readability means it closed (or reset) the connection.
  auto latch = std::make_shared<Latch>(executor, 1);
  auto& socket = beast::get_lowest_layer(stream).socket();
  asio::co_spawn(
      executor,
      [&socket, pipe]() -> asio::awaitable<void> {
        beast::error_code wec;
        co_await socket.async_wait(tcp::socket::wait_read,
                                   asio::redirect_error(asio::use_awaitable, wec));
        if (wec != asio::error::operation_aborted) {
          pipe->set_gone();
          pipe->wake.cancel();
        }
      },
      [latch](std::exception_ptr) { latch->done(); });

  bool ok = true;
  for (;;) {
    if (!pipe->chunks.empty()) {
      std::string chunk = std::move(pipe->chunks.front());
      pipe->chunks.pop_front();
      beast::error_code wec;
      co_await asio::async_write(stream, http::make_chunk(asio::buffer(chunk)),
                                 asio::redirect_error(asio::use_awaitable, wec));
      {
        std::lock_guard<std::mutex> l(pipe->mu);
        pipe->pending -= chunk.size();
        if (wec) pipe->gone = true;
        pipe->cv.notify_all();
      }
      if (wec) {
        ok = false;
        break;
      }
      continue;
    }
    if (pipe->done) break;
    if (pipe->is_gone()) {
      ok = false;
      break;
    }
    beast::error_code wec;
    co_await pipe->wake.async_wait(asio::redirect_error(asio::use_awaitable, wec));
  }
  pipe->set_gone();  // stops the reader if it is still going
  beast::error_code cec;
  socket.cancel(cec);
  co_await latch->wait();
  if (!ok) co_return false;
  co_await asio::async_write(stream, http::make_chunk_last(),
                             asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec && req.keep_alive();
}

// ---------------------------------------------------------------------------------------------
// Connections.

void KubeletServer::Impl::begin_background() {
  std::lock_guard<std::mutex> l(background_mu);
  ++background;
}

void KubeletServer::Impl::end_background() {
  std::lock_guard<std::mutex> l(background_mu);
  --background;
  background_cv.notify_all();
}

asio::awaitable<void> KubeletServer::Impl::accept_loop(Impl* self) {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket =
        co_await self->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) co_return;
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(self->ioc, session(self, std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> KubeletServer::Impl::session(Impl* self, tcp::socket socket) {
  if (self->stopping) co_return;
  Stream stream(std::move(socket), self->ssl);
  self->connections.insert(&beast::get_lowest_layer(stream));
  struct Unregister {
    Impl* impl;
    beast::tcp_stream* s;
    ~Unregister() {
      impl->connections.erase(s);
      impl->connection_ended();
    }
  } unregister{self, &beast::get_lowest_layer(stream)};
  {
    std::lock_guard<std::mutex> l(self->background_mu);
    ++self->open_connections;
  }
  beast::error_code ec;
  beast::get_lowest_layer(stream).expires_after(kHandshakeTimeout);
  co_await stream.async_handshake(asio::ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    HttpRequest req = parser.release();
    bool keep = false;
    try {
      keep = co_await self->handle(self, stream, req, buffer);
    } catch (const std::exception& e) {
      SKIFF_LOG(Warn) << "kubelet server: " << req.target() << ": " << e.what();
      keep = false;
    }
    if (!keep || self->stopping) break;
  }
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
  co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
}

void KubeletServer::Impl::connection_ended() {
  std::lock_guard<std::mutex> l(background_mu);
  --open_connections;
  background_cv.notify_all();
}

asio::awaitable<bool> KubeletServer::Impl::handle(Impl* self, Stream& stream, HttpRequest& req,
                                                  beast::flat_buffer& buffer) {
  if (!secret_matches(req, self->options.secret)) {
    std::string message = "Unauthorized";
    co_return co_await write_text(stream, req, 401, std::move(message));
  }
  std::string_view target(req.target().data(), req.target().size());
  ParsedTarget t = parse_target(target);
  const std::string first = t.segments.empty() ? std::string() : t.segments[0];
  const bool get = req.method() == http::verb::get;
  if (first == "healthz" && get) {
    std::string ok = "ok";
    co_return co_await write_text(stream, req, 200, std::move(ok));
  }
  if (first == "containerLogs" && get) co_return co_await serve_logs(self, stream, req, t);
  if ((first == "exec" || first == "attach") && (get || req.method() == http::verb::post)) {
    co_await serve_exec_or_attach(self, stream, req, buffer, t, first == "attach");
    co_return false;
  }
  if (first == "portForward" && (get || req.method() == http::verb::post)) {
    co_await serve_port_forward(self, stream, req, buffer, t);
    co_return false;
  }
  if (first == "stats" && t.segments.size() == 2 && t.segments[1] == "summary" && get) {
    if (!self->options.stats_summary) {
      std::string message = "this node serves no stats summary";
      co_return co_await write_text(stream, req, 404, std::move(message));
    }
    std::function<Result<std::string>()> summary = [self] { return self->options.stats_summary(); };
    auto body = co_await offload<Result<std::string>>(*self, summary);
    if (!body.ok()) co_return co_await write_status(stream, req, body.status());
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(*body);
    res.prepare_payload();
    beast::error_code ec;
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec && req.keep_alive();
  }
  std::string message = "404 page not found";
  co_return co_await write_text(stream, req, 404, std::move(message));
}

// ---------------------------------------------------------------------------------------------

KubeletServer::KubeletServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

KubeletServer::~KubeletServer() { stop(); }

unsigned KubeletServer::port() const { return impl_->port; }

PortForwardBuffers KubeletServer::port_forward_buffers() const {
  std::lock_guard<std::mutex> l(impl_->port_forward_mu);
  PortForwardBuffers b = impl_->port_forward_ended;
#ifdef SKIFF_AGENT_PORTFORWARD
  for (const void* s : impl_->port_forward_sessions) {
    auto now = static_cast<const portforward::Session*>(s)->buffered();
    b.peak_to_client = std::max(b.peak_to_client, now.peak_to_client);
    b.peak_to_pods = std::max(b.peak_to_pods, now.peak_to_pods);
  }
#endif
  return b;
}

Result<std::unique_ptr<KubeletServer>> KubeletServer::start(KubeletServerOptions options) {
  if (options.secret.empty()) return Status::Invalid("the kubelet server needs a secret");
  if (options.runtime == nullptr || !options.find_container) {
    return Status::Invalid("the kubelet server needs a runtime and a container resolver");
  }
  if (options.cert_dir.empty()) return Status::Invalid("the kubelet server needs a cert dir");
  auto cert = ensure_serving_cert(options.cert_dir, options.node_name, options.node_ip);
  if (!cert.ok()) return cert.status();
  auto impl = std::make_shared<Impl>();
  impl->options = std::move(options);
  beast::error_code ec;
  impl->ssl.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
  impl->ssl.use_certificate_chain_file(cert->cert, ec);
  if (!ec) impl->ssl.use_private_key_file(cert->key, asio::ssl::context::pem, ec);
  if (ec) return Status::Internal("loading the kubelet serving certificate: " + ec.message());

  auto addr = asio::ip::make_address(impl->options.address, ec);
  if (ec) return Status::Invalid("bad kubelet address \"" + impl->options.address + "\"");
  tcp::endpoint ep(addr, static_cast<unsigned short>(impl->options.port));
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable("kubelet server cannot listen on " + impl->options.address + ":" +
                               std::to_string(impl->options.port) + ": " + ec.message());
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->pool = std::make_unique<asio::thread_pool>(std::max(1, impl->options.pool_threads));
  for (int i = 0; i < std::max(1, impl->options.pool_threads); ++i) {
    asio::post(*impl->pool, [] { block_sigpipe(); });
  }
  asio::co_spawn(impl->ioc, Impl::accept_loop(impl.get()), asio::detached);
  Impl* raw = impl.get();
  impl->io_thread = std::thread([raw] {
    block_sigpipe();
    raw->ioc.run();
    std::lock_guard<std::mutex> l(raw->background_mu);
    raw->io_done = true;
    raw->background_cv.notify_all();
  });
  return std::unique_ptr<KubeletServer>(new KubeletServer(impl));
}

void KubeletServer::stop() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> l(s.stop_mu);
    if (s.stopped) return;
    s.stopped = true;
  }
  s.stopping = true;
  asio::post(s.ioc, [&s] {
    beast::error_code ec;
    s.acceptor.close(ec);
    for (auto* c : s.connections) c->socket().close(ec);
  });
  {
    std::unique_lock<std::mutex> l(s.background_mu);
    s.background_cv.wait_for(l, std::chrono::seconds(30),
                             [&] { return s.background == 0 && s.open_connections == 0; });
  }
  s.pool->join();
  // Let what is left finish (closed sockets fail their pending operations), then stop.
  s.work.reset();
  {
    std::unique_lock<std::mutex> l(s.background_mu);
    s.background_cv.wait_for(l, std::chrono::seconds(10), [&] { return s.io_done; });
  }
  s.ioc.stop();
  if (s.io_thread.joinable()) s.io_thread.join();
}

}  // namespace skiff::agent::server
