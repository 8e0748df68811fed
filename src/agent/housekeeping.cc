#include "agent/housekeeping.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "agent/images/store.h"
#include "agent/runtime/runtime.h"
#include "common/log.h"

namespace skiff::agent {

struct Housekeeping::Impl {
  Impl(runtime::ContainerRuntime& rt, HousekeepingOptions o) : runtime(rt), options(std::move(o)) {
    options.container_log_max_files = std::max(2, options.container_log_max_files);
    if (!options.clock) options.clock = [] { return now(); };
    if (options.image_store != nullptr && options.images_in_use) {
      image_gc = std::make_unique<images::ImageGcManager>(
          *options.image_store, options.image_gc_policy, options.filesystem_stats, options.clock);
    }
  }
  void loop();
  Result<int> rotate_logs();
  void detect_images();
  Result<images::ImageGcReport> collect_images();
  void record(const std::string& reason, const std::string& message) {
    SKIFF_LOG(Warn) << "image garbage collection: " << reason << ": " << message;
    if (options.record_node_event) options.record_node_event("Warning", reason, message);
  }

  // Constant after construction.
  runtime::ContainerRuntime& runtime;
  HousekeepingOptions options;
  std::unique_ptr<images::ImageGcManager> image_gc;  // null when image GC is off

  // Guarded by pass_mu.
  bool image_gc_failed = false;  // the last collection failed

  std::mutex mu;
  std::condition_variable cv;
  bool running = false;  // guarded by mu
  std::thread thread;    // guarded by mu (started and joined under start()/stop())
  std::mutex pass_mu;    // one pass at a time
};

Housekeeping::Housekeeping(runtime::ContainerRuntime& runtime, HousekeepingOptions options)
    : impl_(std::make_unique<Impl>(runtime, std::move(options))) {}

Housekeeping::~Housekeeping() { stop(); }

void Housekeeping::start() {
  std::lock_guard<std::mutex> l(impl_->mu);
  if (impl_->running || impl_->thread.joinable()) return;
  impl_->running = true;
  impl_->thread = std::thread([this] { impl_->loop(); });
}

void Housekeeping::stop() {
  std::thread t;
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->running = false;
    t = std::move(impl_->thread);
  }
  impl_->cv.notify_all();
  if (t.joinable()) t.join();
}

void Housekeeping::Impl::loop() {
  // The first collection comes one period after start: images are first detected at start,
  // and none is old enough to be removed before.
  auto next_image_gc = std::chrono::steady_clock::now() + options.image_gc_period;
  std::unique_lock<std::mutex> l(mu);
  if (image_gc) {
    l.unlock();
    detect_images();
    l.lock();
  }
  while (running) {
    cv.wait_for(l, options.interval, [this] { return !running; });
    if (!running) break;
    l.unlock();
    auto r = rotate_logs();
    if (!r.ok()) SKIFF_LOG(Warn) << "log rotation: " << r.status().to_string();
    if (image_gc) {
      if (std::chrono::steady_clock::now() >= next_image_gc) {
        collect_images();  // reports its own failures
        next_image_gc = std::chrono::steady_clock::now() + options.image_gc_period;
      } else {
        detect_images();
      }
    }
    l.lock();
  }
}

void Housekeeping::Impl::detect_images() {
  std::lock_guard<std::mutex> p(pass_mu);
  auto in_use = options.images_in_use();
  Status s = in_use.ok() ? image_gc->detect(*in_use) : in_use.status();
  if (!s.ok()) SKIFF_LOG(Debug) << "image detection: " << s.to_string();
}

Result<images::ImageGcReport> Housekeeping::Impl::collect_images() {
  if (!image_gc) return Status::Invalid("image garbage collection is off");
  std::lock_guard<std::mutex> p(pass_mu);
  Result<images::ImageGcReport> result = Status::Internal("not run");
  auto in_use = options.images_in_use();
  if (!in_use.ok()) {
    result =
        Status(in_use.status().code(), "listing the images in use: " + in_use.status().message());
  } else {
    result = image_gc->garbage_collect(*in_use);
  }
  std::string failure;
  if (!result.ok()) {
    failure = result.status().message();
  } else {
    const auto& r = *result;
    if (!r.removed_images.empty() || r.removed_layers > 0 || r.removed_blobs > 0) {
      SKIFF_LOG(Info) << "image garbage collection: usage " << r.usage_percent << "%, removed "
                      << r.removed_images.size() << " images, " << r.removed_layers << " layers, "
                      << r.freed_bytes << " bytes freed";
    }
    if (!r.free_space_failure.empty()) {
      failure = r.free_space_failure;
      record("FreeDiskSpaceFailed", failure);
    }
  }
  // As the kubelet: a single failure is only logged (stats may not be ready yet), repeated
  // ones become ImageGCFailed events.
  if (!failure.empty()) {
    if (image_gc_failed) {
      record("ImageGCFailed", failure);
    } else {
      SKIFF_LOG(Warn) << "image garbage collection failed: " << failure;
    }
  }
  image_gc_failed = !failure.empty();
  return result;
}

Result<int> Housekeeping::Impl::rotate_logs() {
  std::lock_guard<std::mutex> p(pass_mu);
  auto list = runtime.list();
  if (!list.ok()) return list.status();
  int rotated = 0;
  for (const auto& c : *list) {
    if (c.state != runtime::ContainerState::kRunning || c.log_path.empty()) continue;
    struct stat st;
    if (::stat(c.log_path.c_str(), &st) != 0 || st.st_size <= options.container_log_max_size) {
      continue;
    }
    // Make room for the new <log>.1: the oldest kept file is replaced by its predecessor.
    for (int i = options.container_log_max_files - 2; i >= 1; --i) {
      std::string from = c.log_path + "." + std::to_string(i);
      std::string to = c.log_path + "." + std::to_string(i + 1);
      if (::access(from.c_str(), F_OK) == 0 && ::rename(from.c_str(), to.c_str()) != 0) {
        SKIFF_LOG(Warn) << "log rotation: renaming " << from << ": " << std::strerror(errno);
      }
    }
    auto r = runtime.rotate_log(c.id, options.container_log_max_size);
    if (!r.ok()) {
      SKIFF_LOG(Warn) << "log rotation: container " << c.id << ": " << r.status().to_string();
    } else if (*r) {
      ++rotated;
    }
  }
  return rotated;
}

Result<int> Housekeeping::rotate_logs() { return impl_->rotate_logs(); }

Result<images::ImageGcReport> Housekeeping::collect_images() { return impl_->collect_images(); }

}  // namespace skiff::agent
