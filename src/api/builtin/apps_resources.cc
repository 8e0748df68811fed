// The apps group, version v1.
#include "api/builtin/builtin.h"
#include "api/builtin/pod.h"
#include "api/builtin/workloads.h"
#include "common/strings.h"

namespace skiff::api::builtin {
namespace {

constexpr const char* kAppsTypes = "io.k8s.api.apps.v1";

std::string apps_type(std::string_view kind) {
  return std::string(kAppsTypes) + "." + std::string(kind);
}

json* template_of(json& obj) {
  json& spec = object_member(obj, "spec");
  return &object_member(spec, "template");
}

// What Deployment, ReplicaSet and DaemonSet share: the template rules and an immutable
// selector on update.
void validate_selector_immutable(const json& obj, const json* old, FieldErrors& errs) {
  if (old == nullptr) return;
  const json* sel = at(obj, {"spec", "selector"});
  validate_immutable(sel, at(*old, {"spec", "selector"}), Path("spec").child("selector"),
                     go_label_selector(sel), errs);
}

// ---------------------------------------------------------------------------------------------
// Deployments

void default_deployment(json& d) {
  if (!d.is_object()) return;
  json& spec = object_member(d, "spec");
  set_default(spec, "replicas", 1);
  json& strategy = object_member(spec, "strategy");
  if (str_at(strategy, {"type"}).empty()) strategy["type"] = "RollingUpdate";
  if (str_at(strategy, {"type"}) == "RollingUpdate") {
    json& ru = object_member(strategy, "rollingUpdate");
    set_default(ru, "maxUnavailable", "25%");
    set_default(ru, "maxSurge", "25%");
  }
  set_default(spec, "revisionHistoryLimit", 10);
  set_default(spec, "progressDeadlineSeconds", 600);
  default_pod_template(*template_of(d));
  ensure_status(d);
}

void validate_deployment(const json& d, const json* old, FieldErrors& errs) {
  const Path spec("spec");
  validate_nonnegative(int_at(d, {"spec", "replicas"}).value_or(0), spec.child("replicas"), errs);
  const json* selector = at(d, {"spec", "selector"});
  validate_required_selector(selector, spec.child("selector"), "deployment", errs);
  std::optional<LabelSelector> sel = selector_of(selector);
  if (!sel) {
    errs.invalid(spec.child("selector"), go_label_selector(selector), "invalid label selector");
  } else {
    validate_pod_template_for_replicas(at(d, {"spec", "template"}), *sel, spec.child("template"),
                                       errs);
  }
  // ValidateDeploymentStrategy.
  const Path sp = spec.child("strategy");
  const json* strategy = object_at(d, {"spec", "strategy"});
  std::string type = strategy != nullptr ? str_at(*strategy, {"type"}) : "";
  const json* ru = strategy != nullptr ? member(*strategy, "rollingUpdate") : nullptr;
  if (type == "Recreate") {
    if (ru != nullptr) {
      errs.forbidden(sp.child("rollingUpdate"),
                     "may not be specified when strategy `type` is 'Recreate'");
    }
  } else if (type == "RollingUpdate") {
    if (ru == nullptr) {
      errs.required(sp.child("rollingUpdate"), "this should be defaulted and never be nil");
    } else {
      const Path rp = sp.child("rollingUpdate");
      const json* max_unavailable = member(*ru, "maxUnavailable");
      const json* max_surge = member(*ru, "maxSurge");
      validate_int_or_percent(max_unavailable, rp.child("maxUnavailable"), errs);
      validate_int_or_percent(max_surge, rp.child("maxSurge"), errs);
      if (int_or_percent_value(max_unavailable) == 0 && int_or_percent_value(max_surge) == 0) {
        errs.invalid(rp.child("maxUnavailable"), go_intstr(max_unavailable),
                     "may not be 0 when `maxSurge` is 0");
      }
      validate_not_more_than_100_percent(max_unavailable, rp.child("maxUnavailable"), errs);
    }
  } else {
    errs.not_supported(sp, strategy != nullptr ? strategy->dump() : "{}",
                       {"Recreate", "RollingUpdate"});
  }
  int64_t min_ready = int_at(d, {"spec", "minReadySeconds"}).value_or(0);
  validate_nonnegative(min_ready, spec.child("minReadySeconds"), errs);
  if (auto rhl = int_at(d, {"spec", "revisionHistoryLimit"})) {
    validate_nonnegative(*rhl, spec.child("revisionHistoryLimit"), errs);
  }
  if (auto pds = int_at(d, {"spec", "progressDeadlineSeconds"})) {
    if (*pds <= 0) {
      errs.invalid(spec.child("progressDeadlineSeconds"), go_int(*pds),
                   "must be greater than zero");
    }
    if (*pds <= min_ready) {
      errs.invalid(spec.child("progressDeadlineSeconds"), go_int(*pds),
                   "must be greater than minReadySeconds");
    }
  }
  validate_selector_immutable(d, old, errs);
}

std::vector<json> deployment_row(const json& d, int64_t now) {
  auto [names, images] = container_cells(at(d, {"spec", "template", "spec", "containers"}));
  std::optional<LabelSelector> sel = selector_of(at(d, {"spec", "selector"}));
  std::string selector = sel ? sel->to_string() : "<invalid>";
  int64_t desired = int_at(d, {"spec", "replicas"}).value_or(1);
  int64_t ready = int_at(d, {"status", "readyReplicas"}).value_or(0);
  return {str_at(d, {"metadata", "name"}),
          std::to_string(ready) + "/" + std::to_string(desired),
          int_at(d, {"status", "updatedReplicas"}).value_or(0),
          int_at(d, {"status", "availableReplicas"}).value_or(0),
          age_cell(d, now),
          names,
          images,
          selector};
}

// ---------------------------------------------------------------------------------------------
// ReplicaSets

void default_replica_set(json& rs) {
  if (!rs.is_object()) return;
  set_default(object_member(rs, "spec"), "replicas", 1);
  default_pod_template(*template_of(rs));
  zero_status_fields(rs, {"replicas"});
}

void validate_replica_set(const json& rs, const json* old, FieldErrors& errs) {
  const Path spec("spec");
  validate_nonnegative(int_at(rs, {"spec", "replicas"}).value_or(0), spec.child("replicas"), errs);
  validate_nonnegative(int_at(rs, {"spec", "minReadySeconds"}).value_or(0),
                       spec.child("minReadySeconds"), errs);
  const json* selector = at(rs, {"spec", "selector"});
  validate_required_selector(selector, spec.child("selector"), "deployment", errs);
  std::optional<LabelSelector> sel = selector_of(selector);
  if (!sel) {
    errs.invalid(spec.child("selector"), go_label_selector(selector), "invalid label selector");
  } else {
    validate_pod_template_for_replicas(at(rs, {"spec", "template"}), *sel, spec.child("template"),
                                       errs);
  }
  validate_selector_immutable(rs, old, errs);
}

std::vector<json> replica_set_row(const json& rs, int64_t now) {
  auto [names, images] = container_cells(at(rs, {"spec", "template", "spec", "containers"}));
  return {str_at(rs, {"metadata", "name"}),
          int_at(rs, {"spec", "replicas"}).value_or(1),
          int_at(rs, {"status", "replicas"}).value_or(0),
          int_at(rs, {"status", "readyReplicas"}).value_or(0),
          age_cell(rs, now),
          names,
          images,
          format_label_selector(at(rs, {"spec", "selector"}))};
}

// ---------------------------------------------------------------------------------------------
// DaemonSets

void default_daemon_set(json& ds) {
  if (!ds.is_object()) return;
  json& spec = object_member(ds, "spec");
  json& strategy = object_member(spec, "updateStrategy");
  if (str_at(strategy, {"type"}).empty()) strategy["type"] = "RollingUpdate";
  if (str_at(strategy, {"type"}) == "RollingUpdate") {
    json& ru = object_member(strategy, "rollingUpdate");
    set_default(ru, "maxUnavailable", 1);
    set_default(ru, "maxSurge", 0);
  }
  set_default(spec, "revisionHistoryLimit", 10);
  default_pod_template(*template_of(ds));
  zero_status_fields(ds, {"currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                          "numberReady"});
}

void validate_daemon_set(const json& ds, const json* old, FieldErrors& errs) {
  const Path spec("spec");
  const json* selector = at(ds, {"spec", "selector"});
  validate_label_selector(selector, spec.child("selector"), errs);
  std::optional<LabelSelector> sel = selector_of(selector);
  const json* labels = at(ds, {"spec", "template", "metadata", "labels"});
  if (sel && !sel->matches_json(labels != nullptr ? *labels : json())) {
    errs.invalid(spec.child("template").child("metadata").child("labels"), go_string_map(labels),
                 "`selector` does not match template `labels`");
  }
  if (selector != nullptr &&
      size_of(member(*selector, "matchLabels")) + size_of(member(*selector, "matchExpressions")) ==
          0) {
    errs.invalid(spec.child("selector"), go_label_selector(selector),
                 "empty selector is invalid for daemonset");
  }
  validate_pod_template_spec(at(ds, {"spec", "template"}), spec.child("template"), errs);
  std::string restart = str_at(ds, {"spec", "template", "spec", "restartPolicy"});
  if (restart != "Always") {
    errs.not_supported(spec.child("template").child("spec").child("restartPolicy"),
                       go_quote(restart), {"Always"});
  }
  if (const json* ads = at(ds, {"spec", "template", "spec", "activeDeadlineSeconds"})) {
    errs.invalid(spec.child("template").child("spec").child("activeDeadlineSeconds"), go_value(ads),
                 "activeDeadlineSeconds in DaemonSet is not Supported");
  }
  validate_nonnegative(int_at(ds, {"spec", "minReadySeconds"}).value_or(0),
                       spec.child("minReadySeconds"), errs);
  const Path up = spec.child("updateStrategy");
  const json* strategy = object_at(ds, {"spec", "updateStrategy"});
  std::string type = strategy != nullptr ? str_at(*strategy, {"type"}) : "";
  if (type == "RollingUpdate") {
    const json* ru = member(*strategy, "rollingUpdate");
    if (ru == nullptr) {
      errs.required(up.child("rollingUpdate"));
    } else {
      const Path rp = up.child("rollingUpdate");
      const json* max_unavailable = member(*ru, "maxUnavailable");
      const json* max_surge = member(*ru, "maxSurge");
      validate_int_or_percent(max_unavailable, rp.child("maxUnavailable"), errs);
      validate_int_or_percent(max_surge, rp.child("maxSurge"), errs);
      if (int_or_percent_value(max_unavailable) == 0 && int_or_percent_value(max_surge) == 0) {
        errs.invalid(rp.child("maxUnavailable"), go_intstr(max_unavailable),
                     "may not be 0 when `maxSurge` is 0");
      }
      validate_not_more_than_100_percent(max_unavailable, rp.child("maxUnavailable"), errs);
    }
  } else if (type != "OnDelete") {
    errs.not_supported(up, strategy != nullptr ? strategy->dump() : "{}",
                       {"RollingUpdate", "OnDelete"});
  }
  if (auto rhl = int_at(ds, {"spec", "revisionHistoryLimit"})) {
    validate_nonnegative(*rhl, spec.child("revisionHistoryLimit"), errs);
  }
  validate_selector_immutable(ds, old, errs);
}

std::vector<json> daemon_set_row(const json& ds, int64_t now) {
  auto [names, images] = container_cells(at(ds, {"spec", "template", "spec", "containers"}));
  auto status = [&](const char* f) { return int_at(ds, {"status", f}).value_or(0); };
  return {str_at(ds, {"metadata", "name"}),
          status("desiredNumberScheduled"),
          status("currentNumberScheduled"),
          status("numberReady"),
          status("updatedNumberScheduled"),
          status("numberAvailable"),
          format_labels(at(ds, {"spec", "template", "spec", "nodeSelector"})),
          age_cell(ds, now),
          names,
          images,
          format_label_selector(at(ds, {"spec", "selector"}))};
}

// ---------------------------------------------------------------------------------------------
// StatefulSets

void default_stateful_set(json& sts) {
  if (!sts.is_object()) return;
  json& spec = object_member(sts, "spec");
  if (str_at(spec, {"podManagementPolicy"}).empty()) spec["podManagementPolicy"] = "OrderedReady";
  json& strategy = object_member(spec, "updateStrategy");
  if (str_at(strategy, {"type"}).empty()) {
    strategy["type"] = "RollingUpdate";
    object_member(strategy, "rollingUpdate");
  }
  if (str_at(strategy, {"type"}) == "RollingUpdate" &&
      object_at(strategy, {"rollingUpdate"}) != nullptr) {
    set_default(strategy["rollingUpdate"], "partition", 0);
  }
  json& retention = object_member(spec, "persistentVolumeClaimRetentionPolicy");
  if (str_at(retention, {"whenDeleted"}).empty()) retention["whenDeleted"] = "Retain";
  if (str_at(retention, {"whenScaled"}).empty()) retention["whenScaled"] = "Retain";
  set_default(spec, "replicas", 1);
  set_default(spec, "revisionHistoryLimit", 10);
  default_pod_template(*template_of(sts));
  if (spec.contains("volumeClaimTemplates") && spec["volumeClaimTemplates"].is_array()) {
    for (json& claim : spec["volumeClaimTemplates"]) {
      if (!claim.is_object()) continue;
      set_default(object_member(claim, "spec"), "volumeMode", "Filesystem");
      json& status = object_member(claim, "status");
      if (str_at(status, {"phase"}).empty()) status["phase"] = "Pending";
    }
  }
  zero_status_fields(sts, {"replicas", "availableReplicas"});
}

void validate_stateful_set(const json& sts, const json* old, FieldErrors& errs) {
  const Path spec("spec");
  std::string pmp = str_at(sts, {"spec", "podManagementPolicy"});
  if (pmp.empty()) {
    errs.required(spec.child("podManagementPolicy"));
  } else if (pmp != "OrderedReady" && pmp != "Parallel") {
    errs.invalid(spec.child("podManagementPolicy"), go_quote(pmp),
                 "must be 'OrderedReady' or 'Parallel'");
  }
  const json* strategy = object_at(sts, {"spec", "updateStrategy"});
  std::string type = strategy != nullptr ? str_at(*strategy, {"type"}) : "";
  const json* ru = strategy != nullptr ? member(*strategy, "rollingUpdate") : nullptr;
  if (type.empty()) {
    errs.required(spec.child("updateStrategy"));
  } else if (type == "OnDelete") {
    if (ru != nullptr) {
      errs.invalid(spec.child("updateStrategy").child("rollingUpdate"), ru->dump(),
                   "only allowed for updateStrategy 'RollingUpdate'");
    }
  } else if (type == "RollingUpdate") {
    if (ru != nullptr) {
      const Path rp = spec.child("updateStrategy").child("rollingUpdate");
      if (auto partition = int_at(*ru, {"partition"})) {
        validate_nonnegative(*partition, rp.child("partition"), errs);
      }
      if (const json* mu = member(*ru, "maxUnavailable")) {
        validate_int_or_percent(mu, rp.child("maxUnavailable"), errs);
        if (int_or_percent_value(mu) == 0) {
          errs.invalid(rp.child("maxUnavailable"), go_intstr(mu), "must be greater than 0");
        }
        validate_not_more_than_100_percent(mu, rp.child("maxUnavailable"), errs);
      }
    }
  } else {
    errs.invalid(spec.child("updateStrategy"), strategy->dump(),
                 "must be 'RollingUpdate' or 'OnDelete'");
  }
  for (const char* f : {"whenDeleted", "whenScaled"}) {
    const json* v = at(sts, {"spec", "persistentVolumeClaimRetentionPolicy", f});
    if (v == nullptr) continue;
    std::string s = as_string(v);
    if (s != "Retain" && s != "Delete") {
      errs.not_supported(spec.child("persistentVolumeClaimRetentionPolicy").child(f), go_quote(s),
                         {"Retain", "Delete"});
    }
  }
  validate_nonnegative(int_at(sts, {"spec", "replicas"}).value_or(0), spec.child("replicas"), errs);
  validate_nonnegative(int_at(sts, {"spec", "minReadySeconds"}).value_or(0),
                       spec.child("minReadySeconds"), errs);
  if (auto start = int_at(sts, {"spec", "ordinals", "start"})) {
    validate_nonnegative(*start, spec.child("ordinals").child("start"), errs);
  }
  const json* selector = at(sts, {"spec", "selector"});
  validate_required_selector(selector, spec.child("selector"), "statefulset", errs);
  std::optional<LabelSelector> sel = selector_of(selector);
  const json* tmpl = at(sts, {"spec", "template"});
  if (!sel) {
    errs.invalid(spec.child("selector"), go_label_selector(selector), "");
  } else if (tmpl == nullptr) {
    errs.required(spec.child("template"));
  } else {
    const json* labels = at(*tmpl, {"metadata", "labels"});
    if (!sel->empty() && !sel->matches_json(labels != nullptr ? *labels : json())) {
      errs.invalid(spec.child("template").child("metadata").child("labels"), go_string_map(labels),
                   "`selector` does not match template `labels`");
    }
    validate_labels(labels, spec.child("template").child("labels"), errs);
    validate_annotations(at(*tmpl, {"metadata", "annotations"}),
                         spec.child("template").child("annotations"), errs);
  }
  std::string restart = str_at(sts, {"spec", "template", "spec", "restartPolicy"});
  if (restart != "Always") {
    errs.not_supported(spec.child("template").child("spec").child("restartPolicy"),
                       go_quote(restart), {"Always"});
  }
  if (at(sts, {"spec", "template", "spec", "activeDeadlineSeconds"}) != nullptr) {
    errs.forbidden(spec.child("template").child("spec").child("activeDeadlineSeconds"),
                   "activeDeadlineSeconds in StatefulSet is not Supported");
  }
  if (old != nullptr) {
    static const json kEmpty = json::object();
    json now = object_at(sts, {"spec"}) != nullptr ? *object_at(sts, {"spec"}) : kEmpty;
    json before = object_at(*old, {"spec"}) != nullptr ? *object_at(*old, {"spec"}) : kEmpty;
    for (const char* f : {"replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
                          "revisionHistoryLimit", "persistentVolumeClaimRetentionPolicy"}) {
      now.erase(f);
      before.erase(f);
    }
    if (now != before) {
      errs.forbidden(spec,
                     "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                     "'template', 'updateStrategy', 'revisionHistoryLimit', "
                     "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden");
    }
  }
}

std::vector<json> stateful_set_row(const json& sts, int64_t now) {
  auto [names, images] = container_cells(at(sts, {"spec", "template", "spec", "containers"}));
  int64_t desired = int_at(sts, {"spec", "replicas"}).value_or(1);
  int64_t ready = int_at(sts, {"status", "readyReplicas"}).value_or(0);
  return {str_at(sts, {"metadata", "name"}), std::to_string(ready) + "/" + std::to_string(desired),
          age_cell(sts, now), names, images};
}

// ---------------------------------------------------------------------------------------------
// ControllerRevisions

void validate_controller_revision(const json& cr, const json* old, FieldErrors& errs) {
  if (member(cr, "data") == nullptr) errs.required(Path("data"), "data is mandatory");
  validate_nonnegative(int_at(cr, {"revision"}).value_or(0), Path("revision"), errs);
  if (old != nullptr) {
    const json* data = member(cr, "data");
    validate_immutable(data, member(*old, "data"), Path("data"), go_value(data), errs);
  }
}

std::vector<json> controller_revision_row(const json& cr, int64_t now) {
  std::string controller = "<none>";
  if (const json* refs = array_at(cr, {"metadata", "ownerReferences"})) {
    for (const json& ref : *refs) {
      if (!bool_at(ref, {"controller"}).value_or(false)) continue;
      std::string api_version = str_at(ref, {"apiVersion"});
      std::string group;
      if (auto slash = api_version.find('/'); slash != std::string::npos) {
        group = api_version.substr(0, slash);
      }
      std::string gk = str_at(ref, {"kind"});
      if (!group.empty()) gk += "." + group;
      controller = ascii_lower(gk) + "/" + str_at(ref, {"name"});
      break;
    }
  }
  return {str_at(cr, {"metadata", "name"}), controller, int_at(cr, {"revision"}).value_or(0),
          age_cell(cr, now)};
}

}  // namespace

void add_apps_resources(Registry& registry, const Docs& docs) {
  const std::string t = kAppsTypes;
  const std::string g = "apps";
  using S = Scope;
  const ColumnDef containers_col =
      column("Containers", "string", "Names of each container in the template.", 1);
  const ColumnDef images_col =
      column("Images", "string", "Images referenced by each container in the template.", 1);

  auto cr = new_resource(docs, t, g, "ControllerRevision", "controllerrevisions", S::kNamespaced);
  cr->columns = {
      name_column(), column("Controller", "string", "Controller of the object"),
      column("Revision", "string", docs.field(apps_type("ControllerRevision"), "revision")),
      age_column()};
  cr->row = controller_revision_row;
  cr->validate = make_validator("ControllerRevision", g, true, NameRule::kDNS1123Subdomain,
                                validate_controller_revision);
  registry.add(cr);

  auto ds = new_resource(docs, t, g, "DaemonSet", "daemonsets", S::kNamespaced);
  ds->short_names = {"ds"};
  ds->categories = {"all"};
  ds->subresources = {status_subresource(g, "DaemonSet")};
  ds->has_status_subresource = true;
  const std::string ds_status = apps_type("DaemonSetStatus");
  ds->columns = {
      name_column(),
      column("Desired", "integer", docs.field(ds_status, "desiredNumberScheduled")),
      column("Current", "integer", docs.field(ds_status, "currentNumberScheduled")),
      column("Ready", "integer", docs.field(ds_status, "numberReady")),
      column("Up-to-date", "integer", docs.field(ds_status, "updatedNumberScheduled")),
      column("Available", "integer", docs.field(ds_status, "numberAvailable")),
      column("Node Selector", "string", docs.field("io.k8s.api.core.v1.PodSpec", "nodeSelector")),
      age_column(),
      containers_col,
      images_col,
      column("Selector", "string", docs.field(apps_type("DaemonSetSpec"), "selector"), 1),
  };
  ds->row = daemon_set_row;
  ds->defaults = default_daemon_set;
  ds->validate =
      make_validator("DaemonSet", g, true, NameRule::kDNS1123Subdomain, validate_daemon_set);
  registry.add(ds);

  auto deploy = new_resource(docs, t, g, "Deployment", "deployments", S::kNamespaced);
  deploy->short_names = {"deploy"};
  deploy->categories = {"all"};
  deploy->subresources = {scale_subresource(), status_subresource(g, "Deployment")};
  deploy->has_status_subresource = true;
  deploy->columns = {
      name_column(),
      column("Ready", "string", "Number of the pod with ready state"),
      column("Up-to-date", "string", docs.field(apps_type("DeploymentStatus"), "updatedReplicas")),
      column("Available", "string", docs.field(apps_type("DeploymentStatus"), "availableReplicas")),
      age_column(),
      containers_col,
      images_col,
      column("Selector", "string", docs.field(apps_type("DeploymentSpec"), "selector"), 1),
  };
  deploy->row = deployment_row;
  deploy->defaults = default_deployment;
  deploy->validate =
      make_validator("Deployment", g, true, NameRule::kDNS1123Subdomain, validate_deployment);
  registry.add(deploy);

  auto rs = new_resource(docs, t, g, "ReplicaSet", "replicasets", S::kNamespaced);
  rs->short_names = {"rs"};
  rs->categories = {"all"};
  rs->subresources = {scale_subresource(), status_subresource(g, "ReplicaSet")};
  rs->has_status_subresource = true;
  rs->columns = {
      name_column(),
      column("Desired", "integer", docs.field(apps_type("ReplicaSetSpec"), "replicas")),
      column("Current", "integer", docs.field(apps_type("ReplicaSetStatus"), "replicas")),
      column("Ready", "integer", docs.field(apps_type("ReplicaSetStatus"), "readyReplicas")),
      age_column(),
      containers_col,
      images_col,
      column("Selector", "string", docs.field(apps_type("ReplicaSetSpec"), "selector"), 1),
  };
  rs->row = replica_set_row;
  rs->defaults = default_replica_set;
  rs->validate =
      make_validator("ReplicaSet", g, true, NameRule::kDNS1123Subdomain, validate_replica_set);
  registry.add(rs);

  auto sts = new_resource(docs, t, g, "StatefulSet", "statefulsets", S::kNamespaced);
  sts->short_names = {"sts"};
  sts->categories = {"all"};
  sts->subresources = {scale_subresource(), status_subresource(g, "StatefulSet")};
  sts->has_status_subresource = true;
  sts->columns = {name_column(), column("Ready", "string", "Number of the pod with ready state"),
                  age_column(), containers_col, images_col};
  sts->row = stateful_set_row;
  sts->defaults = default_stateful_set;
  sts->validate =
      make_validator("StatefulSet", g, true, NameRule::kDNS1123Subdomain, validate_stateful_set);
  registry.add(sts);
}

}  // namespace skiff::api::builtin
