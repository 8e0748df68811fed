#include "controllers/namespace/namespace_controller.h"

#include <algorithm>
#include <set>
#include <utility>

#include "client/informer.h"
#include "common/json.h"
#include "common/log.h"
#include "controllers/common/object_meta.h"
#include "controllers/garbagecollector/discovery.h"

namespace skiff::controllers::namespaces {

namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;
using garbagecollector::ApiResource;

// How often a status or finalize write is retried on a fresh read after a conflict.
constexpr int kConflictRetries = 5;

struct ConditionSpec {
  const char* type;
  const char* ok_reason;
  const char* ok_message;
};

// conditionTypes, okReasons and okMessages, in Kubernetes' order.
const ConditionSpec kConditions[] = {
    {"NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered",
     "All resources successfully discovered"},
    {"NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions",
     "All legacy kube types successfully parsed"},
    {"NamespaceDeletionContentFailure", "ContentDeleted",
     "All content successfully deleted, may be waiting on finalization"},
    {"NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"},
    {"NamespaceFinalizersRemaining", "ContentRemoved", "All content successfully removed"},
};

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

// schema.GroupVersionResource.String().
std::string gvr_string(const ApiResource& r) {
  return r.group + "/" + r.version + ", Resource=" + r.resource;
}

// What deleting the content of one resource left behind.
struct ResourceDeletion {
  int64_t estimate = 0;  // seconds; 0 is no estimate, not "all gone"
  int remaining = 0;
  std::map<std::string, int> finalizers;
};

}  // namespace

bool update_deletion_conditions(json& status, const DeletionReport& report, TimePoint now) {
  // The failing conditions of this pass, by type: {reason, message}.
  std::map<std::string, std::pair<std::string, std::string>> failing;
  if (!report.discovery_error.ok()) {
    failing["NamespaceDeletionDiscoveryFailure"] = {"DiscoveryFailed",
                                                    report.discovery_error.message()};
  }
  if (!report.content_errors.empty()) {
    std::vector<std::string> msgs = report.content_errors;
    std::sort(msgs.begin(), msgs.end());
    failing["NamespaceDeletionContentFailure"] = {
        "ContentDeletionFailed", "Failed to delete all resource types, " +
                                     std::to_string(msgs.size()) +
                                     " remaining: " + join(msgs, ", ")};
  }
  std::vector<std::string> remaining;
  for (const auto& [resource, n] : report.remaining) {
    if (n > 0) remaining.push_back(resource + " has " + std::to_string(n) + " resource instances");
  }
  if (!remaining.empty()) {
    std::sort(remaining.begin(), remaining.end());
    failing["NamespaceContentRemaining"] = {
        "SomeResourcesRemain", "Some resources are remaining: " + join(remaining, ", ")};
  }
  std::vector<std::string> held;
  for (const auto& [finalizer, n] : report.finalizers) {
    if (n > 0) held.push_back(finalizer + " in " + std::to_string(n) + " resource instances");
  }
  if (!held.empty()) {
    std::sort(held.begin(), held.end());
    failing["NamespaceFinalizersRemaining"] = {
        "SomeFinalizerRemain", "Some finalizers are remaining: " + join(held, ", ")};
  }

  if (!status.is_object()) status = json::object();
  json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  const std::string now_text = cc::format_time(now);
  bool changed = false;
  for (const ConditionSpec& spec : kConditions) {
    std::string want_status = "False";
    std::string reason = spec.ok_reason;
    std::string message = spec.ok_message;
    if (auto it = failing.find(spec.type); it != failing.end()) {
      want_status = "True";
      reason = it->second.first;
      message = it->second.second;
    }
    json* old = nullptr;
    for (json& c : conditions) {
      if (c.is_object() && c.value("type", "") == spec.type) {
        old = &c;
        break;
      }
    }
    if (old == nullptr) {
      conditions.push_back({{"type", spec.type},
                            {"status", want_status},
                            {"lastTransitionTime", now_text},
                            {"reason", reason},
                            {"message", message}});
      changed = true;
      continue;
    }
    if (old->value("status", "") == want_status && old->value("reason", "") == reason &&
        old->value("message", "") == message) {
      continue;
    }
    if (old->value("status", "") != want_status) (*old)["lastTransitionTime"] = now_text;
    (*old)["status"] = want_status;
    (*old)["reason"] = reason;
    (*old)["message"] = message;
    changed = true;
  }
  return changed;
}

struct NamespaceController::Impl {
  explicit Impl(ControllerContext& c) : ctx(c) {}

  void enqueue(const json& ns) {
    // Only namespaces on their way out have work.
    if (cc::being_deleted(ns)) queue->add(cc::name_of(ns));
  }

  void setup(WorkQueue& q) {
    queue = &q;
    namespaces = &ctx.informers.informer(client::resources::kNamespaces);
    namespaces->add_handlers(client::InformerHandlers{
        [this](const ObjectPtr& ns) { enqueue(*ns); },
        [this](const ObjectPtr&, const ObjectPtr& ns) { enqueue(*ns); }, nullptr});
  }

  // --- requests -----------------------------------------------------------------------------

  // DELETE of a whole collection (deletecollection), propagationPolicy Background.
  Status delete_collection(const client::ResourceRef& r) {
    client::Request req;
    req.method = "DELETE";
    req.path = client::Client::path(r);
    req.content_type = "application/json";
    req.body = json({{"kind", "DeleteOptions"},
                     {"apiVersion", "v1"},
                     {"propagationPolicy", "Background"}})
                   .dump();
    req.user_agent = ctx.client.user_agent();
    auto reply = ctx.client.transport().round_trip(req);
    if (!reply.ok()) return reply.status();
    if (reply->status >= 200 && reply->status < 300) return Status::Ok();
    auto body = parse_json(reply->body);
    if (body.ok()) return client::status_from_object(*body, reply->status);
    return Status(StatusCode::kInternal, "deletecollection " + req.path + ": the server answered " +
                                             std::to_string(reply->status));
  }

  // Every object of r, page by page.
  Result<std::vector<ObjectPtr>> list_all(const client::ResourceRef& r) {
    std::vector<ObjectPtr> out;
    client::ListOptions o;
    o.limit = 500;
    for (;;) {
      auto page = ctx.client.list(r, o);
      if (!page.ok()) return page.status();
      for (auto& item : page->items) out.push_back(std::move(item));
      if (page->continue_token.empty()) return out;
      o.continue_token = page->continue_token;
    }
  }

  static bool unsupported(const Status& s) {
    return s.code() == StatusCode::kMethodNotAllowed || s.code() == StatusCode::kNotFound;
  }

  // estimateGracefulTerminationForPods, less what has already passed since the deletion.
  Result<int64_t> estimate_pods(const std::string& ns, TimePoint deleted_at) {
    auto pods = list_all(client::resources::kPods.in(ns));
    if (!pods.ok()) return pods.status();
    int64_t estimate = 0;
    for (const ObjectPtr& p : *pods) {
      std::string phase = cc::string_at(*p, {"status", "phase"});
      if (phase == "Succeeded" || phase == "Failed") continue;
      const json* grace = cc::find_path(*p, {"spec", "terminationGracePeriodSeconds"});
      if (grace != nullptr && grace->is_number_integer()) {
        estimate = std::max(estimate, grace->get<int64_t>());
      }
    }
    if (ctx.clock.now() - deleted_at >= std::chrono::seconds(estimate)) estimate = 0;
    return estimate;
  }

  // deleteAllContentForGroupVersionResource.
  Status delete_resource(const ApiResource& r, const std::string& ns, TimePoint deleted_at,
                         ResourceDeletion* out) {
    *out = ResourceDeletion();
    const client::ResourceRef ref = r.ref(ns);
    if (r.group.empty() && r.resource == "pods") {
      auto estimate = estimate_pods(ns, deleted_at);
      if (!estimate.ok()) return estimate.status();
      out->estimate = *estimate;
    }
    bool collection_deleted = false;
    if (r.supports("deletecollection")) {
      Status s = delete_collection(ref);
      if (s.ok()) {
        collection_deleted = true;
      } else if (!unsupported(s)) {
        return s;
      }
    }
    if (!collection_deleted && r.supports("list")) {
      auto items = list_all(ref);
      if (!items.ok() && !unsupported(items.status())) return items.status();
      if (items.ok()) {
        client::DeleteOptions o;
        o.propagation_policy = "Background";
        for (const ObjectPtr& item : *items) {
          auto removed = ctx.client.remove(ref, cc::name_of(*item), o);
          if (!removed.ok() && !unsupported(removed.status())) return removed.status();
        }
      }
    }
    if (!r.supports("list")) return Status::Ok();
    auto left = list_all(ref);
    if (!left.ok()) return unsupported(left.status()) ? Status::Ok() : left.status();
    if (left->empty()) {
      out->estimate = 0;
      return Status::Ok();
    }
    out->remaining = static_cast<int>(left->size());
    for (const ObjectPtr& item : *left) {
      const json* fin = cc::find_path(*item, {"metadata", "finalizers"});
      if (fin == nullptr || !fin->is_array()) continue;
      for (const json& f : *fin) {
        if (f.is_string()) ++out->finalizers[f.get<std::string>()];
      }
    }
    if (out->estimate != 0) return Status::Ok();
    // Objects held by finalizers are normal: give their owners time.
    if (!out->finalizers.empty()) {
      out->estimate = kFinalizerEstimateSeconds;
      return Status::Ok();
    }
    return Status::Internal("unexpected items still remain in namespace: " + ns +
                            " for gvr: " + gvr_string(r));
  }

  // Writes status.conditions for `report` when they changed; a failure is only logged, as the
  // next pass writes them again.
  void write_conditions(json& ns, const DeletionReport& report) {
    json status = ns.value("status", json::object());
    if (!update_deletion_conditions(status, report, ctx.clock.now())) return;
    json updated = ns;
    updated["status"] = std::move(status);
    auto r = ctx.client.update(client::resources::kNamespaces, updated, "status");
    if (r.ok()) {
      ns = **r;
    } else if (!r.status().is_not_found()) {
      SKIFF_LOG(Warn) << "namespace controller: couldn't update status conditions of namespace "
                      << cc::name_of(ns) << ": " << r.status().to_string();
    }
  }

  // deleteAllContent: the estimate in seconds (0: nothing left to wait for), or an error.
  Result<int64_t> delete_all_content(json& ns) {
    const std::string name = cc::name_of(ns);
    TimePoint deleted_at = ctx.clock.now();
    if (auto ts = cc::time_at(ns, {"metadata", "deletionTimestamp"})) {
      deleted_at = cc::to_time_point(*ts);
    }
    DeletionReport report;
    garbagecollector::DiscoveryResult d = garbagecollector::discover_resources(ctx.client);
    std::vector<Status> errors;
    if (!d.error.ok()) {
      // Not fatal: what could be discovered is still deleted.
      report.discovery_error = d.error;
      errors.push_back(d.error);
    }
    std::vector<ApiResource> resources;
    const ApiResource* pods = nullptr;
    for (const ApiResource& r : d.resources) {
      if (!r.preferred || !r.namespaced || !r.supports("delete")) continue;
      resources.push_back(r);
    }
    for (const ApiResource& r : resources) {
      if (r.group.empty() && r.resource == "pods") pods = &r;
    }
    int64_t estimate = 0;
    auto account = [&](const ApiResource& r, const ResourceDeletion& del, const Status& s,
                       const std::string& prefix) {
      if (!s.ok()) {
        std::string msg = prefix + s.message();
        report.content_errors.push_back(msg);
        errors.push_back(Status(s.code(), msg));
      }
      estimate = std::max(estimate, del.estimate);
      if (del.remaining > 0) {
        report.remaining[r.resource + "." + r.group] = del.remaining;
        for (const auto& [f, n] : del.finalizers) report.finalizers[f] += n;
      }
    };
    // The pods go first, so that no workload runs on with its configuration gone.
    if (pods != nullptr) {
      ResourceDeletion del;
      Status s = delete_resource(*pods, name, deleted_at, &del);
      account(*pods, del, s, "failed to delete pods for namespace: " + name + ", err: ");
      if (del.remaining > 0) {
        write_conditions(ns, report);
        if (!errors.empty()) return aggregate(errors);
        return estimate;
      }
    }
    for (const ApiResource& r : resources) {
      if (&r == pods) continue;
      ResourceDeletion del;
      Status s = delete_resource(r, name, deleted_at, &del);
      account(r, del, s, "");
    }
    write_conditions(ns, report);
    if (!errors.empty()) return aggregate(errors);
    return estimate;
  }

  static Status aggregate(const std::vector<Status>& errors) {
    if (errors.size() == 1) return errors.front();
    std::string msg = "[";
    for (size_t i = 0; i < errors.size(); ++i) {
      if (i > 0) msg += ", ";
      msg += errors[i].message();
    }
    return Status(errors.front().code(), msg + "]");
  }

  // --- the namespace itself ------------------------------------------------------------------

  // Re-reads the namespace after a conflict; false (with *s OK) when it is gone or is
  // another namespace now.
  bool refresh(json& ns, Status* s) {
    auto fresh = ctx.client.get(client::resources::kNamespaces, cc::name_of(ns));
    if (!fresh.ok()) {
      *s = fresh.status().is_not_found() ? Status::Ok() : fresh.status();
      return false;
    }
    if (cc::uid_of(**fresh) != cc::uid_of(ns)) {
      *s = Status::Ok();
      return false;
    }
    ns = **fresh;
    return true;
  }

  // updateNamespaceStatusFunc: the phase of a namespace being deleted is Terminating.
  Status ensure_terminating(json& ns) {
    for (int attempt = 0; attempt <= kConflictRetries; ++attempt) {
      if (cc::string_at(ns, {"status", "phase"}) == "Terminating") return Status::Ok();
      json updated = ns;
      updated["status"]["phase"] = "Terminating";
      auto r = ctx.client.update(client::resources::kNamespaces, updated, "status");
      if (r.ok()) {
        ns = **r;
        return Status::Ok();
      }
      if (r.status().code() != StatusCode::kConflict) return r.status();
      Status s;
      if (!refresh(ns, &s)) return s.ok() ? Status::NotFound("namespace is gone") : s;
    }
    return Status::Conflict("namespace " + cc::name_of(ns) + " kept changing");
  }

  // finalizeNamespace: spec.finalizers without `kubernetes`, through /finalize.
  Status finalize(json& ns) {
    for (int attempt = 0; attempt <= kConflictRetries; ++attempt) {
      std::set<std::string> kept;
      const json* fin = cc::find_path(ns, {"spec", "finalizers"});
      if (fin != nullptr && fin->is_array()) {
        for (const json& f : *fin) {
          if (f.is_string() && f.get<std::string>() != kKubernetesFinalizer) kept.insert(f);
        }
      }
      json updated = ns;
      updated["spec"]["finalizers"] = json(std::vector<std::string>(kept.begin(), kept.end()));
      auto r = ctx.client.update(client::resources::kNamespaces, updated, "finalize");
      if (r.ok() || r.status().is_not_found()) return Status::Ok();
      if (r.status().code() != StatusCode::kConflict) return r.status();
      Status s;
      if (!refresh(ns, &s)) return s;
    }
    return Status::Conflict("namespace " + cc::name_of(ns) + " kept changing");
  }

  static bool holds_kubernetes_finalizer(const json& ns) {
    const json* fin = cc::find_path(ns, {"spec", "finalizers"});
    if (fin == nullptr || !fin->is_array()) return false;
    return std::find(fin->begin(), fin->end(), json(std::string(kKubernetesFinalizer))) != fin->end();
  }

  Status reconcile(const std::string& name) {
    if (!namespaces->get("", name)) return Status::Ok();
    // Several parties change a terminating namespace: work on its latest state.
    auto live = ctx.client.get(client::resources::kNamespaces, name);
    if (!live.ok()) return live.status().is_not_found() ? Status::Ok() : live.status();
    json ns = **live;
    if (!cc::being_deleted(ns)) return Status::Ok();
    if (Status s = ensure_terminating(ns); !s.ok()) {
      return s.is_not_found() ? Status::Ok() : s;
    }
    if (!holds_kubernetes_finalizer(ns)) return Status::Ok();  // already released
    auto estimate = delete_all_content(ns);
    if (!estimate.ok()) return estimate.status();
    if (*estimate > 0) {
      // ResourcesRemainingError: look again in about half the estimate.
      queue->add_after(name, std::chrono::seconds(*estimate / 2 + 1));
      return Status::Ok();
    }
    return finalize(ns);
  }

  ControllerContext& ctx;
  // Set by setup().
  WorkQueue* queue = nullptr;
  client::Informer* namespaces = nullptr;
};

NamespaceController::NamespaceController(ControllerContext& ctx)
    : impl_(std::make_unique<Impl>(ctx)) {}

NamespaceController::~NamespaceController() = default;

void NamespaceController::setup(WorkQueue& queue) { impl_->setup(queue); }

Status NamespaceController::reconcile(const std::string& key) { return impl_->reconcile(key); }

}  // namespace skiff::controllers::namespaces

SKIFF_REGISTER_CONTROLLER(namespace, [](skiff::controllers::ControllerContext& ctx) {
  return std::make_unique<skiff::controllers::namespaces::NamespaceController>(ctx);
});
