// A test bed for workload controllers: a real API server, a ControllerManager running the
// chosen controllers through the in-process client, a fake kubelet that marks pods Running
// and Ready (with a pod IP), and a recorder of every pod event of the test namespace, in the
// server's order, for assertions over the whole history.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
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

inline const json* member(const json& obj, std::initializer_list<const char*> path) {
  const json* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object() || !cur->contains(p)) return nullptr;
    cur = &(*cur)[p];
  }
  return cur;
}

inline std::string str(const json& obj, std::initializer_list<const char*> path) {
  const json* v = member(obj, path);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}

inline int64_t num(const json& obj, std::initializer_list<const char*> path) {
  const json* v = member(obj, path);
  return v != nullptr && v->is_number_integer() ? v->get<int64_t>() : 0;
}

inline bool pod_ready(const json& pod) {
  const json* conditions = member(pod, {"status", "conditions"});
  if (conditions == nullptr || !conditions->is_array()) return false;
  for (const json& c : *conditions) {
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

inline bool pod_deleting(const json& pod) {
  const json* ts = member(pod, {"metadata", "deletionTimestamp"});
  return ts != nullptr && !ts->is_null();
}

// One pod event as the recorder saw it.
struct PodEvent {
  client::WatchEventType type;
  json pod;
};

// Records every pod event of a namespace from a watch started before the test acts.
class PodRecorder {
 public:
  PodRecorder(client::Client& c, const std::string& ns) {
    auto list = c.list(client::resources::kPods.in(ns));
    if (!list.ok()) {
      ADD_FAILURE() << "list pods: " << list.status().to_string();
      return;
    }
    client::ListOptions o;
    o.resource_version = list->resource_version;
    auto w = c.watch(
        client::resources::kPods.in(ns), o,
        [this](const client::WatchEvent& e) {
          if (e.type == client::WatchEventType::kBookmark || !e.object) return;
          std::lock_guard<std::mutex> lock(mu_);
          if (e.type == client::WatchEventType::kError) {
            closed_ = true;
            return;
          }
          events_.push_back(PodEvent{e.type, *e.object});
        },
        [this](const Status&) {
          std::lock_guard<std::mutex> lock(mu_);
          closed_ = true;
        });
    if (!w.ok()) {
      ADD_FAILURE() << "watch pods: " << w.status().to_string();
      return;
    }
    watch_ = std::move(w.value());
  }
  ~PodRecorder() {
    if (watch_) watch_->stop();
  }

  std::vector<PodEvent> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_.size();
  }
  // True if the watch ended early: the history would be incomplete.
  bool closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<PodEvent> events_;  // guarded by mu_
  bool closed_ = false;           // guarded by mu_
  std::unique_ptr<client::Watch> watch_;
};

// Replays pod events and reports, after each one, how many pods are alive (not being
// deleted) and how many of those are ready.
class PodHistory {
 public:
  struct Point {
    size_t index;
    int alive;
    int ready;
  };
  // fn sees the state after each event from `from` on.
  static void replay(
      const std::vector<PodEvent>& events, size_t from,
      const std::function<void(const Point&, const std::map<std::string, json>&)>& fn) {
    std::map<std::string, json> pods;
    for (size_t i = 0; i < events.size(); ++i) {
      const PodEvent& e = events[i];
      std::string name = str(e.pod, {"metadata", "name"});
      if (e.type == client::WatchEventType::kDeleted || pod_deleting(e.pod)) {
        pods.erase(name);
      } else {
        pods[name] = e.pod;
      }
      if (i < from) continue;
      Point p{i, 0, 0};
      for (const auto& [n, pod] : pods) {
        ++p.alive;
        if (pod_ready(pod)) ++p.ready;
      }
      fn(p, pods);
    }
  }
};

// Marks the pods of a namespace Running and Ready, as a kubelet would once their containers
// run, unless told to hold them. Works from an informer; the writes happen on its own thread.
class FakeKubelet {
 public:
  FakeKubelet(client::Client& c, const std::string& ns)
      : client_(c), ns_(ns), informer_(c, client::resources::kPods.in(ns)) {
    informer_.add_handlers(client::InformerHandlers{
        [this](const client::ObjectPtr& p) { offer(*p); },
        [this](const client::ObjectPtr&, const client::ObjectPtr& p) { offer(*p); }, nullptr});
    worker_ = std::thread([this] { run(); });
    informer_.start();
  }
  ~FakeKubelet() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    informer_.stop();
    worker_.join();
  }

  // While held, new pods stay Pending and not ready.
  void hold(bool held) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = held;
    }
    if (!held) {
      for (const auto& p : informer_.list(ns_)) offer(*p);
    }
  }

  // Marks one pod ready now, held or not.
  Status make_ready(const std::string& name) {
    json status = {
        {"phase", "Running"},
        {"podIP", "10.42.0." + std::to_string(next_ip())},
        {"conditions",
         {{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", format_rfc3339(now())}},
          {{"type", "ContainersReady"},
           {"status", "True"},
           {"lastTransitionTime", format_rfc3339(now())}}}}};
    auto r = client_.patch(client::resources::kPods.in(ns_), name, client::PatchType::kMerge,
                           json{{"status", status}}.dump(), "status");
    return r.ok() || r.status().is_not_found() ? Status::Ok() : r.status();
  }

 private:
  int next_ip() {
    std::lock_guard<std::mutex> lock(mu_);
    return 2 + (ip_++ % 250);
  }

  void offer(const json& pod) {
    if (pod_ready(pod) || pod_deleting(pod)) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (held_) return;
    std::string name = str(pod, {"metadata", "name"});
    if (queued_.insert(name).second) {
      todo_.push_back(name);
      cv_.notify_all();
    }
  }

  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !todo_.empty(); });
      if (stop_) return;
      std::string name = todo_.front();
      todo_.pop_front();
      queued_.erase(name);
      if (held_) continue;
      lock.unlock();
      (void)make_ready(name);
      lock.lock();
    }
  }

  client::Client& client_;
  std::string ns_;
  client::Informer informer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> todo_;  // guarded by mu_
  std::set<std::string> queued_;  // guarded by mu_
  bool held_ = false;             // guarded by mu_
  bool stop_ = false;             // guarded by mu_
  int ip_ = 0;                    // guarded by mu_
  std::thread worker_;
};

// The server, a namespace, and a ControllerManager running `controllers`.
class WorkloadHarness {
 public:
  explicit WorkloadHarness(std::vector<std::string> controllers, std::string ns = "apps") {
    ns_ = std::move(ns);
    if (!server_.ok()) return;
    admin_ = server_.client("skiff-test");
    controller_client_ = server_.client("skiff-controller-manager");
    json namespace_obj = {
        {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns_}}}};
    auto created = admin_->create(client::resources::kNamespaces, namespace_obj);
    if (!created.ok()) ADD_FAILURE() << "namespace: " << created.status().to_string();
    ManagerOptions o;
    o.identity = "workload-test";
    o.enabled = std::move(controllers);
    o.lease_duration = 2s;
    o.renew_deadline = 1500ms;
    o.retry_period = 200ms;
    manager_ = std::make_unique<ControllerManager>(*controller_client_, o);
    manager_->start();
  }
  ~WorkloadHarness() {
    if (manager_) manager_->stop();
  }

  bool ok() const { return server_.ok() && admin_ != nullptr; }
  client::Client& client() { return *admin_; }
  const std::string& ns() const { return ns_; }
  testing::TestServer& server() { return server_; }

  client::ResourceRef pods() const { return client::resources::kPods.in(ns_); }
  client::ResourceRef replica_sets() const { return client::resources::kReplicaSets.in(ns_); }
  client::ResourceRef deployments() const { return client::resources::kDeployments.in(ns_); }

  json get(const client::ResourceRef& r, const std::string& name) {
    auto g = admin_->get(r, name);
    return g.ok() ? **g : json();
  }
  std::vector<json> list(const client::ResourceRef& r, const std::string& selector = "") {
    client::ListOptions o;
    o.label_selector = selector;
    auto l = admin_->list(r, o);
    std::vector<json> out;
    if (!l.ok()) return out;
    for (const auto& item : l->items) out.push_back(*item);
    return out;
  }
  // Pods not being deleted.
  std::vector<json> live_pods(const std::string& selector = "") {
    std::vector<json> out;
    for (json& p : list(pods(), selector)) {
      if (!pod_deleting(p)) out.push_back(std::move(p));
    }
    return out;
  }
  Status merge_patch(const client::ResourceRef& r, const std::string& name, const json& patch) {
    auto p = admin_->patch(r, name, client::PatchType::kMerge, patch.dump());
    return p.ok() ? Status::Ok() : p.status();
  }
  // Events of this namespace about `name` with `reason`.
  std::vector<json> events(const std::string& name, const std::string& reason) {
    std::vector<json> out;
    for (json& e : list(client::resources::kEvents.in(ns_))) {
      if (str(e, {"involvedObject", "name"}) == name && e.value("reason", "") == reason) {
        out.push_back(std::move(e));
      }
    }
    return out;
  }

 private:
  testing::TestServer server_;
  std::string ns_;
  std::unique_ptr<client::Client> admin_;
  std::unique_ptr<client::Client> controller_client_;
  std::unique_ptr<ControllerManager> manager_;
};

}  // namespace skiff::controllers::testing_support
