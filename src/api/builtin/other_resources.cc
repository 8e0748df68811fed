// The smaller groups: authentication.k8s.io, authorization.k8s.io, autoscaling, policy,
// storage.k8s.io, apiextensions.k8s.io, coordination.k8s.io and discovery.k8s.io (all v1).
#include <set>

#include "api/builtin/builtin.h"
#include "api/builtin/workloads.h"
#include "api/openapi/crd.h"
#include "common/names.h"
#include "common/strings.h"

namespace skiff::api::builtin {
namespace {

// Review kinds (TokenReview, SubjectAccessReview, ...) are request bodies, never stored: they
// carry no ObjectMeta rules and are named "" in errors.
std::function<Status(const json&, const json*)> review_validator(std::string kind,
                                                                 std::string group,
                                                                 SpecValidator spec) {
  return [kind = std::move(kind), group = std::move(group), spec = std::move(spec)](
             const json& obj, const json* old) -> Status {
    FieldErrors errs;
    if (spec) spec(obj, old, errs);
    return errs.to_status(kind, group, "");
  };
}

std::shared_ptr<ResourceDef> review_resource(const Docs& docs, const char* type_prefix,
                                             std::string group, std::string kind,
                                             std::string resource) {
  auto def = new_resource(docs, type_prefix, std::move(group), std::move(kind), std::move(resource),
                          Scope::kCluster);
  def->verbs = create_only();
  def->stored = false;
  return def;
}

void validate_access_review_spec(const json& review, FieldErrors& errs) {
  const Path spec("spec");
  const json* resource = at(review, {"spec", "resourceAttributes"});
  const json* non_resource = at(review, {"spec", "nonResourceAttributes"});
  if (resource != nullptr && non_resource != nullptr) {
    errs.invalid(spec.child("nonResourceAttributes"), non_resource->dump(),
                 "cannot be specified in combination with resourceAttributes");
  }
  if (resource == nullptr && non_resource == nullptr) {
    errs.invalid(spec.child("resourceAttributes"), "null",
                 "exactly one of nonResourceAttributes or resourceAttributes must be specified");
  }
}

// ---------------------------------------------------------------------------------------------
// HorizontalPodAutoscalers (autoscaling/v1)

void default_hpa(json& hpa) {
  if (!hpa.is_object()) return;
  json& spec = object_member(hpa, "spec");
  set_default(spec, "minReplicas", 1);
  // Stored as autoscaling/v2, whose defaulting adds a CPU utilization target of 80% when no
  // metric is given; read back through v1 that is targetCPUUtilizationPercentage.
  set_default(spec, "targetCPUUtilizationPercentage", 80);
  zero_status_fields(hpa, {"currentReplicas", "desiredReplicas"});
}

void validate_hpa(const json& hpa, const json*, FieldErrors& errs) {
  const Path spec("spec");
  const Path ref = spec.child("scaleTargetRef");
  std::string kind = str_at(hpa, {"spec", "scaleTargetRef", "kind"});
  std::string name = str_at(hpa, {"spec", "scaleTargetRef", "name"});
  if (kind.empty()) {
    errs.required(ref.child("kind"));
  } else {
    for (const std::string& msg : name_problems(NameRule::kPathSegment, kind, false)) {
      errs.invalid(ref.child("kind"), go_quote(kind), msg);
    }
  }
  if (name.empty()) {
    errs.required(ref.child("name"));
  } else {
    for (const std::string& msg : name_problems(NameRule::kPathSegment, name, false)) {
      errs.invalid(ref.child("name"), go_quote(name), msg);
    }
  }
  int64_t min = int_at(hpa, {"spec", "minReplicas"}).value_or(1);
  int64_t max = int_at(hpa, {"spec", "maxReplicas"}).value_or(0);
  if (min < 1)
    errs.invalid(spec.child("minReplicas"), go_int(min), "must be greater than or equal to 1");
  if (max < 1) errs.invalid(spec.child("maxReplicas"), go_int(max), "must be greater than 0");
  if (max < min) {
    errs.invalid(spec.child("maxReplicas"), go_int(max),
                 "must be greater than or equal to `minReplicas`");
  }
  if (auto cpu = int_at(hpa, {"spec", "targetCPUUtilizationPercentage"}); cpu && *cpu < 1) {
    errs.invalid(spec.child("metrics")
                     .index(0)
                     .child("resource")
                     .child("target")
                     .child("averageUtilization"),
                 go_int(*cpu), "must be greater than 0");
  }
}

std::vector<json> hpa_row(const json& hpa, int64_t now) {
  std::string reference = str_at(hpa, {"spec", "scaleTargetRef", "kind"}) + "/" +
                          str_at(hpa, {"spec", "scaleTargetRef", "name"});
  std::string targets = "<none>";
  if (auto target = int_at(hpa, {"spec", "targetCPUUtilizationPercentage"})) {
    std::string current = "<unknown>";
    if (auto c = int_at(hpa, {"status", "currentCPUUtilizationPercentage"})) {
      current = std::to_string(*c) + "%";
    }
    targets = "cpu: " + current + "/" + std::to_string(*target) + "%";
  }
  std::string min_pods = "<unset>";
  if (auto min = int_at(hpa, {"spec", "minReplicas"})) min_pods = std::to_string(*min);
  return {str_at(hpa, {"metadata", "name"}),
          reference,
          targets,
          min_pods,
          int_at(hpa, {"spec", "maxReplicas"}).value_or(0),
          int_at(hpa, {"status", "currentReplicas"}).value_or(0),
          age_cell(hpa, now)};
}

// ---------------------------------------------------------------------------------------------
// PodDisruptionBudgets (policy/v1)

void validate_pdb(const json& pdb, const json*, FieldErrors& errs) {
  const Path spec("spec");
  const json* min_available = at(pdb, {"spec", "minAvailable"});
  const json* max_unavailable = at(pdb, {"spec", "maxUnavailable"});
  if (min_available != nullptr && max_unavailable != nullptr) {
    errs.invalid(spec, pdb["spec"].dump(), "minAvailable and maxUnavailable cannot be both set");
  }
  if (min_available != nullptr) {
    validate_int_or_percent(min_available, spec.child("minAvailable"), errs);
    validate_not_more_than_100_percent(min_available, spec.child("minAvailable"), errs);
  }
  if (max_unavailable != nullptr) {
    validate_int_or_percent(max_unavailable, spec.child("maxUnavailable"), errs);
    validate_not_more_than_100_percent(max_unavailable, spec.child("maxUnavailable"), errs);
  }
  validate_label_selector(at(pdb, {"spec", "selector"}), spec.child("selector"), errs);
  if (const json* policy = at(pdb, {"spec", "unhealthyPodEvictionPolicy"})) {
    std::string p = as_string(policy);
    if (p != "IfHealthyBudget" && p != "AlwaysAllow") {
      errs.not_supported(spec.child("unhealthyPodEvictionPolicy"), go_quote(p),
                         {"AlwaysAllow", "IfHealthyBudget"});
    }
  }
}

std::vector<json> pdb_row(const json& pdb, int64_t now) {
  auto intstr_text = [](const json* v) -> std::string {
    if (v == nullptr) return "N/A";
    if (v->is_string()) return v->get<std::string>();
    return std::to_string(as_int(v).value_or(0));
  };
  return {str_at(pdb, {"metadata", "name"}), intstr_text(at(pdb, {"spec", "minAvailable"})),
          intstr_text(at(pdb, {"spec", "maxUnavailable"})),
          int_at(pdb, {"status", "disruptionsAllowed"}).value_or(0), age_cell(pdb, now)};
}

// ---------------------------------------------------------------------------------------------
// StorageClasses (storage.k8s.io/v1)

void default_storage_class(json& sc) {
  if (!sc.is_object()) return;
  set_default(sc, "reclaimPolicy", "Delete");
  set_default(sc, "volumeBindingMode", "Immediate");
}

void validate_storage_class(const json& sc, const json* old, FieldErrors& errs) {
  std::string provisioner = str_at(sc, {"provisioner"});
  if (provisioner.empty()) {
    errs.required(Path("provisioner"));
  } else {
    for (const std::string& msg : is_qualified_name(provisioner)) {
      errs.invalid(Path("provisioner"), go_quote(provisioner), msg);
    }
  }
  std::string reclaim = str_at(sc, {"reclaimPolicy"});
  if (has(sc, "reclaimPolicy") && reclaim != "Delete" && reclaim != "Retain") {
    errs.not_supported(Path("reclaimPolicy"), go_quote(reclaim), {"Delete", "Retain"});
  }
  std::string mode = str_at(sc, {"volumeBindingMode"});
  if (!has(sc, "volumeBindingMode")) {
    errs.required(Path("volumeBindingMode"));
  } else if (mode != "Immediate" && mode != "WaitForFirstConsumer") {
    errs.not_supported(Path("volumeBindingMode"), go_quote(mode),
                       {"Immediate", "WaitForFirstConsumer"});
  }
  if (old != nullptr) {
    if (!json_equal(member(sc, "parameters"), member(*old, "parameters"))) {
      errs.forbidden(Path("parameters"), "updates to parameters are forbidden.");
    }
    if (provisioner != str_at(*old, {"provisioner"})) {
      errs.forbidden(Path("provisioner"), "updates to provisioner are forbidden.");
    }
    if (!json_equal(member(sc, "reclaimPolicy"), member(*old, "reclaimPolicy"))) {
      errs.forbidden(Path("reclaimPolicy"), "updates to reclaimPolicy are forbidden.");
    }
    validate_immutable(member(sc, "volumeBindingMode"), member(*old, "volumeBindingMode"),
                       Path("volumeBindingMode"), go_quote(mode), errs);
  }
}

std::vector<json> storage_class_row(const json& sc, int64_t now) {
  std::string name = str_at(sc, {"metadata", "name"});
  if (str_at(sc, {"metadata", "annotations", "storageclass.kubernetes.io/is-default-class"}) ==
          "true" ||
      str_at(sc, {"metadata", "annotations", "storageclass.beta.kubernetes.io/is-default-class"}) ==
          "true") {
    name += " (default)";
  }
  return {name,
          str_at(sc, {"provisioner"}),
          str_at(sc, {"reclaimPolicy"}, "Delete"),
          str_at(sc, {"volumeBindingMode"}, "Immediate"),
          bool_at(sc, {"allowVolumeExpansion"}).value_or(false),
          age_cell(sc, now)};
}

// ---------------------------------------------------------------------------------------------
// CustomResourceDefinitions (apiextensions.k8s.io/v1)

void default_crd(json& crd) {
  if (!crd.is_object()) return;
  json& spec = object_member(crd, "spec");
  json& names = object_member(spec, "names");
  std::string kind = str_at(names, {"kind"});
  if (str_at(names, {"singular"}).empty()) {
    names["singular"] = ascii_lower(kind);
  }
  if (str_at(names, {"listKind"}).empty() && !kind.empty()) names["listKind"] = kind + "List";
  json& conversion = object_member(spec, "conversion");
  if (str_at(conversion, {"strategy"}).empty()) conversion["strategy"] = "None";
}

// The CRD rules live with the conversion of CRDs into served resources, which needs them too.
void validate_crd(const json& crd, const json* old, FieldErrors& errs) {
  errs.add_causes(crd_field_errors(crd, old));
}

// ---------------------------------------------------------------------------------------------
// Leases (coordination.k8s.io/v1)

void validate_lease(const json& lease, const json*, FieldErrors& errs) {
  const Path spec("spec");
  if (auto d = int_at(lease, {"spec", "leaseDurationSeconds"}); d && *d <= 0) {
    errs.invalid(spec.child("leaseDurationSeconds"), go_int(*d), "must be greater than 0");
  }
  if (auto t = int_at(lease, {"spec", "leaseTransitions"}); t && *t < 0) {
    errs.invalid(spec.child("leaseTransitions"), go_int(*t), "must be greater than or equal to 0");
  }
}

std::vector<json> lease_row(const json& lease, int64_t now) {
  return {str_at(lease, {"metadata", "name"}), str_at(lease, {"spec", "holderIdentity"}),
          age_cell(lease, now)};
}

// ---------------------------------------------------------------------------------------------
// EndpointSlices (discovery.k8s.io/v1)

void default_endpoint_slice(json& es) {
  if (!es.is_object() || !es.contains("ports") || !es["ports"].is_array()) return;
  for (json& port : es["ports"]) {
    if (!port.is_object()) continue;
    set_default(port, "name", "");
    set_default(port, "protocol", "TCP");
  }
}

void validate_endpoint_slice(const json& es, const json* old, FieldErrors& errs) {
  std::string type = str_at(es, {"addressType"});
  if (type.empty()) {
    errs.required(Path("addressType"));
  } else if (type != "IPv4" && type != "IPv6" && type != "FQDN") {
    errs.not_supported(Path("addressType"), go_quote(type), {"FQDN", "IPv4", "IPv6"});
  }
  const json* endpoints = array_at(es, {"endpoints"});
  for (size_t i = 0; endpoints != nullptr && i < endpoints->size(); ++i) {
    Path ep = Path("endpoints").index(i);
    std::vector<std::string> addrs = string_list(member((*endpoints)[i], "addresses"));
    if (addrs.empty()) {
      errs.required(ep.child("addresses"), "must contain at least 1 address");
    } else if (addrs.size() > 100) {
      errs.too_many(ep.child("addresses"), static_cast<int64_t>(addrs.size()), 100);
    }
    for (size_t a = 0; a < addrs.size(); ++a) {
      Path ap = ep.child("addresses").index(a);
      bool v6 = addrs[a].find(':') != std::string::npos;
      if (type == "IPv4" && (!is_ip(addrs[a]) || v6)) {
        errs.invalid(ap, go_quote(addrs[a]), "must be a valid IPv4 address");
      } else if (type == "IPv6" && (!is_ip(addrs[a]) || !v6)) {
        errs.invalid(ap, go_quote(addrs[a]), "must be a valid IPv6 address");
      } else if (type == "FQDN") {
        validate_dns1123_subdomain(addrs[a], ap, errs);
      }
    }
  }
  const json* ports = array_at(es, {"ports"});
  std::set<std::string> names;
  for (size_t i = 0; ports != nullptr && i < ports->size(); ++i) {
    const json& port = (*ports)[i];
    Path pp = Path("ports").index(i);
    std::string name = str_at(port, {"name"});
    if (!name.empty()) validate_dns1123_label(name, pp.child("name"), errs);
    if (!names.insert(name).second) errs.duplicate(pp.child("name"), go_quote(name));
    if (auto n = int_at(port, {"port"})) {
      for (const std::string& msg : is_valid_port_num(*n))
        errs.invalid(pp.child("port"), go_int(*n), msg);
    }
    std::string protocol = str_at(port, {"protocol"});
    if (has(port, "protocol") && protocol != "TCP" && protocol != "UDP" && protocol != "SCTP") {
      errs.not_supported(pp.child("protocol"), go_quote(protocol), {"SCTP", "TCP", "UDP"});
    }
  }
  if (old != nullptr) {
    const json* t = member(es, "addressType");
    validate_immutable(t, member(*old, "addressType"), Path("addressType"), go_value(t), errs);
  }
}

std::string list_with_more(const std::vector<std::string>& list, bool more, size_t count,
                           size_t max) {
  std::string ret;
  for (size_t i = 0; i < list.size(); ++i) ret += (i ? "," : "") + list[i];
  if (more) return ret + " + " + std::to_string(count - max) + " more...";
  return ret.empty() ? "<unset>" : ret;
}

std::vector<json> endpoint_slice_row(const json& es, int64_t now) {
  const size_t max = 3;
  std::vector<std::string> ports;
  bool more_ports = false;
  size_t port_count = 0;
  if (const json* ps = array_at(es, {"ports"})) {
    for (const json& p : *ps) {
      if (ports.size() < max) {
        std::string num = "*";
        if (auto n = int_at(p, {"port"})) {
          num = std::to_string(*n);
        } else if (member(p, "name") != nullptr) {
          num = str_at(p, {"name"});
        }
        ports.push_back(num);
      } else if (ports.size() == max) {
        more_ports = true;
      }
      ++port_count;
    }
  }
  std::vector<std::string> addrs;
  bool more_addrs = false;
  size_t addr_count = 0;
  if (const json* eps = array_at(es, {"endpoints"})) {
    for (const json& e : *eps) {
      for (const std::string& a : string_list(member(e, "addresses"))) {
        if (addrs.size() < max) {
          addrs.push_back(a);
        } else if (addrs.size() == max) {
          more_addrs = true;
        }
        ++addr_count;
      }
    }
  }
  return {str_at(es, {"metadata", "name"}), str_at(es, {"addressType"}),
          list_with_more(ports, more_ports, port_count, max),
          list_with_more(addrs, more_addrs, addr_count, max), age_cell(es, now)};
}

}  // namespace

void add_authentication_resources(Registry& registry, const Docs& docs) {
  const char* t = "io.k8s.api.authentication.v1";
  const std::string g = "authentication.k8s.io";
  auto ssr = review_resource(docs, t, g, "SelfSubjectReview", "selfsubjectreviews");
  ssr->validate = review_validator("SelfSubjectReview", g, {});
  registry.add(ssr);
  auto tr = review_resource(docs, t, g, "TokenReview", "tokenreviews");
  tr->validate = review_validator("TokenReview", g, {});
  registry.add(tr);
}

void add_authorization_resources(Registry& registry, const Docs& docs) {
  const char* t = "io.k8s.api.authorization.v1";
  const std::string g = "authorization.k8s.io";
  auto ssar = review_resource(docs, t, g, "SelfSubjectAccessReview", "selfsubjectaccessreviews");
  ssar->validate = review_validator(
      "SelfSubjectAccessReview", g,
      [](const json& r, const json*, FieldErrors& errs) { validate_access_review_spec(r, errs); });
  registry.add(ssar);
  auto ssrr = review_resource(docs, t, g, "SelfSubjectRulesReview", "selfsubjectrulesreviews");
  ssrr->validate = review_validator("SelfSubjectRulesReview", g, {});
  registry.add(ssrr);
  auto sar = review_resource(docs, t, g, "SubjectAccessReview", "subjectaccessreviews");
  sar->validate =
      review_validator("SubjectAccessReview", g, [](const json& r, const json*, FieldErrors& errs) {
        validate_access_review_spec(r, errs);
        if (str_at(r, {"spec", "user"}).empty() && size_of(at(r, {"spec", "groups"})) == 0) {
          errs.invalid(Path("spec").child("user"), go_quote(""),
                       "at least one of user or group must be specified");
        }
      });
  registry.add(sar);
}

void add_autoscaling_resources(Registry& registry, const Docs& docs) {
  const std::string t = "io.k8s.api.autoscaling.v1";
  const std::string g = "autoscaling";
  auto hpa = new_resource(docs, t, g, "HorizontalPodAutoscaler", "horizontalpodautoscalers",
                          Scope::kNamespaced);
  hpa->short_names = {"hpa"};
  hpa->categories = {"all"};
  hpa->subresources = {status_subresource(g, "HorizontalPodAutoscaler")};
  hpa->has_status_subresource = true;
  const std::string spec_type = t + ".HorizontalPodAutoscalerSpec";
  hpa->columns = {
      name_column(),
      column("Reference", "string", docs.field(spec_type, "scaleTargetRef")),
      column("Targets", "string", docs.field(spec_type, "targetCPUUtilizationPercentage")),
      column("MinPods", "string", docs.field(spec_type, "minReplicas")),
      column("MaxPods", "string", docs.field(spec_type, "maxReplicas")),
      column("Replicas", "string",
             docs.field(t + ".HorizontalPodAutoscalerStatus", "currentReplicas")),
      age_column(),
  };
  hpa->row = hpa_row;
  hpa->defaults = default_hpa;
  hpa->validate =
      make_validator("HorizontalPodAutoscaler", g, true, NameRule::kDNS1123Subdomain, validate_hpa);
  registry.add(hpa);
}

void add_policy_resources(Registry& registry, const Docs& docs) {
  const std::string g = "policy";
  auto pdb = new_resource(docs, "io.k8s.api.policy.v1", g, "PodDisruptionBudget",
                          "poddisruptionbudgets", Scope::kNamespaced);
  pdb->short_names = {"pdb"};
  pdb->subresources = {status_subresource(g, "PodDisruptionBudget")};
  pdb->has_status_subresource = true;
  pdb->columns = {
      name_column(),
      column("Min Available", "string", "The minimum number of pods that must be available."),
      column("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
      column("Allowed Disruptions", "integer",
             "Calculated number of pods that may be disrupted at this time."),
      age_column(),
  };
  pdb->row = pdb_row;
  pdb->defaults = [](json& obj) {
    zero_status_fields(obj,
                       {"disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"});
  };
  pdb->validate =
      make_validator("PodDisruptionBudget", g, true, NameRule::kDNS1123Subdomain, validate_pdb);
  registry.add(pdb);
}

void add_storage_resources(Registry& registry, const Docs& docs) {
  const std::string t = "io.k8s.api.storage.v1";
  const std::string g = "storage.k8s.io";
  auto sc = new_resource(docs, t, g, "StorageClass", "storageclasses", Scope::kCluster);
  sc->short_names = {"sc"};
  const std::string sc_type = t + ".StorageClass";
  sc->columns = {
      name_column(),
      column("Provisioner", "string", docs.field(sc_type, "provisioner")),
      column("ReclaimPolicy", "string", docs.field(sc_type, "reclaimPolicy")),
      column("VolumeBindingMode", "string", docs.field(sc_type, "volumeBindingMode")),
      column("AllowVolumeExpansion", "string", docs.field(sc_type, "allowVolumeExpansion")),
      age_column(),
  };
  sc->row = storage_class_row;
  sc->defaults = default_storage_class;
  sc->validate =
      make_validator("StorageClass", g, false, NameRule::kDNS1123Subdomain, validate_storage_class);
  registry.add(sc);
}

void add_apiextensions_resources(Registry& registry, const Docs& docs) {
  const std::string g = "apiextensions.k8s.io";
  auto crd = new_resource(docs, "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1", g,
                          "CustomResourceDefinition", "customresourcedefinitions", Scope::kCluster);
  crd->short_names = {"crd", "crds"};
  crd->categories = {"api-extensions"};
  crd->subresources = {status_subresource(g, "CustomResourceDefinition")};
  crd->has_status_subresource = true;
  crd->defaults = default_crd;
  crd->validate = make_validator("CustomResourceDefinition", g, false, NameRule::kDNS1123Subdomain,
                                 validate_crd);
  registry.add(crd);
}

void add_coordination_resources(Registry& registry, const Docs& docs) {
  const std::string t = "io.k8s.api.coordination.v1";
  const std::string g = "coordination.k8s.io";
  auto lease = new_resource(docs, t, g, "Lease", "leases", Scope::kNamespaced);
  lease->columns = {name_column(),
                    column("Holder", "string", docs.field(t + ".LeaseSpec", "holderIdentity")),
                    age_column()};
  lease->row = lease_row;
  lease->validate = make_validator("Lease", g, true, NameRule::kDNS1123Subdomain, validate_lease);
  registry.add(lease);
}

void add_discovery_resources(Registry& registry, const Docs& docs) {
  const std::string t = "io.k8s.api.discovery.v1";
  const std::string g = "discovery.k8s.io";
  auto es = new_resource(docs, t, g, "EndpointSlice", "endpointslices", Scope::kNamespaced);
  const std::string es_type = t + ".EndpointSlice";
  es->columns = {name_column(), column("AddressType", "string", docs.field(es_type, "addressType")),
                 column("Ports", "string", docs.field(es_type, "ports")),
                 column("Endpoints", "string", docs.field(es_type, "endpoints")), age_column()};
  es->row = endpoint_slice_row;
  es->defaults = default_endpoint_slice;
  es->validate = make_validator("EndpointSlice", g, true, NameRule::kDNS1123Subdomain,
                                validate_endpoint_slice);
  registry.add(es);
}

}  // namespace skiff::api::builtin
