#include "agent/housekeeping.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "agent/runtime/runtime.h"
#include "common/log.h"

namespace skiff::agent {

struct Housekeeping::Impl {
  Impl(runtime::ContainerRuntime& rt, HousekeepingOptions o) : runtime(rt), options(o) {
    options.container_log_max_files = std::max(2, options.container_log_max_files);
  }
  void loop();
  Result<int> rotate_logs();

  // Constant after construction.
  runtime::ContainerRuntime& runtime;
  HousekeepingOptions options;

  std::mutex mu;
  std::condition_variable cv;
  bool running = false;  // guarded by mu
  std::thread thread;    // guarded by mu (started and joined under start()/stop())
  std::mutex pass_mu;    // one pass at a time
};

Housekeeping::Housekeeping(runtime::ContainerRuntime& runtime, HousekeepingOptions options)
    : impl_(std::make_unique<Impl>(runtime, options)) {}

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
  std::unique_lock<std::mutex> l(mu);
  while (running) {
    cv.wait_for(l, options.interval, [this] { return !running; });
    if (!running) break;
    l.unlock();
    auto r = rotate_logs();
    if (!r.ok()) SKIFF_LOG(Warn) << "log rotation: " << r.status().to_string();
    l.lock();
  }
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

}  // namespace skiff::agent
