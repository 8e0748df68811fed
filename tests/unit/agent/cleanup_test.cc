// cleanup_node on real leftovers: a running container (runc under conmon), a tmpfs mount and
// pod namespaces under the data dir, a bridge and the service proxy's nftables tables. Needs
// root, runc, conmon, busybox-static, iproute2 and nft (scripts/install-deps.sh).
#include "agent/cleanup.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "agent/network/sandbox_namespaces.h"
#include "agent/pod_cgroups.h"
#include "agent/runtime/runtime.h"

namespace skiff::agent {
namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool mounted_under(const std::string& dir) {
  return read_file("/proc/self/mountinfo").find(" " + dir + "/") != std::string::npos;
}

bool contains(const std::vector<std::string>& lines, const std::string& prefix) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.rfind(prefix, 0) == 0; });
}

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

class CleanupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    for (const char* bin : {"/usr/sbin/runc", "/usr/bin/conmon", "/bin/busybox"}) {
      if (::access(bin, X_OK) != 0) GTEST_SKIP() << bin << " is missing (scripts/install-deps.sh)";
    }
    if (sh("nft --version") != 0 || sh("ip -V") != 0) GTEST_SKIP() << "needs nft and ip";
    char tmpl[] = "/tmp/skiff-cleanup-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    data_ = dir_ + "/data";
    std::random_device rd;
    char buf[16];
    std::snprintf(buf, sizeof buf, "skc%06x", rd() & 0xffffff);
    bridge_ = buf;
  }

  void TearDown() override {
    if (dir_.empty()) return;
    // Whatever a failed test left.
    CleanupOptions o;
    o.data_dir = data_;
    o.bridge_name = bridge_;
    o.all = true;
    CleanupReport r;
    (void)cleanup_node(o, &r);
    sh("ip link del " + bridge_);
    if (!mounted_under(dir_)) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  // A running container as the agent leaves it: bundle and runc state under
  // <data>/agent/runtime, rootfs from an image dir under the data dir.
  std::string start_container(const std::string& cgroup_parent = "") {
    std::string image = data_ + "/images/busybox";
    fs::create_directories(image + "/bin");
    for (const char* d : {"/proc", "/sys", "/dev", "/tmp"}) fs::create_directories(image + d);
    fs::copy_file("/bin/busybox", image + "/bin/busybox", fs::copy_options::skip_existing);
    if (!fs::exists(image + "/bin/sleep")) fs::create_symlink("busybox", image + "/bin/sleep");
    runtime::RuntimeOptions ro;
    ro.root_dir = data_ + "/agent/runtime";
    auto rt = runtime::ContainerRuntime::open(ro);
    EXPECT_TRUE(rt.ok()) << rt.status().to_string();
    if (!rt.ok()) return "";
    runtime::ContainerConfig c;
    c.id = "pod1_sleeper_0";
    c.rootfs.lower_dirs = {image};
    c.rootfs.upper_dir = data_ + "/agent/pods/pod1/rootfs/upper";
    c.rootfs.work_dir = data_ + "/agent/pods/pod1/rootfs/work";
    c.args = {"sleep", "600"};
    c.log_path = data_ + "/agent/pods/pod1/sleeper.log";
    c.network = runtime::NamespaceOption::host();
    c.cgroup_parent = cgroup_parent;
    Status s = (*rt)->create(c);
    EXPECT_TRUE(s.ok()) << s.to_string();
    s = (*rt)->start(c.id);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return c.id;
  }

  std::string dir_, data_, bridge_;
};

TEST_F(CleanupTest, RemovesContainersMountsNamespacesBridgeAndTablesAndIsIdempotent) {
  std::string id = start_container();
  ASSERT_FALSE(id.empty());
  // A tmpfs volume and a pod's namespaces.
  std::string volume = data_ + "/agent/pods/pod1/volumes/cache";
  fs::create_directories(volume);
  ASSERT_EQ(::mount("tmpfs", volume.c_str(), "tmpfs", 0, "size=1m"), 0) << strerror(errno);
  auto ns = network::create_sandbox_namespaces(data_ + "/agent/netns", "pod1", "pod1");
  ASSERT_TRUE(ns.ok()) << ns.status().to_string();
  ASSERT_EQ(sh("ip link add name " + bridge_ + " type bridge"), 0);
  ASSERT_EQ(sh("nft add table ip skiff-" + bridge_), 0);
  ASSERT_EQ(sh("nft add table ip skiff-dns-" + bridge_), 0);
  fs::create_directories(data_ + "/agent/network/pods");
  std::ofstream(data_ + "/state.db") << "store";
  ASSERT_TRUE(mounted_under(data_));

  CleanupOptions o;
  o.data_dir = data_ + "/";  // a trailing slash is fine
  o.bridge_name = bridge_;
  CleanupReport report;
  Status s = cleanup_node(o, &report);
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(report.failed.empty()) << report.failed.front();
  EXPECT_TRUE(contains(report.removed, "container " + id));
  EXPECT_TRUE(contains(report.removed, "mount " + volume));
  EXPECT_TRUE(contains(report.removed, "network namespaces of pod pod1"));
  EXPECT_TRUE(contains(report.removed, "bridge " + bridge_));
  EXPECT_TRUE(contains(report.removed, "nftables table ip skiff-" + bridge_));
  EXPECT_TRUE(contains(report.removed, "nftables table ip skiff-dns-" + bridge_));

  EXPECT_FALSE(mounted_under(data_));
  EXPECT_NE(sh("ip link show " + bridge_), 0);
  EXPECT_NE(sh("nft list table ip skiff-" + bridge_), 0);
  EXPECT_FALSE(fs::exists(data_ + "/agent/netns/pod1"));
  // No runc state left: its root is gone (asking runc would create the root again).
  EXPECT_FALSE(fs::exists(data_ + "/agent/runtime"));
  EXPECT_FALSE(fs::exists(data_ + "/agent/pods"));
  // Images and the store stay.
  EXPECT_TRUE(fs::exists(data_ + "/images/busybox/bin/busybox"));
  EXPECT_TRUE(fs::exists(data_ + "/state.db"));

  CleanupReport again;
  EXPECT_TRUE(cleanup_node(o, &again).ok());
  EXPECT_TRUE(again.removed.empty()) << again.removed.front();
  EXPECT_TRUE(again.failed.empty());

  o.all = true;
  CleanupReport all;
  EXPECT_TRUE(cleanup_node(o, &all).ok());
  EXPECT_TRUE(contains(all.removed, "files " + data_ + "/images"));
  EXPECT_TRUE(fs::is_empty(data_));
}

TEST_F(CleanupTest, RemovesThePodCgroupsAndTheTopLevelCgroupTheAgentMade) {
  // The agent's pod cgroups, as it records them in its state dir, with a container running in
  // one and an orphan pod cgroup beside it.
  PodCgroupsOptions po;
  po.kubepods = "kubepods-" + bridge_;
  po.state_dir = data_ + "/agent";
  auto pc = PodCgroups::open(po);
  ASSERT_TRUE(pc.ok()) << pc.status().to_string();
  PodResources pod{"pod1", runtime::QosClass::kBurstable, {}};
  auto parent = (*pc)->ensure(pod);
  ASSERT_TRUE(parent.ok()) << parent.status().to_string();
  PodResources orphan{"orphan1", runtime::QosClass::kGuaranteed, {}};
  ASSERT_TRUE((*pc)->ensure(orphan).ok());
  std::string id = start_container(*parent);
  ASSERT_FALSE(id.empty());
  ASSERT_FALSE((*pc)->processes("pod1").empty());

  CleanupOptions o;
  o.data_dir = data_;
  o.bridge_name = bridge_;
  CleanupReport report;
  Status s = cleanup_node(o, &report);
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(contains(report.removed, "container " + id));
  EXPECT_TRUE(contains(report.removed, "pod cgroup /" + po.kubepods + "/burstable/podpod1"));
  EXPECT_TRUE(contains(report.removed, "pod cgroup /" + po.kubepods + "/podorphan1"));
  EXPECT_TRUE(contains(report.removed, "cgroup /" + po.kubepods));
  for (const auto& h : (*pc)->hierarchies()) {
    EXPECT_FALSE(fs::exists(h + "/" + po.kubepods)) << h;
  }
  EXPECT_FALSE(fs::exists(po.state_dir + "/" + kPodCgroupsRecordFile));

  CleanupReport again;
  EXPECT_TRUE(cleanup_node(o, &again).ok());
  EXPECT_TRUE(again.removed.empty()) << again.removed.front();
}

TEST_F(CleanupTest, AMountInsideIsNeverDeletedThrough) {
  // A host directory bind-mounted under the data dir (as a hostPath volume is): it is
  // unmounted before anything is deleted, so the host directory's files survive.
  std::string outside = dir_ + "/outside";
  fs::create_directories(outside);
  std::ofstream(outside + "/precious") << "keep me";
  std::string target = data_ + "/agent/pods/pod2/volumes/host";
  fs::create_directories(target);
  ASSERT_EQ(::mount(outside.c_str(), target.c_str(), nullptr, MS_BIND, nullptr), 0);
  CleanupOptions o;
  o.data_dir = data_;
  o.bridge_name = bridge_;
  CleanupReport report;
  EXPECT_TRUE(cleanup_node(o, &report).ok());
  EXPECT_TRUE(contains(report.removed, "mount " + target));
  EXPECT_EQ(read_file(outside + "/precious"), "keep me");
  EXPECT_FALSE(fs::exists(data_ + "/agent/pods"));
}

TEST_F(CleanupTest, RejectsDangerousOptions) {
  CleanupOptions o;
  CleanupReport r;
  o.data_dir = "/";
  EXPECT_EQ(cleanup_node(o, &r).code(), StatusCode::kInvalid);
  o.data_dir = "relative/dir";
  EXPECT_EQ(cleanup_node(o, &r).code(), StatusCode::kInvalid);
  o.data_dir = data_;
  o.bridge_name = "";
  EXPECT_EQ(cleanup_node(o, &r).code(), StatusCode::kInvalid);
  o.bridge_name = "a-name-longer-than-15";
  EXPECT_EQ(cleanup_node(o, &r).code(), StatusCode::kInvalid);
  EXPECT_TRUE(r.removed.empty());
}

}  // namespace
}  // namespace skiff::agent
