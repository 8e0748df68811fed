#include "agent/network/pod_network.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <system_error>
#include <thread>

#include "agent/network/cni.h"
#include "agent/network/cni_iptables.h"
#include "agent/network/link.h"
#include "agent/network/pod_dns_files.h"
#include "agent/network/sandbox_namespaces.h"
#include "common/log.h"

namespace skiff::agent::network {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const char* const kRequiredPlugins[] = {"bridge", "host-local", "portmap", "loopback"};

// The record of one pod's sandbox, as kept in <state>/network/pods/<uid>.json.
struct SandboxRecord {
  PodSandbox sandbox;
  std::string cni_result;  // the ADD result, prevResult for DEL and CHECK ("" if unknown)
  bool ready = false;      // ADD finished; false while (or if interrupted while) creating
};

std::string network_dir(const PodNetworkOptions& o) { return o.state_dir + "/network"; }
std::string netns_root(const PodNetworkOptions& o) { return o.state_dir + "/netns"; }
std::string records_dir(const PodNetworkOptions& o) { return network_dir(o) + "/pods"; }
std::string record_path(const PodNetworkOptions& o, const std::string& uid) {
  return records_dir(o) + "/" + uid + ".json";
}
std::string conflist_file(const PodNetworkOptions& o) {
  return network_dir(o) + "/" + o.network_name + ".conflist";
}
std::string loopback_file(const PodNetworkOptions& o) { return network_dir(o) + "/loopback.conf"; }

bool valid_network_name(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

bool valid_pod_uid(const std::string& uid) {
  if (uid.empty() || uid.size() > 128 || uid == "." || uid == "..") return false;
  return std::all_of(uid.begin(), uid.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

// Parses "a.b.c.d/n" into the network address and prefix length.
Status parse_ipv4_cidr(const std::string& cidr, uint32_t* network, int* prefix) {
  unsigned a, b, c, d;
  int n;
  char tail;
  if (std::sscanf(cidr.c_str(), "%u.%u.%u.%u/%d%c", &a, &b, &c, &d, &n, &tail) != 5 || a > 255 ||
      b > 255 || c > 255 || d > 255 || n < 1 || n > 30) {
    return Status::Invalid("pod CIDR \"" + cidr +
                           "\" is not an IPv4 CIDR with a prefix length from 1 to 30");
  }
  uint32_t addr = (a << 24) | (b << 16) | (c << 8) | d;
  uint32_t mask = n == 0 ? 0 : ~uint32_t{0} << (32 - n);
  if ((addr & ~mask) != 0) {
    return Status::Invalid("pod CIDR \"" + cidr + "\" has host bits set");
  }
  *network = addr;
  *prefix = n;
  return Status::Ok();
}

std::string ipv4_text(uint32_t addr) {
  return std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 255) + "." +
         std::to_string((addr >> 8) & 255) + "." + std::to_string(addr & 255);
}

// The kubelet's hostname truncation: at most 63 characters, no trailing '-' or '.'.
std::string truncate_hostname(std::string h) {
  if (h.size() > 63) h.resize(63);
  while (!h.empty() && (h.back() == '-' || h.back() == '.')) h.pop_back();
  return h;
}

std::string cni_args(const PodSandbox& s) {
  return "IgnoreUnknown=1;K8S_POD_NAMESPACE=" + s.pod_namespace + ";K8S_POD_NAME=" + s.pod_name +
         ";K8S_POD_INFRA_CONTAINER_ID=" + s.pod_uid + ";K8S_POD_UID=" + s.pod_uid;
}

std::vector<CniPortMapping> cni_port_mappings(const std::vector<HostPortMapping>& mappings) {
  std::vector<CniPortMapping> out;
  for (const auto& m : mappings) {
    CniPortMapping c;
    c.host_port = m.host_port;
    c.container_port = m.container_port;
    c.protocol = m.protocol;
    std::transform(c.protocol.begin(), c.protocol.end(), c.protocol.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    c.host_ip = m.host_ip;
    out.push_back(std::move(c));
  }
  return out;
}

json record_to_json(const SandboxRecord& r) {
  const PodSandbox& s = r.sandbox;
  json ports = json::array();
  for (const auto& m : s.port_mappings) {
    ports.push_back({{"containerPort", m.container_port},
                     {"hostPort", m.host_port},
                     {"protocol", m.protocol},
                     {"hostIP", m.host_ip}});
  }
  return {{"podUID", s.pod_uid},
          {"podName", s.pod_name},
          {"podNamespace", s.pod_namespace},
          {"hostname", s.hostname},
          {"netns", s.net_ns},
          {"ipcns", s.ipc_ns},
          {"utsns", s.uts_ns},
          {"podIP", s.pod_ip},
          {"prefixLength", s.prefix_length},
          {"gateway", s.gateway},
          {"mac", s.mac},
          {"hostInterface", s.host_interface},
          {"portMappings", ports},
          {"cniResult", r.cni_result},
          {"ready", r.ready}};
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}
int num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int>() : 0;
}

Result<SandboxRecord> record_from_json(const std::string& text, const std::string& path) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || str(j, "podUID").empty()) {
    return Status::Internal("sandbox record " + path + " is not valid");
  }
  SandboxRecord r;
  PodSandbox& s = r.sandbox;
  s.pod_uid = str(j, "podUID");
  s.pod_name = str(j, "podName");
  s.pod_namespace = str(j, "podNamespace");
  s.hostname = str(j, "hostname");
  s.net_ns = str(j, "netns");
  s.ipc_ns = str(j, "ipcns");
  s.uts_ns = str(j, "utsns");
  s.pod_ip = str(j, "podIP");
  s.prefix_length = num(j, "prefixLength");
  s.gateway = str(j, "gateway");
  s.mac = str(j, "mac");
  s.host_interface = str(j, "hostInterface");
  if (auto it = j.find("portMappings"); it != j.end() && it->is_array()) {
    for (const auto& p : *it) {
      if (!p.is_object()) continue;
      s.port_mappings.push_back(HostPortMapping{num(p, "containerPort"), num(p, "hostPort"),
                                                str(p, "protocol"), str(p, "hostIP")});
    }
  }
  r.cni_result = str(j, "cniResult");
  auto ready = j.find("ready");
  r.ready = ready != j.end() && ready->is_boolean() && ready->get<bool>();
  return r;
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<SandboxRecord> load_records(const PodNetworkOptions& o) {
  std::vector<SandboxRecord> records;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(records_dir(o), ec)) {
    const std::string path = entry.path().string();
    if (entry.path().extension() != ".json") continue;
    auto text = read_text(path);
    if (!text.ok()) continue;
    auto r = record_from_json(*text, path);
    if (!r.ok()) {
      SKIFF_LOG(Warn) << r.status().message() << "; ignoring it";
      continue;
    }
    records.push_back(std::move(*r));
  }
  std::sort(records.begin(), records.end(), [](const SandboxRecord& a, const SandboxRecord& b) {
    return a.sandbox.pod_uid < b.sandbox.pod_uid;
  });
  return records;
}

Status make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Status::Internal("mkdir " + path + ": " + ec.message());
  return Status::Ok();
}

CniRuntime runtime_for(const PodNetworkOptions& o, const PodSandbox& s, bool netns_alive) {
  CniRuntime rt;
  rt.bin_dir = o.cni_bin_dir;
  rt.container_id = s.pod_uid;
  rt.netns = netns_alive ? s.net_ns : "";
  rt.ifname = "eth0";
  rt.args = cni_args(s);
  rt.port_mappings = cni_port_mappings(s.port_mappings);
  rt.timeout = o.plugin_timeout;
  return rt;
}

// Detaches a recorded sandbox from the network and deletes its namespaces. The record file is
// left to the caller. `conflist` and `loopback` may be "" when unknown (nothing to DEL then).
Status teardown(const PodNetworkOptions& o, const SandboxRecord& r, const std::string& conflist,
                const std::string& loopback) {
  const PodSandbox& s = r.sandbox;
  SandboxNamespacePaths paths = sandbox_namespace_paths(netns_root(o), s.pod_uid);
  const bool alive = is_namespace_mount(paths.net);
  CniRuntime rt = runtime_for(o, s, alive);
  Status result;
  if (!conflist.empty()) result = cni_del_list(conflist, rt, r.cni_result);
  if (!alive || !result.ok()) {
    // Without the namespace the bridge plugin releases the IP but leaves its ipMasq chain.
    if (Status s2 = remove_cni_iptables_rules(o.network_name, s.pod_uid); !s2.ok()) {
      SKIFF_LOG(Warn) << "removing iptables rules of pod " << s.pod_uid << ": " << s2.message();
    }
  }
  if (alive && !loopback.empty()) {
    CniRuntime lo = rt;
    lo.ifname = "lo";
    lo.port_mappings.clear();
    (void)cni_del(loopback, lo);  // the namespace goes away next; nothing else to undo
  }
  if (!result.ok()) return result;
  return remove_sandbox_namespaces(paths);
}

}  // namespace

struct PodNetwork::Impl {
  // Constant after construction.
  PodNetworkOptions options;
  std::string cni_version;
  std::string conflist;
  std::string loopback;

  mutable std::mutex mu;
  // Guarded by mu.
  std::map<std::string, SandboxRecord> records;
  std::map<std::string, std::shared_ptr<std::mutex>> pod_locks;

  std::shared_ptr<std::mutex> pod_lock(const std::string& uid) {
    std::lock_guard<std::mutex> l(mu);
    auto& m = pod_locks[uid];
    if (!m) m = std::make_shared<std::mutex>();
    return m;
  }
  // Drops the pod's lock entry when nobody else holds or waits for it. Copies are only made
  // under mu, so with mu held a count of one (the map's) cannot grow behind our back.
  // REQUIRES: the caller released its own copy.
  void release_pod_lock(const std::string& uid) {
    std::lock_guard<std::mutex> l(mu);
    auto it = pod_locks.find(uid);
    if (it != pod_locks.end() && it->second.use_count() == 1) pod_locks.erase(it);
  }

  // Not synced: a record outlives agent crashes (which is what it is for) in the page cache;
  // after a host crash the namespaces and iptables rules it describes are gone as well, and
  // host-local's allocation files are not synced either.
  Status save(const SandboxRecord& r) {
    return write_file_atomically(
        record_path(options, r.sandbox.pod_uid),
        record_to_json(r).dump(2, ' ', false, json::error_handler_t::replace) + "\n", false);
  }
  Status forget(const std::string& uid) {
    std::error_code ec;
    fs::remove(record_path(options, uid), ec);
    if (ec) return Status::Internal("remove " + record_path(options, uid) + ": " + ec.message());
    std::lock_guard<std::mutex> l(mu);
    records.erase(uid);
    return Status::Ok();
  }
  std::optional<SandboxRecord> find(const std::string& uid) const {
    std::lock_guard<std::mutex> l(mu);
    auto it = records.find(uid);
    if (it == records.end()) return std::nullopt;
    return it->second;
  }

  // Creates the sandbox; `on_namespaces` (may be empty) is called with the sandbox's
  // namespaces once they exist, before the network attach. A ready and alive sandbox is
  // returned as it is, without the call. REQUIRES: the pod's lock is held.
  Result<PodSandbox> create_locked(const PodSandboxRequest& req, const std::string& hostname,
                                   const std::function<void(const PodSandbox&)>& on_namespaces);
  Status remove_locked(const std::string& uid);
};

PodNetwork::PodNetwork(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PodNetwork::~PodNetwork() = default;

namespace {

// Fills in defaults and validates everything cleanup also relies on.
Status resolve_names(PodNetworkOptions* o) {
  if (o->state_dir.empty() || o->state_dir[0] != '/') {
    return Status::Invalid("state_dir must be an absolute path, not \"" + o->state_dir + "\"");
  }
  while (o->state_dir.size() > 1 && o->state_dir.back() == '/') o->state_dir.pop_back();
  if (!valid_link_name(o->bridge_name)) {
    return Status::Invalid("bridge_name \"" + o->bridge_name +
                           "\" is not a valid interface name (1 to 15 characters)");
  }
  if (o->network_name.empty()) o->network_name = o->bridge_name;
  if (!valid_network_name(o->network_name)) {
    return Status::Invalid("network_name \"" + o->network_name +
                           "\" may only hold letters, digits, '-', '_' and '.'");
  }
  if (o->cni_bin_dir.empty()) o->cni_bin_dir = "/usr/lib/cni";
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<PodNetwork>> PodNetwork::open(PodNetworkOptions options) {
  if (Status s = resolve_names(&options); !s.ok()) return s;
  uint32_t network = 0;
  int prefix = 0;
  if (Status s = parse_ipv4_cidr(options.pod_cidr, &network, &prefix); !s.ok()) return s;
  if (options.mtu < 0 || options.mtu > 65535) {
    return Status::Invalid("mtu " + std::to_string(options.mtu) + " is out of range");
  }
  if (options.plugin_timeout.count() <= 0) {
    return Status::Invalid("plugin_timeout must be positive");
  }
  for (const char* plugin : kRequiredPlugins) {
    std::string path = options.cni_bin_dir + "/" + plugin;
    if (::access(path.c_str(), X_OK) != 0) {
      return Status::Unavailable("CNI plugin " + path +
                                 " not found or not executable: install the "
                                 "containernetworking-plugins package");
    }
  }
  auto versions = cni_supported_versions(options.cni_bin_dir + "/bridge");
  if (!versions.ok()) return versions.status();
  auto impl = std::make_unique<Impl>();
  for (const char* v : {"1.0.0", "0.4.0"}) {
    if (std::find(versions->begin(), versions->end(), v) != versions->end()) {
      impl->cni_version = v;
      break;
    }
  }
  if (impl->cni_version.empty()) {
    return Status::Unavailable("the CNI plugins in " + options.cni_bin_dir +
                               " support neither CNI 1.0.0 nor 0.4.0");
  }

  CniNetworkConfig config;
  config.name = options.network_name;
  config.cni_version = impl->cni_version;
  config.bridge = options.bridge_name;
  config.subnet = options.pod_cidr;
  config.gateway = ipv4_text(network + 1);
  config.ipam_data_dir = network_dir(options) + "/ipam";
  config.mtu = options.mtu;
  impl->conflist = render_conflist(config);
  impl->loopback = render_loopback_config(impl->cni_version);

  for (const std::string& dir :
       {network_dir(options), records_dir(options), config.ipam_data_dir, netns_root(options)}) {
    if (Status s = make_dirs(dir); !s.ok()) return s;
  }
  if (Status s = write_file_atomically(conflist_file(options), impl->conflist); !s.ok()) {
    return s;
  }
  if (Status s = write_file_atomically(loopback_file(options), impl->loopback); !s.ok()) {
    return s;
  }
  for (SandboxRecord& r : load_records(options)) {
    std::string uid = r.sandbox.pod_uid;
    impl->records.emplace(uid, std::move(r));
  }
  impl->options = std::move(options);
  return std::unique_ptr<PodNetwork>(new PodNetwork(std::move(impl)));
}

namespace {

// Checks a create request; returns the pod's UTS hostname.
Result<std::string> validate_request(const PodSandboxRequest& request) {
  if (!valid_pod_uid(request.pod_uid)) {
    return Status::Invalid("invalid pod uid \"" + request.pod_uid + "\"");
  }
  if (request.pod_name.empty()) return Status::Invalid("pod name is required");
  std::string hostname =
      truncate_hostname(request.hostname.empty() ? request.pod_name : request.hostname);
  if (hostname.empty()) return Status::Invalid("pod hostname is empty");
  for (const auto& m : request.port_mappings) {
    std::string proto = m.protocol;
    std::transform(proto.begin(), proto.end(), proto.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    if (m.host_port < 1 || m.host_port > 65535 || m.container_port < 1 ||
        m.container_port > 65535) {
      return Status::Invalid("port mapping " + std::to_string(m.host_port) + "->" +
                             std::to_string(m.container_port) + ": ports must be 1-65535");
    }
    if (proto != "TCP" && proto != "UDP" && proto != "SCTP") {
      return Status::Invalid("port mapping protocol \"" + m.protocol + "\": want TCP, UDP or SCTP");
    }
  }
  return hostname;
}

}  // namespace

Result<PodSandbox> PodNetwork::create_sandbox(const PodSandboxRequest& request) {
  auto hostname = validate_request(request);
  if (!hostname.ok()) return hostname.status();
  auto lock = impl_->pod_lock(request.pod_uid);
  Result<PodSandbox> result = [&] {
    std::lock_guard<std::mutex> l(*lock);
    return impl_->create_locked(request, *hostname, nullptr);
  }();
  lock.reset();
  return result;
}

struct PendingPodSandbox::State {
  std::mutex mu;
  std::condition_variable cv;
  bool namespaces_ready = false;             // guarded by mu
  PodSandbox namespaces;                     // guarded by mu; set with namespaces_ready
  std::optional<Result<PodSandbox>> result;  // guarded by mu: set when the creation ended
  std::thread creator;                       // joined by whoever owns the State last

  void reach_namespaces(const PodSandbox& s) {
    std::lock_guard<std::mutex> l(mu);
    namespaces = s;
    namespaces_ready = true;
    cv.notify_all();
  }
  void finish(Result<PodSandbox> r) {
    std::lock_guard<std::mutex> l(mu);
    if (!namespaces_ready && r.ok()) {
      namespaces = *r;
      namespaces_ready = true;
    }
    result = std::move(r);
    cv.notify_all();
  }
  void join() {
    if (creator.joinable()) creator.join();
  }
};

PendingPodSandbox::PendingPodSandbox(std::shared_ptr<State> state) : state_(std::move(state)) {}

PendingPodSandbox::~PendingPodSandbox() { state_->join(); }

const PodSandbox& PendingPodSandbox::namespaces() const { return state_->namespaces; }

Result<PodSandbox> PendingPodSandbox::wait() {
  {
    std::unique_lock<std::mutex> l(state_->mu);
    state_->cv.wait(l, [&] { return state_->result.has_value(); });
  }
  state_->join();
  return *state_->result;
}

Result<std::unique_ptr<PendingPodSandbox>> PodNetwork::begin_create_sandbox(
    const PodSandboxRequest& request) {
  auto hostname = validate_request(request);
  if (!hostname.ok()) return hostname.status();
  auto state = std::make_shared<PendingPodSandbox::State>();
  {
    // The common case on every sync after the first: nothing to create.
    auto lock = impl_->pod_lock(request.pod_uid);
    std::lock_guard<std::mutex> l(*lock);
    auto existing = impl_->find(request.pod_uid);
    if (existing && existing->ready &&
        sandbox_namespaces_alive(
            sandbox_namespace_paths(netns_root(impl_->options), request.pod_uid))) {
      state->finish(existing->sandbox);
      return std::unique_ptr<PendingPodSandbox>(new PendingPodSandbox(state));
    }
  }
  Impl* impl = impl_.get();
  auto create = [impl, state, request, hostname = *hostname] {
    auto lock = impl->pod_lock(request.pod_uid);
    std::lock_guard<std::mutex> l(*lock);
    state->finish(impl->create_locked(request, hostname, [&](const PodSandbox& s) {
      state->reach_namespaces(s);
    }));
  };
  try {
    state->creator = std::thread(create);
  } catch (const std::system_error& e) {
    SKIFF_LOG(Warn) << "creating the sandbox of pod " << request.pod_uid
                    << " without a thread of its own: " << e.what();
    create();
  }
  bool namespaces_ready = false;
  {
    std::unique_lock<std::mutex> l(state->mu);
    state->cv.wait(l, [&] { return state->namespaces_ready || state->result.has_value(); });
    namespaces_ready = state->namespaces_ready;
  }
  if (!namespaces_ready) {
    state->join();
    return state->result->status();
  }
  return std::unique_ptr<PendingPodSandbox>(new PendingPodSandbox(std::move(state)));
}

Result<PodSandbox> PodNetwork::Impl::create_locked(
    const PodSandboxRequest& req, const std::string& hostname,
    const std::function<void(const PodSandbox&)>& on_namespaces) {
  const std::string& uid = req.pod_uid;
  SandboxNamespacePaths paths = sandbox_namespace_paths(netns_root(options), uid);
  if (auto existing = find(uid)) {
    if (existing->ready && sandbox_namespaces_alive(paths)) return existing->sandbox;
    // Recorded but not usable: finish whatever was left and start over.
    if (Status s = teardown(options, *existing, conflist, loopback); !s.ok()) return s;
    if (Status s = forget(uid); !s.ok()) return s;
  }

  SandboxRecord r;
  PodSandbox& s = r.sandbox;
  s.pod_uid = uid;
  s.pod_name = req.pod_name;
  s.pod_namespace = req.pod_namespace;
  s.hostname = hostname;
  s.net_ns = paths.net;
  s.ipc_ns = paths.ipc;
  s.uts_ns = paths.uts;
  s.port_mappings = req.port_mappings;
  // Recorded before anything exists, so that a crash at any later point leaves a record
  // that teardown can work from.
  if (Status st = save(r); !st.ok()) return st;
  {
    std::lock_guard<std::mutex> l(mu);
    records[uid] = r;
  }
  auto fail = [&](Status err) -> Result<PodSandbox> {
    Status undo = teardown(options, r, conflist, loopback);
    if (undo.ok()) {
      (void)forget(uid);
    } else {
      SKIFF_LOG(Warn) << "undoing the sandbox of pod " << uid << ": " << undo.message();
    }
    return err;
  };

  auto ns = create_sandbox_namespaces(netns_root(options), uid, hostname);
  if (!ns.ok()) return fail(ns.status());
  if (on_namespaces) on_namespaces(s);
  CniRuntime rt = runtime_for(options, s, true);
  CniRuntime lo = rt;
  lo.ifname = "lo";
  lo.port_mappings.clear();
  if (auto added = cni_add(loopback, lo); !added.ok()) return fail(added.status());
  auto added = cni_add_list(conflist, rt);
  if (!added.ok()) return fail(added.status());
  r.cni_result = *added;
  auto summary = parse_cni_result(*added, rt.ifname, options.bridge_name);
  if (!summary.ok()) return fail(summary.status());
  s.pod_ip = summary->pod_ip;
  s.prefix_length = summary->prefix_length;
  s.gateway = summary->gateway;
  s.mac = summary->mac;
  s.host_interface = summary->host_interface;
  r.ready = true;
  if (Status st = save(r); !st.ok()) return fail(st);
  {
    std::lock_guard<std::mutex> l(mu);
    records[uid] = r;
  }
  return s;
}

Status PodNetwork::remove_sandbox(const std::string& pod_uid) {
  if (!valid_pod_uid(pod_uid)) return Status::Invalid("invalid pod uid \"" + pod_uid + "\"");
  auto lock = impl_->pod_lock(pod_uid);
  Status result;
  {
    std::lock_guard<std::mutex> l(*lock);
    result = impl_->remove_locked(pod_uid);
  }
  lock.reset();
  if (result.ok()) impl_->release_pod_lock(pod_uid);
  return result;
}

Status PodNetwork::Impl::remove_locked(const std::string& uid) {
  auto existing = find(uid);
  if (!existing) {
    // No record; namespaces may still be there from a crash before the record was written.
    return remove_sandbox_namespaces(sandbox_namespace_paths(netns_root(options), uid));
  }
  if (Status s = teardown(options, *existing, conflist, loopback); !s.ok()) return s;
  return forget(uid);
}

Result<PodSandbox> PodNetwork::get_sandbox(const std::string& pod_uid) const {
  auto r = impl_->find(pod_uid);
  if (!r || !r->ready) return Status::NotFound("no sandbox for pod " + pod_uid);
  return r->sandbox;
}

std::vector<PodSandbox> PodNetwork::list_sandboxes() const {
  std::vector<PodSandbox> out;
  std::lock_guard<std::mutex> l(impl_->mu);
  for (const auto& [uid, r] : impl_->records) {
    if (r.ready) out.push_back(r.sandbox);
  }
  return out;
}

Status PodNetwork::check_sandbox(const std::string& pod_uid) {
  auto lock = impl_->pod_lock(pod_uid);
  std::lock_guard<std::mutex> l(*lock);
  auto r = impl_->find(pod_uid);
  if (!r || !r->ready) return Status::NotFound("no sandbox for pod " + pod_uid);
  SandboxNamespacePaths paths = sandbox_namespace_paths(netns_root(impl_->options), pod_uid);
  if (!sandbox_namespaces_alive(paths)) {
    return Status::Internal("the namespaces of pod " + pod_uid + " are gone");
  }
  return cni_check_list(impl_->conflist, runtime_for(impl_->options, r->sandbox, true),
                        r->cni_result);
}

const PodNetworkOptions& PodNetwork::options() const { return impl_->options; }
const std::string& PodNetwork::cni_version() const { return impl_->cni_version; }
std::string PodNetwork::conflist_path() const { return conflist_file(impl_->options); }

Status cleanup_pod_network(const PodNetworkOptions& input) {
  PodNetworkOptions o = input;
  if (Status s = resolve_names(&o); !s.ok()) return s;
  Status first;
  auto note = [&](const Status& s) {
    if (!s.ok()) {
      SKIFF_LOG(Warn) << "network cleanup: " << s.message();
      if (first.ok()) first = s;
    }
  };
  std::string conflist, loopback;
  bool plugins = ::access((o.cni_bin_dir + "/bridge").c_str(), X_OK) == 0;
  if (plugins) {
    if (auto t = read_text(conflist_file(o)); t.ok()) conflist = *t;
    if (auto t = read_text(loopback_file(o)); t.ok()) loopback = *t;
  }
  for (const SandboxRecord& r : load_records(o)) {
    Status s = teardown(o, r, conflist, loopback);
    if (!s.ok()) {
      // Forced removal follows: rules by tag, namespaces, bridge and allocations.
      SKIFF_LOG(Warn) << "network cleanup: pod " << r.sandbox.pod_uid << ": " << s.message();
    }
  }
  note(remove_cni_iptables_rules(o.network_name, ""));
  note(remove_all_sandbox_namespaces(netns_root(o)));
  note(delete_link(o.bridge_name));
  std::error_code ec;
  fs::remove_all(network_dir(o), ec);
  if (ec) note(Status::Internal("remove " + network_dir(o) + ": " + ec.message()));
  return first;
}

}  // namespace skiff::agent::network
