// The kubelet summary: node figures from a /proc written by the test (so that rates can be
// checked exactly), container figures from real containers (runc under conmon, busybox rootfs).
#include "agent/stats_summary.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "agent/agent_internal.h"
#include "agent/pod_cgroups.h"
#include "agent/runtime/runtime.h"

namespace skiff::agent {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

class StatsSummaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-stats-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::random_device rd;
    tag_ = std::to_string(rd() % 100000000);
    proc_ = dir_ + "/proc";
    fs::create_directories(proc_);
    write_proc(1000, 5000, 3600);
  }

  void TearDown() override {
    if (runtime_) {
      auto all = runtime_->list();
      if (all.ok()) {
        for (const auto& c : *all) EXPECT_TRUE(runtime_->remove(c.id).ok());
      }
      runtime_.reset();
      if (pod_cgroups_) {
        for (const auto& e : pod_cgroups_->list())
          EXPECT_TRUE(pod_cgroups_->remove(e.uid, true).ok());
        EXPECT_TRUE(pod_cgroups_->remove_root().ok());
      }
      // runc removes the containers' cgroups, not the parents it created for them.
      for (const auto& ctl : fs::directory_iterator("/sys/fs/cgroup")) {
        ::rmdir((ctl.path().string() + "/skiff-stats-test-" + tag_).c_str());
      }
      ::rmdir(("/sys/fs/cgroup/skiff-stats-test-" + tag_).c_str());
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // /proc/stat with `busy` user jiffies and `idle` idle jiffies; meminfo of 8 GiB with 3 GiB
  // free and 1 GiB inactive file pages; uptime in seconds.
  void write_proc(uint64_t busy, uint64_t idle, double uptime) {
    std::ofstream(proc_ + "/stat")
        << "cpu  " << busy << " 0 0 " << idle << " 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n";
    std::ofstream(proc_ + "/meminfo") << "MemTotal:        8388608 kB\n"
                                         "MemFree:         3145728 kB\n"
                                         "MemAvailable:    5000000 kB\n"
                                         "Inactive(file):  1048576 kB\n";
    std::ofstream(proc_ + "/uptime") << uptime << " 12345.00\n";
  }

  // A runtime on its own root (runc and conmon are required; skips otherwise).
  bool open_runtime() {
    if (::geteuid() != 0) return false;
    for (const char* bin : {"/usr/sbin/runc", "/usr/bin/conmon", "/bin/busybox"}) {
      if (::access(bin, X_OK) != 0) return false;
    }
    runtime::RuntimeOptions o;
    o.root_dir = dir_ + "/state";
    auto rt = runtime::ContainerRuntime::open(o);
    EXPECT_TRUE(rt.ok()) << rt.status().to_string();
    if (!rt.ok()) return false;
    runtime_ = std::move(*rt);
    rootfs_ = dir_ + "/image";
    for (const char* d : {"/bin", "/proc", "/sys", "/dev", "/tmp"})
      fs::create_directories(rootfs_ + d);
    fs::copy_file("/bin/busybox", rootfs_ + "/bin/busybox");
    fs::create_symlink("busybox", rootfs_ + "/bin/sh");
    fs::create_symlink("busybox", rootfs_ + "/bin/sleep");
    fs::create_symlink("busybox", rootfs_ + "/bin/dd");
    return true;
  }

  // Starts a container of pod `uid` as the agent names them.
  void start(const std::string& uid, const std::string& name, int attempt,
             std::vector<std::string> args) {
    runtime::ContainerConfig c;
    c.id = container_id(uid, name, attempt);
    c.rootfs.path = rootfs_;
    c.args = std::move(args);
    c.cgroup_parent = cgroup_parent_.empty() ? "/skiff-stats-test-" + tag_ : cgroup_parent_;
    c.log_path = dir_ + "/logs/" + c.id + ".log";
    c.network = runtime::NamespaceOption::host();
    Status s = runtime_->create(c);
    ASSERT_TRUE(s.ok()) << s.to_string();
    s = runtime_->start(c.id);
    ASSERT_TRUE(s.ok()) << s.to_string();
  }

  StatsSummaryOptions options(const Clock* clock) {
    StatsSummaryOptions o;
    o.node_name = "n1";
    o.proc_root = proc_;
    o.clock = clock;
    return o;
  }

  std::string dir_, tag_, proc_, rootfs_;
  std::string cgroup_parent_;  // when set, the containers' cgroup parent
  std::unique_ptr<runtime::ContainerRuntime> runtime_;
  std::unique_ptr<PodCgroups> pod_cgroups_;
};

TEST_F(StatsSummaryTest, NodeFiguresComeFromProc) {
  runtime::RuntimeOptions o;
  o.root_dir = dir_ + "/state";
  auto rt = runtime::ContainerRuntime::open(o);
  if (!rt.ok()) GTEST_SKIP() << "no runtime: " << rt.status().to_string();
  FakeClock clock(TimePoint(std::chrono::seconds(1'700'000'000)));
  StatsSummaryProvider provider(**rt, options(&clock));

  json s = provider.summary({});
  const json& node = s["node"];
  EXPECT_EQ(node["nodeName"], "n1");
  EXPECT_EQ(node["startTime"], format_rfc3339(clock.now() - std::chrono::seconds(3600)));
  const uint64_t ns_per_tick = 1'000'000'000ULL / ::sysconf(_SC_CLK_TCK);
  EXPECT_EQ(node["cpu"]["usageCoreNanoSeconds"], 1000 * ns_per_tick);
  // No earlier sample: the average since boot.
  EXPECT_EQ(node["cpu"]["usageNanoCores"], 1000 * ns_per_tick / 3600);
  EXPECT_EQ(node["cpu"]["time"], format_rfc3339(clock.now()));
  EXPECT_EQ(node["memory"]["usageBytes"], 5ULL << 30);       // total - free
  EXPECT_EQ(node["memory"]["workingSetBytes"], 4ULL << 30);  // minus inactive file
  EXPECT_EQ(node["memory"]["availableBytes"], 4ULL << 30);   // total - working set
  EXPECT_TRUE(s["pods"].is_array());
  EXPECT_TRUE(s["pods"].empty());

  // Two seconds later with one more CPU-second used: half a core.
  clock.advance(2s);
  write_proc(1000 + ::sysconf(_SC_CLK_TCK), 6000, 3602);
  s = provider.summary({});
  EXPECT_EQ(s["node"]["cpu"]["usageNanoCores"], 500'000'000u);

  // A call right after keeps the rate of the last full window instead of measuring over a
  // few milliseconds...
  clock.advance(10ms);
  write_proc(1000 + 3 * ::sysconf(_SC_CLK_TCK), 6000, 3602);
  s = provider.summary({});
  EXPECT_EQ(s["node"]["cpu"]["usageNanoCores"], 500'000'000u);
  // ...and the next full window measures from the last kept sample.
  clock.advance(990ms);
  s = provider.summary({});
  EXPECT_EQ(s["node"]["cpu"]["usageNanoCores"], 2'000'000'000u);
  EXPECT_EQ(provider.summary_json({}), provider.summary({}).dump());
}

TEST_F(StatsSummaryTest, MissingProcFilesGiveZerosNotErrors) {
  runtime::RuntimeOptions o;
  o.root_dir = dir_ + "/state";
  auto rt = runtime::ContainerRuntime::open(o);
  if (!rt.ok()) GTEST_SKIP() << "no runtime: " << rt.status().to_string();
  fs::remove_all(proc_);
  StatsSummaryProvider provider(**rt, options(nullptr));
  json s = provider.summary({});
  EXPECT_EQ(s["node"]["cpu"]["usageCoreNanoSeconds"], 0u);
  EXPECT_EQ(s["node"]["memory"]["workingSetBytes"], 0u);
  EXPECT_FALSE(s["node"].contains("startTime"));
}

TEST_F(StatsSummaryTest, RunningContainersOfListedPodsAreReportedWithTheirPod) {
  if (!open_runtime()) GTEST_SKIP() << "needs root, runc, conmon and busybox-static";
  const std::string busy_uid = "busy-" + tag_, idle_uid = "idle-" + tag_;
  const std::string other_uid = "other-" + tag_;
  start(busy_uid, "spin", 0, {"sh", "-c", "while :; do :; done"});
  start(busy_uid, "nap", 0, {"sleep", "600"});
  start(idle_uid, "nap", 0, {"sleep", "600"});
  start(other_uid, "nap", 0, {"sleep", "600"});  // not among the pods asked about

  StatsSummaryProvider provider(*runtime_, options(nullptr));
  std::vector<StatsPodRef> pods = {{"busy", "default", busy_uid},
                                   {"idle", "kube-system", idle_uid}};
  json s = provider.summary(pods);
  ASSERT_EQ(s["pods"].size(), 2u) << s.dump(2);

  // Let the busy loop run for a while; the second summary measures over that window.
  std::this_thread::sleep_for(1500ms);
  s = provider.summary(pods);
  ASSERT_EQ(s["pods"].size(), 2u) << s.dump(2);
  std::map<std::string, json> by_name;
  for (const auto& p : s["pods"]) by_name[p["podRef"]["name"].get<std::string>()] = p;
  ASSERT_TRUE(by_name.count("busy") && by_name.count("idle")) << s.dump(2);

  const json& busy = by_name["busy"];
  EXPECT_EQ(busy["podRef"]["namespace"], "default");
  EXPECT_EQ(busy["podRef"]["uid"], busy_uid);
  ASSERT_EQ(busy["containers"].size(), 2u);
  std::map<std::string, json> containers;
  for (const auto& c : busy["containers"]) containers[c["name"].get<std::string>()] = c;
  ASSERT_TRUE(containers.count("spin") && containers.count("nap"));
  // A busy loop uses a sizeable part of a core; sleep nearly none.
  EXPECT_GT(containers["spin"]["cpu"]["usageNanoCores"].get<uint64_t>(), 200'000'000u);
  EXPECT_LT(containers["nap"]["cpu"]["usageNanoCores"].get<uint64_t>(), 50'000'000u);
  EXPECT_GT(containers["spin"]["cpu"]["usageCoreNanoSeconds"].get<uint64_t>(), 0u);
  EXPECT_GT(containers["spin"]["memory"]["workingSetBytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(containers["spin"].contains("startTime"));
  // The pod's figures are its containers' sums.
  EXPECT_EQ(busy["cpu"]["usageNanoCores"].get<uint64_t>(),
            containers["spin"]["cpu"]["usageNanoCores"].get<uint64_t>() +
                containers["nap"]["cpu"]["usageNanoCores"].get<uint64_t>());
  EXPECT_EQ(busy["memory"]["workingSetBytes"].get<uint64_t>(),
            containers["spin"]["memory"]["workingSetBytes"].get<uint64_t>() +
                containers["nap"]["memory"]["workingSetBytes"].get<uint64_t>());
  EXPECT_EQ(by_name["idle"]["podRef"]["namespace"], "kube-system");
  EXPECT_EQ(by_name["idle"]["containers"].size(), 1u);
}

TEST_F(StatsSummaryTest, ExitedContainersAreLeftOutAndRestartsReportTheNewestAttempt) {
  if (!open_runtime()) GTEST_SKIP() << "needs root, runc, conmon and busybox-static";
  const std::string uid = "restart-" + tag_;
  start(uid, "app", 0, {"sh", "-c", "exit 3"});
  auto st = runtime_->wait(container_id(uid, "app", 0), 30s);
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  StatsSummaryProvider provider(*runtime_, options(nullptr));
  std::vector<StatsPodRef> pods = {{"restart", "default", uid}};
  json s = provider.summary(pods);
  EXPECT_TRUE(s["pods"].empty()) << s.dump(2);

  start(uid, "app", 1, {"sleep", "600"});
  s = provider.summary(pods);
  ASSERT_EQ(s["pods"].size(), 1u) << s.dump(2);
  ASSERT_EQ(s["pods"][0]["containers"].size(), 1u);
  EXPECT_EQ(s["pods"][0]["containers"][0]["name"], "app");
}

TEST_F(StatsSummaryTest, PodInAPodCgroupReportsThatCgroupsUsage) {
  if (!open_runtime()) GTEST_SKIP() << "needs root, runc, conmon and busybox-static";
  PodCgroupsOptions po;
  po.kubepods = "kubepods-stats-" + tag_;
  auto pc = PodCgroups::open(po);
  ASSERT_TRUE(pc.ok()) << pc.status().to_string();
  pod_cgroups_ = std::move(*pc);
  const std::string uid = "pc-" + tag_;
  auto parent = pod_cgroups_->ensure(PodResources{uid, runtime::QosClass::kBurstable, {}});
  ASSERT_TRUE(parent.ok()) << parent.status().to_string();
  cgroup_parent_ = *parent;
  // An earlier attempt burns CPU and is removed: its CPU time stays in the pod's cgroup.
  start(uid, "burn", 0, {"sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"});
  auto burnt = runtime_->wait(container_id(uid, "burn", 0), 60s);
  ASSERT_TRUE(burnt.ok()) << burnt.status().to_string();
  ASSERT_TRUE(runtime_->remove(container_id(uid, "burn", 0)).ok());
  auto pod_cpu = runtime::read_cgroup_stats("/sys/fs/cgroup", *parent);
  ASSERT_TRUE(pod_cpu.ok()) << pod_cpu.status().to_string();
  ASSERT_GT(pod_cpu->cpu_usage_nanos, 100'000'000u);

  start(uid, "app", 0, {"sh", "-c", "dd if=/dev/zero of=/tmp/f bs=1M count=8; sleep 600"});
  start(uid, "nap", 0, {"sleep", "600"});
  StatsSummaryProvider provider(*runtime_, options(nullptr));
  std::vector<StatsPodRef> pods = {{"pc", "default", uid}};
  json s = provider.summary(pods);
  ASSERT_EQ(s["pods"].size(), 1u) << s.dump(2);
  const json& pod = s["pods"][0];
  ASSERT_EQ(pod["containers"].size(), 2u);
  uint64_t containers_cpu = 0;
  for (const auto& c : pod["containers"]) {
    containers_cpu += c["cpu"]["usageCoreNanoSeconds"].get<uint64_t>();
  }
  // The pod's CPU time is its cgroup's: the removed attempt's included.
  EXPECT_GE(pod["cpu"]["usageCoreNanoSeconds"].get<uint64_t>(),
            containers_cpu + pod_cpu->cpu_usage_nanos);
  EXPECT_GT(pod["memory"]["usageBytes"].get<uint64_t>(), 0u);
}

TEST(StatsPodRefsTest, TakesNameNamespaceAndUidOfPods) {
  auto p1 = std::make_shared<const json>(
      json{{"metadata", {{"name", "a"}, {"namespace", "ns"}, {"uid", "u1"}}}});
  auto p2 = std::make_shared<const json>(json{{"metadata", {{"name", "b"}}}});
  auto refs = stats_pod_refs({p1, p2, nullptr});
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].name, "a");
  EXPECT_EQ(refs[0].ns, "ns");
  EXPECT_EQ(refs[0].uid, "u1");
}

}  // namespace
}  // namespace skiff::agent
