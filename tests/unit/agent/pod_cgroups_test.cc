// Pod cgroups: the kubelet's values (pure functions), then the real cgroup file systems of this
// host (cgroup v1 hierarchies, and the v2 tree where one is mounted), then real containers (runc
// under conmon) placed in a pod's cgroup. Needs root, runc, conmon and busybox-static
// (scripts/install-deps.sh); skips with the reason otherwise. Every run uses its own top-level
// cgroup name, so runs never share cgroups.
#include "agent/pod_cgroups.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "agent/runtime/runtime.h"
#include "agent/runtime/stats.h"
#include "unit/agent/runtime/busybox_rootfs.h"

namespace skiff::agent {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using runtime::QosClass;
using namespace std::chrono_literals;

constexpr int64_t kMi = 1024 * 1024;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trimmed(const std::string& path) {
  std::string s = read_file(path);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string random_tag() {
  std::random_device rd;
  return std::to_string(rd() % 100000000);
}

PodContainerResources container(int64_t cpu_req, int64_t cpu_lim, int64_t mem_req, int64_t mem_lim,
                                bool init = false) {
  PodContainerResources c;
  c.init = init;
  c.cpu_request_milli = cpu_req;
  c.cpu_limit_milli = cpu_lim;
  c.memory_request_bytes = mem_req;
  c.memory_limit_bytes = mem_lim;
  return c;
}

// --- The kubelet's values ---------------------------------------------------------------------

TEST(PodCgroupLimitsTest, GuaranteedPodGetsSharesQuotaAndMemoryFromTheSums) {
  PodResources pod{
      "u1",
      QosClass::kGuaranteed,
      {container(500, 500, 64 * kMi, 64 * kMi), container(250, 250, 32 * kMi, 32 * kMi)}};
  auto l = pod_cgroup_limits(pod);
  EXPECT_EQ(l.cpu_shares, 768u);  // 750m * 1024 / 1000
  EXPECT_EQ(l.cpu_quota_us, 75000);
  EXPECT_EQ(l.cpu_period_us, 100000u);
  EXPECT_EQ(l.memory_limit_bytes, 96 * kMi);
}

TEST(PodCgroupLimitsTest, BurstablePodGetsQuotaAndMemoryOnlyWhenEveryContainerHasLimits) {
  PodResources pod{"u1",
                   QosClass::kBurstable,
                   {container(100, 1000, 0, 128 * kMi), container(200, 0, 16 * kMi, 0)}};
  auto l = pod_cgroup_limits(pod);
  EXPECT_EQ(l.cpu_shares, 307u);  // 300m
  EXPECT_EQ(l.cpu_quota_us, -1);  // the second container has no CPU limit
  EXPECT_EQ(l.memory_limit_bytes, -1);

  pod.containers[1].cpu_limit_milli = 500;
  pod.containers[1].memory_limit_bytes = 32 * kMi;
  l = pod_cgroup_limits(pod);
  EXPECT_EQ(l.cpu_quota_us, 150000);
  EXPECT_EQ(l.memory_limit_bytes, 160 * kMi);

  // Tiny requests still get the minimum of 2 shares and 1 ms of quota.
  PodResources tiny{"u2", QosClass::kBurstable, {container(1, 1, 0, 0)}};
  l = pod_cgroup_limits(tiny);
  EXPECT_EQ(l.cpu_shares, 2u);
  EXPECT_EQ(l.cpu_quota_us, 1000);
}

TEST(PodCgroupLimitsTest, BestEffortPodGetsTwoSharesAndNoLimits) {
  PodResources pod{"u1", QosClass::kBestEffort, {container(0, 0, 0, 0)}};
  auto l = pod_cgroup_limits(pod);
  EXPECT_EQ(l.cpu_shares, 2u);
  EXPECT_EQ(l.cpu_quota_us, -1);
  EXPECT_EQ(l.memory_limit_bytes, -1);
}

TEST(PodCgroupLimitsTest, InitContainersCountAsTheLargestAndOverheadIsAdded) {
  PodResources pod{
      "u1",
      QosClass::kGuaranteed,
      {container(2000, 2000, 256 * kMi, 256 * kMi, true), container(500, 500, 64 * kMi, 64 * kMi)}};
  auto l = pod_cgroup_limits(pod);
  EXPECT_EQ(l.cpu_shares, 2048u);  // the init container's 2 CPUs exceed the 500m
  EXPECT_EQ(l.cpu_quota_us, 200000);
  EXPECT_EQ(l.memory_limit_bytes, 256 * kMi);

  pod.overhead_cpu_milli = 250;
  pod.overhead_memory_bytes = 16 * kMi;
  l = pod_cgroup_limits(pod);
  EXPECT_EQ(l.cpu_shares, 2304u);
  EXPECT_EQ(l.cpu_quota_us, 225000);
  EXPECT_EQ(l.memory_limit_bytes, 272 * kMi);
}

TEST(PodCgroupLimitsTest, SharesConvertToCgroupV2WeightAsRuncDoes) {
  EXPECT_EQ(cpu_shares_to_weight(2), 1u);
  EXPECT_EQ(cpu_shares_to_weight(1024), 39u);
  EXPECT_EQ(cpu_shares_to_weight(262144), 10000u);
  EXPECT_EQ(cpu_shares_to_weight(0), 0u);
}

json pod_json(const std::string& uid, json containers) {
  return {{"metadata", {{"name", "p"}, {"namespace", "default"}, {"uid", uid}}},
          {"spec", {{"containers", std::move(containers)}}}};
}

TEST(PodResourcesTest, QosClassIsComputedAsTheApiServerDoes) {
  EXPECT_EQ(pod_qos_class(pod_json("u", json::array({{{"name", "a"}}}))), QosClass::kBestEffort);
  // Limits only: requests default to them, so the pod is Guaranteed.
  json limits = {{"limits", {{"cpu", "500m"}, {"memory", "64Mi"}}}};
  EXPECT_EQ(pod_qos_class(pod_json("u", json::array({{{"name", "a"}, {"resources", limits}}}))),
            QosClass::kGuaranteed);
  json lower = {{"limits", {{"cpu", "500m"}, {"memory", "64Mi"}}},
                {"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}};
  EXPECT_EQ(pod_qos_class(pod_json("u", json::array({{{"name", "a"}, {"resources", lower}}}))),
            QosClass::kBurstable);
  // One container without limits makes the pod Burstable.
  EXPECT_EQ(pod_qos_class(pod_json(
                "u", json::array({{{"name", "a"}, {"resources", limits}}, {{"name", "b"}}}))),
            QosClass::kBurstable);
}

TEST(PodResourcesTest, FromJsonReadsContainersInitContainersStatusAndOverhead) {
  json pod = pod_json(
      "1234-abcd", json::array({{{"name", "a"},
                                 {"resources", {{"limits", {{"cpu", "1"}, {"memory", "1Gi"}}}}}}}));
  pod["spec"]["initContainers"] = json::array(
      {{{"name", "i"}, {"resources", {{"requests", {{"cpu", "2"}}}}}},
       {{"name", "s"}, {"restartPolicy", "Always"}, {"resources", {{"limits", {{"cpu", "1"}}}}}}});
  pod["spec"]["overhead"] = {{"cpu", "100m"}, {"memory", "10Mi"}};
  pod["status"] = {{"qosClass", "Burstable"}};
  auto r = pod_resources_from_json(pod);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->uid, "1234-abcd");
  EXPECT_EQ(r->qos, QosClass::kBurstable);  // status wins
  ASSERT_EQ(r->containers.size(), 3u);
  EXPECT_EQ(r->containers[0].cpu_request_milli, 1000);  // defaulted from the limit
  EXPECT_EQ(r->containers[0].memory_limit_bytes, 1024 * kMi);
  EXPECT_TRUE(r->containers[1].init);
  EXPECT_EQ(r->containers[1].cpu_request_milli, 2000);
  EXPECT_FALSE(r->containers[2].init);  // a sidecar runs with the others
  EXPECT_EQ(r->overhead_cpu_milli, 100);
  EXPECT_EQ(r->overhead_memory_bytes, 10 * kMi);

  EXPECT_EQ(pod_resources_from_json(pod_json("../etc", json::array())).status().code(),
            StatusCode::kInvalid);
  json bad =
      pod_json("u", json::array({{{"name", "a"}, {"resources", {{"limits", {{"cpu", "lots"}}}}}}}));
  EXPECT_EQ(pod_resources_from_json(bad).status().code(), StatusCode::kInvalid);
}

TEST(PodCgroupsNameTest, AgentsWithTheirOwnBridgeGetTheirOwnTopLevelCgroup) {
  EXPECT_EQ(kubepods_cgroup_name("", "skiff0"), "kubepods");
  EXPECT_EQ(kubepods_cgroup_name("", ""), "kubepods");
  EXPECT_EQ(kubepods_cgroup_name("", "sk1234"), "kubepods-sk1234");
  EXPECT_EQ(kubepods_cgroup_name("mypods", "sk1234"), "mypods");
}

// --- The host's cgroup file systems -----------------------------------------------------------

class PodCgroupsHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
    if (!fs::exists("/sys/fs/cgroup/cgroup.procs") && !fs::exists("/sys/fs/cgroup/memory")) {
      GTEST_SKIP() << "no cgroup file system at /sys/fs/cgroup";
    }
    tag_ = random_tag();
    name_ = "kubepods-test-" + tag_;
  }

  void TearDown() override {
    for (auto* pc : {&pc_, &v2_}) {
      if (!*pc) continue;
      for (const auto& e : (*pc)->list()) (void)(*pc)->remove(e.uid, true);
      Status s = (*pc)->remove_root();
      EXPECT_TRUE(s.ok()) << s.to_string();
    }
    if (!state_.empty()) {
      std::error_code ec;
      fs::remove_all(state_, ec);
    }
  }

  std::unique_ptr<PodCgroups> open(const std::string& root = "/sys/fs/cgroup") {
    PodCgroupsOptions o;
    o.cgroup_root = root;
    o.kubepods = name_;
    auto pc = PodCgroups::open(o);
    EXPECT_TRUE(pc.ok()) << pc.status().to_string();
    return pc.ok() ? std::move(*pc) : nullptr;
  }

  // Where no hierarchy holds anything of this run's top-level cgroup.
  bool nothing_left(const PodCgroups& pc) {
    for (const auto& h : pc.hierarchies()) {
      if (fs::exists(h + "/" + name_)) return false;
    }
    return true;
  }

  std::string tag_, name_, state_;
  std::unique_ptr<PodCgroups> pc_, v2_;
};

TEST_F(PodCgroupsHostTest, CreatesPodCgroupsInEveryHierarchyWithTheKubeletValues) {
  pc_ = open();
  ASSERT_TRUE(pc_);
  if (pc_->cgroup_v2()) GTEST_SKIP() << "the host runs cgroup v2; the v2 test covers it";
  // Every hierarchy runc puts containers in.
  std::vector<std::string> names;
  for (const auto& h : pc_->hierarchies()) names.push_back(fs::path(h).filename());
  for (const char* ctl : {"cpu", "cpuacct", "memory", "pids", "cpuset", "devices", "freezer"}) {
    bool found = std::any_of(names.begin(), names.end(), [&](const std::string& n) {
      return n == ctl || n.find(std::string(ctl) + ",") == 0 ||
             n.find("," + std::string(ctl)) != std::string::npos;
    });
    EXPECT_TRUE(found) << ctl;
  }

  PodResources g{"g-" + tag_, QosClass::kGuaranteed, {container(1500, 1500, 96 * kMi, 96 * kMi)}};
  PodResources b{"b-" + tag_,
                 QosClass::kBurstable,
                 {container(250, 500, 16 * kMi, 0), container(250, 0, 0, 0)}};
  PodResources be{"be-" + tag_, QosClass::kBestEffort, {container(0, 0, 0, 0)}};
  auto gp = pc_->ensure(g);
  auto bp = pc_->ensure(b);
  auto bep = pc_->ensure(be);
  ASSERT_TRUE(gp.ok()) << gp.status().to_string();
  ASSERT_TRUE(bp.ok()) << bp.status().to_string();
  ASSERT_TRUE(bep.ok()) << bep.status().to_string();
  EXPECT_EQ(*gp, "/" + name_ + "/podg-" + tag_);
  EXPECT_EQ(*bp, "/" + name_ + "/burstable/podb-" + tag_);
  EXPECT_EQ(*bep, "/" + name_ + "/besteffort/podbe-" + tag_);
  for (const auto& h : pc_->hierarchies()) {
    for (const auto& p : {*gp, *bp, *bep}) EXPECT_TRUE(fs::is_directory(h + p)) << h + p;
  }
  const std::string cpu = "/sys/fs/cgroup/cpu", mem = "/sys/fs/cgroup/memory";
  EXPECT_EQ(trimmed(cpu + *gp + "/cpu.shares"), "1536");
  EXPECT_EQ(trimmed(cpu + *gp + "/cpu.cfs_quota_us"), "150000");
  EXPECT_EQ(trimmed(cpu + *gp + "/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(trimmed(mem + *gp + "/memory.limit_in_bytes"), std::to_string(96 * kMi));
  EXPECT_EQ(trimmed(cpu + *bp + "/cpu.shares"), "512");
  EXPECT_EQ(trimmed(cpu + *bp + "/cpu.cfs_quota_us"), "-1");
  EXPECT_NE(trimmed(mem + *bp + "/memory.limit_in_bytes"), std::to_string(16 * kMi));
  EXPECT_EQ(trimmed(cpu + *bep + "/cpu.shares"), "2");
  // The QoS levels: BestEffort 2 shares, Burstable the sum of its pods'.
  EXPECT_EQ(trimmed(cpu + "/" + name_ + "/besteffort/cpu.shares"), "2");
  EXPECT_EQ(trimmed(cpu + "/" + name_ + "/burstable/cpu.shares"), "512");
  // A new cpuset has its parent's CPUs, so containers can join it.
  EXPECT_EQ(trimmed("/sys/fs/cgroup/cpuset" + *bp + "/cpuset.cpus"),
            trimmed("/sys/fs/cgroup/cpuset/cpuset.cpus"));

  // Ensuring again is harmless; a pod's values follow its resources.
  g.containers[0].memory_limit_bytes = 128 * kMi;
  ASSERT_TRUE(pc_->ensure(g).ok());
  EXPECT_EQ(trimmed(mem + *gp + "/memory.limit_in_bytes"), std::to_string(128 * kMi));

  auto listed = pc_->list();
  ASSERT_EQ(listed.size(), 3u);
  std::map<std::string, PodCgroupEntry> by_uid;
  for (const auto& e : listed) by_uid[e.uid] = e;
  EXPECT_EQ(by_uid["g-" + tag_].qos, QosClass::kGuaranteed);
  EXPECT_EQ(by_uid["b-" + tag_].path, *bp);
  EXPECT_EQ(by_uid["be-" + tag_].qos, QosClass::kBestEffort);

  // The top level stays while pods are under it.
  EXPECT_EQ(pc_->remove_root().code(), StatusCode::kUnavailable);
  for (const auto& e : listed) {
    Status s = pc_->remove(e.uid, false);
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  EXPECT_TRUE(pc_->list().empty());
  EXPECT_EQ(trimmed(cpu + "/" + name_ + "/burstable/cpu.shares"), "2");
  EXPECT_TRUE(pc_->remove("b-" + tag_, false).ok());  // already gone: fine
  EXPECT_TRUE(pc_->remove_root().ok());
  EXPECT_TRUE(nothing_left(*pc_));
}

// A child process standing in for a pod's container: it sleeps in the pod cgroup.
pid_t spawn_into(const PodCgroups& pc, const std::string& path) {
  int ready[2];
  if (::pipe(ready) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    char c;
    (void)!::read(ready[0], &c, 1);
    ::execl("/bin/sleep", "sleep", "600", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (const auto& h : pc.hierarchies()) {
    std::ofstream(h + path + "/cgroup.procs") << pid;
  }
  (void)!::write(ready[1], "x", 1);
  ::close(ready[0]);
  ::close(ready[1]);
  return pid;
}

TEST_F(PodCgroupsHostTest, RemoveReportsBusyWhileProcessesRunAndKillsThemWhenAsked) {
  pc_ = open();
  ASSERT_TRUE(pc_);
  PodResources pod{"p-" + tag_, QosClass::kBurstable, {container(100, 0, 0, 0)}};
  auto path = pc_->ensure(pod);
  ASSERT_TRUE(path.ok()) << path.status().to_string();
  ASSERT_EQ(::mkdir(("/sys/fs/cgroup/memory" + *path + "/leftover").c_str(), 0755), 0);
  pid_t pid = spawn_into(*pc_, *path);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(pc_->processes(pod.uid), std::vector<int>{pid});

  Status s = pc_->remove(pod.uid, false);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.to_string();
  EXPECT_EQ(pc_->list().size(), 1u);
  EXPECT_EQ(::kill(pid, 0), 0);  // untouched

  // The reaper runs beside: a killed child is a zombie until its parent waits for it, and a
  // zombie no longer holds its cgroup.
  std::thread reaper([pid] { ::waitpid(pid, nullptr, 0); });
  s = pc_->remove(pod.uid, true);
  reaper.join();
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(pc_->list().empty());
  for (const auto& h : pc_->hierarchies()) EXPECT_FALSE(fs::exists(h + *path)) << h + *path;
}

TEST_F(PodCgroupsHostTest, RecordsItsNameForCleanupAndRejectsBadNames) {
  state_ = "/tmp/skiff-podcg-" + tag_;
  PodCgroupsOptions o;
  o.kubepods = name_;
  o.state_dir = state_;
  auto pc = PodCgroups::open(o);
  ASSERT_TRUE(pc.ok()) << pc.status().to_string();
  pc_ = std::move(*pc);
  auto rec = recorded_pod_cgroups(state_);
  ASSERT_TRUE(rec.ok()) << rec.status().to_string();
  EXPECT_EQ(rec->kubepods, name_);
  EXPECT_EQ(rec->cgroup_root, "/sys/fs/cgroup");
  EXPECT_TRUE(pc_->remove_root().ok());
  EXPECT_TRUE(recorded_pod_cgroups(state_).status().is_not_found());
  EXPECT_TRUE(nothing_left(*pc_));

  // A teardown removes what was recorded, processes included.
  pc = PodCgroups::open(o);
  ASSERT_TRUE(pc.ok());
  pc_ = std::move(*pc);
  auto path = pc_->ensure(PodResources{"t-" + tag_, QosClass::kBestEffort, {}});
  ASSERT_TRUE(path.ok());
  pid_t pid = spawn_into(*pc_, *path);
  ASSERT_GT(pid, 0);
  std::thread reaper([pid] { ::waitpid(pid, nullptr, 0); });
  Status s = remove_recorded_pod_cgroups(state_, true);
  reaper.join();
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(nothing_left(*pc_));
  EXPECT_TRUE(remove_recorded_pod_cgroups(state_, true).ok());  // nothing recorded any more

  for (const char* bad : {"", "../x", "a/b", ".hidden"}) {
    PodCgroupsOptions b;
    b.kubepods = bad;
    EXPECT_EQ(PodCgroups::open(b).status().code(), StatusCode::kInvalid) << bad;
  }
  PodResources pod{"../../escape", QosClass::kBestEffort, {}};
  EXPECT_EQ(pc_->ensure(pod).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(pc_->remove("a/b", true).code(), StatusCode::kInvalid);
}

// cgroup v2: the host's own tree when it runs v2, else the unified tree of a hybrid host
// (mounted beside the v1 hierarchies; it offers no cpu or memory controller then, so only the
// tree itself is checked here and the values in the next test).
TEST_F(PodCgroupsHostTest, CgroupV2TreeIsCreatedListedAndRemoved) {
  std::string root;
  for (const char* r : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    if (fs::exists(std::string(r) + "/cgroup.controllers")) {
      root = r;
      break;
    }
  }
  if (root.empty()) GTEST_SKIP() << "no cgroup v2 tree mounted";
  v2_ = open(root);
  ASSERT_TRUE(v2_);
  EXPECT_TRUE(v2_->cgroup_v2());
  ASSERT_EQ(v2_->hierarchies(), std::vector<std::string>{root});
  PodResources pod{
      "v2-" + tag_, QosClass::kGuaranteed, {container(1000, 1000, kMi * 64, kMi * 64)}};
  auto path = v2_->ensure(pod);
  ASSERT_TRUE(path.ok()) << path.status().to_string();
  EXPECT_TRUE(fs::is_directory(root + *path));
  std::string controllers = read_file(root + "/cgroup.controllers");
  if (controllers.find("memory") != std::string::npos) {
    EXPECT_EQ(trimmed(root + *path + "/memory.max"), std::to_string(64 * kMi));
  }
  if (controllers.find("cpu ") != std::string::npos ||
      controllers.find("cpu\n") != std::string::npos) {
    EXPECT_EQ(trimmed(root + *path + "/cpu.max"), "100000 100000");
    EXPECT_EQ(trimmed(root + *path + "/cpu.weight"), "39");
  }
  ASSERT_EQ(v2_->list().size(), 1u);
  EXPECT_TRUE(v2_->remove(pod.uid, false).ok());
  EXPECT_TRUE(v2_->remove_root().ok());
  EXPECT_FALSE(fs::exists(root + "/" + name_));
}

// The v2 control files a pod gets, in a directory laid out as a cgroup v2 root with cpu,
// memory and pids controllers (this host's v2 tree has those bound to v1).
TEST(PodCgroupsV2ValuesTest, WeightMaxAndSubtreeControlAreWritten) {
  std::string root = "/tmp/skiff-podcg-v2-" + random_tag();
  fs::create_directories(root);
  std::ofstream(root + "/cgroup.controllers") << "cpuset cpu io memory hugetlb pids rdma misc\n";
  std::ofstream(root + "/cgroup.procs") << "";
  PodCgroupsOptions o;
  o.cgroup_root = root;
  o.node_cpu_milli = 4000;
  o.node_memory_bytes = 8192 * kMi;
  auto pc = PodCgroups::open(o);
  ASSERT_TRUE(pc.ok()) << pc.status().to_string();
  EXPECT_TRUE((*pc)->cgroup_v2());
  EXPECT_EQ(trimmed(root + "/cgroup.subtree_control"), "+cpu +cpuset +memory +pids +io +hugetlb");
  EXPECT_EQ(trimmed(root + "/kubepods/cgroup.subtree_control"),
            "+cpu +cpuset +memory +pids +io +hugetlb");
  EXPECT_EQ(trimmed(root + "/kubepods/cpu.weight"), std::to_string(cpu_shares_to_weight(4096)));
  EXPECT_EQ(trimmed(root + "/kubepods/memory.max"), std::to_string(8192 * kMi));
  EXPECT_EQ(trimmed(root + "/kubepods/besteffort/cpu.weight"), "1");

  PodResources g{"g1", QosClass::kGuaranteed, {container(500, 500, 64 * kMi, 64 * kMi)}};
  auto gp = (*pc)->ensure(g);
  ASSERT_TRUE(gp.ok()) << gp.status().to_string();
  EXPECT_EQ(*gp, "/kubepods/podg1");
  EXPECT_EQ(trimmed(root + *gp + "/cpu.weight"), std::to_string(cpu_shares_to_weight(512)));
  EXPECT_EQ(trimmed(root + *gp + "/cpu.max"), "50000 100000");
  EXPECT_EQ(trimmed(root + *gp + "/memory.max"), std::to_string(64 * kMi));
  EXPECT_EQ(trimmed(root + *gp + "/cgroup.subtree_control"),
            "+cpu +cpuset +memory +pids +io +hugetlb");

  PodResources b{"b1", QosClass::kBurstable, {container(1000, 0, 0, 0), container(1000, 0, 0, 0)}};
  auto bp = (*pc)->ensure(b);
  ASSERT_TRUE(bp.ok());
  EXPECT_EQ(trimmed(root + *bp + "/cpu.max"), "max 100000");
  EXPECT_EQ(trimmed(root + *bp + "/memory.max"), "max");
  EXPECT_EQ(trimmed(root + "/kubepods/burstable/cpu.weight"),
            std::to_string(cpu_shares_to_weight(2048)));
  EXPECT_EQ((*pc)->list().size(), 2u);
  std::error_code ec;
  fs::remove_all(root, ec);
}

// --- Real containers in a pod's cgroup --------------------------------------------------------

class PodCgroupsContainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = testing::container_test_skip_reason();
    if (!skip_reason_.empty()) return;
    char tmpl[] = "/tmp/skiff-podcg-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    rootfs_ = dir_ + "/image";
    testing::make_busybox_rootfs(rootfs_, {"sh", "echo", "cat", "sleep", "dd", "true"});
  }

  static void TearDownTestSuite() {
    if (dir_.empty()) return;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    tag_ = random_tag();
    test_dir_ = dir_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(test_dir_);
    runtime::RuntimeOptions ro;
    ro.root_dir = test_dir_ + "/state";
    auto rt = runtime::ContainerRuntime::open(ro);
    ASSERT_TRUE(rt.ok()) << rt.status().to_string();
    runtime_ = std::move(*rt);
    PodCgroupsOptions o;
    o.kubepods = "kubepods-test-" + tag_;
    auto pc = PodCgroups::open(o);
    ASSERT_TRUE(pc.ok()) << pc.status().to_string();
    pc_ = std::move(*pc);
  }

  void TearDown() override {
    if (runtime_) {
      auto all = runtime_->list();
      if (all.ok()) {
        for (const auto& c : *all) EXPECT_TRUE(runtime_->remove(c.id).ok());
      }
    }
    if (pc_) {
      for (const auto& e : pc_->list()) EXPECT_TRUE(pc_->remove(e.uid, true).ok());
      EXPECT_TRUE(pc_->remove_root().ok());
    }
    std::error_code ec;
    if (!test_dir_.empty()) fs::remove_all(test_dir_, ec);
  }

  runtime::ContainerConfig config(const std::string& name, const std::string& parent,
                                  std::vector<std::string> args) {
    runtime::ContainerConfig c;
    c.id = name + "-" + tag_;
    c.rootfs.path = rootfs_;
    c.args = std::move(args);
    c.cgroup_parent = parent;
    c.log_path = test_dir_ + "/logs/" + name + ".log";
    c.network = runtime::NamespaceOption::host();
    return c;
  }

  runtime::ContainerStatus run_to_exit(const runtime::ContainerConfig& c) {
    Status s = runtime_->create(c);
    EXPECT_TRUE(s.ok()) << s.to_string();
    s = runtime_->start(c.id);
    EXPECT_TRUE(s.ok()) << s.to_string();
    auto st = runtime_->wait(c.id, 60s);
    EXPECT_TRUE(st.ok()) << st.status().to_string();
    return st.ok() ? *st : runtime::ContainerStatus{};
  }

  bool nothing_left() {
    for (const auto& h : pc_->hierarchies()) {
      if (fs::exists(h + pc_->root_path())) return false;
    }
    return true;
  }

  static inline std::string skip_reason_, dir_, rootfs_;
  std::string tag_, test_dir_;
  std::unique_ptr<runtime::ContainerRuntime> runtime_;
  std::unique_ptr<PodCgroups> pc_;
};

TEST_F(PodCgroupsContainerTest, ContainerRunsInThePodCgroupAndItsStatsAreRead) {
  json pod =
      pod_json("uid-" + tag_,
               json::array({{{"name", "app"}, {"resources", {{"requests", {{"cpu", "250m"}}}}}}}));
  auto parent = pc_->ensure_pod(pod);
  ASSERT_TRUE(parent.ok()) << parent.status().to_string();
  EXPECT_EQ(*parent, pc_->root_path() + "/burstable/poduid-" + tag_);

  auto c =
      config("app", *parent, {"sh", "-c", "dd if=/dev/zero of=/tmp/f bs=1M count=4; sleep 600"});
  ASSERT_TRUE(runtime_->create(c).ok());
  ASSERT_TRUE(runtime_->start(c.id).ok());
  auto st = runtime_->status(c.id);
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  ASSERT_GT(st->pid, 0);
  EXPECT_EQ(st->cgroup_path, *parent + "/" + c.id);
  // Every hierarchy places the container's process below the pod.
  std::istringstream lines(read_file("/proc/" + std::to_string(st->pid) + "/cgroup"));
  std::string line;
  int v1_lines = 0;
  while (std::getline(lines, line)) {
    std::string controllers = line.substr(line.find(':') + 1);
    controllers = controllers.substr(0, controllers.find(':'));
    std::string path = line.substr(line.rfind(':') + 1);
    if (controllers.empty() && path == "/") continue;  // unified tree the runtime left alone
    EXPECT_EQ(path, *parent + "/" + c.id) << line;
    if (!controllers.empty()) ++v1_lines;
  }
  if (!pc_->cgroup_v2()) {
    EXPECT_GE(v1_lines, 5);
  }
  auto procs = pc_->processes("uid-" + tag_);  // the shell, and dd or sleep beside it
  EXPECT_NE(std::find(procs.begin(), procs.end(), st->pid), procs.end());

  // The container's stats (its own cgroup) and the pod's (the pod cgroup holds its usage).
  auto deadline = std::chrono::steady_clock::now() + 30s;
  Result<runtime::ContainerStats> stats = Status::NotFound("");
  while (std::chrono::steady_clock::now() < deadline) {
    stats = runtime_->stats(c.id);
    if (stats.ok() && stats->memory_usage_bytes >= 4 * kMi) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(stats.ok()) << stats.status().to_string();
  EXPECT_GE(stats->memory_usage_bytes, static_cast<uint64_t>(4 * kMi));
  EXPECT_GT(stats->cpu_usage_nanos, 0u);
  auto pod_stats = runtime::read_cgroup_stats("/sys/fs/cgroup", *parent);
  ASSERT_TRUE(pod_stats.ok()) << pod_stats.status().to_string();
  // Read a moment apart from the container's, so compared with what the container held then.
  EXPECT_GE(pod_stats->memory_usage_bytes, static_cast<uint64_t>(4 * kMi));

  // While the container runs, the pod cgroup cannot go; after its removal nothing is left.
  EXPECT_EQ(pc_->remove("uid-" + tag_, false).code(), StatusCode::kUnavailable);
  ASSERT_TRUE(runtime_->remove(c.id).ok());
  Status s = pc_->remove("uid-" + tag_, false);
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(pc_->remove_root().ok());
  EXPECT_TRUE(nothing_left());
}

TEST_F(PodCgroupsContainerTest, PodMemoryLimitIsEnforcedOnContainersWithoutTheirOwn) {
  // Two containers with 16Mi limits each: the pod may use 32Mi in all.
  json res = {{"limits", {{"cpu", "500m"}, {"memory", "16Mi"}}}};
  json pod = pod_json("mem-" + tag_, json::array({{{"name", "a"}, {"resources", res}},
                                                  {{"name", "b"}, {"resources", res}}}));
  auto parent = pc_->ensure_pod(pod);
  ASSERT_TRUE(parent.ok()) << parent.status().to_string();
  EXPECT_EQ(*parent, pc_->root_path() + "/podmem-" + tag_);  // Guaranteed
  if (!pc_->cgroup_v2()) {
    EXPECT_EQ(trimmed("/sys/fs/cgroup/memory" + *parent + "/memory.limit_in_bytes"),
              std::to_string(32 * kMi));
    EXPECT_EQ(trimmed("/sys/fs/cgroup/cpu" + *parent + "/cpu.cfs_quota_us"), "100000");
  }
  // The containers themselves get no limit here, so only the pod's can stop them.
  auto small = run_to_exit(
      config("small", *parent, {"dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=1"}));
  EXPECT_EQ(small.exit_code, 0) << small.reason;
  auto big = run_to_exit(
      config("big", *parent, {"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"}));
  EXPECT_EQ(big.exit_code, 137) << big.reason;  // SIGKILL from the OOM killer
  if (!pc_->cgroup_v2()) {
    EXPECT_NE(trimmed("/sys/fs/cgroup/memory" + *parent + "/memory.failcnt"), "0");
  }
  ASSERT_TRUE(runtime_->remove("small-" + tag_).ok());
  ASSERT_TRUE(runtime_->remove("big-" + tag_).ok());
  EXPECT_TRUE(pc_->remove("mem-" + tag_, false).ok());
  EXPECT_TRUE(pc_->remove_root().ok());
  EXPECT_TRUE(nothing_left());
}

TEST_F(PodCgroupsContainerTest, PodPidsLimitStopsForksBeyondIt) {
  // A node with --pod-max-pids 5: the pod's shell and four children fit, the rest fail.
  PodCgroupsOptions o;
  o.kubepods = "kubepods-pids-" + tag_;
  o.pod_pids_limit = 5;
  auto limited = PodCgroups::open(o);
  ASSERT_TRUE(limited.ok()) << limited.status().to_string();
  PodCgroups& pc = **limited;
  json pod = pod_json("pids-" + tag_, json::array({{{"name", "a"}}}));
  auto parent = pc.ensure_pod(pod);
  ASSERT_TRUE(parent.ok()) << parent.status().to_string();
  const std::string pids_root = pc.cgroup_v2() ? pc.hierarchies()[0] : "/sys/fs/cgroup/pids";
  EXPECT_EQ(trimmed(pids_root + *parent + "/pids.max"), "5");
  // The QoS level above it is not limited.
  EXPECT_EQ(trimmed(pids_root + pc.root_path() + "/besteffort/pids.max"), "max");

  auto forks = config("forks", *parent,
                      {"sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 2 & done; wait"});
  run_to_exit(forks);
  std::string log = read_file(forks.log_path);
  EXPECT_NE(log.find("can't fork"), std::string::npos) << log;

  ASSERT_TRUE(runtime_->remove(forks.id).ok());
  EXPECT_TRUE(pc.remove("pids-" + tag_, true).ok());
  EXPECT_TRUE(pc.remove_root().ok());
  for (const auto& h : pc.hierarchies()) EXPECT_FALSE(fs::exists(h + pc.root_path())) << h;
}

TEST_F(PodCgroupsContainerTest, RemovingWithKillEndsARunningContainerAndLeavesNothing) {
  PodResources pod{"kill-" + tag_, QosClass::kBestEffort, {container(0, 0, 0, 0)}};
  auto parent = pc_->ensure(pod);
  ASSERT_TRUE(parent.ok());
  auto c = config("sleeper", *parent, {"sleep", "600"});
  ASSERT_TRUE(runtime_->create(c).ok());
  ASSERT_TRUE(runtime_->start(c.id).ok());
  Status s = pc_->remove(pod.uid, true);
  EXPECT_TRUE(s.ok()) << s.to_string();
  auto st = runtime_->wait(c.id, 30s);
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  EXPECT_EQ(st->state, runtime::ContainerState::kExited);
  EXPECT_EQ(st->exit_code, 137);
  EXPECT_TRUE(runtime_->remove(c.id).ok());
  EXPECT_TRUE(pc_->list().empty());
  EXPECT_TRUE(pc_->remove_root().ok());
  EXPECT_TRUE(nothing_left());
}

}  // namespace
}  // namespace skiff::agent
