// KubeletClient: how the API server reaches a node's agent, the kubelet API of
// src/agent/server/kubelet_server.h (private to src/apiserver).
//
// Addressing: the node's Node object in the watch cache — status.addresses (InternalIP, else
// ExternalIP, else Hostname) and status.daemonEndpoints.kubeletEndpoint.Port (10250 when
// unset), as kube-apiserver's default --kubelet-preferred-address-types.
// Authentication: every request carries `Authorization: Bearer <join secret>` — the <secret>
// of the cluster's join token K10<hash>::server:<secret>, which every agent holds to join.
// TLS: the agent's self-signed serving certificate is not verified (as kube-apiserver without
// --kubelet-certificate-authority); the secret is what authenticates the API server.
//
// Thread-safety: thread-safe (it only reads the cache); a connection belongs to one coroutine.
#pragma once

#include <memory>
#include <string>

#include "apiserver/http.h"
#include "apiserver/server_context.h"
#include "common/status.h"

namespace skiff::apiserver {

struct KubeletEndpoint {
  std::string node;
  std::string host;  // an IP address (or a host name)
  unsigned port = 10250;
  // "host:port", IPv6 hosts in brackets.
  std::string address() const;
};

// One authenticated TLS connection to a node's kubelet.
struct KubeletConnection {
  KubeletConnection(asio::any_io_executor ex, asio::ssl::context& ctx) : stream(ex, ctx) {}
  Stream stream;
  beast::flat_buffer buffer;  // bytes read past what a parser consumed
  KubeletEndpoint endpoint;
};

class KubeletClient {
 public:
  explicit KubeletClient(ServerContext& ctx);
  ~KubeletClient();

  // Where node `node`'s kubelet listens. NotFound when there is no such Node; Unavailable
  // when it reports no address.
  Result<KubeletEndpoint> endpoint(const std::string& node) const;

  // Connects to the node's kubelet and completes the TLS handshake, on the calling coroutine's
  // executor. endpoint()'s errors; Unavailable ("dial tcp 10.0.0.2:10250: Connection
  // refused", ...) when it cannot be reached within 10 s.
  asio::awaitable<Result<std::unique_ptr<KubeletConnection>>> connect(std::string node);

  // The Authorization header value for requests to kubelets.
  const std::string& authorization() const { return authorization_; }

  // GET `path` (with its query) on node `node`'s kubelet and returns the body of a 200
  // answer (at most 64 MiB). Another answer is returned as a Status with the kubelet's code
  // (400 BadRequest, 404 NotFound, ...) and its text as the message; Unavailable when the
  // kubelet cannot be reached. Used for /stats/summary (metrics.k8s.io) among others.
  asio::awaitable<Result<std::string>> get(std::string node, std::string path);

 private:
  ServerContext& ctx_;
  asio::ssl::context ssl_{asio::ssl::context::tls_client};
  std::string authorization_;
};

// The Status for a kubelet's non-2xx answer: its code mapped (400 BadRequest, 404 NotFound,
// 409 Conflict, 503 Unavailable, else Internal) and its text body as the message.
Status kubelet_error(unsigned http_status, const std::string& body);

}  // namespace skiff::apiserver
