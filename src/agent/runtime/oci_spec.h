// OCI runtime spec (config.json) for one container, generated from a typed description.
//
// ContainerConfig is what the pod sync loop knows about a container once the pod, the image
// config and the sandbox are resolved: the process, its identity, its mounts, the namespaces it
// joins and its resources. build_oci_spec turns it into the runtime-spec document runc reads,
// with the defaults containerd and CRI-O give Kubernetes containers (capabilities, masked and
// read-only paths, /dev, /proc, /sys mounts, a RuntimeDefault seccomp profile).
//
// Everything here is a pure function of its inputs and thread-safe, except
// resolve_image_user, which reads the image's /etc/passwd and /etc/group.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace skiff::agent::runtime {

// A Linux namespace of the container: a new one, the one at `path` (a pod sandbox's
// /proc/<pid>/ns/net or a bind-mounted netns file), or the host's (no namespace entry).
struct NamespaceOption {
  enum class Mode { kCreate, kJoin, kHost };
  Mode mode = Mode::kCreate;
  std::string path;  // for kJoin

  static NamespaceOption create() { return {}; }
  static NamespaceOption join(std::string p) { return {Mode::kJoin, std::move(p)}; }
  static NamespaceOption host() { return {Mode::kHost, {}}; }
};

struct Mount {
  enum class Type { kBind, kTmpfs };
  Type type = Type::kBind;
  std::string container_path;
  std::string host_path;  // kBind only
  bool read_only = false;
  // kTmpfs only: size limit in bytes, 0 for the kernel default (half of RAM).
  int64_t size_bytes = 0;
};

// Kubernetes QoS class of the pod, which decides the OOM score adjustment.
enum class QosClass { kGuaranteed, kBurstable, kBestEffort };

struct Resources {
  int64_t cpu_request_milli = 0;   // 0: none (cpu shares 2, as Kubernetes gives BestEffort)
  int64_t cpu_limit_milli = 0;     // 0: no CFS quota
  int64_t memory_limit_bytes = 0;  // 0: unlimited
  int64_t pids_limit = 0;          // 0: unlimited
};

// The container's root filesystem: either a ready directory, or an overlay of image layer
// directories (topmost first, as overlayfs lowerdir lists them) with a per-container writable
// upper and work dir, mounted by the runtime at <bundle>/rootfs.
struct RootfsConfig {
  std::string path;                     // a ready rootfs directory; empty when overlaid
  std::vector<std::string> lower_dirs;  // topmost first
  std::string upper_dir;
  std::string work_dir;
  bool overlay() const { return path.empty(); }
};

struct ContainerConfig {
  // The runtime's name for the container: [A-Za-z0-9][A-Za-z0-9_.-]*, unique per runtime root.
  std::string id;
  RootfsConfig rootfs;

  // The process. args[0] is looked up in the container's PATH when it has no '/'.
  std::vector<std::string> args;
  std::vector<std::string> env;  // "NAME=value"; PATH gets a default when absent
  std::string working_dir;       // "" means "/"
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  bool tty = false;
  bool stdin = false;       // keep stdin open (attach); kubectl run -i
  bool stdin_once = false;  // close stdin after the first attach ends

  std::string hostname;  // set only when the UTS namespace is a new one

  std::vector<Mount> mounts;
  NamespaceOption network;
  NamespaceOption ipc;
  NamespaceOption uts;
  NamespaceOption pid;

  // securityContext.
  bool privileged = false;
  bool read_only_rootfs = false;
  bool allow_privilege_escalation = true;  // false sets no_new_privileges
  bool run_as_non_root = false;
  std::vector<std::string> capabilities_add;   // "NET_ADMIN" or "CAP_NET_ADMIN"; "ALL"
  std::vector<std::string> capabilities_drop;  // as above; "ALL" drops the defaults
  enum class Seccomp { kUnconfined, kRuntimeDefault };
  Seccomp seccomp = Seccomp::kRuntimeDefault;
  std::map<std::string, std::string> sysctls;

  Resources resources;
  // cgroupfs path of the pod, e.g. "/kubepods/burstable/pod<uid>"; the container's cgroup is
  // <cgroup_parent>/<id>. Empty: "/skiff/<id>".
  std::string cgroup_parent;
  int oom_score_adj = 0;

  // Where conmon writes the CRI-format log; empty: <bundle>/container.log.
  std::string log_path;
  // Free-form annotations copied into the spec (io.kubernetes.* as the kubelet sets them).
  std::map<std::string, std::string> annotations;
};

// The container's cgroup path as the spec names it (cgroupsPath).
std::string container_cgroup_path(const ContainerConfig& config);

// The OCI runtime spec for `config`, with root.path set to `rootfs_path` (the directory the
// root filesystem is at when runc runs: the ready dir, or the overlay's mount point).
// Invalid when the config cannot run: an empty id or args, an unknown capability name, a
// hostname without a new UTS namespace, runAsNonRoot with uid 0.
Result<nlohmann::json> build_oci_spec(const ContainerConfig& config,
                                      const std::string& rootfs_path);

// Kubernetes' default capability set (as containerd and CRI-O grant it), "CAP_"-prefixed.
const std::vector<std::string>& default_capabilities();
// Every capability the kernel headers this was built with know, "CAP_"-prefixed.
const std::vector<std::string>& all_capabilities();
// The effective capability list after securityContext.capabilities add/drop: defaults, minus
// drop ("ALL" removes all), plus add ("ALL" adds every capability). Invalid on unknown names.
Result<std::vector<std::string>> effective_capabilities(const std::vector<std::string>& add,
                                                        const std::vector<std::string>& drop,
                                                        bool privileged);

// Paths containerd masks and mounts read-only inside non-privileged containers.
const std::vector<std::string>& default_masked_paths();
const std::vector<std::string>& default_readonly_paths();

// The RuntimeDefault seccomp profile: allow by default, deny (EPERM) the syscalls Docker's
// default profile denies to containers without extra capabilities; the capabilities in `caps`
// re-allow what they govern (CAP_SYS_ADMIN: mount, unshare, setns, ...; CAP_SYS_PTRACE: ptrace;
// CAP_SYS_TIME: settimeofday, ...).
nlohmann::json runtime_default_seccomp(const std::vector<std::string>& caps);

// cpu.shares from the CPU request, as the kubelet computes it: milliCPU*1024/1000, at least 2,
// at most 262144.
uint64_t milli_cpu_to_shares(int64_t milli_cpu);
// CFS quota for a CPU limit with `period_us`: milliCPU*period/1000, at least 1000; 0 when the
// limit is 0 (no quota).
int64_t milli_cpu_to_quota(int64_t milli_cpu, uint64_t period_us);
inline constexpr uint64_t kCfsPeriodUs = 100000;

// The kubelet's OOM score adjustment for a container of a pod in `qos`: Guaranteed -997,
// BestEffort 1000, Burstable 1000 - 1000*request/capacity clamped to [3, 999].
int oom_score_adj(QosClass qos, int64_t memory_request_bytes, int64_t memory_capacity_bytes);

// The process args from the image config and the Kubernetes container, as the kubelet merges
// them: command replaces the image Entrypoint and drops its Cmd; args replace the Cmd.
// $(VAR) references in command and args are expanded from `env` ("NAME=value"); $$ escapes a
// '$'; references to unknown variables stay as written.
std::vector<std::string> merge_command(const std::vector<std::string>& image_entrypoint,
                                       const std::vector<std::string>& image_cmd,
                                       const std::vector<std::string>& command,
                                       const std::vector<std::string>& args,
                                       const std::vector<std::string>& env);
// Kubernetes $(VAR) expansion of one string against `env` ("NAME=value").
std::string expand_env_references(std::string_view in, const std::vector<std::string>& env);

// The image's user ("", "name", "uid", "name:group", "uid:gid") resolved against the rootfs's
// /etc/passwd and /etc/group, with the supplementary groups the user is listed in.
// "" is root. NotFound when a name is not in those files.
struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
};
Result<ResolvedUser> resolve_image_user(const std::string& rootfs_path, std::string_view user);

// runAsNonRoot as the kubelet checks it before starting a container: `uid` is the resolved
// numeric user (securityContext.runAsUser, else the image's), `image_user` the image's USER
// field for the message. Invalid when the container would run as root, or when the image
// names a user by name and no runAsUser is set (the kubelet cannot verify it).
Status verify_run_as_non_root(std::optional<int64_t> run_as_user, std::string_view image_user);

}  // namespace skiff::agent::runtime
