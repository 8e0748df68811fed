#include "apiserver/pod_proxy.h"

#include <limits>
#include <nlohmann/json.hpp>

#include "apiserver/kubelet_client.h"
#include "apiserver/responses.h"

namespace skiff::apiserver {

using nlohmann::json;

namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;

// Signals a coroutine waiting on it once `count` spawned coroutines are done. Used on one
// connection's executor only.
struct Countdown {
  Countdown(const asio::any_io_executor& ex, int n)
      : count(n), timer(ex, std::chrono::steady_clock::time_point::max()) {}
  int count;
  asio::steady_timer timer;
  void done() {
    if (--count <= 0) timer.cancel();
  }
  asio::awaitable<void> wait() {
    while (count > 0) {
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
};

Response pod_status(const Status& s, const std::string& name) {
  return status_response(s, StatusDetails{name, "", "pods"});
}

const json* named(const json& list, const std::string& name) {
  if (!list.is_array()) return nullptr;
  for (const auto& c : list) {
    if (c.is_object() && c.value("name", "") == name) return &c;
  }
  return nullptr;
}

// kube-apiserver's validateContainer: the container a request is about.
Result<std::string> resolve_container(const json& pod, const std::string& pod_name,
                                      std::string container) {
  const json spec = pod.value("spec", json::object());
  const json containers = spec.value("containers", json::array());
  if (container.empty()) {
    if (containers.is_array() && containers.size() == 1) {
      return containers[0].value("name", "");
    }
    if (!containers.is_array() || containers.empty()) {
      return Status::BadRequest("a container name must be specified for pod " + pod_name);
    }
    std::string names;
    for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
      const json l = spec.value(list, json::array());
      if (!l.is_array()) continue;
      for (const auto& c : l) names += (names.empty() ? "" : " ") + c.value("name", "");
    }
    return Status::BadRequest("a container name must be specified for pod " + pod_name +
                              ", choose one of: [" + names + "]");
  }
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    if (named(spec.value(list, json::array()), container) != nullptr) return container;
  }
  return Status::BadRequest("container " + container + " is not valid for pod " + pod_name);
}

// The waiting reason the pod's status gives for a container, else ContainerCreating.
std::string waiting_reason(const json& pod, const std::string& container) {
  const json status = pod.value("status", json::object());
  for (const char* list : {"containerStatuses", "initContainerStatuses"}) {
    const json* cs = named(status.value(list, json::array()), container);
    if (cs == nullptr) continue;
    const json state = cs->value("state", json::object());
    if (state.contains("waiting") && state["waiting"].is_object()) {
      std::string r = state["waiting"].value("reason", "");
      if (!r.empty()) return r;
    }
  }
  return "ContainerCreating";
}

std::string raw_query(const Exchange& ex) {
  auto target = const_cast<Exchange&>(ex).request().target();
  std::string_view t(target.data(), target.size());
  size_t q = t.find('?');
  return q == std::string_view::npos ? std::string() : std::string(t.substr(q + 1));
}

// A node that cannot be reached (or is gone) is the gateway's problem, not a missing object.
Status unreachable(const Status& s) {
  if (s.code() == StatusCode::kNotFound) return Status::Unavailable(s.message());
  return s;
}

// The rest of a response's body (an error message), at most kMaxErrorBody bytes.
asio::awaitable<std::string> read_body_text(KubeletConnection& c,
                                            http::response_parser<http::buffer_body>& parser) {
  std::string text;
  std::vector<char> piece(16 * 1024);
  while (!parser.is_done() && text.size() < kMaxErrorBody) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    boost::system::error_code ec;
    co_await http::async_read_some(c.stream, c.buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    text.append(piece.data(), piece.size() - parser.get().body().size);
    if (ec) break;
  }
  co_return text;
}

template <class From, class To>
asio::awaitable<void> copy_bytes(From& from, To& to) {
  std::vector<char> buf(32 * 1024);
  for (;;) {
    boost::system::error_code ec;
    size_t n = co_await from.async_read_some(asio::buffer(buf),
                                             asio::redirect_error(asio::use_awaitable, ec));
    if (n > 0) {
      boost::system::error_code wec;
      co_await asio::async_write(to, asio::buffer(buf.data(), n),
                                 asio::redirect_error(asio::use_awaitable, wec));
      if (wec) co_return;
    }
    if (ec) co_return;
  }
}

}  // namespace

bool PodProxy::handles(const RequestInfo& ri) {
  if (ri.group != "" || ri.resource != "pods" || ri.name.empty()) return false;
  const std::string& s = ri.subresource;
  return s == "log" || s == "exec" || s == "attach" || s == "portforward";
}

asio::awaitable<void> PodProxy::serve(Exchange& ex, const RequestInfo& ri) {
  const std::string& sub = ri.subresource;
  const http::verb method = ex.request().method();
  const bool allowed = sub == "log" ? method == http::verb::get
                                    : method == http::verb::get || method == http::verb::post;
  if (!allowed) {
    Response reply =
        pod_status(Status(StatusCode::kMethodNotAllowed,
                          "the server does not allow this method on the requested resource"),
                   ri.name);
    co_await ex.reply(std::move(reply));
    co_return;
  }
  auto def = ctx_.registry->find("", "v1", "pods");
  ObjectPtr o = def ? ctx_.cache->get(object_key(*def, ri.ns, ri.name)) : nullptr;
  if (!o) {
    Response reply = pod_status(Status::NotFound("pods \"" + ri.name + "\" not found"), ri.name);
    co_await ex.reply(std::move(reply));
    co_return;
  }
  json pod = json::parse(*o->json, nullptr, false);
  if (!pod.is_object()) {
    Response reply = pod_status(Status::Internal("the stored pod does not parse"), ri.name);
    co_await ex.reply(std::move(reply));
    co_return;
  }
  const json spec = pod.value("spec", json::object());
  const std::string node = spec.value("nodeName", "");
  std::string container;
  if (sub != "portforward") {
    auto c = resolve_container(pod, ri.name, ex.query().get("container"));
    if (!c.ok()) {
      Response reply = pod_status(c.status(), ri.name);
      co_await ex.reply(std::move(reply));
      co_return;
    }
    container = *c;
  }
  if (node.empty()) {
    Status s = sub == "log"
                   ? Status::BadRequest("container \"" + container + "\" in pod \"" + ri.name +
                                        "\" is waiting to start: " + waiting_reason(pod, container))
                   : Status::BadRequest("pod " + ri.name + " does not have a host assigned");
    Response reply = pod_status(s, ri.name);
    co_await ex.reply(std::move(reply));
    co_return;
  }
  if (sub == "log") {
    co_await logs(ex, ri, node, container);
    co_return;
  }
  std::string query = raw_query(ex);
  std::string path;
  if (sub == "portforward") {
    path = "/portForward/" + ri.ns + "/" + ri.name;
  } else {
    path = "/" + sub + "/" + ri.ns + "/" + ri.name + "/" + container;
  }
  if (!query.empty()) path += "?" + query;
  co_await upgrade(ex, ri, node, path);
}

asio::awaitable<void> PodProxy::logs(Exchange& ex, const RequestInfo& ri, std::string node,
                                     std::string container) {
  auto conn = co_await kubelet_.connect(node);
  if (!conn.ok()) {
    Response reply = pod_status(unreachable(conn.status()), ri.name);
    co_await ex.reply(std::move(reply));
    co_return;
  }
  KubeletConnection& c = **conn;
  std::string path = "/containerLogs/" + ri.ns + "/" + ri.name + "/" + container;
  std::string query = raw_query(ex);
  if (!query.empty()) path += "?" + query;
  http::request<http::empty_body> req{http::verb::get, path, 11};
  req.set(http::field::host, c.endpoint.address());
  req.set(http::field::authorization, kubelet_.authorization());
  req.set(http::field::user_agent, "skiff-apiserver");
  req.keep_alive(false);
  boost::system::error_code ec;
  co_await http::async_write(c.stream, req, asio::redirect_error(asio::use_awaitable, ec));
  http::response_parser<http::buffer_body> parser;
  // No limit (a followed log has no end). Not boost::none: Boost 1.74 then refuses every
  // body with a Content-Length.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (!ec) {
    co_await http::async_read_header(c.stream, c.buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) {
    Response reply = pod_status(Status::Unavailable("reading from the kubelet at " +
                                                    c.endpoint.address() + ": " + ec.message()),
                                ri.name);
    co_await ex.reply(std::move(reply));
    co_return;
  }
  if (parser.get().result_int() != 200) {
    std::string text = co_await read_body_text(c, parser);
    Response reply = pod_status(kubelet_error(parser.get().result_int(), text), ri.name);
    co_await ex.reply(std::move(reply));
    co_return;
  }
  std::string content_type = "text/plain";
  if (!co_await ex.begin_stream(200, std::move(content_type))) co_return;

  // While the log streams the client sends nothing; its connection turning readable means
  // it went away, and the kubelet's stream is cut so that the node stops reading the log.
  auto executor = co_await asio::this_coro::executor;
  auto watcher = std::make_shared<Countdown>(executor, 0);
  tcp::socket* client_socket = nullptr;
  if (auto* ne = dynamic_cast<NetworkExchange*>(&ex)) {
    client_socket = &beast::get_lowest_layer(ne->stream()).socket();
    watcher->count = 1;
    auto& kubelet_socket = beast::get_lowest_layer(c.stream).socket();
    asio::co_spawn(
        executor,
        [client_socket, &kubelet_socket]() -> asio::awaitable<void> {
          boost::system::error_code wec;
          co_await client_socket->async_wait(tcp::socket::wait_read,
                                             asio::redirect_error(asio::use_awaitable, wec));
          if (wec != asio::error::operation_aborted) {
            boost::system::error_code cec;
            kubelet_socket.cancel(cec);
          }
        },
        [watcher](std::exception_ptr) { watcher->done(); });
  }
  std::vector<char> piece(16 * 1024);
  for (;;) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    co_await http::async_read_some(c.stream, c.buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    size_t n = piece.size() - parser.get().body().size;
    if (n > 0 && !co_await ex.write_chunk(std::string_view(piece.data(), n))) break;
    if (ec || parser.is_done()) break;
  }
  if (client_socket != nullptr) {
    boost::system::error_code cec;
    client_socket->cancel(cec);
  }
  co_await watcher->wait();
  co_await ex.end_stream();
}

asio::awaitable<void> PodProxy::upgrade(Exchange& ex, const RequestInfo& ri, std::string node,
                                        std::string kubelet_path) {
  auto* ne = dynamic_cast<NetworkExchange*>(&ex);
  if (ne == nullptr) {
    Response reply = pod_status(
        Status::BadRequest(ri.subresource + " needs a network connection to upgrade"), ri.name);
    co_await ex.reply(std::move(reply));
    co_return;
  }
  auto conn = co_await kubelet_.connect(node);
  if (!conn.ok()) {
    Response reply = pod_status(unreachable(conn.status()), ri.name);
    co_await ex.reply(std::move(reply));
    co_return;
  }
  KubeletConnection& c = **conn;
  http::request<http::empty_body> req{ex.request().method(), kubelet_path, 11};
  for (const auto& field : ex.request()) {
    switch (field.name()) {
      case http::field::authorization:
      case http::field::host:
      case http::field::content_length:
      case http::field::transfer_encoding:
      case http::field::sec_websocket_extensions:  // frames pass unparsed: no compression
        continue;
      default:
        req.insert(field.name_string(), field.value());
    }
  }
  req.set(http::field::host, c.endpoint.address());
  req.set(http::field::authorization, kubelet_.authorization());
  boost::system::error_code ec;
  co_await http::async_write(c.stream, req, asio::redirect_error(asio::use_awaitable, ec));
  http::response_parser<http::buffer_body> parser;
  // No limit (a followed log has no end). Not boost::none: Boost 1.74 then refuses every
  // body with a Content-Length.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (!ec) {
    co_await http::async_read_header(c.stream, c.buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) {
    Response reply = pod_status(Status::Unavailable("reading from the kubelet at " +
                                                    c.endpoint.address() + ": " + ec.message()),
                                ri.name);
    co_await ex.reply(std::move(reply));
    co_return;
  }
  if (parser.get().result() != http::status::switching_protocols) {
    std::string text = co_await read_body_text(c, parser);
    Response reply = pod_status(kubelet_error(parser.get().result_int(), text), ri.name);
    co_await ex.reply(std::move(reply));
    co_return;
  }
  // The kubelet switched protocols: relay its answer, then bytes both ways, unparsed.
  Stream& client = ne->stream();
  beast::get_lowest_layer(client).expires_never();
  http::response<http::empty_body> switched{parser.get().result(), parser.get().version()};
  for (const auto& field : parser.get()) switched.insert(field.name_string(), field.value());
  http::response_serializer<http::empty_body> sr{switched};
  co_await http::async_write_header(client, sr, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec && c.buffer.size() > 0) {
    co_await asio::async_write(client, c.buffer.data(),
                               asio::redirect_error(asio::use_awaitable, ec));
    c.buffer.consume(c.buffer.size());
  }
  if (!ec) {
    auto executor = co_await asio::this_coro::executor;
    auto done = std::make_shared<Countdown>(executor, 2);
    auto& client_socket = beast::get_lowest_layer(client).socket();
    auto& kubelet_socket = beast::get_lowest_layer(c.stream).socket();
    // When either direction ends, the other is cut too.
    auto finish = [done, &client_socket, &kubelet_socket](std::exception_ptr) {
      boost::system::error_code cec;
      client_socket.cancel(cec);
      kubelet_socket.cancel(cec);
      done->done();
    };
    asio::co_spawn(executor, copy_bytes(client, c.stream), finish);
    asio::co_spawn(executor, copy_bytes(c.stream, client), finish);
    co_await done->wait();
  }
  // The connection carried another protocol; it cannot serve HTTP any more.
  boost::system::error_code cec;
  beast::get_lowest_layer(client).socket().close(cec);
  beast::get_lowest_layer(c.stream).socket().close(cec);
}

}  // namespace skiff::apiserver
