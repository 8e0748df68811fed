#include "agent/cleanup.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "agent/network/cni_iptables.h"
#include "agent/network/pod_network.h"
#include "agent/network/process.h"
#include "agent/network/sandbox_namespaces.h"
#include "agent/pod_cgroups.h"
#include "agent/runtime/rootfs.h"
#include "agent/runtime/runtime.h"

namespace skiff::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Collects what was done; the first failure becomes the returned status.
struct Progress {
  CleanupReport* report;
  Status first;
  void removed(std::string what) { report->removed.push_back(std::move(what)); }
  void failed(const std::string& what, const Status& why) {
    report->failed.push_back(what + ": " + why.message());
    if (first.ok()) first = Status::Internal(what + ": " + why.message());
  }
};

Result<network::ProcessResult> run(const std::vector<std::string>& argv) {
  return network::run_process(argv, network::helper_environment({}), "", 60s);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool under(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mount_path(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Mount points strictly under `dir`, deepest first (so that nested mounts go before their
// parents).
std::vector<std::string> mounts_under(const std::string& dir) {
  std::vector<std::string> out;
  std::istringstream in(read_file("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    if (!(fields >> id >> parent >> dev >> root >> mount_point)) continue;
    std::string p = unescape_mount_path(mount_point);
    if (under(p, dir)) out.push_back(p);
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    auto depth = [](const std::string& s) { return std::count(s.begin(), s.end(), '/'); };
    return depth(a) != depth(b) ? depth(a) > depth(b) : a > b;
  });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

// Container ids under the runtime root: bundles, and whatever runc still has state for.
std::set<std::string> container_ids(const std::string& runtime_root, const std::string& runc) {
  std::set<std::string> ids;
  for (const auto& id : dir_entries(runtime_root + "/containers")) ids.insert(id);
  if (fs::exists(runtime_root + "/runc")) {
    auto r = run({runc, "--root", runtime_root + "/runc", "list", "-q"});
    if (r.ok() && r->exit_code == 0) {
      std::istringstream in(r->stdout_text);
      std::string id;
      while (in >> id) ids.insert(id);
    }
  }
  return ids;
}

// Processes whose command line is that of conmon and names a path under `runtime_root`.
std::vector<pid_t> conmon_processes(const std::string& runtime_root) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == ::getpid()) continue;
    std::string cmdline = read_file("/proc/" + std::string(e->d_name) + "/cmdline");
    if (cmdline.empty()) continue;
    std::vector<std::string> args;
    size_t pos = 0;
    while (pos < cmdline.size()) {
      size_t nul = cmdline.find('\0', pos);
      if (nul == std::string::npos) nul = cmdline.size();
      args.push_back(cmdline.substr(pos, nul - pos));
      pos = nul + 1;
    }
    if (args.empty() || fs::path(args[0]).filename() != "conmon") continue;
    bool ours = std::any_of(args.begin(), args.end(), [&](const std::string& a) {
      return a.find(runtime_root + "/") != std::string::npos;
    });
    if (ours) out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

void remove_containers(const CleanupOptions& o, const std::string& runtime_root, Progress& p) {
  std::set<std::string> ids = container_ids(runtime_root, o.runc_path);
  if (!ids.empty()) {
    runtime::RuntimeOptions ro;
    ro.root_dir = runtime_root;
    ro.runc_path = o.runc_path;
    auto rt = runtime::ContainerRuntime::open(ro);
    for (const auto& id : ids) {
      Status s;
      if (rt.ok()) {
        s = (*rt)->remove(id);
      } else {
        // Without a usable runtime (conmon gone, say): runc directly, then the rootfs.
        auto r = run({o.runc_path, "--root", runtime_root + "/runc", "delete", "--force", id});
        if (!r.ok()) {
          s = r.status();
        } else {
          s = runtime::unmount_rootfs(runtime_root + "/containers/" + id + "/rootfs");
        }
        std::error_code ec;
        if (s.ok()) fs::remove_all(runtime_root + "/containers/" + id, ec);
      }
      if (s.ok()) {
        p.removed("container " + id);
      } else {
        p.failed("container " + id, s);
      }
    }
  }
  // conmon exits shortly after its container (it still records the exit and may run runc,
  // which would recreate state under the root): give it a moment, then stop any still around
  // (its container gone from runc's state, say).
  auto deadline = std::chrono::steady_clock::now() + 5s;
  std::vector<pid_t> left = conmon_processes(runtime_root);
  while (!left.empty() && !ids.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    left = conmon_processes(runtime_root);
  }
  for (pid_t pid : left) {
    if (::kill(pid, SIGKILL) == 0) {
      p.removed("conmon process " + std::to_string(pid));
    } else if (errno != ESRCH) {
      p.failed("conmon process " + std::to_string(pid), Status::Internal(strerror(errno)));
    }
  }
  deadline = std::chrono::steady_clock::now() + 5s;
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    left = conmon_processes(runtime_root);
  }
}

// iptables-save's output; "" without iptables.
std::string iptables_text() {
  auto r = network::iptables_save();
  return r.ok() ? *r : "";
}

bool link_exists(const std::string& name) { return fs::exists("/sys/class/net/" + name); }

// Chains and tagged rules of the pod network, in iptables-save's text.
bool has_cni_rules(const std::string& save, const std::string& network) {
  return save.find("name: \\\"" + network + "\\\"") != std::string::npos ||
         save.find("name: \"" + network + "\"") != std::string::npos;
}

void remove_pod_network(const CleanupOptions& o, const std::string& state, Progress& p) {
  const std::string netns_root = state + "/netns";
  std::vector<std::string> sandboxes = network::list_sandbox_namespace_dirs(netns_root);
  bool bridge = link_exists(o.bridge_name);
  bool cni_state = fs::exists(state + "/network");
  std::string save_before = iptables_text();
  bool rules = has_cni_rules(save_before, o.bridge_name);

  network::PodNetworkOptions no;
  no.state_dir = state;
  no.bridge_name = o.bridge_name;
  no.cni_bin_dir = o.cni_bin_dir;
  Status s = network::cleanup_pod_network(no);
  if (!s.ok()) p.failed("pod network", s);

  std::vector<std::string> left = network::list_sandbox_namespace_dirs(netns_root);
  for (const auto& uid : sandboxes) {
    if (std::find(left.begin(), left.end(), uid) == left.end()) {
      p.removed("network namespaces of pod " + uid);
    }
  }
  if (bridge && !link_exists(o.bridge_name)) p.removed("bridge " + o.bridge_name);
  if (cni_state && !fs::exists(state + "/network")) p.removed("CNI state " + state + "/network");
  if (rules && !has_cni_rules(iptables_text(), o.bridge_name)) {
    p.removed("iptables rules of CNI network " + o.bridge_name);
  }

  // portmap's shared chains, once no network forwards a host port through them; only after
  // this node had a pod network here (the chains are host-wide).
  if (!rules && !cni_state && sandboxes.empty()) return;
  bool hostport = save_before.find(":CNI-HOSTPORT-") != std::string::npos;
  if (Status hs = network::remove_unused_hostport_chains(); !hs.ok()) {
    p.failed("iptables chains CNI-HOSTPORT-*", hs);
  } else if (hostport && iptables_text().find(":CNI-HOSTPORT-") == std::string::npos) {
    p.removed("iptables chains CNI-HOSTPORT-*");
  }
}

// The service proxy's and the DNS redirect's tables for the bridge (and the proxy's
// unsuffixed table of the default bridge).
void remove_nft_tables(const CleanupOptions& o, Progress& p) {
  std::vector<std::string> tables = {"skiff-" + o.bridge_name, "skiff-dns-" + o.bridge_name};
  if (o.bridge_name == "skiff0") tables.push_back("skiff");
  for (const auto& t : tables) {
    auto listed = run({o.nft_binary, "list", "table", "ip", t});
    if (!listed.ok()) return;  // no nft: nothing can have been added
    if (listed->exit_code != 0) continue;
    auto r = run({o.nft_binary, "delete", "table", "ip", t});
    if (r.ok() && r->exit_code == 0) {
      p.removed("nftables table ip " + t);
    } else {
      p.failed("nftables table ip " + t, r.ok() ? Status::Internal(r->stderr_text) : r.status());
    }
  }
}

void unmount_all(const std::string& data_dir, Progress& p) {
  // Unmounting a parent can reveal nothing new, but lazy unmounts and shared propagation can
  // take a moment to settle: a few passes.
  std::set<std::string> reported;
  for (int pass = 0; pass < 5; ++pass) {
    auto mounts = mounts_under(data_dir);
    if (mounts.empty()) return;
    for (const auto& m : mounts) {
      if (::umount2(m.c_str(), 0) == 0 || ::umount2(m.c_str(), MNT_DETACH) == 0) {
        if (reported.insert(m).second) p.removed("mount " + m);
      } else if (errno != EINVAL && errno != ENOENT && pass == 4) {
        p.failed("mount " + m, Status::Internal(strerror(errno)));
      }
    }
  }
  for (const auto& m : mounts_under(data_dir)) {
    p.failed("mount " + m, Status::Internal("still mounted"));
  }
}

// Deletes `path` (file or directory) unless a mount is still under it.
void remove_path(const std::string& path, Progress& p) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return;
  if (!mounts_under(path).empty()) {
    p.failed(path, Status::Internal("a mount is still under it; not deleted"));
    return;
  }
  fs::remove_all(path, ec);
  if (ec) {
    p.failed(path, Status::Internal(ec.message()));
  } else {
    p.removed("files " + path);
  }
}

// runc removes the containers' cgroups but not the parent it created for them (/skiff);
// rmdir only succeeds for an empty cgroup, so another agent's containers are never touched.
void remove_cgroup_parents(Progress& p) {
  std::vector<std::string> dirs = {"/sys/fs/cgroup/skiff"};
  for (const auto& ctl : dir_entries("/sys/fs/cgroup"))
    dirs.push_back("/sys/fs/cgroup/" + ctl + "/skiff");
  for (const auto& d : dirs) {
    if (::rmdir(d.c_str()) == 0) p.removed("cgroup " + d);
  }
}

// The pod cgroups under the agent's top-level cgroup, then that cgroup and its QoS levels.
// Containers are gone by now; a pod cgroup that still has processes is reported, not killed
// (its processes are not known to be this agent's).
void remove_pod_cgroups(const CleanupOptions& o, const std::string& state, Progress& p) {
  PodCgroupsOptions po;
  auto recorded = recorded_pod_cgroups(state);
  if (recorded.ok()) {
    po = *recorded;
  } else if (!recorded.status().is_not_found()) {
    p.failed("pod cgroups", recorded.status());
  }
  if (!o.kubepods_cgroup.empty()) po.kubepods = o.kubepods_cgroup;
  if (!recorded.ok() && o.kubepods_cgroup.empty()) return;
  po.state_dir = state;
  // Only when the top-level cgroup exists somewhere: opening would create it.
  std::vector<std::string> places = {po.cgroup_root + "/" + po.kubepods};
  for (const auto& h : dir_entries(po.cgroup_root)) {
    places.push_back(po.cgroup_root + "/" + h + "/" + po.kubepods);
  }
  std::error_code ec;
  if (std::none_of(places.begin(), places.end(),
                   [&](const std::string& d) { return fs::is_directory(d, ec); })) {
    fs::remove(state + "/" + kPodCgroupsRecordFile, ec);
    return;
  }
  auto pc = PodCgroups::open(po);
  if (!pc.ok()) {
    p.failed("pod cgroups /" + po.kubepods, pc.status());
    return;
  }
  for (const auto& e : (*pc)->list()) {
    Status s = (*pc)->remove(e.uid, false);
    if (s.ok()) {
      p.removed("pod cgroup " + e.path);
    } else {
      p.failed("pod cgroup " + e.path, s);
    }
  }
  Status s = (*pc)->remove_root();
  if (s.ok()) {
    p.removed("cgroup " + (*pc)->root_path());
  } else {
    p.failed("cgroup " + (*pc)->root_path(), s);
  }
}

}  // namespace

Status cleanup_node(const CleanupOptions& options, CleanupReport* report) {
  CleanupOptions o = options;
  while (o.data_dir.size() > 1 && o.data_dir.back() == '/') o.data_dir.pop_back();
  if (o.data_dir.empty() || o.data_dir[0] != '/' || o.data_dir == "/") {
    return Status::Invalid("the data dir must be an absolute path other than /, not \"" +
                           options.data_dir + "\"");
  }
  if (o.bridge_name.empty() || o.bridge_name.size() > 15) {
    return Status::Invalid("the bridge name must have 1 to 15 characters");
  }
  CleanupReport local;
  Progress p{report != nullptr ? report : &local, Status::Ok()};
  const std::string state = o.data_dir + "/agent";
  const std::string runtime_root = state + "/runtime";

  remove_containers(o, runtime_root, p);
  const bool removed_containers = !p.report->removed.empty();
  remove_pod_network(o, state, p);
  remove_nft_tables(o, p);
  unmount_all(o.data_dir, p);
  if (removed_containers) remove_cgroup_parents(p);
  remove_pod_cgroups(o, state, p);

  if (o.all) {
    for (const auto& e : dir_entries(o.data_dir)) remove_path(o.data_dir + "/" + e, p);
  } else {
    for (const char* sub : {"/runtime", "/netns", "/network", "/pods"}) {
      remove_path(state + sub, p);
    }
  }
  return p.first;
}

}  // namespace skiff::agent
