// PodProxy: the pod subresources a node's agent serves — pods/log, pods/exec, pods/attach and
// pods/portforward — proxied to the kubelet API of the pod's node, as kube-apiserver does
// (private to src/apiserver).
//
//   log          GET; the kubelet's /containerLogs answer relayed as a chunked text/plain
//                stream, flushed per piece (so `kubectl logs -f` shows lines as they come);
//                the relay ends when the kubelet's stream ends or the client goes away.
//   exec attach  GET (WebSocket: v5.channel.k8s.io, SPDY/3.1+portforward.k8s.io) or POST/GET
//   portforward  with `Upgrade: SPDY/3.1` and X-Stream-Protocol-Version (older kubectl,
//                client-go's SPDY executor); the upgrade request, with its upgrade and
//                protocol headers, is sent on to the kubelet (/exec, /attach, /portForward),
//                which chooses the protocol; once it answers 101 (relayed with its headers),
//                bytes are copied both ways unparsed until either side closes.
// Before the node is called the pod must exist (404 NotFound), the container must be one of
// the pod's (400 BadRequest "container x is not valid for pod y", or "a container name must
// be specified ..." when the pod has several and none was named) and the pod must be bound to
// a node (400). The kubelet's own refusals keep their code and message (e.g. 400 `container
// "x" in pod "y" is waiting to start: ContainerCreating`); an unreachable node gives 503.
//
// Thread-safety: one PodProxy serves all connections; it keeps no mutable state.
#pragma once

#include "apiserver/http.h"
#include "apiserver/request_info.h"
#include "apiserver/server_context.h"

namespace skiff::apiserver {

class KubeletClient;

class PodProxy {
 public:
  // Both must outlive the proxy.
  PodProxy(ServerContext& ctx, KubeletClient& kubelet) : ctx_(ctx), kubelet_(kubelet) {}

  // Whether the request is one of the subresources above.
  static bool handles(const RequestInfo& ri);

  asio::awaitable<void> serve(Exchange& ex, const RequestInfo& ri);

 private:
  asio::awaitable<void> logs(Exchange& ex, const RequestInfo& ri, std::string node,
                             std::string container);
  asio::awaitable<void> upgrade(Exchange& ex, const RequestInfo& ri, std::string node,
                                std::string kubelet_path);

  ServerContext& ctx_;
  KubeletClient& kubelet_;
};

}  // namespace skiff::apiserver
