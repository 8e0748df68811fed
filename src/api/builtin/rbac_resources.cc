// The rbac.authorization.k8s.io group, version v1.
#include "api/builtin/builtin.h"

namespace skiff::api::builtin {
namespace {

constexpr const char* kRbacTypes = "io.k8s.api.rbac.v1";
constexpr const char* kRbacGroup = "rbac.authorization.k8s.io";

void default_subjects(json& binding) {
  if (!binding.is_object() || !binding.contains("subjects") || !binding["subjects"].is_array())
    return;
  for (json& s : binding["subjects"]) {
    if (!s.is_object() || !str_at(s, {"apiGroup"}).empty()) continue;
    std::string kind = str_at(s, {"kind"});
    if (kind == "ServiceAccount") {
      s["apiGroup"] = "";
    } else if (kind == "User" || kind == "Group") {
      s["apiGroup"] = kRbacGroup;
    }
  }
}

void default_binding(json& binding) {
  if (!binding.is_object()) return;
  json& ref = object_member(binding, "roleRef");
  if (str_at(ref, {"apiGroup"}).empty()) ref["apiGroup"] = kRbacGroup;
  default_subjects(binding);
}

void validate_policy_rules(const json& obj, bool namespaced, FieldErrors& errs) {
  const json* rules = array_at(obj, {"rules"});
  for (size_t i = 0; rules != nullptr && i < rules->size(); ++i) {
    const json& rule = (*rules)[i];
    Path rp = Path("rules").index(i);
    if (size_of(member(rule, "verbs")) == 0) {
      errs.required(rp.child("verbs"), "verbs must contain at least one value");
    }
    if (size_of(member(rule, "nonResourceURLs")) > 0) {
      std::string urls = go_string_slice(member(rule, "nonResourceURLs"));
      if (namespaced) {
        errs.invalid(rp.child("nonResourceURLs"), urls,
                     "namespaced rules cannot apply to non-resource URLs");
      }
      if (size_of(member(rule, "apiGroups")) > 0 || size_of(member(rule, "resources")) > 0 ||
          size_of(member(rule, "resourceNames")) > 0) {
        errs.invalid(rp.child("nonResourceURLs"), urls,
                     "rules cannot apply to both regular resources and non-resource URLs");
      }
      continue;
    }
    if (size_of(member(rule, "apiGroups")) == 0) {
      errs.required(rp.child("apiGroups"), "resource rules must supply at least one api group");
    }
    if (size_of(member(rule, "resources")) == 0) {
      errs.required(rp.child("resources"), "resource rules must supply at least one resource");
    }
  }
}

void validate_role(const json& role, const json*, FieldErrors& errs) {
  validate_policy_rules(role, true, errs);
}

void validate_cluster_role(const json& role, const json*, FieldErrors& errs) {
  validate_policy_rules(role, false, errs);
  if (const json* agg = object_at(role, {"aggregationRule"})) {
    const json* selectors = array_at(*agg, {"clusterRoleSelectors"});
    if (size_of(selectors) == 0) {
      errs.required(Path("aggregationRule").child("clusterRoleSelectors"),
                    "at least one clusterRoleSelector required if aggregationRule is non-nil");
    }
    for (size_t i = 0; selectors != nullptr && i < selectors->size(); ++i) {
      validate_label_selector(&(*selectors)[i],
                              Path("aggregationRule").child("clusterRoleSelectors").index(i), errs);
    }
  }
}

std::string go_role_ref(const json* ref) {
  return "rbac.RoleRef{APIGroup:" + go_quote(ref ? str_at(*ref, {"apiGroup"}) : "") +
         ", Kind:" + go_quote(ref ? str_at(*ref, {"kind"}) : "") +
         ", Name:" + go_quote(ref ? str_at(*ref, {"name"}) : "") + "}";
}

void validate_binding_common(const json& b, const json* old, bool cluster, FieldErrors& errs) {
  const Path ref("roleRef");
  std::string api_group = str_at(b, {"roleRef", "apiGroup"});
  if (api_group != kRbacGroup)
    errs.not_supported(ref.child("apiGroup"), go_quote(api_group), {kRbacGroup});
  std::string kind = str_at(b, {"roleRef", "kind"});
  if (cluster) {
    if (kind != "ClusterRole")
      errs.not_supported(ref.child("kind"), go_quote(kind), {"ClusterRole"});
  } else if (kind != "Role" && kind != "ClusterRole") {
    errs.not_supported(ref.child("kind"), go_quote(kind), {"Role", "ClusterRole"});
  }
  std::string name = str_at(b, {"roleRef", "name"});
  if (name.empty()) {
    errs.required(ref.child("name"));
  } else {
    for (const std::string& msg : name_problems(NameRule::kPathSegment, name, false)) {
      errs.invalid(ref.child("name"), go_quote(name), msg);
    }
  }
  const json* subjects = array_at(b, {"subjects"});
  for (size_t i = 0; subjects != nullptr && i < subjects->size(); ++i) {
    const json& s = (*subjects)[i];
    Path sp = Path("subjects").index(i);
    std::string sname = str_at(s, {"name"});
    std::string skind = str_at(s, {"kind"});
    std::string sgroup = str_at(s, {"apiGroup"});
    if (sname.empty()) errs.required(sp.child("name"));
    if (skind == "ServiceAccount") {
      if (!sname.empty()) {
        for (const std::string& msg : name_problems(NameRule::kDNS1123Subdomain, sname, false)) {
          errs.invalid(sp.child("name"), go_quote(sname), msg);
        }
      }
      if (!sgroup.empty()) errs.not_supported(sp.child("apiGroup"), go_quote(sgroup), {""});
      if (cluster && str_at(s, {"namespace"}).empty()) errs.required(sp.child("namespace"));
    } else if (skind == "User" || skind == "Group") {
      if (sgroup != kRbacGroup)
        errs.not_supported(sp.child("apiGroup"), go_quote(sgroup), {kRbacGroup});
    } else {
      errs.not_supported(sp.child("kind"), go_quote(skind), {"ServiceAccount", "User", "Group"});
    }
  }
  if (old != nullptr && !json_equal(member(b, "roleRef"), member(*old, "roleRef"))) {
    errs.invalid(ref, go_role_ref(member(b, "roleRef")), "cannot change roleRef");
  }
}

void validate_role_binding(const json& b, const json* old, FieldErrors& errs) {
  validate_binding_common(b, old, false, errs);
}

void validate_cluster_role_binding(const json& b, const json* old, FieldErrors& errs) {
  validate_binding_common(b, old, true, errs);
}

std::vector<json> binding_row(const json& b, int64_t now) {
  std::string users, groups, sas;
  auto append = [](std::string& list, const std::string& v) {
    list += (list.empty() ? "" : ", ") + v;
  };
  if (const json* subjects = array_at(b, {"subjects"})) {
    for (const json& s : *subjects) {
      std::string kind = str_at(s, {"kind"});
      if (kind == "ServiceAccount") {
        append(sas, str_at(s, {"namespace"}) + "/" + str_at(s, {"name"}));
      } else if (kind == "User") {
        append(users, str_at(s, {"name"}));
      } else if (kind == "Group") {
        append(groups, str_at(s, {"name"}));
      }
    }
  }
  return {str_at(b, {"metadata", "name"}),
          str_at(b, {"roleRef", "kind"}) + "/" + str_at(b, {"roleRef", "name"}),
          age_cell(b, now),
          users,
          groups,
          sas};
}

std::vector<ColumnDef> binding_columns(const Docs& docs, const std::string& kind,
                                       const char* noun) {
  return {name_column(),
          column("Role", "string", docs.field(std::string(kRbacTypes) + "." + kind, "roleRef")),
          age_column(),
          column("Users", "string", std::string("Users in the ") + noun, 1),
          column("Groups", "string", std::string("Groups in the ") + noun, 1),
          column("ServiceAccounts", "string", std::string("ServiceAccounts in the ") + noun, 1)};
}

}  // namespace

void add_rbac_resources(Registry& registry, const Docs& docs) {
  const std::string t = kRbacTypes;
  const std::string g = kRbacGroup;

  auto crb = new_resource(docs, t, g, "ClusterRoleBinding", "clusterrolebindings", Scope::kCluster);
  crb->columns = binding_columns(docs, "ClusterRoleBinding", "clusterRoleBinding");
  crb->row = binding_row;
  crb->defaults = default_binding;
  crb->validate = make_validator("ClusterRoleBinding", g, false, NameRule::kPathSegment,
                                 validate_cluster_role_binding);
  registry.add(crb);

  auto cr = new_resource(docs, t, g, "ClusterRole", "clusterroles", Scope::kCluster);
  cr->validate =
      make_validator("ClusterRole", g, false, NameRule::kPathSegment, validate_cluster_role);
  registry.add(cr);

  auto rb = new_resource(docs, t, g, "RoleBinding", "rolebindings", Scope::kNamespaced);
  rb->columns = binding_columns(docs, "RoleBinding", "roleBinding");
  rb->row = binding_row;
  rb->defaults = default_binding;
  rb->validate =
      make_validator("RoleBinding", g, true, NameRule::kPathSegment, validate_role_binding);
  registry.add(rb);

  auto role = new_resource(docs, t, g, "Role", "roles", Scope::kNamespaced);
  role->validate = make_validator("Role", g, true, NameRule::kPathSegment, validate_role);
  registry.add(role);
}

}  // namespace skiff::api::builtin
