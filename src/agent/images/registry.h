// A client of one repository on an OCI distribution (Docker Registry HTTP API v2) registry:
// manifests by tag or digest, blobs by digest, with anonymous, Basic and Bearer-token auth.
//
// HTTPS with the system CAs by default; plain HTTP only for loopback registries (localhost,
// 127.0.0.0/8, ::1), as Docker treats them, unless RegistryOptions says otherwise. Docker
// Hub ("docker.io") is reached at registry-1.docker.io.
//
// Every error is a Status whose message can be shown on a pod as ErrImagePull: the
// registry's own error ("manifest unknown", "unauthorized: authentication required"), a
// digest mismatch naming the digest, or the connection failure ("connection refused").
// Codes: NotFound (unknown manifest or blob), Unauthorized (no or wrong credentials),
// Forbidden (denied), Unavailable (connection failures, 5xx, 429), Invalid (digest or size
// mismatch, malformed responses), Internal (local file errors).
//
// Not thread-safe: one client per pull (it caches the token it obtained).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "agent/images/auth.h"
#include "agent/images/oci.h"
#include "common/status.h"

namespace skiff::agent::images {

struct RegistryOptions {
  std::optional<RegistryCredentials> credentials;
  // Plain HTTP instead of HTTPS; unset means: only for loopback registries.
  std::optional<bool> plain_http;
  // A PEM bundle of CAs to trust instead of the system ones ("" for the system ones).
  std::string ca_file;
  bool insecure_skip_tls_verify = false;
  long connect_timeout_seconds = 30;
  // A transfer slower than 1 byte/s for this long is aborted (Unavailable).
  long stall_timeout_seconds = 120;
};

struct FetchedManifest {
  std::string body;
  std::string media_type;
  std::string digest;  // "sha256:..." of body, verified against the one asked for
};

// Bytes of one blob received so far, and its size (-1 if unknown).
using BlobProgressFn = std::function<void(const std::string& digest, int64_t done, int64_t total)>;

class RegistryClient {
 public:
  // `domain` and `repository` as ImageReference holds them ("docker.io", "library/busybox").
  RegistryClient(std::string domain, std::string repository, RegistryOptions options);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  // The manifest or index for a tag or a digest, with any of the OCI and Docker v2 schema 2
  // media types. Verified against the digest asked for (or the registry's
  // Docker-Content-Digest header for a tag). Manifests over 4 MiB are refused.
  Result<FetchedManifest> get_manifest(std::string_view tag_or_digest);

  // Downloads blob `d` into `path` (created or truncated), reporting progress, and verifies
  // its size and digest. On error `path` may hold partial content.
  Status get_blob(const Descriptor& d, const std::string& path, const BlobProgressFn& progress);

  // "https://registry-1.docker.io" and the like.
  const std::string& base_url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::agent::images
