// Informer: a list+watch cache of one collection, shared by every consumer in a process.
//
// start() lists the collection, then watches from the list's resourceVersion; when the watch
// ends it re-watches from the last revision it saw, and when the server answers 410 Gone (the
// revision was compacted) it lists again and reconciles its cache, turning the differences
// into add/update/delete notifications. Failures are retried with capped exponential back-off.
//
// Handlers run on the informer's own thread, one at a time and in event order; they must only
// enqueue work (never block on the API). Objects handed out are the cached ones: never change
// them.
//
// Thread-safety: every method is thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/client.h"

namespace skiff::client {

struct InformerHandlers {
  std::function<void(const ObjectPtr& obj)> on_add;
  std::function<void(const ObjectPtr& old_obj, const ObjectPtr& new_obj)> on_update;
  // The last state the informer knew (an object deleted while the informer was
  // disconnected is reported after the relist).
  std::function<void(const ObjectPtr& obj)> on_delete;
};

// Values under which an object is indexed (e.g. its spec.nodeName, its owners' uids).
using IndexFn = std::function<std::vector<std::string>(const nlohmann::json& obj)>;
// Turns an object as received into the one cached and handed to the handlers (as client-go's
// SetTransform): e.g. drops fields no consumer reads, to keep the cache small.
using TransformFn = std::function<ObjectPtr(ObjectPtr obj)>;
// A TransformFn that drops metadata.managedFields, which only apply and its conflicts read
// (client-go's TransformStripManagedFields). Objects without them pass unchanged.
ObjectPtr strip_managed_fields(ObjectPtr obj);

class Informer {
 public:
  // selectors: label_selector and field_selector narrow the collection; limit is the page
  // size of lists (default 500); timeout_seconds is how long the server keeps each watch open
  // (default a random 5-10 minutes). resource_version and continue_token are ignored.
  Informer(Client& client, ResourceRef ref, ListOptions selectors = {});
  // Stops. REQUIRES: not called from one of this informer's handlers.
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Handlers added after the initial list get an on_add for every cached object first.
  void add_handlers(InformerHandlers handlers);
  // Should be called before start() (objects already cached are indexed at once). A name
  // already added keeps its first function, so consumers sharing an informer may all ask
  // for the index they need.
  void add_index(const std::string& name, IndexFn fn);
  // REQUIRES: called before start(), by the informer's only owner (a shared informer's
  // consumers would all see the transformed objects).
  void set_transform(TransformFn fn);

  void start();  // idempotent; an informer once stopped stays stopped
  // Idempotent; no handler runs after it returns. From inside a handler it returns at once
  // and no further handler runs once that one returns.
  void stop();
  // True once the first list has been delivered to the handlers.
  bool synced() const;
  bool wait_for_sync(std::chrono::milliseconds timeout) const;

  // Cached object, or null.
  ObjectPtr get(const std::string& ns, const std::string& name) const;
  // Cached objects, optionally within one namespace, in no particular order.
  std::vector<ObjectPtr> list(const std::string& ns = "") const;
  // Cached objects whose index function returned `value`; empty for an unknown index.
  std::vector<ObjectPtr> by_index(const std::string& index, const std::string& value) const;
  // The resourceVersion of the last event or list applied.
  std::string resource_version() const;
  const ResourceRef& ref() const { return ref_; }

  struct Impl;

 private:
  const ResourceRef ref_;
  std::unique_ptr<Impl> impl_;
};

// One Informer per collection, created on first use and shared.
class InformerFactory {
 public:
  explicit InformerFactory(Client& client);
  ~InformerFactory();
  // The informer for r (r.ns empty: all namespaces). Created stopped; start() starts it.
  Informer& informer(const ResourceRef& r);
  void start();  // starts every informer created so far (and later ones on creation)
  bool wait_for_sync(std::chrono::milliseconds timeout);
  void stop();
  Client& client() { return client_; }

 private:
  Client& client_;
  std::mutex mu_;
  bool started_ = false;                                        // guarded by mu_
  std::map<std::string, std::unique_ptr<Informer>> informers_;  // guarded by mu_
};

// "ns/name" (or "name" for cluster-scoped objects): the key controllers queue.
std::string object_key(const nlohmann::json& obj);
// Splits a key made by object_key into namespace and name.
void split_key(const std::string& key, std::string* ns, std::string* name);

}  // namespace skiff::client
