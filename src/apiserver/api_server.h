// ApiServer: the Kubernetes-compatible API server of `skiff server`.
//
// start() brings the parts up in order: credentials (CA, certificates, tokens), the store,
// the watch cache, the HTTPS listener; then it makes sure the built-in objects exist
// (namespaces default, kube-system, kube-public, kube-node-lease, the `kubernetes` Service,
// the cluster DNS Service kube-system/kube-dns at the tenth service address) and writes
// <data_dir>/kubeconfig.yaml and <data_dir>/port.
//
// Thread-safety: start() once; wait() and stop() from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace skiff::client {
class Transport;
}  // namespace skiff::client

namespace skiff::apiserver {

class ApiServer {
 public:
  struct Options {
    std::string data_dir = "/var/lib/skiff";
    unsigned port = 6443;  // 0 picks a free port
    std::string bind_address = "0.0.0.0";
    std::vector<std::string> tls_sans;
    std::string service_cidr = "10.43.0.0/16";
    std::string cluster_cidr = "10.42.0.0/16";
    bool disable_agent = false;
    int threads = 2;
  };

  ~ApiServer();

  // Returns the running server, or why it could not start (bad options, data dir, port).
  static Result<std::unique_ptr<ApiServer>> start(const Options& options);

  unsigned port() const;
  // A client transport that serves requests in-process, through the same handlers as remote
  // clients, authenticated as `user_name` with full rights (group system:masters).
  std::shared_ptr<client::Transport> local_transport(const std::string& user_name);
  std::string kubeconfig_path() const;
  // Blocks until stop() is called or SIGINT/SIGTERM arrives, then shuts down cleanly. On a
  // signal, before_stop runs first, while the server still serves (so that in-process
  // components using local_transport can finish, e.g. release their leases).
  void wait(const std::function<void()>& before_stop = {});
  void stop();

 private:
  ApiServer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::apiserver
