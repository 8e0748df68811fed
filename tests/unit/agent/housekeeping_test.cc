// Container log rotation with real containers (runc under conmon, a busybox rootfs): a noisy
// container's log is rotated once it passes the maximum size, at most max_files files are
// kept, and conmon keeps writing to the new file.
#include "agent/housekeeping.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "agent/runtime/runtime.h"
#include "testing/test_server.h"

namespace skiff::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

int64_t file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// The number in the first "n-<number>" of a log file (the container prints a counter).
long first_counter(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto pos = line.find(" n-");
    if (pos != std::string::npos) return std::stol(line.substr(pos + 3));
  }
  return -1;
}

class HousekeepingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run containers";
    for (const char* bin : {"/usr/sbin/runc", "/usr/bin/conmon", "/bin/busybox"}) {
      if (::access(bin, X_OK) != 0) GTEST_SKIP() << bin << " is missing (scripts/install-deps.sh)";
    }
    char tmpl[] = "/tmp/skiff-housekeeping-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::random_device rd;
    tag_ = std::to_string(rd() % 100000000);
    rootfs_ = dir_ + "/image";
    for (const char* d : {"/bin", "/proc", "/sys", "/dev", "/tmp"})
      fs::create_directories(rootfs_ + d);
    fs::copy_file("/bin/busybox", rootfs_ + "/bin/busybox");
    for (const char* applet : {"sh", "sleep", "echo"}) {
      fs::create_symlink("busybox", rootfs_ + "/bin/" + applet);
    }
    runtime::RuntimeOptions o;
    o.root_dir = dir_ + "/state";
    auto rt = runtime::ContainerRuntime::open(o);
    ASSERT_TRUE(rt.ok()) << rt.status().to_string();
    runtime_ = std::move(*rt);
  }

  void TearDown() override {
    if (runtime_) {
      auto all = runtime_->list();
      if (all.ok()) {
        for (const auto& c : *all) EXPECT_TRUE(runtime_->remove(c.id).ok());
      }
      runtime_.reset();
      for (const auto& ctl : fs::directory_iterator("/sys/fs/cgroup")) {
        ::rmdir((ctl.path().string() + "/skiff-hk-test-" + tag_).c_str());
      }
      ::rmdir(("/sys/fs/cgroup/skiff-hk-test-" + tag_).c_str());
    }
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // Starts a container; returns its log path.
  std::string start(const std::string& name, std::vector<std::string> args) {
    runtime::ContainerConfig c;
    c.id = name + "-" + tag_;
    c.rootfs.path = rootfs_;
    c.args = std::move(args);
    c.cgroup_parent = "/skiff-hk-test-" + tag_;
    c.log_path = dir_ + "/logs/" + name + ".log";
    c.network = runtime::NamespaceOption::host();
    Status s = runtime_->create(c);
    EXPECT_TRUE(s.ok()) << s.to_string();
    s = runtime_->start(c.id);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return c.log_path;
  }

  std::string dir_, tag_, rootfs_;
  std::unique_ptr<runtime::ContainerRuntime> runtime_;
};

TEST_F(HousekeepingTest, NoisyLogsAreRotatedKeepingAtMostMaxFiles) {
  const int64_t max = 16 * 1024;
  const std::string noisy =
      start("noisy", {"sh", "-c", "i=0; while :; do i=$((i+1)); echo n-$i; done"});
  const std::string quiet = start("quiet", {"sh", "-c", "echo hello; sleep 600"});
  HousekeepingOptions o;
  o.container_log_max_size = max;
  o.container_log_max_files = 3;
  Housekeeping hk(*runtime_, o);

  for (int round = 1; round <= 4; ++round) {
    ASSERT_TRUE(testing::eventually([&] { return file_size(noisy) > max; }))
        << "round " << round << ": the log does not grow";
    auto rotated = hk.rotate_logs();
    ASSERT_TRUE(rotated.ok()) << rotated.status().to_string();
    EXPECT_EQ(*rotated, 1) << "round " << round;  // the quiet log stays below the maximum
    EXPECT_TRUE(fs::exists(noisy + ".1"));
    EXPECT_EQ(fs::exists(noisy + ".2"), round >= 2) << "round " << round;
    EXPECT_FALSE(fs::exists(noisy + ".3")) << "at most 3 files: the log, .1 and .2";
  }
  // conmon writes on to the new file, and the files are in order: .2 oldest, then .1, then
  // the current one.
  ASSERT_TRUE(testing::eventually([&] { return first_counter(noisy) > 0; }));
  long in2 = first_counter(noisy + ".2"), in1 = first_counter(noisy + ".1");
  long now = first_counter(noisy);
  EXPECT_GT(in2, 0);
  EXPECT_LT(in2, in1);
  EXPECT_LT(in1, now);
  EXPECT_FALSE(fs::exists(quiet + ".1"));
}

TEST_F(HousekeepingTest, ExitedContainersAreNotRotated) {
  const std::string log =
      start("done", {"sh", "-c", "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo n-$i; done"});
  auto st = runtime_->wait("done-" + tag_, 30s);
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  ASSERT_GT(file_size(log), 1024);
  HousekeepingOptions o;
  o.container_log_max_size = 1024;
  Housekeeping hk(*runtime_, o);
  auto rotated = hk.rotate_logs();
  ASSERT_TRUE(rotated.ok());
  EXPECT_EQ(*rotated, 0);
  EXPECT_FALSE(fs::exists(log + ".1"));
}

TEST_F(HousekeepingTest, TheBackgroundPassRotatesOnItsOwn) {
  const std::string noisy =
      start("bg", {"sh", "-c", "i=0; while :; do i=$((i+1)); echo n-$i; done"});
  HousekeepingOptions o;
  o.container_log_max_size = 8 * 1024;
  o.interval = 50ms;
  Housekeeping hk(*runtime_, o);
  hk.start();
  hk.start();  // idempotent
  EXPECT_TRUE(testing::eventually([&] { return fs::exists(noisy + ".1"); }));
  hk.stop();
  hk.stop();
}

}  // namespace
}  // namespace skiff::agent
