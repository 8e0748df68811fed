// bench_scheduler: the scheduler's throughput and latency through the real API, against a
// trivial binder measured in the same run.
//
// The process runs real API servers (SQLite store in a temporary data dir, watch cache,
// admission) and registers `--nodes` simulated nodes through each: Node objects with
// capacity, allocatable and a Ready condition, as a kubelet posts them. The nodes run nothing
// (no leases, no pod status): the figures are about placing pods, not about starting them.
//
// The two sides run on two servers in the same process, each with its own store, nodes and
// placer, so that both see the same objects and history:
//  - binder (the baseline): a pod informer over the whole cluster feeding `--bind-workers`
//    threads that bind each pending pod whose schedulerName is "round-robin" to the next node
//    in turn through pods/binding: no filtering, no scoring.
//  - scheduler: the real Scheduler (default-scheduler profile, LeastAllocated) with
//    `--bind-workers` bindings in flight, wired as `skiff server` wires it.
// Phases, each split into `--rounds` rounds that alternate the sides (ABBA), so that load
// from outside the run, which drifts over minutes on a shared machine, falls on both alike:
//  - stream: P pods (`--pods`, pending, 100m CPU / 128Mi each) are created by `--creators`
//    threads as fast as the API takes them while the placer runs; pods/s = P / the summed
//    rounds' time from the first create to the last binding observed.
//  - latency: pods arrive at a fixed `--rate` for `--latency-seconds`; a pod's latency runs
//    from when its create was due (so a slow API counts against it) to when its binding is
//    observed; p50 and p99 over all rounds.
//  - with `--backlog`, first: P pending pods are created with nothing placing them, then the
//    placer starts; timed from its start (its informers list the cluster) to the last
//    binding observed: the rate of draining a queue, one write per pod instead of two.
//  - decisions alone: the scheduler's filter/score/assume loop over the same nodes and pods
//    with no API at all, the ceiling the scheduler itself sets.
// A binding is "observed" by a watch with the field selector spec.nodeName!= (BindObserver),
// as any component of the cluster would see it: the server has stored it and sent the event.
//
// Transport: "through the real API" means the in-process transport by default, the one the
// scheduler and controllers inside `skiff server` use: every request goes through the
// server's full handler path (authentication, validation, defaulting, admission, store,
// watch cache) but skips TLS and sockets. `--https` sends everything (creators, binder,
// scheduler, observers) over HTTPS with the admin client certificate instead, as a remote
// client would. Both sides of every ratio use the same transport, the same number of
// bindings in flight and the same creators, so that the ratio measures the scheduler's own
// cost.
//
// Events: `skiff server` gives the scheduler an EventRecorder ("Scheduled" Events, written by
// one background thread that drops what it cannot keep up with). The binder writes none, so
// by default the scheduler runs without one; `--events` adds it, as `skiff server` runs.
//
// Figures are printed as a table with the ratios and the targets, never asserted: the exit
// status is non-zero only when a phase could not complete.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "apiserver/api_server.h"
#include "client/client.h"
#include "client/https_transport.h"
#include "client/informer.h"
#include "common/log.h"
#include "common/time.h"
#include "controllers/framework.h"
#include "scheduler/algorithm.h"
#include "scheduler/cluster.h"
#include "scheduler/convert.h"
#include "scheduler/scheduler.h"

namespace skiff::bench {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace res = client::resources;

// A failure that ends the run.
class Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Flags {
  int nodes = 5000;
  int pods = 100000;
  int rate = 1000;            // arrivals per second in the latency phases
  int latency_seconds = 10;   // length of each latency phase
  int creators = 8;           // threads creating pods in the throughput phases
  int rounds = 4;             // each phase is split into rounds, alternating the sides
  int bind_workers = 64;      // bindings in flight, binder and scheduler alike
  int timeout_seconds = 300;  // longest wait for a phase's last binding
  bool https = false;
  bool events = false;
  bool backlog = false;  // also time draining a backlog of pending pods
  std::string only;      // "binder" or "scheduler": run that side alone (profiling)
  std::string data_dir;  // empty: a temporary dir, removed at the end
};

void usage() {
  std::fprintf(stderr,
               "usage: bench_scheduler [flags]\n"
               "  --nodes N            simulated nodes (5000)\n"
               "  --pods N             pods per throughput phase (100000)\n"
               "  --rate N             pods/s arriving in the latency phases (1000)\n"
               "  --latency-seconds N  length of each latency phase (10)\n"
               "  --creators N         threads creating pods in throughput phases (8)\n"
               "  --bind-workers N     bindings in flight, binder and scheduler (64)\n"
               "  --timeout-seconds N  longest wait for a phase to finish (300)\n"
               "  --rounds N           split the stream and latency phases into N rounds,\n"
               "                       alternating binder and scheduler (4)\n"
               "  --https              talk HTTPS instead of the in-process transport\n"
               "  --events             the scheduler records Events, as in skiff server\n"
               "  --backlog            first time draining --pods pending pods created before\n"
               "                       the binder or scheduler starts\n"
               "  --only SIDE          run one side alone, binder or scheduler (profiling)\n"
               "  --data-dir DIR       keep the server's data in DIR (default: a temp dir)\n");
}

bool parse_flags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto int_flag = [&](const char* name, int* out) {
      if (a != name) return false;
      if (i + 1 >= argc) throw Failure(a + " needs a value");
      char* end = nullptr;
      long v = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || v <= 0 || v > 10'000'000) throw Failure(a + ": want a positive count");
      *out = static_cast<int>(v);
      return true;
    };
    if (int_flag("--nodes", &f->nodes) || int_flag("--pods", &f->pods) ||
        int_flag("--rate", &f->rate) || int_flag("--latency-seconds", &f->latency_seconds) ||
        int_flag("--creators", &f->creators) || int_flag("--bind-workers", &f->bind_workers) ||
        int_flag("--timeout-seconds", &f->timeout_seconds) || int_flag("--rounds", &f->rounds)) {
      continue;
    }
    if (a == "--https") {
      f->https = true;
    } else if (a == "--backlog") {
      f->backlog = true;
    } else if (a == "--events") {
      f->events = true;
    } else if (a == "--only" && i + 1 < argc &&
               (argv[i + 1] == std::string("binder") || argv[i + 1] == std::string("scheduler"))) {
      f->only = argv[++i];
    } else if (a == "--data-dir" && i + 1 < argc) {
      f->data_dir = argv[++i];
    } else {
      usage();
      return false;
    }
  }
  return true;
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Runs fn(i) for i in [0, n) on `threads` threads; rethrows the first failure.
void parallel(int n, int threads, const std::function<void(int)>& fn) {
  std::atomic<int> next{0};
  std::mutex mu;
  std::string error;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      try {
        for (int i = next++; i < n; i = next++) fn(i);
      } catch (const std::exception& e) {
        std::lock_guard lock(mu);
        if (error.empty()) error = e.what();
        next = n;
      }
    });
  }
  for (auto& t : ts) t.join();
  if (!error.empty()) throw Failure(error);
}

template <typename T>
const T& check(const Result<T>& r, const std::string& what) {
  if (!r.ok()) throw Failure(what + ": " + r.status().to_string());
  return r.value();
}

// Where the bench's clients send their requests.
class Api {
 public:
  Api(apiserver::ApiServer& server, bool https, int connections)
      : server_(server), https_(https), connections_(connections) {}

  // A client acting as `user` (in-process) or as the admin (HTTPS).
  std::unique_ptr<client::Client> client(const std::string& user, const std::string& agent) {
    if (!https_) {
      return std::make_unique<client::Client>(server_.local_transport(user), agent);
    }
    auto o = client::HttpsTransport::options_from_kubeconfig(server_.kubeconfig_path());
    if (!o.ok()) throw Failure("kubeconfig: " + o.status().to_string());
    client::HttpsOptions opts = o.value();
    opts.user_agent = agent;
    opts.max_idle_connections = static_cast<size_t>(connections_);
    auto t = client::HttpsTransport::create(opts);
    if (!t.ok()) throw Failure("https transport: " + t.status().to_string());
    return std::make_unique<client::Client>(t.value(), agent);
  }

 private:
  apiserver::ApiServer& server_;
  const bool https_;
  const int connections_;
};

std::string pod_name(int i) { return "p-" + std::to_string(i); }

// The index of a pod named by pod_name, or -1.
int pod_index(const std::string& name) {
  if (name.size() < 3 || name.compare(0, 2, "p-") != 0) return -1;
  char* end = nullptr;
  long v = std::strtol(name.c_str() + 2, &end, 10);
  return *end == '\0' ? static_cast<int>(v) : -1;
}

const std::string& string_at(const json& obj, const char* a, const char* b) {
  static const std::string kEmpty;
  auto i = obj.find(a);
  if (i == obj.end() || !i->is_object()) return kEmpty;
  auto j = i->find(b);
  return j != i->end() && j->is_string() ? j->get_ref<const std::string&>() : kEmpty;
}

// A pending pod as a workload controller would create it: one container with requests.
json pod_object(const std::string& ns, int i, const std::string& scheduler_name) {
  json requests = {{"cpu", "100m"}, {"memory", "128Mi"}};
  json container = {{"name", "app"},
                    {"image", "registry.k8s.io/pause:3.9"},
                    {"resources", {{"requests", requests}}}};
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", pod_name(i)}, {"namespace", ns}, {"labels", {{"app", ns}}}}},
          {"spec",
           {{"schedulerName", scheduler_name},
            {"containers", json::array({container})},
            {"terminationGracePeriodSeconds", 0}}}};
}

void create_namespace(client::Client& api, const std::string& ns) {
  json obj = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}};
  check(api.create(res::kNamespaces, obj), "creating namespace " + ns);
}

// Node i as its kubelet registers it: metadata and spec, then (node_status) its status.
json node_object(int i) {
  std::string name = "sim-" + std::to_string(i);
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata",
           {{"name", name},
            {"labels",
             {{"kubernetes.io/hostname", name},
              {"kubernetes.io/os", "linux"},
              {"kubernetes.io/arch", "amd64"},
              {"topology.kubernetes.io/zone", "zone-" + std::to_string(i % 3)},
              {"skiff.dev/simulated-node", "true"}}}}},
          {"spec", json::object()}};
}

// Capacity, allocatable, a Ready condition and addresses.
json node_status(int i) {
  json resources = {
      {"cpu", "32"}, {"memory", "128Gi"}, {"pods", "110"}, {"ephemeral-storage", "100Gi"}};
  std::string now = format_rfc3339(skiff::now());
  std::string ip = "172.16." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
  return {{"capacity", resources},
          {"allocatable", resources},
          {"conditions", json::array({{{"type", "Ready"},
                                       {"status", "True"},
                                       {"reason", "KubeletReady"},
                                       {"message", "kubelet is posting ready status"},
                                       {"lastHeartbeatTime", now},
                                       {"lastTransitionTime", now}}})},
          {"addresses",
           json::array({{{"type", "InternalIP"}, {"address", ip}},
                        {{"type", "Hostname"}, {"address", "sim-" + std::to_string(i)}}})}};
}

// Registers the nodes as kubelets do: the Node, then its status (capacity, allocatable, a
// Ready condition, addresses). Returns their names.
std::vector<std::string> register_nodes(client::Client& api, int count) {
  std::vector<std::string> names(count);
  parallel(count, 8, [&](int i) {
    json node = node_object(i);
    names[i] = node["metadata"]["name"];
    json created = *check(api.create(res::kNodes, node), "creating node " + names[i]);
    created["status"] = node_status(i);
    check(api.update(res::kNodes, created, "status"), "posting status of node " + names[i]);
  });
  return names;
}

// The scheduler's decisions alone, without the API: the same nodes and pods, converted as
// the scheduler's informer handlers convert them, each pod scheduled (schedule_one, the
// default-scheduler profile) and assumed on its node, one after another as on the
// scheduling thread. The ceiling the scheduler would reach if the API cost nothing.
double decisions_per_s(const Flags& f) {
  scheduler::Cluster cluster;
  for (int i = 0; i < f.nodes; ++i) {
    json node = node_object(i);
    node["status"] = node_status(i);
    cluster.upsert_node(scheduler::parse_node(node, cluster.interner()));
  }
  std::vector<std::shared_ptr<const scheduler::PodInfo>> pods;
  pods.reserve(f.pods);
  for (int i = 0; i < f.pods; ++i) {
    json pod = pod_object("core", i, "default-scheduler");
    pod["metadata"]["uid"] = "uid-" + std::to_string(i);
    pods.push_back(scheduler::parse_pod(pod, cluster.interner()));
  }
  scheduler::Profile profile =
      scheduler::default_profiles(scheduler::ScoringStrategy::kLeastAllocated)[0];
  scheduler::ScheduleState state(1);
  auto start = Clock::now();
  for (const auto& p : pods) {
    auto r = scheduler::schedule_one(cluster, *p, profile, state);
    if (!r.ok()) throw Failure("scheduling " + p->name + ": " + r.status().to_string());
    cluster.assume(p, r->node_name);
  }
  double secs = seconds_between(start, Clock::now());
  std::printf("# decisions alone: %d pods over %d nodes in %.2f s\n", f.pods, f.nodes, secs);
  return f.pods / secs;
}

// Records when each pod of one namespace is first seen bound: a watch on the namespace's pods
// with the field selector spec.nodeName!=, which sees a pod (ADDED) once its binding is
// stored. A plain watch rather than an informer, so that the observer keeps no copy of the
// pods (the process holds the servers too: a large cache freed after each phase would cost
// the servers' allocator, not just the observer). Pods are named by pod_name(i), i < n.
// Thread-safe.
class BindObserver {
 public:
  BindObserver(client::Client& api, const std::string& ns, int n)
      : api_(api), ns_(ns), bound_at_(n) {
    client::ListOptions o = selector();
    auto list = check(api_.list(res::kPods.in(ns_), o), "listing pods in " + ns_);
    for (const client::ObjectPtr& p : list.items) record(*p);
    {
      std::lock_guard lock(mu_);
      resource_version_ = list.resource_version;
    }
    start_watch();
  }
  ~BindObserver() {
    std::unique_ptr<client::Watch> w;
    {
      std::lock_guard lock(mu_);
      w = std::move(watch_);
    }
    if (w) w->stop();
  }

  // Waits until all n pods are bound; false if the timeout passes first. Resumes the watch
  // if the server ended it.
  bool wait_all(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return seen_ == bound_at_.size() || closed_; });
    if (!error_.empty()) throw Failure("watching pods in " + ns_ + ": " + error_);
    if (seen_ == bound_at_.size()) return true;
    if (closed_) {
      closed_ = false;
      std::unique_ptr<client::Watch> old = std::move(watch_);
      lock.unlock();
      if (old) old->stop();
      start_watch();
    }
    return false;
  }
  size_t seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  // REQUIRES: wait_all() returned true.
  Clock::time_point last() const {
    std::lock_guard lock(mu_);
    return *std::max_element(bound_at_.begin(), bound_at_.end());
  }
  Clock::time_point bound_at(int i) const {
    std::lock_guard lock(mu_);
    return bound_at_[i];
  }

 private:
  static client::ListOptions selector() {
    client::ListOptions o;
    o.field_selector = "spec.nodeName!=";
    return o;
  }

  // Watches from the last resourceVersion seen.
  void start_watch() {
    client::ListOptions o = selector();
    {
      std::lock_guard lock(mu_);
      o.resource_version = resource_version_;
    }
    o.allow_bookmarks = true;
    o.timeout_seconds = 3600;
    auto w = api_.watch(
        res::kPods.in(ns_), o, [this](const client::WatchEvent& e) { on_event(e); },
        [this](const Status&) {
          {
            std::lock_guard lock(mu_);
            closed_ = true;
          }
          cv_.notify_all();
        });
    if (!w.ok()) throw Failure("watching pods in " + ns_ + ": " + w.status().to_string());
    std::lock_guard lock(mu_);
    watch_ = std::move(w.value());
  }

  void on_event(const client::WatchEvent& e) {
    if (e.type == client::WatchEventType::kError) {
      {
        std::lock_guard lock(mu_);
        error_ = e.object ? e.object->dump() : "error event";
        closed_ = true;
      }
      cv_.notify_all();
      return;
    }
    if (!e.object) return;
    const std::string& rv = string_at(*e.object, "metadata", "resourceVersion");
    if (!rv.empty()) {
      std::lock_guard lock(mu_);
      resource_version_ = rv;
    }
    if (e.type == client::WatchEventType::kAdded || e.type == client::WatchEventType::kModified) {
      record(*e.object);
    }
  }

  void record(const json& pod) {
    auto t = Clock::now();
    int i = pod_index(string_at(pod, "metadata", "name"));
    if (i < 0 || static_cast<size_t>(i) >= bound_at_.size()) return;
    bool all = false;
    {
      std::lock_guard lock(mu_);
      if (bound_at_[i] != Clock::time_point()) return;
      bound_at_[i] = t;
      all = ++seen_ == bound_at_.size();
    }
    if (all) cv_.notify_all();
  }

  client::Client& api_;
  const std::string ns_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Clock::time_point> bound_at_;  // guarded by mu_
  size_t seen_ = 0;                          // guarded by mu_
  std::string resource_version_;             // guarded by mu_; the last one seen
  bool closed_ = false;                      // guarded by mu_; the server ended the watch
  std::string error_;                        // guarded by mu_
  std::unique_ptr<client::Watch> watch_;     // guarded by mu_
};

// The baseline: binds every pending pod whose spec.schedulerName is "round-robin" to the next
// node in turn, with `workers` bindings in flight; nothing is filtered or scored. Like the
// scheduler it watches every pod of the cluster through an informer whose handler only
// queues work. Thread-safe.
class RoundRobinBinder {
 public:
  static constexpr const char* kSchedulerName = "round-robin";

  RoundRobinBinder(client::Client& api, std::vector<std::string> nodes, int workers)
      : api_(api), nodes_(std::move(nodes)), informer_(api, res::kPods) {
    client::InformerHandlers h;
    h.on_add = [this](const client::ObjectPtr& o) {
      if (string_at(*o, "spec", "nodeName").empty() &&
          string_at(*o, "spec", "schedulerName") == kSchedulerName) {
        push(string_at(*o, "metadata", "namespace"), string_at(*o, "metadata", "name"));
      }
    };
    informer_.add_handlers(std::move(h));
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { run(); });
  }
  ~RoundRobinBinder() {
    informer_.stop();
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void start() { informer_.start(); }
  bool synced() const { return informer_.synced(); }
  uint64_t failures() const { return failures_; }

 private:
  void push(const std::string& ns, const std::string& name) {
    {
      std::lock_guard lock(mu_);
      queue_.emplace_back(ns, name);
    }
    cv_.notify_one();
  }

  void run() {
    while (true) {
      std::pair<std::string, std::string> pod;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        pod = std::move(queue_.front());
        queue_.pop_front();
      }
      const auto& [ns, name] = pod;
      const std::string& node = nodes_[next_node_++ % nodes_.size()];
      json body = {{"apiVersion", "v1"},
                   {"kind", "Binding"},
                   {"metadata", {{"name", name}, {"namespace", ns}}},
                   {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
      auto r = api_.create_subresource(res::kPods.in(ns), name, "binding", body);
      if (!r.ok() && failures_++ == 0) {
        std::fprintf(stderr, "binding %s/%s failed: %s\n", ns.c_str(), name.c_str(),
                     r.status().to_string().c_str());
      }
    }
  }

  client::Client& api_;
  const std::vector<std::string> nodes_;
  std::atomic<uint64_t> next_node_{0};
  std::atomic<uint64_t> failures_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::string>> queue_;  // guarded by mu_
  bool stop_ = false;                                      // guarded by mu_
  std::vector<std::thread> threads_;
  client::Informer informer_;
};

enum class Side { kBinder, kScheduler };

// What places one side's pods: the round-robin binder, or the Scheduler wired as
// `skiff server` wires it (its own client as system:kube-scheduler, its own informers, and
// with --events an EventRecorder). Neither does anything before start().
class Placer {
 public:
  Placer(Api& api, Side side, const Flags& f, std::vector<std::string> nodes) : side_(side) {
    if (side == Side::kBinder) {
      client_ = api.client("system:bench-binder", "round-robin-binder");
      binder_ = std::make_unique<RoundRobinBinder>(*client_, std::move(nodes), f.bind_workers);
      return;
    }
    client_ = api.client("system:kube-scheduler", "default-scheduler");
    informers_ = std::make_unique<client::InformerFactory>(*client_);
    scheduler::SchedulerOptions o;
    o.bind_workers = f.bind_workers;
    if (f.events) {
      recorder_ = std::make_unique<controllers::EventRecorder>(*client_, "default-scheduler");
      controllers::EventRecorder* rec = recorder_.get();
      o.events = [rec](const json& obj, const std::string& type, const std::string& reason,
                       const std::string& message) { rec->record(obj, type, reason, message); };
    }
    scheduler_ = std::make_unique<scheduler::Scheduler>(*client_, *informers_, o);
  }
  ~Placer() {
    if (scheduler_) scheduler_->stop();
    if (informers_) informers_->stop();
  }

  const char* scheduler_name() const {
    return side_ == Side::kBinder ? RoundRobinBinder::kSchedulerName : "default-scheduler";
  }
  void start() {
    if (started_) return;
    started_ = true;
    if (binder_) {
      binder_->start();
    } else {
      scheduler_->start();
      informers_->start();
    }
  }
  // Whether it has listed the cluster and may place pods.
  bool synced() const { return binder_ ? binder_->synced() : scheduler_->stats().synced; }
  uint64_t failures() const {
    return binder_ ? binder_->failures() : scheduler_->stats().bind_failures;
  }
  // A line about the scheduler's work ("" for the binder).
  std::string report() const {
    if (!scheduler_) return "";
    scheduler::SchedulerStats s = scheduler_->stats();
    char line[256];
    std::snprintf(
        line, sizeof line,
        "%llu attempts, %llu bound, %llu unschedulable, %llu errors, %llu binding "
        "failures",
        static_cast<unsigned long long>(s.attempts), static_cast<unsigned long long>(s.scheduled),
        static_cast<unsigned long long>(s.unschedulable), static_cast<unsigned long long>(s.errors),
        static_cast<unsigned long long>(s.bind_failures));
    return line;
  }

 private:
  const Side side_;
  bool started_ = false;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<RoundRobinBinder> binder_;
  std::unique_ptr<client::InformerFactory> informers_;
  std::unique_ptr<controllers::EventRecorder> recorder_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
};

struct Throughput {
  int n = 0;
  double secs = 0;         // start (see each phase) .. last binding observed
  double create_secs = 0;  // first create .. last create answered
  double cpu_secs = 0;     // process CPU time over `secs`
  double pods_per_s() const { return secs > 0 ? n / secs : 0; }
};

// Latency samples, gathered over rounds.
struct Latency {
  std::vector<double> ms;  // create due .. binding observed, one per pod
  int late = 0;            // creates sent more than 10 ms after they were due
  double max_lag_ms = 0;
  // The q-quantile (nearest rank). REQUIRES: sorted, not empty.
  double quantile(double q) const {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())))];
  }
};

struct SideResult {
  Throughput backlog;      // pods created first, then the placer started
  double synced_secs = 0;  // placer start .. it had listed the backlog
  Throughput stream;       // pods created while the placer runs
  Latency latency;
  std::string report;
};

void wait_bound(BindObserver& observer, const Flags& f, const std::string& ns, int n,
                const std::function<void()>& poll) {
  auto deadline = Clock::now() + std::chrono::seconds(f.timeout_seconds);
  while (!observer.wait_all(std::chrono::milliseconds(50))) {
    if (poll) poll();
    if (Clock::now() > deadline) {
      throw Failure(ns + ": only " + std::to_string(observer.seen()) + " of " + std::to_string(n) +
                    " pods bound within " + std::to_string(f.timeout_seconds) + " s");
    }
  }
}

// Creates pods [0, n) of `ns` with `creators` threads; returns how long it took.
double create_pods(client::Client& api, const Flags& f, const std::string& ns, int n,
                   const std::string& scheduler_name) {
  auto start = Clock::now();
  parallel(n, f.creators, [&](int i) {
    check(api.create(res::kPods.in(ns), pod_object(ns, i, scheduler_name)), "creating a pod");
  });
  return seconds_between(start, Clock::now());
}

// Pods arrive at f.rate per second for f.latency_seconds (each create is due at a fixed
// time; a few sender threads keep the schedule even when one create is slow); the latency of
// a pod runs from when its create was due to when its binding is observed.
void run_latency(client::Client& api, const Flags& f, const std::string& ns, int n,
                 const std::string& scheduler_name, Latency* out) {
  BindObserver observer(api, ns, n);
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  auto due = [&](int i) {
    return start + std::chrono::nanoseconds(static_cast<int64_t>(i) * 1'000'000'000 / f.rate);
  };
  std::atomic<int> late{0};
  std::atomic<int64_t> max_lag_ns{0};
  parallel(n, 16, [&](int i) {
    std::this_thread::sleep_until(due(i));
    int64_t lag =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - due(i)).count();
    if (lag > 10'000'000) late++;
    int64_t prev = max_lag_ns.load();
    while (lag > prev && !max_lag_ns.compare_exchange_weak(prev, lag)) {
    }
    check(api.create(res::kPods.in(ns), pod_object(ns, i, scheduler_name)), "creating a pod");
  });
  wait_bound(observer, f, ns, n, nullptr);
  for (int i = 0; i < n; ++i) {
    out->ms.push_back(
        std::chrono::duration<double, std::milli>(observer.bound_at(i) - due(i)).count());
  }
  out->late += late;
  out->max_lag_ms = std::max(out->max_lag_ms, max_lag_ns / 1e6);
}

void describe(const char* side, const char* what, const Throughput& t) {
  std::printf(
      "# %s, %s: %d pods created in %.2f s (%.0f creates/s); bound in %.2f s: "
      "%.0f pods/s; process CPU %.1f s (%.2f cores)\n",
      side, what, t.n, t.create_secs, t.n / t.create_secs, t.secs, t.pods_per_s(), t.cpu_secs,
      t.cpu_secs / t.secs);
  std::fflush(stdout);
}

// One side of the comparison: a server of its own (so that both sides see the same store,
// the same objects and the same history), its nodes, and what places its pods. The two
// sides' servers are up at once and their phases alternate, so that load from outside the
// run, which changes over minutes on a shared machine, falls on both alike.
class SideRun {
 public:
  SideRun(const Flags& f, Side side, std::filesystem::path dir)
      : f_(f),
        label_(side == Side::kBinder ? "round-robin binder" : "scheduler"),
        dir_(std::move(dir)) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_.parent_path());
    apiserver::ApiServer::Options so;
    so.data_dir = dir_.string();
    so.port = 0;
    so.bind_address = "127.0.0.1";
    so.disable_agent = true;
    auto server = apiserver::ApiServer::start(so);
    if (!server.ok()) throw Failure("server did not start: " + server.status().to_string());
    server_ = std::move(server.value());
    api_ = std::make_unique<Api>(*server_, f.https, f.creators + f.bind_workers + 4);
    admin_ = api_->client("system:bench", "bench-scheduler");
    auto t0 = Clock::now();
    std::vector<std::string> nodes = register_nodes(*admin_, f.nodes);
    create_namespace(*admin_, "backlog");
    for (int k = 0; k < f.rounds; ++k) {
      create_namespace(*admin_, "stream-" + std::to_string(k));
      create_namespace(*admin_, "latency-" + std::to_string(k));
    }
    std::printf("# %s: server up, %d nodes registered in %.2f s\n", label_, f.nodes,
                seconds_between(t0, Clock::now()));
    std::fflush(stdout);
    placer_ = std::make_unique<Placer>(*api_, side, f, std::move(nodes));
  }
  ~SideRun() {
    placer_.reset();
    admin_.reset();
    api_.reset();
    server_.reset();
    if (f_.data_dir.empty()) std::filesystem::remove_all(dir_);
  }

  // P pending pods are created with nothing placing them; then the placer starts. Timed
  // from its start (including its informers' list of the cluster) to the last binding
  // observed: the rate at which it drains a queue of pending pods.
  void backlog() {
    BindObserver observer(*admin_, "backlog", f_.pods);
    r_.backlog.n = f_.pods;
    r_.backlog.create_secs = create_pods(*admin_, f_, "backlog", f_.pods, name());
    double cpu0 = cpu_seconds();
    auto start = Clock::now();
    placer_->start();
    wait_bound(observer, f_, "backlog", f_.pods, [&] {
      if (r_.synced_secs == 0 && placer_->synced()) {
        r_.synced_secs = seconds_between(start, Clock::now());
      }
    });
    r_.backlog.secs = seconds_between(start, observer.last());
    r_.backlog.cpu_secs = cpu_seconds() - cpu0;
    describe(label_, "backlog", r_.backlog);
  }

  // Round k of f.rounds: P/f.rounds more pods are created as fast as the creators can
  // while the placer runs. Timed from the first create to the last binding observed; the
  // rounds' pods and times add up.
  void stream_round(int k) {
    placer_->start();
    const std::string ns = "stream-" + std::to_string(k);
    const int n = share(f_.pods, k);
    BindObserver observer(*admin_, ns, n);
    Throughput t;
    t.n = n;
    double cpu0 = cpu_seconds();
    auto start = Clock::now();
    t.create_secs = create_pods(*admin_, f_, ns, n, name());
    wait_bound(observer, f_, ns, n, nullptr);
    t.secs = seconds_between(start, observer.last());
    t.cpu_secs = cpu_seconds() - cpu0;
    char what[64];
    std::snprintf(what, sizeof what, "stream round %d/%d", k + 1, f_.rounds);
    describe(label_, what, t);
    r_.stream.n += t.n;
    r_.stream.secs += t.secs;
    r_.stream.create_secs += t.create_secs;
    r_.stream.cpu_secs += t.cpu_secs;
  }

  // Round k of f.rounds: pods arriving at a fixed rate for f.latency_seconds / f.rounds
  // (run_latency).
  void latency_round(int k) {
    placer_->start();
    const int n = share(f_.rate * f_.latency_seconds, k);
    size_t before = r_.latency.ms.size();
    run_latency(*admin_, f_, "latency-" + std::to_string(k), n, name(), &r_.latency);
    std::vector<double> round(r_.latency.ms.begin() + static_cast<ptrdiff_t>(before),
                              r_.latency.ms.end());
    std::sort(round.begin(), round.end());
    std::printf(
        "# %s, latency round %d/%d: %d pods at %d/s: create due -> bound p50 %.1f ms, "
        "p99 %.1f ms, max %.1f ms\n",
        label_, k + 1, f_.rounds, n, f_.rate, round[round.size() / 2],
        round[std::min(round.size() - 1, round.size() * 99 / 100)], round.back());
    std::fflush(stdout);
  }

  // The results; a Failure if any binding failed.
  const SideResult& finish() {
    if (placer_->failures() != 0) {
      throw Failure(std::string(label_) + ": " + std::to_string(placer_->failures()) +
                    " bindings failed");
    }
    std::sort(r_.latency.ms.begin(), r_.latency.ms.end());
    if (r_.latency.late > 0) {
      std::printf(
          "# %s: %d latency-phase creates were sent >10 ms late (the API was slow to "
          "take them; max lag %.1f ms)\n",
          label_, r_.latency.late, r_.latency.max_lag_ms);
    }
    r_.report = placer_->report();
    if (!r_.report.empty()) std::printf("# %s: %s\n", label_, r_.report.c_str());
    std::fflush(stdout);
    return r_;
  }

 private:
  std::string name() const { return placer_->scheduler_name(); }
  // Round k's share of n.
  int share(int n, int k) const { return n / f_.rounds + (k < n % f_.rounds ? 1 : 0); }

  const Flags& f_;
  const char* const label_;
  const std::filesystem::path dir_;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<client::Client> admin_;
  std::unique_ptr<Placer> placer_;
  SideResult r_;
};

std::string verdict(bool ok) { return ok ? "met" : "MISSED"; }

int run(const Flags& f) {
  std::filesystem::path base = f.data_dir;
  if (base.empty()) {
    base = std::filesystem::temp_directory_path() /
           ("skiff-bench-scheduler-" + std::to_string(::getpid()));
  }
  std::printf(
      "== bench_scheduler: %d nodes; %d pods per throughput phase; %d pods/s for %d s "
      "in the latency phase; %s transport; %d bindings in flight; %d creating threads; "
      "scheduler Events %s; stores under %s; %u CPUs\n",
      f.nodes, f.pods, f.rate, f.latency_seconds, f.https ? "HTTPS" : "in-process", f.bind_workers,
      f.creators, f.events ? "on" : "off", base.c_str(), std::thread::hardware_concurrency());
  std::fflush(stdout);

  std::optional<SideResult> b;
  std::optional<SideResult> s;
  {
    std::unique_ptr<SideRun> binder, sched;
    if (f.only != "scheduler")
      binder = std::make_unique<SideRun>(f, Side::kBinder, base / "binder");
    if (f.only != "binder")
      sched = std::make_unique<SideRun>(f, Side::kScheduler, base / "scheduler");
    // Rounds alternate the sides in the order ABBA, so that neither always goes first.
    auto both = [&](int k, const std::function<void(SideRun&)>& fn) {
      SideRun* first = k % 2 == 0 ? binder.get() : sched.get();
      SideRun* second = k % 2 == 0 ? sched.get() : binder.get();
      if (first) fn(*first);
      if (second) fn(*second);
    };
    if (f.backlog) both(0, [](SideRun& r) { r.backlog(); });
    for (int k = 0; k < f.rounds; ++k) both(k, [k](SideRun& r) { r.stream_round(k); });
    for (int k = 0; k < f.rounds; ++k) both(k, [k](SideRun& r) { r.latency_round(k); });
    if (binder) b = binder->finish();
    if (sched) s = sched->finish();
  }
  if (f.data_dir.empty()) std::filesystem::remove_all(base);
  if (!s) return 0;
  double core = decisions_per_s(f);  // the binder alone: its figures are the lines above

  std::printf(
      "\n== results (%d nodes, %d pods per throughput phase, latency at %d pods/s; "
      "binder = round-robin nodeName through pods/binding)\n",
      f.nodes, f.pods, f.rate);
  std::printf("%-46s %10s %10s %17s\n", "figure", "scheduler", "binder", "scheduler/binder");
  auto row = [&](const char* label, double sv, std::optional<double> bv, const char* fmt) {
    char sc[32], bc[32], rc[32];
    std::snprintf(sc, sizeof sc, fmt, sv);
    std::snprintf(bc, sizeof bc, "-");
    std::snprintf(rc, sizeof rc, "n/a");
    if (bv) {
      std::snprintf(bc, sizeof bc, fmt, *bv);
      if (*bv > 0) std::snprintf(rc, sizeof rc, "%.2f", sv / *bv);
    }
    std::printf("%-46s %10s %10s %17s\n", label, sc, bc, rc);
  };
  auto of = [&](auto get) -> std::optional<double> {
    if (!b) return std::nullopt;
    return get(*b);
  };
  row("pods/s, stream: create+bind (higher)", s->stream.pods_per_s(),
      of([](const SideResult& x) { return x.stream.pods_per_s(); }), "%.0f");
  row("  creates/s in that phase", s->stream.n / s->stream.create_secs,
      of([](const SideResult& x) { return x.stream.n / x.stream.create_secs; }), "%.0f");
  row("  process CPU, cores", s->stream.cpu_secs / s->stream.secs,
      of([](const SideResult& x) { return x.stream.cpu_secs / x.stream.secs; }), "%.2f");
  if (f.backlog) {
    row("pods/s, backlog: drain pending (higher)", s->backlog.pods_per_s(),
        of([](const SideResult& x) { return x.backlog.pods_per_s(); }), "%.0f");
    row("  of which listing the cluster, s", s->synced_secs,
        of([](const SideResult& x) { return x.synced_secs; }), "%.2f");
  }
  char lat_label[64];
  std::snprintf(lat_label, sizeof lat_label, "latency p50 ms at %d pods/s (lower)", f.rate);
  row(lat_label, s->latency.quantile(0.5),
      of([](const SideResult& x) { return x.latency.quantile(0.5); }), "%.1f");
  std::snprintf(lat_label, sizeof lat_label, "latency p99 ms at %d pods/s (lower)", f.rate);
  row(lat_label, s->latency.quantile(0.99),
      of([](const SideResult& x) { return x.latency.quantile(0.99); }), "%.1f");

  std::printf(
      "\n== summary (targets: scheduler >= 0.8x the binder and >= 5000 pods/s; "
      "kube-scheduler's published figures: 100-300 pods/s)\n");
  auto target_rows = [&](const char* what, double sv, std::optional<double> bv) {
    char label[64];
    if (bv) {
      double ratio = *bv > 0 ? sv / *bv : 0;
      std::snprintf(label, sizeof label, "%s: scheduler/binder >= 0.8", what);
      std::printf("%-46s %10.2f   %s\n", label, ratio, verdict(ratio >= 0.8).c_str());
    }
    std::snprintf(label, sizeof label, "%s: scheduler pods/s >= 5000", what);
    std::printf("%-46s %10.0f   %s\n", label, sv, verdict(sv >= 5000).c_str());
  };
  target_rows("stream", s->stream.pods_per_s(),
              of([](const SideResult& x) { return x.stream.pods_per_s(); }));
  if (f.backlog) {
    target_rows("backlog", s->backlog.pods_per_s(),
                of([](const SideResult& x) { return x.backlog.pods_per_s(); }));
  }
  std::printf("%-46s %10.0f   (the decisions alone, no API: the scheduler's ceiling here)\n",
              "decisions/s, scheduling thread alone", core);
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace skiff::bench

int main(int argc, char** argv) {
  skiff::set_log_level(skiff::LogLevel::kWarn);
  try {
    skiff::bench::Flags f;
    if (!skiff::bench::parse_flags(argc, argv, &f)) return 2;
    return skiff::bench::run(f);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_scheduler: %s\n", e.what());
    return 1;
  }
}
