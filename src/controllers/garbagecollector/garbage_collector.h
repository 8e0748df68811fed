// The garbage collector (Kubernetes 1.32 pkg/controller/garbagecollector): deletes objects
// whose owners (metadata.ownerReferences) are gone, and carries out the Foreground and Orphan
// deletion policies.
//
// The dependency graph is the informer caches themselves. The collector watches every
// resource the API serves that can be listed, watched and deleted (the preferred version of
// each group, events excepted): the built-in resources other controllers also watch through
// the shared informers, everything else (later groups, custom resources) through informers of
// its own, found by API discovery at start, whenever a CustomResourceDefinition changes and
// every kResyncPeriod; resources that disappear are dropped. Every informer indexes its
// objects by uid and by the uids of their owners, so "the object with uid U" and "the
// dependents of U" are index lookups over all of them.
//
// Work items are uids. The event handlers queue:
//  - an object that has ownerReferences, when it appears or its references change;
//  - an object marked for deletion with the `orphan` or `foregroundDeletion` finalizer, and
//    when it starts foreground deletion, its dependents;
//  - when an object goes: its dependents, and its owners waiting for their dependents;
//  - when a blocking reference (blockOwnerDeletion) is removed or unblocked: that owner.
// reconcile(uid), on the cached object:
//  - being deleted with `orphan`: removes the owner's reference from every dependent, then
//    the finalizer;
//  - being deleted with `foregroundDeletion`: once no dependent blocks it (a reference with
//    blockOwnerDeletion), removes the finalizer (the server then deletes it); until then it
//    queues those dependents;
//  - otherwise it classifies each owner reference: solid (the owner exists), dangling (it
//    does not: not found, another uid at that name, or seen deleted) or waiting (the owner is
//    being deleted in the foreground). An owner found in the caches with matching kind, name
//    and namespace counts as existing; any other is looked up on the server. With a solid
//    owner the dangling and waiting references are removed; with none, the object is deleted
//    (Foreground when it has dependents and an owner waits for it, else by its own
//    finalizers, Background by default), with uid and resourceVersion preconditions.
// Writes are JSON patches guarded by "test" operations on the uid and the entries they
// change, so they never undo concurrent changes; a stale cache makes them fail and the item
// is retried on a fresh read. A cluster-scoped object that names a namespaced owner is left
// alone, with a Warning event OwnerRefInvalidNamespace.
//
// Thread-safe: reconcile runs on several workers at once (for different keys).
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "controllers/framework.h"

namespace skiff::controllers::garbagecollector {

using nlohmann::json;

inline constexpr std::string_view kOrphanFinalizer = "orphan";
inline constexpr std::string_view kForegroundFinalizer = "foregroundDeletion";
// The work item that rediscovers the served resources.
inline constexpr std::string_view kResyncKey = "resync";
inline constexpr std::chrono::seconds kResyncPeriod{30};

// A JSON patch (RFC 6902) removing the ownerReferences whose uid is in `owner_uids` from
// `obj`, guarded by tests of obj's uid and of each removed entry; the whole field goes when no
// reference is left. nullopt when obj has none of them.
std::optional<std::string> remove_owner_references_patch(const json& obj,
                                                         const std::set<std::string>& owner_uids);
// A JSON patch removing `finalizer` from metadata.finalizers (the field, if it was the last),
// guarded likewise; nullopt when obj does not have it.
std::optional<std::string> remove_finalizer_patch(const json& obj, std::string_view finalizer);
// A JSON patch setting blockOwnerDeletion to false on every ownerReference that has it true;
// nullopt when none has.
std::optional<std::string> unblock_owner_references_patch(const json& obj);

class GarbageCollector : public Controller {
 public:
  explicit GarbageCollector(ControllerContext& ctx);
  ~GarbageCollector() override;

  std::string name() const override { return "garbagecollector"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;
  int workers() const override { return 4; }

  // For tests and logs: the monitored resources as "group/version/resource", sorted.
  std::vector<std::string> monitored_resources() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::garbagecollector
