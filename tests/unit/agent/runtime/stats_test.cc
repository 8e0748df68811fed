#include "agent/runtime/stats.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace skiff::agent::runtime {
namespace {

// cgroup files laid out in a temporary directory, as the kernel shows them.
class CgroupStatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-cg-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(root_ + rel).parent_path());
    std::ofstream(root_ + rel) << text;
  }
  std::string root_;
};

TEST_F(CgroupStatsTest, CgroupV1) {
  write("/cpuacct/pod/c1/cpuacct.usage", "123456789\n");
  write("/memory/pod/c1/memory.usage_in_bytes", "10485760\n");
  write("/memory/pod/c1/memory.stat",
        "cache 4096\ninactive_file 999\ntotal_cache 4096\ntotal_inactive_file 1048576\n");
  write("/memory/pod/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  EXPECT_FALSE(is_cgroup_v2(root_));
  auto s = read_cgroup_stats(root_, "/pod/c1");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->cpu_usage_nanos, 123456789u);
  EXPECT_EQ(s->memory_usage_bytes, 10485760u);
  EXPECT_EQ(s->memory_working_set_bytes, 10485760u - 1048576u);
  auto oom = read_oom_kill_count(root_, "/pod/c1");
  ASSERT_TRUE(oom.ok());
  EXPECT_EQ(*oom, 2u);
  EXPECT_TRUE(read_cgroup_stats(root_, "/pod/none").status().is_not_found());
  EXPECT_TRUE(read_oom_kill_count(root_, "/pod/none").status().is_not_found());
}

TEST_F(CgroupStatsTest, CgroupV2) {
  write("/cgroup.controllers", "cpu memory pids\n");
  write("/pod/c1/cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n");
  write("/pod/c1/memory.current", "8192000\n");
  write("/pod/c1/memory.stat", "anon 100\nfile 200\ninactive_file 192000\nactive_file 8\n");
  write("/pod/c1/memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n");
  EXPECT_TRUE(is_cgroup_v2(root_));
  auto s = read_cgroup_stats(root_, "/pod/c1");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->cpu_usage_nanos, 2500000u);
  EXPECT_EQ(s->memory_usage_bytes, 8192000u);
  EXPECT_EQ(s->memory_working_set_bytes, 8000000u);
  auto oom = read_oom_kill_count(root_, "/pod/c1");
  ASSERT_TRUE(oom.ok());
  EXPECT_EQ(*oom, 1u);
}

TEST_F(CgroupStatsTest, WorkingSetNeverGoesNegative) {
  write("/cpuacct/c/cpuacct.usage", "1\n");
  write("/memory/c/memory.usage_in_bytes", "100\n");
  write("/memory/c/memory.stat", "total_inactive_file 4096\n");
  auto s = read_cgroup_stats(root_, "/c");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->memory_working_set_bytes, 0u);
}

}  // namespace
}  // namespace skiff::agent::runtime
