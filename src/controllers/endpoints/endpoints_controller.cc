#include "controllers/endpoints/endpoints_controller.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "client/informer.h"
#include "common/log.h"
#include "controllers/common/object_meta.h"
#include "controllers/common/pod_util.h"
#include "controllers/endpoints/endpoint_util.h"

namespace skiff::controllers::endpoints {

namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;

// endpointPortFromServicePort.
json endpoint_port(const json& service_port, int32_t port) {
  json p = json::object();
  std::string name = cc::string_at(service_port, {"name"});
  if (!name.empty()) p["name"] = name;
  p["port"] = port;
  std::string protocol = cc::string_at(service_port, {"protocol"});
  p["protocol"] = protocol.empty() ? "TCP" : protocol;
  std::string app = cc::string_at(service_port, {"appProtocol"});
  if (!app.empty()) p["appProtocol"] = app;
  return p;
}

std::string address_key(const json& addr) {
  return cc::string_at(addr, {"ip"}) + "|" + cc::string_at(addr, {"targetRef", "uid"});
}

bool address_less(const json& a, const json& b) { return address_key(a) < address_key(b); }

bool port_less(const json& a, const json& b) {
  auto key = [](const json& p) {
    return std::make_tuple(cc::string_at(p, {"name"}), cc::int_at(p, {"port"}),
                           cc::string_at(p, {"protocol"}));
  };
  return key(a) < key(b);
}

// One address offering one port (or no port: headless Services without ports).
struct Offer {
  json address;
  bool ready = false;
  std::optional<json> port;
};

// RepackSubsets: one subset per distinct set of (address, readiness) with all the ports that
// set offers; addresses and ports sorted.
json repack(const std::vector<Offer>& offers) {
  // port (canonical text, "" for none) -> address key -> (address, ready)
  std::map<std::string, std::map<std::string, std::pair<json, bool>>> by_port;
  std::map<std::string, json> ports;
  for (const Offer& o : offers) {
    std::string pk = o.port ? o.port->dump() : "";
    if (o.port) ports[pk] = *o.port;
    by_port[pk].emplace(address_key(o.address), std::make_pair(o.address, o.ready));
  }
  // address set fingerprint -> (addresses, ports)
  struct Group {
    const std::map<std::string, std::pair<json, bool>>* addresses = nullptr;
    std::vector<json> ports;
  };
  std::map<std::string, Group> groups;
  for (const auto& [pk, addrs] : by_port) {
    std::string fingerprint;
    for (const auto& [key, entry] : addrs) {
      fingerprint += key + (entry.second ? "|ready;" : "|notready;");
    }
    Group& g = groups[fingerprint];
    g.addresses = &addrs;
    if (!pk.empty()) g.ports.push_back(ports[pk]);
  }
  json subsets = json::array();
  for (auto& [fingerprint, g] : groups) {
    std::vector<json> ready;
    std::vector<json> not_ready;
    for (const auto& [key, entry] : *g.addresses) {
      (entry.second ? ready : not_ready).push_back(entry.first);
    }
    std::sort(ready.begin(), ready.end(), address_less);
    std::sort(not_ready.begin(), not_ready.end(), address_less);
    std::sort(g.ports.begin(), g.ports.end(), port_less);
    json subset = json::object();
    if (!ready.empty()) subset["addresses"] = ready;
    if (!not_ready.empty()) subset["notReadyAddresses"] = not_ready;
    if (!g.ports.empty()) subset["ports"] = g.ports;
    subsets.push_back(std::move(subset));
  }
  return subsets;
}

size_t count(const json& subset, const char* field) {
  const json* a = cc::find_path(subset, {field});
  return a != nullptr && a->is_array() ? a->size() : 0;
}

json labels_for(const json& service) {
  const json* l = cc::find_path(service, {"metadata", "labels"});
  json labels = l != nullptr && l->is_object() ? *l : json::object();
  if (service_ip_set(service)) {
    labels.erase(kHeadlessServiceLabel);
  } else {
    labels[kHeadlessServiceLabel] = "";
  }
  return labels;
}

}  // namespace

json endpoint_subsets(const json& service, const std::vector<ObjectPtr>& pods) {
  const bool tolerate_unready = cc::bool_at(service, {"spec", "publishNotReadyAddresses"});
  const std::string family = service_ip_family(service);
  const json* ports = cc::find_path(service, {"spec", "ports"});
  const bool no_ports = ports == nullptr || !ports->is_array() || ports->empty();
  std::vector<Offer> offers;
  for (const ObjectPtr& p : pods) {
    const json& pod = *p;
    if (!should_pod_be_in_endpoints(pod, tolerate_unready)) continue;
    std::string ip = pod_ip(pod, family);
    if (ip.empty()) continue;
    json addr = {{"ip", ip}};
    if (should_set_hostname(pod, service)) addr["hostname"] = cc::string_at(pod, {"spec", "hostname"});
    std::string node = cc::string_at(pod, {"spec", "nodeName"});
    if (!node.empty()) addr["nodeName"] = node;
    addr["targetRef"] = pod_reference(pod);
    const bool ready = tolerate_unready || cc::is_pod_ready(pod);
    if (no_ports) {
      // A headless Service may have no ports: its addresses are listed all the same.
      if (cc::string_at(service, {"spec", "clusterIP"}) == "None") {
        offers.push_back(Offer{addr, ready, std::nullopt});
      }
      continue;
    }
    for (const json& sp : *ports) {
      auto port = find_port(pod, sp);
      if (!port.ok()) continue;
      offers.push_back(Offer{addr, ready, endpoint_port(sp, *port)});
    }
  }
  return repack(offers);
}

bool truncate_subsets(json& subsets) {
  size_t total_ready = 0;
  size_t total_not_ready = 0;
  for (const json& s : subsets) {
    total_ready += count(s, "addresses");
    total_not_ready += count(s, "notReadyAddresses");
  }
  if (total_ready + total_not_ready <= kMaxCapacity) return false;
  const bool truncate_ready = total_ready > kMaxCapacity;
  const size_t max = truncate_ready ? kMaxCapacity : kMaxCapacity - total_ready;
  const size_t num_total = truncate_ready ? total_ready : total_not_ready;
  size_t can_be_added = max;
  for (size_t i = 0; i < subsets.size(); ++i) {
    json& s = subsets[i];
    const char* field = truncate_ready ? "addresses" : "notReadyAddresses";
    size_t in_subset = count(s, field);
    size_t allowed = static_cast<size_t>(std::floor(static_cast<double>(in_subset) /
                                                    static_cast<double>(num_total) *
                                                    static_cast<double>(max)));
    if (i == subsets.size() - 1) allowed = can_be_added;
    can_be_added -= std::min(allowed, can_be_added);
    if (truncate_ready) s.erase("notReadyAddresses");
    if (allowed < in_subset) {
      json& a = s[field];
      a.erase(a.begin() + static_cast<std::ptrdiff_t>(allowed), a.end());
      if (a.empty()) s.erase(field);
    }
  }
  return true;
}

struct EndpointsController::Impl {
  explicit Impl(ControllerContext& c) : ctx(c) {}

  // --- event handlers: they only queue ------------------------------------------------------

  void enqueue_keys(const std::vector<std::string>& keys) {
    for (const auto& k : keys) queue->add(k);
  }

  void on_pod_update(const ObjectPtr& old_pod, const ObjectPtr& cur) {
    if (cc::resource_version_of(*old_pod) == cc::resource_version_of(*cur)) return;
    bool labels_changed = pod_labels_changed(*old_pod, *cur);
    if (!labels_changed && !pod_endpoints_changed(*old_pod, *cur)) return;
    std::set<std::string> keys;
    for (auto& k : pod_service_keys(*services, *cur)) keys.insert(k);
    if (labels_changed) {
      for (auto& k : pod_service_keys(*services, *old_pod)) keys.insert(k);
    }
    for (const auto& k : keys) queue->add(k);
  }

  void setup(WorkQueue& q) {
    queue = &q;
    services = &ctx.informers.informer(client::resources::kServices);
    pods = &ctx.informers.informer(client::resources::kPods);
    endpoints = &ctx.informers.informer(client::resources::kEndpoints);
    auto enqueue = [this](const ObjectPtr& obj) { queue->add(cc::key_of(*obj)); };
    services->add_handlers(client::InformerHandlers{
        enqueue, [enqueue](const ObjectPtr&, const ObjectPtr& obj) { enqueue(obj); }, enqueue});
    pods->add_handlers(client::InformerHandlers{
        [this](const ObjectPtr& pod) { enqueue_keys(pod_service_keys(*services, *pod)); },
        [this](const ObjectPtr& old_pod, const ObjectPtr& cur) { on_pod_update(old_pod, cur); },
        [this](const ObjectPtr& pod) { enqueue_keys(pod_service_keys(*services, *pod)); }});
    endpoints->add_handlers(client::InformerHandlers{
        // checkLeftoverEndpoints: Endpoints found at start whose Service may be gone.
        [this, enqueue](const ObjectPtr& obj) {
          if (!endpoints->synced()) enqueue(obj);
        },
        nullptr,
        // Deleted by someone else: made again if the Service still wants them.
        enqueue});
  }

  // --- reconcile ----------------------------------------------------------------------------

  Status delete_endpoints(const std::string& ns, const std::string& name) {
    ObjectPtr cur = endpoints->get(ns, name);
    if (!cur) return Status::Ok();
    if (cc::annotation(*cur, kLeaderAnnotation)) return Status::Ok();
    client::DeleteOptions o;
    o.precondition_uid = cc::uid_of(*cur);
    auto r = ctx.client.remove(client::resources::kEndpoints.in(ns), name, o);
    if (r.ok() || r.status().is_not_found()) return Status::Ok();
    return r.status();
  }

  Status reconcile(const std::string& key) {
    std::string ns;
    std::string name;
    client::split_key(key, &ns, &name);
    ObjectPtr svc = services->get(ns, name);
    if (!svc) return delete_endpoints(ns, name);
    auto selector = service_selector(*svc);
    // ExternalName Services get no endpoints from this controller (issue 105986).
    if (!selector || cc::string_at(*svc, {"spec", "type"}) == "ExternalName") return Status::Ok();

    json subsets = endpoint_subsets(*svc, selected_pods(*pods, ns, *selector));
    bool truncated = truncate_subsets(subsets);
    json labels = labels_for(*svc);

    ObjectPtr cur = endpoints->get(ns, name);
    if (cur) {
      const json* cur_subsets = cc::find_path(*cur, {"subsets"});
      json have = cur_subsets != nullptr && cur_subsets->is_array() ? *cur_subsets : json::array();
      const json* cur_labels = cc::find_path(*cur, {"metadata", "labels"});
      json have_labels =
          cur_labels != nullptr && cur_labels->is_object() ? *cur_labels : json::object();
      bool capacity_ok = cc::annotation(*cur, kOverCapacityAnnotation).has_value() == truncated;
      if (have == subsets && have_labels == labels && capacity_ok) return Status::Ok();
    }
    json want = cur ? *cur
                    : json{{"apiVersion", "v1"},
                           {"kind", "Endpoints"},
                           {"metadata", {{"name", name}, {"namespace", ns}}}};
    if (subsets.empty()) {
      want.erase("subsets");
    } else {
      want["subsets"] = subsets;
    }
    json& meta = want["metadata"];
    if (labels.empty()) {
      meta.erase("labels");
    } else {
      meta["labels"] = labels;
    }
    json annotations = meta.value("annotations", json::object());
    if (truncated) {
      annotations[kOverCapacityAnnotation] = "truncated";
    } else {
      annotations.erase(kOverCapacityAnnotation);
    }
    if (annotations.empty()) {
      meta.erase("annotations");
    } else {
      meta["annotations"] = annotations;
    }
    const client::ResourceRef ref = client::resources::kEndpoints.in(ns);
    auto r = cur ? ctx.client.update(ref, want) : ctx.client.create(ref, want);
    if (r.ok()) return Status::Ok();
    const Status& s = r.status();
    // The namespace is going away: so are the Service and its Endpoints.
    if (!cur && namespace_terminating(s)) return Status::Ok();
    // A cache behind our own write: look again once it has caught up.
    if (s.code() == StatusCode::kAlreadyExists) return Status::Conflict(s.message());
    if (s.code() != StatusCode::kConflict) {
      ctx.events.record(*svc, "Warning", "FailedToUpdateEndpoint",
                        "Failed to update endpoint " + key + ": " + s.message());
    }
    return s;
  }

  ControllerContext& ctx;
  // Set by setup().
  WorkQueue* queue = nullptr;
  client::Informer* services = nullptr;
  client::Informer* pods = nullptr;
  client::Informer* endpoints = nullptr;
};

EndpointsController::EndpointsController(ControllerContext& ctx)
    : impl_(std::make_unique<Impl>(ctx)) {}

EndpointsController::~EndpointsController() = default;

void EndpointsController::setup(WorkQueue& queue) { impl_->setup(queue); }

Status EndpointsController::reconcile(const std::string& key) { return impl_->reconcile(key); }

}  // namespace skiff::controllers::endpoints

SKIFF_REGISTER_CONTROLLER(endpoints, [](skiff::controllers::ControllerContext& ctx) {
  return std::make_unique<skiff::controllers::endpoints::EndpointsController>(ctx);
});
