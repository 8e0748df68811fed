// Image garbage collection under disk pressure, as the kubelet's image GC manager does it.
//
// When the filesystem holding the image store is used at or above high_threshold_percent,
// unused images are removed, least recently used first, until the bytes freed bring usage
// down to low_threshold_percent; then the blobs and unpacked layers no remaining image refers
// to are deleted (ImageStore::gc). An image is unused when it is not in the in-use set the
// caller passes (the images of the node's containers, running or exited). An image first seen
// or last used less than min_age ago is never removed: it may have just been pulled for a
// container about to be created.
//
// Last-use times are kept in memory, as the kubelet keeps them: every detect() (and every
// garbage_collect()) marks the images in use as used now, and an image seen for the first time
// as first detected now. After a restart, every image is first detected again.
//
// Not thread-safe: one caller at a time (the housekeeping thread). The store itself may be
// used concurrently (pulls, `skiff image`); an image pulled meanwhile is first detected at the
// next pass and so protected by min_age.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace skiff::agent::images {

class ImageStore;

// Size and free space of a filesystem, as statvfs(2) reports them.
struct FilesystemStats {
  int64_t capacity_bytes = 0;   // f_blocks * f_frsize
  int64_t available_bytes = 0;  // f_bavail * f_frsize: free for unprivileged users
  int64_t inodes = 0;           // f_files; 0 when the filesystem has no fixed inode count
  int64_t inodes_free = 0;      // f_ffree
};
// statvfs(2) of the filesystem holding `path`; Internal naming the error when it fails.
Result<FilesystemStats> filesystem_stats(const std::string& path);
using FilesystemStatsFn = std::function<Result<FilesystemStats>(const std::string& path)>;

// The kubelet's --image-gc-high-threshold, --image-gc-low-threshold and
// --minimum-image-ttl-duration, with its defaults.
struct ImageGcPolicy {
  int high_threshold_percent = 85;  // 100 disables image garbage collection
  int low_threshold_percent = 80;   // below the high threshold
  std::chrono::milliseconds min_age{std::chrono::minutes(2)};
};

// What one garbage collection did.
struct ImageGcReport {
  int usage_percent = 0;                    // of the image filesystem, before collecting
  bool triggered = false;                   // usage_percent was at or above the high threshold
  int64_t bytes_to_free = 0;                // to bring usage down to the low threshold
  int64_t freed_bytes = 0;                  // disk space of the blobs and layers deleted
  std::vector<std::string> removed_images;  // image IDs, in the order removed
  int removed_blobs = 0;
  int removed_layers = 0;
  // Set when the bytes freed fell short of bytes_to_free, to the kubelet's FreeDiskSpaceFailed
  // message: "Failed to garbage collect required amount of images. Attempted to free N bytes,
  // but only found M bytes eligible to free."
  std::string free_space_failure;
};

class ImageGcManager {
 public:
  // `store` must outlive the manager. `stats` defaults to filesystem_stats, `clock` to now().
  ImageGcManager(ImageStore& store, ImageGcPolicy policy, FilesystemStatsFn stats = nullptr,
                 std::function<TimePoint()> clock = nullptr);
  ~ImageGcManager();
  ImageGcManager(const ImageGcManager&) = delete;
  ImageGcManager& operator=(const ImageGcManager&) = delete;

  // Records the store's images and marks those in `in_use` as used now. Entries of `in_use`
  // are image IDs or references the store resolves (tags, repo digests); others are ignored.
  // The store's error when its images cannot be listed.
  Status detect(const std::set<std::string>& in_use);

  // detect(), then, when usage is at or above the high threshold: deletes the blobs and
  // layers nothing refers to, then removes unused images old enough, least recently used
  // first (then first detected first), each followed by ImageStore::gc(), until the bytes
  // freed reach bytes_to_free. Returns what it did; free_space_failure tells when it could not
  // free enough. Errors: Internal "invalid capacity 0 on image filesystem" when the filesystem
  // reports no size; the stats function's and the store's errors (what was removed before an
  // error stays removed).
  Result<ImageGcReport> garbage_collect(const std::set<std::string>& in_use);

  // When the image was last seen in use; nullopt if it never was (or is unknown).
  std::optional<TimePoint> last_used(const std::string& image_id) const;

 private:
  struct Record {
    TimePoint first_detected;
    std::optional<TimePoint> last_used;
  };
  // The IDs `in_use` names in the store.
  Result<std::set<std::string>> resolve(const std::set<std::string>& in_use) const;
  Status detect_at(const std::set<std::string>& in_use_ids, TimePoint now);

  // Constant after construction.
  ImageStore& store_;
  const ImageGcPolicy policy_;
  const FilesystemStatsFn stats_;
  const std::function<TimePoint()> clock_;

  std::map<std::string, Record> records_;  // by image ID
};

}  // namespace skiff::agent::images
