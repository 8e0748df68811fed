#include "agent/portforward/portforward.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "agent/portforward/spdy.h"
#include "unit/agent/portforward/test_spdy_client.h"

namespace skiff::agent::portforward {
namespace {

using testing::TestSpdyClient;

std::string pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A TCP server on 127.0.0.1 (inside a network namespace when `netns_path` is given) that
// either echoes every connection until EOF, or sends `blast_bytes` of pattern(…, 7) and
// closes.
class TcpTestServer {
 public:
  explicit TcpTestServer(const std::string& netns_path = "", size_t blast_bytes = 0)
      : blast_bytes_(blast_bytes) {
    std::thread t([&] {
      if (!netns_path.empty()) {
        int ns = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
        if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) return;
        ::close(ns);
      }
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in sin{};
      sin.sin_family = AF_INET;
      sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof(sin);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), len) != 0 || ::listen(fd, 16) != 0 ||
          ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
        ::close(fd);
        return;
      }
      listen_fd_ = fd;
      port_ = ntohs(sin.sin_port);
    });
    t.join();
    if (listen_fd_ >= 0) accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~TcpTestServer() {
    if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
    if (accept_thread_.joinable()) accept_thread_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
    for (int fd : conns_) ::close(fd);
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  bool ok() const { return listen_fd_ >= 0; }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }

 private:
  void accept_loop() {
    while (true) {
      int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      accepted_.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu_);
      conns_.push_back(c);
      workers_.emplace_back([this, c] { serve(c); });
    }
  }

  void serve(int c) {
    if (blast_bytes_ > 0) {
      std::string data = pattern(blast_bytes_, 7);
      std::string_view rest = data;
      while (!rest.empty()) {
        ssize_t n = ::send(c, rest.data(), rest.size(), MSG_NOSIGNAL);
        if (n <= 0) break;
        rest.remove_prefix(static_cast<size_t>(n));
      }
      ::shutdown(c, SHUT_WR);
      return;
    }
    char buf[16384];
    while (true) {
      ssize_t n = ::recv(c, buf, sizeof(buf), 0);
      if (n <= 0) break;
      std::string_view rest(buf, static_cast<size_t>(n));
      while (!rest.empty()) {
        ssize_t w = ::send(c, rest.data(), rest.size(), MSG_NOSIGNAL);
        if (w <= 0) return;
        rest.remove_prefix(static_cast<size_t>(w));
      }
    }
    ::shutdown(c, SHUT_WR);
  }

  size_t blast_bytes_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> workers_;
};

// A port on 127.0.0.1 where nothing listens.
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sin);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sin), len);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  ::close(fd);
  return ntohs(sin.sin_port);
}

Session::DialFn localhost_dialer() {
  return [](uint16_t port) { return dial_localhost(port); };
}

TEST(PortForwardSession, EchoesThroughTheDataStreamAndClosesBothStreams) {
  TcpTestServer server;
  ASSERT_TRUE(server.ok());
  TestSpdyClient client(localhost_dialer(), /*flow_control=*/false);
  uint32_t data = client.open_pair(server.port(), "0");
  uint32_t error = data - 2;
  client.send(data, "hello, pod");
  ASSERT_TRUE(client.wait_data_size(data, 10));
  EXPECT_EQ(client.stream(data).data, "hello, pod");
  EXPECT_TRUE(client.stream(data).replied);
  EXPECT_TRUE(client.stream(error).replied);
  EXPECT_EQ(client.session().open_connections(), 1u);

  // The client's FIN reaches the pod as EOF; the pod's EOF comes back as FIN, and the
  // error stream ends empty.
  client.send_fin(data);
  ASSERT_TRUE(client.wait_fin(data));
  ASSERT_TRUE(client.wait_fin(error));
  EXPECT_FALSE(client.stream(data).reset);
  EXPECT_EQ(client.stream(error).data, "");
  EXPECT_TRUE(client.wait_until([&] { return client.session().open_connections() == 0; }));
  EXPECT_EQ(client.decode_error(), "");
  EXPECT_FALSE(client.session().finished());
}

TEST(PortForwardSession, LargeTransfersBothWaysHonourFlowControl) {
  TcpTestServer server;
  ASSERT_TRUE(server.ok());
  TestSpdyClient client(localhost_dialer(), /*flow_control=*/true);
  uint32_t data = client.open_pair(server.port(), "0");
  std::string payload = pattern(3 * 1024 * 1024 + 123, 1);
  std::thread sender([&] { client.send(data, payload, /*fin=*/true); });
  bool done = client.wait_fin(data);
  sender.join();
  ASSERT_TRUE(done);
  TestSpdyClient::Stream s = client.stream(data);
  EXPECT_EQ(s.data.size(), payload.size());
  EXPECT_TRUE(s.data == payload);
  EXPECT_EQ(client.window_violations(), 0);
  EXPECT_EQ(client.decode_error(), "");
}

TEST(PortForwardSession, LargeDownloadWorksForClientsWithoutFlowControl) {
  // kubectl's SPDY library neither sends WINDOW_UPDATE nor limits itself to windows.
  const size_t kSize = 3 * 1024 * 1024;
  TcpTestServer server("", kSize);
  ASSERT_TRUE(server.ok());
  TestSpdyClient client(localhost_dialer(), /*flow_control=*/false);
  uint32_t data = client.open_pair(server.port(), "0");
  ASSERT_TRUE(client.wait_fin(data));
  TestSpdyClient::Stream s = client.stream(data);
  EXPECT_EQ(s.data.size(), kSize);
  EXPECT_TRUE(s.data == pattern(kSize, 7));
  // As kubectl does once the pod side ended: reset the data stream, then read the error
  // stream to its end.
  client.send_rst(data);
  ASSERT_TRUE(client.wait_fin(data - 2));
  EXPECT_EQ(client.stream(data - 2).data, "");
  EXPECT_TRUE(client.wait_until([&] { return client.session().open_connections() == 0; }));
}

TEST(PortForwardSession, TwoConcurrentConnectionsStayApart) {
  TcpTestServer server;
  ASSERT_TRUE(server.ok());
  TestSpdyClient client(localhost_dialer(), /*flow_control=*/true);
  uint32_t a = client.open_pair(server.port(), "0");
  uint32_t b = client.open_pair(server.port(), "1");
  std::string pa = pattern(300000, 2);
  std::string pb = pattern(200000, 3);
  std::thread ta([&] { client.send(a, pa); });
  std::thread tb([&] { client.send(b, pb); });
  ta.join();
  tb.join();
  ASSERT_TRUE(client.wait_data_size(a, pa.size()));
  ASSERT_TRUE(client.wait_data_size(b, pb.size()));
  EXPECT_TRUE(client.stream(a).data == pa);
  EXPECT_TRUE(client.stream(b).data == pb);
  EXPECT_EQ(client.session().open_connections(), 2u);
  EXPECT_EQ(server.accepted(), 2);

  // Ending one leaves the other working.
  client.send_fin(a);
  ASSERT_TRUE(client.wait_fin(a));
  client.send(b, "still here");
  ASSERT_TRUE(client.wait_data_size(b, pb.size() + 10));
  EXPECT_EQ(client.stream(b).data.substr(pb.size()), "still here");
  EXPECT_EQ(client.window_violations(), 0);
}

TEST(PortForwardSession, ConnectionRefusedIsWrittenToTheErrorStream) {
  uint16_t port = closed_port();
  TestSpdyClient client(localhost_dialer(), /*flow_control=*/false);
  uint32_t data = client.open_pair(port, "0");
  uint32_t error = data - 2;
  ASSERT_TRUE(client.wait_fin(error));
  std::string message = client.stream(error).data;
  EXPECT_NE(message.find("error forwarding port " + std::to_string(port)), std::string::npos)
      << message;
  EXPECT_NE(lower(message).find("connection refused"), std::string::npos) << message;
  ASSERT_TRUE(client.wait_fin(data));
  EXPECT_EQ(client.stream(data).data, "");
  EXPECT_EQ(client.session().open_connections(), 0u);
  // The session itself goes on: a later connection to a live port works.
  TcpTestServer server;
  ASSERT_TRUE(server.ok());
  uint32_t data2 = client.open_pair(server.port(), "1");
  client.send(data2, "again");
  ASSERT_TRUE(client.wait_data_size(data2, 5));
  EXPECT_EQ(client.stream(data2).data, "again");
}

TEST(PortForwardSession, ClientResetClosesThePodConnection) {
  TcpTestServer server;
  ASSERT_TRUE(server.ok());
  TestSpdyClient client(localhost_dialer(), /*flow_control=*/false);
  uint32_t data = client.open_pair(server.port(), "0");
  client.send(data, "x");
  ASSERT_TRUE(client.wait_data_size(data, 1));
  client.send_rst(data);
  ASSERT_TRUE(client.wait_fin(data - 2));
  EXPECT_TRUE(client.wait_until([&] { return client.session().open_connections() == 0; }));
}

TEST(PortForwardSession, DataSentBeforeTheDialIsDelivered) {
  TcpTestServer server;
  ASSERT_TRUE(server.ok());
  TestSpdyClient client(localhost_dialer(), /*flow_control=*/false);
  // Data stream and its bytes first, then the error stream: the pod is dialled only when
  // both streams exist, so the bytes wait in the session meanwhile.
  uint32_t data = client.open_pair(server.port(), "7", "early bytes");
  ASSERT_TRUE(client.wait_fin(data));
  EXPECT_EQ(client.stream(data).data, "early bytes");
}

TEST(PortForwardSession, PingsAreAnsweredAndGoAwayFinishesTheSession) {
  TestSpdyClient client(localhost_dialer(), /*flow_control=*/false);
  spdy::FrameWriter w;
  client.send_raw(w.ping(1));
  ASSERT_TRUE(client.wait_until([&] { return !client.pings().empty(); }));
  EXPECT_EQ(client.pings()[0], 1u);
  client.send_raw(w.goaway(0, spdy::GoAwayStatus::kOk));
  ASSERT_TRUE(client.wait_until([&] { return client.finished_callback(); }));
  EXPECT_TRUE(client.session().finished());
}

TEST(PortForwardSession, GoAwayWaitsForOpenConnections) {
  TcpTestServer server;
  ASSERT_TRUE(server.ok());
  TestSpdyClient client(localhost_dialer(), /*flow_control=*/false);
  uint32_t data = client.open_pair(server.port(), "0");
  client.send(data, "abc");
  ASSERT_TRUE(client.wait_data_size(data, 3));
  spdy::FrameWriter w;
  client.send_raw(w.goaway(data, spdy::GoAwayStatus::kOk));
  client.send(data, "def", /*fin=*/true);
  ASSERT_TRUE(client.wait_fin(data));
  EXPECT_EQ(client.stream(data).data, "abcdef");
  ASSERT_TRUE(client.wait_until([&] { return client.finished_callback(); }));
}

TEST(PortForwardSession, BytesThatAreNotSpdyEndTheSessionWithProtocolError) {
  TestSpdyClient client(localhost_dialer(), /*flow_control=*/false);
  client.send_raw(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12));
  ASSERT_TRUE(client.wait_until(
      [&] { return client.finished_callback() && client.goaway_status().has_value(); }));
  EXPECT_EQ(client.goaway_status(), static_cast<uint32_t>(spdy::GoAwayStatus::kProtocolError));
  EXPECT_TRUE(client.session().finished());
}

TEST(PortForwardSession, StreamsWithoutAValidPortAreRefused) {
  TestSpdyClient client(localhost_dialer(), /*flow_control=*/false);
  // open_pair with port 0 sends "port: 0", which the kubelet rejects too.
  uint32_t data = client.open_pair(0, "0");
  ASSERT_TRUE(client.wait_stream(data, [](const TestSpdyClient::Stream& s) { return s.reset; }));
  EXPECT_TRUE(client.stream(data - 2).reset);
}

TEST(PortForwardSession, CloseFromAnotherThreadStopsEverything) {
  TcpTestServer server;
  ASSERT_TRUE(server.ok());
  std::atomic<int> sends{0};
  Session session([&](std::string) { sends.fetch_add(1); }, localhost_dialer());
  spdy::FrameWriter w;
  std::string bytes = w.syn_stream(1, {{"streamtype", "error"}, {"port", "1"}, {"requestid", "0"}});
  session.on_client_bytes(bytes);
  session.close();
  EXPECT_TRUE(session.finished());
  int after = sends.load();
  session.on_client_bytes(w.ping(1));
  session.close();
  EXPECT_EQ(sends.load(), after);
}

TEST(PortForwardSession, UnsentBytesLimitBoundsWhatIsQueuedForTheClient) {
  const size_t kSize = 3 * 1024 * 1024;
  const size_t kLimit = 64 * 1024;
  TcpTestServer server("", kSize);
  ASSERT_TRUE(server.ok());
  std::mutex mu;
  size_t given = 0, confirmed = 0, max_unconfirmed = 0;
  std::string received;
  bool fin = false;
  std::string decode_error;
  spdy::FrameReader reader;
  Session session(
      [&](std::string bytes) {
        std::lock_guard<std::mutex> lock(mu);
        given += bytes.size();
        max_unconfirmed = std::max(max_unconfirmed, given - confirmed);
        reader.feed(bytes);
        while (true) {
          auto f = reader.next();
          if (!f.ok()) {
            decode_error = f.status().to_string();
            return;
          }
          if (!f->has_value()) return;
          if ((*f)->type == spdy::FrameType::kData && (*f)->stream_id == 3) {
            received += (*f)->data;
            if ((*f)->flags & spdy::kFlagFin) fin = true;
          }
        }
      },
      localhost_dialer());
  session.limit_unsent_bytes(kLimit);
  spdy::FrameWriter w;
  std::string port = std::to_string(server.port());
  // Header blocks must be compressed in the order they are sent: one zlib context.
  std::string syns = w.syn_stream(1, {{"streamtype", "error"}, {"port", port}, {"requestid", "0"}});
  syns += w.syn_stream(3, {{"streamtype", "data"}, {"port", port}, {"requestid", "0"}});
  session.on_client_bytes(syns);
  // A slow writer: what was handed over is confirmed only now and then.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    size_t delta;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (fin || !decode_error.empty()) break;
      delta = given - confirmed;
      confirmed = given;
    }
    session.bytes_sent(delta);
  }
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(decode_error, "");
  ASSERT_TRUE(fin) << "received " << received.size() << " of " << kSize << ", handed over " << given
                   << ", confirmed " << confirmed;
  EXPECT_EQ(received.size(), kSize);
  EXPECT_TRUE(received == pattern(kSize, 7));
  // At most one read of a pod socket (32 KiB and a frame header) beyond the limit.
  EXPECT_LE(max_unconfirmed, kLimit + 32 * 1024 + 64);
}

// kubectl does no flow control when it sends either: the session says when the caller must
// stop reading the client, and when it may go on.
TEST(PortForwardSession, ClientBytesLimitStopsTheCallerUntilThePodReads) {
  const size_t kLimit = 256 * 1024;
  std::atomic<int> pod_end{-1};
  Session session([](std::string) {},
                  [&](uint16_t) -> Result<int> {
                    int sv[2];
                    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
                      return Status::Internal("socketpair");
                    }
                    pod_end = sv[1];
                    return sv[0];
                  });
  std::mutex mu;
  std::condition_variable cv;
  int drained = 0;
  session.limit_client_bytes(kLimit, [&] {
    std::lock_guard<std::mutex> lock(mu);
    ++drained;
    cv.notify_all();
  });
  spdy::FrameWriter w;
  std::string syns = w.syn_stream(1, {{"streamtype", "error"}, {"port", "80"}, {"requestid", "0"}});
  syns += w.syn_stream(3, {{"streamtype", "data"}, {"port", "80"}, {"requestid", "0"}});
  EXPECT_TRUE(session.on_client_bytes(syns));
  // The pod reads nothing: the caller feeds until the session says stop.
  const std::string chunk(32 * 1024, 'x');
  size_t fed = 0;
  bool more = true;
  while (more) {
    more = session.on_client_bytes(w.data(3, chunk));
    fed += chunk.size();
    ASSERT_LT(fed, size_t{64} << 20) << "the session never asked the caller to stop";
  }
  auto held = session.buffered();
  EXPECT_GT(held.to_pods, kLimit);
  // At most the one piece that crossed the bound beyond it.
  EXPECT_LE(held.peak_to_pods, kLimit + chunk.size() + 64);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(drained, 0);
  }
  // The pod reads: the session calls back once it holds no more than the bound.
  ASSERT_GE(pod_end.load(), 0);
  std::string received;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(pod_end.load(), buf, sizeof buf)) > 0) received.append(buf, n);
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return drained > 0; }));
  }
  EXPECT_LE(session.buffered().to_pods, kLimit);
  // (Right at the bound, this may cross it again; the session goes on either way.)
  session.on_client_bytes(w.data(3, "", spdy::kFlagFin));
  reader.join();  // the session ends the pod connection's write side after the FIN
  EXPECT_EQ(received.size(), fed);
  EXPECT_EQ(received.find_first_not_of('x'), std::string::npos);
  EXPECT_LE(session.buffered().peak_to_pods, kLimit + chunk.size() + 64);
  ::close(pod_end.load());
}

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces";
    if (std::system("command -v ip >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "needs iproute2 (ip)";
    }
    std::random_device rd;
    name_ = "skiffpf-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 100000);
    ASSERT_EQ(std::system(("ip netns add " + name_).c_str()), 0);
    created_ = true;
    ASSERT_EQ(std::system(("ip -n " + name_ + " link set lo up").c_str()), 0);
    path_ = "/run/netns/" + name_;
  }
  void TearDown() override {
    if (created_) std::system(("ip netns del " + name_ + " 2>/dev/null").c_str());
  }
  std::string name_;
  std::string path_;
  bool created_ = false;
};

TEST_F(NetnsTest, ForwardsToAServerInsideThePodNetworkNamespace) {
  TcpTestServer server(path_);
  ASSERT_TRUE(server.ok());
  std::string path = path_;
  TestSpdyClient client([path](uint16_t port) { return dial_in_netns(path, port); },
                        /*flow_control=*/false);
  uint32_t data = client.open_pair(server.port(), "0");
  std::string payload = pattern(1500000, 9);
  client.send(data, payload, /*fin=*/true);
  ASSERT_TRUE(client.wait_fin(data));
  EXPECT_TRUE(client.stream(data).data == payload);
  EXPECT_EQ(server.accepted(), 1);
  EXPECT_EQ(client.stream(data - 2).data, "");
}

TEST_F(NetnsTest, DialInNetnsReachesOnlyThatNamespace) {
  TcpTestServer inside(path_);
  ASSERT_TRUE(inside.ok());
  // The namespace's loopback has nothing on a port the host listens on.
  TcpTestServer host;
  ASSERT_TRUE(host.ok());
  Result<int> fd = dial_in_netns(path_, host.port());
  if (fd.ok()) ::close(*fd);
  ASSERT_FALSE(fd.ok()) << "reached the host's listener from inside the namespace";
  EXPECT_EQ(fd.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(lower(fd.status().message()).find("connection refused"), std::string::npos);

  Result<int> ok = dial_in_netns(path_, inside.port());
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  ::close(*ok);
}

TEST(DialInNetns, MissingNamespaceIsNotFound) {
  Result<int> fd =
      dial_in_netns("/run/netns/skiff-no-such-namespace-" + std::to_string(::getpid()), 80);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace skiff::agent::portforward
