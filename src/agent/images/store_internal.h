// Private to the image store: its shared implementation state and the content sources it
// ingests images from (a registry, an OCI layout, a docker-archive).
#pragma once

#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agent/images/registry.h"
#include "agent/images/store.h"

namespace skiff::agent::images {

// Where manifests and blobs come from. Implementations verify what they hand over: a
// manifest matches the digest asked for, a blob its descriptor's digest and size.
class ContentSource {
 public:
  virtual ~ContentSource() = default;
  // The manifest or index named by a digest (or, for a registry, a tag).
  virtual Result<FetchedManifest> manifest(const std::string& tag_or_digest) = 0;
  // Writes blob `d` to `path` and makes it durable (fsync).
  virtual Status blob(const Descriptor& d, const std::string& path,
                      const BlobProgressFn& progress) = 0;
};

// What an ingested image is to be called.
struct ImageNames {
  std::vector<std::string> tags;          // normalized name:tag
  std::vector<std::string> repositories;  // names that get a repo digest name@<top digest>
};

struct ImageStore::Impl {
  // Constant after open().
  std::string root;  // <data>/images

  // Guarded by mu: pulls in progress by normalized reference.
  std::mutex mu;
  std::map<std::string, std::shared_future<Result<Image>>> pulls;

  std::string blob_path(const std::string& digest) const;
  std::string layer_path(const std::string& diff_id) const;
  std::string tmp_path(const std::string& what) const;  // a fresh name under tmp/

  // Fetches `top` (a tag or digest) from `src` with its platform manifest, config and layers,
  // unpacks the layers and records the image under `names`. Returns the image ID.
  // REQUIRES: the caller holds the gc lock shared.
  Result<std::string> ingest(ContentSource& src, const std::string& top, const ImageNames& names,
                             const ProgressFn& progress);
  // Stores a blob from `src` unless present (then *existed, when given, is set to true before
  // `progress` hears of the whole blob).
  Status ensure_blob(ContentSource& src, const Descriptor& d, const BlobProgressFn& progress,
                     bool* existed = nullptr);
  Status put_blob_bytes(const std::string& digest, const std::string& bytes);
  // Unpacks the layer blob `digest` into its directory unless present, checking its diff_id.
  Status ensure_layer(const std::string& digest, const std::string& diff_id);

  // Imports an OCI layout or docker-archive directory, or a tar of one (extracted to tmp/).
  // REQUIRES: the caller holds the gc lock shared.
  Result<std::vector<Image>> import_dir(const std::string& dir, const ImportOptions& options);
  Result<std::vector<Image>> import_tar(const std::string& file, const ImportOptions& options);
  // The image `id` as get() returns it.
  Result<Image> image(const std::string& id) const;
};

// A flock(2) held for the lifetime of the object: shared by pulls, imports and removals,
// exclusive by gc and open(). Locks are per open file description, so threads of one process
// exclude each other too.
class FileLock {
 public:
  FileLock(const std::string& path, bool exclusive, bool wait = true);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool held() const { return held_; }
  const Status& status() const { return status_; }

 private:
  int fd_ = -1;
  bool held_ = false;
  Status status_;
};

}  // namespace skiff::agent::images
