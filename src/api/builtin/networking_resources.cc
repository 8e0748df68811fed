// The networking.k8s.io group, version v1.
#include <set>

#include "api/builtin/builtin.h"
#include "common/names.h"

namespace skiff::api::builtin {
namespace {

constexpr const char* kNetworkingTypes = "io.k8s.api.networking.v1";

std::string net_type(std::string_view kind) {
  return std::string(kNetworkingTypes) + "." + std::string(kind);
}

// ---------------------------------------------------------------------------------------------
// Ingresses

void default_ingress(json& ing) {
  if (!ing.is_object()) return;
  object_member(object_member(ing, "status"), "loadBalancer");
}

void validate_backend(const json& backend, const Path& p, FieldErrors& errs) {
  const json* service = object_at(backend, {"service"});
  const json* resource = object_at(backend, {"resource"});
  if (service != nullptr && resource != nullptr) {
    errs.invalid(p, backend.dump(), "cannot set both resource and service backends");
    return;
  }
  if (service == nullptr && resource == nullptr) {
    errs.invalid(p, backend.dump(), "resource or service backend is required");
    return;
  }
  if (service != nullptr) {
    std::string name = str_at(*service, {"name"});
    if (name.empty()) {
      errs.required(p.child("service").child("name"));
    } else {
      for (const std::string& msg : is_dns1035_label(name)) {
        errs.invalid(p.child("service").child("name"), go_quote(name), msg);
      }
    }
    std::string port_name = str_at(*service, {"port", "name"});
    int64_t port_number = int_at(*service, {"port", "number"}).value_or(0);
    Path pp = p.child("service").child("port");
    if (!port_name.empty() && port_number != 0) {
      errs.invalid(pp, go_value(at(*service, {"port"})), "cannot set both port name & port number");
    } else if (!port_name.empty()) {
      for (const std::string& msg : is_valid_port_name(port_name)) {
        errs.invalid(pp.child("name"), go_quote(port_name), msg);
      }
    } else if (port_number != 0) {
      for (const std::string& msg : is_valid_port_num(port_number)) {
        errs.invalid(pp.child("number"), go_int(port_number), msg);
      }
    } else {
      errs.required(pp, "port name or number is required");
    }
  }
}

void validate_ingress(const json& ing, const json*, FieldErrors& errs) {
  const Path spec("spec");
  const json* rules = array_at(ing, {"spec", "rules"});
  const json* default_backend = object_at(ing, {"spec", "defaultBackend"});
  if (size_of(rules) == 0 && default_backend == nullptr) {
    errs.invalid(spec, go_value(at(ing, {"spec", "rules"})),
                 "either `defaultBackend` or `rules` must be specified");
  }
  if (default_backend != nullptr)
    validate_backend(*default_backend, spec.child("defaultBackend"), errs);
  for (size_t i = 0; rules != nullptr && i < rules->size(); ++i) {
    const json& rule = (*rules)[i];
    Path rp = spec.child("rules").index(i);
    std::string host = str_at(rule, {"host"});
    if (!host.empty()) {
      std::string check = host.rfind("*.", 0) == 0 ? host.substr(2) : host;
      for (const std::string& msg : is_dns1123_subdomain(check)) {
        errs.invalid(rp.child("host"), go_quote(host), msg);
      }
    }
    const json* paths = array_at(rule, {"http", "paths"});
    if (object_at(rule, {"http"}) != nullptr && size_of(paths) == 0) {
      errs.required(rp.child("http").child("paths"));
    }
    for (size_t k = 0; paths != nullptr && k < paths->size(); ++k) {
      const json& path = (*paths)[k];
      Path pp = rp.child("http").child("paths").index(k);
      std::string type = str_at(path, {"pathType"});
      std::string value = str_at(path, {"path"});
      if (!has(path, "pathType")) {
        errs.required(pp.child("pathType"), "pathType must be specified");
      } else if (type != "Exact" && type != "Prefix" && type != "ImplementationSpecific") {
        errs.not_supported(pp.child("pathType"), go_quote(type),
                           {"Exact", "ImplementationSpecific", "Prefix"});
      } else if ((type == "Exact" || type == "Prefix") && (value.empty() || value[0] != '/')) {
        errs.invalid(pp.child("path"), go_quote(value), "must be an absolute path");
      }
      if (const json* backend = object_at(path, {"backend"})) {
        validate_backend(*backend, pp.child("backend"), errs);
      } else {
        errs.required(pp.child("backend"));
      }
    }
  }
  std::string cls = str_at(ing, {"spec", "ingressClassName"});
  if (at(ing, {"spec", "ingressClassName"}) != nullptr) {
    for (const std::string& msg : is_dns1123_subdomain(cls)) {
      errs.invalid(spec.child("ingressClassName"), go_quote(cls), msg);
    }
  }
}

std::vector<json> ingress_row(const json& ing, int64_t now) {
  std::string cls = "<none>";
  if (const json* c = at(ing, {"spec", "ingressClassName"})) cls = as_string(c);
  // formatHosts.
  std::vector<std::string> hosts;
  const json* rules = array_at(ing, {"spec", "rules"});
  const size_t max = 3;
  bool more = false;
  for (size_t i = 0; rules != nullptr && i < rules->size(); ++i) {
    if (hosts.size() == max) more = true;
    std::string host = str_at((*rules)[i], {"host"});
    if (!more && !host.empty()) hosts.push_back(host);
  }
  std::string host_cell;
  for (size_t i = 0; i < hosts.size(); ++i) host_cell += (i ? "," : "") + hosts[i];
  if (hosts.empty()) host_cell = "*";
  if (more) host_cell += " + " + std::to_string(rules->size() - max) + " more...";
  std::set<std::string> addresses;
  if (const json* ingress = array_at(ing, {"status", "loadBalancer", "ingress"})) {
    for (const json& e : *ingress) {
      std::string ip = str_at(e, {"ip"});
      std::string hostname = str_at(e, {"hostname"});
      if (!ip.empty()) {
        addresses.insert(ip);
      } else if (!hostname.empty()) {
        addresses.insert(hostname);
      }
    }
  }
  std::string address;
  for (const std::string& a : addresses) address += (address.empty() ? "" : ",") + a;
  std::string ports = size_of(array_at(ing, {"spec", "tls"})) != 0 ? "80, 443" : "80";
  return {str_at(ing, {"metadata", "name"}), cls, host_cell, address, ports, age_cell(ing, now)};
}

// ---------------------------------------------------------------------------------------------
// IngressClasses

void default_ingress_class(json& ic) {
  if (json* params = mutable_at(ic, {"spec", "parameters"});
      params != nullptr && params->is_object()) {
    set_default(*params, "scope", "Cluster");
  }
}

void validate_ingress_class(const json& ic, const json* old, FieldErrors& errs) {
  const Path spec("spec");
  std::string controller = str_at(ic, {"spec", "controller"});
  if (controller.empty()) {
    errs.required(spec.child("controller"));
  } else if (controller.size() > 250) {
    errs.too_long(spec.child("controller"), 250);
  }
  if (old != nullptr) {
    const json* c = at(ic, {"spec", "controller"});
    validate_immutable(c, at(*old, {"spec", "controller"}), spec.child("controller"), go_value(c),
                       errs);
  }
  if (const json* params = object_at(ic, {"spec", "parameters"})) {
    Path pp = spec.child("parameters");
    if (str_at(*params, {"kind"}).empty()) errs.required(pp.child("kind"));
    if (str_at(*params, {"name"}).empty()) errs.required(pp.child("name"));
    std::string scope = str_at(*params, {"scope"});
    if (scope != "Cluster" && scope != "Namespace") {
      errs.not_supported(pp.child("scope"), go_quote(scope), {"Cluster", "Namespace"});
    }
    if (scope == "Namespace" && str_at(*params, {"namespace"}).empty()) {
      errs.required(pp.child("namespace"), "`parameters.scope` is set to 'Namespace'");
    }
    if (scope == "Cluster" && !str_at(*params, {"namespace"}).empty()) {
      errs.forbidden(pp.child("namespace"), "`parameters.scope` is set to 'Cluster'");
    }
  }
}

std::vector<json> ingress_class_row(const json& ic, int64_t now) {
  std::string parameters = "<none>";
  if (const json* p = object_at(ic, {"spec", "parameters"})) {
    parameters = str_at(*p, {"kind"});
    if (member(*p, "apiGroup") != nullptr) parameters += "." + str_at(*p, {"apiGroup"});
    parameters += "/" + str_at(*p, {"name"});
  }
  return {str_at(ic, {"metadata", "name"}), str_at(ic, {"spec", "controller"}), parameters,
          age_cell(ic, now)};
}

// ---------------------------------------------------------------------------------------------
// NetworkPolicies

void default_network_policy(json& np) {
  if (!np.is_object()) return;
  json& spec = object_member(np, "spec");
  object_member(spec, "podSelector");
  for (const char* dir : {"ingress", "egress"}) {
    if (!spec.contains(dir) || !spec[dir].is_array()) continue;
    for (json& rule : spec[dir]) {
      if (!rule.is_object() || !rule.contains("ports") || !rule["ports"].is_array()) continue;
      for (json& port : rule["ports"]) {
        if (port.is_object()) set_default(port, "protocol", "TCP");
      }
    }
  }
  if (size_of(member(spec, "policyTypes")) == 0) {
    json types = json::array({"Ingress"});
    if (size_of(member(spec, "egress")) != 0) types.push_back("Egress");
    spec["policyTypes"] = types;
  }
}

void validate_network_policy(const json& np, const json*, FieldErrors& errs) {
  const Path spec("spec");
  validate_label_selector(at(np, {"spec", "podSelector"}), spec.child("podSelector"), errs);
  for (const char* dir : {"ingress", "egress"}) {
    const json* rules = array_at(np, {"spec", dir});
    for (size_t i = 0; rules != nullptr && i < rules->size(); ++i) {
      const json* ports = array_at((*rules)[i], {"ports"});
      for (size_t k = 0; ports != nullptr && k < ports->size(); ++k) {
        const json& port = (*ports)[k];
        Path pp = spec.child(dir).index(i).child("ports").index(k);
        std::string protocol = str_at(port, {"protocol"});
        if (has(port, "protocol") && protocol != "TCP" && protocol != "UDP" && protocol != "SCTP") {
          errs.not_supported(pp.child("protocol"), go_quote(protocol), {"SCTP", "TCP", "UDP"});
        }
        if (const json* p = member(port, "port"))
          validate_port_num_or_name(p, pp.child("port"), errs);
      }
    }
  }
  std::vector<std::string> types = string_list(at(np, {"spec", "policyTypes"}));
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] != "Ingress" && types[i] != "Egress") {
      errs.not_supported(spec.child("policyTypes").index(i), go_quote(types[i]),
                         {"Ingress", "Egress"});
    }
  }
  if (types.size() > 2) {
    errs.invalid(spec.child("policyTypes"), go_string_slice(at(np, {"spec", "policyTypes"})),
                 "may not specify more than two policyTypes");
  }
}

std::vector<json> network_policy_row(const json& np, int64_t now) {
  const json* selector = at(np, {"spec", "podSelector"});
  static const json kEmpty = json::object();
  // The podSelector is a struct, so an absent one is the empty (select-all) selector.
  return {str_at(np, {"metadata", "name"}),
          format_label_selector(selector != nullptr ? selector : &kEmpty), age_cell(np, now)};
}

}  // namespace

void add_networking_resources(Registry& registry, const Docs& docs) {
  const std::string t = kNetworkingTypes;
  const std::string g = "networking.k8s.io";

  auto ic = new_resource(docs, t, g, "IngressClass", "ingressclasses", Scope::kCluster);
  ic->columns = {
      name_column(),
      column("Controller", "string", "Controller that is responsible for handling this class"),
      column("Parameters", "string", "A reference to a resource with additional parameters"),
      age_column()};
  ic->row = ingress_class_row;
  ic->defaults = default_ingress_class;
  ic->validate =
      make_validator("IngressClass", g, false, NameRule::kDNS1123Subdomain, validate_ingress_class);
  registry.add(ic);

  auto ing = new_resource(docs, t, g, "Ingress", "ingresses", Scope::kNamespaced);
  ing->short_names = {"ing"};
  ing->subresources = {status_subresource(g, "Ingress")};
  ing->has_status_subresource = true;
  ing->columns = {
      name_column(),
      column(
          "Class", "string",
          "The name of the IngressClass resource that should be used for additional configuration"),
      column("Hosts", "string",
             "Hosts that incoming requests are matched against before the ingress rule"),
      column("Address", "string",
             "Address is a list containing ingress points for the load-balancer"),
      column("Ports", "string", "Ports of TLS configurations that open"),
      age_column(),
  };
  ing->row = ingress_row;
  ing->defaults = default_ingress;
  ing->validate = make_validator("Ingress", g, true, NameRule::kDNS1123Subdomain, validate_ingress);
  registry.add(ing);

  auto np = new_resource(docs, t, g, "NetworkPolicy", "networkpolicies", Scope::kNamespaced);
  np->short_names = {"netpol"};
  np->columns = {
      name_column(),
      column("Pod-Selector", "string", docs.field(net_type("NetworkPolicySpec"), "podSelector")),
      age_column()};
  np->row = network_policy_row;
  np->defaults = default_network_policy;
  np->validate = make_validator("NetworkPolicy", g, true, NameRule::kDNS1123Subdomain,
                                validate_network_policy);
  registry.add(np);
}

}  // namespace skiff::api::builtin
