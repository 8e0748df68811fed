// The in-process client transport: components inside `skiff server` (controllers, the
// scheduler, the node agent) reach the API through the very same handlers as remote clients
// (validation, defaulting, admission, watch cache), without sockets or TLS.
//
// Thread-safety: thread-safe. round_trip() blocks until the handler has answered, so it must
// not be called from one of the server's io_context threads.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "apiserver/http.h"
#include "client/client.h"

namespace skiff::apiserver {

class LocalTransport final : public client::Transport {
 public:
  // Requests run on `workers` (round-robin) as `user`.
  LocalTransport(std::vector<asio::io_context*> workers, Handler handler, User user);
  ~LocalTransport() override;

  Result<client::Reply> round_trip(const client::Request& req) override;
  Result<std::unique_ptr<client::Watch>> stream(
      const client::Request& req, std::function<void(std::string_view)> on_data,
      std::function<void(const Status&)> on_end) override;
  // Watch events reach on_event as the watch cache's shared objects, never as bytes.
  Result<std::unique_ptr<client::Watch>> stream_watch(
      const client::Request& req, std::function<void(std::string_view)> on_data,
      std::function<void(const client::WatchEvent&)> on_event,
      std::function<void(const Status&)> on_end) override;

  struct Shared;

 private:
  asio::io_context& next_worker();

  std::vector<asio::io_context*> workers_;
  std::shared_ptr<Shared> shared_;  // the handler and user, kept alive by running requests
  std::atomic<size_t> next_{0};
};

}  // namespace skiff::apiserver
