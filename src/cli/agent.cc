// `skiff agent`: joins a machine (or a network namespace) to a cluster as a node, as
// `k3s agent` does. The join token names the server's CA by its SHA-256; the agent downloads
// the CA from /cacerts without trusting it, checks it against that hash, and from then on
// talks to the server over verified TLS, authenticated by the token.
#include "agent/agent.h"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "apiserver/pki/pki.h"
#include "client/client.h"
#include "client/https_transport.h"
#include "common/status.h"

namespace skiff::cli {

namespace {

void agent_usage() {
  std::fprintf(stderr,
               "usage: skiff agent --server URL --token TOKEN [flags]\n\n"
               "  --server URL          the API server, https://host:port\n"
               "  --token TOKEN         the join token (<data dir>/token on the server)\n"
               "  --node-name NAME      this node's name (default: the host name)\n"
               "  --data-dir DIR        state and images (default /var/lib/skiff)\n"
               "  --bridge-name NAME    the pod bridge (default skiff0)\n"
               "  --node-ip IP          the node's InternalIP (default: the default route's)\n"
               "  --cluster-dns IP      the cluster DNS address pods use (default: the\n"
               "                        clusterIP of kube-system/kube-dns, else 10.43.0.10)\n"
               "  --cluster-cidr CIDR   the cluster's pod network (default: this node's pod CIDR)\n"
               "  --disable-kube-proxy  run no service proxy (no ClusterIP rules)\n"
               "  --disable-cluster-dns serve no cluster DNS to this node's pods\n"
               "  --kubelet-port N      the kubelet API port on the node IP (default 10250;\n"
               "                        0: any free port)\n"
               "  --eviction-hard LIST  node filesystem thresholds for DiskPressure (default\n"
               "                        nodefs.available<10%%,nodefs.inodesFree<5%%; 0%% is off)\n"
               "  --image-gc-high-threshold N  disk use %% that starts image GC (default 85;\n"
               "                        100 turns it off)\n"
               "  --image-gc-low-threshold N   disk use %% image GC frees down to (default 80)\n"
               "  --pod-max-pids N             most processes per pod (default -1: no limit)\n");
}

// "https://host:port[/...]" -> host, port.
bool split_server(const std::string& url, std::string* host, std::string* port) {
  const std::string prefix = "https://";
  if (url.rfind(prefix, 0) != 0) return false;
  std::string rest = url.substr(prefix.size());
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos) return false;
    *host = rest.substr(1, close - 1);
    *port = close + 2 <= rest.size() ? rest.substr(close + 2) : "443";
  } else {
    size_t colon = rest.rfind(':');
    *host = rest.substr(0, colon);
    *port = colon == std::string::npos ? "443" : rest.substr(colon + 1);
  }
  if (port->empty()) *port = "443";
  return !host->empty();
}

// GET /cacerts without verifying the server (the caller checks what it gets against the
// token's hash, as K3s agents do).
Result<std::string> fetch_cacerts(const std::string& server) {
  std::string host, port;
  if (!split_server(server, &host, &port)) {
    return Status::Invalid("--server " + server + ": want https://host:port");
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return Status::Internal("TLS: cannot create a context");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  BIO* bio = BIO_new_ssl_connect(ctx);
  std::string target = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
  BIO_set_conn_hostname(bio, target.c_str());
  SSL* ssl = nullptr;
  BIO_get_ssl(bio, &ssl);
  if (ssl != nullptr) SSL_set_tlsext_host_name(ssl, host.c_str());
  auto cleanup = [&] {
    BIO_free_all(bio);
    SSL_CTX_free(ctx);
  };
  if (BIO_do_connect(bio) <= 0 || BIO_do_handshake(bio) <= 0) {
    cleanup();
    return Status::Unavailable("cannot reach " + server);
  }
  std::string req = "GET /cacerts HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  if (BIO_write(bio, req.data(), static_cast<int>(req.size())) <= 0) {
    cleanup();
    return Status::Unavailable("cannot send to " + server);
  }
  std::string reply;
  char buf[4096];
  int n;
  while ((n = BIO_read(bio, buf, sizeof buf)) > 0) reply.append(buf, static_cast<size_t>(n));
  cleanup();
  size_t body = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) {
    return Status::Unavailable(server + "/cacerts did not answer 200");
  }
  std::string headers = reply.substr(0, body);
  std::string content = reply.substr(body + 4);
  for (char& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (headers.find("transfer-encoding: chunked") != std::string::npos) {
    std::string out;
    size_t pos = 0;
    while (pos < content.size()) {
      size_t eol = content.find("\r\n", pos);
      if (eol == std::string::npos) break;
      size_t len = std::strtoul(content.substr(pos, eol - pos).c_str(), nullptr, 16);
      if (len == 0) break;
      out += content.substr(eol + 2, len);
      pos = eol + 2 + len + 2;
    }
    content = out;
  }
  return content;
}

}  // namespace

int run_agent(int argc, char** argv) {
  // The allocator's settings for the agent (one arena, no per-thread caches, freed pages
  // returned at once) are chosen before main: src/malloc/malloc_conf.cc.
  std::string server, token, node_name, node_ip, cluster_dns;
  agent::AgentOptions o;
  o.data_dir = "/var/lib/skiff";
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    auto next = [&](const char* flag) -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) {
        std::fprintf(stderr, "skiff agent: %s needs a value\n", flag);
        return false;
      }
      value = argv[++i];
      return true;
    };
    if (a == "--server") {
      if (!next("--server")) return 2;
      server = value;
    } else if (a == "--token") {
      if (!next("--token")) return 2;
      token = value;
    } else if (a == "--node-name") {
      if (!next("--node-name")) return 2;
      node_name = value;
    } else if (a == "--data-dir") {
      if (!next("--data-dir")) return 2;
      o.data_dir = value;
    } else if (a == "--bridge-name") {
      if (!next("--bridge-name")) return 2;
      o.bridge_name = value;
    } else if (a == "--node-ip") {
      if (!next("--node-ip")) return 2;
      o.node_ip = value;
    } else if (a == "--eviction-hard" || a == "--image-gc-high-threshold" ||
               a == "--image-gc-low-threshold" || a == "--pod-max-pids") {
      std::string flag = a;
      if (!next(flag.c_str())) return 2;
      if (Status ds = agent::parse_node_flag(flag, value, &o); !ds.ok()) {
        std::fprintf(stderr, "skiff agent: %s: %s\n", flag.c_str(), ds.message().c_str());
        return 2;
      }
    } else if (a == "--kubelet-port") {
      if (!next("--kubelet-port")) return 2;
      o.kubelet_port = std::atoi(value.c_str());
    } else if (a == "--cluster-dns") {
      if (!next("--cluster-dns")) return 2;
      cluster_dns = value;
    } else if (a == "--cluster-cidr") {
      if (!next("--cluster-cidr")) return 2;
      o.cluster_cidr = value;
    } else if (a == "--disable-kube-proxy") {
      o.run_service_proxy = false;
    } else if (a == "--disable-cluster-dns") {
      o.run_cluster_dns = false;
    } else if (a == "-h" || a == "--help") {
      agent_usage();
      return 0;
    } else {
      std::fprintf(stderr, "skiff agent: unknown flag %s\n", a.c_str());
      agent_usage();
      return 2;
    }
  }
  if (server.empty() || token.empty()) {
    std::fprintf(stderr, "skiff agent: --server and --token are required\n");
    agent_usage();
    return 2;
  }
  if (node_name.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    node_name = host;
  }
  o.node_name = node_name;

  auto parsed = apiserver::pki::parse_join_token(token);
  if (!parsed.ok()) {
    std::fprintf(stderr, "skiff agent: --token: %s\n", parsed.status().message().c_str());
    return 2;
  }
  client::HttpsOptions ho;
  ho.server = server;
  ho.bearer_token = token;
  // The API server calls this node's kubelet API with the same secret.
  o.kubelet_secret = parsed->secret;
  ho.user_agent = "kubelet";
  if (!parsed->ca_hash.empty()) {
    auto ca = fetch_cacerts(server);
    if (!ca.ok()) {
      std::fprintf(stderr, "skiff agent: %s\n", ca.status().to_string().c_str());
      return 1;
    }
    if (!apiserver::pki::ca_matches_hash(*ca, parsed->ca_hash)) {
      std::fprintf(stderr,
                   "skiff agent: the CA of %s does not match the hash in the token; refusing "
                   "to join\n",
                   server.c_str());
      return 1;
    }
    ho.ca_pem = *ca;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto transport = client::HttpsTransport::create(ho);
  if (!transport.ok()) {
    std::fprintf(stderr, "skiff agent: %s\n", transport.status().to_string().c_str());
    return 1;
  }
  client::Client client(transport.value(), "kubelet");
  // Pods get the cluster's DNS address, which follows the server's --service-cidr.
  if (cluster_dns.empty()) {
    auto svc = client.get(client::resources::kServices.in("kube-system"), "kube-dns");
    if (svc.ok()) {
      auto spec = (*svc)->find("spec");
      if (spec != (*svc)->end() && spec->is_object()) {
        std::string ip = spec->value("clusterIP", "");
        if (!ip.empty() && ip != "None") cluster_dns = ip;
      }
    }
  }
  if (!cluster_dns.empty()) o.cluster_dns = cluster_dns;
  agent::Agent node_agent(client, o);
  Status s = node_agent.start();
  if (!s.ok()) {
    std::fprintf(stderr, "skiff agent: %s\n", s.to_string().c_str());
    return 1;
  }
  std::printf("skiff agent: node %s joined %s (pod CIDR %s)\n", node_name.c_str(), server.c_str(),
              node_agent.pod_cidr().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "skiff agent: %s, stopping (containers keep running)\n",
               sig == SIGINT ? "interrupted" : "terminated");
  node_agent.stop();
  return 0;
}

}  // namespace skiff::cli
