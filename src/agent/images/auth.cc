#include "agent/images/auth.h"

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/strings.h"

namespace skiff::agent::images {
namespace {

std::string json_str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool host_matches(std::string_view pattern, std::string_view host) {
  if (pattern.rfind("*.", 0) != 0) return pattern == host;
  std::string_view suffix = pattern.substr(1);  // ".example.com"
  if (host.size() <= suffix.size()) return false;
  if (host.substr(host.size() - suffix.size()) != suffix) return false;
  // "*" stands for exactly one label, as in the kubelet.
  return host.substr(0, host.size() - suffix.size()).find('.') == std::string_view::npos;
}

}  // namespace

std::string normalize_registry_key(std::string_view key) {
  std::string k = ascii_lower(trim_space(key));
  if (size_t p = k.find("://"); p != std::string::npos) k = k.substr(p + 3);
  while (!k.empty() && k.back() == '/') k.pop_back();
  size_t slash = k.find('/');
  std::string host = k.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : k.substr(slash);
  if (host == "index.docker.io" || host == "registry-1.docker.io" || host == "docker.io") {
    host = "docker.io";
    if (path == "/v1" || path == "/v2") path.clear();
  }
  return host + path;
}

Result<RegistryAuthMap> parse_docker_config(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Invalid("docker config is not a JSON object");
  }
  const nlohmann::json* auths = &j;
  if (auto it = j.find("auths"); it != j.end()) {
    if (!it->is_object()) return Status::Invalid("docker config: \"auths\" is not an object");
    auths = &*it;
  }
  RegistryAuthMap out;
  for (const auto& [key, entry] : auths->items()) {
    if (!entry.is_object()) continue;
    RegistryCredentials c;
    c.username = json_str(entry, "username");
    c.password = json_str(entry, "password");
    c.identity_token = json_str(entry, "identitytoken");
    c.registry_token = json_str(entry, "registrytoken");
    std::string auth = json_str(entry, "auth");
    if (!auth.empty()) {
      auto decoded = base64_decode(auth);
      size_t colon = decoded.ok() ? decoded->find(':') : std::string::npos;
      if (colon == std::string::npos) {
        return Status::Invalid("docker config: the \"auth\" of registry \"" + key +
                               "\" is not base64 of \"username:password\"");
      }
      c.username = decoded->substr(0, colon);
      c.password = decoded->substr(colon + 1);
    }
    out[normalize_registry_key(key)] = std::move(c);
  }
  return out;
}

std::optional<RegistryCredentials> find_credentials(const RegistryAuthMap& auths,
                                                    std::string_view domain,
                                                    std::string_view repository) {
  std::string host = ascii_lower(domain);
  std::string full = host + "/" + std::string(repository);
  const RegistryCredentials* best = nullptr;
  size_t best_len = 0;
  bool best_exact = false;
  for (const auto& [key, creds] : auths) {
    size_t slash = key.find('/');
    std::string_view khost = std::string_view(key).substr(0, slash);
    std::string_view kpath =
        slash == std::string::npos ? std::string_view() : std::string_view(key).substr(slash);
    if (!host_matches(khost, host)) continue;
    if (!kpath.empty()) {
      std::string_view rest = std::string_view(full).substr(host.size());
      if (rest.substr(0, kpath.size()) != kpath) continue;
      if (rest.size() > kpath.size() && rest[kpath.size()] != '/') continue;
    }
    bool exact = khost == host;
    if (best == nullptr || (exact && !best_exact) ||
        (exact == best_exact && kpath.size() > best_len)) {
      best = &creds;
      best_len = kpath.size();
      best_exact = exact;
    }
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

}  // namespace skiff::agent::images
