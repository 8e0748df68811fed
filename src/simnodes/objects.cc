#include "simnodes/objects.h"

#include <array>
#include <charconv>
#include <cstdio>

namespace skiff::simnodes {
namespace {

constexpr char kContainerIdScheme[] = "sim://";
constexpr char kRuntimeVersion[] = "sim://0.1.0";

const json* member(const json& obj, std::initializer_list<const char*> path) {
  const json* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(p);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string string_at(const json& obj, std::initializer_list<const char*> path) {
  const json* v = member(obj, path);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

uint64_t fnv64(std::string_view data, uint64_t hash = 14695981039346656037ull) {
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

// `hex_chars` hex digits derived from `seed`: stable fake digests and identifiers.
std::string digest(std::string_view seed, size_t hex_chars) {
  std::string out;
  out.reserve(hex_chars + 16);
  uint64_t h = fnv64(seed);
  for (uint64_t round = 0; out.size() < hex_chars; ++round) {
    h = fnv64(std::string_view(reinterpret_cast<const char*>(&round), sizeof round), h);
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    out += buf;
  }
  out.resize(hex_chars);
  return out;
}

std::string fake_uuid(std::string_view seed) {
  std::string h = digest(seed, 32);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

// The repository an image reference names, as containerd records it ("nginx:1.25" ->
// "docker.io/library/nginx").
std::string image_repository(const std::string& image) {
  std::string repo = image;
  if (size_t at = repo.find('@'); at != std::string::npos) repo.resize(at);
  size_t slash = repo.rfind('/');
  if (size_t colon = repo.rfind(':'); colon != std::string::npos &&
                                      (slash == std::string::npos || colon > slash)) {
    repo.resize(colon);
  }
  size_t first_slash = repo.find('/');
  std::string first = first_slash == std::string::npos ? "" : repo.substr(0, first_slash);
  bool has_registry = !first.empty() && (first.find('.') != std::string::npos ||
                                         first.find(':') != std::string::npos ||
                                         first == "localhost");
  if (has_registry) return repo;
  if (first_slash == std::string::npos) return "docker.io/library/" + repo;
  return "docker.io/" + repo;
}

std::string image_id(const std::string& image) {
  return image_repository(image) + "@sha256:" + digest(image, 64);
}

std::string container_id(const json& pod, const std::string& container) {
  return std::string(kContainerIdScheme) +
         digest(string_at(pod, {"metadata", "uid"}) + "/" + container, 64);
}

const json* find_condition(const json& status, std::string_view type) {
  const json* conditions = member(status, {"conditions"});
  if (conditions == nullptr || !conditions->is_array()) return nullptr;
  for (const json& c : *conditions) {
    if (c.is_object() && c.value("type", "") == type) return &c;
  }
  return nullptr;
}

// A pod condition; it keeps the lastTransitionTime `status` has for it when its status is
// unchanged.
json pod_condition(const json& status, const char* type, const char* value, const char* reason,
                   const std::string& now) {
  json c = {{"type", type}, {"status", value}, {"lastProbeTime", nullptr}};
  const json* old = find_condition(status, type);
  std::string since = now;
  if (old != nullptr && old->value("status", "") == value) {
    since = string_at(*old, {"lastTransitionTime"});
    if (since.empty()) since = now;
  }
  c["lastTransitionTime"] = since;
  if (reason[0] != '\0') c["reason"] = reason;
  return c;
}

const json* find_container_status(const json& status, const char* list, const std::string& name) {
  const json* statuses = member(status, {list});
  if (statuses == nullptr || !statuses->is_array()) return nullptr;
  for (const json& cs : *statuses) {
    if (cs.is_object() && cs.value("name", "") == name) return &cs;
  }
  return nullptr;
}

json running_container(const json& pod, const json& status, const char* list,
                       const json& container, const std::string& now) {
  std::string name = container.value("name", "");
  std::string image = container.value("image", "");
  std::string started = now;
  if (const json* old = find_container_status(status, list, name)) {
    std::string at = string_at(*old, {"state", "running", "startedAt"});
    if (!at.empty()) started = at;
  }
  return {{"name", name},
          {"image", image},
          {"imageID", image_id(image)},
          {"containerID", container_id(pod, name)},
          {"ready", true},
          {"started", true},
          {"restartCount", 0},
          {"state", {{"running", {{"startedAt", started}}}}},
          {"lastState", json::object()}};
}

json terminated_container(const json& pod, const json& status, const char* list,
                          const json& container, int code, const std::string& start,
                          const std::string& now, bool ready) {
  std::string name = container.value("name", "");
  std::string image = container.value("image", "");
  std::string started = start;
  if (const json* old = find_container_status(status, list, name)) {
    std::string at = string_at(*old, {"state", "running", "startedAt"});
    if (at.empty()) at = string_at(*old, {"state", "terminated", "startedAt"});
    if (!at.empty()) started = at;
  }
  std::string id = container_id(pod, name);
  return {{"name", name},
          {"image", image},
          {"imageID", image_id(image)},
          {"containerID", id},
          {"ready", ready},
          {"started", false},
          {"restartCount", 0},
          {"state",
           {{"terminated",
             {{"exitCode", code},
              {"reason", code == 0 ? "Completed" : "Error"},
              {"startedAt", started},
              {"finishedAt", now},
              {"containerID", id}}}}},
          {"lastState", json::object()}};
}

const json& containers_of(const json& pod, const char* list) {
  static const json kEmpty = json::array();
  const json* c = member(pod, {"spec", list});
  return c != nullptr && c->is_array() ? *c : kEmpty;
}

bool is_sidecar(const json& init_container) {
  return init_container.is_object() && init_container.value("restartPolicy", "") == "Always";
}

const json& status_of(const json& pod) {
  static const json kEmpty = json::object();
  const json* s = member(pod, {"status"});
  return s != nullptr && s->is_object() ? *s : kEmpty;
}

}  // namespace

std::optional<uint32_t> parse_ipv4(std::string_view text) {
  uint32_t ip = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
    unsigned value = 0;
    auto [next, ec] = std::from_chars(p, end, value);
    if (ec != std::errc() || next == p || next - p > 3 || value > 255) return std::nullopt;
    p = next;
    ip = (ip << 8) | value;
  }
  if (p != end) return std::nullopt;
  return ip;
}

std::string format_ipv4(uint32_t ip) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
                ip & 255);
  return buf;
}

std::optional<Ipv4Block> Ipv4Block::parse(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = parse_ipv4(text.substr(0, slash));
  std::string_view bits = text.substr(slash + 1);
  int prefix = -1;
  auto [next, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
  if (!ip || ec != std::errc() || next != bits.data() + bits.size() || prefix < 0 ||
      prefix > 32) {
    return std::nullopt;
  }
  Ipv4Block b;
  b.prefix = prefix;
  b.base = prefix == 0 ? 0 : *ip & ~((uint64_t{1} << (32 - prefix)) - 1);
  return b;
}

std::string Ipv4Block::to_string() const {
  return format_ipv4(base) + "/" + std::to_string(prefix);
}

Ipv4Block fallback_pod_range(uint32_t node_index) {
  Ipv4Block b;
  b.prefix = 24;
  b.base = (10u << 24) | (128u << 16);
  b.base += (node_index % 32768u) << 8;
  return b;
}

std::optional<Ipv4Block> node_pod_range(const json& node) {
  const json* cidrs = member(node, {"spec", "podCIDRs"});
  if (cidrs != nullptr && cidrs->is_array()) {
    for (const json& c : *cidrs) {
      if (!c.is_string()) continue;
      if (auto b = Ipv4Block::parse(c.get<std::string>())) return b;
    }
  }
  return Ipv4Block::parse(string_at(node, {"spec", "podCIDR"}));
}

json node_conditions(const json* current, TimePoint now) {
  struct Spec {
    const char* type;
    const char* status;
    const char* reason;
    const char* message;
  };
  static constexpr std::array<Spec, 4> kConditions = {{
      {"MemoryPressure", "False", "KubeletHasSufficientMemory",
       "kubelet has sufficient memory available"},
      {"DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
      {"PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
      {"Ready", "True", "KubeletReady", "kubelet is posting ready status"},
  }};
  std::string now_text = format_rfc3339(now);
  static const json kNoStatus = json::object();
  const json& current_status = current != nullptr ? status_of(*current) : kNoStatus;
  json out = json::array();
  for (const Spec& s : kConditions) {
    std::string since = now_text;
    if (const json* old = find_condition(current_status, s.type);
        old != nullptr && old->value("status", "") == s.status) {
      std::string t = string_at(*old, {"lastTransitionTime"});
      if (!t.empty()) since = t;
    }
    out.push_back({{"type", s.type},
                   {"status", s.status},
                   {"reason", s.reason},
                   {"message", s.message},
                   {"lastHeartbeatTime", now_text},
                   {"lastTransitionTime", since}});
  }
  return out;
}

json node_status(const SimNodesOptions& options, const std::string& name,
                 const std::string& internal_ip, const json* current, TimePoint now) {
  json resources = {{"cpu", options.cpu},
                    {"memory", options.memory},
                    {"pods", options.pods},
                    {"ephemeral-storage", options.ephemeral_storage}};
  return {{"capacity", resources},
          {"allocatable", resources},
          {"conditions", node_conditions(current, now)},
          {"addresses",
           {{{"type", "InternalIP"}, {"address", internal_ip}},
            {{"type", "Hostname"}, {"address", name}}}},
          {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", 10250}}}}},
          {"nodeInfo",
           {{"machineID", digest("machine/" + name, 32)},
            {"systemUUID", fake_uuid("system/" + name)},
            {"bootID", fake_uuid("boot/" + name)},
            {"kernelVersion", "6.1.0-skiff-sim"},
            {"osImage", "Skiff simulated node"},
            {"containerRuntimeVersion", kRuntimeVersion},
            {"kubeletVersion", options.kubelet_version},
            {"kubeProxyVersion", options.kubelet_version},
            {"operatingSystem", "linux"},
            {"architecture", options.architecture}}}};
}

json node_object(const SimNodesOptions& options, const std::string& name,
                 const std::string& internal_ip, TimePoint now) {
  json labels = {{"beta.kubernetes.io/arch", options.architecture},
                 {"beta.kubernetes.io/os", "linux"},
                 {"kubernetes.io/arch", options.architecture},
                 {"kubernetes.io/hostname", name},
                 {"kubernetes.io/os", "linux"},
                 {kSimulatedNodeLabel, "true"}};
  for (const auto& [k, v] : options.labels) labels[k] = v;
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata",
                {{"name", name},
                 {"labels", labels},
                 {"annotations",
                  {{"node.alpha.kubernetes.io/ttl", "0"},
                   {"volumes.kubernetes.io/controller-managed-attach-detach", "true"}}}}},
               {"spec", json::object()},
               {"status", node_status(options, name, internal_ip, nullptr, now)}};
  if (!options.taints.empty()) {
    json taints = json::array();
    for (const NodeTaint& t : options.taints) {
      json taint = {{"key", t.key}, {"effect", t.effect}};
      if (!t.value.empty()) taint["value"] = t.value;
      taints.push_back(std::move(taint));
    }
    node["spec"]["taints"] = std::move(taints);
  }
  return node;
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

bool runs_to_completion(const json& pod) {
  std::string policy = string_at(pod, {"spec", "restartPolicy"});
  return policy == "Never" || policy == "OnFailure";
}

std::chrono::milliseconds run_time(const json& pod, std::chrono::milliseconds fallback) {
  std::string text = string_at(pod, {"metadata", "annotations", kRunTimeAnnotation});
  if (text.empty()) return fallback;
  auto d = parse_go_duration(text);
  if (!d.ok() || d->count() < 0) return fallback;
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

int exit_code(const json& pod) {
  std::string text = string_at(pod, {"metadata", "annotations", kExitCodeAnnotation});
  int code = 0;
  auto [next, ec] = std::from_chars(text.data(), text.data() + text.size(), code);
  if (text.empty() || ec != std::errc() || next != text.data() + text.size()) return 0;
  return code;
}

bool reported_running(const json& pod) {
  if (string_at(pod, {"status", "phase"}) != "Running") return false;
  if (string_at(pod, {"status", "podIP"}).empty()) return false;
  const json* ready = find_condition(status_of(pod), "Ready");
  return ready != nullptr && ready->value("status", "") == "True";
}

bool terminal(const json& pod) {
  std::string phase = string_at(pod, {"status", "phase"});
  return phase == "Succeeded" || phase == "Failed";
}

bool being_deleted(const json& pod) {
  const json* ts = member(pod, {"metadata", "deletionTimestamp"});
  return ts != nullptr && !ts->is_null();
}

std::string pod_ip(const json& pod) { return string_at(pod, {"status", "podIP"}); }

json running_pod_status(const json& pod, const std::string& ip, const std::string& host_ip,
                        TimePoint now) {
  const json& old = status_of(pod);
  std::string now_text = format_rfc3339(now);
  std::string start = string_at(old, {"startTime"});
  if (start.empty()) start = now_text;

  json status = {{"phase", "Running"},
                 {"hostIP", host_ip},
                 {"hostIPs", {{{"ip", host_ip}}}},
                 {"podIP", ip},
                 {"podIPs", {{{"ip", ip}}}},
                 {"startTime", start}};
  status["conditions"] = {pod_condition(old, "PodReadyToStartContainers", "True", "", now_text),
                          pod_condition(old, "Initialized", "True", "", now_text),
                          pod_condition(old, "Ready", "True", "", now_text),
                          pod_condition(old, "ContainersReady", "True", "", now_text),
                          pod_condition(old, "PodScheduled", "True", "", now_text)};
  json containers = json::array();
  for (const json& c : containers_of(pod, "containers")) {
    if (c.is_object()) {
      containers.push_back(running_container(pod, old, "containerStatuses", c, now_text));
    }
  }
  status["containerStatuses"] = std::move(containers);
  const json& inits = containers_of(pod, "initContainers");
  if (!inits.empty()) {
    json init_statuses = json::array();
    for (const json& c : inits) {
      if (!c.is_object()) continue;
      init_statuses.push_back(
          is_sidecar(c) ? running_container(pod, old, "initContainerStatuses", c, now_text)
                        : terminated_container(pod, old, "initContainerStatuses", c, 0, start,
                                               start, true));
    }
    status["initContainerStatuses"] = std::move(init_statuses);
  }
  return status;
}

json completed_pod_status(const json& pod, int code, TimePoint now) {
  const json& old = status_of(pod);
  std::string now_text = format_rfc3339(now);
  std::string start = string_at(old, {"startTime"});
  if (start.empty()) start = now_text;
  const char* reason = code == 0 ? "PodCompleted" : "PodFailed";
  json status = {{"phase", code == 0 ? "Succeeded" : "Failed"}, {"startTime", start}};
  status["conditions"] = {pod_condition(old, "PodReadyToStartContainers", "False", "", now_text),
                          pod_condition(old, "Initialized", "True", "", now_text),
                          pod_condition(old, "Ready", "False", reason, now_text),
                          pod_condition(old, "ContainersReady", "False", reason, now_text),
                          pod_condition(old, "PodScheduled", "True", "", now_text)};
  json containers = json::array();
  for (const json& c : containers_of(pod, "containers")) {
    if (c.is_object()) {
      containers.push_back(
          terminated_container(pod, old, "containerStatuses", c, code, start, now_text, false));
    }
  }
  status["containerStatuses"] = std::move(containers);
  const json& inits = containers_of(pod, "initContainers");
  if (!inits.empty()) {
    json init_statuses = json::array();
    for (const json& c : inits) {
      if (!c.is_object()) continue;
      // A sidecar stops with the pod; a regular init container finished before it ran.
      bool sidecar = is_sidecar(c);
      init_statuses.push_back(terminated_container(pod, old, "initContainerStatuses", c, 0,
                                                   start, sidecar ? now_text : start, !sidecar));
    }
    status["initContainerStatuses"] = std::move(init_statuses);
  }
  return status;
}

}  // namespace skiff::simnodes
