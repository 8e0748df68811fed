// Client: how skiff's components talk to the API, the same way in-process (controllers and
// the scheduler inside `skiff server`) and over HTTPS (a remote `skiff agent`).
//
// A Client turns typed calls into Kubernetes REST requests and sends them through a Transport;
// every call goes through the full API path (authentication, validation, defaulting,
// admission), so components behave the same against a local or a remote server.
//
// Objects are nlohmann::json documents shared as ObjectPtr (std::shared_ptr<const json>):
// never change one in place; copy it first.
//
// Errors: every call returns the server's Status as a skiff Status (NotFound, Conflict,
// AlreadyExists, Invalid, Gone, ...; the message is the server's), or Unavailable when the
// server cannot be reached.
//
// Thread-safety: a Client may be used from any number of threads at once. Calls block; do not
// call them from an io_context thread of the in-process server.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace skiff::client {

using ObjectPtr = std::shared_ptr<const nlohmann::json>;

// A collection: group (empty for core), version, resource (plural), and the namespace
// (empty for cluster-scoped resources, or for all namespaces of a namespaced one).
struct ResourceRef {
  std::string group;
  std::string version;
  std::string resource;
  std::string ns;

  ResourceRef in(std::string namespace_name) const {
    ResourceRef r = *this;
    r.ns = std::move(namespace_name);
    return r;
  }
};

// Well-known resources.
namespace resources {
extern const ResourceRef kPods, kNodes, kServices, kEndpoints, kNamespaces, kEvents,
    kConfigMaps, kSecrets, kServiceAccounts, kPersistentVolumeClaims, kDeployments,
    kReplicaSets, kDaemonSets, kStatefulSets, kControllerRevisions, kJobs, kCronJobs, kLeases,
    kEndpointSlices;
}  // namespace resources

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 0;
  std::string continue_token;
  std::string resource_version;  // "" most recent; "0" any; otherwise at least this
  // Watch only:
  bool allow_bookmarks = false;
  int64_t timeout_seconds = 0;  // 0: the server's default
};

struct WriteOptions {
  std::string field_manager;  // empty: the client's default manager
  bool dry_run = false;
  bool force = false;  // server-side apply: take ownership of conflicting fields
};

enum class PatchType { kJson, kMerge, kStrategicMerge, kApply };

struct DeleteOptions {
  std::string propagation_policy;  // "", "Orphan", "Background", "Foreground"
  std::optional<int64_t> grace_period_seconds;
  std::string precondition_uid;
  std::string precondition_resource_version;
  bool dry_run = false;
};

struct ObjectList {
  std::vector<ObjectPtr> items;
  std::string resource_version;
  std::string continue_token;
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  ObjectPtr object;  // for kError, the Status object
};

// A running watch. Destroying it (or stop()) ends delivery; after stop() returns no callback
// runs any more. A Watch from Client::watch may be stopped (not destroyed) from inside its own
// on_event.
class Watch {
 public:
  virtual ~Watch() = default;
  virtual void stop() = 0;
};

// on_event runs for each event in order; on_close runs once when the stream ends for any
// reason other than stop() (server closed it, timeout, network error), with the reason.
// Both run on a thread of the transport and must not block for long.
using WatchEventFn = std::function<void(const WatchEvent&)>;
using WatchClosedFn = std::function<void(const Status&)>;

// One HTTP exchange, as the Transport sees it.
struct Request {
  std::string method;  // GET POST PUT PATCH DELETE
  std::string path;    // "/api/v1/namespaces/default/pods/web"
  std::string query;   // "labelSelector=app%3Dweb&limit=500" (already encoded), may be empty
  std::string content_type;
  std::string accept = "application/json";
  std::string body;
  std::string user_agent;  // the component sending it; empty: the transport's default
};

struct Reply {
  unsigned status = 0;
  std::string content_type;
  std::string body;
  // The body already parsed, when the transport has it without parsing (in-process): the
  // client takes it instead of parsing body. Null otherwise.
  ObjectPtr object;
};

// Moves requests to a server. Thread-safe.
class Transport {
 public:
  virtual ~Transport() = default;
  // Sends a request and waits for the whole reply; Unavailable if the server can't be reached.
  virtual Result<Reply> round_trip(const Request& req) = 0;
  // Sends a request whose reply is streamed (watch): each chunk of the body is passed to
  // on_data as it arrives (chunks are not aligned to lines). on_end runs once when the
  // stream ends (OK for a normal end) unless the returned Watch was stopped first. A reply
  // that is not 200 is delivered as its body to on_data followed by on_end with its status.
  virtual Result<std::unique_ptr<Watch>> stream(const Request& req,
                                                std::function<void(std::string_view)> on_data,
                                                std::function<void(const Status&)> on_end) = 0;
  // stream() for a watch. A transport that holds the events as objects already (in-process)
  // passes each such event to on_event instead of its bytes to on_data; everything else
  // (errors, bookmarks, a refused request) still arrives as bytes, in order with the events.
  // The default sends everything as bytes through stream().
  virtual Result<std::unique_ptr<Watch>> stream_watch(
      const Request& req, std::function<void(std::string_view)> on_data,
      std::function<void(const WatchEvent&)> on_event,
      std::function<void(const Status&)> on_end) {
    (void)on_event;
    return stream(req, std::move(on_data), std::move(on_end));
  }
};

// The skiff Status of a Kubernetes Status object (a failed reply's body, or the object of a
// watch ERROR event): the code from its reason (or, when the reason is unknown, from its
// code, else from http_status), the server's message and the field causes.
Status status_from_object(const nlohmann::json& status_object, unsigned http_status = 0);

class Client {
 public:
  // user_agent names the component ("skiff-scheduler"); it is also the default field manager.
  Client(std::shared_ptr<Transport> transport, std::string user_agent);

  Result<ObjectPtr> get(const ResourceRef& r, const std::string& name);
  Result<ObjectList> list(const ResourceRef& r, const ListOptions& o = {});
  // create() and update() send the object to r's namespace or, when r.ns is empty, to the
  // object's own metadata.namespace; update() takes the name from metadata.name (BadRequest
  // without one). The field manager is o.field_manager, else the user agent.
  Result<ObjectPtr> create(const ResourceRef& r, const nlohmann::json& obj,
                           const WriteOptions& o = {});
  // PUT of the whole object (or of its status when subresource == "status").
  Result<ObjectPtr> update(const ResourceRef& r, const nlohmann::json& obj,
                           const std::string& subresource = "", const WriteOptions& o = {});
  Result<ObjectPtr> patch(const ResourceRef& r, const std::string& name, PatchType type,
                          const std::string& body, const std::string& subresource = "",
                          const WriteOptions& o = {});
  // Returns the object as the server answered (the last state, or the object now marked for
  // deletion when finalizers or a grace period keep it).
  Result<ObjectPtr> remove(const ResourceRef& r, const std::string& name,
                           const DeleteOptions& o = {});
  // POST to a subresource: pods/binding, pods/eviction, serviceaccounts/token.
  Result<ObjectPtr> create_subresource(const ResourceRef& r, const std::string& name,
                                       const std::string& subresource,
                                       const nlohmann::json& body, const WriteOptions& o = {});
  // Watches from o.resource_version (label/field selectors, allow_bookmarks, timeout_seconds
  // apply; limit and continue_token do not). A failure the server answers at once (a bad
  // selector) arrives as on_closed with its Status; a too-old version as a kError event
  // carrying a Status with reason Expired (code Gone), as Kubernetes sends it.
  Result<std::unique_ptr<Watch>> watch(const ResourceRef& r, const ListOptions& o,
                                       WatchEventFn on_event, WatchClosedFn on_closed);

  // The REST path of a collection or an object ("/apis/apps/v1/namespaces/ns/deployments").
  static std::string path(const ResourceRef& r, const std::string& name = "",
                          const std::string& subresource = "");
  Transport& transport() { return *transport_; }
  const std::string& user_agent() const { return user_agent_; }

 private:
  Result<ObjectPtr> send(Request req);

  std::shared_ptr<Transport> transport_;
  std::string user_agent_;
};

}  // namespace skiff::client
