#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "apiserver/pki/crypto.h"
#include "apiserver/pki/pki.h"
#include "common/base64.h"
#include "test_support.h"

namespace skiff::apiserver::pki {
namespace {

using testing::mode_of;
using testing::options_in;
using testing::read_all;
using testing::TempDir;

std::string decoded(const YAML::Node& node) {
  Result<std::string> bytes = base64_decode_strict(node.as<std::string>());
  return bytes.ok() ? *bytes : std::string("<not base64>");
}

TEST(KubeconfigTest, EmbedsCaAndAdminCredentialsForContextSkiff) {
  TempDir dir;
  Pki pki;
  ASSERT_TRUE(ensure_pki(options_in(dir), &pki).ok());
  std::string path = dir.path() + "/etc/skiff/skiff.yaml";
  ASSERT_TRUE(write_kubeconfig(path, "https://127.0.0.1:6443", pki).ok());
  EXPECT_EQ(mode_of(path), 0600);
  EXPECT_EQ(mode_of(dir.path() + "/etc/skiff"), 0700);

  YAML::Node config = YAML::Load(read_all(path));
  EXPECT_EQ(config["apiVersion"].as<std::string>(), "v1");
  EXPECT_EQ(config["kind"].as<std::string>(), "Config");
  EXPECT_EQ(config["current-context"].as<std::string>(), "skiff");

  ASSERT_EQ(config["clusters"].size(), 1u);
  YAML::Node cluster = config["clusters"][0];
  EXPECT_EQ(cluster["name"].as<std::string>(), "skiff");
  EXPECT_EQ(cluster["cluster"]["server"].as<std::string>(), "https://127.0.0.1:6443");
  EXPECT_EQ(decoded(cluster["cluster"]["certificate-authority-data"]), pki.ca_cert_pem);

  ASSERT_EQ(config["contexts"].size(), 1u);
  YAML::Node context = config["contexts"][0];
  EXPECT_EQ(context["name"].as<std::string>(), "skiff");
  EXPECT_EQ(context["context"]["cluster"].as<std::string>(), "skiff");
  EXPECT_EQ(context["context"]["user"].as<std::string>(), "admin");

  ASSERT_EQ(config["users"].size(), 1u);
  YAML::Node user = config["users"][0];
  EXPECT_EQ(user["name"].as<std::string>(), "admin");
  EXPECT_EQ(decoded(user["user"]["client-certificate-data"]), pki.admin_cert_pem);
  EXPECT_EQ(decoded(user["user"]["client-key-data"]), pki.admin_key_pem);
}

TEST(KubeconfigTest, RewriteReplacesTheFileAtomically) {
  TempDir dir;
  Pki pki;
  ASSERT_TRUE(ensure_pki(options_in(dir), &pki).ok());
  std::string path = dir.path() + "/kubeconfig";
  testing::write_all(path, "old");
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  ASSERT_TRUE(write_kubeconfig(path, "https://[::1]:6443/", pki).ok());
  EXPECT_EQ(mode_of(path), 0600);
  YAML::Node config = YAML::Load(read_all(path));
  EXPECT_EQ(config["clusters"][0]["cluster"]["server"].as<std::string>(), "https://[::1]:6443/");
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

TEST(KubeconfigTest, QuotesCharactersYamlWouldMisread) {
  TempDir dir;
  Pki pki;
  ASSERT_TRUE(ensure_pki(options_in(dir), &pki).ok());
  std::string path = dir.path() + "/kubeconfig";
  std::string url = "https://h:6443/#\"x\\y:z'";
  ASSERT_TRUE(write_kubeconfig(path, url, pki).ok());
  EXPECT_EQ(YAML::Load(read_all(path))["clusters"][0]["cluster"]["server"].as<std::string>(), url);
}

TEST(KubeconfigTest, BadInputIsInvalid) {
  TempDir dir;
  Pki pki;
  ASSERT_TRUE(ensure_pki(options_in(dir), &pki).ok());
  std::string path = dir.path() + "/kubeconfig";
  for (const char* url : {"", "http://127.0.0.1:6443", "https://", "https://a b", "127.0.0.1"}) {
    EXPECT_EQ(write_kubeconfig(path, url, pki).code(), StatusCode::kInvalid) << url;
  }
  EXPECT_EQ(write_kubeconfig(path, "https://h:1", Pki{}).code(), StatusCode::kInvalid);
  EXPECT_EQ(write_kubeconfig("", "https://h:1", pki).code(), StatusCode::kInvalid);
  EXPECT_FALSE(std::filesystem::exists(path));
  // A parent that is a file is reported, not crashed on.
  testing::write_all(dir.path() + "/file", "x");
  EXPECT_EQ(write_kubeconfig(dir.path() + "/file/kubeconfig", "https://h:1", pki).code(),
            StatusCode::kInternal);
}

}  // namespace
}  // namespace skiff::apiserver::pki
