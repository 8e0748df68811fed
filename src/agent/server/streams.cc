// exec, attach and port-forward: WebSocket and plain SPDY/3.1 sessions on the kubelet
// server's connections.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket.hpp>
#include <cctype>
#include <csignal>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/runtime/runtime.h"
#include "agent/server/server_internal.h"
#include "common/log.h"

#ifdef SKIFF_AGENT_PORTFORWARD
#include "agent/portforward/portforward.h"
#include "agent/portforward/spdy.h"
#endif

namespace skiff::agent::server {

namespace websocket = beast::websocket;
using nlohmann::json;
using Ws = websocket::stream<Stream&>;

namespace {

constexpr char kChannelProtocol[] = "v5.channel.k8s.io";
constexpr uint8_t kStdin = 0, kStdout = 1, kStderr = 2, kStatus = 3, kResize = 4,
                  kCloseStream = 255;

// Plain SPDY/3.1 (the X-Stream-Protocol-Version values), most preferred first.
const std::vector<std::string> kSpdyChannelProtocols = {"v4.channel.k8s.io", "v3.channel.k8s.io",
                                                        "v2.channel.k8s.io"};
const std::vector<std::string> kSpdyPortForwardProtocols = {"portforward.k8s.io"};
// As the kubelet: every stream the request asks for must be open within this time.
constexpr auto kStreamCreationTimeout = std::chrono::seconds(30);
// How long a finished session waits for the client to close its side.
constexpr auto kCloseTimeout = std::chrono::seconds(10);
// Largest SPDY data frame sent.
constexpr size_t kMaxSpdyData = 32 * 1024;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

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

// `Connection: Upgrade` with `Upgrade: SPDY/3.1`, as client-go's SPDY round tripper sends.
bool is_spdy_upgrade(const HttpRequest& req) {
  auto conn = req.find(http::field::connection);
  auto up = req.find(http::field::upgrade);
  if (conn == req.end() || up == req.end()) return false;
  return lower(std::string_view(conn->value().data(), conn->value().size())).find("upgrade") !=
             std::string::npos &&
         lower(std::string_view(up->value().data(), up->value().size())).find("spdy/3.1") !=
             std::string::npos;
}

// The X-Stream-Protocol-Version values, in the client's order (repeated headers or lists).
std::vector<std::string> offered_stream_protocols(const HttpRequest& req) {
  std::vector<std::string> out;
  auto [b, e] = req.equal_range("X-Stream-Protocol-Version");
  for (auto it = b; it != e; ++it) {
    std::string_view list(it->value().data(), it->value().size());
    while (!list.empty()) {
      size_t comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (!item.empty()) out.emplace_back(item);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return out;
}

std::string negotiate(const std::vector<std::string>& offered,
                      const std::vector<std::string>& supported) {
  for (const auto& p : offered) {
    if (std::find(supported.begin(), supported.end(), p) != supported.end()) return p;
  }
  return "";
}

// The kubelet's answer when no protocol matches: 403 with the versions it accepts.
asio::awaitable<void> refuse_protocols(Stream& stream, const HttpRequest& req,
                                       const std::vector<std::string>& offered,
                                       const std::vector<std::string>& supported) {
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
    return "[" + s + "]";
  };
  http::response<http::string_body> res{http::status::forbidden, req.version()};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  for (const auto& p : supported) res.insert("X-Accepted-Stream-Protocol-Versions", p);
  res.keep_alive(false);
  res.body() = offered.empty()
                   ? "unable to upgrade: X-Stream-Protocol-Version is required"
                   : "unable to upgrade: unable to negotiate protocol: client supports " +
                         join(offered) + ", server accepts " + join(supported);
  res.prepare_payload();
  beast::error_code ec;
  co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<bool> switch_to_spdy(Stream& stream, const HttpRequest& req,
                                     const std::string& protocol) {
  http::response<http::empty_body> res{http::status::switching_protocols, req.version()};
  res.set(http::field::connection, "Upgrade");
  res.set(http::field::upgrade, "SPDY/3.1");
  res.set("X-Stream-Protocol-Version", protocol);
  beast::error_code ec;
  co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

// One writer at a time on a connection (Beast and Asio allow one outstanding write).
class WriteGate {
 public:
  explicit WriteGate(const asio::any_io_executor& ex)
      : gate_(ex, std::chrono::steady_clock::time_point::max()) {}
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

 private:
  asio::steady_timer gate_;
  bool busy_ = false;
};

// Serializes writes (and the close) on a WebSocket.
class WsWriter {
 public:
  explicit WsWriter(Ws& ws) : ws_(ws), gate_(ws.get_executor()) {}

  // Sends one binary message [channel][data]; false once the connection failed.
  asio::awaitable<bool> send(uint8_t channel, std::string_view data) {
    std::string msg;
    msg.reserve(data.size() + 1);
    msg.push_back(static_cast<char>(channel));
    msg.append(data);
    co_return co_await send_raw(std::move(msg));
  }

  asio::awaitable<bool> send_raw(std::string msg) {
    co_await gate_.lock();
    bool ok = false;
    if (!failed_ && !closed_) {
      beast::error_code ec;
      co_await ws_.async_write(asio::buffer(msg), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) failed_ = true;
      ok = !ec;
    }
    gate_.unlock();
    co_return ok;
  }

  // A normal close (once); waits for the peer's answer (bounded by the stream's timeout).
  asio::awaitable<void> close() {
    co_await gate_.lock();
    if (!failed_ && !closed_) {
      closed_ = true;
      beast::error_code ec;
      websocket::close_reason reason(websocket::close_code::normal);
      co_await ws_.async_close(reason, asio::redirect_error(asio::use_awaitable, ec));
    }
    closed_ = true;
    gate_.unlock();
  }

  bool closed() const { return closed_; }

 private:
  Ws& ws_;
  WriteGate gate_;
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

// {"Width":w,"Height":h}, as both protocols send terminal sizes.
void parse_resize(std::string_view text, const ClientHooks& hooks) {
  json size = json::parse(text, nullptr, false);
  if (!size.is_object() || !hooks.on_resize) return;
  auto number = [&](const char* key) {
    auto it = size.find(key);
    return it != size.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
  };
  int64_t w = number("Width"), h = number("Height");
  if (w > 0 && h > 0 && w < 65536 && h < 65536) {
    hooks.on_resize(static_cast<uint16_t>(h), static_cast<uint16_t>(w));
  }
}

// The client side of an exec or attach session.
class ClientStreams {
 public:
  virtual ~ClientStreams() = default;
  // Sends output on kStdout or kStderr; false once the client cannot take it any more.
  virtual asio::awaitable<bool> send(uint8_t channel, std::string_view data) = 0;
  // Reads what the client sends, driving `hooks`, until it goes away or the session closed.
  virtual asio::awaitable<void> read(ClientHooks hooks) = 0;
  // Ends the session with its final metav1.Status and closes normally.
  virtual asio::awaitable<void> finish(const json& status) = 0;
};

class WebSocketStreams final : public ClientStreams {
 public:
  explicit WebSocketStreams(Ws& ws) : ws_(ws), writer_(ws) {}

  asio::awaitable<bool> send(uint8_t channel, std::string_view data) override {
    co_return co_await writer_.send(channel, data);
  }

  asio::awaitable<void> read(ClientHooks hooks) override {
    bool stdin_closed = false;
    for (;;) {
      beast::flat_buffer buf;
      beast::error_code ec;
      co_await ws_.async_read(buf, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!writer_.closed() && hooks.on_gone) hooks.on_gone();
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
        parse_resize(std::string_view(msg).substr(1), hooks);
      }
    }
  }

  asio::awaitable<void> finish(const json& status) override {
    std::string text = status.dump();
    co_await writer_.send(kStatus, text);
    co_await writer_.close();
  }

 private:
  Ws& ws_;
  WsWriter writer_;
};

#ifdef SKIFF_AGENT_PORTFORWARD
namespace spdy = portforward::spdy;

// remotecommand over plain SPDY/3.1: one stream per `streamtype`, opened by the client.
// Windows: the client's stdin window is given back as its bytes are written to the process;
// output is sent without waiting for windows (kubectl's SPDY library sends no window updates).
class SpdyStreams final : public ClientStreams {
 public:
  // `version`: 2, 3 or 4 (vN.channel.k8s.io). `early`: bytes read past the upgrade request.
  SpdyStreams(Stream& stream, int version, std::string early)
      : stream_(stream), version_(version), gate_(stream.get_executor()) {
    if (!early.empty()) reader_.feed(early);
  }

  // Waits for the streams the request asked for, answering each as it opens; false when
  // they do not all come within kStreamCreationTimeout or the connection fails.
  asio::awaitable<bool> accept(bool want_stdin, bool want_stdout, bool want_stderr, bool tty) {
    auto& tcp = beast::get_lowest_layer(stream_);
    tcp.expires_after(kStreamCreationTimeout);
    auto complete = [&] {
      return error_ != 0 && (!want_stdin || stdin_ != 0) && (!want_stdout || stdout_ != 0) &&
             (!want_stderr || stderr_ != 0) && (!tty || version_ < 3 || resize_ != 0);
    };
    bool ok = true;
    while (!complete()) {
      auto frame = co_await next_frame();
      if (!frame) {
        ok = false;
        break;
      }
      if (!co_await handle(*frame, nullptr)) {
        ok = false;
        break;
      }
    }
    tcp.expires_never();
    co_return ok;
  }

  asio::awaitable<bool> send(uint8_t channel, std::string_view data) override {
    uint32_t id = channel == kStderr ? stderr_ : stdout_;
    if (id == 0 || reset_.count(id)) co_return false;
    std::string frames;
    for (size_t off = 0; off < data.size(); off += kMaxSpdyData) {
      frames += writer_.data(id, data.substr(off, std::min(kMaxSpdyData, data.size() - off)));
    }
    co_return co_await write(std::move(frames));
  }

  asio::awaitable<void> read(ClientHooks hooks) override {
    // What came while the streams were being opened.
    if (!early_stdin_.empty() && hooks.on_stdin) {
      std::string data = std::move(early_stdin_);
      co_await hooks.on_stdin(std::move(data));
    }
    if (stdin_fin_ && hooks.on_stdin_close) hooks.on_stdin_close();
    take_resizes(hooks);
    for (;;) {
      auto frame = co_await next_frame();
      if (!frame || !co_await handle(*frame, &hooks)) {
        if (!finished_ && hooks.on_gone) hooks.on_gone();
        co_return;
      }
    }
  }

  asio::awaitable<void> finish(const json& status) override {
    finished_ = true;
    std::string frames;
    for (uint32_t id : {stdout_, stderr_}) {
      if (id != 0 && !reset_.count(id)) frames += writer_.data(id, "", spdy::kFlagFin);
    }
    if (error_ != 0 && !reset_.count(error_)) {
      std::string text;
      if (version_ >= 4) {
        text = status.dump();
      } else if (status.value("status", "") != "Success") {
        text = status.value("message", "");
      }
      if (!text.empty()) frames += writer_.data(error_, text);
      frames += writer_.data(error_, "", spdy::kFlagFin);
    }
    // Our halves of the client's streams end too.
    for (uint32_t id : {stdin_, resize_}) {
      if (id != 0 && !reset_.count(id)) frames += writer_.data(id, "", spdy::kFlagFin);
    }
    co_await write(std::move(frames));
  }

 private:
  asio::awaitable<bool> write(std::string bytes) {
    co_await gate_.lock();
    bool ok = false;
    if (!failed_) {
      beast::error_code ec;
      co_await asio::async_write(stream_, asio::buffer(bytes),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) failed_ = true;
      ok = !ec;
    }
    gate_.unlock();
    co_return ok;
  }

  // The next frame; nullopt when the connection ended or its bytes are not SPDY.
  asio::awaitable<std::optional<spdy::Frame>> next_frame() {
    for (;;) {
      auto f = reader_.next();
      if (!f.ok()) {
        SKIFF_LOG(Warn) << "kubelet server: SPDY stream: " << f.status().to_string();
        co_return std::nullopt;
      }
      if (f->has_value()) co_return std::move(**f);
      beast::error_code ec;
      size_t n = co_await stream_.async_read_some(asio::buffer(buf_),
                                                  asio::redirect_error(asio::use_awaitable, ec));
      if (n > 0) reader_.feed(std::string_view(buf_.data(), n));
      if (ec && n == 0) co_return std::nullopt;
    }
  }

  void take_resizes(const ClientHooks& hooks) {
    size_t nl;
    while ((nl = resize_text_.find('\n')) != std::string::npos) {
      std::string line = resize_text_.substr(0, nl);
      resize_text_.erase(0, nl + 1);
      parse_resize(line, hooks);
    }
    // A size without its newline is complete when it parses on its own.
    if (!resize_text_.empty() && json::accept(resize_text_)) {
      parse_resize(resize_text_, hooks);
      resize_text_.clear();
    }
    if (resize_text_.size() > 64 * 1024) resize_text_.clear();
  }

  // Handles one frame; `hooks` is null while the streams are being opened (data is kept
  // for read()). False when the session cannot go on.
  asio::awaitable<bool> handle(spdy::Frame& f, ClientHooks* hooks) {
    switch (f.type) {
      case spdy::FrameType::kSynStream: {
        std::string type;
        for (const auto& [name, value] : f.headers) {
          if (lower(name) == "streamtype") type = value.substr(0, value.find('\0'));
        }
        uint32_t* slot = type == "error"                     ? &error_
                         : type == "stdin"                   ? &stdin_
                         : type == "stdout"                  ? &stdout_
                         : type == "stderr"                  ? &stderr_
                         : type == "resize" && version_ >= 3 ? &resize_
                                                             : nullptr;
        if (f.stream_id % 2 == 0 || slot == nullptr || *slot != 0) {
          co_return co_await write(
              writer_.rst_stream(f.stream_id, spdy::RstStatus::kRefusedStream));
        }
        *slot = f.stream_id;
        if ((f.flags & spdy::kFlagFin) && f.stream_id == stdin_) stdin_fin_ = true;
        co_return co_await write(writer_.syn_reply(f.stream_id, {}));
      }
      case spdy::FrameType::kData: {
        uint32_t n = static_cast<uint32_t>(f.data.size());
        if (f.stream_id == stdin_ && stdin_ != 0 && !stdin_fin_) {
          if (!f.data.empty()) {
            if (hooks != nullptr && hooks->on_stdin) {
              co_await hooks->on_stdin(std::move(f.data));
            } else {
              early_stdin_ += f.data;
            }
          }
          if (f.flags & spdy::kFlagFin) {
            stdin_fin_ = true;
            if (hooks != nullptr && hooks->on_stdin_close) hooks->on_stdin_close();
          }
        } else if (f.stream_id == resize_ && resize_ != 0) {
          resize_text_ += f.data;
          if (hooks != nullptr) take_resizes(*hooks);
        }
        // The client's windows are given back once its bytes are consumed.
        // (Stream windows matter for stdin only: the resize stream carries a few bytes.)
        unacked_ += n;
        if (f.stream_id == stdin_) stdin_unacked_ += n;
        std::string updates;
        if (unacked_ >= 16 * 1024) {
          updates += writer_.window_update(0, unacked_);
          unacked_ = 0;
        }
        if (stdin_unacked_ >= 16 * 1024) {
          if (!stdin_fin_ && !reset_.count(stdin_)) {
            updates += writer_.window_update(stdin_, stdin_unacked_);
          }
          stdin_unacked_ = 0;
        }
        if (updates.empty()) co_return true;
        co_return co_await write(std::move(updates));
      }
      case spdy::FrameType::kRstStream:
        reset_.insert(f.stream_id);
        if (f.stream_id == stdin_ && !stdin_fin_) {
          stdin_fin_ = true;
          if (hooks != nullptr && hooks->on_stdin_close) hooks->on_stdin_close();
        }
        co_return true;
      case spdy::FrameType::kPing:
        if (f.ping_id % 2 == 1) co_return co_await write(writer_.ping(f.ping_id));
        co_return true;
      default:
        // SETTINGS, WINDOW_UPDATE (output is not held to windows), GOAWAY (the client opens
        // no more streams; those open go on), HEADERS, SYN_REPLY.
        co_return true;
    }
  }

  Stream& stream_;
  const int version_;
  WriteGate gate_;
  spdy::FrameReader reader_;
  spdy::FrameWriter writer_;
  std::array<char, 64 * 1024> buf_{};
  uint32_t error_ = 0, stdin_ = 0, stdout_ = 0, stderr_ = 0, resize_ = 0;
  std::set<uint32_t> reset_;
  bool stdin_fin_ = false;
  std::string early_stdin_;
  std::string resize_text_;
  uint32_t unacked_ = 0;        // for the session window
  uint32_t stdin_unacked_ = 0;  // for the stdin stream's window
  bool failed_ = false;
  bool finished_ = false;
};
#endif  // SKIFF_AGENT_PORTFORWARD

json exit_status_json(int code, const std::vector<std::string>& command) {
  if (code == 0) return {{"metadata", json::object()}, {"status", "Success"}};
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
  return j;
}

json failure_status_json(const std::string& message) {
  json j = {{"metadata", json::object()},
            {"status", "Failure"},
            {"message", message},
            {"reason", "InternalError"},
            {"code", 500}};
  return j;
}

// Copies a descriptor to a channel until EOF (or EIO: a terminal whose other end closed).
asio::awaitable<void> pump(asio::posix::stream_descriptor& d, uint8_t channel, bool forward,
                           ClientStreams& client) {
  std::vector<char> buf(32 * 1024);
  for (;;) {
    beast::error_code ec;
    size_t n = co_await d.async_read_some(asio::buffer(buf),
                                          asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    if (forward && n > 0) {
      // Keep draining after the client is gone, so the process never blocks on a full pipe.
      if (!co_await client.send(channel, std::string_view(buf.data(), n))) forward = false;
    }
  }
}

// conmon's attach socket: each packet is [pipe][bytes].
asio::awaitable<void> pump_attach(asio::posix::stream_descriptor& d, bool tty, bool want_stdout,
                                  bool want_stderr, ClientStreams& client) {
  std::vector<char> buf(64 * 1024);
  for (;;) {
    beast::error_code ec;
    size_t n = co_await d.async_read_some(asio::buffer(buf),
                                          asio::redirect_error(asio::use_awaitable, ec));
    if (ec || n == 0) co_return;
    uint8_t pipe = static_cast<uint8_t>(buf[0]);
    bool err = !tty && pipe == runtime::AttachConnection::kAttachStderr;
    if (err ? !want_stderr : !want_stdout) continue;
    if (!co_await client.send(err ? kStderr : kStdout, std::string_view(buf.data() + 1, n - 1))) {
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
                                           HttpRequest& req, beast::flat_buffer& buffer,
                                           const ParsedTarget& t, bool attach) {
  const std::string kind = attach ? "attach" : "exec";
  if (t.segments.size() != 4 || t.segments[1].empty() || t.segments[2].empty() ||
      t.segments[3].empty()) {
    std::string message = "want /" + kind + "/{namespace}/{pod}/{container}";
    co_await write_text(stream, req, 404, std::move(message));
    co_return;
  }
  const bool websocket_upgrade = websocket::is_upgrade(req) && offers(req, kChannelProtocol);
  int spdy_version = 0;
#ifdef SKIFF_AGENT_PORTFORWARD
  if (!websocket_upgrade && is_spdy_upgrade(req)) {
    std::vector<std::string> offered = offered_stream_protocols(req);
    std::string protocol = negotiate(offered, kSpdyChannelProtocols);
    if (protocol.empty()) {
      co_await refuse_protocols(stream, req, offered, kSpdyChannelProtocols);
      co_return;
    }
    spdy_version = protocol[1] - '0';
  }
#endif
  if (!websocket_upgrade && spdy_version == 0) {
    std::string message = kind + " is served over WebSocket with the subprotocol " +
                          std::string(kChannelProtocol) + " or over SPDY/3.1 only";
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

  const bool tty = attach ? conn->tty() : tty_requested;
  std::optional<Ws> ws;
  std::unique_ptr<ClientStreams> client;
  beast::get_lowest_layer(stream).expires_never();
  bool upgraded = false;
  if (websocket_upgrade) {
    ws.emplace(stream);
    set_subprotocol(*ws, kChannelProtocol);
    beast::error_code ec;
    co_await ws->async_accept(req, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      ws->binary(true);
      client = std::make_unique<WebSocketStreams>(*ws);
      upgraded = true;
    }
  }
#ifdef SKIFF_AGENT_PORTFORWARD
  else {
    std::string protocol = "v" + std::to_string(spdy_version) + ".channel.k8s.io";
    std::string early = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    if (co_await switch_to_spdy(stream, req, protocol)) {
      auto spdy_client = std::make_unique<SpdyStreams>(stream, spdy_version, std::move(early));
      // The client opens its streams after the 101, one by one.
      if (co_await spdy_client->accept(want_stdin, want_stdout, want_stderr, tty_requested)) {
        client = std::move(spdy_client);
        upgraded = true;
      }
    }
  }
#endif
  if (!upgraded) {
    if (proc) (void)proc->kill(SIGKILL);
    co_await finish_process();
    beast::error_code cec;
    beast::get_lowest_layer(stream).socket().close(cec);
    co_return;
  }

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
  asio::co_spawn(executor, client->read(hooks),
                 [reader_done](std::exception_ptr) { reader_done->done(); });

  if (attach) {
    co_await pump_attach(out, tty, want_stdout, want_stderr || tty, *client);
  } else {
    auto pumps = std::make_shared<Latch>(executor, 1);
    asio::co_spawn(executor, pump(err, kStderr, want_stderr, *client),
                   [pumps](std::exception_ptr) { pumps->done(); });
    co_await pump(out, kStdout, want_stdout || tty, *client);
    co_await pumps->wait();
  }
  auto code = co_await finish_process();
  if (!client_gone) {
    json status;
    if (!code.ok()) {
      status = failure_status_json("waiting for the command: " + code.status().message());
    } else {
      status = attach ? exit_status_json(0, command) : exit_status_json(*code, command);
    }
    co_await client->finish(status);
  }
  beast::error_code cec;
  in.close(cec);
  out.close(cec);
  err.close(cec);
  // A SPDY client closes the connection once it has read the status, which ends the reader;
  // closing first could reset the connection under data it has not read yet. A WebSocket
  // has completed its closing handshake already.
  if (spdy_version != 0 && !client_gone) {
    asio::steady_timer limit(executor, kCloseTimeout);
    auto& socket = beast::get_lowest_layer(stream).socket();
    auto armed = std::make_shared<bool>(true);
    limit.async_wait([&socket, armed](beast::error_code ec) {
      beast::error_code cec;
      if (!ec && *armed) socket.cancel(cec);
    });
    co_await reader_done->wait();
    *armed = false;
    limit.cancel();
  }
  beast::get_lowest_layer(stream).socket().close(cec);
  co_await reader_done->wait();
}

asio::awaitable<void> serve_port_forward(KubeletServer::Impl* impl, Stream& stream,
                                         HttpRequest& req, beast::flat_buffer& buffer,
                                         const ParsedTarget& t) {
#ifndef SKIFF_AGENT_PORTFORWARD
  (void)impl;
  (void)t;
  (void)buffer;
  std::string message = "this node does not serve port-forward";
  co_await write_text(stream, req, 501, std::move(message));
#else
  if (t.segments.size() != 3 || t.segments[1].empty() || t.segments[2].empty()) {
    std::string message = "want /portForward/{namespace}/{pod}";
    co_await write_text(stream, req, 404, std::move(message));
    co_return;
  }
  const bool websocket_upgrade =
      websocket::is_upgrade(req) && offers(req, portforward::kWebSocketSubprotocol);
  const bool spdy_upgrade = !websocket_upgrade && is_spdy_upgrade(req);
  if (!websocket_upgrade && !spdy_upgrade) {
    std::string message =
        std::string("port-forward is served over WebSocket with the subprotocol ") +
        portforward::kWebSocketSubprotocol + " or over SPDY/3.1 only";
    co_await write_text(stream, req, 400, std::move(message));
    co_return;
  }
  if (spdy_upgrade) {
    std::vector<std::string> offered = offered_stream_protocols(req);
    if (negotiate(offered, kSpdyPortForwardProtocols).empty()) {
      co_await refuse_protocols(stream, req, offered, kSpdyPortForwardProtocols);
      co_return;
    }
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
  beast::get_lowest_layer(stream).expires_never();
  std::optional<Ws> ws;
  std::optional<WsWriter> ws_writer;
  std::string early;
  if (websocket_upgrade) {
    ws.emplace(stream);
    set_subprotocol(*ws, portforward::kWebSocketSubprotocol);
    beast::error_code ec;
    co_await ws->async_accept(req, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    ws->binary(true);
    ws_writer.emplace(*ws);
  } else {
    early = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    if (!co_await switch_to_spdy(stream, req, kSpdyPortForwardProtocols[0])) co_return;
  }
  auto executor = co_await asio::this_coro::executor;

  // What the session's thread hands to this connection; touched on the I/O thread only.
  struct Outbox {
    explicit Outbox(const asio::any_io_executor& ex)
        : wake(ex, std::chrono::steady_clock::time_point::max()),
          read_wake(ex, std::chrono::steady_clock::time_point::max()) {}
    std::deque<std::string> messages;
    bool finished = false;
    bool client_gone = false;
    asio::steady_timer wake;       // messages, finished or client_gone changed
    asio::steady_timer read_wake;  // the session took in what it held for pods
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
          box->read_wake.cancel();
        });
      });
  const size_t limit = std::max<size_t>(impl->options.port_forward_buffer_limit, 64 * 1024);
  session.limit_unsent_bytes(limit);
  session.limit_client_bytes(
      limit, [box, executor] { asio::post(executor, [box] { box->read_wake.cancel(); }); });
  {
    std::lock_guard<std::mutex> l(impl->port_forward_mu);
    impl->port_forward_sessions.insert(&session);
  }
  struct Unregister {
    KubeletServer::Impl* impl;
    portforward::Session* session;
    ~Unregister() {
      auto b = session->buffered();
      std::lock_guard<std::mutex> l(impl->port_forward_mu);
      impl->port_forward_sessions.erase(session);
      auto& ended = impl->port_forward_ended;
      ended.peak_to_client = std::max(ended.peak_to_client, b.peak_to_client);
      ended.peak_to_pods = std::max(ended.peak_to_pods, b.peak_to_pods);
      ++ended.ended;
    }
  } unregister{impl, &session};

  auto reader_done = std::make_shared<Latch>(executor, 1);
  Ws* wsp = ws ? &*ws : nullptr;
  asio::co_spawn(
      executor,
      [wsp, &stream, &session, box, limit, early]() -> asio::awaitable<void> {
        std::vector<char> raw(64 * 1024);
        bool first = true;
        for (;;) {
          std::string bytes;
          beast::error_code rec;
          if (first && !early.empty()) {
            bytes = early;
          } else if (wsp != nullptr) {
            beast::flat_buffer buf;
            co_await wsp->async_read(buf, asio::redirect_error(asio::use_awaitable, rec));
            bytes = beast::buffers_to_string(buf.data());
          } else {
            size_t n = co_await stream.async_read_some(
                asio::buffer(raw), asio::redirect_error(asio::use_awaitable, rec));
            bytes.assign(raw.data(), n);
          }
          first = false;
          if (rec && bytes.empty()) {
            box->client_gone = true;
            box->wake.cancel();
            co_return;
          }
          // Backpressure towards pods: no more reading while the session holds too much.
          if (!session.on_client_bytes(bytes)) {
            while (!session.finished() && !box->finished && !box->client_gone &&
                   session.buffered().to_pods > limit) {
              beast::error_code wec;
              co_await box->read_wake.async_wait(asio::redirect_error(asio::use_awaitable, wec));
            }
          }
          if (session.finished() || box->finished || box->client_gone) co_return;
        }
      },
      [reader_done](std::exception_ptr) { reader_done->done(); });
  for (;;) {
    if (!box->messages.empty()) {
      std::string msg = std::move(box->messages.front());
      box->messages.pop_front();
      beast::error_code wec;
      if (wsp != nullptr) {
        co_await wsp->async_write(asio::buffer(msg),
                                  asio::redirect_error(asio::use_awaitable, wec));
      } else {
        co_await asio::async_write(stream, asio::buffer(msg),
                                   asio::redirect_error(asio::use_awaitable, wec));
      }
      if (wec) break;
      // Backpressure towards the client: the session reads pods again as this drains.
      session.bytes_sent(msg.size());
      continue;
    }
    if (box->finished || box->client_gone) break;
    beast::error_code wec;
    co_await box->wake.async_wait(asio::redirect_error(asio::use_awaitable, wec));
  }
  session.close();
  box->read_wake.cancel();
  if (ws_writer && !box->client_gone) co_await ws_writer->close();
  beast::error_code cec;
  beast::get_lowest_layer(stream).socket().close(cec);
  co_await reader_done->wait();
#endif
}

}  // namespace skiff::agent::server
