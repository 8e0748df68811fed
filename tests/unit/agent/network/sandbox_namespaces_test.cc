#include "agent/network/sandbox_namespaces.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "net_test_util.h"

namespace skiff::agent::network {
namespace {

class SandboxNamespacesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::running_as_root()) GTEST_SKIP() << "needs root (namespaces, mounts)";
    state_ = std::make_unique<testing::TempDir>();
    root_ = state_->path() + "/netns";
  }
  void TearDown() override {
    if (state_ == nullptr) return;
    Status s = remove_all_sandbox_namespaces(root_);
    EXPECT_TRUE(s.ok()) << s.to_string();
  }

  std::unique_ptr<testing::TempDir> state_;
  std::string root_;
};

ino_t inode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST_F(SandboxNamespacesTest, CreatesLiveNamespacesWithTheHostname) {
  auto p = create_sandbox_namespaces(root_, "uid-1", "my-pod");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->net, root_ + "/uid-1/net");
  EXPECT_TRUE(sandbox_namespaces_alive(*p));
  EXPECT_EQ(testing::hostname_in(p->uts), "my-pod");
  EXPECT_NE(inode(p->net), inode("/proc/self/ns/net"));
  EXPECT_NE(inode(p->ipc), inode("/proc/self/ns/ipc"));
  EXPECT_NE(inode(p->uts), inode("/proc/self/ns/uts"));
  // The test process itself stayed where it was.
  EXPECT_NE(testing::hostname_in("/proc/self/ns/uts"), "my-pod");
  EXPECT_EQ(list_sandbox_namespace_dirs(root_), std::vector<std::string>{"uid-1"});
}

TEST_F(SandboxNamespacesTest, CreatingAgainKeepsTheLiveNamespaces) {
  auto first = create_sandbox_namespaces(root_, "uid-1", "one");
  ASSERT_TRUE(first.ok());
  ino_t net = inode(first->net);
  auto second = create_sandbox_namespaces(root_, "uid-1", "two");
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_EQ(inode(second->net), net);
  EXPECT_EQ(testing::hostname_in(second->uts), "one");
}

TEST_F(SandboxNamespacesTest, RemovalUnmountsAndDeletesAndIsIdempotent) {
  auto p = create_sandbox_namespaces(root_, "uid-2", "pod");
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(remove_sandbox_namespaces(*p).ok());
  EXPECT_FALSE(is_namespace_mount(p->net));
  EXPECT_FALSE(testing::file_exists(p->dir));
  EXPECT_TRUE(remove_sandbox_namespaces(*p).ok());
  EXPECT_TRUE(list_sandbox_namespace_dirs(root_).empty());
}

TEST_F(SandboxNamespacesTest, DeadLeftoversAreReplaced) {
  // Plain files where namespaces were (what a reboot leaves behind) are not alive.
  SandboxNamespacePaths p = sandbox_namespace_paths(root_, "uid-3");
  ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(p.dir.c_str(), 0755), 0);
  for (const auto& f : {p.net, p.ipc, p.uts}) std::ofstream(f) << "";
  EXPECT_FALSE(sandbox_namespaces_alive(p));
  auto created = create_sandbox_namespaces(root_, "uid-3", "pod");
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  EXPECT_TRUE(sandbox_namespaces_alive(*created));
}

TEST_F(SandboxNamespacesTest, RejectsBadUidsAndHostnames) {
  EXPECT_EQ(create_sandbox_namespaces(root_, "../x", "pod").status().code(), StatusCode::kInvalid);
  EXPECT_EQ(create_sandbox_namespaces(root_, "", "pod").status().code(), StatusCode::kInvalid);
  EXPECT_EQ(create_sandbox_namespaces(root_, "uid", std::string(65, 'a')).status().code(),
            StatusCode::kInvalid);
}

TEST_F(SandboxNamespacesTest, RemoveAllLeavesNoMountBehind) {
  ASSERT_TRUE(create_sandbox_namespaces(root_, "a", "a").ok());
  ASSERT_TRUE(create_sandbox_namespaces(root_, "b", "b").ok());
  ASSERT_TRUE(remove_all_sandbox_namespaces(root_).ok());
  EXPECT_FALSE(testing::file_exists(root_));
  std::ifstream mounts("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mounts, line)) {
    EXPECT_EQ(line.find(state_->path()), std::string::npos) << line;
  }
  EXPECT_TRUE(remove_all_sandbox_namespaces(root_).ok());
}

}  // namespace
}  // namespace skiff::agent::network
