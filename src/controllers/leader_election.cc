#include <nlohmann/json.hpp>
#include <utility>

#include "common/log.h"
#include "common/random.h"
#include "controllers/framework.h"

namespace skiff::controllers {

namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

std::string string_at(const json& obj, const char* field) {
  auto it = obj.find(field);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t int_at(const json& obj, const char* field, int64_t fallback) {
  auto it = obj.find(field);
  return it != obj.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

int64_t whole_seconds(std::chrono::milliseconds d) {
  int64_t s = (d.count() + 999) / 1000;
  return s < 1 ? 1 : s;
}

}  // namespace

struct LeaderElector::Impl {
  Impl(client::Client& c, LeaderElectionConfig cfg, Callbacks cb)
      : client(c),
        config(std::move(cfg)),
        clock(config.clock != nullptr ? *config.clock : Clock::real()),
        callbacks(std::move(cb)),
        leases(client::resources::kLeases.in(config.lease_namespace)) {}

  // Constant after construction.
  client::Client& client;
  const LeaderElectionConfig config;
  const Clock& clock;
  const Callbacks callbacks;
  const client::ResourceRef leases;

  std::mutex lifecycle_mu;  // serializes start() and stop()
  std::thread thread;       // guarded by lifecycle_mu

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // guarded by mu

  std::atomic<bool> leader{false};

  // Used by the elector thread only: the Lease spec last seen, and when (by clock) it was
  // first seen, which is what expiry is measured from.
  json observed_spec;
  TimePoint observed_time;

  // Sleeps for d; false if stop() was called meanwhile.
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu);
    return !cv.wait_for(lock, d, [this] { return stopping; });
  }

  void observe(const json& spec, TimePoint now) {
    if (spec != observed_spec) {
      observed_spec = spec;
      observed_time = now;
    }
  }

  void log_failure(const char* what, const Status& s) {
    if (leader.load() && s.code() != StatusCode::kConflict) {
      SKIFF_LOG(Warn) << "leader election " << config.lease_namespace << "/" << config.lease_name
                      << ": could not " << what << " the lease: " << s.to_string();
    } else {
      SKIFF_LOG(Debug) << "leader election " << config.lease_namespace << "/" << config.lease_name
                       << ": could not " << what << " the lease: " << s.to_string();
    }
  }

  // One round of client-go's tryAcquireOrRenew: true if this candidate holds the Lease now.
  bool try_acquire_or_renew() {
    TimePoint now = clock.now();
    std::string now_text = format_rfc3339_micro(now);
    int64_t duration = whole_seconds(config.lease_duration);

    auto got = client.get(leases, config.lease_name);
    if (!got.ok()) {
      if (!got.status().is_not_found()) {
        log_failure("read", got.status());
        return false;
      }
      json lease = {
          {"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", {{"name", config.lease_name}, {"namespace", config.lease_namespace}}},
          {"spec",
           {{"holderIdentity", config.identity},
            {"leaseDurationSeconds", duration},
            {"acquireTime", now_text},
            {"renewTime", now_text},
            {"leaseTransitions", 0}}}};
      auto created = client.create(leases, lease);
      if (!created.ok()) {
        log_failure("create", created.status());
        return false;
      }
      observe((*created.value()).value("spec", json::object()), now);
      return true;
    }

    const json& old = *got.value();
    json old_spec = old.value("spec", json::object());
    if (!old_spec.is_object()) old_spec = json::object();
    observe(old_spec, now);
    std::string holder = string_at(old_spec, "holderIdentity");
    bool mine = holder == config.identity;
    auto held_for = std::chrono::seconds(int_at(old_spec, "leaseDurationSeconds", duration));
    if (!holder.empty() && !mine && observed_time + held_for > now) return false;

    json lease = old;
    json& spec = lease["spec"];
    if (!spec.is_object()) spec = json::object();
    spec["holderIdentity"] = config.identity;
    spec["leaseDurationSeconds"] = duration;
    spec["renewTime"] = now_text;
    int64_t transitions = int_at(old_spec, "leaseTransitions", 0);
    if (!mine) {
      spec["acquireTime"] = now_text;
      spec["leaseTransitions"] = transitions + 1;
    } else if (string_at(old_spec, "acquireTime").empty()) {
      spec["acquireTime"] = now_text;
    }
    // The update carries the resourceVersion read above: if another candidate wrote the
    // Lease since, this is a Conflict and the round is lost.
    auto updated = client.update(leases, lease);
    if (!updated.ok()) {
      log_failure(mine ? "renew" : "acquire", updated.status());
      return false;
    }
    observe((*updated.value()).value("spec", json::object()), now);
    return true;
  }

  // client-go's release: no holder, so that the next candidate need not wait for expiry.
  void release() {
    auto got = client.get(leases, config.lease_name);
    if (!got.ok()) return;
    json lease = *got.value();
    if (!lease.contains("spec") || !lease["spec"].is_object() ||
        string_at(lease["spec"], "holderIdentity") != config.identity) {
      return;
    }
    std::string now_text = format_rfc3339_micro(clock.now());
    json& spec = lease["spec"];
    spec["holderIdentity"] = "";
    spec["leaseDurationSeconds"] = 1;
    spec["acquireTime"] = now_text;
    spec["renewTime"] = now_text;
    auto updated = client.update(leases, lease);
    if (!updated.ok()) log_failure("release", updated.status());
  }

  void stop_leading() {
    if (callbacks.on_stopped_leading) callbacks.on_stopped_leading();
    leader.store(false);
  }

  void run() {
    SteadyClock::time_point last_renew;
    while (true) {
      bool held = try_acquire_or_renew();
      SteadyClock::time_point now = SteadyClock::now();
      if (leader.load()) {
        if (held) {
          last_renew = now;
        } else if (now - last_renew >= config.renew_deadline) {
          SKIFF_LOG(Warn)
              << config.identity << " lost the lease " << config.lease_namespace << "/"
              << config.lease_name << ": not renewed for "
              << std::chrono::duration_cast<std::chrono::milliseconds>(now - last_renew).count()
              << " ms";
          stop_leading();
        }
      } else if (held) {
        SKIFF_LOG(Info) << config.identity << " acquired the lease " << config.lease_namespace
                        << "/" << config.lease_name;
        last_renew = now;
        leader.store(true);
        if (callbacks.on_started_leading) callbacks.on_started_leading();
      }
      std::chrono::milliseconds delay = config.retry_period;
      if (!leader.load()) {
        // Up to 20% more, as client-go's JitterFactor, so that candidates drift apart.
        delay += std::chrono::milliseconds(
            random_below(static_cast<uint64_t>(config.retry_period.count()) / 5 + 1));
      }
      if (!pause(delay)) break;
    }
    if (leader.load()) {
      stop_leading();
      if (config.release_on_stop) release();
      SKIFF_LOG(Info) << config.identity << " stopped leading " << config.lease_namespace << "/"
                      << config.lease_name;
    }
  }
};

LeaderElector::LeaderElector(client::Client& client, LeaderElectionConfig config,
                             Callbacks callbacks)
    : impl_(std::make_unique<Impl>(client, std::move(config), std::move(callbacks))) {
  const LeaderElectionConfig& c = impl_->config;
  if (!(c.retry_period < c.renew_deadline && c.renew_deadline < c.lease_duration)) {
    // A leader could then keep running after its Lease expired, beside the next leader.
    SKIFF_LOG(Warn) << "leader election " << c.lease_namespace << "/" << c.lease_name
                    << ": want retry period < renew deadline < lease duration, have "
                    << c.retry_period.count() << " ms, " << c.renew_deadline.count() << " ms, "
                    << c.lease_duration.count() << " ms";
  }
}

LeaderElector::~LeaderElector() { stop(); }

void LeaderElector::start() {
  std::lock_guard<std::mutex> lifecycle(impl_->lifecycle_mu);
  if (impl_->thread.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = false;
  }
  impl_->thread = std::thread([this] { impl_->run(); });
}

void LeaderElector::stop() {
  std::lock_guard<std::mutex> lifecycle(impl_->lifecycle_mu);
  if (!impl_->thread.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

bool LeaderElector::is_leader() const { return impl_->leader.load(); }

const LeaderElectionConfig& LeaderElector::config() const { return impl_->config; }

}  // namespace skiff::controllers
