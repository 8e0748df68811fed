// Pod volumes: the atomic-writer layout, each volume type against an in-process API server
// (ConfigMaps, Secrets, TokenRequests), env from ConfigMaps and Secrets, and, with real
// containers, pods reading their volumes and env through the agent. Mounting tmpfs and running
// containers needs root; those tests skip with the reason otherwise.
#include "agent/volumes.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "agent/agent.h"
#include "agent/images/store.h"
#include "agent/network/pod_network.h"
#include "agent/pod_cgroups.h"
#include "agent/runtime/runtime.h"
#include "common/base64.h"
#include "testing/test_server.h"
#include "unit/agent/images/test_image.h"
#include "unit/agent/agent_fixture.h"
#include "unit/agent/network/net_test_util.h"

namespace skiff::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using skiff::testing::eventually;
using namespace std::chrono_literals;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream o;
  o << in.rdbuf();
  return o.str();
}

std::string link_target(const std::string& path) {
  std::error_code ec;
  auto t = fs::read_symlink(path, ec);
  return ec ? "" : t.string();
}

uint32_t file_mode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

bool mounted(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string a, b, c, d, point;
    f >> a >> b >> c >> d >> point;
    if (point == path) return true;
  }
  return false;
}

TEST(AtomicWriterTest, WritesTheKubeletLayoutAndSwapsDataOnChange) {
  network::testing::TempDir dir("skiff-vol-");
  std::string v = dir.path() + "/vol";
  ASSERT_TRUE(write_atomic_volume(v, {{"a", {"one", 0644}}, {"sub/b", {"two", 0400}}}, {}).ok());
  std::string first = link_target(v + "/..data");
  ASSERT_EQ(first.rfind("..", 0), 0u) << first;
  EXPECT_NE(first, "..data");
  EXPECT_EQ(link_target(v + "/a"), "..data/a");
  EXPECT_EQ(link_target(v + "/sub"), "..data/sub");
  EXPECT_EQ(slurp(v + "/a"), "one");
  EXPECT_EQ(slurp(v + "/sub/b"), "two");
  EXPECT_EQ(file_mode(v + "/" + first + "/a"), 0644u);
  EXPECT_EQ(file_mode(v + "/" + first + "/sub/b"), 0400u);

  // Same content: nothing is rewritten.
  ASSERT_TRUE(write_atomic_volume(v, {{"a", {"one", 0644}}, {"sub/b", {"two", 0400}}}, {}).ok());
  EXPECT_EQ(link_target(v + "/..data"), first);

  // New content: a new timestamped dir, the old one and the dropped name are gone.
  ASSERT_TRUE(write_atomic_volume(v, {{"a", {"uno", 0600}}}, {}).ok());
  std::string second = link_target(v + "/..data");
  EXPECT_NE(second, first);
  EXPECT_EQ(slurp(v + "/a"), "uno");
  EXPECT_EQ(file_mode(v + "/" + second + "/a"), 0600u);
  EXPECT_FALSE(fs::exists(v + "/" + first));
  EXPECT_FALSE(fs::exists(fs::symlink_status(v + "/sub")));
  EXPECT_FALSE(fs::exists(v + "/..data_tmp"));
}

TEST(AtomicWriterTest, RejectsPathsOutsideTheVolume) {
  network::testing::TempDir dir("skiff-vol-");
  for (const char* bad : {"../x", "/etc/passwd", "a/../../x", "..data", ""}) {
    Status s = write_atomic_volume(dir.path() + "/v", {{bad, {"x", 0644}}}, {});
    EXPECT_EQ(s.code(), StatusCode::kInvalid) << bad;
  }
}

TEST(DownwardApiTest, FieldsAndResourcesAsTheKubeletFormatsThem) {
  json pod = json::parse(R"({
    "metadata": {"name": "p", "namespace": "ns", "uid": "u-1",
                 "labels": {"b": "2", "a": "x\"y"}, "annotations": {"note": "hi"}},
    "spec": {"containers": [{"name": "c", "resources": {
        "limits": {"cpu": "1500m", "memory": "64Mi"}, "requests": {"cpu": "250m"}}}]}})");
  EXPECT_EQ(*downward_field_value(pod, "metadata.name"), "p");
  EXPECT_EQ(*downward_field_value(pod, "metadata.uid"), "u-1");
  EXPECT_EQ(*downward_field_value(pod, "metadata.labels"), "a=\"x\\\"y\"\nb=\"2\"");
  EXPECT_EQ(*downward_field_value(pod, "metadata.annotations['note']"), "hi");
  EXPECT_FALSE(downward_field_value(pod, "status.phase").ok());

  auto v = [&](const json& ref) { return *resource_field_value(pod, "c", ref, 8000, 1 << 30); };
  EXPECT_EQ(v({{"resource", "limits.cpu"}}), "2");
  EXPECT_EQ(v({{"resource", "limits.cpu"}, {"divisor", "1m"}}), "1500");
  EXPECT_EQ(v({{"resource", "requests.cpu"}, {"divisor", "1m"}}), "250");
  EXPECT_EQ(v({{"resource", "limits.memory"}, {"divisor", "1Mi"}}), "64");
  EXPECT_EQ(v({{"resource", "requests.memory"}}), "0");
  // No memory limit of its own: the node's.
  json nolimit = pod;
  nolimit["spec"]["containers"][0]["resources"] = json::object();
  EXPECT_EQ(*resource_field_value(nolimit, "c", {{"resource", "limits.memory"}}, 8000, 1 << 30),
            std::to_string(1 << 30));
}

std::string kind_of(const client::ResourceRef& r) {
  if (r.resource == "configmaps") return "ConfigMap";
  if (r.resource == "secrets") return "Secret";
  return "ServiceAccount";
}

// `obj` as a v1 object of r's kind.
json typed(const client::ResourceRef& r, json obj) {
  obj["apiVersion"] = "v1";
  obj["kind"] = kind_of(r);
  return obj;
}

class VolumeManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    client_ = server_.client("skiff-volumes-test");
    dir_ = std::make_unique<network::testing::TempDir>("skiff-vol-");
    VolumeManagerOptions o;
    o.pods_dir = dir_->path() + "/pods";
    o.node_cpu_milli = 4000;
    o.node_memory_bytes = int64_t{8} << 30;
    o.pods = [this] {
      std::vector<std::shared_ptr<const json>> out;
      for (const auto& p : pods_) out.push_back(std::make_shared<const json>(p));
      return out;
    };
    o.record_event = [this](const json&, const std::string& type, const std::string& reason,
                            const std::string& message) {
      std::lock_guard<std::mutex> l(events_mu_);
      events_.push_back(type + " " + reason + " " + message);
    };
    o.token_refresh_fraction = refresh_fraction_;
    manager_ = std::make_unique<VolumeManager>(*client_, std::move(o));
  }

  void TearDown() override {
    for (const auto& p : pods_) manager_->teardown(p["metadata"]["uid"]);
    manager_.reset();
  }

  void create(const client::ResourceRef& r, const json& obj) {
    json o = obj;
    o["apiVersion"] = "v1";
    o["kind"] = kind_of(r);
    auto c = client_->create(r.in("default"), o);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
  }

  void update(const client::ResourceRef& r, const std::string& name, const json& patch) {
    auto p = client_->patch(r.in("default"), name, client::PatchType::kMerge, patch.dump());
    ASSERT_TRUE(p.ok()) << p.status().to_string();
  }

  // A pod (not created in the API) with these volumes and one container mounting them.
  json& add_pod(const json& volumes, const json& mounts, bool automount = false) {
    std::string uid = "uid-" + network::testing::unique_suffix();
    json pod = {{"metadata", {{"name", "p-" + uid}, {"namespace", "default"}, {"uid", uid}}},
                {"spec",
                 {{"automountServiceAccountToken", automount},
                  {"volumes", volumes},
                  {"containers", {{{"name", "c"}, {"image", "x"}, {"volumeMounts", mounts}}}}}}};
    pods_.push_back(pod);
    return pods_.back();
  }

  std::string uid(const json& pod) { return pod["metadata"]["uid"]; }

  std::vector<std::string> events() {
    std::lock_guard<std::mutex> l(events_mu_);
    return events_;
  }

  double refresh_fraction_ = 0.8;
  skiff::testing::TestServer server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<network::testing::TempDir> dir_;
  std::vector<json> pods_;
  std::mutex events_mu_;
  std::vector<std::string> events_;
  std::unique_ptr<VolumeManager> manager_;
};

TEST_F(VolumeManagerTest, ConfigMapVolumeProjectsItemsWithModesAndFollowsUpdates) {
  create(client::resources::kConfigMaps,
         {{"metadata", {{"name", "cfg"}}},
          {"data", {{"a", "alpha"}, {"b", "beta"}}},
          {"binaryData", {{"bin", base64_encode(std::string("\x00\x01", 2))}}}});
  json& pod = add_pod(
      {{{"name", "all"}, {"configMap", {{"name", "cfg"}, {"defaultMode", 0600}}}},
       {{"name", "some"},
        {"configMap",
         {{"name", "cfg"}, {"items", {{{"key", "b"}, {"path", "dir/bee"}, {"mode", 0400}}}}}}}},
      {{{"name", "all"}, {"mountPath", "/etc/all"}},
       {{"name", "some"}, {"mountPath", "/etc/some"}}});
  ASSERT_TRUE(manager_->prepare(pod).ok());
  std::string all = manager_->volume_dir(uid(pod), "configmap", "all");
  std::string some = manager_->volume_dir(uid(pod), "configmap", "some");
  EXPECT_EQ(slurp(all + "/a"), "alpha");
  EXPECT_EQ(slurp(all + "/bin"), std::string("\x00\x01", 2));
  EXPECT_EQ(file_mode(all + "/..data/a"), 0600u);
  EXPECT_EQ(slurp(some + "/dir/bee"), "beta");
  EXPECT_EQ(file_mode(some + "/..data/dir/bee"), 0400u);
  EXPECT_FALSE(fs::exists(some + "/a"));

  auto mounts = manager_->container_mounts(pod, pod["spec"]["containers"][0], {});
  ASSERT_TRUE(mounts.ok()) << mounts.status().to_string();
  ASSERT_EQ(mounts->size(), 2u);
  EXPECT_EQ((*mounts)[0].container_path, "/etc/all");
  EXPECT_EQ((*mounts)[0].host_path, all);
  EXPECT_TRUE((*mounts)[0].read_only);  // API data is always mounted read-only

  update(client::resources::kConfigMaps, "cfg", {{"data", {{"a", "ALPHA"}, {"b", "beta"}}}});
  manager_->refresh_all();
  EXPECT_EQ(slurp(all + "/a"), "ALPHA");
}

TEST_F(VolumeManagerTest, BackgroundRefreshFollowsNotifiedChanges) {
  create(client::resources::kConfigMaps,
         {{"metadata", {{"name", "live"}}}, {"data", {{"k", "1"}}}});
  json& pod = add_pod({{{"name", "v"}, {"configMap", {{"name", "live"}}}}},
                      {{{"name", "v"}, {"mountPath", "/v"}}});
  ASSERT_TRUE(manager_->prepare(pod).ok());
  manager_->start();
  update(client::resources::kConfigMaps, "live", {{"data", {{"k", "2"}}}});
  manager_->notify_changed();
  std::string file = manager_->volume_dir(uid(pod), "configmap", "v") + "/k";
  EXPECT_TRUE(eventually([&] { return slurp(file) == "2"; }, 10s)) << slurp(file);
  manager_->stop();
}

TEST_F(VolumeManagerTest, MissingConfigMapFailsWithTheKubeletMessageUnlessOptional) {
  json& pod = add_pod({{{"name", "cfg"}, {"configMap", {{"name", "nope"}}}},
                       {{"name", "scratch"}, {"emptyDir", json::object()}}},
                      {{{"name", "cfg"}, {"mountPath", "/c"}}});
  Status s = manager_->prepare(pod);
  EXPECT_EQ(s.message(),
            "MountVolume.SetUp failed for volume \"cfg\" : configmap \"nope\" not found");
  // The other volume was still set up.
  EXPECT_TRUE(fs::is_directory(manager_->volume_dir(uid(pod), "empty-dir", "scratch")));
  EXPECT_FALSE(manager_->container_mounts(pod, pod["spec"]["containers"][0], {}).ok());
  ASSERT_EQ(events().size(), 1u);
  EXPECT_EQ(events()[0], "Warning FailedMount " + s.message());
  // The same failure again is not recorded twice in a row.
  EXPECT_FALSE(manager_->prepare(pod).ok());
  EXPECT_EQ(events().size(), 1u);

  json& opt = add_pod({{{"name", "cfg"}, {"configMap", {{"name", "nope"}, {"optional", true}}}}},
                      {{{"name", "cfg"}, {"mountPath", "/c"}}});
  EXPECT_TRUE(manager_->prepare(opt).ok());
  EXPECT_TRUE(fs::exists(manager_->volume_dir(uid(opt), "configmap", "cfg") + "/..data"));

  create(client::resources::kConfigMaps, {{"metadata", {{"name", "few"}}}, {"data", {{"a", "1"}}}});
  json& key =
      add_pod({{{"name", "cfg"},
                {"configMap", {{"name", "few"}, {"items", {{{"key", "zz"}, {"path", "z"}}}}}}}},
              {});
  EXPECT_EQ(manager_->prepare(key).message(),
            "MountVolume.SetUp failed for volume \"cfg\" : configmap references non-existent "
            "config key: zz");
}

TEST_F(VolumeManagerTest, SecretVolumeIsDecodedOnATmpfsThatTeardownUnmounts) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount tmpfs";
  create(client::resources::kSecrets,
         {{"metadata", {{"name", "creds"}}}, {"data", {{"password", base64_encode("s3cret")}}}});
  json& pod = add_pod({{{"name", "sec"}, {"secret", {{"secretName", "creds"}}}}},
                      {{{"name", "sec"}, {"mountPath", "/s"}}});
  ASSERT_TRUE(manager_->prepare(pod).ok());
  std::string dir = manager_->volume_dir(uid(pod), "secret", "sec");
  EXPECT_EQ(slurp(dir + "/password"), "s3cret");
  EXPECT_EQ(file_mode(dir + "/..data/password"), 0644u);
  EXPECT_TRUE(mounted(dir));
  manager_->teardown(uid(pod));
  EXPECT_FALSE(mounted(dir));
  EXPECT_FALSE(fs::exists(dir_->path() + "/pods/" + uid(pod) + "/volumes"));
  // A torn-down pod is not set up again by the refresh.
  manager_->refresh_all();
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(VolumeManagerTest, MemoryEmptyDirIsATmpfsOfItsSizeLimit) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount tmpfs";
  json& pod =
      add_pod({{{"name", "mem"}, {"emptyDir", {{"medium", "Memory"}, {"sizeLimit", "8Mi"}}}},
               {{"name", "disk"}, {"emptyDir", json::object()}}},
              {{{"name", "mem"}, {"mountPath", "/m"}},
               {{"name", "disk"}, {"mountPath", "/d"}, {"readOnly", true}}});
  ASSERT_TRUE(manager_->prepare(pod).ok());
  std::string mem = manager_->volume_dir(uid(pod), "empty-dir", "mem");
  std::string disk = manager_->volume_dir(uid(pod), "empty-dir", "disk");
  EXPECT_TRUE(mounted(mem));
  EXPECT_FALSE(mounted(disk));
  EXPECT_EQ(file_mode(disk), 0777u);
  EXPECT_EQ(fs::space(mem).capacity, 8u << 20);
  auto mounts = manager_->container_mounts(pod, pod["spec"]["containers"][0], {});
  ASSERT_TRUE(mounts.ok());
  EXPECT_FALSE((*mounts)[0].read_only);
  EXPECT_TRUE((*mounts)[1].read_only);
  manager_->teardown(uid(pod));
  EXPECT_FALSE(mounted(mem));
  EXPECT_FALSE(fs::exists(mem));
}

TEST_F(VolumeManagerTest, HostPathTypesAreCheckedAsKubernetesDoes) {
  std::string host = dir_->path() + "/host";
  fs::create_directories(host);
  { std::ofstream(host + "/file") << "x"; }
  auto check = [&](const std::string& path, const std::string& type) {
    json& pod = add_pod({{{"name", "h"}, {"hostPath", {{"path", path}, {"type", type}}}}}, {});
    return manager_->prepare(pod);
  };
  EXPECT_TRUE(check(host, "Directory").ok());
  EXPECT_EQ(check(host + "/missing", "Directory").message(),
            "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: " + host +
                "/missing is not a directory");
  EXPECT_EQ(check(host + "/file", "Directory").code(), StatusCode::kInvalid);
  EXPECT_TRUE(check(host + "/made/deep", "DirectoryOrCreate").ok());
  EXPECT_TRUE(fs::is_directory(host + "/made/deep"));
  EXPECT_TRUE(check(host + "/new-file", "FileOrCreate").ok());
  EXPECT_TRUE(fs::is_regular_file(host + "/new-file"));
  EXPECT_TRUE(check(host + "/file", "File").ok());
  EXPECT_NE(check(host, "File").message().find("is not a file"), std::string::npos);
  EXPECT_NE(check(host + "/file", "Socket").message().find("is not a socket file"),
            std::string::npos);
  EXPECT_NE(check(host, "Bogus").message().find("Bogus is an invalid volume type"),
            std::string::npos);
  EXPECT_TRUE(check(host + "/plain", "").ok());

  // subPath: made inside the volume when missing; never outside it.
  json& pod = add_pod({{{"name", "h"}, {"hostPath", {{"path", host}}}}},
                      {{{"name", "h"}, {"mountPath", "/x"}, {"subPath", "sp/one"}}});
  ASSERT_TRUE(manager_->prepare(pod).ok());
  auto mounts = manager_->container_mounts(pod, pod["spec"]["containers"][0], {});
  ASSERT_TRUE(mounts.ok()) << mounts.status().to_string();
  EXPECT_EQ((*mounts)[0].host_path, fs::canonical(host).string() + "/sp/one");
  EXPECT_TRUE(fs::is_directory(host + "/sp/one"));
  fs::create_symlink("/etc", host + "/escape");
  for (const char* bad : {"../x", "escape", "/abs"}) {
    json c = {{"name", "c"},
              {"volumeMounts", {{{"name", "h"}, {"mountPath", "/x"}, {"subPath", bad}}}}};
    EXPECT_EQ(manager_->container_mounts(pod, c, {}).status().message(),
              "failed to prepare subPath for volumeMount \"h\" of container \"c\"")
        << bad;
  }
  json c = {{"name", "c"},
            {"volumeMounts", {{{"name", "h"}, {"mountPath", "/x"}, {"subPathExpr", "$(POD)"}}}}};
  auto expr = manager_->container_mounts(pod, c, {"POD=web-1"});
  ASSERT_TRUE(expr.ok());
  EXPECT_EQ((*expr)[0].host_path, fs::canonical(host).string() + "/web-1");
}

TEST_F(VolumeManagerTest, DownwardApiVolumeFollowsTheLabels) {
  json& pod = add_pod(
      {{{"name", "info"},
        {"downwardAPI",
         {{"items",
           {{{"path", "labels"}, {"fieldRef", {{"fieldPath", "metadata.labels"}}}},
            {{"path", "name"}, {"fieldRef", {{"fieldPath", "metadata.name"}}}},
            {{"path", "mem"},
             {"resourceFieldRef",
              {{"containerName", "c"}, {"resource", "limits.memory"}, {"divisor", "1Mi"}}}}}}}}}},
      {{{"name", "info"}, {"mountPath", "/info"}}});
  pod["metadata"]["labels"] = {{"app", "web"}};
  ASSERT_TRUE(manager_->prepare(pod).ok());
  std::string dir = manager_->volume_dir(uid(pod), "downward-api", "info");
  EXPECT_EQ(slurp(dir + "/labels"), "app=\"web\"");
  EXPECT_EQ(slurp(dir + "/name"), pod["metadata"]["name"].get<std::string>());
  EXPECT_EQ(slurp(dir + "/mem"), "8192");
  pod["metadata"]["labels"]["tier"] = "front";
  manager_->refresh_all();
  EXPECT_EQ(slurp(dir + "/labels"), "app=\"web\"\ntier=\"front\"");
}

class TokenVolumeTest : public VolumeManagerTest {
 protected:
  void SetUp() override {
    VolumeManagerTest::SetUp();
    create(client::resources::kServiceAccounts, {{"metadata", {{"name", "default"}}}});
    create(client::resources::kServiceAccounts,
           {{"metadata", {{"name", "quiet"}}}, {"automountServiceAccountToken", false}});
  }
};

json claims_of(const std::string& token) {
  size_t a = token.find('.'), b = token.find('.', a + 1);
  auto d = base64url_decode(token.substr(a + 1, b - a - 1));
  return d.ok() ? json::parse(*d) : json();
}

TEST_F(TokenVolumeTest, ServiceAccountVolumeIsMountedUnlessDisabled) {
  json& pod = add_pod(json::array(), json::array());
  pod["spec"].erase("automountServiceAccountToken");
  ASSERT_TRUE(manager_->prepare(pod).ok());
  auto mounts = manager_->container_mounts(pod, pod["spec"]["containers"][0], {});
  ASSERT_TRUE(mounts.ok());
  ASSERT_EQ(mounts->size(), 1u);
  EXPECT_EQ((*mounts)[0].container_path, kServiceAccountMountPath);
  EXPECT_TRUE((*mounts)[0].read_only);
  std::string dir = (*mounts)[0].host_path;
  EXPECT_NE(dir.find("/volumes/kubernetes.io~projected/kube-api-access-"), std::string::npos);
  EXPECT_EQ(slurp(dir + "/namespace"), "default");
  EXPECT_NE(slurp(dir + "/ca.crt").find("BEGIN CERTIFICATE"), std::string::npos);
  json claims = claims_of(slurp(dir + "/token"));
  EXPECT_EQ(claims["sub"], "system:serviceaccount:default:default");
  EXPECT_EQ(claims["kubernetes.io"]["pod"]["uid"], uid(pod));
  EXPECT_EQ(claims["exp"].get<int64_t>() - claims["iat"].get<int64_t>(), 3607);

  // The pod says no, or its ServiceAccount does.
  json& off = add_pod(json::array(), json::array(), false);
  ASSERT_TRUE(manager_->prepare(off).ok());
  EXPECT_TRUE(manager_->container_mounts(off, off["spec"]["containers"][0], {})->empty());
  json& quiet = add_pod(json::array(), json::array());
  quiet["spec"].erase("automountServiceAccountToken");
  quiet["spec"]["serviceAccountName"] = "quiet";
  ASSERT_TRUE(manager_->prepare(quiet).ok());
  EXPECT_TRUE(manager_->container_mounts(quiet, quiet["spec"]["containers"][0], {})->empty());
}

TEST_F(TokenVolumeTest, ProjectedVolumeCombinesSourcesAndKeepsAFreshToken) {
  create(client::resources::kConfigMaps, {{"metadata", {{"name", "cfg"}}}, {"data", {{"k", "v"}}}});
  create(client::resources::kSecrets,
         {{"metadata", {{"name", "sec"}}}, {"data", {{"pw", base64_encode("x")}}}});
  json sources = {
      {{"configMap", {{"name", "cfg"}}}},
      {{"secret", {{"name", "sec"}, {"items", {{{"key", "pw"}, {"path", "creds/pw"}}}}}}},
      {{"downwardAPI",
        {{"items", {{{"path", "ns"}, {"fieldRef", {{"fieldPath", "metadata.namespace"}}}}}}}}},
      {{"serviceAccountToken",
        {{"path", "tok"}, {"audience", "vault"}, {"expirationSeconds", 600}}}}};
  json& pod =
      add_pod({{{"name", "all"}, {"projected", {{"sources", sources}, {"defaultMode", 0440}}}}},
              {{{"name", "all"}, {"mountPath", "/all"}}});
  ASSERT_TRUE(manager_->prepare(pod).ok());
  std::string dir = manager_->volume_dir(uid(pod), "projected", "all");
  EXPECT_EQ(slurp(dir + "/k"), "v");
  EXPECT_EQ(slurp(dir + "/creds/pw"), "x");
  EXPECT_EQ(slurp(dir + "/ns"), "default");
  EXPECT_EQ(file_mode(dir + "/..data/k"), 0440u);
  std::string token = slurp(dir + "/tok");
  json claims = claims_of(token);
  EXPECT_EQ(claims["aud"], json::array({"vault"}));
  EXPECT_EQ(claims["exp"].get<int64_t>() - claims["iat"].get<int64_t>(), 600);
  // Fresh: kept by a refresh.
  manager_->refresh_all();
  EXPECT_EQ(slurp(dir + "/tok"), token);
}

class TokenRefreshTest : public TokenVolumeTest {
 protected:
  void SetUp() override {
    refresh_fraction_ = 0;  // every token is due at once
    TokenVolumeTest::SetUp();
  }
};

TEST_F(TokenRefreshTest, TokenIsRequestedAgainOnceDue) {
  json& pod =
      add_pod({{{"name", "t"},
                {"projected", {{"sources", {{{"serviceAccountToken", {{"path", "token"}}}}}}}}}},
              {{{"name", "t"}, {"mountPath", "/t"}}});
  ASSERT_TRUE(manager_->prepare(pod).ok());
  std::string file = manager_->volume_dir(uid(pod), "projected", "t") + "/token";
  std::string first = slurp(file);
  ASSERT_FALSE(first.empty());
  manager_->refresh_all();
  std::string second = slurp(file);
  EXPECT_NE(second, first);
  EXPECT_NE(claims_of(second)["jti"], claims_of(first)["jti"]);
}

TEST_F(VolumeManagerTest, EnvFromConfigMapsAndSecrets) {
  create(client::resources::kConfigMaps,
         {{"metadata", {{"name", "cfg"}}}, {"data", {{"MODE", "fast"}, {"LEVEL", "3"}}}});
  create(client::resources::kSecrets,
         {{"metadata", {{"name", "sec"}}}, {"data", {{"TOKEN", base64_encode("t0k")}}}});
  json pod = {{"metadata", {{"name", "p"}, {"namespace", "default"}, {"uid", "u"}}}};
  json c = {{"name", "c"},
            {"envFrom",
             {{{"configMapRef", {{"name", "cfg"}}}, {"prefix", "CFG_"}},
              {{"secretRef", {{"name", "sec"}}}},
              {{"configMapRef", {{"name", "absent"}, {"optional", true}}}}}}};
  auto from = manager_->env_from(pod, c);
  ASSERT_TRUE(from.ok()) << from.status().to_string();
  std::map<std::string, std::string> got(from->begin(), from->end());
  EXPECT_EQ(got["CFG_MODE"], "fast");
  EXPECT_EQ(got["CFG_LEVEL"], "3");
  EXPECT_EQ(got["TOKEN"], "t0k");
  EXPECT_EQ(got.size(), 3u);

  json missing = {{"name", "c"}, {"envFrom", {{{"configMapRef", {{"name", "absent"}}}}}}};
  EXPECT_EQ(manager_->env_from(pod, missing).status().message(), "configmap \"absent\" not found");

  auto value = [&](const json& from) { return manager_->env_value(pod, c, from); };
  EXPECT_EQ(**value({{"configMapKeyRef", {{"name", "cfg"}, {"key", "MODE"}}}}), "fast");
  EXPECT_EQ(**value({{"secretKeyRef", {{"name", "sec"}, {"key", "TOKEN"}}}}), "t0k");
  EXPECT_EQ(value({{"configMapKeyRef", {{"name", "nope"}, {"key", "k"}}}}).status().message(),
            "configmap \"nope\" not found");
  EXPECT_EQ(value({{"secretKeyRef", {{"name", "nope"}, {"key", "k"}}}}).status().message(),
            "secret \"nope\" not found");
  EXPECT_EQ(value({{"configMapKeyRef", {{"name", "cfg"}, {"key", "zz"}}}}).status().message(),
            "couldn't find key zz in ConfigMap default/cfg");
  auto optional = value({{"secretKeyRef", {{"name", "nope"}, {"key", "k"}, {"optional", true}}}});
  ASSERT_TRUE(optional.ok());
  EXPECT_FALSE(optional->has_value());
}

// --- The agent with real containers ---

constexpr char kImage[] = "skiff.test/busybox:1.0";

class AgentVolumesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = testing::agent_test_skip_reason(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(server_.ok());
    client_ = server_.client("skiff-agent-volumes-test");
    data_dir_ = std::make_unique<network::testing::TempDir>("skiff-agent-vol-");
    host_dir_ = data_dir_->path() + "/host";
    fs::create_directories(host_dir_);
    options_ = testing::test_agent_options("vol", data_dir_->path());
    ASSERT_FALSE(options_.pod_cidr.empty()) << "no free 10.x.y.0/24 on this host";
    Status imported = testing::import_busybox_image(
        options_.data_dir, {"sh", "sleep", "echo", "cat", "true", "false", "ls", "test", "cp"});
    ASSERT_TRUE(imported.ok()) << imported.to_string();
    auto sa = client_->create(
        client::resources::kServiceAccounts.in("default"),
        typed(client::resources::kServiceAccounts, {{"metadata", {{"name", "default"}}}}));
    ASSERT_TRUE(sa.ok()) << sa.status().to_string();
    agent_ = std::make_unique<Agent>(*client_, options_);
    Status s = agent_->start();
    ASSERT_TRUE(s.ok()) << s.to_string();
  }

  void TearDown() override {
    agent_.reset();
    if (data_dir_ == nullptr) return;
    testing::remove_agent_leftovers(options_);
    data_dir_.reset();
  }

  json get_pod(const std::string& name) {
    auto p = client_->get(client::resources::kPods.in("default"), name);
    return p.ok() ? **p : json::object();
  }

  Status create_pod(const json& spec, const std::string& name) {
    json s = spec;
    s["nodeName"] = options_.node_name;
    s["terminationGracePeriodSeconds"] = 1;
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec", s}};
    return client_->create(client::resources::kPods.in("default"), pod).status();
  }

  std::string waiting_reason(const std::string& name) {
    json p = get_pod(name);
    auto& cs = p["status"]["containerStatuses"];
    if (!cs.is_array() || cs.empty()) return "";
    return cs[0]["state"].contains("waiting") ? cs[0]["state"]["waiting"].value("reason", "") : "";
  }

  // The pod's container logs and the files in the hostPath dir, for failure messages.
  std::string logs_of(const std::string& name) {
    std::string out;
    std::string uid = get_pod(name)["metadata"].value("uid", "");
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(
             options_.data_dir + "/agent/pods/" + uid + "/logs", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file()) out += it->path().string() + ":\n" + slurp(it->path()) + "\n";
    }
    for (const auto& e : fs::directory_iterator(host_dir_, ec)) {
      out += "host file " + e.path().filename().string() + "\n";
    }
    return out;
  }

  bool has_event(const std::string& reason, const std::string& text) {
    auto evs = client_->list(client::resources::kEvents.in("default"));
    if (!evs.ok()) return false;
    for (const auto& e : evs->items) {
      if ((*e).value("reason", "") == reason &&
          (*e).value("message", "").find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  skiff::testing::TestServer server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<network::testing::TempDir> data_dir_;
  std::string host_dir_;
  AgentOptions options_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(AgentVolumesTest, PodReadsConfigMapsSecretsAndTokenThroughFilesAndEnv) {
  ASSERT_TRUE(
      client_
          ->create(client::resources::kConfigMaps.in("default"),
                   typed(client::resources::kConfigMaps,
                         {{"metadata", {{"name", "app"}}}, {"data", {{"greeting", "hello"}}}}))
          .ok());
  ASSERT_TRUE(client_
                  ->create(client::resources::kSecrets.in("default"),
                           typed(client::resources::kSecrets,
                                 {{"metadata", {{"name", "pw"}}},
                                  {"data", {{"password", base64_encode("s3cret")}}}}))
                  .ok());
  json spec = {
      {"restartPolicy", "Never"},
      {"volumes",
       {{{"name", "cfg"}, {"configMap", {{"name", "app"}}}},
        {{"name", "sec"}, {"secret", {{"secretName", "pw"}}}},
        {{"name", "shared"}, {"emptyDir", {{"medium", "Memory"}}}},
        {{"name", "out"}, {"hostPath", {{"path", host_dir_}, {"type", "Directory"}}}}}},
      {"containers",
       {{{"name", "writer"},
         {"image", kImage},
         {"command", {"sh", "-c", "echo from-writer > /shared/msg; sleep 3600"}},
         {"volumeMounts", {{{"name", "shared"}, {"mountPath", "/shared"}}}}},
        {{"name", "main"},
         {"image", kImage},
         {"env",
          {{{"name", "PASSWORD"},
            {"valueFrom", {{"secretKeyRef", {{"name", "pw"}, {"key", "password"}}}}}}}},
         {"envFrom", {{{"configMapRef", {{"name", "app"}}}, {"prefix", "APP_"}}}},
         {"command",
          {"sh", "-c",
           "echo \"$APP_greeting $PASSWORD\" > /out/env; cat /etc/sec/password > /out/secret; "
           "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace > /out/ns; "
           "until test -f /shared/msg; do sleep 0.1; done; cp /shared/msg /out/shared; "
           "if echo x > /etc/cfg/x; then echo writable > /out/ro; else echo ro > /out/ro; fi; "
           "while true; do cat /etc/cfg/greeting > /out/live.tmp; cp /out/live.tmp /out/live; "
           "sleep 0.2; done"}},
         {"volumeMounts",
          {{{"name", "cfg"}, {"mountPath", "/etc/cfg"}},
           {{"name", "sec"}, {"mountPath", "/etc/sec"}},
           {{"name", "shared"}, {"mountPath", "/shared"}},
           {{"name", "out"}, {"mountPath", "/out"}}}}}}}};
  ASSERT_TRUE(create_pod(spec, "reader").ok());
  ASSERT_TRUE(eventually([&] { return slurp(host_dir_ + "/live") == "hello"; }, 60s))
      << get_pod("reader").dump(2) << logs_of("reader");
  EXPECT_EQ(slurp(host_dir_ + "/env"), "hello s3cret\n");
  EXPECT_EQ(slurp(host_dir_ + "/secret"), "s3cret");
  EXPECT_EQ(slurp(host_dir_ + "/ns"), "default");
  EXPECT_EQ(slurp(host_dir_ + "/shared"), "from-writer\n");
  EXPECT_EQ(slurp(host_dir_ + "/ro"), "ro\n");

  // An update reaches the running container through the ..data swap.
  auto p = client_->patch(client::resources::kConfigMaps.in("default"), "app",
                          client::PatchType::kMerge, R"({"data":{"greeting":"bonjour"}})");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(eventually([&] { return slurp(host_dir_ + "/live") == "bonjour"; }, 30s))
      << slurp(host_dir_ + "/live");

  // Deleting the pod removes its volumes (and unmounts the tmpfs ones).
  std::string uid = get_pod("reader")["metadata"]["uid"];
  std::string volumes = options_.data_dir + "/agent/pods/" + uid + "/volumes";
  ASSERT_TRUE(fs::exists(volumes));
  ASSERT_TRUE(client_->remove(client::resources::kPods.in("default"), "reader").ok());
  EXPECT_TRUE(eventually([&] { return !get_pod("reader").contains("metadata"); }, 30s));
  EXPECT_FALSE(fs::exists(volumes));
  std::ifstream in("/proc/self/mountinfo");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all.find(volumes), std::string::npos);
  EXPECT_TRUE(fs::exists(host_dir_ + "/live"));  // host paths are never touched
}

TEST_F(AgentVolumesTest, MissingSourcesBlockOnlyTheirPod) {
  json env_spec = {
      {"containers",
       {{{"name", "main"},
         {"image", kImage},
         {"command", {"sleep", "3600"}},
         {"env",
          {{{"name", "X"},
            {"valueFrom", {{"configMapKeyRef", {{"name", "absent"}, {"key", "k"}}}}}}}}}}}};
  ASSERT_TRUE(create_pod(env_spec, "bad-env").ok());
  json vol_spec = {{"volumes", {{{"name", "cfg"}, {"configMap", {{"name", "absent"}}}}}},
                   {"containers",
                    {{{"name", "main"},
                      {"image", kImage},
                      {"command", {"sleep", "3600"}},
                      {"volumeMounts", {{{"name", "cfg"}, {"mountPath", "/c"}}}}}}}};
  ASSERT_TRUE(create_pod(vol_spec, "bad-vol").ok());
  json ok_spec = {
      {"containers", {{{"name", "main"}, {"image", kImage}, {"command", {"sleep", "3600"}}}}}};
  ASSERT_TRUE(create_pod(ok_spec, "fine").ok());

  EXPECT_TRUE(
      eventually([&] { return waiting_reason("bad-env") == "CreateContainerConfigError"; }, 60s))
      << get_pod("bad-env").dump(2);
  json p = get_pod("bad-env");
  EXPECT_EQ(p["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
            "configmap \"absent\" not found");
  EXPECT_TRUE(
      eventually([&] { return has_event("FailedMount", "configmap \"absent\" not found"); }, 60s));
  EXPECT_TRUE(eventually([&] { return waiting_reason("bad-vol") == "ContainerCreating"; }, 30s));
  EXPECT_TRUE(
      eventually([&] { return get_pod("fine")["status"].value("phase", "") == "Running"; }, 60s));

  // Once the ConfigMap exists, both start.
  ASSERT_TRUE(client_
                  ->create(client::resources::kConfigMaps.in("default"),
                           typed(client::resources::kConfigMaps,
                                 {{"metadata", {{"name", "absent"}}}, {"data", {{"k", "v"}}}}))
                  .ok());
  for (const char* name : {"bad-env", "bad-vol"}) {
    EXPECT_TRUE(
        eventually([&] { return get_pod(name)["status"].value("phase", "") == "Running"; }, 60s))
        << get_pod(name).dump(2);
  }
}

}  // namespace
}  // namespace skiff::agent
