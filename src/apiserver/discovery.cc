#include "apiserver/discovery.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "apiserver/responses.h"

namespace skiff::apiserver {

using nlohmann::json;

namespace {

const char* kAggregatedV2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const char* kAggregatedV2Beta1 =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

// Which aggregated version the client accepts, preferring v2; "" for legacy discovery.
std::string aggregated_version(const std::string& accept) {
  if (accept.find("as=APIGroupDiscoveryList") == std::string::npos) return "";
  // Media ranges are comma-separated; take the first aggregated one the client lists.
  size_t pos = 0;
  while (pos <= accept.size()) {
    size_t end = accept.find(',', pos);
    if (end == std::string::npos) end = accept.size();
    std::string range = accept.substr(pos, end - pos);
    if (range.find("as=APIGroupDiscoveryList") != std::string::npos &&
        range.find("g=apidiscovery.k8s.io") != std::string::npos) {
      if (range.find("v=v2beta1") != std::string::npos) return "v2beta1";
      if (range.find("v=v2") != std::string::npos) return "v2";
    }
    pos = end + 1;
  }
  return "";
}

json response_kind(const std::string& group, const std::string& version, const std::string& kind) {
  return {{"group", group}, {"version", version}, {"kind", kind}};
}

json aggregated_resource(const api::ResourceDef& d) {
  json r = {{"resource", d.resource},
            {"responseKind", response_kind(d.group, d.version, d.kind)},
            {"scope", d.namespaced() ? "Namespaced" : "Cluster"},
            {"singularResource", d.singular},
            {"verbs", d.verbs}};
  if (!d.short_names.empty()) r["shortNames"] = d.short_names;
  if (!d.categories.empty()) r["categories"] = d.categories;
  json subs = json::array();
  for (const auto& s : d.subresources) {
    json sj = {{"subresource", s.name}, {"verbs", s.verbs}};
    if (!s.kind.empty()) sj["responseKind"] = response_kind(s.group, s.version, s.kind);
    subs.push_back(sj);
  }
  if (!subs.empty()) r["subresources"] = subs;
  return r;
}

// Groups in registry order, each with its versions in order.
std::vector<std::pair<std::string, std::vector<std::string>>> groups_of(
    const api::Registry& registry) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& gv : registry.group_versions()) {
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& p) { return p.first == gv.group; });
    if (it == out.end()) {
      out.push_back({gv.group, {gv.version}});
    } else {
      it->second.push_back(gv.version);
    }
  }
  return out;
}

json aggregated_list(const api::Registry& registry, bool core, const std::string& version) {
  auto all = registry.all();
  json items = json::array();
  for (const auto& [group, versions] : groups_of(registry)) {
    if (core != group.empty()) continue;
    json vs = json::array();
    for (const auto& v : versions) {
      json resources = json::array();
      for (const auto& d : all) {
        if (d->group == group && d->version == v) resources.push_back(aggregated_resource(*d));
      }
      vs.push_back({{"version", v}, {"resources", resources}, {"freshness", "Current"}});
    }
    json meta = json::object();
    if (!group.empty()) meta["name"] = group;
    meta["creationTimestamp"] = nullptr;
    items.push_back({{"metadata", meta}, {"versions", vs}});
  }
  return {{"kind", "APIGroupDiscoveryList"},
          {"apiVersion", "apidiscovery.k8s.io/" + version},
          {"metadata", json::object()},
          {"items", items}};
}

json api_group(const std::string& group, const std::vector<std::string>& versions) {
  json vs = json::array();
  for (const auto& v : versions) vs.push_back({{"groupVersion", group + "/" + v}, {"version", v}});
  return {{"name", group},
          {"versions", vs},
          {"preferredVersion", {{"groupVersion", group + "/" + versions.front()},
                                {"version", versions.front()}}}};
}

json resource_list(const api::Registry& registry, const std::string& group,
                   const std::string& version) {
  json resources = json::array();
  for (const auto& d : registry.all()) {
    if (d->group != group || d->version != version) continue;
    json r = {{"name", d->resource},
              {"singularName", d->singular},
              {"namespaced", d->namespaced()},
              {"kind", d->kind},
              {"verbs", d->verbs}};
    if (!d->short_names.empty()) r["shortNames"] = d->short_names;
    if (!d->categories.empty()) r["categories"] = d->categories;
    resources.push_back(r);
    for (const auto& s : d->subresources) {
      json sr = {{"name", d->resource + "/" + s.name},
                 {"singularName", ""},
                 {"namespaced", d->namespaced()},
                 {"kind", s.kind.empty() ? d->kind : s.kind},
                 {"verbs", s.verbs}};
      if (!s.kind.empty() && (s.group != d->group || s.version != d->version)) {
        sr["group"] = s.group;
        sr["version"] = s.version;
      }
      resources.push_back(sr);
    }
  }
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", group.empty() ? version : group + "/" + version},
          {"resources", resources}};
}

Response not_found_response() {
  return status_response(Status::NotFound("the server could not find the requested resource"));
}

}  // namespace

Response discovery_response(const api::Registry& registry, const RequestInfo& ri,
                            const std::string& accept) {
  Response r;
  auto groups = groups_of(registry);
  if (ri.api_prefix == "api" && ri.version.empty()) {
    std::string agg = aggregated_version(accept);
    if (!agg.empty()) {
      r.content_type = agg == "v2" ? kAggregatedV2 : kAggregatedV2Beta1;
      r.body = aggregated_list(registry, true, agg).dump();
      return r;
    }
    r.body = json({{"kind", "APIVersions"},
                   {"versions", {"v1"}},
                   {"serverAddressByClientCIDRs",
                    json::array({{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", ""}}})}})
                 .dump();
    return r;
  }
  if (ri.api_prefix == "apis" && ri.group.empty()) {
    std::string agg = aggregated_version(accept);
    if (!agg.empty()) {
      r.content_type = agg == "v2" ? kAggregatedV2 : kAggregatedV2Beta1;
      r.body = aggregated_list(registry, false, agg).dump();
      return r;
    }
    json list = json::array();
    for (const auto& [g, vs] : groups) {
      if (!g.empty()) list.push_back(api_group(g, vs));
    }
    r.body = json({{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", list}}).dump();
    return r;
  }
  std::string group = ri.api_prefix == "api" ? "" : ri.group;
  auto it = std::find_if(groups.begin(), groups.end(),
                         [&](const auto& p) { return p.first == group; });
  if (it == groups.end()) return not_found_response();
  if (ri.version.empty()) {
    json g = api_group(group, it->second);
    g["kind"] = "APIGroup";
    g["apiVersion"] = "v1";
    r.body = g.dump();
    return r;
  }
  if (std::find(it->second.begin(), it->second.end(), ri.version) == it->second.end()) {
    return not_found_response();
  }
  r.body = resource_list(registry, group, ri.version).dump();
  return r;
}

}  // namespace skiff::apiserver
