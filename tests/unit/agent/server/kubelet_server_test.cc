// The kubelet server against real containers (runc under conmon, a busybox rootfs built per
// test run), driven by Beast HTTPS and WebSocket clients as the API server drives it. Needs
// root, runc, conmon and busybox-static; skips with the reason otherwise.
#include "agent/server/kubelet_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "agent/portforward/spdy.h"
#include "agent/runtime/runtime.h"
#include "unit/agent/runtime/busybox_rootfs.h"

namespace skiff::agent::server {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr char kSecret[] = "s3cret-join-secret";
constexpr size_t kBufferLimit = 1 << 20;

struct HttpResult {
  unsigned status = 0;
  std::string body;
};

// What an exec/attach session delivered, per channel.
struct ChannelOutput {
  std::string out, err, status;
  bool closed = false;
};

class KubeletServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = testing::container_test_skip_reason();
    if (!skip_reason_.empty()) return;
    char tmpl[] = "/tmp/skiff-ks-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::random_device rd;
    run_tag_ = std::to_string(rd() % 100000000);
    rootfs_ = dir_ + "/image";
    testing::make_busybox_rootfs(rootfs_, {"sh", "echo", "cat", "sleep", "test", "touch", "stty",
                                           "tty", "true", "false", "seq", "head", "wc"});
  }

  static void TearDownTestSuite() {
    if (dir_.empty()) return;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    test_dir_ = dir_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(test_dir_);
    cgroup_parent_ = "/skiff-ks-" + run_tag_;
    runtime::RuntimeOptions ro;
    ro.root_dir = test_dir_ + "/state";
    auto rt = runtime::ContainerRuntime::open(ro);
    ASSERT_TRUE(rt.ok()) << rt.status().to_string();
    runtime_ = std::move(*rt);

    KubeletServerOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.cert_dir = test_dir_ + "/pki";
    o.node_name = "node-1";
    o.node_ip = "127.0.0.1";
    o.secret = kSecret;
    o.runtime = runtime_.get();
    o.find_container = [this](const std::string& ns, const std::string& pod,
                              const std::string& container,
                              bool previous) -> Result<ContainerTarget> {
      std::lock_guard<std::mutex> l(mu_);
      auto it = pods_.find(ns + "/" + pod);
      if (it == pods_.end()) return Status::NotFound("pod " + ns + "/" + pod + " not found");
      std::vector<runtime::ContainerStatus> attempts;
      for (const auto& id : containers_[ns + "/" + pod + "/" + container]) {
        auto st = runtime_->status(id);
        if (st.ok()) attempts.push_back(*st);
      }
      return select_container(it->second, container, previous, attempts);
    };
    o.stats_summary = [] { return Result<std::string>(std::string(R"({"node":{}})")); };
    // Port-forward reaches servers the test runs in its own network namespace.
    o.pod_netns = [](const std::string&, const std::string& pod) -> Result<std::string> {
      if (pod != "p") return Status::NotFound("pod " + pod + " not found");
      return std::string("/proc/self/ns/net");
    };
    o.port_forward_buffer_limit = kBufferLimit;
    auto s = KubeletServer::start(o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    server_ = std::move(*s);
  }

  void TearDown() override {
    server_.reset();
    if (runtime_) {
      auto all = runtime_->list();
      if (all.ok()) {
        for (const auto& c : *all) (void)runtime_->remove(c.id);
      }
    }
    runtime_.reset();
    for (const char* ctl :
         {"", "/cpu", "/cpuacct", "/cpuset", "/memory", "/devices", "/freezer", "/blkio", "/pids",
          "/systemd", "/net_cls", "/perf_event", "/net_prio", "/hugetlb", "/rdma", "/misc"}) {
      ::rmdir(("/sys/fs/cgroup" + std::string(ctl) + cgroup_parent_).c_str());
    }
    std::error_code ec;
    if (!test_dir_.empty()) fs::remove_all(test_dir_, ec);
  }

  // Declares pod ns/name with one container `c` (spec tty/stdin as given).
  void add_pod(const std::string& ns, const std::string& name, const std::string& c,
               bool tty = false, bool stdin = false, const std::string& waiting = "") {
    json pod = {
        {"metadata", {{"name", name}, {"namespace", ns}}},
        {"spec", {{"containers", json::array({{{"name", c}, {"tty", tty}, {"stdin", stdin}}})}}}};
    if (!waiting.empty()) {
      pod["status"]["containerStatuses"] =
          json::array({{{"name", c}, {"state", {{"waiting", {{"reason", waiting}}}}}}});
    }
    std::lock_guard<std::mutex> l(mu_);
    pods_[ns + "/" + name] = pod;
  }

  // Runs a container as attempt `attempt` of ns/pod/c; waits for it to exit when asked.
  std::string run(const std::string& pod, const std::string& c, int attempt,
                  std::vector<std::string> args, bool wait_exit, bool stdin = false,
                  bool tty = false) {
    runtime::ContainerConfig cfg;
    cfg.id = pod + "_" + c + "_" + std::to_string(attempt) + "-" + run_tag_;
    cfg.rootfs.path = rootfs_;
    cfg.args = std::move(args);
    cfg.cgroup_parent = cgroup_parent_;
    cfg.log_path = test_dir_ + "/logs/" + cfg.id + ".log";
    cfg.network = runtime::NamespaceOption::host();
    cfg.stdin = stdin;
    cfg.stdin_once = stdin;
    cfg.tty = tty;
    Status s = runtime_->create(cfg);
    EXPECT_TRUE(s.ok()) << s.to_string();
    s = runtime_->start(cfg.id);
    EXPECT_TRUE(s.ok()) << s.to_string();
    if (wait_exit) {
      auto st = runtime_->wait(cfg.id, 60s);
      EXPECT_TRUE(st.ok()) << st.status().to_string();
    }
    std::lock_guard<std::mutex> l(mu_);
    containers_["default/" + pod + "/" + c].push_back(cfg.id);
    return cfg.id;
  }

  // A TLS connection to the server (its certificate is self-signed; not verified).
  struct Conn {
    asio::io_context ioc;
    asio::ssl::context ctx{asio::ssl::context::tls_client};
    beast::ssl_stream<tcp::socket> stream{ioc, ctx};
  };
  // `receive_buffer` > 0 fixes the socket's receive buffer (no autotuning), so that a client
  // that does not read stops the server's writes soon.
  std::unique_ptr<Conn> connect(int receive_buffer = 0) {
    auto c = std::make_unique<Conn>();
    c->ctx.set_verify_mode(asio::ssl::verify_none);
    if (receive_buffer > 0) {
      auto& sock = beast::get_lowest_layer(c->stream);
      sock.open(tcp::v4());
      sock.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    }
    beast::get_lowest_layer(c->stream).connect(tcp::endpoint(
        asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server_->port())));
    c->stream.handshake(asio::ssl::stream_base::client);
    return c;
  }

  HttpResult get(const std::string& target, const std::string& token = kSecret) {
    auto c = connect();
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    http::write(c->stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(c->stream, buf, res);
    return {res.result_int(), res.body()};
  }

  // Reads a streamed (chunked) response piece by piece until `until` returns true or the
  // body ends; returns everything read.
  std::string stream_until(Conn& c, beast::flat_buffer& buf,
                           http::response_parser<http::buffer_body>& parser,
                           const std::function<bool(const std::string&)>& until) {
    std::string out;
    char piece[4096];
    while (!parser.is_done()) {
      parser.get().body().data = piece;
      parser.get().body().size = sizeof piece;
      beast::error_code ec;
      http::read_some(c.stream, buf, parser, ec);
      if (ec && ec != http::error::need_buffer) break;
      out.append(piece, sizeof piece - parser.get().body().size);
      if (until && until(out)) break;
    }
    return out;
  }

  using Ws = websocket::stream<beast::ssl_stream<tcp::socket>&>;

  // Opens an exec/attach WebSocket with the v5 channel protocol.
  std::unique_ptr<Ws> open_ws(Conn& c, const std::string& target,
                              const std::string& proto = "v5.channel.k8s.io") {
    auto ws = std::make_unique<Ws>(c.stream);
    ws->set_option(websocket::stream_base::decorator([proto](websocket::request_type& req) {
      req.set(http::field::authorization, std::string("Bearer ") + kSecret);
      req.set(http::field::sec_websocket_protocol, proto);
    }));
    websocket::response_type res;
    ws->handshake(res, "127.0.0.1", target);
    EXPECT_EQ(std::string(res[http::field::sec_websocket_protocol]), proto);
    ws->binary(true);
    return ws;
  }

  static void send(Ws& ws, uint8_t channel, const std::string& data) {
    std::string msg(1, static_cast<char>(channel));
    msg += data;
    ws.write(asio::buffer(msg));
  }

  // Reads messages into `out` until `until` holds or the server closes.
  static void read_until(Ws& ws, ChannelOutput& out,
                         const std::function<bool(const ChannelOutput&)>& until) {
    while (!out.closed && !(until && until(out))) {
      beast::flat_buffer buf;
      beast::error_code ec;
      ws.read(buf, ec);
      if (ec) {
        out.closed = true;
        break;
      }
      std::string msg = beast::buffers_to_string(buf.data());
      if (msg.empty()) continue;
      std::string data = msg.substr(1);
      switch (static_cast<uint8_t>(msg[0])) {
        case 1:
          out.out += data;
          break;
        case 2:
          out.err += data;
          break;
        case 3:
          out.status += data;
          break;
        default:
          break;
      }
    }
  }

  // A plain SPDY/3.1 connection after the upgrade, as client-go's SPDY executor opens.
  struct Spdy {
    std::unique_ptr<Conn> conn;
    unsigned status = 0;
    std::string protocol;  // the X-Stream-Protocol-Version the server chose
    std::string body;      // the answer's body when it did not switch
    portforward::spdy::FrameWriter writer;
    portforward::spdy::FrameReader reader;
    std::map<uint32_t, std::string> data;  // by stream
    std::set<uint32_t> replied, fin, reset;
    bool eof = false;

    void write(const std::string& bytes) { asio::write(conn->stream, asio::buffer(bytes)); }
    uint32_t open(uint32_t id, const portforward::spdy::HeaderBlock& headers) {
      write(writer.syn_stream(id, headers));
      return id;
    }
    // Reads frames until `until` holds or the connection ends.
    void read_until(const std::function<bool()>& until) {
      char buf[65536];
      while (!(until && until())) {
        auto f = reader.next();
        if (!f.ok()) {
          ADD_FAILURE() << f.status().to_string();
          return;
        }
        if (!f->has_value()) {
          if (eof) return;
          beast::error_code ec;
          size_t n = conn->stream.read_some(asio::buffer(buf), ec);
          if (n > 0) reader.feed(std::string_view(buf, n));
          if (ec && n == 0) eof = true;
          continue;
        }
        auto& frame = **f;
        using portforward::spdy::FrameType;
        if (frame.type == FrameType::kSynReply) replied.insert(frame.stream_id);
        if (frame.type == FrameType::kRstStream) reset.insert(frame.stream_id);
        if (frame.type == FrameType::kData) {
          data[frame.stream_id] += frame.data;
          if (frame.flags & portforward::spdy::kFlagFin) fin.insert(frame.stream_id);
        }
      }
    }
  };

  std::unique_ptr<Spdy> open_spdy(const std::string& target,
                                  const std::vector<std::string>& protocols,
                                  http::verb method = http::verb::post) {
    auto s = std::make_unique<Spdy>();
    s->conn = connect();
    http::request<http::empty_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, std::string("Bearer ") + kSecret);
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, "SPDY/3.1");
    for (const auto& p : protocols) req.insert("X-Stream-Protocol-Version", p);
    http::write(s->conn->stream, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    http::read_header(s->conn->stream, buf, parser);
    s->status = parser.get().result_int();
    if (s->status != 101) {
      http::read(s->conn->stream, buf, parser);
      s->body = parser.get().body();
      return s;
    }
    EXPECT_EQ(std::string(parser.get()[http::field::upgrade]), "SPDY/3.1");
    s->protocol = std::string(parser.get()["X-Stream-Protocol-Version"]);
    if (buf.size() > 0) s->reader.feed(beast::buffers_to_string(buf.data()));
    return s;
  }

  static inline std::string skip_reason_, dir_, rootfs_, run_tag_;
  std::string test_dir_, cgroup_parent_;
  std::unique_ptr<runtime::ContainerRuntime> runtime_;
  std::unique_ptr<KubeletServer> server_;
  std::mutex mu_;
  std::map<std::string, json> pods_;                            // guarded by mu_
  std::map<std::string, std::vector<std::string>> containers_;  // guarded by mu_
};

TEST_F(KubeletServerTest, RequestsWithoutTheSecretAreRefused) {
  EXPECT_EQ(get("/healthz", "").status, 401u);
  EXPECT_EQ(get("/healthz", "wrong").status, 401u);
  EXPECT_EQ(get("/containerLogs/default/p/c", "s3cret-join-secreT").status, 401u);
  auto ok = get("/healthz");
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.body, "ok");
}

TEST_F(KubeletServerTest, LogsHonourTailTimestampsAndLimitBytes) {
  add_pod("default", "p", "c");
  run("p", "c", 0, {"sh", "-c", "seq 1 5"}, true);
  EXPECT_EQ(get("/containerLogs/default/p/c").body, "1\n2\n3\n4\n5\n");
  EXPECT_EQ(get("/containerLogs/default/p/c?tailLines=2").body, "4\n5\n");
  EXPECT_EQ(get("/containerLogs/default/p/c?limitBytes=3").body, "1\n2");
  auto stamped = get("/containerLogs/default/p/c?timestamps=true&tailLines=1");
  EXPECT_EQ(stamped.status, 200u);
  // "2024-01-02T03:04:05.123456789Z 5\n"
  ASSERT_GT(stamped.body.size(), 22u) << stamped.body;
  EXPECT_EQ(stamped.body[4], '-');
  EXPECT_EQ(stamped.body[10], 'T');
  EXPECT_EQ(stamped.body.substr(stamped.body.size() - 3), " 5\n") << stamped.body;
  EXPECT_EQ(get("/containerLogs/default/p/c?tailLines=x").status, 400u);
  // A time far in the future selects nothing.
  EXPECT_EQ(get("/containerLogs/default/p/c?sinceTime=2099-01-01T00:00:00Z").body, "");
}

TEST_F(KubeletServerTest, FollowedLogShowsNewLinesAndEndsWhenTheContainerExits) {
  add_pod("default", "p", "c");
  std::string id = run(
      "p", "c", 0,
      {"sh", "-c", "echo first; while [ ! -f /tmp/go ]; do sleep 0.1; done; echo second"}, false);
  auto c = connect();
  http::request<http::empty_body> req{http::verb::get, "/containerLogs/default/p/c?follow=true",
                                      11};
  req.set(http::field::authorization, std::string("Bearer ") + kSecret);
  http::write(c->stream, req);
  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(c->stream, buf, parser);
  ASSERT_EQ(parser.get().result_int(), 200u);
  std::string seen = stream_until(
      *c, buf, parser, [](const std::string& s) { return s.find("first\n") != std::string::npos; });
  EXPECT_EQ(seen, "first\n");
  // The container is still running: the stream stays open until it writes and exits.
  auto touched = runtime_->exec_sync(id, {"touch", "/tmp/go"}, 30s);
  ASSERT_TRUE(touched.ok()) << touched.status().to_string();
  seen += stream_until(*c, buf, parser, nullptr);
  EXPECT_EQ(seen, "first\nsecond\n");
  EXPECT_TRUE(parser.is_done());
}

TEST_F(KubeletServerTest, PreviousServesTheEarlierAttempt) {
  add_pod("default", "p", "c");
  run("p", "c", 0, {"echo", "old"}, true);
  EXPECT_EQ(get("/containerLogs/default/p/c?previous=true").status, 400u);
  EXPECT_EQ(get("/containerLogs/default/p/c?previous=true").body,
            "previous terminated container \"c\" in pod \"p\" not found");
  run("p", "c", 1, {"echo", "new"}, true);
  EXPECT_EQ(get("/containerLogs/default/p/c").body, "new\n");
  EXPECT_EQ(get("/containerLogs/default/p/c?previous=true").body, "old\n");
}

TEST_F(KubeletServerTest, UnknownAndWaitingContainersGetTheKubeletsErrors) {
  add_pod("default", "p", "c", false, false, "ContainerCreating");
  auto waiting = get("/containerLogs/default/p/c");
  EXPECT_EQ(waiting.status, 400u);
  EXPECT_EQ(waiting.body, "container \"c\" in pod \"p\" is waiting to start: ContainerCreating");
  auto unknown = get("/containerLogs/default/p/nope");
  EXPECT_EQ(unknown.status, 404u);
  EXPECT_EQ(unknown.body, "container \"nope\" is not valid for pod \"p\"");
  EXPECT_EQ(get("/containerLogs/default/absent/c").status, 404u);
  EXPECT_EQ(get("/nothing/here").status, 404u);
}

TEST_F(KubeletServerTest, ExecStreamsOutputAndReportsTheExitCode) {
  add_pod("default", "p", "c");
  run("p", "c", 0, {"sleep", "600"}, false);
  auto c = connect();
  auto ws = open_ws(
      *c,
      "/exec/default/p/c?command=sh&command=-c&command=echo+out%3B+echo+err+%3E%262%3B+exit+3"
      "&stdout=true&stderr=true");
  ChannelOutput got;
  read_until(*ws, got, nullptr);
  EXPECT_EQ(got.out, "out\n");
  EXPECT_EQ(got.err, "err\n");
  json status = json::parse(got.status, nullptr, false);
  ASSERT_TRUE(status.is_object()) << got.status;
  EXPECT_EQ(status.value("status", ""), "Failure");
  EXPECT_EQ(status.value("reason", ""), "NonZeroExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["reason"], "ExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["message"], "3");

  auto c2 = connect();
  auto ok = open_ws(*c2, "/exec/default/p/c?command=true&stdout=true");
  ChannelOutput got2;
  read_until(*ok, got2, nullptr);
  EXPECT_EQ(json::parse(got2.status, nullptr, false).value("status", ""), "Success") << got2.status;
}

TEST_F(KubeletServerTest, ExecPassesStdinUntilTheClientClosesIt) {
  add_pod("default", "p", "c");
  run("p", "c", 0, {"sleep", "600"}, false);
  auto c = connect();
  auto ws = open_ws(*c, "/exec/default/p/c?command=cat&stdin=true&stdout=true&stderr=true");
  send(*ws, 0, "hello\n");
  ChannelOutput got;
  read_until(*ws, got, [](const ChannelOutput& o) { return o.out == "hello\n"; });
  EXPECT_EQ(got.out, "hello\n");
  send(*ws, 0, "again\n");
  ws->write(asio::buffer(std::string("\xff\x00", 2)));  // EOF on stdin
  read_until(*ws, got, nullptr);
  EXPECT_EQ(got.out, "hello\nagain\n");
  EXPECT_EQ(json::parse(got.status, nullptr, false).value("status", ""), "Success") << got.status;
}

TEST_F(KubeletServerTest, ExecWithATerminalFollowsResizes) {
  add_pod("default", "p", "c");
  run("p", "c", 0, {"sleep", "600"}, false);
  // The size sent right after the upgrade is what the process sees, however quickly it looks.
  ChannelOutput got;
  auto c = connect();
  auto ws = open_ws(*c,
                    "/exec/default/p/c?command=sh&command=-c&command=read+x%3B+stty+size%3B+"
                    "read+y%3B+stty+size%3B+tty&stdin=true&stdout=true&tty=true");
  send(*ws, 4, R"({"Width":123,"Height":45})");
  send(*ws, 0, "go\r");
  read_until(*ws, got,
             [](const ChannelOutput& o) { return o.out.find("45 123") != std::string::npos; });
  // A later resize reaches the running process too.
  send(*ws, 4, R"({"Width":200,"Height":50})");
  send(*ws, 0, "on\r");
  read_until(*ws, got, nullptr);
  EXPECT_NE(got.out.find("45 123"), std::string::npos) << got.out;
  EXPECT_NE(got.out.find("50 200"), std::string::npos) << got.out;
  EXPECT_NE(got.out.find("/dev/pts/"), std::string::npos) << got.out;
  EXPECT_EQ(json::parse(got.status, nullptr, false).value("status", ""), "Success") << got.status;
}

TEST_F(KubeletServerTest, AttachConnectsToTheContainersOwnStdio) {
  add_pod("default", "p", "c", false, true);
  std::string id = run(
      "p", "c", 0, {"sh", "-c", "while read line; do echo got:$line; echo warn:$line >&2; done"},
      false, true);
  auto c = connect();
  auto ws = open_ws(*c, "/attach/default/p/c?stdin=true&stdout=true&stderr=true");
  send(*ws, 0, "hi\n");
  ChannelOutput got;
  read_until(*ws, got, [](const ChannelOutput& o) {
    return o.out.find("got:hi") != std::string::npos && o.err.find("warn:hi") != std::string::npos;
  });
  EXPECT_EQ(got.out, "got:hi\n");
  EXPECT_EQ(got.err, "warn:hi\n");
  // Closing stdin ends `read` in the container (stdinOnce), which then exits.
  ws->write(asio::buffer(std::string("\xff\x00", 2)));
  read_until(*ws, got, nullptr);
  EXPECT_EQ(json::parse(got.status, nullptr, false).value("status", ""), "Success") << got.status;
  auto st = runtime_->wait(id, 30s);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->state, runtime::ContainerState::kExited);
}

TEST_F(KubeletServerTest, ExecNeedsARunningContainerAndTheChannelProtocol) {
  add_pod("default", "p", "c");
  run("p", "c", 0, {"true"}, true);
  auto c = connect();
  http::request<http::empty_body> req{http::verb::get, "/exec/default/p/c?command=true&stdout=true",
                                      11};
  req.set(http::field::authorization, std::string("Bearer ") + kSecret);
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::upgrade, "websocket");
  req.set(http::field::sec_websocket_version, "13");
  req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  req.set(http::field::sec_websocket_protocol, "v5.channel.k8s.io");
  http::write(c->stream, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(c->stream, buf, res);
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(res.body(), "container \"c\" in pod \"p\" is not running");

  add_pod("default", "q", "c");
  run("q", "c", 0, {"sleep", "600"}, false);
  auto c2 = connect();
  req.target("/exec/default/q/c?command=true&stdout=true");
  req.set(http::field::sec_websocket_protocol, "channel.k8s.io");
  http::write(c2->stream, req);
  beast::flat_buffer buf2;
  http::response<http::string_body> res2;
  http::read(c2->stream, buf2, res2);
  EXPECT_EQ(res2.result_int(), 400u);
}

TEST_F(KubeletServerTest, StatsSummaryComesFromTheHook) {
  auto r = get("/stats/summary");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"node":{}})");
}

// ---- plain SPDY/3.1 (client-go's SPDY executor, kubectl with the WebSocket transports off) ----

const std::vector<std::string> kKubectlProtocols = {"v5.channel.k8s.io", "v4.channel.k8s.io",
                                                    "v3.channel.k8s.io", "v2.channel.k8s.io",
                                                    "channel.k8s.io"};

TEST_F(KubeletServerTest, ExecOverSpdyReportsTheExitCodeOnTheErrorStream) {
  add_pod("default", "p", "c");
  run("p", "c", 0, {"sleep", "600"}, false);
  auto s = open_spdy(
      "/exec/default/p/c?command=sh&command=-c&command=echo+out%3B+echo+err+%3E%262%3B+exit+3"
      "&stdout=true&stderr=true",
      kKubectlProtocols);
  ASSERT_EQ(s->status, 101u) << s->body;
  EXPECT_EQ(s->protocol, "v4.channel.k8s.io");
  uint32_t error = s->open(1, {{"streamtype", "error"}});
  uint32_t out = s->open(3, {{"streamtype", "stdout"}});
  uint32_t err = s->open(5, {{"streamtype", "stderr"}});
  s->read_until([&] { return s->fin.count(error) > 0; });
  for (uint32_t id : {error, out, err}) EXPECT_TRUE(s->replied.count(id)) << id;
  EXPECT_EQ(s->data[out], "out\n");
  EXPECT_EQ(s->data[err], "err\n");
  EXPECT_TRUE(s->fin.count(out) && s->fin.count(err));
  json st = json::parse(s->data[error], nullptr, false);
  EXPECT_EQ(st.value("status", ""), "Failure") << s->data[error];
  EXPECT_EQ(st.value("reason", ""), "NonZeroExitCode");
  ASSERT_TRUE(st["details"]["causes"].is_array());
  EXPECT_EQ(st["details"]["causes"][0].value("reason", ""), "ExitCode");
  EXPECT_EQ(st["details"]["causes"][0].value("message", ""), "3");
}

TEST_F(KubeletServerTest, ExecOverSpdyPassesStdinUntilItsStreamEnds) {
  add_pod("default", "p", "c");
  run("p", "c", 0, {"sleep", "600"}, false);
  auto s = open_spdy("/exec/default/p/c?command=wc&command=-c&stdin=true&stdout=true&stderr=true",
                     kKubectlProtocols);
  ASSERT_EQ(s->status, 101u) << s->body;
  uint32_t error = s->open(1, {{"streamtype", "error"}});
  uint32_t in = s->open(3, {{"streamtype", "stdin"}});
  uint32_t out = s->open(5, {{"streamtype", "stdout"}});
  s->open(7, {{"streamtype", "stderr"}});
  // More than a SPDY window and a pipe hold: the server gives the window back as it goes.
  const size_t kSize = 512 * 1024;
  std::string chunk(16 * 1024, 'x');
  for (size_t sent = 0; sent < kSize; sent += chunk.size()) s->write(s->writer.data(in, chunk));
  s->write(s->writer.data(in, "", portforward::spdy::kFlagFin));
  s->read_until([&] { return s->fin.count(error) > 0; });
  EXPECT_NE(s->data[out].find(std::to_string(kSize)), std::string::npos) << s->data[out];
  json st = json::parse(s->data[error], nullptr, false);
  EXPECT_EQ(st.value("status", ""), "Success") << s->data[error];
}

TEST_F(KubeletServerTest, ExecOverSpdyWithATerminalTakesSizesFromTheResizeStream) {
  add_pod("default", "p", "c");
  run("p", "c", 0, {"sleep", "600"}, false);
  auto s = open_spdy(
      "/exec/default/p/c?command=sh&command=-c&command=read+x%3B+stty+size&stdin=true"
      "&stdout=true&stderr=true&tty=true",
      kKubectlProtocols);
  ASSERT_EQ(s->status, 101u) << s->body;
  uint32_t error = s->open(1, {{"streamtype", "error"}});
  uint32_t in = s->open(3, {{"streamtype", "stdin"}});
  uint32_t out = s->open(5, {{"streamtype", "stdout"}});
  uint32_t resize = s->open(7, {{"streamtype", "resize"}});
  s->write(s->writer.data(resize, "{\"Width\":100,\"Height\":30}\n"));
  s->write(s->writer.data(in, "go\r"));
  s->read_until([&] { return s->fin.count(error) > 0; });
  EXPECT_NE(s->data[out].find("30 100"), std::string::npos) << s->data[out];
  json st = json::parse(s->data[error], nullptr, false);
  EXPECT_EQ(st.value("status", ""), "Success") << s->data[error];
}

TEST_F(KubeletServerTest, ExecOverSpdyV2WritesOnlyAFailuresMessage) {
  add_pod("default", "p", "c");
  run("p", "c", 0, {"sleep", "600"}, false);
  auto s = open_spdy("/exec/default/p/c?command=sh&command=-c&command=exit+3&stdout=true",
                     {"v2.channel.k8s.io"});
  ASSERT_EQ(s->status, 101u) << s->body;
  EXPECT_EQ(s->protocol, "v2.channel.k8s.io");
  uint32_t error = s->open(1, {{"streamtype", "error"}});
  s->open(3, {{"streamtype", "stdout"}});
  s->read_until([&] { return s->fin.count(error) > 0; });
  EXPECT_NE(s->data[error].find("exit code 3"), std::string::npos) << s->data[error];
  EXPECT_EQ(s->data[error].find('{'), std::string::npos) << s->data[error];

  auto ok = open_spdy("/exec/default/p/c?command=true&stdout=true", {"v2.channel.k8s.io"});
  ASSERT_EQ(ok->status, 101u) << ok->body;
  uint32_t ok_error = ok->open(1, {{"streamtype", "error"}});
  ok->open(3, {{"streamtype", "stdout"}});
  ok->read_until([&] { return ok->fin.count(ok_error) > 0; });
  EXPECT_EQ(ok->data[ok_error], "");
}

TEST_F(KubeletServerTest, SpdyUpgradeNeedsAProtocolBothSidesSpeak) {
  add_pod("default", "p", "c");
  run("p", "c", 0, {"sleep", "600"}, false);
  auto s = open_spdy("/exec/default/p/c?command=true&stdout=true", {"channel.k8s.io"});
  EXPECT_EQ(s->status, 403u);
  EXPECT_NE(s->body.find("unable to negotiate protocol"), std::string::npos) << s->body;
  auto none = open_spdy("/exec/default/p/c?command=true&stdout=true", {});
  EXPECT_EQ(none->status, 403u);
  auto pf = open_spdy("/portForward/default/p", {"v4.channel.k8s.io"});
  EXPECT_EQ(pf->status, 403u);
}

// A server on 127.0.0.1 for one connection, served by `serve` on its own thread.
class OnePodConnection {
 public:
  explicit OnePodConnection(std::function<void(int)> serve, int receive_buffer = 0) {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (receive_buffer > 0) {
      ::setsockopt(listen_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (::bind(listen_, reinterpret_cast<sockaddr*>(&sin), len) != 0 || ::listen(listen_, 4) != 0 ||
        ::getsockname(listen_, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
      ADD_FAILURE() << "cannot listen";
      return;
    }
    port_ = ntohs(sin.sin_port);
    thread_ = std::thread([this, serve] {
      int c = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      timeval tv{60, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      serve(c);
      ::close(c);
    });
  }
  ~OnePodConnection() {
    ::shutdown(listen_, SHUT_RDWR);
    join();
    ::close(listen_);
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  std::string port() const { return std::to_string(port_); }

 private:
  int listen_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

std::string payload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7) ^ (i >> 11));
  return s;
}

bool eventually(const std::function<bool()>& cond) {
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

TEST_F(KubeletServerTest, PortForwardOverSpdyRelaysBothWays) {
  OnePodConnection pod([](int fd) {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
      std::string reply = "echo:" + std::string(buf, static_cast<size_t>(n));
      if (::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) return;
    }
  });
  auto s = open_spdy("/portForward/default/p", {"portforward.k8s.io"});
  ASSERT_EQ(s->status, 101u) << s->body;
  EXPECT_EQ(s->protocol, "portforward.k8s.io");
  uint32_t error = s->open(1, {{"streamtype", "error"}, {"port", pod.port()}, {"requestid", "0"}});
  uint32_t data = s->open(3, {{"streamtype", "data"}, {"port", pod.port()}, {"requestid", "0"}});
  s->write(s->writer.data(data, "hello"));
  s->read_until([&] { return s->data[data].find("echo:hello") != std::string::npos; });
  EXPECT_EQ(s->data[data], "echo:hello");
  s->write(s->writer.data(data, "", portforward::spdy::kFlagFin));
  s->read_until([&] { return s->fin.count(data) > 0 && s->fin.count(error) > 0; });
  EXPECT_EQ(s->data[error], "");
  // Nothing listens on port 1: the error stream says so.
  uint32_t error2 = s->open(5, {{"streamtype", "error"}, {"port", "1"}, {"requestid", "1"}});
  s->open(7, {{"streamtype", "data"}, {"port", "1"}, {"requestid", "1"}});
  s->read_until([&] { return s->fin.count(error2) > 0; });
  EXPECT_NE(s->data[error2].find("Connection refused"), std::string::npos) << s->data[error2];
}

// kubectl does no SPDY flow control: a client that reads slowly must stop the agent from
// reading the pod, not make it buffer the pod's output.
TEST_F(KubeletServerTest, PortForwardToASlowClientBuffersAtMostTheLimit) {
  const size_t kSize = 16 << 20;
  const std::string sent = payload(kSize);
  OnePodConnection pod([&](int fd) {
    std::string_view rest = sent;
    while (!rest.empty()) {
      ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      rest.remove_prefix(static_cast<size_t>(n));
    }
    ::shutdown(fd, SHUT_WR);
    char b;
    (void)::recv(fd, &b, 1, 0);
  });
  auto c = connect(64 * 1024);
  auto ws = open_ws(*c, "/portForward/default/p", "SPDY/3.1+portforward.k8s.io");
  portforward::spdy::FrameWriter w;
  ws->write(asio::buffer(
      w.syn_stream(1, {{"streamtype", "error"}, {"port", pod.port()}, {"requestid", "0"}})));
  ws->write(asio::buffer(
      w.syn_stream(3, {{"streamtype", "data"}, {"port", pod.port()}, {"requestid", "0"}})));
  // The client reads nothing until the agent holds a backlog for it.
  ASSERT_TRUE(eventually(
      [&] { return server_->port_forward_buffers().peak_to_client >= kBufferLimit / 2; }));
  portforward::spdy::FrameReader r;
  std::string got;
  bool fin = false;
  while (!fin) {
    beast::flat_buffer buf;
    beast::error_code ec;
    ws->read(buf, ec);
    ASSERT_FALSE(ec) << ec.message() << " after " << got.size() << " bytes";
    r.feed(beast::buffers_to_string(buf.data()));
    for (;;) {
      auto f = r.next();
      ASSERT_TRUE(f.ok()) << f.status().to_string();
      if (!f->has_value()) break;
      if ((*f)->type == portforward::spdy::FrameType::kData && (*f)->stream_id == 3) {
        got += (*f)->data;
        if ((*f)->flags & portforward::spdy::kFlagFin) fin = true;
      }
    }
  }
  EXPECT_EQ(got.size(), kSize);
  EXPECT_TRUE(got == sent);
  // At most one read of the pod's socket (32 KiB and a frame header) past the bound.
  auto b = server_->port_forward_buffers();
  EXPECT_GE(b.peak_to_client, kBufferLimit / 2);
  EXPECT_LE(b.peak_to_client, kBufferLimit + 64 * 1024);
}

// Likewise a pod that reads slowly must stop the agent from reading the client.
TEST_F(KubeletServerTest, PortForwardToASlowPodBuffersAtMostTheLimit) {
  const size_t kSize = 16 << 20;
  const std::string sent = payload(kSize);
  std::atomic<bool> go{false};
  std::string received;
  OnePodConnection pod(
      [&](int fd) {
        if (!eventually([&] { return go.load(); })) return;
        char buf[65536];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) received.append(buf, n);
      },
      64 * 1024);
  auto c = connect();
  auto ws = open_ws(*c, "/portForward/default/p", "SPDY/3.1+portforward.k8s.io");
  portforward::spdy::FrameWriter w;
  ws->write(asio::buffer(
      w.syn_stream(1, {{"streamtype", "error"}, {"port", pod.port()}, {"requestid", "0"}})));
  ws->write(asio::buffer(
      w.syn_stream(3, {{"streamtype", "data"}, {"port", pod.port()}, {"requestid", "0"}})));
  std::atomic<bool> written{false};
  std::thread writer([&] {
    const size_t kChunk = 32 * 1024;
    beast::error_code ec;
    for (size_t off = 0; off < kSize && !ec; off += kChunk) {
      ws->write(asio::buffer(w.data(3, std::string_view(sent).substr(off, kChunk))), ec);
    }
    if (!ec) ws->write(asio::buffer(w.data(3, "", portforward::spdy::kFlagFin)), ec);
    written = true;
  });
  bool backlog =
      eventually([&] { return server_->port_forward_buffers().peak_to_pods >= kBufferLimit / 2; });
  // The pod stays slow a while longer: an agent without a bound would take in all the client
  // sends meanwhile (the writer then finishes), one with a bound stops reading the client.
  auto slow_until = std::chrono::steady_clock::now() + 3s;
  while (!written && std::chrono::steady_clock::now() < slow_until)
    std::this_thread::sleep_for(10ms);
  go = true;
  writer.join();
  pod.join();  // the agent ends the pod connection's write side after the client's FIN
  ASSERT_TRUE(backlog);
  EXPECT_EQ(received.size(), kSize);
  EXPECT_TRUE(received == sent);
  // At most one client message (a 32 KiB frame) past the bound.
  auto b = server_->port_forward_buffers();
  EXPECT_LE(b.peak_to_pods, kBufferLimit + 64 * 1024);
}

}  // namespace
}  // namespace skiff::agent::server
