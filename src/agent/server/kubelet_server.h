// The node's kubelet API: an HTTPS server the API server calls (as kube-apiserver calls the
// kubelet) to serve `kubectl logs`, `exec`, `attach`, `port-forward` and `top`.
//
// Endpoints (paths as the kubelet's):
//   GET /healthz                                   "ok"
//   GET /containerLogs/{ns}/{pod}/{container}      the container's log as text/plain, chunked;
//       ?follow=true  keep streaming until the container exits or the client goes
//       ?previous=true  the previous (terminated) attempt of the container
//       ?tailLines=N ?sinceSeconds=N ?sinceTime=RFC3339 ?timestamps=true ?limitBytes=N
//   GET /exec/{ns}/{pod}/{container}?command=..&command=..&stdin&stdout&stderr&tty
//   GET /attach/{ns}/{pod}/{container}?stdin&stdout&stderr&tty
//       WebSocket upgrade with subprotocol v5.channel.k8s.io: binary messages whose first
//       byte is the channel (0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize
//       {"Width":w,"Height":h}); [0xFF, channel] closes a stream (the client's [0xFF, 0] is
//       EOF on stdin). The session ends with a metav1.Status on channel 3 — Success, or
//       Failure/NonZeroExitCode with the cause ExitCode=<code> — and a normal close.
//       Plain SPDY/3.1 too (older clients, client-go's SPDY executor, kubectl with
//       KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false): `Connection: Upgrade`, `Upgrade: SPDY/3.1`
//       and X-Stream-Protocol-Version v4.channel.k8s.io, v3 or v2 (the first the client lists
//       wins; none of them: 403). After the 101 the client opens one SPDY stream per
//       `streamtype` header — error, stdin, stdout, stderr, resize (JSON sizes, one a line;
//       v3 and up) — as the request's flags ask; the session starts once all are open (30 s at
//       most). When the command ends, stdout and stderr end (FIN) and the error stream carries
//       (v4) the metav1.Status JSON as on channel 3 above, or (v2, v3) the message of a
//       failure only, then FIN.
//   GET /portForward/{ns}/{pod}                    WebSocket upgrade with subprotocol
//       SPDY/3.1+portforward.k8s.io, or a plain SPDY/3.1 upgrade with
//       X-Stream-Protocol-Version portforward.k8s.io (GET or POST); relayed to ports inside
//       the pod's network namespace (agent/portforward/portforward.h). Each connection holds
//       at most about port_forward_buffer_limit bytes in each direction: it stops reading the
//       pods' sockets while that much is not yet sent to the client, and stops reading the
//       client while that much waits for pods to read it.
//   GET /stats/summary                             the kubelet summary JSON (options hook).
// Errors are plain text with the kubelet's messages: 400 for a container that is not
// running or waiting to start, 404 for an unknown pod or container, 401 without credentials.
//
// Authentication: every request must carry `Authorization: Bearer <secret>`, where <secret>
// is the cluster's join secret — the <secret> of the join token K10<ca hash>::server:<secret>
// (<data dir>/token on the server) that every agent already holds to join. The API server
// presents it on each call; anything else (no header, another scheme, a wrong secret) gets
// 401 before the path is looked at. The secret is compared in constant time.
//
// TLS: the server presents a self-signed serving certificate kept in options.cert_dir
// (kubelet.crt, kubelet.key; created on first start, for the node name and IP), as a kubelet
// without --tls-cert-file does; the API server does not verify it (as kube-apiserver without
// --kubelet-certificate-authority), the bearer secret is what authenticates the caller.
//
// Threading: one I/O thread runs every connection; blocking work (runc, file reads) runs on
// a small pool, and each followed log on its own thread. start()/stop() are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace skiff::agent::runtime {
class ContainerRuntime;
struct ContainerStatus;
}  // namespace skiff::agent::runtime

namespace skiff::agent::server {

// The runtime container a request is about.
struct ContainerTarget {
  std::string id;        // the runtime's container id
  std::string log_path;  // its CRI log file
  bool running = false;  // running now (a followed log ends once it is not)
  bool tty = false;      // the container has a terminal (spec tty)
  bool stdin = false;    // the container has a stdin (spec stdin)
};

struct KubeletServerOptions {
  std::string address = "0.0.0.0";
  unsigned port = 10250;  // 0: an ephemeral port (see KubeletServer::port())
  // REQUIRED: where the serving certificate and key are kept (created when missing).
  std::string cert_dir;
  std::string node_name;  // the certificate's subject and DNS name
  std::string node_ip;    // the certificate's IP name
  // REQUIRED: the bearer secret callers must present.
  std::string secret;
  // REQUIRED: the node's runtime; must outlive the server.
  runtime::ContainerRuntime* runtime = nullptr;
  // REQUIRED: the container `container` of pod ns/pod, its current attempt or (previous) the
  // one before. Errors as select_container() returns them (NotFound, BadRequest).
  std::function<Result<ContainerTarget>(const std::string& ns, const std::string& pod,
                                        const std::string& container, bool previous)>
      find_container;
  // The network namespace file of pod ns/pod, for port-forward. Unset: 404.
  std::function<Result<std::string>(const std::string& ns, const std::string& pod)> pod_netns;
  // The body of GET /stats/summary. Unset: 404. Called on a worker thread (it may block).
  std::function<Result<std::string>()> stats_summary;
  int pool_threads = 4;  // threads for blocking work
  // The most one port-forward connection buffers in each direction (see above).
  size_t port_forward_buffer_limit = 1 << 20;
};

// What port-forward connections buffer (see port_forward_buffer_limit), in bytes: the most
// any one connection held, toward the client and toward pods, among those open now and those
// ended; and how many connections ended.
struct PortForwardBuffers {
  size_t peak_to_client = 0;
  size_t peak_to_pods = 0;
  int ended = 0;
};

class KubeletServer {
 public:
  // Creates (or loads) the serving certificate, binds and starts serving. Invalid for missing
  // options; Unavailable when the address cannot be bound; Internal for certificate failures.
  static Result<std::unique_ptr<KubeletServer>> start(KubeletServerOptions options);
  ~KubeletServer();  // stop()
  KubeletServer(const KubeletServer&) = delete;
  KubeletServer& operator=(const KubeletServer&) = delete;

  // The bound port.
  unsigned port() const;
  // Closes the listener and every open connection (running exec processes are killed,
  // followed logs end), then returns. Idempotent.
  void stop();

  // For tests and diagnostics. Thread-safe.
  PortForwardBuffers port_forward_buffers() const;

  struct Impl;

 private:
  explicit KubeletServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// Picks a pod's container the way the kubelet does for logs, exec and attach.
//   pod       the Pod object (spec and status are read)
//   attempts  the runtime's containers for that container name, oldest attempt first
// The current attempt is the newest; `previous` asks for the one before it. Errors, with the
// kubelet's messages:
//   NotFound    container "c" is not valid for pod "p" (not in the pod's spec)
//   BadRequest  previous terminated container "c" in pod "p" not found
//               container "c" in pod "p" is waiting to start: <reason> (no attempt yet; the
//               reason from status.containerStatuses, else ContainerCreating)
Result<ContainerTarget> select_container(const nlohmann::json& pod, const std::string& container,
                                         bool previous,
                                         const std::vector<runtime::ContainerStatus>& attempts);

}  // namespace skiff::agent::server
