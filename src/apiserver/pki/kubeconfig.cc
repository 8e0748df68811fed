#include <string>

#include "apiserver/pki/files.h"
#include "apiserver/pki/pki.h"
#include "common/base64.h"

namespace skiff::apiserver::pki {

Status write_kubeconfig(const std::string& path, const std::string& server_url, const Pki& pki) {
  if (path.empty()) return Status::Invalid("kubeconfig path must not be empty");
  if (server_url.rfind("https://", 0) != 0 || server_url.size() == 8)
    return Status::Invalid("kubeconfig server must be an https:// URL");
  for (char c : server_url) {
    // Printable ASCII only (as URLs are), so the double-quoted YAML scalar below needs no
    // escapes beyond '"' and '\'.
    if (uint8_t(c) <= 0x20 || uint8_t(c) >= 0x7f)
      return Status::Invalid("kubeconfig server URL contains a space or non-ASCII character");
  }
  if (pki.ca_cert_pem.empty() || pki.admin_cert_pem.empty() || pki.admin_key_pem.empty())
    return Status::Invalid("kubeconfig needs the CA and the admin certificate and key");
  std::string quoted_url = "\"";
  for (char c : server_url) {
    if (c == '"' || c == '\\') quoted_url += '\\';
    quoted_url += c;
  }
  quoted_url += '"';

  std::string yaml;
  yaml += "apiVersion: v1\n";
  yaml += "kind: Config\n";
  yaml += "clusters:\n";
  yaml += "- cluster:\n";
  yaml += "    certificate-authority-data: " + base64_encode(pki.ca_cert_pem) + "\n";
  yaml += "    server: " + quoted_url + "\n";
  yaml += "  name: skiff\n";
  yaml += "contexts:\n";
  yaml += "- context:\n";
  yaml += "    cluster: skiff\n";
  yaml += "    user: admin\n";
  yaml += "  name: skiff\n";
  yaml += "current-context: skiff\n";
  yaml += "preferences: {}\n";
  yaml += "users:\n";
  yaml += "- name: admin\n";
  yaml += "  user:\n";
  yaml += "    client-certificate-data: " + base64_encode(pki.admin_cert_pem) + "\n";
  yaml += "    client-key-data: " + base64_encode(pki.admin_key_pem) + "\n";

  Status s = ensure_directory(parent_directory(path), 0700, false);
  if (!s.ok()) return s;
  return write_file_atomic(path, yaml, 0600);
}

}  // namespace skiff::apiserver::pki
