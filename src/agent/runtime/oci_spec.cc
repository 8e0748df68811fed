#include "agent/runtime/oci_spec.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace skiff::agent::runtime {
namespace {

using nlohmann::json;

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string cap_name(std::string_view name) {
  std::string out;
  for (char c : name) out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (out != "ALL" && out.rfind("CAP_", 0) != 0) out = "CAP_" + out;
  return out;
}

bool has_env(const std::vector<std::string>& env, std::string_view name) {
  for (const auto& e : env) {
    if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=') {
      return true;
    }
  }
  return false;
}

json namespace_entry(const char* type, const NamespaceOption& ns) {
  json entry = {{"type", type}};
  if (ns.mode == NamespaceOption::Mode::kJoin) entry["path"] = ns.path;
  return entry;
}

json default_mounts(bool privileged) {
  json sys_options = {"nosuid", "noexec", "nodev"};
  if (!privileged) sys_options.push_back("ro");
  json cgroup_options = {"nosuid", "noexec", "nodev", "relatime"};
  cgroup_options.push_back(privileged ? "rw" : "ro");
  return json::array({
      {{"destination", "/proc"},
       {"type", "proc"},
       {"source", "proc"},
       {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/dev"},
       {"type", "tmpfs"},
       {"source", "tmpfs"},
       {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
      {{"destination", "/dev/pts"},
       {"type", "devpts"},
       {"source", "devpts"},
       {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
      {{"destination", "/dev/mqueue"},
       {"type", "mqueue"},
       {"source", "mqueue"},
       {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"}, {"options", sys_options}},
      {{"destination", "/sys/fs/cgroup"},
       {"type", "cgroup"},
       {"source", "cgroup"},
       {"options", cgroup_options}},
  });
}

bool is_valid_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || !std::isalnum(static_cast<unsigned char>(id[0]))) {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

}  // namespace

const std::vector<std::string>& default_capabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  return caps;
}

const std::vector<std::string>& all_capabilities() {
  // In capability-number order (linux/capability.h), up to CAP_CHECKPOINT_RESTORE (40).
  static const std::vector<std::string> caps = {"CAP_CHOWN",
                                                "CAP_DAC_OVERRIDE",
                                                "CAP_DAC_READ_SEARCH",
                                                "CAP_FOWNER",
                                                "CAP_FSETID",
                                                "CAP_KILL",
                                                "CAP_SETGID",
                                                "CAP_SETUID",
                                                "CAP_SETPCAP",
                                                "CAP_LINUX_IMMUTABLE",
                                                "CAP_NET_BIND_SERVICE",
                                                "CAP_NET_BROADCAST",
                                                "CAP_NET_ADMIN",
                                                "CAP_NET_RAW",
                                                "CAP_IPC_LOCK",
                                                "CAP_IPC_OWNER",
                                                "CAP_SYS_MODULE",
                                                "CAP_SYS_RAWIO",
                                                "CAP_SYS_CHROOT",
                                                "CAP_SYS_PTRACE",
                                                "CAP_SYS_PACCT",
                                                "CAP_SYS_ADMIN",
                                                "CAP_SYS_BOOT",
                                                "CAP_SYS_NICE",
                                                "CAP_SYS_RESOURCE",
                                                "CAP_SYS_TIME",
                                                "CAP_SYS_TTY_CONFIG",
                                                "CAP_MKNOD",
                                                "CAP_LEASE",
                                                "CAP_AUDIT_WRITE",
                                                "CAP_AUDIT_CONTROL",
                                                "CAP_SETFCAP",
                                                "CAP_MAC_OVERRIDE",
                                                "CAP_MAC_ADMIN",
                                                "CAP_SYSLOG",
                                                "CAP_WAKE_ALARM",
                                                "CAP_BLOCK_SUSPEND",
                                                "CAP_AUDIT_READ",
                                                "CAP_PERFMON",
                                                "CAP_BPF",
                                                "CAP_CHECKPOINT_RESTORE"};
  return caps;
}

Result<std::vector<std::string>> effective_capabilities(const std::vector<std::string>& add,
                                                        const std::vector<std::string>& drop,
                                                        bool privileged) {
  const auto& all = all_capabilities();
  auto known = [&](const std::string& c) {
    return c == "ALL" || std::find(all.begin(), all.end(), c) != all.end();
  };
  if (privileged) return all;
  std::vector<std::string> caps = default_capabilities();
  for (const auto& raw : drop) {
    std::string c = cap_name(raw);
    if (!known(c)) return Status::Invalid("unknown capability to drop: " + raw);
    if (c == "ALL") {
      caps.clear();
    } else {
      caps.erase(std::remove(caps.begin(), caps.end(), c), caps.end());
    }
  }
  for (const auto& raw : add) {
    std::string c = cap_name(raw);
    if (!known(c)) return Status::Invalid("unknown capability to add: " + raw);
    if (c == "ALL") {
      caps = all;
    } else if (std::find(caps.begin(), caps.end(), c) == caps.end()) {
      caps.push_back(c);
    }
  }
  return caps;
}

const std::vector<std::string>& default_masked_paths() {
  static const std::vector<std::string> paths = {"/proc/acpi",
                                                 "/proc/asound",
                                                 "/proc/kcore",
                                                 "/proc/keys",
                                                 "/proc/latency_stats",
                                                 "/proc/timer_list",
                                                 "/proc/timer_stats",
                                                 "/proc/sched_debug",
                                                 "/proc/scsi",
                                                 "/sys/firmware",
                                                 "/sys/devices/virtual/powercap"};
  return paths;
}

const std::vector<std::string>& default_readonly_paths() {
  static const std::vector<std::string> paths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                 "/proc/sysrq-trigger"};
  return paths;
}

nlohmann::json runtime_default_seccomp(const std::vector<std::string>& caps) {
  auto has = [&](const char* c) { return std::find(caps.begin(), caps.end(), c) != caps.end(); };
  // Denied to every container: kernel module, keyring, kexec, accounting, swap, reboot,
  // obsolete and NUMA-policy calls (Docker's default profile allows none of them without a
  // capability a default container lacks).
  std::vector<std::string> denied = {"acct",
                                     "add_key",
                                     "bpf",
                                     "create_module",
                                     "delete_module",
                                     "finit_module",
                                     "get_kernel_syms",
                                     "init_module",
                                     "ioperm",
                                     "iopl",
                                     "kexec_file_load",
                                     "kexec_load",
                                     "keyctl",
                                     "lookup_dcookie",
                                     "nfsservctl",
                                     "perf_event_open",
                                     "query_module",
                                     "quotactl",
                                     "reboot",
                                     "request_key",
                                     "swapoff",
                                     "swapon",
                                     "sysfs",
                                     "_sysctl",
                                     "uselib",
                                     "userfaultfd",
                                     "ustat",
                                     "vm86",
                                     "vm86old",
                                     "get_mempolicy",
                                     "set_mempolicy",
                                     "mbind",
                                     "move_pages"};
  if (!has("CAP_SYS_ADMIN")) {
    for (const char* s : {"mount", "umount", "umount2", "pivot_root", "unshare", "setns",
                          "name_to_handle_at", "open_by_handle_at", "fsopen", "fsmount", "fsconfig",
                          "fspick", "move_mount", "open_tree"}) {
      denied.emplace_back(s);
    }
  }
  if (!has("CAP_SYS_PTRACE")) {
    for (const char* s : {"ptrace", "process_vm_readv", "process_vm_writev", "kcmp"}) {
      denied.emplace_back(s);
    }
  }
  if (!has("CAP_SYS_TIME")) {
    for (const char* s : {"settimeofday", "stime", "clock_settime", "clock_adjtime", "adjtimex"}) {
      denied.emplace_back(s);
    }
  }
  std::sort(denied.begin(), denied.end());
  denied.erase(std::unique(denied.begin(), denied.end()), denied.end());
  return json{{"defaultAction", "SCMP_ACT_ALLOW"},
              {"architectures",
               {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64",
                "SCMP_ARCH_ARM"}},
              {"syscalls",
               json::array({{{"names", denied}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}}})}};
}

uint64_t milli_cpu_to_shares(int64_t milli_cpu) {
  constexpr uint64_t kMinShares = 2, kMaxShares = 262144;
  if (milli_cpu <= 0) return kMinShares;
  uint64_t shares = static_cast<uint64_t>(milli_cpu) * 1024 / 1000;
  return std::clamp(shares, kMinShares, kMaxShares);
}

int64_t milli_cpu_to_quota(int64_t milli_cpu, uint64_t period_us) {
  constexpr int64_t kMinQuota = 1000;
  if (milli_cpu <= 0) return 0;
  int64_t quota = milli_cpu * static_cast<int64_t>(period_us) / 1000;
  return std::max(quota, kMinQuota);
}

int oom_score_adj(QosClass qos, int64_t memory_request_bytes, int64_t memory_capacity_bytes) {
  constexpr int kGuaranteed = -997, kBestEffort = 1000;
  switch (qos) {
    case QosClass::kGuaranteed:
      return kGuaranteed;
    case QosClass::kBestEffort:
      return kBestEffort;
    case QosClass::kBurstable:
      break;
  }
  if (memory_capacity_bytes <= 0) return kBestEffort - 1;
  int64_t adj = 1000 - (1000 * memory_request_bytes) / memory_capacity_bytes;
  if (adj < 1000 + kGuaranteed) return 1000 + kGuaranteed;
  if (adj >= kBestEffort) return kBestEffort - 1;
  return static_cast<int>(adj);
}

std::string expand_env_references(std::string_view in, const std::vector<std::string>& env) {
  auto lookup = [&](std::string_view name) -> std::optional<std::string> {
    // The last definition wins, as in the container's environment.
    std::optional<std::string> found;
    for (const auto& e : env) {
      if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=') {
        found = e.substr(name.size() + 1);
      }
    }
    return found;
  };
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    if (in[i] != '$' || i + 1 >= in.size()) {
      out.push_back(in[i++]);
      continue;
    }
    char next = in[i + 1];
    if (next == '$') {  // "$$" is an escaped '$'
      out.push_back('$');
      i += 2;
    } else if (next == '(') {
      size_t close = in.find(')', i + 2);
      if (close == std::string_view::npos) {  // unterminated: kept as written
        out.append(in.substr(i));
        break;
      }
      std::string_view name = in.substr(i + 2, close - i - 2);
      auto value = name.empty() ? std::nullopt : lookup(name);
      if (value) {
        out += *value;
      } else {
        out.append(in.substr(i, close - i + 1));
      }
      i = close + 1;
    } else {
      out.push_back('$');
      ++i;
    }
  }
  return out;
}

std::vector<std::string> merge_command(const std::vector<std::string>& image_entrypoint,
                                       const std::vector<std::string>& image_cmd,
                                       const std::vector<std::string>& command,
                                       const std::vector<std::string>& args,
                                       const std::vector<std::string>& env) {
  std::vector<std::string> out;
  if (!command.empty()) {
    for (const auto& c : command) out.push_back(expand_env_references(c, env));
    for (const auto& a : args) out.push_back(expand_env_references(a, env));
    return out;
  }
  out = image_entrypoint;
  if (!args.empty()) {
    for (const auto& a : args) out.push_back(expand_env_references(a, env));
  } else {
    out.insert(out.end(), image_cmd.begin(), image_cmd.end());
  }
  return out;
}

namespace {

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
};
struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::optional<uint32_t> parse_id(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '#') lines.push_back(line);
  }
  return lines;
}

std::vector<PasswdEntry> read_passwd(const std::string& rootfs) {
  std::vector<PasswdEntry> out;
  for (const auto& line : read_lines(rootfs + "/etc/passwd")) {
    auto f = split(line, ':');
    if (f.size() < 4) continue;
    auto uid = parse_id(f[2]);
    auto gid = parse_id(f[3]);
    if (uid && gid) out.push_back({f[0], *uid, *gid});
  }
  return out;
}

std::vector<GroupEntry> read_group(const std::string& rootfs) {
  std::vector<GroupEntry> out;
  for (const auto& line : read_lines(rootfs + "/etc/group")) {
    auto f = split(line, ':');
    if (f.size() < 3) continue;
    auto gid = parse_id(f[2]);
    if (!gid) continue;
    GroupEntry g{f[0], *gid, {}};
    if (f.size() >= 4 && !f[3].empty()) g.members = split(f[3], ',');
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace

Result<ResolvedUser> resolve_image_user(const std::string& rootfs_path, std::string_view user) {
  ResolvedUser out;
  if (user.empty()) return out;
  std::string_view user_part = user, group_part;
  if (auto colon = user.find(':'); colon != std::string_view::npos) {
    user_part = user.substr(0, colon);
    group_part = user.substr(colon + 1);
  }
  auto passwd = read_passwd(rootfs_path);
  std::string user_name;
  if (auto uid = parse_id(user_part)) {
    out.uid = *uid;
    // A numeric user not in /etc/passwd runs with gid 0, as in Docker and containerd.
    for (const auto& p : passwd) {
      if (p.uid == *uid) {
        out.gid = p.gid;
        user_name = p.name;
        break;
      }
    }
  } else {
    auto it = std::find_if(passwd.begin(), passwd.end(),
                           [&](const PasswdEntry& p) { return p.name == user_part; });
    if (it == passwd.end()) {
      return Status::NotFound("no user \"" + std::string(user_part) +
                              "\" in the image's /etc/passwd");
    }
    out.uid = it->uid;
    out.gid = it->gid;
    user_name = it->name;
  }
  auto groups = read_group(rootfs_path);
  if (!group_part.empty()) {
    if (auto gid = parse_id(group_part)) {
      out.gid = *gid;
    } else {
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const GroupEntry& g) { return g.name == group_part; });
      if (it == groups.end()) {
        return Status::NotFound("no group \"" + std::string(group_part) +
                                "\" in the image's /etc/group");
      }
      out.gid = it->gid;
    }
  }
  if (!user_name.empty()) {
    for (const auto& g : groups) {
      if (g.gid == out.gid) continue;
      if (std::find(g.members.begin(), g.members.end(), user_name) != g.members.end() &&
          std::find(out.additional_gids.begin(), out.additional_gids.end(), g.gid) ==
              out.additional_gids.end()) {
        out.additional_gids.push_back(g.gid);
      }
    }
  }
  return out;
}

Status verify_run_as_non_root(std::optional<int64_t> run_as_user, std::string_view image_user) {
  if (run_as_user) {
    if (*run_as_user == 0) {
      return Status::Invalid("container's runAsUser breaks non-root policy");
    }
    return Status::Ok();
  }
  std::string_view user_part = image_user.substr(0, image_user.find(':'));
  if (user_part.empty()) {
    return Status::Invalid("container has runAsNonRoot and image will run as root");
  }
  auto uid = parse_id(user_part);
  if (!uid) {
    return Status::Invalid("container has runAsNonRoot and image has non-numeric user (" +
                           std::string(user_part) + "), cannot verify user is non-root");
  }
  if (*uid == 0) {
    return Status::Invalid("container has runAsNonRoot and image will run as root");
  }
  return Status::Ok();
}

std::string container_cgroup_path(const ContainerConfig& config) {
  std::string parent = config.cgroup_parent.empty() ? "/skiff" : config.cgroup_parent;
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  if (parent.empty() || parent[0] != '/') parent = "/" + parent;
  return (parent == "/" ? "" : parent) + "/" + config.id;
}

Result<nlohmann::json> build_oci_spec(const ContainerConfig& config,
                                      const std::string& rootfs_path) {
  if (!is_valid_id(config.id)) {
    return Status::Invalid("invalid container id \"" + config.id + "\"");
  }
  if (config.args.empty()) return Status::Invalid("container has no command to run");
  if (!config.hostname.empty() && config.uts.mode != NamespaceOption::Mode::kCreate) {
    return Status::Invalid("a hostname needs a new UTS namespace");
  }
  if (config.run_as_non_root && config.uid == 0) {
    return Status::Invalid("container has runAsNonRoot and image will run as root");
  }
  auto caps =
      effective_capabilities(config.capabilities_add, config.capabilities_drop, config.privileged);
  if (!caps.ok()) return caps.status();

  std::vector<std::string> env = config.env;
  if (!has_env(env, "PATH")) env.insert(env.begin(), std::string("PATH=") + kDefaultPath);
  if (!config.hostname.empty() && !has_env(env, "HOSTNAME")) {
    env.push_back("HOSTNAME=" + config.hostname);
  }
  if (config.tty && !has_env(env, "TERM")) env.push_back("TERM=xterm");

  json process = {
      {"terminal", config.tty},
      {"user", {{"uid", config.uid}, {"gid", config.gid}}},
      {"args", config.args},
      {"env", env},
      {"cwd", config.working_dir.empty() ? "/" : config.working_dir},
      {"capabilities",
       {{"bounding", *caps},
        {"effective", *caps},
        {"permitted", *caps},
        {"inheritable", json::array()},
        {"ambient", json::array()}}},
      {"noNewPrivileges", !config.allow_privilege_escalation && !config.privileged},
      {"oomScoreAdj", config.oom_score_adj},
  };
  if (!config.additional_gids.empty()) {
    process["user"]["additionalGids"] = config.additional_gids;
  }

  json mounts = default_mounts(config.privileged);
  for (const auto& m : config.mounts) {
    if (m.container_path.empty() || m.container_path[0] != '/') {
      return Status::Invalid("mount path must be absolute: \"" + m.container_path + "\"");
    }
    if (m.type == Mount::Type::kBind) {
      if (m.host_path.empty()) {
        return Status::Invalid("bind mount of \"" + m.container_path + "\" has no host path");
      }
      mounts.push_back({{"destination", m.container_path},
                        {"type", "bind"},
                        {"source", m.host_path},
                        {"options", {"rbind", "rprivate", m.read_only ? "ro" : "rw"}}});
    } else {
      json options = {"nosuid", "nodev", "mode=1777"};
      if (m.read_only) options.push_back("ro");
      if (m.size_bytes > 0) options.push_back("size=" + std::to_string(m.size_bytes));
      mounts.push_back({{"destination", m.container_path},
                        {"type", "tmpfs"},
                        {"source", "tmpfs"},
                        {"options", options}});
    }
  }

  json namespaces = json::array();
  namespaces.push_back({{"type", "mount"}});
  const std::pair<const char*, const NamespaceOption*> ns_list[] = {{"network", &config.network},
                                                                    {"ipc", &config.ipc},
                                                                    {"uts", &config.uts},
                                                                    {"pid", &config.pid}};
  for (const auto& [type, ns] : ns_list) {
    if (ns->mode == NamespaceOption::Mode::kHost) continue;
    if (ns->mode == NamespaceOption::Mode::kJoin && ns->path.empty()) {
      return Status::Invalid(std::string("no path for the ") + type + " namespace to join");
    }
    namespaces.push_back(namespace_entry(type, *ns));
  }

  json resources = {
      {"devices", json::array({{{"allow", config.privileged}, {"access", "rwm"}}})},
      {"cpu", {{"shares", milli_cpu_to_shares(config.resources.cpu_request_milli)}}},
  };
  if (config.resources.cpu_limit_milli > 0) {
    resources["cpu"]["quota"] = milli_cpu_to_quota(config.resources.cpu_limit_milli, kCfsPeriodUs);
    resources["cpu"]["period"] = kCfsPeriodUs;
  }
  if (config.resources.memory_limit_bytes > 0) {
    resources["memory"] = {{"limit", config.resources.memory_limit_bytes}};
  }
  if (config.resources.pids_limit > 0) {
    resources["pids"] = {{"limit", config.resources.pids_limit}};
  }

  json linux = {
      {"namespaces", namespaces},
      {"resources", resources},
      {"cgroupsPath", container_cgroup_path(config)},
  };
  if (!config.sysctls.empty()) linux["sysctl"] = config.sysctls;
  if (!config.privileged) {
    linux["maskedPaths"] = default_masked_paths();
    linux["readonlyPaths"] = default_readonly_paths();
    if (config.seccomp == ContainerConfig::Seccomp::kRuntimeDefault) {
      linux["seccomp"] = runtime_default_seccomp(*caps);
    }
  }

  json spec = {
      {"ociVersion", "1.0.2"},
      {"process", process},
      {"root", {{"path", rootfs_path}, {"readonly", config.read_only_rootfs}}},
      {"mounts", mounts},
      {"linux", linux},
  };
  if (!config.hostname.empty()) spec["hostname"] = config.hostname;
  if (!config.annotations.empty()) spec["annotations"] = config.annotations;
  return spec;
}

}  // namespace skiff::agent::runtime
