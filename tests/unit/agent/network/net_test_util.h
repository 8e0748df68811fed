// Helpers for the network layer's tests: unique names and a free pod CIDR per run, temporary
// state dirs, and sockets and hostnames seen from inside a pod's namespaces (a short-lived
// thread joins the namespace, so nothing else in the test process changes namespace).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/random.h"

namespace skiff::agent::network::testing {

inline bool running_as_root() { return ::geteuid() == 0; }
inline bool cni_plugins_installed() { return ::access("/usr/lib/cni/bridge", X_OK) == 0; }
inline bool iptables_installed() {
  return ::access("/usr/sbin/iptables-save", X_OK) == 0 ||
         ::access("/sbin/iptables-save", X_OK) == 0;
}

// 6 random lowercase letters and digits.
inline std::string unique_suffix() {
  return random_string(6, "abcdefghijklmnopqrstuvwxyz0123456789");
}

// A fresh directory under /tmp, removed (recursively) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "skiff-net-") {
    std::string tmpl = "/tmp/" + prefix + "XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    char* p = ::mkdtemp(buf.data());
    if (p != nullptr) path_ = p;
  }
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline uint32_t parse_hex_le(const std::string& hex) {
  return ntohl(static_cast<uint32_t>(std::strtoul(hex.c_str(), nullptr, 16)));
}

// True if 10.a.b.0/24 overlaps a route of this host or an address on one of its interfaces.
inline bool cidr_in_use(int a, int b) {
  uint32_t net = (10u << 24) | (static_cast<uint32_t>(a) << 16) | (static_cast<uint32_t>(b) << 8);
  uint32_t mask24 = 0xffffff00u;
  std::ifstream routes("/proc/net/route");
  std::string line;
  std::getline(routes, line);  // header
  while (std::getline(routes, line)) {
    std::istringstream f(line);
    std::string iface, dst, gw, flags, refcnt, use, metric, mask;
    if (!(f >> iface >> dst >> gw >> flags >> refcnt >> use >> metric >> mask)) continue;
    uint32_t d = parse_hex_le(dst), m = parse_hex_le(mask);
    if (m == 0) continue;  // the default route overlaps everything
    uint32_t common = m & mask24;
    if ((d & common) == (net & common)) return true;
  }
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) == 0) {
    for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
      if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
      uint32_t addr = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
      if ((addr & mask24) == net) {
        ::freeifaddrs(ifs);
        return true;
      }
    }
    ::freeifaddrs(ifs);
  }
  return false;
}

// A /24 (or a smaller block with `prefix`) in 10.128.0.0/9 that nothing on this host uses.
inline std::string free_pod_cidr(int prefix = 24) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int a = 128 + static_cast<int>(random_below(127));
    int b = static_cast<int>(random_below(256));
    if (!cidr_in_use(a, b)) {
      return "10." + std::to_string(a) + "." + std::to_string(b) + ".0/" + std::to_string(prefix);
    }
  }
  return "";
}

// Runs `fn` on a new thread that first joins the namespace at `ns_path` (of type `nstype`,
// e.g. CLONE_NEWNET). Returns false if joining failed.
template <typename Fn>
bool run_in_namespace(const std::string& ns_path, int nstype, Fn fn) {
  bool ok = false;
  std::thread t([&] {
    int fd = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    int rc = ::setns(fd, nstype);
    ::close(fd);
    if (rc != 0) return;
    fn();
    ok = true;
  });
  t.join();
  return ok;
}

// A TCP socket created inside the network namespace at `netns` (-1 on failure). Sockets keep
// the namespace they were created in, so the caller uses it from any thread.
inline int tcp_socket_in(const std::string& netns) {
  int fd = -1;
  if (!run_in_namespace(netns, CLONE_NEWNET,
                        [&] { fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); })) {
    return -1;
  }
  return fd;
}

// The hostname seen inside the UTS namespace at `uts`.
inline std::string hostname_in(const std::string& uts) {
  std::string name;
  run_in_namespace(uts, CLONE_NEWUTS, [&] {
    utsname u{};
    if (::uname(&u) == 0) name = u.nodename;
  });
  return name;
}

inline sockaddr_in ipv4_address(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// Makes `fd` listen on 0.0.0.0:`port`. Returns false on failure.
inline bool listen_on(int fd, int port) {
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = ipv4_address("0.0.0.0", port);
  return ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 && ::listen(fd, 8) == 0;
}

// Connects `fd` to ip:port, waiting at most `timeout_ms`. Returns "" on success or the error.
inline std::string connect_to(int fd, const std::string& ip, int port, int timeout_ms = 10000) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  sockaddr_in a = ipv4_address(ip, port);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  if (rc != 0 && errno != EINPROGRESS) return std::strerror(errno);
  if (rc != 0) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return "connect timed out";
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return std::strerror(err);
  }
  ::fcntl(fd, F_SETFL, flags);
  return "";
}

// Accepts one connection on listening socket `fd` within `timeout_ms` (-1 on timeout).
inline int accept_one(int fd, int timeout_ms = 10000) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return -1;
  return ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
}

// Reads until EOF or `timeout_ms` passes.
inline std::string read_all(int fd, int timeout_ms = 10000) {
  std::string out;
  char buf[512];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) break;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// The peer address (IPv4 text) of connected socket `fd`.
inline std::string peer_ip(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "";
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof(text));
  return text;
}

// A TCP port that is free on the host right now.
inline int free_host_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = ipv4_address("0.0.0.0", 0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace skiff::agent::network::testing
