// Runs one controller against a real API server the way the ControllerManager does (informers,
// a work queue, worker threads, an EventRecorder), without leader election and with a clock
// the test controls, so that time-driven behaviour (deadlines, TTLs, schedules) is tested
// without waiting. Tests that move the clock call enqueue() to have the key looked at again.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/informer.h"
#include "common/time.h"
#include "controllers/framework.h"
#include "testing/test_server.h"

namespace skiff::controllers::testing_support {

using nlohmann::json;
using namespace std::chrono_literals;

// A clock that runs with the real one, shifted by what the test adds: controllers compare its
// time with server-written timestamps, so it must not stand still.
class ShiftedClock final : public Clock {
 public:
  TimePoint now() const override {
    return skiff::now() + std::chrono::nanoseconds(shift_ns_.load());
  }
  void advance(std::chrono::nanoseconds d) { shift_ns_.fetch_add(d.count()); }
  // Shifts the clock so that it reads `t` now.
  void set(TimePoint t) {
    shift_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(t - skiff::now()).count());
  }

 private:
  std::atomic<int64_t> shift_ns_{0};
};

class ControllerRunner {
 public:
  using Factory = std::function<std::unique_ptr<Controller>(ControllerContext&)>;

  ControllerRunner(skiff::testing::TestServer& server, const Clock& clock,
                   const std::string& component, const Factory& make) {
    client_ = server.client("skiff-controller-manager");
    informers_ = std::make_unique<client::InformerFactory>(*client_);
    events_ = std::make_unique<EventRecorder>(*client_, component);
    ctx_ = std::make_unique<ControllerContext>(
        ControllerContext{*client_, *informers_, *events_, clock, ControllerOptions{}});
    controller_ = make(*ctx_);
    queue_ = std::make_unique<WorkQueue>(controller_->name());
    controller_->setup(*queue_);
    informers_->start();
    if (!informers_->wait_for_sync(20s)) ADD_FAILURE() << "informers did not sync";
    for (int i = 0; i < controller_->workers(); ++i) workers_.emplace_back([this] { run(); });
  }
  ~ControllerRunner() {
    queue_->shutdown();
    for (auto& t : workers_) t.join();
    informers_->stop();
  }

  void enqueue(const std::string& key) { queue_->add(key); }
  Controller& controller() { return *controller_; }

 private:
  void run() {
    std::string key;
    while (queue_->get(&key)) {
      Status s = controller_->reconcile(key);
      if (s.ok()) {
        queue_->forget(key);
      } else {
        queue_->add_rate_limited(key);
      }
      queue_->done(key);
    }
  }

  std::unique_ptr<client::Client> client_;
  std::unique_ptr<client::InformerFactory> informers_;
  std::unique_ptr<EventRecorder> events_;
  std::unique_ptr<ControllerContext> ctx_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<WorkQueue> queue_;
  std::vector<std::thread> workers_;
};

// Small readers for assertions.
inline const json* at(const json& obj, std::initializer_list<const char*> path) {
  const json* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object() || !cur->contains(p)) return nullptr;
    cur = &(*cur)[p];
  }
  return cur;
}
inline std::string text(const json& obj, std::initializer_list<const char*> path) {
  const json* v = at(obj, path);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}
inline int64_t number(const json& obj, std::initializer_list<const char*> path) {
  const json* v = at(obj, path);
  return v != nullptr && v->is_number_integer() ? v->get<int64_t>() : 0;
}
// The condition of `type` in status.conditions, or null.
inline const json* condition(const json& obj, const std::string& type) {
  const json* conds = at(obj, {"status", "conditions"});
  if (conds == nullptr || !conds->is_array()) return nullptr;
  for (const json& c : *conds) {
    if (c.value("type", "") == type) return &c;
  }
  return nullptr;
}
inline bool condition_true(const json& obj, const std::string& type) {
  const json* c = condition(obj, type);
  return c != nullptr && c->value("status", "") == "True";
}

// Runs a shell command; its output (stdout and stderr) and exit code.
inline std::string run_command(const std::string& command, int* rc) {
  std::string out;
  FILE* f = ::popen((command + " 2>&1").c_str(), "r");
  if (f == nullptr) {
    *rc = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int status = ::pclose(f);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

}  // namespace skiff::controllers::testing_support
