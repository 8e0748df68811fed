#include "apiserver/request_info.h"

#include <vector>

namespace skiff::apiserver {

namespace {
std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}
}  // namespace

bool parse_request_info(std::string_view method, std::string_view path, bool watch_param,
                        RequestInfo* out) {
  RequestInfo ri;
  std::vector<std::string> parts = split_path(path);
  if (parts.empty()) return false;
  ri.api_prefix = parts[0];
  size_t i = 1;
  if (ri.api_prefix == "api") {
    if (parts.size() < 2) {
      *out = ri;
      return true;
    }
    ri.version = parts[1];
    i = 2;
  } else if (ri.api_prefix == "apis") {
    if (parts.size() < 2) {
      *out = ri;
      return true;
    }
    ri.group = parts[1];
    if (parts.size() < 3) {
      *out = ri;
      return true;
    }
    ri.version = parts[2];
    i = 3;
  } else {
    return false;
  }
  std::vector<std::string> rest(parts.begin() + static_cast<long>(i), parts.end());
  if (rest.empty()) {
    *out = ri;
    return true;
  }
  ri.is_resource = true;
  // Legacy watch paths: /api/v1/watch/namespaces/default/pods
  bool legacy_watch = false;
  if (rest[0] == "watch") {
    legacy_watch = true;
    rest.erase(rest.begin());
    if (rest.empty()) return false;
  }
  if (rest[0] == "namespaces" && rest.size() > 1) {
    ri.ns = rest[1];
    if (rest.size() > 2 && rest[2] != "status" && rest[2] != "finalize") {
      rest.erase(rest.begin(), rest.begin() + 2);
    }
  }
  ri.resource = rest[0];
  if (rest.size() > 1) ri.name = rest[1];
  if (rest.size() > 2) ri.subresource = rest[2];
  if (rest.size() > 3) {
    // Only proxy subresources take a further path; none is served.
    ri.subresource += "/" + rest[3];
  }
  if (ri.resource == "namespaces") {
    // /api/v1/namespaces/foo addresses the namespace itself, which is cluster-scoped.
    if (!ri.ns.empty() && ri.name.empty()) ri.name = ri.ns;
    ri.ns.clear();
  }
  if (method == "GET" || method == "HEAD") {
    if (ri.name.empty()) {
      ri.verb = (watch_param || legacy_watch) ? "watch" : "list";
    } else {
      ri.verb = legacy_watch ? "watch" : "get";
    }
  } else if (method == "POST") {
    ri.verb = "create";
  } else if (method == "PUT") {
    ri.verb = "update";
  } else if (method == "PATCH") {
    ri.verb = "patch";
  } else if (method == "DELETE") {
    ri.verb = ri.name.empty() ? "deletecollection" : "delete";
  } else {
    ri.verb = "unknown";
  }
  *out = std::move(ri);
  return true;
}

}  // namespace skiff::apiserver
