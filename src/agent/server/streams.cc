// exec, attach and port-forward: WebSocket sessions on the kubelet server's connections.
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket.hpp>
#include <csignal>
#include <nlohmann/json.hpp>

#include "agent/runtime/runtime.h"
#include "agent/server/server_internal.h"
#include "common/log.h"

#ifdef SKIFF_AGENT_PORTFORWARD
#include "agent/portforward/portforward.h"
#endif

namespace skiff::agent::server {

namespace websocket = beast::websocket;
using nlohmann::json;
using Ws = websocket::stream<Stream&>;

namespace {

constexpr char kChannelProtocol[] = "v5.channel.k8s.io";
constexpr uint8_t kStdin = 0, kStdout = 1, kStderr = 2, kStatus = 3, kResize = 4,
                  kCloseStream = 255;

// Whether the client offered `proto` in Sec-WebSocket-Protocol.
bool offers(const HttpRequest& req, std::string_view proto) {
  auto it = req.find(http::field::sec_websocket_protocol);
  if (it == req.end()) return false;
  std::string_view list(it->value().data(), it->value().size());
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == proto) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// Serializes writes (and the close) on a WebSocket: Beast allows one at a time.
class WsWriter {
 public:
  explicit WsWriter(Ws& ws)
      : ws_(ws), gate_(ws.get_executor(), std::chrono::steady_clock::time_point::max()) {}

  // Sends one binary message [channel][data]; false once the connection failed.
  asio::awaitable<bool> send(uint8_t channel, std::string_view data) {
    std::string msg;
    msg.reserve(data.size() + 1);
    msg.push_back(static_cast<char>(channel));
    msg.append(data);
    co_return co_await send_raw(std::move(msg));
  }

  asio::awaitable<bool> send_raw(std::string msg) {
    co_await lock();
    bool ok = false;
    if (!failed_ && !closed_) {
      beast::error_code ec;
      co_await ws_.async_write(asio::buffer(msg), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) failed_ = true;
      ok = !ec;
    }
    unlock();
    co_return ok;
  }

  // A normal close (once); waits for the peer's answer (bounded by the stream's timeout).
  asio::awaitable<void> close() {
    co_await lock();
    if (!failed_ && !closed_) {
      closed_ = true;
      beast::error_code ec;
      websocket::close_reason reason(websocket::close_code::normal);
      co_await ws_.async_close(reason, asio::redirect_error(asio::use_awaitable, ec));
    }
    closed_ = true;
    unlock();
  }

  bool closed() const { return closed_; }

 private:
  asio::awaitable<void> lock() {
    while (busy_) {
      beast::error_code ec;
      co_await gate_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    busy_ = true;
  }
  void unlock() {
    busy_ = false;
    gate_.cancel();
  }

  Ws& ws_;
  asio::steady_timer gate_;
  bool busy_ = false;
  bool failed_ = false;
  bool closed_ = false;
};

// What the client's messages drive.
struct ClientHooks {
  std::function<asio::awaitable<void>(std::string)> on_stdin;
  std::function<void()> on_stdin_close;
  std::function<void(uint16_t rows, uint16_t cols)> on_resize;
  std::function<void()> on_gone;  // the client closed or the connection broke
};

asio::awaitable<void> read_client(Ws& ws, WsWriter& writer, ClientHooks hooks) {
  bool stdin_closed = false;
  for (;;) {
    beast::flat_buffer buf;
    beast::error_code ec;
    co_await ws.async_read(buf, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!writer.closed() && hooks.on_gone) hooks.on_gone();
      co_return;
    }
    std::string msg = beast::buffers_to_string(buf.data());
    if (msg.empty()) continue;
    uint8_t channel = static_cast<uint8_t>(msg[0]);
    if (channel == kStdin) {
      if (!stdin_closed && msg.size() > 1 && hooks.on_stdin) {
        std::string data = msg.substr(1);
        co_await hooks.on_stdin(std::move(data));
      }
    } else if (channel == kCloseStream) {
      if (msg.size() >= 2 && static_cast<uint8_t>(msg[1]) == kStdin && !stdin_closed) {
        stdin_closed = true;
        if (hooks.on_stdin_close) hooks.on_stdin_close();
      }
    } else if (channel == kResize) {
      json size = json::parse(msg.substr(1), nullptr, false);
      if (size.is_object() && hooks.on_resize) {
        int w = size.value("Width", 0), h = size.value("Height", 0);
        if (w > 0 && h > 0 && w < 65536 && h < 65536) {
          hooks.on_resize(static_cast<uint16_t>(h), static_cast<uint16_t>(w));
        }
      }
    }
  }
}

std::string exit_status_json(int code, const std::vector<std::string>& command) {
  if (code == 0) return R"({"metadata":{},"status":"Success"})";
  std::string cmd;
  for (const auto& c : command) cmd += (cmd.empty() ? "" : " ") + c;
  json j = {
      {"metadata", json::object()},
      {"status", "Failure"},
      {"message", "command terminated with non-zero exit code: error executing command [" + cmd +
                      "], exit code " + std::to_string(code)},
      {"reason", "NonZeroExitCode"},
      {"details",
       {{"causes", json::array({{{"reason", "ExitCode"}, {"message", std::to_string(code)}}})}}}};
  return j.dump();
}

std::string failure_status_json(const std::string& message) {
  json j = {{"metadata", json::object()},
            {"status", "Failure"},
            {"message", message},
            {"reason", "InternalError"},
            {"code", 500}};
  return j.dump();
}

// Copies a descriptor to a channel until EOF (or EIO: a terminal whose other end closed).
asio::awaitable<void> pump(asio::posix::stream_descriptor& d, uint8_t channel, bool forward,
                           WsWriter& writer) {
  std::vector<char> buf(32 * 1024);
  for (;;) {
    beast::error_code ec;
    size_t n = co_await d.async_read_some(asio::buffer(buf),
                                          asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    if (forward && n > 0) {
      // Keep draining after the client is gone, so the process never blocks on a full pipe.
      if (!co_await writer.send(channel, std::string_view(buf.data(), n))) forward = false;
    }
  }
}

// conmon's attach socket: each packet is [pipe][bytes].
asio::awaitable<void> pump_attach(asio::posix::stream_descriptor& d, bool tty, bool want_stdout,
                                  bool want_stderr, WsWriter& writer) {
  std::vector<char> buf(64 * 1024);
  for (;;) {
    beast::error_code ec;
    size_t n = co_await d.async_read_some(asio::buffer(buf),
                                          asio::redirect_error(asio::use_awaitable, ec));
    if (ec || n == 0) co_return;
    uint8_t pipe = static_cast<uint8_t>(buf[0]);
    bool err = !tty && pipe == runtime::AttachConnection::kAttachStderr;
    if (err ? !want_stderr : !want_stdout) continue;
    if (!co_await writer.send(err ? kStderr : kStdout, std::string_view(buf.data() + 1, n - 1))) {
      co_return;
    }
  }
}

asio::posix::stream_descriptor dup_descriptor(const asio::any_io_executor& ex, int fd) {
  asio::posix::stream_descriptor d(ex);
  if (fd >= 0) {
    int copy = ::dup(fd);
    if (copy >= 0) {
      ::fcntl(copy, F_SETFD, FD_CLOEXEC);
      d.assign(copy);
    }
  }
  return d;
}

void set_subprotocol(Ws& ws, const char* proto) {
  std::string p = proto;
  ws.set_option(websocket::stream_base::decorator(
      [p](websocket::response_type& res) { res.set(http::field::sec_websocket_protocol, p); }));
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws.read_message_max(16 * 1024 * 1024);
}

}  // namespace

asio::awaitable<void> serve_exec_or_attach(KubeletServer::Impl* impl, Stream& stream,
                                           HttpRequest& req, const ParsedTarget& t, bool attach) {
  const std::string kind = attach ? "attach" : "exec";
  if (t.segments.size() != 4 || t.segments[1].empty() || t.segments[2].empty() ||
      t.segments[3].empty()) {
    std::string message = "want /" + kind + "/{namespace}/{pod}/{container}";
    co_await write_text(stream, req, 404, std::move(message));
    co_return;
  }
  if (!websocket::is_upgrade(req) || !offers(req, kChannelProtocol)) {
    std::string message = kind + " is served over WebSocket with the subprotocol " +
                          std::string(kChannelProtocol) + " only";
    co_await write_text(stream, req, 400, std::move(message));
    co_return;
  }
  const std::string ns = t.segments[1], pod = t.segments[2], container = t.segments[3];
  const bool tty_requested = t.flag("tty");
  const bool want_stdin = t.flag("stdin");
  const bool want_stdout = t.flag("stdout");
  const bool want_stderr = t.flag("stderr") && !tty_requested;
  const std::vector<std::string> command = t.all("command");
  if (!attach && command.empty()) {
    std::string message = "you must specify at least one command for the container";
    co_await write_text(stream, req, 400, std::move(message));
    co_return;
  }
  if (!want_stdin && !want_stdout && !t.flag("stderr")) {
    std::string message = "you must specify at least one of stdin, stdout, stderr";
    co_await write_text(stream, req, 400, std::move(message));
    co_return;
  }
  std::function<Result<ContainerTarget>()> find = [impl, ns, pod, container] {
    return impl->options.find_container(ns, pod, container, false);
  };
  auto target = co_await offload<Result<ContainerTarget>>(*impl, find);
  if (!target.ok()) {
    co_await write_status(stream, req, target.status());
    co_return;
  }
  if (!target->running) {
    std::string message = "container \"" + container + "\" in pod \"" + pod + "\" is not running";
    co_await write_text(stream, req, 400, std::move(message));
    co_return;
  }
  runtime::ContainerRuntime* rt = impl->options.runtime;
  const std::string id = target->id;
  std::unique_ptr<runtime::ExecProcess> proc;
  std::unique_ptr<runtime::AttachConnection> conn;
  if (attach) {
    std::function<std::shared_ptr<Result<std::unique_ptr<runtime::AttachConnection>>>()> open =
        [rt, id] {
          return std::make_shared<Result<std::unique_ptr<runtime::AttachConnection>>>(
              rt->attach(id));
        };
    auto cp = co_await offload<std::shared_ptr<Result<std::unique_ptr<runtime::AttachConnection>>>>(
        *impl, open);
    auto& c = *cp;
    if (!c.ok()) {
      co_await write_status(stream, req, c.status());
      co_return;
    }
    conn = std::move(*c);
  } else {
    runtime::ExecOptions eo;
    eo.args = command;
    eo.tty = tty_requested;
    eo.stdin = want_stdin;
    std::function<std::shared_ptr<Result<std::unique_ptr<runtime::ExecProcess>>>()> start = [rt, id,
                                                                                             eo] {
      return std::make_shared<Result<std::unique_ptr<runtime::ExecProcess>>>(rt->exec(id, eo));
    };
    auto pp = co_await offload<std::shared_ptr<Result<std::unique_ptr<runtime::ExecProcess>>>>(
        *impl, start);
    auto& p = *pp;
    if (!p.ok()) {
      co_await write_status(stream, req, p.status());
      co_return;
    }
    proc = std::move(*p);
  }
  // From here on the process (or attachment) exists; every path below ends it.
  auto executor = co_await asio::this_coro::executor;
  auto finish_process = [&]() -> asio::awaitable<Result<int>> {
    if (!proc) co_return 0;
    runtime::ExecProcess* p = proc.get();
    std::function<Result<int>()> reap = [p] {
      auto c = p->wait(std::chrono::seconds(30));
      if (!c.ok()) {
        (void)p->kill(SIGKILL);
        c = p->wait(std::chrono::seconds(10));
      }
      return c;
    };
    auto code = co_await offload<Result<int>>(*impl, reap);
    // Destroyed on the pool: when it could not be reaped, destroying it still blocks.
    auto box = std::make_shared<std::unique_ptr<runtime::ExecProcess>>(std::move(proc));
    std::function<bool()> drop = [box] {
      box->reset();
      return true;
    };
    co_await offload<bool>(*impl, drop);
    co_return code;
  };

  Ws ws(stream);
  set_subprotocol(ws, kChannelProtocol);
  beast::get_lowest_layer(stream).expires_never();
  beast::error_code ec;
  co_await ws.async_accept(req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (proc) (void)proc->kill(SIGKILL);
    co_await finish_process();
    co_return;
  }
  ws.binary(true);
  WsWriter writer(ws);

  const bool tty = attach ? conn->tty() : tty_requested;
  asio::posix::stream_descriptor in =
      dup_descriptor(executor, attach ? (want_stdin && target->stdin ? conn->fd() : -1)
                                      : (want_stdin ? proc->stdin_fd() : -1));
  asio::posix::stream_descriptor out =
      dup_descriptor(executor, attach ? conn->fd() : proc->stdout_fd());
  asio::posix::stream_descriptor err = dup_descriptor(executor, attach ? -1 : proc->stderr_fd());
  bool client_gone = false;

  ClientHooks hooks;
  hooks.on_stdin = [&in, attach](std::string data) -> asio::awaitable<void> {
    if (!in.is_open()) co_return;
    // conmon reads stdin packets into a 32 KiB buffer; stay well below it.
    const size_t step = attach ? 8192 : data.size();
    for (size_t off = 0; off < data.size(); off += step) {
      beast::error_code wec;
      co_await asio::async_write(in,
                                 asio::buffer(data.data() + off, std::min(step, data.size() - off)),
                                 asio::redirect_error(asio::use_awaitable, wec));
      if (wec) {
        beast::error_code cec;
        in.close(cec);
        co_return;
      }
    }
  };
  hooks.on_stdin_close = [&] {
    beast::error_code cec;
    if (attach) {
      if (in.is_open()) conn->close_stdin();
    } else {
      in.close(cec);
      if (proc) proc->close_stdin();
    }
  };
  hooks.on_resize = [&](uint16_t rows, uint16_t cols) {
    if (!tty) return;
    if (attach) {
      (void)conn->resize(rows, cols);
    } else if (proc) {
      (void)proc->resize(rows, cols);
    }
  };
  hooks.on_gone = [&] {
    client_gone = true;
    beast::error_code cec;
    if (attach) {
      // Detaching leaves the container running; only this connection ends.
      out.cancel(cec);
    } else if (proc) {
      (void)proc->kill(SIGKILL);
    }
  };

  auto reader_done = std::make_shared<Latch>(executor, 1);
  asio::co_spawn(executor, read_client(ws, writer, hooks),
                 [reader_done](std::exception_ptr) { reader_done->done(); });

  if (attach) {
    co_await pump_attach(out, tty, want_stdout, want_stderr || tty, writer);
  } else {
    auto pumps = std::make_shared<Latch>(executor, 1);
    asio::co_spawn(executor, pump(err, kStderr, want_stderr, writer),
                   [pumps](std::exception_ptr) { pumps->done(); });
    co_await pump(out, kStdout, want_stdout || tty, writer);
    co_await pumps->wait();
  }
  auto code = co_await finish_process();
  if (!client_gone) {
    std::string status;
    if (!code.ok()) {
      status = failure_status_json("waiting for the command: " + code.status().message());
    } else {
      status = attach ? exit_status_json(0, command) : exit_status_json(*code, command);
    }
    co_await writer.send(kStatus, status);
    co_await writer.close();
  }
  beast::error_code cec;
  in.close(cec);
  out.close(cec);
  err.close(cec);
  beast::get_lowest_layer(stream).socket().close(cec);
  co_await reader_done->wait();
}

asio::awaitable<void> serve_port_forward(KubeletServer::Impl* impl, Stream& stream,
                                         HttpRequest& req, const ParsedTarget& t) {
#ifndef SKIFF_AGENT_PORTFORWARD
  (void)impl;
  (void)t;
  std::string message = "this node does not serve port-forward";
  co_await write_text(stream, req, 501, std::move(message));
#else
  if (t.segments.size() != 3 || t.segments[1].empty() || t.segments[2].empty()) {
    std::string message = "want /portForward/{namespace}/{pod}";
    co_await write_text(stream, req, 404, std::move(message));
    co_return;
  }
  if (!websocket::is_upgrade(req) || !offers(req, portforward::kWebSocketSubprotocol)) {
    std::string message =
        std::string("port-forward is served over WebSocket with the subprotocol ") +
        portforward::kWebSocketSubprotocol + " only";
    co_await write_text(stream, req, 400, std::move(message));
    co_return;
  }
  if (!impl->options.pod_netns) {
    std::string message = "this node does not serve port-forward";
    co_await write_text(stream, req, 404, std::move(message));
    co_return;
  }
  const std::string ns = t.segments[1], pod = t.segments[2];
  std::function<Result<std::string>()> find = [impl, ns, pod] {
    return impl->options.pod_netns(ns, pod);
  };
  auto netns = co_await offload<Result<std::string>>(*impl, find);
  if (!netns.ok()) {
    co_await write_status(stream, req, netns.status());
    co_return;
  }
  Ws ws(stream);
  set_subprotocol(ws, portforward::kWebSocketSubprotocol);
  beast::get_lowest_layer(stream).expires_never();
  beast::error_code ec;
  co_await ws.async_accept(req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  ws.binary(true);
  WsWriter writer(ws);
  auto executor = co_await asio::this_coro::executor;

  // What the session's thread hands to this connection; touched on the I/O thread only.
  struct Outbox {
    explicit Outbox(const asio::any_io_executor& ex)
        : wake(ex, std::chrono::steady_clock::time_point::max()) {}
    std::deque<std::string> messages;
    bool finished = false;
    bool client_gone = false;
    asio::steady_timer wake;
  };
  auto box = std::make_shared<Outbox>(executor);
  const std::string netns_path = *netns;
  portforward::Session session(
      [box, executor](std::string bytes) {
        asio::post(executor, [box, b = std::move(bytes)]() mutable {
          box->messages.push_back(std::move(b));
          box->wake.cancel();
        });
      },
      [netns_path](uint16_t port) { return portforward::dial_in_netns(netns_path, port); },
      [box, executor] {
        asio::post(executor, [box] {
          box->finished = true;
          box->wake.cancel();
        });
      });
  auto reader_done = std::make_shared<Latch>(executor, 1);
  asio::co_spawn(
      executor,
      [&ws, &session, box]() -> asio::awaitable<void> {
        for (;;) {
          beast::flat_buffer buf;
          beast::error_code rec;
          co_await ws.async_read(buf, asio::redirect_error(asio::use_awaitable, rec));
          if (rec) {
            box->client_gone = true;
            box->wake.cancel();
            co_return;
          }
          session.on_client_bytes(beast::buffers_to_string(buf.data()));
        }
      },
      [reader_done](std::exception_ptr) { reader_done->done(); });
  for (;;) {
    if (!box->messages.empty()) {
      std::string msg = std::move(box->messages.front());
      box->messages.pop_front();
      beast::error_code wec;
      co_await ws.async_write(asio::buffer(msg), asio::redirect_error(asio::use_awaitable, wec));
      if (wec) break;
      continue;
    }
    if (box->finished || box->client_gone) break;
    beast::error_code wec;
    co_await box->wake.async_wait(asio::redirect_error(asio::use_awaitable, wec));
  }
  session.close();
  if (!box->client_gone) co_await writer.close();
  beast::error_code cec;
  beast::get_lowest_layer(stream).socket().close(cec);
  co_await reader_done->wait();
#endif
}

}  // namespace skiff::agent::server
