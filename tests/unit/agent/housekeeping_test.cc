// Container log rotation with real containers (runc under conmon, a busybox rootfs): a noisy
// container's log is rotated once it passes the maximum size, at most max_files files are
// kept, and conmon keeps writing to the new file. Image garbage collection on a real image
// store, with the filesystem's size set by the test around the store's real disk usage: unused
// images go, images in use stay, and failures become the kubelet's Node events.
#include "agent/housekeeping.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "agent/images/store.h"
#include "agent/runtime/runtime.h"
#include "testing/test_server.h"
#include "unit/agent/images/test_image.h"

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

struct NodeEvent {
  std::string type, reason, message;
};

class HousekeepingImageGcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* bin : {"/usr/sbin/runc", "/usr/bin/conmon"}) {
      if (::access(bin, X_OK) != 0) GTEST_SKIP() << bin << " is missing (scripts/install-deps.sh)";
    }
    char tmpl[] = "/tmp/skiff-housekeeping-gc-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    runtime::RuntimeOptions ro;
    ro.root_dir = dir_ + "/state";
    auto rt = runtime::ContainerRuntime::open(ro);
    ASSERT_TRUE(rt.ok()) << rt.status().to_string();
    runtime_ = std::move(*rt);
    auto st = images::ImageStore::open(dir_ + "/data");
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    store_ = std::move(*st);
  }
  void TearDown() override {
    runtime_.reset();
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // Imports an image with one layer of `bytes` bytes, tagged example.com/<name>:1.
  std::string add_image(const std::string& name, size_t bytes) {
    images::testing::TarEntry e;
    e.name = "data-" + name;
    e.content = std::string(bytes, name[0]);
    auto img = images::testing::make_image({images::testing::make_tar({e})}, {false}, dir_);
    const std::string oci = dir_ + "/oci-" + name;
    img.write_oci_layout(oci, "1");
    images::ImportOptions o;
    o.name = "example.com/" + name;
    auto r = store_->import(oci, o);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    fs::remove_all(oci);
    return img.config.digest();
  }

  std::set<std::string> image_ids() {
    std::set<std::string> out;
    auto list = store_->list();
    if (list.ok()) {
      for (const auto& i : *list) out.insert(i.id);
    }
    return out;
  }

  // Options for image GC on a filesystem of 10 MiB, `used` percent used by the images and
  // something else together (used_ later changes it).
  HousekeepingOptions options(int used) {
    used_ = used;
    HousekeepingOptions o;
    o.image_store = store_.get();
    o.images_in_use = [this]() -> Result<std::set<std::string>> {
      std::lock_guard<std::mutex> l(mu_);
      if (!in_use_error_.empty()) return Status::Unavailable(in_use_error_);
      return in_use_;
    };
    o.filesystem_stats = [this](const std::string&) -> Result<images::FilesystemStats> {
      std::lock_guard<std::mutex> l(mu_);
      images::FilesystemStats s;
      s.capacity_bytes = 10 * 1024 * 1024;
      s.available_bytes = s.capacity_bytes * (100 - used_) / 100;
      // What the store frees is freed on this filesystem too.
      s.available_bytes += baseline_ - store_->disk_usage();
      return s;
    };
    o.record_node_event = [this](const std::string& type, const std::string& reason,
                                 const std::string& message) {
      std::lock_guard<std::mutex> l(mu_);
      events_.push_back({type, reason, message});
    };
    baseline_ = store_->disk_usage();
    return o;
  }

  std::vector<NodeEvent> events() {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }

  std::string dir_;
  std::unique_ptr<runtime::ContainerRuntime> runtime_;
  std::unique_ptr<images::ImageStore> store_;
  std::mutex mu_;
  std::set<std::string> in_use_;   // guarded by mu_
  std::string in_use_error_;       // guarded by mu_
  int used_ = 0;                   // guarded by mu_
  std::vector<NodeEvent> events_;  // guarded by mu_
  int64_t baseline_ = 0;
};

TEST_F(HousekeepingImageGcTest, UnusedImagesOlderThanTheMinimumAgeGoUnderDiskPressure) {
  const std::string used = add_image("used", 256 * 1024);
  const std::string old_unused = add_image("old", 256 * 1024);
  TimePoint clock = TimePoint(std::chrono::seconds(1700000000));
  auto o = options(90);
  o.clock = [&clock] { return clock; };
  in_use_ = {"example.com/used:1"};
  Housekeeping hk(*runtime_, o);
  auto first = hk.collect_images();  // everything is first detected now: too young
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_TRUE(first->triggered);
  EXPECT_TRUE(first->removed_images.empty());
  EXPECT_FALSE(first->free_space_failure.empty());

  clock += 3min;
  const std::string fresh = add_image("fresh", 256 * 1024);
  auto second = hk.collect_images();
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_EQ(second->removed_images, std::vector<std::string>{old_unused});
  EXPECT_EQ(image_ids(), (std::set<std::string>{used, fresh}));
  EXPECT_EQ(second->removed_layers, 1);
}

TEST_F(HousekeepingImageGcTest, FailuresBecomeTheKubeletsNodeEvents) {
  const std::string a = add_image("a", 400 * 1024);
  auto o = options(95);
  o.image_gc_policy.min_age = 0s;
  in_use_ = {a};
  Housekeeping hk(*runtime_, o);

  // Everything in use: FreeDiskSpaceFailed every time, ImageGCFailed from the second time on.
  auto r = hk.collect_images();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(events().size(), 1u);
  EXPECT_EQ(events()[0].type, "Warning");
  EXPECT_EQ(events()[0].reason, "FreeDiskSpaceFailed");
  EXPECT_EQ(events()[0].message, r->free_space_failure);
  EXPECT_NE(r->free_space_failure.find("Failed to garbage collect required amount of images."),
            std::string::npos);
  r = hk.collect_images();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(events().size(), 3u);
  EXPECT_EQ(events()[1].reason, "FreeDiskSpaceFailed");
  EXPECT_EQ(events()[2].reason, "ImageGCFailed");
  EXPECT_EQ(events()[2].message, r->free_space_failure);

  // A success resets the count; the images in use failing to list is a failure, and removes
  // nothing.
  {
    std::lock_guard<std::mutex> l(mu_);
    in_use_.clear();
    used_ = 85;  // removing a (800 KiB on disk) frees the 5% (512 KiB) to the low threshold
  }
  r = hk.collect_images();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->removed_images, std::vector<std::string>{a});
  EXPECT_TRUE(r->free_space_failure.empty()) << r->free_space_failure;
  EXPECT_EQ(events().size(), 3u);
  const std::string b = add_image("b", 128 * 1024);
  {
    std::lock_guard<std::mutex> l(mu_);
    in_use_error_ = "pods not synced";
  }
  EXPECT_FALSE(hk.collect_images().ok());
  EXPECT_EQ(events().size(), 3u) << "a single failure is only logged";
  auto failed = hk.collect_images();
  EXPECT_FALSE(failed.ok());
  ASSERT_EQ(events().size(), 4u);
  EXPECT_EQ(events()[3].reason, "ImageGCFailed");
  EXPECT_EQ(events()[3].message, "listing the images in use: pods not synced");
  EXPECT_EQ(image_ids(), std::set<std::string>{b});
}

TEST_F(HousekeepingImageGcTest, ImageGcIsOffWithoutAStoreOrTheImagesInUse) {
  add_image("a", 1024);
  auto o = options(99);
  o.images_in_use = nullptr;
  Housekeeping hk(*runtime_, o);
  EXPECT_EQ(hk.collect_images().status().code(), StatusCode::kInvalid);
  EXPECT_EQ(image_ids().size(), 1u);
}

TEST_F(HousekeepingImageGcTest, TheBackgroundPassCollectsEveryPeriod) {
  const std::string used = add_image("used", 128 * 1024);
  const std::string unused = add_image("unused", 128 * 1024);
  auto o = options(90);
  o.interval = 20ms;
  o.image_gc_period = 50ms;
  o.image_gc_policy.min_age = 0s;
  in_use_ = {used};
  Housekeeping hk(*runtime_, o);
  hk.start();
  EXPECT_TRUE(testing::eventually([&] { return image_ids().count(unused) == 0; }));
  hk.stop();
  EXPECT_EQ(image_ids(), std::set<std::string>{used});
}

}  // namespace
}  // namespace skiff::agent
