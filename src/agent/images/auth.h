// Registry credentials and the Docker config files that carry them (the `.dockerconfigjson`
// and legacy `.dockercfg` keys of imagePullSecrets).
//
// All functions are pure and thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace skiff::agent::images {

struct RegistryCredentials {
  std::string username;
  std::string password;
  // An OAuth2 refresh token ("identitytoken"), exchanged at the token endpoint instead of
  // the username and password.
  std::string identity_token;
  // A bearer token used as is ("registrytoken").
  std::string registry_token;

  bool empty() const {
    return username.empty() && password.empty() && identity_token.empty() && registry_token.empty();
  }
};

// Credentials keyed by normalized registry location: "host[:port]" or "host[:port]/path",
// with the scheme, a trailing "/" and Docker Hub's legacy "/v1/" removed and Docker Hub's
// aliases (index.docker.io, registry-1.docker.io) folded into "docker.io". A key may start
// with "*." to match any subdomain, as in the kubelet.
using RegistryAuthMap = std::map<std::string, RegistryCredentials>;

// Parses a Docker config file: {"auths": {"<registry>": {"auth": base64("user:pass") |
// "username"/"password", "identitytoken", "registrytoken"}}}, or the legacy form without
// "auths". Invalid (naming the registry) when an "auth" value is not base64 of "user:pass".
Result<RegistryAuthMap> parse_docker_config(std::string_view json);

// "docker.io", "127.0.0.1:5000", "ghcr.io/org" from a config key ("https://index.docker.io/v1/",
// "http://127.0.0.1:5000", "ghcr.io/org/").
std::string normalize_registry_key(std::string_view key);

// The credentials for an image at `domain`/`repository` (as ImageReference holds them): the
// key matching the longest path prefix of "domain/repository", exact hosts before wildcard
// ones; nullopt if none matches.
std::optional<RegistryCredentials> find_credentials(const RegistryAuthMap& auths,
                                                    std::string_view domain,
                                                    std::string_view repository);

}  // namespace skiff::agent::images
