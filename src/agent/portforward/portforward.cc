#include "agent/portforward/portforward.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "agent/portforward/spdy.h"
#include "common/log.h"

namespace skiff::agent::portforward {
namespace {

using Clock = std::chrono::steady_clock;

// Largest DATA frame sent to the client, and the most read from one pod socket per round
// (so one busy connection cannot starve the others).
constexpr size_t kMaxDataFrame = 32 * 1024;
constexpr size_t kMaxReadPerRound = 256 * 1024;
// Bytes consumed before a WINDOW_UPDATE is sent (also sent whenever a buffer drains).
constexpr uint32_t kWindowUpdateThreshold = 16 * 1024;
// As the kubelet: both streams of a pair must arrive within this time.
constexpr auto kStreamPairTimeout = std::chrono::seconds(30);

std::string errno_text(int e) { return std::error_code(e, std::system_category()).message(); }

void raise_to(std::atomic<size_t>& peak, size_t value) {
  size_t seen = peak.load();
  while (seen < value && !peak.compare_exchange_weak(seen, value)) {
  }
}

// Header names of the portforward.k8s.io protocol (lowercase, as SPDY sends them).
constexpr char kStreamTypeHeader[] = "streamtype";
constexpr char kPortHeader[] = "port";
constexpr char kRequestIdHeader[] = "requestid";

struct Pair {
  std::string request_id;
  uint16_t port = 0;
  uint32_t error_stream = 0;
  uint32_t data_stream = 0;
  Clock::time_point created;

  int fd = -1;
  bool dialed = false;
  bool error_closed = false;   // FIN sent on the error stream, or the stream was reset
  std::string to_pod;          // client bytes not yet written to the pod
  bool client_fin = false;     // the client sends no more data
  bool shut_wr = false;        // the pod socket's write side is shut down
  bool data_fin_sent = false;  // the pod sent EOF and the client has been told
  bool reset = false;          // the client reset the data stream
  int64_t send_window = spdy::kDefaultWindow;
  uint32_t recv_unacked = 0;
};

}  // namespace

struct Session::Impl {
  Impl(SendFn s, DialFn d, FinishedFn f)
      : send(std::move(s)), dial(std::move(d)), on_finished(std::move(f)) {}
  ~Impl() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  // Constant after construction.
  const SendFn send;
  const DialFn dial;
  const FinishedFn on_finished;
  int wake_fd = -1;
  std::mutex join_mu;
  std::thread thread;  // guarded by join_mu once started

  std::atomic<bool> finished{false};
  std::atomic<size_t> open_connections{0};
  std::atomic<size_t> unsent_limit{0};  // 0: no limit
  std::atomic<size_t> unsent{0};
  std::atomic<size_t> peak_unsent{0};
  // Client bytes the I/O thread holds (undecoded, or waiting for a pod to read them); the
  // bytes not yet taken from `inbound` are counted apart.
  std::atomic<size_t> held_client_bytes{0};
  std::atomic<size_t> peak_client_bytes{0};

  // I/O thread only: counts the frames not yet flushed too.
  bool over_unsent_limit() const {
    size_t limit = unsent_limit.load();
    return limit != 0 && unsent.load() + out.size() > limit;
  }

  std::mutex mu;
  std::string inbound;            // guarded by mu
  bool stop = false;              // guarded by mu
  size_t client_limit = 0;        // guarded by mu; 0: no limit
  std::function<void()> drained;  // guarded by mu
  bool client_blocked = false;    // guarded by mu: on_client_bytes() returned false

  // Owned by the I/O thread.
  spdy::FrameReader reader;
  spdy::FrameWriter writer;
  std::string out;
  bool self_finish = false;
  uint32_t last_client_stream = 0;
  bool going_away = false;
  bool enforce_send_window = false;
  int64_t initial_send_window = spdy::kDefaultWindow;
  int64_t session_send_window = spdy::kDefaultWindow;
  uint32_t session_recv_unacked = 0;
  std::map<std::string, std::unique_ptr<Pair>> pairs;  // by request id
  std::map<uint32_t, Pair*> by_stream;

  void wake() {
    uint64_t one = 1;
    // A full eventfd counter still wakes the thread, so a failed write needs no handling.
    [[maybe_unused]] ssize_t n = ::write(wake_fd, &one, sizeof(one));
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(mu);
    return stop;
  }

  void run();
  void handle_frame(spdy::Frame& f);
  void on_syn_stream(spdy::Frame& f);
  void on_data(spdy::Frame& f);
  void dial_pair(Pair& p);
  void pump(Pair& p);
  void write_to_pod(Pair& p);
  void read_from_pod(Pair& p);
  bool pair_done(const Pair& p) const;
  void finish_pair(Pair& p);
  void reap_pairs();
  void protocol_error(const std::string& why);
  void flush();
  void account_client_bytes();
};

void Session::Impl::account_client_bytes() {
  size_t held = reader.buffered();
  for (auto& [id, p] : pairs) held += p->to_pod.size();
  std::function<void()> notify;
  {
    std::lock_guard<std::mutex> lock(mu);
    held_client_bytes.store(held);
    if (client_blocked && held + inbound.size() <= client_limit) {
      client_blocked = false;
      notify = drained;
    }
  }
  if (notify && !stopping()) notify();
}

void Session::Impl::protocol_error(const std::string& why) {
  SKIFF_LOG(Warn) << "port-forward: ending the session: " << why;
  out += writer.goaway(last_client_stream, spdy::GoAwayStatus::kProtocolError);
  self_finish = true;
}

void Session::Impl::flush() {
  if (out.empty()) return;
  if (stopping()) {
    out.clear();
    return;
  }
  std::string bytes;
  bytes.swap(out);
  size_t now_unsent = unsent.fetch_add(bytes.size()) + bytes.size();
  raise_to(peak_unsent, now_unsent);
  send(std::move(bytes));
}

void Session::Impl::on_syn_stream(spdy::Frame& f) {
  uint32_t id = f.stream_id;
  if (id % 2 == 0 || id <= last_client_stream) {
    out += writer.rst_stream(id, spdy::RstStatus::kProtocolError);
    return;
  }
  last_client_stream = id;
  if (going_away) {
    out += writer.rst_stream(id, spdy::RstStatus::kRefusedStream);
    return;
  }
  auto type = spdy::header_value(f.headers, kStreamTypeHeader);
  auto port_text = spdy::header_value(f.headers, kPortHeader);
  unsigned long port = 0;
  if (port_text && !port_text->empty() && port_text->size() <= 5 &&
      port_text->find_first_not_of("0123456789") == std::string::npos) {
    port = std::stoul(*port_text);
  }
  if (!type || (*type != "error" && *type != "data") || port < 1 || port > 65535) {
    out += writer.rst_stream(id, spdy::RstStatus::kRefusedStream);
    return;
  }
  std::string request_id = spdy::header_value(f.headers, kRequestIdHeader).value_or("");
  if (request_id.empty()) {
    // Clients older than the requestID header open error then data streams with consecutive
    // ids; pair them the way the kubelet does.
    request_id = std::to_string(*type == "error" ? id : id - 2);
  }
  auto& slot = pairs[request_id];
  if (!slot) {
    slot = std::make_unique<Pair>();
    slot->request_id = request_id;
    slot->port = static_cast<uint16_t>(port);
    slot->created = Clock::now();
    slot->send_window = initial_send_window;
  }
  Pair& p = *slot;
  uint32_t& stream = *type == "error" ? p.error_stream : p.data_stream;
  if (stream != 0 || p.port != port) {
    out += writer.rst_stream(id, spdy::RstStatus::kProtocolError);
    return;
  }
  stream = id;
  by_stream[id] = &p;
  out += writer.syn_reply(id, {});
  if (f.flags & spdy::kFlagFin) {
    if (*type == "data") p.client_fin = true;
  }
  if (p.error_stream != 0 && p.data_stream != 0) dial_pair(p);
}

void Session::Impl::dial_pair(Pair& p) {
  Result<int> fd = dial ? dial(p.port) : Result<int>(Status::Internal("no dialer"));
  if (!fd.ok()) {
    std::string msg =
        "error forwarding port " + std::to_string(p.port) + " to pod: " + fd.status().message();
    out += writer.data(p.error_stream, msg);
    out += writer.data(p.error_stream, "", spdy::kFlagFin);
    p.error_closed = true;
    p.dialed = true;
    p.reset = true;  // nothing more flows on the data stream
    out += writer.data(p.data_stream, "", spdy::kFlagFin);
    p.data_fin_sent = true;
    return;
  }
  p.fd = *fd;
  int fl = fcntl(p.fd, F_GETFL);
  fcntl(p.fd, F_SETFL, fl | O_NONBLOCK);
  p.dialed = true;
  open_connections.fetch_add(1);
  pump(p);
}

void Session::Impl::on_data(spdy::Frame& f) {
  auto it = by_stream.find(f.stream_id);
  if (it == by_stream.end()) {
    // A stream already finished: late data is dropped, its session window given back.
    session_recv_unacked += static_cast<uint32_t>(f.data.size());
    return;
  }
  Pair& p = *it->second;
  uint32_t n = static_cast<uint32_t>(f.data.size());
  if (f.stream_id == p.data_stream) {
    if (!p.client_fin && !p.reset) {
      p.to_pod += f.data;
    } else if (n > 0) {
      // Data after FIN or reset is discarded; give the window back so the client does not
      // stall on the session window.
      session_recv_unacked += n;
    }
    if (f.flags & spdy::kFlagFin) p.client_fin = true;
    if (p.fd >= 0) pump(p);
  } else {
    // The error stream carries nothing from the client; its window is returned at once.
    session_recv_unacked += n;
  }
}

void Session::Impl::handle_frame(spdy::Frame& f) {
  switch (f.type) {
    case spdy::FrameType::kSynStream:
      on_syn_stream(f);
      break;
    case spdy::FrameType::kData:
      on_data(f);
      break;
    case spdy::FrameType::kRstStream: {
      auto it = by_stream.find(f.stream_id);
      if (it == by_stream.end()) break;
      Pair& p = *it->second;
      if (f.stream_id == p.data_stream) {
        p.reset = true;
        p.to_pod.clear();
      } else {
        p.error_closed = true;
      }
      break;
    }
    case spdy::FrameType::kSettings:
      for (const spdy::Setting& s : f.settings) {
        if (s.id == spdy::kSettingsInitialWindowSize && s.value <= 0x7fffffff) {
          int64_t delta = static_cast<int64_t>(s.value) - initial_send_window;
          initial_send_window = s.value;
          for (auto& [id, pair] : pairs) pair->send_window += delta;
          enforce_send_window = true;
        }
      }
      break;
    case spdy::FrameType::kPing:
      // Client pings have odd ids and are echoed; the session sends none of its own.
      if (f.ping_id % 2 == 1) out += writer.ping(f.ping_id);
      break;
    case spdy::FrameType::kGoAway:
      going_away = true;
      break;
    case spdy::FrameType::kWindowUpdate:
      // A client that sends window updates does flow control, so its windows are honoured
      // from then on. kubectl's SPDY library sends none and ignores windows; holding its
      // streams to 64 KiB would stall every transfer larger than that.
      enforce_send_window = true;
      if (f.stream_id == 0) {
        session_send_window += f.delta_window;
      } else if (auto it = by_stream.find(f.stream_id);
                 it != by_stream.end() && it->second->data_stream == f.stream_id) {
        it->second->send_window += f.delta_window;
      }
      break;
    case spdy::FrameType::kSynReply:
    case spdy::FrameType::kHeaders:
      break;  // the session opens no streams; extra headers mean nothing to port-forward
  }
}

void Session::Impl::write_to_pod(Pair& p) {
  while (!p.to_pod.empty() && !p.reset) {
    ssize_t n = ::send(p.fd, p.to_pod.data(), p.to_pod.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // The pod closed the connection: what the client still sends has nowhere to go.
      p.to_pod.clear();
      p.client_fin = true;
      p.shut_wr = true;
      break;
    }
    p.to_pod.erase(0, static_cast<size_t>(n));
    p.recv_unacked += static_cast<uint32_t>(n);
    session_recv_unacked += static_cast<uint32_t>(n);
  }
  if (p.recv_unacked > 0 && (p.recv_unacked >= kWindowUpdateThreshold || p.to_pod.empty()) &&
      !p.reset && !p.client_fin) {
    out += writer.window_update(p.data_stream, p.recv_unacked);
    p.recv_unacked = 0;
  }
  if (p.to_pod.empty() && p.client_fin && !p.shut_wr) {
    ::shutdown(p.fd, SHUT_WR);
    p.shut_wr = true;
  }
}

void Session::Impl::read_from_pod(Pair& p) {
  size_t total = 0;
  char buf[kMaxDataFrame];
  while (!p.data_fin_sent && !p.reset && total < kMaxReadPerRound && !over_unsent_limit()) {
    size_t want = sizeof(buf);
    if (enforce_send_window) {
      int64_t allowed = std::min(p.send_window, session_send_window);
      if (allowed <= 0) break;
      want = std::min<size_t>(want, static_cast<size_t>(allowed));
    }
    ssize_t n = ::recv(p.fd, buf, want, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      n = 0;  // a reset by the pod ends the stream like EOF does
    }
    if (n == 0) {
      out += writer.data(p.data_stream, "", spdy::kFlagFin);
      p.data_fin_sent = true;
      break;
    }
    out += writer.data(p.data_stream, std::string_view(buf, static_cast<size_t>(n)));
    p.send_window -= n;
    session_send_window -= n;
    total += static_cast<size_t>(n);
  }
}

void Session::Impl::pump(Pair& p) {
  if (p.fd < 0) return;
  write_to_pod(p);
  read_from_pod(p);
}

bool Session::Impl::pair_done(const Pair& p) const {
  if (!p.dialed) return false;
  if (p.reset) return true;
  return p.data_fin_sent && p.shut_wr;
}

void Session::Impl::finish_pair(Pair& p) {
  if (p.error_stream != 0 && !p.error_closed) {
    out += writer.data(p.error_stream, "", spdy::kFlagFin);
    p.error_closed = true;
  }
  if (p.data_stream != 0 && !p.data_fin_sent && !p.reset) {
    out += writer.data(p.data_stream, "", spdy::kFlagFin);
    p.data_fin_sent = true;
  }
  if (p.fd >= 0) {
    ::close(p.fd);
    p.fd = -1;
    open_connections.fetch_sub(1);
  }
}

void Session::Impl::reap_pairs() {
  auto now = Clock::now();
  for (auto it = pairs.begin(); it != pairs.end();) {
    Pair& p = *it->second;
    bool timed_out = !p.dialed && now - p.created > kStreamPairTimeout;
    if (timed_out && p.error_stream != 0) {
      out +=
          writer.data(p.error_stream, "timed out waiting for streams of request " + p.request_id);
    }
    if (timed_out || pair_done(p)) {
      finish_pair(p);
      by_stream.erase(p.error_stream);
      by_stream.erase(p.data_stream);
      it = pairs.erase(it);
    } else {
      ++it;
    }
  }
  bool drained = true;
  for (auto& [id, p] : pairs) drained = drained && p->to_pod.empty();
  if (session_recv_unacked >= kWindowUpdateThreshold || (session_recv_unacked > 0 && drained)) {
    out += writer.window_update(0, session_recv_unacked);
    session_recv_unacked = 0;
  }
  if (going_away && pairs.empty()) self_finish = true;
}

void Session::Impl::run() {
  std::vector<pollfd> fds;
  while (true) {
    std::string in;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stop) break;
      in.swap(inbound);
      held_client_bytes.fetch_add(in.size());
    }
    if (!in.empty()) {
      reader.feed(in);
      while (!self_finish) {
        auto frame = reader.next();
        if (!frame.ok()) {
          protocol_error(frame.status().message());
          break;
        }
        if (!frame->has_value()) break;
        handle_frame(**frame);
      }
    }
    if (!self_finish) {
      for (auto& [id, p] : pairs) pump(*p);
      reap_pairs();
    }
    account_client_bytes();
    flush();
    if (self_finish) {
      finished.store(true);
      if (on_finished && !stopping()) on_finished();
      break;
    }

    fds.clear();
    fds.push_back(pollfd{wake_fd, POLLIN, 0});
    bool waiting_pairs = false;
    for (auto& [id, p] : pairs) {
      if (!p->dialed) waiting_pairs = true;
      if (p->fd < 0) continue;
      short events = 0;
      if (!p->to_pod.empty()) events |= POLLOUT;
      bool may_read = !p->data_fin_sent && !p->reset && !over_unsent_limit() &&
                      (!enforce_send_window || std::min(p->send_window, session_send_window) > 0);
      if (may_read) events |= POLLIN;
      if (events != 0) fds.push_back(pollfd{p->fd, events, 0});
    }
    int rc = ::poll(fds.data(), fds.size(), waiting_pairs ? 1000 : -1);
    if (rc < 0 && errno != EINTR) break;  // cannot happen with valid descriptors
    if (fds[0].revents & POLLIN) {
      uint64_t count;
      [[maybe_unused]] ssize_t n = ::read(wake_fd, &count, sizeof(count));
    }
  }
  for (auto& [id, p] : pairs) {
    if (p->fd >= 0) {
      ::close(p->fd);
      p->fd = -1;
      open_connections.fetch_sub(1);
    }
  }
  pairs.clear();
  by_stream.clear();
  finished.store(true);
}

Session::Session(SendFn send_to_client, DialFn dial, FinishedFn on_finished)
    : impl_(std::make_shared<Impl>(std::move(send_to_client), std::move(dial),
                                   std::move(on_finished))) {
  impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl_->wake_fd < 0) {
    // Without its wake-up descriptor the session could not run; it starts finished.
    impl_->finished.store(true);
    return;
  }
  std::shared_ptr<Impl> self = impl_;
  std::lock_guard<std::mutex> lock(impl_->join_mu);
  impl_->thread = std::thread([self] { self->run(); });
}

Session::~Session() {
  close();
  std::lock_guard<std::mutex> lock(impl_->join_mu);
  if (impl_->thread.joinable()) {
    // Destroyed from its own callback: the thread keeps the state alive until it returns.
    impl_->thread.detach();
  }
}

bool Session::on_client_bytes(std::string_view bytes) {
  if (bytes.empty() || impl_->finished.load()) return true;
  bool below = true;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stop) return true;
    impl_->inbound.append(bytes);
    size_t total = impl_->inbound.size() + impl_->held_client_bytes.load();
    raise_to(impl_->peak_client_bytes, total);
    if (impl_->client_limit != 0 && total > impl_->client_limit) {
      impl_->client_blocked = true;
      below = false;
    }
  }
  impl_->wake();
  return below;
}

void Session::limit_client_bytes(size_t limit, std::function<void()> drained) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->client_limit = limit;
    impl_->drained = std::move(drained);
  }
  impl_->wake();
}

Session::Buffered Session::buffered() const {
  Buffered b;
  b.to_client = impl_->unsent.load();
  b.peak_to_client = impl_->peak_unsent.load();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    b.to_pods = impl_->inbound.size() + impl_->held_client_bytes.load();
  }
  b.peak_to_pods = std::max(impl_->peak_client_bytes.load(), b.to_pods);
  return b;
}

void Session::close() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->finished.store(true);
  impl_->wake();
  std::lock_guard<std::mutex> lock(impl_->join_mu);
  if (impl_->thread.joinable() && std::this_thread::get_id() != impl_->thread.get_id()) {
    impl_->thread.join();
  }
}

bool Session::finished() const { return impl_->finished.load(); }

void Session::limit_unsent_bytes(size_t limit) {
  impl_->unsent_limit.store(limit);
  impl_->wake();
}

void Session::bytes_sent(size_t bytes) {
  size_t before = impl_->unsent.load();
  size_t after;
  do {
    after = before > bytes ? before - bytes : 0;
  } while (!impl_->unsent.compare_exchange_weak(before, after));
  // Wake the I/O thread when this confirmation lets it read from pods again.
  size_t limit = impl_->unsent_limit.load();
  if (limit != 0 && before > limit && after <= limit) impl_->wake();
}

size_t Session::open_connections() const { return impl_->open_connections.load(); }

// ---- dialling ----

namespace {

Result<int> connect_loopback(int family, uint16_t port) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal("socket: " + errno_text(errno));
  sockaddr_storage ss{};
  socklen_t len;
  std::string where;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
    where = "127.0.0.1:" + std::to_string(port);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = in6addr_loopback;
    len = sizeof(sockaddr_in6);
    where = "[::1]:" + std::to_string(port);
  }
  while (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    ::close(fd);
    return Status::Unavailable("dial tcp " + where + ": connect: " + errno_text(e));
  }
  return fd;
}

}  // namespace

Result<int> dial_localhost(uint16_t port) {
  Result<int> v4 = connect_loopback(AF_INET, port);
  if (v4.ok()) return v4;
  // As the container runtimes do: a server listening only on IPv6 loopback is reachable too.
  Result<int> v6 = connect_loopback(AF_INET6, port);
  if (v6.ok()) return v6;
  return v4;
}

Result<int> dial_in_netns(const std::string& netns_path, uint16_t port) {
  int ns = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    int e = errno;
    if (e == ENOENT) return Status::NotFound("network namespace " + netns_path + " not found");
    return Status::Internal("open " + netns_path + ": " + errno_text(e));
  }
  Result<int> result = Status::Internal("dial thread did not run");
  // The namespace is joined by a thread that exits right after, so no other work ever runs
  // in it; the socket stays in the namespace it was created in.
  std::thread t([&] {
    if (::setns(ns, CLONE_NEWNET) != 0) {
      result = Status::Internal("setns " + netns_path + ": " + errno_text(errno));
      return;
    }
    result = dial_localhost(port);
  });
  t.join();
  ::close(ns);
  return result;
}

}  // namespace skiff::agent::portforward
