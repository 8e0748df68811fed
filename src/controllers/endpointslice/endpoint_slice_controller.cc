#include "controllers/endpointslice/endpoint_slice_controller.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "client/informer.h"
#include "common/log.h"
#include "controllers/common/object_meta.h"
#include "controllers/common/pod_util.h"
#include "controllers/endpoints/endpoint_util.h"

namespace skiff::controllers::endpointslice {

namespace {

namespace cc = ::skiff::controllers::common;
namespace ep = ::skiff::controllers::endpoints;
using client::ObjectPtr;

constexpr const char* kPodNodeIndex = "endpointslice-node";

const json& at(const json& obj, std::initializer_list<std::string_view> path) {
  static const json kNull;
  const json* v = cc::find_path(obj, path);
  return v != nullptr ? *v : kNull;
}

json array_at(const json& obj, std::initializer_list<std::string_view> path) {
  const json& v = at(obj, path);
  return v.is_array() ? v : json::array();
}

// The identity of an endpoint from one pass to the next: its pod, else its first address.
std::string endpoint_key(const json& endpoint) {
  std::string uid = cc::string_at(endpoint, {"targetRef", "uid"});
  if (!uid.empty()) return uid;
  const json& addrs = at(endpoint, {"addresses"});
  return addrs.is_array() && !addrs.empty() && addrs[0].is_string() ? addrs[0].get<std::string>()
                                                                    : "";
}

// The ports of a slice as one comparable string, whatever their order.
std::string ports_key(const json& ports) {
  std::vector<std::string> parts;
  if (ports.is_array()) {
    for (const json& p : ports) parts.push_back(p.dump());
  }
  std::sort(parts.begin(), parts.end());
  std::string key;
  for (const auto& p : parts) key += p + "\n";
  return key;
}

int64_t rv_number(const std::string& rv) {
  auto n = cc::parse_int64(rv);
  return n ? *n : 0;
}

// ownedBy: the slice's owner references name this very Service.
bool owned_by(const json& slice, const json& service) {
  const json& refs = at(slice, {"metadata", "ownerReferences"});
  if (!refs.is_array()) return false;
  for (const json& r : refs) {
    if (cc::string_at(r, {"uid"}) == cc::uid_of(service) &&
        cc::string_at(r, {"kind"}) == "Service" && cc::string_at(r, {"apiVersion"}) == "v1") {
      return true;
    }
  }
  return false;
}

// getAddressTypesForService.
std::vector<std::string> address_types(const json& service) {
  std::vector<std::string> out;
  const json& families = at(service, {"spec", "ipFamilies"});
  if (families.is_array()) {
    for (const json& f : families) {
      if (f.is_string() && (f == "IPv4" || f == "IPv6")) out.push_back(f.get<std::string>());
    }
  }
  if (out.empty()) out.push_back(ep::service_ip_family(service));
  return out;
}

// getEndpointSlicePrefix.
std::string slice_prefix(const std::string& service_name) {
  // A generated name must stay a DNS subdomain (253 characters) with its 5-character suffix.
  if (service_name.empty() || service_name.size() > 240) return "slice-";
  return service_name + "-";
}

// What the controller wrote for each Service, until its informer has seen it: slice name ->
// resourceVersion written (kDeleted for a deletion). Thread-safe.
class SliceTracker {
 public:
  static constexpr int64_t kDeleted = -1;

  void expect(const std::string& service, const std::string& slice, int64_t rv) {
    std::lock_guard<std::mutex> lock(mu_);
    expected_[service][slice] = rv;
  }
  // The informer saw the slice go (perhaps deleted by someone else): nothing more to wait for.
  void observed_deletion(const std::string& service, const std::string& slice) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = expected_.find(service);
    if (it == expected_.end()) return;
    it->second.erase(slice);
    if (it->second.empty()) expected_.erase(it);
  }
  void forget(const std::string& service) {
    std::lock_guard<std::mutex> lock(mu_);
    expected_.erase(service);
  }
  // StaleSlices: true while the informer lags behind a write; drops what it has caught up
  // with.
  bool stale(const std::string& service, const std::string& ns, const client::Informer& slices) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = expected_.find(service);
    if (it == expected_.end()) return false;
    bool lagging = false;
    for (auto e = it->second.begin(); e != it->second.end();) {
      ObjectPtr cached = slices.get(ns, e->first);
      bool seen = e->second == kDeleted
                      ? !cached
                      : cached && rv_number(cc::resource_version_of(*cached)) >= e->second;
      if (seen) {
        e = it->second.erase(e);
      } else {
        lagging = true;
        ++e;
      }
    }
    if (it->second.empty()) expected_.erase(it);
    return lagging;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::map<std::string, int64_t>> expected_;  // guarded by mu_
};

// One existing slice being reconciled.
struct Working {
  ObjectPtr slice;
  json endpoints = json::array();
  bool changed = false;
};

// Desired endpoints of one port group: their ports and the endpoints by key.
struct Group {
  json ports = json::array();
  std::map<std::string, json> endpoints;
};

}  // namespace

json endpoint_ports(const json& service, const json& pod) {
  json out = json::array();
  const json& ports = at(service, {"spec", "ports"});
  if (!ports.is_array()) return out;
  for (const json& sp : ports) {
    auto port = ep::find_port(pod, sp);
    if (!port.ok()) continue;
    std::string protocol = cc::string_at(sp, {"protocol"});
    json p = {{"name", cc::string_at(sp, {"name"})},
              {"port", *port},
              {"protocol", protocol.empty() ? "TCP" : protocol}};
    std::string app = cc::string_at(sp, {"appProtocol"});
    if (!app.empty()) p["appProtocol"] = app;
    out.push_back(std::move(p));
  }
  return out;
}

json slice_labels(const json& service) {
  json labels = json::object();
  const json& own = at(service, {"metadata", "labels"});
  if (own.is_object()) {
    for (const auto& [k, v] : own.items()) {
      if (k == kServiceNameLabel || k == kManagedByLabel || k == ep::kHeadlessServiceLabel) {
        continue;
      }
      labels[k] = v;
    }
  }
  labels[kServiceNameLabel] = cc::name_of(service);
  labels[kManagedByLabel] = kControllerName;
  if (cc::string_at(service, {"spec", "clusterIP"}) == "None") {
    labels[ep::kHeadlessServiceLabel] = "";
  }
  return labels;
}

struct EndpointSliceController::Impl {
  explicit Impl(ControllerContext& c) : ctx(c) {}

  // --- event handlers: they only queue ------------------------------------------------------

  static bool managed(const json& slice) {
    return cc::string_at(slice, {"metadata", "labels", kManagedByLabel}) == kControllerName;
  }

  static std::string service_key(const json& slice) {
    std::string svc = cc::string_at(slice, {"metadata", "labels", kServiceNameLabel});
    if (svc.empty()) return "";
    return cc::namespace_of(slice) + "/" + svc;
  }

  void on_slice(const json& slice) {
    if (!managed(slice)) return;
    std::string key = service_key(slice);
    if (!key.empty()) queue->add(key);
  }

  void on_slice_delete(const json& slice) {
    if (!managed(slice)) return;
    std::string key = service_key(slice);
    if (key.empty()) return;
    tracker.observed_deletion(key, cc::name_of(slice));
    queue->add(key);
  }

  void enqueue_pod_services(const json& pod) {
    for (const auto& k : ep::pod_service_keys(*services, pod)) queue->add(k);
  }

  void on_pod_update(const ObjectPtr& old_pod, const ObjectPtr& cur) {
    if (cc::resource_version_of(*old_pod) == cc::resource_version_of(*cur)) return;
    bool labels_changed = ep::pod_labels_changed(*old_pod, *cur);
    if (!labels_changed && !ep::pod_endpoints_changed(*old_pod, *cur)) return;
    std::set<std::string> keys;
    for (auto& k : ep::pod_service_keys(*services, *cur)) keys.insert(k);
    if (labels_changed) {
      for (auto& k : ep::pod_service_keys(*services, *old_pod)) keys.insert(k);
    }
    for (const auto& k : keys) queue->add(k);
  }

  // A node that comes, goes or changes zone changes the endpoints of the pods on it.
  void on_node(const json& node) {
    for (const ObjectPtr& pod : pods->by_index(kPodNodeIndex, cc::name_of(node))) {
      enqueue_pod_services(*pod);
    }
  }

  void setup(WorkQueue& q) {
    queue = &q;
    services = &ctx.informers.informer(client::resources::kServices);
    pods = &ctx.informers.informer(client::resources::kPods);
    slices = &ctx.informers.informer(client::resources::kEndpointSlices);
    nodes = &ctx.informers.informer(client::resources::kNodes);
    pods->add_index(kPodNodeIndex, [](const json& pod) {
      std::string node = cc::string_at(pod, {"spec", "nodeName"});
      return node.empty() ? std::vector<std::string>{} : std::vector<std::string>{node};
    });
    auto enqueue = [this](const ObjectPtr& obj) { queue->add(cc::key_of(*obj)); };
    services->add_handlers(client::InformerHandlers{
        enqueue, [enqueue](const ObjectPtr&, const ObjectPtr& obj) { enqueue(obj); }, enqueue});
    pods->add_handlers(client::InformerHandlers{
        [this](const ObjectPtr& pod) { enqueue_pod_services(*pod); },
        [this](const ObjectPtr& old_pod, const ObjectPtr& cur) { on_pod_update(old_pod, cur); },
        [this](const ObjectPtr& pod) { enqueue_pod_services(*pod); }});
    slices->add_handlers(client::InformerHandlers{
        [this](const ObjectPtr& s) { on_slice(*s); },
        [this](const ObjectPtr&, const ObjectPtr& s) { on_slice(*s); },
        [this](const ObjectPtr& s) { on_slice_delete(*s); }});
    nodes->add_handlers(client::InformerHandlers{
        [this](const ObjectPtr& n) { on_node(*n); },
        [this](const ObjectPtr& old_node, const ObjectPtr& n) {
          if (cc::string_at(*old_node, {"metadata", "labels", kZoneLabel}) !=
              cc::string_at(*n, {"metadata", "labels", kZoneLabel})) {
            on_node(*n);
          }
        },
        [this](const ObjectPtr& n) { on_node(*n); }});
  }

  // --- desired state ------------------------------------------------------------------------

  // podToEndpoint.
  json pod_endpoint(const json& pod, const json& service, const std::string& ip,
                    const ObjectPtr& node) {
    const bool serving = cc::is_pod_ready(pod);
    const bool terminating = cc::being_deleted(pod);
    // Never ready while terminating, unless publishNotReadyAddresses says to publish it.
    const bool ready = cc::bool_at(service, {"spec", "publishNotReadyAddresses"}) ||
                       (serving && !terminating);
    json e = {{"addresses", json::array({ip})},
              {"conditions",
               {{"ready", ready}, {"serving", serving}, {"terminating", terminating}}}};
    std::string node_name = cc::string_at(pod, {"spec", "nodeName"});
    if (!node_name.empty()) e["nodeName"] = node_name;
    if (node) {
      std::string zone = cc::string_at(*node, {"metadata", "labels", kZoneLabel});
      if (!zone.empty()) e["zone"] = zone;
    }
    if (ep::should_set_hostname(pod, service)) {
      e["hostname"] = cc::string_at(pod, {"spec", "hostname"});
    }
    e["targetRef"] = ep::pod_reference(pod);
    return e;
  }

  // The desired endpoints of `service` for address type `type`, by port group. Pods left out
  // because their node is missing are reported in *errors.
  std::map<std::string, Group> desired(const json& service, const std::string& type,
                                       const std::vector<ObjectPtr>& selected,
                                       std::vector<std::string>* errors) {
    std::map<std::string, Group> groups;
    const bool publish_not_ready = cc::bool_at(service, {"spec", "publishNotReadyAddresses"});
    for (const ObjectPtr& p : selected) {
      const json& pod = *p;
      if (!ep::should_pod_be_in_endpoints(pod, true)) continue;
      std::string ip = ep::pod_ip(pod, type);
      if (ip.empty()) continue;
      std::string node_name = cc::string_at(pod, {"spec", "nodeName"});
      ObjectPtr node = nodes->get("", node_name);
      if (!node && !publish_not_ready) {
        // The pod garbage collector removes pods of deleted nodes; until then they are left
        // out, and the Service is looked at again.
        errors->push_back("skipping Pod " + cc::name_of(pod) + " for Service " +
                          cc::key_of(service) + ": Node " + node_name + " Not Found");
        continue;
      }
      json ports = endpoint_ports(service, pod);
      Group& g = groups[ports_key(ports)];
      g.ports = ports;
      json e = pod_endpoint(pod, service, ip, node);
      g.endpoints.emplace(endpoint_key(e), std::move(e));
    }
    return groups;
  }

  json new_slice(const json& service, const std::string& type, const json& ports,
                 json endpoints) {
    json owner = {{"apiVersion", "v1"},
                  {"kind", "Service"},
                  {"name", cc::name_of(service)},
                  {"uid", cc::uid_of(service)},
                  {"controller", true},
                  {"blockOwnerDeletion", true}};
    return {{"apiVersion", "discovery.k8s.io/v1"},
            {"kind", "EndpointSlice"},
            {"metadata",
             {{"generateName", slice_prefix(cc::name_of(service))},
              {"namespace", cc::namespace_of(service)},
              {"labels", slice_labels(service)},
              {"ownerReferences", json::array({owner})}}},
            {"addressType", type},
            {"endpoints", std::move(endpoints)},
            {"ports", ports}};
  }

  struct Plan {
    std::vector<json> create;
    std::vector<json> update;
    std::vector<ObjectPtr> remove;
  };

  // reconcileByAddressType: what to create, update and delete so that the slices of `type`
  // (`existing`, all owned by the Service) hold `groups`.
  void plan_address_type(const json& service, const std::string& type,
                         std::map<std::string, Group> groups,
                         const std::vector<ObjectPtr>& existing, Plan* out) {
    const json labels = slice_labels(service);
    size_t wanted = 0;
    for (const auto& [key, g] : groups) wanted += g.endpoints.size();

    // Endpoints stay in the slice that has them; gone or duplicated ones are dropped.
    std::map<std::string, std::vector<Working>> by_group;
    for (const ObjectPtr& s : existing) {
      std::string pk = ports_key(at(*s, {"ports"}));
      auto g = groups.find(pk);
      Working w;
      w.slice = s;
      for (const json& e : array_at(*s, {"endpoints"})) {
        if (g == groups.end()) {
          w.changed = true;
          continue;
        }
        auto found = g->second.endpoints.find(endpoint_key(e));
        if (found == g->second.endpoints.end()) {
          w.changed = true;
          continue;
        }
        if (found->second != e) w.changed = true;
        w.endpoints.push_back(std::move(found->second));
        g->second.endpoints.erase(found);
      }
      by_group[pk].push_back(std::move(w));
    }

    // New endpoints fill the slices that change anyway, then those with room, then new ones.
    for (auto& [pk, g] : groups) {
      auto rest = g.endpoints.begin();
      auto& slices_of = by_group[pk];
      for (int pass = 0; pass < 2 && rest != g.endpoints.end(); ++pass) {
        for (Working& w : slices_of) {
          if ((pass == 0) != w.changed) continue;
          while (rest != g.endpoints.end() && w.endpoints.size() < kMaxEndpointsPerSlice) {
            w.endpoints.push_back(std::move(rest->second));
            ++rest;
            w.changed = true;
          }
        }
      }
      while (rest != g.endpoints.end()) {
        json chunk = json::array();
        while (rest != g.endpoints.end() && chunk.size() < kMaxEndpointsPerSlice) {
          chunk.push_back(std::move(rest->second));
          ++rest;
        }
        out->create.push_back(new_slice(service, type, g.ports, std::move(chunk)));
      }
    }

    std::vector<ObjectPtr> removals;
    for (auto& [pk, slices_of] : by_group) {
      for (Working& w : slices_of) {
        if (w.endpoints.empty()) {
          removals.push_back(w.slice);
          continue;
        }
        if (!w.changed && at(*w.slice, {"metadata", "labels"}) == labels) continue;
        json updated = *w.slice;
        updated["endpoints"] = std::move(w.endpoints);
        updated["metadata"]["labels"] = labels;
        out->update.push_back(std::move(updated));
      }
    }

    // A Service without endpoints keeps one empty placeholder slice.
    if (wanted == 0 && out->create.empty() && removals.size() == existing.size()) {
      auto placeholder = std::find_if(removals.begin(), removals.end(), [](const ObjectPtr& s) {
        return array_at(*s, {"endpoints"}).empty() && array_at(*s, {"ports"}).empty();
      });
      if (placeholder != removals.end()) {
        if (at(**placeholder, {"metadata", "labels"}) != labels) {
          json updated = **placeholder;
          updated["metadata"]["labels"] = labels;
          out->update.push_back(std::move(updated));
        }
        removals.erase(placeholder);
      } else {
        out->create.push_back(new_slice(service, type, json::array(), json::array()));
      }
    }
    for (auto& r : removals) out->remove.push_back(std::move(r));
  }

  // --- writes -------------------------------------------------------------------------------

  Status apply(const std::string& key, const json& service, const Plan& plan) {
    const std::string ns = cc::namespace_of(service);
    const client::ResourceRef ref = client::resources::kEndpointSlices.in(ns);
    // Creations first, deletions last, so that no endpoint is ever missing meanwhile.
    for (const json& s : plan.create) {
      auto r = ctx.client.create(ref, s);
      if (!r.ok()) {
        if (ep::namespace_terminating(r.status())) return Status::Ok();
        return r.status();
      }
      tracker.expect(key, cc::name_of(**r), rv_number(cc::resource_version_of(**r)));
    }
    for (const json& s : plan.update) {
      auto r = ctx.client.update(ref, s);
      if (!r.ok()) return r.status();
      tracker.expect(key, cc::name_of(**r), rv_number(cc::resource_version_of(**r)));
    }
    for (const ObjectPtr& s : plan.remove) {
      Status st = remove_slice(key, *s);
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }

  Status remove_slice(const std::string& key, const json& slice) {
    client::DeleteOptions o;
    o.precondition_uid = cc::uid_of(slice);
    auto r = ctx.client.remove(client::resources::kEndpointSlices.in(cc::namespace_of(slice)),
                               cc::name_of(slice), o);
    if (!r.ok() && !r.status().is_not_found()) return r.status();
    tracker.expect(key, cc::name_of(slice), SliceTracker::kDeleted);
    return Status::Ok();
  }

  // --- reconcile ----------------------------------------------------------------------------

  std::vector<ObjectPtr> managed_slices(const std::string& ns, const std::string& name) {
    std::vector<ObjectPtr> out;
    for (const ObjectPtr& s : slices->list(ns)) {
      if (managed(*s) && cc::string_at(*s, {"metadata", "labels", kServiceNameLabel}) == name) {
        out.push_back(s);
      }
    }
    return out;
  }

  Status reconcile(const std::string& key) {
    std::string ns;
    std::string name;
    client::split_key(key, &ns, &name);
    ObjectPtr svc = services->get(ns, name);
    if (!svc) {
      for (const ObjectPtr& s : managed_slices(ns, name)) {
        if (Status st = remove_slice(key, *s); !st.ok()) return st;
      }
      tracker.forget(key);
      return Status::Ok();
    }
    const json& service = *svc;
    auto selector = ep::service_selector(service);
    if (!selector || cc::being_deleted(service) ||
        cc::string_at(service, {"spec", "type"}) == "ExternalName") {
      return Status::Ok();
    }
    if (tracker.stale(key, ns, *slices)) {
      // Not a failure: the next try comes after a short back-off.
      return Status::Conflict("the EndpointSlice informer cache is behind the writes for " + key);
    }

    std::vector<ObjectPtr> selected = ep::selected_pods(*pods, ns, *selector);
    std::vector<std::string> types = address_types(service);
    std::map<std::string, std::vector<ObjectPtr>> existing;  // by address type
    Plan plan;
    for (const ObjectPtr& s : managed_slices(ns, name)) {
      std::string type = cc::string_at(*s, {"addressType"});
      bool wanted = std::find(types.begin(), types.end(), type) != types.end();
      if (!owned_by(*s, service) || !wanted) {
        plan.remove.push_back(s);
      } else {
        existing[type].push_back(s);
      }
    }
    std::vector<std::string> errors;
    for (const std::string& type : types) {
      plan_address_type(service, type, desired(service, type, selected, &errors), existing[type],
                        &plan);
    }
    if (Status s = apply(key, service, plan); !s.ok()) {
      if (s.code() != StatusCode::kConflict && s.code() != StatusCode::kAlreadyExists) {
        ctx.events.record(service, "Warning", "FailedToUpdateEndpointSlices",
                          "Error updating Endpoint Slices for Service " + key + ": " +
                              s.message());
      }
      return s;
    }
    if (!errors.empty()) {
      std::string msg = errors.front();
      for (size_t i = 1; i < errors.size(); ++i) msg += ", " + errors[i];
      return Status::Unavailable(msg);
    }
    return Status::Ok();
  }

  ControllerContext& ctx;
  // Set by setup().
  WorkQueue* queue = nullptr;
  client::Informer* services = nullptr;
  client::Informer* pods = nullptr;
  client::Informer* slices = nullptr;
  client::Informer* nodes = nullptr;

  SliceTracker tracker;  // thread-safe
};

EndpointSliceController::EndpointSliceController(ControllerContext& ctx)
    : impl_(std::make_unique<Impl>(ctx)) {}

EndpointSliceController::~EndpointSliceController() = default;

void EndpointSliceController::setup(WorkQueue& queue) { impl_->setup(queue); }

Status EndpointSliceController::reconcile(const std::string& key) {
  return impl_->reconcile(key);
}

}  // namespace skiff::controllers::endpointslice

SKIFF_REGISTER_CONTROLLER(endpointslice, [](skiff::controllers::ControllerContext& ctx) {
  return std::make_unique<skiff::controllers::endpointslice::EndpointSliceController>(ctx);
});
