#include "agent/pod_cgroups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "common/quantity.h"

namespace skiff::agent {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using runtime::QosClass;
using namespace std::chrono_literals;

constexpr const char* kBurstable = "burstable";
constexpr const char* kBestEffort = "besteffort";
// The cgroup v2 controllers pods use, enabled below the root when the host offers them.
constexpr const char* kV2Controllers[] = {"cpu", "cpuset", "memory", "pids", "io", "hugetlb"};

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 128 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

bool valid_uid(const std::string& s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  return s.substr(b);
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

// Writes a control file. O_CREAT only matters for a plain directory standing in for a cgroup;
// the kernel's control files exist already.
Status write_value(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Internal("open " + path + ": " + std::strerror(errno));
  ssize_t n = ::write(fd, value.data(), value.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return Status::Internal("writing \"" + value + "\" to " + path + ": " + std::strerror(err));
  }
  return Status::Ok();
}

bool is_dir(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory(ec) && !e.is_symlink(ec)) out.push_back(e.path().filename());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The quantity at resources.<kind>.<name> of a container, in milli units (cpu) or units.
Result<int64_t> quantity_at(const json& obj, const char* name, bool milli) {
  if (!obj.is_object() || !obj.contains(name)) return int64_t{0};
  auto q = Quantity::from_json(obj[name]);
  if (!q.ok()) return Status::Invalid(std::string(name) + ": " + q.status().message());
  int64_t v = milli ? q->milli_value() : q->value();
  return v > 0 ? v : 0;
}

const json& member(const json& obj, const char* name) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(name);
  return it == obj.end() ? kNull : *it;
}

Result<PodContainerResources> container_resources(const json& c, bool init) {
  PodContainerResources r;
  r.init = init;
  const json& res = member(c, "resources");
  const json& limits = member(res, "limits");
  const json& requests = member(res, "requests");
  auto cpu_lim = quantity_at(limits, "cpu", true);
  auto mem_lim = quantity_at(limits, "memory", false);
  auto cpu_req = quantity_at(requests, "cpu", true);
  auto mem_req = quantity_at(requests, "memory", false);
  for (const auto* s :
       {&cpu_lim.status(), &mem_lim.status(), &cpu_req.status(), &mem_req.status()}) {
    if (!s->ok()) return *s;
  }
  r.cpu_limit_milli = *cpu_lim;
  r.memory_limit_bytes = *mem_lim;
  const bool has_cpu_req = requests.is_object() && requests.contains("cpu");
  const bool has_mem_req = requests.is_object() && requests.contains("memory");
  r.cpu_request_milli = has_cpu_req ? *cpu_req : r.cpu_limit_milli;
  r.memory_request_bytes = has_mem_req ? *mem_req : r.memory_limit_bytes;
  return r;
}

// cgroup v2 cpu.weight back to cpu.shares (the inverse of cpu_shares_to_weight, rounded).
uint64_t weight_to_shares(uint64_t weight) {
  if (weight <= 1) return 2;
  return 2 + ((weight - 1) * 262142 + 9998) / 9999;
}

}  // namespace

const char* qos_class_name(QosClass qos) {
  switch (qos) {
    case QosClass::kGuaranteed:
      return "Guaranteed";
    case QosClass::kBurstable:
      return "Burstable";
    case QosClass::kBestEffort:
      return "BestEffort";
  }
  return "BestEffort";
}

QosClass pod_qos_class(const json& pod) {
  const json& spec = member(pod, "spec");
  int64_t req_cpu = 0, req_mem = 0, lim_cpu = 0, lim_mem = 0;
  bool any_req_cpu = false, any_req_mem = false, any_lim_cpu = false, any_lim_mem = false;
  bool guaranteed = true;
  for (const char* list : {"containers", "initContainers"}) {
    const json& cs = member(spec, list);
    if (!cs.is_array()) continue;
    for (const auto& c : cs) {
      const json& res = member(c, "resources");
      const json& requests = member(res, "requests");
      const json& limits = member(res, "limits");
      auto rc = quantity_at(requests, "cpu", true);
      auto rm = quantity_at(requests, "memory", false);
      auto lc = quantity_at(limits, "cpu", true);
      auto lm = quantity_at(limits, "memory", false);
      int64_t vrc = rc.ok() ? *rc : 0, vrm = rm.ok() ? *rm : 0;
      int64_t vlc = lc.ok() ? *lc : 0, vlm = lm.ok() ? *lm : 0;
      // The API server defaults a missing request to the limit.
      if (!(requests.is_object() && requests.contains("cpu"))) vrc = vlc;
      if (!(requests.is_object() && requests.contains("memory"))) vrm = vlm;
      if (vrc > 0) any_req_cpu = true, req_cpu += vrc;
      if (vrm > 0) any_req_mem = true, req_mem += vrm;
      if (vlc > 0) any_lim_cpu = true, lim_cpu += vlc;
      if (vlm > 0) any_lim_mem = true, lim_mem += vlm;
      if (vlc <= 0 || vlm <= 0) guaranteed = false;
    }
  }
  if (!any_req_cpu && !any_req_mem && !any_lim_cpu && !any_lim_mem) return QosClass::kBestEffort;
  if (guaranteed && any_req_cpu == any_lim_cpu && any_req_mem == any_lim_mem &&
      req_cpu == lim_cpu && req_mem == lim_mem) {
    return QosClass::kGuaranteed;
  }
  return QosClass::kBurstable;
}

Result<PodResources> pod_resources_from_json(const json& pod) {
  PodResources out;
  const json& uid = member(member(pod, "metadata"), "uid");
  if (!uid.is_string() || !valid_uid(uid.get<std::string>())) {
    return Status::Invalid("the pod has no usable metadata.uid");
  }
  out.uid = uid.get<std::string>();
  const json& qos = member(member(pod, "status"), "qosClass");
  std::string q = qos.is_string() ? qos.get<std::string>() : "";
  if (q == "Guaranteed") {
    out.qos = QosClass::kGuaranteed;
  } else if (q == "Burstable") {
    out.qos = QosClass::kBurstable;
  } else if (q == "BestEffort") {
    out.qos = QosClass::kBestEffort;
  } else {
    out.qos = pod_qos_class(pod);
  }
  const json& spec = member(pod, "spec");
  for (const char* list : {"containers", "initContainers"}) {
    const json& cs = member(spec, list);
    if (!cs.is_array()) continue;
    const bool init_list = std::string(list) == "initContainers";
    for (const auto& c : cs) {
      const json& policy = member(c, "restartPolicy");
      bool sidecar = init_list && policy.is_string() && policy.get<std::string>() == "Always";
      auto r = container_resources(c, init_list && !sidecar);
      if (!r.ok()) return r.status();
      out.containers.push_back(*r);
    }
  }
  const json& overhead = member(spec, "overhead");
  auto oc = quantity_at(overhead, "cpu", true);
  auto om = quantity_at(overhead, "memory", false);
  if (!oc.ok()) return oc.status();
  if (!om.ok()) return om.status();
  out.overhead_cpu_milli = *oc;
  out.overhead_memory_bytes = *om;
  return out;
}

PodCgroupLimits pod_cgroup_limits(const PodResources& pod) {
  PodCgroupLimits out;
  if (pod.qos == QosClass::kBestEffort) return out;  // cpu.shares 2, nothing else
  int64_t req_cpu = 0, lim_cpu = 0, lim_mem = 0;
  int64_t init_req_cpu = 0, init_lim_cpu = 0, init_lim_mem = 0;
  bool cpu_declared = true, memory_declared = true, any_container = false;
  for (const auto& c : pod.containers) {
    if (c.init) {
      // Init containers run one at a time, before the others: the largest one counts.
      init_req_cpu = std::max(init_req_cpu, c.cpu_request_milli);
      init_lim_cpu = std::max(init_lim_cpu, c.cpu_limit_milli);
      init_lim_mem = std::max(init_lim_mem, c.memory_limit_bytes);
      continue;
    }
    any_container = true;
    req_cpu += c.cpu_request_milli;
    lim_cpu += c.cpu_limit_milli;
    lim_mem += c.memory_limit_bytes;
    if (c.cpu_limit_milli <= 0) cpu_declared = false;
    if (c.memory_limit_bytes <= 0) memory_declared = false;
  }
  if (!any_container) cpu_declared = memory_declared = false;
  req_cpu = std::max(req_cpu, init_req_cpu) + pod.overhead_cpu_milli;
  lim_cpu = std::max(lim_cpu, init_lim_cpu);
  lim_mem = std::max(lim_mem, init_lim_mem);
  // The overhead is added to limits the pod has (as resource.PodLimits does).
  if (lim_cpu > 0) lim_cpu += pod.overhead_cpu_milli;
  if (lim_mem > 0) lim_mem += pod.overhead_memory_bytes;

  out.cpu_shares = runtime::milli_cpu_to_shares(req_cpu);
  const bool guaranteed = pod.qos == QosClass::kGuaranteed;
  if ((guaranteed || cpu_declared) && lim_cpu > 0) {
    out.cpu_quota_us = runtime::milli_cpu_to_quota(lim_cpu, out.cpu_period_us);
  }
  if ((guaranteed || memory_declared) && lim_mem > 0) out.memory_limit_bytes = lim_mem;
  return out;
}

uint64_t cpu_shares_to_weight(uint64_t shares) {
  if (shares == 0) return 0;
  if (shares < 2) shares = 2;
  if (shares > 262144) shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

Status remove_recorded_pod_cgroups(const std::string& state_dir, bool kill_processes) {
  auto recorded = recorded_pod_cgroups(state_dir);
  if (!recorded.ok()) return recorded.status().is_not_found() ? Status::Ok() : recorded.status();
  auto pc = PodCgroups::open(*recorded);
  if (!pc.ok()) return pc.status();
  Status first;
  for (const auto& e : (*pc)->list()) {
    Status s = (*pc)->remove(e.uid, kill_processes);
    if (!s.ok() && first.ok()) first = s;
  }
  Status s = (*pc)->remove_root();
  return first.ok() ? s : first;
}

std::string kubepods_cgroup_name(const std::string& configured, const std::string& bridge_name) {
  if (!configured.empty()) return configured;
  if (bridge_name.empty() || bridge_name == "skiff0") return "kubepods";
  return "kubepods-" + bridge_name;
}

Result<PodCgroupsOptions> recorded_pod_cgroups(const std::string& state_dir) {
  std::string path = state_dir + "/" + kPodCgroupsRecordFile;
  if (!fs::exists(path)) return Status::NotFound("no pod cgroups recorded in " + state_dir);
  json j = json::parse(read_file(path), nullptr, false);
  if (!j.is_object() || !j.contains("kubepods") || !j["kubepods"].is_string() ||
      !j.contains("cgroupRoot") || !j["cgroupRoot"].is_string()) {
    return Status::Invalid("unreadable record " + path);
  }
  PodCgroupsOptions o;
  o.cgroup_root = j["cgroupRoot"].get<std::string>();
  o.kubepods = j["kubepods"].get<std::string>();
  o.state_dir = state_dir;
  if (!valid_name(o.kubepods) || o.cgroup_root.empty() || o.cgroup_root[0] != '/') {
    return Status::Invalid("unusable record " + path);
  }
  return o;
}

PodCgroups::PodCgroups(PodCgroupsOptions options, bool v2, std::vector<std::string> hierarchies)
    : options_(std::move(options)), v2_(v2), hierarchies_(std::move(hierarchies)) {}

PodCgroups::~PodCgroups() = default;

Result<std::unique_ptr<PodCgroups>> PodCgroups::open(PodCgroupsOptions options) {
  if (!valid_name(options.kubepods)) {
    return Status::Invalid("invalid cgroup name \"" + options.kubepods + "\"");
  }
  while (options.cgroup_root.size() > 1 && options.cgroup_root.back() == '/') {
    options.cgroup_root.pop_back();
  }
  const std::string& root = options.cgroup_root;
  const bool v2 = fs::exists(root + "/cgroup.controllers");
  std::vector<std::string> hierarchies;
  if (v2) {
    hierarchies.push_back(root);
  } else {
    // Each mounted v1 hierarchy (and a hybrid host's unified one) is a real directory with
    // cgroup.procs; "cpu" -> "cpu,cpuacct" style symlinks name one of them twice.
    for (const auto& name : subdirs(root)) {
      if (fs::exists(root + "/" + name + "/cgroup.procs")) hierarchies.push_back(root + "/" + name);
    }
  }
  if (hierarchies.empty()) return Status::Unavailable("no cgroup file system under " + root);
  std::unique_ptr<PodCgroups> pc(new PodCgroups(options, v2, hierarchies));
  if (v2) {
    std::vector<std::string> available = words(read_file(root + "/cgroup.controllers"));
    for (const char* c : kV2Controllers) {
      if (std::find(available.begin(), available.end(), c) != available.end()) {
        pc->v2_controllers_.push_back(c);
      }
    }
    auto has = [&](const char* c) {
      return std::find(pc->v2_controllers_.begin(), pc->v2_controllers_.end(), c) !=
             pc->v2_controllers_.end();
    };
    if (has("cpu")) pc->cpu_dir_ = root;
    if (has("memory")) pc->memory_dir_ = root;
    if (has("pids")) pc->pids_dir_ = root;
  } else {
    for (const auto& h : hierarchies) {
      if (fs::exists(h + "/cpu.shares")) pc->cpu_dir_ = h;
      if (fs::exists(h + "/memory.limit_in_bytes")) pc->memory_dir_ = h;
      if (fs::exists(h + "/cpuset.cpus")) pc->cpuset_dir_ = h;
      // The root of the pids hierarchy has no pids.max; its name says what it is.
      std::string name = fs::path(h).filename().string();
      std::replace(name.begin(), name.end(), ',', ' ');
      for (const auto& c : words(name)) {
        if (c == "pids") pc->pids_dir_ = h;
      }
    }
  }

  const std::string top = pc->root_path();
  for (const auto& path : {top, top + "/" + kBurstable, top + "/" + kBestEffort}) {
    Status s = pc->ensure_dir(path);
    if (!s.ok()) return s;
  }
  // The node's allocatable on the top level, and BestEffort's minimal share, as the kubelet's
  // node and QoS container managers set them.
  PodCgroupLimits node;
  node.cpu_shares =
      options.node_cpu_milli > 0 ? runtime::milli_cpu_to_shares(options.node_cpu_milli) : 0;
  node.memory_limit_bytes = options.node_memory_bytes > 0 ? options.node_memory_bytes : -1;
  node.cpu_quota_us = -1;
  Status s = pc->set_pod_values(top, node);
  if (!s.ok()) return s;
  PodCgroupLimits besteffort;
  s = pc->set_pod_values(top + "/" + kBestEffort, besteffort);
  if (!s.ok()) return s;
  pc->update_qos_values();

  if (!options.state_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options.state_dir, ec);
    json record = {{"cgroupRoot", options.cgroup_root}, {"kubepods", options.kubepods}};
    std::string path = options.state_dir + "/" + kPodCgroupsRecordFile;
    std::string tmp = path + ".tmp";
    Status ws = write_value(tmp, record.dump() + "\n");
    if (ws.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
      ws = Status::Internal("rename " + tmp + ": " + std::strerror(errno));
    }
    if (!ws.ok()) return ws;
  }
  return pc;
}

std::string PodCgroups::root_path() const { return "/" + options_.kubepods; }

std::string PodCgroups::pod_path(const std::string& uid, QosClass qos) const {
  switch (qos) {
    case QosClass::kGuaranteed:
      return root_path() + "/pod" + uid;
    case QosClass::kBurstable:
      return root_path() + "/" + kBurstable + "/pod" + uid;
    case QosClass::kBestEffort:
      return root_path() + "/" + kBestEffort + "/pod" + uid;
  }
  return root_path() + "/" + kBestEffort + "/pod" + uid;
}

Status PodCgroups::ensure_dir(const std::string& path) {
  for (const auto& h : hierarchies_) {
    const std::string dir = h + path;
    const std::string parent = fs::path(dir).parent_path();
    if (v2_ && !v2_controllers_.empty()) {
      // A child only gets the controllers its parent enables for its subtree.
      std::vector<std::string> enabled = words(read_file(parent + "/cgroup.subtree_control"));
      std::string missing;
      for (const auto& c : v2_controllers_) {
        if (std::find(enabled.begin(), enabled.end(), c) == enabled.end() &&
            std::find(enabled.begin(), enabled.end(), "+" + c) == enabled.end()) {
          missing += (missing.empty() ? "+" : " +") + c;
        }
      }
      if (!missing.empty() && !write_value(parent + "/cgroup.subtree_control", missing).ok()) {
        // All at once failed (one controller cannot be enabled here): one by one, keeping
        // whatever works.
        for (const auto& c : words(missing))
          (void)write_value(parent + "/cgroup.subtree_control", c);
      }
    }
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::Internal("mkdir " + dir + ": " + std::strerror(errno));
    }
    if (h == cpuset_dir_) {
      // A new cpuset has no CPUs and no memory nodes, and no process may join it until they
      // are set: the parent's.
      for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
        if (!trim(read_file(dir + "/" + f)).empty()) continue;
        Status s = write_value(dir + "/" + f, trim(read_file(parent + "/" + f)));
        if (!s.ok()) return s;
      }
    }
  }
  return Status::Ok();
}

Status PodCgroups::set_pod_values(const std::string& path, const PodCgroupLimits& l) {
  if (!cpu_dir_.empty() && l.cpu_shares > 0) {
    const std::string dir = cpu_dir_ + path;
    if (v2_) {
      Status s =
          write_value(dir + "/cpu.weight", std::to_string(cpu_shares_to_weight(l.cpu_shares)));
      if (!s.ok()) return s;
      std::string max = (l.cpu_quota_us > 0 ? std::to_string(l.cpu_quota_us) : "max") + " " +
                        std::to_string(l.cpu_period_us);
      s = write_value(dir + "/cpu.max", max);
      if (!s.ok()) return s;
    } else {
      Status s = write_value(dir + "/cpu.shares", std::to_string(l.cpu_shares));
      if (!s.ok()) return s;
      if (fs::exists(dir + "/cpu.cfs_quota_us")) {
        s = write_value(dir + "/cpu.cfs_period_us", std::to_string(l.cpu_period_us));
        if (!s.ok()) return s;
        s = write_value(dir + "/cpu.cfs_quota_us",
                        std::to_string(l.cpu_quota_us > 0 ? l.cpu_quota_us : -1));
        if (!s.ok()) return s;
      }
    }
  }
  if (!memory_dir_.empty()) {
    const std::string dir = memory_dir_ + path;
    Status s =
        v2_ ? write_value(dir + "/memory.max",
                          l.memory_limit_bytes > 0 ? std::to_string(l.memory_limit_bytes) : "max")
            : write_value(dir + "/memory.limit_in_bytes",
                          std::to_string(l.memory_limit_bytes > 0 ? l.memory_limit_bytes : -1));
    if (!s.ok()) return s;
  }
  if (!pids_dir_.empty() && fs::exists(pids_dir_ + path + "/pids.max")) {
    Status s = write_value(pids_dir_ + path + "/pids.max",
                           l.pids_limit > 0 ? std::to_string(l.pids_limit) : "max");
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// Burstable's cpu.shares: the sum of its pods' (the kubelet sums their CPU requests), at least 2.
void PodCgroups::update_qos_values() {
  if (cpu_dir_.empty()) return;
  std::lock_guard<std::mutex> l(qos_mu_);
  const std::string burstable = cpu_dir_ + root_path() + "/" + kBurstable;
  uint64_t shares = 0;
  for (const auto& name : subdirs(burstable)) {
    if (name.rfind("pod", 0) != 0) continue;
    std::string text =
        trim(read_file(burstable + "/" + name + (v2_ ? "/cpu.weight" : "/cpu.shares")));
    if (text.empty()) continue;
    uint64_t v = std::strtoull(text.c_str(), nullptr, 10);
    shares += v2_ ? weight_to_shares(v) : v;
  }
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  if (v2_) {
    (void)write_value(burstable + "/cpu.weight", std::to_string(cpu_shares_to_weight(shares)));
  } else {
    (void)write_value(burstable + "/cpu.shares", std::to_string(shares));
  }
}

Result<std::string> PodCgroups::ensure(const PodResources& pod) {
  if (!valid_uid(pod.uid)) return Status::Invalid("invalid pod uid \"" + pod.uid + "\"");
  const std::string path = pod_path(pod.uid, pod.qos);
  Status s = ensure_dir(path);
  if (!s.ok()) return s;
  PodCgroupLimits limits = pod_cgroup_limits(pod);
  if (options_.pod_pids_limit > 0) limits.pids_limit = options_.pod_pids_limit;
  s = set_pod_values(path, limits);
  if (!s.ok()) return s;
  // Containers get the controllers too (runc enables them as well; this keeps the pod's tree
  // complete before the first one exists).
  if (v2_ && !v2_controllers_.empty()) {
    std::string all;
    for (const auto& c : v2_controllers_) all += (all.empty() ? "+" : " +") + c;
    if (!write_value(hierarchies_[0] + path + "/cgroup.subtree_control", all).ok()) {
      for (const auto& c : words(all)) {
        (void)write_value(hierarchies_[0] + path + "/cgroup.subtree_control", c);
      }
    }
  }
  if (pod.qos == QosClass::kBurstable) update_qos_values();
  return path;
}

Result<std::string> PodCgroups::ensure_pod(const json& pod) {
  auto r = pod_resources_from_json(pod);
  if (!r.ok()) return r.status();
  return ensure(*r);
}

namespace {

void collect_processes(const std::string& dir, std::set<int>* out) {
  for (const auto& w : words(read_file(dir + "/cgroup.procs"))) {
    int pid = std::atoi(w.c_str());
    if (pid > 0) out->insert(pid);
  }
  for (const auto& sub : subdirs(dir)) collect_processes(dir + "/" + sub, out);
}

// rmdir of `dir` and the cgroups below it, deepest first. A cgroup that still has processes
// (or that the kernel has not released yet) gives EBUSY.
Status remove_tree(const std::string& dir) {
  Status first;
  for (const auto& sub : subdirs(dir)) {
    Status s = remove_tree(dir + "/" + sub);
    if (!s.ok() && first.ok()) first = s;
  }
  if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return Status::Ok();
  int err = errno;
  if (!first.ok()) return first;
  if (err == EBUSY || err == ENOTEMPTY) return Status::Unavailable("cgroup " + dir + " is busy");
  return Status::Internal("rmdir " + dir + ": " + std::strerror(err));
}

}  // namespace

std::vector<int> PodCgroups::processes(const std::string& uid) const {
  std::set<int> pids;
  if (!valid_uid(uid)) return {};
  for (QosClass q : {QosClass::kGuaranteed, QosClass::kBurstable, QosClass::kBestEffort}) {
    for (const auto& h : hierarchies_) {
      std::string dir = h + pod_path(uid, q);
      if (is_dir(dir)) collect_processes(dir, &pids);
    }
  }
  return {pids.begin(), pids.end()};
}

Status PodCgroups::remove(const std::string& uid, bool kill_processes) {
  if (!valid_uid(uid)) return Status::Invalid("invalid pod uid \"" + uid + "\"");
  std::vector<std::string> dirs;
  for (QosClass q : {QosClass::kGuaranteed, QosClass::kBurstable, QosClass::kBestEffort}) {
    for (const auto& h : hierarchies_) {
      std::string dir = h + pod_path(uid, q);
      if (is_dir(dir)) dirs.push_back(dir);
    }
  }
  if (dirs.empty()) return Status::Ok();
  std::vector<int> left = processes(uid);
  if (kill_processes && !left.empty()) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
      for (int pid : left) ::kill(pid, SIGKILL);
      std::this_thread::sleep_for(20ms);
      left = processes(uid);
    }
  }
  if (!left.empty()) {
    return Status::Unavailable("pod cgroup of " + uid + " still has " +
                               std::to_string(left.size()) + " process(es)");
  }
  // Without processes a cgroup can still be busy for a moment after the last one exited
  // (the kernel releases it asynchronously): a few short retries, then the caller's next try.
  Status result;
  for (int attempt = 0; attempt < 10; ++attempt) {
    result = Status::Ok();
    for (const auto& dir : dirs) {
      Status s = remove_tree(dir);
      if (!s.ok() && result.ok()) result = s;
    }
    if (result.ok() || result.code() != StatusCode::kUnavailable) break;
    std::this_thread::sleep_for(50ms);
  }
  update_qos_values();
  return result;
}

std::vector<PodCgroupEntry> PodCgroups::list() const {
  std::map<std::string, PodCgroupEntry> found;
  const std::pair<std::string, QosClass> levels[] = {
      {"", QosClass::kGuaranteed},
      {std::string("/") + kBurstable, QosClass::kBurstable},
      {std::string("/") + kBestEffort, QosClass::kBestEffort}};
  for (const auto& h : hierarchies_) {
    for (const auto& [level, qos] : levels) {
      for (const auto& name : subdirs(h + root_path() + level)) {
        if (name.size() <= 3 || name.rfind("pod", 0) != 0) continue;
        std::string uid = name.substr(3);
        if (!valid_uid(uid) || found.count(uid) != 0) continue;
        found[uid] = PodCgroupEntry{uid, qos, pod_path(uid, qos)};
      }
    }
  }
  std::vector<PodCgroupEntry> out;
  for (auto& [uid, e] : found) out.push_back(std::move(e));
  return out;
}

Status PodCgroups::remove_root() {
  auto pods = list();
  if (!pods.empty()) {
    return Status::Unavailable(std::to_string(pods.size()) + " pod cgroup(s) left under " +
                               root_path());
  }
  Status result;
  for (const auto& h : hierarchies_) {
    for (const auto& path :
         {root_path() + "/" + kBurstable, root_path() + "/" + kBestEffort, root_path()}) {
      std::string dir = h + path;
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) continue;
      int err = errno;
      if (result.ok()) {
        result = err == EBUSY || err == ENOTEMPTY
                     ? Status::Unavailable("cgroup " + dir + " is busy")
                     : Status::Internal("rmdir " + dir + ": " + std::strerror(err));
      }
    }
  }
  if (result.ok() && !options_.state_dir.empty()) {
    std::error_code ec;
    fs::remove(options_.state_dir + "/" + kPodCgroupsRecordFile, ec);
  }
  return result;
}

}  // namespace skiff::agent
