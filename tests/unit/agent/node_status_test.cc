// The Node's DiskPressure condition: the kubelet's default eviction thresholds for the node
// filesystem, its reasons and messages, kept transition times, and a real (tmpfs) filesystem
// filled past the threshold.
#include "agent/node_status.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "agent/agent.h"

namespace skiff::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

const json& condition(const json& conditions, const std::string& type) {
  for (const auto& c : conditions) {
    if (c.value("type", "") == type) return c;
  }
  static const json none;
  ADD_FAILURE() << "no " << type << " condition in " << conditions.dump();
  return none;
}

images::FilesystemStats stats(int64_t capacity, int64_t available, int64_t inodes = 0,
                              int64_t inodes_free = 0) {
  return images::FilesystemStats{capacity, available, inodes, inodes_free};
}

TEST(NodeStatusTest, DiskPressureBelowTenPercentAvailableOrFivePercentInodesFree) {
  EXPECT_FALSE(disk_pressure(stats(1000, 100)));  // exactly 10% available
  EXPECT_TRUE(disk_pressure(stats(1000, 99)));
  EXPECT_FALSE(disk_pressure(stats(1000, 900, 1000, 50)));  // exactly 5% inodes free
  EXPECT_TRUE(disk_pressure(stats(1000, 900, 1000, 49)));
  EXPECT_FALSE(disk_pressure(stats(1000, 900, 0, 0))) << "no fixed inode count";
  EXPECT_FALSE(disk_pressure(stats(0, 0))) << "an unknown filesystem";
}

TEST(NodeStatusTest, DiskPressureConditionHasTheKubeletsReasonAndMessage) {
  const TimePoint t1 = TimePoint(std::chrono::seconds(1700000000));
  NodeFacts facts;
  facts.name = "n1";
  json none = node_status(facts, nullptr, t1, NodePressure{});
  const json& calm = condition(none["conditions"], "DiskPressure");
  EXPECT_EQ(calm["status"], "False");
  EXPECT_EQ(calm["reason"], "KubeletHasNoDiskPressure");
  EXPECT_EQ(calm["message"], "kubelet has no disk pressure");
  EXPECT_EQ(node_status(facts, nullptr, t1), none) << "without pressure, as before";

  json node = {{"status", none}};
  const TimePoint t2 = t1 + 1min;
  json pressed = node_status(facts, &node, t2, NodePressure{.disk = true});
  const json& disk = condition(pressed["conditions"], "DiskPressure");
  EXPECT_EQ(disk["status"], "True");
  EXPECT_EQ(disk["reason"], "KubeletHasDiskPressure");
  EXPECT_EQ(disk["message"], "kubelet has disk pressure");
  EXPECT_EQ(disk["lastTransitionTime"], format_rfc3339(t2));
  EXPECT_EQ(disk["lastHeartbeatTime"], format_rfc3339(t2));
  // The others are unchanged, and the node stays Ready.
  EXPECT_EQ(condition(pressed["conditions"], "Ready")["status"], "True");
  EXPECT_EQ(condition(pressed["conditions"], "Ready")["lastTransitionTime"], format_rfc3339(t1));
  EXPECT_EQ(condition(pressed["conditions"], "MemoryPressure")["status"], "False");

  // Still under pressure a minute later: the transition time stays.
  node["status"] = pressed;
  const TimePoint t3 = t2 + 1min;
  json still = node_conditions(&node, t3, NodePressure{.disk = true});
  EXPECT_EQ(condition(still, "DiskPressure")["lastTransitionTime"], format_rfc3339(t2));
  EXPECT_EQ(condition(still, "DiskPressure")["lastHeartbeatTime"], format_rfc3339(t3));
  // Relieved: False again, from now.
  json relieved = node_conditions(&node, t3, NodePressure{});
  EXPECT_EQ(condition(relieved, "DiskPressure")["status"], "False");
  EXPECT_EQ(condition(relieved, "DiskPressure")["lastTransitionTime"], format_rfc3339(t3));
}

TEST(NodeStatusTest, AFilesystemFilledPastNinetyPercentHasDiskPressure) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  char tmpl[] = "/tmp/skiff-nodefs-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string mnt = tmpl;
  ASSERT_EQ(::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m"), 0) << std::strerror(errno);
  auto fill = [&](const std::string& name, size_t bytes) {
    std::ofstream f(mnt + "/" + name, std::ios::binary);
    f << std::string(bytes, 'x');
  };
  fill("a", 3 * 1024 * 1024);  // 75%
  EXPECT_FALSE(node_disk_pressure(mnt));
  fill("b", 700 * 1024);  // 92%
  EXPECT_TRUE(node_disk_pressure(mnt));
  fs::remove(mnt + "/b");
  EXPECT_FALSE(node_disk_pressure(mnt));
  EXPECT_FALSE(node_disk_pressure(mnt + "/missing")) << "unreadable: no pressure reported";
  ::umount2(mnt.c_str(), MNT_DETACH);
  ::rmdir(mnt.c_str());
}

TEST(NodeStatusTest, EvictionHardListSetsTheNodeFilesystemThresholds) {
  auto t = parse_eviction_hard("nodefs.available<5%,nodefs.inodesFree<2%");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->nodefs_available_percent, 5);
  EXPECT_EQ(t->nodefs_inodes_free_percent, 2);
  // imagefs lives on the same filesystem: the stricter threshold wins.
  t = parse_eviction_hard("nodefs.available<5%,imagefs.available<15%");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->nodefs_available_percent, 15);
  EXPECT_EQ(t->nodefs_inodes_free_percent, kNodefsInodesFreeMinPercent);
  t = parse_eviction_hard("nodefs.available<0%");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->nodefs_available_percent, 0);
  for (const char* bad : {"memory.available<100Mi", "nodefs.available<1Gi", "nodefs.available",
                          "nodefs.available<101%", "nodefs.available<x%"}) {
    auto r = parse_eviction_hard(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kBadRequest) << bad;
  }
}

TEST(NodeStatusTest, ThresholdsDecideDiskPressure) {
  images::FilesystemStats fs;
  fs.capacity_bytes = 1000;
  fs.available_bytes = 70;  // 7% free
  EXPECT_TRUE(disk_pressure(fs));
  EXPECT_FALSE(disk_pressure(fs, {.nodefs_available_percent = 5}));
  EXPECT_FALSE(disk_pressure(fs, {.nodefs_available_percent = 0, .nodefs_inodes_free_percent = 0}));
  fs.inodes = 100;
  fs.inodes_free = 1;
  EXPECT_TRUE(disk_pressure(fs, {.nodefs_available_percent = 0}));
  EXPECT_FALSE(disk_pressure(fs, {.nodefs_available_percent = 0, .nodefs_inodes_free_percent = 0}));
}

TEST(NodeStatusTest, DiskFlagsSetTheAgentOptions) {
  AgentOptions o;
  EXPECT_TRUE(parse_node_flag("--eviction-hard", "nodefs.available<3%", &o).ok());
  EXPECT_EQ(o.eviction_nodefs_available_percent, 3);
  EXPECT_TRUE(parse_node_flag("--image-gc-high-threshold", "100", &o).ok());
  EXPECT_EQ(o.image_gc_high_threshold_percent, 100);
  EXPECT_TRUE(parse_node_flag("--image-gc-low-threshold", "50", &o).ok());
  EXPECT_EQ(o.image_gc_low_threshold_percent, 50);
  EXPECT_EQ(parse_node_flag("--image-gc-low-threshold", "150", &o).code(), StatusCode::kBadRequest);
  EXPECT_EQ(parse_node_flag("--image-gc-low-threshold", "5x", &o).code(), StatusCode::kBadRequest);
  EXPECT_EQ(parse_node_flag("--eviction-hard", "pid.available<5%", &o).code(),
            StatusCode::kBadRequest);
  EXPECT_EQ(o.image_gc_low_threshold_percent, 50);
}

TEST(NodeStatusTest, PodMaxPidsFlagSetsTheLimit) {
  AgentOptions o;
  EXPECT_EQ(o.pod_max_pids, 0);  // unlimited, as the kubelet's default
  EXPECT_TRUE(parse_node_flag("--pod-max-pids", "1024", &o).ok());
  EXPECT_EQ(o.pod_max_pids, 1024);
  EXPECT_TRUE(parse_node_flag("--pod-max-pids", "-1", &o).ok());
  EXPECT_EQ(o.pod_max_pids, -1);
  for (const char* bad : {"", "ten", "12x", "-5", "99999999999999999999"}) {
    Status s = parse_node_flag("--pod-max-pids", bad, &o);
    EXPECT_EQ(s.code(), StatusCode::kBadRequest) << bad;
  }
  EXPECT_EQ(o.pod_max_pids, -1);
}

}  // namespace
}  // namespace skiff::agent
