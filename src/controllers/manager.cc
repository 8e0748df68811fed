#include <unistd.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "common/log.h"
#include "common/random.h"
#include "controllers/framework.h"

namespace skiff::controllers {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kSyncPoll{100};
constexpr std::chrono::seconds kSyncWarning{30};

std::string default_identity() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    return "skiff_" + new_uuid();
  }
  return std::string(host) + "_" + new_uuid();
}

// "deployment" -> "deployment-controller", "node_lifecycle" -> "node-lifecycle-controller".
std::string event_component(const std::string& name) {
  std::string c = name;
  std::replace(c.begin(), c.end(), '_', '-');
  static const std::string kSuffix = "-controller";
  if (c.size() < kSuffix.size() || c.compare(c.size() - kSuffix.size(), kSuffix.size(), kSuffix)) {
    c += kSuffix;
  }
  return c;
}

bool is_enabled(const std::vector<std::string>& enabled, const std::string& name) {
  if (enabled.empty()) return true;
  bool all = false;
  bool named = false;
  for (const std::string& e : enabled) {
    if (e == "-" + name) return false;
    if (e == name) named = true;
    if (e == "*") all = true;
  }
  return named || all;
}

// Everything one leadership term runs: informers, controllers, their queues and workers.
// start() returns at once; the informers are synced and the workers started on a thread of
// its own, so that renewing the Lease never waits for them. stop() undoes it all. Used by
// the elector thread only.
class ControllerSet {
 public:
  ControllerSet(client::Client& client, const ManagerOptions& options, const Clock& clock,
                std::vector<std::pair<std::string, ControllerFactory>> factories)
      : client_(client), options_(options), clock_(clock), factories_(std::move(factories)) {}
  ~ControllerSet() { stop(); }

  void start() {
    starter_ = std::thread([this] { run_starter(); });
  }

  void stop() {
    stopping_.store(true);
    if (starter_.joinable()) starter_.join();
    // Workers finish the reconcile they are in, then get() returns false.
    for (auto& r : running_) r->queue->shutdown();
    for (auto& r : running_) {
      for (std::thread& t : r->workers) t.join();
      r->workers.clear();
    }
    // No handler runs once the informers have stopped, so the controllers (whose handlers
    // the informers hold) may go.
    if (informers_) informers_->stop();
    for (auto& r : running_) r->controller.reset();
    running_.clear();
    informers_.reset();
  }

 private:
  struct Running {
    std::string name;
    std::unique_ptr<EventRecorder> events;
    std::unique_ptr<ControllerContext> context;
    std::unique_ptr<WorkQueue> queue;
    std::unique_ptr<Controller> controller;
    std::vector<std::thread> workers;
  };

  void run_starter() {
    informers_ = std::make_unique<client::InformerFactory>(client_);
    for (auto& [name, factory] : factories_) {
      if (stopping_.load()) return;
      auto r = std::make_unique<Running>();
      r->name = name;
      r->events = std::make_unique<EventRecorder>(client_, event_component(name));
      r->context = std::make_unique<ControllerContext>(
          ControllerContext{client_, *informers_, *r->events, clock_, options_.controller_options});
      r->queue = std::make_unique<WorkQueue>(name);
      try {
        r->controller = factory(*r->context);
        if (r->controller == nullptr) {
          SKIFF_LOG(Error) << "controller " << name << ": its factory returned no controller";
          continue;
        }
        r->controller->setup(*r->queue);
      } catch (const std::exception& e) {
        SKIFF_LOG(Error) << "controller " << name << " failed to set up: " << e.what();
        continue;
      }
      running_.push_back(std::move(r));
    }

    informers_->start();
    SteadyClock::time_point began = SteadyClock::now();
    bool warned = false;
    while (!informers_->wait_for_sync(kSyncPoll)) {
      if (stopping_.load()) return;
      if (!warned && SteadyClock::now() - began > kSyncWarning) {
        SKIFF_LOG(Warn) << "controllers wait for their informers to sync";
        warned = true;
      }
    }
    for (auto& r : running_) {
      int workers = std::max(1, r->controller->workers());
      for (int i = 0; i < workers && !stopping_.load(); ++i) {
        r->workers.emplace_back([this, rp = r.get()] { run_worker(*rp); });
      }
      SKIFF_LOG(Debug) << "controller " << r->name << " started with " << workers << " workers";
    }
    SKIFF_LOG(Info) << "started " << running_.size() << " controllers";
  }

  void run_worker(Running& r) {
    std::string key;
    while (r.queue->get(&key)) {
      Status s;
      try {
        s = r.controller->reconcile(key);
      } catch (const std::exception& e) {
        s = Status::Internal(std::string("reconcile threw: ") + e.what());
      }
      if (s.ok()) {
        r.queue->forget(key);
      } else {
        int requeues = r.queue->requeues(key);
        if (s.code() == StatusCode::kConflict) {
          SKIFF_LOG(Debug) << "controller " << r.name << ": " << key << ": " << s.to_string()
                           << " (requeue " << requeues + 1 << ")";
        } else {
          SKIFF_LOG(Warn) << "controller " << r.name << ": " << key << ": " << s.to_string()
                          << " (requeue " << requeues + 1 << ")";
        }
        r.queue->add_rate_limited(key);
      }
      r.queue->done(key);
    }
  }

  // Constant after construction.
  client::Client& client_;
  const ManagerOptions& options_;
  const Clock& clock_;
  const std::vector<std::pair<std::string, ControllerFactory>> factories_;

  std::atomic<bool> stopping_{false};
  std::thread starter_;
  // Written by the starter thread, then read by stop() after joining it.
  std::unique_ptr<client::InformerFactory> informers_;
  std::vector<std::unique_ptr<Running>> running_;
};

}  // namespace

struct ControllerManager::Impl {
  Impl(client::Client& c, ManagerOptions o)
      : client(c),
        options(std::move(o)),
        clock(options.clock != nullptr ? *options.clock : Clock::real()) {
    if (options.identity.empty()) options.identity = default_identity();
    for (const std::string& e : options.enabled) {
      std::string name = !e.empty() && e[0] == '-' ? e.substr(1) : e;
      if (name != "*" && !controller_factory(name)) {
        SKIFF_LOG(Warn) << "controller manager: unknown controller \"" << name << "\"";
      }
    }
    LeaderElectionConfig le;
    le.lease_namespace = kLeaseNamespace;
    le.lease_name = kLeaseName;
    le.identity = options.identity;
    le.lease_duration = options.lease_duration;
    le.renew_deadline = options.renew_deadline;
    le.retry_period = options.retry_period;
    le.release_on_stop = options.release_on_stop;
    le.clock = &clock;
    elector = std::make_unique<LeaderElector>(
        client, std::move(le),
        LeaderElector::Callbacks{[this] { start_controllers(); }, [this] { stop_controllers(); }});
  }

  void start_controllers() {
    std::vector<std::pair<std::string, ControllerFactory>> factories;
    for (const std::string& name : registered_controllers()) {
      if (!is_enabled(options.enabled, name)) continue;
      if (ControllerFactory f = controller_factory(name)) factories.emplace_back(name, f);
    }
    running = std::make_unique<ControllerSet>(client, options, clock, std::move(factories));
    running->start();
  }

  void stop_controllers() {
    if (running) running->stop();
    running.reset();
    SKIFF_LOG(Info) << "controllers stopped";
  }

  // Constant after construction.
  client::Client& client;
  ManagerOptions options;
  const Clock& clock;
  std::unique_ptr<LeaderElector> elector;

  std::unique_ptr<ControllerSet> running;  // used by the elector thread only
};

ControllerManager::ControllerManager(client::Client& client, ManagerOptions options)
    : impl_(std::make_unique<Impl>(client, std::move(options))) {}

ControllerManager::~ControllerManager() { stop(); }

void ControllerManager::start() { impl_->elector->start(); }

void ControllerManager::stop() { impl_->elector->stop(); }

bool ControllerManager::is_leader() const { return impl_->elector->is_leader(); }

const std::string& ControllerManager::identity() const { return impl_->options.identity; }

}  // namespace skiff::controllers
