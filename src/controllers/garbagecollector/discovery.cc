#include "controllers/garbagecollector/discovery.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/json.h"

namespace skiff::controllers::garbagecollector {

namespace {

using nlohmann::json;

constexpr const char* kAggregatedAccept =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

std::string str(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& member(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it != obj.end() ? *it : kNull;
}

std::vector<std::string> strings(const json& arr) {
  std::vector<std::string> out;
  if (!arr.is_array()) return out;
  for (const json& v : arr) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

// GET path with the given Accept header; the reply's body as JSON and its content type.
Result<json> get_document(client::Client& c, const std::string& path, const std::string& accept,
                          std::string* content_type) {
  client::Request req;
  req.method = "GET";
  req.path = path;
  req.accept = accept;
  req.user_agent = c.user_agent();
  auto reply = c.transport().round_trip(req);
  if (!reply.ok()) return reply.status();
  auto parsed = parse_json(reply->body);
  if (reply->status < 200 || reply->status >= 300) {
    if (parsed.ok()) return client::status_from_object(*parsed, reply->status);
    return Status(StatusCode::kInternal,
                  "GET " + path + ": the server answered " + std::to_string(reply->status));
  }
  if (!parsed.ok()) return Status::Internal("GET " + path + ": " + parsed.status().message());
  if (content_type != nullptr) *content_type = reply->content_type;
  return std::move(parsed).value();
}

bool is_aggregated(const std::string& content_type, const json& doc) {
  return content_type.find("as=APIGroupDiscoveryList") != std::string::npos ||
         str(doc, "kind") == "APIGroupDiscoveryList";
}

// apidiscovery.k8s.io/v2 APIGroupDiscoveryList.
void read_aggregated(const json& doc, std::vector<ApiResource>* out) {
  const json& items = member(doc, "items");
  if (!items.is_array()) return;
  for (const json& group : items) {
    std::string group_name = str(member(group, "metadata"), "name");
    const json& versions = member(group, "versions");
    if (!versions.is_array()) continue;
    bool first = true;
    for (const json& v : versions) {
      std::string version = str(v, "version");
      if (version.empty()) continue;
      const json& resources = member(v, "resources");
      if (resources.is_array()) {
        for (const json& r : resources) {
          ApiResource a;
          a.group = group_name;
          a.version = version;
          a.resource = str(r, "resource");
          a.kind = str(member(r, "responseKind"), "kind");
          a.namespaced = str(r, "scope") == "Namespaced";
          a.preferred = first;
          a.verbs = strings(member(r, "verbs"));
          if (a.resource.empty() || a.kind.empty()) continue;
          out->push_back(std::move(a));
        }
      }
      first = false;
    }
  }
}

// metav1.APIResourceList of one group-version.
void read_resource_list(const json& doc, const std::string& group, const std::string& version,
                        bool preferred, std::vector<ApiResource>* out) {
  const json& resources = member(doc, "resources");
  if (!resources.is_array()) return;
  for (const json& r : resources) {
    std::string name = str(r, "name");
    if (name.empty() || name.find('/') != std::string::npos) continue;  // a subresource
    ApiResource a;
    a.group = group;
    a.version = version;
    a.resource = name;
    a.kind = str(r, "kind");
    const json& ns = member(r, "namespaced");
    a.namespaced = ns.is_boolean() && ns.get<bool>();
    a.preferred = preferred;
    a.verbs = strings(member(r, "verbs"));
    out->push_back(std::move(a));
  }
}

DiscoveryResult discover_legacy(client::Client& c) {
  DiscoveryResult result;
  std::vector<std::string> failures;
  auto core = get_document(c, "/api", "application/json", nullptr);
  if (!core.ok()) {
    result.error = core.status();
    return result;
  }
  bool first = true;
  for (const std::string& v : strings(member(*core, "versions"))) {
    auto list = get_document(c, "/api/" + v, "application/json", nullptr);
    if (list.ok()) {
      read_resource_list(*list, "", v, first, &result.resources);
    } else {
      failures.push_back(v + ": " + list.status().message());
    }
    first = false;
  }
  auto groups = get_document(c, "/apis", "application/json", nullptr);
  if (!groups.ok()) {
    failures.push_back("/apis: " + groups.status().message());
  } else if (const json& gl = member(*groups, "groups"); gl.is_array()) {
    for (const json& g : gl) {
      std::string name = str(g, "name");
      std::string preferred = str(member(g, "preferredVersion"), "version");
      const json& versions = member(g, "versions");
      if (name.empty() || !versions.is_array()) continue;
      for (const json& v : versions) {
        std::string version = str(v, "version");
        if (version.empty()) continue;
        if (preferred.empty()) preferred = version;
        auto list = get_document(c, "/apis/" + name + "/" + version, "application/json", nullptr);
        if (list.ok()) {
          read_resource_list(*list, name, version, version == preferred, &result.resources);
        } else {
          failures.push_back(name + "/" + version + ": " + list.status().message());
        }
      }
    }
  }
  if (!failures.empty()) {
    std::string message = "unable to retrieve the complete list of server APIs: ";
    for (size_t i = 0; i < failures.size(); ++i) {
      if (i > 0) message += ", ";
      message += failures[i];
    }
    result.error = Status::Unavailable(std::move(message));
  }
  return result;
}

}  // namespace

bool ApiResource::supports(std::string_view verb) const {
  return std::find(verbs.begin(), verbs.end(), verb) != verbs.end();
}

client::ResourceRef ApiResource::ref(const std::string& ns) const {
  return client::ResourceRef{group, version, resource, namespaced ? ns : ""};
}

DiscoveryResult discover_resources(client::Client& client) {
  std::string core_type;
  auto core = get_document(client, "/api", kAggregatedAccept, &core_type);
  if (!core.ok()) {
    DiscoveryResult r;
    r.error = core.status();
    return r;
  }
  if (!is_aggregated(core_type, *core)) return discover_legacy(client);
  std::string groups_type;
  auto groups = get_document(client, "/apis", kAggregatedAccept, &groups_type);
  if (!groups.ok() || !is_aggregated(groups_type, *groups)) return discover_legacy(client);
  DiscoveryResult r;
  read_aggregated(*core, &r.resources);
  read_aggregated(*groups, &r.resources);
  return r;
}

KindIndex::KindIndex(const std::vector<ApiResource>& resources) {
  for (const ApiResource& r : resources) {
    by_version_.emplace(r.group + "/" + r.version + "/" + r.kind, r);
    std::string gk = r.group + "/" + r.kind;
    auto it = by_group_.find(gk);
    if (it == by_group_.end()) {
      by_group_.emplace(std::move(gk), r);
    } else if (r.preferred && !it->second.preferred) {
      it->second = r;
    }
  }
}

const ApiResource* KindIndex::find(std::string_view api_version, std::string_view kind) const {
  std::string group;
  std::string version;
  split_api_version(api_version, &group, &version);
  std::string key = group + "/" + version + "/";
  key += kind;
  if (auto it = by_version_.find(key); it != by_version_.end()) return &it->second;
  std::string gk = group + "/";
  gk += kind;
  if (auto it = by_group_.find(gk); it != by_group_.end()) return &it->second;
  return nullptr;
}

void split_api_version(std::string_view api_version, std::string* group, std::string* version) {
  size_t slash = api_version.find('/');
  if (slash == std::string_view::npos) {
    group->clear();
    *version = std::string(api_version);
  } else {
    *group = std::string(api_version.substr(0, slash));
    *version = std::string(api_version.substr(slash + 1));
  }
}

}  // namespace skiff::controllers::garbagecollector
