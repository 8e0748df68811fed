// Bearer-token auth against a real registry: docker-registry configured for token auth, and a
// small token server in the test that issues RS256 JWTs (x5c: a self-signed certificate the
// registry trusts) to clients presenting the right Basic credentials.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <thread>

#include "agent/images/store.h"
#include "common/base64.h"
#include "test_image.h"

namespace skiff::agent::images {
namespace {

using testing::read_all;
using testing::run;
using testing::TempDir;
using testing::write_all;

// Serves GET /token?service=..&scope=repository:NAME:ACTIONS on a loopback port.
class TokenServer {
 public:
  TokenServer(std::string dir, std::string user, std::string password)
      : dir_(std::move(dir)), basic_("Basic " + base64_encode(user + ":" + password)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] { serve(); });
  }
  ~TokenServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int issued() const { return issued_; }
  int refused() const { return refused_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      std::string response = answer(req);
      ::send(c, response.data(), response.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  static std::string url_decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
        i += 2;
      } else {
        out.push_back(s[i] == '+' ? ' ' : s[i]);
      }
    }
    return out;
  }

  std::string answer(const std::string& req) {
    auto reply = [](int code, const std::string& body) {
      return "HTTP/1.1 " + std::to_string(code) + (code == 200 ? " OK" : " Unauthorized") +
             "\r\nContent-Type: application/json\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    };
    if (req.find("\r\nAuthorization: " + basic_ + "\r\n") == std::string::npos) {
      ++refused_;
      return reply(401, R"({"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]})");
    }
    std::string target = req.substr(req.find(' ') + 1);
    target = target.substr(0, target.find(' '));
    std::string scope;
    if (size_t p = target.find("scope="); p != std::string::npos) {
      scope = url_decode(target.substr(p + 6, target.find('&', p) - p - 6));
    }
    nlohmann::json access = nlohmann::json::array();
    if (!scope.empty()) {  // repository:NAME:pull,push
      size_t first = scope.find(':'), last = scope.rfind(':');
      nlohmann::json actions = nlohmann::json::array();
      std::string list = scope.substr(last + 1);
      for (size_t i = 0; i <= list.size();) {
        size_t j = list.find(',', i);
        if (j == std::string::npos) j = list.size();
        actions.push_back(list.substr(i, j - i));
        i = j + 1;
      }
      access.push_back({{"type", scope.substr(0, first)},
                        {"name", scope.substr(first + 1, last - first - 1)},
                        {"actions", actions}});
    }
    ++issued_;
    return reply(200, nlohmann::json{{"token", jwt(access)}}.dump());
  }

  std::string jwt(const nlohmann::json& access) {
    std::string pem = read_all(dir_ + "/cert.pem");
    std::string der_b64;
    for (size_t p = pem.find('\n') + 1; p < pem.size() && pem.compare(p, 5, "-----") != 0;) {
      size_t e = pem.find('\n', p);
      der_b64 += pem.substr(p, e - p);
      p = e + 1;
    }
    long now = static_cast<long>(std::time(nullptr));
    nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"x5c", {der_b64}}};
    nlohmann::json claims = {{"iss", "skiff-test-issuer"},
                             {"sub", "skiff"},
                             {"aud", "skiff-test"},
                             {"exp", now + 600},
                             {"nbf", now - 60},
                             {"iat", now},
                             {"jti", std::to_string(now) + std::to_string(issued_)},
                             {"access", access}};
    std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
    std::string in = dir_ + "/jwt-input", sig = dir_ + "/jwt-sig";
    write_all(in, input);
    run("openssl dgst -sha256 -sign " + dir_ + "/key.pem -out " + sig + " " + in);
    return input + "." + base64url_encode(read_all(sig));
  }

  std::string dir_;
  std::string basic_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> issued_{0}, refused_{0};
  std::thread thread_;
};

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

TEST(RegistryTokenAuth, PullsWithABearerTokenFromTheChallengedRealm) {
  for (const char* p :
       {"/usr/bin/docker-registry", "/usr/bin/skopeo", "/usr/bin/openssl", "/bin/busybox"}) {
    if (::access(p, X_OK) != 0) GTEST_SKIP() << p << " is not installed";
  }
  TempDir tmp;
  const std::string dir = tmp.path();
  std::string out;
  ASSERT_EQ(run("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=skiff-test-token"
                " -keyout " +
                    dir + "/key.pem -out " + dir + "/cert.pem",
                &out),
            0)
      << out;
  TokenServer tokens(dir, "skiff", "s3cret");
  int port = free_port();
  write_all(dir + "/config.yml",
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: " +
                dir + "/storage\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port) +
                "\nauth:\n  token:\n    realm: http://127.0.0.1:" + std::to_string(tokens.port()) +
                "/token\n    service: skiff-test\n    issuer: skiff-test-issuer\n"
                "    rootcertbundle: " +
                dir + "/cert.pem\n");
  pid_t pid = ::fork();
  if (pid == 0) {
    int log = ::open((dir + "/registry.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execl("/usr/bin/docker-registry", "docker-registry", "serve", (dir + "/config.yml").c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  struct Kill {
    pid_t pid;
    ~Kill() {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  } kill_registry{pid};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!port_open(port) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(port_open(port)) << read_all(dir + "/registry.log");

  auto image = testing::busybox_image(dir);
  image.write_oci_layout(dir + "/oci", "1");
  const std::string host = "127.0.0.1:" + std::to_string(port);
  write_all(dir + "/policy.json", R"({"default":[{"type":"insecureAcceptAnything"}]})");
  ASSERT_EQ(run("skopeo --policy " + dir +
                    "/policy.json copy --quiet --preserve-digests "
                    "--dest-tls-verify=false --dest-creds skiff:s3cret oci:" +
                    dir + "/oci:1 docker://" + host + "/test/busybox:1",
                &out),
            0)
      << out << read_all(dir + "/registry.log");

  auto store = ImageStore::open(dir + "/node");
  ASSERT_TRUE(store.ok());
  const std::string ref = host + "/test/busybox:1";

  int refused_before = tokens.refused();
  auto anonymous = (*store)->pull(ref, {});
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.status().code(), StatusCode::kUnauthorized);
  EXPECT_GT(tokens.refused(), refused_before) << "the client went to the token realm";

  PullOptions wrong;
  wrong.credentials = RegistryCredentials{"skiff", "nope", "", ""};
  auto denied = (*store)->pull(ref, wrong);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), StatusCode::kUnauthorized);
  EXPECT_NE(denied.status().message().find("bad credentials"), std::string::npos)
      << denied.status().message();

  PullOptions right;
  right.credentials = RegistryCredentials{"skiff", "s3cret", "", ""};
  int issued_before = tokens.issued();
  auto img = (*store)->pull(ref, right);
  ASSERT_TRUE(img.ok()) << img.status().to_string() << read_all(dir + "/registry.log");
  EXPECT_EQ(img->id, image.config.digest());
  EXPECT_EQ(tokens.issued() - issued_before, 1) << "one token serves the whole pull";
}

}  // namespace
}  // namespace skiff::agent::images
