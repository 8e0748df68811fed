#include "agent/images/store.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "agent/images/digest.h"
#include "agent/images/image_command.h"
#include "test_image.h"

namespace skiff::agent::images {
namespace {

using testing::read_all;
using testing::TempDir;

bool exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

size_t count_entries(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!exists("/bin/busybox")) GTEST_SKIP() << "/bin/busybox (busybox-static) is not installed";
    image_ = testing::busybox_image(tmp_.path());
    oci_dir_ = tmp_.path() + "/oci";
    image_.write_oci_layout(oci_dir_, "1");
    docker_dir_ = tmp_.path() + "/docker";
    image_.write_docker_archive(docker_dir_, "test/busybox:docker");
    data_ = tmp_.path() + "/data";
    auto s = ImageStore::open(data_);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(*s);
  }

  std::string id() const { return image_.config.digest(); }

  TempDir tmp_;
  testing::TestImage image_;
  std::string oci_dir_, docker_dir_, data_;
  std::unique_ptr<ImageStore> store_;
};

TEST_F(ImageStoreTest, ImportsAnOciLayoutDirectory) {
  ImportOptions o;
  o.name = "test/busybox";
  std::vector<std::string> progressed;
  o.progress = [&](const LayerProgress& p) {
    if (p.done == p.total) progressed.push_back(p.digest);
  };
  auto imgs = store_->import(oci_dir_, o);
  ASSERT_TRUE(imgs.ok()) << imgs.status().to_string();
  ASSERT_EQ(imgs->size(), 1u);
  const Image& img = (*imgs)[0];
  EXPECT_EQ(img.id, id());
  EXPECT_EQ(img.manifest_digest, image_.manifest.digest());
  EXPECT_EQ(img.repo_tags, std::vector<std::string>{"docker.io/test/busybox:1"});
  EXPECT_EQ(img.repo_digests,
            std::vector<std::string>{"docker.io/test/busybox@" + image_.manifest.digest()});
  EXPECT_EQ(img.diff_ids.size(), 2u);
  EXPECT_EQ(img.config.entrypoint, std::vector<std::string>{"/bin/sh"});
  EXPECT_EQ(img.config.cmd, (std::vector<std::string>{"-c", "echo hi"}));
  EXPECT_EQ(img.config.env, (std::vector<std::string>{"PATH=/bin:/usr/bin", "FOO=bar"}));
  EXPECT_EQ(img.config.working_dir, "/data");
  EXPECT_EQ(img.config.user, "1000:1000");
  EXPECT_EQ(img.config.exposed_ports, std::vector<std::string>{"8080/tcp"});
  EXPECT_EQ(img.os, "linux");
  int64_t blobs =
      static_cast<int64_t>(image_.manifest.bytes.size() + image_.config.bytes.size() +
                           image_.layers[0].bytes.size() + image_.layers[1].bytes.size());
  EXPECT_EQ(img.size, blobs);
  EXPECT_EQ(progressed,
            (std::vector<std::string>{image_.layers[0].digest(), image_.layers[1].digest()}));
  // The same image is found by tag, short tag, digest, ID and ID prefix.
  for (const std::string& ref : std::vector<std::string>{
           "test/busybox:1", "docker.io/test/busybox:1", "test/busybox@" + image_.manifest.digest(),
           id(), id().substr(7), id().substr(7, 12)}) {
    auto got = store_->get(ref);
    ASSERT_TRUE(got.ok()) << ref << ": " << got.status().to_string();
    EXPECT_EQ(got->id, id());
  }
  EXPECT_TRUE(store_->get("test/busybox:2").status().is_not_found());
  EXPECT_TRUE(store_->get("busybox").status().is_not_found());
}

TEST_F(ImageStoreTest, ImportsOciAndDockerArchiveTarsIntoOneImage) {
  std::string oci_tar = tmp_.path() + "/oci.tar";
  std::string docker_tar = tmp_.path() + "/docker.tar.gz";
  ASSERT_EQ(testing::run("tar -C " + oci_dir_ + " -cf " + oci_tar + " ."), 0);
  ASSERT_EQ(testing::run("tar -C " + docker_dir_ + " -czf " + docker_tar + " ."), 0);
  ImportOptions o;
  o.name = "test/busybox";
  auto a = store_->import(oci_tar, o);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto b = store_->import(docker_tar, {});
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*b)[0].id, id()) << "the same config is the same image";
  EXPECT_EQ((*b)[0].repo_tags, (std::vector<std::string>{"docker.io/test/busybox:1",
                                                         "docker.io/test/busybox:docker"}));
  // The gzip'd and the plain copy of layer 1 unpack to the same diff_id: one directory each.
  EXPECT_EQ(count_entries(store_->root() + "/layers/sha256"), 2u);
  EXPECT_EQ(count_entries(store_->root() + "/tmp"), 0u) << "the extracted archives are gone";
  auto list = store_->list();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
}

TEST_F(ImageStoreTest, ImportsADockerArchiveWithLinkedLayers) {
  // docker save links identical layer.tar files instead of storing them twice.
  auto img = testing::make_image({image_.tars[1], image_.tars[1]}, {}, tmp_.path());
  std::string dir = tmp_.path() + "/linked";
  img.write_docker_archive(dir, "linked:v1");
  std::filesystem::remove(dir + "/layer1/layer.tar");
  std::filesystem::create_symlink("../layer0/layer.tar", dir + "/layer1/layer.tar");
  std::string tar = tmp_.path() + "/linked.tar";
  ASSERT_EQ(testing::run("tar -C " + dir + " -cf " + tar + " ."), 0);
  auto r = store_->import(tar, {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)[0].repo_tags, std::vector<std::string>{"docker.io/library/linked:v1"});
}

TEST_F(ImageStoreTest, RejectsArchivesWithWrongContent) {
  // A layer blob that does not match the digest its manifest names.
  std::string blob = oci_dir_ + "/blobs/sha256/" + image_.layers[1].digest().substr(7);
  std::string bytes = read_all(blob);
  bytes[600] ^= 1;
  testing::write_all(blob, bytes);
  auto r = store_->import(oci_dir_, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
  EXPECT_NE(r.status().message().find("digest mismatch for " + image_.layers[1].digest()),
            std::string::npos)
      << r.status().message();
  EXPECT_FALSE(exists(store_->root() + "/blobs/sha256/" + image_.layers[1].digest().substr(7)));

  // A config whose diff_ids do not match the layers.
  auto wrong = testing::make_image({image_.tars[1]}, {}, tmp_.path());
  wrong.tars = {image_.tars[0]};
  std::string dir = tmp_.path() + "/wrong";
  wrong.write_docker_archive(dir, "wrong:1");
  auto w = store_->import(dir, {});
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("not the diff_id"), std::string::npos)
      << w.status().message();
  EXPECT_TRUE(store_->get("wrong:1").status().is_not_found());

  auto none = store_->import(tmp_.path() + "/nope", {});
  EXPECT_TRUE(none.status().is_not_found());
  auto neither = store_->import(tmp_.path(), {});
  EXPECT_EQ(neither.status().code(), StatusCode::kInvalid);
}

TEST_F(ImageStoreTest, UnpacksLayersOnceAndStacksThemWithOverlayfs) {
  ImportOptions o;
  o.name = "test/busybox";
  ASSERT_TRUE(store_->import(oci_dir_, o).ok());
  auto lowers = store_->lower_dirs("test/busybox:1");
  ASSERT_TRUE(lowers.ok()) << lowers.status().to_string();
  ASSERT_EQ(lowers->size(), 2u);
  const std::string top = (*lowers)[0], bottom = (*lowers)[1];
  EXPECT_EQ(top, store_->root() + "/layers/sha256/" + sha256_digest(image_.tars[1]).substr(7));
  EXPECT_EQ(bottom, store_->root() + "/layers/sha256/" + sha256_digest(image_.tars[0]).substr(7));
  EXPECT_EQ(read_all(bottom + "/bin/busybox"), read_all("/bin/busybox"));
  EXPECT_EQ(read_all(bottom + "/data/old.txt"), "old\n");

  // Importing again unpacks nothing: the layer directories are the same inodes.
  struct stat before, after;
  ASSERT_EQ(::stat(bottom.c_str(), &before), 0);
  ASSERT_TRUE(store_->import(oci_dir_, o).ok());
  ASSERT_EQ(::stat(bottom.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);

  if (::geteuid() != 0) GTEST_SKIP() << "mounting overlayfs needs root";
  std::string merged = tmp_.path() + "/merged";
  ASSERT_EQ(::mkdir(merged.c_str(), 0755), 0);
  std::string opts = "lowerdir=" + top + ":" + bottom;
  ASSERT_EQ(::mount("overlay", merged.c_str(), "overlay", MS_RDONLY, opts.c_str()), 0)
      << std::strerror(errno);
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{merged};
  EXPECT_FALSE(exists(merged + "/data/old.txt")) << "the whiteout hides the lower file";
  EXPECT_EQ(read_all(merged + "/data/keep.txt"), "keep\n");
  EXPECT_TRUE(exists(merged + "/opq/z.txt"));
  EXPECT_FALSE(exists(merged + "/opq/x.txt")) << "the opaque directory hides the lower ones";
  EXPECT_FALSE(exists(merged + "/opq/y.txt"));
  EXPECT_EQ(read_all(merged + "/etc/hostname"), "layer2\n");
  struct stat st;
  ASSERT_EQ(::stat((merged + "/data").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  ASSERT_EQ(::stat((merged + "/tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  ASSERT_EQ(::lstat((merged + "/dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  // The stacked tree is a root file system busybox runs in.
  std::string out;
  EXPECT_EQ(
      testing::run("chroot " + merged + " /bin/sh -c 'cat /etc/hostname; ls /opq; ls /data'", &out),
      0)
      << out;
  EXPECT_EQ(out, "layer2\nz.txt\nkeep-link.txt\nkeep.txt\n");
}

TEST_F(ImageStoreTest, RemoveUntagsThenDeletesAndGcReclaimsTheDisk) {
  ImportOptions o;
  o.name = "test/busybox";
  ASSERT_TRUE(store_->import(oci_dir_, o).ok());
  ASSERT_TRUE(store_->import(docker_dir_, {}).ok());
  int64_t full = store_->disk_usage();
  EXPECT_GT(full, static_cast<int64_t>(2 * read_all("/bin/busybox").size()))
      << "a blob and an unpacked copy of busybox";

  // One of two tags: only untagged, in use or not.
  auto always_in_use = [](const std::string&) { return true; };
  ASSERT_TRUE(store_->remove("test/busybox:docker", always_in_use).ok());
  auto img = store_->get(id());
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->repo_tags, std::vector<std::string>{"docker.io/test/busybox:1"});

  // The last tag of an image in use: refused, nothing changes.
  std::string asked;
  Status busy = store_->remove("test/busybox:1", [&](const std::string& image_id) {
    asked = image_id;
    return true;
  });
  EXPECT_EQ(busy.code(), StatusCode::kConflict);
  EXPECT_NE(busy.message().find("in use"), std::string::npos);
  EXPECT_EQ(asked, id());
  EXPECT_TRUE(store_->get("test/busybox:1").ok());

  auto kept = store_->gc();
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->removed_layers, 0);
  EXPECT_TRUE(store_->lower_dirs("test/busybox:1").ok());

  ASSERT_TRUE(store_->remove("test/busybox:1").ok());
  EXPECT_TRUE(store_->get(id()).status().is_not_found());
  EXPECT_TRUE(store_->remove("test/busybox:1").is_not_found());
  auto list = store_->list();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());

  auto gc = store_->gc();
  ASSERT_TRUE(gc.ok()) << gc.status().to_string();
  EXPECT_EQ(gc->removed_layers, 2);
  // manifest, config, gzip'd layer 1, plain layer 1, layer 2, the docker-archive manifest.
  EXPECT_EQ(gc->removed_blobs, 6);
  EXPECT_GT(gc->freed_bytes, 0);
  EXPECT_LT(store_->disk_usage(), full / 10);
  EXPECT_EQ(count_entries(store_->root() + "/blobs/sha256"), 0u);
  EXPECT_EQ(count_entries(store_->root() + "/layers/sha256"), 0u);
}

TEST_F(ImageStoreTest, RemovingByDigestOrIdRemovesEveryTag) {
  ImportOptions o;
  o.name = "test/busybox";
  ASSERT_TRUE(store_->import(oci_dir_, o).ok());
  ASSERT_TRUE(store_->import(docker_dir_, {}).ok());
  ASSERT_TRUE(store_->remove(id().substr(7, 12)).ok());
  EXPECT_TRUE(store_->get("test/busybox:1").status().is_not_found());
  EXPECT_TRUE(store_->get("test/busybox:docker").status().is_not_found());
  ASSERT_TRUE(store_->import(oci_dir_, o).ok());
  ASSERT_TRUE(store_->remove("test/busybox@" + image_.manifest.digest()).ok());
  EXPECT_TRUE(store_->get(id()).status().is_not_found());
}

TEST_F(ImageStoreTest, SurvivesACrashMidWrite) {
  ImportOptions o;
  o.name = "test/busybox";
  ASSERT_TRUE(store_->import(oci_dir_, o).ok());
  std::string root = store_->root();
  store_.reset();
  // What a crash leaves: a half-written blob, a half-unpacked layer, a temp index, and a
  // layer whose directory never got renamed into place.
  testing::write_all(root + "/tmp/blob-0123", "partial");
  std::filesystem::create_directories(root + "/tmp/layer-4567/bin");
  testing::write_all(root + "/index.json.tmp-89ab", "{\"trunc");
  std::string top_layer = root + "/layers/sha256/" + sha256_digest(image_.tars[1]).substr(7);
  std::filesystem::remove_all(top_layer);

  auto reopened = ImageStore::open(data_);
  ASSERT_TRUE(reopened.ok()) << reopened.status().to_string();
  store_ = std::move(*reopened);
  EXPECT_EQ(count_entries(root + "/tmp"), 0u);
  EXPECT_FALSE(exists(root + "/index.json.tmp-89ab"));
  auto img = store_->get("test/busybox:1");
  ASSERT_TRUE(img.ok()) << img.status().to_string();
  auto lowers = store_->lower_dirs("test/busybox:1");
  ASSERT_TRUE(lowers.ok()) << lowers.status().to_string();
  EXPECT_EQ((*lowers)[0], top_layer);
  EXPECT_EQ(read_all(top_layer + "/etc/hostname"), "layer2\n") << "unpacked again from its blob";
}

TEST_F(ImageStoreTest, ConcurrentImportsAndGcKeepTheStoreConsistent) {
  ImportOptions o;
  o.name = "test/busybox";
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      if (!store_->import(oci_dir_, o).ok()) ++failures;
    });
  }
  threads.emplace_back([&] {
    if (!store_->gc().ok()) ++failures;
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  auto lowers = store_->lower_dirs("test/busybox:1");
  ASSERT_TRUE(lowers.ok()) << lowers.status().to_string();
  for (const auto& d : *lowers) EXPECT_TRUE(exists(d + "/etc"));
  auto gc = store_->gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->removed_blobs, 0);
  EXPECT_EQ(gc->removed_layers, 0);
}

TEST_F(ImageStoreTest, ImageCommandImportsListsAndRemoves) {
  auto cli = [&](std::vector<std::string> args) {
    args.push_back("--data-dir=" + data_);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    ::testing::internal::CaptureStdout();
    int rc = run_image_command(static_cast<int>(argv.size()), argv.data());
    std::string out = ::testing::internal::GetCapturedStdout();
    return std::make_pair(rc, out);
  };
  auto [rc, out] = cli({"import", oci_dir_, "--name", "test/busybox"});
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("imported docker.io/test/busybox:1"), std::string::npos) << out;
  std::tie(rc, out) = cli({"ls"});
  EXPECT_EQ(rc, 0);
  std::string short_id = id().substr(7, 13);
  EXPECT_EQ(out.substr(0, out.find('\n')).find("IMAGE"), 0u) << out;
  EXPECT_NE(out.find("TAG"), std::string::npos);
  EXPECT_NE(out.find("IMAGE ID"), std::string::npos);
  EXPECT_NE(out.find("SIZE"), std::string::npos);
  EXPECT_NE(out.find("docker.io/test/busybox   1     " + short_id), std::string::npos) << out;
  EXPECT_NE(out.find("MB"), std::string::npos) << out;
  std::tie(rc, out) = cli({"rm", "test/busybox:1"});
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("Deleted: test/busybox:1"), std::string::npos);
  std::tie(rc, out) = cli({"ls"});
  EXPECT_EQ(out.find("busybox"), std::string::npos) << out;
  EXPECT_EQ(count_entries(store_->root() + "/layers/sha256"), 0u) << "rm reclaims the disk";
  std::tie(rc, out) = cli({"rm", "test/busybox:1"});
  EXPECT_EQ(rc, 1);
  std::tie(rc, out) = cli({"frobnicate"});
  EXPECT_EQ(rc, 2);
}

}  // namespace
}  // namespace skiff::agent::images
