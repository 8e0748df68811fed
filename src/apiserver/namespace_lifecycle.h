// NamespaceLifecycle: what the API server does for namespaces on its own.
//   - Every namespace gets its `default` ServiceAccount.
//   - A namespace marked for deletion (Terminating) has its content deleted; once nothing is
//     left, its `kubernetes` finalizer is removed and the namespace goes away.
// Runs on the server's io_context, driven by a watch on namespaces (no polling while no
// namespace is terminating; a one-second recheck while content with finalizers remains).
//
// Thread-safety: start() and stop() from any thread.
#pragma once

#include <atomic>
#include <memory>

#include "apiserver/http.h"
#include "apiserver/server_context.h"

namespace skiff::apiserver {

class NamespaceLifecycle {
 public:
  NamespaceLifecycle(ServerContext& ctx, asio::io_context& ioc) : ctx_(ctx), ioc_(ioc) {}
  void start();
  void stop();

 private:
  asio::awaitable<void> run();
  asio::awaitable<void> ensure_default_service_account(const std::string& ns);
  // Deletes what is left in ns; returns true once the namespace itself is gone.
  asio::awaitable<bool> finalize(const std::string& ns);

  ServerContext& ctx_;
  asio::io_context& ioc_;
  std::shared_ptr<asio::steady_timer> wake_;
  std::atomic<bool> stopped_{false};
};

}  // namespace skiff::apiserver
