// API discovery for controllers that work on every resource the server serves (the garbage
// collector, the namespace controller): what GET /api and GET /apis report, as client-go's
// discovery client reads it.
//
// discover_resources() asks for the aggregated discovery documents (apidiscovery.k8s.io/v2,
// two requests in all) and falls back to the legacy documents (/api, /api/v1, /apis,
// /apis/<group>/<version>) when the server does not answer with them. Subresources are left
// out. The first version a group lists is its preferred one, as Kubernetes orders them.
//
// Thread-safe: the functions share nothing; ApiResource is a value type.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"
#include "common/status.h"

namespace skiff::controllers::garbagecollector {

struct ApiResource {
  std::string group;  // "" for the core group
  std::string version;
  std::string resource;  // plural
  std::string kind;
  bool namespaced = false;
  bool preferred = false;  // the version is the group's preferred one
  std::vector<std::string> verbs;

  bool supports(std::string_view verb) const;
  // The collection (of ns, for a namespaced resource; all namespaces when ns is empty).
  client::ResourceRef ref(const std::string& ns = "") const;
  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  // "group/resource" ("/pods" for core pods): names the resource across versions.
  std::string group_resource() const { return group + "/" + resource; }
};

struct DiscoveryResult {
  std::vector<ApiResource> resources;
  // Groups (or documents) that could not be read; the resources of the others are still
  // listed. OK when everything was read.
  Status error;
};

// Every resource of every served group-version. An error that leaves nothing known (the
// server unreachable) is in result.error with resources empty.
DiscoveryResult discover_resources(client::Client& client);

// Finds resources by (group, version, kind) and by (group, kind) in a discovery result.
class KindIndex {
 public:
  KindIndex() = default;
  explicit KindIndex(const std::vector<ApiResource>& resources);
  // The resource serving kind at api_version ("apps/v1", "v1"); when that version is not
  // served, the group's preferred resource of that kind (the object is the same in every
  // version). Null if the group does not serve the kind at all.
  const ApiResource* find(std::string_view api_version, std::string_view kind) const;
  bool empty() const { return by_version_.empty(); }

 private:
  std::map<std::string, ApiResource, std::less<>> by_version_;  // "group/version/kind"
  std::map<std::string, ApiResource, std::less<>> by_group_;    // "group/kind": preferred
};

// Splits "group/version" (or "version" for the core group).
void split_api_version(std::string_view api_version, std::string* group, std::string* version);

}  // namespace skiff::controllers::garbagecollector
