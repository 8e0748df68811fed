// Image garbage collection under disk pressure on a real store: on a small tmpfs the test
// mounts (real statvfs numbers, real space freed), and with a filesystem size the test sets
// around the store's real disk usage.
#include "agent/images/image_gc.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "agent/images/store.h"
#include "test_image.h"

namespace skiff::agent::images {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::TempDir;

constexpr int64_t kMiB = 1024 * 1024;

std::string random_bytes(size_t n, const std::string& seed) {
  std::mt19937_64 gen(std::hash<std::string>{}(seed));
  std::string out(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = gen();
    std::memcpy(&out[i], &v, 8);
  }
  return out;
}

// A layer tar holding one file of `bytes` random bytes named after `name`.
std::string layer_tar(const std::string& name, size_t bytes) {
  testing::TarEntry e;
  e.name = "data-" + name;
  e.content = random_bytes(bytes, name);
  return testing::make_tar({e});
}

class ImageGcTest : public ::testing::Test {
 protected:
  // Imports an image of `tars` (plain tar layers, bottom-most first) tagged
  // example.com/<name>:1; returns its ID.
  std::string add_image(ImageStore& store, const std::string& name,
                        const std::vector<std::string>& tars) {
    auto img = testing::make_image(tars, std::vector<bool>(tars.size(), false), tmp_.path());
    std::string dir = tmp_.path() + "/oci-" + name;
    img.write_oci_layout(dir, "1");
    ImportOptions o;
    o.name = "example.com/" + name;
    auto imported = store.import(dir, o);
    EXPECT_TRUE(imported.ok()) << imported.status().to_string();
    fs::remove_all(dir);
    return img.config.digest();
  }
  std::string add_image(ImageStore& store, const std::string& name, size_t bytes) {
    return add_image(store, name, {layer_tar(name, bytes)});
  }

  std::unique_ptr<ImageStore> open_store(const std::string& dir) {
    auto s = ImageStore::open(dir);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? std::move(*s) : nullptr;
  }

  static std::set<std::string> ids(ImageStore& store) {
    std::set<std::string> out;
    auto list = store.list();
    EXPECT_TRUE(list.ok());
    if (list.ok()) {
      for (const auto& i : *list) out.insert(i.id);
    }
    return out;
  }

  TempDir tmp_;
  TimePoint t0_ = TimePoint(std::chrono::seconds(1700000000));
  TimePoint clock_ = t0_;
  std::function<TimePoint()> clock_fn() {
    return [this] { return clock_; };
  }
};

// A filesystem of `capacity` bytes holding the store and `other` bytes of something else.
FilesystemStatsFn virtual_filesystem(ImageStore& store, int64_t capacity, const int64_t& other) {
  return [&store, capacity, &other](const std::string&) -> Result<FilesystemStats> {
    FilesystemStats s;
    s.capacity_bytes = capacity;
    s.available_bytes = capacity - other - store.disk_usage();
    return s;
  };
}

TEST_F(ImageGcTest, OnAFullTmpfsUnusedImagesGoLeastRecentlyUsedFirstDownToTheLowThreshold) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  const std::string mnt = tmp_.path() + "/fs";
  fs::create_directories(mnt);
  ASSERT_EQ(::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=32m"), 0) << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};

  auto store = open_store(mnt + "/data");
  ASSERT_TRUE(store);
  // Four images of 4 MiB each on disk (a 2 MiB layer blob and its unpacked file).
  const std::string a = add_image(*store, "a", 2 * kMiB);
  const std::string b = add_image(*store, "b", 2 * kMiB);
  const std::string c = add_image(*store, "c", 2 * kMiB);
  const std::string d = add_image(*store, "d", 2 * kMiB);

  ImageGcManager gc(*store, ImageGcPolicy{}, nullptr, clock_fn());
  // Pod specs name images by reference, container statuses by repo digest or ID.
  ASSERT_TRUE(gc.detect({"example.com/a:1", c, d}).ok());
  clock_ = t0_ + 1min;
  ASSERT_TRUE(gc.detect({a, c, d}).ok());
  clock_ = t0_ + 2min;
  ASSERT_TRUE(gc.detect({a, d}).ok());  // c's container is gone
  clock_ = t0_ + 3min;
  const std::string e = add_image(*store, "e", 2 * kMiB);  // pulled a minute before the GC
  ASSERT_TRUE(gc.detect({a}).ok());                        // d's container is gone
  EXPECT_EQ(gc.last_used(a), t0_ + 3min);
  EXPECT_EQ(gc.last_used(c), t0_ + 1min);
  EXPECT_EQ(gc.last_used(b), std::nullopt);

  // Below the high threshold nothing goes, however old the unused images.
  clock_ = t0_ + 4min + 1s;
  auto calm = gc.garbage_collect({a});
  ASSERT_TRUE(calm.ok()) << calm.status().to_string();
  EXPECT_FALSE(calm->triggered);
  EXPECT_LT(calm->usage_percent, 85);
  EXPECT_EQ(ids(*store).size(), 5u);

  // Something else fills the disk to about 94%.
  testing::write_all(mnt + "/filler", random_bytes(10 * kMiB, "filler"));
  auto before = filesystem_stats(mnt);
  ASSERT_TRUE(before.ok());
  ASSERT_GE(100 - before->available_bytes * 100 / before->capacity_bytes, 85);

  auto r = gc.garbage_collect({"example.com/a:1"});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->triggered);
  EXPECT_GE(r->usage_percent, 85);
  EXPECT_TRUE(r->free_space_failure.empty()) << r->free_space_failure;
  // b was never used, c was used longer ago than d: freeing b alone is not enough, b and c
  // are. a is in use, e is younger than the two minutes minimum age.
  EXPECT_EQ(r->removed_images, (std::vector<std::string>{b, c}));
  EXPECT_EQ(ids(*store), (std::set<std::string>{a, d, e}));
  EXPECT_EQ(r->removed_layers, 2);
  EXPECT_GE(r->freed_bytes, r->bytes_to_free);
  // The filesystem itself is at or below the low threshold now.
  auto after = filesystem_stats(mnt);
  ASSERT_TRUE(after.ok());
  EXPECT_LE(100 - after->available_bytes * 100 / after->capacity_bytes, 80);
  // What it counted as freed is what the filesystem got back (give or take the index file).
  EXPECT_NEAR(static_cast<double>(after->available_bytes - before->available_bytes),
              static_cast<double>(r->freed_bytes), 64 * 1024);
  // The images that stayed are whole.
  for (const auto& id : {a, d, e}) {
    auto lowers = store->lower_dirs(id);
    ASSERT_TRUE(lowers.ok()) << lowers.status().to_string();
    EXPECT_TRUE(fs::exists(lowers->front()));
  }
  EXPECT_TRUE(store->get("example.com/b:1").status().is_not_found());
}

TEST_F(ImageGcTest, LayersSharedWithARemainingImageStay) {
  auto store = open_store(tmp_.path() + "/node");
  ASSERT_TRUE(store);
  const std::string base = layer_tar("base", 256 * 1024);
  const std::string x = add_image(*store, "x", {base, layer_tar("x", 256 * 1024)});
  const std::string y = add_image(*store, "y", {base, layer_tar("y", 256 * 1024)});
  auto y_lowers = store->lower_dirs(y);
  auto x_lowers = store->lower_dirs(x);
  ASSERT_TRUE(y_lowers.ok() && x_lowers.ok());
  ASSERT_EQ(x_lowers->back(), y_lowers->back()) << "the base layer is stored once";

  int64_t other = 0;
  const int64_t capacity = 4 * kMiB;
  other = capacity * 99 / 100 - store->disk_usage();  // 99% used
  ImageGcManager gc(*store, ImageGcPolicy{}, virtual_filesystem(*store, capacity, other),
                    clock_fn());
  ASSERT_TRUE(gc.detect({}).ok());
  clock_ = t0_ + 10min;
  auto r = gc.garbage_collect({y});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->removed_images, std::vector<std::string>{x});
  EXPECT_EQ(r->removed_layers, 1);  // x's own layer, not the base
  EXPECT_FALSE(fs::exists(x_lowers->front()));
  EXPECT_TRUE(fs::exists(y_lowers->back()));
  auto still = store->lower_dirs(y);
  ASSERT_TRUE(still.ok()) << still.status().to_string();
  EXPECT_EQ(*still, *y_lowers);
  // Not enough: y is all that is left, and it is in use.
  EXPECT_FALSE(r->free_space_failure.empty());
}

TEST_F(ImageGcTest, WhenEverythingIsInUseItSaysHowMuchItCouldNotFree) {
  auto store = open_store(tmp_.path() + "/node");
  ASSERT_TRUE(store);
  const std::string a = add_image(*store, "a", 128 * 1024);
  const std::string b = add_image(*store, "b", 128 * 1024);
  auto b_image = store->get(b);
  ASSERT_TRUE(b_image.ok());
  const int64_t capacity = 100 * kMiB;
  int64_t other = 99 * kMiB;
  ImageGcManager gc(*store, ImageGcPolicy{}, virtual_filesystem(*store, capacity, other),
                    clock_fn());
  clock_ = t0_ + 1h;
  // a by ID, b by its repo digest, as a container status names it.
  auto r = gc.garbage_collect({a, b_image->repo_digests.at(0)});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->triggered);
  EXPECT_TRUE(r->removed_images.empty());
  EXPECT_EQ(ids(*store), (std::set<std::string>{a, b}));
  const int64_t to_free = capacity * 20 / 100 - (capacity - other - store->disk_usage());
  EXPECT_EQ(r->bytes_to_free, to_free);
  EXPECT_EQ(r->free_space_failure,
            "Failed to garbage collect required amount of images. Attempted to free " +
                std::to_string(to_free) + " bytes, but only found 0 bytes eligible to free.");
}

TEST_F(ImageGcTest, UnreferencedLayersAreSweptFirstAndCountAsFreed) {
  auto store = open_store(tmp_.path() + "/node");
  ASSERT_TRUE(store);
  const std::string a = add_image(*store, "a", 512 * 1024);
  const std::string b = add_image(*store, "b", 512 * 1024);
  auto b_lowers = store->lower_dirs(b);
  ASSERT_TRUE(b_lowers.ok());
  // `skiff image rm` without its gc (an interrupted one) leaves b's blobs and layer behind.
  ASSERT_TRUE(store->remove(b).ok());
  ASSERT_TRUE(fs::exists(b_lowers->front()));
  const int64_t capacity = 8 * kMiB;
  int64_t other = capacity * 86 / 100 - store->disk_usage();
  ImageGcManager gc(*store, ImageGcPolicy{}, virtual_filesystem(*store, capacity, other),
                    clock_fn());
  clock_ = t0_ + 1h;
  auto r = gc.garbage_collect({});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->triggered);
  EXPECT_TRUE(r->removed_images.empty()) << "b's leftovers free enough";
  EXPECT_EQ(r->removed_layers, 1);
  EXPECT_FALSE(fs::exists(b_lowers->front()));
  EXPECT_EQ(ids(*store), std::set<std::string>{a});
}

TEST_F(ImageGcTest, TheThresholdsAreTheKubeletsPercentages) {
  auto store = open_store(tmp_.path() + "/node");
  ASSERT_TRUE(store);
  const std::string a = add_image(*store, "a", 64 * 1024);
  int64_t available = 0;
  FilesystemStatsFn stats = [&](const std::string& path) -> Result<FilesystemStats> {
    EXPECT_EQ(path, store->root());
    return FilesystemStats{1000 * kMiB, available, 0, 0};
  };
  ImageGcPolicy policy;
  policy.high_threshold_percent = 50;
  policy.low_threshold_percent = 40;
  policy.min_age = 0s;
  ImageGcManager gc(*store, policy, stats, clock_fn());
  // 100 - int(available * 100 / capacity), as the kubelet computes it: 51.1% free is 49% used.
  available = 511 * kMiB;
  auto r = gc.garbage_collect({});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->usage_percent, 49);
  EXPECT_FALSE(r->triggered);
  EXPECT_EQ(ids(*store).size(), 1u);
  available = 501 * kMiB;  // 50.1% free is 50% used: at the high threshold
  r = gc.garbage_collect({});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->triggered);
  EXPECT_EQ(r->bytes_to_free, 99 * kMiB);
  EXPECT_EQ(r->removed_images, std::vector<std::string>{a});
  // The stats function's errors, and a filesystem without a size, are errors.
  ImageGcManager broken(
      *store, policy,
      [](const std::string&) -> Result<FilesystemStats> { return Status::Internal("no stats"); },
      clock_fn());
  EXPECT_EQ(broken.garbage_collect({}).status().message(), "no stats");
  ImageGcManager empty(
      *store, policy,
      [](const std::string&) -> Result<FilesystemStats> { return FilesystemStats{}; }, clock_fn());
  EXPECT_EQ(empty.garbage_collect({}).status().message(), "invalid capacity 0 on image filesystem");
}

TEST_F(ImageGcTest, FilesystemStatsReadsStatvfs) {
  auto s = filesystem_stats(tmp_.path());
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_GT(s->capacity_bytes, 0);
  EXPECT_GE(s->capacity_bytes, s->available_bytes);
  EXPECT_FALSE(filesystem_stats(tmp_.path() + "/missing").ok());
}

}  // namespace
}  // namespace skiff::agent::images
