// The node's image store: content-addressed blobs, image records by reference, and layers
// unpacked once each into their own directory for overlayfs.
//
// Layout under <data dir>/images:
//   blobs/sha256/<hex>       manifests, configs and layer blobs, verified on write
//   layers/sha256/<hex>/     one unpacked layer per diff_id (overlayfs whiteouts)
//   index.json               image records and the references (tags, digests) naming them
//   tmp/                     downloads and imports in progress
// Every write goes to a temporary name first and is renamed into place, so a crash leaves
// either nothing or a complete blob, layer or index; leftovers are removed by the next open()
// or gc(), and a layer that was half unpacked is unpacked again.
//
// References are normalized as Docker does (`busybox` is docker.io/library/busybox:latest).
// An image is identified by its config digest (the IMAGE ID of `crictl images`); it may have
// several tags and repo digests ("docker.io/library/busybox@sha256:<manifest digest>").
//
// Thread-safe, and safe to share between processes (the agent and `skiff image`): the index
// is changed under a file lock, gc() excludes pulls and imports through another. Concurrent
// pulls of the same reference in one store share a single download.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/images/auth.h"
#include "agent/images/oci.h"
#include "common/status.h"

namespace skiff::agent::images {

struct Image {
  std::string id;                         // config digest, "sha256:..."
  std::string manifest_digest;            // the platform manifest
  std::vector<std::string> repo_tags;     // "docker.io/library/busybox:latest", sorted
  std::vector<std::string> repo_digests;  // "docker.io/library/busybox@sha256:...", sorted
  int64_t size = 0;  // bytes of its blobs (manifests, config, compressed layers), as crictl
  std::vector<std::string> diff_ids;  // layers, bottom-most first
  ImageConfig config;
  std::string os;
  std::string architecture;
  std::string created;
};

// Progress of one pull or import, per layer blob: bytes done of total (-1 if unknown). A blob
// is complete when done == total; one already in the store is reported once, complete, with
// existing set.
struct LayerProgress {
  std::string digest;
  int64_t done = 0;
  int64_t total = -1;
  bool existing = false;
};
using ProgressFn = std::function<void(const LayerProgress&)>;

struct PullOptions {
  std::optional<RegistryCredentials> credentials;
  // Called on the pulling thread: for each layer blob, as it downloads (every few hundred KiB)
  // and once complete (or once, `existing`, when the store has it already). Unset: no reports.
  ProgressFn progress;
  // Transport overrides; defaults as RegistryClient (HTTPS, plain HTTP for loopback).
  std::optional<bool> plain_http;
  std::string ca_file;
  bool insecure_skip_tls_verify = false;
};

struct ImportOptions {
  // Repository for images an OCI layout names only by tag (org.opencontainers.image.ref.name
  // "1"): they become <name>:<tag>. Without it such images are imported untagged.
  std::string name;
  ProgressFn progress;
};

struct GcResult {
  int removed_blobs = 0;
  int removed_layers = 0;
  int64_t freed_bytes = 0;
};

class ImageStore {
 public:
  // Opens (creating if needed) the store under `data_dir`/images, removing what interrupted
  // writes left behind. Internal if the directory cannot be created or the index is corrupt.
  static Result<std::unique_ptr<ImageStore>> open(const std::string& data_dir);
  ~ImageStore();

  // Pulls `ref` from its registry (see registry.h for transport, auth and errors): resolves
  // the tag, picks linux/<host arch> from an index, downloads and verifies each blob that is
  // not yet stored, unpacks new layers, then records the image under the reference (the tag
  // for a tagged reference, and the repo digest). Error messages read
  // `failed to pull image "<ref>": <reason>`, fit for a pod's ErrImagePull.
  // A pull of a reference already being pulled waits for that one and returns its result
  // (progress goes to the first caller only).
  Result<Image> pull(std::string_view ref, const PullOptions& options);

  // Imports every image in an OCI image layout (directory or tar: oci-layout, index.json,
  // blobs/sha256) or a docker-archive (directory or tar: manifest.json and layer tars, as
  // `docker save` writes it). Tags come from RepoTags, the io.containerd.image.name
  // annotation or org.opencontainers.image.ref.name. Invalid for a malformed archive or a
  // blob whose digest does not match; NotFound if `path` does not exist.
  Result<std::vector<Image>> import(const std::string& path, const ImportOptions& options);

  // The image named by `ref`: a reference (tag or digest, normalized), a full image ID
  // ("sha256:<hex>" or "<hex>") or a unique prefix of at least 12 hex digits. NotFound if none.
  Result<Image> get(std::string_view ref) const;

  // Every image, ordered by first tag (untagged last), then ID.
  Result<std::vector<Image>> list() const;

  // The unpacked layer directories of `ref`, topmost first: the order of overlayfs'
  // lowerdir= option. A layer directory that went missing is unpacked again from its blob.
  Result<std::vector<std::string>> lower_dirs(std::string_view ref);

  // Removes a reference as `docker rmi` does: a tag is untagged, and the image record goes
  // with its last tag; a digest reference or an image ID removes the image with all its
  // references. Blobs and layers stay until gc(). When the record would go and `in_use`
  // says the image ID is used by a container, nothing changes and the result is Conflict.
  // NotFound if nothing matches.
  Status remove(std::string_view ref,
                const std::function<bool(const std::string& image_id)>& in_use = nullptr);

  // Deletes blobs and layer directories no image refers to, and leftovers of interrupted
  // writes. Waits for pulls and imports in progress (in any process) to finish first.
  Result<GcResult> gc();

  // Bytes of disk used by the store (allocated blocks; hard links counted once).
  int64_t disk_usage() const;

  // <data dir>/images.
  const std::string& root() const;

  // The implementation, opaque outside the store's own files.
  struct Impl;

 private:
  ImageStore();
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::agent::images
