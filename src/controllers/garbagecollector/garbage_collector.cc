#include "controllers/garbagecollector/garbage_collector.h"

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_set>
#include <utility>

#include "client/informer.h"
#include "common/log.h"
#include "controllers/common/controller_ref.h"
#include "controllers/common/object_meta.h"
#include "controllers/garbagecollector/discovery.h"

namespace skiff::controllers::garbagecollector {

namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;

constexpr const char* kUidIndex = "gc-uid";
constexpr const char* kOwnerIndex = "gc-owner-uid";
// How many owners confirmed absent are remembered (the oldest are forgotten first).
constexpr size_t kAbsentOwnerCacheSize = 10000;
// A CustomResourceDefinition changed: discovery is read again after this (at once as well).
constexpr std::chrono::seconds kCrdSettleDelay{1};

const client::ResourceRef& custom_resource_definitions() {
  static const client::ResourceRef r{"apiextensions.k8s.io", "v1", "customresourcedefinitions", ""};
  return r;
}

// The built-in resources the collector watches through the shared informers, which the other
// controllers use as well (so they are cached once).
struct SharedResource {
  const client::ResourceRef* ref;
  const char* kind;
  bool namespaced;
};

const SharedResource kSharedResources[] = {
    {&client::resources::kPods, "Pod", true},
    {&client::resources::kNodes, "Node", false},
    {&client::resources::kServices, "Service", true},
    {&client::resources::kEndpoints, "Endpoints", true},
    {&client::resources::kNamespaces, "Namespace", false},
    {&client::resources::kConfigMaps, "ConfigMap", true},
    {&client::resources::kSecrets, "Secret", true},
    {&client::resources::kServiceAccounts, "ServiceAccount", true},
    {&client::resources::kPersistentVolumeClaims, "PersistentVolumeClaim", true},
    {&client::resources::kDeployments, "Deployment", true},
    {&client::resources::kReplicaSets, "ReplicaSet", true},
    {&client::resources::kDaemonSets, "DaemonSet", true},
    {&client::resources::kStatefulSets, "StatefulSet", true},
    {&client::resources::kControllerRevisions, "ControllerRevision", true},
    {&client::resources::kJobs, "Job", true},
    {&client::resources::kCronJobs, "CronJob", true},
    {&client::resources::kLeases, "Lease", true},
    {&client::resources::kEndpointSlices, "EndpointSlice", true},
};

// garbagecollector's ignoredResources: events never own anything and churn a lot.
bool ignored(const ApiResource& r) {
  return r.resource == "events" && (r.group.empty() || r.group == "events.k8s.io");
}

std::vector<cc::OwnerReference> owner_refs(const json& obj) {
  std::vector<cc::OwnerReference> out;
  const json* refs = cc::find_path(obj, {"metadata", "ownerReferences"});
  if (refs == nullptr || !refs->is_array()) return out;
  for (const json& r : *refs) {
    if (auto ref = cc::OwnerReference::from_json(r)) out.push_back(std::move(*ref));
  }
  return out;
}

const cc::OwnerReference* find_ref(const std::vector<cc::OwnerReference>& refs,
                                   std::string_view uid) {
  for (const auto& r : refs) {
    if (r.uid == uid) return &r;
  }
  return nullptr;
}

std::vector<std::string> finalizers_of(const json& obj) {
  std::vector<std::string> out;
  const json* f = cc::find_path(obj, {"metadata", "finalizers"});
  if (f == nullptr || !f->is_array()) return out;
  for (const json& v : *f) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

bool has_finalizer(const json& obj, std::string_view finalizer) {
  auto f = finalizers_of(obj);
  return std::find(f.begin(), f.end(), finalizer) != f.end();
}

// isDeletingDependents: marked for deletion, waiting for its blocking dependents.
bool deleting_dependents(const json& obj) {
  return cc::being_deleted(obj) && has_finalizer(obj, kForegroundFinalizer);
}

// The collector has work on the object itself: orphaning or foreground deletion.
bool gc_finalizer_pending(const json& obj) {
  return cc::being_deleted(obj) &&
         (has_finalizer(obj, kOrphanFinalizer) || has_finalizer(obj, kForegroundFinalizer));
}

std::vector<std::string> uid_index(const json& obj) {
  std::string uid = cc::uid_of(obj);
  if (uid.empty()) return {};
  return {uid};
}

std::vector<std::string> owner_index(const json& obj) {
  std::vector<std::string> out;
  for (const auto& r : owner_refs(obj)) out.push_back(r.uid);
  return out;
}

json test_op(const std::string& path, json value) {
  return {{"op", "test"}, {"path", path}, {"value", std::move(value)}};
}

std::string group_of(std::string_view api_version) {
  std::string group;
  std::string version;
  split_api_version(api_version, &group, &version);
  return group;
}

// A bounded set of strings; the oldest entries are forgotten first. Thread-safe.
class BoundedSet {
 public:
  explicit BoundedSet(size_t capacity) : capacity_(capacity) {}
  void add(const std::string& s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!set_.insert(s).second) return;
    order_.push_back(s);
    if (order_.size() > capacity_) {
      set_.erase(order_.front());
      order_.pop_front();
    }
  }
  bool contains(const std::string& s) const {
    std::lock_guard<std::mutex> lock(mu_);
    return set_.count(s) != 0;
  }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_set<std::string> set_;  // guarded by mu_
  std::deque<std::string> order_;        // guarded by mu_
};

}  // namespace

std::optional<std::string> remove_owner_references_patch(const json& obj,
                                                         const std::set<std::string>& owner_uids) {
  const json* refs = cc::find_path(obj, {"metadata", "ownerReferences"});
  if (refs == nullptr || !refs->is_array()) return std::nullopt;
  std::vector<size_t> removed;
  for (size_t i = 0; i < refs->size(); ++i) {
    const json& r = (*refs)[i];
    if (r.is_object() && owner_uids.count(r.value("uid", "")) != 0) removed.push_back(i);
  }
  if (removed.empty()) return std::nullopt;
  json patch = json::array();
  patch.push_back(test_op("/metadata/uid", cc::uid_of(obj)));
  if (removed.size() == refs->size()) {
    patch.push_back(test_op("/metadata/ownerReferences", *refs));
    patch.push_back({{"op", "remove"}, {"path", "/metadata/ownerReferences"}});
    return patch.dump();
  }
  // From the end, so that the indices of the entries still to remove do not shift.
  for (auto it = removed.rbegin(); it != removed.rend(); ++it) {
    std::string path = "/metadata/ownerReferences/" + std::to_string(*it);
    patch.push_back(test_op(path + "/uid", (*refs)[*it]["uid"]));
    patch.push_back({{"op", "remove"}, {"path", path}});
  }
  return patch.dump();
}

std::optional<std::string> remove_finalizer_patch(const json& obj, std::string_view finalizer) {
  const json* fin = cc::find_path(obj, {"metadata", "finalizers"});
  if (fin == nullptr || !fin->is_array()) return std::nullopt;
  std::vector<size_t> removed;
  for (size_t i = 0; i < fin->size(); ++i) {
    if ((*fin)[i].is_string() && (*fin)[i].get<std::string>() == finalizer) removed.push_back(i);
  }
  if (removed.empty()) return std::nullopt;
  json patch = json::array();
  patch.push_back(test_op("/metadata/uid", cc::uid_of(obj)));
  if (removed.size() == fin->size()) {
    patch.push_back(test_op("/metadata/finalizers", *fin));
    patch.push_back({{"op", "remove"}, {"path", "/metadata/finalizers"}});
    return patch.dump();
  }
  for (auto it = removed.rbegin(); it != removed.rend(); ++it) {
    std::string path = "/metadata/finalizers/" + std::to_string(*it);
    patch.push_back(test_op(path, std::string(finalizer)));
    patch.push_back({{"op", "remove"}, {"path", path}});
  }
  return patch.dump();
}

std::optional<std::string> unblock_owner_references_patch(const json& obj) {
  const json* refs = cc::find_path(obj, {"metadata", "ownerReferences"});
  if (refs == nullptr || !refs->is_array()) return std::nullopt;
  json patch = json::array();
  patch.push_back(test_op("/metadata/uid", cc::uid_of(obj)));
  for (size_t i = 0; i < refs->size(); ++i) {
    const json& r = (*refs)[i];
    if (!r.is_object() || r.value("blockOwnerDeletion", false) != true) continue;
    std::string path = "/metadata/ownerReferences/" + std::to_string(i);
    patch.push_back(test_op(path + "/uid", r.value("uid", "")));
    patch.push_back({{"op", "replace"}, {"path", path + "/blockOwnerDeletion"}, {"value", false}});
  }
  if (patch.size() == 1) return std::nullopt;
  return patch.dump();
}

struct GarbageCollector::Impl {
  // One watched resource.
  struct Monitor {
    ApiResource resource;
    client::Informer* informer = nullptr;     // the shared one, or owned.get()
    std::unique_ptr<client::Informer> owned;  // null for a shared informer
  };

  // An object found in the caches, with the resource it belongs to.
  struct Found {
    ObjectPtr obj;
    std::shared_ptr<Monitor> monitor;
  };

  enum class OwnerState { kSolid, kDangling, kWaiting, kInvalidNamespace };

  explicit Impl(ControllerContext& c)
      : ctx(c), absent_uids(kAbsentOwnerCacheSize), absent_owners(kAbsentOwnerCacheSize) {}

  ~Impl() {
    // Owned informers call into this object: stop them before anything goes.
    std::map<std::string, std::shared_ptr<Monitor>> all;
    {
      std::lock_guard<std::mutex> lock(mu);
      all.swap(monitors);
    }
    for (auto& [key, m] : all) {
      if (m->owned) m->owned->stop();
    }
  }

  // --- the graph: lookups over every monitor's cache ----------------------------------------

  std::vector<std::shared_ptr<Monitor>> snapshot() const {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::shared_ptr<Monitor>> out;
    out.reserve(monitors.size());
    for (const auto& [key, m] : monitors) out.push_back(m);
    return out;
  }

  std::shared_ptr<const KindIndex> kind_index() const {
    std::lock_guard<std::mutex> lock(mu);
    return kinds;
  }

  std::optional<Found> find_uid(const std::string& uid) const {
    for (auto& m : snapshot()) {
      auto objs = m->informer->by_index(kUidIndex, uid);
      if (!objs.empty()) return Found{objs.front(), m};
    }
    return std::nullopt;
  }

  std::vector<Found> dependents_of(const std::string& uid) const {
    std::vector<Found> out;
    for (auto& m : snapshot()) {
      for (auto& obj : m->informer->by_index(kOwnerIndex, uid)) out.push_back(Found{obj, m});
    }
    return out;
  }

  // --- event handlers: they only queue ------------------------------------------------------

  void enqueue(const std::string& uid) {
    if (!uid.empty()) queue->add(uid);
  }

  void on_add(const json& obj) {
    if (!owner_refs(obj).empty() || gc_finalizer_pending(obj)) enqueue(cc::uid_of(obj));
  }

  void on_update(const ObjectPtr& old_obj, const ObjectPtr& cur) {
    std::string uid = cc::uid_of(*cur);
    if (uid != cc::uid_of(*old_obj)) {
      // Deleted and re-created between two events.
      on_delete(*old_obj);
      on_add(*cur);
      return;
    }
    auto old_refs = owner_refs(*old_obj);
    auto cur_refs = owner_refs(*cur);
    if (old_refs != cur_refs) {
      if (!cur_refs.empty()) enqueue(uid);
      // addUnblockedOwnersToDeleteQueue: an owner waiting for this dependent may go now.
      for (const auto& r : old_refs) {
        if (!r.block_owner_deletion) continue;
        const cc::OwnerReference* now = find_ref(cur_refs, r.uid);
        if (now == nullptr || !now->block_owner_deletion) enqueue(r.uid);
      }
    }
    if (gc_finalizer_pending(*cur)) {
      enqueue(uid);
      if (deleting_dependents(*cur) && !deleting_dependents(*old_obj)) {
        for (const Found& d : dependents_of(uid)) enqueue(cc::uid_of(*d.obj));
      }
    }
  }

  void on_delete(const json& obj) {
    std::string uid = cc::uid_of(obj);
    if (uid.empty()) return;
    absent_uids.add(uid);
    for (const Found& d : dependents_of(uid)) enqueue(cc::uid_of(*d.obj));
    for (const auto& r : owner_refs(obj)) {
      auto owner = find_uid(r.uid);
      if (owner && deleting_dependents(*owner->obj)) enqueue(r.uid);
    }
  }

  void watch(Monitor& m) {
    m.informer->add_index(kUidIndex, uid_index);
    m.informer->add_index(kOwnerIndex, owner_index);
    m.informer->add_handlers(client::InformerHandlers{
        [this](const ObjectPtr& obj) { on_add(*obj); },
        [this](const ObjectPtr& old_obj, const ObjectPtr& cur) { on_update(old_obj, cur); },
        [this](const ObjectPtr& obj) { on_delete(*obj); }});
  }

  void setup(WorkQueue& q) {
    queue = &q;
    std::vector<ApiResource> builtin;
    for (const SharedResource& s : kSharedResources) {
      auto m = std::make_shared<Monitor>();
      m->resource.group = s.ref->group;
      m->resource.version = s.ref->version;
      m->resource.resource = s.ref->resource;
      m->resource.kind = s.kind;
      m->resource.namespaced = s.namespaced;
      m->resource.preferred = true;
      m->resource.verbs = {"delete", "get", "list", "patch", "watch"};
      m->informer = &ctx.informers.informer(*s.ref);
      watch(*m);
      builtin.push_back(m->resource);
      std::lock_guard<std::mutex> lock(mu);
      monitors.emplace(m->resource.group_resource(), std::move(m));
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      kinds = std::make_shared<const KindIndex>(builtin);
    }
    // A new or removed CustomResourceDefinition changes what is served.
    auto rediscover = [this] {
      queue->add(std::string(kResyncKey));
      queue->add_after(std::string(kResyncKey), kCrdSettleDelay);
    };
    ctx.informers.informer(custom_resource_definitions())
        .add_handlers(client::InformerHandlers{
            [rediscover](const ObjectPtr&) { rediscover(); },
            [rediscover](const ObjectPtr&, const ObjectPtr&) { rediscover(); },
            [rediscover](const ObjectPtr&) { rediscover(); }});
    queue->add(std::string(kResyncKey));
  }

  // --- discovery ----------------------------------------------------------------------------

  // GarbageCollector.Sync: watches what discovery reports, drops what it no longer does.
  Status resync() {
    DiscoveryResult d = discover_resources(ctx.client);
    if (d.resources.empty()) {
      return d.error.ok() ? Status::Unavailable("discovery reported no resources") : d.error;
    }
    std::map<std::string, ApiResource> desired;
    for (const ApiResource& r : d.resources) {
      if (!r.preferred || ignored(r)) continue;
      if (!r.supports("list") || !r.supports("watch") || !r.supports("delete")) continue;
      desired.emplace(r.group_resource(), r);
    }
    auto index = std::make_shared<const KindIndex>(d.resources);
    std::vector<std::shared_ptr<Monitor>> added;
    std::vector<std::shared_ptr<Monitor>> removed;
    {
      std::lock_guard<std::mutex> lock(mu);
      kinds = index;
      for (auto it = monitors.begin(); it != monitors.end();) {
        auto want = desired.find(it->first);
        bool keep = !it->second->owned ||
                    (want != desired.end() && want->second.version == it->second->resource.version);
        // Discovery that failed in part must not drop what it could not see.
        if (!keep && d.error.ok()) {
          removed.push_back(it->second);
          it = monitors.erase(it);
        } else {
          ++it;
        }
      }
      for (const auto& [key, r] : desired) {
        if (monitors.count(key) != 0) continue;
        auto m = std::make_shared<Monitor>();
        m->resource = r;
        m->owned = std::make_unique<client::Informer>(ctx.client, r.ref());
        m->informer = m->owned.get();
        monitors.emplace(key, m);
        added.push_back(std::move(m));
      }
    }
    for (auto& m : removed) {
      SKIFF_LOG(Info) << "garbage collector: no longer monitoring " << m->resource.api_version()
                      << " " << m->resource.resource;
      m->owned->stop();
    }
    for (auto& m : added) {
      SKIFF_LOG(Debug) << "garbage collector: monitoring " << m->resource.api_version() << " "
                       << m->resource.resource;
      watch(*m);
      m->owned->start();
    }
    if (!d.error.ok()) {
      SKIFF_LOG(Warn) << "garbage collector: discovery: " << d.error.to_string();
    }
    queue->add_after(std::string(kResyncKey), kResyncPeriod);
    return Status::Ok();
  }

  // --- owners -------------------------------------------------------------------------------

  static std::string absent_key(const cc::OwnerReference& ref, const std::string& ns) {
    return ref.uid + "|" + group_of(ref.api_version) + "|" + ref.kind + "|" + ns + "|" + ref.name;
  }

  // isDangling and classifyReferences for one reference of `item`.
  Result<OwnerState> owner_state(const Found& item, const cc::OwnerReference& ref) {
    if (absent_uids.contains(ref.uid)) return OwnerState::kDangling;
    const std::string ns = cc::namespace_of(*item.obj);
    if (auto owner = find_uid(ref.uid)) {
      const ApiResource& r = owner->monitor->resource;
      bool same = r.kind == ref.kind && r.group == group_of(ref.api_version) &&
                  cc::name_of(*owner->obj) == ref.name &&
                  (!r.namespaced || cc::namespace_of(*owner->obj) == ns);
      if (same) {
        if (ns.empty() && r.namespaced) return OwnerState::kInvalidNamespace;
        return deleting_dependents(*owner->obj) ? OwnerState::kWaiting : OwnerState::kSolid;
      }
    }
    auto index = kind_index();
    const ApiResource* r = index ? index->find(ref.api_version, ref.kind) : nullptr;
    if (r == nullptr) {
      // Perhaps a resource added since the last discovery: look again (the queue coalesces).
      queue->add(std::string(kResyncKey));
      return Status::NotFound("unable to map the owner reference to a served resource: " +
                              ref.api_version + ", Kind=" + ref.kind);
    }
    if (ns.empty() && r->namespaced) return OwnerState::kInvalidNamespace;
    std::string owner_ns = r->namespaced ? ns : "";
    std::string key = absent_key(ref, owner_ns);
    if (absent_owners.contains(key)) return OwnerState::kDangling;
    auto got = ctx.client.get(r->ref(owner_ns), ref.name);
    if (!got.ok()) {
      if (got.status().is_not_found()) {
        absent_owners.add(key);
        return OwnerState::kDangling;
      }
      return got.status();
    }
    if (cc::uid_of(**got) != ref.uid) {
      absent_owners.add(key);
      return OwnerState::kDangling;
    }
    return deleting_dependents(**got) ? OwnerState::kWaiting : OwnerState::kSolid;
  }

  // --- writes -------------------------------------------------------------------------------

  // Applies the JSON patch build(obj) makes, first to the cached object, then once more to a
  // fresh read if the cache was stale (a failed test). Nothing to change, or the object gone,
  // is OK.
  Status patch_object(const Found& item,
                      const std::function<std::optional<std::string>(const json&)>& build) {
    const client::ResourceRef ref = item.monitor->resource.ref(cc::namespace_of(*item.obj));
    const std::string name = cc::name_of(*item.obj);
    ObjectPtr obj = item.obj;
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::optional<std::string> patch = build(*obj);
      if (!patch) return Status::Ok();
      auto r = ctx.client.patch(ref, name, client::PatchType::kJson, *patch);
      if (r.ok() || r.status().is_not_found()) return Status::Ok();
      StatusCode code = r.status().code();
      if (code != StatusCode::kInvalid && code != StatusCode::kConflict) return r.status();
      if (attempt == 1) break;
      auto fresh = ctx.client.get(ref, name);
      if (!fresh.ok()) return fresh.status().is_not_found() ? Status::Ok() : fresh.status();
      if (cc::uid_of(**fresh) != cc::uid_of(*item.obj)) return Status::Ok();
      obj = *fresh;
    }
    return Status::Conflict("the object changed while it was being patched: " + name);
  }

  // deleteObject: with uid and resourceVersion preconditions; on a conflict, again without
  // the resourceVersion if the owner references did not change meanwhile.
  Status delete_object(const Found& item, const std::string& policy) {
    const json& obj = *item.obj;
    const client::ResourceRef ref = item.monitor->resource.ref(cc::namespace_of(obj));
    const std::string name = cc::name_of(obj);
    client::DeleteOptions o;
    o.propagation_policy = policy;
    o.precondition_uid = cc::uid_of(obj);
    o.precondition_resource_version = cc::resource_version_of(obj);
    SKIFF_LOG(Debug) << "garbage collector: deleting " << item.monitor->resource.kind << " "
                     << cc::key_of(obj) << " (" << policy << ")";
    auto r = ctx.client.remove(ref, name, o);
    if (r.ok() || r.status().is_not_found()) return Status::Ok();
    if (r.status().code() != StatusCode::kConflict) return r.status();
    auto live = ctx.client.get(ref, name);
    if (!live.ok()) return live.status().is_not_found() ? Status::Ok() : live.status();
    if (cc::uid_of(**live) != o.precondition_uid) return Status::Ok();
    if (owner_refs(**live) != owner_refs(obj)) {
      return Status::Conflict("the owner references of " + cc::key_of(obj) +
                              " changed; looking again");
    }
    o.precondition_resource_version.clear();
    r = ctx.client.remove(ref, name, o);
    if (r.ok() || r.status().is_not_found()) return Status::Ok();
    return r.status();
  }

  Status remove_finalizer(const Found& item, std::string_view finalizer) {
    return patch_object(
        item, [finalizer](const json& obj) { return remove_finalizer_patch(obj, finalizer); });
  }

  // --- reconcile ----------------------------------------------------------------------------

  // attemptToOrphanWorker.
  Status orphan_dependents(const Found& owner) {
    const std::string uid = cc::uid_of(*owner.obj);
    std::vector<Status> errors;
    for (const Found& d : dependents_of(uid)) {
      Status s = patch_object(
          d, [&uid](const json& obj) { return remove_owner_references_patch(obj, {uid}); });
      if (!s.ok()) errors.push_back(s);
    }
    if (!errors.empty()) return cc::aggregate(errors);
    return remove_finalizer(owner, kOrphanFinalizer);
  }

  // processDeletingDependentsItem.
  Status process_deleting_dependents(const Found& owner) {
    const std::string uid = cc::uid_of(*owner.obj);
    bool blocked = false;
    for (const Found& d : dependents_of(uid)) {
      auto refs = owner_refs(*d.obj);
      const cc::OwnerReference* ref = find_ref(refs, uid);
      if (ref == nullptr || !ref->block_owner_deletion) continue;
      blocked = true;
      if (!deleting_dependents(*d.obj)) enqueue(cc::uid_of(*d.obj));
    }
    if (blocked) return Status::Ok();
    return remove_finalizer(owner, kForegroundFinalizer);
  }

  // attemptToDeleteItem.
  Status attempt_to_delete(const Found& item) {
    const json& obj = *item.obj;
    auto refs = owner_refs(obj);
    if (refs.empty()) return Status::Ok();
    std::set<std::string> dangling;
    std::set<std::string> waiting;
    bool solid = false;
    for (const auto& ref : refs) {
      auto state = owner_state(item, ref);
      if (!state.ok()) return state.status();
      switch (*state) {
        case OwnerState::kSolid:
          solid = true;
          break;
        case OwnerState::kDangling:
          dangling.insert(ref.uid);
          break;
        case OwnerState::kWaiting:
          waiting.insert(ref.uid);
          break;
        case OwnerState::kInvalidNamespace:
          // A cluster-scoped object cannot be owned by a namespaced one; retrying cannot help.
          ctx.events.record(obj, "Warning", "OwnerRefInvalidNamespace",
                            "ownerRef [" + ref.api_version + "/" + ref.kind +
                                ", namespace: , name: " + ref.name + ", uid: " + ref.uid +
                                "] does not exist in namespace \"\"");
          return Status::Ok();
      }
    }
    if (solid) {
      if (dangling.empty() && waiting.empty()) return Status::Ok();
      // The waiting references go too, or their owners would wait for this object forever.
      std::set<std::string> gone = dangling;
      gone.insert(waiting.begin(), waiting.end());
      return patch_object(item,
                          [gone](const json& o) { return remove_owner_references_patch(o, gone); });
    }
    const std::string uid = cc::uid_of(obj);
    if (!waiting.empty()) {
      auto deps = dependents_of(uid);
      if (!deps.empty()) {
        for (const Found& d : deps) {
          if (!deleting_dependents(*d.obj)) continue;
          // A dependent waits for its own dependents too: do not block the owners on this
          // object, lest a cycle of foreground deletions wait forever.
          Status s =
              patch_object(item, [](const json& o) { return unblock_owner_references_patch(o); });
          if (!s.ok()) return s;
          break;
        }
        return delete_object(item, "Foreground");
      }
    }
    std::string policy = "Background";
    if (has_finalizer(obj, kOrphanFinalizer)) {
      policy = "Orphan";
    } else if (has_finalizer(obj, kForegroundFinalizer)) {
      policy = "Foreground";
    }
    return delete_object(item, policy);
  }

  Status reconcile(const std::string& key) {
    if (key == kResyncKey) return resync();
    auto item = find_uid(key);
    if (!item) return Status::Ok();  // gone; its deletion queued what depended on it
    const json& obj = *item->obj;
    if (cc::being_deleted(obj)) {
      if (has_finalizer(obj, kOrphanFinalizer)) return orphan_dependents(*item);
      if (has_finalizer(obj, kForegroundFinalizer)) return process_deleting_dependents(*item);
      return Status::Ok();  // on its way out; its dependents are looked at once it is gone
    }
    return attempt_to_delete(*item);
  }

  ControllerContext& ctx;
  WorkQueue* queue = nullptr;  // set by setup()

  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<Monitor>> monitors;  // by group/resource; guarded by mu
  std::shared_ptr<const KindIndex> kinds;                    // guarded by mu

  BoundedSet absent_uids;    // objects seen deleted
  BoundedSet absent_owners;  // owner coordinates the server reported absent
};

GarbageCollector::GarbageCollector(ControllerContext& ctx) : impl_(std::make_unique<Impl>(ctx)) {}

GarbageCollector::~GarbageCollector() = default;

void GarbageCollector::setup(WorkQueue& queue) { impl_->setup(queue); }

Status GarbageCollector::reconcile(const std::string& key) { return impl_->reconcile(key); }

std::vector<std::string> GarbageCollector::monitored_resources() const {
  std::vector<std::string> out;
  for (const auto& m : impl_->snapshot()) {
    out.push_back(m->resource.group + "/" + m->resource.version + "/" + m->resource.resource);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace skiff::controllers::garbagecollector

SKIFF_REGISTER_CONTROLLER(garbagecollector, [](skiff::controllers::ControllerContext& ctx) {
  return std::make_unique<skiff::controllers::garbagecollector::GarbageCollector>(ctx);
});
