// Image references ("busybox", "ghcr.io/org/app:v1", "reg:5000/x@sha256:..."), parsed and
// normalized as Docker and the kubelet do: `busybox` is `docker.io/library/busybox:latest`.
//
// All functions are pure and thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace skiff::agent::images {

struct ImageReference {
  std::string domain;      // "docker.io", "127.0.0.1:5000", "ghcr.io"
  std::string repository;  // "library/busybox", "org/app"
  std::string tag;         // "latest" when neither tag nor digest was given; "" with a bare digest
  std::string digest;      // "sha256:<hex>" or ""

  // "docker.io/library/busybox".
  std::string name() const;
  // The fully qualified reference: name:tag, name@digest or name:tag@digest.
  std::string string() const;
  // name:tag ("" without a tag) and name@digest ("" without a digest).
  std::string tagged() const;
  std::string digested() const;
};

// Parses and normalizes `ref`. Errors are Invalid, with Docker's wording where it has one
// ("invalid reference format", "invalid reference format: repository name must be lowercase").
Result<ImageReference> parse_reference(std::string_view ref);

// True for hosts a registry is reached over plain HTTP by default, as Docker treats them:
// localhost, 127.0.0.0/8 and ::1 (with or without a port).
bool is_loopback_registry(std::string_view domain);

// The host[:port] the registry API is served on: "registry-1.docker.io" for docker.io,
// otherwise the domain itself.
std::string registry_api_host(std::string_view domain);

}  // namespace skiff::agent::images
