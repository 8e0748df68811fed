// Validation of names, label keys and values, with Kubernetes' exact error
// messages.
//
// Each function returns the list of problems (empty when valid), worded as
// k8s.io/apimachinery/pkg/util/validation does (Kubernetes 1.32), e.g.
//   "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric
//   characters, '-' or
//    '.', and must start and end with an alphanumeric character (e.g.
//    'example.com', regex used for validation is
//    '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace skiff {

// Most object names (ConfigMap, Deployment, Secret, ...): at most 253
// characters.
std::vector<std::string> is_dns1123_subdomain(std::string_view value);
// Namespace, Service and similar names: at most 63 characters, no dots (a valid
// subdomain that only fails because of its dots gets the single message "must
// not contain dots").
std::vector<std::string> is_dns1123_label(std::string_view value);
// Service names must also start with a letter (RFC 1035 label).
std::vector<std::string> is_dns1035_label(std::string_view value);
// Label and annotation keys: optional DNS subdomain prefix + "/" + name of at
// most 63 chars. Problems with the prefix start "prefix part ", with the name
// "name part ".
std::vector<std::string> is_qualified_name(std::string_view value);
// Label values: empty, or at most 63 alphanumeric, '-', '_' or '.' starting and
// ending with an alphanumeric character.
std::vector<std::string> is_valid_label_value(std::string_view value);

// ConfigMap and Secret data keys: at most 253 of [-._a-zA-Z0-9], not "." or
// "..", not "..x".
std::vector<std::string> is_config_map_key(std::string_view value);
// Container environment variable names: [-._a-zA-Z][-._a-zA-Z0-9]*, not "." or
// "..", not "..x".
std::vector<std::string> is_env_var_name(std::string_view value);
// Named container/service ports (IANA_SVC_NAME): at most 15 of [-a-z0-9] with
// at least one letter, no leading, trailing or doubled '-'.
std::vector<std::string> is_valid_port_name(std::string_view value);
// Port numbers: 1..65535.
std::vector<std::string> is_valid_port_num(int64_t port);

}  // namespace skiff
