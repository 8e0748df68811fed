// Scheduling throughput through the real API, against a same-run baseline: a trivial binder
// that assigns pods round-robin with the same number of bindings in flight. Skipped unless
// SKIFF_SCHED_API_PODS is set (e.g. SKIFF_SCHED_API_PODS=20000 SKIFF_SCHED_API_NODES=5000);
// meaningful in optimized builds only.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "scheduler/scheduler.h"
#include "scheduler_test_util.h"
#include "testing/test_server.h"

namespace skiff::scheduler {
namespace {

using nlohmann::json;
using testing::NodeBuilder;
using testing::PodBuilder;
namespace res = client::resources;

int env_int(const char* name, int def) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : def;
}

// Runs fn(i) for i in [0, n) on `threads` threads.
void parallel(int n, int threads, const std::function<void(int)>& fn) {
  std::atomic<int> next{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (int i = next++; i < n; i = next++) fn(i);
    });
  }
  for (auto& t : ts) t.join();
}

void create_pods(client::Client& api, const std::string& ns, const std::string& scheduler, int n) {
  parallel(n, 8, [&](int i) {
    json p =
        PodBuilder("p" + std::to_string(i), ns).cpu("100m").memory("64Mi").scheduler(scheduler);
    p["metadata"].erase("uid");
    p.erase("status");
    auto r = api.create(res::kPods.in(ns), p);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  });
}

TEST(ApiThroughputTest, SchedulerAgainstRoundRobinBinder) {
  const int pods = env_int("SKIFF_SCHED_API_PODS", 0);
  const int nodes = env_int("SKIFF_SCHED_API_NODES", 1000);
  const int workers = env_int("SKIFF_SCHED_API_WORKERS", 16);
  if (pods == 0) GTEST_SKIP() << "set SKIFF_SCHED_API_PODS to run";
  skiff::testing::TestServer server;
  ASSERT_TRUE(server.ok());
  auto api = server.client("skiff-scheduler");
  parallel(nodes, 8, [&](int i) {
    json n = NodeBuilder("node-" + std::to_string(i)).cpu("64").memory("256Gi").pods(500);
    json status = n["status"];
    n.erase("status");
    auto c = api->create(res::kNodes, n);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    json w = **c;
    w["status"] = status;
    ASSERT_TRUE(api->update(res::kNodes, w, "status").ok());
  });
  for (const char* ns : {"baseline", "scheduled"}) {
    json ns_obj = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}};
    auto r = api->create(res::kNamespaces, ns_obj);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }

  // Baseline: list the pending pods through an informer, bind them round-robin.
  create_pods(*api, "baseline", "round-robin", pods);
  double baseline_secs;
  {
    auto start = std::chrono::steady_clock::now();
    client::Informer inf(*api, res::kPods.in("baseline"));
    inf.start();
    ASSERT_TRUE(inf.wait_for_sync(std::chrono::minutes(5)));
    auto pending = inf.list();
    parallel(static_cast<int>(pending.size()), workers, [&](int i) {
      const json& p = *pending[i];
      json body = {{"apiVersion", "v1"},
                   {"kind", "Binding"},
                   {"metadata", {{"name", p["metadata"]["name"]}, {"namespace", "baseline"}}},
                   {"target", {{"kind", "Node"}, {"name", "node-" + std::to_string(i % nodes)}}}};
      auto r = api->create_subresource(res::kPods.in("baseline"), p["metadata"]["name"], "binding",
                                       body);
      ASSERT_TRUE(r.ok()) << r.status().to_string();
    });
    baseline_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  create_pods(*api, "scheduled", "default-scheduler", pods);
  double secs;
  double synced_secs = -1;
  {
    client::InformerFactory informers(*api);
    SchedulerOptions o;
    o.bind_workers = workers;
    auto start = std::chrono::steady_clock::now();
    Scheduler s(*api, informers, o);
    s.start();
    // The baseline pods are bound already; wait for ours.
    ASSERT_TRUE(skiff::testing::eventually(
        [&] {
          SchedulerStats st = s.stats();
          if (st.synced && synced_secs < 0) {
            synced_secs =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          }
          return st.scheduled >= static_cast<uint64_t>(pods);
        },
        std::chrono::minutes(10)));
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(s.stats().bind_failures, 0u);
  }
  std::printf(
      "%d pods, %d nodes, %d bindings in flight: round-robin binder %.2f s (%.0f pods/s), "
      "scheduler %.2f s (%.0f pods/s; informers synced after %.2f s), ratio %.2f\n",
      pods, nodes, workers, baseline_secs, pods / baseline_secs, secs, pods / secs, synced_secs,
      baseline_secs / secs);
}

}  // namespace
}  // namespace skiff::scheduler
