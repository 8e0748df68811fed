#include "scheduler/scheduler.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <unordered_map>
#include <variant>

#include "common/log.h"
#include "common/time.h"
#include "scheduler/convert.h"
#include "scheduler/queue.h"

namespace skiff::scheduler {

namespace {

using nlohmann::json;

// ---- messages from informer handlers and binder threads to the scheduling thread -----------

struct NodeUpsert {
  std::shared_ptr<const Node> node;
};
struct NodeDelete {
  std::string name;
};
struct PodUpsert {
  std::shared_ptr<const PodInfo> pod;
};
struct PodDelete {
  std::string uid;
};
struct NamespaceUpsert {
  std::string name;
  LabelSet labels;
};
struct NamespaceDelete {
  std::string name;
};
struct BindDone {
  std::string uid;
  Status status;
};
using Message = std::variant<NodeUpsert, NodeDelete, PodUpsert, PodDelete, NamespaceUpsert,
                             NamespaceDelete, BindDone>;

// Shared with the informer handlers, which outlive the Scheduler (an Informer has no way to
// remove handlers): once closed, posts are dropped. Thread-safe.
struct Inbox {
  explicit Inbox(std::shared_ptr<Interner> strings) : interner(std::move(strings)) {}

  void post(Message m) {
    {
      std::lock_guard lock(mu);
      if (closed) return;
      messages.push_back(std::move(m));
    }
    cv.notify_one();
  }

  // Whether posts are still taken (so that handlers skip parsing once the scheduler stopped).
  bool open() const { return !closing.load(std::memory_order_relaxed); }

  const std::shared_ptr<Interner> interner;
  std::atomic<bool> closing{false};
  std::mutex mu;
  std::condition_variable cv;
  bool closed = false;            // guarded by mu
  bool stop = false;              // guarded by mu
  std::vector<Message> messages;  // guarded by mu
};

// Threads that run blocking API calls (bindings, status patches, events). Thread-safe.
class WorkerPool {
 public:
  ~WorkerPool() { stop(); }

  void start(int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
  }
  void submit(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }
  // Drops jobs not yet started and waits for the running ones.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      jobs_.clear();
    }
    cv_.notify_all();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  void run() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  std::vector<std::thread> threads_;
};

const json& field(const json& obj, const char* name) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(name);
  return it == obj.end() ? kNull : *it;
}

std::string string_field(const json& obj, const char* name) {
  const json& v = field(obj, name);
  return v.is_string() ? v.get<std::string>() : std::string();
}

std::string ready_status(const json& node) {
  const json& conds = field(field(node, "status"), "conditions");
  if (!conds.is_array()) return "";
  for (const json& c : conds) {
    if (string_field(c, "type") == "Ready") return string_field(c, "status");
  }
  return "";
}

// Node heartbeats rewrite conditions every few seconds; only labels, spec, allocatable and
// readiness matter to scheduling.
bool node_update_matters(const json& old_obj, const json& new_obj) {
  const json& om = field(old_obj, "metadata");
  const json& nm = field(new_obj, "metadata");
  return field(om, "labels") != field(nm, "labels") ||
         field(old_obj, "spec") != field(new_obj, "spec") ||
         field(field(old_obj, "status"), "allocatable") !=
             field(field(new_obj, "status"), "allocatable") ||
         ready_status(old_obj) != ready_status(new_obj);
}

bool terminal_phase(const json& pod) {
  std::string phase = string_field(field(pod, "status"), "phase");
  return phase == "Succeeded" || phase == "Failed";
}

// Status-only updates (including the scheduler's own condition writes) change nothing for
// scheduling.
bool pod_update_matters(const json& old_obj, const json& new_obj) {
  const json& om = field(old_obj, "metadata");
  const json& nm = field(new_obj, "metadata");
  if (field(om, "uid") != field(nm, "uid") || field(om, "labels") != field(nm, "labels") ||
      field(om, "deletionTimestamp").is_null() != field(nm, "deletionTimestamp").is_null() ||
      terminal_phase(old_obj) != terminal_phase(new_obj)) {
    return true;
  }
  const json& os = field(old_obj, "spec");
  const json& ns = field(new_obj, "spec");
  if (field(os, "nodeName") != field(ns, "nodeName")) return true;
  // A pending pod's spec decides where it may go; a bound pod's spec no longer matters
  // (beyond what is already accounted).
  return string_field(ns, "nodeName").empty() && os != ns;
}

json pod_reference(const PodInfo& pod) {
  return json{{"apiVersion", "v1"}, {"kind", "Pod"},  {"namespace", pod.ns},
              {"name", pod.name},   {"uid", pod.uid}, {"resourceVersion", pod.resource_version}};
}

}  // namespace

struct Scheduler::Impl {
  Impl(client::Client& c, client::InformerFactory& f, SchedulerOptions o)
      : client(c),
        informers(f),
        options(std::move(o)),
        profiles(options.profiles.empty() ? default_profiles(options.default_strategy)
                                          : options.profiles),
        inbox(std::make_shared<Inbox>(cluster.shared_interner())),
        queue(SchedulingQueue::Options{options.initial_backoff, options.max_backoff,
                                       options.max_unschedulable}),
        state(options.seed != 0 ? options.seed : std::random_device()()) {}

  void start();
  void stop();
  void add_replay_marker(client::Informer& inf);
  // False if stopped first.
  bool wait_for_informers();
  void run();
  void apply(Message& m);
  void on_pod(const std::shared_ptr<const PodInfo>& pod);
  void on_pod_delete(const std::string& uid);
  void on_bind_done(const BindDone& b);
  void schedule(SchedulingQueue::Item item);
  void fail(SchedulingQueue::Item item, const Diagnosis& d);
  void bind(std::shared_ptr<const PodInfo> pod, const std::string& node);
  void emit(const PodInfo& pod, const char* type, const char* reason, std::string message);
  const Profile* profile_for(const std::string& scheduler_name) const;
  void publish_stats();

  client::Client& client;
  client::InformerFactory& informers;
  const SchedulerOptions options;
  const std::vector<Profile> profiles;

  // Owned by the scheduling thread.
  Cluster cluster;
  std::shared_ptr<Inbox> inbox;
  SchedulingQueue queue;
  ScheduleState state;
  struct InFlight {
    SchedulingQueue::Item item;
    bool deleted = false;
  };
  std::unordered_map<std::string, InFlight> in_flight;  // bindings sent, by uid

  WorkerPool workers;
  std::thread thread;
  // Per informer (nodes, pods, namespaces): the scheduler's handlers have had the cache.
  std::vector<std::shared_ptr<std::atomic<bool>>> replayed;

  std::mutex lifecycle_mu;
  bool started = false;  // guarded by lifecycle_mu
  bool stopped = false;  // guarded by lifecycle_mu

  struct AtomicStats {
    std::atomic<uint64_t> attempts{0}, scheduled{0}, unschedulable{0}, errors{0}, bind_failures{0};
    std::atomic<size_t> active{0}, backoff{0}, unschedulable_pods{0}, binds_in_flight{0}, nodes{0},
        placed_pods{0};
    std::atomic<bool> synced{false};
  } stats;
};

const Profile* Scheduler::Impl::profile_for(const std::string& scheduler_name) const {
  for (const Profile& p : profiles) {
    if (p.scheduler_name == scheduler_name) return &p;
  }
  return nullptr;
}

// Handlers added to an informer that is already running receive the cached objects later, on
// the informer's thread. A second handler set, added right after the scheduler's, is called
// only once the scheduler's has had them: its first call tells the scheduling thread that its
// view of that informer is complete.
void Scheduler::Impl::add_replay_marker(client::Informer& inf) {
  auto seen = std::make_shared<std::atomic<bool>>(false);
  replayed.push_back(seen);
  client::InformerHandlers marker;
  std::shared_ptr<Inbox> box = inbox;
  marker.on_add = [seen, box](const client::ObjectPtr&) {
    if (!seen->exchange(true)) {
      std::lock_guard lock(box->mu);
      box->cv.notify_all();
    }
  };
  inf.add_handlers(std::move(marker));
}

bool Scheduler::Impl::wait_for_informers() {
  client::Informer* infs[] = {&informers.informer(client::resources::kNodes),
                              &informers.informer(client::resources::kPods),
                              &informers.informer(client::resources::kNamespaces)};
  auto stopping = [this] {
    std::lock_guard lock(inbox->mu);
    return inbox->stop;
  };
  for (client::Informer* inf : infs) {
    while (!inf->wait_for_sync(std::chrono::milliseconds(100))) {
      if (stopping()) return false;
    }
  }
  for (size_t i = 0; i < 3; ++i) {
    // An empty cache has nothing to replay (and calls no marker).
    while (!replayed[i]->load() && !infs[i]->list().empty()) {
      std::unique_lock lock(inbox->mu);
      if (inbox->stop) return false;
      inbox->cv.wait_for(lock, std::chrono::milliseconds(100));
    }
  }
  return true;
}

void Scheduler::Impl::start() {
  std::lock_guard lock(lifecycle_mu);
  if (started || stopped) return;
  started = true;

  std::shared_ptr<Inbox> box = inbox;
  client::Informer& nodes = informers.informer(client::resources::kNodes);
  client::Informer& pods = informers.informer(client::resources::kPods);
  client::Informer& namespaces = informers.informer(client::resources::kNamespaces);

  client::InformerHandlers nh;
  nh.on_add = [box](const client::ObjectPtr& o) {
    if (box->open()) box->post(NodeUpsert{parse_node(*o, *box->interner)});
  };
  nh.on_update = [box](const client::ObjectPtr& old_obj, const client::ObjectPtr& o) {
    if (box->open() && node_update_matters(*old_obj, *o)) {
      box->post(NodeUpsert{parse_node(*o, *box->interner)});
    }
  };
  nh.on_delete = [box](const client::ObjectPtr& o) {
    box->post(NodeDelete{string_field(field(*o, "metadata"), "name")});
  };
  nodes.add_handlers(std::move(nh));
  add_replay_marker(nodes);

  client::InformerHandlers ph;
  ph.on_add = [box](const client::ObjectPtr& o) {
    if (box->open()) box->post(PodUpsert{parse_pod(*o, *box->interner)});
  };
  ph.on_update = [box](const client::ObjectPtr& old_obj, const client::ObjectPtr& o) {
    if (box->open() && pod_update_matters(*old_obj, *o)) {
      box->post(PodUpsert{parse_pod(*o, *box->interner)});
    }
  };
  ph.on_delete = [box](const client::ObjectPtr& o) {
    box->post(PodDelete{string_field(field(*o, "metadata"), "uid")});
  };
  pods.add_handlers(std::move(ph));
  add_replay_marker(pods);

  client::InformerHandlers sh;
  auto ns_upsert = [box](const client::ObjectPtr& o) {
    const json& meta = field(*o, "metadata");
    box->post(NamespaceUpsert{string_field(meta, "name"),
                              parse_labels(field(meta, "labels"), *box->interner)});
  };
  sh.on_add = ns_upsert;
  sh.on_update = [ns_upsert](const client::ObjectPtr& old_obj, const client::ObjectPtr& o) {
    if (field(field(*old_obj, "metadata"), "labels") != field(field(*o, "metadata"), "labels")) {
      ns_upsert(o);
    }
  };
  sh.on_delete = [box](const client::ObjectPtr& o) {
    box->post(NamespaceDelete{string_field(field(*o, "metadata"), "name")});
  };
  namespaces.add_handlers(std::move(sh));
  add_replay_marker(namespaces);

  workers.start(std::max(1, options.bind_workers));
  thread = std::thread([this] { run(); });
  nodes.start();
  pods.start();
  namespaces.start();
}

void Scheduler::Impl::stop() {
  {
    std::lock_guard lock(lifecycle_mu);
    if (stopped) return;
    stopped = true;
  }
  inbox->closing = true;
  {
    std::lock_guard lock(inbox->mu);
    inbox->stop = true;
    inbox->closed = true;
    inbox->messages.clear();
  }
  inbox->cv.notify_all();
  if (thread.joinable()) thread.join();
  workers.stop();
}

void Scheduler::Impl::run() {
  // Decisions need the whole cluster: wait until the informers have listed it.
  if (!wait_for_informers()) return;
  stats.synced = true;
  SKIFF_LOG(Info) << "scheduler synced; profiles:" << [this] {
    std::string s;
    for (const Profile& p : profiles) {
      s += std::string(" ") + p.scheduler_name + "=" + scoring_strategy_name(p.strategy);
    }
    return s;
  }();

  std::vector<Message> batch;
  while (true) {
    {
      std::lock_guard lock(inbox->mu);
      if (inbox->stop) return;
      batch.swap(inbox->messages);
    }
    for (Message& m : batch) apply(m);
    batch.clear();

    if (auto item = queue.pop(SchedulingQueue::Clock::now())) {
      schedule(std::move(*item));
      publish_stats();
      continue;
    }
    publish_stats();

    std::unique_lock lock(inbox->mu);
    auto ready = [this] { return inbox->stop || !inbox->messages.empty(); };
    if (auto due = queue.next_ready_time()) {
      inbox->cv.wait_until(lock, *due, ready);
    } else {
      inbox->cv.wait(lock, ready);
    }
  }
}

void Scheduler::Impl::publish_stats() {
  stats.active.store(queue.active_size(), std::memory_order_relaxed);
  stats.backoff.store(queue.backoff_size(), std::memory_order_relaxed);
  stats.unschedulable_pods.store(queue.unschedulable_size(), std::memory_order_relaxed);
  stats.binds_in_flight.store(in_flight.size(), std::memory_order_relaxed);
  stats.nodes.store(cluster.num_nodes(), std::memory_order_relaxed);
  stats.placed_pods.store(cluster.num_pods(), std::memory_order_relaxed);
}

void Scheduler::Impl::apply(Message& m) {
  auto now = SchedulingQueue::Clock::now();
  std::visit(
      [&](auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, NodeUpsert>) {
          queue.move_on_event(cluster.upsert_node(std::move(msg.node)), now);
        } else if constexpr (std::is_same_v<T, NodeDelete>) {
          cluster.remove_node(msg.name);
        } else if constexpr (std::is_same_v<T, PodUpsert>) {
          on_pod(msg.pod);
        } else if constexpr (std::is_same_v<T, PodDelete>) {
          on_pod_delete(msg.uid);
        } else if constexpr (std::is_same_v<T, NamespaceUpsert>) {
          cluster.set_namespace_labels(msg.name, std::move(msg.labels));
          queue.move_on_event(plugin::kInterPodAffinity, now);
        } else if constexpr (std::is_same_v<T, NamespaceDelete>) {
          cluster.remove_namespace(msg.name);
        } else if constexpr (std::is_same_v<T, BindDone>) {
          on_bind_done(msg);
        }
      },
      m);
}

void Scheduler::Impl::on_pod(const std::shared_ptr<const PodInfo>& pod) {
  auto now = SchedulingQueue::Clock::now();
  if (!pod->node_name.empty()) {
    // Bound (by us or anyone): account it on its node; it is no longer pending.
    queue.remove(pod->uid);
    uint32_t changed = pod->terminal ? cluster.remove_pod(pod->uid) : cluster.add_pod(pod);
    queue.move_on_event(changed, now);
    return;
  }
  auto flight = in_flight.find(pod->uid);
  if (flight != in_flight.end()) {
    // Its binding is out; keep the newest version in case it must be retried.
    flight->second.item.pod = pod;
    return;
  }
  // Assumed and bound, but the informer has not caught up with the binding yet: this is an
  // older version of the pod.
  if (cluster.is_assumed(pod->uid)) return;
  // Gated pods wait for their gates to be removed (a spec update, which enqueues them); the
  // API server reports them as SchedulingGated.
  if (pod->terminating || pod->terminal || pod->scheduling_gated ||
      profile_for(pod->scheduler_name) == nullptr) {
    queue.remove(pod->uid);
    return;
  }
  queue.add_or_update(pod, true, now);
}

void Scheduler::Impl::on_pod_delete(const std::string& uid) {
  queue.remove(uid);
  queue.move_on_event(cluster.remove_pod(uid), SchedulingQueue::Clock::now());
  auto flight = in_flight.find(uid);
  if (flight != in_flight.end()) flight->second.deleted = true;
}

void Scheduler::Impl::on_bind_done(const BindDone& b) {
  auto it = in_flight.find(b.uid);
  if (it == in_flight.end()) return;
  InFlight f = std::move(it->second);
  in_flight.erase(it);
  if (b.status.ok()) {
    stats.scheduled.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  stats.bind_failures.fetch_add(1, std::memory_order_relaxed);
  auto now = SchedulingQueue::Clock::now();
  queue.move_on_event(cluster.forget(b.uid), now);
  const PodInfo& pod = *f.item.pod;
  SKIFF_LOG(Warn) << "binding " << pod.key() << " failed: " << b.status.to_string();
  // Gone, being deleted, or bound by someone else: the informer will tell the rest.
  if (f.deleted || b.status.is_not_found() || b.status.code() == StatusCode::kConflict) return;
  Diagnosis d;
  d.reason = "SchedulerError";
  d.message = "running Bind plugin \"DefaultBinder\": " + b.status.message();
  fail(std::move(f.item), d);
}

void Scheduler::Impl::schedule(SchedulingQueue::Item item) {
  const Profile* profile = profile_for(item.pod->scheduler_name);
  if (profile == nullptr) return;
  stats.attempts.fetch_add(1, std::memory_order_relaxed);
  Diagnosis d;
  auto r = schedule_one(cluster, *item.pod, *profile, state, &d);
  if (!r.ok()) {
    (d.reason == "Unschedulable" ? stats.unschedulable : stats.errors)
        .fetch_add(1, std::memory_order_relaxed);
    fail(std::move(item), d);
    return;
  }
  cluster.assume(item.pod, r->node_name);
  bind(item.pod, r->node_name);
  std::string uid = item.pod->uid;
  in_flight.emplace(std::move(uid), InFlight{std::move(item), false});
}

void Scheduler::Impl::fail(SchedulingQueue::Item item, const Diagnosis& d) {
  const PodInfo& pod = *item.pod;
  SKIFF_LOG(Debug) << "unable to schedule " << pod.key() << ": " << d.message;
  emit(pod, "Warning", "FailedScheduling", d.message);
  bool already = item.reported_message == d.message ||
                 (item.reported_message.empty() && pod.scheduled_status == "False" &&
                  pod.scheduled_reason == d.reason && pod.scheduled_message == d.message);
  if (!already) {
    json cond = {{"type", "PodScheduled"},
                 {"status", "False"},
                 {"lastProbeTime", nullptr},
                 {"reason", d.reason},
                 {"message", d.message}};
    // The transition time moves only when the status does (podutil.UpdatePodCondition).
    if (pod.scheduled_status != "False" && item.reported_message.empty()) {
      cond["lastTransitionTime"] = format_rfc3339(skiff::now());
    }
    json patch = {{"status", {{"conditions", json::array({std::move(cond)})}}}};
    item.reported_message = d.message;
    workers.submit([this, ns = pod.ns, name = pod.name, body = patch.dump()] {
      auto r = client.patch(client::resources::kPods.in(ns), name,
                            client::PatchType::kStrategicMerge, body, "status");
      if (!r.ok() && !r.status().is_not_found()) {
        SKIFF_LOG(Warn) << "updating the PodScheduled condition of " << ns << "/" << name
                        << " failed: " << r.status().to_string();
      }
    });
  }
  auto now = SchedulingQueue::Clock::now();
  if (d.reason == "Unschedulable" || d.plugins == plugin::kNoNodes) {
    queue.requeue_unschedulable(std::move(item), d.plugins, now);
  } else {
    queue.requeue_backoff(std::move(item), now);
  }
}

void Scheduler::Impl::bind(std::shared_ptr<const PodInfo> pod, const std::string& node) {
  workers.submit([this, pod = std::move(pod), node] {
    json body = {{"apiVersion", "v1"},
                 {"kind", "Binding"},
                 {"metadata", {{"name", pod->name}, {"namespace", pod->ns}, {"uid", pod->uid}}},
                 {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
    auto r =
        client.create_subresource(client::resources::kPods.in(pod->ns), pod->name, "binding", body);
    if (r.ok() && options.events) {
      options.events(pod_reference(*pod), "Normal", "Scheduled",
                     "Successfully assigned " + pod->ns + "/" + pod->name + " to " + node);
    }
    inbox->post(BindDone{pod->uid, r.ok() ? Status::Ok() : r.status()});
  });
}

void Scheduler::Impl::emit(const PodInfo& pod, const char* type, const char* reason,
                           std::string message) {
  if (!options.events) return;
  workers.submit([this, ref = pod_reference(pod), type, reason, message = std::move(message)] {
    options.events(ref, type, reason, message);
  });
}

Scheduler::Scheduler(client::Client& client, client::InformerFactory& informers,
                     SchedulerOptions options)
    : impl_(std::make_shared<Impl>(client, informers, std::move(options))) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() { impl_->start(); }

void Scheduler::stop() { impl_->stop(); }

SchedulerStats Scheduler::stats() const {
  const auto& s = impl_->stats;
  SchedulerStats out;
  out.attempts = s.attempts.load();
  out.scheduled = s.scheduled.load();
  out.unschedulable = s.unschedulable.load();
  out.errors = s.errors.load();
  out.bind_failures = s.bind_failures.load();
  out.active = s.active.load();
  out.backoff = s.backoff.load();
  out.unschedulable_pods = s.unschedulable_pods.load();
  out.binds_in_flight = s.binds_in_flight.load();
  out.nodes = s.nodes.load();
  out.placed_pods = s.placed_pods.load();
  out.synced = s.synced.load();
  return out;
}

}  // namespace skiff::scheduler
