#include "proxy/service_proxy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "common/log.h"
#include "proxy/ruleset.h"

namespace skiff::proxy {

namespace {

using Clock = std::chrono::steady_clock;
using client::ObjectPtr;

// What informer handlers share with the sync thread. Handlers hold it by shared_ptr: the
// informers outlive the proxy and keep its handlers, which then only touch this.
struct Signal {
  std::mutex mu;
  std::condition_variable cv;
  bool dirty = false;     // guarded by mu
  bool stopping = false;  // guarded by mu

  void mark() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return;
      dirty = true;
    }
    cv.notify_all();
  }
};

std::vector<std::string> node_addresses(const nlohmann::json& node) {
  std::vector<std::string> out;
  auto status = node.find("status");
  if (status == node.end() || !status->is_object()) return out;
  auto addrs = status->find("addresses");
  if (addrs == status->end() || !addrs->is_array()) return out;
  for (const auto& a : *addrs) {
    if (!a.is_object()) continue;
    std::string type = a.value("type", "");
    std::string ip = a.value("address", "");
    in_addr parsed{};
    if ((type == "InternalIP" || type == "ExternalIP") &&
        inet_pton(AF_INET, ip.c_str(), &parsed) == 1) {
      out.push_back(ip);
    }
  }
  return out;
}

std::string resource_version(const nlohmann::json& obj) {
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) return "";
  return meta->value("resourceVersion", "");
}

}  // namespace

struct ServiceProxy::Impl {
  Impl(client::Client& c, client::InformerFactory& f, ProxyOptions o)
      : client(c), informers(f), options(std::move(o)), signal(std::make_shared<Signal>()) {
    applier = options.applier ? options.applier
                              : std::make_shared<NftApplier>(options.nft_binary, options.netns);
    ruleset_options.node_name = options.node_name;
    ruleset_options.node_ips = options.node_ips;
    ruleset_options.cluster_cidr = options.cluster_cidr;
    ruleset_options.table = options.table;
    node_ips_known = !options.node_ips.empty() || options.node_name.empty();
  }

  // Constant after construction.
  client::Client& client;
  client::InformerFactory& informers;
  const ProxyOptions options;
  std::shared_ptr<RulesetApplier> applier;
  std::shared_ptr<Signal> signal;

  // Owned by the sync thread.
  RulesetOptions ruleset_options;
  bool node_ips_known = false;

  std::mutex mu;
  bool started = false;           // guarded by mu
  bool stopped = false;           // guarded by mu
  std::thread worker;             // guarded by mu
  ServiceProxy::SyncState state;  // guarded by mu

  // Reads the Node's addresses until they are known (the agent may register the Node after
  // the proxy starts).
  void resolve_node_ips() {
    if (node_ips_known) return;
    auto node = client.get(client::resources::kNodes, options.node_name);
    if (!node.ok()) {
      SKIFF_LOG(Debug) << "service proxy: node " << options.node_name
                       << " not readable yet: " << node.status().to_string();
      return;
    }
    auto ips = node_addresses(**node);
    if (ips.empty()) return;
    ruleset_options.node_ips = std::move(ips);
    node_ips_known = true;
  }

  // One sync: returns the status of the apply (OK when nothing needed applying).
  Status sync(client::Informer& services, client::Informer& slices) {
    resolve_node_ips();
    std::string script = desired_ruleset(services.list(), slices.list(), ruleset_options);
    {
      std::lock_guard<std::mutex> lock(mu);
      if (state.applies > 0 && state.last_status.ok() && script == state.ruleset) {
        return Status::Ok();
      }
    }
    Status s = applier->apply(script);
    std::lock_guard<std::mutex> lock(mu);
    state.last_status = s;
    if (s.ok()) {
      ++state.applies;
      state.ruleset = std::move(script);
    } else {
      ++state.failures;
    }
    return s;
  }

  void run(client::Informer* services, client::Informer* slices) {
    std::unique_lock<std::mutex> lock(signal->mu);
    // Never apply from a partial view: an empty table would cut every service off.
    while (!signal->stopping && !(services->synced() && slices->synced())) {
      signal->cv.wait_for(lock, std::chrono::milliseconds(20));
    }
    signal->dirty = true;
    Clock::time_point last_apply = Clock::time_point::min();
    auto retry = options.retry_interval;
    while (true) {
      signal->cv.wait(lock, [&] { return signal->stopping || signal->dirty; });
      if (signal->stopping) return;
      // Let the burst gather, and keep applies min_sync_interval apart.
      Clock::time_point not_before = Clock::now() + options.min_sync_interval;
      if (last_apply != Clock::time_point::min()) {
        not_before = std::max(not_before, last_apply + options.min_sync_interval);
      }
      if (signal->cv.wait_until(lock, not_before, [&] { return signal->stopping; })) return;
      signal->dirty = false;
      lock.unlock();
      Status s = sync(*services, *slices);
      lock.lock();
      last_apply = Clock::now();
      if (s.ok()) {
        retry = options.retry_interval;
        continue;
      }
      SKIFF_LOG(Warn) << "service proxy: applying rules failed, retrying in " << retry.count()
                      << " ms: " << s.to_string();
      if (signal->cv.wait_for(lock, retry, [&] { return signal->stopping; })) return;
      retry = std::min(retry * 2, options.max_retry_interval);
      signal->dirty = true;
    }
  }
};

ServiceProxy::ServiceProxy(client::Client& client, client::InformerFactory& informers,
                           ProxyOptions options)
    : impl_(std::make_unique<Impl>(client, informers, std::move(options))) {}

ServiceProxy::~ServiceProxy() { stop(); }

void ServiceProxy::start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->started || impl_->stopped) return;
  impl_->started = true;
  client::Informer& services = impl_->informers.informer(client::resources::kServices);
  client::Informer& slices = impl_->informers.informer(client::resources::kEndpointSlices);
  std::shared_ptr<Signal> signal = impl_->signal;
  auto on_change = [signal](const ObjectPtr&) { signal->mark(); };
  auto on_update = [signal](const ObjectPtr& old_obj, const ObjectPtr& new_obj) {
    // A relist may report objects that did not change.
    if (old_obj && new_obj && resource_version(*old_obj) == resource_version(*new_obj)) return;
    signal->mark();
  };
  services.add_handlers(client::InformerHandlers{on_change, on_update, on_change});
  slices.add_handlers(client::InformerHandlers{on_change, on_update, on_change});
  services.start();
  slices.start();
  impl_->worker =
      std::thread([impl = impl_.get(), &services, &slices] { impl->run(&services, &slices); });
}

void ServiceProxy::stop() {
  std::thread worker;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopped = true;
    worker = std::move(impl_->worker);
  }
  {
    std::lock_guard<std::mutex> lock(impl_->signal->mu);
    impl_->signal->stopping = true;
  }
  impl_->signal->cv.notify_all();
  if (worker.joinable()) worker.join();
}

Status ServiceProxy::cleanup() {
  return impl_->applier->apply(delete_ruleset(impl_->ruleset_options.table));
}

ServiceProxy::SyncState ServiceProxy::sync_state() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->state;
}

}  // namespace skiff::proxy
