// RestHandler: the REST verbs on every resource (get, list, watch, create, update, patch,
// delete, deletecollection) and the subresources served by the API server itself (status,
// scale, binding, token, finalize), with Kubernetes' semantics.
//
// Thread-safety: one RestHandler serves all connections concurrently; it keeps no mutable
// state of its own.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>

#include "api/registry.h"
#include "apiserver/http.h"
#include "apiserver/request_info.h"
#include "apiserver/server_context.h"

namespace skiff::apiserver {

// What a delete asks for (metav1.DeleteOptions and its query parameters).
struct DeleteOptions {
  std::string propagation;  // Orphan, Background, Foreground or empty
  int64_t grace = -1;       // -1: the object's default
  std::string precondition_uid;
  std::string precondition_rv;
};

class RestHandler {
 public:
  explicit RestHandler(ServerContext& ctx) : ctx_(ctx) {}

  asio::awaitable<void> serve(Exchange& ex, const RequestInfo& ri,
                              std::shared_ptr<const api::ResourceDef> def);

  // Writes an object as the server itself (bootstrap objects, internal controllers), through
  // the same defaulting and validation as a client's create. AlreadyExists if present.
  asio::awaitable<Status> create_internal(const api::ResourceDef& def, nlohmann::json obj);

  struct Call;

 private:
  asio::awaitable<void> get(Call& c);
  asio::awaitable<void> list(Call& c);
  asio::awaitable<void> watch(Call& c);
  asio::awaitable<void> create(Call& c);
  asio::awaitable<void> update(Call& c);
  asio::awaitable<void> patch(Call& c);
  asio::awaitable<void> remove(Call& c);
  // Deletes (or marks for deletion) the object c addresses; the Response is what a DELETE
  // answers.
  asio::awaitable<Result<Response>> delete_object(Call& c, DeleteOptions opts);
  asio::awaitable<void> eviction(Call& c);
  asio::awaitable<void> remove_collection(Call& c);
  asio::awaitable<void> scale(Call& c);
  asio::awaitable<void> binding(Call& c);
  asio::awaitable<void> token(Call& c);
  asio::awaitable<void> review(Call& c);

  ServerContext& ctx_;
};

}  // namespace skiff::apiserver
