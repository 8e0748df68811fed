// Container probes (see probes.h): the probe handlers, the per-probe result state, and the
// Prober's workers, one per probe of a running container (as the kubelet's probe workers),
// ticking on a shared elastic thread pool.
#include "agent/probes.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "client/client.h"
#include "common/executor.h"
#include "common/log.h"

namespace skiff::agent {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using net::ip::tcp;
using nlohmann::json;

const char* probe_kind_name(ProbeKind kind) {
  switch (kind) {
    case ProbeKind::kLiveness:
      return "Liveness";
    case ProbeKind::kReadiness:
      return "Readiness";
    case ProbeKind::kStartup:
      return "Startup";
  }
  return "Unknown";
}

namespace {

const char* probe_field(ProbeKind kind) {
  switch (kind) {
    case ProbeKind::kLiveness:
      return "livenessProbe";
    case ProbeKind::kReadiness:
      return "readinessProbe";
    case ProbeKind::kStartup:
      return "startupProbe";
  }
  return "";
}

// A positive integer field, or `fallback` when absent, not a number or not positive (the API
// server defaults these; objects written around it may lack them).
int positive(const json& j, const char* key, int fallback) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return fallback;
  int64_t v = it->get<int64_t>();
  return v > 0 && v < (1 << 30) ? static_cast<int>(v) : fallback;
}

std::string string_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// An IntOrString port: a number, a port named in the container's ports, or a number written as
// a string (the kubelet's last resort). Sets *error when it cannot be resolved.
int resolve_port(const json& container, const json& port, std::string* error) {
  int n = 0;
  if (port.is_number_integer()) {
    n = port.get<int>();
  } else if (port.is_string()) {
    const std::string name = port.get<std::string>();
    bool found = false;
    auto ports = container.find("ports");
    if (ports != container.end() && ports->is_array()) {
      for (const auto& p : *ports) {
        if (p.is_object() && string_of(p, "name") == name && p.contains("containerPort") &&
            p["containerPort"].is_number_integer()) {
          n = p["containerPort"].get<int>();
          found = true;
          break;
        }
      }
    }
    if (!found) {
      if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos &&
          name.size() < 6) {
        n = std::stoi(name);
      } else {
        *error = "port " + name + " not found";
        return 0;
      }
    }
  } else {
    *error = "missing port";
    return 0;
  }
  if (n <= 0 || n > 65535) {
    *error = "invalid port number: " + std::to_string(n);
    return 0;
  }
  return n;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Go's text for a syscall error: "connection refused", not "Connection refused".
std::string go_error_text(const std::string& message) {
  std::string s = message;
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

std::string host_port(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace

std::optional<ProbeSpec> parse_probe(const json& container, ProbeKind kind) {
  if (!container.is_object()) return std::nullopt;
  auto it = container.find(probe_field(kind));
  if (it == container.end() || !it->is_object()) return std::nullopt;
  const json& p = *it;
  ProbeSpec spec;
  spec.initial_delay_seconds = 0;
  if (p.contains("initialDelaySeconds") && p["initialDelaySeconds"].is_number_integer()) {
    spec.initial_delay_seconds =
        static_cast<int>(std::max<int64_t>(0, p["initialDelaySeconds"].get<int64_t>()));
  }
  spec.period_seconds = positive(p, "periodSeconds", 10);
  spec.timeout_seconds = positive(p, "timeoutSeconds", 1);
  spec.success_threshold = positive(p, "successThreshold", 1);
  spec.failure_threshold = positive(p, "failureThreshold", 3);
  // The API requires 1 for liveness and startup probes; anything else would never kill.
  if (kind != ProbeKind::kReadiness) spec.success_threshold = 1;
  if (kind != ProbeKind::kReadiness && p.contains("terminationGracePeriodSeconds") &&
      p["terminationGracePeriodSeconds"].is_number_integer()) {
    spec.termination_grace_period_seconds =
        std::max<int64_t>(0, p["terminationGracePeriodSeconds"].get<int64_t>());
  }
  if (p.contains("exec") && p["exec"].is_object()) {
    spec.handler = ProbeSpec::Handler::kExec;
    const json& cmd = p["exec"].contains("command") ? p["exec"]["command"] : json();
    if (cmd.is_array()) {
      for (const auto& a : cmd) {
        if (a.is_string()) spec.command.push_back(a.get<std::string>());
      }
    }
    if (spec.command.empty()) spec.error = "exec probe has no command";
  } else if (p.contains("httpGet") && p["httpGet"].is_object()) {
    const json& h = p["httpGet"];
    spec.handler = ProbeSpec::Handler::kHttpGet;
    spec.host = string_of(h, "host");
    spec.path = string_of(h, "path");
    if (spec.path.empty() || spec.path[0] != '/') spec.path = "/" + spec.path;
    std::string scheme = string_of(h, "scheme");
    spec.scheme = scheme.empty() ? "HTTP" : scheme;
    if (spec.scheme != "HTTP" && spec.scheme != "HTTPS") {
      spec.error = "unsupported HTTP probe scheme: " + spec.scheme;
    }
    if (h.contains("httpHeaders") && h["httpHeaders"].is_array()) {
      for (const auto& hd : h["httpHeaders"]) {
        if (hd.is_object() && !string_of(hd, "name").empty()) {
          spec.http_headers.emplace_back(string_of(hd, "name"), string_of(hd, "value"));
        }
      }
    }
    std::string err;
    spec.port = resolve_port(container, h.contains("port") ? h["port"] : json(), &err);
    if (!err.empty() && spec.error.empty()) spec.error = err;
  } else if (p.contains("tcpSocket") && p["tcpSocket"].is_object()) {
    const json& t = p["tcpSocket"];
    spec.handler = ProbeSpec::Handler::kTcpSocket;
    spec.host = string_of(t, "host");
    std::string err;
    spec.port = resolve_port(container, t.contains("port") ? t["port"] : json(), &err);
    if (!err.empty()) spec.error = err;
  } else if (p.contains("grpc") && p["grpc"].is_object()) {
    spec.handler = ProbeSpec::Handler::kGrpc;
    if (p["grpc"].contains("port") && p["grpc"]["port"].is_number_integer()) {
      spec.port = p["grpc"]["port"].get<int>();
    }
    spec.error = "gRPC probes are not supported by this node";
  } else {
    spec.error = "missing probe handler";
  }
  return spec;
}

// --- handlers ---

namespace {

constexpr char kTimeoutText[] =
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";

// Runs the io_context until the operation started before it completes (the stream's expiry
// bounds it).
void run_one(net::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

template <class Stream>
beast::error_code exchange(net::io_context& ioc, Stream& stream,
                           const http::request<http::empty_body>& req, int* status) {
  beast::error_code ec;
  http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
  run_one(ioc);
  if (ec) return ec;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(10 * 1024);
  http::async_read_header(stream, buffer, parser,
                          [&](beast::error_code e, std::size_t) { ec = e; });
  run_one(ioc);
  if (ec) return ec;
  *status = parser.get().result_int();
  return ec;
}

}  // namespace

ProbeOutcome http_probe(const std::string& scheme, const std::string& host, int port,
                        const std::string& path,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        std::chrono::milliseconds timeout) {
  const std::string hp = host_port(host, port);
  const std::string url = lower(scheme) + "://" + hp + path;
  auto failed = [&](const std::string& why) {
    return ProbeOutcome{ProbeResult::kFailure, "Get \"" + url + "\": " + why};
  };
  auto deadline = std::chrono::steady_clock::now() + timeout;
  net::io_context ioc;
  tcp::endpoint endpoint;
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  const bool is_ip = !ec;
  if (is_ip) {
    endpoint = tcp::endpoint(address, static_cast<unsigned short>(port));
  } else {
    tcp::resolver resolver(ioc);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) {
      return failed("dial tcp: lookup " + host + ": " + go_error_text(ec.message()));
    }
    endpoint = *results.begin();
  }
  beast::tcp_stream stream(ioc);
  stream.expires_at(deadline);
  stream.async_connect(endpoint, [&](beast::error_code e) { ec = e; });
  run_one(ioc);
  if (ec == beast::error::timeout) return failed(kTimeoutText);
  if (ec) return failed("dial tcp " + hp + ": connect: " + go_error_text(ec.message()));

  http::request<http::empty_body> req{http::verb::get, path, 11};
  req.set(http::field::host, hp);
  req.set(http::field::user_agent, "kube-probe/1.32");
  req.set(http::field::accept, "*/*");
  std::map<std::string, bool> replaced;
  for (const auto& [k, v] : headers) {
    if (!replaced[lower(k)]) {
      req.erase(k);
      replaced[lower(k)] = true;
    }
    req.insert(k, v);
  }
  req.set(http::field::connection, "close");

  int status = 0;
  if (scheme == "HTTPS") {
    net::ssl::context ctx(net::ssl::context::tls_client);
    ctx.set_verify_mode(net::ssl::verify_none);
    beast::ssl_stream<beast::tcp_stream> tls(std::move(stream), ctx);
    if (!is_ip) SSL_set_tlsext_host_name(tls.native_handle(), host.c_str());
    tls.async_handshake(net::ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
    run_one(ioc);
    if (ec == beast::error::timeout) return failed(kTimeoutText);
    if (ec) return failed(ec.message());
    ec = exchange(ioc, tls, req, &status);
  } else {
    ec = exchange(ioc, stream, req, &status);
  }
  if (ec == beast::error::timeout) return failed(kTimeoutText);
  if (ec == http::error::end_of_stream || ec == net::error::eof) return failed("EOF");
  if (ec) return failed(ec.message());
  if (status >= 200 && status < 400) return {ProbeResult::kSuccess, ""};
  return {ProbeResult::kFailure, "HTTP probe failed with statuscode: " + std::to_string(status)};
}

ProbeOutcome tcp_probe(const std::string& host, int port, std::chrono::milliseconds timeout) {
  const std::string hp = host_port(host, port);
  auto failed = [&](const std::string& why) {
    return ProbeOutcome{ProbeResult::kFailure, "dial tcp " + hp + ": " + why};
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    return failed("lookup " + host + ": " + go_error_text(::gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(res, ::freeaddrinfo);
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return {ProbeResult::kError, std::string("socket: ") + std::strerror(errno)};
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { ::close(*f); });
  if (::connect(fd, res->ai_addr, res->ai_addrlen) == 0) return {ProbeResult::kSuccess, ""};
  if (errno != EINPROGRESS) return failed("connect: " + go_error_text(std::strerror(errno)));
  pollfd pfd{fd, POLLOUT, 0};
  int n;
  do {
    n = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  } while (n < 0 && errno == EINTR);
  if (n == 0) return failed("i/o timeout");
  if (n < 0) return {ProbeResult::kError, std::string("poll: ") + std::strerror(errno)};
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return failed("connect: " + go_error_text(std::strerror(err)));
  return {ProbeResult::kSuccess, ""};
}

// --- result state ---

ProbeState::ProbeState(ProbeKind kind, ProbeSpec spec)
    : kind_(kind),
      spec_(std::move(spec)),
      result_(kind == ProbeKind::kReadiness  ? ProbeResult::kFailure
              : kind == ProbeKind::kLiveness ? ProbeResult::kSuccess
                                             : ProbeResult::kError) {}

bool ProbeState::should_probe(TimePoint now, TimePoint started_at, bool started) const {
  if (on_hold_) return false;
  if (kind_ == ProbeKind::kStartup) {
    if (started) return false;
  } else if (!started) {
    return false;
  }
  return now - started_at >= std::chrono::seconds(spec_.initial_delay_seconds);
}

bool ProbeState::record(ProbeResult result) {
  if (result == ProbeResult::kError || on_hold_) return false;
  if (result == last_) {
    ++run_;
  } else {
    last_ = result;
    run_ = 1;
  }
  if ((result == ProbeResult::kFailure && run_ < spec_.failure_threshold) ||
      (result == ProbeResult::kSuccess && run_ < spec_.success_threshold)) {
    return false;
  }
  bool changed = result_ != result;
  result_ = result;
  if (kind_ != ProbeKind::kReadiness && result == ProbeResult::kFailure) {
    // The container is to be killed; nothing more to probe until it is replaced.
    on_hold_ = true;
    run_ = 0;
  }
  return changed;
}

// --- the prober ---

namespace {

struct Worker {
  Worker(ProbeKind kind, ProbeSpec spec, const ProbeTarget& t) : state(kind, std::move(spec)) {
    target.pod_uid = t.pod_uid;
    target.pod_namespace = t.pod_namespace;
    target.pod_name = t.pod_name;
    target.container_name = t.container_name;
    target.container_id = t.container_id;
    target.pod_ip = t.pod_ip;
    target.started_at = t.started_at;
  }

  // Constant after construction (the target without its specs).
  ProbeTarget target;

  // Guarded by Prober::Impl::mu.
  ProbeState state;
  bool stop = false;
  bool run_now = false;    // probe again as soon as the probe running now ends
  bool in_flight = false;  // a tick runs now
  uint64_t timer = 0;      // the executor timer of the next tick, if any
  std::shared_ptr<Worker> startup;           // the container's startup worker, if any (not itself)
  std::vector<std::weak_ptr<Worker>> gated;  // startup worker only: the workers it gates
};

struct ContainerEntry {
  ProbeTarget target;
  std::shared_ptr<Worker> liveness, readiness, startup;
};

ProbeOutcome run_probe(const ProberOptions& options, const ProbeSpec& spec,
                       const ProbeTarget& target) {
  if (!spec.error.empty()) return {ProbeResult::kError, spec.error};
  auto timeout = std::chrono::milliseconds(std::chrono::seconds(spec.timeout_seconds));
  const std::string host = spec.host.empty() ? target.pod_ip : spec.host;
  switch (spec.handler) {
    case ProbeSpec::Handler::kExec: {
      if (!options.exec) return {ProbeResult::kError, "exec probes are not supported"};
      auto r = options.exec(target.container_id, spec.command, timeout);
      if (!r.ok()) {
        if (r.status().code() == StatusCode::kTimeout) {
          return {ProbeResult::kFailure, "command \"" + join(spec.command) + "\" timed out"};
        }
        return {ProbeResult::kError, r.status().message()};
      }
      if (r->exit_code == 0) return {ProbeResult::kSuccess, ""};
      return {ProbeResult::kFailure, r->stdout_data + r->stderr_data};
    }
    case ProbeSpec::Handler::kHttpGet:
      if (host.empty()) return {ProbeResult::kError, "the pod has no IP"};
      return http_probe(spec.scheme, host, spec.port, spec.path, spec.http_headers, timeout);
    case ProbeSpec::Handler::kTcpSocket:
      if (host.empty()) return {ProbeResult::kError, "the pod has no IP"};
      return tcp_probe(host, spec.port, timeout);
    case ProbeSpec::Handler::kGrpc:
      return {ProbeResult::kError, "gRPC probes are not supported by this node"};
  }
  return {ProbeResult::kError, "unknown probe handler"};
}

}  // namespace

// Each probe worker is a chain of ticks on the prober's executor: a tick probes when the
// probe's state says it is due, then schedules the next tick one period later. No probe has a
// thread of its own while it waits.
struct Prober::Impl {
  explicit Impl(ProberOptions o)
      : options(std::move(o)), executor(ExecutorOptions{.max_threads = 64}) {}

  void tick(const std::shared_ptr<Worker>& w);
  // REQUIRES: mu is held. Makes `w` probe now rather than at its next tick.
  void kick(const std::shared_ptr<Worker>& w);
  // REQUIRES: mu is held. Stops the container's workers (a probe running now finishes first
  // and is then dropped).
  void retire(ContainerEntry& e);

  const ProberOptions options;

  mutable std::mutex mu;
  bool stopped = false;                                                   // guarded by mu
  std::map<std::pair<std::string, std::string>, ContainerEntry> entries;  // guarded by mu
  // Last, so that it stops (waiting for the ticks running) before the rest goes.
  Executor executor;
};

void Prober::Impl::tick(const std::shared_ptr<Worker>& w) {
  std::unique_lock<std::mutex> l(mu);
  w->timer = 0;
  if (w->stop) return;
  w->in_flight = true;
  w->run_now = false;
  const ProbeKind kind = w->state.kind();
  const ProbeSpec& spec = w->state.spec();
  bool started = !w->startup || w->startup->state.result() == ProbeResult::kSuccess;
  if (kind == ProbeKind::kStartup) started = w->state.result() == ProbeResult::kSuccess;
  if (w->state.should_probe(options.clock->now(), w->target.started_at, started)) {
    ProbeSpec probe_spec = spec;
    l.unlock();
    ProbeOutcome outcome = run_probe(options, probe_spec, w->target);
    if (outcome.result != ProbeResult::kSuccess && options.on_unhealthy) {
      bool errored = outcome.result == ProbeResult::kError;
      options.on_unhealthy(w->target, std::string(probe_kind_name(kind)) +
                                          (errored ? " probe errored: " : " probe failed: ") +
                                          outcome.message);
    }
    l.lock();
    if (!w->stop && w->state.record(outcome.result)) {
      if (kind == ProbeKind::kStartup && w->state.result() == ProbeResult::kSuccess) {
        // Liveness and readiness probing begins now rather than at their next tick.
        for (const auto& g : w->gated) {
          if (auto gw = g.lock()) kick(gw);
        }
      }
      if (options.on_change) {
        l.unlock();
        options.on_change(w->target.pod_uid);
        l.lock();
      }
    }
  }
  w->in_flight = false;
  if (w->stop || stopped) return;
  if (w->run_now) {
    w->run_now = false;
    executor.post([this, w] { tick(w); });
  } else {
    w->timer = executor.post_at(Executor::Clock::now() + std::chrono::seconds(spec.period_seconds),
                                [this, w] { tick(w); });
  }
}

void Prober::Impl::kick(const std::shared_ptr<Worker>& w) {
  if (w->stop) return;
  if (w->in_flight) {
    w->run_now = true;
  } else if (w->timer != 0 && executor.cancel(w->timer)) {
    w->timer = 0;
    executor.post([this, w] { tick(w); });
  }
  // Otherwise its tick is already queued.
}

void Prober::Impl::retire(ContainerEntry& e) {
  for (auto* w : {&e.liveness, &e.readiness, &e.startup}) {
    if (!*w) continue;
    (*w)->stop = true;
    if ((*w)->timer != 0) executor.cancel((*w)->timer);
    (*w)->timer = 0;
    w->reset();
  }
}

Prober::Prober(ProberOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Prober::~Prober() { stop(); }

void Prober::update(const ProbeTarget& target) {
  Impl& p = *impl_;
  std::lock_guard<std::mutex> l(p.mu);
  if (p.stopped) return;
  auto key = std::make_pair(target.pod_uid, target.container_name);
  auto it = p.entries.find(key);
  if (it != p.entries.end()) {
    const ProbeTarget& cur = it->second.target;
    if (cur.container_id == target.container_id && cur.pod_ip == target.pod_ip &&
        cur.started_at == target.started_at && cur.liveness == target.liveness &&
        cur.readiness == target.readiness && cur.startup == target.startup) {
      return;
    }
    p.retire(it->second);
    p.entries.erase(it);
  }
  if (!target.liveness && !target.readiness && !target.startup) {
    // Nothing to probe; status() still needs the container id.
    p.entries[key].target = target;
    return;
  }
  ContainerEntry& e = p.entries[key];
  e.target = target;
  if (target.startup) {
    e.startup = std::make_shared<Worker>(ProbeKind::kStartup, *target.startup, target);
  }
  if (target.liveness) {
    e.liveness = std::make_shared<Worker>(ProbeKind::kLiveness, *target.liveness, target);
    e.liveness->startup = e.startup;
  }
  if (target.readiness) {
    e.readiness = std::make_shared<Worker>(ProbeKind::kReadiness, *target.readiness, target);
    e.readiness->startup = e.startup;
  }
  if (e.startup) {
    if (e.liveness) e.startup->gated.push_back(e.liveness);
    if (e.readiness) e.startup->gated.push_back(e.readiness);
  }
  for (const auto& w : {e.startup, e.liveness, e.readiness}) {
    if (w) p.executor.post([&p, w] { p.tick(w); });
  }
}

void Prober::remove_container(const std::string& pod_uid, const std::string& container_name) {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    auto it = impl_->entries.find({pod_uid, container_name});
    if (it != impl_->entries.end()) {
      impl_->retire(it->second);
      impl_->entries.erase(it);
    }
  }
}

void Prober::remove_pod(const std::string& pod_uid) {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    for (auto it = impl_->entries.begin(); it != impl_->entries.end();) {
      if (it->first.first == pod_uid) {
        impl_->retire(it->second);
        it = impl_->entries.erase(it);
      } else {
        ++it;
      }
    }
  }
}

ContainerProbeStatus Prober::status(const std::string& pod_uid, const std::string& container_name,
                                    const std::string& container_id) const {
  ContainerProbeStatus out;
  std::lock_guard<std::mutex> l(impl_->mu);
  auto it = impl_->entries.find({pod_uid, container_name});
  if (it == impl_->entries.end() || it->second.target.container_id != container_id) return out;
  const ContainerEntry& e = it->second;
  out.started = !e.startup || e.startup->state.result() == ProbeResult::kSuccess;
  out.ready = out.started && (!e.readiness || e.readiness->state.result() == ProbeResult::kSuccess);
  if (e.liveness && e.liveness->state.result() == ProbeResult::kFailure) {
    out.failed = ProbeKind::kLiveness;
    out.termination_grace_period_seconds =
        e.liveness->state.spec().termination_grace_period_seconds;
  } else if (e.startup && e.startup->state.result() == ProbeResult::kFailure) {
    out.failed = ProbeKind::kStartup;
    out.termination_grace_period_seconds = e.startup->state.spec().termination_grace_period_seconds;
  }
  return out;
}

void Prober::stop() {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->stopped = true;
    for (auto& [key, e] : impl_->entries) impl_->retire(e);
    impl_->entries.clear();
  }
  impl_->executor.stop();  // waits for the probes running now
}

Status record_unhealthy_event(client::Client& client, const json& pod, const std::string& node_name,
                              const std::string& container_name, const std::string& message) {
  const json& m = pod["metadata"];
  const std::string ns = m.value("namespace", "");
  const std::string pod_name = m.value("name", "");
  const std::string uid = m.value("uid", "");
  const std::string field_path = "spec.containers{" + container_name + "}";
  // One Event per (pod, container, message), named by an FNV-1a hash of them.
  uint64_t h = 1469598103934665603ULL;
  for (const std::string* part : {&uid, &field_path, &message}) {
    for (unsigned char c : *part) h = (h ^ c) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  const std::string name = pod_name + "." + hex;
  const std::string t = format_rfc3339(now());
  auto events = client::resources::kEvents.in(ns);
  auto existing = client.get(events, name);
  if (existing.ok()) {
    int64_t count = (**existing).value("count", 1);
    json patch = {{"count", count + 1}, {"lastTimestamp", t}};
    return client.patch(events, name, client::PatchType::kMerge, patch.dump()).status();
  }
  if (!existing.status().is_not_found()) return existing.status();
  json involved = {{"kind", "Pod"},          {"namespace", ns},
                   {"name", pod_name},       {"uid", uid},
                   {"apiVersion", "v1"},     {"resourceVersion", m.value("resourceVersion", "")},
                   {"fieldPath", field_path}};
  json ev = {{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata", {{"name", name}, {"namespace", ns}}},
             {"involvedObject", involved},
             {"reason", "Unhealthy"},
             {"message", message},
             {"type", "Warning"},
             {"source", {{"component", "kubelet"}, {"host", node_name}}},
             {"firstTimestamp", t},
             {"lastTimestamp", t},
             {"count", 1},
             {"reportingComponent", "kubelet"},
             {"reportingInstance", node_name}};
  auto created = client.create(events, ev);
  if (created.ok() || created.status().code() == StatusCode::kAlreadyExists) return Status::Ok();
  return created.status();
}

}  // namespace skiff::agent
