// The kubelet server's self-signed serving certificate (private to src/agent/server).
#pragma once

#include <string>

#include "common/status.h"

namespace skiff::agent::server {

struct ServingCertPaths {
  std::string cert;  // <dir>/kubelet.crt
  std::string key;   // <dir>/kubelet.key (0600)
};

// Loads the certificate and key in `dir`, or creates them: an EC P-256 key and a self-signed
// certificate for `node_name` (CN and DNS name) and `node_ip` (IP name, when it parses), valid
// for ten years. Internal on I/O or OpenSSL failure.
Result<ServingCertPaths> ensure_serving_cert(const std::string& dir, const std::string& node_name,
                                             const std::string& node_ip);

}  // namespace skiff::agent::server
