#include "simnodes/sim_nodes.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/log.h"
#include "common/quantity.h"
#include "simnodes/objects.h"
#include "simnodes/task_queue.h"

namespace skiff::simnodes {
namespace {

using client::ObjectPtr;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr char kLeaseNamespace[] = "kube-node-lease";
constexpr int kRegistrationAttempts = 6;
constexpr std::chrono::milliseconds kRegistrationBackoff{200};
// A node posts its status at most this often on its own initiative.
constexpr std::chrono::milliseconds kMinStatusPostGap{1000};
// Pod IPs are handed out from at most this many addresses of a node's range.
constexpr uint64_t kMaxRangeScan = 65536;

const client::ResourceRef& node_leases() {
  static const client::ResourceRef r = client::resources::kLeases.in(kLeaseNamespace);
  return r;
}

std::string meta(const json& obj, const char* field) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return "";
  auto f = m->find(field);
  return f != m->end() && f->is_string() ? f->get<std::string>() : "";
}

std::string spec_string(const json& obj, const char* field) {
  auto s = obj.find("spec");
  if (s == obj.end() || !s->is_object()) return "";
  auto f = s->find(field);
  return f != s->end() && f->is_string() ? f->get<std::string>() : "";
}

bool spec_bool(const json& obj, const char* field) {
  auto s = obj.find("spec");
  if (s == obj.end() || !s->is_object()) return false;
  auto f = s->find(field);
  return f != s->end() && f->is_boolean() && f->get<bool>();
}

bool node_ready(const json& node) {
  auto st = node.find("status");
  if (st == node.end() || !st->is_object()) return false;
  auto conds = st->find("conditions");
  if (conds == st->end() || !conds->is_array()) return false;
  for (const json& c : *conds) {
    if (c.is_object() && c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

// Errors a retry may cure.
bool transient(const Status& s) {
  switch (s.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kTimeout:
    case StatusCode::kTooManyRequests:
    case StatusCode::kInternal:
    case StatusCode::kConflict:
      return true;
    default:
      return false;
  }
}

// True for the 1st, 2nd, 4th, 8th, ... occurrence: logs repeated failures sparingly.
bool worth_logging(uint64_t count) { return (count & (count - 1)) == 0; }

std::string pod_key(const std::string& ns, const std::string& name) {
  return "p" + ns + "/" + name;
}

std::string node_key(uint32_t index) { return "n" + std::to_string(index); }

std::chrono::milliseconds until(TimePoint due, TimePoint now) {
  if (due <= now) return std::chrono::milliseconds(0);
  return std::chrono::ceil<std::chrono::milliseconds>(due - now);
}

// One simulated node: a few hundred bytes.
struct SimNode {
  // Constant after construction.
  std::string name;
  uint32_t index = 0;
  std::string internal_ip;

  std::atomic<bool> paused{false};
  std::atomic<bool> registered{false};
  // steady_clock nanoseconds of the next periodic status report, and of the last post.
  std::atomic<int64_t> next_status_report{0};
  std::atomic<int64_t> last_status_post{0};

  // Guarded by Impl::ip_mu: the range pod IPs come from, where the next search starts, and
  // the IPs held by live pods with a hash of their uids, sorted by IP.
  std::optional<Ipv4Block> range;
  uint64_t cursor = 0;
  std::vector<std::pair<uint32_t, size_t>> used_ips;
};

int64_t steady_ns(SteadyClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

struct SimNodes::Impl : std::enable_shared_from_this<Impl> {
  Impl(client::Client& c, SimNodesOptions o, client::InformerFactory* f)
      : client(c),
        options(std::move(o)),
        clock(options.clock != nullptr ? *options.clock : Clock::real()),
        factory(f) {}

  // --- Constant after construction ------------------------------------------------------
  client::Client& client;
  const SimNodesOptions options;
  const Clock& clock;
  client::InformerFactory* const factory;

  // --- Set up by start(), before any thread or handler uses them -------------------------
  std::deque<SimNode> nodes;  // stable addresses
  std::unordered_map<std::string, uint32_t> index_by_name;
  std::unique_ptr<client::Informer> own_pods;
  std::unique_ptr<client::Informer> own_nodes;
  client::Informer* pods = nullptr;
  client::Informer* node_cache = nullptr;
  SteadyClock::time_point cycle_start;

  TaskQueue queue;
  // Handlers act only while alive (they may outlive this object's use when the informers
  // are shared).
  std::atomic<bool> alive{false};
  std::atomic<bool> stopping{false};
  std::mutex sleep_mu;
  std::condition_variable sleep_cv;  // wakes sleeping lease threads on stop

  std::mutex lifecycle_mu;
  bool started = false;                   // guarded by lifecycle_mu
  bool stopped = false;                   // guarded by lifecycle_mu
  std::vector<std::thread> threads;       // guarded by lifecycle_mu
  Status start_result;                    // guarded by lifecycle_mu

  std::mutex ip_mu;  // guards SimNode::range, cursor, used_ips

  struct Counters {
    std::atomic<uint64_t> nodes_registered{0};
    std::atomic<uint64_t> lease_renewals{0};
    std::atomic<uint64_t> lease_failures{0};
    std::atomic<uint64_t> node_status_updates{0};
    std::atomic<uint64_t> pods_started{0};
    std::atomic<uint64_t> pods_completed{0};
    std::atomic<uint64_t> pods_finalized{0};
    std::atomic<uint64_t> write_failures{0};
  } counters;

  // --- Lookup ------------------------------------------------------------------------------

  SimNode* find(const std::string& name) {
    auto it = index_by_name.find(name);
    return it == index_by_name.end() ? nullptr : &nodes[it->second];
  }

  // --- Pod IPs (bookkeeping only; never blocks on the API) ---------------------------------

  static size_t owner_hash(const std::string& uid) { return std::hash<std::string>()(uid); }

  void mark_ip(SimNode& n, const std::string& ip_text, const std::string& uid) {
    auto ip = parse_ipv4(ip_text);
    if (!ip) return;
    std::lock_guard<std::mutex> lock(ip_mu);
    auto it = std::lower_bound(n.used_ips.begin(), n.used_ips.end(),
                               std::make_pair(*ip, size_t{0}));
    if (it != n.used_ips.end() && it->first == *ip) return;
    n.used_ips.insert(it, {*ip, owner_hash(uid)});
  }

  // Frees the IP if `uid`'s pod holds it (a terminated pod's IP may already be reused).
  void release_ip(SimNode& n, const std::string& ip_text, const std::string& uid) {
    auto ip = parse_ipv4(ip_text);
    if (!ip) return;
    std::lock_guard<std::mutex> lock(ip_mu);
    auto it = std::lower_bound(n.used_ips.begin(), n.used_ips.end(),
                               std::make_pair(*ip, size_t{0}));
    if (it != n.used_ips.end() && it->first == *ip && it->second == owner_hash(uid)) {
      n.used_ips.erase(it);
    }
  }

  // A free IP of the node's pod range (spec.podCIDR once assigned, else a fake range),
  // skipping the network address, the gateway (.1) and the broadcast address.
  std::optional<std::string> allocate_ip(SimNode& n, const std::string& uid) {
    ObjectPtr node = node_cache->get("", n.name);
    std::optional<Ipv4Block> assigned = node ? node_pod_range(*node) : std::nullopt;
    Ipv4Block range = assigned ? *assigned : fallback_pod_range(n.index);
    std::lock_guard<std::mutex> lock(ip_mu);
    if (!n.range || !(*n.range == range)) {
      n.range = range;
      n.cursor = 0;
    }
    uint64_t size = range.size();
    uint64_t first = size >= 4 ? 2 : 0;
    uint64_t last = size >= 4 ? size - 2 : size - 1;
    uint64_t span = std::min(last - first + 1, kMaxRangeScan);
    for (uint64_t k = 0; k < span; ++k) {
      uint64_t offset = first + (n.cursor + k) % span;
      auto ip = static_cast<uint32_t>(range.base + offset);
      auto it = std::lower_bound(n.used_ips.begin(), n.used_ips.end(),
                                 std::make_pair(ip, size_t{0}));
      if (it != n.used_ips.end() && it->first == ip) continue;
      n.used_ips.insert(it, {ip, owner_hash(uid)});
      n.cursor = (n.cursor + k + 1) % span;
      return format_ipv4(ip);
    }
    return std::nullopt;
  }

  // --- Informer handlers: bookkeeping and enqueueing only ---------------------------------

  void on_pod(const json& pod, bool added) {
    if (!alive.load()) return;
    SimNode* n = find(spec_string(pod, "nodeName"));
    if (n == nullptr) return;
    std::string uid = meta(pod, "uid");
    std::string ip = pod_ip(pod);
    bool done = terminal(pod);
    if (!ip.empty() && !spec_bool(pod, "hostNetwork")) {
      if (done) {
        release_ip(*n, ip, uid);
      } else {
        mark_ip(*n, ip, uid);
      }
    }
    if (n->paused.load()) return;
    std::string key = pod_key(meta(pod, "namespace"), meta(pod, "name"));
    if (being_deleted(pod)) {
      queue.add_after(key, options.deletion_delay);
      return;
    }
    if (done) return;
    if (reported_running(pod)) {
      // A running job's completion is already scheduled, unless this process has just
      // started (or resumed) and sees it for the first time.
      if (added && runs_to_completion(pod)) queue.add(key);
      return;
    }
    queue.add(key);
  }

  void on_pod_deleted(const json& pod) {
    if (!alive.load()) return;
    SimNode* n = find(spec_string(pod, "nodeName"));
    if (n == nullptr) return;
    std::string ip = pod_ip(pod);
    if (!ip.empty() && !spec_bool(pod, "hostNetwork")) release_ip(*n, ip, meta(pod, "uid"));
  }

  void on_node(const json& node) {
    if (!alive.load()) return;
    auto it = index_by_name.find(meta(node, "name"));
    if (it == index_by_name.end()) return;
    SimNode& n = nodes[it->second];
    if (n.paused.load() || !n.registered.load()) return;
    // A kubelet posts its status again when the server's differs from what it reports
    // (the node lifecycle controller marked it Unknown).
    if (!node_ready(node)) queue.add(node_key(n.index));
  }

  // --- API writes ----------------------------------------------------------------------------

  Status renew_lease(SimNode& n) {
    TimePoint now = clock.now();
    auto r = client.patch(node_leases(), n.name, client::PatchType::kMerge,
                          lease_renewal_patch(n.name, options.lease_duration_seconds, now));
    if (r.ok()) return Status::Ok();
    if (!r.status().is_not_found()) return r.status();
    // The lease is gone (deleted by hand, or with its node): make it again.
    std::string uid;
    if (ObjectPtr node = node_cache->get("", n.name)) uid = meta(*node, "uid");
    auto c = client.create(node_leases(),
                           lease_object(n.name, uid, options.lease_duration_seconds, now));
    return c.ok() || c.status().code() == StatusCode::kAlreadyExists ? Status::Ok() : c.status();
  }

  Status post_node_status(SimNode& n) {
    ObjectPtr current = node_cache->get("", n.name);
    json patch = {{"status", {{"conditions", node_conditions(current.get(), clock.now())}}}};
    auto r = client.patch(client::resources::kNodes, n.name, client::PatchType::kStrategicMerge,
                          patch.dump(), "status");
    SteadyClock::time_point posted = SteadyClock::now();
    n.last_status_post.store(steady_ns(posted));
    n.next_status_report.store(steady_ns(posted + options.node_status_report_interval));
    if (r.ok()) {
      counters.node_status_updates.fetch_add(1);
      return Status::Ok();
    }
    if (r.status().is_not_found()) {
      // Deleted by someone: a kubelet does not register again until it restarts.
      SKIFF_LOG(Warn) << "simulated node " << n.name << " was deleted; it stops reporting";
      n.registered.store(false);
      return Status::Ok();
    }
    return r.status();
  }

  void renew(SimNode& n) {
    if (n.paused.load() || !n.registered.load()) return;
    Status s = renew_lease(n);
    if (s.ok()) {
      counters.lease_renewals.fetch_add(1);
    } else {
      uint64_t failures = counters.lease_failures.fetch_add(1) + 1;
      if (worth_logging(failures)) {
        SKIFF_LOG(Warn) << "simulated node " << n.name << ": lease renewal failed ("
                        << failures << " so far): " << s.to_string();
      }
    }
    if (steady_ns(SteadyClock::now()) >= n.next_status_report.load()) {
      Status st = post_node_status(n);
      if (!st.ok()) counters.write_failures.fetch_add(1);
    }
  }

  Status try_register(SimNode& n) {
    TimePoint now = clock.now();
    auto created =
        client.create(client::resources::kNodes, node_object(options, n.name, n.internal_ip, now));
    std::string uid;
    if (created.ok()) {
      uid = meta(**created, "uid");
    } else if (created.status().code() == StatusCode::kAlreadyExists) {
      // Registered by an earlier run: report this run's status.
      auto current = client.get(client::resources::kNodes, n.name);
      if (!current.ok()) return current.status();
      uid = meta(**current, "uid");
      json patch = {{"status", node_status(options, n.name, n.internal_ip, current->get(), now)}};
      auto r = client.patch(client::resources::kNodes, n.name,
                            client::PatchType::kStrategicMerge, patch.dump(), "status");
      if (!r.ok()) return r.status();
    } else {
      return created.status();
    }
    auto lease = client.create(node_leases(),
                               lease_object(n.name, uid, options.lease_duration_seconds, now));
    if (!lease.ok()) {
      if (lease.status().code() != StatusCode::kAlreadyExists) return lease.status();
      auto r = client.patch(node_leases(), n.name, client::PatchType::kMerge,
                            lease_renewal_patch(n.name, options.lease_duration_seconds, now));
      if (!r.ok()) return r.status();
    }
    n.next_status_report.store(steady_ns(SteadyClock::now() + options.node_status_report_interval));
    n.registered.store(true);
    counters.nodes_registered.fetch_add(1);
    return Status::Ok();
  }

  Status register_node(SimNode& n) {
    Status s;
    for (int attempt = 0; attempt < kRegistrationAttempts; ++attempt) {
      if (stopping.load()) return Status::Unavailable("simulated nodes stopped");
      s = try_register(n);
      if (s.ok() || !transient(s)) break;
      if (!sleep_for(kRegistrationBackoff * (1 << attempt))) break;
    }
    if (!s.ok()) {
      SKIFF_LOG(Warn) << "simulated node " << n.name << " could not register: " << s.to_string();
    }
    return s;
  }

  // --- Pods ------------------------------------------------------------------------------

  Status finalize_pod(const json& pod) {
    client::DeleteOptions o;
    o.grace_period_seconds = 0;
    o.precondition_uid = meta(pod, "uid");
    auto r = client.remove(client::resources::kPods.in(meta(pod, "namespace")), meta(pod, "name"),
                           o);
    if (r.ok()) {
      counters.pods_finalized.fetch_add(1);
      return Status::Ok();
    }
    return r.status().is_not_found() ? Status::Ok() : r.status();
  }

  Status start_pod(SimNode& n, const json& pod, const std::string& key) {
    std::string uid = meta(pod, "uid");
    std::string ip = pod_ip(pod);
    bool allocated = false;
    if (spec_bool(pod, "hostNetwork")) {
      ip = n.internal_ip;
    } else if (ip.empty()) {
      auto a = allocate_ip(n, uid);
      if (!a) return Status::Unavailable("node " + n.name + " has no free pod IP");
      ip = *a;
      allocated = true;
    }
    json patch = {{"status", running_pod_status(pod, ip, n.internal_ip, clock.now())}};
    auto r = client.patch(client::resources::kPods.in(meta(pod, "namespace")), meta(pod, "name"),
                          client::PatchType::kStrategicMerge, patch.dump(), "status");
    if (!r.ok()) {
      if (allocated) release_ip(n, ip, uid);
      return r.status().is_not_found() ? Status::Ok() : r.status();
    }
    counters.pods_started.fetch_add(1);
    if (runs_to_completion(pod)) queue.add_after(key, run_time(pod, options.job_run_time));
    return Status::Ok();
  }

  Status complete_pod_when_due(SimNode& n, const json& pod, const std::string& key) {
    TimePoint now = clock.now();
    TimePoint started = now;
    if (auto st = pod.find("status"); st != pod.end() && st->is_object()) {
      auto t = parse_rfc3339(st->value("startTime", ""));
      if (t.ok()) started = *t;
    }
    std::chrono::milliseconds left = until(started + run_time(pod, options.job_run_time), now);
    if (left.count() > 0) {
      queue.add_after(key, left);
      return Status::Ok();
    }
    // An OnFailure pod's failing container would be restarted in place; only a Never pod
    // fails.
    int code = spec_string(pod, "restartPolicy") == "Never" ? exit_code(pod) : 0;
    json patch = {{"status", completed_pod_status(pod, code, now)}};
    auto r = client.patch(client::resources::kPods.in(meta(pod, "namespace")), meta(pod, "name"),
                          client::PatchType::kStrategicMerge, patch.dump(), "status");
    if (!r.ok()) return r.status().is_not_found() ? Status::Ok() : r.status();
    counters.pods_completed.fetch_add(1);
    // The sandbox is gone: its IP may serve another pod.
    if (!spec_bool(pod, "hostNetwork")) release_ip(n, pod_ip(pod), meta(pod, "uid"));
    return Status::Ok();
  }

  Status sync_pod(const std::string& key) {
    size_t slash = key.find('/', 1);
    if (slash == std::string::npos) return Status::Ok();
    ObjectPtr pod = pods->get(key.substr(1, slash - 1), key.substr(slash + 1));
    if (!pod) return Status::Ok();
    SimNode* n = find(spec_string(*pod, "nodeName"));
    if (n == nullptr || n->paused.load()) return Status::Ok();
    if (being_deleted(*pod)) return finalize_pod(*pod);
    if (terminal(*pod)) return Status::Ok();
    if (reported_running(*pod)) {
      return runs_to_completion(*pod) ? complete_pod_when_due(*n, *pod, key) : Status::Ok();
    }
    return start_pod(*n, *pod, key);
  }

  Status sync_node(const std::string& key) {
    uint32_t index = static_cast<uint32_t>(std::strtoul(key.c_str() + 1, nullptr, 10));
    if (index >= nodes.size()) return Status::Ok();
    SimNode& n = nodes[index];
    if (n.paused.load() || !n.registered.load()) return Status::Ok();
    // At most one forced post per node per kMinStatusPostGap, whatever the server shows.
    auto since = std::chrono::nanoseconds(steady_ns(SteadyClock::now()) - n.last_status_post.load());
    if (since < kMinStatusPostGap) {
      queue.add_after(key, std::chrono::ceil<std::chrono::milliseconds>(kMinStatusPostGap - since));
      return Status::Ok();
    }
    Status lease = renew_lease(n);
    if (lease.ok()) counters.lease_renewals.fetch_add(1);
    Status status = post_node_status(n);
    return lease.ok() ? status : lease;
  }

  // --- Threads ---------------------------------------------------------------------------

  // Sleeps until `t` or stop; false on stop.
  bool sleep_until(SteadyClock::time_point t) {
    std::unique_lock<std::mutex> lock(sleep_mu);
    return !sleep_cv.wait_until(lock, t, [&] { return stopping.load(); });
  }
  bool sleep_for(std::chrono::milliseconds d) { return sleep_until(SteadyClock::now() + d); }

  void run_worker() {
    std::string key;
    while (queue.get(&key)) {
      Status s = key[0] == 'p' ? sync_pod(key) : sync_node(key);
      if (s.ok()) {
        queue.forget(key);
      } else {
        uint64_t failures = counters.write_failures.fetch_add(1) + 1;
        if (worth_logging(failures)) {
          SKIFF_LOG(Debug) << "simulated kubelet: " << key.substr(1) << ": " << s.to_string()
                           << " (" << failures << " failed writes so far)";
        }
        queue.add_with_backoff(key);
      }
      queue.done(key);
    }
  }

  // Renews the leases of the nodes whose index is `thread` modulo `threads`. Node i renews
  // at offset interval * i / count of each interval, so that renewals are spread evenly.
  void run_lease_thread(size_t thread, size_t threads) {
    const auto interval = options.lease_renew_interval;
    const size_t count = nodes.size();
    for (uint64_t cycle = 1; !stopping.load(); ++cycle) {
      SteadyClock::time_point base = cycle_start + interval * cycle;
      for (size_t i = thread; i < count; i += threads) {
        auto offset = std::chrono::duration_cast<SteadyClock::duration>(interval) *
                      static_cast<int64_t>(i) / static_cast<int64_t>(count);
        if (!sleep_until(base + offset)) return;
        renew(nodes[i]);
      }
    }
  }

  Status validate() const {
    if (options.count < 0) return Status::BadRequest("count must not be negative");
    if (options.first_index < 0) return Status::BadRequest("first_index must not be negative");
    for (const std::string* q :
         {&options.cpu, &options.memory, &options.pods, &options.ephemeral_storage}) {
      auto parsed = Quantity::parse(*q);
      if (!parsed.ok()) return Status::BadRequest("quantity \"" + *q + "\": " +
                                                  parsed.status().message());
    }
    auto ip = parse_ipv4(options.first_internal_ip);
    if (!ip) return Status::BadRequest("first_internal_ip: not an IPv4 address");
    if (uint64_t{*ip} + static_cast<uint64_t>(options.count) > 0xffffffffull) {
      return Status::BadRequest("first_internal_ip: too few addresses follow it");
    }
    if (options.lease_renew_interval.count() <= 0 || options.lease_duration_seconds <= 0) {
      return Status::BadRequest("lease renewal interval and duration must be positive");
    }
    for (const NodeTaint& t : options.taints) {
      if (t.effect != "NoSchedule" && t.effect != "PreferNoSchedule" && t.effect != "NoExecute") {
        return Status::BadRequest("taint " + t.key + ": unknown effect \"" + t.effect + "\"");
      }
    }
    return Status::Ok();
  }

  Status start() {
    {
      std::lock_guard<std::mutex> lock(lifecycle_mu);
      if (started) return start_result;
      started = true;
      if (stopped) return start_result = Status::Unavailable("simulated nodes stopped");
      if (Status s = validate(); !s.ok()) return start_result = s;

      uint32_t first_ip = *parse_ipv4(options.first_internal_ip);
      for (int i = 0; i < options.count; ++i) {
        SimNode& n = nodes.emplace_back();
        n.index = static_cast<uint32_t>(i);
        n.name = options.name_prefix + std::to_string(options.first_index + i);
        n.internal_ip = format_ipv4(first_ip + static_cast<uint32_t>(i));
        index_by_name.emplace(n.name, n.index);
      }

      if (factory != nullptr) {
        pods = &factory->informer(client::resources::kPods);
        node_cache = &factory->informer(client::resources::kNodes);
      } else {
        own_pods = std::make_unique<client::Informer>(client, client::resources::kPods);
        own_nodes = std::make_unique<client::Informer>(client, client::resources::kNodes);
        pods = own_pods.get();
        node_cache = own_nodes.get();
      }
      pods->add_index(kPodNodeNameIndex, [](const json& pod) {
        std::string node = spec_string(pod, "nodeName");
        return node.empty() ? std::vector<std::string>{} : std::vector<std::string>{node};
      });
      // The handlers hold the state they touch, so that a shared informer may outlive this
      // object; they do nothing once it stops.
      std::shared_ptr<Impl> self = shared_from_this();
      pods->add_handlers(client::InformerHandlers{
          [self](const ObjectPtr& p) { self->on_pod(*p, true); },
          [self](const ObjectPtr&, const ObjectPtr& p) { self->on_pod(*p, false); },
          [self](const ObjectPtr& p) { self->on_pod_deleted(*p); }});
      node_cache->add_handlers(client::InformerHandlers{
          [self](const ObjectPtr& n) { self->on_node(*n); },
          [self](const ObjectPtr&, const ObjectPtr& n) { self->on_node(*n); }, nullptr});
      alive.store(true);
      pods->start();
      node_cache->start();
      for (int i = 0; i < std::max(1, options.workers); ++i) {
        threads.emplace_back([this] { run_worker(); });
      }
    }

    // Register in parallel; the first lasting failure is reported.
    std::atomic<size_t> next{0};
    std::mutex error_mu;
    Status first_error;
    {
      std::vector<std::thread> registrars;
      size_t n_registrars = std::min<size_t>(std::max(1, options.workers), nodes.size());
      for (size_t t = 0; t < n_registrars; ++t) {
        registrars.emplace_back([&] {
          for (size_t i = next.fetch_add(1); i < nodes.size(); i = next.fetch_add(1)) {
            Status s = register_node(nodes[i]);
            if (!s.ok()) {
              std::lock_guard<std::mutex> lock(error_mu);
              if (first_error.ok()) first_error = s;
            }
          }
        });
      }
      for (std::thread& t : registrars) t.join();
    }

    std::lock_guard<std::mutex> lock(lifecycle_mu);
    if (stopped) return start_result = Status::Unavailable("simulated nodes stopped");
    cycle_start = SteadyClock::now();
    size_t lease_threads = options.lease_workers > 0
                               ? static_cast<size_t>(options.lease_workers)
                               : std::clamp<size_t>(nodes.size() / 500, 1, 8);
    lease_threads = std::min(lease_threads, std::max<size_t>(1, nodes.size()));
    for (size_t t = 0; t < lease_threads && !nodes.empty(); ++t) {
      threads.emplace_back([this, t, lease_threads] { run_lease_thread(t, lease_threads); });
    }
    SKIFF_LOG(Info) << "simulated nodes: " << counters.nodes_registered.load() << " of "
                    << nodes.size() << " registered (" << options.name_prefix << "*), "
                    << lease_threads << " lease threads";
    return start_result = first_error;
  }

  void stop() {
    std::vector<std::thread> to_join;
    {
      std::lock_guard<std::mutex> lock(lifecycle_mu);
      if (stopped) return;
      stopped = true;
      alive.store(false);
      {
        std::lock_guard<std::mutex> sleep_lock(sleep_mu);
        stopping.store(true);
      }
      sleep_cv.notify_all();
      queue.shutdown();
      to_join.swap(threads);
    }
    for (std::thread& t : to_join) t.join();
    // Our own informers hold handlers that hold this object: dropping them breaks the cycle.
    if (own_pods) own_pods->stop();
    if (own_nodes) own_nodes->stop();
    own_pods.reset();
    own_nodes.reset();
  }
};

SimNodes::SimNodes(client::Client& client, SimNodesOptions options,
                   client::InformerFactory* informers)
    : impl_(std::make_shared<Impl>(client, std::move(options), informers)) {}

SimNodes::~SimNodes() { stop(); }

Status SimNodes::start() { return impl_->start(); }

void SimNodes::stop() { impl_->stop(); }

Status SimNodes::delete_nodes() {
  stop();
  Impl& m = *impl_;
  std::atomic<size_t> next{0};
  std::mutex error_mu;
  Status first_error;
  std::vector<std::thread> threads;
  size_t n_threads = std::min<size_t>(std::max(1, m.options.workers), m.nodes.size());
  for (size_t t = 0; t < n_threads; ++t) {
    threads.emplace_back([&] {
      for (size_t i = next.fetch_add(1); i < m.nodes.size(); i = next.fetch_add(1)) {
        const std::string& name = m.nodes[i].name;
        auto node = m.client.remove(client::resources::kNodes, name);
        auto lease = m.client.remove(node_leases(), name);
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.ok() && !node.ok() && !node.status().is_not_found()) {
          first_error = node.status();
        }
        if (first_error.ok() && !lease.ok() && !lease.status().is_not_found()) {
          first_error = lease.status();
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return first_error;
}

std::vector<std::string> SimNodes::node_names() const {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
  std::vector<std::string> out;
  out.reserve(impl_->nodes.size());
  for (const SimNode& n : impl_->nodes) out.push_back(n.name);
  return out;
}

Status SimNodes::pause_node(const std::string& name) {
  SimNode* n = impl_->find(name);
  if (n == nullptr) return Status::NotFound("no simulated node \"" + name + "\"");
  n->paused.store(true);
  return Status::Ok();
}

Status SimNodes::resume_node(const std::string& name) {
  Impl& m = *impl_;
  SimNode* n = m.find(name);
  if (n == nullptr) return Status::NotFound("no simulated node \"" + name + "\"");
  if (!n->paused.exchange(false)) return Status::Ok();
  // Like a kubelet coming back: renew and post Ready now, then look at every pod again.
  m.queue.add(node_key(n->index));
  if (m.pods != nullptr) {
    for (const ObjectPtr& pod : m.pods->by_index(kPodNodeNameIndex, name)) {
      m.queue.add(pod_key(meta(*pod, "namespace"), meta(*pod, "name")));
    }
  }
  return Status::Ok();
}

bool SimNodes::node_paused(const std::string& name) const {
  SimNode* n = impl_->find(name);
  return n != nullptr && n->paused.load();
}

SimNodes::Stats SimNodes::stats() const {
  const auto& c = impl_->counters;
  Stats s;
  s.nodes_registered = c.nodes_registered.load();
  s.lease_renewals = c.lease_renewals.load();
  s.lease_failures = c.lease_failures.load();
  s.node_status_updates = c.node_status_updates.load();
  s.pods_started = c.pods_started.load();
  s.pods_completed = c.pods_completed.load();
  s.pods_finalized = c.pods_finalized.load();
  s.write_failures = c.write_failures.load();
  return s;
}

}  // namespace skiff::simnodes
