#include "agent/runtime/oci_spec.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/runtime/rootfs.h"

namespace skiff::agent::runtime {
namespace {

using nlohmann::json;

ContainerConfig basic() {
  ContainerConfig c;
  c.id = "c1";
  c.rootfs.path = "/var/lib/skiff/rootfs/c1";
  c.args = {"/bin/app", "--flag"};
  return c;
}

json spec_of(const ContainerConfig& c) {
  auto s = build_oci_spec(c, "/bundle/rootfs");
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.ok() ? *s : json();
}

bool has_namespace(const json& spec, const std::string& type, std::string* path = nullptr) {
  for (const auto& ns : spec["linux"]["namespaces"]) {
    if (ns["type"] == type) {
      if (path) *path = ns.value("path", "");
      return true;
    }
  }
  return false;
}

TEST(OciSpecTest, DefaultsMatchWhatKubernetesContainersGet) {
  json spec = spec_of(basic());
  EXPECT_EQ(spec["root"]["path"], "/bundle/rootfs");
  EXPECT_EQ(spec["root"]["readonly"], false);
  EXPECT_EQ(spec["process"]["args"], json({"/bin/app", "--flag"}));
  EXPECT_EQ(spec["process"]["cwd"], "/");
  EXPECT_EQ(spec["process"]["user"]["uid"], 0);
  EXPECT_EQ(spec["process"]["env"][0],
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  EXPECT_EQ(spec["process"]["noNewPrivileges"], false);
  json caps = spec["process"]["capabilities"];
  EXPECT_EQ(caps["effective"].size(), 14u);
  EXPECT_EQ(caps["bounding"], caps["effective"]);
  EXPECT_TRUE(caps["inheritable"].empty());
  EXPECT_EQ(spec["linux"]["maskedPaths"], json(default_masked_paths()));
  EXPECT_NE(std::find(spec["linux"]["maskedPaths"].begin(), spec["linux"]["maskedPaths"].end(),
                      "/proc/kcore"),
            spec["linux"]["maskedPaths"].end());
  EXPECT_EQ(spec["linux"]["readonlyPaths"], json(default_readonly_paths()));
  EXPECT_EQ(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
  EXPECT_EQ(spec["linux"]["cgroupsPath"], "/skiff/c1");
  EXPECT_EQ(spec["linux"]["resources"]["cpu"]["shares"], 2);
  EXPECT_FALSE(spec["linux"]["resources"].contains("memory"));
  for (const char* ns : {"mount", "network", "ipc", "uts", "pid"}) {
    EXPECT_TRUE(has_namespace(spec, ns)) << ns;
  }
  std::vector<std::string> destinations;
  for (const auto& m : spec["mounts"]) destinations.push_back(m["destination"]);
  EXPECT_EQ(destinations, (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/mqueue",
                                                    "/sys", "/sys/fs/cgroup"}));
}

TEST(OciSpecTest, SandboxNamespacesAreJoinedByPath) {
  ContainerConfig c = basic();
  c.network = NamespaceOption::join("/var/run/netns/pod1");
  c.ipc = NamespaceOption::join("/proc/42/ns/ipc");
  c.uts = NamespaceOption::join("/proc/42/ns/uts");
  c.pid = NamespaceOption::host();
  json spec = spec_of(c);
  std::string path;
  ASSERT_TRUE(has_namespace(spec, "network", &path));
  EXPECT_EQ(path, "/var/run/netns/pod1");
  ASSERT_TRUE(has_namespace(spec, "ipc", &path));
  EXPECT_EQ(path, "/proc/42/ns/ipc");
  EXPECT_FALSE(has_namespace(spec, "pid"));

  c.hostname = "web-0";  // the sandbox's UTS namespace already has the hostname
  EXPECT_EQ(build_oci_spec(c, "/r").status().code(), StatusCode::kInvalid);
  c.hostname.clear();
  c.network = NamespaceOption::join("");
  EXPECT_EQ(build_oci_spec(c, "/r").status().code(), StatusCode::kInvalid);
}

TEST(OciSpecTest, SecurityContextShapesTheProcess) {
  ContainerConfig c = basic();
  c.uid = 1000;
  c.gid = 3000;
  c.additional_gids = {2000};
  c.read_only_rootfs = true;
  c.allow_privilege_escalation = false;
  c.capabilities_drop = {"ALL"};
  c.capabilities_add = {"NET_ADMIN"};
  c.hostname = "web-0";
  c.working_dir = "/work";
  c.env = {"A=1"};
  c.sysctls = {{"net.core.somaxconn", "1024"}};
  json spec = spec_of(c);
  EXPECT_EQ(spec["process"]["user"]["uid"], 1000);
  EXPECT_EQ(spec["process"]["user"]["gid"], 3000);
  EXPECT_EQ(spec["process"]["user"]["additionalGids"], json({2000}));
  EXPECT_EQ(spec["root"]["readonly"], true);
  EXPECT_EQ(spec["process"]["noNewPrivileges"], true);
  EXPECT_EQ(spec["process"]["capabilities"]["effective"], json({"CAP_NET_ADMIN"}));
  EXPECT_EQ(spec["hostname"], "web-0");
  EXPECT_EQ(spec["process"]["cwd"], "/work");
  EXPECT_EQ(spec["process"]["env"], json({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                          "/usr/bin:/sbin:/bin",
                                          "A=1", "HOSTNAME=web-0"}));
  EXPECT_EQ(spec["linux"]["sysctl"]["net.core.somaxconn"], "1024");

  c.run_as_non_root = true;
  EXPECT_TRUE(build_oci_spec(c, "/r").ok());
  c.uid = 0;
  EXPECT_EQ(build_oci_spec(c, "/r").status().code(), StatusCode::kInvalid);
}

TEST(OciSpecTest, PrivilegedGetsEveryCapabilityAndNoConfinement) {
  ContainerConfig c = basic();
  c.privileged = true;
  c.allow_privilege_escalation = false;
  json spec = spec_of(c);
  EXPECT_EQ(spec["process"]["capabilities"]["effective"].size(), all_capabilities().size());
  EXPECT_FALSE(spec["linux"].contains("seccomp"));
  EXPECT_FALSE(spec["linux"].contains("maskedPaths"));
  EXPECT_FALSE(spec["linux"].contains("readonlyPaths"));
  EXPECT_EQ(spec["process"]["noNewPrivileges"], false);
  EXPECT_EQ(spec["linux"]["resources"]["devices"][0]["allow"], true);

  ContainerConfig u = basic();
  u.seccomp = ContainerConfig::Seccomp::kUnconfined;
  EXPECT_FALSE(spec_of(u)["linux"].contains("seccomp"));
}

TEST(OciSpecTest, CapabilityAddAndDrop) {
  auto caps = effective_capabilities({"sys_time"}, {"NET_RAW", "CAP_KILL"}, false);
  ASSERT_TRUE(caps.ok());
  EXPECT_EQ(caps->size(), 13u);
  EXPECT_NE(std::find(caps->begin(), caps->end(), "CAP_SYS_TIME"), caps->end());
  EXPECT_EQ(std::find(caps->begin(), caps->end(), "CAP_NET_RAW"), caps->end());
  EXPECT_EQ(std::find(caps->begin(), caps->end(), "CAP_KILL"), caps->end());
  auto all = effective_capabilities({"ALL"}, {}, false);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), all_capabilities().size());
  EXPECT_EQ(effective_capabilities({"NOT_A_CAP"}, {}, false).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(build_oci_spec(
                [] {
                  auto c = basic();
                  c.capabilities_drop = {"BOGUS"};
                  return c;
                }(),
                "/r")
                .status()
                .code(),
            StatusCode::kInvalid);
}

TEST(OciSpecTest, SeccompDefaultDeniesPrivilegedSyscallsUnlessACapabilityAllowsThem) {
  auto names = [](const json& profile) {
    std::vector<std::string> out;
    for (const auto& rule : profile["syscalls"]) {
      if (rule["action"] == "SCMP_ACT_ERRNO") {
        for (const auto& n : rule["names"]) out.push_back(n);
      }
    }
    return out;
  };
  auto has = [](const std::vector<std::string>& v, const char* s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  auto denied = names(runtime_default_seccomp(default_capabilities()));
  for (const char* s : {"mount", "ptrace", "kexec_load", "init_module", "unshare", "reboot"}) {
    EXPECT_TRUE(has(denied, s)) << s;
  }
  EXPECT_FALSE(has(denied, "read"));
  auto admin = names(runtime_default_seccomp({"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}));
  EXPECT_FALSE(has(admin, "mount"));
  EXPECT_FALSE(has(admin, "ptrace"));
  EXPECT_TRUE(has(admin, "kexec_load"));
}

TEST(OciSpecTest, ResourcesFollowTheKubeletsArithmetic) {
  EXPECT_EQ(milli_cpu_to_shares(0), 2u);
  EXPECT_EQ(milli_cpu_to_shares(1), 2u);
  EXPECT_EQ(milli_cpu_to_shares(100), 102u);
  EXPECT_EQ(milli_cpu_to_shares(1000), 1024u);
  EXPECT_EQ(milli_cpu_to_shares(1000000), 262144u);
  EXPECT_EQ(milli_cpu_to_quota(0, kCfsPeriodUs), 0);
  EXPECT_EQ(milli_cpu_to_quota(250, kCfsPeriodUs), 25000);
  EXPECT_EQ(milli_cpu_to_quota(1, kCfsPeriodUs), 1000);
  EXPECT_EQ(milli_cpu_to_quota(2000, kCfsPeriodUs), 200000);

  ContainerConfig c = basic();
  c.resources.cpu_request_milli = 500;
  c.resources.cpu_limit_milli = 1500;
  c.resources.memory_limit_bytes = 64 << 20;
  c.resources.pids_limit = 100;
  c.cgroup_parent = "/kubepods/burstable/pod123/";
  c.oom_score_adj = 500;
  json spec = spec_of(c);
  json r = spec["linux"]["resources"];
  EXPECT_EQ(r["cpu"]["shares"], 512);
  EXPECT_EQ(r["cpu"]["quota"], 150000);
  EXPECT_EQ(r["cpu"]["period"], 100000);
  EXPECT_EQ(r["memory"]["limit"], 64 << 20);
  EXPECT_EQ(r["pids"]["limit"], 100);
  EXPECT_EQ(spec["linux"]["cgroupsPath"], "/kubepods/burstable/pod123/c1");
  EXPECT_EQ(spec["process"]["oomScoreAdj"], 500);
}

TEST(OciSpecTest, OomScoreAdjustmentPerQosClass) {
  constexpr int64_t kGi = 1 << 30;
  EXPECT_EQ(oom_score_adj(QosClass::kGuaranteed, kGi, 8 * kGi), -997);
  EXPECT_EQ(oom_score_adj(QosClass::kBestEffort, 0, 8 * kGi), 1000);
  EXPECT_EQ(oom_score_adj(QosClass::kBurstable, 4 * kGi, 8 * kGi), 500);
  EXPECT_EQ(oom_score_adj(QosClass::kBurstable, 8 * kGi, 8 * kGi), 3);
  EXPECT_EQ(oom_score_adj(QosClass::kBurstable, 0, 8 * kGi), 999);
}

TEST(OciSpecTest, MountsBecomeBindAndTmpfsEntries) {
  ContainerConfig c = basic();
  Mount config_map{Mount::Type::kBind, "/etc/config", "/var/lib/skiff/pods/p/cm", true, 0};
  Mount scratch{Mount::Type::kTmpfs, "/scratch", "", false, 1 << 20};
  c.mounts = {config_map, scratch};
  json spec = spec_of(c);
  json bind = spec["mounts"][6];
  EXPECT_EQ(bind["destination"], "/etc/config");
  EXPECT_EQ(bind["type"], "bind");
  EXPECT_EQ(bind["source"], "/var/lib/skiff/pods/p/cm");
  EXPECT_EQ(bind["options"], json({"rbind", "rprivate", "ro"}));
  json tmpfs = spec["mounts"][7];
  EXPECT_EQ(tmpfs["type"], "tmpfs");
  EXPECT_NE(std::find(tmpfs["options"].begin(), tmpfs["options"].end(), "size=1048576"),
            tmpfs["options"].end());
  c.mounts = {Mount{Mount::Type::kBind, "relative", "/x", false, 0}};
  EXPECT_EQ(build_oci_spec(c, "/r").status().code(), StatusCode::kInvalid);
}

TEST(OciSpecTest, InvalidConfigsAreRejected) {
  ContainerConfig c = basic();
  c.args.clear();
  EXPECT_EQ(build_oci_spec(c, "/r").status().code(), StatusCode::kInvalid);
  c = basic();
  c.id = "../escape";
  EXPECT_EQ(build_oci_spec(c, "/r").status().code(), StatusCode::kInvalid);
}

TEST(CommandMergeTest, FollowsKubernetesCommandAndArgsRules) {
  std::vector<std::string> ep = {"/entry"}, cmd = {"default-arg"}, env = {"NAME=world"};
  EXPECT_EQ(merge_command(ep, cmd, {}, {}, env),
            (std::vector<std::string>{"/entry", "default-arg"}));
  EXPECT_EQ(merge_command(ep, cmd, {"/bin/sh"}, {}, env), (std::vector<std::string>{"/bin/sh"}));
  EXPECT_EQ(merge_command(ep, cmd, {}, {"x"}, env), (std::vector<std::string>{"/entry", "x"}));
  EXPECT_EQ(merge_command(ep, cmd, {"/bin/echo"}, {"hello $(NAME)"}, env),
            (std::vector<std::string>{"/bin/echo", "hello world"}));
  EXPECT_EQ(merge_command({}, {"/cmd", "$(NAME)"}, {}, {}, env),
            (std::vector<std::string>{"/cmd", "$(NAME)"}));  // image args are not expanded
}

TEST(CommandMergeTest, EnvReferenceExpansion) {
  std::vector<std::string> env = {"A=1", "B=two", "A=3"};
  EXPECT_EQ(expand_env_references("$(A)-$(B)", env), "3-two");
  EXPECT_EQ(expand_env_references("$$(A)", env), "$(A)");
  EXPECT_EQ(expand_env_references("$(MISSING)", env), "$(MISSING)");
  EXPECT_EQ(expand_env_references("$(A", env), "$(A");
  EXPECT_EQ(expand_env_references("cost $5", env), "cost $5");
  EXPECT_EQ(expand_env_references("end$", env), "end$");
}

class ImageUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-user-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    std::filesystem::create_directories(root_ + "/etc");
    std::ofstream(root_ + "/etc/passwd") << "# comment\nroot:x:0:0::/root:/bin/sh\n"
                                            "nginx:x:101:101::/var/cache/nginx:/sbin/nologin\n";
    std::ofstream(root_ + "/etc/group") << "root:x:0:\nnginx:x:101:\nwww:x:33:nginx,other\n";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_;
};

TEST_F(ImageUserTest, NamesAndNumbersResolveFromTheImage) {
  auto u = resolve_image_user(root_, "nginx");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 101u);
  EXPECT_EQ(u->gid, 101u);
  EXPECT_EQ(u->additional_gids, std::vector<uint32_t>{33});
  u = resolve_image_user(root_, "101:www");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 101u);
  EXPECT_EQ(u->gid, 33u);
  u = resolve_image_user(root_, "5000");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 5000u);
  EXPECT_EQ(u->gid, 0u);
  u = resolve_image_user(root_, "");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 0u);
  EXPECT_TRUE(resolve_image_user(root_, "nobody").status().is_not_found());
  EXPECT_TRUE(resolve_image_user(root_, "nginx:nogroup").status().is_not_found());
}

TEST(RunAsNonRootTest, VerifiesAsTheKubeletDoes) {
  EXPECT_TRUE(verify_run_as_non_root(1000, "").ok());
  EXPECT_FALSE(verify_run_as_non_root(0, "1000").ok());
  EXPECT_TRUE(verify_run_as_non_root(std::nullopt, "1000").ok());
  EXPECT_TRUE(verify_run_as_non_root(std::nullopt, "1000:1000").ok());
  Status root = verify_run_as_non_root(std::nullopt, "");
  EXPECT_EQ(root.message(), "container has runAsNonRoot and image will run as root");
  Status named = verify_run_as_non_root(std::nullopt, "nginx");
  EXPECT_EQ(named.message(),
            "container has runAsNonRoot and image has non-numeric user (nginx), cannot verify "
            "user is non-root");
  EXPECT_FALSE(verify_run_as_non_root(std::nullopt, "0").ok());
}

TEST(OverlayTest, MountOptionsListLayersTopmostFirst) {
  auto o = overlay_mount_options({"/l/top", "/l/base"}, "/c/upper", "/c/work");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(*o, "lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work");
  EXPECT_EQ(overlay_mount_options({}, "/u", "/w").status().code(), StatusCode::kInvalid);
  EXPECT_EQ(overlay_mount_options({"/a:b"}, "/u", "/w").status().code(), StatusCode::kInvalid);
  EXPECT_EQ(overlay_mount_options({"/a"}, "", "/w").status().code(), StatusCode::kInvalid);
}

}  // namespace
}  // namespace skiff::agent::runtime
