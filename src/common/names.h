// Validation of names, label keys and values, with Kubernetes' exact error messages.
//
// Each function returns the list of problems (empty when valid), worded as
// k8s.io/apimachinery/pkg/util/validation does, e.g.
//   "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or
//    '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used
//    for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace skiff {

// Most object names (ConfigMap, Deployment, Secret, ...): at most 253 characters.
std::vector<std::string> is_dns1123_subdomain(std::string_view value);
// Namespace, Service and similar names: at most 63 characters, no dots.
std::vector<std::string> is_dns1123_label(std::string_view value);
// Service names must also start with a letter (RFC 1035 label).
std::vector<std::string> is_dns1035_label(std::string_view value);
// Label and annotation keys: optional DNS subdomain prefix + "/" + name of at most 63 chars.
std::vector<std::string> is_qualified_name(std::string_view value);
// Label values: empty, or at most 63 alphanumeric, '-', '_' or '.' starting and ending with
// an alphanumeric character.
std::vector<std::string> is_valid_label_value(std::string_view value);

}  // namespace skiff
