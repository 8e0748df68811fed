// The Node and Lease objects the agent writes, shaped as a kubelet 1.32 writes them.
#include "agent/node_status.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/time.h"

namespace skiff::agent {

using nlohmann::json;

namespace {

std::string read_first_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

std::string unquote(std::string v) {
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  return v;
}

// The interface of the default route in /proc/net/route, or "".
std::string default_route_interface() {
  std::ifstream f("/proc/net/route");
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string iface, dest;
    in >> iface >> dest;
    if (dest == "00000000") return iface;
  }
  return "";
}

}  // namespace

HostInfo read_host_info() {
  HostInfo h;
  {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    int64_t n = 0;
    while (std::getline(f, line)) {
      if (line.rfind("processor", 0) == 0) ++n;
    }
    if (n > 0) h.cpus = n;
  }
  {
    std::ifstream f("/proc/meminfo");
    std::string key;
    int64_t kb = 0;
    std::string unit;
    while (f >> key >> kb >> unit) {
      if (key == "MemTotal:") {
        h.memory_bytes = kb * 1024;
        break;
      }
    }
  }
  {
    std::ifstream f("/etc/os-release");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("PRETTY_NAME=", 0) == 0) h.os_image = unquote(line.substr(12));
    }
    if (h.os_image.empty()) h.os_image = "Linux";
  }
  struct utsname u;
  if (::uname(&u) == 0) {
    h.kernel_version = u.release;
    std::string m = u.machine;
    if (m == "x86_64") {
      h.architecture = "amd64";
    } else if (m == "aarch64") {
      h.architecture = "arm64";
    } else if (m.rfind("arm", 0) == 0) {
      h.architecture = "arm";
    } else {
      h.architecture = m;
    }
  }
  h.machine_id = read_first_line("/etc/machine-id");
  h.boot_id = read_first_line("/proc/sys/kernel/random/boot_id");
  return h;
}

std::string detect_node_ip() {
  std::string preferred = default_route_interface();
  struct ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "127.0.0.1";
  std::string first, chosen;
  for (auto* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    if ((a->ifa_flags & IFF_LOOPBACK) != 0 || (a->ifa_flags & IFF_UP) == 0) continue;
    char buf[INET_ADDRSTRLEN] = {};
    auto* sin = reinterpret_cast<struct sockaddr_in*>(a->ifa_addr);
    ::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    if (first.empty()) first = buf;
    if (chosen.empty() && a->ifa_name != nullptr && preferred == a->ifa_name) chosen = buf;
  }
  ::freeifaddrs(list);
  if (!chosen.empty()) return chosen;
  return first.empty() ? "127.0.0.1" : first;
}

std::string runc_version(const std::string& runc_path) {
  std::string out;
  FILE* p = ::popen((runc_path + " --version 2>/dev/null").c_str(), "r");
  if (p != nullptr) {
    char buf[256];
    if (std::fgets(buf, sizeof buf, p) != nullptr) out = buf;
    ::pclose(p);
  }
  // "runc version 1.1.5+ds1"
  std::istringstream in(out);
  std::string w1, w2, version;
  in >> w1 >> w2 >> version;
  if (version.empty()) version = "unknown";
  return "runc://" + version;
}

Result<EvictionThresholds> parse_eviction_hard(const std::string& list) {
  EvictionThresholds t;
  bool available_set = false, inodes_set = false;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    size_t lt = item.find('<');
    std::string signal = item.substr(0, lt);
    std::string value = lt == std::string::npos ? "" : item.substr(lt + 1);
    int percent = -1;
    if (value.size() >= 2 && value.back() == '%') {
      char* rest = nullptr;
      long v = std::strtol(value.c_str(), &rest, 10);
      if (rest == value.c_str() + value.size() - 1 && v >= 0 && v <= 100) {
        percent = static_cast<int>(v);
      }
    }
    if (percent < 0) {
      return Status::BadRequest("eviction threshold \"" + item +
                                "\": want <signal><N%, e.g. nodefs.available<10%");
    }
    // A threshold given for either of nodefs and imagefs applies; the stricter one wins.
    auto apply = [percent](int& field, bool& set) {
      field = set ? std::max(field, percent) : percent;
      set = true;
    };
    if (signal == "nodefs.available" || signal == "imagefs.available") {
      apply(t.nodefs_available_percent, available_set);
    } else if (signal == "nodefs.inodesFree" || signal == "imagefs.inodesFree") {
      apply(t.nodefs_inodes_free_percent, inodes_set);
    } else {
      return Status::BadRequest("eviction signal \"" + signal +
                                "\" is not supported (nodefs.available, nodefs.inodesFree, "
                                "imagefs.available, imagefs.inodesFree are)");
    }
  }
  return t;
}

bool disk_pressure(const images::FilesystemStats& nodefs, const EvictionThresholds& t) {
  if (nodefs.capacity_bytes > 0 &&
      nodefs.available_bytes * 100 < nodefs.capacity_bytes * t.nodefs_available_percent) {
    return true;
  }
  return nodefs.inodes > 0 &&
         nodefs.inodes_free * 100 < nodefs.inodes * t.nodefs_inodes_free_percent;
}

bool node_disk_pressure(const std::string& path, const EvictionThresholds& t) {
  auto stats = images::filesystem_stats(path);
  return stats.ok() && disk_pressure(*stats, t);
}

json node_conditions(const json* current, TimePoint now) {
  return node_conditions(current, now, NodePressure{});
}

json node_conditions(const json* current, TimePoint now, const NodePressure& pressure) {
  struct Cond {
    const char* type;
    const char* status;
    const char* reason;
    const char* message;
  };
  const Cond kConds[] = {
      {"MemoryPressure", "False", "KubeletHasSufficientMemory",
       "kubelet has sufficient memory available"},
      pressure.disk
          ? Cond{"DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure"}
          : Cond{"DiskPressure", "False", "KubeletHasNoDiskPressure",
                 "kubelet has no disk pressure"},
      {"PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
      {"Ready", "True", "KubeletReady", "kubelet is posting ready status"},
  };
  std::string ts = format_rfc3339(now);
  json out = json::array();
  for (const Cond& c : kConds) {
    std::string transition = ts;
    if (current != nullptr) {
      const json* conds = nullptr;
      if (current->contains("status") && (*current)["status"].contains("conditions")) {
        conds = &(*current)["status"]["conditions"];
      }
      if (conds != nullptr && conds->is_array()) {
        for (const auto& e : *conds) {
          if (e.value("type", "") == c.type && e.value("status", "") == c.status &&
              e.contains("lastTransitionTime") && e["lastTransitionTime"].is_string()) {
            transition = e["lastTransitionTime"].get<std::string>();
          }
        }
      }
    }
    out.push_back({{"type", c.type},
                   {"status", c.status},
                   {"reason", c.reason},
                   {"message", c.message},
                   {"lastHeartbeatTime", ts},
                   {"lastTransitionTime", transition}});
  }
  return out;
}

json node_status(const NodeFacts& f, const json* current, TimePoint now) {
  return node_status(f, current, now, NodePressure{});
}

json node_status(const NodeFacts& f, const json* current, TimePoint now,
                 const NodePressure& pressure) {
  std::string memory = std::to_string(f.host.memory_bytes / 1024) + "Ki";
  json capacity = {{"cpu", std::to_string(f.host.cpus)},
                   {"memory", memory},
                   {"pods", "110"},
                   {"ephemeral-storage", std::to_string(f.ephemeral_storage_bytes / 1024) + "Ki"}};
  return {{"capacity", capacity},
          {"allocatable", capacity},
          {"conditions", node_conditions(current, now, pressure)},
          {"addresses",
           {{{"type", "InternalIP"}, {"address", f.internal_ip}},
            {{"type", "Hostname"}, {"address", f.name}}}},
          {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", f.kubelet_port}}}}},
          {"nodeInfo",
           {{"machineID", f.host.machine_id},
            {"systemUUID", f.host.machine_id},
            {"bootID", f.host.boot_id},
            {"kernelVersion", f.host.kernel_version},
            {"osImage", f.host.os_image},
            {"containerRuntimeVersion", f.runtime_version},
            {"kubeletVersion", kKubeletVersion},
            {"kubeProxyVersion", kKubeletVersion},
            {"operatingSystem", "linux"},
            {"architecture", f.host.architecture}}}};
}

json node_labels(const NodeFacts& f) {
  return {{"beta.kubernetes.io/arch", f.host.architecture},
          {"beta.kubernetes.io/os", "linux"},
          {"kubernetes.io/arch", f.host.architecture},
          {"kubernetes.io/hostname", f.name},
          {"kubernetes.io/os", "linux"}};
}

json node_object(const NodeFacts& f, TimePoint now) {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata",
           {{"name", f.name},
            {"labels", node_labels(f)},
            {"annotations",
             {{"node.alpha.kubernetes.io/ttl", "0"},
              {"volumes.kubernetes.io/controller-managed-attach-detach", "true"}}}}},
          {"spec", json::object()},
          {"status", node_status(f, nullptr, now)}};
}

json lease_object(const std::string& node_name, const std::string& node_uid,
                  int lease_duration_seconds, TimePoint now) {
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", node_name}, {"namespace", "kube-node-lease"}}},
                {"spec",
                 {{"holderIdentity", node_name},
                  {"leaseDurationSeconds", lease_duration_seconds},
                  {"renewTime", format_rfc3339_micro(now)}}}};
  if (!node_uid.empty()) {
    lease["metadata"]["ownerReferences"] = {
        {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node_name}, {"uid", node_uid}}};
  }
  return lease;
}

std::string lease_renewal_patch(const std::string& node_name, int lease_duration_seconds,
                                TimePoint now) {
  return json{{"spec",
               {{"holderIdentity", node_name},
                {"leaseDurationSeconds", lease_duration_seconds},
                {"renewTime", format_rfc3339_micro(now)}}}}
      .dump();
}

int64_t filesystem_bytes(const std::string& path) {
  struct statvfs s;
  if (::statvfs(path.c_str(), &s) != 0) return 0;
  return static_cast<int64_t>(s.f_blocks) * static_cast<int64_t>(s.f_frsize);
}

}  // namespace skiff::agent
