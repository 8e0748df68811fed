// Pulls from a real registry: Debian's docker-registry (distribution 2.8) on a loopback port,
// filled with skopeo.
#include "agent/images/registry.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "agent/images/image_command.h"
#include "agent/images/pull_progress.h"
#include "agent/images/store.h"
#include "test_image.h"

namespace skiff::agent::images {
namespace {

using testing::TempDir;
using testing::write_all;

constexpr const char* kRegistryBinary = "/usr/bin/docker-registry";

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A docker-registry process serving on 127.0.0.1:<free port>, its storage under `dir`,
// optionally behind htpasswd Basic auth.
class Registry {
 public:
  Registry(const std::string& dir, const std::string& user = "", const std::string& password = "")
      : dir_(dir), port_(free_port()) {
    std::string config =
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        "    rootdirectory: " +
        storage() +
        "\n  delete:\n    enabled: true\n"
        "http:\n  addr: 127.0.0.1:" +
        std::to_string(port_) + "\n";
    if (!user.empty()) {
      std::string out;
      testing::run("htpasswd -Bbc " + dir + "/htpasswd " + user + " " + password, &out);
      config += "auth:\n  htpasswd:\n    realm: skiff-test\n    path: " + dir + "/htpasswd\n";
    }
    write_all(dir + "/config.yml", config);
    pid_ = ::fork();
    if (pid_ == 0) {
      int log = ::open((dir + "/registry.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::execl(kRegistryBinary, "docker-registry", "serve", (dir + "/config.yml").c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!port_open(port_) && std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~Registry() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool running() const { return pid_ > 0 && port_open(port_); }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string storage() const { return dir_ + "/storage"; }
  std::string blob_file(const std::string& digest) const {
    std::string hex = digest.substr(7);
    return storage() + "/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
  }
  std::string log() const { return testing::read_all(dir_ + "/registry.log"); }

  // skopeo copy of an OCI layout into this registry; returns skopeo's exit code.
  int push(const std::string& source, const std::string& repo_tag, const std::string& creds = "",
           bool all = false) const {
    std::string policy = dir_ + "/policy.json";
    write_all(policy, R"({"default":[{"type":"insecureAcceptAnything"}]})");
    std::string cmd = "skopeo --policy " + policy +
                      " copy --quiet --preserve-digests --dest-tls-verify=false " +
                      (all ? "--all " : "") + (creds.empty() ? "" : "--dest-creds " + creds + " ") +
                      source + " docker://" + host() + "/" + repo_tag;
    std::string out;
    int rc = testing::run(cmd, &out);
    if (rc != 0) ADD_FAILURE() << cmd << ": " << out;
    return rc;
  }

 private:
  std::string dir_;
  int port_;
  pid_t pid_ = -1;
};

class RegistryPullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* p : {kRegistryBinary, "/usr/bin/skopeo", "/bin/busybox"}) {
      if (::access(p, X_OK) != 0) GTEST_SKIP() << p << " is not installed";
    }
    image_ = testing::busybox_image(tmp_.path());
    oci_ = tmp_.path() + "/oci";
    image_.write_oci_layout(oci_, "1");
  }

  std::unique_ptr<ImageStore> new_store(const std::string& name) {
    auto s = ImageStore::open(tmp_.path() + "/" + name);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? std::move(*s) : nullptr;
  }

  TempDir tmp_;
  testing::TestImage image_;
  std::string oci_;
};

TEST_F(RegistryPullTest, PullsByTagAndByDigest) {
  Registry reg(tmp_.path());
  ASSERT_TRUE(reg.running()) << reg.log();
  ASSERT_EQ(reg.push("oci:" + oci_ + ":1", "test/busybox:1"), 0);

  auto store = new_store("node1");
  std::map<std::string, int64_t> done;
  PullOptions o;
  o.progress = [&](const LayerProgress& p) {
    EXPECT_LE(p.done, p.total);
    done[p.digest] = p.done;
  };
  std::string ref = reg.host() + "/test/busybox:1";
  auto img = store->pull(ref, o);
  ASSERT_TRUE(img.ok()) << img.status().to_string();
  EXPECT_EQ(img->id, image_.config.digest());
  EXPECT_EQ(img->repo_tags, std::vector<std::string>{ref});
  ASSERT_EQ(img->repo_digests.size(), 1u);
  const std::string by_digest = img->repo_digests[0];
  EXPECT_EQ(by_digest, reg.host() + "/test/busybox@" + image_.manifest.digest());
  EXPECT_EQ(img->config.entrypoint, std::vector<std::string>{"/bin/sh"});
  EXPECT_EQ(done[image_.layers[0].digest()], static_cast<int64_t>(image_.layers[0].bytes.size()));
  EXPECT_EQ(done[image_.layers[1].digest()], static_cast<int64_t>(image_.layers[1].bytes.size()));
  auto lowers = store->lower_dirs(ref);
  ASSERT_TRUE(lowers.ok());
  ASSERT_EQ(lowers->size(), 2u);
  EXPECT_EQ(testing::read_all((*lowers)[1] + "/bin/busybox"), testing::read_all("/bin/busybox"));

  // By digest, into another node's store: the image, without a tag.
  auto store2 = new_store("node2");
  auto img2 = store2->pull(by_digest, {});
  ASSERT_TRUE(img2.ok()) << img2.status().to_string();
  EXPECT_EQ(img2->id, image_.config.digest());
  EXPECT_TRUE(img2->repo_tags.empty());
  EXPECT_EQ(img2->repo_digests, std::vector<std::string>{by_digest});
  EXPECT_TRUE(store2->get(by_digest).ok());

  // Pulling again downloads nothing new and keeps the layer directories.
  auto again = store->pull(ref, {});
  ASSERT_TRUE(again.ok());
  auto lowers2 = store->lower_dirs(ref);
  ASSERT_TRUE(lowers2.ok());
  EXPECT_EQ(*lowers2, *lowers);
}

TEST_F(RegistryPullTest, PicksTheHostPlatformFromAnIndex) {
  // An index with this machine's platform and another one, pushed with `skopeo copy --all`.
  std::string other_arch = host_architecture() == "s390x" ? "ppc64le" : "s390x";
  auto other =
      testing::make_image({testing::make_tar({{"other", '0', "o", "", 0644}})}, {}, tmp_.path());
  auto put = [&](const testing::Blob& b) {
    write_all(oci_ + "/blobs/sha256/" + b.digest().substr(7), b.bytes);
  };
  for (const auto& l : other.layers) put(l);
  put(other.config);
  put(other.manifest);
  nlohmann::json index = {
      {"schemaVersion", 2},
      {"mediaType", kOciIndex},
      {"manifests",
       {{{"mediaType", kOciManifest},
         {"digest", other.manifest.digest()},
         {"size", other.manifest.bytes.size()},
         {"platform", {{"os", "linux"}, {"architecture", other_arch}}}},
        {{"mediaType", kOciManifest},
         {"digest", image_.manifest.digest()},
         {"size", image_.manifest.bytes.size()},
         {"platform", {{"os", "linux"}, {"architecture", host_architecture()}}}}}}};
  testing::Blob index_blob{std::string(kOciIndex), index.dump()};
  put(index_blob);
  nlohmann::json layout = {{"schemaVersion", 2},
                           {"manifests",
                            {{{"mediaType", kOciIndex},
                              {"digest", index_blob.digest()},
                              {"size", index_blob.bytes.size()},
                              {"annotations", {{"org.opencontainers.image.ref.name", "multi"}}}}}}};
  write_all(oci_ + "/index.json", layout.dump());

  Registry reg(tmp_.path());
  ASSERT_TRUE(reg.running()) << reg.log();
  ASSERT_EQ(reg.push("oci:" + oci_ + ":multi", "test/multi:1", "", /*all=*/true), 0);
  auto store = new_store("node");
  auto img = store->pull(reg.host() + "/test/multi:1", {});
  ASSERT_TRUE(img.ok()) << img.status().to_string();
  EXPECT_EQ(img->id, image_.config.digest());
  EXPECT_EQ(img->manifest_digest, image_.manifest.digest());
  EXPECT_EQ(img->repo_digests,
            std::vector<std::string>{reg.host() + "/test/multi@" + index_blob.digest()})
      << "the repo digest is the index's, as Docker records it";
}

TEST_F(RegistryPullTest, ReportsErrorsFitForErrImagePull) {
  Registry reg(tmp_.path());
  ASSERT_TRUE(reg.running()) << reg.log();
  ASSERT_EQ(reg.push("oci:" + oci_ + ":1", "test/busybox:1"), 0);
  auto store = new_store("node");

  std::string missing = reg.host() + "/test/busybox:nope";
  auto tag = store->pull(missing, {});
  ASSERT_FALSE(tag.ok());
  EXPECT_EQ(tag.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(tag.status().message(), "failed to pull image \"" + missing + "\": manifest unknown");

  auto repo = store->pull(reg.host() + "/test/nothing:1", {});
  ASSERT_FALSE(repo.ok());
  EXPECT_EQ(repo.status().code(), StatusCode::kNotFound);
  EXPECT_NE(repo.status().message().find("unknown"), std::string::npos) << repo.status().message();

  std::string closed = "127.0.0.1:" + std::to_string(free_port());
  auto refused = store->pull(closed + "/test/busybox:1", {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("connection refused"), std::string::npos)
      << refused.status().message();

  auto list = store->list();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(RegistryPullTest, CorruptedBlobIsADigestMismatch) {
  Registry reg(tmp_.path());
  ASSERT_TRUE(reg.running()) << reg.log();
  ASSERT_EQ(reg.push("oci:" + oci_ + ":1", "test/busybox:1"), 0);
  const std::string layer = image_.layers[1].digest();
  std::string data = testing::read_all(reg.blob_file(layer));
  ASSERT_TRUE(data == image_.layers[1].bytes) << "the registry stores the pushed blob as is";
  data[700] ^= 0x20;
  write_all(reg.blob_file(layer), data);

  auto store = new_store("node");
  auto img = store->pull(reg.host() + "/test/busybox:1", {});
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().code(), StatusCode::kInvalid);
  EXPECT_NE(img.status().message().find("digest mismatch for " + layer), std::string::npos)
      << img.status().message();
  EXPECT_TRUE(store->get(reg.host() + "/test/busybox:1").status().is_not_found());
  EXPECT_FALSE(testing::run("test -e " + store->root() + "/blobs/sha256/" + layer.substr(7)) == 0)
      << "corrupt content is never stored";
}

TEST_F(RegistryPullTest, BasicAuthNeedsTheRightCredentials) {
  Registry reg(tmp_.path(), "skiff", "s3cret");
  ASSERT_TRUE(reg.running()) << reg.log();
  ASSERT_EQ(reg.push("oci:" + oci_ + ":1", "test/busybox:1", "skiff:s3cret"), 0);
  auto store = new_store("node");
  std::string ref = reg.host() + "/test/busybox:1";

  auto anonymous = store->pull(ref, {});
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.status().code(), StatusCode::kUnauthorized);
  EXPECT_NE(anonymous.status().message().find("unauthorized"), std::string::npos)
      << anonymous.status().message();

  PullOptions wrong;
  wrong.credentials = RegistryCredentials{"skiff", "wrong", "", ""};
  auto denied = store->pull(ref, wrong);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), StatusCode::kUnauthorized);

  // Credentials as the agent derives them from an imagePullSecret.
  std::string dockerconfig =
      R"({"auths":{")" + reg.host() + R"(":{"username":"skiff","password":"s3cret"}}})";
  auto auths = parse_docker_config(dockerconfig);
  ASSERT_TRUE(auths.ok());
  PullOptions right;
  right.credentials = find_credentials(*auths, reg.host(), "test/busybox");
  ASSERT_TRUE(right.credentials.has_value());
  auto img = store->pull(ref, right);
  ASSERT_TRUE(img.ok()) << img.status().to_string();
  EXPECT_EQ(img->id, image_.config.digest());
}

TEST_F(RegistryPullTest, ConcurrentPullsOfOneImageShareTheWork) {
  Registry reg(tmp_.path());
  ASSERT_TRUE(reg.running()) << reg.log();
  ASSERT_EQ(reg.push("oci:" + oci_ + ":1", "test/busybox:1"), 0);
  auto store = new_store("node");
  std::vector<Result<Image>> results(4, Status::Internal("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = store->pull(i % 2 ? reg.host() + "/test/busybox:1"
                                     : reg.host() + "/test/busybox@" + image_.manifest.digest(),
                               {});
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->id, image_.config.digest());
  }
  auto img = store->get(reg.host() + "/test/busybox:1");
  ASSERT_TRUE(img.ok());
  auto lowers = store->lower_dirs(img->id);
  ASSERT_TRUE(lowers.ok());
  EXPECT_EQ(lowers->size(), 2u);
}

// Runs `skiff image <args>` in this process with its stderr on `fd`; returns the exit code.
int image_command_with_stderr(int fd, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::fflush(stderr);
  int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  int rc = run_image_command(static_cast<int>(argv.size()), argv.data());
  std::fflush(stderr);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  return rc;
}

TEST_F(RegistryPullTest, PullCommandShowsEachLayer) {
  Registry reg(tmp_.path());
  ASSERT_TRUE(reg.running()) << reg.log();
  ASSERT_EQ(reg.push("oci:" + oci_ + ":1", "test/busybox:1"), 0);
  const std::string ref = reg.host() + "/test/busybox:1";
  const std::string data = tmp_.path() + "/cli";
  auto short_digest = [&](size_t layer) { return image_.layers[layer].digest().substr(7, 12); };
  auto size_of = [&](size_t layer) {
    return human_size(static_cast<int64_t>(image_.layers[layer].bytes.size()));
  };

  // Into a file: one line per finished layer, in the image's order.
  const std::string log = tmp_.path() + "/pull.log";
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(image_command_with_stderr(fd, {"pull", ref, "--data-dir", data}), 0);
  ::close(fd);
  EXPECT_EQ(testing::read_all(log), short_digest(0) + ": Pull complete  " + size_of(0) + "\n" +
                                        short_digest(1) + ": Pull complete  " + size_of(1) + "\n");

  // Again, on a terminal: the layers are there already.
  int master = -1, slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  EXPECT_EQ(image_command_with_stderr(slave, {"pull", ref, "--data-dir", data}), 0);
  ::close(slave);
  std::string shown;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(master, buf, sizeof buf)) > 0) shown.append(buf, static_cast<size_t>(n));
  ::close(master);
  EXPECT_EQ(shown,
            short_digest(0) + ": Already exists\r\n" + short_digest(1) + ": Already exists\r\n");

  // A fresh store on a terminal: each layer's line is drawn, then redrawn when complete.
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  EXPECT_EQ(image_command_with_stderr(slave, {"pull", ref, "--data-dir", data + "2"}), 0);
  ::close(slave);
  shown.clear();
  while ((n = ::read(master, buf, sizeof buf)) > 0) shown.append(buf, static_cast<size_t>(n));
  ::close(master);
  for (size_t layer : {0, 1}) {
    EXPECT_NE(shown.find(short_digest(layer) + ": Pull complete  " + size_of(layer)),
              std::string::npos)
        << shown;
  }
}

}  // namespace
}  // namespace skiff::agent::images
