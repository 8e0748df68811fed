// Periodic node housekeeping of the agent:
//  - container log rotation as the kubelet's container log manager does it
//    (containerLogMaxSize, containerLogMaxFiles): every interval, each running container's log
//    larger than the maximum size is rotated, and at most max_files files are kept per
//    container (the current one and max_files - 1 rotated ones, <log>.1 the newest);
//  - image garbage collection as the kubelet's image GC manager does it (images/image_gc.h):
//    every interval the images in use are noted (for least-recently-used order), and every
//    image_gc_period, when the image filesystem is used at or above the high threshold, unused
//    images are removed down to the low threshold. Failures become Warning events about the
//    Node with the kubelet's reasons: FreeDiskSpaceFailed each time not enough could be freed,
//    ImageGCFailed when a collection fails twice or more in a row;
//  - every interval, the memory the agent's heap has free goes back to the system.
//
// Thread-safety: start() and stop() are thread-safe; rotate_logs() and collect_images() may be
// called from any thread (passes run one at a time).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "agent/images/image_gc.h"
#include "common/status.h"
#include "common/time.h"

namespace skiff::agent {

namespace runtime {
class ContainerRuntime;
}
namespace images {
class ImageStore;
}

struct HousekeepingOptions {
  int64_t container_log_max_size = 10 * 1024 * 1024;  // the kubelet's 10Mi
  int container_log_max_files = 5;                    // at least 2
  std::chrono::milliseconds interval{std::chrono::seconds(10)};

  // Image garbage collection; off unless both image_store and images_in_use are set.
  images::ImageStore* image_store = nullptr;  // must outlive the Housekeeping
  // The images of the node's containers, running or exited: image IDs or references the store
  // resolves (tags, repo digests). An error skips image garbage collection for that pass.
  std::function<Result<std::set<std::string>>()> images_in_use;
  // imageGCHighThresholdPercent, imageGCLowThresholdPercent, imageMinimumGCAge.
  images::ImageGcPolicy image_gc_policy;
  std::chrono::milliseconds image_gc_period{std::chrono::minutes(5)};  // the kubelet's
  images::FilesystemStatsFn filesystem_stats;  // of the image store's root; default statvfs
  std::function<TimePoint()> clock;            // default now()
  // Records an event about the Node (type "Warning", the kubelet's reason, its message).
  std::function<void(const std::string& type, const std::string& reason,
                     const std::string& message)>
      record_node_event;
};

class Housekeeping {
 public:
  // `runtime` must outlive the Housekeeping.
  Housekeeping(runtime::ContainerRuntime& runtime, HousekeepingOptions options);
  ~Housekeeping();  // stop()
  Housekeeping(const Housekeeping&) = delete;
  Housekeeping& operator=(const Housekeeping&) = delete;

  // Starts the background thread (a pass every interval). Idempotent.
  void start();
  // Stops it and waits for a pass in progress. Idempotent.
  void stop();

  // One pass over the running containers: rotates each log larger than the maximum size,
  // shifting <log>.1 .. <log>.(max_files-2) up by one and dropping the oldest. Returns how
  // many logs it rotated; the runtime's error when the containers cannot be listed (a
  // container whose log cannot be rotated is logged and skipped).
  Result<int> rotate_logs();

  // One image garbage collection now (what the background thread does every
  // image_gc_period), recording FreeDiskSpaceFailed and ImageGCFailed events. Returns what it
  // did (free_space_failure set when it could not free enough); Invalid when image garbage
  // collection is off; the in-use function's or the collection's error otherwise.
  Result<images::ImageGcReport> collect_images();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::agent
