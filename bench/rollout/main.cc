// bench_rollout: a rolling update of a 100-replica Deployment against a same-run baseline,
// the same number of plain pods created directly, on the same simulated nodes.
//
// One process runs what `skiff server` runs for workloads, wired the same way: the API server
// (SQLite store in a temporary data dir), the controller manager with the deployment and
// replicaset controllers, and the scheduler (default-scheduler profile), each with its own
// in-process client; plus `--nodes` simulated nodes (src/simnodes) that register, renew their
// leases and report the pods bound to them Running and Ready, and finalize deleted ones, as
// kubelets would without starting containers.
//
// Figures (each the median of `--repeats` runs; baseline and rollout runs alternate, so that
// load from outside the run falls on both alike):
//  - plain pods: `--replicas` pods created at once (8 threads), timed from the first create
//    until every one is seen Running and Ready: the floor for placing and starting that many
//    pods on these nodes (API, scheduler, nodes' status writes).
//  - rolling update: the Deployment's image is changed (one patch), timed until the rollout
//    is complete: status.observedGeneration has reached the new generation and
//    updatedReplicas == readyReplicas == availableReplicas == replicas == --replicas (no old
//    pod left), which is also what `kubectl rollout status` waits for. Default strategy:
//    maxSurge 25%, maxUnavailable 25%, minReadySeconds 0.
//  - the Deployment's first scale-up from nothing to --replicas available, once, for
//    reference.
// The ratio rollout/plain says what the controllers' waves (surge, wait for readiness,
// scale down, repeat) cost over placing the pods directly.
//
// Figures are printed, never asserted: the exit status is non-zero only when a phase could
// not complete.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "apiserver/api_server.h"
#include "client/client.h"
#include "client/informer.h"
#include "common/log.h"
#include "controllers/framework.h"
#include "scheduler/scheduler.h"
#include "simnodes/sim_nodes.h"

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
  int nodes = 50;
  int replicas = 100;
  int repeats = 5;
  int timeout_seconds = 120;  // longest wait for one phase
  std::string data_dir;       // empty: a temporary dir, removed at the end
};

void usage() {
  std::fprintf(stderr,
               "usage: bench_rollout [flags]\n"
               "  --nodes N            simulated nodes (50)\n"
               "  --replicas N         Deployment replicas and plain pods (100)\n"
               "  --repeats N          runs of each measurement; medians are printed (3)\n"
               "  --timeout-seconds N  longest wait for one phase (120)\n"
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
      if (*end != '\0' || v <= 0 || v > 100'000) throw Failure(a + ": want a positive count");
      *out = static_cast<int>(v);
      return true;
    };
    if (int_flag("--nodes", &f->nodes) || int_flag("--replicas", &f->replicas) ||
        int_flag("--repeats", &f->repeats) || int_flag("--timeout-seconds", &f->timeout_seconds)) {
      continue;
    }
    if (a == "--data-dir" && i + 1 < argc) {
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

template <typename T>
const T& check(const Result<T>& r, const std::string& what) {
  if (!r.ok()) throw Failure(what + ": " + r.status().to_string());
  return r.value();
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

const json& at(const json& obj, std::initializer_list<const char*> path) {
  static const json kNull;
  const json* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(p);
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}

int64_t int_at(const json& obj, std::initializer_list<const char*> path) {
  const json& v = at(obj, path);
  return v.is_number_integer() ? v.get<int64_t>() : 0;
}

// The pod template of both the Deployment and the plain pods: one container with requests.
json pod_spec(const std::string& image) {
  json requests = {{"cpu", "100m"}, {"memory", "64Mi"}};
  json container = {{"name", "web"}, {"image", image}, {"resources", {{"requests", requests}}}};
  return {{"containers", json::array({container})}};
}

bool running_and_ready(const json& pod) {
  if (!at(pod, {"metadata", "deletionTimestamp"}).is_null()) return false;
  const json& status = at(pod, {"status"});
  if (at(status, {"phase"}) != "Running") return false;
  const json& conds = at(status, {"conditions"});
  if (!conds.is_array()) return false;
  for (const json& c : conds) {
    if (at(c, {"type"}) == "Ready") return at(c, {"status"}) == "True";
  }
  return false;
}

// Waits, through an informer, until `done` holds for what the informer has seen; returns
// when that was first observed. Thread-safe.
class Waiter {
 public:
  using Predicate = std::function<bool(const client::ObjectPtr& changed)>;
  Waiter(client::Client& api, const client::ResourceRef& ref, Predicate done)
      : done_(std::move(done)), informer_(api, ref) {
    client::InformerHandlers h;
    h.on_add = [this](const client::ObjectPtr& o) { observe(o); };
    h.on_update = [this](const client::ObjectPtr&, const client::ObjectPtr& o) { observe(o); };
    informer_.add_handlers(std::move(h));
    informer_.start();
    if (!informer_.wait_for_sync(std::chrono::seconds(30))) throw Failure("informer sync");
  }
  // The time `done` first held after arm(); a Failure after the timeout.
  Clock::time_point wait(std::chrono::seconds timeout, const std::string& what) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [this] { return met_; })) {
      throw Failure(what + " did not finish within " + std::to_string(timeout.count()) + " s");
    }
    return met_at_;
  }
  // Starts looking (events before arm() are ignored).
  void arm() {
    std::lock_guard lock(mu_);
    armed_ = true;
    met_ = false;
  }

 private:
  void observe(const client::ObjectPtr& o) {
    auto t = Clock::now();
    std::lock_guard lock(mu_);
    if (!armed_ || met_) return;
    if (done_(o)) {
      met_ = true;
      met_at_ = t;
      cv_.notify_all();
    }
  }

  Predicate done_;  // called under mu_, on the informer's thread
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;        // guarded by mu_
  bool met_ = false;          // guarded by mu_
  Clock::time_point met_at_;  // guarded by mu_
  client::Informer informer_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int run(const Flags& f) {
  std::filesystem::path dir = f.data_dir;
  bool temp_dir = dir.empty();
  if (temp_dir) {
    dir = std::filesystem::temp_directory_path() /
          ("skiff-bench-rollout-" + std::to_string(::getpid()));
  }
  std::filesystem::remove_all(dir);
  struct Cleanup {
    std::filesystem::path dir;
    bool remove;
    ~Cleanup() {
      if (remove) std::filesystem::remove_all(dir);
    }
  } cleanup{dir, temp_dir};

  std::printf(
      "== bench_rollout: %d replicas on %d simulated nodes; medians of %d runs; store "
      "under %s; %u CPUs\n",
      f.replicas, f.nodes, f.repeats, dir.c_str(), std::thread::hardware_concurrency());
  std::fflush(stdout);

  apiserver::ApiServer::Options so;
  so.data_dir = dir.string();
  so.port = 0;
  so.bind_address = "127.0.0.1";
  so.disable_agent = true;
  auto server = apiserver::ApiServer::start(so);
  if (!server.ok()) throw Failure("server did not start: " + server.status().to_string());
  apiserver::ApiServer& srv = *server.value();

  // As `skiff server` wires them: one client per component, in-process.
  client::Client controller_client(srv.local_transport("system:kube-controller-manager"),
                                   "kube-controller-manager");
  controllers::ManagerOptions mopts;
  mopts.enabled = {"deployment", "replicaset"};
  controllers::ControllerManager manager(controller_client, mopts);
  client::Client scheduler_client(srv.local_transport("system:kube-scheduler"),
                                  "default-scheduler");
  client::InformerFactory scheduler_informers(scheduler_client);
  controllers::EventRecorder scheduler_events(scheduler_client, "default-scheduler");
  scheduler::SchedulerOptions sopts;
  sopts.events = [&scheduler_events](const json& obj, const std::string& type,
                                     const std::string& reason, const std::string& message) {
    scheduler_events.record(obj, type, reason, message);
  };
  scheduler::Scheduler sched(scheduler_client, scheduler_informers, sopts);
  client::Client node_client(srv.local_transport("system:node:simulated"), "skiff-sim-nodes");
  simnodes::SimNodesOptions nopts;
  nopts.count = f.nodes;
  simnodes::SimNodes nodes(node_client, nopts);
  client::Client admin(srv.local_transport("system:bench"), "bench-rollout");

  auto t0 = Clock::now();
  manager.start();
  sched.start();
  scheduler_informers.start();
  Status ns = nodes.start();
  if (!ns.ok()) throw Failure("simulated nodes: " + ns.to_string());
  while (!manager.is_leader() || !sched.stats().synced ||
         sched.stats().nodes < static_cast<size_t>(f.nodes)) {
    if (Clock::now() - t0 > std::chrono::seconds(f.timeout_seconds)) {
      throw Failure("the controller manager or the scheduler did not start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("# control plane up and %d nodes registered in %.2f s\n", f.nodes,
              seconds_between(t0, Clock::now()));
  std::fflush(stdout);

  const std::string app_ns = "rollout";
  for (int r = 0; r < f.repeats; ++r) {
    json obj = {{"apiVersion", "v1"},
                {"kind", "Namespace"},
                {"metadata", {{"name", "plain-" + std::to_string(r)}}}};
    check(admin.create(res::kNamespaces, obj), "creating a namespace");
  }
  json ns_obj = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", app_ns}}}};
  check(admin.create(res::kNamespaces, ns_obj), "creating a namespace");

  const std::chrono::seconds timeout(f.timeout_seconds);
  // The rollout is complete once the status reflects the generation written (at least
  // `generation`, so that a late status of the previous rollout does not count) with every
  // replica updated, ready and available, and no old replica left.
  std::atomic<int64_t> generation{1};
  Waiter deployment_done(admin, res::kDeployments.in(app_ns), [&](const client::ObjectPtr& o) {
    const json& d = *o;
    int64_t want = f.replicas;
    return int_at(d, {"status", "observedGeneration"}) >= generation.load() &&
           int_at(d, {"status", "updatedReplicas"}) == want &&
           int_at(d, {"status", "readyReplicas"}) == want &&
           int_at(d, {"status", "availableReplicas"}) == want &&
           int_at(d, {"status", "replicas"}) == want;
  });

  // The Deployment's first scale-up, from nothing.
  json labels = {{"app", "web"}};
  json deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "web"}, {"namespace", app_ns}}},
      {"spec",
       {{"replicas", f.replicas},
        {"selector", {{"matchLabels", labels}}},
        {"template", {{"metadata", {{"labels", labels}}}, {"spec", pod_spec("web:1")}}}}}};
  deployment_done.arm();
  auto start = Clock::now();
  check(admin.create(res::kDeployments.in(app_ns), deployment), "creating the Deployment");
  double initial_secs = seconds_between(start, deployment_done.wait(timeout, "the scale-up"));
  std::printf("# Deployment created: %d replicas available after %.2f s\n", f.replicas,
              initial_secs);
  std::fflush(stdout);

  std::vector<double> plain, rollout;
  for (int r = 0; r < f.repeats; ++r) {
    // Baseline: the same number of pods, created directly.
    const std::string pns = "plain-" + std::to_string(r);
    std::mutex mu;
    std::set<std::string> ready;
    const size_t want = f.replicas;
    Waiter pods_ready(admin, res::kPods.in(pns), [&](const client::ObjectPtr& o) {
      if (running_and_ready(*o)) ready.insert(at(*o, {"metadata", "name"}).get<std::string>());
      return ready.size() == want;
    });
    pods_ready.arm();
    start = Clock::now();
    parallel(f.replicas, 8, [&](int i) {
      json pod = {{"apiVersion", "v1"},
                  {"kind", "Pod"},
                  {"metadata", {{"name", "web-" + std::to_string(i)}, {"labels", labels}}},
                  {"spec", pod_spec("web:1")}};
      check(admin.create(res::kPods.in(pns), pod), "creating a pod");
    });
    plain.push_back(seconds_between(start, pods_ready.wait(timeout, "the plain pods")));

    // The rolling update: a new image.
    std::string image = "web:" + std::to_string(r + 2);
    json patch = {
        {"spec",
         {{"template",
           {{"spec", {{"containers", json::array({{{"name", "web"}, {"image", image}}})}}}}}}}};
    // The generation the patch will produce; it bumps it by one (the spec changes).
    client::ObjectPtr current =
        check(admin.get(res::kDeployments.in(app_ns), "web"), "reading the Deployment");
    generation = int_at(*current, {"metadata", "generation"}) + 1;
    deployment_done.arm();
    start = Clock::now();
    client::ObjectPtr updated = check(admin.patch(res::kDeployments.in(app_ns), "web",
                                                  client::PatchType::kStrategicMerge, patch.dump()),
                                      "updating the Deployment");
    if (int_at(*updated, {"metadata", "generation"}) != generation) {
      throw Failure("the patch did not produce generation " + std::to_string(generation.load()));
    }
    rollout.push_back(seconds_between(start, deployment_done.wait(timeout, "the rollout")));
    std::printf(
        "# run %d: %d plain pods Running and Ready in %.2f s; rolling update to %s "
        "complete in %.2f s\n",
        r + 1, f.replicas, plain.back(), image.c_str(), rollout.back());
    std::fflush(stdout);
  }
  simnodes::SimNodes::Stats ns_stats = nodes.stats();
  std::printf("# simulated nodes: %llu pods started, %llu finalized, %llu write failures\n",
              static_cast<unsigned long long>(ns_stats.pods_started),
              static_cast<unsigned long long>(ns_stats.pods_finalized),
              static_cast<unsigned long long>(ns_stats.write_failures));

  nodes.stop();
  sched.stop();
  scheduler_informers.stop();
  manager.stop();

  double p = median(plain), u = median(rollout);
  std::printf("\n== results (%d replicas, %d simulated nodes, medians of %d runs)\n", f.replicas,
              f.nodes, f.repeats);
  std::printf("%-52s %10s\n", "figure", "seconds");
  std::printf("%-52s %10.2f\n", "plain pods: create all, until all Running+Ready", p);
  std::printf("%-52s %10.2f\n", "rolling update: new image, until rollout complete", u);
  std::printf("%-52s %10.2f\n", "Deployment scale-up from 0 (once)", initial_secs);
  std::printf("%-52s %10.2f\n", "ratio rolling update / plain pods", p > 0 ? u / p : 0.0);
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
    std::fprintf(stderr, "bench_rollout: %s\n", e.what());
    return 1;
  }
}
