// The pure core at benchmark scale: 5,000 nodes, pods scheduled and assumed one after another.
// Prints the rate (meaningful in optimized builds only) and checks the placements are sound.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "scheduler/algorithm.h"
#include "scheduler_test_util.h"

namespace skiff::scheduler {
namespace {

using testing::NodeBuilder;
using testing::PodBuilder;

void run(ScoringStrategy strategy, int nodes, int pods) {
  Cluster cluster;
  for (int i = 0; i < nodes; ++i) {
    cluster.upsert_node(
        parse_node(NodeBuilder("node-" + std::to_string(i))
                       .cpu("32")
                       .memory("128Gi")
                       .label("topology.kubernetes.io/zone", "zone-" + std::to_string(i % 3)),
                   cluster.interner()));
  }
  std::vector<std::shared_ptr<const PodInfo>> infos;
  infos.reserve(pods);
  for (int i = 0; i < pods; ++i) {
    infos.push_back(parse_pod(PodBuilder("p" + std::to_string(i))
                                  .cpu("100m")
                                  .memory("128Mi")
                                  .label("app", "app-" + std::to_string(i % 50)),
                              cluster.interner()));
  }
  Profile profile = default_profiles(strategy)[strategy == ScoringStrategy::kMostAllocated];
  ScheduleState state(1);
  auto start = std::chrono::steady_clock::now();
  for (const auto& p : infos) {
    auto r = schedule_one(cluster, *p, profile, state);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    cluster.assume(p, r->node_name);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: %d pods over %d nodes in %.3f s: %.0f pods/s\n", scoring_strategy_name(strategy),
              pods, nodes, secs, pods / secs);
  EXPECT_EQ(cluster.num_pods(), static_cast<size_t>(pods));
  for (size_t i = 0; i < cluster.num_nodes(); ++i) {
    EXPECT_LE(cluster.node_at(i).requested.milli_cpu, 32000);
  }
}

int pods_to_run() {
  const char* env = std::getenv("SKIFF_SCHED_THROUGHPUT_PODS");
  return env ? std::atoi(env) : 2000;
}

TEST(ThroughputTest, LeastAllocatedOver5000Nodes) {
  run(ScoringStrategy::kLeastAllocated, 5000, pods_to_run());
}

TEST(ThroughputTest, MostAllocatedOver5000Nodes) {
  run(ScoringStrategy::kMostAllocated, 5000, pods_to_run());
}

}  // namespace
}  // namespace skiff::scheduler
