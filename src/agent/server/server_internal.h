// What the kubelet server's files share (private to src/agent/server).
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/server/kubelet_server.h"

namespace skiff::agent::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Stream = beast::ssl_stream<beast::tcp_stream>;
using HttpRequest = http::request<http::string_body>;

struct KubeletServer::Impl : std::enable_shared_from_this<KubeletServer::Impl> {
  // Coroutines hold a plain Impl*: what they touch when the I/O context destroys them (left
  // over after stop()) is declared before `ioc`, so it outlives it.

  // Constant after start().
  KubeletServerOptions options;
  unsigned port = 0;
  std::atomic<bool> stopping{false};

  std::mutex stop_mu;
  bool stopped = false;  // guarded by stop_mu

  // Open connections; touched on the I/O thread only.
  std::set<beast::tcp_stream*> connections;

  // Port-forward buffering figures (port_forward_buffers()).
  mutable std::mutex port_forward_mu;
  std::set<const void*> port_forward_sessions;  // guarded by port_forward_mu (Session*)
  PortForwardBuffers port_forward_ended;        // guarded by port_forward_mu

  // Log reader threads, open connections and the I/O thread, which stop() waits for.
  std::mutex background_mu;
  std::condition_variable background_cv;
  int background = 0;        // guarded by background_mu
  int open_connections = 0;  // guarded by background_mu
  bool io_done = false;      // guarded by background_mu
  void begin_background();
  void end_background();
  void connection_ended();

  asio::ssl::context ssl{asio::ssl::context::tls_server};
  asio::io_context ioc{1};
  // Keeps the I/O thread running until stop().
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
      asio::make_work_guard(ioc)};
  tcp::acceptor acceptor{ioc};
  std::unique_ptr<asio::thread_pool> pool;
  std::thread io_thread;

  static asio::awaitable<void> accept_loop(Impl* self);
  static asio::awaitable<void> session(Impl* self, tcp::socket socket);
  // Serves one request; returns whether the connection may carry another. `buffer` holds
  // what was read past the request (an upgraded connection's first bytes).
  static asio::awaitable<bool> handle(Impl* self, Stream& stream, HttpRequest& req,
                                      beast::flat_buffer& buffer);
};

// A request target split into decoded path segments and query parameters.
struct ParsedTarget {
  std::vector<std::string> segments;  // "/exec/ns/p/c" -> exec, ns, p, c
  std::multimap<std::string, std::string> query;
  std::string get(const std::string& key) const;
  bool flag(const std::string& key) const;
  std::vector<std::string> all(const std::string& key) const;
};
ParsedTarget parse_target(std::string_view target);
std::string percent_decode(std::string_view s);

// Plain-text responses; return whether the connection may carry another request.
asio::awaitable<bool> write_text(Stream& stream, const HttpRequest& req, unsigned status,
                                 std::string body);
// The status's message with its HTTP code (NotFound 404, BadRequest 400, ...).
asio::awaitable<bool> write_status(Stream& stream, const HttpRequest& req, const Status& s);

asio::awaitable<bool> serve_logs(KubeletServer::Impl* impl, Stream& stream, const HttpRequest& req,
                                 const ParsedTarget& t);
// Take the connection over (WebSocket or SPDY/3.1); it is closed afterwards. `buffer` holds
// the bytes read past the request.
asio::awaitable<void> serve_exec_or_attach(KubeletServer::Impl* impl, Stream& stream,
                                           HttpRequest& req, beast::flat_buffer& buffer,
                                           const ParsedTarget& t, bool attach);
asio::awaitable<void> serve_port_forward(KubeletServer::Impl* impl, Stream& stream,
                                         HttpRequest& req, beast::flat_buffer& buffer,
                                         const ParsedTarget& t);

// Counts spawned coroutines down; wait() resumes once all called done(). I/O thread only.
struct Latch {
  Latch(const asio::any_io_executor& ex, int n)
      : count(n), timer(ex, std::chrono::steady_clock::time_point::max()) {}
  int count;
  asio::steady_timer timer;
  void done();
  asio::awaitable<void> wait();
};

// Runs fn on the server's pool (for calls that block: runc, file reads) and resumes the
// calling coroutine on its own executor with the result. (fn is a named object: g++ 12
// mishandles temporaries such as lambdas inside co_await expressions.)
template <class T>
asio::awaitable<T> offload(KubeletServer::Impl& impl, const std::function<T()>& fn) {
  auto executor = co_await asio::this_coro::executor;
  struct State {
    explicit State(const asio::any_io_executor& ex)
        : timer(ex, std::chrono::steady_clock::time_point::max()) {}
    std::optional<T> value;
    asio::steady_timer timer;
  };
  auto state = std::make_shared<State>(executor);
  asio::post(*impl.pool, [state, fn, executor]() mutable {
    auto v = std::make_shared<std::optional<T>>(fn());
    asio::post(executor, [state, v] {
      state->value = std::move(*v);
      state->timer.cancel();
    });
  });
  while (!state->value) {
    beast::error_code ec;
    co_await state->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return std::move(*state->value);
}

}  // namespace skiff::agent::server
