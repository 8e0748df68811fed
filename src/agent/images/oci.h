// The OCI image and Docker v2 schema 2 documents the store reads: descriptors, image indexes
// (manifest lists), image manifests and image configs.
//
// All functions are pure and thread-safe. Parse errors are Invalid and name the document.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace skiff::agent::images {

inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = -1;  // -1 when the document gave none
  Platform platform;  // only in index entries
  std::map<std::string, std::string> annotations;
};

bool is_index_media_type(std::string_view media_type);
bool is_manifest_media_type(std::string_view media_type);

// A manifest body's media type: its "mediaType" field, else guessed from its shape
// ("manifests" → OCI index, "config"+"layers" → OCI manifest); "" if neither.
std::string detect_media_type(std::string_view body);

// An image index or manifest list.
Result<std::vector<Descriptor>> parse_index(std::string_view body);

struct Manifest {
  Descriptor config;
  std::vector<Descriptor> layers;  // bottom-most first
};
Result<Manifest> parse_manifest(std::string_view body);

// The runtime defaults an image carries (the config's "config" object).
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value"
  std::string working_dir;
  std::string user;
  std::vector<std::string> exposed_ports;  // "80/tcp", sorted
  std::map<std::string, std::string> labels;
  std::string stop_signal;
};

struct ParsedConfig {
  ImageConfig config;
  std::vector<std::string> diff_ids;  // bottom-most first
  std::string os;
  std::string architecture;
  std::string created;  // RFC 3339, "" if absent
};
Result<ParsedConfig> parse_config(std::string_view body);

// GOARCH of this machine: amd64, arm64, arm, 386, ppc64le, s390x, riscv64.
std::string host_architecture();

// Picks the entry for linux/`arch` (and `variant` for arm when given) from an index, as
// containerd's default platform matcher does; NotFound ("no matching manifest for
// linux/amd64 in the manifest list entries") if none.
Result<Descriptor> select_platform(const std::vector<Descriptor>& entries, std::string_view os,
                                   std::string_view arch);

}  // namespace skiff::agent::images
