#include "agent/images/layer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "agent/images/digest.h"
#include "common/random.h"
#include "test_image.h"

namespace skiff::agent::images {
namespace {

using testing::make_tar;
using testing::read_all;
using testing::TarEntry;
using testing::TempDir;
using testing::write_all;

struct Unpacked {
  Result<UnpackedLayer> result = Status::Internal("not run");
  std::string dir;
};

Unpacked unpack(const TempDir& tmp, const std::string& blob, const std::string& name = "layer") {
  Unpacked u;
  std::string path = tmp.path() + "/" + name + ".blob";
  write_all(path, blob);
  u.dir = tmp.path() + "/" + name;
  ::mkdir(u.dir.c_str(), 0755);
  u.result = unpack_layer(path, u.dir);
  return u;
}

bool exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

TEST(UnpackLayer, KeepsContentModesOwnershipAndLinks) {
  TempDir tmp;
  std::vector<TarEntry> entries = {
      {"bin/", '5', "", "", 0755},
      {"bin/tool", '0', "#!/bin/sh\necho hi\n", "", 0755},
      {"bin/sh", '2', "", "tool", 0777},
      {"bin/abs", '2', "", "/bin/tool", 0777},
      {"bin/tool2", '1', "", "bin/tool", 0755},
      {"secret/", '5', "", "", 0700, 1000, 2000},
      {"secret/key", '0', "k", "", 0400, 1000, 2000},
      {"ro/", '5', "", "", 0555},
      {"ro/inside", '0', "written before its dir became read-only", "", 0644},
      {"suid", '0', "x", "", 04755},
      {"implicit/parent/file", '0', "p", "", 0644},
      {"fifo", '6', "", "", 0600},
  };
  std::string tar = make_tar(entries);
  auto u = unpack(tmp, tar);
  ASSERT_TRUE(u.result.ok()) << u.result.status().to_string();
  EXPECT_EQ(u.result->diff_id, sha256_digest(tar));
  EXPECT_EQ(read_all(u.dir + "/bin/tool"), "#!/bin/sh\necho hi\n");
  struct stat st;
  ASSERT_EQ(::stat((u.dir + "/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_nlink, 2u) << "bin/tool2 is a hard link to bin/tool";
  char target[256] = {};
  ASSERT_GT(::readlink((u.dir + "/bin/abs").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "/bin/tool") << "absolute symlinks are kept as they are, not followed";
  ASSERT_EQ(::lstat((u.dir + "/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::lstat((u.dir + "/ro").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  EXPECT_EQ(read_all(u.dir + "/ro/inside"), "written before its dir became read-only");
  ASSERT_EQ(::lstat((u.dir + "/implicit/parent").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::lstat((u.dir + "/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  if (::geteuid() == 0) {
    ASSERT_EQ(::lstat((u.dir + "/secret/key").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1000u);
    EXPECT_EQ(st.st_gid, 2000u);
    ASSERT_EQ(::lstat((u.dir + "/suid").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 04755u) << "setuid survives the chown";
  }
}

TEST(UnpackLayer, ConvertsOciWhiteoutsToOverlayWhiteouts) {
  if (::geteuid() != 0) GTEST_SKIP() << "trusted.overlay xattrs need root";
  TempDir tmp;
  auto u = unpack(tmp, make_tar({
                           {"a/", '5', "", "", 0755},
                           {"a/.wh.gone", '0', "", "", 0644},
                           {"b/.wh..wh..opq", '0', "", "", 0644},
                           {"b/new", '0', "n", "", 0644},
                           {".wh.topdir", '0', "", "", 0644},
                           {"c/.wh..wh.plnk", '0', "", "", 0644},
                       }));
  ASSERT_TRUE(u.result.ok()) << u.result.status().to_string();
  struct stat st;
  ASSERT_EQ(::lstat((u.dir + "/a/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_FALSE(exists(u.dir + "/a/.wh.gone"));
  ASSERT_EQ(::lstat((u.dir + "/topdir").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  char value[8] = {};
  ASSERT_EQ(::lgetxattr((u.dir + "/b").c_str(), "trusted.overlay.opaque", value, sizeof value), 1);
  EXPECT_EQ(value[0], 'y');
  EXPECT_FALSE(exists(u.dir + "/b/.wh..wh..opq"));
  EXPECT_TRUE(exists(u.dir + "/b/new"));
  EXPECT_FALSE(exists(u.dir + "/c/.wh..wh.plnk"));
}

TEST(UnpackLayer, DropsOverlayXattrsCarriedByTheLayer) {
  if (::geteuid() != 0) GTEST_SKIP() << "trusted xattrs need root";
  TempDir tmp;
  // A PAX header forging trusted.overlay.opaque on a directory, beside an ordinary xattr.
  auto record = [](const std::string& kv) {
    std::string body = " " + kv + "\n";
    size_t len = body.size() + 1;
    while (std::to_string(len).size() + body.size() != len) ++len;
    return std::to_string(len) + body;
  };
  std::string pax =
      record("SCHILY.xattr.trusted.overlay.opaque=y") + record("SCHILY.xattr.user.kept=1");
  std::string with_pax = make_tar({{"PaxHeader", 'x', pax, "", 0644}, {"d/", '5', "", "", 0755}});
  auto u = unpack(tmp, with_pax);
  ASSERT_TRUE(u.result.ok()) << u.result.status().to_string();
  char value[8];
  EXPECT_LT(::lgetxattr((u.dir + "/d").c_str(), "trusted.overlay.opaque", value, sizeof value), 0);
  EXPECT_EQ(::lgetxattr((u.dir + "/d").c_str(), "user.kept", value, sizeof value), 1)
      << "other xattrs of the layer are kept";
}

TEST(UnpackLayer, NothingLandsOutsideTheLayerDirectory) {
  TempDir tmp;
  std::string tag = random_hex(6);
  std::string outside = tmp.path() + "/outside-" + tag;
  ::mkdir(outside.c_str(), 0755);
  auto u = unpack(tmp, make_tar({
                           {"../../escape-" + tag, '0', "dotdot", "", 0644},
                           {"/abs-" + tag, '0', "absolute", "", 0644},
                           {"rootlink", '2', "", "/", 0777},
                           {"rootlink/etc/via-root-" + tag, '0', "root", "", 0644},
                           {"up", '2', "", "../../../../../..", 0777},
                           {"up/via-up-" + tag, '0', "up", "", 0644},
                           {"abs-dir", '2', "", outside, 0777},
                           {"abs-dir/", '5', "", "", 0755},
                           {"abs-dir/via-abs-" + tag, '0', "abs", "", 0644},
                           {"hard-" + tag, '1', "", "../../../etc/passwd", 0644},
                       }));
  // Whatever the outcome, no path outside the layer was touched...
  EXPECT_FALSE(exists(tmp.path() + "/escape-" + tag));
  EXPECT_FALSE(exists("/escape-" + tag));
  EXPECT_FALSE(exists("/abs-" + tag));
  EXPECT_FALSE(exists("/etc/via-root-" + tag));
  EXPECT_FALSE(exists("/via-up-" + tag));
  EXPECT_FALSE(exists(outside + "/via-abs-" + tag));
  EXPECT_FALSE(exists(tmp.path() + "/via-up-" + tag));
  // ...the escaping names land inside it, resolved as if the layer were the root...
  EXPECT_EQ(read_all(u.dir + "/escape-" + tag), "dotdot");
  EXPECT_EQ(read_all(u.dir + "/abs-" + tag), "absolute");
  EXPECT_EQ(read_all(u.dir + "/etc/via-root-" + tag), "root");
  EXPECT_EQ(read_all(u.dir + "/via-up-" + tag), "up");
  // ...a directory entry replaces the symlink rather than following it...
  struct stat st;
  ASSERT_EQ(::lstat((u.dir + "/abs-dir").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(read_all(u.dir + "/abs-dir/via-abs-" + tag), "abs");
  // ...and a hard link to a file outside is refused.
  ASSERT_FALSE(u.result.ok());
  EXPECT_EQ(u.result.status().code(), StatusCode::kInvalid);
  EXPECT_NE(u.result.status().message().find("hard-" + tag), std::string::npos);
}

TEST(UnpackLayer, SkipsDeviceNodesUnlessRoot) {
  TempDir tmp;
  auto u = unpack(tmp, make_tar({{"dev/null", '3', "", "", 0666, 0, 0, 1, 3}}));
  ASSERT_TRUE(u.result.ok()) << u.result.status().to_string();
  struct stat st;
  if (::geteuid() == 0) {
    ASSERT_EQ(::lstat((u.dir + "/dev/null").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(st.st_rdev, makedev(1, 3));
  } else {
    EXPECT_FALSE(exists(u.dir + "/dev/null"));
  }
}

TEST(UnpackLayer, ReadsGzipAndZstdAndReportsTheUncompressedDigest) {
  TempDir tmp;
  std::string tar = make_tar({{"f", '0', std::string(100000, 'z'), "", 0644}});
  auto gz = unpack(tmp, testing::gzip(tar, tmp.path()), "gz");
  ASSERT_TRUE(gz.result.ok()) << gz.result.status().to_string();
  EXPECT_EQ(gz.result->diff_id, sha256_digest(tar));
  EXPECT_EQ(gz.result->content_size, 100000);
  if (testing::have_program("zstd")) {
    write_all(tmp.path() + "/z.tar", tar);
    ASSERT_EQ(testing::run("zstd -q -f " + tmp.path() + "/z.tar -o " + tmp.path() + "/z.tar.zst"),
              0);
    auto z = unpack(tmp, read_all(tmp.path() + "/z.tar.zst"), "zst");
    ASSERT_TRUE(z.result.ok()) << z.result.status().to_string();
    EXPECT_EQ(z.result->diff_id, sha256_digest(tar));
  }
}

TEST(UnpackLayer, RejectsGarbageWithAClearError) {
  TempDir tmp;
  auto u = unpack(tmp, std::string(3000, 'x'));
  ASSERT_FALSE(u.result.ok());
  EXPECT_EQ(u.result.status().code(), StatusCode::kInvalid);
  auto truncated = unpack(
      tmp, make_tar({{"f", '0', std::string(5000, 'a'), "", 0644}}).substr(0, 2000), "truncated");
  ASSERT_FALSE(truncated.result.ok());
}

}  // namespace
}  // namespace skiff::agent::images
