#include "agent/images/reference.h"

#include <gtest/gtest.h>

#include "agent/images/auth.h"
#include "common/base64.h"

namespace skiff::agent::images {
namespace {

TEST(ImageReference, NormalizesLikeDocker) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"busybox", "docker.io/library/busybox:latest"},
      {"busybox:1.36", "docker.io/library/busybox:1.36"},
      {"library/busybox", "docker.io/library/busybox:latest"},
      {"bitnami/nginx:1.25", "docker.io/bitnami/nginx:1.25"},
      {"docker.io/busybox", "docker.io/library/busybox:latest"},
      {"index.docker.io/library/busybox", "docker.io/library/busybox:latest"},
      {"ghcr.io/org/app", "ghcr.io/org/app:latest"},
      {"localhost/app:v1", "localhost/app:v1"},
      {"localhost:5000/app", "localhost:5000/app:latest"},
      {"127.0.0.1:5000/test/busybox:1", "127.0.0.1:5000/test/busybox:1"},
      {"[::1]:5000/a/b", "[::1]:5000/a/b:latest"},
  };
  for (const auto& c : cases) {
    auto r = parse_reference(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().to_string();
    EXPECT_EQ(r->string(), c.out) << c.in;
  }
  std::string digest = "sha256:" + std::string(64, 'a');
  auto d = parse_reference("busybox@" + digest);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->tag, "");
  EXPECT_EQ(d->string(), "docker.io/library/busybox@" + digest);
  auto td = parse_reference("busybox:1@" + digest);
  ASSERT_TRUE(td.ok());
  EXPECT_EQ(td->tagged(), "docker.io/library/busybox:1");
  EXPECT_EQ(td->digested(), "docker.io/library/busybox@" + digest);
}

TEST(ImageReference, RejectsMalformedReferences) {
  for (const char* bad : {"", "Busybox", "busy box", "busybox:", "busybox@sha256:abc", ":tag",
                          "a//b", "-a", "busybox:-x"}) {
    auto r = parse_reference(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
      EXPECT_NE(r.status().message().find("invalid reference format"), std::string::npos);
    }
  }
  auto upper = parse_reference("docker.io/Library/busybox");
  ASSERT_FALSE(upper.ok());
  EXPECT_NE(upper.status().message().find("must be lowercase"), std::string::npos);
}

TEST(ImageReference, LoopbackRegistriesUsePlainHttp) {
  EXPECT_TRUE(is_loopback_registry("localhost"));
  EXPECT_TRUE(is_loopback_registry("localhost:5000"));
  EXPECT_TRUE(is_loopback_registry("127.0.0.1:5000"));
  EXPECT_TRUE(is_loopback_registry("127.10.0.3"));
  EXPECT_TRUE(is_loopback_registry("[::1]:5000"));
  EXPECT_FALSE(is_loopback_registry("docker.io"));
  EXPECT_FALSE(is_loopback_registry("10.0.0.1:5000"));
  EXPECT_FALSE(is_loopback_registry("localhost.example.com"));
  EXPECT_EQ(registry_api_host("docker.io"), "registry-1.docker.io");
  EXPECT_EQ(registry_api_host("ghcr.io"), "ghcr.io");
}

TEST(DockerConfig, ParsesAuthsIntoCredentialsPerRegistry) {
  std::string json = R"({"auths": {
      "https://index.docker.io/v1/": {"auth": ")" +
                     base64_encode("hub:secret") + R"("},
      "127.0.0.1:5000": {"username": "u", "password": "p"},
      "ghcr.io/team": {"auth": ")" +
                     base64_encode("team:tok:with:colons") + R"("},
      "*.example.com": {"identitytoken": "refresh"}}})";
  auto auths = parse_docker_config(json);
  ASSERT_TRUE(auths.ok()) << auths.status().to_string();
  auto hub = find_credentials(*auths, "docker.io", "library/busybox");
  ASSERT_TRUE(hub.has_value());
  EXPECT_EQ(hub->username, "hub");
  EXPECT_EQ(hub->password, "secret");
  auto local = find_credentials(*auths, "127.0.0.1:5000", "test/busybox");
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->username, "u");
  auto team = find_credentials(*auths, "ghcr.io", "team/app");
  ASSERT_TRUE(team.has_value());
  EXPECT_EQ(team->password, "tok:with:colons");
  EXPECT_FALSE(find_credentials(*auths, "ghcr.io", "other/app").has_value());
  EXPECT_FALSE(find_credentials(*auths, "ghcr.io", "teamx/app").has_value());
  auto wild = find_credentials(*auths, "registry.example.com", "a");
  ASSERT_TRUE(wild.has_value());
  EXPECT_EQ(wild->identity_token, "refresh");
  EXPECT_FALSE(find_credentials(*auths, "a.b.example.com", "a").has_value());
  EXPECT_FALSE(find_credentials(*auths, "quay.io", "a").has_value());
}

TEST(DockerConfig, AcceptsTheLegacyDockercfgForm) {
  auto auths = parse_docker_config(R"({"quay.io": {"auth": ")" + base64_encode("a:b") + R"("}})");
  ASSERT_TRUE(auths.ok());
  auto c = find_credentials(*auths, "quay.io", "x/y");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->username, "a");
}

TEST(DockerConfig, RejectsAnAuthThatIsNotUserColonPassword) {
  auto bad = parse_docker_config(R"({"auths": {"reg.io": {"auth": "bm9jb2xvbg=="}}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalid);
  EXPECT_NE(bad.status().message().find("reg.io"), std::string::npos);
  EXPECT_FALSE(parse_docker_config("not json").ok());
}

}  // namespace
}  // namespace skiff::agent::images
